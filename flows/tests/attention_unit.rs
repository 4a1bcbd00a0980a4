//! The attention unit (`tern_hdl::units::attention`): the program's `Attention` command
//! on the simulated board's memory — the layer's record read and checked, every KV
//! head's keys and values appended to its cache in memory, the engine's calls fed from
//! the caches — checked byte for byte against the golden sequencer running the same
//! command over the same memory.

use tern_flows::rtl::lint::lint_files;
use tern_hdl::config::AttentionConfigBuilder;
use tern_hdl::emit::{waivers, DESIGN_FILE, WAIVER_FILE};
use tern_hdl::units::{attention_unit_verilog, AttentionUnitShape, ATTENTION_UNIT_FILE};
use tern_hdl::AttentionConfig;

/// An engine for heads of `d` with `macs` MACs, tiles of `tile`, blocks of `block` rows.
fn engine(d: usize, macs: usize, tile: usize, block: usize) -> AttentionConfig {
    AttentionConfigBuilder::new(d, macs, tile, 64)
        .mode(true, true)
        .workload(8, 8)
        .query_block(block)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_attention_unit_verilog_is_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    for (heads, kv_heads, engine) in [
        (4, 2, engine(16, 4, 8, 2)),
        (4, 2, engine(16, 16, 8, 1)),
        (2, 2, engine(32, 8, 4, 4)),
        (16, 16, engine(96, 32, 32, 64)),
    ] {
        let what = format!(
            "{heads}/{kv_heads} heads, d {}, {} MACs",
            engine.attention.head_dim, engine.attention.macs
        );
        let v = attention_unit_verilog(&AttentionUnitShape {
            ports: if engine.attention.macs == 32 { 2 } else { 1 },
            engine,
            heads,
            kv_heads,
        })
        .unwrap();
        std::fs::write(dir.path().join(ATTENTION_UNIT_FILE), v.unit).unwrap();
        std::fs::write(dir.path().join(DESIGN_FILE), v.core).unwrap();
        std::fs::write(dir.path().join(WAIVER_FILE), waivers()).unwrap();
        let found = lint_files(
            dir.path(),
            &[WAIVER_FILE, ATTENTION_UNIT_FILE, DESIGN_FILE],
            Some("tern_attention_unit"),
        )
        .unwrap();
        assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
    }
    let e = attention_unit_verilog(&AttentionUnitShape {
        engine: engine(16, 4, 8, 2),
        heads: 3,
        kv_heads: 2,
        ports: 1,
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("3 query heads"), "{e}");
}

mod common;
use common::{golden_around, setup};

use tern_boards::Board;
use tern_flows::memory::ported_memory_at;
use tern_hdl::program::{AttentionRecord, Command, ATTENTION_RECORD_BYTES};
use tern_sim::cosim::units::{AttentionUnitCommand, AttentionUnitModel, AttentionUnitOutcome};
use tern_sim::golden::bitnet::GoldenFabric;
use tern_sim::golden::sequencer::{attention_work, run_pass, AttentionCallWork};
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::{default_cache_root, ModelCache};

/// The KV260's memory at 250 MHz through one HP port: `bytes` modelled, a
/// `stall_percent` of every handshake the memory drives withheld.
fn kv260(bytes: u64, stall_percent: u32, seed: u64) -> MemoryModel {
    let board = Board::resolve("kv260").unwrap();
    let (mut model, _) = ported_memory_at(&board, 250.0, bytes).unwrap();
    model.stall_percent = stall_percent;
    model.seed = seed;
    model
}

fn unit(shape: &AttentionUnitShape, memory: &MemoryModel) -> AttentionUnitModel {
    ModelCache::new(default_cache_root())
        .load_attention_unit(shape, memory, None)
        .unwrap()
}

/// Where two memories first differ, and what lies there, for a failure message.
fn first_difference(got: &[u8], want: &[u8]) -> Option<String> {
    let i = got.iter().zip(want).position(|(a, b)| a != b)?;
    let end = (i + 16).min(got.len());
    Some(format!(
        "first difference at 0x{i:x}: got {:02x?}, want {:02x?}",
        &got[i..end],
        &want[i..end]
    ))
}

/// The tiny model's `Attention` commands (layers 0 and 1) of a prompt of 5 and of the
/// token decoded after it, each run alone on the unit over the memory the golden
/// sequencer had just before it: the whole memory afterwards is the golden's, byte for
/// byte (the keys and values appended to every KV head's cache, the outputs, nothing
/// else). Engines of 4, 8 and 16 MACs (beats of 32, 64 and 128 bits: split from,
/// collected into and equal to a memory beat) and query blocks of 2, 4 and 1 rows; with
/// and without 20 % of the memory's handshakes withheld. The program's engine has 4 MACs
/// and blocks of 2: neither changes a result (docs/attention.md).
#[test]
fn the_attention_unit_writes_what_the_golden_sequencer_writes() {
    let (ck, cfg, _, image) = setup(23);
    let c = &ck.config;
    let attentions: Vec<usize> = (0..image.commands.len())
        .filter(|&i| matches!(image.commands[i], Command::Attention { .. }))
        .collect();
    assert_eq!(attentions.len(), c.layers);
    let prompt = vec![3usize, 141, 59, 26, 5];
    let mut after_prompt = image.memory.clone();
    run_pass(
        c,
        &cfg,
        &mut after_prompt,
        0,
        common::DESIGN,
        0,
        &prompt,
        &mut GoldenFabric::new(&ck, &cfg),
    )
    .unwrap();
    let passes: [(&[u8], usize, &[usize]); 2] =
        [(&image.memory, 0, &prompt), (&after_prompt, 5, &[77])];
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
    let variant = |macs: usize, block: usize| {
        AttentionConfigBuilder::from_config(&cfg)
            .macs(macs)
            .query_block(block)
            .build()
            .unwrap()
    };
    for (engine, stall) in [
        (cfg.clone(), 0),
        (variant(16, 1), 20),
        (variant(8, 4), 0),
        (cfg.clone(), 20),
    ] {
        let what = format!(
            "{} MACs, blocks of {}, {stall} % stalls",
            engine.attention.macs, engine.attention.query_block
        );
        let shape = AttentionUnitShape {
            engine,
            heads: c.heads,
            kv_heads: c.kv_heads,
            ports: 1,
        };
        let mut u = unit(&shape, &kv260(bytes, stall, 23));
        for &(base, position, ids) in &passes {
            for &i in &attentions {
                let (before, after, outcome) =
                    golden_around(&ck, &cfg, &image.header, base, i, (position, ids));
                assert_eq!(outcome, None, "the golden ran command {i}");
                assert_ne!(before, after, "command {i} changes the memory");
                u.write(0, &before);
                let cmd = AttentionUnitCommand::of(
                    &image.commands[i],
                    &image.header,
                    ids.len() as u32,
                    position as u32,
                )
                .unwrap();
                let o = u.run(&cmd, 2_000_000);
                let case = format!("{what}: command {i}, {} rows from {position}", ids.len());
                assert_ne!(o.clocks, u64::MAX, "{case}: no done");
                assert_eq!(o.error, 0, "{case}: {o:?}");
                let got = u.read(0, before.len());
                if let Some(d) = first_difference(&got, &after) {
                    panic!("{case}: {d}");
                }
                println!("{case}: {} clocks, {:?}", o.clocks, o.ddr);
                // Whatever the stalls, the bytes are the traffic model's, and the calls
                // the unit's model walks are the golden's.
                let traffic = shape.traffic(ids.len(), position);
                assert_eq!(
                    (o.ddr.bytes_read, o.ddr.bytes_written),
                    (traffic.read, traffic.written),
                    "{case}: bytes against the unit's traffic model"
                );
                let work = attention_work(
                    c,
                    &shape.engine,
                    &after,
                    &image.header,
                    &image.commands[i],
                    position,
                    ids.len(),
                )
                .unwrap();
                let golden: Vec<_> = work.iter().map(|w| (w.kv_head, w.rows.clone())).collect();
                let model: Vec<_> = shape
                    .calls(ids.len(), position)
                    .into_iter()
                    .map(|c| (c.kv_head, c.rows))
                    .collect();
                assert_eq!(model, golden, "{case}: the unit's calls");
            }
        }
    }
}

/// A layer's record no engine runs stops the command with error 3 before it writes
/// anything; a pass beyond the engine's context is not run (error 1).
#[test]
fn the_attention_unit_refuses_a_record_out_of_range() {
    let (ck, cfg, _, image) = setup(29);
    let c = &ck.config;
    let i = (0..image.commands.len())
        .find(|&i| matches!(image.commands[i], Command::Attention { layer: 1, .. }))
        .unwrap();
    let shape = AttentionUnitShape {
        engine: cfg.clone(),
        heads: c.heads,
        kv_heads: c.kv_heads,
        ports: 1,
    };
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 16);
    let mut u = unit(&shape, &kv260(bytes, 0, 29));
    let at = image.header.attention_at as usize + ATTENTION_RECORD_BYTES;
    let good = AttentionRecord::decode(&image.memory[at..at + ATTENTION_RECORD_BYTES]);
    let cmd = AttentionUnitCommand::of(&image.commands[i], &image.header, 1, 0).unwrap();
    for (bad, field) in [
        (
            AttentionRecord {
                threshold: 0,
                ..good
            },
            "threshold 0",
        ),
        (
            AttentionRecord {
                index_offset: good.threshold,
                ..good
            },
            "offset = threshold",
        ),
        (
            AttentionRecord {
                output_numerator: cfg.constants.max_output_numerator() + 1,
                ..good
            },
            "numerator",
        ),
        (
            AttentionRecord {
                head_stride: good.head_stride - 16,
                ..good
            },
            "stride",
        ),
        (
            AttentionRecord {
                cache_at: good.cache_at + 8,
                ..good
            },
            "cache_at",
        ),
    ] {
        let mut m = image.memory.clone();
        m[at..at + ATTENTION_RECORD_BYTES].copy_from_slice(&bad.encode());
        // The golden sequencer refuses it too (code 22, "the data").
        let mut g = m.clone();
        let e = run_pass(
            c,
            &cfg,
            &mut g,
            0,
            common::DESIGN,
            0,
            &[1],
            &mut GoldenFabric::new(&ck, &cfg),
        )
        .unwrap_err();
        assert_eq!(
            e.code(),
            tern_hdl::program::error_code::DATA,
            "{field}: {e}"
        );
        u.write(0, &m);
        let o = u.run(&cmd, 100_000);
        assert_eq!(o.error, 3, "{field}: {o:?}");
        assert_eq!(u.read(0, m.len()), m, "{field}: nothing written");
    }
    let beyond = AttentionUnitCommand {
        position: cfg.attention.max_seq_len as u32,
        ..cmd
    };
    u.write(0, &image.memory);
    assert_eq!(u.run(&beyond, 1000).error, 1);
    assert_eq!(u.read(0, image.memory.len()), image.memory);
}

