//! zswap: the kernel's compressed cache in front of a swap device
//! (Documentation/admin-guide/mm/zswap.rst; mm/zswap.c and mm/page_io.c as
//! of Linux 6.18). A page reclaim swaps out is, in the kernel's order:
//!
//! - all zeros: the swap core keeps one bit for it (`swpout_zero`; since
//!   6.12 zero pages never reach zswap): a slot, no RAM, no I/O;
//! - else stored in zswap's pool, compressed, unless the pool is full: the
//!   pool may hold `max_pool_percent` of RAM, and once it reached that it
//!   refuses every store until it is back under `accept_threshold_percent`
//!   of the limit (zswap_check_limits). A page that does not compress below
//!   4 KiB is stored as it is (`stored_incompressible_pages`, 6.18);
//! - else (refused) written to the device, and zswap's worker queued: it
//!   writes the oldest entries back to the device until the pool is under
//!   the threshold (shrink_worker), giving each entry a second chance
//!   first: new entries are marked referenced, the first visit clears the
//!   mark and moves the entry to the back (`zswpwb`, and `pswpout` for the
//!   write). Each such visit is a failure, and after MAX_RECLAIM_RETRIES =
//!   16 the worker stops until the next refused store. It works beside the
//!   guests, each write-back a decompression and then a write of its own
//!   (the entries lie in random slots, so nothing merges) that waits for
//!   the device's writeback throttling ([`crate::model::wbt`]: a few
//!   writes in flight, and once over that until all are done), so stores
//!   go on being refused while it works; and it reads each entry into a
//!   new page charged to the entry's memory cgroup (zswap_writeback_entry),
//!   so a cgroup at its limit reclaims for it before the worker goes on,
//!   while the pool is still full.
//!
//! A fault on a page in the pool decompresses it on the faulting CPU and
//! frees the entry (loads are exclusive, `zswpin`); a page on the device is
//! read from it (`pswpin`). Every stored page keeps its swap slot, so the
//! swap's size bounds the pool too. The pool's size is what zsmalloc uses:
//! each page's compressed size rounded up to its 16-byte size class
//! (ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> 8); the half-empty zspages that
//! loads leave behind (fragmentation) are not modelled.
//!
//! A page faulted back in may stay in the swap cache (`model::swapcache`
//! has the rules): one read from the device keeps its slot and its copy
//! there, so while it stays clean reclaim frees it again without storing
//! it; one loaded from the pool comes back dirty (the load frees the
//! entry) and is stored again when reclaimed. Left out: the dynamic shrinker (`shrinker_enabled`, off by default and
//! off on this project's kernel), which writes back under memory pressure
//! before the pool is full; per-cgroup `memory.zswap.max` (cgroup v2); and
//! the zeromap for block devices without zswap, which today's kernels have
//! too.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::input::node::Pos;
use crate::input::reader::{Decoder, Fields};
use crate::input::values::{boolean, choice, int, span};
use crate::model::swap::{CacheCounters, Figures, IoScheduler, QueuedDevice, SwapBackend, SwapIn, SwapPage};
use crate::units::Span;

/// A compressor with what it does to typical guest memory: its ratio and
/// the time to compress and decompress a 4 KiB page on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compressor {
    Lzo,
    LzoRle,
}

impl Compressor {
    /// Its name in `/sys/module/zswap/parameters/compressor`.
    pub fn name(self) -> &'static str {
        COMPRESSORS.iter().find(|c| c.1 == self).map_or("lzo", |c| c.0)
    }
}

// Ratios on 1.1 GB of typical memory (Linux Reviews' zram comparison,
// confirmed by fio runs on the same page): lzo 2.69-2.77, lzo-rle
// 2.68-2.74. Decompression of a random 4 KiB page through zram: lzo
// 2.43 us, lzo-rle 2.24 us mean; compression about 250 MB/s, 16 us a
// page. lzo is CONFIG_ZSWAP_COMPRESSOR_DEFAULT on this project's kernel;
// lz4 and zstd are not built into it.
const COMPRESSORS: [(&str, Compressor, f64, u64, u64); 2] =
    [("lzo", Compressor::Lzo, 2.7, 2_430, 16_000), ("lzo-rle", Compressor::LzoRle, 2.7, 2_240, 16_000)];

