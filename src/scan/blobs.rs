//! Shipped binaries (with `goblin`): files in a crate's package whose
//! content is an executable format, whatever their name says.
//!
//! The package directory is walked without following symbolic links. A
//! registry or git package (as cargo extracted it) is walked whole: its
//! files are what its author published. A local package leaves out `.git`,
//! cargo target directories (those holding `CACHEDIR.TAG`) and nested
//! packages (a subdirectory with its own `Cargo.toml`, not part of it). Each file's first bytes
//! decide; ELF, PE and Mach-O files are then parsed for the machine and kind.
//! COFF objects (Windows `.obj`, nasm's `.o`) have no magic number: they
//! count only when they parse.

use std::io::Read;
use std::path::{Path, PathBuf};

use goblin::Object;

use super::Finding;
use crate::observe::{Method, Phase};

/// Deepest directory level walked (symbolic links are never followed, so
/// this only guards against absurd trees).
const MAX_DEPTH: usize = 32;

/// The format a file's first bytes announce.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x7fELF") {
        Some("elf")
    } else if head.starts_with(b"MZ") {
        Some("pe")
    } else if head.starts_with(b"!<arch>\n") || head.starts_with(b"!<thin>\n") {
        Some("archive")
    } else if head.starts_with(b"\0asm") {
        Some("wasm")
    } else if head.len() >= 4
        && matches!(
            u32::from_be_bytes([head[0], head[1], head[2], head[3]]),
            0xfeed_face | 0xfeed_facf | 0xcefa_edfe | 0xcffa_edfe | 0xcafe_babe
        )
    {
        Some("mach-o")
    } else if head.len() >= 2
        && matches!(
            u16::from_le_bytes([head[0], head[1]]),
            0x8664 | 0x014c | 0xaa64 | 0x01c4
        )
    {
        // A COFF object (Windows `.obj`, or `.o` from nasm): no magic, just
        // the machine; `describe` must parse it before it counts.
        Some("coff")
    } else {
        None
    }
}

/// What a binary is, from its parsed headers (`x86_64 executable`), or
/// `None` when it does not parse as the format its magic claims.
pub fn describe(bytes: &[u8], format: &str) -> Option<String> {
    if format == "wasm" {
        return (bytes.get(4..8) == Some(&[1, 0, 0, 0][..])).then(|| "wasm module".to_string());
    }
    match (format, Object::parse(bytes).ok()?) {
        ("elf", Object::Elf(elf)) => {
            let kind = match elf.header.e_type {
                goblin::elf::header::ET_EXEC => "executable",
                goblin::elf::header::ET_DYN if elf.interpreter.is_some() => "executable",
                goblin::elf::header::ET_DYN => "shared object",
                goblin::elf::header::ET_REL => "object file",
                goblin::elf::header::ET_CORE => "core dump",
                _ => "file",
            };
            Some(format!(
                "{} {kind}",
                goblin::elf::header::machine_to_str(elf.header.e_machine).to_lowercase()
            ))
        }
        ("pe", Object::PE(pe)) => Some(format!(
            "{} {}",
            pe_machine(pe.header.coff_header.machine),
            if pe.is_lib { "dll" } else { "executable" }
        )),
        ("mach-o", Object::Mach(_)) => Some("mach-o binary".to_string()),
        ("coff", Object::COFF(coff)) => {
            Some(format!("{} object file", pe_machine(coff.header.machine)))
        }
        ("archive", Object::Archive(archive)) => {
            Some(format!("archive of {} members", archive.len()))
        }
        _ => None,
    }
}

fn pe_machine(machine: u16) -> &'static str {
    match machine {
        0x14c => "x86",
        0x8664 => "x86_64",
        0xaa64 => "aarch64",
        0x1c0 | 0x1c4 => "arm",
        _ => "unknown-machine",
    }
}

