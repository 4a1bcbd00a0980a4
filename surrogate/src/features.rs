//! From a design graph (and its config's workload) to the numbers the GNN reads.
//!
//! Node features (`NODE_FEATURES`): one-hot block kind, one-hot storage, then
//! `log2(1 + v) / 8` of each numeric parameter (widths, operators, select inputs, depth,
//! word bits, memory bits, flop bits, group, operators × width, loop counts). Global features (`GLOBAL_FEATURES`):
//! `log2(1 + v) / 8` of the workload (matmul: M, K, tokens; attention: sequence length,
//! head dimension, queries), an attention flag, and the control block's loop counts.

use tern_hdl::graph::{BlockKind, DesignGraph, Storage};
use tern_hdl::DesignConfig;

const KINDS: usize = BlockKind::ALL.len();
const STORAGES: usize = 5;
const NUMERIC: usize = 12;
pub const NODE_FEATURES: usize = KINDS + STORAGES + NUMERIC;
pub const GLOBAL_FEATURES: usize = 6;

/// The prediction targets, in the order of the model's outputs.
pub const TARGETS: [&str; 6] = ["luts", "ffs", "dsps", "brams", "cycles", "fmax_mhz"];
pub const TARGET_COUNT: usize = TARGETS.len();
/// Indices into [`TARGETS`] (and every per-target vector).
pub const LUTS: usize = 0;
pub const FFS: usize = 1;
pub const DSPS: usize = 2;
pub const BRAMS: usize = 3;
pub const CYCLES: usize = 4;
pub const FMAX_MHZ: usize = 5;
/// The step each target comes in (a Xilinx RAMB18 is half a block); 0 = continuous.
pub const QUANTUM: [f64; TARGET_COUNT] = [1.0, 1.0, 1.0, 0.5, 1.0, 0.0];

/// One graph as flat arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedGraph {
    /// `nodes × NODE_FEATURES`, row-major.
    pub x: Vec<f32>,
    pub nodes: usize,
    /// Directed dataflow edges.
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub globals: [f32; GLOBAL_FEATURES],
}

impl EncodedGraph {
    /// A graph the network can read: features for every node, finite, and every edge
    /// between existing nodes (a dataset file is input like any other).
    pub fn check(&self) -> Result<(), String> {
        if self.nodes == 0 {
            return Err("graph has no nodes".into());
        }
        if self.x.len() != self.nodes * NODE_FEATURES {
            return Err(format!(
                "{} node features for {} nodes of {NODE_FEATURES}",
                self.x.len(),
                self.nodes
            ));
        }
        if self.src.len() != self.dst.len() {
            return Err(format!(
                "{} edge sources but {} destinations",
                self.src.len(),
                self.dst.len()
            ));
        }
        if let Some((i, (s, d))) = self
            .src
            .iter()
            .zip(&self.dst)
            .enumerate()
            .find(|(_, (&s, &d))| s as usize >= self.nodes || d as usize >= self.nodes)
        {
            return Err(format!(
                "edge {i} ({s} → {d}) names a node beyond the graph's {}",
                self.nodes
            ));
        }
        if self.x.iter().chain(&self.globals).any(|v| !v.is_finite()) {
            return Err("non-finite feature".into());
        }
        Ok(())
    }
}

fn squash(v: usize) -> f32 {
    ((1.0 + v as f64).log2() / 8.0) as f32
}

fn storage_index(s: Storage) -> usize {
    match s {
        Storage::None => 0,
        Storage::Registers => 1,
        Storage::Distributed => 2,
        Storage::Block => 3,
        Storage::Rom => 4,
    }
}

pub fn encode(graph: &DesignGraph, config: &DesignConfig) -> EncodedGraph {
    let mut x = Vec::with_capacity(graph.nodes.len() * NODE_FEATURES);
    for node in &graph.nodes {
        let mut f = [0f32; NODE_FEATURES];
        f[node.kind.index()] = 1.0;
        f[KINDS + storage_index(node.params.storage)] = 1.0;
        let p = &node.params;
        let numeric = [
            p.width_in,
            p.width_out,
            p.operators,
            p.select_inputs,
            p.depth,
            p.word_bits,
            p.memory_bits(),
            p.flop_bits,
            p.group,
            // operators × width: a rough size of the block's arithmetic
            p.operators * p.width_out.max(p.width_in),
            p.loop_inner,
            p.loop_outer,
        ];
        for (i, v) in numeric.into_iter().enumerate() {
            f[KINDS + STORAGES + i] = squash(v);
        }
        x.extend_from_slice(&f);
    }
    let (src, dst) = graph
        .edges
        .iter()
        .map(|&(a, b)| (a as u32, b as u32))
        .unzip();
    EncodedGraph {
        x,
        nodes: graph.nodes.len(),
        src,
        dst,
        globals: globals(graph, config),
    }
}

/// Graph-level features: the workload, and the control block's loop counts (a mean or
/// sum over nodes would dilute the one node that carries them).
pub fn globals(graph: &DesignGraph, config: &DesignConfig) -> [f32; GLOBAL_FEATURES] {
    let control = graph
        .nodes
        .iter()
        .find(|n| n.kind == BlockKind::Control)
        .map(|n| (n.params.loop_inner, n.params.loop_outer))
        .unwrap_or((0, 0));
    let (a, b, c, attention) = match config {
        DesignConfig::Matmul(c) => (c.workload.m, c.workload.k, c.workload.tokens, 0.0),
        DesignConfig::Attention(c) => (
            c.workload.seq_len,
            c.attention.head_dim,
            c.workload.queries,
            1.0,
        ),
    };
    [
        squash(a),
        squash(b),
        squash(c),
        attention,
        squash(control.0),
        squash(control.1),
    ]
}

/// Targets of a dataset row as model outputs: `log(1 + t)`, `None` where absent.
pub fn target_vector(t: &crate::dataset::Targets) -> [Option<f64>; TARGET_COUNT] {
    [
        Some(t.luts),
        Some(t.ffs),
        Some(t.dsps),
        Some(t.brams),
        t.cycles,
        t.fmax_mhz,
    ]
}
