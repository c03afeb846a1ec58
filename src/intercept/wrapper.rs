//! The `RUSTC_WRAPPER` role.
//!
//! cargo runs `cargo-capsule <rustc> ARGS...` for every compilation. The
//! wrapper runs the real compiler with the same arguments and stdio inside
//! the sandbox (`super::compile`): under the recorder when the compilation
//! may load a proc macro, without it otherwise. Afterwards it replaces a
//! freshly linked build script with a shim before cargo gets to run it, and
//! notes what later compilations need to know: which libraries are proc
//! macros of which package, and which libraries lead to a proc macro.
//! Queries without a crate (`rustc -vV`, `--print cfg`) run the compiler
//! directly. A user's own wrapper (sccache, ...) still sees the compilations
//! that load no proc macro, outside the sandbox; those that do run in the
//! sandbox without it (the macro must not run in a cache server).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::InterceptError;
use super::session::Session;
use super::{compile, shim};

/// What the wrapper needs to know about one rustc invocation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RustcArgs {
    pub crate_name: Option<String>,
    pub crate_types: Vec<String>,
    pub out_dir: Option<PathBuf>,
    pub extra_filename: String,
    pub output: Option<PathBuf>,
    /// Paths of `--extern name=PATH` libraries.
    pub externs: Vec<PathBuf>,
    /// `-L [KIND=]DIR` directories.
    pub lib_dirs: Vec<PathBuf>,
    /// Explicit `--emit KIND=PATH` paths.
    pub emit_paths: Vec<PathBuf>,
    /// `--emit dep-info=PATH`, when given.
    pub dep_info: Option<PathBuf>,
    /// `-C incremental=DIR`.
    pub incremental: Option<PathBuf>,
    /// `--test`: a test harness.
    pub test: bool,
}

impl RustcArgs {
    pub fn parse(args: &[OsString]) -> RustcArgs {
        let mut parsed = RustcArgs::default();
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut i = 0;
        while i < text.len() {
            let arg = &text[i];
            let next = text.get(i + 1).cloned();
            let mut take_next = |value: &mut Option<String>| {
                *value = next.clone();
                i += 1;
            };
            let mut value = None;
            match arg.as_str() {
                "--crate-name" => {
                    take_next(&mut value);
                    parsed.crate_name = value;
                }
                "--crate-type" => {
                    take_next(&mut value);
                    parsed.crate_types.extend(value);
                }
                "--out-dir" => {
                    take_next(&mut value);
                    parsed.out_dir = value.map(PathBuf::from);
                }
                "-o" => {
                    take_next(&mut value);
                    parsed.output = value.map(PathBuf::from);
                }
                "-C" | "--codegen" => {
                    take_next(&mut value);
                    parsed.codegen(value.as_deref().unwrap_or(""));
                }
                "--extern" => {
                    take_next(&mut value);
                    parsed.external(value.as_deref().unwrap_or(""));
                }
                "-L" => {
                    take_next(&mut value);
                    parsed.library_dir(value.as_deref().unwrap_or(""));
                }
                "--emit" => {
                    take_next(&mut value);
                    parsed.emit(value.as_deref().unwrap_or(""));
                }
                "--test" => parsed.test = true,
                other => {
                    if let Some(v) = other.strip_prefix("--crate-type=") {
                        parsed.crate_types.push(v.to_string());
                    } else if let Some(v) = other.strip_prefix("--out-dir=") {
                        parsed.out_dir = Some(PathBuf::from(v));
                    } else if let Some(v) = other.strip_prefix("-C") {
                        parsed.codegen(v);
                    } else if let Some(v) = other.strip_prefix("--crate-name=") {
                        parsed.crate_name = Some(v.to_string());
                    } else if let Some(v) = other.strip_prefix("--extern=") {
                        parsed.external(v);
                    } else if let Some(v) = other.strip_prefix("-L") {
                        parsed.library_dir(v);
                    } else if let Some(v) = other.strip_prefix("--emit=") {
                        parsed.emit(v);
                    }
                }
            }
            i += 1;
        }
        parsed
    }

    fn codegen(&mut self, option: &str) {
        if let Some(v) = option.strip_prefix("extra-filename=") {
            self.extra_filename = v.to_string();
        } else if let Some(v) = option.strip_prefix("incremental=") {
            self.incremental = Some(PathBuf::from(v));
        }
    }

    /// `[OPTIONS:]NAME[=PATH]`.
    fn external(&mut self, spec: &str) {
        if let Some((_, path)) = spec.split_once('=') {
            self.externs.push(PathBuf::from(path));
        }
    }

    /// `[KIND=]DIR`.
    fn library_dir(&mut self, spec: &str) {
        let dir = match spec.split_once('=') {
            Some(("dependency" | "crate" | "native" | "framework" | "all", dir)) => dir,
            _ => spec,
        };
        if !dir.is_empty() {
            self.lib_dirs.push(PathBuf::from(dir));
        }
    }

    /// `KIND[=PATH],...`.
    fn emit(&mut self, spec: &str) {
        for item in spec.split(',') {
            if let Some((kind, path)) = item.split_once('=')
                && path != "-"
            {
                if kind == "dep-info" {
                    self.dep_info = Some(PathBuf::from(path));
                }
                self.emit_paths.push(PathBuf::from(path));
            }
        }
    }

