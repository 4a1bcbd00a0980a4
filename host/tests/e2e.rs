//! One test body (`gemm_matches_golden`), every backend that can run here: the
//! Verilator top in-process, `tern serve`'s loop over a Unix socket and over TCP
//! loopback, and the USB framing over an in-memory pipe. Each result is compared with
//! the golden model bit for bit.

mod common;

use common::*;
use std::time::Duration;
use tern_host::server::ServeOptions;
use tern_host::{Device, Transport};

#[test]
fn in_process_sim_matches_golden() {
    for (g, acc, tb) in [(3, 24, 1), (2, 16, 1), (5, 32, 1), (3, 24, 2), (4, 24, 3)] {
        let cfg = config_blocks(g, acc, tb);
        let mut dev = Device::open("sim:", &cfg, &options()).unwrap();
        gemm_matches_golden(
            &mut dev,
            &cfg,
            &format!("sim (G={g}, acc {acc}, token block {tb})"),
        );
    }
}

/// An engine that sends one result beat more than the run expects: the top refuses
/// it (never writes it to card memory) and flags ERROR bit 3, which the host reports.
#[test]
fn an_extra_result_beat_is_flagged_by_the_top() {
    let cfg = config(3, 24);
    let mut top = tern_hdl::top::generate_top(&cfg).unwrap();
    // After every result of a 3-token run (3 tokens × 5 row blocks), one more.
    top.engine = tern_sim::mutation::extra_result_after(&top.engine, 15);
    top.content_hash = tern_hdl::top::top_content_hash(&top.engine, &top.top_verilog);
    let board = tern_host::sim::SimBoard::from_top(top, &cache(), None).unwrap();
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

#[test]
fn the_top_s_host_memory_port_and_the_dma_path_see_the_same_card_memory() {
    let cfg = config(3, 24);
    let mut board = tern_host::sim::SimBoard::new(&cfg, &cache(), None).unwrap();
    let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    board.port_write(256, &data).unwrap();
    let mut back = vec![0u8; 64];
    board.dma_read(256, &mut back).unwrap();
    assert_eq!(back, data, "port write, DMA read");
    board.dma_write(512, &data).unwrap();
    board.port_read(512, &mut back).unwrap();
    assert_eq!(back, data, "DMA write, port read");
}

fn read_card(t: &mut dyn Transport, addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    t.dma_read(addr, &mut out).unwrap();
    out
}

#[test]
fn registers_follow_the_vitis_handshake() {
    use tern_host::regmap::*;
    let cfg = config(3, 24);
    let mut board = tern_host::sim::SimBoard::new(&cfg, &cache(), None).unwrap();
    let t: &mut dyn Transport = &mut board;
    assert_eq!(t.read32(HW_ID.into()).unwrap(), HW_ID_VALUE);
    assert_eq!(t.read32(CONTROL.into()).unwrap(), AP_IDLE);
    // Arguments read back; a start with zero tokens is refused with the reason, and
    // ap_done is set and then cleared by the read.
    t.write32(WEIGHTS.into(), 0).unwrap();
    t.write32(ACTIVATIONS.into(), 0x400).unwrap();
    t.write32(RESULTS.into(), 0x800).unwrap();
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
    // Misaligned and out-of-range arguments are refused too.
    t.write32(TOKENS.into(), 1).unwrap();
    t.write32(ACTIVATIONS.into(), 0x402).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    assert_eq!(t.read32(ERROR.into()).unwrap(), ERR_MISALIGNED);
    t.write32(ACTIVATIONS.into(), 0x1000_0000).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    assert_eq!(t.read32(ERROR.into()).unwrap(), ERR_OUT_OF_RANGE);
    // Every region is checked to its end, and regions must not overlap: results placed
    // one word before the end of card memory for 4 tokens would wrap over the weights.
    let layout = tern_hdl::top::CardLayout::of(&cfg).unwrap();
    let (w, a) = (
        layout.weight_bytes() as u32,
        layout.activation_bytes() as u32,
    );
    let card = layout.card_bytes() as u32;
    let weights_before = read_card(t, 0, w as usize);
    for (act, res, tokens, expected) in [
        (w, card - 4, 4, ERR_OUT_OF_RANGE),
        (card - a, w + 4 * a, 2, ERR_OUT_OF_RANGE),
        (w, w - 4, 1, ERR_OVERLAP),
        (w, w + a, 2, ERR_OVERLAP),
        (w - 4, w + 4 * a, 1, ERR_OVERLAP),
    ] {
        t.write32(ACTIVATIONS.into(), act).unwrap();
        t.write32(RESULTS.into(), res).unwrap();
        t.write32(TOKENS.into(), tokens).unwrap();
        t.write32(CONTROL.into(), AP_START).unwrap();
        assert_eq!(
            t.read32(ERROR.into()).unwrap(),
            expected,
            "activations 0x{act:x}, results 0x{res:x}, {tokens} tokens"
        );
        // And the host's own check agrees.
        assert!(layout
            .check_regions(0, act.into(), res.into(), tokens.into())
            .is_err());
    }
    // The refused starts raised the done interrupt; clear it before a sound run.
    let pending = t.read32(ISR.into()).unwrap();
    t.write32(ISR.into(), pending).unwrap();
    t.write32(TOKENS.into(), 1).unwrap();
    t.write32(ACTIVATIONS.into(), w).unwrap();
    t.write32(RESULTS.into(), w + a).unwrap();
    t.write32(CONTROL.into(), AP_START).unwrap();
    assert_eq!(t.read32(ERROR.into()).unwrap(), 0, "a sound layout starts");
    t.wait_irq(1, Duration::from_secs(10)).unwrap();
    assert_eq!(
        read_card(t, 0, w as usize),
        weights_before,
        "the weights were overwritten"
    );
    // With the interrupt disabled nothing fires: the wait times out.
    let pending = t.read32(ISR.into()).unwrap();
    t.write32(ISR.into(), pending).unwrap();
    t.write32(GIE.into(), 0).unwrap();
    let err = t.wait_irq(1, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, tern_host::HostError::Timeout { .. }), "{err}");
}
