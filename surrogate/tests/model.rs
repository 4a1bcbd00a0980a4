//! The GNN learns, reproducibly, from real design graphs; its weights file round-trips
//! and a damaged one is refused with a reason.

use tern_dse::space::Space;
use tern_hdl::design_graph;
use tern_surrogate::features::{encode, TARGET_COUNT};
use tern_surrogate::model::Shape;
use tern_surrogate::train::{Example, Provenance, Surrogate, TrainOptions};

/// Real graphs of the matmul space, with a made-up but graph-determined target: LUTs
/// proportional to lanes × table entries, FFs to the flop bits.
fn examples(n: usize) -> Vec<Example> {
    let space = Space::resolve("matmul").unwrap();
    let (samples, _) = space.sample(n, 11).unwrap();
    samples
        .iter()
        .map(|s| {
            let graph = design_graph(&s.config);
            let geo = s.config.matmul().unwrap().geometry;
            let luts = 20.0 * (geo.lanes() * geo.table_entries) as f64 + 100.0;
            let ffs = graph.flop_bits() as f64;
            let mut targets = [None; TARGET_COUNT];
            targets[0] = Some(luts);
            targets[1] = Some(ffs);
            targets[2] = Some(0.0);
            Example {
                graph: encode(&graph, &s.config),
                targets,
            }
        })
        .collect()
}

fn options(seed: u64) -> TrainOptions {
    TrainOptions {
        shape: Shape {
            hidden: 24,
            layers: 2,
        },
        members: 2,
        max_epochs: 60,
        patience: 60,
        batch: 16,
        seed,
        ..Default::default()
    }
}

fn provenance() -> Provenance {
    Provenance {
        space: "matmul".into(),
        space_hash: "test".into(),
        board: "kv260".into(),
        family: "xcup".into(),
        dataset_sha256: "test".into(),
        datapath: 2,
    }
}

fn median_ape(model: &Surrogate, test: &[Example], t: usize) -> f64 {
    let graphs: Vec<_> = test.iter().map(|e| &e.graph).collect();
    let mut apes: Vec<f64> = model
        .predict(&graphs)
        .iter()
        .zip(test)
        .map(|(p, e)| {
            let a = e.targets[t].unwrap();
            (p.value[t].unwrap() - a).abs() / a
        })
        .collect();
    apes.sort_by(f64::total_cmp);
    apes[apes.len() / 2]
}

/// Trainings in one process at the same time do not reproduce each other: burn's
/// device state is process-wide. The tests in this file that train take turns.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_training_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    TRAINING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn learns_a_graph_determined_target_reproducibly() {
    let _turn = one_training_at_a_time();
    let all = examples(160);
    let (train, test) = all.split_at(130);
    let model = Surrogate::train(train, options(3), provenance(), &()).unwrap();
    // Predicting the training mean everywhere would be off by far more than this: the
    // targets span two orders of magnitude.
    let lut = median_ape(&model, test, 0);
    let ff = median_ape(&model, test, 1);
    assert!(lut < 0.25, "LUT median APE {lut}");
    assert!(ff < 0.25, "FF median APE {ff}");
    // A constant target is predicted as that constant; an absent one not at all.
    let p = &model.predict(&[&test[0].graph])[0];
    assert_eq!(p.value[2], Some(0.0));
    assert_eq!(p.value[4], None);

    let again = Surrogate::train(train, options(3), provenance(), &()).unwrap();
    let graphs: Vec<_> = test.iter().map(|e| &e.graph).collect();
    assert_eq!(
        model.predict(&graphs),
        again.predict(&graphs),
        "same seed, same model"
    );
}

