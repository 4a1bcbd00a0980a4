//! The per-block cost model: fitted on small designs' per-block labels, it composes a
//! much larger design's cost from its blocks; what it cannot cost is flagged, never a
//! silent number; damaged model files are refused.

use std::collections::BTreeMap;

use tern_hdl::config::{ConfigBuilder, EngineKind, TableStorage};
use tern_hdl::graph::{rtl_blocks, top_graph, unit_graph, GLUE, SHELL};
use tern_hdl::{design_graph, DesignConfig, DesignGraph};
use tern_surrogate::blocks::{block_features, graph_blocks, BlockModel, BlockModelError};
use tern_surrogate::dataset::{
    BlockTargets, Dataset, Header, Row, Status, Targets, FORMAT, VERSION,
};

fn tlmm(g: usize, p: usize, q: usize, token_block: usize) -> DesignConfig {
    DesignConfig::Matmul(
        ConfigBuilder::new(EngineKind::Tlmm, g, p, q)
            .storage(TableStorage::LaneLutram)
            .token_block(token_block)
            .weight_buffer_depth(16)
            .workload(1024, 1536, 8)
            .build()
            .unwrap(),
    )
}

/// A synthesis stand-in whose costs are linear in each block's structure: a per-column
/// price (fixed pseudo-random, never negative) per block, and flattening saving 7 %.
fn price(block: &str, column: &str) -> f64 {
    let h = block
        .bytes()
        .chain(column.bytes())
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    (h % 1000) as f64 / 250.0
}

fn synthesise(graph: &DesignGraph) -> (Targets, BTreeMap<String, BlockTargets>) {
    let mut blocks = BTreeMap::new();
    for block in graph_blocks(graph) {
        let cost: f64 = block_features(graph, &block)
            .iter()
            .map(|(c, v)| price(&block, c) * v)
            .sum();
        let t = BlockTargets {
            luts: cost,
            ffs: cost / 2.0,
            ..Default::default()
        };
        blocks.insert(block, t);
    }
    let kept: f64 = blocks.values().map(|b| b.luts).sum();
    let targets = Targets {
        luts: 0.93 * kept,
        ffs: 0.93 * kept / 2.0,
        dsps: 0.0,
        brams: 0.0,
        cycles: Some(1.0),
        fmax_mhz: None,
        lutram_luts: Some(0.0),
    };
    (targets, blocks)
}

fn dataset(configs: &[DesignConfig], with_blocks: bool) -> Dataset {
    dataset_of(configs, with_blocks, false)
}

/// Engines, or their whole tops (engine + shell).
fn dataset_of(configs: &[DesignConfig], with_blocks: bool, whole_top: bool) -> Dataset {
    let rows = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let graph = unit_graph(c, whole_top);
            let (targets, blocks) = synthesise(&graph);
            Row {
                index: i as u32,
                name: format!("r{i}"),
                config_toml: c.to_toml(),
                held_out: false,
                graph,
                status: Status::Ok,
                error: None,
                targets: Some(targets),
                yosys: "stand-in".into(),
                nextpnr: None,
                tool_seconds: 0.0,
                blocks: with_blocks.then_some(blocks),
            }
        })
        .collect();
    Dataset {
        path: "in-memory".into(),
        header: Header {
            format: FORMAT.into(),
            version: VERSION,
            space: "tlmm".into(),
            space_hash: "h".into(),
            board: "kv260".into(),
            family: "xcup".into(),
            seed: 1,
            pnr: false,
            blocks: with_blocks,
            whole_top,
        },
        rows,
        torn_tail: false,
        sha256: "s".into(),
    }
}

fn small_engines() -> Vec<DesignConfig> {
    let mut v = vec![];
    for g in [2, 3, 4] {
        for (p, q) in [
            (1, 1),
            (2, 1),
            (1, 2),
            (4, 2),
            (7, 1),
            (2, 4),
            (8, 2),
            (4, 4),
        ] {
            for tb in [1, 2, 8] {
                v.push(tlmm(g, p, q, tb));
            }
        }
    }
    v
}

#[test]
fn a_design_16x_larger_is_composed_from_the_blocks_of_small_ones() {
    let model = BlockModel::fit(&dataset(&small_engines(), true)).unwrap();
    assert!(model.trained_rows > 40, "{}", model.trained_rows);
    assert!(
        (model.flatten[0] - 0.93).abs() < 1e-9,
        "{:?}",
        model.flatten
    );
    // 32 weights/clock at most in training; 512 here (P 32, Q 4, G 4).
    let big = design_graph(&tlmm(4, 32, 4, 8));
    assert!(big.nodes.len() > 4 * model.max_trained_nodes);
    let (truth, truth_blocks) = synthesise(&big);
    let p = model.predict(&big);
    assert!(p.unknown.is_empty(), "{:?}", p.unknown);
    assert!(p.extrapolating);
    let rel = (p.total[0] - truth.luts).abs() / truth.luts;
    assert!(
        rel < 0.01,
        "LUT {:.0} predicted vs {:.0}: {:.2} %",
        p.total[0],
        truth.luts,
        100.0 * rel
    );
    for (block, t) in &truth_blocks {
        let got = p.blocks[block][0];
        assert!(
            (got - t.luts).abs() <= 0.01 * t.luts + 1e-6,
            "{block}: {got:.1} vs {:.1}",
            t.luts
        );
    }
    // The band widens beyond the largest trained graph.
    let small = model.predict(&design_graph(&tlmm(3, 2, 2, 2)));
    assert!(!small.extrapolating);
    assert!(p.band[0].unwrap() >= small.band[0].unwrap());
}

