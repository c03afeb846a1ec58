//! Who did what during a traced compilation: rustc itself, or one of the proc
//! macros it loaded.
//!
//! Two filters, in order. First rustc's expected activity, by path: reading
//! the sysroot, its `-L` and `--extern` libraries and the inputs its dep-info
//! lists; writing its own outputs (files named after the unit in `--out-dir`,
//! its temp dirs there, `-o` and `--emit` paths, the incremental dir). What
//! remains is split by the recorder's [`Origin`] of each call: a proc-macro
//! library's code, rustc's own (kept only when the sandbox denied it: rustc
//! has no business being denied anything), or unknown (blamed on every macro
//! that was loaded, since the recorder could not tell which).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use nix::libc;

use crate::trace::{EventKind, Origin, RawEvent};

/// rustc's own expected file activity in one compilation.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Anything read under these (the sysroot, `-L` directories, the
    /// directories of `--extern` libraries).
    pub read_roots: Vec<PathBuf>,
    /// Files read as inputs (the dep-info's list).
    pub inputs: BTreeSet<PathBuf>,
    /// Directories rustc owns entirely (the incremental dir).
    pub write_roots: Vec<PathBuf>,
    /// `(dir, name prefixes)`: entries of `dir` whose name starts with one
    /// of the prefixes are rustc's outputs and temp dirs.
    pub outputs: Vec<(PathBuf, Vec<String>)>,
    /// Output files named on the command line (`-o`, `--emit k=PATH`).
    pub output_files: BTreeSet<PathBuf>,
}

impl Expected {
    fn is_output(&self, path: &Path) -> bool {
        self.output_files.contains(path)
            || self.write_roots.iter().any(|r| path.starts_with(r))
            || self.outputs.iter().any(|(dir, prefixes)| {
                path.strip_prefix(dir)
                    .ok()
                    .and_then(|rest| rest.components().next())
                    .and_then(|first| first.as_os_str().to_str())
                    .is_some_and(|name| prefixes.iter().any(|p| name.starts_with(p.as_str())))
            })
    }

    fn is_input(&self, path: &Path) -> bool {
        self.inputs.contains(path) || self.read_roots.iter().any(|r| path.starts_with(r))
    }

    /// Whether `event` is rustc's expected activity.
    pub fn covers(&self, event: &RawEvent) -> bool {
        match &event.kind {
            EventKind::Open { path, flags } => {
                let writes = flags & libc::O_ACCMODE != libc::O_RDONLY
                    || flags & (libc::O_CREAT | libc::O_TRUNC) != 0;
                self.is_output(path) || (!writes && self.is_input(path))
            }
            EventKind::Delete { path, .. }
            | EventKind::Mkdir { path }
            | EventKind::Link { path, .. }
            | EventKind::Attr { path, .. }
            | EventKind::Truncate { path }
            | EventKind::Chmod { path, .. } => self.is_output(path),
            EventKind::Rename { from, to } => self.is_output(from) && self.is_output(to),
            _ => false,
        }
    }
}

/// The events of a compilation that are not rustc's expected activity,
/// split by origin.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    /// Made by a proc-macro library's code.
    pub by_library: BTreeMap<PathBuf, Vec<RawEvent>>,
    /// rustc's own (by its stack), beyond the expected.
    pub own: Vec<RawEvent>,
    /// No origin found.
    pub unknown: Vec<RawEvent>,
}

/// Splits `events`; expected ones are dropped.
pub fn split(events: &[RawEvent], expected: &Expected) -> Split {
    let mut out = Split::default();
    for event in events.iter().filter(|e| !expected.covers(e)) {
        match &event.origin {
            Origin::Library(lib) => out
                .by_library
                .entry(lib.clone())
                .or_default()
                .push(event.clone()),
            Origin::Own => out.own.push(event.clone()),
            Origin::Unknown => out.unknown.push(event.clone()),
        }
    }
    out
}

/// Parses a makefile-style dep-info file: every path it names, and the
/// `# env-dep:NAME[=VALUE]` variable names.
pub fn parse_dep_info(text: &str) -> (BTreeSet<PathBuf>, BTreeSet<String>) {
    let mut paths = BTreeSet::new();
    let mut env = BTreeSet::new();
    for line in text.lines() {
        if let Some(dep) = line.strip_prefix("# env-dep:") {
            let name = dep.split_once('=').map_or(dep, |(n, _)| n);
            env.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // `target: dep dep ...`; spaces inside paths are escaped as `\ `.
        let Some(deps) = split_rule(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        paths.insert(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            paths.insert(PathBuf::from(current));
        }
    }
    (paths, env)
}

/// The part after the rule's `: ` (the target may contain escaped colons).
fn split_rule(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && (i == 0 || bytes[i - 1] != b'\\'))
        .map(|i| line[i + 1..].trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &str, flags: i32, origin: Origin) -> RawEvent {
        RawEvent {
            pid: 3,
            kind: EventKind::Open {
                path: path.into(),
                flags,
            },
            error: None,
            origin,
        }
    }

    fn expected() -> Expected {
        Expected {
            read_roots: vec!["/sysroot".into(), "/t/debug/deps".into()],
            inputs: ["/w/app/src/main.rs".into()].into(),
            write_roots: vec!["/t/debug/incremental".into()],
            outputs: vec![(
                "/t/debug/deps".into(),
                vec!["app-aa".into(), "libapp-aa".into(), "rustc".into()],
            )],
            output_files: BTreeSet::new(),
        }
    }

    #[test]
    fn drops_expected_and_splits_the_rest_by_origin() {
        let evil = PathBuf::from("/t/debug/deps/libevil-1.so");
        let write = libc::O_WRONLY | libc::O_CREAT;
        let events = vec![
            open("/sysroot/lib/libstd.so", libc::O_RDONLY, Origin::Own),
            open("/w/app/src/main.rs", libc::O_RDONLY, Origin::Own),
            open("/t/debug/deps/app-aa.d", write, Origin::Own),
            open("/t/debug/deps/rustcXyZ/x.o", write, Origin::Own),
            open("/t/debug/incremental/app-1/s", write, Origin::Own),
            // A macro planting a library next to the outputs is not expected.
            open(
                "/t/debug/deps/libserde-9.rlib",
                write,
                Origin::Library(evil.clone()),
            ),
            open(
                "/home/u/.ssh/id_ed25519",
                libc::O_RDONLY,
                Origin::Library(evil.clone()),
            ),
            open("/w/app/data.txt", libc::O_RDONLY, Origin::Unknown),
            open("/etc/hostname", libc::O_RDONLY, Origin::Own),
        ];
        let split = split(&events, &expected());
        assert_eq!(split.by_library[&evil].len(), 2);
        assert_eq!(split.unknown.len(), 1);
        assert_eq!(split.own.len(), 1);
    }

    #[test]
    fn dep_info_paths_and_env() {
        let text = "/t/deps/app-aa.d: src/main.rs /w/my\\ dir/x.txt\n\nsrc/main.rs:\n\n# env-dep:CARGO_PKG_NAME=app\n# env-dep:SECRET_THING\n";
        let (paths, env) = parse_dep_info(text);
        assert!(paths.contains(Path::new("src/main.rs")));
        assert!(paths.contains(Path::new("/w/my dir/x.txt")));
        assert_eq!(
            env.into_iter().collect::<Vec<_>>(),
            ["CARGO_PKG_NAME", "SECRET_THING"]
        );
    }
}
