//! Reading a stopped tracee's memory with `process_vm_readv`.
//!
//! Strings are read page by page, so a string that ends just before an
//! unmapped page is still read; every read is bounded, so a hostile tracee
//! cannot make the recorder allocate without limit.

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

const PAGE: usize = 4096;
/// Longest string read (paths are at most 4096 bytes on Linux).
pub const MAX_STRING: usize = 4096;
/// Most argv entries kept.
pub const MAX_ARGS: usize = 256;

/// Reads up to `len` bytes at `addr`; fewer if the tail is unmapped.
pub fn read_bytes(pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.min(MAX_STRING));
    let mut addr = addr as usize;
    let end = addr.saturating_add(len);
    while addr < end {
        let chunk = (PAGE - addr % PAGE).min(end - addr);
        let mut buf = vec![0u8; chunk];
        let remote = [RemoteIoVec {
            base: addr,
            len: chunk,
        }];
        match process_vm_readv(pid, &mut [IoSliceMut::new(&mut buf)], &remote) {
            Ok(n) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                if n < chunk {
                    break;
                }
            }
            _ => break,
        }
        addr += chunk;
    }
    out
}

/// Reads a NUL-terminated string (lossy UTF-8), or `None` for a null pointer
/// or unreadable memory.
pub fn read_string(pid: Pid, addr: u64) -> Option<String> {
    read_c_bytes(pid, addr).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Reads a NUL-terminated byte string.
pub fn read_c_bytes(pid: Pid, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr as usize;
    while out.len() < MAX_STRING {
        let chunk = (PAGE - at % PAGE).min(MAX_STRING - out.len());
        let mut buf = vec![0u8; chunk];
        let remote = [RemoteIoVec {
            base: at,
            len: chunk,
        }];
        let n = match process_vm_readv(pid, &mut [IoSliceMut::new(&mut buf)], &remote) {
            Ok(n) if n > 0 => n,
            _ => return (!out.is_empty()).then_some(out),
        };
        if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n;
    }
    Some(out)
}

/// Reads a native-endian u64 at `addr`.
pub fn read_u64(pid: Pid, addr: u64) -> Option<u64> {
    let bytes = read_bytes(pid, addr, 8);
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

/// Reads a NULL-terminated array of string pointers (argv).
pub fn read_argv(pid: Pid, addr: u64) -> Vec<String> {
    let mut out = Vec::new();
    if addr == 0 {
        return out;
    }
    for i in 0..MAX_ARGS as u64 {
        match read_u64(pid, addr + i * 8) {
            Some(0) | None => break,
            Some(ptr) => out.push(read_string(pid, ptr).unwrap_or_default()),
        }
    }
    out
}
