//! The throwaway project of an audit: a library package whose only
//! dependency is the crate under audit, resolved and fetched by cargo
//! itself (registries, source replacement, `--offline` and the user's cargo
//! configuration all apply), and cargo's errors turned into one clear line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::AuditError;
use crate::manifest::LockFile;

/// Where the crate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A registry: the default one (crates.io or what replaces it) or a
    /// named `[registries.NAME]`.
    Registry(Option<String>),
    /// A git repository, optionally at a branch, tag or rev.
    Git {
        url: String,
        branch: Option<String>,
        tag: Option<String>,
        rev: Option<String>,
    },
    /// A package directory.
    Path(PathBuf),
}

impl Origin {
    /// How the origin reads in messages.
    pub fn describe(&self) -> String {
        match self {
            Origin::Registry(None) => "the default registry".into(),
            Origin::Registry(Some(name)) => format!("registry `{name}`"),
            Origin::Git { url, .. } => format!("git repository {url}"),
            Origin::Path(dir) => format!("directory {}", dir.display()),
        }
    }
}

/// One dependency to audit: the crate, where from, which versions, which
/// features.
#[derive(Debug, Clone)]
pub struct DependencySpec {
    pub name: String,
    /// A cargo version requirement (`=1.0.1`, `<1.0.1`, `^1.2`); None for
    /// any version (git and path: whatever is there).
    pub requirement: Option<String>,
    pub origin: Origin,
    pub features: Vec<String>,
    pub default_features: bool,
}

impl DependencySpec {
    /// `widget@=1.0.1` (`widget` for any version).
    pub fn shown(&self) -> String {
        match self.requirement.as_deref() {
            Some("*") | None => self.name.clone(),
            Some(req) => format!("{}@{req}", self.name),
        }
    }

    /// `widget@=1.0.1 from registry ...`, for messages.
    pub fn describe(&self) -> String {
        format!("{} from {}", self.shown(), self.origin.describe())
    }
}

/// The name of the throwaway package (never the audited crate's own).
pub fn probe_name(audited: &str) -> &'static str {
    // cargo takes `-` and `_` as one in package names.
    if audited.replace('_', "-") == "capsule-audit-probe" {
        "capsule-audit-probe-2"
    } else {
        "capsule-audit-probe"
    }
}

/// Writes the project into `dir` (created): `Cargo.toml` and an empty
/// `src/lib.rs`.
pub fn write(dir: &Path, spec: &DependencySpec) -> Result<(), AuditError> {
    let io = |what: &str, path: &Path| {
        let what = format!("{what} {}", path.display());
        move |source| AuditError::Io { what, source }
    };
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(io("create", &src))?;
    let lib = src.join("lib.rs");
    std::fs::write(
        &lib,
        "//! Throwaway project of `cargo capsule audit`: depends on the audited crate.\n",
    )
    .map_err(io("write", &lib))?;
    let manifest = dir.join("Cargo.toml");
    std::fs::write(&manifest, cargo_toml(spec)).map_err(io("write", &manifest))?;
    Ok(())
}

