//! Faults: malformed frames, bad accesses and broken peers get typed errors or the
//! protocol's error reply; the daemon's loop keeps serving the next client; nothing
//! hangs past its timeout.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_host::framed::FramedTransport;
use tern_host::pipe::StreamPipe;
use tern_host::server::ServeOptions;
use tern_host::wire::{Header, Opcode, Status, HEADER_BYTES, MAX_PAYLOAD, REPLY};
use tern_host::{regmap, HostError, Transport};

#[test]
fn malformed_frames_get_an_error_reply_and_the_daemon_serves_the_next_client() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let uri = served.uri.clone();
    let good = Header::request(Opcode::Read32, 42, 0, 0, 0).encode();

    // Bad magic: error reply naming it, then the server closes.
    let mut s = raw(&uri);
    let mut b = good;
    b[0..4].copy_from_slice(b"JUNK");
    s.write_all(&b).unwrap();
    let (h, msg) = reply(&mut s).expect("an error reply");
    assert_eq!(h.status, Status::BadMagic as u8);
    assert_eq!(h.tag, 42);
    assert!(msg.contains("magic"), "{msg}");
    assert!(closed(&mut s));
    good_client_works(&uri);

    // Bad version.
    let mut s = raw(&uri);
    let mut b = good;
    b[4] = 7;
    s.write_all(&b).unwrap();
    let (h, msg) = reply(&mut s).unwrap();
    assert_eq!(h.status, Status::BadVersion as u8);
    assert!(msg.contains("version 7"), "{msg}");
    assert!(closed(&mut s));
    good_client_works(&uri);

    // Oversize length: refused before anything is allocated or read.
    let mut s = raw(&uri);
    let h = Header::request(Opcode::DmaWrite, 3, 0, 0, MAX_PAYLOAD + 1);
    s.write_all(&h.encode()).unwrap();
    let (h, msg) = reply(&mut s).unwrap();
    assert_eq!(h.status, Status::TooLarge as u8);
    assert!(msg.contains("exceeds"), "{msg}");
    assert!(closed(&mut s));
    good_client_works(&uri);

    // Truncated frame: half a header, then the client hangs up.
    let mut s = raw(&uri);
    s.write_all(&good[..13]).unwrap();
    drop(s);
    // ... and a frame whose payload never arrives in full.
    let mut s = raw(&uri);
    s.write_all(&Header::request(Opcode::DmaWrite, 4, 0, 64, 64).encode())
        .unwrap();
    s.write_all(&[0u8; 10]).unwrap();
    drop(s);
    good_client_works(&uri);

    // Unknown opcode with a sound header: an error reply, and the connection goes on.
    let mut s = raw(&uri);
    let mut b = Header::request(Opcode::Info, 9, 0, 0, 3).encode();
    b[6] = 0x55;
    s.write_all(&b).unwrap();
    s.write_all(b"abc").unwrap();
    let (h, msg) = reply(&mut s).unwrap();
    assert_eq!(
        (h.opcode, h.status),
        (0x55 | REPLY, Status::UnknownOpcode as u8)
    );
    assert!(msg.contains("0x55"), "{msg}");
    // A DMA write whose count disagrees with its payload, a payload on a read32, a
    // misaligned and an out-of-range access: error replies, same connection.
    for (h, payload, status) in [
        (
            Header::request(Opcode::DmaWrite, 10, 0, 8, 4),
            vec![0u8; 4],
            Status::BadRequest,
        ),
        (
            Header::request(Opcode::Read32, 11, 0, 0, 4),
            vec![0u8; 4],
            Status::BadRequest,
        ),
        (
            Header::request(Opcode::Read32, 12, 2, 0, 0),
            vec![],
            Status::Unaligned,
        ),
        (
            Header::request(Opcode::Read32, 13, 0x1000, 0, 0),
            vec![],
            Status::OutOfRange,
        ),
        (
            Header::request(Opcode::DmaRead, 14, 1 << 40, 4, 0),
            vec![],
            Status::OutOfRange,
        ),
        (
            Header::request(Opcode::DmaRead, 15, 0, (MAX_PAYLOAD + 4) as u32, 0),
            vec![],
            Status::TooLarge,
        ),
    ] {
        s.write_all(&h.encode()).unwrap();
        s.write_all(&payload).unwrap();
        let (r, msg) = reply(&mut s).unwrap();
        assert_eq!(
            (r.tag, r.status),
            (h.tag, status as u8),
            "tag {}: {msg}",
            h.tag
        );
    }
    s.write_all(&good).unwrap();
    let (h, _) = reply(&mut s).unwrap();
    assert_eq!((h.tag, h.status, h.count), (42, 0, regmap::AP_IDLE));
    drop(s);
    good_client_works(&uri);
}

