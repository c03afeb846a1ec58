//! The ptrace loop.
//!
//! Every process and thread of the sandbox is traced from its birth (the
//! `PTRACE_O_TRACE{FORK,VFORK,CLONE}` options attach children before they
//! run). Only two kinds of stop carry work: the seccomp stop at the entry of
//! a recorded syscall (decode the arguments, resume to the exit) and the
//! syscall-exit stop that follows (read the result, finish the event).
//! Process births, `execve`s and deaths update the process table; when the
//! program's main process exits, whatever else is still alive is recorded as
//! a daemon before the sandbox's pid 1 exits and the kernel kills it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::net::{SockAddr, dns_query_name};
use super::origin::{Classify, Origin, Origins, Scan};
use super::syscalls::{self, Pending};
use super::{EventKind, RawEvent, TraceError};

/// How the traced program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOutcome {
    pub events: Vec<RawEvent>,
    /// Exit code of the sandbox (the program's, or 128 + signal).
    pub exit_code: i32,
    /// The program was killed because the profile's timeout ran out.
    pub timed_out: bool,
}

/// Options of the loop.
pub struct TraceConfig {
    /// The program the sandbox's init starts (its own `execve` is not an event).
    pub program: PathBuf,
    pub timeout: Duration,
    /// Let a UDP `connect` to port 53 that the empty network refused look
    /// successful, so the resolver's next `send` shows the name it asks for.
    /// The send then fails (the socket is not connected), so nothing leaves.
    pub reveal_dns: bool,
    /// Read-only opens of these paths (system locations whose reads are
    /// folded into one observation anyway) are recorded at their entry, with
    /// the host's answer to "does it exist", instead of waiting for the
    /// result: it halves the stops of a compiler's header and library search.
    pub quick_read: Option<QuickRead>,
    /// Find out whose code made each recorded call (see
    /// [`super::origin`]); `None` leaves every event's origin unknown.
    pub attribution: Option<Classify>,
}

/// Decides which read-only opens take the quick path.
pub type QuickRead = Box<dyn Fn(&std::path::Path) -> bool + Send>;

#[derive(Debug, Default)]
struct Task {
    tgid: i32,
    pending: Option<Pending>,
    /// Origin of the pending call (`None`: its process's creator decides).
    origin: Option<Origin>,
}

#[derive(Debug, Clone, Default)]
struct Process {
    exe: PathBuf,
    argv: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Sock {
    kind: i32,
    peer: Option<SockAddr>,
    bound: Option<SockAddr>,
}

struct Tracer {
    config: TraceConfig,
    init: Pid,
    main: Option<i32>,
    main_exec_seen: bool,
    tasks: HashMap<i32, Task>,
    procs: HashMap<i32, Process>,
    sockets: HashMap<(i32, i32), Sock>,
    /// Tasks whose parent's fork event has been seen.
    known_children: std::collections::HashSet<i32>,
    /// Tasks that exited before their parent's fork event was seen.
    reaped: std::collections::HashSet<i32>,
    /// Working directory per process, read once from `/proc`.
    cwds: HashMap<i32, PathBuf>,
    /// `execve` attempts that failed with ENOENT, kept until we know whether
    /// the same program name was found later on `PATH`.
    exec_misses: HashMap<i32, Vec<RawEvent>>,
    events: Vec<RawEvent>,
    exit_code: Option<i32>,
    origins: Option<Origins>,
    /// An attributed library has been opened: from now on calls can be
    /// someone else's than the program's.
    library_opened: bool,
    /// Each task's creator (thread group) and the origin of the call that
    /// created it (`None`: its creator's own creator decides).
    births: HashMap<i32, (i32, Option<Origin>)>,
    /// Processes that made calls with no attributed library mapped: their
    /// calls are their creator's doing, resolved when tracing ends (a
    /// child's first calls can be seen before its parent's fork event).
    creator_decides: std::collections::HashSet<i32>,
}

fn errno_name(code: i64) -> String {
    format!("{:?}", Errno::from_raw(code as i32))
}

/// Reads a numeric field (`Tgid:`, `PPid:`) of `/proc/PID/status`.
fn status_field(pid: i32, field: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().parse().ok())
}

/// A process's thread-group id (itself when /proc no longer knows it).
fn tgid_of(pid: i32) -> i32 {
    status_field(pid, "Tgid:").unwrap_or(pid)
}

