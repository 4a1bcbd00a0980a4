//! The matmul unit (`tern_hdl::units::matmul`): the `Matmul` command with the TLMM engine
//! inside, its weights streamed from the simulated board's DDR through the board's
//! ports, K tiles summed on the fabric. Checked against the plain integer product
//! `Σ_k W[i,k]·x[j,k]` (no tiles, no engine), byte for byte over the whole memory.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_boards::Board;
use tern_flows::memory::ported_memory_at;
use tern_flows::rtl::lint::lint_files;
use tern_hdl::config::{Config, ConfigBuilder};
use tern_hdl::units::{matmul_unit_verilog, matmul_weight_image, MatmulUnitShape};
use tern_sim::cosim::units::{MatmulUnitCommand, MatmulUnitModel, MatmulUnitOutcome};
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::{default_cache_root, ModelCache};

/// The KV260's memory at 250 MHz through its four HP ports: `bytes` modelled, a
/// `stall_percent` of every handshake the memory drives withheld.
fn kv260(bytes: u64, stall_percent: u32, seed: u64) -> MemoryModel {
    let board = Board::resolve("kv260").unwrap();
    let (mut model, _) = ported_memory_at(&board, 250.0, bytes).unwrap();
    model.stall_percent = stall_percent;
    model.seed = seed;
    model
}

/// A small engine built as the KV260's is (G = 3): `p` rows, `q` groups a clock, tiles
/// of 4 row blocks × 2 chunks, blocks of 2 rows.
fn small_engine(p: usize, q: usize) -> Config {
    ConfigBuilder::tlmm(3, p, q)
        .workload(4 * p, 2 * 3 * q, 1)
        .token_block(2)
        .build()
        .unwrap()
}

fn unit(
    shape: &MatmulUnitShape,
    memory: &MemoryModel,
    vcd: Option<&std::path::Path>,
) -> MatmulUnitModel {
    ModelCache::new(default_cache_root())
        .load_matmul_unit(shape, memory, vcd)
        .unwrap()
}

/// Where a case's regions lie: the int8 rows, the weights, the results, one after the
/// other.
struct Layout {
    src: u64,
    weights: u64,
    dst: u64,
    bytes: u64,
}

/// Where a case's regions lie. `Placement::Aligned`: each on its own 4 KiB (as the
/// program builder places matrices). `Placement::Straddling`: each a few beats before a
/// 4 KiB boundary, so that a burst crosses it unless the unit cuts it there (AXI).
#[derive(Clone, Copy)]
enum Placement {
    Aligned,
    Straddling,
}

fn layout(
    shape: &MatmulUnitShape,
    (m, k, rows): (usize, usize, usize),
    place: Placement,
) -> Layout {
    let krow = k.next_multiple_of(16) as u64;
    let mrow = (4 * m).next_multiple_of(16) as u64;
    // Bytes before the boundary: 3 beats for the reads, 1 for the results (whose writes
    // are a few beats).
    let (before_read, before_write) = match place {
        Placement::Aligned => (0, 0),
        Placement::Straddling => (48, 16),
    };
    // The first place at or after `end` that is `before` bytes short of a 4 KiB boundary.
    let page = |end: u64, before: u64| (end + before).next_multiple_of(4096) - before;
    let src = page(0, before_read);
    let weights = page(src + rows as u64 * krow, before_read);
    let dst = page(weights + shape.matrix_bytes(m, k), before_write);
    let bytes = (dst + rows as u64 * mrow + 4096).next_multiple_of(1 << 16);
    Layout {
        src,
        weights,
        dst,
        bytes,
    }
}

/// The product as the program's results: per row `m` little-endian `i32`, zero to 16.
fn expected_rows(w: &[i8], x: &[i8], m: usize, k: usize, rows: usize) -> Vec<u8> {
    let mrow = (4 * m).next_multiple_of(16);
    let mut out = vec![0u8; rows * mrow];
    for j in 0..rows {
        for i in 0..m {
            let y: i64 = (0..k)
                .map(|c| i64::from(w[i * k + c]) * i64::from(x[j * k + c]))
                .sum();
            out[j * mrow + 4 * i..j * mrow + 4 * i + 4].copy_from_slice(&(y as i32).to_le_bytes());
        }
    }
    out
}

