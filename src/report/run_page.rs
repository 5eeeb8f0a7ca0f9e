//! A run's pictures and `report.html`: host memory over time, latency per
//! guest, fault rates, KSM and balloons over time, latency distributions,
//! and what drove the latency, in words with the run's own numbers.

use super::html::{Block, Page, Section, render};
use super::plot::{self, Axis, CategoryChart, Figure, LineChart, Scale, Series, StackedArea};
use super::run::ns;
use crate::engine::{EventKind, Recorder, Summary};
use rayon::prelude::*;

const GIB: f64 = (1u64 << 30) as f64;

/// Above this many guests, per-guest charts show each group's worst guest.
const MAX_GUEST_CATEGORIES: usize = 24;

/// A drawn plot: file stem, caption, figure.
pub type Drawn = (String, String, Figure);

fn time_axis() -> Axis {
    Axis { title: "simulated time (s)".into(), scale: Scale::Linear }
}

fn t_s(t_ns: u64) -> f64 {
    t_ns as f64 / 1e9
}

/// Per-group sums of a guest value over time.
fn group_series(
    record: &Recorder,
    summary: &Summary,
    value: &dyn Fn(&crate::engine::GuestSample) -> f64,
) -> Vec<Series> {
    let mut groups: Vec<String> = Vec::new();
    for g in &summary.guests {
        if !groups.contains(&g.group) {
            groups.push(g.group.clone());
        }
    }
    groups
        .iter()
        .map(|name| Series {
            label: name.clone(),
            points: record
                .samples
                .iter()
                .map(|s| {
                    let v = s
                        .guests
                        .iter()
                        .zip(&summary.guests)
                        .filter(|(_, g)| &g.group == name)
                        .map(|(gs, _)| value(gs))
                        .sum::<f64>();
                    (t_s(s.t_ns), v)
                })
                .collect(),
        })
        .collect()
}

/// Per-group rates (per second) of a guest counter between samples.
fn group_rates(record: &Recorder, summary: &Summary, counter: fn(&crate::engine::GuestSample) -> u64) -> Vec<Series> {
    let totals = group_series(record, summary, &|g| counter(g) as f64);
    totals
        .into_iter()
        .map(|s| Series {
            label: s.label,
            points: s.points.windows(2).map(|w| (w[1].0, ((w[1].1 - w[0].1) / (w[1].0 - w[0].0)).max(0.0))).collect(),
        })
        .collect()
}

fn memory_chart(record: &Recorder, summary: &Summary) -> StackedArea {
    let layer = |label: &str, f: &dyn Fn(&crate::engine::Sample) -> f64| Series {
        label: label.into(),
        points: record.samples.iter().map(|s| (t_s(s.t_ns), f(s) / GIB)).collect(),
    };
    let other = |s: &crate::engine::Sample| {
        let h = &s.host;
        h.used_bytes.saturating_sub(h.guest_resident_bytes + h.ksm_bytes + h.zram_bytes) as f64
    };
    let mut layers = vec![
        layer("guest pages in RAM", &|s| s.host.guest_resident_bytes as f64),
        layer("KSM pages", &|s| s.host.ksm_bytes as f64),
        layer("zram (compressed swap)", &|s| s.host.zram_bytes as f64),
        layer("other host use", &other),
        layer("hugepage pool", &|s| s.host.pool_bytes as f64),
        layer("free", &|s| s.host.free_bytes as f64),
        layer("in host swap (beyond RAM)", &|s| s.host.swap_used_bytes.saturating_sub(s.host.swap_cached_bytes) as f64),
        layer("saved by KSM (beyond RAM)", &|s| ((s.host.ksm_pages_sharing + s.host.ksm_zero_pages) * 4096) as f64),
        layer("in balloons (beyond RAM)", &|s| s.guests.iter().map(|g| g.balloon_bytes).sum::<u64>() as f64),
    ];
    // Layers that stay empty only crowd the legend.
    layers.retain(|l| l.points.iter().any(|p| p.1 > 0.0));
    StackedArea {
        title: format!(
            "{}: host memory over time ({} usable)",
            summary.scenario,
            super::bytes_text(summary.host.usable_bytes)
        ),
        x: time_axis(),
        y: Axis { title: "memory (GiB)".into(), scale: Scale::Linear },
        layers,
    }
}