/// A process's parent pid.
fn parent_of(pid: i32) -> Option<i32> {
    status_field(pid, "PPid:")
}

/// Runs the loop until every process of the sandbox is gone.
pub fn trace(init: Pid, mut config: TraceConfig) -> Result<TraceOutcome, TraceError> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let timeout = config.timeout;
    let timer = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            // Killing pid 1 of the PID namespace kills every process in it.
            let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
            return true;
        }
        false
    });
    let origins = config.attribution.take().map(Origins::new);
    let mut tracer = Tracer {
        config,
        init,
        main: None,
        main_exec_seen: false,
        tasks: HashMap::new(),
        procs: HashMap::new(),
        sockets: HashMap::new(),
        cwds: HashMap::new(),
        known_children: Default::default(),
        reaped: Default::default(),
        exec_misses: HashMap::new(),
        events: Vec::new(),
        exit_code: None,
        origins,
        library_opened: false,
        births: HashMap::new(),
        creator_decides: Default::default(),
    };
    tracer.tasks.insert(
        init.as_raw(),
        Task {
            tgid: init.as_raw(),
            ..Default::default()
        },
    );
    let result = tracer.run();
    tracer.resolve_creators();
    let _ = done_tx.send(());
    let timed_out = timer.join().unwrap_or(false);
    result?;
    Ok(TraceOutcome {
        events: tracer.events,
        exit_code: tracer.exit_code.unwrap_or(if timed_out { 137 } else { 1 }),
        timed_out,
    })
}

impl Tracer {
    fn run(&mut self) -> Result<(), TraceError> {
        loop {
            let status = match waitpid(None::<Pid>, Some(WaitPidFlag::__WALL)) {
                Ok(status) => status,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => return Ok(()),
                Err(errno) => {
                    return Err(TraceError::Ptrace {
                        call: "waitpid(-1, __WALL)".into(),
                        errno,
                    });
                }
            };
            match status {
                WaitStatus::Exited(pid, code) => self.on_exit(pid, code),
                WaitStatus::Signaled(pid, signal, _) => self.on_exit(pid, 128 + signal as i32),
                WaitStatus::PtraceEvent(pid, _, event) => self.on_event(pid, event)?,
                WaitStatus::PtraceSyscall(pid) => {
                    if self.on_syscall_stop(pid) {
                        resume(ptrace::cont(pid, None));
                    } else {
                        resume(ptrace::syscall(pid, None));
                    }
                }
                WaitStatus::Stopped(pid, signal) => {
                    self.task(pid);
                    // A signal for the tracee: deliver it.
                    resume(ptrace::cont(pid, Some(signal)));
                }
                WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
            }
        }
    }

    fn task(&mut self, pid: Pid) -> &mut Task {
        self.tasks.entry(pid.as_raw()).or_insert_with(|| Task {
            tgid: tgid_of(pid.as_raw()),
            ..Default::default()
        })
    }

    /// Whose code made the call `task` is stopped in (`ip`, `sp` from the
    /// stop's syscall info). `None`: the process's creator decides.
    fn origin_at(&mut self, task: Pid, tgid: i32, ip: u64, sp: u64) -> Option<Origin> {
        let Some(origins) = &mut self.origins else {
            return Some(Origin::Unknown);
        };
        if !self.library_opened {
            return Some(Origin::Own);
        }
        match origins.scan(task, tgid, ip, sp) {
            Scan::Found(origin) => Some(origin),
            Scan::NotFound => Some(Origin::Unknown),
            Scan::NoLibrary => None,
        }
    }

    /// The origin of the call a task is stopped in at a non-syscall stop.
    fn origin_now(&mut self, task: Pid, tgid: i32) -> Option<Origin> {
        if self.origins.is_none() {
            return Some(Origin::Unknown);
        }
        match ptrace::syscall_info(task) {
            Ok(info) => self.origin_at(task, tgid, info.instruction_pointer, info.stack_pointer),
            Err(_) => None,
        }
    }

    /// The origin of everything process `pid` does when its creator decides.
    fn creator_origin(&self, pid: i32) -> Origin {
        let mut pid = pid;
        for _ in 0..64 {
            match self.births.get(&pid) {
                Some((_, Some(origin))) => return origin.clone(),
                Some((parent, None)) => pid = *parent,
                None => break,
            }
        }
        Origin::Unknown
    }

