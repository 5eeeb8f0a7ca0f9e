//! What `/proc/PID/` tells of a process's memory, and the two knobs the
//! profiler turns there: the mappings and their `Rss`, `Referenced`,
//! `AnonHugePages` and `Swap` (smaps), a page's present, swapped and
//! soft-dirty bits (pagemap), resetting the accessed and soft-dirty bits
//! (clear_refs), and reading a page (mem). All formats are those of
//! Documentation/filesystems/proc.rst and admin-guide/mm/pagemap.rst.
//!
//! Everything goes through a root directory, so tests can give recorded
//! files; on a real host the root is `/`.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One mapping of /proc/PID/smaps, sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rw-p` and the like.
    pub perms: String,
    /// The path or `[heap]`; empty for anonymous memory.
    pub name: String,
    pub rss: u64,
    /// Pages whose accessed bit is set (or the page is marked referenced).
    pub referenced: u64,
    pub anon_huge: u64,
    pub swap: u64,
    /// hugetlbfs pages mapped (`Private_Hugetlb` + `Shared_Hugetlb`),
    /// which `Rss` leaves out.
    pub hugetlb: u64,
}

impl Mapping {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// `root/proc/PID/FILE`.
pub fn path(root: &Path, pid: u32, file: &str) -> PathBuf {
    root.join(format!("proc/{pid}/{file}"))
}

/// Parse a /proc/PID/smaps text: a header line per mapping
/// (`start-end perms offset dev inode [name]`), then `Key: N kB` lines.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            let perms = words.next().unwrap_or_default().to_string();
            let name = words.nth(3).unwrap_or_default().to_string();
            out.push(Mapping { start, end, perms, name, ..Mapping::default() });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let Some(key) = first.strip_suffix(':') else { continue };
        let mut kib = || words.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024;
        match key {
            "Rss" => m.rss = kib(),
            "Referenced" => m.referenced = kib(),
            "AnonHugePages" => m.anon_huge = kib(),
            "Swap" => m.swap = kib(),
            "Private_Hugetlb" | "Shared_Hugetlb" => m.hugetlb += kib(),
            _ => {}
        }
    }
    out
}

/// The mappings of process `pid`.
pub fn smaps(root: &Path, pid: u32) -> io::Result<Vec<Mapping>> {
    Ok(parse_smaps(&std::fs::read_to_string(path(root, pid, "smaps"))?))
}

/// The guest RAM of a QEMU process: the mappings whose size is one of its
/// memory backends' (QEMU maps each backend as one block), or, when none
/// is known or found, its largest private anonymous mapping.
pub fn guest_ram(mappings: &[Mapping], backend_bytes: &[u64]) -> Vec<Mapping> {
    let mut wanted: Vec<u64> = backend_bytes.iter().copied().filter(|&b| b > 0).collect();
    let mut out = Vec::new();
    for m in mappings {
        if let Some(i) = wanted.iter().position(|&b| b == m.size()) {
            wanted.swap_remove(i);
            out.push(m.clone());
        }
    }
    if out.is_empty()
        && let Some(m) =
            mappings.iter().filter(|m| m.name.is_empty() && m.perms.starts_with("rw")).max_by_key(|m| m.size())
    {
        out.push(m.clone());
    }
    out.sort_by_key(|m| m.start);
    out
}

/// What writing to /proc/PID/clear_refs resets (proc.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearRefs {
    /// 1: the accessed (referenced) bits of every page.
    Referenced,
    /// 4: the soft-dirty bits (and write-protects the pages, so the next
    /// write faults and sets them again).
    SoftDirty,
}

pub fn clear_refs(root: &Path, pid: u32, what: ClearRefs) -> io::Result<()> {
    let value = match what {
        ClearRefs::Referenced => "1",
        ClearRefs::SoftDirty => "4",
    };
    std::fs::write(path(root, pid, "clear_refs"), value)
}

/// One pagemap entry (admin-guide/mm/pagemap.rst): bit 63 present, 62
/// swapped, 55 soft-dirty, 0–54 the page frame number (zero without
/// CAP_SYS_ADMIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageEntry(pub u64);

impl PageEntry {
    pub fn present(self) -> bool {
        self.0 >> 63 & 1 == 1
    }
    pub fn swapped(self) -> bool {
        self.0 >> 62 & 1 == 1
    }
    pub fn soft_dirty(self) -> bool {
        self.0 >> 55 & 1 == 1
    }
    pub fn pfn(self) -> u64 {
        self.0 & ((1 << 55) - 1)
    }
}

/// An open /proc/PID/pagemap, read an entry at a time.
pub struct Pagemap(File);

impl Pagemap {
    pub fn open(root: &Path, pid: u32) -> io::Result<Pagemap> {
        File::open(path(root, pid, "pagemap")).map(Pagemap)
    }

    /// The entry of the page at virtual address `addr`.
    pub fn entry(&self, addr: u64) -> io::Result<PageEntry> {
        let mut b = [0u8; 8];
        self.0.read_exact_at(&mut b, addr / 4096 * 8)?;
        Ok(PageEntry(u64::from_le_bytes(b)))
    }

