//! `overcommit profile`: what live guests really do, measured from the
//! host and fitted to a workload the model plays.
//!
//! For each guest (a QEMU process; its guest RAM is the mapping of each
//! memory backend's size) it measures, in lockstep over the run:
//! - the working set over time, WSS(Δt) for each interval, through the
//!   best mechanism the host has ([`mechanism`]: idle page tracking,
//!   DAMON, or `clear_refs` with smaps `Referenced`);
//! - the pages written within each interval (PAGEMAP_SCAN where the VMM
//!   registered guest RAM for async write protection and the user allows
//!   it, soft-dirty, or content changes on a sample);
//! - its content on a sample of present pages chosen by offset
//!   ([`content`]): zero, shared with another profiled guest, duplicated;
//! - its state: resident, swapped, THP, KSM-merged, and the balloon and
//!   the guest's free memory where libvirt reports them;
//!
//! then fits the working set, touch rate, pattern and write share whose
//! expected curves match ([`fit`]). It measures its own CPU time too.
//! Reading the guest is not free of effects, and the output says which:
//! resetting accessed bits makes pages look cold to the host's reclaim
//! for a moment, and soft-dirty clearing write-protects pages, so the
//! guest's next write to each faults.

pub mod child;
pub mod content;
pub mod damon;
pub mod fit;
pub mod idle;
pub mod mechanism;
pub mod pagemap_scan;
pub mod procfs;
pub mod write;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use content::{Content, Seen};
use mechanism::{WriteMechanism, WssMechanism};
use procfs::{ClearRefs, Mapping};

/// A guest to profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub pid: u32,
    /// Its memory backends' sizes, to find their mappings (empty: the
    /// largest anonymous mapping is taken).
    pub backends: Vec<u64>,
    /// The libvirt domain and connection, when libvirt runs it (for the
    /// balloon and the guest's free memory).
    pub libvirt: Option<(String, String)>,
}

/// How to profile.
#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    /// The intervals Δt of the working-set curve, ascending.
    pub intervals: Vec<Duration>,
    /// Share of pages read for content (and for writes and idle pages).
    pub sample: f64,
    pub seed: u64,
    /// Where /proc and /sys are (`/`).
    pub root: PathBuf,
    /// Count writes with PAGEMAP_SCAN where the VMM registered guest RAM
    /// for asynchronous write protection. Off unless asked: re-protecting
    /// the pages erases the VMM's own record of what was written.
    pub pagemap_scan: bool,
}

/// What a guest holds now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct State {
    pub resident_bytes: u64,
    pub swapped_bytes: u64,
    pub thp_bytes: u64,
    pub ksm_merged_bytes: u64,
    /// `<memory>` − `actual` of `virsh dommemstat`.
    pub balloon_bytes: Option<u64>,
    /// The guest's own free memory (`unused`) and what it could use
    /// (`usable`), from the balloon driver's statistics.
    pub guest_free_bytes: Option<u64>,
    pub guest_usable_bytes: Option<u64>,
}

/// The workload fitted to a guest's curves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fitted {
    pub pattern: String,
    pub working_set_bytes: u64,
    pub touch_rate: f64,
    /// Share of touches that write (`None`: no write curve).
    pub write: Option<f64>,
    /// Which part of each content class (shared, zero, duplicate) lies in
    /// the working set at the end of the profile, from how much of it the
    /// guest's writes changed (`None`: too few pages of the class, or no
    /// writes to tell by).
    pub in_working_set: [Option<content::Share>; 3],
    pub residual: f64,
    pub fits_well: bool,
    /// Every family tried: pattern and residual.
    pub candidates: Vec<(String, f64)>,
}

/// One guest's profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestProfile {
    pub name: String,
    pub pid: u32,
    pub ram_bytes: u64,
    /// The unit the host saw accesses in, in 4 KiB pages (512 where guest
    /// RAM is mostly on transparent huge pages: one accessed bit each).
    pub unit_pages: u64,
    /// (Δt in seconds, bytes touched within it), averaged over passes.
    pub wss: Vec<(f64, u64)>,
    /// (Δt, bytes written within it).
    pub written: Vec<(f64, u64)>,
    pub passes: u32,
    pub content: Option<Content>,
    pub state: State,
    pub fit: Option<Fitted>,
    pub notes: Vec<String>,
}

