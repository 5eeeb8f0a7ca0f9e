//! How hard reclaim looks for each page it takes, against this kernel:
//! a process of 2 GiB on transparent huge pages (MADV_HUGEPAGE, as QEMU
//! asks for guest RAM) touching Zipf(0.9) as fast as it can under a
//! 1 GiB memory cgroup limit, with a swap file; and the same guest in the
//! model (its cgroup 1 GiB plus the QEMU overhead the model charges, TCG,
//! NVMe swap). The measure is pages scanned per page stolen: /proc/vmstat's
//! `pgscan_anon` over `pgsteal_anon`, which count a cgroup's own reclaim
//! (the `_direct` and `_kswapd` ones leave it out), over 30 s after 20 s
//! of warm-up.
//!
//! The swap file, the cgroup and the process are undone when the test
//! ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const MIB: u64 = 1 << 20;
const WARM: Duration = Duration::from_secs(20);
const MEASURED: Duration = Duration::from_secs(30);

/// A swap file, a memory cgroup and the process in it; all undone when
/// dropped.
struct Setup {
    cgroup: PathBuf,
    child: Option<Child>,
    swap: Option<crate::command::SwapFile>,
}

impl Setup {
    fn new(root: &Path, limit_file: &str) -> Result<Setup, String> {
        let mut setup = Setup {
            cgroup: root.join(format!("overcommit-kernel-scan-{}", std::process::id())),
            child: None,
            swap: None,
        };
        setup.swap = Some(crate::command::SwapFile::on(
            PathBuf::from(format!("/var/tmp/overcommit-scan-{}.swap", std::process::id())),
            4096,
        )?);
        std::fs::create_dir(&setup.cgroup).map_err(|e| format!("{}: {e}", setup.cgroup.display()))?;
        std::fs::write(setup.cgroup.join(limit_file), (1024 * MIB).to_string())
            .map_err(|e| format!("{limit_file}: {e}"))?;
        // cgroup v1 copies its parent's swappiness into a new group; the
        // kernel's default (60) is what the model follows.
        let swappiness = setup.cgroup.join("memory.swappiness");
        if swappiness.exists() {
            std::fs::write(&swappiness, "60").map_err(|e| format!("memory.swappiness: {e}"))?;
        }
        Ok(setup)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        crate::kernel_reclaim::remove_cgroup(&self.cgroup);
        drop(self.swap.take());
    }
}

fn anon_counts() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
    let get = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    (get("pgscan_anon"), get("pgsteal_anon"))
}

