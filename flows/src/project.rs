//! `tern project`: what an engine would do for a whole model's ternary matmuls on a board,
//! from the performance model (`tern_dse::performance`): decode tokens/s and prefill time
//! (time to first token).
//!
//! The matmuls run as `tern generate` cuts them: zero-padded tiles of the engine's own
//! M × K, one kernel call per tile, each the slower of its clocks (the exact cycle model,
//! fill and drain included) and its weight bytes at the slower of the board's DDR and the
//! top's read port. Attention, norms, the LM head and host time are not included: this
//! is the matmul engine's share of a token, a bound the whole system cannot beat.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

use tern_boards::Board;
use tern_dse::performance::{attention_step, AttentionTiming, Stream, TiledEngine, TokenTime};
use tern_dse::workload::ModelWorkload;
use tern_hdl::config::accelerator::Accelerator;
use tern_hdl::Config;

/// One matmul of the workload on the engine.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulProjection {
    pub name: String,
    pub m: usize,
    pub k: usize,
    /// Matrices of this shape per token (per layer × layers).
    pub count: usize,
    /// Tiles (kernel calls) one matrix is cut into.
    pub tiles: usize,
    /// Decode: clocks for one token of one matrix (all its tiles), fill and drain included.
    pub decode_cycles: u64,
    /// Decode: busy fraction (ideal clocks of the unpadded matrix / clocks).
    pub decode_busy: f64,
    /// Bytes of packed weight beats one matrix streams once (its padded tiles).
    pub weight_bytes: f64,
    /// Prefill of the longest prompt: clocks of one matrix for all its tokens in blocks
    /// of T_b.
    pub prefill_cycles: u64,
}

/// The whole projection.
#[derive(Debug, Clone, Serialize)]
pub struct ModelProjection {
    pub engine: String,
    pub weights_per_clock: usize,
    pub token_block: usize,
    /// The tile the engine is built for (its `[workload]` m × k).
    pub tile: (usize, usize),
    pub board: String,
    pub clock_mhz: f64,
    /// The memory's peak: the roofline.
    pub memory_gbyte_per_s: f64,
    /// What it sustains for long reads (its peak less its DRAM timing): what the
    /// figures below use.
    pub sustained_gbyte_per_s: f64,
    /// What the top's read port moves: a bus word per clock while enough reads are in
    /// flight (`tern_dse::performance::port_bytes_per_clock`).
    pub bus_gbyte_per_s: f64,
    pub workload: String,
    pub weights_per_token: u64,
    /// Kernel calls (tiles) per decoded token.
    pub calls_per_token: u64,
    pub matmuls: Vec<MatmulProjection>,
    /// Decode: compute seconds, memory seconds, the roofline total.
    pub decode_compute_s: f64,
    pub decode_memory_s: f64,
    pub decode_s_per_token: f64,
    pub decode_tokens_per_s: f64,
    /// Packed weight bytes per decoded token, and per prefilled token (blocks of T_b).
    pub decode_weight_bytes_per_token: f64,
    pub prefill_weight_bytes_per_token: f64,
    /// (prompt tokens, seconds) for each prompt length asked.
    pub prefill_s: Vec<(usize, f64)>,
    /// With an accelerator description: its attention tops and the whole token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<AcceleratorProjection>,
}