#[test]
fn weights_round_trip_and_damage_is_refused() {
    let _turn = one_training_at_a_time();
    let all = examples(40);
    let mut opts = options(5);
    opts.max_epochs = 3;
    let model = Surrogate::train(&all, opts, provenance(), &()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tgnn");
    model.save(&path).unwrap();
    let loaded = Surrogate::load(&path).unwrap();
    let graphs: Vec<_> = all.iter().map(|e| &e.graph).collect();
    assert_eq!(model.predict(&graphs), loaded.predict(&graphs));
    assert_eq!(model.header, loaded.header);

    let good = std::fs::read(&path).unwrap();
    let damaged = |bytes: Vec<u8>| {
        std::fs::write(&path, bytes).unwrap();
        Surrogate::load(&path).err().expect("refused").to_string()
    };
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(damaged(bad).contains("bad magic"));
    let mut bad = good.clone();
    bad[8] = 9;
    assert!(damaged(bad).contains("version 9"));
    assert!(damaged(good[..good.len() - 4].to_vec()).contains("do not match"));
    assert!(damaged(good[..10].to_vec()).contains("too short"));
    let mut bad = good.clone();
    bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(damaged(bad).contains("header length"));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(damaged(bad).contains("non-finite"));

    // Bounded file fuzzing, kept in CI: random damage (a flipped byte, a cut, a digit
    // of the JSON header changed or lengthened) loads to a model or a typed error, never
    // a panic or a huge allocation; a model that loads predicts finite values or none.
    use rand::{Rng, SeedableRng};
    const SEED: u64 = 0x76_6E_6E;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let header_end = 16 + u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    for case in 0..300 {
        let mut bad = good.clone();
        match rng.gen_range(0..3) {
            0 => {
                let i = rng.gen_range(0..bad.len());
                bad[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => bad.truncate(rng.gen_range(0..bad.len())),
            _ => {
                let digits: Vec<usize> = (16..header_end.min(bad.len()))
                    .filter(|&i| bad[i].is_ascii_digit())
                    .collect();
                let i = digits[rng.gen_range(0..digits.len())];
                if rng.gen_bool(0.5) {
                    bad[i] = b'0' + rng.gen_range(0..10);
                } else {
                    bad.splice(i..i, b"99999".iter().copied());
                }
            }
        }
        std::fs::write(&path, &bad).unwrap();
        if let Ok(m) = Surrogate::load(&path) {
            for p in m.predict(&graphs) {
                for v in p.value.iter().chain(&p.spread).flatten() {
                    assert!(v.is_finite(), "seed {SEED:#x}, case {case}: prediction {v}");
                }
            }
        }
    }
}

/// A weights file whose header is well-formed JSON but describes a damaged network is
/// refused before any network is built (no allocation from its claims, no panic).
#[test]
fn damaged_headers_are_refused_before_building_a_network() {
    let _turn = one_training_at_a_time();
    let all = examples(20);
    let mut opts = options(6);
    opts.max_epochs = 1;
    let model = Surrogate::train(&all, opts, provenance(), &()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tgnn");
    model.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let hlen = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&good[16..16 + hlen]).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut h = header.clone();
        edit(&mut h);
        let h = serde_json::to_vec(&h).unwrap();
        let mut bytes = good[..12].to_vec();
        bytes.extend_from_slice(&(h.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&good[16 + hlen..]);
        std::fs::write(&path, bytes).unwrap();
        Surrogate::load(&path).err().expect("refused").to_string()
    };
    let e = with(&|h| h["shape"]["hidden"] = 0.into());
    assert!(e.contains("hidden size 0"), "{e}");
    let e = with(&|h| h["shape"]["hidden"] = (1u64 << 40).into());
    assert!(e.contains("hidden size"), "{e}");
    let e = with(&|h| h["shape"]["layers"] = 1_000_000.into());
    assert!(e.contains("layers"), "{e}");
    let e = with(&|h| h["scaling"]["mean"] = serde_json::json!([1.0]));
    assert!(e.contains("scaling table `mean`"), "{e}");
    let e = with(&|h| h["scaling"]["std"][0] = 1e300.into());
    assert!(e.contains("out of range"), "{e}");
    // Another format's file, and a header whose losses are not numbers (what zero
    // epochs used to write: `null`).
    let e = with(&|h| h["format"] = "tern-block-model".into());
    assert!(e.contains("format `tern-block-model`"), "{e}");
    let e = with(&|h| h["validation_loss"][0] = serde_json::Value::Null);
    assert!(e.contains("header"), "{e}");
    let e = with(&|h| h["validation_loss"] = serde_json::json!([]));
    assert!(e.contains("validation losses"), "{e}");
}

/// Training refuses options it cannot run with and rows whose graphs are damaged, with
/// the reason, instead of panicking or allocating without bound.
#[test]
fn bad_training_options_and_rows_are_errors() {
    let all = examples(12);
    for (edit, expect) in [
        (
            Box::new(|o: &mut TrainOptions| o.shape.hidden = 0) as Box<dyn Fn(&mut TrainOptions)>,
            "hidden size 0",
        ),
        (
            Box::new(|o: &mut TrainOptions| o.shape.hidden = 100_000),
            "hidden size 100000",
        ),
        (
            Box::new(|o: &mut TrainOptions| o.members = 0),
            "ensemble members",
        ),
        (Box::new(|o: &mut TrainOptions| o.batch = 0), "batch size 0"),
        (
            Box::new(|o: &mut TrainOptions| o.max_epochs = 0),
            "0 epochs is outside 1..=100000",
        ),
    ] {
        let mut opts = options(1);
        edit(&mut opts);
        let e = Surrogate::train(&all, opts, provenance(), &())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(expect), "{e}");
    }
    let mut bad = all.clone();
    let nodes = bad[3].graph.nodes as u32;
    bad[3].graph.dst[0] = nodes + 5;
    let e = Surrogate::train(&bad, options(1), provenance(), &())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("training row 3") && e.contains("beyond"), "{e}");
}
