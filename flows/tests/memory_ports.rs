//! The one top's side of the board's memory ports (docs/memory_ports.md): the stripe
//! reader under Verilator on the simulated board's DDR, one `DdrPort` per port of the
//! board file, sharing one DRAM.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_boards::Board;
use tern_flows::memory::ported_memory_at;
use tern_flows::rtl::lint::lint_files;
use tern_hdl::interconnect::StripeShape;
use tern_sim::cosim::stripe::StripeReaderModel;
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::{default_cache_root, ModelCache};

/// The KV260's memory at 250 MHz (TeLLMe's clock) through its four HP ports: `bytes`
/// modelled.
fn kv260(bytes: u64) -> MemoryModel {
    let board = Board::resolve("kv260").unwrap();
    let (model, ports) = ported_memory_at(&board, 250.0, bytes).unwrap();
    assert_eq!(ports.len(), 4, "the KV260's HP ports");
    model
}

/// The stripe reader of `ports` ports (bursts of 16 beats, 4 in flight a port) on
/// `memory`; `any_port`: the reader whose bursts go to any free port (the weight
/// window's).
fn reader(ports: usize, memory: &MemoryModel, any_port: bool) -> StripeReaderModel {
    let shape = StripeShape {
        ports,
        burst: 16,
        outstanding: 4,
    };
    let cache = ModelCache::new(default_cache_root());
    if any_port {
        cache.load_any_port_reader(shape, memory, None)
    } else {
        cache.load_stripe_reader(shape, memory, None)
    }
    .unwrap()
}

/// Every region comes out whole and in order, byte for byte the memory's, as words of
/// `ports` beats with exactly one `out_last` on the final word and nothing after done:
/// 1, 2 and 4 ports, regions of 1 to 3,000 beats at random places (seed 41), with and
/// without a consumer that stalls, on the KV260's DDR with its refresh, rows and
/// per-port rate; and with a memory that stalls its own handshakes at random. No burst
/// crosses a 4 KiB boundary (AXI). A region reaching beyond memory raises the error bit.
/// The same for the reader whose bursts go to any free port, while other units want
/// its ports at random (runs of `port_busy` with the stalling consumer).
#[test]
fn regions_come_out_whole_and_in_order_through_the_ports() {
    const BYTES: u64 = 1 << 20;
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let image: Vec<u8> = (0..BYTES).map(|_| rng.gen()).collect();
    for (ports, stalling_memory, any_port) in [
        (1usize, false, false),
        (2, false, false),
        (4, false, false),
        (4, true, false),
        (1, false, true),
        (2, true, true),
        (4, false, true),
        (4, true, true),
    ] {
        let mut memory = kv260(BYTES);
        if stalling_memory {
            memory.stall_percent = 20;
            memory.seed = 7;
        }
        let mut r = reader(ports, &memory, any_port);
        r.write(0, &image);
        for case in 0..30u64 {
            let beats = match case {
                0 => 1,
                1 => 16 * ports as u32 + 1,
                2 => 40,
                _ => rng.gen_range(1..3000u32),
            };
            let max_start = BYTES / 16 - u64::from(beats);
            // Case 2's first burst would cross a 4 KiB boundary 3 beats in.
            let addr = if case == 2 {
                8192 - 48
            } else {
                16 * rng.gen_range(0..=max_start)
            };
            let stall = if case % 2 == 0 { 0 } else { 100 + case };
            let (out, o) = r.read(addr, beats, stall);
            let at = format!("{ports} ports (any port: {any_port}), case {case}: {beats} beats at 0x{addr:x} (stalls {stall}, memory stalls {stalling_memory})");
            assert_ne!(o.clocks, u64::MAX, "{at}: no done ({o:?})");
            assert_eq!(o.error, 0, "{at}");
            assert_eq!(o.beats, u64::from(beats), "{at}: beats out");
            let words = u64::from(beats).div_ceil(ports as u64);
            assert_eq!((o.words, o.lasts, o.last_at), (words, 1, words - 1), "{at}");
            let want = &image[addr as usize..addr as usize + 16 * beats as usize];
            if let Some(i) = (0..want.len()).find(|&i| out[i] != want[i]) {
                panic!(
                    "{at}: first differing byte {i} (beat {}): 0x{:02x}, memory 0x{:02x}",
                    i / 16,
                    out[i],
                    want[i]
                );
            }
        }
        // AXI: no burst crosses a 4 KiB boundary (the regions start anywhere).
        assert_eq!(r.traffic()[4], 0, "{ports} ports: bursts across 4 KiB");
        let (_, o) = r.read(BYTES - 16 * 8, 64, 0);
        assert!(
            o.clocks != u64::MAX && o.error == 1,
            "{ports} ports beyond memory: {o:?}"
        );
    }
}

