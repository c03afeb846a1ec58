//! Command-line interface: clap definitions, output selection and exit
//! codes. Nothing else in the crate prints to stdout.
//!
//! Exit codes: 0 success; 1 policy violation or new capability (later
//! commands); 2 tool error, including a build that failed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::driver::{self, BuildOptions};
use crate::graph::Features;
use crate::manifest::cache::Cache;
use crate::manifest::{LockFile, Manifest};
use crate::policy::Policy;
use crate::report::human;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A policy violation (`check`) or capability changes (`diff`).
pub const EXIT_CHANGES: u8 = 1;
/// The tool could not do its job (bad input, sandbox unavailable, build failed).
pub const EXIT_ERROR: u8 = 2;

/// Records what build scripts and proc macros do, in a sandbox, and scans what every crate could do.
#[derive(Debug, Parser)]
#[command(name = "cargo-capsule", bin_name = "cargo capsule", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the project with every build script and proc macro sandboxed and recorded, then scan it.
    Build(ReportArgs),
    /// Report what each crate's code could do (linked symbols, sources, shipped binaries); builds in the sandbox first to get the artifacts.
    Scan(ReportArgs),
    /// Build, scan and write the capability manifest (default `capsule.lock` at the workspace root).
    Manifest(ManifestArgs),
    /// Compare two manifest files: capabilities gained and lost per crate (exit 1 when any changed).
    Diff(DiffArgs),
    /// Recompute the manifest and gate on the baseline (`capsule.lock`) and the policy (`capsule.toml`): exit 1 on a gained or denied capability.
    Check(CheckArgs),
    /// Vet a crate before adding it: build it in a throwaway project with every build script and proc macro sandboxed, scan it, and compare with its previous version (exit 1 when it gained a capability or a crate).
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Human,
    Json,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The crate, optionally with a version (`serde@1.0.200`: exactly that one) or a requirement (`serde@1.0`: the newest that matches).
    #[arg(value_name = "NAME[@VERSION]")]
    pub krate: String,
    /// Compare with this registry version instead of the previous published one.
    #[arg(long, value_name = "OLD_VERSION")]
    pub against: Option<String>,
    /// Space or comma separated features of the crate to activate.
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Do not activate the crate's `default` feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Take the crate from this registry (`[registries.NAME]` in cargo's configuration).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["git", "path"])]
    pub registry: Option<String>,
    /// Take the crate from this git repository.
    #[arg(long, value_name = "URL", conflicts_with = "path")]
    pub git: Option<String>,
    /// Git branch (with --git).
    #[arg(long, value_name = "BRANCH", requires = "git", conflicts_with_all = ["tag", "rev"])]
    pub branch: Option<String>,
    /// Git tag (with --git).
    #[arg(long, value_name = "TAG", requires = "git", conflicts_with = "rev")]
    pub tag: Option<String>,
    /// Git commit (with --git).
    #[arg(long, value_name = "REV", requires = "git")]
    pub rev: Option<String>,
    /// Take the crate from this package directory.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Run cargo offline: only what it has already downloaded.
    #[arg(long)]
    pub offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: AuditFormat,
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep the throwaway project (its path is printed) instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Where the manifest cache lives. Default: $XDG_CACHE_HOME/cargo-capsule/audit or ~/.cache/cargo-capsule/audit.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Directory for build artifacts (reuse it to skip recompiling shared dependencies). Default: inside the throwaway project.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Build and scan again instead of using cached manifests.
    #[arg(long)]
    pub fresh: bool,
    /// Number of parallel jobs.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<u32>,
    /// A TOML file of `[api."<capability>"]` tables extending the API catalogue (repeatable).
    #[arg(long, value_name = "FILE")]
    pub catalogue: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The older manifest.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The newer manifest.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The baseline manifest. Default: capsule.lock at the workspace root.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// The policy file. Default: capsule.toml at the workspace root, when there is one.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Accept the current capabilities: rewrite the baseline with them (deny rules still apply).
    #[arg(long)]
    pub bless: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: CheckFormat,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// The sandbox profiles (`build`, `scan`, `manifest`, `check`, `audit`).
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Sandbox profile of build scripts: a built-in name (build-script, strict, permissive) or a path to a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Sandbox profile of rustc and the proc macros it runs: a built-in name (proc-macro, strict, permissive) or a path to a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    pub rustc_profile: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// Where the manifest cache lives (share it between checkouts). Default: capsule/cache in the target dir.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    Toml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Where to write the manifest (`-` for stdout). Default: capsule.lock at the workspace root.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Manifest format.
    #[arg(long, value_enum, default_value = "toml")]
    pub format: ManifestFormat,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `build` and `scan`: the build's options and the report's format.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package(s) to build.
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Space or comma separated features to activate.
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all available features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Build in release mode.
    #[arg(short = 'r', long)]
    pub release: bool,
    /// Directory for all generated artifacts.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Run every build script again (not a full clean: nothing else is rebuilt unless it depends on a changed output).
    #[arg(long)]
    pub fresh: bool,
    /// Number of parallel jobs.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Skip the static scan after the build (`build` only).
    #[arg(long)]
    pub no_scan: bool,
    /// A TOML file of `[api."<capability>"]` tables extending the API catalogue (repeatable; `capsule.toml` at the workspace root is read too).
    #[arg(long, value_name = "FILE")]
    pub catalogue: Vec<PathBuf>,
    /// Extra arguments for `cargo build`.
    #[arg(last = true, value_name = "CARGO ARGS")]
    pub extra: Vec<OsString>,
}

