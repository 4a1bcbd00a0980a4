//! Reading what the tools wrote: Yosys `stat -json` cell counts, sorted into resource
//! classes per family; utilisation against a board; Yosys `sta` paths; nextpnr reports.
//! Every parser returns an error naming what it could not read, never a zero.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use tern_boards::{Board, Family};

/// Cells of a synthesised design, sorted into the resources a board budgets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellUsage {
    /// LUTs as a vendor tool counts them: logic LUTs, LUTs holding LUT-RAM, and (ECP5,
    /// Gowin) the LUTs inside carry cells.
    pub luts: u64,
    /// Logic LUT cells by input count ("1".."6"); Xilinx `INV` counts as a 1-input LUT.
    pub luts_by_size: BTreeMap<String, u64>,
    /// LUTs used as distributed RAM or shift registers.
    pub lutram_luts: u64,
    /// Wide-function multiplexers (MUXF7/8/9, PFUMX, L6MUX21, MUX2_LUT*): free in a slice.
    pub muxes: u64,
    pub ffs: u64,
    /// Carry-chain cells (CARRY4/8, CCU2C, SB_CARRY, ALU).
    pub carry: u64,
    pub dsps: u64,
    /// Block RAMs in the board's unit (a Xilinx RAMB18 is half a 36-Kb block).
    pub bram_blocks: f64,
    /// UltraRAM (Xilinx) or SPRAM (iCE40).
    pub urams: u64,
    /// IO and clock buffers (none when the engine is synthesised as a core).
    pub io: u64,
    /// Cell types this table does not know, kept rather than dropped.
    pub other: BTreeMap<String, u64>,
}

impl CellUsage {
    /// The LUT/FF/DSP/block-RAM count boards budget.
    pub fn resources(&self) -> tern_boards::Resources {
        tern_boards::Resources {
            luts: self.luts as f64,
            ffs: self.ffs as f64,
            dsps: self.dsps as f64,
            brams: self.bram_blocks,
        }
    }

    /// One-input LUTs (buffers and inverters): Yosys leaves them, Vivado absorbs most.
    pub fn lut1(&self) -> u64 {
        self.luts_by_size.get("1").copied().unwrap_or(0)
    }
}

/// How a cell type counts. `lut_size` for logic LUTs, `luts` for LUTs it occupies otherwise.
enum Class {
    Lut(u8),
    LutRam(u64),
    Mux,
    Ff,
    Carry { luts: u64 },
    Dsp,
    Bram(f64),
    Uram,
    Io,
}

