//! The vector unit.
//!
//! `tern_vector_unit` runs the program's element-wise commands (docs/program.md) row
//! after row on one or two memory ports, the vector unit's blocks (docs/vector.md) behind one
//! memory side: `Embed`, `NormQuant`, `Dequant`, `ToInt8`, `Relu2Mul` and `Rope`.
//!
//! ```text
//! cmd ─► per row j of the pass:
//!   Dequant: reader A: the row's norm factors (2 beats) ─► checked (max, rms, shift)
//!            reader B (add only): the residual's row, its head checked (length, F)
//!   ToInt8:  reader A: the input vector's row, its head checked (length)
//!   Relu2Mul: readers A and B: the gate's and the up's rows, their heads checked
//!            (length, the same fractional bits)
//!   Embed:   reader A: the row's token id (from the ids the sequencer wrote), then its
//!            bf16 embedding row
//!   NormQuant: reader B: the gain's shift (checked, once), then per row its i16 gains;
//!            reader A: the input row (a vector, its length checked; or int8 times the
//!            unit); after the int8 row, the row's factors written
//!   Rope:    reader B: the position's table row ─► the block first
//!            reader A: the vector's row, its head checked (length); written back in place
//!   reader A: the row's i32 elements ─────────┐
//!   reader B: the residual's (the up's) ones ─┴► a gearbox to V lanes ─► the block
//!   ─► a gearbox to 16-byte beats (i32 or int8) ─► the row writer: the output row
//! ```
//!
//! Readers A and B are stripe readers on port 0, through a read arbiter, or (two ports)
//! A on port 0 and B on port 1; the row writer uses port 0's write channels. Lanes beyond the row's length are fed zeros, so the
//! row's padding is written as zeros, as the golden sequencer writes it.

use super::ReaderWiring;
use crate::interconnect::{
    read_arbiter_verilog, row_writer_verilog, stripe_reader_verilog, StripeShape,
    STRIPE_READER_MODULE,
};
use crate::vector::{
    dequant_verilog, embed_verilog, norm_quant_verilog, relu2_mul_verilog, rope_verilog,
    to_int8_verilog, NormQuantShape, DEQUANT_MODULE, EMBED_MODULE, NORM_QUANT_MODULE,
    RELU2_MUL_MODULE, ROPE_MODULE, TO_INT8_MODULE,
};

pub const VECTOR_UNIT_MODULE: &str = "tern_vector_unit";
pub const VECTOR_UNIT_FILE: &str = "tern_vector_unit.v";

/// What a vector unit is built for: its blocks' lanes (1, 2 or 4: a 16-byte beat holds
/// a whole number of lane beats of `i32`; 8 lanes need a gearbox across two beats, not
/// built), the longest vector a buffering block holds (`NormQuant`'s and `Relu2Mul`'s;
/// the model's intermediate size), the longest head `Rope` rotates (a multiple of 8 and of 2·lanes:
/// half a head whole lane beats, a table row whole memory beats) and its read ports: 1
/// (readers A and B share port 0) or 2 (reader B on port 1, so that `Relu2Mul`'s two
/// rows, `Dequant`'s residual and `NormQuant`'s gains do not halve port 0's rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorUnitShape {
    pub lanes: usize,
    pub max_n: usize,
    pub max_head_dim: usize,
    pub ports: usize,
}

impl VectorUnitShape {
    pub fn check(&self) -> Result<(), String> {
        if ![1, 2, 4].contains(&self.lanes) {
            return Err(format!(
                "vector unit: {} lanes, not 1, 2 or 4 (a memory beat holds 4 i32 elements)",
                self.lanes
            ));
        }
        if ![1, 2].contains(&self.ports) {
            return Err(format!(
                "vector unit: {} read ports, not 1 (readers A and B on port 0) or 2 (B on port 1)",
                self.ports
            ));
        }
        if self.max_head_dim == 0
            || !self.max_head_dim.is_multiple_of(8)
            || !self.max_head_dim.is_multiple_of(2 * self.lanes)
            || self.max_head_dim > 4096
        {
            return Err(format!(
                "vector unit: heads of up to {} elements, not a multiple of 8 and of 2·{} lanes in 8..=4096",
                self.max_head_dim, self.lanes
            ));
        }
        self.buffered()
            .check()
            .map_err(|e| format!("vector unit: {e}"))
    }

    /// The buffering blocks' shape.
    pub fn buffered(&self) -> NormQuantShape {
        NormQuantShape {
            lanes: self.lanes,
            max_n: self.max_n,
        }
    }

    /// Each reader: one port, bursts of 16 beats, 4 in flight.
    pub fn readers(&self) -> StripeShape {
        StripeShape {
            ports: 1,
            burst: 16,
            outstanding: 4,
        }
    }
}

/// The element-wise commands as the unit times them (`Dequant` adding into the residual
/// and `NormQuant` of int8 rows read a second stream and so differ from their plain
/// forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timed {
    Embed,
    NormQuant,
    NormQuantInt8,
    Dequant,
    DequantAdd,
    Rope,
    ToInt8,
    Relu2Mul,
}

impl Timed {
    /// Round trips of the memory's latency per row (its reads one after another, then
    /// the row's last write answered) and per command.
    fn round_trips(self) -> (u64, u64) {
        match self {
            Timed::Embed | Timed::DequantAdd => (3, 0),
            Timed::NormQuant | Timed::NormQuantInt8 => (3, 1),
            Timed::Dequant | Timed::Rope | Timed::ToInt8 | Timed::Relu2Mul => (2, 0),
        }
    }
}

/// Clocks beyond the block's own, per row and per command, with no latency (each
/// round trip then adds the memory's latency), at lanes/ports 1/1, 2/1, 4/1, 1/2, 2/2,
/// 4/2 in [`Timed`]'s order: measured on co-simulation at a latency of one clock
/// (`bench_the_vector_unit_model` in flows/tests/program.rs, rows 1 and 8 of the
/// 0.73B's commands), the gearboxes', the readers' and the writer's clocks.
const WAITING: [[(u64, u64); 6]; 8] = [
    // Embed
    [(27, 9), (31, 7), (36, 3), (25, 9), (29, 7), (34, 3)],
    // NormQuant
    [(57, 7), (57, 7), (39, 9), (40, 8), (40, 8), (39, 8)],
    // NormQuantInt8
    [(55, 9), (55, 9), (55, 9), (38, 8), (38, 8), (38, 8)],
    // Dequant
    [(24, 9), (28, 7), (33, 3), (23, 9), (27, 7), (32, 3)],
    // DequantAdd
    [(58, 9), (61, 7), (0, 5), (28, 9), (32, 7), (37, 3)],
    // Rope
    [(34, 9), (38, 7), (43, 3), (21, 9), (25, 7), (30, 3)],
    // ToInt8
    [(31, 3), (31, 3), (31, 3), (30, 3), (30, 3), (30, 3)],
    // Relu2Mul
    [(39, 9), (41, 7), (30, 3), (22, 9), (26, 7), (30, 3)],
];