/// Parses the arguments of the `capsule` subcommand; `args[0]` is the program.
pub fn parse(args: Vec<OsString>) -> Cli {
    Cli::parse_from(args)
}

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Build(args) => build(args, false),
        Command::Scan(args) => build(args, true),
        Command::Manifest(args) => manifest(args),
        Command::Diff(args) => diff(args),
        Command::Check(args) => check(args),
        Command::Audit(args) => audit(args),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is an error, not a panic.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("cannot write the output to stdout: {e}"))
}

/// A path made absolute against the current directory (the cache compares
/// paths to leave our own outputs out of fingerprints).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// Where the workspace is, before anything is built.
struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
}

fn workspace(options: &BuildOptions) -> anyhow::Result<Workspace> {
    let graph = crate::graph::load(
        &driver::cargo_path(),
        options.manifest_path.as_deref(),
        &options.features,
        true,
    )?;
    Ok(Workspace {
        target_dir: driver::target_dir(options, &graph),
        root: graph.workspace_root,
    })
}

/// The current manifest: from the cache when nothing changed, else built
/// and scanned (and stored). None when the build failed (already said).
fn current_manifest(
    options: &BuildOptions,
    ws: &Workspace,
    cache_dir: Option<&Path>,
    skip: &[PathBuf],
) -> anyhow::Result<Option<Manifest>> {
    if !options.scan {
        anyhow::bail!(
            "a manifest without the scan would leave out what crates could do: drop --no-scan"
        );
    }
    // Absolute, so the fingerprints can leave a cache dir inside the
    // workspace out.
    let cache_dir = cache_dir.map(absolute).transpose()?;
    let mut cache = Cache::prepare(
        options,
        &ws.root,
        &ws.target_dir,
        cache_dir.as_deref(),
        skip,
    );
    if !options.fresh
        && let Some(manifest) = cache.lookup()
    {
        eprintln!(
            "cargo-capsule: the manifest of {} crates is unchanged since the last run (from the cache: nothing built or scanned)",
            manifest.crates.len()
        );
        return Ok(Some(manifest));
    }
    let outcome = driver::build(options)?;
    if let Some(stats) = &outcome.scan_stats {
        eprintln!("{}", stats.summary());
    }
    for line in &outcome.failures {
        eprintln!("{line}");
    }
    if !outcome.success {
        eprintln!(
            "cargo-capsule: the build failed; no manifest computed (a manifest of a partial build would drop crates)"
        );
        return Ok(None);
    }
    Ok(Some(cache.store_build(&outcome)?))
}

