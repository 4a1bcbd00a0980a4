//! `tern lint`: lint a generated design with `verilator --lint-only -Wall`.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

use tern_hdl::{generate_any, write_design, DesignConfig};

use crate::rtl::lint;

#[derive(clap::Args)]
pub struct Args {
    /// A config to generate and lint (into a temporary directory) ...
    #[arg(long, conflicts_with = "dir")]
    pub config: Option<PathBuf>,
    /// ... or a directory written by `tern verilog`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args { config, dir } = a;
    let mut tmp = None;
    let subject = match (&config, &dir) {
        (Some(c), _) => c.display().to_string(),
        (None, Some(d)) => d.display().to_string(),
        (None, None) => String::new(),
    };
    let dir = match (config, dir) {
        (Some(config), _) => {
            let design = generate_any(&DesignConfig::from_path(&config)?)?;
            let dir = tempdir()?;
            tmp = Some(dir.clone());
            write_design(&design, &dir)?;
            dir
        }
        (None, Some(dir)) => dir,
        (None, None) => bail!("give --config or --dir"),
    };
    let diagnostics = lint::lint_dir(&dir);
    if let Some(tmp) = &tmp {
        let _ = std::fs::remove_dir_all(tmp);
    }
    let diagnostics = diagnostics?;
    if !diagnostics.is_empty() {
        bail!(
            "verilator -Wall reported {} diagnostics:\n{}",
            diagnostics.len(),
            diagnostics.join("\n")
        );
    }
    println!("lint clean: verilator --lint-only -Wall on {subject}");
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tern-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
