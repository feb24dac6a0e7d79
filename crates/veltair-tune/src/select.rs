//! Version selection: per layer, the small set of versions that covers the frontier — for each
//! (width, contention level) cell, the fastest version — deduplicated and capped.

use veltair_bundle::Latency;

/// The fastest version in each measured (width, level) cell, as `(width, level, version,
/// seconds)`, in cell order.
pub fn winners(versions: &[Vec<Latency>]) -> Vec<(u32, u32, usize, f64)> {
    let mut cells: Vec<(u32, u32)> = versions.iter().flatten().map(|l| (l.width, l.level)).collect();
    cells.sort_unstable();
    cells.dedup();
    cells
        .into_iter()
        .filter_map(|(w, l)| {
            versions
                .iter()
                .enumerate()
                .filter_map(|(v, lat)| lat.iter().find(|x| (x.width, x.level) == (w, l)).map(|x| (v, x.seconds)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(v, s)| (w, l, v, s))
        })
        .collect()
}

/// At most `keep` versions covering the cells: the solo winner at the widest width first (the
/// version a contention-blind runtime would use), then the other cell winners by how many cells
/// they win (ties: faster solo at width 1 first). With nothing measured, the first version.
pub fn select(versions: &[Vec<Latency>], keep: usize) -> Vec<usize> {
    let won = winners(versions);
    let Some(solo_wide) = won.iter().filter(|c| c.1 == 0).max_by_key(|c| c.0).map(|c| c.2) else {
        return vec![0];
    };
    let solo1 =
        |v: usize| versions[v].iter().find(|l| l.width == 1 && l.level == 0).map_or(f64::INFINITY, |l| l.seconds);
    let mut others: Vec<(usize, usize)> = Vec::new();
    for &(_, _, v, _) in &won {
        match others.iter_mut().find(|o| o.0 == v) {
            Some(o) => o.1 += 1,
            None => others.push((v, 1)),
        }
    }
    others.retain(|o| o.0 != solo_wide);
    others.sort_by(|a, b| b.1.cmp(&a.1).then(solo1(a.0).total_cmp(&solo1(b.0))));
    std::iter::once(solo_wide).chain(others.into_iter().map(|o| o.0)).take(keep.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(cells: &[(u32, u32, f64)]) -> Vec<Latency> {
        cells.iter().map(|&(width, level, seconds)| Latency { width, level, seconds }).collect()
    }

    #[test]
    fn keeps_the_winner_of_every_cell_solo_wide_first() {
        // v0: best solo at width 2; v1: best at width 1 under contention; v2: never best.
        let versions = vec![
            lat(&[(1, 0, 1.0), (1, 3, 3.0), (2, 0, 0.5)]),
            lat(&[(1, 0, 1.1), (1, 3, 1.5), (2, 0, 0.6)]),
            lat(&[(1, 0, 1.2), (1, 3, 2.0), (2, 0, 0.7)]),
        ];
        assert_eq!(select(&versions, 5), vec![0, 1]);
        assert_eq!(select(&versions, 1), vec![0]);
        let w = winners(&versions);
        assert_eq!(w.iter().map(|c| c.2).collect::<Vec<_>>(), vec![0, 1, 0]);
    }

    #[test]
    fn unmeasured_layers_keep_their_default() {
        assert_eq!(select(&[vec![], vec![]], 5), vec![0]);
    }

    #[test]
    fn cap_prefers_versions_winning_more_cells() {
        let versions = vec![
            lat(&[(1, 0, 1.0), (1, 1, 9.0), (1, 2, 9.0), (1, 3, 9.0), (2, 0, 0.5)]),
            lat(&[(1, 0, 2.0), (1, 1, 1.0), (1, 2, 9.0), (1, 3, 9.0), (2, 0, 0.9)]),
            lat(&[(1, 0, 2.0), (1, 1, 9.0), (1, 2, 1.0), (1, 3, 1.0), (2, 0, 0.9)]),
        ];
        assert_eq!(select(&versions, 2), vec![0, 2]);
        assert_eq!(select(&versions, 3), vec![0, 2, 1]);
    }
}
