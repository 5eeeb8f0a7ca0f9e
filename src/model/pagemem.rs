//! Memory for the page-state arrays. The touch loop and the reclaim sweep
//! read these arrays at random, so on Linux they live in anonymous memory
//! marked MADV_HUGEPAGE: with 2 MiB pages the simulator's own TLB covers a
//! 16 GiB guest's 4 MiB of state in two entries (the effect this tool
//! models, applied to itself).

use std::ops::{Deref, DerefMut};

/// A zeroed byte array, on transparent huge pages where the host allows.
pub enum PageMem {
    Heap(Vec<u8>),
    #[cfg(target_os = "linux")]
    Mapped(memmap2::MmapMut),
}

impl PageMem {
    pub fn zeroed(len: usize) -> PageMem {
        #[cfg(target_os = "linux")]
        if len >= 2 << 20
            && let Ok(m) = memmap2::MmapMut::map_anon(len)
        {
            // Advice only: if THP is off, the mapping works as it is.
            let _ = m.advise(memmap2::Advice::HugePage);
            return PageMem::Mapped(m);
        }
        PageMem::Heap(vec![0; len])
    }
}

impl Deref for PageMem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PageMem::Heap(v) => v,
            #[cfg(target_os = "linux")]
            PageMem::Mapped(m) => m,
        }
    }
}

impl DerefMut for PageMem {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            PageMem::Heap(v) => v,
            #[cfg(target_os = "linux")]
            PageMem::Mapped(m) => m,
        }
    }
}

impl std::fmt::Debug for PageMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageMem({} bytes)", self.len())
    }
}
