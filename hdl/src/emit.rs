//! Verilog emission: rust-hdl's output, a packed-port wrapper `tern_engine`, the lint
//! waivers for rust-hdl's output, and a manifest. Written atomically: the manifest,
//! written last, marks a complete design directory.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rust_hdl::prelude::*;

use std::collections::BTreeMap;

use crate::attention::AttentionEngine;
use crate::config::{AttentionConfig, Config, DesignConfig, Geometry};
use crate::tlmm::TlmmEngine;

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
        "UNUSEDPARAM",
        "rust-hdl declares a state enum's localparams in every module that carries the state",
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
    /// `tlmm`, `adder-tree` or `attention`.
    pub engine: String,
    pub config_toml: String,
    /// The derived parameters: the matmul geometry, or the attention constants.
    pub parameters: serde_json::Value,
    pub ports: Vec<Port>,
    /// Bits of each on-chip memory, by name.
    pub memory_bits: BTreeMap<String, usize>,
    /// Matmul: clocks from a weight beat entering the held-beat stage (s1) to its
    /// result on the result stream, when nothing stalls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_latency: Option<usize>,
    /// Matmul: clocks per token in steady state, decode (blocks of one token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles_per_token: Option<usize>,
    pub verilog_lines: usize,
}

impl Manifest {
    pub fn total_memory_bits(&self) -> usize {
        self.memory_bits.values().sum()
    }
}

/// Data bits of the shell's three streams (every engine has the same shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamBits {
    pub act: usize,
    pub wgt: usize,
    pub res: usize,
}

/// A generated design held in memory.
#[derive(Debug, Clone)]
pub struct Design {
    pub config: DesignConfig,
    pub core_verilog: String,
    pub wrapper_verilog: String,
    pub manifest: Manifest,
}

impl Design {
    pub fn short_hash(&self) -> &str {
        &self.manifest.content_hash[..16]
    }

    pub fn stream_bits(&self) -> StreamBits {
        stream_bits(&self.config)
    }
}

pub fn stream_bits(config: &DesignConfig) -> StreamBits {
    match config {
        DesignConfig::Matmul(cfg) => StreamBits {
            act: cfg.geometry.activation_beat_bits(),
            wgt: cfg.geometry.weight_beat_bits(),
            res: cfg.geometry.result_beat_bits(),
        },
        DesignConfig::Attention(cfg) => StreamBits {
            act: cfg.bus_bits(),
            wgt: cfg.bus_bits(),
            res: crate::streams::attention::result_bits(cfg),
        },
    }
}

/// The shell's ports: clock, reset and three valid/ready streams.
pub fn ports(bits: StreamBits) -> Vec<Port> {
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
        p("act_last", "input", 1),
        p("act_data", "input", bits.act),
        p("wgt_valid", "input", 1),
        p("wgt_ready", "output", 1),
        p("wgt_data", "input", bits.wgt),
        p("res_valid", "output", 1),
        p("res_ready", "input", 1),
        p("res_data", "output", bits.res),
    ]
}

/// Generate the design for a validated config (either kind).
pub fn generate_any(config: &DesignConfig) -> Result<Design, EmitError> {
    match config {
        DesignConfig::Matmul(cfg) => generate(cfg),
        DesignConfig::Attention(cfg) => generate_attention(cfg),
    }
}

/// SHA-256 over the wrapper and core Verilog: a design's identity and cache key.
pub fn content_hash(wrapper_verilog: &str, core_verilog: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(wrapper_verilog.as_bytes());
    hasher.update(core_verilog.as_bytes());
    hex::encode(hasher.finalize())
}

fn finish(
    config: DesignConfig,
    engine: &str,
    parameters: serde_json::Value,
    core_verilog: String,
    connections: Vec<String>,
    memory_bits: BTreeMap<String, usize>,
    timing: (Option<usize>, Option<usize>),
) -> Design {
    let bits = stream_bits(&config);
    let wrapper_verilog = wrapper(bits, &connections);
    let content_hash = content_hash(&wrapper_verilog, &core_verilog);
    let manifest = Manifest {
        tern_version: env!("CARGO_PKG_VERSION").into(),
        top: WRAPPER_MODULE.into(),
        files: vec![WRAPPER_FILE.into(), DESIGN_FILE.into()],
        content_hash,
        engine: engine.into(),
        config_toml: config.to_toml(),
        parameters,
        ports: ports(bits),
        memory_bits,
        pipeline_latency: timing.0,
        cycles_per_token: timing.1,
        verilog_lines: core_verilog.lines().count() + wrapper_verilog.lines().count(),
    };
    Design {
        config,
        core_verilog,
        wrapper_verilog,
        manifest,
    }
}

