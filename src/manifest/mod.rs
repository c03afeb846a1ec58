//! The capability manifest: per crate@version, what its code did (traced)
//! and could do (static), grouped by phase, in a form meant to be committed
//! and reviewed (`capsule.lock`, TOML) or processed (JSON).
//!
//! Built from a build report plus the facts that pin a crate: the checksum
//! `Cargo.lock` records for it and the commit its package was published
//! from (`.cargo_vcs_info.json`). Deterministic: crates sorted by name,
//! version and source, capabilities by capability, target, method and
//! outcome; paths already normalised by the report; no counts (they vary
//! with timing), no timestamps, no `env.withheld` (it lists the machine's
//! own environment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::observe::{Method, Outcome, Phase};
use crate::report::BuildReport;

pub mod cache;
pub mod diff;
pub mod lock;

pub use lock::LockFile;

/// Version of the manifest format; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The `unscanned` line of a crate whose build script cargo reused without
/// a sandboxed record.
pub const UNRECORDED_BUILD_SCRIPT: &str =
    "traced: the build script never ran in the sandbox (cargo reused its output); run with --fresh";

/// Default file name, at the workspace root.
pub const DEFAULT_FILE: &str = "capsule.lock";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid Cargo.lock: {message}")]
    Lock { path: String, message: String },
    #[error("{0}")]
    Document(#[from] crate::document::DocumentError),
    #[error(
        "{path}: schema_version {found} is not one this cargo-capsule reads ({SCHEMA_VERSION}); regenerate it with `cargo capsule manifest`"
    )]
    Schema { path: String, found: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(rename = "crate", default)]
    pub crates: Vec<CrateManifest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrateManifest {
    pub name: String,
    pub version: String,
    pub source: String,
    /// The checksum `Cargo.lock` records (registry packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The commit the package was published from (`.cargo_vcs_info.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs_commit: Option<String>,
    /// Capabilities per phase (`build-script`, `proc-macro`, `runtime`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<Phase, Vec<Capability>>,
    /// Direct dependencies that are in the manifest, as `name version`
    /// (from Cargo.lock): says which crate pulled a new one in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// What the scan could not read (unscanned, not clean).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscanned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    pub capability: String,
    pub target: String,
    pub method: Method,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, Vec<String>>,
}

/// Where a crate's package lives, to read its `.cargo_vcs_info.json`.
pub type PackageDirs = BTreeMap<(String, String, String), PathBuf>;

/// The commit a package was published from, if it says.
fn vcs_commit(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["git"]["sha1"]
        .as_str()
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
}

