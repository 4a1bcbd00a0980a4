//! The attention unit.
//!
//! `tern_attention_unit` runs the program's `Attention` command (docs/program.md) on one
//! memory port: the integer attention engine (docs/attention.md) with its KV caches in
//! memory and a layer's units from the layer's attention record.
//!
//! ```text
//! cmd ─► reader B: the layer's record (2 beats) ─► checked (code 3) ─► the
//!        threshold's reciprocal, ceil(2^S / threshold), by a restoring divider
//!    ─► appends: per KV head, per row, its key and its value: reader B ─► row writer,
//!        at the cache's tile-major place for the row's position; all answered first
//!    ─► calls (per KV head: a decoded token's query heads as one block, or a prompt's
//!        rows per query head, causal); three walkers over the same rows:
//!        A: per row its header beat, then reader B: its query ─► gearbox ─► act
//!        B: per block, the longest row's keys and values: reader A ─► gearbox ─► wgt
//!        W: per row the row writer at its output place ◄─ gearbox ◄─ the engine's res
//! ```
//!
//! Reader A (the caches) is a stripe reader on port 0, or ports 0 and 1; reader B (the
//! rest) shares port 0 with it through a read arbiter; the row writer uses port 0's
//! write channels. What a command costs — its calls, its bytes, its clocks — is
//! modelled beside the Verilog (`AttentionUnitShape::calls`, `traffic`, `cycles`;
//! docs/program.md, "Its clocks"). The engine is the standalone engine's core (its
//! Verilog the same whatever the scales): its units are the record's.

use super::ReaderWiring;
use crate::config::attention::AttentionConfig;
use crate::emit::{generate_attention, EmitError};
use crate::interconnect::{
    read_arbiter_verilog, row_writer_verilog, stripe_reader_verilog, stripe_reader_verilog_named,
    StripeShape, STRIPE_READER_MODULE,
};
use crate::program::{int8_row_bytes, KvCacheFormat, ATTENTION_RECORD_BYTES};
use crate::streams::attention::{schedule, RowSchedule};
use crate::timing::attention_cycles;

pub const ATTENTION_UNIT_MODULE: &str = "tern_attention_unit";
pub const ATTENTION_UNIT_FILE: &str = "tern_attention_unit.v";
/// Reader B's module: the stripe reader on one port (queries, the record, the appends).
const ONE_PORT_READER_MODULE: &str = "tern_stripe_reader_one_port";

/// What an attention unit is built for: the engine, and the model's query and KV heads
/// (the engine's head dimension is the model's).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionUnitShape {
    pub engine: AttentionConfig,
    pub heads: usize,
    pub kv_heads: usize,
    /// Memory ports the KV caches are read through: 1, or 2 for an engine of 32 MACs
    /// (a word of two memory beats is then one engine beat).
    pub ports: usize,
}

/// Why an attention unit cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AttentionUnitError {
    #[error("attention unit: {0}")]
    Shape(String),
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// The unit's Verilog: the unit and its blocks (`unit`), and the engine's core.
pub struct AttentionUnitVerilog {
    pub unit: String,
    pub core: String,
}

impl AttentionUnitShape {
    pub fn check(&self) -> Result<(), String> {
        let a = &self.engine.attention;
        if !a.head_dim.is_multiple_of(16) {
            return Err(format!(
                "heads of {} bytes: not whole 16-byte memory beats",
                a.head_dim
            ));
        }
        if self.kv_heads == 0 || self.heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(format!(
                "{} query heads do not share {} KV heads evenly",
                self.heads, self.kv_heads
            ));
        }
        if self.heads > 1024 {
            return Err(format!("{} query heads, at most 1024", self.heads));
        }
        if !(self.ports == 1 || (self.ports == 2 && a.macs == 32)) {
            return Err(format!(
                "the KV caches on {} ports: 1, or 2 for an engine of 32 MACs",
                self.ports
            ));
        }
        if !a.tile.is_power_of_two() {
            return Err(format!(
                "tiles of {} keys, not a power of two (the cache is walked by shifting)",
                a.tile
            ));
        }
        Ok(())
    }

    /// The KV caches' layout the unit reads and appends to.
    pub fn cache(&self) -> KvCacheFormat {
        KvCacheFormat {
            tile: self.engine.attention.tile,
            head_dim: self.engine.attention.head_dim,
        }
    }

    /// Reader A, the KV caches': its ports, bursts of 16 beats, 4 in flight a port.
    pub fn readers(&self) -> StripeShape {
        StripeShape {
            ports: self.ports,
            burst: 16,
            outstanding: 4,
        }
    }
}

/// One engine call the unit makes: its KV head and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCall {
    pub kv_head: usize,
    pub rows: Vec<RowSchedule>,
}

/// Bytes an `Attention` command moves through the unit's memory ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitTraffic {
    /// The record, the appends' sources, the queries, the keys and values.
    pub read: u64,
    /// The appends and the outputs.
    pub written: u64,
    /// Of `read`: the keys and values streamed to the engine.
    pub kv_read: u64,
}

impl AttentionUnitShape {
    /// The engine calls of an `Attention` in a pass of `rows` rows from `position`, in
    /// the unit's order: per KV head, a decoded token's query heads as one call of
    /// non-causal rows, or a prompt's rows per query head, causal (the walkers'
    /// `tern_attention_rows`).
    pub fn calls(&self, rows: usize, position: usize) -> Vec<UnitCall> {
        let group = self.heads / self.kv_heads;
        let seq = position + rows;
        let tile = self.engine.attention.tile;
        (0..self.kv_heads)
            .flat_map(|kv_head| {
                let calls: Vec<UnitCall> = if rows == 1 {
                    vec![UnitCall {
                        kv_head,
                        rows: schedule(position, group, seq, false, tile),
                    }]
                } else {
                    (0..group)
                        .map(|_| UnitCall {
                            kv_head,
                            rows: schedule(position, rows, seq, true, tile),
                        })
                        .collect()
                };
                calls
            })
            .collect()
    }

