//! The per-block cost model: what each RTL block of a design costs, learned from the
//! per-block labels of kept-hierarchy synthesis (`tern dataset --blocks`), composed into
//! the design's cost. It predicts designs far larger than anything in training because
//! a larger engine is more of the same blocks: more lanes, rows and table words.
//!
//! - A node's features (`node_features`) are structural counts a synthesis tool spends
//!   resources on: one per node, operator bits, adder-tree bits, multi-port LUT-RAM
//!   primitives, select bits, flop bits, port bits, LUT-RAM bits at 32 and 64 words,
//!   block-RAM tiles, register and ROM bits.
//! - A block's features are its nodes' features summed per block kind (the lookup lanes'
//!   s1 registers live in the top level, so `glue` also sees their flop bits).
//! - Each (block, target) is a non-negative least-squares fit of its labels on those
//!   features (weighted for relative error): costs add up and never go negative.
//! - The design's cost is the blocks' sum times a per-target flattening factor (the
//!   median of flat ÷ kept-hierarchy totals in training: flattening optimises across the
//!   blocks' boundaries).
//! - The stated band is the 90th percentile of out-of-fold relative errors (5 folds of
//!   the training rows; none is stated from fewer than `MIN_BAND_ERRORS` of them), widened by a quarter for every doubling of a graph's `n` nodes
//!   beyond the largest `n_max` trained on: `1 + log2(n / n_max) / 4`.
//! - The values every design parameter took in training are kept (`trained_parameters`):
//!   a design with a parameter outside them is flagged (`BlockModel::outside`), however
//!   small its graph; the band was measured inside them only.
//!
//! Everything is plain Rust: fitting takes milliseconds, a prediction microseconds.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tern_hdl::graph::{BlockKind, DesignGraph, Node, Storage, GLUE};

use crate::dataset::{BlockTargets, Dataset, Row, Split, Targets};
pub use crate::dataset::{BLOCK_TARGETS, BLOCK_TARGET_COUNT};

pub const FORMAT: &str = "tern-block-model";
pub const VERSION: u32 = 1;
/// Out-of-fold errors a band is stated from, at least: a 90th percentile of a handful
/// of rows is no band (one row gave "± 0.0 %").
pub const MIN_BAND_ERRORS: usize = 10;

const FEATURES: [&str; 14] = [
    "count",
    "operator_bits",
    "adder_tree_bits",
    "lutram_primitives",
    "select_bits",
    "flop_bits",
    "port_bits",
    "lutram32",
    "lutram64",
    "bram_tiles",
    "register_bits",
    "rom_bits",
    "entry_adder_bits",
    "bram_cascade_bits",
];

