//! Paths every flow resolves the same way.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Create a `--out` directory before anything runs, so a bad path costs no run.
pub fn create_out_dir(dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the output directory {}", dir.display()))?;
    }
    Ok(())
}

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