/// A long read (4 MiB) through 1, 2 and 4 of the KV260's HP ports at 250 MHz on its DDR
/// model: what the ports move, against what they can carry (16 B a clock each) and
/// what the DRAM sustains. Prints the figures (docs/bench/memory_ports.txt).
#[test]
fn four_hp_ports_carry_their_width_from_the_ddr() {
    const BYTES: u64 = 8 << 20;
    let beats = (4u32 << 20) / 16;
    let board = Board::resolve("kv260").unwrap();
    let sustained = board.memory.sustained_gbyte_per_s() * 1e3 / 250.0;
    let mut rates = Vec::new();
    for ports in [1usize, 2, 4] {
        let memory = kv260(BYTES);
        let mut r = reader(ports, &memory, false);
        let (_, o) = r.read(0, beats, 0);
        assert!(o.clocks != u64::MAX && o.beats == u64::from(beats), "{o:?}");
        let per_clock = 16.0 * f64::from(beats) / o.clocks as f64;
        let cap = (16.0 * ports as f64).min(sustained);
        let [bytes, bursts, refreshes, misses, _] = r.traffic();
        println!(
            "KV260 DDR at 250 MHz, {ports} HP port(s): 4 MiB in {} clocks = {per_clock:.2} B/clock = {:.2} GB/s \
             ({:.1} % of min(ports {:.0}, DRAM sustained {sustained:.2}) B/clock); {bytes} bytes in {bursts} bursts, \
             {refreshes} refreshes, {misses} row misses",
            o.clocks,
            per_clock * 0.25,
            100.0 * per_clock / cap,
            16.0 * ports as f64
        );
        assert!(
            per_clock > 0.9 * cap,
            "{ports} ports move {per_clock:.2} B/clock of {cap:.2}"
        );
        rates.push(per_clock);
    }
    assert!(
        rates[2] > 3.5 * rates[0],
        "four ports do not move ~four times one port's: {rates:?}"
    );
}

/// The stripe reader (in turn and any port), the read ports, the write arbiter and the
/// row writer at several shapes (1 to 8 ports) pass `verilator --lint-only -Wall`.
#[test]
fn the_stripe_reader_verilog_is_lint_clean() {
    use tern_hdl::interconnect::{
        any_port_reader_verilog, read_ports_verilog, row_writer_verilog, stripe_reader_verilog,
        write_arbiter_verilog,
    };
    let dir = tempfile::tempdir().unwrap();
    for (ports, burst, outstanding) in [(1, 16, 4), (2, 8, 2), (4, 16, 4), (4, 4, 1), (8, 16, 8)] {
        let shape = StripeShape {
            ports,
            burst,
            outstanding,
        };
        let readers = 2 + ports % 2;
        for (name, text) in [
            (
                "tern_stripe_reader.v",
                stripe_reader_verilog(shape).unwrap(),
            ),
            (
                "tern_any_port_reader.v",
                any_port_reader_verilog(
                    shape,
                    shape.outstanding.div_ceil(2),
                    "tern_any_port_reader",
                )
                .unwrap(),
            ),
            (
                "tern_read_ports.v",
                read_ports_verilog(readers, shape, 16).unwrap(),
            ),
            (
                "tern_write_arbiter.v",
                write_arbiter_verilog(ports.clamp(2, 8), 1 << ports.min(6)).unwrap(),
            ),
            (
                "tern_row_writer.v",
                row_writer_verilog(16 << (ports % 4)).unwrap(),
            ),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
            let found = lint_files(dir.path(), &[name], None).unwrap();
            assert!(found.is_empty(), "{name} {shape:?}:\n{}", found.join("\n"));
        }
    }
}

