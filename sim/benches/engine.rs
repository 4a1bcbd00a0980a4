//! `cargo bench -p tern-sim --bench engine`: engine utilisation and co-simulation speed.
//! Prints Markdown; BENCHMARKS.md holds a committed run. Figures are measured in one
//! run and compared as ratios (the machine is shared).

use std::time::Instant;

use tern_hdl::{generate, Config};
use tern_sim::cosim::{compare, drive, Stimulus, VectorKind, Vectors};
use tern_sim::rust_hdl_sim::RustHdlEngine;
use tern_sim::verilator::{EngineSim, Inputs, ModelCache};

fn config(kind: &str, g: usize, p: usize, q: usize, m: usize, k: usize, t: usize) -> Config {
    Config::from_toml(
        &format!(
            "[engine]\nkind = \"{kind}\"\ngroup_size = {g}\nrows_parallel = {p}\ngroups_per_cycle = {q}\n\
             activation_bits = 8\naccumulator_bits = 32\ntable_storage = \"block\"\nweight_buffer_depth = 16\n\
             [workload]\nm = {m}\nk = {k}\ntokens = {t}\n"
        ),
        "bench",
    )
    .unwrap()
}

fn utilisation() {
    println!("## Engine utilisation, M = K = 1024 (streaming handshakes)\n");
    println!("| engine | G | P | Q | weights/clock | tokens | ideal clocks | measured clocks | utilisation |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let cache = ModelCache::default();
    for (kind, g, p, q) in [
        ("tlmm", 3, 4, 2),
        ("tlmm", 4, 8, 2),
        ("tlmm", 5, 8, 2),
        ("tlmm", 2, 16, 4),
        ("adder-tree", 3, 4, 2),
    ] {
        for tokens in [1, 4] {
            let cfg = config(kind, g, p, q, 1024, 1024, tokens);
            let design = generate(&cfg).unwrap();
            let lib = cache.load(&design).unwrap();
            let vectors = Vectors::generate(&cfg, VectorKind::Random, 1);
            let mut model = lib.instantiate(None).unwrap();
            let run = drive(&mut model, &cfg, &vectors, Stimulus::STREAMING, 1).unwrap();
            assert_eq!(
                compare(&cfg, &vectors, &run),
                None,
                "bench run must be bit-exact"
            );
            let measured = run.last_result - run.first_weight + 1;
            let ideal = cfg.ideal_cycles();
            println!(
                "| {kind} | {g} | {p} | {q} | {} | {tokens} | {ideal:.0} | {measured} | {:.4} |",
                p * q * g,
                ideal / measured as f64
            );
        }
    }
}

fn speed() {
    let cfg = config("tlmm", 3, 4, 2, 256, 256, 4);
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
        wgt: Some(&beat),
        res_ready: true,
    });
    let n = 2_000_000u64;
    let t = Instant::now();
    model.run_free(n);
    let cpp_only = n as f64 / t.elapsed().as_secs_f64();

    // rust-hdl's simulator on the same design and testbench (one repetition).
    let mut engine = RustHdlEngine::<10, 10, 4, 32>::new(&cfg);
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
    println!(
        "\nRust-driving overhead: the C++ loop is {:.2}× the Rust-driven rate; Verilator is {:.0}× rust-hdl's simulator.",
        cpp_only / rust_driven,
        rust_driven / rust_hdl
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep it quick there.
    if std::env::args().any(|a| a == "--bench") {
        utilisation();
        speed();
    }
}