    /// The entries of the pages at `addrs`, read in windows: consecutive
    /// addresses at most `max_gap` pages apart share one read (of at most
    /// 64 Ki entries). A read costs about as much as a few dozen entries
    /// of 4 KiB pages or a few hundred of a huge page's (the kernel fills
    /// a PMD-mapped THP's 512 entries without walking its PTEs): measured
    /// on this project's test machine, a single entry 0.85 µs, and 32–40
    /// ns an entry of 4 KiB pages or 4.5 ns of THP in a window.
    pub fn entries(&self, addrs: &[u64], max_gap: u64) -> io::Result<Vec<PageEntry>> {
        const MAX_WINDOW: u64 = 1 << 16;
        let mut out = Vec::with_capacity(addrs.len());
        let mut buf = Vec::new();
        let mut i = 0;
        while i < addrs.len() {
            let first = addrs[i] / 4096;
            let mut j = i + 1;
            while j < addrs.len() {
                let (prev, next) = (addrs[j - 1] / 4096, addrs[j] / 4096);
                if next < prev || next - prev > max_gap || next - first >= MAX_WINDOW {
                    break;
                }
                j += 1;
            }
            let n = (addrs[j - 1] / 4096 - first + 1) as usize;
            buf.resize(n * 8, 0u8);
            self.0.read_exact_at(&mut buf, first * 8)?;
            for &a in &addrs[i..j] {
                let k = (a / 4096 - first) as usize * 8;
                let mut e = [0u8; 8];
                e.copy_from_slice(&buf[k..k + 8]);
                out.push(PageEntry(u64::from_le_bytes(e)));
            }
            i = j;
        }
        Ok(out)
    }
}

/// The frames of the kernel's shared zero pages, as this process's own
/// page tables show them: a page of another process mapped to one holds
/// no memory of its own (smaps leaves it out of `Rss`, and KSM has nothing
/// to merge), though pagemap calls it present. A read fault on anonymous
/// memory that was never written maps the 4 KiB zero page, or the huge
/// zero page where THP has `use_zero_page`; reading another process's
/// memory through /proc/PID/mem does it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZeroFrames {
    pub small: Option<u64>,
    /// The huge zero page's first frame (it spans 512).
    pub huge: Option<u64>,
}

impl ZeroFrames {
    /// Learn them by reading fresh anonymous memory of this process (frame
    /// numbers need CAP_SYS_ADMIN: without it nothing is learnt and no page
    /// is taken for a zero page).
    pub fn learn() -> ZeroFrames {
        let frame_of = |addr: u64| -> Option<u64> {
            let pm = File::open("/proc/self/pagemap").ok()?;
            let mut b = [0u8; 8];
            pm.read_exact_at(&mut b, addr / 4096 * 8).ok()?;
            let e = PageEntry(u64::from_le_bytes(b));
            (e.present() && e.pfn() != 0).then(|| e.pfn())
        };
        let mut z = ZeroFrames::default();
        if let Ok(m) = memmap2::MmapMut::map_anon(4096) {
            std::hint::black_box(m[0]);
            z.small = frame_of(m.as_ptr() as u64);
        }
        if let Ok(m) = memmap2::MmapMut::map_anon(4 << 20) {
            let _ = m.advise(memmap2::Advice::HugePage);
            let base = m.as_ptr() as u64;
            let aligned = (base + (2 << 20) - 1) & !((2 << 20) - 1);
            std::hint::black_box(m[(aligned - base) as usize]);
            z.huge = frame_of(aligned).filter(|&f| Some(f) != z.small);
        }
        z
    }

    /// This boot's zero frames, learnt once.
    pub fn here() -> ZeroFrames {
        static HERE: std::sync::OnceLock<ZeroFrames> = std::sync::OnceLock::new();
        *HERE.get_or_init(ZeroFrames::learn)
    }

    pub fn is_zero(&self, pfn: u64) -> bool {
        pfn != 0 && (Some(pfn) == self.small || self.huge.is_some_and(|h| (h..h + 512).contains(&pfn)))
    }
}

/// An open /proc/PID/mem, to read pages of another process (root, or
/// ptrace rights over it). Reading a page that is not present would fault
/// it in, so callers read only pages pagemap says are present.
pub struct Mem(File);

impl Mem {
    pub fn open(root: &Path, pid: u32) -> io::Result<Mem> {
        File::open(path(root, pid, "mem")).map(Mem)
    }

    pub fn page(&self, addr: u64, buf: &mut [u8; 4096]) -> io::Result<()> {
        self.0.read_exact_at(buf, addr)
    }
}

