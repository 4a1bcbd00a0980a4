//! `tern_top.v`: the register file, card memory and controller around `tern_engine`.
//! Written as a template with the layout's constants filled in; the register decode is
//! generated from [`super::regmap::REGISTERS`].

use super::regmap::{self, Kind, REGISTERS};
use super::{CardLayout, TOP_MODULE};
use crate::emit::{Design, WRAPPER_MODULE};

/// `buf <= {incoming, buf[hi:32]}` for a shift register of `words` 32-bit words.
fn shift_in(buf: &str, incoming: &str, words: usize) -> String {
    if words == 1 {
        format!("{buf} <= {incoming};")
    } else {
        format!("{buf} <= {{{incoming}, {buf}[{}:32]}};", words * 32 - 1)
    }
}

fn status_source(name: &str, l: &CardLayout, design_id: u32) -> String {
    match name {
        "CYCLES" => "last_cycles".into(),
        "HW_ID" => format!("32'h{:08X}", regmap::HW_ID_VALUE),
        "DESIGN_ID" => format!("32'h{design_id:08X}"),
        "CARD_BYTES" => format!("32'd{}", l.card_bytes()),
        "ERROR" => "{27'd0, error}".into(),
        other => panic!("status register {other} has no source in the top template"),
    }
}

fn read_mux(l: &CardLayout, design_id: u32) -> String {
    let mut s = String::new();
    for r in REGISTERS {
        let src = match r.kind {
            Kind::Control => "{28'd0, ready_flag, ~busy, done_flag, busy}".to_string(),
            Kind::GlobalInterruptEnable => "{31'd0, gie}".into(),
            Kind::InterruptEnable => "{30'd0, ier}".into(),
            Kind::InterruptStatus => "{30'd0, isr}".into(),
            Kind::Argument => format!("arg_{}", r.name.to_lowercase()),
            Kind::Status => status_source(r.name, l, design_id),
        };
        s.push_str(&format!(
            "            8'h{:02X}: reg_rdata <= {src}; // {}\n",
            r.offset, r.name
        ));
    }
    s
}

fn argument_regs() -> (String, String, String) {
    let (mut decl, mut reset, mut write) = (String::new(), String::new(), String::new());
    for r in REGISTERS.iter().filter(|r| r.kind == Kind::Argument) {
        let n = r.name.to_lowercase();
        decl.push_str(&format!("    reg [31:0] arg_{n}; // 0x{:02X}\n", r.offset));
        reset.push_str(&format!("            arg_{n} <= 32'd0;\n"));
        write.push_str(&format!(
            "                8'h{:02X}: if (!busy) arg_{n} <= reg_wdata;\n",
            r.offset
        ));
    }
    (decl, reset, write)
}

