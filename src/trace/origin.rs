//! Whose code made a syscall: the traced program's own, or one of the
//! libraries it loaded (a proc macro inside rustc).
//!
//! At a stop, the instruction pointer and then the words of the stack, from
//! the stack pointer up, are looked up in the process's executable file
//! mappings (`/proc/PID/maps`). The first word that falls into a classified
//! mapping decides: the syscall itself runs in libc, the first return address
//! above it is the code that called libc. Proc-macro libraries link their
//! own copy of std, so a macro's `std::fs::read` returns into the macro's
//! library, while rustc's own calls return into the sysroot's libraries.
//! This is a heuristic over untrusted memory: a macro that forges its stack
//! can make a call look like rustc's, which is why callers only ever use
//! `Own` to drop harmless reads, never to hide anything else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mem;
use nix::unistd::Pid;

/// Who made a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// No classified code found (or no attribution asked for).
    #[default]
    Unknown,
    /// The traced program's own code.
    Own,
    /// Code of this separately attributed library.
    Library(PathBuf),
}

impl Origin {
    pub fn is_unknown(&self) -> bool {
        *self == Origin::Unknown
    }
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// The call is this code's.
    Found(Origin),
    /// The process has attributed libraries mapped, but nothing decided.
    NotFound,
    /// The process has no attributed library mapped (the linker rustc
    /// starts, a shell a macro starts): only its creator can tell.
    NoLibrary,
}

/// Classifies a mapped file: `Own`, `Library(path)`, or `None` (neither:
/// libc, the dynamic loader, ...).
pub type Classify = Box<dyn Fn(&Path) -> Option<Origin> + Send>;

/// How far up the stack to look (bytes).
const STACK_WINDOW: usize = 64 * 1024;

#[derive(Debug, Clone)]
struct Region {
    start: u64,
    end: u64,
    origin: Origin,
}

/// Cached executable mappings per process.
pub struct Origins {
    classify: Classify,
    maps: HashMap<i32, Vec<Region>>,
}

impl Origins {
    pub fn new(classify: Classify) -> Origins {
        Origins {
            classify,
            maps: HashMap::new(),
        }
    }

    /// Whether `path` is a separately attributed library.
    pub fn is_library(&self, path: &Path) -> bool {
        matches!((self.classify)(path), Some(Origin::Library(_)))
    }

    /// Forgets the mappings of `tgid` (after an `execve`), or of every
    /// process (`None`, after a library was opened: it is about to be mapped).
    pub fn forget(&mut self, tgid: Option<i32>) {
        match tgid {
            Some(t) => {
                self.maps.remove(&t);
            }
            None => self.maps.clear(),
        }
    }

    fn regions(&mut self, tgid: i32) -> &[Region] {
        let classify = &self.classify;
        self.maps
            .entry(tgid)
            .or_insert_with(|| read_regions(tgid, classify))
    }

    /// Whose code the call a stopped `task` (of process `tgid`) is making
    /// is. A process with no library mapped is not scanned at all.
    pub fn scan(&mut self, task: Pid, tgid: i32, ip: u64, sp: u64) -> Scan {
        let regions = self.regions(tgid);
        if !regions
            .iter()
            .any(|r| matches!(r.origin, Origin::Library(_)))
        {
            return Scan::NoLibrary;
        }
        // The instruction pointer is exact (a raw `syscall` in the code).
        if let Some(origin) = lookup(regions, ip) {
            return Scan::Found(origin);
        }
        let hits = stack_hits(task, sp, regions);
        decide(&hits).map_or(Scan::NotFound, Scan::Found)
    }
}

/// Hits looked at per scan.
const HITS: usize = 6;

/// The first [`HITS`] classified words of the stack above `sp`.
fn stack_hits(task: Pid, sp: u64, regions: &[Region]) -> Vec<Origin> {
    let mut hits = Vec::new();
    let mut at = sp;
    let end = sp.saturating_add(STACK_WINDOW as u64);
    while at < end && hits.len() < HITS {
        // Page by page, so the usual case costs one small read.
        let chunk = (4096 - at % 4096) as usize;
        let bytes = mem::read_bytes(task, at, chunk);
        for word in bytes.chunks_exact(8) {
            let value = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
            if let Some(origin) = lookup(regions, value) {
                hits.push(origin);
                if hits.len() == HITS {
                    break;
                }
            }
        }
        if bytes.len() < chunk {
            break;
        }
        at += chunk as u64;
    }
    hits
}

