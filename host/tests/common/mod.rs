//! What every end-to-end host test shares: configs, random layers, the golden check,
//! and boards behind each transport.
#![allow(dead_code)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tern_hdl::config::{ConfigBuilder, TableStorage, TopConfig};
use tern_hdl::{Config, DesignConfig};
use tern_host::framed::FramedTransport;
use tern_host::pipe::StreamPipe;
use tern_host::regmap;
use tern_host::server::{serve, serve_connection, Listen, ServeOptions};
use tern_host::sim::SimBoard;
use tern_host::wire::{Header, Opcode, Status, HEADER_BYTES};
use tern_host::{Device, OpenOptions, Transport};
use tern_sim::golden::tlmm::ternary_gemm;
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::{default_cache_root, ModelCache};

/// A small TLMM layer: G, 4 rows × 2 groups per clock, M=20 and K=40 (both padded
/// inside the engine), room for 3 tokens per batch.
pub fn config(g: usize, acc: usize) -> Config {
    config_blocks(g, acc, 1)
}

/// The same with tables for `token_block` tokens: the top streams blocks of tokens and
/// places each result beat at its token's place.
pub fn config_blocks(g: usize, acc: usize, token_block: usize) -> Config {
    config_bus(g, acc, token_block, 128)
}

/// The same behind an AXI4 master of `bus_bits`, with short bursts and a 64 MiB memory.
pub fn config_bus(g: usize, acc: usize, token_block: usize, bus_bits: usize) -> Config {
    ConfigBuilder::tlmm(g, 4, 2)
        .accumulator_bits(acc)
        .storage(TableStorage::Block)
        .weight_buffer_depth(4)
        .token_block(token_block)
        .workload(20, 40, 3)
        .top(TopConfig {
            bus_bits,
            burst_beats: 4,
            reads_in_flight: 2,
            memory_mib: 64,
        })
        .build()
        .unwrap()
}

pub fn cache() -> ModelCache {
    ModelCache::new(default_cache_root())
}

pub fn options() -> OpenOptions {
    OpenOptions {
        cache: default_cache_root(),
        ..OpenOptions::default()
    }
}

/// `sim:` for `cfg` with `memory` behind its top instead of the ideal memory.
pub fn open_sim_on(cfg: &Config, memory: MemoryModel) -> Device {
    let opts = OpenOptions {
        memory: Some(memory),
        ..options()
    };
    Device::open("sim:", cfg, &opts).unwrap()
}

/// Random weights (M×K) and `tokens` activation vectors, from `seed`.
pub fn layer(cfg: &Config, tokens: usize, seed: u64) -> (Vec<i8>, Vec<i8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let w = (0..m * k).map(|_| rng.gen_range(-1i8..=1)).collect();
    let x = (0..tokens * k).map(|_| rng.gen::<i8>()).collect();
    (w, x)
}

pub fn golden(cfg: &Config, w: &[i8], x: &[i8]) -> Vec<i64> {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let w = Array2::from_shape_vec((m, k), w.to_vec()).unwrap();
    let xs = Array2::from_shape_vec((x.len() / k, k), x.to_vec()).unwrap();
    ternary_gemm(w.view(), xs.view()).into_iter().collect()
}

/// The body every backend runs: random layers and the extreme corners, GEMV and a GEMM
/// larger than one batch, each checked against the golden model bit for bit.
pub fn gemm_matches_golden(dev: &mut Device, cfg: &Config, backend: &str) {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let mut cases: Vec<(String, Vec<i8>, Vec<i8>)> = vec![];
    for (seed, tokens) in [(1u64, 1usize), (2, 3), (3, 7)] {
        let (w, x) = layer(cfg, tokens, seed);
        cases.push((format!("random seed {seed}, {tokens} tokens"), w, x));
    }
    cases.push((
        "all +1 weights, x = -128".into(),
        vec![1; m * k],
        vec![-128; 2 * k],
    ));
    cases.push((
        "all -1 weights, x = 127".into(),
        vec![-1; m * k],
        vec![127; k],
    ));
    cases.push(("zero weights".into(), vec![0; m * k], layer(cfg, 2, 9).1));
    for (name, w, x) in cases {
        dev.load_weights(&w).unwrap();
        let run = dev
            .gemm(&x)
            .unwrap_or_else(|e| panic!("{backend}, {name}: {e}"));
        let want = golden(cfg, &w, &x);
        if let Some(i) = (0..want.len()).find(|&i| run.y[i] != want[i]) {
            panic!(
                "{backend}, {name}: first difference at token {}, row {}: board {} golden {} (config: {})",
                i / m,
                i % m,
                run.y[i],
                want[i],
                cfg.to_toml().replace('\n', " ")
            );
        }
        assert!(run.cycles > 0, "{backend}, {name}: no clocks reported");
        let tokens = x.len() / k;
        assert_eq!(run.batches, tokens.div_ceil(dev.batch_tokens()));
        assert!(run.traffic.bytes_to_card >= x.len() as u64);
    }
}

