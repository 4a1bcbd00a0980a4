//! The matmul unit: `tern_matmul_unit` runs `Matmul` (docs/program.md) with the TLMM
//! engine inside, its weights in memory:
//!
//! ```text
//! cmd ─► per block of ≤ T_b rows, per row tile r, per K tile c (the rows' reader and the
//!        results each walk this loop; reader A takes a block's whole matrix at once):
//!   reader A (every port): the matrix's weight beats, tile after tile ─► gearbox ─► engine wgt
//!   reader B (port 0, beside A): each row's K slice, zeros to K_t ─► gearbox ─► engine act
//!   engine res ─► + the partial sums of tiles 0..c (on the fabric) ─► last c: the writer
//!   ─► dst + row·(4m rounded to 16) + r·4·M_t (port 0's write channels)
//! ```
//!
//! The engine is built for one tile, `M_t × K_t` (its `workload.m × workload.k`); a
//! matrix of `m × k` is `ceil(m/M_t) × ceil(k/K_t)` tiles, zero-padded. Its weights lie
//! in memory tile after tile (row tile major), each tile the engine's weight beats of
//! docs/streams.md back to back ([`matmul_weight_image`]); a tile is read once per block
//! of rows. A result is `Σ_k W·x` exactly, as an `i32`: every sum of `k ≤ 2²⁰` products
//! of a ternary weight and an int8 fits in 28 bits.
//!
//! With a weight window (`window`, the one top's unit), reader A reads on along
//! the weights into a FIFO between commands, and a block whose weights start where the
//! window stands takes them from it (docs/program.md, "The weight window").

use super::ReaderWiring;
use crate::bits::ceil_log2;
use crate::config::Config;
use crate::emit::{generate, EmitError};
use crate::interconnect::{
    any_port_reader_verilog, read_arbiter_verilog, stripe_reader_verilog,
    stripe_reader_verilog_named, StripeShape, STRIPE_READER_MODULE,
};
use crate::streams::{pack_weights, StreamError};

pub const MATMUL_UNIT_MODULE: &str = "tern_matmul_unit";
pub const MATMUL_UNIT_FILE: &str = "tern_matmul_unit.v";
/// Reader B's module: the stripe reader on one port (a row's K slice is 1/M_t of a tile's
/// traffic).
const ACTIVATION_READER_MODULE: &str = "tern_stripe_reader_one_port";
/// Reader A behind the weight window: its bursts go to any port no other unit wants.
const WINDOW_READER_MODULE: &str = "tern_window_reader";
/// Bursts in flight a port while the window reads ahead of any block: more queue ahead
/// of the running unit's reads in the DRAM (8: its vector and attention time rose by a
/// quarter), fewer leave the window less read ahead (2, with 8 while a block waits:
/// 14.79 ms a 0.73B token, not 14.12; BENCHMARKS.md, "Deeper reads").
pub const WINDOW_READ_AHEAD_BURSTS: usize = 4;
/// Partial-sum entries the result FIFO holds before the engine waits for the writer.
const RESULT_FIFO_DEPTH: usize = 32;

/// What a matmul unit is built for: the board's ports and the engine (one tile).
#[derive(Debug, Clone)]
pub struct MatmulUnitShape {
    /// Memory ports (128-bit), 1, 2 or 4.
    pub ports: usize,
    /// The TLMM (or adder-tree) engine, its workload the tile `M_t × K_t`.
    pub engine: Config,
    /// The weight window: reader A reads on along the weights while other units run
    /// (`None`: a block's matrix is read when it starts).
    pub window: Option<WeightWindow>,
}

/// The matmul unit's weight window: its FIFO's entries, each one of the engine's weight
/// beats (`weight_beat_words` × 16 bytes), and the bits of the addresses it keeps
/// (memory's end must fit: [`memory_address_bits`](crate::interconnect::memory_address_bits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightWindow {
    pub beats: usize,
    pub address_bits: usize,
    /// The memory the window's FIFO is built in (its `ram_style`).
    pub ram: WindowRam,
}

/// Which of a part's memories holds the weight window: UltraRAM where the part has it
/// (the KV260's 1.25 MiB window takes 36 of its 64, which nothing else uses), block RAM
/// where it does not (an ECP5 has no UltraRAM, and Yosys maps nothing to `"ultra"` there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowRam {
    Ultra,
    Block,
}

impl WeightWindow {
    /// Engine beats a window is built with unless a description says otherwise.
    pub const DEFAULT_BEATS: usize = 4096;

    /// Why a window of `beats` engine beats cannot be built.
    pub fn check_beats(beats: usize) -> Result<(), String> {
        if !beats.is_power_of_two() || !(16..=65536).contains(&beats) {
            return Err(format!(
                "a weight window of {beats} beats is not a power of two in 16..=65536"
            ));
        }
        Ok(())
    }
}

impl WindowRam {
    /// The `ram_style` Yosys and Vivado read.
    pub fn ram_style(self) -> &'static str {
        match self {
            WindowRam::Ultra => "ultra",
            WindowRam::Block => "block",
        }
    }
}

impl MatmulUnitShape {
    /// Rows of a tile, `M_t`.
    pub fn tile_rows(&self) -> usize {
        let g = &self.engine.geometry;
        g.rows * g.row_blocks
    }

    /// Activations of a tile, `K_t`.
    pub fn tile_k(&self) -> usize {
        let g = &self.engine.geometry;
        g.chunks * g.chunk_activations
    }

    /// 16-byte words of one weight beat.
    pub fn weight_beat_words(&self) -> usize {
        self.engine.geometry.weight_beat_bits() / 128
    }

    /// 16-byte words of one activation beat.
    pub fn activation_beat_words(&self) -> usize {
        self.engine.geometry.chunk_activations / 16
    }

    /// Bytes of one tile's weights in memory.
    pub fn tile_bytes(&self) -> u64 {
        (self.engine.geometry.weight_beats_per_token() * self.weight_beat_words() * 16) as u64
    }

    /// Tiles of an `m × k` matrix: (row tiles, K tiles).
    pub fn tiles(&self, m: usize, k: usize) -> (usize, usize) {
        (m.div_ceil(self.tile_rows()), k.div_ceil(self.tile_k()))
    }

    /// Bytes of an `m × k` matrix's weights in memory (read once per block of rows).
    pub fn matrix_bytes(&self, m: usize, k: usize) -> u64 {
        let (r, c) = self.tiles(m, k);
        (r * c) as u64 * self.tile_bytes()
    }

