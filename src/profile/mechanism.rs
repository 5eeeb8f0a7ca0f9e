//! Which of the kernel's ways to see page accesses this host has, and
//! what each can and cannot see. In order of preference:
//!
//! 1. idle page tracking (`/sys/kernel/mm/page_idle/bitmap`, with page
//!    frame numbers from `/proc/PID/pagemap`): marking a page idle clears
//!    its accessed bits through the MMU notifiers
//!    (`page_idle_clear_pte_refs` → `ptep_clear_young_notify`), so it also
//!    sees what a KVM guest touches through EPT/NPT; per page, on a sample.
//! 2. DAMON's virtual-address monitoring of the QEMU process through its
//!    sysfs interface (`/sys/kernel/mm/damon/admin`): access frequency
//!    per adaptive region; it too checks accesses through the MMU
//!    notifiers.
//! 3. `clear_refs` (1) and the smaps `Referenced` count: clears the
//!    accessed bits of the process's own page tables
//!    (`clear_refs_pte_range` → `ptep_test_and_clear_young`, no MMU
//!    notifier), and smaps counts pages whose PTE is young: a KVM guest's
//!    accesses through EPT/NPT set the EPT accessed bit, not the host
//!    PTE's, so once a page is mapped they go unseen; under TCG every
//!    guest access is QEMU's own load or store and is seen. Counts only,
//!    for the whole guest RAM.
//!
//! Writes come from `PAGEMAP_SCAN`'s `PAGE_IS_WRITTEN` where the VMM
//! registered guest RAM for asynchronous write protection (see
//! [`super::pagemap_scan`]: a profiler cannot register another process's
//! memory), else from soft-dirty (`clear_refs` 4, pagemap bit 55):
//! clearing write-protects the pages and notifies the MMU notifiers
//! (MMU_NOTIFY_SOFT_DIRTY), so a KVM guest's next write faults and is
//! seen too; else from content changes on a sample.

use std::path::Path;

use serde::Serialize;

/// How writes are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMechanism {
    /// `PAGEMAP_SCAN` with `PAGE_IS_WRITTEN`, where the VMM registered its
    /// guest RAM for asynchronous write protection.
    PagemapScan,
    /// `clear_refs` 4 and pagemap bit 55.
    SoftDirty,
    /// A sample of pages hashed at the start of an interval and again at
    /// its end: a page whose content changed was written (KSM tells
    /// volatile pages the same way, by checksum).
    ContentChange,
}

impl WriteMechanism {
    pub fn label(self) -> &'static str {
        match self {
            WriteMechanism::PagemapScan => "PAGEMAP_SCAN with PAGE_IS_WRITTEN (userfaultfd async write protection)",
            WriteMechanism::SoftDirty => "soft-dirty (clear_refs 4, pagemap bit 55)",
            WriteMechanism::ContentChange => "content changes on a sample of pages",
        }
    }

    pub fn sees(self) -> &'static str {
        match self {
            WriteMechanism::PagemapScan => {
                "every page written, a KVM guest's too (write protection goes through the MMU notifiers), per 4 KiB \
                 page of all guest RAM, without reading it; only where the VMM registered its RAM with userfaultfd \
                 for asynchronous write protection"
            }
            WriteMechanism::SoftDirty => {
                "every write, a KVM guest's too (clearing notifies the MMU notifiers, so the guest's next write \
                 faults); in 2 MiB units on transparent huge pages"
            }
            WriteMechanism::ContentChange => {
                "writes that change a sampled page's bytes; a write that stores what was there is missed, so \
                 the share is a lower bound (this kernel has no soft-dirty: CONFIG_MEM_SOFT_DIRTY is off)"
            }
        }
    }
}

/// How working sets are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WssMechanism {
    IdlePage,
    Damon,
    ClearRefs,
}

impl WssMechanism {
    pub fn label(self) -> &'static str {
        match self {
            WssMechanism::IdlePage => "idle page tracking",
            WssMechanism::Damon => "DAMON (virtual-address monitoring)",
            WssMechanism::ClearRefs => "clear_refs and smaps Referenced",
        }
    }

    /// What it sees and what it cannot, in a sentence for the output.
    pub fn sees(self) -> &'static str {
        match self {
            WssMechanism::IdlePage => {
                "every access, a KVM guest's through EPT/NPT too (idle marking clears accessed bits through the MMU \
                 notifiers); a sample of pages, by their frame numbers"
            }
            WssMechanism::Damon => {
                "access frequency of adaptive regions of the process, a KVM guest's accesses too (DAMON checks \
                 through the MMU notifiers); region-sized, not page-sized"
            }
            WssMechanism::ClearRefs => {
                "accesses through QEMU's own page tables: all of a TCG guest's, but not what a KVM guest touches \
                 through EPT/NPT once a page is mapped (clear_refs and smaps see only the host PTE's accessed bit); \
                 counts for the whole guest RAM, in 2 MiB units where it is on transparent huge pages"
            }
        }
    }
}

/// What the host offers, read under `root` (`/` on a real host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Available {
    pub idle_page: bool,
    pub damon_sysfs: bool,
    /// kdamonds already running (someone else's: DAMON is then left
    /// alone, since reconfiguring would tear theirs down).
    pub damon_in_use: u32,
    /// DAMON's vaddr operations are built in (CONFIG_DAMON_VADDR in the
    /// kernel's config, where it can be read; `None`: not known).
    pub damon_vaddr: Option<bool>,
    pub soft_dirty: Option<bool>,
    /// Where the kernel's config was read from, if anywhere.
    pub config_source: Option<String>,
}

