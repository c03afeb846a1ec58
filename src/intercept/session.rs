//! The session: how the driver (`cargo capsule build`) talks to the rustc
//! wrapper and build-script shims that cargo starts on its behalf.
//!
//! The driver writes `session.json` into a fresh directory under
//! `target/capsule/` and passes the directory in `CAPSULE_SESSION`; each
//! sandboxed build-script run writes one record into `records/` (temp file +
//! rename, so the driver never reads half a record). The directory is
//! removed when the driver finishes.

use std::path::{Path, PathBuf};

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
    pub profile: Profile,
    pub profile_name: String,
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
    tmp.as_file().sync_all().map_err(|e| io("sync", e))?;
    tmp.persist(path)
        .map_err(|e| io("rename into place", e.error))?;
    Ok(())
}

/// Saves a run record under `records/`.
pub fn save_record(session_dir: &Path, record: &RunRecord) -> Result<(), InterceptError> {
    let records = session_dir.join("records");
    let name = format!(
        "{}-{}-{}.json",
        record.package,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let text = serde_json::to_string(record).expect("record serialises");
    write_atomic(&records.join(name), text.as_bytes())
}

/// Reads every record of a session.
pub fn load_records(session_dir: &Path) -> Result<Vec<RunRecord>, InterceptError> {
    let records = session_dir.join("records");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&records) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| InterceptError::Io {
            what: format!("read {}", path.display()),
            source,
        })?;
        let record = serde_json::from_str(&text).map_err(|e| InterceptError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        out.push(record);
    }
    Ok(out)
}
