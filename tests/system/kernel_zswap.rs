//! The model's zswap against the kernel's: a process touching 1 GiB of
//! anonymous memory (Zipf 0.9 over its pages) under a 512 MiB memory
//! cgroup limit, with a
//! swap file and zswap in front of it, its pool held to 1% of RAM so that
//! the limit, the refusals and the write-backs all happen; and the same
//! guest in the model (its memory cgroup 512 MiB plus the QEMU overhead the
//! model charges, `prealloc` as the process fills its memory first).
//!
//! The process is this program's `touch-child`: random page content (which
//! lzo cannot shrink, so zswap stores each page as it is: 6.18's
//! `stored_incompressible_pages`); in a second case half its pages zero
//! (which never reach zswap: the swap core keeps a bit, `swpout_zero`);
//! in a third a fifth of its touches write. It reports its touches every
//! 2 million: the first 2 million after the fill warm it up, the next are
//! measured through /proc/vmstat's deltas (`zswpwb`, `zswpout`,
//! `pswpout`, `swpout_zero`), zswap's debugfs counters (printed: the
//! limit hits and rejections) and /proc/meminfo's `Zswap:` (the pool,
//! zsmalloc's pages) read at the end. The model's guest runs to 2 and to
//! 4 million touches (one seed, so the first run is the start of the
//! second), and its counters in between are compared per touch.
//!
//! Everything changed is put back when the test ends, also when it fails:
//! zswap's parameters, vm.page-cluster, the swap file (off and removed),
//! the cgroup, and debugfs if the test mounted it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;
const TOUCHES: u64 = 2_000_000;
const PARAMS: &str = "/sys/module/zswap/parameters";
const DEBUG: &str = "/sys/kernel/debug/zswap";
const SETTINGS: [(&str, &str); 5] = [
    ("compressor", "lzo"),
    ("max_pool_percent", "1"),
    ("accept_threshold_percent", "90"),
    ("shrinker_enabled", "N"),
    ("enabled", "Y"),
];

/// zswap on, a swap file and a memory cgroup; everything put back when
/// dropped.
struct Setup {
    cgroup: PathBuf,
    swap: Option<crate::command::SwapFile>,
    saved: Vec<(PathBuf, String)>,
    /// debugfs was mounted for the test (zswap's own counters live there).
    debugfs: bool,
}

impl Setup {
    fn new(root: &Path, limit_file: &str) -> Result<Setup, String> {
        let mut setup = Setup {
            cgroup: root.join(format!("overcommit-kernel-zswap-{}", std::process::id())),
            swap: None,
            saved: Vec::new(),
            debugfs: false,
        };
        // Readahead off (vm.page-cluster 0), so every swap-in is the page
        // faulted and zswpin counts faults.
        let mut knobs: Vec<(PathBuf, &str)> = vec![(PathBuf::from("/proc/sys/vm/page-cluster"), "0")];
        knobs.extend(SETTINGS.iter().map(|(k, v)| (Path::new(PARAMS).join(k), *v)));
        for (path, _) in &knobs {
            let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            setup.saved.push((path.clone(), old.trim().to_string()));
        }
        setup.swap = Some(crate::command::SwapFile::on(
            PathBuf::from(format!("/var/tmp/overcommit-zswap-{}.swap", std::process::id())),
            3072,
        )?);
        for (path, value) in &knobs {
            std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if !Path::new(DEBUG).exists() {
            setup.debugfs = Command::new("mount")
                .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
                .status()
                .is_ok_and(|s| s.success());
        }
        std::fs::create_dir(&setup.cgroup).map_err(|e| format!("{}: {e}", setup.cgroup.display()))?;
        std::fs::write(setup.cgroup.join(limit_file), (512 * MIB).to_string())
            .map_err(|e| format!("{limit_file}: {e}"))?;
        Ok(setup)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        crate::kernel_reclaim::remove_cgroup(&self.cgroup);
        // Off and removed before zswap's parameters go back.
        drop(self.swap.take());
        // Back in reverse, so `enabled` goes back before the others.
        for (path, value) in self.saved.iter().rev() {
            let _ = std::fs::write(path, value);
        }
        if self.debugfs {
            let _ = Command::new("umount").arg("/sys/kernel/debug").status();
        }
    }
}

/// zswap's debugfs counters (pool_limit_hit, reject_*, written_back_pages).
fn debug_counters() -> std::collections::BTreeMap<String, u64> {
    std::fs::read_dir(DEBUG)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let v = std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), v))
        })
        .collect()
}

