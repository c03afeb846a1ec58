//! Sandboxed compilations.
//!
//! Every rustc cargo runs goes into the sandbox of the rustc profile
//! (`sandbox-profiles/proc-macro.toml` by default): no network, the host
//! read-only, only rustc's outputs writable, `$HOME` empty, secrets hidden.
//! A compilation that may load a proc macro (one of its `--extern`
//! libraries is a proc macro, or leads to one, or is unknown to us) also runs
//! under the recorder; afterwards rustc's expected activity is set aside and
//! the rest is blamed on the macro libraries whose code made the calls
//! (`crate::observe::attribute`), and written as an [`ExpansionRecord`].
//!
//! Two small stores under `target/capsule/` carry knowledge between
//! compilations: `units/<stem>.json` says whether a library leads to a proc
//! macro (so its dependents know whether to trace), `macros/<file>.json`
//! names the package a proc-macro library was built from.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::InterceptError;
use super::session::{self, Blamed, ExpansionRecord, MacroLibrary, MacroPackage, Session};
use super::view::{Host, canonical, env_path, toolchain_root};
use super::wrapper::RustcArgs;
use crate::observe::attribute::{self, Expected};
use crate::observe::{self, Context, Outcome, Phase};
use crate::sandbox::profile::NetMode;
use crate::sandbox::seccomp::Watch;
use crate::sandbox::{self, SandboxSpec, env};
use crate::trace::{self, Origin, tracer::TraceConfig};

/// What `units/<stem>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct UnitNote {
    /// Compiling against this library may load a proc macro.
    leads_to_proc_macro: bool,
}

fn units_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("capsule").join("units")
}

/// Where the driver keeps the last record of each traced compilation.
pub fn expansion_store(target_dir: &Path) -> PathBuf {
    target_dir.join("capsule").join("expansions")
}

fn macros_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("capsule").join("macros")
}

/// Whether compiling with these arguments may load a proc macro: one of the
/// `--extern` libraries is a shared object, or a library we know leads to
/// one, or a library we know nothing about (built before cargo-capsule was
/// used on this target dir).
pub fn may_load_proc_macros(args: &RustcArgs, target_dir: &Path) -> bool {
    args.externs.iter().any(|lib| {
        let name = lib.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(stem) = name
            .strip_prefix("lib")
            .and_then(|n| n.strip_suffix(".rlib").or_else(|| n.strip_suffix(".rmeta")))
        else {
            return true;
        };
        let note = units_dir(target_dir).join(format!("{stem}.json"));
        session::load_json::<UnitNote>(&note).map_or(true, |n| n.leads_to_proc_macro)
    })
}

/// After a successful compilation: notes for the compilations that follow.
pub fn remember(args: &RustcArgs, target_dir: &Path, traced: bool) -> Result<(), InterceptError> {
    let Some(stem) = args.unit_stem() else {
        return Ok(());
    };
    let note = UnitNote {
        leads_to_proc_macro: traced,
    };
    let text = serde_json::to_string(&note).expect("note serialises");
    session::write_cache(
        &units_dir(target_dir).join(format!("{stem}.json")),
        text.as_bytes(),
    )?;
    if args.crate_types.iter().any(|t| t == "proc-macro")
        && let (Ok(name), Ok(version), Some(dir)) = (
            std::env::var("CARGO_PKG_NAME"),
            std::env::var("CARGO_PKG_VERSION"),
            env_path("CARGO_MANIFEST_DIR"),
        )
    {
        let package = MacroPackage {
            name,
            version,
            manifest_dir: canonical(&dir),
        };
        let text = serde_json::to_string(&package).expect("package serialises");
        session::write_cache(
            &macros_dir(target_dir).join(format!("lib{stem}.so.json")),
            text.as_bytes(),
        )?;
    }
    Ok(())
}

/// The package a proc-macro library was built from, if we built it.
fn macro_package(target_dir: &Path, library: &Path) -> Option<MacroPackage> {
    let name = library.file_name()?.to_str()?;
    session::load_json(&macros_dir(target_dir).join(format!("{name}.json"))).ok()
}

/// `rustc` as cargo named it, as an absolute path.
fn resolve_program(program: &Path, cwd: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return canonical(&cwd.join(program));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map(|p| canonical(&p))
        .unwrap_or_else(|| program.to_path_buf())
}

