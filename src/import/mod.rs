//! Foreign descriptions in: libvirt domain XML and a running host, turned
//! into scenarios. (QEMU command lines are read where scenarios are, in
//! [`crate::scenario::qemu`], since a scenario may carry one.)
//!
//! [`libvirt`] reads domain XML, [`live`] looks at the QEMU processes (and
//! libvirt domains) running on this machine, and [`write`](mod@write) turns what
//! either found into scenario text, which is loaded once more before it is
//! handed out: an import always gives a scenario `check` accepts.

pub mod libvirt;
pub mod live;
pub mod write;

use std::path::{Path, PathBuf};

use libvirt::{Domain, ImportError};
use write::{Header, Imported};

/// The scenario an import wrote, and what it had to say on the way.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub yaml: String,
    /// Warnings (`file:line:column: element: message`) and skipped guests.
    pub warnings: Vec<String>,
    pub guests: usize,
    pub groups: usize,
}

/// A domain as a guest to write.
pub fn from_domain(d: &Domain) -> Imported {
    let balloon_min = match (d.ovirt_min_guaranteed, d.memtune.min_guarantee) {
        (Some(b), _) => {
            Some((b, "oVirt's guaranteed memory (ovirt-vm:minGuaranteedMemoryMb): MoM's floor".to_string()))
        }
        (None, Some(b)) => Some((
            b,
            "libvirt <min_guarantee> (QEMU's driver refuses it to start a domain): kept as the balloon's floor"
                .to_string(),
        )),
        (None, None) => None,
    };
    Imported {
        name: d.name.clone(),
        source: format!("{} (libvirt domain {})", d.file, d.name),
        memory: d.memory.clone(),
        current_memory: d.current_memory,
        memtune: crate::scenario::Memtune {
            hard_limit: d.memtune.hard_limit,
            soft_limit: d.memtune.soft_limit,
            swap_hard_limit: d.memtune.swap_hard_limit,
        },
        balloon_stats: d.balloon.stats_period.is_some_and(|p| p > 0),
        balloon_min,
        image: d.image.clone(),
        observed: None,
        vcpus: d.vcpus,
        notes: d.warnings.iter().map(|w| w.to_string()).collect(),
    }
}

/// `overcommit import libvirt PATH...`: domain XML files, directories of
/// them and `-` (read from `stdin`), on the host `host` gives (this
/// machine when `None`).
pub fn import_libvirt(
    paths: &[PathBuf],
    stdin: &mut dyn std::io::Read,
    host: Option<&Path>,
) -> Result<Outcome, ImportError> {
    let domains = libvirt::read_paths_from(paths, stdin)?;
    let host_section = host_section(host)?;
    let guests: Vec<Imported> = domains.iter().map(from_domain).collect();
    let description = format!(
        "{} libvirt domain{} imported by `overcommit import libvirt`",
        guests.len(),
        if guests.len() == 1 { "" } else { "s" }
    );
    let header = Header { name: "imported", description: &description, host_section: &host_section, profile: None };
    finish(&header, &guests, Vec::new())
}

/// Write `guests` and make sure the text loads.
pub fn finish(header: &Header, guests: &[Imported], mut warnings: Vec<String>) -> Result<Outcome, ImportError> {
    let (host_section, note) = with_pools_for(header.host_section, guests);
    warnings.extend(note);
    let header = Header { host_section: &host_section, ..*header };
    let yaml = write::scenario_yaml(&header, guests);
    let loaded = crate::scenario::load_str(&yaml, "<imported scenario>", header.name, &[]).map_err(|e| {
        ImportError::file_only(
            "<imported scenario>",
            format!("the scenario written does not load (a bug in the import; please report it):\n{e}"),
        )
    })?;
    for g in guests {
        warnings.extend(g.notes.iter().cloned());
    }
    Ok(Outcome { guests: guests.len(), groups: loaded.scenario.guests.len(), yaml, warnings })
}

