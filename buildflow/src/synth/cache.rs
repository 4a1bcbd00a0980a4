//! The result cache: one JSON file per (design content, tool versions, script) key,
//! written atomically so a killed run leaves either the old entry or the new one.

use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::SynthError;

#[derive(Debug, Clone)]
pub struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    /// Results live in `<root>/results`; `root` is tern's cache root (`$TERN_CACHE_DIR`).
    pub fn new(root: &Path) -> ResultCache {
        ResultCache {
            dir: root.join("results"),
        }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// A cached result, or `None` when absent. An entry that does not parse (written by
    /// another tern version, or damaged) is a miss: it is reported and then replaced.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("ignoring unreadable cache entry {}: {e}", path.display());
                None
            }
        }
    }

    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), SynthError> {
        write_json(&self.path(key), value)
    }
}

/// Pretty JSON, written atomically, creating the parent directory if needed.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
    }
    let text = serde_json::to_vec_pretty(value).expect("records serialise");
    write_atomic(path, &text)
}

/// A cache key: SHA-256 over length-prefixed parts, so no two part lists collide.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Write to a temporary file beside `path`, flush it to disk, then rename over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        write_synced(&mut f, bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(SynthError::io(path, e));
    }
    Ok(())
}

fn write_synced(f: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["x"]), key(&["x"]));
    }

    #[test]
    fn entries_round_trip_and_damaged_ones_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path());
        assert_eq!(cache.get::<Vec<u32>>("k"), None);
        cache.put("k", &vec![1u32, 2]).unwrap();
        assert_eq!(cache.get::<Vec<u32>>("k"), Some(vec![1, 2]));
        std::fs::write(cache.path("k"), "{ truncated").unwrap();
        assert_eq!(cache.get::<Vec<u32>>("k"), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("results"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_file() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = write_synced(&mut full, &[0u8; 4096]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        // And a write that cannot happen leaves nothing behind and names the path.
        let err = write_atomic(Path::new("/proc/tern-no-such-dir/x.json"), b"{}").unwrap_err();
        assert!(
            err.to_string().contains("/proc/tern-no-such-dir/x.json"),
            "{err}"
        );
    }
}
