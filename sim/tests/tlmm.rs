//! Co-verification of the TLMM engine (and its adder-tree baseline) against the golden
//! model under Verilator, over many configurations, vector kinds and handshake patterns.
//! Every streaming run also checks the cycle model (`tern_hdl::timing`) clock for clock.

mod common;

use std::path::PathBuf;

use common::{assert_mismatch_reported, waveforms};
use tern_hdl::config::{ConfigBuilder, TableStorage};
use tern_hdl::{generate, Config};
use tern_sim::cosim::{cosimulate, describe, CosimError, Stimulus, VectorKind, Vectors};
use tern_sim::mutation::{extra_result_after, mutated};
use tern_sim::verilator::ModelCache;

use TableStorage::{Block, Distributed, Registers};

fn tlmm(g: usize, p: usize, q: usize) -> ConfigBuilder {
    ConfigBuilder::tlmm(g, p, q)
}

fn adder_tree(g: usize, p: usize, q: usize) -> ConfigBuilder {
    ConfigBuilder::adder_tree(g, p, q)
}

/// Co-simulate every vector kind on `cfg`, alternating streaming and bursty handshakes.
fn check(builder: ConfigBuilder, seed: u64) {
    let cfg = builder.build().unwrap_or_else(|e| panic!("{e}"));
    check_config(&cfg, seed);
}