fn latency_chart(summary: &Summary) -> CategoryChart {
    let per_guest = summary.guests.len() <= MAX_GUEST_CATEGORIES;
    let mut cats: Vec<(String, [f64; 3])> = Vec::new();
    for g in summary.guests.iter().filter(|g| g.touches > 0) {
        let v = [g.latency_ns.p50, g.latency_ns.p99, g.latency_ns.p999].map(|x| x as f64 / 1e3);
        if per_guest {
            cats.push((g.name.clone(), v));
        } else {
            match cats.iter_mut().find(|(n, _)| *n == g.group) {
                Some((_, w)) => {
                    for (a, b) in w.iter_mut().zip(v) {
                        *a = a.max(b);
                    }
                }
                None => cats.push((g.group.clone(), v)),
            }
        }
    }
    let names = ["p50", "p99", "p99.9"];
    CategoryChart {
        title: if per_guest {
            "memory latency per guest".into()
        } else {
            "memory latency: each group's worst guest".into()
        },
        categories: cats.iter().map(|c| c.0.clone()).collect(),
        y: Axis { title: "latency of a touch (µs)".into(), scale: Scale::Log },
        series: names.iter().enumerate().map(|(i, n)| (n.to_string(), cats.iter().map(|c| c.1[i]).collect())).collect(),
    }
}

/// Every plot of a run.
pub fn figures(record: &Recorder, summary: &Summary) -> Result<Vec<Drawn>, String> {
    let mut charts: Vec<(String, String, Chart)> = Vec::new();
    let mut push = |stem: &str, caption: String, c: Chart| charts.push((stem.to_string(), caption, c));
    push(
        "memory",
        "Where memory is over time: layers up to the usable RAM, then what lives beyond it (swap, KSM's savings, balloons)."
            .into(),
        Chart::Area(memory_chart(record, summary)),
    );
    push(
        "latency",
        "p50, p99 and p99.9 of every touch's latency (DRAM, page walk, faults, swap-ins with their queueing).".into(),
        Chart::Category(latency_chart(summary)),
    );
    let mut faults = Vec::new();
    for (kind, counter) in [
        ("major", (|g: &crate::engine::GuestSample| g.major_faults) as fn(&crate::engine::GuestSample) -> u64),
        ("minor", |g| g.minor_faults),
    ] {
        for s in group_rates(record, summary, counter) {
            faults.push(Series { label: format!("{} {kind}", s.label), points: s.points });
        }
    }
    push(
        "faults",
        "Major faults (swap-ins) and minor faults (first touches) per second, summed over each group.".into(),
        Chart::Line(LineChart {
            title: "page faults per second".into(),
            x: time_axis(),
            y: Axis { title: "faults per second".into(), scale: Scale::Log },
            series: faults,
            hlines: vec![],
            markers: false,
            marks: vec![],
        }),
    );
    if summary.host.ksm.is_some() {
        let series = |label: &str, f: fn(&crate::engine::HostSample) -> u64| Series {
            label: label.into(),
            points: record.samples.iter().map(|s| (t_s(s.t_ns), f(&s.host) as f64)).collect(),
        };
        push(
            "ksm",
            "KSM's counters over time: pages_sharing is the memory saved (in 4 KiB pages); nothing merges before ksmd's second full scan."
                .into(),
            Chart::Line(LineChart {
                title: "KSM over time".into(),
                x: time_axis(),
                y: Axis { title: "4 KiB pages".into(), scale: Scale::Linear },
                series: vec![
                    series("pages_sharing", |h| h.ksm_pages_sharing),
                    series("pages_shared", |h| h.ksm_pages_shared),
                    series("ksm_zero_pages", |h| h.ksm_zero_pages),
                ],
                hlines: vec![],
                markers: false,
                marks: vec![],
            }),
        );
    }
    if summary.guests.iter().any(|g| g.balloon_peak_bytes > 0) {
        push(
            "balloons",
            "Memory held by each group's balloons over time (given back to the host).".into(),
            Chart::Line(LineChart {
                title: "balloons over time".into(),
                x: time_axis(),
                y: Axis { title: "balloon size (GiB)".into(), scale: Scale::Linear },
                series: group_series(record, summary, &|g| g.balloon_bytes as f64 / GIB),
                hlines: vec![],
                markers: false,
                marks: vec![],
            }),
        );
    }
    push(
        "latency-cdf",
        "The latency tail per group: the share of touches slower than each latency, on log axes. Where a line \
         crosses the dashed 1% line is that group's p99, the 0.1% line its p99.9; the steps are faults (a first \
         touch, then swap-ins)."
            .into(),
        Chart::Line(LineChart {
            title: "latency tail per group (complementary CDF)".into(),
            x: Axis { title: "latency of a touch (µs)".into(), scale: Scale::Log },
            y: Axis { title: "share of touches slower".into(), scale: Scale::Log },
            series: summary
                .latency_cdf
                .iter()
                .map(|c| Series {
                    label: c.group.clone(),
                    // 1 − F(x): the share slower than x (0 at the largest
                    // value, which a log axis leaves out).
                    points: c.points.iter().map(|&(v, q)| (v as f64 / 1e3, 1.0 - q)).collect(),
                })
                .collect(),
            hlines: vec![(0.01, "1%: p99".into()), (0.001, "0.1%: p99.9".into())],
            markers: false,
            marks: vec![],
        }),
    );
    // Rasterising and compressing each PNG is most of a short run's time:
    // the charts are drawn side by side (each the same bytes whatever the
    // thread count), in the order above.
    charts
        .into_par_iter()
        .map(|(stem, caption, c)| {
            let f = c.draw().map_err(|e| format!("{stem}: {e}"))?;
            Ok((stem, caption, f))
        })
        .collect()
}

