//! One test body (`gemm_matches_golden`), every backend that can run here: the
//! Verilator top in-process, `tern serve`'s loop over a Unix socket and over TCP
//! loopback, and the USB framing over an in-memory pipe. Each result is compared with
//! the golden model bit for bit.

mod common;

use common::*;
use std::time::Duration;
use tern_host::server::ServeOptions;
use tern_host::{Device, Transport};
use tern_sim::top_model::MemoryModel;

#[test]
fn in_process_sim_matches_golden() {
    for (g, acc, tb, bus) in [
        (3, 24, 1, 128),
        (2, 16, 1, 64),
        (5, 32, 1, 512),
        (3, 24, 2, 256),
        (4, 24, 3, 64),
    ] {
        let cfg = config_bus(g, acc, tb, bus);
        let mut dev = Device::open("sim:", &cfg, &options()).unwrap();
        gemm_matches_golden(
            &mut dev,
            &cfg,
            &format!("sim (G={g}, acc {acc}, token block {tb}, {bus}-bit bus)"),
        );
    }
}

/// The same runs against a slow, stalling memory: every ready and valid the DDR model
/// drives drops at random, the bandwidth is a fraction of the bus, every burst waits,
/// and a harsh DRAM (refreshes, small rows over two banks, turnarounds, narrow ports)
/// takes bus time at every turn.
#[test]
fn a_stalling_slow_memory_changes_the_time_not_the_results() {
    for (seed, stall, tb, bus) in [(7u64, 30, 1, 128), (8, 50, 2, 64), (9, 20, 3, 256)] {
        let cfg = config_bus(3, 24, tb, bus);
        let memory = MemoryModel {
            bytes: cfg.top.memory_bytes(),
            bytes_per_clock: 5.5,
            latency_clocks: 23,
            max_reads: 3,
            stall_percent: stall,
            seed,
            timing: tern_sim::top_model::DramTiming {
                refresh_interval_clocks: 97.0,
                refresh_bytes: 40.0,
                row_bytes: 256,
                banks: 2,
                row_miss_bytes: 30.0,
                read_to_write_bytes: 5.0,
                write_to_read_bytes: 25.0,
                port_bytes_per_clock: 3.0,
            },
        };
        let mut dev = open_sim_on(&cfg, memory);
        gemm_matches_golden(
            &mut dev,
            &cfg,
            &format!(
                "stalling memory (seed {seed}, {stall}% stalls, token block {tb}, {bus}-bit bus)"
            ),
        );
    }
}

/// Weight beats wider than the bus, collected from whole bus words (10-word beats on a
/// 64-bit bus: five bus words each), with and without stalls.
#[test]
fn weight_beats_of_whole_bus_words_are_collected_bit_exact() {
    let cfg = tern_hdl::config::ConfigBuilder::tlmm(3, 8, 8)
        .storage(tern_hdl::config::TableStorage::Block)
        .token_block(2)
        .workload(20, 40, 3)
        .top(tern_hdl::config::TopConfig {
            bus_bits: 64,
            burst_beats: 8,
            reads_in_flight: 2,
            memory_mib: 64,
        })
        .build()
        .unwrap();
    let layout = tern_hdl::top::MemoryLayout::of(&cfg);
    assert!(layout.weights_aligned() && layout.weight_words == 10);
    for stall in [0, 40] {
        let memory = MemoryModel {
            stall_percent: stall,
            seed: 11,
            ..MemoryModel::ideal(cfg.top.memory_bytes())
        };
        let mut dev = open_sim_on(&cfg, memory);
        gemm_matches_golden(
            &mut dev,
            &cfg,
            &format!("aligned weight beats, {stall}% stalls"),
        );
    }
}

