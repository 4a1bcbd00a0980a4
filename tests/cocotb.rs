//! The accelerator top under cocotb (sim/cocotb): an independent opinion on the AXI side.
//! cocotbext-axi's AxiLiteMaster drives the control port and its AxiRam is the memory
//! (it asserts, among other things, that no burst crosses 4 KiB); the Python testbench
//! packs weights and activations from docs/streams.md itself, computes y = W·x with NumPy,
//! and pauses every channel of both AXI ports at random. Simulated with Icarus Verilog.
//!
//! The attention top has a testbench of its own (`test_tern_attention_top.py`).
//!
//! Needs python3 with cocotb, cocotbext-axi and numpy (scripts/setup.sh installs them);
//! without them this test fails, saying so.

mod common;

use common::text;
use std::path::Path;
use std::process::Command;

use tern_hdl::config::{ConfigBuilder, TableStorage, TopConfig};
use tern_hdl::{Config, EngineKind};

fn top_config(kind: EngineKind, g: usize, p: usize, q: usize) -> ConfigBuilder {
    ConfigBuilder::new(kind, g, p, q)
}

fn params(cfg: &Config) -> String {
    serde_json::json!({
        "kind": cfg.engine.kind.name(),
        "G": cfg.engine.group_size,
        "P": cfg.engine.rows_parallel,
        "Q": cfg.engine.groups_per_cycle,
        "M": cfg.workload.m,
        "K": cfg.workload.k,
        "acc": cfg.engine.accumulator_bits,
        "bus_bits": cfg.top.bus_bits,
        "tokens": cfg.workload.tokens,
        "token_block": cfg.engine.token_block,
    })
    .to_string()
}

#[test]
fn the_top_passes_the_cocotb_axi_testbench() {
    need_cocotb();
    let top = |bus_bits| TopConfig {
        bus_bits,
        burst_beats: 4,
        reads_in_flight: 2,
        memory_mib: 1,
    };
    // (config, seed, percent of clocks each channel pauses)
    let cases = [
        (
            top_config(EngineKind::Tlmm, 3, 4, 2)
                .storage(TableStorage::Block)
                .weight_buffer_depth(4)
                .token_block(2)
                .workload(20, 40, 3)
                .top(top(64)),
            3,
            30,
        ),
        (
            top_config(EngineKind::Tlmm, 3, 4, 2)
                .workload(20, 40, 2)
                .top(top(256)),
            4,
            0,
        ),
        (
            top_config(EngineKind::AdderTree, 2, 4, 2)
                .storage(TableStorage::Registers)
                .workload(12, 33, 2)
                .top(top(128)),
            5,
            50,
        ),
        // 10-word weight beats on a 2-word bus: five bus words collected per beat.
        (
            top_config(EngineKind::Tlmm, 3, 8, 8)
                .storage(TableStorage::Block)
                .token_block(2)
                .workload(20, 40, 3)
                .top(top(64)),
            7,
            25,
        ),
        (
            top_config(EngineKind::Tlmm, 5, 2, 1)
                .accumulator_bits(32)
                .token_block(3)
                .table_banks(1)
                .workload(9, 50, 4)
                .top(top(512)),
            6,
            20,
        ),
    ];
    // Kept when a case fails, so the rerun command in the message works.
    let dir = tempfile::tempdir().unwrap().keep();
    for (i, (builder, seed, pause)) in cases.into_iter().enumerate() {
        let cfg = builder.build().unwrap();
        let out = dir.join(format!("top{i}"));
        let design = tern_hdl::top::generate_top(&cfg).unwrap();
        tern_hdl::top::write_top(&design, &out).unwrap();
        run_case(
            &out,
            "test_tern_top",
            &params(&cfg),
            (seed, pause),
            &format!("case {i} (config {})", cfg.to_toml().replace('\n', " ")),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fail, saying what to install, when python3 lacks cocotb, cocotbext-axi or numpy.
fn need_cocotb() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import cocotb, cocotbext.axi, numpy, cocotb_tools.runner",
        ])
        .output();
    let have = probe.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        have,
        "python3 with cocotb, cocotbext-axi and numpy is needed for this test (run scripts/setup.sh): {}",
        probe
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_else(|e| e.to_string())
    );
}

