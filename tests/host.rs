//! The host side from the command line: `tern serve` as a real daemon process, `tern run`
//! against it over a Unix socket and TCP, clean shutdown on SIGTERM, a client that sees
//! the daemon killed, and bad input to `tern run`.

mod common;

use common::{random_tiny_checkpoint, tern_in, text};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern_sim::verilator::default_cache_root;

const CONFIG: &str = "examples/default.toml";

/// A `tern serve` process and the address it printed.
struct Daemon {
    child: Child,
    bound: String,
}

impl Daemon {
    fn start(listen: &str) -> Daemon {
        Daemon::start_with(CONFIG, listen)
    }

    fn start_with(config: &str, listen: &str) -> Daemon {
        Daemon::start_args(&["serve", "--config", config, "--listen", listen])
    }

    fn start_args(args: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TERN_CACHE_DIR", default_cache_root())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let bound = line
            .strip_prefix("serving ")
            .and_then(|r| r.split(':').take(2).collect::<Vec<_>>().join(":").into())
            .unwrap_or_else(|| panic!("tern serve printed {line:?}"));
        // tcp:IP:PORT has one more colon than unix:PATH.
        let bound = if bound.starts_with("tcp:") {
            let rest = line.strip_prefix("serving tcp:").unwrap();
            let port: String = rest
                .split(':')
                .nth(1)
                .unwrap()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            format!("tcp:127.0.0.1:{port}")
        } else {
            bound
        };
        Daemon { child, bound }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, then the exit status and everything it printed.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        (out.status, text(&out))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(uri: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--board-uri", uri, "--config", CONFIG];
    args.extend_from_slice(extra);
    tern_in(&default_cache_root(), &[], &args)
}

#[test]
fn tern_run_over_a_unix_socket_and_tcp_is_bit_exact_and_the_daemon_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("board.sock");
    let unix = Daemon::start(&format!("unix:{}", sock.display()));
    assert_eq!(unix.bound, format!("unix:{}", sock.display()));
    let tcp = Daemon::start("tcp:127.0.0.1:0");
    // The same layer in-process gives the same clocks: the daemon adds no hardware time.
    // Both on a fresh board: the DRAM's refresh runs on from the board's first clock, so a
    // later run on the same board may meet a refresh at another point.
    let clocks = |o: &std::process::Output| {
        text(o)
            .lines()
            .find(|l| l.starts_with("kernel"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        clocks(&run("sim:", &["--tokens", "4", "--seed", "7"])),
        clocks(&run(&unix.bound, &["--tokens", "4", "--seed", "7"]))
    );
    for (uri, tokens) in [(&unix.bound, "4"), (&tcp.bound, "9"), (&unix.bound, "1")] {
        let o = run(uri, &["--tokens", tokens, "--seed", "7"]);
        let out = text(&o);
        assert!(o.status.success(), "{uri}: {out}");
        assert!(out.contains("check      bit-exact"), "{uri}: {out}");
        assert!(out.contains(&format!("{tokens} token(s)")), "{out}");
        assert!(out.contains("kernel"), "{out}");
    }
    for daemon in [unix, tcp] {
        let (status, log) = daemon.stop();
        assert!(status.success(), "{log}");
        assert!(log.contains("connected"), "no connection log: {log}");
        assert!(log.contains("stopped after"), "{log}");
    }
    assert!(!sock.exists(), "the socket file was left behind");
}

/// `tern serve --one-top`: the tiny model's one top as a daemon; `tern generate --one-top
/// --board-uri unix:...` loads the program over the socket and runs a prompt and two
/// decoded tokens through the driver, each bit-exact against the golden sequencer, with
/// the same tokens and the same accelerator clocks as on `sim:` in-process (the daemon
/// adds no hardware time). A host built for another top (other lanes) is refused by
/// the board's design id.
#[test]
fn generate_on_a_served_one_top_equals_the_one_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("one_top.sock");
    let accelerator = "examples/bitnet_tiny_one_top.toml";
    let daemon = Daemon::start_args(&[
        "serve",
        "--one-top",
        "tiny",
        "--accelerator",
        accelerator,
        "--listen",
        &format!("unix:{}", sock.display()),
    ]);
    let generate = |uri: &str, extra: &[&str]| {
        let out = dir.path().join(uri.replace([':', '/'], "_"));
        let mut args = vec![
            "generate",
            "--one-top",
            "--accelerator",
            accelerator,
            "--tokens",
            "3",
            "--board-uri",
            uri,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = tern_in(&default_cache_root(), &[], &args);
        (o, out.join("generate.json"))
    };
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (served, served_json) = generate(&daemon.bound, &[]);
    assert!(served.status.success(), "{}", text(&served));
    assert_eq!(
        text(&served).matches("bit-exact\n").count(),
        3,
        "{}",
        text(&served)
    );
    let (local, local_json) = generate("sim:", &[]);
    assert!(local.status.success(), "{}", text(&local));
    let (served, local) = (json(&served_json), json(&local_json));
    assert_eq!(served["generated"], local["generated"]);
    let per_step = |j: &serde_json::Value, key: &str| -> Vec<serde_json::Value> {
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[key].clone())
            .collect()
    };
    for key in [
        "clocks",
        "matmul_clocks",
        "register_accesses",
        "kernel_starts",
    ] {
        assert_eq!(per_step(&served, key), per_step(&local, key), "{key}");
    }
    // Only the board in-process counts its DRAM's bytes.
    assert!(per_step(&served, "ddr_bytes_read")
        .iter()
        .all(|v| v.is_null()));
    assert!(per_step(&local, "ddr_bytes_read")
        .iter()
        .all(|v| v.as_u64() > Some(0)));
    let (other, _) = generate(&daemon.bound, &["--lanes", "1"]);
    assert!(!other.status.success());
    assert!(text(&other).contains("carries design"), "{}", text(&other));
    let (status, log) = daemon.stop();
    assert!(status.success() && log.contains("stopped after"), "{log}");
}

#[test]
fn a_client_waiting_on_a_killed_daemon_gets_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("board.sock");
    let daemon = Daemon::start(&format!("unix:{}", sock.display()));
    let cfg =
        tern_hdl::DesignConfig::from_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIG))
            .unwrap();
    let opts = tern_host::OpenOptions {
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let uri = daemon.bound.clone();
    let (connected, ready) = std::sync::mpsc::channel();
    // The interrupt is disabled, so the daemon sits in this wait until it dies.
    let waiter = std::thread::spawn(move || {
        let mut t = tern_host::device::open_transport(&uri, &cfg, &opts).unwrap();
        connected.send(()).unwrap();
        let t0 = Instant::now();
        let r = t.wait_irq(1, Duration::from_secs(30));
        (r, t0.elapsed())
    });
    ready.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal(libc::SIGKILL);
    let (r, waited) = waiter.join().unwrap();
    let err = r.unwrap_err();
    assert!(
        matches!(err, tern_host::HostError::Disconnected(_)),
        "{err}"
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // A stale socket file from the killed daemon does not stop a new one.
    assert!(sock.exists());
    let again = Daemon::start(&format!("unix:{}", sock.display()));
    assert!(run(&again.bound, &["--tokens", "1"]).status.success());
}

#[test]
fn tern_run_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody.sock");
    for (uri, says) in [
        ("board0", "no scheme"),
        ("tcp:localhost", "HOST:PORT"),
        ("usb:zz:1", "not hex"),
    ] {
        let o = run(uri, &[]);
        assert!(!o.status.success());
        assert!(text(&o).contains(says), "{uri}: {}", text(&o));
    }
    let o = run(&format!("unix:{}", missing.display()), &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is `tern serve` running?"),
        "{}",
        text(&o)
    );
    let o = run(&format!("xdma:{}", dir.path().join("xdma9").display()), &[]);
    assert!(text(&o).contains("xdma9_user"), "{}", text(&o));

    // Weights files: damaged, and the wrong shape for the config.
    let bad = dir.path().join("bad.tw");
    std::fs::write(&bad, b"TWTS\x01\0\0\0").unwrap();
    let o = run("sim:", &["--weights", bad.to_str().unwrap()]);
    assert!(
        text(&o).contains("shorter than the 16-byte header"),
        "{}",
        text(&o)
    );
    let small = dir.path().join("small.tw");
    tern_host::weights_file::TernaryMatrix {
        m: 2,
        k: 2,
        w: vec![1, 0, -1, 1],
    }
    .write(&small)
    .unwrap();
    let o = run("sim:", &["--weights", small.to_str().unwrap()]);
    assert!(text(&o).contains("holds a 2x2 matrix"), "{}", text(&o));
    // A right-shaped file runs and is checked.
    let (m, k) = (256, 256);
    let w: Vec<i8> = (0..m * k).map(|i| (i % 3) as i8 - 1).collect();
    let good = dir.path().join("good.tw");
    tern_host::weights_file::TernaryMatrix { m, k, w }
        .write(&good)
        .unwrap();
    let o = run(
        "sim:",
        &["--weights", good.to_str().unwrap(), "--tokens", "2"],
    );
    assert!(text(&o).contains("bit-exact"), "{}", text(&o));
}

