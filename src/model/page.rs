//! One byte of state per simulated 4 KiB guest page, packed so the touch
//! loop reads and writes a single byte.
//!
//! | bits | meaning |
//! |---|---|
//! | 0–1 | residency: untouched, resident (4 KiB frame), swapped out, huge (in a THP or a hugetlb page) |
//! | 2 | referenced since the reclaim hand last passed (the accessed bit CLOCK reads) |
//! | 3–4 | content class: unique, shared with the image, zero; or 3: in the balloon (the guest gave the page away, its content is gone) |
//! | 5 | written since it was last scanned (KSM sees it as volatile) |
//! | 6 | merged: mapped read-only to a KSM page or the zero page, no frame of its own; on a swapped page, its entry is a swapped-out KSM page's (`model::ksmpage`) |
//! | 7 | ksmd has a checksum of it (it was scanned at least once) |

pub const RES_MASK: u8 = 0b11;
pub const UNTOUCHED: u8 = 0;
pub const RESIDENT: u8 = 1;
pub const SWAPPED: u8 = 2;
pub const HUGE: u8 = 3;

pub const REFERENCED: u8 = 1 << 2;

pub const CLASS_SHIFT: u8 = 3;
pub const CLASS_MASK: u8 = 0b11 << CLASS_SHIFT;

/// The class bits of a page the balloon holds (it is never mapped then).
pub const BALLOONED: u8 = CLASS_MASK;

pub const WRITTEN: u8 = 1 << 5;

pub const MERGED: u8 = 1 << 6;

pub const CHECKSUMMED: u8 = 1 << 7;

/// What a page holds, which decides whether KSM can merge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Content {
    /// Nobody else has these bytes.
    Unique = 0,
    /// Identical in every guest booted from the same image.
    Shared = 1,
    /// All zero.
    Zero = 2,
}

impl Content {
    pub fn of(state: u8) -> Content {
        match (state & CLASS_MASK) >> CLASS_SHIFT {
            1 => Content::Shared,
            2 => Content::Zero,
            _ => Content::Unique,
        }
    }
    pub fn bits(self) -> u8 {
        (self as u8) << CLASS_SHIFT
    }
}

/// Ask the CPU to bring the cache line holding `x` in, without waiting
/// for it: the engine's page arrays are far larger than the caches, and a
/// load of a page's entry that misses holds up what follows it (the
/// instructions after it cannot retire), where a prefetch lets the misses
/// of several pages overlap the work in between. A hint only: nothing
/// the program computes depends on it.
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    // SAFETY: SSE, which `prefetcht0` needs, is part of x86_64 itself;
    // a prefetch reads nothing the program sees and cannot fault, and the
    // address is that of a live reference.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A 64-bit mix (SplitMix64's finaliser) used to give pages stable,
/// well-spread pseudo-random properties from their index.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The shares of a guest's pages by content (a workload's `shared`,
/// `zero` and `duplicate`), and where they lie.
///
/// Without a cold part (`used <= warm`: every scenario that boots its
/// guests) each class is spread evenly over the pages by a hash of the
/// page index. A warm start (`import live` saw the guest running) has
/// used pages outside the working set, `warm..used`, and the shares are
/// of the `used` pages. `in_warm` then says which part of each class lies
/// in the working set (`None`: the working set's share of the used pages,
/// an even spread). It matters because a write makes a page the guest's
/// own: what is alike in the working set decays as the guest writes,
/// what lies outside (kernel text, page cache, memory freed long ago)
/// stays, and `profile` measures the split from how each class decays.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shares {
    pub shared: f64,
    pub zero: f64,
    pub duplicate: f64,
    /// Real pages of the working set (the first ones).
    pub warm: u64,
    /// Real pages in use when the run starts (0: as many as `warm`).
    pub used: u64,
    /// The share of each class (shared, zero, duplicate) in the working
    /// set.
    pub in_warm: Option<[f64; 3]>,
}

