//! One guest instance: its pages' state and its memory counters. No policy
//! lives here; the engine and the policies change it.

use super::page::{self, Content};
use super::pagemem::PageMem;
use super::workload::RegionShares;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started yet, or booting (prealloc takes time).
    Starting,
    Running,
    OomKilled,
    FailedToStart,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::OomKilled => "oom_killed",
            Status::FailedToStart => "failed_to_start",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How guest RAM is backed on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous 4 KiB memory, with transparent huge pages when `thp`.
    Small { thp: bool },
    /// hugetlbfs pages of `page_bytes`, taken from the pool.
    Hugetlb { page_bytes: u64 },
}

/// A run of a guest's pages with one backing: one QEMU memory backend
/// (all of `-m`, a NUMA cell, a DIMM).
#[derive(Debug, Clone)]
pub struct Segment {
    /// Simulated pages of the segment.
    pub sim: std::ops::Range<u64>,
    /// Real 4 KiB pages of the segment.
    pub real: std::ops::Range<u64>,
    pub backing: Backing,
    /// KSM may merge it (MADV_MERGEABLE, private, not hugetlbfs).
    pub mergeable: bool,
}

#[derive(Debug)]
pub struct Guest {
    pub name: String,
    pub group: usize,
    pub status: Status,
    /// Its memory backends in guest-physical order; one for most guests.
    pub segments: Vec<Segment>,
    /// Bumped when the guest dies, so its pending events are dropped
    /// (lazy cancellation).
    pub generation: u32,
    /// One state byte per simulated page.
    pub pages: PageMem,
    /// Real page index of each simulated page (sampled mode only; in exact
    /// mode simulated and real indices are equal and this is empty).
    pub real: Vec<u64>,
    /// First simulated page of each huge region (2 MiB for THP, the pool's
    /// page size for hugetlb; each backend's regions start at the backend),
    /// with one extra entry at the end.
    pub region_start: Vec<u64>,
    /// First real page of each region, with one extra entry at the end.
    pub region_real: Vec<u64>,
    /// Pages of each region that are not untouched (a THP can only be made
    /// where this is 0).
    pub region_touched: Vec<u32>,
    /// Sampled mode with THP: each 2 MiB region's share of the guest's
    /// touches (set by the workload's phase).
    pub region_shares: std::sync::Arc<RegionShares>,
    /// Sampled mode with THP (where `region_shares` matters).
    pub thp_sampled: bool,
    /// The guest's real touches so far (the engine's SHARDS-adjusted count).
    pub touches: f64,
    /// When every full region holds the same power of two of simulated
    /// pages (always when exact with one backend, and under stratified
    /// sampling at the rates allowed, 2^-k) and the last holds no more: its
    /// log2, so a page's region is its index shifted, with no lookup.
    /// `None` otherwise.
    region_shift: Option<u32>,
    /// Pages per region in real pages (512 for 2 MiB, 262144 for 1 GiB)
    /// when every backend has the same; 0 when they differ.
    pub region_pages: u64,
    /// Guest RAM in real 4 KiB pages.
    pub real_pages: u64,
    /// Simulated pages in each state.
    pub resident: u64,
    pub swapped: u64,
    /// Pages mapped huge: in a THP or a hugetlb page.
    pub huge: u64,
    /// Of `huge`, pages mapped from the hugetlb pool (not ordinary frames).
    pub pool_mapped: u64,
    /// Simulated pages mapped to a KSM page or the zero page: resident for
    /// the guest, but no frame of its own.
    pub merged: u64,
    /// Transparent huge pages currently mapped.
    pub thps: u64,
    /// Pages mapped to the kernel's shared zero page by a THP split (one
    /// bit a simulated page): since Linux 6.12 splitting an anonymous THP
    /// maps its zero-filled subpages to the zero page and frees them
    /// (`remap_page` with RMP_USE_SHARED_ZEROPAGE). Their state is
    /// `RESIDENT | MERGED` (reads hit, a write faults a page of its own),
    /// but they are neither KSM's nor counted in `merged`: the guest's RSS
    /// drops and no KSM counter moves.
    pub zero_mapped: Vec<u64>,
    /// Hugetlb pages this guest holds from each pool: (page bytes, count).
    pub pool_pages: Vec<(u64, u64)>,
    /// Its memory is mlock()ed: reclaim never takes it (the kernel keeps
    /// mlocked pages on the unevictable list, which reclaim does not scan).
    pub unevictable: bool,
    /// The most simulated pages its memory cgroup may have in swap
    /// (`memory.swap.max`); `u64::MAX`: no limit.
    pub swap_max: u64,
    /// The balloon: simulated pages it holds, and the ranges it took, in
    /// the order taken (it gives back the last taken first, as the Linux
    /// driver's page list does).
    pub ballooned: u64,
    pub balloon_taken: Vec<(u64, u64)>,
    /// Where the balloon looks next for pages below the ones it has
    /// (descending: free memory the guest never used, then its coldest
    /// working-set pages).
    pub balloon_cursor: u64,
    /// Ranges of pages the guest freed (its working set shrank), most
    /// recent last: its allocator hands these out first (LIFO per-CPU and
    /// buddy lists), to the balloon too.
    pub freed: Vec<(u64, u64)>,
    /// The most frames and swap slots it ever held, in simulated pages.
    pub peak_frames: u64,
    pub peak_swapped: u64,
    /// Which of its resident pages still hold a swap slot from their last
    /// swap-in, and which of those are clean (empty where the swap backend
    /// frees slots at swap-in).
    pub swap_cache: super::swapcache::SwapCache,
    /// Its touches played by events (the engine's event mode): whoever
    /// maps or unmaps one of its pages tells it, and reclaim asks it
    /// whether a page was touched.
    pub events: Option<Box<super::eventset::EventTrack>>,
    /// Its content shares and where they lie: what a page given back
    /// holds again, and which pages hold the image's common pattern.
    pub shares: page::Shares,
}

