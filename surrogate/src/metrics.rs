//! Error measures between predicted and actual values of one target.
//!
//! - APE = |p − a| / a, over rows with a > 0 (a resource the design does not use has no
//!   percentage error; SMAPE covers those rows);
//! - SMAPE = mean of 2|p − a| / (|p| + |a|), with 0/0 counted as 0 (the wa-hls4ml form);
//! - R² = 1 − Σ(p − a)² / Σ(a − ā)², on natural values.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub rows: usize,
    /// Rows with a nonzero actual value (the APE population).
    pub nonzero: usize,
    /// In percent.
    pub median_ape: f64,
    pub p90_ape: f64,
    pub smape: f64,
    pub r2: f64,
}

pub fn errors(pairs: &[(f64, f64)]) -> Option<Errors> {
    if pairs.is_empty() {
        return None;
    }
    let mut apes: Vec<f64> = pairs
        .iter()
        .filter(|(_, a)| *a > 0.0)
        .map(|(p, a)| 100.0 * (p - a).abs() / a)
        .collect();
    apes.sort_by(|x, y| x.total_cmp(y));
    let smape = 100.0
        * pairs
            .iter()
            .map(|(p, a)| {
                let d = p.abs() + a.abs();
                if d == 0.0 {
                    0.0
                } else {
                    2.0 * (p - a).abs() / d
                }
            })
            .sum::<f64>()
        / pairs.len() as f64;
    let mean = pairs.iter().map(|(_, a)| a).sum::<f64>() / pairs.len() as f64;
    let ss_tot: f64 = pairs.iter().map(|(_, a)| (a - mean).powi(2)).sum();
    let ss_res: f64 = pairs.iter().map(|(p, a)| (p - a).powi(2)).sum();
    Some(Errors {
        rows: pairs.len(),
        nonzero: apes.len(),
        median_ape: quantile(&apes, 0.5),
        p90_ape: quantile(&apes, 0.9),
        smape,
        r2: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            f64::NAN
        },
    })
}

/// Linear-interpolated quantile of sorted values (NaN when empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_on_known_pairs() {
        // APEs: 10 %, 20 %, 0 %, (zero actual excluded); SMAPE term for (0, 0) is 0.
        let e = errors(&[(110.0, 100.0), (40.0, 50.0), (7.0, 7.0), (0.0, 0.0)]).unwrap();
        assert_eq!((e.rows, e.nonzero), (4, 3));
        assert!((e.median_ape - 10.0).abs() < 1e-9);
        assert!((e.p90_ape - 18.0).abs() < 1e-9);
        let smape = 100.0 * (20.0 / 210.0 + 20.0 / 90.0) / 4.0;
        assert!((e.smape - smape).abs() < 1e-9);
        assert!(e.r2 < 1.0 && e.r2 > 0.9);
        let perfect = errors(&[(1.0, 1.0), (2.0, 2.0)]).unwrap();
        assert_eq!(
            (perfect.median_ape, perfect.smape, perfect.r2),
            (0.0, 0.0, 1.0)
        );
    }
}
