//! The static scan: what a crate's code *could* do, beyond what one build
//! showed. Three scanners feed one finding shape: `symbols` (compiled
//! artifacts, with `object`), `source` (Rust sources, with `syn`) and
//! `blobs` (binary files shipped in the package, with `goblin`); the API
//! `catalogue` maps symbols and source paths to capabilities.
//!
//! The driver hands over the units of a build (from cargo's artifact
//! messages). Jobs (one per artifact, per unit's sources, per package's
//! files) run on a few threads; each job's result is cached under
//! `target/capsule/scan/` by the blake3 hash of what it read (plus the
//! catalogue and the scanner's version), and file hashes are remembered by
//! size, modification time and inode so a warm scan reads nothing it
//! scanned before. Results become observations with outcome `possible`.

pub mod blobs;
pub mod catalogue;
pub mod hashes;
pub mod source;
pub mod symbols;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::observe::{Method, Observation, Outcome, Phase};
use catalogue::Catalogue;
use symbols::Baseline;

/// Bumped whenever a scanner's output changes, so old cache entries are
/// not reused.
pub const SCANNER_VERSION: u32 = 5;

/// Largest source file parsed (the largest in the crates.io registry cache
/// here is under 2 MiB; parsing costs memory in proportion).
const MAX_SOURCE_BYTES: usize = 16 << 20;

/// Largest non-`.rs` file of a dep-info tried as Rust (the rest are data).
const MAX_DATA_BYTES: usize = 1 << 20;

/// One static finding, before findings are merged into observations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub phase: Phase,
    /// A capability name from the vocabulary (`fs.read`, `obfuscation`, ...).
    pub capability: String,
    /// What: the catalogue entry, the variable name, the path, the reason.
    pub target: String,
    pub method: Method,
    /// Evidence as detail key and value: `location` (`src/lib.rs:12`),
    /// `symbol`, `value`, `format`, `size`, ...
    pub evidence: Vec<(String, String)>,
}

/// A part of a crate the scan could not read: reported, never taken as
/// clean.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ScanError {
    pub method: Method,
    pub message: String,
}

/// What a compiled unit is, for the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnitKind {
    /// A library (`.rlib`): object files of the crate's own code.
    Library,
    /// A build-script executable.
    BuildScript,
    /// A proc-macro shared object.
    ProcMacro,
    /// Anything else linked (binaries, cdylibs): sources only.
    Other,
}

impl UnitKind {
    fn phase(self) -> Phase {
        match self {
            UnitKind::BuildScript => Phase::BuildScript,
            UnitKind::ProcMacro => Phase::ProcMacro,
            UnitKind::Library | UnitKind::Other => Phase::Runtime,
        }
    }
}

/// One compiled unit of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub package_id: String,
    pub manifest_dir: PathBuf,
    pub kind: UnitKind,
    /// The artifact to read symbols from (the real build-script executable,
    /// not cargo-capsule's shim).
    pub artifact: Option<PathBuf>,
    /// rustc's dep-info file: the sources the compilation read.
    pub dep_info: Option<PathBuf>,
}

/// A package to look for shipped binaries in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageDir {
    pub package_id: String,
    pub manifest_dir: PathBuf,
    /// Registry (and git) packages never change under the same id, so
    /// their file walk is cached by id.
    pub immutable: bool,
}

/// What the scan found for one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageScan {
    pub observations: Vec<Observation>,
    pub errors: Vec<ScanError>,
}

/// Scan settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub catalogue: Catalogue,
    /// Texts the catalogue was built from (cache key).
    pub catalogue_key: String,
    /// `target/capsule/scan`.
    pub cache_dir: PathBuf,
    /// The rustc to build baselines with, and where to run it (a
    /// `rust-toolchain` file there picks the same toolchain as the build).
    pub rustc: PathBuf,
    pub workspace_root: PathBuf,
    /// Worker threads.
    pub jobs: usize,
}

impl Settings {
    /// The target dir (`cache_dir` is `<target>/capsule/scan`).
    fn target_dir(&self) -> &Path {
        self.cache_dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&self.cache_dir)
    }

    /// The built-in catalogue extended by `capsule.toml` at the workspace
    /// root (when present) and by each of `extra`.
    pub fn new(
        workspace_root: &Path,
        target_dir: &Path,
        extra: &[PathBuf],
    ) -> Result<Settings, catalogue::CatalogueError> {
        let mut catalogue = Catalogue::builtin();
        let mut key = catalogue::BUILTIN.to_string();
        let config = workspace_root.join("capsule.toml");
        let files = config
            .is_file()
            .then_some(config)
            .into_iter()
            .chain(extra.iter().cloned());
        for file in files {
            catalogue.extend_from_file(&file)?;
            key.push_str(&std::fs::read_to_string(&file).unwrap_or_default());
        }
        Ok(Settings {
            catalogue,
            catalogue_key: key,
            cache_dir: target_dir.join("capsule").join("scan"),
            rustc: std::env::var_os("RUSTC")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("rustc")),
            workspace_root: workspace_root.to_path_buf(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        })
    }
}

