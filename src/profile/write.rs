//! A profile as scenario text: a `workload:` block per guest (or per group
//! of guests an import put together), each figure with a comment saying
//! how it was measured, over how long, on how many pages, and how sure it
//! is.

use std::fmt::Write as _;

use super::{GuestProfile, Report};
use crate::units::{ByteSize, Rate};

/// The figures of one or more guests' profiles, combined: the mean of
/// each figure (the guests of one group run the same software).
pub struct Combined<'a> {
    pub guests: Vec<&'a GuestProfile>,
}

impl Combined<'_> {
    fn mean(&self, f: impl Fn(&GuestProfile) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.guests.iter().filter_map(|g| f(g)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// Whether two guests' profiles describe one workload, as far as a
/// profile can tell: the same pattern family with parameters within 0.05,
/// working sets within 10%, write shares within 5 points, and zero,
/// shared and duplicate shares within 3 points of each other (the
/// accuracy the profile is held to against real guests with known
/// workloads). Two unfitted profiles are alike.
pub fn alike(a: &GuestProfile, b: &GuestProfile) -> bool {
    let fits = match (&a.fit, &b.fit) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            let family = |p: &str| p.split('(').next().unwrap_or("").trim().to_string();
            let params = |p: &str| -> Vec<f64> {
                p.split_once('(')
                    .map(|(_, r)| r.trim_end_matches(')').split(',').filter_map(|v| v.trim().parse().ok()).collect())
                    .unwrap_or_default()
            };
            let (px, py) = (params(&x.pattern), params(&y.pattern));
            let (wx, wy) = (x.working_set_bytes as f64, y.working_set_bytes as f64);
            family(&x.pattern) == family(&y.pattern)
                && px.len() == py.len()
                && px.iter().zip(&py).all(|(u, v)| (u - v).abs() <= 0.05 + 1e-9)
                && (wx - wy).abs() <= 0.10 * wx.max(wy)
                && match (x.write, y.write) {
                    (Some(u), Some(v)) => (u - v).abs() <= 0.05,
                    (None, None) => true,
                    _ => false,
                }
        }
        _ => false,
    };
    let contents = match (&a.content, &b.content) {
        (Some(x), Some(y)) => [(x.zero, y.zero), (x.shared, y.shared), (x.duplicate, y.duplicate)]
            .iter()
            .all(|(u, v)| (u.share - v.share).abs() <= 0.03),
        _ => true,
    };
    fits && contents
}

