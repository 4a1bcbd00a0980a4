//! End-to-end: `tern dataset` with real Yosys, and `tern train`, `tern eval`,
//! `tern predict` and `tern dse` on the shipped dataset and model.

mod common;
use common::{fake_tool, tern_in, text};

use std::path::{Path, PathBuf};

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// Three small engines: a space that Yosys gets through in seconds.
const TINY_SPACE: &str = r#"
name = "tiny"
[fixed]
"engine.activation_bits" = 8
"engine.accumulator_bits" = 16
"engine.table_storage" = "registers"
"engine.weight_buffer_depth" = 4
"engine.rows_parallel" = 1
"engine.groups_per_cycle" = 1
"workload.m" = 4
"workload.k" = 12
[dimensions]
"engine.kind" = ["tlmm", "adder-tree"]
"engine.group_size" = [2, 3]
"workload.tokens" = [1, 3]
"#;

fn rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dataset_rows_come_from_real_synthesis_and_a_rerun_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("tiny.toml");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let out = dir.path().join("tiny.jsonl");
    let args = [
        "dataset",
        "--space",
        space.to_str().unwrap(),
        "--board",
        "kv260",
        "--n",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "2",
    ];
    let o = tern_in(dir.path(), &[], &args);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("3 added (3 ok, 0 failed, 0 timed out)"), "{t}");
    let made = rows(&out);
    assert_eq!(made.len(), 3);
    for r in &made {
        let cfg = tern_hdl::Config::from_toml(r["config_toml"].as_str().unwrap(), "row").unwrap();
        let t = &r["targets"];
        assert!(
            t["luts"].as_f64().unwrap() > 0.0 && t["ffs"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert_eq!(t["cycles"].as_f64().unwrap(), cfg.streaming_cycles() as f64);
        assert!(r["yosys"].as_str().unwrap().starts_with("Yosys"));
        assert!(!r["graph"]["nodes"].as_array().unwrap().is_empty());
    }
    let o = tern_in(dir.path(), &[], &args);
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("3 rows already there, 0 added"),
        "{t}"
    );
    assert_eq!(rows(&out).len(), 3);
}

/// `--blocks`: a second Yosys run with the RTL blocks kept labels every block the graph
/// names; the blocks add up to a little more than the flattened design.
#[test]
fn dataset_rows_carry_per_block_labels_from_kept_hierarchy_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("tiny.toml");
    std::fs::write(
        &space,
        TINY_SPACE.replace(r#""registers""#, r#""lane-lutram""#),
    )
    .unwrap();
    let out = dir.path().join("tiny.jsonl");
    let args = [
        "dataset",
        "--space",
        space.to_str().unwrap(),
        "--board",
        "kv260",
        "--n",
        "1",
        "--blocks",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = tern_in(dir.path(), &[], &args);
    let t = text(&o);
    assert!(o.status.success() && t.contains("1 ok"), "{t}");
    let made = rows(&out);
    let r = &made[0];
    let blocks = r["blocks"].as_object().expect("per-block labels");
    for node in r["graph"]["nodes"].as_array().unwrap() {
        let rtl = node["rtl"].as_str().unwrap();
        assert!(blocks.contains_key(rtl), "{rtl} unlabelled: {r}");
    }
    let sum = |k: &str| -> f64 { blocks.values().map(|b| b[k].as_f64().unwrap()).sum() };
    let flat = |k: &str| r["targets"][k].as_f64().unwrap();
    for k in ["luts", "ffs"] {
        assert!(
            sum(k) >= 0.9 * flat(k) && sum(k) <= 1.5 * flat(k),
            "{k}: blocks {} vs flat {}",
            sum(k),
            flat(k)
        );
    }
    assert!(
        blocks["glue"]["ffs"].as_f64().unwrap() > 0.0,
        "control flops"
    );
    assert!(
        blocks["tables"]["lutram_luts"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    // A dataset made without block labels is not silently extended with them.
    let plain = dir.path().join("plain.jsonl");
    std::fs::copy(&out, &plain).unwrap();
    let text_of = std::fs::read_to_string(&plain).unwrap();
    std::fs::write(
        &plain,
        text_of.replacen("\"blocks\":true", "\"blocks\":false", 1),
    )
    .unwrap();
    let mut again = args.to_vec();
    let p = plain.to_str().unwrap().to_string();
    *again
        .iter_mut()
        .find(|a| a.ends_with("tiny.jsonl"))
        .unwrap() = &p;
    let o = tern_in(dir.path(), &[], &again);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("blocks"), "{t}");
}

#[test]
fn a_design_that_fails_synthesis_is_a_failed_row_never_a_zero_row() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("tiny.toml");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let yosys = fake_tool(
        dir.path(),
        "broken-yosys",
        "-V",
        "Yosys 0.0 (broken)",
        "echo 'ERROR: out of cheese' >&2\nexit 3",
    );
    let out = dir.path().join("broken.jsonl");
    let o = tern_in(
        dir.path(),
        &[("TERN_YOSYS", yosys.as_str())],
        &[
            "dataset",
            "--space",
            space.to_str().unwrap(),
            "--board",
            "kv260",
            "--n",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("2 added (0 ok, 2 failed"), "{t}");
    for r in rows(&out) {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r["targets"].is_null(), "{r}");
        assert!(!r["error"].as_str().unwrap().is_empty(), "{r}");
    }
    // Training on nothing but failures is refused, not fitted to zeros.
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "train",
            "--dataset",
            out.to_str().unwrap(),
            "--out",
            dir.path().join("m.tgnn").to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("nothing to train on"),
        "{t}"
    );
}

