//! `tern_top.v`: the Vitis-style kernel around `tern_engine`: an AXI4-Lite register
//! file, one AXI4 master (`m_axi_gmem`) that reads activations and weights in bursts
//! into a read buffer, a gearbox that cuts bus words into engine beats, and a writer
//! that sends result beats back as bursts. Written as a template with the layout's
//! constants filled in; the register decode is generated from [`super::regmap::registers`].

use super::regmap::{self, Kind};
use super::{TopLayout, TOP_MODULE};
use crate::bits::ceil_log2;
use crate::emit::{Design, WRAPPER_MODULE};

fn status_source(name: &str, memory_bytes: u64, design_id: u32) -> String {
    match name {
        "CYCLES" => "last_cycles".into(),
        "HW_ID" => format!("32'h{:08X}", regmap::HW_ID_VALUE),
        "DESIGN_ID" => format!("32'h{design_id:08X}"),
        "MEMORY_MIB" => format!("32'd{}", memory_bytes >> 20),
        "ERROR" => "{24'd0, error}".into(),
        other => panic!("status register {other} has no source in the top template"),
    }
}

/// The argument register a (possibly `_HI`) pointer or scalar entry names, and its bits.
fn argument_bits(r: &regmap::Register) -> (String, &'static str) {
    match r.name.strip_suffix("_HI") {
        Some(base) => (format!("arg_{}", base.to_lowercase()), "[63:32]"),
        None if r.kind == Kind::Pointer => (format!("arg_{}", r.name.to_lowercase()), "[31:0]"),
        None => (format!("arg_{}", r.name.to_lowercase()), ""),
    }
}

fn read_mux(memory_bytes: u64, design_id: u32, attention: bool) -> String {
    let mut s = String::new();
    for r in regmap::registers(attention) {
        let src = match r.kind {
            Kind::Control => {
                "{28'd0, ready_flag, ~(busy | checking), done_flag, busy | checking}".to_string()
            }
            Kind::GlobalInterruptEnable => "{31'd0, gie}".into(),
            Kind::InterruptEnable => "{30'd0, ier}".into(),
            Kind::InterruptStatus => "{30'd0, isr}".into(),
            Kind::Argument | Kind::Pointer => {
                let (reg, bits) = argument_bits(r);
                format!("{reg}{bits}")
            }
            Kind::Status => status_source(r.name, memory_bytes, design_id),
        };
        s.push_str(&format!(
            "                8'h{:02X}: s_axi_control_rdata <= {src}; // {}\n",
            r.offset, r.name
        ));
    }
    s
}

fn argument_regs(attention: bool) -> (String, String, String) {
    let (mut decl, mut reset, mut write) = (String::new(), String::new(), String::new());
    for r in regmap::registers(attention) {
        match r.kind {
            Kind::Argument | Kind::Pointer => {}
            _ => continue,
        }
        let (reg, bits) = argument_bits(r);
        if !r.name.ends_with("_HI") {
            let width = if r.kind == Kind::Pointer { 63 } else { 31 };
            decl.push_str(&format!(
                "    reg [{width}:0] {reg}; // 0x{:02X}\n",
                r.offset
            ));
            reset.push_str(&format!("            {reg} <= {}'d0;\n", width + 1));
        }
        write.push_str(&format!(
            "                    8'h{:02X}: if (!busy && !checking) {reg}{bits} <= ({reg}{bits} & ~wmask) | reg_wdata;\n",
            r.offset
        ));
    }
    (decl, reset, write)
}