/// The `host:` section: this machine's (what `overcommit host --scenario`
/// writes), or the one in `file` (a scenario, or a file holding only a
/// `host:` section), checked and copied with its comments.
pub fn host_section(file: Option<&Path>) -> Result<String, ImportError> {
    let Some(file) = file else {
        return Ok(crate::calibrate::host::inspect().scenario_host_yaml());
    };
    let label = file.display().to_string();
    let text =
        std::fs::read_to_string(file).map_err(|e| ImportError::file_only(&label, format!("cannot read: {e}")))?;
    if let Err(e) = crate::scenario::load_str(&text, &label, "host", &[]) {
        return Err(ImportError::file_only(&label, format!("not a valid host section:\n{e}")));
    }
    // The section runs from a `host:` line at the left margin to the next
    // top-level key.
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let top = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
        if top {
            inside = line.starts_with("host:");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    if out.is_empty() {
        return Err(ImportError::file_only(&label, "has no `host:` section at the left margin"));
    }
    Ok(out)
}

/// `host_section` with hugetlb pools big enough for `guests`: a domain
/// backed by huge pages needs its pool on the host it runs on, so where the
/// section's pools are smaller they are raised to what the guests take
/// (whole huge pages per backend), with a comment and a warning saying so.
fn with_pools_for(host_section: &str, guests: &[Imported]) -> (String, Option<String>) {
    use crate::scenario::HugePageSize;
    use crate::scenario::guestmem::Pages;
    let Ok(loaded) = crate::scenario::load_str(host_section, "host", "host", &[]) else {
        return (host_section.to_string(), None);
    };
    let host = loaded.scenario.host;
    let mut need = [(HugePageSize::Size2M, 0u64), (HugePageSize::Size1G, 0u64)];
    for g in guests {
        for r in g.memory.regions.iter().filter(|r| r.is_ram()) {
            let size = match r.pages {
                Pages::Small => continue,
                Pages::Huge(None) => host.hugepages.size,
                Pages::Huge(Some(b)) => match HugePageSize::from_bytes(b.bytes()) {
                    Some(s) => s,
                    None => continue,
                },
            };
            if let Some(n) = need.iter_mut().find(|n| n.0 == size) {
                n.1 += r.size.bytes().div_ceil(size.bytes());
            }
        }
    }
    let have = |size| host.pool(size).map_or(0, |p| p.count);
    let short: Vec<(HugePageSize, u64)> = need.iter().copied().filter(|&(s, n)| n > have(s)).collect();
    if short.is_empty() {
        return (host_section.to_string(), None);
    }
    // The pools must fit in usable RAM with 1 GiB left for ordinary
    // memory; beyond that they are cut (pages of both sizes alike) and the
    // guests that do not fit fail to start, as QEMU would.
    let room = host.usable().bytes().saturating_sub(1 << 30);
    let wanted: u64 = need.iter().map(|&(s, n)| n.max(have(s)) * s.bytes()).sum();
    let mut capped = false;
    if wanted > room {
        capped = true;
        let keep = room as f64 / wanted as f64;
        for n in need.iter_mut() {
            n.1 = ((n.1.max(have(n.0)) as f64) * keep).floor() as u64;
        }
    }
    let host_has = |size| host.pool(size).map_or(0, |p| p.count);
    let have = |size| if capped { 0 } else { host_has(size) };
    // The pools to write: the default size first, then the other if used.
    let default = host.hugepages.size;
    let other = if default == HugePageSize::Size2M { HugePageSize::Size1G } else { HugePageSize::Size2M };
    let count = |s: HugePageSize| need.iter().find(|n| n.0 == s).map_or(0, |n| n.1).max(have(s));
    let mut lines = vec!["  # raised by the import: the guests need these huge pages (vm.nr_hugepages and\n  # /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages on the host they run on)".to_string()];
    if count(other) > 0 {
        lines.push("  hugepages:".into());
        lines.push(format!("    - {{ size: {}, count: {} }}", default.label(), count(default)));
        lines.push(format!("    - {{ size: {}, count: {} }}", other.label(), count(other)));
    } else {
        lines.push(format!("  hugepages: {{ size: {}, count: {} }}", default.label(), count(default)));
    }
    let mut out = String::new();
    let mut skipping = false;
    let mut written = false;
    for line in host_section.lines() {
        if line.starts_with("  hugepages:") {
            skipping = true;
            if !written {
                for l in &lines {
                    out.push_str(l);
                    out.push('\n');
                }
                written = true;
            }
            continue;
        }
        if skipping && line.starts_with("    ") {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    if !written {
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    let said: Vec<String> =
        short.iter().map(|&(s, n)| format!("{n} huge pages of {} (the host has {})", s.label(), host_has(s))).collect();
    let note = if capped {
        format!(
            "the guests need {}, more than this host's usable RAM holds: the scenario's pools take what fits ({}), and the hugepage guests beyond it will fail to start",
            said.join(" and "),
            need.iter()
                .filter(|n| n.1 > 0)
                .map(|n| format!("{} × {}", n.1, n.0.label()))
                .collect::<Vec<_>>()
                .join(" and ")
        )
    } else {
        format!(
            "the guests need {}: the scenario's hugetlb pools are raised to that; set them on the host too",
            said.join(" and ")
        )
    };
    (out, Some(note))
}
