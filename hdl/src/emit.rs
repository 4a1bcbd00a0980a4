//! Verilog emission: rust-hdl's output, a packed-port wrapper `tern_engine`, the lint
//! waivers for rust-hdl's output, and a manifest. Written atomically: the manifest,
//! written last, marks a complete design directory.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rust_hdl::prelude::*;

use crate::config::{Config, Geometry};
use crate::tlmm::{TlmmEngine, PIPELINE_LATENCY};

pub const WRAPPER_MODULE: &str = "tern_engine";
pub const WRAPPER_FILE: &str = "tern_engine.v";
pub const DESIGN_FILE: &str = "tern_engine_core.v";
pub const WAIVER_FILE: &str = "tern_waivers.vlt";
pub const MANIFEST_FILE: &str = "manifest.json";

/// Verilator warnings waived for rust-hdl's generated file only (never for the wrapper).
/// Each entry: (rule, why).
pub const RUST_HDL_WAIVERS: &[(&str, &str)] = &[
    (
        "WIDTH",
        "rust-hdl emits 32-bit literals and relies on Verilog's context widths",
    ),
    (
        "UNUSEDSIGNAL",
        "rust-hdl gives every Vec element and DFF its own port, some read only in part",
    ),
    (
        "DECLFILENAME",
        "rust-hdl names modules after instance paths (top$tables, ...), not the file",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("cannot create output directory {path}: {cause}")]
    CreateDir { path: String, cause: std::io::Error },
    #[error("cannot write {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("rust-hdl rejected the design: {0}")]
    Check(String),
}

/// A port of the wrapper.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub direction: String,
    pub bits: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub tern_version: String,
    pub top: String,
    pub files: Vec<String>,
    /// SHA-256 of the wrapper and the core Verilog.
    pub content_hash: String,
    pub config_toml: String,
    pub geometry: serde_json::Value,
    pub ports: Vec<Port>,
    /// Clocks from the last weight beat of a row block to its result (empty FIFO).
    pub pipeline_latency: usize,
    /// Clocks per token in steady state: one weight beat per clock.
    pub cycles_per_token: usize,
    pub table_memory_bits: usize,
    pub weight_fifo_bits: usize,
    pub verilog_lines: usize,
}

/// A generated design held in memory.
#[derive(Debug, Clone)]
pub struct Design {
    pub config: Config,
    pub core_verilog: String,
    pub wrapper_verilog: String,
    pub manifest: Manifest,
}

impl Design {
    pub fn short_hash(&self) -> &str {
        &self.manifest.content_hash[..16]
    }
}

pub fn ports(geo: &Geometry) -> Vec<Port> {
    let p = |name: &str, direction: &str, bits: usize| Port {
        name: name.into(),
        direction: direction.into(),
        bits,
    };
    vec![
        p("clk", "input", 1),
        p("rst", "input", 1),
        p("act_valid", "input", 1),
        p("act_ready", "output", 1),
        p("act_data", "input", geo.activation_beat_bits()),
        p("wgt_valid", "input", 1),
        p("wgt_ready", "output", 1),
        p("wgt_data", "input", geo.weight_beat_bits()),
        p("res_valid", "output", 1),
        p("res_ready", "input", 1),
        p("res_data", "output", geo.result_beat_bits()),
    ]
}

/// Generate the design for a validated config.
pub fn generate(cfg: &Config) -> Result<Design, EmitError> {
    // The RTL's widths are type parameters; this maps the config onto them.
    // `TlmmEngine::new` checks each width against the config's geometry.
    macro_rules! with_acc {
        ($sw:literal, $lw:literal, $iw:literal) => {
            match cfg.engine.accumulator_bits {
                16 => core::<$sw, $lw, $iw, 16>(cfg),
                24 => core::<$sw, $lw, $iw, 24>(cfg),
                32 => core::<$sw, $lw, $iw, 32>(cfg),
                other => unreachable!("accumulator width {other} passed validation"),
            }
        };
    }
    let (core_verilog, memory_bits) = match cfg.geometry.lane_group {
        1 => with_acc!(8, 9, 1),
        2 => with_acc!(10, 10, 3),
        3 => with_acc!(10, 10, 4),
        4 => with_acc!(11, 11, 6),
        5 => with_acc!(11, 11, 7),
        other => unreachable!("lane group {other} passed validation"),
    }?;
    let wrapper_verilog = wrapper(&cfg.geometry);
    let mut hasher = Sha256::new();
    hasher.update(wrapper_verilog.as_bytes());
    hasher.update(core_verilog.as_bytes());
    let content_hash = hex::encode(hasher.finalize());
    let geo = &cfg.geometry;
    let manifest = Manifest {
        tern_version: env!("CARGO_PKG_VERSION").into(),
        top: WRAPPER_MODULE.into(),
        files: vec![WRAPPER_FILE.into(), DESIGN_FILE.into()],
        content_hash,
        config_toml: cfg.to_toml(),
        geometry: serde_json::to_value(geo).expect("geometry serialises"),
        ports: ports(geo),
        pipeline_latency: PIPELINE_LATENCY,
        cycles_per_token: geo.weight_beats_per_token(),
        table_memory_bits: memory_bits.0,
        weight_fifo_bits: memory_bits.1,
        verilog_lines: core_verilog.lines().count() + wrapper_verilog.lines().count(),
    };
    Ok(Design {
        config: cfg.clone(),
        core_verilog,
        wrapper_verilog,
        manifest,
    })
}

fn core<const SW: usize, const LW: usize, const IW: usize, const ACC: usize>(
    cfg: &Config,
) -> Result<(String, (usize, usize)), EmitError> {
    let mut engine = TlmmEngine::<SW, LW, IW, ACC>::new(cfg);
    engine.connect_all();
    check_all(&engine).map_err(|e| EmitError::Check(format!("{e:?}")))?;
    let bits = engine.memory_bits();
    Ok((generate_verilog_unchecked(&engine), bits))
}