impl VectorUnitShape {
    /// The clocks of an element-wise `command` over `rows` rows on a memory of
    /// `latency_clocks` with no DRAM timing: per row the block's exact cycle model
    /// (`crate::vector`), the clocks the row's input streams need beyond the block's
    /// when they share port 0 at a memory beat a clock, and the unit's waiting (the
    /// readers, the gearboxes, the writer; [`WAITING`] and a round trip of the latency
    /// per read or answered write in turn); per command a few clocks more. Within 8
    /// clocks of co-simulation on 1,080 commands at latencies of 1 to 30 clocks
    /// (`docs/bench/vector_unit_model.txt`); DRAM timing (refresh, bus turnarounds,
    /// row misses) is not counted: on the KV260's DDR model at 250 MHz the model is
    /// optimistic, most at 4 lanes, where port 0 streams at its peak and every DRAM
    /// stall shows.
    pub fn cycles(
        &self,
        command: &crate::program::Command,
        rows: usize,
        latency_clocks: u32,
    ) -> Result<u64, String> {
        use crate::program::Command;
        use crate::vector::{
            dequant_clocks, embed_clocks, norm_quant_clocks, relu2_mul_clocks, rope_clocks,
            to_int8_clocks,
        };
        self.check()?;
        let lanes = self.lanes;
        let vector = |n: usize| 16 + 4 * n as u64;
        // Per kind: the block's clocks a row, its elements, and the bytes its input
        // streams read on readers A and B while the block takes a lane beat a clock.
        let (timed, block, n, (a, b)) = match *command {
            Command::Embed { n, .. } => {
                let n = n as usize;
                (Timed::Embed, embed_clocks(lanes, n), n, (0, 0))
            }
            Command::NormQuant { n, int8_unit, .. } => {
                let n = n as usize;
                let shape = crate::vector::NormQuantShape {
                    lanes,
                    max_n: self.max_n,
                };
                let (timed, input) = match int8_unit {
                    Some(_) => (Timed::NormQuantInt8, n as u64),
                    None => (Timed::NormQuant, vector(n)),
                };
                (timed, norm_quant_clocks(shape, n), n, (input, 2 * n as u64))
            }
            Command::Dequant { m, add, .. } => {
                let n = m as usize;
                let (timed, residual) = if add {
                    (Timed::DequantAdd, vector(n))
                } else {
                    (Timed::Dequant, 0)
                };
                (timed, dequant_clocks(lanes, n), n, (4 * n as u64, residual))
            }
            Command::Rope {
                heads, head_dim, ..
            } => {
                let n = (heads * head_dim) as usize;
                let block = rope_clocks(lanes, heads as usize, head_dim as usize);
                (Timed::Rope, block, n, (0, 0))
            }
            Command::ToInt8 { n, .. } => {
                let n = n as usize;
                (Timed::ToInt8, to_int8_clocks(lanes, n), n, (0, 0))
            }
            Command::Relu2Mul { n, .. } => {
                let n = n as usize;
                (
                    Timed::Relu2Mul,
                    relu2_mul_clocks(lanes, n),
                    n,
                    (vector(n), vector(n)),
                )
            }
            ref other => return Err(format!("{other:?} is not an element-wise command")),
        };
        // Two streams on one port: port 0 brings both at a memory beat a clock.
        let on_port0 = a + if self.ports == 1 { b } else { 0 };
        let excess = on_port0.div_ceil(16).saturating_sub((n / lanes) as u64);
        let config = [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2)]
            .iter()
            .position(|&c| c == (lanes, self.ports))
            .ok_or_else(|| format!("{lanes} lanes on {} ports: not measured", self.ports))?;
        let (row, once) = WAITING[timed as usize][config];
        let (row_trips, command_trips) = timed.round_trips();
        let latency = u64::from(latency_clocks);
        Ok(once
            + command_trips * latency
            + rows as u64 * (block + excess + row + row_trips * latency))
    }
}

