//! The one-top accelerator's program (docs/program.md), run by the sequencer's golden
//! twin over a memory image: every pass (a prompt, then decoded tokens) gives the next
//! token and the LM head's scores bit for bit as the fixed-point model does, and a
//! program that is broken or reaches outside its regions is refused, naming the command.

use tern_hdl::program::{Command, HeadFormat, Int4Head, ProgramError, COMMAND_BYTES};
use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{AttentionScales, GoldenFabric};
use tern_sim::golden::fixed_point::{FixedPointModel, VectorProgram, RESIDUAL_FRAC};
use tern_sim::golden::sequencer::{run_pass, SequencerError};

use tern_flows::program::{build, ProgramImage};

const DESIGN: u32 = 0x7e57_0001;

fn attention() -> AttentionConfig {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bitnet_tiny_attention.toml"
    );
    AttentionConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

fn setup(seed: u64) -> (Checkpoint, AttentionConfig, AttentionScales, ProgramImage) {
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), seed);
    let cfg = attention();
    let scales = AttentionScales::of(&cfg);
    let image = build(&ck, &[scales], RESIDUAL_FRAC, 16, DESIGN, HeadFormat::Int8).unwrap();
    (ck, cfg, scales, image)
}

#[test]
fn the_program_runs_every_pass_as_the_fixed_point_model_does() {
    for seed in [1u64, 2] {
        let (ck, cfg, scales, mut image) = setup(seed);
        let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
        let mut model = FixedPointModel::new(&ck, &program);
        let mut model_fabric = GoldenFabric::new(&ck, &cfg);
        let mut seq_fabric = GoldenFabric::new(&ck, &cfg);
        let prompt = [3usize, 141, 59, 26, 5, 35, 89, 79];
        let mut position = 0;
        let mut feed = prompt.to_vec();
        for step in 0..8 {
            let want = model.forward(&mut model_fabric, &feed).unwrap();
            let got = run_pass(
                &ck.config,
                &mut image.memory,
                0,
                DESIGN,
                position,
                &feed,
                &mut seq_fabric,
            )
            .unwrap();
            assert_eq!(
                (got.next, got.scores.as_ref()),
                (want.next, Some(&want.scores)),
                "seed {seed}, pass {step} at position {position}"
            );
            assert_eq!(got.commands_run, image.commands.len());
            assert_eq!(got.saturations, 0, "seed {seed}, pass {step}");
            position += feed.len();
            feed = vec![got.next];
        }
    }
}

/// A program with the 4-bit LM head (groups of 32 and of 8): each pass's scores are the
/// golden `head4_scores` of the host's `Int4Head` on the fixed-point model's final norm,
/// and the next token their first largest, bit for bit; the rest of the pass is the
/// int8 program's.
#[test]
fn a_program_with_the_4_bit_head_scores_as_the_golden_head_does() {
    use tern_sim::golden::vector::{argmax, head4_scores};
    for group in [32u32, 8] {
        let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 5);
        let cfg = attention();
        let scales = AttentionScales::of(&cfg);
        let mut image = build(
            &ck,
            &[scales],
            RESIDUAL_FRAC,
            16,
            DESIGN,
            HeadFormat::Int4 { group },
        )
        .unwrap();
        let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
        let mut model = FixedPointModel::new(&ck, &program);
        let c = &ck.config;
        let head = Int4Head::of(
            ck.lm_head.as_ref().unwrap_or(&ck.embed_tokens),
            c.vocab,
            c.hidden,
            group as usize,
        );
        let mut model_fabric = GoldenFabric::new(&ck, &cfg);
        let mut seq_fabric = GoldenFabric::new(&ck, &cfg);
        let mut position = 0;
        let mut feed = vec![3usize, 141, 59, 26];
        for step in 0..4 {
            let token = model.forward(&mut model_fabric, &feed).unwrap();
            let want = head4_scores(&head, &token.last.q);
            let got = run_pass(
                c,
                &mut image.memory,
                0,
                DESIGN,
                position,
                &feed,
                &mut seq_fabric,
            )
            .unwrap();
            assert_eq!(
                (got.next, got.scores.as_ref()),
                (argmax(&want), Some(&want)),
                "groups of {group}, pass {step}"
            );
            position += feed.len();
            feed = vec![got.next];
        }
    }
    // A group the engine cannot take is refused when the program is built.
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 5);
    let scales = AttentionScales::of(&attention());
    let err = build(
        &ck,
        &[scales],
        RESIDUAL_FRAC,
        16,
        DESIGN,
        HeadFormat::Int4 { group: 24 },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("group of 24"), "{err}");
}

fn run(
    ck: &Checkpoint,
    cfg: &AttentionConfig,
    memory: &mut [u8],
    design: u32,
    position: usize,
    ids: &[usize],
) -> Result<usize, String> {
    let mut fabric = GoldenFabric::new(ck, cfg);
    run_pass(&ck.config, memory, 0, design, position, ids, &mut fabric)
        .map(|o| o.next)
        .map_err(|e| e.to_string())
}

