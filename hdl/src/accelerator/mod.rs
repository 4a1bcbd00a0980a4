//! The one top's core: the sequencer and every unit on the board's memory ports.
//!
//! `tern_accelerator_core` runs a pass of the program (docs/program.md): the host pushes
//! the pass's token ids and starts it with the program's address and the first
//! position; the sequencer reads the header and the commands and hands each command to
//! its unit through a dispatcher; the pass ends with the next token (or an error code).
//!
//! ```text
//!                 ┌──────────── dispatcher: opcode → unit, unit error → code ───────────┐
//! ids, start ─► sequencer ─► Matmul ─► matmul unit      (ports 0..P-1 read, 0 write)
//!                         ─► LmHead ─► LM-head unit     (ports 0..P-1 read, 0 write)
//!                         ─► Embed, NormQuant, Dequant, Rope, ToInt8, Relu2Mul ─► vector unit
//!                              (port 0; its second reader on port 1 when the top has 2+)
//!                         ─► Attention ─► attention unit (port 0, its caches' reads also on 1)
//! port 0: a read arbiter (sequencer, the four units) and a write arbiter (the same);
//! ports 1..P-1: a read arbiter (matmul, LM head; on port 1 the attention unit's caches
//! for a 32-MAC engine and the vector unit's reader B); each unit's writes through a
//! write guard
//! ```
//!
//! The sequencer hands one command at a time to a unit, but the matmul unit's weight
//! window reads the next matrix's weights while other units run, so the arbiters share
//! the ports (round robin); they cost a clock on a request. Each unit is generated as it is alone and its
//! modules are renamed with a prefix of its own (`emit::prefix_modules`), so that blocks
//! of the same name and other shapes (stripe readers, the engines' rust-hdl cores) sit in
//! one design. The control here is plain ports; the AXI4-Lite shell ([`shell`],
//! `tern_accelerator`) is the layer above.

pub mod shell;

use crate::emit::{prefix_modules, DESIGN_FILE};
use crate::interconnect::{read_arbiter_verilog, write_arbiter_verilog, write_guard_verilog};
use crate::program::error_code;
use crate::sequencer::{sequencer_verilog, SequencerShape, SEQUENCER_MODULE};
use crate::units::{
    attention_unit_verilog, lm_head_unit_verilog, matmul_unit_verilog, vector_unit_verilog,
    AttentionUnitShape, LmHeadUnitShape, MatmulUnitShape, VectorUnitShape, ATTENTION_UNIT_FILE,
    ATTENTION_UNIT_MODULE, LM_HEAD_UNIT_FILE, LM_HEAD_UNIT_MODULE, MATMUL_UNIT_FILE,
    MATMUL_UNIT_MODULE, VECTOR_UNIT_FILE, VECTOR_UNIT_MODULE,
};

pub const ACCELERATOR_CORE_MODULE: &str = "tern_accelerator_core";
pub const ACCELERATOR_CORE_FILE: &str = "tern_accelerator_core.v";
/// Read and write bursts an arbiter keeps in flight on a port.
const IN_FLIGHT: usize = 16;

/// What the one top is built of: the sequencer and the four units, on `ports` memory
/// ports (the matmul and LM-head units' own).
#[derive(Debug, Clone)]
pub struct AcceleratorShape {
    pub sequencer: SequencerShape,
    pub matmul: MatmulUnitShape,
    pub lm_head: LmHeadUnitShape,
    pub vector: VectorUnitShape,
    pub attention: AttentionUnitShape,
}

impl AcceleratorShape {
    pub fn ports(&self) -> usize {
        self.matmul.ports
    }

    pub fn check(&self) -> Result<(), String> {
        if self.matmul.ports != self.lm_head.ports {
            return Err(format!(
                "the matmul unit is built for {} memory ports, the LM-head unit for {}: the one top has one set",
                self.matmul.ports, self.lm_head.ports
            ));
        }
        Ok(())
    }
}

