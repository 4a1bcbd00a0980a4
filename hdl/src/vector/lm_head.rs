//! The LM-head engine: the head's rows streamed from memory against the final norm's
//! int8 vector, a score per row and the greedy choice (docs/vector.md, "The LM-head
//! engine").
//!
//! ```text
//! cmd (rows, beats a row, beats a group) ─► q: the int8 vector, beats/row beats, kept
//!   weights, a beat a clock ─► lane products w·q ─► a sum per slice (adder tree, a
//!   register every three levels) ─► per slice the group's sum ─► × its u16 mantissa
//!   ─► the row's score (Σ over groups) ─► first of the largest; the score out (flag)
//! ```
//!
//! One datapath serves every head format: int8 weights with a scale per row (a row is
//! one group), int8 or 4-bit weights with a scale per group of `g ≥ lanes` weights
//! (groups of whole beats), or groups smaller than a beat (`slices` groups side by side
//! in each beat, each with its own mantissa).

use std::fmt::Write;

use super::ShapeError;
use crate::bits::ceil_log2;

pub const LM_HEAD_MODULE: &str = "tern_lm_head";
pub const LM_HEAD_FILE: &str = "tern_lm_head.v";

/// What an LM-head engine is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadShape {
    /// Weights a clock (a beat).
    pub lanes: usize,
    /// Bits a weight: 8 or 4 (two's complement, lane `l` at bits `[w·l + w − 1 : w·l]`).
    pub weight_bits: usize,
    /// Groups side by side in a beat (1 when a group is one or more whole beats).
    pub slices: usize,
    /// The widest row (the hidden size), a multiple of `lanes`.
    pub max_width: usize,
}

/// Rows are counted in 24 bits.
pub const LM_HEAD_MAX_ROWS: usize = (1 << 24) - 1;

impl LmHeadShape {
    pub fn check(&self) -> Result<(), ShapeError> {
        let LmHeadShape {
            lanes,
            weight_bits,
            slices,
            max_width,
        } = *self;
        let err = |m: String| Err(ShapeError(m));
        if !(1..=256).contains(&lanes) {
            return err(format!("LM head: lanes = {lanes} is outside 1..=256"));
        }
        if weight_bits != 8 && weight_bits != 4 {
            return err(format!("LM head: weight_bits = {weight_bits}, not 8 or 4"));
        }
        if slices == 0 || !lanes.is_multiple_of(slices) {
            return err(format!(
                "LM head: {slices} slices do not split {lanes} lanes evenly"
            ));
        }
        if max_width < 2 * lanes || !max_width.is_multiple_of(lanes) || max_width > 1 << 20 {
            return err(format!(
                "LM head: max_width = {max_width} is not a multiple of {lanes} lanes in 2·lanes..=2^20"
            ));
        }
        Ok(())
    }

    /// Beats of the widest row.
    pub fn max_beats(&self) -> usize {
        self.max_width / self.lanes
    }

    /// Register stages of a slice's adder tree: one every three levels, at least one.
    pub fn tree_stages(&self) -> usize {
        ceil_log2(self.lanes / self.slices).div_ceil(3).max(1)
    }

    /// Bits of a lane's product, signed.
    fn product_bits(&self) -> usize {
        self.weight_bits + 8
    }

    /// Bits of a group's (and a slice's) sum, signed: `|w·q| ≤ 2^(product − 2)` per
    /// weight, at most `max_width` of them.
    fn group_bits(&self) -> usize {
        self.product_bits() + ceil_log2(self.max_width) + 1
    }

    /// Bits of a row's score, signed: every group's sum times a u16 mantissa, summed.
    pub fn score_bits(&self) -> usize {
        self.group_bits() + 16 + 1
    }
}

/// Clocks of one command with every input valid and every score taken: the command
/// (1), the int8 vector (`b` beats), `rows · b` weight beats, and the last beat's way
/// through the input register, the products, the tree, the group sum, the mantissa
/// product, the slices' sum (`ceil_log2(slices)` levels), the row's carry-saved sum, its
/// last carry and the comparison's two clocks, and the group sum's own last carry
/// (`9 + tree_stages + levels`). The last
/// score's hand-over overlaps the comparison's second clock: writing every score adds
/// none.
pub fn lm_head_clocks(shape: LmHeadShape, rows: usize, width: usize) -> u64 {
    let b = (width / shape.lanes) as u64;
    1 + b + rows as u64 * b + 9 + (shape.tree_stages() + ceil_log2(shape.slices)) as u64
}

