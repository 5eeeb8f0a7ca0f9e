//! DAMON's sysfs interface (Documentation/admin-guide/mm/damon/usage.rst),
//! for watching a QEMU process's virtual address space: one kdamond per
//! guest with `vaddr` operations and a `stat` scheme (which does nothing
//! but lets the regions it tried be read back: `start`, `end`,
//! `nr_accesses`, `age`). A region counts towards the working set of an
//! aggregation interval when DAMON saw it accessed in at least one of its
//! samples (`nr_accesses` > 0).
//!
//! A kdamond someone else runs is never touched: writing `nr_kdamonds`
//! would tear it down, so DAMON is used only when none is running.

use std::io;
use std::path::{Path, PathBuf};

const ADMIN: &str = "sys/kernel/mm/damon/admin";

fn admin(root: &Path) -> PathBuf {
    root.join(ADMIN)
}

fn write(path: PathBuf, value: &str) -> io::Result<()> {
    std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// kdamonds running now (someone else's, if we have not started any).
pub fn running(root: &Path) -> io::Result<u32> {
    let text = std::fs::read_to_string(admin(root).join("kdamonds/nr_kdamonds"))?;
    Ok(text.trim().parse().unwrap_or(0))
}

/// Set up and start one kdamond per process in `pids`, sampling every
/// `sample_us` and aggregating over `aggr_us`.
pub fn start(root: &Path, pids: &[u32], sample_us: u64, aggr_us: u64) -> io::Result<()> {
    // A failure part way leaves nothing of ours running.
    set_up(root, pids, sample_us, aggr_us).inspect_err(|_| stop(root, pids.len()))
}

fn set_up(root: &Path, pids: &[u32], sample_us: u64, aggr_us: u64) -> io::Result<()> {
    let a = admin(root);
    write(a.join("kdamonds/nr_kdamonds"), &pids.len().to_string())?;
    for (k, pid) in pids.iter().enumerate() {
        let kd = a.join(format!("kdamonds/{k}"));
        write(kd.join("contexts/nr_contexts"), "1")?;
        let ctx = kd.join("contexts/0");
        write(ctx.join("operations"), "vaddr")?;
        write(ctx.join("monitoring_attrs/intervals/sample_us"), &sample_us.to_string())?;
        write(ctx.join("monitoring_attrs/intervals/aggr_us"), &aggr_us.to_string())?;
        write(ctx.join("monitoring_attrs/intervals/update_us"), "1000000")?;
        write(ctx.join("monitoring_attrs/nr_regions/min"), "100")?;
        write(ctx.join("monitoring_attrs/nr_regions/max"), "10000")?;
        write(ctx.join("targets/nr_targets"), "1")?;
        write(ctx.join("targets/0/pid_target"), &pid.to_string())?;
        write(ctx.join("schemes/nr_schemes"), "1")?;
        write(ctx.join("schemes/0/action"), "stat")?;
        // A new scheme's access pattern is min = max = 0 for size,
        // accesses and age (damon_sysfs_ul_range_alloc(0, 0) in
        // mm/damon/sysfs-schemes.c), which no real region matches: open
        // every range so every region is tried, and so read back.
        for range in ["sz", "nr_accesses", "age"] {
            write(ctx.join(format!("schemes/0/access_pattern/{range}/min")), "0")?;
            write(ctx.join(format!("schemes/0/access_pattern/{range}/max")), &u64::MAX.to_string())?;
        }
        write(kd.join("state"), "on")?;
    }
    Ok(())
}

/// Change every kdamond's aggregation interval while it runs.
pub fn set_aggregation(root: &Path, kdamonds: usize, aggr_us: u64) -> io::Result<()> {
    let a = admin(root);
    for k in 0..kdamonds {
        let kd = a.join(format!("kdamonds/{k}"));
        write(kd.join("contexts/0/monitoring_attrs/intervals/aggr_us"), &aggr_us.to_string())?;
        write(kd.join("state"), "commit")?;
    }
    Ok(())
}

/// One region DAMON tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub nr_accesses: u64,
}

/// Ask kdamond `k` for its regions and read them.
pub fn regions(root: &Path, k: usize) -> io::Result<Vec<Region>> {
    let kd = admin(root).join(format!("kdamonds/{k}"));
    // The keyword refreshes tried_regions/ (a fake tree ignores it).
    let _ = std::fs::write(kd.join("state"), "update_schemes_tried_regions");
    let dir = kd.join("contexts/0/schemes/0/tried_regions");
    let mut out = Vec::new();
    let mut entries: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).map(|n| (n, e.path())))
        .collect();
    entries.sort();
    for (_, p) in entries {
        let num = |f: &str| -> u64 {
            std::fs::read_to_string(p.join(f)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
        };
        out.push(Region { start: num("start"), end: num("end"), nr_accesses: num("nr_accesses") });
    }
    Ok(out)
}

