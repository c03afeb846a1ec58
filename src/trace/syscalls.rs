//! Decoding a traced syscall's arguments at its seccomp stop.
//!
//! The numbers and arguments come from `PTRACE_GET_SYSCALL_INFO`, which is
//! the same on every architecture; only the legacy x86_64 calls (`open`,
//! `mkdir`, ...) need a `cfg`. Paths are made absolute from the tracee's own
//! view (`/proc/PID/cwd`, `/proc/PID/fd/N`) and normalised lexically. A raw
//! `syscall` instruction stops here exactly like a libc call: seccomp sees
//! the syscall, not the code that made it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;
use nix::unistd::Pid;

use super::EventKind;
use super::mem;
use super::net::SockAddr;
use crate::sandbox::mounts::lexical_normalize;

/// `fchmodat2`, too new for some libc versions; the same number everywhere.
pub const SYS_FCHMODAT2: i64 = 452;

/// Largest payload read from a `send*` call (a DNS query fits in 512 bytes).
const MAX_PAYLOAD: usize = 512;

/// What the recorder keeps between a syscall's entry and its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A complete event; only the result is missing.
    Event(EventKind),
    /// `socket()`: the fd comes from the result.
    Socket {
        family: i32,
        kind: i32,
    },
    Connect {
        fd: i32,
        addr: SockAddr,
    },
    /// `send*` to `addr` (or to the socket's peer when `None`).
    Send {
        fd: i32,
        addr: Option<SockAddr>,
        payload: Vec<u8>,
    },
    Bind {
        fd: i32,
        addr: SockAddr,
    },
    Listen {
        fd: i32,
    },
    /// An executable `mmap`: once it is done, the process's mappings have
    /// changed (see `super::origin`).
    Remap,
    /// A denied syscall, skipped: its exit must return `EPERM`.
    Deny,
    /// Nothing worth recording (a decode that found nothing to say).
    Ignore,
}

/// Reads a link in `/proc`, for the tracee's cwd and fds.
pub fn proc_link(pid: Pid, what: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/{what}")).unwrap_or_else(|_| PathBuf::from("?"))
}

/// The tracee's working directory, cached by the recorder (it is read from
/// `/proc` once per process and forgotten on `chdir`).
pub type Cwd<'a> = &'a mut dyn FnMut() -> PathBuf;

/// Makes `raw` absolute relative to `dirfd` as the tracee sees it.
fn resolve(pid: Pid, cwd: Cwd, dirfd: u64, raw: &[u8]) -> PathBuf {
    let raw_path = Path::new(std::ffi::OsStr::from_bytes(raw));
    if raw_path.is_absolute() {
        return lexical_normalize(raw_path);
    }
    let dirfd = dirfd as i32;
    let base = if dirfd == libc::AT_FDCWD {
        cwd()
    } else {
        proc_link(pid, &format!("fd/{dirfd}"))
    };
    if raw.is_empty() {
        return lexical_normalize(&base);
    }
    lexical_normalize(&base.join(raw_path))
}

fn path_at(pid: Pid, cwd: Cwd, dirfd: u64, ptr: u64) -> Option<PathBuf> {
    let raw = mem::read_c_bytes(pid, ptr)?;
    Some(resolve(pid, cwd, dirfd, &raw))
}

fn path(pid: Pid, cwd: Cwd, ptr: u64) -> Option<PathBuf> {
    path_at(pid, cwd, libc::AT_FDCWD as u64, ptr)
}

fn fd_path(pid: Pid, fd: u64) -> PathBuf {
    lexical_normalize(&proc_link(pid, &format!("fd/{}", fd as i32)))
}

fn sockaddr(pid: Pid, ptr: u64, len: u64) -> Option<SockAddr> {
    if ptr == 0 || len == 0 {
        return None;
    }
    let bytes = mem::read_bytes(pid, ptr, (len as usize).min(128));
    SockAddr::decode(&bytes)
}

