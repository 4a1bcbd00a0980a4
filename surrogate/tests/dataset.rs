//! The dataset file: rows survive a crash mid-write, damage is reported with its line,
//! and a file made for another space, board or format version is refused.

use std::io::Write;

use tern_dse::space::Space;
use tern_hdl::design_graph;
use tern_surrogate::dataset::{Dataset, DatasetError, Header, Row, Status, Targets, Writer};

fn header() -> Header {
    Header {
        format: "tern-dataset".into(),
        version: tern_surrogate::dataset::VERSION,
        space: "matmul".into(),
        space_hash: "abc".into(),
        board: "kv260".into(),
        family: "xcup".into(),
        seed: 1,
        pnr: false,
        blocks: false,
        whole_top: false,
    }
}

fn rows(n: usize) -> Vec<Row> {
    let space = Space::resolve("matmul").unwrap();
    let (samples, _) = space.sample(n, 5).unwrap();
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| Row {
            index: s.index,
            name: format!("r{i}"),
            config_toml: s.config.to_toml(),
            held_out: s.held_out,
            graph: design_graph(&s.config),
            // every third row a failure: recorded, with no targets
            status: if i % 3 == 2 {
                Status::Failed
            } else {
                Status::Ok
            },
            error: (i % 3 == 2).then(|| "yosys: exit status 1".to_string()),
            targets: (i % 3 != 2).then_some(Targets {
                luts: 100.0 + i as f64,
                ffs: 50.0,
                dsps: 0.0,
                brams: 0.5,
                cycles: Some(1000.0),
                fmax_mhz: None,
                lutram_luts: None,
            }),
            yosys: "Yosys 0.23".into(),
            nextpnr: None,
            tool_seconds: 1.5,
            blocks: None,
        })
        .collect()
}

#[test]
fn rows_round_trip_and_failures_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let (mut w, existing) = Writer::open(&path, &header()).unwrap();
    assert!(existing.is_empty());
    let written = rows(6);
    for r in &written {
        w.append(r).unwrap();
    }
    let ds = Dataset::read(&path).unwrap();
    assert_eq!(ds.rows, written);
    assert_eq!(ds.ok_rows().count(), 4);
    assert!(ds
        .rows
        .iter()
        .any(|r| r.status == Status::Failed && r.targets.is_none()));
}

#[test]
fn a_torn_last_line_is_dropped_and_appending_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let all = rows(4);
    let (mut w, _) = Writer::open(&path, &header()).unwrap();
    for r in &all[..3] {
        w.append(r).unwrap();
    }
    drop(w);
    // A writer killed halfway through the fourth row.
    let line = serde_json::to_string(&all[3]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
    drop(f);
    let ds = Dataset::read(&path).unwrap();
    assert!(ds.torn_tail);
    assert_eq!(ds.rows.len(), 3);
    let (mut w, existing) = Writer::open(&path, &header()).unwrap();
    assert_eq!(existing.len(), 3);
    w.append(&all[3]).unwrap();
    let ds = Dataset::read(&path).unwrap();
    assert!(!ds.torn_tail);
    assert_eq!(ds.rows, all);
}

/// Two runs appending to one dataset would each write the rows the other is writing:
/// the second is refused while the first holds the file, and may go on after it.
#[test]
fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let all = rows(2);
    let (mut first, _) = Writer::open(&path, &header()).unwrap();
    first.append(&all[0]).unwrap();
    let err = Writer::open(&path, &header()).unwrap_err().to_string();
    assert!(
        err.contains("d.jsonl") && err.contains("another run"),
        "{err}"
    );
    drop(first);
    let (mut second, existing) = Writer::open(&path, &header()).unwrap();
    assert_eq!(existing, all[..1]);
    second.append(&all[1]).unwrap();
    assert_eq!(Dataset::read(&path).unwrap().rows, all);
    // An empty file (a run killed before its header) is started afresh.
    let empty = dir.path().join("e.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (_, existing) = Writer::open(&empty, &header()).unwrap();
    assert!(existing.is_empty());
    assert_eq!(Dataset::read(&empty).unwrap().header, header());
}

