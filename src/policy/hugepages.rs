//! hugetlbfs rules: a guest backed by huge pages reserves all of them from
//! the pool of their size when QEMU maps its memory (the kernel's hugetlb
//! reservation at mmap time, HugePages_Rsvd), and fails to start when a
//! pool cannot cover it. Each page size has its own pool
//! (`/sys/kernel/mm/hugepages/hugepages-<size>kB/`), and a backend takes
//! from the pool of its size only. Pool pages are never swapped,
//! ballooned or merged.

use crate::model::Memory;

/// Why a hugepage guest could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolShort {
    pub page_bytes: u64,
    pub needed: u64,
    pub free: u64,
}

/// Reserve what guest `g` needs: `needs` lists (page bytes, pages) per
/// backend. All or nothing: QEMU fails to start when one backend cannot
/// map its memory.
pub fn reserve(mem: &mut Memory, g: usize, needs: &[(u64, u64)]) -> Result<(), PoolShort> {
    let mut want: Vec<(u64, u64)> = Vec::new();
    for &(page_bytes, pages) in needs {
        match want.iter_mut().find(|w| w.0 == page_bytes) {
            Some(w) => w.1 += pages,
            None => want.push((page_bytes, pages)),
        }
    }
    for &(page_bytes, needed) in &want {
        let free = mem.pools.iter().find(|p| p.page_bytes == page_bytes).map_or(0, |p| p.free);
        if needed > free {
            return Err(PoolShort { page_bytes, needed, free });
        }
    }
    for &(page_bytes, needed) in &want {
        if let Some(p) = mem.pools.iter_mut().find(|p| p.page_bytes == page_bytes) {
            p.free -= needed;
        }
    }
    mem.guests[g].pool_pages = want;
    Ok(())
}

/// Give a dead guest's pool pages back.
pub fn release(mem: &mut Memory, g: usize) {
    for (page_bytes, n) in std::mem::take(&mut mem.guests[g].pool_pages) {
        if let Some(p) = mem.pools.iter_mut().find(|p| p.page_bytes == page_bytes) {
            p.free += n;
        }
    }
}
