//! Which page a guest touches next: draws over the working set with the
//! scenario's pattern. Page rank equals page index (page 0 is the hottest),
//! so a hot set is also spatially close, as a program's hot data tends to be.
//!
//! In sampled mode only the pages sampled by hash exist (SHARDS' spatial
//! sampling, R of each 2 MiB region); the sampler then draws among those
//! pages with their true relative weights, so each sampled page keeps the
//! touch rate it has in the full system.

use rand::Rng;
use rand_distr::Distribution;

/// How touches spread over the working set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Pattern {
    Uniform,
    /// Page of rank i is touched with probability proportional to 1/i^s.
    Zipf {
        s: f64,
    },
    /// `hot_fraction` of the pages get `hot_probability` of the touches.
    HotCold {
        hot_fraction: f64,
        hot_probability: f64,
    },
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Uniform => f.write_str("uniform"),
            Pattern::Zipf { s } => write!(f, "zipf({s})"),
            Pattern::HotCold { hot_fraction, hot_probability } => {
                write!(f, "hotcold({hot_fraction}, {hot_probability})")
            }
        }
    }
}

/// Σ_{i=a}^{b} i^(−s): exact below rank 64, and beyond by the
/// Euler–Maclaurin formula ∫ f + (f(a) + f(b))/2 + (f′(b) − f′(a))/12,
/// whose next term is below 1e-9 of the sum there.
pub fn zipf_sum(s: f64, a: u64, b: u64) -> f64 {
    if b < a {
        return 0.0;
    }
    let mut sum = 0.0;
    let mut i = a;
    while i <= b && (i < 64 || b - i < 8) {
        sum += (i as f64).powf(-s);
        i += 1;
    }
    if i <= b {
        let (lo, hi) = (i as f64, b as f64);
        let f = |x: f64| x.powf(-s);
        let df = |x: f64| -s * x.powf(-s - 1.0);
        let integral =
            if (s - 1.0).abs() < 1e-12 { (hi / lo).ln() } else { (hi.powf(1.0 - s) - lo.powf(1.0 - s)) / (1.0 - s) };
        sum += integral + (f(lo) + f(hi)) / 2.0 + (df(hi) - df(lo)) / 12.0;
    }
    sum
}

/// A draw: the page (simulated index) and 32 spare random bits for the
/// write decision.
pub enum Sampler {
    /// Uniform over `n` pages.
    Uniform { n: u64 },
    /// `hot` pages get `hot_threshold / 2^32` of the touches.
    HotCold { hot: u64, n: u64, hot_threshold: u32 },
    /// Zipf over ranks 1..=n by rejection-inversion (Hörmann and Derflinger
    /// 1996), O(1) per draw with no table.
    Zipf { dist: rand_distr::Zipf<f64> },
    /// An explicit table: Vose's alias method, one (threshold, alias) pair
    /// per page so a draw touches one cache line.
    Alias { table: Vec<(u32, u32)> },
    /// No working set: the guest touches nothing.
    Idle,
}

impl Sampler {
    /// A sampler over a full (unsampled) working set of `n` pages.
    pub fn exact(pattern: &Pattern, n: u64) -> Sampler {
        Self::exact_with(pattern, n, None)
    }