/// A kind's or storage's name as the dataset file spells it (`lookup_lane`, `block`).
fn file_name<T: Serialize + std::fmt::Debug>(v: T) -> String {
    serde_json::to_value(&v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{v:?}"))
}

fn node_features(n: &Node) -> [f64; FEATURES.len()] {
    let p = &n.params;
    let f = |v: usize| v as f64;
    let words = |d: usize| d.max(1);
    let (lutram32, lutram64, bram, bram_cascade_bits, regs) = match p.storage {
        Storage::Distributed => (
            f(p.word_bits * words(p.depth).div_ceil(32)),
            f(p.word_bits * words(p.depth).div_ceil(64)),
            0.0,
            0.0,
            0.0,
        ),
        // A RAMB36 as 512 × 72 or 1024 × 36, whichever takes fewer; a memory deeper
        // than that geometry reads through a mux over the tiles stacked in depth:
        // word bits × (tiles deep − 1).
        Storage::Block => {
            let wide = p.word_bits.div_ceil(72) * words(p.depth).div_ceil(512);
            let deep = p.word_bits.div_ceil(36) * words(p.depth).div_ceil(1024);
            let tiles_deep = if wide <= deep {
                words(p.depth).div_ceil(512)
            } else {
                words(p.depth).div_ceil(1024)
            };
            let cascade = f(p.word_bits * (tiles_deep - 1));
            (0.0, 0.0, f(wide.min(deep)), cascade, 0.0)
        }
        Storage::Registers => (0.0, 0.0, 0.0, 0.0, f(p.memory_bits())),
        _ => (0.0, 0.0, 0.0, 0.0, 0.0),
    };
    let rom = if p.storage == Storage::Rom {
        f(p.select_inputs * p.width_out)
    } else {
        0.0
    };
    // A parallel table builder (shared tables) forms every stored entry at once from
    // the lane's activations: one adder per nonzero digit beyond the first, an entry
    // wide (its `width_out` is all entries side by side, so `operators × width_out`
    // would grow with the square of the table).
    let parallel_builder = n.kind == BlockKind::TableBuilder && p.select_inputs == 0;
    let entry_adder_bits = if parallel_builder && p.group > 1 {
        let entries = tern_hdl::weights::table_entries(p.group) - 1;
        let adders: usize = (1..=entries)
            .map(|i| {
                let nonzero = tern_hdl::weights::pattern(p.group, i)
                    .iter()
                    .filter(|&&d| d != 0)
                    .count();
                nonzero.saturating_sub(1)
            })
            .sum();
        f(adders * p.width_out / entries)
    } else {
        0.0
    };
    // A tree of adders over `select_inputs` leaves of `width_in` bits: each level has
    // half the adders, one bit wider (a flat count × widest width overstates big trees).
    let adder_tree_bits = if p.operators > 0 && p.select_inputs > 1 && p.width_in > 0 {
        let (mut n, mut width, mut bits) = (p.select_inputs, p.width_in, 0);
        while n > 1 {
            width += 1;
            bits += (n / 2) * width;
            n = n.div_ceil(2);
        }
        f(bits)
    } else {
        0.0
    };
    // Multi-port LUT-RAM as Yosys maps it: a RAM32M16 holds 2 bits of a ≤ 32-word
    // memory for 7 read ports, a RAM64M8 1 bit of a ≤ 64-word one; a memory with read
    // ports (`select_inputs`) keeps one copy of `word_bits / ports` bits per port.
    let lutram_primitives = if p.storage == Storage::Distributed {
        let ports = p.select_inputs.max(1);
        let bits = p.word_bits.div_ceil(ports);
        let clusters = ports.div_ceil(7);
        let per_cluster = if words(p.depth) <= 32 {
            bits.div_ceil(2)
        } else {
            bits * words(p.depth).div_ceil(64)
        };
        f(clusters * per_cluster)
    } else {
        0.0
    };
    [
        1.0,
        if parallel_builder {
            0.0
        } else {
            f(p.operators * p.width_out)
        },
        adder_tree_bits,
        lutram_primitives,
        f(p.select_inputs * p.width_out),
        f(p.flop_bits),
        f(p.width_in + p.width_out),
        lutram32,
        lutram64,
        bram,
        regs,
        rom,
        entry_adder_bits,
        bram_cascade_bits,
    ]
}

/// A block's features by column name (`<kind>.<feature>`), zero columns left out.
pub fn block_features(graph: &DesignGraph, block: &str) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for n in graph.nodes.iter().filter(|n| n.rtl == block) {
        // A memory costs by where it lives, and a multi-port one (per-lane table copies
        // with read ports) unlike a single-port one: each gets its own columns.
        let kind = match n.params.storage {
            Storage::None => file_name(n.kind),
            s if n.params.select_inputs > 0 && n.params.depth > 0 => {
                format!("{}[{} ported]", file_name(n.kind), file_name(s))
            }
            s => format!("{}[{}]", file_name(n.kind), file_name(s)),
        };
        for (name, v) in FEATURES.iter().zip(node_features(n)) {
            if v != 0.0 {
                *out.entry(format!("{kind}.{name}")).or_default() += v;
            }
        }
    }
    if block == GLUE {
        // The lanes' held codes (the s1 registers) are top-level flops.
        let s1: usize = graph
            .nodes
            .iter()
            .filter(|n| n.kind == BlockKind::LookupLane)
            .map(|n| n.params.flop_bits)
            .sum();
        if s1 > 0 {
            out.insert("lane_codes.flop_bits".into(), s1 as f64);
        }
    }
    out
}

