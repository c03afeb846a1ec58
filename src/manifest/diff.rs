//! Comparing two manifests: per crate, the capabilities gained and lost.
//!
//! Crates are matched by name, so `serde 1.0.1 → 1.0.2` is one crate whose
//! version changed. When a name has several versions (syn 1 and syn 2),
//! equal versions pair first, then semver-compatible ones, then a lone
//! leftover on each side. Whatever is left is added or removed, and says
//! which crates depend on it.
//!
//! A capability is `(phase, capability, target)`: the methods that found it
//! (traced, symbol, source, blob), their outcomes and evidence describe it
//! but are not part of it, so a call moving from line 12 to line 14 is no
//! change, while a build script connecting to a new address is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{CrateManifest, Manifest};
use crate::observe::{Method, Outcome, Phase};

/// One capability of one crate, with everything that found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub phase: Phase,
    pub capability: String,
    pub target: String,
    pub methods: Vec<Method>,
    pub outcomes: Vec<Outcome>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, Vec<String>>,
}

impl Entry {
    /// Whether a static method found it (it then has file:line or symbol
    /// evidence).
    pub fn is_static(&self) -> bool {
        self.methods.iter().any(|m| *m != Method::Traced)
    }
}

/// What happened to a crate between the two manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Added,
    Removed,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateDiff {
    pub name: String,
    pub change: Change,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// Added crate: who depends on it in the new manifest; removed crate:
    /// who depended on it in the old one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pulled_in_by: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gained: Vec<Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<Entry>,
    /// Other facts that changed: source, checksum, VCS commit, parts the
    /// scan could not read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// What a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    SourceChanged,
    /// The same version from the same source has another checksum.
    ChecksumChanged,
    /// The new version does not say which commit it was published from.
    NoVcsCommit,
    /// A part the scan could not read (new to this crate).
    Unscanned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    /// The message; for `unscanned`, the part as the manifest lists it.
    pub text: String,
}

impl Note {
    fn new(kind: NoteKind, text: String) -> Note {
        Note { kind, text }
    }

    /// The note as one line of text.
    pub fn line(&self) -> String {
        match self.kind {
            NoteKind::Unscanned => format!("unscanned: {}", self.text),
            _ => self.text.clone(),
        }
    }
}

impl CrateDiff {
    /// `name 1.0 → 1.1`, `name 1.0 (new)`, ...
    pub fn title(&self) -> String {
        let old = self.old_version.as_deref().unwrap_or("");
        let new = self.new_version.as_deref().unwrap_or("");
        match self.change {
            Change::Added => format!("{} {new} (new)", self.name),
            Change::Removed => format!("{} {old} (removed)", self.name),
            Change::Updated => format!("{} {old} → {new}", self.name),
            Change::Unchanged => format!("{} {new}", self.name),
        }
    }

    fn is_empty(&self) -> bool {
        self.change == Change::Unchanged
            && self.gained.is_empty()
            && self.lost.is_empty()
            && self.notes.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// Crates with any difference, by name then versions.
    pub crates: Vec<CrateDiff>,
}

impl Diff {
    /// Whether capabilities changed: gained or lost, or crates added or
    /// removed (a version change alone is not).
    pub fn has_changes(&self) -> bool {
        self.crates.iter().any(|c| {
            matches!(c.change, Change::Added | Change::Removed)
                || !c.gained.is_empty()
                || !c.lost.is_empty()
        })
    }

