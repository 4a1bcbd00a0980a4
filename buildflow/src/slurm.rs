//! The Slurm executor: the jobs of a sweep as one job array per submission, one array
//! task per (design, board) job, each running `tern worker` on a run directory in the
//! shared cache. Slurm's client commands are run as processes (`sbatch --parsable`,
//! `squeue`, `scontrol -o`), whose plain output has been stable for years; the crates
//! that bind libslurm are not maintained. The run directory's layout and the retry
//! policy are specified in `docs/slurm.md`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tern_boards::Board;
use tern_hdl::DesignConfig;

use crate::job::{
    cached_row, row_summary, run_one, Job, OnQueue, OnRow, SweepItem, SweepPlan, SweepRow,
};
use crate::synth::cache::write_json;
use crate::synth::tools::{self, Tool};
use crate::synth::{router_tool, SynthError, SynthOptions};

#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// `--time` of each task (e.g. `2:00:00`).
    pub time: Option<String>,
    /// `--mem` of each task (e.g. `8G`).
    pub mem: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// Further `sbatch` arguments, passed as given.
    pub extra: Vec<String>,
    /// Tasks of one array running at once (`--array=...%K`).
    pub max_running: usize,
    /// Times a failed, cancelled, timed-out or vanished task is submitted again.
    pub retries: u32,
    /// How often the queue and the run directory are looked at.
    pub poll: Duration,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            partition: None,
            time: None,
            mem: None,
            cpus: None,
            extra: vec![],
            max_running: 64,
            retries: 2,
            poll: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("`{0}` is not on PATH: install Slurm's client commands (Debian: slurm-client), or use --executor local")]
    NotInstalled(String),
    #[error("`{command}` failed ({status}): {stderr} (is the controller reachable? try `scontrol ping`; is SLURM_CONF right?)")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("sbatch refused the job array ({status}): {stderr} (check --slurm-partition, --slurm-time, --slurm-mem, --slurm-cpus, the extra sbatch arguments, and the cluster's MaxArraySize)")]
    Refused { status: String, stderr: String },
    #[error("run directory {path}: {message}")]
    RunDir { path: String, message: String },
    #[error("finding the tools the workers must match: {0}")]
    Tools(SynthError),
    /// The caller's `OnRow` refused a row; the tasks in Slurm go on, and a rerun resumes.
    #[error("{0}")]
    Stopped(String),
    /// Slurm keeps a task pending for a reason that cannot pass (the request exceeds
    /// what the partition allows); the run's tasks were cancelled.
    #[error("slurm task {task} can never start: it is pending with reason {reason} ({why}); change {options}. The run's tasks were cancelled; rerun the same command once it is fixed")]
    NeverStarts {
        task: String,
        reason: String,
        why: &'static str,
        options: String,
    },
}

// By hand rather than `#[from]`, which would also make the inner error the `source`
// and `{:#}` print it twice (the message already carries it).
impl From<SynthError> for SlurmError {
    fn from(e: SynthError) -> Self {
        SlurmError::Tools(e)
    }
}

/// `run.json`: everything a worker needs, written once by the submitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub format: String,
    pub version: u32,
    pub jobs: Vec<RunJob>,
    pub pnr: bool,
    /// Also the per-block synthesis (older run files: no).
    #[serde(default)]
    pub blocks: bool,
    /// Whole tops instead of engines (older run files: no).
    #[serde(default)]
    pub whole_top: bool,
    pub seed: u64,
    pub time_limit_seconds: f64,
    pub force: bool,
    pub keep_work: bool,
    pub cache_root: PathBuf,
    /// Tool name → the version the submitter found; a worker must find the same.
    pub tools: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJob {
    pub name: String,
    pub board: Board,
    pub config_toml: String,
}

const RUN_FORMAT: &str = "tern-run";
const RUN_VERSION: u32 = 1;
/// A run file of a million jobs is far below this; anything larger is not ours.
const MAX_RUN_FILE: u64 = 1 << 30;

/// The versions of every tool the jobs will run, by tool.
fn tool_versions(boards: &[&Board], pnr: bool) -> Result<BTreeMap<String, String>, SynthError> {
    let mut out = BTreeMap::new();
    for b in boards {
        let mut wanted = vec![Tool::yosys_for(b.family)];
        if pnr {
            wanted.extend(router_tool(b));
        }
        for t in wanted {
            let key = format!("{t:?}");
            if let std::collections::btree_map::Entry::Vacant(e) = out.entry(key) {
                e.insert(tools::find(t)?.version);
            }
        }
    }
    Ok(out)
}

