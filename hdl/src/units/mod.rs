//! The one top's units: an engine with its memory side, running one command of the
//! program (docs/program.md) on the board's memory ports (docs/memory_ports.md).
//!
//! - `tern_lm_head_unit` ([`lm_head`]) runs `LmHead`;
//! - `tern_matmul_unit` ([`matmul`]) runs `Matmul`: the TLMM engine over a matrix cut
//!   into tiles, its weights streamed from memory, K tiles summed on the fabric.

pub mod lm_head;
pub mod matmul;

pub use lm_head::*;
pub use matmul::*;

/// How a unit's two stripe readers reach the board's read ports: reader A on every
/// port, reader B (one port) beside it on port 0 through a read arbiter. The Verilog
/// pieces a unit's template takes: its port list, the wires, reader A's and reader B's
/// port connections and the arbiter.
pub(crate) struct ReaderWiring {
    pub ports_io: String,
    pub wires: String,
    pub a_ports: String,
    pub b_ports: String,
    pub arbiters: String,
}

impl ReaderWiring {
    pub(crate) fn of(p: usize) -> ReaderWiring {
        let mut w = ReaderWiring {
            ports_io: String::new(),
            wires: String::new(),
            a_ports: String::new(),
            b_ports: String::new(),
            arbiters: String::new(),
        };
        const SIGS: [(&str, usize); 9] = [
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
        for q in 0..p {
            w.ports_io.push_str(&format!(
                "    output wire         m{q}_arvalid,\n    input  wire         m{q}_arready,\n    \
                 output wire [63:0]  m{q}_araddr,\n    output wire [7:0]   m{q}_arlen,\n    \
                 input  wire         m{q}_rvalid,\n    output wire         m{q}_rready,\n    \
                 input  wire [127:0] m{q}_rdata,\n    input  wire [1:0]   m{q}_rresp,\n    \
                 input  wire         m{q}_rlast,\n"
            ));
            if q > 0 {
                // Reader A alone on the other ports.
                for (sig, _) in SIGS {
                    w.a_ports
                        .push_str(&format!(",\n        .m{q}_{sig}(m{q}_{sig})"));
                }
                continue;
            }
            // Port 0: reader A and reader B through an arbiter.
            let mut arb =
                String::from("    tern_read_arbiter arbiter0 (\n        .clk(clk), .rst(rst)");
            for (sig, width) in SIGS {
                for r in ["a", "b"] {
                    w.wires.push_str(&if width == 1 {
                        format!("    wire {r}_{sig}_0;\n")
                    } else {
                        format!("    wire [{}:0] {r}_{sig}_0;\n", width - 1)
                    });
                }
                w.a_ports
                    .push_str(&format!(",\n        .m0_{sig}(a_{sig}_0)"));
                w.b_ports
                    .push_str(&format!(",\n        .m0_{sig}(b_{sig}_0)"));
                arb.push_str(&format!(
                    ",\n        .s0_{sig}(a_{sig}_0), .s1_{sig}(b_{sig}_0)"
                ));
            }
            for (sig, _) in SIGS {
                arb.push_str(&format!(",\n        .m_{sig}(m0_{sig})"));
            }
            arb.push_str("\n    );\n");
            w.arbiters.push_str(&arb);
        }
        w
    }
}
