//! `tern lint`: Verilator's lint with every warning on (`-Wall`) over a design directory.
//! rust-hdl's generated core has its waivers (see `tern_hdl::emit::RUST_HDL_WAIVERS`);
//! the wrapper has none.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

use tern_hdl::emit::{DESIGN_FILE, MANIFEST_FILE, WAIVER_FILE, WRAPPER_FILE, WRAPPER_MODULE};
use tern_hdl::top::{TOP_FILE, TOP_MODULE};

/// Lint the design in `dir`; returns Verilator's diagnostics (empty when clean).
pub fn lint_dir(dir: &Path) -> Result<Vec<String>> {
    if !dir.join(MANIFEST_FILE).exists() {
        bail!(
            "{} has no {MANIFEST_FILE}: not a complete design directory (run `tern verilog`)",
            dir.display()
        );
    }
    // A directory written by `tern verilog --top` is linted from the accelerator top down.
    let has_top = dir.join(TOP_FILE).exists();
    let top = if has_top { TOP_MODULE } else { WRAPPER_MODULE };
    let mut files = vec![WAIVER_FILE, WRAPPER_FILE, DESIGN_FILE];
    if has_top {
        files.push(TOP_FILE);
    }
    lint_files(dir, &files, Some(top))
}

/// Lint `files` (in `dir`, Verilator configuration files first) as one design whose top
/// module is `top` (Verilator's guess when `None`); returns the diagnostics (empty when
/// clean). What `tern lint` runs, and what the tests of every written block run.
pub fn lint_files(dir: &Path, files: &[&str], top: Option<&str>) -> Result<Vec<String>> {
    let mut command = Command::new("verilator");
    command.current_dir(dir).args(["--lint-only", "-Wall"]);
    if let Some(top) = top {
        command.args(["--top-module", top]);
    }
    let out = command.args(files).output().context(
        "running verilator (install it with scripts/setup.sh or `apt-get install verilator`)",
    )?;
    let diagnostics: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("%Warning") || l.starts_with("%Error"))
        .map(str::to_string)
        .collect();
    if !out.status.success() && diagnostics.is_empty() {
        bail!(
            "verilator --lint-only failed ({}) without diagnostics",
            out.status
        );
    }
    Ok(diagnostics)
}