fn run_dir_of(run: &RunFile) -> (PathBuf, String) {
    let text = serde_json::to_vec(run).expect("run file serialises");
    let id = hex::encode(&Sha256::digest(&text)[..8]);
    (run.cache_root.join("runs").join(&id), format!("tern-{id}"))
}

fn row_path(dir: &Path, i: usize) -> PathBuf {
    dir.join("rows").join(format!("{i}.json"))
}

fn read_row(dir: &Path, i: usize) -> Option<SweepRow> {
    let text = std::fs::read_to_string(row_path(dir, i)).ok()?;
    serde_json::from_str(&text).ok()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run a Slurm client command; its standard output, or why not.
fn slurm(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SlurmError::NotInstalled(program.to_string())
        } else {
            SlurmError::Command {
                command: program.to_string(),
                status: "not started".into(),
                stderr: e.to_string(),
            }
        }
    })?;
    if !out.status.success() {
        return Err(SlurmError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One array task in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Queued {
    job: String,
    /// PENDING, RUNNING, ...
    state: String,
    /// Why it pends (`None` when Slurm gives none, as for a running task).
    reason: Option<String>,
}

/// The array tasks of job name `name` in the queue, by index.
fn queued(name: &str) -> Result<BTreeMap<usize, Queued>, SlurmError> {
    let out = slurm(
        "squeue",
        &[
            "-h".into(),
            "-r".into(),
            "-n".into(),
            name.into(),
            "-o".into(),
            "%i|%T|%r".into(),
        ],
    )?;
    Ok(parse_queue(&out))
}

fn parse_queue(out: &str) -> BTreeMap<usize, Queued> {
    let mut tasks = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.trim().splitn(3, '|');
        let (Some(id), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let reason = f
            .next()
            .map(|r| r.trim().trim_start_matches('(').trim_end_matches(')'))
            .filter(|r| !r.is_empty() && *r != "None")
            .map(str::to_string);
        if let Some((job, index)) = id.split_once('_') {
            if let Ok(i) = index.parse() {
                tasks.insert(
                    i,
                    Queued {
                        job: job.to_string(),
                        state: state.trim().to_string(),
                        reason,
                    },
                );
            }
        }
    }
    tasks
}

/// Pending reasons that cannot pass while the request stays as it is: what they mean,
/// and the options that set that part of the request.
const NEVER_STARTS: [(&str, &str, &str); 9] = [
    (
        "PartitionConfig",
        "the request exceeds what the partition's nodes have or allow",
        "--slurm-cpus, --slurm-mem or --slurm-partition",
    ),
    (
        "PartitionNodeLimit",
        "more nodes or CPUs than the partition allows a job",
        "--slurm-cpus or --slurm-partition",
    ),
    (
        "PartitionTimeLimit",
        "a longer time than the partition allows",
        "--slurm-time or --slurm-partition",
    ),
    (
        "BadConstraints",
        "constraints no node satisfies",
        "the constraint in --slurm-arg",
    ),
    (
        "InvalidAccount",
        "an account the cluster does not know",
        "the account in --slurm-arg",
    ),
    (
        "InvalidQOS",
        "a QOS the cluster does not know",
        "the QOS in --slurm-arg",
    ),
    (
        "QOSMaxCpuPerJobLimit",
        "more CPUs than the QOS allows a job",
        "--slurm-cpus",
    ),
    (
        "QOSMaxMemoryPerJob",
        "more memory than the QOS allows a job",
        "--slurm-mem",
    ),
    (
        "QOSMaxWallDurationPerJobLimit",
        "a longer time than the QOS allows a job",
        "--slurm-time",
    ),
];

/// Why a pending reason can never pass, and the options to change, if it cannot.
fn never_starts(reason: &str) -> Option<(&'static str, &'static str)> {
    NEVER_STARTS
        .iter()
        .find(|(r, _, _)| *r == reason)
        .map(|(_, why, options)| (*why, *options))
}

/// What a run asks sbatch for beyond the array itself, each as (the tern option as the
/// user typed it, the sbatch argument): one list for the submission and for errors
/// about what it asked.
fn request(s: &SlurmOptions) -> Vec<(String, String)> {
    let mut r = vec![];
    if let Some(p) = &s.partition {
        r.push((format!("--slurm-partition {p}"), format!("--partition={p}")));
    }
    if let Some(t) = &s.time {
        r.push((format!("--slurm-time {t}"), format!("--time={t}")));
    }
    if let Some(m) = &s.mem {
        r.push((format!("--slurm-mem {m}"), format!("--mem={m}")));
    }
    if let Some(c) = s.cpus {
        r.push((format!("--slurm-cpus {c}"), format!("--cpus-per-task={c}")));
    }
    for a in &s.extra {
        r.push((format!("--slurm-arg {a}"), a.clone()));
    }
    r
}

/// The options a run asked sbatch for, as a user typed them (for errors).
fn requested(s: &SlurmOptions) -> String {
    let asked: Vec<String> = request(s).into_iter().map(|(option, _)| option).collect();
    if asked.is_empty() {
        "nothing beyond the cluster's defaults".into()
    } else {
        asked.join(" ")
    }
}

/// One line on the queue: `2 running, 6 pending (5 JobArrayTaskLimit, 1 Resources)`.
fn queue_line(active: &BTreeMap<usize, Queued>) -> String {
    let running = active.values().filter(|q| q.state == "RUNNING").count();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for q in active.values().filter(|q| q.state == "PENDING") {
        *reasons
            .entry(q.reason.as_deref().unwrap_or("no reason given"))
            .or_insert(0) += 1;
    }
    let pending: usize = reasons.values().sum();
    let other = active.len() - running - pending;
    let mut line = format!("slurm: {running} running, {pending} pending");
    if !reasons.is_empty() {
        let mut by_count: Vec<(&str, usize)> = reasons.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = by_count.iter().map(|(r, n)| format!("{n} {r}")).collect();
        line.push_str(&format!(" ({})", list.join(", ")));
    }
    if other > 0 {
        line.push_str(&format!(", {other} ending"));
    }
    line
}

/// `0-3,5,7-9`: sorted indices as ranges.
pub fn array_spec(indices: &[usize]) -> String {
    let mut parts = vec![];
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Submit `indices` as job arrays, noting in `last_job` the array job each went to.
fn submit(
    dir: &Path,
    name: &str,
    indices: &[usize],
    s: &SlurmOptions,
    last_job: &mut BTreeMap<usize, String>,
) -> Result<(), SlurmError> {
    // A few hundred ranges per sbatch keep the command line short.
    for chunk in indices.chunks(500) {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={name}"),
            format!("--array={}%{}", array_spec(chunk), s.max_running.max(1)),
            format!("--output={}", dir.join("logs").join("%A_%a.out").display()),
        ];
        args.extend(request(s).into_iter().map(|(_, arg)| arg));
        args.push(dir.join("task.sh").display().to_string());
        args.push(dir.display().to_string());
        let out = slurm("sbatch", &args).map_err(|e| match e {
            SlurmError::Command { status, stderr, .. } => SlurmError::Refused { status, stderr },
            e => e,
        })?;
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(SlurmError::Refused {
                status: "ok".into(),
                stderr: format!("sbatch printed `{}`, not a job id", out.trim()),
            });
        }
        tracing::info!(job = %id, tasks = chunk.len(), "submitted to slurm");
        for i in chunk {
            last_job.insert(*i, id.clone());
        }
    }
    Ok(())
}

/// What Slurm still knows of a task that left the queue without a row.
fn why_gone(job: Option<&str>, i: usize, dir: &Path) -> String {
    let mut why = match job {
        Some(job) => {
            match slurm(
                "scontrol",
                &["-o".into(), "show".into(), "job".into(), format!("{job}_{i}")],
            ) {
                Ok(out) => {
                    let field = |k: &str| {
                        out.split_whitespace()
                            .find_map(|t| t.strip_prefix(k))
                            .unwrap_or("?")
                            .to_string()
                    };
                    let exit = field("ExitCode=");
                    let code = exit.split(':').next().unwrap_or("?").to_string();
                    format!(
                        "slurm task {job}_{i} ended {} with exit code {code} (signal {})",
                        field("JobState="),
                        exit.split(':').nth(1).unwrap_or("?")
                    )
                }
                Err(_) => format!(
                    "slurm task {job}_{i} left the queue with no record and no row (cancelled while pending, or purged)"
                ),
            }
        }
        None => format!("task {i} is neither queued nor done"),
    };
    if let Some(job) = job {
        let log = dir.join("logs").join(format!("{job}_{i}.out"));
        if let Ok(text) = std::fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            if !tail.is_empty() {
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                why.push_str(&format!(
                    "; its log {} ends: {}",
                    log.display(),
                    tail.join(" | ")
                ));
            }
        }
    }
    why
}

