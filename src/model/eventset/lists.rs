//! The lists an event set keeps its pages in, by weight: runs of equal
//! shares ([`RunLists`]: uniform, hot/cold) or classes of shares within a
//! power of two ([`ClassLists`]: Zipf), each with its exact sum (see the
//! parent module).

use super::{EventTrack, ONE};

/// The event set of a guest whose shares come in runs: per run, a list
/// of its pages that are not mapped (weight: the run's share p) and one of
/// its merged pages (weight w·p, their writes being events), and each
/// page's place in its list. A page of a run is an event with one of the
/// run's two weights or not at all, so drawing by weight is choosing a
/// list by its weight times its length, then a page of it uniformly: O(1)
/// to draw and to update, one cache line each, where the tree takes a
/// walk per draw.
#[derive(Debug, Clone)]
pub struct RunLists {
    /// (first page, first page past, share) of each run.
    pub(super) runs: Vec<(usize, usize, u64)>,
    /// Lists `2r` (not mapped) and `2r + 1` (merged) of run r.
    pub(super) lists: Vec<Vec<u32>>,
    /// Each list's weight per page.
    weights: Vec<u64>,
    /// Each page's index in its list (the top bit: the merged list), or
    /// `NONE`.
    pub(super) pos: Vec<u32>,
    total: u64,
}

const NONE: u32 = u32::MAX;
const IN_MERGED: u32 = 1 << 31;

/// Which of its run's lists a page is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    None,
    Unmapped,
    Merged,
}

impl RunLists {
    pub(super) fn new(runs: &[(usize, u64)], n: usize, write: f64) -> RunLists {
        let mut start = 0;
        let runs: Vec<(usize, usize, u64)> = runs
            .iter()
            .map(|&(end, p)| {
                let r = (start, end.min(n), p);
                start = end.min(n);
                r
            })
            .collect();
        let weights = runs.iter().flat_map(|r| [r.2, scaled(r.2, write)]).collect();
        RunLists { lists: vec![Vec::new(); 2 * runs.len()], weights, runs, pos: vec![NONE; n], total: 0 }
    }

    pub(super) fn run_of(&self, page: usize) -> Option<usize> {
        self.runs.iter().position(|r| page >= r.0 && page < r.1)
    }

    /// The single run now ends at `end` (pages past it already taken out).
    pub(super) fn set_end(&mut self, end: usize) {
        self.runs[0].1 = end.min(self.pos.len());
    }

    /// Page `page` is now of `kind`.
    #[inline]
    pub(super) fn set(&mut self, page: usize, kind: Kind) {
        let Some(r) = self.run_of(page) else { return };
        let at = self.pos[page];
        let was = match at {
            NONE => Kind::None,
            a if a & IN_MERGED != 0 => Kind::Merged,
            _ => Kind::Unmapped,
        };
        if was == kind {
            return;
        }
        if was != Kind::None {
            let l = 2 * r + usize::from(was == Kind::Merged);
            let list = &mut self.lists[l];
            let idx = (at & !IN_MERGED) as usize;
            let last = *list.last().expect("a listed page");
            list.swap_remove(idx);
            if last as usize != page {
                self.pos[last as usize] = idx as u32 | (at & IN_MERGED);
            }
            self.pos[page] = NONE;
            self.total -= self.weights[l];
        }
        if kind != Kind::None {
            self.push(page, r, kind == Kind::Merged);
        }
    }

    /// Put page `page` of run `r`, in no list, at the end of the run's
    /// merged list or its list of pages not mapped.
    #[inline]
    pub(super) fn push(&mut self, page: usize, r: usize, merged: bool) {
        let l = 2 * r + usize::from(merged);
        self.pos[page] = self.lists[l].len() as u32 | if merged { IN_MERGED } else { 0 };
        self.lists[l].push(page as u32);
        self.total += self.weights[l];
    }

    pub(super) fn find(&self, mut u: u64) -> usize {
        for (l, list) in self.lists.iter().enumerate() {
            let w = self.weights[l];
            let mass = w * list.len() as u64;
            if u < mass {
                return list[(u / w) as usize] as usize;
            }
            u -= mass;
        }
        unreachable!("u is below the total")
    }
}

