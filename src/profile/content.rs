//! What guests' pages hold, estimated from a sample: the share of zero
//! pages, of pages whose content also appears in another profiled guest
//! (what KSM could merge across guests, as VMware ESX and Memory Buddies
//! estimate from page hashes), and of duplicates within one guest.
//!
//! The sample is chosen by a seeded hash of a page's offset in guest RAM,
//! so every guest samples the same offsets: pages of one image that sit at
//! the same guest-physical address are compared exactly. Only present
//! pages are read (reading a swapped one would fault it back in), and only
//! a 64-bit hash of each is kept, never its contents.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use serde::Serialize;

use crate::model::page::mix64;

/// Whether the page at `offset` (pages from the start of guest RAM) is in
/// the sample at `rate` (a share, 1 = every page).
pub fn sampled(offset: u64, rate: f64, seed: u64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
    mix64(offset ^ mix64(seed ^ 0x5A4D_504C)) < threshold
}

/// A page's content as the sample keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Seen {
    Zero,
    /// A 64-bit hash of the 4 KiB.
    Hash(u64),
}

/// Hash a page (a word-wise multiply-xorshift in four independent lanes,
/// so the multiplies overlap instead of waiting on each other: fast
/// enough to read a 1/64 sample of many gigabytes; collisions between
/// 64-bit hashes of a few hundred thousand pages are negligible).
pub fn seen(page: &[u8; 4096]) -> Seen {
    let mut h: [u64; 4] = [0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0x27D4_EB2F_1656_67C5];
    let mut any = 0u64;
    for chunk in page.chunks_exact(32) {
        for (lane, w) in h.iter_mut().zip(chunk.chunks_exact(8)) {
            let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            any |= w;
            *lane = (*lane ^ w).wrapping_mul(0xFF51_AFD7_ED55_8CCD).rotate_left(31);
        }
    }
    if any == 0 { Seen::Zero } else { Seen::Hash(mix64(h[0] ^ mix64(h[1] ^ mix64(h[2] ^ mix64(h[3]))))) }
}

/// A share measured on `n` sampled pages, with a 95% interval: for a
/// plain count ([`Share::of`]) Wilson's score interval (Wilson 1927; it
/// stays inside 0..1 and is sound for shares near 0 or 1, unlike the
/// normal approximation); for the weighted estimators, see `estimate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

impl Share {
    pub fn of(hits: u64, n: u64) -> Share {
        if n == 0 {
            return Share { share: 0.0, low: 0.0, high: 1.0 };
        }
        let (k, n) = (hits as f64, n as f64);
        let z = 1.959_963_984_540_054;
        let p = k / n;
        let denom = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denom;
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
        Share { share: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0) }
    }
}

/// A guest's content shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Content {
    /// Present pages sampled and read.
    pub sampled: u64,
    pub zero: Share,
    /// Non-zero pages (not seen duplicated within this guest) whose
    /// content the profiled guest that shares most with this one holds
    /// too. A twin at the same offset is seen
    /// whenever the page is sampled; one elsewhere only when one of its
    /// copies is sampled too (chance r for a single twin), so each such
    /// match counts the inverse of that chance (Horvitz and Thompson's
    /// estimator).
    pub shared: Share,
    /// Non-zero pages whose content occurs twice or more in this guest:
    /// contents seen twice or more in the sample, and for contents seen
    /// once the twins a sample at r misses, estimated from the pairs it
    /// did see (each true pair is seen whole with chance r² and as a
    /// single page with chance 2r(1 − r)).
    pub duplicate: Share,
}

/// A share `k / n` with a 95% interval: the normal one from the variance
/// `var` of the estimate k, widened to at least the Wilson interval of k
/// taken as a plain count (so an estimate with few or no hits, whose
/// variance estimate is near 0, still gets the width its sample size
/// allows).
fn estimate(k: f64, var: f64, n: f64) -> Share {
    if n <= 0.0 {
        return Share { share: 0.0, low: 0.0, high: 1.0 };
    }
    let half = 1.959_963_984_540_054 * var.max(0.0).sqrt() / n;
    let share = (k / n).clamp(0.0, 1.0);
    let wilson = Share::of(k.round().clamp(0.0, n) as u64, n as u64);
    Share { share, low: (share - half).max(0.0).min(wilson.low), high: (share + half).min(1.0).max(wilson.high) }
}