/// One slice's adder tree: `terms` (signed, `bits` wide) summed with a register every
/// three levels; the stage registers move with `flow`. Returns the sum's name and width.
fn adder_tree(
    out: &mut String,
    slice: usize,
    mut terms: Vec<String>,
    mut bits: usize,
    stages: usize,
) -> (String, usize) {
    for stage in 1..=stages {
        let chunk = if stage == stages { terms.len() } else { 8 };
        let grown = bits + ceil_log2(chunk.max(1));
        let mut next = Vec::new();
        for (i, part) in terms.chunks(chunk).enumerate() {
            let name = format!("t{slice}_{stage}_{i}");
            let sum: Vec<String> = part
                .iter()
                .map(|t| format!("{grown}'($signed({t}))"))
                .collect();
            writeln!(
                out,
                "    reg signed [{}:0] {name};\n    always @(posedge clk) if (flow) {name} <= {};",
                grown - 1,
                sum.join(" + ")
            )
            .unwrap();
            next.push(name);
        }
        terms = next;
        bits = grown;
    }
    debug_assert_eq!(terms.len(), 1);
    (terms.pop().unwrap(), bits)
}

/// The engine's Verilog for `shape` (see the module's picture).
pub fn lm_head_verilog(shape: LmHeadShape) -> Result<String, ShapeError> {
    shape.check()?;
    let LmHeadShape {
        lanes,
        weight_bits: wb,
        slices,
        ..
    } = shape;
    let per_slice = lanes / slices;
    let stages = shape.tree_stages();
    let (pb, gb, sb) = (shape.product_bits(), shape.group_bits(), shape.score_bits());
    let max_beats = shape.max_beats();
    let beat_bits = ceil_log2(max_beats + 1);
    let sign_extend = |r: &str| format!("{{{{{}{{{r}[{}]}}}}, {r}}}", 64 - sb, sb - 1);
    let mut lanes_text = String::new();
    for l in 0..lanes {
        writeln!(
            lanes_text,
            "    reg signed [{}:0] p{l};\n    always @(posedge clk) if (flow) p{l} <= {pb}'($signed(w_0[{}:{}])) * {pb}'($signed(q_0[{}:{}]));",
            pb - 1,
            wb * l + wb - 1,
            wb * l,
            8 * l + 7,
            8 * l
        )
        .unwrap();
    }
    let mut slices_text = String::new();
    let mut group_sums = Vec::new();
    for s in 0..slices {
        let terms = (s * per_slice..(s + 1) * per_slice)
            .map(|l| format!("p{l}"))
            .collect();
        let (sum, bits) = adder_tree(&mut slices_text, s, terms, pb, stages);
        // The group's running sum, carry-saved as the row's is (the low half's carry goes
        // into the high half a clock later); a clock after the group's last beat its
        // value is resolved, then it goes on, times its mantissa, to the row.
        writeln!(
            slices_text,
            "    wire signed [{gm}:0] gt{s} = {gb}'($signed({sum}));\n    \
             reg [{gl1}:0] glo{s};\n    reg signed [{gh1}:0] ghi{s};\n    reg gc{s};\n    \
             wire [{gl}:0] glo_sum{s} = {{1'b0, gs_t ? {gl}'d0 : glo{s}}} + {{1'b0, gt{s}[{gl1}:0]}};\n    \
             always @(posedge clk) if (flow && v_t) begin\n        glo{s} <= glo_sum{s}[{gl1}:0];\n        \
             gc{s} <= glo_sum{s}[{gl}];\n        \
             ghi{s} <= (gs_t ? {ghb}'sd0 : ghi{s} + $signed({ghb}'(gc{s}))) + gt{s}[{gm}:{gl}];\n    end\n    \
             reg signed [{gm}:0] gval{s};\n    \
             always @(posedge clk) if (flow) gval{s} <= {{ghi{s} + $signed({ghb}'(gc{s})), glo{s}}};\n    \
             reg signed [{pm}:0] gprod{s};\n    always @(posedge clk) if (flow) gprod{s} <= {pw}'(gval{s}) * {pw}'($signed({{1'b0, m_g[{mh}:{ml}]}}));",
            gm = gb - 1,
            gl = gb / 2,
            gl1 = gb / 2 - 1,
            gh1 = gb - gb / 2 - 1,
            ghb = gb - gb / 2,
            pm = gb + 16,
            pw = gb + 17,
            mh = 16 * s + 15,
            ml = 16 * s,
        )
        .unwrap();
        debug_assert!(bits <= gb, "a slice's sum fits a group's");
        group_sums.push(format!("{sb}'(gprod{s})"));
    }
    // Side bands along the tree: valid, group start/end, row start/end, mantissas.
    let mut side = String::new();
    for t in 1..=stages {
        let prev = if t == 1 {
            "1".to_string()
        } else {
            format!("{}", t - 1)
        };
        let from = |name: &str| {
            if t == 1 {
                format!("{name}1")
            } else {
                format!("{name}t{prev}")
            }
        };
        writeln!(
            side,
            "    reg v_t{t}, gs_t{t}, ge_t{t}, fg_t{t}, re_t{t};\n    reg [{mw}:0] m_t{t};\n    \
             always @(posedge clk) if (flow) begin\n        \
             v_t{t} <= rst ? 1'b0 : {v};\n        gs_t{t} <= {gs};\n        ge_t{t} <= {ge};\n        \
             fg_t{t} <= {fg};\n        re_t{t} <= {re};\n        m_t{t} <= {m};\n    end",
            mw = 16 * slices - 1,
            v = from("v_"),
            gs = from("gs_"),
            ge = from("ge_"),
            fg = from("fg_"),
            re = from("re_"),
            m = from("m_"),
        )
        .unwrap();
    }
    // The slices' products summed, a registered level of pairs at a time, their side
    // bands alongside: `x` and `v_x`, `fg_x`, `re_x` are the last level's.
    let mut score_tree = String::new();
    let mut terms = group_sums.clone();
    let mut band = ["v_m".to_string(), "fg_m".to_string(), "re_m".to_string()];
    let levels = ceil_log2(slices);
    for level in 1..=levels {
        let next: Vec<String> = terms
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| {
                let name = format!("ps{level}_{i}");
                writeln!(
                    score_tree,
                    "    reg signed [{}:0] {name};\n    always @(posedge clk) if (flow) {name} <= {};",
                    sb - 1,
                    pair.join(" + ")
                )
                .unwrap();
                name
            })
            .collect();
        writeln!(
            score_tree,
            "    reg v_p{level}, fg_p{level}, re_p{level};\n    always @(posedge clk) if (flow) begin\n        \
             v_p{level} <= rst ? 1'b0 : {};\n        fg_p{level} <= {};\n        re_p{level} <= {};\n    end",
            band[0], band[1], band[2]
        )
        .unwrap();
        terms = next;
        band = ["v", "fg", "re"].map(|b| format!("{b}_p{level}"));
    }
    debug_assert_eq!(terms.len(), 1);
    writeln!(
        score_tree,
        "    wire signed [{}:0] x = {};\n    wire v_x = {}, fg_x = {}, re_x = {};",
        sb - 1,
        terms[0],
        band[0],
        band[1],
        band[2]
    )
    .unwrap();
    let lo = sb / 2;
    let text = TEMPLATE
        .replace("{{LANES_TEXT}}", &lanes_text)
        .replace("{{SCORE_TREE}}", &score_tree)
        .replace("{{LO}}", &lo.to_string())
        .replace("{{LO_HI}}", &(lo - 1).to_string())
        .replace("{{HI_HI}}", &(sb - lo - 1).to_string())
        .replace("{{HI_BITS}}", &(sb - lo).to_string())
        .replace("{{SLICES_TEXT}}", &slices_text)
        .replace("{{SIDE}}", &side)
        .replace("{{MODULE}}", LM_HEAD_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{V}}", &lanes.to_string())
        .replace("{{WB}}", &wb.to_string())
        .replace("{{S}}", &slices.to_string())
        .replace("{{T}}", &stages.to_string())
        .replace("{{MAXB}}", &max_beats.to_string())
        .replace("{{MAXB_LAST}}", &(max_beats - 1).to_string())
        .replace("{{BB}}", &beat_bits.to_string())
        .replace("{{BB_HI}}", &(beat_bits - 1).to_string())
        .replace("{{QBITS_HI}}", &(8 * lanes - 1).to_string())
        .replace("{{WBITS_HI}}", &(wb * lanes - 1).to_string())
        .replace("{{MBITS_HI}}", &(16 * slices - 1).to_string())
        .replace("{{SB_HI}}", &(sb - 1).to_string())
        .replace("{{SB}}", &sb.to_string())
        .replace("{{OUT_SCORE}}", &sign_extend("out_reg"))
        .replace("{{BEST_SCORE}}", &sign_extend("best_s"))
        .replace("{{AI_HI}}", &(ceil_log2(max_beats).max(1) - 1).to_string())
        .replace("{{ONE_SLICE}}", if slices == 1 { "1'b1" } else { "1'b0" });
    debug_assert!(crate::bits::filled(&text), "a placeholder left");
    Ok(text)
}

const TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the LM-head engine, {{V}} weights of {{WB}} bits a
// clock in {{S}} slice(s), rows of up to {{MAXB}} beats (docs/vector.md). Per row,
// score = Σ_groups m_g · Σ_{i in g} w_i · q_i exactly; the next token is the first row
// with the largest score.
`default_nettype none
module {{MODULE}} (
    input  wire                 clk,
    input  wire                 rst,
    // A command: rows, beats a row (width / {{V}}), beats a group (the row's beats for a
    // scale per row; 1 when {{S}} groups share a beat), and whether every score goes out.
    // Refused (done at once, error set, nothing taken): no rows, a row of no beats or
    // of more than {{MAXB}}, a group that is not the row, a power of two dividing it, or
    // (with slices) one beat.
    input  wire                 cmd_valid,
    output wire                 cmd_ready,
    input  wire [23:0]          cmd_rows,
    input  wire [{{BB_HI}}:0]          cmd_beats,
    input  wire [{{BB_HI}}:0]          cmd_group_beats,
    input  wire                 cmd_scores,
    // The int8 vector first, beats/row beats.
    input  wire                 q_valid,
    output wire                 q_ready,
    input  wire [{{QBITS_HI}}:0]        q_data,
    // Then the weights, row after row.
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [{{WBITS_HI}}:0]        in_w,
    // A group's mantissas ({{S}} × u16, slice s at [16s+15:16s]), taken with its last beat.
    input  wire                 m_valid,
    output wire                 m_ready,
    input  wire [{{MBITS_HI}}:0]        m_data,
    // With cmd_scores: every row's score in order.
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [63:0]          out_score,
    output wire                 done,
    output wire                 error,
    output wire [23:0]          best_row,
    output wire [63:0]          best_score
);
    reg        busy;
    reg        refused;
    reg [23:0] rows;
    reg [{{BB_HI}}:0] beats;
    reg [{{BB_HI}}:0] group_beats;
    reg        scores;
    reg [{{BB_HI}}:0] q_taken;
    reg [23:0] rows_in;          // rows whose every beat was taken
    reg [{{BB_HI}}:0] row_beat;  // the next beat's place in its row
    reg [{{BB_HI}}:0] group_beat;// ... and in its group
    reg [23:0] rows_done;        // rows compared
    // LUT-RAM (a block RAM read is slow and would feed the multipliers directly).
    (* ram_style = "distributed" *) reg [{{QBITS_HI}}:0] qbuf [0:{{MAXB_LAST}}];
    // The whole pipeline moves together unless a score waits to go out.
    reg        out_full;
    reg [{{SB_HI}}:0] out_reg;
    wire flow = !out_full || out_ready;
    wire loading = busy && q_taken != beats;
    wire group_end = group_beat == group_beats - {{BB}}'d1;
    wire row_end = row_beat == beats - {{BB}}'d1;
    assign cmd_ready = !busy;
    assign q_ready = loading;
    wire take_q = q_valid && q_ready;
    assign in_ready = busy && !loading && rows_in != rows && flow && (!group_end || m_valid);
    wire take = in_valid && in_ready;
    assign m_ready = take && group_end;
    // A group of a power-of-two beats, dividing the row's; the row itself always fits.
    wire [{{BB_HI}}:0] gm1 = cmd_group_beats - {{BB}}'d1;
    wire group_ok = cmd_group_beats == cmd_beats
        || (cmd_group_beats != {{BB}}'d0 && (cmd_group_beats & gm1) == {{BB}}'d0
            && (cmd_beats & gm1) == {{BB}}'d0);
    wire bad = cmd_rows == 24'd0 || cmd_beats == {{BB}}'d0 || cmd_beats > {{BB}}'d{{MAXB}}
        || !group_ok || (!{{ONE_SLICE}} && cmd_group_beats != {{BB}}'d1);
    wire [{{QBITS_HI}}:0] q_now = qbuf[row_beat[{{AI_HI}}:0]];
    always @(posedge clk) if (take_q) qbuf[q_taken[{{AI_HI}}:0]] <= q_data;

    // Stage 0: the beat and its part of the vector, registered (the vector's buffer may
    // be a block RAM, whose read is slow), and what the beat is.
    reg v_0, gs_0, ge_0, fg_0, re_0;
    reg [{{MBITS_HI}}:0] m_0;
    reg [{{WBITS_HI}}:0] w_0;
    reg [{{QBITS_HI}}:0] q_0;
    always @(posedge clk) if (flow) begin
        v_0 <= rst ? 1'b0 : take;
        gs_0 <= group_beat == {{BB}}'d0;
        ge_0 <= group_end;
        // At a group's last beat: whether the group is its row's first.
        fg_0 <= row_beat < group_beats;
        re_0 <= row_end;
        m_0 <= m_data;
        w_0 <= in_w;
        q_0 <= q_now;
    end
    // Stage 1: the lane products.
    reg v_1, gs_1, ge_1, fg_1, re_1;
    reg [{{MBITS_HI}}:0] m_1;
    always @(posedge clk) if (flow) begin
        v_1 <= rst ? 1'b0 : v_0;
        gs_1 <= gs_0;
        ge_1 <= ge_0;
        fg_1 <= fg_0;
        re_1 <= re_0;
        m_1 <= m_0;
    end
{{LANES_TEXT}}
    // Stages 2 .. {{T}}+1: each slice's adder tree.
{{SIDE}}    wire v_t = v_t{{T}};
    wire gs_t = gs_t{{T}};
    // Group sums (a slice each), then times the mantissas.
    reg v_ga, fg_ga, re_ga;
    reg [{{MBITS_HI}}:0] m_ga;
    always @(posedge clk) if (flow) begin
        v_ga <= rst ? 1'b0 : v_t && ge_t{{T}};
        fg_ga <= fg_t{{T}};
        re_ga <= re_t{{T}};
        m_ga <= m_t{{T}};
    end
    reg v_g, fg_g, re_g;
    reg [{{MBITS_HI}}:0] m_g;
    always @(posedge clk) if (flow) begin
        v_g <= rst ? 1'b0 : v_ga;
        fg_g <= fg_ga;
        re_g <= re_ga;
        m_g <= m_ga;
    end
    reg v_m, fg_m, re_m;
    always @(posedge clk) if (flow) begin
        v_m <= rst ? 1'b0 : v_g;
        fg_m <= fg_g;
        re_m <= re_g;
    end
{{SLICES_TEXT}}
    // The row's score: its groups summed. The slices' products first ({{S}} slice(s)).
{{SCORE_TREE}}    // Then the groups of a row, carry-saved: the low {{LO}} bits and the high ones add
    // apart, the low half's carry going into the high half a clock later, so that no
    // carry chain is longer than half a score.
    reg [{{LO_HI}}:0] acc_lo;
    reg signed [{{HI_HI}}:0] acc_hi;
    reg acc_c;
    wire [{{LO}}:0] lo_sum = {1'b0, fg_x ? {{LO}}'d0 : acc_lo} + {1'b0, x[{{LO_HI}}:0]};
    always @(posedge clk) if (flow && v_x) begin
        acc_lo <= lo_sum[{{LO_HI}}:0];
        acc_c <= lo_sum[{{LO}}];
        acc_hi <= (fg_x ? {{HI_BITS}}'sd0 : acc_hi + $signed({{HI_BITS}}'(acc_c)))
            + x[{{SB_HI}}:{{LO}}];
    end
    reg v_a;
    always @(posedge clk) if (flow) v_a <= rst ? 1'b0 : v_x && re_x;
    // The row's score: the last carry folded in.
    reg v_r;
    reg signed [{{SB_HI}}:0] rscore;
    always @(posedge clk) if (flow) begin
        v_r <= rst ? 1'b0 : v_a;
        rscore <= {acc_hi + $signed({{HI_BITS}}'(acc_c)), acc_lo};
    end
    // The comparison: the first of the largest, in two clocks (halves compared, then
    // decided). Rows are at least two beats apart, so a row is compared with the best
    // its predecessors left.
    reg [23:0] best_r;
    reg signed [{{SB_HI}}:0] best_s;
    reg v_c, hi_gt, hi_eq, lo_gt;
    reg signed [{{SB_HI}}:0] cscore;
    always @(posedge clk) if (flow) begin
        v_c <= rst ? 1'b0 : v_r;
        cscore <= rscore;
        hi_gt <= $signed(rscore[{{SB_HI}}:{{LO}}]) > $signed(best_s[{{SB_HI}}:{{LO}}]);
        hi_eq <= rscore[{{SB_HI}}:{{LO}}] == best_s[{{SB_HI}}:{{LO}}];
        lo_gt <= rscore[{{LO_HI}}:0] > best_s[{{LO_HI}}:0];
    end
    assign out_valid = out_full;
    assign out_score = {{OUT_SCORE}};
    assign done = !busy;
    assign error = refused;
    assign best_row = best_r;
    assign best_score = {{BEST_SCORE}};
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            refused <= 1'b0;
            out_full <= 1'b0;
        end else if (!busy) begin
            if (cmd_valid) begin
                refused <= bad;
                busy <= !bad;
                rows <= cmd_rows;
                beats <= cmd_beats;
                group_beats <= cmd_group_beats;
                scores <= cmd_scores;
                q_taken <= {{BB}}'d0;
                rows_in <= 24'd0;
                row_beat <= {{BB}}'d0;
                group_beat <= {{BB}}'d0;
                rows_done <= 24'd0;
            end
        end else begin
            if (take_q) q_taken <= q_taken + {{BB}}'d1;
            if (take) begin
                row_beat <= row_end ? {{BB}}'d0 : row_beat + {{BB}}'d1;
                group_beat <= group_end ? {{BB}}'d0 : group_beat + {{BB}}'d1;
                if (row_end) rows_in <= rows_in + 24'd1;
            end
            if (flow) begin
                out_full <= v_r && scores;
                if (v_r) out_reg <= rscore;
                if (v_c) begin
                    rows_done <= rows_done + 24'd1;
                    if (rows_done == 24'd0 || hi_gt || (hi_eq && lo_gt)) begin
                        best_s <= cscore;
                        best_r <= rows_done;
                    end
                end
            end
            if (rows_done == rows && !out_full) busy <= 1'b0;
        end
    end
endmodule
`default_nettype wire
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(lanes: usize, weight_bits: usize, slices: usize, max_width: usize) -> LmHeadShape {
        LmHeadShape {
            lanes,
            weight_bits,
            slices,
            max_width,
        }
    }

    #[test]
    fn shapes_are_checked() {
        assert!(lm_head_verilog(shape(16, 8, 1, 2560)).is_ok());
        assert!(lm_head_verilog(shape(64, 4, 2, 2560)).is_ok());
        for bad in [
            shape(0, 8, 1, 64),
            shape(16, 6, 1, 64),
            shape(16, 8, 3, 64),
            shape(16, 8, 1, 72),
            shape(16, 8, 1, 1 << 21),
            shape(16, 8, 1, 16),
        ] {
            assert!(lm_head_verilog(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_tree_has_a_register_every_three_levels() {
        assert_eq!(shape(1, 8, 1, 8).tree_stages(), 1);
        assert_eq!(shape(8, 8, 1, 16).tree_stages(), 1);
        assert_eq!(shape(16, 8, 1, 16).tree_stages(), 2);
        assert_eq!(shape(64, 8, 1, 64).tree_stages(), 2);
        assert_eq!(shape(128, 8, 2, 128).tree_stages(), 2);
        assert_eq!(shape(256, 8, 1, 256).tree_stages(), 3);
    }
}
