//! The sequencer's RTL: runs a program (docs/program.md) for one pass. It reads the
//! header over its AXI4 read port and refuses, before it writes anything, what the
//! golden sequencer (`tern-sim`'s `golden::sequencer`) refuses; writes the pass's token
//! ids at `ids_at`; then fetches command after command, checks each (opcode, flags,
//! scales, sizes, the model's matrices and layers) and hands it to the units, waiting
//! for each to finish; `End` after an LM head ends the pass with its token.
//!
//! ```text
//! start ─► header (8 beats) ─► checks ─► ids checked, written (bursts of ≤ 16 beats)
//!       ─► per command: fetch (4 beats) ─► checks ─► unit ─► done / error
//!       ─► End: idle, error 0, next token
//! ```
//!
//! What it does not check is the units' and the memory's: reads beyond memory and
//! writes outside scratch (the memory side's guard), and what lies in the data.

use crate::program::{
    error_code, ALIGN, ATTENTION_RECORD_BYTES, COMMANDS_ALIGN, HEADER_BYTES, MAGIC, PROGRAM_ALIGN,
    VERSION,
};

pub const SEQUENCER_MODULE: &str = "tern_sequencer";
pub const SEQUENCER_FILE: &str = "tern_sequencer.v";

/// What a sequencer is built for: the accelerator and the model its units hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencerShape {
    pub design: u32,
    /// Bytes of memory the ports reach (the header must lie inside).
    pub memory_bytes: u64,
    pub hidden: u32,
    pub vocab: u32,
    pub layers: u32,
    /// Positions the attention engine holds.
    pub max_seq_len: u32,
    /// Each matrix of a layer as (m, k), in program order: q, k, v, o, gate, up, down.
    pub matrices: [(u32, u32); 7],
    /// The most token ids one pass may carry (the id buffer), a multiple of 4.
    pub max_ids: u32,
}