/// The RTL blocks a graph's nodes name, in order.
pub fn graph_blocks(graph: &DesignGraph) -> BTreeSet<String> {
    graph.nodes.iter().map(|n| n.rtl.clone()).collect()
}

fn design_label(t: &Targets) -> [Option<f64>; BLOCK_TARGET_COUNT] {
    [
        Some(t.luts),
        Some(t.ffs),
        Some(t.dsps),
        Some(t.brams),
        t.lutram_luts,
    ]
}

/// One block's learned cost: coefficient per feature column, per target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockCost {
    /// Columns seen in training; a design with another nonzero column is flagged.
    pub columns: Vec<String>,
    /// `coefficients[target][column]`.
    pub coefficients: Vec<Vec<f64>>,
    /// Training rows this block appeared in.
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockModel {
    pub format: String,
    pub version: u32,
    pub space: String,
    pub space_hash: String,
    pub board: String,
    pub dataset_sha256: String,
    pub trained_rows: usize,
    /// The largest graph trained on (nodes): beyond it the band widens.
    pub max_trained_nodes: usize,
    pub targets: Vec<String>,
    pub blocks: BTreeMap<String, BlockCost>,
    /// Flat design total ÷ sum of kept-hierarchy blocks, per target.
    pub flatten: Vec<f64>,
    /// 90th percentile of out-of-fold relative errors of the design total, per target;
    /// None where fewer than `MIN_BAND_ERRORS` rows had that target to test on.
    pub band: Vec<Option<f64>>,
    /// Further datasets fitted on beside the first (`space`, `dataset_sha256`): e.g.
    /// whole tops for the shell block. Same board.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_fitted_on: Vec<FittedOn>,
    /// Per design parameter (the config's dotted TOML key), the values the rows fitted on
    /// took. Empty in a model fitted before they were kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trained_parameters: BTreeMap<String, TrainedValues>,
}

/// The values one design parameter took in training: numbers as their range, anything
/// else (a table storage, a flag) as the set of values seen.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainedValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub seen: BTreeSet<String>,
}

impl TrainedValues {
    fn add(&mut self, v: &toml::Value) {
        match number(v) {
            Some(x) => {
                self.min = Some(self.min.map_or(x, |m| m.min(x)));
                self.max = Some(self.max.map_or(x, |m| m.max(x)));
            }
            None => {
                self.seen.insert(value_text(v));
            }
        }
    }

    /// Why `v` is outside what was trained on, if it is.
    fn outside(&self, v: &toml::Value) -> Option<String> {
        match (number(v), self.min, self.max) {
            (Some(x), Some(lo), Some(hi)) if x < lo || x > hi => {
                Some(format!("trained on {lo}..={hi}"))
            }
            (Some(_), Some(_), Some(_)) => None,
            (Some(_), _, _) => Some(format!("trained on {} only", seen_text(&self.seen))),
            (None, _, _) if self.seen.contains(&value_text(v)) => None,
            (None, Some(lo), Some(hi)) => Some(format!("trained on {lo}..={hi}")),
            (None, _, _) => Some(format!("trained on {} only", seen_text(&self.seen))),
        }
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn seen_text(seen: &BTreeSet<String>) -> String {
    seen.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// A config's parameters as dotted keys (`engine.group_size`) and their values.
fn parameters(config_toml: &str) -> Option<BTreeMap<String, toml::Value>> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let table: toml::Table = config_toml.parse().ok()?;
    let mut out = BTreeMap::new();
    walk("", &table, &mut out);
    Some(out)
}

/// A dataset a block model was fitted on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FittedOn {
    pub space: String,
    pub space_hash: String,
    pub dataset_sha256: String,
}

/// A design's predicted cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlockPrediction {
    /// Per target (BLOCK_TARGETS order): the design total, flattened.
    pub total: Vec<f64>,
    /// ± this relative amount (already widened for graphs beyond training); None when
    /// the model was fitted on too few rows to state one.
    pub band: Vec<Option<f64>>,
    /// Per block, before the flattening factor.
    pub blocks: BTreeMap<String, Vec<f64>>,
    /// What the model could not cost: unknown blocks, feature columns never seen.
    pub unknown: Vec<String>,
    /// The graph has more nodes than any trained on.
    pub extrapolating: bool,
    /// Why the model does not price this design ([`refusal`]); its totals are then not
    /// a prediction and callers must not use them.
    pub refused: Option<String>,
}

