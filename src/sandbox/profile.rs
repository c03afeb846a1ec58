//! Sandbox profiles: the TOML files in `sandbox-profiles/`, parsed and
//! validated into a typed [`Profile`].
//!
//! Profiles are data, not code: the three shipped ones are embedded in the
//! binary and selected by name; any other is read from a path. Parsing uses
//! `deny_unknown_fields` so a typo is an error naming the file and the key,
//! and every value is checked here (syscall names, patterns, limits) so the
//! spawn code can trust what it gets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SandboxError;
use super::seccomp::syscall_number;

/// The profiles shipped inside the binary, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "build-script",
        include_str!("../../sandbox-profiles/build-script.toml"),
    ),
    (
        "proc-macro",
        include_str!("../../sandbox-profiles/proc-macro.toml"),
    ),
    ("strict", include_str!("../../sandbox-profiles/strict.toml")),
    (
        "permissive",
        include_str!("../../sandbox-profiles/permissive.toml"),
    ),
];

/// The profile used when none is given.
pub const DEFAULT_PROFILE: &str = "build-script";
/// The profile rustc runs in when none is given.
pub const DEFAULT_RUSTC_PROFILE: &str = "proc-macro";

/// A validated sandbox profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub filesystem: Filesystem,
    pub network: Network,
    pub environment: Environment,
    pub limits: Limits,
    pub seccomp: Seccomp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    pub root: RootMode,
    pub home: HomeMode,
    #[serde(default)]
    pub read_only: Vec<String>,
    #[serde(default)]
    pub writable: Vec<String>,
    #[serde(default)]
    pub hide: Vec<String>,
}

/// How the host root filesystem is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootMode {
    ReadOnly,
    ReadWrite,
}

/// How `$HOME` is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HomeMode {
    /// An empty read-only directory at the same path.
    Empty,
    /// The real home, as the root mode shows it.
    Visible,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub mode: NetMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetMode {
    /// Private network namespace, loopback down.
    None,
    /// Private network namespace, loopback up (the sandbox's own, not the host's).
    Loopback,
    /// The host network.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default)]
    pub allow: Vec<String>,
    /// Keep only the `LD_LIBRARY_PATH` directories holding a library the
    /// build script itself needs (see `sandbox::elf`).
    #[serde(default)]
    pub prune_library_path: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub timeout_secs: u64,
    pub max_processes: u64,
    pub max_file_size_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Where a profile came from, for messages and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSource {
    Builtin(&'static str),
    File(PathBuf),
}

impl std::fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileSource::Builtin(name) => write!(f, "built-in profile `{name}`"),
            ProfileSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Profile {
    /// Resolves `--profile NAME|PATH`: a built-in name, else a file path.
    pub fn resolve(spec: Option<&str>) -> Result<(Profile, ProfileSource), SandboxError> {
        let spec = spec.unwrap_or(DEFAULT_PROFILE);
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == spec) {
            let source = ProfileSource::Builtin(name);
            return Ok((Profile::parse(text, &source)?, source));
        }
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
        if !looks_like_path {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(SandboxError::UnknownProfile {
                name: spec.to_string(),
                known: names.join(", "),
            });
        }
        let path = PathBuf::from(spec);
        let text = std::fs::read_to_string(&path).map_err(|source| SandboxError::ReadProfile {
            path: path.clone(),
            source,
        })?;
        let source = ProfileSource::File(path);
        Ok((Profile::parse(&text, &source)?, source))
    }

    /// Parses and validates profile text.
    pub fn parse(text: &str, source: &ProfileSource) -> Result<Profile, SandboxError> {
        let profile: Profile = toml::from_str(text).map_err(|e| SandboxError::BadProfile {
            file: source.to_string(),
            message: one_line(&e.to_string()),
        })?;
        profile.validate(source)?;
        Ok(profile)
    }

    fn validate(&self, source: &ProfileSource) -> Result<(), SandboxError> {
        let bad = |key: &str, message: String| SandboxError::BadProfile {
            file: source.to_string(),
            message: format!("key `{key}`: {message}"),
        };
        for name in &self.seccomp.deny {
            if syscall_number(name).is_none() {
                return Err(bad(
                    "seccomp.deny",
                    format!("unknown or unsupported syscall `{name}`"),
                ));
            }
        }
        for pattern in &self.environment.allow {
            let body = pattern.strip_suffix('*').unwrap_or(pattern);
            if body.contains('*') || body.contains('=') || (body.is_empty() && pattern != "*") {
                return Err(bad(
                    "environment.allow",
                    format!("`{pattern}` is not a variable name or a prefix ending in `*`"),
                ));
            }
        }
        for (key, list) in [
            ("filesystem.read_only", &self.filesystem.read_only),
            ("filesystem.writable", &self.filesystem.writable),
            ("filesystem.hide", &self.filesystem.hide),
        ] {
            for entry in list {
                let ok = entry.starts_with('/')
                    || ["$HOME", "$CARGO_HOME", "$RUSTUP_HOME"]
                        .iter()
                        .any(|t| entry == t || entry.starts_with(&format!("{t}/")));
                if !ok {
                    return Err(bad(
                        key,
                        format!(
                            "`{entry}` must be absolute or start with $HOME, $CARGO_HOME or $RUSTUP_HOME"
                        ),
                    ));
                }
            }
        }
        if self.limits.timeout_secs == 0 {
            return Err(bad("limits.timeout_secs", "must be at least 1".into()));
        }
        if self.limits.max_processes < 8 {
            return Err(bad(
                "limits.max_processes",
                "must be at least 8 (a shell and a compiler need a few)".into(),
            ));
        }
        if self.limits.max_file_size_mib == 0 {
            return Err(bad("limits.max_file_size_mib", "must be at least 1".into()));
        }
        Ok(())
    }

    /// Whether a variable may pass into the sandbox. Names that look like
    /// credentials pass only when listed exactly or when the profile allows
    /// everything (`"*"`).
    pub fn env_allowed(&self, name: &str) -> bool {
        let allow = &self.environment.allow;
        if allow.iter().any(|p| p == "*" || p == name) {
            return true;
        }
        if looks_like_credential(name) {
            return false;
        }
        allow.iter().any(|p| {
            p.strip_suffix('*')
                .is_some_and(|prefix| name.starts_with(prefix))
        })
    }
}

/// Folds a multi-line parser message (with its source excerpt) into one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with('|') && !l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Heuristic for variable names that carry secrets.
pub fn looks_like_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const PARTS: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE_KEY",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "COOKIE",
    ];
    const SUFFIXES: &[&str] = &["_KEY", "_PAT", "_AUTH", "_PASS", "_PWD"];
    PARTS.iter().any(|p| upper.contains(p))
        || SUFFIXES.iter().any(|s| upper.ends_with(s))
        || upper.starts_with("AUTH")
        // Proxy and registry URLs carry `user:password@` often enough.
        || upper.contains("PROXY")
        || upper.starts_with("CARGO_REGISTRIES_")
        || upper.starts_with("CARGO_REGISTRY_")
}

