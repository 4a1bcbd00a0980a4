//! The one-top accelerator's program (docs/program.md), run by the sequencer's golden
//! twin over a memory image: every pass (a prompt, then decoded tokens) gives the next
//! token and the LM head's scores bit for bit as the fixed-point model does, and a
//! program that is broken or reaches outside its regions is refused, naming the command.

use tern_hdl::program::{Command, HeadFormat, Int4Head, ProgramError, COMMAND_BYTES, HEADER_BYTES};
use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{AttentionScales, GoldenFabric};
use tern_sim::golden::fixed_point::{FixedPointModel, VectorProgram, RESIDUAL_FRAC};
use tern_sim::golden::sequencer::{run_pass, SequencerError};

use tern_flows::rtl::lint::lint_files;

mod common;
use common::{attention, golden_around, program, setup, setup_with, DESIGN};

/// Every pass (a prompt, then decoded tokens) gives the fixed-point model's next token
/// and scores. Seed 2 gives every layer its own attention units: the program's records
/// carry them, and the fixed-point model's fabric has one engine config per layer.
#[test]
fn the_program_runs_every_pass_as_the_fixed_point_model_does() {
    for seed in [1u64, 2] {
        let (ck, cfg, scales, _) = setup(seed);
        let layer_scales: Vec<AttentionScales> = if seed == 1 {
            vec![scales]
        } else {
            (0..ck.config.layers)
                .map(|l| {
                    let f = 1.0 + 0.37 * l as f64;
                    AttentionScales {
                        q: scales.q * f,
                        k: scales.k / (1.0 + 0.2 * l as f64),
                        v: scales.v,
                        out: scales.out * f,
                    }
                })
                .collect()
        };
        let layer_cfgs: Vec<AttentionConfig> = (0..ck.config.layers)
            .map(|l| {
                let s = layer_scales[l.min(layer_scales.len() - 1)];
                cfg.with_scales([s.q, s.k, s.v, s.out], "layer").unwrap()
            })
            .collect();
        let mut image = program(&ck, &cfg, &layer_scales, HeadFormat::Int8, None, None).unwrap();
        let program = VectorProgram::build(&ck, &layer_scales, RESIDUAL_FRAC).unwrap();
        let mut model = FixedPointModel::new(&ck, &program);
        let mut model_fabric = GoldenFabric::per_layer(&ck, layer_cfgs.clone());
        let mut seq_fabric = GoldenFabric::new(&ck, &cfg);
        if seed == 2 {
            let thresholds: std::collections::BTreeSet<i64> =
                layer_cfgs.iter().map(|c| c.constants.threshold).collect();
            assert_eq!(thresholds.len(), ck.config.layers, "units differ by layer");
        }
        let prompt = [3usize, 141, 59, 26, 5, 35, 89, 79];
        let mut position = 0;
        let mut feed = prompt.to_vec();
        for step in 0..8 {
            let want = model.forward(&mut model_fabric, &feed).unwrap();
            let got = run_pass(
                &ck.config,
                &cfg,
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
        let mut image =
            program(&ck, &cfg, &[scales], HeadFormat::Int4 { group }, None, None).unwrap();
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
                &cfg,
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
    let cfg = attention();
    let scales = AttentionScales::of(&cfg);
    let err = program(
        &ck,
        &cfg,
        &[scales],
        HeadFormat::Int4 { group: 24 },
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("group of 24"), "{err}");
}

/// Laid out on a board's DRAM banks (the KV260's: rows of 8 KiB over 8 banks), every
/// command's scratch streams (inputs, output, factors; a weight or table stream aside)
/// start in banks of their own, so that no burst of one closes the row of another;
/// laid out one after another, the same program's do not.
#[test]
fn every_commands_scratch_streams_start_in_banks_of_their_own() {
    use tern_flows::program::Banks;
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let banks = Banks::of(&board).expect("the KV260's file gives its DRAM");
    let streams = |c: &Command| -> Vec<u64> {
        match *c {
            Command::NormQuant {
                src, dst, factors, ..
            } => vec![src, dst, factors],
            Command::Matmul { src, dst, .. } => vec![src, dst],
            Command::Dequant {
                src, factors, dst, ..
            } => vec![src, factors, dst],
            Command::ToInt8 { src, dst, .. } => vec![src, dst],
            Command::Attention { q, k, v, dst, .. } => vec![q, k, v, dst],
            Command::Relu2Mul { gate, up, dst, .. } => vec![gate, up, dst],
            // Embed reads the table, Rope works in place, LmHead reads one vector.
            _ => vec![],
        }
    };
    let shared = |image: &tern_flows::program::ProgramImage| -> Vec<String> {
        let mut found = vec![];
        for (i, c) in image.commands.iter().enumerate() {
            let b: Vec<u64> = streams(c)
                .iter()
                .map(|&at| (at / banks.row_bytes) % banks.banks)
                .collect();
            for x in 0..b.len() {
                for y in x + 1..b.len() {
                    if b[x] == b[y] {
                        found.push(format!(
                            "command {i} ({c:?}): streams {x} and {y} in bank {}",
                            b[x]
                        ));
                    }
                }
            }
        }
        found
    };
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 5);
    let cfg = attention();
    let scales = AttentionScales::of(&cfg);
    let on = |banks: Option<Banks>| {
        program(&ck, &cfg, &[scales], HeadFormat::Int8, None, banks).unwrap()
    };
    let banked = on(Some(banks));
    assert!(
        banked.commands.len() > 20,
        "{} commands",
        banked.commands.len()
    );
    let found = shared(&banked);
    assert!(found.is_empty(), "on banks:\n{}", found.join("\n"));
    assert!(
        !shared(&on(None)).is_empty(),
        "one after another, no stream shares a bank"
    );
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
    run_pass(
        &ck.config,
        cfg,
        memory,
        0,
        design,
        position,
        ids,
        &mut fabric,
    )
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

    // The first layer's attention record: a threshold no engine runs is refused naming
    // the field (code 22); a KV region too small for the appends, naming the region.
    use tern_hdl::program::{error_code, AttentionRecord, ATTENTION_RECORD_BYTES, HEADER_BYTES};
    let h = image.header;
    let attention = image
        .commands
        .iter()
        .position(|c| matches!(c, Command::Attention { layer: 0, .. }))
        .unwrap();
    let record_at = h.attention_at as usize;
    let record =
        AttentionRecord::decode(&image.memory[record_at..record_at + ATTENTION_RECORD_BYTES]);
    let mut m = fresh();
    m[record_at..record_at + ATTENTION_RECORD_BYTES].copy_from_slice(
        &AttentionRecord {
            threshold: 0,
            ..record
        }
        .encode(),
    );
    let mut fabric = GoldenFabric::new(&ck, &cfg);
    let e = run_pass(&ck.config, &cfg, &mut m, 0, DESIGN, 0, &[1], &mut fabric).unwrap_err();
    assert_eq!(
        (e.code(), e.command()),
        (error_code::DATA, Some(attention)),
        "{e}"
    );
    assert!(e.to_string().contains("threshold"), "{e}");
    let mut m = fresh();
    let mut small = h;
    small.kv_bytes = 0;
    m[..HEADER_BYTES].copy_from_slice(&small.encode());
    let err = run(&ck, &cfg, &mut m, DESIGN, 0, &[1]).unwrap_err();
    assert!(
        err.contains(&format!("command {attention} (Attention) a key"))
            && err.contains("outside the KV caches"),
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
        &cfg,
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

/// The program with its matmuls on the simulated board (the TLMM top holding every
/// weight tile, under Verilator) and its attention over the KV caches in the program's
/// memory: the golden sequencer running it gives every pass's next token and scores bit
/// for bit as the fixed-point model over the golden fabric (whose caches are its own).
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
    let mut image = program(&ck, &attention, &[scales], HeadFormat::Int8, None, None).unwrap();
    let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
    let mut model = FixedPointModel::new(&ck, &program);
    let mut golden = GoldenFabric::new(&ck, &attention);
    let (mut position, mut feed) = (0, vec![3usize, 1, 4, 1, 5, 9, 2, 6]);
    for step in 0..4 {
        let want = model.forward(&mut golden, &feed).unwrap();
        let got = run_pass(
            &ck.config,
            &attention,
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
    // The KV caches are the program's now: attention runs from memory, not on the
    // board's attention top.
    assert!(board.tally.matmul_calls > 0);
    assert_eq!(board.tally.attention_calls, 0);
}

// ---- the sequencer's RTL against its golden twin ---------------------------------

use tern_sim::cosim::sequencer::{Pass, SequencerModel, SequencerOutcome, Units};

/// The sequencer RTL built for the tiny model's program: its design id, memory, model.
fn sequencer_rtl(ck: &Checkpoint, memory_bytes: usize) -> SequencerModel {
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let shape = tern_flows::program::sequencer_shape(&ck.config, DESIGN, memory_bytes as u64, 16);
    ModelCache::new(default_cache_root())
        .load_sequencer(&shape)
        .unwrap()
}

/// One pass of the RTL (clock limit from the program's size) and what it handed over.
fn rtl_pass(
    rtl: &SequencerModel,
    memory: &mut [u8],
    position: u32,
    ids: &[u32],
    units: Units,
    stall_seed: u64,
) -> (
    SequencerOutcome,
    Vec<tern_sim::cosim::sequencer::Dispatched>,
) {
    let pass = Pass {
        program_at: 0,
        position,
        ids,
    };
    let limit = 1000 + 200 * (memory.len() as u64 / COMMAND_BYTES as u64).min(5000);
    let (out, sent) = rtl
        .run(memory, pass, units, (limit, stall_seed), None)
        .unwrap();
    assert_ne!(out.clocks, u64::MAX, "the sequencer hung: {out:?}");
    (out, sent)
}

/// A decoded token and a prompt on the sequencer RTL: every command before `End` goes
/// to the units once, in order, byte for byte the program's record, with the pass's rows
/// and position; `End` after the LM head ends the pass with its token; the only bytes
/// written are the ids at `ids_at`. With and without stalls on every handshake.
#[test]
fn the_sequencer_rtl_hands_every_command_to_the_units_in_order() {
    let (ck, _, _, image) = setup(6);
    let rtl = sequencer_rtl(&ck, image.memory.len());
    let units = Units {
        lm_next: 77,
        fail: None,
    };
    // A prompt, then a token at the context's last position (the edge of its check).
    let last = ck.config.max_seq_len as u32 - 1;
    for (position, ids) in [
        (0u32, vec![3u32, 141, 59, 26, 5, 35, 89, 79, 1]),
        (last, vec![200]),
    ] {
        for stall in [0u64, 31] {
            let mut m = image.memory.clone();
            let (out, sent) = rtl_pass(&rtl, &mut m, position, &ids, units, stall);
            let at = format!("position {position}, {} ids, stalls {stall}", ids.len());
            assert_eq!(
                (out.error_code, out.next_token, out.commands_run as usize),
                (0, 77, image.commands.len()),
                "{at}: {out:?}"
            );
            assert_eq!(sent.len(), image.commands.len() - 1, "{at}");
            for (i, d) in sent.iter().enumerate() {
                let want = image.commands[i].encode();
                assert_eq!(d.record, want, "{at}: command {i}");
                assert_eq!((d.rows, d.position), (ids.len() as u32, position), "{at}");
            }
            let ids_at = image.header.ids_at as usize;
            let id_bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
            let mut want = image.memory.clone();
            want[ids_at..ids_at + id_bytes.len()].copy_from_slice(&id_bytes);
            let first = (0..m.len()).find(|&i| m[i] != want[i]);
            assert_eq!(first, None, "{at}: a byte written that is not an id");
            assert_eq!(out.bad_writes, 0);
        }
    }
    // Ids written across a 4 KiB boundary: the bursts stop at the boundary (AXI; the
    // simulated slave answers a burst across it with SLVERR and drops it).
    let h = &image.header;
    let boundary = (h.scratch_at + 16).next_multiple_of(4096);
    assert!(
        boundary + 64 <= h.scratch_at + h.scratch_bytes,
        "scratch has no 4 KiB boundary"
    );
    let ids_at = boundary - 16;
    let ids: Vec<u32> = (0..16).map(|i| 7 * i + 1).collect();
    for stall in [0u64, 31] {
        let mut header = *h;
        header.ids_at = ids_at;
        let mut m = image.memory.clone();
        m[..HEADER_BYTES].copy_from_slice(&header.encode());
        let mut want = m.clone();
        let (out, _) = rtl_pass(&rtl, &mut m, 0, &ids, units, stall);
        assert_eq!(
            (out.error_code, out.bad_writes),
            (0, 0),
            "ids at 0x{ids_at:x}, stalls {stall}: {out:?}"
        );
        let id_bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
        want[ids_at as usize..ids_at as usize + 64].copy_from_slice(&id_bytes);
        let first = (0..m.len()).find(|&i| m[i] != want[i]);
        assert_eq!(
            first, None,
            "ids at 0x{ids_at:x}, stalls {stall}: first differing byte"
        );
    }
    // A unit's error ends the pass at that command, with the unit's code.
    let mut m = image.memory.clone();
    let failing = Units {
        lm_next: 77,
        fail: Some((4, tern_hdl::program::error_code::DATA)),
    };
    let (out, sent) = rtl_pass(&rtl, &mut m, 0, &[1], failing, 0);
    assert_eq!(
        (out.error_code, out.error_command, sent.len()),
        (u32::from(tern_hdl::program::error_code::DATA), 4, 5),
        "{out:?}"
    );
}

/// The golden sequencer's outcome as the RTL states it: (code, command), 0 and none on a
/// token.
fn golden_outcome(
    ck: &Checkpoint,
    cfg: &AttentionConfig,
    memory: &mut [u8],
    position: usize,
    ids: &[usize],
) -> (u32, u32, Option<&'static str>) {
    let mut fabric = GoldenFabric::new(ck, cfg);
    match run_pass(
        &ck.config,
        cfg,
        memory,
        0,
        DESIGN,
        position,
        ids,
        &mut fabric,
    ) {
        Ok(_) => (0, u32::MAX, None),
        Err(e) => {
            let op = match &e {
                SequencerError::Program(ProgramError::OutOfRegion { op, .. }) => Some(*op),
                _ => None,
            };
            (
                u32::from(e.code()),
                e.command().map_or(u32::MAX, |c| c as u32),
                op,
            )
        }
    }
}

/// Whether the sequencer itself owns an error (a unit or the memory side owns reads and
/// writes inside commands, and what lies in the data).
fn sequencer_owns(code: u32, op: Option<&str>) -> bool {
    use tern_hdl::program::error_code::{DATA, OUT_OF_REGION};
    code != u32::from(DATA)
        && (code != u32::from(OUT_OF_REGION) || matches!(op, Some("fetch" | "ids")))
}

/// The RTL refuses what the golden sequencer refuses, with its code and command: another
/// accelerator's program, a header of another version or magic, a misaligned region,
/// too many tokens or none, an id beyond the vocabulary, a pass beyond the context, ids
/// outside scratch; an unknown opcode, unknown flags, a scale that is not one, sizes out
/// of range, a matrix the model lacks or of another shape, an attention layer beyond
/// the model, End before the LM head, a list without End, a record beyond memory. A
/// refusal before the first command writes nothing.
#[test]
fn the_sequencer_rtl_refuses_what_the_golden_sequencer_refuses() {
    use tern_hdl::program::error_code as code;
    let (ck, cfg, _, image) = setup(7);
    let rtl = sequencer_rtl(&ck, image.memory.len());
    let units = Units {
        lm_next: 5,
        fail: None,
    };
    let at = |i: usize| image.header.commands_at as usize + i * COMMAND_BYTES;
    let last = image.commands.len() - 1;
    let poke = |edits: &[(usize, &[u8])]| {
        let mut m = image.memory.clone();
        for (at, bytes) in edits {
            m[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        m
    };
    let matmul = (0..last)
        .find(|&i| matches!(image.commands[i], Command::Matmul { .. }))
        .unwrap();
    let attention = (0..last)
        .find(|&i| matches!(image.commands[i], Command::Attention { .. }))
        .unwrap();
    let rope = (0..last)
        .find(|&i| matches!(image.commands[i], Command::Rope { .. }))
        .unwrap();
    let dequant = (0..last)
        .find(|&i| matches!(image.commands[i], Command::Dequant { .. }))
        .unwrap();
    // Beyond memory, on a command.
    let big = (image.memory.len() as u64 * 2)
        .next_multiple_of(COMMAND_BYTES as u64)
        .to_le_bytes();
    // (what, memory, position, ids, the code expected)
    type Case = (&'static str, Vec<u8>, usize, Vec<usize>, u8);
    let cases: Vec<Case> = vec![
        ("magic", poke(&[(0, b"X")]), 0, vec![1], code::MAGIC),
        ("version", poke(&[(8, &[3])]), 0, vec![1], code::VERSION),
        (
            "eps",
            poke(&[(68, &[1, 0, 0, 0])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        (
            "misaligned ids_at",
            poke(&[(48, &[4])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        (
            "misaligned kv_at",
            poke(&[(96, &[8])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        (
            "misaligned kv_bytes",
            poke(&[(104, &[4])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        // On 16 bytes but not on a record: a record's burst could cross 4 KiB.
        (
            "attention_at not on 32",
            poke(&[(112, &[0x10])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        // On 16 bytes but not on a command: a command's burst could cross 4 KiB.
        (
            "commands_at not on 64",
            poke(&[(24, &[0x90])]),
            0,
            vec![1],
            code::HEADER_FIELD,
        ),
        ("design", poke(&[(12, &[0])]), 0, vec![1], code::DESIGN),
        ("vocab", poke(&[(80, &[1, 2])]), 0, vec![1], code::MODEL),
        (
            "too many",
            image.memory.clone(),
            0,
            vec![1; 17],
            code::TOO_MANY_TOKENS,
        ),
        (
            "max_tokens",
            poke(&[(84, &[2, 0, 0, 0])]),
            0,
            vec![1; 3],
            code::TOO_MANY_TOKENS,
        ),
        ("none", image.memory.clone(), 0, vec![], code::NO_TOKENS),
        (
            "id",
            image.memory.clone(),
            0,
            vec![1, 2, 256],
            code::TOKEN_ID,
        ),
        (
            "context",
            image.memory.clone(),
            60,
            vec![1; 8],
            code::CONTEXT,
        ),
        (
            "header max_seq_len",
            poke(&[(88, &[4, 0, 0, 0])]),
            2,
            vec![1; 3],
            code::CONTEXT,
        ),
        (
            "ids outside scratch",
            poke(&[(48, &[0, 0])]),
            0,
            vec![1],
            code::OUT_OF_REGION,
        ),
        ("opcode", poke(&[(at(3), &[10])]), 0, vec![1], code::OPCODE),
        ("flags", poke(&[(at(0) + 1, &[1])]), 0, vec![1], code::FLAGS),
        (
            "End's flags",
            poke(&[(at(last) + 1, &[4])]),
            0,
            vec![1],
            code::FLAGS,
        ),
        (
            "scale",
            poke(&[(at(dequant) + 52, &[1, 0, 0, 0])]),
            0,
            vec![1],
            code::SCALE,
        ),
        (
            "size",
            poke(&[(at(0) + 40, &[0, 0, 0, 0])]),
            0,
            vec![1],
            code::SIZE,
        ),
        (
            "odd head",
            poke(&[(at(rope) + 44, &[7, 0])]),
            0,
            vec![1],
            code::SIZE,
        ),
        (
            "matrix",
            poke(&[(at(matmul) + 6, &[7])]),
            0,
            vec![1],
            code::MATRIX,
        ),
        (
            "layer",
            poke(&[(at(matmul) + 4, &[9])]),
            0,
            vec![1],
            code::MATRIX,
        ),
        (
            "shape",
            poke(&[(at(matmul) + 44, &[1])]),
            0,
            vec![1],
            code::SHAPE,
        ),
        (
            "attention layer",
            poke(&[(at(attention) + 4, &[9])]),
            0,
            vec![1],
            code::LAYER,
        ),
        (
            "head count",
            poke(&[(at(last - 1) + 48, &[1])]),
            0,
            vec![1],
            code::COUNT,
        ),
        (
            "End first",
            poke(&[(at(last - 1), &[0, 0])]),
            0,
            vec![1],
            code::NO_CHOICE,
        ),
        (
            "no End",
            poke(&[(16, &[(last as u8)])]),
            0,
            vec![1],
            code::NO_END,
        ),
        (
            "record beyond memory",
            poke(&[(24, &big)]),
            0,
            vec![1],
            code::OUT_OF_REGION,
        ),
    ];
    for (what, memory, position, ids, want) in cases {
        let mut golden_mem = memory.clone();
        let (g_code, g_command, op) = golden_outcome(&ck, &cfg, &mut golden_mem, position, &ids);
        assert_eq!(g_code, u32::from(want), "{what}: the golden sequencer");
        let mut m = memory.clone();
        let ids32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        let (out, _) = rtl_pass(&rtl, &mut m, position as u32, &ids32, units, 0);
        assert_eq!(
            (out.error_code, out.error_command),
            (g_code, g_command),
            "{what}: the RTL against the golden sequencer ({out:?})"
        );
        let before_start = g_code <= u32::from(code::CONTEXT) || op == Some("ids");
        if before_start {
            assert!(
                m == memory,
                "{what}: refused before the first command, yet wrote"
            );
        }
    }
}

/// 300 random corruptions of the header and the command list (seed 31): the RTL always
/// ends (never hangs); where the golden sequencer stops with an error the sequencer
/// owns, the RTL stops with the same code at the same command; where the golden stops
/// in a unit's check at command j (or runs to a token), the RTL stops at no command
/// before j for a reason of its own.
#[test]
fn corrupted_programs_end_in_the_sequencer_rtl_as_in_the_golden_one() {
    use rand::{Rng, SeedableRng};
    let (ck, cfg, _, image) = setup(8);
    let rtl = sequencer_rtl(&ck, image.memory.len());
    let units = Units {
        lm_next: 5,
        fail: None,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    let commands_end = image.header.commands_at as usize + image.commands.len() * COMMAND_BYTES;
    let (mut same, mut unit_side) = (0, 0);
    for case in 0..300 {
        let mut m = image.memory.clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..commands_end);
            m[at] = rng.gen();
        }
        let (g_code, g_command, op) = golden_outcome(&ck, &cfg, &mut m.clone(), 0, &[7]);
        let stall = if case % 2 == 0 { 0 } else { 500 + case };
        let (out, _) = rtl_pass(&rtl, &mut m, 0, &[7], units, stall);
        if g_code != 0 && sequencer_owns(g_code, op) {
            assert_eq!(
                (out.error_code, out.error_command),
                (g_code, g_command),
                "case {case}: the golden sequencer stopped with {g_code} at {g_command}"
            );
            same += 1;
        } else {
            let j = if g_code == 0 { u32::MAX } else { g_command };
            assert!(
                out.error_code == 0 || out.error_command >= j,
                "case {case}: the RTL stopped with {} at {} before the golden's {g_code} at {j}",
                out.error_code,
                out.error_command
            );
            unit_side += 1;
        }
    }
    println!("{same} refused alike, {unit_side} ran on or stopped in a unit's check");
    assert!(same >= 50, "too few corruptions the sequencer owns: {same}");
}

/// The sequencer's Verilog is lint-clean under `verilator --lint-only -Wall` for the
/// tiny model and for the 0.73B's and 2B's shapes (4 GiB of memory, 128 ids a pass).
#[test]
fn the_sequencer_verilog_is_lint_clean() {
    use tern_hdl::sequencer::sequencer_verilog;
    let dir = tempfile::tempdir().unwrap();
    for preset in ["tiny", "bitnet-0.73b", "bitnet-2b"] {
        let c = ModelConfig::preset(preset).unwrap();
        let shape = tern_flows::program::sequencer_shape(&c, DESIGN, 4 << 30, 128);
        std::fs::write(
            dir.path().join("tern_sequencer.v"),
            sequencer_verilog(&shape).unwrap(),
        )
        .unwrap();
        let found = lint_files(dir.path(), &["tern_sequencer.v"], None).unwrap();
        assert!(found.is_empty(), "{preset}:\n{}", found.join("\n"));
    }
}

// ---- the LM-head unit against the golden sequencer's LmHead --------------------------

/// The program's `LmHead` on the LM-head unit RTL (the KV260's DDR model at 250 MHz):
/// after a golden pass (prompt, then a decoded token) the unit, given the memory with the
/// output cleared, writes the output — next token, flag, rows and every score — byte for
/// byte as the golden sequencer did, and nothing else. The int8 head on 1 and 2 of the
/// ports; the 4-bit head (32 weights a port a clock) with groups of 32 (a group an engine
/// beat), 16 and 8 (2 and 4 groups side by side in a beat) and 64 (two beats a group).
/// A unit refuses the format it is not built for (error 1, nothing written).
#[test]
fn the_lm_head_unit_writes_the_output_the_golden_sequencer_writes() {
    use tern_hdl::units::LmHeadUnitShape;
    use tern_sim::cosim::units::LmHeadUnitCommand;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let int4 = |group| HeadFormat::Int4 { group };
    for (format, ports) in [
        (HeadFormat::Int8, 1usize),
        (HeadFormat::Int8, 2),
        (int4(32), 1),
        (int4(16), 1),
        (int4(8), 1),
        (int4(64), 1),
    ] {
        let (ck, cfg, _, image) = setup_with(9, format);
        let last = image.commands.len() - 2;
        let Command::LmHead {
            src,
            weights,
            mantissas,
            rows,
            width,
            scores,
            ..
        } = image.commands[last]
        else {
            panic!("command {last} is {:?}", image.commands[last])
        };
        let group = match format {
            HeadFormat::Int8 => 0,
            HeadFormat::Int4 { group } => group,
        };
        let out_at = image.header.output_at as usize;
        let out_len = 16 + 8 * rows as usize;
        let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
        let (memory, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
        let mut unit = ModelCache::new(default_cache_root())
            .load_lm_head_unit(
                LmHeadUnitShape {
                    ports,
                    max_width: ck.config.hidden,
                    format,
                },
                &memory,
                None,
            )
            .unwrap();
        let mut m = image.memory.clone();
        let mut fabric = GoldenFabric::new(&ck, &cfg);
        let mut position = 0;
        for ids in [vec![3usize, 141, 59, 26, 5], vec![77]] {
            let golden = run_pass(
                &ck.config,
                &cfg,
                &mut m,
                0,
                DESIGN,
                position,
                &ids,
                &mut fabric,
            )
            .unwrap();
            position += ids.len();
            let mut cleared = m.clone();
            cleared[out_at..out_at + out_len].fill(0);
            unit.write(0, &cleared);
            let cmd = LmHeadUnitCommand {
                src,
                weights,
                mantissas,
                output_at: out_at as u64,
                rows,
                width,
                pass_rows: ids.len() as u32,
                scores: u32::from(scores),
                group,
                pad: 0,
            };
            let at = format!("{format:?} on {ports} port(s), pass of {} ids", ids.len());
            // The other format (or another group) is refused, and nothing is written.
            let other = LmHeadUnitCommand {
                group: if group == 0 {
                    32
                } else if group == 8 {
                    16
                } else {
                    0
                },
                ..cmd
            };
            let o = unit.run(&other, 1_000_000);
            assert_eq!(
                (o.clocks != u64::MAX, o.error),
                (true, 1),
                "{at}: the other format: {o:?}"
            );
            assert!(
                unit.read(0, m.len()) == cleared,
                "{at}: a refused command wrote"
            );
            let o = unit.run(&cmd, 1_000_000);
            assert!(o.clocks != u64::MAX && o.error == 0, "{at}: {o:?}");
            assert_eq!(o.next as usize, golden.next, "{at}: the next token");
            let after = unit.read(0, m.len());
            if let Some(i) = (0..m.len()).find(|&i| after[i] != m[i]) {
                panic!(
                    "{at}: byte 0x{i:x} is 0x{:02x}, the golden sequencer's 0x{:02x} (output at 0x{out_at:x}, {out_len} bytes)",
                    after[i], m[i]
                );
            }
            println!("{at}: {} clocks, {o:?}", o.clocks);
        }
    }
}

// ---- the matmul unit against the golden sequencer's Matmul ----------------------------

/// The program built for the matmul unit (a small engine of 32 × 96 tiles, so the tiny
/// model's down projection, 64 × 128, is 2 × 2 tiles with a partial K tile) on 1 and 4 of
/// the KV260's ports: the golden passes are the same as without the unit (the golden twin
/// reads the fabric's copy), and after each pass (a prompt of 5, then a decoded token) the
/// unit, given the memory with the last layer's down-projection results overwritten,
/// reads the weights the builder placed at the command's `weights` and writes the
/// results byte for byte as the golden sequencer did, and nothing else.
#[test]
fn the_matmul_unit_writes_the_results_the_golden_sequencer_writes() {
    use tern_hdl::config::ConfigBuilder;
    use tern_hdl::program::result_row_bytes;
    use tern_hdl::units::MatmulUnitShape;
    use tern_sim::cosim::units::MatmulUnitCommand;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let ck = Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 13);
    let cfg = attention();
    let scales = AttentionScales::of(&cfg);
    let engine = ConfigBuilder::tlmm(3, 8, 16)
        .workload(32, 96, 1)
        .token_block(2)
        .build()
        .unwrap();
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let plain = program(&ck, &cfg, &[scales], HeadFormat::Int8, None, None).unwrap();
    for ports in [1usize, 4] {
        let shape = MatmulUnitShape {
            ports,
            engine: engine.clone(),
            window: None,
        };
        let image = program(&ck, &cfg, &[scales], HeadFormat::Int8, Some(&shape), None).unwrap();
        let down = image
            .commands
            .iter()
            .rposition(|c| matches!(c, Command::Matmul { .. }))
            .unwrap();
        let Command::Matmul {
            layer,
            which,
            src,
            weights,
            dst,
            m,
            k,
        } = image.commands[down]
        else {
            panic!("command {down} is {:?}", image.commands[down])
        };
        assert_eq!((layer as usize, which), (ck.config.layers - 1, 6));
        assert_ne!(weights, 0, "the builder placed the weights");
        let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
        let (memory, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
        let mut unit = ModelCache::new(default_cache_root())
            .load_matmul_unit(&shape, &memory, None)
            .unwrap();
        let mut mem = image.memory.clone();
        let mut plain_mem = plain.memory.clone();
        let (mut fabric, mut plain_fabric) =
            (GoldenFabric::new(&ck, &cfg), GoldenFabric::new(&ck, &cfg));
        let mut position = 0;
        for ids in [vec![3usize, 141, 59, 26, 5], vec![77]] {
            let golden = run_pass(
                &ck.config,
                &cfg,
                &mut mem,
                0,
                DESIGN,
                position,
                &ids,
                &mut fabric,
            )
            .unwrap();
            let without = run_pass(
                &ck.config,
                &cfg,
                &mut plain_mem,
                0,
                DESIGN,
                position,
                &ids,
                &mut plain_fabric,
            )
            .unwrap();
            assert_eq!(
                (golden.next, &golden.scores),
                (without.next, &without.scores),
                "the weights' place changes nothing the golden twin computes"
            );
            position += ids.len();
            let results = ids.len() * result_row_bytes(m as usize) as usize;
            let mut cleared = mem.clone();
            cleared[dst as usize..dst as usize + results].fill(0xa5);
            unit.write(0, &cleared);
            let o = unit.run(
                &MatmulUnitCommand {
                    src,
                    weights,
                    dst,
                    m,
                    k,
                    pass_rows: ids.len() as u32,
                    zero: 0,
                },
                1_000_000,
            );
            let at = format!("{ports} port(s), pass of {} ids", ids.len());
            assert!(o.clocks != u64::MAX && o.error == 0, "{at}: {o:?}");
            let after = unit.read(0, mem.len());
            if let Some(i) = (0..mem.len()).find(|&i| after[i] != mem[i]) {
                panic!(
                    "{at}: byte 0x{i:x} is 0x{:02x}, the golden sequencer's 0x{:02x} (results at 0x{dst:x}, {results} bytes)",
                    after[i], mem[i]
                );
            }
            println!("{at}: {} clocks, {o:?}", o.clocks);
        }
    }
}

// ---- the vector unit against the golden sequencer ---------------------------------

/// The vector unit (`tern_vector_unit`, 1, 2 and 4 lanes, one KV260 port at 250 MHz)
/// runs the tiny model's element-wise commands of a prompt of 5 and of a decoded token
/// (at position 5: RoPE's table rows 5..): its `Embed`; the first `Dequant` (a new
/// vector) and the last (added into the residual); the first `NormQuant` of a vector, the
/// first of int8 rows (times their unit) and the last; the first and the last `ToInt8`,
/// `Relu2Mul` and `Rope`. Every byte of memory afterwards is the
/// golden sequencer's (its rows, their heads and padding, nothing else), with the
/// memory's handshakes as the board drives them and with 20 % withheld. So too rows of 37
/// and 38 elements (no multiple of 4 nor of the lanes: the last beat's padding; `Embed`
/// and `NormQuant` 40 and 56), each command rewritten for the golden to run alone. Refused as the golden refuses (the
/// golden's code 22, the unit's 3, the rows before written and nothing else): a row's
/// factors out of NormQuant's range, a residual row whose fractional bits are not the
/// program's, an input row whose length is not the command's, a gate and an up of other
/// fractional bits, a RoPE vector of another length, a gain's shift of 16, a norm's input
/// of another length; and n = 0, n beyond the buffers,
/// heads that are no multiple of 8 or longer than built for, another opcode (the unit's
/// 1, nothing written: the sequencer refuses sizes first, code 15).
/// And `ToInt8` inputs whose fractional bits (any i32 in memory) ask for extreme shifts.
#[test]
fn the_vector_unit_writes_what_the_golden_sequencer_writes() {
    use tern_hdl::program::{vector_row_bytes, Header};
    use tern_hdl::units::VectorUnitShape;
    use tern_sim::cosim::units::{VectorPass, VectorUnitCommand};
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let (ck, cfg, _, image) = setup(17);
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let frac = image.header.residual_frac;
    let of_op = |op: u8| -> Vec<usize> {
        (0..image.commands.len())
            .filter(|&i| image.commands[i].opcode() == op)
            .collect()
    };
    let (dequants, to_int8s, relu2s, ropes) = (of_op(4), of_op(6), of_op(8), of_op(5));
    let embed = of_op(1)[0];
    let norms = of_op(2);
    // A norm of the residual (a vector) and one of int8 rows (the attention's output).
    let norm_vector = *norms
        .iter()
        .find(|&&i| {
            matches!(
                image.commands[i],
                Command::NormQuant {
                    int8_unit: None,
                    ..
                }
            )
        })
        .unwrap();
    let norm_int8 = *norms
        .iter()
        .find(|&&i| {
            matches!(
                image.commands[i],
                Command::NormQuant {
                    int8_unit: Some(_),
                    ..
                }
            )
        })
        .unwrap();
    let plain = *dequants
        .iter()
        .find(|&&i| matches!(image.commands[i], Command::Dequant { add: false, .. }))
        .unwrap();
    let adding = *dequants.last().unwrap();
    assert!(matches!(
        image.commands[adding],
        Command::Dequant { add: true, .. }
    ));
    let chosen = [
        plain,
        adding,
        to_int8s[0],
        *to_int8s.last().unwrap(),
        relu2s[0],
        *relu2s.last().unwrap(),
        ropes[0],
        *ropes.last().unwrap(),
        embed,
        norm_vector,
        norm_int8,
        *norms.last().unwrap(),
    ];
    // A pass of `rows` rows from position 0, over this program's header.
    let pass_of = |rows: usize| VectorPass {
        rows: rows as u32,
        position: 0,
        residual_frac: frac,
        ids_at: image.header.ids_at,
        eps: image.header.eps,
    };
    let command =
        |i: usize, rows: usize| VectorUnitCommand::of(&image.commands[i], &pass_of(rows)).unwrap();
    // The header that runs command i alone (End after it), and `mem` with it.
    let alone = |i: usize, mem: &[u8], record: Option<Command>| -> (Header, Vec<u8>) {
        let mut h = image.header;
        h.commands_at += (i * COMMAND_BYTES) as u64;
        h.commands -= i as u32;
        let mut m = mem.to_vec();
        m[..HEADER_BYTES].copy_from_slice(&h.encode());
        if let Some(c) = record {
            let at = h.commands_at as usize;
            m[at..at + COMMAND_BYTES].copy_from_slice(&c.encode());
        }
        (h, m)
    };
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
    // The passes' starting memories: the prompt's, then after the prompt.
    let prompt: Vec<usize> = vec![3, 141, 59, 26, 5];
    let mut after_prompt = image.memory.clone();
    run_pass(
        &ck.config,
        &cfg,
        &mut after_prompt,
        0,
        DESIGN,
        0,
        &prompt,
        &mut GoldenFabric::new(&ck, &cfg),
    )
    .unwrap();
    let passes: [(&[u8], usize, &[usize]); 2] =
        [(&image.memory, 0, &prompt), (&after_prompt, 5, &[77])];
    let rows = prompt.len();
    // Readers A and B on one port, and (ports 2) B on a port of its own.
    for (lanes, ports) in [(1usize, 1usize), (2, 1), (2, 2), (4, 2)] {
        for stall in [0u32, 20] {
            let (mut memory, _) =
                tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
            memory.stall_percent = stall;
            memory.seed = 3;
            let mut unit = ModelCache::new(default_cache_root())
                .load_vector_unit(
                    VectorUnitShape {
                        lanes,
                        max_n: 128,
                        max_head_dim: 32,
                        ports,
                    },
                    &memory,
                    None,
                )
                .unwrap();
            // Run `cmd` on `before`; the memory must become `after`.
            let mut check = |what: &str, cmd: VectorUnitCommand, before: &[u8], after: &[u8]| {
                unit.write(0, before);
                let o = unit.run(&cmd, 2_000_000);
                let at = format!(
                    "{lanes} lanes, {ports} port(s), stalls {stall}%, {what} (op {}, n {}, rows {})",
                    cmd.op, cmd.n, cmd.pass_rows
                );
                let got = unit.read(0, after.len());
                let first = (0..after.len()).find(|&b| got[b] != after[b]);
                if let Some(b) = first {
                    panic!(
                        "{at}: byte 0x{b:x} is 0x{:02x}, the golden sequencer's 0x{:02x} \
                         (output at 0x{:x}): {o:?}",
                        got[b], after[b], cmd.c
                    );
                }
                if stall == 0 && lanes == 2 && ports == 1 && what.starts_with("command") {
                    println!("{at}: {} clocks, {o:?}", o.clocks);
                }
                o
            };
            for (base, position, ids) in passes {
                for i in chosen {
                    let (before, after, golden) =
                        golden_around(&ck, &cfg, &image.header, base, i, (position, ids));
                    assert_eq!(golden, None, "the golden ran command {i}");
                    let o = check(
                        &format!("command {i}"),
                        VectorUnitCommand {
                            position: position as u32,
                            ..command(i, ids.len())
                        },
                        &before,
                        &after,
                    );
                    assert!(o.clocks != u64::MAX && o.error == 0, "command {i}: {o:?}");
                }
            }
            // Rows whose length is no multiple of 4 nor of the lanes.
            for i in [plain, to_int8s[0], relu2s[0], embed, norm_vector] {
                // Embed's table rows are whole beats: n a multiple of 8.
                // NormQuant's, whole lane beats (its mean is over n).
                let ns: [u32; 2] = if i == embed || i == norm_vector {
                    [40, 56]
                } else {
                    [37, 38]
                };
                for n in ns {
                    let (before, _, _) =
                        golden_around(&ck, &cfg, &image.header, &image.memory, i, (0, &prompt));
                    let mut odd = image.commands[i];
                    match odd {
                        Command::Dequant { ref mut m, .. } => *m = n,
                        Command::ToInt8 { n: ref mut len, .. }
                        | Command::Relu2Mul { n: ref mut len, .. }
                        | Command::Embed { n: ref mut len, .. }
                        | Command::NormQuant { n: ref mut len, .. } => *len = n,
                        _ => unreachable!(),
                    }
                    let mut input = before.clone();
                    let inputs = match odd {
                        Command::ToInt8 { src, .. } | Command::NormQuant { src, .. } => vec![src],
                        Command::Relu2Mul { gate, up, .. } => vec![gate, up],
                        _ => vec![],
                    };
                    for src in inputs {
                        // The input's rows as vectors of n (their heads say so), with
                        // row 0's fractional bits.
                        let head: Vec<u8> = input[src as usize..src as usize + 4]
                            .iter()
                            .copied()
                            .chain(n.to_le_bytes())
                            .collect();
                        for j in 0..rows {
                            let at = src as usize + j * vector_row_bytes(n as usize) as usize;
                            input[at..at + 8].copy_from_slice(&head);
                        }
                    }
                    let (h, edited) = alone(i, &input, Some(odd));
                    let (_, mut after, golden) =
                        golden_around(&ck, &cfg, &h, &edited, 0, (0, &prompt));
                    assert_eq!(golden, None, "command {i} with n = {n}");
                    let rec = h.commands_at as usize..h.commands_at as usize + COMMAND_BYTES;
                    after[..HEADER_BYTES].copy_from_slice(&input[..HEADER_BYTES]);
                    after[rec.clone()].copy_from_slice(&input[rec]);
                    let cmd = VectorUnitCommand::of(&odd, &pass_of(rows)).unwrap();
                    let o = check(&format!("n = {n}"), cmd, &input, &after);
                    assert!(o.clocks != u64::MAX && o.error == 0, "n = {n}: {o:?}");
                }
            }
            // ToInt8's input carries its own fractional bits, any i32 (memory can hold
            // anything): extreme shifts either way, as the golden computes them.
            for weird in [i32::MAX, i32::MIN, 1 << 20, -(1 << 20), 60, -60] {
                let i = to_int8s[0];
                let (mut before, _, _) =
                    golden_around(&ck, &cfg, &image.header, &image.memory, i, (0, &prompt));
                let cmd = command(i, rows);
                let at = cmd.a as usize + vector_row_bytes(cmd.n as usize) as usize;
                before[at..at + 4].copy_from_slice(&weird.to_le_bytes());
                let (h, edited) = alone(i, &before, None);
                let (_, mut after, golden) = golden_around(&ck, &cfg, &h, &edited, 0, (0, &prompt));
                assert_eq!(golden, None, "fractional bits {weird}");
                after[..HEADER_BYTES].copy_from_slice(&before[..HEADER_BYTES]);
                let o = check(
                    &format!("fractional bits {weird} in row 1"),
                    cmd,
                    &before,
                    &after,
                );
                assert!(o.clocks != u64::MAX && o.error == 0, "{weird}: {o:?}");
            }
            // Refusals: the data edited just before command i, the golden running i alone.
            let factors_row = |row: usize| {
                move |m: &mut Vec<u8>, c: &VectorUnitCommand| {
                    let at = c.d as usize + 32 * row;
                    m[at..at + 8].copy_from_slice(&(1u64 << 47).to_le_bytes());
                }
            };
            // Flip a bit of a row's head: of vector `which` (0 a, 1 b, 2 c) at `byte`
            // (0 its fractional bits, 4 its length).
            let head_row = |row: usize, which: usize, byte: usize| {
                move |m: &mut Vec<u8>, c: &VectorUnitCommand| {
                    let base = [c.a, c.b, c.c][which];
                    let at = base as usize + row * vector_row_bytes(c.n as usize) as usize;
                    m[at + byte] ^= 1;
                }
            };
            type Edit<'a> = &'a dyn Fn(&mut Vec<u8>, &VectorUnitCommand);
            let gain_shift = |m: &mut Vec<u8>, c: &VectorUnitCommand| {
                m[c.b as usize..c.b as usize + 4].copy_from_slice(&16i32.to_le_bytes());
            };
            let refusals: [(&str, usize, u32, Edit); 10] = [
                ("gain's shift", norm_vector, 0, &gain_shift),
                ("norm input's length", norm_vector, 2, &head_row(2, 0, 4)),
                ("vector's length", ropes[1], 3, &head_row(3, 0, 4)),
                ("factors", plain, 0, &factors_row(0)),
                ("factors", adding, 3, &factors_row(3)),
                ("residual's fractional bits", adding, 1, &head_row(1, 2, 0)),
                ("input's length", to_int8s[0], 2, &head_row(2, 0, 4)),
                ("gate's length", relu2s[0], 1, &head_row(1, 0, 4)),
                ("up's length", relu2s[0], 4, &head_row(4, 1, 4)),
                ("up's fractional bits", relu2s[0], 0, &head_row(0, 1, 0)),
            ];
            for (what, i, row, edit) in refusals {
                let (mut before, _, _) =
                    golden_around(&ck, &cfg, &image.header, &image.memory, i, (0, &prompt));
                edit(&mut before, &command(i, rows));
                let (h, edited) = alone(i, &before, None);
                let (_, mut after, golden) = golden_around(&ck, &cfg, &h, &edited, 0, (0, &prompt));
                assert_eq!(
                    golden,
                    Some(tern_hdl::program::error_code::DATA),
                    "{what} row {row}"
                );
                after[..HEADER_BYTES].copy_from_slice(&before[..HEADER_BYTES]);
                let o = check(
                    &format!("{what} of row {row}"),
                    command(i, rows),
                    &before,
                    &after,
                );
                assert_eq!(
                    (o.error, o.error_row),
                    (3, row),
                    "{what} of row {row}: {o:?}"
                );
            }
            for (what, cmd) in [
                (
                    "n = 0",
                    VectorUnitCommand {
                        n: 0,
                        ..command(plain, rows)
                    },
                ),
                (
                    "opcode 7",
                    VectorUnitCommand {
                        op: 7,
                        ..command(plain, rows)
                    },
                ),
                (
                    "Embed of 36",
                    VectorUnitCommand {
                        n: 36,
                        ..command(embed, rows)
                    },
                ),
                // Rope's heads: a multiple of 8 and at most 32 here.
                (
                    "heads of 12",
                    VectorUnitCommand {
                        k: 12,
                        n: 2 * 12,
                        count: 2,
                        ..command(ropes[0], rows)
                    },
                ),
                (
                    "heads of 40",
                    VectorUnitCommand {
                        k: 40,
                        n: 2 * 40,
                        count: 2,
                        ..command(ropes[0], rows)
                    },
                ),
                // The buffering blocks hold 128 elements here.
                (
                    "NormQuant beyond the buffer",
                    VectorUnitCommand {
                        n: 136,
                        ..command(norm_vector, rows)
                    },
                ),
                (
                    "n beyond the buffer",
                    VectorUnitCommand {
                        n: 129,
                        ..command(relu2s[0], rows)
                    },
                ),
            ] {
                let o = check(what, cmd, &image.memory, &image.memory);
                assert_eq!(o.error, 1, "{what}: {o:?}");
            }
        }
    }
}

/// The vector unit at 1, 2 and 4 lanes passes `verilator --lint-only -Wall`; 3 and 8
/// lanes are refused by name.
#[test]
fn the_vector_unit_verilog_is_lint_clean() {
    use tern_hdl::units::{vector_unit_verilog, VectorUnitShape, VECTOR_UNIT_FILE};
    let dir = tempfile::tempdir().unwrap();
    for (lanes, ports) in [(1usize, 1usize), (2, 1), (4, 1), (2, 2), (4, 2)] {
        let shape = VectorUnitShape {
            lanes,
            max_n: 4096,
            max_head_dim: 128,
            ports,
        };
        let text = vector_unit_verilog(shape).unwrap();
        std::fs::write(dir.path().join(VECTOR_UNIT_FILE), text).unwrap();
        let found = lint_files(dir.path(), &[VECTOR_UNIT_FILE], None).unwrap();
        assert!(
            found.is_empty(),
            "{lanes} lanes, {ports} port(s):\n{}",
            found.join("\n")
        );
    }
    for (lanes, ports, refused) in [
        (3usize, 1usize, "3 lanes"),
        (8, 1, "8 lanes"),
        (2, 3, "3 read ports"),
    ] {
        let e = vector_unit_verilog(VectorUnitShape {
            lanes,
            max_n: 4096,
            max_head_dim: 128,
            ports,
        })
        .unwrap_err();
        assert!(e.contains(refused), "{e}");
    }
}

/// What the element-wise commands of one 0.73B layer cost on the vector unit (2 lanes,
/// one KV260 port at 250 MHz), measured: the tiny model's layer-0 commands scaled to the
/// 0.73B's sizes (hidden 64 → 1,536, KV width 32 → 1,536, FFN 128 → 4,096, RoPE 4 and 2
/// heads of 16 → 16 of 96) over random data of the right form, one decoded row each;
/// then a token's: 24 layers, the embedding and the final norm. Every command must end
/// without error; the figures print (`docs/bench/vector_unit.txt`).
#[test]
fn the_vector_unit_takes_a_0_73b_tokens_element_wise_commands_in_measured_clocks() {
    let big = ModelConfig::preset("bitnet-0.73b").unwrap();
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let (memory, _) = tern_flows::memory::ported_memory_at(&board, 250.0, 16 << 20).unwrap();
    // The one top's vector unit at 2 lanes on one port and at 4 lanes with reader B on
    // a port of its own.
    for (lanes, ports) in [(2usize, 1usize), (4, 2)] {
        let mut unit = vector_unit(lanes, ports, &memory);
        let measured = vector_layer_clocks(&mut unit, 1, 29);
        let (layer, once) = measured.split_at(measured.len() - 2);
        let per_layer: u64 = layer.iter().map(|m| m.clocks).sum();
        let token = per_layer * big.layers as u64 + once.iter().map(|m| m.clocks).sum::<u64>();
        for m in &measured {
            println!(
                "vector unit, {lanes} lanes, {ports} KV260 port(s) at 250 MHz, one decoded row: {}: {} clocks",
                m.what, m.clocks
            );
        }
        println!(
            "{lanes} lanes, {ports} port(s): a 0.73B layer's element-wise commands: {per_layer} clocks; a token's ({} layers, embedding, final norm): {token} clocks = {:.3} ms at 250 MHz",
            big.layers,
            token as f64 / 250e3
        );
    }
}

/// The one top's vector unit for the 0.73B (vectors of up to its FFN, heads of 96) at
/// `lanes` lanes on `ports` ports over `memory`.
fn vector_unit(
    lanes: usize,
    ports: usize,
    memory: &tern_sim::top_model::MemoryModel,
) -> tern_sim::cosim::units::VectorUnitModel {
    let big = ModelConfig::preset("bitnet-0.73b").unwrap();
    tern_sim::verilator::ModelCache::new(tern_sim::verilator::default_cache_root())
        .load_vector_unit(
            tern_hdl::units::VectorUnitShape {
                lanes,
                max_n: big.ffn,
                max_head_dim: big.head_dim,
                ports,
            },
            memory,
            None,
        )
        .unwrap()
}

/// One element-wise command measured on the vector unit.
struct VectorClocks {
    /// The command and its length, as the benches print it.
    what: String,
    /// The program's command at the 0.73B's sizes (what the clock model reads).
    program_command: Command,
    clocks: u64,
}

/// The 0.73B's element-wise commands of one layer (the tiny program's layer 0 scaled:
/// hidden 64 → 1,536, KV width 32 → 1,536, FFN 128 → 4,096, RoPE 4 and 2 heads of 16 →
/// 16 of 96), then the embedding and the final norm, each over `rows` rows from position
/// 0 of random data of the right form (`seed`) on `unit`: each must end without error;
/// their clocks. Each stream lies in a bank of its own (banks 0, 2, 1 and 3 of the
/// KV260's 8 KiB rows), as the program's scratch lays vectors out (docs/program.md).
fn vector_layer_clocks(
    unit: &mut tern_sim::cosim::units::VectorUnitModel,
    rows: u32,
    seed: u64,
) -> Vec<VectorClocks> {
    use rand::{Rng, SeedableRng};
    use tern_hdl::program::{
        bf16_bits, result_row_bytes, rope_table, vector_row_bytes, FACTOR_BYTES,
    };
    use tern_sim::cosim::units::{VectorPass, VectorUnitCommand};
    let (_, _, _, image) = setup(17);
    let big = ModelConfig::preset("bitnet-0.73b").unwrap();
    let tiny = ModelConfig::preset("tiny").unwrap();
    let scale_n = |n: u32| match n as usize {
        x if x == tiny.hidden => big.hidden as u32,
        x if x == tiny.kv_width() => big.kv_width() as u32,
        x if x == tiny.ffn => big.ffn as u32,
        x => panic!("a length {x} the tiny model's layer does not have"),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let f = image.header.residual_frac;
    let (a, b, c, d) = (0x10_0000u64, 0x40_4000u64, 0x80_2000u64, 0xc0_6000u64);
    // `rows` i32 vector rows of n: each its head, then small values.
    let vectors = |rng: &mut rand_chacha::ChaCha8Rng, n: u32, frac: i32| -> Vec<u8> {
        let mut all = vec![];
        for _ in 0..rows {
            let mut v = frac.to_le_bytes().to_vec();
            v.extend(n.to_le_bytes());
            v.resize(16, 0);
            for _ in 0..n {
                v.extend(rng.gen_range(-(1i32 << 20)..1 << 20).to_le_bytes());
            }
            v.resize(vector_row_bytes(n as usize) as usize, 0);
            all.extend(v);
        }
        all
    };
    let pass = VectorPass {
        rows,
        position: 0,
        residual_frac: f,
        ids_at: d,
        eps: image.header.eps,
    };
    let mut measured = vec![];
    let mut measure = |cmd: VectorUnitCommand,
                       program_command: Command,
                       what: String,
                       unit: &mut tern_sim::cosim::units::VectorUnitModel| {
        let o = unit.run(&cmd, 100_000_000);
        assert!(
            o.clocks != u64::MAX && o.error == 0,
            "{what}, {rows} row(s), seed {seed}: {o:?}"
        );
        measured.push(VectorClocks {
            what,
            program_command,
            clocks: o.clocks,
        });
    };
    // The layer's element-wise commands: after the Embed, up to the layer's end.
    let layer = &image.commands[1..=image.commands.len() / tiny.layers];
    for command in layer {
        let Some(mut cmd) = VectorUnitCommand::of(command, &pass) else {
            continue;
        };
        cmd.a = a;
        cmd.c = c;
        if cmd.op == 5 {
            (cmd.count, cmd.k) = (
                if cmd.count as usize == tiny.heads {
                    big.heads
                } else {
                    big.kv_heads
                } as u32,
                big.head_dim as u32,
            );
            cmd.n = cmd.count * cmd.k;
            cmd.c = a;
        } else {
            cmd.n = scale_n(cmd.n);
        }
        let n = cmd.n;
        match command.opcode() {
            // NormQuant: its gain at b (shift 4), the input (vectors or int8 rows).
            2 => {
                cmd.b = b;
                cmd.d = d;
                let mut g = 4i32.to_le_bytes().to_vec();
                g.resize(16, 0);
                for _ in 0..n {
                    g.extend(rng.gen_range(1i16 << 10..1 << 14).to_le_bytes());
                }
                unit.write(b, &g);
                if cmd.add == 1 {
                    let x: Vec<u8> = (0..rows as u64
                        * tern_hdl::program::int8_row_bytes(n as usize))
                        .map(|_| rng.gen())
                        .collect();
                    unit.write(a, &x);
                } else {
                    let v = vectors(&mut rng, n, f);
                    unit.write(a, &v);
                }
            }
            // Dequant: results at a, each row's factors at d, the residual at c.
            4 => {
                cmd.d = d;
                let mut r = vec![];
                let mut fac = vec![];
                for _ in 0..rows {
                    let mut row: Vec<u8> = (0..n)
                        .flat_map(|_| rng.gen_range(-4096i32..4096).to_le_bytes())
                        .collect();
                    row.resize(result_row_bytes(n as usize) as usize, 0);
                    r.extend(row);
                    let mut one = (1u64 << 30).to_le_bytes().to_vec();
                    one.extend((1u64 << 16).to_le_bytes());
                    one.extend(4i32.to_le_bytes());
                    one.resize(FACTOR_BYTES as usize, 0);
                    fac.extend(one);
                }
                unit.write(a, &r);
                unit.write(d, &fac);
                let v = vectors(&mut rng, n, f);
                unit.write(c, &v);
            }
            // RoPE: the table's rows for the pass's positions at b, the vectors at a.
            5 => {
                cmd.b = b;
                let t: Vec<u8> = rope_table(big.head_dim, rows as usize, 10_000.0)
                    .iter()
                    .flat_map(|&(cs, sn)| [cs.to_le_bytes(), sn.to_le_bytes()].concat())
                    .collect();
                unit.write(b, &t);
                let v = vectors(&mut rng, n, f);
                unit.write(a, &v);
            }
            // Relu2Mul: gate at a, up at b, the same fractional bits.
            8 => {
                cmd.b = b;
                let (g, u) = (vectors(&mut rng, n, f), vectors(&mut rng, n, f));
                unit.write(a, &g);
                unit.write(b, &u);
            }
            _ => {
                let v = vectors(&mut rng, n, f);
                unit.write(a, &v);
            }
        }
        // The program's command at the 0.73B's sizes.
        let scaled = match *command {
            Command::NormQuant {
                src,
                gain,
                dst,
                factors,
                int8_unit,
                ..
            } => Command::NormQuant {
                src,
                gain,
                dst,
                factors,
                n,
                int8_unit,
            },
            Command::Dequant {
                src,
                factors,
                dst,
                scale,
                add,
                ..
            } => Command::Dequant {
                src,
                factors,
                dst,
                m: n,
                scale,
                add,
            },
            Command::Rope { vec, table, .. } => Command::Rope {
                vec,
                table,
                heads: cmd.count,
                head_dim: cmd.k,
            },
            Command::ToInt8 {
                src, dst, inv_unit, ..
            } => Command::ToInt8 {
                src,
                dst,
                n,
                inv_unit,
            },
            Command::Relu2Mul { gate, up, dst, .. } => Command::Relu2Mul { gate, up, dst, n },
            other => panic!("{other:?} in a layer's element-wise commands"),
        };
        let what = format!("{command:?}");
        let what = what.split_whitespace().next().unwrap_or("?").to_string();
        measure(cmd, scaled, format!("{what} of {n}"), unit);
    }
    // The embedding (id 7 for every row at ids_at, bf16 rows) and the final norm (a
    // vector of hidden), its factors past the ids.
    let ids: Vec<u8> = (0..rows).flat_map(|_| 7u32.to_le_bytes()).collect();
    unit.write(d, &ids);
    let table: Vec<u8> = (0..8 * big.hidden)
        .flat_map(|_| bf16_bits(rng.gen_range(-1.0f32..1.0)).to_le_bytes())
        .collect();
    unit.write(a, &table);
    let embed = VectorUnitCommand {
        op: 1,
        a,
        c,
        d,
        n: big.hidden as u32,
        pass_rows: rows,
        frac: f,
        ..Default::default()
    };
    let embed_command = Command::Embed {
        table: a,
        dst: c,
        n: big.hidden as u32,
    };
    measure(
        embed,
        embed_command,
        format!("Embed of {}", big.hidden),
        unit,
    );
    let mut g = 4i32.to_le_bytes().to_vec();
    g.resize(16 + 2 * big.hidden, 0);
    unit.write(b, &g);
    let v = vectors(&mut rng, big.hidden as u32, f);
    unit.write(a, &v);
    let norm = VectorUnitCommand {
        op: 2,
        a,
        b,
        c,
        d: d + 4096,
        n: big.hidden as u32,
        pass_rows: rows,
        frac: f,
        eps_m: image.header.eps.m,
        eps_e: image.header.eps.e,
        ..Default::default()
    };
    let norm_command = Command::NormQuant {
        src: a,
        gain: b,
        dst: c,
        factors: d + 4096,
        n: big.hidden as u32,
        int8_unit: None,
    };
    measure(
        norm,
        norm_command,
        format!("final NormQuant of {}", big.hidden),
        unit,
    );
    measured
}

/// The sweep behind the vector unit's clock model (`docs/bench/vector_unit_model.txt`;
/// `cargo test -p tern-flows --test program bench_the_vector_unit_model -- --ignored
/// --nocapture`; minutes): the 0.73B's element-wise commands of a layer, the embedding
/// and the final norm, over 1, 3 and 8 rows, at 1, 2 and 4 lanes on one and two ports,
/// on memories of 1, 15 and 30 clocks' latency without DRAM timing and on the KV260's
/// DDR model at 250 MHz.
#[test]
#[ignore]
fn bench_the_vector_unit_model() {
    let bytes = 16 << 20;
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let (ddr, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
    let memories: Vec<(String, tern_sim::top_model::MemoryModel)> = [1u32, 15, 30]
        .into_iter()
        .map(|l| {
            (
                format!("latency {l}"),
                tern_sim::top_model::MemoryModel {
                    latency_clocks: l,
                    ..tern_sim::top_model::MemoryModel::ideal(bytes)
                },
            )
        })
        .chain([("KV260 DDR".to_string(), ddr)])
        .collect();
    println!("# cargo test -p tern-flows --test program bench_the_vector_unit_model -- --ignored --nocapture");
    println!(
        "# lanes | ports | memory | rows | command | unit clocks | model | difference | error %"
    );
    let mut summary = vec![];
    for (lanes, ports) in [(1usize, 1usize), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2)] {
        for (what, memory) in &memories {
            let mut unit = vector_unit(lanes, ports, memory);
            let mut errors = vec![];
            for rows in [1u32, 3, 8] {
                for m in vector_layer_clocks(&mut unit, rows, 29) {
                    let model = vector_model(lanes, ports, &m, rows, memory.latency_clocks);
                    let diff = model as i64 - m.clocks as i64;
                    let err = diff as f64 / m.clocks as f64 * 100.0;
                    println!(
                        "{lanes} | {ports} | {what} | {rows} | {} | {} | {model} | {diff:+} | {err:+.2}",
                        m.what, m.clocks
                    );
                    errors.push((diff, err));
                }
            }
            summary.push((format!("{lanes} lanes, {ports} port(s), {what}"), errors));
        }
    }
    println!("# summary: largest |difference| in clocks, median and largest |error|, mean error (+: the model is slower)");
    for (what, errors) in summary {
        let mut abs: Vec<f64> = errors.iter().map(|e| e.1.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let largest = errors.iter().map(|e| e.0.abs()).max().unwrap_or(0);
        let mean = errors.iter().map(|e| e.1).sum::<f64>() / errors.len() as f64;
        println!(
            "{what}: largest difference {largest} clocks, median {:.2} %, largest {:.2} %, mean {mean:+.2} %",
            abs[abs.len() / 2],
            abs[abs.len() - 1]
        );
    }
}

/// The vector unit's clock model (`VectorUnitShape::cycles`) for a measured command.
fn vector_model(lanes: usize, ports: usize, m: &VectorClocks, rows: u32, latency: u32) -> u64 {
    let big = ModelConfig::preset("bitnet-0.73b").unwrap();
    let shape = tern_hdl::units::VectorUnitShape {
        lanes,
        max_n: big.ffn,
        max_head_dim: big.head_dim,
        ports,
    };
    shape
        .cycles(&m.program_command, rows as usize, latency)
        .unwrap_or_else(|e| panic!("{}: {e}", m.what))
}

/// The vector unit's clock model against the unit: the 0.73B's element-wise commands
/// over 2 rows (data of another seed than the model was measured on) at 2 lanes on one
/// port and 4 lanes on two, on memories of 1 and 30 clocks' latency without DRAM timing:
/// within 10 clocks of every command. On the KV260's DDR model the figures print (DRAM
/// timing is not in the model; `docs/bench/vector_unit_model.txt`).
#[test]
fn the_vector_unit_model_prices_its_clocks() {
    let bytes = 16 << 20;
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let (ddr, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
    for (lanes, ports) in [(2usize, 1usize), (4, 2)] {
        for latency in [1u32, 30] {
            let memory = tern_sim::top_model::MemoryModel {
                latency_clocks: latency,
                ..tern_sim::top_model::MemoryModel::ideal(bytes)
            };
            let mut unit = vector_unit(lanes, ports, &memory);
            for m in vector_layer_clocks(&mut unit, 2, 31) {
                let model = vector_model(lanes, ports, &m, 2, latency);
                assert!(
                    model.abs_diff(m.clocks) <= 10,
                    "{lanes} lanes, {ports} port(s), latency {latency}, 2 rows, seed 31: {}: the unit {} clocks, the model {model}",
                    m.what,
                    m.clocks
                );
            }
        }
        let mut unit = vector_unit(lanes, ports, &ddr);
        for m in vector_layer_clocks(&mut unit, 2, 31) {
            let model = vector_model(lanes, ports, &m, 2, ddr.latency_clocks);
            println!(
                "{lanes} lanes, {ports} port(s), the KV260's DDR, 2 rows: {}: unit {}, model {model} ({:+.2} %)",
                m.what,
                m.clocks,
                (model as f64 - m.clocks as f64) / m.clocks as f64 * 100.0
            );
        }
    }
}
