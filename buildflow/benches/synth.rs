//! Synthesis flow benchmark: Yosys time per design, tern's own overhead on top of it,
//! and sweep throughput with 1 and 2 parallel runs, from an empty cache.
//! Run: `cargo bench -p tern-build --bench synth` (about 3 minutes on 2 cores).

use std::time::Instant;

use tern_boards::Board;
use tern_build::executor::Executor;
use tern_build::job::{SweepItem, SweepPlan};
use tern_build::sweep;
use tern_build::synth::SynthOptions;
use tern_hdl::config::ConfigBuilder;
use tern_hdl::{DesignConfig, EngineKind};

fn main() {
    let board = Board::builtin("kv260").unwrap();
    let mut items = vec![];
    for g in [2, 3, 4] {
        for (kind, name) in [
            (EngineKind::Tlmm, "tlmm"),
            (EngineKind::AdderTree, "adder-tree"),
        ] {
            items.push(SweepItem {
                name: format!("{name}-g{g}-p4-q1"),
                config: DesignConfig::Matmul(
                    ConfigBuilder::new(kind, g, 4, 1)
                        .workload(256, 256, 1)
                        .build()
                        .unwrap(),
                ),
            });
        }
    }
    println!(
        "## Synthesis flow (Yosys on kv260, {} designs, empty cache)\n",
        items.len()
    );
    println!("| jobs | wall s | Yosys s (sum) | designs/hour | flow overhead % of tool time |");
    println!("|---|---|---|---|---|");
    let mut per_design = vec![];
    for jobs in [1, 2] {
        let cache = tempfile::tempdir().unwrap();
        let opts = SynthOptions::new(cache.path().to_path_buf());
        let start = Instant::now();
        let rows = sweep::run(
            &items,
            std::slice::from_ref(&board),
            SweepPlan {
                pnr: false,
                seed: 1,
                blocks: false,
                whole_top: false,
            },
            &opts,
            &Executor::Local { jobs },
        )
        .unwrap();
        let stats = sweep::stats(&rows, start.elapsed().as_secs_f64());
        assert_eq!(stats.failed, 0, "a synthesis failed: {rows:?}");
        println!(
            "| {jobs} | {:.1} | {:.1} | {:.0} | {:.2} |",
            stats.wall_seconds, stats.tool_seconds, stats.designs_per_hour, stats.overhead_percent
        );
        if jobs == 1 {
            per_design = rows;
        }
    }
    println!("\n| design (jobs = 1) | LUT | FF | Yosys s | tern s beyond Yosys | overhead % |");
    println!("|---|---|---|---|---|---|");
    for r in &per_design {
        let u = r.synth.as_ref().and_then(|s| s.usage()).unwrap();
        println!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.2} |",
            r.name,
            u.luts,
            u.ffs,
            r.tool_seconds,
            r.wall_seconds - r.tool_seconds,
            100.0 * (r.wall_seconds - r.tool_seconds) / r.tool_seconds
        );
    }
}