/// Why the block model does not price a design of `graph`, if it does not: a TLMM
/// engine with shared tables (`engine.table_storage` = "registers", "distributed" or
/// "block": one table per lane group and a multiplexer per lane, kept to measure the
/// per-lane copies against). How Yosys shares those multiplexers between lanes is not
/// in the model's features: engines of one predicted table cost synthesise 25 % apart,
/// and its error on them is beyond its target (eval.md, "by design class").
pub fn refusal(graph: &DesignGraph) -> Option<String> {
    let shared = graph.engine == "tlmm"
        && graph
            .nodes
            .iter()
            .any(|n| n.kind == BlockKind::TableMemory && n.params.select_inputs == 0);
    shared.then(|| {
        "a TLMM engine with shared tables (`engine.table_storage` other than \"lane-lutram\"): \
         the block model does not price them (how Yosys shares their lanes' multiplexers \
         is beyond its features); synthesise it with `tern synth`"
            .to_string()
    })
}

/// A band as people read it: `± 12.3 %`, or why there is none.
pub fn band_text(band: Option<f64>) -> String {
    match band {
        Some(b) => format!("± {:.1} %", 100.0 * b),
        None => format!("no band (fewer than {MIN_BAND_ERRORS} rows to measure one)"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockModelError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(
        "the dataset has no ok rows with per-block labels (make it with `tern dataset --blocks`)"
    )]
    NoBlockLabels,
    #[error("the datasets are for different boards ({0} and {1}): a block model prices one board")]
    MixedBoards(String, String),
}

/// Non-negative least squares by cyclic coordinate descent on the normal equations.
/// Columns are scaled to unit maximum first, so the iteration count means the same for
/// any units.
fn nnls(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let cols = a.first().map_or(0, |r| r.len());
    let scale: Vec<f64> = (0..cols)
        .map(|j| {
            let m = a.iter().map(|r| r[j].abs()).fold(0.0, f64::max);
            if m > 0.0 {
                m
            } else {
                1.0
            }
        })
        .collect();
    let mut ata = vec![vec![0.0; cols]; cols];
    let mut atb = vec![0.0; cols];
    for (row, &y) in a.iter().zip(b) {
        for i in 0..cols {
            let xi = row[i] / scale[i];
            atb[i] += xi * y;
            for j in 0..cols {
                ata[i][j] += xi * row[j] / scale[j];
            }
        }
    }
    // A whisper of ridge keeps collinear columns (count and port bits of a fixed-width
    // block) from trading weight without end.
    for (i, row) in ata.iter_mut().enumerate() {
        row[i] += 1e-9 * (1.0 + row[i]);
    }
    let mut x = vec![0.0; cols];
    for _ in 0..5000 {
        let mut moved = 0.0f64;
        for j in 0..cols {
            if ata[j][j] <= 0.0 {
                continue;
            }
            let grad: f64 = (0..cols).map(|k| ata[j][k] * x[k]).sum::<f64>() - atb[j];
            let new = (x[j] - grad / ata[j][j]).max(0.0);
            moved = moved.max((new - x[j]).abs());
            x[j] = new;
        }
        if moved < 1e-12 {
            break;
        }
    }
    x.iter().zip(&scale).map(|(v, s)| v / s).collect()
}

/// Weight of a row in the fits: relative error, with a floor for tiny labels.
fn weight(label: f64) -> f64 {
    1.0 / (label.abs() + 20.0)
}

#[derive(Clone, Copy)]
struct Labelled<'a> {
    graph: &'a DesignGraph,
    config_toml: &'a str,
    blocks: &'a BTreeMap<String, BlockTargets>,
    design: [Option<f64>; BLOCK_TARGET_COUNT],
    /// Which of the datasets fitted on the row comes from (0: the first).
    source: usize,
}

