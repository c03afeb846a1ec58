//! Build-script shims: installing them, and running a build script through one.
//!
//! When rustc links a build script, the wrapper renames the executable to
//! `<name>.capsule-real` and writes a small `/bin/sh` shim in its place;
//! cargo then copies or links the shim to `build-script-build` and runs it.
//! During `cargo capsule build` the shim hands over to
//! `cargo-capsule __build-script <real> ARGS...`, which runs the real build
//! script in the sandbox under the recorder and writes a run record; outside
//! a session (a plain `cargo build` on the same target dir) the shim runs the
//! real build script directly, so the target dir keeps working without us.
//! stdout, stderr and the exit status are the build script's own, so cargo
//! sees exactly the `cargo:` directives it would have seen.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::InterceptError;
use super::session::{self, RunRecord, Session};
use super::view::{Host, canonical, env_path};
use crate::observe::{self, Context, Phase};

use crate::sandbox::profile::NetMode;
use crate::sandbox::seccomp::Watch;
use crate::sandbox::{self, SandboxSpec, env};
use crate::trace::{self, tracer::TraceConfig};

/// Suffix of the real build-script executable next to its shim.
pub const REAL_SUFFIX: &str = ".capsule-real";
const SHIM_MARK: &str = "# cargo-capsule shim";

fn shim_text(real_name: &str) -> String {
    format!(
        "#!/bin/sh\n{SHIM_MARK}: during `cargo capsule build` the build script runs in its sandbox.\n\
         real=\"$(dirname \"$0\")/{real_name}\"\n\
         if [ -n \"${{CAPSULE_SESSION:-}}\" ]; then\n  \
         exec \"${{CAPSULE_EXE:?cargo-capsule: CAPSULE_EXE is not set}}\" __build-script \"$real\" \"$@\"\n\
         fi\n\
         exec \"$real\" \"$@\"\n"
    )
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn write_shim(path: &Path, real_name: &str) -> Result<(), InterceptError> {
    use std::os::unix::fs::PermissionsExt;
    session::write_atomic(path, shim_text(real_name).as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        InterceptError::Io {
            what: format!("make the shim {} executable", path.display()),
            source,
        }
    })
}

/// Replaces the freshly linked build script at `exe` with a shim.
pub fn arm(exe: &Path) -> Result<(), InterceptError> {
    if !is_elf(exe) {
        return Ok(());
    }
    let name = exe
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| InterceptError::Corrupt {
            path: exe.to_path_buf(),
            message: "build script path is not UTF-8".into(),
        })?;
    let real_name = format!("{name}{REAL_SUFFIX}");
    let real = exe.with_file_name(&real_name);
    std::fs::rename(exe, &real).map_err(|source| InterceptError::Io {
        what: format!("move the build script {} aside", exe.display()),
        source,
    })?;
    write_shim(exe, &real_name)
}

