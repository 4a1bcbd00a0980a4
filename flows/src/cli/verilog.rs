//! `tern verilog`: generate the Verilog of a design, its wrapper and manifest.

use anyhow::{Context, Result};
use std::path::PathBuf;

use tern_hdl::{generate_any, write_design, DesignConfig};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, required_unless_present_any = ["vector", "lm_head", "sequencer", "stripe_reader", "vector_unit", "one_top"])]
    pub config: Option<PathBuf>,
    /// Output directory (created if needed).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Also write the accelerator top (AXI4-Lite registers, AXI4 master, the engine's
    /// feeder) around the engine, matmul or attention, and its register map (regmap.md,
    /// regmap.json).
    #[arg(long, conflicts_with_all = ["vector", "lm_head", "sequencer", "stripe_reader", "vector_unit"])]
    pub top: bool,
    /// Instead of a design: the vector unit's blocks (docs/vector.md) with this many
    /// lanes, for vectors of up to `--max-n` elements and heads of up to `--max-head-dim`.
    #[arg(long, value_name = "LANES")]
    pub vector: Option<usize>,
    /// With `--vector` or `--vector-unit`: the longest vector a buffering block holds.
    #[arg(long, default_value_t = 6912)]
    pub max_n: usize,
    /// With `--vector` or `--vector-unit`: the longest head RoPE rotates.
    #[arg(long, default_value_t = 128)]
    pub max_head_dim: usize,
    /// Instead of a design: the LM-head engine (docs/vector.md) taking this many weights
    /// a clock, for rows of up to `--max-width` weights of `--weight-bits` bits, with
    /// `--slices` groups side by side in a beat (1: a group is one or more whole beats).
    #[arg(long, value_name = "LANES", conflicts_with = "vector")]
    pub lm_head: Option<usize>,
    #[arg(long, default_value_t = 8, requires = "lm_head")]
    pub weight_bits: usize,
    #[arg(long, default_value_t = 1, requires = "lm_head")]
    pub slices: usize,
    #[arg(long, default_value_t = 2560, requires = "lm_head")]
    pub max_width: usize,
    /// With `--lm-head`: the whole LM-head unit (the engine with its readers and writer)
    /// on this many 128-bit memory ports; LANES must then be 16 × ports (int8 head).
    /// With `--vector-unit`: its read ports, 1 (default) or 2 (its second reader on
    /// port 1).
    #[arg(long, value_name = "PORTS")]
    pub unit_ports: Option<usize>,
    /// Instead of a design: the sequencer (docs/program.md) for this model (a preset or
    /// a model TOML), on `--memory-mib` of memory, with room for `--max-ids` token ids
    /// a pass, refusing programs not built for `--design` (hex; default 0, and for
    /// `--one-top` the top's own id, a hash of its Verilog).
    #[arg(long, value_name = "MODEL", conflicts_with_all = ["vector", "lm_head"])]
    pub sequencer: Option<String>,
    #[arg(long, default_value_t = 4096)]
    pub memory_mib: u64,
    #[arg(long, default_value_t = 128)]
    pub max_ids: u32,
    #[arg(long)]
    pub design: Option<String>,
    /// Instead of a design: the stripe reader (docs/memory_ports.md) over this many
    /// 128-bit memory ports, bursts of `--burst` beats, `--outstanding` in flight a port.
    #[arg(long, value_name = "PORTS", conflicts_with_all = ["vector", "lm_head", "sequencer"])]
    pub stripe_reader: Option<usize>,
    #[arg(long, default_value_t = 16, requires = "stripe_reader")]
    pub burst: usize,
    #[arg(long, default_value_t = 4, requires = "stripe_reader")]
    pub outstanding: usize,
    /// With `--config` (a matmul engine, its workload one tile): the matmul unit
    /// (docs/program.md) on this many 128-bit memory ports, with the engine's core and
    /// Verilator's waivers for it.
    #[arg(long, value_name = "PORTS", requires = "config", conflicts_with_all = ["top", "vector", "lm_head", "sequencer", "stripe_reader"])]
    pub matmul_unit: Option<usize>,
    /// Instead of a design: the vector unit (docs/program.md: Embed, NormQuant, Dequant,
    /// ToInt8, Relu2Mul, Rope) with this many lanes (1, 2 or 4) on `--unit-ports` 128-bit
    /// memory ports, for vectors of up to `--max-n` elements and heads of up to
    /// `--max-head-dim`.
    #[arg(long, value_name = "LANES", conflicts_with_all = ["config", "vector", "lm_head", "sequencer", "stripe_reader"])]
    pub vector_unit: Option<usize>,
    /// With `--config` (an attention engine): the attention unit (docs/program.md) for
    /// this model's heads (a preset or a model TOML) on one 128-bit memory port, with the
    /// engine's core and Verilator's waivers for it.
    #[arg(long, value_name = "MODEL", requires = "config", conflicts_with_all = ["top", "vector", "lm_head", "sequencer", "stripe_reader", "matmul_unit"])]
    pub attention_unit: Option<String>,
    /// Instead of a design: the one top (docs/accelerator.md) for this model (a preset or a
    /// model TOML) on the accelerator description `--accelerator` (its board's memory
    /// ports, its matmul and attention engines): the shell, the core, every unit, the
    /// register map, the FuseSoC core and kernel.xml. `--lanes` sets the vector unit's
    /// lanes, `--memory-mib`, `--max-ids` and `--design` the sequencer's.
    #[arg(long, value_name = "MODEL", requires = "accelerator", conflicts_with_all = ["config", "top", "vector", "lm_head", "sequencer", "stripe_reader", "vector_unit"])]
    pub one_top: Option<String>,
    #[arg(long, value_name = "A.toml", requires = "one_top")]
    pub accelerator: Option<PathBuf>,
    #[arg(long, default_value_t = 2, requires = "one_top")]
    pub lanes: usize,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        out,
        top,
        vector,
        max_n,
        max_head_dim,
        lm_head,
        weight_bits,
        slices,
        max_width,
        unit_ports,
        sequencer,
        memory_mib,
        max_ids,
        design,
        stripe_reader,
        burst,
        outstanding,
        matmul_unit,
        vector_unit,
        attention_unit,
        one_top,
        accelerator,
        lanes,
    } = a;
    if unit_ports.is_some() && lm_head.is_none() && vector_unit.is_none() {
        anyhow::bail!(
            "--unit-ports is the ports of --lm-head's or --vector-unit's unit: give one of them"
        );
    }
    if let Some(model) = one_top {
        let accelerator = accelerator.expect("clap requires --accelerator with --one-top");
        return write_one_top(
            &model,
            &accelerator,
            lanes,
            (memory_mib, max_ids, design.as_deref()),
            &out,
        );
    }
    if let Some(lanes) = vector_unit {
        let ports = unit_ports.unwrap_or(1);
        let shape = tern_hdl::units::VectorUnitShape {
            lanes,
            max_n,
            max_head_dim,
            ports,
        };
        let text = tern_hdl::units::vector_unit_verilog(shape).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(tern_hdl::units::VECTOR_UNIT_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: the vector unit (Embed, NormQuant, Dequant, ToInt8, Relu2Mul, Rope), {lanes} lanes, vectors of up to {max_n}, heads of up to {max_head_dim}, on {ports} memory port(s)",
            path.display()
        );
        return Ok(());
    }
    if let Some(ports) = stripe_reader {
        let shape = tern_hdl::interconnect::StripeShape {
            ports,
            burst,
            outstanding,
        };
        let text =
            tern_hdl::interconnect::stripe_reader_verilog(shape).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(tern_hdl::interconnect::STRIPE_READER_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: the stripe reader over {ports} ports, bursts of {burst} beats, {outstanding} in flight a port",
            path.display()
        );
        return Ok(());
    }
    if let Some(model) = sequencer {
        let c = tern_model::ModelConfig::resolve(&model)
            .with_context(|| format!("--sequencer {model}"))?;
        let design = design.as_deref().unwrap_or("0");
        let design = u32::from_str_radix(design.trim_start_matches("0x"), 16)
            .with_context(|| format!("--design {design}: not a 32-bit hex number"))?;
        let shape = crate::program::sequencer_shape(&c, design, memory_mib << 20, max_ids);
        let text = tern_hdl::sequencer::sequencer_verilog(&shape).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(tern_hdl::sequencer::SEQUENCER_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: the sequencer for {model} (design {design:08x}, {memory_mib} MiB, {max_ids} ids a pass)",
            path.display()
        );
        return Ok(());
    }
    if let (Some(lanes), Some(ports)) = (lm_head, unit_ports) {
        // The unit's engine takes the ports' whole width: 16 int8 or 32 4-bit weights a
        // port; a 4-bit head's group is a slice's lanes.
        use tern_hdl::program::HeadFormat;
        let format = match weight_bits {
            8 if lanes == 16 * ports && slices == 1 => HeadFormat::Int8,
            4 if lanes == 32 * ports && slices >= 1 && lanes % slices == 0 => HeadFormat::Int4 {
                group: (lanes / slices) as u32,
            },
            _ => anyhow::bail!(
                "--unit-ports {ports}: the unit's engine takes {} int8 weights a clock in one slice (--lm-head {} --weight-bits 8 --slices 1) or {} 4-bit ones, a group a slice (--lm-head {} --weight-bits 4 --slices S)",
                16 * ports,
                16 * ports,
                32 * ports,
                32 * ports
            ),
        };
        let shape = tern_hdl::units::LmHeadUnitShape {
            ports,
            max_width,
            format,
        };
        let text = tern_hdl::units::lm_head_unit_verilog(shape).map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(tern_hdl::units::LM_HEAD_UNIT_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: the LM-head unit on {ports} memory ports, rows of up to {max_width}, {format:?} head",
            path.display()
        );
        return Ok(());
    }
    if let Some(lanes) = lm_head {
        let shape = tern_hdl::vector::LmHeadShape {
            lanes,
            weight_bits,
            slices,
            max_width,
        };
        let text = tern_hdl::vector::lm_head_verilog(shape)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(tern_hdl::vector::LM_HEAD_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: the LM-head engine, {lanes} weights of {weight_bits} bits a clock in {slices} slice(s), rows of up to {max_width}",
            path.display()
        );
        return Ok(());
    }
    if let Some(lanes) = vector {
        let files = tern_hdl::vector::vector_unit_files(lanes, max_n, max_head_dim)?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, text) in &files {
            let path = out.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        println!(
            "wrote {}: the vector unit's {} blocks, {lanes} lanes, vectors of up to {max_n}, heads of up to {max_head_dim} ({})",
            out.display(),
            files.len(),
            files.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        );
        return Ok(());
    }
    let config = config.expect("clap requires --config without --vector or --lm-head");
    let cfg = DesignConfig::from_path(&config)?;
    // A board named in the config must exist even though generation does not
    // use it: a typo would otherwise surface only at synthesis.
    if let Some(board) = cfg.board() {
        tern_boards::Board::resolve(board)
            .with_context(|| format!("{}: `board`", config.display()))?;
    }
    if let Some(ports) = matmul_unit {
        let DesignConfig::Matmul(engine) = cfg else {
            anyhow::bail!(
                "--matmul-unit: {} is an attention config, not a matmul engine",
                config.display()
            );
        };
        let shape = tern_hdl::units::MatmulUnitShape {
            ports,
            engine,
            window: None,
        };
        let v = tern_hdl::units::matmul_unit_verilog(&shape)
            .with_context(|| config.display().to_string())?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, text) in [
            (tern_hdl::units::MATMUL_UNIT_FILE, v.unit),
            (tern_hdl::emit::DESIGN_FILE, v.core),
            (tern_hdl::emit::WAIVER_FILE, tern_hdl::emit::waivers()),
        ] {
            let path = out.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        println!(
            "wrote {}: the matmul unit on {ports} memory ports, tiles of {} x {}, {} bytes of weights a tile ({}, {}, {})",
            out.display(),
            shape.tile_rows(),
            shape.tile_k(),
            shape.tile_bytes(),
            tern_hdl::units::MATMUL_UNIT_FILE,
            tern_hdl::emit::DESIGN_FILE,
            tern_hdl::emit::WAIVER_FILE
        );
        return Ok(());
    }
    if let Some(model) = attention_unit {
        let DesignConfig::Attention(engine) = cfg else {
            anyhow::bail!(
                "--attention-unit: {} is a matmul config, not an attention engine",
                config.display()
            );
        };
        let m = tern_model::ModelConfig::resolve(&model)
            .with_context(|| format!("--attention-unit {model}"))?;
        if m.head_dim != engine.attention.head_dim {
            anyhow::bail!(
                "--attention-unit {model}: heads of {}, the engine in {} takes heads of {}",
                m.head_dim,
                config.display(),
                engine.attention.head_dim
            );
        }
        let ports = if engine.attention.macs == 32 { 2 } else { 1 };
        let shape = tern_hdl::units::AttentionUnitShape {
            engine,
            heads: m.heads,
            kv_heads: m.kv_heads,
            ports,
        };
        let v = tern_hdl::units::attention_unit_verilog(&shape)
            .with_context(|| config.display().to_string())?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, text) in [
            (tern_hdl::units::ATTENTION_UNIT_FILE, v.unit),
            (tern_hdl::emit::DESIGN_FILE, v.core),
            (tern_hdl::emit::WAIVER_FILE, tern_hdl::emit::waivers()),
        ] {
            let path = out.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        println!(
            "wrote {}: the attention unit for {model} ({} query heads, {} KV heads of {}), {} MACs, tiles of {}, the KV caches on {ports} memory port(s) ({}, {}, {})",
            out.display(),
            m.heads,
            m.kv_heads,
            m.head_dim,
            shape.engine.attention.macs,
            shape.engine.attention.tile,
            tern_hdl::units::ATTENTION_UNIT_FILE,
            tern_hdl::emit::DESIGN_FILE,
            tern_hdl::emit::WAIVER_FILE
        );
        return Ok(());
    }
    let design = if top {
        let top = tern_hdl::top::generate_top_any(&cfg)
            .with_context(|| format!("{}: the accelerator top", config.display()))?;
        tern_hdl::top::write_top(&top, &out)?;
        println!(
            "top: AXI4 master {} bits wide, bursts of up to {} beats, {} MiB of memory, design id {:08x}, register map in {}",
            top.layout.bus_bytes() * 8,
            top.layout.burst_beats(),
            top.layout.memory_bytes() >> 20,
            top.design_id(),
            out.join(tern_hdl::top::REGMAP_MARKDOWN).display()
        );
        top.engine
    } else {
        let design = generate_any(&cfg)?;
        write_design(&design, &out)?;
        design
    };
    let m = &design.manifest;
    let timing = match (m.cycles_per_token, m.pipeline_latency) {
        (Some(c), Some(l)) => format!(", {c} clocks/token, latency {l} clocks"),
        _ => String::new(),
    };
    println!(
        "wrote {} ({} engine, {} lines of Verilog, hash {}, {} bits of on-chip memory{timing})",
        out.display(),
        m.engine,
        m.verilog_lines,
        design.short_hash(),
        m.total_memory_bits(),
    );
    Ok(())
}

