//! What the truth modules share: loading scenario text, running the engine
//! page-exact, and reading the steady state out of the samples.

use overcommit::engine::{self, Event, Recorder, RunConfig, Sample, Sink, Summary};
use overcommit::model::Watermarks;
use overcommit::scenario::{Scenario, load_str};

/// Scenario text to a validated scenario; a test's YAML must load.
pub fn scenario(yaml: &str) -> Scenario {
    match load_str(yaml, "<test scenario>", "test", &[]) {
        Ok(loaded) => loaded.scenario,
        Err(e) => panic!("the test scenario does not load:\n{e}\n--- scenario ---\n{yaml}"),
    }
}

/// Page-exact (sample rate 1), default costs and slices, the scenario's seed.
pub fn exact() -> RunConfig {
    RunConfig { sample_rate: Some(1.0), ..Default::default() }
}

/// Run `s` page-exact and keep every sample and event.
pub fn run_recorded(s: &Scenario) -> (Summary, Recorder) {
    let mut rec = Recorder::default();
    let summary = engine::run(s, exact(), &mut rec).expect("the run plays");
    (summary, rec)
}

/// Ordinary 4 KiB frames of the host, counted the way the engine counts
/// them: (ram − reserved − hugetlb pool) / 4096, rounded down.
pub fn frames(s: &Scenario) -> u64 {
    s.host.usable_for_4k().bytes() / 4096
}

/// Frames a lone guest can hold in steady state. kswapd wakes when free
/// memory falls below the low watermark and frees pages until it reaches
/// the high one, so free memory saw-tooths between them and averages
/// about (low + high) / 2; the guest holds the rest. Free memory can only
/// be in 0..=high (direct reclaim starts at 0, kswapd stops at high), which
/// bounds the error of this estimate by (low + high) / 2 frames.
pub fn available_frames(s: &Scenario) -> f64 {
    let w = Watermarks::kernel_default(s.host.ram.bytes(), 1.0);
    frames(s) as f64 - (w.low + w.high) as f64 / 2.0
}

/// Touches and misses of guest `g` between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub touches: u64,
    pub major: u64,
    pub minor: u64,
}

impl Window {
    pub fn major_ratio(&self) -> f64 {
        self.major as f64 / self.touches as f64
    }
    /// Every kind of miss: swap-ins and first touches.
    pub fn miss_ratio(&self) -> f64 {
        (self.major + self.minor) as f64 / self.touches as f64
    }
}

/// The steady-state window of guest `g`: from the first sample by which it
/// made `warmup_touches` touches to the last sample. Panics when the window
/// holds fewer than `min_touches` touches (the run was too short).
pub fn steady_window(samples: &[Sample], g: usize, warmup_touches: u64, min_touches: u64) -> Window {
    let start = samples
        .iter()
        .find(|s| s.guests[g].touches >= warmup_touches)
        .unwrap_or_else(|| panic!("the guest never made {warmup_touches} warm-up touches"));
    let end = samples.last().expect("at least one sample");
    let w = Window {
        touches: end.guests[g].touches - start.guests[g].touches,
        major: end.guests[g].major_faults - start.guests[g].major_faults,
        minor: end.guests[g].minor_faults - start.guests[g].minor_faults,
    };
    assert!(
        w.touches >= min_touches,
        "the steady-state window has {} touches, fewer than {min_touches}: lengthen the run",
        w.touches
    );
    w
}

/// A sink that keeps samples and events in the order the engine emitted
/// them, so a test can tell which events came before which sample.
#[derive(Debug, Default)]
pub struct Log {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    Sample(Sample),
    Event(Event),
}

impl Sink for Log {
    fn sample(&mut self, sample: &Sample) {
        self.items.push(Item::Sample(sample.clone()));
    }
    fn event(&mut self, event: &Event) {
        self.items.push(Item::Event(event.clone()));
    }
}
