//! The manifest cache: lets `manifest` and `check` skip the build and the
//! scan when nothing that decides the manifest changed.
//!
//! A run is keyed by everything that decides the result: `Cargo.lock` and
//! the workspace `Cargo.toml`, the toolchain (`rustc -vV`, `cargo -V`), both
//! sandbox profiles, the catalogue files, the build options, the cargo
//! configuration files and build environment variables (and those the
//! sandbox profiles let in), the package selection, and this executable.
//! Its record holds a fingerprint of the files of the workspace root and of
//! every package outside it that cargo did not extract itself (path,
//! vendored, patched), the values of the variables the crates read, and
//! one entry per crate, stored by
//! name, version, checksum (or fingerprint), profile and toolchain. A hit
//! needs every fingerprint to match and every entry to be there; otherwise
//! the caller builds and stores.
//!
//! The cache lives under the target dir (`capsule/cache`) or `--cache-dir`,
//! to share between checkouts: entries hold no absolute paths, and walked
//! directories are recorded relative to the workspace root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CrateManifest, Manifest, PackageDirs};
use crate::driver::BuildOptions;
use crate::scan::hashes::Hashes;

/// Bumped when the cache layout or what goes into a key changes.
const CACHE_VERSION: u32 = 1;

/// Deeper directories are not fingerprinted (the fingerprint then fails
/// and the cache is not used).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct LocalPackage {
    /// Relative to the workspace root when under it, else absolute.
    dir: String,
    fingerprint: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RunRecord {
    local: Vec<LocalPackage>,
    /// The environment variables the crates read (their `env.read`
    /// targets), with a hash of each value at the time (None: unset). A
    /// build script or `env!` may make the result depend on them.
    env: BTreeMap<String, Option<String>>,
    /// Entry file names under `crates/`.
    crates: Vec<String>,
}

/// A prepared lookup: the key of this run and where things are.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    key: String,
    /// Key parts shared by every crate entry (toolchain, profiles, ...).
    entry_key: String,
    workspace_root: PathBuf,
    /// Not fingerprinted: build output and what we write ourselves.
    skip: Vec<PathBuf>,
    hashes: Hashes,
}

fn hash_parts(parts: &[(&str, Vec<u8>)]) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, value) in parts {
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    hasher.finalize().to_hex().to_string()
}

/// A command's output, or its error text (then the key still differs from
/// a working toolchain's).
fn output_of(program: &Path, arg: &str, dir: &Path) -> Vec<u8> {
    match std::process::Command::new(program)
        .arg(arg)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(out) => out.stdout,
        Err(e) => format!("{} {arg}: {e}", program.display()).into_bytes(),
    }
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| format!("unreadable: {}", e.kind()).into_bytes())
}

/// Whether an `env.read` target names a variable (not an API path).
fn is_env_name(target: &str) -> bool {
    !target.is_empty()
        && !target.contains("::")
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Each variable's value, hashed (None: unset).
fn env_values<'a>(names: impl Iterator<Item = &'a String>) -> BTreeMap<String, Option<String>> {
    names
        .map(|name| {
            let value = std::env::var_os(name).map(|v| {
                use std::os::unix::ffi::OsStrExt;
                blake3::hash(v.as_bytes()).to_hex().to_string()
            });
            (name.clone(), value)
        })
        .collect()
}

/// The run key: the shared parts plus the lock file and the workspace
/// manifest.
fn run_key(entry_key: &str, workspace_root: &Path) -> String {
    hash_parts(&[
        ("entry", entry_key.as_bytes().to_vec()),
        ("lock", file_bytes(&workspace_root.join("Cargo.lock"))),
        ("workspace", file_bytes(&workspace_root.join("Cargo.toml"))),
    ])
}

