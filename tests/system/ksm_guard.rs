//! KSM for a test that turns it on: [`KsmGuard`] saves every knob it sets
//! and puts them back when dropped (also on panic), and [`counters`] and
//! [`settle`] read what ksmd merged.
//!
//! `run` (Documentation/admin-guide/mm/ksm.rst): 0 stops ksmd and keeps
//! the pages it merged merged; 1 runs it; 2 stops it and unmerges every
//! page it merged (the write returns once that is done), leaving the
//! areas registered. So a guard that found KSM stopped (0 or 2) writes 2
//! first, which unmerges whatever ksmd merged while the test had it
//! running, and then the old value: `run` reads as before, and no page
//! stays merged because of the test. (Pages merged before the test with
//! `run` at 0 cannot be told apart, and are unmerged too.) One that found
//! it running leaves the merging to the host's ksmd, as before, and only
//! puts the knobs back.
//!
//! While a guard has changed something it keeps the old values in a file
//! in the temporary directory; a test process killed before its guard
//! dropped leaves that file, and the next guard puts those values back
//! first, the same way.

use crate::guest_kit::Unavailable;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const KSM: &str = "/sys/kernel/mm/ksm";

fn knob(name: &str) -> PathBuf {
    Path::new(KSM).join(name)
}

/// A knob's value as written back: the selected word of a choice
/// (`[none] scan-time` is `none`), else the trimmed text.
fn read_knob(name: &str) -> Option<String> {
    let v = std::fs::read_to_string(knob(name)).ok()?;
    let v = v.trim();
    Some(match (v.find('['), v.find(']')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.to_string(),
    })
}

fn write_knob(name: &str, value: &str) -> Result<(), String> {
    std::fs::write(knob(name), value).map_err(|e| format!("writing {value} to {}: {e}", knob(name).display()))
}

/// The old values of what a guard changed (`NAME VALUE` lines, `run` last),
/// after a `pid PID` line naming the test process.
fn undo_file() -> PathBuf {
    std::env::temp_dir().join("overcommit-ksm.undo")
}

/// Puts back `run` and the knobs in `saved` (in reverse order): with `run`
/// changed from a stopped KSM, through 2 first.
fn restore(run: &str, saved: &[(String, String)], ran: bool) {
    if ran && run != "1" {
        // Stop ksmd and unmerge what it merged.
        let t = Instant::now();
        match write_knob("run", "2") {
            Ok(()) => eprintln!("KSM: run=2 unmerged everything in {:.2?}", t.elapsed()),
            Err(e) => eprintln!("KSM: cannot unmerge: {e}"),
        }
    }
    for (name, old) in saved.iter().rev() {
        if let Err(e) = write_knob(name, old) {
            eprintln!("KSM: cannot put {name} back: {e}");
        }
    }
    if ran && let Err(e) = write_knob("run", run) {
        eprintln!("KSM: cannot put run back: {e}");
    }
}

/// Whether process `pid` lives (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])))
}

/// Puts back what the guard of a test process that was killed changed
/// (see [`undo_file`]); `Err` if a live process's guard holds the knobs.
/// [`KsmGuard::take`] does it; a test that boots guests does it first,
/// so they do not boot with a KSM left running.
pub fn put_back_leftovers() -> Result<(), Unavailable> {
    let Ok(text) = std::fs::read_to_string(undo_file()) else { return Ok(()) };
    let mut saved: Vec<(String, String)> =
        text.lines().filter_map(|l| l.split_once(' ')).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    // A guard of a live process (another test binary) keeps its own.
    if let Some(pid) = saved.iter().find(|(n, _)| n == "pid").and_then(|(_, p)| p.parse::<u32>().ok())
        && pid != std::process::id()
        && alive(pid)
    {
        return Err(Unavailable(format!("another test process (pid {pid}) has KSM's knobs")));
    }
    saved.retain(|(n, _)| n != "pid" && !n.contains('/') && knob(n).exists());
    let run = saved.iter().position(|(n, _)| n == "run").map(|i| saved.remove(i).1);
    eprintln!("KSM: putting back what a killed test process left: run {run:?}, {saved:?}");
    restore(run.as_deref().unwrap_or("1"), &saved, run.is_some());
    let _ = std::fs::remove_file(undo_file());
    Ok(())
}

/// `run` now, if this kernel has KSM.
pub fn run_now() -> Option<String> {
    read_knob("run")
}

/// KSM's knobs as the test found them, put back when dropped.
pub struct KsmGuard {
    /// `run` as found.
    run: String,
    /// Other knobs set, with their old values, in the order set.
    saved: Vec<(String, String)>,
    /// Whether this guard wrote `run`.
    ran: bool,
}

impl KsmGuard {
    /// `Err` where KSM cannot be driven (no KSM in the kernel, not root).
    pub fn take() -> Result<KsmGuard, Unavailable> {
        if !knob("run").exists() {
            return Err(Unavailable(format!("this kernel has no KSM ({KSM} is missing)")));
        }
        if !rustix::process::geteuid().is_root() {
            return Err(Unavailable("setting KSM's knobs needs root".into()));
        }
        put_back_leftovers()?;
        let run = read_knob("run").expect("KSM's run is readable");
        Ok(KsmGuard { run, saved: Vec::new(), ran: false })
    }