/// Opens a file for reading if it is a regular file, without blocking on
/// a FIFO or device put where a file was expected.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Reads at most `limit` bytes of a regular file (more is an error).
fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_regular(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::other(format!(
            "more than the {} MiB a source file may have to be scanned",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// Memory-maps a file for reading.
pub fn map_file(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = open_regular(path)?;
    // SAFETY: the map is read-only and private to this process; the files
    // are build outputs and package files that nothing is expected to
    // truncate while the scan runs (if something does, reading a truncated
    // page is the one risk mmap carries, accepted for speed, as every
    // object-file tool does).
    unsafe { memmap2::Mmap::map(&file) }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cached {
    findings: Vec<Finding>,
    errors: Vec<ScanError>,
    /// The result depends on something besides the inputs hashed (a file
    /// that could not be read, a baseline that could not be built): not
    /// stored, so the next scan tries again.
    #[serde(skip)]
    transient: bool,
}

/// The state shared by the workers.
struct Scan<'a> {
    settings: &'a Settings,
    hashes: hashes::Hashes,
    baselines: [OnceLock<Result<Baseline, String>>; 2],
    /// Counts for benchmarks and tests: jobs answered from the cache, jobs
    /// run.
    hits: AtomicUsize,
    misses: AtomicUsize,
}

/// What a scan did, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub packages: usize,
    pub jobs: usize,
    pub cached: usize,
    pub elapsed: std::time::Duration,
    /// Peak resident memory of this process so far, in KiB.
    pub peak_rss_kib: u64,
}

impl Stats {
    /// One line for stderr.
    pub fn summary(&self) -> String {
        format!(
            "cargo-capsule: scanned {} crates ({} jobs, {} from cache) in {:.2} s, peak memory {} MiB",
            self.packages,
            self.jobs,
            self.cached,
            self.elapsed.as_secs_f64(),
            self.peak_rss_kib / 1024
        )
    }
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u64::try_from(u.max_rss()).unwrap_or(0))
        .unwrap_or(0)
}

enum Job<'a> {
    Symbols(&'a Unit),
    Sources(&'a Unit),
    Blobs(&'a PackageDir),
}

/// Scans the units and packages of a build; results per package id.
pub fn scan(
    settings: &Settings,
    units: &[Unit],
    packages: &[PackageDir],
) -> (BTreeMap<String, PackageScan>, Stats) {
    let started = std::time::Instant::now();
    let state = Scan {
        settings,
        hashes: hashes::Hashes::load(&settings.cache_dir.join("hashes.json")),
        baselines: Default::default(),
        hits: AtomicUsize::new(0),
        misses: AtomicUsize::new(0),
    };
    let mut jobs: Vec<Job> = Vec::new();
    // A unit whose artifact or dep-info was not found is unscanned, and
    // says so.
    let mut missing: Vec<(String, Cached)> = Vec::new();
    for unit in units {
        let kind = match unit.kind {
            UnitKind::BuildScript => "build script",
            UnitKind::ProcMacro => "proc macro",
            UnitKind::Library => "library",
            UnitKind::Other => "target",
        };
        if unit.artifact.is_some() && unit.kind != UnitKind::Other {
            jobs.push(Job::Symbols(unit));
        } else if unit.kind != UnitKind::Other {
            missing.push((
                unit.package_id.clone(),
                Scan::transient_error(
                    Method::Symbol,
                    format!("the compiled {kind} was not found; its symbols are unscanned"),
                ),
            ));
        }
        if unit.dep_info.is_some() {
            jobs.push(Job::Sources(unit));
        } else {
            missing.push((
                unit.package_id.clone(),
                Scan::transient_error(
                    Method::Source,
                    format!(
                        "rustc's dep-info for the {kind} was not found; its sources are unscanned"
                    ),
                ),
            ));
        }
    }
    jobs.extend(packages.iter().map(Job::Blobs));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Cached)>> = Mutex::new(missing);
    std::thread::scope(|scope| {
        for _ in 0..settings.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else { break };
                    // A parser bug must not end the scan: the job's crate
                    // gets a scan error instead.
                    let (package, result) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.run(job)))
                            .unwrap_or_else(|_| job.failed());
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((package, result));
                }
            });
        }
    });
    state.hashes.save();
    let mut per_package: BTreeMap<String, (Vec<Finding>, BTreeSet<ScanError>)> = BTreeMap::new();
    for (package, cached) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let entry = per_package.entry(package).or_default();
        entry.0.extend(cached.findings);
        entry.1.extend(cached.errors);
    }
    let stats = Stats {
        packages: per_package.len(),
        jobs: jobs.len(),
        cached: state.hits.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        peak_rss_kib: peak_rss_kib(),
    };
    let out = per_package
        .into_iter()
        .map(|(package, (findings, errors))| {
            (
                package,
                PackageScan {
                    observations: observations(findings),
                    errors: errors.into_iter().collect(),
                },
            )
        })
        .collect();
    (out, stats)
}

