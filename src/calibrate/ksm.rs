//! ksmd's CPU time per page scanned, measured on this host.
//!
//! The model charges ksmd a page's checksum and every level of the trees
//! its searches go down (`Costs::ksm_checksum_page_ns`, the per-level
//! figures); the run derives the unstable tree's level from what is
//! measured here (`ksm_unstable_level_ns`). Here ksmd scans a private test region and we
//! divide the CPU time the kernel thread used (`/proc/<ksmd>/schedstat`,
//! first field: nanoseconds on a CPU) by the pages it scanned
//! (`/sys/kernel/mm/ksm/pages_scanned`) over the same window.
//!
//! The region is filled with distinct pages, the common case in a guest:
//! each scan checksums the page and searches the stable and unstable
//! trees, and nothing merges. While measuring, the advisor is off (it
//! would move `pages_to_scan`) and `smart_scan` is off (it skips pages that
//! did not merge before, which the model does not do); every KSM knob is
//! put back as it was when the measurement ends, fails or is dropped.
//!
//! Needs root (the knobs are root-writable) and a kernel with KSM; other
//! mergeable memory on the host is scanned too and counted alike.

use std::fs;
use std::path::{Path, PathBuf};

use super::restore::Settings;
use std::time::{Duration, Instant};

const KSM: &str = "/sys/kernel/mm/ksm";

/// One measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KsmFigure {
    /// ksmd CPU nanoseconds per page scanned: median, min and max over the
    /// windows.
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub windows: usize,
    pub pages_scanned: u64,
    pub region_bytes: u64,
    /// `pages_to_scan` and `sleep_millisecs` while measuring.
    pub pages_to_scan: u64,
    pub sleep_millisecs: u64,
    /// ksmd's pace at 100 pages per 20 ms: the wall time of a round; the
    /// wall time a page adds to a round (from the same at 1000 pages per
    /// 20 ms: schedstat's CPU per page above also carries each wake-up's
    /// own CPU, spread over the batch); and what the sleep took beyond
    /// the whole jiffies it asked for (the round less the jiffies and 100
    /// pages at `page_ns`).
    pub round_ns: f64,
    pub page_ns: f64,
    pub wake_ns: f64,
    /// A round at 1000 pages per 10 ms, timed the same way: what the
    /// figures above must predict.
    pub round_1000_per_10ms_ns: f64,
    /// One jiffy (1 s / CONFIG_HZ, from the kernel's configuration).
    pub jiffy_ns: f64,
    /// ksmd CPU nanoseconds per page over its first full scan of the
    /// fresh region, where it only checksums each page (first sight).
    pub checksum_ns: f64,
    /// ksmd CPU nanoseconds per page smart scan skips (`None` where the
    /// kernel has no smart scan, before 6.7).
    pub skipped_ns: Option<f64>,
}