/// Generate a matmul (TLMM or adder-tree) design.
pub fn generate(cfg: &Config) -> Result<Design, EmitError> {
    // The RTL's port widths are type parameters (index bits, result field bits); this
    // maps the config onto them. `TlmmEngine::new` checks both against the geometry.
    macro_rules! with_acc {
        ($iw:literal) => {
            match cfg.engine.accumulator_bits {
                16 => core::<$iw, 16>(cfg),
                24 => core::<$iw, 24>(cfg),
                32 => core::<$iw, 32>(cfg),
                other => unreachable!("accumulator width {other} passed validation"),
            }
        };
    }
    let (core_verilog, memory_bits) = match cfg.geometry.index_bits {
        1 => with_acc!(1),
        3 => with_acc!(3),
        4 => with_acc!(4),
        6 => with_acc!(6),
        7 => with_acc!(7),
        other => unreachable!("index width {other} passed validation"),
    }?;
    let geo = &cfg.geometry;
    Ok(finish(
        DesignConfig::Matmul(cfg.clone()),
        cfg.engine.kind.name(),
        serde_json::to_value(geo).expect("geometry serialises"),
        core_verilog,
        matmul_connections(geo),
        memory_bits
            .into_iter()
            .map(|(name, bits)| (name.to_string(), bits))
            .collect(),
        (
            Some(crate::timing::pipeline_latency(geo)),
            Some(crate::timing::decode_cycles_per_token(geo)),
        ),
    ))
}

fn core<const IW: usize, const ACC: usize>(
    cfg: &Config,
) -> Result<(String, crate::tlmm::MemoryBits), EmitError> {
    let mut engine = TlmmEngine::<IW, ACC>::new(cfg);
    engine.connect_all();
    check_all(&engine).map_err(|e| EmitError::Check(format!("{e:?}")))?;
    let bits = engine.memory_bits(cfg);
    Ok((generate_verilog_unchecked(&engine), bits))
}

/// Generate an attention design.
pub fn generate_attention(cfg: &AttentionConfig) -> Result<Design, EmitError> {
    // The stream width is a type parameter: one instantiation per supported MAC count.
    let (core_verilog, [query, scores, accumulators, tile_buffer, row_state]) =
        match cfg.attention.macs {
            4 => attention_core::<32, 128>(cfg),
            8 => attention_core::<64, 256>(cfg),
            16 => attention_core::<128, 512>(cfg),
            32 => attention_core::<256, 1024>(cfg),
            other => unreachable!("macs {other} passed validation"),
        }?;
    let bus = cfg.bus_bits();
    let connections = vec![
        format!(".act_data(act_data)"),
        format!(".wgt_data(wgt_data)"),
        format!(".res_data(res_data[{}:0])", bus - 1),
        format!(".res_empty(res_data[{bus}])"),
        // The standalone engine's units are its config's.
        format!(".threshold(32'd{})", cfg.constants.threshold),
        format!(
            ".threshold_reciprocal(64'd{})",
            cfg.constants.threshold_reciprocal
        ),
        format!(".index_offset(32'd{})", cfg.constants.index_offset),
        format!(".output_numerator(48'd{})", cfg.constants.output_numerator),
    ];
    Ok(finish(
        DesignConfig::Attention(cfg.clone()),
        "attention",
        serde_json::to_value(&cfg.constants).expect("constants serialise"),
        core_verilog,
        connections,
        BTreeMap::from([
            ("query".to_string(), query),
            ("scores".to_string(), scores),
            ("accumulators".to_string(), accumulators),
            ("tile_buffer".to_string(), tile_buffer),
            ("row_state".to_string(), row_state),
        ]),
        (None, None),
    ))
}

fn attention_core<const BUS: usize, const ACCW: usize>(
    cfg: &AttentionConfig,
) -> Result<(String, [usize; 5]), EmitError> {
    let mut engine = AttentionEngine::<BUS, ACCW>::new(cfg);
    engine.connect_all();
    check_all(&engine).map_err(|e| EmitError::Check(format!("{e:?}")))?;
    let bits = engine.memory_bits();
    Ok((generate_verilog_unchecked(&engine), bits))
}

fn matmul_connections(geo: &Geometry) -> Vec<String> {
    let cb = 1 + geo.index_bits;
    let acc = geo.accumulator_bits;
    let mut conns = vec![];
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
    conns
}

/// The packed-port wrapper `tern_engine` around rust-hdl's `top`: the shell's control
/// ports plus the engine-specific data connections.
fn wrapper(bits: StreamBits, data_connections: &[String]) -> String {
    let mut v = String::new();
    writeln!(
        v,
        "// Generated by tern {}: packed-port wrapper around rust-hdl's `top`.",
        env!("CARGO_PKG_VERSION")
    )
    .unwrap();
    writeln!(v, "// Stream formats: see tern-hdl `streams`.").unwrap();
    writeln!(v, "`default_nettype none").unwrap();
    writeln!(v, "module {WRAPPER_MODULE} (").unwrap();
    let ports = ports(bits);
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
        ".act_last(act_last)".into(),
        ".wgt_valid(wgt_valid)".into(),
        ".wgt_ready(wgt_ready)".into(),
        ".res_valid(res_valid)".into(),
        ".res_ready(res_ready)".into(),
    ];
    conns.extend(data_connections.iter().cloned());
    writeln!(v, "        {}", conns.join(",\n        ")).unwrap();
    writeln!(v, "    );").unwrap();
    writeln!(v, "endmodule").unwrap();
    writeln!(v, "`default_nettype wire").unwrap();
    v
}