/// The throwaway `Cargo.toml` (written through `toml`, so no value can
/// break out of its string).
fn cargo_toml(spec: &DependencySpec) -> String {
    use toml::{Table, Value};
    let mut dep = Table::new();
    if let Some(req) = &spec.requirement {
        dep.insert("version".into(), Value::String(req.clone()));
    }
    match &spec.origin {
        Origin::Registry(None) => {}
        Origin::Registry(Some(name)) => {
            dep.insert("registry".into(), Value::String(name.clone()));
        }
        Origin::Git {
            url,
            branch,
            tag,
            rev,
        } => {
            dep.insert("git".into(), Value::String(url.clone()));
            for (key, value) in [("branch", branch), ("tag", tag), ("rev", rev)] {
                if let Some(value) = value {
                    dep.insert(key.into(), Value::String(value.clone()));
                }
            }
        }
        Origin::Path(dir) => {
            dep.insert(
                "path".into(),
                Value::String(dir.to_string_lossy().into_owned()),
            );
        }
    }
    if !spec.features.is_empty() {
        dep.insert(
            "features".into(),
            Value::Array(spec.features.iter().cloned().map(Value::String).collect()),
        );
    }
    if !spec.default_features {
        dep.insert("default-features".into(), Value::Boolean(false));
    }
    let mut package = Table::new();
    package.insert(
        "name".into(),
        Value::String(probe_name(&spec.name).to_string()),
    );
    package.insert("version".into(), Value::String("0.0.0".into()));
    package.insert("edition".into(), Value::String("2021".into()));
    package.insert("publish".into(), Value::Boolean(false));
    let mut dependencies = Table::new();
    dependencies.insert(spec.name.clone(), Value::Table(dep));
    let mut root = Table::new();
    root.insert("package".into(), Value::Table(package));
    root.insert("dependencies".into(), Value::Table(dependencies));
    // Its own workspace, whatever directory it sits in.
    root.insert("workspace".into(), Value::Table(Table::new()));
    format!(
        "# Throwaway project of `cargo capsule audit`.\n{}",
        toml::to_string(&root).expect("a table serialises")
    )
}

/// What went wrong when cargo resolved or fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No package of the audited crate's name.
    UnknownCrate,
    /// No version of the audited crate matches its requirement.
    UnknownVersion,
    UnknownFeature,
    UnknownRegistry,
    Unreachable,
    NotCached,
    Other,
}

impl Failure {
    /// What to do about it.
    fn hint(self, origin: &Origin) -> String {
        match (self, origin) {
            (Failure::UnknownCrate, Origin::Registry(_)) => {
                "check the name (and --registry)".into()
            }
            (Failure::UnknownCrate, Origin::Git { .. }) => {
                "check the name: the repository has no package called that".into()
            }
            (Failure::UnknownCrate, Origin::Path(_)) => {
                "check the name: the package in that directory is called something else".into()
            }
            (Failure::UnknownVersion, _) => "pick a published version".into(),
            (Failure::UnknownFeature, _) => {
                "check --features against the crate's [features]".into()
            }
            (Failure::UnknownRegistry, _) => {
                "define it under [registries.NAME] in .cargo/config.toml or $CARGO_HOME/config.toml"
                    .into()
            }
            (Failure::Unreachable, _) => {
                "check the network and the registry's configuration, or pass --offline to use what cargo has already downloaded"
                    .into()
            }
            (Failure::NotCached, _) => {
                "let cargo go online once (drop --offline, CARGO_NET_OFFLINE or net.offline), or `cargo fetch` it".into()
            }
            (Failure::Other, _) => "see cargo's message".into(),
        }
    }
}

/// cargo's failure, sorted.
#[derive(Debug, Clone)]
pub struct Classified {
    pub kind: Failure,
    /// The lines that say what happened (not the ones about the throwaway
    /// package), joined.
    pub message: String,
    pub hint: String,
}