#[test]
fn bad_accesses_are_typed_errors_on_every_backend() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, true, ServeOptions::default());
    let (usb, _usb_board) = usb_over_memory_pipe(&cfg);
    let backends: Vec<(&str, Box<dyn Transport>)> = vec![
        (
            "sim",
            Box::new(tern_host::sim::SimBoard::new(&cfg, &cache(), None, None).unwrap()),
        ),
        (
            "tcp",
            tern_host::device::open_transport(&served.uri, &cfg.clone().into(), &options())
                .unwrap(),
        ),
        ("usb", usb),
    ];
    for (name, mut t) in backends {
        let card = t.info().unwrap().card_bytes;
        let e = t.read32(0x11).unwrap_err();
        assert!(matches!(e, HostError::Unaligned { .. }), "{name}: {e}");
        let e = t.write32(0x400, 1).unwrap_err();
        assert!(matches!(e, HostError::OutOfRange { .. }), "{name}: {e}");
        let e = t.dma_write(2, &[0; 4]).unwrap_err();
        assert!(matches!(e, HostError::Unaligned { .. }), "{name}: {e}");
        let e = t.dma_write(0, &[0; 6]).unwrap_err();
        assert!(matches!(e, HostError::Unaligned { .. }), "{name}: {e}");
        let e = t.dma_read(card - 4, &mut [0; 8]).unwrap_err();
        assert!(matches!(e, HostError::OutOfRange { .. }), "{name}: {e}");
        let e = t.dma_read(u64::MAX - 3, &mut [0; 4]).unwrap_err();
        assert!(matches!(e, HostError::OutOfRange { .. }), "{name}: {e}");
        // A wait with the interrupt disabled times out within its bound.
        let t0 = Instant::now();
        let e = t.wait_irq(1, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, HostError::Timeout { .. }), "{name}: {e}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{name}");
        // The backend still works after all of that.
        assert_eq!(
            t.read32(regmap::HW_ID.into()).unwrap(),
            regmap::HW_ID_VALUE,
            "{name}"
        );
        // The buffers belong to a running kernel: a run is started and DMA is refused
        // with Busy until it ends.
        let layout = tern_hdl::top::MemoryLayout::of(&cfg);
        let w = layout.weight_region_bytes() as u32;
        t.write32(regmap::TOKENS.into(), 1).unwrap();
        t.write32(regmap::WEIGHTS.into(), 0).unwrap();
        t.write32(regmap::ACTIVATIONS.into(), w).unwrap();
        t.write32(
            regmap::RESULTS.into(),
            w + layout.activation_stride() as u32,
        )
        .unwrap();
        t.write32(regmap::CONTROL.into(), regmap::AP_START).unwrap();
        let e = t.dma_write(0, &[0; 4]).unwrap_err();
        assert!(matches!(e, HostError::Busy), "{name}: {e}");
        t.reset().unwrap();
        t.dma_write(0, &[0; 4]).unwrap();
    }
}

#[test]
fn a_client_gets_an_error_within_its_timeout_when_the_board_side_stops_answering() {
    // A peer that accepts and then neither answers nor closes (a frozen daemon).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frozen.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let holder = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let s = UnixStream::connect(&path).unwrap();
    let t0 = Instant::now();
    let err = FramedTransport::connect(StreamPipe::new(s), "frozen", Duration::from_millis(500))
        .err()
        .expect("no answer must be an error");
    assert!(matches!(err, HostError::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    holder.join().unwrap();

    // A peer that dies mid-reply: the header promises a payload that never comes.
    let path = dir.path().join("dying.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let dying = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut h = [0u8; HEADER_BYTES];
        s.read_exact(&mut h).unwrap();
        let req = Header::decode(&h).unwrap();
        let mut r = Header::request(Opcode::Info, req.tag, 0, 0, 100);
        r.opcode |= REPLY;
        s.write_all(&r.encode()).unwrap();
        s.write_all(b"{\"desc").unwrap();
    });
    let s = UnixStream::connect(&path).unwrap();
    let err = FramedTransport::connect(StreamPipe::new(s), "dying", Duration::from_secs(5))
        .err()
        .expect("a truncated reply must be an error");
    assert!(matches!(err, HostError::Disconnected(_)), "{err}");
    dying.join().unwrap();
}

#[test]
fn an_idle_client_is_disconnected_and_the_next_one_served() {
    let cfg = config(3, 24);
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            idle_timeout: Duration::from_millis(300),
            ..ServeOptions::default()
        },
    );
    let mut idle = raw(&served.uri);
    let t0 = Instant::now();
    assert!(closed(&mut idle), "the idle client was not disconnected");
    assert!(t0.elapsed() < Duration::from_secs(5));
    good_client_works(&served.uri);
}

