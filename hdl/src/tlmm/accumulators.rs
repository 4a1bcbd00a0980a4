//! `Accumulators`: the root register, the accumulator memory and the output register.
//!
//! The weights stream chunk by chunk (all row blocks of chunk 0, then of chunk 1, ...),
//! so a row's partial sum waits in memory between chunks: one word of P accumulators
//! per (row block, token), `acc_addr`, exactly `accumulator_internal_bits` wide. A beat
//! entering the root register reads its word (registered read, so block RAM serves);
//! one clock later `sum = (first ? 0 : word) ± root` is written back, or, on the last
//! chunk, goes to the output register as the result beat (sign-extended to the result
//! field). The engine keeps two accesses to one word at least two clocks apart, so the
//! read never misses the previous write. The output register is the engine's only
//! stall point: `advance = !out_valid | res_ready` moves every pipeline register.

use rust_hdl::prelude::*;
use std::fmt::Write as _;

use super::text::{add_sub, address_bits, buffer_style, field, sext};
use crate::config::Geometry;
use crate::memory::signals;
use crate::streams::sign_extend;

#[derive(LogicBlock)]
pub struct Accumulators<const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub advance: Signal<In, Bit>,
    pub res_ready: Signal<In, Bit>,
    pub root: Vec<Signal<In, Bits<32>>>,
    pub root_sign: Vec<Signal<In, Bits<1>>>,
    pub valid: Signal<In, Bit>,
    pub first: Signal<In, Bit>,
    pub last: Signal<In, Bit>,
    pub acc_addr: Signal<In, Bits<16>>,
    pub out_valid: Signal<Out, Bit>,
    pub result: Vec<Signal<Out, Bits<ACC>>>,
    _geo: Geometry,
    // rust-hdl model state
    _mem: Vec<Vec<i64>>,
    _word: Vec<i64>,
    _root: Vec<(i64, bool)>,
    _meta: (bool, bool, bool, usize),
    _out: Vec<i64>,
    _out_valid: bool,
}

impl<const ACC: usize> Accumulators<ACC> {
    pub fn new(geo: &Geometry) -> Self {
        assert_eq!(ACC, geo.accumulator_bits);
        let depth = geo.accumulator_memory_depth();
        Accumulators {
            clock: Default::default(),
            reset: Default::default(),
            advance: Default::default(),
            res_ready: Default::default(),
            root: signals(geo.rows),
            root_sign: signals(geo.rows),
            valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            acc_addr: Default::default(),
            out_valid: Default::default(),
            result: signals(geo.rows),
            _mem: vec![vec![0; geo.rows]; depth],
            _word: vec![0; geo.rows],
            _root: vec![(0, false); geo.rows],
            _meta: (false, false, false, 0),
            _out: vec![0; geo.rows],
            _out_valid: false,
            _geo: *geo,
        }
    }

    pub fn memory_bits(&self) -> usize {
        self._geo.accumulator_memory_bits()
    }

