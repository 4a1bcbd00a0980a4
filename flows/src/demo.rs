//! `tern demo`: the main job on the default config — generate, lint, co-simulate,
//! measure utilisation, synthesise for the config's board, and print a short report.

use anyhow::{bail, Result};
use std::path::Path;
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::{generate, write_design, Config};
use tern_sim::verilator::ModelCache;

use crate::files::find_in_repo;
use crate::rtl::cosim::{self, Handshakes};
use crate::rtl::lint;
use tern_build::synth::{self, SynthOptions, SynthOutcome};

/// Real synthesis for the config's board (Yosys; cached), with a fit verdict.
fn synthesis(design: &tern_hdl::Design, board: &Board) -> Result<bool> {
    let opts = SynthOptions::new(tern_sim::verilator::default_cache_root());
    let run = synth::synthesize(design, board, &opts)?;
    let r = &run.record;
    let how = if run.cached {
        "cached".to_string()
    } else {
        format!("{:.1} s", r.tool_seconds)
    };
    match &r.outcome {
        SynthOutcome::Ok {
            usage,
            utilisation,
            fits,
            timing_estimate,
            ..
        } => {
            let pct = |name: &str| {
                utilisation
                    .iter()
                    .find(|u| u.resource == name)
                    .map(|u| u.percent)
                    .unwrap_or(0.0)
            };
            println!(
                "  synth        {}: {} LUT ({:.1}%), {} FF ({:.1}%), {} DSP, {} BRAM: {} on {} ({how})",
                r.yosys,
                usage.luts,
                pct("LUT"),
                usage.ffs,
                pct("FF"),
                usage.dsps,
                usage.bram_blocks,
                if *fits { "fits" } else { "does NOT fit" },
                board.name
            );
            if let Some(t) = timing_estimate {
                println!(
                    "  timing       no open router for {}: unrouted logic delay {:.2} ns, {} LUT levels (an estimate, not an Fmax)",
                    board.family.name(),
                    t.logic_delay_ns,
                    t.lut_levels
                );
            }
            Ok(true)
        }
        other => {
            println!("  synth        {}", synth::outcome_summary(other));
            Ok(false)
        }
    }
}

