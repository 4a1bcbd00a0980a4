//! The performance model: the one place that turns a design's clocks and bytes into
//! seconds on a board. `tern project`, the matmul and the whole-accelerator DSE and the
//! model bench all call it, so one design gets one figure everywhere.
//!
//! - **Clocks** come from the exact cycle models in `tern_hdl::timing` (checked against
//!   Verilator clock for clock), never from a fit.
//! - **Bytes** stream at the slower of the board's memory and the top's read port. The
//!   memory sustains its peak (`memory.gbyte_per_s`, the roofline reports also show) less
//!   what its DRAM timing takes from long reads (`[memory.dram]`: refresh;
//!   `Memory::sustained_gbyte_per_s`). The port moves a bus word per clock while enough
//!   reads are in flight to cover the memory's latency (`memory.latency_ns`, Little's
//!   law, [`feeder_fraction`]), and no more than the board's memory ports carry at the
//!   clock (`[[memory.ports]]`).
//! - **A kernel call** takes the slower of its clocks and its bytes (a roofline); calls
//!   run one after another, as the host issues them.
//! - **Matmuls** run as `tern generate` cuts them: every matrix in zero-padded tiles of
//!   the engine's own M × K (`Config::tiles_for`), one call per tile, all of a prompt's
//!   tokens in one call (its weights read once per token block).
//! - **Attention** runs per (layer, KV head) on `engines` tops side by side; a layer
//!   waits for the busiest top. Its clocks depend on the data (how many tiles raise a
//!   row's running maximum), so it is bounded: no rescale .. every tile rescaling; the
//!   seconds use the upper bound.
//! - **The LM head** is the host's: vocab × hidden bf16 weights read at what the memory
//!   sustains, a lower bound on its time.

use serde::{Deserialize, Serialize};

use tern_boards::{Board, Memory};
use tern_hdl::config::attention::AttentionConfig;
use tern_hdl::config::{ConfigError, TopConfig};
use tern_hdl::streams::attention::{schedule, tiles, RowSchedule};
use tern_hdl::streams::token_blocks;
use tern_hdl::timing::{attention_cycles, Schedule};
use tern_hdl::Config;

use crate::workload::{AttentionShape, ModelWorkload};

/// The model's version, recorded in DSE reports: 2 since the matmul prefill runs the
/// padded tiles `tern generate` runs (before: whole unpadded matrices); 3 since the
/// memory sustains its peak less its DRAM timing and ports cap the top's port (before:
/// the peak, and the top's port alone).
pub const VERSION: u32 = 3;

/// Tokens of the prompt whose time to first token the DSE minimises; decode is
/// projected at the context that prompt leaves.
pub const PROMPT_TOKENS: usize = 128;

/// The memory's read latency in whole clocks at `clock_mhz`.
pub fn latency_clocks(memory: &Memory, clock_mhz: f64) -> f64 {
    (memory.latency_ns * clock_mhz / 1e3).ceil()
}

/// The fraction of clocks the top's read port can be busy against a memory of
/// `latency_clocks`: `reads_in_flight` bursts of `burst_beats` must cover a burst's
/// round trip (Little's law), or the port idles while it waits.
pub fn feeder_fraction(reads_in_flight: usize, burst_beats: usize, latency_clocks: f64) -> f64 {
    let in_flight = (reads_in_flight * burst_beats) as f64;
    (in_flight / (burst_beats as f64 + latency_clocks)).min(1.0)
}

/// GB/s of a port that moves `bytes_per_clock` at `clock_mhz`.
pub fn port_gbyte_per_s(bytes_per_clock: f64, clock_mhz: f64) -> f64 {
    bytes_per_clock * clock_mhz / 1e3
}

/// Bytes per clock a top's read port sustains against `memory`: a bus word per clock
/// times [`feeder_fraction`].
pub fn port_bytes_per_clock(top: &TopConfig, memory: &Memory, clock_mhz: f64) -> f64 {
    let latency = latency_clocks(memory, clock_mhz);
    top.bus_bytes() as f64 * feeder_fraction(top.reads_in_flight, top.burst_beats, latency)
}

/// Fewest clocks that can move `read` and `written` bytes: the read and write channels
/// carry one bus word per clock each, and both share the memory's bandwidth (when known,
/// in bytes per clock).
pub fn bandwidth_bound(bus_bytes: f64, memory: Option<f64>, read: u64, written: u64) -> u64 {
    let channels = read.max(written) as f64 / bus_bytes;
    let shared = memory.map_or(0.0, |m| (read + written) as f64 / m);
    channels.max(shared).ceil() as u64
}

