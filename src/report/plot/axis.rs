//! Axes: range and ticks, computed here so both backends and both scales
//! agree.

use super::*;

/// One axis of the plotting area, in plot space (log10 of the value on a log
/// axis). Implements plotters' `Ranged` so the mesh draws exactly our ticks.
#[derive(Debug, Clone)]
pub(super) struct AxisSpec {
    pub(super) scale: Scale,
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// Labelled ticks with grid lines, in plot space.
    pub(super) bold: Vec<f64>,
    /// Unlabelled minor grid lines, in plot space.
    pub(super) light: Vec<f64>,
    /// Significant digits in linear tick labels (enough to tell ticks apart).
    pub(super) digits: usize,
    /// Category names at 0, 1, 2, ...; when set, labels come from here.
    pub(super) categories: Option<Vec<String>>,
}

impl AxisSpec {
    /// Plot-space position of a value, or `None` if this axis cannot show it.
    pub(super) fn to_plot(scale: Scale, v: f64) -> Option<f64> {
        match scale {
            Scale::Linear if v.is_finite() => Some(v),
            Scale::Log if v.is_finite() && v > 0.0 => Some(v.log10()),
            _ => None,
        }
    }

    /// An axis covering `values` (raw values; ones the scale cannot show are
    /// ignored), with about `max_labels` labelled ticks at most.
    pub(super) fn fit(scale: Scale, values: impl IntoIterator<Item = f64>, max_labels: usize) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in values.into_iter().filter_map(|v| Self::to_plot(scale, v)) {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        if lo > hi {
            // No data: 0..1 or 1..10.
            (lo, hi) = (0.0, 1.0);
        }
        match scale {
            Scale::Linear => Self::fit_linear(lo, hi, max_labels),
            Scale::Log => Self::fit_log(lo, hi, max_labels),
        }
    }

    pub(super) fn fit_linear(mut lo: f64, mut hi: f64, max_labels: usize) -> Self {
        if hi - lo <= lo.abs().max(hi.abs()) * 1e-12 {
            // Counts and sizes that stayed at 0 read best from a 0 floor.
            (lo, hi) = if lo == 0.0 { (0.0, 1.0) } else { (lo - lo.abs() * 0.1, hi + lo.abs() * 0.1) };
        }
        let intervals = max_labels.saturating_sub(1).max(2) as f64;
        let step = nice_step((hi - lo) / (intervals * 0.85));
        let (i0, i1) = ((lo / step).floor(), (hi / step).ceil());
        let (nlo, nhi) = (i0 * step, i1 * step);
        let count = i1 - i0;
        let bold = if step.is_finite() && nlo < nhi && count.is_finite() && count <= 100.0 {
            (0..=count as i64).map(|i| (i0 + i as f64) * step).collect()
        } else {
            vec![lo, hi]
        };
        let (lo, hi) = if nlo.is_finite() && nhi.is_finite() && nlo < nhi { (nlo, nhi) } else { (lo, hi) };
        // Digits needed so that neighbouring ticks print differently.
        let biggest = lo.abs().max(hi.abs());
        let digits =
            if step > 0.0 && biggest > 0.0 { ((biggest / step).log10().ceil() as i64 + 1).clamp(3, 15) } else { 3 };
        AxisSpec { scale: Scale::Linear, lo, hi, bold, light: Vec::new(), digits: digits as usize, categories: None }
    }