/// One command on a memory of random bytes: returns the memory after it, the memory
/// the plain product says it must be, and the clocks.
fn run_case(
    shape: &MatmulUnitShape,
    (m, k, rows): (usize, usize, usize),
    place: Placement,
    stall_percent: u32,
    seed: u64,
    vcd: Option<&std::path::Path>,
) -> (Vec<u8>, Vec<u8>, MatmulUnitOutcome) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<i8> = (0..m * k).map(|_| rng.gen_range(-1..=1)).collect();
    let x: Vec<i8> = (0..rows * k).map(|_| rng.gen()).collect();
    let l = layout(shape, (m, k, rows), place);
    // Everything random first: padding of the int8 rows, the results' place, the rest.
    let mut image: Vec<u8> = (0..l.bytes).map(|_| rng.gen()).collect();
    let krow = k.next_multiple_of(16);
    for j in 0..rows {
        for c in 0..k {
            image[l.src as usize + j * krow + c] = x[j * k + c] as u8;
        }
    }
    let wimg = matmul_weight_image(shape, &w, m, k).unwrap();
    image[l.weights as usize..l.weights as usize + wimg.len()].copy_from_slice(&wimg);
    let memory = kv260(l.bytes, stall_percent, seed);
    let mut u = unit(shape, &memory, vcd);
    u.write(0, &image);
    let cmd = MatmulUnitCommand {
        src: l.src,
        weights: l.weights,
        dst: l.dst,
        m: m as u32,
        k: k as u32,
        pass_rows: rows as u32,
        zero: 0,
    };
    let limit = 200 * (shape.matrix_bytes(m, k) / 16 + 100) * rows.div_ceil(2) as u64 + 100_000;
    let o = u.run(&cmd, limit);
    assert!(
        o.clocks != u64::MAX && o.error == 0,
        "ports {} m {m} k {k} rows {rows} stall {stall_percent}% seed {seed}: {o:?}",
        shape.ports
    );
    let after = u.read(0, l.bytes as usize);
    let mut want = image;
    let rows_bytes = expected_rows(&w, &x, m, k, rows);
    want[l.dst as usize..l.dst as usize + rows_bytes.len()].copy_from_slice(&rows_bytes);
    (after, want, o)
}

/// Byte for byte, or the case, the seed, the first differing result and a waveform.
fn check_case(
    shape: &MatmulUnitShape,
    case: (usize, usize, usize),
    place: Placement,
    stall: u32,
    seed: u64,
) -> MatmulUnitOutcome {
    let (after, want, outcome) = run_case(shape, case, place, stall, seed, None);
    if let Some(at) = after.iter().zip(&want).position(|(a, b)| a != b) {
        let vcd = std::env::temp_dir().join(format!("tern_matmul_unit_{seed}.vcd"));
        let _ = run_case(shape, case, place, stall, seed, Some(&vcd));
        let l = layout(shape, case, place);
        let where_ = if at as u64 >= l.dst {
            let mrow = (4 * case.0).next_multiple_of(16) as u64;
            let off = at as u64 - l.dst;
            format!("result row {}, output {}", off / mrow, (off % mrow) / 4)
        } else {
            "outside the results (written where nothing may be)".into()
        };
        panic!(
            "matmul unit {} ports, engine {}, (m, k, rows) = {case:?}, stall {stall}%, seed \
             {seed}: first difference at byte 0x{at:x} ({where_}): got {:02x?}, want {:02x?}; \
             waveform {}",
            shape.ports,
            shape.engine.engine.summary(),
            &after[at & !3..(at & !3) + 4],
            &want[at & !3..(at & !3) + 4],
            vcd.display()
        );
    }
    outcome
}

/// Every result of the plain product and nothing else in memory changed, on 1, 2 and 4
/// ports, with the memory's handshakes as the board drives them and with 30 % of them
/// withheld: a matrix of one tile; matrices of partial tiles in both dimensions with a
/// `k` that is no multiple of 16 (the int8 row's padding is random: it meets zero weights);
/// more rows than a block (3 and 5, blocks of 2); K tiles summed on the fabric (k = 300
/// is 4 K tiles of 96). And an engine of one row block and one chunk (tiles of 8 × 48),
/// where a decoded row's tile is one result beat and every beat a K tile's partial sum.
/// Every region starts a few beats before a 4 KiB boundary: no burst may cross it (the
/// DDR model answers one that does with SLVERR).
#[test]
fn the_matmul_unit_writes_the_exact_product_and_nothing_else() {
    let cases = [(32, 96, 1), (70, 100, 3), (40, 300, 5), (4, 16, 2)];
    let mut seed = 61;
    for ports in [1usize, 2, 4] {
        let shape = MatmulUnitShape {
            ports,
            engine: small_engine(8, 16),
            window: None,
        };
        for case in cases {
            for stall in [0, 30] {
                check_case(&shape, case, Placement::Straddling, stall, seed);
                seed += 1;
            }
        }
    }
    let one_beat = MatmulUnitShape {
        ports: 1,
        engine: ConfigBuilder::tlmm(3, 8, 16)
            .workload(8, 48, 1)
            .token_block(2)
            .build()
            .unwrap(),
        window: None,
    };
    for case in [(20, 200, 1), (20, 200, 3)] {
        for stall in [0, 30] {
            check_case(&one_beat, case, Placement::Straddling, stall, seed);
            seed += 1;
        }
    }
}

