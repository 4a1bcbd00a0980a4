//! `tern project`: what an engine would do for a whole model's ternary matmuls on a board,
//! from the exact cycle model (`tern_hdl::timing`) and the packed weight stream — decode
//! tokens/s and prefill time (time to first token).
//!
//! Each matmul is a roofline of its own: the engine's clocks for it (the control's
//! schedule, fill and drain included, the engine rebuilt for the matmul's M and K) against
//! its weight bytes at the board's DDR bandwidth, whichever is slower. Matmuls run one
//! after another. Attention, norms, the LM head and host time are not included: this is
//! the matmul engine's share of a token, a bound the whole system cannot beat.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

use tern_boards::Board;
use tern_hdl::streams::token_blocks;
use tern_hdl::timing::Schedule;
use tern_hdl::Config;
use tern_surrogate::workload::Workload;

/// One matmul of the workload on the engine.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulProjection {
    pub name: String,
    pub m: usize,
    pub k: usize,
    /// Matrices of this shape per token (per layer × layers).
    pub count: usize,
    /// Decode: clocks for one token (a block of one), fill and drain included.
    pub decode_cycles: u64,
    /// Decode: busy fraction (ideal / measured clocks).
    pub decode_utilisation: f64,
    /// Bytes of packed weight beats streamed once.
    pub weight_bytes: f64,
    /// Prefill of the longest prompt: clocks for all its tokens in blocks of T_b.
    pub prefill_cycles: u64,
}

/// The whole projection.
#[derive(Debug, Clone, Serialize)]
pub struct ModelProjection {
    pub engine: String,
    pub weights_per_clock: usize,
    pub token_block: usize,
    pub board: String,
    pub clock_mhz: f64,
    pub memory_gbyte_per_s: f64,
    /// What the top's read port moves: a bus word per clock while enough reads are in
    /// flight (`top_bytes_per_clock`).
    pub bus_gbyte_per_s: f64,
    pub workload: String,
    pub weights_per_token: u64,
    pub matmuls: Vec<MatmulProjection>,
    /// Decode: compute seconds, memory seconds, the per-matmul roofline total.
    pub decode_compute_s: f64,
    pub decode_memory_s: f64,
    pub decode_s_per_token: f64,
    pub decode_tokens_per_s: f64,
    /// Packed weight bytes per decoded token, and per prefilled token (blocks of T_b).
    pub decode_weight_bytes_per_token: f64,
    pub prefill_weight_bytes_per_token: f64,
    /// (prompt tokens, seconds) for each prompt length asked.
    pub prefill_s: Vec<(usize, f64)>,
}

/// Bytes per clock the top's read port sustains against the board memory's latency
/// (`memory.latency_ns`): a bus word per clock while enough bursts are in flight.
pub fn top_bytes_per_clock(engine: &Config, board: &Board, clock_mhz: f64) -> f64 {
    let latency_clocks = crate::memory::latency_clocks(&board.memory, clock_mhz);
    let top = &engine.top;
    top.bus_bytes() as f64
        * tern_surrogate::workload::feeder_fraction(
            top.reads_in_flight,
            top.burst_beats,
            latency_clocks,
        )
}

/// Seconds of one matmul run: compute against memory, whichever is slower.
fn roofline(cycles: u64, bytes: f64, clock_mhz: f64, gbyte_per_s: f64) -> (f64, f64, f64) {
    let compute = cycles as f64 / (clock_mhz * 1e6);
    let memory = bytes / (gbyte_per_s * 1e9);
    (compute, memory, compute.max(memory))
}