/// What one visit of the shrink worker costs it beyond any write-back:
/// shrink_worker walks the memory cgroup tree to the next cgroup with
/// entries and shrink_memcg looks at one entry of its LRU. Measured here
/// (Linux 6.18, 28 memory cgroups, 2 CPUs) with the workqueue tracepoints
/// during this project's zswap kernel test: the worker's runs that wrote
/// nothing back (16 entries rotated, then it gives up) took 51 us at the
/// median (p10 45 us, p90 61 us) of 10 864 runs, 3.2 us a visit.
const WORKER_VISIT_NS: f64 = 3_200.0;

/// zswap's knobs under `host.swap.zswap:` (`/sys/module/zswap/parameters/`
/// and the data's compressibility).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// The pool's limit, in percent of RAM (default 20).
    pub max_pool_percent: u32,
    /// After the pool was full, stores resume below this percent of the
    /// limit (default 90).
    pub accept_threshold_percent: u32,
    pub compressor: Compressor,
    /// How much the guests' non-zero pages shrink (original / compressed);
    /// 1 or less: they do not compress and are stored as they are.
    pub ratio: f64,
    /// Decompressing a page on a fault, and compressing one on a store.
    pub load_latency: Span,
    pub store_latency: Span,
}

impl Default for Knobs {
    /// The kernel's defaults (max_pool_percent 20, accept_threshold_percent
    /// 90) with lzo on typical data.
    fn default() -> Self {
        let (_, compressor, ratio, load, store) = COMPRESSORS[0];
        Knobs {
            max_pool_percent: 20,
            accept_threshold_percent: 90,
            compressor,
            ratio,
            load_latency: Span(load),
            store_latency: Span(store),
        }
    }
}

impl Knobs {
    pub const KEYS: &[&str] = &[
        "max_pool_percent",
        "accept_threshold_percent",
        "compressor",
        "ratio",
        "load_latency",
        "store_latency",
        "shrinker_enabled",
    ];

    /// Read the knobs `f` gives (under `at`), the compressor's figures for
    /// the rest.
    pub fn decode(d: &mut Decoder, f: &Fields, at: Pos) -> Option<Knobs> {
        let percent = |d: &mut Decoder, key: &str, lo: u32| {
            d.field(f, key, |n| {
                let v = int::<u32>(n, "percent")?;
                if (lo..=100).contains(&v) { Ok(v) } else { Err(format!("{key} is {v}: it must be {lo} to 100")) }
            })
        };
        let max_pool_percent = percent(d, "max_pool_percent", 1);
        let accept = percent(d, "accept_threshold_percent", 0);
        let options: Vec<(&str, usize)> = COMPRESSORS.iter().enumerate().map(|(i, c)| (c.0, i)).collect();
        let c = d.field(f, "compressor", |n| choice(n, &options)).unwrap_or(0);
        let ratio = d.field(f, "ratio", |n| match n.scalar_text().and_then(|t| t.trim().parse::<f64>().ok()) {
            Some(r) if r > 0.0 && r.is_finite() => Ok(r),
            _ => Err(format!(
                "expected a compression ratio above 0 (original / compressed, e.g. 2.7), found {}",
                n.show()
            )),
        });
        let load = d.field(f, "load_latency", span);
        let store = d.field(f, "store_latency", span);
        if d.field(f, "shrinker_enabled", boolean) == Some(true) {
            let pos = f.get("shrinker_enabled").map_or(at, |n| n.pos);
            d.error(
                pos,
                &f.child("shrinker_enabled"),
                "the dynamic shrinker (writeback under memory pressure before the pool is full) is not modelled; \
                 the kernel's default is off",
            );
            return None;
        }
        let (_, compressor, typical, load_ns, store_ns) = COMPRESSORS[c];
        let d0 = Knobs::default();
        Some(Knobs {
            max_pool_percent: max_pool_percent.unwrap_or(d0.max_pool_percent),
            accept_threshold_percent: accept.unwrap_or(d0.accept_threshold_percent),
            compressor,
            ratio: ratio.unwrap_or(typical),
            load_latency: load.unwrap_or(Span(load_ns)),
            store_latency: store.unwrap_or(Span(store_ns)),
        })
    }

