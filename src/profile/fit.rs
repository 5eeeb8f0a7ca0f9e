//! From a measured working-set curve to a workload: the working set,
//! touch rate and pattern whose expected curve is closest.
//!
//! For independent references, a page touched with probability pᵢ per
//! touch at λ touches a second is touched within Δt with probability
//! 1 − exp(−λ pᵢ Δt), so E[WSS(Δt)] = Σᵢ (1 − exp(−λ pᵢ Δt)) (Denning's
//! working set under the independent reference model; the same sum as
//! Che's approximation). Where the host sees pages only in 2 MiB units
//! (THP-backed guest RAM: one accessed bit per huge page), the sum runs
//! over units, each with the probability of its 512 pages. Patterns are
//! the model's own: `uniform`, `hotcold(F, P)` (the first F of the pages
//! take P of the touches) and `zipf(s)` (page of rank i ∝ i^−s, hottest
//! first). The same curve at rate wλ gives the pages written within Δt
//! when a share w of the touches write.
//!
//! The fit minimises the squared log error over the measured points, so
//! a short interval's few hundred pages count as much as a long one's
//! gigabytes; W is bounded by the guest's RAM.

use serde::Serialize;

use crate::latency::che::zipf_sum;
use crate::scenario::Pattern;

/// A measured point: the interval (s) and the pages touched (or written)
/// within it, in 4 KiB pages.
pub type Point = (f64, f64);

/// What a fit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub pattern: Pattern,
    /// Working set, in 4 KiB pages.
    pub pages: f64,
    /// Page touches a second.
    pub rate: f64,
    /// Root mean square of the log errors over the points (0.1: about 10%
    /// off on average).
    pub residual: f64,
}

/// The families tried, and what each fit gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub best: Fit,
    pub candidates: Vec<Fit>,
    /// The best fit's residual is small enough to trust (≤ 0.1).
    pub fits_well: bool,
}

/// How a pattern spreads touches over the units the host sees: groups of
/// `n` units that each take a share `q` of the touches.
fn shape(pattern: &Pattern, pages: f64, unit: f64) -> Vec<(f64, f64)> {
    let units = (pages / unit).max(1.0);
    match *pattern {
        Pattern::Uniform => vec![(units, 1.0 / units)],
        Pattern::HotCold { hot_fraction, hot_probability } => {
            let hot = (units * hot_fraction).max(1.0).min(units);
            let mut v = vec![(hot, hot_probability / hot)];
            if units > hot {
                v.push((units - hot, (1.0 - hot_probability) / (units - hot)));
            }
            v
        }
        Pattern::Zipf { s } => {
            // Units of consecutive ranks (hottest first), in geometric
            // groups of units each taken at its mean share.
            let n = pages.max(1.0).round() as u64;
            let h = zipf_sum(s, 1, n);
            let u = unit.max(1.0).round() as u64;
            let total_units = n.div_ceil(u);
            let mut v = Vec::new();
            let mut first = 0u64;
            while first < total_units {
                let count = (first / 8).max(1).min(total_units - first);
                let (a, b) = (first * u + 1, ((first + count) * u).min(n));
                v.push((count as f64, zipf_sum(s, a, b) / h / count as f64));
                first += count;
            }
            v
        }
    }
}

fn expected_from(shape: &[(f64, f64)], rate: f64, dt: f64, unit: f64) -> f64 {
    let x = rate * dt;
    unit * shape.iter().map(|&(n, q)| n * -(-x * q).exp_m1()).sum::<f64>()
}

/// E[WSS(Δt)] in 4 KiB pages for `pattern` over `pages` pages touched at
/// `rate`, seen in units of `unit` pages.
pub fn expected(pattern: &Pattern, pages: f64, rate: f64, dt: f64, unit: f64) -> f64 {
    expected_from(&shape(pattern, pages, unit), rate, dt, unit)
}

fn log_error_of(shape: &[(f64, f64)], rate: f64, points: &[Point], unit: f64) -> f64 {
    let mut sum = 0.0;
    let mut n = 0.0;
    for &(dt, m) in points {
        if m <= 0.0 {
            continue;
        }
        let e = expected_from(shape, rate, dt, unit).max(1e-9);
        sum += (e / m).ln().powi(2);
        n += 1.0;
    }
    if n == 0.0 { f64::INFINITY } else { (sum / n).sqrt() }
}

fn log_error(pattern: &Pattern, pages: f64, rate: f64, points: &[Point], unit: f64) -> f64 {
    log_error_of(&shape(pattern, pages, unit), rate, points, unit)
}

