//! The accelerator top on the simulated KV260: kernel clocks against the engine's
//! streaming model and against the bandwidth bound, DDR bytes per token, and how fast the
//! Verilator top simulates. Every run is checked bit for bit against the golden model.
//!
//! `cargo bench -p tern-flows --bench top` (output committed in `docs/bench/top.txt`).
//! The memory is the KV260's DDR model (`flows::board::memory_model`: 19.2 GB/s at the
//! 300 MHz board clock, 120 ns assumed latency); the bandwidth bound counts the bytes the
//! DDR model actually served over min(bus, DDR) per clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tern_dse::performance::bandwidth_bound;
use tern_flows::memory::memory_model;
use tern_flows::run::inputs::{golden, random_layer};
use tern_hdl::Config;
use tern_host::sim::{SharedBoard, SimBoard};
use tern_host::{Device, OpenOptions};
use tern_sim::verilator::ModelCache;

fn config(name: &str, g: usize, p: usize, q: usize, tb: usize, bus: usize, mk: usize) -> Config {
    let text = format!(
        "board = \"kv260\"\n[top]\nbus_bits = {bus}\n[engine]\nkind = \"tlmm\"\n\
         group_size = {g}\nrows_parallel = {p}\ngroups_per_cycle = {q}\naccumulator_bits = 24\n\
         token_block = {tb}\nweight_buffer_depth = 16\n[workload]\nm = {mk}\nk = {mk}\ntokens = 1\n"
    );
    Config::from_toml(&text, name).unwrap()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mk = if quick { 768 } else { 1536 };
    let engines = [
        (
            "default engine (84 w/clk), 256-bit bus",
            config("default", 3, 7, 4, 2, 256, mk),
        ),
        (
            "288 w/clk, 512-bit bus",
            config("large", 3, 32, 3, 2, 512, mk),
        ),
        (
            "288 w/clk, 256-bit bus",
            config("large-narrow", 3, 32, 3, 2, 256, mk),
        ),
        (
            "576 w/clk, 512-bit bus",
            config("wide", 3, 64, 3, 2, 512, mk),
        ),
    ];
    println!("# tern top on the simulated KV260 ({mk}x{mk} ternary layer, seed 1)");
    println!(
        "| engine | tokens | kernel clocks | streaming model | vs model | bandwidth bound | vs bound | bound by | DDR bytes/token | sim clocks/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, cfg) in engines {
        let (memory, _) = memory_model(&cfg).unwrap();
        let cache = ModelCache::default();
        let board = Rc::new(RefCell::new(
            SimBoard::new(&cfg, &cache, None, Some(memory)).unwrap(),
        ));
        let opts = OpenOptions {
            run_timeout: Duration::from_secs(600),
            ..OpenOptions::default()
        };
        let mut dev = Device::attach(Box::new(SharedBoard(board.clone())), &cfg, &opts).unwrap();
        for tokens in [1usize, 8] {
            let (w, x) = random_layer(&cfg, tokens, 1, None);
            dev.load_weights(&w).unwrap();
            let before = board.borrow().traffic();
            let sim_before = board.borrow().cycles();
            let t0 = Instant::now();
            let run = dev.gemm(&x).unwrap();
            let wall = t0.elapsed().as_secs_f64();
            let sim_clocks = board.borrow().cycles() - sim_before;
            let after = board.borrow().traffic();
            assert_eq!(
                run.y,
                golden(&cfg, &w, &x),
                "{name}, {tokens} tokens: not bit-exact"
            );
            let read = after.bytes_read - before.bytes_read;
            let written = after.bytes_written - before.bytes_written;
            assert_eq!(
                (read, written),
                (run.bytes_read, run.bytes_written),
                "{name}: the DDR model served other bytes than the layout says"
            );
            let model = cfg
                .with_workload(mk, mk, tokens)
                .unwrap()
                .streaming_cycles();
            let bus = cfg.top.bus_bytes() as f64;
            let bound = bandwidth_bound(bus, Some(memory.bytes_per_clock), read, written);
            let floor = model.max(bound);
            println!(
                "| {name} | {tokens} | {} | {model} | {:+.1}% | {bound} | {:+.1}% | {} | {} | {:.2e} |",
                run.cycles,
                100.0 * (run.cycles as f64 / model as f64 - 1.0),
                100.0 * (run.cycles as f64 / bound as f64 - 1.0),
                if floor == bound { "bandwidth" } else { "compute" },
                (read + written) / tokens as u64,
                sim_clocks as f64 / wall,
            );
        }
    }
}
