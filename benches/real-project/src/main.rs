//! `capsule-bench-real`: the program of the build-time benchmark's "real"
//! project.
//!
//! What matters is building it (its dependencies' build scripts and proc
//! macros are what `cargo capsule` sandboxes); the program itself only
//! touches a few of those crates trivially so that they are really linked.

use clap::Parser;
use serde::{Deserialize, Serialize};

/// Command line, parsed by clap's derive macro.
#[derive(Parser, Debug)]
#[command(about = "Touches a few dependencies of the build benchmark")]
struct Args {
    /// Text to hash, compress and search.
    #[arg(default_value = "hello capsule")]
    text: String,
}

/// A record serialised with serde's derive macro.
#[derive(Serialize, Deserialize, Debug)]
struct Report {
    text: String,
    sha256_prefix: String,
    zstd_len: usize,
    has_capsule: bool,
    sum_of_squares: u64,
}

/// An error type made with thiserror's derive macro.
#[derive(thiserror::Error, Debug)]
enum BenchError {
    #[error("round trip changed the report")]
    RoundTrip,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    use rayon::prelude::*;

    let args = Args::parse();
    let digest = ring::digest::digest(&ring::digest::SHA256, args.text.as_bytes());
    let sha256_prefix: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    let compressed = zstd::encode_all(args.text.as_bytes(), 3)?;
    let re = regex::Regex::new(r"caps\w+")?;
    let report = Report {
        has_capsule: re.is_match(&args.text)
            && memchr::memmem::find(args.text.as_bytes(), b"capsule").is_some(),
        sum_of_squares: (1..=10u64).into_par_iter().map(|x| x * x).sum(),
        zstd_len: compressed.len(),
        sha256_prefix,
        text: args.text,
    };
    let json = serde_json::to_string(&report)?;
    let back: Report = serde_json::from_str(&json)?;
    if back.sha256_prefix != report.sha256_prefix {
        return Err(BenchError::RoundTrip.into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{json}");
    println!("random salt {}", u64::from_le_bytes(salt));
    println!(
        "zlib {}, listener on {}",
        zlib_version(),
        listener.local_addr()?
    );
    Ok(())
}

/// The version string of the zlib that libz-sys built and linked statically.
fn zlib_version() -> String {
    // SAFETY: zlibVersion takes no arguments and returns a pointer to a
    // static, NUL-terminated string owned by zlib that lives for the whole
    // program and is never written to.
    let version = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) };
    version.to_string_lossy().into_owned()
}