/// The kernel's pages scanned per page stolen while the process runs
/// (`None`: the cgroup's OOM killer ended it three times).
fn kernel(setup: &mut Setup) -> Option<f64> {
    for attempt in 1..=3 {
        let kills = crate::kernel_reclaim::oom_kills(&setup.cgroup);
        let child = crate::kernel_reclaim::touch_child_in(
            &setup.cgroup,
            &["--mib", "2048", "--rate", "1e12", "--pattern", "zipf(0.9)", "--thp"],
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("the touch child");
        setup.child = Some(child);
        std::thread::sleep(WARM);
        let before = anon_counts();
        std::thread::sleep(MEASURED);
        let after = anon_counts();
        let child = setup.child.as_mut().expect("started");
        let alive = child.try_wait().is_ok_and(|s| s.is_none());
        let _ = child.kill();
        let _ = child.wait();
        setup.child = None;
        if alive {
            let (scanned, stolen) = (after.0 - before.0, after.1 - before.1);
            eprintln!("kernel: pgscan_anon {scanned}, pgsteal_anon {stolen} in {MEASURED:?}");
            assert!(stolen > 0, "the cgroup's limit made the kernel reclaim");
            return Some(scanned as f64 / stolen as f64);
        }
        let killed = crate::kernel_reclaim::oom_kills(&setup.cgroup) > kills;
        assert!(killed, "the touch child ended and the cgroup's OOM killer did not end it");
        eprintln!("attempt {attempt}: the cgroup's OOM killer ended the touch child; trying again");
        std::thread::sleep(Duration::from_secs(5));
    }
    None
}

/// The model's, on the mirror: the counters' growth from 20 s to 50 s
/// (one seed, so the first run is the start of the second).
fn model() -> f64 {
    let run = |secs: u64| {
        let yaml = format!(
            "
name: kernel-scan
seed: 1
duration: {secs}s
host: {{ ram: 23G, reserved: 0, thp: madvise, swap: {{ size: 4G, device: nvme }} }}
guests:
  - name: vm
    memory: 2G
    prealloc: true
    accel: tcg
    memtune: {{ hard_limit: {}M }}
    workload: {{ working_set: 100%, touch_rate: 1M/s, pattern: \"zipf(0.9)\" }}
",
            1024 + 76
        );
        let s = overcommit::scenario::load_str(&yaml, "kernel-scan.yaml", "kernel-scan", &[]).expect("valid").scenario;
        let cfg = overcommit::engine::RunConfig { sample_rate: Some(1.0), ..Default::default() };
        overcommit::engine::run(&s, cfg, &mut overcommit::engine::Discard).expect("runs")
    };
    let (a, b) = (run(WARM.as_secs()), run((WARM + MEASURED).as_secs()));
    // The QEMU overhead the model charges a 2 GiB guest with one vCPU
    // (64 MiB + RAM/512 + 8 MiB), so 1 GiB stays for the guest's pages.
    assert_eq!(b.guests[0].memcg.as_ref().expect("a cgroup").overhead_bytes, 76 * MIB);
    let (va, vb) = (&a.host.vmstat, &b.host.vmstat);
    let (scanned, stolen) = (vb.pgscan_anon - va.pgscan_anon, vb.pgsteal_anon - va.pgsteal_anon);
    eprintln!("model: pgscan_anon {scanned}, pgsteal_anon {stolen}");
    scanned as f64 / stolen as f64
}

#[test]
#[ignore = "opt-in (root; about 70 s), and a known gap: the model's ratio swings between 5.4-6.4 and 10.5 as the limit moves by one huge page, where the kernel's stays 10.3-12.3"]
fn pages_scanned_per_page_stolen_on_thp_follow_the_kernels() {
    // Measured here (Linux 6.18, cgroup v1, a 4 GiB swap file): at the
    // 1 GiB limit 10.3, 10.6, 10.7 and 10.8 pages scanned for each stolen
    // (4.04-4.25 million pgscan_anon for 378 000-394 000 pgsteal_anon in
    // 30 s); at 1022 MiB 12.3 and at 1026 MiB 11.2. The model, at the
    // same 313 000-314 000 steals: 4.6 touch by touch and 5.4 in event
    // mode with the guest's 1 GiB, but 10.5 with 2 MiB less (and 5.4-6.4
    // from 2 to 8 MiB more): whether the cgroup's room is a whole number
    // of the huge pages the fill leaves decides how many THPs reclaim
    // splits (661 against 610) and how often its hands meet a busy one.
    // The kernel's ratio is the load's too: the zram test in
    // kernel_reclaim (1 GiB under 512 MiB) scans 5.5-6.9, the model 10-11.
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some((root, limit_file)) = crate::kernel_reclaim::swap_and_cgroup("a swap file and a memory cgroup") else {
        return;
    };
    let swaps_before = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let k = {
        let mut setup = match Setup::new(&root, limit_file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        match kernel(&mut setup) {
            Some(k) => k,
            None => {
                eprintln!("skipped: the cgroup's OOM killer ended the kernel's run three times");
                return;
            }
        }
    };
    assert_eq!(std::fs::read_to_string("/proc/swaps").unwrap_or_default(), swaps_before, "the swap file is off");
    let m = model();
    eprintln!("pages scanned per page stolen: kernel {k:.2}, model {m:.2} ({:+.1}%)", (m / k - 1.0) * 100.0);
    assert!((m / k - 1.0).abs() <= 0.10, "the model scans {m:.2} pages a steal, the kernel {k:.2}");
}