type MergeKey = (Phase, String, String, Method);
type Evidence = BTreeMap<String, BTreeSet<String>>;

/// Findings merged into observations: one per phase, capability, target
/// and method, counting the sites, evidence kept per key.
pub fn observations(findings: Vec<Finding>) -> Vec<Observation> {
    let mut merged: BTreeMap<MergeKey, (u64, Evidence)> = BTreeMap::new();
    for finding in findings {
        let entry = merged
            .entry((
                finding.phase,
                finding.capability,
                finding.target,
                finding.method,
            ))
            .or_default();
        entry.0 += 1;
        for (key, value) in finding.evidence {
            entry.1.entry(key).or_default().insert(value);
        }
    }
    let list = merged
        .into_iter()
        .map(
            |((phase, capability, target, method), (count, detail))| Observation {
                phase,
                capability,
                target,
                outcome: Outcome::Possible,
                method,
                count,
                detail: crate::observe::cap_detail(detail),
            },
        );
    crate::observe::merge(list)
}

impl Job<'_> {
    /// The result of a job whose scanner panicked.
    fn failed(&self) -> (String, Cached) {
        let (package, method, what) = match self {
            Job::Symbols(unit) => (&unit.package_id, Method::Symbol, "the compiled artifact"),
            Job::Sources(unit) => (&unit.package_id, Method::Source, "the sources"),
            Job::Blobs(package) => (&package.package_id, Method::Blob, "the package files"),
        };
        (
            package.clone(),
            Scan::transient_error(
                method,
                format!("the scanner failed on {what} (a bug in cargo-capsule); unscanned"),
            ),
        )
    }
}