/// The one top's design id: the first 32 bits of the SHA-256 of its Verilog built with
/// design 0 on a fixed memory. Every build of the same top (by `tern serve`, by a host,
/// by `tern verilog`) agrees on it whatever its memory, and a program or a host for
/// another top is refused (the sequencer checks the header's `design`; a host reads
/// `DESIGN_ID`).
pub fn design_id(shape: &AcceleratorShape) -> Result<u32, AcceleratorError> {
    use sha2::{Digest, Sha256};
    let mut canonical = shape.clone();
    canonical.sequencer.design = 0;
    canonical.sequencer.memory_bytes = 1 << 32;
    if let Some(w) = canonical.matmul.window.as_mut() {
        w.address_bits = crate::interconnect::memory_address_bits(1 << 32);
    }
    let mut h = Sha256::new();
    for (name, text) in accelerator_verilog(&canonical)?.files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
}

/// Why the one top's core cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AcceleratorError {
    #[error("the one top: {0}")]
    Shape(String),
    #[error("the one top's {block}: {message}")]
    Block {
        block: &'static str,
        message: String,
    },
}

/// The one top's Verilog, file by file (`(name, text)`): the shell, the core with the
/// sequencer and the arbiters, then each unit (and its engine's rust-hdl core, whose file
/// names end in `emit::DESIGN_FILE` so that Verilator's waivers for rust-hdl's output
/// apply).
pub struct AcceleratorVerilog {
    pub files: Vec<(String, String)>,
}

/// The prefixes of the units' modules.
const MM: &str = "mm_";
const LM: &str = "lm_";
const VEC: &str = "vec_";
const ATT: &str = "att_";

pub fn accelerator_verilog(
    shape: &AcceleratorShape,
) -> Result<AcceleratorVerilog, AcceleratorError> {
    shape.check().map_err(AcceleratorError::Shape)?;
    let block =
        |block: &'static str| move |message: String| AcceleratorError::Block { block, message };
    let p = shape.ports();
    let mm = matmul_unit_verilog(&shape.matmul).map_err(|e| block("matmul unit")(e.to_string()))?;
    let mm = prefix_modules(&[&mm.unit, &mm.core], MM);
    let lm = lm_head_unit_verilog(shape.lm_head).map_err(block("LM-head unit"))?;
    let lm = prefix_modules(&[&lm], LM);
    let vec = vector_unit_verilog(shape.vector).map_err(block("vector unit"))?;
    let vec = prefix_modules(&[&vec], VEC);
    let att = attention_unit_verilog(&shape.attention)
        .map_err(|e| block("attention unit")(e.to_string()))?;
    let att = prefix_modules(&[&att.unit, &att.core], ATT);
    let seq = sequencer_verilog(&shape.sequencer).map_err(block("sequencer"))?;
    let r0 = prefix_modules(
        &[&read_arbiter_verilog(5, IN_FLIGHT).map_err(block("port 0's read arbiter"))?],
        "p0_",
    );
    let w0 = prefix_modules(
        &[&write_arbiter_verilog(5, IN_FLIGHT).map_err(block("port 0's write arbiter"))?],
        "p0_",
    );
    let att_ports = shape.attention.ports;
    if att_ports > p {
        return Err(AcceleratorError::Shape(format!(
            "the attention unit reads on {att_ports} ports, the one top has {p}"
        )));
    }
    let vec_ports = shape.vector.ports;
    if vec_ports > p {
        return Err(AcceleratorError::Shape(format!(
            "the vector unit reads on {vec_ports} ports, the one top has {p}"
        )));
    }
    // The matmul unit's weight window: emptied when a pass starts, reading on only where
    // no unit writes and inside memory.
    let mm_window = match shape.matmul.window {
        None => String::new(),
        Some(w) => {
            let aw = w.address_bits;
            if (shape.sequencer.memory_bytes >> aw) != 0 {
                return Err(AcceleratorError::Shape(format!(
                    "the matmul unit's weight window keeps {aw}-bit addresses, memory is {} bytes",
                    shape.sequencer.memory_bytes
                )));
            }
            let hi = aw - 1;
            format!(
                "\n        .ra_flush(cmd_valid && idle), .ra_mem_end({aw}'d{}), .ra_scratch_at(scratch_at[{hi}:0]),\n        \
                 .ra_scratch_end(scratch_end[{hi}:0]), .ra_kv_at(kv_at[{hi}:0]), .ra_kv_end(kv_end[{hi}:0]), .ra_behind(mm_behind), .ra_busy(mm_busy),",
                shape.sequencer.memory_bytes
            )
        }
    };
    let core = core_verilog(p, att_ports, vec_ports, &mm_window);
    // The write guards compare addresses as wide as memory needs (33 bits for 4 GiB).
    let guard_bits = crate::interconnect::memory_address_bits(shape.sequencer.memory_bytes);
    if guard_bits > 63 {
        return Err(AcceleratorError::Shape(format!(
            "a memory of {} bytes: its end does not fit in 63 address bits",
            shape.sequencer.memory_bytes
        )));
    }
    let guard = write_guard_verilog(guard_bits);
    let mut arbiters = format!("{}{}{}", r0[0], w0[0], guard);
    // Ports 1..P-1: a read arbiter for each number of masters some port has.
    let mut counts: Vec<usize> = (1..p)
        .map(|q| port_readers(q, att_ports, vec_ports).len())
        .collect();
    counts.sort_unstable();
    counts.dedup();
    for masters in counts {
        let rn = prefix_modules(
            &[&read_arbiter_verilog(masters, IN_FLIGHT).map_err(block("ports' read arbiter"))?],
            &format!("pn{masters}_"),
        );
        arbiters.push_str(&rn[0]);
    }
    let shell = shell::shell_verilog(
        p,
        shape.sequencer.design,
        shape.sequencer.memory_bytes >> 20,
    );
    let files = vec![
        (shell::SHELL_FILE.to_string(), shell),
        (
            ACCELERATOR_CORE_FILE.to_string(),
            format!("{core}/* verilator lint_off DECLFILENAME */ // the blocks it is made of\n{seq}{arbiters}"),
        ),
        (format!("{MM}{MATMUL_UNIT_FILE}"), mm[0].clone()),
        (format!("{MM}{DESIGN_FILE}"), mm[1].clone()),
        (format!("{LM}{LM_HEAD_UNIT_FILE}"), lm[0].clone()),
        (format!("{VEC}{VECTOR_UNIT_FILE}"), vec[0].clone()),
        (format!("{ATT}{ATTENTION_UNIT_FILE}"), att[0].clone()),
        (format!("{ATT}{DESIGN_FILE}"), att[1].clone()),
    ];
    Ok(AcceleratorVerilog { files })
}