    /// Bytes zsmalloc takes for one page: its compressed size rounded up
    /// to a 16-byte size class, or the whole page when it does not shrink.
    pub fn stored_bytes(&self) -> u32 {
        let compressed = (4096.0 / self.ratio).ceil();
        if compressed >= 4096.0 { 4096 } else { (compressed as u32).div_ceil(16) * 16 }
    }
}

/// Where a swapped-out page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A bit in the swap core's zeromap.
    Zero,
    /// In the pool, `generation` telling its LRU entry from stale ones.
    Pool {
        generation: u32,
    },
    Device,
    /// A slot a resident page kept after zswap loaded it (the entry is
    /// freed, the page dirty): nothing stored.
    Cached,
}

#[derive(Debug)]
pub struct Zswap {
    knobs: Knobs,
    /// The CPUs compressing and decompressing (two, like zram's preset).
    cpu: QueuedDevice,
    /// The swap device behind the pool.
    device: QueuedDevice,
    /// Swap slots, and those taken by the pool, the device and zero pages.
    slots: u64,
    used: u64,
    peak_used: u64,
    places: HashMap<(u32, u64), Place>,
    /// The pool's LRU, oldest first: (page, generation, referenced).
    lru: VecDeque<((u32, u64), u32, bool)>,
    next_gen: u32,
    pool_bytes: u64,
    /// The pool's limit and accept threshold, in (simulated) pages.
    max_pages: u64,
    accept_pages: u64,
    reached_full: bool,
    /// The shrink worker: when it takes its next entry (None: idle), the
    /// failures of its run so far, whether a refused store queued it again
    /// while it ran (queue_work on a running work item: it runs once more),
    /// and the time one write-back and one visit that writes nothing back
    /// take it.
    worker_at: Option<f64>,
    worker_failures: u32,
    worker_requeued: bool,
    writeback_ns: f64,
    visit_ns: f64,
    /// Write-backs per guest not yet charged to its memory cgroup.
    charges: std::collections::BTreeMap<u32, u64>,
    counters: CacheCounters,
}

impl Zswap {
    /// zswap with `knobs` in front of a device with `figures`, swap of
    /// `size_bytes`, on a host of `ram_bytes` (totalram_pages), at the
    /// run's sampling rate.
    pub fn new(knobs: &Knobs, figures: &Figures, size_bytes: u64, ram_bytes: u64, sample_rate: f64) -> Zswap {
        let cpu_figures = Figures {
            read_latency: knobs.load_latency,
            write_latency: knobs.store_latency,
            bandwidth_bytes_per_s: 1 << 40,
            queue_depth: 2,
            scheduler: IoScheduler::None,
        };
        // max_pages = totalram_pages * max_pool_percent / 100, and the
        // threshold max_pages * accept_thr_percent / 100, in integers.
        let ram_pages = (ram_bytes as f64 / 4096.0 * sample_rate).floor() as u64;
        let max_pages = ram_pages * u64::from(knobs.max_pool_percent) / 100;
        Zswap {
            knobs: *knobs,
            cpu: QueuedDevice::new(&cpu_figures, size_bytes, false, sample_rate),
            device: QueuedDevice::new(figures, size_bytes, true, sample_rate).with_writeback_throttling(figures),
            slots: (size_bytes as f64 / 4096.0 * sample_rate).floor() as u64,
            used: 0,
            peak_used: 0,
            places: HashMap::new(),
            lru: VecDeque::new(),
            next_gen: 0,
            pool_bytes: 0,
            max_pages,
            accept_pages: max_pages * u64::from(knobs.accept_threshold_percent) / 100,
            reached_full: false,
            worker_at: None,
            worker_failures: 0,
            worker_requeued: false,
            visit_ns: WORKER_VISIT_NS / sample_rate,
            charges: Default::default(),
            // One entry written back: decompressed into a new page, then
            // its write submitted (the device's queue and writeback
            // throttling decide when it may go); a simulated entry stands
            // for 1/R real ones.
            writeback_ns: knobs.load_latency.nanos() as f64 / sample_rate,
            counters: CacheCounters::default(),
        }
    }

