//! Helpers the whole-model tests share: the tiny attention engine, the logit cosine,
//! and attention scales calibrated by the float reference.

use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
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

/// Scales measured by the float reference over `tokens`, and the engine built for them.
pub fn calibrated(ck: &Checkpoint, tokens: &[usize]) -> (AttentionScales, AttentionConfig) {
    let mut float = FloatReference::new(ck);
    tokens.iter().for_each(|&t| drop(float.step(t)));
    let s = AttentionScales::covering(&float.ranges);
    let cfg = attention_config()
        .with_scales([s.q, s.k, s.v, s.out], "calibrated")
        .unwrap();
    (s, cfg)
}
