//! `RowTrees`: one adder tree per row over the row's L lane values, with the weights'
//! signs folded into the adders.
//!
//! A lane contributes `s ? −v : v`. A node carries a value `u` and the sign `σ` of its
//! leftmost lane and stands for `σ ? −u : u`; two nodes combine as
//! `u = u_a + (σ_a ⊕ σ_b ? −u_b : u_b)`, `σ = σ_a`. So no lane is ever negated: every
//! adder is an add/subtract on the carry chain (one LUT per bit), and the root's sign
//! is applied by the accumulator's add/subtract. A node over `n` weights is exactly
//! `8 + ceil(log2 n)` bits wide (its value lies in `[−128·n, 128·n − 1]`).
//!
//! Pairing is of adjacent nodes, an odd node passing up unchanged. A pipeline register
//! follows level `ℓ` (0 = lane values) when `(ℓ + 1)` is a multiple of
//! `tree_stage_levels`; the root's register is the accumulators' input stage. Every
//! register moves on `advance` (the engine's one stall signal); the beat's metadata
//! (`valid`, `first`, `last`, `acc_addr`) travels beside the values.

use rust_hdl::prelude::*;
use std::fmt::Write as _;

use super::text::{add_sub, sext};
use crate::config::Geometry;
use crate::memory::signals;

#[derive(LogicBlock)]
pub struct RowTrees {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub advance: Signal<In, Bit>,
    /// Lane values (sign-extended) and signs, lane `p·L + l`.
    pub lane: Vec<Signal<In, Bits<16>>>,
    pub sign: Vec<Signal<In, Bits<1>>>,
    /// Adder tree only: the lane's weight is nonzero. The lane-value register is reset
    /// when it is not, which a flip-flop's synchronous reset does for free (written
    /// with the reset over the enable, the form Xilinx's FDRE has).
    pub nonzero: Vec<Signal<In, Bit>>,
    pub valid: Signal<In, Bit>,
    pub first: Signal<In, Bit>,
    pub last: Signal<In, Bit>,
    pub acc_addr: Signal<In, Bits<16>>,
    /// Each row's root value (sign-extended) and sign, from the last pipeline register.
    pub root: Vec<Signal<Out, Bits<32>>>,
    pub root_sign: Vec<Signal<Out, Bits<1>>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_first: Signal<Out, Bit>,
    pub out_last: Signal<Out, Bit>,
    pub out_acc_addr: Signal<Out, Bits<16>>,
    _geo: Geometry,
    _stages: Vec<Stage>,
}

/// One pipeline register's contents in the rust-hdl model.
#[derive(Clone, Debug, Default)]
struct Stage {
    valid: bool,
    first: bool,
    last: bool,
    addr: u64,
    /// Per row, the nodes at this register's level: (value, sign of leftmost lane).
    rows: Vec<Vec<(i64, bool)>>,
}

/// Combine adjacent nodes one level up.
fn fold_level(nodes: &[(i64, bool)]) -> Vec<(i64, bool)> {
    nodes
        .chunks(2)
        .map(|pair| match pair {
            [(ua, sa), (ub, sb)] => (ua + if sa != sb { -ub } else { *ub }, *sa),
            [single] => *single,
            _ => unreachable!(),
        })
        .collect()
}

impl RowTrees {
    pub fn new(geo: &Geometry) -> Self {
        RowTrees {
            clock: Default::default(),
            reset: Default::default(),
            advance: Default::default(),
            lane: signals(geo.lanes()),
            sign: signals(geo.lanes()),
            nonzero: signals(geo.lanes()),
            valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            acc_addr: Default::default(),
            root: signals(geo.rows),
            root_sign: signals(geo.rows),
            out_valid: Default::default(),
            out_first: Default::default(),
            out_last: Default::default(),
            out_acc_addr: Default::default(),
            _stages: vec![Stage::default(); geo.tree_registers()],
            _geo: *geo,
        }
    }

