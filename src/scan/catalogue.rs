//! The API catalogue: data (`catalogue.toml`, extendable by the user) that
//! maps API paths and C function names to capabilities.
//!
//! Matching is by path segments: an entry `std::fs::read` matches the path
//! `std::fs::read` and `std::fs::read::inner` but not `std::fs::read_dir`.
//! `name::*` covers a whole crate or module. Entries without `::` are C
//! functions, matched by exact name, and also as
//! the last segment of a path through a `libc` module (`libc::connect`).
//! The longest matching include entry decides; an exclude entry at least as
//! long as it vetoes the match. `[aliases]` map definition modules (what
//! symbols show) to public paths (what entries and sources use).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The catalogue shipped with cargo-capsule.
pub const BUILTIN: &str = include_str!("catalogue.toml");

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read the API catalogue {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the API catalogue {path} is not valid: {message} \
         (expected `[api.\"<capability>\"]` tables with `include`/`exclude` string lists)"
    )]
    Invalid { path: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// The file shape: only the `api` table is read; other tables (policy) are
/// someone else's.
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    api: BTreeMap<String, Entry>,
    /// Definition module → the path it is used by.
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// A catalogue match: the capability and the entry that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    pub capability: &'a str,
    /// The include entry that matched (the observation's target).
    pub api: &'a str,
}

/// One Rust path entry of the catalogue.
#[derive(Debug, Clone)]
struct PathEntry {
    segments: Vec<String>,
    capability: String,
    /// The entry as written.
    text: String,
    exclude: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// Rust path entries.
    paths: Vec<PathEntry>,
    /// C function name → (capability, is_exclude).
    c_functions: BTreeMap<String, Vec<(String, bool)>>,
    /// Definition module prefix → public prefix.
    aliases: Vec<(String, String)>,
}

impl Catalogue {
    /// The built-in catalogue.
    pub fn builtin() -> Catalogue {
        let mut catalogue = Catalogue::default();
        catalogue
            .extend_from_str(BUILTIN, "built-in catalogue")
            .expect("the built-in catalogue is valid");
        catalogue
    }

    /// Adds the `[api.*]` tables of a TOML file (a missing table is fine).
    pub fn extend_from_file(&mut self, path: &Path) -> Result<(), CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.extend_from_str(&text, &path.display().to_string())
    }

    pub fn extend_from_str(&mut self, text: &str, origin: &str) -> Result<(), CatalogueError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogueError::Invalid {
            path: origin.to_string(),
            message: e.message().to_string(),
        })?;
        for (from, to) in file.aliases {
            if from.split("::").any(str::is_empty) || to.split("::").any(str::is_empty) {
                return Err(CatalogueError::Invalid {
                    path: origin.to_string(),
                    message: format!("alias `{from}` = `{to}` is not a pair of paths"),
                });
            }
            self.aliases.push((from, to));
        }
        // Longest first: the most specific alias applies.
        self.aliases
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
        for (capability, entry) in file.api {
            if !is_capability_name(&capability) {
                return Err(CatalogueError::Invalid {
                    path: origin.to_string(),
                    message: format!(
                        "`{capability}` is not a capability name (lowercase, dotted, like `net.connect`)"
                    ),
                });
            }
            for (list, exclude) in [(&entry.include, false), (&entry.exclude, true)] {
                for item in list {
                    let item = item.trim();
                    let bare = item.strip_suffix("::*").unwrap_or(item);
                    if bare.is_empty() || bare.split("::").any(|s| s.is_empty() || s.contains('*'))
                    {
                        return Err(CatalogueError::Invalid {
                            path: origin.to_string(),
                            message: format!("`{item}` under api.\"{capability}\" is not a path"),
                        });
                    }
                    if item.contains("::") {
                        let prefix = item.strip_suffix("::*").unwrap_or(item);
                        self.paths.push(PathEntry {
                            segments: prefix.split("::").map(str::to_string).collect(),
                            capability: capability.clone(),
                            text: item.to_string(),
                            exclude,
                        });
                    } else {
                        self.c_functions
                            .entry(item.to_string())
                            .or_default()
                            .push((capability.clone(), exclude));
                    }
                }
            }
        }
        Ok(())
    }

    /// The capability of a Rust path (`std::fs::write`), if any; a path
    /// under an aliased definition module is tried under its public path
    /// too.
    pub fn classify_path(&self, path: &str) -> Option<Match<'_>> {
        if let Some(found) = self.classify_exact(path) {
            return Some(found);
        }
        let (from, to) = self.aliases.iter().find(|(from, _)| {
            path.strip_prefix(from.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })?;
        self.classify_exact(&format!("{to}{}", &path[from.len()..]))
    }

    /// Whether an exclude entry covers `path` (or its public path): a
    /// symbol with several readings (`<T as Trait>::f`) is dropped when any
    /// reading is excluded, e.g. `to_socket_addrs` on an address that needs
    /// no name lookup.
    pub fn excluded(&self, path: &str) -> bool {
        // The same rule as for classifying: an exclude vetoes a reading
        // when it is at least as long as the include entry that matches it
        // (any exclude, for a reading no include matches).
        let covered = |p: &str| {
            let segments: Vec<&str> = p.split("::").collect();
            let matches = |entry: &&PathEntry| {
                entry.segments.len() <= segments.len()
                    && entry.segments.iter().zip(&segments).all(|(a, b)| a == b)
            };
            let include = self
                .paths
                .iter()
                .filter(|e| !e.exclude)
                .filter(matches)
                .map(|e| e.segments.len())
                .max()
                .unwrap_or(0);
            self.paths
                .iter()
                .filter(|e| e.exclude)
                .filter(matches)
                .any(|e| e.segments.len() >= include)
        };
        covered(path)
            || self.aliases.iter().any(|(from, to)| {
                path.strip_prefix(from.as_str())
                    .filter(|rest| rest.is_empty() || rest.starts_with("::"))
                    .is_some_and(|rest| covered(&format!("{to}{rest}")))
            })
    }

    fn classify_exact(&self, path: &str) -> Option<Match<'_>> {
        let segments: Vec<&str> = path.split("::").collect();
        if let Some(last) = segments.last()
            && segments.len() >= 2
            && segments[segments.len() - 2] == "libc"
            && let Some(found) = self.classify_c(last)
        {
            return Some(found);
        }
        let mut best: Option<&PathEntry> = None;
        let mut veto = 0usize;
        for entry in &self.paths {
            let prefix = &entry.segments;
            if prefix.len() > segments.len() || !prefix.iter().zip(&segments).all(|(a, b)| a == b) {
                continue;
            }
            if entry.exclude {
                veto = veto.max(prefix.len());
            } else if best.is_none_or(|b| prefix.len() > b.segments.len()) {
                best = Some(entry);
            }
        }
        match best {
            Some(entry) if veto < entry.segments.len() => Some(Match {
                capability: &entry.capability,
                api: &entry.text,
            }),
            _ => None,
        }
    }

    /// The capability of a C function name (`connect`), if any.
    pub fn classify_c(&self, name: &str) -> Option<Match<'_>> {
        let (key, entries) = self.c_functions.get_key_value(name)?;
        if entries.iter().any(|(_, exclude)| *exclude) {
            return None;
        }
        entries.first().map(|(capability, _)| Match {
            capability,
            api: key,
        })
    }
}

