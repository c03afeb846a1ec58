//! Linked symbols (with `object`): which catalogue APIs a compiled artifact
//! references or contains.
//!
//! Two kinds of artifact, told apart by their bytes:
//! - a library archive (`.rlib`): its object files hold only the crate's
//!   own code, so every symbol they define (the crate's functions and the
//!   generic code instantiated for it, std's included) or reference
//!   (undefined: calls into other crates and C functions) is the crate's;
//! - a linked file (build-script executable, proc-macro shared object): it
//!   holds the crate, its dependencies and the parts of std they reach, so
//!   what counts is the difference against a *baseline*, the same kind of
//!   file built from an empty program with the same toolchain. What is left
//!   was pulled in by the crate's code (and its dependencies').
//!
//! Names are demangled (legacy and v0) without hashes; generic arguments are
//! dropped and `<T as Trait>::f` is tried as both `T::f` and `Trait::f`
//! before the catalogue is asked. C functions match by name (`connect`,
//! version suffixes such as `@GLIBC_2.2.5` removed).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use object::read::archive::ArchiveFile;
use object::{FileKind, Object, ObjectSymbol, SymbolKind};

use super::Finding;
use super::catalogue::Catalogue;
use crate::observe::{Method, Phase};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SymbolError {
    #[error("{file}: {what}")]
    Unreadable { file: String, what: String },
    #[error("{file}: not an archive, ELF object, executable or shared object")]
    Unsupported { file: String },
}

/// The names a baseline artifact (an empty program) links anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    names: HashSet<String>,
}

impl Baseline {
    /// The baseline of a linked file's bytes.
    pub fn from_bytes(bytes: &[u8], display: &str) -> Result<Baseline, SymbolError> {
        let file = parse_object(bytes, display)?;
        Ok(Baseline {
            names: linked_names(&file).into_iter().collect(),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }

    /// Adds the C functions an archive's objects reference (a library
    /// whose own C calls should not count against the linked file).
    pub fn add_c_imports(&mut self, bytes: &[u8]) {
        let Ok(objects) = archive_objects(bytes, "") else {
            return;
        };
        for file in objects.iter().flatten() {
            for symbol in file.symbols().filter(|s| s.is_undefined()) {
                if let Ok(name) = symbol.name()
                    && !looks_like_rust_path(&readable(name))
                {
                    self.names.insert(readable(name));
                }
            }
        }
    }

    pub fn from_names(names: impl IntoIterator<Item = String>) -> Baseline {
        Baseline {
            names: names.into_iter().collect(),
        }
    }
}

/// What `scan_bytes` found: findings, plus errors for parts it could not
/// read (an archive member that is not an object file, say) while the rest
/// was scanned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    pub findings: Vec<Finding>,
    pub errors: Vec<SymbolError>,
}

/// Scans one artifact. `baseline` is used for linked files; without one, a
/// linked file is scanned whole (every std function it links counts).
/// Never panics, whatever the bytes.
pub fn scan_bytes(
    bytes: &[u8],
    display: &str,
    phase: Phase,
    catalogue: &Catalogue,
    baseline: Option<&Baseline>,
) -> Result<Scanned, SymbolError> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut errors = Vec::new();
    match FileKind::parse(bytes) {
        Ok(FileKind::Archive) => {
            let mut objects = 0usize;
            for object in archive_objects(bytes, display)? {
                match object {
                    Ok(file) => {
                        objects += 1;
                        object_names(&file, &mut names);
                    }
                    Err(e) => errors.push(e),
                }
            }
            if objects == 0 && errors.is_empty() {
                // rustc puts at least one object file in every rlib: a
                // truncated archive can end before its first one.
                errors.push(SymbolError::Unreadable {
                    file: display.to_string(),
                    what: "no object file in the archive (truncated?)".to_string(),
                });
            }
        }
        Ok(FileKind::Elf32 | FileKind::Elf64) => {
            let file = parse_object(bytes, display)?;
            if matches!(file.kind(), object::ObjectKind::Relocatable) {
                object_names(&file, &mut names);
            } else {
                names = linked_names(&file);
                if let Some(baseline) = baseline {
                    names.retain(|n| !baseline.names.contains(n));
                }
            }
        }
        _ => {
            return Err(SymbolError::Unsupported {
                file: display.to_string(),
            });
        }
    }
    Ok(Scanned {
        findings: classify(&names, phase, catalogue),
        errors,
    })
}

