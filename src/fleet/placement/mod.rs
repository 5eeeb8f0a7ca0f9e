//! Placement: which host takes each guest, by configured memory alone, as
//! a cloud's scheduler decides before any guest runs.
//!
//! Every policy sees the same hosts ([`Host`]: what each may take and
//! what it holds so far) and is offered the guests one at a time
//! ([`Request`]); one file each holds its rule, and [`resolve`] maps a
//! name to it. A host can take a guest while the memory configured on it
//! stays within its limit, `(ram − reserved) × ram_allocation_ratio`
//! (Nova's placement service: an allocation fits when used + requested ≤
//! (total − reserved) × allocation_ratio); every policy places only where
//! that holds, and differs in which such host it picks. Ties go to the
//! host listed first, so a placement is the same on every run.

mod best_fit;
mod first_fit;
mod sharing;
mod spread;

pub use best_fit::BestFit;
pub use first_fit::FirstFit;
pub use sharing::SharingAware;
pub use spread::Spread;

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Its RAM and what is kept back for the host itself
    /// (`reserved_host_memory_mb`), in bytes.
    pub ram: u64,
    pub reserved: u64,
    /// `ram_allocation_ratio`: how far configured memory may exceed the
    /// RAM left after the reserve.
    pub ratio: f64,
    /// Memory configured by the guests placed so far, in bytes.
    pub used: u64,
    /// The guests placed so far, per image (guests without one are not
    /// counted: they share nothing).
    pub images: Vec<(String, u32)>,
}

impl Host {
    /// An empty host of `ram` bytes, `reserved` of them kept back, taking
    /// configured memory up to `ratio` times the rest.
    pub fn new(ram: u64, reserved: u64, ratio: f64) -> Host {
        Host { ram, reserved, ratio, used: 0, images: Vec::new() }
    }

    /// Configured memory this host may hold: `(ram − reserved) × ratio`.
    pub fn limit(&self) -> u64 {
        (self.ram.saturating_sub(self.reserved) as f64 * self.ratio).floor() as u64
    }

    /// Whether `guest` fits within [`Host::limit`].
    pub fn fits(&self, guest: &Request) -> bool {
        self.used + guest.memory <= self.limit()
    }

    /// Configured memory it may still take.
    pub fn room(&self) -> u64 {
        self.limit().saturating_sub(self.used)
    }

    /// Nova's `free_ram_mb` in bytes: RAM less the reserve and the memory
    /// of the guests placed (the resource tracker starts `memory_mb_used`
    /// at `reserved_host_memory_mb` and adds each instance's memory; it
    /// goes negative when the ratio lets configured memory pass the RAM).
    pub fn free_ram(&self) -> i128 {
        i128::from(self.ram) - i128::from(self.reserved) - i128::from(self.used)
    }

    /// Guests of `image` placed here so far.
    pub fn of_image(&self, image: &str) -> u32 {
        self.images.iter().find(|(i, _)| i == image).map_or(0, |(_, n)| *n)
    }

    /// Put `guest` here.
    pub fn take(&mut self, guest: &Request) {
        self.used += guest.memory;
        if let Some(image) = &guest.image {
            match self.images.iter_mut().find(|(i, _)| i == image) {
                Some((_, n)) => *n += 1,
                None => self.images.push((image.clone(), 1)),
            }
        }
    }
}

/// A guest to place: its configured memory in bytes and the image it boots
/// from, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub memory: u64,
    pub image: Option<String>,
}

/// A placement policy.
pub trait Placement: Sync {
    /// Its name, as `--placements` takes it.
    fn name(&self) -> &'static str;

    /// The order the guests are offered in, as indices into `guests`
    /// (the default: as listed).
    fn order(&self, guests: &[Request]) -> Vec<usize> {
        (0..guests.len()).collect()
    }

    /// The host to put `guest` on, among those it fits ([`Host::fits`]),
    /// or `None` when it fits none.
    fn choose(&self, hosts: &[Host], guest: &Request) -> Option<usize>;

