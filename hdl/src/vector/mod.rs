//! The vector unit's RTL (docs/vector.md): the operations a token needs besides the
//! ternary matmuls and the attention, in the integers the golden model
//! (`tern-sim`'s `golden::vector`) defines. Written as Verilog with the lane count
//! filled in, as the accelerator top is.
//!
//! First block: `norm_quant` — RMSNorm and absmax int8 quantisation in one. Lanes `V`
//! take one `(v: i32, g: i16)` pair each per beat:
//!
//! ```text
//! cmd (n, v_frac, eps) ─► LOAD: p = v·g per lane into a buffer; M = max|p|, S = Σ v²
//!                     ─► DIVIDE: S / n (restoring, a bit a clock)
//!                     ─► ROOT: r = isqrt(floor(S/n) + E), E = floor(eps · 2^(2·v_frac))
//!                     ─► EMIT: per beat, q = floor((254|p| + M) / 2M) with p's sign
//!                              (7 quotient bits in a 9-stage pipeline), V int8 a clock
//!                     ─► done: M and r held for the dequantisation factor
//! ```

use std::fmt::Write;

mod lm_head;
pub use lm_head::*;

pub const NORM_QUANT_MODULE: &str = "tern_norm_quant";
pub const NORM_QUANT_FILE: &str = "tern_norm_quant.v";

/// A shape no block can be built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vector unit: {0}")]
pub struct ShapeError(pub String);

/// Shape of a `norm_quant` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormQuantShape {
    /// Elements per beat.
    pub lanes: usize,
    /// Longest vector, in elements (a multiple of `lanes`): the buffer's size.
    pub max_n: usize,
}

impl NormQuantShape {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=64).contains(&self.lanes) {
            return Err(format!("lanes = {} is outside 1..=64", self.lanes));
        }
        if self.max_n == 0 || self.max_n > 1 << 20 || !self.max_n.is_multiple_of(self.lanes) {
            return Err(format!(
                "max_n = {} is not a multiple of the {} lanes in 1..=2^20",
                self.max_n, self.lanes
            ));
        }
        Ok(())
    }

    /// Buffer words (beats of the longest vector).
    pub fn depth(&self) -> usize {
        self.max_n / self.lanes
    }

    /// Bits of a beat counter (enough to hold `depth`, and one more).
    pub fn count_bits(&self) -> usize {
        (usize::BITS - self.depth().leading_zeros()) as usize + 1
    }

    /// Bits of a buffer address.
    pub fn address_bits(&self) -> usize {
        (self.depth().next_power_of_two().trailing_zeros() as usize).max(1)
    }
}

/// Clocks of one command from its offer to `done` with the last output taken, inputs
/// always valid and outputs always taken: the command (1), a beat a clock in, the
/// division (84), the root (1 + 51), then the emission pipeline's fill (9) and a beat a
/// clock out.
pub fn norm_quant_clocks(shape: NormQuantShape, n: usize) -> u64 {
    let beats = (n / shape.lanes) as u64;
    1 + beats + 84 + 52 + 9 + beats
}

/// The `norm_quant` block's Verilog.
pub fn norm_quant_verilog(shape: NormQuantShape) -> Result<String, ShapeError> {
    shape.check().map_err(ShapeError)?;
    let v = shape.lanes;
    let cw = shape.count_bits();
    let mut lanes_load = String::new();
    let mut lanes_emit = String::new();
    for l in 0..v {
        writeln!(
            lanes_load,
            "    wire signed [31:0] v{l} = in_v[{hi}:{lo}];\n    wire signed [15:0] g{l} = in_g[{ghi}:{glo}];\n    wire signed [47:0] p{l} = v{l} * g{l};\n    wire [46:0] a{l} = p{l}[47] ? 47'(-p{l}) : p{l}[46:0];\n    wire [63:0] sq{l} = 64'(v{l} * v{l});",
            hi = 32 * l + 31,
            lo = 32 * l,
            ghi = 16 * l + 15,
            glo = 16 * l
        )
        .unwrap();
        writeln!(
            lanes_emit,
            "    wire [47:0] held{l} = held[{hi}:{lo}];",
            hi = 48 * l + 47,
            lo = 48 * l
        )
        .unwrap();
    }
    let packed: Vec<String> = (0..v).rev().map(|l| format!("p{l}[47], a{l}")).collect();
    let max_tree = (0..v).fold(String::from("47'd0"), |acc, l| {
        format!("max47({acc}, a{l})")
    });
    let sum_squares = (0..v)
        .map(|l| format!("{{20'd0, sq{l}}}"))
        .collect::<Vec<_>>()
        .join(" + ");
    // The emission pipeline: stage 0 forms each lane's dividend, stages 1..=7 decide
    // quotient bits 6..=0 (stage s, lane l lives at index s·V + l).
    let mut stages = String::new();
    for l in 0..v {
        writeln!(
            stages,
            "            num[{l}] <= 56'(held{l}[46:0]) * 56'd254 + {{9'd0, m}}; quo[{l}] <= 7'd0; sgn[{l}] <= held{l}[47];"
        )
        .unwrap();
    }
    for st in 1..=7usize {
        let bit = 7 - st;
        for l in 0..v {
            let (from, to) = ((st - 1) * v + l, st * v + l);
            let keep_num = if st < 7 {
                format!(" num[{to}] <= num[{from}] - (den << {bit});")
            } else {
                String::new()
            };
            let pass_num = if st < 7 {
                format!(" num[{to}] <= num[{from}];")
            } else {
                String::new()
            };
            writeln!(
                stages,
                "            if (num[{from}] >= (den << {bit})) begin{keep_num} quo[{to}] <= quo[{from}] | 7'd{q}; end else begin{pass_num} quo[{to}] <= quo[{from}]; end sgn[{to}] <= sgn[{from}];",
                q = 1u32 << bit
            )
            .unwrap();
        }
    }
    let outputs: Vec<String> = (0..v)
        .rev()
        .map(|l| {
            let at = 7 * v + l;
            format!(
                "(m == 47'd0 ? 8'd0 : (sgn[{at}] ? 8'(-{{1'b0, quo[{at}]}}) : {{1'b0, quo[{at}]}}))"
            )
        })
        .collect();
    let text = TEMPLATE
        .replace("{{MODULE}}", NORM_QUANT_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &v.to_string())
        .replace("{{VBITS32}}", &(32 * v - 1).to_string())
        .replace("{{VBITS16}}", &(16 * v - 1).to_string())
        .replace("{{VBITS8}}", &(8 * v - 1).to_string())
        .replace("{{VBITS48}}", &(48 * v - 1).to_string())
        .replace("{{DEPTH}}", &shape.depth().to_string())
        .replace("{{CW}}", &cw.to_string())
        .replace("{{AW}}", &shape.address_bits().to_string())
        .replace("{{LANES_LOAD}}", &lanes_load)
        .replace("{{LANES_EMIT}}", &lanes_emit)
        .replace("{{PACKED}}", &packed.join(", "))
        .replace("{{MAX_TREE}}", &max_tree)
        .replace("{{SUM_SQUARES}}", &sum_squares)
        .replace("{{STAGES}}", &stages)
        .replace("{{OUTPUTS}}", &outputs.join(",\n        "));
    Ok(text)
}

const TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's norm_quant, {{V}} lanes
// (docs/vector.md). RMSNorm and absmax int8 quantisation of one vector per command.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: the vector's length (a multiple of {{V}}), its fractional bits, ε.
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [20:0]          cmd_n,
    input  wire signed [31:0]   cmd_v_frac,
    input  wire [23:0]          cmd_eps_m,
    input  wire signed [31:0]   cmd_eps_e,
    // Elements, {{V}} a beat: v (i32) and the gain g (i16) per lane.
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS32}}:0] in_v,
    input  wire [{{VBITS16}}:0] in_g,
    // The int8 vector, {{V}} a beat.
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS8}}:0]  out_q,
    // After the last beat: M = max|v·g| and r = isqrt(floor(Σv²/n) + E), held until the
    // next command.
    output wire                 done,
    output wire [46:0]          max_abs,
    output wire [50:0]          rms
);
    localparam [2:0] IDLE = 3'd0, LOAD = 3'd1, DIVIDE = 3'd2, ROOT = 3'd3, EMIT = 3'd4, DONE = 3'd5;
    reg [2:0]  state;
    reg [20:0] n;
    reg [{{CW}}-1:0] beats;      // beats of this vector
    reg [{{CW}}-1:0] count;      // beats taken (LOAD) or sent (EMIT)
    reg [46:0] m;                // max |p|
    reg [83:0] s;                // Σ v²
    reg [100:0] e_units;         // floor(eps · 2^(2 v_frac)), at most 2^100
    reg [83:0] quotient;         // S / n, a bit a clock
    reg [19:0] remainder;        // below n ≤ 2^20
    reg [6:0]  step;
    reg [101:0] radicand;
    reg [101:0] root;
    reg [101:0] bit_;
    reg [{{VBITS48}}:0] buffer [0:{{DEPTH}}-1];

    wire [102:0] trial = {1'b0, radicand} - {1'b0, root | bit_};

    function automatic [46:0] max47(input [46:0] a, input [46:0] b);
        max47 = a > b ? a : b;
    endfunction

    assign cmd_ready = state == IDLE || state == DONE;
    assign in_ready = state == LOAD;
    wire take = in_valid && in_ready;
{{LANES_LOAD}}
    wire [46:0] beat_max = {{MAX_TREE}};
    wire [83:0] beat_squares = {{SUM_SQUARES}};

    // E from ε = m·2^e and the vector's fractional bits: m·2^(e + 2 v_frac), floored,
    // at most 2^100 (docs/vector.md).
    wire signed [33:0] k = 34'(cmd_eps_e) + (34'(cmd_v_frac) <<< 1);
    wire [100:0] eps_wide = {77'd0, cmd_eps_m};
    wire [100:0] e_of_cmd = k >= 34'sd76 ? (101'd1 << 100)
                          : k >= 34'sd0 ? (((eps_wide << k[6:0]) >> 100) != 101'd0 ? (101'd1 << 100) : eps_wide << k[6:0])
                          : k <= -34'sd24 ? 101'd0
                          : eps_wide >> 7'(-k);

    // EMIT: a beat a clock through nine stages (the buffer read, the dividend, seven
    // restoring steps for quotient bits 6..0); the whole pipeline moves when its last
    // stage is free.
    reg [{{VBITS48}}:0] held;
    reg        held_valid;
{{LANES_EMIT}}
    reg [55:0] num [0:8*{{V}}-1];
    reg [6:0]  quo [0:8*{{V}}-1];
    reg        sgn [0:8*{{V}}-1];
    reg [7:0]  valid;            // stage s holds a beat
    reg [{{CW}}-1:0] read;       // beats read from the buffer
    wire [55:0] den = {8'd0, m, 1'b0};
    wire adv = !valid[7] || out_ready;
    assign out_valid = state == EMIT && valid[7];
    assign out_q = {
        {{OUTPUTS}}
    };
    assign done = state == DONE;
    assign max_abs = m;
    assign rms = root[50:0];

    always @(posedge clk) begin
        if (take) buffer[count[{{AW}}-1:0]] <= { {{PACKED}} };
        if (state == EMIT && adv && read != beats) held <= buffer[read[{{AW}}-1:0]];
    end

    always @(posedge clk) begin
        if (state == EMIT && adv) begin
{{STAGES}}        end
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
            valid <= 8'd0;
            held_valid <= 1'b0;
        end else begin
            case (state)
                IDLE, DONE: if (cmd_valid) begin
                    n <= cmd_n;
                    beats <= {{CW}}'(cmd_n / 21'd{{V}});
                    count <= {{CW}}'d0;
                    m <= 47'd0;
                    s <= 84'd0;
                    e_units <= e_of_cmd;
                    state <= LOAD;
                end
                LOAD: if (take) begin
                    m <= max47(m, beat_max);
                    s <= s + beat_squares;
                    count <= count + {{CW}}'d1;
                    if (count + {{CW}}'d1 == beats) begin
                        state <= DIVIDE;
                        quotient <= s + beat_squares;
                        remainder <= 20'd0;
                        step <= 7'd0;
                    end
                end
                DIVIDE: begin
                    // Restoring division of the 82-bit sum by n, most significant bit first.
                    if ({remainder, quotient[83]} >= n) begin
                        remainder <= 20'({remainder, quotient[83]} - n);
                        quotient <= {quotient[82:0], 1'b1};
                    end else begin
                        remainder <= quotient[83] ? {remainder[18:0], 1'b1} : {remainder[18:0], 1'b0};
                        quotient <= {quotient[82:0], 1'b0};
                    end
                    step <= step + 7'd1;
                    if (step == 7'd83) begin
                        state <= ROOT;
                        step <= 7'd0;
                        root <= 102'd0;
                        bit_ <= 102'd1 << 100;
                    end
                end
                ROOT: begin
                    if (step == 7'd0) begin
                        radicand <= {18'd0, quotient} + {1'b0, e_units};
                        step <= 7'd1;
                    end else begin
                        // Digit by digit: 51 steps of two radicand bits each. `root` stays
                        // a multiple of 4·bit_, so every + bit_ is an OR, and one
                        // subtraction both decides the step (its borrow) and makes it.
                        if (!trial[102]) begin
                            radicand <= trial[101:0];
                            root <= (root >> 1) | bit_;
                        end else begin
                            root <= root >> 1;
                        end
                        bit_ <= bit_ >> 2;
                        step <= step + 7'd1;
                        if (step == 7'd51) begin
                            state <= EMIT;
                            count <= {{CW}}'d0;
                            read <= {{CW}}'d0;
                            valid <= 8'd0;
                            held_valid <= 1'b0;
                        end
                    end
                end
                EMIT: begin
                    if (adv) begin
                        held_valid <= read != beats;
                        if (read != beats) read <= read + {{CW}}'d1;
                        valid <= {valid[6:0], held_valid};
                    end
                    if (valid[7] && out_ready) begin
                        count <= count + {{CW}}'d1;
                        if (count + {{CW}}'d1 == beats) begin
                            state <= DONE;
                            if (root == 102'd0) root <= 102'd1;
                        end
                    end
                end
                default: state <= IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
"#;

pub const DEQUANT_MODULE: &str = "tern_dequant";
pub const DEQUANT_FILE: &str = "tern_dequant.v";

/// Clocks of one `dequant` command from its offer to `done` with the last output taken,
/// inputs always valid and outputs always taken: the command (1), normalising (1), the
/// factor's divider (33 quotient bits), then a beat a clock through two stages
/// (multiply; round, saturate and add), the last leaving two clocks after it entered.
pub fn dequant_clocks(lanes: usize, n: usize) -> u64 {
    1 + 1 + 33 + (n / lanes) as u64 + 2
}

/// The `dequant` block's Verilog: a token's BitLinear results back into fixed point,
/// `y = rha(acc · K, −t)` saturating, optionally added to the residual (also saturating),
/// with the factor `K · 2^t` found by its own divider from `M`, `r`, the gain's shift,
/// the weight scale and the output's fractional bits (docs/vector.md).
pub fn dequant_verilog(lanes: usize) -> Result<String, ShapeError> {
    if !(1..=64).contains(&lanes) {
        return Err(ShapeError(format!("lanes = {lanes} is outside 1..=64")));
    }
    let mut lane_logic = String::new();
    let mut multiply = String::new();
    let mut finish = String::new();
    for l in 0..lanes {
        let (hi, lo) = (32 * l + 31, 32 * l);
        writeln!(
            lane_logic,
            "    wire signed [31:0] acc{l} = in_acc[{hi}:{lo}];\n    reg  signed [63:0] prod{l};\n    reg  signed [31:0] y{l};\n    wire signed [31:0] scaled{l};\n    wire        sat{l};\n    tern_dequant_round round{l} (.prod(prod{l}), .t(t), .y(scaled{l}), .saturated(sat{l}));\n    wire signed [32:0] sum{l} = 33'(scaled{l}) + 33'($signed(x_held[{hi}:{lo}]));\n    wire        add_sat{l} = add && (sum{l}[32] != sum{l}[31]);"
        )
        .unwrap();
        writeln!(
            multiply,
            "                        prod{l} <= 64'(acc{l}) * $signed({{32'd0, k}});"
        )
        .unwrap();
        writeln!(
            finish,
            "                        y{l} <= add ? (add_sat{l} ? (sum{l}[32] ? 32'sh80000000 : 32'sh7fffffff) : sum{l}[31:0]) : scaled{l};"
        )
        .unwrap();
    }
    let any_sat = (0..lanes)
        .map(|l| format!("sat{l} || add_sat{l}"))
        .collect::<Vec<_>>()
        .join(" || ");
    let out_y: Vec<String> = (0..lanes).rev().map(|l| format!("y{l}")).collect();
    let text = DEQUANT_TEMPLATE
        .replace("{{MODULE}}", DEQUANT_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &lanes.to_string())
        .replace("{{VBITS32}}", &(32 * lanes - 1).to_string())
        .replace("{{LANES}}", &lane_logic)
        .replace("{{MULTIPLY}}", &multiply)
        .replace("{{FINISH}}", &finish)
        .replace("{{ANY_SAT}}", &any_sat)
        .replace("{{OUT_Y}}", &out_y.join(", "));
    Ok(text)
}

const DEQUANT_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's dequant, {{V}} lanes
// (docs/vector.md). y = rha(acc · K, −t), saturating; optionally x + y, saturating.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: the token's factors, the weight scale, the output's fractional bits,
    // the vector's length (a multiple of {{V}}) and whether to add to a residual.
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [46:0]          cmd_max,
    input  wire [50:0]          cmd_rms,
    input  wire [3:0]           cmd_gain_frac,
    input  wire [23:0]          cmd_w_m,
    input  wire signed [31:0]   cmd_w_e,
    input  wire signed [31:0]   cmd_out_frac,
    input  wire [20:0]          cmd_n,
    input  wire                 cmd_add,
    // Results (and, to add to, the residual), {{V}} a beat.
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS32}}:0] in_acc,
    input  wire [{{VBITS32}}:0] in_x,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS32}}:0] out_y,
    // After the last beat, until the next command: whether any output saturated.
    output wire                 done,
    output reg                  saturated,
    // The factor, for the record.
    output wire [31:0]          factor_k,
    output wire signed [31:0]   factor_t
);
    localparam [2:0] IDLE = 3'd0, NORMALISE = 3'd1, DIVIDE = 3'd2, RUN = 3'd3, DONE = 3'd4;
    reg [2:0]  state;
    reg [20:0] beats;
    reg [20:0] count;
    reg        add;
    reg [71:0] num;              // M · m_w, then the remainder (one bit of headroom)
    reg [71:0] den;              // 127 · r
    reg [6:0]  num_bits;
    reg [6:0]  den_bits;
    reg [5:0]  step;
    reg [31:0] quo;
    reg signed [31:0] t_base;    // e_w + F_out − Fg
    reg [31:0] k;
    reg signed [31:0] t;
    reg [{{VBITS32}}:0] x_held;
    reg [20:0] taken;
    // Two stages, each holding a beat or not; a stage moves when the next has room.
    reg        s1;               // the products (and the residual) of a beat
    reg        s2;               // its outputs

    function automatic [6:0] bit_length(input [70:0] v);
        integer i;
        begin
            bit_length = 7'd0;
            for (i = 0; i < 71; i = i + 1) if (v[i]) bit_length = 7'(i + 1);
        end
    endfunction

    assign cmd_ready = state == IDLE || state == DONE;
    wire drain = s2 && out_ready;
    wire move = s1 && (!s2 || out_ready);
    assign in_ready = state == RUN && taken != beats && (!s1 || move);
    assign out_valid = state == RUN && s2;
    wire advance = in_valid && in_ready;
    assign done = state == DONE;
    assign factor_k = k;
    assign factor_t = t;
{{LANES}}
    assign out_y = { {{OUT_Y}} };

    always @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
            s1 <= 1'b0;
            s2 <= 1'b0;
            saturated <= 1'b0;
        end else begin
            case (state)
                IDLE, DONE: if (cmd_valid) begin
                    num <= 72'(cmd_max) * 72'(cmd_w_m);
                    den <= 72'(cmd_rms) * 72'd127;
                    t_base <= cmd_w_e + cmd_out_frac - 32'(cmd_gain_frac);
                    beats <= cmd_n / 21'd{{V}};
                    count <= 21'd0;
                    taken <= 21'd0;
                    add <= cmd_add;
                    saturated <= 1'b0;
                    s1 <= 1'b0;
                    s2 <= 1'b0;
                    state <= NORMALISE;
                end
                NORMALISE: begin
                    // Both to bit 70; a zero numerator gives K = 0 (and t = 0).
                    num_bits <= bit_length(num[70:0]);
                    den_bits <= bit_length(den[70:0]);
                    num <= num << (7'd71 - bit_length(num[70:0]));
                    den <= den << (7'd71 - bit_length(den[70:0]));
                    quo <= 32'd0;
                    step <= 6'd0;
                    state <= DIVIDE;
                end
                DIVIDE: begin
                    // 33 quotient bits of num / den (both in [2^70, 2^71)): floor(2^32 num/den).
                    if (num >= den) begin
                        num <= (num - den) << 1;
                        quo <= {quo[30:0], 1'b1};
                    end else begin
                        num <= num << 1;
                        quo <= {quo[30:0], 1'b0};
                    end
                    step <= step + 6'd1;
                    if (step == 6'd32) begin
                        state <= RUN;
                    end
                end
                RUN: begin
                    if (advance) begin
{{MULTIPLY}}                        x_held <= in_x;
                        taken <= taken + 21'd1;
                    end
                    if (move) begin
{{FINISH}}                        if ({{ANY_SAT}}) saturated <= 1'b1;
                    end
                    s1 <= advance || (s1 && !move);
                    s2 <= move || (s2 && !drain);
                    if (drain) begin
                        count <= count + 21'd1;
                        if (count + 21'd1 == beats) state <= DONE;
                    end
                end
                default: state <= IDLE;
            endcase
            if (state == DIVIDE && step == 6'd32) begin
                // The 33-bit quotient is {quo, this step's bit}, in [2^31, 2^33): keep 32
                // bits, K in [2^31, 2^32). The floor of a floor halved is the floor of the
                // half, so dropping the last bit is exact.
                if (num_bits == 7'd0) begin
                    k <= 32'd0;
                    t <= 32'sd0;
                end else if (quo[31]) begin
                    k <= quo;
                    t <= t_base - (32'sd31 + 32'(den_bits) - 32'(num_bits));
                end else begin
                    k <= {quo[30:0], num >= den};
                    t <= t_base - (32'sd32 + 32'(den_bits) - 32'(num_bits));
                end
            end
        end
    end
endmodule

/* verilator lint_off DECLFILENAME */ // the block's helper lives in its file
// y = rha(prod, −t) saturated to i32, the saturation flagged.
module tern_dequant_round (
    input  wire signed [63:0] prod,
    input  wire signed [31:0] t,
    output wire signed [31:0] y,
    output wire               saturated
);
    wire        neg = prod[63];
    wire [63:0] mag = neg ? 64'(-prod) : prod;
    wire [31:0] shift = 32'(-t);
    // Right shift by k = −t > 0, rounding half away; k ≥ 64 leaves 0.
    wire [64:0] rounded = shift >= 32'd64 ? 65'd0
                        : ({1'b0, mag} + (65'd1 << (shift[5:0] - 6'd1))) >> shift[5:0];
    // Left shift by t > 0, exact; whatever reaches past 64 bits saturates anyway.
    wire        left = !t[31] && t != 32'sd0;
    wire [95:0] widened = {32'd0, mag} << t[5:0];
    wire        huge = left && mag != 64'd0 && (t >= 32'sd64 || widened[95:64] != 32'd0);
    wire [63:0] magnitude = left ? widened[63:0] : (t == 32'sd0 ? mag : rounded[63:0]);
    wire        over = huge || magnitude > 64'd2147483647 + {63'd0, neg};
    assign saturated = over;
    assign y = over ? (neg ? 32'sh80000000 : 32'sh7fffffff)
                    : (neg ? 32'(-magnitude) : magnitude[31:0]);
    /* verilator lint_off UNUSEDSIGNAL */ // the rounding's carry never reaches bit 64
    wire unused = rounded[64];
    /* verilator lint_on UNUSEDSIGNAL */
endmodule
`default_nettype wire
"#;

pub const TO_INT8_MODULE: &str = "tern_to_int8";
pub const TO_INT8_FILE: &str = "tern_to_int8.v";

/// Clocks of one `to_int8` command with inputs always valid and outputs always taken:
/// the command (1), then a beat a clock through two stages (multiply, then round and
/// clamp), the last leaving two clocks after it entered.
pub fn to_int8_clocks(lanes: usize, n: usize) -> u64 {
    1 + (n / lanes) as u64 + 2
}

/// The `to_int8` block's Verilog: a fixed-point vector to the attention's static int8
/// unit, `clamp(rha(y · m, F_y − e), −128, 127)` with `m·2^e = 1/unit`, a beat a clock
/// (docs/vector.md).
pub fn to_int8_verilog(lanes: usize) -> Result<String, ShapeError> {
    if !(1..=64).contains(&lanes) {
        return Err(ShapeError(format!("lanes = {lanes} is outside 1..=64")));
    }
    let mut lane_logic = String::new();
    for l in 0..lanes {
        let (hi, lo) = (32 * l + 31, 32 * l);
        writeln!(
            lane_logic,
            "    reg  signed [55:0] prod{l};\n    always @(posedge clk) if (advance) prod{l} <= 56'($signed(in_y[{hi}:{lo}])) * 56'(unit_m);\n    wire [7:0] q{l};\n    tern_to_int8_round round{l} (.prod(prod{l}), .k(k), .q(q{l}));"
        )
        .unwrap();
    }
    let out_q: Vec<String> = (0..lanes).rev().map(|l| format!("q{l}")).collect();
    let text = TO_INT8_TEMPLATE
        .replace("{{MODULE}}", TO_INT8_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &lanes.to_string())
        .replace("{{VBITS32}}", &(32 * lanes - 1).to_string())
        .replace("{{VBITS8}}", &(8 * lanes - 1).to_string())
        .replace("{{LANES}}", &lane_logic)
        .replace("{{OUT_Q}}", &out_q.join(", "));
    Ok(text)
}

const TO_INT8_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's to_int8, {{V}} lanes
// (docs/vector.md). q = clamp(rha(y · m, F_y − e), −128, 127), a beat a clock.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: the vector's length (a multiple of {{V}}), its fractional bits and
    // 1/unit = m·2^e.
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [20:0]          cmd_n,
    input  wire signed [31:0]   cmd_y_frac,
    input  wire [23:0]          cmd_unit_m,
    input  wire signed [31:0]   cmd_unit_e,
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS32}}:0] in_y,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS8}}:0]  out_q,
    output wire                 done
);
    reg        busy;
    reg [20:0] beats;
    reg [20:0] taken;
    reg [20:0] sent;
    reg [23:0] unit_m;
    reg signed [32:0] k;         // F_y − e: the right shift (≤ 0: a left shift)
    // Two stages, each holding a beat or not; a stage moves when the next has room.
    reg        s1;               // prod holds a beat
    reg        s2;               // out holds a beat
    reg [{{VBITS8}}:0] out;
    wire last_taken = taken == beats;
    assign cmd_ready = !busy;
    assign done = !busy;
    assign out_valid = s2;
    assign out_q = out;
    wire drain = s2 && out_ready;
    wire s2_free = !s2 || out_ready;
    wire move = s1 && s2_free;          // stage 1 into stage 2
    wire s1_free = !s1 || move;
    assign in_ready = busy && !last_taken && s1_free;
    wire advance = in_valid && in_ready;
{{LANES}}
    always @(posedge clk) begin
        if (move) out <= { {{OUT_Q}} };
        if (rst) begin
            busy <= 1'b0;
            s1 <= 1'b0;
            s2 <= 1'b0;
        end else if (!busy) begin
            if (cmd_valid) begin
                busy <= 1'b1;
                beats <= cmd_n / 21'd{{V}};
                taken <= 21'd0;
                sent <= 21'd0;
                unit_m <= cmd_unit_m;
                k <= 33'(cmd_y_frac) - 33'(cmd_unit_e);
            end
        end else begin
            if (advance) taken <= taken + 21'd1;
            s1 <= advance || (s1 && !move);
            s2 <= move || (s2 && !drain);
            if (drain) begin
                sent <= sent + 21'd1;
                if (sent + 21'd1 == beats) busy <= 1'b0;
            end
        end
    end
endmodule

/* verilator lint_off DECLFILENAME */ // the block's helper lives in its file
// q = clamp(rha(prod, k), −128, 127): k > 0 rounds half away, k ≤ 0 shifts left.
module tern_to_int8_round (
    input  wire signed [55:0] prod,
    input  wire signed [32:0] k,
    output wire [7:0]         q
);
    wire        neg = prod[55];
    wire [55:0] mag = neg ? 56'(-prod) : prod;
    wire [32:0] right = 33'(k);
    wire [56:0] rounded = right >= 33'd56 ? 57'd0
                        : ({1'b0, mag} + (57'd1 << (right[5:0] - 6'd1))) >> right[5:0];
    wire        left = k[32] || k == 33'sd0;
    wire [32:0] up = 33'(-k);
    // Any non-zero magnitude shifted left by 8 or more is beyond the int8 range.
    wire [63:0] widened = {8'd0, mag} << up[2:0];
    wire        huge = left && mag != 56'd0 && up >= 33'd8;
    wire [63:0] magnitude = left ? widened : {7'd0, rounded};
    wire        over = huge || magnitude > 64'd127 + {63'd0, neg};
    assign q = over ? (neg ? 8'h80 : 8'h7f) : (neg ? 8'(-magnitude) : magnitude[7:0]);
endmodule
`default_nettype wire
"#;

pub const ROPE_MODULE: &str = "tern_rope";
pub const ROPE_FILE: &str = "tern_rope.v";

/// Clocks of one `rope` command with inputs always valid and outputs always taken: the
/// command (1), the table row (h beats, h = head_dim / 2V), then per head h beats of the
/// first half, h of the second (each handing over its rotated first-half beat) and h
/// more for the rotated second half, and the last beat's hand-over (1).
pub fn rope_clocks(lanes: usize, heads: usize, head_dim: usize) -> u64 {
    let h = (head_dim / (2 * lanes)) as u64;
    1 + h + heads as u64 * 3 * h + 1
}

/// The `rope` block's Verilog: each head's pairs `(i, i + d/2)` rotated by the position's
/// table row, `a' = rha(a·c − b·s, 14)`, `b' = rha(b·c + a·s, 14)`, saturating, heads
/// of `head_dim ≤ max_head_dim` (a multiple of `2·lanes`) (docs/vector.md).
/// The top bit of the RoPE block's `cmd_half` (beats in half a head): its port is
/// `[rope_half_msb:0]`.
pub fn rope_half_msb(lanes: usize, max_head_dim: usize) -> usize {
    let half = max_head_dim / (2 * lanes);
    (half.next_power_of_two().trailing_zeros() as usize).max(1)
}

pub fn rope_verilog(lanes: usize, max_head_dim: usize) -> Result<String, ShapeError> {
    if !(1..=64).contains(&lanes) || max_head_dim == 0 || !max_head_dim.is_multiple_of(2 * lanes) {
        return Err(ShapeError(format!(
            "{lanes} lanes and heads of up to {max_head_dim}: half a head must be whole beats"
        )));
    }
    let half = max_head_dim / (2 * lanes);
    let mut lane_logic = String::new();
    for l in 0..lanes {
        let (hi, lo) = (32 * l + 31, 32 * l);
        writeln!(
            lane_logic,
            "    wire signed [31:0] a{l} = a_word[{hi}:{lo}];\n    wire signed [31:0] b{l} = in_y[{hi}:{lo}];\n    wire signed [15:0] c{l} = cs_word[{chi}:{clo}];\n    wire signed [15:0] s{l} = cs_word[{shi}:{slo}];\n    wire signed [48:0] an{l} = 49'(a{l} * c{l}) - 49'(b{l} * s{l});\n    wire signed [48:0] bn{l} = 49'(b{l} * c{l}) + 49'(a{l} * s{l});\n    wire [31:0] ar{l}, br{l};\n    wire as{l}, bs{l};\n    tern_rope_round ra{l} (.v(an{l}), .y(ar{l}), .saturated(as{l}));\n    tern_rope_round rb{l} (.v(bn{l}), .y(br{l}), .saturated(bs{l}));",
            chi = lo + 15,
            clo = lo,
            shi = hi,
            slo = lo + 16
        )
        .unwrap();
    }
    let rot_a: Vec<String> = (0..lanes).rev().map(|l| format!("ar{l}")).collect();
    let rot_b: Vec<String> = (0..lanes).rev().map(|l| format!("br{l}")).collect();
    let any_sat = (0..lanes)
        .map(|l| format!("as{l} || bs{l}"))
        .collect::<Vec<_>>()
        .join(" || ");
    let aw = rope_half_msb(lanes, max_head_dim);
    let text = ROPE_TEMPLATE
        .replace("{{MODULE}}", ROPE_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &lanes.to_string())
        .replace("{{VBITS32}}", &(32 * lanes - 1).to_string())
        .replace("{{HALF}}", &half.to_string())
        .replace("{{AW}}", &aw.to_string())
        .replace("{{LANES}}", &lane_logic)
        .replace("{{ROT_A}}", &rot_a.join(", "))
        .replace("{{ROT_B}}", &rot_b.join(", "))
        .replace("{{ANY_SAT}}", &any_sat);
    Ok(text)
}

const ROPE_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's RoPE, {{V}} lanes, half heads of up
// to {{HALF}} beats (docs/vector.md). Per head: the first half is kept; each beat of the
// second half rotates with its partner, hands the rotated first-half beat over and
// keeps the rotated second-half beat, which follows once the head is in.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: heads, and beats in half a head (head_dim / 2·{{V}}).
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [10:0]          cmd_heads,
    input  wire [{{AW}}:0]      cmd_half,
    // The position's table row first: {{V}} (cos, sin) pairs a beat, i16 each, cos low.
    input  wire                 cs_valid,
    output wire                 cs_ready,
    input  wire [{{VBITS32}}:0] cs_data,
    // Then the vector, head after head, {{V}} a beat.
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS32}}:0] in_y,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS32}}:0] out_y,
    output wire                 done,
    output reg                  saturated
);
    localparam [2:0] IDLE = 3'd0, TABLE = 3'd1, FIRST = 3'd2, SECOND = 3'd3, REST = 3'd4;
    reg [2:0]  state;
    reg [10:0] heads;
    reg [10:0] head;
    reg [{{AW}}:0] half;
    reg [{{AW}}:0] j;            // beat within the half
    reg [{{VBITS32}}:0] cs_buf [0:{{HALF}}-1];
    reg [{{VBITS32}}:0] a_buf [0:{{HALF}}-1];
    reg [{{VBITS32}}:0] b_buf [0:{{HALF}}-1];
    reg [{{VBITS32}}:0] out;
    reg        full;             // `out` holds a beat not yet taken
    wire [{{VBITS32}}:0] a_word = a_buf[j[{{AW}}-1:0]];
    wire [{{VBITS32}}:0] cs_word = cs_buf[j[{{AW}}-1:0]];
{{LANES}}
    wire room = !full || out_ready;
    assign cmd_ready = state == IDLE;
    assign done = state == IDLE;
    assign cs_ready = state == TABLE;
    assign in_ready = state == FIRST || (state == SECOND && room);
    assign out_valid = full;
    assign out_y = out;
    wire take_cs = cs_valid && cs_ready;
    wire take = in_valid && in_ready;
    wire last = j + 1'b1 == half;

    always @(posedge clk) begin
        if (take_cs) cs_buf[j[{{AW}}-1:0]] <= cs_data;
        if (take && state == FIRST) a_buf[j[{{AW}}-1:0]] <= in_y;
        if (take && state == SECOND) b_buf[j[{{AW}}-1:0]] <= { {{ROT_B}} };
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
            full <= 1'b0;
            saturated <= 1'b0;
        end else begin
            if (full && out_ready) full <= 1'b0;
            case (state)
                IDLE: if (cmd_valid) begin
                    heads <= cmd_heads;
                    half <= cmd_half;
                    head <= 11'd0;
                    j <= 0;
                    saturated <= 1'b0;
                    state <= TABLE;
                end
                TABLE: if (take_cs) begin
                    j <= last ? 0 : j + 1'b1;
                    if (last) state <= FIRST;
                end
                FIRST: if (take) begin
                    j <= last ? 0 : j + 1'b1;
                    if (last) state <= SECOND;
                end
                SECOND: if (take) begin
                    out <= { {{ROT_A}} };
                    full <= 1'b1;
                    if ({{ANY_SAT}}) saturated <= 1'b1;
                    j <= last ? 0 : j + 1'b1;
                    if (last) state <= REST;
                end
                REST: if (room) begin
                    out <= b_buf[j[{{AW}}-1:0]];
                    full <= 1'b1;
                    j <= last ? 0 : j + 1'b1;
                    if (last) begin
                        head <= head + 11'd1;
                        state <= head + 11'd1 == heads ? IDLE : FIRST;
                    end
                end
                default: state <= IDLE;
            endcase
        end
    end
endmodule

/* verilator lint_off DECLFILENAME */ // the block's helper lives in its file
// y = rha(v, 14) saturated to i32, the saturation flagged.
module tern_rope_round (
    input  wire signed [48:0] v,
    output wire [31:0]        y,
    output wire               saturated
);
    wire        neg = v[48];
    wire [48:0] mag = neg ? 49'(-v) : v;
    wire [48:0] r = (mag + 49'd8192) >> 14;
    assign saturated = r > 49'd2147483647 + {48'd0, neg};
    assign y = saturated ? (neg ? 32'h80000000 : 32'h7fffffff) : (neg ? 32'(-r) : r[31:0]);
endmodule
`default_nettype wire
"#;

pub const RELU2_MUL_MODULE: &str = "tern_relu2_mul";
pub const RELU2_MUL_FILE: &str = "tern_relu2_mul.v";

/// Clocks of one `relu2_mul` command with inputs always valid and outputs always taken:
/// the command (1), a beat a clock in, the shift found (1), then a beat a clock out
/// through two stages (the buffer read, the shift), the last handed over two clocks
/// after it was read.
pub fn relu2_mul_clocks(lanes: usize, n: usize) -> u64 {
    let beats = (n / lanes) as u64;
    1 + beats + 1 + beats + 2
}

/// The `relu2_mul` block's Verilog: `P = max(g, 0)² · u` exactly per lane (94 bits),
/// buffered while the largest `|P|` is found, then every `P` shifted so the largest fits
/// 31 bits: an `i32` block with `3F − shift` fractional bits (docs/vector.md).
pub fn relu2_mul_verilog(shape: NormQuantShape) -> Result<String, ShapeError> {
    shape.check().map_err(ShapeError)?;
    let v = shape.lanes;
    let mut lanes_in = String::new();
    let mut lanes_out = String::new();
    for l in 0..v {
        let (hi, lo) = (32 * l + 31, 32 * l);
        writeln!(
            lanes_in,
            "    wire signed [31:0] g{l} = in_g[{hi}:{lo}];\n    wire signed [31:0] u{l} = in_u[{hi}:{lo}];\n    wire [30:0] r{l} = g{l}[31] ? 31'd0 : g{l}[30:0];\n    wire [61:0] sq{l} = 62'(r{l}) * 62'(r{l});\n    wire signed [93:0] p{l} = $signed({{32'd0, sq{l}}}) * 94'(u{l});\n    wire [92:0] a{l} = p{l}[93] ? 93'(-p{l}) : p{l}[92:0];"
        )
        .unwrap();
        writeln!(
            lanes_out,
            "    wire signed [93:0] h{l} = held[{phi}:{plo}];\n    /* verilator lint_off UNUSEDSIGNAL */ // the shifted value fits its low 32 bits\n    wire signed [93:0] sh{l} = left ? h{l} <<< amount : h{l} >>> amount;\n    /* verilator lint_on UNUSEDSIGNAL */",
            phi = 94 * l + 93,
            plo = 94 * l
        )
        .unwrap();
    }
    let packed: Vec<String> = (0..v).rev().map(|l| format!("p{l}")).collect();
    let max_tree = (0..v).fold(String::from("93'd0"), |acc, l| {
        format!("max93({acc}, a{l})")
    });
    let out: Vec<String> = (0..v).rev().map(|l| format!("sh{l}[31:0]")).collect();
    let text = RELU2_MUL_TEMPLATE
        .replace("{{MODULE}}", RELU2_MUL_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &v.to_string())
        .replace("{{VBITS32}}", &(32 * v - 1).to_string())
        .replace("{{VBITS94}}", &(94 * v - 1).to_string())
        .replace("{{DEPTH}}", &shape.depth().to_string())
        .replace("{{CW}}", &shape.count_bits().to_string())
        .replace("{{AW}}", &shape.address_bits().to_string())
        .replace("{{LANES_IN}}", &lanes_in)
        .replace("{{LANES_OUT}}", &lanes_out)
        .replace("{{PACKED}}", &packed.join(", "))
        .replace("{{MAX_TREE}}", &max_tree)
        .replace("{{OUT}}", &out.join(", "));
    Ok(text)
}

const RELU2_MUL_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's relu2_mul, {{V}} lanes
// (docs/vector.md). max(g, 0)² · u exactly, then shifted so the largest fits 31 bits.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: the vectors' length (a multiple of {{V}}) and their fractional bits.
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [20:0]          cmd_n,
    input  wire signed [31:0]   cmd_frac,
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS32}}:0] in_g,
    input  wire [{{VBITS32}}:0] in_u,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS32}}:0] out_y,
    // From the first output on, until the next command: the block's fractional bits.
    output reg signed [31:0]    frac_out,
    output wire                 done
);
    localparam [2:0] IDLE = 3'd0, LOAD = 3'd1, SHIFT = 3'd2, EMIT = 3'd3;
    reg [2:0]  state;
    reg [{{CW}}-1:0] beats;
    reg [{{CW}}-1:0] count;
    reg signed [31:0] frac;
    reg [92:0] m;                // max |P|
    reg        left;             // shift left (the largest is below 2^30)
    reg [6:0]  amount;
    reg [{{VBITS94}}:0] buffer [0:{{DEPTH}}-1];
    reg [{{VBITS94}}:0] held;
    reg [{{VBITS32}}:0] out;
    reg        held_valid;       // `held` holds a buffer word
    reg        full;             // `out` holds a beat not yet taken
    reg [{{CW}}-1:0] read;       // beats read from the buffer
    wire adv = !full || out_ready;

    function automatic [92:0] max93(input [92:0] a, input [92:0] b);
        max93 = a > b ? a : b;
    endfunction
    function automatic [6:0] bit_length(input [92:0] v);
        integer i;
        begin
            bit_length = 7'd0;
            for (i = 0; i < 93; i = i + 1) if (v[i]) bit_length = 7'(i + 1);
        end
    endfunction

    assign cmd_ready = state == IDLE;
    assign done = state == IDLE;
    assign in_ready = state == LOAD;
    assign out_valid = state == EMIT && full;
    assign out_y = out;
    wire take = in_valid && in_ready;
{{LANES_IN}}
    wire [92:0] beat_max = {{MAX_TREE}};
{{LANES_OUT}}
    wire [6:0] b = bit_length(m);
    wire [6:0] above = b - 7'd31;
    wire [6:0] below = 7'd31 - b;
    wire signed [31:0] three_f = 32'sd3 * frac;

    always @(posedge clk) begin
        if (take) buffer[count[{{AW}}-1:0]] <= { {{PACKED}} };
        if (state == EMIT && adv && read != beats) held <= buffer[read[{{AW}}-1:0]];
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
        end else begin
            case (state)
                IDLE: if (cmd_valid) begin
                    beats <= {{CW}}'(cmd_n / 21'd{{V}});
                    frac <= cmd_frac;
                    count <= {{CW}}'d0;
                    m <= 93'd0;
                    state <= LOAD;
                end
                LOAD: if (take) begin
                    m <= max93(m, beat_max);
                    count <= count + {{CW}}'d1;
                    if (count + {{CW}}'d1 == beats) state <= SHIFT;
                end
                SHIFT: begin
                    // The block keeps 31 bits of the largest: shift by b − 31 (left when
                    // b < 31); all zeros keep 3F fractional bits.
                    if (m == 93'd0) begin
                        left <= 1'b0;
                        amount <= 7'd0;
                        frac_out <= three_f;
                    end else if (b >= 7'd31) begin
                        left <= 1'b0;
                        amount <= above;
                        frac_out <= three_f - 32'(above);
                    end else begin
                        left <= 1'b1;
                        amount <= below;
                        frac_out <= three_f + 32'(below);
                    end
                    count <= {{CW}}'d0;
                    read <= {{CW}}'d0;
                    held_valid <= 1'b0;
                    full <= 1'b0;
                    state <= EMIT;
                end
                EMIT: begin
                    if (adv) begin
                        held_valid <= read != beats;
                        if (read != beats) read <= read + {{CW}}'d1;
                        if (held_valid) out <= { {{OUT}} };
                        full <= held_valid;
                    end
                    if (full && out_ready) begin
                        count <= count + {{CW}}'d1;
                        if (count + {{CW}}'d1 == beats) state <= IDLE;
                    end
                end
                default: state <= IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
"#;

pub const EMBED_MODULE: &str = "tern_embed";
pub const EMBED_FILE: &str = "tern_embed.v";

/// Clocks of one `embed` command with inputs always valid and outputs always taken: the
/// command (1), a beat a clock through three stages, the last handed over three clocks
/// after it entered.
pub fn embed_clocks(lanes: usize, n: usize) -> u64 {
    1 + (n / lanes) as u64 + 3
}

/// The `embed` block's Verilog: an embedding row's bf16 values into the residual
/// stream's fixed point, `rne(v · 2^F)` saturating (infinities and NaNs saturate by
/// sign), a beat a clock (docs/vector.md).
pub fn embed_verilog(lanes: usize) -> Result<String, ShapeError> {
    if !(1..=64).contains(&lanes) {
        return Err(ShapeError(format!("lanes = {lanes} is outside 1..=64")));
    }
    let mut lane_logic = String::new();
    for l in 0..lanes {
        writeln!(
            lane_logic,
            "    wire [31:0] x{l};\n    wire        sat{l};\n    tern_embed_lane lane{l} (.clk(clk), .flow(flow), .bits(in_bf16[{hi}:{lo}]), .frac(frac), .x(x{l}), .saturated(sat{l}));",
            hi = 16 * l + 15,
            lo = 16 * l
        )
        .unwrap();
    }
    let xs: Vec<String> = (0..lanes).rev().map(|l| format!("x{l}")).collect();
    let any_sat = (0..lanes)
        .map(|l| format!("sat{l}"))
        .collect::<Vec<_>>()
        .join(" || ");
    let text = EMBED_TEMPLATE
        .replace("{{MODULE}}", EMBED_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &lanes.to_string())
        .replace("{{VBITS16}}", &(16 * lanes - 1).to_string())
        .replace("{{VBITS32}}", &(32 * lanes - 1).to_string())
        .replace("{{LANES}}", &lane_logic)
        .replace("{{XS}}", &xs.join(", "))
        .replace("{{ANY_SAT}}", &any_sat);
    Ok(text)
}

const EMBED_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the vector unit's embed, {{V}} lanes (docs/vector.md).
// bf16 in, rne(v · 2^F) out, saturating; a beat a clock.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [20:0]          cmd_n,
    input  wire signed [31:0]   cmd_frac,
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{VBITS16}}:0] in_bf16,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [{{VBITS32}}:0] out_x,
    output wire                 done,
    output reg                  saturated
);
    reg        busy;
    reg [20:0] beats;
    reg [20:0] taken;
    reg [20:0] sent;
    reg signed [31:0] frac;
    // Three stages, moving together unless the last waits: the exponent's shift, the
    // shifted or rounded magnitude with its overflow, the sign and saturation.
    reg        v1, v2, v3;
    wire flow = !v3 || out_ready;
{{LANES}}
    wire drain = v3 && out_ready;
    assign cmd_ready = !busy;
    assign done = !busy;
    assign in_ready = busy && taken != beats && flow;
    assign out_valid = v3;
    assign out_x = { {{XS}} };
    wire take = in_valid && in_ready;
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            v1 <= 1'b0;
            v2 <= 1'b0;
            v3 <= 1'b0;
            saturated <= 1'b0;
        end else if (!busy) begin
            if (cmd_valid) begin
                busy <= 1'b1;
                beats <= cmd_n / 21'd{{V}};
                taken <= 21'd0;
                sent <= 21'd0;
                frac <= cmd_frac;
                saturated <= 1'b0;
            end
        end else begin
            if (take) taken <= taken + 21'd1;
            if (flow) begin
                v1 <= take;
                v2 <= v1;
                v3 <= v2;
            end
            if (v3 && ({{ANY_SAT}})) saturated <= 1'b1;
            if (drain) begin
                sent <= sent + 21'd1;
                if (sent + 21'd1 == beats) busy <= 1'b0;
            end
        end
    end
endmodule

/* verilator lint_off DECLFILENAME */ // the block's helper lives in its file
// One bf16 value into fixed point with `frac` fractional bits: the integer mantissa
// (8 bits, 7 for a subnormal) times 2^k, rounded half to even when k < 0. Three stages
// (they move with `flow`): k; the magnitude and whether it overflows; sign and
// saturation.
module tern_embed_lane (
    input  wire               clk,
    input  wire               flow,
    input  wire [15:0]        bits,
    input  wire signed [31:0] frac,
    output wire [31:0]        x,
    output wire               saturated
);
    wire [7:0] e = bits[14:7];
    // Stage 1: the exponent's shift.
    reg signed [33:0] k;
    reg [7:0] mant;
    reg       neg1, inf1;
    always @(posedge clk) if (flow) begin
        k <= (e == 8'd0 ? -34'sd133 : 34'(e) - 34'sd134) + 34'(frac);
        mant <= e == 8'd0 ? {1'b0, bits[6:0]} : {1'b1, bits[6:0]};
        neg1 <= bits[15];
        inf1 <= e == 8'hff;
    end
    wire [33:0] up = 34'(k);
    wire [33:0] down = 34'(-k);
    // k ≥ 0: an 8-bit mantissa shifted left; beyond bit 31 it saturates.
    wire [39:0] shifted = {32'd0, mant} << up[4:0];
    wire        too_big = !k[33] && mant != 8'd0 && (up >= 34'd32 || shifted[39:32] != 8'd0);
    // k < 0: shift right, round half to even.
    wire [7:0]  q = down >= 34'd8 ? 8'd0 : mant >> down[2:0];
    wire [7:0]  rem = down >= 34'd8 ? mant : mant & ~(8'hff << down[2:0]);
    wire [8:0]  half = down >= 34'd9 ? 9'h100 : 9'd1 << (down[3:0] - 4'd1);
    wire        round_up = {1'b0, rem} > half || ({1'b0, rem} == half && q[0]);
    wire [31:0] rounded = 32'(q) + {31'd0, round_up};
    wire [31:0] mag = k[33] ? rounded : shifted[31:0];
    // Stage 2: the magnitude and whether it overflows.
    reg [31:0] mag2;
    reg        neg2, over2;
    always @(posedge clk) if (flow) begin
        mag2 <= mag;
        neg2 <= neg1;
        over2 <= inf1 || too_big || (!k[33] && mag > 32'h7fffffff + {31'd0, neg1});
    end
    // Stage 3: sign and saturation.
    reg [31:0] x3;
    reg        sat3;
    always @(posedge clk) if (flow) begin
        x3 <= over2 ? (neg2 ? 32'h80000000 : 32'h7fffffff) : (neg2 ? 32'(-mag2) : mag2);
        sat3 <= over2;
    end
    assign x = x3;
    assign saturated = sat3;
    /* verilator lint_off UNUSEDSIGNAL */ // the high bits of the shift amounts are range-checked
    wire unused = ^{up[33:5], down[33:4]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule
`default_nettype wire
"#;

/// Every block of a vector unit of `lanes` lanes for vectors of up to `max_n` elements
/// and heads of up to `max_head_dim`: (file name, Verilog).
pub fn vector_unit_files(
    lanes: usize,
    max_n: usize,
    max_head_dim: usize,
) -> Result<Vec<(&'static str, String)>, ShapeError> {
    let shape = NormQuantShape { lanes, max_n };
    Ok(vec![
        (EMBED_FILE, embed_verilog(lanes)?),
        (NORM_QUANT_FILE, norm_quant_verilog(shape)?),
        (DEQUANT_FILE, dequant_verilog(lanes)?),
        (ROPE_FILE, rope_verilog(lanes, max_head_dim)?),
        (TO_INT8_FILE, to_int8_verilog(lanes)?),
        (RELU2_MUL_FILE, relu2_mul_verilog(shape)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_and_the_lanes_are_filled_in() {
        let v = norm_quant_verilog(NormQuantShape {
            lanes: 4,
            max_n: 64,
        })
        .unwrap();
        assert!(v.contains("module tern_norm_quant") && v.contains("in_v[127:96]"));
        assert!(!v.contains("{{"), "a placeholder left");
        for bad in [
            NormQuantShape {
                lanes: 0,
                max_n: 64,
            },
            NormQuantShape {
                lanes: 4,
                max_n: 66,
            },
            NormQuantShape {
                lanes: 4,
                max_n: 1 << 21,
            },
        ] {
            assert!(norm_quant_verilog(bad).is_err(), "{bad:?}");
        }
    }
}
