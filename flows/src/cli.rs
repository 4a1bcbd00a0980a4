//! The `tern` command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use tern_boards::Board;
use tern_hdl::{generate_any, write_design, DesignConfig};
use tern_sim::verilator::ModelCache;

use crate::cosim::{self, Handshakes};
use crate::{demo, lint};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Co-design flow for ternary LLM accelerators on FPGAs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the Verilog of a design, its wrapper and manifest.
    Gen {
        #[arg(long)]
        config: PathBuf,
        /// Output directory (created if needed).
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Lint a generated design with `verilator --lint-only -Wall`.
    Lint {
        /// A config to generate and lint (into a temporary directory) ...
        #[arg(long, conflicts_with = "dir")]
        config: Option<PathBuf>,
        /// ... or a directory written by `tern gen`.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Co-simulate the RTL under Verilator against the golden model, bit for bit.
    Cosim {
        #[arg(long)]
        config: PathBuf,
        /// Vector sets: the corner cases first, then random ones.
        #[arg(long, default_value_t = 8)]
        vectors: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Handshakes::Mixed)]
        handshakes: Handshakes,
        /// Where a waveform is written on a mismatch.
        #[arg(long, default_value = "build/waveforms")]
        waveforms: PathBuf,
    },
    /// The demo: generate, lint, co-simulate and report on a config (default example).
    Demo {
        #[arg(long, default_value = "examples/default.toml")]
        config: PathBuf,
        #[arg(long, default_value = "build/demo")]
        out: PathBuf,
    },
    /// List the boards tern knows.
    Boards,
}

pub fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Gen { config, out } => {
            let cfg = DesignConfig::from_path(&config)?;
            let design = generate_any(&cfg)?;
            write_design(&design, &out)?;
            let m = &design.manifest;
            let timing = match (m.cycles_per_token, m.pipeline_latency) {
                (Some(c), Some(l)) => format!(", {c} clocks/token, latency {l} clocks"),
                _ => String::new(),
            };
            println!(
                "wrote {} ({} engine, {} lines of Verilog, hash {}, {} bits of on-chip memory{timing})",
                out.display(),
                m.engine,
                m.verilog_lines,
                design.short_hash(),
                m.total_memory_bits(),
            );
        }
        Command::Lint { config, dir } => {
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
        }
        Command::Cosim {
            config,
            vectors,
            seed,
            handshakes,
            waveforms,
        } => {
            let cfg = DesignConfig::from_path(&config)?;
            let design = generate_any(&cfg)?;
            let library = ModelCache::default().load(&design)?;
            let s = cosim::run(&design, &library, vectors, seed, handshakes, &waveforms)?;
            println!(
                "PASS: {} vector sets, {} outputs bit-exact against the golden model ({} clocks simulated)",
                s.vector_sets, s.outputs, s.cycles
            );
        }
        Command::Demo { config, out } => demo::run(&config, &out)?,
        Command::Boards => {
            for b in Board::all()? {
                let r = &b.resources;
                println!(
                    "{:<11} {:<20} {:?}  {} LUT  {} FF  {} DSP  {} BRAM ({} kbit)  {}",
                    b.name,
                    b.part,
                    b.family,
                    r.luts,
                    r.ffs,
                    r.dsps,
                    r.bram_blocks,
                    r.bram_bits / 1024,
                    b.description
                );
            }
        }
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tern-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Resolve a path given relative to the repository when run from elsewhere.
pub fn find_in_repo(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidate = repo.join(path);
    if candidate.exists() {
        candidate
    } else {
        path.to_path_buf()
    }
}
