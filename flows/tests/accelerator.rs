//! The one top's core (`tern_hdl::accelerator`): the sequencer and the four units on the
//! board's memory ports run whole passes of the program — a prompt, then decoded tokens
//! — and leave the memory, the next token and the LM head's scores as the golden
//! sequencer leaves them.

use tern_flows::program::sequencer_shape;
use tern_flows::rtl::lint::lint_files;
use tern_hdl::accelerator::shell::SHELL_MODULE;
use tern_hdl::accelerator::{accelerator_verilog, AcceleratorShape, ACCELERATOR_CORE_MODULE};
use tern_hdl::config::{Config, ConfigBuilder};
use tern_hdl::emit::{waivers, WAIVER_FILE};
use tern_hdl::program::HeadFormat;
use tern_hdl::units::{
    AttentionUnitShape, LmHeadUnitShape, MatmulUnitShape, VectorUnitShape, WeightWindow, WindowRam,
};
use tern_hdl::AttentionConfig;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::AttentionScales;

mod common;
mod kria_stand_in;

/// The tiny model's matmul engine: G = 3, 8 rows, 16 groups a clock, tiles of 32 × 96,
/// blocks of 2 rows.
fn tiny_matmul() -> Config {
    ConfigBuilder::tlmm(3, 8, 16)
        .workload(32, 96, 1)
        .token_block(2)
        .build()
        .unwrap()
}

/// The one top for the tiny model on `ports` memory ports, `memory_bytes` of memory.
fn tiny_top(ports: usize, memory_bytes: u64, attention: &AttentionConfig) -> AcceleratorShape {
    let c = ModelConfig::preset("tiny").unwrap();
    AcceleratorShape {
        sequencer: sequencer_shape(&c, common::DESIGN, memory_bytes, 16),
        matmul: MatmulUnitShape {
            ports,
            engine: tiny_matmul(),
            // A small weight window, so that its FIFO fills and its chunks end often.
            window: Some(WeightWindow {
                beats: 16,
                address_bits: tern_hdl::interconnect::memory_address_bits(memory_bytes),
                ram: WindowRam::Block,
            }),
        },
        lm_head: LmHeadUnitShape {
            ports,
            max_width: c.hidden,
            format: HeadFormat::Int8,
        },
        vector: VectorUnitShape {
            lanes: 2,
            max_n: c.ffn,
            max_head_dim: c.head_dim,
            ports: ports.min(2),
        },
        attention: AttentionUnitShape {
            engine: attention.clone(),
            heads: c.heads,
            kv_heads: c.kv_heads,
            ports: 1,
        },
    }
}

/// The tiny model's program (a random checkpoint of `seed`, its matrices in the tiny
/// matmul unit's tile layout, its LM head in `head`), the one top for it on `ports`
/// ports, and the KV260's memory at 250 MHz around it with `stall` percent of its
/// handshakes withheld.
struct TinyRun {
    seed: u64,
    ck: tern_model::checkpoint::Checkpoint,
    cfg: AttentionConfig,
    image: tern_flows::program::ProgramImage,
    memory: tern_sim::top_model::MemoryModel,
    shape: AcceleratorShape,
}

fn tiny_run(seed: u64, ports: usize, stall: u32, head: HeadFormat) -> TinyRun {
    let ck =
        tern_model::checkpoint::Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), seed);
    let cfg = common::attention();
    let matmul = MatmulUnitShape {
        ports,
        engine: tiny_matmul(),
        window: None,
    };
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let image = common::program(
        &ck,
        &cfg,
        &[AttentionScales::of(&cfg)],
        head,
        Some(&matmul),
        tern_flows::program::Banks::of(&board),
    )
    .unwrap();
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 20);
    let (mut memory, _) = tern_flows::memory::ported_memory_at(&board, 250.0, bytes).unwrap();
    memory.stall_percent = stall;
    memory.seed = seed;
    let mut shape = tiny_top(ports, bytes, &cfg);
    shape.lm_head.format = head;
    TinyRun {
        seed,
        ck,
        cfg,
        image,
        memory,
        shape,
    }
}

