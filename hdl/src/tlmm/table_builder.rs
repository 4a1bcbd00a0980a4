//! `TableBuilder`: the online table precompute of one chunk. For each lane group `l`
//! of `g` activations it forms every sign-folded partial sum `Σ d_j(i)·x[l·g + j]`
//! (index `i` = 1..E, digits per [`crate::weights::pattern`]); entry 0 is always zero
//! and is not built. Combinational: the engine registers the result in table memory.

use rust_hdl::core::ast::VerilogExpression;
use rust_hdl::prelude::*;

use crate::memory::signals;
use crate::netlist::{add, assign, elem, sub};
use crate::weights::{pattern, table_entries};

#[derive(LogicBlock)]
pub struct TableBuilder<const SW: usize> {
    /// `lanes · g` activations of the chunk, int8.
    pub activation: Vec<Signal<In, Bits<8>>>,
    /// `lanes · (E − 1)` entries, entry `i` of lane group `l` at `l·(E−1) + i − 1`.
    pub entry: Vec<Signal<Out, Bits<SW>>>,
    _group: usize,
}

impl<const SW: usize> TableBuilder<SW> {
    pub fn new(lanes: usize, group: usize) -> Self {
        TableBuilder {
            activation: signals(lanes * group),
            entry: signals(lanes * (table_entries(group) - 1)),
            _group: group,
        }
    }

    /// (entry slot, [(activation slot, digit)]) for every stored entry.
    fn terms(&self) -> Vec<(usize, Vec<(usize, i8)>)> {
        let g = self._group;
        let stored = table_entries(g) - 1;
        let lanes = self.activation.len() / g;
        let mut out = Vec::with_capacity(lanes * stored);
        for l in 0..lanes {
            for i in 1..=stored {
                let digits = pattern(g, i)
                    .into_iter()
                    .enumerate()
                    .filter(|&(_, d)| d != 0)
                    .map(|(j, d)| (l * g + j, d))
                    .collect();
                out.push((l * stored + i - 1, digits));
            }
        }
        out
    }
}

impl<const SW: usize> Logic for TableBuilder<SW> {
    fn update(&mut self) {
        for (slot, digits) in self.terms() {
            let sum: i64 = digits
                .iter()
                .map(|&(a, d)| {
                    i64::from(d) * i64::from(self.activation[a].val().to_u64() as u8 as i8)
                })
                .sum();
            self.entry[slot].next = Bits::from((sum as u64) & ((1u64 << SW) - 1));
        }
    }

    fn connect(&mut self) {
        for e in &mut self.entry {
            e.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        // Every operand is $signed, so Verilog sign-extends each to the entry width.
        let signed = |a| VerilogExpression::Signed(Box::new(elem("activation", a)));
        let body = self
            .terms()
            .into_iter()
            .map(|(slot, digits)| {
                let mut terms = digits.into_iter();
                let (a0, d0) = terms.next().expect("entry 0 is never built");
                let first = if d0 > 0 {
                    signed(a0)
                } else {
                    VerilogExpression::Unary(
                        rust_hdl::core::ast::VerilogOpUnary::Neg,
                        Box::new(signed(a0)),
                    )
                };
                let sum = terms.fold(first, |acc, (a, d)| {
                    if d > 0 {
                        add(acc, signed(a))
                    } else {
                        sub(acc, signed(a))
                    }
                });
                assign(elem("entry", slot), sum)
            })
            .collect();
        Verilog::Combinatorial(body)
    }
}
