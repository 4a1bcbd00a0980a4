//! `tern boards`: list the boards tern knows.

use anyhow::Result;

use tern_boards::Board;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args) -> Result<()> {
    println!(
        "{:<13} {:<20} {:<6} {:>9} {:>9} {:>5} {:>10} {:>10} {:>6} {:>9} {:<15} {:<22} {:<19} description",
        "board", "part", "family", "LUT", "FF", "DSP", "BRAM", "URAM", "MHz", "mem GB/s", " memory ports", "host links", "place & route"
    );
    for b in Board::all()? {
        let r = &b.resources;
        let links: Vec<String> = b
            .host_links
            .iter()
            .map(|l| {
                serde_json::to_value(l.kind)
                    .unwrap()
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let pnr = serde_json::to_value(b.toolchain.pnr).unwrap();
        // Memory ports as count × width @ clock limit (all of one kind on shipped boards).
        let ports = match b.memory.ports.first() {
            Some(p) => format!(" {}×{}b@{}", b.memory.ports.len(), p.bits, p.max_mhz),
            None => " –".to_string(),
        };
        println!(
            "{:<13} {:<20} {:<6} {:>9} {:>9} {:>5} {:>4} ({:>4}k) {:>3} ({:>4}k) {:>6} {:>9} {:<15} {:<22} {:<19} {}",
            b.name,
            b.part,
            b.family.name(),
            r.luts,
            r.ffs,
            r.dsps,
            r.bram_blocks,
            r.bram_bits / 1024,
            r.urams,
            r.uram_bits / 1024,
            b.clock.default_mhz,
            b.memory.gbyte_per_s,
            ports,
            links.join(","),
            pnr.as_str().unwrap_or(""),
            b.description
        );
    }
    Ok(())
}
