//! The filesystem view inside the sandbox: a plan computed as plain data from
//! the profile and the build's paths, then carried out by [`apply`] inside the
//! new mount namespace.
//!
//! The view starts as the host root, bound read-only. On top, in this order:
//! fresh tmpfs directories (a private `/tmp`, an empty `$HOME`, hidden
//! directories), then host paths bound back (read-only project and toolchain
//! paths that lived under a hidden directory, writable `OUT_DIR`), then the
//! secret paths again wherever such a bind would have shown them. Keeping the
//! plan separate from the syscalls lets the ordering rules be tested without
//! privileges, and lets the recorder ask "was this path hidden?" to tell a
//! sandbox denial from an ordinary missing file.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use super::sys::{self, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, SysResult};

/// One step of the plan. Paths are absolute host paths; the same path is used
/// inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A fresh, empty tmpfs. `hidden` marks directories whose host content is
    /// concealed (as opposed to the private scratch `/tmp`).
    Tmpfs {
        path: PathBuf,
        writable: bool,
        hidden: bool,
    },
    /// The host path bound at the same place.
    Bind { path: PathBuf, writable: bool },
    /// A host file replaced by an empty, unreadable one.
    HideFile { path: PathBuf },
    /// An empty directory where a hidden one stood, so that a path spelled
    /// through it (`/tmp/a/../b`, as cargo passes a `directory = "../b"`
    /// source) still resolves. Shows nothing of the host.
    Placeholder { path: PathBuf },
}

impl MountOp {
    pub fn path(&self) -> &Path {
        match self {
            MountOp::Tmpfs { path, .. }
            | MountOp::Bind { path, .. }
            | MountOp::HideFile { path }
            | MountOp::Placeholder { path } => path,
        }
    }

    fn hides(&self) -> bool {
        matches!(
            self,
            MountOp::Tmpfs { hidden: true, .. } | MountOp::HideFile { .. }
        )
    }
}

/// What kind of thing a host path is, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Inputs of the plan, all absolute and canonical.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// Show the host root read-only (else writable).
    pub root_read_only: bool,
    /// Directories to replace with an empty read-only directory ($HOME ...).
    pub empty_dirs: Vec<PathBuf>,
    /// Secret paths to hide wherever they are.
    pub hide: Vec<PathBuf>,
    /// Host paths that must stay readable.
    pub read_only: Vec<PathBuf>,
    /// Host paths that must be writable.
    pub writable: Vec<PathBuf>,
    /// Directories that must exist (empty) for paths spelled through them.
    pub placeholders: Vec<PathBuf>,
}

/// The ordered plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPlan {
    pub root_read_only: bool,
    pub ops: Vec<MountOp>,
}