fn failed_row(job: &Job, error: String) -> SweepRow {
    SweepRow {
        name: job.item.name.clone(),
        board: job.board.name.clone(),
        error: Some(error),
        synth: None,
        pnr: None,
        blocks: None,
        cached: false,
        wall_seconds: 0.0,
        tool_seconds: 0.0,
    }
}

/// Run the jobs on Slurm; see the module doc.
pub fn run(
    jobs: &[Job],
    plan: SweepPlan,
    opts: &SynthOptions,
    s: &SlurmOptions,
    on_row: OnRow,
    on_queue: OnQueue,
) -> Result<Vec<SweepRow>, SlurmError> {
    let on_row = |i: usize, row: &SweepRow| on_row(i, row).map_err(SlurmError::Stopped);
    if jobs.is_empty() {
        return Ok(vec![]);
    }
    let boards: Vec<&Board> = jobs.iter().map(|j| &j.board).collect();
    let run = RunFile {
        format: RUN_FORMAT.into(),
        version: RUN_VERSION,
        jobs: jobs
            .iter()
            .map(|j| RunJob {
                name: j.item.name.clone(),
                board: j.board.clone(),
                config_toml: j.item.config.to_toml(),
            })
            .collect(),
        pnr: plan.pnr,
        blocks: plan.blocks,
        whole_top: plan.whole_top,
        seed: plan.seed,
        time_limit_seconds: opts.time_limit.as_secs_f64(),
        force: opts.force,
        keep_work: opts.keep_work,
        cache_root: std::path::absolute(&opts.cache_root).unwrap_or(opts.cache_root.clone()),
        tools: tool_versions(&boards, plan.pnr)?,
    };
    let (dir, name) = run_dir_of(&run);
    let io = |e: std::io::Error| SlurmError::RunDir {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    // Ask the queue first: no run directory is made for a cluster that cannot be reached.
    let mut active = queued(&name)?;
    for sub in ["rows", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io)?;
    }
    let exe = std::env::current_exe().map_err(io)?;
    std::fs::write(
        dir.join("task.sh"),
        format!(
            "#!/bin/sh\n# One array task of a tern run (docs/slurm.md); the run directory is $1.\nexec {} worker --run-dir \"$1\" --index \"$SLURM_ARRAY_TASK_ID\"\n",
            shell_quote(&exe.display().to_string())
        ),
    )
    .map_err(io)?;
    // run.json last: a directory without it is not a run (the worker refuses it).
    if !dir.join("run.json").exists() {
        write_json(&dir.join("run.json"), &run)?;
    }
    let start = Instant::now();
    let mut rows: Vec<Option<SweepRow>> = vec![None; jobs.len()];
    let mut todo = vec![];
    let mut retried = 0;
    for (i, job) in jobs.iter().enumerate() {
        let stored = read_row(&dir, i);
        if let Some(row) = stored.as_ref().filter(|r| r.error.is_none()) {
            // Finished before this command: for it, an answer from stored results.
            let row = SweepRow {
                cached: true,
                ..row.clone()
            };
            on_row(i, &row)?;
            rows[i] = Some(row);
            continue;
        }
        if stored.is_some() {
            // A failed row is no result: this run tries the job again, with a fresh
            // count of attempts (the last round's row and logs are kept aside).
            retire(&dir, i).map_err(io)?;
            retried += 1;
        }
        if active.contains_key(&i) {
            continue;
        } else if let Some(row) = cached_row(&job.item, &job.board, plan, opts) {
            write_json(&row_path(&dir, i), &row)?;
            on_row(i, &row)?;
            rows[i] = Some(row);
        } else {
            todo.push(i);
        }
    }
    let resumed = active.len();
    tracing::info!(
        run = %dir.display(),
        done = rows.iter().filter(|r| r.is_some()).count(),
        queued = resumed,
        to_submit = todo.len(),
        failed_before = retried,
        "slurm run {name}"
    );
    // Index → the array job that last ran it, attempts so far, polls seen missing.
    let mut last_job: BTreeMap<usize, String> =
        active.iter().map(|(i, q)| (*i, q.job.clone())).collect();
    // Attempts survive a killed submitter: each started task left a log.
    let mut attempts: BTreeMap<usize, u32> = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("logs")).map_err(io)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(i) = name
            .strip_suffix(".out")
            .and_then(|n| n.rsplit_once('_'))
            .and_then(|(_, i)| i.parse::<usize>().ok())
        {
            *attempts.entry(i).or_insert(0) += 1;
        }
    }
    let mut missing: BTreeMap<usize, u32> = BTreeMap::new();
    if !todo.is_empty() {
        submit(&dir, &name, &todo, s, &mut last_job)?;
        active = queued(&name)?;
    }
    let mut shown = String::new();
    loop {
        check_startable(&active, &name, s)?;
        let line = queue_line(&active);
        if line != shown {
            tracing::info!(seconds = start.elapsed().as_secs(), "{line}");
            on_queue(&line);
            shown = line;
        }
        let mut outstanding: BTreeSet<usize> = BTreeSet::new();
        for (i, slot) in rows.iter_mut().enumerate() {
            if slot.is_none() {
                if let Some(row) = read_row(&dir, i) {
                    on_row(i, &row)?;
                    *slot = Some(row);
                } else {
                    outstanding.insert(i);
                }
            }
        }
        if outstanding.is_empty() {
            break;
        }
        let mut again = vec![];
        for &i in &outstanding {
            if active.contains_key(&i) {
                missing.remove(&i);
                continue;
            }
            // A task writes its row before it leaves the queue; one poll of grace covers
            // a row that lands just after the queue was read.
            let m = missing.entry(i).or_insert(0);
            *m += 1;
            if *m < 2 {
                continue;
            }
            missing.remove(&i);
            if let Some(row) = read_row(&dir, i) {
                on_row(i, &row)?;
                rows[i] = Some(row);
                continue;
            }
            let why = why_gone(last_job.get(&i).map(|s| s.as_str()), i, &dir);
            let n = attempts.entry(i).or_insert(0);
            *n += 1;
            if *n > s.retries {
                let row = failed_row(&jobs[i], format!("{why} (gave up after {} attempts)", *n));
                tracing::warn!(task = i, "{}", row.error.as_deref().unwrap_or(""));
                write_json(&row_path(&dir, i), &row)?;
                on_row(i, &row)?;
                rows[i] = Some(row);
            } else {
                tracing::warn!(task = i, attempt = *n, "{why}; submitting it again");
                again.push(i);
            }
        }
        if !again.is_empty() {
            submit(&dir, &name, &again, s, &mut last_job)?;
        }
        std::thread::sleep(s.poll);
        active = queued(&name)?;
    }
    Ok(rows
        .into_iter()
        .map(|r| r.expect("every row is in"))
        .collect())
}