/// A band is a percentile of out-of-fold errors: from a handful of rows there is none to
/// state (one row used to give "± 0.0 %"); from enough rows there is, and it is finite.
#[test]
fn too_few_rows_state_no_band() {
    let engines = small_engines();
    let few = BlockModel::fit(&dataset(&engines[..4], true)).unwrap();
    assert!(few.trained_rows < tern_surrogate::blocks::MIN_BAND_ERRORS);
    assert!(few.band.iter().all(Option::is_none), "{:?}", few.band);
    let p = few.predict(&design_graph(&engines[0]));
    assert!(p.band.iter().all(Option::is_none), "{:?}", p.band);
    assert!(tern_surrogate::blocks::band_text(p.band[0]).starts_with("no band"));
    let many = BlockModel::fit(&dataset(&engines, true)).unwrap();
    let lut = many.band[0].expect("a LUT band from every small engine");
    assert!(lut.is_finite() && lut >= 0.0);
}

#[test]
fn what_the_model_never_saw_is_flagged_not_guessed() {
    let model = BlockModel::fit(&dataset(&small_engines(), true)).unwrap();
    // A shared-table engine: its table memory lives in registers, never trained on.
    let registers = design_graph(&DesignConfig::Matmul(
        ConfigBuilder::new(EngineKind::Tlmm, 2, 2, 2)
            .storage(TableStorage::Registers)
            .workload(256, 256, 2)
            .build()
            .unwrap(),
    ));
    let p = model.predict(&registers);
    assert!(
        p.unknown.iter().any(|u| u.contains("registers")),
        "{:?}",
        p.unknown
    );
    // An attention engine: none of its blocks are known.
    let attention = DesignConfig::from_path(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/attention_decode.toml"),
    )
    .unwrap();
    let p = model.predict(&design_graph(&attention));
    for (block, _) in rtl_blocks("attention") {
        if design_graph(&attention)
            .nodes
            .iter()
            .any(|n| n.rtl == *block)
        {
            assert!(
                p.unknown.iter().any(|u| u.contains(&format!("`{block}`"))),
                "{block} not flagged: {:?}",
                p.unknown
            );
        }
    }
    // A graph from a dataset before per-block labels.
    let mut old = design_graph(&tlmm(3, 2, 2, 2));
    old.nodes.iter_mut().for_each(|n| n.rtl.clear());
    assert!(!model.predict(&old).unknown.is_empty());
    assert!(design_graph(&tlmm(3, 2, 2, 2))
        .nodes
        .iter()
        .any(|n| n.rtl == GLUE));
}

/// A design whose every block is known but one of whose parameters lies beyond what
/// training saw (G = 5 against G 2..4, a table storage never fitted, a workload wider
/// than any) is flagged parameter by parameter, however small its graph; the training
/// rows' own designs, and a value between trained ones (interpolation), are not.
#[test]
fn a_parameter_beyond_its_trained_range_is_flagged_whatever_the_graph_size() {
    let engines = small_engines();
    let model = BlockModel::fit(&dataset(&engines, true)).unwrap();
    for c in &engines {
        assert_eq!(model.outside(&c.to_toml()), Vec::<String>::new(), "{c:?}");
    }
    // P = 3 and token block 4 lie between trained values.
    assert!(model.outside(&tlmm(3, 3, 2, 4).to_toml()).is_empty());

    let g5 = tlmm(5, 1, 1, 1);
    let small = design_graph(&g5).nodes.len();
    let largest = engines
        .iter()
        .map(|c| design_graph(c).nodes.len())
        .max()
        .unwrap();
    assert!(small <= largest, "the G = 5 engine should be small");
    assert!(!model.predict(&design_graph(&g5)).extrapolating);
    let why = model.outside(&g5.to_toml());
    assert_eq!(
        why,
        vec!["engine.group_size = 5 (trained on 2..=4)".to_string()]
    );

    let other = DesignConfig::Matmul(
        ConfigBuilder::new(EngineKind::Tlmm, 2, 2, 2)
            .storage(TableStorage::Distributed)
            .token_block(2)
            .weight_buffer_depth(16)
            .workload(1024, 4096, 8)
            .build()
            .unwrap(),
    );
    let why = model.outside(&other.to_toml()).join("\n");
    assert!(
        why.contains("engine.table_storage = distributed (trained on lane-lutram only)"),
        "{why}"
    );
    assert!(
        why.contains("workload.k = 4096 (trained on 1536..=1536)"),
        "{why}"
    );
    // A key training never set.
    let extra = format!("{}\n[top]\nbus_bits = 128\n", tlmm(3, 2, 2, 2).to_toml());
    assert_eq!(
        model.outside(&extra),
        vec!["top.bus_bits = 128 (never set in training)".to_string()]
    );
    // A model fitted before the ranges were kept says so instead of passing everything.
    let mut old = model.clone();
    old.trained_parameters.clear();
    assert!(old.outside(&g5.to_toml())[0].contains("refit"));
}

