//! `tern.toml`: parsed once into typed structs, validated once, and from then on the
//! single source of every parameter (RTL, golden model, stream formats, cycle model,
//! reports). [`ConfigBuilder`] builds the same structs from code (tests, sweeps).

use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

use crate::bits::{ceil_log2, partial_sum_bits, signed_bits};
use crate::weights;

pub mod accelerator;
pub mod attention;
pub use attention::{AttentionConfig, AttentionConfigBuilder, AttentionMode, IndexRounding};

/// Widths a result field may have in the result stream (each is a rust-hdl port type).
/// The engine accumulates internally at exactly the width its values need.
pub const ACCUMULATOR_WIDTHS: [usize; 3] = [16, 24, 32];
/// Rows in parallel (P).
pub const MAX_ROWS: usize = 128;
/// Weight groups per row per clock (Q).
pub const MAX_GROUPS_PER_CYCLE: usize = 64;
/// Tokens whose tables are held at once (T_b).
pub const MAX_TOKEN_BLOCK: usize = 64;
/// A sane generation size: rust-hdl, Verilator and Yosys all scale with it.
pub const MAX_WEIGHTS_PER_CLOCK: usize = 16384;
/// Addresses and counters of the engine's memories are 16 bits wide.
pub const MAX_MEMORY_DEPTH: usize = 1 << 16;
/// Adder levels between pipeline registers in the row trees.
pub const MAX_TREE_STAGE_LEVELS: usize = 16;

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
    #[error("{origin}: {message}")]
    Unsupported { origin: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Table-lookup ternary matmul: one sign-folded table per activation group.
    Tlmm,
    /// Baseline: a plain ternary multiply-accumulate per weight, same weights/cycle.
    AdderTree,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Tlmm => "tlmm",
            EngineKind::AdderTree => "adder-tree",
        }
    }
}

/// Where the tables of the current chunk live and how a lane reads its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableStorage {
    /// Every lane has its own copy of its group's table in LUT RAM, read asynchronously
    /// at the weight index; all copies are written by one broadcast write, one entry
    /// per clock (TLMM only; the default).
    LaneLutram,
    /// One copy per lane group in flip-flops; a multiplexer per lane selects the entry.
    Registers,
    /// One copy per lane group in LUT RAM (registered read of the whole table); a
    /// multiplexer per lane.
    Distributed,
    /// One copy per lane group in block RAM; a multiplexer per lane.
    Block,
}

impl TableStorage {
    pub fn name(self) -> &'static str {
        match self {
            TableStorage::LaneLutram => "lane-lutram",
            TableStorage::Registers => "registers",
            TableStorage::Distributed => "distributed",
            TableStorage::Block => "block",
        }
    }

    /// The `ram_style` of a memory holding one table copy per lane group.
    pub fn ram_style(self) -> &'static str {
        match self {
            TableStorage::LaneLutram | TableStorage::Distributed => "distributed",
            TableStorage::Block => "block",
            TableStorage::Registers => "registers",
        }
    }

    /// The default for an engine kind: per-lane LUT-RAM copies for the TLMM; the adder
    /// tree reads raw activations, held in registers.
    pub fn default_for(kind: EngineKind) -> TableStorage {
        match kind {
            EngineKind::Tlmm => TableStorage::LaneLutram,
            EngineKind::AdderTree => TableStorage::Registers,
        }
    }
}

fn default_activation_bits() -> usize {
    8
}
fn default_table_banks() -> usize {
    2
}
fn default_token_block() -> usize {
    1
}
fn default_tree_stage_levels() -> usize {
    2
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
    /// Bits of an activation (8; the only width the RTL implements).
    #[serde(default = "default_activation_bits")]
    pub activation_bits: usize,
    /// Width of a result field in the result stream (16, 24 or 32).
    pub accumulator_bits: usize,
    /// Where the current chunk's tables live; default by kind ([`TableStorage::default_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_storage: Option<TableStorage>,
    /// 2: the next chunk's tables are built while the lanes read the current ones;
    /// 1: half the table memory, and the lanes wait while a table is built.
    #[serde(default = "default_table_banks")]
    pub table_banks: usize,
    /// T_b: tokens whose tables are held at once; each weight beat serves all tokens of
    /// a block before the next beat, so the weights are read once per block (prefill).
    #[serde(default = "default_token_block")]
    pub token_block: usize,
    /// Adder levels between pipeline registers in the row adder trees.
    #[serde(default = "default_tree_stage_levels")]
    pub tree_stage_levels: usize,
    /// Depth (in beats) of the weight FIFO in front of the lanes: 0 (none: the held
    /// beat register takes beats straight from the stream) or a power of two.
    #[serde(default)]
    pub weight_buffer_depth: usize,
}