/// Set a failed job's row and its attempts' logs aside (`rows/earlier/`,
/// `logs/earlier/`, named by the time they were set aside), so that it runs again with
/// a fresh count of attempts and its history stays readable.
fn retire(dir: &Path, i: usize) -> std::io::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows = dir.join("rows").join("earlier");
    std::fs::create_dir_all(&rows)?;
    std::fs::rename(row_path(dir, i), rows.join(format!("{i}.{stamp}.json")))?;
    let logs = dir.join("logs").join("earlier");
    std::fs::create_dir_all(&logs)?;
    for e in std::fs::read_dir(dir.join("logs"))?.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if file.ends_with(&format!("_{i}.out")) {
            std::fs::rename(e.path(), logs.join(file))?;
        }
    }
    Ok(())
}

/// A task pending for a reason that cannot pass ends the run with an error naming the
/// options to change; the run's tasks are cancelled rather than left in the queue.
fn check_startable(
    active: &BTreeMap<usize, Queued>,
    name: &str,
    s: &SlurmOptions,
) -> Result<(), SlurmError> {
    for (i, q) in active {
        let Some(reason) = q.reason.as_deref().filter(|_| q.state == "PENDING") else {
            continue;
        };
        if let Some((why, options)) = never_starts(reason) {
            let cancelled = slurm("scancel", &["-n".into(), name.into()]);
            if let Err(e) = cancelled {
                tracing::warn!("cancelling the run's tasks: {e}");
            }
            return Err(SlurmError::NeverStarts {
                task: format!("{}_{i}", q.job),
                reason: reason.to_string(),
                why,
                options: format!("{options} (this run asked {})", requested(s)),
            });
        }
    }
    Ok(())
}

