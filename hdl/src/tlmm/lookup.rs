//! `LookupArray`: P rows × L lanes. Lane `k = p·L + l` selects entry `index` of lane
//! group `l`'s table (0 for index 0), negates it when `sign` is set, and each row sums
//! its L lane values in a balanced adder tree, sign-extended to the accumulator width.

use rust_hdl::core::ast::{VerilogExpression, VerilogOpUnary};
use rust_hdl::prelude::*;

use crate::memory::signals;
use crate::netlist::{assign, balanced_sum, case, elem, if_else, lit};
use crate::streams::sign_extend;

#[derive(LogicBlock)]
pub struct LookupArray<const SW: usize, const LW: usize, const IW: usize, const ACC: usize> {
    /// The chunk's stored entries (see `TableBuilder::entry`).
    pub table: Vec<Signal<In, Bits<SW>>>,
    pub sign: Vec<Signal<In, Bits<1>>>,
    pub index: Vec<Signal<In, Bits<IW>>>,
    pub row_sum: Vec<Signal<Out, Bits<ACC>>>,
    /// Signed lane values, `LW` bits (wide enough for the negated entry).
    lane: Vec<Signal<Local, Bits<LW>>>,
    _lanes_per_row: usize,
    _stored: usize,
}

impl<const SW: usize, const LW: usize, const IW: usize, const ACC: usize>
    LookupArray<SW, LW, IW, ACC>
{
    pub fn new(rows: usize, lanes_per_row: usize, table_entries: usize) -> Self {
        let lanes = rows * lanes_per_row;
        let stored = table_entries - 1;
        LookupArray {
            table: signals(lanes_per_row * stored),
            sign: signals(lanes),
            index: signals(lanes),
            row_sum: signals(rows),
            lane: signals(lanes),
            _lanes_per_row: lanes_per_row,
            _stored: stored,
        }
    }
}

impl<const SW: usize, const LW: usize, const IW: usize, const ACC: usize> Logic
    for LookupArray<SW, LW, IW, ACC>
{
    fn update(&mut self) {
        let lanes_per_row = self._lanes_per_row;
        for (p, row) in self.row_sum.iter_mut().enumerate() {
            let mut sum: i64 = 0;
            for l in 0..lanes_per_row {
                let k = p * lanes_per_row + l;
                let index = self.index[k].val().index();
                let entry = if index == 0 || index > self._stored {
                    0
                } else {
                    sign_extend(self.table[l * self._stored + index - 1].val().to_u64(), SW)
                };
                sum += if self.sign[k].val().any() {
                    -entry
                } else {
                    entry
                };
            }
            row.next = Bits::from((sum as u64) & (u64::MAX >> (64 - ACC)));
        }
    }

    fn connect(&mut self) {
        for r in &mut self.row_sum {
            r.connect();
        }
        for l in &mut self.lane {
            l.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let lanes_per_row = self._lanes_per_row;
        let signed = |e| VerilogExpression::Signed(Box::new(e));
        let mut body = vec![];
        for k in 0..self.lane.len() {
            let l = k % lanes_per_row;
            let arms = (1..=self._stored)
                .map(|i| {
                    let entry = signed(elem("table", l * self._stored + i - 1));
                    let negated =
                        VerilogExpression::Unary(VerilogOpUnary::Neg, Box::new(entry.clone()));
                    (
                        i as u64,
                        vec![if_else(
                            elem("sign", k),
                            vec![assign(elem("lane", k), negated)],
                            vec![assign(elem("lane", k), entry)],
                        )],
                    )
                })
                .collect();
            body.push(case(
                elem("index", k),
                IW,
                arms,
                vec![assign(elem("lane", k), lit::<LW>(0))],
            ));
        }
        for p in 0..self.row_sum.len() {
            let terms = (0..lanes_per_row)
                .map(|l| signed(elem("lane", p * lanes_per_row + l)))
                .collect();
            body.push(assign(elem("row_sum", p), balanced_sum(terms)));
        }
        Verilog::Combinatorial(body)
    }
}