/// What the shell needs to know of a layout: the beats of each stream, how runs walk
/// memory, and the engine-specific pieces of the template.
struct Shape {
    bus_bytes: usize,
    burst_beats: usize,
    reads_in_flight: usize,
    memory_bytes: u64,
    /// Words of an `act` beat, beats per token (row), bytes per token (row).
    activation_words: usize,
    chunks: usize,
    activation_stride: usize,
    /// Words of a `wgt` beat.
    weight_words: usize,
    result_words: usize,
    /// Result beats per token (row); bytes per result beat and per token (row).
    row_blocks: usize,
    result_beat_stride: usize,
    result_stride: usize,
    /// Tokens whose results come back as one block (the matmul's `T_b`; attention: 1).
    token_block: usize,
    /// The `wgt` gearbox's region (words) when its beats are cut from bus words.
    weight_gearbox_region: usize,
    fields: Vec<(&'static str, String)>,
}

fn shape(layout: &TopLayout) -> Shape {
    match layout {
        TopLayout::Matmul(l) => Shape {
            bus_bytes: l.bus_bytes,
            burst_beats: l.burst_beats,
            reads_in_flight: l.reads_in_flight,
            memory_bytes: l.memory_bytes,
            activation_words: l.activation_words,
            chunks: l.chunks,
            activation_stride: l.activation_stride(),
            weight_words: l.weight_words,
            result_words: l.result_words,
            row_blocks: l.row_blocks,
            result_beat_stride: l.result_beat_stride(),
            result_stride: l.result_stride(),
            token_block: l.token_block,
            weight_gearbox_region: l.weight_beats * l.weight_words,
            fields: vec![
                ("WGT_READER", MATMUL_WGT_READER.into()),
                ("FEED", MATMUL_FEED.into()),
                ("EXTRA_MODULES", String::new()),
                ("LENGTH_DECL", String::new()),
                ("WEIGHTS_BYTES", format!("66'd{}", l.weight_region_bytes())),
                ("BAD_LENGTH", "1'b0".into()),
                ("ACT_POP", "act_ready && act_feeding".into()),
                // The whole weight region once per block of tokens.
                ("WGT_LOAD", "start".into()),
                ("WGT_BASE", "arg_weights".into()),
                ("WGT_REGION", "32'd{{WGT_REGION_BEATS}}".into()),
                ("WGT_UNITS", "arg_tokens".into()),
                ("WGT_STEP", "32'd{{TB}}".into()),
                (
                    "WGT_REGION_BEATS",
                    (l.weight_region_bytes() / l.bus_bytes).to_string(),
                ),
                ("WBEATS_LAST", (l.weight_beats - 1).to_string()),
            ],
        },
        TopLayout::Attention(l) => {
            let log_tile = ceil_log2(l.tile);
            Shape {
                bus_bytes: l.bus_bytes,
                burst_beats: l.burst_beats,
                reads_in_flight: l.reads_in_flight,
                memory_bytes: l.memory_bytes,
                activation_words: l.beat_words,
                chunks: l.chunks,
                activation_stride: l.query_stride(),
                weight_words: l.beat_words,
                result_words: l.result_words,
                row_blocks: l.chunks,
                result_beat_stride: l.result_beat_stride(),
                result_stride: l.result_stride(),
                token_block: 1,
                // Keys and values are whole bus words: nothing to drop.
                weight_gearbox_region: l.bus_bytes / 4,
                fields: vec![
                    ("WGT_READER", ATTENTION_WGT_READER.into()),
                    ("FEED", ATTENTION_FEED.into()),
                    ("EXTRA_MODULES", ROW_SCHEDULE_MODULE.into()),
                    (
                        "LENGTH_DECL",
                        format!(
                            "    // Tiles of the KV cache: SEQ_LEN keys, whole tiles of {} keys.\n    \
                             wire [32:0] kv_tiles = ({{1'b0, arg_seq_len}} + 33'd{}) >> {log_tile};\n    \
                             wire [65:0] kv_tiles_66 = {{33'd0, kv_tiles}};\n",
                            l.tile,
                            l.tile - 1
                        ),
                    ),
                    (
                        "WEIGHTS_BYTES",
                        const_mul("kv_tiles_66", 66, l.tile_bytes() as u64),
                    ),
                    (
                        "BAD_LENGTH",
                        format!(
                            "arg_seq_len == 32'd0 || arg_seq_len > 32'd{}\n        \
                             || (arg_causal[0] && {{1'b0, arg_first_position}} + {{1'b0, arg_tokens}} > {{1'b0, arg_seq_len}})",
                            l.max_seq_len
                        ),
                    ),
                    ("ACT_POP", "act_ready && act_feeding && !act_header".into()),
                    // The regions the KV-cache walk hands over, each once.
                    (
                        "WGT_LOAD",
                        "kv_next && kv_region_beats != 32'd0".into(),
                    ),
                    ("WGT_BASE", "kv_region_at".into()),
                    ("WGT_REGION", "kv_region_beats".into()),
                    ("WGT_UNITS", "32'd1".into()),
                    ("WGT_STEP", "32'd1".into()),
                    ("TILE_LAST", (l.tile - 1).to_string()),
                    ("LOG_TILE", log_tile.to_string()),
                    (
                        "TILE_BYTES_TIMES_FULL",
                        const_mul("kv_full_64", 64, l.tile_bytes() as u64),
                    ),
                    (
                        "TILE_BEATS_TIMES_FULL",
                        const_mul("kv_full", 32, (l.tile_bytes() / l.bus_bytes) as u64),
                    ),
                    (
                        "KEY_BEATS_TIMES_PART",
                        const_mul("kv_part", 32, (l.head_dim / l.bus_bytes) as u64),
                    ),
                    ("HALF_TILE_BYTES", (l.tile * l.head_dim).to_string()),
                    // Zero bits above the 32-bit header; none when a beat is one word.
                    (
                        "HEADER_PAD",
                        match 32 * l.beat_words - 32 {
                            0 => String::new(),
                            pad => format!("{pad}'d0, "),
                        },
                    ),
                    ("QUERY_BLOCK", l.query_block.to_string()),
                    ("QUERY_BLOCK_LAST", (l.query_block - 1).to_string()),
                ],
            }
        }
    }
}

pub(super) fn top(layout: &TopLayout, engine: &Design, design_id: u32) -> String {
    let l = shape(layout);
    let bits = engine.stream_bits();
    let attention = layout.attention().is_some();
    let (arg_decl, arg_reset, arg_write) = argument_regs(attention);
    let bus_words = l.bus_bytes / 4;
    // A gearbox holds a beat and a bus word; its counter also holds their sum.
    let gearbox = |beat: usize| (beat + bus_words, ceil_log2(beat + 2 * bus_words + 1));
    let (act_cap, act_cw) = gearbox(l.activation_words);
    // Weight beats of whole bus words are collected, not cut (see
    // `MemoryLayout::weights_aligned`).
    let wgt_gearbox = if l.weight_words.is_multiple_of(bus_words) {
        format!(
            "{TOP_MODULE}_collector #(.DWW({bus_words}), .BEAT({}), .WORDS({})) wgt_gearbox",
            l.weight_words,
            l.weight_words / bus_words
        )
    } else {
        let (cap, cw) = gearbox(l.weight_words);
        format!(
            "{TOP_MODULE}_gearbox #(.DWW({bus_words}), .BEAT({}), .REGION({}), .CAP({cap}), .CW({cw})) wgt_gearbox",
            l.weight_words, l.weight_gearbox_region
        )
    };
    let read_depth_bits = ceil_log2(l.reads_in_flight * l.burst_beats);
    let res_bits = l.result_words * 32;
    let res_pad = res_bits - bits.res;
    let res_in = if res_pad == 0 {
        "res_data".to_string()
    } else {
        format!("{{{res_pad}'d0, res_data}}")
    };
    let result_bus_beats = l.result_beat_stride / l.bus_bytes;
    let w_pad = result_bus_beats * l.bus_bytes * 8 - res_bits;
    let w_padded = if w_pad == 0 {
        "wq_head".to_string()
    } else {
        format!("{{{w_pad}'d0, wq_head}}")
    };
    let n = |v: usize| v.to_string();
    let mut fields: Vec<(&str, String)> = vec![
        ("TOP", TOP_MODULE.into()),
        ("ENGINE", WRAPPER_MODULE.into()),
        ("VERSION", env!("CARGO_PKG_VERSION").into()),
        ("DW_HI", n(l.bus_bytes * 8 - 1)),
        ("STRB_HI", n(l.bus_bytes - 1)),
        ("STRB_BITS", n(l.bus_bytes)),
        ("BA_HI", n(ceil_log2(l.bus_bytes) - 1)),
        ("BA", n(ceil_log2(l.bus_bytes))),
        ("BUS_BYTES", n(l.bus_bytes)),
        ("MEMORY_BYTES", l.memory_bytes.to_string()),
        (
            "ACT_STRIDE_TIMES_TOKENS",
            const_mul("tokens_66", 66, l.activation_stride as u64),
        ),
        (
            "RES_STRIDE_TIMES_TOKENS",
            const_mul("tokens_66", 66, l.result_stride as u64),
        ),
        (
            "ACT_BEATS_TIMES_TOKENS",
            const_mul("arg_tokens", 32, (l.activation_stride / l.bus_bytes) as u64),
        ),
        (
            "RBLOCKS_TIMES_TOKENS",
            const_mul("arg_tokens", 32, l.row_blocks as u64),
        ),
        (
            "RES_STRIDE_TIMES_N",
            const_mul("{32'd0, aw_n}", 64, l.result_stride as u64),
        ),
        ("DWW", n(bus_words)),
        ("ACT_CAP", n(act_cap)),
        ("ACT_CW", n(act_cw)),
        ("WGT_GEARBOX", wgt_gearbox),
        ("AW_BITS_HI", n(l.activation_words * 32 - 1)),
        ("WW_BITS_HI", n(l.weight_words * 32 - 1)),
        ("AW_WORDS", n(l.activation_words)),
        ("ACT_BITS_HI", n(bits.act - 1)),
        ("WGT_BITS_HI", n(bits.wgt - 1)),
        ("RES_BITS_HI", n(bits.res - 1)),
        ("ACT_REGION_WORDS", n(l.chunks * l.activation_words)),
        ("ACT_STRIDE", n(l.activation_stride)),
        ("RES_BEAT_STRIDE", n(l.result_beat_stride)),
        ("RES_STRIDE", n(l.result_stride)),
        ("CHUNKS_LAST", n(l.chunks - 1)),
        ("RBLOCKS_LAST", n(l.row_blocks - 1)),
        ("TB", n(l.token_block)),
        ("BURST", n(l.burst_beats)),
        ("RD_AW", n(read_depth_bits)),
        ("RD_DEPTH", n(1 << read_depth_bits)),
        ("RQ_HI", n(res_bits - 1)),
        ("RBEATS_LAST", n(result_bus_beats - 1)),
        ("WPAD_HI", n(result_bus_beats * l.bus_bytes * 8 - 1)),
        ("RES_IN", res_in),
        ("W_PADDED", w_padded),
        ("ARG_DECL", arg_decl),
        ("ARG_RESET", arg_reset),
        ("ARG_WRITE", arg_write),
        ("READ_MUX", read_mux(l.memory_bytes, design_id, attention)),
        ("CONTROL", format!("8'h{:02X}", regmap::CONTROL)),
        ("GIE", format!("8'h{:02X}", regmap::GIE)),
        ("IER", format!("8'h{:02X}", regmap::IER)),
        ("ISR", format!("8'h{:02X}", regmap::ISR)),
    ];
    // The engine's pieces first: they contain fields of their own.
    let engine_fields = l.fields;
    let mut t = TEMPLATE.to_string();
    for (key, value) in engine_fields.iter().filter(|(_, v)| v.contains("{{")) {
        t = t.replace(&format!("{{{{{key}}}}}"), value);
    }
    fields.extend(engine_fields.into_iter().filter(|(_, v)| !v.contains("{{")));
    for (key, value) in fields {
        t = t.replace(&format!("{{{{{key}}}}}"), &value);
    }
    debug_assert!(unfilled(&t).is_none(), "unfilled field {:?}", unfilled(&t));
    t
}

/// `x · k` for a constant `k` as a sum of shifted copies of `x` (a `width`-bit
/// expression): adders on the carry chain instead of a multiplier.
fn const_mul(x: &str, width: usize, k: u64) -> String {
    let terms: Vec<String> = (0..64)
        .filter(|bit| k >> bit & 1 == 1)
        .map(|bit| {
            if bit == 0 {
                x.to_string()
            } else {
                format!("({x} << {bit})")
            }
        })
        .collect();
    if terms.is_empty() {
        format!("{width}'d0")
    } else {
        format!("({})", terms.join(" + "))
    }
}

/// A `{{NAME}}` left in the text (Verilog's own `{{` replications are lower case or
/// digits inside).
fn unfilled(t: &str) -> Option<&str> {
    t.match_indices("{{").find_map(|(i, _)| {
        let rest = &t[i + 2..];
        let end = rest.find("}}")?;
        let name = &rest[..end];
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .then_some(name)
    })
}

const MATMUL_WGT_READER: &str = r#"    /* verilator lint_off UNUSEDSIGNAL */ // the weights are one region
    wire        wgt_walking;
    /* verilator lint_on UNUSEDSIGNAL */
"#;

const MATMUL_FEED: &str = r#"    // ---- the engine's two input streams -------------------------------------------
    // Activations: token after token, `act_last` on the last chunk of each block's last
    // token. Weights: every weight beat once per block.
    reg        act_feeding;
    reg [31:0] act_chunk;
    reg [31:0] act_tok;     // token within the block
    reg [31:0] act_token;   // first token of the block
    reg        wgt_feeding;
    reg [31:0] wgt_beat_no;
    reg [31:0] wgt_token;   // first token of the block
    wire [31:0] act_tokens_left = arg_tokens - act_token;
    wire [31:0] act_block_n = act_tokens_left > 32'd{{TB}} ? 32'd{{TB}} : act_tokens_left;
    wire act_valid = act_feeding && act_beat_valid;
    wire wgt_valid = wgt_feeding && wgt_beat_valid;
    wire act_last = act_tok + 32'd1 == act_block_n && act_chunk == 32'd{{CHUNKS_LAST}};
    wire act_fire = act_valid && act_ready;
    wire wgt_fire = wgt_valid && wgt_ready;
    wire feeding = act_feeding || wgt_feeding;
    wire [{{ACT_BITS_HI}}:0] act_data = act_beat[{{ACT_BITS_HI}}:0];