impl EngineConfig {
    pub fn storage(&self) -> TableStorage {
        self.table_storage
            .unwrap_or(TableStorage::default_for(self.kind))
    }

    /// Weights consumed per clock (P·Q·G), both kinds.
    pub fn weights_per_clock(&self) -> usize {
        self.rows_parallel * self.groups_per_cycle * self.group_size
    }

    /// One line naming every engine parameter, for reports and messages.
    pub fn summary(&self) -> String {
        format!(
            "{} G={} P={} Q={} ({} weights/clock) tables={} banks={} Tb={} stage-levels={} fifo={} acc={}",
            self.kind.name(),
            self.group_size,
            self.rows_parallel,
            self.groups_per_cycle,
            self.weights_per_clock(),
            self.storage().name(),
            self.table_banks,
            self.token_block,
            self.tree_stage_levels,
            self.weight_buffer_depth,
            self.accumulator_bits
        )
    }
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
    /// The accelerator top's memory interface (`tern verilog --top`, the boards).
    #[serde(default, skip_serializing_if = "TopConfig::is_default")]
    pub top: TopConfig,
}

fn default_bus_bits() -> usize {
    256
}
fn default_burst_beats() -> usize {
    64
}
fn default_reads_in_flight() -> usize {
    4
}
fn default_memory_mib() -> usize {
    1024
}

/// `[top]`: the AXI4 master the top reads weights and activations and writes results
/// through (see `hdl::top`). Not part of the engine: it changes the top, not the
/// engine's DESIGN_ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopConfig {
    /// Data width of `m_axi_gmem`: 64, 128, 256 or 512 bits.
    #[serde(default = "default_bus_bits")]
    pub bus_bits: usize,
    /// Longest INCR burst the master issues (beats, a power of two, 2..=256).
    #[serde(default = "default_burst_beats")]
    pub burst_beats: usize,
    /// Read bursts in flight (the read buffer holds this many whole bursts).
    #[serde(default = "default_reads_in_flight")]
    pub reads_in_flight: usize,
    /// Memory the kernel addresses, MiB (what `MEMORY_MIB` reads; the simulated board's
    /// DDR model has this size).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: usize,
}

impl Default for TopConfig {
    fn default() -> Self {
        TopConfig {
            bus_bits: default_bus_bits(),
            burst_beats: default_burst_beats(),
            reads_in_flight: default_reads_in_flight(),
            memory_mib: default_memory_mib(),
        }
    }
}

impl TopConfig {
    pub fn is_default(&self) -> bool {
        *self == TopConfig::default()
    }
    pub fn bus_bytes(&self) -> usize {
        self.bus_bits / 8
    }
    pub fn memory_bytes(&self) -> u64 {
        (self.memory_mib as u64) << 20
    }

    /// Check every key against what the top can be generated for.
    pub fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: usize, allowed: &str| {
            Err(ConfigError::OutOfRange {
                origin: origin.to_string(),
                key,
                value: value.to_string(),
                allowed: allowed.to_string(),
            })
        };
        if ![64, 128, 256, 512].contains(&self.bus_bits) {
            return bad("top.bus_bits", self.bus_bits, "64, 128, 256 or 512");
        }
        if !self.burst_beats.is_power_of_two() || !(2..=256).contains(&self.burst_beats) {
            return bad(
                "top.burst_beats",
                self.burst_beats,
                "a power of two in 2..=256",
            );
        }
        if !(1..=16).contains(&self.reads_in_flight) {
            return bad("top.reads_in_flight", self.reads_in_flight, "1..=16");
        }
        // 16 GiB: the readers count a run's bus words in 32 bits (2^34 / 8 < 2^32), and
        // the simulated DDR keeps a pointer per 64 KiB page.
        if !(1..=1 << 14).contains(&self.memory_mib) {
            return bad("top.memory_mib", self.memory_mib, "1..=16384");
        }
        Ok(())
    }
}

/// A validated configuration and the geometry every backend derives from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub engine: EngineConfig,
    pub workload: Workload,
    pub board: Option<String>,
    pub top: TopConfig,
    pub geometry: Geometry,
}