#[test]
fn damage_and_mismatches_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let (mut w, _) = Writer::open(&path, &header()).unwrap();
    for r in rows(3) {
        w.append(&r).unwrap();
    }
    drop(w);
    let good = std::fs::read_to_string(&path).unwrap();

    // A damaged row in the middle names its line.
    let mut lines: Vec<&str> = good.lines().collect();
    lines[2] = "{\"index\": 7, \"garbage\"";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = Dataset::read(&path).unwrap_err().to_string();
    assert!(err.contains("d.jsonl:3"), "{err}");

    // An ok row without targets breaks the format's promise.
    let mut row: serde_json::Value = serde_json::from_str(good.lines().nth(1).unwrap()).unwrap();
    row["targets"] = serde_json::Value::Null;
    let text = format!("{}\n{}\n", good.lines().next().unwrap(), row);
    std::fs::write(&path, text).unwrap();
    let err = Dataset::read(&path).unwrap_err().to_string();
    assert!(err.contains("ok but has no targets"), "{err}");

    // An edge to a node the graph does not have (train and eval read the same rows).
    let mut row: serde_json::Value = serde_json::from_str(good.lines().nth(1).unwrap()).unwrap();
    row["graph"]["edges"][0][1] = 100_000.into();
    let text = format!(
        "{}
{}
",
        good.lines().next().unwrap(),
        row
    );
    std::fs::write(&path, text).unwrap();
    let err = Dataset::read(&path).unwrap_err().to_string();
    assert!(err.contains("beyond its"), "{err}");

    // Another format version.
    std::fs::write(&path, good.replacen("\"version\":1", "\"version\":99", 1)).unwrap();
    assert!(matches!(
        Dataset::read(&path).unwrap_err(),
        DatasetError::Version { found: 99, .. }
    ));

    // Not a dataset at all, and an empty file.
    std::fs::write(&path, "hello\n").unwrap();
    assert!(Dataset::read(&path)
        .unwrap_err()
        .to_string()
        .contains("header is not JSON"));
    std::fs::write(&path, "").unwrap();
    assert!(Dataset::read(&path)
        .unwrap_err()
        .to_string()
        .contains("empty file"));

    // A file made for another board is not appended to.
    std::fs::write(&path, &good).unwrap();
    let mut other = header();
    other.board = "zcu104".into();
    let err = Writer::open(&path, &other).err().unwrap().to_string();
    assert!(err.contains("kv260") && err.contains("zcu104"), "{err}");
}

/// Per-block labels must price exactly the blocks the row's graph has: a label for a
/// block no node is (a graph builder that forgot a block synthesis keeps), or a node's
/// block without a label, is refused on read, naming the row and the blocks. Rewriting
/// the graphs with a builder that has the block makes the file readable again, its
/// labels untouched; a file whose graphs need no change is rewritten byte for byte.
#[test]
fn labels_that_do_not_match_the_graph_are_refused_and_regraphing_mends_them() {
    use std::collections::BTreeMap;
    use tern_surrogate::dataset::BlockTargets;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let mut row = rows(1).remove(0);
    let label = |luts: f64| BlockTargets {
        luts,
        ..Default::default()
    };
    let mut blocks: BTreeMap<String, BlockTargets> = row
        .graph
        .nodes
        .iter()
        .map(|n| (n.rtl.clone(), label(10.0)))
        .collect();
    blocks.insert("tile_buffer".into(), label(64.0));
    row.blocks = Some(blocks.clone());
    {
        let (mut w, _) = Writer::open(&path, &header()).unwrap();
        w.append(&row).unwrap();
    }
    let err = Dataset::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("do not match its graph")
            && err.contains("labelled but in no node: [tile_buffer]")
            && err.contains("tern regraph")
            && err.contains(":2:"),
        "{err}"
    );

    // A builder that has the block: one node more, on that block.
    let changed = Dataset::rewrite_graphs(&path, |_, r| {
        let mut g = r.graph.clone();
        let mut node = g.nodes[0].clone();
        node.rtl = "tile_buffer".into();
        g.nodes.push(node);
        Ok(g)
    })
    .unwrap();
    assert_eq!(changed, 1);
    let d = Dataset::read(&path).unwrap();
    assert_eq!(d.rows[0].blocks.as_ref(), Some(&blocks), "labels kept");
    assert_eq!(d.rows[0].targets, row.targets);

    // Nothing to change: the same bytes.
    let before = std::fs::read(&path).unwrap();
    let changed = Dataset::rewrite_graphs(&path, |_, r| Ok(r.graph.clone())).unwrap();
    assert_eq!(changed, 0);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A builder that fails leaves the file as it was.
    let err = Dataset::rewrite_graphs(&path, |_, _| Err("no graph".into())).unwrap_err();
    assert!(err.to_string().contains("no graph"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
