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
//! 2⁴⁰-page working set still weighs one unit), summed exactly however
//! many updates were made, where floating sums would drift. Pages are
//! kept in lists of like weight: pages of a run of equal shares
//! ([`RunLists`]: uniform, hot/cold), or pages whose shares lie within a
//! power of two ([`ClassLists`]: Zipf). A draw picks a list by its weight,
//! then a page of it: uniformly, or by rejection against the list's
//! bound (accepted at least half the time). Setting a weight and drawing
//! are O(1) expected, one or two cache lines, where a tree over the pages
//! takes a walk of its height.

/// Pages per block of [`EventTrack`]'s region sums: a 2 MiB region.
const REGION: usize = 512;

/// One touch's worth of weight: 2⁴⁰ units.
pub const ONE: u64 = 1 << 40;

/// A probability as weight units.
pub fn units(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * ONE as f64).round() as u64
}

/// Each page's share of a guest's touches, in units of [`ONE`] times the
/// track's scale (see [`EventTrack::rescale`]): runs of pages with one
/// share (uniform, hot/cold: no memory per page), or one share per page
/// (Zipf).
#[derive(Debug, Clone)]
pub enum TouchShares {
    /// (first page past the run, share), the runs in page order from 0;
    /// pages past the last run are not touched.
    Runs(Vec<(usize, u64)>),
    /// A share per page, shared by the guests of a group, and the first
    /// page past the working set (pages from there on are not touched).
    Table(std::sync::Arc<Vec<u64>>, usize),
}

impl TouchShares {
    #[inline]
    pub fn get(&self, page: usize) -> u64 {
        match self {
            TouchShares::Runs(runs) => runs.iter().find(|r| page < r.0).map_or(0, |r| r.1),
            TouchShares::Table(t, limit) => {
                if page < *limit {
                    t[page]
                } else {
                    0
                }
            }
        }
    }

    /// The first page past the working set, when one share or one table
    /// covers it from page 0 (uniform, Zipf): what a cut or a growth of
    /// the working set moves without changing any other page's share.
    fn limit(&self) -> Option<usize> {
        match self {
            TouchShares::Runs(runs) if runs.len() == 1 => Some(runs[0].0),
            TouchShares::Table(_, limit) => Some(*limit),
            TouchShares::Runs(_) => None,
        }
    }

    fn set_limit(&mut self, to: usize) {
        match self {
            TouchShares::Runs(runs) => runs[0].0 = to,
            TouchShares::Table(_, limit) => *limit = to,
        }
    }
}

mod lists;

pub use lists::{ClassLists, Events, RunLists};
use lists::{Kind, scaled};