/// An engine that sends one result beat more than the run expects: the top refuses
/// it (never writes it to memory) and flags ERROR bit 3, which the host reports.
#[test]
fn an_extra_result_beat_is_flagged_by_the_top() {
    let cfg = config(3, 24);
    let mut top = tern_hdl::top::generate_top(&cfg).unwrap();
    // After every result of a 3-token run (3 tokens × 5 row blocks), one more.
    top.engine = tern_sim::mutation::extra_result_after(&top.engine, 15);
    top.content_hash = tern_hdl::top::top_content_hash(&top.engine, &top.top_verilog);
    let memory = MemoryModel::ideal(top.layout.memory_bytes());
    let board = tern_host::sim::SimBoard::from_top(top, &cache(), None, memory).unwrap();
    let mut dev = Device::attach(Box::new(board), &cfg, &options()).unwrap();
    let (w, x) = layer(&cfg, 3, 11);
    dev.load_weights(&w).unwrap();
    let err = dev.gemm(&x).unwrap_err();
    assert!(
        matches!(err, tern_host::HostError::Refused(e) if e & tern_hdl::top::regmap::ERR_EXTRA_RESULT != 0),
        "{err}"
    );
    assert!(err.to_string().contains("did not expect"), "{err}");
}

#[test]
fn unix_socket_matches_golden() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let mut dev = Device::open(&served.uri, &cfg, &options()).unwrap();
    assert!(
        dev.info().description.starts_with("sim:"),
        "{:?}",
        dev.info()
    );
    gemm_matches_golden(&mut dev, &cfg, &served.uri);
}

#[test]
fn tcp_loopback_matches_golden() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, true, ServeOptions::default());
    let mut dev = Device::open(&served.uri, &cfg, &options()).unwrap();
    gemm_matches_golden(&mut dev, &cfg, &served.uri);
}

#[test]
fn usb_framing_over_a_memory_pipe_matches_golden() {
    let cfg = config(3, 24);
    let (transport, _board) = usb_over_memory_pipe(&cfg);
    let mut dev = Device::attach(transport, &cfg, &options()).unwrap();
    gemm_matches_golden(&mut dev, &cfg, "usb over memory pipe");
}

/// The shell's DMA reaches the whole DDR model, sparse as it is: bytes written anywhere
/// read back, untouched memory reads as zero, and nothing past the end is reachable.
#[test]
fn dma_reaches_the_whole_memory_model() {
    let cfg = config(3, 24);
    let mut board = tern_host::sim::SimBoard::new(&cfg, &cache(), None, None).unwrap();
    let bytes = cfg.top.memory_bytes();
    let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    for addr in [0, 4096 - 32, bytes / 2 + 12, bytes - 64] {
        board.dma_write(addr, &data).unwrap();
        let mut back = vec![0u8; 64];
        board.dma_read(addr, &mut back).unwrap();
        assert_eq!(back, data, "at 0x{addr:x}");
    }
    let mut zeros = vec![1u8; 128];
    board.dma_read(bytes / 4, &mut zeros).unwrap();
    assert!(zeros.iter().all(|&b| b == 0), "untouched memory reads zero");
    let err = board.dma_write(bytes - 60, &data).unwrap_err();
    assert!(
        matches!(err, tern_host::HostError::OutOfRange { .. }),
        "{err}"
    );
}

fn read_card(t: &mut dyn Transport, addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    t.dma_read(addr, &mut out).unwrap();
    out
}

fn set_pointer(t: &mut dyn Transport, offset: u32, address: u64) {
    t.write32(offset.into(), address as u32).unwrap();
    t.write32((offset + 4).into(), (address >> 32) as u32)
        .unwrap();
}

/// Start a run with these arguments; return ERROR after the done interrupt.
fn run_with(t: &mut dyn Transport, weights: u64, act: u64, res: u64, tokens: u32) -> u32 {
    use tern_host::regmap::*;
    set_pointer(t, WEIGHTS, weights);
    set_pointer(t, ACTIVATIONS, act);
    set_pointer(t, RESULTS, res);
    t.write32(TOKENS.into(), tokens).unwrap();
    t.write32(IER.into(), IRQ_DONE).unwrap();
    t.write32(GIE.into(), 1).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    t.wait_irq(1, Duration::from_secs(10)).unwrap();
    let pending = t.read32(ISR.into()).unwrap();
    t.write32(ISR.into(), pending).unwrap();
    let control = t.read32(CONTROL.into()).unwrap();
    assert_eq!(
        control & (AP_DONE | AP_IDLE),
        AP_DONE | AP_IDLE,
        "the run ended: 0x{control:x}"
    );
    t.read32(ERROR.into()).unwrap()
}