/// Expands `$HOME`, `$CARGO_HOME` and `$RUSTUP_HOME` in a profile path.
pub fn expand(entry: &str, home: &Path, cargo_home: &Path, rustup_home: &Path) -> PathBuf {
    for (token, value) in [
        ("$CARGO_HOME", cargo_home),
        ("$RUSTUP_HOME", rustup_home),
        ("$HOME", home),
    ] {
        if entry == token {
            return value.to_path_buf();
        }
        if let Some(rest) = entry.strip_prefix(token).and_then(|r| r.strip_prefix('/')) {
            return value.join(rest);
        }
    }
    PathBuf::from(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN {
            Profile::resolve(Some(name)).unwrap();
        }
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let (profile, _) = Profile::resolve(None).unwrap();
        let mut text = toml::to_string(&profile).unwrap();
        text = text.replace("[limits]", "[limits]\nbogus_limit = 3");
        let err = Profile::parse(&text, &ProfileSource::File("p.toml".into())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("p.toml") && msg.contains("bogus_limit"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        let (profile, _) = Profile::resolve(None).unwrap();
        let text = toml::to_string(&profile)
            .unwrap()
            .replace("\"ptrace\"", "\"not_a_syscall\"");
        let msg = Profile::parse(&text, &ProfileSource::Builtin("x"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("seccomp.deny") && msg.contains("not_a_syscall"),
            "{msg}"
        );
        let text = toml::to_string(&profile)
            .unwrap()
            .replace("timeout_secs = 900", "timeout_secs = 0");
        let msg = Profile::parse(&text, &ProfileSource::Builtin("x"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("limits.timeout_secs"), "{msg}");
    }

    #[test]
    fn unknown_profile_name() {
        let msg = Profile::resolve(Some("nope")).unwrap_err().to_string();
        assert!(
            msg.contains("nope") && msg.contains("build-script"),
            "{msg}"
        );
    }

    #[test]
    fn credentials_are_withheld() {
        let (profile, _) = Profile::resolve(None).unwrap();
        assert!(profile.env_allowed("CC"));
        assert!(profile.env_allowed("PKG_CONFIG_PATH"));
        assert!(!profile.env_allowed("GITHUB_TOKEN"));
        assert!(!profile.env_allowed("AWS_SECRET_ACCESS_KEY"));
        assert!(!profile.env_allowed("PKG_CONFIG_TOKEN"));
        assert!(!profile.env_allowed("NPM_AUTH"));
        assert!(!profile.env_allowed("CARGO_HTTP_PROXY"));
        assert!(!profile.env_allowed("CARGO_REGISTRIES_MINE_INDEX"));
        assert!(!super::looks_like_credential("CARGO_PKG_AUTHORS"));
        let (permissive, _) = Profile::resolve(Some("permissive")).unwrap();
        assert!(permissive.env_allowed("GITHUB_TOKEN"));
    }

    #[test]
    fn expands_tokens() {
        let p = expand(
            "$CARGO_HOME/registry",
            Path::new("/h"),
            Path::new("/c"),
            Path::new("/r"),
        );
        assert_eq!(p, Path::new("/c/registry"));
        assert_eq!(
            expand("$HOME", Path::new("/h"), Path::new("/c"), Path::new("/r")),
            Path::new("/h")
        );
    }
}
