//! One byte of state per simulated 4 KiB guest page, packed so the touch
//! loop reads and writes a single byte.
//!
//! | bits | meaning |
//! |---|---|
//! | 0–1 | residency: untouched, resident (4 KiB frame), swapped out, huge (in a THP or a hugetlb page) |
//! | 2 | referenced since the reclaim hand last passed (the accessed bit CLOCK reads) |
//! | 3–4 | content class: unique, shared with the image, zero; or 3: in the balloon (the guest gave the page away, its content is gone) |
//! | 5 | written since it was last scanned (KSM sees it as volatile) |
//! | 6 | merged: mapped read-only to a KSM page or the zero page, no frame of its own |
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
/// `zero` and `duplicate`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shares {
    pub shared: f64,
    pub zero: f64,
    pub duplicate: f64,
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
    if u < s.shared {
        Content::Shared
    } else if u < s.shared + s.zero {
        Content::Zero
    } else if u < s.shared + s.zero + s.duplicate {
        Content::Shared
    } else {
        Content::Unique
    }
}

/// Whether page `page` holds the image's common pattern (the duplicate
/// share) rather than content keyed by its index.
pub fn is_common(page: u64, s: Shares) -> bool {
    let u = place(page);
    u >= s.shared + s.zero && u < s.shared + s.zero + s.duplicate
}