pub fn run(config: &Path, out: &Path) -> Result<()> {
    let config = find_in_repo(config);
    let cfg = Config::from_path(&config)?;
    let board = cfg.board.as_deref().map(Board::builtin).transpose()?;
    let e = &cfg.engine;
    let w = &cfg.workload;
    println!("tern demo: {}", config.display());
    println!("  engine       {}", e.summary());
    println!("  workload     M={} K={} tokens={}", w.m, w.k, w.tokens);
    if let Some(b) = &board {
        println!("  board        {} ({})", b.name, b.description);
    }

    let t = Instant::now();
    let design = generate(&cfg)?;
    write_design(&design, out)?;
    let m = &design.manifest;
    println!(
        "  verilog      {} lines in {} (hash {}, {:.1} s)",
        m.verilog_lines,
        out.display(),
        design.short_hash(),
        t.elapsed().as_secs_f64()
    );

    let diagnostics = lint::lint_dir(out)?;
    if diagnostics.is_empty() {
        println!("  lint         verilator -Wall: clean");
    } else {
        println!(
            "  lint         verilator -Wall: {} diagnostics",
            diagnostics.len()
        );
    }

    let t = Instant::now();
    let library = ModelCache::default().load(&design)?;
    println!(
        "  model        Verilator model ready ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let summary = cosim::run(
        &design,
        &library,
        6,
        1,
        Handshakes::Mixed,
        &out.join("waveforms"),
    )?;
    println!(
        "  cosim        {} vector sets (every corner case), {} outputs bit-exact vs golden ({:.1} s)",
        summary.vector_sets,
        summary.outputs,
        t.elapsed().as_secs_f64()
    );

    let u = cosim::engine_busy(&cfg, &library, 1)?;
    println!(
        "  cycles       {} measured for {} tokens, ideal M·K·T/(P·Q·G) = {:.0}: utilisation {:.3}",
        u.measured,
        w.tokens,
        u.ideal,
        u.ratio()
    );
    let t = Instant::now();
    let host = host_run(&cfg)?;
    println!(
        "  host         {} tokens through the AXI4 top via tern-host: {} clocks ({:+.1}% vs the \
         engine's streaming model), {} outputs bit-exact vs golden ({:.1} s)",
        w.tokens,
        host.0,
        100.0 * (host.0 as f64 / u.measured as f64 - 1.0),
        host.1,
        t.elapsed().as_secs_f64()
    );
    println!("  ddr          {}", host.2);
    model_run()?;
    // Where each memory lives: tables and the FIFO in LUT RAM, the buffers in block RAM
    // once deeper than one LUT-RAM primitive (synthesis below counts both).
    let geo = &cfg.geometry;
    let place = |name: &str| match name {
        "activation_buffer" => tern_hdl::tlmm::buffer_style(geo.activation_buffer_depth()),
        "accumulators" => tern_hdl::tlmm::buffer_style(geo.accumulator_memory_depth()),
        "weight_fifo" => "distributed",
        _ => cfg.engine.storage().ram_style(),
    };
    let parts: Vec<String> = m
        .memory_bits
        .iter()
        .filter(|(_, &bits)| bits > 0)
        .map(|(name, bits)| format!("{name} {bits} ({})", place(name)))
        .collect();
    println!("  memory       bits: {}", parts.join(", "));
    let mut synth_ok = true;
    if let Some(b) = &board {
        synth_ok = synthesis(&design, b)?;
        surrogate(&design.config, b, u.measured);
    }
    if !diagnostics.is_empty() {
        bail!("lint failed:\n{}", diagnostics.join("\n"));
    }
    if !synth_ok {
        bail!("synthesis for the board did not succeed (see above)");
    }
    println!("  result       PASS");
    Ok(())
}

/// The demo's prompt: text in, through the tiny model's byte-level tokenizer.
const DEMO_PROMPT: &str = "Hello, FPGA";

/// A tiny BitNet model generating tokens on two simulated boards (the tiny model's own
/// accelerator, `examples/bitnet_tiny_accelerator.toml`, not the demo config's engine),
/// every step checked.
fn model_run() -> Result<()> {
    let t = Instant::now();
    let acc = tern_hdl::config::accelerator::Accelerator::from_path(&crate::files::find_in_repo(
        std::path::Path::new("examples/bitnet_tiny_accelerator.toml"),
    ))?;
    let args = crate::generate::GenerateArgs {
        inputs: crate::weights::RunInputs {
            model: "tiny".into(),
            checkpoint: None,
            expect_sha256: None,
            seed: 1,
            prompt: crate::text::Prompt::Text(DEMO_PROMPT.into()),
            chat: false,
            tokens: 8,
        },
        matmul_config: Some(acc.matmul_path.clone()),
        attention_config: Some(acc.attention_path.clone()),
        board_uri: "sim:".into(),
        attention_uris: vec![],
        attention_engines: acc.attention_engines,
        calibrate: false,
        out: None,
        access: crate::access::BoardAccess {
            timeout: std::time::Duration::from_secs(10),
            board_wait: std::time::Duration::from_secs(10),
            token: None,
        },
        verbose: false,
    };
    let g = crate::generate::generate(&args)?;
    println!(
        "  bitnet       tiny BitNet ({} layers, hidden {}, {}/{} heads) on a TLMM top ({}x{} tiles) and an \
         attention top: {} prompt tokens, generated {:?}, every step's logits bit-exact vs golden ({:.1} s)",
        g.model.layers,
        g.model.hidden,
        g.model.heads,
        g.model.kv_heads,
        g.tile_m,
        g.tile_k,
        g.prompt.len(),
        g.generated,
        t.elapsed().as_secs_f64()
    );
    println!(
        "  text         in {DEMO_PROMPT:?} (byte-level tokenizer: {} ids), out {:?} (random weights: \
         gibberish; tern generate --checkpoint reads a model's own tokenizer)",
        g.prompt.len(),
        g.generated_text.as_deref().unwrap_or_default()
    );
    println!(
        "  tokens/s     kernel clocks at {} MHz: first token after {:.3} ms, decode {:.0} clocks/token = \
         {:.0} tokens/s (tern generate; bitnet-0.73b on the KV260: cargo bench -p tern-flows --bench model)",
        g.board_clock_mhz,
        g.time_to_first_token_s * 1e3,
        g.decode_clocks_per_token,
        g.decode_tokens_per_s
    );
    Ok(())
}