/// A hasher for the keys here, page offsets and 64-bit content hashes:
/// one [`mix64`] of the key xor a key chosen per process, several times
/// cheaper than the standard library's SipHash on the millions of
/// lookups that comparing 16 guests' samples takes. The per-process key
/// keeps a guest from filling pages whose hashes all land in one bucket.
#[derive(Clone, Copy)]
struct MixState(u64);

impl Default for MixState {
    fn default() -> MixState {
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        MixState(*KEY.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5EEDu64)))
    }
}

impl BuildHasher for MixState {
    type Hasher = Mix;
    fn build_hasher(&self) -> Mix {
        Mix(self.0)
    }
}

struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(self.0 ^ n);
    }
}

/// A map keyed by offset or content hash.
type Map<V> = HashMap<u64, V, MixState>;

/// Each guest's non-zero pages' hashes by offset.
fn hashes_by_offset(samples: &[Vec<(u64, Seen)>]) -> Vec<Map<u64>> {
    samples
        .iter()
        .map(|s| s.iter().filter_map(|&(o, v)| if let Seen::Hash(h) = v { Some((o, h)) } else { None }).collect())
        .collect()
}

/// How many times each non-zero content occurs in each guest's sample.
fn hash_counts(samples: &[Vec<(u64, Seen)>]) -> Vec<Map<u32>> {
    samples
        .iter()
        .map(|s| {
            let mut c: Map<u32> = Map::default();
            for (_, v) in s {
                if let Seen::Hash(h) = v {
                    *c.entry(*h).or_insert(0) += 1;
                }
            }
            c
        })
        .collect()
}

/// The shares of each guest from their samples: (offset in guest RAM,
/// what the page held) for each present page sampled at `rate`.
pub fn shares(samples: &[Vec<(u64, Seen)>], rate: f64) -> Vec<Content> {
    let r = rate.clamp(1e-9, 1.0);
    let by_offset = hashes_by_offset(samples);
    let counts = hash_counts(samples);
    // How many guests hold each content: one held by a single guest needs
    // no look in the others.
    let mut holders: Map<u32> = Map::default();
    for c in &counts {
        for &h in c.keys() {
            *holders.entry(h).or_insert(0) += 1;
        }
    }
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.len() as f64;
            let zero = s.iter().filter(|(_, v)| *v == Seen::Zero).count() as u64;
            // Shared: against each other guest, keep the largest (what KSM
            // could merge with the guest that shares most with this one),
            // with that guest's interval.
            let mut shared = estimate(0.0, 0.0, n);
            // The pages that can count: not duplicated within the guest
            // (those are counted apart), and holding content another
            // guest's sample holds too (at the same offset or elsewhere).
            let held: Vec<(u64, u64)> = s
                .iter()
                .filter_map(|&(o, v)| match v {
                    Seen::Hash(h)
                        if counts[i].get(&h).copied().unwrap_or(0) < 2
                            && holders.get(&h).copied().unwrap_or(0) >= 2 =>
                    {
                        Some((o, h))
                    }
                    _ => None,
                })
                .collect();
            for j in (0..samples.len()).filter(|&j| j != i) {
                let (mut same, mut elsewhere, mut var_elsewhere) = (0.0, 0.0, 0.0);
                for &(o, h) in &held {
                    if by_offset[j].get(&o) == Some(&h) {
                        same += 1.0;
                    } else if let Some(&m) = counts[j].get(&h) {
                        // Seen with the chance that at least one of its
                        // copies in j is sampled: r for a single twin; a
                        // content seen m ≥ 2 times there has about m/r
                        // copies, one of which is sampled almost surely.
                        let copies = if m == 1 { 1.0 } else { f64::from(m) / r };
                        let p = 1.0 - (1.0 - r).powf(copies);
                        elsewhere += 1.0 / p;
                        var_elsewhere += (1.0 - p) / (p * p);
                    }
                }
                let k = same + elsewhere;
                let var = same * (1.0 - same / n.max(1.0)) + var_elsewhere;
                let e = estimate(k, var, n);
                if e.share > shared.share {
                    shared = e;
                }
            }
            // Duplicates within the guest.
            let (mut seen_twice, mut pairs) = (0.0, 0.0);
            for &c in counts[i].values() {
                if c >= 2 {
                    seen_twice += f64::from(c);
                }
                if c == 2 {
                    pairs += 1.0;
                }
            }
            let missed = 2.0 * pairs * (1.0 - r) / r;
            let dup = estimate(seen_twice + missed, seen_twice + (2.0 * (1.0 - r) / r).powi(2) * pairs, n);
            Content { sampled: s.len() as u64, zero: Share::of(zero, s.len() as u64), shared, duplicate: dup }
        })
        .collect()
}