#[test]
fn predict_answers_in_milliseconds_and_flags_extrapolation() {
    let dir = tempfile::tempdir().unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "predict",
            "--config",
            "examples/default.toml",
            "--board",
            "kv260",
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for target in ["luts", "ffs", "dsps", "brams", "cycles"] {
        assert!(t.contains(target), "{t}");
    }
    // The default model is today's datapath's; the demo design (84 weights/clock) is
    // beyond its space's 64, which is said, and the block model answers beside it.
    assert!(
        t.contains(" ms)")
            && t.contains("models/tlmm-kv260.tgnn")
            && t.contains("EXTRAPOLATION")
            && t.contains("84 weights/clock > 64")
            && t.contains("block model models/tlmm-kv260.blocks.json")
            && t.contains("exact cycle model"),
        "{t}"
    );
    // Every answer says what it prices: the GNN the engine alone, the block model the
    // engine alone unless asked for the whole top.
    assert!(
        t.contains("the engine alone (its graph has no top's shell)")
            && t.contains("engine alone (no top's shell; --whole-top prices it)"),
        "{t}"
    );
    // The whole top: the block model prices the shell beside the engine's blocks.
    let json = dir.path().join("top.json");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "predict",
            "--config",
            "examples/default.toml",
            "--board",
            "kv260",
            "--whole-top",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("whole top (engine + shell)"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let blocks = &report["blocks"];
    assert_eq!(blocks["whole_top"], true, "{blocks}");
    assert!(blocks["unknown"].as_array().unwrap().is_empty(), "{blocks}");
    let shell_luts = blocks["blocks"]["shell"][0].as_f64().unwrap();
    assert!(
        shell_luts > 1000.0,
        "a shell of {shell_luts} LUTs: {blocks}"
    );

    // A model of the datapath before issue 13 flags every design of today's RTL, with
    // the reason, rather than answering silently.
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "predict",
            "--config",
            "examples/default.toml",
            "--model",
            &repo("models/matmul-kv260.tgnn"),
        ],
    );
    let t = text(&o);
    assert!(
        o.status.success()
            && t.contains("trained on matmul datapath version 1 and this design is version 2"),
        "{t}"
    );

    // Three rows in parallel is not a value of the space either.
    let cfg = dir.path().join("p3.toml");
    let mut file = tern_hdl::Config::from_path(Path::new(&repo("examples/default.toml")))
        .unwrap()
        .to_file();
    file.engine.rows_parallel = 3;
    let p3 = tern_hdl::Config::validate(file, "p3").unwrap();
    std::fs::write(&cfg, p3.to_toml()).unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &["predict", "--config", cfg.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("EXTRAPOLATION") && t.contains("engine.rows_parallel = 3"),
        "{t}"
    );

    // G = 5 is beyond the block model's trained G 2..4: flagged by name, although the
    // engine is smaller than designs it was fitted on.
    let (o, report) = predict_changed(dir.path(), "g5", |file| {
        (file.engine.group_size, file.engine.rows_parallel) = (5, 1);
    });
    let t = text(&o);
    assert!(
        t.contains("OUTSIDE THE TRAINED RANGE")
            && t.contains("engine.group_size = 5 (trained on 2..=4)"),
        "{t}"
    );
    assert_eq!(report["blocks"]["extrapolating"], false, "{report}");
    let outside = report["blocks"]["outside"].as_array().unwrap();
    assert!(
        outside
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("engine.group_size = 5")),
        "{report}"
    );
}

