//! Timing this machine's memory: first-touch faults on fresh anonymous
//! mappings (4 KiB, THP, hugetlb), the zeroing bound, a dependent pointer
//! chase for DRAM latency and page-walk cost, and a 4 KiB copy.
//!
//! Every fault figure comes from a fresh mapping per repeat, touched one
//! byte per page (4 KiB, or 2 MiB / 1 GiB for huge pages) in address
//! order, never populated in advance (no MAP_POPULATE): the time of the
//! touching loop divided by the faults it took. A huge page is touched
//! once, so the figure is the fault alone: touching its other 4 KiB pieces
//! would add a cache miss each (the kernel zeroes it with stores that
//! leave little in cache), which the model counts as memory latency, not
//! as the fault. One warm-up repeat goes first and is not counted.

use std::fs;
use std::io;
use std::time::Instant;

use rustix::mm::{self, Advice, MapFlags, ProtFlags};

use crate::model::page::mix64;

const PAGE: usize = 4096;
const HUGE_2M: usize = 2 << 20;
const HUGE_1G: usize = 1 << 30;

/// The median, least and greatest of some repeats (nanoseconds unless the
/// caller says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        assert!(!v.is_empty(), "a spread of at least one value");
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }
}

/// An anonymous mapping, unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// `len` bytes of private anonymous memory aligned to `align` (a power
    /// of two, at least a page), with `flags` added (MAP_HUGETLB...).
    pub fn anon(len: usize, align: usize, flags: MapFlags) -> io::Result<Mapping> {
        let extra = if align > PAGE && !flags.contains(MapFlags::HUGETLB) { align } else { 0 };
        // SAFETY: a new mapping at an address the kernel picks; nothing
        // else refers to it.
        let base = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                len + extra,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | flags,
            )
        }?
        .cast::<u8>();
        if extra == 0 {
            return Ok(Mapping { ptr: base, len });
        }
        // Trim to an aligned window: unmap the head and the tail.
        let addr = base as usize;
        let start = (addr + align - 1) & !(align - 1);
        let head = start - addr;
        let tail = extra - head;
        // SAFETY: both ranges lie inside the mapping just made and are not
        // used by anyone.
        unsafe {
            if head > 0 {
                mm::munmap(base.cast(), head)?;
            }
            if tail > 0 {
                mm::munmap((start + len) as *mut _, tail)?;
            }
        }
        Ok(Mapping { ptr: start as *mut u8, len })
    }

    pub fn advise(&self, advice: Advice) -> io::Result<()> {
        // SAFETY: the range is this live mapping's; the advice changes how
        // the kernel backs it, not what the program sees.
        unsafe { mm::madvise(self.ptr.cast(), self.len, advice) }.map_err(io::Error::from)
    }

    /// Write one byte in every 4 KiB page, in address order; returns the
    /// nanoseconds it took.
    pub fn touch(&mut self) -> f64 {
        self.touch_every(PAGE)
    }

    /// Write one byte every `stride` bytes (one per page of that size), in
    /// address order; returns the nanoseconds it took.
    pub fn touch_every(&mut self, stride: usize) -> f64 {
        let t = Instant::now();
        let mut off = 0;
        while off < self.len {
            // SAFETY: inside the mapping, which is writable.
            unsafe { self.ptr.add(off).write_volatile(1) };
            off += stride;
        }
        t.elapsed().as_nanos() as f64
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, and
        // borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `anon`, unmapped once.
        let _ = unsafe { mm::munmap(self.ptr.cast(), self.len) };
    }
}

/// Bytes of `AnonHugePages` this process maps now (`/proc/self/smaps_rollup`).
pub fn anon_huge_bytes() -> Option<u64> {
    let text = fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = text.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Which faults to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 4 KiB pages (MADV_NOHUGEPAGE).
    Page4k,
    /// Transparent huge pages (2 MiB-aligned, MADV_HUGEPAGE).
    Thp,
    /// hugetlbfs pages of 2 MiB.
    Hugetlb2m,
    /// hugetlbfs pages of 1 GiB.
    Hugetlb1g,
}

impl FaultKind {
    pub fn page_bytes(self) -> usize {
        match self {
            FaultKind::Page4k => PAGE,
            FaultKind::Thp | FaultKind::Hugetlb2m => HUGE_2M,
            FaultKind::Hugetlb1g => HUGE_1G,
        }
    }
}

/// One repeat's result.
#[derive(Debug, Clone, Copy)]
pub struct FaultSample {
    /// Nanoseconds per fault.
    pub ns_per_fault: f64,
    /// For THP: the share of the mapping the kernel really backed with huge
    /// pages (1 for the others).
    pub huge_share: f64,
}

/// Time the first touch of `bytes` of `kind` memory once, on a fresh
/// mapping.
pub fn fault_once(kind: FaultKind, bytes: usize) -> io::Result<FaultSample> {
    let page = kind.page_bytes();
    let bytes = bytes.div_ceil(page).max(1) * page;
    match kind {
        FaultKind::Page4k => {
            let mut m = Mapping::anon(bytes, PAGE, MapFlags::empty())?;
            m.advise(Advice::LinuxNoHugepage)?;
            let ns = m.touch();
            Ok(FaultSample { ns_per_fault: ns / (bytes / PAGE) as f64, huge_share: 0.0 })
        }
        FaultKind::Thp => {
            let mut m = Mapping::anon(bytes, HUGE_2M, MapFlags::empty())?;
            m.advise(Advice::LinuxHugepage)?;
            let before = anon_huge_bytes().unwrap_or(0);
            let ns = m.touch_every(HUGE_2M);
            let after = anon_huge_bytes().unwrap_or(0);
            let regions = bytes / HUGE_2M;
            // One fault per 2 MiB region: a THP, or one 4 KiB page where
            // the kernel fell back (the share tells which).
            let share = (after.saturating_sub(before) as f64 / bytes as f64).min(1.0);
            Ok(FaultSample { ns_per_fault: ns / regions as f64, huge_share: share })
        }
        FaultKind::Hugetlb2m | FaultKind::Hugetlb1g => {
            let size = if kind == FaultKind::Hugetlb2m { MapFlags::HUGE_2MB } else { MapFlags::HUGE_1GB };
            let mut m = Mapping::anon(bytes, page, MapFlags::HUGETLB | size)?;
            let ns = m.touch_every(page);
            Ok(FaultSample { ns_per_fault: ns / (bytes / page) as f64, huge_share: 1.0 })
        }
    }
}