/// How each content class fared between two reads of one guest's sample:
/// of the pages of the class at the first read (and present at both),
/// the weight and the part of it whose content changed by the second.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ClassDecay {
    /// Pages of the class at the first read, present at both.
    pub pages: u64,
    /// Their weight (the estimator's: 1 for a zero, duplicate or
    /// same-offset shared page, the inverse of its chance of being seen
    /// for one shared with a page elsewhere).
    pub weight: f64,
    /// The weight of those whose content changed.
    pub changed: f64,
}

impl ClassDecay {
    /// The share of the class that changed (`None`: no page of it).
    pub fn share(&self) -> Option<f64> {
        (self.pages > 0 && self.weight > 0.0).then(|| self.changed / self.weight)
    }
}

/// Each guest's content classes (shared, zero, duplicate) at a `first`
/// read of part of its sample (the write sample), and how much of each had
/// changed at the `second` read of all of it: a class that lies in the
/// working set decays as the guest writes, one outside does not.
///
/// A page's class at the first read is told as [`shares`] tells it, with
/// the second read of the whole sample as the reference: zero; content
/// found again in this guest at another offset (duplicate); or content
/// another guest holds at the same offset (at either read) or elsewhere
/// (at the second), weighted by the inverse of its chance of being seen.
/// Content every guest wrote over between the reads is not seen as
/// shared: the estimate leans to the class lying outside the working set.
pub fn decay(first: &[Vec<(u64, Seen)>], second: &[Vec<(u64, Seen)>], rate: f64) -> Vec<[ClassDecay; 3]> {
    let r = rate.clamp(1e-9, 1.0);
    let (first_at, second_at) = (hashes_by_offset(first), hashes_by_offset(second));
    let counts = hash_counts(second);
    // The chance that a content with `m` copies in a sample at rate r was
    // sampled at least once.
    let seen = |m: u32| {
        let copies = if m == 1 { 1.0 } else { f64::from(m) / r };
        1.0 - (1.0 - r).powf(copies)
    };
    first
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let later: Map<Seen> = second.get(i).map(|v| v.iter().copied().collect()).unwrap_or_default();
            let mut out = [ClassDecay::default(); 3];
            for &(o, v) in s {
                let Some(&now) = later.get(&o) else { continue };
                let (class, weight) = match v {
                    Seen::Zero => (1, 1.0),
                    Seen::Hash(h) => {
                        // Elsewhere in this guest at the second read.
                        let own = counts[i].get(&h).copied().unwrap_or(0) - u32::from(now == v);
                        if own >= 1 {
                            (2, 1.0 / seen(own))
                        } else {
                            // Shared: the likeliest sighting over the other
                            // guests (the same offset: seen for sure).
                            let mut best: Option<f64> = None;
                            for j in (0..first.len()).filter(|&j| j != i) {
                                let p = if first_at[j].get(&o) == Some(&h) || second_at[j].get(&o) == Some(&h) {
                                    1.0
                                } else if let Some(&m) = counts[j].get(&h) {
                                    seen(m)
                                } else {
                                    continue;
                                };
                                best = Some(best.map_or(p, |b: f64| b.max(p)));
                            }
                            match best {
                                Some(p) => (0, 1.0 / p),
                                None => continue,
                            }
                        }
                    }
                };
                let d = &mut out[class];
                d.pages += 1;
                d.weight += weight;
                if now != v {
                    d.changed += weight;
                }
            }
            out
        })
        .collect()
}

