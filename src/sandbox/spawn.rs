//! The spawn sequence: one flat, ordered function per process.
//!
//! ```text
//! supervisor (host)                 init (pid 1 inside)            program (pid 2 inside)
//! clone(NEWUSER|NEWNS|NEWPID|...) ─► waits on the sync pipe
//! ptrace seize (+fork/exec/seccomp)
//! write uid_map / gid_map
//! close the sync pipe ────────────► mounts → pivot_root
//!                                   hostname, loopback
//!                                   fork ─────────────────────► rlimits
//!                                   reap until the program      drop capabilities
//!                                   exits, exit with its        no_new_privs + seccomp
//!                                   status (the kernel kills    execve(program)
//!                                   whatever is left)
//! ```
//!
//! The supervisor stays single-threaded until the clone, so the child may
//! allocate. Errors in the children are written to a close-on-exec pipe and
//! read back by [`Spawned::setup_error`]; the recorder owns every process
//! from the `seize` on and keeps running the loop.

use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::ptrace;
use nix::sys::resource::Resource;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use seccompiler::BpfProgram;

use super::mounts::{self, MountPlan};
use super::profile::NetMode;
use super::seccomp::{self, Watch};
use super::sys::{self, SysError};
use super::{Profile, SandboxError};

/// Everything needed to start one sandboxed program.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub profile: Profile,
    pub plan: MountPlan,
    pub program: PathBuf,
    /// Full argv, `argv[0]` included.
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    /// What the recorder (ptrace) watches; with [`Watch::Nothing`] it is not
    /// attached and the caller waits with [`wait_untraced`].
    pub watch: Watch,
}

/// A started sandbox: the init process, traced, and the error pipe.
#[derive(Debug)]
pub struct Spawned {
    pub init: Pid,
    errors: OwnedFd,
}

impl Spawned {
    /// What the sandbox's own processes reported before `execve`, if anything.
    /// Call after the init process has exited.
    pub fn setup_error(self) -> Option<String> {
        let mut file = std::fs::File::from(self.errors);
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Ptrace options for every process of the sandbox.
pub fn trace_options() -> ptrace::Options {
    ptrace::Options::PTRACE_O_TRACESYSGOOD
        | ptrace::Options::PTRACE_O_TRACEFORK
        | ptrace::Options::PTRACE_O_TRACEVFORK
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC
        | ptrace::Options::PTRACE_O_TRACESECCOMP
        | ptrace::Options::PTRACE_O_EXITKILL
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| SandboxError::Setup(format!("{what} contains a NUL byte")))
}

/// Starts `spec.program` in a new sandbox, traced by the calling process.
pub fn spawn(spec: &SandboxSpec) -> Result<Spawned, SandboxError> {
    // Everything the children need is prepared here, before the clone.
    let filters = seccomp::build_filters(&spec.profile.seccomp.deny, spec.watch)?;
    let program = cstring(spec.program.as_os_str().as_bytes(), "program path")?;
    let argv = spec
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes(), "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv, "environment variable")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (sync_read, sync_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    // No sockets at all needs no network namespace (the costliest one).
    if spec.profile.network.mode != NetMode::Host && spec.watch != Watch::NothingNoSockets {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut stack = vec![0u8; 256 * 1024];
    let parent_ends = [sync_write.as_raw_fd(), err_read.as_raw_fd()];
    let init_body = Box::new(|| {
        // The clone copied the supervisor's ends of both pipes; close them
        // here, or the read below would never see end-of-file.
        for fd in parent_ends {
            // SAFETY: these descriptors belong to this (cloned) process's
            // copy of the fd table and nothing else in it uses them.
            unsafe { libc::close(fd) };
        }
        let code = match run_init(spec, &sync_read, &filters, &program, &argv, &env) {
            Ok(code) => code,
            Err(message) => {
                report(&err_write, &message);
                127
            }
        };
        // SAFETY: `_exit` ends this process without running the parent's
        // atexit handlers or flushing its copied stdio buffers.
        unsafe { libc::_exit(code) }
    });
    let init = clone_into(init_body, &mut stack, flags)?;
    drop(sync_read);
    drop(err_write);

    let abort = |e: SandboxError| {
        let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(init, None);
        e
    };
    if !matches!(spec.watch, Watch::Nothing | Watch::NothingNoSockets) {
        ptrace::seize(init, trace_options()).map_err(|errno| {
            abort(SandboxError::Setup(format!(
                "ptrace(PTRACE_SEIZE, {init}) => {errno}"
            )))
        })?;
    }
    // The caller's uid and gid, mapped to themselves.
    write_id_maps(init).map_err(|e| abort(SandboxError::UserNamespaces(e)))?;
    // Closing the write end releases the init process.
    drop(sync_write);
    Ok(Spawned {
        init,
        errors: err_read,
    })
}

/// Waits for an untraced sandbox's init process. Returns its exit code (128 +
/// signal when killed) and whether `timeout` ran out, in which case the whole
/// sandbox was killed.
pub fn wait_untraced(init: Pid, timeout: std::time::Duration) -> (i32, bool) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            // Killing pid 1 of the PID namespace kills every process in it.
            let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
            return true;
        }
        false
    });
    let code = loop {
        match waitpid(init, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break 127,
        }
    };
    let _ = done_tx.send(());
    (code, timer.join().unwrap_or(false))
}