/// What the event tracks of one run share: the simulated time the engine
/// is at, and the guests whose event sets changed while they skipped ahead
/// (with when), for the engine to wake.
#[derive(Debug, Default)]
pub struct Shared {
    now: std::sync::atomic::AtomicU64,
    woken: std::sync::Mutex<Vec<(u32, u64)>>,
    any: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn set_now(&self, t: u64) {
        self.now.store(t, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The guests to wake, in the order they were disturbed.
    pub fn take_woken(&self) -> Vec<(u32, u64)> {
        self.any.store(false, std::sync::atomic::Ordering::Relaxed);
        std::mem::take(&mut *self.woken.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn any_woken(&self) -> bool {
        self.any.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The hit pressure of a guest skipping ahead: `a0` at wall time `wall0`,
/// growing by `per_ns` a nanosecond, a slice at a time: as a slice played
/// touch by touch has all of its touches played when it starts, a skip
/// counts each of its slices' hits from that slice's start.
#[derive(Debug, Clone, Copy)]
struct SkipClock {
    wall0: u64,
    a0: f64,
    per_ns: f64,
    /// The skip's planned length, and the wall time of one slice in it.
    wall: f64,
    step: f64,
    /// The guest's real touch count at `wall0`, and its growth a
    /// nanosecond (sampled THP guests: reclaim reads it for their huge
    /// pages).
    touches0: f64,
    touches_per_ns: f64,
}

impl SkipClock {
    /// Wall time counted by `now`: nothing before the skip begins (the
    /// engine's time is behind the guest's), then a slice at a time.
    fn counted(&self, now: u64) -> f64 {
        if now < self.wall0 {
            0.0
        } else {
            // (Truncation is floor here: the quotient is not negative.)
            ((((now - self.wall0) as f64 / self.step) as u64 + 1) as f64 * self.step).min(self.wall)
        }
    }
}

/// A guest's touches played by events instead of one by one: each page's
/// share of the touches, the event set over them, and what decides, when
/// reclaim looks at a page, whether it was touched since it last looked.
///
/// Between events every touch is a hit, on resident page i with
/// probability pᵢ / (1 − q). So page i's hits since reclaim last looked at
/// it are a thinned stream, and it was touched with probability
/// 1 − Πₖ (1 − pᵢ/(1 − qₖ))^{hₖ} ≈ 1 − exp(−pᵢ·ΔA), A accumulating
/// hₖ/(1 − qₖ) over the batches of hₖ hits between events (the Poisson
/// form: exact to O(pᵢ²) per batch, and pᵢ is a page's share of a working
/// set of thousands of pages or more). A touch that is itself an event
/// (the fault that maps the page) sets the accessed bit outright.
///
/// In sampled mode the pages tracked are the sampled ones, taking a share
/// m (the mass) of the guest's real touches: a hit on them lands on page i
/// with probability pᵢ / (m − q), and A accumulates hₖ/(m − qₖ), still in
/// the guest's real touches.
#[derive(Debug, Clone)]
pub struct EventTrack {
    pub set: Events,
    /// Each page's share of the guest's touches.
    pub p: TouchShares,
    /// Hit pressure so far.
    pub a: f64,
    /// `a` when reclaim last looked at each page's accessed bit.
    last_a: Vec<f64>,
    /// Per block of [`REGION`] pages (a 2 MiB region at page-exact
    /// scale): Σ pᵢ (in touches), and Σ pᵢ·last_aᵢ. A huge page's look
    /// then needs a · Σ pᵢ − Σ pᵢ·last_aᵢ, not a pass over its 512 pages:
    /// reclaim looks at a busy THP tens of times for each it takes.
    region_p: Vec<f64>,
    region_pa: Vec<f64>,
    /// The share of touches that write.
    pub write: f64,
    /// `a` when ksmd last looked at each page (empty without KSM): whether
    /// the guest wrote it since is drawn as the accessed bit is, at the
    /// page's write share of its touches.
    pub ksm_a: Vec<f64>,
    /// Looks made: with `salt`, the input of the hash that decides them
    /// (reclaim draws no random numbers of the run's generator, so its
    /// decisions do not shift the touches'.)
    looks: u64,
    salt: u64,
    /// While the guest skips a stretch without events: `a` grows with
    /// time, by the expected hits (the touch stream's compensator, which
    /// gives each page's accessed bit exactly its law) and is brought up
    /// to the shared clock's time at each look.
    skip: Option<SkipClock>,
    /// Its event set changed while it skipped; the engine was told.
    woken: bool,
    guest: u32,
    shared: std::sync::Arc<Shared>,
    /// Which pages are mapped by a huge page (a bit each), and their
    /// touch shares' sum: the share of hits that land on huge pages,
    /// which the TLB model needs.
    huge: Vec<u64>,
    huge_mass: u64,
    /// Hits on huge pages owed to the count but not yet given (the split
    /// of each batch is its expected value, carried in fractions).
    huge_carry: f64,
    /// The touch shares of all the pages tracked, in units: [`ONE`] when
    /// every page is (page-exact), the sampled pages' share when sampled.
    mass: u64,
    /// A page's share of the guest's touches per unit of its `p` (1 unless
    /// set): shares are kept up to a common factor, so that a working set
    /// cut or grown changes only the pages that enter or leave it. The
    /// pressure `a` and each page's last looks are in the same units, so
    /// pᵢ·ΔA, the hits' chance of having touched a page, needs no factor;
    /// only the rates of events and hits in the guest's real touches do.
    scale: f64,
}

impl EventTrack {
    /// What a touch of a page in state `st` is: an event when the page is
    /// not mapped (untouched, swapped, or the balloon's: a fault), or when
    /// it is merged (its writes: copy-on-write breaks); else a hit.
    #[inline]
    fn kind(st: u8) -> Kind {
        if st & 1 == 0 {
            Kind::Unmapped
        } else if st & super::page::MERGED != 0 {
            Kind::Merged
        } else {
            Kind::None
        }
    }

    /// The event weight of a page in state `st` with touch share `p` when
    /// a share `write` of touches write.
    #[inline]
    pub fn weight(st: u8, p: u64, write: f64) -> u64 {
        match Self::kind(st) {
            Kind::Unmapped => p,
            Kind::Merged => scaled(p, write),
            Kind::None => 0,
        }
    }

    /// Track `n` pages in states `states` touched with shares `p`, a share
    /// `write` of the touches writing; `ksm`: ksmd looks at them too.
    pub fn new(p: TouchShares, states: &[u8], write: f64, ksm: bool, salt: u64) -> EventTrack {
        Self::with_shared(p, states, write, ksm, salt, 0, std::sync::Arc::default())
    }

    /// [`Self::new`] for guest `guest` of a run whose tracks share `shared`.
    pub fn with_shared(
        p: TouchShares,
        states: &[u8],
        write: f64,
        ksm: bool,
        salt: u64,
        guest: u32,
        shared: std::sync::Arc<Shared>,
    ) -> EventTrack {
        let n = states.len();
        let set = match &p {
            TouchShares::Runs(runs) => {
                let mut lists = RunLists::new(runs, n, write);
                // Run by run, in page order: as `set` for each page would
                // leave them, without looking up each page's run.
                for r in 0..lists.runs.len() {
                    let (first, end, _) = lists.runs[r];
                    for (page, &st) in states.iter().enumerate().take(end).skip(first) {
                        match Self::kind(st) {
                            Kind::None => {}
                            kind => lists.push(page, r, kind == Kind::Merged),
                        }
                    }
                }
                Events::Runs(lists)
            }
            TouchShares::Table(t, limit) => {
                let mut c = ClassLists::new(std::sync::Arc::clone(t), *limit, n, write);
                c.fill(states);
                Events::Classes(c)
            }
        };
        let ksm_a = if ksm { vec![0.0; n] } else { Vec::new() };
        let mut t = EventTrack {
            set,
            p,
            a: 0.0,
            last_a: vec![0.0; n],
            region_p: Vec::new(),
            region_pa: Vec::new(),
            write,
            ksm_a,
            looks: 0,
            salt,
            skip: None,
            woken: false,
            guest,
            shared,
            huge: vec![0; n.div_ceil(64)],
            huge_mass: 0,
            huge_carry: 0.0,
            mass: 0,
            scale: 1.0,
        };
        t.mass = match &t.p {
            TouchShares::Runs(runs) => {
                let mut start = 0;
                runs.iter()
                    .map(|&(end, p)| {
                        let end = end.min(n);
                        let m = (end.saturating_sub(start)) as u64 * p;
                        start = end.max(start);
                        m
                    })
                    .sum()
            }
            TouchShares::Table(table, limit) => table.iter().take(n.min(*limit)).sum(),
        };
        t.count_huge(states);
        t
    }

    /// The share of the guest's touches that land on the pages tracked.
    pub fn mass(&self) -> f64 {
        self.mass as f64 / ONE as f64 * self.scale
    }

    /// The share of the guest's touches that are events (faults,
    /// copy-on-write breaks).
    pub fn probability(&self) -> f64 {
        self.set.probability() * self.scale
    }

    /// The events' weight in units of [`ONE`] of the guest's touches: how
    /// the engine tells whether the set changed, and by how much.
    pub fn total(&self) -> f64 {
        self.set.total() as f64 * self.scale
    }

    /// Shares are `p` times `scale` from here (see the field).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// The working set now ends at page `limit`, and a share is `scale`
    /// per unit of `p`; every other page keeps its share relative to the
    /// others (a working set the guest's OOM killer cut, or a phase that
    /// grows or shrinks a uniform or Zipf working set: Zipf's weights
    /// i^(−s) are the same whatever the size, only their normaliser
    /// changes). Only the pages that leave or enter are touched, where a
    /// new track and [`Self::carry_into`] pass over every page. A page
    /// that leaves has its accessed and written bits drawn into `states`
    /// now, from the hits so far (as `carry_into` draws them for a page
    /// left without a share); one that enters has had no hits. False, and
    /// nothing done, when the shares are not of that form (hot/cold).
    /// Not while skipping (the engine ends a skip first).
    pub fn rescale(&mut self, limit: usize, scale: f64, states: &mut [u8]) -> bool {
        use super::page::{MERGED, REFERENCED, WRITTEN};
        debug_assert!(self.skip.is_none(), "a skip is ended before the workload changes");
        let Some(old) = self.p.limit() else { return false };
        self.sync();
        let n = self.last_a.len().min(states.len());
        let (old, limit) = (old.min(n), limit.min(n));
        let a = self.a;
        let unit = ONE as f64;
        // Pages leaving: taken out of the set while their share still
        // places them, their bits drawn, their shares out of the sums.
        for (page, st) in states.iter_mut().enumerate().take(old).skip(limit) {
            let b = self.p.get(page);
            let lambda = b as f64 / unit * (a - self.last_a[page]);
            if *st & 1 == 1 && lambda > 0.0 && self.draw(lambda) {
                *st |= REFERENCED;
            }
            if let Some(&last) = self.ksm_a.get(page) {
                let lambda = self.write * b as f64 / unit * (a - last);
                if *st & 1 == 1 && *st & MERGED == 0 && lambda > 0.0 && self.draw(lambda) {
                    *st |= WRITTEN;
                }
                self.ksm_a[page] = a;
            }
            if let (Some(rp), Some(rpa)) = (self.region_p.get_mut(page / REGION), self.region_pa.get_mut(page / REGION))
            {
                *rp -= b as f64 / unit;
                *rpa -= b as f64 / unit * self.last_a[page];
            }
            self.last_a[page] = a;
            self.mass -= b;
            if self.huge[page / 64] & (1 << (page % 64)) != 0 {
                self.huge_mass -= b;
            }
            match &mut self.set {
                Events::Runs(r) => r.set(page, Kind::None),
                Events::Classes(c) => c.set(page, Kind::None),
            }
        }
        self.p.set_limit(limit);
        match &mut self.set {
            Events::Runs(r) => r.set_end(limit),
            Events::Classes(c) => c.limit = limit,
        }
        // Pages entering: no hits yet; events when not mapped (or merged).
        for (page, &st) in states.iter().enumerate().take(limit).skip(old) {
            let b = self.p.get(page);
            self.last_a[page] = a;
            if let Some(k) = self.ksm_a.get_mut(page) {
                *k = a;
            }
            if let (Some(rp), Some(rpa)) = (self.region_p.get_mut(page / REGION), self.region_pa.get_mut(page / REGION))
            {
                *rp += b as f64 / unit;
                *rpa += b as f64 / unit * a;
            }
            self.mass += b;
            if self.huge[page / 64] & (1 << (page % 64)) != 0 {
                self.huge_mass += b;
            }
            let kind = Self::kind(st);
            match &mut self.set {
                Events::Runs(r) => r.set(page, kind),
                Events::Classes(c) => c.set(page, kind),
            }
        }
        self.scale = scale;
        true
    }

    /// Whether `other` has the same pages' shares up to a factor and a
    /// limit (the same table, or one share from page 0) and the same write
    /// share: what [`Self::rescale`] can turn this track into.
    pub fn rescales_to(&self, p: &TouchShares, write: f64) -> bool {
        write == self.write
            && match (&self.p, p) {
                (TouchShares::Table(a, _), TouchShares::Table(b, _)) => std::sync::Arc::ptr_eq(a, b),
                (TouchShares::Runs(a), TouchShares::Runs(b)) => a.len() == 1 && b.len() == 1 && a[0].1 == b[0].1,
                _ => false,
            }
    }

    /// Build the region sums, at the first look at a huge page: a guest
    /// without huge pages never pays for them.
    fn ensure_regions(&mut self) {
        if !self.region_p.is_empty() {
            return;
        }
        let n = self.last_a.len();
        let blocks = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
            (0..n.div_ceil(REGION)).map(|r| (r * REGION..((r + 1) * REGION).min(n)).map(f).sum()).collect()
        };
        self.region_p = blocks(&|page| self.p.get(page) as f64 / ONE as f64);
        self.region_pa = blocks(&|page| self.p.get(page) as f64 / ONE as f64 * self.last_a[page]);
    }

    /// The guest's touch shares change (a phase, or a working set the
    /// guest's OOM killer cut): `new` is the track built for the new ones,
    /// and what the hits under the old ones did since each page's last
    /// look is carried into it. Those hits are a Poisson count of mean λ
    /// (the page's share times the pressure since), and the next look's
    /// are another, independent: touched in either with chance
    /// 1 − e^(−(λ + λ′)). So λ is kept in the new last look, as the
    /// pressure the page's new share p′ would take to reach it
    /// (last_a′ = a − λ/p′), and the next look draws from both at once;
    /// ksmd's look at writes likewise. A page whose new share is 0 cannot
    /// carry it: its accessed and written bits are drawn now into `states`,
    /// as a look would. Not while skipping (the engine ends a skip first).
    pub fn carry_into(mut self, new: &mut EventTrack, states: &mut [u8]) {
        debug_assert!(self.skip.is_none(), "a skip is ended before the workload changes");
        self.sync();
        new.a = self.a;
        new.huge_carry = self.huge_carry;
        let unit = ONE as f64;
        let n = new.last_a.len().min(states.len());
        match (&self.p, &new.p) {
            (&TouchShares::Table(ref o, ol), &TouchShares::Table(ref t, tl)) => {
                let (o, t) = (std::sync::Arc::clone(o), std::sync::Arc::clone(t));
                for (page, st) in states.iter_mut().enumerate().take(n) {
                    let (old_p, new_p) = (if page < ol { o[page] } else { 0 }, if page < tl { t[page] } else { 0 });
                    self.carry_page(new, page, old_p as f64 / unit, new_p as f64 / unit, st);
                }
            }
            _ => {
                for (page, st) in states.iter_mut().enumerate().take(n) {
                    let (old_p, new_p) = (self.p.get(page) as f64 / unit, new.p.get(page) as f64 / unit);
                    self.carry_page(new, page, old_p, new_p, st);
                }
            }
        }
        new.looks = self.looks;
    }

    /// [`Self::carry_into`] for one page, of old and new shares `old_p`
    /// and `new_p` (in touches) and state `st`.
    #[inline]
    fn carry_page(&mut self, new: &mut EventTrack, page: usize, old_p: f64, new_p: f64, st: &mut u8) {
        use super::page::{MERGED, REFERENCED, WRITTEN};
        let a = self.a;
        let lambda = old_p * (a - self.last_a[page]);
        if new_p > 0.0 {
            new.last_a[page] = a - lambda / new_p;
        } else {
            new.last_a[page] = a;
            if *st & 1 == 1 && lambda > 0.0 && self.draw(lambda) {
                *st |= REFERENCED;
            }
        }
        if let (Some(&last), Some(carried)) = (self.ksm_a.get(page), new.ksm_a.get_mut(page)) {
            let lambda = self.write * old_p * (a - last);
            let w = new.write * new_p;
            if w > 0.0 {
                *carried = a - lambda / w;
            } else {
                *carried = a;
                if *st & 1 == 1 && *st & MERGED == 0 && lambda > 0.0 && self.draw(lambda) {
                    *st |= WRITTEN;
                }
            }
        }
    }

    /// While skipping: the pressure at the shared clock's time.
    #[inline]
    fn sync(&mut self) {
        if let Some(c) = self.skip {
            self.a = c.a0 + c.per_ns * c.counted(self.shared.now());
        }
    }

    /// The guest skips ahead from wall time `t`, for `wall` ns at most,
    /// slices of `step` ns, without playing touches: it touches `per_ns`
    /// times a nanosecond, and its pressure grows by that (times the
    /// scale), a slice at a time, until [`Self::end_skip`].
    pub fn start_skip(&mut self, t: u64, wall: f64, step: f64, per_ns: f64, touches: (f64, f64)) {
        self.skip = Some(SkipClock {
            wall0: t,
            a0: self.a,
            // The pressure, in the shares' units, grows by the touches
            // times the scale.
            per_ns: per_ns * self.scale,
            wall,
            step: step.max(1.0),
            touches0: touches.0,
            touches_per_ns: touches.1,
        });
        self.woken = false;
    }

    /// The skip ends at wall time `t` (a slice's start in it, or its end).
    /// (The guest's real touches up to `t` are the engine's to count.)
    pub fn end_skip(&mut self, t: u64) {
        if let Some(c) = self.skip.take() {
            self.a = c.a0 + c.per_ns * (t.saturating_sub(c.wall0) as f64).min(c.wall);
        }
        self.woken = false;
    }

    /// A change to the set was dealt with while skipping: the next one
    /// wakes the guest again.
    pub fn rearm_wake(&mut self) {
        self.woken = false;
    }

    /// While skipping: the guest's real touch count by the shared clock's
    /// time (counted a slice at a time, as the pressure is).
    pub fn touches_now(&self) -> Option<f64> {
        self.skip.map(|c| c.touches0 + c.touches_per_ns * c.counted(self.shared.now()))
    }

    /// Page `page`'s accessed bit is known now (a fault set it, or a look
    /// read it).
    #[inline]
    pub fn looked_now(&mut self, page: usize) {
        self.sync();
        if self.region_pa.is_empty() {
            self.last_a[page] = self.a;
        } else {
            self.look(page);
        }
    }

    /// Look at page `page` now: the pressure of the hits on it since its
    /// last look, pᵢ·ΔA, kept out of its block's sum from here.
    #[inline]
    fn look(&mut self, page: usize) -> f64 {
        let lambda = self.p.get(page) as f64 / ONE as f64 * (self.a - self.last_a[page]);
        if let Some(pa) = self.region_pa.get_mut(page / REGION) {
            *pa += lambda;
        }
        self.last_a[page] = self.a;
        lambda
    }

    /// Prefetch what a look at page `page` and a change of its state read
    /// (its last look, its place in the event set), so that a caller
    /// about to handle many pages can have their cache misses overlap.
    #[inline]
    pub fn prefetch(&self, page: usize) {
        use super::page::prefetch;
        prefetch(&self.last_a[page]);
        if let TouchShares::Table(t, _) = &self.p {
            prefetch(&t[page]);
        }
        match &self.set {
            Events::Runs(r) => prefetch(&r.pos[page]),
            Events::Classes(c) => prefetch(&c.pos[page]),
        }
    }

    /// [`Self::prefetch`] for an event's page, about to be mapped: also
    /// the place of the page that will take its place in its list, and
    /// its huge-page bit.
    #[inline]
    pub fn prefetch_event(&self, page: usize) {
        use super::page::prefetch;
        self.prefetch(page);
        if let Events::Runs(r) = &self.set
            && let Some(last) = r.run_of(page).and_then(|run| r.lists[2 * run].last())
        {
            prefetch(&r.pos[*last as usize]);
        }
        prefetch(&self.huge[page / 64]);
    }

    /// Page `page` is now in state `st`. A change while the guest skips
    /// ahead asks the engine to wake it (its next event may come sooner).
    #[inline]
    pub fn note(&mut self, page: usize, st: u8) {
        if self.skip.is_some() && !self.woken {
            self.woken = true;
            let now = self.shared.now();
            self.shared.woken.lock().unwrap_or_else(|e| e.into_inner()).push((self.guest, now));
            self.shared.any.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        match &mut self.set {
            Events::Runs(r) => r.set(page, Self::kind(st)),
            Events::Classes(c) => c.set(page, Self::kind(st)),
        }
        let huge = st & super::page::RES_MASK == super::page::HUGE;
        let (word, bit) = (page / 64, 1u64 << (page % 64));
        if huge != (self.huge[word] & bit != 0) {
            self.huge[word] ^= bit;
            let p = self.p.get(page);
            if huge {
                self.huge_mass += p;
            } else {
                self.huge_mass -= p;
            }
        }
    }

    /// Which pages huge pages map, from their states.
    fn count_huge(&mut self, states: &[u8]) {
        self.huge.fill(0);
        self.huge_mass = 0;
        for (page, &st) in states.iter().enumerate() {
            if st & super::page::RES_MASK == super::page::HUGE {
                self.huge[page / 64] |= 1 << (page % 64);
                self.huge_mass += self.p.get(page);
            }
        }
    }

    /// Of `h` hits just counted, how many fell on huge pages: the expected
    /// share (their touch shares over all that a hit can land on), with
    /// the fractions carried from batch to batch.
    pub fn huge_hits(&mut self, h: u64) -> u64 {
        let hit_mass = self.mass.saturating_sub(self.set.total());
        if self.huge_mass == 0 || hit_mass == 0 || h == 0 {
            return 0;
        }
        self.huge_carry += h as f64 * (self.huge_mass as f64 / hit_mass as f64).min(1.0);
        let k = (self.huge_carry.floor() as u64).min(h);
        self.huge_carry -= k as f64;
        k
    }

    /// The share of hits that land on huge pages (their touch shares over
    /// all that a hit can land on).
    pub fn huge_hits_share(&self) -> f64 {
        let hit_mass = self.mass.saturating_sub(self.set.total());
        if hit_mass == 0 { 0.0 } else { (self.huge_mass as f64 / hit_mass as f64).min(1.0) }
    }

    /// Every page's state was set at once (a warm start placed them):
    /// take the event set from `states`.
    pub fn resync(&mut self, states: &[u8]) {
        match &mut self.set {
            Events::Runs(r) => {
                for (page, &st) in states.iter().enumerate().take(r.pos.len()) {
                    r.set(page, Self::kind(st));
                }
            }
            Events::Classes(c) => {
                for (page, &st) in states.iter().enumerate().take(c.pos.len()) {
                    c.set(page, Self::kind(st));
                }
            }
        }
        self.count_huge(states);
    }

    /// Whether mapped page `page` was written since ksmd last looked at it
    /// (its hits wrote it: writes that faulted set `WRITTEN` themselves);
    /// ksmd looks now.
    pub fn written_since(&mut self, page: usize) -> bool {
        self.sync();
        let Some(last) = self.ksm_a.get_mut(page) else { return false };
        let since = std::mem::replace(last, self.a);
        self.written_after(page, since)
    }

    /// Whether mapped page `page` was written by its hits since the hit
    /// pressure was `since` (a page clean in the swap cache since then).
    pub fn written_after(&mut self, page: usize, since: f64) -> bool {
        self.sync();
        let lambda = self.write * self.p.get(page) as f64 / ONE as f64 * (self.a - since);
        self.draw(lambda)
    }

    /// A look's outcome: true with chance 1 − e^(−λ), from a hash of the
    /// look's number.
    #[inline]
    fn draw(&mut self, lambda: f64) -> bool {
        self.looks += 1;
        if lambda <= 0.0 {
            return false;
        }
        // Past λ = 37, e^(−λ) < 2^−53: 1 − e^(−λ) rounds to 1.0, above
        // every u. Otherwise λ/(1 + λ) ≤ 1 − e^(−λ) ≤ λ (from e^λ ≥ 1 + λ)
        // settles most draws without the exponential.
        if lambda > 37.0 {
            return true;
        }
        let h = super::page::mix64(self.salt ^ self.looks.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        u < lambda / (1.0 + lambda) || (u < lambda && u < -(-lambda).exp_m1())
    }

    /// `h` hits were played with the event set as it is.
    #[inline]
    pub fn hits(&mut self, h: u64) {
        debug_assert!(self.skip.is_none(), "hits are counted by the clock while skipping");
        // In the shares' units: the pressure is (see `scale`).
        let room = (self.mass as f64 - self.set.total() as f64) / ONE as f64;
        if h > 0 && room > 0.0 {
            self.a += h as f64 / room;
        }
    }

    /// Whether page `page` was touched since its accessed bit was last
    /// looked at; the bit is looked at now.
    pub fn touched_since(&mut self, page: usize) -> bool {
        self.sync();
        let lambda = self.look(page);
        self.draw(lambda)
    }

    /// Whether merged page `page` was read since its accessed bit was last
    /// looked at. Its writes are events (copy-on-write breaks: a page
    /// still merged had none since), so the hits that set its bit are
    /// the reads, the stream thinned to 1 − `write`.
    pub fn read_since(&mut self, page: usize) -> bool {
        self.sync();
        let lambda = self.look(page);
        self.draw(lambda * (1.0 - self.write))
    }

    /// Whether any page of `pages` (a huge page's) was touched since their
    /// accessed bit was last looked at: the hits on them are one thinned
    /// stream, of pressure Σ pᵢ·ΔAᵢ. All of them are looked at now.
    pub fn region_touched_since(&mut self, pages: std::ops::Range<usize>) -> bool {
        let lambda = self.look_region(pages);
        self.draw(lambda)
    }

    /// Whether any page of `pages` has its accessed bit set, read without
    /// clearing it (khugepaged's `pte_young` test): drawn from the hits'
    /// pressure on them since their bits were last looked at, which stays
    /// as it is for the next look.
    pub fn region_young(&mut self, pages: std::ops::Range<usize>) -> bool {
        self.sync();
        let lambda: f64 = pages.map(|page| self.p.get(page) as f64 / ONE as f64 * (self.a - self.last_a[page])).sum();
        self.draw(lambda.max(0.0))
    }

    /// Look at the accessed bits of `pages` (a huge page's) now: the
    /// pressure Σ pᵢ·ΔAᵢ of the hits on them since their last look.
    pub fn look_region(&mut self, pages: std::ops::Range<usize>) -> f64 {
        self.sync();
        self.ensure_regions();
        let n = self.last_a.len();
        let r = pages.start / REGION;
        if pages.start.is_multiple_of(REGION) && pages.end == ((r + 1) * REGION).min(n) {
            // Σ pᵢ·(a − last_aᵢ) over the block, from its two sums.
            let lambda = (self.a * self.region_p[r] - self.region_pa[r]).max(0.0);
            self.last_a[pages].fill(self.a);
            self.region_pa[r] = self.a * self.region_p[r];
            lambda
        } else {
            pages.map(|page| self.look(page)).sum()
        }
    }

    /// Every page's accessed bit was cleared (or set), and what ksmd knows
    /// of every page renewed, now.
    pub fn looked_at_all(&mut self) {
        self.sync();
        self.last_a.fill(self.a);
        for (pa, p) in self.region_pa.iter_mut().zip(&self.region_p) {
            *pa = self.a * p;
        }
        self.ksm_a.fill(self.a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn a_huge_page_is_touched_when_any_of_its_pages_is() {
        // 4,096 pages touched uniformly, none of them events; a huge page
        // is 512 of them. After 4 hits the chance that one fell on it is
        // 1 − (1 − 1/8)^4 = 0.4138; the Poisson form the mode uses gives
        // 1 − e^(−512/4096·4) = 0.3935, the two agreeing to O(p²) as the
        // derivation says (a huge page is a large share here on purpose:
        // at a 64 GiB guest's 1/32,768 they agree to 10⁻⁵). 20,000 looks:
        // within 4 standard deviations of 0.3935.
        let n = 4096;
        let states = vec![1u8; n];
        let mut t = EventTrack::new(TouchShares::Runs(vec![(n, ONE / n as u64)]), &states, 0.0, false, 3);
        let looks = 20_000;
        let mut touched = 0;
        for _ in 0..looks {
            t.hits(4);
            touched += u32::from(t.region_touched_since(0..512));
        }
        let p = 1.0 - (-0.5f64).exp();
        let sd = (looks as f64 * p * (1.0 - p)).sqrt();
        assert!((f64::from(touched) - looks as f64 * p).abs() < 4.0 * sd, "{touched} of {looks}");
        // Its hits, for the TLB: with the huge page mapped as such, an
        // eighth of hits land on it.
        let mut huge_states = states.clone();
        huge_states[..512].fill(crate::model::page::HUGE);
        let mut h = EventTrack::new(TouchShares::Runs(vec![(n, ONE / n as u64)]), &huge_states, 0.0, false, 3);
        let on_huge: u64 = (0..1000).map(|_| h.huge_hits(8)).sum();
        assert_eq!(on_huge, 1000, "8,000 hits, an eighth of them");
    }

    #[test]
    fn a_change_of_shares_carries_the_hits_so_far() {
        // 4,096 pages, all mapped, touched uniformly (share 1/4,096 each),
        // half of the touches writing; 2,048 hits, then the shares change:
        // the first half of the pages to 2/4,096, the second half to none;
        // then 1,024 hits more. A page's hits are Poisson counts, so the
        // first half were touched with chance 1 − e^−(2048/4096 +
        // 2·1024/4096) = 1 − e^−1, written 1 − e^−0.5; the second half's
        // bits, drawn at the change, 1 − e^−0.5 and 1 − e^−0.25. Each count
        // of 2,048 pages within 4 standard deviations.
        use crate::model::page::{REFERENCED, WRITTEN};
        let n = 4096;
        let mut states = vec![1u8; n];
        let mut old = EventTrack::new(TouchShares::Runs(vec![(n, ONE / n as u64)]), &states, 0.5, true, 11);
        old.hits(2048);
        let mut new = EventTrack::new(TouchShares::Runs(vec![(n / 2, 2 * ONE / n as u64)]), &states, 0.5, true, 11);
        old.carry_into(&mut new, &mut states);
        new.hits(1024);
        let within = |count: usize, p: f64, what: &str| {
            let m = 2048.0 * p;
            let sd = (2048.0 * p * (1.0 - p)).sqrt();
            assert!((count as f64 - m).abs() < 4.0 * sd, "{what}: {count} of 2048, expected {m:.0}");
        };
        let first = 0..n / 2;
        within(first.clone().filter(|&i| new.touched_since(i)).count(), 1.0 - (-1.0f64).exp(), "touched, first half");
        within(first.filter(|&i| new.written_since(i)).count(), 1.0 - (-0.5f64).exp(), "written, first half");
        let second = &states[n / 2..];
        within(second.iter().filter(|&&s| s & REFERENCED != 0).count(), 1.0 - (-0.5f64).exp(), "touched, second half");
        within(second.iter().filter(|&&s| s & WRITTEN != 0).count(), 1.0 - (-0.25f64).exp(), "written, second half");
        // Nothing is owed twice: the second half has no share now.
        assert!((n / 2..n).all(|i| !new.touched_since(i)), "a page with no share is never touched");
    }

    #[test]
    fn a_working_set_cut_keeps_the_hits_so_far_and_only_the_pages_left_count() {
        // The closed forms of `a_change_of_shares_carries_the_hits_so_far`,
        // reached by rescaling instead of a new track: 4,096 pages touched
        // uniformly, half the touches writing, 100 of the second half not
        // mapped; 2,048 hits (on the 3,996 mapped pages: a pressure of
        // x = 2,048/3,996 on each); the working set cut to its first half
        // (each page's share doubles: the scale, not the pages, changes);
        // 1,024 hits more (0.5 on each). First half touched with chance
        // 1 − e^−(x + 0.5), written 1 − e^−(x + 0.5)/2; the mapped pages of
        // the second half, their bits drawn at the cut, 1 − e^−x and
        // 1 − e^−x/2.
        use crate::model::page::{REFERENCED, WRITTEN};
        let n = 4096;
        let mut states = vec![1u8; n];
        let unmapped = 100;
        states[n - 1 - unmapped..n - 1].fill(0);
        let b = ONE / n as u64;
        let mut t = EventTrack::new(TouchShares::Runs(vec![(n, b)]), &states, 0.5, true, 11);
        // The 100 pages not mapped are events: 100/4,096 of the touches.
        assert!((t.probability() - 100.0 / 4096.0).abs() < 1e-9);
        t.hits(2048);
        assert!(t.rescales_to(&TouchShares::Runs(vec![(n / 2, b)]), 0.5));
        assert!(!t.rescales_to(&TouchShares::Runs(vec![(n / 2, b)]), 0.25), "writes changed: a new track");
        assert!(t.rescale(n / 2, 2.0, &mut states));
        // The pages not mapped left with the second half: no events, and
        // the first half takes every touch.
        assert_eq!(t.probability(), 0.0);
        assert!((t.mass() - 1.0).abs() < 1e-9);
        t.hits(1024);
        let within = |count: usize, p: f64, what: &str| {
            let m = 2048.0 * p;
            let sd = (2048.0 * p * (1.0 - p)).sqrt();
            assert!((count as f64 - m).abs() < 4.0 * sd, "{what}: {count} of 2048, expected {m:.0}");
        };
        let x = 2048.0 / (4096.0 - unmapped as f64);
        let first = 0..n / 2;
        within(first.clone().filter(|&i| t.touched_since(i)).count(), 1.0 - (-(x + 0.5)).exp(), "touched, first");
        within(first.filter(|&i| t.written_since(i)).count(), 1.0 - (-(x + 0.5) / 2.0).exp(), "written, first");
        let second = &states[n / 2..];
        let mapped = second.iter().filter(|&&s| s & 1 == 1).count();
        let within_mapped = |count: usize, p: f64, what: &str| {
            let m = mapped as f64 * p;
            let sd = (mapped as f64 * p * (1.0 - p)).sqrt();
            assert!((count as f64 - m).abs() < 4.0 * sd, "{what}: {count} of {mapped}, expected {m:.0}");
        };
        within_mapped(second.iter().filter(|&&s| s & REFERENCED != 0).count(), 1.0 - (-x).exp(), "touched, second");
        within_mapped(second.iter().filter(|&&s| s & WRITTEN != 0).count(), 1.0 - (-x / 2.0).exp(), "written, second");
        assert!((n / 2..n).all(|i| !t.touched_since(i)), "a page past the working set is never touched");
        // Grown back to all 4,096 at the first scale: the pages not mapped
        // are events again (1/4,096 each), and the pages that came back
        // have had no hits.
        assert!(t.rescale(n, 1.0, &mut states));
        assert!((t.probability() - 100.0 / 4096.0).abs() < 1e-9);
        assert!((n / 2..n).all(|i| !t.touched_since(i)), "no hits yet on the pages that came back");
    }

    #[test]
    fn a_zipf_table_cut_moves_only_the_pages_past_the_limit() {
        // Weights 1/(k + 1) over 1,000 pages, none mapped: every touch is
        // an event. Cut to 100 pages, the event share is still 1 and the
        // set holds exactly the first 100 pages' weights (in the table's
        // units); a draw never gives a page past them.
        let n = 1000;
        let w: Vec<u64> = (0..n).map(|k| units(1.0 / (k + 1) as f64)).collect();
        let table = std::sync::Arc::new(w.clone());
        let states = vec![0u8; n];
        let h = |m: usize| (1..=m).map(|k| 1.0 / k as f64).sum::<f64>();
        let mut t = EventTrack::new(TouchShares::Table(table.clone(), n), &states, 0.0, false, 1);
        t.set_scale(1.0 / h(n));
        assert!((t.probability() - 1.0).abs() < 1e-6);
        let mut st = states.clone();
        assert!(t.rescale(100, 1.0 / h(100), &mut st));
        assert!((t.probability() - 1.0).abs() < 1e-6, "{}", t.probability());
        assert_eq!(t.set.total(), w[..100].iter().sum::<u64>());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..10_000 {
            let u = rng.random_range(0..t.set.total());
            assert!(t.set.find(u, &mut rng) < 100);
        }
    }

    #[test]
    fn a_huge_pages_pressure_from_its_block_sums_is_the_sum_over_its_pages() {
        // The definition, Σ pᵢ·(a − last_aᵢ) over a huge page's pages, with
        // pages looked at one by one at different times (faults and 4 KiB
        // looks) and shares that differ page to page: the block's two sums
        // give it to rounding, the short last block too, and a look at the
        // huge page leaves nothing owed.
        let n = 1500;
        let shares: Vec<u64> = (0..n).map(|i| ONE / 64 / (i as u64 + 1)).collect();
        let mut e = EventTrack::new(TouchShares::Table(std::sync::Arc::new(shares), n), &vec![1u8; n], 0.0, false, 5);
        e.hits(5);
        e.looked_now(3);
        // Built now (as at a first huge-page look), from the looks so far;
        // kept by every look after.
        e.ensure_regions();
        for k in 0..600 {
            e.hits(37);
            let page = (k * 7919) % n;
            if k % 3 == 0 {
                e.looked_now(page);
            } else {
                let _ = e.touched_since(page);
            }
        }
        e.hits(11);
        for (r, range) in [(0, 0..512), (1, 512..1024), (2, 1024..n)] {
            let direct: f64 = range.clone().map(|p| e.p.get(p) as f64 / ONE as f64 * (e.a - e.last_a[p])).sum();
            let from_sums = e.a * e.region_p[r] - e.region_pa[r];
            assert!(
                direct > 0.0 && (from_sums - direct).abs() <= 1e-9 * direct,
                "block {r}: {from_sums} against {direct}"
            );
            let _ = e.region_touched_since(range.clone());
            assert!(range.clone().all(|p| e.last_a[p] == e.a));
            assert!(e.a * e.region_p[r] - e.region_pa[r] == 0.0);
        }
    }
}