/// `tern verilog --one-top MODEL --accelerator A.toml`: the one top and its package.
fn write_one_top(
    model: &str,
    accelerator: &std::path::Path,
    lanes: usize,
    (memory_mib, max_ids, design): (u64, u32, Option<&str>),
    out: &std::path::Path,
) -> Result<()> {
    let m =
        tern_model::ModelConfig::resolve(model).with_context(|| format!("--one-top {model}"))?;
    let acc = tern_hdl::config::accelerator::Accelerator::from_path(accelerator)?;
    let shape = match design {
        Some(design) => {
            let design = u32::from_str_radix(design.trim_start_matches("0x"), 16)
                .with_context(|| format!("--design {design}: not a hexadecimal u32"))?;
            crate::one_top::one_top_shape(&m, &acc, lanes, design, memory_mib << 20, max_ids)?
        }
        None => crate::one_top::one_top(&m, &acc, lanes, memory_mib << 20, max_ids)?,
    };
    let design = shape.sequencer.design;
    let ports = shape.ports();
    let board = tern_boards::Board::resolve(&acc.board)?;
    let files = tern_hdl::accelerator::accelerator_package(&shape)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in &files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {}: the one top for {model} on {} ({ports} memory ports, the matmul engine of {}, the attention engine of {}, the vector unit at {lanes} lanes, the LM head {:?}, design {design:08x}): {}",
        out.display(),
        board.name,
        acc.matmul_path.display(),
        acc.attention_path.display(),
        acc.head_format,
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