/// Sorts cargo's error text into a kind. A missing crate or version is the
/// audited crate's only when cargo names it (a dependency of it missing is
/// another matter).
pub fn classify(stderr: &str, spec: &DependencySpec) -> Classified {
    let lower = stderr.to_lowercase();
    let name = spec.name.to_lowercase();
    let offline = lower.contains("--offline was specified")
        || lower.contains("offline mode")
        || lower.contains("-z offline");
    let kind = if lower.contains(&format!("searched package name: `{name}`"))
        || lower.contains(&format!("no matching package named `{name}`"))
    {
        Failure::UnknownCrate
    } else if lower.contains(&format!(
        "failed to select a version for the requirement `{name} ="
    )) {
        Failure::UnknownVersion
    } else if (lower.contains("does not have that feature")
        || lower.contains("does not have these features")
        || lower.contains("does not contain this feature"))
        // The audit's own request, not a dependency's deeper in the tree.
        && lower.contains(&format!(
            "package `{}` depends on `{name}`",
            probe_name(&spec.name)
        ))
    {
        Failure::UnknownFeature
    } else if lower.contains("registry index was not found") {
        Failure::UnknownRegistry
    } else if offline {
        Failure::NotCached
    } else if [
        "failed to download",
        "could not connect",
        "couldn't connect",
        "couldn't resolve host",
        "could not resolve host",
        "failed to fetch",
        "failed to update",
        "unable to update",
        "download of config.json failed",
        "network failure",
        "timed out",
        "connection refused",
        "spurious network error",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
    {
        Failure::Unreachable
    } else {
        Failure::Other
    };
    let mut kept: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with("Caused by")
            || line.starts_with("perhaps a crate was updated")
            || line.starts_with("warning:")
            || line.starts_with("note:")
            || line.starts_with("help:")
            || line.starts_with("As a reminder, you're using offline mode")
        {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(
            first,
            "Updating" | "Locking" | "Adding" | "Downloading" | "Downloaded" | "Blocking"
        ) {
            continue;
        }
        let Some(line) = without_probe(line.trim_start_matches("error: ")) else {
            continue;
        };
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !kept.contains(&line) {
            kept.push(line);
        }
    }
    // A directory or local-registry source is all there is, online or not.
    let local = lower.contains("location searched: directory source")
        || lower.contains("location searched: local registry");
    let offline = offline && !local;
    let offline_matters =
        offline && matches!(kind, Failure::UnknownCrate | Failure::UnknownVersion);
    if offline_matters {
        kept.push("cargo was offline, so it searched only what it had downloaded before".into());
    }
    Classified {
        kind,
        message: kept.join("; "),
        hint: if offline_matters {
            format!(
                "{}; or let cargo go online (drop --offline, CARGO_NET_OFFLINE or net.offline)",
                kind.hint(&spec.origin)
            )
        } else {
            kind.hint(&spec.origin)
        },
    }
}

/// A line of cargo's with the throwaway package (ours, not the user's, and
/// at a temporary path) taken out; None when the line is only about it.
fn without_probe(line: &str) -> Option<String> {
    // The package's name, or the scratch directory's path.
    let mentions = |l: &str| l.contains("capsule-audit-probe") || l.contains("/capsule-audit-");
    if !mentions(line) {
        return Some(line.to_string());
    }
    let about_probe = [
        "required by package",
        "... required by",
        "... which satisfies",
    ]
    .iter()
    .any(|p| line.starts_with(p))
        || line.contains("failed to parse manifest at");
    if about_probe {
        return None;
    }
    if let Some((head, _)) = line.split_once(" as a dependency of package `capsule-audit-probe") {
        return Some(head.to_string());
    }
    let mut line = line.to_string();
    for name in ["capsule-audit-probe-2", "capsule-audit-probe"] {
        line = line
            .replace(&format!("the package `{name}`"), "the audit")
            .replace(&format!("package `{name}`"), "the audit");
    }
    (!mentions(&line)).then_some(line)
}

/// `cargo SUBCOMMAND --manifest-path PROJECT/Cargo.toml [--offline]
/// [--quiet]`, without stdin.
fn cargo_command(project: &Path, subcommand: &str, offline: bool, quiet: bool) -> Command {
    let mut command = Command::new(crate::driver::cargo_path());
    command
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .stdin(Stdio::null());
    if offline {
        command.arg("--offline");
    }
    if quiet {
        command.arg("--quiet");
    }
    command
}

/// Runs a cargo command on the project; its stderr goes to ours unless
/// `quiet`, and becomes the error when cargo fails.
fn cargo(
    project: &Path,
    subcommand: &'static str,
    spec: &DependencySpec,
    offline: bool,
    quiet: bool,
) -> Result<(), AuditError> {
    let cargo = crate::driver::cargo_path();
    let mut command = cargo_command(project, subcommand, offline, quiet);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let output = command.output().map_err(|source| AuditError::Io {
        what: format!("run {} {subcommand}", cargo.display()),
        source,
    })?;
    // A Ctrl-C reaches cargo too: its failure is not the crate's.
    super::interrupted()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        if !quiet {
            eprint!("{stderr}");
        }
        return Ok(());
    }
    let mut found = classify(&stderr, spec);
    if found.message.is_empty() {
        found.message = format!("cargo {subcommand} {} without a message", output.status);
    }
    Err(AuditError::Cargo {
        action: match subcommand {
            "generate-lockfile" => "resolve",
            other => other,
        },
        what: spec.describe(),
        kind: found.kind,
        message: found.message,
        hint: found.hint,
    })
}