/// Maps the caller's uid and gid to themselves in `child`'s user namespace
/// (`setgroups` must be denied first for an unprivileged caller).
fn write_id_maps(child: Pid) -> Result<(), SysError> {
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let proc_dir = PathBuf::from(format!("/proc/{child}"));
    sys::write_proc(&proc_dir.join("setgroups"), "deny")?;
    sys::write_proc(&proc_dir.join("uid_map"), &format!("{uid} {uid} 1\n"))?;
    sys::write_proc(&proc_dir.join("gid_map"), &format!("{gid} {gid} 1\n"))
}

/// `clone` into new namespaces; a failure here means user namespaces are
/// unavailable.
fn clone_into(
    body: nix::sched::CloneCb,
    stack: &mut [u8],
    flags: CloneFlags,
) -> Result<Pid, SandboxError> {
    // SAFETY: the callback runs in a new process with a copy of our memory
    // (no CLONE_VM), like `fork`; both callers are single-threaded when they
    // clone (no thread is started before), so no lock is held by another
    // thread at the time of the copy.
    unsafe { nix::sched::clone(body, stack, flags, Some(libc::SIGCHLD)) }.map_err(|errno| {
        SandboxError::UserNamespaces(SysError {
            call: format!("clone({flags:?})"),
            errno,
        })
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Io {
        what: "create a pipe".into(),
        source: e.into(),
    })
}

fn report(fd: &OwnedFd, message: &str) {
    let _ = nix::unistd::write(fd, message.as_bytes());
    let _ = nix::unistd::write(fd, b"\n");
}

/// The sandbox's pid 1. Returns the exit code to leave with.
fn run_init(
    spec: &SandboxSpec,
    sync: &OwnedFd,
    filters: &[BpfProgram],
    program: &CString,
    argv: &[CString],
    env: &[CString],
) -> Result<i32, String> {
    // Wait until the supervisor has attached and written the id maps.
    let mut byte = [0u8; 1];
    let _ = nix::unistd::read(sync, &mut byte);
    // Die with the supervisor.
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // The filesystem view; afterwards we are in the new root, in `cwd`.
    mounts::apply(&spec.plan, &spec.cwd).map_err(|e| hint_for(&e))?;
    // A neutral host name.
    sys::sethostname("capsule").map_err(|e| e.to_string())?;
    // The sandbox's own loopback, when the profile wants it.
    if spec.profile.network.mode == NetMode::Loopback && spec.watch != Watch::NothingNoSockets {
        sys::loopback_up().map_err(|e| e.to_string())?;
    }
    // SAFETY: this process has a single thread (it was cloned from a
    // single-threaded process), so the child may run arbitrary code.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let message = match exec_program(spec, filters, program, argv, env) {
                Err(message) => message,
                Ok(never) => match never {},
            };
            return Err(message);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => return Err(format!("fork() => {errno}")),
    };
    // Reap everything; leave with the program's status. Leaving as pid 1
    // makes the kernel kill whatever the program left behind.
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Ok(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                return Ok(128 + signal as i32);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(format!("waitpid() => {errno}")),
        }
    }
}

