//! `tern.toml`: parsed once into typed structs, validated once, and from then on the
//! single source of every parameter (RTL, golden model, stream formats, reports).

use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

use crate::weights;

pub mod attention;
pub use attention::{AttentionConfig, AttentionMode, IndexRounding};

/// The accumulator widths the RTL is generated for (each is a distinct rust-hdl type).
pub const ACCUMULATOR_WIDTHS: [usize; 3] = [16, 24, 32];
/// Counters in the engine are 16 bits wide; the table memory holds two banks.
pub const MAX_CHUNKS: usize = 1 << 15;
pub const MAX_ROW_BLOCKS: usize = (1 << 16) - 1;
pub const MAX_LANES: usize = 1024;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: `{key}` = {value} is out of range: allowed {allowed}")]
    OutOfRange {
        origin: String,
        key: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "{origin}: the accumulator can overflow: K = {k} needs 8 + ceil(log2 K) + 1 = {needed} bits \
         but `engine.accumulator_bits` = {have}"
    )]
    AccumulatorOverflow {
        origin: String,
        k: usize,
        needed: usize,
        have: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Table-lookup ternary matmul: one sign-folded table per activation group.
    Tlmm,
    /// Baseline: a plain ternary multiply-accumulate per weight, same weights/cycle.
    AdderTree,
}

/// Where the per-chunk activation tables (or raw activations) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableStorage {
    /// LUT RAM (Xilinx `ram_style = "distributed"`).
    Distributed,
    /// Block RAM (`ram_style = "block"`).
    Block,
    /// Flip-flops (`ram_style = "registers"`).
    Registers,
}

impl TableStorage {
    pub fn ram_style(self) -> &'static str {
        match self {
            TableStorage::Distributed => "distributed",
            TableStorage::Block => "block",
            TableStorage::Registers => "registers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// G: activations per table group (2..=5).
    pub group_size: usize,
    /// P: output rows computed in parallel.
    pub rows_parallel: usize,
    /// Q: weight groups per row consumed each cycle.
    pub groups_per_cycle: usize,
    pub activation_bits: usize,
    pub accumulator_bits: usize,
    pub table_storage: TableStorage,
    /// Depth (in beats) of the weight FIFO in front of the lanes; a power of two.
    pub weight_buffer_depth: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Output rows of the weight matrix.
    pub m: usize,
    /// Input columns (reduction length).
    pub k: usize,
    /// Activation vectors streamed through the engine (1 = GEMV).
    pub tokens: usize,
}

/// The raw file. Use [`Config`] (validated) everywhere else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub engine: EngineConfig,
    pub workload: Workload,
    /// Board name (a file in `boards/data`), used by reports and synthesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
}

/// A validated configuration and the geometry every backend derives from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub engine: EngineConfig,
    pub workload: Workload,
    pub board: Option<String>,
    pub geometry: Geometry,
}

/// How the engine's lanes see the weight matrix. Both engine kinds share one datapath
/// shape: lanes look up `±table[index]` for a group of `lane_group` activations. The
/// adder-tree baseline is the degenerate case `lane_group = 1`, whose "table" is
/// `{0, x}`: a select, a conditional negate and an adder tree per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    /// Activations per lane lookup: G for TLMM, 1 for the adder tree.
    pub lane_group: usize,
    /// Lanes per row per cycle: Q for TLMM, Q·G for the adder tree.
    pub lanes_per_row: usize,
    /// Rows in parallel (P).
    pub rows: usize,
    /// Activations consumed per chunk (= Q·G for both kinds).
    pub chunk_activations: usize,
    /// Chunks per token: ceil(K / (Q·G)); K is zero-padded to a whole chunk.
    pub chunks: usize,
    /// Row blocks per token: ceil(M / P); M is padded with zero rows.
    pub row_blocks: usize,
    /// Entries per folded table (index 0 is the all-zero pattern and is not stored).
    pub table_entries: usize,
    /// Bits of a stored table entry.
    pub entry_bits: usize,
    /// Bits of a weight group's index; the code adds one sign bit.
    pub index_bits: usize,
    pub accumulator_bits: usize,
}

impl Geometry {
    /// Weight codes per weight beat (P × lanes).
    pub fn lanes(&self) -> usize {
        self.rows * self.lanes_per_row
    }
    /// Bits of one packed weight beat.
    pub fn weight_beat_bits(&self) -> usize {
        self.lanes() * (1 + self.index_bits)
    }
    /// Bits of one activation beat.
    pub fn activation_beat_bits(&self) -> usize {
        self.chunk_activations * 8
    }
    /// Bits of one result beat.
    pub fn result_beat_bits(&self) -> usize {
        self.rows * self.accumulator_bits
    }
    /// Stored table entries per chunk (all lanes of one row share them).
    pub fn stored_entries_per_chunk(&self) -> usize {
        self.lanes_per_row * (self.table_entries - 1)
    }
    /// Bits of on-chip table storage (two banks).
    pub fn table_memory_bits(&self) -> usize {
        2 * self.chunks * self.stored_entries_per_chunk() * self.entry_bits
    }
    /// Weight beats per token.
    pub fn weight_beats_per_token(&self) -> usize {
        self.row_blocks * self.chunks
    }
}