/// Runs one compilation in the sandbox. Returns rustc's exit code.
pub fn run(
    session: &Session,
    session_dir: &Path,
    rustc: &Path,
    args: &[OsString],
    parsed: &RustcArgs,
    traced: bool,
) -> Result<i32, InterceptError> {
    let host = Host::of(session);
    let profile = &session.rustc_profile;
    let cwd = std::env::current_dir()
        .map(|d| canonical(&d))
        .unwrap_or_else(|_| host.workspace_root.clone());
    let abs = |p: &Path| canonical(&cwd.join(p));
    let program = resolve_program(rustc, &cwd);
    let manifest_dir = env_path("CARGO_MANIFEST_DIR").map(|d| canonical(&d));
    let out_dir = parsed.out_dir.as_deref().map(abs);
    let lib_dirs: Vec<PathBuf> = parsed.lib_dirs.iter().map(|d| abs(d)).collect();
    // One realpath per directory, not per library (a crate can have dozens).
    let mut real_dirs: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    let externs: Vec<PathBuf> = parsed
        .externs
        .iter()
        .map(|e| {
            let e = cwd.join(e);
            match (e.parent(), e.file_name()) {
                (Some(dir), Some(name)) => real_dirs
                    .entry(dir.to_path_buf())
                    .or_insert_with(|| canonical(dir))
                    .join(name),
                _ => canonical(&e),
            }
        })
        .collect();
    let extern_dirs: BTreeSet<PathBuf> = externs
        .iter()
        .filter_map(|e| e.parent().map(Path::to_path_buf))
        .collect();
    let toolchain = toolchain_root(&program);

    // The filesystem view: sources and libraries read-only, outputs writable.
    let mut read_only = vec![cwd.clone()];
    read_only.extend(manifest_dir.clone());
    read_only.extend(toolchain.clone());
    read_only.extend(lib_dirs.iter().cloned());
    read_only.extend(extern_dirs.iter().cloned());
    let output_files: BTreeSet<PathBuf> = parsed
        .output
        .iter()
        .chain(&parsed.emit_paths)
        .map(|p| abs(p))
        .collect();
    let mut writable: Vec<PathBuf> = out_dir.iter().cloned().collect();
    writable.extend(
        output_files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf)),
    );
    let incremental = parsed.incremental.as_deref().map(abs);
    let dep_info = parsed.dep_info_path().map(|p| abs(&p));
    writable.extend(incremental.clone());
    let plan = host.plan(session, profile, read_only, writable);

    let (mut vars, withheld) =
        env::filter_compile(std::env::vars_os(), profile, &session.inherited_env);
    env::set(&mut vars, "TMPDIR", "/tmp".as_ref());
    let mut argv = vec![rustc.as_os_str().to_owned()];
    argv.extend(args.iter().cloned());
    let spec = SandboxSpec {
        profile: profile.clone(),
        plan: plan.clone(),
        program: program.clone(),
        argv,
        env: vars,
        cwd: cwd.clone(),
        // Untraced, rustc gets no sockets instead of an empty network
        // namespace: the same cut-off, a millisecond cheaper per compilation.
        watch: match (traced, profile.network.mode) {
            (true, _) => Watch::SyscallsAndCode,
            (false, NetMode::Host) => Watch::Nothing,
            (false, _) => Watch::NothingNoSockets,
        },
    };
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "?".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "?".into());
    let timeout = Duration::from_secs(profile.limits.timeout_secs);
    let started = std::time::Instant::now();
    let spawned = sandbox::spawn(&spec).map_err(|e| InterceptError::Compile {
        what: format!("start the sandbox for rustc compiling {package}@{version}"),
        message: e.to_string(),
    })?;
    let init = spawned.init;
    let timing = |what: &str, events: usize| {
        if std::env::var_os("CAPSULE_DEBUG_TIMING").is_some() {
            // For benchmarking: where a compilation's time went.
            eprintln!(
                "cargo-capsule timing: rustc {package}@{version} ({}): {what} in {:?}, {events} events",
                parsed.kind(),
                started.elapsed()
            );
        }
    };

    if !traced {
        let (code, timed_out) = sandbox::spawn::wait_untraced(init, timeout);
        timing("untraced", 0);
        // This unit loads no proc macro (any more): a record of an earlier
        // expansion must not be reported for it when cargo reuses it.
        if let Some(dir) = &manifest_dir {
            let _ = std::fs::remove_file(expansion_store(&host.target_dir).join(
                ExpansionRecord::store_name(
                    &package,
                    &version,
                    dir,
                    parsed.crate_name.as_deref().unwrap_or_default(),
                    &parsed.kind(),
                ),
            ));
        }
        let setup_error = spawned.setup_error();
        if setup_error.is_none() && !withheld.is_empty() {
            let (_, env_deps) = read_dep_info(dep_info.as_deref(), &cwd);
            warn_withheld(&package, &version, &env_deps, &withheld);
        }
        return Ok(finish_untraced(
            session,
            &package,
            &version,
            code,
            timed_out,
            setup_error,
        ));
    }

    let rustup_home = host.rustup_home.clone();
    let quick_plan = plan.clone();
    let quick_libs: Vec<PathBuf> = lib_dirs.iter().chain(&extern_dirs).cloned().collect();
    let classify = classifier(
        toolchain.clone(),
        rustup_home.clone(),
        program.clone(),
        host.target_dir.clone(),
        externs.clone(),
    );
    let traced_run = trace::trace(
        init,
        TraceConfig {
            program: program.clone(),
            timeout,
            reveal_dns: profile.network.mode != NetMode::Host,
            // Also rustc's own libraries (`-L`, `--extern`): the linker reads
            // them all, and those reads are expected, so never reported.
            quick_read: Some(Box::new(move |path| {
                (observe::is_noise_read(path, &rustup_home)
                    || quick_libs.iter().any(|d| path.starts_with(d)))
                    && !quick_plan.is_hidden(path)
                    && !path.starts_with("/tmp")
                    && !path.starts_with("/proc")
            })),
            attribution: Some(classify),
        },
    )?;
    let setup_error = spawned.setup_error();
    timing("traced", traced_run.events.len());
    let exit_code = if setup_error.is_some() {
        2
    } else {
        traced_run.exit_code
    };

    // rustc's expected activity.
    let (inputs, env_deps) = read_dep_info(dep_info.as_deref(), &cwd);
    let stem = parsed.unit_stem().unwrap_or_default();
    let mut read_roots = vec![host.rustup_home.clone()];
    read_roots.extend(toolchain);
    read_roots.extend(lib_dirs);
    read_roots.extend(extern_dirs);
    let expected = Expected {
        read_roots,
        inputs,
        write_roots: incremental.into_iter().collect(),
        outputs: out_dir
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    vec![
                        stem.clone(),
                        format!("lib{stem}"),
                        "rustc".to_string(),
                        "rmeta".to_string(),
                    ],
                )
            })
            .collect(),
        output_files,
    };
    if let Some(dir) = env_path("CAPSULE_DEBUG_EVENTS") {
        // For development: every raw event of this compilation.
        let text = serde_json::to_string_pretty(&traced_run.events).unwrap_or_default();
        let _ = std::fs::write(dir.join(format!("{stem}.json")), text);
    }
    let split = attribute::split(&traced_run.events, &expected);
    let mut loaded: BTreeSet<PathBuf> = split.by_library.keys().cloned().collect();
    loaded.extend(
        traced_run
            .events
            .iter()
            .filter_map(|e| match (&e.kind, &e.error) {
                (trace::EventKind::Open { path, .. }, None)
                    if is_macro_library(path, &host.target_dir, &externs) =>
                {
                    Some(path.clone())
                }
                _ => None,
            }),
    );

    let mut first = vec![];
    if let Some(dir) = &manifest_dir {
        first.push(("$CARGO_MANIFEST_DIR".to_string(), dir.clone()));
    }
    if let Some(dir) = env_path("OUT_DIR") {
        first.push(("$OUT_DIR".to_string(), canonical(&dir)));
    }
    let normalizer = host.normalizer(first);
    let ctx = Context::new(
        Phase::ProcMacro,
        &plan,
        profile.network.mode != NetMode::Host,
        &normalizer,
    );
    let mut blamed: Vec<Blamed> = split
        .by_library
        .iter()
        .map(|(lib, events)| Blamed {
            libraries: vec![lib.clone()],
            observations: observe::observe(&ctx, events),
        })
        .collect();
    // rustc's own calls are kept only when the sandbox denied them: that is
    // not rustc, whatever its stack says.
    let mut unknown = observe::observe(&ctx, &split.unknown);
    unknown.extend(
        observe::observe(&ctx, &split.own)
            .into_iter()
            .filter(|o| o.outcome == Outcome::Denied),
    );
    if !unknown.is_empty() && !loaded.is_empty() {
        blamed.push(Blamed {
            libraries: loaded.iter().cloned().collect(),
            observations: observe::merge(unknown),
        });
    }
    blamed.retain(|b| !b.observations.is_empty());

    let macros: Vec<MacroLibrary> = loaded
        .iter()
        .map(|lib| MacroLibrary {
            library: lib.clone(),
            package: macro_package(&host.target_dir, lib),
        })
        .collect();
    let record = ExpansionRecord {
        package: package.clone(),
        version: version.clone(),
        manifest_dir: manifest_dir.unwrap_or_else(|| cwd.clone()),
        crate_name: parsed.crate_name.clone().unwrap_or_default(),
        kind: parsed.kind(),
        exit_code,
        timed_out: traced_run.timed_out,
        setup_error: setup_error.clone(),
        macros,
        blamed,
    };
    // The driver prints the failure line, once, after cargo's errors.
    session::save_expansion(session_dir, &record)?;
    warn_withheld(&package, &version, &env_deps, &withheld);
    Ok(exit_code)
}

