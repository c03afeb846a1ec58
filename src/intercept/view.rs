//! The filesystem view and path vocabulary shared by every sandboxed run
//! (build scripts and rustc): which host paths are shown read-only or
//! writable, and how paths are written in observations.

use std::path::{Path, PathBuf};

use super::session::Session;
use crate::observe::Normalizer;
use crate::sandbox::Profile;
use crate::sandbox::mounts::{self, Kind, MountPlan, PlanInput};
use crate::sandbox::profile::{HomeMode, RootMode, expand};

/// A non-empty environment variable as a path.
pub fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The real path, or the path cleaned up lexically when it does not exist.
pub fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| mounts::lexical_normalize(path))
}

fn host_kind(path: &Path) -> Option<Kind> {
    let meta = std::fs::metadata(path).ok()?;
    Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
}

/// The jobserver fifo named in `CARGO_MAKEFLAGS`, if cargo uses one.
fn jobserver_fifo() -> Option<PathBuf> {
    let flags = std::env::var("CARGO_MAKEFLAGS").ok()?;
    flags
        .split_whitespace()
        .find_map(|f| f.strip_prefix("--jobserver-auth=fifo:"))
        .map(PathBuf::from)
}

/// The toolchain root of an absolute compiler path (`<root>/bin/rustc`).
pub fn toolchain_root(program: &Path) -> Option<PathBuf> {
    program
        .is_absolute()
        .then(|| program.parent()?.parent().map(Path::to_path_buf))
        .flatten()
}

/// The session's host directories, resolved once.
#[derive(Debug, Clone)]
pub struct Host {
    pub home: PathBuf,
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
}

impl Host {
    pub fn of(session: &Session) -> Host {
        Host {
            home: canonical(&session.home),
            cargo_home: canonical(&session.cargo_home),
            rustup_home: canonical(&session.rustup_home),
            workspace_root: canonical(&session.workspace_root),
            target_dir: canonical(&session.target_dir),
        }
    }

    /// A profile path with `$HOME`, `$CARGO_HOME`, `$RUSTUP_HOME` expanded.
    pub fn expand(&self, entry: &str) -> PathBuf {
        canonical(&expand(
            entry,
            &self.home,
            &self.cargo_home,
            &self.rustup_home,
        ))
    }

    /// The mount plan of one run: the profile's view plus the workspace,
    /// target dir, local packages and toolchains (read-only), `read_only` and
    /// `writable` of this run, and cargo's jobserver fifo.
    pub fn plan(
        &self,
        session: &Session,
        profile: &Profile,
        mut read_only: Vec<PathBuf>,
        mut writable: Vec<PathBuf>,
    ) -> MountPlan {
        read_only.extend([self.workspace_root.clone(), self.target_dir.clone()]);
        read_only.extend(session.local_roots.iter().map(|p| canonical(p)));
        read_only.extend(profile.filesystem.read_only.iter().map(|e| self.expand(e)));
        read_only.extend(
            ["RUSTC", "CARGO", "RUSTDOC"]
                .iter()
                .filter_map(|v| toolchain_root(&env_path(v)?)),
        );
        writable.extend(profile.filesystem.writable.iter().map(|e| self.expand(e)));
        writable.extend(jobserver_fifo());
        let empty_dirs = match profile.filesystem.home {
            HomeMode::Empty => vec![self.home.clone()],
            // A visible home lying under the private /tmp is shown again.
            HomeMode::Visible => {
                read_only.push(self.home.clone());
                Vec::new()
            }
        };
        let root_read_only = profile.filesystem.root == RootMode::ReadOnly;
        if !root_read_only {
            // On a writable root, what is shown again is shown writable too.
            writable.append(&mut read_only);
        }
        let input = PlanInput {
            root_read_only,
            empty_dirs,
            hide: profile
                .filesystem
                .hide
                .iter()
                .map(|e| self.expand(e))
                .collect(),
            read_only,
            writable,
            // cargo can spell the package's directory through `..` (a
            // `directory = "../vendor"` source): the directories it goes
            // through must exist, empty, for the path to resolve.
            placeholders: env_path("CARGO_MANIFEST_DIR")
                .map(|dir| mounts::dotdot_prefixes(&dir))
                .unwrap_or_default(),
        };
        mounts::plan(&input, &host_kind)
    }

    /// Path tokens for observations: `first` (most specific) come first,
    /// then the workspace, target dir, cargo and rustup homes, `$HOME`, `$TMP`.
    pub fn normalizer(&self, first: Vec<(String, PathBuf)>) -> Normalizer {
        let mut tokens = first;
        tokens.extend([
            ("$WORKSPACE".into(), self.workspace_root.clone()),
            ("$TARGET_DIR".into(), self.target_dir.clone()),
            ("$CARGO_HOME".into(), self.cargo_home.clone()),
            ("$RUSTUP_HOME".into(), self.rustup_home.clone()),
            ("$HOME".into(), self.home.clone()),
            ("$TMP".into(), PathBuf::from("/tmp")),
        ]);
        Normalizer::new(tokens)
    }
}