/// `diff OLD NEW`.
fn diff(args: DiffArgs) -> anyhow::Result<u8> {
    let old = Manifest::read(&args.old)?;
    let new = Manifest::read(&args.new)?;
    let d = crate::manifest::diff::diff(&old, &new);
    match args.format {
        Format::Human => emit(&d.render())?,
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&d).expect("diff serialises");
            text.push('\n');
            emit(&text)?;
        }
    }
    Ok(if d.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// `check`: the gate.
fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let options = options(args.build);
    let ws = workspace(&options)?;
    let baseline_path = match &args.baseline {
        Some(path) => absolute(path)?,
        None => ws.root.join(crate::manifest::DEFAULT_FILE),
    };
    let policy_path = args.policy.clone().or_else(|| {
        let default = ws.root.join("capsule.toml");
        default.is_file().then_some(default)
    });
    // Bad input is reported before anything is built.
    let policy = match &policy_path {
        Some(path) => Policy::read(path)?,
        None => Policy::default(),
    };
    let baseline = if args.bless {
        None
    } else if !baseline_path.exists() {
        anyhow::bail!(
            "no baseline at {}: create it with `cargo capsule check --bless` (or `cargo capsule manifest`) and commit it",
            baseline_path.display()
        );
    } else {
        Some(Manifest::read(&baseline_path)?)
    };
    let Some(current) = current_manifest(
        &options,
        &ws,
        args.cache.cache_dir.as_deref(),
        std::slice::from_ref(&baseline_path),
    )?
    else {
        return Ok(EXIT_ERROR);
    };
    let baseline = match baseline {
        Some(b) => b,
        None => {
            crate::intercept::session::write_atomic(&baseline_path, current.to_toml().as_bytes())?;
            eprintln!(
                "cargo-capsule: blessed: wrote the manifest of {} crates to {}",
                current.crates.len(),
                baseline_path.display()
            );
            current.clone()
        }
    };
    let shown = |p: &Path| {
        p.strip_prefix(&ws.root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let outcome = crate::check::evaluate(
        &baseline,
        &current,
        &policy,
        &shown(&baseline_path),
        policy_path.as_deref().map(shown).as_deref(),
    );
    match args.format {
        CheckFormat::Human => emit(&outcome.render())?,
        CheckFormat::Json => emit(&outcome.to_json())?,
        CheckFormat::Sarif => {
            let lock = LockFile::read(&ws.root.join("Cargo.lock"))?;
            emit(&crate::check::sarif::render(&outcome, &current, &lock))?;
        }
    }
    Ok(if outcome.passed {
        EXIT_OK
    } else {
        EXIT_CHANGES
    })
}

/// `manifest`: the build and scan (or the cache), then the manifest
/// written atomically.
fn manifest(args: ManifestArgs) -> anyhow::Result<u8> {
    let output = args.output.clone();
    let format = args.format;
    let options = options(args.build);
    let ws = workspace(&options)?;
    let target = match output.as_deref() {
        Some(path) if path == Path::new("-") => None,
        Some(path) => Some(absolute(path)?),
        None => Some(ws.root.join(crate::manifest::DEFAULT_FILE)),
    };
    let skip: Vec<PathBuf> = target.iter().cloned().collect();
    let Some(manifest) = current_manifest(&options, &ws, args.cache.cache_dir.as_deref(), &skip)?
    else {
        return Ok(EXIT_ERROR);
    };
    let text = match format {
        ManifestFormat::Toml => manifest.to_toml(),
        ManifestFormat::Json => manifest.to_json(),
    };
    match target {
        None => emit(&text)?,
        Some(path) => {
            crate::intercept::session::write_atomic(&path, text.as_bytes())?;
            eprintln!(
                "cargo-capsule: wrote the manifest of {} crates to {}",
                manifest.crates.len(),
                path.display()
            );
        }
    }
    Ok(EXIT_OK)
}

/// Space or comma separated feature lists, flattened.
fn feature_list(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|f| f.split([' ', ',']))
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// `audit NAME[@VERSION]`.
fn audit(args: AuditArgs) -> anyhow::Result<u8> {
    use crate::audit::project::Origin;
    let (name, version) = match args.krate.split_once('@') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (args.krate.clone(), None),
    };
    let origin = if let Some(url) = &args.git {
        Origin::Git {
            url: url.clone(),
            branch: args.branch.clone(),
            tag: args.tag.clone(),
            rev: args.rev.clone(),
        }
    } else if let Some(dir) = &args.path {
        Origin::Path(crate::driver::canonical(&absolute(dir)?))
    } else {
        Origin::Registry(args.registry.clone())
    };
    let output = args.output.as_deref().map(absolute).transpose()?;
    let request = crate::audit::Request {
        name,
        version,
        against: args.against.clone(),
        origin,
        features: feature_list(&args.features),
        default_features: !args.no_default_features,
        offline: args.offline,
        keep: args.keep,
        cache_dir: args.cache_dir.as_deref().map(absolute).transpose()?,
        build: BuildOptions {
            target_dir: args.target_dir.as_deref().map(absolute).transpose()?,
            profile: args.sandbox.profile.clone(),
            rustc_profile: args.sandbox.rustc_profile.clone(),
            fresh: args.fresh,
            jobs: args.jobs,
            catalogues: args
                .catalogue
                .iter()
                .map(|c| absolute(c))
                .collect::<anyhow::Result<_>>()?,
            ..BuildOptions::default()
        },
    };
    let mut progress = crate::progress::Progress::for_terminal();
    let report = crate::audit::run(&request, &mut progress)?;
    drop(progress);
    let text = match args.format {
        AuditFormat::Human => crate::report::audit::render(&report),
        AuditFormat::Html => crate::report::html::render(&report),
        AuditFormat::Json => {
            let mut text = serde_json::to_string_pretty(&report).expect("report serialises");
            text.push('\n');
            text
        }
    };
    match &output {
        Some(path) => {
            crate::intercept::session::write_atomic(path, text.as_bytes())?;
            eprintln!(
                "cargo-capsule: wrote the audit report to {}",
                path.display()
            );
        }
        None => emit(&text)?,
    }
    use crate::audit::model::Comparison;
    Ok(match &report.comparison {
        Comparison::Failed { against, reason } => {
            let hint = if args.against.is_some() {
                "pick another --against version"
            } else {
                "pass --against VERSION to compare with another version"
            };
            eprintln!(
                "cargo-capsule: error: the report has no comparison: auditing {against} failed: {reason}; {hint}"
            );
            EXIT_ERROR
        }
        _ if report.has_news() => EXIT_CHANGES,
        _ => EXIT_OK,
    })
}

/// The build options of the arguments.
fn options(args: BuildArgs) -> BuildOptions {
    let features = feature_list(&args.features);
    BuildOptions {
        manifest_path: args.manifest_path,
        packages: args.packages,
        features: Features {
            features,
            all_features: args.all_features,
            no_default_features: args.no_default_features,
        },
        release: args.release,
        target_dir: args.target_dir,
        profile: args.sandbox.profile,
        rustc_profile: args.sandbox.rustc_profile,
        fresh: args.fresh,
        jobs: args.jobs,
        extra: args.extra,
        scan: !args.no_scan,
        catalogues: args.catalogue,
        offline: false,
        quiet: false,
    }
}

/// `build`, or `scan` (`static_only`: the same run, reporting only what the
/// static scan found).
fn build(args: ReportArgs, static_only: bool) -> anyhow::Result<u8> {
    if static_only && args.build.no_scan {
        anyhow::bail!("`scan --no-scan` would do nothing: drop --no-scan");
    }
    let format = args.format;
    let options = options(args.build);
    let mut outcome = driver::build(&options)?;
    if static_only {
        outcome.report = outcome.report.static_only();
    }
    match format {
        Format::Json => emit(&outcome.report.to_json())?,
        Format::Human => emit(&human::render(
            &outcome.report,
            &outcome.report_path.display().to_string(),
            static_only,
        ))?,
    }
    if let Some(stats) = &outcome.scan_stats {
        eprintln!("{}", stats.summary());
    }
    for line in &outcome.failures {
        eprintln!("{line}");
    }
    if outcome.success {
        Ok(EXIT_OK)
    } else {
        if outcome.failures.is_empty() {
            eprintln!(
                "cargo-capsule: the build failed (see cargo's errors above); no build script or proc macro failed in the sandbox"
            );
        }
        Ok(EXIT_ERROR)
    }
}
