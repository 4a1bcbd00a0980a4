//! Transport benchmark: `read32` round-trip latency and 1 MiB DMA throughput over the
//! in-process backend, the Unix socket and TCP loopback (to `tern serve`'s loop in a
//! thread of this process, with the Verilator top behind it), and the raw socket
//! throughput the protocol is measured against.
//!
//! `cargo bench -p tern-host --bench transport` (add `-- --quick` for fewer rounds).
//! Figures are medians over rounds taken in this one run; compare them as ratios.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_hdl::Config;
use tern_host::server::{serve, Listen, ServeOptions};
use tern_host::sim::SimBoard;
use tern_host::{regmap, Device, OpenOptions, Transport};
use tern_sim::verilator::ModelCache;

const MIB: usize = 1 << 20;

/// A 256x256 layer sized for 2048 tokens: a 2 MiB card memory, so 1 MiB DMAs fit.
fn config() -> Config {
    Config::from_toml(
        "[engine]\nkind = \"tlmm\"\ngroup_size = 3\nrows_parallel = 4\ngroups_per_cycle = 2\n\
         activation_bits = 8\naccumulator_bits = 24\ntable_storage = \"distributed\"\n\
         weight_buffer_depth = 16\n[workload]\nm = 256\nk = 256\ntokens = 2048\n",
        "bench",
    )
    .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One raw-socket peer: receives 1 MiB and acks with a byte, or answers a byte with
/// 1 MiB; it only moves bytes.
fn raw_peer<S: Read + Write + Send + 'static>(
    mut server: S,
    rounds: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MIB];
        for _ in 0..rounds {
            server.read_exact(&mut buf).unwrap();
            server.write_all(&[1]).unwrap();
            let mut req = [0u8; 1];
            server.read_exact(&mut req).unwrap();
            server.write_all(&buf).unwrap();
        }
    })
}

fn secs(f: impl FnOnce()) -> f64 {
    let t0 = Instant::now();
    f();
    t0.elapsed().as_secs_f64()
}

