//! `cargo capsule build`: the driver.
//!
//! Reads the crate graph, prepares a session, arms any build script a plain
//! build left in the target dir, runs `cargo build` with cargo-capsule as
//! `RUSTC_WRAPPER` and `--message-format json-render-diagnostics` (so cargo
//! still prints its diagnostics, and tells us which build scripts it ran and
//! which it reused), then joins cargo's messages with the sandbox's run
//! records into the build report, written atomically to
//! `target/capsule/build-report.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use crate::graph::{self, Features, Graph};
use crate::intercept::session::{
    self, EXE_ENV, ExpansionRecord, RunRecord, SESSION_ENV, Session, library_crate_name,
};
use crate::intercept::{InterceptError, shim};
use crate::observe;
use crate::report::{
    BuildReport, BuildScriptRun, CrateReport, ProcMacroUse, RunStatus, SCHEMA_VERSION,
};
use crate::sandbox::{Profile, ProfileSource, SandboxError};

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Intercept(#[from] InterceptError),
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalogue(#[from] crate::scan::catalogue::CatalogueError),
    #[error("`{0}` cannot be passed through: cargo-capsule sets it itself")]
    Conflict(String),
}

/// Options of `cargo capsule build`.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub manifest_path: Option<PathBuf>,
    pub packages: Vec<String>,
    pub features: Features,
    pub release: bool,
    pub target_dir: Option<PathBuf>,
    pub profile: Option<String>,
    pub rustc_profile: Option<String>,
    pub fresh: bool,
    pub jobs: Option<u32>,
    pub extra: Vec<OsString>,
    /// Run the static scan after the build.
    pub scan: bool,
    /// Catalogue files extending the built-in API catalogue.
    pub catalogues: Vec<PathBuf>,
    /// Pass `--offline` to cargo (never changes a result: left out of cache keys).
    pub offline: bool,
    /// Pass `--quiet` to cargo (a progress bar is drawn instead).
    pub quiet: bool,
}

/// What a build reports while it runs, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// cargo finished (or reused) a unit of this package (`name version`).
    Unit(String),
    /// cargo is done; the static scan starts.
    Scanning,
}

/// The outcome of a build.
#[derive(Debug)]
pub struct BuildOutcome {
    pub report: BuildReport,
    pub report_path: PathBuf,
    pub success: bool,
    /// One line per failed build script.
    pub failures: Vec<String>,
    /// What the static scan did (absent when it did not run).
    pub scan_stats: Option<crate::scan::Stats>,
    pub workspace_root: PathBuf,
    /// Where each crate of the report lives.
    pub package_dirs: crate::manifest::PackageDirs,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Io { what, source }
}

/// The cargo to run: the one that started us, else `cargo` on PATH.
pub fn cargo_path() -> PathBuf {
    std::env::var_os("CARGO")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// `$HOME`, `$CARGO_HOME` and `$RUSTUP_HOME`, with their defaults.
pub(crate) fn home_dirs() -> (PathBuf, PathBuf, PathBuf) {
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cargo"));
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".rustup"));
    (home, cargo_home, rustup_home)
}

/// Where the last record of each build-script run is kept, keyed by its
/// `OUT_DIR` relative to the target dir.
fn run_store(target_dir: &Path) -> PathBuf {
    target_dir.join("capsule").join("runs")
}

fn store_key(target_dir: &Path, out_dir: &Path) -> String {
    let rel = out_dir.strip_prefix(target_dir).unwrap_or(out_dir);
    let mut key: String = rel
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '%'
            }
        })
        .collect();
    key.push_str(".json");
    key
}

pub(crate) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The target dir of a build: `--target-dir` (relative to the current
/// directory), else cargo's.
pub fn target_dir(options: &BuildOptions, graph: &Graph) -> PathBuf {
    match &options.target_dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => std::env::current_dir().unwrap_or_default().join(d),
        None => graph.target_dir.clone(),
    }
}

/// Whether a package directory is one cargo extracted itself from a
/// registry or git (published, never edited). Vendored and patched sources
/// keep a registry id but can be edited, so they are not.
pub(crate) struct Extracted {
    roots: [PathBuf; 2],
}

impl Extracted {
    pub(crate) fn new() -> Extracted {
        let (_, cargo_home, _) = home_dirs();
        Extracted {
            roots: [
                canonical(&cargo_home.join("registry")),
                canonical(&cargo_home.join("git")),
            ],
        }
    }