/// Two units streaming at once through the same ports (a read arbiter on each): one
/// long region (the LM head's weights) beside a stream of short regions (its
/// mantissas), 1, 2 and 4 ports with 16 bursts in flight an arbiter, and 2 ports with
/// one (seed 43). Each stream comes out whole and in order, one `out_last` per region;
/// with 16 in flight together they move at least 3/4 of what the ports carry (the short
/// regions' row misses on the shared DRAM cost the rest; the figures print).
#[test]
fn two_readers_share_the_ports_and_each_stream_stays_whole() {
    const BYTES: u64 = 4 << 20;
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let image: Vec<u8> = (0..BYTES).map(|_| rng.gen()).collect();
    for (ports, in_flight) in [(1usize, 16usize), (2, 16), (4, 16), (2, 1)] {
        let memory = kv260(BYTES);
        let mut shared = ModelCache::new(default_cache_root())
            .load_read_ports(
                StripeShape {
                    ports,
                    burst: 16,
                    outstanding: 4,
                },
                in_flight,
                &memory,
            )
            .unwrap();
        shared.write(0, &image);
        let long = [(0u64, 16384u32)]; // 256 KiB
        let short: Vec<(u64, u32)> = (0..60)
            .map(|_| {
                let beats = rng.gen_range(1..40u32);
                (16 * rng.gen_range(20_000..(BYTES / 16 - 40)), beats)
            })
            .collect();
        for stall in [0u64, 77] {
            let ([a, b], o) = shared.read([&long, &short], stall);
            let at = format!("{ports} ports, {in_flight} in flight, stalls {stall}");
            assert!(
                o.clocks.iter().all(|&c| c != u64::MAX),
                "{at}: a reader never finished: {o:?}"
            );
            assert_eq!(o.errors, [0, 0], "{at}");
            let short_beats: u64 = short.iter().map(|r| u64::from(r.1)).sum();
            assert_eq!(o.beats, [16384, short_beats], "{at}: beats out");
            assert_eq!(o.lasts, [1, short.len() as u64], "{at}: lasts");
            assert!(a == image[..a.len()], "{at}: the long stream differs");
            let mut want = Vec::new();
            for &(addr, beats) in &short {
                want.extend_from_slice(&image[addr as usize..addr as usize + 16 * beats as usize]);
            }
            if let Some(i) = (0..want.len()).find(|&i| b[i] != want[i]) {
                panic!("{at}: the short stream's byte {i} differs");
            }
            if stall == 0 && in_flight == 16 {
                let moved = 16.0 * (16384 + short_beats) as f64;
                let per_clock = moved / o.clocks[0].max(o.clocks[1]) as f64;
                println!(
                    "{ports} port(s), two readers: long stream done at {} clocks, short at {}; \
                     {per_clock:.2} B/clock together",
                    o.clocks[0], o.clocks[1]
                );
                // The short regions lie at random rows: each costs row misses on the
                // shared DRAM, so together is below one long stream's 95.5 %.
                assert!(
                    per_clock > 0.75 * 16.0 * ports as f64,
                    "{at}: {per_clock:.2} B/clock through {ports} ports"
                );
            }
        }
    }
}

/// An LM-head unit on the KV260's four HP ports at 250 MHz, over `bytes` of memory.
fn kv260_lm_head_unit(
    max_width: usize,
    format: tern_hdl::program::HeadFormat,
    bytes: u64,
) -> tern_sim::cosim::units::LmHeadUnitModel {
    let board = Board::resolve("kv260").unwrap();
    let (memory, _) = ported_memory_at(&board, 250.0, bytes).unwrap();
    ModelCache::new(default_cache_root())
        .load_lm_head_unit(
            tern_hdl::units::LmHeadUnitShape {
                ports: 4,
                max_width,
                format,
            },
            &memory,
            None,
        )
        .unwrap()
}

