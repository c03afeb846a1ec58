//! The build report: its model (the JSON contract later commands build on)
//! and its renderers. `json` output is the model serialised; `human` is a
//! summary with denied observations first.
//!
//! Contract (`schema_version` 1):
//! `{"schema_version": 1, "profile": ..., "crates": [{"name", "version",
//! "source", "build_script": {"status", "exit_code"}, "observations": [...]}]}`.
//! Crates are sorted by name, version and source; observations by phase,
//! capability, target and outcome. Nothing machine-specific appears.

pub mod human;

use serde::{Deserialize, Serialize};

use crate::observe::Observation;

/// Version of the report format; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    pub schema_version: u32,
    /// The sandbox profile build scripts ran under.
    pub profile: String,
    pub crates: Vec<CrateReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateReport {
    pub name: String,
    pub version: String,
    pub source: String,
    pub build_script: BuildScriptRun,
    pub observations: Vec<Observation>,
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
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report serialises");
        text.push('\n');
        text
    }
}