impl Scan<'_> {
    fn run(&self, job: &Job) -> (String, Cached) {
        match job {
            Job::Symbols(unit) => (unit.package_id.clone(), self.symbols(unit)),
            Job::Sources(unit) => (unit.package_id.clone(), self.sources(unit)),
            Job::Blobs(package) => (package.package_id.clone(), self.blobs(package)),
        }
    }

    fn error(method: Method, message: String) -> Cached {
        Cached {
            findings: Vec::new(),
            errors: vec![ScanError { method, message }],
            transient: false,
        }
    }

    /// An error that may not happen next time (not cached).
    fn transient_error(method: Method, message: String) -> Cached {
        Cached {
            transient: true,
            ..Self::error(method, message)
        }
    }

    fn hash_file(&self, path: &Path) -> std::io::Result<String> {
        self.hashes.hash(path)
    }

    /// The cached result under `key`, or `compute`'s, stored.
    fn cached(&self, parts: &[&str], compute: impl FnOnce() -> Cached) -> Cached {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&SCANNER_VERSION.to_le_bytes());
        hasher.update(self.settings.catalogue_key.as_bytes());
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let key = hasher.finalize().to_hex();
        let path = self.settings.cache_dir.join(format!("{}.json", &key[..32]));
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(cached) = serde_json::from_slice::<Cached>(&bytes)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return cached;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let result = compute();
        if result.transient {
            return result;
        }
        if let Ok(text) = serde_json::to_vec(&result) {
            let _ = std::fs::create_dir_all(&self.settings.cache_dir);
            let _ = crate::intercept::session::write_cache(&path, &text);
        }
        result
    }

    fn symbols(&self, unit: &Unit) -> Cached {
        let Some(artifact) = &unit.artifact else {
            return Cached::default();
        };
        let display = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hash = match self.hash_file(artifact) {
            Ok(hash) => hash,
            Err(e) => return Self::error(Method::Symbol, format!("{display}: cannot read: {e}")),
        };
        let phase = unit.kind.phase();
        let kind = format!("{:?}", unit.kind);
        self.cached(&["symbols", &kind, &hash], || {
            let bytes = match map_file(artifact) {
                Ok(bytes) => bytes,
                Err(e) => {
                    return Self::transient_error(
                        Method::Symbol,
                        format!("{display}: cannot read: {e}"),
                    );
                }
            };
            let is_archive = bytes.starts_with(b"!<arch>\n");
            let baseline = if is_archive {
                None
            } else {
                match self.baseline(unit.kind) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        return Self::transient_error(
                            Method::Symbol,
                            format!("{display}: no baseline to compare with: {e}"),
                        );
                    }
                }
            };
            match symbols::scan_bytes(&bytes, &display, phase, &self.settings.catalogue, baseline) {
                Ok(scanned) => Cached {
                    transient: false,
                    findings: scanned.findings,
                    errors: scanned
                        .errors
                        .into_iter()
                        .map(|e| ScanError {
                            method: Method::Symbol,
                            message: e.to_string(),
                        })
                        .collect(),
                },
                Err(e) => Self::error(Method::Symbol, e.to_string()),
            }
        })
    }

    /// The baseline for a linked unit kind, built once per scan (and cached
    /// on disk per toolchain).
    fn baseline(&self, kind: UnitKind) -> Result<&Baseline, String> {
        let slot = usize::from(kind == UnitKind::ProcMacro);
        self.baselines[slot]
            .get_or_init(|| build_baseline(self.settings, kind))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn sources(&self, unit: &Unit) -> Cached {
        let Some(dep_info) = &unit.dep_info else {
            return Cached::default();
        };
        let text = match std::fs::read_to_string(dep_info) {
            Ok(text) => text,
            Err(e) => {
                return Self::error(
                    Method::Source,
                    format!(
                        "cannot read the dep-info {}: {e}",
                        dep_info.file_name().unwrap_or_default().to_string_lossy()
                    ),
                );
            }
        };
        let (paths, _) = crate::observe::attribute::parse_dep_info(&text);
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        for path in paths {
            let full = if path.is_absolute() {
                path
            } else if unit.manifest_dir.join(&path).is_file() {
                unit.manifest_dir.join(&path)
            } else {
                self.settings.workspace_root.join(&path)
            };
            let display = display_source(
                &full,
                &unit.manifest_dir,
                &self.settings.workspace_root,
                self.settings.target_dir(),
            );
            files.push((full, display));
        }
        files.sort();
        files.dedup_by(|a, b| a.0 == b.0);
        let mut parts = vec!["sources".to_string(), format!("{:?}", unit.kind)];
        parts.push(unit.manifest_dir.to_string_lossy().into_owned());
        let mut unreadable = Vec::new();
        // (path, display, data): files that are not `.rs` are data
        // (`include_str!`) unless they parse (`include!("code.txt")`): only
        // parsed ones count, and reading them may fail quietly.
        let mut hashed: Vec<(PathBuf, String, bool)> = Vec::new();
        for (full, display) in &files {
            let data = full.extension().is_none_or(|e| e != "rs");
            match self.hash_file(full) {
                Ok(hash) => {
                    parts.push(full.to_string_lossy().into_owned());
                    parts.push(display.clone());
                    parts.push(hash);
                    hashed.push((full.clone(), display.clone(), data));
                }
                Err(_) if data => {}
                Err(e) => unreadable.push(ScanError {
                    method: Method::Source,
                    message: format!("{display}: cannot read: {e}; the file is unscanned"),
                }),
            }
        }
        // Only what could be hashed is read (a FIFO never is).
        let files = hashed;
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let phase = unit.kind.phase();
        let mut result = self.cached(&refs, || {
            let mut out = Cached::default();
            for (full, display, data) in &files {
                let data = *data;
                let limit = if data {
                    MAX_DATA_BYTES
                } else {
                    MAX_SOURCE_BYTES
                };
                let bytes = match read_limited(full, limit) {
                    Ok(bytes) => bytes,
                    Err(_) if data => continue,
                    Err(e) => {
                        // Over the size limit is a fact about the file;
                        // anything else may pass next time.
                        out.transient |= e.kind() != std::io::ErrorKind::Other;
                        out.errors.push(ScanError {
                            method: Method::Source,
                            message: format!("{display}: {e}; the file is unscanned"),
                        });
                        continue;
                    }
                };
                let file = source::SourceFile {
                    display,
                    path: full,
                    package_root: &unit.manifest_dir,
                    phase,
                };
                match source::scan_source(&file, &bytes, &self.settings.catalogue) {
                    Ok(findings) => out.findings.extend(findings),
                    Err(_) if data => {}
                    Err(e) => out.errors.push(ScanError {
                        method: Method::Source,
                        message: format!("{e}; the file is unscanned"),
                    }),
                }
            }
            out
        });
        result.errors.extend(unreadable);
        result
    }

    fn blobs(&self, package: &PackageDir) -> Cached {
        let compute = || {
            let (findings, errors) = blobs::scan_package(&package.manifest_dir, package.immutable);
            Cached {
                // Unreadable files may be readable next time.
                transient: !errors.is_empty(),
                findings,
                errors: errors
                    .into_iter()
                    .map(|message| ScanError {
                        method: Method::Blob,
                        message,
                    })
                    .collect(),
            }
        };
        if package.immutable {
            let dir = package.manifest_dir.to_string_lossy();
            self.cached(&["blobs", &package.package_id, &dir], compute)
        } else {
            compute()
        }
    }
}