/// How the engine's lanes see the weight matrix, and every size the RTL, the stream
/// formats and the cycle model derive from the config. Both engine kinds share one
/// datapath: lanes look up an entry of a table of `lane_group` activations. The adder
/// tree is the case `lane_group = 1`, whose "table" is `{0, x}`.
///
/// `K` and `M` are baked in: the chunk and row-block counts are constants of the
/// generated core, not runtime values (the token count is a runtime value).
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
    /// Entries per folded table (entry 0 is the all-zero pattern).
    pub table_entries: usize,
    /// Bits of a table entry (a lane's value): `8 + ceil(log2 G)`; 8 for the adder tree.
    pub entry_bits: usize,
    /// Bits of a weight group's index; the code adds one sign bit.
    pub index_bits: usize,
    /// Bits of a result field in the result stream.
    pub accumulator_bits: usize,
    /// Bits the accumulators need: every sum of `±128` over the padded K fits.
    pub accumulator_internal_bits: usize,
    pub storage: TableStorage,
    /// Table banks (1 or 2).
    pub table_banks: usize,
    /// T_b: tokens per block.
    pub token_block: usize,
    /// Clocks to write one token's tables of one chunk: one entry per clock into
    /// per-lane LUT RAM (`table_entries`), or one whole table word (1).
    pub build_clocks: usize,
    /// Adder levels of a row tree: ceil(log2 lanes_per_row).
    pub tree_levels: usize,
    /// Adder levels between pipeline registers.
    pub tree_stage_levels: usize,
    /// Weight FIFO depth (0: none).
    pub weight_buffer_depth: usize,
}

impl Geometry {
    /// Weight codes per weight beat (P × lanes).
    pub fn lanes(&self) -> usize {
        self.rows * self.lanes_per_row
    }
    /// Bits of one weight code: sign and index.
    pub fn code_bits(&self) -> usize {
        1 + self.index_bits
    }
    /// Bits of one packed weight beat.
    pub fn weight_beat_bits(&self) -> usize {
        self.lanes() * self.code_bits()
    }
    /// Bits of one activation beat.
    pub fn activation_beat_bits(&self) -> usize {
        self.chunk_activations * 8
    }
    /// Bits of one result beat.
    pub fn result_beat_bits(&self) -> usize {
        self.rows * self.accumulator_bits
    }
    /// Weight beats in the matrix (read once per token block).
    pub fn weight_beats_per_token(&self) -> usize {
        self.row_blocks * self.chunks
    }
    /// Weights consumed per clock (P·Q·G).
    pub fn weights_per_clock(&self) -> usize {
        self.lanes() * self.lane_group
    }
    /// Entries a per-lane table copy holds for one token: the index space, 2^index_bits.
    pub fn table_slots(&self) -> usize {
        1 << self.index_bits
    }
    /// Token slots of a table bank: T_b rounded up to a power of two (address bits).
    pub fn token_slots(&self) -> usize {
        1 << ceil_log2(self.token_block)
    }
    /// Depth of one per-lane LUT-RAM table copy, addressed `{bank, token, index}`.
    pub fn lane_table_depth(&self) -> usize {
        self.table_banks * self.token_slots() * self.table_slots()
    }
    /// Stored entries of one lane group's table in a shared copy (entry 0 is not stored).
    pub fn stored_entries(&self) -> usize {
        self.table_entries - 1
    }
    /// Bits of on-chip table storage.
    pub fn table_memory_bits(&self) -> usize {
        match self.storage {
            TableStorage::LaneLutram => self.lanes() * self.lane_table_depth() * self.entry_bits,
            _ => {
                self.table_banks
                    * self.token_slots()
                    * self.lanes_per_row
                    * self.stored_entries()
                    * self.entry_bits
            }
        }
    }
    /// Depth of the activation buffer: two banks of a token block's activations.
    pub fn activation_buffer_depth(&self) -> usize {
        2 * self.token_block * self.chunks
    }
    pub fn activation_buffer_bits(&self) -> usize {
        self.activation_buffer_depth() * self.activation_beat_bits()
    }
    /// Depth of the accumulator memory: one word of P accumulators per (row block, token).
    pub fn accumulator_memory_depth(&self) -> usize {
        self.token_block * self.row_blocks
    }
    pub fn accumulator_memory_bits(&self) -> usize {
        self.accumulator_memory_depth() * self.rows * self.accumulator_internal_bits
    }
    /// Whether a pipeline register follows tree level `level` (0 = the lane values,
    /// `tree_levels` = the root, whose register is the accumulate stage's input). The
    /// adder tree always registers its lane values: the register's synchronous reset
    /// applies the zero weights for free, so its first adders take plain operands.
    pub fn register_after_level(&self, level: usize) -> bool {
        level < self.tree_levels
            && ((level + 1).is_multiple_of(self.tree_stage_levels)
                || (level == 0 && self.lane_group == 1))
    }
    /// Pipeline registers inside the row trees (the root register not counted).
    pub fn tree_registers(&self) -> usize {
        (0..self.tree_levels)
            .filter(|&l| self.register_after_level(l))
            .count()
    }
    /// Bits of a tree node covering `lanes` lanes.
    pub fn node_bits(&self, lanes: usize) -> usize {
        partial_sum_bits(lanes * self.lane_group)
    }
    /// Bits of a row tree's root (a row's sum over one chunk).
    pub fn root_bits(&self) -> usize {
        self.node_bits(self.lanes_per_row)
    }
}