/// Whole tops teach the shell; the engines' blocks keep the costs the engines gave them;
/// a model that never saw a top flags the shell instead of pricing it.
#[test]
fn whole_tops_teach_the_shell_and_engines_keep_their_costs() {
    let engines = dataset(&small_engines(), true);
    // Tops of every small engine, the memory interface varied.
    let top_configs: Vec<DesignConfig> = small_engines()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut cfg = c.matmul().unwrap().clone();
            cfg.top.bus_bits = [64, 128, 256, 512][i % 4];
            cfg.top.reads_in_flight = [2, 4, 8][i % 3];
            cfg.top.burst_beats = [16, 64][i % 2];
            DesignConfig::from_toml(&DesignConfig::Matmul(cfg).to_toml(), "top").unwrap()
        })
        .collect();
    let tops = dataset_of(&top_configs, true, true);
    let engines_only = BlockModel::fit(&engines).unwrap();
    let both = BlockModel::fit_many(&[&engines, &tops]).unwrap();
    assert!(both.blocks.contains_key(SHELL) && !engines_only.blocks.contains_key(SHELL));
    for (name, cost) in &engines_only.blocks {
        assert_eq!(
            &both.blocks[name], cost,
            "block {name} refitted from the tops"
        );
    }
    assert_eq!(both.flatten, engines_only.flatten);
    assert_eq!(both.also_fitted_on.len(), 1);
    assert!(both.fitted_on("tlmm", "h", "kv260") && !both.fitted_on("tlmm", "x", "kv260"));

    let DesignConfig::Matmul(big) = tlmm(3, 32, 4, 8) else {
        unreachable!()
    };
    let graph = top_graph(&big);
    let p = both.predict(&graph);
    assert!(p.unknown.is_empty(), "{:?}", p.unknown);
    let (actual, _) = synthesise(&graph);
    let err = (p.total[0] - actual.luts).abs() / actual.luts;
    assert!(
        err < 0.02,
        "whole top LUTs {} vs {}",
        p.total[0],
        actual.luts
    );
    let p = engines_only.predict(&graph);
    assert!(
        p.unknown.iter().any(|u| u.contains(&format!("`{SHELL}`"))),
        "{:?}",
        p.unknown
    );

    let mut elsewhere = dataset_of(&small_engines()[..4], true, true);
    elsewhere.header.board = "ulx3s".into();
    let err = BlockModel::fit_many(&[&engines, &elsewhere]).unwrap_err();
    assert!(err.to_string().contains("ulx3s"), "{err}");
}

#[test]
fn a_dataset_without_block_labels_is_refused() {
    let err = BlockModel::fit(&dataset(&small_engines(), false)).unwrap_err();
    assert!(matches!(err, BlockModelError::NoBlockLabels), "{err}");
}

#[test]
fn model_files_round_trip_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.blocks.json");
    let model = BlockModel::fit(&dataset(&small_engines(), true)).unwrap();
    model.save(&path).unwrap();
    assert_eq!(BlockModel::load(&path).unwrap(), model);

    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["blocks"]["trees"]["coefficients"][0][0] = serde_json::json!(-1.0);
    std::fs::write(&path, v.to_string()).unwrap();
    let e = BlockModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("trees") && e.contains("negative"), "{e}");

    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let e = BlockModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("not a block model"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["version"] = serde_json::json!(99);
    std::fs::write(&path, v.to_string()).unwrap();
    let e = BlockModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("version 99"), "{e}");
}

/// A TLMM engine with shared tables (one per lane group, a multiplexer per lane) is
/// refused with the reason, whatever else the model knows; its per-lane and adder-tree
/// siblings of the same shape are priced.
#[test]
fn shared_table_engines_are_refused_not_priced() {
    let model = BlockModel::fit(&dataset(&small_engines(), true)).unwrap();
    let engine = |kind, storage| {
        design_graph(&DesignConfig::Matmul(
            ConfigBuilder::new(kind, 3, 4, 2)
                .storage(storage)
                .workload(256, 512, 8)
                .build()
                .unwrap(),
        ))
    };
    for storage in [
        TableStorage::Registers,
        TableStorage::Distributed,
        TableStorage::Block,
    ] {
        let p = model.predict(&engine(EngineKind::Tlmm, storage));
        let why = p
            .refused
            .unwrap_or_else(|| panic!("{storage:?} tables were priced"));
        assert!(why.contains("shared tables"), "{why}");
    }
    assert_eq!(
        model
            .predict(&engine(EngineKind::Tlmm, TableStorage::LaneLutram))
            .refused,
        None
    );
    assert_eq!(
        model
            .predict(&engine(EngineKind::AdderTree, TableStorage::Registers))
            .refused,
        None
    );
}