/// The object files of an archive, each parsed or the reason it is not;
/// rustc's metadata (`lib.rmeta`) and the archive's own tables are left
/// out, anything else (a bundled static library's members keep their names,
/// whatever they are) must be an object file. A member that cannot be
/// iterated past ends the list with its error.
fn archive_objects<'a>(
    bytes: &'a [u8],
    display: &str,
) -> Result<Vec<Result<object::File<'a>, SymbolError>>, SymbolError> {
    let archive = ArchiveFile::parse(bytes).map_err(|e| SymbolError::Unreadable {
        file: display.to_string(),
        what: format!("archive: {e}"),
    })?;
    let mut objects = Vec::new();
    for member in archive.members() {
        let member = match member {
            Ok(m) => m,
            Err(e) => {
                objects.push(Err(SymbolError::Unreadable {
                    file: display.to_string(),
                    what: format!("archive member: {e}"),
                }));
                break;
            }
        };
        let name = String::from_utf8_lossy(member.name()).into_owned();
        if name == "lib.rmeta" || name.starts_with('/') || name.is_empty() {
            continue;
        }
        let member_display = format!("{display}({name})");
        objects.push(match member.data(bytes) {
            Ok(data) => parse_object(data, &member_display),
            Err(e) => Err(SymbolError::Unreadable {
                file: member_display,
                what: e.to_string(),
            }),
        });
    }
    Ok(objects)
}

fn parse_object<'a>(bytes: &'a [u8], display: &str) -> Result<object::File<'a>, SymbolError> {
    object::File::parse(bytes).map_err(|e| SymbolError::Unreadable {
        file: display.to_string(),
        what: e.to_string(),
    })
}

/// Every symbol name an object file defines or references.
fn object_names(file: &object::File, names: &mut BTreeSet<String>) {
    for symbol in file.symbols() {
        if matches!(
            symbol.kind(),
            SymbolKind::Section | SymbolKind::File | SymbolKind::Label
        ) {
            continue;
        }
        if let Ok(name) = symbol.name()
            && !name.is_empty()
        {
            names.insert(readable(name));
        }
    }
}

/// The functions a linked file defines and the functions it imports.
fn linked_names(file: &object::File) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for symbol in file.symbols().chain(file.dynamic_symbols()) {
        let wanted = if symbol.is_undefined() {
            !matches!(symbol.kind(), SymbolKind::Section | SymbolKind::File)
        } else {
            symbol.kind() == SymbolKind::Text
        };
        if wanted
            && let Ok(name) = symbol.name()
            && !name.is_empty()
        {
            names.insert(readable(name));
        }
    }
    names
}

/// A symbol name as people read it: demangled without hash, or a C name
/// without its version suffix.
pub fn readable(raw: &str) -> String {
    let base = raw.split('@').next().unwrap_or(raw);
    match rustc_demangle::try_demangle(base) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => base.to_string(),
    }
}

/// Catalogue matches of a set of readable names, one finding per
/// capability and API with the symbols as evidence.
fn classify(names: &BTreeSet<String>, phase: Phase, catalogue: &Catalogue) -> Vec<Finding> {
    let mut hits: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for name in names {
        let found = if looks_like_rust_path(name) {
            let readings = candidates(name);
            if readings.iter().any(|c| catalogue.excluded(c)) {
                continue;
            }
            readings.iter().find_map(|c| catalogue.classify_path(c))
        } else {
            catalogue.classify_c(name)
        };
        if let Some(m) = found {
            hits.entry((m.capability.to_string(), m.api.to_string()))
                .or_default()
                .insert(name.clone());
        }
    }
    hits.into_iter()
        .map(|((capability, api), symbols)| Finding {
            phase,
            capability,
            target: api,
            method: Method::Symbol,
            evidence: symbols.into_iter().map(|s| ("symbol".into(), s)).collect(),
        })
        .collect()
}

fn looks_like_rust_path(name: &str) -> bool {
    name.contains("::") || name.starts_with('<')
}

