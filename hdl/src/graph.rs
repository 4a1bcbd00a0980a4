//! The design graph: the blocks of a generated design and the dataflow between them,
//! derived from the same validated config (and its `Geometry`) that the rust-hdl
//! constructors read. The surrogate learns from this graph; nothing here is tuned to it.
//!
//! Node granularity follows the RTL: a node per replicated sub-block (each lookup lane,
//! each row's adder tree and accumulator, each lane group's table builder) so that the
//! graph grows with the hardware, and one node per memory, control FSM and stream port.

use serde::{Deserialize, Serialize};

use crate::config::attention::{EXP_TABLE_ENTRIES, RECIPROCAL_NUMERATOR_BITS, STATE_BITS};
use crate::config::{ceil_log2, AttentionConfig, Config, DesignConfig, EngineKind};

/// What kind of hardware a node is. The order is the one-hot order of the surrogate's
/// node features; append new kinds at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    StreamIn,
    StreamOut,
    Control,
    TableBuilder,
    TableMemory,
    WeightFifo,
    LookupLane,
    RowAdderTree,
    Accumulator,
    OutputRegister,
    ScoreDot,
    SoftmaxIndex,
    ExpTable,
    RescaleTable,
    ValueLanes,
    Divider,
    OutputRequant,
    Buffer,
}

impl BlockKind {
    pub const ALL: [BlockKind; 18] = [
        BlockKind::StreamIn,
        BlockKind::StreamOut,
        BlockKind::Control,
        BlockKind::TableBuilder,
        BlockKind::TableMemory,
        BlockKind::WeightFifo,
        BlockKind::LookupLane,
        BlockKind::RowAdderTree,
        BlockKind::Accumulator,
        BlockKind::OutputRegister,
        BlockKind::ScoreDot,
        BlockKind::SoftmaxIndex,
        BlockKind::ExpTable,
        BlockKind::RescaleTable,
        BlockKind::ValueLanes,
        BlockKind::Divider,
        BlockKind::OutputRequant,
        BlockKind::Buffer,
    ];

    pub fn index(self) -> usize {
        BlockKind::ALL
            .iter()
            .position(|k| *k == self)
            .expect("ALL lists every kind")
    }
}

/// Where a memory lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Not a memory.
    #[default]
    None,
    Registers,
    Distributed,
    Block,
    /// A constant table (ROM), built from logic.
    Rom,
}

/// The parameters of one block. Zero means "does not apply".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeParams {
    /// Bits of the widest input.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub width_in: usize,
    /// Bits of the output.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub width_out: usize,
    /// Parallel operators inside the block (adders, multipliers, compare-selects).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub operators: usize,
    /// Inputs of its widest select (a lookup's entries, a tree's leaves).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub select_inputs: usize,
    /// Memory words and word bits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub word_bits: usize,
    /// Registered bits inside the block (pipeline and state flops, not memories).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flop_bits: usize,
    /// Activations per table group (G; 1 for the adder tree, 0 if not a matmul block).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub group: usize,
    /// Control: the terminal counts of its loops, constants in the RTL (matmul: chunks
    /// per row block and row blocks per token; attention: beats per key and tile keys).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loop_inner: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loop_outer: usize,
    #[serde(default, skip_serializing_if = "Storage::is_none")]
    pub storage: Storage,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Storage {
    fn is_none(&self) -> bool {
        *self == Storage::None
    }
}

impl NodeParams {
    fn new() -> Self {
        NodeParams {
            width_in: 0,
            width_out: 0,
            operators: 0,
            select_inputs: 0,
            depth: 0,
            word_bits: 0,
            flop_bits: 0,
            group: 0,
            loop_inner: 0,
            loop_outer: 0,
            storage: Storage::None,
        }
    }

    pub fn memory_bits(&self) -> usize {
        self.depth * self.word_bits
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: BlockKind,
    pub params: NodeParams,
}

/// A directed dataflow graph of blocks; `edges` are (from, to) node indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignGraph {
    /// `tlmm`, `adder-tree` or `attention`.
    pub engine: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, usize)>,
}

impl DesignGraph {
    fn new(engine: &str) -> Self {
        DesignGraph {
            engine: engine.into(),
            nodes: vec![],
            edges: vec![],
        }
    }

    fn add(&mut self, name: String, kind: BlockKind, params: NodeParams) -> usize {
        self.nodes.push(Node { name, kind, params });
        self.nodes.len() - 1
    }

    fn link(&mut self, from: usize, to: usize) {
        self.edges.push((from, to));
    }

    /// Bits of every memory in the graph (equals the manifest's `memory_bits` total).
    pub fn memory_bits(&self) -> usize {
        self.nodes.iter().map(|n| n.params.memory_bits()).sum()
    }

