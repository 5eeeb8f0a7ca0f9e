//! libvirt's sizes as written: a number and a unit (`virScaleInteger`'s
//! units, KiB by default), read into KiB as `virDomainParseMemory` reads
//! them, within the limits libvirt keeps to; nodesets (`0,2-3,^1`); and
//! KiB counts as byte sizes.

use std::collections::BTreeSet;

use crate::units::ByteSize;

/// libvirt keeps memory sizes in KiB.
pub(super) const KIB: u64 = 1024;

/// `virMemoryMaxValue(false)` on a 64-bit host: sizes must stay below
/// `LLONG_MAX` bytes.
pub(super) const MEMORY_MAX_BYTES: u64 = i64::MAX as u64;

/// `VIR_DOMAIN_MEMORY_PARAM_UNLIMITED`, in KiB: a memtune limit at or
/// above it means "no limit".
pub(super) const MEMORY_PARAM_UNLIMITED_KIB: u64 = (1 << 53) - 1;

/// `VIR_DOMAIN_CPUMASK_LEN`: nodesets name nodes below this.
const NODESET_LEN: u32 = 1024;

pub(super) fn round_up(kib: u64, align: u64) -> Option<u64> {
    kib.div_ceil(align).checked_mul(align)
}

pub(super) fn kib_size(kib: u64) -> ByteSize {
    ByteSize(kib.saturating_mul(KIB))
}

pub(super) fn show_kib(kib: u64) -> String {
    kib_size(kib).to_string()
}

/// Why a size was refused; the caller adds the place.
pub(super) enum SizeError {
    NotANumber,
    Negative,
    UnknownUnit,
    TooLarge,
}

/// `virStrToLong_ullp` in base 10: leading white space and a `+` are taken,
/// a `-` anywhere, anything after the digits, or no digits are not.
pub(super) fn parse_ull(text: &str) -> Result<u64, SizeError> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::NotANumber);
    }
    if negative {
        return Err(SizeError::Negative);
    }
    digits.parse::<u64>().map_err(|_| SizeError::TooLarge)
}

/// `virScaleInteger`'s units: `b`/`byte`/`bytes`; `k`, `m`, `g`, `t`, `p`,
/// `e` alone or followed by `iB` for powers of 1024; followed by `B` for
/// powers of 1000; any case. `None` for an unknown unit. An empty unit is
/// the default.
fn unit_scale(unit: &str, default: u64) -> Option<u64> {
    if unit.is_empty() {
        return Some(default);
    }
    let lower = unit.to_ascii_lowercase();
    if matches!(lower.as_str(), "b" | "byte" | "bytes") {
        return Some(1);
    }
    let bytes = lower.as_bytes();
    let rest = &bytes[1..];
    let base: u64 = if rest.is_empty() || rest == b"ib" {
        1024
    } else if rest == b"b" {
        1000
    } else {
        return None;
    };
    let power = match bytes[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        b'e' => 6,
        _ => return None,
    };
    Some(base.pow(power))
}

/// `virDomainParseScaledValue` followed by `virDomainParseMemory`'s
/// rounding: the size in KiB, rounded up. `limit` is the largest byte
/// count `virScaleInteger` lets through.
pub(super) fn scaled_kib(text: &str, unit: &str, limit: u64) -> Result<u64, SizeError> {
    let value = parse_ull(text)?;
    let scale = unit_scale(unit, KIB).ok_or(SizeError::UnknownUnit)?;
    if value > limit / scale {
        return Err(SizeError::TooLarge);
    }
    Ok((value * scale).div_ceil(KIB))
}

/// A size as `virDomainParseMemory` takes it, in KiB.
pub(super) fn memory_kib(text: &str, unit: &str) -> Result<u64, SizeError> {
    let kib = scaled_kib(text, unit, MEMORY_MAX_BYTES)?;
    if kib >= MEMORY_MAX_BYTES.div_ceil(KIB) {
        return Err(SizeError::TooLarge);
    }
    Ok(kib)
}

