//! The CI policy: which capabilities which crates may have, per phase, in
//! the `[policy]` table of `capsule.toml` (the file also holds the scan's
//! `[api.*]` and `[aliases]` tables).
//!
//! ```toml
//! [[policy.deny]]
//! phase = ["build-script", "proc-macro"]
//! capability = ["net.*", "process.exec"]
//! reason = "build-time code must not reach the network or start programs"
//!
//! [[policy.allow]]
//! crate = "cc@1"
//! phase = "build-script"
//! capability = "process.exec"
//! reason = "runs the C compiler"
//! ```
//!
//! Crate specs follow cargo-deny: `name` or `name@version-requirement`
//! (`cc@1`, `cc@^1.2`, `ring@>=0.17, <0.18`); a full version (`ring@0.17.8`)
//! means exactly that version. Capability patterns are a name (`net.connect`),
//! a family (`net.*`) or `*`. A rule without `phase` covers every phase; an
//! allow rule without `crate` covers every crate. An allow rule beats a deny
//! rule; a deny rule holds even for what the baseline already has.

use std::path::Path;

use serde::Deserialize;

use crate::document::DocumentError;
use crate::observe::Phase;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Document(#[from] DocumentError),
    #[error("{path}: at `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    #[serde(rename = "crate", default)]
    krate: Option<String>,
    #[serde(default)]
    phase: Option<OneOrMany<Phase>>,
    capability: OneOrMany<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    #[serde(default)]
    allow: Vec<RuleToml>,
    #[serde(default)]
    deny: Vec<RuleToml>,
}

/// `capsule.toml`: the policy table, next to the scan's tables (read and
/// checked by the scan).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    policy: PolicyToml,
    #[serde(default)]
    #[allow(dead_code)]
    api: Option<toml::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    aliases: Option<toml::Value>,
}

/// `name` or `name@requirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateSpec {
    pub name: String,
    pub version: Option<semver::VersionReq>,
}

impl CrateSpec {
    pub fn parse(text: &str) -> Result<CrateSpec, String> {
        let (name, req) = match text.split_once('@') {
            Some((name, req)) => (name, Some(req)),
            None => (text, None),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "`{text}` is not a crate spec (`name` or `name@version-requirement`, like `cc@1`)"
            ));
        }
        // As in cargo-deny, a bare version is that exact version (`evil@0.1.1`
        // must not allow 0.1.9); anything else is a requirement (`cc@^1`,
        // `cc@>=1, <2`).
        let version = req
            .map(|r| {
                let r = r.trim();
                let exact = semver::Version::parse(r).is_ok();
                let req = if exact {
                    format!("={r}")
                } else {
                    r.to_string()
                };
                semver::VersionReq::parse(&req)
                    .map_err(|e| format!("`{r}` in `{text}` is not a version requirement: {e}"))
            })
            .transpose()?;
        Ok(CrateSpec {
            name: name.to_string(),
            version,
        })
    }

    pub fn matches(&self, name: &str, version: &str) -> bool {
        if self.name != name {
            return false;
        }
        match &self.version {
            None => true,
            Some(req) => semver::Version::parse(version).is_ok_and(|v| req.matches(&v)),
        }
    }
}

/// A capability name, family (`net.*`) or `*`.
fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let body = pattern.strip_suffix(".*").unwrap_or(pattern);
    !body.is_empty()
        && body.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn pattern_matches(pattern: &str, capability: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(family) => capability
            .strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == capability,
    }
}

/// One allow or deny rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub krate: Option<CrateSpec>,
    /// Empty: every phase.
    pub phases: Vec<Phase>,
    pub capabilities: Vec<String>,
    pub reason: Option<String>,
}

impl Rule {
    pub fn matches(&self, name: &str, version: &str, phase: Phase, capability: &str) -> bool {
        self.krate.as_ref().is_none_or(|k| k.matches(name, version))
            && (self.phases.is_empty() || self.phases.contains(&phase))
            && self
                .capabilities
                .iter()
                .any(|p| pattern_matches(p, capability))
    }
}

/// The policy (empty when there is no file or no `[policy]` table).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

