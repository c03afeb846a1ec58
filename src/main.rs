//! Entry point. One binary plays three roles, chosen from its arguments:
//! the command-line tool (`cargo capsule ...` or `cargo-capsule ...`), the
//! build-script shim (`cargo-capsule __build-script REAL ARGS...`), and the
//! rustc wrapper (`cargo-capsule __rustc-wrapper SESSION RUSTC ARGS...`, run
//! by the session's wrapper script).
//! Errors end here: one line on stderr, exit code 2.

use cargo_capsule::{cli, intercept};

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let first = args.get(1).cloned();
    let result: anyhow::Result<i32> = match first.as_ref().and_then(|a| a.to_str()) {
        Some("__build-script") if args.len() >= 3 => {
            let real = PathBuf::from(&args[2]);
            let rest = args.split_off(3);
            intercept::shim::run_build_script(&real, rest).map_err(Into::into)
        }
        Some("capsule") => {
            // `cargo capsule ...` passes the subcommand name first.
            args.remove(1);
            cli::run(cli::parse(args)).map(i32::from)
        }
        Some("__rustc-wrapper") if args.len() >= 4 => {
            let session = PathBuf::from(&args[2]);
            let rustc = PathBuf::from(&args[3]);
            let rest = args.split_off(4);
            intercept::wrapper::run(&session, &rustc, rest).map_err(Into::into)
        }
        _ => cli::run(cli::parse(args)).map(i32::from),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("cargo-capsule: error: {error:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