    /// The tree levels followed by a register.
    fn register_levels(&self) -> Vec<usize> {
        (0..self._geo.tree_levels)
            .filter(|&l| self._geo.register_after_level(l))
            .collect()
    }

    fn verilog(&self) -> String {
        let geo = &self._geo;
        let lanes = geo.lanes_per_row;
        let mut v = String::new();
        writeln!(
            v,
            "// Sign-folded row trees: {} rows x {lanes} lanes, {} levels, registers after levels {:?}.",
            geo.rows,
            geo.tree_levels,
            self.register_levels()
        )
        .unwrap();
        // Metadata pipeline: one register set per tree register.
        let mut meta = ["valid", "first", "last", "acc_addr"].map(String::from);
        for s in 0..self.register_levels().len() {
            writeln!(
                v,
                "reg m{s}_valid, m{s}_first, m{s}_last;\nreg [15:0] m{s}_addr;"
            )
            .unwrap();
            writeln!(
                v,
                "always @(posedge clock) begin\n    if (reset) m{s}_valid <= 1'b0;\n    else if (advance) begin\n        \
                 m{s}_valid <= {};\n        m{s}_first <= {};\n        m{s}_last <= {};\n        m{s}_addr <= {};\n    end\nend",
                meta[0], meta[1], meta[2], meta[3]
            )
            .unwrap();
            meta = ["valid", "first", "last", "addr"].map(|f| format!("m{s}_{f}"));
        }
        writeln!(
            v,
            "assign out_valid = {};\nassign out_first = {};\nassign out_last = {};\nassign out_acc_addr = {};",
            meta[0], meta[1], meta[2], meta[3]
        )
        .unwrap();

        for p in 0..geo.rows {
            // (name, width, lanes covered, sign name)
            let mut nodes: Vec<(String, usize, usize, String)> = (0..lanes)
                .map(|l| {
                    let k = p * lanes + l;
                    let w = geo.node_bits(1);
                    (format!("lane${k}[{}:0]", w - 1), w, 1, format!("sign${k}"))
                })
                .collect();
            for level in 0..=geo.tree_levels {
                if level > 0 {
                    let mut next = vec![];
                    for (j, pair) in nodes.chunks(2).enumerate() {
                        if let [a, b] = pair {
                            let covered = a.2 + b.2;
                            let w = geo.node_bits(covered);
                            let name = format!("n{p}_{level}_{j}");
                            let (ea, eb) = (format!("{name}_a"), format!("{name}_b"));
                            writeln!(
                                v,
                                "wire [{}:0] {ea} = {};\nwire [{}:0] {eb} = {};\nwire {name}_d = {} ^ {};",
                                w - 1,
                                sext_any(&a.0, a.1, w),
                                w - 1,
                                sext_any(&b.0, b.1, w),
                                a.3,
                                b.3
                            )
                            .unwrap();
                            add_sub(&mut v, &name, w, &ea, &eb, &format!("{name}_d"));
                            next.push((name, w, covered, a.3.clone()));
                        } else {
                            next.push(pair[0].clone());
                        }
                    }
                    nodes = next;
                }
                if geo.register_after_level(level) {
                    let mut next = vec![];
                    for (j, (name, w, covered, sign)) in nodes.into_iter().enumerate() {
                        let r = format!("r{p}_{level}_{j}");
                        let zero = if level == 0 && geo.lane_group == 1 {
                            let k = p * lanes + j;
                            format!("if (advance & ~nonzero${k}) {r} <= {w}'d0;\n    else ")
                        } else {
                            "    ".to_string()
                        };
                        writeln!(
                            v,
                            "reg [{}:0] {r};\nreg {r}_s;\nalways @(posedge clock) begin\n    {zero}if (advance) {r} <= {name};\nend\n\
                             always @(posedge clock) begin\n    if (advance) {r}_s <= {sign};\nend",
                            w - 1
                        )
                        .unwrap();
                        next.push((r.clone(), w, covered, format!("{r}_s")));
                    }
                    nodes = next;
                }
            }
            let (root, w, _, sign) = &nodes[0];
            let root_name = format!("root_{p}");
            writeln!(v, "wire [{}:0] {root_name} = {root};", w - 1).unwrap();
            writeln!(
                v,
                "assign root${p} = {};\nassign root_sign${p} = {sign};",
                sext(&root_name, *w, 32)
            )
            .unwrap();
        }
        v
    }

