//! `TableBuilder`: the online table precompute of one chunk of one token. For each lane
//! group `l` of `g` activations, entry `i` of its folded table is `Σ d_j(i)·x[l·g + j]`
//! (digits per [`crate::weights::pattern`]; entry 0 is 0).
//!
//! Two forms, one per kind of table storage:
//! - **sequential** (per-lane LUT-RAM copies, which take one write per clock): on
//!   `load` it registers the activations, then walks the table one entry per clock
//!   (`busy`, `write_index` = the index being written, `last` on the final entry) in an
//!   order where each entry is the previous one plus or minus one activation
//!   ([`crate::weights::build_order`]): one add/subtract and a G-way select per lane
//!   group instead of a parallel adder per entry. The walk (index, digit, direction) is
//!   one small ROM registered a step ahead, shared by all lane groups.
//! - **parallel** (one shared copy per lane group): every stored entry (1..E) at once,
//!   combinationally from `activation`; the engine writes the whole table in one clock.
//!   For the adder tree (g = 1) the only entry is the activation itself.

use rust_hdl::prelude::*;
use std::fmt::Write as _;

use super::text::{add_sub, sext};
use crate::memory::signals;
use crate::weights::{build_order, entry_bits, pattern, table_entries};

#[derive(LogicBlock)]
pub struct TableBuilder {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// Sequential form: register `activation` and start a table (ignored otherwise).
    pub load: Signal<In, Bit>,
    /// The chunk's `lanes · g` activations, int8.
    pub activation: Vec<Signal<In, Bits<8>>>,
    /// Sequential: entry `step` of each lane group. Parallel: entry `i` (1..E) of lane
    /// group `l` at `l·(E−1) + i − 1`. Sign-extended to 16 bits.
    pub entry: Vec<Signal<Out, Bits<16>>>,
    pub busy: Signal<Out, Bit>,
    pub last: Signal<Out, Bit>,
    /// Sequential: the table index `entry` belongs to.
    pub write_index: Signal<Out, Bits<8>>,
    _sequential: bool,
    _group: usize,
    _lanes: usize,
    // Sequential form's state, for rust-hdl's simulator.
    _x: Vec<i64>,
    _busy: bool,
    _step: usize,
}

impl TableBuilder {
    pub fn new(lanes: usize, group: usize, sequential: bool) -> Self {
        let stored = table_entries(group) - 1;
        TableBuilder {
            clock: Default::default(),
            reset: Default::default(),
            load: Default::default(),
            activation: signals(lanes * group),
            entry: signals(if sequential { lanes } else { lanes * stored }),
            busy: Default::default(),
            last: Default::default(),
            write_index: Default::default(),
            _sequential: sequential,
            _group: group,
            _lanes: lanes,
            _x: vec![0; lanes * group],
            _busy: false,
            _step: 0,
        }
    }

    fn entries(&self) -> usize {
        table_entries(self._group)
    }

    /// Entry `index` of lane group `l` for activations `x`.
    fn entry_value(&self, x: &[i64], l: usize, index: usize) -> i64 {
        let g = self._group;
        pattern(g, index)
            .iter()
            .enumerate()
            .map(|(j, &d)| i64::from(d) * x[l * g + j])
            .sum()
    }

