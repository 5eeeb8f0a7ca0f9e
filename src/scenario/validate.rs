//! Checks that look at several fields at once: a working set larger than
//! its guest, a hugepage guest with no pool to draw from, guests that
//! cannot all start. Impossible things are errors; risky but legal things
//! (overcommit itself) are warnings.

use super::decode::Positions;
use super::schema::*;
use crate::input::diag::{Diagnostic, Severity};
use crate::input::node::Pos;
use crate::units::ByteSize;

pub fn check(s: &Scenario, pos: &Positions) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |path: &str| pos.get(path).copied().unwrap_or(Pos::default());
    let mut push = |sev: Severity, path: &str, p: Pos, msg: String| out.push(Diagnostic::new(sev, p, path, msg));
    use Severity::{Error, Warning};

    if s.duration.nanos() == 0 {
        push(Error, "duration", at("duration"), "duration is 0: nothing would be simulated".into());
    }
    if s.sample_every.nanos() == 0 {
        push(Error, "sample_every", at("sample_every"), "sample_every is 0: give an interval such as 1s".into());
    } else if s.sample_every > s.duration {
        let msg = format!(
            "sample_every ({}) is longer than duration ({}): only the final state would be sampled",
            s.sample_every, s.duration
        );
        push(Warning, "sample_every", at("sample_every"), msg);
    }

    let h = &s.host;
    if h.reserved >= h.ram {
        let msg = format!("reserved ({}) is not below ram ({}): nothing is left for guests", h.reserved, h.ram);
        push(Error, "host.reserved", at("host.reserved"), msg);
    } else if h.pool_bytes() > h.usable().bytes() {
        let pools: Vec<String> =
            h.hugepage_pools().map(|p| format!("{} × {} = {}", p.count, p.size.label(), ByteSize(p.bytes()))).collect();
        let msg = format!(
            "hugetlb pools of {} do not fit in usable RAM ({} = ram − reserved); the kernel would allocate fewer pages",
            pools.join(" and "),
            h.usable()
        );
        push(Error, "host.hugepages.count", at("host.hugepages.count"), msg);
    }
    if let Some(sw) = &h.swap
        && sw.size.bytes() == 0
    {
        push(
            Warning,
            "host.swap.size",
            at("host.swap.size"),
            "swap size is 0: the host has no swap to overcommit with".into(),
        );
    }
    if h.ksm.run && h.ksm.pages_to_scan == 0 {
        push(
            Warning,
            "host.ksm.pages_to_scan",
            at("host.ksm.pages_to_scan"),
            "KSM runs but scans 0 pages per wake-up: nothing will merge".into(),
        );
    }
    if s.guests.is_empty() {
        push(Warning, "guests", at("guests"), "no guests: the host idles".into());
    }

    let mut pool_needed: std::collections::BTreeMap<HugePageSize, u64> = Default::default();
    let mut ordinary: u64 = 0;
    for g in &s.guests {
        let gp = format!("guests.{}", g.name);
        let w = &g.workload;
        if w.working_set > g.memory {
            let msg = format!("working set {} is larger than the guest's memory {}", w.working_set, g.memory);
            push(Error, &format!("{gp}.workload.working_set"), at(&format!("{gp}.workload.working_set")), msg);
        }
        for (i, ph) in w.phases.iter().enumerate() {
            let pp = format!("{gp}.workload.phases.{i}");
            if let Some(ws) = ph.working_set
                && ws > g.memory
            {
                let msg = format!("working set {ws} is larger than the guest's memory {}", g.memory);
                push(Error, &format!("{pp}.working_set"), at(&format!("{pp}.working_set")), msg);
            }
            if i > 0 && ph.at <= w.phases[i - 1].at {
                let msg = format!("phases must be in time order: {} does not come after {}", ph.at, w.phases[i - 1].at);
                push(Error, &format!("{pp}.at"), at(&format!("{pp}.at")), msg);
            }
            if ph.at >= s.duration {
                let msg = format!(
                    "phase starts at {}, at or after the end of the run ({}): it never happens",
                    ph.at, s.duration
                );
                push(Warning, &format!("{pp}.at"), at(&format!("{pp}.at")), msg);
            }
        }
        if w.shared.get() + w.zero.get() + w.duplicate.get() > 1.0 + 1e-12 {
            let msg = format!(
                "shared ({}), zero ({}) and duplicate ({}) make more than 100% of the pages",
                w.shared, w.zero, w.duplicate
            );
            push(Error, &format!("{gp}.workload.zero"), at(&format!("{gp}.workload.zero")), msg);
        }
        let gpos = pos.get(&format!("{gp}.hugepages")).or(pos.get(&format!("{gp}.qemu"))).copied().unwrap_or(at(&gp));
        for b in &g.backends {
            let Some(want) = b.hugetlb else { continue };
            match h.pool(want) {
                Some(pool) if pool.count > 0 => {
                    if b.size.bytes() % want.bytes() != 0 {
                        let msg = format!(
                            "{} is not a whole number of {} pages: {} pages will be taken",
                            b.size,
                            want.label(),
                            b.size.pages(want.bytes())
                        );
                        push(Warning, &format!("{gp}.memory"), gpos, msg);
                    }
                }
                _ => {
                    let msg = if h.pool_bytes() == 0 {
                        "hugepage-backed guest, but the host has no hugetlb pool (host.hugepages.count is 0): QEMU would fail to start it".to_string()
                    } else {
                        let have: Vec<&str> =
                            h.hugepage_pools().filter(|p| p.count > 0).map(|p| p.size.label()).collect();
                        format!(
                            "guest wants {} huge pages but the host's pools hold {} pages: QEMU would fail to start it",
                            want.label(),
                            have.join(" and ")
                        )
                    };
                    push(Error, &format!("{gp}.hugepages"), gpos, msg);
                    break;
                }
            }
        }
        for size in [HugePageSize::Size2M, HugePageSize::Size1G] {
            *pool_needed.entry(size).or_insert(0) += g.pool_bytes(size) * u64::from(g.count);
        }
        ordinary += g.ordinary_bytes() * u64::from(g.count);
        if let Some(cur) = g.current_memory {
            let cpos = at(&format!("{gp}.current_memory"));
            if cur > g.memory {
                let msg = format!(
                    "current_memory {cur} is more than the guest's memory {}: the balloon cannot give more than the guest has (libvirt clamps it to <memory>)",
                    g.memory
                );
                push(Error, &format!("{gp}.current_memory"), cpos, msg);
            } else if cur < g.memory && !g.balloon {
                let msg = format!(
                    "current_memory {cur} is below memory {} but the guest has no balloon device to hold the difference",
                    g.memory
                );
                push(Error, &format!("{gp}.current_memory"), cpos, msg);
            }
        }
        for (i, ph) in w.phases.iter().enumerate() {
            let pp = format!("{gp}.workload.phases.{i}.current_memory");
            if let Some(cur) = ph.current_memory {
                if cur > g.memory {
                    let msg = format!(
                        "current_memory {cur} is more than the guest's memory {} (virsh setmem refuses: it cannot set more than the maximum)",
                        g.memory
                    );
                    push(Error, &pp, at(&pp), msg);
                } else if !g.balloon {
                    let msg =
                        "a current_memory phase needs a balloon device (virsh setmem works through virtio-balloon)"
                            .to_string();
                    push(Error, &pp, at(&pp), msg);
                }
            }
        }
        if let Some(mx) = g.maxmem
            && mx < g.memory
        {
            let msg = format!(
                "maxmem {mx} is below the guest's memory {}: QEMU requires maxmem to be at least the initial size",
                g.memory
            );
            push(Error, &format!("{gp}.maxmem"), at(&format!("{gp}.maxmem")), msg);
        }
        let mt = &g.memtune;
        if let (Some(hard), Some(swap)) = (mt.hard_limit, mt.swap_hard_limit)
            && hard > swap
        {
            // qemuDomainSetMemoryParameters: "memory hard_limit tunable
            // value must be lower than or equal to swap_hard_limit".
            let msg = format!(
                "hard_limit {hard} must be lower than or equal to swap_hard_limit {swap} (libvirt refuses this)"
            );
            push(Error, &format!("{gp}.memtune.hard_limit"), at(&format!("{gp}.memtune.hard_limit")), msg);
        }
        if let Some(hard) = mt.hard_limit
            && hard.bytes() == 0
        {
            let msg = "hard_limit 0 leaves QEMU no memory at all: it could not start".to_string();
            push(Error, &format!("{gp}.memtune.hard_limit"), at(&format!("{gp}.memtune.hard_limit")), msg);
        }
        // Instances beyond the observed ones (a plan growing the group)
        // start cold.
        if g.observed.len() > g.count as usize {
            let msg = format!(
                "`observed:` has {} entries for {} instances: give at most one per instance",
                g.observed.len(),
                g.count
            );
            push(Error, &format!("{gp}.observed"), at(&format!("{gp}.observed")), msg);
        }
        for (i, o) in g.observed.iter().enumerate() {
            if o.resident.bytes() + o.swapped.bytes() > g.memory.bytes() {
                let msg = format!(
                    "observed resident {} plus swapped {} is more than the guest's memory {}: the rest is QEMU's own memory, which the model leaves out",
                    o.resident, o.swapped, g.memory
                );
                push(Warning, &format!("{gp}.observed.{i}"), at(&format!("{gp}.observed")), msg);
            }
        }
        if g.hugepages {
            if s.host.ksm.run && g.ksm && w.shared.get() > 0.0 {
                let msg =
                    "expects shared pages, but KSM never scans hugetlbfs memory: nothing of this guest will merge"
                        .to_string();
                push(Warning, &format!("{gp}.workload.shared"), at(&format!("{gp}.workload.shared")), msg);
            }
            if g.balloon && !s.host.balloon.policy.is_none() {
                let msg = "has a balloon, but a balloon never frees hugepage-backed memory".to_string();
                push(Warning, &format!("{gp}.balloon"), at(&gp), msg);
            }
        } else {
            // The controller's own word about this guest (Proxmox skips guests
            // without a minimum, MoM those without statistics).
            let cfg = crate::policy::balloon::GuestConfig {
                balloon: g.balloon,
                balloon_stats: g.balloon_stats,
                balloon_min: g.balloon_min.bytes(),
            };
            if let Some((field, msg)) = s.host.balloon.policy.check_guest(cfg) {
                push(Warning, &format!("{gp}.{field}"), at(&gp), msg);
            }
            if s.host.ksm.run && g.share && g.ksm && w.shared.get() > 0.0 {
                let msg = "expects shared pages, but KSM never scans shared memory backends (share=on)".to_string();
                push(Warning, &format!("{gp}.share"), at(&format!("{gp}.share")), msg);
            }
            if s.host.ksm.run && !g.ksm && (w.shared.get() > 0.0 || w.zero.get() > 0.0) {
                let msg = "expects shared or zero pages, but its memory is not mergeable (ksm: false, libvirt \
                           <nosharepages/>): KSM will not merge any of it"
                    .to_string();
                push(Warning, &format!("{gp}.ksm"), at(&format!("{gp}.ksm")), msg);
            }
        }
    }
    for (size, needed) in pool_needed {
        let have = h.pool(size).map_or(0, |p| p.bytes());
        if needed > have && have > 0 {
            let msg = format!(
                "hugepage guests need {} of {} pages but that pool holds {}: those that do not fit will fail to start",
                ByteSize(needed),
                size.label(),
                ByteSize(have)
            );
            push(Warning, "host.hugepages", at("host.hugepages.count"), msg);
        }
    }
    let swap = h.swap.as_ref().map_or(0, |s| s.size.bytes());
    let room = h.usable_for_4k().bytes() + swap;
    if ordinary > room {
        let msg = format!(
            "guests configure {} of ordinary memory but RAM ({} after reserved and the hugepage pool) plus swap ({}) is {}: if they touch it all, the OOM killer will act",
            ByteSize(ordinary),
            h.usable_for_4k(),
            ByteSize(swap),
            ByteSize(room)
        );
        push(Warning, "guests", at("guests"), msg);
    }
    out
}