fn hint_for(error: &SysError) -> String {
    if error.errno == nix::errno::Errno::EPERM && error.call.starts_with("mount") {
        format!(
            "{error}; the kernel refused mounts in the new user namespace \
             (on Ubuntu set kernel.apparmor_restrict_unprivileged_userns=0)"
        )
    } else {
        error.to_string()
    }
}

/// The program's side: limits, capabilities, seccomp, exec. Returns only on
/// failure.
fn exec_program(
    spec: &SandboxSpec,
    filters: &[BpfProgram],
    program: &CString,
    argv: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible, String> {
    let limits = &spec.profile.limits;
    // Resource limits from the profile; no core dumps of build scripts.
    sys::setrlimit(Resource::RLIMIT_NPROC, limits.max_processes).map_err(|e| e.to_string())?;
    sys::setrlimit(
        Resource::RLIMIT_FSIZE,
        limits.max_file_size_mib * 1024 * 1024,
    )
    .map_err(|e| e.to_string())?;
    sys::setrlimit(Resource::RLIMIT_CORE, 0).map_err(|e| e.to_string())?;
    // No controlling terminal: /dev/tty cannot reach the user's shell.
    nix::unistd::setsid().map_err(|e| format!("setsid() => {e}"))?;
    // No capabilities, even for a caller that is root.
    sys::drop_capabilities().map_err(|e| e.to_string())?;
    // no_new_privs (set by seccompiler) and the filters; from here on the
    // recorder sees the traced syscalls.
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(|e| format!("seccomp: {e}"))?;
    }
    let errno = nix::unistd::execve(program, argv, env).unwrap_err();
    Err(format!("execve({program:?}) => {errno}"))
}

/// Checks, before any build starts, that this machine lets us create the
/// sandbox's namespaces and mount in them. A child is cloned into new
/// namespaces, given its id maps, and tries the first two mounts of the real
/// sequence; nothing else runs in it.
pub fn probe() -> Result<(), SandboxError> {
    let (sync_read, sync_write) = pipe()?;
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET;
    let write_end = sync_write.as_raw_fd();
    let mut stack = vec![0u8; 64 * 1024];
    let body = Box::new(|| {
        // SAFETY: the child's copy of the supervisor's write end; unused here.
        unsafe { libc::close(write_end) };
        let mut byte = [0u8; 1];
        let _ = nix::unistd::read(&sync_read, &mut byte);
        let root = std::path::Path::new("/");
        let result = sys::mount(
            None,
            root,
            None,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None,
        )
        .and_then(|()| {
            sys::mount(
                Some(std::path::Path::new("tmpfs")),
                std::path::Path::new("/tmp"),
                Some("tmpfs"),
                sys::fresh_fs_flags(),
                None,
            )
        });
        let code = match result {
            Ok(()) => 0,
            Err(e) => 10 + e.errno as i32,
        };
        // SAFETY: leaves the probe child without running the parent's
        // atexit handlers.
        unsafe { libc::_exit(code.min(255)) }
    });
    let child = clone_into(body, &mut stack, flags)?;
    let mapped = write_id_maps(child);
    drop(sync_write);
    let status = waitpid(child, None);
    mapped.map_err(SandboxError::UserNamespaces)?;
    match status {
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(WaitStatus::Exited(_, code)) if code >= 10 => {
            Err(SandboxError::UserNamespaces(SysError {
                call: "mount(\"/tmp\", \"tmpfs\") in a new user namespace".into(),
                errno: nix::errno::Errno::from_raw(code - 10),
            }))
        }
        other => Err(SandboxError::Setup(format!(
            "the namespace probe ended with {other:?}"
        ))),
    }
}