    fn sequential_verilog(&self) -> String {
        let g = self._group;
        let e = self.entries();
        let sw = entry_bits(g);
        let order = build_order(g);
        let kb = crate::bits::ceil_log2(g).max(1);
        let mut v = String::new();
        writeln!(
            v,
            "// Sequential table builder: {} lane groups of {g}, {e} entries of {sw} bits, one per clock.",
            self._lanes
        )
        .unwrap();
        for a in 0..self.activation.len() {
            writeln!(v, "reg [7:0] x{a};").unwrap();
        }
        // The walk: for the entry written now, its index and the step to the next one.
        writeln!(
            v,
            "reg busy_r;\nreg [7:0] step_r;\nreg [7:0] wi;\nreg [{}:0] ksel;\nreg down;",
            kb - 1
        )
        .unwrap();
        let rom = |s: usize| {
            let (index, step) = order[s];
            let (k, dir) = step.unwrap_or((0, 1));
            (index, k, u8::from(dir < 0))
        };
        writeln!(
            v,
            "reg [7:0] next_wi;\nreg [{}:0] next_ksel;\nreg next_down;\nalways @(*) begin\n    case (step_r)",
            kb - 1
        )
        .unwrap();
        for s in 0..e - 1 {
            let (index, k, down) = rom(s + 1);
            writeln!(
                v,
                "        8'd{s}: begin next_wi = 8'd{index}; next_ksel = {kb}'d{k}; next_down = 1'b{down}; end"
            )
            .unwrap();
        }
        writeln!(
            v,
            "        default: begin next_wi = 8'd0; next_ksel = {kb}'d0; next_down = 1'b0; end\n    endcase\nend"
        )
        .unwrap();
        for l in 0..self._lanes {
            writeln!(
                v,
                "reg [{}:0] e{l};\nreg [7:0] xs{l};\nalways @(*) begin\n    case (ksel)",
                sw - 1
            )
            .unwrap();
            for k in 0..g {
                writeln!(v, "        {kb}'d{k}: xs{l} = x{};", l * g + k).unwrap();
            }
            writeln!(v, "        default: xs{l} = x{};\n    endcase\nend", l * g).unwrap();
            writeln!(
                v,
                "wire [{}:0] xe{l} = {};",
                sw - 1,
                sext(&format!("xs{l}"), 8, sw)
            )
            .unwrap();
            add_sub(
                &mut v,
                &format!("n{l}"),
                sw,
                &format!("e{l}"),
                &format!("xe{l}"),
                "down",
            );
            writeln!(v, "assign entry${l} = {};", sext(&format!("e{l}"), sw, 16)).unwrap();
        }
        let (index0, k0, down0) = rom(0);
        writeln!(
            v,
            "always @(posedge clock) begin\n    if (reset) begin\n        busy_r <= 1'b0;\n    end else if (load) begin\n        \
             busy_r <= 1'b1;\n        step_r <= 8'd0;\n        wi <= 8'd{index0};\n        ksel <= {kb}'d{k0};\n        down <= 1'b{down0};"
        )
        .unwrap();
        for a in 0..self.activation.len() {
            writeln!(v, "        x{a} <= activation${a};").unwrap();
        }
        for l in 0..self._lanes {
            writeln!(v, "        e{l} <= {sw}'d0;").unwrap();
        }
        writeln!(
            v,
            "    end else if (busy_r) begin\n        step_r <= step_r + 8'd1;\n        wi <= next_wi;\n        \
             ksel <= next_ksel;\n        down <= next_down;\n        if (step_r == 8'd{}) busy_r <= 1'b0;",
            e - 1
        )
        .unwrap();
        for l in 0..self._lanes {
            writeln!(v, "        e{l} <= n{l};").unwrap();
        }
        writeln!(v, "    end\nend").unwrap();
        writeln!(
            v,
            "assign busy = busy_r;\nassign last = busy_r & (step_r == 8'd{});\nassign write_index = wi;",
            e - 1
        )
        .unwrap();
        v
    }

    fn parallel_verilog(&self) -> String {
        let g = self._group;
        let stored = self.entries() - 1;
        let mut v = String::new();
        writeln!(
            v,
            "// Parallel table builder: {} lane groups of {g}, {stored} stored entries each.",
            self._lanes
        )
        .unwrap();
        let sw = entry_bits(g);
        for l in 0..self._lanes {
            for i in 1..=stored {
                let terms: Vec<String> = pattern(g, i)
                    .iter()
                    .enumerate()
                    .filter(|&(_, &d)| d != 0)
                    .map(|(j, &d)| {
                        let x = sext(&format!("activation${}", l * g + j), 8, sw);
                        format!("{} {x}", if d > 0 { "+" } else { "-" })
                    })
                    .collect();
                let slot = l * stored + i - 1;
                writeln!(
                    v,
                    "wire [{}:0] t{slot} = {};",
                    sw - 1,
                    terms.join(" ").trim_start_matches("+ ")
                )
                .unwrap();
                writeln!(
                    v,
                    "assign entry${slot} = {};",
                    sext(&format!("t{slot}"), sw, 16)
                )
                .unwrap();
            }
        }
        writeln!(
            v,
            "assign busy = 1'b0;\nassign last = 1'b0;\nassign write_index = 8'd0;"
        )
        .unwrap();
        v
    }
}

fn to16(v: i64) -> Bits<16> {
    Bits::from((v as u64) & 0xFFFF)
}

impl Logic for TableBuilder {
    fn update(&mut self) {
        let x_now: Vec<i64> = self
            .activation
            .iter()
            .map(|a| i64::from(a.val().to_u64() as u8 as i8))
            .collect();
        if self._sequential {
            if self.clock.pos_edge() {
                if self.reset.val() {
                    self._busy = false;
                } else if self.load.val() {
                    self._x = x_now;
                    self._busy = true;
                    self._step = 0;
                } else if self._busy {
                    if self._step == self.entries() - 1 {
                        self._busy = false;
                    }
                    self._step += 1;
                }
            }
            // The model computes each entry from its digits, not by the RTL's steps.
            let step = self._step.min(self.entries() - 1);
            let index = build_order(self._group)[step].0;
            for l in 0..self._lanes {
                let v = self.entry_value(&self._x, l, index);
                self.entry[l].next = to16(v);
            }
            self.busy.next = self._busy;
            self.last.next = self._busy && self._step == self.entries() - 1;
            self.write_index.next = Bits::from(index as u64);
        } else {
            let stored = self.entries() - 1;
            for l in 0..self._lanes {
                for i in 1..=stored {
                    let v = self.entry_value(&x_now, l, i);
                    self.entry[l * stored + i - 1].next = to16(v);
                }
            }
            self.busy.next = false;
            self.last.next = false;
            self.write_index.next = 0.into();
        }
    }

    fn connect(&mut self) {
        for e in &mut self.entry {
            e.connect();
        }
        self.busy.connect();
        self.last.connect();
        self.write_index.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(if self._sequential {
            self.sequential_verilog()
        } else {
            self.parallel_verilog()
        })
    }
}