/// Where a top's bytes come from at a clock: the board's memory and the top's own port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stream {
    pub clock_mhz: f64,
    /// What the memory sustains for long reads (its peak less its DRAM timing).
    pub memory_gbyte_per_s: f64,
    /// What the top's port moves, within what the board's memory ports carry.
    pub port_gbyte_per_s: f64,
}

impl Stream {
    pub fn of(top: &TopConfig, board: &Board, clock_mhz: f64) -> Stream {
        let memory = &board.memory;
        let port = port_gbyte_per_s(port_bytes_per_clock(top, memory, clock_mhz), clock_mhz);
        Stream {
            clock_mhz,
            memory_gbyte_per_s: memory.sustained_gbyte_per_s(),
            port_gbyte_per_s: memory
                .ports_gbyte_per_s(clock_mhz)
                .map_or(port, |ports| port.min(ports)),
        }
    }

    /// The slower of the memory and the port.
    pub fn gbyte_per_s(&self) -> f64 {
        self.memory_gbyte_per_s.min(self.port_gbyte_per_s)
    }

    /// One kernel call: its clocks against its bytes, whichever is slower.
    pub fn call_s(&self, clocks: u64, bytes: f64) -> f64 {
        (clocks as f64 / (self.clock_mhz * 1e6)).max(bytes / (self.gbyte_per_s() * 1e9))
    }
}

/// The decode-rate projection of one engine on one workload: a roofline of compute
/// (clocks at a clock rate) and weight streaming (bytes at the board's bandwidth).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Projection {
    /// Engine clocks per token (all tiles of all matmuls of all layers).
    pub cycles_per_token: f64,
    pub clock_mhz: f64,
    /// Where the clock came from: `fmax (predicted)`, `fmax (nextpnr)` or
    /// `board clock (no router)`.
    pub clock_source: String,
    pub compute_s: f64,
    /// Packed weight bytes streamed per token.
    pub weight_bytes: f64,
    pub memory_gbyte_per_s: f64,
    /// What the top's read port can move (none: not limited).
    #[serde(default)]
    pub bus_gbyte_per_s: Option<f64>,
    /// Weight bytes at the slower of the memory and the bus.
    pub memory_s: f64,
    pub tokens_per_s: f64,
    /// `compute`, `memory` (the board's DDR) or `bus` (the top's read port).
    pub bound: String,
}

impl Projection {
    /// `cycles` at the stream's clock against `bytes` at its rate. One tile shape runs
    /// every call, so the sum of the calls' rooflines is the roofline of the sums.
    pub fn new(cycles: f64, bytes: f64, stream: &Stream, clock_source: &str) -> Projection {
        let compute_s = cycles / (stream.clock_mhz * 1e6);
        let memory_s = bytes / (stream.gbyte_per_s() * 1e9);
        let slowest = compute_s.max(memory_s);
        Projection {
            cycles_per_token: cycles,
            clock_mhz: stream.clock_mhz,
            clock_source: clock_source.into(),
            compute_s,
            weight_bytes: bytes,
            memory_gbyte_per_s: stream.memory_gbyte_per_s,
            bus_gbyte_per_s: Some(stream.port_gbyte_per_s),
            memory_s,
            tokens_per_s: if slowest > 0.0 { 1.0 / slowest } else { 0.0 },
            bound: if compute_s >= memory_s {
                "compute".into()
            } else if stream.port_gbyte_per_s < stream.memory_gbyte_per_s {
                "bus".into()
            } else {
                "memory".into()
            },
        }
    }

    /// Seconds per token.
    pub fn seconds(&self) -> f64 {
        self.compute_s.max(self.memory_s)
    }
}

/// Bytes of packed weights: `1 + index bits` per group of `g` weights.
pub fn packed_bytes(weights: u64, group: usize) -> f64 {
    let index_bits = tern_hdl::weights::index_bits(group);
    weights as f64 * (1 + index_bits) as f64 / group as f64 / 8.0
}

/// A matmul engine as it runs a model: one tile of its own M × K, called once per tile.
#[derive(Debug, Clone)]
pub struct TiledEngine {
    /// The engine built for one token of one tile.
    pub tile: Config,
    /// Clocks of one decode call (a token block of one), fill and drain included.
    pub decode_cycles: u64,
    /// Packed weight bytes one call streams (once per token block).
    pub weight_bytes: f64,
}

/// One matmul entry of a workload on a [`TiledEngine`].
#[derive(Debug, Clone, Serialize)]
pub struct MatmulTiles {
    pub name: String,
    pub m: usize,
    pub k: usize,
    /// Matrices of this shape per token (per layer × layers).
    pub count: usize,
    /// Tiles one matrix is cut into (rows × columns of tiles).
    pub tiles: usize,
}