impl Policy {
    /// Reads the policy of a `capsule.toml`.
    pub fn read(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| DocumentError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<Policy, PolicyError> {
        let file: FileToml = crate::document::parse(text, name)?;
        let convert = |kind: &str, rules: Vec<RuleToml>| -> Result<Vec<Rule>, PolicyError> {
            rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let invalid = |field: &str, message: String| PolicyError::Invalid {
                        path: name.to_string(),
                        key: format!("policy.{kind}[{i}].{field}"),
                        message,
                    };
                    let krate = r
                        .krate
                        .as_deref()
                        .map(CrateSpec::parse)
                        .transpose()
                        .map_err(|m| invalid("crate", m))?;
                    let capabilities = r.capability.into_vec();
                    if capabilities.is_empty() {
                        return Err(invalid("capability", "names no capability".to_string()));
                    }
                    if let Some(bad) = capabilities.iter().find(|p| !valid_pattern(p)) {
                        return Err(invalid(
                            "capability",
                            format!(
                                "`{bad}` is not a capability pattern (a name like `net.connect`, a family like `net.*`, or `*`)"
                            ),
                        ));
                    }
                    Ok(Rule {
                        krate,
                        phases: r.phase.map(OneOrMany::into_vec).unwrap_or_default(),
                        capabilities,
                        reason: r.reason,
                    })
                })
                .collect()
        };
        Ok(Policy {
            allow: convert("allow", file.policy.allow)?,
            deny: convert("deny", file.policy.deny)?,
        })
    }

    /// The first allow rule covering this capability.
    pub fn allowed_by(
        &self,
        name: &str,
        version: &str,
        phase: Phase,
        capability: &str,
    ) -> Option<&Rule> {
        self.allow
            .iter()
            .find(|r| r.matches(name, version, phase, capability))
    }

    /// The first deny rule covering this capability.
    pub fn denied_by(
        &self,
        name: &str,
        version: &str,
        phase: Phase,
        capability: &str,
    ) -> Option<&Rule> {
        self.deny
            .iter()
            .find(|r| r.matches(name, version, phase, capability))
    }
}

/// The `[[policy.allow]]` entry that accepts one capability of one crate
/// version.
pub fn allow_snippet(name: &str, version: &str, phase: Phase, capability: &str) -> String {
    format!(
        "[[policy.allow]]\ncrate = \"{name}@={version}\"\nphase = \"{}\"\ncapability = \"{capability}\"\nreason = \"TODO: why {name} needs {capability} in its {}\"\n",
        phase.as_str(),
        phase.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[api."net.connect"]
include = ["mylib::dial"]

[[policy.deny]]
phase = ["build-script", "proc-macro"]
capability = ["net.*", "process.exec"]
reason = "no network at build time"

[[policy.allow]]
crate = "cc@1"
phase = "build-script"
capability = "process.exec"
reason = "runs the C compiler"
"#;

    #[test]
    fn allow_beats_deny_and_specs_follow_semver() {
        let policy = Policy::parse(POLICY, "capsule.toml").unwrap();
        let bs = Phase::BuildScript;
        assert!(
            policy
                .allowed_by("cc", "1.2.0", bs, "process.exec")
                .is_some()
        );
        assert!(
            policy
                .allowed_by("cc", "2.0.0", bs, "process.exec")
                .is_none()
        );
        assert!(
            policy
                .allowed_by("cc", "1.2.0", Phase::Runtime, "process.exec")
                .is_none()
        );
        assert!(policy.denied_by("x", "0.1.0", bs, "net.connect").is_some());
        assert!(policy.denied_by("x", "0.1.0", bs, "network").is_none());
        assert!(
            policy
                .denied_by("x", "0.1.0", Phase::Runtime, "net.connect")
                .is_none()
        );
        // The snippet parses back into a rule that allows exactly that.
        let snippet = allow_snippet("evil", "0.1.1", bs, "net.connect");
        let accepted = Policy::parse(&format!("{POLICY}\n{snippet}"), "x").unwrap();
        assert!(
            accepted
                .allowed_by("evil", "0.1.1", bs, "net.connect")
                .is_some()
        );
        assert!(
            accepted
                .allowed_by("evil", "0.1.2", bs, "net.connect")
                .is_none()
        );
    }

    #[test]
    fn malformed_policies_name_the_file_and_the_key() {
        for (text, key) in [
            (
                "[[policy.allow]]\ncrate = \"cc@one\"\ncapability = \"ffi\"\n",
                "policy.allow[0].crate",
            ),
            (
                "[[policy.deny]]\ncapability = \"net*\"\n",
                "policy.deny[0].capability",
            ),
            (
                "[[policy.deny]]\ncapability = []\n",
                "policy.deny[0].capability",
            ),
            (
                "[[policy.deny]]\ncapability = \"ffi\"\nphase = \"link-time\"\n",
                "policy.deny[0].phase",
            ),
            (
                "[[policy.allow]]\ncapability = \"ffi\"\nreasons = \"x\"\n",
                "policy.allow[0]",
            ),
            ("[polcy]\n", ""),
        ] {
            let error = Policy::parse(text, "capsule.toml").unwrap_err().to_string();
            assert!(error.starts_with("capsule.toml"), "{error}");
            assert!(error.contains(key), "{key}: {error}");
        }
    }
}
