//! Writeback throttling (blk-wbt, block/blk-wbt.c and block/blk-rq-qos.c,
//! Linux 6.x): the block layer's cap on buffered writes in flight on a
//! request-based device, which every swap-out to a disk goes through.
//!
//! - A write that is not kswapd's nor marked sync (direct reclaim's
//!   page-outs, zswap's write-backs) may have at most `wb_background`
//!   tracked requests in flight while reads were issued or completed in the
//!   last 100 ms (`close_io`, as they always are while guests fault pages
//!   back), else `wb_normal`; kswapd's may have `max_depth`.
//! - `max_depth` is RWB_DEF_DEPTH = 16 (capped at the queue depth) at
//!   scale step 0; each negative step doubles it (1 + 15 << −step), up to
//!   three quarters of the queue depth; each positive step halves it.
//!   `wb_normal` = (max_depth + 1) / 2, `wb_background` = (max_depth + 3) / 4.
//!   A queue depth of 1 gives 2 (1 when scaled down).
//! - Every 100 ms while writes are about (the stat window, armed by a
//!   tracked write), the step moves: a window with writes whose reads'
//!   minimum latency stayed under the target (`min_lat_nsec`: 75 ms for a
//!   rotational device, 2 ms otherwise) scales up (one step more
//!   negative); one over the target scales down hard (a negative step goes
//!   straight to 0, a positive one grows, shrinking the window to 100 ms /
//!   √(step + 1)); five windows in a row without writes or anything in
//!   flight bring the step one back towards 0. The timer stops at step 0
//!   with nothing in flight.
//! - A writer over the limit sleeps; on a device with a volatile write
//!   cache (QUEUE_FLAG_WC, as virtio disks, consumer SSDs and disks have)
//!   a completion wakes the sleepers only once nothing is in flight
//!   (wbt_rqw_done's limit 0), so they then go in a burst.
//!
//! Left out: REQ_SYNC writes and discards (swap issues neither), and the
//! one-second boost after a task was throttled in balance_dirty_pages
//! (page-cache writeback, which the model has none of).

use std::collections::VecDeque;

/// The stat window at step 0 or below (RWB_WINDOW_NSEC).
pub const WINDOW_NS: f64 = 100e6;
/// RWB_DEF_DEPTH.
const DEFAULT_DEPTH: u32 = 16;
/// RWB_UNKNOWN_BUMP: windows without data before the step moves towards 0.
const UNKNOWN_BUMP: u32 = 5;
/// close_io: reads within HZ / 10.
const CLOSE_IO_NS: f64 = 100e6;
/// RWB_MIN_WRITE_SAMPLES.
const MIN_WRITE_SAMPLES: u64 = 3;

#[derive(Debug, Clone)]
pub struct Wbt {
    queue_depth: u32,
    min_lat_ns: f64,
    step: i32,
    scaled_max: bool,
    max_depth: u32,
    /// Start of the current stat window (None: the timer is not armed).
    window: Option<f64>,
    unknown: u32,
    reads: u64,
    writes: u64,
    read_min_ns: f64,
    /// Last read issued or completed (close_io).
    last_read: f64,
    /// Completion times of the throttled writers' requests in flight, in
    /// order, each with the requests it stands for.
    inflight: VecDeque<(f64, u32)>,
}

impl Wbt {
    /// wbt on a device of `queue_depth` requests; `rotational` sets the
    /// read latency target (wbt_default_latency_nsec).
    pub fn new(queue_depth: u32, rotational: bool) -> Wbt {
        let mut w = Wbt {
            queue_depth: queue_depth.max(1),
            min_lat_ns: if rotational { 75e6 } else { 2e6 },
            step: 0,
            scaled_max: false,
            max_depth: 0,
            window: None,
            unknown: 0,
            reads: 0,
            writes: 0,
            read_min_ns: f64::INFINITY,
            last_read: f64::NEG_INFINITY,
            inflight: VecDeque::new(),
        };
        w.calc_max_depth();
        w
    }

    /// rq_depth_calc_max_depth: returns whether the depth cannot grow.
    fn calc_max_depth(&mut self) -> bool {
        if self.queue_depth == 1 {
            if self.step > 0 {
                self.max_depth = 1;
                false
            } else {
                self.max_depth = 2;
                true
            }
        } else {
            let mut depth = DEFAULT_DEPTH.min(self.queue_depth);
            let mut at_max = false;
            if self.step > 0 {
                depth = 1 + ((depth - 1) >> self.step.min(31));
            } else if self.step < 0 {
                let maxd = 3 * self.queue_depth / 4;
                depth = 1u32.saturating_add((depth - 1).checked_shl((-self.step) as u32).unwrap_or(u32::MAX));
                if depth > maxd {
                    depth = maxd;
                    at_max = true;
                }
            }
            self.max_depth = depth;
            at_max
        }
    }

