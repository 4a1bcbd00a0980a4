//! What a model asks of the accelerator per token: the ternary matmuls of one decode
//! step and its attention heads. A model's workload is derived from its
//! `tern_model::ModelConfig` (the one description of a transformer); a workload file
//! lists matmuls for shapes that are not a BitNet model. How an engine runs them is the
//! performance model's (`crate::performance`).

use serde::{Deserialize, Serialize};
use std::path::Path;

use tern_model::ModelConfig;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matmul {
    pub name: String,
    /// Output rows and inputs of the layer's weight matrix.
    pub m: usize,
    pub k: usize,
    /// How many such matrices each transformer layer has.
    #[serde(default = "one")]
    pub per_layer: usize,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelWorkload {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub layers: usize,
    pub matmuls: Vec<Matmul>,
    /// The attention's heads, for searching an attention engine beside the matmuls
    /// (`tern dse --attention-space`); a workload without it is matmuls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionShape>,
}

/// Multi-head attention as the model runs it (GQA: `heads / kv_heads` query heads
/// share a KV head).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl AttentionShape {
    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelWorkloadError {
    #[error("cannot read workload {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl ModelWorkload {
    /// A model preset (`tern model` lists them), or a file: a model TOML (it has
    /// `hidden`) or a workload TOML (it has `matmuls`).
    pub fn resolve(name_or_path: &str) -> Result<ModelWorkload, ModelWorkloadError> {
        if let Ok(model) = ModelConfig::preset(name_or_path) {
            return Ok(ModelWorkload::from_model(&model));
        }
        let path = Path::new(name_or_path);
        let text = tern_hdl::files::read_text(path).map_err(|cause| ModelWorkloadError::Read {
            path: format!(
                "{name_or_path} (not a model preset either: {})",
                tern_model::PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cause,
        })?;
        let is_model = toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.contains_key("hidden"));
        if is_model {
            let model = ModelConfig::from_toml(&text, name_or_path).map_err(|e| {
                ModelWorkloadError::Invalid {
                    origin: name_or_path.into(),
                    message: e.to_string(),
                }
            })?;
            return Ok(ModelWorkload::from_model(&model));
        }
        ModelWorkload::from_toml(&text, name_or_path)
    }

    /// A model's decode step: its layers' ternary matmuls, consecutive ones of one shape
    /// that read one input as one entry, named as BitNet's code names fused projections
    /// (q, k, v of one shape are `qkv_proj` ×3; gate and up are `gate_up_proj` ×2), and
    /// its attention heads.
    pub fn from_model(model: &ModelConfig) -> ModelWorkload {
        let mut groups: Vec<Vec<tern_model::Matmul>> = vec![];
        for mm in model.layer_matmuls() {
            match groups.last_mut() {
                Some(g) if (g[0].m, g[0].k, g[0].input) == (mm.m, mm.k, mm.input) => g.push(mm),
                _ => groups.push(vec![mm]),
            }
        }
        let matmuls = groups
            .iter()
            .map(|g| {
                let stems: Vec<&str> = g
                    .iter()
                    .map(|mm| mm.name.trim_end_matches("_proj"))
                    .collect();
                let joiner = if stems.iter().all(|s| s.len() == 1) {
                    ""
                } else {
                    "_"
                };
                Matmul {
                    name: format!("{}_proj", stems.join(joiner)),
                    m: g[0].m,
                    k: g[0].k,
                    per_layer: g.len(),
                }
            })
            .collect();
        ModelWorkload {
            name: model.name.clone(),
            description: model.description.clone(),
            layers: model.layers,
            matmuls,
            attention: Some(AttentionShape {
                heads: model.heads,
                kv_heads: model.kv_heads,
                head_dim: model.head_dim,
            }),
        }
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<ModelWorkload, ModelWorkloadError> {
        let invalid = |message: String| ModelWorkloadError::Invalid {
            origin: origin.into(),
            message,
        };
        let w: ModelWorkload =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        if w.layers == 0 || w.matmuls.is_empty() {
            return Err(invalid(
                "a workload needs layers ≥ 1 and at least one matmul".into(),
            ));
        }
        for mm in &w.matmuls {
            if mm.m == 0 || mm.k == 0 || mm.per_layer == 0 || mm.m > 1 << 20 || mm.k > 1 << 20 {
                return Err(invalid(format!(
                    "matmul {}: m, k and per_layer must be in 1..=2^20",
                    mm.name
                )));
            }
        }
        if let Some(a) = &w.attention {
            if a.heads == 0
                || a.kv_heads == 0
                || a.head_dim == 0
                || a.heads > 1 << 12
                || a.head_dim > 1 << 12
                || !a.heads.is_multiple_of(a.kv_heads)
            {
                return Err(invalid(format!(
                    "attention: heads ({}), kv_heads ({}) and head_dim ({}) must be in 1..=4096, \
                     heads a multiple of kv_heads",
                    a.heads, a.kv_heads, a.head_dim
                )));
            }
        }
        Ok(w)
    }

    /// Ternary weights read per decoded token.
    pub fn weights_per_token(&self) -> u64 {
        self.layers as u64
            * self
                .matmuls
                .iter()
                .map(|m| (m.m * m.k * m.per_layer) as u64)
                .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_workloads_parse_and_count_weights() {
        let w = ModelWorkload::resolve("bitnet-2b").unwrap();
        // per layer: 2560² ·2 (q, o) + 640·2560·2 (k, v) + 6912·2560·3 (gate, up, down)
        let per_layer = 2560u64 * 2560 * 2 + 640 * 2560 * 2 + 6912 * 2560 * 3;
        assert_eq!(w.weights_per_token(), 30 * per_layer);
        assert!(ModelWorkload::resolve("small").is_ok());
        // 0.73B: 4·1536² + 3·4096·1536 per layer, 24 layers: 679M ternary weights.
        let large = ModelWorkload::resolve("bitnet-0.73b").unwrap();
        assert_eq!(
            large.weights_per_token(),
            24 * (4 * 1536 * 1536 + 3 * 4096 * 1536)
        );
        let err = ModelWorkload::resolve("nope.toml").unwrap_err().to_string();
        assert!(err.contains("bitnet-2b"), "{err}");
        assert_eq!(w.attention.unwrap().group(), 4, "2B: GQA 20/5");
        let bad = "name = \"x\"\nlayers = 1\nmatmuls = [{ name = \"a\", m = 1, k = 1 }]\n\
                   attention = { heads = 6, kv_heads = 4, head_dim = 64 }\n";
        let err = ModelWorkload::from_toml(bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.toml") && err.contains("multiple of kv_heads"),
            "{err}"
        );
    }

    /// The DSE reports in docs/dse were made with workloads written out by hand; the
    /// ones derived from the model presets are the same.
    #[test]
    fn workloads_derived_from_the_models_match_the_committed_dse_reports() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dse");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let report = entry.unwrap().path().join("dse.json");
            let Ok(text) = std::fs::read_to_string(&report) else {
                continue;
            };
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let recorded: ModelWorkload = serde_json::from_value(json["workload"].clone()).unwrap();
            let mut derived = ModelWorkload::resolve(&recorded.name).unwrap();
            // Reports made before workloads carried attention heads record none.
            if recorded.attention.is_none() {
                derived.attention = None;
            }
            assert_eq!(derived, recorded, "{}", report.display());
            seen.insert(recorded.name);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["bitnet-0.73b", "bitnet-2b", "small"],
            "reports read from {}",
            dir.display()
        );
    }

    #[test]
    fn a_model_file_is_a_workload_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let text = tern_model::ModelConfig::preset("bitnet-2b")
            .unwrap()
            .to_toml();
        std::fs::write(&path, text).unwrap();
        let w = ModelWorkload::resolve(path.to_str().unwrap()).unwrap();
        assert_eq!(w, ModelWorkload::resolve("bitnet-2b").unwrap());
        std::fs::write(&path, "name = \"x\"\nhidden = 0\n").unwrap();
        let err = ModelWorkload::resolve(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml"), "{err}");
    }
}