/// First iovec of a `msghdr` at `ptr`, and its name.
fn msghdr(pid: Pid, ptr: u64) -> (Option<SockAddr>, Vec<u8>) {
    // struct msghdr on 64-bit Linux: name ptr, namelen (+pad), iov ptr, iovlen, ...
    let name_ptr = mem::read_u64(pid, ptr).unwrap_or(0);
    let name_len = mem::read_u64(pid, ptr + 8).unwrap_or(0) & 0xffff_ffff;
    let iov_ptr = mem::read_u64(pid, ptr + 16).unwrap_or(0);
    let iov_len = mem::read_u64(pid, ptr + 24).unwrap_or(0);
    let addr = sockaddr(pid, name_ptr, name_len);
    let mut payload = Vec::new();
    if iov_ptr != 0 && iov_len > 0 {
        let base = mem::read_u64(pid, iov_ptr).unwrap_or(0);
        let len = mem::read_u64(pid, iov_ptr + 8).unwrap_or(0);
        if base != 0 {
            payload = mem::read_bytes(pid, base, (len as usize).min(MAX_PAYLOAD));
        }
    }
    (addr, payload)
}

fn open_event(path: Option<PathBuf>, flags: u64) -> Pending {
    match path {
        Some(path) => Pending::Event(EventKind::Open {
            path,
            flags: flags as i32,
        }),
        None => Pending::Ignore,
    }
}

fn attr(path: Option<PathBuf>, op: &str) -> Pending {
    event(path, |path| EventKind::Attr {
        path,
        op: op.to_string(),
    })
}

fn event(path: Option<PathBuf>, make: impl FnOnce(PathBuf) -> EventKind) -> Pending {
    path.map(|p| Pending::Event(make(p)))
        .unwrap_or(Pending::Ignore)
}

/// Decodes syscall `nr` with `args`, made by `pid`.
pub fn decode(pid: Pid, cwd: Cwd, nr: i64, a: [u64; 6]) -> Pending {
    match nr {
        libc::SYS_openat => open_event(path_at(pid, cwd, a[0], a[1]), a[2]),
        libc::SYS_openat2 => {
            // struct open_how starts with the u64 flags.
            let flags = mem::read_u64(pid, a[2]).unwrap_or(0);
            open_event(path_at(pid, cwd, a[0], a[1]), flags)
        }
        libc::SYS_unlinkat => event(path_at(pid, cwd, a[0], a[1]), |path| EventKind::Delete {
            path,
            dir: a[2] as i32 & libc::AT_REMOVEDIR != 0,
        }),
        libc::SYS_renameat | libc::SYS_renameat2 => {
            match (path_at(pid, cwd, a[0], a[1]), path_at(pid, cwd, a[2], a[3])) {
                (Some(from), Some(to)) => Pending::Event(EventKind::Rename { from, to }),
                _ => Pending::Ignore,
            }
        }
        libc::SYS_mkdirat => event(path_at(pid, cwd, a[0], a[1]), |path| EventKind::Mkdir {
            path,
        }),
        libc::SYS_linkat => match (path_at(pid, cwd, a[0], a[1]), path_at(pid, cwd, a[2], a[3])) {
            (Some(target), Some(path)) => Pending::Event(EventKind::Link {
                path,
                target: target.display().to_string(),
                symbolic: false,
            }),
            _ => Pending::Ignore,
        },
        libc::SYS_symlinkat => {
            let target = mem::read_string(pid, a[0]).unwrap_or_default();
            event(path_at(pid, cwd, a[1], a[2]), |path| EventKind::Link {
                path,
                target,
                symbolic: true,
            })
        }
        libc::SYS_truncate => event(path(pid, cwd, a[0]), |path| EventKind::Truncate { path }),
        libc::SYS_mknodat => attr(path_at(pid, cwd, a[0], a[1]), "mknod"),
        libc::SYS_fchownat => attr(path_at(pid, cwd, a[0], a[1]), "chown"),
        // utimensat(fd, NULL, ...) changes the fd's file: nothing to name.
        libc::SYS_utimensat if a[1] != 0 => attr(path_at(pid, cwd, a[0], a[1]), "utimes"),
        libc::SYS_fchmod => Pending::Event(EventKind::Chmod {
            path: fd_path(pid, a[0]),
            mode: a[1] as u32,
        }),
        libc::SYS_fchmodat | SYS_FCHMODAT2 => {
            event(path_at(pid, cwd, a[0], a[1]), |path| EventKind::Chmod {
                path,
                mode: a[2] as u32,
            })
        }
        libc::SYS_execve => event(path(pid, cwd, a[0]), |path| EventKind::Exec {
            path,
            argv: mem::read_argv(pid, a[1]),
        }),
        libc::SYS_execveat => event(path_at(pid, cwd, a[0], a[1]), |path| EventKind::Exec {
            path,
            argv: mem::read_argv(pid, a[2]),
        }),
        libc::SYS_socket => Pending::Socket {
            family: a[0] as i32,
            kind: a[1] as i32 & 0xf,
        },
        libc::SYS_connect => match sockaddr(pid, a[1], a[2]) {
            Some(addr) => Pending::Connect {
                fd: a[0] as i32,
                addr,
            },
            None => Pending::Ignore,
        },
        libc::SYS_bind => match sockaddr(pid, a[1], a[2]) {
            Some(addr) => Pending::Bind {
                fd: a[0] as i32,
                addr,
            },
            None => Pending::Ignore,
        },
        libc::SYS_listen => Pending::Listen { fd: a[0] as i32 },
        libc::SYS_sendto => Pending::Send {
            fd: a[0] as i32,
            addr: sockaddr(pid, a[4], a[5]),
            payload: mem::read_bytes(pid, a[1], (a[2] as usize).min(MAX_PAYLOAD)),
        },
        libc::SYS_sendmsg => {
            let (addr, payload) = msghdr(pid, a[1]);
            Pending::Send {
                fd: a[0] as i32,
                addr,
                payload,
            }
        }
        libc::SYS_sendmmsg => {
            // The first message of the vector (struct mmsghdr starts with a msghdr).
            let (addr, payload) = if a[2] > 0 {
                msghdr(pid, a[1])
            } else {
                (None, Vec::new())
            };
            Pending::Send {
                fd: a[0] as i32,
                addr,
                payload,
            }
        }
        _ => decode_legacy(pid, cwd, nr, a),
    }
}

