//! The vector unit's arithmetic, bit for bit (docs/vector.md): everything a token needs
//! besides the ternary matmuls and the attention, in integers only, as the fabric does
//! it. Residual stream in fixed point (`i32`, `F` fractional bits), norm gains as `i16`
//! with a per-vector shift, scalars as 24-bit mantissas with an exponent ([`Scale`]).
//! Every rounding is named: `rne` (half to even, the host's conversions) or `rha` (half
//! away from zero, the fabric's shifts); every narrowing saturates and counts.
//!
//! The host converts a checkpoint once (`Gain::of`, `Scale::of`, `Int8Head::of`: the
//! formats of `tern_hdl::program`, with the RoPE table); the fabric runs [`embed`],
//! [`norm_quant`], [`dequant`], [`rope`], [`to_int8`], [`relu2_mul`], [`head_scores`] on
//! every token.

pub use tern_hdl::program::{rope_table, Gain, Int4Head, Int8Head, Scale, ScaleError, ROPE_FRAC};

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// `v / 2^k` rounded half away from zero (`k ≤ 0`: `v · 2^-k`, exact).
pub fn rha(v: i128, k: i32) -> i128 {
    if v == 0 {
        return 0;
    }
    if k <= 0 {
        // Exact while it fits; beyond 126 bits it saturates (every caller narrows to i32).
        let bits = 128 - i64::from(v.unsigned_abs().leading_zeros());
        if bits - i64::from(k) > 126 {
            return if v < 0 { i128::MIN } else { i128::MAX };
        }
        return v << (-i64::from(k));
    }
    if k >= 127 {
        return 0;
    }
    let half = 1i128 << (k - 1);
    let mag = (v.unsigned_abs() + half as u128) >> k;
    if v < 0 {
        -(mag as i128)
    } else {
        mag as i128
    }
}

/// Counts the narrowings that saturated (the fabric's sticky `saturated` flag).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saturations(pub u64);

impl Saturations {
    pub fn i32(&mut self, v: i128) -> i32 {
        match i32::try_from(v) {
            Ok(x) => x,
            Err(_) => {
                self.0 += 1;
                if v < 0 {
                    i32::MIN
                } else {
                    i32::MAX
                }
            }
        }
    }
}

/// A row of the embedding (bf16 bits) into the residual stream: `v · 2^frac` rounded
/// half to even, saturating (infinities and NaNs by their sign).
pub fn embed(row: &[u16], frac: i32, sat: &mut Saturations) -> Vec<i32> {
    row.iter()
        .map(|&b| {
            let v = tern_hdl::program::bf16_value(b);
            if v.is_nan() {
                // An infinity saturates below; a NaN too, by its sign bit.
                return sat.i32(if b & 0x8000 != 0 {
                    i128::MIN
                } else {
                    i128::MAX
                });
            }
            let x = (f64::from(v) * pow2(frac)).round_ties_even();
            sat.i32(x.clamp(-1e30, 1e30) as i128)
        })
        .collect()
}

/// One token's int8 vector and what one of its units is worth:
/// `max / (127 · rms · 2^gain_frac)` in the input's real units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantised {
    pub q: Vec<i8>,
    /// `M = max |v_i · g_i|`.
    pub max: u64,
    /// `r = isqrt(floor(Σ v_i² / n) + E)`: the input's RMS in units of `2^-v_frac`.
    pub rms: u64,
    pub gain_frac: i32,
}

/// `floor(sqrt(n))`.
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// `floor(eps · 2^(2·v_frac))`, at most `2^100` (an input so small that ε outweighs its
/// mean square by 2^40 keeps that bound; docs/vector.md).
pub fn epsilon_units(eps: Scale, v_frac: i32) -> u128 {
    let k = eps.e + 2 * v_frac;
    let m = u128::from(eps.m);
    if k >= 0 {
        if k >= 76 {
            1 << 100
        } else {
            (m << k).min(1 << 100)
        }
    } else if k <= -128 {
        0
    } else {
        m >> (-k)
    }
}

