//! Pareto fronts and hypervolume, for objectives that are all minimised (negate the
//! ones to maximise before calling).

/// Whether `a` dominates `b`: no worse in every objective, better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// Indices of the non-dominated points (duplicates keep their first copy).
pub fn front(points: &[Vec<f64>]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            !points
                .iter()
                .enumerate()
                .any(|(j, q)| dominates(q, &points[i]) || (j < i && q == &points[i]))
        })
        .collect()
}

/// Hypervolume dominated by `points` up to `reference` (points beyond the reference in
/// any objective add nothing). Exact, for 1 to 3 objectives, by slicing.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .cloned()
        .collect();
    match reference.len() {
        1 => inside
            .iter()
            .map(|p| reference[0] - p[0])
            .fold(0.0, f64::max),
        2 => hv2(&inside, reference),
        3 => {
            let mut xs: Vec<f64> = inside.iter().map(|p| p[0]).collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            let mut total = 0.0;
            for (i, &x) in xs.iter().enumerate() {
                let next = xs.get(i + 1).copied().unwrap_or(reference[0]);
                let slab: Vec<Vec<f64>> = inside
                    .iter()
                    .filter(|p| p[0] <= x)
                    .map(|p| vec![p[1], p[2]])
                    .collect();
                total += (next - x) * hv2(&slab, &reference[1..]);
            }
            total
        }
        n => panic!("hypervolume of {n} objectives is not implemented"),
    }
}

fn hv2(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let mut pts: Vec<(f64, f64)> = points.iter().map(|p| (p[0], p[1])).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut area = 0.0;
    let mut best_y = reference[1];
    for (i, &(x, y)) in pts.iter().enumerate() {
        if y < best_y {
            best_y = y;
        }
        let next = pts.get(i + 1).map_or(reference[0], |p| p.0);
        area += (next - x) * (reference[1] - best_y);
    }
    area
}

/// Greedily pick `k` points that add the most hypervolume (by the given objective
/// values), returning their indices in the order picked.
pub fn greedy_by_contribution(points: &[Vec<f64>], reference: &[f64], k: usize) -> Vec<usize> {
    greedy_after(points, reference, k, vec![])
}

/// As [`greedy_by_contribution`], the first picks being `chosen` (kept, in order).
pub fn greedy_after(
    points: &[Vec<f64>],
    reference: &[f64],
    k: usize,
    mut chosen: Vec<usize>,
) -> Vec<usize> {
    chosen.truncate(k);
    let set: Vec<Vec<f64>> = chosen.iter().map(|&j| points[j].clone()).collect();
    let mut current = hypervolume(&set, reference);
    while chosen.len() < k.min(points.len()) {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..points.len() {
            if chosen.contains(&i) {
                continue;
            }
            let mut set: Vec<Vec<f64>> = chosen.iter().map(|&j| points[j].clone()).collect();
            set.push(points[i].clone());
            let gain = hypervolume(&set, reference) - current;
            if best.is_none_or(|(_, g)| gain > g) {
                best = Some((i, gain));
            }
        }
        let (i, gain) = best.expect("a candidate remains");
        chosen.push(i);
        current += gain;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_keeps_only_non_dominated_points() {
        let pts = vec![
            vec![1.0, 5.0],
            vec![2.0, 2.0],
            vec![3.0, 3.0], // dominated by (2, 2)
            vec![5.0, 1.0],
            vec![2.0, 2.0], // duplicate
        ];
        assert_eq!(front(&pts), vec![0, 1, 3]);
    }

    #[test]
    fn hypervolume_of_boxes() {
        // One point: a box. Two overlapping boxes in 2-D: union area.
        assert_eq!(
            hypervolume(&[vec![1.0, 1.0, 1.0]], &[2.0, 3.0, 4.0]),
            1.0 * 2.0 * 3.0
        );
        let a = hypervolume(&[vec![0.0, 2.0], vec![2.0, 0.0]], &[3.0, 3.0]);
        // exact: union of [0,3]x[2,3] (3) and [2,3]x[0,3] (3) minus overlap [2,3]x[2,3] (1) = 5
        assert!((a - 5.0).abs() < 1e-12, "{a}");
        // 3-D: two unit-overlapping boxes
        let v = hypervolume(
            &[vec![0.0, 1.0, 1.0], vec![1.0, 0.0, 0.0]],
            &[2.0, 2.0, 2.0],
        );
        // box A: 2·1·1 = 2, box B: 1·2·2 = 4, overlap [1,2]x[1,2]x[1,2] = 1
        assert!((v - 5.0).abs() < 1e-12, "{v}");
        // A dominated point adds nothing; a point beyond the reference adds nothing.
        let w = hypervolume(
            &[
                vec![0.0, 1.0, 1.0],
                vec![1.0, 0.0, 0.0],
                vec![1.5, 1.5, 1.5],
                vec![0.0, 0.0, 3.0],
            ],
            &[2.0, 2.0, 2.0],
        );
        assert!((w - 5.0).abs() < 1e-12, "{w}");
    }

    #[test]
    fn greedy_picks_the_biggest_box_first() {
        let pts = vec![vec![0.5, 0.5], vec![0.1, 0.9], vec![0.9, 0.1]];
        assert_eq!(greedy_by_contribution(&pts, &[1.0, 1.0], 1), vec![0]);
        assert_eq!(greedy_by_contribution(&pts, &[1.0, 1.0], 3).len(), 3);
        // Given first picks stay first; the rest still go by contribution.
        let pts = vec![
            vec![0.5, 0.5],
            vec![0.1, 0.9],
            vec![0.9, 0.1],
            vec![0.2, 0.2],
        ];
        assert_eq!(greedy_after(&pts, &[1.0, 1.0], 2, vec![1]), vec![1, 3]);
        assert_eq!(greedy_after(&pts, &[1.0, 1.0], 1, vec![2, 1]), vec![2]);
    }
}