/// Why a worker stopped; its exit code tells the submitter (and `scontrol`) the kind.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    RunDir(String),
    #[error("this node's tools differ from the submitter's: {0}; install the same versions on every node (scripts/setup.sh pins them)")]
    ToolsDiffer(String),
    #[error("{0}")]
    Flow(String),
}

impl WorkerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkerError::RunDir(_) => 2,
            WorkerError::ToolsDiffer(_) => 3,
            WorkerError::Flow(_) => 4,
        }
    }
}

/// One array task: run job `index` of the run in `dir` and write its row. A flow
/// failure (the design does not generate or fit, a tool is missing) writes no row: the
/// submitter sees the exit code and retries.
pub fn worker(dir: &Path, index: usize) -> Result<(), WorkerError> {
    let bad = |m: String| WorkerError::RunDir(format!("run directory {}: {m}", dir.display()));
    let path = dir.join("run.json");
    let size = std::fs::metadata(&path)
        .map_err(|e| bad(format!("run.json: {e}")))?
        .len();
    if size > MAX_RUN_FILE {
        return Err(bad(format!("run.json is {size} bytes, beyond any run")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("run.json: {e}")))?;
    let run: RunFile = serde_json::from_str(&text).map_err(|e| bad(format!("run.json: {e}")))?;
    if run.format != RUN_FORMAT || run.version != RUN_VERSION {
        return Err(bad(format!(
            "run.json is `{}` version {}, this tern writes `{RUN_FORMAT}` version {RUN_VERSION}",
            run.format, run.version
        )));
    }
    let job = run.jobs.get(index).ok_or_else(|| {
        bad(format!(
            "task index {index}, but the run has {} jobs",
            run.jobs.len()
        ))
    })?;
    let mine =
        tool_versions(&[&job.board], run.pnr).map_err(|e| WorkerError::Flow(e.to_string()))?;
    for (tool, version) in &mine {
        match run.tools.get(tool) {
            Some(v) if v == version => {}
            other => {
                return Err(WorkerError::ToolsDiffer(format!(
                    "{tool} is `{version}` here, `{}` for the submitter",
                    other.map_or("absent", |s| s.as_str())
                )))
            }
        }
    }
    let config =
        DesignConfig::from_toml(&job.config_toml, &format!("{} job {index}", path.display()))
            .map_err(|e| bad(e.to_string()))?;
    let mut opts = SynthOptions::new(run.cache_root.clone());
    opts.time_limit = Duration::from_secs_f64(run.time_limit_seconds.max(1.0));
    opts.force = run.force;
    opts.keep_work = run.keep_work;
    let item = SweepItem {
        name: job.name.clone(),
        config,
    };
    let plan = SweepPlan {
        pnr: run.pnr,
        seed: run.seed,
        blocks: run.blocks,
        whole_top: run.whole_top,
    };
    let row = run_one(&item, &job.board, plan, &opts);
    if let Some(e) = &row.error {
        return Err(WorkerError::Flow(format!(
            "{} on {}: {e}",
            job.name, job.board.name
        )));
    }
    write_json(&row_path(dir, index), &row).map_err(|e| bad(e.to_string()))?;
    println!("{} on {}: {}", job.name, job.board.name, row_summary(&row));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_are_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[]), "");
    }

    #[test]
    fn the_queue_is_read_with_its_reasons_and_summed_up() {
        let q = parse_queue(
            "12_3|PENDING|(PartitionConfig)\n12_4|PENDING|JobArrayTaskLimit\n12_5|RUNNING|None\n12_6|PENDING|JobArrayTaskLimit\nnoise\n",
        );
        assert_eq!(q.len(), 4);
        assert_eq!(q[&3].reason.as_deref(), Some("PartitionConfig"));
        assert_eq!(q[&5].reason, None);
        assert_eq!(
            queue_line(&q),
            "slurm: 1 running, 3 pending (2 JobArrayTaskLimit, 1 PartitionConfig)"
        );
        assert!(never_starts("PartitionConfig").is_some_and(|(_, o)| o.contains("--slurm-cpus")));
        assert!(never_starts("Resources").is_none());
        assert!(never_starts("JobArrayTaskLimit").is_none());
        let s = SlurmOptions {
            cpus: Some(64),
            ..SlurmOptions::default()
        };
        assert_eq!(requested(&s), "--slurm-cpus 64");
    }

    #[test]
    fn a_quote_inside_a_path_stays_quoted() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
