//! The baseline the GNN must beat: per target, a least-squares fit of `log(1 + t)` on
//! the config's raw parameters (their logarithms, and one-hots for the categorical
//! ones): a power law in every parameter. Ridge-regularised, solved exactly.

use serde::{Deserialize, Serialize};
use tern_hdl::config::TableStorage;
use tern_hdl::{DesignConfig, EngineKind};

use crate::features::TARGET_COUNT;

/// Raw parameters of a config as regression inputs (first entry the intercept).
pub fn raw_parameters(config: &DesignConfig) -> Vec<f64> {
    let l = |v: usize| (1.0 + v as f64).log2();
    match config {
        DesignConfig::Matmul(c) => {
            let e = &c.engine;
            let w = &c.workload;
            vec![
                1.0,
                f64::from(e.kind == EngineKind::Tlmm),
                e.group_size as f64,
                l(e.rows_parallel),
                l(e.groups_per_cycle),
                e.accumulator_bits as f64 / 8.0,
                f64::from(e.storage() == TableStorage::Block),
                f64::from(e.storage() == TableStorage::Registers),
                l(e.weight_buffer_depth),
                l(w.m),
                l(w.k),
                l(w.tokens),
            ]
        }
        DesignConfig::Attention(c) => {
            let a = &c.attention;
            let mut v = vec![1.0, 0.0, 0.0, l(a.macs), l(a.tile), 4.0, 0.0, 0.0, 0.0];
            v.extend([l(c.workload.seq_len), l(a.head_dim), l(c.workload.queries)]);
            v
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinearBaseline {
    /// Per target: coefficients, or `None` when no training row had the target.
    pub weights: Vec<Option<Vec<f64>>>,
}

impl LinearBaseline {
    /// Fit on (raw parameters, targets) pairs.
    pub fn fit(rows: &[(Vec<f64>, [Option<f64>; TARGET_COUNT])]) -> LinearBaseline {
        let weights = (0..TARGET_COUNT)
            .map(|t| {
                let data: Vec<(&Vec<f64>, f64)> = rows
                    .iter()
                    .filter_map(|(x, y)| y[t].map(|v| (x, v.ln_1p())))
                    .collect();
                if data.is_empty() {
                    return None;
                }
                let d = data[0].0.len();
                let mut a = vec![vec![0.0; d]; d];
                let mut b = vec![0.0; d];
                for (x, y) in &data {
                    for ((row, bi), xi) in a.iter_mut().zip(b.iter_mut()).zip(x.iter()) {
                        *bi += xi * y;
                        for (aij, xj) in row.iter_mut().zip(x.iter()) {
                            *aij += xi * xj;
                        }
                    }
                }
                for (i, row) in a.iter_mut().enumerate() {
                    row[i] += 1e-6 * data.len() as f64;
                }
                Some(solve(a, b))
            })
            .collect();
        LinearBaseline { weights }
    }

    pub fn predict(&self, x: &[f64]) -> Vec<Option<f64>> {
        self.weights
            .iter()
            .map(|w| {
                w.as_ref().map(|w| {
                    let z: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum();
                    z.exp_m1().max(0.0)
                })
            })
            .collect()
    }
}

/// Gaussian elimination with partial pivoting (the system is small and regularised).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("non-empty");
        a.swap(col, pivot);
        b.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-12 {
            continue;
        }
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / p;
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row].abs() < 1e-12 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_power_law() {
        // t = 3 · x1^2 · x2^0.5 − 1 in log form: ln(1 + t) = ln 3 + 2 ln x1 + 0.5 ln x2.
        let rows: Vec<(Vec<f64>, [Option<f64>; TARGET_COUNT])> = (1..30)
            .map(|i| {
                let (x1, x2) = (i as f64, (i * 7 % 11 + 1) as f64);
                let t = 3.0 * x1.powi(2) * x2.sqrt() - 1.0;
                (
                    vec![1.0, x1.ln(), x2.ln()],
                    [Some(t), None, None, None, None, None],
                )
            })
            .collect();
        let fit = LinearBaseline::fit(&rows);
        let w = fit.weights[0].as_ref().unwrap();
        assert!(
            (w[0] - 3f64.ln()).abs() < 1e-3 && (w[1] - 2.0).abs() < 1e-3,
            "{w:?}"
        );
        assert!(fit.weights[1].is_none());
        let p = fit.predict(&[1.0, 4f64.ln(), 9f64.ln()])[0].unwrap();
        assert!((p - (3.0 * 16.0 * 3.0 - 1.0)).abs() < 0.1, "{p}");
    }
}
