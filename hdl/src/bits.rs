//! Integer widths: the arithmetic every width in the engines is derived from.

/// Bits that index `n` things: the smallest `c` with `2^c ≥ n` (0 for `n ≤ 1`).
pub fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// Smallest two's-complement width holding every integer in `[lo, hi]`.
pub fn signed_bits(lo: i64, hi: i64) -> usize {
    let mut w = 1;
    while !(-(1i64 << (w - 1)) <= lo && hi < (1i64 << (w - 1))) {
        w += 1;
    }
    w
}

/// Width of a sign-folded partial sum over `weights` weights: `Σ ε_j·x_j` with the
/// first nonzero `ε` positive lies in `[−128·w, 128·w − 1]`.
pub fn partial_sum_bits(weights: usize) -> usize {
    signed_bits(-128 * weights as i64, 128 * weights as i64 - 1)
}

/// Whether a generated text has every `{{PLACEHOLDER}}` filled in (an upper-case name
/// after `{{`; Verilog's own `{{` replications start otherwise).
pub fn filled(text: &str) -> bool {
    text.split("{{")
        .skip(1)
        .all(|x| !x.starts_with(|c: char| c.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_log2_matches_definition() {
        for n in 1..5000usize {
            let c = ceil_log2(n);
            assert!(
                1usize << c >= n && (c == 0 || 1usize << (c - 1) < n),
                "n = {n}"
            );
        }
    }
}