/// The `workload:` block (with its comments), indented by `indent`; `None`
/// when no guest of the group could be fitted.
pub fn workload_block(r: &Report, c: &Combined, indent: &str) -> Option<String> {
    let fitted: Vec<&GuestProfile> = c.guests.iter().copied().filter(|g| g.fit.is_some()).collect();
    let first = fitted.first()?;
    let fit = first.fit.as_ref()?;
    let mut y = String::new();
    let names: Vec<&str> = c.guests.iter().map(|g| g.name.as_str()).collect();
    let passes: u32 = c.guests.iter().map(|g| g.passes).min().unwrap_or(0);
    let _ = writeln!(
        y,
        "{indent}# profiled by `overcommit profile` ({}) over {:.0} s, {passes} pass{} of {} s",
        names.join(", "),
        r.duration_s,
        if passes == 1 { "" } else { "es" },
        r.intervals_s.iter().map(|s| format!("{s}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(y, "{indent}# working set: {}: sees {}", r.mechanism.label(), r.mechanism_sees);
    let _ = writeln!(y, "{indent}# writes: {}: sees {}", r.writes.label(), r.writes_see);
    let mut cands: Vec<String> = fit.candidates.iter().map(|(p, res)| format!("{p} {res:.3}")).collect();
    cands.sort();
    let _ = writeln!(
        y,
        "{indent}# fit of E[WSS(dt)] = sum(1 - exp(-rate p_i dt)): {}, residual {:.3}{} (tried: {}; a richer \
         family is taken only when it cuts the residual below 80% of the simpler one's and by 0.01)",
        fit.pattern,
        fit.residual,
        if fit.fits_well { ", fits well" } else { ": no family fits well, a rough guide only" },
        cands.join(", ")
    );
    let ws = c.mean(|g| g.fit.as_ref().map(|f| f.working_set_bytes as f64)).unwrap_or(0.0);
    let rate = c.mean(|g| g.fit.as_ref().map(|f| f.touch_rate)).unwrap_or(0.0);
    let _ = writeln!(y, "{indent}workload:");
    let _ = writeln!(y, "{indent}  working_set: {}", ByteSize(((ws / 4096.0).round() as u64) * 4096));
    let _ = writeln!(y, "{indent}  touch_rate: {:.1}", Rate(rate));
    let _ = writeln!(y, "{indent}  pattern: {}", serde_json::to_string(&fit.pattern).unwrap_or_default());
    if let Some(w) = c.mean(|g| g.fit.as_ref().and_then(|f| f.write)) {
        let _ = writeln!(
            y,
            "{indent}  write: {:.3}  # share of touches that write, fitted to the pages written",
            w.clamp(0.0, 1.0)
        );
    }
    let share = |name: &str, pick: fn(&super::content::Content) -> super::content::Share| -> Option<String> {
        let shares: Vec<(super::content::Share, u64)> =
            c.guests.iter().filter_map(|g| g.content.as_ref().map(|ct| (pick(ct), ct.sampled))).collect();
        if shares.is_empty() || shares.iter().all(|s| s.1 == 0) {
            return None;
        }
        let n: u64 = shares.iter().map(|s| s.1).sum();
        let mean = shares.iter().map(|s| s.0.share * s.1 as f64).sum::<f64>() / n.max(1) as f64;
        let low = shares.iter().map(|s| s.0.low).fold(f64::INFINITY, f64::min);
        let high = shares.iter().map(|s| s.0.high).fold(0.0, f64::max);
        let interval = if shares.len() == 1 { "95% interval" } else { "the guests' 95% intervals span" };
        Some(format!("  {name}: {mean:.3}  # {interval} {low:.3}..{high:.3}, {n} sampled pages"))
    };
    if let Some(l) = share("shared", |ct| ct.shared) {
        let _ = writeln!(y, "{indent}{l} (content another profiled guest holds too)");
    }
    if let Some(l) = share("zero", |ct| ct.zero) {
        let _ = writeln!(y, "{indent}{l}");
    }
    if let Some(l) = share("duplicate", |ct| ct.duplicate) {
        let _ = writeln!(y, "{indent}{l} (content repeated within the guest; modelled as one pattern KSM merges)");
    }
    let placed: Vec<(&str, f64, f64, f64)> = ["shared", "zero", "duplicate"]
        .iter()
        .enumerate()
        .filter_map(|(k, name)| {
            let v: Vec<super::content::Share> =
                c.guests.iter().filter_map(|g| g.fit.as_ref().and_then(|f| f.in_working_set[k])).collect();
            (!v.is_empty()).then(|| {
                let mean = v.iter().map(|s| s.share).sum::<f64>() / v.len() as f64;
                let low = v.iter().map(|s| s.low).fold(f64::INFINITY, f64::min);
                let high = v.iter().map(|s| s.high).fold(0.0, f64::max);
                (*name, mean, low, high)
            })
        })
        .collect();
    if !placed.is_empty() {
        let _ = writeln!(
            y,
            "{indent}  # the part of each class in the working set, from how much of it the guest's writes changed \
             between two reads of the sample (a class outside the working set is never written): {}",
            placed.iter().map(|p| format!("{} {:.3}..{:.3}", p.0, p.2, p.3)).collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(
            y,
            "{indent}  in_working_set: {{ {} }}",
            placed.iter().map(|p| format!("{}: {:.3}", p.0, p.1)).collect::<Vec<_>>().join(", ")
        );
    }
    Some(y)
}

/// `guests:` entries (name and workload) for a profile printed on its own.
pub fn guests_yaml(r: &Report) -> String {
    let mut y =
        String::from("# what `overcommit profile` measured; paste each workload: into the group of its guest\n");
    let _ = writeln!(
        y,
        "# cost: {:.2} s of CPU over {:.0} s ({:.1}% of one core), {} pages read",
        r.cost.cpu_s,
        r.cost.wall_s,
        100.0 * r.cost.share_of_one_core,
        r.cost.pages_read
    );
    for s in &r.side_effects {
        let _ = writeln!(y, "# side effect: {s}");
    }
    for s in &r.skipped {
        let _ = writeln!(y, "# skipped: {s}");
    }
    y.push_str("guests:\n");
    for g in &r.guests {
        let _ = writeln!(y, "  - name: {}", serde_json::to_string(&g.name).unwrap_or_default());
        for n in &g.notes {
            let _ = writeln!(y, "    # note: {n}");
        }
        match workload_block(r, &Combined { guests: vec![g] }, "    ") {
            Some(b) => y.push_str(&b),
            None => y.push_str("    # nothing could be fitted\n"),
        }
    }
    y
}