#[test]
fn registers_follow_the_vitis_handshake() {
    use tern_host::regmap::*;
    let cfg = config(3, 24);
    // A board whose DDR has only the lower half of what the kernel was built for: bursts
    // into the upper half get DECERR.
    let hole_at = cfg.top.memory_bytes() / 2;
    let mut board =
        tern_host::sim::SimBoard::new(&cfg, &cache(), None, Some(MemoryModel::ideal(hole_at)))
            .unwrap();
    let t: &mut dyn Transport = &mut board;
    assert_eq!(t.read32(HW_ID.into()).unwrap(), HW_ID_VALUE);
    assert_eq!(t.read32(CONTROL.into()).unwrap(), AP_IDLE);
    assert_eq!(
        u64::from(t.read32(MEMORY_MIB.into()).unwrap()) << 20,
        cfg.top.memory_bytes()
    );
    // 64-bit pointers read back in two words; a start with zero tokens is refused with
    // the reason, and ap_done is set and then cleared by the read.
    set_pointer(t, WEIGHTS, 0x1_2345_6780);
    assert_eq!(t.read32(WEIGHTS.into()).unwrap(), 0x2345_6780);
    assert_eq!(t.read32(WEIGHTS_HI.into()).unwrap(), 1);
    set_pointer(t, WEIGHTS, 0);
    set_pointer(t, ACTIVATIONS, 0x400);
    set_pointer(t, RESULTS, 0x800);
    t.write32(TOKENS.into(), 0).unwrap();
    assert_eq!(t.read32(ACTIVATIONS.into()).unwrap(), 0x400);
    t.write32(IER.into(), IRQ_DONE).unwrap();
    t.write32(GIE.into(), 1).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    assert_eq!(t.read32(ERROR.into()).unwrap(), ERR_NO_TOKENS);
    assert_eq!(t.wait_irq(1, Duration::from_secs(5)).unwrap(), 1);
    assert_eq!(t.read32(ISR.into()).unwrap(), IRQ_DONE);
    t.write32(ISR.into(), IRQ_DONE).unwrap(); // toggle on write clears it
    assert_eq!(t.read32(ISR.into()).unwrap(), 0);
    assert_eq!(
        t.read32(CONTROL.into()).unwrap(),
        AP_IDLE | AP_DONE | AP_READY
    );
    assert_eq!(
        t.read32(CONTROL.into()).unwrap(),
        AP_IDLE,
        "ap_done clears on read"
    );

    let layout = tern_hdl::top::MemoryLayout::of(&cfg);
    let (w, a, r) = (
        layout.weight_region_bytes() as u64,
        layout.activation_stride() as u64,
        layout.result_stride() as u64,
    );
    let bus = layout.bus_bytes as u64;
    let memory = layout.memory_bytes;
    let weights_before = read_card(t, 0, w as usize);
    // Refused at the start: a pointer off the bus width, overlapping regions, a region
    // ending beyond MEMORY_MIB (however many tokens: nothing wraps). The host's own check
    // refuses the same layouts.
    for (act, res, tokens, expected) in [
        (w + 4, w + 8 * a, 1, ERR_MISALIGNED),
        (w, w - bus, 1, ERR_OVERLAP),
        (w, w + a, 2, ERR_OVERLAP),
        (w - bus, w + 4 * a, 1, ERR_OVERLAP),
        (memory - a, w + 4 * a, 2, ERR_OUT_OF_RANGE),
        (1 << 40, w + 4 * a, 1, ERR_OUT_OF_RANGE),
        (w, memory - r, 2, ERR_OUT_OF_RANGE),
        // Huge token counts: both regions run off the end, over each other too.
        (0x10_0000, w, u32::MAX, ERR_OUT_OF_RANGE | ERR_OVERLAP),
        (0x10_0000, w, 1 << 30, ERR_OUT_OF_RANGE | ERR_OVERLAP),
    ] {
        assert_eq!(
            run_with(t, 0, act, res, tokens),
            expected,
            "activations 0x{act:x}, results 0x{res:x}, {tokens} tokens"
        );
        assert!(layout.check_regions(0, act, res, tokens.into()).is_err());
    }
    // Into the hole: the DDR model answers DECERR, the kernel abandons the run, sets
    // ERROR and finishes; nothing hangs.
    for (act, res, tokens, expected) in [
        (hole_at - a, w + 4 * a, 2, ERR_READ_RESPONSE),
        (hole_at + 64 * a, w + 4 * a, 1, ERR_READ_RESPONSE),
        (w, hole_at - r, 2, ERR_WRITE_RESPONSE),
    ] {
        assert_eq!(
            run_with(t, 0, act, res, tokens),
            expected,
            "activations 0x{act:x}, results 0x{res:x}, {tokens} tokens"
        );
    }
    // A sound run after all that starts cleanly and leaves the weights alone.
    assert_eq!(run_with(t, 0, w, w + a, 1), 0, "a sound layout runs");
    assert_eq!(
        read_card(t, 0, w as usize),
        weights_before,
        "the weights were overwritten"
    );
    // With the interrupt disabled nothing fires: the wait times out.
    t.write32(GIE.into(), 0).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    let err = t.wait_irq(1, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, tern_host::HostError::Timeout { .. }), "{err}");
}

