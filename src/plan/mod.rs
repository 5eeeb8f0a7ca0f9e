//! Many runs at once: sweeps over scenario values (in parallel with rayon,
//! sharded across machines when they outgrow one), and the search for
//! capacity under objectives (`capacity`).

pub mod capacity;
pub mod sweep;

use crate::latency::Costs;
use crate::scenario::Override;

/// What every run of a sweep or a plan shares: the scenario text (and how
/// to name it in messages), the `--set` overrides, the first seed, the
/// sampling rate and the costs.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub text: String,
    pub label: String,
    pub default_name: String,
    /// `--set` overrides applied to every run.
    pub base: Vec<Override>,
    /// Overrides the scenario's seed.
    pub master_seed: Option<u64>,
    pub sample_rate: Option<f64>,
    /// How every run plays its touches (`--events`, `--touches`).
    pub mode: crate::engine::Mode,
    pub costs: Costs,
    /// The calibration file `costs` came from.
    pub calibration: Option<String>,
}
