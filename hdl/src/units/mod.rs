//! The one top's units: an engine with its memory side, running one command of the
//! program (docs/program.md) on the board's memory ports (docs/memory_ports.md).
//!
//! - `tern_lm_head_unit` ([`lm_head`]) runs `LmHead`;
//! - `tern_matmul_unit` ([`matmul`]) runs `Matmul`: the TLMM engine over a matrix cut
//!   into tiles, its weights streamed from memory, K tiles summed on the fabric;
//! - `tern_vector_unit` ([`vector_unit`]) runs the element-wise commands row after row
//!   (`Embed`, `NormQuant`, `Dequant`, `ToInt8`, `Relu2Mul`, `Rope`);
//! - `tern_attention_unit` ([`attention`]) runs `Attention`: the attention engine over
//!   KV caches in memory, a layer's units from its record.

pub mod attention;
pub mod lm_head;
pub mod matmul;
pub mod vector_unit;

pub use attention::*;
pub use lm_head::*;
pub use matmul::*;
pub use vector_unit::*;

/// How a unit's two stripe readers reach the board's read ports: reader A on every
/// port, reader B (one port) beside it on port 0 through a read arbiter ([`Self::of`]);
/// or each one-port reader on a port of its own, A on port 0 and B on port 1
/// ([`Self::apart`]), so that two streams do not halve one port. The Verilog
/// pieces a unit's template takes: its port list, the wires, reader A's and reader B's
/// instances (modules `a_module`, `b_module`; each reader `x` driven by the unit's
/// `x_cmd_valid`, `x_cmd_addr`, `x_cmd_beats`, `x_ready` and driving `x_cmd_ready`,
/// `x_valid`, `x_data`, `x_beats`, `x_last`, `x_done`, `x_error`) and the arbiter.
pub(crate) struct ReaderWiring {
    pub ports_io: String,
    pub wires: String,
    pub reader_a: String,
    pub reader_b: String,
    pub arbiters: String,
    /// Reader A's port connections (for [`Self::reader_a_as`]).
    a_ports: String,
}

impl ReaderWiring {
    pub(crate) fn of(p: usize, a_module: &str, b_module: &str) -> ReaderWiring {
        let mut a_ports = String::new();
        let mut b_ports = String::new();
        let mut w = ReaderWiring {
            ports_io: String::new(),
            wires: String::new(),
            reader_a: String::new(),
            reader_b: String::new(),
            arbiters: String::new(),
            a_ports: String::new(),
        };
        for q in 0..p {
            w.ports_io.push_str(&read_port_io(q));
            if q > 0 {
                // Reader A alone on the other ports.
                for (sig, _) in READ_SIGS {
                    a_ports.push_str(&format!(",\n        .m{q}_{sig}(m{q}_{sig})"));
                }
                continue;
            }
            // Port 0: reader A and reader B through an arbiter.
            let mut arb =
                String::from("    tern_read_arbiter arbiter0 (\n        .clk(clk), .rst(rst)");
            for (sig, width) in READ_SIGS {
                for r in ["a", "b"] {
                    w.wires.push_str(&if width == 1 {
                        format!("    wire {r}_{sig}_0;\n")
                    } else {
                        format!("    wire [{}:0] {r}_{sig}_0;\n", width - 1)
                    });
                }
                a_ports.push_str(&format!(",\n        .m0_{sig}(a_{sig}_0)"));
                b_ports.push_str(&format!(",\n        .m0_{sig}(b_{sig}_0)"));
                arb.push_str(&format!(
                    ",\n        .s0_{sig}(a_{sig}_0), .s1_{sig}(b_{sig}_0)"
                ));
            }
            for (sig, _) in READ_SIGS {
                arb.push_str(&format!(",\n        .m_{sig}(m0_{sig})"));
            }
            arb.push_str("\n    );\n");
            w.arbiters.push_str(&arb);
        }
        w.reader_a = reader_instance("a", a_module, &a_ports);
        w.reader_b = reader_instance("b", b_module, &b_ports);
        w.a_ports = a_ports;
        w
    }

    /// One-port readers A and B on ports 0 and 1, no arbiter.
    pub(crate) fn apart(a_module: &str, b_module: &str) -> ReaderWiring {
        let (mut a_ports, mut b_ports) = (String::new(), String::new());
        for (sig, _) in READ_SIGS {
            a_ports.push_str(&format!(",\n        .m0_{sig}(m0_{sig})"));
            b_ports.push_str(&format!(",\n        .m0_{sig}(m1_{sig})"));
        }
        ReaderWiring {
            ports_io: format!("{}{}", read_port_io(0), read_port_io(1)),
            wires: String::new(),
            reader_a: reader_instance("a", a_module, &a_ports),
            reader_b: reader_instance("b", b_module, &b_ports),
            arbiters: String::new(),
            a_ports,
        }
    }

    /// Reader A on the same ports as `module`, driven by (and driving) the unit's
    /// signals `x_*` instead of `a_*`, with more connections `extra` (`,\n .name(wire)`).
    pub(crate) fn reader_a_as(&self, x: &str, module: &str, extra: &str) -> String {
        reader_instance(x, module, &format!("{}{extra}", self.a_ports))
    }
}

/// The unit's read port `q` in its port list.
fn read_port_io(q: usize) -> String {
    format!(
        "    output wire         m{q}_arvalid,\n    input  wire         m{q}_arready,\n    \
         output wire [63:0]  m{q}_araddr,\n    output wire [7:0]   m{q}_arlen,\n    \
         input  wire         m{q}_rvalid,\n    output wire         m{q}_rready,\n    \
         input  wire [127:0] m{q}_rdata,\n    input  wire [1:0]   m{q}_rresp,\n    \
         input  wire         m{q}_rlast,\n"
    )
}

/// A read port's signals and widths, as a reader names them.
const READ_SIGS: [(&str, usize); 9] = [
    ("arvalid", 1),
    ("arready", 1),
    ("araddr", 64),
    ("arlen", 8),
    ("rvalid", 1),
    ("rready", 1),
    ("rdata", 128),
    ("rresp", 2),
    ("rlast", 1),
];

/// Reader `x`'s instance of `module` with its port connections `ports`.
fn reader_instance(x: &str, module: &str, ports: &str) -> String {
    format!(
        "    {module} reader_{x} (\n        .clk(clk), .rst(rst),\n        \
         .cmd_valid({x}_cmd_valid), .cmd_ready({x}_cmd_ready), .cmd_addr({x}_cmd_addr), \
         .cmd_beats({x}_cmd_beats),\n        .out_valid({x}_valid), .out_ready({x}_ready), \
         .out_data({x}_data), .out_beats({x}_beats), .out_last({x}_last),\n        \
         .done({x}_done), .error({x}_error){ports}\n    );\n"
    )
}