impl TiledEngine {
    pub fn new(engine: &Config) -> Result<TiledEngine, ConfigError> {
        let tile = engine.with_workload(engine.workload.m, engine.workload.k, 1)?;
        let geo = &tile.geometry;
        Ok(TiledEngine {
            decode_cycles: Schedule::run(geo, 1).cycles,
            weight_bytes: (geo.weight_beats_per_token() * geo.weight_beat_bits()) as f64 / 8.0,
            tile,
        })
    }

    /// Each matmul of `w`: how many matrices a token has and how many tiles each takes.
    pub fn matmuls(&self, w: &ModelWorkload) -> Vec<MatmulTiles> {
        w.matmuls
            .iter()
            .map(|mm| {
                let (rows, columns) = self.tile.tiles_for(mm.m, mm.k);
                MatmulTiles {
                    name: mm.name.clone(),
                    m: mm.m,
                    k: mm.k,
                    count: mm.per_layer * w.layers,
                    tiles: rows * columns,
                }
            })
            .collect()
    }

    /// Kernel calls (tiles) per token: one per tile of every matmul of every layer.
    pub fn calls_per_token(&self, w: &ModelWorkload) -> u64 {
        self.matmuls(w)
            .iter()
            .map(|m| (m.tiles * m.count) as u64)
            .sum()
    }

    /// Decode: every tile once for one token.
    pub fn decode(&self, w: &ModelWorkload, stream: &Stream, clock_source: &str) -> Projection {
        let calls = self.calls_per_token(w) as f64;
        Projection::new(
            calls * self.decode_cycles as f64,
            calls * self.weight_bytes,
            stream,
            clock_source,
        )
    }

    /// Clocks of one call that runs a prompt of `tokens` in blocks of T_b.
    pub fn prefill_cycles(&self, tokens: usize) -> u64 {
        Schedule::run(&self.tile.geometry, tokens).cycles
    }

    /// Prefill of a `prompt`-token prompt: every tile once with all its tokens, the
    /// weights read once per token block.
    pub fn prefill_s(&self, w: &ModelWorkload, prompt: usize, stream: &Stream) -> f64 {
        let blocks = token_blocks(prompt, self.tile.geometry.token_block).len();
        let call = stream.call_s(
            self.prefill_cycles(prompt),
            self.weight_bytes * blocks as f64,
        );
        self.calls_per_token(w) as f64 * call
    }
}

/// What the busiest attention top does for one model step, from the cycle model.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AttentionTiming {
    /// Clocks of the prompt's prefill (every layer), no rescale .. every tile rescaling.
    pub prefill_clocks: (u64, u64),
    /// Clocks of one decode token at a context of the prompt + 1.
    pub decode_clocks: (u64, u64),
    /// K/V bytes the busiest top reads (each tile once per block of query rows).
    pub prefill_kv_bytes: f64,
    pub decode_kv_bytes: f64,
    /// Seconds: the upper clock bound against the K/V bytes at the slower of the memory
    /// (shared by every top) and the top's own port.
    pub prefill_s: f64,
    pub decode_s: f64,
}

/// One attention call's clocks for `rows` (no rescale, every tile after the first
/// rescaling) and the K/V bytes it reads.
pub fn attention_call(cfg: &AttentionConfig, rows: &[RowSchedule]) -> ((u64, u64), f64) {
    let tile = cfg.attention.tile;
    let none = vec![0; rows.len()];
    let every: Vec<usize> = rows
        .iter()
        .map(|r| tiles(r.kv_len, tile).count().saturating_sub(1))
        .collect();
    let clocks = (
        attention_cycles(cfg, rows, &none),
        attention_cycles(cfg, rows, &every),
    );
    // Each block of `query_block` rows streams its longest row's tiles once: K and V,
    // `head_dim` int8 each per key.
    let bytes: usize = rows
        .chunks(cfg.attention.query_block.max(1))
        .map(|b| b.iter().map(|r| r.kv_len).max().unwrap_or(0) * 2 * cfg.attention.head_dim)
        .sum();
    (clocks, bytes as f64)
}