    /// Why the unit cannot be built for this shape, naming the parameter.
    pub fn check(&self) -> Result<(), String> {
        let g = &self.engine.geometry;
        let w = &self.engine.workload;
        if ![1, 2, 4].contains(&self.ports) {
            return Err(format!("matmul unit: {} ports, not 1, 2 or 4", self.ports));
        }
        if !g.weight_beat_bits().is_multiple_of(128) {
            return Err(format!(
                "matmul unit: a weight beat of {} bits is not a whole number of 128-bit \
                 port beats (P·L·(1 + index bits); choose rows_parallel or groups_per_cycle so)",
                g.weight_beat_bits()
            ));
        }
        if !g.chunk_activations.is_multiple_of(16) {
            return Err(format!(
                "matmul unit: a chunk of {} activations (Q·G) is not a whole number of \
                 16-byte port beats",
                g.chunk_activations
            ));
        }
        if !g.rows.is_multiple_of(4) {
            return Err(format!(
                "matmul unit: rows_parallel = {} is not a multiple of 4 (a result beat is \
                 written as whole 16-byte words)",
                g.rows
            ));
        }
        if let Some(WeightWindow {
            beats,
            address_bits,
            ..
        }) = self.window
        {
            WeightWindow::check_beats(beats).map_err(|e| format!("matmul unit: {e}"))?;
            if !(12..=63).contains(&address_bits) {
                return Err(format!(
                    "matmul unit: a weight window's addresses of {address_bits} bits, not 12..=63"
                ));
            }
            let tile_beats = self.tile_bytes() / 16;
            if !tile_beats.is_multiple_of(self.ports as u64) {
                return Err(format!(
                    "matmul unit: a tile of {tile_beats} beats is not whole words of {} ports, \
                     which the weight window keeps matrices in",
                    self.ports
                ));
            }
        }
        if w.m != self.tile_rows() || w.k != self.tile_k() {
            return Err(format!(
                "matmul unit: the tile {}×{} (workload.m × workload.k) is not whole row \
                 blocks of {} and chunks of {}",
                w.m, w.k, g.rows, g.chunk_activations
            ));
        }
        Ok(())
    }

    /// Reader A's shape without a weight window, and reader B's on one port: bursts of
    /// 16 beats, 4 in flight a port (with a window, reader A is [`Self::window_reader`]).
    pub fn readers(&self) -> StripeShape {
        StripeShape {
            ports: self.ports,
            burst: 16,
            outstanding: 4,
        }
    }

    /// The weight window's reader A: 12 bursts in flight a port while a block waits on
    /// it (4 cover the ports' latency alone, not the one top's arbiters and queues
    /// beside the other units), [`WINDOW_READ_AHEAD_BURSTS`] while it reads ahead.
    pub fn window_reader(&self) -> StripeShape {
        StripeShape {
            outstanding: 12,
            ..self.readers()
        }
    }
}

/// A matrix's weights as the unit reads them: tile (r, c) of `ceil(m/M_t) ×
/// ceil(k/K_t)` at `(r·KT + c)·tile_bytes`, each the engine's weight beats
/// (docs/streams.md) of `W[r·M_t.., c·K_t..]`, zero past the matrix. `w` is row-major
/// `m × k` ternary.
pub fn matmul_weight_image(
    shape: &MatmulUnitShape,
    w: &[i8],
    m: usize,
    k: usize,
) -> Result<Vec<u8>, StreamError> {
    if w.len() != m * k {
        return Err(StreamError::WeightShape { got: w.len(), m, k });
    }
    let (mt, kt) = (shape.tile_rows(), shape.tile_k());
    let (rt, ct) = shape.tiles(m, k);
    let geo = &shape.engine.geometry;
    let beat_bytes = shape.weight_beat_words() * 16;
    let mut out = Vec::with_capacity(shape.matrix_bytes(m, k) as usize);
    let mut tile = vec![0i8; mt * kt];
    for r in 0..rt {
        for c in 0..ct {
            for (i, row) in tile.chunks_mut(kt).enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    let (gi, gj) = (r * mt + i, c * kt + j);
                    *x = if gi < m && gj < k { w[gi * k + gj] } else { 0 };
                }
            }
            for beat in pack_weights(geo, &tile, mt, kt)? {
                let start = out.len();
                out.extend(beat.iter().flat_map(|x| x.to_le_bytes()));
                out.resize(start + beat_bytes, 0);
            }
        }
    }
    Ok(out)
}