    /// Records what to put back should this process die before `Drop`.
    fn write_undo(&self) {
        let mut text = format!("pid {}\n", std::process::id());
        text.extend(self.saved.iter().map(|(n, v)| format!("{n} {v}\n")));
        if self.ran {
            text += &format!("run {}\n", self.run);
        }
        std::fs::write(undo_file(), text).unwrap_or_else(|e| panic!("{}: {e}", undo_file().display()));
    }

    /// `run` as it was found.
    pub fn run_before(&self) -> &str {
        &self.run
    }

    /// Sets a knob other than `run`, saving its old value the first time.
    /// Knobs this kernel lacks are skipped (false).
    pub fn set(&mut self, name: &'static str, value: &str) -> bool {
        assert_ne!(name, "run", "run is set with start()");
        let Some(old) = read_knob(name) else { return false };
        if !self.saved.iter().any(|(n, _)| n == name) {
            self.saved.push((name.to_string(), old));
            self.write_undo();
        }
        write_knob(name, value).unwrap_or_else(|e| panic!("{e}"));
        true
    }

    /// Runs ksmd fast: no advisor (it would set `pages_to_scan` itself),
    /// no smart scan (it skips pages that did not merge lately, which only
    /// delays a count that is to settle), `pages_to_scan` pages every
    /// `sleep_ms`, zero pages merged with the kernel's zero page (counted
    /// in `ksm_zero_pages`, not in `pages_sharing`) when `zero_pages`.
    pub fn start(&mut self, pages_to_scan: u64, sleep_ms: u64, zero_pages: bool) {
        self.set("advisor_mode", "none");
        self.set("smart_scan", "0");
        self.set("pages_to_scan", &pages_to_scan.to_string());
        self.set("sleep_millisecs", &sleep_ms.to_string());
        self.set("use_zero_pages", if zero_pages { "1" } else { "0" });
        self.ran = true;
        self.write_undo();
        write_knob("run", "1").unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for KsmGuard {
    fn drop(&mut self) {
        restore(&self.run, &self.saved, self.ran);
        let _ = std::fs::remove_file(undo_file());
    }
}

/// KSM's counters, from its sysfs files (0 for one this kernel lacks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// KSM pages in use (each holds the content of several).
    pub pages_shared: u64,
    /// Further mappings of them: the pages saved.
    pub pages_sharing: u64,
    pub pages_unshared: u64,
    pub pages_volatile: u64,
    /// Pages mapped to the kernel's zero page by KSM (`use_zero_pages`).
    pub ksm_zero_pages: u64,
    pub full_scans: u64,
    pub pages_scanned: u64,
}

pub fn counters() -> Counters {
    let n = |name: &str| read_knob(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Counters {
        pages_shared: n("pages_shared"),
        pages_sharing: n("pages_sharing"),
        pages_unshared: n("pages_unshared"),
        pages_volatile: n("pages_volatile"),
        ksm_zero_pages: n("ksm_zero_pages"),
        full_scans: n("full_scans"),
        pages_scanned: n("pages_scanned"),
    }
}

/// Where ksmd's merging came to rest.
#[derive(Debug, Clone)]
pub struct Settled {
    pub counters: Counters,
    /// From the call to the reading that showed it settled.
    pub took: Duration,
    /// Full scans ksmd made in that time.
    pub scans: u64,
    /// When pages saved (`pages_sharing + ksm_zero_pages`) first reached
    /// 90% of where they settled.
    pub to_90_percent: Duration,
    /// The counters at the end of each full scan, with the time since the call.
    pub trace: Vec<(Duration, Counters)>,
}

impl Counters {
    /// Pages saved: further mappings of KSM pages, and zero pages mapped
    /// to the kernel's zero page.
    pub fn saved(&self) -> u64 {
        self.pages_sharing + self.ksm_zero_pages
    }
}

/// Waits until ksmd's merging settles: after at least `min_scans` full
/// scans since the call, pages saved grew by at most `tolerance` (a
/// share) from one full scan to the next. A fall does not count against
/// it: a workload that writes keeps unmerging pages (a write to a merged
/// page copies it), and its share of the count falls for as long as it
/// runs. Panics after `limit`.
pub fn settle(min_scans: u64, tolerance: f64, limit: Duration) -> Settled {
    let start = Instant::now();
    let first = counters();
    let mut trace: Vec<(Duration, Counters)> = Vec::new();
    let mut last_scans = first.full_scans;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let c = counters();
        if c.full_scans != last_scans {
            last_scans = c.full_scans;
            trace.push((start.elapsed(), c));
            let scans = c.full_scans - first.full_scans;
            if let [.., (_, a), (_, b)] = trace[..]
                && scans >= min_scans
                && b.saved() > 0
                && b.saved().saturating_sub(a.saved()) as f64 <= tolerance * b.saved() as f64
            {
                let goal = b.saved() as f64 * 0.9;
                let to_90_percent =
                    trace.iter().find(|(_, c)| c.saved() as f64 >= goal).map(|(t, _)| *t).unwrap_or_default();
                return Settled { counters: b, took: start.elapsed(), scans, to_90_percent, trace };
            }
        }
        assert!(
            start.elapsed() < limit,
            "KSM did not settle in {limit:?}: counters at each full scan {:?}",
            trace.iter().map(|(t, c)| (t.as_secs_f64(), c.pages_sharing, c.ksm_zero_pages)).collect::<Vec<_>>()
        );
    }
}