/// The LM-head unit on the KV260's four HP ports at 250 MHz: a random head of `rows` ×
/// 1,536 (the 0.73B's width), int8 or (`group`) 4-bit with a mantissa a group, streamed
/// from its DDR model; the choice equals the golden `head_scores`/`head4_scores` +
/// `argmax`, and the clocks against the busiest port's rate with the DRAM's refresh (the
/// stripe reader's measured 95.5 %): a quarter of the weights and every mantissa on
/// port 0. Prints the figures.
fn lm_head_unit_at_scale(rows: usize, scores: bool, group: Option<u32>) -> (u64, f64) {
    use tern_hdl::program::{HeadFormat, Int4Head, Int8Head};
    use tern_sim::cosim::units::LmHeadUnitCommand;
    use tern_sim::golden::vector::{argmax, head4_scores, head_scores};
    let width = 1536usize;
    let mut rng = ChaCha8Rng::seed_from_u64(47);
    let q: Vec<i8> = (0..width).map(|_| rng.gen()).collect();
    // The head's bytes, its mantissas and the golden choice.
    let (format, weights, mantissas, want) = match group {
        None => {
            let head = Int8Head {
                rows,
                width,
                w: (0..rows * width).map(|_| rng.gen()).collect(),
                row_m: (0..rows).map(|_| rng.gen()).collect(),
                exp: 0,
            };
            let w: Vec<u8> = head.w.iter().map(|&x| x as u8).collect();
            let want = argmax(&head_scores(&head, &q));
            (HeadFormat::Int8, w, head.row_m, want)
        }
        Some(group) => {
            let head = Int4Head {
                rows,
                width,
                group: group as usize,
                w: (0..rows * width).map(|_| rng.gen_range(-7..=7)).collect(),
                group_m: (0..rows * width / group as usize)
                    .map(|_| rng.gen())
                    .collect(),
                exp: 0,
            };
            let want = argmax(&head4_scores(&head, &q));
            (
                HeadFormat::Int4 { group },
                head.packed(),
                head.group_m,
                want,
            )
        }
    };
    let (q_at, weights_at) = (0u64, 1u64 << 12);
    let mantissas_at = (weights_at + weights.len() as u64).next_multiple_of(4096);
    let output_at = (mantissas_at + 2 * mantissas.len() as u64).next_multiple_of(4096);
    let bytes = (output_at + 16 + 8 * rows as u64).next_multiple_of(1 << 16);
    let board = Board::resolve("kv260").unwrap();
    let mut unit = kv260_lm_head_unit(2560, format, bytes);
    unit.write(q_at, &q.iter().map(|&x| x as u8).collect::<Vec<_>>());
    unit.write(weights_at, &weights);
    let m: Vec<u8> = mantissas.iter().flat_map(|x| x.to_le_bytes()).collect();
    unit.write(mantissas_at, &m);
    let cmd = LmHeadUnitCommand {
        src: q_at,
        weights: weights_at,
        mantissas: mantissas_at,
        output_at,
        rows: rows as u32,
        width: width as u32,
        pass_rows: 1,
        scores: u32::from(scores),
        group: group.unwrap_or(0),
        pad: 0,
    };
    let o = unit.run(&cmd, 40 * (rows * width / 64) as u64 + 100_000);
    assert!(o.clocks != u64::MAX && o.error == 0, "{format:?}: {o:?}");
    assert_eq!(o.next as usize, want, "{format:?}: the choice");
    let head_bytes = (weights.len() + m.len()) as f64;
    let efficiency = {
        let d = board.memory.dram.as_ref().unwrap();
        1.0 - d.refresh_ns / d.refresh_interval_ns
    };
    // Reader A stripes the weights over the four ports; reader B takes the mantissas on
    // port 0 beside it, so the busiest port is port 0.
    let port0_bytes = weights.len() as f64 / 4.0 + m.len() as f64;
    let ideal = (head_bytes / 64.0).max(port0_bytes / 16.0) / efficiency;
    println!(
        "LM-head unit, 4 KV260 HP ports at 250 MHz: {rows} x {width} {format:?} head (scores {scores}): \
         {} clocks = {:.3} ms; {:.2} B/clock; ports with refresh {:.0} clocks (ratio {:.3}); {o:?}",
        o.clocks,
        o.clocks as f64 / 250e3,
        head_bytes / o.clocks as f64,
        ideal,
        o.clocks as f64 / ideal
    );
    (o.clocks, ideal)
}