    /// [`Self::exact`], with Zipf's weights i^(−s) for i = 1, 2, … given
    /// (at least `n` of them: a cache shared by working sets of different
    /// sizes, which differ only in how many they take).
    pub fn exact_with(pattern: &Pattern, n: u64, zipf_weights: Option<&[f64]>) -> Sampler {
        if n == 0 {
            return Sampler::Idle;
        }
        match *pattern {
            Pattern::Uniform => Sampler::Uniform { n },
            Pattern::HotCold { hot_fraction, hot_probability } => {
                let hot = ((n as f64 * hot_fraction).round() as u64).clamp(1, n);
                let hot_threshold = (hot_probability * 4_294_967_295.0).round() as u32;
                Sampler::HotCold { hot, n, hot_threshold }
            }
            // Up to 2^25 pages (128 GiB) an alias table (8 bytes a page,
            // shared by a group's guests) draws in a few ns; beyond, the
            // table-free rejection-inversion sampler.
            Pattern::Zipf { s } if n <= 1 << 25 => match zipf_weights {
                Some(w) if w.len() as u64 >= n => alias_table(&w[..n as usize]),
                _ => {
                    let w: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-s)).collect();
                    alias_table(&w)
                }
            },
            Pattern::Zipf { s } => match rand_distr::Zipf::new(n as f64, s) {
                Ok(dist) => Sampler::Zipf { dist },
                Err(_) => Sampler::Uniform { n },
            },
        }
    }

    /// A sampler over the sampled pages `real[0..k]` (real page indices,
    /// ascending) of a working set of `n` real pages. Returns the sampler and
    /// the share of all touches that fall on these pages.
    pub fn sampled(pattern: &Pattern, real: &[u64], n: u64) -> (Sampler, f64) {
        Self::sampled_with(pattern, real, n, None)
    }

    /// [`Self::sampled`], with Zipf's weights (p + 1)^(−s) of the pages
    /// `real` given (a cache shared by working sets of different sizes).
    pub fn sampled_with(pattern: &Pattern, real: &[u64], n: u64, zipf_weights: Option<&[f64]>) -> (Sampler, f64) {
        if real.is_empty() || n == 0 {
            return (Sampler::Idle, 0.0);
        }
        let weights: Vec<f64> = match *pattern {
            Pattern::Uniform => {
                return (Sampler::Uniform { n: real.len() as u64 }, real.len() as f64 / n as f64);
            }
            Pattern::HotCold { hot_fraction, hot_probability } => {
                let hot = ((n as f64 * hot_fraction).round() as u64).clamp(1, n);
                let (ph, pc) = (hot_probability / hot as f64, (1.0 - hot_probability) / (n - hot).max(1) as f64);
                real.iter().map(|&p| if p < hot { ph } else { pc }).collect()
            }
            Pattern::Zipf { s } => {
                let h = zipf_sum(s, 1, n);
                match zipf_weights {
                    Some(w) if w.len() >= real.len() => w[..real.len()].iter().map(|&w| w / h).collect(),
                    _ => real.iter().map(|&p| ((p + 1) as f64).powf(-s) / h).collect(),
                }
            }
        };
        let share: f64 = weights.iter().sum();
        (alias_table(&weights), share.min(1.0))
    }

    /// Draw the next touched page.
    #[inline(always)]
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> (u64, u32) {
        match self {
            Sampler::Uniform { n } => {
                let r = rng.next_u64();
                (mul_high(r, *n), r as u32)
            }
            Sampler::HotCold { hot, n, hot_threshold } => {
                let r = rng.next_u64();
                let w = rng.next_u32();
                if (r as u32) < *hot_threshold { (mul_high(r, *hot), w) } else { (hot + mul_high(r, n - hot), w) }
            }
            Sampler::Zipf { dist } => {
                let k: f64 = dist.sample(rng);
                ((k as u64).saturating_sub(1), rng.next_u32())
            }
            Sampler::Alias { table } => {
                let r = rng.next_u64();
                let i = mul_high(r, table.len() as u64) as usize;
                let (threshold, alias) = table[i];
                let page = if (r as u32) < threshold { i as u64 } else { u64::from(alias) };
                (page, rng.next_u32())
            }
            Sampler::Idle => (0, 0),
        }
    }

    /// Fill `out` with draws, the same as calling [`Self::draw`] for each
    /// in turn (the same random words in the same order), calling `drawn`
    /// with each page as soon as it is known. An alias table is read in two
    /// passes: every slot's line is prefetched before any is read, so the
    /// cache misses of a table larger than the cache overlap instead of
    /// following one another; `drawn` (the caller's prefetch of the page's
    /// state) then starts each page's miss while later slots are read.
    #[inline(always)]
    pub fn draw_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [(u64, u32)], drawn: impl Fn(u64)) {
        match self {
            Sampler::Alias { table } => {
                let n = table.len() as u64;
                for b in out.iter_mut() {
                    let r = rng.next_u64();
                    let w = rng.next_u32();
                    crate::model::page::prefetch(&table[mul_high(r, n) as usize]);
                    *b = (r, w);
                }
                for b in out.iter_mut() {
                    let r = b.0;
                    let i = mul_high(r, n) as usize;
                    let (threshold, alias) = table[i];
                    b.0 = if (r as u32) < threshold { i as u64 } else { u64::from(alias) };
                    drawn(b.0);
                }
            }
            _ => {
                for b in out.iter_mut() {
                    *b = self.draw(rng);
                    drawn(b.0);
                }
            }
        }
    }

    pub fn is_idle(&self) -> bool {
        matches!(self, Sampler::Idle)
    }
}

