//! ksmd's two trees: the stable tree (for each content, its KSM pages)
//! and the unstable tree (for each content, the page waiting for a twin),
//! the content keys both are indexed by, and how their entries pack into
//! a word.

use std::collections::HashMap;

/// Where a merged page's content lives, packed in a word so a tree entry
/// is two words: page `page` (real index; all ones for the image's common
/// pattern) of image `image`, or all-zero content merged as an ordinary
/// KSM page ([`ZERO_KEY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key(u64);

const KEY_PAGE_BITS: u32 = 40;
const KEY_PAGE_MASK: u64 = (1 << KEY_PAGE_BITS) - 1;
pub(super) const ZERO_KEY: Key = Key(u64::MAX);

impl Key {
    pub(super) fn image(image: u32, page: Option<u64>) -> Key {
        // Real page indices stay far below 2^40 (4 PiB of guest memory).
        debug_assert!(page.is_none_or(|p| p < KEY_PAGE_MASK));
        let page = page.unwrap_or(KEY_PAGE_MASK);
        Key(u64::from(image) << KEY_PAGE_BITS | page)
    }

    /// The key as a word, and back (a KSM page keeps its content's).
    pub(super) fn raw(self) -> u64 {
        self.0
    }
    pub(super) fn from_raw(v: u64) -> Key {
        Key(v)
    }

    /// One content however the guests are sampled: the zero page's, or an
    /// image's common pattern (not a page of the image).
    pub(super) fn single(self) -> bool {
        self == ZERO_KEY || self.0 & KEY_PAGE_MASK == KEY_PAGE_MASK
    }
}

/// The KSM pages of one content (the kernel's stable_node dups): `full`
/// of them with `max_page_sharing` sharers (or that were full when the
/// next was made), and `last`, the one new sharers join while it has room
/// (its number in [`crate::model::ksmpage::KsmPages`]). A dup is added
/// when the last is full or gone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dups {
    pub(super) full: u32,
    pub(super) last: Option<u32>,
}

impl Dups {
    /// As a tree entry (nonzero: a live content has a KSM page).
    pub(super) fn pack(self) -> u64 {
        u64::from(self.full) << 32 | self.last.map_or(0, |id| u64::from(id) + 1)
    }
    pub(super) fn unpack(v: u64) -> Dups {
        let last = v as u32;
        Dups { full: (v >> 32) as u32, last: last.checked_sub(1) }
    }
    /// No KSM page left.
    pub(super) fn is_empty(self) -> bool {
        self.full == 0 && self.last.is_none()
    }
}

/// An unstable tree entry: the waiting page, with a bit that keeps page 0
/// of guest 0 nonzero.
pub(super) fn unstable_entry(g: usize, p: u64) -> u64 {
    1 << 63 | (g as u64) << KEY_PAGE_BITS | p
}

pub(super) fn unstable_page(v: u64) -> (u32, u64) {
    (((v & !(1 << 63)) >> KEY_PAGE_BITS) as u32, v & KEY_PAGE_MASK)
}

/// Hashing for the trees' keys: a content key is two small integers, so a
/// multiply-and-mix hash (no per-process seed: nothing here meets keys
/// chosen against it) instead of SipHash, which took ksmd's scan a fifth
/// of its time.
type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        crate::model::page::mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// One of ksmd's trees, each entry a nonzero word: for an image whose
/// real pages are few enough (every page-exact run), a table indexed by
/// real page, which the scan reads in cache where a hash map's probes
/// miss; other keys (the zero page, an image's common pattern, sampled
/// images whose real indices are sparse) in a hash map. A table is made
/// at its first entry, zeroed (the OS maps its pages as they are first
/// written, so a run whose pages never reach the tree does not pay for
/// it), and a tree that is cleared logs the entries it set, so clearing
/// costs what was put in, not the table's size.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    /// Each image's table length (0: its keys are hashed).
    spans: Vec<u64>,
    dense: Vec<Vec<u64>>,
    other: HashMap<Key, u64, KeyHash>,
    /// Table entries set since the last clear, when `clears`.
    set: Vec<Key>,
    clears: bool,
    /// Entries keyed by a page of an image (each a simulated page standing
    /// for `scale` real contents in sampled mode), and the others (zero
    /// content, an image's common pattern: one content each, sampled or
    /// not): what the kernel's rbtree holds, for the depth of a search.
    pub(super) paged: u64,
    pub(super) single: u64,
}

