//! `tern demo`: the demo: generate, lint, co-simulate and report on a config (default example).

use anyhow::Result;
use std::path::PathBuf;

use crate::demo;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "examples/default.toml")]
    pub config: PathBuf,
    #[arg(long, default_value = "build/demo")]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let Args { config, out } = a;
    demo::run(&config, &out)?;
    Ok(())
}
