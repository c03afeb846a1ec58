//! The CI gate: the current manifest against the committed baseline and the
//! policy, as findings with stable kebab-case rule ids.
//!
//! - `capability-gained` (error): a crate has a capability (phase,
//!   capability, target) its baseline entry lacks and no allow rule covers.
//!   A new crate gains everything it has.
//! - `capability-denied` (error): a deny rule covers a capability and no
//!   allow rule does, baseline or not.
//! - `capability-allowed` (note): gained, but an allow rule covers it.
//! - `capability-lost` (note): the baseline had it, the crate no longer does.
//! - `crate-added` / `crate-removed` (note): dependency changes, with who
//!   pulled the crate in.
//! - `checksum-changed` (error): the same version from the same source has
//!   another checksum (a republished or tampered package).
//! - `unscanned-new` (error): a part the scan could not read that the
//!   baseline entry did not have (code moved out of the scan's sight).
//! - `unscanned` (warning): a part of a crate the scan could not read.
//! - `source-changed` (warning): the crate comes from another source.
//!
//! Findings are grouped per crate, phase and capability; each target is
//! evidence.

pub mod sarif;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::Manifest;
use crate::manifest::diff::{self, Change, Entry, NoteKind};
use crate::observe::Phase;
use crate::policy::{Policy, allow_snippet};

/// Version of the JSON output of `check`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    CapabilityGained,
    CapabilityDenied,
    ChecksumChanged,
    UnscannedNew,
    Unscanned,
    SourceChanged,
    CapabilityAllowed,
    CapabilityLost,
    CrateAdded,
    CrateRemoved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

impl RuleId {
    pub const ALL: [RuleId; 10] = [
        RuleId::CapabilityGained,
        RuleId::CapabilityDenied,
        RuleId::ChecksumChanged,
        RuleId::UnscannedNew,
        RuleId::Unscanned,
        RuleId::SourceChanged,
        RuleId::CapabilityAllowed,
        RuleId::CapabilityLost,
        RuleId::CrateAdded,
        RuleId::CrateRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::CapabilityGained => "capability-gained",
            RuleId::CapabilityDenied => "capability-denied",
            RuleId::Unscanned => "unscanned",
            RuleId::ChecksumChanged => "checksum-changed",
            RuleId::UnscannedNew => "unscanned-new",
            RuleId::SourceChanged => "source-changed",
            RuleId::CapabilityAllowed => "capability-allowed",
            RuleId::CapabilityLost => "capability-lost",
            RuleId::CrateAdded => "crate-added",
            RuleId::CrateRemoved => "crate-removed",
        }
    }

    pub fn level(self) -> Level {
        match self {
            RuleId::CapabilityGained
            | RuleId::CapabilityDenied
            | RuleId::ChecksumChanged
            | RuleId::UnscannedNew => Level::Error,
            RuleId::Unscanned | RuleId::SourceChanged => Level::Warning,
            _ => Level::Note,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            RuleId::ChecksumChanged => {
                "The same version from the same source has another checksum than in the baseline."
            }
            RuleId::UnscannedNew => {
                "A part of a crate could not be scanned, and the baseline could scan it."
            }
            RuleId::SourceChanged => "A crate comes from another source than in the baseline.",
            RuleId::CapabilityGained => {
                "A crate gained a capability that neither the baseline nor the policy allows."
            }
            RuleId::CapabilityDenied => {
                "A crate has a capability that a deny rule of the policy forbids."
            }
            RuleId::Unscanned => {
                "A part of a crate could not be scanned; it is not known to be clean."
            }
            RuleId::CapabilityAllowed => {
                "A crate gained a capability that an allow rule of the policy accepts."
            }
            RuleId::CapabilityLost => "A crate no longer has a capability the baseline records.",
            RuleId::CrateAdded => "A crate is new in the dependency graph.",
            RuleId::CrateRemoved => "A crate left the dependency graph.",
        }
    }
}