impl Config {
    pub fn from_path(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Parse and validate; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Config::validate(file, origin)
    }

    pub fn validate(file: ConfigFile, origin: &str) -> Result<Config, ConfigError> {
        let e = &file.engine;
        let w = &file.workload;
        let range = |key: &'static str, value: usize, lo: usize, hi: usize| {
            if value < lo || value > hi {
                Err(ConfigError::OutOfRange {
                    origin: origin.to_string(),
                    key,
                    value: value.to_string(),
                    allowed: format!("{lo}..={hi}"),
                })
            } else {
                Ok(())
            }
        };
        range("engine.group_size", e.group_size, 2, 5)?;
        range("engine.rows_parallel", e.rows_parallel, 1, 64)?;
        range("engine.groups_per_cycle", e.groups_per_cycle, 1, 64)?;
        range("engine.activation_bits", e.activation_bits, 8, 8)?;
        range("engine.weight_buffer_depth", e.weight_buffer_depth, 2, 4096)?;
        if !e.weight_buffer_depth.is_power_of_two() {
            return Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key: "engine.weight_buffer_depth",
                value: e.weight_buffer_depth.to_string(),
                allowed: "a power of two in 2..=4096".into(),
            });
        }
        if !ACCUMULATOR_WIDTHS.contains(&e.accumulator_bits) {
            return Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key: "engine.accumulator_bits",
                value: e.accumulator_bits.to_string(),
                allowed: format!("one of {ACCUMULATOR_WIDTHS:?}"),
            });
        }
        range("workload.m", w.m, 1, 1 << 20)?;
        range("workload.k", w.k, 1, 1 << 20)?;
        range("workload.tokens", w.tokens, 1, 1 << 16)?;

        let needed = 8 + ceil_log2(w.k) + 1;
        if needed > e.accumulator_bits {
            return Err(ConfigError::AccumulatorOverflow {
                origin: origin.to_string(),
                k: w.k,
                needed,
                have: e.accumulator_bits,
            });
        }

        let (lane_group, lanes_per_row) = match e.kind {
            EngineKind::Tlmm => (e.group_size, e.groups_per_cycle),
            EngineKind::AdderTree => (1, e.groups_per_cycle * e.group_size),
        };
        let lanes = e.rows_parallel * lanes_per_row;
        if lanes > MAX_LANES {
            return Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key: "engine.rows_parallel",
                value: format!(
                    "{} (× {lanes_per_row} lanes per row = {lanes} lanes)",
                    e.rows_parallel
                ),
                allowed: format!("at most {MAX_LANES} lanes in total"),
            });
        }
        let chunk_activations = e.groups_per_cycle * e.group_size;
        let geometry = Geometry {
            lane_group,
            lanes_per_row,
            rows: e.rows_parallel,
            chunk_activations,
            chunks: w.k.div_ceil(chunk_activations),
            row_blocks: w.m.div_ceil(e.rows_parallel),
            table_entries: weights::table_entries(lane_group),
            entry_bits: weights::entry_bits(lane_group),
            index_bits: weights::index_bits(lane_group),
            accumulator_bits: e.accumulator_bits,
        };
        if geometry.chunks > MAX_CHUNKS {
            return Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key: "workload.k",
                value: w.k.to_string(),
                allowed: format!(
                    "at most {} (= {MAX_CHUNKS} chunks of Q·G = {chunk_activations})",
                    MAX_CHUNKS * chunk_activations
                ),
            });
        }
        if geometry.row_blocks > MAX_ROW_BLOCKS {
            return Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key: "workload.m",
                value: w.m.to_string(),
                allowed: format!(
                    "at most {} (= {MAX_ROW_BLOCKS} blocks of P rows)",
                    MAX_ROW_BLOCKS * e.rows_parallel
                ),
            });
        }
        Ok(Config {
            engine: file.engine,
            workload: file.workload,
            board: file.board,
            geometry,
        })
    }

    pub fn to_toml(&self) -> String {
        let file = ConfigFile {
            engine: self.engine.clone(),
            workload: self.workload.clone(),
            board: self.board.clone(),
        };
        toml::to_string(&file).expect("a validated config always serialises")
    }

    /// Clocks for the whole workload with streams that never stall, counted as the
    /// co-simulation harness counts them (from the first clock after reset to the clock
    /// that accepts the last result, inclusive). The first token's tables take one clock
    /// per chunk before any weight can issue; after that one weight beat issues per clock
    /// (the next token's tables are built in the other bank meanwhile); the last beat's
    /// result appears `PIPELINE_LATENCY` clocks after it enters the FIFO. Checked
    /// against Verilator in `sim/tests/tlmm.rs`.
    pub fn streaming_cycles(&self) -> u64 {
        let g = &self.geometry;
        let beats = (self.workload.tokens * g.row_blocks * g.chunks) as u64;
        g.chunks as u64 + beats + crate::tlmm::PIPELINE_LATENCY as u64 - 1
    }

    /// Ideal cycles for the whole workload: every lane busy every cycle.
    pub fn ideal_cycles(&self) -> f64 {
        let e = &self.engine;
        let w = &self.workload;
        (w.m * w.k * w.tokens) as f64 / (e.rows_parallel * e.groups_per_cycle * e.group_size) as f64
    }
}

