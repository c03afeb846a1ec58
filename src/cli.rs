//! Command-line interface: clap definitions, output selection and exit
//! codes. Nothing else in the crate prints to stdout.
//!
//! Exit codes: 0 success; 1 policy violation or new capability (later
//! commands); 2 tool error, including a build that failed.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::driver::{self, BuildOptions};
use crate::graph::Features;
use crate::report::human;

/// Success.
pub const EXIT_OK: u8 = 0;
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
    /// Sandbox profile of build scripts: a built-in name (build-script, strict, permissive) or a path to a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Sandbox profile of rustc and the proc macros it runs: a built-in name (proc-macro, strict, permissive) or a path to a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    pub rustc_profile: Option<String>,
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
    }
}

/// `manifest`: the build and scan, then the manifest written atomically.
fn manifest(args: ManifestArgs) -> anyhow::Result<u8> {
    if args.build.no_scan {
        anyhow::bail!("`manifest --no-scan` would leave out what crates could do: drop --no-scan");
    }
    let output = args.output.clone();
    let format = args.format;
    let outcome = driver::build(&options(args.build))?;
    for line in &outcome.failures {
        eprintln!("{line}");
    }
    if !outcome.success {
        eprintln!(
            "cargo-capsule: the build failed; no manifest written (a manifest of a partial build would drop crates)"
        );
        return Ok(EXIT_ERROR);
    }
    let lock = outcome.workspace_root.join("Cargo.lock");
    let lock = crate::manifest::LockFile::read(&lock)?;
    let manifest =
        crate::manifest::Manifest::from_report(&outcome.report, &lock, &outcome.package_dirs);
    let text = match format {
        ManifestFormat::Toml => manifest.to_toml(),
        ManifestFormat::Json => manifest.to_json(),
    };
    match output.as_deref() {
        Some(path) if path == std::path::Path::new("-") => print!("{text}"),
        path => {
            let path = path
                .map(PathBuf::from)
                .unwrap_or_else(|| outcome.workspace_root.join(crate::manifest::DEFAULT_FILE));
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

/// The build options of the arguments.
fn options(args: BuildArgs) -> BuildOptions {
    let features = args
        .features
        .iter()
        .flat_map(|f| f.split([' ', ',']))
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
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
        profile: args.profile,
        rustc_profile: args.rustc_profile,
        fresh: args.fresh,
        jobs: args.jobs,
        extra: args.extra,
        scan: !args.no_scan,
        catalogues: args.catalogue,
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
        Format::Json => print!("{}", outcome.report.to_json()),
        Format::Human => print!(
            "{}",
            human::render(
                &outcome.report,
                &outcome.report_path.display().to_string(),
                static_only
            )
        ),
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
