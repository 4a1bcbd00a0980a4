//! tern-boards: FPGA boards as data. One TOML file per board in `boards/data/`,
//! compiled into the crate so the binary needs no data directory, and validated on load.
//! A board says what the chip offers (resources, clock, memory, host links) and which
//! open toolchain applies; designs never name a board's numbers themselves.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The boards shipped with tern: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("kv260", include_str!("../data/kv260.toml")),
    ("zcu104", include_str!("../data/zcu104.toml")),
    ("u280", include_str!("../data/u280.toml")),
    ("arty_a7_100t", include_str!("../data/arty_a7_100t.toml")),
    ("ulx3s", include_str!("../data/ulx3s.toml")),
    ("icebreaker", include_str!("../data/icebreaker.toml")),
    ("tangnano20k", include_str!("../data/tangnano20k.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Xilinx UltraScale+ (Yosys `synth_xilinx -family xcup`).
    Xcup,
    /// Xilinx 7-series (`synth_xilinx -family xc7`).
    Xc7,
    Ecp5,
    Ice40,
    Gowin,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Xcup => "xcup",
            Family::Xc7 => "xc7",
            Family::Ecp5 => "ecp5",
            Family::Ice40 => "ice40",
            Family::Gowin => "gowin",
        }
    }

    /// The one place-and-route tool that fits this family, if an open one exists.
    pub fn router(self) -> PnrTool {
        match self {
            Family::Xcup | Family::Xc7 => PnrTool::None,
            Family::Ecp5 => PnrTool::NextpnrEcp5,
            Family::Ice40 => PnrTool::NextpnrIce40,
            Family::Gowin => PnrTool::NextpnrHimbaechel,
        }
    }
}

/// What the chip offers (the board file's `[resources]`). Block RAM and the large-RAM
/// class (UltraRAM, iCE40 SPRAM) are given as blocks and bits so that both "blocks used"
/// and "bits used" can be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub luts: u64,
    pub ffs: u64,
    pub dsps: u64,
    pub bram_blocks: u64,
    pub bram_bits: u64,
    pub urams: u64,
    pub uram_bits: u64,
}

/// What a design uses (or is set aside for one), in the units a board budgets: the one
/// LUT/FF/DSP/block-RAM count of synthesis reports, predictions and the DSE. Fractional,
/// because predictions and half blocks (a Xilinx RAMB18) are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub luts: f64,
    pub ffs: f64,
    pub dsps: f64,
    /// Block RAMs in the board's unit.
    pub brams: f64,
}

