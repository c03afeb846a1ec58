//! Content hashes of files, memoised by what the kernel says about them
//! (size, mtime, ctime, inode, device), so unchanged files are not read
//! again. Shared by the scan's cache and the manifest cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Memo {
    size: u64,
    mtime_ns: i128,
    /// The change time cannot be set back by a program (unlike mtime).
    ctime_ns: i128,
    inode: u64,
    device: u64,
    hash: String,
}

/// A memo of file hashes, loaded from and saved to one JSON file.
#[derive(Debug)]
pub struct Hashes {
    path: PathBuf,
    memo: Mutex<HashMap<PathBuf, Memo>>,
    changed: AtomicBool,
}

impl Hashes {
    /// Loads the memo at `path` (missing or unreadable: empty).
    pub fn load(path: &Path) -> Hashes {
        let memo = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Hashes {
            path: path.to_path_buf(),
            memo: Mutex::new(memo),
            changed: AtomicBool::new(false),
        }
    }

    /// Writes the memo back if it changed (best effort: it is a cache).
    pub fn save(&self) {
        if !self.changed.load(Ordering::Relaxed) {
            return;
        }
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        let sorted: BTreeMap<&PathBuf, &Memo> = memo.iter().collect();
        if let Ok(text) = serde_json::to_vec(&sorted) {
            let _ = crate::intercept::session::write_cache(&self.path, &text);
        }
    }

    /// The blake3 hash of a regular file, from the memo when its metadata
    /// is unchanged.
    pub fn hash(&self, path: &Path) -> std::io::Result<String> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let ctime_ns = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = memo.get(path)
            && m.size == meta.len()
            && m.mtime_ns == mtime_ns
            && m.ctime_ns == ctime_ns
            && m.inode == meta.ino()
            && m.device == meta.dev()
        {
            return Ok(m.hash.clone());
        }
        drop(memo);
        let hash = if meta.len() == 0 {
            blake3::hash(b"").to_hex().to_string()
        } else {
            blake3::hash(&super::map_file(path)?).to_hex().to_string()
        };
        self.memo.lock().unwrap_or_else(|p| p.into_inner()).insert(
            path.to_path_buf(),
            Memo {
                size: meta.len(),
                mtime_ns,
                ctime_ns,
                inode: meta.ino(),
                device: meta.dev(),
                hash: hash.clone(),
            },
        );
        self.changed.store(true, Ordering::Relaxed);
        Ok(hash)
    }
}
