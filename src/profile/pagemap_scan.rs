//! Writes through the pagemap's `PAGEMAP_SCAN` ioctl (Linux 6.7): where a
//! process has registered its memory with userfaultfd for asynchronous
//! write protection (`UFFD_FEATURE_WP_ASYNC`, `UFFDIO_REGISTER_MODE_WP`),
//! the ioctl on its `/proc/PID/pagemap` write-protects the pages
//! (`PM_SCAN_WP_MATCHING`) and later reports those written since
//! (`PAGE_IS_WRITTEN`), per 4 KiB page, for the whole range, in one call
//! and without reading a byte of the guest's memory. A write to a
//! protected page takes a minor fault that the kernel resolves itself (no
//! userfaultfd reader needed).
//!
//! `PAGE_IS_WRITTEN` is reported only inside such registered ranges
//! (PAGEMAP_SCAN(2const); Documentation/admin-guide/mm/pagemap.rst), and a
//! userfaultfd registers only its creator's memory: the profiler cannot
//! register QEMU's guest RAM from outside, so this serves a VMM that
//! registered it itself, which `PAGE_IS_WPALLOWED` on every page tells.
//! [`register_wp_async`] is that registration, for the profiler's own
//! test processes.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, opcode};

/// `struct pm_scan_arg` (include/uapi/linux/fs.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

/// Page categories (`PAGE_IS_*`).
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// `PM_SCAN_WP_MATCHING`: write-protect the pages that match.
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// `PM_SCAN_CHECK_WPASYNC`: fail if a page is not async-protectable.
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// `PAGEMAP_SCAN` = `_IOWR('f', 16, struct pm_scan_arg)`, returning the
/// number of regions it filled.
struct Scan<'a>(&'a mut PmScanArg);

unsafe impl Ioctl for Scan<'_> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        opcode::read_write::<PmScanArg>(b'f', 16)
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        (self.0 as *mut PmScanArg).cast()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut std::ffi::c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

fn scan(pagemap: &File, arg: &mut PmScanArg) -> io::Result<usize> {
    arg.size = std::mem::size_of::<PmScanArg>() as u64;
    // SAFETY: `arg` is a valid pm_scan_arg whose `vec` (when set) points
    // at `vec_len` writable page_region records that outlive the call.
    let n = unsafe { rustix::ioctl::ioctl(pagemap.as_fd(), Scan(arg)) }.map_err(io::Error::from)?;
    Ok(n.max(0) as usize)
}

/// 4 KiB pages in `regions`.
pub fn pages_in(regions: &[PageRegion]) -> u64 {
    regions.iter().map(|r| r.end.saturating_sub(r.start) / 4096).sum()
}

/// Pages of `[start, end)` whose categories include all of `mask`,
/// walking the range in as many calls as the region buffer needs.
pub fn count(pagemap: &File, start: u64, end: u64, mask: u64) -> io::Result<u64> {
    let mut vec = vec![PageRegion::default(); 512];
    let mut at = start;
    let mut pages = 0;
    while at < end {
        let mut arg = PmScanArg {
            start: at,
            end,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            category_mask: mask,
            return_mask: mask,
            ..PmScanArg::default()
        };
        let n = scan(pagemap, &mut arg)?;
        pages += pages_in(&vec[..n.min(vec.len())]);
        if arg.walk_end <= at {
            break;
        }
        at = arg.walk_end;
    }
    Ok(pages)
}

/// Write-protect every page of `[start, end)` again (they count as
/// unwritten until the next write); fails unless the whole range is
/// registered for asynchronous write protection.
pub fn protect(pagemap: &File, start: u64, end: u64) -> io::Result<()> {
    let mut arg = PmScanArg { start, end, flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, ..PmScanArg::default() };
    scan(pagemap, &mut arg).map(|_| ())
}

/// `struct uffdio_api` and `struct uffdio_register`.
#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

struct Call<'a, T>(&'a mut T, u8);