/// A number in 0..n from the high bits of a random word: a range reduction
/// without division (Lemire 2019). Below 2³² pages it uses only the top 32
/// bits, leaving the low 32 free for the write decision.
#[inline(always)]
fn mul_high(r: u64, n: u64) -> u64 {
    if n <= 1 << 32 { ((r >> 32) * n) >> 32 } else { ((u128::from(r) * u128::from(n)) >> 64) as u64 }
}

/// Vose's alias method: O(n) build, O(1) draw.
fn alias_table(weights: &[f64]) -> Sampler {
    Sampler::Alias { table: alias(weights) }
}

/// The (threshold, alias) pairs of Vose's alias method for `weights`: slot
/// i is drawn with probability 1/n, then kept when the draw's low 32 bits
/// fall below its threshold, else it gives way to its alias.
fn alias(weights: &[f64]) -> Vec<(u32, u32)> {
    let n = weights.len();
    let total: f64 = weights.iter().sum();
    let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
    let mut table: Vec<(u32, u32)> = (0..n as u32).map(|i| (u32::MAX, i)).collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
    while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
        table[s] = ((scaled[s] * 4_294_967_295.0) as u32, l as u32);
        scaled[l] -= 1.0 - scaled[s];
        if scaled[l] < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    table
}

/// A slice's count of touches: Poisson of mean λ, drawn from an alias
/// table over its probabilities e^(−λ)·λ^k/k! (O(1): one random word and
/// one line of the table, where transformed rejection takes a logarithm
/// or two and a log-gamma; a guest draws one a slice). The table holds
/// every k whose probability is at least 10⁻¹⁸ of the mode's, the
/// mass left out below 10⁻¹⁵; a slot's threshold has 32 bits, so each
/// probability is kept to within 2⁻³² of a slot's share. Means above
/// [`TouchCount::TABLE_MAX_MEAN`] are drawn by the library's rejection
/// sampler (their table would outgrow the cache).
#[derive(Debug, Clone)]
pub enum TouchCount {
    Table { lo: u64, table: Vec<(u32, u32)> },
    Rejection(rand_distr::Poisson<f64>),
}

impl TouchCount {
    /// The largest mean drawn from a table (about 470 slots, 3.7 KiB).
    pub const TABLE_MAX_MEAN: f64 = 256.0;

    /// The law of mean `mean`; `None` when it is not positive and finite.
    pub fn new(mean: f64) -> Option<TouchCount> {
        if !(mean > 0.0 && mean.is_finite()) {
            return None;
        }
        if mean > Self::TABLE_MAX_MEAN {
            return rand_distr::Poisson::new(mean).ok().map(TouchCount::Rejection);
        }
        // Outward from the mode by the ratios P(k+1)/P(k) = λ/(k+1), in
        // units of the mode's probability (no underflow, no factorials).
        const FLOOR: f64 = 1e-18;
        let mode = mean.floor() as u64;
        let mut up = vec![1.0f64];
        let (mut k, mut p) = (mode, 1.0f64);
        loop {
            p *= mean / (k + 1) as f64;
            k += 1;
            if p < FLOOR {
                break;
            }
            up.push(p);
        }
        let mut down = Vec::new();
        let (mut k, mut p) = (mode, 1.0f64);
        while k > 0 {
            p *= k as f64 / mean;
            k -= 1;
            if p < FLOOR {
                break;
            }
            down.push(p);
        }
        let lo = mode - down.len() as u64;
        let weights: Vec<f64> = down.into_iter().rev().chain(up).collect();
        Some(TouchCount::Table { lo, table: alias(&weights) })
    }