impl Config {
    pub fn from_path(path: &Path) -> Result<Config, ConfigError> {
        from_path(path, Config::from_toml)
    }

    /// Parse and validate; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = parse_toml(text, origin)?;
        Config::validate(file, origin)
    }

    pub fn validate(file: ConfigFile, origin: &str) -> Result<Config, ConfigError> {
        let e = &file.engine;
        let w = &file.workload;
        let out_of_range =
            |key: &'static str, value: String, allowed: String| ConfigError::OutOfRange {
                origin: origin.to_string(),
                key,
                value,
                allowed,
            };
        let range = |key: &'static str, value: usize, lo: usize, hi: usize| {
            if value < lo || value > hi {
                Err(out_of_range(key, value.to_string(), format!("{lo}..={hi}")))
            } else {
                Ok(())
            }
        };
        range("engine.group_size", e.group_size, 2, 5)?;
        range("engine.rows_parallel", e.rows_parallel, 1, MAX_ROWS)?;
        range(
            "engine.groups_per_cycle",
            e.groups_per_cycle,
            1,
            MAX_GROUPS_PER_CYCLE,
        )?;
        range("engine.activation_bits", e.activation_bits, 8, 8)?;
        range("engine.table_banks", e.table_banks, 1, 2)?;
        range("engine.token_block", e.token_block, 1, MAX_TOKEN_BLOCK)?;
        range(
            "engine.tree_stage_levels",
            e.tree_stage_levels,
            1,
            MAX_TREE_STAGE_LEVELS,
        )?;
        if e.weight_buffer_depth != 0
            && (!e.weight_buffer_depth.is_power_of_two()
                || !(2..=4096).contains(&e.weight_buffer_depth))
        {
            return Err(out_of_range(
                "engine.weight_buffer_depth",
                e.weight_buffer_depth.to_string(),
                "0 (no FIFO) or a power of two in 2..=4096".into(),
            ));
        }
        if !ACCUMULATOR_WIDTHS.contains(&e.accumulator_bits) {
            return Err(out_of_range(
                "engine.accumulator_bits",
                e.accumulator_bits.to_string(),
                format!("one of {ACCUMULATOR_WIDTHS:?}"),
            ));
        }
        let storage = e.storage();
        if e.kind == EngineKind::AdderTree && storage == TableStorage::LaneLutram {
            return Err(ConfigError::Unsupported {
                origin: origin.to_string(),
                message: "`engine.table_storage` = \"lane-lutram\" is for the TLMM only: the \
                          adder tree has no tables (use registers, distributed or block)"
                    .into(),
            });
        }
        let wpc = e.weights_per_clock();
        if wpc > MAX_WEIGHTS_PER_CLOCK {
            return Err(out_of_range(
                "engine.rows_parallel",
                format!(
                    "{} (P·Q·G = {}·{}·{} = {wpc} weights/clock)",
                    e.rows_parallel, e.rows_parallel, e.groups_per_cycle, e.group_size
                ),
                format!("at most {MAX_WEIGHTS_PER_CLOCK} weights/clock"),
            ));
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
        let chunk_activations = e.groups_per_cycle * e.group_size;
        let chunks = w.k.div_ceil(chunk_activations);
        let table_entries = weights::table_entries(lane_group);
        let geometry = Geometry {
            lane_group,
            lanes_per_row,
            rows: e.rows_parallel,
            chunk_activations,
            chunks,
            row_blocks: w.m.div_ceil(e.rows_parallel),
            table_entries,
            entry_bits: weights::entry_bits(lane_group),
            index_bits: weights::index_bits(lane_group),
            accumulator_bits: e.accumulator_bits,
            // Padding columns hold zero weights and activations: only K counts.
            accumulator_internal_bits: signed_bits(-128 * w.k as i64, 128 * w.k as i64),
            storage,
            table_banks: e.table_banks,
            token_block: e.token_block,
            build_clocks: if storage == TableStorage::LaneLutram {
                table_entries
            } else {
                1
            },
            tree_levels: ceil_log2(lanes_per_row),
            tree_stage_levels: e.tree_stage_levels,
            weight_buffer_depth: e.weight_buffer_depth,
        };
        let depth = |key: &'static str, what: &str, depth: usize, hint: &str| {
            if depth > MAX_MEMORY_DEPTH {
                Err(out_of_range(
                    key,
                    format!(
                        "{} ({what} would be {depth} words deep)",
                        key_value(&file, key)
                    ),
                    format!("at most {MAX_MEMORY_DEPTH} words; {hint}"),
                ))
            } else {
                Ok(())
            }
        };
        depth(
            "workload.k",
            "the activation buffer, 2·T_b·ceil(K/(Q·G)),",
            geometry.activation_buffer_depth(),
            "reduce K or engine.token_block, or raise engine.groups_per_cycle",
        )?;
        depth(
            "workload.m",
            "the accumulator memory, T_b·ceil(M/P),",
            geometry.accumulator_memory_depth(),
            "reduce M or engine.token_block, or raise engine.rows_parallel",
        )?;
        if storage == TableStorage::LaneLutram {
            depth(
                "engine.token_block",
                "each lane's table copy, banks·T_b·2^index_bits,",
                geometry.lane_table_depth(),
                "reduce engine.token_block",
            )?;
        }
        file.top.check(origin)?;
        Ok(Config {
            engine: file.engine,
            workload: file.workload,
            board: file.board,
            top: file.top,
            geometry,
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_file()).expect("a validated config always serialises")
    }

    pub fn to_file(&self) -> ConfigFile {
        ConfigFile {
            engine: self.engine.clone(),
            workload: self.workload.clone(),
            board: self.board.clone(),
            top: self.top.clone(),
        }
    }

    /// The same engine built for another layer shape and token count.
    pub fn with_workload(&self, m: usize, k: usize, tokens: usize) -> Result<Config, ConfigError> {
        let mut file = self.to_file();
        file.workload = Workload { m, k, tokens };
        Config::validate(file, "workload change")
    }

    /// How an `m × k` matrix runs on this engine, built for its `workload.m × workload.k`
    /// tile: zero-padded into (ceil(m / M), ceil(k / K)) tiles. `tern generate` cuts a model
    /// so, and the DSE counts a model's tiles so.
    pub fn tiles_for(&self, m: usize, k: usize) -> (usize, usize) {
        (m.div_ceil(self.workload.m), k.div_ceil(self.workload.k))
    }

    /// Ideal cycles for the whole workload: every lane busy every cycle.
    pub fn ideal_cycles(&self) -> f64 {
        let w = &self.workload;
        (w.m * w.k * w.tokens) as f64 / self.geometry.weights_per_clock() as f64
    }
}

