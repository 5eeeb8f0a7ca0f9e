//! Nova's default: spread guests over the hosts by free RAM.
//!
//! The filter scheduler keeps the hosts placement says have room (used +
//! requested ≤ (total − reserved) × `ram_allocation_ratio`), weighs them
//! and takes the heaviest. With the default weighers for memory that is
//! the RAM weigher (`nova.scheduler.weights.ram.RAMWeigher`), whose weight
//! is the host's `free_ram_mb` (RAM less `reserved_host_memory_mb` less
//! the memory of its instances, negative when overcommitted) times
//! `ram_weight_multiplier`, 1.0 by default: "the default is to spread
//! instances across all hosts evenly" (Nova's documentation; a negative
//! multiplier stacks instead). Weights are normalised across the hosts,
//! which keeps their order, and a stable sort leaves equals in list order
//! (`host_subset_size` 1: the first is chosen).

use super::{Host, Placement, Request, best_by};

pub struct Spread;

impl Placement for Spread {
    fn name(&self) -> &'static str {
        "spread"
    }

    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize> {
        best_by(hosts, guest, Host::free_ram)
    }
}
