//! What `overcommit plan` prints and writes: a table per policy mix, a
//! recommendation in the settings operators turn, `plan.json`, the
//! frontier plot and `report.html`.

use std::fmt::Write as _;

use serde::Serialize;

use super::html::{Block, Page, Section, render};
use super::plot::{self, Axis, LineChart, Scale, Series};
use super::run::ns;
use crate::plan::capacity::{Goal, MixResult, PlanSpec};
use crate::scenario::Scenario;
use crate::scenario::slo::Metric;

/// `plan.json`.
#[derive(Debug, Serialize)]
pub struct PlanJson<'a> {
    pub scenario: &'a str,
    pub goal: String,
    pub slo: Vec<String>,
    pub oom_kills_allowed: bool,
    pub seeds: u32,
    pub quantile: f64,
    pub master_seed: u64,
    /// The sampling rate every run played at (1: page-exact).
    pub sample_rate: f64,
    /// Every run played in event mode (`--events`).
    pub events: bool,
    pub runs: usize,
    pub recommended: Option<&'a str>,
    pub mixes: &'a [MixResult],
}

fn goal_text(goal: &Goal) -> String {
    match goal {
        Goal::Grow(g) => format!("grow {g}"),
        Goal::MinimizeRam => "minimize host.ram".into(),
    }
}

/// The mix that packs the most guests (or needs the least RAM). A mix
/// within 5% of the best (in whole guests or GiB) is as good within the
/// noise of a seed, and the simplest of those is recommended: fewer
/// mechanisms to run and watch (the order of `Mix::ALL`).
pub fn best(results: &[MixResult]) -> Option<&MixResult> {
    let key = |r: &MixResult| match (r.max_count, r.min_ram_bytes) {
        (Some(n), _) => Some(n as f64),
        (None, Some(b)) => Some(-((b >> 30) as f64)),
        _ => None,
    };
    let top = results.iter().filter_map(key).fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    // Whole steps only: a guest, or a GiB.
    let slack = (top.abs() * 0.05).floor();
    results.iter().find(|r| key(r).is_some_and(|k| k >= top - slack))
}

/// The mix that reached the most, when it is not the recommended one.
fn top(results: &[MixResult]) -> Option<&MixResult> {
    let key = |r: &MixResult| r.max_count.map(|n| n as i128).or(r.min_ram_bytes.map(|b| -(b as i128)));
    results.iter().filter(|r| key(r).is_some()).max_by_key(|r| key(r))
}

pub fn json(spec: &PlanSpec, base: &Scenario, results: &[MixResult]) -> Vec<u8> {
    let j = PlanJson {
        scenario: &base.name,
        goal: goal_text(&spec.goal),
        slo: spec.slo.iter().map(|s| s.text.clone()).collect(),
        oom_kills_allowed: spec.allow_oom_kills,
        seeds: spec.seeds,
        quantile: spec.quantile,
        master_seed: spec.inputs.master_seed.unwrap_or(base.seed),
        sample_rate: spec.inputs.sample_rate.unwrap_or(1.0),
        events: spec.inputs.mode == crate::engine::Mode::Events,
        runs: results.iter().map(|r| r.runs).sum(),
        recommended: best(results).map(|r| r.mix),
        mixes: results,
    };
    let mut v = serde_json::to_vec_pretty(&j).expect("a plan always serialises");
    v.push(b'\n');
    v
}

fn answer_text(r: &MixResult) -> String {
    let limit = if r.at_limit { " (search limit)" } else { "" };
    match (r.max_count, r.min_ram_bytes, &r.unsupported) {
        (_, _, Some(_)) => "n/a".into(),
        (Some(n), _, _) => format!("{n}{limit}"),
        (None, Some(b), _) => format!("{}{limit}", super::bytes_text(b)),
        _ => "none".into(),
    }
}

/// A planned mix's cells, after its name: answer, overcommit ratio, p99,
/// slowdown, KSM saved, swap used, ksmd CPU, binding objective, runs.
fn cells(r: &MixResult) -> Vec<String> {
    vec![
        answer_text(r),
        format!("{:.2}", r.overcommit_ratio),
        ns(r.p99_ns),
        format!("{:.3}", r.slowdown),
        super::bytes_text(r.ksm_saved_bytes),
        super::bytes_text(r.swap_used_peak_bytes),
        format!("{:.1}%", r.ksmd_cpu_percent),
        if r.binding.is_empty() { "-".into() } else { r.binding.join(" ") },
        r.runs.to_string(),
    ]
}

