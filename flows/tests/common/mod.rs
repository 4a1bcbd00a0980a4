//! What the tests of the one top's program share: the tiny model's program and its
//! attention engine, and the golden sequencer's memory around one command.
#![allow(dead_code)]

use tern_hdl::program::{Command, HeadFormat, COMMAND_BYTES};
use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{AttentionScales, GoldenFabric};
use tern_sim::golden::fixed_point::RESIDUAL_FRAC;
use tern_sim::golden::sequencer::{run_pass, SequencerError};

use tern_flows::program::{build, ProgramImage};

pub const DESIGN: u32 = 0x7e57_0001;

pub fn attention() -> AttentionConfig {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bitnet_tiny_attention.toml"
    );
    AttentionConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

pub fn setup(seed: u64) -> (Checkpoint, AttentionConfig, AttentionScales, ProgramImage) {
    setup_with(seed, HeadFormat::Int8)
}

/// [`setup`] with the LM head in `head`.
pub fn setup_with(
    seed: u64,
    head: HeadFormat,
) -> (Checkpoint, AttentionConfig, AttentionScales, ProgramImage) {
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), seed);
    let cfg = attention();
    let scales = AttentionScales::of(&cfg);
    // Scratch on the KV260's banks, as the one top's program has it.
    let banks = tern_flows::program::Banks::of(&tern_boards::Board::resolve("kv260").unwrap());
    let image = program(&ck, &cfg, &[scales], head, None, banks).unwrap();
    (ck, cfg, scales, image)
}

/// The tests' program of `ck` (passes of up to 16 tokens, for [`DESIGN`], the residual's
/// fractional bits the fixed-point model's): the attention engine `cfg` with `scales`,
/// the LM head in `head`, the matrices laid out for `matmul` (or left to the fabric), the
/// scratch on `banks`.
pub fn program(
    ck: &Checkpoint,
    cfg: &AttentionConfig,
    scales: &[AttentionScales],
    head: HeadFormat,
    matmul: Option<&tern_hdl::units::MatmulUnitShape>,
    banks: Option<tern_flows::program::Banks>,
) -> anyhow::Result<ProgramImage> {
    build(
        ck,
        cfg,
        scales,
        RESIDUAL_FRAC,
        16,
        DESIGN,
        head,
        matmul,
        banks,
    )
}

/// The memory just before and just after command `i` of a pass, as the golden sequencer
/// leaves it (the pass stopped by an `End` put in place of command `i`, or of `i + 1`;
/// the command list restored afterwards), and the golden's outcome of command `i`.
pub fn golden_around(
    ck: &Checkpoint,
    cfg: &AttentionConfig,
    header: &tern_hdl::program::Header,
    base: &[u8],
    i: usize,
    (position, ids): (usize, &[usize]),
) -> (Vec<u8>, Vec<u8>, Option<u8>) {
    let at = |k: usize| header.commands_at as usize + k * COMMAND_BYTES;
    let stop_at = |k: usize| {
        let mut m = base.to_vec();
        m[at(k)..at(k) + COMMAND_BYTES].copy_from_slice(&Command::End.encode());
        let mut fabric = GoldenFabric::new(ck, cfg);
        let r = run_pass(
            &ck.config,
            cfg,
            &mut m,
            0,
            DESIGN,
            position,
            ids,
            &mut fabric,
        );
        m[at(k)..at(k) + COMMAND_BYTES].copy_from_slice(&base[at(k)..at(k) + COMMAND_BYTES]);
        let code = match r {
            Err(SequencerError::Program(e)) => e.code(),
            other => panic!(
                "the pass was to stop at command {k}: {:?}",
                other.map(|o| o.next)
            ),
        };
        (m, code)
    };
    let (before, code) = stop_at(i);
    assert_eq!(
        code,
        tern_hdl::program::error_code::NO_CHOICE,
        "stopped by the End at {i}"
    );
    let (after, code) = stop_at(i + 1);
    let outcome = (code != tern_hdl::program::error_code::NO_CHOICE).then_some(code);
    (before, after, outcome)
}