/// The sequencer refuses before it starts: another accelerator's program, a token
/// beyond the vocabulary, a pass beyond the context or the program's room; and while it
/// runs, before the command writes: an unknown opcode, a write outside scratch (into the
/// program's data), a read beyond memory, a command list without End.
#[test]
fn broken_programs_and_bad_inputs_are_refused_naming_what() {
    let (ck, cfg, _, image) = setup(3);
    let fresh = || image.memory.clone();
    let err = run(&ck, &cfg, &mut fresh(), DESIGN + 1, 0, &[1]).unwrap_err();
    assert!(err.contains("built for accelerator"), "{err}");
    let err = run(&ck, &cfg, &mut fresh(), DESIGN, 0, &[256]).unwrap_err();
    assert!(err.contains("outside the vocabulary"), "{err}");
    let err = run(&ck, &cfg, &mut fresh(), DESIGN, 60, &[1; 8]).unwrap_err();
    assert!(err.contains("exceed the context"), "{err}");
    let err = run(&ck, &cfg, &mut fresh(), DESIGN, 0, &[1; 17]).unwrap_err();
    assert!(err.contains("at most 16"), "{err}");

    let at = |i: usize| image.header.commands_at as usize + i * COMMAND_BYTES;
    let mut m = fresh();
    m[at(5)] = 0xEE;
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(
        err.contains("command 5") && err.contains("opcode 238"),
        "{err}"
    );

    // Command 1 is the first norm: point its output at the embedding table.
    let Command::NormQuant {
        src,
        gain,
        factors,
        n,
        int8_unit,
        ..
    } = image.commands[1]
    else {
        panic!("command 1 is {:?}", image.commands[1])
    };
    let Command::Embed { table, .. } = image.commands[0] else {
        panic!()
    };
    let mut m = fresh();
    let before = m.clone();
    let bad = Command::NormQuant {
        src,
        gain,
        dst: table,
        factors,
        n,
        int8_unit,
    };
    m[at(1)..at(2)].copy_from_slice(&bad.encode());
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(
        err.contains("command 1 (NormQuant)") && err.contains("outside scratch"),
        "{err}"
    );
    assert_eq!(
        m[table as usize..table as usize + 64],
        before[table as usize..table as usize + 64],
        "nothing written"
    );

    let mut m = fresh();
    let far = Command::Embed {
        table: 1 << 40,
        dst: image.header.scratch_at + 4096,
        n: 64,
    };
    m[at(0)..at(1)].copy_from_slice(&far.encode());
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(
        err.contains("command 0 (Embed)") && err.contains("outside memory"),
        "{err}"
    );

    // Without its End the list runs out.
    let mut m = fresh();
    let last = image.commands.len() - 1;
    let head = m[at(last - 1)..at(last)].to_vec();
    m[at(last)..at(last) + COMMAND_BYTES].copy_from_slice(&head); // End becomes a second LM head
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(err.contains("no End"), "{err}");

    // Sizes of zero (a zeroed record with the LM head's opcode) are refused, not divided by.
    let mut m = fresh();
    m[at(last)] = 9;
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(
        err.contains(&format!("command {last}")) && err.contains("rows"),
        "{err}"
    );

    // A truncated image: the header alone.
    let mut m = image.memory[..100].to_vec();
    match run_pass(
        &ck.config,
        &mut m,
        0,
        DESIGN,
        0,
        &[1],
        &mut GoldenFabric::new(&ck, &cfg),
    ) {
        Err(SequencerError::Program(ProgramError::Truncated { .. })) => {}
        other => panic!("{other:?}"),
    }
}

/// Random corruptions of the command list and the header never panic or hang: each run
/// ends with a token or an error (300 corruptions, seed 29).
#[test]
fn corrupted_programs_end_with_a_token_or_an_error() {
    use rand::{Rng, SeedableRng};
    let (ck, cfg, _, image) = setup(4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
    let commands_end = image.header.commands_at as usize + image.commands.len() * COMMAND_BYTES;
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..300 {
        let mut m = image.memory.clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..commands_end);
            m[at] = rng.gen();
        }
        match run(&ck, &cfg, &mut m, DESIGN, 0, &[7]) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    println!("{ok} ran to a token, {refused} refused");
    assert!(refused > 0 && ok + refused == 300);
}

/// The program with its matmuls and attention on the simulated boards (the TLMM top
/// holding every weight tile, the attention top every KV cache, under Verilator): the
/// golden sequencer running it gives every pass's next token and scores bit for bit as
/// the fixed-point model over the golden fabric.
#[test]
fn the_program_on_the_simulated_boards_equals_the_fixed_point_model() {
    use indicatif::ProgressBar;
    use tern_flows::generate::{BoardFabric, TINY_ATTENTION, TINY_MATMUL};
    use tern_hdl::{Config, DesignConfig};
    use tern_host::{Device, OpenOptions};
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 5);
    let matmul = Config::from_toml(TINY_MATMUL, "tiny matmul").unwrap();
    let attention = AttentionConfig::from_toml(TINY_ATTENTION, "tiny attention").unwrap();
    let open = |d: DesignConfig| Device::open_design("sim:", &d, &OpenOptions::default()).unwrap();
    let mut board = BoardFabric::load(
        &ck,
        &matmul,
        open(DesignConfig::Matmul(matmul.clone())),
        vec![open(DesignConfig::Attention(attention.clone()))],
        &ProgressBar::hidden(),
    )
    .unwrap();
    let scales = AttentionScales::of(&attention);
    let mut image = build(&ck, &[scales], RESIDUAL_FRAC, 16, DESIGN, HeadFormat::Int8).unwrap();
    let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
    let mut model = FixedPointModel::new(&ck, &program);
    let mut golden = GoldenFabric::new(&ck, &attention);
    let (mut position, mut feed) = (0, vec![3usize, 1, 4, 1, 5, 9, 2, 6]);
    for step in 0..4 {
        let want = model.forward(&mut golden, &feed).unwrap();
        let got = run_pass(
            &ck.config,
            &mut image.memory,
            0,
            DESIGN,
            position,
            &feed,
            &mut board,
        )
        .unwrap();
        assert_eq!(
            (got.next, got.scores.as_ref()),
            (want.next, Some(&want.scores)),
            "seed 5, pass {step}"
        );
        position += feed.len();
        feed = vec![got.next];
    }
    assert!(board.tally.matmul_calls > 0 && board.tally.attention_calls > 0);
}