/// The core and the shell around it, each as the top module: the tiny model's on 1 and 2
/// ports, and the KV260's 0.73B one top (4 ports, the attention unit's KV caches on 2),
/// also with a 4-bit LM head and the vector unit at 4 lanes.
#[test]
fn the_one_top_is_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    let kv260 =
        tern_hdl::config::accelerator::Accelerator::from_path(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/model/kv260/accelerator.toml"
        )))
        .unwrap();
    let big = tern_flows::one_top::one_top_shape(
        &ModelConfig::preset("bitnet-0.73b").unwrap(),
        &kv260,
        2,
        common::DESIGN,
        1 << 32,
        128,
    )
    .unwrap();
    assert_eq!((big.ports(), big.attention.ports), (4, 2));
    // The same with a 4-bit LM head (groups of 128) and the vector unit at 4 lanes.
    let big4 = AcceleratorShape {
        lm_head: LmHeadUnitShape {
            format: HeadFormat::Int4 { group: 128 },
            ..big.lm_head
        },
        vector: VectorUnitShape {
            lanes: 4,
            ..big.vector
        },
        ..big.clone()
    };
    let shapes = [
        tiny_top(1, 1 << 24, &common::attention()),
        tiny_top(2, 1 << 24, &common::attention()),
        big,
        big4,
    ];
    for shape in shapes {
        let ports = shape.ports();
        let v = accelerator_verilog(&shape).unwrap();
        let mut names = vec![WAIVER_FILE.to_string()];
        std::fs::write(dir.path().join(WAIVER_FILE), waivers()).unwrap();
        for (name, text) in &v.files {
            std::fs::write(dir.path().join(name), text).unwrap();
            names.push(name.clone());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for top in [ACCELERATOR_CORE_MODULE, SHELL_MODULE] {
            let found = lint_files(dir.path(), &names, Some(top)).unwrap();
            assert!(
                found.is_empty(),
                "{top}, {ports} port(s):\n{}",
                found.join("\n")
            );
        }
    }
}

/// The tiny model's whole passes on the one top (its matrices in the matmul unit's tile
/// layout in memory, the KV caches in memory, every command on its unit, KV260 ports at
/// 250 MHz): a prompt of 8 and three decoded tokens give the golden sequencer's next
/// token, and every byte of memory afterwards — the LM head's scores, every vector in
/// scratch, the KV caches — is the golden's; nothing else is written. On one port, and on
/// two (the matmul and LM-head units' reads spread over both) with 20 % of the memory's
/// handshakes withheld; and with a 4-bit LM head (groups of 16, two a beat) on one port.
/// The clocks of the pass and of each unit print.
#[test]
fn whole_passes_on_the_one_top_leave_what_the_golden_sequencer_leaves() {
    for (ports, stall, head) in [
        (1, 0, HeadFormat::Int8),
        (2, 20, HeadFormat::Int8),
        (1, 0, HeadFormat::Int4 { group: 16 }),
    ] {
        whole_passes(ports, stall, head);
    }
}

fn whole_passes(ports: usize, stall: u32, head: HeadFormat) {
    use tern_sim::golden::bitnet::GoldenFabric;
    use tern_sim::golden::sequencer::run_pass;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let TinyRun {
        ck,
        cfg,
        image,
        memory,
        shape,
        ..
    } = tiny_run(31, ports, stall, head);
    let mut top = ModelCache::new(default_cache_root())
        .load_accelerator(&shape, &memory, None)
        .unwrap();
    top.write(0, &image.memory);
    let mut golden = image.memory.clone();
    let mut fabric = GoldenFabric::new(&ck, &cfg);
    let mut position = 0usize;
    let mut feed: Vec<usize> = vec![3, 141, 59, 26, 5, 35, 89, 79];
    for step in 0..4 {
        let want = run_pass(
            &ck.config,
            &cfg,
            &mut golden,
            0,
            common::DESIGN,
            position,
            &feed,
            &mut fabric,
        )
        .unwrap();
        let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
        let o = top.pass(0, position as u32, &ids, 50_000_000);
        let case = format!(
            "{ports} port(s), {stall} % stalls, {head:?} head, pass {step}: {} id(s) from {position}",
            ids.len()
        );
        assert_ne!(o.clocks, u64::MAX, "{case}: no end");
        assert_eq!(
            (o.error_code, o.next_token as usize, o.commands_run as usize),
            (0, want.next, want.commands_run),
            "{case}: {o:?}"
        );
        let got = top.read(0, golden.len());
        if let Some(i) = got.iter().zip(&golden).position(|(a, b)| a != b) {
            let end = (i + 16).min(got.len());
            panic!(
                "{case}: memory differs first at 0x{i:x}: got {:02x?}, want {:02x?}",
                &got[i..end],
                &golden[i..end]
            );
        }
        println!(
            "{case}: {} clocks (matmul {}, attention {}, vector {}, LM head {}, the sequencer's own {})",
            o.clocks_pass,
            o.clocks_matmul,
            o.clocks_attention,
            o.clocks_vector,
            o.clocks_lm_head,
            o.part_clocks()[4]
        );
        position += feed.len();
        feed = vec![want.next];
    }
}

