//! The crate graph, from `cargo metadata`: which packages exist, where they
//! live, where they come from, and which have build scripts or are proc
//! macros. Everything later keys on cargo's package ids from here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_metadata::{CargoOpt, MetadataCommand, TargetKind};

/// Errors of the graph module.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("failed to read the project {manifest} with `cargo metadata`: {message}")]
    Metadata { manifest: String, message: String },
}

/// One package of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub version: String,
    /// `registry+...`, `git+...`, or `path+$WORKSPACE/...` (normalised).
    pub source: String,
    pub manifest_dir: PathBuf,
    pub has_build_script: bool,
    pub is_proc_macro: bool,
    /// Has a library target (anything another package can depend on).
    pub has_library: bool,
    /// A path package (workspace member or path dependency).
    pub local: bool,
}

/// The packages of a workspace and where it builds.
#[derive(Debug, Clone)]
pub struct Graph {
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
    pub packages: BTreeMap<String, Package>,
}

/// Feature selection, as cargo takes it.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
}

/// Runs `cargo metadata` for the project. With `workspace_only`, dependencies
/// are not resolved (ten times faster, and no package-cache lock): only the
/// workspace members are listed.
pub fn load(
    cargo: &Path,
    manifest_path: Option<&Path>,
    features: &Features,
    workspace_only: bool,
) -> Result<Graph, GraphError> {
    let mut command = MetadataCommand::new();
    command.cargo_path(cargo);
    if workspace_only {
        command.no_deps();
    }
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    if features.all_features {
        command.features(CargoOpt::AllFeatures);
    }
    if features.no_default_features {
        command.features(CargoOpt::NoDefaultFeatures);
    }
    if !features.features.is_empty() {
        command.features(CargoOpt::SomeFeatures(features.features.clone()));
    }
    let metadata = command.exec().map_err(|e| {
        let text = match &e {
            cargo_metadata::Error::CargoMetadata { stderr } => stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("warning"))
                .filter(|l| !l.starts_with("-->"))
                .filter(|l| {
                    // Source excerpts: `1 | [package`, `  |    ^`.
                    !l.split_once('|').is_some_and(|(gutter, _)| {
                        gutter.trim().chars().all(|c| c.is_ascii_digit())
                    })
                })
                .map(|l| l.trim_start_matches("error: "))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        GraphError::Metadata {
            manifest: manifest_path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "in the current directory".into()),
            message: text,
        }
    })?;
    let workspace_root = PathBuf::from(metadata.workspace_root.as_std_path());
    let mut packages = BTreeMap::new();
    for pkg in &metadata.packages {
        let manifest_dir = pkg
            .manifest_path
            .parent()
            .map(|p| p.as_std_path().to_path_buf())
            .unwrap_or_default();
        let local = pkg.source.is_none();
        let source = match &pkg.source {
            Some(source) => source.repr.clone(),
            None => path_source(&manifest_dir, &workspace_root),
        };
        let has_kind = |kind: TargetKind| pkg.targets.iter().any(|t| t.kind.contains(&kind));
        packages.insert(
            pkg.id.repr.clone(),
            Package {
                id: pkg.id.repr.clone(),
                name: pkg.name.to_string(),
                version: pkg.version.to_string(),
                source,
                manifest_dir,
                has_build_script: has_kind(TargetKind::CustomBuild),
                is_proc_macro: has_kind(TargetKind::ProcMacro),
                has_library: [
                    TargetKind::Lib,
                    TargetKind::RLib,
                    TargetKind::DyLib,
                    TargetKind::ProcMacro,
                ]
                .into_iter()
                .any(has_kind),
                local,
            },
        );
    }
    Ok(Graph {
        workspace_root,
        target_dir: PathBuf::from(metadata.target_directory.as_std_path()),
        packages,
    })
}

/// Shows a path package's directory relative to the workspace.
pub fn path_source(dir: &Path, workspace_root: &Path) -> String {
    match dir.strip_prefix(workspace_root) {
        Ok(rel) if rel.as_os_str().is_empty() => "path+$WORKSPACE".to_string(),
        Ok(rel) => format!("path+$WORKSPACE/{}", rel.display()),
        Err(_) => format!("path+{}", dir.display()),
    }
}

/// Decodes `%XX` escapes of a file URL's path (`my%20project`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads (name, version, source) out of a cargo package id
/// (`registry+https://...#serde@1.0.0`, `path+file:///w/foo#0.1.0`,
/// `git+https://...?rev=x#name@1.2.3`), for packages `cargo metadata
/// --no-deps` does not list.
pub fn parse_package_id(id: &str, workspace_root: &Path) -> Option<(String, String, String)> {
    let (url, fragment) = id.rsplit_once('#')?;
    let (name, version) = match fragment.split_once('@') {
        Some((name, version)) => (name.to_string(), version.to_string()),
        None => {
            // `#version`: the name is the last segment of the URL's path.
            let path = url.split(['?', '#']).next()?;
            let name = path.trim_end_matches('/').rsplit('/').next()?;
            (name.to_string(), fragment.to_string())
        }
    };
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let source = match url.strip_prefix("path+file://") {
        Some(dir) => path_source(Path::new(&percent_decode(dir)), workspace_root),
        None => url.to_string(),
    };
    Some((name, version, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_package_ids() {
        let root = Path::new("/w");
        assert_eq!(
            parse_package_id(
                "registry+https://github.com/rust-lang/crates.io-index#libc@0.2.191",
                root
            ),
            Some((
                "libc".into(),
                "0.2.191".into(),
                "registry+https://github.com/rust-lang/crates.io-index".into()
            ))
        );
        assert_eq!(
            parse_package_id("path+file:///w/crates/foo#0.1.0", root),
            Some((
                "foo".into(),
                "0.1.0".into(),
                "path+$WORKSPACE/crates/foo".into()
            ))
        );
        assert_eq!(
            parse_package_id("path+file:///elsewhere/bar#baz@1.0.0", root),
            Some(("baz".into(), "1.0.0".into(), "path+/elsewhere/bar".into()))
        );
        assert_eq!(
            parse_package_id("git+https://github.com/o/r?branch=main#dep@2.0.0", root),
            Some((
                "dep".into(),
                "2.0.0".into(),
                "git+https://github.com/o/r?branch=main".into()
            ))
        );
        assert_eq!(
            parse_package_id("path+file:///w/my%20crate#x@0.1.0", root),
            Some((
                "x".into(),
                "0.1.0".into(),
                "path+$WORKSPACE/my crate".into()
            ))
        );
        assert_eq!(parse_package_id("garbage", root), None);
    }
}
