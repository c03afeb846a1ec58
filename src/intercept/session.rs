//! The session: how the driver (`cargo capsule build`) talks to the rustc
//! wrapper and build-script shims that cargo starts on its behalf.
//!
//! The driver writes `session.json` into a fresh directory under
//! `target/capsule/` and passes the directory in `CAPSULE_SESSION`; each
//! sandboxed build-script run writes one record into `records/`, each traced
//! compilation (one that loaded proc macros) one into `expansions/` (temp
//! file + rename, so the driver never reads half a record). The directory is
//! removed when the driver finishes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::InterceptError;
use crate::observe::Observation;
use crate::sandbox::Profile;

/// Variable holding the session directory.
pub const SESSION_ENV: &str = "CAPSULE_SESSION";
/// Variable holding the path of the cargo-capsule executable, for shims.
pub const EXE_ENV: &str = "CAPSULE_EXE";
/// Name of the rustc-wrapper script written into each session directory.
/// cargo runs it as `RUSTC_WRAPPER`; it passes the session directory to
/// cargo-capsule on the command line. Nothing the wrapper trusts comes from
/// its environment: a build script's `cargo:rustc-env=...` directives reach
/// the environment of its package's compilation, and so of the wrapper.
pub const WRAPPER_SCRIPT: &str = "rustc-wrapper";

/// What every wrapper and shim of one build needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The build scripts' profile.
    pub profile: Profile,
    pub profile_name: String,
    /// The profile every rustc runs in.
    pub rustc_profile: Profile,
    pub rustc_profile_name: String,
    /// Names (never values) of the variables cargo-capsule was started with:
    /// any other variable a compilation sees was set by cargo.
    pub inherited_env: BTreeSet<String>,
    pub workspace_root: PathBuf,
    pub target_dir: PathBuf,
    /// Local package roots (workspace members, path dependencies) that build
    /// scripts may read even when they live under a hidden directory.
    pub local_roots: Vec<PathBuf>,
    pub home: PathBuf,
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
    /// A wrapper the user had in `RUSTC_WRAPPER` (sccache ...), to chain.
    pub chain_wrapper: Option<PathBuf>,
}

/// One sandboxed run of one build script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub package: String,
    pub version: String,
    pub manifest_dir: PathBuf,
    pub out_dir: PathBuf,
    pub exit_code: i32,
    pub timed_out: bool,
    /// The sandbox could not be set up; the build script did not run.
    pub setup_error: Option<String>,
    pub observations: Vec<Observation>,
}

/// A traced compilation: what the proc macros it loaded did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpansionRecord {
    /// The package being compiled (not the macros').
    pub package: String,
    pub version: String,
    pub manifest_dir: PathBuf,
    /// Its target: crate name and kind (`lib`, `bin`, `test`, ...).
    pub crate_name: String,
    pub kind: String,
    pub exit_code: i32,
    pub timed_out: bool,
    pub setup_error: Option<String>,
    /// The proc-macro libraries rustc opened.
    pub macros: Vec<MacroLibrary>,
    /// Observations, each group blamed on one macro library or, where the
    /// recorder could not tell which, on several.
    pub blamed: Vec<Blamed>,
}

/// A proc-macro library and, when cargo-capsule compiled it, its package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MacroLibrary {
    pub library: PathBuf,
    pub package: Option<MacroPackage>,
}

/// The package a proc-macro library was compiled from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MacroPackage {
    pub name: String,
    pub version: String,
    pub manifest_dir: PathBuf,
}

impl MacroLibrary {
    /// `name@version`, or the crate name from the file name.
    pub fn display_name(&self) -> String {
        match &self.package {
            Some(p) => format!("{}@{}", p.name, p.version),
            None => library_crate_name(&self.library),
        }
    }
}

/// `libfoo_bar-0123.so` → `foo_bar`.
pub fn library_crate_name(library: &Path) -> String {
    let name = library
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_prefix("lib").unwrap_or(&name);
    let name = name.split('.').next().unwrap_or(name);
    match name.rsplit_once('-') {
        Some((crate_name, _hash)) => crate_name.to_string(),
        None => name.to_string(),
    }
}

/// Observations blamed on `libraries` (one: exact; several: ambiguous).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blamed {
    pub libraries: Vec<PathBuf>,
    pub observations: Vec<Observation>,
}

