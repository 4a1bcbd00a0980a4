//! The accelerator's integer contract for a whole BitNet model (`IntegerModel` over the
//! software `GoldenFabric`): how close it stays to the float reference, that cutting a
//! sequence into passes does not change a bit, and the refusals of bad token ids.

#[path = "common/bitnet.rs"]
mod bitnet_helpers;

use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;

use bitnet_helpers::{attention_config, calibrated, cosine};
use tern_sim::golden::bitnet::{
    greedy, AttentionScales, FloatReference, GoldenFabric, InputError, IntegerModel, ModelRunError,
};

#[test]
fn the_integer_contract_follows_the_float_reference() {
    let tiny = ModelConfig::preset("tiny").unwrap();
    let prompt = [5usize, 17, 200, 3, 3, 91, 44, 128];
    for seed in [1u64, 2, 3] {
        let ck = Checkpoint::random(&tiny, seed);
        let (scales, cfg) = calibrated(&ck, &prompt);
        let mut float = FloatReference::new(&ck);
        let mut int = IntegerModel::new(&ck, scales);
        let mut fabric = GoldenFabric::new(&ck, &cfg);
        // Both fed the same tokens: the prompt, then the float reference's choices.
        let mut worst = 1f64;
        let mut agree = 0;
        let mut next = prompt[0];
        for i in 0..24 {
            let token = if i < prompt.len() { prompt[i] } else { next };
            let f = float.step(token);
            let q = int.forward(&mut fabric, &[token]).unwrap();
            worst = worst.min(cosine(&f, &q));
            agree += usize::from(greedy(&f) == greedy(&q));
            next = greedy(&f);
        }
        println!("seed {seed}: worst logit cosine {worst:.5}, top-1 agreement {agree}/24");
        assert!(
            worst > 0.99 && agree >= 21,
            "seed {seed}: the integer contract strays from the float reference (cosine {worst}, top-1 {agree}/24; scales {scales:?})"
        );
    }
}

#[test]
fn a_prompt_in_one_pass_equals_it_token_by_token() {
    let tiny = ModelConfig::preset("tiny").unwrap();
    let ck = Checkpoint::random(&tiny, 7);
    let prompt = [9usize, 8, 7, 100, 101, 102, 255, 0, 1, 2, 3];
    let (scales, cfg) = calibrated(&ck, &prompt);
    let mut whole = IntegerModel::new(&ck, scales);
    let mut whole_fabric = GoldenFabric::new(&ck, &cfg);
    let at_once = whole.forward(&mut whole_fabric, &prompt).unwrap();
    let mut steps = IntegerModel::new(&ck, scales);
    let mut steps_fabric = GoldenFabric::new(&ck, &cfg);
    let mut last = vec![];
    for (i, cut) in [&prompt[..4], &prompt[4..5], &prompt[5..]]
        .into_iter()
        .enumerate()
    {
        last = steps.forward(&mut steps_fabric, cut).unwrap();
        assert_eq!(steps.position(), [4, 5, 11][i]);
    }
    assert_eq!(
        at_once, last,
        "seed 7: passes of 4, 1 and 6 tokens differ from one pass"
    );
    // And the next decode step agrees too.
    let a = whole.forward(&mut whole_fabric, &[42]).unwrap();
    let b = steps.forward(&mut steps_fabric, &[42]).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_token_ids_and_a_full_context_are_refused_before_the_fabric_runs() {
    let tiny = ModelConfig {
        max_seq_len: 6,
        ..ModelConfig::preset("tiny").unwrap()
    };
    let ck = Checkpoint::random(&tiny, 1);
    let cfg = attention_config();
    let mut model = IntegerModel::new(&ck, AttentionScales::of(&cfg));
    let mut fabric = GoldenFabric::new(&ck, &cfg);
    let err = |r: Result<Vec<f32>, ModelRunError<std::convert::Infallible>>| match r {
        Err(ModelRunError::Input(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    };
    assert_eq!(
        err(model.forward(&mut fabric, &[1, 256])),
        InputError::TokenOutOfVocabulary {
            index: 1,
            id: 256,
            vocab: 256
        }
    );
    assert_eq!(err(model.forward(&mut fabric, &[])), InputError::Empty);
    model.forward(&mut fabric, &[1, 2, 3, 4]).unwrap();
    let full = err(model.forward(&mut fabric, &[1, 2, 3]));
    assert!(
        full.to_string().contains("exceed the context of 6"),
        "{full}"
    );
    assert_eq!(model.position(), 4, "a refused pass changes nothing");
    model.forward(&mut fabric, &[1, 2]).unwrap();
}

/// A NaN or an infinity never becomes a token: the checkpoint reader refuses non-finite
/// tensors, and what still overflows inside the contract (here a huge LM head gain, or a
/// norm gain that makes the residual infinite) is an error naming where, not logits of
/// NaN that argmax to token 0.
#[test]
fn non_finite_values_are_errors_not_tokens() {
    let tiny = ModelConfig::preset("tiny").unwrap();
    let cfg = attention_config();
    let run = |ck: &Checkpoint| {
        let mut model = IntegerModel::new(ck, AttentionScales::of(&cfg));
        let mut fabric = GoldenFabric::new(ck, &cfg);
        model.forward(&mut fabric, &[1, 2, 3])
    };
    let good = Checkpoint::random(&tiny, 5);
    let logits = run(&good).expect("random weights run");
    assert!(logits.iter().all(|v| v.is_finite()));

    // Finite gains whose products overflow f32 in the logits.
    let mut huge = good.clone();
    huge.norm.iter_mut().for_each(|g| *g = 3e38);
    match run(&huge) {
        Err(ModelRunError::NonFinite { what, value, .. }) => {
            assert!(what.contains("the logits"), "{what}");
            assert!(!value.is_finite());
        }
        other => panic!("seed 5, final norm gains 3e38: expected NonFinite, got {other:?}"),
    }

    // An infinite residual inside the network is caught before quantisation zeroes it.
    let mut inf = good.clone();
    inf.embed_tokens.iter_mut().for_each(|v| *v = f32::MAX);
    inf.layers[0].matmuls[3].scale = f32::MAX;
    match run(&inf) {
        Err(ModelRunError::NonFinite { what, .. }) => {
            assert!(what.starts_with("layer 0"), "{what}");
        }
        other => panic!("seed 5, saturated embedding: expected NonFinite, got {other:?}"),
    }
}
