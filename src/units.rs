//! Sizes, time spans, rates and fractions, spelled the way QEMU and the
//! kernel's tools spell them.
//!
//! Memory sizes follow QEMU's `-m` rules (`qemu_strtosz_MiB`): a bare number
//! means MiB, suffixes `B`, `K`, `M`, `G`, `T` (either case) are binary
//! multiples, and a fraction such as `1.5G` is allowed. The long forms that
//! our own output prints (`4 GiB`) are accepted too, so every value the tool
//! prints can be pasted back into a scenario. Time spans need a unit (`20ms`,
//! `30s`, `5m`, `1h`); rates are events per second with decimal `k`/`M`/`G`
//! prefixes (`200k/s`); fractions are `0.3` or `30%`.
//!
//! Each type's `Display` is exact: parsing what it prints gives back the same
//! value. With a precision (`{:.1}`) it prints a rounded, human form instead.

use std::fmt;

/// What went wrong when reading a unit value. The caller adds the field name
/// and the location; the message here names the bad text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value: expected {expected}")]
    Empty { expected: &'static str },
    #[error("{text:?} is negative: {what} cannot be below zero")]
    Negative { text: String, what: &'static str },
    #[error("{text:?} has an unknown unit {suffix:?}: expected {expected}")]
    UnknownSuffix { text: String, suffix: String, expected: &'static str },
    #[error("{text:?} is not a number: expected {expected}")]
    NotANumber { text: String, expected: &'static str },
    #[error("{text:?} is too large (the limit is {limit})")]
    Overflow { text: String, limit: &'static str },
    #[error("{text:?} is out of range: {why}")]
    OutOfRange { text: String, why: &'static str },
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// QEMU's default guest RAM when `-m` is not given (`hw/i386/pc.c`,
/// `mc->default_ram_size = 128 * MiB`).
pub const QEMU_DEFAULT_RAM: ByteSize = ByteSize(128 * MIB);

/// The base page size on x86-64.
pub const PAGE_4K: u64 = 4 * KIB;

/// Split "1.5G" into ("1.5", "G"); the number part is digits, '.', and an
/// optional leading sign so that a negative value is reported as such.
fn split_number(text: &str) -> (&str, &str) {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    (&t[..end], t[end..].trim())
}

/// Parse a non-negative decimal number (no exponent: QEMU takes none either).
fn parse_number(num: &str, text: &str, expected: &'static str, what: &'static str) -> Result<f64, UnitError> {
    if num.starts_with('-') {
        return Err(UnitError::Negative { text: text.trim().to_string(), what });
    }
    let digits = num.strip_prefix('+').unwrap_or(num);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(UnitError::NotANumber { text: text.trim().to_string(), expected });
    }
    digits.parse::<f64>().map_err(|_| UnitError::NotANumber { text: text.trim().to_string(), expected })
}

/// Print `value / unit` exactly with at most three decimals, or `None` when
/// that would lose precision.
fn exact_decimal(value: u128, unit: u128) -> Option<String> {
    if value.is_multiple_of(unit) {
        return Some((value / unit).to_string());
    }
    if !(value * 1000).is_multiple_of(unit) {
        return None;
    }
    let milli = value * 1000 / unit;
    let s = format!("{}.{:03}", milli / 1000, milli % 1000);
    Some(s.trim_end_matches('0').to_string())
}

/// A memory size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    const EXPECTED: &'static str = "a size such as 512 (MiB), 512M, 4G, 1.5G or 1T";

    pub const fn bytes(self) -> u64 {
        self.0
    }
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * MIB)
    }
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * GIB)
    }
    /// Number of whole `page`-sized pages, rounding up (a partial page still
    /// takes a page).
    pub fn pages(self, page: u64) -> u64 {
        self.0.div_ceil(page)
    }

    /// Parse a size the way QEMU's `-m` does: a bare number is MiB.
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        Self::parse_with_default_unit(text, MIB)
    }

    /// Parse a size where a bare number means `default_unit` bytes.
    pub fn parse_with_default_unit(text: &str, default_unit: u64) -> Result<Self, UnitError> {
        if text.trim().is_empty() {
            return Err(UnitError::Empty { expected: Self::EXPECTED });
        }
        let (num, suffix) = split_number(text);
        let value = parse_number(num, text, Self::EXPECTED, "a size")?;
        let unit = match suffix.to_ascii_lowercase().as_str() {
            "" => default_unit,
            "b" => 1,
            "k" | "kib" | "kb" => KIB,
            "m" | "mib" | "mb" => MIB,
            "g" | "gib" | "gb" => GIB,
            "t" | "tib" | "tb" => TIB,
            _ => {
                return Err(UnitError::UnknownSuffix {
                    text: text.trim().to_string(),
                    suffix: suffix.to_string(),
                    expected: "B, K, M, G or T (binary multiples)",
                });
            }
        };
        let _ = value; // checked above; the exact value comes from the digits
        let overflow = || UnitError::Overflow { text: text.trim().to_string(), limit: "16 EiB" };
        let digits = num.strip_prefix('+').unwrap_or(num);
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        // Exact decimal arithmetic: a float would lose the last bytes of a
        // large size and could not round-trip what we print.
        let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| overflow())? };
        let frac_part = &frac_part[..frac_part.len().min(18)];
        let frac: u128 = if frac_part.is_empty() { 0 } else { frac_part.parse().unwrap_or(0) };
        let scale = 10u128.pow(frac_part.len() as u32);
        let bytes = int
            .checked_mul(unit as u128)
            .and_then(|b| b.checked_add((frac * unit as u128 + scale / 2) / scale))
            .ok_or_else(overflow)?;
        u64::try_from(bytes).map(ByteSize).map_err(|_| overflow())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
        if let Some(prec) = f.precision() {
            for (unit, name) in UNITS {
                if self.0 >= unit {
                    let v = self.0 as f64 / unit as f64;
                    return write!(f, "{v:.prec$} {name}");
                }
            }
            return write!(f, "{} B", self.0);
        }
        for (unit, name) in UNITS {
            if self.0 >= unit
                && let Some(s) = exact_decimal(self.0 as u128, unit as u128)
            {
                return write!(f, "{s} {name}");
            }
        }
        write!(f, "{} B", self.0)
    }
}

