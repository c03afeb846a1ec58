//! `cargo capsule audit`: vet a crate before adding it.
//!
//! Writes a throwaway project that depends on the crate, lets cargo resolve
//! and fetch it (so registries, source replacement, `--offline` and the
//! user's cargo configuration apply), builds it with every build script and
//! proc macro sandboxed and recorded, scans it, and turns the manifest into
//! a report per crate of the tree. Then audits the previous published
//! version (or `--against`) the same way, in a second throwaway project
//! that shares the target dir, and diffs the two. Each version's manifest
//! is cached (the manifest cache, keyed by the resolved Cargo.lock), so
//! auditing 1.0.2 after 1.0.1 builds only 1.0.2.
//!
//! The throwaway projects live in one temporary directory, removed on
//! every path out (errors and SIGINT/SIGTERM/SIGHUP included) unless
//! `--keep`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::driver::{BuildEvent, BuildOptions, DriverError};
use crate::manifest::cache::Cache;
use crate::manifest::{Manifest, ManifestError};
use crate::progress::Progress;

pub mod model;
pub mod project;

pub use model::AuditReport;
use model::{Comparison, Roles, Subject, Tree};
use project::{DependencySpec, Failure, Origin};

/// Errors of an audit.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Request(String),
    #[error("could not {action} {what}: {message}; {hint}")]
    Cargo {
        action: &'static str,
        what: String,
        kind: Failure,
        message: String,
        hint: String,
    },
    #[error(
        "{what} has no library target, so no project can depend on it; audit builds crates as dependencies (binary-only packages are not supported)"
    )]
    NoLibrary { what: String },
    #[error(
        "{what} failed to build{}; nothing to report (a partial tree would leave crates out)",
        if failures.is_empty() { " (see cargo's errors above)".to_string() } else { format!(": {}", failures.join("; ")) }
    )]
    BuildFailed { what: String, failures: Vec<String> },
    #[error("interrupted; the audit project was removed")]
    Interrupted,
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    /// The version as given (`1.0.1`: exactly that one; `1.2`, `~1.2`: the
    /// newest that matches, as cargo reads a requirement).
    pub version: Option<String>,
    /// Compare with this registry version instead of the previous one.
    pub against: Option<String>,
    pub origin: Origin,
    pub features: Vec<String>,
    pub default_features: bool,
    pub offline: bool,
    pub keep: bool,
    /// Where the manifest cache lives (None: the default under the user's
    /// cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Profiles, jobs, `--fresh`, catalogues, target dir.
    pub build: BuildOptions,
}

/// The default cache: `$XDG_CACHE_HOME/cargo-capsule/audit`, else
/// `~/.cache/cargo-capsule/audit`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| crate::driver::home_dirs().0.join(".cache"));
    base.join("cargo-capsule").join("audit")
}

/// A crate name as cargo accepts it.
fn check_name(name: &str) -> Result<(), AuditError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AuditError::Request(format!(
            "`{name}` is not a crate name (ASCII letters, digits, `-` and `_`, starting with a letter)"
        )))
    }
}

/// A version as given → cargo's requirement: a full version is exact.
fn requirement(version: &str, flag: &str) -> Result<String, AuditError> {
    if semver::Version::parse(version).is_ok() {
        Ok(format!("={version}"))
    } else if semver::VersionReq::parse(version).is_ok() {
        Ok(version.to_string())
    } else {
        Err(AuditError::Request(format!(
            "{flag} `{version}` is neither a version (1.2.3) nor a version requirement (1.2, ~1.2, <2)"
        )))
    }
}

/// Set by SIGINT, SIGTERM or SIGHUP while an audit runs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catches the signals that would end the process before the temporary
/// directory is removed. cargo, in the same process group, still gets a
/// terminal's Ctrl-C and stops; the audit then stops at its next step.
fn catch_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; exec resets it to the default in children.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

pub(crate) fn interrupted() -> Result<(), AuditError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(AuditError::Interrupted)
    } else {
        Ok(())
    }
}