    pub(super) fn fit_log(mut lo: f64, mut hi: f64, max_labels: usize) -> Self {
        if hi - lo < 1e-9 {
            // One value: show it between half and twice itself.
            (lo, hi) = (lo - 2f64.log10(), hi + 2f64.log10());
        }
        let (mut lo, mut hi) = (snap_125(lo, false), snap_125(hi, true));
        let eps = 1e-9;
        let mut stride = 1;
        let mantissas: &[f64] = if hi - lo <= 0.5 + eps {
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        } else if hi - lo <= 3.0 + eps {
            &[1.0, 2.0, 5.0]
        } else {
            // Decade labels only: whole decades at both ends, and every
            // `stride`-th decade labelled so both ends carry a label.
            let (k0, k1) = (lo.floor(), hi.ceil());
            stride = ((k1 - k0) / max_labels.saturating_sub(1).max(1) as f64).ceil().max(1.0) as i64;
            (lo, hi) = (k0, k0 + ((k1 - k0) / stride as f64).ceil() * stride as f64);
            &[1.0]
        };
        let decades = hi - lo;
        let (k0, k1) = (lo.floor() as i64, hi.ceil() as i64);
        let mut bold = Vec::new();
        let mut light = Vec::new();
        // At most a few hundred decades (f64 spans about 630), so these loops are bounded.
        for k in k0..=k1 {
            for m in 1..=9 {
                let p = k as f64 + (m as f64).log10();
                if p < lo - eps || p > hi + eps {
                    continue;
                }
                let labelled = mantissas.contains(&(m as f64)) && (m != 1 || (k - k0).rem_euclid(stride) == 0);
                if labelled {
                    bold.push(p);
                } else if m == 1 || decades <= 8.0 + eps {
                    light.push(p);
                }
            }
        }
        AxisSpec { scale: Scale::Log, lo, hi, bold, light, digits: 3, categories: None }
    }

    /// Categories at 0, 1, ..., n-1, each in a slot one unit wide.
    pub(super) fn categories(names: &[String]) -> Self {
        let n = names.len().max(1) as f64;
        AxisSpec {
            scale: Scale::Linear,
            lo: -0.5,
            hi: n - 0.5,
            bold: (0..names.len()).map(|i| i as f64).collect(),
            light: Vec::new(),
            digits: 3,
            categories: Some(names.to_vec()),
        }
    }

    pub(super) fn label(&self, p: f64) -> String {
        if self.categories.is_some() {
            // Category names are drawn by the category chart itself (possibly rotated).
            return String::new();
        }
        match self.scale {
            Scale::Linear => compact(p, self.digits),
            Scale::Log => compact(10f64.powf(p), 3),
        }
    }

    pub(super) fn labels(&self) -> Vec<String> {
        self.bold.iter().map(|&p| self.label(p)).collect()
    }
}

impl Ranged for AxisSpec {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let frac = if span > 0.0 { (value - self.lo) / span } else { 0.5 };
        // `as` saturates (and maps NaN to 0), so no value can panic here.
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.light.clone() } else { self.bold.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for AxisSpec {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

/// The smallest of 1, 2, 5 × 10^k at least `raw`.
pub(super) fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Rounds a log10 value down (or up) to the log10 of 1, 2 or 5 × 10^k.
pub(super) fn snap_125(p: f64, up: bool) -> f64 {
    let k = p.floor();
    let m = 10f64.powf(p - k);
    let eps = 1e-9;
    let snapped = if up {
        [1.0, 2.0, 5.0, 10.0].into_iter().find(|&c| c >= m - eps).unwrap_or(10.0)
    } else {
        [5.0, 2.0, 1.0].into_iter().find(|&c| c <= m + eps).unwrap_or(1.0)
    };
    k + f64::log10(snapped)
}

/// A tick label: `digits` significant digits at most, trailing zeros dropped,
/// SI suffixes from 1k up, exponent form for the very small and very large
/// ("1", "2.5", "1.5k", "10M", "0.01", "2e-5").
pub(super) fn compact(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let sig = digits.max(1);
    let r: f64 = format!("{:.*e}", sig - 1, v).parse().unwrap_or(v);
    let a = r.abs();
    if a == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e15).contains(&a) {
        let s = format!("{:.*e}", sig - 1, r);
        return match s.split_once('e') {
            Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa)),
            None => s,
        };
    }
    let (scaled, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|&(s, _)| a >= s)
        .map_or((r, ""), |(s, suffix)| (r / s, suffix));
    let decimals = (sig as i64 - 1 - scaled.abs().log10().floor() as i64).clamp(0, 15) as usize;
    format!("{}{suffix}", trim_zeros(&format!("{scaled:.decimals$}")))
}

pub(super) fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}