/// The busiest of `engines` attention tops over a model step: a `prompt`-token prompt's
/// rows per query head (causal, from position 0), decode rows per KV head (its query
/// heads, non-causal) at a context of `prompt + 1`. KV head `h` runs on top
/// `h mod engines`.
pub fn attention_step(
    cfg: &AttentionConfig,
    shape: &AttentionShape,
    layers: usize,
    engines: usize,
    prompt: usize,
    stream: &Stream,
) -> AttentionTiming {
    let tile = cfg.attention.tile;
    let kv_per_engine = shape.kv_heads.div_ceil(engines.max(1));
    let busiest = (layers * kv_per_engine) as u64;
    let all = (layers * shape.kv_heads) as f64;
    let rows = schedule(0, prompt, prompt, true, tile);
    let (pc, pb) = attention_call(cfg, &rows);
    let context = prompt + 1;
    let decode = schedule(context - 1, shape.group(), context, false, tile);
    let (dc, db) = attention_call(cfg, &decode);
    let group = shape.group() as u64;
    let prefill_clocks = (busiest * group * pc.0, busiest * group * pc.1);
    let decode_clocks = (busiest * dc.0, busiest * dc.1);
    // The busiest top's bytes go through its own port; every top's share the memory.
    let seconds = |clocks: u64, busiest_bytes: f64, all_bytes: f64| {
        (clocks as f64 / (stream.clock_mhz * 1e6))
            .max(busiest_bytes / (stream.port_gbyte_per_s * 1e9))
            .max(all_bytes / (stream.memory_gbyte_per_s * 1e9))
    };
    let (prefill_kv_bytes, decode_kv_bytes) =
        (busiest as f64 * group as f64 * pb, busiest as f64 * db);
    AttentionTiming {
        prefill_clocks,
        decode_clocks,
        prefill_kv_bytes,
        decode_kv_bytes,
        prefill_s: seconds(prefill_clocks.1, prefill_kv_bytes, all * group as f64 * pb),
        decode_s: seconds(decode_clocks.1, decode_kv_bytes, all * db),
    }
}

/// The host's LM head: `vocab × hidden` bf16 weights read per token at
/// `memory_gbyte_per_s` (what the memory sustains: a lower bound on its time).
pub fn lm_head_s(vocab: usize, hidden: usize, memory_gbyte_per_s: f64) -> f64 {
    (vocab * hidden * 2) as f64 / (memory_gbyte_per_s * 1e9)
}

/// A whole token on the accelerator: the matmul top's and the attention tops' kernels
/// run one after the other, so their seconds add.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TokenTime {
    pub decode_tokens_per_s: f64,
    /// Time to first token of the prompt (kernels only).
    pub ttft_s: f64,
}

