//! Faults and the OOM killer: mapping a touched page (4 KiB, THP,
//! hugetlb, swap-in, copy-on-write break, guest swap), making room by
//! direct reclaim, killing a guest, and a full swap device.

use super::Engine;
use super::observe::{Event, EventKind};
use super::queue::SimTime;
use super::state::{Ev, FaultKind};
use crate::model::frames::ThpAux;
use crate::model::page::{
    BALLOONED, CLASS_MASK, HUGE, MERGED, REFERENCED, RES_MASK, RESIDENT, SWAPPED, UNTOUCHED, WRITTEN,
};
use crate::model::swap::SwapPage;
use crate::model::{Backing, Status, Unit};
use crate::policy::{hugepages, oom};

// For the documentation's links.
#[cfg(doc)]
use super::sampling::sampled_pages;

/// A guest's swap read when the host has no swap device to take the
/// figure from: a SATA SSD, about 100 us (the `ssd` preset's read).
const GUEST_SWAP_READ_NS: u64 = 100_000;

impl Engine<'_> {
    /// How many real faults one simulated fault of this kind stands for: 1/R
    /// for a 4 KiB page; one for a huge region, since sampling keeps 512·R ≥ 1
    /// pages of every 2 MiB block (see [`sampled_pages`]), so every region
    /// of 2 MiB or 1 GiB is simulated.
    pub(super) fn kind_scale(&self, kind: FaultKind) -> f64 {
        match kind {
            FaultKind::Minor | FaultKind::Major | FaultKind::Cow | FaultKind::GuestSwap => self.scale,
            FaultKind::Thp | FaultKind::Hugetlb => 1.0,
        }
    }

    /// Guest `g` touches page `p` at `t` and it is not mapped: allocate or
    /// swap it in. Returns the fault's cost in ns (one real fault), or
    /// `None` when the OOM killer killed `g` itself.
    pub(super) fn fault(&mut self, g: usize, p: u64, t: SimTime, write: bool) -> Option<(f64, FaultKind, f64)> {
        let costs = self.cfg.costs;
        self.mem.frames.prefetch_place(g as u32, p);
        let st = self.mem.guests[g].pages[p as usize];
        let ballooned = st & CLASS_MASK == BALLOONED;
        let mark = REFERENCED | if write { WRITTEN } else { 0 };
        // A write leaves content the guest's own (see the touch loop).
        let st = if write { st & !CLASS_MASK } else { st };
        // A swap-in that left the page in the swap cache: whether clean.
        let mut kept: Option<bool> = None;
        let result = match (st & RES_MASK, self.mem.guests[g].backing_at(p)) {
            _ if ballooned => {
                // The balloon took this page's frame: the guest keeps the page
                // in its own swap (a virtual disk on the host's storage) and
                // swaps it in, pushing out another; the host sees nothing.
                self.runners[g].guest_swap_faults += 1;
                let read =
                    crate::policy::resolve::swap_read_latency(self.scenario.host.swap.as_ref(), GUEST_SWAP_READ_NS);
                return Some((read as f64, FaultKind::GuestSwap, 0.0));
            }
            (RESIDENT, _) if st & MERGED != 0 && self.mem.guests[g].is_zero_mapped(p) => {
                // A write to a page a THP split mapped to the zero page:
                // a zeroed page of its own (do_wp_page on the zero pfn),
                // with no KSM page involved.
                let stall = self.make_room(g, t)?;
                let guest = &mut self.mem.guests[g];
                guest.unmap_zero(p);
                guest.pages[p as usize] = (st & !(MERGED | CLASS_MASK)) | mark;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                (costs.copy_4k_ns, FaultKind::Cow, stall)
            }
            (RESIDENT, _) if st & MERGED != 0 => {
                // Copy-on-write break: a new page for this guest, a copy of
                // the KSM page (do_wp_page), which loses one sharer.
                let stall = self.make_room(g, t)?;
                if let Some(k) = self.ksm.as_mut() {
                    k.unmerge(&mut self.mem, g, p);
                    k.counters.cow_breaks += 1;
                }
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !(MERGED | CLASS_MASK)) | mark;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                self.runners[g].cow_breaks += 1;
                (costs.copy_4k_ns, FaultKind::Cow, stall)
            }
            (UNTOUCHED, Backing::Hugetlb { .. })
                if self.mem.guests[g].region_touched[self.mem.guests[g].region_of(p)] > 0 =>
            {
                // The huge page is mapped already (this piece came back
                // from the balloon): no fault on the host, the guest maps
                // its own page again.
                let guest = &mut self.mem.guests[g];
                let r = guest.region_of(p);
                guest.pages[p as usize] = (st & !RES_MASK) | HUGE | mark;
                guest.huge += 1;
                guest.pool_mapped += 1;
                guest.region_touched[r] += 1;
                (0.0, FaultKind::Hugetlb, 0.0)
            }
            (UNTOUCHED, Backing::Hugetlb { page_bytes }) => {
                let r = self.mem.guests[g].region_of(p);
                self.fault_hugetlb_region(g, r);
                self.mem.guests[g].pages[p as usize] |= mark;
                self.runners[g].hugetlb_faults += 1;
                let cost = if page_bytes >= 1 << 30 { costs.fault_hugetlb_1g_ns } else { costs.fault_hugetlb_2m_ns };
                (cost, FaultKind::Hugetlb, 0.0)
            }
            (UNTOUCHED, Backing::Small { thp }) => {
                // A THP needs its whole 2 MiB region untouched and inside
                // guest RAM, and free memory for it above the min watermark
                // (otherwise the kernel falls back to a 4 KiB page).
                let region = if thp { Some(self.mem.guests[g].region_of(p)) } else { None };
                let (made, charge_stall) = match region {
                    Some(region) => self.try_thp(g, region, Some(t)),
                    None => (false, 0.0),
                };
                if made {
                    self.mem.guests[g].pages[p as usize] |= mark;
                    (costs.fault_thp_ns, FaultKind::Thp, charge_stall)
                } else {
                    let stall = charge_stall + self.make_room(g, t + charge_stall as u64)?;
                    let guest = &mut self.mem.guests[g];
                    guest.pages[p as usize] = (st & !RES_MASK) | RESIDENT | mark;
                    if let Some(region) = region {
                        guest.region_touched[region] += 1;
                    }
                    guest.resident += 1;
                    self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                    self.runners[g].minor += 1;
                    (costs.fault_4k_ns, FaultKind::Minor, stall)
                }
            }
            (SWAPPED, _) if st & MERGED != 0 => {
                // A swapped-out KSM page's entry: the first sharer reads
                // it, later ones copy the page it read while that is in
                // RAM (see model::ksmpage).
                let stall = self.make_room(g, t)?;
                let id = self.mem.ksm.swapped_entry(g, p).expect("a KSM entry keeps MERGED");
                let at = t + stall as u64;
                let guests = &self.mem.guests;
                let io = self
                    .mem
                    .ksm
                    .swap_in(id, g as u32, p, |g0, p0| guests[g0 as usize].pages[p0 as usize] & RES_MASK == RESIDENT);
                let got = self.mem.ksm_io(at, io);
                if self.mem.swap.keeps_pages_in_ram() {
                    self.mem.sync_zram();
                }
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !(RES_MASK | MERGED)) | RESIDENT | mark;
                guest.swapped -= 1;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                match got {
                    Some(got) => {
                        self.runners[g].major += 1;
                        (got.wait as f64 + costs.swapin_overhead_ns, FaultKind::Major, stall)
                    }
                    None => {
                        self.runners[g].minor += 1;
                        (costs.copy_4k_ns, FaultKind::Minor, stall)
                    }
                }
            }
            (SWAPPED, _) => {
                let stall = self.make_room(g, t)?;
                // do_swap_page leaves the page in the swap cache, holding
                // its slot, unless the fault writes or swap is more than
                // half full (should_try_to_free_swap; see model::swapcache).
                let keep = self.mem.swap.keeps_slots() && !write && !self.swap_full(g);
                let got = self.mem.swap.read(t + stall as u64, SwapPage::of(g as u32, p, st), keep);
                kept = got.kept.then_some(!got.dirty);
                let wait = got.wait;
                if self.mem.swap.keeps_pages_in_ram() {
                    self.mem.sync_zram();
                }
                let guest = &mut self.mem.guests[g];
                guest.pages[p as usize] = (st & !RES_MASK) | RESIDENT | mark;
                guest.swapped -= 1;
                guest.resident += 1;
                self.mem.frames.insert(Unit { guest: g as u32, page: p, thp: false }, 1);
                self.runners[g].major += 1;
                (wait as f64 + costs.swapin_overhead_ns, FaultKind::Major, stall)
            }
            _ => unreachable!("a fault is only taken on an unmapped page"),
        };
        // Peak of what the guest maps: its frames and its merged pages.
        let held = self.mem.guest_frames(g) + self.mem.guests[g].merged;
        let guest = &mut self.mem.guests[g];
        if held > guest.peak_frames {
            guest.peak_frames = held;
        }
        // Event mode: mapped now, by a touch (its accessed bit is the
        // fault's mark), so the hits' pressure on it counts from here.
        if let Some(e) = guest.events.as_deref_mut() {
            e.note(p as usize, guest.pages[p as usize]);
            e.looked_now(p as usize);
            // Writes by hits count for ksmd from here too (a write that
            // faulted marked the page itself).
            if let Some(k) = e.ksm_a.get_mut(p as usize) {
                *k = e.a;
            }
        }
        if let Some(clean) = kept {
            let pressure = guest.events.as_deref().map(|e| e.a);
            guest.swap_cache.keep(p, clean, pressure);
        }
        self.after_allocation(t);
        self.settle_swap_charges(t);
        Some(result)
    }

    /// Make region `region` of guest `g` a transparent huge page at `t`, if
    /// the kernel would: the whole 2 MiB region untouched and inside guest
    /// RAM, and the huge page leaves free memory at or above the min
    /// watermark; otherwise the fault falls back to a 4 KiB page
    /// (`thp_fault_fallback`).
    ///
    /// The min watermark, not the low one: a THP fault that fails the fast
    /// path's low-watermark check goes on to the slow path, whose first
    /// try is at ALLOC_WMARK_MIN (`__alloc_pages_slowpath` in
    /// mm/page_alloc.c). The THP allocation does not wake kswapd
    /// (GFP_TRANSHUGE has no __GFP_KSWAPD_RECLAIM), but below the low
    /// watermark the next 4 KiB allocation does, here the fallback page
    /// itself (`after_allocation`). Checking against low instead leaves a
    /// band between low and low + one THP where every THP fault falls back
    /// while kswapd sleeps, and how long a guest stays in that band is set
    /// by the size of single allocations, which sampling changes: it read
    /// sampled runs' fault ratios up to 21% low. The model does not
    /// fragment memory, so it does not model compaction or the direct
    /// reclaim a madvised THP fault may do for the host's memory
    /// (defrag=madvise).
    ///
    /// The guest's memory cgroup is another matter: the huge page is
    /// charged to it after it is allocated (`mem_cgroup_charge` in
    /// `__do_huge_pmd_anonymous_page`), with the fault's GFP mask. For
    /// madvised memory (QEMU madvises guest RAM) under the kernel's default
    /// defrag=madvise that mask is GFP_TRANSHUGE, which may block
    /// (`vma_thp_gfp_mask`), so a cgroup at memory.max reclaims its own
    /// pages to take the whole charge, up to MAX_RECLAIM_RETRIES (16)
    /// rounds (`try_charge_memcg`), and falls back to a 4 KiB page only
    /// when that cannot make room (`thp_fault_fallback_charge`). The real
    /// kernel does it (a system test measures it): a process filling 1 GiB
    /// on THP under a 512 MiB limit keeps its last half resident in huge
    /// pages. With `at` (a fault at that time) the cgroup reclaims so;
    /// without (a warm start placing what was seen) it does not.
    ///
    /// Returns whether the region became a THP, and the stall of that
    /// reclaim (spent also when the fault falls back after it).
    pub(super) fn try_thp(&mut self, g: usize, region: usize, at: Option<SimTime>) -> (bool, f64) {
        let guest = &self.mem.guests[g];
        let range = guest.region_range(region);
        let size = range.end - range.start;
        let inside = guest.region_real_pages(region) == 512;
        if !(inside && size > 0 && guest.region_touched[region] == 0) {
            return (false, 0.0);
        }
        if self.mem.frames.free() < size + self.mem.watermarks.min {
            self.vm.thp_fault_fallback += 1;
            return (false, 0.0);
        }
        // The memory cgroup must take a whole THP's charge: at memory.max
        // it reclaims its own pages for it first (see above). Over
        // memory.high the kernel charges the THP and then reclaims and
        // throttles; the model takes the 4 KiB path there, where the
        // cgroup's reclaim and throttling are played.
        let mut stall = 0.0;
        if let (Some(cg), Some(t)) = (&self.runners[g].memcg, at)
            && self.memcg_usage(g) + size > cg.max
        {
            stall = self.memcg_reclaim_for(g, size, 1, t);
            // The caller counts the stall as direct reclaim's; it is the
            // cgroup's (as in `memcg_charge`).
            let (scale, r) = (self.scale, &mut self.runners[g]);
            r.stall_by.memcg_s += stall * scale / 1e9;
            r.stall_by.direct_reclaim_s -= stall * scale / 1e9;
        }
        if let Some(cg) = &self.runners[g].memcg
            && self.memcg_usage(g) + size > cg.max.min(cg.high)
        {
            self.vm.thp_fault_fallback += 1;
            return (false, stall);
        }
        let guest = &mut self.mem.guests[g];
        for q in range.clone() {
            guest.pages[q as usize] = (guest.pages[q as usize] & !RES_MASK) | HUGE;
            // Event mode: all of the huge page is mapped now.
            if let Some(e) = guest.events.as_deref_mut() {
                e.note(q as usize, guest.pages[q as usize]);
                e.looked_now(q as usize);
            }
        }
        guest.region_touched[region] = size as u32;
        guest.huge += size;
        guest.thps += 1;
        // Prealloc's touches (the guest still starting) leave no accessed
        // bit behind, as its 4 KiB pages' bits are cleared after it.
        let aux = ThpAux {
            last_visit: self.runners[g].touches_real,
            fresh: guest.status != Status::Starting,
            region: region as u32,
            pages: size as u16,
        };
        let slot = self.mem.frames.insert(Unit { guest: g as u32, page: range.start, thp: true }, size);
        if let Some(a) = self.mem.frames.thp_aux_mut(slot as usize) {
            *a = aux;
        }
        self.runners[g].thp_faults += 1;
        (true, stall)
    }

    /// Bookkeeping after memory was allocated at `t`: peak use, and the
    /// kswapd wake-up when free memory fell below the low watermark (kswapd
    /// is woken by the allocation and runs right after it).
    pub(super) fn after_allocation(&mut self, t: SimTime) {
        self.mem.note_usage();
        if self.mem.frames.free() < self.mem.watermarks.low && !self.kswapd_pending {
            self.kswapd_pending = true;
            let _ = self.queue.schedule(t.max(self.queue.now()), Ev::Kswapd);
        }
    }

    /// Mark every page of hugetlb region `r` of guest `g` as mapped, but
    /// those the balloon holds.
    pub(super) fn fault_hugetlb_region(&mut self, g: usize, r: usize) {
        let guest = &mut self.mem.guests[g];
        let range = guest.region_range(r);
        let mut mapped = 0;
        for q in range.clone() {
            let st = guest.pages[q as usize];
            if st & RES_MASK == UNTOUCHED && st & CLASS_MASK != BALLOONED {
                guest.pages[q as usize] = (st & !RES_MASK) | HUGE;
                mapped += 1;
                // Event mode: the whole huge page is mapped, not only the
                // page touched: touches of the others are hits from now on.
                if let Some(e) = guest.events.as_deref_mut() {
                    e.note(q as usize, guest.pages[q as usize]);
                    e.looked_now(q as usize);
                }
            }
        }
        guest.huge += mapped;
        guest.pool_mapped += mapped;
        guest.region_touched[r] += mapped as u32;
    }

    /// Make one frame free for guest `g`: direct reclaim, then the OOM
    /// killer. Returns the stall direct reclaim cost, or `None` if `g`
    /// itself was killed.
    pub(super) fn make_room(&mut self, g: usize, t: SimTime) -> Option<f64> {
        let mut stall = 0.0;
        if self.runners[g].memcg.is_some() {
            stall += self.memcg_charge(g, t)?;
        }
        while self.mem.frames.free() == 0 {
            // Direct reclaim frees a batch (SWAP_CLUSTER_MAX = 32 pages in
            // mm/vmscan.c) on the faulting task's time: scanning a page
            // costs about 0.2 us of CPU (an estimate: a few cache misses
            // and LRU bookkeeping per page), taking one out
            // Costs::reclaim_page_ns and its store. When too many page-outs
            // are queued, the task waits for the device (reclaim_throttle).
            let out = self.clock.reclaim(&mut self.mem, crate::model::swap::SWAP_CLUSTER_MAX, t + stall as u64, true);
            self.vm.allocstall += 1;
            self.vm.pgscan_direct += out.scanned_pages;
            self.vm.pgrefill += out.refill_pages;
            self.vm.pgsteal_direct += out.evicted;
            // Counted apart from kswapd's: a simulated direct reclaim
            // stands for 1/R real ones, a kswapd run for one.
            self.vm.direct_throttled += u64::from(out.throttled_ns > 0.0);
            stall += out.stall_ns(false);
            if self.mem.frames.free() > 0 {
                break;
            }
            if out.throttled_ns > 0.0 {
                stall += out.throttled_ns;
                continue;
            }
            let victim = oom::select_victim(&self.mem)?;
            self.kill(victim, t);
            if victim == g {
                return None;
            }
        }
        Some(stall)
    }

    pub(super) fn kill(&mut self, g: usize, t: SimTime) {
        let held = self.mem.guest_frames(g);
        let guest = &self.mem.guests[g];
        let detail = format!(
            "out of memory: killed the largest guest ({:.1} resident, {:.1} swapped)",
            crate::units::ByteSize((held as f64 * 4096.0 * self.scale) as u64),
            crate::units::ByteSize((guest.swapped as f64 * 4096.0 * self.scale) as u64)
        );
        self.kill_as(g, t, EventKind::OomKill, detail);
    }

    pub(super) fn kill_as(&mut self, g: usize, t: SimTime, kind: EventKind, detail: String) {
        // Event mode: a skip it was in counts up to now.
        self.settle_skip(g, t);
        let held = self.mem.guest_frames(g);
        // Its swapped pages and the slots its resident pages kept.
        let mut guest_swapped = self.mem.guests[g].swapped + self.mem.guests[g].swap_cache.clear();
        if let Some(k) = self.ksm.as_mut() {
            // Its merged mappings go: KSM pages left with no sharer are
            // freed; its entries of swapped-out KSM pages go, the slot
            // with the last.
            for p in 0..self.mem.guests[g].sim_pages() {
                let st = self.mem.guests[g].pages[p as usize];
                if st & (RES_MASK | MERGED) == SWAPPED | MERGED {
                    k.drop_swapped_entry(&mut self.mem, g, p, true);
                    guest_swapped -= 1;
                } else if st & MERGED != 0 && !self.mem.guests[g].is_zero_mapped(p) {
                    k.unmerge(&mut self.mem, g, p);
                }
            }
            k.forget_guest(g);
            self.mem.ksm.forget_guest(g);
        }
        self.mem.frames.remove_guest(g as u32, held);
        self.mem.swap.discard_guest(g as u32, guest_swapped);
        self.mem.sync_zram();
        hugepages::release(&mut self.mem, g);
        let guest = &mut self.mem.guests[g];
        guest.status = Status::OomKilled;
        guest.generation += 1;
        guest.resident = 0;
        guest.swapped = 0;
        guest.huge = 0;
        guest.pool_mapped = 0;
        guest.thps = 0;
        for s in guest.pages.iter_mut() {
            *s &= !(RES_MASK | REFERENCED | MERGED);
        }
        guest.zero_mapped.clear();
        guest.events = None;
        self.runners[g].ended_at = Some(t);
        if kind == EventKind::OomKill {
            self.oom_kills += 1;
        }
        self.push_event(t, kind, g, detail);
    }

    /// Pages swap allocated on guests' behalf (zswap's write-backs, each
    /// read into a page charged to its guest's memory cgroup): a cgroup at
    /// memory.max reclaims room for them, as the charge does (a batch,
    /// `memcg_reclaim_for`), and the page stays charged, clean in the swap
    /// cache, until the cgroup's next reclaim frees it
    /// ([`Memcg::written_back`]). The reclaim is the worker's time, not
    /// the guest's.
    ///
    /// The worker waits for each of its pages to be charged, so the
    /// cgroup's reclaim for it runs while the pool is still full, as it
    /// runs in the worker's context in the kernel: this settles a page,
    /// lets the worker go on, and so on while it has work due.
    pub(super) fn settle_swap_charges(&mut self, t: SimTime) {
        loop {
            let charges = self.mem.swap.take_charges();
            if charges.is_empty() {
                break;
            }
            let mut stall = 0.0;
            for (guest, n) in charges {
                let g = guest as usize;
                // A KSM page's entry is no guest's (KSM_OWNER).
                if self.mem.guests.get(g).is_some_and(|x| x.is_alive()) && self.runners[g].memcg.is_some() {
                    stall += self.memcg_reclaim_for(g, n, crate::model::swap::SWAP_CLUSTER_MAX, t);
                    if let Some(cg) = self.runners[g].memcg.as_mut() {
                        cg.written_back += n;
                    }
                }
            }
            self.mem.swap.tick(t, stall);
        }
    }

    /// `vm_swap_full()`: swap more than half used (free × 2 < total); or,
    /// as `mem_cgroup_swap_full` adds, guest `g`'s memory cgroup at half its
    /// `memory.swap.max` or more (its swapped pages and the slots its
    /// resident pages keep).
    pub(super) fn swap_full(&self, g: usize) -> bool {
        let (total, used) = (self.mem.swap.capacity(), self.mem.swap.used());
        let guest = &self.mem.guests[g];
        (total - used.min(total)) * 2 < total
            || (guest.swap_max != u64::MAX && (guest.swapped + guest.swap_cache.slots) * 2 >= guest.swap_max)
    }

    pub(super) fn check_swap_full(&mut self, now: SimTime) {
        if !self.swap_full_reported && self.mem.swap.capacity() > 0 && self.mem.swap.is_full() {
            self.swap_full_reported = true;
            self.pending.push(Event {
                t_ns: now,
                kind: EventKind::SwapFull,
                guest: String::new(),
                detail: "every swap slot is used: reclaim can no longer free guest memory".into(),
            });
        }
    }
}