#[cfg(target_arch = "x86_64")]
fn decode_legacy(pid: Pid, cwd: Cwd, nr: i64, a: [u64; 6]) -> Pending {
    match nr {
        libc::SYS_open => open_event(path(pid, cwd, a[0]), a[1]),
        libc::SYS_creat => open_event(
            path(pid, cwd, a[0]),
            (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
        ),
        libc::SYS_unlink => event(path(pid, cwd, a[0]), |path| EventKind::Delete {
            path,
            dir: false,
        }),
        libc::SYS_rmdir => event(path(pid, cwd, a[0]), |path| EventKind::Delete {
            path,
            dir: true,
        }),
        libc::SYS_rename => match (path(pid, cwd, a[0]), path(pid, cwd, a[1])) {
            (Some(from), Some(to)) => Pending::Event(EventKind::Rename { from, to }),
            _ => Pending::Ignore,
        },
        libc::SYS_mkdir => event(path(pid, cwd, a[0]), |path| EventKind::Mkdir { path }),
        libc::SYS_link => match (path(pid, cwd, a[0]), path(pid, cwd, a[1])) {
            (Some(target), Some(path)) => Pending::Event(EventKind::Link {
                path,
                target: target.display().to_string(),
                symbolic: false,
            }),
            _ => Pending::Ignore,
        },
        libc::SYS_symlink => {
            let target = mem::read_string(pid, a[0]).unwrap_or_default();
            event(path(pid, cwd, a[1]), |path| EventKind::Link {
                path,
                target,
                symbolic: true,
            })
        }
        libc::SYS_mknod => attr(path(pid, cwd, a[0]), "mknod"),
        libc::SYS_chown | libc::SYS_lchown => attr(path(pid, cwd, a[0]), "chown"),
        libc::SYS_utimes | libc::SYS_utime => attr(path(pid, cwd, a[0]), "utimes"),
        libc::SYS_chmod => event(path(pid, cwd, a[0]), |path| EventKind::Chmod {
            path,
            mode: a[1] as u32,
        }),
        _ => Pending::Ignore,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn decode_legacy(_pid: Pid, _cwd: Cwd, _nr: i64, _a: [u64; 6]) -> Pending {
    Pending::Ignore
}
