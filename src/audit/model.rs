//! The audit report: per crate of the audited tree, its roles (build
//! script, proc macro), how it got into the tree, a summary badge per phase
//! ("build script: ran cc; no network", "build script: tried to connect to
//! 1.2.3.4:443 — denied") with the evidence behind it, and which crate
//! brings which capability. Built from a capability manifest, so a cached
//! audit and a fresh one give the same report.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::manifest::diff::{self, Diff, Entry};
use crate::manifest::{CrateManifest, Manifest};
use crate::observe::{Method, Outcome, Phase};

/// Version of the audit report's JSON; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// How much a badge asks for attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Nothing beyond compiling itself.
    Quiet,
    /// Did or can do something worth reading (ran a program, can open files).
    Notice,
    /// Reached for the network, for secrets, or was stopped by the sandbox.
    Alert,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Quiet => "quiet",
            Level::Notice => "notice",
            Level::Alert => "alert",
        }
    }
}

/// One summary line of a crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Badge {
    pub level: Level,
    pub text: String,
}

/// The crate that was audited, as cargo resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub name: String,
    pub version: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Subject {
    pub fn title(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

/// One crate of the audited tree.
#[derive(Debug, Clone, Serialize)]
pub struct CrateAudit {
    pub name: String,
    pub version: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// How it got into the tree: the audited crate first, this one last.
    pub via: Vec<String>,
    pub build_script: bool,
    pub proc_macro: bool,
    /// Crates of the tree that depend on it (`name version`).
    pub used_by: Vec<String>,
    pub badges: Vec<Badge>,
    /// Everything recorded and found, the evidence behind the badges.
    pub capabilities: Vec<Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unscanned: Vec<String>,
}

impl CrateAudit {
    pub fn title(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Who brought it in: `widget 1.0.1 → widget-derive 0.1.0` (None for
    /// the audited crate).
    pub fn brought_in_by(&self) -> Option<String> {
        (self.via.len() > 1).then(|| self.via[..self.via.len() - 1].join(" → "))
    }

    /// The most urgent badge's level.
    pub fn level(&self) -> Level {
        self.badges
            .iter()
            .map(|b| b.level)
            .max()
            .unwrap_or(Level::Quiet)
    }
}

/// Which crates bring a capability into the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Bringer {
    pub capability: String,
    /// `name version (phase)`, with how it got in.
    pub crates: Vec<BroughtBy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BroughtBy {
    pub name: String,
    pub version: String,
    pub phases: Vec<Phase>,
    pub via: Vec<String>,
}

/// One audited version: its tree and who brings what.
#[derive(Debug, Clone, Serialize)]
pub struct Tree {
    pub subject: Subject,
    pub crates: Vec<CrateAudit>,
    pub capabilities: Vec<Bringer>,
}

/// The comparison with an earlier version.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Comparison {
    /// Nothing compared, and why (a first release, a git or path source).
    NotCompared { reason: String },
    /// The earlier version could not be audited.
    Failed { against: String, reason: String },
    Compared {
        /// Why this version: `previous published version` or `--against`.
        chosen: String,
        old: Box<Tree>,
        diff: Diff,
    },
}

/// The whole report (`--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub schema_version: u32,
    /// The request as given (`widget@1.0.1`).
    pub request: String,
    pub features: Vec<String>,
    pub default_features: bool,
    /// The sandbox profiles the build scripts and rustc ran under.
    pub profiles: [String; 2],
    #[serde(flatten)]
    pub tree: Tree,
    pub comparison: Comparison,
}

impl AuditReport {
    /// Whether the comparison found something new: a capability gained or
    /// a crate added (capabilities lost and crates removed are reported
    /// but are not new).
    pub fn has_news(&self) -> bool {
        matches!(&self.comparison, Comparison::Compared { diff, .. }
        if diff.crates.iter().any(|c| {
            c.change == crate::manifest::diff::Change::Added || !c.gained.is_empty()
        }))
    }
}

/// Roles cargo's metadata gives each package: (has a build script, is a
/// proc macro), by `(name, version)`.
pub type Roles = BTreeMap<(String, String), (bool, bool)>;

/// The tree of one audited version, from its manifest.
pub fn tree(subject: Subject, manifest: &Manifest, roles: &Roles) -> Tree {
    let key = |c: &CrateManifest| format!("{} {}", c.name, c.version);
    let by_key: BTreeMap<String, &CrateManifest> =
        manifest.crates.iter().map(|c| (key(c), c)).collect();
    // Shortest path from the audited crate to each crate.
    let start = subject.title();
    let mut via: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    if by_key.contains_key(&start) {
        via.insert(start.clone(), vec![start.clone()]);
        queue.push_back(start.clone());
    }
    while let Some(current) = queue.pop_front() {
        let path = via[&current].clone();
        for dep in by_key
            .get(&current)
            .map(|c| c.dependencies.as_slice())
            .unwrap_or_default()
        {
            if !via.contains_key(dep) && by_key.contains_key(dep) {
                let mut next = path.clone();
                next.push(dep.clone());
                via.insert(dep.clone(), next);
                queue.push_back(dep.clone());
            }
        }
    }
    let mut used_by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in &manifest.crates {
        for dep in &c.dependencies {
            used_by.entry(dep.as_str()).or_default().insert(key(c));
        }
    }
    let mut crates: Vec<CrateAudit> = manifest
        .crates
        .iter()
        .map(|c| {
            let k = key(c);
            let (build_script, proc_macro) = roles
                .get(&(c.name.clone(), c.version.clone()))
                .copied()
                .unwrap_or((false, false));
            let capabilities: Vec<Entry> = diff::entries(c).into_values().collect();
            let users: Vec<String> = used_by
                .get(k.as_str())
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let badges = badges(
                build_script,
                proc_macro,
                &users,
                &capabilities,
                &c.unscanned,
            );
            CrateAudit {
                name: c.name.clone(),
                version: c.version.clone(),
                source: c.source.clone(),
                checksum: c.checksum.clone(),
                via: via.get(&k).cloned().unwrap_or_else(|| vec![k.clone()]),
                build_script,
                proc_macro,
                used_by: users,
                badges,
                capabilities,
                unscanned: c.unscanned.clone(),
            }
        })
        .collect();
    // The audited crate first, then by depth, then by name.
    crates.sort_by(|a, b| {
        (a.via.len(), &a.name, &a.version).cmp(&(b.via.len(), &b.name, &b.version))
    });
    let capabilities = bringers(&crates);
    Tree {
        subject,
        crates,
        capabilities,
    }
}

/// Per capability, the crates that have it (any phase, any method, but
/// not what build-time code did in its own place).
fn bringers(crates: &[CrateAudit]) -> Vec<Bringer> {
    let mut out: BTreeMap<&str, Vec<BroughtBy>> = BTreeMap::new();
    for c in crates {
        let mut phases: BTreeMap<&str, BTreeSet<Phase>> = BTreeMap::new();
        // What build-time code does in its own place is not brought.
        for e in c
            .capabilities
            .iter()
            .filter(|e| e.is_static() || !is_ordinary(e))
        {
            phases.entry(&e.capability).or_default().insert(e.phase);
        }
        for (capability, phases) in phases {
            out.entry(capability).or_default().push(BroughtBy {
                name: c.name.clone(),
                version: c.version.clone(),
                phases: phases.into_iter().collect(),
                via: c.via.clone(),
            });
        }
    }
    out.into_iter()
        .map(|(capability, crates)| Bringer {
            capability: capability.to_string(),
            crates,
        })
        .collect()
}

/// Most items named per kind of action in a badge.
const MAX_ITEMS: usize = 3;

fn listed(items: &[String]) -> String {
    let mut shown: Vec<String> = items.iter().take(MAX_ITEMS).cloned().collect();
    if items.len() > MAX_ITEMS {
        shown.push(format!("{} more", items.len() - MAX_ITEMS));
    }
    shown.join(", ")
}

/// ` — denied`, ` — failed`, or nothing for what went through.
fn ending(outcomes: &[Outcome]) -> &'static str {
    if outcomes.contains(&Outcome::Allowed) {
        ""
    } else if outcomes.contains(&Outcome::Denied) {
        " — denied"
    } else if outcomes.contains(&Outcome::Failed) {
        " — failed"
    } else {
        ""
    }
}

fn program(target: &str) -> String {
    target.rsplit('/').next().unwrap_or(target).to_string()
}

/// `target` is `token` or under it.
fn under(target: &str, token: &str) -> bool {
    target == token
        || target
            .strip_prefix(token)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Files that hold credentials: anything in `$HOME` (hidden by the
/// sandbox), cargo's registry tokens, the system's password hashes, a
/// process's environment.
fn is_secret(target: &str) -> bool {
    under(target, "$HOME")
        || under(target, "$CARGO_HOME/credentials")
        || under(target, "$CARGO_HOME/credentials.toml")
        || under(target, "/etc/shadow")
        || under(target, "/etc/gshadow")
        || under(target, "/root")
        || (target.starts_with("/proc/") && target.ends_with("/environ"))
}

/// What any build-time code does in its own place: the dynamic loader's
/// reads of system libraries (folded system directories), reads of its own
/// package and the toolchain, anything in its `$OUT_DIR` or private `/tmp`
/// (but a link from there to elsewhere), the standard streams and devices,
/// forking, reading the variables the sandbox let in. Kept in the evidence,
/// left out of badges.
fn is_ordinary(e: &Entry) -> bool {
    let target = e.target.as_str();
    let device = matches!(
        target,
        "/dev/null" | "/dev/tty" | "/dev/zero" | "/dev/urandom" | "/dev/random"
    ) || target.starts_with("/dev/fd/");
    let links_out = links_to(e).iter().any(|t| match t {
        Some(t) => !(under(t, "$OUT_DIR") || under(t, "$TMP")),
        None => true,
    });
    match e.capability.as_str() {
        _ if is_secret(target) || links_out => false,
        "fs.read" => {
            device
                || ["$OUT_DIR", "$TMP", "$CARGO_MANIFEST_DIR", "$RUSTUP_HOME", "$BUILD_SCRIPT"]
                    .iter()
                    .any(|token| under(target, token))
                // Reads observe folds: system libraries and headers.
                || crate::observe::is_folded_read(target)
                || target == "/etc/locale.alias"
        }
        "fs.write" | "fs.delete" => device || under(target, "$OUT_DIR") || under(target, "$TMP"),
        "process.fork" | "env.read" => true,
        _ => false,
    }
}

/// The kinds of action a badge names, in the order it names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ran,
    Network,
    Secret,
    Wrote,
    Other,
}

/// Where the links an entry made point, resolved against the link's own
/// directory (`$OUT_DIR/lib/libssl.so` → `libssl.so.3` is
/// `$OUT_DIR/lib/libssl.so.3`). None for a relative target that climbs out
/// of the token it starts in (`../../../.ssh/id_rsa`): where it lands is
/// not known, so it is taken as a secret.
fn links_to(e: &Entry) -> Vec<Option<String>> {
    let Some(targets) = e.evidence.get("link-to") else {
        return Vec::new();
    };
    targets
        .iter()
        .map(|to| {
            if to.starts_with('/') || to.starts_with('$') {
                return Some(to.clone());
            }
            let mut parts: Vec<&str> = e.target.split('/').collect();
            parts.pop();
            for part in to.split('/') {
                match part {
                    "" | "." => {}
                    // The first part is the token (`$OUT_DIR`) or the root.
                    ".." if parts.len() <= 1 => return None,
                    ".." => {
                        parts.pop();
                    }
                    part => parts.push(part),
                }
            }
            Some(parts.join("/"))
        })
        .collect()
}

fn kind(e: &Entry) -> Kind {
    match e.capability.as_str() {
        "process.exec" => Kind::Ran,
        c if c.starts_with("net.") => Kind::Network,
        _ if is_secret(&e.target)
            || links_to(e)
                .iter()
                .any(|t| t.as_deref().is_none_or(is_secret)) =>
        {
            Kind::Secret
        }
        "fs.write" | "fs.delete" => Kind::Wrote,
        _ => Kind::Other,
    }
}

/// One action as a badge names it: `tried to connect to 1.2.3.4:443 — denied`.
fn action(e: &Entry) -> String {
    let end = ending(&e.outcomes);
    let tried = !end.is_empty();
    let verb = match (kind(e), e.capability.as_str()) {
        (Kind::Ran, _) if tried => return format!("tried to run {}{end}", program(&e.target)),
        (Kind::Ran, _) => return program(&e.target),
        (Kind::Network, "net.connect") if tried => "tried to connect to",
        (Kind::Network, "net.connect") => "connected to",
        (Kind::Network, "net.dns") => "looked up",
        (Kind::Network, "net.listen") => "listened on",
        (Kind::Network, other) => other,
        (_, "fs.read") if tried => "tried to read",
        (_, "fs.read") => "read",
        (_, "fs.delete") => "deleted",
        (_, "fs.write") => "wrote",
        (_, other) => other,
    };
    let link = match e.evidence.get("link-to") {
        Some(to) if !to.is_empty() => format!(" (a link to {})", to.join(", ")),
        _ => String::new(),
    };
    format!("{verb} {}{link}{end}", e.target)
}

/// The badge of what a build script or proc macro did in the sandbox.
fn run_badge(what: &str, traced: &[&Entry]) -> Badge {
    let mut by_kind: BTreeMap<Kind, Vec<(u8, String)>> = BTreeMap::new();
    for e in traced.iter().filter(|e| !is_ordinary(e)) {
        // What went through first, then what was stopped, then failures:
        // a cut list keeps the worst.
        let rank = match ending(&e.outcomes) {
            "" => 0,
            " — denied" => 1,
            _ => 2,
        };
        by_kind.entry(kind(e)).or_default().push((rank, action(e)));
    }
    if by_kind.is_empty() {
        return Badge {
            level: Level::Quiet,
            text: format!("{what}: nothing outside its own files; no network, no programs"),
        };
    }
    let mut level = Level::Notice;
    let mut parts: Vec<String> = Vec::new();
    if !by_kind.contains_key(&Kind::Network) {
        // Said after the programs it ran: `ran cc; no network`.
        by_kind.entry(Kind::Network).or_default();
    }
    for (kind, mut items) in by_kind {
        items.sort();
        let mut seen = BTreeSet::new();
        let texts: Vec<String> = items
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| seen.insert(t.clone()))
            .collect();
        match kind {
            Kind::Ran => parts.push(format!("ran {}", listed(&texts))),
            Kind::Network if texts.is_empty() => parts.push("no network".into()),
            Kind::Network | Kind::Secret => {
                level = Level::Alert;
                parts.push(listed(&texts));
            }
            Kind::Wrote | Kind::Other => parts.push(listed(&texts)),
        }
    }
    // Anything the sandbox stopped is worth a look.
    if traced
        .iter()
        .any(|e| !is_ordinary(e) && ending(&e.outcomes) == " — denied")
    {
        level = Level::Alert;
    }
    Badge {
        level,
        text: format!("{what}: {}", parts.join("; ")),
    }
}

/// The badges of a crate: its build script, its proc macro, what its code
/// can do, what it ships, what could not be scanned.
fn badges(
    build_script: bool,
    proc_macro: bool,
    used_by: &[String],
    capabilities: &[Entry],
    unscanned: &[String],
) -> Vec<Badge> {
    let traced = |phase: Phase| -> Vec<&Entry> {
        capabilities
            .iter()
            .filter(|e| e.phase == phase && e.methods.contains(&Method::Traced))
            .collect()
    };
    let mut out = Vec::new();
    if build_script {
        if unscanned
            .iter()
            .any(|u| u == crate::manifest::UNRECORDED_BUILD_SCRIPT)
        {
            out.push(Badge {
                level: Level::Notice,
                text: "build script: not observed (cargo reused its output from an unrecorded run)"
                    .into(),
            });
        } else {
            out.push(run_badge("build script", &traced(Phase::BuildScript)));
        }
    }
    if proc_macro {
        let what = if used_by.is_empty() {
            "proc macro".to_string()
        } else {
            format!("proc macro (expanded for {})", listed(used_by))
        };
        out.push(run_badge(&what, &traced(Phase::ProcMacro)));
    }
    // What the code can do (static findings), per phase.
    let mut found: BTreeMap<Phase, BTreeSet<&str>> = BTreeMap::new();
    let mut shipped: Vec<String> = Vec::new();
    for e in capabilities.iter().filter(|e| e.is_static()) {
        if e.capability == "binary.shipped" {
            shipped.push(e.target.clone());
        } else {
            found.entry(e.phase).or_default().insert(&e.capability);
        }
    }
    if found.is_empty() {
        out.push(Badge {
            level: Level::Quiet,
            text: "code: no capabilities found".into(),
        });
    } else {
        let text: Vec<String> = found
            .iter()
            .map(|(phase, caps)| {
                let caps: Vec<&str> = caps.iter().copied().collect();
                let phase = match phase {
                    Phase::BuildScript => "build script",
                    Phase::ProcMacro => "proc macro",
                    Phase::Runtime => "library",
                };
                format!("{phase} can {}", caps.join(", "))
            })
            .collect();
        let risky = found.values().flatten().any(|c| {
            c.starts_with("net.")
                || c.starts_with("process.")
                || c.starts_with("obfuscation")
                || *c == "fs.write"
                || *c == "fs.delete"
        });
        out.push(Badge {
            level: if risky { Level::Notice } else { Level::Quiet },
            text: format!("code: {}", text.join("; ")),
        });
    }
    if !shipped.is_empty() {
        out.push(Badge {
            level: Level::Alert,
            text: format!(
                "ships {} binar{}: {}",
                shipped.len(),
                if shipped.len() == 1 { "y" } else { "ies" },
                listed(&shipped)
            ),
        });
    }
    if !unscanned.is_empty() {
        out.push(Badge {
            level: Level::Notice,
            text: format!("unscanned: {}", listed(unscanned)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Capability;

    fn cap(capability: &str, target: &str, method: Method, outcome: Outcome) -> Capability {
        Capability {
            capability: capability.into(),
            target: target.into(),
            method,
            outcome,
            evidence: BTreeMap::new(),
        }
    }

    fn krate(name: &str, version: &str, deps: &[&str]) -> CrateManifest {
        CrateManifest {
            name: name.into(),
            version: version.into(),
            source: "registry+https://github.com/rust-lang/crates.io-index".into(),
            checksum: None,
            vcs_commit: None,
            capabilities: BTreeMap::new(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            unscanned: vec![],
        }
    }

    #[test]
    fn badges_say_what_build_time_code_did_and_who_brought_it() {
        let mut squat = krate("widgte-build", "0.1.0", &[]);
        squat.capabilities.insert(
            Phase::BuildScript,
            vec![
                cap(
                    "net.connect",
                    "1.2.3.4:443",
                    Method::Traced,
                    Outcome::Denied,
                ),
                cap(
                    "fs.read",
                    "$HOME/.ssh/id_rsa",
                    Method::Traced,
                    Outcome::Denied,
                ),
                cap(
                    "net.connect",
                    "std::net::TcpStream::connect",
                    Method::Symbol,
                    Outcome::Possible,
                ),
            ],
        );
        let mut cc = krate("cc-user", "2.0.0", &[]);
        cc.capabilities.insert(
            Phase::BuildScript,
            vec![cap(
                "process.exec",
                "/usr/bin/cc",
                Method::Traced,
                Outcome::Allowed,
            )],
        );
        let top = krate("widget", "1.0.1", &["widgte-build 0.1.0", "cc-user 2.0.0"]);
        let manifest = Manifest {
            schema_version: 1,
            crates: vec![cc, top, squat],
        };
        let roles: Roles = [
            (("widget".to_string(), "1.0.1".to_string()), (true, false)),
            (("widgte-build".into(), "0.1.0".into()), (true, false)),
            (("cc-user".into(), "2.0.0".into()), (true, false)),
        ]
        .into();
        let subject = Subject {
            name: "widget".into(),
            version: "1.0.1".into(),
            source: "registry+x".into(),
            checksum: None,
        };
        let tree = tree(subject, &manifest, &roles);
        let names: Vec<&str> = tree.crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["widget", "cc-user", "widgte-build"]);
        let squat = &tree.crates[2];
        assert_eq!(squat.via, ["widget 1.0.1", "widgte-build 0.1.0"]);
        assert_eq!(squat.level(), Level::Alert);
        assert_eq!(
            squat.badges[0].text,
            "build script: tried to connect to 1.2.3.4:443 — denied; tried to read $HOME/.ssh/id_rsa — denied"
        );
        assert_eq!(squat.badges[1].text, "code: build script can net.connect");
        assert_eq!(
            tree.crates[1].badges[0].text,
            "build script: ran cc; no network"
        );
        assert_eq!(tree.crates[1].badges[0].level, Level::Notice);
        assert_eq!(
            tree.crates[0].badges[0].text,
            "build script: nothing outside its own files; no network, no programs"
        );
        let net = tree
            .capabilities
            .iter()
            .find(|b| b.capability == "net.connect")
            .unwrap();
        assert_eq!(net.crates.len(), 1);
        assert_eq!(net.crates[0].via, ["widget 1.0.1", "widgte-build 0.1.0"]);
    }

    fn entry(capability: &str, target: &str, outcome: Outcome) -> Entry {
        Entry {
            phase: Phase::BuildScript,
            capability: capability.into(),
            target: target.into(),
            methods: vec![Method::Traced],
            outcomes: vec![outcome],
            evidence: BTreeMap::new(),
        }
    }

    #[test]
    fn each_kind_of_action_alone_is_named() {
        let badge = |entries: &[Entry]| {
            let refs: Vec<&Entry> = entries.iter().collect();
            let b = run_badge("build script", &refs);
            (b.level, b.text)
        };
        assert_eq!(
            badge(&[entry("net.connect", "10.1.2.3:443", Outcome::Denied)]),
            (
                Level::Alert,
                "build script: tried to connect to 10.1.2.3:443 — denied".into()
            )
        );
        assert_eq!(
            badge(&[entry("net.dns", "evil.example", Outcome::Allowed)]),
            (Level::Alert, "build script: looked up evil.example".into())
        );
        assert_eq!(
            badge(&[entry(
                "fs.read",
                "$CARGO_HOME/credentials.toml",
                Outcome::Allowed
            )]),
            (
                Level::Alert,
                "build script: no network; read $CARGO_HOME/credentials.toml".into()
            )
        );
        assert_eq!(
            badge(&[entry("process.exec", "/usr/bin/cc", Outcome::Allowed)]),
            (Level::Notice, "build script: ran cc; no network".into())
        );
        assert_eq!(
            badge(&[entry("fs.write", "$CARGO_HOME/bin/cargo", Outcome::Denied)]),
            (
                Level::Alert,
                "build script: no network; wrote $CARGO_HOME/bin/cargo — denied".into()
            )
        );
        // A link in OUT_DIR to a secret is not "its own files".
        let mut link = entry("fs.write", "$OUT_DIR/k", Outcome::Allowed);
        link.evidence
            .insert("link-to".into(), vec!["$HOME/.ssh/id_rsa".into()]);
        assert_eq!(
            badge(&[link]),
            (
                Level::Alert,
                "build script: no network; wrote $OUT_DIR/k (a link to $HOME/.ssh/id_rsa)".into()
            )
        );
        let mut climbs = entry("fs.write", "$OUT_DIR/k", Outcome::Allowed);
        climbs
            .evidence
            .insert("link-to".into(), vec!["../../../.ssh/id_rsa".into()]);
        assert_eq!(badge(&[climbs]).0, Level::Alert);
        let mut sibling = entry("fs.write", "$OUT_DIR/lib/libssl.so", Outcome::Allowed);
        sibling
            .evidence
            .insert("link-to".into(), vec!["libssl.so.3".into()]);
        assert_eq!(badge(&[sibling]).0, Level::Quiet);
        assert_eq!(
            badge(&[
                entry("process.exec", "/usr/bin/curl", Outcome::Denied),
                entry("process.exec", "/usr/bin/cc", Outcome::Allowed),
                entry("process.exec", "/usr/local/bin/cc", Outcome::Failed),
            ]),
            (
                Level::Alert,
                "build script: ran cc, tried to run curl — denied, tried to run cc — failed; no network"
                    .into()
            )
        );
        let mut own = entry("fs.write", "$OUT_DIR/k", Outcome::Allowed);
        own.evidence
            .insert("link-to".into(), vec!["$OUT_DIR/real".into()]);
        assert_eq!(badge(&[own]).0, Level::Quiet);
        assert_eq!(
            badge(&[
                entry("fs.read", "$OUT_DIR/x", Outcome::Allowed),
                entry("fs.read", "/usr/lib/**", Outcome::Allowed),
                entry("process.fork", "$BUILD_SCRIPT", Outcome::Allowed),
            ]),
            (
                Level::Quiet,
                "build script: nothing outside its own files; no network, no programs".into()
            )
        );
        let unrecorded = badges(
            true,
            false,
            &[],
            &[],
            &[crate::manifest::UNRECORDED_BUILD_SCRIPT.to_string()],
        );
        assert!(
            unrecorded[0].text.contains("not observed"),
            "{unrecorded:?}"
        );
    }
}
