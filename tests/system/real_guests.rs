//! Two real TCG guests under a real libvirtd, each running memtouch: what
//! the host's kernel and libvirt see of them, and what a virtio-balloon
//! inflation gives back.
//!
//! Booting guests under TCG takes most of this test's time, so every check
//! against real guests shares one boot: [`with_real_guests`] hands the
//! running guests to a closure, and the one `#[test]` here runs its checks
//! in order (the guests at full size, then ballooned down). Checks of
//! other commands against the same guests go where the test marks them.

use crate::guest_kit::{self, GuestKit, Unavailable};
use crate::libvirt_env::{Domain, GuestSpec, HostLock, LibvirtEnv, ProcMem, Workload, proc_mem};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Each guest's `<memory>`.
pub const GUEST_MIB: u64 = 512;
/// What memtouch writes in each guest, all pages distinct.
pub const TOUCH_MIB: u64 = 192;
/// Of that, what memtouch unmaps again: free in the guest, still held by
/// QEMU, so the balloon has something to give back. The 32 MiB left stay
/// in use, and fit in a quarter of the guest with its kernel.
pub const FREE_MIB: u64 = 160;

/// QEMU's own memory on top of the guest's RAM under TCG: about 100 MiB
/// measured on the development machine, half of it the translated-code
/// buffer (in THPs), the rest its heap, binary, firmware and the kernel
/// and initramfs it loads; bounded generously.
pub const QEMU_OVERHEAD_MIB: u64 = 192;

const MIB: u64 = 1024;

/// The guests, running, and the facts measured when they came up.
pub struct RealGuests {
    pub env: LibvirtEnv,
    pub kit: GuestKit,
    /// Each guest's QEMU process when its ready line had appeared, in the
    /// order of [`LibvirtEnv::domains`].
    pub at_ready: Vec<ProcMem>,
}

impl RealGuests {
    pub fn domains(&self) -> &[Domain] {
        self.env.domains()
    }
}

/// The two test guests.
pub fn specs() -> Vec<GuestSpec> {
    (0..2)
        .map(|i| GuestSpec {
            name: format!("overcommit-test-{i}"),
            memory_mib: GUEST_MIB,
            workload: Workload::Memtouch { touch_mib: TOUCH_MIB, free_mib: FREE_MIB },
        })
        .collect()
}