    always @(posedge ap_clk) begin
        if (rst || aborting) begin
            act_feeding <= 1'b0;
            wgt_feeding <= 1'b0;
        end else if (start) begin
            act_feeding <= 1'b1;
            act_chunk <= 32'd0;
            act_tok <= 32'd0;
            act_token <= 32'd0;
            wgt_feeding <= 1'b1;
            wgt_beat_no <= 32'd0;
            wgt_token <= 32'd0;
        end else begin
            if (act_fire) begin
                if (act_chunk == 32'd{{CHUNKS_LAST}}) begin
                    act_chunk <= 32'd0;
                    if (act_last) begin
                        act_tok <= 32'd0;
                        act_token <= act_token + act_block_n;
                        if (act_token + act_block_n == arg_tokens) act_feeding <= 1'b0;
                    end else begin
                        act_tok <= act_tok + 32'd1;
                    end
                end else begin
                    act_chunk <= act_chunk + 32'd1;
                end
            end
            if (wgt_fire) begin
                if (wgt_beat_no == 32'd{{WBEATS_LAST}}) begin
                    wgt_beat_no <= 32'd0;
                    wgt_token <= wgt_token + 32'd{{TB}};
                    if (arg_tokens - wgt_token <= 32'd{{TB}}) wgt_feeding <= 1'b0;
                end else begin
                    wgt_beat_no <= wgt_beat_no + 32'd1;
                end
            end
        end
    end

"#;

const ATTENTION_WGT_READER: &str = r#"    // The KV cache walk: block after block of up to {{QUERY_BLOCK}} rows, the keys of the
    // block's last (longest) row: its whole tiles as one region, then (if its last tile
    // is partial) that tile's keys and its values as two more. A region is loaded when
    // the reader has issued the last one's bursts; empty ones are skipped.
    reg        kv_walking;
    reg [31:0] kv_row;      // the block's last row
    wire [31:0] kv_block_next = kv_row + 32'd{{QUERY_BLOCK}};
    reg [1:0]  kv_region;
    wire [15:0] kv_len;
    /* verilator lint_off UNUSEDSIGNAL */ // the walk needs only the streamed length
    wire [15:0] kv_visible;
    /* verilator lint_on UNUSEDSIGNAL */
    {{TOP}}_row_schedule #(.TILE_LAST({{TILE_LAST}})) kv_schedule (
        .row(kv_row), .first(arg_first_position), .seq_len(arg_seq_len[15:0]),
        .causal(arg_causal[0]), .visible(kv_visible), .kv_len(kv_len)
    );
    wire [31:0] kv_full = {16'd0, kv_len} >> {{LOG_TILE}};      // whole tiles
    wire [31:0] kv_part = {16'd0, kv_len & 16'd{{TILE_LAST}}};  // keys of the partial tile
    wire [63:0] kv_full_64 = {32'd0, kv_full};
    wire [63:0] kv_part_at = arg_weights + {{TILE_BYTES_TIMES_FULL}};
    wire [31:0] kv_region_beats = kv_region == 2'd0 ? {{TILE_BEATS_TIMES_FULL}} : {{KEY_BEATS_TIMES_PART}};
    wire [63:0] kv_region_at = kv_region == 2'd0 ? arg_weights
                             : kv_region == 2'd1 ? kv_part_at : kv_part_at + 64'd{{HALF_TILE_BYTES}};
    wire        wgt_walking;
    wire kv_next = kv_walking && !aborting && !wgt_walking && !start;
    always @(posedge ap_clk) begin
        if (rst || aborting) begin
            kv_walking <= 1'b0;
        end else if (start) begin
            kv_walking <= 1'b1;
            kv_row <= arg_tokens > 32'd{{QUERY_BLOCK}} ? 32'd{{QUERY_BLOCK_LAST}} : arg_tokens - 32'd1;
            kv_region <= 2'd0;
        end else if (kv_next) begin
            if (kv_region == 2'd2) begin
                kv_region <= 2'd0;
                kv_row <= kv_block_next < arg_tokens ? kv_block_next : arg_tokens - 32'd1;
                if (kv_row + 32'd1 == arg_tokens) kv_walking <= 1'b0;
            end else begin
                kv_region <= kv_region + 2'd1;
            end
        end
    end
"#;

const ATTENTION_FEED: &str = r#"    // ---- the engine's two input streams -------------------------------------------
    // Per query row: a header beat made here (bits 0..16 the keys the row sees, 16..31
    // the keys streamed for it, bit 31 on a block's last row), then the query's beats;
    // the key and value beats follow in the order the walk reads them (the engine frames
    // them by the headers).
    reg        act_feeding;
    reg        act_header;  // the row's header beat is next
    reg [31:0] act_row;
    reg [31:0] act_in_block;  // row within its block of {{QUERY_BLOCK}}
    reg [31:0] act_chunk;
    wire act_block_last = act_in_block == 32'd{{QUERY_BLOCK_LAST}} || act_row + 32'd1 == arg_tokens;
    wire [15:0] act_visible;
    /* verilator lint_off UNUSEDSIGNAL */ // kv_len < 2^15: its top bit is the block flag's
    wire [15:0] act_kv_len;
    /* verilator lint_on UNUSEDSIGNAL */
    {{TOP}}_row_schedule #(.TILE_LAST({{TILE_LAST}})) act_schedule (
        .row(act_row), .first(arg_first_position), .seq_len(arg_seq_len[15:0]),
        .causal(arg_causal[0]), .visible(act_visible), .kv_len(act_kv_len)
    );
    wire act_valid = act_feeding && (act_header || act_beat_valid);
    wire act_last = 1'b0;
    wire [{{ACT_BITS_HI}}:0] act_data = act_header
        ? {{{HEADER_PAD}}act_block_last, act_kv_len[14:0], act_visible} : act_beat[{{ACT_BITS_HI}}:0];
    wire act_fire = act_valid && act_ready;
    wire wgt_feeding = busy && !aborting;
    wire wgt_valid = wgt_feeding && wgt_beat_valid;
    // Every key and value read belongs to a row, so the run ends with its last result.
    wire feeding = act_feeding;

    always @(posedge ap_clk) begin
        if (rst || aborting) begin
            act_feeding <= 1'b0;
        end else if (start) begin
            act_feeding <= 1'b1;
            act_header <= 1'b1;
            act_row <= 32'd0;
            act_in_block <= 32'd0;
            act_chunk <= 32'd0;
        end else if (act_fire) begin
            if (act_header) begin
                act_header <= 1'b0;
            end else if (act_chunk == 32'd{{CHUNKS_LAST}}) begin
                act_chunk <= 32'd0;
                act_header <= 1'b1;
                act_row <= act_row + 32'd1;
                act_in_block <= act_block_last ? 32'd0 : act_in_block + 32'd1;
                if (act_row + 32'd1 == arg_tokens) act_feeding <= 1'b0;
            end else begin
                act_chunk <= act_chunk + 32'd1;
            end
        end
    end
"#;

const ROW_SCHEDULE_MODULE: &str = r#"
// What query row `row` sees (keys 0..visible) and streams (keys 0..kv_len): every key,
// or (causal) the keys up to its position, rounded up to whole tiles of TILE_LAST + 1
// keys within the sequence. The start checks keep positions below SEQ_LEN ≤ 2^15.
module {{TOP}}_row_schedule #(
    parameter TILE_LAST = 31
) (
    input  wire [31:0] row,
    input  wire [31:0] first,
    input  wire [15:0] seq_len,
    input  wire        causal,
    output wire [15:0] visible,
    output wire [15:0] kv_len
);
    /* verilator lint_off UNUSEDSIGNAL */ // positions fit 16 bits once checked
    wire [32:0] seen = {1'b0, first} + {1'b0, row} + 33'd1;
    wire [32:0] rounded = (seen + TILE_LAST) & ~(33'd0 + TILE_LAST);
    /* verilator lint_on UNUSEDSIGNAL */
    assign visible = causal ? seen[15:0] : seq_len;
    assign kv_len = !causal ? seq_len : rounded < {17'd0, seq_len} ? rounded[15:0] : seq_len;
endmodule
"#;

const TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the accelerator top, a Vitis-style RTL kernel around
// {{ENGINE}}: AXI4-Lite control (s_axi_control, register map in regmap.md), one AXI4
// master (m_axi_gmem, {{BUS_BYTES}}-byte data) and an interrupt. Memory layout: docs/top.md.
`default_nettype none
module {{TOP}} (
    input  wire        ap_clk,
    input  wire        ap_rst_n,
    // ---- AXI4-Lite slave: the register file ----
    input  wire [7:0]  s_axi_control_awaddr,
    input  wire        s_axi_control_awvalid,
    output wire        s_axi_control_awready,
    input  wire [31:0] s_axi_control_wdata,
    input  wire [3:0]  s_axi_control_wstrb,
    input  wire        s_axi_control_wvalid,
    output wire        s_axi_control_wready,
    output wire [1:0]  s_axi_control_bresp,
    output reg         s_axi_control_bvalid,
    input  wire        s_axi_control_bready,
    input  wire [7:0]  s_axi_control_araddr,
    input  wire        s_axi_control_arvalid,
    output wire        s_axi_control_arready,
    output reg  [31:0] s_axi_control_rdata,
    output wire [1:0]  s_axi_control_rresp,
    output reg         s_axi_control_rvalid,
    input  wire        s_axi_control_rready,
    // ---- AXI4 master: weights, activations and results in memory ----
    output wire [0:0]  m_axi_gmem_awid,
    output reg  [63:0] m_axi_gmem_awaddr,
    output reg  [7:0]  m_axi_gmem_awlen,
    output wire [2:0]  m_axi_gmem_awsize,
    output wire [1:0]  m_axi_gmem_awburst,
    output reg         m_axi_gmem_awvalid,
    input  wire        m_axi_gmem_awready,
    output wire [{{DW_HI}}:0] m_axi_gmem_wdata,
    output wire [{{STRB_HI}}:0] m_axi_gmem_wstrb,
    output wire        m_axi_gmem_wlast,
    output wire        m_axi_gmem_wvalid,
    input  wire        m_axi_gmem_wready,
    /* verilator lint_off UNUSEDSIGNAL */ // one write ID
    input  wire [0:0]  m_axi_gmem_bid,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [1:0]  m_axi_gmem_bresp,
    input  wire        m_axi_gmem_bvalid,
    output wire        m_axi_gmem_bready,
    output reg  [0:0]  m_axi_gmem_arid,
    output reg  [63:0] m_axi_gmem_araddr,
    output reg  [7:0]  m_axi_gmem_arlen,
    output wire [2:0]  m_axi_gmem_arsize,
    output wire [1:0]  m_axi_gmem_arburst,
    output reg         m_axi_gmem_arvalid,
    input  wire        m_axi_gmem_arready,
    input  wire [0:0]  m_axi_gmem_rid,
    input  wire [{{DW_HI}}:0] m_axi_gmem_rdata,
    input  wire [1:0]  m_axi_gmem_rresp,
    /* verilator lint_off UNUSEDSIGNAL */ // bursts are counted, not delimited by rlast
    input  wire        m_axi_gmem_rlast,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire        m_axi_gmem_rvalid,
    output wire        m_axi_gmem_rready,
    /* verilator lint_off SYMRSVDWORD */ // the Vitis name; Verilator's C++ renames it
    output wire        interrupt
    /* verilator lint_on SYMRSVDWORD */
);
    wire rst = !ap_rst_n;

    // ---- AXI4-Lite: one write and one read at a time ----------------------------
    // Address and data of a write may arrive in either order; the register is written
    // the clock both are held, and the response follows.
    reg  [7:0]  wr_addr;
    reg         wr_addr_held;
    reg  [31:0] wr_data;
    reg  [3:0]  wr_strb;
    reg         wr_data_held;
    assign s_axi_control_awready = !wr_addr_held && !s_axi_control_bvalid;
    assign s_axi_control_wready = !wr_data_held && !s_axi_control_bvalid;
    assign s_axi_control_bresp = 2'b00;
    assign s_axi_control_rresp = 2'b00;
    assign s_axi_control_arready = !s_axi_control_rvalid;
    wire        reg_write = wr_addr_held && wr_data_held;
    wire [31:0] wmask = {{8{wr_strb[3]}}, {8{wr_strb[2]}}, {8{wr_strb[1]}}, {8{wr_strb[0]}}};
    wire [31:0] reg_wdata = wr_data & wmask;
    wire        reg_read = s_axi_control_arvalid && !s_axi_control_rvalid;

    always @(posedge ap_clk) begin
        if (rst) begin
            wr_addr_held <= 1'b0;
            wr_data_held <= 1'b0;
            s_axi_control_bvalid <= 1'b0;
        end else begin
            if (s_axi_control_awvalid && s_axi_control_awready) begin
                wr_addr <= s_axi_control_awaddr;
                wr_addr_held <= 1'b1;
            end
            if (s_axi_control_wvalid && s_axi_control_wready) begin
                wr_data <= s_axi_control_wdata;
                wr_strb <= s_axi_control_wstrb;
                wr_data_held <= 1'b1;
            end
            if (reg_write) begin
                wr_addr_held <= 1'b0;
                wr_data_held <= 1'b0;
                s_axi_control_bvalid <= 1'b1;
            end else if (s_axi_control_bready) begin
                s_axi_control_bvalid <= 1'b0;
            end
        end
    end

    // ---- register file ------------------------------------------------------
    reg        busy /*verilator public_flat_rd*/;
    reg        done_flag;
    reg        ready_flag;
    reg        gie;
    reg [1:0]  ier;
    reg [1:0]  isr;
    reg [7:0]  error;
    reg [31:0] cycles;
    reg [31:0] last_cycles;
{{ARG_DECL}}
    // A start request is checked the clock after it (`checking`), from registered region
    // ends: the products of TOKENS and the strides are shift-and-add chains (constants),
    // kept off the path into `busy` and out of DSP blocks.
    reg        checking;
    reg [65:0] weights_end;
    reg [65:0] activations_end;
    reg [65:0] results_end;
    wire start_request = reg_write && wr_addr == {{CONTROL}} && reg_wdata[0] && !busy && !checking;
    wire misaligned = |{arg_weights[{{BA_HI}}:0], arg_activations[{{BA_HI}}:0], arg_results[{{BA_HI}}:0]};
    // Every region must end inside the memory the kernel was built for (MEMORY_MIB), and
    // the results must not overlap the weights or the activations, nor these each other
    // (66-bit arithmetic: no region can wrap). Regions are read and written in whole bus
    // words. A hole in the memory is the memory's to report (an error response).
    wire [65:0] weights_at = {2'd0, arg_weights};
    wire [65:0] activations_at = {2'd0, arg_activations};
    wire [65:0] results_at = {2'd0, arg_results};
    wire [65:0] tokens_66 = {34'd0, arg_tokens};
{{LENGTH_DECL}}    always @(posedge ap_clk) begin
        if (rst) checking <= 1'b0;
        else checking <= start_request;
        if (start_request) begin
            weights_end <= weights_at + {{WEIGHTS_BYTES}};
            activations_end <= activations_at + {{ACT_STRIDE_TIMES_TOKENS}};
            results_end <= results_at + {{RES_STRIDE_TIMES_TOKENS}};
        end
    end
    wire overlap = (results_at < weights_end && weights_at < results_end)
                   || (results_at < activations_end && activations_at < results_end)
                   || (weights_at < activations_end && activations_at < weights_end);
    wire out_of_range = weights_end > 66'd{{MEMORY_BYTES}} || activations_end > 66'd{{MEMORY_BYTES}}
                        || results_end > 66'd{{MEMORY_BYTES}};
    wire no_tokens = arg_tokens == 32'd0;
    wire bad_length = {{BAD_LENGTH}};
    wire [7:0] start_error = {bad_length, out_of_range, 1'b0, overlap, 1'b0, no_tokens, 1'b0, misaligned};
    wire start = checking && start_error == 8'd0;
    wire refused = checking && start_error != 8'd0;
    wire finish;
    wire extra_result;   // the engine sent a result beat the run did not expect
    wire read_fault;     // a read burst was answered with SLVERR or DECERR
    wire write_fault;    // a write burst was answered with SLVERR or DECERR
    wire [1:0] raise = (finish || refused) ? ier : 2'd0;
    wire [1:0] toggle = (reg_write && wr_addr == {{ISR}}) ? reg_wdata[1:0] : 2'd0;
    assign interrupt = gie && isr != 2'd0;

    always @(posedge ap_clk) begin
        if (rst) begin
            busy <= 1'b0;
            done_flag <= 1'b0;
            ready_flag <= 1'b0;
            gie <= 1'b0;
            ier <= 2'd0;
            isr <= 2'd0;
            error <= 8'd0;
            cycles <= 32'd0;
            last_cycles <= 32'd0;
            s_axi_control_rvalid <= 1'b0;
            s_axi_control_rdata <= 32'd0;
{{ARG_RESET}}        end else begin
            if (reg_read) begin
                s_axi_control_rvalid <= 1'b1;
                case (s_axi_control_araddr)
{{READ_MUX}}                    default: s_axi_control_rdata <= 32'd0;
                endcase
                if (s_axi_control_araddr == {{CONTROL}}) begin
                    done_flag <= 1'b0;
                    ready_flag <= 1'b0;
                end
            end else if (s_axi_control_rready) begin
                s_axi_control_rvalid <= 1'b0;
            end
            if (reg_write) begin
                case (wr_addr)
                    {{GIE}}: gie <= reg_wdata[0];
                    {{IER}}: ier <= reg_wdata[1:0];
{{ARG_WRITE}}                    default: ;
                endcase
            end
            isr <= (isr ^ toggle) | raise;
            if (checking) error <= start_error;
            else begin
                if (extra_result) error[3] <= 1'b1;
                if (read_fault) error[1] <= 1'b1;
                if (write_fault) error[5] <= 1'b1;
            end
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
            if (finish || refused) begin
                done_flag <= 1'b1;
                ready_flag <= 1'b1;
            end
        end
    end

    // An error response abandons the run: no new bursts, outstanding ones are drained,
    // the engine is held in reset, and the run finishes with ERROR set.
    reg aborting;
    always @(posedge ap_clk) begin
        if (rst || start) aborting <= 1'b0;
        else if (busy && (read_fault || write_fault)) aborting <= 1'b1;
        else if (finish) aborting <= 1'b0;
    end

    // ---- reads: two streams on one AXI4 master, told apart by ARID ----------------
    // ID 1 reads the activations (all tokens, one token every {{ACT_STRIDE}} bytes),
    // ID 0 the weights (the whole region once per block of up to {{TB}} tokens). Each
    // stream has its own read buffer and issues a burst only when its buffer has room
    // for all of it, so read data is never refused and neither stream waits behind the
    // other: the next block's activations arrive while this block's weights stream.
    assign m_axi_gmem_arsize = 3'd{{BA}};
    assign m_axi_gmem_arburst = 2'b01;
    wire        act_req;
    wire [63:0] act_req_addr;
    wire [7:0]  act_req_len;
    wire        act_req_idle;
    /* verilator lint_off UNUSEDSIGNAL */ // the activations are one region
    wire        act_walking;
    /* verilator lint_on UNUSEDSIGNAL */
    wire        wgt_req;
    wire [63:0] wgt_req_addr;
    wire [7:0]  wgt_req_len;
    wire        wgt_req_idle;
    wire ar_free = !m_axi_gmem_arvalid || m_axi_gmem_arready;
    wire act_take = ar_free && act_req;
    wire wgt_take = ar_free && !act_req && wgt_req;
    wire r_fire = m_axi_gmem_rvalid && m_axi_gmem_rready;
    wire r_act = r_fire && m_axi_gmem_rid == 1'b1;
    wire r_wgt = r_fire && m_axi_gmem_rid == 1'b0;
    wire r_ok = m_axi_gmem_rresp == 2'b00 && !aborting;
    assign m_axi_gmem_rready = 1'b1;
    assign read_fault = r_fire && m_axi_gmem_rresp != 2'b00;
    wire [{{RD_AW}}+1:0] act_buffered;
    wire [{{RD_AW}}+1:0] wgt_buffered;

    always @(posedge ap_clk) begin
        if (rst) begin
            m_axi_gmem_arvalid <= 1'b0;
        end else if (ar_free) begin
            m_axi_gmem_arvalid <= act_take || wgt_take;
            m_axi_gmem_arid <= act_take;
            m_axi_gmem_araddr <= act_take ? act_req_addr : wgt_req_addr;
            m_axi_gmem_arlen <= act_take ? act_req_len : wgt_req_len;
        end
    end

    {{TOP}}_reader #(.BA({{BA}}), .BURST({{BURST}}), .DEPTH({{RD_DEPTH}}), .CW({{RD_AW}} + 2)) act_reader (
        .clk(ap_clk),
        .rst(rst),
        .start(start),
        .stop(aborting),
        .load(start),
        .base(arg_activations),
        .region_beats({{ACT_BEATS_TIMES_TOKENS}}),
        .units(32'd1),
        .step(32'd1),
        .buffered(act_buffered),
        .returned(r_act),
        .req(act_req),
        .req_addr(act_req_addr),
        .req_len(act_req_len),
        .take(act_take),
        .idle(act_req_idle),
        .walking(act_walking)
    );
{{WGT_READER}}    {{TOP}}_reader #(.BA({{BA}}), .BURST({{BURST}}), .DEPTH({{RD_DEPTH}}), .CW({{RD_AW}} + 2)) wgt_reader (
        .clk(ap_clk),
        .rst(rst),
        .start(start),
        .stop(aborting),
        .load({{WGT_LOAD}}),
        .base({{WGT_BASE}}),
        .region_beats({{WGT_REGION}}),
        .units({{WGT_UNITS}}),
        .step({{WGT_STEP}}),
        .buffered(wgt_buffered),
        .returned(r_wgt),
        .req(wgt_req),
        .req_addr(wgt_req_addr),
        .req_len(wgt_req_len),
        .take(wgt_take),
        .idle(wgt_req_idle),
        .walking(wgt_walking)
    );

    // ---- read buffers and gearboxes: bus words -> engine beats -------------------
    wire              act_word_valid;
    wire [{{DW_HI}}:0] act_word;
    wire              act_word_pop;
    wire              wgt_word_valid;
    wire [{{DW_HI}}:0] wgt_word;
    wire              wgt_word_pop;
    wire clear = rst || start || aborting;
    {{TOP}}_fifo #(.W({{DW_HI}} + 1), .AW({{RD_AW}})) act_buffer (
        .clk(ap_clk), .clear(clear), .push(r_act && r_ok), .din(m_axi_gmem_rdata),
        .pop(act_word_pop), .dout(act_word), .dvalid(act_word_valid), .count(act_buffered)
    );
    {{TOP}}_fifo #(.W({{DW_HI}} + 1), .AW({{RD_AW}})) wgt_buffer (
        .clk(ap_clk), .clear(clear), .push(r_wgt && r_ok), .din(m_axi_gmem_rdata),
        .pop(wgt_word_pop), .dout(wgt_word), .dvalid(wgt_word_valid), .count(wgt_buffered)
    );
    wire act_ready;
    wire wgt_ready;
    wire act_beat_valid;
    wire wgt_beat_valid;
    /* verilator lint_off UNUSEDSIGNAL */ // beats are padded to whole words
    wire [{{AW_BITS_HI}}:0] act_beat;
    wire [{{WW_BITS_HI}}:0] wgt_beat;
    /* verilator lint_on UNUSEDSIGNAL */
    {{TOP}}_gearbox #(.DWW({{DWW}}), .BEAT({{AW_WORDS}}), .REGION({{ACT_REGION_WORDS}}), .CAP({{ACT_CAP}}), .CW({{ACT_CW}})) act_gearbox (
        .clk(ap_clk), .clear(clear),
        .in_valid(act_word_valid), .in_data(act_word), .in_pop(act_word_pop),
        .out_valid(act_beat_valid), .out_ready({{ACT_POP}}), .out_data(act_beat)
    );
    {{WGT_GEARBOX}} (
        .clk(ap_clk), .clear(clear),
        .in_valid(wgt_word_valid), .in_data(wgt_word), .in_pop(wgt_word_pop),
        .out_valid(wgt_beat_valid), .out_ready(wgt_ready && wgt_feeding), .out_data(wgt_beat)
    );

{{FEED}}
    // ---- result writer: result beats -> write bursts ----------------------------
    // A block of n tokens returns its beats in (row block, token) order; each is one
    // burst to its token's place ({{RES_STRIDE}} bytes per token, {{RES_BEAT_STRIDE}} per
    // row block), so memory holds the results token after token whatever the block size.
    // A beat's data is sent only once its address is issued.
    assign m_axi_gmem_awid = 1'b0;
    assign m_axi_gmem_awsize = 3'd{{BA}};
    assign m_axi_gmem_awburst = 2'b01;
    assign m_axi_gmem_wstrb = {{{STRB_BITS}}{1'b1}};
    assign m_axi_gmem_bready = 1'b1;
    wire        res_valid;
    wire [{{RES_BITS_HI}}:0] res_data;
    reg  [{{RQ_HI}}:0] wq_mem [0:15];  // result beats waiting for the bus
    reg  [4:0]  wq_wp;
    reg  [4:0]  wq_rp;
    reg  [31:0] res_total;   // result beats this run returns
    reg  [31:0] res_taken;   // result beats taken from the engine
    reg  [31:0] aw_count;    // write bursts issued
    reg  [31:0] w_count;     // write bursts whose data has been sent
    reg  [31:0] b_count;     // write responses received
    reg  [31:0] aw_rb;       // row block of the next burst
    reg  [31:0] aw_tok;      // token within the block
    reg  [31:0] aw_token;    // first token of the block
    reg  [63:0] aw_block;    // address of the block's first token
    reg  [63:0] aw_row;      // address of (this row block, the block's first token)
    reg  [63:0] aw_next;     // address of the next burst
    reg  [7:0]  w_sub;       // bus beat within the result beat
    wire [31:0] aw_left = arg_tokens - aw_token;
    wire [31:0] aw_n = aw_left > 32'd{{TB}} ? 32'd{{TB}} : aw_left;
    wire wq_full = wq_wp - wq_rp == 5'd16;
    wire res_expected = busy && !aborting && res_taken != res_total;
    wire res_ready = res_expected && !wq_full;
    wire res_take = res_valid && res_ready;
    assign extra_result = res_valid && !res_expected && !aborting;
    wire aw_free = !m_axi_gmem_awvalid || m_axi_gmem_awready;
    wire aw_issue = busy && !aborting && aw_free && aw_count != res_taken;
    wire [{{RQ_HI}}:0] wq_head = wq_mem[wq_rp[3:0]];
    wire [{{WPAD_HI}}:0] w_padded = {{W_PADDED}};
    assign m_axi_gmem_wvalid = w_count != aw_count;
    /* verilator lint_off UNUSEDSIGNAL */ // the bus word sent is the low one
    wire [{{WPAD_HI}}:0] w_shifted = w_padded >> {w_sub, {{BA}}'d0, 3'd0};
    /* verilator lint_on UNUSEDSIGNAL */
    assign m_axi_gmem_wdata = w_shifted[{{DW_HI}}:0];
    assign m_axi_gmem_wlast = w_sub == 8'd{{RBEATS_LAST}};
    wire w_fire = m_axi_gmem_wvalid && m_axi_gmem_wready;
    wire b_fire = m_axi_gmem_bvalid;
    assign write_fault = b_fire && m_axi_gmem_bresp != 2'b00;

    always @(posedge ap_clk) begin
        if (res_take) wq_mem[wq_wp[3:0]] <= {{RES_IN}};
    end

    always @(posedge ap_clk) begin
        if (rst) begin
            m_axi_gmem_awvalid <= 1'b0;
            wq_wp <= 5'd0;
            wq_rp <= 5'd0;
            res_total <= 32'd0;
            res_taken <= 32'd0;
            aw_count <= 32'd0;
            w_count <= 32'd0;
            b_count <= 32'd0;
            w_sub <= 8'd0;
        end else if (start) begin
            wq_wp <= 5'd0;
            wq_rp <= 5'd0;
            res_total <= {{RBLOCKS_TIMES_TOKENS}};
            res_taken <= 32'd0;
            aw_count <= 32'd0;
            w_count <= 32'd0;
            b_count <= 32'd0;
            w_sub <= 8'd0;
            aw_rb <= 32'd0;
            aw_tok <= 32'd0;
            aw_token <= 32'd0;
            aw_block <= arg_results;
            aw_row <= arg_results;
            aw_next <= arg_results;
        end else begin
            if (aw_free) m_axi_gmem_awvalid <= aw_issue;
            if (res_take) begin
                wq_wp <= wq_wp + 5'd1;
                res_taken <= res_taken + 32'd1;
            end
            if (b_fire) b_count <= b_count + 32'd1;
            if (w_fire) begin
                if (m_axi_gmem_wlast) begin
                    w_sub <= 8'd0;
                    wq_rp <= wq_rp + 5'd1;
                    w_count <= w_count + 32'd1;
                end else begin
                    w_sub <= w_sub + 8'd1;
                end
            end
            if (aw_issue) begin
                m_axi_gmem_awaddr <= aw_next;
                m_axi_gmem_awlen <= 8'd{{RBEATS_LAST}};
                aw_count <= aw_count + 32'd1;
                if (aw_tok + 32'd1 == aw_n) begin
                    aw_tok <= 32'd0;
                    if (aw_rb == 32'd{{RBLOCKS_LAST}}) begin
                        aw_rb <= 32'd0;
                        aw_token <= aw_token + aw_n;
                        aw_block <= aw_block + {{RES_STRIDE_TIMES_N}};
                        aw_row <= aw_block + {{RES_STRIDE_TIMES_N}};
                        aw_next <= aw_block + {{RES_STRIDE_TIMES_N}};
                    end else begin
                        aw_rb <= aw_rb + 32'd1;
                        aw_row <= aw_row + 64'd{{RES_BEAT_STRIDE}};
                        aw_next <= aw_row + 64'd{{RES_BEAT_STRIDE}};
                    end
                end else begin
                    aw_tok <= aw_tok + 32'd1;
                    aw_next <= aw_next + 64'd{{RES_STRIDE}};
                end
            end
        end
    end

    // Normal end: every beat fed and every result written and acknowledged. After an
    // error response: every burst in flight has ended.
    assign finish = busy && (aborting
        ? (act_req_idle && wgt_req_idle && !m_axi_gmem_arvalid && !m_axi_gmem_awvalid
           && w_count == aw_count && b_count == aw_count)
        : (!feeding && b_count == res_total));

    {{ENGINE}} engine (
        .clk(ap_clk),
        .rst(rst || aborting),
        .act_valid(act_valid),
        .act_ready(act_ready),
        .act_last(act_last),
        .act_data(act_data),
        .wgt_valid(wgt_valid),
        .wgt_ready(wgt_ready),
        .wgt_data(wgt_beat[{{WGT_BITS_HI}}:0]),
        .res_valid(res_valid),
        .res_ready(res_ready),
        .res_data(res_data)
    );
endmodule

/* verilator lint_off DECLFILENAME */ // the top's helpers live in its file
// Read requests of one stream: the region of `region_beats` bus words at `base`, once
// per `step` of `units` (the weights: once per block of tokens), as INCR bursts of up to
// BURST beats that never cross 4 KiB, each issued only when the stream's buffer (DEPTH
// words) has room for it beside the data in flight. `load` takes the next region (while
// `walking` is low; the count of data in flight carries over), `start` begins a run.
module {{TOP}}_reader #(
    parameter BA = 5,
    parameter BURST = 64,
    parameter DEPTH = 256,
    parameter CW = 10
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          start,
    input  wire          stop,
    input  wire          load,
    input  wire [63:0]   base,
    input  wire [31:0]   region_beats,
    input  wire [31:0]   units,
    input  wire [31:0]   step,
    input  wire [CW-1:0] buffered,
    input  wire          returned,
    output wire          req,
    output wire [63:0]   req_addr,
    output wire [7:0]    req_len,
    input  wire          take,
    output wire          idle,
    output wire          walking
);
    reg        active;
    reg [63:0] addr;
    reg [31:0] left;          // beats left in this region
    reg [31:0] units_left;
    reg [31:0] pending;       // beats requested and not yet returned
    wire [12:0] to_page = 13'd4096 - {1'b0, addr[11:0]};
    wire [31:0] page_beats = {19'd0, to_page} >> BA;
    wire [31:0] capped = left < BURST ? left : BURST;
    wire [31:0] len = capped < page_beats ? capped : page_beats;
    assign req = active && !stop && pending + {{(32-CW){1'b0}}, buffered} + len <= DEPTH;
    assign req_addr = addr;
    assign req_len = len[7:0] - 8'd1;
    assign idle = pending == 32'd0;
    assign walking = active;
    always @(posedge clk) begin
        if (rst) begin
            active <= 1'b0;
            pending <= 32'd0;
        end else begin
            pending <= (start ? 32'd0 : pending) + (take ? len : 32'd0) - (returned ? 32'd1 : 32'd0);
            if (load) begin
                active <= !stop && units != 32'd0 && region_beats != 32'd0;
                addr <= base;
                left <= region_beats;
                units_left <= units;
            end else begin
                if (start || stop) active <= 1'b0;
                if (take) begin
                    addr <= addr + ({32'd0, len} << BA);
                    left <= left - len;
                    if (left == len) begin
                        addr <= base;
                        left <= region_beats;
                        units_left <= units_left - step;
                        if (units_left <= step) active <= 1'b0;
                    end
                end
            end
        end
    end
endmodule

// Bus words (DWW 32-bit words) in, beats (BEAT words) out. Holds up to CAP words; takes
// a bus word when all of it fits, keeps only the words that belong to the region
// (REGION words, a whole number of beats, starting on a bus word: the rest of a
// region's last bus word is padding), and offers a beat whenever it holds one.
module {{TOP}}_gearbox #(
    parameter DWW = 8,
    parameter BEAT = 5,
    parameter REGION = 40,
    parameter CAP = 13,
    parameter CW = 5
) (
    input  wire                  clk,
    input  wire                  clear,
    input  wire                  in_valid,
    input  wire [DWW*32-1:0]     in_data,
    output wire                  in_pop,
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [BEAT*32-1:0]    out_data
);
    reg [CAP*32-1:0] held;
    reg [CW-1:0]     have;   // words held
    reg [31:0]       left;   // words of the region not yet taken in
    wire fire = out_valid && out_ready;
    wire [CW-1:0] after = have - (fire ? BEAT[CW-1:0] : {CW{1'b0}});
    wire [CW-1:0] take = left < DWW ? left[CW-1:0] : DWW[CW-1:0];
    assign out_valid = have >= BEAT[CW-1:0];
    assign in_pop = in_valid && after + DWW[CW-1:0] <= CAP[CW-1:0];
    assign out_data = held[BEAT*32-1:0];
    wire [DWW*32-1:0] kept = in_data & ~({(DWW*32){1'b1}} << {take, 5'd0});
    wire [CAP*32-1:0] incoming = {{((CAP - DWW)*32){1'b0}}, kept} << {after, 5'd0};
    wire [CAP*32-1:0] remaining = fire ? held >> (BEAT*32) : held;
    always @(posedge clk) begin
        if (clear) begin
            held <= {(CAP*32){1'b0}};
            have <= {CW{1'b0}};
            left <= REGION;
        end else begin
            held <= remaining | (in_pop ? incoming : {(CAP*32){1'b0}});
            have <= after + (in_pop ? take : {CW{1'b0}});
            if (in_pop) left <= left == {{(32-CW){1'b0}}, take} ? REGION : left - {{(32-CW){1'b0}}, take};
        end
    end
endmodule

// Bus words (DWW 32-bit words) in, beats of WORDS whole bus words (BEAT 32-bit words)
// out: bus word j of a beat lands in slot j, no shifter. Takes a bus word every
// clock, also the clock its beat leaves, so a beat leaves every WORDS clocks at most.
module {{TOP}}_collector #(
    parameter DWW = 8,
    parameter BEAT = 8,
    parameter WORDS = 1
) (
    input  wire                  clk,
    input  wire                  clear,
    input  wire                  in_valid,
    input  wire [DWW*32-1:0]     in_data,
    output wire                  in_pop,
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [BEAT*32-1:0]    out_data
);
    /* verilator lint_off UNUSEDSIGNAL */ // the padding of the last bus word
    reg [WORDS*DWW*32-1:0] held;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [7:0]              count;   // bus words held
    wire fire = out_valid && out_ready;
    assign out_valid = count == WORDS;
    assign in_pop = in_valid && (count != WORDS || fire);
    assign out_data = held[BEAT*32-1:0];
    wire [7:0] slot = fire ? 8'd0 : count;
    genvar j;
    for (j = 0; j < WORDS; j = j + 1) begin : slots
        always @(posedge clk)
            if (!clear && in_pop && slot == j[7:0]) held[j*DWW*32 +: DWW*32] <= in_data;
    end
    always @(posedge clk) begin
        if (clear) count <= 8'd0;
        else count <= (fire ? 8'd0 : count) + (in_pop ? 8'd1 : 8'd0);
    end
endmodule

// A first-word-fall-through FIFO whose storage has a registered read (block RAM).
module {{TOP}}_fifo #(
    parameter W = 64,
    parameter AW = 4
) (
    input  wire          clk,
    input  wire          clear,
    input  wire          push,
    input  wire [W-1:0]  din,
    input  wire          pop,
    output reg  [W-1:0]  dout,
    output reg           dvalid,
    output wire [AW+1:0] count
);
    reg [W-1:0] mem [0:(1 << AW) - 1];
    reg [AW:0] wp;
    reg [AW:0] rp;
    wire [AW:0] stored = wp - rp;
    wire fetch = stored != 0 && (!dvalid || pop);
    always @(posedge clk) begin
        if (push) mem[wp[AW-1:0]] <= din;
        if (fetch) dout <= mem[rp[AW-1:0]];
        if (clear) begin
            wp <= 0;
            rp <= 0;
            dvalid <= 1'b0;
        end else begin
            if (push) wp <= wp + 1'b1;
            if (fetch) rp <= rp + 1'b1;
            if (fetch) dvalid <= 1'b1;
            else if (pop) dvalid <= 1'b0;
        end
    end
    assign count = {1'b0, stored} + {{(AW + 1){1'b0}}, dvalid};
endmodule
{{EXTRA_MODULES}}`default_nettype wire
"#;