/// `p` units times the share `w`.
#[inline]
pub(super) fn scaled(p: u64, w: f64) -> u64 {
    (p as f64 * w.clamp(0.0, 1.0)).round() as u64
}

/// The event set of a guest with a share per page (Zipf): pages in
/// classes by the power of two their share lies under (class c holds
/// shares in [2^(c−1), 2^c) units), per class a list of pages not mapped
/// (weight pᵢ) and one of merged pages (weight w·pᵢ), each list with the
/// exact sum of its weights. A draw picks a list by its sum, then a page
/// of it uniformly, kept with probability weight / bound (the class's top,
/// at least twice any weight in it, so half the tries or more succeed):
/// each page comes out with probability weightᵢ / total.
#[derive(Debug, Clone)]
pub struct ClassLists {
    shares: std::sync::Arc<Vec<u64>>,
    /// Pages from here on have no share (past the working set).
    pub(super) limit: usize,
    write: f64,
    /// Lists `2c` (not mapped) and `2c + 1` (merged) of class c: each
    /// page, and its weight over the list's bound in 2⁻³² (the rejection
    /// test's threshold, kept beside the page so a try reads one cache
    /// line; rounding it down moves a page's chance by under 2⁻³¹ of it).
    lists: Vec<Vec<(u32, u32)>>,
    sums: Vec<u64>,
    /// The most a page of each list can weigh, plus one.
    bound: Vec<u64>,
    /// Each page's index in its list (the top bit: the merged list), or
    /// `NONE`.
    pub(super) pos: Vec<u32>,
    total: u64,
}

/// Classes of [`ClassLists`]: shares up to [`ONE`] (2⁴⁰ units).
const CLASSES: usize = 42;

impl ClassLists {
    pub(super) fn new(shares: std::sync::Arc<Vec<u64>>, limit: usize, n: usize, write: f64) -> ClassLists {
        let bound = (0..CLASSES)
            .flat_map(|c| {
                let top = 1u64 << c;
                [top, scaled(top, write) + 1]
            })
            .collect();
        ClassLists {
            shares,
            limit,
            write,
            lists: vec![Vec::new(); 2 * CLASSES],
            sums: vec![0; 2 * CLASSES],
            bound,
            pos: vec![NONE; n],
            total: 0,
        }
    }

    #[inline]
    fn share(&self, page: usize) -> u64 {
        if page < self.limit { self.shares.get(page).copied().unwrap_or(0) } else { 0 }
    }

    /// Page `page`'s list when it is of `kind`, and its weight there.
    #[inline]
    fn list_of(&self, page: usize, kind: Kind) -> (usize, u64) {
        let p = self.share(page);
        debug_assert!(p <= ONE, "a share is at most every touch");
        let class = (u64::BITS - p.leading_zeros()) as usize;
        match kind {
            Kind::Merged => (2 * class + 1, scaled(p, self.write)),
            _ => (2 * class, p),
        }
    }

    /// Page `page` is now of `kind`.
    #[inline]
    pub(super) fn set(&mut self, page: usize, kind: Kind) {
        let at = self.pos[page];
        let was = match at {
            NONE => Kind::None,
            a if a & IN_MERGED != 0 => Kind::Merged,
            _ => Kind::Unmapped,
        };
        // A page touched never is no event, whatever its state.
        let kind = if self.share(page) == 0 { Kind::None } else { kind };
        if was == kind {
            return;
        }
        if was != Kind::None {
            let (l, w) = self.list_of(page, was);
            let list = &mut self.lists[l];
            let idx = (at & !IN_MERGED) as usize;
            let last = list.last().expect("a listed page").0;
            list.swap_remove(idx);
            if last as usize != page {
                self.pos[last as usize] = idx as u32 | (at & IN_MERGED);
            }
            self.pos[page] = NONE;
            self.sums[l] -= w;
            self.total -= w;
        }
        if kind != Kind::None {
            self.push(page, kind);
        }
    }