/// RMSNorm and per-token absmax int8 quantisation in one: the norm's `1/rms` cancels in
/// the absmax, so `q_i = round_half_away(127 · p_i / M)` with `p_i = v_i · g_i` and
/// `M = max |p_i|` (exactly: `sign · floor((254·|p| + M) / 2M)`), and the RMS is kept for
/// [`dequant`].
pub fn norm_quant(v: &[i32], v_frac: i32, gain: &Gain, eps: Scale) -> Quantised {
    let p: Vec<i64> = v
        .iter()
        .zip(&gain.g)
        .map(|(&x, &g)| i64::from(x) * i64::from(g))
        .collect();
    let max = p.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    let q = p
        .iter()
        .map(|&x| {
            if max == 0 {
                return 0;
            }
            let mag =
                (254 * u128::from(x.unsigned_abs()) + u128::from(max)) / (2 * u128::from(max));
            (if x < 0 { -(mag as i64) } else { mag as i64 }) as i8
        })
        .collect();
    let squares: u128 = v
        .iter()
        .map(|&x| (i128::from(x) * i128::from(x)) as u128)
        .sum();
    let mean = squares / v.len().max(1) as u128 + epsilon_units(eps, v_frac);
    Quantised {
        q,
        max,
        rms: isqrt(mean).max(1) as u64,
        gain_frac: gain.frac,
    }
}

/// `floor(n · 2^s / d)`, `s` of either sign (`floor(floor(n / 2^k) / d) = floor(n / 2^k d)`).
fn div_shift(n: u128, d: u128, s: i32) -> u128 {
    if s < 0 {
        return (n >> (-s).min(127)) / d;
    }
    let (mut q, mut r) = (n / d, n % d);
    for _ in 0..s {
        r <<= 1;
        q <<= 1;
        if r >= d {
            r -= d;
            q |= 1;
        }
    }
    q
}

fn bit_length(x: u128) -> i32 {
    128 - x.leading_zeros() as i32
}

/// A token's dequantisation factor `K · 2^t` with `2^31 ≤ K < 2^32` (or `K = 0`): what
/// one unit of a BitLinear's integer result is worth in the output's fixed point,
/// `M · w / (127 · r · 2^gain_frac) · 2^out_frac`. One divider per (token, matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factor {
    pub k: u64,
    pub t: i32,
}

pub fn factor(x: &Quantised, weight_scale: Scale, out_frac: i32) -> Factor {
    let n = u128::from(x.max) * u128::from(weight_scale.m);
    let d = 127 * u128::from(x.rms);
    if n == 0 {
        return Factor { k: 0, t: 0 };
    }
    let mut s = 31 + bit_length(d) - bit_length(n);
    let mut k = div_shift(n, d, s);
    while k < 1 << 31 {
        s += 1;
        k = div_shift(n, d, s);
    }
    while k >= 1 << 32 {
        s -= 1;
        k = div_shift(n, d, s);
    }
    Factor {
        k: k as u64,
        t: weight_scale.e + out_frac - x.gain_frac - s,
    }
}

/// A BitLinear's integer results back into fixed point: `rha(acc · K, -t)`, saturating.
pub fn dequant(acc: &[i64], f: Factor, sat: &mut Saturations) -> Vec<i32> {
    acc.iter()
        .map(|&a| sat.i32(rha(i128::from(a) * i128::from(f.k), -f.t)))
        .collect()
}

/// Rotate one head's pairs `(i, i + d/2)` by its position's row of [`rope_table`].
pub fn rope(y: &mut [i32], row: &[(i16, i16)], sat: &mut Saturations) {
    let half = y.len() / 2;
    for (i, &(c, s)) in row.iter().enumerate().take(half) {
        let (a, b) = (i128::from(y[i]), i128::from(y[i + half]));
        let (c, s) = (i128::from(c), i128::from(s));
        y[i] = sat.i32(rha(a * c - b * s, ROPE_FRAC));
        y[i + half] = sat.i32(rha(b * c + a * s, ROPE_FRAC));
    }
}

