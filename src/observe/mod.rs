//! Raw events → observed capabilities.
//!
//! Three steps, all pure: classify each event into a capability with an
//! outcome (`allowed`, `denied` when the sandbox stopped it, `failed` when it
//! failed for an ordinary reason such as a missing file); normalise its
//! target so paths read `$OUT_DIR/x` instead of a machine's absolute path;
//! fold the noise (toolchain, loader, locale and `/proc` reads, the private
//! `/tmp`) into one observation per well-known location. Observations with
//! the same phase, capability, target and outcome are merged with a count,
//! and the result is sorted, so two runs give the same bytes.

pub mod attribute;
pub mod normalize;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use nix::libc;
use serde::{Deserialize, Serialize};

pub use normalize::Normalizer;

use crate::sandbox::mounts::MountPlan;
use crate::trace::{EventKind, RawEvent, SockAddr};

/// When the observed code ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    BuildScript,
    ProcMacro,
    Runtime,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BuildScript => "build-script",
            Phase::ProcMacro => "proc-macro",
            Phase::Runtime => "runtime",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The sandbox stopped it (or the action was withheld).
    Denied,
    /// It failed for a reason that is not the sandbox's (a missing file).
    Failed,
    /// It succeeded.
    Allowed,
    /// Not observed: static evidence that the code can do it.
    Possible,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Allowed => "allowed",
            Outcome::Possible => "possible",
        }
    }
}

/// How an observation was made.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Recorded while the code ran in the sandbox.
    #[default]
    Traced,
    /// A symbol the compiled code references or defines (object files).
    Symbol,
    /// An effect site in the sources (syn).
    Source,
    /// A binary file shipped in the package (goblin).
    Blob,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Traced => "traced",
            Method::Symbol => "symbol",
            Method::Source => "source",
            Method::Blob => "blob",
        }
    }
}

/// Most values kept per detail key; the rest are counted.
const MAX_DETAIL_VALUES: usize = 24;

/// One observed capability, the unit of every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub phase: Phase,
    pub capability: String,
    pub target: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub method: Method,
    pub count: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, Vec<String>>,
}

impl Observation {
    fn key(&self) -> (Phase, &str, &str, Outcome, Method) {
        (
            self.phase,
            &self.capability,
            &self.target,
            self.outcome,
            self.method,
        )
    }
}

/// What the classifier needs to know about the sandbox.
pub struct Context<'a> {
    pub phase: Phase,
    pub plan: &'a MountPlan,
    /// The network was cut off (any network error is the sandbox's doing).
    pub network_isolated: bool,
    pub normalizer: &'a Normalizer,
    /// Name servers of `/etc/resolv.conf`.
    pub system_resolvers: Vec<std::net::IpAddr>,
}

impl<'a> Context<'a> {
    /// The context of one sandboxed run, with this machine's resolvers.
    pub fn new(
        phase: Phase,
        plan: &'a MountPlan,
        network_isolated: bool,
        normalizer: &'a Normalizer,
    ) -> Context<'a> {
        Context {
            phase,
            plan,
            network_isolated,
            normalizer,
            system_resolvers: system_resolvers(),
        }
    }
}

/// `capability target` of each denied observation, in order (withheld
/// variables left out): what a failure line quotes.
pub fn denied_actions(
    observations: &[Observation],
) -> impl DoubleEndedIterator<Item = String> + '_ {
    observations
        .iter()
        .filter(|o| o.outcome == Outcome::Denied && o.capability != "env.withheld")
        .map(|o| format!("{} {}", o.capability, o.target))
}

/// The name servers listed in `/etc/resolv.conf`.
pub fn system_resolvers() -> Vec<std::net::IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse().ok())
        .collect()
}