/// A client that starts a kernel and dies without waiting for it (as `kill -9` of
/// `tern run` does) must not leave the board to the next client mid-run.
#[test]
fn a_client_killed_mid_run_does_not_wedge_the_board() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    {
        let mut dev = tern_host::Device::open(&served.uri, &cfg, &options()).unwrap();
        let (w, _) = layer(&cfg, 1, 3);
        dev.load_weights(&w).unwrap();
    }
    {
        let s = UnixStream::connect(sock_path(&served.uri)).unwrap();
        let mut t = FramedTransport::connect_waiting(
            StreamPipe::new(s),
            &served.uri,
            Duration::from_secs(10),
            Duration::from_secs(10),
            None,
        )
        .unwrap();
        let layout = tern_hdl::top::MemoryLayout::of(&cfg);
        let w = layout.weight_region_bytes() as u32;
        t.write32(regmap::ACTIVATIONS.into(), w).unwrap();
        t.write32(
            regmap::RESULTS.into(),
            w + 3 * layout.activation_stride() as u32,
        )
        .unwrap();
        t.write32(regmap::TOKENS.into(), 3).unwrap();
        t.write32(regmap::CONTROL.into(), regmap::AP_START).unwrap();
        // Dropped here, mid-run: the socket closes as it would for a killed process.
    }
    for attempt in 0..3 {
        let mut dev = tern_host::Device::open(&served.uri, &cfg, &options()).unwrap();
        gemm_matches_golden(
            &mut dev,
            &cfg,
            &format!("client {attempt} after a killed one"),
        );
    }
}

/// A request that takes longer than the frame timeout still gets its reply.
#[test]
fn a_request_longer_than_the_frame_timeout_gets_its_reply() {
    let cfg = config(3, 24);
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            frame_timeout: Duration::from_millis(200),
            ..ServeOptions::default()
        },
    );
    let mut s = raw(&served.uri);
    // wait_irq with no line enabled: the board waits out the 600 ms and says Timeout.
    let wait = Header {
        opcode: Opcode::WaitIrq as u8,
        status: 0,
        tag: 7,
        addr: 600,
        count: 0,
        len: 0,
    };
    s.write_all(&wait.encode()).unwrap();
    let (h, text) = reply(&mut s).expect("the reply to a long wait_irq was lost");
    assert_eq!(h.tag, 7);
    assert_eq!(h.status, Status::Timeout as u8, "{text}");
    drop(s);
    good_client_works(&served.uri);
}

