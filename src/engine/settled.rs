//! Ending a run once a latency objective is missed for good.
//!
//! A plan asks of each run only whether it meets its objectives. A guest's
//! latency quantile is over all of its touches to the end, but the touches
//! still to come are bounded: a guest touches at most its touch rate (the
//! highest of its phases still ahead) for the time left, stalls only
//! slowing it. So when more of its touches are already above the bound
//! than the quantile allows even if every touch still to come were fast,
//! the quantile at the end is above the bound whatever happens, and the
//! run has missed. The run stops there; the quantile over the touches so
//! far is above the bound too (fewer touches, as many slow), so the
//! summary says the same miss.

use super::Engine;
use super::queue::SimTime;
use crate::model::Status;

/// An objective on a latency quantile that a run can be seen to miss
/// before its end: some running guest's `quantile` of its touch latency
/// above `above_ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBound {
    pub quantile: f64,
    pub above_ns: u64,
}

impl Engine<'_> {
    /// Whether every bound of the run's `stop_when_missed` is missed for
    /// good by some guest running at `now` (false with none).
    pub(super) fn bounds_missed(&mut self, now: SimTime) -> bool {
        if self.cfg.stop_when_missed.is_empty() || now < self.scenario.warmup.nanos() {
            return false;
        }
        let end = self.scenario.duration.nanos();
        let left_s = end.saturating_sub(now) as f64 / 1e9;
        let bounds = self.cfg.stop_when_missed.clone();
        bounds.iter().all(|b| (0..self.runners.len()).any(|g| self.guest_missed(g, b, now, left_s)))
    }

    fn guest_missed(&mut self, g: usize, b: &LatencyBound, now: SimTime, left_s: f64) -> bool {
        if !matches!(self.mem.guests[g].status, Status::Running | Status::Starting) {
            return false;
        }
        // The fastest it may touch from here: now's rate or a later phase's.
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let ahead = group.workload.phases.iter().filter(|p| p.at.nanos() > now).filter_map(|p| p.touch_rate);
        let rate = ahead.map(|r| r.per_sec()).fold(self.runners[g].rate, f64::max);
        self.draw_deferred_misses(g);
        let r = &mut self.runners[g];
        r.hist.flush();
        r.hit_hist.flush();
        // The touches so far and those at or below the bound, weighted as
        // the summary weighs them (`latency_hist`): counting the bound's
        // whole histogram bucket as at or below it errs toward going on.
        let (n, fast) = {
            let r = &self.runners[g];
            let faults = &r.hist.hist;
            let hits = &r.hit_hist.hist;
            let weight = if !self.sampled() || hits.is_empty() {
                1.0
            } else {
                (r.touches_real - r.warm.touches - faults.len() as f64).max(0.0) / hits.len() as f64
            };
            let n = faults.len() as f64 + hits.len() as f64 * weight;
            let fast = faults.count_between(0, b.above_ns) as f64 + hits.count_between(0, b.above_ns) as f64 * weight;
            (n, fast)
        };
        // Rounding in the summary's weighting moves each bucket's count by
        // at most a half; a touch of margin covers the few hit buckets.
        let slow = n - fast - 8.0;
        slow > (1.0 - b.quantile) * (n + rate * left_s)
    }
}
