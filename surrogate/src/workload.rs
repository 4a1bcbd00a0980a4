//! Workloads for design-space exploration: the ternary matmuls of one decode step of a
//! transformer, and how an engine sized for a K tile runs them. A model's workload is
//! derived from its `tern_model::ModelConfig` (the one description of a transformer);
//! a workload file lists matmuls for shapes that are not a BitNet model.
//!
//! An engine is built for a `K` tile (its table memory holds `K / (Q·G)` chunks); a
//! layer with `k` inputs runs as `ceil(k / K)` passes whose int32 partial sums the host
//! adds (exact). Each pass streams the layer's `m` rows once per token.

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
pub struct Workload {
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
pub enum WorkloadError {
    #[error("cannot read workload {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Workload {
    /// A model preset (`tern model` lists them), or a file: a model TOML (it has
    /// `hidden`) or a workload TOML (it has `matmuls`).
    pub fn resolve(name_or_path: &str) -> Result<Workload, WorkloadError> {
        if let Ok(model) = ModelConfig::preset(name_or_path) {
            return Ok(Workload::from_model(&model));
        }
        let path = Path::new(name_or_path);
        let text = tern_hdl::files::read_text(path).map_err(|cause| WorkloadError::Read {
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
                WorkloadError::Invalid {
                    origin: name_or_path.into(),
                    message: e.to_string(),
                }
            })?;
            return Ok(Workload::from_model(&model));
        }
        Workload::from_toml(&text, name_or_path)
    }

