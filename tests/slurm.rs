//! `--executor slurm` against a real one-node Slurm (Debian's slurm-wlm with munge,
//! started by `scripts/slurm.sh`): the same records as the local executor, a failing
//! task reported with its exit code after its retries, a killed submitter resumed
//! without re-running finished points, a `scancel`led task detected and run again, and
//! clear errors when Slurm cannot be used.
//!
//! Needs root (or sudo) to install Slurm on first use; where the cluster cannot be
//! started the test prints why and is skipped.

mod common;
use common::{config_file, tern_in, text};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tern_hdl::config::{ConfigBuilder, TableStorage};
use tern_hdl::EngineKind::{self, AdderTree, Tlmm};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The cluster for this test binary; stopped (by the PIDs it recorded) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: String,
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Ports of its own, so that another cluster on this machine is no obstacle.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let o = Command::new(repo("scripts/slurm.sh"))
            .env("TERN_SLURM_PORT", port.to_string())
            .args(["up", dir.path().to_str().unwrap()])
            .output()
            .map_err(|e| e.to_string())?;
        let out = String::from_utf8_lossy(&o.stdout);
        match out.trim().strip_prefix("export SLURM_CONF=") {
            Some(conf) if o.status.success() => Ok(Cluster {
                conf: conf.to_string(),
                dir,
            }),
            _ => Err(format!(
                "scripts/slurm.sh up failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo("scripts/slurm.sh"))
            .args(["down", self.dir.path().to_str().unwrap()])
            .output();
    }
}

fn tiny(dir: &Path, name: &str, kind: EngineKind, g: usize, tokens: usize) {
    config_file(
        dir,
        &format!("{name}.toml"),
        ConfigBuilder::new(kind, g, 1, 1)
            .accumulator_bits(16)
            .storage(TableStorage::Registers)
            .weight_buffer_depth(4)
            .workload(4, 12, tokens),
    );
}

fn rows(path: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["rows"].as_array().unwrap().clone()
}

fn squeue(conf: &str, args: &[&str]) -> String {
    let o = Command::new("squeue")
        .env("SLURM_CONF", conf)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_sweep_on_slurm_matches_the_local_one_and_survives_kills_and_cancels() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: this test needs a Slurm cluster and none could be started: {why}");
            return;
        }
    };
    let conf = cluster.conf.as_str();
    let work = tempfile::tempdir().unwrap();
    let configs = work.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let mut names = vec![];
    for kind in [Tlmm, AdderTree] {
        for g in [2, 3, 4, 5] {
            let name = format!("{}-g{g}", if kind == Tlmm { "tlmm" } else { "at" });
            tiny(&configs, &name, kind, g, 1);
            names.push(name);
        }
    }
    tiny(&configs, "tlmm-g3-t2", Tlmm, 3, 2);
    names.push("tlmm-g3-t2".into());
    // Fails on purpose: far beyond the iCEBreaker's LUTs, refused in the worker.
    config_file(
        &configs,
        "too-big.toml",
        ConfigBuilder::new(Tlmm, 4, 64, 16).workload(64, 1024, 1),
    );
    let cfgs = configs.to_str().unwrap();

    // The reference: the local executor, its own cache.
    let local_cache = work.path().join("local-cache");
    let local_out = work.path().join("local.json");
    let o = tern_in(
        &local_cache,
        &[],
        &[
            "sweep",
            cfgs,
            "--boards",
            "icebreaker",
            "--executor",
            "local",
            "--out",
            local_out.to_str().unwrap(),
        ],
    );
    assert!(
        !o.status.success(),
        "the too-big design did not fail: {}",
        text(&o)
    );

    // On Slurm, one task at a time so that tasks wait in the queue.
    let cache = work.path().join("slurm-cache");
    let out = work.path().join("slurm.json");
    let args = [
        "sweep",
        cfgs,
        "--boards",
        "icebreaker",
        "--executor",
        "slurm",
        "--slurm-max-running",
        "1",
        "--slurm-retries",
        "1",
        "--slurm-poll",
        "0.3",
        "--out",
        out.to_str().unwrap(),
    ];
    let submitter = |log: &str| {
        Command::new(env!("CARGO_BIN_EXE_tern"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info")
            .env("TERN_CACHE_DIR", &cache)
            .env("TERN_NO_PROGRESS", "1")
            .env("SLURM_CONF", conf)
            .args(args)
            .stdout(std::fs::File::create(work.path().join(format!("{log}.out"))).unwrap())
            .stderr(std::fs::File::create(work.path().join(format!("{log}.err"))).unwrap())
            .spawn()
            .unwrap()
    };
    let run_dir = || -> Option<PathBuf> {
        std::fs::read_dir(cache.join("runs"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .next()
    };
    let count = |sub: &str| {
        run_dir()
            .and_then(|d| std::fs::read_dir(d.join(sub)).ok())
            .map_or(0, |d| d.count())
    };
    // Killed once a row is in; its tasks stay queued in Slurm.
    let mut first = submitter("first");
    wait_until("a row", Duration::from_secs(300), || count("rows") >= 1);
    first.kill().unwrap();
    first.wait().unwrap();
    let done_at_kill = count("rows");
    let job_name = format!(
        "tern-{}",
        run_dir().unwrap().file_name().unwrap().to_string_lossy()
    );

    // Resumed: the same command. A task still pending is cancelled under it.
    let mut second = submitter("second");
    // Once it has read the queue (its "slurm run" line), a cancel is the loop's to see.
    wait_until(
        "the resumed submitter to read the queue",
        Duration::from_secs(120),
        || {
            std::fs::read_to_string(work.path().join("second.err"))
                .is_ok_and(|t| t.contains("slurm run tern-"))
        },
    );
    let mut cancelled = None;
    let mut seen_pending = String::new();
    wait_until("a pending task to cancel", Duration::from_secs(120), || {
        let pending = squeue(
            conf,
            &["-h", "-r", "-n", &job_name, "-t", "PENDING", "-o", "%i"],
        );
        seen_pending = pending.replace('\n', " ");
        // One from the middle of the queue: not about to start, and not the failing one.
        let tasks: Vec<&str> = pending.lines().map(str::trim).collect();
        if tasks.len() < 3 {
            return false;
        }
        let task = tasks[tasks.len() / 2];
        let ok = Command::new("scancel")
            .env("SLURM_CONF", conf)
            .arg(task)
            .status()
            .unwrap()
            .success();
        if ok {
            cancelled = task.split('_').nth(1).map(|s| s.parse::<usize>().unwrap());
        }
        ok
    });
    let cancelled = cancelled.unwrap();
    let seen_pending = seen_pending.replace('\n', " ");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "the resumed sweep hung"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = std::fs::read_to_string(work.path().join("second.err")).unwrap();
    let stdout = std::fs::read_to_string(work.path().join("second.out")).unwrap();
    assert!(
        !status.success(),
        "the failing design did not fail the sweep: {stdout}{err}"
    );
    assert!(err.contains("1 of 10 sweep rows failed"), "{err}");

    // Same records as the local executor, row for row.
    let (local, slurm) = (rows(&local_out), rows(&out));
    assert_eq!(local.len(), 10);
    assert_eq!(slurm.len(), 10);
    for (l, s) in local.iter().zip(&slurm) {
        assert_eq!(l["name"], s["name"]);
        if l["name"] == "too-big" {
            continue;
        }
        assert_eq!(s["synth"]["outcome"]["status"], "ok", "{s}");
        assert_eq!(
            l["synth"]["outcome"]["usage"], s["synth"]["outcome"]["usage"],
            "{}: cells differ between executors",
            l["name"]
        );
        assert_eq!(l["synth"]["key"], s["synth"]["key"]);
    }
    // The failure, with its exit code, after 1 + 1 attempts; the local one says why too.
    let big = slurm.iter().find(|r| r["name"] == "too-big").unwrap();
    let why = big["error"].as_str().unwrap();
    assert!(
        why.contains("FAILED with exit code 4")
            && why.contains("cannot fit")
            && why.contains("after 2 attempts"),
        "{why}"
    );
    let big_local = local.iter().find(|r| r["name"] == "too-big").unwrap();
    assert!(big_local["error"].as_str().unwrap().contains("cannot fit"));

    // Nothing finished ran twice: one log per task, except the failing one's retry and
    // the cancelled one (cancelled while pending, so it never ran before its retry).
    let dir = run_dir().unwrap();
    let big_index = slurm.iter().position(|r| r["name"] == "too-big").unwrap();
    for i in 0..10 {
        let logs = std::fs::read_dir(dir.join("logs"))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("_{i}.out"))
            })
            .count();
        let want = if i == big_index { 2 } else { 1 };
        assert_eq!(logs, want, "task {i} ran {logs} times (cancelled: {cancelled}, rows at kill: {done_at_kill})\n{err}");
    }
    assert!(
        (err.contains("left the queue with no record") || err.contains("ended CANCELLED"))
            && err.contains("submitting it again"),
        "the cancelled task {cancelled} (pending: {seen_pending}) was not detected: {err}"
    );

    // The queue's state was shown as it changed: running and pending tasks, and why
    // they pend (one task at a time: the array's own limit).
    assert!(
        err.contains("slurm: 1 running,") && err.contains("JobArrayTaskLimit"),
        "{err}"
    );

    // A rerun reuses the finished rows and runs again only what failed, with a fresh
    // count of attempts (no retries this time); the failed row is not "from the cache".
    let mut again = args.to_vec();
    let retries = again.iter().position(|a| *a == "--slurm-retries").unwrap();
    again[retries + 1] = "0";
    let o = tern_in(
        &cache,
        &[("SLURM_CONF", conf), ("RUST_LOG", "info")],
        &again,
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert_eq!(t.matches("submitted to slurm").count(), 1, "{t}");
    assert!(
        t.contains("tasks=1") && t.contains("failed_before=1"),
        "{t}"
    );
    assert!(
        t.contains("10 rows (0 ran tools, 9 from the cache, 1 failed)"),
        "{t}"
    );
    let rerun = rows(&out);
    let big = &rerun[big_index];
    let why = big["error"].as_str().unwrap();
    assert!(why.contains("after 1 attempts"), "{why}");
    // The earlier round is kept aside: its row and its two logs.
    let earlier =
        |sub: &str| std::fs::read_dir(dir.join(sub).join("earlier")).map_or(0, |d| d.count());
    assert_eq!(earlier("rows"), 1);
    assert_eq!(earlier("logs"), 2);
    for (a, b) in slurm.iter().zip(&rerun) {
        if a["name"] != "too-big" {
            assert_eq!(a["synth"]["key"], b["synth"]["key"]);
        }
    }

    // A request no node can meet (64 CPUs a task on this small node) is accepted by
    // sbatch and would pend forever: tern names the option, cancels the run's tasks
    // and stops at once.
    let t0 = Instant::now();
    let mut greedy = args.to_vec();
    greedy.extend(["--slurm-cpus", "64"]);
    let o = tern_in(
        &work.path().join("cpus-cache"),
        &[("SLURM_CONF", conf), ("RUST_LOG", "info")],
        &greedy,
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("can never start")
            && t.contains("PartitionConfig")
            && t.contains("--slurm-cpus 64")
            && t.contains("were cancelled"),
        "{t}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let cpus_run = std::fs::read_dir(work.path().join("cpus-cache").join("runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    let left = squeue(
        conf,
        &[
            "-h",
            "-r",
            "-n",
            &format!("tern-{}", cpus_run.to_string_lossy()),
        ],
    );
    assert!(left.trim().is_empty(), "tasks left in the queue: {left}");

    // A worker whose tools differ from the submitter's refuses, exit code 3.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let mut other = run.clone();
    for v in other["tools"].as_object_mut().unwrap().values_mut() {
        *v = "Yosys 0.1 (another build)".into();
    }
    let other_dir = work.path().join("other-run");
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::write(other_dir.join("run.json"), other.to_string()).unwrap();
    let o = tern_in(
        &cache,
        &[],
        &[
            "worker",
            "--run-dir",
            other_dir.to_str().unwrap(),
            "--index",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("tools differ from the submitter's"),
        "{}",
        text(&o)
    );
}

#[test]
fn slurm_that_cannot_be_used_is_a_clear_error_and_leaves_no_run() {
    let work = tempfile::tempdir().unwrap();
    let configs = work.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    tiny(&configs, "one", Tlmm, 2, 1);
    let cfgs = configs.to_str().unwrap();
    let cache = work.path().join("cache");
    // No controller behind the configuration.
    let conf = work.path().join("slurm.conf");
    std::fs::write(
        &conf,
        "ClusterName=none\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=1\nAuthType=auth/none\nNodeName=n CPUs=1\nPartitionName=p Nodes=n Default=YES\n",
    )
    .unwrap();
    let sweep = |env: &[(&str, &str)], executor: &str| {
        tern_in(
            &cache,
            env,
            &[
                "sweep",
                cfgs,
                "--boards",
                "icebreaker",
                "--executor",
                executor,
            ],
        )
    };
    let o = sweep(&[("SLURM_CONF", conf.to_str().unwrap())], "slurm");
    let t = text(&o);
    if t.contains("`squeue` is not on PATH") {
        eprintln!(
            "note: Slurm's client commands are not installed; checked that this is said: {t}"
        );
    } else {
        assert!(
            !o.status.success() && t.contains("executor slurm") && t.contains("squeue"),
            "{t}"
        );
    }
    assert!(
        !cache.join("runs").exists(),
        "a run directory was left: {t}"
    );
    // Without Slurm on PATH (the tools it needs first are still found).
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let yosys = which("yosys").expect("yosys on PATH");
    std::os::unix::fs::symlink(yosys, bin.join("yosys")).unwrap();
    let o = sweep(&[("PATH", bin.to_str().unwrap())], "slurm");
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("`squeue` is not on PATH")
            && t.contains("--executor local"),
        "{t}"
    );
    assert!(
        !cache.join("runs").exists(),
        "a run directory was left: {t}"
    );
    // An executor that does not exist.
    let o = sweep(&[], "kubernetes");
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("unknown executor `kubernetes`"),
        "{t}"
    );
    let o = tern_in(
        &cache,
        &[("TERN_EXECUTOR", "lsf")],
        &["sweep", cfgs, "--boards", "icebreaker"],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("unknown executor `lsf`"),
        "{t}"
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}
