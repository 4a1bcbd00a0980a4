//! The one top's core (`tern_hdl::accelerator`): the sequencer and the four units on the
//! board's memory ports run whole passes of the program — a prompt, then decoded tokens
//! — and leave the memory, the next token and the LM head's scores as the golden
//! sequencer leaves them.

use tern_flows::program::sequencer_shape;
use tern_flows::rtl::lint::lint_files;
use tern_hdl::accelerator::{accelerator_verilog, AcceleratorShape, ACCELERATOR_CORE_MODULE};
use tern_hdl::config::{Config, ConfigBuilder};
use tern_hdl::emit::{waivers, WAIVER_FILE};
use tern_hdl::units::{AttentionUnitShape, LmHeadUnitShape, MatmulUnitShape, VectorUnitShape};
use tern_hdl::AttentionConfig;
use tern_model::ModelConfig;

mod common;

/// The tiny model's matmul engine: G = 3, 8 rows, 16 groups a clock, tiles of 32 × 96,
/// blocks of 2 rows.
fn tiny_matmul() -> Config {
    ConfigBuilder::tlmm(3, 8, 16)
        .workload(32, 96, 1)
        .token_block(2)
        .build()
        .unwrap()
}

/// The one top for the tiny model on `ports` memory ports, `memory_bytes` of memory.
fn tiny_top(ports: usize, memory_bytes: u64, attention: &AttentionConfig) -> AcceleratorShape {
    let c = ModelConfig::preset("tiny").unwrap();
    AcceleratorShape {
        sequencer: sequencer_shape(&c, common::DESIGN, memory_bytes, 16),
        matmul: MatmulUnitShape {
            ports,
            engine: tiny_matmul(),
        },
        lm_head: LmHeadUnitShape {
            ports,
            max_width: c.hidden,
        },
        vector: VectorUnitShape {
            lanes: 2,
            max_n: c.ffn,
            max_head_dim: c.head_dim,
        },
        attention: AttentionUnitShape {
            engine: attention.clone(),
            heads: c.heads,
            kv_heads: c.kv_heads,
        },
    }
}

#[test]
fn the_one_top_core_is_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    for ports in [1usize, 2] {
        let v = accelerator_verilog(&tiny_top(ports, 1 << 24, &common::attention())).unwrap();
        let mut names = vec![WAIVER_FILE.to_string()];
        std::fs::write(dir.path().join(WAIVER_FILE), waivers()).unwrap();
        for (name, text) in &v.files {
            std::fs::write(dir.path().join(name), text).unwrap();
            names.push(name.clone());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let found = lint_files(dir.path(), &names, Some(ACCELERATOR_CORE_MODULE)).unwrap();
        assert!(found.is_empty(), "{ports} port(s):\n{}", found.join("\n"));
    }
}

/// The tiny model's whole passes on the one top (its matrices in the matmul unit's tile
/// layout in memory, the KV caches in memory, every command on its unit, KV260 ports at
/// 250 MHz): a prompt of 8 and three decoded tokens give the golden sequencer's next
/// token, and every byte of memory afterwards — the LM head's scores, every vector in
/// scratch, the KV caches — is the golden's; nothing else is written. On one port, and on
/// two (the matmul and LM-head units' reads spread over both) with 20 % of the memory's
/// handshakes withheld. The clocks of the pass and of each unit print.
#[test]
fn whole_passes_on_the_one_top_leave_what_the_golden_sequencer_leaves() {
    for (ports, stall) in [(1, 0), (2, 20)] {
        whole_passes(ports, stall);
    }
}

fn whole_passes(ports: usize, stall: u32) {
    use tern_hdl::program::HeadFormat;
    use tern_model::checkpoint::Checkpoint;
    use tern_sim::golden::bitnet::{AttentionScales, GoldenFabric};
    use tern_sim::golden::fixed_point::RESIDUAL_FRAC;
    use tern_sim::golden::sequencer::run_pass;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 31);
    let cfg = common::attention();
    let matmul = MatmulUnitShape {
        ports,
        engine: tiny_matmul(),
    };
    let image = tern_flows::program::build(
        &ck,
        &cfg,
        &[AttentionScales::of(&cfg)],
        RESIDUAL_FRAC,
        16,
        common::DESIGN,
        HeadFormat::Int8,
        Some(&matmul),
    )
    .unwrap();
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let (mut memory, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
    memory.stall_percent = stall;
    memory.seed = 31;
    let shape = tiny_top(ports, bytes, &cfg);
    let mut top = ModelCache::new(default_cache_root())
        .load_accelerator(&shape, &memory, None)
        .unwrap();
    top.write(0, &image.memory);
    let mut golden = image.memory.clone();
    let mut fabric = GoldenFabric::new(&ck, &cfg);
    let mut position = 0usize;
    let mut feed: Vec<usize> = vec![3, 141, 59, 26, 5, 35, 89, 79];
    for step in 0..4 {
        let want = run_pass(
            &ck.config,
            &cfg,
            &mut golden,
            0,
            common::DESIGN,
            position,
            &feed,
            &mut fabric,
        )
        .unwrap();
        let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
        let o = top.pass(0, position as u32, &ids, 50_000_000);
        let case = format!(
            "{ports} port(s), {stall} % stalls, pass {step}: {} id(s) from {position}",
            ids.len()
        );
        assert_ne!(o.clocks, u64::MAX, "{case}: no end");
        assert_eq!(
            (o.error_code, o.next_token as usize, o.commands_run as usize),
            (0, want.next, want.commands_run),
            "{case}: {o:?}"
        );
        let got = top.read(0, golden.len());
        if let Some(i) = got.iter().zip(&golden).position(|(a, b)| a != b) {
            let end = (i + 16).min(got.len());
            panic!(
                "{case}: memory differs first at 0x{i:x}: got {:02x?}, want {:02x?}",
                &got[i..end],
                &golden[i..end]
            );
        }
        println!(
            "{case}: {} clocks (matmul {}, attention {}, vector {}, LM head {}, the sequencer's own {})",
            o.clocks_pass,
            o.clocks_matmul,
            o.clocks_attention,
            o.clocks_vector,
            o.clocks_lm_head,
            o.clocks_pass
                - o.clocks_matmul
                - o.clocks_attention
                - o.clocks_vector
                - o.clocks_lm_head
        );
        position += feed.len();
        feed = vec![want.next];
    }
}