/// At 2,048 rows (scores off and on) and at the 0.73B's whole head (32,002 rows), int8;
/// 4-bit at 2,048 rows with groups of 128 (a group an engine beat) and 32 (four a beat):
/// within 5 % of the busiest port's rate with refresh (docs/bench/lm_head_unit.txt).
#[test]
fn the_lm_head_unit_streams_a_head_at_the_ports_rate() {
    for (rows, scores, group) in [
        (2048, false, None),
        (2048, true, None),
        (32002, false, None),
        (2048, false, Some(128)),
        (2048, false, Some(32)),
    ] {
        let (clocks, ideal) = lm_head_unit_at_scale(rows, scores, group);
        assert!(
            (clocks as f64) < 1.05 * ideal,
            "{rows} rows, group {group:?}: {clocks} clocks against {ideal:.0} at the ports' rate"
        );
    }
}

/// A command the unit is not built for ends at once with error 1, reads and writes
/// nothing, and the next good command runs as before: a width of no whole engine beats,
/// or wider than built for; no rows; no pass rows; a 4-bit group on an int8 unit.
#[test]
fn the_lm_head_unit_refuses_a_shape_it_is_not_built_for_and_writes_nothing() {
    use tern_hdl::program::HeadFormat;
    use tern_sim::cosim::units::LmHeadUnitCommand;
    let (rows, width) = (64usize, 256usize);
    let (weights_at, mantissas_at, output_at) = (1u64 << 12, 1u64 << 16, 1u64 << 17);
    let mut unit = kv260_lm_head_unit(512, HeadFormat::Int8, 1 << 18);
    let mut rng = ChaCha8Rng::seed_from_u64(48);
    let bytes: Vec<u8> = (0..rows * width).map(|_| rng.gen()).collect();
    unit.write(0, &bytes[..width]);
    unit.write(weights_at, &bytes);
    unit.write(mantissas_at, &vec![1u8; 2 * rows]);
    let good = LmHeadUnitCommand {
        src: 0,
        weights: weights_at,
        mantissas: mantissas_at,
        output_at,
        rows: rows as u32,
        width: width as u32,
        pass_rows: 1,
        scores: 1,
        group: 0,
        pad: 0,
    };
    for (what, bad) in [
        (
            "a width of no whole engine beats",
            LmHeadUnitCommand { width: 250, ..good },
        ),
        (
            "wider than built for",
            LmHeadUnitCommand {
                width: 1024,
                ..good
            },
        ),
        ("no rows", LmHeadUnitCommand { rows: 0, ..good }),
        (
            "no pass rows",
            LmHeadUnitCommand {
                pass_rows: 0,
                ..good
            },
        ),
        ("a 4-bit group", LmHeadUnitCommand { group: 128, ..good }),
    ] {
        let o = unit.run(&bad, 10_000);
        assert!(o.clocks != u64::MAX, "{what}: no end");
        assert_eq!(o.error, 1, "{what}: {o:?}");
        assert_eq!(
            (o.ddr.bytes_read, o.ddr.bytes_written),
            (0, 0),
            "{what}: it touched memory"
        );
    }
    assert!(unit.read(output_at, 16 + 8 * rows).iter().all(|&b| b == 0));
    let o = unit.run(&good, 1_000_000);
    assert_eq!(o.error, 0, "the good command after them: {o:?}");
    assert!(
        unit.read(output_at, 16).iter().any(|&b| b != 0),
        "no head written"
    );
}

