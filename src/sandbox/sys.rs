//! The one seam through which the sandbox makes raw system calls.
//!
//! Every namespace, mount, capability and limit call goes through a function
//! here, and every failure becomes a [`SysError`] that names the call and its
//! arguments (`mount("/newroot/proc", "proc") => EPERM`), so a failed spawn
//! says exactly what the kernel refused. The decisions (what to mount where)
//! live in `mounts.rs` as plain data and are tested without privileges.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;
use nix::mount::{MntFlags, MsFlags};

/// A refused system call: which call, with what, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{call} => {errno}")]
pub struct SysError {
    pub call: String,
    pub errno: Errno,
}

pub type SysResult<T> = Result<T, SysError>;

fn fail(call: String) -> impl FnOnce(Errno) -> SysError {
    move |errno| SysError { call, errno }
}

fn cstr(path: &Path) -> SysResult<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SysError {
        call: format!("path {:?} contains a NUL byte", path),
        errno: Errno::EINVAL,
    })
}

/// `mount(2)`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> SysResult<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(fail(format!(
        "mount({:?}, {:?}, {:?}, {:?})",
        source.map(Path::display).map(|d| d.to_string()),
        target,
        fstype,
        flags
    )))
}

/// `mount_setattr(2)`: set and clear `MOUNT_ATTR_*` bits, optionally on the
/// whole subtree. Used to make the host tree read-only in one call.
pub fn mount_setattr(path: &Path, recursive: bool, set: u64, clear: u64) -> SysResult<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let c_path = cstr(path)?;
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `c_path` is a valid NUL-terminated string and `attr` a properly
    // laid out `struct mount_attr` that outlive the call; the kernel only
    // reads `size_of::<MountAttr>()` bytes from it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop).map_err(fail(format!(
        "mount_setattr({path:?}, recursive={recursive}, set={set:#x}, clear={clear:#x})"
    )))
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> SysResult<()> {
    nix::unistd::pivot_root(new_root, put_old)
        .map_err(fail(format!("pivot_root({new_root:?}, {put_old:?})")))
}

/// `umount2(2)` with `MNT_DETACH`.
pub fn detach(path: &Path) -> SysResult<()> {
    nix::mount::umount2(path, MntFlags::MNT_DETACH)
        .map_err(fail(format!("umount2({path:?}, MNT_DETACH)")))
}

pub fn chdir(path: &Path) -> SysResult<()> {
    nix::unistd::chdir(path).map_err(fail(format!("chdir({path:?})")))
}

/// Creates a directory and its parents (mode 0755).
pub fn mkdir_all(path: &Path) -> SysResult<()> {
    std::fs::create_dir_all(path).map_err(|e| SysError {
        call: format!("mkdir -p {path:?}"),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Creates an empty file with `mode` (parents are created too).
pub fn create_file(path: &Path, mode: u32) -> SysResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        mkdir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(path)
        .map(drop)
        .map_err(|e| SysError {
            call: format!("create {path:?}"),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
}

/// Writes a whole file in one `write`, as `/proc/PID/uid_map` requires.
pub fn write_proc(path: &Path, content: &str) -> SysResult<()> {
    std::fs::write(path, content).map_err(|e| SysError {
        call: format!("write({path:?}, {content:?})"),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

pub fn sethostname(name: &str) -> SysResult<()> {
    nix::unistd::sethostname(name).map_err(fail(format!("sethostname({name:?})")))
}

pub fn setrlimit(resource: nix::sys::resource::Resource, limit: u64) -> SysResult<()> {
    nix::sys::resource::setrlimit(resource, limit, limit)
        .map_err(fail(format!("setrlimit({resource:?}, {limit})")))
}

/// Drops every capability: the bounding set (so an `execve` of a root-owned
/// program cannot regain them), the ambient set, then the effective,
/// permitted and inheritable sets.
pub fn drop_capabilities() -> SysResult<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        // EINVAL: the kernel does not know this capability; nothing to drop.
        if rc != 0 && Errno::last() != Errno::EINVAL {
            return Err(SysError {
                call: format!("prctl(PR_CAPBSET_DROP, {cap})"),
                errno: Errno::last(),
            });
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Errno::result(rc).map_err(fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)".into()))?;
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: `header` and `data` are the version-3 layouts capset expects
    // (one header, two data words) and live until the call returns.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    Errno::result(rc)
        .map(drop)
        .map_err(fail("capset(all empty)".into()))
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> SysResult<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail("socket(AF_INET, SOCK_DGRAM)".into()))?;
    // SAFETY: `ifreq` is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags into `req`,
    // which is a valid, writable `ifreq` for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    Errno::result(rc).map_err(fail("ioctl(lo, SIOCGIFFLAGS)".into()))?;
    // SAFETY: after SIOCGIFFLAGS the flags member of the union is the one set.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    Errno::result(rc)
        .map(drop)
        .map_err(fail("ioctl(lo, SIOCSIFFLAGS, IFF_UP)".into()))
}

/// Mount flags shared by the fresh filesystems the sandbox creates.
pub fn fresh_fs_flags() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV
}
