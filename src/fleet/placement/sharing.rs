//! Sharing-aware packing: guests of one image together, so KSM can merge
//! what they share (Memory Buddies, Wood et al., VEE 2009, colocates VMs
//! by page content for the same reason).
//!
//! The guests are offered image by image (images in the order they first
//! appear, then the guests without one), and each goes to the host holding
//! the most guests of its image among those it fits, the first listed
//! among equals, which is first fit when no host holds its image yet.

use super::{Host, Placement, Request, best_by};

pub struct SharingAware;

impl Placement for SharingAware {
    fn name(&self) -> &'static str {
        "sharing"
    }

    fn order(&self, guests: &[Request]) -> Vec<usize> {
        let mut images: Vec<&str> = Vec::new();
        for g in guests {
            if let Some(i) = g.image.as_deref()
                && !images.contains(&i)
            {
                images.push(i);
            }
        }
        let rank =
            |g: &Request| g.image.as_deref().map_or(images.len(), |i| images.iter().position(|x| *x == i).unwrap_or(0));
        let mut order: Vec<usize> = (0..guests.len()).collect();
        // Stable: an image's guests keep their order.
        order.sort_by_key(|&i| rank(&guests[i]));
        order
    }

    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize> {
        match guest.image.as_deref() {
            Some(image) => best_by(hosts, guest, |h| h.of_image(image)),
            None => hosts.iter().position(|h| h.fits(guest)),
        }
    }
}