/// A fabric with no weights: a pass that runs only `Attention` needs none.
struct NoFabric;

impl tern_sim::golden::bitnet::Fabric for NoFabric {
    type Error = String;
    fn matmul(&mut self, _: usize, _: usize, _: &[i8]) -> Result<Vec<i64>, String> {
        Err("no matmul in an attention-only pass".into())
    }
    fn kv_append(&mut self, _: usize, _: usize, _: &[i8], _: &[i8]) -> Result<(), String> {
        Err("the caches are in memory".into())
    }
    fn attention(
        &mut self,
        _: usize,
        _: usize,
        _: &[i8],
        _: usize,
        _: bool,
    ) -> Result<Vec<tern_hdl::streams::attention::RowOutput>, String> {
        Err("the caches are in memory".into())
    }
}

/// A program of one `Attention` (layer 3 of a 0.73B-shaped model) and `End`, over random
/// int8 q, k, v rows and caches already holding `position` random tokens: the memory
/// image, the header and the command.
fn one_attention(
    model: &tern_model::ModelConfig,
    engine: &AttentionConfig,
    position: usize,
    rows: usize,
    seed: u64,
) -> (Vec<u8>, tern_hdl::program::Header, Command) {
    use rand::{Rng, SeedableRng};
    use tern_hdl::program::{int8_row_bytes, Header, KvCacheFormat, Scale};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let layer = 3u16;
    let context = (position + rows)
        .next_multiple_of(engine.attention.tile)
        .max(64);
    let cache = KvCacheFormat {
        tile: engine.attention.tile,
        head_dim: model.head_dim,
    };
    let stride = cache.bytes(context).next_multiple_of(4096);
    let attention_at = 1024u64;
    let kv_at = 8192u64;
    let kv_bytes = model.kv_heads as u64 * stride;
    let scratch_at = kv_at + kv_bytes;
    let (qrow, kvrow) = (
        int8_row_bytes(model.hidden),
        int8_row_bytes(model.kv_width()),
    );
    let t = rows as u64;
    let (ids_at, q, k, v, dst) = (
        scratch_at,
        scratch_at + 4096,
        scratch_at + 4096 + t * qrow,
        scratch_at + 4096 + t * (qrow + kvrow),
        scratch_at + 4096 + t * (qrow + 2 * kvrow),
    );
    let end = dst + t * qrow;
    let mut m = vec![0u8; end as usize];
    let header = Header {
        design: common::DESIGN,
        commands: 2,
        commands_at: 128,
        scratch_at,
        scratch_bytes: end - scratch_at,
        ids_at,
        output_at: ids_at,
        residual_frac: 16,
        eps: Scale::of(1e-5).unwrap(),
        hidden: model.hidden as u32,
        vocab: model.vocab as u32,
        max_tokens: rows as u32,
        max_seq_len: context as u32,
        kv_at,
        kv_bytes,
        attention_at,
    };
    let cmd = Command::Attention {
        layer,
        q,
        k,
        v,
        dst,
    };
    m[..128].copy_from_slice(&header.encode());
    m[128..192].copy_from_slice(&cmd.encode());
    m[192..256].copy_from_slice(&Command::End.encode());
    let units = &engine.constants;
    let record = AttentionRecord {
        cache_at: kv_at,
        head_stride: stride,
        threshold: units.threshold as u32,
        index_offset: units.index_offset as u32,
        output_numerator: units.output_numerator,
    };
    let r = attention_at as usize + layer as usize * ATTENTION_RECORD_BYTES;
    m[r..r + ATTENTION_RECORD_BYTES].copy_from_slice(&record.encode());
    // Keys and values small enough that scores spread over the clip (int8 of ±40).
    let mut fill = |from: u64, n: usize, m: &mut Vec<u8>| {
        for b in &mut m[from as usize..from as usize + n] {
            *b = rng.gen_range(-40i8..=40) as u8;
        }
    };
    for h in 0..model.kv_heads as u64 {
        for i in 0..position {
            fill(
                kv_at + h * stride + cache.key_offset(i),
                model.head_dim,
                &mut m,
            );
            fill(
                kv_at + h * stride + cache.value_offset(i),
                model.head_dim,
                &mut m,
            );
        }
    }
    for j in 0..t {
        fill(q + j * qrow, model.hidden, &mut m);
        fill(k + j * kvrow, model.kv_width(), &mut m);
        fill(v + j * kvrow, model.kv_width(), &mut m);
    }
    (m, header, cmd)
}

