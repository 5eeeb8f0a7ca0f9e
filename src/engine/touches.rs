//! A guest's slice: its touches played against the page state, stalls
//! charged to its own clock; sparse guests skip runs of empty slices, and
//! sampled THP guests play their first touches on pages not simulated.

use rand::RngExt;
use rand_distr::{Binomial, Distribution};

use super::queue::SimTime;
use super::state::FaultKind;
use super::{Engine, RunError};
use crate::latency::Translation;
use crate::model::Status;
use crate::model::page::{MERGED, REFERENCED, WRITTEN};

/// Most empty slices a sparse guest skips in one step.
const MAX_SKIPPED_SLICES: f64 = 100.0;

/// Empty slices are skipped in runs only when a slice is empty at least
/// this often; a denser guest draws each slice.
const SKIP_ABOVE_P_EMPTY: f64 = 0.01;

impl Engine<'_> {
    /// One slice of guest `g`'s touches, starting at `now`.
    pub(super) fn slice(&mut self, g: usize, now: SimTime) -> Result<(), RunError> {
        if self.mem.guests[g].status == Status::Starting {
            self.mem.guests[g].status = Status::Running;
        }
        if self.mem.guests[g].events.is_some() {
            return self.slice_events(g, now);
        }
        let slice = self.slice_ns as f64;
        let n = self.draw_touches(g);
        // Given n touches in the slice, a Poisson stream's touches fall as
        // n uniform points: the k-th comes at k·slice/(n + 1) on average,
        // where page-exact play puts it (sampled play draws the points,
        // below).
        // (k − 1)·slice/n would credit a slice cut short after its i-th
        // touch with i·slice/n of compute, (n + 1)/n too much; sampled mode
        // counts the unsimulated pages' touches from that compute, and
        // with a few simulated touches a slice it read fault ratios 5% low.
        let spacing = slice / (n + 1) as f64;
        let write_threshold = self.runners[g].write_threshold;
        let clean_swapins = self.mem.guests[g].swap_cache.tracks_writes();
        let mut hits = [0u64; 2];
        let mut stall = 0f64;
        let mut killed = false;
        let mut i = 0u64;
        // Sampled THP guests also touch pages that are not simulated, and
        // the first such touch of an untouched region is a fault
        // ([`Runner::first_touches`], in real touches). They are played in
        // time with the simulated touches: just before simulated touch
        // i + 1, at compute time c, the guest has made base + i +
        // c·unsampled_per_ns real touches. A fault's stall ends the slice
        // early, as a simulated fault's does.
        let (base, unsampled_per_ns) = (self.runners[g].touches_real, self.runners[g].unsampled_rate() / 1e9);
        // Sampled, the simulated touches fall where the stream's do: at n
        // uniform points (sorted). Spread evenly they are not the stream's
        // when the slice is cut short, and a sampled slice holds few:
        // - a fault's stall cuts it at the i-th touch, credited i·slice/(n
        //   + 1) of compute, where the stream's i-th touch comes at i/λ on
        //   average (λ the slice's expected touches); reaching the i-th
        //   makes a large n likelier, so the credit falls short by about
        //   1/λ (event mode spread its touches so too, and there a 4 KiB
        //   fill at 1/8 made 4.6% more faults than the coupon collector's
        //   law, `tests/truth/sampled.rs`);
        // - a first touch on a page not simulated cuts it between two
        //   touches, before which evenly spread touches put none where the
        //   stream's would put some: a THP fill, cut every few real
        //   touches, played a tenth of its simulated pages' first touches
        //   at 1/32.
        // With λ touches a slice page-exact (100 at 100k touches a second)
        // the first is a 1% effect, and the second does not arise.
        let random = self.sampled();
        let mut points = std::mem::take(&mut self.points);
        points.clear();
        // The points are read only where a touch faults or a first touch on
        // an unsimulated page is due (they are independent of the pages
        // drawn): a guest with such first touches pending draws them now,
        // the others at their slice's first fault, if any.
        let mut drawn = false;
        if random && !self.runners[g].first_touches.is_empty() {
            draw_points(&mut points, n, slice, &mut self.rng);
            drawn = true;
        }
        // The compute time of simulated touch k (1-based; 0 at 0).
        // (Counts and times here are far below 2^53 and 2^63: through i64
        // each conversion is one instruction, with the same value.)
        let at_touch = |points: &[f64], k: u64| if random { points[k as usize] } else { k as i64 as f64 * spacing };
        let start = base + unsampled_per_ns * spacing;
        let per_touch = 1.0 + unsampled_per_ns * spacing;
        let due = |e: &Self, points: &[f64], from: u64| {
            if random {
                e.first_touch_due_at(g, base, unsampled_per_ns, points, from)
            } else {
                e.first_touch_due(g, start, per_touch)
            }
        };
        let mut first_due = due(self, &points, 0);
        // Compute time at which a first touch's stall ended the slice.
        let mut cut_at = None;
        // Touches are drawn 16 at a time and their page states prefetched
        // together, so the CPU overlaps the cache misses (memory-level
        // parallelism); each touch is then played in order.
        const CHUNK: usize = 16;
        let mut buf = [(0u64, 0u32); CHUNK];
        'slice: while i < n {
            let k = CHUNK.min((n - i) as usize);
            {
                let sampler = &*self.runners[g].sampler;
                let pages = &self.mem.guests[g].pages;
                sampler.draw_into(&mut self.rng, &mut buf[..k], |p| crate::model::page::prefetch(&pages[p as usize]));
            }
            for &(p, bits) in &buf[..k] {
                if i >= first_due {
                    // Due before the next simulated touch, at (i + 1)·spacing:
                    // each at the compute time its real touch comes.
                    let c = at_touch(&points, i + 1);
                    let at = (base + i as f64, at_touch(&points, i), unsampled_per_ns);
                    if let Some(cut) = self.first_touches_upto(g, at.0 + unsampled_per_ns * c, now, at, c, &mut stall) {
                        cut_at = Some(cut);
                        break 'slice;
                    }
                    first_due = due(self, &points, i);
                }
                let write = bits < write_threshold;
                let guest = &mut self.mem.guests[g];
                let st = guest.pages[p as usize];
                i += 1;
                if st & 1 == 1 && !(write && st & MERGED != 0) {
                    // RESIDENT (1) or HUGE (3): a hit, unless it writes a
                    // page KSM merged (a copy-on-write break). Pages the
                    // balloon holds are never mapped. A write makes the
                    // content the guest's own; ksmd drops its class when it
                    // next sees WRITTEN. It also makes a page clean in the
                    // swap cache dirty (where swap-ins can be clean).
                    guest.pages[p as usize] = st | REFERENCED | if write { WRITTEN } else { 0 };
                    if write && clean_swapins {
                        guest.swap_cache.written(p);
                    }
                    hits[((st >> 1) & 1) as usize] += 1;
                    continue;
                }
                if random && !drawn {
                    draw_points(&mut points, n, slice, &mut self.rng);
                    drawn = true;
                }
                let t = now + (at_touch(&points, i) + stall) as i64 as u64;
                if !self.fault_and_charge(g, p, t, write, &mut stall) {
                    killed = true;
                    break 'slice;
                }
                // Stalls moved this guest's clock past the slice: stop here
                // and go on from where its clock is, so guests stay within
                // about a slice of each other in time. Its compute ended at
                // this touch, the last one drawn or not (crediting the whole
                // slice when it was the last gave a sampled 4 KiB fill at
                // 1/32 4.7% fewer simulated touches a millisecond of compute
                // than the stream's, and the unsimulated ones that much
                // compute too many).
                if at_touch(&points, i) + stall >= slice {
                    cut_at = Some(at_touch(&points, i));
                    break 'slice;
                }
            }
        }
        // First touches after the last simulated one, up to the slice's end.
        // (Pending, they had their slice's points drawn at its start.)
        if cut_at.is_none() && i == n && !killed && unsampled_per_ns > 0.0 && !self.runners[g].first_touches.is_empty()
        {
            let last = at_touch(&points, n);
            while let Some(&(f, _)) = self.runners[g].first_touches.last() {
                let c = ((f - base - n as f64) / unsampled_per_ns).max(last);
                if c >= slice {
                    break;
                }
                let at = (base + n as f64, last, unsampled_per_ns);
                if let Some(cut) = self.first_touches_upto(g, f, now, at, c, &mut stall) {
                    cut_at = Some(cut);
                    break;
                }
            }
        }
        // Compute done: the touches played (all of the slice when none were
        // drawn or all were played), or up to the first touch that ended it.
        let done = match cut_at {
            Some(c) => c,
            None if i == n => slice,
            // Killed at a fault: its points were drawn.
            None => at_touch(&points, i),
        };
        self.points = points;
        stall += self.defer_hits(g, hits, i, done);
        let r = &mut self.runners[g];
        if r.share > 0.0 {
            // Each simulated touch is one real touch (on a sampled page);
            // the touches on pages that are not sampled are a Poisson stream
            // of (1 − share)·rate, counted at its mean: with thousands in a
            // slice its spread is negligible, where scaling the simulated
            // count by 1/share would add the simulated stream's own noise
            // (sampled guests then drift apart in pace, and so in which of
            // their regions still find memory free for a THP).
            // (Page-exact, the rate is 0: no division on every slice.)
            let unsampled = r.unsampled_rate();
            r.touches_real += i as f64 + if unsampled == 0.0 { 0.0 } else { unsampled * done / 1e9 };
            self.mem.guests[g].touches = r.touches_real;
        }
        let r = &mut self.runners[g];
        r.compute_ns += done;
        r.stall_ns += stall;
        if killed {
            return Ok(());
        }
        let next = self.skip_empty_slices(g, now + ((done + stall) + 0.5).max(1.0) as u64);
        self.schedule_slice(g, next)
    }

    /// `hits` hits (4 KiB, huge) among `touches` touches in `done` ns of
    /// guest `g`'s compute (a slice, or a skip of many): counted now, with
    /// the exits its vCPU takes meanwhile. Each hit costs a DRAM access,
    /// plus a page walk on a TLB miss; the misses are drawn later, in one
    /// binomial over every hit played at the same miss ratio
    /// ([`Engine::draw_deferred_misses`]: a sum of binomials with one p is
    /// the binomial of the summed count, so the latency histogram has the
    /// same law as one draw a slice at a fraction of the cost). The clock
    /// is charged the walks' expected stall: a draw's would differ by
    /// about √(h·p) walks a slice, noise that averages out over the
    /// slices. Returns the stall: walks
    /// and exits.
    pub(super) fn defer_hits(&mut self, g: usize, hits: [u64; 2], touches: u64, done: f64) -> f64 {
        let scale = self.scale;
        let mut stall = 0.0;
        let r = &mut self.runners[g];
        for (k, &h) in hits.iter().enumerate() {
            if h == 0 {
                continue;
            }
            let tr = if k == 0 { r.small } else { r.huge };
            let flush = flush_misses(&tr, r.share, h, touches, done);
            let expected = (h as f64 * tr.miss_ratio.clamp(0.0, 1.0) + flush).min(h as f64);
            r.deferred_hits[k] += h;
            r.deferred_flush[k] += flush;
            stall += expected * tr.walk_ns * scale;
            r.stall_by.page_walks_s += expected * tr.walk_ns * scale / 1e9;
        }
        stall + self.count_hits_and_exits(g, hits, touches, done)
    }

    /// Draw the TLB misses of guest `g`'s deferred hits, at the miss ratios
    /// they were played at (called before those change, and before
    /// anything reads the latencies or the misses).
    pub(super) fn draw_deferred_misses(&mut self, g: usize) {
        for k in 0..2 {
            let r = &mut self.runners[g];
            let h = std::mem::take(&mut r.deferred_hits[k]);
            let flush = std::mem::take(&mut r.deferred_flush[k]);
            if h > 0 {
                self.record_hits(g, k, h, flush);
            }
        }
    }

    /// `h` hits on translation `k` (0: 4 KiB, 1: huge) with `flush` misses
    /// from TLB flushes among them: their misses drawn, latencies recorded.
    /// Returns the misses.
    #[inline]
    fn record_hits(&mut self, g: usize, k: usize, h: u64, flush: f64) -> u64 {
        let dram = self.cfg.costs.dram_ns;
        let r = &mut self.runners[g];
        let tr = if k == 0 { r.small } else { r.huge };
        let p = tr.miss_ratio.clamp(0.0, 1.0);
        // A few hits: one Bernoulli draw each is cheaper than setting up a
        // binomial sampler.
        let drawn = if h <= 8 {
            (0..h).filter(|_| self.rng.random::<f64>() < p).count() as u64
        } else {
            Binomial::new(h, p).map_or(0, |b| b.sample(&mut self.rng))
        };
        let misses = (drawn + (flush + 0.5) as u64).min(h);
        r.tlb_misses += misses;
        r.hit_hist.record_n((dram.max(1.0)) as u64, h - misses);
        if misses > 0 {
            r.hit_hist.record_n((dram + tr.walk_ns).max(1.0) as u64, misses);
        }
        misses
    }

    /// Count `hits` among `touches` in `done` ns of guest `g`'s compute,
    /// and charge the exits (shadow page-table traps, TPR exits) its vCPU
    /// takes meanwhile, whether or not it touches memory. Returns their
    /// stall.
    fn count_hits_and_exits(&mut self, g: usize, hits: [u64; 2], touches: u64, done: f64) -> f64 {
        let r = &mut self.runners[g];
        let hits_total = hits[0] + hits[1];
        r.hits += hits_total;
        r.touches += touches;
        // All hits 4 KiB ones (no THP): the small share is exactly 1 and
        // the mix below is the small figure itself (x·1 + y·0 = x for the
        // finite, non-negative stalls), so its division is skipped.
        let exit_stall = if hits[1] > 0 {
            let small_share = hits[0] as f64 / hits_total as f64;
            r.small.exit_stall_per_s * small_share + r.huge.exit_stall_per_s * (1.0 - small_share)
        } else {
            r.small.exit_stall_per_s
        } * done
            / 1e9;
        if exit_stall != 0.0 {
            r.stall_by.vm_exits_s += exit_stall / 1e9;
        }
        exit_stall
    }

    /// Guest `g` takes a fault on page `p` at `t`: play it and charge its
    /// stall and latency. False when the OOM killer ended `g`.
    pub(super) fn fault_and_charge(&mut self, g: usize, p: u64, t: SimTime, write: bool, stall: &mut f64) -> bool {
        let Some((cost, kind, reclaim)) = self.fault(g, p, t, write) else {
            return false;
        };
        let scale = self.scale;
        let lat = cost + reclaim + self.cfg.costs.dram_ns;
        let ks = self.kind_scale(kind);
        *stall += cost * ks + reclaim * scale;
        // A fault enters the histogram as the real faults it stands for
        // (1/R for a 4 KiB page, one for a huge region).
        let r = &mut self.runners[g];
        r.hist.record_n(lat.max(1.0) as u64, ks.round() as u64);
        r.stall_by.direct_reclaim_s += reclaim * scale / 1e9;
        match kind {
            FaultKind::Major => r.stall_by.major_faults_s += cost * ks / 1e9,
            FaultKind::Cow => r.stall_by.cow_breaks_s += cost * ks / 1e9,
            FaultKind::GuestSwap => r.stall_by.guest_swap_s += cost * ks / 1e9,
            _ => r.stall_by.first_touch_faults_s += cost * ks / 1e9,
        }
        true
    }

    /// Guest `g`'s next slice would start at `at`. A sparse guest (sampled
    /// mode) has many empty slices: skip the run of them in one step. The
    /// stream is Poisson, so the number of empty slices before the next
    /// touch is geometric with P(empty) = e^(−λ); the slice after them holds
    /// a touch. At most [`MAX_SKIPPED_SLICES`] go at once, so phase changes
    /// are seen soon. Returns when the next slice to play starts.
    pub(super) fn skip_empty_slices(&mut self, g: usize, at: SimTime) -> SimTime {
        let slice = self.slice_ns as f64;
        let r = &mut self.runners[g];
        if r.touch_count.is_none() || r.p_empty < SKIP_ABOVE_P_EMPTY {
            return at;
        }
        // The empty slices before the next touch: floor(E/λ) for E ~ Exp(1)
        // is geometric with P(empty) = e^(−λ) (E = −ln U, drawn by the
        // ziggurat, which rarely needs a logarithm). Truncation is floor
        // here: the quotient is not negative.
        let e: f64 = rand_distr::Exp1.sample(&mut self.rng);
        // Not past the next first touch on an unsimulated page (sampled THP
        // guests): its fault must stall the guest in its own slice.
        let unsampled_per_slice = r.unsampled_rate() * slice / 1e9;
        let until_first = match r.first_touches.last() {
            Some(&(f, _)) if unsampled_per_slice > 0.0 => ((f - r.touches_real) / unsampled_per_slice).max(0.0),
            _ => f64::INFINITY,
        };
        let limit = MAX_SKIPPED_SLICES.min(until_first.floor());
        let k = (e * r.inv_lambda).min(limit) as u64 as f64;
        // The slice after the drawn run of empty ones holds a touch; one
        // after a run cut short is drawn afresh (the stream is memoryless).
        r.nonempty_next = k < limit;
        if k == 0.0 {
            return at;
        }
        let span = k * slice;
        // No simulated touch in these slices; the unsampled pages' touches
        // go on (see `slice`).
        if r.share > 0.0 {
            r.touches_real += r.unsampled_rate() * span / 1e9;
            self.mem.guests[g].touches = r.touches_real;
        }
        let exit_stall = r.small.exit_stall_per_s * span / 1e9;
        r.compute_ns += span;
        r.stall_ns += exit_stall;
        r.stall_by.vm_exits_s += exit_stall / 1e9;
        at + (span + exit_stall + 0.5) as u64
    }

    /// The simulated touch count of guest `g`'s slice by which its next
    /// first touch on an unsimulated page is due (`u64::MAX`: none), when
    /// `start` real touches are made before the first simulated touch and
    /// each simulated touch brings `per_touch` more.
    pub(super) fn first_touch_due(&self, g: usize, start: f64, per_touch: f64) -> u64 {
        match self.runners[g].first_touches.last() {
            None => u64::MAX,
            Some(&(f, _)) if f <= start => 0,
            Some(&(f, _)) => ((f - start) / per_touch).ceil().min(u64::MAX as f64) as u64,
        }
    }

    /// [`Self::first_touch_due`] with the simulated touches at compute
    /// times `points` (1-based, `points[0]` = 0), from touch `from` on: the
    /// first k whose next touch, at `points[k + 1]`, comes after the real
    /// touch the next first touch is (`base + k` simulated and
    /// unsampled ones, `per_ns` a nanosecond, made by then).
    fn first_touch_due_at(&self, g: usize, base: f64, per_ns: f64, points: &[f64], from: u64) -> u64 {
        let Some(&(f, _)) = self.runners[g].first_touches.last() else { return u64::MAX };
        let n = points.len().saturating_sub(1) as u64;
        (from..n).find(|&k| f <= base + k as f64 + per_ns * points[k as usize + 1]).unwrap_or(u64::MAX)
    }

    /// Sampled THP guests: play the first touches that landed on unsimulated
    /// pages of still-untouched regions, up to real touch `upto`, in the
    /// slice that began at `now`, each at the compute time its real touch
    /// comes: `(from, lo, per_ns)` says the guest had made `from` real
    /// touches at compute time `lo` and makes `per_ns` a nanosecond more
    /// (0: each comes at `hi`, the time the caller knows it comes at),
    /// and none comes after `hi`. Each makes its region a THP when memory
    /// allows (a THP fault, added to `stall`) or leaves it to 4 KiB pages.
    /// The unsimulated pages' memory is not simulated itself: sampled
    /// counts stand for it. Returns the compute time of the first touch
    /// whose stall reached the end of the slice (the rest waits for the
    /// next one).
    ///
    /// Playing them all at `hi` instead credited the guest with compute it
    /// spent stalled: at 1/32, where a slice holds about three simulated
    /// touches, a THP guest's fill ran 15-19% slower than page-exact for
    /// its first half second.
    pub(super) fn first_touches_upto(
        &mut self,
        g: usize,
        upto: f64,
        now: SimTime,
        (from, lo, per_ns): (f64, f64, f64),
        hi: f64,
        stall: &mut f64,
    ) -> Option<f64> {
        let slice = self.slice_ns as f64;
        while let Some(&(at, r)) = self.runners[g].first_touches.last() {
            if at > upto {
                break;
            }
            self.runners[g].first_touches.pop();
            let r = r as usize;
            if self.mem.guests[g].region_touched[r] != 0 {
                continue;
            }
            let c = if per_ns > 0.0 { ((at - from) / per_ns).clamp(lo, hi) } else { hi };
            let (made, charge_stall) = self.try_thp(g, r, Some(now + (c + *stall) as u64));
            // A memory cgroup's reclaim for the charge stands for 1/R real
            // ones, as direct reclaim's does.
            *stall += charge_stall * self.scale;
            self.runners[g].stall_by.direct_reclaim_s += charge_stall * self.scale / 1e9;
            if made {
                // Allocated when the fault began, before its zeroing, as a
                // simulated touch's fault is (`Engine::fault`): kswapd is
                // woken then.
                self.after_allocation(now + (c + *stall) as u64);
                // The touch that faulted the THP in set its accessed bit
                // (`ThpAux::fresh`, set by try_thp).
                let cost = self.cfg.costs.fault_thp_ns;
                *stall += cost;
                let r = &mut self.runners[g];
                r.stall_by.first_touch_faults_s += cost / 1e9;
                r.hist.record_n((cost + self.cfg.costs.dram_ns).max(1.0) as u64, 1);
                if c + *stall >= slice {
                    return Some(c);
                }
            } else {
                // The region's first page went to a 4 KiB page: no THP here.
                self.mem.guests[g].region_touched[r] = 1;
            }
        }
        None
    }
}