/// One finding of the gate.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub level: Level,
    #[serde(rename = "crate")]
    pub krate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// Each target of the capability, with its methods and evidence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pulled_in_by: Vec<String>,
    /// The reason of the policy rule that decided, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub message: String,
    /// What to add to `capsule.toml` to accept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl Finding {
    /// The version the finding is about (the new one when there is one).
    pub fn version(&self) -> &str {
        self.new_version
            .as_deref()
            .or(self.old_version.as_deref())
            .unwrap_or("")
    }
}

/// The gate's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub schema_version: u32,
    pub passed: bool,
    /// Baseline and policy files, as given (for the reader).
    pub baseline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub findings: Vec<Finding>,
}

fn versions(c: &diff::CrateDiff) -> String {
    match (&c.old_version, &c.new_version) {
        (Some(o), Some(n)) if o != n => format!("{} {o} → {n}", c.name),
        (None, Some(n)) => format!("{} {n} (new)", c.name),
        (_, Some(n)) => format!("{} {n}", c.name),
        (Some(o), None) => format!("{} {o}", c.name),
        (None, None) => c.name.clone(),
    }
}

/// Groups entries by (phase, capability).
fn by_capability(entries: &[Entry]) -> BTreeMap<(Phase, String), Vec<Entry>> {
    let mut out: BTreeMap<(Phase, String), Vec<Entry>> = BTreeMap::new();
    for e in entries {
        out.entry((e.phase, e.capability.clone()))
            .or_default()
            .push(e.clone());
    }
    out
}

