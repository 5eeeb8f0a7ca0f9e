//! `overcommit import live` against the real guests of
//! [`crate::real_guests`]: it must recover each domain's configuration as
//! libvirt holds it and its memory as the host kernel counts it, see the
//! balloon libvirt sees, and a scenario built from it must free the host
//! memory the real balloon freed.

use std::path::{Path, PathBuf};

use overcommit::scenario::{GuestGroup, Scenario};

use crate::real_guests::{Ballooned, FullSize, GUEST_MIB, RealGuests};

const MIB: u64 = 1 << 20;

/// A host section of our own, so the imported scenario does not depend on
/// this machine's swap or pools.
fn host_file(dir: &Path) -> PathBuf {
    let path = dir.join("host.yaml");
    std::fs::write(&path, "host:\n  ram: 16G\n  reserved: 1G\n  thp: madvise\n").expect("write host file");
    path
}

/// Run `overcommit import live` as a user would; the scenario's text and
/// what it loads to.
pub fn import_live(dir: &Path) -> (String, Scenario) {
    let out = dir.join("live.yaml");
    let run = assert_cmd::Command::cargo_bin("overcommit")
        .expect("the overcommit binary")
        .args(["import", "live", "--libvirt", "qemu:///system", "--host"])
        .arg(host_file(dir))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("overcommit runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "import live failed:\n{stderr}");
    eprintln!("import live: {}", stderr.trim());
    let text = std::fs::read_to_string(&out).expect("the imported scenario");
    let loaded = overcommit::scenario::load_str(&text, "live.yaml", "live", &[])
        .unwrap_or_else(|e| panic!("the imported scenario does not load:\n{e}\n{text}"));
    (text, loaded.scenario)
}

/// The group and instance index holding domain `name`.
fn find<'a>(s: &'a Scenario, name: &str) -> (&'a GuestGroup, usize) {
    s.guests
        .iter()
        .find_map(|g| g.names.iter().position(|n| n == name).map(|k| (g, k)))
        .unwrap_or_else(|| panic!("domain {name} is not in the imported scenario"))
}

/// At full size: the configuration as libvirt has it (512 MiB, a virtio
/// balloon with statistics, `<currentMemory>` all of it, ordinary memory),
/// and resident memory within 5% of what /proc shows for the guest's RAM.
pub fn check_full_size(g: &RealGuests, full: &[FullSize]) -> (String, Scenario) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (text, s) = import_live(dir.path());
    for (d, f) in g.domains().iter().zip(full) {
        let (group, k) = find(&s, d.name());
        // The domain XML the fixture defined, read by the same reader.
        let xml = g.env.dumpxml(d.name());
        let dom = overcommit::import::libvirt::read_domain(&xml, "dumpxml").expect("libvirt's XML reads");
        assert_eq!(group.memory.bytes(), dom.memory.ram_bytes(), "{}: memory", d.name());
        assert_eq!(group.memory.bytes(), GUEST_MIB * MIB);
        assert_eq!(group.current_memory, None, "{}: <currentMemory> is all of <memory>", d.name());
        assert!(group.balloon && group.balloon_stats, "{}: virtio balloon with a stats period", d.name());
        assert_eq!(group.backends.len(), 1);
        assert_eq!(group.backends[0].hugetlb, None);
        assert!(!group.locked && !group.memtune.is_set());
        let o = &group.observed[k];
        let proc_resident = f.qemu.guest_ram_kib * 1024;
        let diff = o.resident.bytes().abs_diff(proc_resident) as f64 / proc_resident as f64;
        eprintln!(
            "{}: import live resident {} MiB (THP {} MiB), /proc guest RAM {} MiB: {:.2}% apart",
            d.name(),
            o.resident.bytes() / MIB,
            o.thp.bytes() / MIB,
            proc_resident / MIB,
            100.0 * diff
        );
        assert!(diff <= 0.05, "{}: observed {} vs /proc {proc_resident}", d.name(), o.resident.bytes());
        assert_eq!(o.balloon.bytes(), 0, "{}: the balloon is empty", d.name());
    }
    (text, s)
}

