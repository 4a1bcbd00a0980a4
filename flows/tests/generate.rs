//! The board fabric of `tern generate` against the golden fabric, call by call: a whole
//! tiny model on two simulated boards (TLMM top, attention top). The comparison is
//! shown to bite: a golden model of another attention engine, or one wrong weight tile
//! on the board, changes the logits.

use indicatif::ProgressBar;
use tern_flows::generate::{BoardFabric, Shadowed, TINY_ATTENTION, TINY_MATMUL};
use tern_hdl::{AttentionConfig, Config, DesignConfig};
use tern_host::{Device, OpenOptions};
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{AttentionScales, Fabric, GoldenFabric, IntegerModel};

const SEED: u64 = 3;

fn setup() -> (Checkpoint, Config, AttentionConfig, BoardFabric) {
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), SEED);
    let matmul = Config::from_toml(TINY_MATMUL, "tiny matmul").unwrap();
    let attention = AttentionConfig::from_toml(TINY_ATTENTION, "tiny attention").unwrap();
    let open = |d: DesignConfig| Device::open_design("sim:", &d, &OpenOptions::default()).unwrap();
    let fabric = BoardFabric::load(
        &ck,
        &matmul,
        open(DesignConfig::Matmul(matmul.clone())),
        vec![open(DesignConfig::Attention(attention.clone()))],
        &ProgressBar::hidden(),
    )
    .unwrap();
    (ck, matmul, attention, fabric)
}

/// Prompt then three decode steps; the logits of each pass.
fn run<F: Fabric>(ck: &Checkpoint, scales: AttentionScales, fabric: &mut F) -> Vec<Vec<f32>>
where
    F::Error: std::fmt::Debug,
{
    let mut model = IntegerModel::new(ck, scales);
    let mut out = vec![model.forward(fabric, &[3, 1, 4, 1, 5, 9, 2, 6, 5]).unwrap()];
    for t in [35, 8, 97] {
        out.push(model.forward(fabric, &[t]).unwrap());
    }
    out
}

#[test]
fn every_pass_on_the_boards_equals_the_golden_fabric_and_a_wrong_one_is_caught() {
    let (ck, matmul, attention, mut board) = setup();
    let scales = AttentionScales::of(&attention);
    let on_board = run(&ck, scales, &mut board);
    let golden = run(&ck, scales, &mut GoldenFabric::new(&ck, &attention));
    assert_eq!(
        on_board, golden,
        "seed {SEED}: board and golden logits differ"
    );
    assert!(board.tally.matmul_calls > 0 && board.tally.attention_calls > 0);

    // Another attention engine (a coarser exp table) gives other logits.
    let coarse = AttentionConfig::from_toml(
        &TINY_ATTENTION.replace("\nscale_q", "\nexp_entries = 32\nscale_q"),
        "coarse",
    )
    .unwrap();
    let other = run(&ck, scales, &mut GoldenFabric::new(&ck, &coarse));
    assert_ne!(other, golden, "the exp table does not reach the logits");

    // One corrupted weight tile on the board (layer 1's down_proj, the last slot).
    board.reset().unwrap();
    let tile = matmul.workload.m * matmul.workload.k;
    let wrong: Vec<i8> = (0..tile).map(|i| [1i8, -1, 0][i % 3]).collect();
    let last = 2 * 18 - 1;
    board.matmul.load_weights_into(last, &wrong).unwrap();
    let mut shadowed = Shadowed::new(board, &ck, &attention);
    let broken = run(&ck, scales, &mut shadowed);
    assert_ne!(broken, golden, "a wrong tile went unnoticed");
    let first = shadowed
        .first_difference
        .expect("the differing call is named");
    assert!(first.starts_with("layer 1 down_proj, token "), "{first}");
}

/// Two attention engines side by side (KV head h on engine h mod 2): the same logits,
/// and each layer's attention waits only for the busier engine.
#[test]
fn two_attention_engines_give_the_same_logits_in_less_attention_time() {
    let (ck, matmul, attention, mut one) = setup();
    let scales = AttentionScales::of(&attention);
    let open = |d: DesignConfig| Device::open_design("sim:", &d, &OpenOptions::default()).unwrap();
    let mut two = BoardFabric::load(
        &ck,
        &matmul,
        open(DesignConfig::Matmul(matmul.clone())),
        (0..2)
            .map(|_| open(DesignConfig::Attention(attention.clone())))
            .collect(),
        &ProgressBar::hidden(),
    )
    .unwrap();
    let a = run(&ck, scales, &mut one);
    let b = run(&ck, scales, &mut two);
    assert_eq!(a, b, "seed {SEED}: two engines changed the logits");
    assert_eq!(one.tally.attention_calls, two.tally.attention_calls);
    assert_eq!(one.tally.matmul_clocks, two.tally.matmul_clocks);
    // The tiny model has two KV heads: one per engine, so about half the clocks.
    let (t1, t2) = (one.tally.attention_clocks, two.tally.attention_clocks);
    assert!(
        t2 * 10 < t1 * 6 && t2 * 10 > t1 * 4,
        "attention clocks {t1} on one engine, {t2} on two"
    );
}