/// A size out of range is refused with error 1 and nothing is written; a region beyond
/// the memory (DECERR) ends the command with error 2, no hang.
#[test]
fn the_matmul_unit_refuses_sizes_and_ends_on_an_error_response() {
    let shape = MatmulUnitShape {
        ports: 1,
        engine: small_engine(8, 16),
        window: None,
    };
    let l = layout(&shape, (32, 96, 1), Placement::Aligned);
    let memory = kv260(l.bytes, 0, 5);
    let mut u = unit(&shape, &memory, None);
    let image: Vec<u8> = (0..l.bytes).map(|i| (i * 7 % 251) as u8).collect();
    u.write(0, &image);
    let good = MatmulUnitCommand {
        src: l.src,
        weights: l.weights,
        dst: l.dst,
        m: 32,
        k: 96,
        pass_rows: 1,
        zero: 0,
    };
    for (what, cmd) in [
        ("m = 0", MatmulUnitCommand { m: 0, ..good }),
        (
            "k = 2^20 + 1",
            MatmulUnitCommand {
                k: (1 << 20) + 1,
                ..good
            },
        ),
        (
            "no rows",
            MatmulUnitCommand {
                pass_rows: 0,
                ..good
            },
        ),
    ] {
        let o = u.run(&cmd, 1000);
        assert_eq!((o.error, o.ddr.bytes_written), (1, 0), "{what}: {o:?}");
        assert!(o.clocks < 10, "{what}: refused at once, not {o:?}");
    }
    assert_eq!(
        u.read(0, l.bytes as usize),
        image,
        "a refused command wrote"
    );
    let o = u.run(
        &MatmulUnitCommand {
            weights: l.bytes + 4096,
            ..good
        },
        1_000_000,
    );
    assert!(o.clocks != u64::MAX, "hung on an error response: {o:?}");
    assert_eq!(o.error, 2, "{o:?}");
    // The unit is whole afterwards: the next command is exact.
    let o = u.run(&good, 1_000_000);
    assert_eq!(o.error, 0, "{o:?}");
}

/// The unit's Verilog is lint-clean under `verilator --lint-only -Wall` (rust-hdl's core
/// with its waivers) on 1, 2 and 4 ports, for the small engine and the KV260's.
#[test]
fn the_matmul_unit_verilog_is_lint_clean() {
    let kv260 = tern_hdl::config::Config::from_path(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/model/kv260/matmul.toml"
    )))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (ports, engine) in [
        (1, small_engine(8, 16)),
        (2, small_engine(8, 16)),
        (4, small_engine(8, 16)),
        (4, kv260),
    ] {
        let v = matmul_unit_verilog(&MatmulUnitShape {
            ports,
            engine,
            window: None,
        })
        .unwrap();
        std::fs::write(dir.path().join("tern_matmul_unit.v"), v.unit).unwrap();
        std::fs::write(dir.path().join(tern_hdl::emit::DESIGN_FILE), v.core).unwrap();
        std::fs::write(
            dir.path().join(tern_hdl::emit::WAIVER_FILE),
            tern_hdl::emit::waivers(),
        )
        .unwrap();
        let files = [
            tern_hdl::emit::WAIVER_FILE,
            "tern_matmul_unit.v",
            tern_hdl::emit::DESIGN_FILE,
        ];
        let found = lint_files(dir.path(), &files, Some("tern_matmul_unit")).unwrap();
        assert!(found.is_empty(), "{ports} ports:\n{}", found.join("\n"));
    }
}

/// The KV260's matmul engine (docs/model/kv260/matmul.toml: 1,536 weights a clock, tiles
/// of 512 × 1,536, blocks of 8 rows) as a unit on the board's four HP ports at 250 MHz:
/// one decoded row through the 0.73B's q projection (1,536 × 1,536: three tiles) and its
/// down projection (1,536 × 4,096: nine tiles, the last K tile partial), exact, and the
/// clocks against the ports' rate with the DRAM's refresh. Prints the figures
/// (docs/bench/matmul_unit.txt).
#[test]
fn the_kv260_matmul_unit_streams_a_matrix_near_the_ports_rate() {
    let engine = tern_hdl::config::Config::from_path(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/model/kv260/matmul.toml"
    )))
    .unwrap();
    let shape = MatmulUnitShape {
        ports: 4,
        engine,
        window: None,
    };
    let board = Board::resolve("kv260").unwrap();
    let efficiency = {
        let d = board.memory.dram.as_ref().unwrap();
        1.0 - d.refresh_ns / d.refresh_interval_ns
    };
    for (name, m, k) in [("q", 1536, 1536), ("down", 1536, 4096)] {
        let o = check_case(&shape, (m, k, 1), Placement::Aligned, 0, 71);
        let clocks = o.clocks;
        let bytes = shape.matrix_bytes(m, k) as f64;
        let ideal = bytes / (64.0 * efficiency);
        println!(
            "matmul unit, 4 KV260 HP ports at 250 MHz, {name} {m} x {k}, one row: {clocks} clocks \
             = {:.2} us; {bytes} weight bytes, {:.2} B/clock; ports with refresh {ideal:.0} \
             clocks (ratio {:.3}); {:?}",
            clocks as f64 / 250.0,
            bytes / clocks as f64,
            clocks as f64 / ideal,
            o.ddr
        );
        assert!(
            (clocks as f64) < 1.15 * ideal,
            "{name}: {clocks} clocks against {ideal:.0} at the ports' rate"
        );
    }
}
