//! The seccomp filters installed in the sandboxed process, built with
//! seccompiler.
//!
//! Three small filters are stacked because seccompiler gives one action per
//! filter and the kernel applies the strictest result of all of them:
//! 1. `clone` with namespace flags (when the profile denies anything), and always
//!    `io_uring_*`, `clone(CLONE_UNTRACED)` and the TIOCSTI/TIOCLINUX
//!    `ioctl`s → `EPERM`;
//! 2. `clone3` → `ENOSYS` (its flags live in memory a filter cannot read, and
//!    libc falls back to `clone`, which filter 1 can check);
//! 3. the recorded syscalls → `SECCOMP_RET_TRACE`, so only they stop in the
//!    recorder and everything else runs at full speed;
//! 4. on x86_64, the profile's deny list → `SECCOMP_RET_TRACE` with
//!    [`DENY_TAG`]: the recorder records the attempt and fails it with `EPERM`
//!    (elsewhere the deny list goes to filter 1 and attempts are not recorded).
//!
//! A hand-written guard in front rejects the x32 ABI (syscall numbers with
//! bit 30 set), which would otherwise reach the same kernel entry points under
//! numbers the lists above do not mention. seccompiler's own architecture
//! check already kills i386 `int 0x80` calls.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::SandboxError;

/// The value passed with `SECCOMP_RET_TRACE` for a syscall to record.
pub const TRACE_TAG: u32 = 0x0ca9;
/// The value passed with `SECCOMP_RET_TRACE` for a syscall the profile
/// denies: the recorder records the attempt, skips the call and makes it
/// return `EPERM` (were the recorder gone, the kernel would return `ENOSYS`:
/// still denied).
pub const DENY_TAG: u32 = 0x0cad;

/// Whether the recorder can skip a syscall and set its result here.
pub const RECORDS_DENIALS: bool = cfg!(target_arch = "x86_64");

/// Every syscall name a profile may deny.
const DENIABLE: &[&str] = &[
    "ptrace",
    "process_vm_writev",
    "process_vm_readv",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "chroot",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "personality",
    "socket",
    "connect",
    "bind",
    "listen",
    "execve",
    "execveat",
];

/// The name of a deniable syscall number.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    DENIABLE
        .iter()
        .copied()
        .find(|n| syscall_number(n) == Some(nr))
}

/// Syscall names a profile may deny, with their numbers on this architecture.
pub fn syscall_number(name: &str) -> Option<i64> {
    let nr = match name {
        "ptrace" => libc::SYS_ptrace,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "move_mount" => libc::SYS_move_mount,
        "open_tree" => libc::SYS_open_tree,
        "fsopen" => libc::SYS_fsopen,
        "fsmount" => libc::SYS_fsmount,
        "fsconfig" => libc::SYS_fsconfig,
        "fspick" => libc::SYS_fspick,
        "mount_setattr" => libc::SYS_mount_setattr,
        "unshare" => libc::SYS_unshare,
        "setns" => libc::SYS_setns,
        "bpf" => libc::SYS_bpf,
        "perf_event_open" => libc::SYS_perf_event_open,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "keyctl" => libc::SYS_keyctl,
        "add_key" => libc::SYS_add_key,
        "request_key" => libc::SYS_request_key,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        "io_uring_enter" => libc::SYS_io_uring_enter,
        "io_uring_register" => libc::SYS_io_uring_register,
        "userfaultfd" => libc::SYS_userfaultfd,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "chroot" => libc::SYS_chroot,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "reboot" => libc::SYS_reboot,
        "acct" => libc::SYS_acct,
        "quotactl" => libc::SYS_quotactl,
        "settimeofday" => libc::SYS_settimeofday,
        "clock_settime" => libc::SYS_clock_settime,
        "adjtimex" => libc::SYS_adjtimex,
        "personality" => libc::SYS_personality,
        "socket" => libc::SYS_socket,
        "connect" => libc::SYS_connect,
        "bind" => libc::SYS_bind,
        "listen" => libc::SYS_listen,
        "execve" => libc::SYS_execve,
        "execveat" => libc::SYS_execveat,
        _ => return None,
    };
    Some(nr)
}

/// The syscalls the recorder decodes. Each one costs two ptrace stops (entry
/// and exit); everything not listed here costs nothing.
pub fn traced_syscalls() -> Vec<i64> {
    let mut list = vec![
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_mkdirat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_truncate,
        libc::SYS_mknodat,
        libc::SYS_fchownat,
        libc::SYS_utimensat,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        crate::trace::syscalls::SYS_FCHMODAT2,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_sendto,
        libc::SYS_sendmsg,
        libc::SYS_sendmmsg,
        libc::SYS_bind,
        libc::SYS_listen,
        // Not recorded: they only tell the recorder that a cached working
        // directory is stale.
        libc::SYS_chdir,
        libc::SYS_fchdir,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_chmod,
        libc::SYS_mknod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_utimes,
        libc::SYS_utime,
    ]);
    list
}