/// A span of simulated or wall time, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub u64);

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MIN: u64 = 60 * NS_PER_S;
const NS_PER_H: u64 = 60 * NS_PER_MIN;

impl Span {
    const EXPECTED: &'static str = "a time such as 500us, 20ms, 30s, 5m or 1h";

    pub const fn from_secs(s: u64) -> Self {
        Span(s * NS_PER_S)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Span(ms * NS_PER_MS)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }

    pub fn parse(text: &str) -> Result<Self, UnitError> {
        if text.trim().is_empty() {
            return Err(UnitError::Empty { expected: Self::EXPECTED });
        }
        let (num, suffix) = split_number(text);
        let value = parse_number(num, text, Self::EXPECTED, "a time span")?;
        let unit = match suffix {
            "ns" => 1,
            "us" | "µs" | "μs" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" | "sec" => NS_PER_S,
            "m" | "min" => NS_PER_MIN,
            "h" => NS_PER_H,
            "" if value == 0.0 => 1,
            "" => {
                return Err(UnitError::UnknownSuffix {
                    text: text.trim().to_string(),
                    suffix: String::new(),
                    expected: "a unit: ns, us, ms, s, m (minutes) or h",
                });
            }
            _ => {
                return Err(UnitError::UnknownSuffix {
                    text: text.trim().to_string(),
                    suffix: suffix.to_string(),
                    expected: "ns, us, ms, s, m (minutes) or h",
                });
            }
        };
        let ns = value * unit as f64;
        if !ns.is_finite() || ns >= 18_446_744_073_709_551_616.0 {
            return Err(UnitError::Overflow { text: text.trim().to_string(), limit: "about 584 years" });
        }
        Ok(Span(ns.round() as u64))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 5] =
            [(NS_PER_H, "h"), (NS_PER_MIN, "min"), (NS_PER_S, "s"), (NS_PER_MS, "ms"), (NS_PER_US, "us")];
        if let Some(prec) = f.precision() {
            for (unit, name) in UNITS {
                if self.0 >= unit {
                    let v = self.0 as f64 / unit as f64;
                    return write!(f, "{v:.prec$} {name}");
                }
            }
            return write!(f, "{} ns", self.0);
        }
        if self.0 == 0 {
            return f.write_str("0 s");
        }
        for (unit, name) in UNITS {
            if self.0 >= unit
                && let Some(s) = exact_decimal(self.0 as u128, unit as u128)
            {
                return write!(f, "{s} {name}");
            }
        }
        write!(f, "{} ns", self.0)
    }
}