fn labelled<'a>(rows: &[(usize, &'a Row)]) -> Vec<Labelled<'a>> {
    rows.iter()
        .filter_map(|&(source, r)| {
            Some(Labelled {
                source,
                graph: &r.graph,
                config_toml: &r.config_toml,
                blocks: r.blocks.as_ref()?,
                design: design_label(r.targets.as_ref()?),
            })
        })
        .filter(|l| l.graph.has_rtl_blocks())
        .collect()
}

/// What every design parameter took in the rows fitted on.
fn trained_parameters(rows: &[Labelled]) -> BTreeMap<String, TrainedValues> {
    let mut out: BTreeMap<String, TrainedValues> = BTreeMap::new();
    for params in rows.iter().filter_map(|r| parameters(r.config_toml)) {
        for (key, v) in params {
            out.entry(key).or_default().add(&v);
        }
    }
    out
}

/// A block the first dataset labels is fitted on its rows alone (an engine's blocks on
/// engines); any other (the shell: only whole tops have one) on every row that has it.
fn fit_blocks(rows: &[Labelled]) -> BTreeMap<String, BlockCost> {
    let names: BTreeSet<String> = rows.iter().flat_map(|r| r.blocks.keys().cloned()).collect();
    let first = rows.iter().map(|r| r.source).min().unwrap_or(0);
    let mut out = BTreeMap::new();
    for block in names {
        let in_first = rows
            .iter()
            .any(|r| r.source == first && r.blocks.contains_key(&block));
        let present: Vec<(&Labelled, BTreeMap<String, f64>)> = rows
            .iter()
            .filter(|r| (!in_first || r.source == first) && r.blocks.contains_key(&block))
            .map(|r| (r, block_features(r.graph, &block)))
            .collect();
        let columns: Vec<String> = present
            .iter()
            .flat_map(|(_, f)| f.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut coefficients = vec![];
        for t in 0..BLOCK_TARGET_COUNT {
            let mut a = vec![];
            let mut b = vec![];
            for (r, f) in &present {
                let y = r.blocks[&block].values()[t];
                let w = weight(y);
                a.push(
                    columns
                        .iter()
                        .map(|c| w * f.get(c).copied().unwrap_or(0.0))
                        .collect(),
                );
                b.push(w * y);
            }
            coefficients.push(nnls(&a, &b));
        }
        out.insert(
            block,
            BlockCost {
                columns,
                coefficients,
                rows: present.len(),
            },
        );
    }
    out
}

/// Sum of the blocks' predictions, per target, and what could not be costed.
fn compose(
    blocks: &BTreeMap<String, BlockCost>,
    graph: &DesignGraph,
) -> (Vec<f64>, BTreeMap<String, Vec<f64>>, Vec<String>) {
    let mut sum = vec![0.0; BLOCK_TARGET_COUNT];
    let mut per_block = BTreeMap::new();
    let mut unknown = vec![];
    for block in graph_blocks(graph) {
        let features = block_features(graph, &block);
        let Some(cost) = blocks.get(&block) else {
            unknown.push(format!("block `{block}` (never in training)"));
            continue;
        };
        for c in features.keys().filter(|c| !cost.columns.contains(c)) {
            unknown.push(format!("`{c}` in block `{block}` (never in training)"));
        }
        let v: Vec<f64> = (0..BLOCK_TARGET_COUNT)
            .map(|t| {
                cost.columns
                    .iter()
                    .zip(&cost.coefficients[t])
                    .map(|(c, w)| w * features.get(c).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        for (s, x) in sum.iter_mut().zip(&v) {
            *s += x;
        }
        per_block.insert(block, v);
    }
    (sum, per_block, unknown)
}

/// Flat ÷ kept-hierarchy totals, from the first dataset's rows (the engines'; whole tops
/// only add the shell).
fn flatten_factors(rows: &[Labelled]) -> Vec<f64> {
    let first = rows.iter().map(|r| r.source).min().unwrap_or(0);
    (0..BLOCK_TARGET_COUNT)
        .map(|t| {
            let mut ratios: Vec<f64> = rows
                .iter()
                .filter(|r| r.source == first)
                .filter_map(|r| {
                    let flat = r.design[t]?;
                    let kept: f64 = r.blocks.values().map(|b| b.values()[t]).sum();
                    (kept > 0.0 && flat > 0.0).then_some(flat / kept)
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            if ratios.is_empty() {
                1.0
            } else {
                crate::metrics::quantile(&ratios, 0.5)
            }
        })
        .collect()
}

impl BlockModel {
    /// Fit on the dataset's training rows (never its test rows or held-out region).
    pub fn fit(dataset: &Dataset) -> Result<BlockModel, BlockModelError> {
        BlockModel::fit_many(&[dataset])
    }

    /// Fit on the training rows of several datasets of one board (engines, and whole
    /// tops for the shell): see `fit_blocks` for which rows cost which block; the
    /// flattening factor comes from the first dataset, the band from every row it prices
    /// (not the designs it refuses, [`refusal`], though they train the blocks they share).
    pub fn fit_many(datasets: &[&Dataset]) -> Result<BlockModel, BlockModelError> {
        let Some(dataset) = datasets.first() else {
            return Err(BlockModelError::NoBlockLabels);
        };
        if let Some(other) = datasets
            .iter()
            .find(|d| d.header.board != dataset.header.board)
        {
            return Err(BlockModelError::MixedBoards(
                dataset.header.board.clone(),
                other.header.board.clone(),
            ));
        }
        let train: Vec<(usize, &Row)> = datasets
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.ok_rows().map(move |r| (i, r)))
            .filter(|(_, r)| crate::dataset::split(r) == Split::Train)
            .collect();
        let rows = labelled(&train);
        if rows.is_empty() {
            return Err(BlockModelError::NoBlockLabels);
        }
        let blocks = fit_blocks(&rows);
        let flatten = flatten_factors(&rows);
        // Out-of-fold relative errors of the design total: the band.
        let folds = 5.min(rows.len());
        let mut rel: Vec<Vec<f64>> = vec![vec![]; BLOCK_TARGET_COUNT];
        if folds >= 2 {
            for k in 0..folds {
                let (held, kept): (Vec<_>, Vec<_>) =
                    rows.iter().enumerate().partition(|(i, _)| i % folds == k);
                let kept: Vec<Labelled> = kept.into_iter().map(|(_, r)| *r).collect();
                let fold_blocks = fit_blocks(&kept);
                let fold_flatten = flatten_factors(&kept);
                // Designs the model refuses to price state no band.
                for (_, r) in held.into_iter().filter(|(_, r)| refusal(r.graph).is_none()) {
                    let (sum, _, _) = compose(&fold_blocks, r.graph);
                    for t in 0..BLOCK_TARGET_COUNT {
                        if let Some(a) = r.design[t].filter(|a| *a > 0.0) {
                            rel[t].push((sum[t] * fold_flatten[t] - a).abs() / a);
                        }
                    }
                }
            }
        }
        let band = rel
            .iter_mut()
            .map(|v| {
                v.sort_by(f64::total_cmp);
                (v.len() >= MIN_BAND_ERRORS).then(|| crate::metrics::quantile(v, 0.9))
            })
            .collect();
        Ok(BlockModel {
            format: FORMAT.into(),
            version: VERSION,
            space: dataset.header.space.clone(),
            space_hash: dataset.header.space_hash.clone(),
            board: dataset.header.board.clone(),
            dataset_sha256: dataset.sha256.clone(),
            trained_rows: rows.len(),
            max_trained_nodes: rows.iter().map(|r| r.graph.nodes.len()).max().unwrap_or(0),
            targets: BLOCK_TARGETS.iter().map(|s| s.to_string()).collect(),
            blocks,
            flatten,
            band,
            also_fitted_on: datasets[1..]
                .iter()
                .map(|d| FittedOn {
                    space: d.header.space.clone(),
                    space_hash: d.header.space_hash.clone(),
                    dataset_sha256: d.sha256.clone(),
                })
                .collect(),
            trained_parameters: trained_parameters(&rows),
        })
    }

    /// Why a design of `config_toml` (its `DesignConfig::to_toml`) is outside what the
    /// model was fitted on: one line per parameter whose value no training row had in
    /// its range (numbers) or at all (anything else), or that training never set. Empty:
    /// inside every trained range.
    pub fn outside(&self, config_toml: &str) -> Vec<String> {
        if self.trained_parameters.is_empty() {
            return vec![
                "the model keeps no trained ranges (fitted before they were kept; \
                 refit it with `tern train --blocks`)"
                    .into(),
            ];
        }
        let Some(params) = parameters(config_toml) else {
            return vec!["the design's config does not parse as TOML".into()];
        };
        params
            .iter()
            .filter_map(|(key, v)| {
                let why = match self.trained_parameters.get(key) {
                    Some(trained) => trained.outside(v)?,
                    None => "never set in training".into(),
                };
                Some(format!("{key} = {} ({why})", value_text(v)))
            })
            .collect()
    }

    /// Whether the model was fitted on (a version of) a dataset of this space and board.
    pub fn fitted_on(&self, space: &str, space_hash: &str, board: &str) -> bool {
        board == self.board
            && ((self.space == space && self.space_hash == space_hash)
                || self
                    .also_fitted_on
                    .iter()
                    .any(|f| f.space == space && f.space_hash == space_hash))
    }

    pub fn predict(&self, graph: &DesignGraph) -> BlockPrediction {
        let mut unknown = vec![];
        if !graph.has_rtl_blocks() {
            unknown
                .push("the graph names no RTL blocks (a dataset before per-block labels)".into());
        }
        let (sum, blocks, more) = compose(&self.blocks, graph);
        unknown.extend(more);
        let n = graph.nodes.len();
        let extrapolating = n > self.max_trained_nodes;
        let widen = if extrapolating && self.max_trained_nodes > 0 {
            1.0 + 0.25 * (n as f64 / self.max_trained_nodes as f64).log2()
        } else {
            1.0
        };
        BlockPrediction {
            total: sum.iter().zip(&self.flatten).map(|(s, f)| s * f).collect(),
            band: self.band.iter().map(|b| b.map(|b| b * widen)).collect(),
            blocks,
            unknown,
            extrapolating,
            refused: refusal(graph),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), BlockModelError> {
        let err = |message: String| BlockModelError::File {
            path: path.display().to_string(),
            message,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| err(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<BlockModel, BlockModelError> {
        let err = |message: String| BlockModelError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let m: BlockModel =
            serde_json::from_str(&text).map_err(|e| err(format!("not a block model: {e}")))?;
        if m.format != FORMAT || m.version != VERSION {
            return Err(err(format!(
                "format {} version {}; this tern reads {FORMAT} version {VERSION}",
                m.format, m.version
            )));
        }
        let bad = |what: String| Err(err(format!("damaged: {what}")));
        if m.flatten.len() != BLOCK_TARGET_COUNT || m.band.len() != BLOCK_TARGET_COUNT {
            return bad("flatten or band has the wrong number of targets".into());
        }
        if m.band.iter().flatten().any(|b| !b.is_finite() || *b < 0.0) {
            return bad("a band that is negative or not finite".into());
        }
        for (name, b) in &m.blocks {
            if b.coefficients.len() != BLOCK_TARGET_COUNT
                || b.coefficients.iter().any(|c| c.len() != b.columns.len())
            {
                return bad(format!(
                    "block `{name}` has coefficients that do not match its columns"
                ));
            }
            if b.coefficients
                .iter()
                .flatten()
                .any(|c| !c.is_finite() || *c < 0.0)
            {
                return bad(format!("block `{name}` has a negative or non-finite cost"));
            }
        }
        Ok(m)
    }
}
