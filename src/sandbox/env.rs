//! The environment a sandboxed build script sees.
//!
//! Passed: what cargo sets for build scripts (`CARGO_*`, `DEP_*`, `OUT_DIR`,
//! `TARGET`, `RUSTC`, ...), `PATH`, `HOME` (now an empty directory), locale
//! and terminal, and the profile's allow-list. Withheld: everything else, and
//! always anything that looks like a credential, even under a `CARGO_` name
//! (`CARGO_REGISTRY_TOKEN`). The withheld names, never their values, go into
//! the report. cargo-capsule's own variables and the rustc wrapper variables
//! are removed: a build script that calls `$RUSTC_WRAPPER` must not reach the
//! recorder's driver from inside the sandbox.

use std::ffi::{OsStr, OsString};

use super::Profile;
use super::profile::looks_like_credential;

/// Names cargo sets for build scripts (besides the `CARGO_` and `DEP_` families).
const CARGO_SET: &[&str] = &[
    "CARGO",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
    "LD_LIBRARY_PATH",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TZ",
];

/// Variables removed without being reported: ours, and the wrappers.
fn is_internal(name: &str) -> bool {
    name.starts_with("CAPSULE_") || name.starts_with("__CAPSULE") || is_wrapper(name)
}

/// cargo's rustc-wrapper variables.
fn is_wrapper(name: &str) -> bool {
    name == "RUSTC_WRAPPER" || name == "RUSTC_WORKSPACE_WRAPPER"
}

/// Splits `vars` into the ones passed and the names withheld (sorted).
pub fn filter(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    profile: &Profile,
) -> (Vec<(OsString, OsString)>, Vec<String>) {
    let mut passed = Vec::new();
    let mut withheld = Vec::new();
    for (name, value) in vars {
        let Some(text) = name.to_str() else {
            withheld.push(name.to_string_lossy().into_owned());
            continue;
        };
        if is_internal(text) {
            continue;
        }
        if allowed(text, profile) {
            passed.push((name, value));
        } else {
            withheld.push(text.to_string());
        }
    }
    passed.sort();
    withheld.sort();
    withheld.dedup();
    (passed, withheld)
}

fn allowed(name: &str, profile: &Profile) -> bool {
    if profile.env_allowed(name) {
        return true;
    }
    if looks_like_credential(name) {
        return false;
    }
    name.starts_with("CARGO_")
        || name.starts_with("DEP_")
        || name.starts_with("LC_")
        || CARGO_SET.contains(&name)
}

/// The environment of a sandboxed rustc. Variables cargo set for the
/// compilation (any name not in `inherited`, the names cargo-capsule itself
/// was started with: `CARGO_*`, `OUT_DIR`, `cargo:rustc-env` ones) pass as
/// they are; inherited ones pass the same test as for build scripts. Returns
/// the variables passed and the names withheld.
pub fn filter_compile(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    profile: &Profile,
    inherited: &std::collections::BTreeSet<String>,
) -> (Vec<(OsString, OsString)>, Vec<String>) {
    let (set_by_cargo, from_user): (Vec<_>, Vec<_>) = vars.into_iter().partition(|(name, _)| {
        name.to_str()
            .is_some_and(|n| !inherited.contains(n) && !is_internal_compile(n))
    });
    let (mut passed, withheld) = filter(from_user, profile);
    passed.extend(set_by_cargo);
    passed.sort();
    (passed, withheld)
}

/// Ours and the wrappers' (a build script may set a `CAPSULE_` name for its
/// crate with `cargo:rustc-env`; only the session's own are removed).
fn is_internal_compile(name: &str) -> bool {
    name == crate::intercept::session::SESSION_ENV
        || name == crate::intercept::session::EXE_ENV
        || is_wrapper(name)
}

/// Sets or replaces one variable.
pub fn set(vars: &mut Vec<(OsString, OsString)>, name: &str, value: &OsStr) {
    vars.retain(|(n, _)| n != name);
    vars.push((name.into(), value.to_owned()));
    vars.sort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_vars_pass_credentials_do_not() {
        let (profile, _) = Profile::resolve(None).unwrap();
        let vars = [
            ("CARGO_PKG_NAME", "x"),
            ("CARGO_REGISTRY_TOKEN", "secret"),
            ("OUT_DIR", "/o"),
            ("DEP_Z_INCLUDE", "/i"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("GITHUB_TOKEN", "t"),
            ("SHELL", "/bin/sh"),
            ("RUSTC_WRAPPER", "/capsule"),
            ("CAPSULE_SESSION", "/s"),
            ("CC", "gcc"),
        ]
        .map(|(a, b)| (OsString::from(a), OsString::from(b)));
        let (passed, withheld) = filter(vars, &profile);
        let names: Vec<_> = passed.iter().map(|(n, _)| n.to_str().unwrap()).collect();
        assert_eq!(names, ["CARGO_PKG_NAME", "CC", "DEP_Z_INCLUDE", "OUT_DIR"]);
        assert_eq!(
            withheld,
            [
                "AWS_SECRET_ACCESS_KEY",
                "CARGO_REGISTRY_TOKEN",
                "GITHUB_TOKEN",
                "SHELL"
            ]
        );
    }

    #[test]
    fn compile_env_keeps_what_cargo_set() {
        let (profile, _) = Profile::resolve(Some("proc-macro")).unwrap();
        let inherited = [
            "PATH",
            "SHELL",
            "GITHUB_TOKEN",
            "CAPSULE_SESSION",
            "FIXTURE",
        ]
        .map(String::from)
        .into();
        let vars = [
            ("PATH", "/bin"),
            ("SHELL", "/bin/sh"),
            ("GITHUB_TOKEN", "t"),
            ("FIXTURE", "user"),
            ("CAPSULE_SESSION", "/s"),
            ("CARGO_PKG_NAME", "x"),
            ("BUILD_SCRIPT_SAID", "rustc-env value"),
            ("CAPSULE_FIXTURE_OUTCOME", "from rustc-env"),
        ]
        .map(|(a, b)| (OsString::from(a), OsString::from(b)));
        let (passed, withheld) = filter_compile(vars, &profile, &inherited);
        let names: Vec<_> = passed.iter().map(|(n, _)| n.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "BUILD_SCRIPT_SAID",
                "CAPSULE_FIXTURE_OUTCOME",
                "CARGO_PKG_NAME",
                "PATH"
            ]
        );
        assert_eq!(withheld, ["FIXTURE", "GITHUB_TOKEN", "SHELL"]);
    }
}