/// A chart of a run, drawn once all are known.
enum Chart {
    Area(StackedArea),
    Category(CategoryChart),
    Line(LineChart),
}

impl Chart {
    fn draw(&self) -> Result<Figure, plot::PlotError> {
        match self {
            Chart::Area(c) => plot::stacked_area(c),
            Chart::Category(c) => plot::category_chart(c),
            Chart::Line(c) => plot::line_chart(c),
        }
    }
}

/// What drove the latency: stall time by cause over every guest, largest
/// first, each said with the run's numbers.
pub fn explain(summary: &Summary) -> Vec<String> {
    let gs = &summary.guests;
    let sum = |f: fn(&crate::engine::StallBreakdown) -> f64| gs.iter().map(|g| f(&g.stall_s)).sum::<f64>();
    let major: u64 = gs.iter().map(|g| g.major_faults).sum();
    let minor: u64 = gs.iter().map(|g| g.minor_faults).sum();
    let touches: u64 = gs.iter().map(|g| g.touches).sum::<u64>().max(1);
    let h = &summary.host;
    let tlb = gs.iter().map(|g| g.tlb_miss_ratio).fold(0.0, f64::max);
    let mut causes: Vec<(f64, String)> = vec![
        (
            sum(|s| s.major_faults_s),
            format!(
                "swap-ins: {major} major faults ({:.3}% of touches), each waiting for the swap device and its queue. \
                 The guests' memory peaked at {} of {} usable, and up to {} went to swap.",
                100.0 * major as f64 / touches as f64,
                super::bytes_text(h.peak_used_bytes),
                super::bytes_text(h.usable_bytes),
                super::bytes_text(h.swap_used_peak_bytes)
            ),
        ),
        (
            sum(|s| s.first_touch_faults_s),
            format!("first touches: {minor} minor faults as the guests allocated their memory (a huge page's fault zeroes 2 MiB at once)."),
        ),
        (
            sum(|s| s.page_walks_s),
            format!("page walks on TLB misses (up to {:.2}% of touches miss the TLB); huge pages cut these.", 100.0 * tlb),
        ),
        (sum(|s| s.vm_exits_s), "VM exits: shadow page-table traps, TPR exits without FlexPriority, or TLB refills after flushes without VPID.".into()),
        (sum(|s| s.cow_breaks_s), "copy-on-write breaks of pages KSM had merged.".into()),
        (sum(|s| s.direct_reclaim_s), "direct reclaim: allocations that found no free memory and reclaimed on the guest's own time.".into()),
        (sum(|s| s.guest_swap_s), "the guests' own swap: balloons took memory their working sets still used.".into()),
        (
            sum(|s| s.memcg_s),
            "the guests' memory cgroups (libvirt <memtune>): reclaiming their own pages at memory.max or memory.high, and throttling over memory.high."
                .into(),
        ),
    ];
    let total: f64 = causes.iter().map(|c| c.0).sum();
    causes.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst = gs.iter().filter(|g| g.touches > 0).max_by(|a, b| a.latency_ns.p99.cmp(&b.latency_ns.p99));
    let mut out = Vec::new();
    if let Some(w) = worst {
        out.push(format!(
            "The worst p99 is {}'s, {} (p50 {}, p99.9 {}); its slowdown is {:.3}.",
            w.name,
            ns(w.latency_ns.p99 as f64),
            ns(w.latency_ns.p50 as f64),
            ns(w.latency_ns.p999 as f64),
            w.slowdown
        ));
    }
    if total <= 0.0 {
        out.push("The guests lost no time to faults, walks or exits: every touch cost only DRAM.".into());
        return out;
    }
    out.push(format!("The guests lost {total:.2} s of their time in all. By cause, largest first:"));
    for (secs, text) in causes.into_iter().filter(|c| c.0 > 0.0 && c.0 >= total * 0.01) {
        out.push(format!("{:.0}% ({secs:.2} s) went to {text}", 100.0 * secs / total));
    }
    out
}