/// After `virsh setmem` to a quarter: the observed balloon is libvirt's
/// (`<memory>` − `actual` of `virsh dommemstat`).
pub fn check_ballooned(g: &RealGuests, ballooned: &[Ballooned]) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let (_, s) = import_live(dir.path());
    for (d, b) in g.domains().iter().zip(ballooned) {
        let (group, k) = find(&s, d.name());
        let actual = g.env.dommemstat(d.name())["actual"] * 1024;
        let want = group.memory.bytes() - actual;
        assert_eq!(group.observed[k].balloon.bytes(), want, "{}: balloon", d.name());
        assert_eq!(want, group.memory.bytes() - b.target_kib * 1024);
    }
}

/// The imported scenario (at full size) with each guest's workload as
/// memtouch made it, and `virsh setmem` to a quarter as a phase, must free
/// the host memory the real balloon freed, within 10%.
///
/// The workload: the guest uses what its kernel says is not free when
/// memtouch is ready (`MemTotal − MemFree`, plus what the guest kernel
/// holds back from MemTotal: it is guest RAM too), and had used the 160
/// MiB memtouch unmapped on top of that until just before; it keeps
/// touching the rest slowly. The warm start puts the observed resident
/// memory in place.
pub fn check_model_frees_what_the_balloon_freed(g: &RealGuests, text: &str, ballooned: &[Ballooned]) {
    let d = &g.domains()[0];
    let b = &ballooned[0];
    let memory_kib = GUEST_MIB * 1024;
    let used_kib = memory_kib - d.ready.u64("memfree_kib");
    let before_kib = used_kib + d.ready.u64("freed_mib") * 1024;
    let workload = format!(
        "workload: {{ working_set: {before_kib}K, touch_rate: 20k/s, phases: [ {{ at: 500ms, working_set: {used_kib}K }}, {{ at: 1s, current_memory: {}K }} ] }}",
        b.target_kib
    );
    let placeholder = "workload: { working_set: 50%, touch_rate: 100k/s, pattern: uniform }";
    assert!(text.contains(placeholder), "the import's workload placeholder changed");
    let scenario_text =
        text.replace(placeholder, &workload).replace("duration: 10m", "duration: 4s\nsample_every: 100ms");
    let s = overcommit::scenario::load_str(&scenario_text, "model.yaml", "model", &[])
        .unwrap_or_else(|e| panic!("{e}\n{scenario_text}"))
        .scenario;
    let cfg = overcommit::engine::RunConfig { sample_rate: Some(1.0), ..Default::default() };
    let mut rec = overcommit::engine::Recorder::default();
    overcommit::engine::run(&s, cfg, &mut rec).expect("the model runs");
    let (group, k) = find(&s, d.name());
    let gi = s.guests.iter().position(|x| x.name == group.name).expect("group");
    let index: usize = s.guests[..gi].iter().map(|x| x.count as usize).sum::<usize>() + k;
    let at = |t_ms: u64| {
        rec.samples.iter().find(|x| x.t_ns == t_ms * 1_000_000).expect("a sample").guests[index].resident_bytes
    };
    let model_freed = at(900).saturating_sub(at(4000));
    let real_freed = b.before.guest_ram_kib.saturating_sub(b.after.guest_ram_kib) * 1024;
    let apart = model_freed.abs_diff(real_freed) as f64 / real_freed as f64;
    eprintln!(
        "{}: the balloon to {} MiB freed {} MiB of guest RAM on the host; the model frees {} MiB ({:.1}% apart)",
        d.name(),
        b.target_kib / 1024,
        real_freed / MIB,
        model_freed / MIB,
        100.0 * apart
    );
    assert!(apart <= 0.10, "model frees {model_freed} B, the real balloon freed {real_freed} B");
}
