//! Paths every flow resolves the same way.

use std::path::{Path, PathBuf};

/// Resolve a path given relative to the repository when run from elsewhere.
pub fn find_in_repo(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidate = repo.join(path);
    if candidate.exists() {
        candidate
    } else {
        path.to_path_buf()
    }
}
