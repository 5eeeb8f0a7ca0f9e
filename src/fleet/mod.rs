//! Fleets: many hosts, the guests placed on them, and what a lost host
//! does to the rest.
//!
//! An operator's question is rarely about one host: it is how many hosts
//! of which types a set of guests needs at a latency goal, with which
//! policies, and whether the rest survive losing one. Which guests land
//! together decides it (guests of one image share pages under KSM only on
//! the same host), so a fleet is planned in two steps, as a cloud does it:
//! [`placement`] puts each guest on a host by its configured memory against
//! the host's allocation limit (Nova's `ram_allocation_ratio` over the RAM
//! left after `reserved_host_memory_mb`), then every host is simulated with
//! the engine.

pub mod answers;
pub mod evaluate;
pub mod file;
pub mod placement;
pub mod search;
