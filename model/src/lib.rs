//! A BitNet b1.58 transformer, described once: its shapes ([`ModelConfig`]), the presets
//! tern knows (a tiny model for tests, the 0.73B "large" model TeLLMe runs, the
//! 2B4T-shaped model) and the ternary matmuls one token passes through. The golden model,
//! the checkpoint loaders and `tern generate` read this description; none keeps its own.
//!
//! The architecture (LLaMA-like, as in BitNet b1.58): token embedding; per layer an
//! attention block (RMSNorm, ternary Q/K/V projections, RoPE, GQA attention, SubLN
//! RMSNorm, ternary output projection, residual) and a gated FFN block (RMSNorm, ternary
//! gate and up projections, squared ReLU gate, SubLN RMSNorm, ternary down projection,
//! residual); a final RMSNorm and the LM head (full precision, tied to the embedding
//! where the checkpoint says so).

pub mod bitnet_gguf;
pub mod checkpoint;
pub mod gguf;
pub mod open;
pub mod text;

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Most bytes of a model config file read (a few hundred bytes in practice).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // The cause is in the message, not also a `source` (`{:#}` would repeat it).
    #[error("cannot read model config {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: `{key}` = {value}: {rule}")]
    Invalid {
        origin: String,
        key: &'static str,
        value: String,
        rule: String,
    },
    #[error("unknown model preset `{0}` (known: {known})", known = PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    UnknownPreset(String),
}

/// The shapes of a BitNet b1.58 transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    /// One line on what the model is, for reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Width of the residual stream.
    pub hidden: usize,
    pub layers: usize,
    /// Query heads; `heads · head_dim = hidden`.
    pub heads: usize,
    /// Key/value heads (GQA: each serves `heads / kv_heads` query heads).
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Inner width of the gated FFN.
    pub ffn: usize,
    pub vocab: usize,
    pub rope_theta: f64,
    pub norm_eps: f64,
    /// Longest sequence (prompt and generated tokens) the KV cache holds.
    pub max_seq_len: usize,
    /// The LM head is the embedding matrix (BitNet b1.58 2B4T ties them).
    #[serde(default)]
    pub tied_embeddings: bool,
}

/// One ternary matmul of a layer: `m × k` weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Matmul {
    pub name: &'static str,
    pub m: usize,
    pub k: usize,
    /// The activation vector it multiplies: matmuls that share one (q, k, v; gate, up)
    /// can run as one fused pass over that vector.
    pub input: MatmulInput,
}

/// The activation vectors a layer's ternary matmuls read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatmulInput {
    /// The normalised residual before attention (q, k, v).
    AttentionIn,
    /// The attention's output after its SubLN (o).
    AttentionOut,
    /// The normalised residual before the FFN (gate, up).
    FfnIn,
    /// The FFN's hidden vector after its SubLN (down).
    FfnHidden,
}

/// Built-in models: name and TOML.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "tiny",
        r#"name = "tiny"
hidden = 64
layers = 2
heads = 4
kv_heads = 2
head_dim = 16
ffn = 128
vocab = 256
rope_theta = 10000.0
norm_eps = 1e-5
max_seq_len = 64
"#,
    ),
    (
        "bitnet-0.73b",
        r#"name = "bitnet-0.73b"
description = "BitNet b1.58 large (0.73B, the model TeLLMe runs): hidden 1536, FFN 4096, 24 layers, 16 heads of 96"
# BitNet b1.58 large (0.73B, the model TeLLMe v2 runs): LLaMA-shaped, multi-head attention,
# LM head separate from the embedding (the 0.73B count includes one of the two).
hidden = 1536
layers = 24
heads = 16
kv_heads = 16
head_dim = 96
ffn = 4096
vocab = 32000
rope_theta = 10000.0
norm_eps = 1e-5
max_seq_len = 2048
"#,
    ),
    (
        "bitnet-2b",
        r#"name = "bitnet-2b"
description = "BitNet-b1.58-2B-like decoder: hidden 2560, FFN 6912, 30 layers, 20 query / 5 KV heads of 128"
# Shaped as microsoft/bitnet-b1.58-2B-4T (config.json): GQA 20/5 heads of 128.
hidden = 2560
layers = 30
heads = 20
kv_heads = 5
head_dim = 128
ffn = 6912
vocab = 128256
rope_theta = 500000.0
norm_eps = 1e-5
max_seq_len = 4096
tied_embeddings = true
"#,
    ),
    (
        "small",
        r#"name = "small"
description = "a small decoder: hidden 512, FFN 1376, 8 layers, 8 heads of 64"
hidden = 512
layers = 8
heads = 8
kv_heads = 8
head_dim = 64
ffn = 1376
vocab = 32000
rope_theta = 10000.0
norm_eps = 1e-5
max_seq_len = 2048
"#,
    ),
];