    /// `<crate name><extra filename>`: names this unit's outputs.
    pub fn unit_stem(&self) -> Option<String> {
        Some(format!(
            "{}{}",
            self.crate_name.as_ref()?,
            self.extra_filename
        ))
    }

    /// The dep-info file rustc writes (`--emit dep-info=PATH`, else
    /// `<out-dir>/<stem>.d`).
    pub fn dep_info_path(&self) -> Option<PathBuf> {
        self.dep_info.clone().or_else(|| {
            Some(
                self.out_dir
                    .as_ref()?
                    .join(format!("{}.d", self.unit_stem()?)),
            )
        })
    }

    /// The target kind, as the driver names it from cargo's messages.
    pub fn kind(&self) -> String {
        if self.test {
            return "test".into();
        }
        let mut types = self.crate_types.clone();
        types.sort();
        if types.is_empty() {
            "lib".into()
        } else {
            types.join("+")
        }
    }

    /// The executable this invocation links, if it links a build script.
    pub fn build_script_output(&self) -> Option<PathBuf> {
        let name = self.crate_name.as_deref()?;
        if !name.starts_with("build_script_") || !self.crate_types.iter().any(|t| t == "bin") {
            return None;
        }
        if let Some(output) = &self.output {
            return Some(output.clone());
        }
        Some(
            self.out_dir
                .as_ref()?
                .join(format!("{name}{}", self.extra_filename)),
        )
    }
}

/// Runs rustc for cargo. `session_dir` comes from the wrapper script's
/// command line, never from the environment. Returns the exit code to leave
/// with.
pub fn run(session_dir: &Path, rustc: &Path, args: Vec<OsString>) -> Result<i32, InterceptError> {
    use std::os::unix::process::CommandExt;
    let session = Session::load(session_dir)?;
    let parsed = RustcArgs::parse(&args);
    let run_error = |source| InterceptError::Io {
        what: format!("run {}", rustc.display()),
        source,
    };
    let direct = |through_chain: bool| {
        let mut command = match session.chain_wrapper.as_ref().filter(|_| through_chain) {
            Some(wrapper) => {
                let mut c = Command::new(wrapper);
                c.arg(rustc);
                c
            }
            None => Command::new(rustc),
        };
        command.args(&args);
        command
    };
    // Queries (`-vV`, `--print cfg` on `___`) compile nothing of anyone's.
    if parsed.crate_name.as_deref().is_none_or(|n| n == "___") {
        return Err(run_error(direct(true).exec()));
    }
    let target_dir = super::view::canonical(&session.target_dir);
    let traced = compile::may_load_proc_macros(&parsed, &target_dir);
    let code = if !traced && session.chain_wrapper.is_some() {
        direct(true)
            .status()
            .map_err(run_error)?
            .code()
            .unwrap_or(101)
    } else {
        compile::run(&session, session_dir, rustc, &args, &parsed, traced)?
    };
    if code == 0 {
        compile::remember(&parsed, &target_dir, traced)?;
        if let Some(exe) = parsed.build_script_output() {
            shim::arm(&exe)?;
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_build_script_executable() {
        let args: Vec<OsString> = [
            "--crate-name",
            "build_script_build",
            "--edition=2021",
            "build.rs",
            "--crate-type",
            "bin",
            "-C",
            "extra-filename=-0123456789abcdef",
            "--out-dir",
            "/t/debug/build/foo-0123456789abcdef",
        ]
        .map(OsString::from)
        .to_vec();
        let parsed = RustcArgs::parse(&args);
        assert_eq!(
            parsed.build_script_output().unwrap(),
            PathBuf::from(
                "/t/debug/build/foo-0123456789abcdef/build_script_build-0123456789abcdef"
            )
        );
        let lib: Vec<OsString> = ["--crate-name", "foo", "--crate-type", "lib"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(RustcArgs::parse(&lib).build_script_output(), None);
    }

    #[test]
    fn reads_externs_library_dirs_and_outputs() {
        let args: Vec<OsString> = [
            "--crate-name",
            "app",
            "--emit=dep-info,metadata,link",
            "-C",
            "incremental=/t/debug/incremental",
            "-Cextra-filename=-aa",
            "-L",
            "dependency=/t/debug/deps",
            "-Lnative=/t/debug/build/z/out",
            "--extern",
            "serde=/t/debug/deps/libserde-11.rmeta",
            "--extern",
            "noprelude:derive=/t/debug/deps/libderive-22.so",
            "--extern",
            "proc_macro",
            "--emit",
            "dep-info=/t/x.d",
            "--test",
        ]
        .map(OsString::from)
        .to_vec();
        let parsed = RustcArgs::parse(&args);
        assert_eq!(
            parsed.externs,
            [
                PathBuf::from("/t/debug/deps/libserde-11.rmeta"),
                PathBuf::from("/t/debug/deps/libderive-22.so")
            ]
        );
        assert_eq!(
            parsed.lib_dirs,
            [
                PathBuf::from("/t/debug/deps"),
                PathBuf::from("/t/debug/build/z/out")
            ]
        );
        assert_eq!(parsed.emit_paths, [PathBuf::from("/t/x.d")]);
        assert_eq!(
            parsed.incremental,
            Some(PathBuf::from("/t/debug/incremental"))
        );
        assert_eq!(parsed.unit_stem().as_deref(), Some("app-aa"));
        assert!(parsed.test);
    }
}