/// One 0.73B layer's attention on the KV260's engine (heads of 96, 32 MACs: a 256-bit
/// engine beat collected from two memory beats, its results split into two), a decoded
/// token at context 128 and a prompt of 32: the memory afterwards is the golden
/// sequencer's, byte for byte. The clocks print (one memory port at 250 MHz).
#[test]
fn a_0_73b_layer_runs_on_the_attention_unit_as_on_the_golden_sequencer() {
    run_0_73b_layer(&[(127, 1), (0, 32)]);
}

/// The bench behind docs/bench/attention_unit.txt: one 0.73B layer's attention on the
/// KV260's engine, decoded tokens at contexts 128, 512 and 1024 and a prompt of 128,
/// each checked against the golden sequencer as above (`cargo test --release -p
/// tern-flows --test attention_unit -- --ignored --nocapture`; minutes).
#[test]
#[ignore]
fn bench_a_0_73b_layer_on_the_attention_unit() {
    run_0_73b_layer(&[(127, 1), (511, 1), (1023, 1), (0, 128)]);
}

fn run_0_73b_layer(cases: &[(usize, usize)]) {
    let model = tern_model::ModelConfig::preset("bitnet-0.73b").unwrap();
    let engine = kv260_engine();
    // The KV caches on two ports: a word of two memory beats is one engine beat.
    let shape = AttentionUnitShape {
        engine: engine.clone(),
        heads: model.heads,
        kv_heads: model.kv_heads,
        ports: 2,
    };
    for &(position, rows) in cases {
        let memory = kv260(1 << 26, 0, 41);
        let mut u = unit(&shape, &memory);
        let (clocks, m, err) = priced(
            &mut u,
            &shape,
            &model,
            (position, rows),
            memory.latency_clocks,
        );
        let traffic = shape.traffic(rows, position);
        let case = format!("0.73B layer, {rows} row(s) from {position}");
        println!(
            "{case}: {clocks} clocks = {:.1} µs at 250 MHz, {} bytes read ({:.2} B/clock), {} written; \
             the model: {} (engine {} + waiting {}), {err:+.2} %",
            clocks as f64 / 250.0,
            traffic.read,
            traffic.read as f64 / clocks as f64,
            traffic.written,
            m.total(),
            m.engine,
            m.waiting
        );
    }
}

