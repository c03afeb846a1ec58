//! The `RUSTC_WRAPPER` role.
//!
//! cargo runs `cargo-capsule <rustc> ARGS...` for every compilation. The
//! wrapper runs the real compiler (through the user's own wrapper, such as
//! sccache, when one was set) with the same arguments and stdio, and when
//! the compilation linked a build script, replaces the executable with a
//! shim before cargo gets to run it. Other compilations simply `exec` the
//! compiler.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::InterceptError;
use super::session::Session;
use super::shim;

/// What the wrapper needs to know about one rustc invocation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RustcArgs {
    pub crate_name: Option<String>,
    pub crate_types: Vec<String>,
    pub out_dir: Option<PathBuf>,
    pub extra_filename: String,
    pub output: Option<PathBuf>,
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
                    if let Some(v) = value
                        .as_deref()
                        .and_then(|v| v.strip_prefix("extra-filename="))
                    {
                        parsed.extra_filename = v.to_string();
                    }
                }
                other => {
                    if let Some(v) = other.strip_prefix("--crate-type=") {
                        parsed.crate_types.push(v.to_string());
                    } else if let Some(v) = other.strip_prefix("--out-dir=") {
                        parsed.out_dir = Some(PathBuf::from(v));
                    } else if let Some(v) = other.strip_prefix("-Cextra-filename=") {
                        parsed.extra_filename = v.to_string();
                    } else if let Some(v) = other.strip_prefix("--crate-name=") {
                        parsed.crate_name = Some(v.to_string());
                    }
                }
            }
            i += 1;
        }
        parsed
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
    let chain = Session::load(session_dir)?.chain_wrapper;
    let mut command = match &chain {
        Some(wrapper) => {
            let mut c = Command::new(wrapper);
            c.arg(rustc);
            c
        }
        None => Command::new(rustc),
    };
    command.args(&args);
    let run_error = |source| InterceptError::Io {
        what: format!("run {}", rustc.display()),
        source,
    };
    let Some(exe) = RustcArgs::parse(&args).build_script_output() else {
        // Nothing to do afterwards: become rustc (one process less per unit).
        use std::os::unix::process::CommandExt;
        return Err(run_error(command.exec()));
    };
    let status = command.status().map_err(run_error)?;
    if status.success() {
        shim::arm(&exe)?;
    }
    Ok(status.code().unwrap_or(101))
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
}