    /// The human rendering (used by `cargo capsule diff`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.crates.is_empty() {
            out.push_str("no capability changes\n");
            return out;
        }
        for c in &self.crates {
            out.push_str(&crate::report::human::clean(&c.title()));
            if !c.pulled_in_by.is_empty() {
                let who = if c.change == Change::Removed {
                    "was pulled in by"
                } else {
                    "pulled in by"
                };
                out.push_str(&format!(", {who} {}", c.pulled_in_by.join(", ")));
            }
            out.push('\n');
            for (sign, list) in [("+", &c.gained), ("-", &c.lost)] {
                for e in list {
                    out.push_str(&format!("  {sign} {}\n", describe(e)));
                }
            }
            for note in &c.notes {
                out.push_str(&format!(
                    "  note: {}\n",
                    crate::report::human::clean(&note.line())
                ));
            }
        }
        let count = |f: &dyn Fn(&CrateDiff) -> bool| self.crates.iter().filter(|c| f(c)).count();
        let gained: usize = self.crates.iter().map(|c| c.gained.len()).sum();
        let lost: usize = self.crates.iter().map(|c| c.lost.len()).sum();
        out.push_str(&format!(
            "{} updated, {} added, {} removed; {gained} capabilities gained, {lost} lost\n",
            count(&|c| c.change == Change::Updated),
            count(&|c| c.change == Change::Added),
            count(&|c| c.change == Change::Removed),
        ));
        out
    }
}

/// `build-script net.connect 127.0.0.1:47999 (traced, denied; errno ECONNREFUSED)`.
pub fn describe(e: &Entry) -> String {
    let methods: Vec<&str> = e.methods.iter().map(|m| m.as_str()).collect();
    let outcomes: Vec<&str> = e.outcomes.iter().map(|o| o.as_str()).collect();
    let mut text = format!(
        "{} {} {} ({}, {}",
        e.phase.as_str(),
        e.capability,
        e.target,
        methods.join("+"),
        outcomes.join("+")
    );
    let evidence: Vec<String> = e
        .evidence
        .iter()
        .map(|(k, v)| format!("{k} {}", v.join(", ")))
        .collect();
    if !evidence.is_empty() {
        text.push_str("; ");
        text.push_str(&evidence.join("; "));
    }
    text.push(')');
    crate::report::human::clean(&text)
}

/// A crate's capabilities as entries keyed by `(phase, capability, target)`.
pub fn entries(c: &CrateManifest) -> BTreeMap<(Phase, String, String), Entry> {
    let mut out: BTreeMap<(Phase, String, String), Entry> = BTreeMap::new();
    for (phase, list) in &c.capabilities {
        for cap in list {
            let entry = out
                .entry((*phase, cap.capability.clone(), cap.target.clone()))
                .or_insert_with(|| Entry {
                    phase: *phase,
                    capability: cap.capability.clone(),
                    target: cap.target.clone(),
                    methods: Vec::new(),
                    outcomes: Vec::new(),
                    evidence: BTreeMap::new(),
                });
            entry.methods.push(cap.method);
            entry.outcomes.push(cap.outcome);
            for (key, values) in &cap.evidence {
                entry
                    .evidence
                    .entry(key.clone())
                    .or_default()
                    .extend(values.iter().cloned());
            }
        }
    }
    for entry in out.values_mut() {
        entry.methods.sort();
        entry.methods.dedup();
        entry.outcomes.sort();
        entry.outcomes.dedup();
        for values in entry.evidence.values_mut() {
            values.sort();
            values.dedup();
        }
    }
    out
}