fn classify_cell(family: Family, cell: &str) -> Option<Class> {
    use Class::*;
    let xilinx_lut = |c: &str| c.strip_prefix("LUT").and_then(|n| n.parse::<u8>().ok());
    Some(match family {
        Family::Xcup | Family::Xc7 => match cell {
            _ if xilinx_lut(cell).is_some() => Lut(xilinx_lut(cell).unwrap()),
            "INV" => Lut(1),
            "MUXF7" | "MUXF8" | "MUXF9" => Mux,
            "FDRE" | "FDSE" | "FDCE" | "FDPE" | "LDCE" | "LDPE" => Ff,
            "CARRY4" | "CARRY8" => Carry { luts: 0 },
            "DSP48E1" | "DSP48E2" => Dsp,
            "RAMB36E1" | "RAMB36E2" | "FIFO36E1" | "FIFO36E2" => Bram(1.0),
            "RAMB18E1" | "RAMB18E2" | "FIFO18E1" | "FIFO18E2" => Bram(0.5),
            "URAM288" | "URAM288_BASE" => Uram,
            // LUT-RAM primitives and the LUTs each occupies (UG574 / UG474).
            "RAM32X1S" | "RAM64X1S" | "RAM32X1D" | "SRL16E" | "SRLC32E" | "SRLC16E" => {
                LutRam(if cell == "RAM32X1D" { 2 } else { 1 })
            }
            "RAM64X1D" | "RAM128X1S" => LutRam(2),
            "RAM128X1D" | "RAM256X1S" | "RAM32M" | "RAM64M" => LutRam(4),
            "RAM32M16" | "RAM64M8" | "RAM512X1S" | "RAM256X1D" => LutRam(8),
            "IBUF" | "OBUF" | "IOBUF" | "OBUFT" | "BUFG" | "BUFGCE" | "IBUFG" => Io,
            _ => return None,
        },
        Family::Ecp5 => match cell {
            "LUT4" => Lut(4),
            "PFUMX" | "L6MUX21" => Mux,
            "TRELLIS_FF" => Ff,
            // A CCU2C is two LUT4s plus the slice's carry logic.
            "CCU2C" => Carry { luts: 2 },
            "MULT18X18D" | "ALU54B" => Dsp,
            "DP16KD" | "PDPW16KD" => Bram(1.0),
            // 16×4 LUT-RAM: two slices' four LUTs hold the bits (ECP5 sysMEM guide, TN1264).
            "TRELLIS_DPR16X4" => LutRam(4),
            "TRELLIS_IO" | "DCCA" => Io,
            _ => return None,
        },
        Family::Ice40 => match cell {
            "SB_LUT4" => Lut(4),
            // The carry sits beside the LUT in a logic cell and takes no LUT of its own.
            "SB_CARRY" => Carry { luts: 0 },
            c if c.starts_with("SB_DFF") => Ff,
            "SB_MAC16" => Dsp,
            c if c.starts_with("SB_RAM40_4K") => Bram(1.0),
            "SB_SPRAM256KA" => Uram,
            "SB_IO" | "SB_GB" | "SB_GB_IO" => Io,
            _ => return None,
        },
        Family::Gowin => match cell {
            c if c.starts_with("LUT") && c[3..].parse::<u8>().is_ok() => {
                Lut(c[3..].parse().unwrap())
            }
            c if c.starts_with("MUX2_LUT") => Mux,
            c if c.starts_with("DFF") => Ff,
            // Gowin's ALU occupies one LUT of its logic cell.
            "ALU" => Carry { luts: 1 },
            c if c.starts_with("MULT") => Dsp,
            "DPB" | "DPX9B" | "SDPB" | "SDPX9B" | "SP" | "SPX9" | "pROM" | "pROMX9" => Bram(1.0),
            // RAM16SDP*: 16 words in a CLS; counted as the 4 LUTs of the slice pair.
            c if c.starts_with("RAM16S") => LutRam(4),
            "IBUF" | "OBUF" | "IOBUF" | "TBUF" | "GND" | "VCC" => Io,
            _ => return None,
        },
    })
}

/// Sort raw cell counts into resources.
pub fn classify(family: Family, cells: &BTreeMap<String, u64>) -> CellUsage {
    let mut u = CellUsage::default();
    for (cell, &n) in cells {
        // Hierarchy bookkeeping newer Yosys leaves after flattening: no hardware.
        if cell == "$scopeinfo" {
            continue;
        }
        match classify_cell(family, cell) {
            Some(Class::Lut(size)) => {
                u.luts += n;
                *u.luts_by_size.entry(size.to_string()).or_default() += n;
            }
            Some(Class::LutRam(luts)) => {
                u.luts += n * luts;
                u.lutram_luts += n * luts;
            }
            Some(Class::Mux) => u.muxes += n,
            Some(Class::Ff) => u.ffs += n,
            Some(Class::Carry { luts }) => {
                u.carry += n;
                u.luts += n * luts;
            }
            Some(Class::Dsp) => u.dsps += n,
            Some(Class::Bram(blocks)) => u.bram_blocks += blocks * n as f64,
            Some(Class::Uram) => u.urams += n,
            Some(Class::Io) => u.io += n,
            None => {
                *u.other.entry(cell.clone()).or_default() += n;
            }
        }
    }
    u
}

/// `stat -json` output: the cell counts of the whole design.
pub fn parse_stat_json(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("stat -json output is not JSON: {e}"))?;
    let cells = v
        .get("design")
        .and_then(|d| d.get("num_cells_by_type"))
        .or_else(|| {
            // A design of one module has no "design" summary in some Yosys versions.
            let modules = v.get("modules")?.as_object()?;
            if modules.len() == 1 {
                modules.values().next()?.get("num_cells_by_type")
            } else {
                None
            }
        })
        .ok_or("stat -json output has no `design.num_cells_by_type`")?
        .as_object()
        .ok_or("`num_cells_by_type` is not an object")?;
    let mut out = BTreeMap::new();
    for (cell, n) in cells {
        let n = n
            .as_u64()
            .ok_or_else(|| format!("cell count of `{cell}` is not a non-negative integer: {n}"))?;
        // Yosys escapes public names with a backslash; cell library types have none.
        out.insert(cell.trim_start_matches('\\').to_string(), n);
    }
    if out.is_empty() {
        return Err("the synthesised design has no cells (was everything optimised away?)".into());
    }
    Ok(out)
}