/// After the memory answered a run with an error, the next run on the same board is
/// bit-exact: the abandoned run left nothing behind in the engine or the buffers.
#[test]
fn a_run_after_a_bus_error_is_bit_exact() {
    let cfg = config_blocks(3, 24, 2);
    // The DDR has a hole in its upper half (see registers_follow_the_vitis_handshake).
    let hole_at = cfg.top.memory_bytes() / 2;
    let mut dev = open_sim_on(&cfg, MemoryModel::ideal(hole_at));
    let (w, x) = layer(&cfg, 3, 5);
    dev.load_weights(&w).unwrap();
    let layout = *dev.layout().matmul().expect("a matmul top");
    // Activations running into the hole, started behind the Device's back.
    let t = dev.transport();
    let error = run_with(
        t,
        0,
        hole_at - layout.activation_stride() as u64,
        layout.weight_region_bytes() as u64 + 4096 * 16,
        3,
    );
    assert_eq!(error, tern_host::regmap::ERR_READ_RESPONSE);
    let run = dev.gemm(&x).unwrap();
    assert_eq!(run.y, golden(&cfg, &w, &x));
}

/// Matrices in several slots stay loaded side by side: each GEMM reads its own slot's
/// weights (a model keeps every weight tile resident).
#[test]
fn weight_slots_hold_several_matrices() {
    let cfg = config_bus(3, 24, 1, 128);
    let mut dev = Device::open("sim:", &cfg, &options()).unwrap();
    dev.set_slots(3).unwrap();
    let layers: Vec<_> = (0..3).map(|s| layer(&cfg, 2, 60 + s)).collect();
    for (slot, (w, _)) in layers.iter().enumerate() {
        dev.load_weights_into(slot, w).unwrap();
    }
    for (slot, (w, x)) in layers.iter().enumerate().rev() {
        let run = dev.gemm_with(slot, x).unwrap();
        assert_eq!(run.y, golden(&cfg, w, x), "slot {slot}, seed {}", 60 + slot);
    }
    dev.set_slots(2).unwrap();
    let err = dev.gemm_with(0, &layers[0].1).unwrap_err().to_string();
    assert!(err.contains("no weights loaded in slot 0"), "{err}");
    let err = dev.gemm_with(2, &layers[0].1).unwrap_err().to_string();
    assert!(err.contains("slot 2 does not exist"), "{err}");
}
