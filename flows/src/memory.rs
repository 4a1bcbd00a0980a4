//! The memory behind a simulated board: the DDR model a top runs against, from the
//! config's board (docs/top.md), with the performance model's latency.

use anyhow::{bail, Context, Result};

use tern_dse::performance::latency_clocks;
use tern_hdl::config::TopConfig;
use tern_hdl::{Config, DesignConfig};
use tern_sim::top_model::{DramTiming, MemoryModel};

/// The `[top]` and board of either kind of config.
fn top_and_board(cfg: &DesignConfig) -> (&TopConfig, Option<&String>) {
    match cfg {
        DesignConfig::Matmul(c) => (&c.top, c.board.as_ref()),
        DesignConfig::Attention(c) => (&c.top, c.board.as_ref()),
    }
}

/// The simulated board's memory for `cfg`: its size from `top.memory_mib`, bandwidth at
/// the board's clock and the latency and reads in flight of the board file's `[memory]` (no board: a
/// memory that keeps up with any bus). The description says which.
pub fn memory_model(cfg: &Config) -> Result<(MemoryModel, String)> {
    memory_model_for(&DesignConfig::Matmul(cfg.clone()))
}

/// [`memory_model`] for either kind of config, at the board's default clock.
pub fn memory_model_for(cfg: &DesignConfig) -> Result<(MemoryModel, String)> {
    memory_model_at(cfg, None)
}

/// [`memory_model_for`] at `clock_mhz` (`None`: the board's default clock): the DDR's
/// peak, its DRAM timing and the board's ports, all in clocks of that kernel clock.
pub fn memory_model_at(
    cfg: &DesignConfig,
    clock_mhz: Option<f64>,
) -> Result<(MemoryModel, String)> {
    let (top, board) = top_and_board(cfg);
    let bytes = top.memory_bytes();
    let Some(name) = board else {
        return Ok((
            MemoryModel::ideal(bytes),
            "ideal memory (the config names no board)".into(),
        ));
    };
    let board = tern_boards::Board::resolve(name).with_context(|| format!("board `{name}`"))?;
    if bytes > board.memory.bytes {
        bail!(
            "top.memory_mib = {} is more than the {} bytes of {} on {}",
            top.memory_mib,
            board.memory.bytes,
            board.memory.kind,
            board.name
        );
    }
    let mhz = clock_mhz.unwrap_or(board.clock.default_mhz);
    let memory = &board.memory;
    let model = MemoryModel {
        bytes,
        bytes_per_clock: memory.gbyte_per_s * 1e3 / mhz,
        latency_clocks: latency_clocks(memory, mhz) as u32,
        max_reads: memory.reads_in_flight,
        stall_percent: 0,
        seed: 1,
        timing: dram_timing(memory, mhz),
    };
    let mut text = format!(
        "{} model: {:.1} GB/s peak = {:.1} B/clock at {mhz} MHz, {} clocks ({} ns, assumed) latency",
        memory.kind, memory.gbyte_per_s, model.bytes_per_clock, model.latency_clocks, memory.latency_ns
    );
    if memory.dram.is_some() {
        text += &format!(
            "; refresh, row misses and turnarounds: long reads sustain {:.2} GB/s",
            memory.sustained_gbyte_per_s()
        );
    }
    if let Some(ports) = memory.ports_gbyte_per_s(mhz) {
        text += &format!(
            "; {} ports carry {ports:.1} GB/s each way",
            memory.ports.len()
        );
    }
    Ok((model, text))
}

/// The board's DRAM timing and ports in the simulated memory's units: clocks of
/// `clock_mhz` and bytes of data-bus time at the peak rate.
/// The board's memory as the one top sees it at `clock_mhz`: the DRAM behind each of the
/// board's `[[memory.ports]]`, each port at most what it carries (all ports alike: an
/// error when they differ); `bytes` of it modelled. The ports, for the caller.
pub fn ported_memory_at(
    board: &tern_boards::Board,
    clock_mhz: f64,
    bytes: u64,
) -> Result<(MemoryModel, Vec<tern_boards::MemoryPort>)> {
    let memory = &board.memory;
    let Some(first) = memory.ports.first() else {
        bail!("board {} lists no [[memory.ports]]", board.name);
    };
    if memory
        .ports
        .iter()
        .any(|p| p.bits != first.bits || p.max_mhz != first.max_mhz)
    {
        bail!(
            "board {}: its memory ports differ; the one top takes ports alike",
            board.name
        );
    }
    let mut timing = dram_timing(memory, clock_mhz);
    timing.port_bytes_per_clock =
        f64::from(first.bits) / 8.0 * clock_mhz.min(first.max_mhz) / clock_mhz;
    let model = MemoryModel {
        bytes,
        bytes_per_clock: memory.gbyte_per_s * 1e3 / clock_mhz,
        latency_clocks: latency_clocks(memory, clock_mhz) as u32,
        max_reads: memory.reads_in_flight,
        stall_percent: 0,
        seed: 1,
        timing,
    };
    Ok((model, memory.ports.clone()))
}

