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

/// How guest RAM is backed on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous 4 KiB memory, with transparent huge pages when `thp`.
    Small { thp: bool },
    /// hugetlbfs pages of `page_bytes`, taken from the pool.
    Hugetlb { page_bytes: u64 },
}

#[derive(Debug)]
pub struct Guest {
    pub name: String,
    pub group: usize,
    pub status: Status,
    pub backing: Backing,
    /// Bumped when the guest dies, so its pending events are dropped
    /// (lazy cancellation).
    pub generation: u32,
    /// One state byte per simulated page.
    pub pages: PageMem,
    /// Real page index of each simulated page (sampled mode only; in exact
    /// mode simulated and real indices are equal and this is empty).
    pub real: Vec<u64>,
    /// First simulated page of each huge region (2 MiB for THP, the pool's
    /// page size for hugetlb), with one extra entry at the end.
    pub region_start: Vec<u64>,
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
    /// Pages per region in real pages (512 for 2 MiB, 262144 for 1 GiB).
    pub region_pages: u64,
    /// When every full region holds the same power of two of simulated
    /// pages (always when exact, and under stratified sampling at the
    /// rates allowed, 2^-k) and the last holds no more: its log2, so a
    /// page's region is its index shifted, with no lookup. `None` otherwise.
    region_shift: Option<u32>,
    /// Guest RAM in real 4 KiB pages.
    pub real_pages: u64,
    /// Simulated pages in each state.
    pub resident: u64,
    pub swapped: u64,
    pub huge: u64,
    /// Simulated pages mapped to a KSM page or the zero page: resident for
    /// the guest, but no frame of its own.
    pub merged: u64,
    /// Simulated pages from this index on are in the balloon (or, inside
    /// the working set, in the guest's swap): the guest does not have them.
    pub balloon_floor: u64,
    /// Transparent huge pages currently mapped.
    pub thps: u64,
    /// Hugetlb pages this guest holds from the pool.
    pub pool_pages: u64,
    /// The most frames and swap slots it ever held, in simulated pages.
    pub peak_frames: u64,
    pub peak_swapped: u64,
}

impl Guest {
    /// A guest of `sim_pages` simulated pages. `real` is empty in exact
    /// mode; in sampled mode it lists the real index of each simulated page.
    pub fn new(
        name: String,
        group: usize,
        backing: Backing,
        real_pages: u64,
        real: Vec<u64>,
        shared: f64,
        zero: f64,
    ) -> Guest {
        let sim_pages = if real.is_empty() { real_pages } else { real.len() as u64 };
        let sampled = !real.is_empty();
        let region_pages = match backing {
            Backing::Small { .. } => 512,
            Backing::Hugetlb { page_bytes } => page_bytes / 4096,
        };
        let regions = real_pages.div_ceil(region_pages);
        let mut pages = PageMem::zeroed(sim_pages as usize);
        for (i, st) in pages.iter_mut().enumerate() {
            let rp = if real.is_empty() { i as u64 } else { real[i] };
            *st = page::content_of(rp, shared, zero).bits();
        }
        let region_start = if real.is_empty() {
            (0..=regions).map(|r| (r * region_pages).min(real_pages)).collect()
        } else {
            let mut v = Vec::with_capacity(regions as usize + 1);
            let mut i = 0usize;
            for r in 0..=regions {
                while i < real.len() && real[i] < r * region_pages {
                    i += 1;
                }
                v.push(i as u64);
            }
            v
        };
        let thp_sampled = matches!(backing, Backing::Small { thp: true }) && sampled;
        let full = region_start.get(1).copied().unwrap_or(0);
        let even = full > 0
            && region_start.windows(2).enumerate().all(|(r, w)| {
                let n = w[1] - w[0];
                if (r as u64) + 1 < regions { n == full } else { n <= full }
            });
        Guest {
            name,
            group,
            status: Status::Starting,
            backing,
            generation: 0,
            pages,
            real,
            region_start,
            region_touched: vec![0; regions as usize],
            region_shares: std::sync::Arc::new(if thp_sampled {
                RegionShares::zeros(regions as usize)
            } else {
                RegionShares::default()
            }),
            thp_sampled,
            touches: 0.0,
            region_pages,
            region_shift: (even && full.is_power_of_two()).then(|| full.trailing_zeros()),
            real_pages,
            resident: 0,
            swapped: 0,
            huge: 0,
            merged: 0,
            balloon_floor: sim_pages,
            thps: 0,
            pool_pages: 0,
            peak_frames: 0,
            peak_swapped: 0,
        }
    }

    pub fn sim_pages(&self) -> u64 {
        self.pages.len() as u64
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
            None => (self.real_page(sim) / self.region_pages) as usize,
        }
    }

    #[inline]
    pub fn region_range(&self, region: usize) -> std::ops::Range<u64> {
        if let Some(shift) = self.region_shift {
            let start = (region as u64) << shift;
            return start.min(self.sim_pages())..(start + (1 << shift)).min(self.sim_pages());
        }
        self.region_start[region]..self.region_start[region + 1]
    }

    pub fn untouched(&self) -> u64 {
        self.sim_pages() - self.resident - self.swapped - self.huge - self.merged
    }

    pub fn is_alive(&self) -> bool {
        matches!(self.status, Status::Starting | Status::Running)
    }

    pub fn content(&self, sim: u64) -> Content {
        Content::of(self.pages[sim as usize])
    }
}