/// The unit's Verilog, one file: the unit, its blocks, the stripe reader, the read
/// arbiter and the row writer.
pub fn vector_unit_verilog(shape: VectorUnitShape) -> Result<String, String> {
    shape.check()?;
    let v = shape.lanes;
    let ReaderWiring {
        ports_io,
        wires,
        reader_a,
        reader_b,
        arbiters,
        ..
    } = if shape.ports == 2 {
        ReaderWiring::apart(STRIPE_READER_MODULE, STRIPE_READER_MODULE)
    } else {
        ReaderWiring::of(1, STRIPE_READER_MODULE, STRIPE_READER_MODULE)
    };
    let unit = UNIT_TEMPLATE
        .replace("{{PORTS_IO}}", &ports_io)
        .replace("{{WIRES}}", &wires)
        .replace("{{READER_A}}", &reader_a)
        .replace("{{READER_B}}", &reader_b)
        .replace("{{ARBITERS}}", &arbiters)
        .replace("{{MODULE}}", VECTOR_UNIT_MODULE)
        .replace("{{DEQUANT}}", DEQUANT_MODULE)
        .replace("{{TO_INT8}}", TO_INT8_MODULE)
        .replace("{{RELU2_MUL}}", RELU2_MUL_MODULE)
        .replace("{{ROPE}}", ROPE_MODULE)
        .replace("{{EMBED}}", EMBED_MODULE)
        .replace("{{NORM_QUANT}}", NORM_QUANT_MODULE)
        .replace("{{VQ_HI}}", &(8 * v - 1).to_string())
        .replace("{{VH_HI}}", &(16 * v - 1).to_string())
        .replace("{{K16}}", &(8 / v).to_string())
        .replace("{{MAX_HEAD_DIM}}", &shape.max_head_dim.to_string())
        .replace(
            "{{HW_HI}}",
            &crate::vector::rope_half_msb(v, shape.max_head_dim).to_string(),
        )
        .replace("{{MAX_N}}", &shape.max_n.to_string())
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &v.to_string())
        .replace("{{B_PORT}}", &(shape.ports - 1).to_string())
        .replace("{{K32}}", &(4 / v).to_string())
        .replace("{{K8}}", &(16 / v).to_string())
        .replace("{{LOG_V}}", &v.trailing_zeros().to_string())
        .replace("{{V_MASK}}", &(v - 1).to_string())
        .replace("{{VW_HI}}", &(32 * v - 1).to_string())
        .replace("{{VB_HI}}", &(8 * v - 1).to_string())
        .replace("{{OP_DEQUANT}}", "8'd4")
        .replace("{{OP_TO_INT8}}", "8'd6")
        .replace("{{OP_RELU2_MUL}}", "8'd8")
        .replace("{{OP_ROPE}}", "8'd5")
        .replace("{{OP_EMBED}}", "8'd1")
        .replace("{{OP_NORM_QUANT}}", "8'd2");
    debug_assert!(crate::bits::filled(&unit), "a placeholder left");
    // Readers A and B share port 0 through an arbiter only on one port.
    let arbiter = if shape.ports == 1 {
        read_arbiter_verilog(2, 16)?
    } else {
        String::new()
    };
    Ok(format!(
        "{unit}/* verilator lint_off DECLFILENAME */ // the blocks it is made of\n{}{}{}{}{}{}{}{}{}",
        dequant_verilog(v).map_err(|e| e.to_string())?,
        to_int8_verilog(v).map_err(|e| e.to_string())?,
        relu2_mul_verilog(shape.buffered()).map_err(|e| e.to_string())?,
        rope_verilog(v, shape.max_head_dim).map_err(|e| e.to_string())?,
        embed_verilog(v).map_err(|e| e.to_string())?,
        norm_quant_verilog(shape.buffered()).map_err(|e| e.to_string())?,
        stripe_reader_verilog(shape.readers())?,
        arbiter,
        row_writer_verilog(32)?
    ))
}