/// How a source file is named in evidence, the same on every machine:
/// relative to its package, `$OUT_DIR/...` for generated code,
/// `$WORKSPACE/...` for a file elsewhere in the workspace, `$HOME/...`;
/// other paths as they are.
fn display_source(
    path: &Path,
    manifest_dir: &Path,
    workspace_root: &Path,
    target_dir: &Path,
) -> String {
    // cargo can spell a package's files through `..` (a `directory =
    // "../vendor"` source); the package dir is canonical.
    let resolved;
    let path = if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        resolved = std::fs::canonicalize(path)
            .unwrap_or_else(|_| crate::sandbox::mounts::lexical_normalize(path));
        resolved.as_path()
    } else {
        path
    };
    if let Ok(relative) = path.strip_prefix(manifest_dir) {
        return relative.to_string_lossy().into_owned();
    }
    // `<target>/<profile>/build/<pkg>-<hash>/out/...` (a `--target` build
    // has one more level): generated code.
    if let Ok(inside) = path.strip_prefix(target_dir) {
        let parts: Vec<&std::ffi::OsStr> = inside.iter().collect();
        if let Some(at) = parts.iter().position(|p| *p == "build")
            && at <= 2
            && parts.get(at + 2).is_some_and(|p| *p == "out")
            && parts.len() > at + 3
        {
            let rest: PathBuf = parts[at + 3..].iter().collect();
            return format!("$OUT_DIR/{}", rest.display());
        }
    }
    let text = path.to_string_lossy();
    if let Ok(relative) = path.strip_prefix(workspace_root) {
        return format!("$WORKSPACE/{}", relative.display());
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && let Ok(relative) = path.strip_prefix(home)
    {
        return format!("$HOME/{}", relative.display());
    }
    text.into_owned()
}