const READ_SIGS: [(&str, usize, bool); 9] = [
    // (name, bits, driven by the master)
    ("arvalid", 1, true),
    ("arready", 1, false),
    ("araddr", 64, true),
    ("arlen", 8, true),
    ("rvalid", 1, false),
    ("rready", 1, true),
    ("rdata", 128, false),
    ("rresp", 2, false),
    ("rlast", 1, false),
];
const WRITE_SIGS: [(&str, usize, bool); 12] = [
    ("awvalid", 1, true),
    ("awready", 1, false),
    ("awaddr", 64, true),
    ("awlen", 8, true),
    ("wvalid", 1, true),
    ("wready", 1, false),
    ("wdata", 128, true),
    ("wstrb", 16, true),
    ("wlast", 1, true),
    ("bvalid", 1, false),
    ("bready", 1, true),
    ("bresp", 2, false),
];

fn range(bits: usize) -> String {
    if bits == 1 {
        String::new()
    } else {
        format!("[{}:0] ", bits - 1)
    }
}

/// The units reading on port `q` ≥ 1: the matmul and LM-head units, and the attention
/// and vector units where their reads reach that far.
fn port_readers(q: usize, att_ports: usize, vec_ports: usize) -> Vec<&'static str> {
    let mut who = vec!["mm", "lm"];
    if q < att_ports {
        who.push("att");
    }
    if q < vec_ports {
        who.push("vec");
    }
    who
}