/// Every module `texts` declare, renamed `prefix` + its name, in each text wherever the
/// name stands as a whole identifier (declarations, instances; `$` is an identifier
/// character, so rust-hdl's `top$state` is a name of its own). Blocks generated apart
/// reuse module names (two rust-hdl cores are both `top`; two units carry stripe readers
/// of other shapes under one name): prefixed, they sit in one design.
pub fn prefix_modules(texts: &[&str], prefix: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut declared = std::collections::HashSet::new();
    for text in texts {
        let mut words = text.split(|c: char| !is_ident(c)).filter(|w| !w.is_empty());
        while let Some(w) = words.next() {
            if w == "module" {
                if let Some(name) = words.next() {
                    declared.insert(name.to_string());
                }
            }
        }
    }
    texts
        .iter()
        .map(|text| {
            let mut out = String::with_capacity(text.len() + 1024);
            let mut word = String::new();
            let flush = |word: &mut String, out: &mut String| {
                if declared.contains(word.as_str()) {
                    out.push_str(prefix);
                }
                out.push_str(word);
                word.clear();
            };
            for c in text.chars() {
                // An identifier starts with a letter or `_`; digits and `$` continue one.
                if is_ident(c) && (!word.is_empty() || c.is_ascii_alphabetic() || c == '_') {
                    word.push(c);
                } else {
                    flush(&mut word, &mut out);
                    out.push(c);
                }
            }
            flush(&mut word, &mut out);
            out
        })
        .collect()
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
    files
        .into_iter()
        .map(|(name, text)| write_file(dir, name, text))
        .collect()
}

/// Write `dir/name` under a temporary name, then rename it: a reader never sees half a
/// file.
pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf, EmitError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let err = |cause| EmitError::Write {
        path: path.display().to_string(),
        cause,
    };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigBuilder, EngineKind};
    use crate::weights;

    #[test]
    fn prefixed_modules_keep_their_wiring_and_nothing_else_changes() {
        let unit = "module unit(input wire clk);\n    top core (.clock(clk));\n    wire top_x = 1'b0;\nendmodule\n";
        let core = "module top(clock);\n  top$state state (.d(d$next));\nendmodule\nmodule top$state(d);\nendmodule\n";
        let out = prefix_modules(&[unit, core], "mm_");
        assert_eq!(
            out[0],
            "module mm_unit(input wire clk);\n    mm_top core (.clock(clk));\n    wire top_x = 1'b0;\nendmodule\n"
        );
        assert_eq!(
            out[1],
            "module mm_top(clock);\n  mm_top$state state (.d(d$next));\nendmodule\nmodule mm_top$state(d);\nendmodule\n"
        );
    }

    #[test]
    fn every_lane_group_and_accumulator_maps_onto_matching_rtl_widths() {
        // `TlmmEngine::new` asserts its type widths against the config's geometry,
        // so generating every (kind, G, accumulator) checks the mapping in `generate`.
        for kind in [EngineKind::Tlmm, EngineKind::AdderTree] {
            for g in 2..=5 {
                for acc in crate::config::ACCUMULATOR_WIDTHS {
                    let cfg = ConfigBuilder::new(kind, g, 1, 1)
                        .accumulator_bits(acc)
                        .workload(1, 8, 1)
                        .build()
                        .unwrap();
                    let design = generate(&cfg).unwrap();
                    // The index port rust-hdl declared has the weight format's width.
                    let iw = weights::index_bits(cfg.geometry.lane_group);
                    assert_eq!(design.manifest.engine, kind.name());
                    if iw > 1 {
                        let decl = format!("input wire  [{}:0] wgt_index$0;", iw - 1);
                        assert!(
                            design.core_verilog.contains(&decl),
                            "{kind:?} g={g}: no `{decl}`"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn attention_generates_for_every_mac_count() {
        for macs in crate::config::attention::MAC_LANES {
            let text = include_str!("../../examples/attention_decode.toml")
                .replace("macs = 16", &format!("macs = {macs}"));
            let cfg = AttentionConfig::from_toml(&text, "test").unwrap();
            let design = generate_attention(&cfg).unwrap();
            assert_eq!(design.manifest.engine, "attention");
            let bus = 8 * macs;
            let decl = format!("input wire  [{}:0] act_data;", bus - 1);
            assert!(
                design.core_verilog.contains(&decl),
                "macs {macs}: no `{decl}`"
            );
            // One tile of 32-bit scores; d/macs words of query and accumulators.
            assert_eq!(design.manifest.memory_bits["scores"], 32 * 32);
            assert_eq!(design.manifest.memory_bits["accumulators"], 64 * 32);
            assert_eq!(design.manifest.memory_bits["query"], 64 * 8);
        }
    }
}
