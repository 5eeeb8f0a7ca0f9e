//! First fit: each guest on the first host, in list order, with room for
//! it (the classic bin-packing heuristic, and what a scheduler that fills
//! hosts one after another does).

use super::{Host, Placement, Request};

pub struct FirstFit;

impl Placement for FirstFit {
    fn name(&self) -> &'static str {
        "first-fit"
    }

    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize> {
        hosts.iter().position(|h| h.fits(guest))
    }
}