    /// Put page `page`, in no list, in its list for `kind` (not `None`).
    #[inline]
    pub(super) fn push(&mut self, page: usize, kind: Kind) {
        let (l, w) = self.list_of(page, kind);
        let merged = kind == Kind::Merged;
        // The rejection threshold w/bound in 2⁻³²: a list of pages not
        // mapped is bounded by its class's power of two, a shift.
        let key = if merged {
            ((u128::from(w) << 32) / u128::from(self.bound[l])) as u32
        } else {
            ((u128::from(w) << 32) >> (l / 2)) as u32
        };
        self.pos[page] = self.lists[l].len() as u32 | if merged { IN_MERGED } else { 0 };
        self.lists[l].push((page as u32, key));
        self.sums[l] += w;
        self.total += w;
    }

    /// The lists of pages in `states`, none listed yet: each page pushed
    /// where `set` would put it.
    pub(super) fn fill(&mut self, states: &[u8]) {
        for (page, &st) in states.iter().enumerate().take(self.pos.len()) {
            let kind = EventTrack::kind(st);
            if kind != Kind::None && self.share(page) != 0 {
                self.push(page, kind);
            }
        }
    }

    fn find<R: rand::Rng + ?Sized>(&self, mut u: u64, rng: &mut R) -> usize {
        use rand::RngExt;
        for (l, &sum) in self.sums.iter().enumerate() {
            if u >= sum {
                u -= sum;
                continue;
            }
            let list = &self.lists[l];
            loop {
                let (page, key) = list[rng.random_range(0..list.len())];
                if rng.random::<u32>() < key {
                    return page as usize;
                }
            }
        }
        unreachable!("u is below the total")
    }
}

/// The pages that are events, weighted by their touch shares.
#[derive(Debug, Clone)]
pub enum Events {
    Runs(RunLists),
    Classes(ClassLists),
}

impl Events {
    pub fn total(&self) -> u64 {
        match self {
            Events::Runs(r) => r.total,
            Events::Classes(c) => c.total,
        }
    }

    /// The chance that a touch is an event.
    pub fn probability(&self) -> f64 {
        self.total() as f64 / ONE as f64
    }