/// The unit's Verilog: `unit` holds the unit and every block it is made of but the
/// engine's rust-hdl core, which is `core` (its own file: Verilator's waivers for
/// rust-hdl's output name it, `emit::waivers`).
#[derive(Debug, Clone)]
pub struct MatmulUnitVerilog {
    pub unit: String,
    pub core: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MatmulUnitError {
    #[error("{0}")]
    Shape(String),
    #[error(transparent)]
    Emit(#[from] EmitError),
}

pub fn matmul_unit_verilog(shape: &MatmulUnitShape) -> Result<MatmulUnitVerilog, MatmulUnitError> {
    shape.check().map_err(MatmulUnitError::Shape)?;
    let engine = generate(&shape.engine)?;
    let g = &shape.engine.geometry;
    let p = shape.ports;
    let wiring = ReaderWiring::of(p, STRIPE_READER_MODULE, ACTIVATION_READER_MODULE);
    let tb = g.token_block;
    let nb = ceil_log2(tb + 1);
    let r = g.row_blocks;
    let rbits = ceil_log2(r).max(1);
    let e = r * tb;
    let ebits = ceil_log2(e).max(1);
    let kw = shape.tile_k() / 16;
    let words = g.rows / 4;
    let wb = ceil_log2(words + 1);
    let fifo = RESULT_FIFO_DEPTH.min(e.next_power_of_two()).max(2);
    let mut sign_extend = String::new();
    let acc = g.accumulator_bits;
    for i in 0..g.rows {
        let lane = format!("s1_beat[{}:{}]", acc * i + acc - 1, acc * i);
        let ext = if acc == 32 {
            lane
        } else {
            format!(
                "{{{{{}{{s1_beat[{}]}}}}, {lane}}}",
                32 - acc,
                acc * i + acc - 1
            )
        };
        sign_extend.push_str(&format!(
            "    assign sum[{hi}:{lo}] = {ext} + (s1_first ? 32'd0 : psum_q[{hi}:{lo}]);\n",
            hi = 32 * i + 31,
            lo = 32 * i
        ));
    }
    let subs: [(&str, String); 26] = [
        ("{{PORTS_IO}}", wiring.ports_io.clone()),
        ("{{WIRES}}", wiring.wires.clone()),
        ("{{READER_B}}", wiring.reader_b.clone()),
        ("{{ARBITERS}}", wiring.arbiters.clone()),
        ("{{SIGN_EXTEND}}", sign_extend),
        ("{{MODULE}}", MATMUL_UNIT_MODULE.into()),
        ("{{VERSION}}", env!("CARGO_PKG_VERSION").into()),
        ("{{P}}", p.to_string()),
        ("{{DW_HI}}", (128 * p - 1).to_string()),
        ("{{CB}}", ceil_log2(p + 1).to_string()),
        ("{{CB_HI}}", (ceil_log2(p + 1) - 1).to_string()),
        ("{{MT}}", shape.tile_rows().to_string()),
        ("{{KT}}", shape.tile_k().to_string()),
        ("{{TB}}", tb.to_string()),
        ("{{NB}}", nb.to_string()),
        ("{{NB_HI}}", (nb - 1).to_string()),
        ("{{R_LAST}}", (r - 1).to_string()),
        ("{{RB_HI}}", (rbits - 1).to_string()),
        ("{{E}}", e.to_string()),
        ("{{EB_HI}}", (ebits - 1).to_string()),
        ("{{KW_LAST}}", (kw - 1).to_string()),
        ("{{WW}}", shape.weight_beat_words().to_string()),
        ("{{AW}}", shape.activation_beat_words().to_string()),
        ("{{WORDS}}", words.to_string()),
        ("{{WB_HI}}", (wb - 1).to_string()),
        ("{{FIFO}}", fifo.to_string()),
    ];
    // Reader A straight to the engine, or behind the weight window: a reader whose
    // bursts go to any port no other unit wants, its signals `ra_*`.
    let (weights_source, window_io) = if let Some(window) = shape.window {
        let ra = wiring.reader_a_as(
            "ra",
            WINDOW_READER_MODULE,
            ",\n        .port_busy(ra_busy), .reading_ahead(ra_behind)",
        );
        let ab = ceil_log2(window.beats);
        let aw = window.address_bits;
        let word_bytes = 16 * p;
        let beat_bytes = 16 * shape.weight_beat_words();
        let source = WINDOW_WEIGHTS
            .replace("{{READER_A}}", &ra)
            .replace("{{RA_DEPTH}}", &window.beats.to_string())
            .replace("{{RA_STYLE}}", window.ram.ram_style())
            .replace("{{RA_AW_HI}}", &(aw - 1).to_string())
            .replace("{{RA_AW}}", &aw.to_string())
            .replace("{{RA_AB}}", &ab.to_string())
            .replace("{{RA_CB}}", &(ab + 1).to_string())
            .replace("{{RA_BEAT_BYTES}}", &beat_bytes.to_string())
            .replace("{{RA_WORD_MASK}}", &(word_bytes - 1).to_string())
            .replace(
                "{{RA_CHUNK_BYTES}}",
                &(window.beats * beat_bytes).to_string(),
            );
        let io = format!(
            "    // The weight window's bounds: a pass starts (its contents may be stale), the\n    \
             // memory's end, the regions units write (docs/program.md); {aw}-bit addresses.\n    \
             input  wire         ra_flush,\n    input  wire [{hi}:0]  ra_mem_end,\n    \
             input  wire [{hi}:0]  ra_scratch_at,\n    input  wire [{hi}:0]  ra_scratch_end,\n    \
             input  wire [{hi}:0]  ra_kv_at,\n    input  wire [{hi}:0]  ra_kv_end,\n    \
             // Reading ahead with no block waiting: the top lets other units' reads first,\n    \
             // and says on which ports another unit wants to read (no burst is asked there).\n    \
             output wire         ra_behind,\n    input  wire [{p_last}:0]   ra_busy,\n",
            hi = aw - 1,
            p_last = p - 1
        );
        (source, io)
    } else {
        (
            DIRECT_WEIGHTS.replace("{{READER_A}}", &wiring.reader_a),
            String::new(),
        )
    };
    // Reader A's words: P beats, or from the window whole engine beats.
    let a_words = match shape.window {
        Some(_) => shape.weight_beat_words(),
        None => p,
    };
    let mut unit = format!("{UNIT_TEMPLATE}{TILE_WALK}{GEARBOX}")
        .replace("{{A_WORDS}}", &a_words.to_string())
        .replace("{{WEIGHTS_SOURCE}}", &weights_source)
        .replace("{{WINDOW_IO}}", &window_io);
    for (key, value) in subs {
        unit = unit.replace(key, &value);
    }
    let more: [(&str, String); 12] = [
        ("{{WB}}", wb.to_string()),
        ("{{RB}}", rbits.to_string()),
        ("{{EB}}", ebits.to_string()),
        ("{{FA}}", ceil_log2(fifo).to_string()),
        ("{{FC}}", (ceil_log2(fifo) + 1).to_string()),
        ("{{PR}}", g.rows.to_string()),
        ("{{ACC}}", acc.to_string()),
        ("{{RES_HI}}", (g.rows * acc - 1).to_string()),
        ("{{SUM_HI}}", (32 * g.rows - 1).to_string()),
        ("{{TILE_BEATS}}", (shape.tile_bytes() / 16).to_string()),
        ("{{ROWS4P}}", (4 * g.rows).to_string()),
        ("{{MT4}}", (4 * shape.tile_rows()).to_string()),
    ];
    for (key, value) in more {
        unit = unit.replace(key, &value);
    }
    debug_assert!(crate::bits::filled(&unit), "a placeholder left");
    let reader_b = StripeShape {
        ports: 1,
        ..shape.readers()
    };
    // Reader A: the window's any-port reader, or the plain stripe reader without one.
    let reader_a = match shape.window {
        Some(_) => any_port_reader_verilog(
            shape.window_reader(),
            WINDOW_READ_AHEAD_BURSTS,
            WINDOW_READER_MODULE,
        ),
        None => stripe_reader_verilog(shape.readers()),
    }
    .map_err(MatmulUnitError::Shape)?;
    let unit = format!(
        "{unit}{reader_a}{}{}{}",
        stripe_reader_verilog_named(reader_b, ACTIVATION_READER_MODULE)
            .map_err(MatmulUnitError::Shape)?,
        read_arbiter_verilog(2, 16).map_err(MatmulUnitError::Shape)?,
        engine.wrapper_verilog,
    );
    Ok(MatmulUnitVerilog {
        unit,
        core: engine.core_verilog,
    })
}

const UNIT_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the matmul unit (hdl/src/units/matmul.rs): the Matmul
// command on {{P}} memory port(s), the engine's tiles {{MT}} × {{KT}}, {{TB}} rows a block.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{PORTS_IO}}    // Port 0's write channels: the results.
    output reg          w_awvalid,
    input  wire         w_awready,
    output reg  [63:0]  w_awaddr,
    output reg  [7:0]   w_awlen,
    output reg          w_wvalid,
    input  wire         w_wready,
    output wire [127:0] w_wdata,
    output wire [15:0]  w_wstrb,
    output wire         w_wlast,
    input  wire         w_bvalid,
    output wire         w_bready,
    input  wire [1:0]   w_bresp,
    // The command's fields (docs/program.md, Matmul) and the pass's rows.
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [63:0]  cmd_src,
    input  wire [63:0]  cmd_weights,
    input  wire [63:0]  cmd_dst,
    input  wire [31:0]  cmd_m,
    input  wire [31:0]  cmd_k,
    input  wire [31:0]  cmd_pass_rows,
{{WINDOW_IO}}    output wire         done,
    // Why the last command did not run or went wrong: 0 none, 1 a size out of range,
    // 2 an error response from memory.
    output reg  [1:0]   error
);
    reg         running;
    reg         start;        // one clock: the walks and the count begin
    reg  [63:0] src, weights, dst;
    reg  [31:0] m_all, k_all, rows_all;
    reg  [31:0] krow, mrow;   // bytes of an int8 row (k to 16), of a result row (4m to 16)
    reg         failed;       // an error response was seen
    assign cmd_ready = !running;
    assign done = !running;
{{WIRES}}
    // ---- the walks: (block of rows, row tile, K tile), one for each consumer ----
    wire        wa_over, wa_last_c, wa_last_r;
    wire        wr_over, wr_first_c, wr_last_c, wr_last_r;
    wire [{{NB_HI}}:0] wa_n, wr_n;
    wire [31:0] wa_k_valid, wr_m_left;
    wire        wa_adv, wr_adv;
    /* verilator lint_off UNUSEDSIGNAL */ // each walk's consumer reads what it needs
    wire [31:0] wa_m_left, wr_k_valid;
    wire        wa_first_c_unused;
    /* verilator lint_on UNUSEDSIGNAL */
    tern_tile_walk walk_a (.clk(clk), .rst(rst), .start(start), .rows(rows_all), .m(m_all), .k(k_all),
        .advance(wa_adv), .over(wa_over), .n(wa_n), .k_valid(wa_k_valid), .m_left(wa_m_left),
        .first_c(wa_first_c_unused), .last_c(wa_last_c), .last_r(wa_last_r));
    tern_tile_walk walk_r (.clk(clk), .rst(rst), .start(start), .rows(rows_all), .m(m_all), .k(k_all),
        .advance(wr_adv), .over(wr_over), .n(wr_n), .k_valid(wr_k_valid), .m_left(wr_m_left),
        .first_c(wr_first_c), .last_c(wr_last_c), .last_r(wr_last_r));