/// Keeps the first step for each path.
fn dedup_paths(ops: &mut Vec<MountOp>) {
    let mut seen = std::collections::HashSet::new();
    ops.retain(|op| seen.insert(op.path().to_path_buf()));
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

/// Paths that must never be replaced wholesale: hiding them would hide the
/// system the build needs.
fn is_system_dir(path: &Path) -> bool {
    matches!(
        path.to_str(),
        Some("/" | "/usr" | "/bin" | "/lib" | "/lib64" | "/etc" | "/proc" | "/dev" | "/sys")
    )
}

/// Builds the plan. `kind` tells what a host path is (injected so tests need
/// no real files).
pub fn plan(input: &PlanInput, kind: &dyn Fn(&Path) -> Option<Kind>) -> MountPlan {
    let mut tmpfs: Vec<MountOp> = vec![MountOp::Tmpfs {
        path: PathBuf::from("/tmp"),
        writable: true,
        hidden: false,
    }];
    let mut hide_ops: Vec<MountOp> = Vec::new();
    for dir in &input.empty_dirs {
        if is_system_dir(dir) || dir == Path::new("/tmp") {
            continue;
        }
        hide_ops.push(MountOp::Tmpfs {
            path: dir.clone(),
            writable: false,
            hidden: true,
        });
    }
    for path in &input.hide {
        if is_system_dir(path) {
            continue;
        }
        match kind(path) {
            Some(Kind::Dir) => hide_ops.push(MountOp::Tmpfs {
                path: path.clone(),
                writable: false,
                hidden: true,
            }),
            Some(Kind::File) => hide_ops.push(MountOp::HideFile { path: path.clone() }),
            None => {}
        }
    }
    tmpfs.extend(
        hide_ops
            .iter()
            .filter(|op| matches!(op, MountOp::Tmpfs { .. }))
            .cloned(),
    );
    tmpfs.sort_by_key(|op| depth(op.path()));
    dedup_paths(&mut tmpfs);

    // A path needs binding back when a tmpfs above it hid it, or when it must
    // be writable on a read-only root.
    let covered = |path: &Path| tmpfs.iter().any(|op| path.starts_with(op.path()));
    let mut binds: Vec<MountOp> = Vec::new();
    for path in &input.read_only {
        if kind(path).is_some() && covered(path) {
            binds.push(MountOp::Bind {
                path: path.clone(),
                writable: false,
            });
        }
    }
    for path in &input.writable {
        if kind(path).is_some() && (input.root_read_only || covered(path)) {
            binds.push(MountOp::Bind {
                path: path.clone(),
                writable: true,
            });
        }
    }
    binds.sort_by_key(|op| depth(op.path()));
    // A bind under another bind of the same mode adds nothing.
    let mut kept: Vec<MountOp> = Vec::new();
    for op in binds {
        let MountOp::Bind { path, writable } = &op else {
            continue;
        };
        let redundant = kept.iter().any(|k| match k {
            MountOp::Bind {
                path: p,
                writable: w,
            } => path.starts_with(p) && w == writable,
            _ => false,
        });
        if !redundant {
            kept.retain(|k| k.path() != path);
            kept.push(op);
        }
    }

    // Secrets that are not under a hiding tmpfs, or that a bind shows again,
    // are hidden individually, after the binds.
    let mut late_hides: Vec<MountOp> = Vec::new();
    for op in &hide_ops {
        let path = op.path();
        let under_bind = kept
            .iter()
            .any(|b| path != b.path() && path.starts_with(b.path()));
        let is_tmpfs = matches!(op, MountOp::Tmpfs { .. });
        let hidden_by_parent = tmpfs
            .iter()
            .any(|t| t.hides() && t.path() != path && path.starts_with(t.path()));
        if under_bind || (!is_tmpfs && !hidden_by_parent) {
            late_hides.push(op.clone());
        }
    }
    late_hides.sort_by_key(|op| depth(op.path()));
    dedup_paths(&mut late_hides);

    // A hiding tmpfs nested in another hiding tmpfs adds nothing, unless a
    // later bind lands inside it. (One nested in the scratch /tmp stays: it
    // is what makes a $HOME under /tmp empty and read-only.)
    let tmpfs: Vec<MountOp> = tmpfs
        .iter()
        .filter(|op| {
            let path = op.path();
            let nested = tmpfs
                .iter()
                .any(|t| t.hides() && t.path() != path && path.starts_with(t.path()));
            !nested || kept.iter().any(|b| b.path().starts_with(path))
        })
        .cloned()
        .collect();
    let tmpfs: Vec<MountOp> = tmpfs
        .into_iter()
        .filter(|op| !late_hides.contains(op))
        .collect();

    // Placeholders only where a tmpfs took the host's directory away.
    let placeholders: Vec<MountOp> = input
        .placeholders
        .iter()
        .filter(|p| !is_system_dir(p) && tmpfs.iter().any(|t| p.starts_with(t.path())))
        .filter(|p| !kept.iter().any(|b| p.starts_with(b.path())))
        .map(|p| MountOp::Placeholder { path: p.clone() })
        .collect();
    let mut ops = tmpfs;
    ops.extend(placeholders);
    ops.extend(kept);
    ops.extend(late_hides);
    MountPlan {
        root_read_only: input.root_read_only,
        ops,
    }
}

impl MountPlan {
    /// Whether the sandbox conceals `path` (so an `ENOENT` or `EACCES` on it
    /// is the sandbox's doing). The deepest step covering the path decides.
    pub fn is_hidden(&self, path: &Path) -> bool {
        let mut best: Option<(usize, bool)> = None;
        // A placeholder is a name only: what it covers stays as hidden as
        // it was.
        for op in self
            .ops
            .iter()
            .filter(|op| !matches!(op, MountOp::Placeholder { .. }))
        {
            if path.starts_with(op.path()) {
                let d = depth(op.path());
                if best.is_none_or(|(bd, _)| d >= bd) {
                    best = Some((d, op.hides()));
                }
            }
        }
        best.is_some_and(|(_, hidden)| hidden)
    }
}

/// The directories a path is spelled through before each `..`
/// (`/tmp/a/../b/c` → `/tmp/a`): they must exist for the kernel to walk
/// it. Empty for a path without `..`.
pub fn dotdot_prefixes(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut spelled = PathBuf::new();
    for comp in path.components() {
        if comp == Component::ParentDir {
            out.push(lexical_normalize(&spelled));
        }
        spelled.push(comp);
    }
    out
}

/// Lexically normalises an absolute path: removes `.`, resolves `..`.
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
        }
    }
    out
}