/// The KV260's attention engine (docs/model/kv260/attention.toml: heads of 96, 32 MACs,
/// tiles of 32, blocks of 64).
fn kv260_engine() -> AttentionConfig {
    AttentionConfig::from_path(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/model/kv260/attention.toml"
    )))
    .unwrap()
}

/// One `Attention` of `rows` rows from `position` (a [`one_attention`] program over
/// `model`, random data of `seed`) on the unit `u` of `shape`, whose memory must hold
/// it: the memory afterwards must be the golden sequencer's, byte for byte, and the
/// bytes the memory served the unit's traffic model's. Returns the unit's outcome and
/// the golden's account of the engine's calls (their rows and rescaled tiles).
fn run_one(
    u: &mut AttentionUnitModel,
    shape: &AttentionUnitShape,
    model: &tern_model::ModelConfig,
    (position, rows): (usize, usize),
    seed: u64,
) -> (AttentionUnitOutcome, Vec<AttentionCallWork>) {
    let engine = &shape.engine;
    let (before, header, cmd) = one_attention(model, engine, position, rows, seed);
    let mut after = before.clone();
    let ids: Vec<usize> = (0..rows).collect();
    let e = run_pass(
        model,
        engine,
        &mut after,
        0,
        common::DESIGN,
        position,
        &ids,
        &mut NoFabric,
    )
    .unwrap_err();
    assert_eq!(
        e.code(),
        tern_hdl::program::error_code::NO_CHOICE,
        "the golden ran the attention: {e}"
    );
    let work = attention_work(model, engine, &after, &header, &cmd, position, rows).unwrap();
    u.write(0, &before);
    // The golden wrote the ids too; the unit is given them.
    u.write(
        header.ids_at,
        &after[header.ids_at as usize..header.ids_at as usize + 4 * rows],
    );
    let c = AttentionUnitCommand::of(&cmd, &header, rows as u32, position as u32).unwrap();
    let o = u.run(&c, 50_000_000);
    let case = format!(
        "{} MACs on {} port(s), {} heads / {} KV heads, {rows} row(s) from {position}, seed {seed}",
        engine.attention.macs, shape.ports, model.heads, model.kv_heads
    );
    assert_eq!((o.error, o.clocks == u64::MAX), (0, false), "{case}: {o:?}");
    let got = u.read(0, before.len());
    if let Some(d) = first_difference(&got, &after) {
        panic!("{case}: {d}");
    }
    let traffic = shape.traffic(rows, position);
    assert_eq!(
        (o.ddr.bytes_read, o.ddr.bytes_written),
        (traffic.read, traffic.written),
        "{case}: bytes read and written against the unit's traffic model"
    );
    (o, work)
}

