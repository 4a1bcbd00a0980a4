//! Attention on the simulated KV260: decode and causal prefill through the accelerator
//! top, the KV cache in the DDR model. Kernel clocks against the engine's ideal (every
//! MAC busy on the keys each row streams) and the bandwidth bound, and the K/V bytes
//! read with one pass over the tiles per row (`query_block = 1`) and per block of rows.
//! Every run is checked bit for bit against the golden model, and the DDR model's served
//! bytes against the layout's count.
//!
//! `cargo bench -p tern-flows --bench attention_top` (output committed in
//! `docs/bench/attention_top.txt`). Engine: 16 MACs, tiles of 32 keys, 256-bit bus.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tern_dse::performance::bandwidth_bound;
use tern_flows::memory::memory_model_for;
use tern_hdl::config::AttentionConfigBuilder;
use tern_hdl::streams::attention::{schedule, streamed_keys};
use tern_hdl::{AttentionConfig, DesignConfig};
use tern_host::sim::{SharedBoard, SimBoard};
use tern_host::{Device, OpenOptions};
use tern_sim::cosim::attention::{AttentionVectorKind, AttentionVectors};
use tern_sim::golden::attention::streamed_attention;
use tern_sim::verilator::ModelCache;

fn config(
    head_dim: usize,
    (mode, causal): (&str, bool),
    seq_len: usize,
    queries: usize,
    block: usize,
) -> AttentionConfig {
    AttentionConfigBuilder::new(head_dim, 16, 32, 2048)
        .board("kv260")
        .mode(mode == "prefill", causal)
        .workload(seq_len, queries)
        .query_block(block)
        .build()
        .unwrap()
}

fn main() {
    let decode = ("decode", false);
    let causal = ("prefill", true);
    // Query heads sharing one KV head see every key (GQA decode).
    let shared = ("prefill", false);
    // (name, d, mode, L, query rows, blocks to compare)
    type Workload<'a> = (&'a str, usize, (&'a str, bool), usize, usize, &'a [usize]);
    let workloads: &[Workload] = &[
        ("decode", 64, decode, 512, 1, &[1]),
        ("decode", 64, decode, 2048, 1, &[1]),
        ("decode", 128, decode, 2048, 1, &[1]),
        (
            "GQA decode, 4 query heads per KV head",
            128,
            shared,
            2048,
            4,
            &[1, 4],
        ),
        (
            "causal prefill, last 16 rows",
            64,
            causal,
            512,
            16,
            &[1, 16],
        ),
        (
            "causal prefill, last 64 rows",
            64,
            causal,
            2048,
            64,
            &[1, 16],
        ),
        (
            "causal prefill, whole 128-token prompt",
            128,
            causal,
            128,
            128,
            &[1, 16],
        ),
    ];
    println!("# attention on the simulated KV260 (16 MACs, tiles of 32 keys, 256-bit bus, seed 1)");
    println!(
        "| workload | d | L | rows | query_block | kernel clocks | ideal | utilisation | bandwidth bound | K/V bytes read | distinct K/V bytes | sim clocks/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &(name, d, mode, seq_len, rows, blocks) in workloads {
        for &block in blocks {
            let cfg = config(d, mode, seq_len, rows, block);
            let causal = mode.1;
            let design = DesignConfig::Attention(cfg.clone());
            let (memory, _) = memory_model_for(&design).unwrap();
            let board = Rc::new(RefCell::new(
                SimBoard::for_design(&design, &ModelCache::default(), None, Some(memory)).unwrap(),
            ));
            let opts = OpenOptions {
                run_timeout: Duration::from_secs(600),
                ..OpenOptions::default()
            };
            let mut dev =
                Device::attach_design(Box::new(SharedBoard(board.clone())), &design, &opts)
                    .unwrap();
            let v = AttentionVectors::generate(&cfg, AttentionVectorKind::Gaussian, 1);
            let flat_of = |a: &ndarray::Array2<i8>| a.iter().copied().collect::<Vec<i8>>();
            dev.kv_append(&flat_of(&v.k), &flat_of(&v.v)).unwrap();
            let first = seq_len - rows;
            let before = board.borrow().traffic();
            let sim_before = board.borrow().cycles();
            let t0 = Instant::now();
            let run = dev.attention(&flat_of(&v.q), first, causal).unwrap();
            let wall = t0.elapsed().as_secs_f64();
            let sim_clocks = board.borrow().cycles() - sim_before;
            let after = board.borrow().traffic();
            let plan = schedule(first, rows, seq_len, causal, 32);
            assert_eq!(plan, v.rows, "{name}: the call's rows are the workload's");
            let want = streamed_attention(&cfg, &plan, v.q.view(), v.k.view(), v.v.view());
            assert_eq!(
                run.rows, want,
                "{name}, block {block}: not bit-exact (seed 1)"
            );
            let (read, written) = (
                after.bytes_read - before.bytes_read,
                after.bytes_written - before.bytes_written,
            );
            assert_eq!(
                (read, written),
                (run.bytes_read, run.bytes_written),
                "{name}: the DDR model served other bytes than the layout says"
            );
            let ideal: f64 = plan.iter().map(|r| cfg.ideal_row_cycles(r.kv_len)).sum();
            let bound = bandwidth_bound(32.0, Some(memory.bytes_per_clock), read, written);
            let kv_read = 2 * streamed_keys(&plan, block) * d;
            println!(
                "| {name} | {d} | {seq_len} | {rows} | {block} | {} | {ideal:.0} | {:.3} | {bound} | {kv_read} | {} | {:.2e} |",
                run.cycles,
                ideal / run.cycles as f64,
                2 * seq_len * d,
                sim_clocks as f64 / wall,
            );
        }
    }
}