impl Shares {
    /// The classes' densities (shared, zero, duplicate) at real page
    /// `page`.
    fn densities(&self, page: u64) -> [f64; 3] {
        let [w, c] = self.parts();
        if page < self.warm { w } else { c }
    }

    /// The classes' densities in the working set (pages below `warm`) and
    /// beyond it.
    fn parts(&self) -> [[f64; 3]; 2] {
        let plain = [self.shared, self.zero, self.duplicate];
        let Some(h) = self.in_warm else { return [plain; 2] };
        if self.used <= self.warm || self.warm == 0 {
            return [plain; 2];
        }
        let used = self.used as f64;
        let (warm, cold) = (self.warm as f64, (self.used - self.warm) as f64);
        let mut w: [f64; 3] = std::array::from_fn(|k| plain[k] * used * h[k].clamp(0.0, 1.0));
        let mut c: [f64; 3] = std::array::from_fn(|k| plain[k] * used - w[k]);
        // A part asked to hold more than its pages: the rest goes to the
        // other part, in the classes' proportions.
        let (sw, sc) = (w.iter().sum::<f64>(), c.iter().sum::<f64>());
        if sc > cold {
            let f = cold / sc;
            for k in 0..3 {
                w[k] += c[k] * (1.0 - f);
                c[k] *= f;
            }
        } else if sw > warm {
            let f = warm / sw;
            for k in 0..3 {
                c[k] += w[k] * (1.0 - f);
                w[k] *= f;
            }
        }
        [w.map(|m| m / warm), c.map(|m| m / cold)]
    }

    /// [`content_of`] for many pages: the densities worked out once.
    pub fn classifier(&self) -> Classifier {
        let cuts = self.parts().map(|[shared, zero, duplicate]| [shared, shared + zero, shared + zero + duplicate]);
        Classifier { warm: self.warm, cuts }
    }
}

/// Content classes of pages by index, for one [`Shares`] (see
/// [`Shares::classifier`]).
#[derive(Debug, Clone, Copy)]
pub struct Classifier {
    warm: u64,
    /// Where each class ends in 0..1 (shared, zero, duplicate), in the
    /// working set and beyond it.
    cuts: [[f64; 3]; 2],
}

impl Classifier {
    /// The content class of real page `page`: [`content_of`].
    #[inline]
    pub fn content(&self, page: u64) -> Content {
        let u = place(page);
        let c = &self.cuts[usize::from(page >= self.warm)];
        if u < c[0] {
            Content::Shared
        } else if u < c[1] {
            Content::Zero
        } else if u < c[2] {
            Content::Shared
        } else {
            Content::Unique
        }
    }

    /// Whether real page `page` holds the image's common pattern:
    /// [`is_common`].
    #[inline]
    pub fn is_common(&self, page: u64) -> bool {
        let c = &self.cuts[usize::from(page >= self.warm)];
        // No duplicate share: no page to place.
        c[1] < c[2] && {
            let u = place(page);
            u >= c[1] && u < c[2]
        }
    }
}

/// Where page `page` falls in 0..1: its content class follows from that.
fn place(page: u64) -> f64 {
    (mix64(page ^ 0xC0_7E47) >> 11) as f64 / (1u64 << 53) as f64
}

/// Content class of a page, fixed by its index so that page `i` of every
/// guest with the same image agrees (that is what makes pages shareable).
/// Duplicate pages (one common pattern, repeated within and across the
/// image's guests) are of the shared class too; [`is_common`] tells them
/// apart.
pub fn content_of(page: u64, s: Shares) -> Content {
    let u = place(page);
    let [shared, zero, duplicate] = s.densities(page);
    if u < shared {
        Content::Shared
    } else if u < shared + zero {
        Content::Zero
    } else if u < shared + zero + duplicate {
        Content::Shared
    } else {
        Content::Unique
    }
}