/// A pause inside a frame shorter than the frame timeout is not a broken frame.
#[test]
fn a_pause_inside_a_frame_within_the_frame_timeout_is_accepted() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let mut s = raw(&served.uri);
    let read = Header {
        opcode: Opcode::Read32 as u8,
        status: 0,
        tag: 9,
        addr: u64::from(regmap::HW_ID),
        count: 0,
        len: 0,
    }
    .encode();
    s.write_all(&read[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    s.write_all(&read[5..]).unwrap();
    let (h, text) = reply(&mut s).expect("the server dropped a frame paused for 0.4 s");
    assert_eq!(h.status, Status::Ok as u8, "{text}");
    assert_eq!(h.count, regmap::HW_ID_VALUE);
}

/// SIGTERM (the shutdown flag) ends a long wait_irq within a poll slice, not after the
/// client's whole timeout.
#[test]
fn shutdown_does_not_wait_behind_a_long_wait_irq() {
    let cfg = config(3, 24);
    let mut served = serve_in_thread(&cfg, false, ServeOptions::default());
    let mut s = raw(&served.uri);
    let wait = Header::request(Opcode::WaitIrq, 3, 30_000, 0, 0);
    s.write_all(&wait.encode()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    served
        .shutdown
        .store(true, std::sync::atomic::Ordering::Relaxed);
    served.thread.take().unwrap().join().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the server took {:?} to stop",
        t0.elapsed()
    );
    let (h, text) = reply(&mut s).expect("the abandoned wait got no reply");
    assert_ne!(h.status, Status::Ok as u8, "{text}");
    assert!(text.contains("shutting down"), "{text}");
}

/// One fuzz connection's bytes: random bytes, or a few well-formed requests with random
/// opcodes, addresses, counts and payloads (a wait_irq capped at 100 ms), cut short at a
/// random point half of the time.
fn fuzz_bytes(rng: &mut ChaCha8Rng, card_bytes: u64) -> Vec<u8> {
    let mut out = vec![];
    if rng.gen_bool(0.3) {
        let n = rng.gen_range(0..120);
        out.extend((0..n).map(|_| rng.gen::<u8>()));
        if n >= 4 && rng.gen_bool(0.5) {
            out[..4].copy_from_slice(b"TERN");
        }
        return out;
    }
    for _ in 0..rng.gen_range(1..5) {
        let opcode = rng.gen_range(0u8..10);
        let addr = match rng.gen_range(0..4) {
            0 => rng.gen::<u64>(),
            1 => u64::from(rng.gen_range(0..regmap::WINDOW_BYTES / 4) * 4),
            2 => rng.gen_range(0..card_bytes + 64) & !3,
            _ => rng.gen_range(0..100),
        };
        let addr = if opcode == Opcode::WaitIrq as u8 {
            addr % 100
        } else {
            addr
        };
        let len = if opcode == Opcode::DmaWrite as u8 || rng.gen_bool(0.1) {
            rng.gen_range(0..64usize) & !3
        } else {
            0
        };
        let count = match rng.gen_range(0..3) {
            0 => len as u32,
            1 => rng.gen_range(0..256),
            _ => rng.gen(),
        };
        let mut h = Header::request(Opcode::Info, rng.gen(), addr, count, len).encode();
        h[6] = opcode;
        out.extend_from_slice(&h);
        out.extend((0..len).map(|_| rng.gen::<u8>()));
    }
    if rng.gen_bool(0.5) {
        let cut = rng.gen_range(0..out.len());
        out.truncate(cut);
    }
    out
}

/// Bounded protocol fuzzing, kept in CI: connections one after another (holders and
/// clients waiting behind them) send random frames and hang up. Every reply is a
/// well-formed frame with a known status, every connection ends, and afterwards a good
/// client still gets bit-exact results.
#[test]
fn fuzzed_connections_never_wedge_the_daemon() {
    fuzz_daemon(0x7E4A, 1000, None);
}

/// The same against a daemon that asks a token: no fuzzed connection (none knows the
/// token) gets an `Ok` to anything but an `auth` challenge, so none reaches the board.
#[test]
fn fuzzed_connections_never_get_past_a_token() {
    let secret = tern_host::auth::Secret::from_text("the fuzzers do not know this one", "t");
    fuzz_daemon(0x7E4B, 400, Some(secret.unwrap()));
}

fn fuzz_daemon(seed: u64, connections: usize, secret: Option<tern_host::auth::Secret>) {
    let cfg = config(3, 24);
    let guarded = secret.is_some();
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            secret: secret.clone(),
            ..ServeOptions::default()
        },
    );
    let card_bytes = cfg.top.memory_bytes();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();
    for i in 0..connections {
        let bytes = fuzz_bytes(&mut rng, card_bytes);
        let mut s = raw_waiting(&served.uri);
        // The daemon may close first (a broken frame): a failed write is part of the game.
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        loop {
            let mut h = [0u8; HEADER_BYTES];
            match s.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "seed {seed:#x}, connection {i}: no reply and no close ({e}); sent {bytes:02x?}"
                ),
            }
            let h = Header::decode(&h).unwrap_or_else(|e| {
                panic!("seed {seed:#x}, connection {i}: malformed reply header ({e})")
            });
            assert!(
                Status::from_u8(h.status).is_some(),
                "seed {seed:#x}, connection {i}: unknown status {}",
                h.status
            );
            assert!(
                !guarded
                    || h.status != Status::Ok as u8
                    || h.opcode == Opcode::Auth as u8 | tern_host::wire::REPLY,
                "seed {seed:#x}, connection {i}: opcode 0x{:02x} answered Ok without the token; sent {bytes:02x?}",
                h.opcode
            );
            let mut body = vec![0u8; h.len as usize];
            s.read_exact(&mut body).unwrap();
        }
    }
    let fuzz_time = t0.elapsed();
    let opts = tern_host::OpenOptions {
        token: secret,
        ..options()
    };
    let mut dev = tern_host::Device::open(&served.uri, &cfg, &opts).unwrap();
    gemm_matches_golden(
        &mut dev,
        &cfg,
        &format!("after {connections} fuzzed connections (seed {seed:#x})"),
    );
    eprintln!("{connections} fuzzed connections in {fuzz_time:?}");
}
