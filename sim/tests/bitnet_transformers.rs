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
use tern_sim::golden::bitnet::{greedy, GoldenFabric, IntegerModel};
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

#[test]
fn the_fixed_point_model_follows_transformers() {
    let probe = Command::new("python3")
        .args(["-c", "import torch, transformers, accelerate"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with torch, transformers and accelerate is needed for this test (run scripts/setup.sh): {}",
        probe.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
    let config = layout_2b4t();
    let prompt = [17usize, 4, 300, 21, 9, 9, 128, 77];
    let steps = 32;
    let mut failures = vec![];
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::random(&config, seed)
            .write_hf(dir.path())
            .unwrap();
        let ck = Checkpoint::read_hf(dir.path()).unwrap();
        let reference = transformers(dir.path(), &prompt, steps);
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
