//! Checks that look at several fields at once: a working set larger than
//! its guest, a hugepage guest with no pool to draw from, guests that
//! cannot all start. Impossible things are errors; risky but legal things
//! (overcommit itself) are warnings.

use super::decode::Positions;
use super::diag::{Diagnostic, Severity};
use super::node::Pos;
use super::schema::*;
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
    } else if h.hugepages.bytes() > h.usable().bytes() {
        let msg = format!(
            "a pool of {} × {} = {} does not fit in usable RAM ({} = ram − reserved); the kernel would allocate fewer pages",
            h.hugepages.count,
            h.hugepages.size.label(),
            ByteSize(h.hugepages.bytes()),
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

    let mut pool_needed: u64 = 0;
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
        if w.shared.get() + w.zero.get() > 1.0 + 1e-12 {
            let msg = format!("shared ({}) plus zero ({}) is more than 100% of the pages", w.shared, w.zero);
            push(Error, &format!("{gp}.workload.zero"), at(&format!("{gp}.workload.zero")), msg);
        }
        if g.hugepages {
            let want = g.hugepage_size.unwrap_or(h.hugepages.size);
            let gpos =
                pos.get(&format!("{gp}.hugepages")).or(pos.get(&format!("{gp}.qemu"))).copied().unwrap_or(at(&gp));
            if h.hugepages.count == 0 || want != h.hugepages.size {
                let msg = if h.hugepages.count == 0 {
                    "hugepage-backed guest, but the host has no hugetlb pool (host.hugepages.count is 0): QEMU would fail to start it".to_string()
                } else {
                    format!(
                        "guest wants {} huge pages but the host pool holds {} pages: QEMU would fail to start it",
                        want.label(),
                        h.hugepages.size.label()
                    )
                };
                push(Error, &format!("{gp}.hugepages"), gpos, msg);
            } else {
                let pages = g.memory.pages(want.bytes());
                if g.memory.bytes() % want.bytes() != 0 {
                    let msg = format!(
                        "{} is not a whole number of {} pages: {} pages will be taken",
                        g.memory,
                        want.label(),
                        pages
                    );
                    push(Warning, &format!("{gp}.memory"), gpos, msg);
                }
                pool_needed += pages * want.bytes() * u64::from(g.count);
            }
            if s.host.ksm.run && g.ksm && w.shared.get() > 0.0 {
                let msg =
                    "expects shared pages, but KSM never scans hugetlbfs memory: nothing of this guest will merge"
                        .to_string();
                push(Warning, &format!("{gp}.workload.shared"), at(&format!("{gp}.workload.shared")), msg);
            }
            if g.balloon && s.host.balloon.policy != BalloonPolicy::None {
                let msg = "has a balloon, but a balloon never frees hugepage-backed memory".to_string();
                push(Warning, &format!("{gp}.balloon"), at(&gp), msg);
            }
        } else {
            ordinary += g.memory.bytes() * u64::from(g.count);
            if g.balloon && s.host.balloon.policy == BalloonPolicy::Proxmox && g.balloon_min.bytes() == 0 {
                // PVE::AutoBalloon: `next if !$d->{balloon_min}`.
                let msg =
                    "has no balloon_min: Proxmox's auto-ballooning leaves guests without a minimum alone".to_string();
                push(Warning, &format!("{gp}.balloon_min"), at(&gp), msg);
            }
            if g.balloon && !g.balloon_stats && s.host.balloon.policy == BalloonPolicy::Mom {
                // vdsm: "MOM will ignore VMs with missing balloon information".
                let msg = "reports no balloon statistics: MoM leaves it alone".to_string();
                push(Warning, &format!("{gp}.balloon_stats"), at(&gp), msg);
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
    if pool_needed > h.hugepages.bytes() {
        let msg = format!(
            "hugepage guests need {} but the pool holds {}: those that do not fit will fail to start",
            ByteSize(pool_needed),
            ByteSize(h.hugepages.bytes())
        );
        push(Warning, "host.hugepages", at("host.hugepages.count"), msg);
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