/// Compares the current manifest with the baseline under the policy.
pub fn evaluate(
    baseline: &Manifest,
    current: &Manifest,
    policy: &Policy,
    baseline_name: &str,
    policy_name: Option<&str>,
) -> Outcome {
    let d = diff::diff(baseline, current);
    let mut findings = Vec::new();
    let base = |c: &diff::CrateDiff, rule: RuleId, message: String| Finding {
        rule,
        level: rule.level(),
        krate: c.name.clone(),
        old_version: c.old_version.clone(),
        new_version: c.new_version.clone(),
        phase: None,
        capability: None,
        evidence: Vec::new(),
        pulled_in_by: c.pulled_in_by.clone(),
        reason: None,
        message,
        snippet: None,
    };
    // Gained and lost capabilities, and dependency changes.
    for c in &d.crates {
        match c.change {
            Change::Added => {
                let who = if c.pulled_in_by.is_empty() {
                    String::new()
                } else {
                    format!(", pulled in by {}", c.pulled_in_by.join(", "))
                };
                findings.push(base(
                    c,
                    RuleId::CrateAdded,
                    format!(
                        "{} {} is a new dependency{who}",
                        c.name,
                        c.new_version.as_deref().unwrap_or("")
                    ),
                ));
            }
            Change::Removed => findings.push(base(
                c,
                RuleId::CrateRemoved,
                format!(
                    "{} {} is no longer a dependency",
                    c.name,
                    c.old_version.as_deref().unwrap_or("")
                ),
            )),
            _ => {}
        }
        for note in &c.notes {
            let rule = match note.kind {
                NoteKind::ChecksumChanged => RuleId::ChecksumChanged,
                NoteKind::SourceChanged => RuleId::SourceChanged,
                // A new crate's unscanned parts are reported as `unscanned`.
                NoteKind::Unscanned if c.change != Change::Added => RuleId::UnscannedNew,
                _ => continue,
            };
            findings.push(base(c, rule, format!("{}: {}", versions(c), note.line())));
        }
        let version = c
            .new_version
            .clone()
            .or_else(|| c.old_version.clone())
            .unwrap_or_default();
        for ((phase, capability), entries) in by_capability(&c.gained) {
            let allowed = policy.allowed_by(&c.name, &version, phase, &capability);
            let denied = policy.denied_by(&c.name, &version, phase, &capability);
            if allowed.is_none() && denied.is_some() {
                // Reported below, with every denied capability.
                continue;
            }
            let targets: Vec<&str> = entries.iter().map(|e| e.target.as_str()).collect();
            let (rule, message, snippet, reason) = match allowed {
                Some(rule) => (
                    RuleId::CapabilityAllowed,
                    format!(
                        "{} gained {capability} in its {}, allowed by the policy: {}",
                        versions(c),
                        phase.as_str(),
                        targets.join(", ")
                    ),
                    None,
                    rule.reason.clone(),
                ),
                None => (
                    RuleId::CapabilityGained,
                    format!(
                        "{} gained {capability} in its {}: {}",
                        versions(c),
                        phase.as_str(),
                        targets.join(", ")
                    ),
                    Some(allow_snippet(&c.name, &version, phase, &capability)),
                    None,
                ),
            };
            findings.push(Finding {
                phase: Some(phase),
                capability: Some(capability.clone()),
                evidence: entries,
                reason,
                snippet,
                ..base(c, rule, message)
            });
        }
        for ((phase, capability), entries) in by_capability(&c.lost) {
            let targets: Vec<&str> = entries.iter().map(|e| e.target.as_str()).collect();
            findings.push(Finding {
                phase: Some(phase),
                capability: Some(capability.clone()),
                evidence: entries.clone(),
                ..base(
                    c,
                    RuleId::CapabilityLost,
                    format!(
                        "{} no longer has {capability} in its {}: {}",
                        versions(c),
                        phase.as_str(),
                        targets.join(", ")
                    ),
                )
            });
        }
    }
    // Denied capabilities, whether new or not; unscanned parts.
    let changes: BTreeMap<(&str, &str), &diff::CrateDiff> = d
        .crates
        .iter()
        .filter_map(|c| Some(((c.name.as_str(), c.new_version.as_deref()?), c)))
        .collect();
    for krate in &current.crates {
        let unchanged = diff::CrateDiff {
            name: krate.name.clone(),
            change: Change::Unchanged,
            old_version: Some(krate.version.clone()),
            new_version: Some(krate.version.clone()),
            pulled_in_by: Vec::new(),
            gained: Vec::new(),
            lost: Vec::new(),
            notes: Vec::new(),
        };
        let c = changes
            .get(&(krate.name.as_str(), krate.version.as_str()))
            .copied()
            .unwrap_or(&unchanged);
        let entries: Vec<Entry> = diff::entries(krate).into_values().collect();
        for ((phase, capability), entries) in by_capability(&entries) {
            if policy
                .allowed_by(&krate.name, &krate.version, phase, &capability)
                .is_some()
            {
                continue;
            }
            let Some(rule) = policy.denied_by(&krate.name, &krate.version, phase, &capability)
            else {
                continue;
            };
            let targets: Vec<&str> = entries.iter().map(|e| e.target.as_str()).collect();
            findings.push(Finding {
                phase: Some(phase),
                capability: Some(capability.clone()),
                evidence: entries.clone(),
                reason: rule.reason.clone(),
                snippet: Some(allow_snippet(
                    &krate.name,
                    &krate.version,
                    phase,
                    &capability,
                )),
                ..base(
                    c,
                    RuleId::CapabilityDenied,
                    format!(
                        "{} has {capability} in its {}, which the policy denies: {}",
                        versions(c),
                        phase.as_str(),
                        targets.join(", ")
                    ),
                )
            });
        }
        for part in &krate.unscanned {
            // Already reported as `unscanned-new`.
            if c.change != Change::Added
                && c.notes
                    .iter()
                    .any(|n| n.kind == NoteKind::Unscanned && n.text == *part)
            {
                continue;
            }
            findings.push(base(
                c,
                RuleId::Unscanned,
                format!("{} {}: {part}", krate.name, krate.version),
            ));
        }
    }
    findings.sort_by(|a, b| {
        (
            a.level,
            a.rule,
            &a.krate,
            a.version(),
            a.phase,
            &a.capability,
            &a.message,
        )
            .cmp(&(
                b.level,
                b.rule,
                &b.krate,
                b.version(),
                b.phase,
                &b.capability,
                &b.message,
            ))
    });
    Outcome {
        schema_version: SCHEMA_VERSION,
        passed: !findings.iter().any(|f| f.level == Level::Error),
        baseline: baseline_name.to_string(),
        policy: policy_name.map(str::to_string),
        findings,
    }
}