/// Shipped binaries under `root`; the second list holds files or
/// directories that could not be read, with the reason.
pub fn scan_package(root: &Path, published: bool) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    walk(root, root, 0, published, &mut findings, &mut errors);
    findings.sort();
    errors.sort();
    (findings, errors)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    published: bool,
    findings: &mut Vec<Finding>,
    errors: &mut Vec<String>,
) {
    let relative = |p: &Path| -> String {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    if depth > MAX_DEPTH {
        errors.push(format!("{}: deeper than {MAX_DEPTH} levels", relative(dir)));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(format!("{}: {e}", display_dir(&relative(dir))));
            return;
        }
    };
    let mut paths: Vec<(PathBuf, std::fs::FileType)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
        .collect();
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in paths {
        if kind.is_dir() {
            let name = path.file_name().unwrap_or_default();
            if !published
                && (name == ".git"
                    || path.join("CACHEDIR.TAG").exists()
                    || path.join("Cargo.toml").exists())
            {
                continue;
            }
            walk(root, &path, depth + 1, published, findings, errors);
        } else if kind.is_file() {
            match examine(&path) {
                Ok(Some((format, size, description))) => {
                    let mut evidence = vec![
                        ("format".to_string(), format.to_string()),
                        ("size".to_string(), size.to_string()),
                    ];
                    evidence.push((
                        "kind".to_string(),
                        description.unwrap_or_else(|| format!("{format} (headers do not parse)")),
                    ));
                    findings.push(Finding {
                        phase: Phase::Runtime,
                        capability: "binary.shipped".to_string(),
                        target: relative(&path),
                        method: Method::Blob,
                        evidence,
                    });
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("{}: {e}", relative(&path))),
            }
        }
    }
}

fn display_dir(relative: &str) -> &str {
    if relative.is_empty() { "." } else { relative }
}

/// `(format, size, description)` of a binary file, `None` for other files.
fn examine(path: &Path) -> std::io::Result<Option<(&'static str, u64, Option<String>)>> {
    let file = super::open_regular(path)?;
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut head)?;
    let Some(format) = sniff(&head) else {
        return Ok(None);
    };
    if format == "pe" && size < 64 {
        // "MZ" starts some text files too; a PE needs at least its DOS header.
        return Ok(None);
    }
    let bytes = super::map_file(path)?;
    let description = describe(&bytes, format);
    if matches!(format, "pe" | "coff") && description.is_none() {
        // No magic to trust: only what parses counts.
        return Ok(None);
    }
    Ok(Some((format, size, description)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_package_is_walked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("payload")).unwrap();
        std::fs::write(root.join("payload/CACHEDIR.TAG"), "Signature: x").unwrap();
        std::fs::write(root.join("payload/tool"), b"\0asm\x01\0\0\0").unwrap();
        let targets = |published| -> Vec<String> {
            scan_package(root, published)
                .0
                .into_iter()
                .map(|f| f.target)
                .collect()
        };
        assert_eq!(targets(true), ["payload/tool"]);
        assert!(targets(false).is_empty());
    }

    #[test]
    fn sniffs_formats_by_content() {
        assert_eq!(sniff(b"\x7fELF\x02\x01"), Some("elf"));
        assert_eq!(sniff(b"\0asm\x01\0\0\0"), Some("wasm"));
        assert_eq!(sniff(b"!<arch>\nxx"), Some("archive"));
        assert_eq!(sniff(b"\xcf\xfa\xed\xfe"), Some("mach-o"));
        assert_eq!(sniff(b"fn main() {}"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x64\x86\x05\x00"), Some("coff"));
        // Text that happens to start like a COFF header does not parse.
        assert_eq!(
            describe(b"\x64\x86 not an object at all, just text", "coff"),
            None
        );
    }

    #[test]
    fn finds_binaries_whatever_their_name_and_skips_nested_packages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::create_dir_all(root.join("nested")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(root.join("nested/Cargo.toml"), "[package]").unwrap();
        std::fs::write(root.join("nested/x.bin"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(root.join("assets/data.txt"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(root.join("assets/truncated.png"), b"\x7fELF\x02").unwrap();
        std::fs::write(root.join("notes.md"), b"MZ is a text here").unwrap();
        // A COFF object with no sections: machine x86_64, nothing else.
        let mut coff = vec![0x64, 0x86];
        coff.resize(20, 0);
        std::fs::write(root.join("assets/x86_64-nasm.o"), &coff).unwrap();
        let (findings, errors) = scan_package(root, false);
        assert!(errors.is_empty(), "{errors:?}");
        let summary: Vec<(String, String)> = findings
            .iter()
            .map(|f| (f.target.clone(), f.evidence[2].1.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("assets/data.txt".into(), "wasm module".into()),
                (
                    "assets/truncated.png".into(),
                    "elf (headers do not parse)".into()
                ),
                ("assets/x86_64-nasm.o".into(), "x86_64 object file".into()),
            ]
        );
    }
}
