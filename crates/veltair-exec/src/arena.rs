//! Activation arena planning: buffers whose lifetimes (step intervals) overlap get disjoint
//! regions; others may share. Greedy by decreasing size, each buffer at the lowest offset
//! that does not collide with an already placed, time-overlapping one.

/// A buffer's size in floats and the steps during which it must hold its value (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub elems: usize,
    pub first: usize,
    pub last: usize,
}

impl Lifetime {
    fn overlaps(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Region offsets for `buffers` (each aligned to 16 floats, 64 bytes) and the arena size.
pub fn plan_arena(buffers: &[Lifetime]) -> (Vec<usize>, usize) {
    const ALIGN: usize = 16;
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].elems), buffers[i].first));
    let mut offsets = vec![0; buffers.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0;
    for i in order {
        let size = buffers[i].elems.next_multiple_of(ALIGN);
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| buffers[j].overlaps(&buffers[i]))
            .map(|&j| (offsets[j], offsets[j] + buffers[j].elems.next_multiple_of(ALIGN)))
            .collect();
        busy.sort_unstable();
        let mut offset = 0;
        for (start, end) in busy {
            if offset + size <= start {
                break;
            }
            offset = offset.max(end);
        }
        offsets[i] = offset;
        total = total.max(offset + size);
        placed.push(i);
    }
    (offsets, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_overlapping_buffers_never_share_memory() {
        let mut seed = 7u64;
        let mut next = |m: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % m
        };
        for _ in 0..200 {
            let bufs: Vec<Lifetime> = (0..1 + next(30))
                .map(|_| {
                    let first = next(20);
                    Lifetime { elems: 1 + next(1000), first, last: first + next(6) }
                })
                .collect();
            let (off, total) = plan_arena(&bufs);
            for i in 0..bufs.len() {
                assert!(off[i] % 16 == 0 && off[i] + bufs[i].elems <= total);
                for j in 0..i {
                    let disjoint = off[i] + bufs[i].elems <= off[j] || off[j] + bufs[j].elems <= off[i];
                    assert!(!bufs[i].overlaps(&bufs[j]) || disjoint, "{:?} and {:?} collide", bufs[i], bufs[j]);
                }
            }
        }
    }

    #[test]
    fn sequential_buffers_reuse_memory() {
        let chain: Vec<Lifetime> = (0..10).map(|s| Lifetime { elems: 100, first: s, last: s + 1 }).collect();
        let (_, total) = plan_arena(&chain);
        assert_eq!(total, 2 * 112);
    }
}
