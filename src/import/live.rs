//! This host as it runs: every QEMU process, read through its command line
//! (the same reader a scenario's `qemu:` uses) or, where libvirt manages
//! it, through its domain XML (`virsh dumpxml`), with what it holds now:
//! resident and swapped memory, transparent huge pages, KSM-merged pages
//! (from `/proc/PID/`), and the balloon's size (`virsh dommemstat`).
//!
//! A process that exits while it is read is reported and skipped. Reading
//! `/proc` goes through a root directory so tests can give recorded files.

use std::path::{Path, PathBuf};

use super::libvirt::{self, ImportError};
use super::write::{Header, Imported};
use super::{Outcome, finish, from_domain, host_section};
use crate::running::{Held, QemuProcess, dommemstat_actual, held, qemu_processes, virsh};
use crate::scenario::Observed;
use crate::scenario::guestmem::GuestMemory;
use crate::units::ByteSize;

/// The command line as one string the QEMU reader takes (each word quoted).
fn shell_words(argv: &[String]) -> String {
    argv.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ")
}

/// How `import live` reads libvirt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtUse {
    /// Try `qemu:///system` (or `$LIBVIRT_DEFAULT_URI`) and go on without
    /// libvirt when it does not answer.
    Auto,
    /// This URI, which must answer.
    Uri(String),
    /// Not at all: every QEMU process is read through its command line.
    Off,
}

