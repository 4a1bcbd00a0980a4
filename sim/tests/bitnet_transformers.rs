//! tern's models of a whole BitNet against transformers' own `BitNetForCausalLM`
//! (float32, CPU; `sim/reference/bitnet_transformers.py`): random checkpoints in the
//! bitnet-b1.58-2B-4T layout (GQA, packed ternary weights with their scales, bf16 norms
//! and embeddings), written by tern and read by both. Each step feeds both the same
//! token (the prompt, then transformers' greedy choice) and compares the logits: the
//! fixed-point model (every operation in the vector unit's integers, int8 LM head) with
//! the attention's int8 units calibrated on the prompt layer by layer (run-time data of
//! the program), and beside it, for scale, the same with one set of units for every
//! layer and the integer contract with the host's f32 (`tern generate --calibrate`).
//!
//! Needs python3 with torch, transformers and accelerate (scripts/setup.sh installs
//! them); without them this test fails, saying so.

#[path = "common/bitnet.rs"]
mod bitnet_helpers;

use std::path::Path;
use std::process::Command;

use tern_model::checkpoint::Checkpoint;
use tern_sim::golden::bitnet::{
    greedy, FloatReference, GoldenFabric, Int8Attention, Int8Rounding, IntegerModel,
    CALIBRATION_HEADROOM,
};
use tern_sim::golden::fixed_point::{FixedPointModel, VectorProgram, RESIDUAL_FRAC};

use bitnet_helpers::{calibrated, calibrated_per_layer, cosine, layout_2b4t};

struct Transformers {
    fed: Vec<usize>,
    logits: Vec<Vec<f32>>,
}

fn transformers(dir: &Path, prompt: &[usize], steps: usize) -> Transformers {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/bitnet_transformers.py");
    let out = dir.join("transformers.json");
    let prompt: Vec<String> = prompt.iter().map(|t| t.to_string()).collect();
    let o = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .args(["--prompt", &prompt.join(","), "--steps", &steps.to_string()])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "transformers failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let fed = v["fed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as usize)
        .collect();
    let logits = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    Transformers { fed, logits }
}

/// The largest logit's lead over the second.
fn margin(logits: &[f32]) -> f32 {
    let best = greedy(logits);
    let second = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .fold(f32::MIN, |m, (_, &v)| m.max(v));
    logits[best] - second
}

/// The worst logit cosine held today. The target (issue 29) is 0.998 on every step; on
/// this model the int8 attention does not reach it (worst steps 0.9977–0.9984,
/// BENCHMARKS.md), so this guards what is reached while the target stays open.
const FLOOR: f64 = 0.997;

const PROMPT: [usize; 8] = [17, 4, 300, 21, 9, 9, 128, 77];
const STEPS: usize = 32;