/// Whether page `page` holds the image's common pattern (the duplicate
/// share) rather than content keyed by its index.
pub fn is_common(page: u64, s: Shares) -> bool {
    s.classifier().is_common(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of each class (shared, zero, duplicate) in `pages`, checking
    /// on the way that a guest's pages built with the classifier get the
    /// classes `content_of` gives one page at a time.
    fn count(s: Shares, pages: std::ops::Range<u64>) -> [u64; 3] {
        let mut n = [0u64; 3];
        let classes = s.classifier();
        for p in pages {
            assert_eq!(classes.content(p), content_of(p, s), "page {p}");
            match content_of(p, s) {
                Content::Shared if is_common(p, s) => n[2] += 1,
                Content::Shared => n[0] += 1,
                Content::Zero => n[1] += 1,
                Content::Unique => {}
            }
        }
        n
    }

    #[test]
    fn without_a_cold_part_the_classes_spread_evenly() {
        // A booting guest: every class at its share wherever one looks
        // (a binomial count: 100,000 pages at 0.2 give 20,000 ± 400 at
        // three standard deviations).
        let s = Shares { shared: 0.2, zero: 0.1, duplicate: 0.05, ..Shares::default() };
        let n = count(s, 0..100_000);
        for (got, want) in n.iter().zip([20_000.0, 10_000.0, 5_000.0]) {
            assert!((*got as f64 - want).abs() < 3.0 * (want * (1.0 - want / 1e5)).sqrt(), "{n:?}");
        }
        // `in_warm` without used pages past the working set changes
        // nothing: the same pages hold the same classes.
        let warm_only = Shares { warm: 100_000, used: 100_000, in_warm: Some([0.0; 3]), ..s };
        assert!((0..10_000).all(|p| content_of(p, s) == content_of(p, warm_only)));
    }

    #[test]
    fn a_warm_start_puts_each_class_where_it_was_measured() {
        // 60,000 pages used, the first 20,000 the working set; shared 0.1
        // (6,000 pages) with 10% in the working set: 600 there at density
        // 0.03, 5,400 in the 40,000 cold pages at 0.135. Zero 0.2 (12,000)
        // all in the cold part; duplicate 0.05 (3,000) spread evenly
        // (one third in the working set).
        let s = Shares {
            shared: 0.1,
            zero: 0.2,
            duplicate: 0.05,
            warm: 20_000,
            used: 60_000,
            in_warm: Some([0.1, 0.0, 1.0 / 3.0]),
        };
        let warm = count(s, 0..20_000);
        let cold = count(s, 20_000..60_000);
        let near = |got: u64, want: f64| (got as f64 - want).abs() <= 3.0 * want.sqrt() + 1.0;
        assert!(near(warm[0], 600.0) && near(cold[0], 5_400.0), "{warm:?} {cold:?}");
        assert_eq!(warm[1], 0, "no zero page in the working set");
        assert!(near(cold[1], 12_000.0), "{cold:?}");
        assert!(near(warm[2], 1_000.0) && near(cold[2], 2_000.0), "{warm:?} {cold:?}");
    }

    #[test]
    fn a_part_asked_to_hold_more_than_its_pages_passes_the_rest_on() {
        // 10,000 used pages, 8,000 of them the working set; zero 0.5
        // (5,000 pages) all asked to lie outside it, where there are only
        // 2,000 pages: those are all zero, and the 3,000 left spread over
        // the working set at 3,000/8,000.
        let s = Shares { zero: 0.5, warm: 8_000, used: 10_000, in_warm: Some([0.0; 3]), ..Shares::default() };
        assert_eq!(count(s, 8_000..10_000)[1], 2_000);
        let w = count(s, 0..8_000)[1] as f64;
        assert!((w - 3_000.0).abs() <= 3.0 * (8_000.0f64 * 0.375 * 0.625).sqrt(), "{w}");
    }
}
