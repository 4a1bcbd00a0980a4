//! The float reference of a whole BitNet model against an independent NumPy version
//! (`sim/reference/bitnet_numpy.py`, written from transformers' BitNet code, reading the
//! checkpoint files itself): random tiny checkpoints in the Hugging Face layout, a few
//! tokens each, logits compared position by position.
//!
//! Needs python3 with numpy (scripts/setup.sh installs it); without it this test fails,
//! saying so.

use std::path::Path;
use std::process::Command;

use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{FloatReference, Int8Attention, Int8Rounding};

#[path = "common/bitnet.rs"]
mod bitnet_helpers;

#[test]
fn the_float_reference_agrees_with_an_independent_numpy_model() {
    let probe = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with numpy is needed for this test (run scripts/setup.sh): {probe:?}"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/bitnet_numpy.py");
    let tiny = ModelConfig::preset("tiny").unwrap();
    // The tiny preset, and a tied-embedding, multi-head variant with another RoPE base.
    let tied = ModelConfig {
        name: "tiny-tied".into(),
        kv_heads: 4,
        rope_theta: 500000.0,
        tied_embeddings: true,
        ..tiny.clone()
    };
    for (config, seed, tokens) in [
        (tiny, 11u64, vec![3usize, 250, 17, 17, 0, 99]),
        (tied, 12, vec![255, 1, 2, 3]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint::random(&config, seed);
        ck.write_hf(dir.path()).unwrap();
        // Read back: the reference runs on what the file holds (bfloat16 floats).
        let ck = Checkpoint::read_hf(dir.path()).unwrap();
        let mut model = FloatReference::new(&ck);
        let logits: Vec<Vec<f32>> = tokens.iter().map(|&t| model.step(t)).collect();
        assert_eq!(model.position(), tokens.len());
        assert!(
            logits.iter().flatten().all(|v| v.is_finite()),
            "{}: non-finite logits (seed {seed})",
            config.name
        );
        let spread = logits[0].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.0, "{}: all-zero logits", config.name);
        let file = dir.path().join("rust_logits.json");
        std::fs::write(
            &file,
            serde_json::json!({"tokens": tokens, "logits": logits}).to_string(),
        )
        .unwrap();
        let o = Command::new("python3")
            .arg(&script)
            .args(["--checkpoint", dir.path().to_str().unwrap()])
            .args(["--logits", file.to_str().unwrap()])
            .output()
            .unwrap();
        let out =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && out.contains("agree:"),
            "{} (seed {seed}): the Rust and NumPy references differ:\n{out}",
            config.name
        );
        eprintln!("{} (seed {seed}): {}", config.name, out.trim());
    }
}

/// The float reference can round the attention's operands to int8 (to measure what the
/// integer attention's roundings cost): nothing changes unless asked; calibrated units
/// move the logits a little; units far too small saturate and move them a lot.
#[test]
fn the_float_reference_rounds_the_attention_to_int8_only_where_asked() {
    use Int8Rounding::{None as Float, PerHead, PerLayer, PerToken};
    let ck = Checkpoint::random(&bitnet_helpers::layout_2b4t(), 5);
    let tokens = [17usize, 4, 300, 21, 9, 9, 128, 77, 5, 6];
    let mut calibration = FloatReference::new(&ck);
    let plain: Vec<Vec<f32>> = tokens.iter().map(|&t| calibration.step(t)).collect();
    let run = |rounding: [Int8Rounding; 4], headroom: f32| -> f64 {
        let int8 = Int8Attention::calibrated(&calibration, rounding, headroom);
        let mut model = FloatReference::new(&ck).with_int8_attention(int8);
        tokens
            .iter()
            .zip(&plain)
            .map(|(&t, want)| bitnet_helpers::cosine(want, &model.step(t)))
            .fold(1.0, f64::min)
    };
    let mut unrounded = FloatReference::new(&ck).with_int8_attention(Int8Attention::calibrated(
        &calibration,
        [Float; 4],
        1.25,
    ));
    for (&t, want) in tokens.iter().zip(&plain) {
        assert_eq!(&unrounded.step(t), want, "no rounding asked, none done");
    }
    for rounding in [
        [PerLayer; 4],
        [PerHead; 4],
        [PerToken; 4],
        [Float, Float, Float, PerToken],
    ] {
        let c = run(rounding, 1.25);
        assert!(c < 1.0 && c > 0.99, "{rounding:?}: worst cosine {c}");
    }
    let saturated = run([PerLayer; 4], 0.05);
    assert!(
        saturated < run([PerLayer; 4], 1.25) && saturated < 0.99,
        "units at 5 % of the range saturate: worst cosine {saturated}"
    );
}