/// `tern predict --board kv260` on examples/default.toml changed by `edit` (written as
/// `NAME.toml` in `dir`): its output and its `--json` report.
fn predict_changed(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut tern_hdl::config::ConfigFile),
) -> (std::process::Output, serde_json::Value) {
    let cfg = dir.join(format!("{name}.toml"));
    let mut file = tern_hdl::Config::from_path(Path::new(&repo("examples/default.toml")))
        .unwrap()
        .to_file();
    edit(&mut file);
    let changed = tern_hdl::Config::validate(file, name).unwrap();
    std::fs::write(&cfg, changed.to_toml()).unwrap();
    let json = dir.join(format!("{name}.json"));
    let o = tern_in(
        dir,
        &[],
        &[
            "predict",
            "--config",
            cfg.to_str().unwrap(),
            "--board",
            "kv260",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let report = std::fs::read_to_string(&json)
        .map(|j| serde_json::from_str(&j).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (o, report)
}

/// A TLMM engine with register tables: the block model refuses it with the reason, in
/// the print and the JSON, and prints no totals; the GNN still answers.
#[test]
fn tern_predict_refuses_a_shared_table_engine_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (o, report) = predict_changed(dir.path(), "registers", |file| {
        file.engine.table_storage = Some(tern_hdl::config::TableStorage::Registers);
    });
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("REFUSED: a TLMM engine with shared tables"),
        "{t}"
    );
    assert!(
        !t.contains("(flattened; LUT"),
        "no totals for a refused design: {t}"
    );
    assert!(
        report["blocks"]["refused"]
            .as_str()
            .is_some_and(|w| w.contains("shared tables")),
        "{report}"
    );
}

/// A DSE over the `tlmm` space (every table storage) with the block model: the
/// shared-table engines are not priced, so none fits or is picked; the per-lane ones
/// are priced as before.
#[test]
fn the_dse_does_not_price_shared_table_engines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dse");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "dse",
            "--space",
            "tlmm",
            "--board",
            "kv260",
            "--model",
            &repo("models/tlmm-kv260.tgnn"),
            "--blocks",
            &repo("models/tlmm-kv260.blocks.json"),
            "--n",
            "60",
            "--top-k",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    let (mut shared, mut priced) = (0, 0);
    for c in report["results"].as_array().unwrap() {
        let cfg = tern_hdl::Config::from_toml(c["config_toml"].as_str().unwrap(), "dse").unwrap();
        let is_shared = cfg.engine.kind == tern_hdl::config::EngineKind::Tlmm
            && cfg.geometry.storage != tern_hdl::config::TableStorage::LaneLutram;
        if is_shared {
            shared += 1;
            assert!(
                c["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("not priced: a TLMM engine with shared tables")),
                "{c}"
            );
            assert_eq!(
                (&c["fits"], &c["on_front"]),
                (&false.into(), &false.into()),
                "{c}"
            );
        } else if c["error"].is_null() {
            priced += 1;
        }
    }
    assert!(
        shared > 0 && priced > 0,
        "{shared} shared, {priced} priced: {t}"
    );
}

#[test]
fn damaged_weights_and_datasets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tgnn");
    std::fs::write(&junk, b"definitely not weights").unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "predict",
            "--config",
            "examples/default.toml",
            "--model",
            junk.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("junk.tgnn") && t.contains("bad magic"),
        "{t}"
    );

    let ds = dir.path().join("junk.jsonl");
    std::fs::write(&ds, "{\"format\":\"tern-dataset\",\"version\":0}\n").unwrap();
    let o = tern_in(
        dir.path(),
        &[],
        &["train", "--dataset", ds.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("version-0 dataset"),
        "{t}"
    );

    // A model evaluated on another space's or board's dataset is refused, not scored.
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "eval",
            "--dataset",
            &repo("datasets/matmul-kv260.jsonl"),
            "--model",
            &repo("models/matmul-edge-ulx3s.tgnn"),
            "--out",
            dir.path().join("eval").to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("evaluate a model on the dataset it was trained from"),
        "{t}"
    );
    assert!(!dir.path().join("eval").exists(), "output written: {t}");
}