    /// A model's decode step: its layers' ternary matmuls, consecutive ones of one shape
    /// that read one input as one entry, named as BitNet's code names fused projections
    /// (q, k, v of one shape are `qkv_proj` ×3; gate and up are `gate_up_proj` ×2), and
    /// its attention heads.
    pub fn from_model(model: &ModelConfig) -> Workload {
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
        Workload {
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

    pub fn from_toml(text: &str, origin: &str) -> Result<Workload, WorkloadError> {
        let invalid = |message: String| WorkloadError::Invalid {
            origin: origin.into(),
            message,
        };
        let w: Workload =
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

/// The decode-rate projection of one engine on one workload: a roofline of compute
/// (clocks at a clock rate) and weight streaming (bytes at the board's bandwidth).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Projection {
    /// Engine clocks per token (all passes of all matmuls of all layers).
    pub cycles_per_token: f64,
    pub clock_mhz: f64,
    /// Where the clock came from: `fmax (predicted)`, `fmax (nextpnr)` or
    /// `board clock (no router)`.
    pub clock_source: String,
    pub compute_s: f64,
    /// Packed weight bytes streamed per token.
    pub weight_bytes: f64,
    pub memory_gbyte_per_s: f64,
    /// What the top's read port can move: one bus word per clock (none: not limited).
    #[serde(default)]
    pub bus_gbyte_per_s: Option<f64>,
    /// Weight bytes at the slower of the memory and the bus.
    pub memory_s: f64,
    pub tokens_per_s: f64,
    /// `compute`, `memory` (the board's DDR) or `bus` (the top's read port).
    pub bound: String,
}

/// Bytes of packed weights: `1 + index bits` per group of `g` weights.
pub fn packed_bytes(weights: u64, group: usize) -> f64 {
    let index_bits = tern_hdl::weights::index_bits(group);
    weights as f64 * (1 + index_bits) as f64 / group as f64 / 8.0
}

/// GB/s of a port that moves `bytes_per_clock` at `clock_mhz`.
pub fn port_gbyte_per_s(bytes_per_clock: f64, clock_mhz: f64) -> f64 {
    bytes_per_clock * clock_mhz / 1e3
}

/// The fraction of clocks the top's read port can be busy against a memory of
/// `latency_clocks`: `reads_in_flight` bursts of `burst_beats` must cover a burst's
/// round trip (Little's law), or the port idles while it waits.
pub fn feeder_fraction(reads_in_flight: usize, burst_beats: usize, latency_clocks: f64) -> f64 {
    let in_flight = (reads_in_flight * burst_beats) as f64;
    (in_flight / (burst_beats as f64 + latency_clocks)).min(1.0)
}

/// The roofline of one token: engine clocks at `clock_mhz` against the weight bytes at
/// the slower of the board's memory and the top's bus (`bus_bytes_per_clock`, if given:
/// the bus width times [`feeder_fraction`]). The simulated board (`cargo bench --bench
/// top`) runs within ~2 % of this bound.
pub fn project(
    cycles_per_token: f64,
    clock_mhz: f64,
    clock_source: &str,
    weight_bytes: f64,
    memory_gbyte_per_s: f64,
    bus_bytes_per_clock: Option<f64>,
) -> Projection {
    let bus = bus_bytes_per_clock.map(|b| port_gbyte_per_s(b, clock_mhz));
    let stream = bus.map_or(memory_gbyte_per_s, |b| b.min(memory_gbyte_per_s));
    let compute_s = cycles_per_token / (clock_mhz * 1e6);
    let memory_s = weight_bytes / (stream * 1e9);
    let slowest = compute_s.max(memory_s);
    Projection {
        cycles_per_token,
        clock_mhz,
        clock_source: clock_source.into(),
        compute_s,
        weight_bytes,
        memory_gbyte_per_s,
        bus_gbyte_per_s: bus,
        memory_s,
        tokens_per_s: if slowest > 0.0 { 1.0 / slowest } else { 0.0 },
        bound: if compute_s >= memory_s {
            "compute".into()
        } else if bus.is_some_and(|b| b < memory_gbyte_per_s) {
            "bus".into()
        } else {
            "memory".into()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_workloads_parse_and_count_weights() {
        let w = Workload::resolve("bitnet-2b").unwrap();
        // per layer: 2560² ·2 (q, o) + 640·2560·2 (k, v) + 6912·2560·3 (gate, up, down)
        let per_layer = 2560u64 * 2560 * 2 + 640 * 2560 * 2 + 6912 * 2560 * 3;
        assert_eq!(w.weights_per_token(), 30 * per_layer);
        assert!(Workload::resolve("small").is_ok());
        // 0.73B: 4·1536² + 3·4096·1536 per layer, 24 layers: 679M ternary weights.
        let large = Workload::resolve("bitnet-0.73b").unwrap();
        assert_eq!(
            large.weights_per_token(),
            24 * (4 * 1536 * 1536 + 3 * 4096 * 1536)
        );
        let err = Workload::resolve("nope.toml").unwrap_err().to_string();
        assert!(err.contains("bitnet-2b"), "{err}");
        assert_eq!(w.attention.unwrap().group(), 4, "2B: GQA 20/5");
        let bad = "name = \"x\"\nlayers = 1\nmatmuls = [{ name = \"a\", m = 1, k = 1 }]\n\
                   attention = { heads = 6, kv_heads = 4, head_dim = 64 }\n";
        let err = Workload::from_toml(bad, "bad.toml")
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
            let recorded: Workload = serde_json::from_value(json["workload"].clone()).unwrap();
            let mut derived = Workload::resolve(&recorded.name).unwrap();
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
        let w = Workload::resolve(path.to_str().unwrap()).unwrap();
        assert_eq!(w, Workload::resolve("bitnet-2b").unwrap());
        std::fs::write(&path, "name = \"x\"\nhidden = 0\n").unwrap();
        let err = Workload::resolve(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml"), "{err}");
    }

    #[test]
    fn roofline_picks_the_slower_term() {
        // 1e6 clocks at 100 MHz = 10 ms; 1 GB at 10 GB/s = 100 ms → memory bound, 10 tok/s.
        let p = project(1e6, 100.0, "board clock (no router)", 1e9, 10.0, None);
        assert_eq!(p.bound, "memory");
        assert!((p.tokens_per_s - 10.0).abs() < 1e-9);
        let p = project(1e8, 100.0, "x", 1e9, 10.0, None);
        assert_eq!(p.bound, "compute");
        assert!((p.tokens_per_s - 1.0).abs() < 1e-9);
        // A 32-byte bus at 100 MHz moves 3.2 GB/s: slower than the 10 GB/s memory.
        let p = project(1e6, 100.0, "x", 1e9, 10.0, Some(32.0));
        assert_eq!(p.bound, "bus");
        assert!((p.tokens_per_s - 3.2).abs() < 1e-9);
        // A 128-byte bus (12.8 GB/s) leaves the memory as the bound.
        let p = project(1e6, 100.0, "x", 1e9, 10.0, Some(128.0));
        assert_eq!(p.bound, "memory");
    }

    #[test]
    fn too_few_reads_in_flight_idle_the_bus() {
        // Two bursts of 64 beats cover a 36-clock round trip; two of 16 do not.
        assert_eq!(feeder_fraction(2, 64, 36.0), 1.0);
        let f = feeder_fraction(2, 16, 36.0);
        assert!((f - 32.0 / 52.0).abs() < 1e-12, "{f}");
        assert_eq!(feeder_fraction(4, 16, 36.0), 1.0);
    }
}