/// Boots the test guests and runs `f` against them; everything is torn
/// down afterwards, also when `f` panics. Prints `skipped: <reason>` and
/// returns without calling `f` where this machine cannot run them (not
/// root, libvirt or QEMU missing, no kernel to download). Call it holding
/// [`crate::LOCK`], as every test here does.
pub fn with_real_guests(f: impl FnOnce(&RealGuests)) {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: real guests under the system libvirtd need root");
        return;
    }
    let lock = HostLock::acquire();
    let t = Instant::now();
    let kit = match guest_kit::build() {
        Ok(kit) => kit,
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    eprintln!(
        "guest kit: {} (kernel {}), {} in {:.1?}",
        kit.kernel_package,
        kit.kernel_release,
        if kit.built { "built" } else { "cached" },
        t.elapsed()
    );
    let t = Instant::now();
    let env = match LibvirtEnv::boot(lock, &kit, &specs()) {
        Ok(env) => env,
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    eprintln!(
        "libvirt and {} guests up in {:.1?}; daemons started: {:?}",
        env.domains().len(),
        t.elapsed(),
        env.started_daemons()
    );
    let at_ready = env.domains().iter().map(|d| proc_mem(d.pid, d.spec.memory_mib * MIB)).collect();
    f(&RealGuests { env, kit, at_ready });
}

/// What [`check_full_size`] measured, per guest.
#[derive(Debug, Clone)]
pub struct FullSize {
    pub name: String,
    pub qemu: ProcMem,
    /// `virsh dommemstat`'s `actual`, KiB.
    pub actual_kib: u64,
    /// The balloon statistics the guest reported (`unused`, `available`, ...).
    pub stats: BTreeMap<String, u64>,
}

/// The guests as they came up: QEMU holds every page memtouch wrote (it
/// freed some in the guest, which does not tell the host) and at most the
/// guest plus QEMU's overhead; the balloon is at the domain's
/// `<currentMemory>` and the guest's driver reports statistics.
pub fn check_full_size(g: &RealGuests) -> Vec<FullSize> {
    let mut out = Vec::new();
    for d in g.domains() {
        let name = d.name();
        let qemu = proc_mem(d.pid, d.spec.memory_mib * MIB);
        eprintln!(
            "{name}: QEMU RSS {} MiB, of which guest RAM {} MiB (THP {} MiB, swap {} MiB); \
             memtouch wrote {} MiB, {} MiB still mapped; guest MemTotal {} MiB",
            qemu.rss_kib / MIB,
            qemu.guest_ram_kib / MIB,
            qemu.anon_huge_kib / MIB,
            qemu.swap_kib / MIB,
            d.ready.u64("touched_mib"),
            d.ready.u64("resident_mib"),
            d.ready.u64("memtotal_kib") / MIB
        );
        assert_eq!((d.ready.u64("touched_mib"), d.ready.u64("freed_mib")), (TOUCH_MIB, FREE_MIB), "{}", d.ready.line);
        assert!(
            qemu.guest_ram_kib + qemu.swap_kib >= TOUCH_MIB * MIB,
            "{name}: guest RAM resident {} KiB (+ {} KiB swapped) below the {TOUCH_MIB} MiB touched",
            qemu.guest_ram_kib,
            qemu.swap_kib
        );
        assert!(
            qemu.rss_kib - qemu.guest_ram_kib <= QEMU_OVERHEAD_MIB * MIB,
            "{name}: QEMU holds {} KiB besides the guest's RAM, more than {QEMU_OVERHEAD_MIB} MiB",
            qemu.rss_kib - qemu.guest_ram_kib
        );
        assert!(qemu.rss_kib <= (GUEST_MIB + QEMU_OVERHEAD_MIB) * MIB, "{name}: RSS {} KiB", qemu.rss_kib);
        // The guest's /init names the driver that took each virtio device.
        let console = std::fs::read_to_string(&d.console).unwrap_or_default();
        assert!(console.contains("driver=virtio_balloon"), "{name}: no balloon driver bound:\n{console}");
        let current_kib = current_memory_kib(&g.env.dumpxml(name));
        assert_eq!(current_kib, GUEST_MIB * MIB, "{name}: <currentMemory> as defined");
        // Statistics taken after memtouch was ready: the driver sends them
        // every period (1 s), QEMU stamps them in whole seconds.
        let ready_secs = d.ready_at.duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs();
        let mut stats = g.env.dommemstat(name);
        let t = Instant::now();
        while stats.get("last_update").is_none_or(|&u| u <= ready_secs) && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(250));
            stats = g.env.dommemstat(name);
        }
        eprintln!("{name}: dommemstat {stats:?}");
        assert_eq!(stats.get("actual"), Some(&current_kib), "{name}: the balloon is empty: actual = <currentMemory>");
        for key in ["unused", "available", "usable", "last_update"] {
            assert!(stats.contains_key(key), "{name}: the guest's balloon driver reports no {key}: {stats:?}");
        }
        // `available` is the guest's MemTotal, `unused` its MemFree, which
        // memtouch's unmap raised: at least what it freed is free now.
        assert_eq!(stats["available"], d.ready.u64("memtotal_kib"), "{name}: {stats:?}");
        assert!(stats["unused"] <= stats["available"], "{name}: {stats:?}");
        assert!(stats["unused"] >= FREE_MIB * MIB, "{name}: {stats:?}");
        out.push(FullSize { name: name.to_string(), qemu, actual_kib: stats["actual"], stats });
    }
    out
}

/// What [`balloon_to_quarter`] measured, per guest.
#[derive(Debug, Clone)]
pub struct Ballooned {
    pub name: String,
    pub target_kib: u64,
    /// From `virsh setmem --live` returning to `actual` reaching the target.
    pub time_to_target: Duration,
    pub before: ProcMem,
    pub after: ProcMem,
}