/// The minimum of `f` over `lo..hi`, to within `tol`, by Brent's method
/// (R. P. Brent, "Algorithms for Minimization without Derivatives",
/// 1973, ch. 5; the procedure of Netlib's `fmin`): parabolic steps through
/// the three best points where they can be trusted, golden-section steps
/// where they cannot. On the smooth log errors here it needs about a
/// tenth of the evaluations plain golden-section search does for the
/// same precision.
fn brent(lo: f64, hi: f64, tol: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
    let c = (3.0 - 5f64.sqrt()) / 2.0;
    let eps = f64::EPSILON.sqrt();
    let (mut a, mut b) = (lo, hi);
    let mut x = a + c * (b - a);
    let (mut w, mut v) = (x, x);
    let mut fx = f(x);
    let (mut fw, mut fv) = (fx, fx);
    let (mut d, mut e) = (0.0f64, 0.0f64);
    // Each step at least shrinks the bracket or moves by tol; the cap
    // only guards against an objective that returns NaN.
    for _ in 0..200 {
        let xm = 0.5 * (a + b);
        let tol1 = eps * x.abs() + tol / 3.0;
        let tol2 = 2.0 * tol1;
        if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        let mut parabolic = false;
        if e.abs() > tol1 {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let e_before = e;
            e = d;
            if p.abs() < (0.5 * q * e_before).abs() && p > q * (a - x) && p < q * (b - x) {
                d = p / q;
                let u = x + d;
                if u - a < tol2 || b - u < tol2 {
                    d = tol1.copysign(xm - x);
                }
                parabolic = true;
            }
        }
        if !parabolic {
            e = if x >= xm { a - x } else { b - x };
            d = c * e;
        }
        let u = if d.abs() >= tol1 { x + d } else { x + tol1.copysign(d) };
        let fu = f(u);
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            (v, fv, w, fw, x, fx) = (w, fw, x, fx, u, fu);
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                (v, fv, w, fw) = (w, fw, u, fu);
            } else if fu <= fv || v == x || v == w {
                (v, fv) = (u, fu);
            }
        }
    }
    (x, fx)
}

/// The working set (between the largest measured point and `max_pages`)
/// and rate that fit `points` best for `pattern`.
pub fn fit_pattern(pattern: Pattern, points: &[Point], max_pages: f64, unit: f64) -> Fit {
    let seen = points.iter().map(|p| p.1).fold(1.0, f64::max);
    let lo = seen.max(unit);
    let hi = max_pages.max(lo * 1.0001);
    // The rate a working set implies: searched on a log scale from a
    // touch every 100 s to a billion a second.
    let best_rate = |pages: f64| {
        let sh = shape(&pattern, pages, unit);
        brent((1e-2f64).ln(), (1e9f64).ln(), 1e-6, |lr| log_error_of(&sh, lr.exp(), points, unit))
    };
    let (lp, _) = brent(lo.ln(), hi.ln(), 1e-5, |lp| best_rate(lp.exp()).1);
    let pages = lp.exp();
    let (lr, residual) = best_rate(pages);
    Fit { pattern, pages, rate: lr.exp(), residual }
}

/// Try every family and keep the best. A richer family must cut the
/// residual to under 80% of the simpler one's, and by at least 0.01, to
/// be preferred (more parameters always fit a little better, and below a
/// percent the difference is measurement noise).
pub fn choose(points: &[Point], max_pages: f64, unit: f64) -> Choice {
    let mut candidates = vec![fit_pattern(Pattern::Uniform, points, max_pages, unit)];
    // Hot/cold on a grid of hundredths (so the pattern prints as written):
    // first every 0.05, then every 0.01 around the best.
    let hc =
        |f: i32, p: i32| Pattern::HotCold { hot_fraction: f64::from(f) / 100.0, hot_probability: f64::from(p) / 100.0 };
    let mut hotcold: Option<(Fit, i32, i32)> = None;
    let consider = |f: i32, p: i32, best: &mut Option<(Fit, i32, i32)>| {
        if f <= 0 || p >= 100 || p <= f {
            return;
        }
        let fit = fit_pattern(hc(f, p), points, max_pages, unit);
        if best.as_ref().is_none_or(|b| fit.residual < b.0.residual) {
            *best = Some((fit, f, p));
        }
    };
    for f in (5..=45).step_by(5) {
        for p in (50..=95).step_by(5) {
            consider(f, p, &mut hotcold);
        }
    }
    if let Some((_, f0, p0)) = hotcold.clone() {
        for f in f0 - 4..=f0 + 4 {
            for p in p0 - 4..=p0 + 4 {
                consider(f, p, &mut hotcold);
            }
        }
    }
    let hotcold = hotcold.map(|h| h.0);
    let mut zipf: Option<Fit> = None;
    for si in 1..=12 {
        let fit = fit_pattern(Pattern::Zipf { s: f64::from(si) / 10.0 }, points, max_pages, unit);
        if zipf.as_ref().is_none_or(|z| fit.residual < z.residual) {
            zipf = Some(fit);
        }
    }
    // In order of parameters beyond W and the rate: uniform none, Zipf
    // one (s), hot/cold two (F, P); each must beat the best before it.
    candidates.extend(zipf);
    candidates.extend(hotcold);
    let mut best = candidates[0].clone();
    for c in &candidates[1..] {
        if c.residual < best.residual * 0.8 && best.residual - c.residual > 0.01 {
            best = c.clone();
        }
    }
    let fits_well = best.residual <= 0.1;
    Choice { best, candidates, fits_well }
}