/// A memory of `latency` clocks with no DRAM timing and no bandwidth limit: what the
/// unit's clock model is measured on.
fn latency_only(bytes: u64, latency: u32) -> MemoryModel {
    MemoryModel {
        latency_clocks: latency,
        ..MemoryModel::ideal(bytes)
    }
}

/// The unit's clocks against its model (`AttentionUnitShape::cycles`, given the golden's
/// rescaled tiles) for one case: the unit's, the model's, and the error in percent.
fn priced(
    u: &mut AttentionUnitModel,
    shape: &AttentionUnitShape,
    model: &tern_model::ModelConfig,
    case: (usize, usize),
    latency: u32,
) -> (u64, tern_hdl::units::UnitCycles, f64) {
    let (o, work) = run_one(u, shape, model, case, 41);
    let rescaled: Vec<Vec<usize>> = work.into_iter().map(|w| w.rescaled_tiles).collect();
    let m = shape.cycles(case.1, case.0, &rescaled, latency).unwrap();
    let err = (m.total() as f64 - o.clocks as f64) / o.clocks as f64 * 100.0;
    (o.clocks, m, err)
}

/// The attention unit's clock model on the 0.73B's layer with the KV260's engine: the
/// engine's share (exact, with the golden's rescales) never exceeds the unit's clocks,
/// and the whole is within 5 % of the unit's on memories of 1 and 30 clocks' latency
/// without DRAM timing, within 8 % on the KV260's DDR model (refresh and row misses,
/// which the model does not count). The sweep behind the model's constants is
/// `bench_the_attention_unit_model`.
#[test]
fn the_attention_unit_model_prices_its_clocks() {
    let model = tern_model::ModelConfig::preset("bitnet-0.73b").unwrap();
    let shape = AttentionUnitShape {
        engine: kv260_engine(),
        heads: model.heads,
        kv_heads: model.kv_heads,
        ports: 2,
    };
    let bytes = 1 << 24;
    for (memory, what, tolerance) in [
        (latency_only(bytes, 1), "latency 1", 5.0),
        (latency_only(bytes, 30), "latency 30", 5.0),
        (kv260(bytes, 0, 41), "the KV260's DDR", 8.0),
    ] {
        for case in [(127, 1), (40, 8), (0, 16)] {
            let mut u = unit(&shape, &memory);
            let (clocks, m, err) = priced(&mut u, &shape, &model, case, memory.latency_clocks);
            println!(
                "{what}, {} row(s) from {}: unit {clocks}, model {} (engine {} + waiting {}), {err:+.2} %",
                case.1,
                case.0,
                m.total(),
                m.engine,
                m.waiting
            );
            assert!(!m.extrapolated);
            assert!(
                m.engine <= clocks,
                "{what} {case:?}: the engine alone takes {} > {clocks}",
                m.engine
            );
            assert!(
                err.abs() <= tolerance,
                "{what} {case:?}: model {} against the unit's {clocks} clocks ({err:+.2} %, tolerance {tolerance} %)",
                m.total()
            );
        }
    }
}

