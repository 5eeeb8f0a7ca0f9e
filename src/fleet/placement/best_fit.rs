//! Best fit: each guest on the host it leaves with the least room (the
//! tightest fit), the first listed among equals; it packs hosts fuller
//! than first fit when guests come in mixed sizes.

use super::{Host, Placement, Request, best_by};

pub struct BestFit;

impl Placement for BestFit {
    fn name(&self) -> &'static str {
        "best-fit"
    }

    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize> {
        // Largest key wins: the least room left after the guest.
        best_by(hosts, guest, |h| std::cmp::Reverse(h.room() - guest.memory))
    }
}