    fn pool_pages(&self) -> u64 {
        self.pool_bytes.div_ceil(4096)
    }

    /// zswap_check_limits: whether a store is refused now.
    fn refuses(&mut self) -> bool {
        let cur = self.pool_pages();
        if cur >= self.max_pages {
            self.counters.pool_limit_hit += 1;
            self.reached_full = true;
        } else if self.reached_full && cur <= self.accept_pages {
            self.reached_full = false;
        }
        self.reached_full
    }

    fn take_slot(&mut self) {
        self.used += 1;
        self.peak_used = self.peak_used.max(self.used);
    }

    fn leave_pool(&mut self) {
        self.pool_bytes -= u64::from(self.knobs.stored_bytes());
        self.counters.stored -= 1;
        if self.knobs.stored_bytes() == 4096 {
            self.counters.stored_incompressible -= 1;
        }
    }

    /// shrink_worker, which a refused store queues: it writes the oldest
    /// entries back to the device until the pool is at the accept
    /// threshold, giving a referenced entry a second turn first (moved to
    /// the back, unmarked). Each referenced entry it meets is a failure
    /// (shrink_memcg walks one entry and returns -EAGAIN when it wrote
    /// nothing back), and the run ends after MAX_RECLAIM_RETRIES = 16 of
    /// them. A refused store while it runs queues it once more (queue_work
    /// on a running work item): the next run starts when this one ends,
    /// its failures counted afresh; refused stores that find it idle start
    /// it. It runs beside the guests, each visit taking its time, so
    /// stores keep being refused while it works the pool down (loads
    /// shrink the pool too): this plays its steps due by `now`.
    fn run_worker(&mut self, now: u64) {
        const MAX_RECLAIM_RETRIES: u32 = 16;
        while let Some(at) = self.worker_at {
            // A write-back's page must be charged (the engine settles it,
            // the cgroup reclaiming as the worker would) before the next.
            if at > now as f64 || !self.charges.is_empty() {
                return;
            }
            if self.pool_pages() <= self.accept_pages
                || self.worker_failures >= MAX_RECLAIM_RETRIES
                || self.lru.is_empty()
            {
                if std::mem::take(&mut self.worker_requeued) {
                    self.worker_failures = 0;
                    continue;
                }
                self.worker_at = None;
                return;
            }
            let Some((key, generation, referenced)) = self.lru.pop_front() else { continue };
            if self.places.get(&key) != Some(&Place::Pool { generation }) {
                continue; // loaded or dropped since: no longer on the LRU
            }
            if referenced {
                self.lru.push_back((key, generation, false));
                self.worker_failures += 1;
                self.worker_at = Some(at + self.visit_ns);
                continue;
            }
            self.leave_pool();
            self.places.insert(key, Place::Device);
            // Its write waits for writeback throttling's limit (one
            // request of its own: the entries lie in random slots).
            let at = self.device.write_throttled(at + self.visit_ns + self.writeback_ns, true);
            self.counters.written_back += 1;
            *self.charges.entry(key.0).or_default() += 1;
            self.worker_at = Some(at);
        }
    }

    /// A refused store queues the worker: it starts now when idle, and
    /// runs once more after its current run when busy.
    fn queue_worker(&mut self, now: u64) {
        if self.worker_at.is_none() {
            self.worker_at = Some(now as f64);
            self.worker_failures = 0;
        } else {
            self.worker_requeued = true;
        }
        self.run_worker(now);
    }
}