impl Cache {
    /// Computes the key of a run. `workspace_root` and `target_dir` come
    /// from `cargo metadata`; `skip` lists files the fingerprints leave out
    /// (the baseline and outputs we write).
    pub fn prepare(
        options: &BuildOptions,
        workspace_root: &Path,
        target_dir: &Path,
        cache_dir: Option<&Path>,
        skip: &[PathBuf],
    ) -> Cache {
        let dir = cache_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| target_dir.join("capsule").join("cache"));
        let cwd = std::env::current_dir().unwrap_or_else(|_| workspace_root.to_path_buf());
        let cargo = crate::driver::cargo_path();
        let rustc = std::env::var_os("RUSTC")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("rustc"));
        let mut parts: Vec<(&str, Vec<u8>)> = vec![
            ("cache", CACHE_VERSION.to_le_bytes().to_vec()),
            ("tool", env!("CARGO_PKG_VERSION").as_bytes().to_vec()),
            ("schema", super::SCHEMA_VERSION.to_le_bytes().to_vec()),
            (
                "scanner",
                crate::scan::SCANNER_VERSION.to_le_bytes().to_vec(),
            ),
            // Where cargo runs: rustup picks the toolchain from there.
            ("rustc", output_of(&rustc, "-vV", &cwd)),
            ("cargo", output_of(&cargo, "-V", &cwd)),
        ];
        let hashes = Hashes::load(&dir.join("hashes.json"));
        // This executable (its content: a reinstalled copy of the same
        // build still hits).
        let exe = std::env::current_exe()
            .map_err(|e| e.to_string())
            .and_then(|exe| hashes.hash(&exe).map_err(|e| e.to_string()));
        parts.push(("exe", format!("{exe:?}").into_bytes()));
        // Which packages cargo builds depends on the manifest path or the
        // current directory, relative to the workspace.
        let selected = options
            .manifest_path
            .as_deref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let selected = selected
            .strip_prefix(workspace_root)
            .map(Path::to_path_buf)
            .unwrap_or(selected);
        parts.push(("selected", selected.to_string_lossy().as_bytes().to_vec()));
        let mut passed: Vec<(String, String)> = Vec::new();
        for (name, spec) in [
            ("profile", options.profile.as_deref()),
            (
                "rustc-profile",
                Some(
                    options
                        .rustc_profile
                        .as_deref()
                        .unwrap_or(crate::sandbox::profile::DEFAULT_RUSTC_PROFILE),
                ),
            ),
        ] {
            let resolved = match crate::sandbox::profile::Profile::resolve(spec) {
                Ok((profile, _)) => {
                    // What the sandbox lets in (PATH, CC, ...) changes what
                    // build scripts do.
                    passed.extend(std::env::vars().filter(|(n, _)| profile.env_allowed(n)));
                    format!("{profile:?}")
                }
                Err(e) => format!("error: {e}"),
            };
            parts.push((name, resolved.into_bytes()));
        }
        parts.push((
            "options",
            format!(
                "{:?} {:?} {} {} {} {:?}",
                options.packages,
                options.features.features,
                options.features.all_features,
                options.features.no_default_features,
                options.release,
                options.extra
            )
            .into_bytes(),
        ));
        parts.push((
            "catalogue",
            file_bytes(&workspace_root.join("capsule.toml")),
        ));
        for file in &options.catalogues {
            parts.push(("catalogue", file_bytes(file)));
        }
        // Cargo configuration that changes what is built.
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| {
                matches!(
                    name.as_str(),
                    "RUSTFLAGS"
                        | "CARGO_ENCODED_RUSTFLAGS"
                        | "RUSTC_WRAPPER"
                        | "RUSTC_WORKSPACE_WRAPPER"
                        | "RUSTC_BOOTSTRAP"
                ) || (name.starts_with("CARGO_")
                    && name != "CARGO_TARGET_DIR"
                    && name != "CARGO_HOME"
                    && name != "CARGO_TERM_COLOR"
                    && name != "CARGO")
            })
            .collect();
        env.extend(passed);
        env.sort();
        env.dedup();
        parts.push(("env", format!("{env:?}").into_bytes()));
        // cargo reads configuration from the current directory up, and
        // from CARGO_HOME; the workspace's own directories count too.
        let (_, cargo_home, _) = crate::driver::home_dirs();
        let mut config_dirs: Vec<PathBuf> = cwd
            .ancestors()
            .chain(workspace_root.ancestors())
            .map(|d| d.join(".cargo"))
            .chain([cargo_home])
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        config_dirs.retain(|d| seen.insert(d.clone()));
        for dir in config_dirs {
            for name in ["config.toml", "config"] {
                let file = dir.join(name);
                if file.is_file() {
                    parts.push(("config", file_bytes(&file)));
                }
            }
        }
        let entry_key = hash_parts(&parts);
        let key = run_key(&entry_key, workspace_root);
        let mut skip: Vec<PathBuf> = skip.to_vec();
        skip.push(target_dir.to_path_buf());
        skip.push(dir.clone());
        skip.push(workspace_root.join(super::DEFAULT_FILE));
        Cache {
            hashes,
            dir,
            key,
            entry_key,
            workspace_root: workspace_root.to_path_buf(),
            skip,
        }
    }

    /// Adds a part to the key (before `lookup`): something else that decides
    /// the result.
    pub fn extend_key(&mut self, name: &str, value: &[u8]) {
        self.entry_key = hash_parts(&[
            ("entry", self.entry_key.as_bytes().to_vec()),
            (name, value.to_vec()),
        ]);
        self.key = run_key(&self.entry_key, &self.workspace_root);
    }

    /// Computes the run key again, after a build that may have written or
    /// updated Cargo.lock (the rest of the key cannot have changed).
    fn rekey(&mut self) {
        self.key = run_key(&self.entry_key, &self.workspace_root);
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("runs").join(format!("{}.json", self.key))
    }

    fn resolve(&self, dir: &str) -> PathBuf {
        let path = Path::new(dir);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.workspace_root.join(path)
        }
    }

    /// The manifest of an earlier run with the same inputs, if every local
    /// package is unchanged and every entry is there.
    pub fn lookup(&self) -> Option<Manifest> {
        let text = std::fs::read(self.record_path()).ok()?;
        let record: RunRecord = serde_json::from_slice(&text).ok()?;
        if record.env != env_values(record.env.keys()) {
            return None;
        }
        for local in &record.local {
            if self.fingerprint(&self.resolve(&local.dir))? != local.fingerprint {
                return None;
            }
        }
        let mut crates = Vec::new();
        for name in &record.crates {
            let text = std::fs::read(self.dir.join("crates").join(name)).ok()?;
            crates.push(serde_json::from_slice::<CrateManifest>(&text).ok()?);
        }
        self.hashes.save();
        Some(Manifest {
            schema_version: super::SCHEMA_VERSION,
            crates,
        })
    }

    /// The manifest of a successful build (read with the Cargo.lock it
    /// left), stored under the run's key, computed again since the build
    /// may have written the lock file.
    pub fn store_build(
        &mut self,
        outcome: &crate::driver::BuildOutcome,
    ) -> Result<Manifest, super::ManifestError> {
        let lock = super::LockFile::read(&outcome.workspace_root.join("Cargo.lock"))?;
        let manifest = Manifest::from_report(&outcome.report, &lock, &outcome.package_dirs);
        self.rekey();
        self.store(&manifest, &outcome.package_dirs);
        Ok(manifest)
    }

    /// Stores a run's manifest. Best effort: a cache that cannot be written
    /// only costs time. Manifests with a build script cargo reused unseen
    /// are not stored, so the next run tries again.
    fn store(&self, manifest: &Manifest, dirs: &PackageDirs) {
        if manifest.crates.iter().any(|c| {
            c.unscanned
                .iter()
                .any(|u| u == super::UNRECORDED_BUILD_SCRIPT)
        }) {
            return;
        }
        // Everything but what cargo extracted itself can be edited:
        // path packages, vendored and patched sources. The workspace root
        // is walked whole (shared files `include!`d from outside a package).
        let extracted = crate::driver::Extracted::new();
        let mut walked: Vec<&Path> = vec![self.workspace_root.as_path()];
        for ((_, _, source), dir) in dirs {
            if !extracted.contains(source.starts_with("path+"), dir)
                && !dir.starts_with(&self.workspace_root)
            {
                walked.push(dir);
            }
        }
        let mut local = Vec::new();
        for dir in walked {
            let Some(fingerprint) = self.fingerprint(dir) else {
                return;
            };
            let shown = match dir.strip_prefix(&self.workspace_root) {
                Ok(rel) => rel.to_string_lossy().into_owned(),
                Err(_) => dir.to_string_lossy().into_owned(),
            };
            local.push(LocalPackage {
                dir: shown,
                fingerprint,
            });
        }
        local.sort_by(|a, b| a.dir.cmp(&b.dir));
        local.dedup_by(|a, b| a.dir == b.dir);
        // A crate without a checksum is pinned by the fingerprint of the
        // walk that covers it.
        let fingerprints: BTreeMap<(&str, &str), &str> = dirs
            .iter()
            .filter_map(|((name, version, _), dir)| {
                let f = local
                    .iter()
                    .filter(|l| dir.starts_with(self.resolve(&l.dir)))
                    .max_by_key(|l| l.dir.len())?
                    .fingerprint
                    .as_str();
                Some(((name.as_str(), version.as_str()), f))
            })
            .collect();
        let mut files = Vec::new();
        for krate in &manifest.crates {
            let pin = krate
                .checksum
                .as_deref()
                .or_else(|| {
                    fingerprints
                        .get(&(krate.name.as_str(), krate.version.as_str()))
                        .copied()
                })
                .unwrap_or("");
            let text = serde_json::to_vec(krate).expect("crate entry serialises");
            let key = hash_parts(&[
                ("entry", self.entry_key.as_bytes().to_vec()),
                ("name", krate.name.as_bytes().to_vec()),
                ("version", krate.version.as_bytes().to_vec()),
                ("source", krate.source.as_bytes().to_vec()),
                ("pin", pin.as_bytes().to_vec()),
                ("content", text.clone()),
            ]);
            let name = format!("{}-{}-{}.json", krate.name, krate.version, &key[..32]);
            if crate::intercept::session::write_cache(&self.dir.join("crates").join(&name), &text)
                .is_err()
            {
                return;
            }
            files.push(name);
        }
        let names: Vec<&String> = manifest
            .crates
            .iter()
            .flat_map(|c| c.capabilities.values().flatten())
            .filter(|c| c.capability == "env.read" && is_env_name(&c.target))
            .map(|c| &c.target)
            .collect();
        let record = RunRecord {
            env: env_values(names.into_iter()),
            local,
            crates: files,
        };
        let text = serde_json::to_vec(&record).expect("record serialises");
        let _ = crate::intercept::session::write_cache(&self.record_path(), &text);
        self.hashes.save();
    }

    /// A hash of a directory's files (paths, contents, link targets and
    /// what they point to), leaving out build output (CACHEDIR.TAG), VCS
    /// data and our own files. None when a part cannot be read.
    fn fingerprint(&self, root: &Path) -> Option<String> {
        let mut hasher = blake3::Hasher::new();
        self.walk(root, root, 0, &mut hasher)?;
        Some(hasher.finalize().to_hex().to_string())
    }

    fn walk(
        &self,
        root: &Path,
        dir: &Path,
        depth: usize,
        hasher: &mut blake3::Hasher,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(dir)
            .ok()?
            .map(|e| e.ok().and_then(|e| Some((e.path(), e.file_type().ok()?))))
            .collect::<Option<_>>()?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, kind) in entries {
            if self.skip.iter().any(|s| s == &path) {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if kind.is_dir() {
                let name = path.file_name().unwrap_or_default();
                if name == ".git" || path.join("CACHEDIR.TAG").exists() {
                    continue;
                }
                self.walk(root, &path, depth + 1, hasher)?;
            } else if kind.is_symlink() {
                // The link and, for a link to a file, what it points to (a
                // build script may be a link to a shared file).
                let target = std::fs::read_link(&path).ok()?;
                let content = if path.is_file() {
                    self.hashes.hash(&path).ok()?
                } else {
                    String::new()
                };
                hasher.update(format!("L {rel}\0{}\0{content}\0", target.display()).as_bytes());
            } else if kind.is_file() {
                let hash = self.hashes.hash(&path).ok()?;
                hasher.update(format!("F {rel}\0{hash}\0").as_bytes());
            }
        }
        Some(())
    }
}
