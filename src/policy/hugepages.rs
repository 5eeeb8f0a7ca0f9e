//! hugetlbfs rules: a guest backed by huge pages reserves all of them from
//! the pool when QEMU maps its memory (the kernel's hugetlb reservation at
//! mmap time, HugePages_Rsvd), and fails to start when the pool cannot
//! cover it. Pool pages are never swapped, ballooned or merged.

use crate::model::Memory;

/// Why a hugepage guest could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolShort {
    pub needed: u64,
    pub free: u64,
}

/// Reserve the pool pages guest `g` needs.
pub fn reserve(mem: &mut Memory, g: usize, real_bytes: u64) -> Result<u64, PoolShort> {
    let needed = real_bytes.div_ceil(mem.pool_page_bytes);
    if needed > mem.pool_free {
        return Err(PoolShort { needed, free: mem.pool_free });
    }
    mem.pool_free -= needed;
    mem.guests[g].pool_pages = needed;
    Ok(needed)
}

/// Give a dead guest's pool pages back.
pub fn release(mem: &mut Memory, g: usize) {
    mem.pool_free += mem.guests[g].pool_pages;
    mem.guests[g].pool_pages = 0;
}
