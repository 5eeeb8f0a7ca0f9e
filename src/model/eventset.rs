//! The pages whose next touch changes state, weighted by how often they
//! are touched: the set an engine draws its next fault from without
//! playing the hits in between.
//!
//! A guest's touches are independent draws from its pattern (page i with
//! probability pᵢ). A touch changes state when it lands on a page that is
//! not resident (a fault), or writes a page KSM merged (a copy-on-write
//! break, with the write share w): page i's event weight is pᵢ, w·pᵢ or 0.
//! With q the total event weight, the touches up to and including the
//! next event are geometric with success probability q, and the event's
//! page is drawn with probability weightᵢ / q: the same distribution as
//! playing every touch, at a cost per event instead of per touch.
//!
//! Weights are fixed-point integers (2⁻⁴⁰ of a touch each, so a page of a
//! 2⁴⁰-page working set still weighs one unit) in a Fenwick tree
//! (Fenwick 1994): setting a weight and drawing by weight are O(log n),
//! and the total is exact however many updates were made, where floating
//! sums would drift.

/// One touch's worth of weight: 2⁴⁰ units.
pub const ONE: u64 = 1 << 40;

/// A probability as weight units.
pub fn units(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * ONE as f64).round() as u64
}

/// Event weights of pages `0..n`.
#[derive(Debug, Clone, Default)]
pub struct EventSet {
    /// Fenwick tree, 1-based: `tree[i]` sums the weights of pages
    /// `(i − lowbit(i), i]` (1-based).
    tree: Vec<u64>,
    /// Each page's weight.
    weight: Vec<u64>,
    total: u64,
}

impl EventSet {
    /// `n` pages of weight 0.
    pub fn new(n: usize) -> EventSet {
        EventSet { tree: vec![0; n + 1], weight: vec![0; n], total: 0 }
    }

    /// Pages with the given weights, built in O(n).
    pub fn from_weights(weights: &[u64]) -> EventSet {
        let n = weights.len();
        let mut tree = vec![0u64; n + 1];
        tree[1..].copy_from_slice(weights);
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                tree[j] += tree[i];
            }
        }
        EventSet { tree, weight: weights.to_vec(), total: weights.iter().sum() }
    }

    pub fn len(&self) -> usize {
        self.weight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }

    /// The total event weight, in units ([`ONE`] = every touch).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The chance that a touch is an event.
    pub fn probability(&self) -> f64 {
        self.total as f64 / ONE as f64
    }

    pub fn weight(&self, page: usize) -> u64 {
        self.weight[page]
    }

    /// Set page `page`'s weight.
    #[inline]
    pub fn set(&mut self, page: usize, w: u64) {
        let old = self.weight[page];
        if old == w {
            return;
        }
        self.weight[page] = w;
        self.total = self.total - old + w;
        let mut i = page + 1;
        if w > old {
            let d = w - old;
            while i < self.tree.len() {
                self.tree[i] += d;
                i += i & i.wrapping_neg();
            }
        } else {
            let d = old - w;
            while i < self.tree.len() {
                self.tree[i] -= d;
                i += i & i.wrapping_neg();
            }
        }
    }

    /// The page holding unit `u` (0 ≤ u < total) of the weight laid out in
    /// page order: page i is found for u in [Wᵢ, Wᵢ + weightᵢ), Wᵢ the
    /// weight of the pages before it. A uniform `u` draws a page with
    /// probability weightᵢ / total.
    pub fn find(&self, mut u: u64) -> usize {
        debug_assert!(u < self.total);
        let n = self.tree.len() - 1;
        let mut pos = 0usize;
        let mut step = if n == 0 { 0 } else { 1usize << (usize::BITS - 1 - n.leading_zeros()) };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= u {
                u -= self.tree[next];
                pos = next;
            }
            step >>= 1;
        }
        pos
    }

    /// The weight of pages `0..end`.
    pub fn prefix(&self, end: usize) -> u64 {
        let mut i = end;
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i &= i - 1;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn prefixes_and_finds_agree_with_a_plain_sum_after_updates() {
        // The closed form is the running sum itself.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let n = 1000;
        let mut w: Vec<u64> = (0..n).map(|_| rng.random_range(0..1000u64)).collect();
        let mut s = EventSet::from_weights(&w);
        for _ in 0..5000 {
            let i = rng.random_range(0..n);
            let v = if rng.random::<bool>() { 0 } else { rng.random_range(0..1000u64) };
            s.set(i, v);
            w[i] = v;
        }
        let mut run = 0;
        for (i, &wi) in w.iter().enumerate() {
            assert_eq!(s.prefix(i), run, "prefix {i}");
            if wi > 0 {
                assert_eq!(s.find(run), i);
                assert_eq!(s.find(run + wi - 1), i);
            }
            run += wi;
        }
        assert_eq!(s.total(), run);
        let built = EventSet::from_weights(&w);
        assert_eq!(built.tree, s.tree, "an O(n) build equals the updates");
    }

    #[test]
    fn draws_follow_the_weights() {
        // Pages weighted 1:2:3:4 (and a zero) drawn 100,000 times: each
        // count within 4 standard deviations of its binomial mean.
        let s = EventSet::from_weights(&[1, 0, 2, 3, 4]);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut counts = [0u64; 5];
        let draws = 100_000u64;
        for _ in 0..draws {
            counts[s.find(rng.random_range(0..s.total()))] += 1;
        }
        assert_eq!(counts[1], 0);
        for (i, w) in [(0, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)] {
            let p = w / 10.0;
            let mean = draws as f64 * p;
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            assert!((counts[i] as f64 - mean).abs() < 4.0 * sd, "page {i}: {} against {mean}", counts[i]);
        }
    }

    #[test]
    fn a_uniform_working_set_half_resident_misses_half_the_time() {
        // 4,096 pages touched uniformly, the even ones resident: the
        // chance that a touch faults is 1/2 (2,048 · 2⁴⁰/4,096 units).
        let n = 4096;
        let w: Vec<u64> = (0..n).map(|i| if i % 2 == 1 { ONE / n as u64 } else { 0 }).collect();
        let s = EventSet::from_weights(&w);
        assert_eq!(s.probability(), 0.5);
    }
}