pub(super) fn top(l: &CardLayout, engine: &Design, design_id: u32) -> String {
    let bits = engine.stream_bits();
    let aw = l.address_bits();
    let (arg_decl, arg_reset, arg_write) = argument_regs();
    let res_pad = l.result_words * 32 - bits.res;
    let res_in = if res_pad == 0 {
        "res_data".to_string()
    } else {
        format!("{{{res_pad}'d0, res_data}}")
    };
    let t = TEMPLATE
        .replace("{{TOP}}", TOP_MODULE)
        .replace("{{ENGINE}}", WRAPPER_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{AW}}", &aw.to_string())
        .replace("{{AW_HI}}", &(aw - 1).to_string())
        .replace("{{AW_TOP}}", &(aw + 1).to_string())
        .replace("{{WORDS_LAST}}", &(l.card_words - 1).to_string())
        .replace("{{CARD_BYTES}}", &l.card_bytes().to_string())
        .replace("{{WEIGHT_BYTES}}", &l.weight_bytes().to_string())
        .replace("{{ACT_TOKEN_BYTES}}", &l.activation_bytes().to_string())
        .replace("{{RES_TOKEN_BYTES}}", &l.result_bytes().to_string())
        .replace("{{ACT_BITS_HI}}", &(bits.act - 1).to_string())
        .replace("{{WGT_BITS_HI}}", &(bits.wgt - 1).to_string())
        .replace("{{RES_BITS_HI}}", &(bits.res - 1).to_string())
        .replace("{{ACT_BUF_HI}}", &(l.activation_words * 32 - 1).to_string())
        .replace("{{WGT_BUF_HI}}", &(l.weight_words * 32 - 1).to_string())
        .replace("{{RES_BUF_HI}}", &(l.result_words * 32 - 1).to_string())
        .replace("{{ACT_WORDS}}", &l.activation_words.to_string())
        .replace("{{WGT_WORDS}}", &l.weight_words.to_string())
        .replace("{{RES_WORDS_LAST}}", &(l.result_words - 1).to_string())
        .replace("{{CHUNKS_LAST}}", &(l.chunks - 1).to_string())
        .replace("{{WBEATS_LAST}}", &(l.weight_beats - 1).to_string())
        .replace("{{RBLOCKS_LAST}}", &(l.row_blocks - 1).to_string())
        .replace("{{TB}}", &l.token_block.to_string())
        .replace("{{RES_WORDS}}", &l.result_words.to_string())
        .replace(
            "{{TOKEN_WORDS}}",
            &(l.result_words * l.row_blocks).to_string(),
        )
        .replace(
            "{{SHIFT_ACT}}",
            &shift_in("act_buf", "rd_data", l.activation_words),
        )
        .replace(
            "{{SHIFT_WGT}}",
            &shift_in("wgt_buf", "rd_data", l.weight_words),
        )
        .replace(
            "{{SHIFT_RES}}",
            &shift_in("res_buf", "32'd0", l.result_words),
        )
        .replace("{{RES_IN}}", &res_in)
        .replace("{{ARG_DECL}}", &arg_decl)
        .replace("{{ARG_RESET}}", &arg_reset)
        .replace("{{ARG_WRITE}}", &arg_write)
        .replace("{{READ_MUX}}", &read_mux(l, design_id))
        .replace("{{CONTROL}}", &format!("8'h{:02X}", regmap::CONTROL))
        .replace("{{GIE}}", &format!("8'h{:02X}", regmap::GIE))
        .replace("{{IER}}", &format!("8'h{:02X}", regmap::IER))
        .replace("{{ISR}}", &format!("8'h{:02X}", regmap::ISR));
    debug_assert!(!t.contains("{{"), "unfilled template field");
    t
}

const TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the accelerator top (register file, card memory,
// controller) around {{ENGINE}}. Register map: regmap.md. Layout: tern-hdl `top`.
`default_nettype none
module {{TOP}} (
    input  wire        clk,
    input  wire        rst,
    // register bus: rdata valid the clock after reg_read
    input  wire [7:0]  reg_addr,
    input  wire [31:0] reg_wdata,
    input  wire        reg_write,
    input  wire        reg_read,
    output reg  [31:0] reg_rdata,
    // host port of card memory (word address), honoured only while ap_idle
    input  wire [{{AW_HI}}:0] mem_addr,
    input  wire [31:0] mem_wdata,
    input  wire        mem_write,
    input  wire        mem_read,
    output wire [31:0] mem_rdata,
    output wire        irq
);
    // ---- register file ------------------------------------------------------
    reg        busy /*verilator public_flat_rd*/;
    reg        done_flag;
    reg        ready_flag;
    reg        gie;
    reg [1:0]  ier;
    reg [1:0]  isr;
    reg [4:0]  error;
    reg [31:0] cycles;
    reg [31:0] last_cycles;
{{ARG_DECL}}
    wire start_request = reg_write && reg_addr == {{CONTROL}} && reg_wdata[0] && !busy;
    wire misaligned = |{arg_weights[1:0], arg_activations[1:0], arg_results[1:0]};
    // Every region, start and end, must lie in card memory, and the results must not
    // overlap the weights or the activations, nor these each other (64-bit arithmetic:
    // TOKENS times a token's bytes cannot wrap).
    wire [63:0] weights_at = {32'd0, arg_weights};
    wire [63:0] activations_at = {32'd0, arg_activations};
    wire [63:0] results_at = {32'd0, arg_results};
    wire [63:0] weights_end = weights_at + 64'd{{WEIGHT_BYTES}};
    wire [63:0] activations_end = activations_at + {32'd0, arg_tokens} * 64'd{{ACT_TOKEN_BYTES}};
    wire [63:0] results_end = results_at + {32'd0, arg_tokens} * 64'd{{RES_TOKEN_BYTES}};
    wire out_of_range = weights_end > 64'd{{CARD_BYTES}} || activations_end > 64'd{{CARD_BYTES}}
                        || results_end > 64'd{{CARD_BYTES}};
    wire overlap = (results_at < weights_end && weights_at < results_end)
                   || (results_at < activations_end && activations_at < results_end)
                   || (weights_at < activations_end && activations_at < weights_end);
    wire no_tokens = arg_tokens == 32'd0;
    wire [3:0] start_error = {overlap, no_tokens, out_of_range, misaligned};
    wire start = start_request && start_error == 4'd0;
    wire finish;
    wire extra_result;  // the engine sent a result beat the run did not expect
    wire [1:0] raise = (finish || (start_request && start_error != 4'd0)) ? ier : 2'd0;
    wire [1:0] toggle = (reg_write && reg_addr == {{ISR}}) ? reg_wdata[1:0] : 2'd0;
    assign irq = gie && isr != 2'd0;

    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            done_flag <= 1'b0;
            ready_flag <= 1'b0;
            gie <= 1'b0;
            ier <= 2'd0;
            isr <= 2'd0;
            error <= 5'd0;
            cycles <= 32'd0;
            last_cycles <= 32'd0;
{{ARG_RESET}}            reg_rdata <= 32'd0;
        end else begin
            if (reg_read) begin
                case (reg_addr)
{{READ_MUX}}                    default: reg_rdata <= 32'd0;
                endcase
                if (reg_addr == {{CONTROL}}) begin
                    done_flag <= 1'b0;
                    ready_flag <= 1'b0;
                end
            end
            if (reg_write) begin
                case (reg_addr)
                    {{GIE}}: gie <= reg_wdata[0];
                    {{IER}}: ier <= reg_wdata[1:0];
{{ARG_WRITE}}                    default: ;
                endcase
            end
            isr <= (isr ^ toggle) | raise;
            if (start_request) error <= {start_error[3], 1'b0, start_error[2:0]};
            else if (extra_result) error[3] <= 1'b1;
            if (start) begin
                busy <= 1'b1;
                cycles <= 32'd0;
            end else if (busy) begin
                cycles <= cycles + 32'd1;
            end
            if (finish) begin
                busy <= 1'b0;
                last_cycles <= cycles + 32'd1;
            end
            if (finish || (start_request && start_error != 4'd0)) begin
                done_flag <= 1'b1;
                ready_flag <= 1'b1;
            end
        end
    end

    // ---- card memory: one write and one registered read port ------------------
    // public_flat_rw lets the simulated board's DMA reach it, as a shell's DMA would.
    reg [31:0] card_mem [0:{{WORDS_LAST}}] /*verilator public_flat_rw*/;
    reg [31:0] rd_data;
    wire                wr_en;
    wire [{{AW_HI}}:0]  wr_addr;
    wire [31:0]         wr_data;
    wire                rd_en;
    wire [{{AW_HI}}:0]  rd_addr;
    always @(posedge clk) begin
        if (wr_en) card_mem[wr_addr] <= wr_data;
        if (rd_en) rd_data <= card_mem[rd_addr];
    end
    assign mem_rdata = rd_data;

    // ---- feeder: card memory -> activation and weight beats ---------------------
    // Tokens go in blocks of up to {{TB}} (the engine's token block): the block's
    // activation beats (token-major, act_last on the last), then every weight beat once.
    reg        feeding;   // beats left to send in this run
    reg        offer;     // a whole beat is in its buffer and offered to the engine
    reg        phase;     // 0: activations of the block, 1: weights
    reg [31:0] beat;      // chunk (phase 0) or weight beat (phase 1)
    reg [31:0] token;     // first token of the block
    reg [31:0] act_tok;   // token within the block (phase 0)
    reg [{{AW_HI}}:0] act_ptr;
    reg [{{AW_HI}}:0] wgt_ptr;
    reg [{{AW_HI}}:0] issued;   // words of this beat read so far
    reg        captured_last;   // the read issued last clock was the beat's last word
    reg        capture;         // rd_data holds a word of this beat
    /* verilator lint_off UNUSEDSIGNAL */ // beats are padded to whole words
    reg [{{ACT_BUF_HI}}:0] act_buf;
    reg [{{WGT_BUF_HI}}:0] wgt_buf;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [31:0] tokens_left = arg_tokens - token;
    wire [31:0] block_n = tokens_left > 32'd{{TB}} ? 32'd{{TB}} : tokens_left;
    wire act_ready;
    wire wgt_ready;
    wire act_valid = offer && !phase;
    wire act_last = act_tok + 32'd1 == block_n && beat == 32'd{{CHUNKS_LAST}};
    wire wgt_valid = offer && phase;
    wire fire = (act_valid && act_ready) || (wgt_valid && wgt_ready);
    wire [{{AW_HI}}:0] beat_words = phase ? {{AW}}'d{{WGT_WORDS}} : {{AW}}'d{{ACT_WORDS}};
    wire issue = feeding && !offer && !captured_last && issued != beat_words;
    wire [{{AW_HI}}:0] fetch_base = phase ? wgt_ptr : act_ptr;

    always @(posedge clk) begin
        if (rst) begin
            feeding <= 1'b0;
            offer <= 1'b0;
            phase <= 1'b0;
            beat <= 32'd0;
            token <= 32'd0;
            act_tok <= 32'd0;
            act_ptr <= {{AW}}'d0;
            wgt_ptr <= {{AW}}'d0;
            issued <= {{AW}}'d0;
            captured_last <= 1'b0;
            capture <= 1'b0;
        end else if (start) begin
            feeding <= 1'b1;
            offer <= 1'b0;
            phase <= 1'b0;
            beat <= 32'd0;
            token <= 32'd0;
            act_tok <= 32'd0;
            act_ptr <= arg_activations[{{AW_TOP}}:2];
            wgt_ptr <= arg_weights[{{AW_TOP}}:2];
            issued <= {{AW}}'d0;
            captured_last <= 1'b0;
            capture <= 1'b0;
        end else begin
            capture <= issue;
            captured_last <= issue && issued + {{AW}}'d1 == beat_words;
            if (issue) issued <= issued + {{AW}}'d1;
            if (capture) begin
                if (phase) {{SHIFT_WGT}}
                else {{SHIFT_ACT}}
            end
            if (captured_last) begin
                offer <= 1'b1;
                issued <= {{AW}}'d0;
            end
            if (fire) begin
                offer <= 1'b0;
                if (!phase) begin
                    act_ptr <= act_ptr + {{AW}}'d{{ACT_WORDS}};
                    if (beat == 32'd{{CHUNKS_LAST}}) begin
                        beat <= 32'd0;
                        if (act_last) begin
                            act_tok <= 32'd0;
                            phase <= 1'b1;
                            wgt_ptr <= arg_weights[{{AW_TOP}}:2];
                        end else begin
                            act_tok <= act_tok + 32'd1;
                        end
                    end else begin
                        beat <= beat + 32'd1;
                    end
                end else begin
                    wgt_ptr <= wgt_ptr + {{AW}}'d{{WGT_WORDS}};
                    if (beat == 32'd{{WBEATS_LAST}}) begin
                        beat <= 32'd0;
                        phase <= 1'b0;
                        token <= token + block_n;
                        if (token + block_n == arg_tokens) feeding <= 1'b0;
                    end else begin
                        beat <= beat + 32'd1;
                    end
                end
            end
        end
    end

    // ---- result writer: result beats -> card memory ---------------------------
    // A block of n tokens returns its beats in (row block, token) order; each lands at
    // its token's place, so card memory holds the results token after token.
    wire        res_valid;
    wire [{{RES_BITS_HI}}:0] res_data;
    reg  [{{RES_BUF_HI}}:0] res_buf;
    reg         res_busy;
    reg  [31:0] res_word;
    reg  [31:0] res_block;   // row block of the current beat
    reg  [31:0] res_tok;     // token within the block
    reg  [31:0] res_token;   // first token of the block
    reg  [{{AW_HI}}:0] res_row;       // beat (this row block, the block's first token)
    reg  [{{AW_HI}}:0] res_beat_ptr;  // the current beat's first word
    reg  [{{AW_HI}}:0] res_ptr;       // the word being written
    wire [31:0] res_left = arg_tokens - res_token;
    wire [31:0] res_n = res_left > 32'd{{TB}} ? 32'd{{TB}} : res_left;
    // Results are taken only while the run still expects some; any other beat is an
    // engine fault, flagged in ERROR and never written to card memory.
    wire res_expected = busy && res_token != arg_tokens;
    wire res_ready = !res_busy && res_expected;
    assign extra_result = res_valid && !res_busy && !res_expected;

    always @(posedge clk) begin
        if (rst) begin
            res_busy <= 1'b0;
            res_word <= 32'd0;
            res_block <= 32'd0;
            res_tok <= 32'd0;
            res_token <= 32'd0;
            res_row <= {{AW}}'d0;
            res_beat_ptr <= {{AW}}'d0;
            res_ptr <= {{AW}}'d0;
        end else if (start) begin
            res_busy <= 1'b0;
            res_word <= 32'd0;
            res_block <= 32'd0;
            res_tok <= 32'd0;
            res_token <= 32'd0;
            res_row <= arg_results[{{AW_TOP}}:2];
            res_beat_ptr <= arg_results[{{AW_TOP}}:2];
            res_ptr <= arg_results[{{AW_TOP}}:2];
        end else if (res_busy) begin
            {{SHIFT_RES}}
            res_ptr <= res_ptr + {{AW}}'d1;
            if (res_word == 32'd{{RES_WORDS_LAST}}) begin
                res_busy <= 1'b0;
                res_word <= 32'd0;
                if (res_tok + 32'd1 == res_n) begin
                    res_tok <= 32'd0;
                    if (res_block == 32'd{{RBLOCKS_LAST}}) begin
                        // Block done: the next block's first beat follows this
                        // (last) beat of its last token.
                        res_block <= 32'd0;
                        res_token <= res_token + res_n;
                        res_row <= res_beat_ptr + {{AW}}'d{{RES_WORDS}};
                        res_beat_ptr <= res_beat_ptr + {{AW}}'d{{RES_WORDS}};
                        res_ptr <= res_beat_ptr + {{AW}}'d{{RES_WORDS}};
                    end else begin
                        res_block <= res_block + 32'd1;
                        res_row <= res_row + {{AW}}'d{{RES_WORDS}};
                        res_beat_ptr <= res_row + {{AW}}'d{{RES_WORDS}};
                        res_ptr <= res_row + {{AW}}'d{{RES_WORDS}};
                    end
                end else begin
                    // The next token's beat of this row block.
                    res_tok <= res_tok + 32'd1;
                    res_beat_ptr <= res_beat_ptr + {{AW}}'d{{TOKEN_WORDS}};
                    res_ptr <= res_beat_ptr + {{AW}}'d{{TOKEN_WORDS}};
                end
            end else begin
                res_word <= res_word + 32'd1;
            end
        end else if (res_valid && res_expected) begin
            res_buf <= {{RES_IN}};
            res_busy <= 1'b1;
        end
    end
    assign finish = busy && !feeding && !res_busy && res_token == arg_tokens;

    // The memory ports: the controller's while busy, the host's while idle.
    assign wr_en   = busy ? res_busy : mem_write;
    assign wr_addr = busy ? res_ptr : mem_addr;
    assign wr_data = busy ? res_buf[31:0] : mem_wdata;
    assign rd_en   = busy ? issue : mem_read;
    assign rd_addr = busy ? fetch_base + issued : mem_addr;

    {{ENGINE}} engine (
        .clk(clk),
        .rst(rst),
        .act_valid(act_valid),
        .act_ready(act_ready),
        .act_last(act_last),
        .act_data(act_buf[{{ACT_BITS_HI}}:0]),
        .wgt_valid(wgt_valid),
        .wgt_ready(wgt_ready),
        .wgt_data(wgt_buf[{{WGT_BITS_HI}}:0]),
        .res_valid(res_valid),
        .res_ready(res_ready),
        .res_data(res_data)
    );
endmodule
`default_nettype wire
"#;
