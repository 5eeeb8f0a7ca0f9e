//! ksmd's CPU per scanned page, measured on this host.

#[cfg(target_os = "linux")]
#[test]
fn ksmd_cost_is_measured_and_every_knob_put_back() {
    use std::path::Path;
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new("/sys/kernel/mm/ksm");
    if !dir.join("run").exists() {
        eprintln!("skipped: this kernel has no KSM ({} is missing)", dir.display());
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: setting KSM's knobs needs root");
        return;
    }
    let knobs = ["run", "pages_to_scan", "sleep_millisecs", "advisor_mode", "smart_scan"];
    let read = || -> Vec<Option<String>> { knobs.iter().map(|k| std::fs::read_to_string(dir.join(k)).ok()).collect() };
    let before = read();
    // A shared machine's CPU can be slow for a moment (a CI run measured
    // 10 us a page in one phase and 6 us in the next): the pace is
    // measured again, up to three times, until the figures of one
    // measurement predict its own round.
    for attempt in 1..=3 {
        let figure = overcommit::calibrate::ksm::measure(256 << 20, 3, std::time::Duration::from_millis(300));
        // The knobs are back as they were, whatever the outcome.
        assert_eq!(read(), before, "KSM knobs restored");
        let f = figure.expect("ksmd measured");
        match check(&f) {
            Ok(()) => return,
            Err(e) if attempt < 3 => eprintln!("attempt {attempt}: {e}; measuring again"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(target_os = "linux")]
fn ensure(ok: bool, what: &str, f: &overcommit::calibrate::ksm::KsmFigure) -> Result<(), String> {
    if ok { Ok(()) } else { Err(format!("{what}: {f:?}")) }
}

#[cfg(target_os = "linux")]
fn check(f: &overcommit::calibrate::ksm::KsmFigure) -> Result<(), String> {
    // ksmd checksums a 4 KiB page (XXH64 reaches about 12 GB/s, so 0.3 us)
    // and walks two trees: it cannot take less than 0.2 us a page; and the
    // 5.7 us measured on the development machine (a virtual one) is far
    // below 200 us, which would mean ksmd did not scan what it counted.
    // Each bound is an error, not a panic: a figure a slow moment upset
    // is measured again, as the pace below is.
    ensure((200.0..200_000.0).contains(&f.median), "median out of 0.2-200 us", f)?;
    ensure(f.min <= f.median && f.median <= f.max, "median outside min..max", f)?;
    ensure(f.pages_scanned > 0, "no page scanned", f)?;
    // A page seen for the first time is only checksummed (and given its
    // rmap item): cmp_and_merge_page searches no tree for it, so it costs
    // ksmd less than a page of the steady state, and at least the
    // checksum (0.3 us, as above). Measured here: 0.9-1.0 us, against
    // 3.6-5.7 us for a page searched.
    ensure((200.0..f.median).contains(&f.checksum_ns), "a first look not between 0.2 us and the median", f)?;
    // A page smart scan skips costs ksmd the walk to it and its rmap
    // item, no checksum and no tree: less than a checksummed page, and
    // more than nothing. Measured here: 0.18 us (schedstat over full scans
    // that skipped all 131 072 pages of four processes).
    if let Some(s) = f.skipped_ns {
        ensure((10.0..f.checksum_ns).contains(&s), "a skipped page not between 10 ns and a first look", f)?;
    }
    // ksmd's pace: measured at 100 and 1000 pages per 20 ms, the figures
    // must predict a round at 1000 pages per 10 ms (ceil(10 ms / jiffy)
    // jiffies, the wake-up's delay, 1000 pages of scanning) within 10%,
    // as the model plays a round (Costs::ksm_sleep_ns). Measured here:
    // 24.0 ms a round at 100 per 20 ms (83% of the nominal pace), 3.5-3.6
    // ms of it the wake-up's delay; 19.4-19.5 ms at 1000 per 10 ms, 19.5-
    // 20.2 ms predicted. The region is 256 MiB: at 16 MiB a full scan
    // ends every few rounds, and what ksmd does once a scan (draining the
    // LRU caches of every CPU) shows in each round's time.
    let costs = overcommit::latency::Costs { ksm_wake_ns: f.wake_ns, jiffy_ns: f.jiffy_ns, ..Default::default() };
    let predicted = costs.ksm_sleep_ns(10) + 1000.0 * f.page_ns;
    eprintln!("ksmd: {f:?}; a round at 1000 per 10 ms predicted {:.2} ms", predicted / 1e6);
    if (predicted / f.round_1000_per_10ms_ns - 1.0).abs() > 0.10 {
        return Err(format!(
            "a round at 1000 pages per 10 ms: predicted {predicted:.0} ns, measured {:.0} ns",
            f.round_1000_per_10ms_ns
        ));
    }
    Ok(())
}