/// A board behind `server::serve` on a background thread (what `tern serve` runs).
pub struct Served {
    pub uri: String,
    pub shutdown: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn serve_in_thread(cfg: &Config, tcp: bool, opts: ServeOptions) -> Served {
    serve_design_in_thread(&DesignConfig::Matmul(cfg.clone()), tcp, opts)
}

/// The same for either engine's top.
pub fn serve_design_in_thread(cfg: &DesignConfig, tcp: bool, opts: ServeOptions) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let listen = if tcp {
        Listen::Tcp("127.0.0.1:0".parse().unwrap())
    } else {
        Listen::Unix(dir.path().join("board.sock"))
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = cfg.clone();
    let flag = shutdown.clone();
    let thread = std::thread::spawn(move || {
        // The Verilator model is built and lives on this thread.
        let mut board = SimBoard::for_design(&cfg, &cache(), None, None).unwrap();
        serve(&listen, &mut board, &opts, &flag, |bound| {
            tx.send(bound.to_string()).unwrap()
        })
        .unwrap();
    });
    let uri = rx.recv().expect("the server thread died before binding");
    Served {
        uri,
        shutdown,
        thread: Some(thread),
        _dir: Some(dir),
    }
}

/// A board answering the framed protocol over an in-memory pipe: the USB path with the
/// USB stack replaced by the pipe.
pub fn usb_over_memory_pipe(cfg: &Config) -> (Box<dyn Transport>, Served) {
    let (host_end, mut board_end) = tern_host::pipe::memory_pipe();
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let cfg2 = cfg.clone();
    let thread = std::thread::spawn(move || {
        let mut board = SimBoard::new(&cfg2, &cache(), None, None).unwrap();
        serve_connection(&mut board_end, &mut board, &ServeOptions::default(), &flag);
    });
    let t = tern_host::framed::FramedTransport::connect(
        host_end,
        "usb (memory pipe)",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    (
        Box::new(t),
        Served {
            uri: "usb-memory-pipe".into(),
            shutdown,
            thread: Some(thread),
            _dir: None,
        },
    )
}

/// Raw-socket helpers: a client written from docs/wire.md alone.
pub fn sock_path(uri: &str) -> &str {
    uri.strip_prefix("unix:").unwrap()
}

/// A raw connection that holds the board: it asks `HW_ID` until the answer is no longer
/// "held by another client" (the previous test client may still be on its way out).
pub fn raw(uri: &str) -> UnixStream {
    let mut s = raw_waiting(uri);
    await_turn(&mut s, Duration::from_secs(20));
    s
}

/// Ask `HW_ID` on `s` until the board answers it (every other answer must be `Held`),
/// for at most `limit`.
pub fn await_turn(s: &mut UnixStream, limit: Duration) {
    let t0 = std::time::Instant::now();
    for tag in 0u32.. {
        let probe = Header::request(Opcode::Read32, tag, u64::from(regmap::HW_ID), 0, 0);
        s.write_all(&probe.encode()).unwrap();
        let (h, text) = reply(s).expect("the server closed a connection waiting its turn");
        assert_eq!(h.tag, tag, "{text}");
        if h.status == Status::Ok as u8 {
            assert_eq!(h.count, regmap::HW_ID_VALUE);
            return;
        }
        assert_eq!(h.status, Status::Held as u8, "{text}");
        assert!(t0.elapsed() < limit, "never got the board: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw connection, nothing sent: it may be waiting behind the holder.
pub fn raw_waiting(uri: &str) -> UnixStream {
    let s = UnixStream::connect(sock_path(uri)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Read one reply frame; None if the server closed instead.
pub fn reply(s: &mut impl Read) -> Option<(Header, String)> {
    let mut h = [0u8; HEADER_BYTES];
    if s.read_exact(&mut h).is_err() {
        return None;
    }
    let h = Header::decode(&h).expect("the server's reply header is well formed");
    let mut body = vec![0u8; h.len as usize];
    s.read_exact(&mut body).unwrap();
    Some((h, String::from_utf8_lossy(&body).into_owned()))
}

/// The server closed the connection (end of stream or reset); a read that merely times
/// out is not a close.
pub fn closed(s: &mut impl Read) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
    }
}

pub fn good_client_works(uri: &str) {
    let s = UnixStream::connect(sock_path(uri)).unwrap();
    // The previous client may still be on its way out: wait for the board a little.
    let mut t = FramedTransport::connect_waiting(
        StreamPipe::new(s),
        uri,
        Duration::from_secs(10),
        Duration::from_secs(10),
        None,
    )
    .unwrap();
    assert_eq!(t.read32(regmap::HW_ID.into()).unwrap(), regmap::HW_ID_VALUE);
}

pub fn tmp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tern-host-{}-{name}", std::process::id()))
}
