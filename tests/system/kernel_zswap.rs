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
//! `stored_incompressible_pages`), and in a second case half its pages zero
//! (which never reach zswap: the swap core keeps a bit, `swpout_zero`). It
//! reports its touches every 2 million: the first 2 million after the
//! fill warm it up, the next are measured through /proc/vmstat's deltas
//! (`zswpwb`, `zswpout`, `swpout_zero`), and /proc/meminfo's `Zswap:` (the
//! pool, zsmalloc's pages) is read at the end. The model plays 2 s of
//! warm-up and 2 s measured at 1 million touches a second; its counters
//! over the measured part are the 4 s run's less the 2 s run's (one seed,
//! so the first 2 s are the same run), each per touch.
//!
//! Everything changed is put back when the test ends, also when it fails:
//! zswap's parameters, vm.page-cluster, the swap file (off and removed) and
//! the cgroup.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;
const TOUCHES: u64 = 2_000_000;
const PARAMS: &str = "/sys/module/zswap/parameters";
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
    swapfile: PathBuf,
    saved: Vec<(PathBuf, String)>,
    swap_on: bool,
}

impl Setup {
    fn new(root: &Path, limit_file: &str) -> Result<Setup, String> {
        let mut setup = Setup {
            cgroup: root.join(format!("overcommit-kernel-zswap-{}", std::process::id())),
            swapfile: PathBuf::from(format!("/var/tmp/overcommit-zswap-{}.swap", std::process::id())),
            saved: Vec::new(),
            swap_on: false,
        };
        // Readahead off (vm.page-cluster 0), so every swap-in is the page
        // faulted and zswpin counts faults.
        let mut knobs: Vec<(PathBuf, &str)> = vec![(PathBuf::from("/proc/sys/vm/page-cluster"), "0")];
        knobs.extend(SETTINGS.iter().map(|(k, v)| (Path::new(PARAMS).join(k), *v)));
        for (path, _) in &knobs {
            let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            setup.saved.push((path.clone(), old.trim().to_string()));
        }
        let dd = Command::new("dd")
            .args(["if=/dev/zero", &format!("of={}", setup.swapfile.display()), "bs=1M", "count=3072"])
            .stderr(Stdio::null())
            .status();
        if !dd.is_ok_and(|s| s.success()) {
            return Err("writing the swap file failed".into());
        }
        let _ = Command::new("chmod").arg("600").arg(&setup.swapfile).status();
        for cmd in ["mkswap", "swapon"] {
            let ok = Command::new(cmd).arg(&setup.swapfile).output().is_ok_and(|o| o.status.success());
            if !ok {
                return Err(format!("{cmd} {} failed", setup.swapfile.display()));
            }
            setup.swap_on = cmd == "swapon";
        }
        for (path, value) in &knobs {
            std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))?;
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
        if self.swap_on {
            let _ = Command::new("swapoff").arg(&self.swapfile).status();
        }
        let _ = std::fs::remove_file(&self.swapfile);
        // Back in reverse, so `enabled` goes back before the others.
        for (path, value) in self.saved.iter().rev() {
            let _ = std::fs::write(path, value);
        }
    }
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
    stored: f64,
    zero_out: f64,
    pool_bytes: f64,
}

fn kernel(setup: &Setup, zero: f64, pattern: &str) -> Seen {
    // The cgroup's OOM killer now and then ends the child while it swaps
    // hard (as in the reclaim test): that attempt says nothing, so it is
    // made again, up to three times, saying so.
    for attempt in 1..=3 {
        let kills = crate::kernel_reclaim::oom_kills(&setup.cgroup);
        if let Some(seen) = kernel_once(setup, zero, pattern) {
            return seen;
        }
        let killed = crate::kernel_reclaim::oom_kills(&setup.cgroup) > kills;
        assert!(killed && attempt < 3, "the touch child failed (OOM killed: {killed})");
        eprintln!("attempt {attempt}: the cgroup's OOM killer ended the touch child; again");
    }
    unreachable!("the loop returns or fails")
}