    #[inline]
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            TouchCount::Table { lo, table } => {
                let r = rng.next_u64();
                let i = mul_high(r, table.len() as u64) as usize;
                let (threshold, alias) = table[i];
                lo + if (r as u32) < threshold { i as u64 } else { u64::from(alias) }
            }
            TouchCount::Rejection(p) => rand_distr::Distribution::sample(p, rng) as u64,
        }
    }
}

/// The shares of a working set's touches that land on each 2 MiB region
/// (sampled mode, THP guests), for the pages that are not sampled and for
/// all of the region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionShares {
    /// On the region's pages that are not sampled: a region's first touch
    /// may land there, unseen.
    pub unsampled: Vec<f32>,
    /// On all of its pages: whether reclaim finds its THP referenced.
    pub total: Vec<f32>,
}

impl RegionShares {
    pub fn zeros(regions: usize) -> RegionShares {
        RegionShares { unsampled: vec![0.0; regions], total: vec![0.0; regions] }
    }
}

/// [`RegionShares`] of a working set of `n` pages (pages beyond it get no
/// touches). `real` lists the sampled pages (ascending); regions are
/// `region_pages` long.
pub fn region_shares(pattern: &Pattern, real: &[u64], n: u64, regions: usize, region_pages: u64) -> RegionShares {
    // Zipf's normalising sum, once (it is the same for every range).
    let zipf_total = match *pattern {
        Pattern::Zipf { s } => zipf_sum(s, 1, n),
        _ => 1.0,
    };
    let weight_range = |a: u64, b: u64| -> f64 {
        // Share of touches on pages a..b (b exclusive) of the working set.
        let b = b.min(n);
        if a >= b {
            return 0.0;
        }
        match *pattern {
            Pattern::Uniform => (b - a) as f64 / n as f64,
            Pattern::HotCold { hot_fraction, hot_probability } => {
                let hot = ((n as f64 * hot_fraction).round() as u64).clamp(1, n);
                let (ph, pc) = (hot_probability / hot as f64, (1.0 - hot_probability) / (n - hot).max(1) as f64);
                let hot_part = b.min(hot).saturating_sub(a);
                hot_part as f64 * ph + ((b - a) - hot_part) as f64 * pc
            }
            Pattern::Zipf { s } => zipf_sum(s, a + 1, b) / zipf_total,
        }
    };
    let mut out = RegionShares::zeros(regions);
    let mut i = 0usize;
    for r in 0..regions {
        let (a, b) = (r as u64 * region_pages, (r as u64 + 1) * region_pages);
        let total = weight_range(a, b);
        let mut unsampled = total;
        while i < real.len() && real[i] < b {
            if real[i] >= a {
                unsampled -= weight_range(real[i], real[i] + 1);
            }
            i += 1;
        }
        out.total[r] = total as f32;
        out.unsampled[r] = unsampled.max(0.0) as f32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn uniform_covers_the_range_evenly() {
        let s = Sampler::exact(&Pattern::Uniform, 10);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[s.draw(&mut rng).0 as usize] += 1;
        }
        // Each bucket expects 10 000; 5 standard deviations is ±475.
        assert!(counts.iter().all(|&c| (9_525..=10_475).contains(&c)), "{counts:?}");
    }

    #[test]
    fn hotcold_sends_the_hot_share_to_the_hot_pages() {
        let s = Sampler::exact(&Pattern::HotCold { hot_fraction: 0.2, hot_probability: 0.8 }, 1000);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let hot = (0..100_000).filter(|_| s.draw(&mut rng).0 < 200).count();
        assert!((79_000..=81_000).contains(&hot), "{hot}");
    }

    /// The law a touch-count table draws from, k by k: a slot is drawn
    /// with probability 1/n, kept with threshold/2³², else its alias.
    fn table_law(c: &TouchCount) -> (u64, Vec<f64>) {
        let TouchCount::Table { lo, table } = c else { panic!("a table") };
        let n = table.len() as f64;
        let mut p = vec![0.0; table.len()];
        for (i, &(threshold, alias)) in table.iter().enumerate() {
            let keep = threshold as f64 / 4_294_967_296.0;
            p[i] += keep / n;
            p[alias as usize] += (1.0 - keep) / n;
        }
        (*lo, p)
    }

    #[test]
    fn a_touch_count_table_holds_the_poisson_probabilities() {
        // Closed form: P(k) = e^(−λ)·λ^k/k!, summed for ln k! directly.
        // Every k's drawn probability within 10⁻⁹ of it (a slot's 32-bit
        // threshold resolves 2⁻³² ≈ 2.3·10⁻¹⁰ of its share), and the
        // mass outside the table below 10⁻¹² (the closed form's own sum,
        // ln k! added up term by term, rounds to about 10⁻¹³ at λ = 100).
        for mean in [0.02, 0.7, 3.0, 20.0, 99.5, 256.0] {
            let c = TouchCount::new(mean).unwrap();
            let (lo, law) = table_law(&c);
            let ln_fact = |k: u64| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
            let poisson = |k: u64| (-mean + k as f64 * f64::ln(mean) - ln_fact(k)).exp();
            for (j, &p) in law.iter().enumerate() {
                let k = lo + j as u64;
                assert!((p - poisson(k)).abs() < 1e-9, "P({k}) at mean {mean}: {p} against {}", poisson(k));
            }
            let inside: f64 = (lo..lo + law.len() as u64).map(poisson).sum();
            assert!(1.0 - inside < 1e-12, "mass left out at mean {mean}: {}", 1.0 - inside);
        }
        assert!(TouchCount::new(0.0).is_none() && TouchCount::new(f64::NAN).is_none());
        assert!(matches!(TouchCount::new(257.0), Some(TouchCount::Rejection(_))));
    }

    #[test]
    fn touch_counts_drawn_have_the_poisson_mean_and_zeros() {
        // Closed form: mean λ, P(0) = e^(−λ). 200,000 draws: the mean
        // within 4 standard errors (√(λ/n)), the zeros within 4 of their
        // binomial error.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let n = 200_000;
        for mean in [0.3, 2.0, 20.0, 200.0] {
            let c = TouchCount::new(mean).unwrap();
            let draws: Vec<u64> = (0..n).map(|_| c.draw(&mut rng)).collect();
            let m = draws.iter().sum::<u64>() as f64 / n as f64;
            assert!((m - mean).abs() < 4.0 * (mean / n as f64).sqrt(), "mean {m} for {mean}");
            let p0 = (-mean).exp();
            let zeros = draws.iter().filter(|&&k| k == 0).count() as f64 / n as f64;
            assert!((zeros - p0).abs() < 4.0 * (p0 * (1.0 - p0) / n as f64).sqrt() + 1e-12, "P(0) {zeros} at {mean}");
        }
    }

    #[test]
    fn alias_matches_its_weights() {
        let (s, share) = Sampler::sampled(&Pattern::Zipf { s: 1.0 }, &[0, 1, 3], 4);
        // H(4) = 1 + 1/2 + 1/3 + 1/4 = 25/12; pages 0, 1, 3 hold 1 + 1/2 + 1/4 of it.
        assert!((share - (1.75 / (25.0 / 12.0))).abs() < 1e-12);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut counts = [0u32; 3];
        for _ in 0..175_000 {
            counts[s.draw(&mut rng).0 as usize] += 1;
        }
        // Expected 100 000 : 50 000 : 25 000.
        assert!((98_500..=101_500).contains(&counts[0]), "{counts:?}");
        assert!((49_000..=51_000).contains(&counts[1]), "{counts:?}");
        assert!((24_200..=25_800).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn unsampled_share_of_a_uniform_region() {
        // Uniform over n = 1024 pages: each page gets 1/1024 of the touches.
        // Region 0 (pages 0..512) keeps pages 3 and 100 sampled, so its
        // other 510 pages get 510/1024; region 1 has none sampled: 512/1024.
        let v = region_shares(&Pattern::Uniform, &[3, 100], 1024, 2, 512);
        assert!((f64::from(v.unsampled[0]) - 510.0 / 1024.0).abs() < 1e-6);
        assert!((f64::from(v.unsampled[1]) - 0.5).abs() < 1e-6);
        // All of a region: 512/1024 each.
        assert!(v.total.iter().all(|&t| (f64::from(t) - 0.5).abs() < 1e-6));
    }
}