/// Pairs the versions of one crate name: `(old, new)` with either side
/// possibly absent.
fn pair<'a>(
    old: &[&'a CrateManifest],
    new: &[&'a CrateManifest],
) -> Vec<(Option<&'a CrateManifest>, Option<&'a CrateManifest>)> {
    let mut old: Vec<&CrateManifest> = old.to_vec();
    let mut new: Vec<&CrateManifest> = new.to_vec();
    let mut pairs = Vec::new();
    // Equal versions from the same source, then equal versions.
    new.retain(|n| {
        match old
            .iter()
            .position(|o| o.version == n.version && o.source == n.source)
        {
            Some(at) => {
                pairs.push((Some(old.remove(at)), Some(*n)));
                false
            }
            None => true,
        }
    });
    new.retain(|n| match old.iter().position(|o| o.version == n.version) {
        Some(at) => {
            pairs.push((Some(old.remove(at)), Some(*n)));
            false
        }
        None => true,
    });
    // Semver-compatible versions, as cargo reads them (same major; same
    // 0.minor; 0.0.patch only with itself).
    let class = |v: &str| {
        semver::Version::parse(v)
            .ok()
            .map(|v| match (v.major, v.minor) {
                (0, 0) => (0, 0, v.patch),
                (0, minor) => (0, minor, 0),
                (major, _) => (major, 0, 0),
            })
    };
    new.retain(|n| {
        let c = class(&n.version);
        match old
            .iter()
            .position(|o| c.is_some() && class(&o.version) == c)
        {
            Some(at) => {
                pairs.push((Some(old.remove(at)), Some(*n)));
                false
            }
            None => true,
        }
    });
    if old.len() == 1 && new.len() == 1 {
        pairs.push((Some(old.remove(0)), Some(new.remove(0))));
    }
    pairs.extend(old.into_iter().map(|o| (Some(o), None)));
    pairs.extend(new.into_iter().map(|n| (None, Some(n))));
    pairs
}

/// Who depends on `name version` in a manifest.
fn dependents(manifest: &Manifest, name: &str, version: &str) -> Vec<String> {
    let wanted = format!("{name} {version}");
    let mut out: Vec<String> = manifest
        .crates
        .iter()
        .filter(|c| c.dependencies.contains(&wanted))
        .map(|c| format!("{} {}", c.name, c.version))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Compares two manifests.
pub fn diff(old: &Manifest, new: &Manifest) -> Diff {
    let old_names = old.by_name();
    let new_names = new.by_name();
    let names: BTreeSet<&str> = old_names.keys().chain(new_names.keys()).copied().collect();
    let mut crates = Vec::new();
    for name in names {
        let empty = Vec::new();
        let pairs = pair(
            old_names.get(name).unwrap_or(&empty),
            new_names.get(name).unwrap_or(&empty),
        );
        for (o, n) in pairs {
            let before = o.map(entries).unwrap_or_default();
            let after = n.map(entries).unwrap_or_default();
            let change = match (o, n) {
                (None, _) => Change::Added,
                (_, None) => Change::Removed,
                (Some(o), Some(n)) if o.version != n.version => Change::Updated,
                _ => Change::Unchanged,
            };
            let pulled_in_by = match (o, n) {
                (None, Some(n)) => dependents(new, &n.name, &n.version),
                (Some(o), None) => dependents(old, &o.name, &o.version),
                _ => Vec::new(),
            };
            let mut notes = Vec::new();
            if let (Some(o), Some(n)) = (o, n) {
                if o.source != n.source {
                    notes.push(Note::new(
                        NoteKind::SourceChanged,
                        format!("source changed: {} → {}", o.source, n.source),
                    ));
                }
                if o.version == n.version && o.source == n.source && o.checksum != n.checksum {
                    notes.push(Note::new(
                        NoteKind::ChecksumChanged,
                        format!(
                            "checksum changed for the same version: {} → {}",
                            o.checksum.as_deref().unwrap_or("none"),
                            n.checksum.as_deref().unwrap_or("none")
                        ),
                    ));
                }
                if o.vcs_commit.is_some() && n.vcs_commit.is_none() && o.version != n.version {
                    notes.push(Note::new(
                        NoteKind::NoVcsCommit,
                        "the new version does not say which commit it was published from"
                            .to_string(),
                    ));
                }
                for u in n.unscanned.iter().filter(|u| !o.unscanned.contains(u)) {
                    notes.push(Note::new(NoteKind::Unscanned, u.clone()));
                }
            } else if let Some(n) = n {
                notes.extend(
                    n.unscanned
                        .iter()
                        .map(|u| Note::new(NoteKind::Unscanned, u.clone())),
                );
            }
            let diff = CrateDiff {
                name: name.to_string(),
                change,
                old_version: o.map(|c| c.version.clone()),
                new_version: n.map(|c| c.version.clone()),
                pulled_in_by,
                gained: after
                    .iter()
                    .filter(|(k, _)| !before.contains_key(*k))
                    .map(|(_, e)| e.clone())
                    .collect(),
                lost: before
                    .iter()
                    .filter(|(k, _)| !after.contains_key(*k))
                    .map(|(_, e)| e.clone())
                    .collect(),
                notes,
            };
            if !diff.is_empty() {
                crates.push(diff);
            }
        }
    }
    crates.sort_by(|a, b| {
        (&a.name, &a.old_version, &a.new_version).cmp(&(&b.name, &b.old_version, &b.new_version))
    });
    Diff { crates }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Capability;

    fn krate(name: &str, version: &str, caps: &[(Phase, &str, &str, Method)]) -> CrateManifest {
        let mut capabilities: BTreeMap<Phase, Vec<Capability>> = BTreeMap::new();
        for (phase, capability, target, method) in caps {
            capabilities.entry(*phase).or_default().push(Capability {
                capability: capability.to_string(),
                target: target.to_string(),
                method: *method,
                outcome: Outcome::Possible,
                evidence: BTreeMap::from([(
                    "location".to_string(),
                    vec![format!("src/lib.rs:{}", version.len())],
                )]),
            });
        }
        CrateManifest {
            name: name.into(),
            version: version.into(),
            source: "registry+https://github.com/rust-lang/crates.io-index".into(),
            checksum: None,
            vcs_commit: None,
            capabilities,
            dependencies: Vec::new(),
            unscanned: Vec::new(),
        }
    }

    fn manifest(crates: Vec<CrateManifest>) -> Manifest {
        Manifest {
            schema_version: super::super::SCHEMA_VERSION,
            crates,
        }
    }

    #[test]
    fn versions_pair_by_name_and_new_crates_say_who_pulled_them_in() {
        let read = (Phase::Runtime, "fs.read", "std::fs::read", Method::Source);
        let connect = (
            Phase::BuildScript,
            "net.connect",
            "127.0.0.1:1",
            Method::Traced,
        );
        let old = manifest(vec![
            krate("serde", "1.0.1", &[read]),
            krate("syn", "1.0.109", &[]),
            krate("syn", "2.0.1", &[]),
            krate("gone", "0.1.0", &[read]),
        ]);
        let mut serde = krate("serde", "1.0.2", &[read, connect]);
        serde.dependencies = vec!["evil 0.1.0".into()];
        let new = manifest(vec![
            serde,
            krate("syn", "1.0.109", &[]),
            krate("syn", "2.0.2", &[]),
            krate("evil", "0.1.0", &[connect]),
        ]);
        let d = diff(&old, &new);
        let titles: Vec<String> = d.crates.iter().map(CrateDiff::title).collect();
        assert_eq!(
            titles,
            [
                "evil 0.1.0 (new)",
                "gone 0.1.0 (removed)",
                "serde 1.0.1 → 1.0.2",
                "syn 2.0.1 → 2.0.2"
            ]
        );
        assert_eq!(d.crates[0].pulled_in_by, ["serde 1.0.2"]);
        assert_eq!(d.crates[0].gained.len(), 1);
        // The moved line (evidence) is no change; the connection is.
        let serde = &d.crates[2];
        assert_eq!(serde.gained.len(), 1);
        assert_eq!(serde.gained[0].target, "127.0.0.1:1");
        assert!(serde.lost.is_empty());
        assert_eq!(d.crates[1].lost.len(), 1);
        assert!(d.has_changes());
        assert!(!diff(&old, &old).has_changes());
        assert_eq!(diff(&old, &old).render(), "no capability changes\n");
        let text = d.render();
        assert!(
            text.contains("evil 0.1.0 (new), pulled in by serde 1.0.2\n  + build-script net.connect 127.0.0.1:1 (traced, possible; location src/lib.rs:5)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_version_bump_alone_is_listed_but_is_no_change() {
        let old = manifest(vec![krate("a", "1.0.0", &[])]);
        let new = manifest(vec![krate("a", "1.0.1", &[])]);
        let d = diff(&old, &new);
        assert_eq!(d.crates.len(), 1);
        assert!(!d.has_changes());
    }
}
