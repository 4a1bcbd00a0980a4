//! `TableBuilder`: the online table precompute of one chunk of one token. For each lane
//! group `l` of `g` activations, entry `i` of its folded table is `Σ d_j(i)·x[l·g + j]`
//! (digits per [`crate::weights::pattern`]; entry 0 is 0).
//!
//! Two forms, one per kind of table storage:
//! - **sequential** (per-lane LUT-RAM copies, which take one write per clock): on
//!   `load` it registers the activations, then walks the table in index order, one
//!   entry per clock (`busy`, `step` = the index being written, `last` on the final
//!   entry). Entry `i+1` is entry `i` plus `x[k] − 2·Σ_{j<k} x[j]`, `k` the digit that
//!   increments ([`crate::weights::incremented_digit`]): one adder and a G-way select
//!   per lane group instead of a parallel adder per entry. The select is registered a
//!   step ahead, so the digit sequence is one small ROM, not a copy per lane group.
//! - **parallel** (one shared copy per lane group): every stored entry (1..E) at once,
//!   combinationally from `activation`; the engine writes the whole table in one clock.
//!   For the adder tree (g = 1) the only entry is the activation itself.

use rust_hdl::prelude::*;
use std::fmt::Write as _;

use super::text::sext;
use crate::memory::signals;
use crate::weights::{entry_bits, incremented_digit, pattern, table_entries};

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
    pub step: Signal<Out, Bits<8>>,
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
            step: Default::default(),
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
        let mut v = String::new();
        writeln!(
            v,
            "// Sequential table builder: {} lane groups of {g}, {e} entries, {sw}-bit entries.",
            self._lanes
        )
        .unwrap();
        for a in 0..self.activation.len() {
            writeln!(v, "reg [7:0] x{a};").unwrap();
        }
        writeln!(v, "reg busy_r;\nreg [7:0] step_r;\nreg [{}:0] sel;", g - 1).unwrap();
        for l in 0..self._lanes {
            writeln!(v, "reg [{}:0] e{l};", sw - 1).unwrap();
            // d{l}_{k} = x[k] − 2·Σ_{j<k} x[j], modulo 2^sw (entries fit; steps wrap).
            for k in 0..g {
                let xk = sext(&format!("x{}", l * g + k), 8, sw);
                let mut expr = xk;
                for j in 0..k {
                    // 2·x[j] in sw bits: x[j] sign-extended to sw − 1 bits, shifted.
                    let xj = sext(&format!("x{}", l * g + j), 8, sw - 1);
                    write!(expr, " - {{{xj}, 1'b0}}").unwrap();
                }
                writeln!(v, "wire [{}:0] d{l}_{k} = {expr};", sw - 1).unwrap();
            }
            let pick = (0..g)
                .map(|k| format!("({{{sw}{{sel[{k}]}}}} & d{l}_{k})"))
                .collect::<Vec<_>>()
                .join(" | ");
            writeln!(v, "wire [{}:0] delta{l} = {pick};", sw - 1).unwrap();
            writeln!(v, "assign entry${l} = {};", sext(&format!("e{l}"), sw, 16)).unwrap();
        }
        // The digit that increments after step s+1 (registered one step ahead).
        writeln!(
            v,
            "reg [{}:0] next_sel;\nalways @(*) begin\n    case (step_r)",
            g - 1
        )
        .unwrap();
        for s in 0..e.saturating_sub(1) {
            let k = incremented_digit(g, s + 1).min(g - 1);
            writeln!(v, "        8'd{s}: next_sel = {g}'d{};", 1u64 << k).unwrap();
        }
        writeln!(v, "        default: next_sel = {g}'d1;\n    endcase\nend").unwrap();
        writeln!(v, "always @(posedge clock) begin\n    if (reset) begin\n        busy_r <= 1'b0;\n    end else if (load) begin\n        busy_r <= 1'b1;\n        step_r <= 8'd0;\n        sel <= {g}'d{};", 1u64 << incremented_digit(g, 0)).unwrap();
        for a in 0..self.activation.len() {
            writeln!(v, "        x{a} <= activation${a};").unwrap();
        }
        for l in 0..self._lanes {
            writeln!(v, "        e{l} <= {sw}'d0;").unwrap();
        }
        writeln!(v, "    end else if (busy_r) begin\n        step_r <= step_r + 8'd1;\n        sel <= next_sel;\n        if (step_r == 8'd{}) busy_r <= 1'b0;", e - 1).unwrap();
        for l in 0..self._lanes {
            writeln!(v, "        e{l} <= e{l} + delta{l};").unwrap();
        }
        writeln!(v, "    end\nend").unwrap();
        writeln!(
            v,
            "assign busy = busy_r;\nassign last = busy_r & (step_r == 8'd{});\nassign step = step_r;",
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
            "assign busy = 1'b0;\nassign last = 1'b0;\nassign step = 8'd0;"
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
            for l in 0..self._lanes {
                let v = self.entry_value(&self._x, l, step);
                self.entry[l].next = to16(v);
            }
            self.busy.next = self._busy;
            self.last.next = self._busy && self._step == self.entries() - 1;
            self.step.next = Bits::from((self._step & 0xFF) as u64);
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
            self.step.next = 0.into();
        }
    }

    fn connect(&mut self) {
        for e in &mut self.entry {
            e.connect();
        }
        self.busy.connect();
        self.last.connect();
        self.step.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(if self._sequential {
            self.sequential_verilog()
        } else {
            self.parallel_verilog()
        })
    }
}