/// The bench behind docs/bench/accelerator-kv260.txt: a 0.73B token decoded on the
/// KV260's one top (`docs/model/kv260/accelerator.toml`: the matmul unit on 4 ports, the
/// LM-head unit on 4, the vector unit at 2 lanes, the attention unit; the DDR model of
/// the KV260 at 250 MHz) at context 128: a random checkpoint, its program, the KV caches
/// of the 127 tokens before filled with random int8 (the golden sequencer reads the
/// same), then one pass. Its next token and the whole memory afterwards are the golden
/// sequencer's; the clocks print (`cargo test --release -p tern-flows --test accelerator
/// -- --ignored --nocapture`; a long Verilator build, then minutes).
#[test]
#[ignore]
fn bench_a_0_73b_token_on_the_one_top() {
    a_token_on_the_one_top("bitnet-0.73b", "accelerator.toml", 127, 1, 2);
}

/// The time to first token: a 0.73B prompt of 128 random ids from position 0 on the same
/// one top, one pass, checked as above (about 200 million clocks: tens of minutes).
#[test]
#[ignore]
fn bench_a_0_73b_prompt_of_128_on_the_one_top() {
    a_token_on_the_one_top("bitnet-0.73b", "accelerator.toml", 0, 128, 2);
}

/// The same prompt with the LM head in 4 bits and the vector unit at 4 lanes
/// (`one_top_head4.toml`): what the vector unit's lanes buy in prefill.
#[test]
#[ignore]
fn bench_a_0_73b_prompt_of_128_on_the_one_top_at_4_lanes() {
    a_token_on_the_one_top("bitnet-0.73b", "one_top_head4.toml", 0, 128, 4);
}

/// The same prompt on the top that fits the KV260's LUT target: the 4-bit head, the
/// vector unit at 2 lanes.
#[test]
#[ignore]
fn bench_a_0_73b_prompt_of_128_on_the_one_top_with_a_4_bit_head() {
    a_token_on_the_one_top("bitnet-0.73b", "one_top_head4.toml", 0, 128, 2);
}

/// The same for the 2B (`docs/model/kv260/one_top_2b.toml`: heads of 128, GQA 20/5,
/// the tied 128,256-row head in int8); about 12 GB of memory on the host.
#[test]
#[ignore]
fn bench_a_2b_token_on_the_one_top() {
    a_token_on_the_one_top("bitnet-2b", "one_top_2b.toml", 127, 1, 2);
}

/// The 0.73B token of `bench_a_0_73b_token_on_the_one_top` with the vector unit at 4
/// lanes (one 16-byte beat of i32 a clock) instead of 2.
#[test]
#[ignore]
fn bench_a_0_73b_token_on_the_one_top_at_4_lanes() {
    a_token_on_the_one_top("bitnet-0.73b", "accelerator.toml", 127, 1, 4);
}

/// The same token with the LM head in 4 bits (`one_top_head4.toml`: a mantissa per group
/// of 128), the vector unit at 2 and at 4 lanes.
#[test]
#[ignore]
fn bench_a_0_73b_token_on_the_one_top_with_a_4_bit_head() {
    a_token_on_the_one_top("bitnet-0.73b", "one_top_head4.toml", 127, 1, 2);
    a_token_on_the_one_top("bitnet-0.73b", "one_top_head4.toml", 127, 1, 4);
}

/// The 2B token with the LM head in 4 bits (`one_top_2b_head4.toml`), the vector unit at
/// 4 lanes; about 12 GB of memory on the host.
#[test]
#[ignore]
fn bench_a_2b_token_on_the_one_top_with_a_4_bit_head() {
    a_token_on_the_one_top("bitnet-2b", "one_top_2b_head4.toml", 127, 1, 4);
}

/// The same 2B token with the vector unit at 2 lanes: the lane count whose 0.73B top
/// fits the KV260's LUT target (its 4-lane top does not, BENCHMARKS.md).
#[test]
#[ignore]
fn bench_a_2b_token_on_the_one_top_with_a_4_bit_head_at_2_lanes() {
    a_token_on_the_one_top("bitnet-2b", "one_top_2b_head4.toml", 127, 1, 2);
}

/// The benches' clock: 250 MHz (TeLLMe v2's), or `TERN_BENCH_MHZ` (e.g. the clock
/// docs/clock.md claims). The DDR model's timing and the ports' bytes a clock follow it.
fn bench_mhz() -> f64 {
    match std::env::var("TERN_BENCH_MHZ") {
        Err(_) => 250.0,
        Ok(v) => v
            .parse()
            .ok()
            .filter(|m: &f64| (1.0..=1000.0).contains(m))
            .unwrap_or_else(|| panic!("TERN_BENCH_MHZ = {v:?}: a clock in MHz, 1..=1000")),
    }
}

