//! Idle page tracking (Documentation/admin-guide/mm/idle_page_tracking.rst):
//! `/sys/kernel/mm/page_idle/bitmap` holds a bit per page frame, in 8-byte
//! words of native byte order (the frame at PFN i is bit i % 64 of word
//! i / 64). Writing a 1 marks a page idle, which clears its accessed bits
//! through the MMU notifiers; a later read that finds the bit cleared
//! means the page was touched since. The frames come from
//! `/proc/PID/pagemap` (PFNs need CAP_SYS_ADMIN). For a transparent huge
//! page only the head page carries the flag, so a sampled page of a THP
//! is checked through its head (`/proc/kpageflags`: THP, COMPOUND_HEAD and
//! COMPOUND_TAIL).

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const BITMAP: &str = "sys/kernel/mm/page_idle/bitmap";
const KPAGEFLAGS: &str = "proc/kpageflags";

/// kpageflags bit for a transparent huge page (kernel-doc pagemap.rst).
const KPF_THP: u64 = 22;

/// kpageflags bits of a compound page's head and tails.
const KPF_COMPOUND_HEAD: u64 = 15;
const KPF_COMPOUND_TAIL: u64 = 16;

/// `/proc/kpageflags`, opened once for many look-ups.
pub struct PageFlags(std::fs::File);

impl PageFlags {
    pub fn open(root: &Path) -> io::Result<PageFlags> {
        std::fs::File::open(root.join(KPAGEFLAGS)).map(PageFlags)
    }

    fn flags(&self, pfn: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0.read_exact_at(&mut b, pfn * 8).ok()?;
        Some(u64::from_ne_bytes(b))
    }

    /// The frame whose idle flag stands for `pfn`: the head of its
    /// transparent huge page where it is a tail of one, else itself. A
    /// large folio is naturally aligned, so its head is the first frame
    /// aligned to 2^k, for k from 1 up to 9 (2 MiB), flagged
    /// COMPOUND_HEAD: this finds multi-size THPs' heads (Linux 6.8) as
    /// well as PMD-sized ones'.
    pub fn head(&self, pfn: u64) -> u64 {
        let Some(f) = self.flags(pfn) else { return pfn };
        if f >> KPF_THP & 1 == 0 || f >> KPF_COMPOUND_TAIL & 1 == 0 {
            return pfn;
        }
        (1..=9)
            .map(|k| pfn & !((1u64 << k) - 1))
            .find(|&c| self.flags(c).is_some_and(|g| g >> KPF_COMPOUND_HEAD & 1 == 1))
            .unwrap_or(pfn)
    }
}

/// Mark `pfns` idle.
pub fn mark_idle(root: &Path, pfns: &[u64]) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(root.join(BITMAP))?;
    let mut words: Vec<(u64, u64)> = Vec::new();
    for &pfn in pfns {
        let (w, bit) = (pfn / 64, pfn % 64);
        match words.last_mut() {
            Some(last) if last.0 == w => last.1 |= 1 << bit,
            _ => words.push((w, 1 << bit)),
        }
    }
    words.sort_unstable();
    for (w, bits) in words {
        file.write_all_at(&bits.to_ne_bytes(), w * 8)?;
    }
    Ok(())
}

/// For each of `pfns`, whether it is still idle (not touched since it was
/// marked).
pub fn still_idle(root: &Path, pfns: &[u64]) -> io::Result<Vec<bool>> {
    let file = std::fs::File::open(root.join(BITMAP))?;
    let mut out = Vec::with_capacity(pfns.len());
    let mut cached: Option<(u64, u64)> = None;
    for &pfn in pfns {
        let w = pfn / 64;
        let word = match cached {
            Some((cw, v)) if cw == w => v,
            _ => {
                let mut b = [0u8; 8];
                file.read_exact_at(&mut b, w * 8)?;
                let v = u64::from_ne_bytes(b);
                cached = Some((w, v));
                v
            }
        };
        out.push(word >> (pfn % 64) & 1 == 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_and_reading_follow_the_bitmap_layout() {
        // A recorded bitmap of 4 words (256 frames), all busy.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sys/kernel/mm/page_idle")).unwrap();
        std::fs::write(root.join(BITMAP), [0u8; 32]).unwrap();
        let pfns = [3, 64, 65, 200];
        mark_idle(root, &pfns).unwrap();
        let raw = std::fs::read(root.join(BITMAP)).unwrap();
        // Frame 3: bit 3 of word 0; 64 and 65: bits 0 and 1 of word 1;
        // 200: bit 8 of word 3.
        assert_eq!(u64::from_ne_bytes(raw[0..8].try_into().unwrap()), 1 << 3);
        assert_eq!(u64::from_ne_bytes(raw[8..16].try_into().unwrap()), 0b11);
        assert_eq!(u64::from_ne_bytes(raw[24..32].try_into().unwrap()), 1 << 8);
        assert_eq!(still_idle(root, &pfns).unwrap(), vec![true; 4]);
        // The kernel clears a touched page's bit: frame 65 was touched.
        let f = OpenOptions::new().write(true).open(root.join(BITMAP)).unwrap();
        f.write_all_at(&1u64.to_ne_bytes(), 8).unwrap();
        assert_eq!(still_idle(root, &pfns).unwrap(), vec![true, true, false, true]);
    }

    #[test]
    fn a_thp_page_is_checked_through_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        // kpageflags for frames 0..1024 as pagemap.rst describes them:
        // frames 512..1023 a 2 MiB THP (head 512, the rest tails), frames
        // 64..79 a 64 KiB multi-size THP (head 64), frame 100 a plain page.
        let mut flags = vec![0u8; 1024 * 8];
        let mut set = |pfn: usize, head: bool| {
            let f = 1u64 << KPF_THP | 1u64 << if head { KPF_COMPOUND_HEAD } else { KPF_COMPOUND_TAIL };
            flags[pfn * 8..pfn * 8 + 8].copy_from_slice(&f.to_ne_bytes());
        };
        for pfn in 512..1024usize {
            set(pfn, pfn == 512);
        }
        for pfn in 64..80usize {
            set(pfn, pfn == 64);
        }
        std::fs::write(root.join(KPAGEFLAGS), flags).unwrap();
        let pf = PageFlags::open(root).unwrap();
        assert_eq!(pf.head(700), 512);
        assert_eq!(pf.head(512), 512);
        assert_eq!(pf.head(75), 64);
        assert_eq!(pf.head(100), 100);
    }
}