impl Outcome {
    /// The human rendering: errors with the evidence and the snippet that
    /// accepts them, then warnings and notes, then a summary line.
    pub fn render(&self) -> String {
        let clean = crate::report::human::clean;
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!(
                "{}[{}]: {}\n",
                f.level.as_str(),
                f.rule.as_str(),
                clean(&f.message)
            ));
            if f.level == Level::Error {
                for e in &f.evidence {
                    out.push_str(&format!("  {}\n", diff::describe(e)));
                }
                if let Some(reason) = &f.reason {
                    out.push_str(&format!("  policy reason: {}\n", clean(reason)));
                }
                if let Some(snippet) = &f.snippet {
                    out.push_str("  to accept it, add to capsule.toml:\n");
                    for line in snippet.lines() {
                        out.push_str(&format!("    {}\n", clean(line)));
                    }
                }
            }
        }
        let count = |level| self.findings.iter().filter(|f| f.level == level).count();
        let errors = count(Level::Error);
        out.push_str(&format!(
            "check {}: {errors} error(s), {} warning(s), {} note(s) against {}{}\n",
            if self.passed { "passed" } else { "failed" },
            count(Level::Warning),
            count(Level::Note),
            self.baseline,
            self.policy
                .as_deref()
                .map(|p| format!(" and {p}"))
                .unwrap_or_default(),
        ));
        if self
            .findings
            .iter()
            .any(|f| f.rule == RuleId::CapabilityGained)
        {
            out.push_str(
                "to accept every gained capability as the new baseline, run `cargo capsule check --bless`\n",
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("check outcome serialises");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::CrateManifest;

    fn krate(version: &str, checksum: &str, unscanned: &[&str]) -> CrateManifest {
        CrateManifest {
            name: "foo".into(),
            version: version.into(),
            source: "registry+https://github.com/rust-lang/crates.io-index".into(),
            checksum: Some(checksum.into()),
            vcs_commit: None,
            capabilities: BTreeMap::new(),
            dependencies: Vec::new(),
            unscanned: unscanned.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn manifest(c: CrateManifest) -> Manifest {
        Manifest {
            schema_version: crate::manifest::SCHEMA_VERSION,
            crates: vec![c],
        }
    }

    fn rules(outcome: &Outcome) -> Vec<&'static str> {
        outcome.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn a_republished_version_and_newly_unscanned_code_fail_the_check() {
        let policy = Policy::default();
        let base = manifest(krate("1.0.0", "aa", &["source: old.rs: too big"]));
        let republished = manifest(krate("1.0.0", "bb", &["source: old.rs: too big"]));
        let outcome = evaluate(&base, &republished, &policy, "capsule.lock", None);
        assert_eq!(rules(&outcome), ["checksum-changed", "unscanned"]);
        assert!(!outcome.passed);
        let hidden = manifest(krate(
            "1.0.1",
            "cc",
            &["source: old.rs: too big", "source: src/net.rs: over 16 MiB"],
        ));
        let outcome = evaluate(&base, &hidden, &policy, "capsule.lock", None);
        assert_eq!(rules(&outcome), ["unscanned-new", "unscanned"]);
        assert!(!outcome.passed);
        assert!(evaluate(&base, &base, &policy, "capsule.lock", None).passed);
    }
}
