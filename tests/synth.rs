//! End-to-end: real Yosys and nextpnr driven by `tern synth`, `tern pnr` and `tern sweep`,
//! each test with its own cache directory. Designs are small so that CI stays quick.

mod common;
use common::{config_file, fake_tool, tern_in, text};

use tern_hdl::config::{ConfigBuilder, EngineKind, TableStorage};
use EngineKind::{AdderTree, Tlmm};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A small matmul engine: a few hundred LUTs on any family.
fn small_config(dir: &Path, name: &str, kind: EngineKind, g: usize) -> String {
    config_file(
        dir,
        name,
        ConfigBuilder::new(kind, g, 1, 1)
            .accumulator_bits(16)
            .storage(TableStorage::Registers)
            .weight_buffer_depth(4)
            .workload(4, 12, 1),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn synth_reports_cells_and_a_fit_verdict_then_answers_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let report = dir.path().join("report.json");
    let r = report.display().to_string();
    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--config", &cfg, "--board", "kv260", "--json", &r],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("fits on kv260") && t.contains("not an Fmax"),
        "{t}"
    );
    let first = json(&report);
    assert_eq!(first["outcome"]["status"], "ok");
    let usage = &first["outcome"]["usage"];
    let luts = usage["luts"].as_u64().unwrap();
    let by_size: u64 = usage["luts_by_size"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(luts > 0 && usage["ffs"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(luts, by_size + usage["lutram_luts"].as_u64().unwrap());
    assert!(
        first["outcome"]["timing_estimate"]["logic_delay_ns"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--config", &cfg, "--board", "kv260", "--json", &r],
    );
    assert!(text(&o).contains("cached result"), "{}", text(&o));
    assert_eq!(json(&report)["outcome"], first["outcome"]);
}

#[test]
fn a_design_larger_than_the_board_gets_a_does_not_fit_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", AdderTree, 2);
    let kv260 = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/data/kv260.toml"),
    )
    .unwrap();
    // Above the engine's structural floor (one 9-bit adder and a 12-bit accumulator),
    // below what synthesis really needs.
    let tiny = dir.path().join("tiny.toml");
    std::fs::write(&tiny, kv260.replace("luts = 117120", "luts = 30")).unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--config", &cfg, "--board", tiny.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("DOES NOT FIT") && t.contains("does NOT fit"),
        "{t}"
    );
}

/// An engine whose tables and adders alone exceed the board is refused before Yosys
/// runs, naming the keys to change.
#[test]
fn an_engine_far_beyond_the_board_is_refused_before_any_tool_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "huge.toml",
        ConfigBuilder::tlmm(4, 128, 30).workload(2560, 2560, 1),
    );
    // A Yosys that would fail the test if it ran.
    let yosys = fake_tool(
        dir.path(),
        "yosys",
        "-V",
        "Yosys 0.70 (fake)",
        "echo ran >> \"$(dirname \"$0\")/ran\"; exit 1",
    );
    let o = tern_in(
        dir.path(),
        &[("TERN_YOSYS", &yosys)],
        &["synth", "--config", &cfg, "--board", "kv260"],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for needle in [
        "cannot fit the kv260",
        "engine.rows_parallel",
        "engine.groups_per_cycle",
        "117120",
        "no tool was run",
    ] {
        assert!(t.contains(needle), "`{needle}` not in: {t}");
    }
    assert!(!dir.path().join("ran").exists(), "Yosys ran");
}

#[test]
fn place_and_route_gives_fmax_on_ecp5_ice40_and_gowin() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    for board in ["ulx3s", "icebreaker", "tangnano20k"] {
        let report = dir.path().join(format!("{board}.json"));
        let o = tern_in(
            dir.path(),
            &[],
            &[
                "pnr",
                "--config",
                &cfg,
                "--board",
                board,
                "--json",
                report.to_str().unwrap(),
            ],
        );
        let t = text(&o);
        assert!(o.status.success(), "{board}: {t}");
        let r = json(&report);
        assert_eq!(r["outcome"]["status"], "ok", "{board}: {r}");
        let fmax = r["outcome"]["route"]["fmax_mhz"].as_f64().unwrap();
        assert!(fmax > 1.0 && fmax < 2000.0, "{board}: {fmax}");
        assert!(t.contains("Fmax"), "{t}");
        // Only ECP5 has an out-of-context mode: elsewhere the IO harness is used and reported.
        assert_eq!(
            r["outcome"]["harness_ffs"].is_null(),
            board == "ulx3s",
            "{board}: {r}"
        );
    }
}