    /// The bytes the unit reads and writes for an `Attention` of `rows` rows from
    /// `position`: the record (2 beats); per KV head and row its key and value, read
    /// from q/k/v's rows and written to the cache; per call and row its query; per block
    /// of `query_block` rows the keys and values of its longest row (whole tiles as one
    /// region, a partial tile's keys and values as two); per row its outputs. Whatever
    /// the memory's timing, these are the bytes (the co-simulation counts them).
    pub fn traffic(&self, rows: usize, position: usize) -> UnitTraffic {
        self.traffic_of(rows, &self.calls(rows, position))
    }

    /// [`Self::traffic`] of a command of `rows` rows making `calls`.
    fn traffic_of(&self, rows: usize, calls: &[UnitCall]) -> UnitTraffic {
        let d = self.engine.attention.head_dim as u64;
        let tile = self.engine.attention.tile;
        let cache = self.cache();
        let t = rows as u64;
        let appends = t * self.kv_heads as u64 * 2 * d;
        let query_rows: u64 = calls.iter().map(|c| c.rows.len() as u64).sum();
        let kv_read: u64 = calls
            .iter()
            .flat_map(|c| c.rows.chunks(self.engine.attention.query_block.max(1)))
            .map(|block| {
                let kv = block.iter().map(|r| r.kv_len).max().unwrap_or(0);
                (kv / tile) as u64 * cache.tile_bytes() + (kv % tile) as u64 * 2 * d
            })
            .sum();
        UnitTraffic {
            read: ATTENTION_RECORD_BYTES as u64 + appends + query_rows * d + kv_read,
            written: appends + query_rows * d,
            kv_read,
        }
    }

    /// The clocks of an `Attention` of `rows` rows from `position` on a memory of
    /// `latency_clocks`, given per call ([`Self::calls`]) each row's rescaled tiles (the
    /// data decides them: `tern_sim::golden::sequencer::attention_work` counts them; 0
    /// and a row's tiles bound them). The engine's share is exact; the waiting is a model
    /// (see the constants above), within 5 % of co-simulation on commands of a few
    /// thousand clocks and more at latencies of 1 to 40 clocks with no DRAM timing; DRAM
    /// timing (refresh, row misses) adds a few percent it does not count.
    pub fn cycles(
        &self,
        rows: usize,
        position: usize,
        rescaled: &[Vec<usize>],
        latency_clocks: u32,
    ) -> Result<UnitCycles, String> {
        let calls = self.calls(rows, position);
        if rescaled.len() != calls.len()
            || calls
                .iter()
                .zip(rescaled)
                .any(|(c, r)| c.rows.len() != r.len())
        {
            return Err(format!(
                "rescaled tiles for {} call(s) of {:?} rows; the command makes {} of {:?}",
                rescaled.len(),
                rescaled.iter().map(Vec::len).collect::<Vec<_>>(),
                calls.len(),
                calls.iter().map(|c| c.rows.len()).collect::<Vec<_>>()
            ));
        }
        let a = &self.engine.attention;
        let block = a.query_block.max(1);
        let engine = calls
            .iter()
            .zip(rescaled)
            .map(|(c, r)| attention_cycles(&self.engine, &c.rows, r))
            .sum();
        let latency = u64::from(latency_clocks);
        let blocks: Vec<&[RowSchedule]> = calls.iter().flat_map(|c| c.rows.chunks(block)).collect();
        let later_rows = blocks.iter().map(|b| b.len() as u64 - 1).sum::<u64>();
        let partial = blocks
            .iter()
            .filter(|b| {
                !b.iter()
                    .map(|r| r.kv_len)
                    .max()
                    .unwrap_or(0)
                    .is_multiple_of(a.tile)
            })
            .count() as u64;
        let appends = (rows * self.kv_heads * 2) as u64;
        let query_rows = calls.iter().map(|c| c.rows.len() as u64).sum::<u64>();
        // A query of C engine beats comes on one port, 16 bytes a clock.
        let query_gearbox =
            query_rows * self.engine.chunks() as u64 * (a.macs.div_ceil(16) as u64 - 1);
        // The keys and values come on `ports` ports, 16 bytes a clock each.
        let kv = self.traffic_of(rows, &calls).kv_read;
        let kv_rate = kv
            .div_ceil(16 * self.ports as u64)
            .saturating_sub(kv / a.macs as u64);
        let divider = u64::from(self.engine.constants.threshold_shift) + 1;
        let waiting = divider
            + COMMAND_CLOCKS
            + COMMAND_ROUND_TRIPS * latency
            + appends * (APPEND_CLOCKS + APPEND_ROUND_TRIPS * latency)
            + later_rows * (QUERY_CLOCKS + latency)
            + partial * (PARTIAL_TILE_CLOCKS + latency)
            + query_gearbox
            + kv_rate;
        Ok(UnitCycles {
            engine,
            waiting,
            extrapolated: !MEASURED_LATENCY_CLOCKS.contains(&latency_clocks),
        })
    }