/// The core module itself for `p` ports, the attention unit's reads on `att_ports`, the
/// vector unit's on `vec_ports`, the matmul unit's weight window's connections.
fn core_verilog(p: usize, att_ports: usize, vec_ports: usize, mm_window: &str) -> String {
    // The board's side: read channels of every port, write channels of port 0.
    let mut io = String::new();
    for q in 0..p {
        for (sig, bits, out) in READ_SIGS {
            let dir = if out { "output" } else { "input " };
            io.push_str(&format!("    {dir} wire {}m{q}_{sig},\n", range(bits)));
        }
    }
    for (sig, bits, out) in WRITE_SIGS {
        let dir = if out { "output" } else { "input " };
        io.push_str(&format!("    {dir} wire {}w_{sig},\n", range(bits)));
    }
    // Wires between the masters and the arbiters: `<who>_r<q>_<sig>`, `<who>_w_<sig>`.
    let mut wires = String::new();
    let read_wires = |who: &str, q: usize, wires: &mut String| {
        for (sig, bits, _) in READ_SIGS {
            wires.push_str(&format!("    wire {}{who}_r{q}_{sig};\n", range(bits)));
        }
    };
    let write_wires = |who: &str, wires: &mut String| {
        for (sig, bits, _) in WRITE_SIGS {
            wires.push_str(&format!("    wire {}{who}_w_{sig};\n", range(bits)));
        }
    };
    for who in ["seq", "mm", "lm", "vec", "att"] {
        read_wires(who, 0, &mut wires);
        write_wires(who, &mut wires);
    }
    if !mm_window.is_empty() {
        wires.push_str(
            "    wire mm_behind;   // the matmul unit's window reads ahead, no block waiting\n",
        );
        wires.push_str(&format!(
            "    wire [{}:0] mm_busy;   // ports where another unit wants to read\n",
            p - 1
        ));
    }
    // The units' own write channels, before their guards.
    for who in ["mm", "lm", "vec", "att"] {
        write_wires(&format!("{who}_u"), &mut wires);
    }
    for q in 1..p {
        for who in port_readers(q, att_ports, vec_ports) {
            read_wires(who, q, &mut wires);
        }
    }
    // A unit's read port q and write port, connected to its wires.
    let unit_ports = |who: &str, ports: usize| {
        let mut s = String::new();
        for q in 0..ports {
            for (sig, _, _) in READ_SIGS {
                s.push_str(&format!(",\n        .m{q}_{sig}({who}_r{q}_{sig})"));
            }
        }
        for (sig, _, _) in WRITE_SIGS {
            s.push_str(&format!(",\n        .w_{sig}({who}_u_w_{sig})"));
        }
        s
    };
    // Each unit's writes through a guard: scratch, and (the attention unit) the KV caches.
    let mut guards = String::new();
    for (who, second) in [
        ("mm", "64'd0, 64'd0"),
        ("lm", "64'd0, 64'd0"),
        ("vec", "64'd0, 64'd0"),
        ("att", "kv_at, kv_end"),
    ] {
        let (lo1, hi1) = second.split_once(", ").expect("two bounds");
        let mut g = format!(
            "    tern_write_guard {who}_guard (\n        .clk(clk), .rst(rst),\n        \
             .lo0(scratch_at), .hi0(scratch_end), .lo1({lo1}), .hi1({hi1})"
        );
        for (sig, _, _) in WRITE_SIGS {
            g.push_str(&format!(",\n        .s_{sig}({who}_u_w_{sig})"));
        }
        for (sig, _, _) in WRITE_SIGS {
            g.push_str(&format!(",\n        .m_{sig}({who}_w_{sig})"));
        }
        guards.push_str(&format!("{g}\n    );\n"));
    }
    let mut seq_ports = String::new();
    for (sig, _, _) in READ_SIGS {
        seq_ports.push_str(&format!(",\n        .m_{sig}(seq_r0_{sig})"));
    }
    for (sig, _, _) in WRITE_SIGS {
        seq_ports.push_str(&format!(",\n        .m_{sig}(seq_w_{sig})"));
    }
    // The arbiters: port 0's read and write (s0 sequencer, s1 matmul, s2 LM head, s3
    // vector, s4 attention), the other ports' reads (`port_readers`' order).
    let mut arbiters = String::new();
    // The matmul unit's window reading ahead between its commands yields each port to
    // any other unit asking for it there (`mm_behind`: its requests then wait), and asks
    // no new burst on a port another unit has asked on in the last 64 clocks (`mm_busy`:
    // a streaming unit's requests come and go as its bursts return).
    let window = !mm_window.is_empty();
    let port0 = ["seq", "mm", "lm", "vec", "att"];
    let others_asked = |q: usize, others: &[&str]| -> String {
        let asked: Vec<String> = others
            .iter()
            .filter(|&&o| o != "mm")
            .map(|o| format!("{o}_r{q}_arvalid"))
            .collect();
        format!("({})", asked.join(" || "))
    };
    let connect = |who: &str, q: usize, sig: &str, others: &[&str]| -> String {
        if window && who == "mm" && sig == "arvalid" {
            format!(
                "mm_r{q}_arvalid && !(mm_behind && {})",
                others_asked(q, others)
            )
        } else {
            format!("{who}_r{q}_{sig}")
        }
    };
    if window {
        for q in 0..p {
            let others = if q == 0 {
                port0.to_vec()
            } else {
                port_readers(q, att_ports, vec_ports)
            };
            let asked = others_asked(q, &others);
            arbiters.push_str(&format!(
                "    reg [5:0] mm_wanted{q};   // clocks since another unit asked on port {q}, to 63\n    \
                 always @(posedge clk)\n        \
                 if (rst) mm_wanted{q} <= 6'd63;\n        \
                 else if ({asked}) mm_wanted{q} <= 6'd0;\n        \
                 else if (mm_wanted{q} != 6'd63) mm_wanted{q} <= mm_wanted{q} + 6'd1;\n    \
                 assign mm_busy[{q}] = mm_behind && ({asked} || mm_wanted{q} != 6'd63);\n"
            ));
        }
    }
    let mut r0 = String::from("    p0_tern_read_arbiter read0 (\n        .clk(clk), .rst(rst)");
    let mut w0 = String::from("    p0_tern_write_arbiter write0 (\n        .clk(clk), .rst(rst)");
    for (i, who) in port0.iter().enumerate() {
        for (sig, _, _) in READ_SIGS {
            r0.push_str(&format!(
                ",\n        .s{i}_{sig}({})",
                connect(who, 0, sig, &port0)
            ));
        }
        for (sig, _, _) in WRITE_SIGS {
            w0.push_str(&format!(",\n        .s{i}_{sig}({who}_w_{sig})"));
        }
    }
    for (sig, _, _) in READ_SIGS {
        r0.push_str(&format!(",\n        .m_{sig}(m0_{sig})"));
    }
    for (sig, _, _) in WRITE_SIGS {
        w0.push_str(&format!(",\n        .m_{sig}(w_{sig})"));
    }
    arbiters.push_str(&format!("{r0}\n    );\n{w0}\n    );\n"));
    for q in 1..p {
        let who_all = port_readers(q, att_ports, vec_ports);
        let module = format!("pn{}_", who_all.len());
        let mut r =
            format!("    {module}tern_read_arbiter read{q} (\n        .clk(clk), .rst(rst)");
        for (i, who) in who_all.iter().enumerate() {
            for (sig, _, _) in READ_SIGS {
                r.push_str(&format!(
                    ",\n        .s{i}_{sig}({})",
                    connect(who, q, sig, &who_all)
                ));
            }
        }
        for (sig, _, _) in READ_SIGS {
            r.push_str(&format!(",\n        .m_{sig}(m{q}_{sig})"));
        }
        arbiters.push_str(&format!("{r}\n    );\n"));
    }
    use error_code::{DATA, OUT_OF_REGION, SIZE};
    CORE_TEMPLATE
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{MODULE}}", ACCELERATOR_CORE_MODULE)
        .replace("{{P}}", &p.to_string())
        .replace("{{IO}}", &io)
        .replace("{{WIRES}}", &wires)
        .replace("{{SEQ_PORTS}}", &seq_ports)
        .replace("{{MM_PORTS}}", &unit_ports("mm", p))
        .replace("{{MM_WINDOW}}", mm_window)
        .replace("{{LM_PORTS}}", &unit_ports("lm", p))
        .replace("{{VEC_PORTS}}", &unit_ports("vec", vec_ports))
        .replace("{{ATT_PORTS}}", &unit_ports("att", att_ports))
        .replace("{{ARBITERS}}", &format!("{guards}{arbiters}"))
        .replace("{{SEQUENCER}}", SEQUENCER_MODULE)
        .replace("{{MATMUL}}", &format!("{MM}{MATMUL_UNIT_MODULE}"))
        .replace("{{LM_HEAD}}", &format!("{LM}{LM_HEAD_UNIT_MODULE}"))
        .replace("{{VECTOR}}", &format!("{VEC}{VECTOR_UNIT_MODULE}"))
        .replace("{{ATTENTION}}", &format!("{ATT}{ATTENTION_UNIT_MODULE}"))
        .replace("{{E_SIZE}}", &format!("8'd{SIZE}"))
        .replace("{{E_REGION}}", &format!("8'd{OUT_OF_REGION}"))
        .replace("{{E_DATA}}", &format!("8'd{DATA}"))
}

