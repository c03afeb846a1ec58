//! What the manifest takes from `Cargo.lock`: each package's checksum, its
//! direct dependencies (to say which crate pulled a new one in) and the line
//! its `[[package]]` entry starts on (where SARIF points).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ManifestError;

/// One `[[package]]` of Cargo.lock.
#[derive(Debug, Clone, Deserialize)]
pub struct LockPackage {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
    /// Entries as cargo writes them: `name`, `name version` or
    /// `name version (source)`.
    #[serde(default)]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LockToml {
    #[serde(default)]
    package: Vec<LockPackage>,
}

/// A parsed Cargo.lock (empty when the project has none).
#[derive(Debug, Default, Clone)]
pub struct LockFile {
    pub packages: Vec<LockPackage>,
    /// 1-based line of each package's `name = ...`, by (name, version).
    lines: BTreeMap<(String, String), usize>,
}

impl LockFile {
    /// Reads a Cargo.lock; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<LockFile, ManifestError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
            Err(source) => {
                return Err(ManifestError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        LockFile::parse(&text).map_err(|message| ManifestError::Lock {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<LockFile, String> {
        let lock: LockToml = toml::from_str(text).map_err(|e| e.message().to_string())?;
        // Lines: a `name = "x"` line starts an entry's fields; the version
        // follows it.
        let mut lines = BTreeMap::new();
        let mut pending: Option<(String, usize)> = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line == "[[package]]" {
                pending = None;
            } else if let Some(name) = quoted_value(line, "name") {
                pending = Some((name, index + 1));
            } else if let Some(version) = quoted_value(line, "version")
                && let Some((name, at)) = pending.take()
            {
                lines.entry((name, version)).or_insert(at);
            }
        }
        Ok(LockFile {
            packages: lock.package,
            lines,
        })
    }

    /// The checksum of a package, matched by name, version and source
    /// (manifest sources of path packages are `path+...`, which Cargo.lock
    /// leaves out).
    pub fn find(&self, name: &str, version: &str, source: &str) -> Option<&LockPackage> {
        let mut candidates = self
            .packages
            .iter()
            .filter(|p| p.name == name && p.version == version);
        let all: Vec<&LockPackage> = candidates.by_ref().collect();
        match all.as_slice() {
            [] => None,
            [one] => Some(one),
            many => many
                .iter()
                .find(|p| match &p.source {
                    Some(s) => s == source,
                    None => source.starts_with("path+") || source.is_empty(),
                })
                .copied(),
        }
    }

    /// `(name, version)` of each direct dependency of a package.
    pub fn dependencies(&self, package: &LockPackage) -> Vec<(String, String)> {
        package
            .dependencies
            .iter()
            .filter_map(|entry| {
                let mut words = entry.split_whitespace();
                let name = words.next()?;
                match words.next() {
                    Some(version) => Some((name.to_string(), version.to_string())),
                    // A bare name: cargo writes it only when one version is locked.
                    None => self
                        .packages
                        .iter()
                        .find(|p| p.name == name)
                        .map(|p| (p.name.clone(), p.version.clone())),
                }
            })
            .collect()
    }

    /// The line of a package's entry (its `name = ` line).
    pub fn line_of(&self, name: &str, version: &str) -> Option<usize> {
        self.lines
            .get(&(name.to_string(), version.to_string()))
            .copied()
    }
}

/// `key = "value"` → value.
fn quoted_value(line: &str, key: &str) -> Option<String> {
    let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
    let rest = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"# This file is automatically @generated by Cargo.
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "cc",
 "syn 1.0.109",
 "syn 2.0.1 (registry+https://github.com/rust-lang/crates.io-index)",
]

[[package]]
name = "cc"
version = "1.2.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"

[[package]]
name = "syn"
version = "1.0.109"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bb"

[[package]]
name = "syn"
version = "2.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "cc"
"#;

    #[test]
    fn dependencies_lines_and_checksums_come_from_the_lock() {
        let lock = LockFile::parse(LOCK).unwrap();
        let app = lock.find("app", "0.1.0", "path+$WORKSPACE").unwrap();
        assert_eq!(
            lock.dependencies(app),
            [
                ("cc".to_string(), "1.2.0".to_string()),
                ("syn".to_string(), "1.0.109".to_string()),
                ("syn".to_string(), "2.0.1".to_string()),
            ]
        );
        assert_eq!(lock.line_of("app", "0.1.0"), Some(5));
        assert_eq!(lock.line_of("syn", "2.0.1"), Some(26));
        let syn = lock
            .find(
                "syn",
                "2.0.1",
                "registry+https://github.com/rust-lang/crates.io-index",
            )
            .unwrap();
        assert_eq!(syn.checksum.as_deref(), Some("cc"));
        assert!(LockFile::parse("[[package]\n").is_err());
    }
}