/// What cargo resolved the dependency to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// As Cargo.lock writes it (None for a path package).
    pub source: Option<String>,
    pub checksum: Option<String>,
    pub lock: LockFile,
}

/// `cargo generate-lockfile`: picks the version (the newest that matches,
/// as cargo would for a new dependency).
pub fn resolve(
    project: &Path,
    spec: &DependencySpec,
    offline: bool,
    quiet: bool,
) -> Result<Resolved, AuditError> {
    cargo(project, "generate-lockfile", spec, offline, quiet)?;
    let lock = LockFile::read(&project.join("Cargo.lock"))?;
    let probe = probe_name(&spec.name);
    let root = lock
        .packages
        .iter()
        .find(|p| p.name == probe && p.source.is_none());
    let found = root
        .map(|r| lock.dependencies(r))
        .unwrap_or_default()
        .into_iter()
        .find(|(name, _)| *name == spec.name);
    let Some((name, version)) = found else {
        return Err(AuditError::Cargo {
            action: "resolve",
            what: spec.describe(),
            kind: Failure::Other,
            message: "cargo resolved the project without it".into(),
            hint: "check that it is a library (binary-only packages cannot be dependencies)".into(),
        });
    };
    let package = lock
        .packages
        .iter()
        .find(|p| p.name == name && p.version == version)
        .cloned();
    Ok(Resolved {
        source: package.as_ref().and_then(|p| p.source.clone()),
        checksum: package.and_then(|p| p.checksum),
        name,
        version,
        lock,
    })
}

/// How many packages a build of the project compiles (for the host, no
/// dev-dependencies), from `cargo tree`; None when it cannot tell.
pub fn count_packages(project: &Path, offline: bool) -> Option<usize> {
    let mut command = cargo_command(project, "tree", offline, true);
    command
        .args(["--prefix", "none", "-e", "no-dev", "--format", "{p}"])
        .stderr(Stdio::null());
    let output = command.output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let unique: std::collections::BTreeSet<&str> = text
        .lines()
        .map(|l| l.trim().trim_end_matches(" (*)"))
        .filter(|l| !l.is_empty())
        .collect();
    Some(unique.len())
}