/// The wall time of one of ksmd's rounds at `pages_to_scan` pages per
/// `sleep_ms`, over 3 s after half a second to settle into it (the knobs
/// are `settings`' to put back).
fn round(settings: &mut Settings, pages_to_scan: u64, sleep_ms: u64) -> Result<f64, String> {
    let dir = Path::new(KSM);
    settings.set(&dir.join("pages_to_scan"), &pages_to_scan.to_string())?;
    settings.set(&dir.join("sleep_millisecs"), &sleep_ms.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    let (s0, t0) = (read_u64(&dir.join("pages_scanned"))?, Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (s1, t1) = (read_u64(&dir.join("pages_scanned"))?, Instant::now());
    let scanned = s1.saturating_sub(s0);
    if scanned == 0 {
        return Err(format!("ksmd scanned no page at {pages_to_scan} pages per {sleep_ms} ms"));
    }
    Ok((t1 - t0).as_nanos() as f64 / (scanned as f64 / pages_to_scan as f64))
}

/// ksmd's CPU per page smart scan skips, over the region's distinct
/// pages. With smart scan off their rmap items did not age (the age moves
/// only in should_skip_rmap_item, after its smart_scan test), so with it on
/// ksmd looks at each page in full scans 0-3, 5, 8 and 13 of the region
/// and skips it in the others, eight in a row from the 14th: those eight
/// scans' CPU over the pages they skipped, less what the pages they looked
/// at (other mergeable memory, if any) cost at `look_ns` a page.
fn skipped(settings: &mut Settings, pid: u32, to_scan: u64, look_ns: f64) -> Result<f64, String> {
    let dir = Path::new(KSM);
    settings.set(&dir.join("pages_to_scan"), &to_scan.to_string())?;
    settings.set(&dir.join("sleep_millisecs"), "1")?;
    let start = read_u64(&dir.join("full_scans"))?;
    settings.set(&dir.join("smart_scan"), "1")?;
    let mark = || -> Result<(u64, u64, u64), String> {
        Ok((ksmd_cpu_ns(pid)?, read_u64(&dir.join("pages_scanned"))?, read_u64(&dir.join("pages_skipped"))?))
    };
    let wait_for = |scans: u64, deadline: Instant| -> Result<(), String> {
        while read_u64(&dir.join("full_scans"))? < start + scans {
            if Instant::now() > deadline {
                return Err(format!("ksmd did not finish {scans} full scans with smart scan on in 60 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // The scan under way when smart scan came on may have begun before:
    // one more to be sure the region's ages line up with the scans.
    wait_for(15, deadline)?;
    let a = mark()?;
    wait_for(22, deadline)?;
    let b = mark()?;
    let skipped = b.2.saturating_sub(a.2);
    if skipped == 0 {
        return Err("smart scan skipped no page".into());
    }
    let looked = b.1.saturating_sub(a.1) as f64;
    let cpu = b.0.saturating_sub(a.0) as f64;
    Ok(((cpu - (looked * look_ns).min(cpu)) / skipped as f64).max(0.0))
}

/// One jiffy on this kernel: 1 s / CONFIG_HZ, from /proc/config.gz's
/// text or /boot/config-RELEASE; 4 ms (Debian's HZ=250) when neither says.
pub fn jiffy_ns() -> f64 {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let text = fs::read_to_string(format!("/boot/config-{}", release.trim())).ok().or_else(|| {
        let out = std::process::Command::new("zcat").arg("/proc/config.gz").output().ok()?;
        String::from_utf8(out.stdout).ok()
    });
    let hz = text
        .as_deref()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("CONFIG_HZ=")?.trim().parse::<f64>().ok()))
        .filter(|&hz| hz > 0.0);
    1e9 / hz.unwrap_or(250.0)
}

fn read_u64(p: &Path) -> Result<u64, String> {
    let v = fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    v.trim().parse().map_err(|_| format!("{}: not a number: {:?}", p.display(), v.trim()))
}

/// The ksmd kernel thread's pid.
fn ksmd_pid() -> Result<u32, String> {
    let dir = fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "ksmd") {
            return Ok(pid);
        }
    }
    Err("no ksmd thread in /proc".into())
}

/// Nanoseconds ksmd has run (`/proc/<pid>/schedstat`, first field).
fn ksmd_cpu_ns(pid: u32) -> Result<u64, String> {
    let p = PathBuf::from(format!("/proc/{pid}/schedstat"));
    let v = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    v.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("{}: unexpected content {:?}", p.display(), v.trim()))
}

/// Measure over `windows` windows of `window` each, on a region of
/// `region_bytes` of distinct pages, after one full scan of warm-up.
pub fn measure(region_bytes: u64, windows: usize, window: Duration) -> Result<KsmFigure, String> {
    let dir = Path::new(KSM);
    if !dir.join("run").exists() {
        return Err(format!("{KSM} does not exist: this kernel has no KSM"));
    }
    let pid = ksmd_pid()?;
    let pages = (region_bytes / 4096).max(1) as usize;
    let mut region =
        memmap2::MmapMut::map_anon(pages * 4096).map_err(|e| format!("mmap of {region_bytes} bytes: {e}"))?;
    // Distinct pages: every 8 bytes a different value (SplitMix64 of the
    // word's index), so no two pages are alike and nothing merges.
    for (i, w) in region.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&crate::model::page::mix64(i as u64).to_ne_bytes());
    }
    // Every knob this changes is put back when `settings` goes, whatever
    // happens; `run` last of all (changes are undone last first).
    let mut settings = Settings::new();
    settings.keep(&dir.join("run")).map_err(|e| format!("{e} (root is needed)"))?;
    // SAFETY: the range is this live mapping's, and MADV_MERGEABLE changes
    // no content the program can see.
    unsafe { rustix::mm::madvise(region.as_mut_ptr().cast(), region.len(), rustix::mm::Advice::LinuxMergeable) }
        .map_err(|e| format!("madvise(MADV_MERGEABLE): {e}"))?;
    // Older kernels lack the advisor and smart_scan.
    if dir.join("advisor_mode").exists() {
        settings.set(&dir.join("advisor_mode"), "none")?;
    }
    if dir.join("smart_scan").exists() {
        settings.set(&dir.join("smart_scan"), "0")?;
    }
    // A pass over the region in about 100 ms at 1 ms sleeps: ksmd busy
    // most of the time, the sleeps' share small.
    let (to_scan, sleep_ms) = (((pages / 100).clamp(100, 100_000)) as u64, 1u64);
    settings.set(&dir.join("pages_to_scan"), &to_scan.to_string())?;
    settings.set(&dir.join("sleep_millisecs"), &sleep_ms.to_string())?;
    // The full scan that first reaches the region sees its pages for the
    // first time and only checksums them (and builds their rmap items):
    // its CPU per page is the cost of a page ksmd checksums. A new mm joins
    // ksmd's list just behind its cursor (__ksm_enter), so that is the
    // scan that ends next when the cursor was at the list's head, and the
    // one after it otherwise (then the first scan ending covered less than
    // the region).
    let full = read_u64(&dir.join("full_scans"))?;
    let mut marks = vec![(ksmd_cpu_ns(pid)?, read_u64(&dir.join("pages_scanned"))?)];
    settings.set(&dir.join("run"), "1")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while marks.len() < 3 {
        let scans = read_u64(&dir.join("full_scans"))?;
        if scans >= full + marks.len() as u64 {
            marks.push((ksmd_cpu_ns(pid)?, read_u64(&dir.join("pages_scanned"))?));
            continue;
        }
        if Instant::now() > deadline {
            return Err("ksmd did not finish two full scans in 60 s".into());
        }
        // Closely, as what ksmd scans past a scan's end costs more a page.
        std::thread::sleep(Duration::from_millis(1));
    }
    let per = |a: (u64, u64), b: (u64, u64)| b.0.saturating_sub(a.0) as f64 / b.1.saturating_sub(a.1).max(1) as f64;
    let first = if marks[1].1.saturating_sub(marks[0].1) as f64 >= 0.9 * pages as f64 { 0 } else { 1 };
    let checksum_ns = per(marks[first], marks[first + 1]);
    let mut per_page = Vec::with_capacity(windows);
    let mut scanned_total = 0;
    for _ in 0..windows.max(1) {
        let (c0, s0) = (ksmd_cpu_ns(pid)?, read_u64(&dir.join("pages_scanned"))?);
        std::thread::sleep(window);
        let (c1, s1) = (ksmd_cpu_ns(pid)?, read_u64(&dir.join("pages_scanned"))?);
        let scanned = s1.saturating_sub(s0);
        if scanned == 0 {
            return Err("ksmd scanned no page in a measuring window".into());
        }
        scanned_total += scanned;
        per_page.push(c1.saturating_sub(c0) as f64 / scanned as f64);
    }
    per_page.sort_by(f64::total_cmp);
    let median = per_page[per_page.len() / 2];
    // The pace at the kernel's defaults, 100 pages per 20 ms.
    let round_ns = round(&mut settings, 100, 20)?;
    let page_ns = ((round(&mut settings, 1000, 20)? - round_ns) / 900.0).max(0.0);
    let round_1000_per_10ms_ns = round(&mut settings, 1000, 10)?;
    let skipped_ns =
        if dir.join("smart_scan").exists() { Some(skipped(&mut settings, pid, to_scan, median)?) } else { None };
    drop(settings);
    drop(region);
    let jiffy = jiffy_ns();
    let asked = crate::latency::whole_jiffies_ns(20, jiffy);
    Ok(KsmFigure {
        round_ns,
        round_1000_per_10ms_ns,
        page_ns,
        wake_ns: (round_ns - asked - 100.0 * page_ns).max(0.0),
        jiffy_ns: jiffy,
        checksum_ns,
        skipped_ns,
        median,
        min: per_page[0],
        max: per_page[per_page.len() - 1],
        windows: per_page.len(),
        pages_scanned: scanned_total,
        region_bytes: (pages * 4096) as u64,
        pages_to_scan: to_scan,
        sleep_millisecs: sleep_ms,
    })
}