/// The TLB misses that flushes (exits without VPID) add to `h` hits of
/// translation `tr` among `touches` touches in `done` ns of compute, a
/// sampled guest's flushes counted at its simulated share `share`.
#[inline]
fn flush_misses(tr: &Translation, share: f64, h: u64, touches: u64, done: f64) -> f64 {
    // No flushes (VPID): 0 times the finite factors below, without their
    // divisions (a slice's bookkeeping is on the touch loop's path).
    if tr.flush_misses_per_s == 0.0 {
        return 0.0;
    }
    tr.flush_misses_per_s * done / 1e9 * (h as f64 / touches.max(1) as f64) * share
}

/// Draw the compute times of a sampled slice's `n` touches into `points`
/// (1-based, `points[0]` = 0), sorted, on [0, `slice`): the n order
/// statistics of uniforms have the law of S₁/Sₙ₊₁, …, Sₙ/Sₙ₊₁, the partial
/// sums of n + 1 standard exponentials (the gaps of a Poisson process given
/// its count; Devroye, Non-Uniform Random Variate Generation, 1986, V.2.2),
/// drawn in order without a sort (sorting n uniforms took half of a
/// sampled run's time at 100 touches a slice).
fn draw_points(points: &mut Vec<f64>, n: u64, slice: f64, rng: &mut impl rand::Rng) {
    let exp = |rng: &mut _| -> f64 { rand_distr::Exp1.sample(rng) };
    points.clear();
    points.push(0.0);
    let mut sum = 0.0;
    for _ in 0..n {
        sum += exp(rng);
        points.push(sum);
    }
    let scale = slice / (sum + exp(rng));
    points[1..].iter_mut().for_each(|x| *x *= scale);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_slices_points_are_the_order_statistics_of_uniforms() {
        // Truth: the k-th smallest of n uniforms on [0, 1) is Beta(k,
        // n − k + 1), of mean k/(n + 1) and variance k(n − k + 1)/((n +
        // 1)²(n + 2)). Each point's mean over 20 000 draws must be within
        // four standard errors of it and its variance within 5% (about
        // five standard errors: evenly spread points, of the same means,
        // have none), and every draw sorted, in [0, slice).
        let (n, slice, draws) = (9u64, 1e6, 20_000);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let mut points = Vec::new();
        let (mut sums, mut squares) = (vec![0.0; n as usize + 1], vec![0.0; n as usize + 1]);
        for _ in 0..draws {
            draw_points(&mut points, n, slice, &mut rng);
            assert_eq!((points.len(), points[0]), (n as usize + 1, 0.0));
            assert!(points.windows(2).all(|w| w[0] <= w[1]) && points[n as usize] < slice, "{points:?}");
            for (k, x) in points.iter().enumerate() {
                sums[k] += x / slice;
                squares[k] += (x / slice).powi(2);
            }
        }
        for k in 1..=n {
            let (kf, nf) = (k as f64, n as f64);
            let mean = kf / (nf + 1.0);
            let var = kf * (nf - kf + 1.0) / ((nf + 1.0).powi(2) * (nf + 2.0));
            let got = sums[k as usize] / f64::from(draws);
            assert!((got - mean).abs() < 4.0 * (var / f64::from(draws)).sqrt(), "point {k}: {got} against {mean}");
            let spread = squares[k as usize] / f64::from(draws) - got * got;
            assert!((spread / var - 1.0).abs() < 0.05, "point {k}: variance {spread} against {var}");
        }
    }
}