    /// Place all of `guests` on `hosts` (which keep what they held): each
    /// in [`Placement::order`] to the host [`Placement::choose`] picks, or
    /// left out (`None`) when it fits none (a policy that weighs the whole
    /// placement overrides it).
    fn place_all(&self, hosts: &mut [Host], guests: &[Request]) -> Vec<Option<usize>> {
        let mut at = vec![None; guests.len()];
        for i in self.order(guests) {
            let guest = &guests[i];
            if let Some(h) = self.choose(hosts, guest) {
                debug_assert!(hosts[h].fits(guest), "{} chose a host without room", self.name());
                hosts[h].take(guest);
                at[i] = Some(h);
            }
        }
        at
    }
}

/// The policies by name: `first-fit`, `best-fit`, `spread` (Nova's RAM
/// weigher at its default multiplier) and `sharing` (guests of one image
/// together).
pub const NAMES: [&str; 4] = ["first-fit", "best-fit", "spread", "sharing"];

/// The policy called `name`.
pub fn resolve(name: &str) -> Result<Box<dyn Placement>, String> {
    match name {
        "first-fit" => Ok(Box::new(FirstFit)),
        "best-fit" => Ok(Box::new(BestFit)),
        "spread" => Ok(Box::new(Spread)),
        "sharing" => Ok(Box::new(SharingAware)),
        other => Err(format!("unknown placement `{other}`; expected one of {}", NAMES.join(", "))),
    }
}