const UNIT_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit (hdl/src/units/vector_unit.rs): the
// program's element-wise commands (Embed, NormQuant, Dequant, ToInt8, Relu2Mul, Rope)
// row after row, reader B on port {{B_PORT}}, {{V}} lanes.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{PORTS_IO}}    // Port 0's write channels: the output rows.
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
    // The command (docs/program.md): its opcode and fields, the pass's rows and the
    // program's residual fractional bits F. Dequant: a results, d factors, c the output
    // (add: into it), n = m, the weight scale. ToInt8: a the input, c the int8 output,
    // n, the scale 1/unit. Relu2Mul: a the gate, b the up, c the output, n. Rope: a the
    // vector (rotated in place), b the table, count heads of k, the pass's first position.
    // Embed: a the table, c the output, n, d where the sequencer wrote the pass's ids.
    // NormQuant: a the input (add set: int8 rows times the scale), b the gain, c the int8
    // output, d the factors, n, ε (the program's).
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [7:0]   cmd_op,
    input  wire [63:0]  cmd_a,
    input  wire [63:0]  cmd_b,
    input  wire [63:0]  cmd_c,
    input  wire [63:0]  cmd_d,
    input  wire [31:0]  cmd_n,
    input  wire [31:0]  cmd_count,
    input  wire [31:0]  cmd_k,
    input  wire [31:0]  cmd_position,
    input  wire [23:0]  cmd_scale_m,
    input  wire [31:0]  cmd_scale_e,
    input  wire         cmd_add,
    input  wire [31:0]  cmd_pass_rows,
    input  wire [31:0]  cmd_frac,
    input  wire [23:0]  cmd_eps_m,
    input  wire [31:0]  cmd_eps_e,
    output wire         done,
    // Why the last command did not run or stopped: 0 none, 1 not run (another opcode,
    // or a size out of range: Relu2Mul's beyond {{MAX_N}}, Rope's heads beyond
    // {{MAX_HEAD_DIM}} or not a multiple of 8 and of 2·{{V}}, Embed's n no multiple of
    // 8, NormQuant's no multiple of {{V}} or beyond {{MAX_N}}), 2 an error response from
    // memory, 3 the data (a row's factors out of range, or an input's length or
    // fractional bits not the command's); `error_row` the row.
    output reg  [1:0]   error,
    output reg  [31:0]  error_row,
    // Whether an output saturated (Dequant's, Rope's and Embed's flags, over the rows).
    output reg          saturated
);
    localparam [4:0] S_IDLE = 5'd0, S_ROW = 5'd1, S_FAC0 = 5'd2, S_FAC1 = 5'd3, S_CHECK = 5'd4,
        S_HEAD_A = 5'd5, S_HEAD_B = 5'd6, S_GO = 5'd7, S_RUN = 5'd8, S_DRAIN = 5'd9,
        S_NEXT = 5'd10, S_HEADS = 5'd11, S_ID = 5'd12, S_TABLE = 5'd13, S_GAIN = 5'd14,
        S_FACTS = 5'd15, S_TAKE = 5'd16, S_DECIDE = 5'd17;
    reg [4:0] state;
    assign cmd_ready = state == S_IDLE;
    assign done = state == S_IDLE;
    // The command as taken: checked from registers (S_TAKE, S_DECIDE), so no path runs
    // from the command's fields through the checks.
    reg [7:0]  c_op;
    reg [63:0] c_a, c_b, c_c, c_d;
    reg [31:0] c_n, c_count, c_k, c_position, c_rows, c_frac, c_scale_e, c_eps_e;
    reg [23:0] c_scale_m, c_eps_m;
    reg        c_add;
    reg [63:0] rope_n;         // count · k
    reg [63:0] table_off;      // position · 2k
    reg        dq, r2, ro, em, nq; // Dequant, Relu2Mul, Rope, Embed, NormQuant (none: ToInt8)
    reg [23:0] eps_m;
    reg [31:0] eps_e;
    reg [31:0] g_shift;        // NormQuant's gain shift
    reg        facts;          // NormQuant's row: its factors are being written
    reg [63:0] ids_at;
    reg [63:0] in_row, b_row, fac_row, out_row;
    reg [63:0] in_row_base;    // Embed's table
    reg [31:0] n, rows, row;
    reg [10:0] rope_heads;        // at most 1024: `fits` says so
    reg [31:0] head_dim, table_row_bytes;
    reg [63:0] table_at;
    reg [31:0] mem_beats;      // an i32 row's element beats: ceil(n / 4)
    reg [31:0] out_beats;      // the output row's beats (head and elements, or int8)
    reg [31:0] lane_beats;     // the block's beats: ceil(n / V)
    reg [23:0] s_m;
    reg [31:0] s_e, frac, y_frac;
    reg        add, failed;
    wire       two = add || r2;    // a second stream of i32, on reader B
    wire       nq8 = nq && add;    // NormQuant of int8 rows times the scale
    reg [63:0] f_max, f_rms;
    reg [31:0] f_shift;
{{WIRES}}
    // ---- reader A: Dequant's factors, then results; ToInt8's input row ----
    reg         a_cmd_valid;
    reg  [63:0] a_cmd_addr;
    reg  [31:0] a_cmd_beats;
    wire        a_valid, a_done, a_error, a_cmd_ready;
    wire        a_ready;
    wire [127:0] a_data;
    /* verilator lint_off UNUSEDSIGNAL */ // regions are counted in beats here
    wire        a_last, b_last, a_beats, b_beats;
    /* verilator lint_on UNUSEDSIGNAL */
{{READER_A}}    // ---- reader B: the residual's row (Dequant with add); Relu2Mul's up ----
    reg         b_cmd_valid;
    reg  [63:0] b_cmd_addr;
    reg  [31:0] b_cmd_beats;
    wire        b_valid, b_done, b_error, b_cmd_ready;
    wire        b_ready;
    wire [127:0] b_data;
{{READER_B}}{{ARBITERS}}
    // ---- the row writer: the output row ----
    reg         o_cmd_valid;
    wire        o_cmd_ready, o_done, o_error;
    wire        o_in_valid, o_in_ready;
    wire [127:0] o_in_data;
    tern_row_writer writer (
        .clk(clk), .rst(rst),
        .cmd_valid(o_cmd_valid), .cmd_ready(o_cmd_ready), .cmd_addr(facts ? fac_row : out_row),
        .cmd_beats(facts ? 32'd2 : out_beats),
        .in_valid(o_in_valid), .in_ready(o_in_ready), .in_data(o_in_data), .in_strb(16'hffff),
        .m_awvalid(w_awvalid), .m_awready(w_awready), .m_awaddr(w_awaddr), .m_awlen(w_awlen),
        .m_wvalid(w_wvalid), .m_wready(w_wready), .m_wdata(w_wdata), .m_wstrb(w_wstrb), .m_wlast(w_wlast),
        .m_bvalid(w_bvalid), .m_bready(w_bready), .m_bresp(w_bresp),
        .done(o_done), .error(o_error)
    );

    // ---- in: a 16-byte beat of i32 is {{K32}} beats of {{V}} lanes ----
    reg  [31:0] in_taken;      // lane beats handed to the block this row
    reg  [3:0]  a_k, b_k;      // which lane beat of A's and of B's memory beat
    wire        pair_valid = a_valid && (!(two || nq) || b_valid);
    reg  [{{VW_HI}}:0] lanes_a, lanes_b;
    reg  [{{VH_HI}}:0] lanes_16, lanes_g;   // Embed's bf16 (A); NormQuant's gains (B)
    integer li;
    always @(*) begin
        for (li = 0; li < {{V}}; li = li + 1) begin
            // Element (in_taken · V + li) of the row; beyond n, zeros.
            if ((in_taken << {{LOG_V}}) + 32'(li) < n) begin
                // NormQuant of int8 rows: each times the scale's mantissa (int8 · 24 bits).
                lanes_a[32*li +: 32] = nq8
                    ? 32'($signed(a_data[8*({{V}}*32'(a_k) + 32'(li)) +: 8]) * $signed({8'd0, s_m}))
                    : a_data[32*({{V}}*32'(a_k) + 32'(li)) +: 32];
                lanes_b[32*li +: 32] = two ? b_data[32*({{V}}*32'(b_k) + 32'(li)) +: 32] : 32'd0;
                lanes_g[16*li +: 16] = b_data[16*({{V}}*32'(b_k) + 32'(li)) +: 16];
            end else begin
                lanes_a[32*li +: 32] = 32'd0;
                lanes_b[32*li +: 32] = 32'd0;
                lanes_g[16*li +: 16] = 16'd0;
            end
            lanes_16[16*li +: 16] = a_data[16*({{V}}*32'(a_k) + 32'(li)) +: 16];
        end
    end
    // Rope's table row through reader B first: (cos, sin) pairs, 4 a memory beat.
    reg  [31:0] cs_taken;      // lane beats of the table row handed to the block
    reg  [1:0]  cs_k;
    wire [31:0] cs_beats = head_dim >> ({{LOG_V}} + 1);
    reg  [{{VW_HI}}:0] lanes_cs;
    always @(*) begin
        for (li = 0; li < {{V}}; li = li + 1)
            lanes_cs[32*li +: 32] = b_data[32*({{V}}*32'(cs_k) + 32'(li)) +: 32];
    end
    wire        ro_cs_ready;
    wire        cs_feeding = state == S_RUN && ro && b_valid && cs_taken != cs_beats;
    wire        cs_take = cs_feeding && ro_cs_ready;
    wire        cs_used = cs_take && (cs_k == 2'({{K32}} - 1) || cs_taken + 32'd1 == cs_beats);
    wire        feeding = state == S_RUN && pair_valid && in_taken != lane_beats;
    wire        dq_in_ready, ti_in_ready, r2_in_ready, ro_in_ready, em_in_ready, nq_in_ready;
    wire        ti = !(dq || r2 || ro || em || nq);
    // A register between the gearbox and the blocks: the part-selects, the zeroing and
    // NormQuant's int8 · m stay out of the blocks' first stage.
    reg         st_valid;
    reg  [{{VW_HI}}:0] st_a, st_b;
    reg  [{{VH_HI}}:0] st_16, st_g;
    wire        st_taken = st_valid
        && (dq ? dq_in_ready : r2 ? r2_in_ready : ro ? ro_in_ready : em ? em_in_ready
            : nq ? nq_in_ready : ti_in_ready);
    // The gearbox hands a lane beat on (into the stage).
    wire        blk_take = feeding && (!st_valid || st_taken);
    always @(posedge clk) begin
        if (blk_take) begin
            st_a <= lanes_a;
            st_b <= lanes_b;
            st_16 <= lanes_16;
            st_g <= lanes_g;
        end
        if (rst || state != S_RUN) st_valid <= 1'b0;
        else if (blk_take) st_valid <= 1'b1;
        else if (st_taken) st_valid <= 1'b0;
    end
    // A memory beat is used up after its last lane beat, or the row's: i32 {{K32}} of
    // them, bf16 and i16 {{K16}}, int8 {{K8}}.
    wire [3:0]  a_last_k = em ? 4'({{K16}} - 1) : nq8 ? 4'({{K8}} - 1) : 4'({{K32}} - 1);
    wire [3:0]  b_last_k = nq ? 4'({{K16}} - 1) : 4'({{K32}} - 1);
    wire        row_ends = in_taken + 32'd1 == lane_beats;
    wire        a_used = blk_take && (a_k == a_last_k || row_ends);
    wire        b_used = blk_take && (b_k == b_last_k || row_ends);
    wire        heads = state == S_HEADS && a_valid && b_valid;
    assign a_ready = state == S_FAC0 || state == S_FAC1 || state == S_HEAD_A || state == S_DRAIN
        || state == S_ID || heads || a_used;
    assign b_ready = state == S_HEAD_B || state == S_DRAIN || state == S_GAIN || heads
        || ((two || nq) && b_used) || cs_used;

    // ---- the blocks ----
    reg         dq_cmd_valid, ti_cmd_valid, r2_cmd_valid, ro_cmd_valid, em_cmd_valid;
    reg         nq_cmd_valid;
    wire        dq_cmd_ready, dq_out_valid, dq_done, dq_saturated;
    wire        ti_cmd_ready, ti_out_valid, ti_done;
    wire        r2_cmd_ready, r2_out_valid, r2_done;
    wire        ro_cmd_ready, ro_out_valid, ro_done, ro_saturated;
    wire [{{VW_HI}}:0] ro_out;
    wire        em_cmd_ready, em_out_valid, em_done, em_saturated;
    wire [{{VW_HI}}:0] em_out;
    wire        nq_cmd_ready, nq_out_valid, nq_done;
    wire [{{VQ_HI}}:0] nq_out;
    wire [46:0] nq_max;
    wire [50:0] nq_rms;
    wire [{{VW_HI}}:0] r2_out;
    wire [31:0] r2_frac;
    wire [{{VW_HI}}:0] dq_out;
    wire [{{VB_HI}}:0] ti_out;
    wire        out_ready;
    /* verilator lint_off UNUSEDSIGNAL */ // the factor is the block's own business here
    wire [31:0] dq_k, dq_t;
    /* verilator lint_on UNUSEDSIGNAL */
    {{DEQUANT}} dequant (
        .clk(clk), .rst(rst),
        .cmd_valid(dq_cmd_valid), .cmd_ready(dq_cmd_ready),
        .cmd_max(f_max[46:0]), .cmd_rms(f_rms[50:0]), .cmd_gain_frac(f_shift[3:0]),
        .cmd_w_m(s_m), .cmd_w_e(s_e), .cmd_out_frac(frac),
        .cmd_n(21'(lane_beats << {{LOG_V}})), .cmd_add(add),
        .in_valid(st_valid && dq), .in_ready(dq_in_ready), .in_acc(st_a), .in_x(st_b),
        .out_valid(dq_out_valid), .out_ready(out_ready && dq), .out_y(dq_out),
        .done(dq_done), .saturated(dq_saturated), .factor_k(dq_k), .factor_t(dq_t)
    );
    {{TO_INT8}} to_int8 (
        .clk(clk), .rst(rst),
        .cmd_valid(ti_cmd_valid), .cmd_ready(ti_cmd_ready),
        .cmd_n(21'(lane_beats << {{LOG_V}})), .cmd_y_frac(y_frac), .cmd_unit_m(s_m),
        .cmd_unit_e(s_e),
        .in_valid(st_valid && ti), .in_ready(ti_in_ready), .in_y(st_a),
        .out_valid(ti_out_valid), .out_ready(out_ready && !dq), .out_q(ti_out),
        .done(ti_done)
    );
    {{RELU2_MUL}} relu2_mul (
        .clk(clk), .rst(rst),
        .cmd_valid(r2_cmd_valid), .cmd_ready(r2_cmd_ready),
        .cmd_n(21'(lane_beats << {{LOG_V}})), .cmd_frac(y_frac),
        .in_valid(st_valid && r2), .in_ready(r2_in_ready), .in_g(st_a), .in_u(st_b),
        .out_valid(r2_out_valid), .out_ready(out_ready && r2), .out_y(r2_out),
        .frac_out(r2_frac), .done(r2_done)
    );
    {{ROPE}} rope (
        .clk(clk), .rst(rst),
        .cmd_valid(ro_cmd_valid), .cmd_ready(ro_cmd_ready),
        .cmd_heads(rope_heads), .cmd_half(cs_beats[{{HW_HI}}:0]),
        .cs_valid(cs_feeding), .cs_ready(ro_cs_ready), .cs_data(lanes_cs),
        .in_valid(st_valid && ro), .in_ready(ro_in_ready), .in_y(st_a),
        .out_valid(ro_out_valid), .out_ready(out_ready && ro), .out_y(ro_out),
        .done(ro_done), .saturated(ro_saturated)
    );
    {{EMBED}} embed (
        .clk(clk), .rst(rst),
        .cmd_valid(em_cmd_valid), .cmd_ready(em_cmd_ready),
        .cmd_n(21'(lane_beats << {{LOG_V}})), .cmd_frac(frac),
        .in_valid(st_valid && em), .in_ready(em_in_ready), .in_bf16(st_16),
        .out_valid(em_out_valid), .out_ready(out_ready && em), .out_x(em_out),
        .done(em_done), .saturated(em_saturated)
    );
    {{NORM_QUANT}} norm_quant (
        .clk(clk), .rst(rst),
        .cmd_valid(nq_cmd_valid), .cmd_ready(nq_cmd_ready),
        .cmd_n(21'(n)), .cmd_v_frac(y_frac), .cmd_eps_m(eps_m), .cmd_eps_e(eps_e),
        .in_valid(st_valid && nq), .in_ready(nq_in_ready), .in_v(st_a), .in_g(st_g),
        .out_valid(nq_out_valid), .out_ready(out_ready && nq), .out_q(nq_out),
        .done(nq_done), .max_abs(nq_max), .rms(nq_rms)
    );
    wire        blk_done = dq ? dq_done : r2 ? r2_done : ro ? ro_done : em ? em_done
        : nq ? nq_done : ti_done;
    wire        wide = dq || r2 || ro || em;   // i32 out

    // ---- out: {{K32}} lane beats of i32 or {{K8}} of int8 a 16-byte beat; an i32 row's
    // head first (Relu2Mul's once the block knows its fractional bits: at its first output) ----
    reg  [127:0] word;         // the beat being gathered (zeros beyond the row)
    reg  [3:0]   out_k;
    reg  [31:0]  out_taken;    // lane beats taken from the block this row
    reg          word_full;    // `word` waits for the writer
    reg          head_due;     // the row's head waits for the writer
    reg  [31:0]  pushed;       // beats handed to the writer this row
    // A full word goes to the writer in the clock the next lane beat comes in, so an
    // i32 row streams a memory beat a clock at 4 lanes (`o_in_ready` is the writer's
    // registers alone).
    assign out_ready = state == S_RUN && !head_due && (!word_full || o_in_ready);
    wire         out_take = out_ready
        && (dq ? dq_out_valid : r2 ? r2_out_valid : ro ? ro_out_valid : em ? em_out_valid
            : nq ? nq_out_valid : ti_out_valid);
    wire [3:0]   out_last_k = wide ? 4'({{K32}} - 1) : 4'({{K8}} - 1);
    wire         word_ends = out_k == out_last_k || out_taken + 32'd1 == lane_beats;
    // NormQuant's factors after its row: max, rms; the gain's shift.
    assign o_in_valid = (state == S_RUN && ((head_due && (!r2 || r2_out_valid)) || word_full))
        || (state == S_FACTS && !o_cmd_valid && pushed != 32'd2);
    assign o_in_data = state == S_FACTS
        ? (pushed == 32'd0 ? {13'd0, nq_rms, 17'd0, nq_max} : {96'd0, g_shift})
        : head_due ? {64'd0, n, r2 ? r2_frac : ro ? y_frac : frac} : word;
    wire         o_push = o_in_valid && o_in_ready;

    wire op_known = c_op == {{OP_DEQUANT}} || c_op == {{OP_TO_INT8}} || c_op == {{OP_RELU2_MUL}}
        || c_op == {{OP_ROPE}} || c_op == {{OP_EMBED}} || c_op == {{OP_NORM_QUANT}};
    // Rope: heads of k, n = count · k. Relu2Mul's block holds the whole row: n at most
    // {{MAX_N}}. Rope's half a head whole lane beats, a table row whole memory beats.
    wire [31:0] the_n = c_op == {{OP_ROPE}} ? rope_n[31:0] : c_n;
    wire rope_fits = c_count != 32'd0 && c_count <= 32'd1024 && c_k != 32'd0
        && c_k <= 32'd{{MAX_HEAD_DIM}} && c_k[2:0] == 3'd0
        && c_k[{{LOG_V}}:0] == '0 && rope_n <= 64'd1048576;
    wire fits = op_known && the_n != 32'd0 && the_n <= 32'd1048576 && c_rows != 32'd0
        && (c_op != {{OP_RELU2_MUL}} || c_n <= 32'd{{MAX_N}})
        && (c_op != {{OP_ROPE}} || rope_fits)
        && (c_op != {{OP_EMBED}} || c_n[2:0] == 3'd0)
        && (c_op != {{OP_NORM_QUANT}} || (c_n <= 32'd{{MAX_N}} && (c_n & 32'd{{V_MASK}}) == 32'd0));
    // A row's factors as NormQuant writes them: M below 2^47, r below 2^51 and not 0
    // unless M is, the gain's shift in 0..=15.
    wire factors_ok = f_max[63:47] == '0 && f_rms[63:51] == '0 && f_shift <= 32'd15
        && (f_rms != 64'd0 || f_max == 64'd0);
    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            error <= 2'd0;
            a_cmd_valid <= 1'b0;
            b_cmd_valid <= 1'b0;
            o_cmd_valid <= 1'b0;
            dq_cmd_valid <= 1'b0;
            ti_cmd_valid <= 1'b0;
            r2_cmd_valid <= 1'b0;
            ro_cmd_valid <= 1'b0;
            em_cmd_valid <= 1'b0;
            nq_cmd_valid <= 1'b0;
        end else begin
            if (a_cmd_valid && a_cmd_ready) a_cmd_valid <= 1'b0;
            if (b_cmd_valid && b_cmd_ready) b_cmd_valid <= 1'b0;
            if (o_cmd_valid && o_cmd_ready) o_cmd_valid <= 1'b0;
            if (dq_cmd_valid && dq_cmd_ready) dq_cmd_valid <= 1'b0;
            if (ti_cmd_valid && ti_cmd_ready) ti_cmd_valid <= 1'b0;
            if (r2_cmd_valid && r2_cmd_ready) r2_cmd_valid <= 1'b0;
            if (ro_cmd_valid && ro_cmd_ready) ro_cmd_valid <= 1'b0;
            if (em_cmd_valid && em_cmd_ready) em_cmd_valid <= 1'b0;
            if (nq_cmd_valid && nq_cmd_ready) nq_cmd_valid <= 1'b0;
            case (state)
                S_IDLE: if (cmd_valid) begin
                    c_op <= cmd_op;
                    c_a <= cmd_a;
                    c_b <= cmd_b;
                    c_c <= cmd_c;
                    c_d <= cmd_d;
                    c_n <= cmd_n;
                    c_count <= cmd_count;
                    c_k <= cmd_k;
                    c_position <= cmd_position;
                    c_rows <= cmd_pass_rows;
                    c_frac <= cmd_frac;
                    c_scale_m <= cmd_scale_m;
                    c_scale_e <= cmd_scale_e;
                    c_eps_m <= cmd_eps_m;
                    c_eps_e <= cmd_eps_e;
                    c_add <= cmd_add;
                    state <= S_TAKE;
                end
                // The products the checks and the table's place need, a clock ahead.
                S_TAKE: begin
                    rope_n <= {32'd0, c_count} * {32'd0, c_k};
                    table_off <= {32'd0, c_position} * {31'd0, c_k, 1'b0};
                    state <= S_DECIDE;
                end
                S_DECIDE: begin
                    error <= fits ? 2'd0 : 2'd1;
                    error_row <= 32'd0;
                    saturated <= 1'b0;
                    failed <= 1'b0;
                    if (fits) begin
                        dq <= c_op == {{OP_DEQUANT}};
                        r2 <= c_op == {{OP_RELU2_MUL}};
                        ro <= c_op == {{OP_ROPE}};
                        em <= c_op == {{OP_EMBED}};
                        nq <= c_op == {{OP_NORM_QUANT}};
                        eps_m <= c_eps_m;
                        eps_e <= c_eps_e;
                        facts <= 1'b0;
                        ids_at <= c_d;
                        rope_heads <= c_count[10:0];
                        head_dim <= c_k;
                        table_row_bytes <= c_k << 1;
                        // The pass's first position's row: (cos, sin) i16 pairs, k/2 a row.
                        table_at <= c_b + table_off;
                        in_row <= c_a;
                        in_row_base <= c_a;
                        b_row <= c_b;
                        fac_row <= c_d;
                        out_row <= c_c;
                        n <= the_n;
                        mem_beats <= (the_n + 32'd3) >> 2;
                        out_beats <= c_op == {{OP_TO_INT8}} || c_op == {{OP_NORM_QUANT}}
                            ? (the_n + 32'd15) >> 4 : ((the_n + 32'd3) >> 2) + 32'd1;
                        lane_beats <= (the_n + 32'd{{V}} - 32'd1) >> {{LOG_V}};
                        rows <= c_rows;
                        row <= 32'd0;
                        s_m <= c_scale_m;
                        s_e <= c_scale_e;
                        frac <= c_frac;
                        // Dequant's add; NormQuant's int8 input (its flag 1, the same bit).
                        add <= (c_op == {{OP_DEQUANT}} || c_op == {{OP_NORM_QUANT}}) && c_add;
                        if (c_op == {{OP_NORM_QUANT}}) begin
                            // The gain's shift first, once: a beat at b.
                            b_cmd_valid <= 1'b1;
                            b_cmd_addr <= c_b;
                            b_cmd_beats <= 32'd1;
                            state <= S_GAIN;
                        end else state <= S_ROW;
                    end else state <= S_IDLE;
                end
                S_GAIN: if (b_valid) begin
                    g_shift <= b_data[31:0];
                    if ($signed(b_data[31:0]) < 0 || $signed(b_data[31:0]) > 15) begin
                        error <= 2'd3;
                        state <= S_DRAIN;
                    end else state <= S_ROW;
                end
                S_ROW: begin
                    a_cmd_valid <= 1'b1;
                    if (nq) begin
                        // The input row (a vector, or int8 rows) and the gains after the
                        // gain's 16-byte head.
                        a_cmd_addr <= in_row;
                        a_cmd_beats <= add ? (n + 32'd15) >> 4 : mem_beats + 32'd1;
                        b_cmd_valid <= 1'b1;
                        b_cmd_addr <= b_row + 64'd16;
                        b_cmd_beats <= (n + 32'd7) >> 3;
                        y_frac <= 32'd0 - s_e;
                        state <= add ? S_GO : S_HEAD_A;
                    end else if (em) begin
                        // The beat of the ids that holds this row's.
                        a_cmd_addr <= ids_at + {30'd0, row[31:2], 4'd0};
                        a_cmd_beats <= 32'd1;
                        state <= S_ID;
                    end else if (dq) begin
                        a_cmd_addr <= fac_row;
                        a_cmd_beats <= 32'd2;
                        state <= S_FAC0;
                    end else begin
                        a_cmd_addr <= in_row;
                        a_cmd_beats <= mem_beats + 32'd1;
                        state <= r2 ? S_HEADS : S_HEAD_A;
                    end
                    if (r2) begin
                        b_cmd_valid <= 1'b1;
                        b_cmd_addr <= b_row;
                        b_cmd_beats <= mem_beats + 32'd1;
                    end
                    if (ro) begin
                        b_cmd_valid <= 1'b1;
                        b_cmd_addr <= table_at;
                        b_cmd_beats <= table_row_bytes >> 4;
                    end
                end
                // Embed: the row's token id, then its embedding row (bf16, n of them).
                S_ID: if (a_valid) begin
                    in_row <= in_row_base + {32'd0, a_data[32*row[1:0] +: 32]} * {32'd0, n << 1};
                    state <= S_TABLE;
                end
                S_TABLE: if (a_done && !a_cmd_valid) begin
                    a_cmd_valid <= 1'b1;
                    a_cmd_addr <= in_row;
                    a_cmd_beats <= n >> 3;
                    state <= S_GO;
                end
                // Relu2Mul's gate and up: their lengths, the same fractional bits.
                S_HEADS: if (heads) begin
                    y_frac <= a_data[31:0];
                    if (a_data[63:32] != n || b_data[63:32] != n || a_data[31:0] != b_data[31:0]) begin
                        error <= 2'd3;
                        error_row <= row;
                        state <= S_DRAIN;
                    end else state <= S_GO;
                end
                S_FAC0: if (a_valid) begin
                    f_max <= a_data[63:0];
                    f_rms <= a_data[127:64];
                    state <= S_FAC1;
                end
                S_FAC1: if (a_valid) begin
                    f_shift <= a_data[31:0];
                    state <= S_CHECK;
                end
                S_CHECK: if (a_done && !a_cmd_valid) begin
                    if (a_error) failed <= 1'b1;
                    if (!factors_ok) begin
                        error <= 2'd3;
                        error_row <= row;
                        state <= S_IDLE;
                    end else if (add) begin
                        b_cmd_valid <= 1'b1;
                        b_cmd_addr <= out_row;
                        b_cmd_beats <= mem_beats + 32'd1;
                        state <= S_HEAD_B;
                    end else state <= S_GO;
                end
                // ToInt8's input, Rope's vector: its length; its fractional bits are the
                // block's (ToInt8) or stay (Rope).
                S_HEAD_A: if (a_valid) begin
                    y_frac <= a_data[31:0];
                    if (a_data[63:32] != n) begin
                        error <= 2'd3;
                        error_row <= row;
                        state <= S_DRAIN;
                    end else state <= S_GO;
                end
                // Dequant's residual: its length and fractional bits F.
                S_HEAD_B: if (b_valid) begin
                    if (b_data[63:32] != n || b_data[31:0] != frac) begin
                        error <= 2'd3;
                        error_row <= row;
                        state <= S_DRAIN;
                    end else state <= S_GO;
                end
                S_DRAIN: if (a_done && !a_cmd_valid && b_done && !b_cmd_valid) begin
                    state <= S_IDLE;
                end
                S_GO: begin
                    if (dq) begin
                        a_cmd_valid <= 1'b1;
                        a_cmd_addr <= in_row;
                        a_cmd_beats <= mem_beats;
                        dq_cmd_valid <= 1'b1;
                    end else if (r2) r2_cmd_valid <= 1'b1;
                    else if (ro) ro_cmd_valid <= 1'b1;
                    else if (em) em_cmd_valid <= 1'b1;
                    else if (nq) nq_cmd_valid <= 1'b1;
                    else ti_cmd_valid <= 1'b1;
                    cs_taken <= 32'd0;
                    cs_k <= 2'd0;
                    o_cmd_valid <= 1'b1;
                    in_taken <= 32'd0;
                    a_k <= 4'd0;
                    b_k <= 4'd0;
                    out_taken <= 32'd0;
                    out_k <= 4'd0;
                    word <= 128'd0;
                    word_full <= 1'b0;
                    head_due <= wide;
                    pushed <= 32'd0;
                    state <= S_RUN;
                end
                S_RUN: begin
                    if (cs_take) begin
                        cs_taken <= cs_taken + 32'd1;
                        cs_k <= cs_used ? 2'd0 : cs_k + 2'd1;
                    end
                    if (blk_take) begin
                        in_taken <= in_taken + 32'd1;
                        a_k <= a_used ? 4'd0 : a_k + 4'd1;
                        b_k <= b_used ? 4'd0 : b_k + 4'd1;
                    end
                    // The word pushed, then (the same clock) the next lane beat into a
                    // fresh one: the later assignments win.
                    if (o_push) begin
                        pushed <= pushed + 32'd1;
                        if (head_due) head_due <= 1'b0;
                        else begin
                            word_full <= 1'b0;
                            word <= 128'd0;
                        end
                    end
                    if (out_take) begin
                        if (wide)
                            word[32*{{V}}*out_k +: 32*{{V}}] <= dq ? dq_out : r2 ? r2_out : ro ? ro_out
                                                                   : em_out;
                        else word[8*{{V}}*out_k +: 8*{{V}}] <= nq ? nq_out : ti_out;
                        out_taken <= out_taken + 32'd1;
                        out_k <= word_ends ? 4'd0 : out_k + 4'd1;
                        if (word_ends) word_full <= 1'b1;
                    end
                    // The row is over when every beat is written and answered.
                    if (pushed == out_beats && o_done && !o_cmd_valid && a_done && !a_cmd_valid
                        && (!two || b_done) && (!ro || (b_done && !b_cmd_valid)) && blk_done
                        && !dq_cmd_valid && !ti_cmd_valid && !r2_cmd_valid && !ro_cmd_valid
                        && !em_cmd_valid && !nq_cmd_valid) begin
                        if ((dq && dq_saturated) || (ro && ro_saturated) || (em && em_saturated))
                            saturated <= 1'b1;
                        if (a_error || ((two || ro || nq) && b_error) || o_error) failed <= 1'b1;
                        if (nq) begin
                            // The row's factors: a second region of 2 beats.
                            o_cmd_valid <= 1'b1;
                            facts <= 1'b1;
                            pushed <= 32'd0;
                            state <= S_FACTS;
                        end else state <= S_NEXT;
                    end
                end
                S_FACTS: begin
                    if (o_push) pushed <= pushed + 32'd1;
                    if (pushed == 32'd2 && o_done && !o_cmd_valid) begin
                        if (o_error) failed <= 1'b1;
                        facts <= 1'b0;
                        state <= S_NEXT;
                    end
                end
                S_NEXT: begin
                    if (failed) begin
                        error <= 2'd2;
                        error_row <= row;
                        state <= S_IDLE;
                    end else if (row + 32'd1 == rows) state <= S_IDLE;
                    else begin
                        row <= row + 32'd1;
                        // Dequant: results rows; the others: vector rows (a head first).
                        // (NormQuant's int8 input: int8 rows.)
                        in_row <= nq8 ? in_row + {28'd0, out_beats, 4'd0}
                                : in_row + {28'd0, mem_beats, 4'd0} + (dq ? 64'd0 : 64'd16);
                        // (Embed's comes from the next id.)
                        if (!nq) b_row <= b_row + {28'd0, mem_beats, 4'd0} + 64'd16;
                        fac_row <= fac_row + 64'd32;
                        table_at <= table_at + {32'd0, table_row_bytes};
                        out_row <= out_row + {28'd0, out_beats, 4'd0};
                        state <= S_ROW;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Command;

    fn shape(lanes: usize, ports: usize) -> VectorUnitShape {
        VectorUnitShape {
            lanes,
            max_n: 4096,
            max_head_dim: 96,
            ports,
        }
    }

    fn relu2_mul(n: u32) -> Command {
        Command::Relu2Mul {
            gate: 0,
            up: 0,
            dst: 0,
            n,
        }
    }

    /// Rows, latency and lanes move the clocks the way the unit's structure says: a
    /// row more costs a row's clocks; a clock more of latency costs a Relu2Mul row two
    /// (its reads, then its answered write); twice the lanes take about half the clocks;
    /// at 4 lanes the gate's and the up's rows on one port take a memory beat each a
    /// clock, one row's beats more than on two ports.
    #[test]
    fn the_clocks_follow_rows_latency_lanes_and_ports() {
        let s = shape(2, 2);
        let c = relu2_mul(4096);
        let one = s.cycles(&c, 1, 1).unwrap();
        let two = s.cycles(&c, 2, 1).unwrap();
        let row = two - one;
        assert_eq!(s.cycles(&c, 3, 1).unwrap() - two, row);
        assert_eq!(s.cycles(&c, 1, 2).unwrap() - one, 2);
        let four = shape(4, 2).cycles(&c, 1, 1).unwrap();
        assert!(four < one && 2 * four > one, "{four} against {one}");
        let shared = shape(4, 1).cycles(&c, 1, 1).unwrap();
        assert_eq!(shared - four, (16 + 4 * 4096) / 16);
    }

    #[test]
    fn a_command_of_another_unit_is_refused() {
        let e = shape(2, 1)
            .cycles(
                &Command::Matmul {
                    layer: 0,
                    which: 0,
                    src: 0,
                    weights: 0,
                    dst: 0,
                    m: 8,
                    k: 8,
                },
                1,
                1,
            )
            .unwrap_err();
        assert!(e.contains("not an element-wise command"), "{e}");
    }
}