/// `virsh setmem --live` to a quarter of each guest, one guest at a time:
/// the balloon reaches its target, libvirt's live XML follows, and QEMU
/// keeps at most the target of the guest's RAM: QEMU discards each page
/// the guest's driver puts in the balloon before it acknowledges it, and
/// the driver moves `actual` only after the acknowledgement. The balloon
/// takes free guest pages, so the 160 MiB memtouch wrote and freed go
/// back to the host.
pub fn balloon_to_quarter(g: &RealGuests) -> Vec<Ballooned> {
    let mut out = Vec::new();
    for d in g.domains() {
        let name = d.name();
        let guest_kib = d.spec.memory_mib * MIB;
        let target_kib = guest_kib / 4;
        let before = proc_mem(d.pid, guest_kib);
        g.env.setmem_live(name, target_kib);
        let t = Instant::now();
        let mut actual = g.env.dommemstat(name)["actual"];
        let mut trace = vec![(t.elapsed(), actual)];
        while actual > target_kib {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{name}: balloon stuck at {actual} KiB, target {target_kib} KiB: {trace:?}\n{}",
                crate::command::tail(&d.console, 20)
            );
            std::thread::sleep(Duration::from_millis(50));
            actual = g.env.dommemstat(name)["actual"];
            if trace.last().is_some_and(|&(_, a)| a != actual) {
                trace.push((t.elapsed(), actual));
            }
        }
        let time_to_target = t.elapsed();
        let after = proc_mem(d.pid, guest_kib);
        eprintln!(
            "{name}: balloon to {} MiB in {:.2?} ({:.0} MiB/s); QEMU RSS {} -> {} MiB, guest RAM {} -> {} MiB, \
             THP {} -> {} MiB; actual (MiB) over time: {}",
            target_kib / MIB,
            time_to_target,
            (guest_kib - target_kib) as f64 / MIB as f64 / time_to_target.as_secs_f64(),
            before.rss_kib / MIB,
            after.rss_kib / MIB,
            before.guest_ram_kib / MIB,
            after.guest_ram_kib / MIB,
            before.anon_huge_kib / MIB,
            after.anon_huge_kib / MIB,
            trace.iter().map(|(t, a)| format!("{} at {:.2}s", a / MIB, t.as_secs_f64())).collect::<Vec<_>>().join(", ")
        );
        assert_eq!(actual, target_kib, "{name}: the balloon stops at its target");
        assert!(
            after.guest_ram_kib <= target_kib,
            "{name}: {} KiB of the guest's RAM still resident, more than the {target_kib} KiB left to it",
            after.guest_ram_kib
        );
        assert!(after.rss_kib < before.rss_kib, "{name}: RSS did not fall: {before:?} -> {after:?}");
        // libvirt updates the live XML on QEMU's BALLOON_CHANGE event, which
        // QEMU sends at most once a second.
        let t = Instant::now();
        while current_memory_kib(&g.env.dumpxml(name)) != target_kib {
            assert!(t.elapsed() < Duration::from_secs(10), "{name}: live <currentMemory> does not follow the balloon");
            std::thread::sleep(Duration::from_millis(200));
        }
        out.push(Ballooned { name: name.to_string(), target_kib, time_to_target, before, after });
    }
    out
}

/// `<currentMemory>` of a domain XML, in KiB (libvirt writes it in KiB).
fn current_memory_kib(xml: &str) -> u64 {
    let doc = roxmltree::Document::parse(xml).expect("virsh dumpxml gives XML");
    let node = doc.descendants().find(|n| n.has_tag_name("currentMemory")).expect("a <currentMemory>");
    assert_eq!(node.attribute("unit").unwrap_or("KiB"), "KiB", "libvirt's live XML speaks KiB");
    node.text().and_then(|t| t.trim().parse().ok()).expect("a number in <currentMemory>")
}

/// The figures worth quoting, one line per guest.
fn report(g: &RealGuests, full: &[FullSize], ballooned: &[Ballooned]) {
    eprintln!("kernel {} ({}), initramfs {}", g.kit.kernel_release, g.kit.kernel_package, g.kit.initramfs.display());
    for (((d, ready), f), b) in g.domains().iter().zip(&g.at_ready).zip(full).zip(ballooned) {
        assert_eq!(f.name, b.name);
        eprintln!(
            "{}: boot {:.1?}, guest MemFree then {} MiB; QEMU RSS at ready {} MiB (guest RAM {} MiB), at the check {} MiB; \
             actual {} MiB, guest unused {} MiB; setmem {} MiB reached in {:.2?}, RSS {} -> {} MiB (fell {} MiB)",
            f.name,
            d.boot_time,
            d.ready.u64("memfree_kib") / MIB,
            ready.rss_kib / MIB,
            ready.guest_ram_kib / MIB,
            f.qemu.rss_kib / MIB,
            f.actual_kib / MIB,
            f.stats["unused"] / MIB,
            b.target_kib / MIB,
            b.time_to_target,
            b.before.rss_kib / MIB,
            b.after.rss_kib / MIB,
            (b.before.rss_kib.saturating_sub(b.after.rss_kib)) / MIB,
        );
    }
}

#[test]
fn tcg_guests_hold_what_they_touched_and_give_freed_memory_back_to_the_balloon() {
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    with_real_guests(|g| {
        let full = check_full_size(g);
        // `overcommit import live` against the guests at full size.
        let (imported, _) = crate::import_live::check_full_size(g, &full);
        let ballooned = balloon_to_quarter(g);
        crate::import_live::check_ballooned(g, &ballooned);
        crate::import_live::check_model_frees_what_the_balloon_freed(g, &imported, &ballooned);
        report(g, &full, &ballooned);
    });
}