/// The share of a content class in the working set when the second read
/// was made, from the share `changed` of it whose content changed between
/// the reads, when the workload writes a share `written` of its working
/// set's pages over the same time. A part h of the class in the working
/// set loses h·written and the rest keeps, so h = changed / written
/// (at most 1), and of what is left h(1 − written) / (h(1 − written) +
/// 1 − h) is in the working set.
pub fn in_working_set(changed: f64, written: f64) -> f64 {
    if written <= 0.0 {
        return 0.0;
    }
    let h = (changed / written).clamp(0.0, 1.0);
    let kept = h * (1.0 - written);
    if kept + (1.0 - h) <= 0.0 { 1.0 } else { kept / (kept + 1.0 - h) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_samples_the_same_offsets_at_about_the_rate() {
        let rate = 1.0 / 64.0;
        let n = 1 << 20;
        let picked: Vec<u64> = (0..n).filter(|&o| sampled(o, rate, 7)).collect();
        // Binomial(2^20, 1/64): mean 16384, sd 127; 5 sd is ±635.
        assert!((picked.len() as i64 - 16_384).abs() < 635, "{}", picked.len());
        assert!(picked.iter().all(|&o| sampled(o, rate, 7)), "deterministic per offset");
    }

    #[test]
    fn wilson_interval_matches_the_textbook() {
        // Wilson's interval for 10 of 100 at 95%: 0.0552 .. 0.1744
        // (Newcombe 1998, Statistics in Medicine 17, table I, method 3).
        let s = Share::of(10, 100);
        assert!((s.low - 0.0552).abs() < 5e-4 && (s.high - 0.1744).abs() < 5e-4, "{s:?}");
        assert_eq!(Share::of(0, 0).high, 1.0);
    }

    #[test]
    fn zero_shared_and_duplicate_pages_are_told_apart() {
        let zero = [0u8; 4096];
        let mut a = [1u8; 4096];
        let mut b = [2u8; 4096];
        let image = seen(&a);
        a[0] = 9;
        b[0] = 9;
        assert_ne!(seen(&a), seen(&b));
        assert_eq!(seen(&zero), Seen::Zero);
        // Everything sampled (r = 1): guest 0 holds zero, the image page
        // at offset 1, its own page twice; guest 1 the image page at
        // offset 5, and its own.
        let g0 = vec![(0, Seen::Zero), (1, image), (2, seen(&a)), (3, seen(&a))];
        let g1 = vec![(5, image), (6, seen(&b))];
        let s = shares(&[g0, g1], 1.0);
        assert_eq!(s[0].zero.share, 0.25);
        assert_eq!(s[0].shared.share, 0.25);
        assert_eq!(s[0].duplicate.share, 0.5);
        assert_eq!(s[1].shared.share, 0.5);
    }

    #[test]
    fn twins_at_other_offsets_are_counted_at_one_over_the_rate() {
        // Two guests of 100,000 pages; 30,000 image pages in each, at
        // unrelated offsets. Sampled by offset at 1/8, a guest's sampled
        // image page finds its twin sampled with chance 1/8: the estimate
        // scales those matches by 8 and lands near 0.3.
        let rate = 1.0 / 8.0;
        let guest = |shift: u64| -> Vec<(u64, Seen)> {
            // Image page i sits at offset (i * 7919 + shift) % 100000 (7919
            // is prime to 100000: one page per offset).
            let mut image_at = vec![None; 100_000];
            for i in 0..30_000u64 {
                image_at[((i * 7919 + shift) % 100_000) as usize] = Some(i);
            }
            (0..100_000u64)
                .filter(|&o| sampled(o, rate, 3))
                .map(|o| match image_at[o as usize] {
                    Some(i) => (o, Seen::Hash(mix64(i | (1 << 62)))),
                    None => (o, Seen::Hash(mix64(o | ((shift + 1) << 40)))),
                })
                .collect()
        };
        let s = shares(&[guest(0), guest(12_345)], rate);
        for c in &s {
            assert!((c.shared.share - 0.3).abs() < 0.03, "{c:?}");
            assert!(c.shared.low < 0.3 && 0.3 < c.shared.high, "{c:?}");
            assert_eq!(c.duplicate.share, 0.0);
        }
    }

    #[test]
    fn contents_with_many_copies_are_not_counted_many_times_over() {
        // 100 contents, each on 100 pages of both guests at unrelated
        // offsets (10,000 of 100,000 pages, 0.1: a guest's pages filled
        // with one pattern), the rest unique. A sampled copy finds some of
        // the other guest's copies sampled: weighting it 1/r as a single
        // twin would claim 0.8 of the guest shared. (Contents with a few
        // copies, seen once in the other guest's sample, are still taken
        // for single twins: overcounted up to 1/r.) Every one of those
        // pages also has 99 copies in its own guest, so it is classed a
        // duplicate within the guest (what KSM merges inside one guest
        // already), not a cross-guest share: duplicate 0.1, shared 0.
        let rate = 1.0 / 8.0;
        let guest = |shift: u64| -> Vec<(u64, Seen)> {
            (0..100_000u64)
                .filter(|&o| sampled(o, rate, 5))
                .map(|o| {
                    let slot = (o * 7919 + shift) % 100_000;
                    if slot < 10_000 {
                        (o, Seen::Hash(mix64((slot % 100) | (1 << 62))))
                    } else {
                        (o, Seen::Hash(mix64(o | ((shift + 1) << 40))))
                    }
                })
                .collect()
        };
        for c in shares(&[guest(0), guest(4242)], rate) {
            assert!((c.duplicate.share - 0.1).abs() < 0.02, "{c:?}");
            assert!(c.duplicate.low < 0.1 && 0.1 < c.duplicate.high, "{c:?}");
            assert_eq!(c.shared.share, 0.0, "{c:?}");
        }
    }

    #[test]
    fn a_class_decays_by_its_part_in_the_working_set() {
        // Two guests, every page sampled; guest 0's pages 0..100 zero and
        // 100..200 alike with guest 1 at the same offsets. Between the
        // reads, 30 of the zero pages and 10 of the alike ones are written.
        let page = |o: u64, salt: u64| (o, Seen::Hash(mix64(o ^ salt)));
        let mut g0: Vec<(u64, Seen)> = (0..100).map(|o| (o, Seen::Zero)).collect();
        g0.extend((100..200).map(|o| page(o, 7)));
        let g1: Vec<(u64, Seen)> = (100..200).map(|o| page(o, 7)).collect();
        let mut later = g0.clone();
        for (o, v) in later.iter_mut() {
            if *o < 30 || (100..110).contains(o) {
                *v = Seen::Hash(mix64(*o ^ 0xDEAD_0000));
            }
        }
        let d = decay(&[g0.clone(), g1.clone()], &[later, g1], 1.0);
        assert_eq!(d[0][1].pages, 100);
        assert_eq!(d[0][1].share(), Some(0.3));
        assert_eq!(d[0][0].pages, 100);
        assert_eq!(d[0][0].share(), Some(0.1));
        assert_eq!(d[0][2].share(), None);
    }

    #[test]
    fn the_working_set_share_follows_from_the_decay() {
        // Half of a class in the working set, which the guest writes 40% of
        // over the time: 20% of the class changes, and of what is left,
        // 0.5 × 0.6 / (0.5 × 0.6 + 0.5) = 0.375 is in the working set.
        assert!((in_working_set(0.2, 0.4) - 0.375).abs() < 1e-12);
        // Nothing changed: nothing of it in the working set; all that the
        // working set lost: all of it was there.
        assert_eq!(in_working_set(0.0, 0.4), 0.0);
        assert!((in_working_set(0.4, 0.4) - 1.0).abs() < 1e-12);
        // More change than the writes explain (sampling noise) is capped.
        assert!((in_working_set(0.5, 0.4) - 1.0).abs() < 1e-12);
    }
}