/// Parse TOML text into `T`; a syntax error or an unknown key names `origin`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Read a config file (bounded, UTF-8) and parse it with `parse(text, origin)`, the
/// path as the origin its messages name.
pub fn from_path<T>(
    path: &Path,
    parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = crate::files::read_text(path).map_err(|cause| ConfigError::Read {
        path: path.display().to_string(),
        cause,
    })?;
    parse(&text, &path.display().to_string())
}

/// The value of a dotted config key, for messages.
fn key_value(file: &ConfigFile, key: &str) -> String {
    match key {
        "workload.k" => file.workload.k.to_string(),
        "workload.m" => file.workload.m.to_string(),
        "engine.token_block" => file.engine.token_block.to_string(),
        _ => "?".into(),
    }
}

/// Builds a matmul config from code, with the defaults a config file gets; one builder
/// for tests, sweeps and examples.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    file: ConfigFile,
}

impl ConfigBuilder {
    /// An engine of `kind` with G, P, Q; a 64×64 layer, 1 token, 24-bit results.
    pub fn new(kind: EngineKind, g: usize, p: usize, q: usize) -> ConfigBuilder {
        ConfigBuilder {
            file: ConfigFile {
                engine: EngineConfig {
                    kind,
                    group_size: g,
                    rows_parallel: p,
                    groups_per_cycle: q,
                    activation_bits: 8,
                    accumulator_bits: 24,
                    table_storage: None,
                    table_banks: default_table_banks(),
                    token_block: default_token_block(),
                    tree_stage_levels: default_tree_stage_levels(),
                    weight_buffer_depth: 0,
                },
                workload: Workload {
                    m: 64,
                    k: 64,
                    tokens: 1,
                },
                board: None,
                top: TopConfig::default(),
            },
        }
    }
    pub fn tlmm(g: usize, p: usize, q: usize) -> ConfigBuilder {
        ConfigBuilder::new(EngineKind::Tlmm, g, p, q)
    }
    pub fn adder_tree(g: usize, p: usize, q: usize) -> ConfigBuilder {
        ConfigBuilder::new(EngineKind::AdderTree, g, p, q)
    }
    /// M×K layer, `tokens` tokens.
    pub fn workload(mut self, m: usize, k: usize, tokens: usize) -> Self {
        self.file.workload = Workload { m, k, tokens };
        self
    }
    pub fn accumulator_bits(mut self, bits: usize) -> Self {
        self.file.engine.accumulator_bits = bits;
        self
    }
    pub fn storage(mut self, storage: TableStorage) -> Self {
        self.file.engine.table_storage = Some(storage);
        self
    }
    pub fn table_banks(mut self, banks: usize) -> Self {
        self.file.engine.table_banks = banks;
        self
    }
    pub fn token_block(mut self, tokens: usize) -> Self {
        self.file.engine.token_block = tokens;
        self
    }
    pub fn tree_stage_levels(mut self, levels: usize) -> Self {
        self.file.engine.tree_stage_levels = levels;
        self
    }
    pub fn weight_buffer_depth(mut self, depth: usize) -> Self {
        self.file.engine.weight_buffer_depth = depth;
        self
    }
    pub fn top(mut self, top: TopConfig) -> Self {
        self.file.top = top;
        self
    }
    pub fn board(mut self, board: &str) -> Self {
        self.file.board = Some(board.to_string());
        self
    }
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }
    pub fn build(self) -> Result<Config, ConfigError> {
        Config::validate(self.file, "config builder")
    }
}

