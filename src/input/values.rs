//! The readers of single values: text and lists of words, sizes, times,
//! rates, fractions, bandwidths, booleans, whole numbers and a word from a
//! fixed set, each failing with a message that says what was expected.

use super::diag::did_you_mean;
use super::node::{Node, Value};
use crate::units::{ByteSize, Fraction, Rate, Span, UnitError};

pub fn unit_msg(e: UnitError) -> String {
    e.to_string()
}

pub fn scalar(n: &Node, expected: &str) -> Result<String, String> {
    n.scalar_text().ok_or_else(|| format!("expected {expected}, found {}", n.kind()))
}

pub fn text(n: &Node) -> Result<String, String> {
    match &n.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Ok(n.scalar_text().unwrap_or_else(|| n.show())),
        _ => Err(format!("expected text, found {}", n.kind())),
    }
}

/// A list of words (`[a, b]`).
pub fn text_list(n: &Node, what: &str) -> Result<Vec<String>, String> {
    match &n.value {
        Value::Seq(items) => items.iter().map(text).collect(),
        _ => Err(format!("expected a list of {what} (`[a, b]`), found {}", n.kind())),
    }
}

pub fn size(n: &Node) -> Result<ByteSize, String> {
    ByteSize::parse(&scalar(n, "a size such as 4G")?).map_err(unit_msg)
}

pub fn span(n: &Node) -> Result<Span, String> {
    Span::parse(&scalar(n, "a time such as 30s")?).map_err(unit_msg)
}

pub fn rate(n: &Node) -> Result<Rate, String> {
    Rate::parse(&scalar(n, "a rate such as 200k/s")?).map_err(unit_msg)
}

pub fn fraction(n: &Node) -> Result<Fraction, String> {
    Fraction::parse(&scalar(n, "a fraction such as 0.3 or 30%")?).map_err(unit_msg)
}

/// `bandwidth: 2G/s` (bytes per second; a bare number is MiB/s).
pub fn bandwidth(n: &Node) -> Result<u64, String> {
    let t = scalar(n, "a bandwidth such as 500M/s")?;
    let body = t.trim().strip_suffix("/s").ok_or_else(|| format!("{t:?} needs a per-second unit, e.g. 500M/s"))?;
    let b = ByteSize::parse(body).map_err(unit_msg)?;
    if b.bytes() == 0 {
        return Err(format!("{t:?}: bandwidth must be above zero"));
    }
    Ok(b.bytes())
}

pub fn boolean(n: &Node) -> Result<bool, String> {
    match &n.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(format!("expected true or false, found {} ({})", n.kind(), n.show())),
    }
}

pub fn int<T: TryFrom<i128>>(n: &Node, what: &str) -> Result<T, String> {
    match &n.value {
        Value::Int(i) if *i < 0 => Err(format!("{i} is negative: expected {what}")),
        Value::Int(i) => T::try_from(*i).map_err(|_| format!("{i} is too large for {what}")),
        Value::Float(f) => Err(format!("{f} is not a whole number: expected {what}")),
        _ => Err(format!("expected a whole number ({what}), found {} ({})", n.kind(), n.show())),
    }
}

pub fn choice<T: Copy>(n: &Node, options: &[(&str, T)]) -> Result<T, String> {
    let s = scalar(n, "a word")?;
    let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
    options.iter().find(|(k, _)| k.eq_ignore_ascii_case(s.trim())).map(|(_, v)| *v).ok_or_else(|| {
        let hint = did_you_mean(&s, &names).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
        format!("{s:?} is not one of {}{hint}", names.join(", "))
    })
}
