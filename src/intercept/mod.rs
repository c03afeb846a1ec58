//! How cargo-capsule gets between cargo and the code it runs at build time.
//!
//! `wrapper` is the `RUSTC_WRAPPER` role (it runs every rustc and swaps each
//! linked build script for a shim), `shim` installs shims and runs a build
//! script through one, `session` is the channel from those short-lived
//! processes back to the driver that started cargo.

pub mod compile;
pub mod session;
pub mod shim;
pub mod view;
pub mod wrapper;

use std::path::PathBuf;

/// Errors of the interception layer.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error(
        "cargo-capsule was started as a build-script shim outside `cargo capsule build` (CAPSULE_SESSION is not set)"
    )]
    NoSession,
    #[error("cargo did not set {0} for the build script")]
    MissingEnv(&'static str),
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("failed to {what}: {message}")]
    Compile { what: String, message: String },
    #[error("{path} is corrupt: {message}; rerun `cargo capsule build`")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
}