    fn scale_up(&mut self) {
        if self.scaled_max {
            return;
        }
        self.step -= 1;
        self.scaled_max = self.calc_max_depth();
        self.unknown = 0;
    }

    fn scale_down(&mut self, hard: bool) {
        if self.max_depth == 1 {
            return;
        }
        if self.step < 0 && hard {
            self.step = 0;
        } else {
            self.step += 1;
        }
        self.scaled_max = false;
        self.calc_max_depth();
        self.unknown = 0;
    }

    /// (wb_background, wb_normal, max_depth), as the wbt_step tracepoint
    /// prints them.
    pub fn limits(&self) -> (u32, u32, u32) {
        if self.max_depth <= 2 {
            (1, self.max_depth, self.max_depth)
        } else {
            // (max_depth + 3) / 4 and (max_depth + 1) / 2, as calc_wb_limits.
            (self.max_depth.div_ceil(4), self.max_depth.div_ceil(2), self.max_depth)
        }
    }

    pub fn step(&self) -> i32 {
        self.step
    }

    fn window_ns(&self) -> f64 {
        if self.step > 0 { WINDOW_NS / f64::from(self.step + 1).sqrt() } else { WINDOW_NS }
    }

    /// Play the stat windows that ended by `now` (wb_timer_fn).
    #[inline]
    fn roll(&mut self, now: f64) {
        // Most calls fall inside the current window, or find none.
        match self.window {
            Some(start) if now >= start + self.window_ns() => self.roll_windows(now),
            _ => {}
        }
    }

    #[cold]
    fn roll_windows(&mut self, now: f64) {
        while let Some(start) = self.window {
            let end = start + self.window_ns();
            if now < end {
                return;
            }
            self.complete(end);
            let valid = self.reads >= 1 && self.writes >= MIN_WRITE_SAMPLES;
            if valid && self.read_min_ns > self.min_lat_ns {
                self.scale_down(true);
            } else if valid || self.writes > 0 || !self.inflight.is_empty() {
                self.scale_up();
            } else {
                self.unknown += 1;
                if self.unknown >= UNKNOWN_BUMP {
                    match self.step.cmp(&0) {
                        std::cmp::Ordering::Greater => self.scale_up(),
                        std::cmp::Ordering::Less => self.scale_down(false),
                        std::cmp::Ordering::Equal => {}
                    }
                }
            }
            (self.reads, self.writes, self.read_min_ns) = (0, 0, f64::INFINITY);
            self.window = (self.step != 0 || !self.inflight.is_empty()).then_some(end);
        }
    }

    /// Requests done by `now` leave the flight.
    fn complete(&mut self, now: f64) {
        while self.inflight.front().is_some_and(|&(c, _)| c <= now) {
            self.inflight.pop_front();
        }
    }

    /// A read issued at `now` that takes `latency_ns` (a stat sample).
    #[inline]
    pub fn read(&mut self, now: f64, latency_ns: f64) {
        self.roll(now);
        self.reads += 1;
        self.read_min_ns = self.read_min_ns.min(latency_ns);
        self.last_read = self.last_read.max(now + latency_ns);
    }

    /// A write request issued at `now` by a writer that is not throttled
    /// here (its completion is not tracked): a stat sample, and it arms
    /// the timer as a tracked write does.
    #[inline]
    pub fn untracked_write(&mut self, now: f64) {
        self.roll(now);
        self.writes += 1;
        if self.window.is_none() {
            self.window = Some(now);
        }
    }

    /// When a throttled writer (not kswapd) that wants to write at `now`
    /// may issue its request: at once while fewer than its limit are in
    /// flight, else when the flight has drained (write-cache wake-up),
    /// looked at again then.
    pub fn admit(&mut self, mut now: f64) -> f64 {
        loop {
            self.roll(now);
            self.complete(now);
            let limit = self.limit(now);
            if self.inflight.iter().map(|e| e.1).sum::<u32>() < limit {
                return now;
            }
            now = self.inflight.back().expect("over a limit of at least 1").0;
        }
    }

    /// The limit a throttled writer has at `now` (after [`Wbt::admit`]).
    fn limit(&self, now: f64) -> u32 {
        let (background, normal, _) = self.limits();
        if now < self.last_read + CLOSE_IO_NS { background } else { normal }
    }

