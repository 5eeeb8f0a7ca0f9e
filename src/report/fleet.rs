//! What `overcommit fleet` writes besides its table: each placement's
//! picture of its hosts' memory (the lost hosts and the guests restarted
//! elsewhere marked) and `report.html`.

use std::collections::BTreeMap;

use super::html::{Block, Page, Section, render};
use super::plot::{self, Axis, CategoryChart, Scale};
use super::{bytes_text, run::ns};
use crate::fleet::file::Fleet;
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
/// and the most it used once the failure's guests were restarted (GiB).
pub fn memory_chart(fleet: &Fleet, placement: &str, a: &Answer) -> CategoryChart {
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
    if a.outcome.failure.is_some() {
        series.push((
            "used at most after the loss".to_string(),
            hosts.iter().map(|h| after.get(&h.index).copied().unwrap_or(f64::NAN)).collect(),
        ));
    }
    CategoryChart {
        title: format!("{}: each host's memory, {placement}", fleet.name),
        categories: labels(a),
        y: Axis { title: "memory (GiB)".into(), scale: Scale::Linear },
        series,
    }
}

/// The report page: per placement, the answer, the picture and the hosts.
pub fn html(fleet: &Fleet, label: &str, answers: &[(&str, Answer)], figures: &[plot::Figure]) -> String {
    let mut key_numbers = Vec::new();
    for (p, a) in answers {
        let hosts: u32 = a.hosts.iter().sum();
        let text = match &a.none {
            Some(_) => "no answer".to_string(),
            None => format!("{hosts} hosts"),
        };
        key_numbers.push((p.to_string(), text));
    }
    let mut sections = vec![Section {
        heading: "The question".into(),
        blocks: vec![Block::Paragraph(format!(
            "{} guests of {} type(s) on hosts of {} type(s), every host held to {}, every guest started and kept \
             running, no OOM kill; surviving the loss of {} host(s).",
            fleet.guests.iter().map(|g| g.count).sum::<u32>(),
            fleet.guests.len(),
            fleet.hosts.len(),
            fleet.objectives.iter().map(|o| o.text.clone()).collect::<Vec<_>>().join(", "),
            fleet.survive
        ))],
    }];
    for ((p, a), fig) in answers.iter().zip(figures) {
        let mut blocks = Vec::new();
        if let Some(why) = &a.none {
            blocks.push(Block::Warning(why.clone()));
        }
        let ratios: Vec<String> = fleet
            .hosts
            .iter()
            .zip(&a.ratios)
            .map(|(h, r)| format!("{}: ram_allocation_ratio = {r:.3}", h.name))
            .collect();
        blocks.push(Block::Paragraph(format!(
            "{} host(s) ({} spare), {}; {} fleet evaluations played.",
            a.hosts.iter().sum::<u32>(),
            a.spare,
            ratios.join(", "),
            a.evaluations
        )));
        if let Some(f) = &a.outcome.failure {
            blocks.push(Block::Paragraph(format!(
                "Losing host(s) {:?} restarts {} guest(s) on the others: {} without room, {}.",
                f.lost,
                f.restarted.values().sum::<u32>(),
                f.unplaced.values().sum::<u32>(),
                if f.broken.is_empty() { "no host breaks".to_string() } else { format!("hosts {:?} break", f.broken) }
            )));
        }
        blocks.push(Block::Figure {
            id: format!("memory-{p}"),
            caption: "Each host's RAM, the memory its guests configure (placement's count against the limit), the \
                      most it used, and the most it used once the lost hosts' guests were restarted (+N: guests \
                      restarted on it)."
                .into(),
            svg: fig.svg.clone(),
        });
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
        blocks.push(Block::Table { head, rows });
        sections.push(Section { heading: format!("Placement: {p}"), blocks });
    }
    let page = Page {
        title: format!("overcommit fleet: {}", fleet.name),
        description: String::new(),
        key_numbers,
        sections,
        footer: format!(
            "overcommit {} · fleet {label} · files: fleet.json, hosts.csv, memory-*.svg/.png",
            env!("CARGO_PKG_VERSION")
        ),
    };
    render(&page)
}