/// The surrogate's view of the same design, beside what synthesis and simulation said.
/// A missing model is reported, not fatal: the demo's facts come from the real tools.
fn surrogate(config: &tern_hdl::DesignConfig, board: &tern_boards::Board, measured_cycles: u64) {
    let report = crate::surrogate::predict::find_model(board, None)
        .map(|m| crate::surrogate::predict::predict_one(config, board, &m, false));
    match report {
        Ok(r) => {
            let v = |t: usize| r.prediction.value[t].unwrap_or(f64::NAN);
            use tern_surrogate::features::{BRAMS, FFS, LUTS};
            let spread = r.prediction.spread[LUTS].unwrap_or(0.0);
            println!(
                "  surrogate    GNN predicted {:.0} LUT ± {:.0}%, {:.0} FF, {:.0} BRAM ({:.1} ms, {}); clocks from the cycle model {}, co-simulation {}",
                v(LUTS),
                100.0 * spread,
                v(FFS),
                v(BRAMS),
                r.milliseconds,
                if r.extrapolation.is_empty() { "inside the trained space" } else { "EXTRAPOLATION" },
                config.matmul().map_or(0, |c| c.streaming_cycles()),
                measured_cycles
            );
            if let Some(b) = &r.blocks {
                println!(
                    "  blocks       block model predicted {:.0} LUT {}, {:.0} FF, {:.1} BRAM as the sum of {} RTL blocks ({:.2} ms{})",
                    b.total[0],
                    b.band[0].map_or("(no band)".into(), |b| format!("± {:.0}%", 100.0 * b)),
                    b.total[1],
                    b.total[3],
                    b.blocks.len(),
                    b.milliseconds,
                    if b.unknown.is_empty() { "" } else { "; some blocks NOT COSTED" }
                );
            }
        }
        Err(e) => println!("  surrogate    not run: {e}"),
    }
}

/// The layer on the in-process board (the Verilator model of the accelerator top),
/// driven through tern-host as a host program would; (kernel clocks, outputs checked).
/// The layer through the accelerator top on the simulated board (its board's DDR model):
/// kernel clocks, outputs checked, and the memory model's description.
fn host_run(cfg: &tern_hdl::Config) -> Result<(u64, usize, String)> {
    let m = cfg.workload.m;
    let (w, x) = crate::run::inputs::random_layer(cfg, cfg.workload.tokens, 1, None);
    let (memory, memory_text) = crate::memory::memory_model(cfg)?;
    let opts = tern_host::OpenOptions {
        memory: Some(memory),
        ..tern_host::OpenOptions::default()
    };
    let mut dev = tern_host::Device::open("sim:", cfg, &opts)?;
    dev.load_weights(&w)?;
    let run = dev.gemm(&x)?;
    let want = crate::run::inputs::golden(cfg, &w, &x);
    if let Some((i, (got, want))) = run
        .y
        .iter()
        .zip(want.iter())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        bail!(
            "host run on the accelerator top: token {}, row {}: board {got}, golden {want} (seed 1)",
            i / m,
            i % m
        );
    }
    Ok((run.cycles, run.y.len(), memory_text))
}
