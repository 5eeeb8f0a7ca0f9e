//! Service-level objectives: `p99<=50us`, `slowdown<=1.05`,
//! `major_faults_per_s<=100`, `oom_kills==0`, `ksmd_cpu<=25%`. Per-guest
//! objectives hold for every guest that is still running; host objectives
//! hold for the host.

use serde::Serialize;

use crate::units::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Latency percentiles and the mean of one guest's touches.
    Mean,
    P50,
    P95,
    P99,
    P999,
    Slowdown,
    MajorFaultsPerS,
    FaultRatio,
    OomKills,
    /// ksmd's CPU, as a share of one core.
    KsmdCpu,
}

impl Metric {
    pub const ALL: [(&'static str, Metric); 10] = [
        ("mean", Metric::Mean),
        ("p50", Metric::P50),
        ("p95", Metric::P95),
        ("p99", Metric::P99),
        ("p999", Metric::P999),
        ("slowdown", Metric::Slowdown),
        ("major_faults_per_s", Metric::MajorFaultsPerS),
        ("fault_ratio", Metric::FaultRatio),
        ("oom_kills", Metric::OomKills),
        ("ksmd_cpu", Metric::KsmdCpu),
    ];

    pub fn name(self) -> &'static str {
        Metric::ALL.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// Latency metrics take a time unit and are kept in nanoseconds.
    pub fn is_latency(self) -> bool {
        matches!(self, Metric::Mean | Metric::P50 | Metric::P95 | Metric::P99 | Metric::P999)
    }

    /// Whether the metric is the host's (one value per run) or each guest's.
    pub fn is_host(self) -> bool {
        matches!(self, Metric::OomKills | Metric::KsmdCpu)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Le => value <= bound,
            Op::Lt => value < bound,
            Op::Ge => value >= bound,
            Op::Gt => value > bound,
            Op::Eq => value == bound,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
        }
    }
}

/// One objective. `bound` is in the metric's base unit: nanoseconds for
/// latencies, a share (0.25) for ksmd's CPU, per second for fault rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    pub metric: Metric,
    pub op: Op,
    pub bound: f64,
    /// As the user wrote it.
    pub text: String,
}

impl Slo {
    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.bound)
    }
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Slo {
    type Err = String;
    fn from_str(s: &str) -> Result<Slo, String> {
        let text: String = s.split_whitespace().collect();
        let at = text
            .find(['<', '>', '='])
            .ok_or_else(|| format!("{s:?} is not METRIC OP VALUE (e.g. p99<=50us, slowdown<=1.05, oom_kills==0)"))?;
        let (name, rest) = text.split_at(at);
        let (op, value) = [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(sym, op)| rest.strip_prefix(sym).map(|v| (*op, v)))
            .ok_or_else(|| format!("{s:?}: the operator must be one of <=, <, >=, >, =="))?;
        let metric = Metric::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            format!("{s:?}: unknown metric {name:?}; known: {}", names.join(", "))
        })?;
        let bound = if metric.is_latency() {
            let span = Span::parse(value)
                .map_err(|e| format!("{s:?}: {name} is a latency and needs a time unit (e.g. 50us, 1ms): {e}"))?;
            span.nanos() as f64
        } else if metric == Metric::KsmdCpu {
            match value.strip_suffix('%') {
                Some(p) => p.parse::<f64>().map(|v| v / 100.0),
                None => value.parse::<f64>(),
            }
            .map_err(|_| format!("{s:?}: ksmd_cpu is a share of one core, e.g. 25% or 0.25"))?
        } else {
            value
                .strip_suffix("/s")
                .unwrap_or(value)
                .parse::<f64>()
                .map_err(|_| format!("{s:?}: {value:?} is not a number"))?
        };
        if !bound.is_finite() || bound < 0.0 {
            return Err(format!("{s:?}: the bound must be a finite number of 0 or more"));
        }
        Ok(Slo { metric, op, bound, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Units as `Span` reads them (QEMU-style suffixes, see units.rs).
    #[test]
    fn reads_the_forms_the_planner_documents() {
        let s: Slo = "p99<=50us".parse().unwrap();
        assert_eq!((s.metric, s.op, s.bound), (Metric::P99, Op::Le, 50_000.0));
        let s: Slo = "p999 <= 1ms".parse().unwrap();
        assert_eq!((s.metric, s.bound, s.text.as_str()), (Metric::P999, 1e6, "p999<=1ms"));
        let s: Slo = "slowdown<=1.05".parse().unwrap();
        assert_eq!((s.metric, s.bound), (Metric::Slowdown, 1.05));
        let s: Slo = "ksmd_cpu<=25%".parse().unwrap();
        assert_eq!((s.metric, s.bound), (Metric::KsmdCpu, 0.25));
        let s: Slo = "oom_kills==0".parse().unwrap();
        assert!(s.holds(0.0) && !s.holds(1.0));
        let s: Slo = "major_faults_per_s<=100/s".parse().unwrap();
        assert_eq!(s.bound, 100.0);
    }

    #[test]
    fn bad_objectives_say_why() {
        for (text, needle) in [
            ("p99", "METRIC OP VALUE"),
            ("p98<=5us", "unknown metric"),
            ("p99<=50", "time unit"),
            ("slowdown<=fast", "not a number"),
            ("p99=>5us", "operator"),
        ] {
            let e = text.parse::<Slo>().unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