/// Fixed point to the attention's static int8 unit: `rha(y · 1/unit)`, clamped to int8.
pub fn to_int8(y: &[i32], y_frac: i32, inv_unit: Scale) -> Vec<i8> {
    y.iter()
        .map(|&x| {
            // The shift in 64 bits: a vector's fractional bits come from memory, any i32.
            let k = (i64::from(y_frac) - i64::from(inv_unit.e)).clamp(-256, 256) as i32;
            rha(i128::from(x) * i128::from(inv_unit.m), k).clamp(-128, 127) as i8
        })
        .collect()
}

/// `relu(g)² · u` over two fixed-point vectors of `frac` bits, exactly, then shifted so
/// the largest fits 31 bits: a block of `i32` with its own fractional bits (the next
/// norm does not care about the block's scale, only ε does, and ε follows the bits).
pub fn relu2_mul(g: &[i32], u: &[i32], frac: i32) -> (Vec<i32>, i32) {
    let p: Vec<i128> = g
        .iter()
        .zip(u)
        .map(|(&g, &u)| {
            let r = i128::from(g.max(0));
            r * r * i128::from(u)
        })
        .collect();
    let max = p.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    if max == 0 {
        return (vec![0; p.len()], 3 * frac);
    }
    let shift = bit_length(max) - 31;
    let a = p
        .iter()
        .map(|&x| (if shift >= 0 { x >> shift } else { x << -shift }) as i32)
        .collect();
    (a, 3 * frac - shift)
}

/// Per row `acc_r · m_r` (`acc_r = Σ w_ri · q_i`): the LM head's logits up to one
/// positive factor per token, what the fabric's argmax compares.
pub fn head_scores(head: &Int8Head, q: &[i8]) -> Vec<i64> {
    head.w
        .chunks(head.width)
        .zip(&head.row_m)
        .map(|(r, &m)| {
            let acc: i64 = r
                .iter()
                .zip(q)
                .map(|(&w, &x)| i64::from(w) * i64::from(x))
                .sum();
            acc * i64::from(m)
        })
        .collect()
}

/// Per row `Σ_g m_rg · Σ_{i in g} w_ri · q_i`: the 4-bit head's logits up to one positive
/// factor per token, exactly.
pub fn head4_scores(head: &Int4Head, q: &[i8]) -> Vec<i64> {
    let groups = head.width / head.group;
    head.w
        .chunks(head.width)
        .enumerate()
        .map(|(r, row)| {
            row.chunks(head.group)
                .zip(q.chunks(head.group))
                .zip(&head.group_m[r * groups..(r + 1) * groups])
                .map(|((w, x), &m)| {
                    let acc: i64 = w
                        .iter()
                        .zip(x)
                        .map(|(&w, &x)| i64::from(w) * i64::from(x))
                        .sum();
                    acc * i64::from(m)
                })
                .sum()
        })
        .collect()
}

/// The fabric's argmax: the first of the largest.
pub fn argmax(scores: &[i64]) -> usize {
    (0..scores.len()).fold(0, |best, i| if scores[i] > scores[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shifts as large as memory can ask for: zero stays zero, anything else saturates
    /// to the left or rounds to zero to the right, and nothing panics.
    #[test]
    fn extreme_shifts_saturate_or_vanish() {
        assert_eq!(rha(0, i32::MIN), 0);
        assert_eq!(rha(0, -200), 0);
        assert_eq!(rha(3, -200), i128::MAX);
        assert_eq!(rha(-3, i32::MIN), i128::MIN);
        assert_eq!(rha(3, i32::MAX), 0);
        assert_eq!(rha(-5, 1), -3, "half away from zero");
        let unit = Scale { m: 1 << 23, e: 23 };
        assert_eq!(to_int8(&[0, 5, -5], i32::MIN, unit), vec![0, 127, -128]);
        assert_eq!(to_int8(&[0, 5, -5], i32::MAX, unit), vec![0, 0, 0]);
    }
}
