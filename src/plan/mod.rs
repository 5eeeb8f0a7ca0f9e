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

/// FNV-1a (64-bit) over the inputs that decide a result, each
/// length-prefixed so that no two inputs collide by concatenation: the
/// fingerprint by which `merge` joins only shards of one run.
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn put(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv::new()
    }
}