unsafe impl<T> Ioctl for Call<'_, T> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        opcode::read_write::<T>(0xAA, self.1)
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        (self.0 as *mut T).cast()
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut std::ffi::c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// Register `[addr, addr + len)` of this process for asynchronous write
/// protection, as a VMM would to let `PAGEMAP_SCAN` see its writes: a
/// userfaultfd for user-mode faults (`UFFD_USER_MODE_ONLY`, which needs no
/// privilege), `UFFDIO_API` with `UFFD_FEATURE_WP_ASYNC` and
/// `UFFD_FEATURE_WP_UNPOPULATED`, then `UFFDIO_REGISTER` in WP mode. The
/// registration lasts while the returned descriptor is open.
pub fn register_wp_async(addr: u64, len: u64) -> io::Result<OwnedFd> {
    use rustix::mm::UserfaultfdFlags;
    // SAFETY: a new descriptor; nothing else is affected.
    let fd = unsafe {
        // UFFD_USER_MODE_ONLY (1, include/uapi/linux/userfaultfd.h), which
        // this rustix has no name for.
        rustix::mm::userfaultfd(
            UserfaultfdFlags::CLOEXEC | UserfaultfdFlags::NONBLOCK | UserfaultfdFlags::from_bits_retain(1),
        )
    }
    .map_err(io::Error::from)?;
    const UFFD_API: u64 = 0xAA;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    let mut api = UffdioApi { api: UFFD_API, features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, ioctls: 0 };
    // SAFETY: UFFDIO_API (nr 0x3F) reads and writes a uffdio_api.
    unsafe { rustix::ioctl::ioctl(&fd, Call(&mut api, 0x3F)) }.map_err(io::Error::from)?;
    let mut reg = UffdioRegister { start: addr, len, mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 };
    // SAFETY: UFFDIO_REGISTER (nr 0x00) reads and writes a uffdio_register
    // for a range of this process's own mappings.
    unsafe { rustix::ioctl::ioctl(&fd, Call(&mut reg, 0x00)) }.map_err(io::Error::from)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_the_kernels_sizes() {
        // include/uapi/linux/fs.h: twelve __u64 and three; the opcode
        // _IOWR('f', 16, struct pm_scan_arg) is 0xC0606610 on x86-64.
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
        assert_eq!(std::mem::size_of::<PageRegion>(), 24);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(opcode::read_write::<PmScanArg>(b'f', 16), 0xC060_6610);
        let r = [
            PageRegion { start: 0x1000, end: 0x5000, categories: 2 },
            PageRegion { start: 0x9000, end: 0xA000, categories: 2 },
        ];
        assert_eq!(pages_in(&r), 5);
    }

    #[test]
    fn written_pages_are_the_ones_this_process_wrote() {
        // The kernel's own semantics on this machine: 256 pages registered
        // for async write protection, all protected, every fourth written:
        // PAGEMAP_SCAN reports those 64 as written and all 256 as
        // WP-allowed; after protecting again, none.
        let len = 256 * 4096;
        let mut map = memmap2::MmapMut::map_anon(len).expect("a mapping");
        map.fill(1);
        let addr = map.as_ptr() as u64;
        let _uffd = match register_wp_async(addr, len as u64) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("skipped: userfaultfd with asynchronous write protection is not available here ({e})");
                return;
            }
        };
        let pagemap = File::open("/proc/self/pagemap").expect("own pagemap");
        if let Err(e) = protect(&pagemap, addr, addr + len as u64) {
            eprintln!("skipped: PAGEMAP_SCAN is not available here ({e})");
            return;
        }
        assert_eq!(count(&pagemap, addr, addr + len as u64, PAGE_IS_WRITTEN).unwrap(), 0);
        for p in (0..256).step_by(4) {
            map[p * 4096 + 8] = 2;
        }
        assert_eq!(count(&pagemap, addr, addr + len as u64, PAGE_IS_WRITTEN).unwrap(), 64);
        assert_eq!(count(&pagemap, addr, addr + len as u64, PAGE_IS_WPALLOWED).unwrap(), 256);
        protect(&pagemap, addr, addr + len as u64).unwrap();
        assert_eq!(count(&pagemap, addr, addr + len as u64, PAGE_IS_WRITTEN).unwrap(), 0);
    }
}
