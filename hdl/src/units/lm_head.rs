//! The LM-head unit.
//!
//! `tern_lm_head_unit` runs `LmHead`:
//!
//! ```text
//! cmd ─► reader A: the pass's last int8 row (q) ─► (4-bit: two beats joined) ─► the engine's vector
//!     ─► reader A: the head's rows, P beats a clock ─► the engine's weights
//!     ─► reader B (beside A, same ports): the mantissas ─► a gearbox ─► the engine
//!     ─► scores (with the flag) two a beat ─► the writer ─► output_at + 16 ...
//!     ─► the output's head (next token, flag, rows) ─► output_at; done, next token
//! ```
//!
//! Reader A uses every port; reader B (one port) shares port 0 with it through a read
//! arbiter; the writer uses port 0's write channels, which nothing else uses.
//!
//! A unit is built for one head format (`HeadFormat`): int8 with a mantissa a row
//! (16 weights a port a clock), or 4-bit with a mantissa a group of `G` (32 weights a
//! port a clock: the engine's int8 vector is then two memory beats wide, and `G` smaller
//! than a beat puts `lanes / G` groups side by side). A command in the other format, or
//! with another group, is refused (error 1).

use super::ReaderWiring;
use crate::interconnect::{
    read_arbiter_verilog, stripe_reader_verilog, stripe_reader_verilog_named, StripeShape,
    STRIPE_READER_MODULE,
};
use crate::program::HeadFormat;
use crate::vector::{lm_head_verilog, LmHeadShape, LM_HEAD_MODULE};

pub const LM_HEAD_UNIT_MODULE: &str = "tern_lm_head_unit";
pub const LM_HEAD_UNIT_FILE: &str = "tern_lm_head_unit.v";
/// Reader B's module: the stripe reader on one port (the mantissas are 1/768 of a head's
/// bytes; four ports would cost four FIFOs for nothing).
const MANTISSA_READER_MODULE: &str = "tern_stripe_reader_one_port";

/// What an LM-head unit is built for: the board's ports, the widest row and the head's
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadUnitShape {
    /// Memory ports (128-bit), 1, 2 or 4: the engine takes the ports' whole width a
    /// clock, 16·ports int8 weights or 32·ports 4-bit ones.
    pub ports: usize,
    /// The widest row (the model's hidden size), two engine beats at the least.
    pub max_width: usize,
    /// The head's format: int8, or 4-bit with a mantissa a group (a power of two of at
    /// least `lanes / 8`: a memory beat holds 8 mantissas).
    pub format: HeadFormat,
}

impl LmHeadUnitShape {
    /// Weights a clock.
    pub fn lanes(&self) -> usize {
        match self.format {
            HeadFormat::Int8 => 16 * self.ports,
            HeadFormat::Int4 { .. } => 32 * self.ports,
        }
    }

    /// Groups side by side in an engine beat (1 when a group is one or more beats).
    fn slices(&self) -> usize {
        match self.format {
            HeadFormat::Int8 => 1,
            HeadFormat::Int4 { group } => (self.lanes() / group.max(1) as usize).max(1),
        }
    }

