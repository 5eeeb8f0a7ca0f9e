//! Many runs at once: sweeps over scenario values (in parallel with rayon,
//! sharded across machines when they outgrow one), and the search for
//! capacity under objectives (`capacity`).

pub mod capacity;
pub mod sweep;
