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

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `DT_NEEDED` names of a little-endian ELF64 file, or `None` if the bytes
/// are not one (or are truncated).
pub fn needed_libraries(bytes: &[u8]) -> Option<Vec<String>> {
    // ELF magic, 64-bit class, little-endian data.
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 0x36)?);
    let phnum = usize::from(u16_at(bytes, 0x38)?);
    // (vaddr, offset, filesz) of the loadable segments, and the dynamic one.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32_at(bytes, ph)?;
        let offset = u64_at(bytes, ph + 8)?;
        let vaddr = u64_at(bytes, ph + 16)?;
        let filesz = u64_at(bytes, ph + 32)?;
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
    let mut needed = Vec::new();
    let mut strtab = None;
    let start = usize::try_from(dyn_offset).ok()?;
    let count = usize::try_from(dyn_size).ok()? / 16;
    for i in 0..count {
        let entry = start.checked_add(i * 16)?;
        let tag = u64_at(bytes, entry)?;
        let value = u64_at(bytes, entry + 8)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value),
            DT_STRTAB => strtab = to_offset(value),
            _ => {}
        }
    }
    let strtab = usize::try_from(strtab?).ok()?;
    needed
        .into_iter()
        .map(|name_offset| {
            let at = strtab.checked_add(usize::try_from(name_offset).ok()?)?;
            let rest = bytes.get(at..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        })
        .collect()
}

/// The entries of `library_path` (a `:`-separated list) that hold one of the
/// libraries `exe` needs. When `exe` cannot be read as ELF, the list is kept
/// whole.
pub fn prune_library_path(library_path: &str, exe: &Path) -> String {
    let Some(needed) = std::fs::read(exe).ok().and_then(|b| needed_libraries(&b)) else {
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