/// Run the testbench `test` on the top generated in `out`, with `params` (JSON), and
/// expect every check to pass; a failure names `what` and the rerun command.
fn run_case(out: &Path, test: &str, params: &str, (seed, pause): (u64, u32), what: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/cocotb/run_top.py");
    let o = Command::new("python3")
        .arg(&script)
        .args([
            "--dir",
            out.to_str().unwrap(),
            "--params",
            params,
            "--test",
            test,
        ])
        .args(["--seed", &seed.to_string(), "--pause", &pause.to_string()])
        .output()
        .unwrap();
    let log = text(&o);
    let failure = log
        .lines()
        .filter(|l| {
            l.contains("Error")
                || l.contains("FAIL")
                || l.contains("difference")
                || l.contains("differs")
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        o.status.success() && log.contains("bit-exact:"),
        "cocotb {what}, seed {seed}, pause {pause}% failed:\n{failure}\n(full log: rerun `python3 sim/cocotb/run_top.py --dir {} --params '{params}' --test {test} --seed {seed} --pause {pause}`)",
        out.display(),
    );
}

/// The attention top under its own cocotb testbench (sim/cocotb/test_tern_attention_top.py):
/// the KV cache laid out in AxiRam from docs/top.md, every row recomputed in Python from
/// the integer contract, random pauses on every channel; decode, and causal prefill on an
/// engine that keeps 4 rows per pass (which the testbench does not know about).
#[test]
fn the_attention_top_passes_its_cocotb_testbench() {
    need_cocotb();
    // (d, macs, tile, L, rows, causal, query_block, bus_bits, seed, pause)
    let cases = [
        (32, 8, 8, 21, 1, false, 1, 128, 11u64, 30u32),
        (32, 16, 4, 19, 6, true, 4, 64, 12, 20),
    ];
    let dir = tempfile::tempdir().unwrap().keep();
    for (i, (d, macs, tile, l, rows, causal, block, bus, seed, pause)) in
        cases.into_iter().enumerate()
    {
        let mut cfg = tern_hdl::config::AttentionConfigBuilder::new(d, macs, tile, 64)
            .mode(causal, causal)
            .workload(l, rows)
            .query_block(block)
            .build()
            .unwrap();
        cfg.top = TopConfig {
            bus_bits: bus,
            burst_beats: 4,
            reads_in_flight: 2,
            memory_mib: 1,
        };
        let out = dir.join(format!("attention{i}"));
        let top = tern_hdl::top::generate_top_any(&cfg.clone().into()).unwrap();
        tern_hdl::top::write_top(&top, &out).unwrap();
        let params = serde_json::json!({
            "d": d, "macs": macs, "tile": tile, "L": l, "rows": rows,
            "causal": causal, "bus_bits": bus,
        })
        .to_string();
        run_case(
            &out,
            "test_tern_attention_top",
            &params,
            (seed, pause),
            &format!(
                "attention case {i} (config {})",
                cfg.to_toml().replace('\n', " ")
            ),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generated FuseSoC core file works with FuseSoC itself: its lint target (Verilator
/// -Wall) and its simulation target (Icarus) build, and kernel.xml is well-formed XML
/// naming the kernel's four arguments.
#[test]
fn the_generated_ip_packaging_works_with_fusesoc_and_parses_as_xml() {
    let fusesoc = Command::new("fusesoc").arg("--version").output();
    assert!(
        fusesoc.as_ref().is_ok_and(|o| o.status.success()),
        "fusesoc is needed for this test (run scripts/setup.sh): {fusesoc:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        Config::from_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.toml"))
            .unwrap();
    let design = tern_hdl::top::generate_top(&cfg).unwrap();
    tern_hdl::top::write_top(&design, dir.path()).unwrap();
    for target in ["lint", "sim"] {
        let o = Command::new("fusesoc")
            .current_dir(dir.path())
            .args(["--cores-root", ".", "run", "--target", target])
            .arg(tern_hdl::top::package::CORE_NAME)
            .output()
            .unwrap();
        let log = text(&o);
        assert!(
            o.status.success() && !log.contains("ERROR"),
            "fusesoc {target}: {log}"
        );
    }
    let o = Command::new("python3")
        .current_dir(dir.path())
        .args([
            "-c",
            "import xml.etree.ElementTree as E; r = E.parse('kernel.xml').getroot(); \
             k = r.find('kernel'); print(k.get('name'), k.get('hwControlProtocol'), \
             [(a.get('name'), a.get('offset'), a.get('port')) for a in k.iter('arg')])",
        ])
        .output()
        .unwrap();
    let parsed = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        parsed.trim(),
        "tern_top ap_ctrl_hs [('weights', '0x10', 'm_axi_gmem'), ('activations', '0x18', 'm_axi_gmem'), \
         ('results', '0x20', 'm_axi_gmem'), ('tokens', '0x28', 's_axi_control')]"
    );
}