impl Guest {
    /// A guest of one backing and `real_pages` real pages. `real` is empty
    /// in exact mode; in sampled mode it lists the real index of each
    /// simulated page.
    pub fn new(
        name: String,
        group: usize,
        backing: Backing,
        real_pages: u64,
        real: Vec<u64>,
        shared: f64,
        zero: f64,
    ) -> Guest {
        let shares = page::Shares { shared, zero, duplicate: 0.0, ..page::Shares::default() };
        Guest::with_segments(name, group, &[(real_pages, backing, true)], real, shares)
    }

    /// A guest whose memory is `layout`: (real pages, backing, mergeable)
    /// per backend, in guest-physical order.
    pub fn with_segments(
        name: String,
        group: usize,
        layout: &[(u64, Backing, bool)],
        real: Vec<u64>,
        shares: page::Shares,
    ) -> Guest {
        Guest::with_segments_like(name, group, layout, real, shares, None)
    }

    /// [`Guest::with_segments`], the pages' content classes copied from
    /// `like` (a guest just made with the same layout, sample and shares,
    /// whose pages are as made) instead of placed one by one: the guests
    /// of a group start alike.
    pub fn with_segments_like(
        name: String,
        group: usize,
        layout: &[(u64, Backing, bool)],
        real: Vec<u64>,
        shares: page::Shares,
        like: Option<&Guest>,
    ) -> Guest {
        let real_pages: u64 = layout.iter().map(|l| l.0).sum();
        let sim_pages = if real.is_empty() { real_pages } else { real.len() as u64 };
        let sampled = !real.is_empty();
        let sim_of = |rp: u64| if real.is_empty() { rp } else { real.partition_point(|&p| p < rp) as u64 };
        let mut pages = PageMem::zeroed(sim_pages as usize);
        match like {
            Some(l) if l.shares == shares && l.real == real && l.real_pages == real_pages => {
                debug_assert!(l.pages.iter().all(|&st| st & !page::CLASS_MASK == 0), "a template as made");
                pages.copy_from_slice(&l.pages);
            }
            _ => {
                let classes = shares.classifier();
                for (i, st) in pages.iter_mut().enumerate() {
                    let rp = if real.is_empty() { i as u64 } else { real[i] };
                    *st = classes.content(rp).bits();
                }
            }
        }
        let mut segments = Vec::with_capacity(layout.len());
        let mut region_real = Vec::new();
        let mut at = 0u64;
        for &(n, backing, mergeable) in layout {
            let step = match backing {
                Backing::Small { .. } => 512,
                Backing::Hugetlb { page_bytes } => page_bytes / 4096,
            };
            let mut r = at;
            while r < at + n {
                region_real.push(r);
                r += step;
            }
            segments.push(Segment {
                sim: sim_of(at)..sim_of(at + n),
                real: at..at + n,
                backing,
                mergeable: mergeable && matches!(backing, Backing::Small { .. }),
            });
            at += n;
        }
        region_real.push(real_pages);
        let regions = region_real.len() - 1;
        let region_size = |b: &Backing| match *b {
            Backing::Small { .. } => 512,
            Backing::Hugetlb { page_bytes } => page_bytes / 4096,
        };
        let region_pages = match layout.first() {
            Some(first) if layout.len() == 1 => region_size(&first.1),
            _ => 0,
        };
        let region_start: Vec<u64> = region_real.iter().map(|&r| sim_of(r)).collect();
        let thp_sampled = sampled && segments.iter().any(|s| matches!(s.backing, Backing::Small { thp: true }));
        let full = region_start.get(1).copied().unwrap_or(0);
        let even = segments.len() == 1
            && full > 0
            && region_start.windows(2).enumerate().all(|(r, w)| {
                let n = w[1] - w[0];
                if r + 1 < regions { n == full } else { n <= full }
            });
        Guest {
            name,
            group,
            status: Status::Starting,
            segments,
            generation: 0,
            pages,
            real,
            region_start,
            region_real,
            region_touched: vec![0; regions],
            region_shares: std::sync::Arc::new(if thp_sampled {
                RegionShares::zeros(regions)
            } else {
                RegionShares::default()
            }),
            thp_sampled,
            touches: 0.0,
            region_shift: (even && full.is_power_of_two()).then(|| full.trailing_zeros()),
            region_pages,
            real_pages,
            resident: 0,
            swapped: 0,
            huge: 0,
            pool_mapped: 0,
            merged: 0,
            thps: 0,
            zero_mapped: Vec::new(),
            pool_pages: Vec::new(),
            unevictable: false,
            swap_max: u64::MAX,
            ballooned: 0,
            balloon_taken: Vec::new(),
            balloon_cursor: sim_pages,
            freed: Vec::new(),
            peak_frames: 0,
            peak_swapped: 0,
            swap_cache: Default::default(),
            events: None,
            shares,
        }
    }