    // ---- reader A: the weights, the whole matrix a command (a block of rows) ----
    // Its beats are counted first: K tiles (one clock each), then row tiles (one clock
    // each), so bursts run on from tile to tile and the ports never wait for a command.
    reg  [1:0]  count;        // 0 K tiles, 1 row tiles, 2 counted
    reg  [31:0] count_left;
    reg  [31:0] row_beats;    // one row tile's beats
    // 32 bits: the sequencer passes only the model's own shapes (error 17), whose
    // matrices are far below 2^32 beats.
    reg  [31:0] matrix_beats;
    reg  [31:0] blocks_left;  // rows whose block is not yet commanded
    always @(posedge clk) begin
        if (start) begin
            count <= 2'd0;
            count_left <= k_all;
            row_beats <= 32'd0;
            matrix_beats <= 32'd0;
        end else if (count == 2'd0) begin
            row_beats <= row_beats + 32'd{{TILE_BEATS}};
            if (count_left <= 32'd{{KT}}) begin
                count <= 2'd1;
                count_left <= m_all;
            end else count_left <= count_left - 32'd{{KT}};
        end else if (count == 2'd1) begin
            matrix_beats <= matrix_beats + row_beats;
            if (count_left <= 32'd{{MT}}) count <= 2'd2;
            else count_left <= count_left - 32'd{{MT}};
        end
    end
    /* verilator lint_off UNUSEDSIGNAL */ // commanded only when done
    wire        b_cmd_ready, b_last, b_beats;
    /* verilator lint_on UNUSEDSIGNAL */
{{WEIGHTS_SOURCE}}    wire        wgt_valid, wgt_ready;
    wire [{{WW}}*128-1:0] wgt_data;
    /* verilator lint_off UNUSEDSIGNAL */ // weights carry no block mark
    wire        wgt_last_unused;
    /* verilator lint_on UNUSEDSIGNAL */
    tern_word_gearbox #(.IN({{A_WORDS}}), .OUT({{WW}}), .CW(8)) weight_gearbox (
        .clk(clk), .rst(rst),
        .in_valid(a_valid), .in_ready(a_ready), .in_data(a_data), .in_words(8'(a_beats)), .in_last(1'b0),
        .out_valid(wgt_valid), .out_ready(wgt_ready), .out_data(wgt_data), .out_last(wgt_last_unused)
    );

    // ---- reader B: each row's K slice of the tile, then zeros to K_t ----
    reg         b_cmd_valid;
    reg  [63:0] b_cmd_addr;
    reg  [31:0] b_cmd_beats;
    wire        b_valid, b_done, b_error, b_ready;
    wire [127:0] b_data;
{{READER_B}}{{ARBITERS}}
    reg  [63:0] a_block_row;  // src + j0·krow: the block's first row
    reg  [63:0] a_tok_row;    // + t·krow
    reg  [31:0] c_off;        // c·K_t
    reg  [{{NB_HI}}:0] a_t;
    reg         a_words;      // words of a row's slice go out (else: its command next)
    reg  [15:0] a_wi;         // the word of the slice
    reg  [31:0] a_from_mem;   // words the slice has in memory: ceil(k_valid / 16)
    wire        ag_in_ready;
    wire        a_mem_word = {16'd0, a_wi} < a_from_mem;
    wire        a_push = a_words && ag_in_ready && (!a_mem_word || b_valid);
    assign b_ready = a_words && a_mem_word && ag_in_ready;
    // Past k the slice is zeros; the row's padding inside its last word meets the
    // tile's zero weights, so it is not masked.
    wire [127:0] a_word = a_mem_word ? b_data : 128'd0;
    wire a_slice_end = a_wi == 16'd{{KW_LAST}};
    wire a_row_end = a_t == wa_n - {{NB}}'d1;
    assign wa_adv = a_push && a_slice_end && a_row_end;
    always @(posedge clk) begin
        b_cmd_valid <= 1'b0;
        if (start) begin
            a_block_row <= src;
            a_tok_row <= src;
            c_off <= 32'd0;
            a_t <= '0;
            a_words <= 1'b0;
        end else if (!a_words) begin
            if (running && !wa_over && b_done && !b_cmd_valid) begin
                b_cmd_addr <= a_tok_row + {32'd0, c_off};
                b_cmd_beats <= (wa_k_valid + 32'd15) >> 4;
                b_cmd_valid <= 1'b1;
                a_from_mem <= (wa_k_valid + 32'd15) >> 4;
                a_wi <= 16'd0;
                a_words <= 1'b1;
            end
        end else if (a_push) begin
            if (!a_slice_end) a_wi <= a_wi + 16'd1;
            else begin
                a_words <= 1'b0;
                if (!a_row_end) begin
                    a_t <= a_t + {{NB}}'d1;
                    a_tok_row <= a_tok_row + {32'd0, krow};
                end else begin
                    a_t <= '0;
                    c_off <= wa_last_c ? 32'd0 : c_off + 32'd{{KT}};
                    if (wa_last_c && wa_last_r) begin
                        a_block_row <= a_tok_row + {32'd0, krow};
                        a_tok_row <= a_tok_row + {32'd0, krow};
                    end else a_tok_row <= a_block_row;
                end
            end
        end
    end
    wire        act_valid, act_ready, act_last;
    wire [{{AW}}*128-1:0] act_data;
    tern_word_gearbox #(.IN(1), .OUT({{AW}}), .CW(8)) activation_gearbox (
        .clk(clk), .rst(rst),
        .in_valid(a_words && (!a_mem_word || b_valid)), .in_ready(ag_in_ready), .in_data(a_word),
        .in_words(8'd1), .in_last(a_slice_end && a_row_end),
        .out_valid(act_valid), .out_ready(act_ready), .out_data(act_data), .out_last(act_last)
    );

    // ---- the engine ----
    wire        res_valid, res_ready;
    wire [{{RES_HI}}:0] res_data;
    tern_engine engine (
        .clk(clk), .rst(rst),
        .act_valid(act_valid), .act_ready(act_ready), .act_last(act_last), .act_data(act_data),
        .wgt_valid(wgt_valid), .wgt_ready(wgt_ready), .wgt_data(wgt_data),
        .res_valid(res_valid), .res_ready(res_ready), .res_data(res_data)
    );

    // ---- the results: (row block b, row t) order within a tile; partial sums of the
    // tile's K tiles so far at e = b·n + t ----
    reg  [{{EB_HI}}:0] e;
    reg  [{{NB_HI}}:0] r_t;
    reg  [{{RB_HI}}:0] r_b;
    reg  [63:0] r_block_row, r_tok_row;  // dst + j0·mrow, + t·mrow
    reg  [31:0] col_base, col;           // bytes: r·4·M_t, + b·4·P
    reg  [32:0] rows_here;               // m − r·M_t − b·P, signed: rows from the beat's first
    reg  [{{FC}}-1:0] f_count;
    reg         s1;
    reg  [{{RES_HI}}:0] s1_beat;
    reg  [{{EB_HI}}:0] s1_e;
    reg         s1_first, s1_last, s1_skip;
    reg  [63:0] s1_addr;
    reg  [{{WB_HI}}:0] s1_words;
    // The partial sum just written is read again only when a tile is one beat and the
    // next tile's beat follows at once: never with the TLMM (its tables take ≥ 2^G
    // clocks a tile), possible with an adder tree; then the unit waits a clock.
    wire        hazard = s1 && !s1_last && s1_e == e;
    assign res_ready = running && 32'(f_count) + 32'd2 <= 32'd{{FIFO}} && !hazard;
    wire        take = res_valid && res_ready;
    wire        r_row_end = r_t == wr_n - {{NB}}'d1;
    wire        r_tile_end = r_row_end && r_b == {{RB}}'d{{R_LAST}};
    assign wr_adv = take && r_tile_end;
    reg  [{{SUM_HI}}:0] psum [0:{{E}}-1];
    reg  [{{SUM_HI}}:0] psum_q;
    wire [{{SUM_HI}}:0] sum;
{{SIGN_EXTEND}}
    wire [31:0] rows_beat = rows_here[32] ? 32'd0 : rows_here[31:0];
    always @(posedge clk) begin
        s1 <= take;
        if (take) begin
            psum_q <= psum[e];
            s1_beat <= res_data;
            s1_e <= e;
            s1_first <= wr_first_c;
            s1_last <= wr_last_c;
            s1_skip <= rows_here[32] || rows_here == 33'd0;
            s1_addr <= r_tok_row + {32'd0, col};
            s1_words <= rows_beat >= 32'd{{PR}} ? {{WB}}'d{{WORDS}} : {{WB}}'((rows_beat + 32'd3) >> 2);
        end
        if (s1 && !s1_last) psum[s1_e] <= sum;
        if (start) begin
            e <= '0;
            r_t <= '0;
            r_b <= '0;
            r_block_row <= dst;
            r_tok_row <= dst;
            col_base <= 32'd0;
            col <= 32'd0;
            rows_here <= {1'b0, m_all};
        end else if (take) begin
            if (!r_row_end) begin
                r_t <= r_t + {{NB}}'d1;
                r_tok_row <= r_tok_row + {32'd0, mrow};
                e <= e + {{EB}}'d1;
            end else if (!r_tile_end) begin
                r_t <= '0;
                r_tok_row <= r_block_row;
                r_b <= r_b + {{RB}}'d1;
                col <= col + 32'd{{ROWS4P}};
                rows_here <= rows_here - 33'd{{PR}};
                e <= e + {{EB}}'d1;
            end else begin
                r_t <= '0;
                r_b <= '0;
                e <= '0;
                if (!wr_last_c) begin
                    // The next K tile of this row tile.
                    r_tok_row <= r_block_row;
                    col <= col_base;
                    rows_here <= {1'b0, wr_m_left};
                end else if (!wr_last_r) begin
                    r_tok_row <= r_block_row;
                    col_base <= col_base + 32'd{{MT4}};
                    col <= col_base + 32'd{{MT4}};
                    rows_here <= {1'b0, wr_m_left} - 33'd{{MT}};
                end else begin
                    // The next block of rows.
                    r_block_row <= r_tok_row + {32'd0, mrow};
                    r_tok_row <= r_tok_row + {32'd0, mrow};
                    col_base <= 32'd0;
                    col <= 32'd0;
                    rows_here <= {1'b0, m_all};
                end
            end
        end
    end

    // ---- the writer: a burst a finished beat, on port 0's write channels ----
    reg  [{{SUM_HI}}:0] f_data [0:{{FIFO}}-1];
    reg  [63:0] f_addr [0:{{FIFO}}-1];
    reg  [{{WB_HI}}:0] f_words [0:{{FIFO}}-1];
    reg  [{{WB_HI}}:0] f_first [0:{{FIFO}}-1];  // beats before a 4 KiB boundary, at most all
    reg  [{{FA}}-1:0] f_wr, f_rd;
    reg  [1:0]  xs;           // 0 idle, 1 address, 2 data
    reg  [{{SUM_HI}}:0] x_data;
    reg  [{{WB_HI}}:0] x_words, x_sent;
    reg  [{{WB_HI}}:0] x_end;  // the beat after the current burst (AXI: none crosses 4 KiB)
    reg  [63:0] x_addr;
    // The beats of a row block's write before the next 4 KiB boundary.
    wire [8:0]  s1_page_left = 9'd256 - {1'b0, s1_addr[11:4]};
    wire [{{WB_HI}}:0] s1_in_page = 9'(s1_words) <= s1_page_left ? s1_words : {{WB}}'(s1_page_left);
    wire [{{WB_HI}}:0] x_rest = x_words - x_end;
    reg  [7:0]  b_open;       // write responses still to come
    wire f_push = s1 && s1_last && !s1_skip;
    wire f_pop = xs == 2'd0 && f_count != '0 && b_open != 8'hff;
    reg  [127:0] x_word;
    integer wi;
    always @(*) begin
        x_word = x_data[127:0];
        for (wi = 1; wi < {{WORDS}}; wi = wi + 1)
            if (x_sent == {{WB}}'(wi)) x_word = x_data[128*wi +: 128];
    end
    assign w_wdata = x_word;
    assign w_wstrb = 16'hffff;
    assign w_wlast = x_sent + {{WB}}'d1 == x_end;
    assign w_bready = 1'b1;
    always @(posedge clk) begin
        if (f_push) begin
            f_data[f_wr] <= sum;
            f_addr[f_wr] <= s1_addr;
            f_words[f_wr] <= s1_words;
            f_first[f_wr] <= s1_in_page;
        end
        if (f_pop) begin
            x_data <= f_data[f_rd];
            x_words <= f_words[f_rd];
            x_end <= f_first[f_rd];
            x_addr <= f_addr[f_rd];
            x_sent <= '0;
            w_awaddr <= f_addr[f_rd];
            w_awlen <= 8'(f_first[f_rd]) - 8'd1;
        end
        if (rst || start) begin
            f_wr <= '0;
            f_rd <= '0;
            f_count <= '0;
            xs <= 2'd0;
            w_awvalid <= 1'b0;
            w_wvalid <= 1'b0;
            b_open <= 8'd0;
        end else begin
            if (f_push) f_wr <= f_wr + {{FA}}'d1;
            if (f_pop) f_rd <= f_rd + {{FA}}'d1;
            f_count <= f_count + {{FC}}'(f_push) - {{FC}}'(f_pop);
            b_open <= b_open + 8'(w_awvalid && w_awready) - 8'(w_bvalid);
            case (xs)
                2'd0: if (f_pop) begin
                    w_awvalid <= 1'b1;
                    xs <= 2'd1;
                end
                2'd1: if (w_awready) begin
                    w_awvalid <= 1'b0;
                    w_wvalid <= 1'b1;
                    xs <= 2'd2;
                end
                default: if (w_wready) begin
                    x_sent <= x_sent + {{WB}}'d1;
                    if (w_wlast) begin
                        w_wvalid <= 1'b0;
                        if (x_end == x_words) xs <= 2'd0;
                        else begin
                            // The rest, from the boundary on.
                            w_awaddr <= x_addr + (64'(x_end) << 4);
                            w_awlen <= 8'(x_rest) - 8'd1;
                            w_awvalid <= 1'b1;
                            x_end <= x_words;
                            xs <= 2'd1;
                        end
                    end
                end
            endcase
        end
    end

    // ---- the command ----
    wire fits = cmd_m != 32'd0 && cmd_m <= 32'd1048576 && cmd_k != 32'd0
        && cmd_k <= 32'd1048576 && cmd_pass_rows != 32'd0;
    wire drained = count == 2'd2 && blocks_left == 32'd0 && wa_over && wr_over && !s1 && f_count == '0 && xs == 2'd0
        && b_open == 8'd0 && a_done && b_done && !a_cmd_valid && !b_cmd_valid;
    always @(posedge clk) begin
        start <= 1'b0;
        if (rst) begin
            running <= 1'b0;
            error <= 2'd0;
        end else if (!running) begin
            if (cmd_valid) begin
                error <= fits ? 2'd0 : 2'd1;
                failed <= 1'b0;
                if (fits) begin
                    running <= 1'b1;
                    start <= 1'b1;
                    src <= cmd_src;
                    weights <= cmd_weights;
                    dst <= cmd_dst;
                    m_all <= cmd_m;
                    k_all <= cmd_k;
                    rows_all <= cmd_pass_rows;
                    krow <= (cmd_k + 32'd15) & ~32'd15;
                    mrow <= ((cmd_m << 2) + 32'd15) & ~32'd15;
                end
            end
        end else begin
            // A reader's error stays until its next command: counted while it runs.
            if ((a_error && !a_done) || (b_error && !b_done) || (w_bvalid && w_bresp != 2'd0))
                failed <= 1'b1;
            if (!start && drained) begin
                running <= 1'b0;
                if (failed) error <= 2'd2;
            end
        end
    end
endmodule
`default_nettype wire
/* verilator lint_off DECLFILENAME */ // the blocks it is made of
"#;

/// Reader A straight to the engine: a block's whole matrix a command.
const DIRECT_WEIGHTS: &str = r#"    reg         a_cmd_valid;
    wire        a_valid, a_done, a_error, a_ready;
    wire [{{DW_HI}}:0] a_data;
    wire [{{CB_HI}}:0] a_beats;
    /* verilator lint_off UNUSEDSIGNAL */ // commanded only when done
    wire        a_cmd_ready, a_last;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [63:0] a_cmd_addr = weights;
    wire [31:0] a_cmd_beats = matrix_beats;
{{READER_A}}    wire weights_next = running && !start && count == 2'd2 && blocks_left != 32'd0
        && a_done && !a_cmd_valid;
    always @(posedge clk) begin
        a_cmd_valid <= 1'b0;
        if (start) blocks_left <= rows_all;
        else if (weights_next) begin
            a_cmd_valid <= 1'b1;
            blocks_left <= blocks_left > 32'd{{TB}} ? blocks_left - 32'd{{TB}} : 32'd0;
        end
    end
"#;

/// Reader A reading ahead along the weights into a FIFO of the engine's weight beats
/// (`WeightWindow::beats`): the matrices lie back to back in the order the commands take
/// them, so the next one's weights stream in while other units run, and a block drains
/// what was read ahead at a beat a clock (faster than the ports fill it). The unit sees
/// the FIFO as reader A (`a_*`).
const WINDOW_WEIGHTS: &str = r#"    // ---- the weight window: reader A reads on along the weights, between commands too,
    // into a FIFO of {{RA_DEPTH}} engine beats, never where a unit writes (scratch, the KV
    // caches) nor past memory. A block whose weights start where the window stands
    // takes them from it; any other (and the first after a pass starts) first empties it.
    reg         ra_cmd_valid;
    reg  [63:0] ra_cmd_addr;
    reg  [31:0] ra_cmd_beats;
    wire        ra_valid, ra_done, ra_error, ra_ready;
    wire [{{DW_HI}}:0] ra_data;
    /* verilator lint_off UNUSEDSIGNAL */ // chunks are whole words; counted by beats
    wire        ra_cmd_ready, ra_last;
    wire [{{CB_HI}}:0] ra_beats;
    /* verilator lint_on UNUSEDSIGNAL */
{{READER_A}}    // Reader A's words gathered into the engine's beats (a chunk may end inside a
    // beat: the next chunk, which starts where it ended, completes it).
    wire        rb_valid, rb_ready;
    wire [{{WW}}*128-1:0] rb_data;
    /* verilator lint_off UNUSEDSIGNAL */ // the window's words carry no block mark
    wire        rb_last_unused;
    /* verilator lint_on UNUSEDSIGNAL */
    wire        emptied;
    tern_word_gearbox #(.IN({{P}}), .OUT({{WW}}), .CW(8)) window_gearbox (
        .clk(clk), .rst(rst || emptied),
        .in_valid(ra_valid), .in_ready(ra_ready), .in_data(ra_data), .in_words(8'(ra_beats)), .in_last(1'b0),
        .out_valid(rb_valid), .out_ready(rb_ready), .out_data(rb_data), .out_last(rb_last_unused)
    );
    (* ram_style = "{{RA_STYLE}}" *) reg [{{WW}}*128-1:0] ra_mem [0:{{RA_DEPTH}}-1];
    reg  [{{RA_AB}}-1:0] ra_wr, ra_rd;
    reg  [{{RA_AB}}:0]   ra_held;     // beats in the FIFO's memory
    reg  [{{WW}}*128-1:0] ra_out;     // the oldest beat, out of the memory
    reg         ra_out_valid;
    reg         win;                  // the window stands at `base`
    reg         discard;              // emptying it: every word dropped until reader A is done
    reg         pend;                 // a block waits for its weights' place
    reg  [{{RA_AW_HI}}:0] base;       // the address of the oldest beat not yet taken
    reg  [{{RA_AW_HI}}:0] ahead;      // where reader A's next chunk starts
    reg  [{{RA_AW_HI}}:0] dem_end;    // the end of the block's weights
    reg  [31:0] want;                 // 16-byte beats the block still takes
    reg  [{{RA_AW_HI}}:0] spec_end;   // how far reader A may read on from `ahead`
    // `lim` a clock later: its compare chain and the sum after it take a clock each.
    reg  [{{RA_AW_HI}}:0] lim_q;
    reg         settling;             // lim_q is `ahead`'s
    reg         settled;              // spec_end is `ahead`'s
    wire        a_valid = ra_out_valid && want != 32'd0 && !discard;
    wire        a_ready;
    wire [{{WW}}*128-1:0] a_data = ra_out;
    wire [7:0]  a_beats = 8'd{{WW}};
    wire        a_take = a_valid && a_ready;
    // What the unit's end and error see: the block's beats all taken.
    wire        a_done = want == 32'd0 && !pend;
    assign ra_behind = a_done;
    wire        a_cmd_valid = 1'b0;
    wire        a_error = ra_error;
    wire        ra_pop = ra_out_valid && (a_take || discard);
    wire        ra_load = ra_held != '0 && (!ra_out_valid || ra_pop);
    assign rb_ready = ra_held != {{RA_CB}}'d{{RA_DEPTH}};
    wire        ra_push = rb_valid && rb_ready;
    wire        ra_idle = ra_done && !ra_cmd_valid;
    // Emptied: reader A done, nothing in the FIFO nor a whole beat in the gearbox (a part
    // of one is cleared with it).
    assign emptied = discard && ra_idle && ra_held == '0 && !ra_out_valid && !rb_valid;
    wire        weights_next = running && !start && count == 2'd2 && blocks_left != 32'd0
        && want == 32'd0 && !pend;
    // Reading on stops where memory a unit writes begins, or at its end.
    wire        in_writable = (ahead >= ra_scratch_at && ahead < ra_scratch_end)
        || (ahead >= ra_kv_at && ahead < ra_kv_end) || ahead >= ra_mem_end;
    reg  [{{RA_AW_HI}}:0] lim;
    always @(*) begin
        lim = ra_mem_end;
        if (ahead < ra_scratch_at && ra_scratch_at < lim) lim = ra_scratch_at;
        if (ahead < ra_kv_at && ra_kv_at < lim) lim = ra_kv_at;
        if (in_writable) lim = ahead;
    end
    // A chunk: whole words, up to a FIFO's worth past `ahead` within `lim`.
    wire [{{RA_AW_HI}}:0] room = lim_q - ahead;
    wire [{{RA_AW_HI}}:0] spec_room = room > {{RA_AW}}'d{{RA_CHUNK_BYTES}} ? {{RA_AW}}'d{{RA_CHUNK_BYTES}} : room;
    // Reading on past a block's matrix only once no block of the command is left (a
    // later block reads the same matrix again: what lies past it would be dropped).
    wire        spec_ok = !running || blocks_left == 32'd0;
    wire [{{RA_AW_HI}}:0] chunk_end = spec_ok && spec_end > dem_end ? spec_end : dem_end;
    wire [{{RA_AW_HI}}:0] chunk_len = chunk_end - ahead;
    /* verilator lint_off UNUSEDSIGNAL */ // a chunk is a matrix or a FIFO at most: < 2^36
    wire [63:0] chunk_bytes = 64'(chunk_len);
    /* verilator lint_on UNUSEDSIGNAL */
    // The block's weights in the window's addresses (the sequencer keeps them inside
    // memory; any beyond the window's addresses never stand in it).
    wire        weights_fit = weights[63:{{RA_AW}}] == '0;
    /* verilator lint_off UNUSEDSIGNAL */ // inside memory: the window's bits suffice
    wire [63:0] weights_end = weights + {28'd0, matrix_beats, 4'd0};
    /* verilator lint_on UNUSEDSIGNAL */
    always @(posedge clk) begin
        if (ra_push) ra_mem[ra_wr] <= rb_data;
        if (ra_load) ra_out <= ra_mem[ra_rd];
        lim_q <= lim;
        spec_end <= ahead + (spec_room & ~{{RA_AW}}'d{{RA_WORD_MASK}});
        settling <= 1'b1;
        settled <= settling;
        ra_cmd_valid <= 1'b0;
        if (rst) begin
            ra_wr <= '0;
            ra_rd <= '0;
            ra_held <= '0;
            ra_out_valid <= 1'b0;
            win <= 1'b0;
            discard <= 1'b0;
            pend <= 1'b0;
            want <= 32'd0;
            dem_end <= '0;
            settling <= 1'b0;
            settled <= 1'b0;
        end else begin
            if (ra_push) ra_wr <= ra_wr + {{RA_AB}}'d1;
            if (ra_load) ra_rd <= ra_rd + {{RA_AB}}'d1;
            ra_held <= ra_held + {{RA_CB}}'(ra_push) - {{RA_CB}}'(ra_load);
            if (ra_load) ra_out_valid <= 1'b1;
            else if (ra_pop) ra_out_valid <= 1'b0;
            if (a_take) begin
                want <= want - 32'd{{WW}};
                base <= base + {{RA_AW}}'d{{RA_BEAT_BYTES}};
            end
            if (start) blocks_left <= rows_all;
            else if (weights_next) begin
                blocks_left <= blocks_left > 32'd{{TB}} ? blocks_left - 32'd{{TB}} : 32'd0;
                pend <= 1'b1;
                dem_end <= weights_end[{{RA_AW_HI}}:0];
            end
            // A block whose weights start where the window stands takes them; else the
            // window is emptied and stands at them.
            if (pend && !discard) begin
                if (win && weights_fit && base == weights[{{RA_AW_HI}}:0]) begin
                    pend <= 1'b0;
                    want <= matrix_beats;
                end else discard <= 1'b1;
            end
            if (emptied) begin
                discard <= 1'b0;
                win <= pend;
                base <= weights[{{RA_AW_HI}}:0];
                ahead <= weights[{{RA_AW_HI}}:0];
                settling <= 1'b0;
                settled <= 1'b0;
            end
            // A pass starts: what the window holds may be stale.
            if (ra_flush) begin
                win <= 1'b0;
                discard <= 1'b1;
            end
            // Reader A on: the block's weights, and a FIFO's worth past them.
            if (win && !discard && !pend && settled && ra_idle && chunk_end > ahead) begin
                ra_cmd_valid <= 1'b1;
                ra_cmd_addr <= 64'(ahead);
                ra_cmd_beats <= chunk_bytes[35:4];
                ahead <= chunk_end;
                settling <= 1'b0;
                settled <= 1'b0;
            end
        end
    end
"#;

const TILE_WALK: &str = r#"// The loop over (block of rows, row tile, K tile) of one Matmul: rows in blocks of the
// engine's token block, the matrix in tiles. `advance` moves to the next tile.
`default_nettype none
module tern_tile_walk (
    input  wire        clk,
    input  wire        rst,
    input  wire        start,
    input  wire [31:0] rows,
    input  wire [31:0] m,
    input  wire [31:0] k,
    input  wire        advance,
    output reg         over,
    output wire [{{NB_HI}}:0] n,       // rows of this block
    output wire [31:0] k_valid,        // activations of this K tile
    output wire [31:0] m_left,         // rows of the matrix from this row tile on
    output wire        first_c,
    output wire        last_c,
    output wire        last_r
);
    reg [31:0] rows_left, m_left_r, k_left, m_all, k_all;
    reg        first;
    assign n = rows_left > 32'd{{TB}} ? {{NB}}'d{{TB}} : rows_left[{{NB_HI}}:0];
    assign k_valid = k_left > 32'd{{KT}} ? 32'd{{KT}} : k_left;
    assign m_left = m_left_r;
    assign first_c = first;
    assign last_c = k_left <= 32'd{{KT}};
    assign last_r = m_left_r <= 32'd{{MT}};
    always @(posedge clk) begin
        if (rst) over <= 1'b1;
        else if (start) begin
            over <= rows == 32'd0;
            rows_left <= rows;
            m_all <= m;
            k_all <= k;
            m_left_r <= m;
            k_left <= k;
            first <= 1'b1;
        end else if (advance && !over) begin
            if (!last_c) begin
                k_left <= k_left - 32'd{{KT}};
                first <= 1'b0;
            end else begin
                k_left <= k_all;
                first <= 1'b1;
                if (!last_r) m_left_r <= m_left_r - 32'd{{MT}};
                else begin
                    m_left_r <= m_all;
                    if (rows_left <= 32'd{{TB}}) over <= 1'b1;
                    else rows_left <= rows_left - 32'd{{TB}};
                end
            end
        end
    end
endmodule
`default_nettype wire
"#;

const GEARBOX: &str = r#"// Words of 16 bytes in, up to IN a clock (fewer only when `in_words` says so), beats of
// OUT words out in order; `in_last` marks a pushed group's last word and `out_last`
// the beat that ends with it. When OUT is a multiple of IN and every push is whole,
// the beat is collected with no shifter.
`default_nettype none
module tern_word_gearbox #(
    parameter integer IN = 1,
    parameter integer OUT = 3,
    parameter integer CW = 8
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 in_valid,
    output wire                 in_ready,
    input  wire [128*IN-1:0]    in_data,
    /* verilator lint_off UNUSEDSIGNAL */ // whole pushes: the collector counts pushes
    input  wire [CW-1:0]        in_words,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire                 in_last,
    output wire                 out_valid,
    input  wire                 out_ready,
    output wire [128*OUT-1:0]   out_data,
    output wire                 out_last
);
    generate if (OUT % IN == 0) begin : g_collect
        localparam integer N = OUT / IN;
        reg [128*OUT-1:0] beat;
        reg [CW-1:0] have;
        reg last;
        wire [128*OUT-1:0] shifted;
        if (N == 1) begin : g_one
            assign shifted = in_data;
        end else begin : g_many
            assign shifted = {in_data, beat[128*OUT-1:128*IN]};
        end
        assign out_valid = have == CW'(N);
        wire pop = out_valid && out_ready;
        assign in_ready = !out_valid || out_ready;
        wire push = in_valid && in_ready;
        assign out_data = beat;
        assign out_last = last;
        always @(posedge clk) begin
            if (push) begin
                beat <= shifted;
                last <= in_last;
            end
            if (rst) have <= '0;
            else if (push) have <= pop ? CW'(1) : have + CW'(1);
            else if (pop) have <= '0;
        end
    end else begin : g_shift
        localparam integer S = IN + OUT - 1;
        reg [128*S-1:0] slots, next_slots;
        reg [S-1:0] flags, next_flags;
        reg [CW-1:0] n;
        assign out_valid = n >= CW'(OUT);
        wire pop = out_valid && out_ready;
        wire [CW-1:0] kept = pop ? n - CW'(OUT) : n;
        assign in_ready = {1'b0, kept} + (CW+1)'(IN) <= (CW+1)'(S);
        wire push = in_valid && in_ready;
        assign out_data = slots[128*OUT-1:0];
        assign out_last = flags[OUT-1];
        integer j, q;
        reg [CW-1:0] at;
        reg [127:0] word;
        always @(*) begin
            next_slots = pop ? slots >> (128*OUT) : slots;
            next_flags = pop ? flags >> OUT : flags;
            for (j = 0; j < S; j = j + 1) begin
                at = CW'(j) - kept;
                word = in_data[127:0];
                for (q = 1; q < IN; q = q + 1)
                    if (at == CW'(q)) word = in_data[128*q +: 128];
                if (push && CW'(j) >= kept && CW'(j) < kept + in_words) begin
                    next_slots[128*j +: 128] = word;
                    next_flags[j] = in_last && CW'(j) + CW'(1) == kept + in_words;
                end
            end
        end
        always @(posedge clk) begin
            slots <= next_slots;
            flags <= next_flags;
            if (rst) n <= '0;
            else n <= kept + (push ? in_words : CW'(0));
        end
    end endgenerate
endmodule
`default_nettype wire
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigBuilder;

    fn shape(ports: usize, p: usize, q: usize) -> MatmulUnitShape {
        MatmulUnitShape {
            ports,
            engine: ConfigBuilder::tlmm(3, p, q)
                .workload(4 * p, 2 * 3 * q, 1)
                .token_block(2)
                .build()
                .unwrap(),
            window: None,
        }
    }

    /// A shape whose beats do not fall on the ports' 16-byte beats is refused, naming
    /// what breaks.
    #[test]
    fn shapes_off_the_port_beats_are_refused() {
        assert!(shape(1, 8, 16).check().is_ok());
        assert!(shape(4, 8, 16).check().is_ok());
        let e = shape(3, 8, 16).check().unwrap_err();
        assert!(e.contains("3 ports"), "{e}");
        // 7 rows × 16 lanes × 5 bits = 560 bits: not whole port beats.
        let e = shape(1, 7, 16).check().unwrap_err();
        assert!(e.contains("weight beat of 560 bits"), "{e}");
        // Q·G = 24 activations: not whole port beats.
        let e = shape(1, 16, 8).check().unwrap_err();
        assert!(e.contains("chunk of 24"), "{e}");
    }

    /// A weight window is a power of two of engine beats, and its matrices whole words of
    /// the ports: the Verilog then carries the window (as wide as a beat) and its bounds.
    #[test]
    fn a_weight_window_is_checked_and_built() {
        let in_ram = |beats, address_bits, ram| MatmulUnitShape {
            window: Some(WeightWindow {
                beats,
                address_bits,
                ram,
            }),
            ..shape(4, 8, 16)
        };
        let with = |beats, address_bits| in_ram(beats, address_bits, WindowRam::Ultra);
        assert_eq!(crate::interconnect::memory_address_bits(1 << 32), 33);
        let v = matmul_unit_verilog(&with(64, 33)).unwrap().unit;
        assert!(v.contains("ra_mem [0:64-1]") && v.contains("input  wire [32:0]  ra_kv_end"));
        assert!(v.contains("(* ram_style = \"ultra\" *) reg [5*128-1:0] ra_mem"));
        // Where the part has no UltraRAM the window asks for block RAM.
        let v = matmul_unit_verilog(&in_ram(64, 33, WindowRam::Block))
            .unwrap()
            .unit;
        assert!(v.contains("(* ram_style = \"block\" *) reg [5*128-1:0] ra_mem"));
        let none = MatmulUnitShape {
            window: None,
            ..shape(4, 8, 16)
        };
        assert!(!matmul_unit_verilog(&none).unwrap().unit.contains("ra_mem"));
        for bad in [3, 8, 1 << 17] {
            let e = with(bad, 33).check().unwrap_err();
            assert!(e.contains(&format!("window of {bad} beats")), "{e}");
        }
        let e = with(64, 64).check().unwrap_err();
        assert!(e.contains("64 bits"), "{e}");
    }

    /// A matrix's image is its tiles back to back: 32 × 96 tiles, a 70 × 100 matrix is
    /// 3 × 2 of them, each 2 chunks × 4 row blocks of 5-word beats.
    #[test]
    fn the_weight_image_is_whole_tiles() {
        let s = shape(1, 8, 16);
        assert_eq!((s.tile_rows(), s.tile_k()), (32, 96));
        assert_eq!(s.tile_bytes(), 2 * 4 * 5 * 16);
        let w = vec![1i8; 70 * 100];
        let image = matmul_weight_image(&s, &w, 70, 100).unwrap();
        assert_eq!(image.len() as u64, 6 * s.tile_bytes());
        assert_eq!(image.len() as u64, s.matrix_bytes(70, 100));
        assert!(matches!(
            matmul_weight_image(&s, &w, 70, 99),
            Err(StreamError::WeightShape { .. })
        ));
    }
}