/// Events per second.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(pub f64);

impl Rate {
    const EXPECTED: &'static str = "a rate such as 500/s, 200k/s or 5M/s";

    pub fn per_sec(self) -> f64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, UnitError> {
        if text.trim().is_empty() {
            return Err(UnitError::Empty { expected: Self::EXPECTED });
        }
        let (num, rest) = split_number(text);
        let value = parse_number(num, text, Self::EXPECTED, "a rate")?;
        let (prefix, per) = match rest.split_once('/') {
            Some((p, per)) => (p.trim(), per.trim()),
            None => (rest, "s"),
        };
        let scale = match prefix {
            "" => 1.0,
            "k" | "K" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            _ => {
                return Err(UnitError::UnknownSuffix {
                    text: text.trim().to_string(),
                    suffix: prefix.to_string(),
                    expected: "k, M or G (decimal) before /s",
                });
            }
        };
        let per_sec = match per {
            "s" | "sec" => 1.0,
            "ms" => 1e3,
            "m" | "min" => 1.0 / 60.0,
            "h" => 1.0 / 3600.0,
            _ => {
                return Err(UnitError::UnknownSuffix {
                    text: text.trim().to_string(),
                    suffix: format!("/{per}"),
                    expected: "/s, /ms, /min or /h",
                });
            }
        };
        let r = value * scale * per_sec;
        if !r.is_finite() || r > 1e15 {
            return Err(UnitError::Overflow { text: text.trim().to_string(), limit: "1e15/s" });
        }
        Ok(Rate(r))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let (scaled, prefix) = if v >= 1e9 {
            (v / 1e9, "G")
        } else if v >= 1e6 {
            (v / 1e6, "M")
        } else if v >= 1e3 {
            (v / 1e3, "k")
        } else {
            (v, "")
        };
        match f.precision() {
            Some(p) => write!(f, "{scaled:.p$}{prefix}/s"),
            // `{}` on f64 prints the shortest text that parses back exactly;
            // scaling by a power of ten can leave a tail, so fall back to the
            // plain value when the scaled one does not round-trip.
            None if scaled * scale_of(prefix) == v => write!(f, "{scaled}{prefix}/s"),
            None => write!(f, "{v}/s"),
        }
    }
}

fn scale_of(prefix: &str) -> f64 {
    match prefix {
        "G" => 1e9,
        "M" => 1e6,
        "k" => 1e3,
        _ => 1.0,
    }
}

/// A share between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Fraction(pub f64);

impl Fraction {
    const EXPECTED: &'static str = "a fraction such as 0.3 or 30%";

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(UnitError::Empty { expected: Self::EXPECTED });
        }
        let (num, pct) = match t.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (t, false),
        };
        let (n, rest) = split_number(num);
        if !rest.is_empty() {
            return Err(UnitError::UnknownSuffix {
                text: t.to_string(),
                suffix: rest.to_string(),
                expected: "nothing (0.3) or % (30%)",
            });
        }
        let v = parse_number(n, t, Self::EXPECTED, "a fraction")?;
        let v = if pct { v / 100.0 } else { v };
        if v > 1.0 {
            return Err(UnitError::OutOfRange {
                text: t.to_string(),
                why: "a fraction must be between 0 and 1 (0% and 100%)",
            });
        }
        Ok(Fraction(v))
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = self.0 * 100.0;
        // 0.3 * 100 is 30.000000000000004 in binary floating point: round
        // to nine decimals and keep that form when it parses back exactly.
        let tidy = (pct * 1e9).round() / 1e9;
        match f.precision() {
            Some(p) => write!(f, "{pct:.p$}%"),
            None if tidy / 100.0 == self.0 => write!(f, "{tidy}%"),
            None => write!(f, "{}", self.0),
        }
    }
}