const CORE_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the one top's core (hdl/src/accelerator.rs): the
// sequencer and the matmul, LM-head, vector and attention units on {{P}} memory port(s).
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{IO}}    // The pass's token ids, pushed while idle (one a clock); clear empties them.
    input  wire         id_push,
    input  wire [31:0]  id_data,
    input  wire         id_clear,
    // A pass: the program's address and the first position, taken while idle.
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [63:0]  program_at,
    input  wire [31:0]  position,
    output wire         done,
    // 0 when the last pass ended with a token; else the error (docs/program.md) and the
    // command it names (all ones: none).
    output wire [7:0]   error_code,
    output wire [31:0]  error_command,
    output wire [31:0]  next_token,
    output wire [31:0]  commands_run,
    // The last pass's clocks: in all, and while each unit ran.
    output reg  [63:0]  clocks_pass,
    output reg  [63:0]  clocks_matmul,
    output reg  [63:0]  clocks_lm_head,
    output reg  [63:0]  clocks_vector,
    output reg  [63:0]  clocks_attention
);
{{WIRES}}
    // ---- the sequencer ----
    wire        idle;
    wire        u_valid, u_ready, u_done;
    /* verilator lint_off UNUSEDSIGNAL */ // the record's zero bytes; ε's mantissa is 24 bits
    wire [511:0] u_record;
    wire [31:0] eps_m;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [31:0] u_rows, u_position, u_next;
    wire [7:0]  u_error;
    // The regions the units may write (their write guards').
    wire [63:0] scratch_at, scratch_end, kv_at, kv_end;
    wire [63:0] output_at, attention_at, ids_at;
    wire [31:0] residual_frac, eps_e, max_seq_len;
    {{SEQUENCER}} sequencer (
        .clk(clk), .rst(rst),
        .id_push(id_push), .id_data(id_data), .id_clear(id_clear),
        .start(cmd_valid && idle), .program_at(program_at), .position(position), .idle(idle),
        .error_code(error_code), .error_command(error_command), .next_token(next_token),
        .commands_run(commands_run),
        .scratch_at(scratch_at), .scratch_end(scratch_end), .output_at(output_at),
        .residual_frac(residual_frac), .eps_m(eps_m), .eps_e(eps_e), .ids_at(ids_at),
        .kv_at(kv_at), .kv_end(kv_end), .attention_at(attention_at), .max_seq_len(max_seq_len){{SEQ_PORTS}},
        .u_valid(u_valid), .u_ready(u_ready), .u_record(u_record), .u_rows(u_rows),
        .u_position(u_position), .u_done(u_done), .u_error(u_error), .u_next(u_next)
    );
    assign cmd_ready = idle;
    assign done = idle;

    // ---- the dispatcher: the record's fields (docs/program.md, "Commands") ----
    /* verilator lint_off UNUSEDSIGNAL */ // fields no unit here takes
    wire [7:0]  r_op = u_record[7:0];
    wire [7:0]  r_flags = u_record[15:8];
    wire [15:0] r_layer = u_record[47:32];
    wire [63:0] r_a = u_record[127:64];
    wire [63:0] r_b = u_record[191:128];
    wire [63:0] r_c = u_record[255:192];
    wire [63:0] r_d = u_record[319:256];
    wire [31:0] r_n = u_record[351:320];
    wire [31:0] r_k = u_record[383:352];
    wire [31:0] r_count = u_record[415:384];
    wire [31:0] r_scale_m = u_record[447:416];
    wire [31:0] r_scale_e = u_record[479:448];
    /* verilator lint_on UNUSEDSIGNAL */
    wire to_mm = r_op == 8'd3, to_lm = r_op == 8'd9, to_att = r_op == 8'd7;
    wire to_vec = !(to_mm || to_lm || to_att);
    // The LM-head unit's format: a 4-bit head's group, 0 for int8 (the unit refuses the
    // format it is not built for, code 15).
    wire [31:0] lm_group = r_flags[1] ? r_count : 32'd0;
    // Rope's length: heads · head dimension (saturating, as the golden's).
    wire [63:0] rope_n = {32'd0, r_count} * {32'd0, r_k};
    wire [31:0] vec_n = r_op == 8'd5 ? (rope_n[63:32] != 32'd0 ? 32'hffff_ffff : rope_n[31:0]) : r_n;
    reg  [2:0]  running;     // 0 none, 1 matmul, 2 LM head, 3 vector, 4 attention
    reg         settle;      // the clock after a unit took its command
    reg         done_q;
    reg  [7:0]  error_q;
    wire        mm_cmd_ready, lm_cmd_ready, vec_cmd_ready, att_cmd_ready;
    wire        mm_done, lm_done, vec_done, att_done;
    wire [1:0]  mm_error, lm_error, vec_error, att_error;
    wire free = running == 3'd0;
    assign u_ready = free && (to_mm ? mm_cmd_ready : to_lm ? lm_cmd_ready
                              : to_att ? att_cmd_ready : vec_cmd_ready);
    assign u_done = done_q;
    assign u_error = error_q;
    wire take = u_valid && u_ready;
    // A unit's error as the sequencer's code: 1 a size or shape not built for, 2 an
    // error response, 3 the data.
    function automatic [7:0] code(input [1:0] e);
        case (e)
            2'd0: code = 8'd0;
            2'd1: code = {{E_SIZE}};
            2'd2: code = {{E_REGION}};
            default: code = {{E_DATA}};
        endcase
    endfunction
    reg unit_done;
    reg [1:0] unit_error;
    always @(*) begin
        case (running)
            3'd1: begin unit_done = mm_done; unit_error = mm_error; end
            3'd2: begin unit_done = lm_done; unit_error = lm_error; end
            3'd3: begin unit_done = vec_done; unit_error = vec_error; end
            3'd4: begin unit_done = att_done; unit_error = att_error; end
            default: begin unit_done = 1'b1; unit_error = 2'd1; end
        endcase
    end
    always @(posedge clk) begin
        done_q <= 1'b0;
        if (rst) begin
            running <= 3'd0;
            settle <= 1'b0;
        end else if (free) begin
            if (take) begin
                running <= to_mm ? 3'd1 : to_lm ? 3'd2 : to_vec ? 3'd3 : 3'd4;
                settle <= 1'b1;
            end
        end else if (settle) begin
            settle <= 1'b0;
        end else if (unit_done) begin
            done_q <= 1'b1;
            error_q <= code(unit_error);
            running <= 3'd0;
        end
    end
    // The clocks: a pass's, and each unit's while it runs.
    always @(posedge clk) begin
        if (rst || (cmd_valid && idle)) begin
            clocks_pass <= 64'd0;
            clocks_matmul <= 64'd0;
            clocks_lm_head <= 64'd0;
            clocks_vector <= 64'd0;
            clocks_attention <= 64'd0;
        end else begin
            if (!idle) clocks_pass <= clocks_pass + 64'd1;
            if (running == 3'd1) clocks_matmul <= clocks_matmul + 64'd1;
            if (running == 3'd2) clocks_lm_head <= clocks_lm_head + 64'd1;
            if (running == 3'd3) clocks_vector <= clocks_vector + 64'd1;
            if (running == 3'd4) clocks_attention <= clocks_attention + 64'd1;
        end
    end

    // ---- the units ----
    /* verilator lint_off UNUSEDSIGNAL */ // the vector unit's row and flag: not reported yet
    wire [31:0] vec_error_row;
    wire        vec_saturated;
    /* verilator lint_on UNUSEDSIGNAL */
    {{MATMUL}} matmul (
        .clk(clk), .rst(rst){{MM_PORTS}},
        .cmd_valid(u_valid && free && to_mm), .cmd_ready(mm_cmd_ready),
        .cmd_src(r_a), .cmd_weights(r_b), .cmd_dst(r_c), .cmd_m(r_n), .cmd_k(r_k),
        .cmd_pass_rows(u_rows),{{MM_WINDOW}} .done(mm_done), .error(mm_error)
    );
    {{LM_HEAD}} lm_head (
        .clk(clk), .rst(rst){{LM_PORTS}},
        .cmd_valid(u_valid && free && to_lm), .cmd_ready(lm_cmd_ready),
        .cmd_src(r_a), .cmd_weights(r_b), .cmd_mantissas(r_d), .cmd_rows(r_n), .cmd_width(r_k),
        .cmd_scores(r_flags[0]), .cmd_group(lm_group), .cmd_pass_rows(u_rows), .cmd_output_at(output_at),
        .done(lm_done), .error(lm_error), .next(u_next)
    );
    {{VECTOR}} vector (
        .clk(clk), .rst(rst){{VEC_PORTS}},
        .cmd_valid(u_valid && free && to_vec), .cmd_ready(vec_cmd_ready),
        .cmd_op(r_op), .cmd_a(r_a), .cmd_b(r_b), .cmd_c(r_op == 8'd5 ? r_a : r_c),
        .cmd_d(r_op == 8'd1 ? ids_at : r_d), .cmd_n(vec_n), .cmd_count(r_count), .cmd_k(r_k),
        .cmd_position(u_position), .cmd_scale_m(r_scale_m[23:0]), .cmd_scale_e(r_scale_e),
        .cmd_add(r_flags[0]), .cmd_pass_rows(u_rows), .cmd_frac(residual_frac),
        .cmd_eps_m(eps_m[23:0]), .cmd_eps_e(eps_e),
        .done(vec_done), .error(vec_error), .error_row(vec_error_row), .saturated(vec_saturated)
    );
    {{ATTENTION}} attention (
        .clk(clk), .rst(rst){{ATT_PORTS}},
        .cmd_valid(u_valid && free && to_att), .cmd_ready(att_cmd_ready),
        .cmd_layer(r_layer), .cmd_q(r_a), .cmd_k(r_b), .cmd_v(r_d), .cmd_dst(r_c),
        .cmd_rows(u_rows), .cmd_position(u_position), .cmd_attention_at(attention_at),
        .cmd_max_seq_len(max_seq_len), .done(att_done), .error(att_error)
    );

    // ---- the memory ports ----
{{ARBITERS}}endmodule
`default_nettype wire

"#;

// ---- what a user takes to a board ------------------------------------------------

pub const CORE_FILE: &str = "tern_accelerator.core";
pub const KERNEL_XML: &str = "kernel.xml";
pub const REGMAP_MARKDOWN: &str = "regmap.md";
pub const REGMAP_JSON: &str = "regmap.json";
/// The one top's VLNV name; `top::package::core_version` completes it.
pub const CORE_NAME: &str = "tern:accelerator:tern_accelerator";

/// Everything `tern verilog --one-top` writes: the Verilog, Verilator's waivers, the
/// register map (Markdown and JSON), the FuseSoC core and the Vitis kernel description.
pub fn accelerator_package(
    shape: &AcceleratorShape,
) -> Result<Vec<(String, String)>, AcceleratorError> {
    use crate::top::package::{core_version, fusesoc_core, kernel_arg, kernel_xml_text};
    let v = accelerator_verilog(shape)?;
    let vlnv = format!("{CORE_NAME}:{}", core_version());
    let names: Vec<&str> = v.files.iter().map(|(n, _)| n.as_str()).collect();
    let core = fusesoc_core(
        &vlnv,
        "the one top (docs/accelerator.md).",
        &format!(
            "tern one-top accelerator, a whole BitNet token a pass, {} memory ports",
            shape.ports()
        ),
        &names,
        shell::SHELL_MODULE,
    );
    let masters: Vec<(String, usize)> =
        (0..shape.ports()).map(|q| (format!("m{q}"), 128)).collect();
    let args = format!(
        "{}{}",
        kernel_arg("program", 0, "m0", true, shell::PROGRAM),
        kernel_arg("position", 1, "s_axi_control", false, shell::POSITION)
    );
    let kernel = kernel_xml_text(shell::SHELL_MODULE, &vlnv, &masters, &args);
    let mut files = v.files;
    files.extend([
        (crate::emit::WAIVER_FILE.to_string(), crate::emit::waivers()),
        (REGMAP_MARKDOWN.to_string(), shell::markdown()),
        (REGMAP_JSON.to_string(), shell::json()),
        (CORE_FILE.to_string(), core),
        (KERNEL_XML.to_string(), kernel),
    ]);
    Ok(files)
}
