//! The ternary weight format, defined once for the RTL, the golden model and the host.
//!
//! A group of `g` ternary weights `w[0..g]` is read as a balanced-ternary number
//! `v = Σ w[j]·3^j`. Every pattern and its negation give `v` and `−v`, so a group is
//! stored as `(sign, index) = (v < 0, |v|)`: the index enumerates the sign-folded
//! patterns `0..=(3^g−1)/2` in balanced-ternary order, and the table entry for index
//! `i` is `Σ d_j(i)·x[j]` where `d_j(i)` are the balanced-ternary digits of `i`.
//! Index 0 is the all-zero pattern (entry 0 is always 0 and is not stored).
//!
//! A code is `1 + index_bits` wide: the index in the low bits, the sign on top.

/// Folded table entries for group size `g`: ⌈3^g / 2⌉ (g = 1 gives {0, x}).
pub fn table_entries(g: usize) -> usize {
    3usize.pow(g as u32).div_ceil(2)
}

/// Bits of a group index.
pub fn index_bits(g: usize) -> usize {
    crate::bits::ceil_log2(table_entries(g))
}

/// Bits of a `(sign, index)` code.
pub fn code_bits(g: usize) -> usize {
    1 + index_bits(g)
}

/// Bits of a table entry. A folded entry `Σ d_j·x[j]` has its highest nonzero digit
/// `+1`, so it lies in `[−128·g, 128·g − 1]` (for g = 1 the entry is the activation
/// itself, 8 bits).
pub fn entry_bits(g: usize) -> usize {
    crate::bits::partial_sum_bits(g)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupCode {
    pub negative: bool,
    pub index: u16,
}

impl GroupCode {
    /// The code as an integer: index in the low `index_bits`, sign above.
    pub fn to_bits(self, g: usize) -> u32 {
        (u32::from(self.negative) << index_bits(g)) | u32::from(self.index)
    }

    pub fn from_bits(bits: u32, g: usize) -> GroupCode {
        let ib = index_bits(g);
        GroupCode {
            negative: (bits >> ib) & 1 == 1,
            index: (bits & ((1 << ib) - 1)) as u16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    #[error("weight {value} at position {position} is not ternary (-1, 0, +1)")]
    NotTernary { position: usize, value: i8 },
    #[error("group of {got} weights, expected 1..={max}")]
    BadGroup { got: usize, max: usize },
}

/// Encode one group of ternary weights (length = g, 1..=5).
pub fn encode_group(w: &[i8]) -> Result<GroupCode, WeightError> {
    if w.is_empty() || w.len() > 5 {
        return Err(WeightError::BadGroup {
            got: w.len(),
            max: 5,
        });
    }
    let mut v: i32 = 0;
    for (j, &d) in w.iter().enumerate().rev() {
        if !(-1..=1).contains(&d) {
            return Err(WeightError::NotTernary {
                position: j,
                value: d,
            });
        }
        v = v * 3 + i32::from(d);
    }
    Ok(GroupCode {
        negative: v < 0,
        index: v.unsigned_abs() as u16,
    })
}

/// The canonical (non-negated) pattern of a table index: its balanced-ternary digits.
pub fn pattern(g: usize, index: usize) -> Vec<i8> {
    let mut digits = Vec::with_capacity(g);
    let mut v = index as i64;
    for _ in 0..g {
        let mut d = v.rem_euclid(3);
        if d == 2 {
            d = -1;
        }
        digits.push(d as i8);
        v = (v - d) / 3;
    }
    debug_assert_eq!(v, 0, "index {index} out of range for g = {g}");
    digits
}

/// An order to build a folded table one entry per clock in which the patterns of
/// consecutive entries differ in one digit by ±1, so each entry is the previous one plus or minus
/// one activation: `entry(order[s + 1]) = entry(order[s]) ± x[k]`. Starts at index 0
/// (entry 0). Returns `(index, step)` per position, `step` = `(k, +1 | −1)` to the next
/// (`None` after the last). A Hamiltonian path through the folded patterns, found by a
/// depth-first search that tries the neighbour with the fewest onward moves first
/// (deterministic); `incremental_order_is_a_unit_step_walk` checks every G.
pub fn build_order(g: usize) -> Vec<(usize, Option<(usize, i8)>)> {
    let entries = table_entries(g);
    let patterns: Vec<Vec<i8>> = (0..entries).map(|i| pattern(g, i)).collect();
    let index_of = |p: &[i8]| -> Option<usize> {
        let v: i64 = p.iter().rev().fold(0, |acc, &d| acc * 3 + i64::from(d));
        (0..entries as i64).contains(&v).then_some(v as usize)
    };
    // Unit-step neighbours inside the folded set: (index, digit, direction).
    let neighbours = |i: usize| -> Vec<(usize, usize, i8)> {
        let mut out = vec![];
        for k in 0..g {
            for dir in [1i8, -1] {
                let mut q = patterns[i].clone();
                q[k] += dir;
                if (-1..=1).contains(&q[k]) {
                    if let Some(j) = index_of(&q) {
                        out.push((j, k, dir));
                    }
                }
            }
        }
        out
    };
    fn walk(
        path: &mut Vec<(usize, Option<(usize, i8)>)>,
        seen: &mut Vec<bool>,
        entries: usize,
        neighbours: &dyn Fn(usize) -> Vec<(usize, usize, i8)>,
    ) -> bool {
        if path.len() == entries {
            return true;
        }
        let here = path.last().expect("starts at 0").0;
        let mut next: Vec<(usize, usize, i8)> = neighbours(here)
            .into_iter()
            .filter(|&(j, _, _)| !seen[j])
            .collect();
        next.sort_by_key(|&(j, _, _)| neighbours(j).iter().filter(|n| !seen[n.0]).count());
        for (j, k, dir) in next {
            path.last_mut().expect("non-empty").1 = Some((k, dir));
            path.push((j, None));
            seen[j] = true;
            if walk(path, seen, entries, neighbours) {
                return true;
            }
            seen[j] = false;
            path.pop();
            path.last_mut().expect("non-empty").1 = None;
        }
        false
    }
    let mut path = vec![(0, None)];
    let mut seen = vec![false; entries];
    seen[0] = true;
    assert!(
        walk(&mut path, &mut seen, entries, &neighbours),
        "a unit-step walk through the folded table exists for g = {g}"
    );
    path
}

/// Decode a code back to its ternary weights.
pub fn decode_group(code: GroupCode, g: usize) -> Vec<i8> {
    let mut w = pattern(g, usize::from(code.index));
    if code.negative {
        w.iter_mut().for_each(|d| *d = -*d);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_patterns(g: usize) -> Vec<Vec<i8>> {
        let mut out = vec![vec![]];
        for _ in 0..g {
            out = out
                .into_iter()
                .flat_map(|p| {
                    [-1i8, 0, 1].into_iter().map(move |d| {
                        let mut q = p.clone();
                        q.push(d);
                        q
                    })
                })
                .collect();
        }
        out
    }

    #[test]
    fn published_table_sizes() {
        // The sign-folded table sizes: G=2: 5, G=3: 14, G=4: 41, G=5: 122 entries
        // ((3^G + 1) / 2); G=3 → 5-bit codes.
        assert_eq!(
            (2..=5).map(table_entries).collect::<Vec<_>>(),
            vec![5, 14, 41, 122]
        );
        assert_eq!(code_bits(3), 5);
        assert_eq!(code_bits(5), 8);
    }

    #[test]
    fn every_pattern_of_every_g_has_a_distinct_code_and_round_trips() {
        for g in 1..=5 {
            let mut seen = HashSet::new();
            for p in all_patterns(g) {
                let code = encode_group(&p).unwrap();
                assert!(usize::from(code.index) < table_entries(g), "g={g} {p:?}");
                assert!(code.to_bits(g) < 1 << code_bits(g));
                // The zero pattern has one code only (sign clear).
                if p.iter().all(|&d| d == 0) {
                    assert_eq!(
                        code,
                        GroupCode {
                            negative: false,
                            index: 0
                        }
                    );
                }
                assert!(seen.insert(code), "g={g}: {p:?} collides");
                assert_eq!(decode_group(code, g), p);
                assert_eq!(GroupCode::from_bits(code.to_bits(g), g), code);
            }
            assert_eq!(seen.len(), 3usize.pow(g as u32));
        }
    }

    #[test]
    fn entry_width_holds_every_entry_and_is_minimal() {
        // Every entry of every activation pattern at the extremes fits, and the extreme
        // entries need every bit.
        for g in 1..=5 {
            let w = entry_bits(g);
            let (lo, hi) = (-(1i64 << (w - 1)), (1i64 << (w - 1)) - 1);
            let (mut min, mut max) = (0i64, 0i64);
            for x in all_patterns(g) {
                // x ∈ {−128, 0, 127} per position covers the extremes of every entry.
                let x: Vec<i64> = x
                    .iter()
                    .map(|&d| [-128, 0, 127][(d + 1) as usize])
                    .collect();
                for index in 0..table_entries(g) {
                    let e: i64 = pattern(g, index)
                        .iter()
                        .zip(&x)
                        .map(|(&d, &v)| i64::from(d) * v)
                        .sum();
                    min = min.min(e);
                    max = max.max(e);
                }
            }
            assert!(lo <= min && max <= hi, "g={g}: [{min}, {max}] in {w} bits");
            assert!(
                min < lo / 2 || max > hi / 2,
                "g={g}: {w} bits is not minimal"
            );
        }
    }

    #[test]
    fn incremental_order_is_a_unit_step_walk() {
        // Every index once, from 0, each entry the previous one ± one activation.
        let x = [37i64, -128, 127, -5, 64];
        for g in 1..=5 {
            let entry = |i: usize| -> i64 {
                pattern(g, i)
                    .iter()
                    .zip(&x)
                    .map(|(&d, &v)| i64::from(d) * v)
                    .sum()
            };
            let order = build_order(g);
            assert_eq!(order.len(), table_entries(g));
            assert_eq!(order[0].0, 0);
            let mut seen: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
            seen.sort();
            assert_eq!(seen, (0..table_entries(g)).collect::<Vec<_>>(), "g={g}");
            for w in order.windows(2) {
                let (k, dir) = w[0].1.expect("a step to the next entry");
                assert_eq!(
                    entry(w[1].0),
                    entry(w[0].0) + i64::from(dir) * x[k],
                    "g={g}"
                );
            }
            assert_eq!(order.last().unwrap().1, None);
        }
    }

    #[test]
    fn non_ternary_weight_is_rejected_with_its_position() {
        assert_eq!(
            encode_group(&[1, 0, 2]),
            Err(WeightError::NotTernary {
                position: 2,
                value: 2
            })
        );
        assert!(encode_group(&[0; 6]).is_err());
    }
}