fn kernel_once(setup: &Setup, zero: f64, pattern: &str) -> Option<Seen> {
    let exe = env!("CARGO_BIN_EXE_overcommit");
    let procs = setup.cgroup.join("cgroup.procs");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > '{}' && exec \"$@\"", procs.display()))
        .arg("sh")
        .arg(exe)
        .args(["touch-child", "--mib", "1024", "--rate", "1e12", "--pattern", pattern])
        .args(["--zero", &zero.to_string(), "--report-every", &TOUCHES.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the touch child");
    let out = child.stdout.take().expect("piped");
    let mut reports = std::io::BufReader::new(out).lines().map_while(Result::ok).filter(|l| l.contains("majflt="));
    let warm = reports.next();
    let before = counters("/proc/vmstat", ' ');
    let measured = reports.next();
    let after = counters("/proc/vmstat", ' ');
    let pool_kib = counters("/proc/meminfo", ':').get("Zswap").copied().unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    warm.and(measured)?;
    let d = |k: &str| (after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)) as f64;
    eprintln!(
        "kernel, {pattern}, {:.0}% zero: zswpout {}, zswpin {}, zswpwb {}, pswpout {}, pswpin {}, swpout_zero {}; \
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
    let per = TOUCHES as f64;
    Some(Seen {
        written_back: d("zswpwb") / per,
        stored: d("zswpout") / per,
        zero_out: d("swpout_zero") / per,
        pool_bytes: (pool_kib * 1024) as f64,
    })
}

fn model(zero: f64, pattern: &str, ram_bytes: u64) -> Seen {
    let run = |secs: u32| {
        let yaml = format!(
            "
name: kernel-zswap
seed: 1
duration: {secs}s
host:
  ram: {ram_bytes}
  reserved: 0
  thp: never
  swap: {{ size: 3G, device: nvme, zswap: {{ max_pool_percent: 1, accept_threshold_percent: 90, ratio: 1 }} }}
guests:
  - name: vm
    memory: 1G
    prealloc: true
    memtune: {{ hard_limit: {}M }}
    workload: {{ working_set: 100%, touch_rate: 1M/s, pattern: \"{pattern}\", zero: {zero} }}
",
            512 + 74
        );
        let yaml = yaml.replace(&format!("ram: {ram_bytes}"), &format!("ram: {}K", ram_bytes / 1024));
        let s =
            overcommit::scenario::load_str(&yaml, "kernel-zswap.yaml", "kernel-zswap", &[]).expect("valid").scenario;
        let cfg = overcommit::engine::RunConfig { sample_rate: Some(1.0), ..Default::default() };
        overcommit::engine::run(&s, cfg, &mut overcommit::engine::Discard).expect("runs")
    };
    let (warm, whole) = (run(2), run(4));
    let z = |s: &overcommit::engine::Summary| s.host.zswap.clone().expect("zswap counters");
    let (a, b) = (z(&warm), z(&whole));
    let touches = (whole.guests[0].touches - warm.guests[0].touches) as f64;
    eprintln!(
        "model, {pattern}, {:.0}% zero, {touches} touches measured: zswpout {}, zswpin {}, zswpwb {}, swpout_zero {}; pool {} kB",
        zero * 100.0,
        b.zswpout - a.zswpout,
        b.zswpin - a.zswpin,
        b.zswpwb - a.zswpwb,
        b.swpout_zero - a.swpout_zero,
        b.pool_total_size_bytes / 1024
    );
    Seen {
        written_back: (b.zswpwb - a.zswpwb) as f64 / touches,
        stored: (b.zswpout - a.zswpout) as f64 / touches,
        zero_out: (b.swpout_zero - a.swpout_zero) as f64 / touches,
        pool_bytes: b.pool_total_size_bytes as f64,
    }
}

#[test]
#[ignore = "a known gap: the model has no swap cache, so it writes back what the kernel never writes (see the comment)"]
fn zswap_pool_and_write_backs_follow_the_kernels() {
    // Measured here (Linux 6.18, lzo, pool at most 1% of 23.5 GiB =
    // 61 709 pages, 2 million touches measured after 2 million of
    // warm-up): Zipf(0.9) on random pages, the kernel zswpout 98 738,
    // zswpin 98 405, zswpwb 0, pswpout 0, pswpin 164 561, Zswap 232 436 kB;
    // uniform with half the pages zero, zswpout 420 875, zswpin 420 767,
    // zswpwb 0, pswpout 0, swpout_zero 0, pswpin 81 391, Zswap 221 560 kB.
    // The model lands within 2% and 6% on the pool (227 896 and 234 604
    // kB) but writes back 0.23 and 0.055 pages per touch where the kernel
    // writes back none, and counts zero pages going out again.
    //
    // Why: in the kernel a page read back from the swap device stays in
    // the swap cache, its slot still holding its data; while the page is
    // clean, reclaim frees it without any write (pswpout 0 above), and a
    // zero page read back goes out again without a new swpout_zero. Only
    // pages loaded from zswap (exclusive loads free the entry and dirty
    // the page) are stored again, so stores equal loads and the pool stays
    // at its accept threshold (220-232 MB, the threshold being 222 152 kB)
    // without reaching the limit again. The model writes every page it
    // reclaims, so pages read from the device come back into the pool,
    // which fills and writes back. Modelling the swap cache (a clean
    // swapped-in page keeps its slot until written or until swap is half
    // full, vm_swap_full) is the step that makes this test pass.
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (zswap's parameters, a swap file and a memory cgroup)");
        return;
    }
    if !Path::new(PARAMS).join("enabled").exists() {
        eprintln!("skipped: this kernel has no zswap");
        return;
    }
    if std::fs::read_to_string("/proc/swaps").unwrap_or_default().lines().nth(1).is_some() {
        eprintln!("skipped: swap is on already (the test needs its swap file to be the only one)");
        return;
    }
    let Some((root, limit_file)) = crate::kernel_reclaim::memory_cgroups() else {
        eprintln!("skipped: no memory cgroup controller");
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
        for (zero, pattern) in [(0.0, "zipf(0.9)"), (0.5, "uniform")] {
            rows.push((zero, kernel(&setup, zero, pattern), model(zero, pattern, ram)));
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
        near("write-backs per touch", k.written_back, m.written_back);
        near("stores per touch", k.stored, m.stored);
        if zero > 0.0 {
            near("zero pages out per touch", k.zero_out, m.zero_out);
        }
    }
}
