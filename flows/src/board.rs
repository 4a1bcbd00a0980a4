//! `tern serve` (a simulated board behind a socket) and `tern run` (a ternary layer on
//! any board URI, checked against the golden model).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_hdl::config::TopConfig;
use tern_hdl::{Config, DesignConfig};
use tern_host::server::{serve, Listen, ServeOptions};
use tern_host::sim::SimBoard;
use tern_host::weights_file::TernaryMatrix;
use tern_host::{Device, OpenOptions, Transport};
use tern_sim::golden::tlmm::ternary_gemm;
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::ModelCache;

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM ask the daemon to finish the current request and exit.
fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// The `[top]` and board of either kind of config.
fn top_and_board(cfg: &DesignConfig) -> (&TopConfig, Option<&String>) {
    match cfg {
        DesignConfig::Matmul(c) => (&c.top, c.board.as_ref()),
        DesignConfig::Attention(c) => (&c.top, c.board.as_ref()),
    }
}

/// Read latency of the DDR model (address to first beat), in ns. The boards' data sheets
/// give no figure for a fabric master; ~100–150 ns from a PL master through the Zynq
/// UltraScale+ HP ports to DDR4 is the commonly measured range, so 120 ns is assumed.
pub const DDR_LATENCY_NS: f64 = 120.0;
/// Read bursts the memory controller accepts ahead (the HP ports queue more than this).
pub const DDR_READS_AHEAD: u32 = 16;

/// The simulated board's memory for `cfg`: its size from `top.memory_mib`, bandwidth at
/// the board's clock and the assumed latency from the config's board (no board: a
/// memory that keeps up with any bus). The description says which.
pub fn memory_model(cfg: &Config) -> Result<(MemoryModel, String)> {
    memory_model_for(&DesignConfig::Matmul(cfg.clone()))
}

/// [`memory_model`] for either kind of config.
pub fn memory_model_for(cfg: &DesignConfig) -> Result<(MemoryModel, String)> {
    let (top, board) = top_and_board(cfg);
    let bytes = top.memory_bytes();
    let Some(name) = board else {
        return Ok((
            MemoryModel::ideal(bytes),
            "ideal memory (the config names no board)".into(),
        ));
    };
    let board = tern_boards::Board::resolve(name).with_context(|| format!("board `{name}`"))?;
    if bytes > board.memory.bytes {
        bail!(
            "top.memory_mib = {} is more than the {} bytes of {} on {}",
            top.memory_mib,
            board.memory.bytes,
            board.memory.kind,
            board.name
        );
    }
    let mhz = board.clock.default_mhz;
    let model = MemoryModel {
        bytes,
        bytes_per_clock: board.memory.gbyte_per_s * 1e3 / mhz,
        latency_clocks: (DDR_LATENCY_NS * mhz / 1e3).ceil() as u32,
        max_reads: DDR_READS_AHEAD,
        stall_percent: 0,
        seed: 1,
    };
    let text = format!(
        "{} model: {:.1} GB/s = {:.1} B/clock at {mhz} MHz, {} clocks ({DDR_LATENCY_NS} ns, assumed) latency",
        board.memory.kind, board.memory.gbyte_per_s, model.bytes_per_clock, model.latency_clocks
    );
    Ok((model, text))
}

/// Fewest clocks that can move `read` and `written` bytes: the read and write channels
/// carry one bus word per clock each, and both share the memory's bandwidth (when known).
pub fn bandwidth_bound(bus_bytes: f64, memory: Option<f64>, read: u64, written: u64) -> u64 {
    let channels = read.max(written) as f64 / bus_bytes;
    let shared = memory.map_or(0.0, |m| (read + written) as f64 / m);
    channels.max(shared).ceil() as u64
}