/// Several write masters on one port through the write arbiter (`tern_write_arbiter`):
/// 2, 3 and 4 masters (1, 4 and 8 bursts in flight), 40 bursts each of 1 to 16 beats at
/// random places inside a 4 KiB page, random byte strobes, the masters offering data
/// before their address is taken; with masters and a memory that hold back at random
/// and without (seed 47). Every byte a strobe allows lands where its master sent it, in
/// the master's order, nothing else changes; every master gets exactly one OKAY
/// response a burst, none more.
#[test]
fn write_masters_share_a_port_and_every_burst_lands_whole() {
    use tern_sim::cosim::write_side::WriteBurst;
    const REGION: u64 = 1 << 16; // each master's own
    let mut rng = ChaCha8Rng::seed_from_u64(47);
    for (masters, in_flight) in [(2usize, 4usize), (3, 1), (4, 8)] {
        for stalls in [false, true] {
            let bytes = REGION * masters as u64 + (1 << 16);
            let mut memory = kv260(bytes);
            if stalls {
                memory.stall_percent = 20;
                memory.seed = 9;
            }
            let mut arbiter = ModelCache::new(default_cache_root())
                .load_write_arbiter(masters, in_flight, &memory)
                .unwrap();
            let image: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
            arbiter.write(0, &image);
            let mut want = image.clone();
            let bursts: Vec<Vec<WriteBurst>> = (0..masters as u64)
                .map(|i| {
                    (0..40)
                        .map(|_| {
                            let beats = rng.gen_range(1..=16u64);
                            let page = rng.gen_range(0..REGION / 4096);
                            let beat = rng.gen_range(0..=256 - beats);
                            let addr = i * REGION + page * 4096 + 16 * beat;
                            let data: Vec<[u8; 16]> = (0..beats).map(|_| rng.gen()).collect();
                            let strobes: Vec<u16> = (0..beats)
                                .map(|_| if rng.gen_bool(0.7) { 0xffff } else { rng.gen() })
                                .collect();
                            for (j, (d, s)) in data.iter().zip(&strobes).enumerate() {
                                for k in 0..16 {
                                    if s >> k & 1 == 1 {
                                        want[(addr + 16 * j as u64) as usize + k] = d[k];
                                    }
                                }
                            }
                            WriteBurst {
                                addr,
                                data,
                                strobes,
                            }
                        })
                        .collect()
                })
                .collect();
            let o = arbiter.run(&bursts, if stalls { 13 } else { 0 });
            let at = format!("{masters} masters, {in_flight} in flight, stalls {stalls}");
            assert_ne!(
                o.clocks,
                u64::MAX,
                "{at}: not every response came back: {o:?}"
            );
            for i in 0..masters {
                assert_eq!(
                    (o.responses[i], o.bad[i], o.extra[i]),
                    (40, 0, 0),
                    "{at}: master {i}'s responses: {o:?}"
                );
            }
            let beats: u64 = bursts.iter().flatten().map(|b| b.data.len() as u64).sum();
            assert_eq!(
                (o.write_bursts, o.bytes_written, o.crossings),
                (40 * masters as u64, 16 * beats, 0),
                "{at}"
            );
            let after = arbiter.read(0, bytes as usize);
            if let Some(b) = (0..after.len()).find(|&b| after[b] != want[b]) {
                panic!(
                    "{at}: first differing byte 0x{b:x} (master {}): 0x{:02x}, want 0x{:02x}",
                    b as u64 / REGION,
                    after[b],
                    want[b]
                );
            }
            println!(
                "{at}: {} bursts, {beats} beats in {} clocks",
                40 * masters,
                o.clocks
            );
        }
    }
}

/// Bursts the row writer must make of `beats` beats at `addr`: at most 16 beats, none
/// across a 4 KiB boundary.
fn bursts_by_the_rule(mut addr: u64, mut beats: u64) -> u64 {
    let mut n = 0;
    while beats > 0 {
        let room = (4096 - addr % 4096) / 16;
        let len = beats.min(16).min(room);
        (addr, beats, n) = (addr + 16 * len, beats - len, n + 1);
    }
    n
}

