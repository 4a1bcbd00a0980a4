//! `tern token`: write a new random token file (mode 0600) for `tern serve --token-file` and the
//! clients' `--board-token`.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let Args { out } = a;
    tern_host::auth::Secret::generate()?.write_new(&out)?;
    println!(
        "wrote a new token to {} (mode 0600): give it to `tern serve --token-file` and to \
         the clients' --board-token",
        out.display()
    );
    Ok(())
}