    /// Gives the calls of processes without an attributed library the origin
    /// of their creation.
    fn resolve_creators(&mut self) {
        let mut events = std::mem::take(&mut self.events);
        for event in events
            .iter_mut()
            .filter(|e| e.origin.is_unknown() && self.creator_decides.contains(&e.pid))
        {
            event.origin = self.creator_origin(event.pid);
        }
        self.events = events;
    }

    fn on_event(&mut self, pid: Pid, event: i32) -> Result<(), TraceError> {
        match event {
            libc::PTRACE_EVENT_SECCOMP => {
                if self.on_seccomp(pid) {
                    // Resume to the syscall's exit stop to read its result.
                    resume(ptrace::syscall(pid, None));
                } else {
                    resume(ptrace::cont(pid, None));
                }
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = ptrace::getevent(pid) {
                    self.on_spawn(pid, child as i32, event);
                }
                resume(ptrace::cont(pid, None));
            }
            libc::PTRACE_EVENT_EXEC => {
                self.on_exec(pid);
                // The syscall-exit stop of the execve follows.
                resume(ptrace::syscall(pid, None));
            }
            // The first stop of an auto-attached child, or a group stop.
            _ => resume(ptrace::cont(pid, None)),
        }
        Ok(())
    }

    /// Decodes a syscall at its entry. Returns whether its exit must be seen.
    fn on_seccomp(&mut self, pid: Pid) -> bool {
        let Ok(info) = ptrace::syscall_info(pid) else {
            return false;
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
            return false;
        }
        // SAFETY: `op` is PTRACE_SYSCALL_INFO_SECCOMP, so the kernel filled
        // the `seccomp` member of the union.
        let (nr, args, tag) = unsafe {
            (
                info.u.seccomp.nr as i64,
                info.u.seccomp.args,
                info.u.seccomp.ret_data,
            )
        };
        let tgid = self.task(pid).tgid;
        let origin = self.origin_at(pid, tgid, info.instruction_pointer, info.stack_pointer);
        if tag == crate::sandbox::seccomp::DENY_TAG {
            let syscall = crate::sandbox::seccomp::syscall_name(nr)
                .map(str::to_string)
                .unwrap_or_else(|| format!("syscall-{nr}"));
            self.push(
                tgid,
                EventKind::Denied { syscall },
                Some("EPERM".into()),
                origin,
            );
            skip_syscall(pid);
            self.task(pid).pending = Some(Pending::Deny);
            return true;
        }
        if self.main.is_none() && parent_of(tgid) == Some(self.init.as_raw()) {
            // The program's first stop can come before init's fork event.
            self.main = Some(tgid);
        }
        let is_program_exec = Some(tgid) == self.main
            && !self.main_exec_seen
            && (nr == libc::SYS_execve || nr == libc::SYS_execveat);
        if nr == libc::SYS_mmap {
            // Only executable mappings stop here (when attribution is on).
            self.task(pid).pending = Some(Pending::Remap);
            return true;
        }
        if nr == libc::SYS_chdir || nr == libc::SYS_fchdir {
            // Cached working directories may be stale from here on. All of
            // them: a CLONE_FS child shares its parent's. chdir is rare.
            self.cwds.clear();
            return false;
        }
        let pending = if is_program_exec {
            Pending::Ignore
        } else {
            let cwds = &mut self.cwds;
            let mut cwd = || {
                cwds.entry(tgid)
                    .or_insert_with(|| syscalls::proc_link(pid, "cwd"))
                    .clone()
            };
            syscalls::decode(pid, &mut cwd, nr, args)
        };
        if let (Pending::Event(EventKind::Open { path, flags }), Some(quick)) =
            (&pending, &self.config.quick_read)
        {
            let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY
                && flags & (libc::O_CREAT | libc::O_TRUNC) == 0;
            // One lstat answers both questions: a symlink goes the slow way
            // (its target may be hidden), a missing file is ENOENT.
            let link = (read_only && quick(path)).then(|| path.symlink_metadata());
            if let Some(meta) = link.filter(|m| !m.as_ref().is_ok_and(|m| m.is_symlink())) {
                let error = meta.is_err().then(|| "ENOENT".to_string());
                if error.is_none() {
                    self.note_library(path);
                }
                let Pending::Event(kind) = pending else {
                    unreachable!("matched above")
                };
                self.push(tgid, kind, error, origin);
                return false;
            }
        }
        let task = self.task(pid);
        task.pending = Some(pending);
        task.origin = origin;
        true
    }