/// Any design tern can generate: a file with an `[attention]` table is an attention
/// engine, anything else a matmul engine (TLMM or adder tree).
#[derive(Debug, Clone, PartialEq)]
pub enum DesignConfig {
    Matmul(Config),
    Attention(AttentionConfig),
}

impl From<Config> for DesignConfig {
    fn from(cfg: Config) -> Self {
        DesignConfig::Matmul(cfg)
    }
}

impl From<AttentionConfig> for DesignConfig {
    fn from(cfg: AttentionConfig) -> Self {
        DesignConfig::Attention(cfg)
    }
}

impl DesignConfig {
    pub fn from_path(path: &Path) -> Result<DesignConfig, ConfigError> {
        from_path(path, DesignConfig::from_toml)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<DesignConfig, ConfigError> {
        let table: toml::Table = parse_toml(text, origin)?;
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
    fn the_top_table_is_checked_key_by_key() {
        let with_top = |top: &str| format!("{GOOD}\n[top]\n{top}\n");
        let c = Config::from_toml(&with_top("bus_bits = 512"), "f.toml").unwrap();
        assert_eq!((c.top.bus_bits, c.top.burst_beats), (512, 64));
        assert!(Config::from_toml(GOOD, "f.toml").unwrap().top.is_default());
        for (top, key, allowed) in [
            ("bus_bits = 100", "top.bus_bits", "64, 128, 256 or 512"),
            ("burst_beats = 3", "top.burst_beats", "power of two"),
            ("burst_beats = 512", "top.burst_beats", "2..=256"),
            ("reads_in_flight = 0", "top.reads_in_flight", "1..=16"),
            ("memory_mib = 100000", "top.memory_mib", "1..=16384"),
        ] {
            let err = Config::from_toml(&with_top(top), "f.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("f.toml") && err.contains(key) && err.contains(allowed),
                "{top}: {err}"
            );
        }
        let err = Config::from_toml(&with_top("width = 64"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("width"), "{err}");
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
}
