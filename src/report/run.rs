//! The files `overcommit run` writes (`summary.json`, `timeseries.csv`,
//! `events.csv`) and the table it prints.

use crate::model::Status;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::engine::{Event, GuestSample, HostSample, Recorder, Sample, Sink, Summary};
use crate::units::ByteSize;

/// A sink that forwards to another and reports progress to a callback.
pub struct WithProgress<'a, S: Sink> {
    pub inner: &'a mut S,
    pub on_progress: &'a mut dyn FnMut(u64, u64),
}

impl<S: Sink> Sink for WithProgress<'_, S> {
    fn sample(&mut self, sample: &Sample) {
        self.inner.sample(sample);
    }
    fn event(&mut self, event: &Event) {
        self.inner.event(event);
    }
    fn progress(&mut self, now_ns: u64, end_ns: u64) {
        (self.on_progress)(now_ns, end_ns);
    }
}

/// Write files so that a reader never sees half of one: each goes to a
/// temporary name in the same directory and all are renamed at the end.
pub fn write_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut staged = Vec::new();
    for (name, bytes) in files {
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            for (t, _) in &staged {
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        staged.push((tmp, dir.join(name)));
    }
    let mut out = Vec::new();
    for (tmp, dst) in staged {
        std::fs::rename(&tmp, &dst)?;
        out.push(dst);
    }
    Ok(out)
}

pub fn summary_json(summary: &Summary) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(summary).expect("a summary always serialises");
    v.push(b'\n');
    v
}

/// A column of `timeseries.csv` from one host sample: name and value.
type HostColumn = (&'static str, fn(&HostSample) -> u64);

/// The host's columns, after `t_s`.
const HOST_COLUMNS: &[HostColumn] = &[
    ("host_used_bytes", |h| h.used_bytes),
    ("host_free_bytes", |h| h.free_bytes),
    ("guest_resident_bytes", |h| h.guest_resident_bytes),
    ("swap_used_bytes", |h| h.swap_used_bytes),
    ("swap_cached_bytes", |h| h.swap_cached_bytes),
    ("zram_bytes", |h| h.zram_bytes),
    ("hugepages_pool_used_bytes", |h| h.pool_used_bytes),
    ("ksm_bytes", |h| h.ksm_bytes),
    ("ksm_pages_shared", |h| h.ksm_pages_shared),
    ("ksm_pages_sharing", |h| h.ksm_pages_sharing),
    ("ksm_zero_pages", |h| h.ksm_zero_pages),
    ("ksm_full_scans", |h| h.ksm_full_scans),
    ("ksm_cow_breaks", |h| h.ksm_cow_breaks),
];

/// Each guest's columns, prefixed with its name: a level, or a counter
/// shown as its rate per second over the interval since the last sample.
enum GuestColumn {
    Level(fn(&GuestSample) -> u64),
    PerSecond(fn(&GuestSample) -> u64),
}

const GUEST_COLUMNS: &[(&str, GuestColumn)] = &[
    ("resident_bytes", GuestColumn::Level(|g| g.resident_bytes)),
    ("huge_bytes", GuestColumn::Level(|g| g.huge_bytes)),
    ("shared_bytes", GuestColumn::Level(|g| g.shared_bytes)),
    ("balloon_bytes", GuestColumn::Level(|g| g.balloon_bytes)),
    ("guest_swap_major_faults_per_s", GuestColumn::PerSecond(|g| g.guest_swap_major_faults)),
    ("swapped_bytes", GuestColumn::Level(|g| g.swapped_bytes)),
    ("minor_faults_per_s", GuestColumn::PerSecond(|g| g.minor_faults)),
    ("major_faults_per_s", GuestColumn::PerSecond(|g| g.major_faults)),
    ("touches_per_s", GuestColumn::PerSecond(|g| g.touches)),
];

/// One row per sample: host memory, then each guest's memory and its fault
/// rates over the interval since the previous sample.
pub fn timeseries_csv(record: &Recorder, summary: &Summary) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["t_s".to_string()];
    header.extend(HOST_COLUMNS.iter().map(|(name, _)| name.to_string()));
    for g in &summary.guests {
        header.extend(GUEST_COLUMNS.iter().map(|(col, _)| format!("{}.{col}", g.name)));
    }
    let _ = w.write_record(&header);
    let mut prev: Option<&Sample> = None;
    for s in &record.samples {
        let mut row = vec![format!("{}", s.t_ns as f64 / 1e9)];
        row.extend(HOST_COLUMNS.iter().map(|(_, value)| value(&s.host).to_string()));
        let dt = prev.map_or(0.0, |p| (s.t_ns - p.t_ns) as f64 / 1e9);
        for (i, g) in s.guests.iter().enumerate() {
            row.extend(GUEST_COLUMNS.iter().map(|(_, col)| match col {
                GuestColumn::Level(value) => value(g).to_string(),
                GuestColumn::PerSecond(value) => match prev {
                    Some(p) if dt > 0.0 => format!("{:.1}", value(g).saturating_sub(value(&p.guests[i])) as f64 / dt),
                    _ => "0".to_string(),
                },
            }));
        }
        let _ = w.write_record(&row);
        prev = Some(s);
    }
    w.into_inner().unwrap_or_default()
}

