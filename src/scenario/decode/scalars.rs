//! The scenario's own readers of single values: a working set as a size or
//! a share of memory, huge page sizes and access patterns (the generic ones
//! are `crate::input::values`, re-exported here for the decoder).

use crate::input::diag::did_you_mean;
use crate::input::node::Node;
pub(super) use crate::input::values::*;
use crate::scenario::schema::*;
use crate::units::{ByteSize, Fraction};

/// A working set as a size (`1500M`) or a share of guest memory (`40%`).
pub(super) fn size_or_share(n: &Node, memory: ByteSize) -> Result<ByteSize, String> {
    let t = scalar(n, "a size such as 1500M or a share of memory such as 40%")?;
    if t.trim().ends_with('%') {
        let f = Fraction::parse(&t).map_err(unit_msg)?;
        return Ok(ByteSize((memory.bytes() as f64 * f.get()).round() as u64));
    }
    ByteSize::parse(&t).map_err(unit_msg)
}

pub(super) fn hugepage_size(n: &Node) -> Result<HugePageSize, String> {
    let b = size(n)?;
    HugePageSize::from_bytes(b.bytes()).ok_or_else(|| format!("{b} is not a huge page size: x86-64 has 2M and 1G"))
}

/// `uniform`, `zipf(S)` or `hotcold(HOT_FRACTION, HOT_PROBABILITY)`.
pub fn pattern(n: &Node) -> Result<Pattern, String> {
    let t = scalar(n, "a pattern: uniform, zipf(S) or hotcold(F, P)")?;
    parse_pattern(&t)
}

pub fn parse_pattern(t: &str) -> Result<Pattern, String> {
    let s = t.trim();
    let lower = s.to_ascii_lowercase();
    let (head, args) = match lower.split_once('(') {
        Some((h, rest)) => {
            let Some(inner) = rest.strip_suffix(')') else {
                return Err(format!(
                    "{s:?} is missing its closing parenthesis (inside a `{{ ... }}` mapping a comma ends the value: \
write it in quotes, e.g. pattern: \"hotcold(0.2, 0.9)\")"
                ));
            };
            (h.trim().to_string(), inner.split(',').map(|a| a.trim().to_string()).collect::<Vec<_>>())
        }
        None => (lower.clone(), Vec::new()),
    };
    let nums = |what: &str, want: usize| -> Result<Vec<f64>, String> {
        if args.len() != want {
            return Err(format!("{s:?}: {what}"));
        }
        args.iter()
            .map(|a| {
                if let Some(p) = a.strip_suffix('%') {
                    p.trim().parse::<f64>().map(|v| v / 100.0)
                } else {
                    a.parse::<f64>()
                }
                .map_err(|_| format!("{s:?}: {a:?} is not a number"))
            })
            .collect()
    };
    match head.as_str() {
        "uniform" if args.is_empty() => Ok(Pattern::Uniform),
        "zipf" => {
            let v = nums("zipf takes one exponent, e.g. zipf(0.9)", 1)?;
            if !(v[0] > 0.0 && v[0] <= 10.0) {
                return Err(format!("{s:?}: the Zipf exponent must be above 0 and at most 10"));
            }
            Ok(Pattern::Zipf { s: v[0] })
        }
        "hotcold" => {
            let v = nums(
                "hotcold takes the hot share of pages and the share of touches that go to it, e.g. hotcold(0.2, 0.8)",
                2,
            )?;
            if !(v[0] > 0.0 && v[0] < 1.0 && (0.0..=1.0).contains(&v[1])) {
                return Err(format!(
                    "{s:?}: the hot fraction must be between 0 and 1 (exclusive), the probability between 0 and 1"
                ));
            }
            Ok(Pattern::HotCold { hot_fraction: v[0], hot_probability: v[1] })
        }
        _ => {
            let hint = did_you_mean(&head, &["uniform", "zipf", "hotcold"])
                .map(|m| format!(" (did you mean `{m}`?)"))
                .unwrap_or_default();
            Err(format!("unknown pattern {s:?}{hint}: expected uniform, zipf(S) or hotcold(F, P)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse() {
        assert_eq!(parse_pattern("uniform").unwrap(), Pattern::Uniform);
        assert_eq!(parse_pattern("zipf(0.9)").unwrap(), Pattern::Zipf { s: 0.9 });
        assert_eq!(
            parse_pattern("hotcold(20%, 0.8)").unwrap(),
            Pattern::HotCold { hot_fraction: 0.2, hot_probability: 0.8 }
        );
        assert!(parse_pattern("zipf").is_err());
        assert!(parse_pattern("zipf(0)").is_err());
        assert!(parse_pattern("zipf(0.9").is_err());
        assert!(parse_pattern("hotcold(1.5, 0.5)").is_err());
        assert!(parse_pattern("unifrom").unwrap_err().contains("did you mean `uniform`"));
    }
}