/// Fails, saying so, when transformers cannot run here.
fn need_transformers() {
    let probe = Command::new("python3")
        .args(["-c", "import torch, transformers, accelerate"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with torch, transformers and accelerate is needed for this test (run scripts/setup.sh): {}",
        probe.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// Random checkpoint `seed` in the 2B4T layout, as read back from its files, and
/// transformers' run of it: `prompt`, then `steps` greedy choices in all.
fn checkpoint_and_transformers(
    seed: u64,
    prompt: &[usize],
    steps: usize,
) -> (Checkpoint, Transformers) {
    let dir = tempfile::tempdir().unwrap();
    Checkpoint::random(&layout_2b4t(), seed)
        .write_hf(dir.path())
        .unwrap();
    let ck = Checkpoint::read_hf(dir.path()).unwrap();
    (ck, transformers(dir.path(), prompt, steps))
}

#[test]
fn the_fixed_point_model_follows_transformers() {
    need_transformers();
    let (config, prompt, steps) = (layout_2b4t(), PROMPT, STEPS);
    let mut failures = vec![];
    for seed in [1u64, 2, 3] {
        let (ck, reference) = checkpoint_and_transformers(seed, &PROMPT, STEPS);
        let (scales, cfg) = calibrated(&ck, &prompt);
        let (layer_scales, layer_cfgs) = calibrated_per_layer(&ck, &prompt);
        let per_layer = VectorProgram::build(&ck, &layer_scales, RESIDUAL_FRAC).unwrap();
        let shared = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
        let mut fixed = FixedPointModel::new(&ck, &per_layer);
        let mut fixed_fabric = GoldenFabric::per_layer(&ck, layer_cfgs);
        let mut one = FixedPointModel::new(&ck, &shared);
        let mut one_fabric = GoldenFabric::new(&ck, &cfg);
        let mut host = IntegerModel::new(&ck, scales);
        let mut host_fabric = GoldenFabric::new(&ck, &cfg);
        let (mut worst, mut worst_one, mut worst_host) = (1f64, 1f64, 1f64);
        let (mut decisive, mut agree) = (0, 0);
        for (step, (&token, want)) in reference.fed.iter().zip(&reference.logits).enumerate() {
            let got = fixed.forward(&mut fixed_fabric, &[token]).unwrap();
            let o = one.forward(&mut one_fabric, &[token]).unwrap();
            let h = host.forward(&mut host_fabric, &[token]).unwrap();
            let c = cosine(want, &got.logits);
            worst = worst.min(c);
            worst_one = worst_one.min(cosine(want, &o.logits));
            worst_host = worst_host.min(cosine(want, &h));
            if margin(want) > 0.2 {
                decisive += 1;
                if got.next == greedy(want) {
                    agree += 1;
                } else {
                    failures.push(format!(
                        "seed {seed}, step {step}: token {} against {}",
                        got.next,
                        greedy(want)
                    ));
                }
            }
            if c < FLOOR {
                failures.push(format!("seed {seed}, step {step}: logit cosine {c:.5}"));
            }
        }
        println!(
            "seed {seed}: worst logit cosine {worst:.5} (units for every layer: {worst_one:.5}; host f32: {worst_host:.5}); same greedy token on {agree}/{decisive} steps with a top-2 margin above 0.2"
        );
    }
    assert!(
        failures.is_empty(),
        "against transformers ({} layout, prompt {prompt:?}, {steps} steps): {}",
        config.name,
        failures.join("; ")
    );
}

/// What each int8 rounding of the attention costs against transformers, measured on the
/// float reference with its operands rounded ([`Int8Attention`]; static units calibrated
/// on the prompt with headroom 1.25): the worst logit cosine of each checkpoint over
/// [`STEPS`] steps. Seeds 1–3 are the test's, 4–6 held out. An experiment, not a check:
/// `cargo test --release -p tern-sim --test bitnet_transformers -- --ignored --nocapture`
/// (output in docs/bench/bitnet_int8_attention.txt).
#[test]
#[ignore]
fn what_each_int8_rounding_of_the_attention_costs() {
    use Int8Rounding::{None as F, PerHead as H, PerLayer as L, PerToken as T};
    need_transformers();
    let variants: [(&str, [Int8Rounding; 4]); 11] = [
        ("float (no rounding)", [F, F, F, F]),
        ("q per layer", [L, F, F, F]),
        ("k per layer", [F, L, F, F]),
        ("v per layer", [F, F, L, F]),
        ("output per layer", [F, F, F, L]),
        ("all per layer (the one top's roundings)", [L, L, L, L]),
        ("all per head", [H, H, H, H]),
        ("q, k, v per layer; output unrounded", [L, L, L, F]),
        ("q, k, v per layer; output per token", [L, L, L, T]),
        ("q, k, v per head; output per token", [H, H, H, T]),
        ("q per token; k, v per head; output per token", [T, H, H, T]),
    ];
    let seeds = 1..=6u64;
    let mut worst = vec![vec![]; variants.len()];
    for seed in seeds.clone() {
        let (ck, reference) = checkpoint_and_transformers(seed, &PROMPT, STEPS);
        let mut calibration = FloatReference::new(&ck);
        PROMPT.iter().for_each(|&t| drop(calibration.step(t)));
        for ((_, rounding), worst) in variants.iter().zip(&mut worst) {
            let int8 = Int8Attention::calibrated(&calibration, *rounding, CALIBRATION_HEADROOM);
            let mut model = FloatReference::new(&ck).with_int8_attention(int8);
            let w = reference
                .fed
                .iter()
                .zip(&reference.logits)
                .map(|(&t, want)| cosine(want, &model.step(t)))
                .fold(1.0, f64::min);
            worst.push(w);
        }
    }
    println!(
        "| rounding of q, k, v, output | worst logit cosine, seeds {} |",
        seeds.map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
    );
    for ((name, _), w) in variants.iter().zip(&worst) {
        let cells: Vec<String> = w.iter().map(|c| format!("{c:.5}")).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let float = worst[0].iter().cloned().fold(1.0, f64::min);
    assert!(
        float > 0.9995,
        "the float reference itself strays from transformers: {float}"
    );
}