#[test]
fn xilinx_pnr_reports_an_estimate_never_an_fmax() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let o = tern_in(
        dir.path(),
        &[],
        &["pnr", "--config", &cfg, "--board", "kv260"],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("no Fmax") && t.contains("not an Fmax") && !t.contains("MHz after routing"),
        "{t}"
    );
}

#[test]
fn a_time_out_is_reported_and_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    // The default example takes several seconds in Yosys.
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "synth",
            "--config",
            "examples/default.toml",
            "--board",
            "kv260",
            "--time-limit",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("TIMED OUT"), "{t}");
    let results = dir.path().join("results");
    let cached = std::fs::read_dir(&results).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "a time-out must not be cached");
}

fn fake_yosys(dir: &Path, body: &str) -> String {
    fake_tool(dir, "fake-yosys", "-V", "Yosys 0.0 (fake)", body)
}

fn fake_nextpnr(dir: &Path, body: &str) -> String {
    fake_tool(
        dir,
        "fake-nextpnr",
        "--version",
        "fake -- Next Generation Place and Route (Version nextpnr-0.0)",
        body,
    )
}

#[test]
fn a_tool_crash_or_garbage_output_is_a_recorded_failure_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let report = dir.path().join("r.json");
    let cases = [
        ("echo 'ERROR: out of cheese' >&2; kill -SEGV $$", "signal"),
        ("echo 'not json' > stat.json; exit 0", "stat.json"),
    ];
    for (body, expect) in cases {
        let yosys = fake_yosys(dir.path(), body);
        let o = tern_in(
            dir.path(),
            &[("TERN_YOSYS", &yosys)],
            &[
                "synth",
                "--config",
                &cfg,
                "--board",
                "kv260",
                "--force",
                "--json",
                report.to_str().unwrap(),
            ],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("FAILED") && t.contains(expect), "{t}");
        let r = json(&report);
        assert_eq!(r["outcome"]["status"], "failed", "{r}");
    }
}

#[test]
fn a_router_crash_or_garbage_report_is_a_recorded_failure() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let report = dir.path().join("r.json");
    let cases = [
        ("kill -ABRT $$", "signal"),
        ("echo '{\"fmax\": 12' > report.json; exit 0", "not JSON"),
    ];
    for (body, expect) in cases {
        let nextpnr = fake_nextpnr(dir.path(), body);
        let o = tern_in(
            dir.path(),
            &[("TERN_NEXTPNR_ECP5", &nextpnr)],
            &[
                "pnr",
                "--config",
                &cfg,
                "--board",
                "ulx3s",
                "--force",
                "--json",
                report.to_str().unwrap(),
            ],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(t.contains("FAILED") && t.contains(expect), "{t}");
        let r = json(&report);
        assert_eq!(r["outcome"]["status"], "failed", "{r}");
        assert_eq!(r["outcome"]["stage"], "nextpnr", "{r}");
    }
}

#[test]
fn a_missing_router_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let o = tern_in(
        dir.path(),
        &[("TERN_NEXTPNR_ECP5", "/nonexistent/nextpnr-ecp5")],
        &["pnr", "--config", &cfg, "--board", "ulx3s"],
    );
    let t = text(&o);
    assert!(!o.status.success());
    assert!(
        t.contains("nextpnr-ecp5 not found") && t.contains("setup.sh"),
        "{t}"
    );
}

#[test]
fn unknown_board_and_broken_board_file_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), "small.toml", Tlmm, 2);
    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--config", &cfg, "--board", "de10"],
    );
    assert!(text(&o).contains("unknown board `de10`"), "{}", text(&o));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n").unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--config", &cfg, "--board", bad.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("bad.toml") && t.contains("missing field"),
        "{t}"
    );
}