/// A GGUF file written by PyPI's `gguf` package (llama.cpp's own writer; I2_S packed by
/// its documented layout) from a safetensors checkpoint reads back as the same weights
/// and gives the same logits, bit for bit, for each ternary type tern reads.
///
/// Needs python3 with `gguf` and numpy (scripts/setup.sh installs them); without them
/// this test fails, saying so.
#[test]
fn a_gguf_written_by_gguf_py_gives_the_safetensors_logits() {
    let probe = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with gguf and numpy is needed for this test (run scripts/setup.sh): {probe:?}"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/write_gguf.py");
    // Rows of 256 weights: llama.cpp's TQ blocks run along a row.
    let config = ModelConfig {
        name: "gguf-test".into(),
        hidden: 256,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        ffn: 512,
        ..ModelConfig::preset("tiny").unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = [5usize, 200, 17, 3];
    for (seed, projections, embedding, tied) in [
        (21u64, "I2_S", "F16", true),
        (22, "TQ2_0", "BF16", false),
        (23, "TQ1_0", "F32", true),
        (24, "F16", "BF16", true),
    ] {
        let cfg = ModelConfig {
            tied_embeddings: tied,
            ..config.clone()
        };
        let hf = dir.path().join(format!("hf{seed}"));
        Checkpoint::random(&cfg, seed).write_hf(&hf).unwrap();
        let gguf = dir.path().join(format!("m{seed}.gguf"));
        let o = Command::new("python3")
            .arg(&script)
            .args([hf.as_os_str(), gguf.as_os_str()])
            .args([projections, embedding])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "write_gguf.py {projections} {embedding} (seed {seed}): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let want = Checkpoint::read_hf(&hf).unwrap();
        let got = Checkpoint::open(&gguf)
            .unwrap_or_else(|e| panic!("{projections} (seed {seed}): {e}"))
            .checkpoint;
        assert_eq!(got.config.name, "written-by-gguf-py");
        let got = Checkpoint {
            config: ModelConfig {
                name: want.config.name.clone(),
                ..got.config.clone()
            },
            ..got
        };
        assert!(
            got.config == want.config,
            "{projections} (seed {seed}): config {:?} vs {:?}",
            got.config,
            want.config
        );
        for (l, (g, w)) in got.layers.iter().zip(&want.layers).enumerate() {
            for (mm, (a, b)) in cfg
                .layer_matmuls()
                .iter()
                .zip(g.matmuls.iter().zip(&w.matmuls))
            {
                assert!(
                    a == b,
                    "{projections} (seed {seed}): layer {l} {} differs (scale {} vs {})",
                    mm.name,
                    a.scale,
                    b.scale
                );
            }
        }
        assert!(
            got == want,
            "{projections} (seed {seed}): the float tensors differ"
        );
        let (mut a, mut b) = (FloatReference::new(&got), FloatReference::new(&want));
        for (i, &t) in tokens.iter().enumerate() {
            let (x, y) = (a.step(t), b.step(t));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&x) == bits(&y),
                "{projections} (seed {seed}): logits differ at position {i}"
            );
        }
    }
}
