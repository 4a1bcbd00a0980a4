//! The vector unit's arithmetic, bit for bit (docs/vector.md): everything a token needs
//! besides the ternary matmuls and the attention, in integers only, as the fabric does
//! it. Residual stream in fixed point (`i32`, `F` fractional bits), norm gains as `i16`
//! with a per-vector shift, scalars as 24-bit mantissas with an exponent ([`Scale`]).
//! Every rounding is named: `rne` (half to even, the host's conversions) or `rha` (half
//! away from zero, the fabric's shifts); every narrowing saturates and counts.
//!
//! The host converts a checkpoint once ([`Gain::of`], [`Scale::of`], [`rope_table`],
//! [`Int8Head::of`]); the fabric runs [`embed`], [`norm_quant`], [`dequant`], [`rope`],
//! [`to_int8`], [`relu2_mul`], [`Int8Head::scores`] on every token.

/// A positive real `m · 2^e` with a 24-bit mantissa (`2^23 ≤ m < 2^24`), or zero (`m = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub m: u32,
    pub e: i32,
}

/// Why a value cannot be a [`Scale`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0} is not a finite non-negative number a scale can hold")]
pub struct ScaleError(pub f64);

impl Scale {
    pub const ZERO: Scale = Scale { m: 0, e: 0 };

    /// The nearest scale (mantissa rounded half to even).
    pub fn of(x: f64) -> Result<Scale, ScaleError> {
        if !(x.is_finite() && x >= 0.0) {
            return Err(ScaleError(x));
        }
        if x == 0.0 {
            return Ok(Scale::ZERO);
        }
        let mut e = x.log2().floor() as i32 - 23;
        // log2 may land one off for values next to a power of two: fix it exactly.
        while x / pow2(e) >= (1u64 << 24) as f64 {
            e += 1;
        }
        while x / pow2(e) < (1u64 << 23) as f64 {
            e -= 1;
        }
        let mut m = (x / pow2(e)).round_ties_even() as u64;
        if m == 1 << 24 {
            m = 1 << 23;
            e += 1;
        }
        Ok(Scale { m: m as u32, e })
    }

    pub fn value(self) -> f64 {
        f64::from(self.m) * pow2(self.e)
    }
}

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// `v / 2^k` rounded half away from zero (`k ≤ 0`: `v · 2^-k`, exact).
pub fn rha(v: i128, k: i32) -> i128 {
    if k <= 0 {
        return v
            .checked_shl((-k) as u32)
            .unwrap_or(if v < 0 { i128::MIN } else { i128::MAX });
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

/// A norm's gains: `g · 2^frac` rounded half to even, `frac` the largest in 0..=15 that
/// keeps every gain inside `i16`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gain {
    pub g: Vec<i16>,
    pub frac: i32,
}

impl Gain {
    pub fn of(gains: &[f32]) -> Gain {
        let fits = |frac: i32| {
            gains
                .iter()
                .all(|&g| (f64::from(g) * pow2(frac)).round_ties_even().abs() <= 32767.0)
        };
        let frac = (0..=15).rev().find(|&f| fits(f)).unwrap_or(0);
        let g = gains
            .iter()
            .map(|&g| {
                (f64::from(g) * pow2(frac))
                    .round_ties_even()
                    .clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        Gain { g, frac }
    }
}

/// A row of the embedding (bf16 values) into the residual stream: `v · 2^frac` rounded
/// half to even, saturating.
pub fn embed(row: &[f32], frac: i32, sat: &mut Saturations) -> Vec<i32> {
    row.iter()
        .map(|&v| {
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

/// Fractional bits of RoPE's cos/sin table.
pub const ROPE_FRAC: i32 = 14;

/// RoPE's table for positions `0..positions`: per position, `d/2` pairs
/// `(cos, sin)(p · θ^(-2i/d))` in Q1.14, rounded half to even (the host computes it in f64).
pub fn rope_table(head_dim: usize, positions: usize, theta: f64) -> Vec<(i16, i16)> {
    let half = head_dim / 2;
    let q = |x: f64| (x * pow2(ROPE_FRAC)).round_ties_even() as i16;
    (0..positions)
        .flat_map(|p| {
            (0..half).map(move |i| {
                let freq = theta.powf(-2.0 * i as f64 / head_dim as f64);
                let (sin, cos) = (p as f64 * freq).sin_cos();
                (q(cos), q(sin))
            })
        })
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
            rha(i128::from(x) * i128::from(inv_unit.m), y_frac - inv_unit.e).clamp(-128, 127) as i8
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

/// The LM head in int8: each row's weights over its own scale (`max|w| / 127`), the
/// scales as 16-bit mantissas with one exponent for the whole head, so the fabric's
/// argmax compares `acc_r · m_r` exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int8Head {
    pub rows: usize,
    pub width: usize,
    pub w: Vec<i8>,
    pub row_m: Vec<u16>,
    pub exp: i32,
}

impl Int8Head {
    pub fn of(head: &[f32], rows: usize, width: usize) -> Int8Head {
        let amax: Vec<f64> = head
            .chunks(width)
            .map(|r| r.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs())))
            .collect();
        let top = amax.iter().fold(0f64, |m, &x| m.max(x)) / 127.0;
        let mut exp = if top > 0.0 {
            (top / 65535.0).log2().ceil() as i32
        } else {
            0
        };
        while top / pow2(exp) > 65535.0 {
            exp += 1;
        }
        let row_m: Vec<u16> = amax
            .iter()
            .map(|&a| (a / 127.0 / pow2(exp)).round_ties_even().min(65535.0) as u16)
            .collect();
        let w = head
            .chunks(width)
            .zip(&row_m)
            .flat_map(|(r, &m)| {
                let s = f64::from(m) * pow2(exp);
                r.iter().map(move |&x| {
                    if m == 0 {
                        0
                    } else {
                        (f64::from(x) / s).round_ties_even().clamp(-127.0, 127.0) as i8
                    }
                })
            })
            .collect();
        Int8Head {
            rows,
            width,
            w,
            row_m,
            exp,
        }
    }

    /// Per row `acc_r · m_r` (`acc_r = Σ w_ri · q_i`): the logits up to one positive
    /// factor per token, what the fabric's argmax compares.
    pub fn scores(&self, q: &[i8]) -> Vec<i64> {
        self.w
            .chunks(self.width)
            .zip(&self.row_m)
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
}

/// The fabric's argmax: the first of the largest.
pub fn argmax(scores: &[i64]) -> usize {
    (0..scores.len()).fold(0, |best, i| if scores[i] > scores[best] { i } else { best })
}
