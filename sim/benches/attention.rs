//! Attention engine benchmarks: fidelity against float attention, cycles per decode
//! step and per prefill block (Verilator, streaming handshakes, checked bit for bit),
//! and on-chip storage by tile and head dim. Prints Markdown for `BENCHMARKS.md`.
//!
//! `cargo bench -p tern-sim --bench attention` (`-- --fidelity-only`: the first table alone)

use tern_hdl::config::{AttentionConfigBuilder, IndexRounding};
use tern_hdl::{generate_attention, AttentionConfig};
use tern_sim::cosim::attention::{compare, drive, AttentionVectorKind, AttentionVectors};
use tern_sim::cosim::Stimulus;
use tern_sim::fidelity::{measure, FidelityCase};
use tern_sim::verilator::ModelCache;

fn config(
    d: usize,
    macs: usize,
    tile: usize,
    mode: &str,
    causal: bool,
    l: usize,
    queries: usize,
) -> AttentionConfig {
    AttentionConfigBuilder::new(d, macs, tile, 2048)
        .mode(mode == "prefill", causal)
        .workload(l, queries)
        .build()
        .unwrap()
}

fn fidelity() {
    println!("## Attention fidelity (Gaussian Q/K/V, 16 query rows, mean cosine / max abs error vs float)\n");
    println!("| d | L | Bc | clip | index rounding | exp entries | int8 inputs only | IntAttention IndexSoftmax (u8 P) | engine, one tile | engine, streamed | engine int8 output |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut cases = vec![];
    for (d, l, tile) in [
        (64, 128, 32),
        (64, 512, 32),
        (64, 2048, 64),
        (128, 128, 32),
        (128, 512, 64),
        (128, 2048, 64),
    ] {
        for entries in [32, 128] {
            cases.push((d, l, tile, 6.6, IndexRounding::Nearest, entries));
        }
    }
    for (clip, rounding) in [
        (6.6, IndexRounding::Floor),
        (5.0, IndexRounding::Nearest),
        (5.0, IndexRounding::Floor),
    ] {
        cases.push((64, 512, 32, clip, rounding, 128));
        cases.push((128, 2048, 64, clip, rounding, 128));
    }
    for entries in [64, 256] {
        cases.push((64, 512, 32, 6.6, IndexRounding::Nearest, entries));
        cases.push((128, 2048, 64, 6.6, IndexRounding::Nearest, entries));
    }
    for (d, l, tile, clip, rounding, exp_entries) in cases {
        let r = measure(FidelityCase {
            head_dim: d,
            seq_len: l,
            tile,
            queries: 16,
            rescale_steps: 256,
            clip,
            rounding,
            exp_entries,
            seed: 1,
        });
        let f = |a: tern_sim::fidelity::Agreement| {
            format!("{:.5} / {:.4}", a.mean_cosine, a.max_abs_error)
        };
        println!(
            "| {d} | {l} | {tile} | {clip} | {rounding:?} | {exp_entries} | {} | {} | {} | {} | {} |",
            f(r.quantised_inputs),
            f(r.index),
            f(r.single_tile),
            f(r.streamed),
            f(r.engine)
        );
    }
    println!();
}

fn cycles() {
    println!("## Attention cycles (Verilator, always-valid inputs, checked bit for bit)\n");
    println!("Ideal = (q·k + p·v MACs) / macs = Σ_rows 2·visible·d/macs. K/V streamed = the int8 key and value bytes the engine takes (each row streams its own tiles: Σ_rows 2·kv_len·d); distinct = 2·L·d, what streaming each tile once for all rows would take.\n");
    println!("| mode | d | macs | Bc | L | rows | ideal clocks | measured clocks | clocks per row | ratio | K/V bytes streamed | distinct K/V bytes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let cache = ModelCache::default();
    let mut runs = vec![];
    for d in [64, 128] {
        for l in [128, 512, 2048] {
            runs.push(config(d, 16, 32, "decode", false, l, 1));
        }
    }
    runs.push(config(64, 16, 64, "decode", false, 2048, 1));
    runs.push(config(64, 16, 32, "prefill", true, 128, 16));
    runs.push(config(64, 16, 32, "prefill", true, 512, 16));
    runs.push(config(128, 16, 32, "prefill", false, 512, 16));
    for cfg in runs {
        let design = generate_attention(&cfg).unwrap();
        let lib = cache.load(&design).unwrap();
        let mut model = lib.instantiate(None).unwrap();
        let vectors = AttentionVectors::generate(&cfg, AttentionVectorKind::Gaussian, 3);
        let run = drive(&mut model, &cfg, &vectors, Stimulus::STREAMING, 3).unwrap();
        assert_eq!(
            compare(&cfg, &vectors, &run),
            None,
            "bench run must be bit-exact"
        );
        let ideal: f64 = vectors
            .rows
            .iter()
            .map(|r| cfg.ideal_row_cycles(r.visible))
            .sum();
        let a = &cfg.attention;
        let streamed: usize = vectors.rows.iter().map(|r| 2 * r.kv_len * a.head_dim).sum();
        let distinct = 2 * cfg.workload.seq_len * a.head_dim;
        println!(
            "| {:?}{} | {} | {} | {} | {} | {} | {:.0} | {} | {:.0} | {:.3} | {streamed} | {distinct} |",
            a.mode,
            if a.causal { " causal" } else { "" },
            a.head_dim,
            a.macs,
            a.tile,
            cfg.workload.seq_len,
            vectors.rows.len(),
            ideal,
            run.cycles,
            run.cycles as f64 / vectors.rows.len() as f64,
            ideal / run.cycles as f64
        );
    }
    println!();
}

fn storage() {
    println!("## Attention on-chip storage (bits, from the generated design's manifest)\n");
    println!("| d | Bc | query_block | query | scores | accumulators | tile buffer | row state | total |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rows = vec![];
    for d in [64, 128] {
        for tile in [16, 32, 64, 128] {
            rows.push((d, tile, 1));
        }
        for block in [4, 16] {
            rows.push((d, 32, block));
        }
    }
    for (d, tile, block) in rows {
        let base = config(d, 16, tile, "decode", false, 256, 1);
        let cfg = AttentionConfigBuilder::from_config(&base)
            .query_block(block)
            .build()
            .unwrap();
        let design = generate_attention(&cfg).unwrap();
        let m = &design.manifest.memory_bits;
        println!(
            "| {d} | {tile} | {block} | {} | {} | {} | {} | {} | {} |",
            m["query"],
            m["scores"],
            m["accumulators"],
            m["tile_buffer"],
            m["row_state"],
            design.manifest.total_memory_bits()
        );
    }
    println!(
        "\nStorage grows with Bc (scores) and d (query, accumulators), and with the rows kept per \
         pass (query_block: queries, accumulators, row state; the tile buffer appears at 2 rows), \
         never with the sequence length.\n"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    fidelity();
    if std::env::args().any(|a| a == "--fidelity-only") {
        return;
    }
    storage();
    cycles();
}