/// The first host, in list order, with the largest `key` among those
/// `guest` fits: the common shape of the rules that rank hosts.
fn best_by<K: PartialOrd>(hosts: &[Host], guest: &Request, key: impl Fn(&Host) -> K) -> Option<usize> {
    let mut best: Option<(usize, K)> = None;
    for (i, h) in hosts.iter().enumerate() {
        if !h.fits(guest) {
            continue;
        }
        let k = key(h);
        if best.as_ref().is_none_or(|(_, b)| k > *b) {
            best = Some((i, k));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn guest(gib: u64, image: Option<&str>) -> Request {
        Request { memory: gib * GIB, image: image.map(str::to_string) }
    }

    /// Three hosts and five guests, each policy's placement worked out by
    /// hand from its rule (the module docs of each file). Hosts: A 64 GiB
    /// and B 32 GiB with 4 GiB reserved and ratio 1.0 (limits 60 and 28
    /// GiB), C 32 GiB with 2 GiB reserved and ratio 1.5 (limit 45 GiB).
    /// Guests in order: g0 16 GiB (image x), g1 24 GiB (y), g2 16 GiB (x),
    /// g3 20 GiB (none), g4 8 GiB (y).
    fn hosts() -> Vec<Host> {
        vec![Host::new(64 * GIB, 4 * GIB, 1.0), Host::new(32 * GIB, 4 * GIB, 1.0), Host::new(32 * GIB, 2 * GIB, 1.5)]
    }

    fn guests() -> Vec<Request> {
        vec![guest(16, Some("x")), guest(24, Some("y")), guest(16, Some("x")), guest(20, None), guest(8, Some("y"))]
    }

    fn placed(name: &str) -> Vec<Option<usize>> {
        resolve(name).unwrap().place_all(&mut hosts(), &guests())
    }

    #[test]
    fn first_fit_takes_the_first_host_with_room() {
        // g0 → A (16/60); g1 → A (40/60); g2 → A (56/60); g3: A has 4
        // left, B 28 → B (20/28); g4: A 4 left, B 8 left → B (28/28).
        assert_eq!(placed("first-fit"), [Some(0), Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn best_fit_takes_the_host_left_with_the_least_room() {
        // Room before: A 60, B 28, C 45. g0 (16) leaves A 44, B 12, C 29
        // → B. g1 (24): B cannot (12 left); A leaves 36, C 21 → C. g2
        // (16): B cannot, A leaves 44, C 5 → C. g3 (20): only A (60) → A.
        // g4 (8): A leaves 32, B 4, C cannot (5) → B.
        assert_eq!(placed("best-fit"), [Some(1), Some(2), Some(2), Some(0), Some(1)]);
    }

    #[test]
    fn spread_follows_novas_ram_weigher() {
        // free_ram = ram − reserved − used: A 60, B 28, C 30 at first.
        // g0 → A (60; then 44). g1: A 44, B 28, C 30 → A (then 20).
        // g2: A 20, B 28, C 30 → C (then 14; C's limit 45 holds 16). g3
        // (20): A 20 (room 20), B 28, C 14 (room 29) → B (then 8). g4:
        // A 20, B 8, C 14 → A.
        assert_eq!(placed("spread"), [Some(0), Some(0), Some(2), Some(1), Some(0)]);
    }

    #[test]
    fn sharing_puts_an_images_guests_together() {
        // Offered by image, in order of first appearance: x (g0, g2),
        // y (g1, g4), then the guests without one (g3). g0: no host holds
        // x → first fit, A. g2: A holds one x → A (32/60). g1: none holds
        // y → first with room, A (56/60). g4: A holds y but has 4 left;
        // no other holds y → first fit, B (8/28). g3 → B (28/28).
        assert_eq!(placed("sharing"), [Some(0), Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn sharing_packs_no_worse_than_first_fit() {
        // Two hosts of 5.5 GiB (4 GiB at ratio 1.375). Image x: 8 guests
        // of 512 MiB, image y: 7 of 1 GiB, listed x, y, x, y in groups of
        // 4, 3, 4, 4. First fit, as listed: 2 GiB x + 3 GiB y = 5 GiB,
        // then 0.5 GiB of x fills the first host; the rest (1.5 GiB x,
        // 4 GiB y) the second: all placed. Image by image: 4 GiB of x and
        // one y on the first (5 GiB, 0.5 GiB left that no y fits), five y
        // on the second (5 GiB), one y left over: then the policy keeps
        // first fit's placement, which places all.
        let h = || Host { ratio: 1.375, ..Host::new(4 * GIB, 0, 1.0) };
        let half = |img: &str| Request { memory: GIB / 2, image: Some(img.into()) };
        let one = |img: &str| Request { memory: GIB, image: Some(img.into()) };
        let mut guests = Vec::new();
        guests.extend(std::iter::repeat_n(half("x"), 4));
        guests.extend(std::iter::repeat_n(one("y"), 3));
        guests.extend(std::iter::repeat_n(half("x"), 4));
        guests.extend(std::iter::repeat_n(one("y"), 4));
        let ff = FirstFit.place_all(&mut [h(), h()], &guests);
        assert!(ff.iter().all(Option::is_some));
        let sharing = SharingAware.place_all(&mut [h(), h()], &guests);
        assert_eq!(sharing, ff);
        // With room to spare, sharing keeps an image's guests together.
        let roomy = SharingAware.place_all(&mut [h(), h(), h()], &guests);
        assert!(roomy.iter().all(Option::is_some));
        let hosts_of = |img: &str| {
            let mut hs: Vec<usize> = guests
                .iter()
                .zip(&roomy)
                .filter(|(g, _)| g.image.as_deref() == Some(img))
                .map(|(_, h)| h.unwrap())
                .collect();
            hs.dedup();
            hs
        };
        assert_eq!(hosts_of("x"), [0], "image x together");
    }

    #[test]
    fn a_guest_no_host_can_take_is_left_out() {
        let mut hosts = vec![Host::new(8 * GIB, GIB, 1.0)];
        let at = FirstFit.place_all(&mut hosts, &[guest(8, None), guest(4, None), guest(4, None)]);
        // Limit 7 GiB: the 8 GiB guest never fits; one 4 GiB guest does.
        assert_eq!(at, [None, Some(0), None]);
        assert_eq!(hosts[0].used, 4 * GIB);
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let err = resolve("random").err().unwrap();
        assert!(err.contains("first-fit, best-fit, spread, sharing"), "{err}");
        for name in NAMES {
            assert_eq!(resolve(name).unwrap().name(), name);
        }
    }
}
