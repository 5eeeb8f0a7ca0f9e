//! KSM pages under memory pressure, against this kernel: four processes
//! of 64 MiB with identical content (`MADV_MERGEABLE`, 4 KiB pages, 200
//! reads a second each) in one memory cgroup, merged by ksmd at 1000 pages
//! every 20 ms into 16 384 KSM pages (49 152 mappings saved); then the
//! cgroup limited to 100 MiB and a hot 64 MiB process started in it
//! (200 000 reads a second). The kernel swaps the KSM pages out, one write
//! for all of a page's sharers; `pages_shared` and `pages_sharing` fall
//! only as ksmd meets the stale stable nodes; and as the sharers fault the
//! pages back, the first reads one and the others copy it
//! (`ksm_swpin_copy`). See `model::ksmpage` for the rules.
//!
//! The model's mirror: the same four guests of one image and the hot one
//! on a host whose RAM leaves them 100 MiB once a locked (never
//! reclaimed) guest has taken the rest, a second before the hot guest
//! starts: global reclaim in place of the cgroup's, the same rmap rules.
//!
//! Measured here (Linux 6.18, cgroup v1, a 1 GiB swap file; pages_shared
//! / pages_sharing from 16 384 / 49 152), over nine runs: three seconds
//! after the limit 7 899–8 577 / 23 662–25 713, the model 7 654 / 22 922;
//! after fifteen 3 782–4 358 / 9 495–11 486, the model 3 760 / 9 305;
//! `ksm_swpin_copy` after fifteen 1 044–1 219, the model 1 366. The
//! kernel's runs spread about ±10% around their mean at fifteen seconds
//! (how fast ksmd meets the stale nodes, as reclaim and the sharers'
//! faults interleave), so one run is compared with bounds that take that
//! in. After 25 s the kernel's ksmd has merged some copies again or not
//! (3 344–5 060 pages shared), the model 3 010. The kernel also writes the
//! hot process's pages (pswpout 22 700 in the first three seconds, the
//! model 9 010): its reclaim of a
//! process that has just faulted its pages in takes some of them where the
//! model's CLOCK finds them all referenced; what the KSM pages do is
//! unaffected.
//!
//! The swap file, the cgroup, KSM's knobs and the processes are undone
//! when the test ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::command::vmstat;
use crate::ksm_guard::{KsmGuard, counters};

const MIB: u64 = 1 << 20;
const SHARERS: usize = 4;
/// Where the pressure is read, in seconds after it began.
const MARKS: [f64; 3] = [3.0, 15.0, 25.0];

/// The swap file, the memory cgroup and the processes in it; all undone
/// when dropped.
struct Setup {
    cgroup: PathBuf,
    children: Vec<Child>,
    swap: Option<crate::command::SwapFile>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        crate::kernel_reclaim::remove_cgroup(&self.cgroup);
        drop(self.swap.take());
    }
}

impl Setup {
    /// A touch child in the cgroup before it maps anything, once it
    /// filled its memory.
    fn spawn(&mut self, args: &[&str]) {
        let mut cmd = crate::kernel_reclaim::touch_child_in(&self.cgroup, args);
        self.children.push(crate::command::spawn_ready(&mut cmd, "the touch child"));
    }
}

/// What is compared at each mark (seconds after the pressure began).
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    pages_shared: f64,
    pages_sharing: f64,
    swpin_copy: f64,
    pswpout: f64,
}

fn kernel(root: &Path, limit_file: &str) -> Result<Vec<Seen>, String> {
    let mut ksm = KsmGuard::take().map_err(|e| e.0)?;
    let mut setup = Setup {
        cgroup: root.join(format!("overcommit-ksm-swap-{}", std::process::id())),
        children: Vec::new(),
        swap: None,
    };
    setup.swap = Some(crate::command::SwapFile::on(
        PathBuf::from(format!("/var/tmp/overcommit-ksm-swap-{}.swap", std::process::id())),
        1024,
    )?);
    std::fs::create_dir(&setup.cgroup).map_err(|e| format!("{}: {e}", setup.cgroup.display()))?;
    let swappiness = setup.cgroup.join("memory.swappiness");
    if swappiness.exists() {
        std::fs::write(&swappiness, "60").map_err(|e| format!("memory.swappiness: {e}"))?;
    }
    for i in 0..SHARERS {
        setup.spawn(&[
            "--mib",
            "64",
            "--rate",
            "200",
            "--image",
            "1",
            "--image-seed",
            "7",
            "--mergeable",
            "--instance",
            &i.to_string(),
        ]);
    }
    ksm.start(1000, 20, false);
    let want = (SHARERS as u64 - 1) * 64 * 256;
    let t0 = Instant::now();
    while counters().pages_sharing < want && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let merged = counters();
    eprintln!("kernel: merged in {:.1} s: {merged:?}", t0.elapsed().as_secs_f64());
    if merged.pages_sharing < want {
        return Err(format!("ksmd merged only {} of {want} pages in a minute", merged.pages_sharing));
    }
    let (out0, copy0) = (vmstat("pswpout"), vmstat("ksm_swpin_copy"));
    std::fs::write(setup.cgroup.join(limit_file), (100 * MIB).to_string()).map_err(|e| format!("{limit_file}: {e}"))?;
    let start = Instant::now();
    setup.spawn(&["--mib", "64", "--rate", "200000", "--instance", "9"]);
    let mut seen = Vec::new();
    for &mark in &MARKS {
        let left = Duration::from_secs_f64(mark).saturating_sub(start.elapsed());
        std::thread::sleep(left);
        let c = counters();
        seen.push(Seen {
            pages_shared: c.pages_shared as f64,
            pages_sharing: c.pages_sharing as f64,
            swpin_copy: (vmstat("ksm_swpin_copy") - copy0) as f64,
            pswpout: (vmstat("pswpout") - out0) as f64,
        });
    }
    let alive = setup.children.iter_mut().all(|c| c.try_wait().is_ok_and(|s| s.is_none()));
    if !alive {
        return Err("the cgroup's OOM killer ended a process".into());
    }
    drop(setup);
    drop(ksm);
    Ok(seen)
}