/// `stat -json` output of a design with hierarchy kept: each module's own cells (a kept
/// submodule's instance appears in its parent as a cell named after the module).
pub fn parse_stat_modules(text: &str) -> Result<BTreeMap<String, BTreeMap<String, u64>>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("stat -json output is not JSON: {e}"))?;
    let modules = v
        .get("modules")
        .and_then(|m| m.as_object())
        .ok_or("stat -json output has no `modules` object")?;
    let mut out = BTreeMap::new();
    for (name, module) in modules {
        let cells = module
            .get("num_cells_by_type")
            .and_then(|c| c.as_object())
            .ok_or_else(|| format!("module `{name}` has no `num_cells_by_type` object"))?;
        let mut counts = BTreeMap::new();
        for (cell, n) in cells {
            let n = n.as_u64().ok_or_else(|| {
                format!("module `{name}`: cell count of `{cell}` is not a non-negative integer")
            })?;
            counts.insert(cell.trim_start_matches('\\').to_string(), n);
        }
        out.insert(name.trim_start_matches('\\').to_string(), counts);
    }
    Ok(out)
}

/// Each RTL block's cells (blocks as `hdl::graph::rtl_blocks` lists them: a name and its
/// `top$<instance>` modules), and `glue` for every other module's own cells. A block none
/// of whose modules exist in this design is left out. The blocks sum to the design.
/// In a whole top, `shell` names the top module: its own cells are `hdl::graph::SHELL`.
pub fn block_usage(
    family: Family,
    modules: &BTreeMap<String, BTreeMap<String, u64>>,
    blocks: &[(&str, &[&str])],
    shell: Option<&str>,
) -> Result<BTreeMap<String, CellUsage>, String> {
    // A kept module's instance is a cell of its parent, not hardware.
    let own = |cells: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        cells
            .iter()
            .filter(|(c, _)| !modules.contains_key(*c))
            .map(|(c, n)| (c.clone(), *n))
            .collect()
    };
    let mut out = BTreeMap::new();
    let mut claimed = std::collections::BTreeSet::new();
    for (block, instances) in blocks {
        let mut cells: BTreeMap<String, u64> = BTreeMap::new();
        let mut found = false;
        for instance in *instances {
            let module = format!("top${instance}");
            if let Some(m) = modules.get(&module) {
                found = true;
                claimed.insert(module);
                for (c, n) in own(m) {
                    *cells.entry(c).or_default() += n;
                }
            }
        }
        if found {
            out.insert(block.to_string(), classify(family, &cells));
        }
    }
    if out.is_empty() {
        return Err("no module of the engine's RTL blocks was kept (hierarchy lost?)".into());
    }
    if let Some(top) = shell {
        let cells = modules
            .get(top)
            .ok_or_else(|| format!("the top module {top} is not in the report"))?;
        claimed.insert(top.to_string());
        out.insert(
            tern_hdl::graph::SHELL.to_string(),
            classify(family, &own(cells)),
        );
    }
    let mut glue: BTreeMap<String, u64> = BTreeMap::new();
    for (_, cells) in modules.iter().filter(|(n, _)| !claimed.contains(*n)) {
        for (c, n) in own(cells) {
            *glue.entry(c).or_default() += n;
        }
    }
    out.insert(tern_hdl::graph::GLUE.to_string(), classify(family, &glue));
    Ok(out)
}

/// One resource against the board's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    pub resource: String,
    pub used: f64,
    pub available: u64,
    /// used / available, in percent.
    pub percent: f64,
    pub fits: bool,
}

