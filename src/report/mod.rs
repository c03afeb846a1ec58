//! The build report: its model (the JSON contract later commands build on)
//! and its renderers. `json` output is the model serialised; `human` is a
//! summary with denied observations first.
//!
//! Contract (`schema_version` 3):
//! `{"schema_version": 3, "profile": ..., "rustc_profile": ..., "crates":
//! [{"name", "version", "source", "build_script": {"status", "exit_code"},
//! "proc_macro": {"status", "used_by"}, "observations": [...],
//! "scan_errors": [{"method", "message"}]}]}`.
//! `build_script` is present for crates whose build script ran (or was
//! reused), `proc_macro` for proc-macro crates rustc loaded, `scan_errors`
//! when the static scan could not read something; observations carry their
//! phase (`build-script`, `proc-macro`, `runtime`) and `method` (`traced`,
//! or `symbol`/`source`/`blob` with outcome `possible`). Crates are sorted
//! by name, version and source; observations by phase, capability, target,
//! outcome and method. Nothing machine-specific appears.

pub mod audit;
pub mod html;
pub mod human;

use serde::{Deserialize, Serialize};

use crate::observe::Observation;

/// Version of the report format; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    pub schema_version: u32,
    /// The sandbox profile build scripts ran under.
    pub profile: String,
    /// The sandbox profile rustc and proc macros ran under.
    pub rustc_profile: String,
    pub crates: Vec<CrateReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateReport {
    pub name: String,
    pub version: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_script: Option<BuildScriptRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_macro: Option<ProcMacroUse>,
    pub observations: Vec<Observation>,
    /// Parts the static scan could not read (a file that does not parse,
    /// a corrupt artifact): unscanned, not clean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scan_errors: Vec<crate::scan::ScanError>,
}

/// How a proc-macro crate was used in this build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcMacroUse {
    /// `ran` when at least one compilation loading it ran in this build,
    /// `cached` when all of them were reused (observations from their last
    /// recorded run).
    pub status: RunStatus,
    /// The crates whose compilation loaded it (`name@version`), sorted.
    pub used_by: Vec<String>,
}

/// What happened to a crate's build script in this build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildScriptRun {
    pub status: RunStatus,
    /// Exit status of the last sandboxed run (absent when never recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Ran in the sandbox during this build.
    Ran,
    /// Not re-run (cargo's cached output); observations are from the run that
    /// produced that output.
    Cached,
    /// Not re-run, and no sandboxed run of it was ever recorded (it ran
    /// before cargo-capsule was used on this target dir). `--fresh` fixes it.
    CachedUnrecorded,
    /// The sandbox could not be started.
    SetupFailed,
}

impl RunStatus {
    pub fn describe(self) -> &'static str {
        match self {
            RunStatus::Ran => "ran in the sandbox",
            RunStatus::Cached => "not re-run (cached)",
            RunStatus::CachedUnrecorded => {
                "not re-run (cached), never recorded: run with --fresh to record it"
            }
            RunStatus::SetupFailed => "sandbox could not start",
        }
    }
}

impl BuildReport {
    /// The report of `cargo capsule scan`: static observations only, and
    /// only crates with static observations or scan errors.
    pub fn static_only(mut self) -> BuildReport {
        for krate in &mut self.crates {
            krate.build_script = None;
            krate.proc_macro = None;
            krate
                .observations
                .retain(|o| o.method != crate::observe::Method::Traced);
        }
        self.crates
            .retain(|c| !c.observations.is_empty() || !c.scan_errors.is_empty());
        self
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report serialises");
        text.push('\n');
        text
    }
}