    /// The engine inside.
    pub fn engine(&self) -> LmHeadShape {
        LmHeadShape {
            lanes: self.lanes(),
            weight_bits: match self.format {
                HeadFormat::Int8 => 8,
                HeadFormat::Int4 { .. } => 4,
            },
            slices: self.slices(),
            max_width: self.max_width,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if ![1, 2, 4].contains(&self.ports) {
            return Err(format!("LM-head unit: {} ports, not 1, 2 or 4", self.ports));
        }
        if let HeadFormat::Int4 { group } = self.format {
            let g = group as usize;
            if !g.is_power_of_two() || g < (self.lanes() / 8).max(2) {
                return Err(format!(
                    "LM-head unit: a 4-bit head's group of {group} is not a power of two of at least {} (a memory beat holds 8 mantissas, one for each of up to 8 groups of a {}-weight beat)",
                    (self.lanes() / 8).max(2),
                    self.lanes()
                ));
            }
            if !self.max_width.is_multiple_of(g) {
                return Err(format!(
                    "LM-head unit: rows of {} are not whole groups of {group}",
                    self.max_width
                ));
            }
        }
        self.engine().check().map_err(|e| e.to_string())
    }

    /// Reader A's shape: bursts of 16 beats, 8 in flight a port (4 cover the ports'
    /// latency alone, not the one top's arbiters and queues); reader B (the mantissas,
    /// one port) 4.
    pub fn readers(&self) -> StripeShape {
        StripeShape {
            ports: self.ports,
            burst: 16,
            outstanding: 8,
        }
    }
}

/// Clocks the unit needs at the least for a head of `rows` × `width`: the vector's memory
/// beats, then every row's engine beats, at one a clock. The memory decides the rest.
pub fn lm_head_unit_floor_clocks(shape: LmHeadUnitShape, rows: usize, width: usize) -> u64 {
    let b = (width / shape.lanes()) as u64;
    (width / (16 * shape.ports)) as u64 + rows as u64 * b
}

/// The unit's Verilog, one file: the unit, the engine, the stripe reader and the read
/// arbiter.
pub fn lm_head_unit_verilog(shape: LmHeadUnitShape) -> Result<String, String> {
    shape.check()?;
    let engine = shape.engine();
    let p = shape.ports;
    let lanes = engine.lanes;
    let log_lanes = lanes.trailing_zeros();
    // The format the unit takes: the command's group (0 for int8), the engine's beats a
    // group, how a mantissa count and a weight byte count follow from rows × width.
    let (group, log_group, wide) = match shape.format {
        HeadFormat::Int8 => (0, 0, false),
        HeadFormat::Int4 { group } => (group, group.trailing_zeros(), true),
    };
    let slices = engine.slices;
    let ReaderWiring {
        ports_io,
        wires,
        reader_a,
        reader_b,
        arbiters,
        ..
    } = ReaderWiring::of(p, STRIPE_READER_MODULE, MANTISSA_READER_MODULE);
    let unit = UNIT_TEMPLATE
        .replace("{{PORTS_IO}}", &ports_io)
        .replace("{{WIRES}}", &wires)
        .replace("{{Q_PATH}}", if wide { Q_PATH_WIDE } else { Q_PATH })
        .replace("{{READER_A}}", &reader_a)
        .replace("{{READER_B}}", &reader_b)
        .replace("{{ARBITERS}}", &arbiters)
        .replace("{{MODULE}}", LM_HEAD_UNIT_MODULE)
        .replace("{{ENGINE}}", LM_HEAD_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{P}}", &p.to_string())
        .replace("{{LANES}}", &lanes.to_string())
        .replace("{{LOG_LANES}}", &log_lanes.to_string())
        .replace("{{DW_HI}}", &(128 * p - 1).to_string())
        .replace(
            "{{CB_HI}}",
            &(crate::bits::ceil_log2(p + 1) - 1).to_string(),
        )
        .replace(
            "{{BB}}",
            &crate::bits::ceil_log2(engine.max_beats() + 1).to_string(),
        )
        .replace(
            "{{BB_HI}}",
            &(crate::bits::ceil_log2(engine.max_beats() + 1) - 1).to_string(),
        )
        .replace("{{MAXB}}", &engine.max_beats().to_string())
        .replace(
            "{{FORMAT}}",
            &match shape.format {
                HeadFormat::Int8 => "int8 head, a mantissa a row".to_string(),
                HeadFormat::Int4 { group } => format!("4-bit head, a mantissa a group of {group}"),
            },
        )
        .replace("{{GROUP}}", &group.to_string())
        .replace("{{WIDE}}", if wide { "1'b1" } else { "1'b0" })
        .replace("{{QW_HI}}", &(8 * lanes - 1).to_string())
        .replace("{{S}}", &slices.to_string())
        .replace("{{MS_HI}}", &(16 * slices - 1).to_string())
        .replace(
            "{{MAT_HI}}",
            &(crate::bits::ceil_log2(8 / slices).max(1) - 1).to_string(),
        )
        .replace("{{MAT_LAST}}", &(8 / slices - 1).to_string())
        .replace(
            "{{MAT_BITS}}",
            &crate::bits::ceil_log2(8 / slices).max(1).to_string(),
        )
        .replace("{{MAT_SHIFT}}", &(4 + slices.trailing_zeros()).to_string())
        .replace(
            "{{M_COUNT}}",
            &if wide {
                format!("w_elems >> {log_group}")
            } else {
                "{32'd0, rows}".to_string()
            },
        )
        .replace("{{W_BYTES}}", if wide { "w_elems >> 1" } else { "w_elems" })
        .replace(
            "{{GROUP_BEATS}}",
            &if !wide {
                "c_width >> {{LOG_LANES}}".replace("{{LOG_LANES}}", &log_lanes.to_string())
            } else if slices > 1 {
                "32'd1".to_string()
            } else {
                format!("32'd{}", group as usize / lanes)
            },
        );
    debug_assert!(crate::bits::filled(&unit), "a placeholder left");
    let mantissa_reader = StripeShape {
        ports: 1,
        outstanding: 4,
        ..shape.readers()
    };
    Ok(format!(
        "{unit}/* verilator lint_off DECLFILENAME */ // the blocks it is made of\n{}{}{}{}",
        lm_head_verilog(engine).map_err(|e| e.to_string())?,
        stripe_reader_verilog(shape.readers())?,
        stripe_reader_verilog_named(mantissa_reader, MANTISSA_READER_MODULE)?,
        read_arbiter_verilog(2, 16)?
    ))
}

/// The int8 vector into the engine: a memory beat is an engine beat.
const Q_PATH: &str = "    wire q_valid_e = a_valid && state == S_Q;
    wire [{{QW_HI}}:0] q_data_e = a_data;
    wire q_a_ready = e_q_ready;
";

/// ... or (4-bit head, twice the lanes) two memory beats are one, the low one held.
const Q_PATH_WIDE: &str = "    reg [{{DW_HI}}:0] q_lo;
    reg q_half;                  // the low beat is held
    wire q_a_ready = !q_half || e_q_ready;
    always @(posedge clk)
        if (rst || state != S_Q) q_half <= 1'b0;
        else if (a_valid && q_a_ready) begin
            if (!q_half) q_lo <= a_data;
            q_half <= !q_half;
        end
    wire q_valid_e = a_valid && state == S_Q && q_half;
    wire [{{QW_HI}}:0] q_data_e = {a_data, q_lo};
";

const UNIT_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the LM-head unit (hdl/src/units/lm_head.rs): the LmHead
// command ({{FORMAT}}) on {{P}} memory port(s), {{LANES}} weights a clock.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{PORTS_IO}}    // Port 0's write channels: the output.
    output reg          w_awvalid,
    input  wire         w_awready,
    output reg  [63:0]  w_awaddr,
    output reg  [7:0]   w_awlen,
    output reg          w_wvalid,
    input  wire         w_wready,
    output reg  [127:0] w_wdata,
    output reg  [15:0]  w_wstrb,
    output wire         w_wlast,
    input  wire         w_bvalid,
    output wire         w_bready,
    input  wire [1:0]   w_bresp,
    // The command's fields (docs/program.md, LmHead), the pass's rows and its output.
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [63:0]  cmd_src,
    input  wire [63:0]  cmd_weights,
    input  wire [63:0]  cmd_mantissas,
    input  wire [31:0]  cmd_rows,
    input  wire [31:0]  cmd_width,
    input  wire         cmd_scores,
    // A 4-bit head's group (flag 2's count), 0 for an int8 head.
    input  wire [31:0]  cmd_group,
    input  wire [31:0]  cmd_pass_rows,
    input  wire [63:0]  cmd_output_at,
    output wire         done,
    // Why the last command did not run or went wrong: 0 none, 1 a shape the unit is not
    // built for, 2 an error response from memory.
    output reg  [1:0]   error,
    output reg  [31:0]  next
);
    localparam [2:0] S_IDLE = 3'd0, S_Q = 3'd1, S_W = 3'd2, S_ENGINE = 3'd3, S_DRAIN = 3'd4,
                     S_SIZE = 3'd5, S_CHECK = 3'd6;
    reg [2:0] state;
    assign cmd_ready = state == S_IDLE;
    assign done = state == S_IDLE;
    reg [63:0] weights_at, head_at;
    reg [31:0] rows, weight_beats;
    reg scores;
    // The command's fields, held from its take: its sizes are worked out over two clocks
    // (the products, then the sums and the checks), not in the clock that takes it.
    reg [63:0] c_src, c_mantissas;
    reg [31:0] c_width, c_group, c_pass_rows;
    reg [63:0] c_last_row;   // (pass_rows − 1) · a row's bytes
    reg [63:0] c_elems;      // rows · width
{{WIRES}}
    // ---- reader A: the vector, then the weights ----
    reg         a_cmd_valid;
    reg  [63:0] a_cmd_addr;
    reg  [31:0] a_cmd_beats;
    wire        a_valid, a_done, a_error;
    wire        a_ready;
    wire [{{DW_HI}}:0] a_data;
    /* verilator lint_off UNUSEDSIGNAL */ // commanded only when done; words always whole
    wire        a_cmd_ready, a_last, b_cmd_ready, b_last;
    wire [{{CB_HI}}:0] a_beats;
    wire        b_beats;
    /* verilator lint_on UNUSEDSIGNAL */
{{READER_A}}    // ---- reader B: the mantissas ----
    reg         b_cmd_valid;
    reg  [63:0] b_cmd_addr;
    reg  [31:0] b_cmd_beats;
    wire        b_valid, b_done, b_error;
    wire        b_ready;
    wire [127:0] b_data;
{{READER_B}}{{ARBITERS}}
    // ---- the mantissas: a beat of 8 u16 from reader B (one port), {{S}} a group beat ----
    reg [127:0] m_word;
    reg [{{MAT_HI}}:0]   m_at;         // the next mantissas in the beat
    reg         m_full;       // m_word holds mantissas not yet taken
    wire [{{MS_HI}}:0] e_m = m_word[{m_at, {{MAT_SHIFT}}'d0} +: {{MS_HI}} + 1];
    wire e_m_ready;
    wire e_m_valid = m_full;
    wire m_next = e_m_valid && e_m_ready;
    wire m_last = m_at == {{MAT_BITS}}'d{{MAT_LAST}};
    assign b_ready = !m_full || (m_next && m_last);
    always @(posedge clk) begin
        if (rst || state == S_IDLE) begin
            m_full <= 1'b0;
            m_at <= '0;
        end else if (b_valid && b_ready) begin
            m_word <= b_data;
            m_full <= 1'b1;
            m_at <= '0;
        end else if (m_next) begin
            if (m_last) m_full <= 1'b0;
            else m_at <= m_at + {{MAT_BITS}}'d1;
        end
    end

    // ---- the engine ----
    reg         e_cmd_valid;
    wire        e_done, e_error;
    wire        e_q_ready, e_in_ready, e_out_valid;
    wire [63:0] e_score;
    /* verilator lint_off UNUSEDSIGNAL */ // commanded only when done; the row is the answer
    wire        e_cmd_ready;
    wire [63:0] e_best_score;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [23:0] e_best_row;
    reg  [{{BB_HI}}:0] e_beats, e_group_beats;
{{Q_PATH}}    assign a_ready = state == S_Q ? q_a_ready : state == S_W ? e_in_ready : 1'b0;
    wire e_out_ready;
    {{ENGINE}} engine (
        .clk(clk), .rst(rst),
        .cmd_valid(e_cmd_valid), .cmd_ready(e_cmd_ready), .cmd_rows(rows[23:0]),
        .cmd_beats(e_beats), .cmd_group_beats(e_group_beats), .cmd_scores(scores),
        .q_valid(q_valid_e), .q_ready(e_q_ready), .q_data(q_data_e),
        .in_valid(a_valid && state == S_W), .in_ready(e_in_ready), .in_w(a_data),
        .m_valid(e_m_valid), .m_ready(e_m_ready), .m_data(e_m),
        .out_valid(e_out_valid), .out_ready(e_out_ready), .out_score(e_score),
        .done(e_done), .error(e_error), .best_row(e_best_row), .best_score(e_best_score)
    );

    // ---- the writer: scores two a beat in bursts of up to 16 beats (none across 4 KiB),
    // then the head ----
    reg [127:0] sbuf [0:15];
    reg [4:0]   sbuf_n;       // beats in the buffer
    reg         half;         // a score waits for its pair
    reg [63:0]  half_score;
    reg [63:0]  score_at;     // where the buffer's first beat goes
    reg [1:0]   wstate;       // 0 filling, 1 address, 2 data, 3 response
    reg [4:0]   wsent;
    reg         flush;        // the engine is done: write what is left, then the head
    reg         last_half;    // the buffer's last beat holds one score only
    reg         head_mode;    // the burst in progress is the head
    reg         head_written;
    // A burst never crosses a 4 KiB boundary (AXI): the buffer is full at the boundary.
    wire [8:0]  page_left = 9'd256 - {1'b0, score_at[11:4]};
    wire [4:0]  sbuf_cap = page_left >= 9'd16 ? 5'd16 : page_left[4:0];
    assign e_out_ready = wstate == 2'd0 && sbuf_n != sbuf_cap && !flush;
    assign w_wlast = head_mode || wsent + 5'd1 == sbuf_n;
    assign w_bready = wstate == 2'd3;
    wire [127:0] head_word = {32'd0, rows, 31'd0, scores, next};
    wire take_score = e_out_valid && e_out_ready;
    always @(posedge clk) begin
        if (take_score && half) sbuf[sbuf_n[3:0]] <= {e_score, half_score};
        if (take_score && !half) half_score <= e_score;
        if (state == S_DRAIN && wstate == 2'd0 && !flush && half)
            sbuf[sbuf_n[3:0]] <= {64'd0, half_score};
        if (rst || state == S_IDLE) begin
            wstate <= 2'd0;
            sbuf_n <= 5'd0;
            half <= 1'b0;
            flush <= 1'b0;
            last_half <= 1'b0;
            head_mode <= 1'b0;
            head_written <= 1'b0;
            w_awvalid <= 1'b0;
            w_wvalid <= 1'b0;
            score_at <= cmd_output_at + 64'd16;
        end else begin
            if (take_score) begin
                half <= !half;
                if (half) sbuf_n <= sbuf_n + 5'd1;
            end
            // The engine is done: the odd score left goes out alone.
            if (state == S_DRAIN && wstate == 2'd0 && !flush) begin
                if (half) begin
                    sbuf_n <= sbuf_n + 5'd1;
                    half <= 1'b0;
                    last_half <= 1'b1;
                end
                flush <= 1'b1;
            end
            case (wstate)
                2'd0: if (sbuf_n == sbuf_cap || (flush && sbuf_n != 5'd0)) begin
                    w_awaddr <= score_at;
                    w_awlen <= 8'(sbuf_n) - 8'd1;
                    w_awvalid <= 1'b1;
                    head_mode <= 1'b0;
                    wstate <= 2'd1;
                end else if (flush && !head_written) begin
                    w_awaddr <= head_at;
                    w_awlen <= 8'd0;
                    w_awvalid <= 1'b1;
                    head_mode <= 1'b1;
                    wstate <= 2'd1;
                end
                2'd1: if (w_awready) begin
                    w_awvalid <= 1'b0;
                    wsent <= 5'd0;
                    w_wdata <= head_mode ? head_word : sbuf[0];
                    w_wstrb <= (!head_mode && sbuf_n == 5'd1 && last_half) ? 16'h00ff : 16'hffff;
                    w_wvalid <= 1'b1;
                    wstate <= 2'd2;
                end
                2'd2: if (w_wready) begin
                    if (w_wlast) begin
                        w_wvalid <= 1'b0;
                        wstate <= 2'd3;
                    end else begin
                        wsent <= wsent + 5'd1;
                        w_wdata <= sbuf[wsent[3:0] + 4'd1];
                        w_wstrb <= (wsent + 5'd2 == sbuf_n && last_half) ? 16'h00ff : 16'hffff;
                    end
                end
                default: if (w_bvalid) begin
                    wstate <= 2'd0;
                    if (head_mode) head_written <= 1'b1;
                    else begin
                        score_at <= score_at + {55'd0, sbuf_n, 4'd0};
                        sbuf_n <= 5'd0;
                    end
                end
            endcase
        end
    end
    wire write_error = wstate == 2'd3 && w_bvalid && w_bresp != 2'd0;

    // ---- the command ----
    // The pass's last int8 row: src + (pass_rows − 1) · width rounded up to 16.
    wire [63:0] row_bytes = {32'd0, c_width + 32'd15} & ~64'd15;
    wire [63:0] q_at = c_src + c_last_row;
    /* verilator lint_off UNUSEDSIGNAL */ // a whole number of beats: the low bits are 0
    wire [63:0] w_elems = c_elems;
    wire [63:0] w_bytes = {{W_BYTES}};
    wire [63:0] m_count = {{M_COUNT}};
    /* verilator lint_on UNUSEDSIGNAL */
    // The format and group the unit is built for, rows of whole engine beats and groups.
    wire fits = c_width[{{LOG_LANES}}-1:0] == '0
        && (c_width >> {{LOG_LANES}}) >= 32'd2 && (c_width >> {{LOG_LANES}}) <= 32'd{{MAXB}}
        && c_group == 32'd{{GROUP}} && (!{{WIDE}} || (c_width & (32'd{{GROUP}} - 32'd1)) == '0)
        && rows != 32'd0 && rows < 32'd16777216 && w_elems[63:36] == '0
        && c_pass_rows != 32'd0;
    always @(posedge clk) begin
        e_cmd_valid <= 1'b0;
        a_cmd_valid <= 1'b0;
        b_cmd_valid <= 1'b0;
        if (rst) begin
            state <= S_IDLE;
            error <= 2'd0;
            next <= 32'd0;
        end else begin
            if (write_error) error <= 2'd2;
            case (state)
            S_IDLE: if (cmd_valid) begin
                error <= 2'd0;
                rows <= cmd_rows;
                scores <= cmd_scores;
                weights_at <= cmd_weights;
                head_at <= cmd_output_at;
                c_src <= cmd_src;
                c_mantissas <= cmd_mantissas;
                c_width <= cmd_width;
                c_group <= cmd_group;
                c_pass_rows <= cmd_pass_rows;
                state <= S_SIZE;
            end
            S_SIZE: begin
                c_last_row <= ({32'd0, c_pass_rows} - 64'd1) * row_bytes;
                c_elems <= {32'd0, rows} * {32'd0, c_width};
                state <= S_CHECK;
            end
            S_CHECK: if (!fits) begin
                error <= 2'd1;
                state <= S_IDLE;
            end else begin
                weight_beats <= w_bytes[35:4];
                e_beats <= {{BB}}'(c_width >> {{LOG_LANES}});
                e_group_beats <= {{BB}}'({{GROUP_BEATS}});
                e_cmd_valid <= 1'b1;
                a_cmd_addr <= q_at;
                a_cmd_beats <= c_width >> 4;
                a_cmd_valid <= 1'b1;
                b_cmd_addr <= c_mantissas;
                b_cmd_beats <= 32'((m_count + 64'd7) >> 3);
                b_cmd_valid <= 1'b1;
                state <= S_Q;
            end
            // The vector in; then the weights (reader A again).
            S_Q: if (a_done && !a_cmd_valid && !e_q_ready && !e_cmd_valid) begin
                a_cmd_addr <= weights_at;
                a_cmd_beats <= weight_beats;
                a_cmd_valid <= 1'b1;
                state <= S_W;
            end
            S_W: if (a_done && !a_cmd_valid) state <= S_ENGINE;
            S_ENGINE: if (e_done) begin
                if (a_error || b_error) error <= 2'd2;
                if (e_error) error <= 2'd1;
                next <= {8'd0, e_best_row};
                state <= S_DRAIN;
            end
            default: if (head_written && b_done) state <= S_IDLE;  // S_DRAIN
            endcase
        end
    end
endmodule
`default_nettype wire
"#;