/// The model's mirror, read at the same marks after the hot guest
/// starts (a run ending at each: one seed, so each is the start of the
/// next).
fn model() -> Vec<Seen> {
    // The sharers merge in their first few seconds; the locked guest
    // takes its 160 MiB at 10 s (ksmd long done), the hot guest starts
    // at 11 s.
    let hot_at = 11.0;
    MARKS
        .iter()
        .map(|&mark| {
            let yaml = format!(
                "
name: ksm-swap
seed: 1
duration: {}ms
sample_every: 500ms
host:
  ram: 260M
  reserved: 0
  thp: never
  ksm: {{ run: true, pages_to_scan: 1000, sleep_millisecs: 20, smart_scan: false }}
  swap: {{ size: 1G, device: nvme }}
guests:
  - name: p
    count: {SHARERS}
    memory: 64M
    image: same
    prealloc: true
    workload: {{ working_set: 100%, touch_rate: 200/s, pattern: uniform, shared: 100%, write: 0% }}
  - name: ballast
    memory: 160M
    locked: true
    workload:
      working_set: 4K
      touch_rate: 1/s
      phases: [ {{ at: 10s, working_set: 160M, touch_rate: 10M/s }} ]
  - name: hot
    memory: 64M
    workload:
      working_set: 4K
      touch_rate: 1/s
      write: 0%
      phases: [ {{ at: {hot_at}s, working_set: 64M, touch_rate: 200k/s }} ]
",
                ((hot_at + mark) * 1000.0) as u64
            );
            let run = crate::mirror::run("ksm-swap", &yaml);
            let (ksm, vm) = (&run.summary["host"]["ksm"], &run.summary["host"]["vmstat"]);
            let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
            Seen {
                pages_shared: f(&ksm["pages_shared"]),
                pages_sharing: f(&ksm["pages_sharing"]),
                swpin_copy: f(&vm["ksm_swpin_copy"]),
                pswpout: f(&vm["pswpout"]),
            }
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "opt-in (root, about a minute): cargo test --release --test system -- --ignored ksm_swap --test-threads 1"]
fn ksm_pages_are_swapped_out_once_and_copied_back_as_the_kernel_does() {
    let _lock = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some((root, limit_file)) = crate::kernel_reclaim::swap_and_cgroup("a swap file, a memory cgroup, KSM's knobs")
    else {
        return;
    };
    let k = match kernel(&root, limit_file) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let m = model();
    for (i, mark) in MARKS.iter().enumerate() {
        eprintln!("+{mark} s: kernel {:?}\n       model  {:?}", k[i], m[i]);
    }
    let near = |what: &str, mark: f64, k: f64, m: f64, bound: f64| {
        assert!((m / k - 1.0).abs() <= bound, "{what} {mark} s after the limit: model {m}, kernel {k}");
    };
    // Where ksmd's counters stand 3 and 15 s in: the stale nodes it has
    // met (each KSM page swapped out counts until then). The bounds are
    // the model's farthest from one kernel run in the nine above (11% at
    // 3 s, 19% at 15 s) with room for the kernel's spread: 15% and 25%.
    // Without stale nodes the counters would fall with the swap-outs at
    // once (near 0 at 3 s); without KSM swap-out they would not fall.
    for (i, bound) in [(0, 0.15), (1, 0.25)] {
        near("pages_shared", MARKS[i], k[i].pages_shared, m[i].pages_shared, bound);
        near("pages_sharing", MARKS[i], k[i].pages_sharing, m[i].pages_sharing, bound);
    }
    // The sharers' copies of the pages another read back, at 15 s: a
    // thousand or so, the model 12–31% above the kernel's runs; within 40%.
    near("ksm_swpin_copy", MARKS[1], k[1].swpin_copy, m[1].swpin_copy, 0.40);
    // Each KSM page that went was written once (at least), in both.
    for (who, s) in [("kernel", &k), ("model", &m)] {
        let gone = 16_384.0 - s[1].pages_shared;
        assert!(s[1].pswpout >= gone, "{who}: {} pages written for {gone} KSM pages gone", s[1].pswpout);
    }
}
