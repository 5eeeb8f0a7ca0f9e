//! The readers of single values: text and lists of words, sizes, times,
//! rates, fractions, bandwidths, a working set as a size or a share of
//! memory, booleans, whole numbers, a word from a fixed set, huge page
//! sizes and access patterns, each failing with a message that says what
//! was expected.

use crate::scenario::diag::did_you_mean;
use crate::scenario::node::{Node, Value};
use crate::scenario::schema::*;
use crate::units::{ByteSize, Fraction, Rate, Span, UnitError};

fn unit_msg(e: UnitError) -> String {
    e.to_string()
}

pub(super) fn scalar(n: &Node, expected: &str) -> Result<String, String> {
    n.scalar_text().ok_or_else(|| format!("expected {expected}, found {}", n.kind()))
}

pub(super) fn text(n: &Node) -> Result<String, String> {
    match &n.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Ok(n.scalar_text().unwrap_or_else(|| n.show())),
        _ => Err(format!("expected text, found {}", n.kind())),
    }
}

/// A list of words (`[a, b]`).
pub(super) fn text_list(n: &Node, what: &str) -> Result<Vec<String>, String> {
    match &n.value {
        Value::Seq(items) => items.iter().map(text).collect(),
        _ => Err(format!("expected a list of {what} (`[a, b]`), found {}", n.kind())),
    }
}

pub(super) fn size(n: &Node) -> Result<ByteSize, String> {
    ByteSize::parse(&scalar(n, "a size such as 4G")?).map_err(unit_msg)
}

pub(super) fn span(n: &Node) -> Result<Span, String> {
    Span::parse(&scalar(n, "a time such as 30s")?).map_err(unit_msg)
}

pub(super) fn rate(n: &Node) -> Result<Rate, String> {
    Rate::parse(&scalar(n, "a rate such as 200k/s")?).map_err(unit_msg)
}

pub(super) fn fraction(n: &Node) -> Result<Fraction, String> {
    Fraction::parse(&scalar(n, "a fraction such as 0.3 or 30%")?).map_err(unit_msg)
}

/// `bandwidth: 2G/s` (bytes per second; a bare number is MiB/s).
pub(super) fn bandwidth(n: &Node) -> Result<u64, String> {
    let t = scalar(n, "a bandwidth such as 500M/s")?;
    let body = t.trim().strip_suffix("/s").ok_or_else(|| format!("{t:?} needs a per-second unit, e.g. 500M/s"))?;
    let b = ByteSize::parse(body).map_err(unit_msg)?;
    if b.bytes() == 0 {
        return Err(format!("{t:?}: bandwidth must be above zero"));
    }
    Ok(b.bytes())
}

/// A working set as a size (`1500M`) or a share of guest memory (`40%`).
pub(super) fn size_or_share(n: &Node, memory: ByteSize) -> Result<ByteSize, String> {
    let t = scalar(n, "a size such as 1500M or a share of memory such as 40%")?;
    if t.trim().ends_with('%') {
        let f = Fraction::parse(&t).map_err(unit_msg)?;
        return Ok(ByteSize((memory.bytes() as f64 * f.get()).round() as u64));
    }
    ByteSize::parse(&t).map_err(unit_msg)
}

pub(super) fn boolean(n: &Node) -> Result<bool, String> {
    match &n.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(format!("expected true or false, found {} ({})", n.kind(), n.show())),
    }
}

pub(super) fn int<T: TryFrom<i128>>(n: &Node, what: &str) -> Result<T, String> {
    match &n.value {
        Value::Int(i) if *i < 0 => Err(format!("{i} is negative: expected {what}")),
        Value::Int(i) => T::try_from(*i).map_err(|_| format!("{i} is too large for {what}")),
        Value::Float(f) => Err(format!("{f} is not a whole number: expected {what}")),
        _ => Err(format!("expected a whole number ({what}), found {} ({})", n.kind(), n.show())),
    }
}

pub(super) fn choice<T: Copy>(n: &Node, options: &[(&str, T)]) -> Result<T, String> {
    let s = scalar(n, "a word")?;
    let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
    options.iter().find(|(k, _)| k.eq_ignore_ascii_case(s.trim())).map(|(_, v)| *v).ok_or_else(|| {
        let hint = did_you_mean(&s, &names).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
        format!("{s:?} is not one of {}{hint}", names.join(", "))
    })
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