impl ModelConfig {
    /// A built-in model by name.
    pub fn preset(name: &str) -> Result<ModelConfig, ModelError> {
        let (_, text) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ModelError::UnknownPreset(name.to_string()))?;
        ModelConfig::from_toml(text, &format!("preset {name}"))
    }

    /// A preset name, or the path of a model TOML file.
    pub fn resolve(name_or_path: &str) -> Result<ModelConfig, ModelError> {
        if PRESETS.iter().any(|(n, _)| *n == name_or_path) {
            return ModelConfig::preset(name_or_path);
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            return ModelConfig::from_path(path);
        }
        Err(ModelError::UnknownPreset(name_or_path.to_string()))
    }

    pub fn from_path(path: &Path) -> Result<ModelConfig, ModelError> {
        use std::io::Read;
        let read = |cause| ModelError::Read {
            path: path.display().to_string(),
            cause,
        };
        let not = |message: String| ModelError::Parse {
            origin: path.display().to_string(),
            message,
        };
        if path.is_dir() {
            return Err(not(
                "a directory, not a model TOML file (a Hugging Face checkpoint directory goes \
                 to --checkpoint)"
                    .into(),
            ));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.starts_with(checkpoint::GGUF_MAGIC) {
            return Err(not(
                "a GGUF file, not a model TOML file (a GGUF checkpoint goes to --checkpoint)"
                    .into(),
            ));
        }
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(not(format!(
                "longer than {MAX_CONFIG_BYTES} bytes; not a model config"
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| not("not UTF-8 text, so not a model TOML file".into()))?;
        ModelConfig::from_toml(&text, &path.display().to_string())
    }

    /// Parse and check; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<ModelConfig, ModelError> {
        let cfg: ModelConfig = toml::from_str(text).map_err(|e| ModelError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.check(origin)?;
        Ok(cfg)
    }

    /// Every shape rule the golden model, the loaders and the accelerator rely on.
    pub fn check(&self, origin: &str) -> Result<(), ModelError> {
        let bad = |key: &'static str, value: String, rule: String| {
            Err(ModelError::Invalid {
                origin: origin.to_string(),
                key,
                value,
                rule,
            })
        };
        for (key, value, hi) in [
            ("hidden", self.hidden, 1 << 16),
            ("layers", self.layers, 1024),
            ("heads", self.heads, 1024),
            ("kv_heads", self.kv_heads, 1024),
            ("head_dim", self.head_dim, 1024),
            ("ffn", self.ffn, 1 << 18),
            ("vocab", self.vocab, 1 << 20),
            ("max_seq_len", self.max_seq_len, 1 << 16),
        ] {
            if value == 0 || value > hi {
                return bad(key, value.to_string(), format!("must be in 1..={hi}"));
            }
        }
        if self.heads * self.head_dim != self.hidden {
            return bad(
                "hidden",
                self.hidden.to_string(),
                format!(
                    "must equal heads × head_dim = {} × {} = {}",
                    self.heads,
                    self.head_dim,
                    self.heads * self.head_dim
                ),
            );
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return bad(
                "kv_heads",
                self.kv_heads.to_string(),
                format!("must divide heads = {}", self.heads),
            );
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                self.head_dim.to_string(),
                "must be even (RoPE rotates pairs)".into(),
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(
                "rope_theta",
                self.rope_theta.to_string(),
                "must be a finite number > 1".into(),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return bad(
                "norm_eps",
                self.norm_eps.to_string(),
                "must be in (0, 1)".into(),
            );
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a model config always serialises")
    }

    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Width of the K and V projections (`kv_heads · head_dim`).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// The ternary matmuls of one layer, in the order a token meets them.
    pub fn layer_matmuls(&self) -> [Matmul; 7] {
        let (h, kv, f) = (self.hidden, self.kv_width(), self.ffn);
        use MatmulInput::*;
        let mm = |name, m, k, input| Matmul { name, m, k, input };
        [
            mm("q_proj", h, h, AttentionIn),
            mm("k_proj", kv, h, AttentionIn),
            mm("v_proj", kv, h, AttentionIn),
            mm("o_proj", h, h, AttentionOut),
            mm("gate_proj", f, h, FfnIn),
            mm("up_proj", f, h, FfnIn),
            mm("down_proj", h, f, FfnHidden),
        ]
    }

    /// Ternary weights in the whole model.
    pub fn ternary_weights(&self) -> u64 {
        let per_layer: usize = self.layer_matmuls().iter().map(|m| m.m * m.k).sum();
        per_layer as u64 * self.layers as u64
    }

    /// Full-precision weights: embedding, LM head (unless tied), and the norms' gains
    /// (two per layer and their SubLN pair, and the final norm).
    pub fn float_weights(&self) -> u64 {
        let embed = (self.vocab * self.hidden) as u64;
        let head = if self.tied_embeddings { 0 } else { embed };
        let norms = self.layers as u64 * (2 * self.hidden + self.hidden + self.ffn) as u64
            + self.hidden as u64;
        embed + head + norms
    }

    /// Bytes of one token's K and V in one layer's cache (int8).
    pub fn kv_bytes_per_token_per_layer(&self) -> u64 {
        2 * self.kv_width() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_shapes() {
        let large = ModelConfig::preset("bitnet-0.73b").unwrap();
        // "0.73B" counts ~679M ternary weights and one 32000 × 1536 matrix (the LM head
        // of this untied model adds 49M more full-precision weights).
        let counted = large.ternary_weights() + (large.vocab * large.hidden) as u64;
        assert!(
            (0.72e9..0.74e9).contains(&(counted as f64)),
            "0.73B preset counts {counted} weights"
        );
        // At 5 bits per 3 weights (tern's packing) the layers are ~141 MB.
        let packed_mb = large.ternary_weights() as f64 * 5.0 / 3.0 / 8.0 / 1e6;
        assert!((135.0..150.0).contains(&packed_mb), "{packed_mb} MB");
        let two = ModelConfig::preset("bitnet-2b").unwrap();
        assert_eq!((two.group(), two.kv_width()), (4, 640));
        let total = two.ternary_weights() + two.float_weights();
        assert!(
            (2.3e9..2.5e9).contains(&(total as f64)),
            "2B preset: {total}"
        );
        let tiny = ModelConfig::preset("tiny").unwrap();
        assert_eq!(
            tiny.layer_matmuls()[1],
            Matmul {
                name: "k_proj",
                m: 32,
                k: 64,
                input: MatmulInput::AttentionIn,
            }
        );
    }

    #[test]
    fn bad_shapes_are_named() {
        let base = PRESETS[0].1;
        for (from, to, key) in [
            ("hidden = 64", "hidden = 60", "hidden"),
            ("kv_heads = 2", "kv_heads = 3", "kv_heads"),
            ("head_dim = 16\n", "head_dim = 15\n", "hidden"),
            ("norm_eps = 1e-5", "norm_eps = -1.0", "norm_eps"),
            ("rope_theta = 10000.0", "rope_theta = nan", "rope_theta"),
            ("layers = 2", "layers = 0", "layers"),
        ] {
            let text = base.replace(from, to);
            assert_ne!(text, base, "{from}");
            let err = ModelConfig::from_toml(&text, "m.toml").unwrap_err();
            assert!(
                matches!(&err, ModelError::Invalid { key: k, .. } if *k == key),
                "{to}: {err}"
            );
            assert!(err.to_string().starts_with("m.toml: "), "{err}");
        }
        let err = ModelConfig::from_toml(&format!("{base}\nlayerz = 3\n"), "m.toml").unwrap_err();
        assert!(err.to_string().contains("layerz"), "{err}");
        let err = ModelConfig::resolve("bitnet-7b").unwrap_err();
        assert!(err.to_string().contains("bitnet-0.73b"), "{err}");
    }

    #[test]
    fn a_model_file_that_is_not_one_is_refused_quickly() {
        let err = ModelConfig::from_path(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("not a model config"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = ModelConfig::from_path(dir.path()).unwrap_err();
        assert!(err.to_string().contains("--checkpoint"), "{err}");
        let gguf = dir.path().join("m.gguf");
        std::fs::write(&gguf, b"GGUF\x03\0\0\0\xff\xfe").unwrap();
        let err = ModelConfig::from_path(&gguf).unwrap_err();
        assert!(err.to_string().contains("a GGUF file"), "{err}");
        let binary = dir.path().join("m.bin");
        std::fs::write(&binary, b"hidden = \xff\xfe").unwrap();
        let err = ModelConfig::from_path(&binary).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