/// The row writer (`tern_row_writer`, a 32-beat buffer) on one KV260 port: 40 regions of
/// 1 to 600 beats at random places with random byte strobes (seed 53), one after
/// another, with the beats and the memory held back at random and without. Every byte a
/// strobe allows is in memory, nothing else changed; the bursts are cut exactly as the
/// rule says (at most 16 beats, at each 4 KiB boundary: the DRAM counts as many bursts as
/// the rule gives, none across a boundary); the writer takes exactly the regions' beats
/// and nothing after. A region beyond memory ends with the error bit, no hang.
#[test]
fn the_row_writer_writes_regions_in_bursts_that_keep_to_4_kib() {
    use tern_sim::cosim::write_side::WriteBurst;
    const BYTES: u64 = 1 << 20;
    let mut rng = ChaCha8Rng::seed_from_u64(53);
    for stalls in [false, true] {
        let mut memory = kv260(BYTES);
        if stalls {
            memory.stall_percent = 20;
            memory.seed = 11;
        }
        let mut writer = ModelCache::new(default_cache_root())
            .load_row_writer(32, &memory)
            .unwrap();
        let image: Vec<u8> = (0..BYTES).map(|_| rng.gen()).collect();
        writer.write(0, &image);
        let mut want = image.clone();
        let regions: Vec<WriteBurst> = (0..40)
            .map(|case| {
                let beats = match case {
                    0 => 1,
                    1 => 16,
                    _ => rng.gen_range(1..=600u64),
                };
                // Case 1 starts 3 beats before a boundary.
                let addr = if case == 1 {
                    3 * 4096 - 48
                } else {
                    16 * rng.gen_range(0..BYTES / 16 - beats)
                };
                let data: Vec<[u8; 16]> = (0..beats).map(|_| rng.gen()).collect();
                let strobes: Vec<u16> = (0..beats)
                    .map(|_| if rng.gen_bool(0.8) { 0xffff } else { rng.gen() })
                    .collect();
                for (j, (d, s)) in data.iter().zip(&strobes).enumerate() {
                    for (k, &byte) in d.iter().enumerate() {
                        if s >> k & 1 == 1 {
                            want[(addr + 16 * j as u64) as usize + k] = byte;
                        }
                    }
                }
                WriteBurst {
                    addr,
                    data,
                    strobes,
                }
            })
            .collect();
        let o = writer.run(&regions, if stalls { 17 } else { 0 });
        let at = format!("stalls {stalls}");
        assert_ne!(o.clocks, u64::MAX, "{at}: a region never finished: {o:?}");
        let beats: u64 = regions.iter().map(|r| r.data.len() as u64).sum();
        let bursts: u64 = regions
            .iter()
            .map(|r| bursts_by_the_rule(r.addr, r.data.len() as u64))
            .sum();
        assert_eq!(
            (o.errors, o.beats_taken, o.crossings),
            (0, beats, 0),
            "{at}: {o:?}"
        );
        assert_eq!(
            (o.write_bursts, o.bytes_written),
            (bursts, 16 * beats),
            "{at}: bursts not cut by the rule: {o:?}"
        );
        let after = writer.read(0, BYTES as usize);
        if let Some(b) = (0..after.len()).find(|&b| after[b] != want[b]) {
            panic!(
                "{at}: first differing byte 0x{b:x}: 0x{:02x}, want 0x{:02x}",
                after[b], want[b]
            );
        }
        println!(
            "{at}: {} regions, {beats} beats, {bursts} bursts in {} clocks",
            regions.len(),
            o.clocks
        );
        // Beyond memory: the error bit, nothing hangs.
        let beyond = WriteBurst {
            addr: BYTES - 32,
            data: vec![[7u8; 16]; 4],
            strobes: vec![0xffff; 4],
        };
        let o = writer.run(&[beyond], if stalls { 5 } else { 0 });
        assert!(
            o.clocks != u64::MAX && o.errors == 1,
            "{at}: beyond memory: {o:?}"
        );
    }
}
