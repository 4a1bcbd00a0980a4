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
    yosys_script_with(family, files, top, purpose, keep, false)
}

/// The UltraScale LUT-RAM library with Yosys 0.70's single-port entry corrected
/// ([`corrected_xcu_lutrams`]), written into the work directory beside the script.
pub const LUTRAM_FIX_FILE: &str = "lutrams_xcu_corrected.txt";

/// What Yosys 0.70 says when its UltraScale LUT-RAM library picks a single-port shape
/// its own techmap has no cell for.
pub const LUTRAM_BUG_SIGNATURE: &str = "invalid OPTION_ABITS/WIDTH combination";

/// As [`yosys_script_keeping`]; with `lutram_fix` (UltraScale only), memories are mapped
/// with [`LUTRAM_FIX_FILE`] instead of Yosys's own `lutrams_xcu.txt`: `synth_xilinx` runs
/// up to its `map_memory` step, the same `memory_libmap` and techmaps as its own step
/// follow with the corrected library, then `synth_xilinx` continues from `map_ffram`.
pub fn yosys_script_with(
    family: Family,
    files: &[&str],
    top: &str,
    purpose: Purpose,
    keep: &[String],
    lutram_fix: bool,
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
    if lutram_fix && family == Family::Xcup {
        // synth_xilinx's own map_memory step for xcup, with one library replaced.
        s.push_str(&format!("{synth} -run begin:map_memory\n"));
        s.push_str(&format!(
            "memory_libmap -logic-cost-rom 0.015625 -lib {LUTRAM_FIX_FILE} \
             -lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_MIXWIDTH_SDP -D HAS_ADDRCE \
             -lib +/xilinx/urams.txt -no-auto-huge\n"
        ));
        s.push_str("techmap -map +/xilinx/lutrams_xc5v_map.v\n");
        s.push_str("techmap -map +/xilinx/brams_xcu_map.v\n");
        s.push_str(&format!("{synth} -run map_ffram:\n"));
    } else {
        s.push_str(&synth);
        s.push('\n');
    }
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

/// Yosys 0.70's `lutrams_xcu.txt` offers a single-port LUT-RAM of 2^16 × 1
/// (`option "ABITS" 16`) that `lutrams_xc5v_map.v` cannot build (it knows 2^5..2^9
/// words); a memory that memory_libmap maps to it fails with [`LUTRAM_BUG_SIGNATURE`].
/// The deepest single-port LUT-RAM of the UltraScale is RAM512X1S: the option becomes
/// 2^9 × 1. `None` when the library has no such option (a Yosys that fixed it).
pub fn corrected_xcu_lutrams(stock: &str) -> Option<String> {
    let start = stock.find("ram distributed $__XILINX_LUTRAM_SP_ {")?;
    let end = start + stock[start..].find("\n}\n")?;
    let block = &stock[start..end];
    let fixed = block
        .replace("option \"ABITS\" 16 {", "option \"ABITS\" 9 {")
        .replace("abits 16;", "abits 9;");
    (fixed != block).then(|| format!("{}{fixed}{}", &stock[..start], &stock[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corrected_lutram_library_caps_single_port_depth_at_512() {
        // A library shaped as Yosys 0.70's: the single-port entry has the 2^16 option,
        // the dual-port entry after it must not change.
        let stock = "# LUT RAMs\nram distributed $__XILINX_LUTRAM_SP_ {\n\tcost 8;\n\
                     \toption \"ABITS\" 8 {\n\t\tabits 8;\n\t\twidths 2 global;\n\t}\n\
                     \toption \"ABITS\" 16 {\n\t\tabits 16;\n\t\twidths 1 global;\n\t}\n}\n\
                     ram distributed $__XILINX_LUTRAM_DP_ {\n\toption \"ABITS\" 16 {\n\t\tabits 16;\n\t}\n}\n";
        let fixed = corrected_xcu_lutrams(stock).expect("the stock shape is corrected");
        let (sp, dp) = fixed.split_at(fixed.find("LUTRAM_DP_").unwrap());
        assert!(sp.contains("option \"ABITS\" 9 {\n\t\tabits 9;") && !sp.contains("16"));
        assert!(
            dp.contains("abits 16;"),
            "only the single-port entry changes"
        );
        assert_eq!(
            corrected_xcu_lutrams(&fixed),
            None,
            "nothing left to correct"
        );
        let s = yosys_script_with(Family::Xcup, &["a.v"], "t", Purpose::Report, &[], true);
        assert!(s.contains("-run begin:map_memory") && s.contains(LUTRAM_FIX_FILE));
        assert!(s.contains("-run map_ffram:") && s.contains("stat -json"));
        assert_eq!(
            yosys_script_with(Family::Ecp5, &["a.v"], "t", Purpose::Report, &[], true),
            yosys_script(Family::Ecp5, &["a.v"], "t", Purpose::Report),
            "only UltraScale has the corrected library"
        );
    }

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
