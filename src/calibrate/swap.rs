//! Swap-in cost on this host's active swap device, measured in a child
//! process held under a memory cgroup limit.
//!
//! The child (this program again, hidden subcommand `swap-child`) maps
//! `1.5 × limit` of anonymous memory, writes every page (so each holds data
//! that must be kept), then reads the first third back: those pages went to
//! swap when the cgroup hit its limit, so each read is a major fault. The
//! time of that pass over the major faults it took (`/proc/self/stat`) is the
//! swap-in cost as a faulting task sees it, with the cgroup's own reclaim
//! of another page included, as a guest under pressure pays it.
//!
//! The cgroup is made for the test and removed after (cgroup v2 when the
//! memory controller is there, else v1's memory hierarchy).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::measure::{Mapping, Spread};

/// Swap-in nanoseconds per major fault over `repeats` children, each under
/// a limit of `limit` bytes; `exe` is the overcommit program (it runs the
/// child side).
pub fn measure(exe: &Path, limit: u64, repeats: usize) -> Result<Spread, String> {
    let swaps = std::fs::read_to_string("/proc/swaps").map_err(|e| format!("/proc/swaps: {e}"))?;
    if swaps.lines().count() < 2 {
        return Err("no active swap device (/proc/swaps is empty)".into());
    }
    let mut v = Vec::new();
    for _ in 0..repeats.max(1) {
        let cg = Cgroup::new(limit)?;
        let mut child = Command::new(exe)
            .args(["swap-child", "--bytes", &(limit + limit / 2).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the swap test child: {e}"))?;
        cg.add(child.id())?;
        // The child starts once it is in the cgroup: its stdin closes.
        drop(child.stdin.take());
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("the swap test child failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let ns: f64 = text.trim().parse().map_err(|_| format!("the swap test child said {text:?}"))?;
        v.push(ns);
    }
    Ok(Spread::of(v))
}

/// The child's side: wait for stdin to close, then fill `bytes` and time
/// the swap-ins of the first third. Prints nanoseconds per major fault.
pub fn child(bytes: u64) -> Result<f64, String> {
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink).map_err(|e| e.to_string())?;
    let bytes = (bytes as usize).div_ceil(4096) * 4096;
    let mut m = Mapping::anon(bytes, 4096, rustix::mm::MapFlags::empty()).map_err(|e| e.to_string())?;
    m.advise(rustix::mm::Advice::LinuxNoHugepage).map_err(|e| e.to_string())?;
    let s = m.as_mut_slice();
    for (i, page) in s.chunks_mut(4096).enumerate() {
        page[..8].copy_from_slice(&(i as u64 + 1).to_ne_bytes());
    }
    let majflt = || majflt().unwrap_or(0);
    let before = majflt();
    let t = std::time::Instant::now();
    let mut sum = 0u64;
    for page in s[..bytes / 3].chunks(4096) {
        // SAFETY: reading a byte of the slice, volatile so it happens.
        sum = sum.wrapping_add(u64::from(unsafe { std::ptr::read_volatile(&page[0]) }));
    }
    let ns = t.elapsed().as_nanos() as f64;
    std::hint::black_box(sum);
    let faults = majflt() - before;
    if faults < 16 {
        return Err(format!("only {faults} major faults: the cgroup limit did not push pages to swap"));
    }
    Ok(ns / faults as f64)
}

/// This process's major faults so far: `/proc/self/stat` field 12
/// (proc(5)), counted after the command name's closing parenthesis.
fn majflt() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(9)?.parse().ok()
}

/// A memory cgroup made for the test, removed on drop.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new(limit: u64) -> Result<Cgroup, String> {
        let name = format!("overcommit-calibrate-{}", std::process::id());
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("memory"));
        let dir =
            if v2 { Path::new("/sys/fs/cgroup").join(&name) } else { Path::new("/sys/fs/cgroup/memory").join(&name) };
        if !v2 && !Path::new("/sys/fs/cgroup/memory").exists() {
            return Err("no memory cgroup controller (neither v2 nor v1's memory hierarchy)".into());
        }
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot make the cgroup {}: {e} (root is needed)", dir.display()))?;
        let cg = Cgroup { dir };
        let (file, value) =
            if v2 { ("memory.max", limit.to_string()) } else { ("memory.limit_in_bytes", limit.to_string()) };
        std::fs::write(cg.dir.join(file), value).map_err(|e| format!("cannot set the cgroup's {file}: {e}"))?;
        Ok(cg)
    }

    fn add(&self, pid: u32) -> Result<(), String> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move the child into the cgroup: {e}"))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The child has exited; an empty cgroup can go. (v1 may need a
        // moment to uncharge.)
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