/// The sweep behind the attention unit's clock model (docs/bench/attention_unit_model.txt;
/// `cargo test -p tern-flows --test attention_unit bench_the_attention_unit_model
/// -- --ignored --nocapture`; minutes): five engines (32 MACs on 2 ports, the KV260's;
/// 32 MACs with tiles of 16 and blocks of 4; 16 MACs one row a block; 32 MACs on 1 port;
/// 8 MACs in blocks of 2), heads of 96 for the 0.73B's 16 query and KV heads and for 8
/// query heads on 2 KV heads, decode and prompt passes, on memories of 1 to 60 clocks'
/// latency without DRAM timing and on the KV260's DDR model.
#[test]
#[ignore]
fn bench_the_attention_unit_model() {
    let base = tern_model::ModelConfig::preset("bitnet-0.73b").unwrap();
    let gqa = tern_model::ModelConfig {
        heads: 8,
        kv_heads: 2,
        hidden: 8 * base.head_dim,
        ..base.clone()
    };
    let kv = kv260_engine();
    let variant = |macs: usize, tile: usize, block: usize| {
        AttentionConfigBuilder::from_config(&kv)
            .macs(macs)
            .tile(tile)
            .query_block(block)
            .build()
            .unwrap()
    };
    let engines = [
        (kv.clone(), 2),
        (variant(32, 16, 4), 2),
        (variant(16, 32, 1), 1),
        (variant(32, 32, 64), 1),
        (variant(8, 32, 2), 1),
    ];
    let cases = [
        (0, 1),
        (5, 1),
        (31, 1),
        (63, 1),
        (100, 1),
        (127, 1),
        (255, 1),
        (64, 2),
        (200, 3),
        (0, 4),
        (40, 8),
        (17, 9),
        (0, 16),
        (0, 32),
        (0, 64),
    ];
    let bytes = 1 << 24;
    println!("# cargo test -p tern-flows --test attention_unit bench_the_attention_unit_model -- --ignored --nocapture");
    println!("# per case: MACs, KV ports, tile, query block, heads/KV heads, memory, position, rows, unit clocks, model (engine + waiting), error %");
    let mut summary = vec![];
    for (engine, ports) in &engines {
        for m in [&base, &gqa] {
            let shape = AttentionUnitShape {
                engine: engine.clone(),
                heads: m.heads,
                kv_heads: m.kv_heads,
                ports: *ports,
            };
            let memories: Vec<(String, MemoryModel)> = [1, 8, 15, 30, 40, 60]
                .into_iter()
                .map(|l| (format!("latency {l}"), latency_only(bytes, l)))
                .chain([("KV260 DDR".to_string(), kv260(bytes, 0, 41))])
                .collect();
            for (what, memory) in memories {
                let mut errs = vec![];
                for &case in &cases {
                    let mut u = unit(&shape, &memory);
                    let (clocks, p, err) = priced(&mut u, &shape, m, case, memory.latency_clocks);
                    println!(
                        "{} | {} | {} | {} | {}/{} | {what} | {} | {} | {clocks} | {} ({} + {}) | {err:+.2}",
                        engine.attention.macs,
                        ports,
                        engine.attention.tile,
                        engine.attention.query_block,
                        m.heads,
                        m.kv_heads,
                        case.0,
                        case.1,
                        p.total(),
                        p.engine,
                        p.waiting
                    );
                    errs.push((clocks, err));
                }
                summary.push((
                    format!(
                        "{} MACs, {} port(s), tiles {}, blocks {}, {}/{} heads, {what}",
                        engine.attention.macs,
                        ports,
                        engine.attention.tile,
                        engine.attention.query_block,
                        m.heads,
                        m.kv_heads
                    ),
                    errs,
                ));
            }
        }
    }
    println!("# summary: |error| median, max, max over commands of 5000 clocks or more; mean error (sign: + the model is slower)");
    for (what, errs) in summary {
        let mut abs: Vec<f64> = errs.iter().map(|e| e.1.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let long = errs
            .iter()
            .filter(|e| e.0 >= 5000)
            .map(|e| e.1.abs())
            .fold(0.0, f64::max);
        let mean = errs.iter().map(|e| e.1).sum::<f64>() / errs.len() as f64;
        println!(
            "{what}: median {:.2} %, max {:.2} %, max (≥ 5000 clocks) {long:.2} %, mean {mean:+.2} %",
            abs[abs.len() / 2],
            abs[abs.len() - 1]
        );
    }
}