    /// Rescaled tiles for [`Self::cycles`] at either bound: none, or every tile of every
    /// row after its first.
    pub fn rescale_bound(&self, rows: usize, position: usize, every: bool) -> Vec<Vec<usize>> {
        let tile = self.engine.attention.tile;
        self.calls(rows, position)
            .iter()
            .map(|c| {
                c.rows
                    .iter()
                    .map(|r| {
                        if every {
                            r.kv_len.div_ceil(tile).saturating_sub(1)
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// What an `Attention` command costs the unit, in clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitCycles {
    /// The engine's own clocks over the unit's calls: its exact cycle model
    /// (`timing::attention_cycles`), as if every beat were there when it asks.
    pub engine: u64,
    /// What the unit adds waiting on memory: the record, the divider, the appends, each
    /// row's query, a partial tile's values, the reader's rate, the last write.
    pub waiting: u64,
    /// The memory's latency lies beyond what the model was measured at
    /// ([`MEASURED_LATENCY_CLOCKS`]).
    pub extrapolated: bool,
}

impl UnitCycles {
    pub fn total(&self) -> u64 {
        self.engine + self.waiting
    }
}

/// The memory latencies (clocks from a burst's address to its first beat) the unit's
/// model was measured at. Beyond about 40, reader A's 4 bursts of 16 beats a port no
/// longer cover a round trip and the keys and values arrive slower than the engine
/// takes them.
pub const MEASURED_LATENCY_CLOCKS: std::ops::RangeInclusive<u32> = 1..=40;

/// The unit's waiting, each part a fixed count of clocks plus a count of the memory's
/// round trips (its latency in clocks each). Measured against co-simulation on memories
/// of 1 to 40 clocks' latency (docs/program.md, the attention unit's "Its clocks";
/// `docs/bench/attention_unit_model.txt`); the round trips are the unit's structure.
/// Per command: starting, the record's read, the last row's write and its answer.
const COMMAND_CLOCKS: u64 = 105;
const COMMAND_ROUND_TRIPS: u64 = 5;
/// Per key or value appended: read from q/k/v's rows, then written and answered, one
/// copy at a time.
const APPEND_CLOCKS: u64 = 24;
const APPEND_ROUND_TRIPS: u64 = 2;
/// Per row of a block after its first: its query is read once the previous row's is in
/// the engine (the block's first row's query was read ahead).
const QUERY_CLOCKS: u64 = 6;
/// Per block whose longest row ends in a partial tile: that tile's values are read only
/// once its keys have arrived.
const PARTIAL_TILE_CLOCKS: u64 = 5;

/// The attention unit's Verilog for `shape`.
pub fn attention_unit_verilog(
    shape: &AttentionUnitShape,
) -> Result<AttentionUnitVerilog, AttentionUnitError> {
    shape.check().map_err(AttentionUnitError::Shape)?;
    let cfg = &shape.engine;
    let a = &cfg.attention;
    let k = &cfg.constants;
    let engine = generate_attention(cfg)?;
    let d = a.head_dim;
    let bus = 8 * a.macs;
    let ReaderWiring {
        ports_io,
        wires,
        reader_a,
        reader_b,
        arbiters,
        ..
    } = ReaderWiring::of(shape.ports, STRIPE_READER_MODULE, ONE_PORT_READER_MODULE);
    let cache = shape.cache();
    let group = shape.heads / shape.kv_heads;
    let unit = UNIT_TEMPLATE
        .replace("{{PORTS_IO}}", &ports_io)
        .replace("{{WIRES}}", &wires)
        .replace("{{READER_A}}", &reader_a)
        .replace("{{READER_B}}", &reader_b)
        .replace("{{ARBITERS}}", &arbiters)
        .replace("{{MODULE}}", ATTENTION_UNIT_MODULE)
        .replace("{{KV_PORTS}}", &shape.ports.to_string())
        .replace("{{KV_BITS}}", &(128 * shape.ports).to_string())
        .replace("{{KV_HI}}", &(128 * shape.ports - 1).to_string())
        .replace(
            "{{KV_BEATS_HI}}",
            &(crate::bits::ceil_log2(shape.ports + 1) - 1).to_string(),
        )
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{D}}", &d.to_string())
        .replace("{{DB}}", &(d / 16).to_string())
        .replace("{{CHUNKS}}", &cfg.chunks().to_string())
        .replace("{{MACS}}", &a.macs.to_string())
        .replace("{{BUS}}", &bus.to_string())
        .replace("{{BUS_HI}}", &(bus - 1).to_string())
        .replace("{{HEADER_PAD}}", &header_pad(bus))
        .replace("{{GROUP}}", &group.to_string())
        .replace("{{KV_HEADS}}", &shape.kv_heads.to_string())
        .replace("{{QB}}", &a.query_block.to_string())
        .replace("{{BC}}", &a.tile.to_string())
        .replace("{{LOG_BC}}", &a.tile.trailing_zeros().to_string())
        .replace("{{TILE_BYTES}}", &cache.tile_bytes().to_string())
        .replace("{{HALF_TILE}}", &(a.tile * d).to_string())
        .replace("{{TILE_BEATS}}", &(cache.tile_bytes() / 16).to_string())
        .replace("{{QROW}}", &int8_row_bytes(shape.heads * d).to_string())
        .replace("{{KVROW}}", &int8_row_bytes(shape.kv_heads * d).to_string())
        .replace("{{SHIFT}}", &k.threshold_shift.to_string())
        .replace("{{MAX_K}}", &k.max_output_numerator().to_string())
        .replace("{{MAX_SEQ}}", &a.max_seq_len.to_string())
        .replace(
            "{{MAX_THRESHOLD}}",
            &crate::config::attention::MAX_THRESHOLD.to_string(),
        );
    debug_assert!(crate::bits::filled(&unit), "a placeholder left");
    let resize = RESIZE_TEMPLATE.replace("{{VERSION}}", env!("CARGO_PKG_VERSION"));
    let unit = format!(
        "{unit}/* verilator lint_off DECLFILENAME */ // the blocks it is made of\n{ROWS_MODULE}{resize}{}{}{}{}",
        stripe_reader_verilog(shape.readers()).map_err(AttentionUnitError::Shape)?,
        stripe_reader_verilog_named(
            StripeShape {
                ports: 1,
                ..shape.readers()
            },
            ONE_PORT_READER_MODULE
        )
        .map_err(AttentionUnitError::Shape)?,
        read_arbiter_verilog(2, 16).map_err(AttentionUnitError::Shape)?,
        row_writer_verilog(32).map_err(AttentionUnitError::Shape)?,
    );
    Ok(AttentionUnitVerilog {
        unit,
        core: engine.core_verilog,
    })
}

/// Zeros above a header beat's 32 bits in an engine beat of `bus` bits.
fn header_pad(bus: usize) -> String {
    if bus > 32 {
        format!("{}'d0, ", bus - 32)
    } else {
        String::new()
    }
}

const UNIT_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the attention unit (hdl/src/units/attention.rs): the
// program's Attention command on one memory port, the engine's {{MACS}} MACs, heads of {{D}},
// {{GROUP}} query head(s) a KV head, {{KV_HEADS}} KV head(s), tiles of {{BC}} keys.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{PORTS_IO}}    // Port 0's write channels: the appends and the outputs.
    output wire         w_awvalid,
    input  wire         w_awready,
    output wire [63:0]  w_awaddr,
    output wire [7:0]   w_awlen,
    output wire         w_wvalid,
    input  wire         w_wready,
    output wire [127:0] w_wdata,
    output wire [15:0]  w_wstrb,
    output wire         w_wlast,
    input  wire         w_bvalid,
    output wire         w_bready,
    input  wire [1:0]   w_bresp,
    // The command (docs/program.md): its layer, q, k, v and the output (dst), the pass's
    // rows and first position; from the header, the attention records and the context.
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [15:0]  cmd_layer,
    input  wire [63:0]  cmd_q,
    input  wire [63:0]  cmd_k,
    input  wire [63:0]  cmd_v,
    input  wire [63:0]  cmd_dst,
    input  wire [31:0]  cmd_rows,
    input  wire [31:0]  cmd_position,
    input  wire [63:0]  cmd_attention_at,
    input  wire [31:0]  cmd_max_seq_len,
    output wire         done,
    // Why the last command did not run or stopped: 0 none, 1 not run (no rows, or
    // positions beyond the engine's {{MAX_SEQ}}), 2 an error response from memory, 3 the
    // layer's record (a field out of range: docs/program.md, "Attention records").
    output reg  [1:0]   error
);
    localparam [3:0] S_IDLE = 4'd0, S_TAKE = 4'd1, S_REC = 4'd2, S_REC0 = 4'd3,
        S_REC1 = 4'd4, S_CHECK = 4'd5, S_DIV = 4'd6, S_ADDR = 4'd7, S_ISSUE = 4'd8,
        S_COPY = 4'd9, S_CALLS = 4'd10, S_DRAIN = 4'd11;
    reg [3:0] state;
    assign cmd_ready = state == S_IDLE;
    assign done = state == S_IDLE;
    reg [15:0] c_layer;
    reg [63:0] c_q, c_k, c_v, c_dst, c_attention_at;
    reg [31:0] c_rows, c_position, c_max_seq;
    // The layer's record.
    reg [63:0] cache_at, stride, out_numerator;
    reg [31:0] threshold, offset;
    reg [63:0] cache_need;   // a KV head's cache of the program's context
    wire [32:0] need_tiles = ({1'b0, c_max_seq} + 33'd{{BC}} - 33'd1) >> {{LOG_BC}};
    reg        failed;       // an error response: drain, then stop
{{WIRES}}
    // ---- reader B: the record, the appends' sources, the queries ----
    reg         b_cmd_valid;
    reg  [63:0] b_cmd_addr;
    reg  [31:0] b_cmd_beats;
    wire        b_valid, b_done, b_error, b_cmd_ready;
    wire        b_ready;
    wire [127:0] b_data;
    /* verilator lint_off UNUSEDSIGNAL */ // regions are counted in beats here; KV regions are whole words
    wire        b_last, a_last, b_beats;
    wire [{{KV_BEATS_HI}}:0] a_beats;
    /* verilator lint_on UNUSEDSIGNAL */
{{READER_B}}    // ---- reader A: the KV caches' tiles, on {{KV_PORTS}} port(s): a word of {{KV_PORTS}} beats ----
    reg         a_cmd_valid;
    reg  [63:0] a_cmd_addr;
    reg  [31:0] a_cmd_beats;
    wire        a_valid, a_done, a_error, a_cmd_ready;
    wire        a_ready;
    wire [{{KV_HI}}:0] a_data;
{{READER_A}}{{ARBITERS}}
    // ---- the row writer: the appends, then the output rows ----
    reg         o_cmd_valid;
    reg  [63:0] o_cmd_addr;
    wire        o_cmd_ready, o_done, o_error;
    wire        o_in_valid, o_in_ready;
    wire [127:0] o_in_data;
    tern_row_writer writer (
        .clk(clk), .rst(rst),
        .cmd_valid(o_cmd_valid), .cmd_ready(o_cmd_ready), .cmd_addr(o_cmd_addr),
        .cmd_beats(32'd{{DB}}),
        .in_valid(o_in_valid), .in_ready(o_in_ready), .in_data(o_in_data),
        .in_strb(failed ? 16'h0000 : 16'hffff),
        .m_awvalid(w_awvalid), .m_awready(w_awready), .m_awaddr(w_awaddr), .m_awlen(w_awlen),
        .m_wvalid(w_wvalid), .m_wready(w_wready), .m_wdata(w_wdata), .m_wstrb(w_wstrb), .m_wlast(w_wlast),
        .m_bvalid(w_bvalid), .m_bready(w_bready), .m_bresp(w_bresp),
        .done(o_done), .error(o_error)
    );
    wire any_error = b_error || a_error || o_error;

    // ---- the engine: its units from the record ----
    reg  [63:0] reciprocal;
    wire        engine_rst = rst || state == S_DRAIN || state == S_IDLE;
    wire        act_valid, act_ready, wgt_valid, wgt_ready, res_valid, res_ready;
    wire [{{BUS_HI}}:0] act_data, wgt_data, res_data;
    /* verilator lint_off UNUSEDSIGNAL */ // no row here is empty: every row sees a key
    wire        res_empty;
    /* verilator lint_on UNUSEDSIGNAL */
    top engine (
        .clock(clk), .reset(engine_rst),
        .act_valid(act_valid), .act_ready(act_ready), .act_last(1'b0), .act_data(act_data),
        .wgt_valid(wgt_valid), .wgt_ready(wgt_ready), .wgt_data(wgt_data),
        .res_valid(res_valid), .res_ready(res_ready), .res_data(res_data), .res_empty(res_empty),
        .threshold(threshold), .threshold_reciprocal(reciprocal), .index_offset(offset),
        .output_numerator(out_numerator[47:0])
    );

    // ---- the threshold's reciprocal: ceil(2^{{SHIFT}} / threshold), one bit a clock ----
    reg  [63:0] div_num;     // 2^S + threshold − 1, shifted out from the top
    reg  [24:0] div_rem;
    reg  [6:0]  div_left;
    wire [25:0] div_try = {div_rem, div_num[{{SHIFT}}]};
    wire        div_fits = div_try >= {1'b0, threshold[24:0]};

    // ---- the appends: per KV head h, per row j, its key then its value ----
    reg  [31:0] ap_h, ap_j;
    reg         ap_v;
    reg  [63:0] ap_head;     // cache_at + h · stride
    wire [31:0] ap_i = c_position + ap_j;   // the key's position
    wire [31:0] ap_tile = ap_i >> {{LOG_BC}};
    wire [31:0] ap_in_tile = ap_i & (32'd{{BC}} - 32'd1);
    wire [63:0] ap_in_cache = 64'(ap_tile) * 64'd{{TILE_BYTES}} + 64'(ap_in_tile) * 64'd{{D}}
                            + (ap_v ? 64'd{{HALF_TILE}} : 64'd0);
    wire [63:0] ap_src = (ap_v ? c_v : c_k) + 64'(ap_j) * 64'd{{KVROW}} + 64'(ap_h) * 64'd{{D}};
    wire        ap_last = ap_v && ap_j + 32'd1 == c_rows && ap_h == 32'd{{KV_HEADS}} - 32'd1;

    reg         ap_last_done;    // the copy under way is the last
    // An append's copy is over: both regions taken, read and written.
    wire        copy_over = state == S_COPY && !b_cmd_valid && !o_cmd_valid && b_done && o_done;

    // ---- the three walkers over the calls' rows ----
    wire        calls = state == S_CALLS && !failed;
    wire        go = copy_over && ap_last_done && !failed;
    wire        qa_active, qb_active, qw_active;
    wire [63:0] qa_off, qw_off;
    /* verilator lint_off UNUSEDSIGNAL */ // each walker uses what its stream needs
    wire [63:0] qb_off;
    wire [63:0] qa_cache, qb_cache, qw_cache;
    wire [15:0] qa_visible, qb_visible, qw_visible, qa_kv_len, qb_kv_len, qw_kv_len;
    wire        qa_block_last, qb_block_last, qw_block_last;
    /* verilator lint_on UNUSEDSIGNAL */
    wire        qa_next, qb_next, qw_next;
    tern_attention_rows #(.GROUP({{GROUP}}), .KV_HEADS({{KV_HEADS}}), .QB({{QB}}), .LOG_BC({{LOG_BC}}),
                          .D({{D}}), .QROW({{QROW}})) walk_a (
        .clk(clk), .start(go), .stop(failed), .next(qa_next), .rows_in_pass(c_rows),
        .position(c_position), .cache_at(cache_at), .stride(stride), .active(qa_active),
        .off(qa_off), .cache(qa_cache), .visible(qa_visible), .kv_len(qa_kv_len),
        .block_last(qa_block_last)
    );
    tern_attention_rows #(.GROUP({{GROUP}}), .KV_HEADS({{KV_HEADS}}), .QB({{QB}}), .LOG_BC({{LOG_BC}}),
                          .D({{D}}), .QROW({{QROW}})) walk_b (
        .clk(clk), .start(go), .stop(failed), .next(qb_next), .rows_in_pass(c_rows),
        .position(c_position), .cache_at(cache_at), .stride(stride), .active(qb_active),
        .off(qb_off), .cache(qb_cache), .visible(qb_visible), .kv_len(qb_kv_len),
        .block_last(qb_block_last)
    );
    tern_attention_rows #(.GROUP({{GROUP}}), .KV_HEADS({{KV_HEADS}}), .QB({{QB}}), .LOG_BC({{LOG_BC}}),
                          .D({{D}}), .QROW({{QROW}})) walk_w (
        .clk(clk), .start(go), .stop(failed), .next(qw_next), .rows_in_pass(c_rows),
        .position(c_position), .cache_at(cache_at), .stride(stride), .active(qw_active),
        .off(qw_off), .cache(qw_cache), .visible(qw_visible), .kv_len(qw_kv_len),
        .block_last(qw_block_last)
    );

    // Walker A: a row's header beat (bits 0..15 the keys it sees, 16..30 the keys
    // streamed, 31 a block's last row), then its query's {{CHUNKS}} engine beats.
    reg         hdr_valid;
    reg  [31:0] hdr;
    reg  [15:0] q_left;      // the current row's query beats still to go to the engine
    wire        a_issue = calls && qa_active && !hdr_valid && q_left == 16'd0 && b_cmd_ready
                          && !b_cmd_valid;
    assign qa_next = a_issue;
    wire        q_valid, q_ready;
    wire [{{BUS_HI}}:0] q_data;
    assign act_valid = hdr_valid || (q_left != 16'd0 && q_valid);
    assign act_data = hdr_valid ? {{{HEADER_PAD}}hdr} : q_data;
    assign q_ready = !hdr_valid && q_left != 16'd0 && act_ready;
    wire        hdr_taken = hdr_valid && act_ready;
    wire        q_taken = q_valid && q_ready;

    // Walker B: at each block's last (longest) row, its whole tiles as one region, then
    // (a partial last tile) that tile's keys and its values.
    reg  [1:0]  kv_region;
    wire [31:0] kv_full = 32'(qb_kv_len) >> {{LOG_BC}};
    wire [31:0] kv_part = 32'(qb_kv_len) & (32'd{{BC}} - 32'd1);
    wire [63:0] kv_part_at = qb_cache + 64'(kv_full) * 64'd{{TILE_BYTES}};
    wire [31:0] kv_beats = kv_region == 2'd0 ? kv_full * 32'd{{TILE_BEATS}} : kv_part * 32'd{{DB}};
    wire [63:0] kv_at = kv_region == 2'd0 ? qb_cache
                      : kv_region == 2'd1 ? kv_part_at : kv_part_at + 64'd{{HALF_TILE}};
    wire        b_issue = calls && qb_active && qb_block_last && a_cmd_ready && !a_cmd_valid
                          && kv_beats != 32'd0;
    wire        kv_step = calls && qb_active && qb_block_last && a_cmd_ready && !a_cmd_valid;
    assign qb_next = calls && qb_active && (!qb_block_last || (kv_step && kv_region == 2'd2));

    // Walker W: each row's outputs, {{DB}} beats at its place.
    wire        w_issue = calls && qw_active && o_cmd_ready && !o_cmd_valid;
    assign qw_next = w_issue;

    // ---- gearboxes between 16-byte memory beats and the engine's {{BUS}}-bit beats ----
    wire        b_gear_ready, a_gear_ready, r_ready;
    tern_beat_resize #(.IN(128), .OUT({{BUS}})) act_gear (
        .clk(clk), .rst(engine_rst),
        .in_valid(state == S_CALLS && b_valid), .in_ready(b_gear_ready), .in_data(b_data),
        .out_valid(q_valid), .out_ready(q_ready), .out_data(q_data)
    );
    tern_beat_resize #(.IN({{KV_BITS}}), .OUT({{BUS}})) wgt_gear (
        .clk(clk), .rst(engine_rst),
        .in_valid(a_valid && !failed), .in_ready(a_gear_ready), .in_data(a_data),
        .out_valid(wgt_valid), .out_ready(wgt_ready), .out_data(wgt_data)
    );
    wire        r_valid;
    wire [127:0] r_data;
    tern_beat_resize #(.IN({{BUS}}), .OUT(128)) res_gear (
        .clk(clk), .rst(engine_rst),
        .in_valid(res_valid), .in_ready(res_ready), .in_data(res_data),
        .out_valid(r_valid), .out_ready(r_ready), .out_data(r_data)
    );
    // Reader A's beats: the record (taken in S_REC0/1), an append's source (to the
    // writer), a query (to the engine); draining, dropped.
    wire        copying = state == S_COPY;
    assign b_ready = state == S_REC0 || state == S_REC1 || state == S_DRAIN
                   || (copying && o_in_ready) || (state == S_CALLS && (failed || b_gear_ready));
    assign a_ready = failed || state == S_DRAIN || a_gear_ready;
    assign o_in_valid = failed || state == S_DRAIN ? 1'b1 : copying ? b_valid : r_valid;
    assign o_in_data = copying ? b_data : r_data;
    assign r_ready = failed || state == S_DRAIN || (state == S_CALLS && o_in_ready);

    wire [32:0] seq_end = {1'b0, cmd_position} + {1'b0, cmd_rows};
    wire        finished = !qa_active && !qb_active && !qw_active && !hdr_valid && q_left == 16'd0
                           && b_done && a_done && o_done && !b_cmd_valid && !a_cmd_valid && !o_cmd_valid;
    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            error <= 2'd0;
            failed <= 1'b0;
            b_cmd_valid <= 1'b0;
            a_cmd_valid <= 1'b0;
            o_cmd_valid <= 1'b0;
            hdr_valid <= 1'b0;
            q_left <= 16'd0;
        end else begin
            if (b_cmd_valid && b_cmd_ready) b_cmd_valid <= 1'b0;
            if (a_cmd_valid && a_cmd_ready) a_cmd_valid <= 1'b0;
            if (o_cmd_valid && o_cmd_ready) o_cmd_valid <= 1'b0;
            if (any_error && state != S_IDLE) failed <= 1'b1;
            case (state)
                S_IDLE: if (cmd_valid) begin
                    c_layer <= cmd_layer;
                    c_q <= cmd_q;
                    c_k <= cmd_k;
                    c_v <= cmd_v;
                    c_dst <= cmd_dst;
                    c_rows <= cmd_rows;
                    c_position <= cmd_position;
                    c_attention_at <= cmd_attention_at;
                    c_max_seq <= cmd_max_seq_len;
                    error <= 2'd0;
                    failed <= 1'b0;
                    state <= cmd_rows == 32'd0 || seq_end > 33'd{{MAX_SEQ}} ? S_IDLE : S_TAKE;
                    if (cmd_rows == 32'd0 || seq_end > 33'd{{MAX_SEQ}}) error <= 2'd1;
                end
                S_TAKE: begin
                    cache_need <= {31'd0, need_tiles} * 64'd{{TILE_BYTES}};
                    b_cmd_valid <= 1'b1;
                    b_cmd_addr <= c_attention_at + 64'(c_layer) * 64'd32;
                    b_cmd_beats <= 32'd2;
                    state <= S_REC;
                end
                S_REC: if (!b_cmd_valid) state <= S_REC0;
                S_REC0: if (b_valid) begin
                    cache_at <= b_data[63:0];
                    stride <= b_data[127:64];
                    state <= S_REC1;
                end
                S_REC1: if (b_valid) begin
                    threshold <= b_data[31:0];
                    offset <= b_data[63:32];
                    out_numerator <= b_data[127:64];
                    state <= S_CHECK;
                end
                S_CHECK: begin
                    if (failed) begin
                        state <= S_DRAIN;
                    end else if (threshold == 32'd0 || threshold > 32'd{{MAX_THRESHOLD}}
                        || offset >= threshold || out_numerator > 64'd{{MAX_K}}
                        || cache_at[3:0] != 4'd0 || stride[3:0] != 4'd0 || stride < cache_need) begin
                        error <= 2'd3;
                        state <= S_IDLE;
                    end else begin
                        div_num <= (64'd1 << {{SHIFT}}) + 64'(threshold) - 64'd1;
                        div_rem <= 25'd0;
                        div_left <= 7'd{{SHIFT}} + 7'd1;
                        reciprocal <= 64'd0;
                        kv_region <= 2'd0;
                        state <= S_DIV;
                    end
                end
                S_DIV: begin
                    div_rem <= div_fits ? 25'(div_try - {1'b0, threshold[24:0]}) : div_try[24:0];
                    reciprocal <= {reciprocal[62:0], div_fits};
                    div_num <= div_num << 1;
                    div_left <= div_left - 7'd1;
                    if (div_left == 7'd1) begin
                        ap_h <= 32'd0;
                        ap_j <= 32'd0;
                        ap_v <= 1'b0;
                        ap_head <= cache_at;
                        ap_last_done <= 1'b0;
                        state <= S_ADDR;
                    end
                end
                S_ADDR: begin
                    b_cmd_addr <= ap_src;
                    b_cmd_beats <= 32'd{{DB}};
                    o_cmd_addr <= ap_head + ap_in_cache;
                    state <= S_ISSUE;
                end
                S_ISSUE: begin
                    b_cmd_valid <= 1'b1;
                    o_cmd_valid <= 1'b1;
                    ap_last_done <= ap_last;
                    state <= S_COPY;
                end
                S_COPY: if (failed) begin
                    state <= S_DRAIN;
                end else if (copy_over) begin
                    if (ap_last_done) begin
                        state <= S_CALLS;
                    end else begin
                        // The next: the value, the next row's key, the next head's.
                        ap_v <= !ap_v;
                        if (ap_v) begin
                            if (ap_j + 32'd1 == c_rows) begin
                                ap_j <= 32'd0;
                                ap_h <= ap_h + 32'd1;
                                ap_head <= ap_head + stride;
                            end else begin
                                ap_j <= ap_j + 32'd1;
                            end
                        end
                        state <= S_ADDR;
                    end
                end
                S_CALLS: begin
                    if (a_issue) begin
                        hdr <= {qa_block_last, qa_kv_len[14:0], qa_visible};
                        hdr_valid <= 1'b1;
                        b_cmd_valid <= 1'b1;
                        b_cmd_addr <= c_q + qa_off;
                        b_cmd_beats <= 32'd{{DB}};
                    end
                    if (hdr_taken) begin
                        hdr_valid <= 1'b0;
                        q_left <= 16'd{{CHUNKS}};
                    end
                    if (q_taken) q_left <= q_left - 16'd1;
                    if (b_issue) begin
                        a_cmd_valid <= 1'b1;
                        a_cmd_addr <= kv_at;
                        a_cmd_beats <= kv_beats;
                    end
                    if (kv_step) kv_region <= kv_region == 2'd2 ? 2'd0 : kv_region + 2'd1;
                    if (w_issue) begin
                        o_cmd_valid <= 1'b1;
                        o_cmd_addr <= c_dst + qw_off;
                    end
                    if (failed) state <= S_DRAIN;
                    else if (finished) state <= S_IDLE;
                end
                S_DRAIN: begin
                    hdr_valid <= 1'b0;
                    q_left <= 16'd0;
                    if (!b_cmd_valid && !a_cmd_valid && !o_cmd_valid && b_done && a_done && o_done) begin
                        error <= 2'd2;
                        state <= S_IDLE;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule

"#;

const ROWS_MODULE: &str = r#"// The rows of one Attention command's calls, one at a time (`next` moves on): per KV
// head, a decoded token's GROUP query heads as one block (non-causal), or a prompt's rows
// per query head (causal). For the current row: its offset from q (and from the output),
// its KV head's cache, the keys it sees and streams, and whether it ends a block of QB.
module tern_attention_rows #(
    parameter integer GROUP = 1,
    parameter integer KV_HEADS = 1,
    parameter integer QB = 1,
    parameter integer LOG_BC = 3,
    parameter integer D = 16,
    parameter integer QROW = 16
) (
    input  wire        clk,
    input  wire        start,
    input  wire        stop,
    input  wire        next,
    input  wire [31:0] rows_in_pass,
    input  wire [31:0] position,
    input  wire [63:0] cache_at,
    input  wire [63:0] stride,
    output reg         active,
    output reg  [63:0] off,
    output reg  [63:0] cache,
    output wire [15:0] visible,
    output wire [15:0] kv_len,
    output wire        block_last
);
    reg        one;          // a decoded token: one call a KV head
    reg [31:0] rows, calls, r, ib, ci, kvh;
    reg [63:0] call_off;
    wire [63:0] call_step = one ? 64'(GROUP * D) : 64'(D);
    /* verilator lint_off UNUSEDSIGNAL */ // positions fit 16 bits (the context ≤ 16384)
    wire [31:0] seen = position + (one ? 32'd0 : r) + 32'd1;
    wire [31:0] seq = position + rows_in_pass;
    wire [31:0] rounded = (seen + (32'd1 << LOG_BC) - 32'd1) & ~((32'd1 << LOG_BC) - 32'd1);
    /* verilator lint_on UNUSEDSIGNAL */
    assign visible = one ? seq[15:0] : seen[15:0];
    assign kv_len = one ? seq[15:0] : rounded < seq ? rounded[15:0] : seq[15:0];
    assign block_last = ib == 32'(QB - 1) || r + 32'd1 == rows;
    always @(posedge clk) begin
        if (start) begin
            active <= 1'b1;
            one <= rows_in_pass == 32'd1;
            rows <= rows_in_pass == 32'd1 ? 32'(GROUP) : rows_in_pass;
            calls <= rows_in_pass == 32'd1 ? 32'd1 : 32'(GROUP);
            r <= 32'd0;
            ib <= 32'd0;
            ci <= 32'd0;
            kvh <= 32'd0;
            off <= 64'd0;
            call_off <= 64'd0;
            cache <= cache_at;
        end else if (stop) begin
            active <= 1'b0;
        end else if (next && active) begin
            if (r + 32'd1 == rows) begin
                r <= 32'd0;
                ib <= 32'd0;
                call_off <= call_off + call_step;
                off <= call_off + call_step;
                if (ci + 32'd1 == calls) begin
                    ci <= 32'd0;
                    kvh <= kvh + 32'd1;
                    cache <= cache + stride;
                    if (kvh + 32'd1 == 32'(KV_HEADS)) active <= 1'b0;
                end else begin
                    ci <= ci + 32'd1;
                end
            end else begin
                r <= r + 32'd1;
                ib <= block_last ? 32'd0 : ib + 32'd1;
                off <= off + (one ? 64'(D) : 64'(QROW));
            end
        end
    end
endmodule

"#;

const RESIZE_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: a stream of IN-bit beats as OUT-bit beats, one a
// multiple of the other, low bits first (a wide beat's first narrow beat is its bits
// [OUT-1:0]; a wide beat collects its first narrow beat into its low bits).
module tern_beat_resize #(
    parameter integer IN = 128,
    parameter integer OUT = 128
) (
    /* verilator lint_off UNUSEDSIGNAL */ // the same widths need no register
    input  wire           clk,
    input  wire           rst,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire           in_valid,
    output wire           in_ready,
    input  wire [IN-1:0]  in_data,
    output wire           out_valid,
    input  wire           out_ready,
    output wire [OUT-1:0] out_data
);
    generate if (IN == OUT) begin : g_same
        assign out_valid = in_valid;
        assign in_ready = out_ready;
        assign out_data = in_data;
    end else if (IN > OUT) begin : g_split
        localparam integer N = IN / OUT;
        reg [IN-1:0] beat;
        reg [7:0] left;          // narrow beats of `beat` still to go
        assign out_valid = left != 8'd0;
        assign out_data = beat[OUT-1:0];
        assign in_ready = left == 8'd0 || (left == 8'd1 && out_ready);
        always @(posedge clk) begin
            if (rst) begin
                left <= 8'd0;
            end else if (in_valid && in_ready) begin
                beat <= in_data;
                left <= 8'(N);
            end else if (out_valid && out_ready) begin
                beat <= beat >> OUT;
                left <= left - 8'd1;
            end
        end
    end else begin : g_collect
        localparam integer N = OUT / IN;
        reg [OUT-1:0] beat;
        reg [7:0] have;
        assign out_valid = have == 8'(N);
        assign out_data = beat;
        assign in_ready = !out_valid || out_ready;
        always @(posedge clk) begin
            if (rst) begin
                have <= 8'd0;
            end else begin
                if (in_valid && in_ready) begin
                    beat <= {in_data, beat[OUT-1:IN]};
                    have <= out_valid ? 8'd1 : have + 8'd1;
                end else if (out_valid && out_ready) begin
                    have <= 8'd0;
                end
            end
        end
    end endgenerate
endmodule

"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttentionConfigBuilder;

    /// 8 query heads on 2 KV heads of 64, 16 MACs, tiles of 16, blocks of 4.
    fn shape() -> AttentionUnitShape {
        AttentionUnitShape {
            engine: AttentionConfigBuilder::new(64, 16, 16, 256)
                .mode(true, true)
                .query_block(4)
                .build()
                .unwrap(),
            heads: 8,
            kv_heads: 2,
            ports: 1,
        }
    }

    /// A decoded token is one call of its KV head's 4 query heads; a prompt one call of
    /// its rows per query head.
    #[test]
    fn a_command_makes_the_calls_of_its_pass() {
        let s = shape();
        let decode = s.calls(1, 20);
        assert_eq!(decode.len(), 2);
        assert!(decode[1]
            .rows
            .iter()
            .all(|r| r.kv_len == 21 && r.visible == 21));
        assert_eq!(decode[1].rows.len(), 4);
        let prompt = s.calls(5, 0);
        assert_eq!(prompt.len(), 8);
        assert_eq!(prompt[7].kv_head, 1);
        assert_eq!(
            prompt[0].rows.iter().map(|r| r.visible).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    /// A decoded token at position 20 (21 keys: a whole tile of 16 and 5 more): the
    /// record, 2 KV heads' key and value appended, 8 queries, per KV head its keys and
    /// values once; the appends and 8 output rows written.
    #[test]
    fn the_traffic_counts_every_byte_once() {
        let t = shape().traffic(1, 20);
        let kv = 2 * (2 * 16 * 64 + 5 * 2 * 64);
        assert_eq!(t.kv_read, kv);
        assert_eq!(t.read, 32 + 2 * 2 * 64 + 8 * 64 + kv);
        assert_eq!(t.written, 2 * 2 * 64 + 8 * 64);
    }

    /// More latency costs more; the engine's share does not move; rescales are the
    /// engine's; a latency beyond the measured range says so; rescaled tiles for
    /// another set of calls are refused.
    #[test]
    fn the_clocks_follow_latency_rescales_and_the_pass() {
        let s = shape();
        let none = s.rescale_bound(5, 30, false);
        let every = s.rescale_bound(5, 30, true);
        let near = s.cycles(5, 30, &none, 1).unwrap();
        let far = s.cycles(5, 30, &none, 30).unwrap();
        assert_eq!(near.engine, far.engine);
        assert!(far.waiting > near.waiting);
        assert!(!far.extrapolated);
        assert!(s.cycles(5, 30, &every, 30).unwrap().engine > far.engine);
        assert!(s.cycles(5, 30, &none, 60).unwrap().extrapolated);
        let e = s
            .cycles(5, 30, &s.rescale_bound(1, 30, false), 30)
            .unwrap_err();
        assert!(e.contains("the command makes 8"), "{e}");
    }
}