    /// Registered bits outside memories.
    pub fn flop_bits(&self) -> usize {
        self.nodes.iter().map(|n| n.params.flop_bits).sum()
    }

    pub fn count(&self, kind: BlockKind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }
}

/// The graph of any design tern can generate.
pub fn design_graph(config: &DesignConfig) -> DesignGraph {
    match config {
        DesignConfig::Matmul(cfg) => matmul_graph(cfg),
        DesignConfig::Attention(cfg) => attention_graph(cfg),
    }
}

/// The matmul engine (see `tlmm` for the dataflow these nodes follow).
pub fn matmul_graph(cfg: &Config) -> DesignGraph {
    let geo = &cfg.geometry;
    let engine = match cfg.engine.kind {
        EngineKind::Tlmm => "tlmm",
        EngineKind::AdderTree => "adder-tree",
    };
    let mut g = DesignGraph::new(engine);
    let group = geo.lane_group;
    let code_bits = 1 + geo.index_bits;
    let lanes = geo.lanes();
    let stored = geo.table_entries - 1;
    // A lane value is an entry widened by one bit for the negation (`LookupArray`).
    let lane_bits = geo.entry_bits + 1;
    let counter = 16;

    let act_in = g.add(
        "act_in".into(),
        BlockKind::StreamIn,
        NodeParams {
            width_out: geo.activation_beat_bits(),
            ..NodeParams::new()
        },
    );
    let wgt_in = g.add(
        "wgt_in".into(),
        BlockKind::StreamIn,
        NodeParams {
            width_out: geo.weight_beat_bits(),
            ..NodeParams::new()
        },
    );
    // `TlmmEngine`'s control DFFs: write side (wbank, wchunk, filled0/1), FIFO pointers
    // (head, tail, count), issue (rbank, rchunk, rblock), stage-1 flags, output valid.
    let control_flops = (1 + counter + 2) + 3 * counter + (1 + 2 * counter) + 3 + 1;
    let control = g.add(
        "control".into(),
        BlockKind::Control,
        NodeParams {
            width_in: counter,
            width_out: 1,
            operators: 6,
            flop_bits: control_flops,
            loop_inner: geo.chunks,
            loop_outer: geo.row_blocks,
            ..NodeParams::new()
        },
    );
    g.link(act_in, control);
    g.link(wgt_in, control);

    let tables = g.add(
        "tables".into(),
        BlockKind::TableMemory,
        NodeParams {
            width_in: geo.stored_entries_per_chunk() * geo.entry_bits,
            width_out: geo.stored_entries_per_chunk() * geo.entry_bits,
            depth: 2 * geo.chunks,
            word_bits: geo.stored_entries_per_chunk() * geo.entry_bits,
            group,
            storage: match cfg.engine.table_storage {
                crate::config::TableStorage::Registers => Storage::Registers,
                crate::config::TableStorage::Distributed => Storage::Distributed,
                crate::config::TableStorage::Block => Storage::Block,
            },
            ..NodeParams::new()
        },
    );
    g.link(control, tables);
    for l in 0..geo.lanes_per_row {
        // Every stored entry is a sum of up to G ±activations.
        let builder = g.add(
            format!("builder{l}"),
            BlockKind::TableBuilder,
            NodeParams {
                width_in: 8 * group,
                width_out: stored * geo.entry_bits,
                operators: stored * group.saturating_sub(1),
                select_inputs: stored,
                group,
                ..NodeParams::new()
            },
        );
        g.link(act_in, builder);
        g.link(builder, tables);
    }

    let fifo = g.add(
        "weight_fifo".into(),
        BlockKind::WeightFifo,
        NodeParams {
            width_in: geo.weight_beat_bits(),
            width_out: geo.weight_beat_bits(),
            depth: cfg.engine.weight_buffer_depth,
            word_bits: lanes * code_bits,
            storage: Storage::Distributed,
            group,
            ..NodeParams::new()
        },
    );
    g.link(wgt_in, fifo);
    g.link(control, fifo);

    let output = g.add(
        "output_register".into(),
        BlockKind::OutputRegister,
        NodeParams {
            width_in: geo.accumulator_bits,
            width_out: geo.rows * geo.accumulator_bits,
            flop_bits: geo.rows * geo.accumulator_bits,
            ..NodeParams::new()
        },
    );
    let res_out = g.add(
        "res_out".into(),
        BlockKind::StreamOut,
        NodeParams {
            width_in: geo.result_beat_bits(),
            ..NodeParams::new()
        },
    );
    g.link(output, res_out);
    g.link(control, output);

    for p in 0..geo.rows {
        let tree = g.add(
            format!("row{p}_adder_tree"),
            BlockKind::RowAdderTree,
            NodeParams {
                width_in: lane_bits,
                width_out: geo.accumulator_bits,
                operators: geo.lanes_per_row.saturating_sub(1),
                select_inputs: geo.lanes_per_row,
                group,
                ..NodeParams::new()
            },
        );
        for l in 0..geo.lanes_per_row {
            // Stage-1 registers hold each lane's code; the lane selects ±entry.
            let lane = g.add(
                format!("row{p}_lane{l}"),
                BlockKind::LookupLane,
                NodeParams {
                    width_in: geo.entry_bits,
                    width_out: lane_bits,
                    operators: 1,
                    select_inputs: stored,
                    flop_bits: code_bits,
                    group,
                    ..NodeParams::new()
                },
            );
            g.link(fifo, lane);
            g.link(tables, lane);
            g.link(lane, tree);
        }
        let acc = g.add(
            format!("row{p}_accumulator"),
            BlockKind::Accumulator,
            NodeParams {
                width_in: geo.accumulator_bits,
                width_out: geo.accumulator_bits,
                operators: 1,
                flop_bits: geo.accumulator_bits,
                ..NodeParams::new()
            },
        );
        g.link(tree, acc);
        g.link(control, acc);
        g.link(acc, output);
    }
    g
}