fn finish_untraced(
    session: &Session,
    package: &str,
    version: &str,
    code: i32,
    timed_out: bool,
    setup_error: Option<String>,
) -> i32 {
    if let Some(error) = setup_error {
        eprintln!(
            "cargo-capsule: failed to start the sandbox for rustc compiling {package}@{version}: {error}"
        );
        return 2;
    }
    if timed_out {
        eprintln!(
            "cargo-capsule: rustc compiling {package}@{version} was killed after the timeout of the rustc profile {}",
            session.rustc_profile_name
        );
    }
    code
}

/// Tells the user when a crate asked (`env!`, `option_env!`) for a variable
/// the sandbox withheld: its build may differ from a plain one.
fn warn_withheld(package: &str, version: &str, env_deps: &BTreeSet<String>, withheld: &[String]) {
    let missed: Vec<&str> = withheld
        .iter()
        .filter(|n| env_deps.contains(n.as_str()))
        .map(String::as_str)
        .collect();
    if !missed.is_empty() {
        eprintln!(
            "cargo-capsule: warning: {package}@{version} reads {} at compile time (env!/option_env!), \
             which the sandbox withheld; add the name to [environment] allow of a rustc profile \
             (--rustc-profile) if the crate needs it",
            missed.join(", ")
        );
    }
}

