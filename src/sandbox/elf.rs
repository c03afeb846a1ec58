//! The shared libraries an ELF executable asks for (`DT_NEEDED`), read with
//! bounds checks from the file's bytes.
//!
//! Used to keep only the `LD_LIBRARY_PATH` directories a build script can
//! need: cargo adds four directories of its own, and every dynamically
//! linked program the build script starts (the C compiler, `cc1`, `as`, ...)
//! would otherwise probe each of them, with every hardware-capability
//! subdirectory, for each of its libraries: thousands of recorded (and
//! therefore slower) opens per C-compiling build script, all of them noise.
//! A small reader is enough for this one question; the static scan of a later
//! issue brings a full object reader.

use std::path::Path;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Reads `len` bytes at `offset`, or `None` past the end.
type ReadAt<'a> = &'a dyn Fn(u64, usize) -> Option<Vec<u8>>;

fn le<const N: usize>(read: ReadAt, at: u64) -> Option<[u8; N]> {
    read(at, N)?.try_into().ok()
}

fn u16_at(read: ReadAt, at: u64) -> Option<u16> {
    Some(u16::from_le_bytes(le(read, at)?))
}

fn u32_at(read: ReadAt, at: u64) -> Option<u32> {
    Some(u32::from_le_bytes(le(read, at)?))
}

fn u64_at(read: ReadAt, at: u64) -> Option<u64> {
    Some(u64::from_le_bytes(le(read, at)?))
}

/// `DT_NEEDED` names of a little-endian ELF64 image, or `None` if it is not
/// one (or is truncated). Only the headers, the dynamic section and the names
/// are read, not the whole (often large, debug-info laden) file.
fn needed(read: ReadAt) -> Option<Vec<String>> {
    // ELF magic, 64-bit class, little-endian data.
    if read(0, 6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = u64_at(read, 0x20)?;
    let phentsize = u64::from(u16_at(read, 0x36)?);
    let phnum = u64::from(u16_at(read, 0x38)?);
    // (vaddr, offset, filesz) of the loadable segments, and the dynamic one.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32_at(read, ph)?;
        let offset = u64_at(read, ph + 8)?;
        let vaddr = u64_at(read, ph + 16)?;
        let filesz = u64_at(read, ph + 32)?;
        match kind {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    // A static executable needs nothing.
    let Some((dyn_offset, dyn_size)) = dynamic else {
        return Some(Vec::new());
    };
    let to_offset = |vaddr: u64| {
        loads.iter().find_map(|&(start, offset, size)| {
            (vaddr >= start && vaddr - start < size).then(|| offset + (vaddr - start))
        })
    };
    let mut names = Vec::new();
    let mut strtab = None;
    for i in 0..(dyn_size / 16).min(4096) {
        let entry = dyn_offset.checked_add(i * 16)?;
        let tag = u64_at(read, entry)?;
        let value = u64_at(read, entry + 8)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => names.push(value),
            DT_STRTAB => strtab = to_offset(value),
            _ => {}
        }
    }
    let strtab = strtab?;
    names
        .into_iter()
        .map(|name_offset| {
            let bytes = read(strtab.checked_add(name_offset)?, 256)
                .or_else(|| read(strtab.checked_add(name_offset)?, 1))?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
        })
        .collect()
}

/// `DT_NEEDED` names of ELF bytes in memory (tests feed it truncated images).
#[cfg(test)]
pub fn needed_libraries(bytes: &[u8]) -> Option<Vec<String>> {
    let read = |at: u64, len: usize| -> Option<Vec<u8>> {
        let at = usize::try_from(at).ok()?;
        let end = at.checked_add(len)?.min(bytes.len());
        (at < end || len == 0).then(|| bytes.get(at..end).map(<[u8]>::to_vec))?
    };
    needed(&read)
}

/// `DT_NEEDED` names of an ELF file on disk.
pub fn needed_libraries_of(path: &Path) -> Option<Vec<String>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let read = |at: u64, len: usize| -> Option<Vec<u8>> {
        let len = usize::try_from(size.checked_sub(at)?).ok()?.min(len);
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, at).ok()?;
        Some(buf)
    };
    needed(&read)
}

/// The entries of `library_path` (a `:`-separated list) that hold one of the
/// libraries `exe` needs. When `exe` cannot be read as ELF, the list is kept
/// whole.
pub fn prune_library_path(library_path: &str, exe: &Path) -> String {
    let Some(needed) = needed_libraries_of(exe) else {
        return library_path.to_string();
    };
    library_path
        .split(':')
        .filter(|dir| !dir.is_empty() && needed.iter().any(|lib| Path::new(dir).join(lib).exists()))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_needed_libraries_of_a_real_program() {
        let exe = std::env::current_exe().unwrap();
        let needed = needed_libraries(&std::fs::read(&exe).unwrap()).unwrap();
        assert!(
            needed.iter().any(|l| l.starts_with("libc.so")),
            "{needed:?}"
        );
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(needed_libraries(b"not an elf"), None);
        for len in [0, 5, 64, 200] {
            // Never panics; truncated headers give None or a partial answer.
            let _ = needed_libraries(&exe[..len.min(exe.len())]);
        }
    }

    #[test]
    fn prunes_directories_without_needed_libraries() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let path = format!("{}:/nonexistent", dir.path().display());
        assert_eq!(prune_library_path(&path, &exe), "");
        std::fs::write(dir.path().join("libc.so.6"), b"").unwrap();
        assert_eq!(
            prune_library_path(&path, &exe),
            dir.path().display().to_string()
        );
        assert_eq!(
            prune_library_path("/a:/b", Path::new("/nonexistent")),
            "/a:/b"
        );
    }
}