/// Any design tern can generate: a file with an `[attention]` table is an attention
/// engine, anything else a matmul engine (TLMM or adder tree).
#[derive(Debug, Clone, PartialEq)]
pub enum DesignConfig {
    Matmul(Config),
    Attention(AttentionConfig),
}

impl DesignConfig {
    pub fn from_path(path: &Path) -> Result<DesignConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        DesignConfig::from_toml(&text, &path.display().to_string())
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<DesignConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if table.contains_key("attention") {
            AttentionConfig::from_toml(text, origin).map(DesignConfig::Attention)
        } else {
            Config::from_toml(text, origin).map(DesignConfig::Matmul)
        }
    }

    pub fn to_toml(&self) -> String {
        match self {
            DesignConfig::Matmul(c) => c.to_toml(),
            DesignConfig::Attention(c) => c.to_toml(),
        }
    }

    pub fn board(&self) -> Option<&str> {
        match self {
            DesignConfig::Matmul(c) => c.board.as_deref(),
            DesignConfig::Attention(c) => c.board.as_deref(),
        }
    }

    pub fn matmul(&self) -> Option<&Config> {
        match self {
            DesignConfig::Matmul(c) => Some(c),
            DesignConfig::Attention(_) => None,
        }
    }

    pub fn attention(&self) -> Option<&AttentionConfig> {
        match self {
            DesignConfig::Attention(c) => Some(c),
            DesignConfig::Matmul(_) => None,
        }
    }
}

pub fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[engine]
kind = "tlmm"
group_size = 3
rows_parallel = 4
groups_per_cycle = 2
activation_bits = 8
accumulator_bits = 24
table_storage = "distributed"
weight_buffer_depth = 8

[workload]
m = 64
k = 100
tokens = 2
"#;

    #[test]
    fn good_config_derives_geometry() {
        let c = Config::from_toml(GOOD, "good").unwrap();
        let g = c.geometry;
        assert_eq!((g.lane_group, g.lanes_per_row, g.rows), (3, 2, 4));
        assert_eq!(g.chunks, 17); // ceil(100 / 6)
        assert_eq!(g.row_blocks, 16);
        assert_eq!(g.table_entries, 14);
        assert_eq!(g.index_bits, 4);
        // The round trip through TOML is lossless.
        assert_eq!(Config::from_toml(&c.to_toml(), "again").unwrap(), c);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = GOOD.replace("tokens = 2", "tokens = 2\nbatch = 3");
        let err = Config::from_toml(&text, "f.toml").unwrap_err().to_string();
        assert!(err.contains("batch"), "{err}");
        assert!(err.contains("f.toml"), "{err}");
    }

    #[test]
    fn out_of_range_names_key_and_range() {
        let text = GOOD.replace("group_size = 3", "group_size = 6");
        let err = Config::from_toml(&text, "f.toml").unwrap_err().to_string();
        assert!(
            err.contains("engine.group_size") && err.contains("2..=5"),
            "{err}"
        );
    }

    #[test]
    fn overflowing_accumulator_is_rejected() {
        // 8 + ceil(log2 300) + 1 = 18 > 16
        let text = GOOD
            .replace("accumulator_bits = 24", "accumulator_bits = 16")
            .replace("k = 100", "k = 300");
        let err = Config::from_toml(&text, "f.toml").unwrap_err();
        assert!(
            matches!(err, ConfigError::AccumulatorOverflow { needed: 18, .. }),
            "{err}"
        );
        // ... and K = 128 (needs 16) is accepted.
        let text = text.replace("k = 300", "k = 128");
        Config::from_toml(&text, "f.toml").unwrap();
    }

    #[test]
    fn wrong_type_and_bad_enum_are_errors_not_panics() {
        for (from, to) in [
            ("m = 64", "m = \"big\""),
            ("kind = \"tlmm\"", "kind = \"systolic\""),
            ("m = 64", "m = -4"),
            ("[workload]", "[workload"),
        ] {
            let text = GOOD.replace(from, to);
            assert!(Config::from_toml(&text, "f").is_err(), "{to} accepted");
        }
    }

    #[test]
    fn ceil_log2_matches_definition() {
        for n in 1..5000usize {
            let c = ceil_log2(n);
            assert!(
                1usize << c >= n && (c == 0 || 1usize << (c - 1) < n),
                "n = {n}"
            );
        }
    }
}