pub fn utilisation(usage: &CellUsage, board: &Board) -> Vec<Utilisation> {
    let r = &board.resources;
    [
        ("LUT", usage.luts as f64, r.luts),
        ("FF", usage.ffs as f64, r.ffs),
        ("DSP", usage.dsps as f64, r.dsps),
        ("BRAM", usage.bram_blocks, r.bram_blocks),
        ("URAM", usage.urams as f64, r.urams),
    ]
    .into_iter()
    .map(|(name, used, available)| Utilisation {
        resource: name.to_string(),
        used,
        available,
        percent: if available == 0 {
            if used == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            100.0 * used / available as f64
        },
        fits: used <= available as f64,
    })
    .collect()
}

/// Yosys `sta` on the Xilinx netlist: the longest register-to-register logic path with
/// the cell delays of Yosys's Xilinx simulation models. No routing, and LUT-RAM and MUXF9
/// have no timing arcs there: an estimate of logic depth, never an Fmax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingEstimate {
    /// What this number is, for whoever reads the report.
    pub kind: String,
    pub logic_delay_ns: f64,
    pub lut_levels: u64,
    pub mux_levels: u64,
    pub carry_cells: u64,
    /// Path endpoint (cell and pin).
    pub endpoint: String,
}

pub const STA_KIND: &str =
    "Yosys sta: unrouted logic delay from Yosys's Xilinx cell models (not an Fmax)";

pub fn parse_sta(text: &str) -> Result<TimingEstimate, String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("Latest arrival time in"));
    let head = lines
        .next()
        .ok_or("sta output has no `Latest arrival time` line")?;
    let ps: f64 = head
        .rsplit(" is ")
        .next()
        .and_then(|t| t.trim().trim_end_matches(':').parse().ok())
        .ok_or_else(|| format!("cannot read the arrival time in `{}`", head.trim()))?;
    let (mut luts, mut muxes, mut carry) = (0, 0, 0);
    let mut endpoint = String::new();
    for line in lines {
        let t = line.trim();
        // Path cells: `<arrival> <cell name> (<TYPE>.<pin>-><pin>)` or the endpoint `(<TYPE>.<pin>)`.
        let Some(open) = t.rfind('(') else { continue };
        let first = t.split_whitespace().next().unwrap_or("");
        if first.parse::<i64>().is_err() || !t.ends_with(')') {
            if t.starts_with('(') {
                break; // the histogram after the path
            }
            continue;
        }
        let arc = &t[open + 1..t.len() - 1];
        let cell = arc.split('.').next().unwrap_or("");
        if endpoint.is_empty() {
            endpoint = arc.to_string();
        }
        if cell.starts_with("LUT") || cell == "INV" {
            luts += 1;
        } else if cell.starts_with("MUXF") {
            muxes += 1;
        } else if cell.starts_with("CARRY") {
            carry += 1;
        }
    }
    Ok(TimingEstimate {
        kind: STA_KIND.to_string(),
        logic_delay_ns: ps / 1000.0,
        lut_levels: luts,
        mux_levels: muxes,
        carry_cells: carry,
        endpoint,
    })
}

/// What nextpnr's `--report` JSON says after routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteReport {
    /// Achieved Fmax of the engine clock, MHz.
    pub fmax_mhz: f64,
    pub constraint_mhz: f64,
    /// Post-route use of each bel type nextpnr reports (used, available).
    pub utilisation: BTreeMap<String, (u64, u64)>,
}

