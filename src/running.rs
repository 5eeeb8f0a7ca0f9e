//! The QEMU guests running on this host, as `/proc` and libvirt show
//! them: each process (its command line and guest name), the memory its
//! guest RAM holds now (resident, swapped, on THPs, KSM-merged), and
//! `virsh` for what libvirt adds. `import live` builds a scenario from
//! them and `profile` measures them; this is what both read.
//!
//! Reading `/proc` goes through a root directory so tests can give
//! recorded files.

use std::path::Path;
use std::process::Command;

/// A QEMU process found under `/proc`.
#[derive(Debug, Clone, PartialEq)]
pub struct QemuProcess {
    pub pid: u32,
    /// `-name guest=NAME` (or `-name NAME`), else `qemu-PID`.
    pub name: String,
    pub argv: Vec<String>,
}

/// What `/proc/PID/` says the process holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    /// Guest RAM resident: `Rss` of the mappings in /proc/PID/smaps whose
    /// size is one of the guest's memory backends (QEMU maps each backend
    /// as one block); where none is found, `RssAnon` + `RssShmem` of
    /// /proc/PID/status, which also counts QEMU's own heap.
    pub resident: u64,
    /// Swapped out: `Swap` of those mappings, else `VmSwap`.
    pub swapped: u64,
    /// Of `resident`, in THPs: `AnonHugePages` (+ `ShmemPmdMapped`) of
    /// those mappings, else of /proc/PID/smaps_rollup.
    pub thp: u64,
    /// Whether the figures are the guest RAM's own (its mappings were
    /// found) rather than the whole process's.
    pub guest_ram_only: bool,
    /// `ksm_merging_pages` (× 4 KiB) of /proc/PID/ksm_stat, or of the older
    /// /proc/PID/ksm_merging_pages (Linux 5.19); 0 where neither exists.
    pub ksm_merged: u64,
}

/// Whether `argv0` runs a QEMU system emulator.
fn is_qemu(argv0: &str) -> bool {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base.starts_with("qemu-system-") || base == "qemu-kvm" || base == "kvm"
}

/// Every QEMU process under `root/proc`, by PID. Processes that vanish
/// while the list is read are left out silently (they were not there).
pub fn qemu_processes(root: &Path) -> Vec<QemuProcess> {
    let Ok(dir) = std::fs::read_dir(root.join("proc")) else { return Vec::new() };
    let mut pids: Vec<u32> =
        dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect();
    pids.sort_unstable();
    let mut out = Vec::new();
    for pid in pids {
        let Ok(raw) = std::fs::read(root.join(format!("proc/{pid}/cmdline"))) else { continue };
        let argv: Vec<String> =
            raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if argv.first().is_none_or(|a| !is_qemu(a)) {
            continue;
        }
        let name = guest_name(&argv).unwrap_or_else(|| format!("qemu-{pid}"));
        out.push(QemuProcess { pid, name, argv });
    }
    out
}

/// `-name guest=NAME,...` or `-name NAME,...` (a `,,` is a literal comma).
fn guest_name(argv: &[String]) -> Option<String> {
    let i = argv.iter().position(|a| a == "-name" || a == "--name")?;
    let arg = argv.get(i + 1)?;
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                items.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
        .iter()
        .find_map(|it| it.strip_prefix("guest=").map(str::to_string))
        .or_else(|| items.first().filter(|f| !f.contains('=')).cloned())
}

/// What process `pid` holds, from `root/proc/PID/`; `backends` are the
/// byte sizes of the guest's memory backends, to find their mappings.
pub fn held(root: &Path, pid: u32, backends: &[u64]) -> std::io::Result<Held> {
    let dir = root.join(format!("proc/{pid}"));
    let status = std::fs::read_to_string(dir.join("status"))?;
    let kib = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |k| k * 1024)
    };
    let mut h = Held {
        resident: kib(&status, "RssAnon") + kib(&status, "RssShmem"),
        swapped: kib(&status, "VmSwap"),
        ..Held::default()
    };
    if let Ok(rollup) = std::fs::read_to_string(dir.join("smaps_rollup")) {
        h.thp = kib(&rollup, "AnonHugePages") + kib(&rollup, "ShmemPmdMapped");
    }
    let pages = |text: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix("ksm_merging_pages"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    if let Ok(smaps) = std::fs::read_to_string(dir.join("smaps")) {
        let ram = guest_mappings(&smaps, backends);
        if ram.found {
            h.resident = ram.rss;
            h.swapped = ram.swap;
            h.thp = ram.thp;
            h.guest_ram_only = true;
        }
    }
    if let Ok(stat) = std::fs::read_to_string(dir.join("ksm_stat")) {
        h.ksm_merged = pages(&stat).unwrap_or(0) * 4096;
    } else if let Ok(n) = std::fs::read_to_string(dir.join("ksm_merging_pages")) {
        h.ksm_merged = n.trim().parse::<u64>().unwrap_or(0) * 4096;
    }
    Ok(h)
}

/// The guest-RAM mappings of a /proc/PID/smaps, summed.
#[derive(Debug, Default)]
struct RamMappings {
    found: bool,
    rss: u64,
    swap: u64,
    thp: u64,
}

/// Sum the mappings of `smaps` whose `Size` is one of `backends` (bytes):
/// QEMU maps each memory backend as one block of exactly its size
/// (Documentation/filesystems/proc.rst: each mapping's header line is
/// followed by its `Size`, `Rss`, `AnonHugePages`, `Swap`, ... in kB).
fn guest_mappings(smaps: &str, backends: &[u64]) -> RamMappings {
    let mut out = RamMappings::default();
    let mut wanted: Vec<u64> = backends.iter().map(|b| b / 1024).filter(|&k| k > 0).collect();
    let mut current = false;
    for line in smaps.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let value = || rest.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match key {
            "Size" => {
                let size = value();
                // Each backend claims one mapping.
                current = match wanted.iter().position(|&k| k == size) {
                    Some(i) => {
                        wanted.swap_remove(i);
                        out.found = true;
                        true
                    }
                    None => false,
                };
            }
            "Rss" if current => out.rss += value() * 1024,
            "Swap" if current => out.swap += value() * 1024,
            "AnonHugePages" | "ShmemPmdMapped" if current => out.thp += value() * 1024,
            _ => {}
        }
    }
    out
}

/// `virsh -c URI ARGS...`: its standard output, or why it failed.
pub fn virsh(uri: &str, args: &[&str]) -> Result<String, String> {
    let out =
        Command::new("virsh").arg("-c").arg(uri).args(args).output().map_err(|e| format!("cannot run virsh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("virsh {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `actual` of `virsh dommemstat` (KiB), as bytes.
pub fn dommemstat_actual(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == "actual").then(|| f.next()?.parse::<u64>().ok().map(|k| k * 1024))?
    })
}