/// Memset bandwidth over already-faulted memory, in GB/s (10^9 bytes).
pub fn zeroing_gbps(bytes: usize, repeats: usize) -> io::Result<Spread> {
    let mut m = Mapping::anon(bytes, PAGE, MapFlags::empty())?;
    m.touch();
    let mut v = Vec::new();
    for i in 0..=repeats {
        let s = m.as_mut_slice();
        let t = Instant::now();
        s.fill(0);
        std::hint::black_box(&s[bytes / 2]);
        let ns = t.elapsed().as_nanos() as f64;
        if i > 0 {
            v.push(bytes as f64 / ns);
        }
    }
    Ok(Spread::of(v))
}

/// What backs a pointer chase's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    Page4k,
    Thp,
    /// 2 MiB pages from the hugetlb pool.
    Hugetlb2m,
}

/// A dependent random pointer chase over `bytes` of memory with `backing`:
/// nanoseconds per load. Each cache line holds the index of the next; the
/// order is one random cycle through all lines, so no prefetcher helps and
/// every load waits for the one before.
pub fn pointer_chase(bytes: usize, backing: Backing, loads: usize, seed: u64, repeats: usize) -> io::Result<Spread> {
    const LINE: usize = 64;
    let mut m = match backing {
        Backing::Hugetlb2m => {
            Mapping::anon(bytes.div_ceil(HUGE_2M) * HUGE_2M, HUGE_2M, MapFlags::HUGETLB | MapFlags::HUGE_2MB)?
        }
        _ => Mapping::anon(bytes, HUGE_2M, MapFlags::empty())?,
    };
    match backing {
        Backing::Page4k => m.advise(Advice::LinuxNoHugepage)?,
        Backing::Thp => m.advise(Advice::LinuxHugepage)?,
        Backing::Hugetlb2m => {}
    }
    let lines = bytes / LINE;
    // A random cyclic order (Sattolo's shuffle), from SplitMix64.
    let mut order: Vec<u32> = (0..lines as u32).collect();
    for i in (1..lines).rev() {
        let j = (mix64(seed ^ i as u64) % i as u64) as usize;
        order.swap(i, j);
    }
    let s = m.as_mut_slice();
    for w in order.windows(2) {
        let at = w[0] as usize * LINE;
        s[at..at + 8].copy_from_slice(&u64::from(w[1]).to_ne_bytes());
    }
    let (last, first) = (order[lines - 1] as usize * LINE, u64::from(order[0]));
    s[last..last + 8].copy_from_slice(&first.to_ne_bytes());
    drop(order);
    let base = s.as_ptr();
    let chase = |n: usize, mut at: u64| {
        for _ in 0..n {
            // SAFETY: every stored index is a line of the buffer.
            at = unsafe { base.add(at as usize * LINE).cast::<u64>().read_volatile() };
        }
        at
    };
    // Warm the TLB and caches a little, then time each repeat.
    let mut at = chase(loads / 10, 0);
    let mut v = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        at = std::hint::black_box(chase(loads, at));
        v.push(t.elapsed().as_nanos() as f64 / loads as f64);
    }
    Ok(Spread::of(v))
}

/// Copying one 4 KiB page to another, between random pages of two faulted
/// buffers of `bytes` each (so the copies mostly miss the caches, as a COW
/// break's source page does): nanoseconds per copy.
pub fn copy_4k_ns(bytes: usize, copies: usize, seed: u64, repeats: usize) -> io::Result<Spread> {
    let mut a = Mapping::anon(bytes, PAGE, MapFlags::empty())?;
    let mut b = Mapping::anon(bytes, PAGE, MapFlags::empty())?;
    a.touch();
    b.touch();
    let pages = (bytes / PAGE) as u64;
    let (src, dst) = (a.as_mut_slice(), b.as_mut_slice());
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for _ in 0..copies {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (i, j) = ((x % pages) as usize * PAGE, ((x >> 32) % pages) as usize * PAGE);
            dst[j..j + PAGE].copy_from_slice(&src[i..i + PAGE]);
        }
        std::hint::black_box(&dst[0]);
        v.push(t.elapsed().as_nanos() as f64 / copies as f64);
    }
    Ok(Spread::of(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(Spread::of(vec![3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(Spread::of(vec![4.0, 1.0, 2.0, 3.0]), Spread { median: 2.5, min: 1.0, max: 4.0 });
    }

    #[test]
    fn aligned_mappings_are_aligned_and_usable() {
        let mut m = Mapping::anon(3 * HUGE_2M, HUGE_2M, MapFlags::empty()).unwrap();
        assert_eq!(m.ptr as usize % HUGE_2M, 0);
        assert!(m.touch() > 0.0);
        assert!(m.as_mut_slice().iter().step_by(PAGE).all(|&b| b == 1));
    }
}
