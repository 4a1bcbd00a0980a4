//! The weights a run uses: a checkpoint read and checked from disk, with the SHA-256 of
//! its weights file, or random weights of a model description. One place for the
//! choice `tern model`, `tern generate` and `tern generate --one-top` make.

use anyhow::{bail, Result};
use std::path::Path;
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;

/// A run's weights and where they came from.
pub struct ModelWeights {
    pub checkpoint: Checkpoint,
    /// The weights file's SHA-256 (lower-case hex) when read from disk.
    pub sha256: Option<String>,
    /// For reports: "checkpoint DIR (sha256 …)" or "random weights, seed N".
    pub origin: String,
}

/// Read `checkpoint` (refusing it unless its weights hash to `expect_sha256`, when
/// given), or make random weights of `model` from `seed`.
pub fn model_weights(
    model: &str,
    checkpoint: Option<&Path>,
    expect_sha256: Option<&str>,
    seed: u64,
) -> Result<ModelWeights> {
    let Some(path) = checkpoint else {
        if expect_sha256.is_some() {
            bail!("--expect-sha256 checks a checkpoint's weights: give --checkpoint too");
        }
        return Ok(ModelWeights {
            checkpoint: Checkpoint::random(&ModelConfig::resolve(model)?, seed),
            sha256: None,
            origin: format!("random weights, seed {seed}"),
        });
    };
    let opened = Checkpoint::open(path)?;
    if let Some(hex) = expect_sha256 {
        opened.expect_sha256(hex)?;
    }
    Ok(ModelWeights {
        origin: format!("checkpoint {} (sha256 {})", path.display(), opened.sha256),
        sha256: Some(opened.sha256),
        checkpoint: opened.checkpoint,
    })
}