/// The table on stdout.
pub fn table(spec: &PlanSpec, base: &Scenario, results: &[MixResult]) -> String {
    let answer = match &spec.goal {
        Goal::Grow(g) => format!("max {g}"),
        Goal::MinimizeRam => "min RAM".into(),
    };
    let mut lines = vec![
        [&answer, "overcommit", "p99", "slowdown", "KSM saved", "swap used", "ksmd CPU", "binding", "runs"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    let mut names = vec!["mix".to_string()];
    for r in results {
        names.push(r.mix.to_string());
        lines.push(match &r.unsupported {
            Some(why) => vec![format!("not planned: {why}")],
            None => cells(r),
        });
    }
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| lines.iter().filter(|l| l.len() == cols).map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    let nw = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    let slo: Vec<String> = spec.slo.iter().map(|s| s.text.clone()).collect();
    let oom = if spec.allow_oom_kills { "" } else { ", oom_kills==0" };
    let _ = writeln!(
        out,
        "{}: {} under {}{oom} on {} seed(s){}, {}",
        base.name,
        goal_text(&spec.goal),
        if slo.is_empty() { "no objective".to_string() } else { slo.join(", ") },
        spec.seeds,
        if spec.quantile < 1.0 { format!(" (at least {:.0}% of seeds)", spec.quantile * 100.0) } else { String::new() },
        match spec.inputs.sample_rate {
            Some(r) if r < 1.0 => format!("sampled at 1/{} (--sample-rate 1 plays page-exact)", (1.0 / r).round()),
            _ => "page-exact".to_string(),
        } + if spec.inputs.mode == crate::engine::Mode::Events { ", in event mode" } else { "" }
    );
    for (name, l) in names.iter().zip(&lines) {
        let cells: Vec<String> =
            if l.len() == cols { l.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect() } else { l.clone() };
        let _ = writeln!(out, "  {name:<nw$}  {}", cells.join("  "));
    }
    for r in results {
        for u in &r.uncertain {
            let _ = writeln!(out, "  uncertain ({}): {u}", r.mix);
        }
        for n in &r.notes {
            let _ = writeln!(out, "  note ({}): {n}", r.mix);
        }
    }
    out
}

/// What to set, in operator terms, for the recommended mix.
pub fn recommendation(spec: &PlanSpec, base: &Scenario, results: &[MixResult]) -> Vec<String> {
    let Some(r) = best(results) else {
        return vec!["No mix meets the objectives, even at the smallest density tried.".into()];
    };
    let h = &base.host;
    let ram = r.min_ram_bytes.unwrap_or(h.ram.bytes());
    let reserved_mb = h.reserved.bytes() >> 20;
    let mut out = vec![match &spec.goal {
        Goal::Grow(g) => format!(
            "Run {} with {} {g} guests (overcommit ratio {:.2}); the next guest breaks {}.",
            r.mix,
            answer_text(r),
            r.overcommit_ratio,
            if r.binding.is_empty() { "nothing the search reached".into() } else { r.binding.join(" and ") }
        ),
        Goal::MinimizeRam => format!(
            "Run {} on {} of RAM (overcommit ratio {:.2}); with less, {} breaks.",
            r.mix,
            super::bytes_text(ram),
            r.overcommit_ratio,
            if r.binding.is_empty() { "nothing".into() } else { r.binding.join(" and ") }
        ),
    }];
    let better = |t: &&MixResult| match (t.max_count, r.max_count, t.min_ram_bytes, r.min_ram_bytes) {
        (Some(a), Some(b), _, _) => a > b,
        (_, _, Some(a), Some(b)) => a < b,
        _ => false,
    };
    if let Some(t) = top(results).filter(better) {
        out.push(format!(
            "{} reaches {}, within 5% of {}: as good within the noise of a few seeds, so the simpler mix is \
             recommended (more --seeds separate them).",
            t.mix,
            answer_text(t),
            r.mix
        ));
    }
    let overrides = r.overrides.iter().map(|o| format!("--set {o}")).collect::<Vec<_>>().join(" ");
    // The answer's own rate: a point past the plan's page budget played
    // coarser than the plan's rate.
    let rate = match r.sample_rate.or(spec.inputs.sample_rate) {
        Some(r) if r < 1.0 => format!(" --sample-rate 1/{}", (1.0 / r).round()),
        Some(_) => " --sample-rate 1".to_string(),
        None => String::new(),
    };
    let seed = spec.inputs.master_seed.map_or(String::new(), |s| format!(" --seed {s}"));
    // The plan's runs played as these flags say, the check likewise.
    let rate = rate + if spec.inputs.mode == crate::engine::Mode::Events { " --events" } else { " --touches" };
    let sets: String = spec.inputs.base.iter().map(|o| format!(" --set {}={}", o.path, o.value)).collect();
    out.push(format!("Check it: overcommit run {}{sets}{seed}{rate} {overrides}", spec.inputs.label));
    if r.mix == "hugepages" {
        let knob = |size: crate::scenario::HugePageSize| match size {
            crate::scenario::HugePageSize::Size2M => "vm.nr_hugepages".to_string(),
            crate::scenario::HugePageSize::Size1G => {
                "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages (or hugepagesz=1G hugepages=N at boot)"
                    .into()
            }
        };
        let pools = match r.overrides.iter().find_map(|o| o.strip_prefix("host.hugepages.count=")) {
            Some(pages) => format!("{} = {pages}", knob(h.hugepages.size)),
            None => {
                // Both pools, as the plan set them (`host.hugepages=[...]`).
                let set = r.overrides.iter().find_map(|o| o.strip_prefix("host.hugepages=")).unwrap_or("[]");
                format!("the pools {set} (vm.nr_hugepages for 2M, hugepages-1048576kB/nr_hugepages for 1G)")
            }
        };
        out.push(format!(
            "Huge pages: {pools}; guests on hugetlbfs (libvirt <memoryBacking><hugepages/></memoryBacking>, \
             QEMU -mem-path /dev/hugepages -mem-prealloc); OpenStack flavors with hw:mem_page_size=large."
        ));
    } else {
        out.push(format!(
            "Huge pages: vm.nr_hugepages = {} (no hugetlb pool beyond the scenario's; guest memory uses THP, \
             transparent_hugepage={}).",
            h.hugepages.count,
            format!("{:?}", h.thp).to_lowercase()
        ));
    }
    if r.mix.contains("ksm") {
        match r.ksm_knobs {
            Some((pages, sleep)) => out.push(format!(
                "KSM: on (/sys/kernel/mm/ksm/run = 1), ending at pages_to_scan = {pages}, sleep_millisecs = {sleep} \
                 with the {} policy; it saved {} for {:.1}% of a core.",
                policy_name(base, r),
                super::bytes_text(r.ksm_saved_bytes),
                r.ksmd_cpu_percent
            )),
            None => out.push("KSM: on (/sys/kernel/mm/ksm/run = 1).".into()),
        }
    } else {
        out.push("KSM: off (/sys/kernel/mm/ksm/run = 0; libvirt <memoryBacking><nosharepages/></memoryBacking> keeps guests out).".into());
    }
    let ratio = (r.overcommit_ratio * 100.0).floor() / 100.0;
    out.push(if r.mix == "hugepages" {
        format!(
            "OpenStack: ram_allocation_ratio = 1.0 (hugetlb memory is never overcommitted), reserved_host_memory_mb = {reserved_mb}."
        )
    } else {
        format!(
            "OpenStack: ram_allocation_ratio = {ratio:.2} and reserved_host_memory_mb = {reserved_mb}: placement offers \
             (RAM - reserved) × ratio = {} to guests, what this plan packs.",
            super::bytes_text(((ram.saturating_sub(h.reserved.bytes())) as f64 * ratio) as u64)
        )
    });
    out.push(if r.mix.contains("balloon") {
        "libvirt: <currentMemory> equal to <memory> at start (the balloon policy moves it), and \
         <memballoon model='virtio'><stats period='10'/></memballoon> so the guest reports its free memory."
            .into()
    } else {
        "libvirt: <currentMemory> equal to <memory>; <memballoon model='none'/> or no balloon policy running.".into()
    });
    if !r.uncertain.is_empty() {
        out.push(format!("Uncertain: {} — more --seeds narrow it.", r.uncertain.join("; ")));
    }
    out
}

fn policy_name(base: &Scenario, r: &MixResult) -> String {
    if r.overrides.iter().any(|o| o == "host.ksm.policy=advisor") {
        "kernel's scan-time advisor".into()
    } else {
        base.host.ksm.tuner.name().to_string()
    }
}

/// The frontier: density against the first objective's metric, a curve per
/// mix, the objective's line and each mix's answer marked.
pub fn frontier(spec: &PlanSpec, results: &[MixResult]) -> Result<plot::Figure, String> {
    let (metric_i, slo) = match spec.slo.first() {
        Some(s) => (Some(0), Some(s)),
        None => (None, None),
    };
    let scale = |m: Metric| {
        if m.is_latency() {
            1e3
        } else if m == Metric::KsmdCpu {
            0.01
        } else {
            1.0
        }
    };
    let (y_title, y_scale) = match slo {
        Some(s) if s.metric.is_latency() => (format!("{}, worst guest and seed (µs)", s.metric.name()), Scale::Log),
        Some(s) if s.metric == Metric::KsmdCpu => ("ksmd CPU (% of a core)".to_string(), Scale::Linear),
        Some(s) => (format!("{}, worst guest and seed", s.metric.name()), Scale::Linear),
        None => ("p99, worst guest and seed (µs)".to_string(), Scale::Log),
    };
    let value = |r: &crate::plan::capacity::SeedRun| match (metric_i, slo) {
        (Some(i), Some(s)) => r.metrics.get(i).copied().unwrap_or(f64::NAN) / scale(s.metric),
        _ => r.p99_ns / 1e3,
    };
    let mut series = Vec::new();
    let mut marks = Vec::new();
    for r in results.iter().filter(|r| r.unsupported.is_none()) {
        let points: Vec<(f64, f64)> =
            r.points.iter().map(|p| (p.x as f64, p.runs.iter().map(value).fold(f64::NAN, f64::max))).collect();
        if let Some(x) = r.max_count.or(r.min_ram_bytes.map(|b| b >> 30))
            && let Some(&(px, py)) = points.iter().find(|p| p.0 == x as f64)
        {
            // Mixes that end on the same point share one mark.
            match marks.iter_mut().find(|m: &&mut (f64, f64, String)| m.0 == px && m.1 == py) {
                Some(m) => m.2 = m.2.replacen(": ", &format!(", {}: ", r.mix), 1),
                None => marks.push((px, py, format!("{}: {}", r.mix, answer_text(r)))),
            }
        }
        series.push(Series { label: r.mix.to_string(), points });
    }
    let x_title = match &spec.goal {
        Goal::Grow(g) => format!("{g} guests"),
        Goal::MinimizeRam => "host RAM (GiB)".into(),
    };
    let hlines = slo.map(|s| vec![(s.bound / scale(s.metric), format!("SLO {}", s.text))]).unwrap_or_default();
    plot::line_chart(&LineChart {
        title: "capacity frontier per policy mix".into(),
        x: Axis { title: x_title, scale: Scale::Linear },
        y: Axis { title: y_title, scale: y_scale },
        series,
        hlines,
        markers: true,
        marks,
    })
    .map_err(|e| e.to_string())
}

/// `report.html` for a plan.
pub fn html(spec: &PlanSpec, base: &Scenario, results: &[MixResult], frontier: &plot::Figure) -> String {
    let head =
        ["mix", "answer", "overcommit", "p99", "slowdown", "KSM saved", "swap used", "ksmd CPU", "binding", "runs"]
            .map(String::from)
            .to_vec();
    let rows = results
        .iter()
        .map(|r| match &r.unsupported {
            Some(why) => vec![r.mix.to_string(), format!("not planned: {why}")]
                .into_iter()
                .chain(std::iter::repeat_n(String::new(), 8))
                .collect(),
            None => std::iter::once(r.mix.to_string()).chain(cells(r)).collect(),
        })
        .collect();
    let rec = recommendation(spec, base, results);
    let mut key_numbers = vec![("goal".to_string(), goal_text(&spec.goal))];
    if let Some(b) = best(results) {
        key_numbers.push(("recommended mix".into(), b.mix.into()));
        key_numbers.push(("answer".into(), answer_text(b)));
        key_numbers.push(("overcommit ratio there".into(), format!("{:.2}", b.overcommit_ratio)));
    }
    key_numbers.push(("runs played".into(), results.iter().map(|r| r.runs).sum::<usize>().to_string()));
    let mut uncertain: Vec<Block> = Vec::new();
    for r in results {
        for u in &r.uncertain {
            uncertain.push(Block::Warning(format!("{}: {u}", r.mix)));
        }
        for n in &r.notes {
            uncertain.push(Block::Paragraph(format!("{}: {n}", r.mix)));
        }
    }
    let mut first = vec![Block::Paragraph(format!(
        "Objectives: {}{}; every guest must start and keep running, on {} seed(s).",
        spec.slo.iter().map(|s| s.text.clone()).collect::<Vec<_>>().join(", "),
        if spec.allow_oom_kills { "" } else { ", oom_kills==0" },
        spec.seeds
    ))];
    first.extend(rec.into_iter().map(Block::Paragraph));
    first.extend(uncertain);
    let page = Page {
        title: format!("overcommit plan: {}", base.name),
        description: base.description.trim().to_string(),
        key_numbers,
        sections: vec![
            Section { heading: "Recommendation".into(), blocks: first },
            Section {
                heading: "Policy mixes".into(),
                blocks: vec![
                    Block::Figure {
                        id: "frontier".into(),
                        caption:
                            "Each mix's runs: density against the first objective's metric (worst guest and seed); \
                                  the marked point is the mix's answer."
                                .into(),
                        svg: frontier.svg.clone(),
                    },
                    Block::Table { head, rows },
                ],
            },
        ],
        footer: format!(
            "overcommit {} · scenario {} · files: plan.json, frontier.svg/.png",
            env!("CARGO_PKG_VERSION"),
            spec.inputs.label
        ),
    };
    render(&page)
}