/// `virBitmapParse`: `0,2-3`, `^1` removes a node already listed.
pub(super) fn parse_nodeset(text: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in text.split(',') {
        let part = part.trim();
        let number = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n < NODESET_LEN);
        if let Some(rest) = part.strip_prefix('^') {
            set.remove(&number(rest)?);
        } else if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return None;
            }
            set.extend(a..=b);
        } else {
            set.insert(number(part)?);
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, MIB, read};
    use super::*;

    /// formatdomain.rst, "Memory Allocation", and virScaleInteger: every
    /// unit libvirt names, in the cases it takes.
    #[test]
    fn units_as_libvirt_scales_them() {
        let cases: &[(&str, u64)] = &[
            ("", 1024),
            ("b", 1),
            ("B", 1),
            ("bytes", 1),
            ("byte", 1),
            ("KB", 1000),
            ("kB", 1000),
            ("k", 1024),
            ("K", 1024),
            ("KiB", 1024),
            ("kib", 1024),
            ("MB", 1_000_000),
            ("M", MIB),
            ("MiB", MIB),
            ("GB", 1_000_000_000),
            ("G", GIB),
            ("GiB", GIB),
            ("TB", 1_000_000_000_000),
            ("T", 1 << 40),
            ("TiB", 1 << 40),
            ("PB", 1_000_000_000_000_000),
            ("P", 1 << 50),
            ("PiB", 1 << 50),
            ("EB", 1_000_000_000_000_000_000),
            ("E", 1 << 60),
            ("EiB", 1 << 60),
        ];
        for &(unit, scale) in cases {
            assert_eq!(unit_scale(unit, KIB), Some(scale), "unit {unit:?}");
        }
        for bad in ["Ki", "KiBs", "x", "kbit", "iB", "MBB", "µ", "Q", "bits"] {
            assert_eq!(unit_scale(bad, KIB), None, "unit {bad:?}");
        }
    }

    /// Sizes are KiB inside libvirt: a byte count rounds up to whole KiB.
    #[test]
    fn sizes_round_up_to_kib() {
        assert!(matches!(memory_kib("1", "b"), Ok(1)));
        assert!(matches!(memory_kib("1025", "bytes"), Ok(2)));
        // 1 MB = 1,000,000 bytes = 976.5625 KiB -> 977 KiB.
        assert!(matches!(memory_kib("1", "MB"), Ok(977)));
        assert!(matches!(memory_kib(" 42", ""), Ok(42)));
        assert!(matches!(memory_kib("+42", "KiB"), Ok(42)));
        // 7 EiB fits below 2^63 bytes; 8 EiB does not.
        assert!(matches!(memory_kib("7", "EiB"), Ok(k) if k == 7 << 50));
        assert!(matches!(memory_kib("8", "EiB"), Err(SizeError::TooLarge)));
        assert!(matches!(memory_kib("99999999999999999999", ""), Err(SizeError::TooLarge)));
        assert!(matches!(memory_kib("-1", ""), Err(SizeError::Negative)));
        assert!(matches!(memory_kib("4G", ""), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("1.5", "GiB"), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("0x10", ""), Err(SizeError::NotANumber)));
        // virStrToLong_ullp: trailing characters, even spaces, are refused.
        assert!(matches!(memory_kib("1024 ", ""), Err(SizeError::NotANumber)));
        assert!(matches!(memory_kib("1", "parsecs"), Err(SizeError::UnknownUnit)));
    }

    #[test]
    fn memory_in_every_unit_form() {
        let d = read("<memory unit='GiB'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory unit='G'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory>4194304</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        let d = read("<memory unit='bytes'>4294967296</memory>");
        assert_eq!(d.memory.boot_bytes(), 4 * GIB);
        // 4 GB = 4e9 bytes = 3906250 KiB, rounded up to 3815 MiB as
        // qemuDomainAlignMemorySizes does.
        let d = read("<memory unit='GB'>4</memory>");
        assert_eq!(d.memory.boot_bytes(), 3815 * MIB);
        // memtune limits are not aligned: 1 MB is 977 KiB.
        let d = read("<memory unit='GiB'>1</memory><memtune><hard_limit unit='MB'>1</hard_limit></memtune>");
        assert_eq!(d.memtune.hard_limit, Some(ByteSize(977 * 1024)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300, failure_persistence: None, ..proptest::prelude::ProptestConfig::default()
        })]


        #[test]
        fn any_size_text_never_panics(text in "\\PC{0,24}", unit in "\\PC{0,6}") {
            let _ = memory_kib(&text, &unit);
            let _ = parse_nodeset(&text);
        }
    }
}
