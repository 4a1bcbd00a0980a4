//! Co-verification of the TLMM engine (and its adder-tree baseline) against the golden
//! model under Verilator, over many configurations, vector kinds and handshake patterns.

use std::path::PathBuf;

use tern_hdl::{generate, Config};
use tern_sim::cosim::{cosimulate, describe, Stimulus, VectorKind, Vectors};
use tern_sim::verilator::ModelCache;

fn config(
    kind: &str,
    (g, p, q): (usize, usize, usize),
    acc: usize,
    fifo: usize,
    storage: &str,
    mkt: (usize, usize, usize),
) -> Config {
    let (m, k, t) = mkt;
    Config::from_toml(
        &format!(
            "[engine]\nkind = \"{kind}\"\ngroup_size = {g}\nrows_parallel = {p}\ngroups_per_cycle = {q}\n\
             activation_bits = 8\naccumulator_bits = {acc}\ntable_storage = \"{storage}\"\nweight_buffer_depth = {fifo}\n\
             [workload]\nm = {m}\nk = {k}\ntokens = {t}\n"
        ),
        "test config",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn waveforms() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms")
}

/// Co-simulate every vector kind on `cfg`, alternating streaming and bursty handshakes.
fn check(cfg: Config, seed: u64) {
    let design = generate(&cfg).unwrap();
    let lib = ModelCache::default()
        .load(&design)
        .unwrap_or_else(|e| panic!("{}: {e}", describe(&cfg)));
    for (n, kind) in VectorKind::ALL.into_iter().enumerate() {
        let seed = seed + n as u64;
        let stimulus = if n % 2 == 0 {
            Stimulus::STREAMING
        } else {
            Stimulus::BURSTY
        };
        let vectors = Vectors::generate(&cfg, kind, seed);
        match cosimulate(&design, &lib, &vectors, stimulus, seed, &waveforms()) {
            Ok(report) => {
                assert_eq!(report.outputs, cfg.workload.m * cfg.workload.tokens);
                // The cycle model the dataset's latency targets come from.
                if stimulus == Stimulus::STREAMING {
                    assert_eq!(
                        report.run.cycles,
                        cfg.streaming_cycles(),
                        "cycle model vs Verilator: {} seed {seed}",
                        describe(&cfg)
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
    check(cfg, 1);
}

// Every G from 2 to 5, several P and Q, K and M not multiples of a chunk or row block,
// all three accumulator widths and table storages, shallow and deep weight FIFOs.
#[test]
fn tlmm_g2_single_lane_tiny() {
    check(
        config("tlmm", (2, 1, 1), 16, 2, "distributed", (3, 5, 2)),
        10,
    );
}

#[test]
fn tlmm_g2_wide_registers() {
    check(
        config("tlmm", (2, 8, 4), 24, 8, "registers", (64, 64, 2)),
        20,
    );
}

#[test]
fn tlmm_g3_ragged_m_and_k() {
    check(config("tlmm", (3, 4, 2), 24, 16, "block", (37, 100, 3)), 30);
}

#[test]
fn tlmm_g3_deep_groups_shallow_fifo() {
    check(
        config("tlmm", (3, 1, 8), 32, 2, "distributed", (5, 300, 2)),
        40,
    );
}

#[test]
fn tlmm_g4_acc16() {
    check(config("tlmm", (4, 2, 3), 16, 4, "block", (16, 50, 2)), 50);
}

#[test]
fn tlmm_g4_many_tokens_double_buffering() {
    check(
        config("tlmm", (4, 4, 4), 24, 4, "distributed", (12, 70, 6)),
        60,
    );
}

#[test]
fn tlmm_g5_single_group() {
    check(config("tlmm", (5, 3, 1), 24, 8, "block", (10, 61, 2)), 70);
}

#[test]
fn tlmm_g5_wide() {
    check(
        config("tlmm", (5, 2, 4), 32, 32, "distributed", (8, 200, 2)),
        80,
    );
}

/// K = 128 is the largest K a 16-bit accumulator admits (8 + 7 + 1 = 16 bits); the
/// extreme vectors reach ±128·K.
#[test]
fn tlmm_k_at_the_16_bit_accumulator_limit() {
    check(config("tlmm", (4, 2, 2), 16, 4, "block", (6, 128, 2)), 90);
}

/// K = 32768 is the largest K a 24-bit accumulator admits.
#[test]
fn tlmm_k_at_the_24_bit_accumulator_limit() {
    check(
        config("tlmm", (4, 4, 8), 24, 16, "block", (4, 32768, 1)),
        100,
    );
}

#[test]
fn tlmm_minimal_m1_k1() {
    check(
        config("tlmm", (2, 1, 1), 16, 2, "registers", (1, 1, 3)),
        110,
    );
}

#[test]
fn adder_tree_g3() {
    check(
        config("adder-tree", (3, 4, 2), 24, 16, "distributed", (37, 100, 2)),
        120,
    );
}

#[test]
fn adder_tree_g5_acc16() {
    check(
        config("adder-tree", (5, 2, 1), 16, 4, "block", (9, 33, 2)),
        130,
    );
}

#[test]
fn adder_tree_g2_square() {
    check(
        config("adder-tree", (2, 3, 3), 24, 8, "registers", (10, 40, 3)),
        140,
    );
}

/// The harness must catch a wrong RTL: break the row adder of a generated design and
/// expect a mismatch that names the config, the seed and a waveform on disk.
#[test]
fn broken_rtl_is_reported_with_seed_and_waveform() {
    let cfg = config("tlmm", (3, 2, 2), 24, 4, "distributed", (6, 24, 1));
    let mut design = generate(&cfg).unwrap();
    // row_sum$0 = (lane$0 + lane$1): make it a subtraction.
    let needle = "row_sum$0 = ($signed(lane$0) + $signed(lane$1));";
    assert!(
        design.core_verilog.contains(needle),
        "generated lookup changed shape"
    );
    design.core_verilog = design
        .core_verilog
        .replace(needle, "row_sum$0 = ($signed(lane$0) - $signed(lane$1));");
    design.manifest.content_hash = format!("broken{}", design.manifest.content_hash);
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
    let text = err.to_string();
    assert!(
        text.contains("seed:     7") && text.contains("g=3") && text.contains("expected"),
        "{text}"
    );
    let tern_sim::cosim::CosimError::Mismatch(m) = err else {
        panic!("{text}")
    };
    let vcd = m.waveform.expect("a waveform is written");
    let dump = std::fs::read_to_string(&vcd).unwrap();
    assert!(
        dump.contains("res_data") && dump.contains("#"),
        "not a VCD: {}",
        vcd.display()
    );
}

/// The same testbench on rust-hdl's own simulator: checks the Rust `update()` models of
/// every block (the hand-built leaves included) against the golden model.
#[test]
fn rust_hdl_simulator_matches_golden() {
    use tern_sim::cosim::{compare, drive};
    use tern_sim::rust_hdl_sim::RustHdlEngine;
    let cfg = config("tlmm", (3, 2, 2), 24, 4, "block", (5, 23, 3));
    for (n, kind) in VectorKind::ALL.into_iter().enumerate() {
        let seed = 200 + n as u64;
        let vectors = Vectors::generate(&cfg, kind, seed);
        let mut engine = RustHdlEngine::<10, 10, 4, 24>::new(&cfg);
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
    let cfg = config("adder-tree", (2, 2, 2), 16, 2, "distributed", (3, 9, 2));
    let vectors = Vectors::generate(&cfg, VectorKind::Random, 300);
    let mut engine = RustHdlEngine::<8, 9, 1, 16>::new(&cfg);
    let run = drive(&mut engine, &cfg, &vectors, Stimulus::BURSTY, 300).unwrap();
    assert_eq!(
        compare(&cfg, &vectors, &run),
        None,
        "{} seed 300",
        describe(&cfg)
    );
}