pub fn serve_command(
    config: &Path,
    listen: &str,
    opts: &ServeOptions,
    waveform: Option<&Path>,
) -> Result<()> {
    let cfg = DesignConfig::from_path(config)?;
    let listen = Listen::parse(listen)?;
    // Before the model is built: a refused address should not cost a build.
    tern_host::server::check_listen(&listen, opts)?;
    eprintln!("building the Verilator model of the accelerator top (cached after the first time)");
    let (memory, memory_text) = memory_model_for(&cfg)?;
    eprintln!("memory: {memory_text}");
    let mut board = SimBoard::for_design(&cfg, &ModelCache::default(), waveform, Some(memory))?;
    let info = board.info()?;
    install_signal_handlers();
    let t0 = Instant::now();
    let summary = serve(&listen, &mut board, opts, &SHUTDOWN, |bound| {
        println!(
            "serving {bound}: {} (design id {:08x}); one client at a time, up to {} waiting \
             (idle timeout {} s, hold limit {} s while others wait); {}; Ctrl-C to stop",
            info.description,
            info.design_id,
            opts.max_waiting,
            opts.idle_timeout.as_secs(),
            opts.max_hold.as_secs(),
            if opts.secret.is_some() {
                "clients must prove the token"
            } else {
                "no token asked"
            }
        );
    })?;
    board.flush_waveform();
    println!(
        "stopped after {:.1} s: {} connections, {} requests, {} clocks simulated",
        t0.elapsed().as_secs_f64(),
        summary.connections,
        summary.requests,
        board.cycles()
    );
    Ok(())
}

/// The weights (`given`, or random) and `tokens` random activation vectors of a layer,
/// drawn in that order from `seed`: what `tern run` and the demo put on a board.
pub fn random_layer(
    cfg: &Config,
    tokens: usize,
    seed: u64,
    given: Option<Vec<i8>>,
) -> (Vec<i8>, Vec<i8>) {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = given.unwrap_or_else(|| (0..m * k).map(|_| rng.gen_range(-1i8..=1)).collect());
    let x = (0..tokens * k).map(|_| rng.gen()).collect();
    (w, x)
}

/// The golden model's outputs for a layer, token-major (as `Device::gemm` returns them).
pub fn golden(cfg: &Config, w: &[i8], x: &[i8]) -> Vec<i64> {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let w = ndarray::ArrayView2::from_shape((m, k), w).expect("M x K weights");
    let xs = ndarray::ArrayView2::from_shape((x.len() / k, k), x).expect("whole tokens");
    ternary_gemm(w, xs).into_iter().collect()
}

pub struct RunArgs {
    pub uri: String,
    pub config: PathBuf,
    pub tokens: Option<usize>,
    pub seed: u64,
    pub weights: Option<PathBuf>,
    pub activations: Option<PathBuf>,
    /// Attention only: the KV cache's keys and values (.npy, (seq_len, head_dim)).
    pub keys: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub timeout: Duration,
    pub board_wait: Duration,
    /// The token of a `tern serve --token-file` board.
    pub token: Option<tern_host::auth::Secret>,
}

pub(crate) fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// Activations from a `.npy` file: int8 values (any integer dtype within range), shape
/// `(tokens, K)` or `(K,)`; token-major.
pub fn read_activations(path: &Path, k: usize) -> Result<Vec<i8>> {
    read_int8_rows(
        path,
        ("activations", "token"),
        "the config's layer takes (tokens, K",
        k,
    )
}

/// Rows of `width` int8 values from a `.npy` file (any integer dtype within range), shape
/// `(rows, width)` or `(width,)`; row-major. `what` (the file, a row) and `takes` name
/// them in errors.
pub fn read_int8_rows(
    path: &Path,
    (what, unit): (&str, &str),
    takes: &str,
    width: usize,
) -> Result<Vec<i8>> {
    let k = width;
    let a = tern_host::npy::read(path)?;
    let tokens = match a.shape[..] {
        [kk] if kk == k => 1,
        [t, kk] if kk == k && t > 0 => t,
        _ => bail!(
            "{what} file {}: shape {:?}, but {takes} = {k}) or ({k},)",
            path.display(),
            a.shape
        ),
    };
    let mut x = Vec::with_capacity(tokens * k);
    for (i, &v) in a.values.iter().enumerate() {
        let Ok(byte) = i8::try_from(v) else {
            bail!(
                "{what} file {}: value {v} at {unit} {}, column {} is outside int8 (-128..=127)",
                path.display(),
                i / k,
                i % k
            );
        };
        x.push(byte);
    }
    Ok(x)
}