/// The profiler's own cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub wall_s: f64,
    pub cpu_s: f64,
    /// CPU time over wall time: the share of one core.
    pub share_of_one_core: f64,
    /// Pages read through /proc/PID/mem.
    pub pages_read: u64,
    /// Accessed-bit resets and soft-dirty clears done to each guest.
    pub clears: u64,
}

/// The whole profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub mechanism: WssMechanism,
    pub mechanism_sees: String,
    pub writes: WriteMechanism,
    pub writes_see: String,
    /// What profiling did to the guests.
    pub side_effects: Vec<String>,
    pub duration_s: f64,
    pub intervals_s: Vec<f64>,
    pub sample: f64,
    pub guests: Vec<GuestProfile>,
    /// Guests that could not be profiled (or went away), and why.
    pub skipped: Vec<String>,
    pub cost: Cost,
}

/// Why profiling could not start at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error("nothing to profile: {0}")]
    NoTarget(String),
    #[error("{0}")]
    Permission(String),
    #[error("bad option: {0}")]
    Usage(String),
}

/// This process's CPU time (user + system), in seconds.
fn own_cpu_s() -> f64 {
    let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
    procfs::cpu_ticks(Path::new("/"), std::process::id()).map_or(0.0, |t| t as f64 / hz)
}

/// A guest being measured.
struct Live {
    target: Target,
    ram: Vec<Mapping>,
    /// Sampled pages: virtual addresses, and their offsets in guest RAM
    /// (pages from its start).
    sample: Vec<u64>,
    sample_offsets: Vec<u64>,
    /// The write sample (content changes): every k-th page of `sample`,
    /// at most [`WRITE_SAMPLE_MAX`].
    write_sample: Vec<u64>,
    /// Their offsets in guest RAM.
    write_offsets: Vec<u64>,
    unit: u64,
    wss_sum: Vec<f64>,
    written_sum: Vec<f64>,
    /// Passes that measured the working set, and the writes.
    passes: u32,
    write_passes: u32,
    gone: Option<String>,
    notes: Vec<String>,
}

/// Pages of the write sample at most (content changes): 2,048 pages is
/// 8 MiB read per interval, and a share known within ±2.2 points (95%).
const WRITE_SAMPLE_MAX: usize = 2048;