    /// An event page, drawn with probability its weight / total from a
    /// uniform `u` below the total (and `rng`, for a rejection draw).
    pub fn find<R: rand::Rng + ?Sized>(&self, u: u64, rng: &mut R) -> usize {
        match self {
            Events::Runs(r) => r.find(u),
            Events::Classes(c) => c.find(u, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Class lists over `weights` as shares, every page not mapped.
    fn classes(weights: &[u64]) -> ClassLists {
        let mut c = ClassLists::new(std::sync::Arc::new(weights.to_vec()), weights.len(), weights.len(), 0.25);
        for page in 0..weights.len() {
            c.set(page, Kind::Unmapped);
        }
        c
    }

    #[test]
    fn class_lists_sum_exactly_after_updates() {
        // The closed form is the plain sum of the weights of the pages
        // listed: pᵢ when not mapped, round(pᵢ/4) when merged (write share
        // 1/4), none when mapped or never touched.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let n = 1000;
        let shares: Vec<u64> = (0..n).map(|_| rng.random_range(0..1u64 << 30)).collect();
        let mut c = classes(&shares);
        let mut kinds = vec![Kind::Unmapped; n];
        for _ in 0..20_000 {
            let i = rng.random_range(0..n);
            let k = [Kind::None, Kind::Unmapped, Kind::Merged][rng.random_range(0..3)];
            c.set(i, k);
            kinds[i] = k;
        }
        let want: u64 = (0..n)
            .map(|i| match kinds[i] {
                Kind::None => 0,
                Kind::Unmapped => shares[i],
                Kind::Merged => scaled(shares[i], 0.25),
            })
            .sum();
        assert_eq!(c.total, want);
        assert_eq!(c.sums.iter().sum::<u64>(), want);
        for (l, list) in c.lists.iter().enumerate() {
            for (j, &(page, _)) in list.iter().enumerate() {
                assert_eq!(c.pos[page as usize] & !IN_MERGED, j as u32, "page {page} in list {l}");
            }
        }
    }

    #[test]
    fn draws_follow_the_weights() {
        // Pages weighted 1:2:3:4 (and a zero), and one merged, drawn
        // 100,000 times: each count within 4 standard deviations of its
        // binomial mean. Weights 2 and 3 share a class (a list whose
        // draws are thinned by rejection).
        let unit = 1u64 << 20;
        let mut c = classes(&[unit, 0, 2 * unit, 3 * unit, 4 * unit, 8 * unit]);
        c.set(5, Kind::Merged);
        // Page 5 merged at write share 1/4: weight 2 units.
        assert_eq!(c.total, 12 * unit);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut counts = [0u64; 6];
        let draws = 100_000u64;
        for _ in 0..draws {
            let u = rng.random_range(0..c.total);
            counts[c.find(u, &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (i, w) in [(0, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 2.0)] {
            let p = w / 12.0;
            let mean = draws as f64 * p;
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            assert!((counts[i] as f64 - mean).abs() < 4.0 * sd, "page {i}: {} against {mean}", counts[i]);
        }
    }

    #[test]
    fn a_working_set_half_resident_misses_by_the_shares_not_mapped() {
        // 4,096 pages touched uniformly (as one share per page), the even
        // ones resident: the chance that a touch faults is 1/2.
        let n = 4096;
        let mut c = classes(&vec![ONE / n as u64; n]);
        for page in (0..n).step_by(2) {
            c.set(page, Kind::None);
        }
        assert_eq!(Events::Classes(c).probability(), 0.5);
    }

    #[test]
    fn run_lists_draw_by_share_and_follow_updates() {
        // Two runs, pages 0..4 at share 3 and 4..10 at 1: with pages 1, 2
        // (run one) and 5, 6, 7 (run two) events, the total is 3·2 + 1·3
        // = 9 and each event page is drawn with its share / 9.
        let mut r = RunLists::new(&[(4, 3), (10, 1)], 12, 0.0);
        for p in [1, 2, 5, 6, 7, 11] {
            r.set(p, Kind::Unmapped);
        }
        r.set(0, Kind::None);
        assert_eq!(r.total, 9, "page 11 is past the runs: never an event");
        let mut counts = [0u64; 12];
        for u in 0..9 {
            counts[r.find(u)] += 1;
        }
        assert_eq!(counts, [0, 3, 3, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
        r.set(1, Kind::None);
        r.set(6, Kind::None);
        r.set(6, Kind::None);
        assert_eq!(r.total, 5);
        let mut seen: Vec<usize> = (0..5).map(|u| r.find(u)).collect();
        seen.sort();
        assert_eq!(seen, vec![2, 2, 2, 5, 7]);
    }

    #[test]
    fn a_merged_page_weighs_its_share_of_writes() {
        // Run of pages 0..8 at share 1,000, half the touches writing: a
        // page not mapped weighs 1,000 (every touch of it faults), a merged
        // one 500 (its writes break the sharing), a mapped one 0. Pages 0
        // and 1 not mapped, 2 and 3 merged: 2,000 + 1,000.
        let mut r = RunLists::new(&[(8, 1000)], 8, 0.5);
        r.set(0, Kind::Unmapped);
        r.set(1, Kind::Unmapped);
        r.set(2, Kind::Merged);
        r.set(3, Kind::Merged);
        assert_eq!(r.total, 3000);
        let mut counts = [0u64; 8];
        for u in (0..3000).step_by(100) {
            counts[r.find(u)] += 1;
        }
        assert_eq!(counts, [10, 10, 5, 5, 0, 0, 0, 0]);
        // A merged page the guest wrote (copy-on-write) is mapped: no event.
        r.set(2, Kind::None);
        // A page faulted in and then merged moves lists.
        r.set(0, Kind::Merged);
        assert_eq!(r.total, 1000 + 500 + 500);
        // The same weights through the tree.
        let st = |res: u8, merged: bool| res | if merged { crate::model::page::MERGED } else { 0 };
        assert_eq!(EventTrack::weight(st(0, false), 1000, 0.5), 1000);
        assert_eq!(EventTrack::weight(st(1, true), 1000, 0.5), 500);
        assert_eq!(EventTrack::weight(st(1, false), 1000, 0.5), 0);
    }
}