/// Arms build scripts that a plain `cargo build` left in `target_dir`, so a
/// warm target dir cannot run an unsandboxed build script. Returns how many
/// were armed.
pub fn arm_target_dir(target_dir: &Path) -> Result<usize, InterceptError> {
    let mut armed = 0;
    for build_dir in build_dirs(target_dir) {
        let Ok(entries) = std::fs::read_dir(&build_dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for unit in files.iter().filter(|p| p.is_dir()) {
            let names = sorted_names(unit);
            // rustc's output: `build_script_build-<hash>`, no extension.
            for name in names
                .iter()
                .filter(|n| n.starts_with("build_script_") && !n.contains('.'))
            {
                let exe = unit.join(name);
                if is_elf(&exe) {
                    arm(&exe)?;
                    armed += 1;
                }
            }
            // cargo's copy: `build-script-build`, the same binary. Listed
            // again: the loop above added `.capsule-real` files.
            let names = sorted_names(unit);
            for name in names
                .iter()
                .filter(|n| n.starts_with("build-script-") && !n.contains('.'))
            {
                let exe = unit.join(name);
                if !is_elf(&exe) {
                    continue;
                }
                let crate_name = name.replace('-', "_");
                let real = names.iter().find(|n| {
                    n.ends_with(REAL_SUFFIX)
                        && n.strip_prefix(crate_name.as_str())
                            .is_some_and(|rest| rest.starts_with('-'))
                });
                match real {
                    Some(real) => write_shim(&exe, real)?,
                    None => {
                        arm(&exe)?;
                        armed += 1;
                    }
                }
            }
        }
    }
    Ok(armed)
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `target/<profile>/build` and `target/<triple>/<profile>/build`.
fn build_dirs(target_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(target_dir) else {
        return out;
    };
    for level1 in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if level1.join("build").is_dir() {
            out.push(level1.join("build"));
        }
        if let Ok(inner) = std::fs::read_dir(&level1) {
            for level2 in inner.filter_map(|e| e.ok().map(|e| e.path())) {
                if level2.join("build").is_dir() && level2.join(".fingerprint").is_dir() {
                    out.push(level2.join("build"));
                }
            }
        }
    }
    out.sort();
    out
}

/// Deletes the run fingerprints of build scripts so cargo runs them again
/// (and nothing else that is fresh). Returns how many were removed.
pub fn forget_build_script_runs(target_dir: &Path) -> Result<usize, InterceptError> {
    let mut removed = 0;
    for build in build_dirs(target_dir) {
        let fingerprint = build.with_file_name(".fingerprint");
        let Ok(units) = std::fs::read_dir(&fingerprint) else {
            continue;
        };
        for unit in units.filter_map(|e| e.ok().map(|e| e.path())) {
            let Ok(files) = std::fs::read_dir(&unit) else {
                continue;
            };
            for file in files.filter_map(|e| e.ok().map(|e| e.path())) {
                let is_run = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("run-build-script-"));
                if is_run {
                    std::fs::remove_file(&file).map_err(|source| InterceptError::Io {
                        what: format!("remove the fingerprint {}", file.display()),
                        source,
                    })?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

/// Runs `real` (a build script) in the sandbox. Returns the exit code to
/// leave with.
pub fn run_build_script(real: &Path, args: Vec<OsString>) -> Result<i32, InterceptError> {
    let started = std::time::Instant::now();
    let session_dir = env_path(session::SESSION_ENV).ok_or(InterceptError::NoSession)?;
    let session = Session::load(&session_dir)?;
    let profile = &session.profile;
    let out_dir = canonical(&env_path("OUT_DIR").ok_or(InterceptError::MissingEnv("OUT_DIR"))?);
    let manifest_dir = canonical(
        &env_path("CARGO_MANIFEST_DIR").ok_or(InterceptError::MissingEnv("CARGO_MANIFEST_DIR"))?,
    );
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "?".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "?".into());
    let real = canonical(real);
    let cwd = std::env::current_dir()
        .map(|d| canonical(&d))
        .unwrap_or(manifest_dir.clone());
    let host = Host::of(&session);

    // The filesystem view: the build script's package and its own directory
    // read-only, OUT_DIR writable.
    let mut read_only = vec![manifest_dir.clone(), cwd.clone()];
    if let Some(dir) = real.parent() {
        read_only.push(dir.to_path_buf());
    }
    let plan = host.plan(&session, profile, read_only, vec![out_dir.clone()]);

    // The environment.
    let (mut vars, withheld) = env::filter(std::env::vars_os(), profile);
    env::set(&mut vars, "TMPDIR", "/tmp".as_ref());
    if profile.environment.prune_library_path
        && let Some(path) = std::env::var("LD_LIBRARY_PATH").ok()
    {
        let pruned = crate::sandbox::elf::prune_library_path(&path, &real);
        vars.retain(|(name, _)| name != "LD_LIBRARY_PATH");
        if !pruned.is_empty() {
            env::set(&mut vars, "LD_LIBRARY_PATH", pruned.as_ref());
        }
    }

    let mut argv = vec![real.clone().into_os_string()];
    argv.extend(args);
    let spec = SandboxSpec {
        profile: profile.clone(),
        plan: plan.clone(),
        program: real.clone(),
        argv,
        env: vars,
        cwd,
        watch: Watch::Syscalls,
    };
    let spawned = sandbox::spawn(&spec)?;
    let setup_done = started.elapsed();
    let init = spawned.init;
    let quick_plan = plan.clone();
    let quick_rustup = host.rustup_home.clone();
    let traced = trace::trace(
        init,
        TraceConfig {
            program: real.clone(),
            timeout: Duration::from_secs(profile.limits.timeout_secs),
            reveal_dns: profile.network.mode != NetMode::Host,
            // Only where the sandbox shows the host as it is and the build
            // script cannot plant symlinks: system and toolchain locations
            // (the recorder also sends a final-component symlink the slow way).
            quick_read: Some(Box::new(move |path| {
                observe::is_noise_read(path, &quick_rustup)
                    && !quick_plan.is_hidden(path)
                    && !path.starts_with("/tmp")
                    && !path.starts_with("/proc")
            })),
            attribution: None,
        },
    )?;
    let setup_error = spawned.setup_error();
    let traced_done = started.elapsed();

    let normalizer = host.normalizer(vec![
        ("$BUILD_SCRIPT".into(), real.clone()),
        ("$OUT_DIR".into(), out_dir.clone()),
        ("$CARGO_MANIFEST_DIR".into(), manifest_dir.clone()),
    ]);
    let ctx = Context::new(
        Phase::BuildScript,
        &plan,
        profile.network.mode != NetMode::Host,
        &normalizer,
    );
    let mut observations = observe::observe(&ctx, &traced.events);
    observations.extend(observe::withheld(Phase::BuildScript, &withheld));
    let observations = observe::merge(observations);

    let exit_code = if setup_error.is_some() {
        2
    } else {
        traced.exit_code
    };
    let record = RunRecord {
        package: package.clone(),
        version: version.clone(),
        manifest_dir,
        out_dir,
        exit_code,
        timed_out: traced.timed_out,
        setup_error: setup_error.clone(),
        observations,
    };
    session::save_record(&session_dir, &record)?;
    if std::env::var_os("CAPSULE_DEBUG_TIMING").is_some() {
        // For benchmarking: where a build script's time went.
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
        let cpu = usage.map(|u| {
            let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        });
        eprintln!(
            "cargo-capsule timing: {package}@{version}: setup {:?}, traced run {:?}, {} events, recorder cpu {:.3}s",
            setup_done,
            traced_done - setup_done,
            traced.events.len(),
            cpu.unwrap_or(0.0)
        );
    }
    if let Some(error) = setup_error {
        eprintln!(
            "cargo-capsule: failed to start the sandbox for the build script of {package}@{version}: {error}"
        );
    } else if exit_code != 0 {
        eprintln!("{}", failure_line(&record, &session.profile_name));
    }
    Ok(exit_code)
}

/// The one line that explains a failed build script.
pub fn failure_line(record: &RunRecord, profile_name: &str) -> String {
    let what = if record.timed_out {
        format!(
            "was killed after the profile's timeout (status {})",
            record.exit_code
        )
    } else {
        format!("exited with status {}", record.exit_code)
    };
    let denied: Vec<String> = observe::denied_actions(&record.observations)
        .rev()
        .take(4)
        .collect();
    let denied = if denied.is_empty() {
        "no action was denied".to_string()
    } else {
        format!("denied: {}", denied.join(", "))
    };
    format!(
        "cargo-capsule: build script of {}@{} {what} in the sandbox (profile {profile_name}); {denied}. \
         If the crate needs this, review it, then rerun with a profile that allows it (--profile permissive or your own).",
        record.package, record.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_and_rearms_a_target_dir() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("debug/build/foo-0123456789abcdef");
        std::fs::create_dir_all(&unit).unwrap();
        std::fs::create_dir_all(dir.path().join("debug/.fingerprint")).unwrap();
        let rustc_out = unit.join("build_script_build-0123456789abcdef");
        std::fs::write(&rustc_out, b"\x7fELF fake").unwrap();
        std::fs::write(unit.join("build-script-build"), b"\x7fELF fake").unwrap();
        assert_eq!(arm_target_dir(dir.path()).unwrap(), 1);
        let shim = std::fs::read_to_string(unit.join("build-script-build")).unwrap();
        assert!(
            shim.contains("build_script_build-0123456789abcdef.capsule-real"),
            "{shim}"
        );
        assert!(is_elf(
            &unit.join("build_script_build-0123456789abcdef.capsule-real")
        ));
        // Idempotent.
        assert_eq!(arm_target_dir(dir.path()).unwrap(), 0);
    }
}
