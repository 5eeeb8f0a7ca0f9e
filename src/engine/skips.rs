//! Event mode's time: a guest's slice played by its events, and the
//! stretches between events skipped in one step.
//!
//! A guest's touches are a Poisson stream in its compute time (rate r), and
//! each lands on a page that is not mapped (an event: a fault, or a write
//! to a merged page) with the chance q the event set gives. So the events
//! are a Poisson stream of rate r·q and the hits one of rate r·(1 − q),
//! independent of it (thinning): the time to the next event is
//! exponential, and the hits before it a Poisson count. A slice plays its
//! first event at the time drawn when the last one ended, and the rest as
//! its touches: a Poisson count of them, geometric runs of hits between
//! events (one draw an event). When the next event is more than a slice
//! away, the guest skips to it in one step, however many slices that is
//! (up to [`MAX_SKIP_SLICES`]).
//!
//! While a guest skips, its pages' accessed bits still have their law:
//! the hit pressure grows with time by the expected hits (see
//! [`crate::model::eventset::EventTrack::start_skip`]), so reclaim looking
//! at them meanwhile draws what it would have seen. What the skip assumed
//! is that the event set stays as it was; when another part of the engine
//! changes it (reclaim takes one of its pages, ksmd merges one, a balloon
//! moves), the guest is woken at that time: the hits so far are counted,
//! and it plays on from there with the new set, the stream having no
//! memory.

use rand::RngExt;
use rand_distr::{Distribution, Exp1};

use super::queue::SimTime;
use super::state::{Ev, Skip};
use super::{Engine, RunError};
use crate::model::Status;
use crate::model::page::MERGED;

/// Most slices a guest skips in one step: ten simulated seconds at the
/// usual 1 ms slice. Nothing needs a shorter bound (a sample, the warm-up
/// and the end count a skip under way; a phase, and any change to the
/// guest's event set, end it), and a guest that rarely faults then costs
/// a step every ten seconds: at 100 slices, the busy large host (KSM,
/// balloons, 0.2% of touches faulting) spent nearly all of its 4.7 million
/// steps re-planning skips that had run out.
pub(super) const MAX_SKIP_SLICES: f64 = 10000.0;