impl SwapBackend for Zswap {
    fn capacity(&self) -> u64 {
        self.slots
    }
    fn used(&self) -> u64 {
        self.used
    }
    fn peak_used(&self) -> u64 {
        self.peak_used
    }
    /// Device reads and writes (`pswpin`, `pswpout`, write-backs included).
    fn reads(&self) -> u64 {
        self.device.reads
    }
    fn writes(&self) -> u64 {
        self.device.writes
    }

    /// Returns the compression's time when the page is stored: zswap_store
    /// compresses on the reclaiming CPU (a zero page's check and a refused
    /// store cost it nothing to speak of).
    fn write(&mut self, now: u64, page: SwapPage, has_slot: bool) -> f64 {
        self.run_worker(now);
        let key = (page.guest, page.page);
        if !has_slot {
            self.take_slot();
        } else if self.places.remove(&key) == Some(Place::Device) {
            // A dirty page rewritten: what the device held of it is stale.
            self.device.discard(1);
        }
        if page.zero {
            self.places.insert(key, Place::Zero);
            self.counters.zero_out += 1;
            return 0.0;
        }
        if self.refuses() {
            self.counters.rejected_full += 1;
            self.places.insert(key, Place::Device);
            self.device.write(now, true);
            self.queue_worker(now);
            return 0.0;
        }
        let generation = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        self.places.insert(key, Place::Pool { generation });
        self.lru.push_back((key, generation, true));
        self.pool_bytes += u64::from(self.knobs.stored_bytes());
        self.counters.stores += 1;
        self.counters.stored += 1;
        if self.knobs.stored_bytes() == 4096 {
            self.counters.stored_incompressible += 1;
        }
        self.counters.pool_peak_pages = self.counters.pool_peak_pages.max(self.pool_pages());
        self.knobs.store_latency.nanos() as f64
    }

    /// A page kept in the swap cache keeps its slot and, when it came from
    /// the device or the zero map, its copy there (it comes back clean); a
    /// load from the pool frees the entry and leaves the page dirty.
    fn read(&mut self, now: u64, page: SwapPage, keep: bool) -> SwapIn {
        self.run_worker(now);
        let key = (page.guest, page.page);
        let place = if keep { self.places.get(&key).copied() } else { self.places.remove(&key) };
        if !keep {
            self.used -= 1;
        }
        let (wait, dirty) = match place {
            Some(Place::Zero) => {
                self.counters.zero_in += 1;
                (0, false)
            }
            Some(Place::Pool { .. }) => {
                self.leave_pool();
                self.counters.loads += 1;
                if keep {
                    self.places.insert(key, Place::Cached);
                }
                // Exclusive load: the CPU decompresses, the entry is freed.
                (self.cpu.read(now, true), true)
            }
            Some(Place::Device) | Some(Place::Cached) | None => (self.device.read(now, !keep), false),
        };
        SwapIn { wait, kept: keep, dirty }
    }

    fn keeps_slots(&self) -> bool {
        true
    }

    fn write_throttle(&mut self, now: u64) -> f64 {
        self.device.write_throttle(now)
    }

    /// A page swapped when the run begins is on the device (or a zero bit).
    fn occupy(&mut self, page: SwapPage) {
        self.take_slot();
        if page.zero {
            self.places.insert((page.guest, page.page), Place::Zero);
        } else {
            self.places.insert((page.guest, page.page), Place::Device);
            self.device.occupy(1);
        }
    }

    fn discard(&mut self, page: SwapPage) {
        self.used -= 1;
        match self.places.remove(&(page.guest, page.page)) {
            Some(Place::Pool { .. }) => self.leave_pool(),
            Some(Place::Device) => self.device.discard(1),
            Some(Place::Zero) | Some(Place::Cached) | None => {}
        }
    }

    fn discard_guest(&mut self, guest: u32, pages: u64) {
        self.used -= pages;
        let mine: Vec<(u32, u64)> = self.places.keys().filter(|k| k.0 == guest).copied().collect();
        for key in mine {
            match self.places.remove(&key) {
                Some(Place::Pool { .. }) => self.leave_pool(),
                Some(Place::Device) => self.device.discard(1),
                _ => {}
            }
        }
    }