#[test]
fn train_then_eval_writes_a_table_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("quick.tgnn");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "train",
            "--dataset",
            "datasets/matmul-kv260.jsonl",
            "--out",
            model.to_str().unwrap(),
            "--members",
            "1",
            "--epochs",
            "2",
            "--hidden",
            "16",
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = dir.path().join("eval");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "eval",
            "--dataset",
            "datasets/matmul-kv260.jsonl",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("Random test rows") && t.contains("Held-out region"),
        "{t}"
    );
    for f in [
        "eval.md",
        "eval.json",
        "predicted_vs_actual.png",
        "predicted_vs_actual.svg",
    ] {
        assert!(out.join(f).metadata().unwrap().len() > 100, "{f}");
    }
}

#[test]
fn dse_synthesises_its_top_picks_and_reports_predicted_against_actual() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dse");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "dse",
            "--space",
            "matmul-small",
            "--board",
            "kv260",
            "--workload",
            "small",
            "--top-k",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("board clock (no router)"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    let synthesised: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["actual"].is_null())
        .collect();
    assert_eq!(synthesised.len(), 2, "{t}");
    for c in synthesised {
        assert_eq!(c["on_front"], true);
        assert!(c["actual"]["luts"].as_f64().unwrap() > 0.0);
    }
    assert!(out.join("front.png").metadata().unwrap().len() > 1000);
    // Each candidate says whether the model priced it outside its training, and the
    // report counts them.
    let results = report["results"].as_array().unwrap();
    let outside = results
        .iter()
        .filter(|c| !c["outside"].as_array().unwrap().is_empty())
        .count();
    let md = std::fs::read_to_string(out.join("dse.md")).unwrap();
    let said = if outside == 0 {
        "Every candidate lies inside the model's trained ranges.".to_string()
    } else {
        format!(
            "{outside} of {} candidates lie outside the model's trained ranges",
            results.len()
        )
    };
    assert!(md.contains(&said), "{said}\n{md}");
}

/// Each shipped model was trained on the shipped dataset beside it, byte for byte:
/// `tern eval` on the pair neither refuses it nor notes another dataset version.
#[test]
fn the_shipped_models_were_trained_on_the_shipped_datasets() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "matmul-kv260",
        "matmul-edge-ulx3s",
        "tlmm-kv260",
        "tlmm-top-kv260",
    ] {
        let o = tern_in(
            dir.path(),
            &[],
            &[
                "eval",
                "--dataset",
                &repo(&format!("datasets/{name}.jsonl")),
                "--model",
                &repo(&format!("models/{name}.tgnn")),
                "--out",
                dir.path().join(name).to_str().unwrap(),
            ],
        );
        let t = text(&o);
        assert!(o.status.success(), "{name}: {t}");
        assert!(!t.contains("another version of the dataset"), "{name}: {t}");
    }
}