    /// A throttled writer's request issued at `now`, starting on the
    /// device at `start` (after what is queued ahead of it) and taking
    /// `latency_ns` there. In sampled mode one simulated request stands for
    /// `real` ones (1/R): they go in bursts of the limit, each after the
    /// last has drained, so the last is done ⌈real / limit⌉ latencies
    /// after the start, the flight full until then.
    pub fn issue(&mut self, now: f64, start: f64, latency_ns: f64, real: f64) {
        self.untracked_write(now);
        let (bursts, count) = if real <= 1.0 {
            (1.0, 1)
        } else {
            let limit = self.limit(now).max(1);
            ((real / f64::from(limit)).ceil(), limit)
        };
        let done = start + bursts * latency_ns;
        let done = self.inflight.back().map_or(done, |b| done.max(b.0));
        self.inflight.push_back((done, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_scale_steps_as_this_kernel_traced_them() {
        // The wbt_step tracepoint on this project's machine (virtio disk,
        // queue depth 256) printed, step by step from 0 to -4:
        // background/normal/max 4/8/16, 8/16/31, 16/31/61, 31/61/121,
        // 48/96/192 (3/4 of 256: no further).
        let mut w = Wbt::new(256, true);
        let mut seen = vec![w.limits()];
        for _ in 0..5 {
            w.scale_up();
            seen.push(w.limits());
        }
        assert_eq!(seen, [(4, 8, 16), (8, 16, 31), (16, 31, 61), (31, 61, 121), (48, 96, 192), (48, 96, 192)]);
        assert_eq!(w.step(), -4);
        // A latency violation sends a negative step straight to 0.
        w.scale_down(true);
        assert_eq!((w.step(), w.limits()), (0, (4, 8, 16)));
        // rq_depth_calc_max_depth's special case: a queue of one gets 2.
        assert_eq!(Wbt::new(1, true).limits(), (1, 2, 2));
    }

    #[test]
    fn windows_with_writes_scale_up_and_idle_ones_bring_the_step_back() {
        // wb_timer_fn: every 100 ms window with writes scales up; five
        // windows without data move the step one towards 0.
        let mut w = Wbt::new(256, true);
        for i in 0..3 {
            w.untracked_write(i as f64 * WINDOW_NS + 1.0);
        }
        w.roll(3.0 * WINDOW_NS + 2.0);
        assert_eq!(w.step(), -3);
        // 5 idle windows per step back: -3 -> -2 after 500 ms.
        w.roll(3.0 * WINDOW_NS + 5.0 * WINDOW_NS + 2.0);
        assert_eq!(w.step(), -2);
        w.roll(3.0 * WINDOW_NS + 15.0 * WINDOW_NS + 2.0);
        assert_eq!(w.step(), 0);
        assert!(w.window.is_none(), "the timer stops at step 0 with nothing in flight");
    }

    #[test]
    fn a_throttled_writer_waits_for_the_flight_to_drain() {
        // With reads about, a background writer may have wb_background = 4
        // requests in flight at step 0; the fifth waits until all four are
        // done (write-cache wake-up), not just the first.
        let mut w = Wbt::new(256, false);
        w.read(0.0, 80e3);
        for i in 0..4 {
            let t = w.admit(1e3);
            assert_eq!(t, 1e3);
            w.issue(t, 1e3 + 100e3 * f64::from(i), 100e3, 1.0);
        }
        assert_eq!(w.admit(2e3), 1e3 + 400e3);
        // Without reads in the last 100 ms the limit is wb_normal = 8.
        let mut quiet = Wbt::new(256, false);
        for _ in 0..8 {
            let t = quiet.admit(0.0);
            quiet.issue(t, 0.0, 1e6, 1.0);
        }
        assert_eq!(quiet.admit(0.0), 1e6);
    }

    #[test]
    fn a_sampled_request_goes_in_bursts_of_the_limit() {
        // At 1/32 one simulated write-back stands for 32 real ones; with
        // reads about the limit is 4, so they go as 32 / 4 = 8 bursts, each
        // after the last has drained: the last is done 8 latencies after
        // the request starts on the device, and the flight is full until
        // then (the next writer waits for that).
        let mut w = Wbt::new(256, false);
        w.read(0.0, 80e3);
        let t = w.admit(1e3);
        w.issue(t, 2e3, 100e3, 32.0);
        assert_eq!(w.admit(3e3), 2e3 + 8.0 * 100e3);
    }
}