    /// The lanes' nodes of every row, from the input ports.
    fn input_rows(&self) -> Vec<Vec<(i64, bool)>> {
        let geo = &self._geo;
        let lanes = geo.lanes_per_row;
        (0..geo.rows)
            .map(|p| {
                (0..lanes)
                    .map(|l| {
                        let k = p * lanes + l;
                        let value = crate::streams::sign_extend(self.lane[k].val().to_u64(), 16);
                        let zero = geo.lane_group == 1 && !self.nonzero[k].val();
                        (if zero { 0 } else { value }, self.sign[k].val().any())
                    })
                    .collect()
            })
            .collect()
    }
}

/// Sign-extend a node expression; a port slice `lane$k[w-1:0]` is already a name.
fn sext_any(expr: &str, from: usize, to: usize) -> String {
    if from == to {
        expr.to_string()
    } else if let Some(base) = expr.strip_suffix(&format!("[{}:0]", from - 1)) {
        // Re-slice the port rather than index a part-select.
        format!(
            "{{{{{}{{{base}[{}]}}}}, {base}[{}:0]}}",
            to - from,
            from - 1,
            from - 1
        )
    } else {
        sext(expr, from, to)
    }
}

impl Logic for RowTrees {
    fn update(&mut self) {
        let levels = self.register_levels();
        let fold_to = |rows: &[Vec<(i64, bool)>], from: usize, to: usize| {
            rows.iter()
                .map(|nodes| {
                    let mut n = nodes.clone();
                    for _ in from..to {
                        n = fold_level(&n);
                    }
                    n
                })
                .collect::<Vec<_>>()
        };
        if self.clock.pos_edge() {
            if self.reset.val() {
                for s in &mut self._stages {
                    s.valid = false;
                }
            } else if self.advance.val() {
                let mut incoming = Stage {
                    valid: self.valid.val(),
                    first: self.first.val(),
                    last: self.last.val(),
                    addr: self.acc_addr.val().to_u64(),
                    rows: self.input_rows(),
                };
                let mut from = 0;
                for (s, &level) in levels.iter().enumerate() {
                    let rows = fold_to(&incoming.rows, from, level);
                    let held = std::mem::replace(&mut self._stages[s], Stage { rows, ..incoming });
                    incoming = held;
                    from = level;
                }
            }
        }
        let (meta, rows, from) = match (self._stages.last(), levels.last()) {
            (Some(s), Some(&level)) => ((s.valid, s.first, s.last, s.addr), s.rows.clone(), level),
            _ => (
                (
                    self.valid.val(),
                    self.first.val(),
                    self.last.val(),
                    self.acc_addr.val().to_u64(),
                ),
                self.input_rows(),
                0,
            ),
        };
        let roots = if rows.is_empty() {
            vec![vec![(0, false)]; self._geo.rows]
        } else {
            fold_to(&rows, from, self._geo.tree_levels)
        };
        for (p, nodes) in roots.iter().enumerate() {
            let (u, s) = nodes.first().copied().unwrap_or((0, false));
            self.root[p].next = Bits::from((u as u64) & 0xFFFF_FFFF);
            self.root_sign[p].next = s.into();
        }
        self.out_valid.next = meta.0;
        self.out_first.next = meta.1;
        self.out_last.next = meta.2;
        self.out_acc_addr.next = Bits::from(meta.3);
    }

    fn connect(&mut self) {
        for r in &mut self.root {
            r.connect();
        }
        for s in &mut self.root_sign {
            s.connect();
        }
        self.out_valid.connect();
        self.out_first.connect();
        self.out_last.connect();
        self.out_acc_addr.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(self.verilog())
    }
}
