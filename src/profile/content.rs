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

/// Hash a page (a word-wise multiply-xorshift, fast enough to read a
/// 1/64 sample of many gigabytes; collisions between 64-bit hashes of a
/// few hundred thousand pages are negligible).
pub fn seen(page: &[u8; 4096]) -> Seen {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut any = 0u64;
    for chunk in page.chunks_exact(8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        any |= w;
        h = (h ^ w).wrapping_mul(0xFF51_AFD7_ED55_8CCD).rotate_left(31);
    }
    if any == 0 { Seen::Zero } else { Seen::Hash(mix64(h)) }
}

/// A share measured on `n` sampled pages, with its 95% Wilson score
/// interval (Wilson 1927; it stays inside 0..1 and is sound for shares
/// near 0 or 1, unlike the normal approximation).
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
    /// Non-zero pages whose content another profiled guest's sample holds.
    pub shared: Share,
    /// Non-zero pages whose content occurs twice or more in this guest's
    /// own sample (a lower bound: a page's twin is seen only when it is
    /// sampled too).
    pub duplicate: Share,
}

/// The shares of each guest from their samples (one list of what was
/// seen per guest, in any order).
pub fn shares(samples: &[Vec<Seen>]) -> Vec<Content> {
    // In how many guests each hash occurs, and how often in each.
    let mut guests_with: HashMap<u64, u32> = HashMap::new();
    let mut per_guest: Vec<HashMap<u64, u32>> = Vec::with_capacity(samples.len());
    for s in samples {
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for v in s {
            if let Seen::Hash(h) = v {
                *counts.entry(*h).or_insert(0) += 1;
            }
        }
        for h in counts.keys() {
            *guests_with.entry(*h).or_insert(0) += 1;
        }
        per_guest.push(counts);
    }
    samples
        .iter()
        .zip(&per_guest)
        .map(|(s, counts)| {
            let n = s.len() as u64;
            let zero = s.iter().filter(|v| **v == Seen::Zero).count() as u64;
            let (mut shared, mut dup) = (0u64, 0u64);
            for v in s {
                if let Seen::Hash(h) = v {
                    shared += u64::from(guests_with.get(h).copied().unwrap_or(0) > 1);
                    dup += u64::from(counts.get(h).copied().unwrap_or(0) > 1);
                }
            }
            Content { sampled: n, zero: Share::of(zero, n), shared: Share::of(shared, n), duplicate: Share::of(dup, n) }
        })
        .collect()
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
        // Guest 0: zero, image, own, own again; guest 1: image, other.
        let s = shares(&[vec![Seen::Zero, image, seen(&a), seen(&a)], vec![image, seen(&b)]]);
        assert_eq!(s[0].zero.share, 0.25);
        assert_eq!(s[0].shared.share, 0.25);
        assert_eq!(s[0].duplicate.share, 0.5);
        assert_eq!(s[1].shared.share, 0.5);
    }
}
