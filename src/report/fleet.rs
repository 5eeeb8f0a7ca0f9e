//! What `overcommit fleet` writes besides its table: each placement's
//! picture of its hosts' memory (the lost hosts and the guests restarted
//! elsewhere marked) and `report.html`.

use std::collections::BTreeMap;

use super::html::{Block, Page, Section, render};
use super::plot::{self, Axis, CategoryChart, Scale};
use super::{bytes_text, run::ns};
use crate::fleet::answers::{Entry, FleetAnswers};
use crate::fleet::search::Answer;

const GIB: f64 = (1u64 << 30) as f64;

/// A host's label: its index and type, `lost` if the failure took it, and
/// `+N` for the guests restarted on it.
fn labels(a: &Answer) -> Vec<String> {
    let failure = a.outcome.failure.as_ref();
    a.outcome
        .hosts
        .iter()
        .map(|h| {
            let mut l = format!("{} {}", h.index, h.host_type);
            if let Some(f) = failure {
                if f.lost.contains(&h.index) {
                    l.push_str(" lost");
                } else if let Some(after) = f.hosts.iter().find(|x| x.index == h.index) {
                    let (before, now): (u32, u32) = (h.guests.values().sum(), after.guests.values().sum());
                    if now > before {
                        l.push_str(&format!(" +{}", now - before));
                    }
                }
            }
            l
        })
        .collect()
}

/// Each host's RAM, the memory its guests configure and the most it used,
/// the most it used once the failure's guests were restarted, and the
/// memory of the guests restarted on it (GiB).
pub fn memory_chart(fleet: &str, e: &Entry) -> CategoryChart {
    let a = &e.answer;
    let hosts = &a.outcome.hosts;
    let after: BTreeMap<usize, f64> = a
        .outcome
        .failure
        .iter()
        .flat_map(|f| f.hosts.iter().map(|h| (h.index, h.peak_used_bytes as f64 / GIB)))
        .collect();
    let mut series = vec![
        ("RAM".to_string(), hosts.iter().map(|h| h.ram_bytes as f64 / GIB).collect()),
        ("configured by its guests".to_string(), hosts.iter().map(|h| h.configured_bytes as f64 / GIB).collect()),
        ("used at most".to_string(), hosts.iter().map(|h| h.peak_used_bytes as f64 / GIB).collect::<Vec<f64>>()),
    ];
    if let Some(f) = &a.outcome.failure {
        series.push((
            "used at most after the loss".to_string(),
            hosts.iter().map(|h| after.get(&h.index).copied().unwrap_or(f64::NAN)).collect(),
        ));
        // The lost hosts' guests where they went: what each host took on,
        // in configured memory (none drawn where it took none), so they
        // stand out among a thousand hosts where labels cannot.
        let took: BTreeMap<usize, u64> = f
            .hosts
            .iter()
            .map(|h| (h.index, h.configured_bytes.saturating_sub(hosts[h.index].configured_bytes)))
            .collect();
        series.push((
            "restarted on it (configured)".to_string(),
            hosts
                .iter()
                .map(|h| match took.get(&h.index) {
                    Some(&b) if b > 0 => b as f64 / GIB,
                    _ => f64::NAN,
                })
                .collect(),
        ));
    }
    CategoryChart {
        title: format!("{fleet}: each host's memory, {}", e.label()),
        categories: labels(a),
        y: Axis { title: "memory (GiB)".into(), scale: Scale::Linear },
        series,
    }
}

/// An objective's value as its objective reads: a time for latencies,
/// else the number; `-` for none.
pub fn value_text(objective: &str, v: f64) -> String {
    use crate::scenario::slo::{Metric, Slo};
    if !v.is_finite() {
        return "-".into();
    }
    match objective.parse::<Slo>().map(|s| s.metric) {
        Ok(Metric::Mean | Metric::P50 | Metric::P95 | Metric::P99 | Metric::P999) => ns(v),
        _ => format!("{v:.3}"),
    }
}

/// The breaks after a loss, one line each: `host 2: p99<=50us 41.0 µs → 72.3 µs`.
pub fn breaks_text(f: &crate::fleet::evaluate::Failure) -> Vec<String> {
    f.breaks
        .iter()
        .map(|b| {
            format!(
                "host {}: {} {} → {}",
                b.host,
                b.objective,
                value_text(&b.objective, b.before),
                value_text(&b.objective, b.after)
            )
        })
        .collect()
}