impl SequencerShape {
    pub fn check(&self) -> Result<(), String> {
        if self.max_ids == 0 || !self.max_ids.is_multiple_of(4) || self.max_ids > 1 << 16 {
            return Err(format!(
                "sequencer: max_ids = {} is not a multiple of 4 in 4..=65536",
                self.max_ids
            ));
        }
        if self.memory_bytes < HEADER_BYTES as u64 {
            return Err(format!(
                "sequencer: {} bytes of memory hold no program",
                self.memory_bytes
            ));
        }
        if self.vocab == 0 || self.layers == 0 || self.hidden == 0 {
            return Err("sequencer: a model of no vocabulary, layers or width".into());
        }
        Ok(())
    }
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

/// The sequencer's Verilog for `shape`.
pub fn sequencer_verilog(shape: &SequencerShape) -> Result<String, String> {
    shape.check()?;
    let words = shape.max_ids / 4;
    let word_bits = crate::bits::ceil_log2(words as usize).max(1);
    let mut matrix_shape = String::new();
    for (i, (m, k)) in shape.matrices.iter().enumerate() {
        matrix_shape.push_str(&format!(
            "            16'd{i}: shape_ok = c_n == 32'd{m} && c_k == 32'd{k};\n"
        ));
    }
    let magic = (u32_le(&MAGIC[..4]), u32_le(&MAGIC[4..]));
    use error_code as e;
    let codes = [
        ("TRUNCATED", e::TRUNCATED),
        ("MAGIC", e::MAGIC),
        ("VERSION", e::VERSION),
        ("HEADER_FIELD", e::HEADER_FIELD),
        ("DESIGN", e::DESIGN),
        ("MODEL", e::MODEL),
        ("TOO_MANY_TOKENS", e::TOO_MANY_TOKENS),
        ("NO_TOKENS", e::NO_TOKENS),
        ("TOKEN_ID", e::TOKEN_ID),
        ("CONTEXT", e::CONTEXT),
        ("OPCODE", e::OPCODE),
        ("FLAGS", e::FLAGS),
        ("SCALE", e::SCALE),
        ("COUNT", e::COUNT),
        ("SIZE", e::SIZE),
        ("MATRIX", e::MATRIX),
        ("SHAPE", e::SHAPE),
        ("LAYER", e::LAYER),
        ("NO_CHOICE", e::NO_CHOICE),
        ("NO_END", e::NO_END),
        ("OUT_OF_REGION", e::OUT_OF_REGION),
    ];
    let mut t = TEMPLATE
        .replace("{{MODULE}}", SEQUENCER_MODULE)
        .replace("{{VERSION_TEXT}}", env!("CARGO_PKG_VERSION"))
        .replace("{{MEMORY_BYTES}}", &shape.memory_bytes.to_string())
        .replace("{{DESIGN}}", &format!("32'h{:08x}", shape.design))
        .replace("{{HIDDEN}}", &shape.hidden.to_string())
        .replace("{{VOCAB}}", &shape.vocab.to_string())
        .replace("{{LAYERS}}", &shape.layers.to_string())
        .replace("{{MAX_SEQ}}", &shape.max_seq_len.to_string())
        .replace("{{MAX_IDS}}", &shape.max_ids.to_string())
        .replace("{{WORDS_LAST}}", &(words - 1).to_string())
        .replace("{{WB_HI}}", &(word_bits - 1).to_string())
        .replace("{{MATRIX_SHAPE}}", &matrix_shape)
        .replace("{{MAGIC_LO}}", &format!("32'h{:08x}", magic.0))
        .replace("{{MAGIC_HI}}", &format!("32'h{:08x}", magic.1))
        .replace("{{FORMAT_VERSION}}", &VERSION.to_string())
        .replace("{{ALIGN_MASK}}", &(ALIGN - 1).to_string())
        .replace("{{COMMANDS_MASK}}", &(COMMANDS_ALIGN - 1).to_string())
        .replace(
            "{{RECORDS_MASK}}",
            &(ATTENTION_RECORD_BYTES - 1).to_string(),
        )
        .replace("{{PROGRAM_MASK}}", &(PROGRAM_ALIGN - 1).to_string());
    for (name, code) in codes {
        t = t.replace(&format!("{{{{E_{name}}}}}"), &format!("8'd{code}"));
    }
    debug_assert!(crate::bits::filled(&t), "a placeholder left");
    Ok(t)
}

const TEMPLATE: &str = r#"// Generated by tern {{VERSION_TEXT}}: the sequencer (docs/program.md). One pass of a
// program: header, checks, ids, then command after command to the units.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
    // The pass's token ids, pushed while idle (one a clock); clear empties them.
    input  wire         id_push,
    input  wire [31:0]  id_data,
    input  wire         id_clear,
    // A pass: the program's address and the first position; the ids pushed.
    input  wire         start,
    input  wire [63:0]  program_at,
    input  wire [31:0]  position,
    output wire         idle,
    // 0 when the last pass ended with a token; else the error (tern_hdl::program::error_code)
    // and the command it names (all ones: none).
    output reg  [7:0]   error_code,
    output reg  [31:0]  error_command,
    output reg  [31:0]  next_token,
    output reg  [31:0]  commands_run,
    // The header's fields the units need, valid while a pass runs.
    output wire [63:0]  scratch_at,
    output wire [63:0]  scratch_end,
    output wire [63:0]  output_at,
    output wire [31:0]  residual_frac,
    output wire [31:0]  eps_m,
    output wire [31:0]  eps_e,
    output wire [63:0]  ids_at,
    output wire [63:0]  kv_at,
    output wire [63:0]  kv_end,
    output wire [63:0]  attention_at,
    output wire [31:0]  max_seq_len,
    // AXI4 read, 16-byte beats, INCR.
    output reg          m_arvalid,
    input  wire         m_arready,
    output reg  [63:0]  m_araddr,
    output reg  [7:0]   m_arlen,
    input  wire         m_rvalid,
    output wire         m_rready,
    input  wire [127:0] m_rdata,
    input  wire [1:0]   m_rresp,
    input  wire         m_rlast,
    // AXI4 write, 16-byte beats, INCR.
    output reg          m_awvalid,
    input  wire         m_awready,
    output reg  [63:0]  m_awaddr,
    output reg  [7:0]   m_awlen,
    output reg          m_wvalid,
    input  wire         m_wready,
    output wire [127:0] m_wdata,
    output wire [15:0]  m_wstrb,
    output wire         m_wlast,
    input  wire         m_bvalid,
    output wire         m_bready,
    input  wire [1:0]   m_bresp,
    // The units: a command's 64-byte record with the pass's rows and first position;
    // done (a pulse) with an error code (0: none) and, from an LM head, its token.
    output reg          u_valid,
    input  wire         u_ready,
    output wire [511:0] u_record,
    output wire [31:0]  u_rows,
    output wire [31:0]  u_position,
    input  wire         u_done,
    input  wire [7:0]   u_error,
    input  wire [31:0]  u_next
);
    localparam [4:0] S_IDLE = 5'd0, S_HDR_AR = 5'd1, S_HDR_R = 5'd2, S_CHECK = 5'd3,
                     S_IDS = 5'd4, S_ID_AW = 5'd5, S_ID_W = 5'd6, S_ID_B = 5'd7,
                     S_CMD = 5'd8, S_CMD_AR = 5'd9, S_CMD_R = 5'd10, S_DECODE = 5'd11,
                     S_UNIT = 5'd12, S_WAIT = 5'd13, S_HDR_HOLD = 5'd14, S_REC_HOLD = 5'd15,
                     S_CMD_CHECK = 5'd16, S_CMD_HOLD = 5'd17, S_ID_NEXT = 5'd18;
    reg [4:0]    state;
    /* verilator lint_off UNUSEDSIGNAL */ // the header's zero bytes and padding
    reg [1023:0] hdr;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [511:0]  rec;
    reg [2:0]    beat;
    reg [127:0]  ids [0:{{WORDS_LAST}}];
    reg [31:0]   id_count;
    reg          id_overflow; // an id pushed beyond the buffer
    reg [31:0]   pos;
    reg [31:0]   index;      // the command, or the id word being checked / written
    reg [31:0]   burst_left; // beats left in the write burst
    reg          chose;      // an LM head chose a token this pass
    reg          resp_bad;   // a read beat came back with an error

    // ---- the header's fields ----
    wire [31:0] h_magic_lo = hdr[31:0];
    wire [31:0] h_magic_hi = hdr[63:32];
    wire [31:0] h_version = hdr[95:64];
    wire [31:0] h_design = hdr[127:96];
    wire [31:0] h_commands = hdr[159:128];
    wire [63:0] h_commands_at = hdr[255:192];
    wire [63:0] h_scratch_at = hdr[319:256];
    wire [63:0] h_scratch_bytes = hdr[383:320];
    wire [63:0] h_ids_at = hdr[447:384];
    wire [63:0] h_output_at = hdr[511:448];
    wire [31:0] h_frac = hdr[543:512];
    wire [31:0] h_eps_m = hdr[575:544];
    wire [31:0] h_eps_e = hdr[607:576];
    wire [31:0] h_hidden = hdr[639:608];
    wire [31:0] h_vocab = hdr[671:640];
    wire [31:0] h_max_tokens = hdr[703:672];
    wire [31:0] h_max_seq = hdr[735:704];
    wire [63:0] h_kv_at = hdr[831:768];
    wire [63:0] h_kv_bytes = hdr[895:832];
    wire [63:0] h_attention_at = hdr[959:896];
    // A scale's mantissa: 0 or 24 bits.
    function automatic scale_ok(input [31:0] m);
        scale_ok = m == 32'd0 || (m[31:24] == 8'd0 && m[23]);
    endfunction
    function automatic aligned(input [63:0] a);
        aligned = (a & 64'd{{ALIGN_MASK}}) == 64'd0;
    endfunction
    // The command list: on a command, so that no command's burst crosses 4 KiB.
    function automatic commands_aligned(input [63:0] a);
        commands_aligned = (a & 64'd{{COMMANDS_MASK}}) == 64'd0;
    endfunction
    // The attention records: on a record, so that each is one burst.
    function automatic records_aligned(input [63:0] a);
        records_aligned = (a & 64'd{{RECORDS_MASK}}) == 64'd0;
    endfunction
    // a + b, saturating at 2^64 − 1 (the golden model's saturating_add).
    function automatic [63:0] sat_add(input [63:0] a, input [63:0] b);
        reg [64:0] s;
        begin
            s = {1'b0, a} + {1'b0, b};
            sat_add = s[64] ? 64'hffff_ffff_ffff_ffff : s[63:0];
        end
    endfunction
    // Beats of the ids' next write burst with `left` to go, starting at beat
    // `beat_in_page` of its 4 KiB: at most 16, and none across the boundary (AXI).
    function automatic [31:0] id_burst(input [7:0] beat_in_page, input [31:0] left);
        reg [31:0] room;
        begin
            room = 32'd256 - {24'd0, beat_in_page};
            id_burst = left > 32'd16 ? 32'd16 : left;
            if (room < id_burst) id_burst = room;
        end
    endfunction
    wire [63:0] s_end = sat_add(h_scratch_at, h_scratch_bytes);
    assign scratch_at = h_scratch_at;
    assign scratch_end = s_end;
    assign output_at = h_output_at;
    assign residual_frac = h_frac;
    assign eps_m = h_eps_m;
    assign eps_e = h_eps_e;
    assign ids_at = h_ids_at;
    assign kv_at = h_kv_at;
    assign kv_end = sat_add(h_kv_at, h_kv_bytes);
    assign attention_at = h_attention_at;
    assign max_seq_len = h_max_seq;
    // The record stays put until the unit is done: the next fetch starts after.
    assign u_record = rec;
    assign u_rows = id_count;
    assign u_position = pos;
    assign idle = state == S_IDLE;

    // ---- the pass's checks, in the golden sequencer's order ----
    wire [31:0] seq_limit = h_max_seq < 32'd{{MAX_SEQ}} ? h_max_seq : 32'd{{MAX_SEQ}};
    wire [32:0] seq_end = {1'b0, pos} + {1'b0, id_count};
    wire [63:0] ids_end = sat_add(h_ids_at, {30'd0, id_count, 2'd0});
    reg [7:0] pass_error;
    always @(*) begin
        if (h_magic_lo != {{MAGIC_LO}} || h_magic_hi != {{MAGIC_HI}}) pass_error = {{E_MAGIC}};
        else if (h_version != 32'd{{FORMAT_VERSION}}) pass_error = {{E_VERSION}};
        else if (!scale_ok(h_eps_m) || !commands_aligned(h_commands_at) || !aligned(h_scratch_at)
                 || !aligned(h_scratch_bytes) || !aligned(h_ids_at) || !aligned(h_output_at)
                 || !aligned(h_kv_at) || !aligned(h_kv_bytes) || !records_aligned(h_attention_at))
            pass_error = {{E_HEADER_FIELD}};
        else if (h_design != {{DESIGN}}) pass_error = {{E_DESIGN}};
        else if (h_hidden != 32'd{{HIDDEN}} || h_vocab != 32'd{{VOCAB}}) pass_error = {{E_MODEL}};
        else if (id_overflow || id_count > h_max_tokens) pass_error = {{E_TOO_MANY_TOKENS}};
        else if (id_count == 32'd0) pass_error = {{E_NO_TOKENS}};
        else pass_error = 8'd0;
    end
    // The ids of word `index` beyond the vocabulary (only those the pass has).
    wire [127:0] id_word = ids[index[{{WB_HI}}:0]];
    wire [3:0] id_bad;
    genvar g;
    generate
        for (g = 0; g < 4; g = g + 1) begin : id_lane
            assign id_bad[g] = {index[29:0], 2'(g)} < id_count
                && id_word[32 * g + 31:32 * g] >= 32'd{{VOCAB}};
        end
    endgenerate
    wire [31:0] id_words = (id_count + 32'd3) >> 2;
    // The write of word `index`: its ids, the lanes the pass has.
    assign m_wdata = id_word;
    wire [31:0] lanes_left = id_count - {index[29:0], 2'd0};
    assign m_wstrb = lanes_left >= 32'd4 ? 16'hffff : lanes_left == 32'd3 ? 16'h0fff
                   : lanes_left == 32'd2 ? 16'h00ff : 16'h000f;
    assign m_wlast = burst_left == 32'd1;
    assign m_bready = state == S_ID_B;
    assign m_rready = state == S_HDR_R || state == S_CMD_R;

    // ---- a command's fields and checks, in the golden sequencer's order ----
    wire [7:0]  c_op = rec[7:0];
    wire [7:0]  c_flags = rec[15:8];
    wire [15:0] c_layer = rec[47:32];
    wire [15:0] c_which = rec[63:48];
    wire [31:0] c_n = rec[351:320];
    wire [31:0] c_k = rec[383:352];
    wire [31:0] c_count = rec[415:384];
    wire [31:0] c_scale_m = rec[447:416];
    function automatic in_range(input [31:0] v, input [31:0] max);
        in_range = v != 32'd0 && v <= max;
    endfunction
    reg shape_ok;
    always @(*) begin
        case (c_which)
{{MATRIX_SHAPE}}            default: shape_ok = 1'b0;
        endcase
    end
    wire [7:0] allowed = (c_op == 8'd2 || c_op == 8'd4) ? 8'd1 : c_op == 8'd9 ? 8'd3 : 8'd0;
    wire needs_scale = (c_op == 8'd2 && c_flags[0]) || c_op == 8'd4 || c_op == 8'd6;
    wire [31:0] group_m1 = c_count - 32'd1;
    reg [7:0] cmd_error;
    always @(*) begin
        cmd_error = 8'd0;
        if (c_op > 8'd9) cmd_error = {{E_OPCODE}};
        else if ((c_flags & ~allowed) != 8'd0) cmd_error = {{E_FLAGS}};
        else if (needs_scale && !scale_ok(c_scale_m)) cmd_error = {{E_SCALE}};
        else if (c_op == 8'd9 && !c_flags[1] && c_count != 32'd0) cmd_error = {{E_COUNT}};
        else case (c_op)
            8'd1, 8'd2, 8'd4, 8'd6, 8'd8:
                if (!in_range(c_n, 32'd1048576)) cmd_error = {{E_SIZE}};
            8'd3:
                if (!in_range(c_n, 32'd1048576) || !in_range(c_k, 32'd1048576)) cmd_error = {{E_SIZE}};
                else if ({16'd0, c_layer} >= 32'd{{LAYERS}} || c_which >= 16'd7) cmd_error = {{E_MATRIX}};
                else if (!shape_ok) cmd_error = {{E_SHAPE}};
            8'd5:
                if (!in_range(c_count, 32'd1024) || !in_range(c_k, 32'd4096) || c_k[0]) cmd_error = {{E_SIZE}};
            8'd7:
                if ({16'd0, c_layer} >= 32'd{{LAYERS}}) cmd_error = {{E_LAYER}};
            8'd9:
                if (!in_range(c_n, 32'd16777216) || !in_range(c_k, 32'd1048576)) cmd_error = {{E_SIZE}};
                else if (c_flags[1] && (c_count < 32'd2 || (c_count & group_m1) != 32'd0
                                        || (c_k & group_m1) != 32'd0))
                    cmd_error = {{E_COUNT}};
            8'd0:
                if (!chose) cmd_error = {{E_NO_CHOICE}};
            default: ;
        endcase
    end
    // Command `index`'s record: it must lie inside memory.
    wire [63:0] cmd_at = sat_add(h_commands_at, {26'd0, index, 6'd0});
    // The next id burst's place and beats, in two registered steps (the saturating
    // 64-bit sum, then the burst's cut), settled two clocks after `index` last moved.
    reg  [63:0] ids_next_at;
    reg  [31:0] ids_left, ids_burst;
    reg  [1:0]  ids_settle;
    always @(posedge clk) begin
        ids_next_at <= sat_add(h_ids_at, {28'd0, index, 4'd0});
        ids_left <= id_words - index;
        ids_burst <= id_burst(ids_next_at[11:4], ids_left);
    end

    // The checks, a clock behind what they check (each is used only once what it checks
    // has stood still for a clock): the comparisons' carry chains end in a register.
    // Sums first, then their comparisons: one carry chain a clock.
    reg [7:0]  pass_error_q, cmd_error_q;
    reg        context_ok_q, ids_inside_q, cmd_inside_q;
    reg [63:0] cmd_at_q, s_end_q, ids_end_q;
    always @(posedge clk) begin
        pass_error_q <= pass_error;
        cmd_error_q <= cmd_error;
        context_ok_q <= seq_end <= {1'b0, seq_limit};
        s_end_q <= s_end;
        ids_end_q <= ids_end;
        ids_inside_q <= h_ids_at >= h_scratch_at && ids_end_q <= s_end_q;
        cmd_at_q <= cmd_at;
        // cmd_at_q + 64 <= memory, the sum saturating: cmd_at_q <= memory − 64.
        cmd_inside_q <= cmd_at_q <= 64'd{{MEMORY_BYTES}} - 64'd64;
    end

    task automatic fail(input [7:0] code, input [31:0] command);
        begin
            error_code <= code;
            error_command <= command;
            state <= S_IDLE;
        end
    endtask

    always @(posedge clk) begin
        if (id_clear && state == S_IDLE) begin
            id_count <= 32'd0;
            id_overflow <= 1'b0;
        end else if (id_push && state == S_IDLE && id_count == 32'd{{MAX_IDS}}) id_overflow <= 1'b1;
        else if (id_push && state == S_IDLE) begin
            case (id_count[1:0])
                2'd0: ids[id_count[{{WB_HI}}+2:2]][31:0] <= id_data;
                2'd1: ids[id_count[{{WB_HI}}+2:2]][63:32] <= id_data;
                2'd2: ids[id_count[{{WB_HI}}+2:2]][95:64] <= id_data;
                default: ids[id_count[{{WB_HI}}+2:2]][127:96] <= id_data;
            endcase
            id_count <= id_count + 32'd1;
        end
        if (rst) begin
            state <= S_IDLE;
            id_count <= 32'd0;
            id_overflow <= 1'b0;
            m_arvalid <= 1'b0;
            m_awvalid <= 1'b0;
            m_wvalid <= 1'b0;
            u_valid <= 1'b0;
            error_code <= 8'd0;
            error_command <= 32'hffff_ffff;
            next_token <= 32'd0;
            commands_run <= 32'd0;
        end else case (state)
            S_IDLE: if (start) begin
                pos <= position;
                chose <= 1'b0;
                commands_run <= 32'd0;
                error_code <= 8'd0;
                error_command <= 32'hffff_ffff;
                if ((program_at & 64'd{{PROGRAM_MASK}}) != 64'd0)
                    fail({{E_HEADER_FIELD}}, 32'hffff_ffff);
                else if (program_at > 64'd{{MEMORY_BYTES}} - 64'd128)
                    fail({{E_TRUNCATED}}, 32'hffff_ffff);
                else begin
                    m_araddr <= program_at;
                    m_arlen <= 8'd7;
                    m_arvalid <= 1'b1;
                    beat <= 3'd0;
                    resp_bad <= 1'b0;
                    state <= S_HDR_AR;
                end
            end
            S_HDR_AR: if (m_arready) begin
                m_arvalid <= 1'b0;
                state <= S_HDR_R;
            end
            S_HDR_R: if (m_rvalid) begin
                hdr[{beat, 7'd0} +: 128] <= m_rdata;
                beat <= beat + 3'd1;
                if (m_rresp != 2'd0) resp_bad <= 1'b1;
                if (m_rlast) state <= S_HDR_HOLD;
            end
            // A clock for the header's checks to settle into their registers.
            S_HDR_HOLD: state <= S_CHECK;
            S_CHECK:
                if (resp_bad) fail({{E_TRUNCATED}}, 32'hffff_ffff);
                else if (pass_error_q != 8'd0) fail(pass_error_q, 32'hffff_ffff);
                else begin
                    index <= 32'd0;
                    state <= S_IDS;
                end
            // One word of ids a clock against the vocabulary, then the context and the
            // ids' place in scratch; then the ids go out, a burst of ≤ 16 beats at a time.
            S_IDS:
                if (index != id_words) begin
                    if (id_bad != 4'd0) fail({{E_TOKEN_ID}}, 32'hffff_ffff);
                    else index <= index + 32'd1;
                end else if (!context_ok_q) fail({{E_CONTEXT}}, 32'hffff_ffff);
                else if (!ids_inside_q) fail({{E_OUT_OF_REGION}}, 32'd0);
                else begin
                    index <= 32'd0;
                    ids_settle <= 2'd0;
                    state <= S_ID_NEXT;
                end
            // The next burst of ids, once its place and beats have settled.
            S_ID_NEXT: if (ids_settle != 2'd2) ids_settle <= ids_settle + 2'd1;
            else begin
                m_awaddr <= ids_next_at;
                m_awlen <= 8'(ids_burst - 32'd1);
                burst_left <= ids_burst;
                m_awvalid <= 1'b1;
                state <= S_ID_AW;
            end
            S_ID_AW: if (m_awready) begin
                m_awvalid <= 1'b0;
                m_wvalid <= 1'b1;
                state <= S_ID_W;
            end
            S_ID_W: if (m_wready) begin
                index <= index + 32'd1;
                burst_left <= burst_left - 32'd1;
                if (m_wlast) begin
                    m_wvalid <= 1'b0;
                    state <= S_ID_B;
                end
            end
            S_ID_B: if (m_bvalid) begin
                if (m_bresp != 2'd0) fail({{E_OUT_OF_REGION}}, 32'd0);
                else if (index == id_words) begin
                    index <= 32'd0;
                    state <= S_CMD;
                end else begin
                    ids_settle <= 2'd0;
                    state <= S_ID_NEXT;
                end
            end
            // Two clocks for the record's address and its check to settle.
            S_CMD: state <= S_CMD_HOLD;
            S_CMD_HOLD: state <= S_CMD_CHECK;
            S_CMD_CHECK:
                if (index == h_commands) fail({{E_NO_END}}, 32'hffff_ffff);
                else if (!cmd_inside_q)
                    fail({{E_OUT_OF_REGION}}, index);
                else begin
                    m_araddr <= cmd_at_q;
                    m_arlen <= 8'd3;
                    m_arvalid <= 1'b1;
                    beat <= 3'd0;
                    resp_bad <= 1'b0;
                    state <= S_CMD_AR;
                end
            S_CMD_AR: if (m_arready) begin
                m_arvalid <= 1'b0;
                state <= S_CMD_R;
            end
            S_CMD_R: if (m_rvalid) begin
                rec[{beat[1:0], 7'd0} +: 128] <= m_rdata;
                beat <= beat + 3'd1;
                if (m_rresp != 2'd0) resp_bad <= 1'b1;
                if (m_rlast) state <= S_REC_HOLD;
            end
            S_REC_HOLD: state <= S_DECODE;
            S_DECODE:
                if (resp_bad) fail({{E_OUT_OF_REGION}}, index);
                else if (cmd_error_q != 8'd0) fail(cmd_error_q, index);
                else if (c_op == 8'd0) begin
                    commands_run <= index + 32'd1;
                    state <= S_IDLE;
                end else begin
                    u_valid <= 1'b1;
                    state <= S_UNIT;
                end
            S_UNIT: if (u_ready) begin
                u_valid <= 1'b0;
                state <= S_WAIT;
            end
            S_WAIT: if (u_done) begin
                commands_run <= index + 32'd1;
                if (u_error != 8'd0) fail(u_error, index);
                else begin
                    if (c_op == 8'd9) begin
                        chose <= 1'b1;
                        next_token <= u_next;
                    end
                    index <= index + 32'd1;
                    state <= S_CMD;
                end
            end
            default: state <= S_IDLE;
        endcase
    end
endmodule
`default_nettype wire
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> SequencerShape {
        SequencerShape {
            design: 1,
            memory_bytes: 1 << 20,
            hidden: 64,
            vocab: 256,
            layers: 2,
            max_seq_len: 64,
            matrices: [(64, 64); 7],
            max_ids: 16,
        }
    }

    #[test]
    fn shapes_are_checked() {
        assert!(sequencer_verilog(&shape()).is_ok());
        for bad in [
            SequencerShape {
                max_ids: 6,
                ..shape()
            },
            SequencerShape {
                memory_bytes: 64,
                ..shape()
            },
            SequencerShape {
                vocab: 0,
                ..shape()
            },
        ] {
            assert!(sequencer_verilog(&bad).is_err(), "{bad:?}");
        }
    }
}