    /// Handles a syscall stop. Returns false when the exit of the pending
    /// syscall is still to come (the caller resumes to it), true when done.
    fn on_syscall_stop(&mut self, pid: Pid) -> bool {
        let Some(pending) = self.task(pid).pending.take() else {
            return true;
        };
        let Ok(info) = ptrace::syscall_info(pid) else {
            return true;
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_EXIT {
            // Not the exit yet: keep waiting for it.
            self.task(pid).pending = Some(pending);
            return false;
        }
        // SAFETY: `op` is PTRACE_SYSCALL_INFO_EXIT, so the kernel filled the
        // `exit` member of the union.
        let (rval, is_error) = unsafe { (info.u.exit.sval, info.u.exit.is_error != 0) };
        let error = is_error.then(|| errno_name(-rval));
        let task = self.task(pid);
        let (tgid, origin) = (task.tgid, std::mem::take(&mut task.origin));
        self.finish(pid, tgid, pending, rval, error, origin);
        true
    }

    /// An attributed library was opened: it is about to be mapped, and from
    /// now on calls can be its code's.
    fn note_library(&mut self, path: &std::path::Path) {
        if let Some(origins) = &mut self.origins
            && origins.is_library(path)
        {
            origins.forget(None);
            self.library_opened = true;
        }
    }

    fn push(&mut self, pid: i32, kind: EventKind, error: Option<String>, origin: Option<Origin>) {
        let origin = self.settle(pid, origin);
        self.events.push(RawEvent {
            pid,
            kind,
            error,
            origin,
        });
    }

    /// An event's origin for now: when the creator decides, `Unknown` until
    /// [`Self::resolve_creators`].
    fn settle(&mut self, pid: i32, origin: Option<Origin>) -> Origin {
        origin.unwrap_or_else(|| {
            self.creator_decides.insert(pid);
            Origin::Unknown
        })
    }

    fn finish(
        &mut self,
        pid: Pid,
        tgid: i32,
        pending: Pending,
        rval: i64,
        error: Option<String>,
        origin: Option<Origin>,
    ) {
        match pending {
            Pending::Ignore => {}
            Pending::Remap => {
                if let Some(origins) = &mut self.origins {
                    origins.forget(Some(tgid));
                }
            }
            Pending::Deny => {
                set_result(pid, -(libc::EPERM as i64));
            }
            Pending::Event(kind @ EventKind::Exec { .. }) => {
                let origin = self.settle(tgid, origin);
                let event = RawEvent {
                    pid: tgid,
                    kind,
                    error,
                    origin,
                };
                if event.error.as_deref() == Some("ENOENT") {
                    self.exec_misses.entry(tgid).or_default().push(event);
                } else {
                    let found = exec_name(&event.kind).map(str::to_owned);
                    self.flush_misses(tgid, found.as_deref());
                    self.events.push(event);
                }
            }
            Pending::Event(EventKind::Open { path, flags }) if error.is_none() && rval >= 0 => {
                // What was really opened: a symlink must not hide the target.
                let opened = syscalls::proc_link(pid, &format!("fd/{rval}"));
                let path = if opened.is_absolute() && opened != path {
                    opened
                } else {
                    path
                };
                self.note_library(&path);
                self.push(tgid, EventKind::Open { path, flags }, error, origin);
            }
            Pending::Event(EventKind::Open { path, flags })
                if error.is_some() && path.symlink_metadata().is_ok_and(|m| m.is_symlink()) =>
            {
                // A failed open through a planted symlink: report where it
                // pointed (as the host resolves it), so a hidden target shows.
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                self.push(tgid, EventKind::Open { path, flags }, error, origin);
            }
            Pending::Event(kind) => self.push(tgid, kind, error, origin),
            Pending::Socket { family, kind } => {
                if error.is_none() {
                    self.sockets.insert(
                        (tgid, rval as i32),
                        Sock {
                            kind,
                            ..Default::default()
                        },
                    );
                }
                self.push(tgid, EventKind::Socket { family, kind }, error, origin);
            }
            Pending::Connect { fd, addr } => {
                let sock = self.sockets.entry((tgid, fd)).or_default();
                let datagram = sock.kind == libc::SOCK_DGRAM;
                let mut error = error;
                if error.as_deref() == Some("ENETUNREACH")
                    && datagram
                    && addr.port() == Some(53)
                    && self.config.reveal_dns
                    && pretend_success(pid)
                {
                    error = Some("ENETUNREACH".into());
                    sock.peer = Some(addr.clone());
                } else if error.is_none() {
                    sock.peer = Some(addr.clone());
                }
                self.push(tgid, EventKind::Connect { addr, datagram }, error, origin);
            }
            Pending::Send { fd, addr, payload } => {
                let sock = self.sockets.get(&(tgid, fd));
                let explicit = addr.is_some();
                let Some(addr) = addr.or_else(|| sock.and_then(|s| s.peer.clone())) else {
                    return;
                };
                // A DNS query is recognised by its content, on any port:
                // exfiltration through a resolver of one's own need not use 53.
                let datagram = sock.is_none_or(|s| s.kind == libc::SOCK_DGRAM);
                let dns = (datagram || addr.port() == Some(53))
                    .then(|| dns_query_name(&payload))
                    .flatten();
                // Sends on a connected socket repeat its `connect`; only DNS
                // queries and sends to an explicit address are events.
                if explicit || dns.is_some() {
                    self.push(tgid, EventKind::Send { addr, dns }, error, origin);
                }
            }
            Pending::Bind { fd, addr } => {
                let sock = self.sockets.entry((tgid, fd)).or_default();
                if error.is_none() {
                    sock.bound = Some(addr.clone());
                }
                let serves = match &addr {
                    SockAddr::Inet { port, .. } => *port != 0 && sock.kind == libc::SOCK_DGRAM,
                    SockAddr::Unix { .. } | SockAddr::Abstract { .. } => {
                        sock.kind == libc::SOCK_DGRAM
                    }
                    _ => false,
                };
                // A datagram socket bound to a port receives without listen().
                if serves {
                    self.push(tgid, EventKind::Listen { addr }, error, origin);
                }
            }
            Pending::Listen { fd } => {
                let addr = self
                    .sockets
                    .get(&(tgid, fd))
                    .and_then(|s| s.bound.clone())
                    .unwrap_or(SockAddr::Other { family: 0 });
                self.push(tgid, EventKind::Listen { addr }, error, origin);
            }
        }
    }

    /// Records the ENOENT exec attempts of `tgid`, except those that were a
    /// `PATH` search for `found` (the program that was then run).
    fn flush_misses(&mut self, tgid: i32, found: Option<&str>) {
        if let Some(misses) = self.exec_misses.remove(&tgid) {
            for miss in misses {
                if found.is_none() || exec_name(&miss.kind) != found {
                    self.events.push(miss);
                }
            }
        }
    }

    fn on_spawn(&mut self, parent: Pid, child: i32, event: i32) {
        let parent_tgid = self.task(parent).tgid;
        let is_thread = event == libc::PTRACE_EVENT_CLONE && tgid_of(child) != child;
        let tgid = if is_thread { parent_tgid } else { child };
        // The child may already have run, and even exited, before this event
        // is seen (a vfork child that execs and exits at once): its own stops
        // come first then, and a dead child must not come back as a ghost.
        let already_gone = self.reaped.remove(&child);
        self.known_children.insert(child);
        let origin = self.origin_now(parent, parent_tgid);
        self.births.insert(child, (parent_tgid, origin.clone()));
        if !already_gone {
            self.tasks.entry(child).or_default().tgid = tgid;
        }
        if is_thread {
            return;
        }
        let proc = self.procs.get(&parent_tgid).cloned().unwrap_or_default();
        if !already_gone {
            self.procs.entry(child).or_insert_with(|| proc.clone());
        }
        let inherited: Vec<_> = if already_gone {
            Vec::new()
        } else {
            self.sockets
                .iter()
                .filter(|((owner, _), _)| *owner == parent_tgid)
                .map(|((_, fd), s)| ((child, *fd), s.clone()))
                .collect()
        };
        self.sockets.extend(inherited);
        if parent_tgid == self.init.as_raw() {
            // The init process starting the program is not the program's doing.
            if self.main.is_none() {
                self.main = Some(child);
            }
            return;
        }
        self.push(parent_tgid, EventKind::Fork { exe: proc.exe }, None, origin);
    }

    fn on_exec(&mut self, pid: Pid) {
        // A non-leader thread that execs takes over the leader's pid.
        if let Ok(former) = ptrace::getevent(pid) {
            let former = former as i32;
            if former != pid.as_raw()
                && let Some(task) = self.tasks.remove(&former)
            {
                self.tasks.insert(pid.as_raw(), task);
            }
        }
        let tgid = pid.as_raw();
        self.task(pid).tgid = tgid;
        self.sockets.retain(|(owner, _), _| *owner != tgid);
        if let Some(origins) = &mut self.origins {
            origins.forget(Some(tgid));
        }
        let is_program = Some(tgid) == self.main && !self.main_exec_seen;
        let proc = if is_program {
            self.main_exec_seen = true;
            Process {
                exe: self.config.program.clone(),
                argv: Vec::new(),
            }
        } else {
            match &self.task(pid).pending {
                Some(Pending::Event(EventKind::Exec { path, argv })) => Process {
                    exe: path.clone(),
                    argv: argv.clone(),
                },
                _ => Process {
                    exe: std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default(),
                    argv: Vec::new(),
                },
            }
        };
        self.procs.insert(tgid, proc);
    }

    fn on_exit(&mut self, pid: Pid, code: i32) {
        let raw = pid.as_raw();
        let task = self.tasks.remove(&raw);
        if !self.known_children.contains(&raw) {
            // Its parent's fork event is still to come.
            self.reaped.insert(raw);
        }
        let tgid = task.as_ref().map(|t| t.tgid).unwrap_or(raw);
        // Killed inside a recorded syscall: its effect may have happened.
        if let Some(Task {
            pending: Some(Pending::Event(kind)),
            origin,
            ..
        }) = task
        {
            self.push(tgid, kind, Some("killed-in-syscall".into()), origin);
        }
        if raw != tgid {
            return;
        }
        self.flush_misses(tgid, None);
        if Some(raw) == self.main {
            // The program is done: everything still alive outlived it.
            let mut daemons: Vec<_> = self
                .procs
                .iter()
                .filter(|(t, _)| **t != raw && **t != self.init.as_raw())
                .filter(|(t, _)| self.tasks.contains_key(t))
                .map(|(t, p)| (*t, p.clone()))
                .collect();
            daemons.sort_by_key(|(t, _)| *t);
            for (t, p) in daemons {
                self.push(
                    t,
                    EventKind::Daemon {
                        exe: p.exe,
                        argv: p.argv,
                    },
                    None,
                    None,
                );
            }
        }
        if raw == self.init.as_raw() {
            self.exit_code = Some(code);
        }
        self.procs.remove(&raw);
        self.cwds.remove(&raw);
        if let Some(origins) = &mut self.origins {
            origins.forget(Some(raw));
        }
        self.known_children.remove(&raw);
        self.sockets.retain(|(owner, _), _| *owner != raw);
    }
}

/// The program name an exec event looks for (its file name).
fn exec_name(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::Exec { path, .. } => path.file_name().and_then(|n| n.to_str()),
        _ => None,
    }
}

/// Ignores ESRCH: the tracee may have been killed meanwhile.
fn resume(result: nix::Result<()>) {
    let _ = result;
}

/// Rewrites the syscall's return value to 0 at its exit stop.
fn pretend_success(pid: Pid) -> bool {
    set_result(pid, 0)
}

/// Sets the return value of the syscall at its exit stop.
#[cfg(target_arch = "x86_64")]
fn set_result(pid: Pid, value: i64) -> bool {
    match ptrace::getregs(pid) {
        Ok(mut regs) => {
            regs.rax = value as u64;
            ptrace::setregs(pid, regs).is_ok()
        }
        Err(_) => false,
    }
}

/// Turns the syscall at its seccomp stop into no syscall at all (-1).
#[cfg(target_arch = "x86_64")]
fn skip_syscall(pid: Pid) {
    if let Ok(mut regs) = ptrace::getregs(pid) {
        regs.orig_rax = u64::MAX;
        let _ = ptrace::setregs(pid, regs);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn set_result(_pid: Pid, _value: i64) -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_syscall(_pid: Pid) {}