fn served(cfg: &Config, listen: Listen) -> (String, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let cfg = cfg.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let mut board = SimBoard::new(&cfg, &ModelCache::default(), None, None).unwrap();
        serve(&listen, &mut board, &ServeOptions::default(), &flag, |b| {
            tx.send(b.to_string()).unwrap()
        })
        .unwrap();
    });
    (rx.recv().unwrap(), shutdown, h)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 31 };
    let cfg = config();
    let opts = OpenOptions {
        timeout: Duration::from_secs(60),
        ..OpenOptions::default()
    };
    let dir = std::env::temp_dir().join(format!("tern-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut sim = SimBoard::new(&cfg, &ModelCache::default(), None, None).unwrap();
    assert!(sim.info().unwrap().card_bytes as usize >= 2 * MIB);
    let (unix_uri, unix_stop, unix_thread) = served(&cfg, Listen::Unix(dir.join("b.sock")));
    let (tcp_uri, tcp_stop, tcp_thread) = served(&cfg, Listen::Tcp("127.0.0.1:0".parse().unwrap()));
    let mut unix =
        tern_host::device::open_transport(&unix_uri, &cfg.clone().into(), &opts).unwrap();
    let mut tcp = tern_host::device::open_transport(&tcp_uri, &cfg.clone().into(), &opts).unwrap();
    let raw_path = dir.join("raw.sock");
    let l = UnixListener::bind(&raw_path).unwrap();
    let mut raw_unix = UnixStream::connect(&raw_path).unwrap();
    let unix_peer = raw_peer(l.accept().unwrap().0, rounds);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut raw_tcp = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    raw_tcp.set_nodelay(true).unwrap();
    let s = l.accept().unwrap().0;
    s.set_nodelay(true).unwrap();
    let tcp_peer = raw_peer(s, rounds);

    // Every round times each path once, back to back, so that the machine's load
    // drifts alike over all of them; the protocol's share is taken per round.
    let data: Vec<u8> = (0..MIB).map(|i| (i * 7) as u8).collect();
    let mut back = vec![0u8; MIB];
    let names = ["in-process", "unix", "tcp"];
    let mut read32 = vec![vec![]; 3];
    let mut write = vec![vec![]; 3];
    let mut read = vec![vec![]; 3];
    let (mut raw_w, mut raw_r) = (vec![vec![]; 2], vec![vec![]; 2]);
    let (mut over_w, mut over_r) = (vec![vec![]; 2], vec![vec![]; 2]);
    for _ in 0..rounds {
        let ts: [&mut dyn Transport; 3] = [&mut sim, unix.as_mut(), tcp.as_mut()];
        let mut w = [0.0; 3];
        let mut r = [0.0; 3];
        for (i, t) in ts.into_iter().enumerate() {
            let n = 500;
            read32[i].push(
                secs(|| {
                    for _ in 0..n {
                        std::hint::black_box(t.read32(regmap::HW_ID.into()).unwrap());
                    }
                }) / n as f64,
            );
            w[i] = secs(|| t.dma_write(0, &data).unwrap());
            r[i] = secs(|| t.dma_read(0, &mut back).unwrap());
            assert_eq!(
                back, data,
                "{}: the DMA round trip corrupted data",
                names[i]
            );
            write[i].push(w[i]);
            read[i].push(r[i]);
        }
        let raws: [&mut dyn RawSocket; 2] = [&mut raw_unix, &mut raw_tcp];
        for (j, s) in raws.into_iter().enumerate() {
            let rw = secs(|| {
                s.write_all(&data).unwrap();
                s.read_exact(&mut [0u8; 1]).unwrap();
            });
            let rr = secs(|| {
                s.write_all(&[1]).unwrap();
                s.read_exact(&mut back).unwrap();
            });
            raw_w[j].push(rw);
            raw_r[j].push(rr);
            // socket path = raw bytes + the board's own copy + the protocol
            over_w[j].push((w[j + 1] - w[0] - rw) / rw);
            over_r[j].push((r[j + 1] - r[0] - rr) / rr);
        }
    }
    drop((unix, tcp));
    for (stop, thread) in [(unix_stop, unix_thread), (tcp_stop, tcp_thread)] {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        thread.join().unwrap();
    }
    unix_peer.join().unwrap();
    tcp_peer.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    // A whole layer in-process, for scale: one 256x256 GEMV.
    let mut dev = Device::attach(Box::new(sim), &cfg, &opts).unwrap();
    let w: Vec<i8> = (0..256 * 256).map(|i| (i % 3) as i8 - 1).collect();
    dev.load_weights(&w).unwrap();
    let x: Vec<i8> = (0..256).map(|i| i as i8).collect();
    let gemv = median(
        (0..rounds)
            .map(|_| dev.gemm(&x).unwrap().wall.as_secs_f64() * 1e3)
            .collect(),
    );

    let mb_s = |v: &Vec<f64>| MIB as f64 / 1e6 / median(v.clone());
    println!(
        "tern-host transport benchmark ({rounds} interleaved rounds, medians; 1 MiB = {MIB} bytes)"
    );
    println!();
    println!("| path | read32 round trip (µs) | DMA write 1 MiB (MB/s) | DMA read 1 MiB (MB/s) |");
    println!("|---|---|---|---|");
    for (i, name) in [
        "in-process (Verilator top)",
        "Unix socket to the serve loop",
        "TCP loopback to the serve loop",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "| {name} | {:.2} | {:.0} | {:.0} |",
            median(read32[i].clone()) * 1e6,
            mb_s(&write[i]),
            mb_s(&read[i])
        );
    }
    println!(
        "| raw Unix socket (bytes only) | | {:.0} | {:.0} |",
        mb_s(&raw_w[0]),
        mb_s(&raw_r[0])
    );
    println!(
        "| raw TCP loopback (bytes only) | | {:.0} | {:.0} |",
        mb_s(&raw_w[1]),
        mb_s(&raw_r[1])
    );
    println!();
    println!("Protocol overhead on 1 MiB, per round (socket path - in-process board - raw socket) / raw socket, median [p25, p75]:");
    let q = |v: &Vec<f64>, p: f64| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        100.0 * v[((v.len() - 1) as f64 * p).round() as usize]
    };
    for (j, name) in ["Unix", "TCP"].iter().enumerate() {
        println!(
            "  {name}: write {:+.0}% [{:+.0}, {:+.0}], read {:+.0}% [{:+.0}, {:+.0}] (target <= 10%)",
            q(&over_w[j], 0.5), q(&over_w[j], 0.25), q(&over_w[j], 0.75),
            q(&over_r[j], 0.5), q(&over_r[j], 0.25), q(&over_r[j], 0.75),
        );
    }
    println!("one 256x256 GEMV in-process (DMA, run, read back): {gemv:.2} ms median");
}

trait RawSocket: Read + Write {}
impl<T: Read + Write> RawSocket for T {}
