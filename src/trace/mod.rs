//! The recorder: a ptrace loop over every process and thread of a sandbox,
//! woken only by the syscalls the seccomp filter marks `SECCOMP_RET_TRACE`.
//!
//! `tracer` runs the loop, `syscalls` decodes arguments into [`EventKind`]s,
//! `mem` reads strings and structs out of the tracee, `net` decodes socket
//! addresses and DNS queries. The result is a list of raw events with the
//! syscall's result; turning them into capabilities is `crate::observe`'s job.

pub mod mem;
pub mod net;
pub mod origin;
pub mod syscalls;
pub mod tracer;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use net::SockAddr;
pub use origin::Origin;
pub use tracer::trace;

/// One decoded syscall (or process event) and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEvent {
    /// Host pid of the process (thread group) that made the call.
    pub pid: i32,
    pub kind: EventKind,
    /// `None` on success, else the errno name (`ENOENT`).
    pub error: Option<String>,
    /// Whose code made the call, when the recorder was asked to find out.
    #[serde(default, skip_serializing_if = "Origin::is_unknown")]
    pub origin: Origin,
}

/// What a syscall did, with absolute paths and decoded addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    Open {
        path: PathBuf,
        flags: i32,
    },
    Delete {
        path: PathBuf,
        dir: bool,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Mkdir {
        path: PathBuf,
    },
    Link {
        path: PathBuf,
        target: String,
        symbolic: bool,
    },
    /// A metadata or special-file change: `mknod`, `chown`, `utimes`.
    Attr {
        path: PathBuf,
        op: String,
    },
    Truncate {
        path: PathBuf,
    },
    Chmod {
        path: PathBuf,
        mode: u32,
    },
    Exec {
        path: PathBuf,
        argv: Vec<String>,
    },
    Fork {
        exe: PathBuf,
    },
    Socket {
        family: i32,
        kind: i32,
    },
    Connect {
        addr: SockAddr,
        datagram: bool,
    },
    Send {
        addr: SockAddr,
        dns: Option<String>,
    },
    Listen {
        addr: SockAddr,
    },
    Daemon {
        exe: PathBuf,
        argv: Vec<String>,
    },
    /// A syscall the profile denies (`ptrace`, `mount`, `bpf`, ...).
    Denied {
        syscall: String,
    },
}

/// Errors of the recorder.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("failed to trace the sandbox: {call} => {errno}")]
    Ptrace {
        call: String,
        errno: nix::errno::Errno,
    },
}