/// The kernel's build options, from `/boot/config-RELEASE` (the
/// compressed `/proc/config.gz` is not read). Soft-dirty is probed on
/// this process instead (see [`soft_dirty_works`]).
fn kernel_config(root: &Path) -> Option<(String, String)> {
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease")).ok()?;
    let path = format!("boot/config-{}", release.trim());
    std::fs::read_to_string(root.join(&path)).ok().map(|t| (format!("/{path}"), t))
}

fn config_says(text: &str, option: &str) -> bool {
    text.lines().any(|l| l.trim() == format!("{option}=y"))
}

pub fn available(root: &Path) -> Available {
    let config = kernel_config(root);
    let opt = |name: &str| config.as_ref().map(|(_, t)| config_says(t, name));
    Available {
        // Usable only where this process may write it (root): marking
        // needs the write, and frame numbers from pagemap need
        // CAP_SYS_ADMIN too.
        idle_page: std::fs::OpenOptions::new().write(true).open(root.join("sys/kernel/mm/page_idle/bitmap")).is_ok(),
        damon_sysfs: root.join("sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds").exists(),
        damon_in_use: super::damon::running(root).unwrap_or(0),
        damon_vaddr: opt("CONFIG_DAMON_VADDR"),
        soft_dirty: opt("CONFIG_MEM_SOFT_DIRTY"),
        config_source: config.map(|(p, _)| p),
    }
}

/// The best mechanism `a` offers; DAMON only where its vaddr operations
/// are known to be there (a kernel built with DAMON but only its physical
/// address operations cannot watch a process).
pub fn choose(a: &Available) -> WssMechanism {
    if a.idle_page {
        WssMechanism::IdlePage
    } else if a.damon_sysfs && a.damon_vaddr == Some(true) && a.damon_in_use == 0 {
        WssMechanism::Damon
    } else {
        WssMechanism::ClearRefs
    }
}

/// Whether soft-dirty tracking works here: clear this process's bits,
/// write a page of its own, and see whether pagemap marks it (with
/// CONFIG_MEM_SOFT_DIRTY off, clear_refs 4 is accepted but bit 55 never
/// comes on).
pub fn soft_dirty_works() -> bool {
    let root = Path::new("/");
    let pid = std::process::id();
    let mut page = vec![0u8; 8192];
    let addr = (page.as_ptr() as u64).div_ceil(4096) * 4096;
    let at = (addr - page.as_ptr() as u64) as usize;
    page[at] = 1;
    if super::procfs::clear_refs(root, pid, super::procfs::ClearRefs::SoftDirty).is_err() {
        return false;
    }
    page[at] = std::hint::black_box(2);
    let dirty = super::procfs::Pagemap::open(root, pid).and_then(|p| p.entry(addr)).is_ok_and(|e| e.soft_dirty());
    std::hint::black_box(&page);
    dirty
}

/// The write mechanism: `PAGEMAP_SCAN` where every guest's RAM is
/// registered for asynchronous write protection (the one way to see
/// PAGE_IS_WRITTEN, and exact), else soft-dirty where it works, else
/// content changes.
pub fn choose_writes(all_wp_async: bool, soft_dirty: bool) -> WriteMechanism {
    if all_wp_async {
        WriteMechanism::PagemapScan
    } else if soft_dirty {
        WriteMechanism::SoftDirty
    } else {
        WriteMechanism::ContentChange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, path: &str, text: &str) {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_best_mechanism_the_host_has_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "proc/sys/kernel/osrelease", "6.18.0-test\n");
        put(
            root,
            "boot/config-6.18.0-test",
            "CONFIG_DAMON=y\nCONFIG_DAMON_PADDR=y\n# CONFIG_DAMON_VADDR is not set\nCONFIG_MEM_SOFT_DIRTY=y\n",
        );
        put(root, "sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds", "0\n");
        let a = available(root);
        assert_eq!(a.damon_in_use, 0);
        assert_eq!((a.damon_sysfs, a.damon_vaddr, a.soft_dirty), (true, Some(false), Some(true)));
        // DAMON without vaddr cannot watch a process: the fallback.
        assert_eq!(choose(&a), WssMechanism::ClearRefs);
        put(root, "boot/config-6.18.0-test", "CONFIG_DAMON=y\nCONFIG_DAMON_VADDR=y\n");
        assert_eq!(choose(&available(root)), WssMechanism::Damon);
        // Someone else's kdamond runs: DAMON is left alone.
        put(root, "sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds", "1\n");
        assert_eq!(choose(&available(root)), WssMechanism::ClearRefs);
        put(root, "sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds", "0\n");
        put(root, "sys/kernel/mm/page_idle/bitmap", "");
        assert_eq!(choose(&available(root)), WssMechanism::IdlePage);
    }

    #[test]
    fn writes_prefer_pagemap_scan_then_soft_dirty_then_content() {
        // The order PAGEMAP_SCAN(2const) and soft-dirty.rst make sensible:
        // PAGE_IS_WRITTEN only where every guest's RAM is registered.
        assert_eq!(choose_writes(true, true), WriteMechanism::PagemapScan);
        assert_eq!(choose_writes(false, true), WriteMechanism::SoftDirty);
        assert_eq!(choose_writes(false, false), WriteMechanism::ContentChange);
    }
}