fn counters(path: &str, sep: char) -> std::collections::BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(sep)?;
            Some((k.trim().to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// What the measured part shows, per touch, and the pool at its end.
#[derive(Debug, Clone, Copy)]
struct Seen {
    written_back: f64,
    /// Pages written to the device: write-backs and refused stores.
    device_writes: f64,
    stored: f64,
    zero_out: f64,
    pool_bytes: f64,
}

fn kernel(setup: &Setup, zero: f64, pattern: &str, write: f64) -> Seen {
    // The cgroup's OOM killer now and then ends the child while it swaps
    // hard (as in the reclaim test): that attempt says nothing, so it is
    // made again, up to three times, saying so.
    for attempt in 1..=3 {
        let kills = crate::kernel_reclaim::oom_kills(&setup.cgroup);
        if let Some(seen) = kernel_once(setup, zero, pattern, write) {
            return seen;
        }
        let killed = crate::kernel_reclaim::oom_kills(&setup.cgroup) > kills;
        assert!(killed && attempt < 3, "the touch child failed (OOM killed: {killed})");
        eprintln!("attempt {attempt}: the cgroup's OOM killer ended the touch child; again");
    }
    unreachable!("the loop returns or fails")
}

fn kernel_once(setup: &Setup, zero: f64, pattern: &str, write: f64) -> Option<Seen> {
    let (zero_arg, write_arg, every) = (zero.to_string(), write.to_string(), TOUCHES.to_string());
    let mut child = crate::kernel_reclaim::touch_child_in(
        &setup.cgroup,
        &["--mib", "1024", "--rate", "1e12", "--pattern", pattern, "--zero", &zero_arg, "--write", &write_arg],
    )
    .args(["--report-every", &every])
    .stdout(Stdio::piped())
    .spawn()
    .expect("the touch child");
    let out = child.stdout.take().expect("piped");
    let mut reports = std::io::BufReader::new(out).lines().map_while(Result::ok).filter(|l| l.contains("majflt="));
    let warm = reports.next();
    let (before, debug_before) = (counters("/proc/vmstat", ' '), debug_counters());
    // The write-backs' pace: zswpwb read every 2 ms while measuring.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pace = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut trace = Vec::new();
            let t0 = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                trace.push((
                    t0.elapsed().as_secs_f64(),
                    counters("/proc/vmstat", ' ').get("zswpwb").copied().unwrap_or(0),
                ));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            trace
        })
    };
    let measured = reports.next();
    let (after, debug_after) = (counters("/proc/vmstat", ' '), debug_counters());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let trace = pace.join().unwrap_or_default();
    let busy: Vec<(f64, u64)> =
        trace.windows(2).map(|w| (w[1].0 - w[0].0, w[1].1 - w[0].1)).filter(|&(_, n)| n > 0).collect();
    let (busy_s, busy_n) = busy.iter().fold((0.0, 0), |(t, n), &(dt, dn)| (t + dt, n + dn));
    let wall = trace.last().map_or(0.0, |l| l.0);
    let mut per: Vec<f64> = busy.iter().map(|&(dt, n)| n as f64 / dt).collect();
    per.sort_by(f64::total_cmp);
    let at = |q: f64| per.get(((per.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
    eprintln!(
        "kernel, write-back rate in busy 2 ms intervals: median {:.0}/s, p90 {:.0}/s, max {:.0}/s",
        at(0.5),
        at(0.9),
        at(1.0)
    );
    eprintln!(
        "kernel, write-back pace: {busy_n} written back in {:.0} ms of {:.1} s ({} intervals of 2 ms with any), \
         {:.0} pages/s while writing back",
        busy_s * 1e3,
        wall,
        busy.len(),
        busy_n as f64 / busy_s.max(1e-9)
    );
    let pool_kib = counters("/proc/meminfo", ':').get("Zswap").copied().unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    warm.and(measured)?;
    let d = |k: &str| (after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)) as f64;
    eprintln!(
        "kernel, {pattern}, {:.0}% zero, write {write}: zswpout {}, zswpin {}, zswpwb {}, pswpout {}, pswpin {}, swpout_zero {}; \
         Zswap {} kB",
        zero * 100.0,
        d("zswpout"),
        d("zswpin"),
        d("zswpwb"),
        d("pswpout"),
        d("pswpin"),
        d("swpout_zero"),
        pool_kib
    );
    let moved: Vec<String> = debug_after
        .iter()
        .filter(|(k, _)| k.starts_with("reject") || *k == "pool_limit_hit")
        .map(|(k, v)| format!("{k} {}", v - debug_before.get(k).copied().unwrap_or(0)))
        .collect();
    eprintln!("kernel, debugfs: {}", moved.join(", "));
    let per = TOUCHES as f64;
    Some(Seen {
        written_back: d("zswpwb") / per,
        device_writes: d("pswpout") / per,
        stored: d("zswpout") / per,
        zero_out: d("swpout_zero") / per,
        pool_bytes: (pool_kib * 1024) as f64,
    })
}

fn model(zero: f64, pattern: &str, write: f64, ram_bytes: u64) -> Seen {
    let run = |ms: u64| {
        let yaml = format!(
            "
name: kernel-zswap
seed: 1
duration: {ms}ms
host:
  ram: {ram_bytes}
  reserved: 0
  thp: never
  swap: {{ size: 3G, device: nvme, zswap: {{ max_pool_percent: 1, accept_threshold_percent: 90, ratio: 1, store_latency: 2us }} }}
guests:
  - name: vm
    memory: 1G
    prealloc: true
    accel: tcg
    memtune: {{ hard_limit: {}M }}
    workload: {{ working_set: 100%, touch_rate: 1M/s, pattern: \"{pattern}\", zero: {zero}, write: {write} }}
",
            512 + 74
        );
        let yaml = yaml.replace(&format!("ram: {ram_bytes}"), &format!("ram: {}K", ram_bytes / 1024));
        let s =
            overcommit::scenario::load_str(&yaml, "kernel-zswap.yaml", "kernel-zswap", &[]).expect("valid").scenario;
        let cfg = overcommit::engine::RunConfig { sample_rate: Some(1.0), ..Default::default() };
        overcommit::engine::run(&s, cfg, &mut overcommit::engine::Discard).expect("runs")
    };
    // The kernel's windows are counted in touches (2 million after the
    // fill warm up, the next 2 million are measured); the model's guest
    // keeps its own pace through its faults' stalls, so each window's end
    // is found by running to a duration and correcting the time after its
    // start (its memory filled) by the touches it gave, until they are
    // within 1% of the kernel's.
    let at_touches = |target: u64| {
        let mut ms = 4_000u64;
        for _ in 0..12 {
            let s = run(ms);
            let ratio = target as f64 / s.guests[0].touches.max(1) as f64;
            if (ratio - 1.0).abs() <= 0.01 {
                return s;
            }
            let start = s.guests[0].started_at_ns.map_or(0, |t| t / 1_000_000).min(ms);
            let after = ((ms - start) as f64 * ratio.min(8.0)).ceil() as u64;
            ms = start + after.max((ms - start) / 4).max(1);
        }
        panic!("the model's guest did not reach {target} touches");
    };
    let (warm, whole) = (at_touches(TOUCHES), at_touches(2 * TOUCHES));
    let z = |s: &overcommit::engine::Summary| s.host.zswap.clone().expect("zswap counters");
    let (a, b) = (z(&warm), z(&whole));
    let touches = (whole.guests[0].touches - warm.guests[0].touches) as f64;
    eprintln!(
        "model, {pattern}, {:.0}% zero, write {write}, {touches} touches measured: zswpout {}, zswpin {}, zswpwb {}, \
         pswpout {}, pswpin {}, swpout_zero {}; pool {} kB",
        zero * 100.0,
        b.zswpout - a.zswpout,
        b.zswpin - a.zswpin,
        b.zswpwb - a.zswpwb,
        whole.host.vmstat.pswpout - warm.host.vmstat.pswpout,
        whole.host.vmstat.pswpin - warm.host.vmstat.pswpin,
        b.swpout_zero - a.swpout_zero,
        b.pool_total_size_bytes / 1024
    );
    Seen {
        written_back: (b.zswpwb - a.zswpwb) as f64 / touches,
        device_writes: (whole.host.vmstat.pswpout - warm.host.vmstat.pswpout) as f64 / touches,
        stored: (b.zswpout - a.zswpout) as f64 / touches,
        zero_out: (b.swpout_zero - a.swpout_zero) as f64 / touches,
        pool_bytes: b.pool_total_size_bytes as f64,
    }
}

#[test]
#[ignore = "opt-in (root; about 3 minutes); a known gap: with writes the model writes back about a third more than the kernel does"]
fn zswap_pool_and_write_backs_follow_the_kernels() {
    // Measured here (Linux 6.18, lzo, pool at most 1% of 23.5 GiB =
    // 61 709 pages, accept threshold 55 538; 2 million touches measured
    // after 2 million of warm-up), over several runs:
    // - Zipf(0.9) on random pages, reads only: zswpout 84 000-99 000 with
    //   zswpin equal, zswpwb 0 in most runs (2 657 and 4 950 in two, when
    //   the pool touched its limit: pool_limit_hit 22), pswpin
    //   165 000-180 000, Zswap 222-241 MB. The model: zswpout 81 386,
    //   zswpin 77 463, zswpwb 0, pswpin 184 028, pool 222 344 kB.
    // - the same with a fifth of the touches writing: zswpout
    //   140 000-154 000, zswpin 119 000-132 000, zswpwb 19 000-26 000,
    //   pswpout 40 600-47 200 (write-backs plus 18 000-21 000 refused
    //   stores), Zswap 224-241 MB. The model (since the reclaim pace and
    //   the worker's visit cost): zswpout 153 000-155 000, zswpin
    //   124 000-126 000, zswpwb 27 400-27 500, pswpout 41 800-42 000.
    // - uniform with half the pages zero, reads only: zswpout 397 000-
    //   434 000 with zswpin equal, zswpwb 0, swpout_zero 0, pswpin
    //   68 000-104 000, Zswap 209-228 MB (the kernel's OOM killer ends the
    //   child now and then here; the test tries three times). The model:
    //   zswpout 461 086, zswpwb 0, swpout_zero 0, pool 242 424 kB.
    //
    // What makes the reads-only cases hold is the swap cache
    // (model::swapcache): a page read back from the device keeps its slot
    // and its copy, so while it stays clean reclaim frees it with no I/O
    // (pswpout 0), and a zero page read back goes out again without a new
    // swpout_zero; only pages loaded from the pool (exclusive loads free
    // the entry and dirty the page) are stored again, so stores equal
    // loads and the pool stays near its threshold. The process is not a
    // KVM guest (KVM would dirty every page it maps): the mirror says
    // `accel: tcg`. Its pages are random, which lzo gets through in about
    // 2 us a page (zram0 with lzo here, 4 KiB O_DIRECT writes of random
    // pages against zero ones): the mirror's `store_latency`.
    //
    // With writes, the split between refused stores and write-backs was
    // the worker's pace: traced here (workqueue and memcg reclaim
    // tracepoints), the kernel's worker runs back to back while refused
    // stores keep queueing it, one run per 16 rotated entries in 51 us,
    // and the refused stores come one per page the reclaiming task takes
    // out, 9 us apart; a full-pool phase lasts 0.3-0.9 s and writes back a
    // few thousand entries between long stretches of rotations. The model
    // plays both (a visit's cost, queue_work's one extra run, reclaim's
    // pace) and went from 37 000 write-backs to 27 400. What is left is
    // arithmetic: write-backs are what stores leave over loads (the pool
    // ends where it started), 23 500 in the kernel and 28 800 in the
    // model, whose stores are 2% more and loads 2% fewer; a wider gap on
    // a small difference of two large counts.
    // Written-back pages are compared relative to the kernel's when it
    // writes back at least a tenth of what it stores; below that (its
    // reads-only runs: 0 to 5 000 from run to run, when the pool now and
    // then reaches its limit: the swap allocator reclaims slots that
    // clean pages keep, which dirties them, and that is not modelled) the
    // model must stay under 15% of the kernel's stores too.
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new(PARAMS).join("enabled").exists() {
        eprintln!("skipped: this kernel has no zswap");
        return;
    }
    let Some((root, limit_file)) =
        crate::kernel_reclaim::swap_and_cgroup("zswap's parameters, a swap file and a memory cgroup")
    else {
        return;
    };
    let ram = counters("/proc/meminfo", ':').get("MemTotal").copied().unwrap_or(0) * 1024;
    let swaps_before = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut rows = Vec::new();
    {
        let setup = match Setup::new(&root, limit_file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        // Zipf(0.9) over random pages; then half the pages zero under
        // uniform touches (the child's zero pages are its first, which
        // Zipf makes the hottest, where the model spreads them evenly).
        for (zero, pattern, write) in [(0.0, "zipf(0.9)", 0.0), (0.5, "uniform", 0.0), (0.0, "zipf(0.9)", 0.2)] {
            rows.push((zero, kernel(&setup, zero, pattern, write), model(zero, pattern, write, ram)));
        }
    }
    assert_eq!(std::fs::read_to_string("/proc/swaps").unwrap_or_default(), swaps_before, "the swap file is off");
    for (zero, k, m) in rows {
        let near = |what: &str, k: f64, m: f64| {
            assert!(
                (m / k - 1.0).abs() <= 0.15,
                "{:.0}% zero, {what}: model {m:.5} against the kernel's {k:.5}",
                zero * 100.0
            );
        };
        near("pool size", k.pool_bytes, m.pool_bytes);
        near("stores per touch", k.stored, m.stored);
        if k.written_back >= 0.1 * k.stored {
            near("write-backs per touch", k.written_back, m.written_back);
            near("device writes per touch", k.device_writes, m.device_writes);
        } else {
            assert!(
                m.written_back <= 0.15 * k.stored,
                "{:.0}% zero: the model writes back {:.5} a touch, the kernel {:.5} of {:.5} stores",
                zero * 100.0,
                m.written_back,
                k.written_back,
                k.stored
            );
        }
        if zero > 0.0 {
            assert!(m.zero_out <= 0.15 * k.stored.max(k.zero_out), "zero pages out again: model {:.5}", m.zero_out);
        }
    }
}