/// The process's CPU time so far (utime + stime of /proc/PID/stat, in
/// clock ticks of USER_HZ, `sysconf(_SC_CLK_TCK)`).
pub fn cpu_ticks(root: &Path, pid: u32) -> io::Result<u64> {
    let mut text = String::new();
    File::open(path(root, pid, "stat"))?.read_to_string(&mut text)?;
    // The command is in parentheses and may hold spaces: fields count
    // from after its closing one (proc.rst: utime is field 14, stime 15).
    let rest = text.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(num(11) + num(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape of Documentation/filesystems/proc.rst's smaps example.
    const SMAPS: &str = "\
55d0c0000000-55d0c1000000 r-xp 00000000 08:01 1234 /usr/bin/qemu-system-x86_64
Size:              16384 kB
Rss:                9000 kB
Referenced:         8000 kB
Swap:                  0 kB
7f0000000000-7f0080000000 rw-p 00000000 00:00 0 
Size:            2097152 kB
Rss:              900000 kB
Referenced:       300000 kB
AnonHugePages:    524288 kB
Swap:               2048 kB
7f1000000000-7f1000200000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                2048 kB
Referenced:          100 kB
";

    #[test]
    fn smaps_mappings_and_their_counters() {
        let m = parse_smaps(SMAPS);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name, "/usr/bin/qemu-system-x86_64");
        assert_eq!(m[1].size(), 2 << 30);
        assert_eq!(
            (m[1].rss, m[1].referenced, m[1].anon_huge, m[1].swap),
            (900_000 << 10, 300_000 << 10, 524_288 << 10, 2048 << 10)
        );
        assert_eq!(m[1].name, "");
    }

    #[test]
    fn guest_ram_is_the_backend_sized_mapping_or_the_largest_anonymous_one() {
        let m = parse_smaps(SMAPS);
        assert_eq!(guest_ram(&m, &[2 << 30])[0].start, 0x7f00_0000_0000);
        // Unknown sizes: the largest private anonymous mapping.
        assert_eq!(guest_ram(&m, &[])[0].size(), 2 << 30);
    }

    #[test]
    fn pagemap_bits() {
        // pagemap.rst: bit 63 present, 62 swapped, 55 soft-dirty.
        let e = PageEntry(1 << 63 | 1 << 55 | 0x1234);
        assert!(e.present() && e.soft_dirty() && !e.swapped());
        assert_eq!(e.pfn(), 0x1234);
        assert!(PageEntry(1 << 62).swapped());
    }

    #[test]
    fn this_process_can_be_read() {
        // Our own process: smaps, pagemap and mem as the profiler reads a
        // guest's (no root needed for oneself).
        let root = Path::new("/");
        let pid = std::process::id();
        let maps = smaps(root, pid).expect("own smaps");
        assert!(!maps.is_empty());
        let page = vec![7u8; 4096];
        let addr = page.as_ptr() as u64 & !4095;
        let pm = Pagemap::open(root, pid).expect("own pagemap");
        assert!(pm.entry(addr).expect("an entry").present());
        let mem = Mem::open(root, pid).expect("own mem");
        let mut buf = [0u8; 4096];
        mem.page(addr, &mut buf).expect("own page");
        assert!(cpu_ticks(root, pid).is_ok());
        drop(page);
    }

    #[test]
    fn entries_read_in_windows_are_the_entries_read_one_by_one() {
        // Whatever the windows, each address gets its own entry: pages
        // written and never touched, in and out of order, repeated.
        let mut m = memmap2::MmapMut::map_anon(64 * 4096).expect("map");
        for p in (0..64).step_by(3) {
            m[p * 4096] = 1;
        }
        let base = m.as_ptr() as u64;
        let addrs: Vec<u64> = [0u64, 1, 3, 3, 9, 40, 41, 63, 2, 6, 60].iter().map(|p| base + p * 4096).collect();
        let pm = Pagemap(File::open("/proc/self/pagemap").expect("own pagemap"));
        let one: Vec<PageEntry> = addrs.iter().map(|&a| pm.entry(a).expect("entry")).collect();
        for gap in [0, 1, 4, 512] {
            assert_eq!(pm.entries(&addrs, gap).expect("entries"), one, "gap {gap}");
        }
        assert_eq!(
            one.iter().map(|e| e.present()).collect::<Vec<_>>(),
            [true, false, true, true, true, false, false, true, false, true, true]
        );
    }

    #[test]
    fn a_page_only_read_maps_the_zero_page_and_a_written_one_does_not() {
        // mm/memory.c do_anonymous_page: a read fault on anonymous memory
        // maps the shared zero page; a write allocates a page of its own.
        let z = ZeroFrames::learn();
        let Some(small) = z.small else {
            eprintln!("skipped: page frame numbers are hidden without CAP_SYS_ADMIN");
            return;
        };
        let mut m = memmap2::MmapMut::map_anon(2 * 4096).expect("map");
        std::hint::black_box(m[0]);
        m[4096] = 1;
        let pm = Pagemap(File::open("/proc/self/pagemap").expect("own pagemap"));
        let read = pm.entry(m.as_ptr() as u64).expect("entry");
        let written = pm.entry(m.as_ptr() as u64 + 4096).expect("entry");
        assert_eq!(read.pfn(), small);
        assert!(z.is_zero(read.pfn()));
        assert!(written.present() && !z.is_zero(written.pfn()));
    }
}