pub fn events_csv(record: &Recorder) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["t_s", "kind", "guest", "detail"]);
    // Events arrive in the order they were played; a prealloc reports what
    // happened during its boot at the times it happened, so sort by time
    // (stable: ties keep their order).
    let mut events: Vec<&Event> = record.events.iter().collect();
    events.sort_by_key(|e| e.t_ns);
    for e in events {
        let _ = w.write_record([
            format!("{}", e.t_ns as f64 / 1e9),
            e.kind.label().to_string(),
            e.guest.clone(),
            e.detail.clone(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// A latency in the unit that suits it (ns, us, ms, s).
pub fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} us", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

/// One table line: name, state, resident, swapped, minor, major, p50, p99,
/// slowdown.
type Row = (String, String, u64, u64, u64, u64, f64, f64, f64);

/// The table `run` prints: one line per guest (or per group when there are
/// many), then the host.
pub fn table(summary: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<14} {:<15} {:>10} {:>10} {:>11} {:>11} {:>9} {:>9} {:>8}",
        "guest", "state", "resident", "swapped", "minor", "major", "p50", "p99", "slowdown"
    );
    let rows: Vec<Row> = if summary.guests.len() <= 24 {
        summary
            .guests
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.state.label().to_string(),
                    g.resident_end_bytes,
                    g.swapped_end_bytes,
                    g.minor_faults,
                    g.major_faults,
                    g.latency_ns.p50 as f64,
                    g.latency_ns.p99 as f64,
                    g.slowdown,
                )
            })
            .collect()
    } else {
        // Many guests: one line per group with totals and the worst p99.
        let mut groups: Vec<&str> = summary.guests.iter().map(|g| g.group.as_str()).collect();
        groups.dedup();
        groups
            .iter()
            .map(|name| {
                let gs: Vec<_> = summary.guests.iter().filter(|g| g.group == *name).collect();
                let running = gs.iter().filter(|g| g.state == Status::Running).count();
                let worst = |f: fn(&&crate::engine::GuestSummary) -> f64| gs.iter().map(f).fold(0.0, f64::max);
                (
                    format!("{name} ×{}", gs.len()),
                    format!("{running} running"),
                    gs.iter().map(|g| g.resident_end_bytes).sum(),
                    gs.iter().map(|g| g.swapped_end_bytes).sum(),
                    gs.iter().map(|g| g.minor_faults).sum(),
                    gs.iter().map(|g| g.major_faults).sum(),
                    worst(|g| g.latency_ns.p50 as f64),
                    worst(|g| g.latency_ns.p99 as f64),
                    worst(|g| g.slowdown),
                )
            })
            .collect()
    };
    for (name, state, res, sw, minor, major, p50, p99, slow) in rows {
        let _ = writeln!(
            o,
            "{:<14} {:<15} {:>10} {:>10} {:>11} {:>11} {:>9} {:>9} {:>8.3}",
            name,
            state,
            format!("{:.1}", ByteSize(res)),
            format!("{:.1}", ByteSize(sw)),
            minor,
            major,
            ns(p50),
            ns(p99),
            slow
        );
    }
    let h = &summary.host;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "host: overcommit ratio {:.2} ({} configured on {} usable), peak used {:.1}, lowest free {:.1}",
        h.overcommit_ratio,
        ByteSize(h.configured_bytes),
        ByteSize(h.usable_bytes),
        ByteSize(h.peak_used_bytes),
        ByteSize(h.min_free_bytes)
    );
    let _ = writeln!(
        o,
        "      swap peak {:.1} of {:.1}, {} guests running, {} failed to start, OOM kills: {}{}",
        ByteSize(h.swap_used_peak_bytes),
        ByteSize(h.swap_size_bytes),
        h.guests_running,
        h.guests_failed_to_start,
        h.oom_kills,
        if h.memcg_oom_kills > 0 { format!(" (and {} by memory cgroups)", h.memcg_oom_kills) } else { String::new() }
    );
    for g in summary.guests.iter().take(24) {
        if let Some(cg) = &g.memcg {
            let limits: Vec<String> =
                [("memory.max", cg.max_bytes), ("memory.high", cg.high_bytes), ("memory.swap.max", cg.swap_max_bytes)]
                    .iter()
                    .filter_map(|(k, v)| v.map(|b| format!("{k} {:.1}", ByteSize(b))))
                    .collect();
            let _ = writeln!(
                o,
                "      cgroup {}: {}; peak {:.1}, {} charges over high, {} at max, {} pages reclaimed, {} OOM kills",
                g.name,
                limits.join(", "),
                ByteSize(cg.peak_bytes),
                cg.events.high,
                cg.events.max,
                cg.pgsteal,
                cg.events.oom_kill
            );
        }
        if let Some(cur) = g.current_memory_bytes {
            let _ = writeln!(
                o,
                "      balloon {}: to keep {:.1}, ended holding {:.1}{}",
                g.name,
                ByteSize(cur),
                ByteSize(g.balloon_end_bytes),
                if g.free_page_reported_bytes > 0 {
                    format!(", {:.1} reported free", ByteSize(g.free_page_reported_bytes))
                } else {
                    String::new()
                }
            );
        }
    }
    if let Some(z) = &h.zswap {
        let _ = writeln!(
            o,
            "      zswap: pool {:.1} now ({:.1} at most) holding {} pages; {} stored, {} loaded, {} written back to the \
             device, {} refused while full; {} zero pages kept as a bit",
            ByteSize(z.pool_total_size_bytes),
            ByteSize(z.pool_peak_bytes),
            z.stored_pages,
            z.zswpout,
            z.zswpin,
            z.zswpwb,
            z.rejected_pool_full,
            z.swpout_zero
        );
    }
    if let Some(k) = &h.ksm {
        let _ = writeln!(
            o,
            "      KSM: saves {:.1} now ({:.1} at most), {} full scans, ksmd {:.1}% of a core, {} copy-on-write breaks",
            ByteSize(k.saved_bytes),
            ByteSize(k.saved_peak_bytes),
            k.full_scans,
            k.ksmd_cpu_percent,
            k.cow_breaks
        );
        if k.full_scans < 2 && k.pages_sharing == 0 && k.ksm_zero_pages == 0 {
            let _ = writeln!(
                o,
                "      (a page merges only if unchanged since ksmd's last pass, so from the second full scan on: \
                 a longer run, or more pages_to_scan, lets KSM save)"
            );
        }
    }
    let ballooned: u64 = summary.guests.iter().map(|g| g.balloon_peak_bytes).sum();
    if ballooned > 0 {
        let inside: u64 = summary.guests.iter().map(|g| g.guest_swap_major_faults).sum();
        let ooms: u64 = summary.guests.iter().map(|g| g.guest_oom_events).sum();
        let _ = writeln!(
            o,
            "      balloons: {:.1} at their largest (summed over guests), {inside} guest-side swap-ins, {ooms} guest OOMs",
            ByteSize(ballooned)
        );
    }
    if summary.sample_rate < 1.0 {
        let _ = writeln!(
            o,
            "      sampled mode: 1 page in {} simulated, counts scaled up",
            (1.0 / summary.sample_rate).round()
        );
    }
    let _ = writeln!(
        o,
        "      {}",
        if summary.mode == "events" {
            "played by events: faults and copy-on-write breaks, the hits between them counted (--touches plays each)"
        } else {
            "played touch by touch (--events plays only the faults and copy-on-write breaks, faster where few touches fault)"
        }
    );
    o
}
