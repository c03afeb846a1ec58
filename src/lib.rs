//! cargo-capsule as a library: the modules behind the `cargo-capsule`
//! binary (see `main.rs` for its roles). Exposed so that the fuzz target
//! (`tests/fuzz`) and benchmarks can drive the scanners directly; the
//! command line is the supported interface.

pub mod audit;
pub mod check;
pub mod cli;
pub mod document;
pub mod driver;
pub mod graph;
pub mod intercept;
pub mod manifest;
pub mod observe;
pub mod policy;
pub mod progress;
pub mod report;
pub mod sandbox;
pub mod scan;
pub mod trace;
