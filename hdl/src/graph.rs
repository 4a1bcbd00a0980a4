//! The design graph: the blocks of a generated design and the dataflow between them,
//! derived from the same validated config (and its `Geometry`) that the rust-hdl
//! constructors read. The surrogate learns from this graph; nothing here is tuned to it.
//!
//! Node granularity follows the RTL: a node per replicated sub-block (each lookup lane,
//! each row's adder tree and accumulator, each lane group's table builder) so that the
//! graph grows with the hardware, and one node per memory, control FSM and stream port.

use serde::{Deserialize, Serialize};

use crate::bits::ceil_log2;
use crate::config::attention::{RECIPROCAL_NUMERATOR_BITS, STATE_BITS};
use crate::config::{AttentionConfig, Config, DesignConfig, TableStorage};

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
    /// The RTL block (a kept-hierarchy instance group, see [`rtl_blocks`]) whose cells
    /// this node's hardware is synthesised into, or [`GLUE`] for the top level (control,
    /// stream handshakes). Graphs from datasets before per-block labels have none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rtl: String,
}

/// The block of everything not in a listed RTL block: control DFFs, handshakes, wrapper.
pub const GLUE: &str = "glue";

/// The RTL blocks of an engine whose cells synthesis reports one by one: each block
/// name with the rust-hdl instances (`top$<instance>` modules) it is made of. Everything
/// else (control DFFs, handshakes, the wrapper) is the top level's [`GLUE`].
/// One name in both places: the graph's nodes carry these block names in `Node::rtl`.
pub fn rtl_blocks(engine: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match engine {
        "tlmm" | "adder-tree" => &[
            ("activation_buffer", &["act_buffer"]),
            ("builder", &["builder"]),
            ("tables", &["tables"]),
            ("weight_fifo", &["fifo_index", "fifo_sign"]),
            ("trees", &["trees"]),
            ("accumulators", &["accumulators"]),
        ],
        "attention" => &[
            ("query_memory", &["query_memory"]),
            ("score_memory", &["score_memory"]),
            ("accumulator_memory", &["accumulator_memory"]),
            ("tile_buffer", &["tile_buffer"]),
            (
                "row_state",
                &[
                    "row_max_memory",
                    "row_sum_memory",
                    "row_span_memory",
                    "row_base_memory",
                ],
            ),
            ("score_dot", &["score_dot"]),
            ("value_lanes", &["value_lanes"]),
            ("softmax_index", &["softmax_index"]),
            ("exp_table", &["exp_table"]),
            ("rescale_table", &["rescale_table"]),
            ("output_requant", &["output_requant"]),
        ],
        _ => &[],
    }
}

/// A directed dataflow graph of blocks; `edges` are (from, to) node indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignGraph {
    /// `tlmm`, `adder-tree` or `attention`.
    pub engine: String,
    /// Matmul: [`MATMUL_DATAPATH_VERSION`] of the RTL described (graphs read from older
    /// datasets have none: version 1). Attention: 0.
    #[serde(default = "first_datapath")]
    pub datapath: u32,
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, usize)>,
}

fn first_datapath() -> u32 {
    1
}

impl DesignGraph {
    fn new(engine: &str) -> Self {
        DesignGraph {
            engine: engine.into(),
            datapath: 0,
            nodes: vec![],
            edges: vec![],
        }
    }

    fn add(&mut self, name: String, kind: BlockKind, params: NodeParams) -> usize {
        self.nodes.push(Node {
            name,
            kind,
            params,
            rtl: GLUE.into(),
        });
        self.nodes.len() - 1
    }

    /// Record which RTL block node `n` is synthesised into.
    fn place(&mut self, n: usize, rtl: &str) {
        self.nodes[n].rtl = rtl.into();
    }