/// `tern run --out` writes what it ran and what came back as .npy files a user can
/// check with their own tools; `--activations` runs a user's file. The results are
/// checked here against the plain definition, computed from the written inputs.
#[test]
fn tern_run_takes_activations_from_npy_and_writes_its_inputs_and_results() {
    use tern_host::npy::{self, Dtype};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(
        "sim:",
        &[
            "--tokens",
            "3",
            "--seed",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let w = npy::read(&out.join("weights.npy")).unwrap();
    let x = npy::read(&out.join("activations.npy")).unwrap();
    let y = npy::read(&out.join("results.npy")).unwrap();
    assert_eq!((w.dtype, w.shape.clone()), (Dtype::I8, vec![256, 256]));
    assert_eq!((x.dtype, x.shape.clone()), (Dtype::I8, vec![3, 256]));
    assert_eq!((y.dtype, y.shape.clone()), (Dtype::I64, vec![3, 256]));
    for t in 0..3 {
        for r in 0..256 {
            let want: i64 = (0..256)
                .map(|c| w.values[r * 256 + c] * x.values[t * 256 + c])
                .sum();
            assert_eq!(y.values[t * 256 + r], want, "token {t}, row {r}");
        }
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["bit_exact"], true);
    assert_eq!(record["tokens"], 3);
    assert!(
        record["kernel_clocks"].as_u64().unwrap()
            >= record["streaming_model_clocks"].as_u64().unwrap()
    );

    // A user's own activations: one token of int32 values within int8, shape (K,).
    let mine = dir.path().join("x.npy");
    let values: Vec<i64> = (0..256).map(|i| i - 128).collect();
    npy::write(&mine, Dtype::I32, &[256], &values).unwrap();
    let o = run("sim:", &["--activations", mine.to_str().unwrap()]);
    assert!(
        text(&o).contains("1 token(s)") && text(&o).contains("bit-exact"),
        "{}",
        text(&o)
    );
    // Values outside int8, the wrong K, and a file that is not .npy are named.
    npy::write(&mine, Dtype::I32, &[1, 256], &(0..256).collect::<Vec<_>>()).unwrap();
    let o = run("sim:", &["--activations", mine.to_str().unwrap()]);
    assert!(
        text(&o).contains("value 128 at token 0, column 128"),
        "{}",
        text(&o)
    );
    npy::write(&mine, Dtype::I8, &[2, 255], &[0; 510]).unwrap();
    let o = run("sim:", &["--activations", mine.to_str().unwrap()]);
    assert!(text(&o).contains("shape [2, 255]"), "{}", text(&o));
    std::fs::write(&mine, b"not numpy").unwrap();
    let o = run("sim:", &["--activations", mine.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("no NUMPY magic"),
        "{}",
        text(&o)
    );
}

#[test]
fn gen_top_writes_a_lint_clean_top_and_its_register_map() {
    let dir = tempfile::tempdir().unwrap();
    for cfg in [
        CONFIG,
        "examples/tlmm_g5_wide.toml",
        "examples/adder_tree.toml",
        "examples/attention_decode.toml",
    ] {
        let out = dir.path().join(Path::new(cfg).file_stem().unwrap());
        let o = tern_in(
            &default_cache_root(),
            &[],
            &[
                "verilog",
                "--config",
                cfg,
                "--out",
                out.to_str().unwrap(),
                "--top",
            ],
        );
        assert!(o.status.success(), "{cfg}: {}", text(&o));
        let md = std::fs::read_to_string(out.join("regmap.md")).unwrap();
        assert!(md.contains("| 0x00 | CONTROL |"), "{md}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("regmap.json")).unwrap())
                .unwrap();
        assert_eq!(json["registers"][3]["name"], "ISR");
        assert_eq!(
            md.contains("| SEQ_LEN |"),
            cfg.contains("attention"),
            "{md}"
        );
        let o = tern_in(
            &default_cache_root(),
            &[],
            &["lint", "--dir", out.to_str().unwrap()],
        );
        assert!(o.status.success(), "{cfg}: {}", text(&o));
        assert!(text(&o).contains("lint clean"), "{}", text(&o));
    }
    // An attention engine whose keys are narrower than the bus: a clear refusal.
    let narrow = dir.path().join("narrow.toml");
    let text_of = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/attention_decode.toml"),
    )
    .unwrap()
    .replace("head_dim = 64", "head_dim = 16");
    std::fs::write(&narrow, text_of).unwrap();
    let o = tern_in(
        &default_cache_root(),
        &[],
        &[
            "verilog",
            "--config",
            narrow.to_str().unwrap(),
            "--out",
            dir.path().join("a").to_str().unwrap(),
            "--top",
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("attention.head_dim = 16 bytes per key"),
        "{}",
        text(&o)
    );
}

/// Attention through `tern serve` and `tern run`: the prefill example over a Unix
/// socket, then in process with `--out`; the written queries, keys and values fed back
/// with `--activations/--keys/--values` give the same results.
#[test]
fn tern_run_attention_over_a_socket_and_from_its_own_files() {
    use tern_host::npy;
    const ATTENTION: &str = "examples/attention_prefill.toml";
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("attention.sock");
    let daemon = Daemon::start_with(ATTENTION, &format!("unix:{}", sock.display()));
    let attention = |uri: &str, extra: &[&str]| {
        let mut args = vec!["run", "--board-uri", uri, "--config", ATTENTION];
        args.extend_from_slice(extra);
        tern_in(&default_cache_root(), &[], &args)
    };
    let o = attention(&daemon.bound, &["--seed", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("16 causal row(s)"), "{}", text(&o));
    assert!(text(&o).contains("check      bit-exact"), "{}", text(&o));
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");

    let first = dir.path().join("first");
    let o = attention("sim:", &["--seed", "3", "--out", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["format"], "tern-run-attention/1");
    assert_eq!(record["bit_exact"], true);
    assert_eq!(
        (record["seq_len"].as_u64(), record["queries"].as_u64()),
        (Some(128), Some(16))
    );
    let results = npy::read(&first.join("results.npy")).unwrap();
    assert_eq!(results.shape, vec![16, 128]);
    assert!(results.values.iter().any(|&v| v != 0), "all-zero outputs");
    let again = dir.path().join("again");
    let file = |name: &str| first.join(name).display().to_string();
    let o = attention(
        "sim:",
        &[
            "--activations",
            &file("queries.npy"),
            "--keys",
            &file("keys.npy"),
            "--values",
            &file("values.npy"),
            "--out",
            again.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        npy::read(&again.join("results.npy")).unwrap().values,
        results.values,
        "the same inputs from files give the same results"
    );
    // A short cache from files (16 keys for the 16 causal rows) runs; keys of the wrong
    // width are named.
    let o = attention(
        "sim:",
        &[
            "--keys",
            &file("queries.npy"),
            "--values",
            &file("results.npy"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("against 16 keys"), "{}", text(&o));
    let narrow = dir.path().join("narrow.npy");
    npy::write(&narrow, npy::Dtype::I8, &[4, 64], &[1; 256]).unwrap();
    let o = attention(
        "sim:",
        &[
            "--keys",
            narrow.to_str().unwrap(),
            "--values",
            narrow.to_str().unwrap(),
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("shape [4, 64]"),
        "{}",
        text(&o)
    );
    let o = attention("sim:", &["--keys", &file("golden.npy")]);
    assert!(!o.status.success(), "--keys without --values: {}", text(&o));
}

/// A whole (tiny) BitNet model on two served boards: the matmul top and the attention
/// top each behind their own `tern serve`, `tern generate` driving both over Unix
/// sockets, every step bit-exact; and the same run on `sim:` writes the same tokens.
#[test]
fn tern_generate_runs_a_model_on_two_served_boards() {
    const MATMUL: &str = "examples/bitnet_tiny_matmul.toml";
    const ATTENTION: &str = "examples/bitnet_tiny_attention.toml";
    let dir = tempfile::tempdir().unwrap();
    let sock = |name: &str| format!("unix:{}", dir.path().join(name).display());
    let matmul = Daemon::start_with(MATMUL, &sock("matmul.sock"));
    let attention = Daemon::start_with(ATTENTION, &sock("attention.sock"));
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--tokens", "3", "--seed", "5"];
        args.extend_from_slice(extra);
        tern_in(&default_cache_root(), &[], &args)
    };
    let out = dir.path().join("served");
    let o = generate(&[
        "--board-uri",
        &matmul.bound,
        "--attention-uri",
        &attention.bound,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("every step's logits bit-exact"),
        "{}",
        text(&o)
    );
    for d in [matmul, attention] {
        let (status, log) = d.stop();
        assert!(status.success(), "{log}");
    }
    let served: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("generate.json")).unwrap()).unwrap();
    assert_eq!(served["format"], "tern-generate/1");
    assert_eq!(served["bit_exact"], true);
    assert_eq!(served["steps"].as_array().unwrap().len(), 3);
    assert_eq!(served["generated"].as_array().unwrap().len(), 3);

    let local = dir.path().join("local");
    let o = generate(&["--out", local.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let local: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(local.join("generate.json")).unwrap())
            .unwrap();
    assert_eq!(local["generated"], served["generated"]);
    assert_eq!(local["logits"], served["logits"]);
}

#[test]
fn tern_generate_names_bad_input_before_running() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--prompt", "1,2,256"],
            "token 2 is id 256, outside the vocabulary of 256",
        ),
        (
            &["--prompt", "1", "--tokens", "70"],
            "exceed the context of 64 tokens",
        ),
        (&["--tokens", "0"], "--tokens must be at least 1"),
        (
            &["--attention-config", "examples/attention_decode.toml"],
            "heads are 16 wide but the attention engine's attention.head_dim is 64",
        ),
        (
            &["--board-uri", "unix:/nonexistent/tern.sock"],
            "give --attention-uri",
        ),
        (&["--model", "huge"], "huge"),
        (
            &["--attention-engines", "0"],
            "--attention-engines must be at least 1",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let o = tern_in(&default_cache_root(), &[], &all);
        assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("step   0"), "{args:?} ran: {}", text(&o));
    }
    // The edges that are allowed: one token, and a context filled exactly (64); and
    // two attention engines side by side.
    let o = tern_in(&default_cache_root(), &[], &["generate", "--tokens", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tern_in(
        &default_cache_root(),
        &[],
        &["generate", "--tokens", "2", "--attention-engines", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("on sim: and sim:"), "{}", text(&o));
    let prompt: Vec<String> = (0..60).map(|i| i.to_string()).collect();
    let o = tern_in(
        &default_cache_root(),
        &[],
        &["generate", "--prompt", &prompt.join(","), "--tokens", "5"],
    );
    assert!(o.status.success(), "{}", text(&o));
}

/// A checkpoint in the Hugging Face layout, read and run with the attention's int8 units
/// calibrated on the prompt (the attention engine is rebuilt for them).
#[test]
fn tern_generate_runs_a_checkpoint_with_calibrated_attention() {
    let dir = tempfile::tempdir().unwrap();
    let ck = random_tiny_checkpoint(dir.path(), 4);
    let o = tern_in(
        &default_cache_root(),
        &[],
        &[
            "generate",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--tokens",
            "3",
            "--calibrate",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("calibrated scale_q = "), "{}", text(&o));
    assert!(text(&o).contains("checkpoint "), "{}", text(&o));
    assert!(
        text(&o).contains("every step's logits bit-exact"),
        "{}",
        text(&o)
    );
}