/// Builds (or loads) the baseline of a linked unit kind: an empty program
/// or proc macro compiled by the build's rustc.
fn build_baseline(settings: &Settings, kind: UnitKind) -> Result<Baseline, String> {
    let version = std::process::Command::new(&settings.rustc)
        .arg("-vV")
        .current_dir(&settings.workspace_root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", settings.rustc.display()))?;
    if !version.status.success() {
        return Err(format!("{} -vV failed", settings.rustc.display()));
    }
    let (crate_type, source) = if kind == UnitKind::ProcMacro {
        (
            "proc-macro",
            "extern crate proc_macro;\nuse proc_macro::TokenStream;\n#[proc_macro]\npub fn nothing(input: TokenStream) -> TokenStream { input }\n",
        )
    } else {
        ("bin", "fn main() {}\n")
    };
    let mut key = blake3::Hasher::new();
    key.update(&version.stdout);
    key.update(crate_type.as_bytes());
    key.update(&SCANNER_VERSION.to_le_bytes());
    let stored = settings
        .cache_dir
        .join(format!("baseline-{}.json", &key.finalize().to_hex()[..32]));
    if let Ok(bytes) = std::fs::read(&stored)
        && let Ok(names) = serde_json::from_slice::<Vec<String>>(&bytes)
    {
        return Ok(Baseline::from_names(names));
    }
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let input = dir.path().join("baseline.rs");
    std::fs::write(&input, source).map_err(|e| format!("cannot write {}: {e}", input.display()))?;
    let output = dir.path().join("baseline.out");
    let run = std::process::Command::new(&settings.rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            crate_type,
            "--crate-name",
            "baseline",
        ])
        .args(["-C", "opt-level=0", "-C", "debuginfo=0", "-o"])
        .arg(&output)
        .arg(&input)
        .current_dir(&settings.workspace_root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", settings.rustc.display()))?;
    if !run.status.success() {
        return Err(format!(
            "compiling an empty {crate_type} failed: {}",
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let bytes = std::fs::read(&output).map_err(|e| format!("cannot read the baseline: {e}"))?;
    let mut baseline = Baseline::from_bytes(&bytes, "baseline").map_err(|e| e.to_string())?;
    // The C functions std itself calls (`execvp` behind `Command`, `sendmsg`
    // behind its pidfd passing): in a linked file they are std's, already
    // represented by the std API that reached them.
    let host = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV names no host")?;
    let sysroot = std::process::Command::new(&settings.rustc)
        .args(["--print", "sysroot"])
        .current_dir(&settings.workspace_root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", settings.rustc.display()))?;
    let lib_dir = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib")
        .join(host)
        .join("lib");
    let libstd = std::fs::read_dir(&lib_dir)
        .map_err(|e| format!("cannot list {}: {e}", lib_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libstd-") && n.ends_with(".rlib"))
        })
        .ok_or_else(|| format!("no libstd rlib in {}", lib_dir.display()))?;
    let std_bytes =
        map_file(&libstd).map_err(|e| format!("cannot read {}: {e}", libstd.display()))?;
    baseline.add_c_imports(&std_bytes);
    let mut names: Vec<&String> = baseline.names().collect();
    names.sort();
    if let Ok(text) = serde_json::to_vec(&names) {
        let _ = std::fs::create_dir_all(&settings.cache_dir);
        let _ = crate::intercept::session::write_cache(&stored, &text);
    }
    Ok(baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_files_are_named_stably() {
        let pkg = Path::new("/reg/foo-1.0.0");
        let ws = Path::new("/w");
        let t = Path::new("/t");
        assert_eq!(
            display_source(Path::new("/reg/foo-1.0.0/src/lib.rs"), pkg, ws, t),
            "src/lib.rs"
        );
        assert_eq!(
            display_source(
                Path::new("/t/debug/build/foo-0123/out/gen/bindings.rs"),
                pkg,
                ws,
                t
            ),
            "$OUT_DIR/gen/bindings.rs"
        );
        // Not generated code: outside the target dir.
        assert_eq!(
            display_source(Path::new("/w/build/x/out/gen.rs"), pkg, ws, t),
            "$WORKSPACE/build/x/out/gen.rs"
        );
        assert_eq!(
            display_source(Path::new("/w/shared/x.rs"), pkg, ws, t),
            "$WORKSPACE/shared/x.rs"
        );
    }

    #[test]
    fn a_missing_baseline_is_reported_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            catalogue: Catalogue::builtin(),
            catalogue_key: String::new(),
            cache_dir: dir.path().join("scan"),
            rustc: dir.path().join("no-such-rustc"),
            workspace_root: dir.path().to_path_buf(),
            jobs: 2,
        };
        // Any linked executable stands in for a build script here.
        let unit = Unit {
            package_id: "path+file:///w/x#0.1.0".into(),
            manifest_dir: dir.path().to_path_buf(),
            kind: UnitKind::BuildScript,
            artifact: Some(PathBuf::from("/bin/true")),
            dep_info: None,
        };
        for _ in 0..2 {
            let (results, stats) = scan(&settings, std::slice::from_ref(&unit), &[]);
            assert_eq!((stats.jobs, stats.cached), (1, 0));
            let errors: Vec<&ScanError> = results["path+file:///w/x#0.1.0"]
                .errors
                .iter()
                .filter(|e| e.method == Method::Symbol)
                .collect();
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0]
                    .message
                    .starts_with("true: no baseline to compare with: cannot run"),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn findings_merge_into_possible_observations() {
        let f = |line: &str| Finding {
            phase: Phase::Runtime,
            capability: "fs.read".into(),
            target: "std::fs::read".into(),
            method: Method::Source,
            evidence: vec![("location".into(), format!("src/lib.rs:{line}"))],
        };
        let obs = observations(vec![f("3"), f("1"), f("3")]);
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].count, 3);
        assert_eq!(obs[0].outcome, Outcome::Possible);
        assert_eq!(obs[0].detail["location"], ["src/lib.rs:1", "src/lib.rs:3"]);
    }
}