/// The temporary directory, removed on drop unless kept.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn new(keep: bool) -> Result<Scratch, AuditError> {
        let dir = tempfile::Builder::new()
            .prefix("capsule-audit-")
            .tempdir()
            .map_err(|source| AuditError::Io {
                what: format!(
                    "create a temporary directory in {}",
                    std::env::temp_dir().display()
                ),
                source,
            })?;
        // cargo reports canonical paths; the cache compares with them.
        let path = crate::driver::canonical(dir.path());
        Ok(Scratch {
            dir: Some(dir),
            path,
            keep,
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if self.keep {
                let kept = dir.keep();
                eprintln!(
                    "cargo-capsule: kept the audit project at {}",
                    kept.display()
                );
            } else if let Err(e) = dir.close() {
                eprintln!(
                    "cargo-capsule: warning: could not remove the audit project {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// One version, audited.
struct Audited {
    tree: Tree,
    manifest: Manifest,
}

/// Runs an audit. The error is the audited version's; a failed comparison
/// is part of the report.
pub fn run(request: &Request, progress: &mut Progress) -> Result<AuditReport, AuditError> {
    check_name(&request.name)?;
    let new_req = request
        .version
        .as_deref()
        .map(|v| requirement(v, "the version"))
        .transpose()?;
    let against_req = request
        .against
        .as_deref()
        .map(|v| requirement(v, "--against"))
        .transpose()?;
    if let Origin::Path(dir) = &request.origin
        && !dir.join("Cargo.toml").is_file()
    {
        return Err(AuditError::Request(format!(
            "--path {}: no Cargo.toml there",
            dir.display()
        )));
    }
    catch_signals();
    let scratch = Scratch::new(request.keep)?;
    let result = audit_in(request, &scratch.path, new_req, against_req, progress);
    // The bar goes before anything else is printed (the scratch's removal
    // warning, the report, the error).
    progress.clear();
    result
}

/// The audit, in the scratch directory `root`.
fn audit_in(
    request: &Request,
    root: &Path,
    new_req: Option<String>,
    against_req: Option<String>,
    progress: &mut Progress,
) -> Result<AuditReport, AuditError> {
    let target = match &request.build.target_dir {
        Some(dir) => dir.clone(),
        None => root.join("target"),
    };
    let cache_dir = request.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let requirement = match (&request.origin, new_req) {
        (_, Some(req)) => Some(req),
        (Origin::Registry(_), None) => Some("*".to_string()),
        (_, None) => None,
    };
    let spec = DependencySpec {
        name: request.name.clone(),
        requirement,
        origin: request.origin.clone(),
        features: request.features.clone(),
        default_features: request.default_features,
    };
    // The version to compare with comes from the registry: the one named,
    // or the one a given --registry names.
    let registry = match &request.origin {
        Origin::Registry(r) => r.clone(),
        _ => None,
    };
    let old_spec = |req: String| DependencySpec {
        requirement: Some(req),
        origin: Origin::Registry(registry.clone()),
        ..spec.clone()
    };
    let context = Context {
        request,
        target: &target,
        cache_dir: &cache_dir,
    };
    // An --against version that does not exist is found before anything is
    // built; any other failure of it becomes a failed comparison later.
    if let Some(req) = &against_req {
        let dir = root.join("old");
        let against = old_spec(req.clone());
        project::write(&dir, &against)?;
        progress.phase(&format!("previous: resolve {}", against.shown()));
        if let Err(
            error @ (AuditError::Interrupted
            | AuditError::Cargo {
                kind: Failure::UnknownCrate | Failure::UnknownVersion,
                ..
            }),
        ) = project::resolve(&dir, &against, request.offline, progress.enabled())
        {
            return Err(error);
        }
    }
    let new = context.audit(&root.join("new"), &spec, "audit", progress)?;
    interrupted()?;

    // --against, else the newest registry version below this one (what
    // cargo resolves `<VERSION` to).
    let (old, chosen): (Option<DependencySpec>, String) = match (against_req, &request.origin) {
        (Some(req), _) => (Some(old_spec(req)), "--against".into()),
        (None, Origin::Registry(_)) => (
            Some(old_spec(format!("<{}", new.tree.subject.version))),
            "previous published version".into(),
        ),
        (None, origin) => (
            None,
            format!(
                "{} comes from {}; pass --against VERSION to compare with a registry version",
                new.tree.subject.title(),
                origin.describe()
            ),
        ),
    };
    let comparison = match old {
        None => Comparison::NotCompared { reason: chosen },
        Some(old_spec) => match context.audit(&root.join("old"), &old_spec, "previous", progress) {
            Ok(old) => Comparison::Compared {
                chosen,
                diff: crate::manifest::diff::diff(&old.manifest, &new.manifest),
                old: Box::new(old.tree),
            },
            // Only when cargo says the crate itself has no such version.
            Err(AuditError::Cargo {
                kind: Failure::UnknownVersion,
                message,
                ..
            }) if request.against.is_none() => Comparison::NotCompared {
                reason: if message.contains("cargo was offline") {
                    format!(
                        "no earlier version of {} among what cargo has downloaded (it was offline)",
                        request.name
                    )
                } else {
                    format!("no earlier version of {} to compare with", request.name)
                },
            },
            Err(error) => {
                // An interruption is not the old version's failure.
                interrupted()?;
                Comparison::Failed {
                    against: old_spec.describe(),
                    reason: error.to_string(),
                }
            }
        },
    };
    let profiles = [
        request
            .build
            .profile
            .clone()
            .unwrap_or_else(|| crate::sandbox::profile::DEFAULT_PROFILE.into()),
        request
            .build
            .rustc_profile
            .clone()
            .unwrap_or_else(|| crate::sandbox::profile::DEFAULT_RUSTC_PROFILE.into()),
    ];
    let shown_version = request
        .version
        .as_deref()
        .map(|v| format!("@{v}"))
        .unwrap_or_default();
    Ok(AuditReport {
        schema_version: model::SCHEMA_VERSION,
        request: format!("{}{shown_version}", request.name),
        features: request.features.clone(),
        default_features: request.default_features,
        profiles,
        tree: new.tree,
        comparison,
    })
}

struct Context<'a> {
    request: &'a Request,
    target: &'a Path,
    cache_dir: &'a Path,
}

impl Context<'_> {
    /// Resolves, fetches, builds and scans one version in `dir`.
    fn audit(
        &self,
        dir: &Path,
        spec: &DependencySpec,
        label: &str,
        progress: &mut Progress,
    ) -> Result<Audited, AuditError> {
        let request = self.request;
        let quiet = progress.enabled();
        project::write(dir, spec)?;
        interrupted()?;
        progress.phase(&format!("{label}: resolve {}", spec.shown()));
        let resolved = project::resolve(dir, spec, request.offline, quiet)?;
        interrupted()?;
        let what = format!("{} {}", resolved.name, resolved.version);
        // Pinned to what cargo picked, so the same version audited under
        // another requirement (`<1.0.2` as the previous of 1.0.2, `=1.0.1`
        // when audited itself) is the same project and hits the cache.
        if spec.requirement.is_some() {
            let pinned = DependencySpec {
                requirement: Some(format!("={}", resolved.version)),
                ..spec.clone()
            };
            project::write(dir, &pinned)?;
        }
        progress.phase(&format!("{label}: fetch {what}"));
        project::fetch(dir, spec, request.offline, quiet)?;
        interrupted()?;
        let manifest_path = dir.join("Cargo.toml");
        // Roles (build script, proc macro) and whether it is a library.
        let graph = crate::graph::load(
            &crate::driver::cargo_path(),
            Some(&manifest_path),
            &Default::default(),
            false,
        );
        interrupted()?;
        let graph = graph?;
        let audited = graph
            .packages
            .values()
            .find(|p| p.name == resolved.name && p.version == resolved.version);
        // cargo leaves a dependency without a library out of the graph
        // (with a warning): either way there is nothing to build.
        if audited.is_none_or(|p| !p.has_library) {
            return Err(AuditError::NoLibrary { what });
        }
        let roles: Roles = graph
            .packages
            .values()
            .map(|p| {
                (
                    (p.name.clone(), p.version.clone()),
                    (p.has_build_script, p.is_proc_macro),
                )
            })
            .collect();
        let source = audited
            .map(|p| p.source.clone())
            .or_else(|| resolved.source.clone())
            .unwrap_or_default();
        let options = BuildOptions {
            manifest_path: Some(manifest_path),
            target_dir: Some(self.target.to_path_buf()),
            offline: request.offline,
            quiet,
            scan: true,
            ..request.build.clone()
        };
        let mut cache = Cache::prepare(&options, dir, self.target, Some(self.cache_dir), &[]);
        // A path package inherits from its own workspace (`x.workspace =
        // true`): the manifests above it decide its features and
        // dependencies, and are not in any fingerprint.
        if let Origin::Path(path) = &spec.origin {
            for ancestor in path.ancestors().skip(1) {
                if let Ok(bytes) = std::fs::read(ancestor.join("Cargo.toml")) {
                    cache.extend_key("path-workspace", &bytes);
                }
            }
        }
        let cached = if options.fresh { None } else { cache.lookup() };
        let from_cache = cached.is_some();
        let manifest = match cached {
            Some(manifest) => manifest,
            None => self.build(dir, &options, &mut cache, &resolved, &what, label, progress)?,
        };
        let probe = project::probe_name(&request.name);
        let manifest = Manifest {
            crates: manifest
                .crates
                .into_iter()
                .filter(|c| !(c.name == probe && c.source.starts_with("path+$WORKSPACE")))
                .collect(),
            ..manifest
        };
        if from_cache {
            progress.clear();
            eprintln!(
                "cargo-capsule: {what}: the manifest of its tree ({} crates) is from the cache (nothing built or scanned)",
                manifest.crates.len()
            );
        }
        let subject = Subject {
            name: resolved.name,
            version: resolved.version,
            source,
            checksum: resolved.checksum,
        };
        Ok(Audited {
            tree: model::tree(subject, &manifest, &roles),
            manifest,
        })
    }

    /// The sandboxed build and the scan; stores the manifest in the cache.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        dir: &Path,
        options: &BuildOptions,
        cache: &mut Cache,
        resolved: &project::Resolved,
        what: &str,
        label: &str,
        progress: &mut Progress,
    ) -> Result<Manifest, AuditError> {
        // Packages of the tree, for the N/M count (the probe is one); only
        // asked of cargo when the bar is drawn.
        let total = if progress.enabled() {
            project::count_packages(dir, options.offline).unwrap_or(resolved.lock.packages.len())
        } else {
            resolved.lock.packages.len()
        };
        interrupted()?;
        let mut seen = std::collections::BTreeSet::new();
        let outcome = crate::driver::build_observed(options, &mut |event| match event {
            BuildEvent::Unit(name) => {
                seen.insert(name.clone());
                progress.step(&format!("{label}: build"), seen.len(), total, &name);
            }
            BuildEvent::Scanning => progress.phase(&format!("{label}: scan {what}")),
        })?;
        progress.clear();
        interrupted()?;
        if !outcome.success || !outcome.failures.is_empty() {
            return Err(AuditError::BuildFailed {
                what: what.to_string(),
                failures: outcome.failures,
            });
        }
        if let Some(stats) = &outcome.scan_stats {
            eprintln!("{}", stats.summary());
        }
        Ok(cache.store_build(&outcome)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_are_checked_before_cargo_runs() {
        assert!(check_name("widget-derive_2").is_ok());
        for bad in ["", "9lives", "a b", "x\"y", "../etc", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(requirement("1.0.1", "v").unwrap(), "=1.0.1");
        assert_eq!(requirement("1.2", "v").unwrap(), "1.2");
        assert_eq!(requirement("<2", "v").unwrap(), "<2");
        assert!(requirement("one", "v").is_err());
    }
}