/// The attention tops of an accelerator beside the matmul top, and the whole token's
/// kernels (matmul, then attention, one after the other).
#[derive(Debug, Clone, Serialize)]
pub struct AcceleratorProjection {
    pub name: String,
    pub attention_engines: usize,
    pub attention_port_gbyte_per_s: f64,
    /// Per prompt length: the attention tops' timing of that prompt (decode at the
    /// context it leaves) and the whole token's figures.
    pub prompts: Vec<PromptProjection>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptProjection {
    pub prompt: usize,
    pub attention: AttentionTiming,
    pub token: TokenTime,
}

pub fn project(
    engine: &Config,
    workload: &ModelWorkload,
    board: &Board,
    clock_mhz: f64,
    prompts: &[usize],
) -> Result<ModelProjection> {
    let tiled = TiledEngine::new(engine).context("the engine cannot be built for one token")?;
    let stream = Stream::of(&engine.top, board, clock_mhz);
    let decode = tiled.decode(workload, &stream, "clock");
    let longest = prompts.iter().copied().max().unwrap_or(1).max(1);
    let prefill_call = tiled.prefill_cycles(longest);
    let wpc = engine.geometry.weights_per_clock() as f64;
    let matmuls = tiled
        .matmuls(workload)
        .into_iter()
        .map(|t| {
            let tiles = t.tiles as u64;
            let decode_cycles = tiles * tiled.decode_cycles;
            MatmulProjection {
                decode_busy: (t.m * t.k) as f64 / wpc / decode_cycles as f64,
                decode_cycles,
                weight_bytes: tiles as f64 * tiled.weight_bytes,
                prefill_cycles: tiles * prefill_call,
                name: t.name,
                m: t.m,
                k: t.k,
                count: t.count,
                tiles: t.tiles,
            }
        })
        .collect();
    let tb = engine.geometry.token_block;
    Ok(ModelProjection {
        engine: engine.engine.summary(),
        weights_per_clock: engine.geometry.weights_per_clock(),
        token_block: tb,
        tile: (engine.workload.m, engine.workload.k),
        board: board.name.clone(),
        clock_mhz,
        memory_gbyte_per_s: board.memory.gbyte_per_s,
        sustained_gbyte_per_s: stream.memory_gbyte_per_s,
        bus_gbyte_per_s: stream.port_gbyte_per_s,
        workload: workload.name.clone(),
        weights_per_token: workload.weights_per_token(),
        calls_per_token: tiled.calls_per_token(workload),
        matmuls,
        decode_compute_s: decode.compute_s,
        decode_memory_s: decode.memory_s,
        decode_s_per_token: decode.seconds(),
        decode_tokens_per_s: decode.tokens_per_s,
        decode_weight_bytes_per_token: decode.weight_bytes,
        prefill_weight_bytes_per_token: decode.weight_bytes / tb as f64,
        prefill_s: prompts
            .iter()
            .map(|&p| (p, tiled.prefill_s(workload, p, &stream)))
            .collect(),
        accelerator: None,
    })
}

/// [`project`] for a whole accelerator: its matmul top, and its attention tops on the
/// workload's heads.
pub fn project_accelerator(
    acc: &Accelerator,
    workload: &ModelWorkload,
    board: &Board,
    clock_mhz: f64,
    prompts: &[usize],
) -> Result<ModelProjection> {
    let mut p = project(&acc.matmul, workload, board, clock_mhz, prompts)?;
    let Some(shape) = workload.attention else {
        anyhow::bail!(
            "workload {} has no attention heads: project the matmul top alone with --config",
            workload.name
        );
    };
    let head_dim = acc.attention.attention.head_dim;
    if shape.head_dim != head_dim {
        anyhow::bail!(
            "{}: the attention top is built for heads of {head_dim}; {} has heads of {}",
            acc.attention_path.display(),
            workload.name,
            shape.head_dim
        );
    }
    let stream = Stream::of(&acc.attention.top, board, clock_mhz);
    let prompts = p
        .prefill_s
        .iter()
        .map(|&(prompt, matmul_prefill_s)| {
            let attention = attention_step(
                &acc.attention,
                &shape,
                workload.layers,
                acc.attention_engines,
                prompt,
                &stream,
            );
            PromptProjection {
                prompt,
                token: TokenTime::new(p.decode_s_per_token, matmul_prefill_s, &attention),
                attention,
            }
        })
        .collect();
    p.accelerator = Some(AcceleratorProjection {
        name: acc.name.clone(),
        attention_engines: acc.attention_engines,
        attention_port_gbyte_per_s: stream.port_gbyte_per_s,
        prompts,
    });
    Ok(p)
}

pub fn print(p: &ModelProjection, workload: &ModelWorkload) {
    println!(
        "tern project: {} on {} at {:.0} MHz, DDR {:.1} GB/s peak ({:.2} sustained), top bus {:.1} GB/s",
        p.engine,
        p.board,
        p.clock_mhz,
        p.memory_gbyte_per_s,
        p.sustained_gbyte_per_s,
        p.bus_gbyte_per_s
    );
    println!(
        "  workload     {}: {}; {:.0}M ternary weights per token (matmuls only: attention, norms, LM head and host time not included)",
        p.workload,
        workload.description,
        p.weights_per_token as f64 / 1e6
    );
    println!(
        "  tiles        {}×{} zero-padded, one kernel call each: {} calls per token",
        p.tile.0, p.tile.1, p.calls_per_token
    );
    println!("  matmul          m×k          count  tiles  decode clocks  util.   weight MB  prefill clocks ({} tokens)", p.prefill_s.iter().map(|x| x.0).max().unwrap_or(0));
    for m in &p.matmuls {
        println!(
            "  {:<14} {:>5}×{:<5} {:>6}  {:>5}  {:>13}  {:>5.3}  {:>10.3}  {:>14}",
            m.name,
            m.m,
            m.k,
            m.count,
            m.tiles,
            m.decode_cycles,
            m.decode_busy,
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
    if let Some(a) = &p.accelerator {
        println!(
            "  attention    {} top(s) of accelerator {}, {:.1} GB/s port each; upper bound (every tile rescaling)",
            a.attention_engines, a.name, a.attention_port_gbyte_per_s
        );
        for x in &a.prompts {
            println!(
                "  token        prompt {}: TTFT {:.3} s (attention {:.3} s); decode at context {}: attention {:.2} ms, {:.1} tokens/s of kernels",
                x.prompt,
                x.token.ttft_s,
                x.attention.prefill_s,
                x.prompt + 1,
                x.attention.decode_s * 1e3,
                x.token.decode_tokens_per_s
            );
        }
    }
}

/// What `tern project` projects: one matmul top, or a whole accelerator.
pub enum Design<'a> {
    Matmul(&'a Path),
    Accelerator(&'a Path),
}

pub fn run(
    design: Design,
    workload: &str,
    board: Option<&str>,
    clock_mhz: Option<f64>,
    prompts: &[usize],
    json: Option<&Path>,
) -> Result<()> {
    let (engine, acc) = match design {
        Design::Matmul(path) => (Config::from_path(path)?, None),
        Design::Accelerator(path) => {
            let acc = Accelerator::from_path(path)?;
            (acc.matmul.clone(), Some(acc))
        }
    };
    let board = match board.or(engine.board.as_deref()) {
        Some(b) => Board::resolve(b)?,
        None => Board::builtin("kv260")?,
    };
    let workload = ModelWorkload::resolve(workload)?;
    let clock = clock_mhz
        .or(acc.as_ref().and_then(|a| a.clock_mhz))
        .unwrap_or(board.clock.default_mhz);
    if !(clock > 0.0 && clock < 2000.0) {
        anyhow::bail!("--clock-mhz {clock}: a clock in MHz, 0..2000");
    }
    let p = match &acc {
        Some(acc) => project_accelerator(acc, &workload, &board, clock, prompts)?,
        None => project(&engine, &workload, &board, clock, prompts)?,
    };
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
        let w = ModelWorkload::resolve("small").unwrap();
        // 1536 weights/clock at 250 MHz wants 80 GB/s of 5-bit-per-3-weight codes: far
        // beyond the KV260's 19.2 GB/s, so weight traffic bounds it.
        let engine = |tb| {
            ConfigBuilder::tlmm(3, 32, 16)
                .token_block(tb)
                .workload(512, 528, 1)
                .build()
                .unwrap()
        };
        let one = project(&engine(1), &w, &board, 250.0, &[16]).unwrap();
        let four = project(&engine(4), &w, &board, 250.0, &[16]).unwrap();
        // Per matmul: at least the ideal clocks (M·K / weights per clock) and one call
        // per padded tile.
        for m in &one.matmuls {
            assert!(m.decode_cycles as f64 >= (m.m * m.k) as f64 / 1536.0);
            assert!(m.decode_busy > 0.0 && m.decode_busy <= 1.0);
            assert_eq!(m.tiles, m.m.div_ceil(512) * m.k.div_ceil(528), "{}", m.name);
        }
        assert!(one.decode_s_per_token >= one.decode_compute_s.max(one.decode_memory_s));
        assert!(one.decode_s_per_token <= one.decode_compute_s + one.decode_memory_s);
        assert!(
            one.decode_memory_s > one.decode_compute_s,
            "bandwidth bound"
        );
        // Weight bytes per token: G = 3 codes are 5 bits per 3 weights, of the padded
        // tiles.
        let padded: usize = one.matmuls.iter().map(|m| m.tiles * m.count).sum();
        let expected = (padded * 512 * 528) as f64 * 5.0 / 3.0 / 8.0;
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
        let w = ModelWorkload::resolve("small").unwrap();
        let engine = |bus_bits| {
            ConfigBuilder::tlmm(3, 32, 16)
                .top(tern_hdl::config::TopConfig {
                    bus_bits,
                    ..Default::default()
                })
                .workload(512, 528, 1)
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