    /// `path_source`: the package is a path package (`path+...` id or
    /// source).
    pub(crate) fn contains(&self, path_source: bool, dir: &Path) -> bool {
        !path_source
            && self
                .roots
                .iter()
                .any(|r| dir.starts_with(r) || canonical(dir).starts_with(r))
    }
}

/// Directories of the local (path) packages.
fn local_roots(graph: &Graph) -> Vec<PathBuf> {
    graph
        .packages
        .values()
        .filter(|p| p.local)
        .map(|p| p.manifest_dir.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Runs the build.
pub fn build(options: &BuildOptions) -> Result<BuildOutcome, DriverError> {
    build_observed(options, &mut |_| {})
}

/// Runs the build, telling `on_event` how far it got.
pub fn build_observed(
    options: &BuildOptions,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<BuildOutcome, DriverError> {
    for arg in &options.extra {
        let text = arg.to_string_lossy();
        if text.starts_with("--message-format") {
            return Err(DriverError::Conflict(text.into_owned()));
        }
    }
    let name_of = |source: &ProfileSource| match source {
        ProfileSource::Builtin(name) => name.to_string(),
        ProfileSource::File(path) => path.display().to_string(),
    };
    let (profile, profile_source) = Profile::resolve(options.profile.as_deref())?;
    let profile_name = name_of(&profile_source);
    let (rustc_profile, rustc_source) = Profile::resolve(Some(
        options
            .rustc_profile
            .as_deref()
            .unwrap_or(crate::sandbox::profile::DEFAULT_RUSTC_PROFILE),
    ))?;
    let rustc_profile_name = name_of(&rustc_source);
    // Fail early, in one line, on a machine without user namespaces.
    crate::sandbox::probe()?;
    let cargo = cargo_path();
    // The workspace members are enough: dependencies are named by the package
    // ids cargo reports (resolving the full graph here would take cargo's
    // package-cache lock and delay the build).
    let graph = graph::load(
        &cargo,
        options.manifest_path.as_deref(),
        &options.features,
        true,
    )?;
    let target_dir = target_dir(options, &graph);
    let capsule_dir = target_dir.join("capsule");
    std::fs::create_dir_all(&capsule_dir)
        .map_err(io(format!("create {}", capsule_dir.display())))?;
    let target_dir = canonical(&target_dir);
    let capsule_dir = target_dir.join("capsule");
    // A bad catalogue is a tool error before anything is built.
    let scan_settings = if options.scan {
        Some(crate::scan::Settings::new(
            &graph.workspace_root,
            &target_dir,
            &options.catalogues,
        )?)
    } else {
        None
    };

    let exe = std::env::current_exe()
        .map(|e| canonical(&e))
        .map_err(io("find the cargo-capsule executable"))?;
    let (home, cargo_home, rustup_home) = home_dirs();
    let session = Session {
        profile,
        profile_name: profile_name.clone(),
        rustc_profile,
        rustc_profile_name: rustc_profile_name.clone(),
        inherited_env: std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect(),
        workspace_root: graph.workspace_root.clone(),
        target_dir: target_dir.clone(),
        local_roots: local_roots(&graph),
        home,
        cargo_home,
        rustup_home,
        chain_wrapper: std::env::var_os("RUSTC_WRAPPER")
            .filter(|w| !w.is_empty())
            .map(PathBuf::from)
            .filter(|w| canonical(w) != exe),
    };
    let session_dir = tempfile::Builder::new()
        .prefix("session-")
        .tempdir_in(&capsule_dir)
        .map_err(io(format!(
            "create a session directory in {}",
            capsule_dir.display()
        )))?;
    session.save(session_dir.path())?;
    let wrapper_script = Session::write_wrapper(session_dir.path(), &exe)?;

    // Build scripts a plain build left behind must not run unsandboxed.
    shim::arm_target_dir(&target_dir)?;
    if options.fresh {
        shim::forget_build_script_runs(&target_dir)?;
    }

    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--message-format=json-render-diagnostics");
    if let Some(path) = &options.manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    for spec in &options.packages {
        command.arg("-p").arg(spec);
    }
    if !options.features.features.is_empty() {
        command
            .arg("--features")
            .arg(options.features.features.join(","));
    }
    if options.features.all_features {
        command.arg("--all-features");
    }
    if options.features.no_default_features {
        command.arg("--no-default-features");
    }
    if options.release {
        command.arg("--release");
    }
    if let Some(jobs) = options.jobs {
        command.arg("-j").arg(jobs.to_string());
    }
    if options.offline {
        command.arg("--offline");
    }
    if options.quiet {
        command.arg("--quiet");
    }
    command.arg("--target-dir").arg(&target_dir);
    command.args(&options.extra);
    command
        .env("RUSTC_WRAPPER", &wrapper_script)
        .env(SESSION_ENV, session_dir.path())
        .env(EXE_ENV, &exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(io(format!("run {}", cargo.display())))?;
    // Which build scripts cargo ran or reused, by OUT_DIR.
    let mut executed: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut artifacts = Artifacts::default();
    let stdout = child.stdout.take().expect("stdout is piped");
    for message in Message::parse_stream(BufReader::new(stdout)) {
        match message {
            Ok(Message::BuildScriptExecuted(script)) => {
                if let Some((name, version, _)) = identify(&graph, &script.package_id.repr) {
                    on_event(BuildEvent::Unit(format!("{name} {version}")));
                }
                executed.insert(
                    canonical(script.out_dir.as_std_path()),
                    script.package_id.repr,
                );
            }
            Ok(Message::CompilerArtifact(artifact)) => {
                if let Some((name, version, _)) = identify(&graph, &artifact.package_id.repr) {
                    on_event(BuildEvent::Unit(format!("{name} {version}")));
                }
                artifacts.add(&artifact);
            }
            Ok(Message::TextLine(line)) => eprintln!("{line}"),
            _ => {}
        }
    }
    let status = child.wait().map_err(io("wait for cargo"))?;
    let records = session::load_records(session_dir.path())?;
    let expansions = session::load_expansions(session_dir.path())?;
    let mut report = assemble(&graph, &target_dir, &profile_name, &executed, &records)?;
    report.rustc_profile = rustc_profile_name.clone();
    add_expansions(&mut report, &graph, &target_dir, &artifacts, &expansions)?;
    let scan_stats = scan_settings.map(|settings| {
        on_event(BuildEvent::Scanning);
        add_scan(&mut report, &graph, &settings, &artifacts)
    });

    let mut failures = Vec::new();
    for record in records.iter().filter(|r| r.exit_code != 0) {
        failures.push(match &record.setup_error {
            Some(error) => format!(
                "cargo-capsule: the sandbox for the build script of {}@{} could not start: {error}",
                record.package, record.version
            ),
            None => shim::failure_line(record, &profile_name),
        });
    }
    for record in expansions.iter().filter(|r| r.exit_code != 0) {
        let line = match &record.setup_error {
            Some(error) => Some(format!(
                "cargo-capsule: the sandbox for rustc compiling {}@{} could not start: {error}",
                record.package, record.version
            )),
            None => crate::intercept::compile::failure_line(record, &rustc_profile_name),
        };
        failures.extend(line);
    }
    let report_path = capsule_dir.join("build-report.json");
    session::write_atomic(&report_path, report.to_json().as_bytes())?;
    Ok(BuildOutcome {
        report,
        report_path,
        success: status.success(),
        failures,
        scan_stats,
        workspace_root: graph.workspace_root.clone(),
        package_dirs: artifacts
            .units
            .iter()
            .filter_map(|u| Some((identify(&graph, &u.package_id)?, u.manifest_dir.clone())))
            .collect(),
    })
}

/// Joins cargo's list of build-script runs with the sandbox's records.
fn assemble(
    graph: &Graph,
    target_dir: &Path,
    profile_name: &str,
    executed: &BTreeMap<PathBuf, String>,
    records: &[RunRecord],
) -> Result<BuildReport, DriverError> {
    let store = run_store(target_dir);
    // Records of this build, kept for the next one (they are what a cached
    // run reuses).
    for record in records {
        let text = serde_json::to_string(record).expect("record serialises");
        session::write_atomic(
            &store.join(store_key(target_dir, &record.out_dir)),
            text.as_bytes(),
        )?;
    }
    let by_out_dir: BTreeMap<&Path, &RunRecord> =
        records.iter().map(|r| (r.out_dir.as_path(), r)).collect();

    // Every run cargo reported, plus runs that failed (cargo reports only
    // successful ones).
    let mut runs: Vec<(String, Option<RunRecord>, RunStatus)> = Vec::new();
    for (out_dir, package_id) in executed {
        match by_out_dir.get(out_dir.as_path()) {
            Some(record) => {
                runs.push((package_id.clone(), Some((*record).clone()), RunStatus::Ran))
            }
            None => {
                let stored = std::fs::read_to_string(store.join(store_key(target_dir, out_dir)))
                    .ok()
                    .and_then(|t| serde_json::from_str::<RunRecord>(&t).ok());
                let status = if stored.is_some() {
                    RunStatus::Cached
                } else {
                    RunStatus::CachedUnrecorded
                };
                runs.push((package_id.clone(), stored, status));
            }
        }
    }
    for record in records {
        if executed.contains_key(&record.out_dir) {
            continue;
        }
        let package_id = graph
            .packages
            .values()
            .find(|p| {
                p.name == record.package
                    && p.version == record.version
                    && canonical(&p.manifest_dir) == record.manifest_dir
            })
            .map(|p| p.id.clone())
            .unwrap_or_else(|| format!("{}@{}", record.package, record.version));
        let status = if record.setup_error.is_some() {
            RunStatus::SetupFailed
        } else {
            RunStatus::Ran
        };
        runs.push((package_id, Some(record.clone()), status));
    }

    let mut crates: BTreeMap<(String, String, String), CrateReport> = BTreeMap::new();
    for (package_id, record, status) in runs {
        let identity = match identify(graph, &package_id) {
            Some(found) => found,
            None => match &record {
                Some(r) => (r.package.clone(), r.version.clone(), "unknown".into()),
                None => continue,
            },
        };
        let entry = crate_entry(&mut crates, identity);
        let script = entry.build_script.get_or_insert(BuildScriptRun {
            status,
            exit_code: None,
        });
        // A package whose build script ran twice (host and target) is one crate.
        if status_rank(status) < status_rank(script.status) {
            script.status = status;
        }
        if let Some(record) = record {
            // Several runs (host and target): the worst status, whatever the order.
            let code = script.exit_code.unwrap_or(0);
            script.exit_code = Some(code.max(record.exit_code));
            let merged = observe::merge(entry.observations.drain(..).chain(record.observations));
            entry.observations = merged;
        }
    }
    Ok(BuildReport {
        schema_version: SCHEMA_VERSION,
        profile: profile_name.to_string(),
        rustc_profile: String::new(),
        crates: crates.into_values().collect(),
    })
}

/// What cargo's `compiler-artifact` messages tell: which package each
/// proc-macro library belongs to, and which units were compiled or reused.
#[derive(Debug, Default)]
struct Artifacts {
    /// Proc-macro library → package id.
    macro_owner: BTreeMap<PathBuf, String>,
    /// Units reused from an earlier build: (package id, manifest dir, crate
    /// name, kind).
    fresh: Vec<(String, PathBuf, String, String)>,
    /// Every unit built or reused, for the static scan.
    units: Vec<crate::scan::Unit>,
}

impl Artifacts {
    fn add(&mut self, artifact: &cargo_metadata::Artifact) {
        let kinds: Vec<String> = artifact
            .target
            .crate_types
            .iter()
            .map(|k| k.to_string())
            .collect();
        if kinds.iter().any(|k| k == "proc-macro") {
            for file in &artifact.filenames {
                self.macro_owner.insert(
                    canonical(file.as_std_path()),
                    artifact.package_id.repr.clone(),
                );
            }
        }
        if let Some(unit) = scan_unit(artifact) {
            self.units.push(unit);
        }
        if artifact.fresh {
            let kind = if artifact.profile.test {
                "test".to_string()
            } else {
                let mut kinds = kinds;
                kinds.sort();
                kinds.join("+")
            };
            let manifest_dir = artifact
                .manifest_path
                .parent()
                .map(|d| canonical(d.as_std_path()))
                .unwrap_or_default();
            self.fresh.push((
                artifact.package_id.repr.clone(),
                manifest_dir,
                artifact.target.name.replace('-', "_"),
                kind,
            ));
        }
    }
}

/// The static-scan view of a unit (none for test units).
fn scan_unit(artifact: &cargo_metadata::Artifact) -> Option<crate::scan::Unit> {
    use crate::scan::UnitKind;
    if artifact.profile.test {
        return None;
    }
    let kinds: Vec<String> = artifact.target.kind.iter().map(|k| k.to_string()).collect();
    let has = |k: &str| kinds.iter().any(|x| x == k);
    let files: Vec<PathBuf> = artifact
        .filenames
        .iter()
        .map(|f| f.as_std_path().to_path_buf())
        .collect();
    let with_ext = |ext: &str| {
        files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
    };
    let mut dep_info = files.iter().find_map(|f| dep_info_of(f));
    let (kind, artifact_file) = if has("custom-build") {
        // cargo names the hard link `build-script-<stem>` (`build` for
        // build.rs, `setup` for `build = "setup.rs"`); rustc's output is
        // `build_script_<stem>-HASH` (now the shim) beside it, and the real
        // executable `build_script_<stem>-HASH.capsule-real`.
        let exe = files.first()?;
        let dir = exe.parent()?;
        let prefix = format!("{}-", exe.file_name()?.to_str()?.replace('-', "_"));
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        names.sort();
        let real = names
            .iter()
            .find(|p| p.to_string_lossy().ends_with(shim::REAL_SUFFIX))
            .or_else(|| names.iter().find(|p| p.extension().is_none()))
            .cloned();
        dep_info = names
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "d"))
            .cloned();
        (UnitKind::BuildScript, real)
    } else if has("proc-macro") {
        (UnitKind::ProcMacro, with_ext("so").cloned())
    } else if has("lib") || has("rlib") {
        (UnitKind::Library, with_ext("rlib").cloned())
    } else {
        (UnitKind::Other, None)
    };
    Some(crate::scan::Unit {
        package_id: artifact.package_id.repr.clone(),
        manifest_dir: artifact
            .manifest_path
            .parent()
            .map(|d| canonical(d.as_std_path()))
            .unwrap_or_default(),
        kind,
        artifact: artifact_file,
        dep_info,
    })
}

/// rustc's dep-info file for an output: `deps/libfoo-HASH.rlib` →
/// `deps/foo-HASH.d`, `build_script_build-HASH` → `...-HASH.d`. An output
/// cargo uplifted (`target/debug/libfoo.so`, a hard link) is first traced
/// back to its twin in `deps/` by inode.
fn dep_info_of(file: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let beside = |file: &Path| -> Option<PathBuf> {
        let dir = file.parent()?;
        let name = file.file_name()?.to_str()?;
        let stem = match name.rsplit_once('.') {
            Some((stem, "rlib" | "rmeta" | "so" | "dylib" | "a" | "dll" | "exe")) => stem,
            _ => name,
        };
        [stem, stem.strip_prefix("lib").unwrap_or(stem)]
            .iter()
            .map(|s| dir.join(format!("{s}.d")))
            .find(|d| d.is_file())
    };
    let deps = file.parent()?.join("deps");
    if deps.is_dir() {
        let meta = std::fs::metadata(file).ok()?;
        let twin = std::fs::read_dir(&deps)
            .ok()?
            .filter_map(Result::ok)
            .find(|e| {
                e.metadata()
                    .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
            });
        if let Some(found) = twin.and_then(|t| beside(&t.path())) {
            return Some(found);
        }
    }
    beside(file)
}

/// Runs the static scan over the build's units and adds its observations
/// and errors to the report.
fn add_scan(
    report: &mut BuildReport,
    graph: &Graph,
    settings: &crate::scan::Settings,
    artifacts: &Artifacts,
) -> crate::scan::Stats {
    // Only what cargo extracted itself is taken as never changing.
    let extracted = Extracted::new();
    let mut packages: BTreeMap<String, crate::scan::PackageDir> = BTreeMap::new();
    for unit in &artifacts.units {
        packages
            .entry(unit.package_id.clone())
            .or_insert_with(|| crate::scan::PackageDir {
                package_id: unit.package_id.clone(),
                manifest_dir: unit.manifest_dir.clone(),
                immutable: extracted
                    .contains(unit.package_id.starts_with("path+"), &unit.manifest_dir),
            });
    }
    let packages: Vec<crate::scan::PackageDir> = packages.into_values().collect();
    let (results, stats) = crate::scan::scan(settings, &artifacts.units, &packages);
    let mut crates = crates_by_identity(report);
    for (package_id, scanned) in results {
        let Some(identity) = identify(graph, &package_id) else {
            continue;
        };
        let entry = crate_entry(&mut crates, identity);
        entry.observations =
            observe::merge(entry.observations.drain(..).chain(scanned.observations));
        entry.scan_errors.extend(scanned.errors);
        entry.scan_errors.sort();
        entry.scan_errors.dedup();
    }
    report.crates = crates.into_values().collect();
    stats
}

/// The report's crates, taken out and keyed by `(name, version, source)`
/// (put back with `report.crates = crates.into_values().collect()`).
fn crates_by_identity(report: &mut BuildReport) -> BTreeMap<(String, String, String), CrateReport> {
    report
        .crates
        .drain(..)
        .map(|c| ((c.name.clone(), c.version.clone(), c.source.clone()), c))
        .collect()
}

/// The report entry of a crate, created empty the first time.
fn crate_entry(
    crates: &mut BTreeMap<(String, String, String), CrateReport>,
    (name, version, source): (String, String, String),
) -> &mut CrateReport {
    crates
        .entry((name.clone(), version.clone(), source.clone()))
        .or_insert_with(|| CrateReport {
            name,
            version,
            source,
            build_script: None,
            proc_macro: None,
            observations: Vec::new(),
            scan_errors: Vec::new(),
        })
}

/// `(name, version, source)` of a package id.
fn identify(graph: &Graph, package_id: &str) -> Option<(String, String, String)> {
    match graph.packages.get(package_id) {
        Some(p) => Some((p.name.clone(), p.version.clone(), p.source.clone())),
        None => graph::parse_package_id(package_id, &graph.workspace_root),
    }
}

/// Adds what proc macros did: from this build's traced compilations and,
/// for units cargo reused, from their last recorded compilation.
fn add_expansions(
    report: &mut BuildReport,
    graph: &Graph,
    target_dir: &Path,
    artifacts: &Artifacts,
    ran: &[ExpansionRecord],
) -> Result<(), DriverError> {
    let store = crate::intercept::compile::expansion_store(target_dir);
    for record in ran {
        let name = ExpansionRecord::store_name(
            &record.package,
            &record.version,
            &record.manifest_dir,
            &record.crate_name,
            &record.kind,
        );
        let text = serde_json::to_string(record).expect("record serialises");
        session::write_atomic(&store.join(name), text.as_bytes())?;
    }
    let mut records: Vec<(ExpansionRecord, RunStatus)> =
        ran.iter().map(|r| (r.clone(), RunStatus::Ran)).collect();
    for (package_id, manifest_dir, crate_name, kind) in &artifacts.fresh {
        let Some((name, version, _)) = identify(graph, package_id) else {
            continue;
        };
        let file = ExpansionRecord::store_name(&name, &version, manifest_dir, crate_name, kind);
        if let Ok(record) = session::load_json::<ExpansionRecord>(&store.join(file)) {
            records.push((record, RunStatus::Cached));
        }
    }

    let mut crates = crates_by_identity(report);
    for (record, status) in &records {
        let user = format!("{}@{}", record.package, record.version);
        let identity = |library: &Path| -> (String, String, String) {
            if let Some(found) = artifacts
                .macro_owner
                .get(library)
                .and_then(|id| identify(graph, id))
            {
                return found;
            }
            match record
                .macros
                .iter()
                .find(|m| m.library == library)
                .and_then(|m| m.package.clone())
            {
                Some(p) => (
                    p.name,
                    p.version,
                    graph::path_source(&p.manifest_dir, &graph.workspace_root),
                ),
                None => (library_crate_name(library), "?".into(), "unknown".into()),
            }
        };
        for library in record.macros.iter().map(|m| &m.library) {
            let entry = crate_entry(&mut crates, identity(library));
            let used = entry.proc_macro.get_or_insert(ProcMacroUse {
                status: *status,
                used_by: Vec::new(),
            });
            if status_rank(*status) < status_rank(used.status) {
                used.status = *status;
            }
            if !used.used_by.contains(&user) {
                used.used_by.push(user.clone());
                used.used_by.sort();
            }
        }
        for group in &record.blamed {
            let suspects: Vec<(String, String, String)> =
                group.libraries.iter().map(|l| identity(l)).collect();
            let names: Vec<String> = suspects
                .iter()
                .map(|(n, v, _)| format!("{n}@{v}"))
                .collect();
            for key in suspects {
                let Some(entry) = crates.get_mut(&key) else {
                    continue;
                };
                let observations = group.observations.iter().cloned().map(|mut o| {
                    o.detail
                        .insert("while-compiling".into(), vec![record.package.clone()]);
                    if names.len() > 1 {
                        o.detail.insert("ambiguous-between".into(), names.clone());
                    }
                    o
                });
                entry.observations =
                    observe::merge(entry.observations.drain(..).chain(observations));
            }
        }
    }
    report.crates = crates.into_values().collect();
    Ok(())
}

fn status_rank(status: RunStatus) -> u8 {
    match status {
        RunStatus::SetupFailed => 0,
        RunStatus::Ran => 1,
        RunStatus::Cached => 2,
        RunStatus::CachedUnrecorded => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_are_flat_and_stable() {
        let key = store_key(
            Path::new("/t"),
            Path::new("/t/debug/build/foo-0123456789abcdef/out"),
        );
        assert_eq!(key, "debug%build%foo-0123456789abcdef%out.json");
    }
}