impl Resources {
    pub fn scaled(self, k: f64) -> Resources {
        Resources {
            luts: self.luts * k,
            ffs: self.ffs * k,
            dsps: self.dsps * k,
            brams: self.brams * k,
        }
    }

    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            luts: self.luts + o.luts,
            ffs: self.ffs + o.ffs,
            dsps: self.dsps + o.dsps,
            brams: self.brams + o.brams,
        }
    }

    /// Whether it fits in `capacity` (LUT, FF, DSP and block RAM each).
    pub fn fits(&self, capacity: &Capacity) -> bool {
        self.budget(capacity)
            .iter()
            .all(|(_, used, have)| used <= have)
    }

    /// Each resource as (name, used, what `capacity` has), in the order LUT, FF, DSP,
    /// BRAM: what a report of what ran out reads.
    pub fn budget(&self, capacity: &Capacity) -> [(&'static str, f64, f64); 4] {
        [
            ("LUT", self.luts, capacity.luts as f64),
            ("FF", self.ffs, capacity.ffs as f64),
            ("DSP", self.dsps, capacity.dsps as f64),
            ("BRAM", self.brams, capacity.bram_blocks as f64),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// The clock a design runs at on this board when no router gives an Fmax.
    pub default_mhz: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// ddr4, hbm2, sdram, qspi-flash, ...
    pub kind: String,
    pub bytes: u64,
    /// Peak external-memory bandwidth in GB/s (10⁹ bytes/s).
    pub gbyte_per_s: f64,
    /// Read latency seen by a fabric master, address to first data beat, in ns.
    #[serde(default = "default_latency_ns")]
    pub latency_ns: f64,
    /// Read bursts the memory controller accepts before it has finished them.
    #[serde(default = "default_reads_in_flight")]
    pub reads_in_flight: u32,
    /// The ports through which the fabric reaches this memory (`[[memory.ports]]`), where
    /// the chip fixes them (a hardened controller: the Zynq's PS DDR, HBM); none listed:
    /// a controller built in the fabric, whose port is whatever the design makes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<MemoryPort>,
    /// The DRAM's own timing (`[memory.dram]`): what keeps it below `gbyte_per_s` even
    /// when asked for nothing but long reads. None: the memory runs at its peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram: Option<Dram>,
}

/// A DRAM's timing as the data bus sees it: time in ns during which no data moves.
/// Addresses map row-bank-column: consecutive `row_bytes` go to consecutive banks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dram {
    /// tREFI: one refresh every this many ns.
    pub refresh_interval_ns: f64,
    /// tRFC: every bank is busy this long per refresh.
    pub refresh_ns: f64,
    /// Bytes of one row (page) across the whole data bus.
    pub row_bytes: u64,
    pub banks: u32,
    /// tRP + tRCD: the bus idles this long when a burst needs another row of the bank
    /// the previous burst used (another bank's row opens behind that burst's data).
    pub row_miss_ns: f64,
    /// Data-bus idle time from reads to writes and from writes to reads.
    pub read_to_write_ns: f64,
    pub write_to_read_ns: f64,
}

impl Dram {
    /// The share of the peak left to long sequential reads: refresh takes the rest (their
    /// row changes go to the next bank and open behind the current burst).
    pub fn streaming_efficiency(&self) -> f64 {
        1.0 - self.refresh_ns / self.refresh_interval_ns
    }
}

/// One fabric port into the board's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPort {
    /// The port's name in the vendor's documentation (`S_AXI_HP0_FPD`).
    pub name: String,
    /// Data width on the fabric side, in bits.
    pub bits: u32,
    /// Highest clock the port's fabric side takes, in MHz.
    pub max_mhz: f64,
    /// Longest burst the port passes on, in beats (AXI3 ports: 16).
    pub max_burst_beats: u32,
}

impl Memory {
    /// What long sequential reads sustain, in GB/s: the peak (`gbyte_per_s`, the roofline
    /// every report also shows) times the DRAM's [`Dram::streaming_efficiency`].
    pub fn sustained_gbyte_per_s(&self) -> f64 {
        self.gbyte_per_s * self.dram.as_ref().map_or(1.0, Dram::streaming_efficiency)
    }

    /// What all listed ports can carry at `clock_mhz` (each at most its own limit), in
    /// GB/s; `None` when the board lists none.
    pub fn ports_gbyte_per_s(&self, clock_mhz: f64) -> Option<f64> {
        (!self.ports.is_empty()).then(|| {
            self.ports
                .iter()
                .map(|p| f64::from(p.bits) / 8.0 * clock_mhz.min(p.max_mhz) / 1e3)
                .sum()
        })
    }
}

/// When a board file gives no latency: data sheets give none for a fabric master; ~100–150
/// ns from a PL master through the Zynq UltraScale+ HP ports to DDR4 is the commonly
/// measured range, so 120 ns.
fn default_latency_ns() -> f64 {
    120.0
}

