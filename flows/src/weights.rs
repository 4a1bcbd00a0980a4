//! The weights a run uses: a checkpoint read and checked from disk, with the SHA-256 of
//! its weights file, or random weights of a model description. One place for the
//! choice `tern model`, `tern generate` and `tern generate --one-top` make.

use crate::text::Prompt;
use anyhow::{anyhow, bail, Result};
use std::path::Path;
use tern_model::checkpoint::Checkpoint;
use tern_model::text::TextCodec;
use tern_model::ModelConfig;

/// A run's weights and where they came from.
pub struct ModelWeights {
    pub checkpoint: Checkpoint,
    /// The file the weights were read from, when read from disk.
    pub file: Option<WeightsFile>,
    /// For reports: "checkpoint DIR (sha256 …)" or "random weights, seed N".
    pub origin: String,
}

/// A weights file and its SHA-256 (lower-case hex, as `sha256sum` prints it).
pub struct WeightsFile {
    pub path: std::path::PathBuf,
    pub sha256: String,
}

/// What a generation run starts from: its weights, the prompt's ids, and the model's
/// tokenizer when it has one (text in and out).
pub struct Generation {
    pub weights: ModelWeights,
    pub prompt: Vec<usize>,
    pub codec: Option<TextCodec>,
}

/// What a generation run takes in (`tern generate`, on the boards or the one top).
#[derive(Debug, Clone)]
pub struct RunInputs {
    /// A preset name or model TOML (random weights from `seed`), unless `checkpoint`.
    pub model: String,
    pub checkpoint: Option<std::path::PathBuf>,
    /// Refuse a checkpoint whose weights file has another SHA-256.
    pub expect_sha256: Option<String>,
    pub seed: u64,
    /// Token ids, or text for the checkpoint's tokenizer.
    pub prompt: Prompt,
    /// Text goes through the tokenizer's chat template (when it has one).
    pub chat: bool,
    /// Tokens to generate.
    pub tokens: usize,
}

impl RunInputs {
    /// The run's weights, the prompt as ids (text tokenised, through the chat template
    /// when `chat`), the prompt and token count checked against the model before
    /// anything runs.
    pub fn generation(&self) -> Result<Generation> {
        use tern_sim::golden::bitnet::check_tokens;
        let RunInputs {
            model,
            checkpoint,
            expect_sha256,
            seed,
            prompt,
            chat,
            tokens,
        } = self;
        let (checkpoint, tokens) = (checkpoint.as_deref(), *tokens);
        if tokens == 0 {
            bail!("--tokens must be at least 1");
        }
        let weights = model_weights(model, checkpoint, expect_sha256.as_deref(), *seed)?;
        let config = &weights.checkpoint.config;
        let codec = crate::text::codec_for(checkpoint, config.vocab)?;
        let ids = crate::text::prompt_ids(prompt, codec.as_ref(), *chat, checkpoint)?;
        check_tokens(config, 0, &ids).map_err(|e| match prompt {
            Prompt::Text(_) => anyhow!("--prompt: {e} (the text tokenises to {} ids)", ids.len()),
            Prompt::Ids(_) => anyhow!("--prompt: {e}"),
        })?;
        let prompt = ids;
        // The last generated token is not fed back.
        if tokens > 1 {
            check_tokens(config, prompt.len(), &vec![0; tokens - 1])
                .map_err(|e| anyhow!("--tokens {tokens}: {e}"))?;
        }
        Ok(Generation {
            weights,
            prompt,
            codec,
        })
    }
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
            file: None,
            origin: format!("random weights, seed {seed}"),
        });
    };
    let opened = Checkpoint::open(path)?;
    if let Some(hex) = expect_sha256 {
        opened.expect_sha256(hex)?;
    }
    Ok(ModelWeights {
        origin: format!("checkpoint {} (sha256 {})", path.display(), opened.sha256),
        file: Some(WeightsFile {
            path: opened.weights_path,
            sha256: opened.sha256,
        }),
        checkpoint: opened.checkpoint,
    })
}