impl Manifest {
    /// The manifest of a build report.
    pub fn from_report(report: &BuildReport, lock: &LockFile, dirs: &PackageDirs) -> Manifest {
        let present: std::collections::BTreeSet<(&str, &str)> = report
            .crates
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str()))
            .collect();
        let mut crates: Vec<CrateManifest> = report
            .crates
            .iter()
            .map(|c| {
                let key = (c.name.clone(), c.version.clone(), c.source.clone());
                let mut capabilities: BTreeMap<Phase, Vec<Capability>> = BTreeMap::new();
                for o in c
                    .observations
                    .iter()
                    .filter(|o| o.capability != "env.withheld")
                {
                    capabilities.entry(o.phase).or_default().push(Capability {
                        capability: o.capability.clone(),
                        target: o.target.clone(),
                        method: o.method,
                        outcome: o.outcome,
                        evidence: o.detail.clone(),
                    });
                }
                for list in capabilities.values_mut() {
                    list.sort();
                    list.dedup();
                }
                let mut unscanned: Vec<String> = c
                    .scan_errors
                    .iter()
                    .map(|e| format!("{}: {}", e.method.as_str(), e.message))
                    .collect();
                if c.build_script
                    .as_ref()
                    .is_some_and(|b| b.status == crate::report::RunStatus::CachedUnrecorded)
                {
                    unscanned.push(UNRECORDED_BUILD_SCRIPT.to_string());
                }
                unscanned.sort();
                let locked = lock.find(&c.name, &c.version, &c.source);
                let mut dependencies: Vec<String> = locked
                    .map(|p| lock.dependencies(p))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(n, v)| present.contains(&(n.as_str(), v.as_str())))
                    .map(|(n, v)| format!("{n} {v}"))
                    .collect();
                dependencies.sort();
                dependencies.dedup();
                CrateManifest {
                    checksum: locked.and_then(|p| p.checksum.clone()),
                    vcs_commit: dirs.get(&key).and_then(|d| vcs_commit(d)),
                    name: c.name.clone(),
                    version: c.version.clone(),
                    source: c.source.clone(),
                    capabilities,
                    dependencies,
                    unscanned,
                }
            })
            .collect();
        crates.sort_by(|a, b| {
            (&a.name, &a.version, &a.source).cmp(&(&b.name, &b.version, &b.source))
        });
        Manifest {
            schema_version: SCHEMA_VERSION,
            crates,
        }
    }

    /// Reads a manifest file (TOML, or JSON when it starts with `{`).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = crate::document::read(path)?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(ManifestError::Schema {
                path: path.display().to_string(),
                found: manifest.schema_version,
            });
        }
        Ok(manifest)
    }

    /// The crate entries by name (several when versions differ).
    pub fn by_name(&self) -> BTreeMap<&str, Vec<&CrateManifest>> {
        let mut out: BTreeMap<&str, Vec<&CrateManifest>> = BTreeMap::new();
        for c in &self.crates {
            out.entry(c.name.as_str()).or_default().push(c);
        }
        out
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("manifest serialises");
        format!(
            "# Capability manifest written by `cargo capsule manifest`: what each crate's\n\
             # build-time code did and what its code could do. Review changes to it.\n{body}"
        )
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serialises");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Observation;
    use crate::report::CrateReport;

    fn observation(phase: Phase, capability: &str, target: &str, method: Method) -> Observation {
        Observation {
            phase,
            capability: capability.into(),
            target: target.into(),
            outcome: if method == Method::Traced {
                Outcome::Denied
            } else {
                Outcome::Possible
            },
            method,
            count: 3,
            detail: BTreeMap::from([("errno".to_string(), vec!["ENETUNREACH".to_string()])]),
        }
    }

    #[test]
    fn manifests_group_by_phase_pin_crates_and_leave_out_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".cargo_vcs_info.json"),
            r#"{"git": {"sha1": "0123456789abcdef0123456789abcdef01234567"}, "path_in_vcs": ""}"#,
        )
        .unwrap();
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(
            &lock,
            "version = 4\n[[package]]\nname = \"evil\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"abc123\"\n",
        )
        .unwrap();
        let source = "registry+https://github.com/rust-lang/crates.io-index".to_string();
        let report = BuildReport {
            schema_version: 3,
            profile: "build-script".into(),
            rustc_profile: "proc-macro".into(),
            crates: vec![CrateReport {
                name: "evil".into(),
                version: "1.0.0".into(),
                source: source.clone(),
                build_script: None,
                proc_macro: None,
                observations: vec![
                    observation(Phase::Runtime, "fs.read", "std::fs::read", Method::Symbol),
                    observation(
                        Phase::BuildScript,
                        "net.connect",
                        "1.2.3.4:443",
                        Method::Traced,
                    ),
                    observation(
                        Phase::BuildScript,
                        "env.withheld",
                        "MY_TOKEN",
                        Method::Traced,
                    ),
                ],
                scan_errors: vec![],
            }],
        };
        let dirs = PackageDirs::from([(
            ("evil".into(), "1.0.0".into(), source),
            dir.path().to_path_buf(),
        )]);
        let manifest = Manifest::from_report(&report, &LockFile::read(&lock).unwrap(), &dirs);
        let krate = &manifest.crates[0];
        assert_eq!(krate.checksum.as_deref(), Some("abc123"));
        assert_eq!(
            krate.vcs_commit.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(krate.capabilities.len(), 2);
        assert_eq!(krate.capabilities[&Phase::BuildScript].len(), 1);
        let toml_text = manifest.to_toml();
        assert!(!toml_text.contains("MY_TOKEN"), "{toml_text}");
        assert!(!toml_text.contains("count"), "{toml_text}");
        assert!(
            toml_text.contains("[[crate.capabilities.build-script]]"),
            "{toml_text}"
        );
        // Round trip, and the same bytes again.
        let back: Manifest = toml::from_str(&toml_text).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.to_toml(), toml_text);
        let json_back: Manifest = serde_json::from_str(&manifest.to_json()).unwrap();
        assert_eq!(json_back, manifest);
    }

    #[test]
    fn a_broken_lock_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(&lock, "[[package]\nname = ").unwrap();
        let error = LockFile::read(&lock).unwrap_err().to_string();
        assert!(error.contains("Cargo.lock"), "{error}");
        assert!(
            LockFile::read(&dir.path().join("none.lock"))
                .unwrap()
                .packages
                .is_empty()
        );
    }
}