/// `overcommit import live`: the QEMU guests running here.
pub fn import_live(
    root: &Path,
    use_libvirt: &LibvirtUse,
    host: Option<&Path>,
    profile: Option<&crate::profile::Options>,
) -> Result<Outcome, ImportError> {
    let mut warnings = Vec::new();
    let processes = qemu_processes(root);
    let uri = match use_libvirt {
        LibvirtUse::Uri(u) => Some(u.clone()),
        LibvirtUse::Auto => std::env::var("LIBVIRT_DEFAULT_URI").ok().or_else(|| Some("qemu:///system".to_string())),
        LibvirtUse::Off => None,
    };
    let mut domains: Vec<String> = Vec::new();
    let mut libvirt_uri = None;
    if let Some(u) = uri {
        match virsh(&u, &["list", "--name", "--state-running"]) {
            Ok(list) => {
                domains = list.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
                libvirt_uri = Some(u);
            }
            Err(e) => {
                if matches!(use_libvirt, LibvirtUse::Uri(_)) {
                    return Err(ImportError::file_only(&u, format!("libvirt does not answer: {e}")));
                }
            }
        }
    }
    let mut guests: Vec<Imported> = Vec::new();
    let mut claimed: Vec<u32> = Vec::new();
    // Each guest's QEMU process, by the guest's name (for profiling).
    let mut pids: Vec<(String, u32)> = Vec::new();
    if let Some(u) = &libvirt_uri {
        for name in &domains {
            let xml = match virsh(u, &["dumpxml", name]) {
                Ok(x) => x,
                Err(e) => {
                    warnings.push(format!("libvirt domain {name}: skipped, it went away while being read ({e})"));
                    continue;
                }
            };
            let label = format!("virsh dumpxml {name}");
            let d = libvirt::read_domain(&xml, &label)?;
            let mut g = from_domain(&d);
            let memory = d.memory.ram_bytes();
            let proc = processes.iter().find(|p| p.name == *name);
            let actual = virsh(u, &["dommemstat", name]).ok().and_then(|t| dommemstat_actual(&t));
            let sizes: Vec<u64> = d.memory.regions.iter().map(|r| r.capacity.bytes()).collect();
            match proc.map(|p| (p.pid, held(root, p.pid, &sizes))) {
                Some((pid, Ok(h))) => {
                    claimed.push(pid);
                    pids.push((name.clone(), pid));
                    g.source = format!("libvirt domain {name} ({u}), QEMU pid {pid}");
                    g.observed = Some(observed(name, &h, actual.map(|a| memory.saturating_sub(a))));
                }
                Some((pid, Err(e))) => {
                    claimed.push(pid);
                    warnings
                        .push(format!("libvirt domain {name}: QEMU pid {pid} exited while being read ({e}); skipped"));
                    continue;
                }
                None => {
                    warnings.push(format!(
                        "libvirt domain {name}: its QEMU process is not visible here (another PID namespace?); imported without its current state"
                    ));
                    g.source = format!("libvirt domain {name} ({u})");
                }
            }
            guests.push(g);
        }
        // Domains without a state while others have one would not group
        // with `observed:` lists; give them an empty state (a cold start).
        if guests.iter().any(|g| g.observed.is_some()) {
            for g in guests.iter_mut().filter(|g| g.observed.is_none()) {
                g.observed = Some(observed(&g.name.clone(), &Held::default(), None));
            }
        }
    }
    for p in processes.iter().filter(|p| !claimed.contains(&p.pid)) {
        let q = match crate::scenario::qemu::parse(&shell_words(&p.argv)) {
            Ok(q) => q,
            Err(e) => {
                warnings.push(format!(
                    "QEMU pid {} ({}): skipped, its command line is not read: {} (at `{}`)",
                    p.pid, p.name, e.message, e.token
                ));
                continue;
            }
        };
        let sizes: Vec<u64> = q.guest.regions.iter().map(|r| r.capacity.bytes()).collect();
        let h = match held(root, p.pid, &sizes) {
            Ok(h) => h,
            Err(e) => {
                warnings.push(format!("QEMU pid {} ({}): exited while being read ({e}); skipped", p.pid, p.name));
                continue;
            }
        };
        pids.push((p.name.clone(), p.pid));
        guests.push(from_process(p, q.guest, &h));
    }
    if guests.is_empty() {
        warnings.push(
            "no running QEMU guest found (no qemu-system-* process, and no running libvirt domain): the scenario has this host and no guests"
                .to_string(),
        );
    }
    let host_section = host_section(host)?;
    let description = format!(
        "{} guest{} running on this host, imported by `overcommit import live`{}",
        guests.len(),
        if guests.len() == 1 { "" } else { "s" },
        libvirt_uri.as_ref().map(|u| format!(" (libvirt: {u})")).unwrap_or_default()
    );
    let report = match profile {
        Some(opts) => {
            let targets: Vec<crate::profile::Target> = guests
                .iter()
                .filter_map(|g| {
                    let pid = pids.iter().find(|(n, _)| *n == g.name)?.1;
                    let backends = g.memory.regions.iter().map(|r| r.capacity.bytes()).collect();
                    let libvirt = libvirt_uri.as_ref().map(|u| (g.name.clone(), u.clone()));
                    Some(crate::profile::Target { name: g.name.clone(), pid, backends, libvirt })
                })
                .collect();
            match crate::profile::profile(&targets, opts) {
                Ok(r) => {
                    warnings.extend(r.skipped.iter().map(|s| format!("profile skipped {s}")));
                    Some(r)
                }
                Err(e) => {
                    warnings.push(format!("profiling failed, workloads left as placeholders: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    let header =
        Header { name: "live", description: &description, host_section: &host_section, profile: report.as_ref() };
    finish(&header, &guests, warnings)
}

fn observed(name: &str, h: &Held, balloon: Option<u64>) -> Observed {
    Observed {
        name: name.to_string(),
        resident: ByteSize(h.resident),
        swapped: ByteSize(h.swapped),
        thp: ByteSize(h.thp),
        ksm_merged: ByteSize(h.ksm_merged),
        balloon: ByteSize(balloon.unwrap_or(0)),
    }
}

/// A QEMU process libvirt does not manage, from its command line.
fn from_process(p: &QemuProcess, memory: GuestMemory, h: &Held) -> Imported {
    Imported {
        name: p.name.clone(),
        source: format!("QEMU pid {} ({})", p.pid, p.argv.first().map_or("qemu", String::as_str)),
        memory,
        current_memory: None,
        memtune: crate::scenario::Memtune::default(),
        // QEMU polls balloon statistics only when told
        // (guest-stats-polling-interval); a bare command line does not.
        balloon_stats: false,
        balloon_min: None,
        image: None,
        observed: Some(observed(&p.name, h, None)),
        vcpus: smp_cpus(&p.argv),
        notes: Vec::new(),
    }
}

/// `-smp N` or `-smp cpus=N,...` (QEMU's count of virtual CPUs at start).
fn smp_cpus(argv: &[String]) -> Option<u32> {
    let i = argv.iter().position(|a| a == "-smp" || a == "--smp")?;
    let arg = argv.get(i + 1)?;
    arg.split(',').find_map(|item| match item.split_once('=') {
        Some(("cpus", v)) => v.parse().ok(),
        None => item.parse().ok(),
        _ => None,
    })
}

/// The root `/proc` is read under: `/` on a real host.
pub fn system_root() -> PathBuf {
    PathBuf::from("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, path: &str, content: &[u8]) {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn finds_qemu_processes_and_reads_their_state() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // A libvirt-started guest: argv as /proc/PID/cmdline has it, NUL
        // separated; and an unrelated process.
        let argv = ["/usr/bin/qemu-system-x86_64", "-name", "guest=web,,1,debug-threads=on", "-m", "size=2097152k"];
        put(root, "proc/4242/cmdline", (argv.join("\0") + "\0").as_bytes());
        put(root, "proc/1/cmdline", b"/sbin/init\0");
        // Values in the format of Documentation/filesystems/proc.rst.
        put(
            root,
            "proc/4242/status",
            b"Name:\tqemu-system-x86\nVmRSS:\t  1100000 kB\nRssAnon:\t  1000000 kB\nRssFile:\t   100000 kB\nRssShmem:\t       24 kB\nVmSwap:\t    2048 kB\n",
        );
        put(
            root,
            "proc/4242/smaps_rollup",
            b"Rss:  1100000 kB\nAnonHugePages:    524288 kB\nShmemPmdMapped:        0 kB\n",
        );
        put(
            root,
            "proc/4242/ksm_stat",
            b"ksm_rmap_items 300\nksm_zero_pages 0\nksm_merging_pages 256\nksm_process_profit 1028096\n",
        );
        let ps = qemu_processes(root);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].name, "web,1");
        let h = held(root, 4242, &[2 << 30]).unwrap();
        assert_eq!(h.resident, (1_000_000 + 24) * 1024);
        assert_eq!(h.swapped, 2048 * 1024);
        assert_eq!(h.thp, 524_288 * 1024);
        assert_eq!(h.ksm_merged, 256 * 4096);
        assert!(!h.guest_ram_only, "no smaps: the whole process's figures");
        // With smaps, the guest RAM's own mapping (2 GiB = 2097152 kB).
        put(
            root,
            "proc/4242/smaps",
            b"55d0c0000000-55d0c1000000 r-xp 00000000 08:01 1 /usr/bin/qemu-system-x86_64\nSize:              16384 kB\nRss:                9000 kB\nSwap:                  0 kB\n\
7f0000000000-7f0080000000 rw-p 00000000 00:00 0 \nSize:            2097152 kB\nRss:              900000 kB\nAnonHugePages:    524288 kB\nSwap:               2048 kB\n",
        );
        let h = held(root, 4242, &[2 << 30]).unwrap();
        assert!(h.guest_ram_only);
        assert_eq!((h.resident, h.swapped, h.thp), (900_000 * 1024, 2048 * 1024, 524_288 * 1024));
        let q = crate::scenario::qemu::parse(&shell_words(&ps[0].argv)).unwrap();
        assert_eq!(q.guest.ram_bytes(), 2 << 30);
    }

    #[test]
    fn a_process_that_is_gone_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(held(dir.path(), 99, &[]).is_err());
    }

    #[test]
    fn a_process_that_exits_while_read_is_reported_and_skipped() {
        // Its command line was read, then it exited: /proc/PID/status is
        // gone. The import says so and goes on with the others.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let argv = ["/usr/bin/qemu-system-x86_64", "-name", "guest=gone", "-m", "1G"];
        put(root, "proc/77/cmdline", (argv.join("\0") + "\0").as_bytes());
        let argv = ["/usr/bin/qemu-system-x86_64", "-name", "guest=here", "-m", "2G"];
        put(root, "proc/78/cmdline", (argv.join("\0") + "\0").as_bytes());
        put(root, "proc/78/status", b"RssAnon:\t  1024 kB\nRssShmem:\t 0 kB\nVmSwap:\t 0 kB\n");
        let host = root.join("host.yaml");
        std::fs::write(&host, "host: { ram: 64G }\n").unwrap();
        let out = import_live(root, &LibvirtUse::Off, Some(&host), None).unwrap();
        assert_eq!(out.guests, 1);
        assert!(out.warnings.iter().any(|w| w.contains("pid 77") && w.contains("exited")), "{:?}", out.warnings);
        assert!(out.yaml.contains("names: [\"here\"]"));
    }

    #[test]
    fn smp_gives_the_vcpus() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // qemu-options.hx: -smp [[cpus=]n][,maxcpus=...][,sockets=...]...
        assert_eq!(smp_cpus(&argv(&["qemu-system-x86_64", "-smp", "4,sockets=4,cores=1,threads=1"])), Some(4));
        assert_eq!(smp_cpus(&argv(&["qemu-system-x86_64", "-smp", "cpus=2,maxcpus=8"])), Some(2));
        assert_eq!(smp_cpus(&argv(&["qemu-system-x86_64", "-m", "1G"])), None);
    }

    #[test]
    fn dommemstat_actual_is_in_kib() {
        // virsh dommemstat prints "actual 1048576" (KiB) among its fields.
        let text = "actual 1048576\nswap_in 0\nrss 912344\n";
        assert_eq!(dommemstat_actual(text), Some(1 << 30));
        assert_eq!(dommemstat_actual("rss 1\n"), None);
    }
}