/// The plain paths a demangled name stands for: generic arguments removed;
/// `<T as Trait>::f` gives `T::f` and `Trait::f`; `<T>::f` gives `T::f`.
pub fn candidates(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rest) = name.strip_prefix('<')
        && let Some(close) = matching_close(rest)
    {
        let inner = &rest[..close];
        let tail = rest[close + 1..].trim_start_matches("::");
        let parts: Vec<&str> = match split_top_level_as(inner) {
            Some((ty, tr)) => vec![ty, tr],
            None => vec![inner],
        };
        for part in parts {
            let part = part
                .trim()
                .trim_start_matches('&')
                .trim_start_matches("mut ");
            let joined = if tail.is_empty() {
                strip_generics(part)
            } else {
                format!("{}::{}", strip_generics(part), strip_generics(tail))
            };
            out.push(joined);
        }
    } else if name.starts_with('<') {
        // Unbalanced: not a name this parser understands; kept as is.
        out.push(name.to_string());
    } else {
        out.push(strip_generics(name));
    }
    out
}

/// Index (in `text`) of the `>` closing an already-opened `<`.
fn matching_close(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn split_top_level_as(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ' ' if depth == 0 && bytes.get(i..i + 4) == Some(b" as ") => {
                return Some((&text[..i], &text[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

/// `a::B<T>::c::<U>` → `a::B::c`.
fn strip_generics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("::::", "::").trim_end_matches("::").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_of_demangled_names() {
        assert_eq!(
            candidates("std::fs::write::<&std::path::PathBuf, &str>"),
            ["std::fs::write"]
        );
        assert_eq!(
            candidates("<&str as std::net::socket_addr::ToSocketAddrs>::to_socket_addrs"),
            [
                "str::to_socket_addrs",
                "std::net::socket_addr::ToSocketAddrs::to_socket_addrs"
            ]
        );
        assert_eq!(
            candidates("<std::process::Command>::new::<&str>"),
            ["std::process::Command::new"]
        );
        assert_eq!(
            candidates("<alloc::vec::Vec<u8> as core::ops::drop::Drop>::drop"),
            ["alloc::vec::Vec::drop", "core::ops::drop::Drop::drop"]
        );
        assert_eq!(candidates("<broken"), ["<broken"]);
    }

    #[test]
    fn v0_names_are_demangled_and_classified() {
        // From `rustc -C symbol-mangling-version=v0` (1.95) on a crate
        // calling `fs::read_to_string(&str)` and `TcpStream::connect((&str, u16))`.
        let names: BTreeSet<String> = [
            "_RINvNtCsjrHSEGnQ3l9_3std2fs14read_to_stringReECs5W1WpBbZt4E_3v0t",
            "_RINvMNtNtCsjrHSEGnQ3l9_3std3net3tcpNtB3_9TcpStream7connectTRetEECs5W1WpBbZt4E_3v0t",
            "_RNvXs4_NtNtCsjrHSEGnQ3l9_3std3net11socket_addrTRetENtB5_13ToSocketAddrs15to_socket_addrs",
        ]
        .into_iter()
        .map(readable)
        .collect();
        assert!(
            names.contains("std::fs::read_to_string::<&str>"),
            "{names:?}"
        );
        let found: Vec<(String, String)> = classify(&names, Phase::Runtime, &Catalogue::builtin())
            .into_iter()
            .map(|f| (f.capability, f.target))
            .collect();
        assert_eq!(
            found,
            [
                ("fs.read".into(), "std::fs::read_to_string".into()),
                ("net.connect".into(), "std::net::TcpStream::connect".into()),
                (
                    "net.dns".into(),
                    "std::net::ToSocketAddrs::to_socket_addrs".into()
                ),
            ]
        );
    }

    #[test]
    fn readable_names() {
        assert_eq!(
            readable("_ZN3std2fs5write17h0123456789abcdefE"),
            "std::fs::write"
        );
        assert_eq!(readable("open64@GLIBC_2.2.5"), "open64");
        assert_eq!(readable("connect"), "connect");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let c = Catalogue::builtin();
        for bytes in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x01\0>\0",
            b"!<arch>\n",
            b"!<arch>\nfoo.o/          0           0     0     644     99999999  `\n",
            b"hello world",
        ] {
            match scan_bytes(bytes, "x", Phase::Runtime, &c, None) {
                Ok(scanned) => assert!(scanned.findings.is_empty()),
                Err(e) => assert!(e.to_string().starts_with("x"), "{e}"),
            }
        }
    }
}