    /// The segment holding simulated page `sim`.
    #[inline]
    pub fn segment_of(&self, sim: u64) -> &Segment {
        if self.segments.len() == 1 {
            return &self.segments[0];
        }
        let i = self.segments.partition_point(|s| s.sim.end <= sim).min(self.segments.len() - 1);
        &self.segments[i]
    }

    /// How simulated page `sim` is backed.
    #[inline]
    pub fn backing_at(&self, sim: u64) -> Backing {
        self.segment_of(sim).backing
    }

    /// The backing of most of its memory.
    pub fn main_backing(&self) -> Backing {
        self.segments
            .iter()
            .max_by_key(|s| s.real.end - s.real.start)
            .map_or(Backing::Small { thp: false }, |s| s.backing)
    }

    /// Whether any of its memory is ordinary (swappable, balloonable) memory.
    pub fn has_small(&self) -> bool {
        self.segments.iter().any(|s| matches!(s.backing, Backing::Small { .. }))
    }

    /// Real pages in region `region`.
    pub fn region_real_pages(&self, region: usize) -> u64 {
        self.region_real[region + 1] - self.region_real[region]
    }

    /// Reclaim may not take its anonymous pages: they are mlocked (on the
    /// unevictable list, which reclaim does not scan), or its cgroup is at
    /// `memory.swap.max`, leaving them no swap (get_scan_count).
    #[inline]
    pub fn off_lru(&self) -> bool {
        self.unevictable || self.swapped >= self.swap_max
    }

    /// The guest's real touches so far: its count, or while it skips ahead
    /// in event mode, the count its skip has reached by now.
    pub fn touches_now(&self) -> f64 {
        self.events.as_deref().and_then(|e| e.touches_now()).unwrap_or(self.touches)
    }

    pub fn sim_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// The real pages `sim` simulated pages stand for (page-exact, the
    /// same count, without a division: reclaim asks for every guest on
    /// every pass).
    #[inline]
    pub fn real_count(&self, sim: u64) -> f64 {
        if self.real_pages == self.sim_pages() {
            sim as f64
        } else {
            sim as f64 * self.real_pages as f64 / self.sim_pages().max(1) as f64
        }
    }

    /// The real page index of a simulated page.
    #[inline]
    pub fn real_page(&self, sim: u64) -> u64 {
        if self.real.is_empty() { sim } else { self.real[sim as usize] }
    }

    #[inline]
    pub fn region_of(&self, sim: u64) -> usize {
        match self.region_shift {
            Some(shift) => (sim >> shift) as usize,
            None if self.region_pages > 0 => (self.real_page(sim) / self.region_pages) as usize,
            None => self.region_start.partition_point(|&s| s <= sim).saturating_sub(1),
        }
    }

    /// The guest's 2 MiB regions.
    pub fn region_count(&self) -> usize {
        self.region_real.len().saturating_sub(1)
    }

    #[inline]
    pub fn region_range(&self, region: usize) -> std::ops::Range<u64> {
        if let Some(shift) = self.region_shift {
            let start = (region as u64) << shift;
            return start.min(self.sim_pages())..(start + (1 << shift)).min(self.sim_pages());
        }
        self.region_start[region]..self.region_start[region + 1]
    }

    /// Pages neither mapped, swapped nor ballooned.
    pub fn untouched(&self) -> u64 {
        self.sim_pages() - self.resident - self.swapped - self.huge - self.merged - self.ballooned
    }

    /// Whether page `p` is mapped to the zero page by a THP split.
    #[inline]
    pub fn is_zero_mapped(&self, p: u64) -> bool {
        self.zero_mapped.get((p / 64) as usize).is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    /// Page `p`, zero-filled in a THP being split, goes to the zero page.
    pub fn map_zero(&mut self, p: u64) {
        let w = (p / 64) as usize;
        if self.zero_mapped.len() <= w {
            self.zero_mapped.resize(w + 1, 0);
        }
        self.zero_mapped[w] |= 1 << (p % 64);
    }

    /// Page `p` leaves the zero page (a write gives it a page of its own,
    /// the balloon takes it).
    pub fn unmap_zero(&mut self, p: u64) {
        if let Some(w) = self.zero_mapped.get_mut((p / 64) as usize) {
            *w &= !(1 << (p % 64));
        }
    }

    pub fn is_alive(&self) -> bool {
        matches!(self.status, Status::Starting | Status::Running)
    }

    pub fn content(&self, sim: u64) -> Content {
        Content::of(self.pages[sim as usize])
    }
}
