//! `cargo bench -p tern-sim --bench engine`: engine utilisation (decode and prefill),
//! weight traffic per token, generation and Verilator build time of a large engine, and
//! co-simulation speed. Prints Markdown; `docs/bench/engine.md` holds a committed run.
//! Figures are measured in one run and compared as ratios (the machine is shared).

use std::time::Instant;

use tern_hdl::config::ConfigBuilder;
use tern_hdl::timing::Schedule;
use tern_hdl::{generate, Config};
use tern_sim::cosim::{compare, describe, drive, Stimulus, VectorKind, Vectors};
use tern_sim::rust_hdl_sim::RustHdlEngine;
use tern_sim::verilator::{EngineSim, Inputs, ModelCache};

/// The layer the large engines run: BitNet b1.58 2B's attention projection (2560×2560).
const LAYER: (usize, usize) = (2560, 2560);

/// (name, engine, measure prefill too). Each (engine, token block) is its own Verilator
/// build of a ~1000-weights/clock design, so prefill is measured where it matters.
fn engines() -> Vec<(&'static str, ConfigBuilder, bool)> {
    vec![
        ("tlmm G=3 P=16 Q=6", ConfigBuilder::tlmm(3, 16, 6), false),
        ("tlmm G=3 P=32 Q=11", ConfigBuilder::tlmm(3, 32, 11), true),
        (
            "tlmm G=4 P=32 Q=8, one bank",
            ConfigBuilder::tlmm(4, 32, 8).table_banks(1),
            false,
        ),
        (
            "adder tree G=3 P=32 Q=11",
            ConfigBuilder::adder_tree(3, 32, 11),
            true,
        ),
    ]
}

/// Bytes of weight beats the engine reads per token when blocks hold `n` tokens.
fn weight_bytes_per_token(cfg: &Config, n: usize) -> f64 {
    let g = &cfg.geometry;
    (g.weight_beats_per_token() * g.weight_beat_bits()) as f64 / 8.0 / n as f64
}

fn utilisation() {
    let (m, k) = LAYER;
    println!(
        "## Utilisation and weight traffic, M = K = {m}·{k} (streaming handshakes, Verilator)\n"
    );
    println!("Decode: 4 tokens in blocks of 1. Prefill (two of the engines): 16 tokens in blocks of T_b = 8. Utilisation = ideal clocks (M·K·T / weights per clock) / measured clocks from the first weight beat to the last result; `model` is the cycle model's count for the whole run (equal to Verilator's).\n");
    println!("| engine | weights/clock | mode | tokens | ideal clocks | measured | utilisation | cycle model = Verilator | weight bytes/token | Verilator clocks/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let cache = ModelCache::default();
    for (name, builder, prefill) in engines() {
        for (mode, tb, tokens) in [("decode", 1, 4), ("prefill", 8, 16)] {
            if mode == "prefill" && !prefill {
                continue;
            }
            let cfg = builder
                .clone()
                .token_block(tb)
                .workload(m, k, tokens)
                .build()
                .unwrap();
            let design = generate(&cfg).unwrap();
            let lib = cache.load(&design).unwrap();
            let vectors = Vectors::generate(&cfg, VectorKind::Random, 1);
            let mut model = lib.instantiate(None).unwrap();
            let t = Instant::now();
            let run = drive(&mut model, &cfg, &vectors, Stimulus::STREAMING, 1).unwrap();
            let rate = run.cycles as f64 / t.elapsed().as_secs_f64();
            assert_eq!(
                compare(&cfg, &vectors, &run),
                None,
                "bench run must be bit-exact: {}",
                describe(&cfg)
            );
            let measured = run.last_result - run.first_weight + 1;
            let ideal = cfg.ideal_cycles();
            let modelled = cfg.streaming_cycles();
            println!(
                "| {name} | {} | {mode} | {tokens} | {ideal:.0} | {measured} | {:.4} | {} ({modelled}) | {:.0} | {rate:.0} |",
                cfg.geometry.weights_per_clock(),
                ideal / measured as f64,
                if modelled == run.cycles { "yes" } else { "NO" },
                weight_bytes_per_token(&cfg, tb),
            );
        }
    }
}

/// Generation (rust-hdl → Verilog) and Verilator build of a 1024-weights/clock engine,
/// in a fresh cache so nothing is reused.
fn build_times() {
    println!("\n## Generating and building a 1056-weights/clock engine (tlmm G=3 P=32 Q=11, M = K = 2560)\n");
    let cfg = ConfigBuilder::tlmm(3, 32, 11)
        .workload(LAYER.0, LAYER.1, 1)
        .build()
        .unwrap();
    let t = Instant::now();
    let design = generate(&cfg).unwrap();
    let gen = t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path());
    let t = Instant::now();
    cache.load(&design).unwrap();
    let build = t.elapsed().as_secs_f64();
    println!("| step | seconds |\n|---|---|");
    println!(
        "| rust-hdl generation ({} lines of Verilog) | {gen:.2} |",
        design.manifest.verilog_lines
    );
    println!("| Verilator model build (verilate, compile, link; includes Verilator's runtime) | {build:.1} |");
}