impl Tree {
    pub(super) fn new(spans: &[u64], clears: bool) -> Tree {
        Tree {
            spans: spans.to_vec(),
            dense: vec![Vec::new(); spans.len()],
            other: HashMap::default(),
            set: Vec::new(),
            clears,
            paged: 0,
            single: 0,
        }
    }

    /// Count an entry of `key` in or out.
    fn count(&mut self, key: Key, delta: i64) {
        let n = if key.single() { &mut self.single } else { &mut self.paged };
        *n = n.checked_add_signed(delta).expect("a tree's entries stay counted");
    }

    /// The contents the kernel's tree holds when a simulated page stands
    /// for `scale` real ones.
    pub(super) fn real_len(&self, scale: f64) -> f64 {
        self.paged as f64 * scale + self.single as f64
    }

    /// Where `key` sits in a table, when its image has one.
    #[inline]
    fn at(&self, key: Key) -> Option<(usize, usize)> {
        if key == ZERO_KEY {
            return None;
        }
        let (i, p) = ((key.0 >> KEY_PAGE_BITS) as usize, key.0 & KEY_PAGE_MASK);
        (p < *self.spans.get(i)?).then_some((i, p as usize))
    }

    #[inline]
    pub(super) fn get_mut(&mut self, key: Key) -> Option<&mut u64> {
        match self.at(key) {
            Some((i, p)) => self.dense[i].get_mut(p).filter(|v| **v != 0),
            None => self.other.get_mut(&key),
        }
    }

    pub(super) fn insert(&mut self, key: Key, v: u64) {
        debug_assert!(v != 0);
        match self.at(key) {
            Some((i, p)) => {
                if self.dense[i].is_empty() {
                    self.dense[i] = vec![0; self.spans[i] as usize];
                }
                if self.dense[i][p] == 0 {
                    if self.clears {
                        self.set.push(key);
                    }
                    self.count(key, 1);
                }
                self.dense[i][p] = v;
            }
            None => {
                if self.other.insert(key, v).is_none() {
                    self.count(key, 1);
                }
            }
        }
    }

    pub(super) fn remove(&mut self, key: Key) -> Option<u64> {
        let v = match self.at(key) {
            Some((i, p)) => self.dense[i].get_mut(p).map(std::mem::take).filter(|&v| v != 0),
            None => self.other.remove(&key),
        };
        if v.is_some() {
            self.count(key, -1);
        }
        v
    }

    pub(super) fn clear(&mut self) {
        debug_assert!(self.clears);
        for key in std::mem::take(&mut self.set) {
            if let Some((i, p)) = self.at(key) {
                self.dense[i][p] = 0;
            }
        }
        self.other.clear();
        (self.paged, self.single) = (0, 0);
    }

    pub(super) fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        debug_assert!(self.clears);
        for k in 0..self.set.len() {
            let key = self.set[k];
            if let Some((i, p)) = self.at(key)
                && self.dense[i][p] != 0
                && !keep(self.dense[i][p])
            {
                self.dense[i][p] = 0;
                self.count(key, -1);
            }
        }
        let (mut paged, mut single) = (0, 0);
        self.other.retain(|k, v| {
            let stays = keep(*v);
            if !stays {
                *if k.single() { &mut single } else { &mut paged } += 1;
            }
            stays
        });
        self.paged -= paged;
        self.single -= single;
    }
}
