//! The pictures and `report.html` that `run` and `sweep` write, opened as
//! a reader would: in headless Chromium (Debian's package; the tests skip
//! with a message where it is missing).
//!
//! Truth: the contract for reports (every plot as SVG and PNG,
//! one self-contained page with no scripts or network, no console errors,
//! every plot shown, a screenshot that is not blank) and PNG's own format
//! (the signature and IHDR of RFC 2083).

use std::path::Path;

use crate::browser::{SKIP_MESSAGE, chromium, open_in_chromium};
use crate::harness::{overcommit, quickstart, scratch};

/// PNG signature and the IHDR's width and height (RFC 2083, 3.1 and 4.1.1).
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// A page that stands alone: no scripts, nothing fetched.
fn self_contained(html: &str) {
    assert!(!html.contains("<script"), "report.html has a script");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "url(http", "@import"] {
        assert!(!html.contains(attr), "report.html reaches out: {attr}");
    }
}

/// Open the page in Chromium and check it as the issue says.
fn check_in_browser(html: &Path, plots: &[&str]) {
    if chromium().is_none() {
        eprintln!("{SKIP_MESSAGE}");
        return;
    }
    let page = open_in_chromium(html).unwrap_or_else(|e| panic!("{}: {e}", html.display()));
    assert!(page.console_errors.is_empty(), "console errors: {:?}", page.console_errors);
    for id in plots {
        let found = page.plots.iter().find(|(name, _, _)| name == id);
        let (_, w, h) = found.unwrap_or_else(|| panic!("plot {id} is not on the page: {:?}", page.plots));
        assert!(*w > 300.0 && *h > 150.0, "plot {id} is shown at {w}×{h}");
    }
    assert_eq!(page.plots.len(), plots.len(), "{:?}", page.plots);
    // A blank page has one or two colours; plots with text, lines and
    // fills have hundreds.
    assert!(page.distinct_colours > 50, "the screenshot has {} colours", page.distinct_colours);
    assert!(page.non_white_share > 0.05, "the screenshot is {:.1}% non-white", 100.0 * page.non_white_share);
}

#[test]
fn a_run_writes_its_plots_and_a_report_that_opens_cleanly() {
    let dir = scratch();
    let out = dir.path().join("run");
    // The whole quickstart: its load grows at 90 s, faults follow, and
    // MoM's balloons inflate from about 150 s.
    overcommit().arg("run").arg(quickstart()).args(["--quiet", "--out"]).arg(&out).assert().success();
    let plots = ["memory", "latency", "faults", "ksm", "balloons", "latency-cdf"];
    for p in plots {
        assert_eq!(png_size(&out.join(format!("{p}.png"))), (900, 540), "{p}.png");
        let svg = std::fs::read_to_string(out.join(format!("{p}.svg"))).expect("svg");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{p}.svg");
    }
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    self_contained(&html);
    for needle in ["What drove the latency", "overcommit ratio", "web-0"] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    check_in_browser(&out.join("report.html"), &plots);
    // The quickstart's mechanisms act within its three minutes: THP backs
    // guest memory (thp: madvise), reclaim swaps once the load grows at
    // 90 s, and MoM inflates balloons. (KSM with the kernel's static
    // defaults does not merge within the run, as the scenario says.)
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    let h = &s["host"];
    assert!(h["vmstat"]["thp_fault_alloc"].as_u64().unwrap() > 0, "THP: {}", h["vmstat"]);
    assert!(h["swap_used_peak_bytes"].as_u64().unwrap() > 0, "swap: {h}");
    assert!(s["guests"].as_array().unwrap().iter().any(|g| g["balloon_peak_bytes"].as_u64().unwrap() > 0), "balloons");
}

#[test]
fn a_sweep_report_shows_density_against_latency() {
    let dir = scratch();
    let out = dir.path().join("sweep");
    overcommit()
        .arg("sweep")
        .arg(quickstart())
        .args(["--vary", "guests.web.count=4..16:4", "--vary", "host.ksm.run=true,false", "--set", "duration=20s"])
        .args(["--slo", "p99<=50us", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    for p in ["density-p99", "density-slowdown"] {
        assert_eq!(png_size(&out.join(format!("{p}.png"))), (900, 540), "{p}.png");
    }
    let svg = std::fs::read_to_string(out.join("density-p99.svg")).expect("svg");
    // The objective is drawn and named, and each curve is in the legend.
    assert!(svg.contains("SLO p99&lt;=50us") || svg.contains("SLO p99<=50us"), "no SLO line label");
    assert!(svg.contains("host.ksm.run=true") && svg.contains("host.ksm.run=false"));
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    self_contained(&html);
    check_in_browser(&out.join("report.html"), &["density-p99", "density-slowdown"]);
}

#[test]
fn plots_need_no_system_fonts() {
    // The text of every plot is drawn from the embedded DejaVu Sans: with
    // fontconfig pointed at an empty configuration and no font path, the
    // PNGs are byte for byte those of a normal run.
    let dir = scratch();
    let empty = dir.path().join("fonts.conf");
    std::fs::write(&empty, "<?xml version=\"1.0\"?>\n<fontconfig></fontconfig>\n").expect("write");
    let run = |out: &Path, bare: bool| {
        let mut cmd = overcommit();
        cmd.arg("run").arg(quickstart()).args(["--set", "duration=5s", "--quiet", "--out"]).arg(out);
        if bare {
            cmd.env("FONTCONFIG_FILE", &empty).env("FONTCONFIG_PATH", dir.path()).env("XDG_DATA_DIRS", dir.path());
        }
        cmd.assert().success();
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run(&a, false);
    run(&b, true);
    for p in ["memory", "latency", "faults", "latency-cdf"] {
        let f = format!("{p}.png");
        assert_eq!(std::fs::read(a.join(&f)).unwrap(), std::fs::read(b.join(&f)).unwrap(), "{f}");
    }
}