// Machine-readable outputs carry plain numbers: bytes, nanoseconds, events
// per second, and shares between 0 and 1.
impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}
impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}
impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}
impl serde::Serialize for Fraction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: QEMU's qemu_strtosz_MiB (util/cutils.c) treats a bare
    // number as MiB and K/M/G/T as powers of 1024.
    #[test]
    fn size_bare_number_is_mib_like_qemu_m() {
        assert_eq!(ByteSize::parse("512").unwrap(), ByteSize(512 * MIB));
    }

    #[test]
    fn size_suffixes_are_binary_and_case_insensitive() {
        assert_eq!(ByteSize::parse("1B").unwrap(), ByteSize(1));
        assert_eq!(ByteSize::parse("4k").unwrap(), ByteSize(4096));
        assert_eq!(ByteSize::parse("4K").unwrap(), ByteSize(4096));
        assert_eq!(ByteSize::parse("512M").unwrap(), ByteSize(512 * MIB));
        assert_eq!(ByteSize::parse("4g").unwrap(), ByteSize(4 * GIB));
        assert_eq!(ByteSize::parse("1T").unwrap(), ByteSize(TIB));
        assert_eq!(ByteSize::parse("2 GiB").unwrap(), ByteSize(2 * GIB));
    }

    #[test]
    fn size_fractions_allowed() {
        assert_eq!(ByteSize::parse("1.5G").unwrap(), ByteSize(3 * GIB / 2));
        assert_eq!(ByteSize::parse("0.5").unwrap(), ByteSize(MIB / 2));
    }

    #[test]
    fn size_default_is_qemu_128m() {
        assert_eq!(QEMU_DEFAULT_RAM.bytes(), 134_217_728);
    }

    #[test]
    fn size_rejections() {
        assert!(matches!(ByteSize::parse(""), Err(UnitError::Empty { .. })));
        assert!(matches!(ByteSize::parse("   "), Err(UnitError::Empty { .. })));
        assert!(matches!(ByteSize::parse("-4G"), Err(UnitError::Negative { .. })));
        assert!(matches!(ByteSize::parse("4Q"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(ByteSize::parse("G"), Err(UnitError::NotANumber { .. })));
        assert!(matches!(ByteSize::parse("1.2.3G"), Err(UnitError::NotANumber { .. })));
        // 2^64 bytes is 16 EiB = 16777216 TiB: one more TiB than fits.
        assert!(matches!(ByteSize::parse("16777216T"), Err(UnitError::Overflow { .. })));
        assert!(ByteSize::parse("16777215T").is_ok());
    }

    #[test]
    fn size_display_round_trips() {
        for s in ["4 GiB", "1.5 GiB", "128 MiB", "4 KiB", "512 B", "1.125 TiB", "0 B"] {
            let v = ByteSize::parse(s).unwrap();
            assert_eq!(v.to_string(), s);
        }
        for b in [1u64, 4095, 4097, 3 * GIB + 1, u64::MAX] {
            assert_eq!(ByteSize::parse(&ByteSize(b).to_string()).unwrap(), ByteSize(b));
        }
        assert_eq!(format!("{:.1}", ByteSize(3 * GIB + 12345)), "3.0 GiB");
    }

    #[test]
    fn size_pages_round_up() {
        assert_eq!(ByteSize(4097).pages(PAGE_4K), 2);
        assert_eq!(ByteSize::gib(1).pages(2 * MIB), 512);
    }

    #[test]
    fn span_forms() {
        assert_eq!(Span::parse("20ms").unwrap(), Span(20 * NS_PER_MS));
        assert_eq!(Span::parse("30s").unwrap(), Span(30 * NS_PER_S));
        assert_eq!(Span::parse("5m").unwrap(), Span(5 * NS_PER_MIN));
        assert_eq!(Span::parse("1h").unwrap(), Span(NS_PER_H));
        assert_eq!(Span::parse("1.5s").unwrap(), Span(1_500_000_000));
        assert_eq!(Span::parse("250us").unwrap(), Span(250_000));
        assert_eq!(Span::parse("80ns").unwrap(), Span(80));
        assert_eq!(Span::parse("0").unwrap(), Span(0));
    }

    #[test]
    fn span_rejections() {
        assert!(matches!(Span::parse(""), Err(UnitError::Empty { .. })));
        assert!(matches!(Span::parse("-1s"), Err(UnitError::Negative { .. })));
        assert!(matches!(Span::parse("10"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(Span::parse("10y"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(Span::parse("s"), Err(UnitError::NotANumber { .. })));
        assert!(matches!(Span::parse("99999999999h"), Err(UnitError::Overflow { .. })));
    }

    #[test]
    fn span_display_round_trips() {
        for s in ["1.5 s", "20 ms", "5 min", "1 h", "250 us", "80 ns", "0 s", "1.001 s"] {
            let v = Span::parse(s).unwrap();
            assert_eq!(v.to_string(), s, "{s}");
        }
        for n in [1u64, 1_000_000_001, 3_599_999_999_999] {
            assert_eq!(Span::parse(&Span(n).to_string()).unwrap(), Span(n));
        }
    }

    #[test]
    fn rate_forms() {
        assert_eq!(Rate::parse("200k/s").unwrap(), Rate(200_000.0));
        assert_eq!(Rate::parse("5M/s").unwrap(), Rate(5_000_000.0));
        assert_eq!(Rate::parse("2k/s").unwrap(), Rate(2000.0));
        assert_eq!(Rate::parse("100/s").unwrap(), Rate(100.0));
        assert_eq!(Rate::parse("100").unwrap(), Rate(100.0));
        assert_eq!(Rate::parse("60/min").unwrap(), Rate(1.0));
        assert_eq!(Rate::parse("1.5k/s").unwrap(), Rate(1500.0));
    }

    #[test]
    fn rate_rejections() {
        assert!(matches!(Rate::parse(""), Err(UnitError::Empty { .. })));
        assert!(matches!(Rate::parse("-5/s"), Err(UnitError::Negative { .. })));
        assert!(matches!(Rate::parse("5x/s"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(Rate::parse("5k/fortnight"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(Rate::parse("k/s"), Err(UnitError::NotANumber { .. })));
        assert!(matches!(Rate::parse("9999999999G/s"), Err(UnitError::Overflow { .. })));
    }

    #[test]
    fn rate_display_round_trips() {
        for s in ["200k/s", "5M/s", "100/s", "1.5k/s"] {
            assert_eq!(Rate::parse(s).unwrap().to_string(), s);
        }
        let odd = Rate(1234.5678);
        assert_eq!(Rate::parse(&odd.to_string()).unwrap(), odd);
    }

    #[test]
    fn fraction_forms() {
        assert_eq!(Fraction::parse("0.3").unwrap(), Fraction(0.3));
        assert_eq!(Fraction::parse("30%").unwrap(), Fraction(0.3));
        assert_eq!(Fraction::parse("100%").unwrap(), Fraction(1.0));
        assert_eq!(Fraction::parse("0").unwrap(), Fraction(0.0));
    }

    #[test]
    fn fraction_rejections() {
        assert!(matches!(Fraction::parse(""), Err(UnitError::Empty { .. })));
        assert!(matches!(Fraction::parse("-10%"), Err(UnitError::Negative { .. })));
        assert!(matches!(Fraction::parse("150%"), Err(UnitError::OutOfRange { .. })));
        assert!(matches!(Fraction::parse("1.2"), Err(UnitError::OutOfRange { .. })));
        assert!(matches!(Fraction::parse("30 percent"), Err(UnitError::UnknownSuffix { .. })));
        assert!(matches!(Fraction::parse("%"), Err(UnitError::NotANumber { .. })));
    }

    #[test]
    fn fraction_display_round_trips() {
        for s in ["30%", "5%", "100%", "0%", "12.5%"] {
            assert_eq!(Fraction::parse(s).unwrap().to_string(), s);
        }
    }
}
