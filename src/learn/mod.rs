//! Lessons: the ideas of the article this project grew from (EPT, VPID,
//! FlexPriority, huge pages, swap, balloons, KSM, QEMU's `-m`), each a
//! scenario under `scenarios/learn/` that compares variants, and an
//! explanation computed from the lesson's own runs, in English or Chinese.

use crate::plan::sweep::{SweepError, SweepSpec, SweepTable, execute, plan};
use crate::report::sweep::{combinations, mean};

/// The language of a lesson's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            other => Err(format!("unknown language {other:?}: en or zh")),
        }
    }
}

/// One lesson.
pub struct Lesson {
    pub name: &'static str,
    /// What it asks, in English and Chinese.
    pub question: [&'static str; 2],
    /// The scenario's path in the repository, for `overcommit sweep`.
    pub file: &'static str,
    pub yaml: &'static str,
    /// What the runs showed, from their numbers.
    pub explain: fn(&SweepTable, Lang) -> Vec<String>,
}

pub const LESSONS: &[Lesson] = &[Lesson {
    name: "hugepages",
    question: [
        "What do 2 MiB and 1 GiB pages buy over 4 KiB pages, and what do they cost?",
        "2 MiB 和 1 GiB 大页相比 4 KiB 页能带来什么，又要付出什么代价？",
    ],
    file: "scenarios/learn/hugepages.yaml",
    yaml: include_str!("../../scenarios/learn/hugepages.yaml"),
    explain: hugepages,
}];

pub fn find(name: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.name == name)
}

/// The lesson as a sweep: its scenario's own `sweep:` section.
pub fn spec(lesson: &Lesson) -> Result<SweepSpec, String> {
    let loaded = crate::scenario::load_str(lesson.yaml, lesson.file, lesson.name, &[]).map_err(|e| e.to_string())?;
    let section = loaded.scenario.sweep.ok_or_else(|| format!("{} has no sweep: section", lesson.file))?;
    Ok(SweepSpec {
        text: lesson.yaml.to_string(),
        label: lesson.file.to_string(),
        default_name: lesson.name.to_string(),
        base: vec![],
        vary: section.vary,
        seeds: section.seeds.unwrap_or(1),
        master_seed: None,
        slo: section.slo,
        sample_rate: None,
        costs: Default::default(),
        calibration: None,
    })
}

/// Play a lesson's runs.
pub fn run(lesson: &Lesson, jobs: usize) -> Result<SweepTable, SweepError> {
    let spec = spec(lesson).map_err(SweepError::Usage)?;
    let (meta, runs) = plan(&spec)?;
    execute(&spec, meta, runs, jobs, &|_| {})
}

/// A variant's mean of column `col`, NaN when the variant is missing.
fn at(table: &SweepTable, variant: &str, col: &str) -> f64 {
    combinations(table)
        .iter()
        .find(|(values, _)| values.first().is_some_and(|v| v == variant))
        .map_or(f64::NAN, |(_, rows)| mean(table, rows, col))
}

fn ns(v: f64) -> String {
    crate::report::run::ns(v)
}

fn hugepages(t: &SweepTable, lang: Lang) -> Vec<String> {
    let p99 = |v: &str| at(t, v, "p99_ns");
    let miss = |v: &str| at(t, v, "tlb_miss_ratio") * 100.0;
    let slow = |v: &str| at(t, v, "slowdown_mean");
    let boot = |v: &str| at(t, v, "boot_delay_s") * 1e3;
    let gain = p99("4k") / p99("thp");
    match lang {
        Lang::En => vec![
            format!(
                "With 4 KiB pages the guests' p99 touch latency is {} and their slowdown {:.2}: {:.1}% of \
                 touches miss the TLB, whose few thousand entries cover only megabytes \
                 of their 3 GiB, and each miss walks the guest's and the host's page tables (24 references under EPT).",
                ns(p99("4k")),
                slow("4k"),
                miss("4k")
            ),
            format!(
                "Huge pages on the host alone (thp-host-only) shorten each walk, and p99 falls to {}, but the misses \
                 stay at {:.1}%: a TLB entry maps the smaller of the guest's and the host's page.",
                ns(p99("thp-host-only")),
                miss("thp-host-only")
            ),
            format!(
                "With 2 MiB pages on both sides p99 fell from {} to {} ({gain:.0}× lower) because a 2 MiB page covers \
                 512× more memory per TLB entry: the misses drop to {:.2}% and the slowdown to {:.3}.",
                ns(p99("4k")),
                ns(p99("thp")),
                miss("thp"),
                slow("thp")
            ),
            format!(
                "hugetlbfs gives the same reach ({} with 2 MiB pages, {} with 1 GiB) without THP's first-touch \
                 faults, but the pool is carved from RAM at boot, its pages are never swapped, ballooned or merged, \
                 and -mem-prealloc delayed each guest's start by {:.0} ms (2 MiB) and {:.0} ms (1 GiB).",
                ns(p99("hugetlb-2m")),
                ns(p99("hugetlb-1g")),
                boot("hugetlb-2m"),
                boot("hugetlb-1g")
            ),
        ],
        Lang::Zh => vec![
            format!(
                "使用 4 KiB 页时，客户机访存的 p99 延迟为 {}，减速比为 {:.2}：{:.1}% 的访问未命中 \
                 TLB——TLB 只有几千个表项，只能覆盖 3 GiB 工作集中的几 MB——每次未命中都要遍历客户机和宿主机两级页表（EPT 下 24 次访存）。",
                ns(p99("4k")),
                slow("4k"),
                miss("4k")
            ),
            format!(
                "只在宿主机上使用大页（thp-host-only）会缩短每次页表遍历，p99 降到 {}，但未命中率仍为 {:.1}%：\
                 一个 TLB 表项映射的是客户机页和宿主机页中较小的那个。",
                ns(p99("thp-host-only")),
                miss("thp-host-only")
            ),
            format!(
                "客户机和宿主机都使用 2 MiB 页后，p99 从 {} 降到 {}（低了 {gain:.0} 倍），因为一个 2 MiB 页让每个 TLB 表项\
                 覆盖的内存多 512 倍：未命中率降到 {:.2}%，减速比降到 {:.3}。",
                ns(p99("4k")),
                ns(p99("thp")),
                miss("thp"),
                slow("thp")
            ),
            format!(
                "hugetlbfs 提供同样的覆盖范围（2 MiB 页 {}，1 GiB 页 {}），且没有 THP 的首次访问缺页；代价是大页池在启动时\
                 就从内存中划出，其中的页永远不会被换出、气球回收或 KSM 合并，而且 -mem-prealloc 让每个客户机的启动推迟了 \
                 {:.0} ms（2 MiB）和 {:.0} ms（1 GiB）。",
                ns(p99("hugetlb-2m")),
                ns(p99("hugetlb-1g")),
                boot("hugetlb-2m"),
                boot("hugetlb-1g")
            ),
        ],
    }
}