fn target_arch() -> Result<TargetArch, SandboxError> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|_| SandboxError::UnsupportedArch(std::env::consts::ARCH))
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    action: SeccompAction,
) -> Result<BpfProgram, SandboxError> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, target_arch()?)
        .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string()))
}

/// How much the recorder watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// No recorder attached: nothing is marked for tracing and the deny list
    /// fails with `EPERM` directly.
    Nothing,
    /// Nothing, and no sockets at all: `socket()` fails with `EPERM`. The
    /// cheap way to cut off the network of a program that has no use for
    /// sockets (rustc), instead of a network namespace.
    NothingNoSockets,
    /// The recorded syscalls.
    Syscalls,
    /// Those, and executable `mmap`s, so the recorder knows when a process's
    /// code mappings change (attribution of calls to libraries).
    SyscallsAndCode,
}

/// Compiles every filter, in the order they are to be installed.
pub fn build_filters(deny: &[String], watch: Watch) -> Result<Vec<BpfProgram>, SandboxError> {
    let traced = !matches!(watch, Watch::Nothing | Watch::NothingNoSockets);
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut recorded_denials: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for name in deny {
        let nr = syscall_number(name)
            .ok_or_else(|| SandboxError::Seccomp(format!("unknown syscall `{name}`")))?;
        if RECORDS_DENIALS && traced {
            recorded_denials.insert(nr, Vec::new());
        } else {
            denied.insert(nr, Vec::new());
        }
    }
    // Always denied, whatever the profile: what would blind the recorder
    // (`io_uring` does file and network I/O without syscalls; a
    // CLONE_UNTRACED child escapes ptrace) or reach the user's terminal.
    for nr in [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        denied.insert(nr, Vec::new());
    }
    let seccomp_err = |e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string());
    let arg_is = |index: u8, value: u64| -> Result<SeccompRule, SandboxError> {
        let cond = SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
            .map_err(seccomp_err)?;
        SeccompRule::new(vec![cond]).map_err(seccomp_err)
    };
    let arg_has = |index: u8, flag: u64| -> Result<SeccompRule, SandboxError> {
        let cond = SeccompCondition::new(
            index,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(seccomp_err)?;
        SeccompRule::new(vec![cond]).map_err(seccomp_err)
    };
    // Typing into the terminal (TIOCSTI) and console tricks (TIOCLINUX).
    denied.insert(
        libc::SYS_ioctl,
        vec![arg_is(1, libc::TIOCSTI)?, arg_is(1, libc::TIOCLINUX)?],
    );
    let mut clone_rules = vec![arg_has(0, libc::CLONE_UNTRACED as u64)?];
    // With a deny list, no new namespaces either.
    if !deny.is_empty() {
        for flag in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
        ] {
            clone_rules.push(arg_has(0, flag as u64)?);
        }
    }
    denied.insert(libc::SYS_clone, clone_rules);
    if watch == Watch::NothingNoSockets {
        denied.insert(libc::SYS_socket, Vec::new());
    }

    let mut filters = vec![x32_guard()];
    filters.push(compile(denied, SeccompAction::Errno(libc::EPERM as u32))?);
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();
    filters.push(compile(clone3, SeccompAction::Errno(libc::ENOSYS as u32))?);
    if traced {
        let mut recorded: BTreeMap<i64, Vec<SeccompRule>> = traced_syscalls()
            .into_iter()
            .map(|nr| (nr, Vec::new()))
            .collect();
        if watch == Watch::SyscallsAndCode {
            recorded.insert(libc::SYS_mmap, vec![arg_has(2, libc::PROT_EXEC as u64)?]);
        }
        filters.push(compile(recorded, SeccompAction::Trace(TRACE_TAG))?);
    }
    // Installed last, so its tag wins over TRACE_TAG for a syscall in both.
    if !recorded_denials.is_empty() {
        filters.push(compile(recorded_denials, SeccompAction::Trace(DENY_TAG))?);
    }
    Ok(filters)
}

/// A filter that fails every x32-ABI syscall with `EPERM`.
fn x32_guard() -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const BPF_RET_K: u16 = 0x06;
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // Load the syscall number (offset 0 of struct seccomp_data).
        stmt(BPF_LD_W_ABS, 0),
        // x32 numbers carry bit 30: at or above it, fall through to EPERM.
        sock_filter {
            code: BPF_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(BPF_RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_every_builtin_profile() {
        for (name, _) in super::super::profile::BUILTIN {
            let (profile, _) = super::super::profile::Profile::resolve(Some(name)).unwrap();
            let filters = build_filters(&profile.seccomp.deny, Watch::SyscallsAndCode).unwrap();
            assert!(filters.len() >= 3, "{name}");
            let untraced = build_filters(&profile.seccomp.deny, Watch::Nothing).unwrap();
            assert_eq!(untraced.len(), 3, "{name}");
            build_filters(&profile.seccomp.deny, Watch::NothingNoSockets).unwrap();
        }
    }
}
