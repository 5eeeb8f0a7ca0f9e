//! Sharing-aware packing: guests of one image together, so KSM can merge
//! what they share (Memory Buddies, Wood et al., VEE 2009, colocates VMs
//! by page content for the same reason).
//!
//! The guests are offered image by image (images in the order they first
//! appear, then the guests without one), and each goes to the host holding
//! the most guests of its image among those it fits, the first listed
//! among equals, which is first fit when no host holds its image yet.
//! Grouping can leave holes a first fit in the listed order would fill
//! (an image's small guests fill a host but for less than one of the next
//! image's large ones): where it leaves a guest without a host that first
//! fit places, first fit's placement is kept, so sharing never needs more
//! hosts than first fit.

use super::{FirstFit, Host, Placement, Request, best_by};

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

    fn place_all(&self, hosts: &mut [Host], guests: &[Request]) -> Vec<Option<usize>> {
        let mut grouped_hosts = hosts.to_vec();
        let mut at = vec![None; guests.len()];
        for i in self.order(guests) {
            if let Some(h) = self.choose(&grouped_hosts, &guests[i]) {
                grouped_hosts[h].take(&guests[i]);
                at[i] = Some(h);
            }
        }
        let placed = |a: &[Option<usize>]| a.iter().filter(|x| x.is_some()).count();
        if placed(&at) < guests.len() {
            let mut ff_hosts = hosts.to_vec();
            let ff = FirstFit.place_all(&mut ff_hosts, guests);
            if placed(&ff) > placed(&at) {
                hosts.clone_from_slice(&ff_hosts);
                return ff;
            }
        }
        hosts.clone_from_slice(&grouped_hosts);
        at
    }

    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize> {
        match guest.image.as_deref() {
            Some(image) => best_by(hosts, guest, |h| h.of_image(image)),
            None => hosts.iter().position(|h| h.fits(guest)),
        }
    }
}