/// One pass of `rows` ids at `position` (the caches of the tokens before it random).
fn a_token_on_the_one_top(
    preset: &str,
    description: &str,
    position: usize,
    rows: usize,
    lanes: usize,
) {
    use rand::{Rng, SeedableRng};
    use tern_hdl::program::{AttentionRecord, KvCacheFormat, ATTENTION_RECORD_BYTES};
    use tern_model::checkpoint::Checkpoint;
    use tern_sim::golden::bitnet::GoldenFabric;
    use tern_sim::golden::sequencer::run_pass;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let docs = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/model/kv260/"));
    let c = ModelConfig::preset(preset).unwrap();
    let acc =
        tern_hdl::config::accelerator::Accelerator::from_path(&docs.join(description)).unwrap();
    let attention = acc.attention.clone();
    let t0 = std::time::Instant::now();
    let ck = Checkpoint::random(&c, 73);
    let draft =
        tern_flows::one_top::one_top_shape(&c, &acc, lanes, common::DESIGN, 1 << 32, 128).unwrap();
    let image = tern_flows::one_top::program(
        &ck,
        &attention,
        &[AttentionScales::of(&attention)],
        &acc,
        &draft,
        128,
    )
    .unwrap();
    println!(
        "checkpoint and program: {:.1} s, {} MB of memory",
        t0.elapsed().as_secs_f64(),
        image.memory.len() >> 20
    );
    let mut memory = image.memory.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(73);
    let cache = KvCacheFormat {
        tile: attention.attention.tile,
        head_dim: c.head_dim,
    };
    for l in 0..c.layers {
        let at = image.header.attention_at as usize + l * ATTENTION_RECORD_BYTES;
        let r = AttentionRecord::decode(&memory[at..at + ATTENTION_RECORD_BYTES]);
        for h in 0..c.kv_heads as u64 {
            let head = r.cache_at + h * r.head_stride;
            for i in 0..position {
                for off in [cache.key_offset(i), cache.value_offset(i)] {
                    let from = (head + off) as usize;
                    for b in &mut memory[from..from + c.head_dim] {
                        *b = rng.gen_range(-40i8..=40) as u8;
                    }
                }
            }
        }
    }
    let bytes = (memory.len() as u64).next_multiple_of(1 << 20);
    let board = tern_boards::Board::resolve("kv260").unwrap();
    let mhz = bench_mhz();
    let (ddr, _) = tern_flows::memory::ported_memory_at(&board, mhz, bytes).unwrap();
    let shape =
        tern_flows::one_top::one_top_shape(&c, &acc, lanes, common::DESIGN, bytes, 128).unwrap();
    let t0 = std::time::Instant::now();
    let mut top = ModelCache::new(default_cache_root())
        .load_accelerator(&shape, &ddr, None)
        .unwrap();
    println!(
        "the one top built (or found): {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    top.write(0, &memory);
    let ids: Vec<usize> = (0..rows).map(|i| (1234 + 977 * i) % c.vocab).collect();
    let t0 = std::time::Instant::now();
    let want = run_pass(
        &c,
        &attention,
        &mut memory,
        0,
        common::DESIGN,
        position,
        &ids,
        &mut GoldenFabric::new(&ck, &attention),
    )
    .unwrap();
    println!("the golden pass: {:.1} s", t0.elapsed().as_secs_f64());
    let t0 = std::time::Instant::now();
    let ids32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    let o = top.pass(0, position as u32, &ids32, 4_000_000_000);
    println!("the one top's pass: {:.1} s", t0.elapsed().as_secs_f64());
    assert_ne!(o.clocks, u64::MAX, "no end: {o:?}");
    assert_eq!(
        (o.error_code, o.next_token as usize),
        (0, want.next),
        "{o:?}"
    );
    let got = top.read(0, memory.len());
    if let Some(i) = got.iter().zip(&memory).position(|(a, b)| a != b) {
        panic!("memory differs first at 0x{i:x}");
    }
    let ms = |clocks: u64| clocks as f64 / mhz / 1e3;
    let part_clocks = o.part_clocks();
    let own = part_clocks[4];
    println!(
        "{preset}, {rows} id(s) at position {position} on the KV260's one top of {description} (vector unit at {lanes} lanes), {mhz} MHz: {} clocks = {:.2} ms ({:.1} passes/s): matmul {} ({:.2} ms), attention {} ({:.2} ms), vector {} ({:.2} ms), LM head {} ({:.2} ms), the sequencer's own {} ({:.2} ms); DDR {:?}",
        o.clocks_pass,
        ms(o.clocks_pass),
        1e3 / ms(o.clocks_pass),
        o.clocks_matmul,
        ms(o.clocks_matmul),
        o.clocks_attention,
        ms(o.clocks_attention),
        o.clocks_vector,
        ms(o.clocks_vector),
        o.clocks_lm_head,
        ms(o.clocks_lm_head),
        own,
        ms(own),
        o.ddr
    );
    // What the DRAM read while each part ran, and at what rate: at 250 MHz the ports'
    // bound is 61 bytes a clock with refresh (BENCHMARKS.md).
    let parts: Vec<String> = tern_sim::cosim::units::PASS_UNITS
        .iter()
        .zip(o.read_while.iter().zip(part_clocks))
        .map(|(name, (&bytes, clocks))| {
            format!(
                "{name} {bytes} ({:.1} B/clock)",
                bytes as f64 / clocks.max(1) as f64
            )
        })
        .collect();
    println!("bytes read while each part ran: {}", parts.join(", "));
    assert_eq!(
        o.read_while.iter().sum::<u64>(),
        o.ddr.bytes_read,
        "the parts' bytes do not add up to the pass's"
    );
}

/// The one top's FuseSoC core works with FuseSoC itself (its lint target: Verilator
/// -Wall over the shell and everything under it), and kernel.xml is well-formed XML
/// naming the kernel's arguments at their registers.
#[test]
fn the_one_top_package_works_with_fusesoc_and_parses_as_xml() {
    use std::process::Command;
    let fusesoc = Command::new("fusesoc").arg("--version").output();
    assert!(
        fusesoc.as_ref().is_ok_and(|o| o.status.success()),
        "fusesoc is needed for this test (run scripts/setup.sh): {fusesoc:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let files =
        tern_hdl::accelerator::accelerator_package(&tiny_top(2, 1 << 24, &common::attention()))
            .unwrap();
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let o = Command::new("fusesoc")
        .current_dir(dir.path())
        .args(["--cores-root", ".", "run", "--target", "lint"])
        .arg(tern_hdl::accelerator::CORE_NAME)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && !log.contains("ERROR"),
        "fusesoc lint: {log}"
    );
    let o = Command::new("python3")
        .current_dir(dir.path())
        .args([
            "-c",
            "import xml.etree.ElementTree as E; k = E.parse('kernel.xml').getroot().find('kernel'); \
             print(k.get('name'), [p.get('name') for p in k.iter('port')], \
             [(a.get('name'), a.get('offset'), a.get('port')) for a in k.iter('arg')])",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "tern_accelerator ['s_axi_control', 'm0', 'm1'] [('program', '0x10', 'm0'), ('position', '0x18', 's_axi_control')]"
    );
}

/// A corrupted command that would write outside scratch — a `Matmul`'s or a `Dequant`'s
/// results aimed at the embedding table — stops the pass with code 21 at that command,
/// as the golden sequencer stops; the write guards let nothing through: every byte
/// outside scratch is as it was.
#[test]
fn a_command_writing_outside_scratch_stops_with_code_21_and_writes_nothing_there() {
    use tern_hdl::program::{error_code, Command, COMMAND_BYTES};
    use tern_sim::golden::bitnet::GoldenFabric;
    use tern_sim::golden::sequencer::run_pass;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let TinyRun {
        ck,
        cfg,
        image,
        memory,
        shape,
        ..
    } = tiny_run(41, 1, 0, HeadFormat::Int8);
    let mut top = ModelCache::new(default_cache_root())
        .load_accelerator(&shape, &memory, None)
        .unwrap();
    let Command::Embed { table, .. } = image.commands[0] else {
        panic!("command 0 is {:?}", image.commands[0])
    };
    let h = image.header;
    let (lo, hi) = (
        h.scratch_at as usize,
        (h.scratch_at + h.scratch_bytes) as usize,
    );
    let first = |op: u8| {
        (0..image.commands.len())
            .find(|&i| image.commands[i].opcode() == op)
            .unwrap()
    };
    for i in [first(3), first(4)] {
        let bad = match image.commands[i] {
            Command::Matmul {
                layer,
                which,
                src,
                weights,
                m,
                k,
                ..
            } => Command::Matmul {
                layer,
                which,
                src,
                weights,
                dst: table,
                m,
                k,
            },
            Command::Dequant {
                src,
                factors,
                m,
                scale,
                add,
                ..
            } => Command::Dequant {
                src,
                factors,
                dst: table,
                m,
                scale,
                add,
            },
            ref other => panic!("command {i} is {other:?}"),
        };
        let mut m = image.memory.clone();
        let at = h.commands_at as usize + i * COMMAND_BYTES;
        m[at..at + COMMAND_BYTES].copy_from_slice(&bad.encode());
        let ids = [5usize, 6, 7];
        let e = run_pass(
            &ck.config,
            &cfg,
            &mut m.clone(),
            0,
            common::DESIGN,
            0,
            &ids,
            &mut GoldenFabric::new(&ck, &cfg),
        )
        .unwrap_err();
        assert_eq!(
            (e.code(), e.command()),
            (error_code::OUT_OF_REGION, Some(i)),
            "{e}"
        );
        top.write(0, &m);
        let o = top.pass(0, 0, &[5, 6, 7], 10_000_000);
        assert_eq!(
            (o.error_code, o.error_command),
            (u32::from(error_code::OUT_OF_REGION), i as u32),
            "command {i} ({:?}): {o:?}",
            bad
        );
        let got = top.read(0, m.len());
        assert!(
            got[..lo] == m[..lo] && got[hi..] == m[hi..],
            "command {i}: a byte outside scratch was written"
        );
    }
}

/// The same passes through the shell (`tern_accelerator`) on its simulated board, made
/// by tern-host's one-top driver over the board's transport (the code a host runs on a
/// card): the prompt's ids written to TOKEN, POSITION, ap_start; each decoded token one
/// write to STEP; every pass ended by the interrupt, its result read from the registers.
/// The next tokens and the memory are the golden sequencer's, the shell's clock counters
/// the core's; a decoded token costs fewer register accesses than the prompt. A board of
/// another design is refused when opened, and a transport without an interrupt ends the
/// pass with a timeout, not a hang.
#[test]
fn the_shell_runs_passes_through_the_host_driver() {
    use std::time::Duration;
    use tern_host::one_top::{OneTop, ShellBoard};
    use tern_host::Transport;
    use tern_sim::golden::bitnet::GoldenFabric;
    use tern_sim::golden::sequencer::run_pass;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let TinyRun {
        ck,
        cfg,
        image,
        memory,
        shape,
        ..
    } = tiny_run(37, 1, 0, HeadFormat::Int8);
    let cache = ModelCache::new(default_cache_root());
    let board = ShellBoard::new(&shape, &memory, &cache, None, "tiny".into()).unwrap();
    let err = OneTop::open(board, Some(common::DESIGN ^ 1)).err().unwrap();
    assert!(err.to_string().contains("carries design"), "{err}");
    let board = ShellBoard::new(&shape, &memory, &cache, None, "tiny".into()).unwrap();
    let mut top = OneTop::open(board, Some(common::DESIGN)).unwrap();
    assert_eq!(top.info().card_bytes, memory.bytes);
    top.write_memory(0, &image.memory).unwrap();
    let mut golden = image.memory.clone();
    let mut fabric = GoldenFabric::new(&ck, &cfg);
    let (mut position, mut feed) = (0usize, vec![7usize, 3, 99, 4, 250]);
    let mut accesses = vec![];
    for step in 0..3 {
        let want = run_pass(
            &ck.config,
            &cfg,
            &mut golden,
            0,
            common::DESIGN,
            position,
            &feed,
            &mut fabric,
        )
        .unwrap();
        let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
        let before = top.transport_mut().cycles();
        let o = top
            .pass(0, position as u32, &ids, Duration::from_secs(600))
            .unwrap();
        let board_clocks = top.transport_mut().cycles() - before;
        let case = format!("pass {step}: {} id(s) from {position}", ids.len());
        assert_eq!(
            (o.error_code, o.next_token as usize, o.commands_run as usize),
            (0, want.next, want.commands_run),
            "{case}: {o:?}"
        );
        let units = o.matmul_clocks + o.attention_clocks + o.vector_clocks + o.lm_head_clocks;
        assert!(
            units > 0 && units < o.clocks && o.clocks < board_clocks,
            "{case}: {o:?}, {board_clocks} clocks on the board"
        );
        assert!(
            top.read_memory(0, golden.len()).unwrap() == golden,
            "{case}: the memory differs"
        );
        accesses.push(o.register_accesses);
        position += feed.len();
        feed = vec![want.next];
    }
    assert!(
        accesses[1] == accesses[2] && accesses[1] + 5 < accesses[0],
        "register accesses a pass: {accesses:?}"
    );
    // No interrupt can come with it disabled and nothing started.
    let t = top.transport_mut();
    let err = t.wait_irq(0, Duration::from_millis(50)).unwrap_err();
    assert!(err.to_string().contains("no answer"), "{err}");
}

/// A host whose buffer sits at a bus address (a Kria board's: the PS DDR, reached from
/// the fabric at the buffer's physical address) gives it in MEMORY_BASE: the memory
/// ports add it to every address, while the program and the driver keep card addresses
/// from 0. The driver sets it when it opens the board; the passes are the golden
/// sequencer's there, byte for byte. With the base set back to 0 the ports miss the
/// memory and the pass ends with an error, not a hang.
#[test]
fn the_shell_finds_its_memory_at_the_base_the_host_gives() {
    use tern_host::one_top::OneTop;
    const BASE: u64 = 0x8_6000_0000;
    let run = tiny_run(37, 1, 0, HeadFormat::Int8);
    let placed = || {
        let mut board = shell_board(&run);
        board.place_memory_at(BASE);
        let mut top = OneTop::open(board, Some(common::DESIGN)).unwrap();
        top.write_memory(0, &run.image.memory).unwrap();
        top
    };
    let feed = [7usize, 3, 99, 4, 250];

    // The base taken away: every read lands below the memory (DECERR).
    let mut lost = placed();
    lost.set_memory_base(0).unwrap();
    let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
    match lost.pass(0, 0, &ids, PASS_TIMEOUT) {
        Ok(o) => assert_ne!(o.error_code, 0, "a pass without its memory: {o:?}"),
        Err(e) => panic!("the pass should end with its error code, not {e}"),
    }

    let mut top = placed();
    assert_eq!(memory_base_register(&mut top), BASE);
    passes_match_golden(&mut top, &run, &[&feed], &format!("at base 0x{BASE:x}"));
}

/// The longest one pass of the tiny model may take on the simulated board.
const PASS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the accelerator's MEMORY_BASE registers hold.
fn memory_base_register<T: tern_host::Transport>(top: &mut tern_host::one_top::OneTop<T>) -> u64 {
    use tern_hdl::accelerator::shell::{MEMORY_BASE, MEMORY_BASE_HI};
    let t = top.transport_mut();
    u64::from(t.read32(MEMORY_BASE.into()).unwrap())
        | u64::from(t.read32(MEMORY_BASE_HI.into()).unwrap()) << 32
}

/// Run `feeds` as consecutive passes (a prompt, then decoded tokens) on a board the
/// tiny run's program was written to, each against the golden sequencer: the next
/// token, and the whole memory afterwards, byte for byte.
fn passes_match_golden<T: tern_host::Transport>(
    top: &mut tern_host::one_top::OneTop<T>,
    run: &TinyRun,
    feeds: &[&[usize]],
    context: &str,
) {
    let mut golden = run.image.memory.clone();
    let mut fabric = tern_sim::golden::bitnet::GoldenFabric::new(&run.ck, &run.cfg);
    let mut position = 0;
    for (step, feed) in feeds.iter().enumerate() {
        let want = tern_sim::golden::sequencer::run_pass(
            &run.ck.config,
            &run.cfg,
            &mut golden,
            0,
            common::DESIGN,
            position,
            feed,
            &mut fabric,
        )
        .unwrap();
        let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
        let o = top.pass(0, position as u32, &ids, PASS_TIMEOUT).unwrap();
        assert_eq!(
            (o.error_code, o.next_token as usize),
            (0, want.next),
            "{context}, step {step} (position {position}, seed {}): {o:?}",
            run.seed
        );
        let got = top.read_memory(0, golden.len()).unwrap();
        if let Some(at) = got.iter().zip(&golden).position(|(g, w)| g != w) {
            panic!(
                "{context}, step {step}: the memory differs from the golden sequencer's first \
                 at byte 0x{at:x} ({} != {})",
                got[at], golden[at]
            );
        }
        position += feed.len();
    }
}

/// A Kria board's host path, end to end: the transport finds the accelerator's UIO
/// device and its u-dma-buf buffer by name in sysfs, writes the program through the
/// buffer's device file, gives the accelerator the buffer's physical address, and runs
/// a prompt and decoded tokens, each start one register write and each end one
/// interrupt taken through the UIO file (unmasked before every wait). A board whose
/// pass a dead host left running is refused until it ends, then its raised interrupt
/// is acknowledged. Against the
/// stand-in of tests/kria_stand_in, whose board has its memory at that address: the
/// passes are the golden sequencer's, byte for byte.
#[test]
fn a_kria_board_runs_passes_through_uio_and_u_dma_buf() {
    use std::sync::atomic::Ordering;
    use tern_host::kria::KriaTransport;
    use tern_host::one_top::OneTop;
    use tern_host::Transport;
    const PHYS: u64 = 0x6000_0000;
    let run = tiny_run(37, 1, 0, HeadFormat::Int8);
    let Some((stand_in, devices)) = kria_board(&run, PHYS) else {
        return;
    };
    assert_eq!(
        devices.uio,
        stand_in.root().join("dev").join(kria_stand_in::UIO_NODE)
    );
    let open = || {
        let t = KriaTransport::with_registers(devices.clone(), stand_in.registers()).unwrap();
        OneTop::open(t, Some(common::DESIGN))
    };
    // A host that died mid-pass: it wrote the program, started a prompt with the
    // interrupt enabled, and went. While the pass runs the board is refused (its memory
    // is the pass's); once it ends its interrupt stays raised, and opening the board
    // acknowledges it, so the first wait below is for the first pass's end.
    {
        use tern_hdl::accelerator::shell::{CONTROL, GIE, IER, POSITION, TOKEN};
        let mut dead = open().unwrap();
        dead.write_memory(0, &run.image.memory).unwrap();
        let t = dead.transport_mut();
        for (reg, value) in [(GIE, 1), (IER, 1), (TOKEN, 7), (TOKEN, 3), (POSITION, 0)] {
            t.write32(reg.into(), value).unwrap();
        }
        t.write32(CONTROL.into(), 1).unwrap();
    }
    let busy = open().err().expect("a board mid-pass should be refused");
    assert!(matches!(busy, tern_host::HostError::Busy), "{busy}");
    let raised = stand_in.board.with(|b| b.wait_irq(1, PASS_TIMEOUT).is_ok());
    assert!(raised, "the abandoned pass should raise the interrupt");
    let mut top = open().unwrap();
    assert!(
        top.info().description.starts_with("kria:"),
        "{:?}",
        top.info()
    );
    assert_eq!(top.info().card_bytes, run.memory.bytes);
    assert_eq!(memory_base_register(&mut top), PHYS);
    top.write_memory(0, &run.image.memory).unwrap();

    let feeds: [&[usize]; 3] = [&[7, 3, 99, 4, 250], &[11], &[200]];
    passes_match_golden(&mut top, &run, &feeds, "kria: through the stand-in");
    let seen = &stand_in.seen;
    assert_eq!(
        seen.interrupts.load(Ordering::SeqCst),
        3,
        "one interrupt a pass"
    );
    assert_eq!(
        seen.unmasks.load(Ordering::SeqCst),
        3,
        "unmasked before each wait"
    );

    // Past the buffer's end: refused before the device file is touched.
    let t = top.transport_mut();
    let err = t.dma_read(run.memory.bytes, &mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(t.reset().unwrap_err().to_string().contains("xmutil"));
}

/// A Kria board served to a host elsewhere (`tern serve --board-uri kria:`): the board's
/// ARM runs the transport behind the socket, the host the driver and the golden model.
/// The buffer's physical address reaches the host in `info`, and its driver sets
/// MEMORY_BASE through the wire; the passes are the golden sequencer's.
#[test]
fn a_kria_board_is_served_to_a_host_elsewhere() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tern_host::kria::KriaTransport;
    use tern_host::one_top::OneTop;
    use tern_host::server::{serve, Listen, ServeOptions};
    const PHYS: u64 = 0x7000_0000;
    let run = tiny_run(37, 1, 0, HeadFormat::Int8);
    let Some((stand_in, devices)) = kria_board(&run, PHYS) else {
        return;
    };
    let mut board = KriaTransport::with_registers(devices, stand_in.registers()).unwrap();
    let socket = stand_in.root().join("tern.sock");
    let listen = Listen::parse(&format!("unix:{}", socket.display())).unwrap();
    let shutdown = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (listen, board, shutdown) = (&listen, &mut board, &shutdown);
        let server = scope.spawn(move || {
            serve(listen, board, &ServeOptions::default(), shutdown, |_| {
                tx.send(()).unwrap()
            })
        });
        rx.recv().unwrap();
        let client = tern_host::device::connect(
            &format!("unix:{}", socket.display()),
            &tern_host::OpenOptions::default(),
        )
        .unwrap();
        let mut top = OneTop::open(client, Some(common::DESIGN)).unwrap();
        assert_eq!(top.info().memory_base, PHYS);
        assert_eq!(memory_base_register(&mut top), PHYS);
        top.write_memory(0, &run.image.memory).unwrap();
        let feeds: [&[usize]; 2] = [&[7, 3, 99, 4, 250], &[11]];
        passes_match_golden(&mut top, &run, &feeds, "kria: served over a socket");
        drop(top);
        shutdown.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
}

/// The tiny run's one top behind its shell on a fresh simulated board.
fn shell_board(run: &TinyRun) -> tern_host::one_top::ShellBoard {
    shell_board_of(&run.shape, &run.memory)
}

fn shell_board_of(
    shape: &AcceleratorShape,
    memory: &tern_sim::top_model::MemoryModel,
) -> tern_host::one_top::ShellBoard {
    let cache = tern_sim::verilator::ModelCache::new(tern_sim::verilator::default_cache_root());
    tern_host::one_top::ShellBoard::new(shape, memory, &cache, None, "tiny".into()).unwrap()
}

/// The Kria stand-in around the tiny run's one top, its buffer at `phys`, and the
/// devices the transport finds there by their default names (None: no FUSE here).
fn kria_board(
    run: &TinyRun,
    phys: u64,
) -> Option<(kria_stand_in::KriaStandIn, tern_host::kria::KriaDevices)> {
    use tern_host::kria::{KriaDevices, DEFAULT_BUFFER, DEFAULT_UIO};
    let (shape, memory) = (run.shape.clone(), run.memory);
    let stand_in =
        kria_stand_in::mount(move || shell_board_of(&shape, &memory), phys, memory.bytes)?;
    let devices = KriaDevices::find(stand_in.root(), DEFAULT_UIO, DEFAULT_BUFFER).unwrap();
    Some((stand_in, devices))
}
