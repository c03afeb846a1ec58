//! The Linux sandbox that build scripts run in.
//!
//! `profile` reads the TOML profiles, `mounts` decides the filesystem view,
//! `seccomp` compiles the filters, `sys` is the seam for raw syscalls and
//! `spawn` puts them together in one flat, ordered sequence. The recorder
//! (`crate::trace`) attaches to the process `spawn` creates.

pub mod elf;
pub mod env;
pub mod mounts;
pub mod profile;
pub mod seccomp;
pub mod spawn;
pub mod sys;

use std::path::PathBuf;

pub use profile::{Profile, ProfileSource};
pub use spawn::{SandboxSpec, probe, spawn};

/// Errors of the sandbox module.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "unknown sandbox profile `{name}` (built-in profiles: {known}; or give a path to a .toml file)"
    )]
    UnknownProfile { name: String, known: String },
    #[error("failed to read sandbox profile {path}: {source}")]
    ReadProfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid sandbox profile {file}: {message}")]
    BadProfile { file: String, message: String },
    #[error("failed to build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("the sandbox does not support the {0} architecture yet (x86_64 and aarch64 only)")]
    UnsupportedArch(&'static str),
    #[error(
        "failed to create the sandbox's user namespace: {0}; unprivileged user namespaces look disabled here: \
         enable them with `sysctl -w kernel.unprivileged_userns_clone=1` (Debian), \
         `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 23.10+) \
         or a non-zero `user.max_user_namespaces`"
    )]
    UserNamespaces(sys::SysError),
    #[error("failed to set up the sandbox: {0}")]
    Setup(String),
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}