/// Where the staging filesystem is mounted before `pivot_root`.
const STAGING: &str = "/tmp";

fn inside(root: &str, path: &Path) -> PathBuf {
    Path::new(root).join(path.strip_prefix("/").unwrap_or(path))
}

/// Carries the plan out. Runs in the sandbox's init process, after the
/// namespaces exist and before anything untrusted runs; on return the process
/// is inside the new root, in `cwd`.
pub fn apply(plan: &MountPlan, cwd: &Path) -> SysResult<()> {
    // Our mounts must not propagate back to the host.
    sys::mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    // A scratch tmpfs to build the new root in; after the first pivot it is
    // the root and the host tree sits at /oldroot (host /tmp visible again).
    sys::mount(
        Some(Path::new("tmpfs")),
        Path::new(STAGING),
        Some("tmpfs"),
        sys::fresh_fs_flags(),
        Some("mode=0755"),
    )?;
    for dir in ["newroot", "oldroot"] {
        sys::mkdir_all(&Path::new(STAGING).join(dir))?;
    }
    sys::create_file(&Path::new(STAGING).join("unreadable"), 0o000)?;
    sys::pivot_root(Path::new(STAGING), &Path::new(STAGING).join("oldroot"))?;
    sys::chdir(Path::new("/"))?;

    // The host tree, all of it, read-only and without setuid.
    sys::mount(
        Some(Path::new("/oldroot")),
        Path::new("/newroot"),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let root_attrs = if plan.root_read_only {
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
    } else {
        MOUNT_ATTR_NOSUID
    };
    sys::mount_setattr(Path::new("/newroot"), true, root_attrs, 0)?;

    let mut read_only_tmpfs = Vec::new();
    for op in &plan.ops {
        let target = inside("/newroot", op.path());
        match op {
            MountOp::Tmpfs { writable, .. } => {
                ensure_dir(&target)?;
                // A writable tmpfs is capped: it lives in the host's memory.
                let options = if *writable {
                    "mode=1777,size=2g,nr_inodes=200k"
                } else {
                    "mode=0755,size=1m"
                };
                sys::mount(
                    Some(Path::new("tmpfs")),
                    &target,
                    Some("tmpfs"),
                    sys::fresh_fs_flags(),
                    Some(options),
                )?;
                if !writable {
                    read_only_tmpfs.push(target);
                }
            }
            MountOp::Bind { path, writable } => {
                let source = inside("/oldroot", path);
                if source.is_dir() {
                    ensure_dir(&target)?;
                } else {
                    ensure_file(&target)?;
                }
                sys::mount(
                    Some(&source),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                let (set, clear) = if *writable {
                    (MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY)
                } else {
                    (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)
                };
                sys::mount_setattr(&target, true, set, clear)?;
            }
            MountOp::Placeholder { .. } => ensure_dir(&target)?,
            MountOp::HideFile { .. } => {
                ensure_file(&target)?;
                sys::mount(
                    Some(Path::new("/unreadable")),
                    &target,
                    None,
                    MsFlags::MS_BIND,
                    None,
                )?;
                sys::mount_setattr(&target, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)?;
            }
        }
    }
    // A fresh /proc for the new PID namespace, and private shared memory.
    sys::mount(
        Some(Path::new("proc")),
        Path::new("/newroot/proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    // A minimal /dev: the host's disks and other devices stay out of reach
    // even of a build run as root.
    sys::mount(
        Some(Path::new("tmpfs")),
        Path::new("/newroot/dev"),
        Some("tmpfs"),
        sys::fresh_fs_flags() | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let source = Path::new("/oldroot/dev").join(node);
        if !source.exists() {
            continue;
        }
        let target = Path::new("/newroot/dev").join(node);
        sys::create_file(&target, 0o666)?;
        sys::mount(Some(&source), &target, None, MsFlags::MS_BIND, None)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(to, Path::new("/newroot/dev").join(link));
    }
    sys::mkdir_all(Path::new("/newroot/dev/shm"))?;
    sys::mount(
        Some(Path::new("tmpfs")),
        Path::new("/newroot/dev/shm"),
        Some("tmpfs"),
        sys::fresh_fs_flags(),
        Some("mode=1777,size=256m"),
    )?;
    // Empty directories become read-only once their mount points exist.
    for target in read_only_tmpfs {
        sys::mount_setattr(&target, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0)?;
    }
    // Enter the new root and drop the host tree for good.
    sys::chdir(Path::new("/newroot"))?;
    sys::pivot_root(Path::new("."), Path::new("."))?;
    sys::detach(Path::new("."))?;
    sys::chdir(Path::new("/"))?;
    sys::chdir(cwd)
}

fn ensure_dir(path: &Path) -> SysResult<()> {
    if path.is_dir() {
        return Ok(());
    }
    sys::mkdir_all(path)
}

fn ensure_file(path: &Path) -> SysResult<()> {
    if path.exists() {
        return Ok(());
    }
    sys::create_file(path, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn all_exist(path: &Path) -> Option<Kind> {
        if path.extension().is_some() || path.ends_with("credentials") {
            Some(Kind::File)
        } else {
            Some(Kind::Dir)
        }
    }

    #[test]
    fn project_under_home_is_bound_back_and_secrets_stay_hidden() {
        let input = PlanInput {
            root_read_only: true,
            empty_dirs: vec![p("/home/u")],
            hide: vec![p("/home/u/.ssh"), p("/etc/shadow.db")],
            read_only: vec![p("/home/u/proj"), p("/home/u/.cargo/registry")],
            writable: vec![p("/home/u/proj/target/debug/build/x-1/out")],
            placeholders: vec![],
        };
        let plan = plan(&input, &all_exist);
        let paths: Vec<_> = plan.ops.iter().map(|o| o.path().to_path_buf()).collect();
        assert_eq!(
            paths,
            vec![
                p("/tmp"),
                p("/home/u"),
                p("/home/u/proj"),
                p("/home/u/.cargo/registry"),
                p("/home/u/proj/target/debug/build/x-1/out"),
                p("/etc/shadow.db"),
            ]
        );
        assert!(plan.is_hidden(Path::new("/home/u/.ssh/id_rsa")));
        assert!(!plan.is_hidden(Path::new("/home/u/proj/src/lib.rs")));
        assert!(plan.is_hidden(Path::new("/etc/shadow.db")));
        assert!(!plan.is_hidden(Path::new("/tmp/x")));
        assert!(!plan.is_hidden(Path::new("/usr/lib/libc.so")));
    }

    #[test]
    fn home_under_tmp_stays_an_empty_read_only_dir() {
        let input = PlanInput {
            root_read_only: true,
            empty_dirs: vec![p("/tmp/t/home")],
            hide: vec![p("/tmp/t/home/.ssh")],
            read_only: vec![p("/tmp/t/proj")],
            writable: vec![p("/tmp/t/proj/target/out")],
            placeholders: vec![],
        };
        let plan = plan(&input, &all_exist);
        let paths: Vec<_> = plan.ops.iter().map(|o| o.path().to_path_buf()).collect();
        assert_eq!(
            paths,
            vec![
                p("/tmp"),
                p("/tmp/t/home"),
                p("/tmp/t/proj"),
                p("/tmp/t/proj/target/out")
            ]
        );
        assert!(plan.is_hidden(Path::new("/tmp/t/home/.ssh/id_rsa")));
        assert!(!plan.is_hidden(Path::new("/tmp/t/proj/src")));
    }

    #[test]
    fn secrets_inside_a_bound_tree_are_hidden_again() {
        let input = PlanInput {
            root_read_only: true,
            empty_dirs: vec![p("/home/u")],
            hide: vec![p("/home/u/.ssh")],
            read_only: vec![p("/home/u")],
            writable: vec![],
            placeholders: vec![],
        };
        let plan = plan(&input, &all_exist);
        assert_eq!(plan.ops.last().unwrap().path(), Path::new("/home/u/.ssh"));
        assert!(plan.is_hidden(Path::new("/home/u/.ssh/id_rsa")));
        assert!(!plan.is_hidden(Path::new("/home/u/proj")));
    }

    #[test]
    fn system_dirs_are_never_hidden_and_missing_paths_are_skipped() {
        let input = PlanInput {
            root_read_only: true,
            empty_dirs: vec![p("/")],
            hide: vec![p("/usr"), p("/nope")],
            read_only: vec![p("/nope2")],
            writable: vec![],
            placeholders: vec![],
        };
        let none = |path: &Path| {
            if path.starts_with("/nope") {
                None
            } else {
                Some(Kind::Dir)
            }
        };
        let plan = plan(&input, &none);
        assert_eq!(plan.ops.len(), 1, "{:?}", plan.ops);
    }

    #[test]
    fn writable_paths_on_a_writable_root_need_no_bind() {
        let input = PlanInput {
            root_read_only: false,
            writable: vec![p("/work/target/out")],
            ..Default::default()
        };
        assert_eq!(plan(&input, &all_exist).ops.len(), 1);
    }

    #[test]
    fn normalizes_dot_dot() {
        assert_eq!(lexical_normalize(Path::new("/a/b/../c/./d")), p("/a/c/d"));
        assert_eq!(lexical_normalize(Path::new("/../a")), p("/a"));
    }

    #[test]
    fn a_path_spelled_through_a_hidden_directory_still_resolves() {
        assert_eq!(
            dotdot_prefixes(Path::new("/tmp/a/demo/../registry/w-1.0.0")),
            vec![p("/tmp/a/demo")]
        );
        assert!(dotdot_prefixes(Path::new("/tmp/a/b")).is_empty());
        let input = PlanInput {
            root_read_only: true,
            empty_dirs: vec![p("/home/u")],
            hide: vec![],
            read_only: vec![p("/home/u/registry/w-1.0.0"), p("/tmp/a/registry/w-1.0.0")],
            writable: vec![],
            placeholders: vec![p("/home/u/proj"), p("/tmp/a/demo"), p("/usr/lib")],
        };
        let plan = plan(&input, &all_exist);
        let placeholders: Vec<&Path> = plan
            .ops
            .iter()
            .filter(|o| matches!(o, MountOp::Placeholder { .. }))
            .map(|o| o.path())
            .collect();
        // Under the hidden home and the private /tmp; not where the host
        // shows through.
        assert_eq!(placeholders, [p("/home/u/proj"), p("/tmp/a/demo")]);
        // It shows nothing: what is under it stays hidden.
        assert!(plan.is_hidden(Path::new("/home/u/proj/secret")));
    }
}