pub fn project(
    engine: &Config,
    workload: &Workload,
    board: &Board,
    clock_mhz: f64,
    prompts: &[usize],
) -> Result<ModelProjection> {
    // Weights stream at the slower of the DDR and the top's bus.
    let bus = tern_surrogate::workload::port_gbyte_per_s(
        top_bytes_per_clock(engine, board, clock_mhz),
        clock_mhz,
    );
    let bw = board.memory.gbyte_per_s.min(bus);
    let longest = prompts.iter().copied().max().unwrap_or(1).max(1);
    let mut matmuls = vec![];
    for mm in &workload.matmuls {
        let cfg = engine.with_workload(mm.m, mm.k, 1).with_context(|| {
            format!(
                "the engine cannot be built for {} ({}×{})",
                mm.name, mm.m, mm.k
            )
        })?;
        let geo = &cfg.geometry;
        let decode = Schedule::run_blocks(geo, &[1]);
        let weight_bytes = (geo.weight_beats_per_token() * geo.weight_beat_bits()) as f64 / 8.0;
        let prefill = Schedule::run(geo, longest);
        matmuls.push(MatmulProjection {
            name: mm.name.clone(),
            m: mm.m,
            k: mm.k,
            count: mm.per_layer * workload.layers,
            decode_cycles: decode.cycles,
            decode_utilisation: cfg.ideal_cycles() / decode.cycles as f64,
            weight_bytes,
            prefill_cycles: prefill.cycles,
        });
    }
    let (mut compute, mut memory, mut total) = (0.0, 0.0, 0.0);
    let mut bytes = 0.0;
    for m in &matmuls {
        let (c, mem, t) = roofline(m.decode_cycles, m.weight_bytes, clock_mhz, bw);
        compute += c * m.count as f64;
        memory += mem * m.count as f64;
        total += t * m.count as f64;
        bytes += m.weight_bytes * m.count as f64;
    }
    let tb = engine.geometry.token_block;
    let mut prefill_s = vec![];
    for &prompt in prompts {
        let blocks = token_blocks(prompt, tb).len();
        let mut seconds = 0.0;
        for (mm, m) in workload.matmuls.iter().zip(&matmuls) {
            let cfg = engine.with_workload(mm.m, mm.k, 1)?;
            let cycles = if prompt == longest {
                m.prefill_cycles
            } else {
                Schedule::run(&cfg.geometry, prompt).cycles
            };
            let (_, _, t) = roofline(cycles, m.weight_bytes * blocks as f64, clock_mhz, bw);
            seconds += t * m.count as f64;
        }
        prefill_s.push((prompt, seconds));
    }
    Ok(ModelProjection {
        engine: engine.engine.summary(),
        weights_per_clock: engine.geometry.weights_per_clock(),
        token_block: tb,
        board: board.name.clone(),
        clock_mhz,
        memory_gbyte_per_s: board.memory.gbyte_per_s,
        bus_gbyte_per_s: bus,
        workload: workload.name.clone(),
        weights_per_token: workload.weights_per_token(),
        matmuls,
        decode_compute_s: compute,
        decode_memory_s: memory,
        decode_s_per_token: total,
        decode_tokens_per_s: 1.0 / total,
        decode_weight_bytes_per_token: bytes,
        prefill_weight_bytes_per_token: bytes / tb as f64,
        prefill_s,
    })
}

pub fn print(p: &ModelProjection, workload: &Workload) {
    println!(
        "tern project: {} on {} at {:.0} MHz, DDR {:.1} GB/s, top bus {:.1} GB/s",
        p.engine, p.board, p.clock_mhz, p.memory_gbyte_per_s, p.bus_gbyte_per_s
    );
    println!(
        "  workload     {}: {}; {:.0}M ternary weights per token (matmuls only: attention, norms, LM head and host time not included)",
        p.workload,
        workload.description,
        p.weights_per_token as f64 / 1e6
    );
    println!("  matmul          m×k          count  decode clocks  util.   weight MB  prefill clocks ({} tokens)", p.prefill_s.iter().map(|x| x.0).max().unwrap_or(0));
    for m in &p.matmuls {
        println!(
            "  {:<14} {:>5}×{:<5} {:>6}  {:>13}  {:>5.3}  {:>10.3}  {:>14}",
            m.name,
            m.m,
            m.k,
            m.count,
            m.decode_cycles,
            m.decode_utilisation,
            m.weight_bytes / 1e6,
            m.prefill_cycles
        );
    }
    println!(
        "  decode       {:.2} ms compute, {:.2} ms weights ({:.1} MB/token): {:.2} ms/token = {:.1} tokens/s ({})",
        p.decode_compute_s * 1e3,
        p.decode_memory_s * 1e3,
        p.decode_weight_bytes_per_token / 1e6,
        p.decode_s_per_token * 1e3,
        p.decode_tokens_per_s,
        if p.decode_memory_s >= p.decode_compute_s {
            "weight bandwidth bound"
        } else {
            "compute bound"
        }
    );
    for (prompt, s) in &p.prefill_s {
        println!(
            "  prefill      {prompt} tokens: {:.3} s ({:.1} MB of weights per token in blocks of {})",
            s,
            p.prefill_weight_bytes_per_token / 1e6,
            p.token_block
        );
    }
}

