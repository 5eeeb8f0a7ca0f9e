//! What a sweep varies: `PATH=SPEC`, where SPEC is a list (`a,b,c`) or a
//! range (`4..64:4`, `32G..128G:32G`, `0.1..0.5:0.1`). Values stay scenario
//! text: each run applies them as `--set PATH=VALUE` overrides, so they are
//! checked by the same decoder, with the same messages, as the file itself.

use serde::Serialize;

/// The most values one `--vary` may produce: a typo such as `1..1000000`
/// should be an error, not a sweep that never ends.
pub const MAX_VALUES: usize = 10_000;

/// One varied path and its values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vary {
    pub path: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for Vary {
    type Err = String;
    /// `PATH=SPEC`, as given to `--vary`.
    fn from_str(arg: &str) -> Result<Vary, String> {
        let (path, spec) = arg.split_once('=').ok_or_else(|| {
            format!("{arg:?} is not PATH=SPEC (e.g. guests.web.count=2..16:2 or host.ksm.run=true,false)")
        })?;
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("{arg:?} has an empty PATH"));
        }
        let values = parse_spec(spec).map_err(|e| format!("{path}: {e}"))?;
        Ok(Vary { path: path.to_string(), values })
    }
}

/// A list `a,b,c` (commas inside brackets, as in `hotcold(0.2,0.8)`, do not
/// split) or a range `START..END[:STEP]` whose END is included when a step
/// lands on it. A range's bounds may carry a unit (`32G..128G:32G`,
/// `10s..60s:10s`); START and END must carry the same one, and STEP the same
/// or none.
pub fn parse_spec(spec: &str) -> Result<Vec<String>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("no values: give a list (a,b,c) or a range (4..64:4)".into());
    }
    let items = split_top(spec);
    let values = if items.len() == 1 && top_level_range(spec) {
        range(spec)?
    } else {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                return Err(format!("{spec:?} has an empty value in its list"));
            }
            out.push(item.to_string());
        }
        out
    };
    if values.len() > MAX_VALUES {
        return Err(format!(
            "{spec:?} gives {} values, more than the {MAX_VALUES} a sweep takes per path",
            values.len()
        ));
    }
    Ok(values)
}

/// Split at commas outside brackets.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn top_level_range(s: &str) -> bool {
    !s.contains(['(', '[', '{']) && s.contains("..")
}

/// A decimal number and the unit after it.
struct Bound<'a> {
    /// The value times 10^decimals.
    scaled: i128,
    decimals: u32,
    unit: &'a str,
}

fn bound(s: &str) -> Result<Bound<'_>, String> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    let (num, unit) = s.split_at(end);
    let bad = || format!("{s:?} is not a number with an optional unit (e.g. 4, 0.5, 32G, 10s)");
    let (neg, digits) = match num.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if int.len() + frac.len() > 30 {
        return Err(format!("{s:?} has too many digits"));
    }
    let joined: i128 = format!("{int}{frac}").parse().map_err(|_| bad())?;
    Ok(Bound { scaled: if neg { -joined } else { joined }, decimals: frac.len() as u32, unit: unit.trim() })
}

fn range(spec: &str) -> Result<Vec<String>, String> {
    let (lo, rest) = spec.split_once("..").ok_or_else(|| format!("{spec:?} is not START..END[:STEP]"))?;
    let (hi, step) = match rest.split_once(':') {
        Some((hi, step)) => (hi, Some(step)),
        None => (rest, None),
    };
    let (lo, hi) = (bound(lo)?, bound(hi)?);
    let step = match step {
        Some(s) => bound(s)?,
        None => Bound { scaled: 1, decimals: 0, unit: lo.unit },
    };
    if lo.unit != hi.unit {
        return Err(format!("{spec:?}: START and END have different units ({:?} and {:?})", lo.unit, hi.unit));
    }
    if !step.unit.is_empty() && step.unit != lo.unit {
        return Err(format!("{spec:?}: STEP's unit {:?} is not the bounds' {:?}", step.unit, lo.unit));
    }
    let d = lo.decimals.max(hi.decimals).max(step.decimals);
    let at = |b: &Bound| b.scaled * 10i128.pow(d - b.decimals);
    let (a, b, s) = (at(&lo), at(&hi), at(&step));
    if s <= 0 {
        return Err(format!("{spec:?}: STEP must be above 0"));
    }
    if b < a {
        return Err(format!("{spec:?}: END is below START"));
    }
    let count = (b - a) / s + 1;
    if count > MAX_VALUES as i128 {
        return Err(format!("{spec:?} gives {count} values, more than the {MAX_VALUES} a sweep takes per path"));
    }
    Ok((0..count).map(|i| format!("{}{}", decimal(a + i * s, d), lo.unit)).collect())
}

/// `v / 10^d` written with exactly `d` decimals.
fn decimal(v: i128, d: u32) -> String {
    if d == 0 {
        return v.to_string();
    }
    let p = 10i128.pow(d);
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:0width$}", v.abs() / p, v.abs() % p, width = d as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        parse_spec(s).unwrap()
    }

    // Expected values are the arithmetic sequences written out by hand.
    #[test]
    fn ranges_include_their_end_when_a_step_lands_on_it() {
        assert_eq!(v("2..16:2"), ["2", "4", "6", "8", "10", "12", "14", "16"]);
        assert_eq!(v("4..10:4"), ["4", "8"]);
        assert_eq!(v("1..3"), ["1", "2", "3"]);
        assert_eq!(v("5..5"), ["5"]);
    }

    #[test]
    fn ranges_keep_units_and_decimals_exact() {
        assert_eq!(v("32G..128G:32G"), ["32G", "64G", "96G", "128G"]);
        assert_eq!(v("10s..30s:10s"), ["10s", "20s", "30s"]);
        // 0.1 + 0.1 + 0.1 is 0.30000000000000004 in binary floating point;
        // the range is decimal.
        assert_eq!(v("0.1..0.5:0.1"), ["0.1", "0.2", "0.3", "0.4", "0.5"]);
        assert_eq!(v("0.5..2:0.5"), ["0.5", "1.0", "1.5", "2.0"]);
    }

    #[test]
    fn lists_split_at_top_level_commas_only() {
        assert_eq!(v("true,false"), ["true", "false"]);
        assert_eq!(v("nvme, ssd ,hdd"), ["nvme", "ssd", "hdd"]);
        assert_eq!(v("uniform,hotcold(0.2,0.8),zipf(0.9)"), ["uniform", "hotcold(0.2,0.8)", "zipf(0.9)"]);
        assert_eq!(v("1.5G"), ["1.5G"]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, needle) in [
            ("", "no values"),
            ("1..10:0", "STEP must be above 0"),
            ("10..1", "END is below START"),
            ("1G..4M:1G", "different units"),
            ("1G..4G:1s", "STEP's unit"),
            ("a..b", "not a number"),
            ("1..1000000", "more than"),
            ("a,,b", "empty value"),
        ] {
            let e = parse_spec(spec).unwrap_err();
            assert!(e.contains(needle), "{spec:?}: {e}");
        }
        let e = "guests.web.count".parse::<Vary>().unwrap_err();
        assert!(e.contains("PATH=SPEC"), "{e}");
    }
}
