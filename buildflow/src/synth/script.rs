//! Yosys scripts, one per family. A script names files relative to its work directory,
//! so its text (part of the cache key) does not depend on where it runs.

use tern_boards::Family;

/// What a Yosys run must leave behind besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Cell counts (`stat.json`) and, for Xilinx, the unrouted timing estimate (`sta.txt`).
    Report,
    /// A netlist for nextpnr (`netlist.json`).
    Netlist,
    /// Cell counts per kept module (`stat.json`): the blocks named are synthesised with
    /// their hierarchy kept, everything else is flattened into the top as usual.
    Blocks,
}

pub const STAT_FILE: &str = "stat.json";
pub const STA_FILE: &str = "sta.txt";
pub const NETLIST_FILE: &str = "netlist.json";

/// The Yosys script for `family`, reading `files` with `top` as the top module.
pub fn yosys_script(family: Family, files: &[&str], top: &str, purpose: Purpose) -> String {
    yosys_script_keeping(family, files, top, purpose, &[])
}

/// As [`yosys_script`], with the modules `keep` kept as hierarchy (not flattened), so
/// that `stat` reports their cells one by one.
pub fn yosys_script_keeping(
    family: Family,
    files: &[&str],
    top: &str,
    purpose: Purpose,
    keep: &[String],
) -> String {
    let mut s = String::new();
    s.push_str(&format!("read_verilog -sv {}\n", files.join(" ")));
    if family == Family::Ice40 {
        // The iCE40 has no LUT RAM: a memory marked `distributed` becomes logic instead of
        // making memory_libmap fail.
        s.push_str("setattr -set ram_style \"logic\" m:* a:ram_style=distributed %i\n");
    }
    s.push_str(&format!("hierarchy -check -top {top}\n"));
    if !keep.is_empty() {
        s.push_str(&format!(
            "setattr -mod -set keep_hierarchy 1 {}\n",
            keep.join(" ")
        ));
    }
    let synth = match family {
        // No IO buffers: the engine is a core inside a larger design, not a chip top.
        Family::Xcup => format!("synth_xilinx -family xcup -top {top} -flatten -noiopad -noclkbuf"),
        Family::Xc7 => format!("synth_xilinx -family xc7 -top {top} -flatten -noiopad -noclkbuf"),
        Family::Ecp5 => format!("synth_ecp5 -top {top}"),
        Family::Ice40 => format!("synth_ice40 -top {top} -dsp"),
        Family::Gowin => match purpose {
            Purpose::Report | Purpose::Blocks => format!("synth_gowin -top {top} -noiopads"),
            Purpose::Netlist => format!("synth_gowin -top {top}"),
        },
    };
    s.push_str(&synth);
    s.push('\n');
    match purpose {
        Purpose::Report => {
            s.push_str(&format!("tee -q -o {STAT_FILE} stat -json\n"));
            if matches!(family, Family::Xcup | Family::Xc7) {
                // Cell delays from Yosys's own Xilinx simulation models (specify blocks).
                s.push_str("read_verilog -lib -specify +/xilinx/cells_sim.v\n");
                s.push_str(&format!("tee -q -o {STA_FILE} sta\n"));
            }
        }
        Purpose::Netlist => s.push_str(&format!("write_json {NETLIST_FILE}\n")),
        Purpose::Blocks => s.push_str(&format!("tee -q -o {STAT_FILE} stat -json\n")),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_gets_its_own_synth_command() {
        let files = ["tern_engine.v", "tern_engine_core.v"];
        let cases = [
            (Family::Xcup, "synth_xilinx -family xcup"),
            (Family::Xc7, "synth_xilinx -family xc7"),
            (Family::Ecp5, "synth_ecp5"),
            (Family::Ice40, "synth_ice40"),
            (Family::Gowin, "synth_gowin"),
        ];
        for (family, command) in cases {
            let s = yosys_script(family, &files, "tern_engine", Purpose::Report);
            assert!(s.contains(command), "{family:?}: {s}");
            assert!(s.contains("stat -json") && s.contains("tern_engine_core.v"));
            assert!(
                !s.contains('/') || s.contains("+/xilinx"),
                "paths must be relative: {s}"
            );
            let n = yosys_script(family, &files, "tern_engine", Purpose::Netlist);
            assert!(n.contains("write_json") && !n.contains("stat -json"));
        }
    }
}
