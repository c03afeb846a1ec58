//! The static scan: what a crate's code *could* do, beyond what one build
//! showed. Three scanners feed one finding shape: `symbols` (compiled
//! artifacts, with `object`), `source` (Rust sources, with `syn`) and
//! `blobs` (binary files shipped in the package, with `goblin`); the API
//! `catalogue` maps symbols and source paths to capabilities.

pub mod blobs;
pub mod catalogue;
pub mod source;
pub mod symbols;

use crate::observe::{Method, Phase};

/// One static finding, before findings are merged into observations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub phase: Phase,
    /// A capability name from the vocabulary (`fs.read`, `obfuscation`, ...).
    pub capability: String,
    /// What: the catalogue entry, the variable name, the path, the reason.
    pub target: String,
    pub method: Method,
    /// Evidence as detail key and value: `location` (`src/lib.rs:12`),
    /// `symbol`, `value`, `format`, `size`, ...
    pub evidence: Vec<(String, String)>,
}