/// A single classified event before merging.
struct Item {
    capability: &'static str,
    target: String,
    outcome: Outcome,
    detail: Vec<(&'static str, String)>,
}

fn fs_outcome(ctx: &Context, error: Option<&str>, path: &Path) -> Outcome {
    match error {
        None => Outcome::Allowed,
        Some("EACCES" | "EPERM" | "EROFS" | "EXDEV") => Outcome::Denied,
        Some("ENOENT" | "ENOTDIR") if ctx.plan.is_hidden(path) => Outcome::Denied,
        Some(_) => Outcome::Failed,
    }
}

fn net_outcome(ctx: &Context, error: Option<&str>) -> Outcome {
    match error {
        None | Some("EINPROGRESS") => Outcome::Allowed,
        Some(_) if ctx.network_isolated => Outcome::Denied,
        Some("EACCES" | "EPERM") => Outcome::Denied,
        Some(_) => Outcome::Failed,
    }
}

fn quote_arg(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%$*".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Names in the private `/tmp` are random (`$TMP/ccXyZ12.s`); only the
/// fact that the scratch directory is used is kept.
fn scrub_tmp(text: String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("$TMP/") {
        out.push_str(&rest[..at + 5]);
        out.push('*');
        let tail = &rest[at + 5..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "'\":,=".contains(c))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn argv_line(ctx: &Context, argv: &[String]) -> String {
    argv.iter()
        .map(|a| quote_arg(&scrub_tmp(ctx.normalizer.text(a))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn addr_target(ctx: &Context, addr: &SockAddr) -> String {
    match addr {
        SockAddr::Unix { path } => format!("unix:{}", ctx.normalizer.path(Path::new(path))),
        other => other.to_string(),
    }
}

/// Files the code created and then renamed away or deleted: scratch files
/// with random names (`ar`'s `stXXXXXX`, `mkstemp`). Shown as
/// `<dir>/(temporary)` so the report does not change from run to run.
fn transient_paths(events: &[RawEvent]) -> HashSet<PathBuf> {
    let mut created: HashSet<&Path> = HashSet::new();
    let mut transient = HashSet::new();
    for event in events.iter().filter(|e| e.error.is_none()) {
        match &event.kind {
            EventKind::Open { path, flags } if flags & libc::O_CREAT != 0 => {
                created.insert(path);
            }
            EventKind::Mkdir { path } => {
                created.insert(path);
            }
            EventKind::Rename { from, to } => {
                if created.contains(from.as_path()) {
                    transient.insert(from.clone());
                }
                created.insert(to);
            }
            EventKind::Delete { path, .. } if created.contains(path.as_path()) => {
                transient.insert(path.clone());
            }
            _ => {}
        }
    }
    transient
}

fn classify(ctx: &Context, transient: &HashSet<PathBuf>, event: &RawEvent) -> Vec<Item> {
    let err = event.error.as_deref();
    // A path in or under a temporary file or directory is shown as the
    // temporary item's parent + `(temporary)`.
    let norm = |p: &Path| match p.ancestors().filter(|a| transient.contains(*a)).last() {
        Some(item) => {
            let dir = item.parent().unwrap_or(Path::new("/"));
            format!("{}/(temporary)", ctx.normalizer.path(dir))
        }
        None => ctx.normalizer.path(p),
    };
    let fs = |capability, path: &Path, detail: Vec<(&'static str, String)>| Item {
        capability,
        target: norm(path),
        outcome: fs_outcome(ctx, err, path),
        detail: with_errno(detail, err),
    };
    match &event.kind {
        EventKind::Open { path, flags } => {
            let mut access = Vec::new();
            let mode = flags & libc::O_ACCMODE;
            if flags & libc::O_CREAT != 0 {
                access.push(("access", "create".to_string()));
            }
            if flags & libc::O_TRUNC != 0 {
                access.push(("access", "truncate".to_string()));
            }
            if mode == libc::O_RDWR {
                access.push(("access", "read-write".to_string()));
            }
            let writes = mode != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0;
            let capability = if writes { "fs.write" } else { "fs.read" };
            vec![fs(capability, path, access)]
        }
        EventKind::Delete { path, dir } => {
            let op = if *dir { "rmdir" } else { "unlink" };
            vec![fs("fs.delete", path, vec![("op", op.into())])]
        }
        EventKind::Rename { from, to } => vec![
            fs("fs.write", to, vec![("renamed-from", norm(from))]),
            fs("fs.delete", from, vec![("renamed-to", norm(to))]),
        ],
        EventKind::Mkdir { path } => vec![fs("fs.write", path, vec![("op", "mkdir".into())])],
        EventKind::Link {
            path,
            target,
            symbolic,
        } => {
            let op = if *symbolic { "symlink" } else { "link" };
            let shown = if target.starts_with('/') {
                norm(Path::new(target))
            } else {
                target.clone()
            };
            vec![fs(
                "fs.write",
                path,
                vec![("op", op.into()), ("link-to", shown)],
            )]
        }
        EventKind::Truncate { path } => vec![fs("fs.write", path, vec![("op", "truncate".into())])],
        EventKind::Attr { path, op } => vec![fs("fs.write", path, vec![("op", op.clone())])],
        EventKind::Chmod { path, mode } => {
            let mode_text = format!("{:o}", mode & 0o7777);
            if mode & 0o111 != 0 {
                vec![fs("fs.exec-perm", path, vec![("mode", mode_text)])]
            } else {
                vec![fs(
                    "fs.write",
                    path,
                    vec![("op", "chmod".into()), ("mode", mode_text)],
                )]
            }
        }
        EventKind::Exec { path, argv } => vec![Item {
            capability: "process.exec",
            target: norm(path),
            outcome: fs_outcome(ctx, err, path),
            detail: with_errno(vec![("argv", argv_line(ctx, argv))], err),
        }],
        EventKind::Fork { exe } => vec![Item {
            capability: "process.fork",
            target: norm(exe),
            outcome: Outcome::Allowed,
            detail: Vec::new(),
        }],
        EventKind::Daemon { exe, argv } => vec![Item {
            capability: "process.daemon",
            target: norm(exe),
            outcome: Outcome::Denied,
            detail: vec![
                ("argv", argv_line(ctx, argv)),
                ("action", "killed when the build script exited".into()),
            ],
        }],
        EventKind::Denied { syscall } => vec![Item {
            capability: "sys.privileged",
            target: syscall.clone(),
            outcome: Outcome::Denied,
            detail: with_errno(Vec::new(), err),
        }],
        EventKind::Socket { family, kind } => {
            let ordinary = matches!(
                *family,
                libc::AF_UNIX | libc::AF_INET | libc::AF_INET6 | libc::AF_NETLINK
            ) && *kind != libc::SOCK_RAW;
            if ordinary {
                return Vec::new();
            }
            vec![Item {
                capability: "net.socket",
                target: format!("family-{family}/type-{kind}"),
                outcome: net_outcome(ctx, err),
                detail: with_errno(Vec::new(), err),
            }]
        }
        EventKind::Connect { addr, datagram } => {
            // A UDP "connect" to port 53 is resolver plumbing; the query
            // itself is recorded as `net.dns` when it is sent.
            if *datagram && addr.port() == Some(53) {
                return Vec::new();
            }
            let proto = match (addr.is_inet(), datagram) {
                (true, true) => "udp",
                (true, false) => "tcp",
                (false, true) => "dgram",
                (false, false) => "stream",
            };
            // A unix socket is a file: a missing one is not the sandbox's doing.
            let outcome = match addr {
                SockAddr::Unix { path } => fs_outcome(ctx, err, Path::new(path)),
                _ => net_outcome(ctx, err),
            };
            vec![Item {
                capability: "net.connect",
                target: addr_target(ctx, addr),
                outcome,
                detail: with_errno(vec![("protocol", proto.into())], err),
            }]
        }
        EventKind::Send { addr, dns } => match dns {
            Some(name) => {
                // The machine's own resolver differs between machines; a
                // server of the code's choosing is shown.
                let server = match addr {
                    SockAddr::Inet { ip, port: 53 } if ctx.system_resolvers.contains(ip) => {
                        "system resolver".to_string()
                    }
                    other => addr_target(ctx, other),
                };
                vec![Item {
                    capability: "net.dns",
                    target: name.clone(),
                    outcome: net_outcome(ctx, err),
                    detail: with_errno(vec![("server", server)], err),
                }]
            }
            None => vec![Item {
                capability: "net.connect",
                target: addr_target(ctx, addr),
                outcome: net_outcome(ctx, err),
                detail: with_errno(vec![("via", "sendto".into())], err),
            }],
        },
        EventKind::Listen { addr } => vec![Item {
            capability: "net.listen",
            target: addr_target(ctx, addr),
            outcome: net_outcome(ctx, err),
            detail: with_errno(Vec::new(), err),
        }],
    }
}

fn with_errno(
    mut detail: Vec<(&'static str, String)>,
    err: Option<&str>,
) -> Vec<(&'static str, String)> {
    if let Some(e) = err {
        detail.push(("errno", e.to_string()));
    }
    detail
}

/// Reads under these locations are folded into one observation each. They
/// are what every compiler and dynamically linked program touches.
const FOLDED_READS: &[&str] = &[
    "$RUSTUP_HOME",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/include",
    "/usr/local/include",
    "/usr/local/lib",
    "/usr/share/locale",
    "/usr/share/zoneinfo",
    "/usr/share/terminfo",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/proc",
    "/sys",
];

/// Whether an observation target is one `fold` makes of reads: a folded
/// location (`/usr/lib/**`, `$RUSTUP_HOME/**`, `/etc/ld.so.cache`) or the
/// dynamic loader's search for a library.
pub fn is_folded_read(target: &str) -> bool {
    target == "(dynamic loader search)"
        || FOLDED_READS
            .iter()
            .any(|p| target == *p || target.strip_suffix("/**") == Some(*p))
}

/// Whether a read of `path` is noise that is folded: under a well-known
/// system location, or a shared library the loader looks for. The recorder
/// uses it to take its quick path (see `trace::tracer::TraceConfig`).
pub fn is_noise_read(path: &Path, rustup_home: &Path) -> bool {
    let text = path.to_string_lossy();
    is_library_probe(&text)
        || FOLDED_READS
            .iter()
            .any(|prefix| match prefix.strip_prefix("$RUSTUP_HOME") {
                Some(rest) => path.starts_with(rustup_home.join(rest.trim_start_matches('/'))),
                None => path.starts_with(prefix),
            })
}

/// A shared library the dynamic loader looked for and did not find (it tries
/// every `LD_LIBRARY_PATH` and hwcaps directory in turn).
fn is_library_probe(target: &str) -> bool {
    let name = target.rsplit('/').next().unwrap_or(target);
    name.starts_with("lib") && name.contains(".so")
}

/// Folds a target: every `fs.*` action in the private `/tmp`, and reads in
/// the well-known locations.
fn fold(capability: &str, outcome: Outcome, target: &str) -> Option<String> {
    let under = |prefix: &str| {
        target == prefix
            || target
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if capability.starts_with("fs.") && under("$TMP") {
        return Some("$TMP/**".into());
    }
    if capability == "fs.read" && outcome == Outcome::Failed && is_library_probe(target) {
        return Some("(dynamic loader search)".into());
    }
    // /proc/PID/{root,cwd,fd,exe,map_files} lead anywhere, and
    // environ/mem hold a process's secrets: never folded.
    let magic = target.starts_with("/proc/")
        && target.split('/').any(|c| {
            matches!(
                c,
                "root" | "cwd" | "fd" | "exe" | "map_files" | "environ" | "mem"
            )
        });
    if capability == "fs.read" && outcome != Outcome::Denied && !magic {
        return FOLDED_READS.iter().find(|p| under(p)).map(|p| {
            if target == *p {
                p.to_string()
            } else {
                format!("{p}/**")
            }
        });
    }
    None
}

/// Merge key of an observation.
type Key = (Phase, String, String, Outcome);
type MergeKey = (Phase, String, String, Outcome, Method);
/// Detail values collected while merging.
type Details = BTreeMap<String, BTreeSet<String>>;

/// Classifies, normalises, folds and merges raw events.
pub fn observe(ctx: &Context, events: &[RawEvent]) -> Vec<Observation> {
    let transient = transient_paths(events);
    let mut merged: BTreeMap<Key, (u64, Details)> = BTreeMap::new();
    for event in events {
        for item in classify(ctx, &transient, event) {
            let folded = fold(item.capability, item.outcome, &item.target);
            let is_folded = folded.is_some();
            let target = folded.unwrap_or(item.target);
            let entry = merged
                .entry((ctx.phase, item.capability.to_string(), target, item.outcome))
                .or_default();
            entry.0 += 1;
            if is_folded {
                continue;
            }
            for (key, value) in item.detail {
                entry.1.entry(key.to_string()).or_default().insert(value);
            }
        }
    }
    merged
        .into_iter()
        .map(
            |((phase, capability, target, outcome), (count, detail))| Observation {
                phase,
                capability,
                target,
                outcome,
                method: Method::Traced,
                count,
                detail: cap_detail(detail),
            },
        )
        .collect()
}

pub fn cap_detail(detail: BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, Vec<String>> {
    detail
        .into_iter()
        .map(|(key, values)| {
            let total = values.len();
            let mut kept: Vec<String> = values.into_iter().take(MAX_DETAIL_VALUES).collect();
            if total > MAX_DETAIL_VALUES {
                kept.push(format!("(+{} more)", total - MAX_DETAIL_VALUES));
            }
            (key, kept)
        })
        .collect()
}

/// Observations for environment variables withheld from the sandbox.
pub fn withheld(phase: Phase, names: &[String]) -> Vec<Observation> {
    names
        .iter()
        .map(|name| Observation {
            phase,
            capability: "env.withheld".into(),
            target: name.clone(),
            outcome: Outcome::Denied,
            method: Method::Traced,
            count: 1,
            detail: BTreeMap::new(),
        })
        .collect()
}

/// Merges observation lists (from several runs of one build script, say):
/// counts add up, details are united, order is restored.
pub fn merge(lists: impl IntoIterator<Item = Observation>) -> Vec<Observation> {
    let mut merged: BTreeMap<MergeKey, Observation> = BTreeMap::new();
    for obs in lists {
        let key = (
            obs.phase,
            obs.capability.clone(),
            obs.target.clone(),
            obs.outcome,
            obs.method,
        );
        match merged.get_mut(&key) {
            None => {
                merged.insert(key, obs);
            }
            Some(existing) => {
                existing.count += obs.count;
                let mut detail: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for (k, vs) in existing.detail.iter().chain(obs.detail.iter()) {
                    detail
                        .entry(k.clone())
                        .or_default()
                        .extend(vs.iter().filter(|v| !v.starts_with("(+")).cloned());
                }
                existing.detail = cap_detail(detail);
            }
        }
    }
    let mut out: Vec<Observation> = merged.into_values().collect();
    out.sort_by(|a, b| a.key().cmp(&b.key()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::mounts::{MountOp, MountPlan};

    fn plan() -> MountPlan {
        MountPlan {
            root_read_only: true,
            ops: vec![MountOp::Tmpfs {
                path: PathBuf::from("/home/u"),
                writable: false,
                hidden: true,
            }],
        }
    }

    fn normalizer() -> Normalizer {
        Normalizer::new(vec![
            ("$HOME".into(), PathBuf::from("/home/u")),
            (
                "$OUT_DIR".into(),
                PathBuf::from("/w/target/debug/build/x-0123456789abcdef/out"),
            ),
            ("$TARGET_DIR".into(), PathBuf::from("/w/target")),
            ("$TMP".into(), PathBuf::from("/tmp")),
        ])
    }

    fn ev(kind: EventKind, error: Option<&str>) -> RawEvent {
        RawEvent {
            pid: 2,
            kind,
            error: error.map(str::to_string),
            origin: Default::default(),
        }
    }

    #[test]
    fn classifies_and_merges() {
        let plan = plan();
        let normalizer = normalizer();
        let ctx = Context {
            phase: Phase::BuildScript,
            plan: &plan,
            network_isolated: true,
            normalizer: &normalizer,
            system_resolvers: Vec::new(),
        };
        let events = vec![
            ev(
                EventKind::Open {
                    path: "/home/u/.ssh/id_rsa".into(),
                    flags: libc::O_RDONLY,
                },
                Some("ENOENT"),
            ),
            ev(
                EventKind::Open {
                    path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                    flags: libc::O_RDONLY,
                },
                None,
            ),
            ev(
                EventKind::Open {
                    path: "/usr/lib/libm.so".into(),
                    flags: libc::O_RDONLY,
                },
                Some("ENOENT"),
            ),
            ev(
                EventKind::Open {
                    path: "/w/target/debug/build/x-0123456789abcdef/out/gen.rs".into(),
                    flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                },
                None,
            ),
            ev(
                EventKind::Open {
                    path: "/tmp/ccXYZ.s".into(),
                    flags: libc::O_WRONLY | libc::O_CREAT,
                },
                None,
            ),
            ev(
                EventKind::Connect {
                    addr: SockAddr::Inet {
                        ip: "127.0.0.1".parse().unwrap(),
                        port: 4444,
                    },
                    datagram: false,
                },
                Some("ENETUNREACH"),
            ),
            ev(
                EventKind::Chmod {
                    path: "/w/target/debug/build/x-0123456789abcdef/out/run.sh".into(),
                    mode: 0o755,
                },
                None,
            ),
        ];
        let obs = observe(&ctx, &events);
        let lines: Vec<String> = obs
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} {}",
                    o.capability,
                    o.target,
                    o.outcome.as_str(),
                    o.count
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "fs.exec-perm $OUT_DIR/run.sh allowed 1",
                "fs.read $HOME/.ssh/id_rsa denied 1",
                "fs.read (dynamic loader search) failed 1",
                "fs.read /usr/lib/** allowed 1",
                "fs.write $OUT_DIR/gen.rs allowed 1",
                "fs.write $TMP/** allowed 1",
                "net.connect 127.0.0.1:4444 denied 1",
            ]
        );
        assert_eq!(obs[1].detail["errno"], ["ENOENT"]);
        assert_eq!(obs[6].detail["protocol"], ["tcp"]);
    }

    #[test]
    fn merge_adds_counts() {
        let a = Observation {
            phase: Phase::BuildScript,
            capability: "fs.read".into(),
            target: "x".into(),
            outcome: Outcome::Allowed,
            method: Method::Traced,
            count: 2,
            detail: BTreeMap::new(),
        };
        let merged = merge([a.clone(), a]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].count, 4);
    }
}