/// The report page: per placement and policy mix, the answer, the
/// settings, the picture and the hosts.
pub fn html(doc: &FleetAnswers, figures: &[plot::Figure]) -> String {
    let mut key_numbers = Vec::new();
    for e in &doc.answers {
        let hosts: u32 = e.answer.hosts.iter().sum();
        let text = match &e.answer.none {
            Some(_) => "no answer".to_string(),
            None => format!("{hosts} hosts"),
        };
        key_numbers.push((e.label(), text));
    }
    let mut sections = vec![Section {
        heading: "The question".into(),
        blocks: vec![Block::Paragraph(format!(
            "{} guests of {} type(s) on hosts of {} type(s), every host held to {}, every guest started and kept \
             running, no OOM kill; surviving the loss of {} host(s).",
            doc.guest_types.iter().map(|g| g.1).sum::<u32>(),
            doc.guest_types.len(),
            doc.host_types.len(),
            doc.objectives.join(", "),
            doc.survive
        ))],
    }];
    for (e, fig) in doc.answers.iter().zip(figures) {
        let a = &e.answer;
        let mut blocks = Vec::new();
        if let Some(why) = &a.none {
            blocks.push(Block::Warning(why.clone()));
        }
        if let Some(n) = &a.note {
            blocks.push(Block::Paragraph(format!("Note: {n}.")));
        }
        let asked: u32 = doc.guest_types.iter().map(|g| g.1).sum();
        blocks.push(Block::Paragraph(format!(
            "{} host(s) ({} spare) admitting {} of the {asked} guests; {} fleet evaluations played.",
            a.hosts.iter().sum::<u32>(),
            a.spare,
            a.outcome.admitted(),
            a.evaluations
        )));
        blocks.push(settings_table(e));
        if let Some(f) = &a.outcome.failure {
            blocks.push(Block::Paragraph(format!(
                "Losing host(s) {:?} restarts {} guest(s) on the others: {} without room, {}.",
                f.lost,
                f.restarted.values().sum::<u32>(),
                f.unplaced.values().sum::<u32>(),
                if f.broken.is_empty() {
                    "no host breaks".to_string()
                } else {
                    format!("hosts {:?} break ({})", f.broken, breaks_text(f).join("; "))
                }
            )));
        }
        blocks.push(Block::Figure {
            id: format!("memory-{}", e.slug()),
            caption: "Each host's RAM, the memory its guests configure (placement's count against the limit), the \
                      most it used, the most it used once the lost hosts' guests were restarted, and the memory of \
                      the guests restarted on it (+N in its label: how many)."
                .into(),
            svg: fig.svg.clone(),
        });
        blocks.push(hosts_table(a));
        let heading = if e.policies == crate::fleet::answers::AS_WRITTEN {
            format!("Placement: {}", e.placement)
        } else {
            format!("Placement: {}, policies: {}", e.placement, e.policies)
        };
        sections.push(Section { heading, blocks });
    }
    let page = Page {
        title: format!("overcommit fleet: {}", doc.fleet),
        description: String::new(),
        key_numbers,
        sections,
        footer: format!(
            "overcommit {} · fleet {} · files: fleet.json, hosts.csv, memory-*.svg/.png",
            env!("CARGO_PKG_VERSION"),
            doc.file
        ),
    };
    render(&page)
}

/// What an operator sets on each host type: nova.conf's two memory
/// settings, the spares, swap, KSM, the balloon controller, the pool.
fn settings_table(e: &Entry) -> Block {
    let head = [
        "host type",
        "hosts",
        "ram_allocation_ratio",
        "reserved_host_memory_mb",
        "spare hosts",
        "free for restarts",
        "swap",
        "KSM",
        "balloon",
        "nr_hugepages",
    ]
    .map(String::from)
    .to_vec();
    let rows = e
        .settings
        .iter()
        .map(|s| {
            let ksm = match &s.ksm {
                None => "off".to_string(),
                Some(k) => {
                    let mut t = format!(
                        "{}: pages_to_scan {}, sleep_millisecs {}, use_zero_pages {}, max_page_sharing {}",
                        k.policy,
                        k.pages_to_scan,
                        k.sleep_millisecs,
                        u8::from(k.use_zero_pages),
                        k.max_page_sharing
                    );
                    if let Some((p, ms)) = k.ended_at
                        && k.policy != "static"
                    {
                        t.push_str(&format!(" (ended at {p} / {ms} ms)"));
                    }
                    t
                }
            };
            let balloon = if s.balloon == "none" {
                "none".to_string()
            } else {
                format!("{} every {} s", s.balloon, s.balloon_interval_s)
            };
            vec![
                s.host_type.clone(),
                s.hosts.to_string(),
                format!("{:.3}", s.ram_allocation_ratio),
                s.reserved_host_memory_mb.to_string(),
                s.spare_hosts.to_string(),
                bytes_text(s.headroom_bytes),
                s.swap.clone().unwrap_or_else(|| "none".into()),
                ksm,
                balloon,
                s.nr_hugepages.to_string(),
            ]
        })
        .collect();
    Block::Table { head, rows }
}

/// Each host: what it holds, its limit, what it used, its latency.
fn hosts_table(a: &Answer) -> Block {
    let head = ["host", "guests", "configured", "limit", "used at most", "p99", "slowdown", "missed"]
        .map(String::from)
        .to_vec();
    let rows = a
        .outcome
        .hosts
        .iter()
        .map(|h| {
            vec![
                format!("{} {}", h.index, h.host_type),
                h.guests.iter().map(|(g, n)| format!("{n} {g}")).collect::<Vec<_>>().join(" + "),
                bytes_text(h.configured_bytes),
                bytes_text(h.limit_bytes),
                bytes_text(h.peak_used_bytes),
                if h.p99_ns.is_finite() { ns(h.p99_ns) } else { "-".into() },
                format!("{:.3}", h.slowdown),
                h.failed.join(", "),
            ]
        })
        .collect();
    Block::Table { head, rows }
}
