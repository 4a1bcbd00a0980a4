//! Small helpers for the TLMM leaves whose Verilog is written as text: their widths
//! differ per node and per config, which rust-hdl's typed signals cannot express.

use std::fmt::Write as _;

/// `value` (a `from`-bit two's-complement expression) sign-extended to `to` bits. The
/// expression must be a plain name or a part-select, so it can be indexed.
pub fn sext(value: &str, from: usize, to: usize) -> String {
    assert!(from >= 1);
    if to == from {
        value.to_string()
    } else if to < from {
        // Truncation: only where the values are known to fit in `to` bits.
        format!("{value}[{}:0]", to - 1)
    } else if from == 1 {
        format!("{{{to}{{{value}}}}}")
    } else {
        format!("{{{{{}{{{value}[{}]}}}}, {value}}}", to - from, from - 1)
    }
}

/// The bit range `[hi:lo]` of field `index` of width `width`, or `[bit]` for one bit.
pub fn field(index: usize, width: usize) -> String {
    if width == 1 {
        format!("[{index}]")
    } else {
        format!("[{}:{}]", (index + 1) * width - 1, index * width)
    }
}

/// Declares `wire [w-1:0] name = a ± b;` where `sub` (a 1-bit expression) selects the
/// subtraction: `a + (b ^ {w{sub}}) + sub`. The carry-in enters as the low bit of a
/// `w+1`-bit addition whose low bit is then dropped, a form Yosys maps to one LUT per
/// bit on a carry chain (a `sub ? a - b : a + b` form becomes two adders and a mux).
/// `a` and `b` must already be `w` bits wide.
pub fn add_sub(out: &mut String, name: &str, w: usize, a: &str, b: &str, sub: &str) {
    writeln!(
        out,
        "wire [{w}:0] {name}_c = {{{a}, 1'b1}} + {{{b} ^ {{{w}{{{sub}}}}}, {sub}}};\n\
         wire [{}:0] {name} = {name}_c[{w}:1];",
        w - 1
    )
    .unwrap();
}

/// Address bits for `depth` words (at least 1).
pub fn address_bits(depth: usize) -> usize {
    crate::bits::ceil_log2(depth).max(1)
}

/// The `ram_style` for an engine memory of `depth` words whose read is registered
/// (activation buffer, accumulator memory): LUT RAM while one primitive deep (64 words:
/// a RAM64M8 holds 7 bits of a word in 8 LUTs), block RAM beyond, where LUT RAM would
/// need several primitives and a multiplexer per bit (measured: an 80-deep, 640-bit
/// accumulator memory took 1401 LUTs as LUT RAM, 9 block RAMs otherwise).
pub fn buffer_style(depth: usize) -> &'static str {
    if depth > 64 {
        "block"
    } else {
        "distributed"
    }
}
