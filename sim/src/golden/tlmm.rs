//! Golden twin of `hdl/src/tlmm`: ternary GEMV/GEMM, computed two ways.
//!
//! - [`ternary_gemm`]: the plain definition `y[m] = Σ_k W[m,k]·x[k]`, exact in i64.
//!   Co-verification compares the RTL with this one: it shares no code with the RTL
//!   (no weight codes, no tables, no stream packing).
//! - [`table_gemv`]: the table-lookup method (sign-folded tables per activation group,
//!   weights as `(sign, index)` codes), used to check the method and the weight format
//!   against the definition.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use tern_hdl::weights::{encode_group, table_entries, WeightError};

/// `y = W·x` for ternary `W` (M×K) and int8 `x` (K), exact.
pub fn ternary_gemv(w: ArrayView2<i8>, x: ArrayView1<i8>) -> Array1<i64> {
    assert_eq!(w.ncols(), x.len(), "W is M×K and x has K entries");
    w.outer_iter()
        .map(|row| {
            row.iter()
                .zip(x.iter())
                .map(|(&a, &b)| i64::from(a) * i64::from(b))
                .sum()
        })
        .collect()
}

/// `Y = X·Wᵀ` for tokens `X` (T×K): one row of outputs (M) per token.
pub fn ternary_gemm(w: ArrayView2<i8>, xs: ArrayView2<i8>) -> Array2<i64> {
    let mut y = Array2::zeros((xs.nrows(), w.nrows()));
    for (t, x) in xs.axis_iter(Axis(0)).enumerate() {
        y.row_mut(t).assign(&ternary_gemv(w, x));
    }
    y
}

/// The folded table of one activation group: entry `i` = Σ_j d_j(i)·x[j], where
/// `d(i)` are the balanced-ternary digits of `i` (computed here by enumeration, not
/// with the RTL's digit helper).
pub fn folded_table(x: &[i8]) -> Vec<i64> {
    let g = x.len();
    let entries = table_entries(g);
    let mut table = vec![0i64; entries];
    // Walk all 3^g patterns; the non-negative balanced values are the table's indices.
    for code in 0..3usize.pow(g as u32) {
        let (mut c, mut value, mut sum) = (code, 0i64, 0i64);
        for (j, &xj) in x.iter().enumerate() {
            let d = (c % 3) as i64 - 1;
            c /= 3;
            value += d * 3i64.pow(j as u32);
            sum += d * i64::from(xj);
        }
        if value >= 0 {
            table[value as usize] = sum;
        }
    }
    table
}

/// `y = W·x` by table lookup with groups of `g` (K zero-padded to a multiple of g).
pub fn table_gemv(
    w: ArrayView2<i8>,
    x: ArrayView1<i8>,
    g: usize,
) -> Result<Array1<i64>, WeightError> {
    let k = x.len();
    let groups = k.div_ceil(g);
    let padded = |v: &dyn Fn(usize) -> i8, grp: usize| -> Vec<i8> {
        (0..g)
            .map(|j| if grp * g + j < k { v(grp * g + j) } else { 0 })
            .collect()
    };
    let tables: Vec<Vec<i64>> = (0..groups)
        .map(|grp| folded_table(&padded(&|i| x[i], grp)))
        .collect();
    let mut y = Array1::zeros(w.nrows());
    for (m, row) in w.outer_iter().enumerate() {
        let mut acc = 0i64;
        for (grp, table) in tables.iter().enumerate() {
            let code = encode_group(&padded(&|i| row[i], grp))?;
            let entry = table[usize::from(code.index)];
            acc += if code.negative { -entry } else { entry };
        }
        y[m] = acc;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;
    use proptest::prelude::*;

    fn matrix(m: usize, k: usize, seed: u64) -> Array2<i8> {
        let mut s = seed | 1;
        Array::from_shape_fn((m, k), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 3) as i8 - 1
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn table_method_equals_plain(g in 2usize..=5, m in 1usize..12, k in 1usize..70, seed: u64,
                                     x in prop::collection::vec(any::<i8>(), 70)) {
            let w = matrix(m, k, seed);
            let x = Array1::from(x[..k].to_vec());
            prop_assert_eq!(table_gemv(w.view(), x.view(), g).unwrap(), ternary_gemv(w.view(), x.view()));
        }
    }

    #[test]
    fn extremes_equal_plain_and_hit_the_bound() {
        for g in 2..=5 {
            for k in [1, 7, 64, 1000] {
                for (xv, wv) in [(-128i8, 1i8), (-128, -1), (127, 1), (127, -1)] {
                    let w = Array2::from_elem((3, k), wv);
                    let x = Array1::from_elem(k, xv);
                    let y = ternary_gemv(w.view(), x.view());
                    assert_eq!(y[0], i64::from(xv) * i64::from(wv) * k as i64);
                    assert_eq!(
                        table_gemv(w.view(), x.view(), g).unwrap(),
                        y,
                        "g={g} k={k} x={xv} w={wv}"
                    );
                }
            }
        }
    }

    #[test]
    fn folded_table_known_values() {
        // g = 2, x = [a, b]: indices 0..=4 are 0, a, -a+b, b, a+b (balanced ternary 0,1,2,3,4).
        assert_eq!(folded_table(&[5, 7]), vec![0, 5, 2, 7, 12]);
    }
}