/// `cargo fetch`: downloads every package of the tree.
pub fn fetch(
    project: &Path,
    spec: &DependencySpec,
    offline: bool,
    quiet: bool,
) -> Result<(), AuditError> {
    cargo(project, "fetch", spec, offline, quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_manifest_holds_exactly_the_request() {
        let spec = DependencySpec {
            name: "widget".into(),
            requirement: Some("=1.0.1".into()),
            origin: Origin::Registry(Some("corp\"\n[evil]".into())),
            features: vec!["a".into(), "b".into()],
            default_features: false,
        };
        let text = cargo_toml(&spec);
        let value: toml::Table = toml::from_str(&text).unwrap();
        let dep = &value["dependencies"]["widget"];
        assert_eq!(dep["version"].as_str(), Some("=1.0.1"));
        assert_eq!(dep["registry"].as_str(), Some("corp\"\n[evil]"));
        assert_eq!(dep["default-features"].as_bool(), Some(false));
        assert_eq!(dep["features"].as_array().unwrap().len(), 2);
        assert!(value.get("evil").is_none());
        assert_eq!(
            value["package"]["name"].as_str(),
            Some("capsule-audit-probe")
        );
        assert_eq!(probe_name("capsule-audit-probe"), "capsule-audit-probe-2");
    }

    #[test]
    fn cargo_errors_are_sorted_and_trimmed() {
        let spec = DependencySpec {
            name: "widget".into(),
            requirement: None,
            origin: Origin::Registry(None),
            features: vec![],
            default_features: true,
        };
        let found = classify(
            "error: failed to select a version for the requirement `widget = \"=9.9.9\"`\n\
             candidate versions found which didn't match: 1.0.1, 1.0.0\n\
             location searched: directory source `/r` (which is replacing registry `crates-io`)\n\
             required by package `capsule-audit-probe v0.0.0 (/tmp/x)`\n\
             perhaps a crate was updated and forgotten to be re-vendored?\n",
            &spec,
        );
        assert_eq!(found.kind, Failure::UnknownVersion);
        assert!(
            found
                .message
                .contains("candidate versions found which didn't match: 1.0.1, 1.0.0")
        );
        assert!(
            !found.message.contains("capsule-audit"),
            "{}",
            found.message
        );
        let found = classify(
            "error: no matching package found\nsearched package name: `widgit`\nperhaps you meant:      widget\n",
            &DependencySpec {
                name: "widgit".into(),
                ..spec.clone()
            },
        );
        assert_eq!(found.kind, Failure::UnknownCrate);
        assert!(found.message.contains("perhaps you meant: widget"));
        // A dependency of the crate missing is not an unknown crate.
        let found = classify(
            "error: no matching package named `missingdep` found\nlocation searched: registry `crates-io`\nrequired by package `orphan v1.0.0`\n    ... which satisfies dependency `orphan = \"*\"` of package `capsule-audit-probe v0.0.0 (/tmp/x)`\n",
            &DependencySpec {
                name: "orphan".into(),
                ..spec.clone()
            },
        );
        assert_eq!(found.kind, Failure::Other);
        assert!(
            found
                .message
                .contains("required by package `orphan v1.0.0`")
        );
        assert!(!found.message.contains("/tmp/x"), "{}", found.message);
        let found = classify(
            "    Updating `nowhere` index\nerror: failed to get `widget` as a dependency of package `capsule-audit-probe v0.0.0 (/tmp/x)`\n\n\
             Caused by:\n  download of config.json failed\n\nCaused by:\n  [7] Could not connect to server\n",
            &spec,
        );
        assert_eq!(found.kind, Failure::Unreachable);
        assert_eq!(
            found.message,
            "failed to get `widget`; download of config.json failed; [7] Could not connect to server"
        );
        let found = classify(
            "error: failed to get `x`\nCaused by:\n  attempting to make an HTTP request, but --offline was specified\n",
            &spec,
        );
        assert_eq!(found.kind, Failure::NotCached);
        let found = classify(
            "error: failed to select a version for `widget`.\n    ... required by package `capsule-audit-probe v0.0.0 (/tmp/x)`\npackage `capsule-audit-probe` depends on `widget` with feature `nope` but `widget` does not have that feature.\n",
            &spec,
        );
        assert_eq!(found.kind, Failure::UnknownFeature);
        let deeper = classify(
            "error: failed to select a version for `widget`.\n    ... required by package `deepfeat v1.0.0`\n    ... which satisfies dependency `deepfeat = \"*\"` of package `capsule-audit-probe v0.0.0 (/tmp/capsule-audit-x/new)`\npackage `deepfeat` depends on `widget` with feature `extra` but `widget` does not have that feature.\n",
            &DependencySpec {
                name: "deepfeat".into(),
                ..spec.clone()
            },
        );
        assert_eq!(deeper.kind, Failure::Other);
        assert!(
            deeper
                .message
                .contains("package `deepfeat` depends on `widget`")
        );
        let named = classify(
            "error: failed to select a version for the requirement `capsule-audit-tools = \"^9\"`\ncandidate versions found which didn't match: 1.0.0\n",
            &DependencySpec {
                name: "capsule-audit-tools".into(),
                ..spec.clone()
            },
        );
        assert_eq!(named.kind, Failure::UnknownVersion);
        assert!(
            named.message.contains("`capsule-audit-tools = \"^9\"`"),
            "{}",
            named.message
        );
        assert!(
            found
                .message
                .contains("the audit depends on `widget` with feature `nope`"),
            "{}",
            found.message
        );
    }
}
