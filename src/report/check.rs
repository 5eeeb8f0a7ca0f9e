//! The one-screen summary `overcommit check` prints for a valid scenario.

use std::fmt::Write;

use crate::scenario::Scenario;
use crate::units::ByteSize;

pub fn summary(s: &Scenario) -> String {
    let h = &s.host;
    let mut o = String::new();
    let _ = writeln!(o, "scenario  {}", s.name);
    if !s.description.trim().is_empty() {
        for line in wrap(s.description.trim(), 68) {
            let _ = writeln!(o, "          {line}");
        }
    }
    let _ = writeln!(o, "run       {} simulated, sampled every {}, seed {}", s.duration, s.sample_every, s.seed);
    let _ = writeln!(o, "host      RAM {}, reserved {}, usable {}", h.ram, h.reserved, h.usable());
    if h.hugepages.count > 0 {
        let _ = writeln!(
            o,
            "          hugetlb pool {} × {} = {} (nr_hugepages), THP {:?}",
            h.hugepages.count,
            h.hugepages.size.label(),
            ByteSize(h.hugepages.bytes()),
            h.thp
        );
    } else {
        let _ = writeln!(o, "          no hugetlb pool, THP {}", format!("{:?}", h.thp).to_lowercase());
    }
    if h.thp != crate::scenario::ThpMode::Never {
        let k = &h.khugepaged;
        let _ = writeln!(
            o,
            "          khugepaged: {} pages every {} ms, max_ptes none {} swap {} shared {}",
            k.pages_to_scan, k.scan_sleep_millisecs, k.max_ptes_none, k.max_ptes_swap, k.max_ptes_shared
        );
    }
    match &h.swap {
        Some(sw) => {
            let _ = writeln!(
                o,
                "          swap {} on {} (read {}, write {}, {}/s)",
                sw.size,
                sw.label()
                    + &sw
                        .zswap
                        .map(|z| {
                            format!(
                                " behind zswap (pool at most {}% of RAM, {}, ratio {})",
                                z.max_pool_percent,
                                z.compressor.name(),
                                z.ratio
                            )
                        })
                        .unwrap_or_default(),
                sw.figures().read_latency,
                sw.figures().write_latency,
                ByteSize(sw.figures().bandwidth_bytes_per_s)
            );
        }
        None => {
            let _ = writeln!(o, "          no swap");
        }
    }
    if h.reclaim.lru == crate::policy::reclaim::Lru::PerGuest {
        let _ = writeln!(o, "          reclaim scans each guest's own LRU lists in proportion to their size");
    }
    let ksm = if h.ksm.run {
        format!(
            "KSM on, {} (pages_to_scan {}, sleep_millisecs {}, use_zero_pages {}, smart_scan {})",
            h.ksm.tuner.describe(),
            h.ksm.pages_to_scan,
            h.ksm.sleep_millisecs,
            h.ksm.use_zero_pages,
            h.ksm.smart_scan
        )
    } else {
        "KSM off".to_string()
    };
    let balloon = h.balloon.policy.describe(h.balloon.interval);
    let _ = writeln!(o, "          {ksm}; {balloon}");
    let onoff = |b: bool| if b { "on" } else { "off" };
    let _ = writeln!(
        o,
        "          CPU: EPT {}, VPID {}, FlexPriority {}",
        onoff(h.cpu.ept),
        onoff(h.cpu.vpid),
        onoff(h.cpu.flexpriority)
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<12} {:>5} {:>10} {:>11} {:<14} {:<9} {:>11} {:<16}",
        "group", "count", "memory", "total", "backing", "features", "working set", "pattern"
    );
    for g in &s.guests {
        let mut feats = String::new();
        for (on, c) in [
            (g.prealloc, 'P'),
            (g.balloon, 'B'),
            (g.ksm && !g.hugepages, 'K'),
            (g.share, 'S'),
            (g.locked, 'L'),
            (g.memtune.is_set(), 'C'),
            (g.current_memory.is_some_and(|c| c < g.memory), 'T'),
            (g.free_page_reporting, 'R'),
        ] {
            feats.push(if on { c } else { '-' });
        }
        let _ = writeln!(
            o,
            "{:<12} {:>5} {:>10} {:>11} {:<14} {:<9} {:>11} {:<16}",
            g.name,
            g.count,
            format!("{:.1}", g.memory),
            format!("{:.1}", ByteSize(g.memory.bytes() * u64::from(g.count))),
            g.backing_label(&s.host),
            feats,
            format!("{:.1}", g.workload.working_set),
            g.workload.pattern.to_string()
        );
    }
    let _ = writeln!(
        o,
        "features: P prealloc, B balloon, K KSM-mergeable, S share=on, L locked, C cgroup limits (memtune),\n          T balloon target below memory (current_memory), R free page reporting"
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{} guests configure {} on {} usable: overcommit ratio {:.2}",
        s.instance_count(),
        ByteSize(s.configured_bytes()),
        h.usable(),
        s.overcommit_ratio()
    );
    o
}

/// Greedy word wrap for free text.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