    fn verilog(&self) -> String {
        let geo = &self._geo;
        let p_rows = geo.rows;
        let aw = geo.accumulator_internal_bits;
        let rw = geo.root_bits();
        let depth = geo.accumulator_memory_depth();
        let ab = address_bits(depth);
        let mut v = String::new();
        writeln!(
            v,
            "// Accumulators: {p_rows} rows x {aw} bits, {depth} words (row block, token)."
        )
        .unwrap();
        writeln!(
            v,
            "reg rv, rl;\nreg [{}:0] ra;\nalways @(posedge clock) begin\n    if (reset) rv <= 1'b0;\n    \
             else if (advance) rv <= valid;\n    if (advance) begin\n        rl <= last;\n        \
             ra <= acc_addr[{}:0];\n    end\nend",
            ab - 1,
            ab - 1
        )
        .unwrap();
        // The first chunk reads 0: the read register's synchronous reset (free in a block
        // RAM's output register or a flip-flop), not a mask in front of the adder.
        writeln!(
            v,
            "(* ram_style = \"{}\" *) reg [{}:0] accmem [0:{}];\nreg [{}:0] word;\n\
             always @(posedge clock) begin\n    if (advance) begin\n        if (first) word <= {}'d0;\n        \
             else word <= accmem[acc_addr[{}:0]];\n    end\nend",
            buffer_style(depth),
            p_rows * aw - 1,
            depth - 1,
            p_rows * aw - 1,
            p_rows * aw,
            ab - 1
        )
        .unwrap();
        let mut sums = vec![];
        for p in 0..p_rows {
            writeln!(
                v,
                "reg [{}:0] rr{p};\nreg rs{p};\nalways @(posedge clock) begin\n    if (advance) begin\n        \
                 rr{p} <= root${p}[{}:0];\n        rs{p} <= root_sign${p};\n    end\nend",
                rw - 1,
                rw - 1
            )
            .unwrap();
            writeln!(
                v,
                "wire [{}:0] prev{p} = word{};\nwire [{}:0] inc{p} = {};",
                aw - 1,
                field(p, aw),
                aw - 1,
                sext(&format!("rr{p}"), rw, aw)
            )
            .unwrap();
            add_sub(
                &mut v,
                &format!("sum{p}"),
                aw,
                &format!("prev{p}"),
                &format!("inc{p}"),
                &format!("rs{p}"),
            );
            sums.push(format!("sum{p}"));
        }
        let concat: Vec<String> = sums.iter().rev().cloned().collect();
        writeln!(
            v,
            "always @(posedge clock) begin\n    if (advance & rv & ~rl) accmem[ra] <= {{{}}};\nend",
            concat.join(", ")
        )
        .unwrap();
        writeln!(v, "reg ov;").unwrap();
        for p in 0..p_rows {
            writeln!(
                v,
                "reg [{}:0] out{p};\nassign result${p} = out{p};",
                ACC - 1
            )
            .unwrap();
        }
        writeln!(
            v,
            "always @(posedge clock) begin\n    if (reset) ov <= 1'b0;\n    else begin\n        \
             if (ov & res_ready) ov <= 1'b0;\n        if (advance & rv & rl) ov <= 1'b1;\n    end\n    \
             if (advance & rv & rl) begin"
        )
        .unwrap();
        for (p, sum) in sums.iter().enumerate() {
            writeln!(v, "        out{p} <= {};", sext(sum, aw, ACC)).unwrap();
        }
        writeln!(v, "    end\nend\nassign out_valid = ov;").unwrap();
        v
    }
}

impl<const ACC: usize> Logic for Accumulators<ACC> {
    fn update(&mut self) {
        let geo = self._geo;
        if self.clock.pos_edge() {
            let advance = self.advance.val();
            let (rv, _, rl, ra) = self._meta;
            let sums: Vec<i64> = (0..geo.rows)
                .map(|p| {
                    let prev = self._word[p];
                    let (u, s) = self._root[p];
                    prev + if s { -u } else { u }
                })
                .collect();
            if self.reset.val() {
                self._out_valid = false;
            } else {
                if self._out_valid && self.res_ready.val() {
                    self._out_valid = false;
                }
                if advance && rv && rl {
                    self._out_valid = true;
                }
            }
            if advance && rv && rl {
                self._out = sums.clone();
            }
            if advance {
                // Read first: the incoming beat's word is read before this edge's write;
                // a first chunk reads zeros.
                let a = self.acc_addr.val().index() % self._mem.len();
                let word = if self.first.val() {
                    vec![0; geo.rows]
                } else {
                    self._mem[a].clone()
                };
                if rv && !rl {
                    self._mem[ra] = sums;
                }
                self._word = word;
                self._root = (0..geo.rows)
                    .map(|p| {
                        (
                            sign_extend(self.root[p].val().to_u64(), 32),
                            self.root_sign[p].val().any(),
                        )
                    })
                    .collect();
                self._meta = (
                    !self.reset.val() && self.valid.val(),
                    self.first.val(),
                    self.last.val(),
                    a,
                );
            } else if self.reset.val() {
                self._meta.0 = false;
            }
        }
        self.out_valid.next = self._out_valid;
        for (p, r) in self.result.iter_mut().enumerate() {
            r.next = Bits::from((self._out[p] as u64) & (u64::MAX >> (64 - ACC)));
        }
    }

    fn connect(&mut self) {
        self.out_valid.connect();
        for r in &mut self.result {
            r.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(self.verilog())
    }
}