pub fn run(
    config: &Path,
    workload: &str,
    board: Option<&str>,
    clock_mhz: Option<f64>,
    prompts: &[usize],
    json: Option<&Path>,
) -> Result<()> {
    let engine = Config::from_path(config)?;
    let board = match board.or(engine.board.as_deref()) {
        Some(b) => Board::resolve(b)?,
        None => Board::builtin("kv260")?,
    };
    let workload = Workload::resolve(workload)?;
    let clock = clock_mhz.unwrap_or(board.clock.default_mhz);
    if !(clock > 0.0 && clock < 2000.0) {
        anyhow::bail!("--clock-mhz {clock}: a clock in MHz, 0..2000");
    }
    let p = project(&engine, &workload, &board, clock, prompts)?;
    print(&p, &workload);
    if let Some(path) = json {
        tern_build::synth::cache::write_json(path, &p)?;
        println!("  report       {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_hdl::config::ConfigBuilder;

    #[test]
    fn decode_is_the_slower_of_compute_and_weights_and_blocks_cut_prefill_traffic() {
        let board = Board::builtin("kv260").unwrap();
        let w = Workload::resolve("small").unwrap();
        // 1536 weights/clock at 250 MHz wants 80 GB/s of 5-bit-per-3-weight codes: far
        // beyond the KV260's 19.2 GB/s, so weight traffic bounds it.
        let engine = |tb| {
            ConfigBuilder::tlmm(3, 32, 16)
                .token_block(tb)
                .workload(64, 64, 1)
                .build()
                .unwrap()
        };
        let one = project(&engine(1), &w, &board, 250.0, &[16]).unwrap();
        let four = project(&engine(4), &w, &board, 250.0, &[16]).unwrap();
        // Per matmul: at least the ideal clocks (M·K / weights per clock), and each
        // matmul's time is the slower of its two terms.
        for m in &one.matmuls {
            assert!(m.decode_cycles as f64 >= (m.m * m.k) as f64 / 1536.0);
            assert!(m.decode_utilisation > 0.0 && m.decode_utilisation <= 1.0);
        }
        assert!(one.decode_s_per_token >= one.decode_compute_s.max(one.decode_memory_s));
        assert!(one.decode_s_per_token <= one.decode_compute_s + one.decode_memory_s);
        assert!(
            one.decode_memory_s > one.decode_compute_s,
            "bandwidth bound"
        );
        // Weight bytes per token: G = 3 codes are 5 bits per 3 weights (plus padding).
        let expected = w.weights_per_token() as f64 * 5.0 / 3.0 / 8.0;
        assert!((one.decode_weight_bytes_per_token / expected - 1.0).abs() < 0.05);
        // Blocks of 4 read the weights a quarter as often, so a bandwidth-bound prefill
        // takes about a quarter of the time.
        assert!(
            (four.prefill_weight_bytes_per_token * 4.0 - four.decode_weight_bytes_per_token).abs()
                < 1.0
        );
        let speedup = one.prefill_s[0].1 / four.prefill_s[0].1;
        assert!((3.0..=4.0).contains(&speedup), "prefill speedup {speedup}");
    }

    #[test]
    fn weights_stream_no_faster_than_the_tops_bus() {
        let board = Board::builtin("kv260").unwrap();
        let w = Workload::resolve("small").unwrap();
        let engine = |bus_bits| {
            ConfigBuilder::tlmm(3, 32, 16)
                .top(tern_hdl::config::TopConfig {
                    bus_bits,
                    ..Default::default()
                })
                .workload(64, 64, 1)
                .build()
                .unwrap()
        };
        // At 250 MHz a 256-bit bus moves 8 GB/s and a 512-bit one 16 GB/s, both below
        // the KV260's 19.2 GB/s DDR: the bus is the bound and doubling it halves the time.
        let narrow = project(&engine(256), &w, &board, 250.0, &[]).unwrap();
        let wide = project(&engine(512), &w, &board, 250.0, &[]).unwrap();
        assert_eq!((narrow.bus_gbyte_per_s, wide.bus_gbyte_per_s), (8.0, 16.0));
        let expected = narrow.decode_weight_bytes_per_token / 8e9;
        assert!((narrow.decode_memory_s / expected - 1.0).abs() < 1e-9);
        let ratio = narrow.decode_memory_s / wide.decode_memory_s;
        assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    }
}