/// What `tern run --out` writes beside the arrays.
#[derive(serde::Serialize)]
struct RunRecord<'a> {
    format: &'static str,
    config: String,
    board_uri: &'a str,
    board: &'a str,
    design_id: String,
    m: usize,
    k: usize,
    tokens: usize,
    seed: u64,
    weights_from: Option<String>,
    activations_from: Option<String>,
    kernel_clocks: u64,
    batches: usize,
    streaming_model_clocks: u64,
    bandwidth_bound_clocks: u64,
    bytes_read: u64,
    bytes_written: u64,
    bit_exact: bool,
    first_difference: Option<usize>,
}

pub fn run_command(a: &RunArgs) -> Result<()> {
    let cfg = match DesignConfig::from_path(&a.config)? {
        DesignConfig::Matmul(cfg) => cfg,
        DesignConfig::Attention(cfg) => return crate::attention_run::run(a, &cfg),
    };
    if a.keys.is_some() || a.values.is_some() {
        bail!(
            "--keys and --values are for attention configs; {} is a matmul layer",
            a.config.display()
        );
    }
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let given_x = match &a.activations {
        Some(path) => Some(read_activations(path, k)?),
        None => None,
    };
    let tokens = match (&given_x, a.tokens) {
        (Some(x), Some(t)) if t != x.len() / k => bail!(
            "--tokens {t} disagrees with the {} tokens in {}",
            x.len() / k,
            a.activations.as_ref().expect("given").display()
        ),
        (Some(x), _) => x.len() / k,
        (None, t) => t.unwrap_or(cfg.workload.tokens),
    };
    if tokens == 0 {
        bail!("--tokens must be at least 1");
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the output directory {}", dir.display()))?;
    }
    let given = match &a.weights {
        Some(path) => {
            let t = TernaryMatrix::read(path)?;
            if (t.m, t.k) != (m, k) {
                bail!(
                    "weights file {} holds a {}x{} matrix, but {} is built for M x K = {m}x{k}",
                    path.display(),
                    t.m,
                    t.k,
                    a.config.display()
                );
            }
            Some(t.w)
        }
        None => None,
    };
    let (w, random_x) = random_layer(&cfg, tokens, a.seed, given);
    let x = given_x.unwrap_or(random_x);
    let (memory, memory_text) = memory_model(&cfg)?;
    let opts = OpenOptions {
        timeout: a.timeout,
        run_timeout: a.timeout.max(Duration::from_secs(60)),
        board_wait: a.board_wait,
        memory: Some(memory),
        token: a.token.clone(),
        ..OpenOptions::default()
    };
    let t_open = Instant::now();
    let mut dev =
        Device::open(&a.uri, &cfg, &opts).with_context(|| format!("opening board {}", a.uri))?;
    let open_time = t_open.elapsed();
    let t_load = Instant::now();
    dev.load_weights(&w)?;
    let load_time = t_load.elapsed();
    let weight_bytes = dev.traffic.bytes_to_card;
    let run = dev.gemm(&x)?;
    let want = golden(&cfg, &w, &x);
    let first_diff = (0..want.len()).find(|&i| run.y[i] != want[i]);

    let model = {
        let mut c = cfg.clone();
        c.workload.tokens = tokens;
        c.streaming_cycles()
    };
    println!(
        "board      {} (design id {:08x})",
        dev.info().description,
        dev.info().design_id
    );
    println!(
        "layer      {m}x{k} ternary, {tokens} token(s), seed {}{}",
        a.seed,
        a.weights
            .as_ref()
            .map(|p| format!(", weights {}", p.display()))
            .unwrap_or_default()
    );
    let bound = bandwidth_bound(
        cfg.top.bus_bytes() as f64,
        (a.uri == "sim:").then_some(memory.bytes_per_clock),
        run.bytes_read,
        run.bytes_written,
    );
    if let Some(dir) = &a.out {
        let wide = |v: &[i8]| v.iter().map(|&b| i64::from(b)).collect::<Vec<_>>();
        use tern_host::npy::{write, Dtype};
        write(&dir.join("weights.npy"), Dtype::I8, &[m, k], &wide(&w))?;
        write(
            &dir.join("activations.npy"),
            Dtype::I8,
            &[tokens, k],
            &wide(&x),
        )?;
        write(&dir.join("results.npy"), Dtype::I64, &[tokens, m], &run.y)?;
        write(&dir.join("golden.npy"), Dtype::I64, &[tokens, m], &want)?;
        let record = RunRecord {
            format: "tern-run/1",
            config: a.config.display().to_string(),
            board_uri: &a.uri,
            board: &dev.info().description,
            design_id: format!("{:08x}", dev.info().design_id),
            m,
            k,
            tokens,
            seed: a.seed,
            weights_from: a.weights.as_ref().map(|p| p.display().to_string()),
            activations_from: a.activations.as_ref().map(|p| p.display().to_string()),
            kernel_clocks: run.cycles,
            batches: run.batches,
            streaming_model_clocks: model,
            bandwidth_bound_clocks: bound,
            bytes_read: run.bytes_read,
            bytes_written: run.bytes_written,
            bit_exact: first_diff.is_none(),
            first_difference: first_diff,
        };
        let path = dir.join("run.json");
        std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "kernel     {} clocks in {} batch(es) ({:.0} per token)",
        run.cycles,
        run.batches,
        run.cycles as f64 / tokens as f64,
    );
    println!(
        "bounds     engine streaming model {model} clocks ({:+.1}%), bandwidth bound {bound} clocks \
         ({} B read, {} B written; {:+.1}%): {} bound",
        100.0 * (run.cycles as f64 / model as f64 - 1.0),
        run.bytes_read,
        run.bytes_written,
        100.0 * (run.cycles as f64 / bound as f64 - 1.0),
        if bound > model { "bandwidth" } else { "compute" },
    );
    if a.uri == "sim:" {
        println!("memory     {memory_text}");
    }
    if let Some(dir) = &a.out {
        println!(
            "files      weights.npy, activations.npy, results.npy, golden.npy, run.json in {}",
            dir.display()
        );
    }
    println!(
        "wall       open {:.1} ms, load weights {:.1} ms, run {:.1} ms",
        open_time.as_secs_f64() * 1e3,
        load_time.as_secs_f64() * 1e3,
        run.wall.as_secs_f64() * 1e3
    );
    println!(
        "bytes      {} weights + {} activations to the card, {} results back ({:.1} MB/s over the run)",
        weight_bytes,
        run.traffic.bytes_to_card,
        run.traffic.bytes_from_card,
        mb_per_s(run.traffic.bytes_to_card + run.traffic.bytes_from_card, run.wall)
    );
    match first_diff {
        None => {
            println!(
                "check      bit-exact: all {} outputs match the golden model",
                want.len()
            );
            Ok(())
        }
        Some(i) => {
            let mut msg = format!(
                "MISMATCH at token {}, row {}: board {} golden {} (seed {}, config {})",
                i / m,
                i % m,
                run.y[i],
                want[i],
                a.seed,
                a.config.display()
            );
            if a.uri == "sim:" {
                let vcd = std::env::temp_dir().join(format!("tern-run-{}.vcd", std::process::id()));
                let board = SimBoard::new(&cfg, &ModelCache::default(), Some(&vcd), Some(memory))?;
                let mut again = Device::attach(Box::new(board), &cfg, &opts)?;
                again.load_weights(&w)?;
                let _ = again.gemm(&x);
                drop(again); // closes the waveform
                msg.push_str(&format!("; waveform of the rerun: {}", vcd.display()));
            }
            bail!(msg)
        }
    }
}