pub fn parse_nextpnr_report(text: &str) -> Result<RouteReport, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("nextpnr report is not JSON: {e}"))?;
    let fmax = v
        .get("fmax")
        .and_then(|f| f.as_object())
        .ok_or("nextpnr report has no `fmax` table (no clock was constrained?)")?;
    // The engine clock is `clk`; nextpnr may decorate its net name.
    let (_, clock) = fmax
        .iter()
        .find(|(name, _)| name.contains("clk"))
        .or_else(|| fmax.iter().next())
        .ok_or("nextpnr report's `fmax` table is empty")?;
    let number = |key: &str| {
        clock
            .get(key)
            .and_then(|x| x.as_f64())
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("nextpnr report: `fmax.clk.{key}` missing or not positive"))
    };
    let mut utilisation = BTreeMap::new();
    if let Some(u) = v.get("utilization").and_then(|u| u.as_object()) {
        for (bel, x) in u {
            let get = |k: &str| x.get(k).and_then(|n| n.as_u64());
            match (get("used"), get("available")) {
                (Some(used), Some(available)) => {
                    if used > 0 {
                        utilisation.insert(bel.clone(), (used, available));
                    }
                }
                _ => return Err(format!("nextpnr report: utilisation of `{bel}` unreadable")),
            }
        }
    } else {
        return Err("nextpnr report has no `utilization` table".into());
    }
    Ok(RouteReport {
        fmax_mhz: number("achieved")?,
        constraint_mhz: number("constraint")?,
        utilisation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
        list.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    #[test]
    fn xilinx_cells_sort_into_vendor_style_lut_counts() {
        let u = classify(
            Family::Xcup,
            &cells(&[
                ("LUT6", 10),
                ("LUT2", 3),
                ("INV", 2),
                ("RAM32M16", 1),
                ("MUXF7", 4),
                ("FDRE", 7),
                ("CARRY8", 2),
                ("RAMB18E2", 3),
                ("FROBNICATOR", 1),
            ]),
        );
        assert_eq!(u.luts, 10 + 3 + 2 + 8);
        assert_eq!(u.lutram_luts, 8);
        assert_eq!(u.luts_by_size["1"], 2);
        assert_eq!((u.muxes, u.ffs, u.carry), (4, 7, 2));
        assert_eq!(u.bram_blocks, 1.5);
        assert_eq!(
            u.other["FROBNICATOR"], 1,
            "unknown cells are kept, not dropped"
        );
    }

    #[test]
    fn ecp5_carry_cells_hold_two_luts() {
        let u = classify(Family::Ecp5, &cells(&[("LUT4", 5), ("CCU2C", 3)]));
        assert_eq!((u.luts, u.carry), (11, 3));
    }

    #[test]
    fn stat_json_is_read_and_bad_output_is_an_error() {
        let text = r#"{"modules": {"\\top": {"num_cells_by_type": {"LUT4": 3}}},
                       "design": {"num_cells_by_type": {"LUT4": 3, "TRELLIS_FF": 2}}}"#;
        let c = parse_stat_json(text).unwrap();
        assert_eq!(c["LUT4"], 3);
        assert_eq!(c["TRELLIS_FF"], 2);
        assert!(parse_stat_json("Segmentation fault")
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_stat_json(r#"{"design": {}}"#).is_err());
        assert!(
            parse_stat_json(r#"{"design": {"num_cells_by_type": {"LUT4": -1}}}"#)
                .unwrap_err()
                .contains("LUT4")
        );
        assert!(parse_stat_json(r#"{"design": {"num_cells_by_type": {}}}"#)
            .unwrap_err()
            .contains("no cells"));
    }

    /// Yosys 0.70's shape of a kept-hierarchy `stat -json` (cut from a real run).
    const KEPT: &str = r#"{"modules": {
        "\\tern_engine": {"num_cells_by_type": {"$scopeinfo": 96, "FDRE": 427, "LUT4": 74,
            "CARRY4": 55, "top$tables": 1, "top$trees": 1, "top$fifo_index": 1,
            "top$fifo_sign": 1}},
        "\\top$tables": {"num_cells_by_type": {"RAM64M8": 40}},
        "\\top$trees": {"num_cells_by_type": {"CARRY4": 70, "FDRE": 187, "LUT3": 112}},
        "\\top$fifo_index": {"num_cells_by_type": {"RAM32M16": 8}},
        "\\top$fifo_sign": {"num_cells_by_type": {"RAM32M16": 2}}},
      "design": {"num_cells_by_type": {"FDRE": 614}}}"#;

    #[test]
    fn kept_blocks_are_reported_one_by_one_and_the_rest_is_glue() {
        let modules = parse_stat_modules(KEPT).unwrap();
        let blocks: &[(&str, &[&str])] = &[
            ("tables", &["tables"]),
            ("weight_fifo", &["fifo_index", "fifo_sign"]),
            ("trees", &["trees"]),
            ("builder", &["builder"]),
        ];
        let b = block_usage(Family::Xcup, &modules, blocks, None).unwrap();
        assert_eq!(b["tables"].lutram_luts, 320);
        assert_eq!(
            b["weight_fifo"].lutram_luts, 80,
            "both FIFO memories in one block"
        );
        assert_eq!((b["trees"].luts, b["trees"].ffs), (112, 187));
        assert!(!b.contains_key("builder"), "absent from this design");
        let glue = &b["glue"];
        assert_eq!((glue.luts, glue.ffs, glue.carry), (74, 427, 55));
        assert!(
            glue.other.is_empty(),
            "module instances are not cells: {glue:?}"
        );
        assert!(
            block_usage(Family::Xcup, &modules, &[("x", &["nothing"])], None)
                .unwrap_err()
                .contains("hierarchy")
        );
        assert!(parse_stat_modules(r#"{"design": {}}"#)
            .unwrap_err()
            .contains("modules"));
    }

    /// A whole top: the shell is the top module's own cells, the engine core's own cells
    /// are its glue (cells as a kept-hierarchy run of `tern_top` reports them).
    const KEPT_TOP: &str = r#"{"modules": {
        "\\tern_top": {"num_cells_by_type": {"FDRE": 900, "LUT6": 300, "RAMB36E2": 2,
            "top": 1}},
        "\\top": {"num_cells_by_type": {"FDRE": 50, "LUT2": 20, "top$trees": 1}},
        "\\top$trees": {"num_cells_by_type": {"CARRY4": 70, "FDRE": 187, "LUT3": 112}}},
      "design": {"num_cells_by_type": {"FDRE": 1137}}}"#;

    #[test]
    fn a_whole_top_reports_its_shell_apart_from_the_engine() {
        let modules = parse_stat_modules(KEPT_TOP).unwrap();
        let blocks: &[(&str, &[&str])] = &[("trees", &["trees"])];
        let b = block_usage(Family::Xcup, &modules, blocks, Some("tern_top")).unwrap();
        let shell = &b[tern_hdl::graph::SHELL];
        assert_eq!((shell.luts, shell.ffs, shell.bram_blocks), (300, 900, 2.0));
        assert_eq!((b["glue"].luts, b["glue"].ffs), (20, 50));
        assert_eq!(b["trees"].ffs, 187);
        let err = block_usage(Family::Xcup, &modules, blocks, Some("missing")).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn a_verdict_per_resource() {
        let board = Board::builtin("icebreaker").unwrap();
        let usage = CellUsage {
            luts: 6000,
            ffs: 100,
            dsps: 8,
            ..Default::default()
        };
        let u = utilisation(&usage, &board);
        let lut = u.iter().find(|x| x.resource == "LUT").unwrap();
        assert!(!lut.fits && lut.percent > 100.0);
        assert!(u.iter().find(|x| x.resource == "DSP").unwrap().fits);
    }

    #[test]
    fn sta_path_is_read_as_an_estimate() {
        let text = "\
5. Executing STA pass (static timing analysis).
Latest arrival time in 'tern_engine' is 5805:
    5805 $ff$1 (FDRE.D)
           n1
    5805 $lut$1 (LUT3.I0->O)
           n2
    5398 $carry$1 (CARRY4.CI->O)
           n3
    3081 $mux$1 (MUXF8.I0->O)
           n4
(  1754,   1483] |*******+
";
        let t = parse_sta(text).unwrap();
        assert_eq!(t.logic_delay_ns, 5.805);
        assert_eq!((t.lut_levels, t.carry_cells, t.mux_levels), (1, 1, 1));
        assert_eq!(t.endpoint, "FDRE.D");
        assert!(t.kind.contains("not an Fmax"));
        assert!(parse_sta("ERROR: something").is_err());
    }

    #[test]
    fn nextpnr_report_gives_fmax_and_rejects_garbage() {
        let text = r#"{"fmax": {"$glbnet$clk": {"achieved": 64.5, "constraint": 100}},
                       "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 9492},
                                       "DP16KD": {"available": 208, "used": 0}}}"#;
        let r = parse_nextpnr_report(text).unwrap();
        assert_eq!(r.fmax_mhz, 64.5);
        assert_eq!(r.utilisation["TRELLIS_COMB"], (9492, 83640));
        assert!(!r.utilisation.contains_key("DP16KD"));
        assert!(parse_nextpnr_report("{}").is_err());
        assert!(parse_nextpnr_report(
            r#"{"fmax": {"clk": {"achieved": 0, "constraint": 1}}, "utilization": {}}"#
        )
        .is_err());
    }
}