/// Bytes of the ranges `within` that lie in regions DAMON saw accessed.
pub fn accessed_bytes(regions: &[Region], within: &[(u64, u64)]) -> u64 {
    regions
        .iter()
        .filter(|r| r.nr_accesses > 0)
        .map(|r| within.iter().map(|&(a, b)| r.end.min(b).saturating_sub(r.start.max(a))).sum::<u64>())
        .sum()
}

/// Stop and remove the kdamonds this profiler started.
pub fn stop(root: &Path, kdamonds: usize) {
    let a = admin(root);
    for k in 0..kdamonds {
        let _ = std::fs::write(a.join(format!("kdamonds/{k}/state")), "off");
    }
    let _ = std::fs::write(a.join("kdamonds/nr_kdamonds"), "0");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directories the kernel creates when `nr_*` files are written;
    /// a recorded tree holds them already.
    fn tree(root: &Path, kdamonds: usize) {
        for k in 0..kdamonds {
            let ctx = root.join(format!("{ADMIN}/kdamonds/{k}/contexts/0"));
            for d in [
                "monitoring_attrs/intervals",
                "monitoring_attrs/nr_regions",
                "targets/0",
                "schemes/0/tried_regions",
                "schemes/0/access_pattern/sz",
                "schemes/0/access_pattern/nr_accesses",
                "schemes/0/access_pattern/age",
            ] {
                std::fs::create_dir_all(ctx.join(d)).unwrap();
            }
        }
        std::fs::write(root.join(format!("{ADMIN}/kdamonds/nr_kdamonds")), "0\n").unwrap();
    }

    #[test]
    fn a_kdamond_per_guest_is_set_up_as_the_usage_document_says() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        tree(root, 2);
        assert_eq!(running(root).unwrap(), 0);
        start(root, &[100, 200], 5_000, 1_000_000).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(ADMIN).join(p)).unwrap();
        assert_eq!(read("kdamonds/nr_kdamonds"), "2");
        assert_eq!(read("kdamonds/1/contexts/0/operations"), "vaddr");
        assert_eq!(read("kdamonds/1/contexts/0/targets/0/pid_target"), "200");
        assert_eq!(read("kdamonds/0/contexts/0/monitoring_attrs/intervals/sample_us"), "5000");
        assert_eq!(read("kdamonds/0/contexts/0/schemes/0/action"), "stat");
        // Every region is tried: the kernel's default pattern (all ranges
        // 0..0) matches none.
        assert_eq!(read("kdamonds/0/contexts/0/schemes/0/access_pattern/sz/max"), u64::MAX.to_string());
        assert_eq!(read("kdamonds/1/contexts/0/schemes/0/access_pattern/age/max"), u64::MAX.to_string());
        assert_eq!(read("kdamonds/0/state"), "on");
        set_aggregation(root, 2, 4_000_000).unwrap();
        assert_eq!(read("kdamonds/0/contexts/0/monitoring_attrs/intervals/aggr_us"), "4000000");
        assert_eq!(read("kdamonds/0/state"), "commit");
    }

    #[test]
    fn the_working_set_is_the_accessed_regions_inside_guest_ram() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        tree(root, 1);
        let tried = root.join(format!("{ADMIN}/kdamonds/0/contexts/0/schemes/0/tried_regions"));
        // Three regions as the kernel writes them: two accessed.
        for (i, (s, e, n)) in
            [(0x1000u64, 0x5000u64, 3u64), (0x5000, 0x9000, 0), (0x9000, 0x20000, 1)].iter().enumerate()
        {
            let d = tried.join(i.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("start"), format!("{s}\n")).unwrap();
            std::fs::write(d.join("end"), format!("{e}\n")).unwrap();
            std::fs::write(d.join("nr_accesses"), format!("{n}\n")).unwrap();
        }
        let r = regions(root, 0).unwrap();
        assert_eq!(r.len(), 3);
        // Guest RAM is 0x2000..0x10000: 0x3000 of the first region and
        // 0x7000 of the third are inside and accessed.
        assert_eq!(accessed_bytes(&r, &[(0x2000, 0x10000)]), 0x3000 + 0x7000);
    }
}