impl TokenTime {
    pub fn new(matmul_decode_s: f64, matmul_prefill_s: f64, attention: &AttentionTiming) -> Self {
        TokenTime {
            decode_tokens_per_s: 1.0 / (matmul_decode_s + attention.decode_s),
            ttft_s: matmul_prefill_s + attention.prefill_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stream(mhz: f64, memory: f64, port: f64) -> Stream {
        Stream {
            clock_mhz: mhz,
            memory_gbyte_per_s: memory,
            port_gbyte_per_s: port,
        }
    }

    #[test]
    fn roofline_picks_the_slower_term() {
        // 1e6 clocks at 100 MHz = 10 ms; 1 GB at 10 GB/s = 100 ms → memory bound, 10 tok/s.
        let s = stream(100.0, 10.0, f64::INFINITY);
        let p = Projection::new(1e6, 1e9, &s, "board clock (no router)");
        assert_eq!(p.bound, "memory");
        assert!((p.tokens_per_s - 10.0).abs() < 1e-9);
        let p = Projection::new(1e8, 1e9, &s, "x");
        assert_eq!(p.bound, "compute");
        assert!((p.tokens_per_s - 1.0).abs() < 1e-9);
        // A 32-byte bus at 100 MHz moves 3.2 GB/s: slower than the 10 GB/s memory.
        let p = Projection::new(1e6, 1e9, &stream(100.0, 10.0, 3.2), "x");
        assert_eq!(p.bound, "bus");
        assert!((p.tokens_per_s - 3.2).abs() < 1e-9);
        // A 12.8 GB/s bus leaves the memory as the bound.
        let p = Projection::new(1e6, 1e9, &stream(100.0, 10.0, 12.8), "x");
        assert_eq!(p.bound, "memory");
    }

    #[test]
    fn too_few_reads_in_flight_idle_the_bus() {
        // Two bursts of 64 beats cover a 36-clock round trip; two of 16 do not.
        assert_eq!(feeder_fraction(2, 64, 36.0), 1.0);
        let f = feeder_fraction(2, 16, 36.0);
        assert!((f - 32.0 / 52.0).abs() < 1e-12, "{f}");
        assert_eq!(feeder_fraction(4, 16, 36.0), 1.0);
    }

    #[test]
    fn a_transfer_needs_its_bus_words_and_its_share_of_the_memory() {
        // 640 bytes read, 64 written on a 32-byte bus: 20 read beats; a memory of
        // 16 B/clock needs 44 clocks for all 704 bytes.
        assert_eq!(bandwidth_bound(32.0, None, 640, 64), 20);
        assert_eq!(bandwidth_bound(32.0, Some(16.0), 640, 64), 44);
    }

    fn kv260(cfg: &AttentionConfig) -> Stream {
        Stream::of(&cfg.top, &Board::builtin("kv260").unwrap(), 300.0)
    }

    fn kv260_attention() -> AttentionConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model/kv260/attention.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        AttentionConfig::from_toml(&text, &path.display().to_string()).unwrap()
    }

    /// A top's bytes come at the memory's sustained rate (its peak less refresh), through
    /// a port no faster than the board's memory ports: at 400 MHz a 512-bit top could
    /// move 25.6 GB/s, the KV260's four 128-bit HP ports carry 4 × 16 B × 333 MHz.
    #[test]
    fn the_memory_sustains_less_than_its_peak_and_the_ports_cap_the_top() {
        let board = Board::builtin("kv260").unwrap();
        let top = TopConfig {
            bus_bits: 512,
            ..TopConfig::default()
        };
        let s = Stream::of(&top, &board, 400.0);
        assert_eq!(s.memory_gbyte_per_s, board.memory.sustained_gbyte_per_s());
        assert!(s.memory_gbyte_per_s < board.memory.gbyte_per_s);
        assert!((s.port_gbyte_per_s - 4.0 * 16.0 * 333.0 / 1e3).abs() < 1e-9);
        assert_eq!(s.gbyte_per_s(), s.memory_gbyte_per_s);
        // At 250 MHz the ports carry 16 GB/s: they, not the DDR, bound the stream.
        let s = Stream::of(&top, &board, 250.0);
        assert!((s.gbyte_per_s() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn tops_side_by_side_split_the_kv_heads_and_context_costs_decode_clocks() {
        let cfg = kv260_attention();
        let w = crate::workload::ModelWorkload::resolve("bitnet-0.73b").unwrap();
        let shape = w.attention.unwrap();
        let one = attention_step(&cfg, &shape, w.layers, 1, PROMPT_TOKENS, &kv260(&cfg));
        let two = attention_step(&cfg, &shape, w.layers, 2, PROMPT_TOKENS, &kv260(&cfg));
        let three = attention_step(&cfg, &shape, w.layers, 3, PROMPT_TOKENS, &kv260(&cfg));
        assert!(one.prefill_clocks.0 < one.prefill_clocks.1);
        assert!(one.decode_clocks.0 <= one.decode_clocks.1);
        // 16 KV heads: 8 on each of two tops; three tops wait for the one with 6.
        assert_eq!(two.prefill_clocks.1 * 2, one.prefill_clocks.1);
        assert_eq!(three.prefill_clocks.1 * 16, one.prefill_clocks.1 * 6);
        assert!(two.prefill_s < one.prefill_s && two.decode_s < one.decode_s);
        // The prompt's bound is the cycle model's, one call per (layer, query head).
        let rows = schedule(0, PROMPT_TOKENS, PROMPT_TOKENS, true, cfg.attention.tile);
        let lo = attention_cycles(&cfg, &rows, &vec![0; rows.len()]);
        assert_eq!(one.prefill_clocks.0, lo * (w.layers * shape.heads) as u64);
        // GQA (2B): four query heads per KV head share one decode call.
        let w2 = crate::workload::ModelWorkload::resolve("bitnet-2b").unwrap();
        let mut c2 = cfg.to_toml().replace("head_dim = 96", "head_dim = 128");
        c2 = c2.replace("board = \"kv260\"\n", "");
        let c2 = AttentionConfig::from_toml(&c2, "2b").unwrap();
        let t2 = attention_step(
            &c2,
            &w2.attention.unwrap(),
            w2.layers,
            1,
            PROMPT_TOKENS,
            &kv260(&c2),
        );
        let rows = schedule(
            PROMPT_TOKENS,
            4,
            PROMPT_TOKENS + 1,
            false,
            c2.attention.tile,
        );
        let every: Vec<usize> = rows
            .iter()
            .map(|r| tiles(r.kv_len, c2.attention.tile).count() - 1)
            .collect();
        assert_eq!(
            t2.decode_clocks.1,
            attention_cycles(&c2, &rows, &every) * (w2.layers * 5) as u64
        );
    }
}