/// The inputs (absolute, canonical) and env-deps of a dep-info file.
fn read_dep_info(path: Option<&Path>, cwd: &Path) -> (BTreeSet<PathBuf>, BTreeSet<String>) {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Default::default();
    };
    let (paths, env) = attribute::parse_dep_info(&text);
    let paths = paths.iter().map(|p| canonical(&cwd.join(p))).collect();
    (paths, env)
}

/// A proc-macro library: a shared object in a target dir's `deps`, or one
/// passed with `--extern`.
fn is_macro_library(path: &Path, target_dir: &Path, externs: &[PathBuf]) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("lib")
        && name.ends_with(".so")
        && ((path.starts_with(target_dir)
            && path.parent().and_then(Path::file_name) == Some("deps".as_ref()))
            || externs.iter().any(|e| e == path))
}

/// Classifies mapped files for the recorder: rustc's own code (its binary,
/// `librustc_driver`, LLVM and the rest of the toolchain), proc-macro
/// libraries, or neither. The sysroot's `libstd` is neither: a macro links
/// its own std, but the dynamic loader binds some of its std calls to the
/// copy rustc already loaded, so std frames say nothing about the caller.
fn classifier(
    toolchain: Option<PathBuf>,
    rustup_home: PathBuf,
    program: PathBuf,
    target_dir: PathBuf,
    externs: Vec<PathBuf>,
) -> trace::origin::Classify {
    Box::new(move |path: &Path| {
        if is_macro_library(path, &target_dir, &externs) {
            return Some(Origin::Library(path.to_path_buf()));
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("libstd-") {
            return None;
        }
        let own = path == program
            || path.starts_with(&rustup_home)
            || toolchain.as_deref().is_some_and(|t| path.starts_with(t))
            || ["librustc_driver", "libLLVM"]
                .iter()
                .any(|p| name.starts_with(p));
        own.then_some(Origin::Own)
    })
}

/// The one line that explains a compilation that failed after a proc macro
/// was denied something; `None` when no macro was.
pub fn failure_line(record: &ExpansionRecord, profile_name: &str) -> Option<String> {
    let name_of = |lib: &PathBuf| {
        record
            .macros
            .iter()
            .find(|m| &m.library == lib)
            .map(MacroLibrary::display_name)
            .unwrap_or_else(|| session::library_crate_name(lib))
    };
    let mut parts = Vec::new();
    for group in &record.blamed {
        let denied: Vec<String> = observe::denied_actions(&group.observations)
            .take(4)
            .collect();
        if denied.is_empty() {
            continue;
        }
        let names: Vec<String> = group.libraries.iter().map(name_of).collect();
        let who = if names.len() == 1 {
            format!("proc macro {}", names[0])
        } else {
            format!("one of the proc macros {}", names.join(", "))
        };
        parts.push(format!("{who} was denied: {}", denied.join(", ")));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "cargo-capsule: compiling {}@{} failed (status {}) in the sandbox (rustc profile {profile_name}); {}. \
         If the macro needs this, review it, then rerun with a rustc profile that allows it (--rustc-profile permissive or your own).",
        record.package,
        record.version,
        record.exit_code,
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Method, Observation, Outcome};

    fn args(externs: &[&str]) -> RustcArgs {
        RustcArgs {
            crate_name: Some("app".into()),
            extra_filename: "-aa".into(),
            externs: externs.iter().map(PathBuf::from).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn traces_when_a_dependency_may_lead_to_a_proc_macro() {
        let target = tempfile::tempdir().unwrap();
        let t = target.path();
        // No externs: nothing to load.
        assert!(!may_load_proc_macros(&args(&[]), t));
        // A proc macro, directly.
        assert!(may_load_proc_macros(&args(&["/t/deps/libderive-1.so"]), t));
        // A library we know nothing about (built by plain cargo): trace.
        let lib = ["/t/deps/libserde-2.rmeta"];
        assert!(may_load_proc_macros(&args(&lib), t));
        // Known not to lead to one, then known to (it re-exports a derive).
        let serde = RustcArgs {
            crate_name: Some("serde".into()),
            extra_filename: "-2".into(),
            ..Default::default()
        };
        remember(&serde, t, false).unwrap();
        assert!(!may_load_proc_macros(&args(&lib), t));
        remember(&serde, t, true).unwrap();
        assert!(may_load_proc_macros(&args(&lib), t));
        assert!(may_load_proc_macros(&args(&["/t/deps/libserde-2.rlib"]), t));
    }

    #[test]
    fn the_failure_line_names_the_macro_and_its_denials() {
        let lib = PathBuf::from("/t/deps/libevil_macro-1.so");
        let denied = Observation {
            phase: Phase::ProcMacro,
            capability: "net.connect".into(),
            target: "127.0.0.1:9".into(),
            outcome: Outcome::Denied,
            method: Method::Traced,
            count: 1,
            detail: Default::default(),
        };
        let mut record = ExpansionRecord {
            package: "app".into(),
            version: "1.0.0".into(),
            manifest_dir: "/w/app".into(),
            crate_name: "app".into(),
            kind: "lib".into(),
            exit_code: 1,
            timed_out: false,
            setup_error: None,
            macros: vec![MacroLibrary {
                library: lib.clone(),
                package: Some(MacroPackage {
                    name: "evil-macro".into(),
                    version: "0.3.0".into(),
                    manifest_dir: "/w/evil".into(),
                }),
            }],
            blamed: vec![Blamed {
                libraries: vec![lib],
                observations: vec![denied],
            }],
        };
        let line = failure_line(&record, "proc-macro").unwrap();
        assert!(
            line.starts_with(
                "cargo-capsule: compiling app@1.0.0 failed (status 1) in the sandbox (rustc profile proc-macro); \
                 proc macro evil-macro@0.3.0 was denied: net.connect 127.0.0.1:9."
            ),
            "{line}"
        );
        record.blamed[0].observations[0].outcome = Outcome::Allowed;
        assert_eq!(failure_line(&record, "proc-macro"), None);
    }
}