/// Profile `targets`.
pub fn profile(targets: &[Target], opts: &Options) -> Result<Report, ProfileError> {
    if targets.is_empty() {
        return Err(ProfileError::NoTarget("no QEMU process given or found".into()));
    }
    if opts.intervals.is_empty() {
        return Err(ProfileError::Usage("--intervals needs at least one interval".into()));
    }
    if !(opts.sample > 0.0 && opts.sample <= 1.0) {
        return Err(ProfileError::Usage(format!("--sample {} is not a share in (0, 1]", opts.sample)));
    }
    let root = &opts.root;
    let started = Instant::now();
    let cpu0 = own_cpu_s();
    let avail = mechanism::available(root);
    let mech = mechanism::choose(&avail);
    let mut cost = Cost::default();
    let mut skipped = Vec::new();
    let mut live: Vec<Live> = Vec::new();
    for t in targets {
        match procfs::smaps(root, t.pid) {
            Ok(maps) => {
                let ram = procfs::guest_ram(&maps, &t.backends);
                if ram.is_empty() {
                    skipped.push(format!("{} (pid {}): no guest RAM mapping found", t.name, t.pid));
                    continue;
                }
                let rss: u64 = ram.iter().map(|m| m.rss).sum();
                let huge: u64 = ram.iter().map(|m| m.anon_huge).sum();
                // On transparent huge pages every mechanism sees 2 MiB at a
                // time: clear_refs and smaps the PMD's accessed bit, idle
                // tracking the head page's, DAMON a PMD-young check.
                let unit = if rss > 0 && huge * 2 >= rss { 512 } else { 1 };
                let (mut sample, mut sample_offsets) = (Vec::new(), Vec::new());
                let mut offset = 0u64;
                for m in &ram {
                    for page in 0..m.size() / 4096 {
                        if content::sampled(offset + page, opts.sample, opts.seed) {
                            sample.push(m.start + page * 4096);
                            sample_offsets.push(offset + page);
                        }
                    }
                    offset += m.size() / 4096;
                }
                // Every k-th sampled page, so the write sample spreads over
                // all of guest RAM as the sample does.
                let stride = sample.len().div_ceil(WRITE_SAMPLE_MAX).max(1);
                let write_sample = sample.iter().copied().step_by(stride).collect();
                let write_offsets = sample_offsets.iter().copied().step_by(stride).collect();
                let n = opts.intervals.len();
                live.push(Live {
                    target: t.clone(),
                    ram,
                    sample,
                    sample_offsets,
                    write_sample,
                    write_offsets,
                    unit,
                    wss_sum: vec![0.0; n],
                    written_sum: vec![0.0; n],
                    passes: 0,
                    write_passes: 0,
                    gone: None,
                    notes: Vec::new(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ProfileError::Permission(format!(
                    "reading /proc/{}/smaps of {}: {e}; profiling another user's process needs root (or ptrace rights over it)",
                    t.pid, t.name
                )));
            }
            Err(e) => skipped.push(format!("{} (pid {}): went away before profiling ({e})", t.name, t.pid)),
        }
    }
    if live.is_empty() {
        return Err(ProfileError::NoTarget(skipped.join("; ")));
    }
    let all_wp_async = live.iter().all(|l| wp_async_everywhere(root, l.target.pid, &l.ram));
    let writes = mechanism::choose_writes(all_wp_async && opts.pagemap_scan, mechanism::soft_dirty_works());
    if all_wp_async && !opts.pagemap_scan {
        for l in &mut live {
            l.notes.push(
                "its VMM registered guest RAM for asynchronous write protection: --pagemap-scan would count every \
                 written page exactly, at the price of the VMM's own record of written pages"
                    .into(),
            );
        }
    }
    let mut intervals = opts.intervals.clone();
    intervals.sort();
    let longest = *intervals.last().expect("checked non-empty");
    if mech == WssMechanism::Damon {
        let pids: Vec<u32> = live.iter().map(|l| l.target.pid).collect();
        damon::start(root, &pids, 5_000, intervals[0].as_micros() as u64)
            .map_err(|e| ProfileError::Permission(format!("starting DAMON: {e}")))?;
    }
    // Passes of the longest interval, as many as the duration holds (at
    // least one). Reading pages through /proc/PID/mem marks them accessed
    // (GUP touches them), so where writes are seen by reading content the
    // passes alternate: one measures the working set, the next the writes.
    let passes = ((opts.duration.as_secs_f64() / longest.as_secs_f64()).floor() as u32).max(1);
    // The write sample (every k-th page of the content sample, at most
    // WRITE_SAMPLE_MAX) read before the passes too: how much of each
    // content class the guest's writes change over the profile says where
    // the class lies (see `content::decay`).
    let first = read_all_samples(root, &mut live, &mut cost, true);
    let first_at = Instant::now();
    let alternate = writes == WriteMechanism::ContentChange;
    for k in 0..passes {
        if live.iter().all(|l| l.gone.is_some()) {
            break;
        }
        let (wss, wr) = if alternate { (k % 2 == 0, k % 2 == 1) } else { (true, true) };
        one_pass(&mut live, &intervals, mech, writes, (wss, wr), opts, &mut cost);
    }
    if alternate && passes < 2 {
        for l in &mut live {
            l.notes.push(format!(
                "writes were not measured: reading pages to see their content changes would mark them accessed, so \
                 writes take a pass of their own; give --duration at least twice the longest interval ({:.0} s)",
                2.0 * longest.as_secs_f64()
            ));
        }
    }
    if mech == WssMechanism::Damon {
        damon::stop(root, live.len());
    }
    // Content, on the sample of present pages.
    let over_s = first_at.elapsed().as_secs_f64();
    let samples = read_all_samples(root, &mut live, &mut cost, false);
    let shares = content::shares(&samples, opts.sample);
    let decays = content::decay(&first, &samples, opts.sample);
    let mut guests = Vec::new();
    for ((l, c), d) in live.into_iter().zip(shares).zip(decays) {
        if let Some(why) = &l.gone {
            skipped.push(format!("{} (pid {}): {why}", l.target.name, l.target.pid));
            continue;
        }
        let dts: Vec<f64> = intervals.iter().map(Duration::as_secs_f64).collect();
        guests.push(finish(l, c, (d, over_s), &dts, writes, root));
    }
    cost.wall_s = started.elapsed().as_secs_f64();
    cost.cpu_s = own_cpu_s() - cpu0;
    cost.share_of_one_core = if cost.wall_s > 0.0 { cost.cpu_s / cost.wall_s } else { 0.0 };
    let mut side_effects = vec![format!(
        "{}: each pass resets the accessed bits of the guest's memory, so for a moment its pages look cold to \
         the host's reclaim (and to KSM's and THP's scanners)",
        match mech {
            WssMechanism::ClearRefs => "clear_refs",
            WssMechanism::IdlePage => "idle page marking",
            WssMechanism::Damon => "DAMON sampling",
        }
    )];
    side_effects.push(match writes {
        WriteMechanism::PagemapScan => "PAGEMAP_SCAN write-protects the guest's RAM each pass: its next write to each page takes a minor fault the kernel resolves itself, huge mappings are split, and the VMM's own record of written pages (for a snapshot or migration) is erased".to_string(),
        WriteMechanism::SoftDirty => "soft-dirty clearing write-protects the guest's pages each pass: its next write to each takes a fault".to_string(),
        WriteMechanism::ContentChange => format!(
            "content sampling reads {} present pages through /proc/PID/mem (only pages present when looked up; one reclaimed between the look-up and the read is brought back in)",
            cost.pages_read
        ),
    });
    Ok(Report {
        mechanism: mech,
        mechanism_sees: mech.sees().to_string(),
        writes,
        writes_see: writes.sees().to_string(),
        side_effects,
        duration_s: cost.wall_s,
        intervals_s: intervals.iter().map(Duration::as_secs_f64).collect(),
        sample: opts.sample,
        guests,
        skipped,
        cost,
    })
}

/// Pagemap entries further apart than this are read one by one, nearer
/// ones in one window: about where a window's extra entries cost as much
/// as a read of its own (see [`procfs::Pagemap::entries`]), a few hundred
/// on THP-backed guest RAM (`unit` 512), a dozen or two on 4 KiB pages.
fn pagemap_gap(unit: u64) -> u64 {
    if unit >= 512 { 512 } else { 16 }
}

/// Hashes of the pages at `addrs` that are present (`None` for a page
/// not present); `unit` as the guest's [`Live::unit`].
///
/// Pages are read through /proc/PID/mem, one `pread` each (the sample is
/// scattered). `process_vm_readv` would take many pages a call, but it
/// pins them (`FOLL_PIN`), and a read pin of an anonymous page that is
/// not exclusive to the process unshares it (mm/gup.c,
/// `gup_must_unshare`): it would break every KSM merge it read, and copy
/// every page a fork shares. /proc/PID/mem only gets the page.
fn hash_pages(root: &Path, pid: u32, addrs: &[u64], unit: u64, cost: &mut Cost) -> std::io::Result<Vec<Option<Seen>>> {
    let pm = procfs::Pagemap::open(root, pid)?;
    let mem = procfs::Mem::open(root, pid)?;
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(addrs.len());
    let zero = procfs::ZeroFrames::here();
    for (&a, e) in addrs.iter().zip(pm.entries(addrs, pagemap_gap(unit))?) {
        // A page mapped to the shared zero page holds no memory: it is
        // not among the pages in use (nor in Rss).
        if e.present() && !e.swapped() && !zero.is_zero(e.pfn()) {
            mem.page(a, &mut buf)?;
            cost.pages_read += 1;
            out.push(Some(content::seen(&buf)));
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

/// Every guest's content sample, or with `write_only` its write sample
/// (empty for one gone; one that goes while its pages are read is marked
/// gone).
fn read_all_samples(root: &Path, live: &mut [Live], cost: &mut Cost, write_only: bool) -> Vec<Vec<(u64, Seen)>> {
    let mut samples = Vec::with_capacity(live.len());
    for l in live.iter_mut() {
        if l.gone.is_some() {
            samples.push(Vec::new());
            continue;
        }
        let (addrs, offsets) =
            if write_only { (&l.write_sample, &l.write_offsets) } else { (&l.sample, &l.sample_offsets) };
        match read_sample(root, l.target.pid, addrs, offsets, l.unit, cost) {
            Ok(s) => samples.push(s),
            Err(e) => {
                l.gone = Some(format!("exited while its pages were read ({e})"));
                samples.push(Vec::new());
            }
        }
    }
    samples
}

/// Read the content sample of a guest: what each present page holds, by
/// its offset in guest RAM.
fn read_sample(
    root: &Path,
    pid: u32,
    addrs: &[u64],
    offsets: &[u64],
    unit: u64,
    cost: &mut Cost,
) -> std::io::Result<Vec<(u64, Seen)>> {
    let seen = hash_pages(root, pid, addrs, unit, cost)?;
    Ok(offsets.iter().zip(seen).filter_map(|(&o, v)| v.map(|v| (o, v))).collect())
}

/// Whether every page of the guest's RAM mappings is registered for
/// asynchronous write protection (`PAGE_IS_WPALLOWED`), so that
/// `PAGEMAP_SCAN` reports its writes.
fn wp_async_everywhere(root: &Path, pid: u32, ram: &[Mapping]) -> bool {
    let Ok(pm) = std::fs::File::open(procfs::path(root, pid, "pagemap")) else { return false };
    ram.iter().all(|m| {
        pagemap_scan::count(&pm, m.start, m.end, pagemap_scan::PAGE_IS_WPALLOWED)
            .is_ok_and(|n| n == (m.end - m.start) / 4096)
    })
}

/// Pages of the guest's RAM written since they were last protected.
fn pages_written(root: &Path, pid: u32, ram: &[Mapping]) -> std::io::Result<u64> {
    let pm = std::fs::File::open(procfs::path(root, pid, "pagemap"))?;
    ram.iter().map(|m| pagemap_scan::count(&pm, m.start, m.end, pagemap_scan::PAGE_IS_WRITTEN)).sum()
}

/// Write-protect the guest's RAM again.
fn protect_all(root: &Path, pid: u32, ram: &[Mapping]) -> std::io::Result<()> {
    let pm = std::fs::File::open(procfs::path(root, pid, "pagemap"))?;
    ram.iter().try_for_each(|m| pagemap_scan::protect(&pm, m.start, m.end))
}

/// One pass: reset the bits, then at each Δt count what was touched
/// and, or, written since (`what`: the working set, the writes).
fn one_pass(
    live: &mut [Live],
    intervals: &[Duration],
    mech: WssMechanism,
    writes: WriteMechanism,
    what: (bool, bool),
    opts: &Options,
    cost: &mut Cost,
) {
    let root = &opts.root;
    let (wss_on, writes_on) = what;
    // Per guest: idle-page frames (sample) and write baselines.
    let mut frames: Vec<Vec<u64>> = vec![Vec::new(); live.len()];
    let mut baseline: Vec<Vec<Option<Seen>>> = vec![Vec::new(); live.len()];
    // Each guest's Δt runs from its own reset: guests are reset one after
    // another and read in the same order, each at its reset + Δt.
    let mut reset_at = vec![Instant::now(); live.len()];
    for (i, l) in live.iter_mut().enumerate() {
        if l.gone.is_some() {
            continue;
        }
        let pid = l.target.pid;
        let mut reset = Ok(());
        if writes_on {
            reset = reset.and_then(|()| match writes {
                WriteMechanism::PagemapScan => protect_all(root, pid, &l.ram),
                WriteMechanism::SoftDirty => procfs::clear_refs(root, pid, ClearRefs::SoftDirty),
                WriteMechanism::ContentChange => {
                    baseline[i] = hash_pages(root, pid, &l.write_sample, l.unit, cost)?;
                    Ok(())
                }
            });
        }
        if wss_on {
            reset = reset.and_then(|()| match mech {
                WssMechanism::ClearRefs => procfs::clear_refs(root, pid, ClearRefs::Referenced),
                WssMechanism::IdlePage => idle_frames(root, pid, &l.sample).and_then(|f| {
                    frames[i] = mark_sample_idle(root, f)?;
                    Ok(())
                }),
                WssMechanism::Damon => Ok(()),
            });
        }
        cost.clears += 1;
        reset_at[i] = Instant::now();
        if let Err(e) = reset {
            l.gone = Some(format!("exited during the profile ({e})"));
        }
    }
    for (k, dt) in intervals.iter().enumerate() {
        if wss_on && mech == WssMechanism::Damon {
            let _ = damon::set_aggregation(root, live.len(), dt.as_micros() as u64);
        }
        for (i, l) in live.iter_mut().enumerate() {
            if l.gone.is_some() {
                continue;
            }
            std::thread::sleep(dt.saturating_sub(reset_at[i].elapsed()));
            let pid = l.target.pid;
            // Shares of a uniform sample stand for the same shares of all
            // guest RAM.
            let ram_bytes = l.ram.iter().map(Mapping::size).sum::<u64>() as f64;
            let per_write_page = ram_bytes / l.write_sample.len().max(1) as f64;
            let per_sampled_page = ram_bytes / l.sample.len().max(1) as f64;
            let touched = if !wss_on {
                Ok(None)
            } else {
                match mech {
                    WssMechanism::ClearRefs => procfs::smaps(root, pid).map(|maps| {
                        let ram = procfs::guest_ram(&maps, &l.target.backends);
                        Some(ram.iter().map(|m| m.referenced).sum::<u64>() as f64)
                    }),
                    WssMechanism::IdlePage => idle::still_idle(root, &frames[i]).map(|idle| {
                        let busy = idle.iter().filter(|b| !**b).count() as f64;
                        Some(busy * per_sampled_page)
                    }),
                    WssMechanism::Damon => damon::regions(root, i).map(|r| {
                        let within: Vec<(u64, u64)> = l.ram.iter().map(|m| (m.start, m.end)).collect();
                        Some(damon::accessed_bytes(&r, &within) as f64)
                    }),
                }
            };
            let written = if !writes_on {
                Ok(None)
            } else {
                match writes {
                    WriteMechanism::PagemapScan => pages_written(root, pid, &l.ram).map(|n| Some(n as f64 * 4096.0)),
                    WriteMechanism::SoftDirty => procfs::Pagemap::open(root, pid).and_then(|pm| {
                        let mut dirty = 0u64;
                        for &a in &l.write_sample {
                            dirty += u64::from(pm.entry(a)?.soft_dirty());
                        }
                        Ok(Some(dirty as f64 * per_write_page))
                    }),
                    WriteMechanism::ContentChange => hash_pages(root, pid, &l.write_sample, l.unit, cost).map(|now| {
                        let changed = now
                            .iter()
                            .zip(&baseline[i])
                            .filter(|(a, b)| matches!((a, b), (Some(x), Some(y)) if x != y))
                            .count();
                        Some(changed as f64 * per_write_page)
                    }),
                }
            };
            match (touched, written) {
                (Ok(t), Ok(w)) => {
                    if let Some(t) = t {
                        l.wss_sum[k] += t;
                    }
                    if let Some(w) = w {
                        l.written_sum[k] += w;
                    }
                }
                (Err(e), _) | (_, Err(e)) => l.gone = Some(format!("exited during the profile ({e})")),
            }
        }
    }
    for l in live.iter_mut().filter(|l| l.gone.is_none()) {
        if wss_on {
            l.passes += 1;
        }
        if writes_on {
            l.write_passes += 1;
        }
    }
}

/// Page frames of the sampled pages that are present (for idle page
/// tracking), each the frame that carries its idle flag.
fn idle_frames(root: &Path, pid: u32, addrs: &[u64]) -> std::io::Result<Vec<u64>> {
    let pm = procfs::Pagemap::open(root, pid)?;
    let flags = idle::PageFlags::open(root)?;
    let mut out = Vec::with_capacity(addrs.len());
    for &a in addrs {
        let e = pm.entry(a)?;
        if e.present() && e.pfn() != 0 {
            out.push(flags.head(e.pfn()));
        }
    }
    Ok(out)
}

/// Mark the frames of the sampled pages idle, and keep, one per sampled
/// page (a busy THP counts for every sampled page in it, as the pages the
/// sample stands for were busy), those that read back idle at once:
/// frames off the LRU (the zero page, the huge zero page, hugetlb pages)
/// are never marked and would look busy for ever.
fn mark_sample_idle(root: &Path, frames: Vec<u64>) -> std::io::Result<Vec<u64>> {
    let mut unique = frames.clone();
    unique.sort_unstable();
    unique.dedup();
    idle::mark_idle(root, &unique)?;
    let marked: std::collections::BTreeSet<u64> =
        unique.iter().zip(idle::still_idle(root, &unique)?).filter(|(_, idle)| *idle).map(|(f, _)| *f).collect();
    Ok(frames.into_iter().filter(|f| marked.contains(f)).collect())
}

/// Curves, state and fit of a guest that was measured to the end.
fn finish(
    l: Live,
    content: Content,
    decay: ([content::ClassDecay; 3], f64),
    intervals: &[f64],
    writes: WriteMechanism,
    root: &Path,
) -> GuestProfile {
    let passes = f64::from(l.passes.max(1));
    let write_passes = f64::from(l.write_passes.max(1));
    let ram_bytes: u64 = l.ram.iter().map(Mapping::size).sum();
    let wss: Vec<(f64, u64)> =
        intervals.iter().zip(&l.wss_sum).map(|(&dt, &s)| (dt, (s / passes).round() as u64)).collect();
    let written: Vec<(f64, u64)> = if l.write_passes == 0 {
        Vec::new()
    } else {
        intervals.iter().zip(&l.written_sum).map(|(&dt, &s)| (dt, (s / write_passes).round() as u64)).collect()
    };
    let mut state = State::default();
    if let Ok(h) = crate::running::held(root, l.target.pid, &l.target.backends) {
        state.resident_bytes = h.resident;
        state.swapped_bytes = h.swapped;
        state.thp_bytes = h.thp;
        state.ksm_merged_bytes = h.ksm_merged;
    }
    if let Some((domain, uri)) = &l.target.libvirt
        && let Ok(text) = crate::running::virsh(uri, &["dommemstat", domain])
    {
        let field = |name: &str| {
            text.lines().find_map(|line| {
                let mut f = line.split_whitespace();
                (f.next()? == name).then(|| f.next()?.parse::<u64>().ok().map(|k| k * 1024))?
            })
        };
        state.balloon_bytes = field("actual").map(|a| ram_bytes.saturating_sub(a));
        state.guest_free_bytes = field("unused");
        state.guest_usable_bytes = field("usable");
    }
    let mut notes = l.notes;
    let points: Vec<fit::Point> = wss.iter().map(|&(dt, b)| (dt, b as f64 / 4096.0)).collect();
    let on_hugetlb = l.ram.iter().any(|m| m.hugetlb > 0);
    if on_hugetlb {
        // clear_refs and smaps skip hugetlb VMAs, idle tracking cannot
        // mark pages off the LRU, and soft-dirty is never cleared on them.
        notes.push(
            "guest RAM is on hugetlbfs pages, whose accessed and dirty bits none of the kernel's interfaces lets \
             the profiler read or reset: its working set and writes are not measured (its content is)"
                .into(),
        );
    }
    let fitted = if !on_hugetlb && points.iter().any(|p| p.1 > 0.0) {
        let unit = l.unit as f64;
        let choice = fit::choose(&points, ram_bytes as f64 / 4096.0, unit);
        // Soft-dirty marks a THP's PMD, 2 MiB at once; PAGEMAP_SCAN's
        // write to a protected THP splits its mapping first, and content
        // changes are read per page: 4 KiB.
        let write_unit = if writes == WriteMechanism::SoftDirty { unit } else { 1.0 };
        let wpoints: Vec<fit::Point> = written.iter().map(|&(dt, b)| (dt, b as f64 / 4096.0)).collect();
        let write = fit::write_share(&choice.best, &wpoints, write_unit);
        // The share of the working set's pages the fitted workload writes
        // over the time between the two content reads.
        let (classes, over_s) = decay;
        let best = &choice.best;
        let written_share = write
            .filter(|w| *w > 0.0)
            .map(|w| fit::expected(&best.pattern, best.pages, best.rate * w, over_s, 1.0) / best.pages.max(1.0));
        let in_working_set = classes.map(|d| {
            let written = written_share?;
            let changed = d.share()?;
            if d.pages < 20 || written < 0.02 {
                return None;
            }
            // The interval: Wilson's on the class's pages, carried through
            // the (increasing) map from changed share to working-set share.
            let w = content::Share::of((changed * d.pages as f64).round() as u64, d.pages);
            Some(content::Share {
                share: content::in_working_set(changed, written),
                low: content::in_working_set(w.low, written),
                high: content::in_working_set(w.high, written),
            })
        });
        if !choice.fits_well {
            notes.push(format!(
                "no pattern fits the measured working-set curve well (best residual {:.2}): take the workload as a rough guide",
                choice.best.residual
            ));
        }
        Some(Fitted {
            pattern: choice.best.pattern.to_string(),
            working_set_bytes: (choice.best.pages * 4096.0).round() as u64,
            touch_rate: choice.best.rate,
            write,
            in_working_set,
            residual: choice.best.residual,
            fits_well: choice.fits_well,
            candidates: choice.candidates.iter().map(|c| (c.pattern.to_string(), c.residual)).collect(),
        })
    } else {
        notes.push(
            "no page was seen touched: nothing to fit (an idle guest, or accesses this mechanism cannot see)".into(),
        );
        None
    };
    if l.unit > 1 {
        notes.push(
            "guest RAM is mostly on transparent huge pages: the host sees accesses in 2 MiB units, and the fit models that"
                .into(),
        );
    }
    GuestProfile {
        name: l.target.name,
        pid: l.target.pid,
        ram_bytes,
        unit_pages: l.unit,
        wss,
        written,
        passes: l.passes,
        content: Some(content),
        state,
        fit: fitted,
        notes,
    }
}

/// The guests to profile: the QEMU processes `pids`, every QEMU process
/// (`all`), or the libvirt `domains` (matched to their processes by
/// QEMU's `-name guest=`), each with its memory backends read from its
/// command line.
pub fn targets(
    root: &Path,
    pids: &[u32],
    all: bool,
    domains: &[String],
    uri: &str,
) -> Result<Vec<Target>, ProfileError> {
    use crate::running;
    let procs = running::qemu_processes(root);
    let backends = |p: &running::QemuProcess| -> Vec<u64> {
        let words: Vec<String> = p.argv.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
        crate::scenario::qemu::parse(&words.join(" "))
            .map(|q| q.guest.regions.iter().map(|r| r.capacity.bytes()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for &pid in pids {
        match procs.iter().find(|p| p.pid == pid) {
            Some(p) => out.push(Target { name: p.name.clone(), pid, backends: backends(p), libvirt: None }),
            // Any other process is profiled too, its largest anonymous
            // mapping taken for its memory.
            None => match std::fs::read_to_string(procfs::path(root, pid, "comm")) {
                Ok(comm) => out.push(Target {
                    name: format!("{}-{pid}", comm.trim()),
                    pid,
                    backends: Vec::new(),
                    libvirt: None,
                }),
                Err(_) => return Err(ProfileError::NoTarget(format!("there is no process {pid}"))),
            },
        }
    }
    if all {
        for p in procs.iter().filter(|p| !pids.contains(&p.pid)) {
            out.push(Target { name: p.name.clone(), pid: p.pid, backends: backends(p), libvirt: None });
        }
    }
    for d in domains {
        match procs.iter().find(|p| p.name == *d) {
            Some(p) => out.push(Target {
                name: d.clone(),
                pid: p.pid,
                backends: backends(p),
                libvirt: Some((d.clone(), uri.to_string())),
            }),
            None => {
                return Err(ProfileError::NoTarget(format!(
                    "libvirt domain {d}: no running QEMU process with -name guest={d} (is it running, on this host?)"
                )));
            }
        }
    }
    if out.is_empty() {
        let why = if all {
            "--all-qemu found no running qemu-system-* process on this host"
        } else {
            "give PIDs, --all-qemu or --libvirt DOMAIN"
        };
        return Err(ProfileError::NoTarget(why.into()));
    }
    Ok(out)
}