    /// The pool's pages, in host RAM.
    fn ram_frames(&self) -> u64 {
        self.pool_pages()
    }
    fn keeps_pages_in_ram(&self) -> bool {
        true
    }
    /// zswap_writeback_entry reads the entry into a new swap-cache page
    /// (`__read_swap_cache_async`, charged to the entry's memory cgroup)
    /// before it writes it: at its limit the cgroup reclaims for it, and
    /// the pages reclaim takes meanwhile find the pool still full.
    fn take_charges(&mut self) -> Vec<(u32, u64)> {
        std::mem::take(&mut self.charges).into_iter().collect()
    }
    /// The worker reclaimed for its last write-back's page itself (the
    /// charge is made in its context): that took it `stall_ns`.
    fn tick(&mut self, now: u64, stall_ns: f64) {
        if let Some(at) = self.worker_at.as_mut() {
            *at += stall_ns;
        }
        self.run_worker(now);
    }
    fn cache(&self) -> Option<CacheCounters> {
        Some(CacheCounters { pool_pages: self.pool_pages(), ..self.counters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::swap::device::PRESETS;

    fn page(p: u64) -> SwapPage {
        SwapPage { guest: 0, page: p, zero: false }
    }

    /// zswap in front of an NVMe drive on a 4 MiB host (1024 pages): with
    /// max_pool_percent 10 the pool holds 1024 × 10 / 100 = 102 pages and
    /// takes stores again at 102 × 90 / 100 = 91 (integer arithmetic, as
    /// zswap_check_limits does it).
    fn small(ratio: f64) -> Zswap {
        let knobs = Knobs { max_pool_percent: 10, ratio, ..Knobs::default() };
        Zswap::new(&knobs, &PRESETS[0].2, 1 << 30, 4 << 20, 1.0)
    }

    #[test]
    fn a_page_takes_its_compressed_size_rounded_to_a_size_class() {
        // 4096 / 2.7 = 1517.04 -> 1518 bytes -> the 1520-byte class.
        assert_eq!(Knobs::default().stored_bytes(), 1520);
        // A page that does not shrink is stored as it is (6.18).
        assert_eq!(Knobs { ratio: 1.0, ..Knobs::default() }.stored_bytes(), 4096);
        assert_eq!(Knobs { ratio: 0.5, ..Knobs::default() }.stored_bytes(), 4096);
    }

    #[test]
    fn zero_pages_keep_a_slot_but_no_ram_and_no_io() {
        // swap_writeout: a zero-filled folio only sets its zeromap bit.
        let mut z = small(2.7);
        z.write(0, SwapPage { zero: true, ..page(1) }, false);
        let c = z.cache().unwrap();
        assert_eq!((z.used(), z.writes(), c.stores, c.zero_out, z.ram_frames()), (1, 0, 0, 1, 0));
        assert_eq!(z.read(0, SwapPage { zero: true, ..page(1) }, false).wait, 0);
        assert_eq!((z.used(), z.cache().unwrap().zero_in), (0, 1));
    }

    #[test]
    fn a_full_pool_refuses_until_it_is_under_the_accept_threshold() {
        // Incompressible pages (stored as-is, a page each) make the pool's
        // size the number of pages stored.
        let mut z = small(1.0);
        for p in 0..102 {
            z.write(0, page(p), false);
        }
        let c = z.cache().unwrap();
        assert_eq!((c.stored, c.stored_incompressible, c.pool_pages, z.writes()), (102, 102, 102, 0));
        // The 103rd finds the pool at its limit: refused and written to
        // the device, and the worker queued. All entries are new
        // (referenced): it unmarks and rotates them, each a failure, one
        // visit every 3.2 us (WORKER_VISIT_NS), and gives up at
        // MAX_RECLAIM_RETRIES = 16 with nothing written back. Six more
        // refused stores while it runs queue it once more, not six times
        // (queue_work on a running work item).
        for p in 102..109 {
            z.write(0, page(p), false);
        }
        z.tick(1_000_000, 0.0);
        let c = z.cache().unwrap();
        assert_eq!((c.pool_limit_hit, c.rejected_full, c.written_back, c.pool_pages), (7, 7, 0, 102));
        assert_eq!(z.lru.iter().filter(|e| !e.2).count(), 32, "two runs of 16 rotations");
        // Each later refused store starts a run of its own: four more
        // rotate 64 (96 in all), the fifth rotates the last 6 and writes
        // back the oldest (now unmarked) entry.
        for k in 1..=5 {
            z.write(k * 1_000_000, page(108 + k), false);
        }
        z.tick(6_000_000, 0.0);
        let c = z.cache().unwrap();
        assert_eq!((c.pool_limit_hit, c.rejected_full, c.written_back, c.pool_pages), (12, 12, 1, 101));
        // The worker waits for that page to be charged to its guest (the
        // engine settles it, its cgroup reclaiming if at its limit). Each
        // charge settled in turn, it works the pool down to 91 (10 more
        // written back) and stops; at 91 <= the threshold the next store is
        // taken again.
        let mut charged = 0;
        loop {
            let c = z.take_charges();
            if c.is_empty() {
                break;
            }
            charged += c.iter().map(|x| x.1).sum::<u64>();
            z.tick(1_000_000_000, 0.0);
        }
        assert_eq!(charged, 11, "each write-back read its entry into a page charged to guest 0");
        z.write(1_000_000_000, page(114), false);
        let c = z.cache().unwrap();
        assert_eq!((c.rejected_full, c.written_back, c.pool_pages), (12, 11, 92));
        assert_eq!(z.writes(), 23, "pswpout: the 12 refused pages and the 11 written back");
        // The oldest pages are on the device now: a fault reads them there
        // (80 us on an idle NVMe drive, a device read), a newer one from
        // the pool (lzo's 2.43 us decompression).
        assert_eq!(z.read(2_000_000_000, page(0), false).wait, 80_000);
        assert_eq!(z.read(2_000_000_000, page(50), false).wait, 2_430);
        let c = z.cache().unwrap();
        assert_eq!((c.loads, c.stored, z.reads()), (1, 91, 1));
    }

    #[test]
    fn compressed_pages_fill_the_pool_by_their_size() {
        // 100 pages at 1520 bytes: 152 000 bytes, 38 pages of pool.
        let mut z = small(2.7);
        for p in 0..100 {
            z.write(0, page(p), false);
        }
        assert_eq!((z.ram_frames(), z.cache().unwrap().stored), (38, 100));
        // A dead guest's entries leave with it.
        z.discard_guest(0, 100);
        assert_eq!((z.ram_frames(), z.used(), z.cache().unwrap().stored), (0, 0, 0));
    }

    #[test]
    fn a_page_kept_in_the_swap_cache_keeps_its_slot_and_its_copy() {
        // Two pages stored; then page 0 written back to the device (its
        // place made so by hand, as the shrink worker would).
        let mut z = small(2.7);
        z.write(0, page(0), false);
        z.write(0, page(1), false);
        z.places.insert((0, 0), Place::Device);
        z.leave_pool();
        z.device.occupy(1);
        // Read back into the swap cache: from the device clean, from the
        // pool dirty (the exclusive load frees the entry); both keep slots.
        let dev = z.read(1_000_000_000, page(0), true);
        let pool = z.read(1_000_000_000, page(1), true);
        assert_eq!((dev.kept, dev.dirty, pool.kept, pool.dirty), (true, false, true, true));
        assert_eq!((z.used(), z.cache().unwrap().stored, z.cache().unwrap().loads), (2, 0, 1));
        // The dirty one goes out again into its own slot: stored, no new
        // slot. The clean one is freed by reclaim with no call at all, and
        // a later fault reads it from the device again.
        z.write(2_000_000_000, page(1), true);
        assert_eq!((z.used(), z.cache().unwrap().stores, z.writes()), (2, 3, 0));
        assert_eq!(z.read(3_000_000_000, page(0), false).wait, 80_000);
        assert_eq!((z.used(), z.reads()), (1, 2));
    }
}
