//! `overcommit profile` against the three memwork guests of
//! [`crate::work_guests`], whose workloads are known: it must recover each
//! one's working set (W within 10%), pattern family (B's hot/cold split
//! within 0.05), write share (within 5 points), and, against a census of
//! every present page read right after, the zero share (within 2 points)
//! and the share alike in another guest (within 3 points).

use serde_json::Value;

use crate::memwork::Pattern;
use crate::work_guests::{GuestCensus, WorkGuests};

/// Run `overcommit profile` on the three guests as a user would.
pub fn profile(g: &WorkGuests) -> Value {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let out = dir.path().join("profile.json");
    let names: Vec<&str> = g.guests.iter().map(|w| w.name()).collect();
    let run = assert_cmd::Command::cargo_bin("overcommit")
        .expect("the overcommit binary")
        .arg("profile")
        .arg("--libvirt")
        .args(&names)
        .args(["--duration", "40s", "--intervals", "0.5s,1s,2s,5s,10s,20s", "--sample", "1/8", "--out"])
        .arg(&out)
        .output()
        .expect("overcommit runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "profile failed:\n{stderr}");
    eprintln!("profile: {}", stderr.trim());
    serde_json::from_slice(&std::fs::read(&out).expect("profile.json")).expect("JSON")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Compare the profile with memwork's parameters and the census.
pub fn check(g: &WorkGuests, r: &Value, census: &[GuestCensus]) {
    eprintln!("profile mechanism: {} / {}; cost {}", r["mechanism"], r["writes"], r["cost"]);
    for (w, c) in g.guests.iter().zip(census) {
        let p = r["guests"].as_array().unwrap().iter().find(|p| p["name"] == w.name()).expect("profiled");
        let fit = &p["fit"];
        let pages = num(&fit["working_set_bytes"]) / 4096.0;
        let truth_pages = w.params.layout().pages as f64;
        let zero_truth = c.zero as f64 / c.present as f64;
        let shared_truth = c.shared_anywhere as f64 / c.present as f64;
        let content = &p["content"];
        eprintln!(
            "{}: fitted {} over {:.0} pages (memwork's W {truth_pages}), rate {:.0}/s (memwork {}), write {} ({}), \
             residual {}; unit {} pages; WSS {}; zero {:.3} (census {zero_truth:.3}), shared {:.3} (census {shared_truth:.3})",
            w.name(),
            fit["pattern"],
            pages,
            num(&fit["touch_rate"]),
            w.params.rate,
            fit["write"],
            w.params.write,
            fit["residual"],
            p["unit_pages"],
            p["wss"],
            num(&content["zero"]["share"]),
            num(&content["shared"]["share"]),
        );
        // W: memwork's pages (the guest kernel's few busy pages besides).
        assert!(
            (pages / truth_pages - 1.0).abs() <= 0.10,
            "{}: working set {pages} pages, memwork's {truth_pages}",
            w.name()
        );
        let pattern = fit["pattern"].as_str().unwrap();
        match w.params.pattern {
            Pattern::Uniform => assert_eq!(pattern, "uniform", "{}", w.name()),
            Pattern::HotCold { hot_share: hot_fraction, hot_prob } => {
                let (f, p) = pattern
                    .strip_prefix("hotcold(")
                    .and_then(|x| x.strip_suffix(')'))
                    .and_then(|x| x.split_once(','))
                    .map(|(f, p)| (f.trim().parse::<f64>().unwrap(), p.trim().parse::<f64>().unwrap()))
                    .unwrap_or_else(|| panic!("{}: hot/cold, the fit says {pattern}", w.name()));
                assert!(
                    (f - hot_fraction).abs() <= 0.05 && (p - hot_prob).abs() <= 0.05,
                    "{}: hotcold({f}, {p})",
                    w.name()
                );
            }
        }
        let write = num(&fit["write"]);
        assert!((write - w.params.write).abs() <= 0.05, "{}: write {write}, memwork's {}", w.name(), w.params.write);
        let zero = num(&content["zero"]["share"]);
        assert!((zero - zero_truth).abs() <= 0.02, "{}: zero {zero}, census {zero_truth}", w.name());
        let shared = num(&content["shared"]["share"]);
        assert!((shared - shared_truth).abs() <= 0.03, "{}: shared {shared}, census {shared_truth}", w.name());
    }
}