impl Engine<'_> {
    /// One slice of guest `g` in event mode, starting at `now`: the
    /// events at their times (the first at the offset drawn when the last
    /// slice ended, if any), the hits between them counted.
    pub(super) fn slice_events(&mut self, g: usize, now: SimTime) -> Result<(), RunError> {
        self.shared.set_now(now);
        // A planned skip ends here (one ended early was counted then).
        self.settle_skip(g, now);
        let slice = self.slice_ns as f64;
        // Real touches per ns of compute; the event set's shares are of them.
        let r = self.runners[g].rate / 1e9;
        let write_threshold = self.runners[g].write_threshold;
        let mut next = self.due_now(g);
        // Sampled THP guests: the next first touch of an untouched region
        // on a page not simulated, at the compute offset where the guest's
        // real touches reach it.
        let first_at = |e: &Self, t0: f64| -> f64 {
            match e.runners[g].first_touches.last() {
                Some(&(f, _)) if r > 0.0 => ((f - t0) / r).max(0.0),
                _ => f64::INFINITY,
            }
        };
        let t0 = self.runners[g].touches_real;
        let mut first = first_at(self, t0);
        let mut hits = [0u64; 2];
        let mut touches = 0u64;
        let mut stall = 0.0;
        let mut t = 0.0;
        let mut killed = false;
        // After the first event (or from the start, with none due), the
        // rest of the slice is played as its touches: their number is a
        // Poisson draw, once, and the touches up to the next event
        // geometric with the event share of a touch, as they come (one
        // draw an event, where drawing each gap in time would take a
        // Poisson count of the hits in it); the touches are spread evenly
        // over the rest of the slice, as page-exact play spreads them.
        // Sampled, each event's gap is drawn in time instead, and the hits
        // before it as a Poisson count: evenly spread touches are not the
        // stream's when a slice holding few is cut short (see
        // `Engine::slice`).
        // (touches left, first touch's index, spacing, where it began)
        let mut run: Option<(u64, u64, f64, f64)> = None;
        let sampled = self.sampled();
        loop {
            let e = self.mem.guests[g].events.as_deref_mut().expect("event mode");
            let q = e.probability();
            let mass = e.mass();
            let room = (mass - q).max(0.0);
            // The next event: its time, and the hits before it.
            let (gap, h) = if let Some(x) = next.take() {
                let gap = (x - t).max(0.0);
                (gap, None)
            } else if sampled {
                (exp_gap(&mut self.rng, r * q), None)
            } else {
                let (left, done, spacing, base) = *run.get_or_insert_with(|| {
                    let n = poisson(&mut self.rng, r * mass * (slice - t));
                    (n, 0, (slice - t) / (n + 1) as f64, t)
                });
                // Touches up to and including the next event: geometric
                // with the share of a simulated touch that is one, q / m.
                let p = if mass > 0.0 { (q / mass).min(1.0) } else { 0.0 };
                let k = if p <= 0.0 {
                    u64::MAX
                } else if p >= 1.0 {
                    1
                } else {
                    let u = 1.0 - self.rng.random::<f64>();
                    1 + (u.ln() / (-p).ln_1p()).floor().min(u64::MAX as f64 / 2.0) as u64
                };
                if k > left {
                    // No event in the rest of the slice.
                    (f64::INFINITY, Some(left))
                } else {
                    let at = base + (done + k) as f64 * spacing;
                    run = Some((left - k, done + k, spacing, base));
                    ((at - t).max(0.0), Some(k - 1))
                }
            };
            // A first touch on a page not simulated comes first: its region
            // becomes a THP (or 4 KiB pages), and the events go on from there
            // (the stream has no memory: the gap drawn is dropped).
            let to_first = first - t;
            let first_now = to_first < gap && first < slice;
            let end = !first_now && t + gap >= slice;
            let span = if first_now {
                to_first
            } else if end {
                slice - t
            } else {
                gap
            };
            let h = match (h, run) {
                // Played as touches: the hits drawn, or those of the run
                // before the first touch.
                (Some(hits), Some((_, done, spacing, base))) if first_now => {
                    let before = (((t + span - base) / spacing) as u64).saturating_sub(done - hits - 1);
                    run = None;
                    before.min(hits)
                }
                (Some(hits), _) => hits,
                (None, _) => poisson(&mut self.rng, r * room * span),
            };
            e.hits(h);
            let huge = e.huge_hits(h);
            hits[1] += huge;
            hits[0] += h - huge;
            touches += h;
            if end {
                t = slice;
                break;
            }
            t += span;
            if first_now {
                let upto = self.runners[g].first_touches.last().map_or(0.0, |f| f.0);
                if self.first_touches_upto(g, upto, now, (upto, t, 0.0), t, &mut stall).is_some() {
                    break;
                }
                self.wake_disturbed()?;
                // The next one's compute offset in this slice: `first_at`
                // counts from the touches made by now, t in.
                first = t + first_at(self, t0 + r * t);
                continue;
            }
            let total = e.set.total();
            if total == 0 {
                continue;
            }
            let u = self.rng.random_range(0..total);
            let p = e.set.find(u, &mut self.rng);
            // What mapping the page reads and writes, fetched together so
            // the cache misses overlap.
            e.prefetch_event(p);
            crate::model::page::prefetch(&self.mem.guests[g].pages[p]);
            // Every change that maps, unmaps, merges or unmerges a page
            // tells the event set, so the page drawn is not mapped (a
            // touch of it faults, and writes at the write share) or merged
            // (the event is one of its writes: a copy-on-write break).
            let st = self.mem.guests[g].pages[p];
            debug_assert!(st & 1 == 0 || st & MERGED != 0, "event on a mapped page {p}");
            // (A swapped-out KSM page's entry keeps MERGED: not mapped.)
            let write = (st & 1 == 1 && st & MERGED != 0) || self.rng.random::<u32>() < write_threshold;
            let at = now + (t + stall) as u64;
            touches += 1;
            if !self.fault_and_charge(g, p as u64, at, write, &mut stall) {
                killed = true;
                break;
            }
            self.wake_disturbed()?;
            // Stalls moved this guest's clock past the slice: stop here
            // and go on from where its clock is, so guests stay within
            // about a slice of each other in time.
            if t + stall >= slice {
                break;
            }
        }
        stall += self.defer_hits(g, hits, touches, t);
        self.count_touches(g, touches, t);
        let rn = &mut self.runners[g];
        rn.compute_ns += t;
        rn.stall_ns += stall;
        if killed {
            return Ok(());
        }
        self.plan_events(g, now + ((t + stall) + 0.5).max(1.0) as u64)
    }

    /// Guest `g`'s slice ended at `at`: draw the time to its next event.
    /// Within a slice, the next slice starts at `at` with that event due;
    /// further, the guest skips to it (or [`MAX_SKIP_SLICES`] on).
    fn plan_events(&mut self, g: usize, at: SimTime) -> Result<(), RunError> {
        let slice = self.slice_ns as f64;
        let r = self.runners[g].rate / 1e9;
        let touches = self.runners[g].touches_real;
        // Sampled THP guests: not past the next first touch on a page not
        // simulated (its fault must stall the guest in its own slice).
        let until_first = match self.runners[g].first_touches.last() {
            Some(&(f, _)) if r > 0.0 => ((f - touches) / r).max(0.0),
            _ => f64::INFINITY,
        };
        let e = self.mem.guests[g].events.as_deref_mut().expect("event mode");
        let q = e.probability();
        let gap = exp_gap(&mut self.rng, r * q);
        let total = e.total();
        if gap < slice {
            self.runners[g].due = Some((gap, total));
            return self.schedule_slice(g, at);
        }
        if until_first < slice {
            self.runners[g].due = Some((gap, total));
            return self.schedule_slice(g, at);
        }
        let cap = (MAX_SKIP_SLICES * slice).min(until_first);
        let compute = gap.min(cap);
        // Wall time per compute time: exits, and the page walks of the
        // hits' TLB misses, at their expected rates.
        let rn = &self.runners[g];
        let hit_rate = r * (e.mass() - q).max(0.0);
        let huge_share = if hit_rate > 0.0 { e.huge_hits_share() } else { 0.0 };
        let per_compute = 1.0
            + (rn.small.exit_stall_per_s * (1.0 - huge_share) + rn.huge.exit_stall_per_s * huge_share) / 1e9
            + hit_rate
                * self.scale
                * (rn.small.miss_ratio.clamp(0.0, 1.0) * rn.small.walk_ns * (1.0 - huge_share)
                    + rn.huge.miss_ratio.clamp(0.0, 1.0) * rn.huge.walk_ns * huge_share);
        let wall = compute * per_compute;
        e.start_skip(at, wall, slice * per_compute, r / per_compute, (touches, r / per_compute));
        let rn = &mut self.runners[g];
        rn.skip = Some(Skip {
            from: at,
            wall,
            counted: 0.0,
            step: slice * per_compute,
            compute_per_wall: 1.0 / per_compute,
            hit_rate,
            total,
        });
        rn.due = (gap <= cap).then_some((0.0, total));
        self.schedule_slice(g, at + (wall + 0.5) as u64)
    }

    /// The compute offset of the first event of guest `g`'s slice, when
    /// the last one drew it. It was drawn at the event rate then; when the
    /// set has changed since (another guest's reclaim took a page, ksmd
    /// merged one), the stream of events is that of the new rate: a rise
    /// adds an independent stream at the difference (the first of the two
    /// comes first), a fall keeps the drawn event with the ratio of the
    /// rates, and otherwise draws afresh from it.
    fn due_now(&mut self, g: usize) -> Option<f64> {
        let (at, then) = self.runners[g].due.take()?;
        let now = self.mem.guests[g].events.as_deref().expect("event mode").total();
        if now == then {
            return Some(at);
        }
        let r = self.runners[g].rate / 1e9;
        let unit = crate::model::eventset::ONE as f64;
        if now > then {
            let extra = exp_gap(&mut self.rng, r * (now - then) / unit);
            Some(at.min(extra))
        } else if self.rng.random::<f64>() * then < now {
            Some(at)
        } else {
            Some(at + exp_gap(&mut self.rng, r * now / unit))
        }
    }

    /// Schedule guest `g`'s next slice at `at`, replacing any scheduled.
    pub(super) fn schedule_slice(&mut self, g: usize, at: SimTime) -> Result<(), RunError> {
        let rn = &mut self.runners[g];
        rn.token = rn.token.wrapping_add(1);
        let (gn, token) = (self.mem.guests[g].generation, rn.token);
        self.queue.schedule(at, Ev::Slice(g, gn, token))?;
        Ok(())
    }

    /// End guest `g`'s skip at `t` (≤ its planned end): its hits so far
    /// counted, its time split into compute and stalls. Returns whether it
    /// was skipping.
    pub(super) fn settle_skip(&mut self, g: usize, t: SimTime) -> bool {
        let Some(s) = self.runners[g].skip else { return false };
        self.count_skip(g, t);
        self.runners[g].skip = None;
        let end = s.from + (t.saturating_sub(s.from) as f64).min(s.wall) as u64;
        self.mem.guests[g].events.as_deref_mut().expect("event mode").end_skip(end);
        true
    }

    /// Count guest `g`'s skip up to `t` (its hits, compute and stalls)
    /// and go on skipping: a sample reads its counters meanwhile.
    fn count_skip(&mut self, g: usize, t: SimTime) {
        let Some(s) = self.runners[g].skip else { return };
        let upto = (t.saturating_sub(s.from) as f64).min(s.wall);
        let wall = upto - s.counted;
        if wall <= 0.0 {
            return;
        }
        if let Some(k) = self.runners[g].skip.as_mut() {
            k.counted = upto;
        }
        let compute = wall * s.compute_per_wall;
        let h = poisson(&mut self.rng, s.hit_rate * compute);
        let huge = self.mem.guests[g].events.as_deref_mut().expect("event mode").huge_hits(h);
        // The hits' walks and the exits were in the skip's length at their
        // expected rates, which split that time (the misses are drawn
        // later, several skips' at once).
        let before = self.runners[g].stall_by;
        let drawn = self.defer_hits(g, [h - huge, huge], h, compute);
        let rn = &mut self.runners[g];
        let stalls = (wall - compute).max(0.0);
        if drawn > 0.0 {
            let k = stalls / drawn;
            rn.stall_by.page_walks_s = before.page_walks_s + (rn.stall_by.page_walks_s - before.page_walks_s) * k;
            rn.stall_by.vm_exits_s = before.vm_exits_s + (rn.stall_by.vm_exits_s - before.vm_exits_s) * k;
        }
        rn.compute_ns += compute;
        rn.stall_ns += stalls;
        self.count_touches(g, h, compute);
    }

    /// `touches` simulated touches in `compute` ns of guest `g`'s time, as
    /// the real touches they stand for.
    fn count_touches(&mut self, g: usize, touches: u64, compute: f64) {
        let rn = &mut self.runners[g];
        rn.touches_real += touches as f64 + rn.unsampled_rate() * compute / 1e9;
        self.mem.guests[g].touches = rn.touches_real;
    }

    /// Guest `g`'s event set changed at `t` while it skipped (another
    /// guest's reclaim took one of its pages, ksmd merged one, a balloon
    /// moved).
    ///
    /// The skip's slices: the one under way has had its touches (see
    /// `Skip::step`); the change counts from the next one's start, as a
    /// guest whose touches are played sees a change from its next slice. A
    /// change before the skip began (in another guest's slice, which runs
    /// ahead of the queue's time) counts from where it began.
    ///
    /// A rise adds pages to the set: an independent stream of events at
    /// the added rate, starting there (superposition). Its first event is
    /// drawn now; when it comes after the skip's planned end, the skip goes
    /// on as planned, its hits from there at the lower hit rate, and the
    /// added stream, having no memory, is drawn afresh where the skip ends
    /// (`due_now`). Otherwise, and on a fall, the guest wakes at that
    /// slice: its skip counted so far, the event it was heading for (if
    /// any) and the added stream's first event both kept, the earlier one
    /// due.
    pub(super) fn wake_now(&mut self, g: usize, t: SimTime) -> Result<(), RunError> {
        let Some(s) = self.runners[g].skip else { return Ok(()) };
        if !self.mem.guests[g].is_alive() {
            return Ok(());
        }
        let elapsed = t.saturating_sub(s.from) as f64;
        let next = if t <= s.from { 0.0 } else { ((elapsed / s.step) as u64 + 1) as f64 * s.step };
        if next >= s.wall {
            // The planned end comes first.
            return Ok(());
        }
        let t = s.from + (next + 0.5) as u64;
        let r = self.runners[g].rate / 1e9;
        let e = self.mem.guests[g].events.as_deref().expect("event mode");
        let total = e.total();
        let left = (s.wall - next) * s.compute_per_wall;
        let mut due = self.runners[g].due.map(|(_, then)| (left, then));
        if total > s.total {
            let rate = r * (total - s.total) / crate::model::eventset::ONE as f64;
            let extra = exp_gap(&mut self.rng, rate);
            if extra >= left {
                // Nothing new before the skip ends: the hits so far at the
                // rate they had, the rest at the new one.
                self.count_skip(g, t);
                let e = self.mem.guests[g].events.as_deref_mut().expect("event mode");
                let hit_rate = r * (e.mass() - e.probability()).max(0.0);
                e.rearm_wake();
                if let Some(k) = self.runners[g].skip.as_mut() {
                    k.hit_rate = hit_rate;
                    k.total = total;
                }
                return Ok(());
            }
            // The earlier of the two is due; the set it stands on is now's.
            due = Some((due.map_or(extra, |(at, _)| at.min(extra)), total));
        }
        self.settle_skip(g, t);
        // The event the skip was heading for, if any, stays due (the rest
        // of its way, in compute time); on a fall, `due_now` thins it.
        self.runners[g].due = due;
        self.schedule_slice(g, t)
    }

    /// Wake the guests whose event sets changed while they skipped.
    pub(super) fn wake_disturbed(&mut self) -> Result<(), RunError> {
        if !self.shared.any_woken() {
            return Ok(());
        }
        for (g, t) in self.shared.take_woken() {
            self.wake_now(g as usize, t)?;
        }
        Ok(())
    }

    /// Count every skipping guest's skip up to `t` (a sample, the end of
    /// the warm-up or of the run), the skips going on.
    pub(super) fn count_skips(&mut self, t: SimTime) {
        for g in 0..self.runners.len() {
            if self.mem.guests[g].status == Status::Running {
                self.count_skip(g, t);
            }
        }
    }

    /// End the skips of group `group`'s guests at `t` (its workload
    /// changes there) and play them on from `t`.
    pub(super) fn wake_group(&mut self, group: usize, t: SimTime) -> Result<(), RunError> {
        for g in 0..self.runners.len() {
            let Some(s) = self.runners[g].skip else { continue };
            if self.mem.guests[g].group != group || self.mem.guests[g].status != Status::Running {
                continue;
            }
            let t = t.max(s.from);
            self.settle_skip(g, t);
            self.runners[g].due = None;
            self.schedule_slice(g, t)?;
        }
        Ok(())
    }
}