/// The block model fitted on the shipped per-block datasets (engines, and whole tops
/// for the shell) is the shipped one, and `tern eval` scores it beside the GNN on the
/// extrapolation sets of engines and of whole tops, band coverage included.
#[test]
fn the_block_model_is_refitted_exactly_and_evaluated_on_larger_designs() {
    let dir = tempfile::tempdir().unwrap();
    let fitted = dir.path().join("tlmm.blocks.json");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "train",
            "--blocks",
            "--dataset",
            &repo("datasets/tlmm-kv260.jsonl"),
            "--also",
            &repo("datasets/tlmm-top-kv260.jsonl"),
            "--also",
            &repo("datasets/tlmm-top-wide-kv260.jsonl"),
            "--out",
            fitted.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("models/tlmm-kv260.blocks.json")).unwrap(),
    )
    .unwrap();
    let refit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fitted).unwrap()).unwrap();
    assert_eq!(
        shipped, refit,
        "models/tlmm-kv260.blocks.json is not what the dataset gives"
    );

    let out = dir.path().join("eval");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "eval",
            "--dataset",
            &repo("datasets/tlmm-kv260.jsonl"),
            "--model",
            &repo("models/tlmm-kv260.tgnn"),
            "--blocks",
            fitted.to_str().unwrap(),
            "--extrapolation",
            &repo("datasets/tlmm-extrapolation-kv260.jsonl"),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("Extrapolation set"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let table = |predictor: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["split"] == "extrapolation" && t["predictor"] == predictor)
            .unwrap_or_else(|| panic!("no {predictor} table: {t}"))
            .clone()
    };
    let blocks = table("blocks");
    assert!(
        blocks["errors"][0]["rows"].as_u64().unwrap() >= 10,
        "{blocks}"
    );
    let coverage = blocks["coverage"][0].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&coverage), "{blocks}");
    assert_eq!(
        blocks["flagged"], 0,
        "every extrapolation block is known: {blocks}"
    );
    assert!(table("gnn")["errors"][0]["median_ape"].as_f64().is_some());
    assert!(!report["block_points"].as_array().unwrap().is_empty());
    // The per-class breakdown: every evaluated row in exactly one class of its split;
    // the priced classes hold the rows of the error table, the refused ones (the
    // shared-table TLMMs) the rows it counts as refused; and the committed eval's
    // breakdown is this one (the errors are deterministic).
    let classes = report["block_classes"].as_array().unwrap();
    for split in ["test", "held_out_region", "extrapolation"] {
        let in_classes = |refused: bool| -> u64 {
            classes
                .iter()
                .filter(|c| c["split"] == split && c["refused"] == refused)
                .map(|c| c["errors"][0]["rows"].as_u64().unwrap())
                .sum()
        };
        let table = report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["split"] == split && t["predictor"] == "blocks")
            .unwrap()
            .clone();
        assert_eq!(
            (in_classes(false), in_classes(true)),
            (
                table["errors"][0]["rows"].as_u64().unwrap(),
                table["refused"].as_u64().unwrap()
            ),
            "{split}"
        );
        if split != "extrapolation" {
            assert!(
                in_classes(true) > 0,
                "{split}: the space has shared-table engines"
            );
        }
    }
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("docs/surrogate/tlmm-kv260/eval.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(committed["block_classes"], report["block_classes"]);

    // Whole tops: the same block model prices the shell too, on tops many times larger
    // than any it was fitted on.
    let tops = dir.path().join("tops");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "eval",
            "--dataset",
            &repo("datasets/tlmm-top-kv260.jsonl"),
            "--model",
            &repo("models/tlmm-top-kv260.tgnn"),
            "--blocks",
            fitted.to_str().unwrap(),
            "--extrapolation",
            &repo("datasets/tlmm-top-extrapolation-kv260.jsonl"),
            "--out",
            tops.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tops.join("eval.json")).unwrap()).unwrap();
    let extrapolated = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["split"] == "extrapolation" && t["predictor"] == "blocks")
        .unwrap_or_else(|| panic!("no block-model table for whole tops: {t}"))
        .clone();
    assert!(
        extrapolated["errors"][0]["rows"].as_u64().unwrap() >= 3,
        "{extrapolated}"
    );
    assert_eq!(
        extrapolated["flagged"], 0,
        "the shell is known: {extrapolated}"
    );

    // A block model fitted for another space is refused, not scored.
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "eval",
            "--dataset",
            &repo("datasets/matmul-kv260.jsonl"),
            "--model",
            &repo("models/matmul-kv260.tgnn"),
            "--blocks",
            fitted.to_str().unwrap(),
            "--out",
            dir.path().join("wrong").to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("fitted on space `tlmm`"),
        "{t}"
    );
}

