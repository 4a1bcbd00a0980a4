//! Builders for rust-hdl's Verilog AST.
//!
//! `#[hdl_gen]` unrolls loops, but an index path may hold only one `[i]` and its index
//! may only use loop variables, so it cannot describe a P×L lane array whose shape is
//! read from the config at run time. The leaves with that shape (table builder, lookup
//! array, memories) build the same AST the macro would, with these helpers; their
//! `update()` is the rust-hdl simulation of the same logic, and both are checked
//! against the golden model (Verilator for the AST, rust-hdl's simulator for `update`).

use rust_hdl::core::ast::{
    VerilogBlock, VerilogBlockOrConditional, VerilogCase, VerilogConditional, VerilogExpression,
    VerilogMatch, VerilogOp, VerilogStatement,
};
use rust_hdl::prelude::Bits;

pub type Expr = VerilogExpression;
pub type Stmt = VerilogStatement;

/// A signal of this block: `name` for a scalar, `name$i` for element `i` of a `Vec`.
pub fn sig(name: &str) -> Expr {
    Expr::Signal(name.to_string())
}

pub fn elem(name: &str, i: usize) -> Expr {
    Expr::Signal(format!("{name}${i}"))
}

/// A sized literal.
pub fn lit<const N: usize>(value: u64) -> Expr {
    Expr::Literal(Bits::<N>::from(value).into())
}

fn bin(a: Expr, op: VerilogOp, b: Expr) -> Expr {
    Expr::Paren(Box::new(Expr::Binary(Box::new(a), op, Box::new(b))))
}

pub fn add(a: Expr, b: Expr) -> Expr {
    bin(a, VerilogOp::Add, b)
}

pub fn sub(a: Expr, b: Expr) -> Expr {
    bin(a, VerilogOp::Sub, b)
}

pub fn xor(a: Expr, b: Expr) -> Expr {
    bin(a, VerilogOp::BitXor, b)
}

/// `value` (a `from`-bit two's-complement signal) sign-extended to the `N`-bit
/// context it is used in: `(zext(v) ^ 2^(from−1)) − 2^(from−1)`, exact mod 2^N.
pub fn sign_extended<const N: usize>(value: Expr, from: usize) -> Expr {
    let msb = 1u64 << (from - 1);
    sub(xor(value, lit::<N>(msb)), lit::<N>(msb))
}

pub fn assign(target: Expr, value: Expr) -> Stmt {
    Stmt::Assignment(target, value)
}

pub fn if_else(test: Expr, then: VerilogBlock, otherwise: VerilogBlock) -> Stmt {
    Stmt::If(VerilogConditional {
        test,
        then,
        otherwise: if otherwise.is_empty() {
            VerilogBlockOrConditional::None
        } else {
            VerilogBlockOrConditional::Block(otherwise)
        },
    })
}

/// `case (test) value: body ... default: default_body endcase`, values as `W'dN`.
pub fn case(
    test: Expr,
    width: usize,
    arms: Vec<(u64, VerilogBlock)>,
    default: VerilogBlock,
) -> Stmt {
    let mut cases: Vec<VerilogCase> = arms
        .into_iter()
        .map(|(value, block)| VerilogCase {
            condition: format!("{width}'d{value}"),
            block,
        })
        .collect();
    cases.push(VerilogCase {
        condition: "default".into(),
        block: default,
    });
    Stmt::Match(VerilogMatch { test, cases })
}

pub fn mul(a: Expr, b: Expr) -> Expr {
    bin(a, VerilogOp::Mul, b)
}

/// `a > b` with both sides read as two's complement (`$signed`).
pub fn signed_gt(a: Expr, b: Expr) -> Expr {
    bin(signed(a), VerilogOp::Gt, signed(b))
}

pub fn signed_lt(a: Expr, b: Expr) -> Expr {
    bin(signed(a), VerilogOp::Lt, signed(b))
}

/// `a > b`, unsigned.
pub fn gt(a: Expr, b: Expr) -> Expr {
    bin(a, VerilogOp::Gt, b)
}

pub fn signed(e: Expr) -> Expr {
    Expr::Signed(Box::new(e))
}

/// `signal[offset +: width]` (a part-select of a named signal, never of an expression).
pub fn slice(signal: &str, width: usize, offset: usize) -> Expr {
    Expr::Slice(
        Box::new(sig(signal)),
        width,
        Box::new(Expr::Literal((offset as u32).into())),
    )
}

/// `signal[offset +: width] = value;`
pub fn assign_slice(signal: &str, width: usize, offset: usize, value: Expr) -> Stmt {
    Stmt::SliceAssignment {
        base: sig(signal),
        width,
        offset: Expr::Literal((offset as u32).into()),
        replacement: value,
    }
}

/// A sized literal wider than 64 bits.
pub fn wide_lit<const N: usize>(value: u128) -> Expr {
    let v = rust_hdl::prelude::Bits::<N>::from(num_bigint::BigUint::from(value));
    Expr::Literal(v.into())
}

/// Sum `terms` pairwise so the adder depth is ⌈log2 n⌉.
pub fn balanced_sum(mut terms: Vec<Expr>) -> Expr {
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut it = terms.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => add(a, b),
                None => a,
            });
        }
        terms = next;
    }
    terms.pop().expect("at least one term")
}