/// Decides from the first hits. A stack holds stale words in slots a frame
/// has not written yet (a return address left by an earlier, deeper call,
/// such as into rustc's allocator, which a macro's `malloc` reaches): one
/// word can lie, real call chains repeat. A library seen at least twice wins
/// (the most frequent, the nearest on a tie); otherwise the nearest hit.
fn decide(hits: &[Origin]) -> Option<Origin> {
    let mut best: Option<(&Origin, usize)> = None;
    for hit in hits.iter().filter(|h| matches!(h, Origin::Library(_))) {
        let count = hits.iter().filter(|h| *h == hit).count();
        if count >= 2 && best.is_none_or(|(_, c)| count > c) {
            best = Some((hit, count));
        }
    }
    best.map(|(o, _)| o.clone())
        .or_else(|| hits.first().cloned())
}

fn lookup(regions: &[Region], address: u64) -> Option<Origin> {
    let index = regions.partition_point(|r| r.end <= address);
    regions
        .get(index)
        .filter(|r| r.start <= address)
        .map(|r| r.origin.clone())
}

/// The classified executable mappings of a process, sorted by address.
fn read_regions(tgid: i32, classify: &Classify) -> Vec<Region> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tgid}/maps")) else {
        return Vec::new();
    };
    parse_maps(&text, classify)
}

fn parse_maps(text: &str, classify: &Classify) -> Vec<Region> {
    let mut cache: HashMap<&str, Option<Origin>> = HashMap::new();
    let mut regions = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.contains('x') {
            continue;
        }
        // offset, device, inode, then the path (which may contain spaces).
        let path = line
            .splitn(6, char::is_whitespace)
            .nth(5)
            .map(str::trim)
            .unwrap_or("");
        if !path.starts_with('/') {
            continue;
        }
        let origin = cache
            .entry(path)
            .or_insert_with(|| classify(Path::new(path)))
            .clone();
        let Some(origin) = origin else { continue };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        regions.push(Region { start, end, origin });
    }
    regions.sort_by_key(|r| r.start);
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify() -> Classify {
        Box::new(|path: &Path| {
            if path.starts_with("/sysroot") {
                Some(Origin::Own)
            } else if path.extension().is_some_and(|e| e == "so") && path.starts_with("/t") {
                Some(Origin::Library(path.to_path_buf()))
            } else {
                None
            }
        })
    }

    #[test]
    fn maps_are_classified_and_looked_up() {
        let maps = "\
1000-2000 r-xp 00000000 08:01 1 /sysroot/lib/librustc_driver.so
2000-3000 r--p 00001000 08:01 1 /sysroot/lib/librustc_driver.so
5000-6000 r-xp 00000000 08:01 2 /t/deps/libevil-0123.so
7000-8000 r-xp 00000000 08:01 3 /lib/x86_64-linux-gnu/libc.so.6
9000-a000 rw-p 00000000 00:00 0 [stack]
";
        let regions = parse_maps(maps, &classify());
        assert_eq!(regions.len(), 2);
        assert_eq!(lookup(&regions, 0x1800), Some(Origin::Own));
        assert_eq!(lookup(&regions, 0x2800), None);
        assert_eq!(
            lookup(&regions, 0x5000),
            Some(Origin::Library("/t/deps/libevil-0123.so".into()))
        );
        assert_eq!(lookup(&regions, 0x7100), None);
        assert_eq!(lookup(&regions, 0x6000), None);
    }

    #[test]
    fn a_stale_word_does_not_decide() {
        let lib = Origin::Library("/t/deps/libevil-0123.so".into());
        let other = Origin::Library("/t/deps/libgood-0123.so".into());
        // A stale rustc address above a macro's real call chain.
        let hits = [
            Origin::Own,
            lib.clone(),
            Origin::Own,
            lib.clone(),
            lib.clone(),
        ];
        assert_eq!(decide(&hits), Some(lib.clone()));
        // rustc's own call with one stale macro address.
        let hits = [Origin::Own, Origin::Own, lib.clone(), Origin::Own];
        assert_eq!(decide(&hits), Some(Origin::Own));
        // Two libraries: the one the chain repeats.
        let hits = [
            other.clone(),
            lib.clone(),
            lib.clone(),
            other.clone(),
            lib.clone(),
        ];
        assert_eq!(decide(&hits), Some(lib));
        assert_eq!(decide(&[]), None);
    }
}