fn is_capability_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_segments_and_longest_entry() {
        let c = Catalogue::builtin();
        let m = c.classify_path("std::fs::read::inner").unwrap();
        assert_eq!((m.capability, m.api), ("fs.read", "std::fs::read"));
        assert_eq!(
            c.classify_path("std::fs::read_dir").unwrap().api,
            "std::fs::read_dir"
        );
        assert!(c.classify_path("std::fs::File::read").is_none());
        assert!(c.classify_path("std::fs").is_none());
        assert_eq!(
            c.classify_path("std::process::Command::new")
                .unwrap()
                .capability,
            "process.exec"
        );
        assert_eq!(c.classify_c("connect").unwrap().capability, "net.connect");
        assert_eq!(
            c.classify_path("libc::execve").unwrap().capability,
            "process.exec"
        );
        assert!(c.classify_c("memcpy").is_none());
        assert_eq!(
            c.classify_path("std::net::tcp::TcpStream::connect_timeout")
                .unwrap()
                .api,
            "std::net::TcpStream::connect_timeout"
        );
        assert!(
            c.classify_path("std::net::tcpx::TcpStream::connect")
                .is_none()
        );
    }

    #[test]
    fn user_entries_extend_and_exclude() {
        let mut c = Catalogue::builtin();
        c.extend_from_str(
            "[api.\"net.connect\"]\ninclude = [\"mynet::dial\"]\nexclude = [\"reqwest::Url\"]\n[policy]\nx = 1\n",
            "capsule.toml",
        )
        .unwrap();
        assert_eq!(
            c.classify_path("mynet::dial").unwrap().capability,
            "net.connect"
        );
        assert!(c.classify_path("reqwest::Url::parse").is_none());
        assert!(c.classify_path("reqwest::Client::get").is_some());
        // A short exclude does not veto a longer include, for symbols'
        // readings either.
        c.extend_from_str("[api.\"fs.read\"]\nexclude = [\"std::process\"]\n", "x")
            .unwrap();
        assert!(!c.excluded("std::process::Command::new"));
        assert!(c.excluded("std::process::exit"));
        assert!(c.excluded("core::net::socket_addr::SocketAddr::to_socket_addrs"));
    }

    #[test]
    fn bad_catalogues_are_errors_naming_the_file() {
        let mut c = Catalogue::default();
        for bad in [
            "[api.\"Net Connect\"]\ninclude = [\"a::b\"]",
            "[api.\"net.connect\"]\ninclude = [\"a::::b\"]",
            "[api.\"net.connect\"]\nincluded = [\"a::b\"]",
            "[api.\"net.connect\"]\ninclude = \"a::b\"",
            "not toml [",
        ] {
            let error = c.extend_from_str(bad, "x.toml").unwrap_err().to_string();
            assert!(error.contains("x.toml"), "{error}");
        }
    }
}