fn wrapper(geo: &Geometry) -> String {
    let mut v = String::new();
    let cb = 1 + geo.index_bits;
    let acc = geo.accumulator_bits;
    writeln!(
        v,
        "// Generated by tern {}: packed-port wrapper around rust-hdl's `top`.",
        env!("CARGO_PKG_VERSION")
    )
    .unwrap();
    writeln!(v, "// Stream formats: see tern-hdl `streams`.").unwrap();
    writeln!(v, "`default_nettype none").unwrap();
    writeln!(v, "module {WRAPPER_MODULE} (").unwrap();
    let ports = ports(geo);
    for (i, p) in ports.iter().enumerate() {
        let range = if p.bits > 1 {
            format!(" [{}:0]", p.bits - 1)
        } else {
            String::new()
        };
        let comma = if i + 1 < ports.len() { "," } else { "" };
        writeln!(v, "    {:<6} wire{range} {}{comma}", p.direction, p.name).unwrap();
    }
    writeln!(v, ");").unwrap();
    writeln!(v, "    top core (").unwrap();
    let mut conns = vec![
        ".clock(clk)".to_string(),
        ".reset(rst)".into(),
        ".act_valid(act_valid)".into(),
        ".act_ready(act_ready)".into(),
        ".wgt_valid(wgt_valid)".into(),
        ".wgt_ready(wgt_ready)".into(),
        ".res_valid(res_valid)".into(),
        ".res_ready(res_ready)".into(),
    ];
    for a in 0..geo.chunk_activations {
        conns.push(format!(".act_data${a}(act_data[{}:{}])", 8 * a + 7, 8 * a));
    }
    for k in 0..geo.lanes() {
        let base = k * cb;
        conns.push(format!(
            ".wgt_sign${k}(wgt_data[{}])",
            base + geo.index_bits
        ));
        let hi = base + geo.index_bits - 1;
        let index = if hi == base {
            format!("[{base}]")
        } else {
            format!("[{hi}:{base}]")
        };
        conns.push(format!(".wgt_index${k}(wgt_data{index})"));
    }
    for p in 0..geo.rows {
        conns.push(format!(
            ".res_data${p}(res_data[{}:{}])",
            (p + 1) * acc - 1,
            p * acc
        ));
    }
    writeln!(v, "        {}", conns.join(",\n        ")).unwrap();
    writeln!(v, "    );").unwrap();
    writeln!(v, "endmodule").unwrap();
    writeln!(v, "`default_nettype wire").unwrap();
    v
}

/// The Verilator configuration file with the waivers for rust-hdl's output.
pub fn waivers() -> String {
    let mut v = String::from("`verilator_config\n// Waivers for rust-hdl's generated core only; the wrapper is linted with -Wall.\n");
    for (rule, why) in RUST_HDL_WAIVERS {
        writeln!(
            v,
            "// {rule}: {why}\nlint_off -rule {rule} -file \"*{DESIGN_FILE}\""
        )
        .unwrap();
    }
    v
}

/// Write the design into `dir` (created if needed). Files are written under temporary
/// names and renamed; the manifest goes last, so a directory with a manifest is whole.
pub fn write_design(design: &Design, dir: &Path) -> Result<Vec<PathBuf>, EmitError> {
    std::fs::create_dir_all(dir).map_err(|cause| EmitError::CreateDir {
        path: dir.display().to_string(),
        cause,
    })?;
    let manifest_path = dir.join(MANIFEST_FILE);
    // A stale manifest must not vouch for files being replaced.
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path).map_err(|cause| EmitError::Write {
            path: manifest_path.display().to_string(),
            cause,
        })?;
    }
    let manifest = serde_json::to_string_pretty(&design.manifest).expect("manifest serialises");
    let files = [
        (WRAPPER_FILE, design.wrapper_verilog.as_str()),
        (DESIGN_FILE, design.core_verilog.as_str()),
        (WAIVER_FILE, &waivers()),
        (MANIFEST_FILE, manifest.as_str()),
    ];
    let mut written = vec![];
    for (name, text) in files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let err = |cause| EmitError::Write {
            path: path.display().to_string(),
            cause,
        };
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights;

    #[test]
    fn every_lane_group_and_accumulator_maps_onto_matching_rtl_widths() {
        // `TlmmEngine::new` asserts its type widths against the config's geometry,
        // so generating every (kind, G, accumulator) checks the mapping in `generate`.
        for kind in ["tlmm", "adder-tree"] {
            for g in 2..=5 {
                for acc in crate::config::ACCUMULATOR_WIDTHS {
                    let cfg = Config::from_toml(
                        &format!(
                            "[engine]\nkind = \"{kind}\"\ngroup_size = {g}\nrows_parallel = 1\ngroups_per_cycle = 1\n\
                             activation_bits = 8\naccumulator_bits = {acc}\ntable_storage = \"block\"\n\
                             weight_buffer_depth = 2\n[workload]\nm = 1\nk = 8\ntokens = 1\n"
                        ),
                        "test",
                    )
                    .unwrap();
                    let design = generate(&cfg).unwrap();
                    // The index port rust-hdl declared has the weight format's width.
                    let iw = weights::index_bits(cfg.geometry.lane_group);
                    if iw > 1 {
                        let decl = format!("input wire  [{}:0] wgt_index$0;", iw - 1);
                        assert!(
                            design.core_verilog.contains(&decl),
                            "{kind} g={g}: no `{decl}`"
                        );
                    }
                }
            }
        }
    }
}