/// The wait to the first event of a Poisson stream of `rate` (infinite
/// when the stream is empty).
fn exp_gap<R: rand::Rng + ?Sized>(rng: &mut R, rate: f64) -> f64 {
    if rate > 0.0 { Distribution::<f64>::sample(&Exp1, rng) / rate } else { f64::INFINITY }
}

/// A Poisson count of mean `mean`: inversion for small means; above,
/// Hörmann's transformed rejection with squeeze (PTRS: W. Hörmann, "The
/// transformed rejection method for generating Poisson random variables",
/// Insurance: Mathematics and Economics 12, 1993; as NumPy draws them).
/// Its setup is a square root; two draws in three (at a mean of 80; three
/// in four past 1,000) take two uniforms and nothing else, the rest a
/// logarithm and ln k! (a table, or Stirling's series), where the
/// library's sampler pays a log-gamma each time. A skip draws one for
/// every stretch it counts.
fn poisson<R: rand::Rng + ?Sized>(rng: &mut R, mean: f64) -> u64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    if mean < 12.0 {
        let mut u = rng.random::<f64>();
        let mut p = (-mean).exp();
        let mut k = 0u64;
        while u > p {
            u -= p;
            k += 1;
            p *= mean / k as f64;
            if k > 200 {
                break;
            }
        }
        return k;
    }
    let slam = mean.sqrt();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    let log_mean = std::cell::OnceCell::new();
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v = rng.random::<f64>();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let lhs = (v * inv_alpha / (a / (us * us) + b)).ln();
        let rhs = -mean + k * *log_mean.get_or_init(|| mean.ln()) - ln_factorial(k);
        if lhs <= rhs {
            return k as u64;
        }
    }
}

