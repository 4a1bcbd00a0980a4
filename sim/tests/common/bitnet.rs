//! Helpers the whole-model tests share: the tiny attention engine, the logit cosine,
//! and attention scales calibrated by the float reference.

use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{AttentionScales, FloatReference};

pub fn attention_config() -> AttentionConfig {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bitnet_tiny_attention.toml"
    );
    AttentionConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let n = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// The tiny engine with the checkpoint's head dimension, built for `s`.
fn engine_for(ck: &Checkpoint, s: AttentionScales) -> AttentionConfig {
    let base = attention_config();
    let toml = base.to_toml().replace(
        &format!("head_dim = {}", base.attention.head_dim),
        &format!("head_dim = {}", ck.config.head_dim),
    );
    AttentionConfig::from_toml(&toml, "the tiny engine")
        .unwrap()
        .with_scales([s.q, s.k, s.v, s.out], "calibrated")
        .unwrap()
}

/// Scales measured by the float reference over `tokens` (one set for every layer), and
/// the engine built for them.
#[allow(dead_code)] // not every test that includes this file calibrates
pub fn calibrated(ck: &Checkpoint, tokens: &[usize]) -> (AttentionScales, AttentionConfig) {
    let mut float = FloatReference::new(ck);
    tokens.iter().for_each(|&t| drop(float.step(t)));
    let s = AttentionScales::covering(&float.ranges);
    (s, engine_for(ck, s))
}

/// Units calibrated layer by layer over `tokens` ([`AttentionScales::calibrate`]), and an
/// engine for each layer.
#[allow(dead_code)] // not every test that includes this file calibrates per layer
pub fn calibrated_per_layer(
    ck: &Checkpoint,
    tokens: &[usize],
) -> (Vec<AttentionScales>, Vec<AttentionConfig>) {
    let scales = AttentionScales::calibrate(ck, tokens);
    let engines = scales.iter().map(|&s| engine_for(ck, s)).collect();
    (scales, engines)
}

/// A small model in the 2B4T layout: four query heads per KV head, as the 2B has.
#[allow(dead_code)] // not every test that includes this file needs it
pub fn layout_2b4t() -> ModelConfig {
    ModelConfig {
        name: "2b4t-small".into(),
        hidden: 256,
        layers: 4,
        heads: 8,
        kv_heads: 2,
        head_dim: 32,
        ffn: 640,
        vocab: 512,
        rope_theta: 500000.0,
        norm_eps: 1e-5,
        max_seq_len: 64,
        ..ModelConfig::preset("tiny").unwrap()
    }
}