/// The share of touches that write: the w whose curve at rate wλ fits the
/// pages written within each interval.
pub fn write_share(fit: &Fit, written: &[Point], unit: f64) -> Option<f64> {
    if written.iter().all(|p| p.1 <= 0.0) {
        return if written.is_empty() { None } else { Some(0.0) };
    }
    let (lw, _) =
        brent((1e-4f64).ln(), 0.0, 1e-6, |lw| log_error(&fit.pattern, fit.pages, fit.rate * lw.exp(), written, unit));
    Some(lw.exp().min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(pattern: &Pattern, pages: f64, rate: f64, unit: f64) -> Vec<Point> {
        [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0].iter().map(|&dt| (dt, expected(pattern, pages, rate, dt, unit))).collect()
    }

    #[test]
    fn the_uniform_curve_is_the_closed_form() {
        // Uniform over W pages: W (1 − e^(−λΔt/W)); at λΔt = W, 63.2% of W.
        let w = 51_200.0;
        let e = expected(&Pattern::Uniform, w, 5_000.0, w / 5_000.0, 1.0);
        assert!((e / w - (1.0 - (-1f64).exp())).abs() < 1e-12);
        // In 2 MiB units the same touches cover more: 100 units each
        // touched w.p. 1 − e^(−λΔt/100).
        let e2 = expected(&Pattern::Uniform, w, 5_000.0, 0.01, 512.0);
        assert!((e2 - 512.0 * 100.0 * (1.0 - (-50.0f64 / 100.0).exp())).abs() < 1e-6);
    }

    #[test]
    fn a_uniform_curve_gives_back_its_working_set_and_rate() {
        let pts = curve(&Pattern::Uniform, 51_200.0, 5_000.0, 1.0);
        let c = choose(&pts, 131_072.0, 1.0);
        assert!(matches!(c.best.pattern, Pattern::Uniform), "{c:?}");
        assert!((c.best.pages / 51_200.0 - 1.0).abs() < 0.01, "{c:?}");
        assert!((c.best.rate / 5_000.0 - 1.0).abs() < 0.01);
        assert!(c.fits_well);
    }

    #[test]
    fn a_hot_cold_curve_gives_back_its_hot_set() {
        let p = Pattern::HotCold { hot_fraction: 0.2, hot_probability: 0.9 };
        let pts = curve(&p, 51_200.0, 5_000.0, 1.0);
        let c = choose(&pts, 131_072.0, 1.0);
        let Pattern::HotCold { hot_fraction, hot_probability } = c.best.pattern else { panic!("{c:?}") };
        assert!((hot_fraction - 0.2).abs() <= 0.02 && (hot_probability - 0.9).abs() <= 0.02, "{c:?}");
        assert!((c.best.pages / 51_200.0 - 1.0).abs() < 0.05, "{c:?}");
    }

    #[test]
    fn the_write_share_comes_from_the_written_curve() {
        let fit = Fit { pattern: Pattern::Uniform, pages: 51_200.0, rate: 5_000.0, residual: 0.0 };
        let written = curve(&Pattern::Uniform, 51_200.0, 5_000.0 * 0.2, 1.0);
        let w = write_share(&fit, &written, 1.0).expect("a share");
        assert!((w - 0.2).abs() < 0.005, "{w}");
    }

    #[test]
    fn noise_that_no_family_explains_is_said_to_fit_badly() {
        // A curve that rises then falls is no working set.
        let pts = vec![(1.0, 50_000.0), (2.0, 1_000.0), (4.0, 60_000.0), (8.0, 500.0)];
        assert!(!choose(&pts, 131_072.0, 1.0).fits_well);
    }
}