/// `tern dse --blocks --prefill --reserve-*`: resources from the block model plus what
/// the rest of the accelerator takes, clocks from the exact cycle model, a front over
/// decode tokens/s, prefill time and LUTs; a reserve larger than the board fits nothing.
#[test]
fn accelerator_dse_takes_block_model_resources_and_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let run = |reserve_luts: &str, out: &Path| {
        tern_in(
            dir.path(),
            &[],
            &[
                "dse",
                "--space",
                "tlmm-accelerator",
                "--board",
                "kv260",
                "--workload",
                "bitnet-0.73b",
                "--model",
                &repo("models/tlmm-kv260.tgnn"),
                "--blocks",
                &repo("models/tlmm-kv260.blocks.json"),
                "--prefill",
                "--reserve-luts",
                reserve_luts,
                "--n",
                "40",
                "--top-k",
                "0",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let out = dir.path().join("dse");
    let o = run("20000", &out);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    assert!(report["block_model"]
        .as_str()
        .unwrap()
        .ends_with("tlmm-kv260.blocks.json"));
    assert_eq!(report["prefill"], true);
    assert_eq!(
        report["whole_top"], true,
        "the accelerator space is of whole tops"
    );
    let results = report["results"].as_array().unwrap();
    assert!(results.iter().any(|c| c["on_front"] == true), "{t}");
    for c in results {
        let p = &c["predicted"];
        assert!(p["luts"].as_f64().unwrap() > 20000.0, "{c}");
        assert!(p["prefill_128_s"].as_f64().unwrap() > 0.0, "{c}");
        let cfg = tern_hdl::Config::from_toml(c["config_toml"].as_str().unwrap(), "dse").unwrap();
        // No candidate is credited with fewer clocks than it needs (the cycle model,
        // never below the physical minimum of its weights over its weights per clock).
        let floor = 679_477_248.0 / cfg.geometry.weights_per_clock() as f64;
        assert!(
            p["projection"]["cycles_per_token"].as_f64().unwrap() >= floor,
            "{c}"
        );
        // Nor with more weight bytes per second than the slower of the KV260's DDR and
        // the top's bus (one bus word per clock) can deliver.
        let pr = &p["projection"];
        let bus = cfg.top.bus_bytes() as f64 * pr["clock_mhz"].as_f64().unwrap() * 1e6;
        let streamed = pr["tokens_per_s"].as_f64().unwrap() * pr["weight_bytes"].as_f64().unwrap();
        assert!(streamed <= bus.min(19.2e9) * (1.0 + 1e-9), "{c}");
    }
    let o = run("200000", &dir.path().join("none"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("0 fit the board"), "{t}");
    // What ran out is said: every candidate's LUTs (the reserve alone is 200,000 of the
    // KV260's 117,120), and the least any needs.
    assert!(
        t.contains("nothing fits the kv260: of 40 candidates: LUT ran out for 40 (the least any needs is 2")
            && t.contains("of 117120)"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("none/dse.json")).unwrap())
            .unwrap();
    assert!(report["nothing_fits"]
        .as_str()
        .unwrap()
        .contains("LUT ran out"));
}

/// A small attention top (heads of 32): Yosys measures its shell in about a minute.
const SMALL_ATTENTION_REFERENCE: &str = r#"
[top]
bus_bits = 256

[attention]
head_dim = 32
macs = 4
tile = 16
max_seq_len = 256
mode = "prefill"
causal = true

[attention.quant]
scale_q = 0.03
scale_k = 0.03
scale_v = 0.03
scale_out = 0.03

[workload]
seq_len = 16
queries = 16
"#;

/// `tern dse --attention-space`: attention tops searched beside the matmul top. Every
/// option has the workload's head size, its shell is the reference top's as synthesised,
/// and a pair's figures add the two sides (kernels run one after the other); the pairs
/// on the front fit the board together. Bad requests name what is missing.
#[test]
fn accelerator_dse_searches_attention_tops_beside_the_matmul_top() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("attention.toml");
    std::fs::write(&reference, SMALL_ATTENTION_REFERENCE).unwrap();
    let out = dir.path().join("dse");
    let args = |workload: &str, engines: &str, out: &Path| -> Vec<String> {
        [
            "dse",
            "--space",
            "tlmm-accelerator",
            "--board",
            "kv260",
            "--workload",
            workload,
            "--model",
            &repo("models/tlmm-kv260.tgnn"),
            "--blocks",
            &repo("models/tlmm-kv260.blocks.json"),
            "--n",
            "30",
            "--top-k",
            "0",
            "--attention-space",
            "attention-accelerator",
            "--attention-blocks",
            &repo("models/attention-kv260.blocks.json"),
            "--attention-reference",
            reference.to_str().unwrap(),
            "--attention-engines",
            engines,
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |a: Vec<String>| {
        tern_in(
            dir.path(),
            &[],
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let o = run(args("bitnet-0.73b", "1,2", &out));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("The whole accelerator"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    assert_eq!(report["prefill"], true, "an attention search ranks TTFT");
    let a = &report["attention"];
    let shell = a["shell"]["shell"]["luts"].as_f64().unwrap();
    let reference_top = a["shell"]["reference_top"]["luts"].as_f64().unwrap();
    assert!(shell > 0.0 && shell < reference_top, "{a}");
    let options = a["options"].as_array().unwrap();
    assert!(!options.is_empty());
    for o in options {
        let cfg = match tern_hdl::DesignConfig::from_toml(o["config_toml"].as_str().unwrap(), "o")
            .unwrap()
        {
            tern_hdl::DesignConfig::Attention(c) => c,
            _ => panic!("{o}"),
        };
        assert_eq!(cfg.attention.head_dim, 96, "the workload's head size: {o}");
        let n = o["engines"].as_f64().unwrap();
        assert!(n == 1.0 || n == 2.0, "{o}");
        // Every top carries the shell.
        assert!(o["predicted"]["luts"].as_f64().unwrap() > n * shell, "{o}");
        let t = &o["timing"];
        assert!(
            t["prefill_clocks"][0].as_u64() <= t["prefill_clocks"][1].as_u64(),
            "{o}"
        );
    }
    let results = report["results"].as_array().unwrap();
    let joint = a["joint"].as_array().unwrap();
    assert!(joint.iter().any(|j| j["on_front"] == true), "{a}");
    for j in joint {
        let m = &results[j["matmul"].as_u64().unwrap() as usize]["predicted"];
        let o = &options[j["attention"].as_u64().unwrap() as usize];
        let p = &j["predicted"];
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
        let luts = m["luts"].as_f64().unwrap() + o["predicted"]["luts"].as_f64().unwrap();
        assert!(close(p["resources"]["luts"].as_f64().unwrap(), luts), "{j}");
        assert!(luts <= 117_120.0, "only pairs that fit the KV260: {j}");
        let ttft =
            m["prefill_128_s"].as_f64().unwrap() + o["timing"]["prefill_s"].as_f64().unwrap();
        assert!(close(p["ttft_s"].as_f64().unwrap(), ttft), "{j}");
        let token_s = 1.0 / m["projection"]["tokens_per_s"].as_f64().unwrap()
            + o["timing"]["decode_s"].as_f64().unwrap();
        assert!(
            close(p["tokens_per_s"].as_f64().unwrap(), 1.0 / token_s),
            "{j}"
        );
    }

    // A workload without heads, and a count of zero tops, are refused by name.
    let w = dir.path().join("w.toml");
    std::fs::write(
        &w,
        "name = \"w\"\nlayers = 1\nmatmuls = [{ name = \"a\", m = 512, k = 1536 }]\n",
    )
    .unwrap();
    let o = run(args(w.to_str().unwrap(), "1", &dir.path().join("w")));
    assert!(
        !o.status.success() && text(&o).contains("no [attention] shape"),
        "{}",
        text(&o)
    );
    let o = run(args("bitnet-0.73b", "0", &dir.path().join("z")));
    assert!(
        !o.status.success() && text(&o).contains("--attention-engines"),
        "{}",
        text(&o)
    );
}