/// When a board file gives no figure (the Zynq HP ports queue more than this).
fn default_reads_in_flight() -> u32 {
    16
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostLinkKind {
    /// PCIe with Xilinx's XDMA char-device driver.
    PcieXdma,
    /// USB 3 through an FTDI FT601 FIFO bridge.
    UsbFt601,
    /// A USB serial bridge (FTDI, BL616, ...).
    UsbUart,
    /// The chip's own Arm cores over the PS–PL AXI ports (Zynq MPSoC, Kria).
    SocAxi,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLink {
    pub kind: HostLinkKind,
    /// Peak payload bandwidth in MB/s (10⁶ bytes/s).
    pub mbyte_per_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PnrTool {
    /// No open router for this family (Xilinx): Yosys gives a timing estimate only.
    None,
    NextpnrEcp5,
    NextpnrIce40,
    /// nextpnr's himbächel architecture with the Gowin micro-architecture.
    NextpnrHimbaechel,
}

/// Which open toolchain applies, and the router's device arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    pub pnr: PnrTool,
    /// nextpnr's device: `85k` (ECP5), `up5k` (iCE40), the full part (Gowin).
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub speed: Option<String>,
    /// himbächel's `--vopt family=...` (Gowin).
    #[serde(default)]
    pub pnr_family: Option<String>,
    /// Package pins for the place-and-route harness's clock, reset, serial in and serial
    /// out, where the router needs every IO placed (Gowin).
    #[serde(default)]
    pub harness_pins: Option<[String; 4]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub part: String,
    pub family: Family,
    pub resources: Capacity,
    pub clock: Clock,
    pub memory: Memory,
    pub host_links: Vec<HostLink>,
    pub toolchain: Toolchain,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(
        "unknown board `{name}`; known boards: {known} (or give the path of a board TOML file)"
    )]
    Unknown { name: String, known: String },
    #[error("board file {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("board file {origin}: {cause}")]
    Io {
        origin: String,
        cause: std::io::Error,
    },
}

impl Board {
    pub fn from_toml(text: &str, origin: &str) -> Result<Board, BoardError> {
        let board: Board = toml::from_str(text).map_err(|e| BoardError::Invalid {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        board.validate().map_err(|message| BoardError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(board)
    }

    fn validate(&self) -> Result<(), String> {
        let r = &self.resources;
        for (key, value) in [("resources.luts", r.luts), ("resources.ffs", r.ffs)] {
            if value == 0 {
                return Err(format!("`{key}` must be positive"));
            }
        }
        for (blocks, bits, what) in [
            (r.bram_blocks, r.bram_bits, "bram"),
            (r.urams, r.uram_bits, "uram"),
        ] {
            if (blocks == 0) != (bits == 0) {
                return Err(format!(
                    "`resources.{what}_blocks`/`{what}_bits` disagree: {blocks} blocks but {bits} bits"
                ));
            }
        }
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("`{key}` must be a positive number, not {v}"))
            }
        };
        positive("clock.default_mhz", self.clock.default_mhz)?;
        positive("memory.gbyte_per_s", self.memory.gbyte_per_s)?;
        // Beyond these no FPGA board exists; a typo (1e300) would otherwise flow into
        // every roofline and DSE figure.
        let within = |key: &str, v: f64, lo: f64, hi: f64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("`{key}` = {v} is outside {lo}..={hi}"))
            }
        };
        within("clock.default_mhz", self.clock.default_mhz, 1.0, 2000.0)?;
        within(
            "memory.gbyte_per_s",
            self.memory.gbyte_per_s,
            0.001,
            10000.0,
        )?;
        within("memory.latency_ns", self.memory.latency_ns, 1.0, 10000.0)?;
        if !(1..=256).contains(&self.memory.reads_in_flight) {
            return Err(format!(
                "`memory.reads_in_flight` = {} is outside 1..=256",
                self.memory.reads_in_flight
            ));
        }
        for (blocks, bits, what) in [
            (r.bram_blocks, r.bram_bits, "bram"),
            (r.urams, r.uram_bits, "uram"),
        ] {
            if let Some(per_block) = bits.checked_div(blocks) {
                if !(1024..=(1 << 20)).contains(&per_block) {
                    return Err(format!(
                        "`resources.{what}_bits` / `{what}_blocks` = {per_block} bits per block is outside 1024..=1048576"
                    ));
                }
            }
        }
        for (i, p) in self.memory.ports.iter().enumerate() {
            let at = format!("memory.ports[{i}] (`{}`)", p.name);
            if p.name.trim().is_empty() {
                return Err(format!("`memory.ports[{i}].name` is empty"));
            }
            if self.memory.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("{at}: a second port of that name"));
            }
            if !(p.bits.is_power_of_two() && (8..=1024).contains(&p.bits)) {
                return Err(format!(
                    "{at}: `bits` = {} is not a power of two in 8..=1024",
                    p.bits
                ));
            }
            within(&format!("{at}.max_mhz"), p.max_mhz, 1.0, 2000.0)?;
            if !(1..=256).contains(&p.max_burst_beats) {
                return Err(format!(
                    "{at}: `max_burst_beats` = {} is outside 1..=256",
                    p.max_burst_beats
                ));
            }
        }
        if let Some(d) = &self.memory.dram {
            within(
                "memory.dram.refresh_interval_ns",
                d.refresh_interval_ns,
                100.0,
                1e6,
            )?;
            within(
                "memory.dram.refresh_ns",
                d.refresh_ns,
                0.0,
                d.refresh_interval_ns / 2.0,
            )?;
            within("memory.dram.row_miss_ns", d.row_miss_ns, 0.0, 1000.0)?;
            within(
                "memory.dram.read_to_write_ns",
                d.read_to_write_ns,
                0.0,
                1000.0,
            )?;
            within(
                "memory.dram.write_to_read_ns",
                d.write_to_read_ns,
                0.0,
                1000.0,
            )?;
            if !(d.row_bytes.is_power_of_two() && (256..=1 << 20).contains(&d.row_bytes)) {
                return Err(format!(
                    "`memory.dram.row_bytes` = {} is not a power of two in 256..=1048576",
                    d.row_bytes
                ));
            }
            if !(1..=256).contains(&d.banks) {
                return Err(format!(
                    "`memory.dram.banks` = {} is outside 1..=256",
                    d.banks
                ));
            }
        }
        if self.host_links.is_empty() {
            return Err("at least one `[[host_links]]` entry is needed".into());
        }
        for link in &self.host_links {
            positive("host_links.mbyte_per_s", link.mbyte_per_s)?;
        }
        let expected = self.family.router();
        let t = &self.toolchain;
        if t.pnr != expected && t.pnr != PnrTool::None {
            return Err(format!(
                "`toolchain.pnr` = {:?} does not place family `{}` (use {:?} or \"none\")",
                t.pnr,
                self.family.name(),
                expected
            ));
        }
        let need = |key: &str, v: &Option<String>| match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(format!("`toolchain.{key}` is required for {:?}", t.pnr)),
        };
        match t.pnr {
            PnrTool::None => {}
            PnrTool::NextpnrEcp5 => {
                need("device", &t.device)?;
                need("package", &t.package)?;
                need("speed", &t.speed)?;
            }
            PnrTool::NextpnrIce40 => {
                need("device", &t.device)?;
                need("package", &t.package)?;
            }
            PnrTool::NextpnrHimbaechel => {
                need("device", &t.device)?;
                need("pnr_family", &t.pnr_family)?;
                if t.harness_pins.is_none() {
                    return Err(
                        "`toolchain.harness_pins` (clock, reset, in, out) is required for nextpnr-himbaechel"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// A shipped board by name.
    pub fn builtin(name: &str) -> Result<Board, BoardError> {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Board::from_toml(text, &format!("boards/data/{n}.toml")),
            None => Err(BoardError::Unknown {
                name: name.to_string(),
                known: BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// A shipped board by name, or a board TOML file by path (anything ending in `.toml`).
    pub fn resolve(name_or_path: &str) -> Result<Board, BoardError> {
        if name_or_path.ends_with(".toml") {
            let path = Path::new(name_or_path);
            let text = read_bounded(path).map_err(|cause| BoardError::Io {
                origin: path.display().to_string(),
                cause,
            })?;
            Board::from_toml(&text, &path.display().to_string())
        } else {
            Board::builtin(name_or_path)
        }
    }

    pub fn all() -> Result<Vec<Board>, BoardError> {
        BUILTIN.iter().map(|(n, _)| Board::builtin(n)).collect()
    }

    /// Whether an open router places this board (and so reports a real Fmax).
    pub fn has_router(&self) -> bool {
        self.toolchain.pnr != PnrTool::None
    }
}

/// A board file read to at most 1 MiB (this crate sits below `tern_hdl::files`, which
/// does the same for the other TOML files): /dev/zero is refused, not read forever.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    const LIMIT: u64 = 1 << 20;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 1 MiB: not a board file",
        ));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv260_text() -> &'static str {
        BUILTIN.iter().find(|(n, _)| *n == "kv260").unwrap().1
    }

    #[test]
    fn every_shipped_board_loads_and_is_named_after_its_file() {
        let boards = Board::all().unwrap();
        assert_eq!(boards.len(), BUILTIN.len());
        for board in boards {
            assert!(BUILTIN.iter().any(|(n, _)| *n == board.name));
        }
    }

    #[test]
    fn the_issue_families_are_all_present_with_their_routers() {
        let boards = Board::all().unwrap();
        for family in [
            Family::Xcup,
            Family::Xc7,
            Family::Ecp5,
            Family::Ice40,
            Family::Gowin,
        ] {
            assert!(boards.iter().any(|b| b.family == family), "{family:?}");
        }
        for b in &boards {
            assert!(
                b.toolchain.pnr == PnrTool::None || b.toolchain.pnr == b.family.router(),
                "{}",
                b.name
            );
        }
    }

    #[test]
    fn absurd_clocks_bandwidths_and_block_sizes_are_refused() {
        for (from, to, key) in [
            ("default_mhz = 300.0", "default_mhz = 1e300", "default_mhz"),
            ("default_mhz = 300.0", "default_mhz = 1e-300", "default_mhz"),
            ("bram_bits = 5308416", "bram_bits = 144", "bits per block"),
            (
                "latency_ns = 120.0",
                "latency_ns = 0.0",
                "memory.latency_ns",
            ),
            (
                "reads_in_flight = 16",
                "reads_in_flight = 0",
                "memory.reads_in_flight",
            ),
        ] {
            let text = kv260_text().replace(from, to);
            assert_ne!(text, kv260_text(), "{from} is not in the board file");
            let err = Board::from_toml(&text, "x").unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        // An endless "file" is refused after 1 MiB, not read until memory runs out.
        let dir = std::env::temp_dir().join(format!("tern-boards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let endless = dir.join("endless.toml");
        let _ = std::fs::remove_file(&endless);
        std::os::unix::fs::symlink("/dev/zero", &endless).unwrap();
        let e = Board::resolve(endless.to_str().unwrap())
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("larger than 1 MiB"), "{e}");
    }

    #[test]
    fn a_board_file_without_memory_timing_gets_the_documented_assumption() {
        let text = kv260_text()
            .replace("latency_ns = 120.0\n", "")
            .replace("reads_in_flight = 16\n", "");
        assert_ne!(text, kv260_text());
        let b = Board::from_toml(&text, "x").unwrap();
        assert_eq!((b.memory.latency_ns, b.memory.reads_in_flight), (120.0, 16));
        // The shipped boards state the figures themselves.
        let custom = kv260_text().replace("latency_ns = 120.0", "latency_ns = 95.5");
        assert_eq!(
            Board::from_toml(&custom, "x").unwrap().memory.latency_ns,
            95.5
        );
    }

    /// The fabric's ports into a hardened memory are board data: the KV260's four 128-bit
    /// HP ports carry 16 GB/s at 250 MHz (less than its DDR's 19.2) and at most 21.3 GB/s
    /// at their 333 MHz limit; the U280's 32 HBM ports carry its 460 GB/s; a board whose
    /// controller is built in the fabric lists none.
    #[test]
    fn memory_ports_are_board_data_and_bound_what_the_fabric_moves() {
        let kv = Board::builtin("kv260").unwrap();
        assert_eq!(kv.memory.ports.len(), 4);
        assert!(kv
            .memory
            .ports
            .iter()
            .all(|p| p.bits == 128 && p.max_burst_beats == 16));
        let gbps = |b: &Board, mhz: f64| b.memory.ports_gbyte_per_s(mhz).unwrap();
        assert!((gbps(&kv, 250.0) - 16.0).abs() < 1e-9);
        assert!((gbps(&kv, 400.0) - 4.0 * 16.0 * 333.0 / 1e3).abs() < 1e-9);
        let u280 = Board::builtin("u280").unwrap();
        assert!((gbps(&u280, 450.0) - 460.8).abs() < 1e-9);
        assert_eq!(
            Board::builtin("ulx3s")
                .unwrap()
                .memory
                .ports_gbyte_per_s(50.0),
            None
        );
        // A bad port is refused with its index and name.
        let port = "name = \"S_AXI_HP2_FPD\"\nbits = 128\n";
        for (bad, expect) in [
            ("name = \"S_AXI_HP2_FPD\"\nbits = 96\n", "power of two"),
            ("name = \"S_AXI_HP1_FPD\"\nbits = 128\n", "second port"),
            ("name = \" \"\nbits = 128\n", "empty"),
        ] {
            let text = kv260_text().replace(port, bad);
            assert_ne!(text, kv260_text());
            let err = Board::from_toml(&text, "kv.toml").unwrap_err().to_string();
            assert!(
                err.contains("kv.toml") && err.contains(expect),
                "{expect}: {err}"
            );
        }
        let text = kv260_text().replacen("max_burst_beats = 16", "max_burst_beats = 0", 1);
        let err = Board::from_toml(&text, "kv.toml").unwrap_err().to_string();
        assert!(
            err.contains("S_AXI_HP0_FPD") && err.contains("max_burst_beats"),
            "{err}"
        );
        let text = kv260_text().replacen("max_mhz = 333.0", "max_mhz = 0.0", 1);
        let err = Board::from_toml(&text, "kv.toml").unwrap_err().to_string();
        assert!(
            err.contains("S_AXI_HP0_FPD") && err.contains("max_mhz"),
            "{err}"
        );
    }

    /// The DRAM's timing is board data: long reads on the KV260 keep 1 - tRFC/tREFI of its
    /// 19.2 GB/s peak; a board without `[memory.dram]` runs at its peak; bad timings are
    /// refused by key.
    #[test]
    fn dram_timing_is_board_data_and_sets_what_long_reads_sustain() {
        let kv = Board::builtin("kv260").unwrap();
        let dram = kv.memory.dram.as_ref().unwrap();
        let expect = 19.2 * (1.0 - dram.refresh_ns / dram.refresh_interval_ns);
        assert!((kv.memory.sustained_gbyte_per_s() - expect).abs() < 1e-12);
        assert!(kv.memory.sustained_gbyte_per_s() < kv.memory.gbyte_per_s);
        let ulx3s = Board::builtin("ulx3s").unwrap();
        assert_eq!(
            ulx3s.memory.sustained_gbyte_per_s(),
            ulx3s.memory.gbyte_per_s
        );
        for (from, to, key) in [
            ("refresh_ns = 350.0", "refresh_ns = 5000.0", "refresh_ns"),
            ("row_bytes = 8192", "row_bytes = 8000", "row_bytes"),
            ("banks = 8 ", "banks = 0 ", "banks"),
            ("row_miss_ns = 26.64", "row_miss_ns = -1.0", "row_miss_ns"),
            ("banks = 8 ", "bank = 8 ", "bank"),
        ] {
            let text = kv260_text().replace(from, to);
            assert_ne!(text, kv260_text(), "{from}");
            let err = Board::from_toml(&text, "kv.toml").unwrap_err().to_string();
            assert!(err.contains("kv.toml") && err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn unknown_board_lists_the_known_ones() {
        let err = Board::builtin("de10").unwrap_err().to_string();
        assert!(err.contains("de10") && err.contains("kv260"), "{err}");
    }

    #[test]
    fn negative_or_missing_resource_is_an_error_naming_the_key() {
        let negative = kv260_text().replace("luts = 117120", "luts = -5");
        let err = Board::from_toml(&negative, "x").unwrap_err().to_string();
        assert!(err.contains("luts"), "{err}");
        let missing = kv260_text().replace("dsps = 1248\n", "");
        let err = Board::from_toml(&missing, "x").unwrap_err().to_string();
        assert!(err.contains("dsps"), "{err}");
        let zero = kv260_text().replace("luts = 117120", "luts = 0");
        assert!(Board::from_toml(&zero, "x").is_err());
        let bits = kv260_text().replace("bram_bits = 5308416", "bram_bits = 0");
        let err = Board::from_toml(&bits, "x").unwrap_err().to_string();
        assert!(err.contains("bram"), "{err}");
    }

    #[test]
    fn clock_bandwidth_and_router_are_checked() {
        let clock = kv260_text().replace("default_mhz = 300.0", "default_mhz = -1.0");
        let err = Board::from_toml(&clock, "f.toml").unwrap_err().to_string();
        assert!(
            err.contains("f.toml") && err.contains("default_mhz"),
            "{err}"
        );
        let router = kv260_text().replace("pnr = \"none\"", "pnr = \"nextpnr-ecp5\"");
        let err = Board::from_toml(&router, "x").unwrap_err().to_string();
        assert!(err.contains("toolchain.pnr"), "{err}");
        let ulx3s = BUILTIN.iter().find(|(n, _)| *n == "ulx3s").unwrap().1;
        let no_package = ulx3s.replace("package = \"CABGA381\"\n", "");
        let err = Board::from_toml(&no_package, "x").unwrap_err().to_string();
        assert!(err.contains("toolchain.package"), "{err}");
    }

    #[test]
    fn a_board_file_path_resolves_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("tern-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mine.toml");
        std::fs::write(
            &path,
            kv260_text().replace("name = \"kv260\"", "name = \"mine\""),
        )
        .unwrap();
        assert_eq!(Board::resolve(path.to_str().unwrap()).unwrap().name, "mine");
        let err = Board::resolve("/nonexistent/b.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/b.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