impl ExpansionRecord {
    /// Stable file name for this unit in the store: the same for the record
    /// the wrapper writes and the lookup the driver makes from cargo's
    /// `compiler-artifact` message.
    pub fn store_name(
        package: &str,
        version: &str,
        manifest_dir: &Path,
        crate_name: &str,
        kind: &str,
    ) -> String {
        let identity = format!(
            "{package}\0{version}\0{}\0{crate_name}\0{kind}",
            manifest_dir.display()
        );
        format!(
            "{crate_name}-{kind}-{:016x}.json",
            fnv1a(identity.as_bytes())
        )
    }
}

/// FNV-1a, 64 bits: a stable hash for file names (std's hasher may change
/// between releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Session {
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("session.json")
    }

    pub fn load(dir: &Path) -> Result<Session, InterceptError> {
        let path = Session::file(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| InterceptError::Io {
            what: format!("read the session file {}", path.display()),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| InterceptError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    pub fn save(&self, dir: &Path) -> Result<(), InterceptError> {
        let text = serde_json::to_string_pretty(self).expect("session serialises");
        write_atomic(&Session::file(dir), text.as_bytes())
    }

    /// Writes the `RUSTC_WRAPPER` script for this session and returns its path.
    pub fn write_wrapper(dir: &Path, exe: &Path) -> Result<PathBuf, InterceptError> {
        use std::os::unix::fs::PermissionsExt;
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        let path = dir.join(WRAPPER_SCRIPT);
        let text = format!(
            "#!/bin/sh\n# cargo-capsule: rustc wrapper of one `cargo capsule build`.\nexec {} __rustc-wrapper {} \"$@\"\n",
            quote(exe),
            quote(dir)
        );
        write_atomic(&path, text.as_bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| InterceptError::Io {
                what: format!("make {} executable", path.display()),
                source,
            },
        )?;
        Ok(path)
    }
}

/// Writes a file through a temp file in the same directory and a rename, so
/// readers see the old content or the new, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InterceptError> {
    replace_file(path, bytes, true)
}

/// Writes a cache file (temp file + rename, so never half written) without
/// waiting for the disk, and not at all when it already holds `bytes`: for
/// notes that are cheap to lose and written once per compilation.
pub fn write_cache(path: &Path, bytes: &[u8]) -> Result<(), InterceptError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    replace_file(path, bytes, false)
}

/// Temp file in the same directory, optionally synced, renamed into place.
fn replace_file(path: &Path, bytes: &[u8], sync: bool) -> Result<(), InterceptError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |what: &str, source| InterceptError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io("create a temp file for", e))?;
    tmp.write_all(bytes).map_err(|e| io("write", e))?;
    if sync {
        tmp.as_file().sync_all().map_err(|e| io("sync", e))?;
    }
    tmp.persist(path)
        .map_err(|e| io("rename into place", e.error))?;
    Ok(())
}

/// Saves a run record under `records/`.
pub fn save_record(session_dir: &Path, record: &RunRecord) -> Result<(), InterceptError> {
    save_into(&session_dir.join("records"), &record.package, record)
}

/// Saves a traced compilation's record under `expansions/`.
pub fn save_expansion(session_dir: &Path, record: &ExpansionRecord) -> Result<(), InterceptError> {
    save_into(&session_dir.join("expansions"), &record.package, record)
}

fn save_into(dir: &Path, package: &str, record: &impl Serialize) -> Result<(), InterceptError> {
    let name = format!(
        "{}-{}-{}.json",
        package,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let text = serde_json::to_string(record).expect("record serialises");
    write_atomic(&dir.join(name), text.as_bytes())
}

/// Reads every build-script record of a session.
pub fn load_records(session_dir: &Path) -> Result<Vec<RunRecord>, InterceptError> {
    load_all(&session_dir.join("records"))
}

/// Reads every compilation record of a session.
pub fn load_expansions(session_dir: &Path) -> Result<Vec<ExpansionRecord>, InterceptError> {
    load_all(&session_dir.join("expansions"))
}

/// Reads one JSON file written by [`write_atomic`].
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T, InterceptError> {
    let text = std::fs::read_to_string(path).map_err(|source| InterceptError::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| InterceptError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn load_all<T: DeserializeOwned>(dir: &Path) -> Result<Vec<T>, InterceptError> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        out.push(load_json(&path)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_and_store_names() {
        assert_eq!(
            library_crate_name(Path::new("/t/deps/libfoo_bar-0123abcd.so")),
            "foo_bar"
        );
        let a = ExpansionRecord::store_name("app", "0.1.0", Path::new("/w/app"), "app", "bin");
        let b = ExpansionRecord::store_name("app", "0.1.0", Path::new("/w/app"), "app", "bin");
        let c = ExpansionRecord::store_name("app", "0.1.0", Path::new("/w/app"), "app", "test");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("app-bin-") && a.ends_with(".json"), "{a}");
    }
}
