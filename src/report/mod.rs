//! Everything that turns results into something a person reads: tables,
//! JSON, CSV, plots (SVG and PNG) and self-contained HTML reports, for
//! runs, sweeps and plans.

pub mod check;
pub mod fleet;
pub mod html;
pub mod plan;
pub mod plot;
pub mod run;
pub mod run_page;
pub mod sweep;

/// Bytes as a person reads them: `512 MiB`, `7.2 GiB`, `1.5 TiB`.
pub fn bytes_text(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    // Binary multiples (IEC 80000-13), as `free -h` shows them.
    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(super::bytes_text(0), "0 B");
        assert_eq!(super::bytes_text(512 << 20), "512 MiB");
        assert_eq!(super::bytes_text(2086844 << 10), "2 GiB");
        assert_eq!(super::bytes_text(7197016 << 10), "6.9 GiB");
        assert_eq!(super::bytes_text(3 << 40), "3 TiB");
    }
}