fn speed() {
    let cfg = ConfigBuilder::tlmm(3, 4, 2)
        .storage(tern_hdl::config::TableStorage::Block)
        .weight_buffer_depth(16)
        .accumulator_bits(32)
        .workload(256, 256, 4)
        .build()
        .unwrap();
    let design = generate(&cfg).unwrap();
    let lib = ModelCache::default().load(&design).unwrap();
    let vectors = Vectors::generate(&cfg, VectorKind::Random, 2);

    // Rust-driven: the co-simulation testbench, 5 repetitions.
    let mut cycles = 0u64;
    let t = Instant::now();
    for _ in 0..5 {
        let mut model = lib.instantiate(None).unwrap();
        cycles += drive(&mut model, &cfg, &vectors, Stimulus::STREAMING, 2)
            .unwrap()
            .cycles;
    }
    let rust_driven = cycles as f64 / t.elapsed().as_secs_f64();

    // C++ only: the same model clocked in a loop inside the shim, inputs held streaming.
    let mut model = lib.instantiate(None).unwrap();
    let beat = vec![0x5555_5555u32; 16];
    model.drive(&Inputs {
        reset: false,
        act: Some(&beat),
        act_last: true,
        wgt: Some(&beat),
        res_ready: true,
    });
    let n = 2_000_000u64;
    let t = Instant::now();
    model.run_free(n);
    let cpp_only = n as f64 / t.elapsed().as_secs_f64();

    // rust-hdl's simulator on the same design and testbench (one repetition).
    let mut engine = RustHdlEngine::<4, 32>::new(&cfg);
    let t = Instant::now();
    let run = drive(&mut engine, &cfg, &vectors, Stimulus::STREAMING, 2).unwrap();
    let rust_hdl = run.cycles as f64 / t.elapsed().as_secs_f64();
    assert_eq!(compare(&cfg, &vectors, &run), None);
    let _ = engine.result();

    println!("\n## Co-simulation speed (tlmm G=3 P=4 Q=2, M = K = 256, 4 tokens)\n");
    println!("| simulator | clocks/s | relative to Rust-driven Verilator |");
    println!("|---|---|---|");
    println!("| Verilator, driven from Rust (cosim testbench) | {rust_driven:.0} | 1.00 |");
    println!(
        "| Verilator, C++-only clock loop | {cpp_only:.0} | {:.2} |",
        cpp_only / rust_driven
    );
    println!(
        "| rust-hdl's simulator (same testbench) | {rust_hdl:.0} | {:.4} |",
        rust_hdl / rust_driven
    );
    // The cycle model itself, for the DSE: clocks modelled per second of CPU.
    let t = Instant::now();
    let s = Schedule::run(&cfg.geometry, 64);
    let model_rate = s.cycles as f64 / t.elapsed().as_secs_f64();
    println!(
        "| cycle model (`tern_hdl::timing`, control only) | {model_rate:.0} | {:.1} |",
        model_rate / rust_driven
    );
}

fn main() {
    // `cargo test --benches` runs this without `--bench`; keep it quick there.
    if std::env::args().any(|a| a == "--bench") {
        utilisation();
        build_times();
        speed();
    }
}