    /// Whether the nodes name the RTL blocks they are in (graphs of older datasets do not).
    pub fn has_rtl_blocks(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.iter().all(|n| !n.rtl.is_empty())
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

/// The graph of what a synthesis run reads: the engine, or with `whole_top` a matmul
/// engine's whole top ([`top_graph`]; the attention top has no graph of its own, so an
/// attention design is always its engine's).
pub fn unit_graph(config: &DesignConfig, whole_top: bool) -> DesignGraph {
    match config {
        DesignConfig::Matmul(cfg) if whole_top => top_graph(cfg),
        _ => design_graph(config),
    }
}

/// The version of the matmul datapath these graphs describe. A surrogate trained on
/// graphs of another version has never seen this hardware (`tern predict` says so).
/// 1: shared tables of every chunk with a select per lane (until issue 13);
/// 2: chunk-major weights, per-lane LUT-RAM tables, sign-folded pipelined trees,
///    accumulator memory, token blocks.
pub const MATMUL_DATAPATH_VERSION: u32 = 2;

fn storage_of(storage: TableStorage) -> Storage {
    match storage {
        TableStorage::LaneLutram | TableStorage::Distributed => Storage::Distributed,
        TableStorage::Registers => Storage::Registers,
        TableStorage::Block => Storage::Block,
    }
}

fn buffer_storage(depth: usize) -> Storage {
    match crate::tlmm::buffer_style(depth) {
        "block" => Storage::Block,
        _ => Storage::Distributed,
    }
}

/// The matmul engine (see `tlmm` for the dataflow these nodes follow).
pub fn matmul_graph(cfg: &Config) -> DesignGraph {
    let geo = &cfg.geometry;
    let mut g = DesignGraph::new(cfg.engine.kind.name());
    g.datapath = MATMUL_DATAPATH_VERSION;
    let group = geo.lane_group;
    let code_bits = geo.code_bits();
    let lanes = geo.lanes();
    let stored = geo.stored_entries();
    let sw = geo.entry_bits;
    let per_lane = geo.storage == TableStorage::LaneLutram;
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
    // `TlmmEngine`'s control DFFs: activation write and read sides, table build and
    // banks, FIFO pointers, issue position, s1 flags (8-bit token counters).
    let control_flops = (2 + 8 + 2 * counter + 2 + 16)
        + (1 + 3 * counter + 1 + 8 + 1 + 8 + 8)
        + (1 + 8 + 1 + 8 + 2 + 16)
        + 3 * counter
        + (1 + 2 * counter + 1)
        + (3 + 16 + 8 + 8 + counter);
    let control = g.add(
        "control".into(),
        BlockKind::Control,
        NodeParams {
            width_in: counter,
            width_out: 1,
            operators: 10,
            flop_bits: control_flops,
            loop_inner: geo.row_blocks,
            loop_outer: geo.chunks,
            ..NodeParams::new()
        },
    );
    g.link(act_in, control);
    g.link(wgt_in, control);

    let act_depth = geo.activation_buffer_depth();
    let act_buffer = g.add(
        "activation_buffer".into(),
        BlockKind::Buffer,
        NodeParams {
            width_in: geo.activation_beat_bits(),
            width_out: geo.activation_beat_bits(),
            depth: act_depth,
            word_bits: geo.activation_beat_bits(),
            storage: buffer_storage(act_depth),
            ..NodeParams::new()
        },
    );
    g.place(act_buffer, "activation_buffer");
    g.link(act_in, act_buffer);
    g.link(control, act_buffer);

    let mut builders = vec![];
    for l in 0..geo.lanes_per_row {
        let params = if per_lane {
            // Registered activations, one adder walking the table, a G-way step select.
            NodeParams {
                width_in: 8 * group,
                width_out: sw,
                operators: 1 + group,
                select_inputs: group,
                flop_bits: 8 * group + sw + group + 8 + 1,
                group,
                ..NodeParams::new()
            }
        } else {
            // Every stored entry is a sum of up to G ±activations.
            NodeParams {
                width_in: 8 * group,
                width_out: stored * sw,
                operators: stored * group.saturating_sub(1),
                group,
                ..NodeParams::new()
            }
        };
        let builder = g.add(format!("builder{l}"), BlockKind::TableBuilder, params);
        g.place(builder, "builder");
        g.link(act_buffer, builder);
        builders.push(builder);
    }

    // Table memories: per-lane copies, clustered as the RTL clusters them, or one shared
    // word per (bank, token).
    let mut table_of_lane = vec![0; lanes];
    if per_lane {
        let cluster = crate::tlmm::LaneTables::<1>::cluster_size(geo);
        for l in 0..geo.lanes_per_row {
            for (c, rows) in (0..geo.rows)
                .collect::<Vec<_>>()
                .chunks(cluster)
                .enumerate()
            {
                let t = g.add(
                    format!("tables{l}_{c}"),
                    BlockKind::TableMemory,
                    NodeParams {
                        width_in: sw,
                        width_out: sw * rows.len(),
                        depth: geo.lane_table_depth(),
                        // One physical copy per read port.
                        word_bits: sw * rows.len(),
                        select_inputs: rows.len(),
                        group,
                        storage: Storage::Distributed,
                        ..NodeParams::new()
                    },
                );
                g.place(t, "tables");
                g.link(builders[l], t);
                g.link(control, t);
                for &p in rows {
                    table_of_lane[p * geo.lanes_per_row + l] = t;
                }
            }
        }
    } else {
        let word = geo.lanes_per_row * stored * sw;
        let t = g.add(
            "tables".into(),
            BlockKind::TableMemory,
            NodeParams {
                width_in: word,
                width_out: word,
                depth: geo.table_banks * geo.token_slots(),
                word_bits: word,
                flop_bits: word,
                group,
                storage: storage_of(geo.storage),
                ..NodeParams::new()
            },
        );
        g.place(t, "tables");
        for &b in &builders {
            g.link(b, t);
        }
        g.link(control, t);
        table_of_lane.iter_mut().for_each(|x| *x = t);
    }

    let fifo = if geo.weight_buffer_depth > 0 {
        let f = g.add(
            "weight_fifo".into(),
            BlockKind::WeightFifo,
            NodeParams {
                width_in: geo.weight_beat_bits(),
                width_out: geo.weight_beat_bits(),
                depth: geo.weight_buffer_depth,
                word_bits: lanes * code_bits,
                storage: Storage::Distributed,
                group,
                ..NodeParams::new()
            },
        );
        g.place(f, "weight_fifo");
        g.link(wgt_in, f);
        g.link(control, f);
        f
    } else {
        wgt_in
    };

    let aw = geo.accumulator_internal_bits;
    let acc_depth = geo.accumulator_memory_depth();
    let acc_memory = g.add(
        "accumulator_memory".into(),
        BlockKind::Buffer,
        NodeParams {
            width_in: geo.rows * aw,
            width_out: geo.rows * aw,
            depth: acc_depth,
            word_bits: geo.rows * aw,
            storage: buffer_storage(acc_depth),
            ..NodeParams::new()
        },
    );
    g.place(acc_memory, "accumulators");
    g.link(control, acc_memory);
    let output = g.add(
        "output_register".into(),
        BlockKind::OutputRegister,
        NodeParams {
            width_in: aw,
            width_out: geo.rows * geo.accumulator_bits,
            flop_bits: geo.rows * geo.accumulator_bits + 1,
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
    // The result registers are the accumulators block's outputs.
    g.place(output, "accumulators");
    g.link(output, res_out);
    g.link(control, output);

    // Pipeline register bits inside one row tree (values and their signs).
    let tree_flops = {
        let mut nodes: Vec<usize> = vec![1; geo.lanes_per_row];
        let mut bits = 0;
        for level in 0..geo.tree_levels {
            if level > 0 {
                nodes = nodes.chunks(2).map(|c| c.iter().sum()).collect();
            }
            if geo.register_after_level(level) {
                bits += nodes.iter().map(|&n| geo.node_bits(n) + 1).sum::<usize>();
            }
        }
        bits
    };
    for p in 0..geo.rows {
        let tree = g.add(
            format!("row{p}_adder_tree"),
            BlockKind::RowAdderTree,
            NodeParams {
                width_in: sw,
                width_out: geo.root_bits(),
                operators: geo.lanes_per_row.saturating_sub(1),
                select_inputs: geo.lanes_per_row,
                flop_bits: tree_flops,
                group,
                ..NodeParams::new()
            },
        );
        g.place(tree, "trees");
        for l in 0..geo.lanes_per_row {
            // The s1 register holds each lane's code; the lane reads its entry.
            let k = p * geo.lanes_per_row + l;
            let lane = g.add(
                format!("row{p}_lane{l}"),
                BlockKind::LookupLane,
                NodeParams {
                    width_in: sw,
                    width_out: sw,
                    // A per-lane copy is read at its port; an adder tree's one-entry
                    // "table" is the activation itself (no select): neither is a mux.
                    select_inputs: if per_lane || stored <= 1 { 0 } else { stored },
                    flop_bits: code_bits,
                    group,
                    ..NodeParams::new()
                },
            );
            // A lane is its table copy's read port (or the shared table's select).
            g.place(lane, "tables");
            g.link(fifo, lane);
            g.link(table_of_lane[k], lane);
            g.link(lane, tree);
        }
        // The root register and the add/subtract into the accumulator word.
        let acc = g.add(
            format!("row{p}_accumulator"),
            BlockKind::Accumulator,
            NodeParams {
                width_in: geo.root_bits(),
                width_out: aw,
                operators: 1,
                flop_bits: geo.root_bits() + 1,
                ..NodeParams::new()
            },
        );
        g.place(acc, "accumulators");
        g.link(tree, acc);
        g.link(acc_memory, acc);
        g.link(acc, acc_memory);
        g.link(acc, output);
    }
    g
}

/// The block of a whole top that is not the engine: register file, readers, read
/// buffers, gearboxes, result queue and writer (`tern_top.v`). Synthesised as the top
/// module's own cells when the engine is kept as hierarchy.
pub const SHELL: &str = "shell";

/// A whole matmul top (`tern verilog --top`): the engine's graph plus the shell's nodes,
/// sized from the same `MemoryLayout` the top's Verilog is generated from.
pub fn top_graph(cfg: &Config) -> DesignGraph {
    let mut g = matmul_graph(cfg);
    let l = crate::top::MemoryLayout::of(cfg);
    let bus = 8 * l.bus_bytes;
    let bus_words = l.bus_bytes / 4;
    let engine_in = |g: &DesignGraph, name: &str| {
        g.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("the matmul graph has its stream ports")
    };
    let (act_in, wgt_in) = (engine_in(&g, "act_in"), engine_in(&g, "wgt_in"));
    let res_out = g
        .nodes
        .iter()
        .position(|n| n.kind == BlockKind::StreamOut)
        .expect("the matmul graph has a result port");
    let shell = |g: &mut DesignGraph, name: &str, kind: BlockKind, params: NodeParams| {
        let n = g.add(name.into(), kind, params);
        g.place(n, SHELL);
        n
    };
    // AXI4-Lite registers, the start checks over 66-bit region ends, the cycle counter.
    let registers = crate::top::regmap::registers(false).len();
    let control = shell(
        &mut g,
        "control_registers",
        BlockKind::Control,
        NodeParams {
            width_in: 32,
            width_out: 66,
            operators: 6,
            flop_bits: 32 * registers + 3 * 66 + 2 * 32 + 16,
            ..NodeParams::new()
        },
    );
    let read_depth = (l.reads_in_flight * l.burst_beats).next_power_of_two();
    // A gearbox holds a beat and a bus word and shifts bus words in at any word offset
    // (a shifter of log2(capacity) levels).
    let gearbox = |beat_words: usize| {
        let cap = beat_words + bus_words;
        NodeParams {
            width_in: bus,
            width_out: 32 * cap,
            operators: ceil_log2(cap),
            flop_bits: 32 * cap + 2 * ceil_log2(cap + bus_words + 1) + 32,
            ..NodeParams::new()
        }
    };
    // A collector is a register file of whole bus words, one written per clock, read
    // whole: no shifter.
    let collector = |beat_words: usize| NodeParams {
        width_in: bus,
        width_out: 32 * beat_words,
        depth: beat_words.div_ceil(bus_words),
        word_bits: bus,
        flop_bits: 8,
        storage: Storage::Registers,
        ..NodeParams::new()
    };
    for (stream, beat_words, engine_port) in [
        ("act", l.activation_words, act_in),
        ("wgt", l.weight_words, wgt_in),
    ] {
        let reader = shell(
            &mut g,
            &format!("{stream}_reader"),
            BlockKind::Control,
            NodeParams {
                width_out: 64,
                operators: 3,
                flop_bits: 64 + 3 * 32 + 8,
                ..NodeParams::new()
            },
        );
        let buffer = shell(
            &mut g,
            &format!("{stream}_read_buffer"),
            BlockKind::Buffer,
            NodeParams {
                width_in: bus,
                width_out: bus,
                depth: read_depth,
                word_bits: bus,
                flop_bits: bus + 2 * (ceil_log2(read_depth) + 1) + 1,
                storage: buffer_storage(read_depth),
                ..NodeParams::new()
            },
        );
        let (kind, params) = if stream == "wgt" && l.weights_aligned() {
            (BlockKind::Buffer, collector(beat_words))
        } else {
            (BlockKind::StreamIn, gearbox(beat_words))
        };
        let cut = shell(&mut g, &format!("{stream}_gearbox"), kind, params);
        g.link(control, reader);
        g.link(reader, buffer);
        g.link(buffer, cut);
        g.link(cut, engine_port);
    }
    let result_bits = 32 * l.result_words;
    let queue = shell(
        &mut g,
        "result_queue",
        BlockKind::Buffer,
        NodeParams {
            width_in: result_bits,
            width_out: result_bits,
            depth: 16,
            word_bits: result_bits,
            flop_bits: 2 * 5,
            storage: Storage::Distributed,
            ..NodeParams::new()
        },
    );
    let writer = shell(
        &mut g,
        "result_writer",
        BlockKind::StreamOut,
        NodeParams {
            width_in: result_bits,
            width_out: bus,
            select_inputs: l.result_beat_stride() / l.bus_bytes,
            flop_bits: 8 * 32 + 2 * 64,
            ..NodeParams::new()
        },
    );
    g.link(res_out, queue);
    g.link(queue, writer);
    g.link(control, writer);
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
    let block = a.query_block;
    let query = g.add(
        "query_memory".into(),
        BlockKind::Buffer,
        memory(block * chunks, bus),
    );
    let scores = g.add(
        "score_memory".into(),
        BlockKind::Buffer,
        memory(a.tile, STATE_BITS),
    );
    let accumulators = g.add(
        "accumulator_memory".into(),
        BlockKind::Buffer,
        memory(block * chunks, acc_bits),
    );
    // Per row of the block: running maximum, sum, span and base (4 words).
    let row_state = g.add(
        "row_state".into(),
        BlockKind::Buffer,
        memory(block, 4 * STATE_BITS),
    );
    // The streamed tile, replayed for the block's other rows. A row alone never reads
    // it, but its one word is written and read, so synthesis keeps it (16-128 LUTs of
    // LUT-RAM in the attention dataset's decode engines).
    let tile_buffer = g.add(
        "tile_buffer".into(),
        BlockKind::Buffer,
        memory(if block > 1 { 2 * a.tile * chunks } else { 1 }, bus),
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
            width_out: ceil_log2(cfg.attention.quant.exp_entries) + 11,
            operators: 2,
            ..NodeParams::new()
        },
    );
    let exp = g.add(
        "exp_table".into(),
        BlockKind::ExpTable,
        NodeParams {
            width_in: ceil_log2(cfg.attention.quant.exp_entries),
            width_out: 8,
            select_inputs: cfg.attention.quant.exp_entries,
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
        (control, row_state),
        (row_state, control),
    ] {
        g.link(from, to);
    }
    for (n, rtl) in [
        (query, "query_memory"),
        (scores, "score_memory"),
        (accumulators, "accumulator_memory"),
        (row_state, "row_state"),
        (dot, "score_dot"),
        (index, "softmax_index"),
        (exp, "exp_table"),
        (rescale, "rescale_table"),
        (values, "value_lanes"),
        (requant, "output_requant"),
    ] {
        g.place(n, rtl);
    }
    g.place(tile_buffer, "tile_buffer");
    g.link(wgt_in, tile_buffer);
    g.link(tile_buffer, dot);
    g.link(tile_buffer, values);
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigBuilder, EngineKind};
    use crate::emit::generate_any;
    use EngineKind::{AdderTree, Tlmm};
    use TableStorage::{Block, Distributed, LaneLutram, Registers};

    fn matmul(
        kind: EngineKind,
        g: usize,
        p: usize,
        q: usize,
        storage: TableStorage,
        k: usize,
    ) -> DesignConfig {
        DesignConfig::Matmul(
            ConfigBuilder::new(kind, g, p, q)
                .storage(storage)
                .weight_buffer_depth(8)
                .workload(64, k, 2)
                .build()
                .unwrap(),
        )
    }

    /// The graph's memories are the emitted design's memories, bit for bit.
    #[test]
    fn memory_bits_match_the_generated_design() {
        for cfg in [
            matmul(Tlmm, 3, 4, 2, LaneLutram, 256),
            matmul(Tlmm, 3, 9, 2, LaneLutram, 256),
            matmul(Tlmm, 3, 4, 2, Distributed, 256),
            matmul(Tlmm, 5, 1, 1, Block, 100),
            matmul(AdderTree, 2, 2, 4, Registers, 64),
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

    /// Every RTL block a node names exists in the emitted Verilog as the instances
    /// `rtl_blocks` lists, so synthesis with those instances kept labels the nodes.
    #[test]
    fn nodes_name_rtl_blocks_of_the_generated_design() {
        let attention = |file: &str| {
            DesignConfig::from_path(
                &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../examples")
                    .join(file),
            )
            .unwrap()
        };
        for cfg in [
            matmul(Tlmm, 3, 4, 2, LaneLutram, 256),
            matmul(Tlmm, 3, 4, 2, Distributed, 256),
            matmul(Tlmm, 5, 1, 1, Block, 100),
            matmul(AdderTree, 2, 2, 4, Registers, 64),
            attention("attention_decode.toml"),
            attention("attention_prefill.toml"),
        ] {
            let graph = design_graph(&cfg);
            let design = generate_any(&cfg).unwrap();
            let blocks = rtl_blocks(&graph.engine);
            assert!(graph.has_rtl_blocks());
            for node in graph.nodes.iter().filter(|n| n.rtl != GLUE) {
                let (_, instances) = blocks
                    .iter()
                    .find(|(b, _)| *b == node.rtl)
                    .unwrap_or_else(|| panic!("{}: unknown RTL block {}", node.name, node.rtl));
                for instance in *instances {
                    let module = format!("module top${instance}(");
                    assert!(
                        design.core_verilog.contains(&module),
                        "{} ({}): no `{module}` in the core\n{}",
                        node.name,
                        node.rtl,
                        cfg.to_toml()
                    );
                }
            }
        }
    }

    /// One node per replicated block: lanes, row trees and accumulators, table builders.
    #[test]
    fn replicated_blocks_are_nodes() {
        let g = design_graph(&matmul(Tlmm, 4, 3, 2, Distributed, 64));
        assert_eq!(g.count(BlockKind::LookupLane), 6);
        assert_eq!(g.count(BlockKind::RowAdderTree), 3);
        assert_eq!(g.count(BlockKind::Accumulator), 3);
        assert_eq!(g.count(BlockKind::TableBuilder), 2);
        // The adder tree with the same weights/clock has G times the lanes.
        let a = design_graph(&matmul(AdderTree, 4, 3, 2, Distributed, 64));
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

    /// Parameters follow the config: the activation buffer's depth doubles with K, a
    /// shared table's lanes select among the folded table's entries, per-lane copies
    /// double with the token block.
    #[test]
    fn node_parameters_follow_the_config() {
        let small = design_graph(&matmul(Tlmm, 3, 1, 1, Block, 96));
        let big = design_graph(&matmul(Tlmm, 3, 1, 1, Block, 192));
        let node = |g: &DesignGraph, kind: BlockKind| {
            g.nodes.iter().find(|n| n.kind == kind).unwrap().params
        };
        assert_eq!(
            node(&big, BlockKind::Buffer).depth,
            2 * node(&small, BlockKind::Buffer).depth
        );
        assert_eq!(node(&small, BlockKind::TableMemory).storage, Storage::Block);
        assert_eq!(node(&small, BlockKind::LookupLane).select_inputs, 13); // ⌈3³/2⌉ − 1
        let one = design_graph(&matmul(Tlmm, 3, 2, 1, LaneLutram, 96));
        let cfg = ConfigBuilder::tlmm(3, 2, 1)
            .token_block(2)
            .workload(64, 96, 2)
            .build()
            .unwrap();
        let two = design_graph(&DesignConfig::Matmul(cfg));
        assert_eq!(
            node(&two, BlockKind::TableMemory).depth,
            2 * node(&one, BlockKind::TableMemory).depth
        );
        assert_eq!(one.datapath, MATMUL_DATAPATH_VERSION);
    }

    /// A whole top is the engine's graph plus the shell's nodes, all in the shell block,
    /// sized by the top's memory interface: the read buffers hold `reads_in_flight`
    /// bursts of bus words, and a wider bus widens every shell datapath.
    #[test]
    fn a_whole_top_adds_the_shell_sized_by_its_bus() {
        let top = |bus_bits, reads_in_flight| {
            let cfg = ConfigBuilder::tlmm(3, 7, 4)
                .top(crate::config::TopConfig {
                    bus_bits,
                    reads_in_flight,
                    burst_beats: 64,
                    ..Default::default()
                })
                .workload(512, 1536, 8)
                .build()
                .unwrap();
            (matmul_graph(&cfg), top_graph(&cfg))
        };
        let (engine, whole) = top(256, 4);
        let shell: Vec<&Node> = whole.nodes.iter().filter(|n| n.rtl == SHELL).collect();
        assert_eq!(whole.nodes.len(), engine.nodes.len() + shell.len());
        assert_eq!(&whole.nodes[..engine.nodes.len()], &engine.nodes[..]);
        let buffers: usize = shell
            .iter()
            .filter(|n| n.name.ends_with("_read_buffer"))
            .map(|n| n.params.memory_bits())
            .sum();
        assert_eq!(buffers, 2 * 4 * 64 * 256, "two read buffers of 4 bursts");
        // Every shell node is connected, and the gearboxes feed the engine's inputs.
        for (i, _) in whole.nodes.iter().enumerate().skip(engine.nodes.len()) {
            assert!(whole.edges.iter().any(|(f, t)| *f == i || *t == i));
        }
        let (_, wide) = top(512, 4);
        let bits = |g: &DesignGraph| -> usize {
            g.nodes
                .iter()
                .filter(|n| n.rtl == SHELL)
                .map(|n| n.params.flop_bits + n.params.memory_bits())
                .sum()
        };
        assert!(bits(&wide) > bits(&whole));
        let (_, shallow) = top(256, 2);
        assert!(shallow.memory_bits() < whole.memory_bits());
    }
}