#[test]
fn a_killed_sweep_resumes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    for (i, (kind, g)) in [(Tlmm, 2), (AdderTree, 2), (Tlmm, 3), (AdderTree, 3)]
        .iter()
        .enumerate()
    {
        small_config(&configs, &format!("c{i}.toml"), *kind, *g);
    }
    let cfgs = configs.display().to_string();
    // First run: killed once at least one result is in the cache.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .env("TERN_CACHE_DIR", dir.path())
        .env("TERN_NO_PROGRESS", "1")
        .args(["sweep", &cfgs, "--boards", "kv260", "--jobs", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = dir.path().join("results");
    let deadline = Instant::now() + Duration::from_secs(300);
    // Finished records only: a write in flight is a hidden temporary file until renamed.
    let cached = || {
        std::fs::read_dir(&results).map_or(0, |d| {
            d.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    !name.starts_with('.') && name.ends_with(".json")
                })
                .count()
        })
    };
    while cached() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The tools die with tern: nothing keeps running in this sweep's work directories.
    let work = dir.path().join("work");
    let orphans = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path().join("cwd")).ok())
            .filter(|cwd| cwd.starts_with(&work))
            .map(|cwd| cwd.display().to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !orphans().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        orphans(),
        Vec::<String>::new(),
        "tool processes outlived tern"
    );
    let done_before = cached();
    assert!(done_before >= 1, "nothing was cached before the kill");
    // Second run: completes, and the finished ones come from the cache.
    let out = dir.path().join("sweep.json");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "sweep",
            &cfgs,
            "--boards",
            "kv260,ulx3s",
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let r = json(&out);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let from_cache = rows.iter().filter(|r| r["cached"] == true).count();
    assert!(
        from_cache >= done_before.min(4),
        "{from_cache} < {done_before}: {t}"
    );
    assert!(
        rows.iter().all(|r| r["synth"]["outcome"]["status"] == "ok"),
        "{t}"
    );
    assert_eq!(r["stats"]["rows"], 8);
}

/// `tern synth --verilog FILE... --top MODULE`: a block `tern verilog` writes (here the
/// stripe reader over one port) through the same Yosys script: cells, a fit verdict and
/// the labelled timing estimate in the JSON record, the second time from the cache; two
/// files read as one design. A file without the module, or no board, is refused before
/// any tool runs.
#[test]
fn synth_takes_a_verilog_block_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sr");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "verilog",
            "--stripe-reader",
            "1",
            "--burst",
            "4",
            "--outstanding",
            "1",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v = out.join("tern_stripe_reader.v").display().to_string();
    let report = dir.path().join("block.json").display().to_string();
    let args = [
        "synth",
        "--verilog",
        &v,
        "--top",
        "tern_stripe_reader",
        "--board",
        "kv260",
        "--json",
        &report,
    ];
    let o = tern_in(dir.path(), &[], &args);
    let t = text(&o);
    assert!(o.status.success() && t.contains("fits on kv260"), "{t}");
    let first = json(Path::new(&report));
    assert_eq!(first["outcome"]["status"], "ok");
    assert_eq!(first["design"]["top"], "tern_stripe_reader");
    assert!(
        first["outcome"]["usage"]["luts"].as_u64().unwrap() > 0,
        "{first}"
    );
    assert!(
        first["outcome"]["timing_estimate"]["lut_levels"]
            .as_u64()
            .unwrap()
            > 0
    );
    let o = tern_in(dir.path(), &[], &args);
    assert!(text(&o).contains("cached result"), "{}", text(&o));
    // Several files are one design (the matmul unit and its engine's core): the top may
    // be in any of them.
    let extra = dir.path().join("extra.v");
    std::fs::write(
        &extra,
        "module tern_extra(input wire a, output wire y); assign y = ~a; endmodule\n",
    )
    .unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "synth",
            "--verilog",
            extra.to_str().unwrap(),
            &v,
            "--top",
            "tern_stripe_reader",
            "--board",
            "kv260",
        ],
    );
    let t = text(&o);
    assert!(o.status.success() && t.contains("fits on kv260"), "{t}");

    let o = tern_in(
        dir.path(),
        &[],
        &[
            "synth",
            "--verilog",
            &v,
            "--top",
            "nope",
            "--board",
            "kv260",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("no module `nope`"),
        "{}",
        text(&o)
    );
    let o = tern_in(
        dir.path(),
        &[],
        &["synth", "--verilog", &v, "--top", "tern_stripe_reader"],
    );
    assert!(
        !o.status.success() && text(&o).contains("--board"),
        "{}",
        text(&o)
    );
}