/// The attention engine (see `attention` for the phases these nodes serve).
pub fn attention_graph(cfg: &AttentionConfig) -> DesignGraph {
    let a = &cfg.attention;
    let bus = cfg.bus_bits();
    let acc_bits = 32 * a.macs;
    let chunks = cfg.chunks();
    let mut g = DesignGraph::new("attention");
    let node = |width_in, width_out| NodeParams {
        width_in,
        width_out,
        ..NodeParams::new()
    };
    let act_in = g.add("act_in".into(), BlockKind::StreamIn, node(0, bus));
    let wgt_in = g.add("wgt_in".into(), BlockKind::StreamIn, node(0, bus));
    let res_out = g.add("res_out".into(), BlockKind::StreamOut, node(bus + 1, 0));
    let control = g.add(
        "control".into(),
        BlockKind::Control,
        NodeParams {
            width_in: 16,
            width_out: 1,
            operators: 8,
            // phase, counters, running state (see `AttentionEngine`'s DFFs)
            flop_bits: 4 + 6 * 16 + 4 * STATE_BITS + 16 + 8 + 3,
            loop_inner: chunks,
            loop_outer: a.tile,
            ..NodeParams::new()
        },
    );
    g.link(act_in, control);
    g.link(wgt_in, control);
    let memory = |depth: usize, word_bits: usize| NodeParams {
        width_in: word_bits,
        width_out: word_bits,
        depth,
        word_bits,
        storage: Storage::Distributed,
        ..NodeParams::new()
    };
    let query = g.add(
        "query_memory".into(),
        BlockKind::Buffer,
        memory(chunks, bus),
    );
    let scores = g.add(
        "score_memory".into(),
        BlockKind::Buffer,
        memory(a.tile, STATE_BITS),
    );
    let accumulators = g.add(
        "accumulator_memory".into(),
        BlockKind::Buffer,
        memory(chunks, acc_bits),
    );
    let dot = g.add(
        "score_dot".into(),
        BlockKind::ScoreDot,
        NodeParams {
            width_in: bus,
            width_out: STATE_BITS,
            operators: a.macs,
            select_inputs: a.macs,
            flop_bits: STATE_BITS,
            ..NodeParams::new()
        },
    );
    let index = g.add(
        "softmax_index".into(),
        BlockKind::SoftmaxIndex,
        NodeParams {
            width_in: STATE_BITS,
            width_out: 5 + 11,
            operators: 2,
            ..NodeParams::new()
        },
    );
    let exp = g.add(
        "exp_table".into(),
        BlockKind::ExpTable,
        NodeParams {
            width_in: ceil_log2(EXP_TABLE_ENTRIES),
            width_out: 8,
            select_inputs: EXP_TABLE_ENTRIES,
            depth: 0,
            storage: Storage::Rom,
            ..NodeParams::new()
        },
    );
    let rescale = g.add(
        "rescale_table".into(),
        BlockKind::RescaleTable,
        NodeParams {
            width_in: 11,
            width_out: 16,
            select_inputs: cfg.attention.quant.rescale_steps + 1,
            storage: Storage::Rom,
            ..NodeParams::new()
        },
    );
    let values = g.add(
        "value_lanes".into(),
        BlockKind::ValueLanes,
        NodeParams {
            width_in: bus,
            width_out: acc_bits,
            operators: 2 * a.macs,
            flop_bits: 8 + 16,
            ..NodeParams::new()
        },
    );
    let divider = g.add(
        "divider".into(),
        BlockKind::Divider,
        NodeParams {
            width_in: STATE_BITS,
            width_out: RECIPROCAL_NUMERATOR_BITS as usize,
            operators: 1,
            flop_bits: 3 * RECIPROCAL_NUMERATOR_BITS as usize + 8,
            ..NodeParams::new()
        },
    );
    let requant = g.add(
        "output_requant".into(),
        BlockKind::OutputRequant,
        NodeParams {
            width_in: STATE_BITS,
            width_out: 8,
            operators: 1,
            flop_bits: bus + acc_bits + 8 + 2,
            ..NodeParams::new()
        },
    );
    for (from, to) in [
        (act_in, query),
        (query, dot),
        (wgt_in, dot),
        (dot, scores),
        (scores, index),
        (index, exp),
        (index, rescale),
        (exp, values),
        (rescale, values),
        (wgt_in, values),
        (accumulators, values),
        (values, accumulators),
        (values, divider),
        (divider, requant),
        (accumulators, requant),
        (requant, res_out),
        (control, query),
        (control, scores),
        (control, accumulators),
        (control, divider),
    ] {
        g.link(from, to);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::generate_any;

    fn matmul(kind: &str, g: usize, p: usize, q: usize, storage: &str, k: usize) -> DesignConfig {
        DesignConfig::from_toml(
            &format!(
                "[engine]\nkind = \"{kind}\"\ngroup_size = {g}\nrows_parallel = {p}\ngroups_per_cycle = {q}\n\
                 activation_bits = 8\naccumulator_bits = 24\ntable_storage = \"{storage}\"\nweight_buffer_depth = 8\n\
                 [workload]\nm = 64\nk = {k}\ntokens = 2\n"
            ),
            "graph test",
        )
        .unwrap()
    }

    /// The graph's memories are the emitted design's memories, bit for bit.
    #[test]
    fn memory_bits_match_the_generated_design() {
        for cfg in [
            matmul("tlmm", 3, 4, 2, "distributed", 256),
            matmul("tlmm", 5, 1, 1, "block", 100),
            matmul("adder-tree", 2, 2, 4, "registers", 64),
        ] {
            let design = generate_any(&cfg).unwrap();
            assert_eq!(
                design_graph(&cfg).memory_bits(),
                design.manifest.total_memory_bits(),
                "{}",
                cfg.to_toml()
            );
        }
        let attention = DesignConfig::from_path(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/attention_decode.toml"),
        )
        .unwrap();
        let design = generate_any(&attention).unwrap();
        assert_eq!(
            design_graph(&attention).memory_bits(),
            design.manifest.total_memory_bits()
        );
    }

    /// One node per replicated block: lanes, row trees and accumulators, table builders.
    #[test]
    fn replicated_blocks_are_nodes() {
        let g = design_graph(&matmul("tlmm", 4, 3, 2, "distributed", 64));
        assert_eq!(g.count(BlockKind::LookupLane), 6);
        assert_eq!(g.count(BlockKind::RowAdderTree), 3);
        assert_eq!(g.count(BlockKind::Accumulator), 3);
        assert_eq!(g.count(BlockKind::TableBuilder), 2);
        // The adder tree with the same weights/clock has G times the lanes.
        let a = design_graph(&matmul("adder-tree", 4, 3, 2, "distributed", 64));
        assert_eq!(a.count(BlockKind::LookupLane), 24);
        // Every edge joins existing nodes, and every lane feeds its row's tree.
        for (from, to) in &g.edges {
            assert!(*from < g.nodes.len() && *to < g.nodes.len());
        }
        let lanes_into_trees = g
            .edges
            .iter()
            .filter(|(f, t)| {
                g.nodes[*f].kind == BlockKind::LookupLane
                    && g.nodes[*t].kind == BlockKind::RowAdderTree
            })
            .count();
        assert_eq!(lanes_into_trees, 6);
    }

    /// Parameters follow the config: the table depth doubles with K, lanes select among
    /// the folded table's entries.
    #[test]
    fn node_parameters_follow_the_config() {
        let small = design_graph(&matmul("tlmm", 3, 1, 1, "block", 96));
        let big = design_graph(&matmul("tlmm", 3, 1, 1, "block", 192));
        let table = |g: &DesignGraph| {
            g.nodes
                .iter()
                .find(|n| n.kind == BlockKind::TableMemory)
                .unwrap()
                .params
        };
        assert_eq!(table(&big).depth, 2 * table(&small).depth);
        assert_eq!(table(&small).storage, Storage::Block);
        let lane = small
            .nodes
            .iter()
            .find(|n| n.kind == BlockKind::LookupLane)
            .unwrap();
        assert_eq!(lane.params.select_inputs, 13); // ⌈3³/2⌉ − 1 stored entries
    }
}
