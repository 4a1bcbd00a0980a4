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
//!                              (7 quotient bits, a bit a clock), out as V int8
//!                     ─► done: M and r held for the dequantisation factor
//! ```

use std::fmt::Write;

pub const NORM_QUANT_MODULE: &str = "tern_norm_quant";
pub const NORM_QUANT_FILE: &str = "tern_norm_quant.v";

/// A shape no block can be built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("norm_quant: {0}")]
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
/// division (84), the root (1 + 51), and 10 a beat out (fetch, start, 7 quotient bits,
/// hand-over). The emission is the slow part: pipelining its divider makes it a beat a
/// clock.
pub fn norm_quant_clocks(shape: NormQuantShape, n: usize) -> u64 {
    let beats = (n / shape.lanes) as u64;
    1 + beats + 84 + 52 + 10 * beats
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
    let mut quotient_lanes = String::new();
    for l in 0..v {
        writeln!(
            quotient_lanes,
            "            if (num[{l}] >= (den << qbit)) begin num[{l}] <= num[{l}] - (den << qbit); quo[{l}] <= quo[{l}] | (7'd1 << qbit); end"
        )
        .unwrap();
    }
    let mut start_lanes = String::new();
    for l in 0..v {
        writeln!(
            start_lanes,
            "            num[{l}] <= 56'(held{l}[46:0]) * 56'd254 + {{9'd0, m}}; quo[{l}] <= 7'd0; sgn[{l}] <= held{l}[47];"
        )
        .unwrap();
    }
    let outputs: Vec<String> = (0..v)
        .rev()
        .map(|l| {
            format!(
                "(m == 47'd0 ? 8'd0 : (sgn[{l}] ? 8'(-{{1'b0, quo[{l}]}}) : {{1'b0, quo[{l}]}}))"
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
        .replace("{{QUOTIENT_LANES}}", &quotient_lanes)
        .replace("{{START_LANES}}", &start_lanes)
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

    // EMIT: one beat at a time, seven restoring steps for all lanes at once.
    reg [{{VBITS48}}:0] held;
{{LANES_EMIT}}
    reg [55:0] num [0:{{V}}-1];
    reg [6:0]  quo [0:{{V}}-1];
    reg        sgn [0:{{V}}-1];
    reg [2:0]  qbit;             // quotient bit being decided, 6..0
    reg        working;          // a beat is being divided
    reg        ready_beat;       // its quotients are ready to leave
    reg        fetched;          // `held` holds the buffer word of `count`
    wire [55:0] den = {8'd0, m, 1'b0};
    assign out_valid = state == EMIT && ready_beat;
    assign out_q = {
        {{OUTPUTS}}
    };
    assign done = state == DONE;
    assign max_abs = m;
    assign rms = root[50:0];

    always @(posedge clk) begin
        if (take) buffer[count[{{AW}}-1:0]] <= { {{PACKED}} };
        if (state == EMIT && !fetched && !working && !ready_beat) held <= buffer[count[{{AW}}-1:0]];
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
            working <= 1'b0;
            ready_beat <= 1'b0;
            fetched <= 1'b0;
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
                        // Digit by digit: 51 steps of two radicand bits each.
                        if (radicand >= root + bit_) begin
                            radicand <= radicand - (root + bit_);
                            root <= (root >> 1) + bit_;
                        end else begin
                            root <= root >> 1;
                        end
                        bit_ <= bit_ >> 2;
                        step <= step + 7'd1;
                        if (step == 7'd51) begin
                            state <= EMIT;
                            count <= {{CW}}'d0;
                        end
                    end
                end
                EMIT: begin
                    if (!fetched && !working && !ready_beat) begin
                        fetched <= 1'b1;
                    end else if (fetched) begin
                        fetched <= 1'b0;
                        working <= 1'b1;
                        qbit <= 3'd6;
{{START_LANES}}                    end else if (working) begin
{{QUOTIENT_LANES}}                        if (qbit == 3'd0) begin
                            working <= 1'b0;
                            ready_beat <= 1'b1;
                        end else qbit <= qbit - 3'd1;
                    end else if (ready_beat && out_ready) begin
                        ready_beat <= 1'b0;
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