/// `report.html` for a run.
pub fn html(record: &Recorder, summary: &Summary, description: &str, figs: &[Drawn], warnings: &[String]) -> String {
    let h = &summary.host;
    let worst = |f: fn(&crate::engine::GuestSummary) -> f64| summary.guests.iter().map(f).fold(0.0, f64::max);
    let mut key_numbers = vec![
        ("overcommit ratio".to_string(), format!("{:.2}", h.overcommit_ratio)),
        ("guests running".to_string(), format!("{} of {}", h.guests_running, summary.guests.len())),
        (
            "peak host use".to_string(),
            format!("{} of {}", super::bytes_text(h.peak_used_bytes), super::bytes_text(h.usable_bytes)),
        ),
        ("swap used (peak)".to_string(), super::bytes_text(h.swap_used_peak_bytes)),
        ("worst p99".to_string(), ns(worst(|g| g.latency_ns.p99 as f64))),
        ("worst slowdown".to_string(), format!("{:.3}", worst(|g| g.slowdown))),
        ("OOM kills".to_string(), h.oom_kills.to_string()),
    ];
    if let Some(k) = &h.ksm {
        key_numbers.push(("saved by KSM".to_string(), super::bytes_text(k.saved_bytes)));
        key_numbers.push(("ksmd CPU".to_string(), format!("{:.1}% of a core", k.ksmd_cpu_percent)));
    }
    let mut warn: Vec<Block> = warnings.iter().map(|w| Block::Warning(w.clone())).collect();
    let notable = |k: EventKind| {
        matches!(
            k,
            EventKind::OomKill
                | EventKind::FailedToStart
                | EventKind::CowStorm
                | EventKind::SwapFull
                | EventKind::GuestOom
                | EventKind::MemcgOom
        )
    };
    let events: Vec<&crate::engine::Event> = record.events.iter().filter(|e| notable(e.kind)).collect();
    for e in &events {
        if matches!(e.kind, EventKind::OomKill | EventKind::FailedToStart | EventKind::MemcgOom) {
            warn.push(Block::Warning(format!("{:.1} s: {} {}: {}", t_s(e.t_ns), e.kind.label(), e.guest, e.detail)));
        }
    }
    let mut drove: Vec<Block> = explain(summary).into_iter().map(Block::Paragraph).collect();
    drove.extend(warn);
    let figure = |stem: &str| {
        figs.iter().find(|f| f.0 == stem).map(|(id, caption, f)| Block::Figure {
            id: id.clone(),
            caption: caption.clone(),
            svg: f.svg.clone(),
        })
    };
    let mut plots = Vec::new();
    for f in figs {
        if let Some(b) = figure(&f.0) {
            plots.push(b);
        }
    }
    let guest_rows = summary
        .guests
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.state.label().to_string(),
                super::bytes_text(g.resident_peak_bytes),
                super::bytes_text(g.swapped_peak_bytes),
                g.minor_faults.to_string(),
                g.major_faults.to_string(),
                ns(g.latency_ns.p50 as f64),
                ns(g.latency_ns.p99 as f64),
                ns(g.latency_ns.p999 as f64),
                format!("{:.3}", g.slowdown),
            ]
        })
        .collect();
    let head = ["guest", "state", "resident peak", "swapped peak", "minor", "major", "p50", "p99", "p99.9", "slowdown"]
        .map(String::from)
        .to_vec();
    const MAX_EVENTS: usize = 50;
    let mut event_rows: Vec<Vec<String>> = events
        .iter()
        .take(MAX_EVENTS)
        .map(|e| vec![format!("{:.3}", t_s(e.t_ns)), e.kind.label().into(), e.guest.clone(), e.detail.clone()])
        .collect();
    if events.len() > MAX_EVENTS {
        event_rows.push(vec![
            String::new(),
            format!("and {} more in events.csv", events.len() - MAX_EVENTS),
            String::new(),
            String::new(),
        ]);
    }
    let mut guest_blocks = vec![Block::Table { head, rows: guest_rows }];
    let memory_rows: Vec<Vec<String>> = summary
        .guests
        .iter()
        .filter(|g| g.memcg.is_some() || g.locked || g.current_memory_bytes.is_some() || g.free_page_reported_bytes > 0)
        .map(|g| {
            let limit = |b: Option<u64>| b.map_or("-".to_string(), super::bytes_text);
            let cg = g.memcg.as_ref();
            vec![
                g.name.clone(),
                g.current_memory_bytes.map_or("-".to_string(), super::bytes_text),
                super::bytes_text(g.balloon_end_bytes),
                super::bytes_text(g.free_page_reported_bytes),
                if g.locked { "yes".into() } else { "no".into() },
                limit(cg.and_then(|c| c.max_bytes)),
                limit(cg.and_then(|c| c.high_bytes)),
                limit(cg.and_then(|c| c.swap_max_bytes)),
                cg.map_or("-".to_string(), |c| super::bytes_text(c.peak_bytes)),
                cg.map_or("-".to_string(), |c| {
                    format!("high {} · max {} · oom_kill {}", c.events.high, c.events.max, c.events.oom_kill)
                }),
            ]
        })
        .collect();
    if !memory_rows.is_empty() {
        guest_blocks.push(Block::Paragraph(
            "What the operator set: the balloon's target (libvirt <currentMemory>, virsh setmem) and where the balloon \
             ended, memory given back by free page reporting, locked memory, and the memory cgroup libvirt's <memtune> \
             makes (memory.max, memory.high, memory.swap.max on cgroup v2, charged with QEMU's own memory too)."
                .into(),
        ));
        guest_blocks.push(Block::Table {
            head: [
                "guest",
                "current memory",
                "balloon at end",
                "reported free",
                "locked",
                "memory.max",
                "memory.high",
                "memory.swap.max",
                "cgroup peak",
                "memory.events",
            ]
            .map(String::from)
            .to_vec(),
            rows: memory_rows,
        });
    }
    let mut sections = vec![
        Section { heading: "What drove the latency".into(), blocks: drove },
        Section { heading: "Plots".into(), blocks: plots },
        Section { heading: "Guests".into(), blocks: guest_blocks },
    ];
    sections.push(Section {
        heading: "Events".into(),
        blocks: if event_rows.is_empty() {
            vec![Block::Paragraph("No OOM kills, failed starts, full swap or copy-on-write storms.".into())]
        } else {
            vec![Block::Table {
                head: ["time (s)", "event", "guest", "detail"].map(String::from).to_vec(),
                rows: event_rows,
            }]
        },
    });
    if !summary.notes.is_empty() {
        sections.push(Section {
            heading: "Notes".into(),
            blocks: summary.notes.iter().map(|n| Block::Paragraph(n.clone())).collect(),
        });
    }
    let page = Page {
        title: format!("overcommit run: {}", summary.scenario),
        description: description.trim().to_string(),
        key_numbers,
        sections,
        footer: format!(
            "overcommit {} · seed {} · {} s simulated · sample rate {} · costs: {} · files: summary.json, timeseries.csv, events.csv and the plots as SVG and PNG",
            env!("CARGO_PKG_VERSION"),
            summary.seed,
            summary.duration_s,
            summary.sample_rate,
            summary.calibration.as_deref().unwrap_or("built-in defaults")
        ),
    };
    render(&page)
}
