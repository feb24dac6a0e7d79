//! The cores the scheduler hands out: each is either free or held by one running block, so
//! nothing is ever oversubscribed. Allocation takes the lowest free cores.

/// Free/held state of every core.
#[derive(Clone, Debug)]
pub struct CoreSet {
    held: Vec<bool>,
}

impl CoreSet {
    pub fn new(cores: usize) -> CoreSet {
        CoreSet { held: vec![false; cores] }
    }

    pub fn total(&self) -> usize {
        self.held.len()
    }

    pub fn free(&self) -> usize {
        self.held.iter().filter(|h| !**h).count()
    }

    /// Takes `n` free cores (the lowest ids), or none when fewer are free.
    pub fn take(&mut self, n: usize) -> Option<Vec<usize>> {
        if n == 0 || self.free() < n {
            return None;
        }
        let ids: Vec<usize> = (0..self.held.len()).filter(|&c| !self.held[c]).take(n).collect();
        for &c in &ids {
            self.held[c] = true;
        }
        Some(ids)
    }

    /// Returns `ids` (each must be held).
    pub fn give_back(&mut self, ids: &[usize]) {
        for &c in ids {
            debug_assert!(self.held[c], "core {c} returned twice");
            self.held[c] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_core_twice() {
        let mut cs = CoreSet::new(4);
        let a = cs.take(3).unwrap();
        assert_eq!(a, vec![0, 1, 2]);
        assert!(cs.take(2).is_none());
        let b = cs.take(1).unwrap();
        assert_eq!(b, vec![3]);
        assert_eq!(cs.free(), 0);
        cs.give_back(&a[1..2]);
        assert_eq!(cs.take(1).unwrap(), vec![1]);
        assert!(cs.take(0).is_none());
    }
}