/// ln k! for a whole k ≥ 0: summed up to 32, Stirling's series beyond
/// (its first omitted term, 1/(1188·k⁹), is below 10⁻¹⁶ there).
fn ln_factorial(k: f64) -> f64 {
    static SMALL: std::sync::LazyLock<[f64; 32]> = std::sync::LazyLock::new(|| {
        let mut t = [0.0; 32];
        for i in 2..32 {
            t[i] = t[i - 1] + (i as f64).ln();
        }
        t
    });
    if k < 32.0 {
        return SMALL[k as usize];
    }
    let (x, x2) = (k + 1.0, (k + 1.0) * (k + 1.0));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2)
        + 1.0 / (1260.0 * x * x2 * x2)
}

#[cfg(test)]
mod tests {
    use super::poisson;
    use rand::SeedableRng;

    #[test]
    fn poisson_counts_have_the_poisson_law() {
        // Closed form: a Poisson count of mean m has mean and variance m,
        // and P(0) = e^−m. 200,000 draws each side of the switch to
        // transformed rejection (12): the means within 4 standard errors
        // (√(m/n)), the share of zeros within 4 of its binomial error.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 200_000;
        for m in [0.3, 3.7, 11.9, 12.0, 40.0, 1_000.0, 2.5e6] {
            let draws: Vec<u64> = (0..n).map(|_| poisson(&mut rng, m)).collect();
            let mean = draws.iter().sum::<u64>() as f64 / n as f64;
            let var = draws.iter().map(|&k| (k as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!((mean - m).abs() < 4.0 * (m / n as f64).sqrt(), "mean {mean} for {m}");
            assert!((var / m - 1.0).abs() < 0.03, "variance {var} for {m}");
            let p0 = (-m).exp();
            let zeros = draws.iter().filter(|&&k| k == 0).count() as f64 / n as f64;
            assert!((zeros - p0).abs() < 4.0 * (p0 * (1.0 - p0) / n as f64).sqrt() + 1e-12, "P(0) {zeros} for {m}");
        }
    }

    #[test]
    fn transformed_rejection_draws_the_poisson_probabilities() {
        // Closed form: P(k) = e^−m·m^k/k!. 400,000 draws at means 20 and
        // 150 (both past the switch): every k expected 50 times or more
        // counted within 4.5 standard deviations of its binomial mean.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        let n = 400_000;
        for m in [20.0f64, 150.0] {
            let mut counts = std::collections::HashMap::<u64, u64>::new();
            for _ in 0..n {
                *counts.entry(poisson(&mut rng, m)).or_default() += 1;
            }
            for k in 0..(4.0 * m) as u64 {
                let p = (-m + k as f64 * m.ln() - super::ln_factorial(k as f64)).exp();
                let expected = n as f64 * p;
                if expected < 50.0 {
                    continue;
                }
                let got = counts.get(&k).copied().unwrap_or(0) as f64;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                assert!((got - expected).abs() < 4.5 * sd, "P({k}) at mean {m}: {got} draws, expected {expected:.0}");
            }
        }
    }

    #[test]
    fn ln_factorial_matches_the_sum_of_logarithms() {
        // The definition, ln k! = Σ ln i, summed directly: Stirling's
        // series past 32 agrees to 1e-13 relative.
        let mut sum = 0.0f64;
        for k in 1..3000u64 {
            sum += (k as f64).ln();
            let got = super::ln_factorial(k as f64);
            assert!((got - sum).abs() <= 1e-13 * sum.max(1.0), "ln {k}! = {sum}, got {got}");
        }
    }
}