fn check_config(cfg: &Config, seed: u64) {
    let design = generate(cfg).unwrap();
    let lib = ModelCache::default()
        .load(&design)
        .unwrap_or_else(|e| panic!("{}: {e}", describe(cfg)));
    for (n, kind) in VectorKind::ALL.into_iter().enumerate() {
        let seed = seed + n as u64;
        let stimulus = if n % 2 == 0 {
            Stimulus::STREAMING
        } else {
            Stimulus::BURSTY
        };
        let vectors = Vectors::generate(cfg, kind, seed);
        match cosimulate(&design, &lib, &vectors, stimulus, seed, &waveforms()) {
            Ok(report) => {
                assert_eq!(report.outputs, cfg.workload.m * cfg.workload.tokens);
                // The cycle model the dataset's latency targets and the DSE come from.
                if stimulus == Stimulus::STREAMING {
                    assert_eq!(
                        report.run.cycles,
                        cfg.streaming_cycles(),
                        "cycle model vs Verilator: {} seed {seed}",
                        describe(cfg)
                    );
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn default_example() {
    let cfg = Config::from_path(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/default.toml"),
    )
    .unwrap();
    check_config(&cfg, 1);
}

// Every G from 2 to 5, every table storage, one and two table banks, several P and Q,
// K and M not multiples of a chunk or row block, all three result widths, with and
// without a weight FIFO, pipeline registers after every level or only at the root.

#[test]
fn tlmm_g2_single_lane_tiny() {
    check(tlmm(2, 1, 1).accumulator_bits(16).workload(3, 5, 2), 10);
}

#[test]
fn tlmm_g2_wide_registers() {
    check(
        tlmm(2, 8, 4)
            .storage(Registers)
            .weight_buffer_depth(8)
            .workload(64, 64, 2),
        20,
    );
}

#[test]
fn tlmm_g3_ragged_m_and_k_block_storage() {
    check(
        tlmm(3, 4, 2)
            .storage(Block)
            .weight_buffer_depth(16)
            .workload(37, 100, 3),
        30,
    );
}

#[test]
fn tlmm_g3_deep_groups_one_register_per_level() {
    check(
        tlmm(3, 1, 8)
            .accumulator_bits(32)
            .tree_stage_levels(1)
            .weight_buffer_depth(2)
            .workload(5, 300, 2),
        40,
    );
}

#[test]
fn tlmm_g4_acc16_distributed() {
    check(
        tlmm(4, 2, 3)
            .accumulator_bits(16)
            .storage(Distributed)
            .weight_buffer_depth(4)
            .workload(16, 50, 2),
        50,
    );
}

#[test]
fn tlmm_g4_many_tokens_one_bank() {
    check(tlmm(4, 9, 4).table_banks(1).workload(40, 70, 6), 60);
}

#[test]
fn tlmm_g5_single_group() {
    check(tlmm(5, 3, 1).workload(10, 61, 2), 70);
}

#[test]
fn tlmm_g5_wide_no_tree_registers() {
    check(
        tlmm(5, 2, 4)
            .accumulator_bits(32)
            .tree_stage_levels(16)
            .weight_buffer_depth(32)
            .workload(8, 200, 2),
        80,
    );
}

/// K = 128 is the largest K a 16-bit result admits (8 + 7 + 1 = 16 bits); the
/// extreme vectors reach ±128·K.
#[test]
fn tlmm_k_at_the_16_bit_accumulator_limit() {
    check(tlmm(4, 2, 2).accumulator_bits(16).workload(6, 128, 2), 90);
}

/// K = 32768 is the largest K a 24-bit result admits.
#[test]
fn tlmm_k_at_the_24_bit_accumulator_limit() {
    check(tlmm(4, 4, 8).workload(4, 32768, 1), 100);
}

#[test]
fn tlmm_minimal_m1_k1() {
    check(
        tlmm(2, 1, 1)
            .accumulator_bits(16)
            .storage(Registers)
            .workload(1, 1, 3),
        110,
    );
}

#[test]
fn adder_tree_g3() {
    check(
        adder_tree(3, 4, 2)
            .storage(Distributed)
            .weight_buffer_depth(16)
            .workload(37, 100, 2),
        120,
    );
}

#[test]
fn adder_tree_g5_acc16_block() {
    check(
        adder_tree(5, 2, 1)
            .accumulator_bits(16)
            .storage(Block)
            .workload(9, 33, 2),
        130,
    );
}

#[test]
fn adder_tree_g2_square_one_bank() {
    check(adder_tree(2, 3, 3).table_banks(1).workload(10, 40, 3), 140);
}

// Token blocks: each weight beat serves every token of a block; the last block is
// shorter (act_last), and a block of one token runs at the decode rate.

#[test]
fn token_blocks_lane_lutram_with_a_short_last_block() {
    check(tlmm(3, 5, 3).token_block(4).workload(23, 70, 7), 150);
}

#[test]
fn token_blocks_of_three_one_bank_g4() {
    check(
        tlmm(4, 3, 2)
            .token_block(3)
            .table_banks(1)
            .workload(9, 40, 5),
        160,
    );
}

#[test]
fn token_blocks_shared_tables_and_adder_tree() {
    check(
        tlmm(2, 2, 2)
            .storage(Registers)
            .token_block(2)
            .workload(6, 17, 5),
        170,
    );
    check(
        adder_tree(3, 2, 2)
            .token_block(5)
            .weight_buffer_depth(4)
            .workload(7, 25, 6),
        171,
    );
}

/// Blocks of 8 tokens hold each weight beat 8 clocks: the harness's hang bound must
/// allow for that on the adder tree too, whose table build is one clock (the bench's
/// 2560×2560 prefill run was once reported hung, a harness fault, not the engine's).
#[test]
fn adder_tree_full_token_blocks_of_eight() {
    check(
        adder_tree(3, 2, 2).token_block(8).workload(100, 900, 16),
        172,
    );
}

#[test]
fn token_block_of_one_row_block_and_one_chunk() {
    // n·R = 1 accumulator word per chunk: the engine idles a clock between beats.
    check(tlmm(3, 8, 2).token_block(2).workload(8, 6, 3), 180);
    check(tlmm(3, 8, 2).workload(8, 30, 3), 181);
}

// Large engines (hundreds to two thousand weights/clock) with P and Q that are not
// powers of two and K that is not a multiple of Q·G.

#[test]
fn large_tlmm_g3_p100_q7() {
    check(tlmm(3, 100, 7).workload(230, 500, 2), 300);
}

#[test]
fn large_tlmm_g4_p37_q7_one_bank() {
    check(tlmm(4, 37, 7).table_banks(1).workload(200, 301, 2), 310);
}

#[test]
fn large_tlmm_g5_p13_q16() {
    check(tlmm(5, 13, 16).workload(100, 333, 2), 320);
}

#[test]
fn large_tlmm_g2_p128_q5_token_blocks() {
    check(tlmm(2, 128, 5).token_block(3).workload(300, 250, 4), 330);
}

#[test]
fn large_adder_tree_g3_p24_q14() {
    check(adder_tree(3, 24, 14).workload(60, 200, 2), 340);
}

#[test]
fn large_tlmm_g3_p57_q6_registers() {
    check(
        tlmm(3, 57, 6)
            .storage(Registers)
            .weight_buffer_depth(4)
            .workload(120, 100, 2),
        350,
    );
}

/// The harness must catch a wrong RTL: break a row adder of a generated design and
/// expect a mismatch that names the config, the seed and a waveform on disk.
#[test]
fn broken_rtl_is_reported_with_seed_and_waveform() {
    let cfg = tlmm(3, 2, 2).workload(6, 24, 1).build().unwrap();
    // Row 0's first adder: make the subtraction flag constant (never subtract).
    let design = mutated(
        &generate(&cfg).unwrap(),
        "wire n0_1_0_d = sign$0 ^ sign$1;",
        "wire n0_1_0_d = 1'b0;",
    );
    let lib = ModelCache::default().load(&design).unwrap();
    let seed = 7;
    let vectors = Vectors::generate(&cfg, VectorKind::Random, seed);
    let err = cosimulate(
        &design,
        &lib,
        &vectors,
        Stimulus::STREAMING,
        seed,
        &waveforms(),
    )
    .unwrap_err();
    assert_mismatch_reported(err, &["seed:     7", "G=3", "expected"]);
}

/// An engine that sends one result beat more than the workload has must fail, even
/// though every expected result matched: the harness keeps clocking after the last.
#[test]
fn an_extra_result_beat_is_caught() {
    let cfg = tlmm(3, 2, 2).workload(6, 24, 2).build().unwrap();
    // 2 tokens × 3 row blocks: one more after the sixth.
    let design = extra_result_after(&generate(&cfg).unwrap(), 6);
    let lib = ModelCache::default().load(&design).unwrap();
    let seed = 9;
    let vectors = Vectors::generate(&cfg, VectorKind::Random, seed);
    let err = cosimulate(
        &design,
        &lib,
        &vectors,
        Stimulus::STREAMING,
        seed,
        &waveforms(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            CosimError::ExtraResult {
                waveform: Some(_),
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("after all 6 expected") && text.contains("seed 9"),
        "{text}"
    );
}

/// The same testbench on rust-hdl's own simulator: checks the Rust `update()` models of
/// every block (the leaves written as Verilog text included) against the golden model.
#[test]
fn rust_hdl_simulator_matches_golden() {
    use tern_sim::cosim::{compare, drive};
    use tern_sim::rust_hdl_sim::RustHdlEngine;
    let configs = [
        tlmm(3, 2, 2)
            .storage(Block)
            .weight_buffer_depth(4)
            .workload(5, 23, 3),
        tlmm(3, 3, 3)
            .token_block(2)
            .tree_stage_levels(1)
            .workload(7, 20, 3),
    ];
    for (c, builder) in configs.into_iter().enumerate() {
        let cfg = builder.build().unwrap();
        for (n, kind) in VectorKind::ALL.into_iter().enumerate() {
            let seed = 200 + 10 * c as u64 + n as u64;
            let vectors = Vectors::generate(&cfg, kind, seed);
            let mut engine = RustHdlEngine::<4, 24>::new(&cfg);
            let stimulus = if n % 2 == 0 {
                Stimulus::STREAMING
            } else {
                Stimulus::BURSTY
            };
            let run = drive(&mut engine, &cfg, &vectors, stimulus, seed).unwrap();
            assert_eq!(
                compare(&cfg, &vectors, &run),
                None,
                "{} seed {seed} {kind:?}",
                describe(&cfg)
            );
        }
    }
    let cfg = adder_tree(2, 2, 2)
        .accumulator_bits(16)
        .storage(Distributed)
        .table_banks(1)
        .workload(3, 9, 2)
        .build()
        .unwrap();
    let vectors = Vectors::generate(&cfg, VectorKind::Random, 300);
    let mut engine = RustHdlEngine::<1, 16>::new(&cfg);
    let run = drive(&mut engine, &cfg, &vectors, Stimulus::BURSTY, 300).unwrap();
    assert_eq!(
        compare(&cfg, &vectors, &run),
        None,
        "{} seed 300",
        describe(&cfg)
    );
}