fn dram_timing(memory: &tern_boards::Memory, clock_mhz: f64) -> DramTiming {
    let bytes_per_ns = memory.gbyte_per_s;
    let ports = memory
        .ports_gbyte_per_s(clock_mhz)
        .map_or(0.0, |g| g * 1e3 / clock_mhz);
    match &memory.dram {
        None => DramTiming {
            port_bytes_per_clock: ports,
            ..DramTiming::default()
        },
        Some(d) => DramTiming {
            refresh_interval_clocks: d.refresh_interval_ns * clock_mhz / 1e3,
            refresh_bytes: d.refresh_ns * bytes_per_ns,
            row_bytes: d.row_bytes,
            banks: u64::from(d.banks),
            row_miss_bytes: d.row_miss_ns * bytes_per_ns,
            read_to_write_bytes: d.read_to_write_ns * bytes_per_ns,
            write_to_read_bytes: d.write_to_read_ns * bytes_per_ns,
            port_bytes_per_clock: ports,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use tern_hdl::config::{ConfigBuilder, TopConfig};
    use tern_host::device::{Device, OpenOptions};

    /// A matmul top that asks for weights faster than the KV260's DDR gives them (384
    /// weights a clock of 5-bit codes per 3 weights = 80 B/clock against 64), re-reading a
    /// 218 KB matrix for each of `tokens` tokens: long sequential reads.
    fn memory_bound(tokens: usize) -> Config {
        ConfigBuilder::tlmm(3, 8, 16)
            .workload(1024, 1024, tokens)
            .board("kv260")
            .top(TopConfig {
                bus_bits: 512,
                memory_mib: 16,
                ..TopConfig::default()
            })
            .build()
            .unwrap()
    }

    /// Bytes a clock one run moved, on `memory`.
    fn rate(cfg: &Config, memory: MemoryModel, seed: u64) -> f64 {
        let opts = OpenOptions {
            cache: tern_sim::verilator::default_cache_root(),
            memory: Some(memory),
            ..OpenOptions::default()
        };
        let mut dev = Device::open("sim:", cfg, &opts).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (m, k, n) = (cfg.workload.m, cfg.workload.k, cfg.workload.tokens);
        let w: Vec<i8> = (0..m * k).map(|_| rng.gen_range(-1i8..=1)).collect();
        let x: Vec<i8> = (0..n * k).map(|_| rng.gen()).collect();
        dev.load_weights(&w).unwrap();
        let run = dev.gemm(&x).unwrap();
        (run.bytes_read + run.bytes_written) as f64 / run.cycles as f64
    }

    /// Long reads on the simulated KV260 DDR sustain what the performance model says (the
    /// peak less refresh, `Memory::sustained_gbyte_per_s`): the DRAM model and the
    /// performance model agree where the memory bounds. Put every row in one bank and the
    /// weights and activations, read side by side, close each other's rows: slower.
    #[test]
    fn long_reads_on_the_simulated_ddr_sustain_what_the_performance_model_says() {
        let cfg = memory_bound(24);
        let (memory, text) = memory_model_for(&DesignConfig::Matmul(cfg.clone())).unwrap();
        assert!(text.contains("sustain"), "{text}");
        let board = tern_boards::Board::builtin("kv260").unwrap();
        let sustained = board.memory.sustained_gbyte_per_s() * 1e3 / board.clock.default_mhz;
        let measured = rate(&cfg, memory, 1);
        // Within 2 %: the run's first and last clocks (latency, fill, drain) and the
        // rare row miss where the two streams meet in one bank are what differ.
        assert!(
            measured <= sustained && measured >= 0.98 * sustained,
            "measured {measured:.2} B/clock, sustained {sustained:.2} (peak {:.1})",
            memory.bytes_per_clock
        );
        let one_bank = MemoryModel {
            timing: DramTiming {
                banks: 1,
                ..memory.timing
            },
            ..memory
        };
        let conflicted = rate(&cfg, one_bank, 1);
        println!(
            "KV260 DDR model at {} MHz: peak {:.2} B/clock, sustained {sustained:.2}; a memory-bound top moves {measured:.2} ({:.1} % of sustained); every row in one bank: {conflicted:.2} ({:.1} % less)",
            board.clock.default_mhz,
            memory.bytes_per_clock,
            100.0 * measured / sustained,
            100.0 * (1.0 - conflicted / measured)
        );
        assert!(
            conflicted < 0.97 * measured,
            "one bank {conflicted:.2} B/clock against {measured:.2}"
        );
    }
}
