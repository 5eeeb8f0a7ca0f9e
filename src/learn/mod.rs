//! Lessons: the ideas of the article this project grew from (EPT, VPID,
//! FlexPriority, huge pages, swap, balloons, KSM, QEMU's `-m`), each a
//! scenario under `scenarios/learn/` that compares variants, and an
//! explanation computed from the lesson's own runs, in English or Chinese.

use crate::plan::sweep::{SweepError, SweepSpec, SweepTable, execute, plan};
use crate::report::sweep::{combinations, mean};
use crate::scenario::Scenario;

const GIB: f64 = (1u64 << 30) as f64;

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
    /// What the runs showed, from their numbers (and the lesson's
    /// scenario, for what it predicts).
    pub explain: fn(&SweepTable, &Scenario, Lang) -> Vec<String>,
}

pub const LESSONS: &[Lesson] = &[
    Lesson {
        name: "ept-vs-shadow",
        question: [
            "When do EPT's two-dimensional page walks cost more than shadow paging's VM exits, and when less?",
            "EPT 的二维页表遍历什么时候比影子页表的 VM exit 更贵，什么时候更便宜？",
        ],
        file: "scenarios/learn/ept-vs-shadow.yaml",
        yaml: include_str!("../../scenarios/learn/ept-vs-shadow.yaml"),
        explain: ept_vs_shadow,
    },
    Lesson {
        name: "vpid",
        question: ["What does VPID save a guest that exits often?", "对频繁发生 VM exit 的客户机，VPID 能省下什么？"],
        file: "scenarios/learn/vpid.yaml",
        yaml: include_str!("../../scenarios/learn/vpid.yaml"),
        explain: vpid,
    },
    Lesson {
        name: "flexpriority",
        question: [
            "What does FlexPriority (TPR shadowing) save an interrupt-heavy guest?",
            "对中断频繁的客户机，FlexPriority（TPR 影子）能省下什么？",
        ],
        file: "scenarios/learn/flexpriority.yaml",
        yaml: include_str!("../../scenarios/learn/flexpriority.yaml"),
        explain: flexpriority,
    },
    Lesson {
        name: "ksm",
        question: [
            "How much does KSM save guests from one image, how soon, and at what CPU cost?",
            "对同一镜像启动的客户机，KSM 能省下多少内存、多快、要花多少 CPU？",
        ],
        file: "scenarios/learn/ksm.yaml",
        yaml: include_str!("../../scenarios/learn/ksm.yaml"),
        explain: ksm,
    },
    Lesson {
        name: "ksm-thp",
        question: [
            "KSM on guests backed by huge pages: does it save as much, and what does it take from the huge pages?",
            "客户机内存由大页支撑时，KSM 还能省下同样多的内存吗？它又从大页那里拿走了什么？",
        ],
        file: "scenarios/learn/ksm-thp.yaml",
        yaml: include_str!("../../scenarios/learn/ksm-thp.yaml"),
        explain: ksm_thp,
    },
    Lesson {
        name: "swap",
        question: [
            "What does the same overcommit cost on a hard disk, a SATA SSD, an NVMe drive and zram?",
            "同样的超分配，放在机械硬盘、SATA SSD、NVMe 和 zram 上各要付出什么？",
        ],
        file: "scenarios/learn/swap.yaml",
        yaml: include_str!("../../scenarios/learn/swap.yaml"),
        explain: swap,
    },
    Lesson {
        name: "balloon",
        question: [
            "Can ballooning hand idle guest memory back before the host has to swap?",
            "气球能否在宿主机不得不换出之前，把客户机闲置的内存交还回来？",
        ],
        file: "scenarios/learn/balloon.yaml",
        yaml: include_str!("../../scenarios/learn/balloon.yaml"),
        explain: balloon,
    },
    Lesson {
        name: "reclaim",
        question: [
            "When the host runs short, whose memory goes: the guest that started first, or every guest alike?",
            "宿主机内存不足时，谁的内存被拿走：最先启动的客户机，还是每个客户机一样多？",
        ],
        file: "scenarios/learn/reclaim.yaml",
        yaml: include_str!("../../scenarios/learn/reclaim.yaml"),
        explain: reclaim,
    },
    Lesson {
        name: "qemu-m",
        question: [
            "What do -m, -mem-prealloc, -mem-path and maxmem on a QEMU command line cost the host?",
            "QEMU 命令行里的 -m、-mem-prealloc、-mem-path 和 maxmem 会让宿主机付出什么？",
        ],
        file: "scenarios/learn/qemu-m.yaml",
        yaml: include_str!("../../scenarios/learn/qemu-m.yaml"),
        explain: qemu_m,
    },
    Lesson {
        name: "mix",
        question: [
            "Packing guests ever more densely: which of swap, balloons and KSM keeps p99 under 50 µs the longest?",
            "客户机越装越密时，交换、气球和 KSM 中哪一种能让 p99 最久地保持在 50 µs 以下？",
        ],
        file: "scenarios/learn/mix.yaml",
        yaml: include_str!("../../scenarios/learn/mix.yaml"),
        explain: mix,
    },
    Lesson {
        name: "hugepages",
        question: [
            "What do 2 MiB and 1 GiB pages buy over 4 KiB pages, and what do they cost?",
            "2 MiB 和 1 GiB 大页相比 4 KiB 页能带来什么，又要付出什么代价？",
        ],
        file: "scenarios/learn/hugepages.yaml",
        yaml: include_str!("../../scenarios/learn/hugepages.yaml"),
        explain: hugepages,
    },
];

pub fn find(name: &str) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.name == name)
}

/// The lesson as a sweep: its scenario's own `sweep:` section.
pub fn spec(lesson: &Lesson) -> Result<SweepSpec, String> {
    let loaded = crate::scenario::load_str(lesson.yaml, lesson.file, lesson.name, &[]).map_err(|e| e.to_string())?;
    let section = loaded.scenario.sweep.ok_or_else(|| format!("{} has no sweep: section", lesson.file))?;
    Ok(SweepSpec {
        inputs: crate::plan::Inputs {
            text: lesson.yaml.to_string(),
            label: lesson.file.to_string(),
            default_name: lesson.name.to_string(),
            base: vec![],
            master_seed: None,
            sample_rate: None,
            mode: crate::engine::Mode::Touches,
            costs: Default::default(),
            calibration: None,
        },
        vary: section.vary,
        seeds: section.seeds.unwrap_or(1),
        slo: section.slo,
    })
}

/// Play a lesson's runs; its table and its scenario.
pub fn run(lesson: &Lesson, jobs: usize) -> Result<(SweepTable, Scenario), SweepError> {
    let spec = spec(lesson).map_err(SweepError::Usage)?;
    let (meta, runs) = plan(&spec)?;
    let base = runs.first().map(|r| r.scenario.clone()).ok_or_else(|| SweepError::Usage("no runs".into()))?;
    Ok((execute(&spec, meta, runs, jobs, &|_| {})?, base))
}

/// A variant's mean of column `col`, NaN when the variant is missing.
fn at(table: &SweepTable, variant: &str, col: &str) -> f64 {
    at2(table, &[variant], col)
}

/// The mean of column `col` over the combination whose varied values
/// start with `values`.
fn at2(table: &SweepTable, values: &[&str], col: &str) -> f64 {
    combinations(table)
        .iter()
        .find(|(v, _)| v.iter().zip(values).all(|(a, b)| a == b))
        .map_or(f64::NAN, |(_, rows)| mean(rows, col))
}

/// Percent more time than the guest's compute: (slowdown − 1) × 100.
fn extra(slowdown: f64) -> f64 {
    (slowdown - 1.0) * 100.0
}

fn ept_vs_shadow(t: &SweepTable, _: &Scenario, lang: Lang) -> Vec<String> {
    let slow = |w: &str, ept: &str| at2(t, &[w, ept], "slowdown");
    let mean_ns = |w: &str, ept: &str| at2(t, &[w, ept], "mean_ns");
    let (pe, ps) = (slow("pt-heavy", "true"), slow("pt-heavy", "false"));
    let (te, ts) = (slow("tlb-heavy", "true"), slow("tlb-heavy", "false"));
    match lang {
        Lang::En => vec![
            format!(
                "The page-table-heavy guest (20k updates a second, a working set the TLB covers) loses {:.1}% of \
                 its time under EPT and {:.1}% under shadow paging: every update it makes to its page tables traps \
                 to KVM so the shadow can follow, while its few TLB misses cost EPT little.",
                extra(pe),
                extra(ps)
            ),
            format!(
                "The TLB-heavy guest (2 GiB touched uniformly, nearly every touch a miss) loses {:.1}% under EPT and \
                 {:.1}% under shadow paging; its mean touch takes {:.0} ns against {:.0} ns: each miss walks up to \
                 24 entries under EPT and 4 under the shadow table, and it rarely updates its page tables.",
                extra(te),
                extra(ts),
                mean_ns("tlb-heavy", "true"),
                mean_ns("tlb-heavy", "false")
            ),
            format!(
                "So shadow paging costs {} for the page-table-heavy guest and {} for the TLB-heavy one. Huge pages \
                 (the hugepages lesson) shorten EPT's walks and make most misses go away, which is why KVM uses \
                 EPT, with huge pages where it can.",
                if ps > pe { "more" } else { "no more" },
                if ts < te { "less" } else { "no less" }
            ),
        ],
        Lang::Zh => vec![
            format!(
                "页表更新频繁的客户机（每秒 2 万次更新，工作集在 TLB 覆盖范围内）在 EPT 下损失 {:.1}% 的时间，在影子页表下损失 \
                 {:.1}%：它每次修改页表都会陷入 KVM 以便同步影子页表，而它少量的 TLB 未命中对 EPT 几乎没有代价。",
                extra(pe),
                extra(ps)
            ),
            format!(
                "TLB 未命中频繁的客户机（均匀访问 2 GiB，几乎每次都未命中）在 EPT 下损失 {:.1}%，在影子页表下损失 {:.1}%；\
                 平均每次访存 {:.0} ns 对 {:.0} ns：EPT 下每次未命中最多要读 24 个页表项，影子页表下只要 4 个，而它很少更新页表。",
                extra(te),
                extra(ts),
                mean_ns("tlb-heavy", "true"),
                mean_ns("tlb-heavy", "false")
            ),
            format!(
                "所以影子页表对页表更新频繁的客户机{}，对 TLB 未命中频繁的客户机{}。大页（见 hugepages 一课）能缩短 EPT 的页表遍历\
                 并消除大部分未命中，这正是 KVM 使用 EPT、并尽可能配合大页的原因。",
                if ps > pe { "更贵" } else { "并不更贵" },
                if ts < te { "更便宜" } else { "并不更便宜" }
            ),
        ],
    }
}

fn swap(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    let p99 = |v: &str| at(t, v, "p99_ns");
    let slow = |v: &str| at(t, v, "slowdown");
    let usable = s.host.usable_for_4k().bytes() as f64 / GIB;
    let busy: f64 =
        s.guests.iter().map(|g| g.workload.working_set.bytes() as f64 * f64::from(g.count)).sum::<f64>() / GIB;
    let warmup = s.warmup.as_secs_f64();
    let times = p99("hdd") / p99("nvme");
    match lang {
        Lang::En => vec![
            format!(
                "The guests keep {busy:.1} GiB busy on {usable:.1} GiB of RAM, so a few percent of their touches find \
                 the page in swap and wait for the device. Measured after the first {warmup:.0} s, once memory is \
                 full:"
            ),
            format!(
                "On the NVMe drive such a touch waits about 80 µs: p99 is {} and the guests lose {:.0}% of their time \
                 (slowdown {:.2}). The SATA SSD answers in about 100 µs and shares its single queue with page-outs: \
                 p99 {}, slowdown {:.2}.",
                ns(p99("nvme")),
                extra(slow("nvme")),
                slow("nvme"),
                ns(p99("ssd")),
                slow("ssd")
            ),
            format!(
                "On the hard disk every swap-in is a seek of about 12.7 ms, the disk serves one at a time and \
                 page-outs take a third of it: p99 is {} ({times:.0}× the NVMe's) and the slowdown {:.0}: the guests \
                 spend {:.1}% of their time waiting. Swap on a disk keeps guests alive, not working.",
                ns(p99("hdd")),
                slow("hdd"),
                (1.0 - 1.0 / slow("hdd")) * 100.0
            ),
            format!(
                "zram answers from RAM in microseconds: p99 {}, slowdown {:.2}. Its price is RAM: compressed pages \
                 still take about a third of their size, so less is left for the guests and more of their touches \
                 fault ({:.0} major faults a second against {:.0} on NVMe), each one cheap.",
                ns(p99("zram")),
                slow("zram"),
                at(t, "zram", "major_faults_per_s"),
                at(t, "nvme", "major_faults_per_s")
            ),
        ],
        Lang::Zh => vec![
            format!(
                "客户机在 {usable:.1} GiB 内存上保持 {busy:.1} GiB 的活跃数据，所以有百分之几的访问会发现页面在交换区里，\
                 只能等设备读回。以下数字在前 {warmup:.0} 秒预热之后、内存已满时测得："
            ),
            format!(
                "在 NVMe 上，这样一次访问要等约 80 µs：p99 为 {}，客户机损失 {:.0}% 的时间（减速比 {:.2}）。\
                 SATA SSD 约 100 µs 返回，而且只有一个队列要与换出共享：p99 {}，减速比 {:.2}。",
                ns(p99("nvme")),
                extra(slow("nvme")),
                slow("nvme"),
                ns(p99("ssd")),
                slow("ssd")
            ),
            format!(
                "在机械硬盘上，每次换入都是一次约 12.7 ms 的寻道，磁盘一次只能服务一个请求，换出还要占去三分之一：\
                 p99 为 {}（是 NVMe 的 {times:.0} 倍），减速比 {:.0}：客户机 {:.1}% 的时间都在等待。\
                 用机械硬盘做交换区只能让客户机活着，却干不了活。",
                ns(p99("hdd")),
                slow("hdd"),
                (1.0 - 1.0 / slow("hdd")) * 100.0
            ),
            format!(
                "zram 从内存中返回页面，只要几微秒：p99 {}，减速比 {:.2}。代价是内存：压缩后的页面仍占原大小的约三分之一，\
                 留给客户机的内存更少，缺页更多（每秒 {:.0} 次主缺页，NVMe 上为 {:.0} 次），只是每次都很便宜。",
                ns(p99("zram")),
                slow("zram"),
                at(t, "zram", "major_faults_per_s"),
                at(t, "nvme", "major_faults_per_s")
            ),
        ],
    }
}

fn vpid(t: &SweepTable, _: &Scenario, lang: Lang) -> Vec<String> {
    let slow = |v: &str| at(t, v, "slowdown");
    let miss = |v: &str| at(t, v, "tlb_miss_ratio") * 100.0;
    let p50 = |v: &str| at(t, v, "p50_ns");
    match lang {
        Lang::En => vec![
            format!(
                "With VPID the guests' TLB keeps its entries across their 20 000 exits a second: {:.1}% of touches \
                 miss it, the median touch takes {}, and they lose {:.1}% of their time.",
                miss("true"),
                ns(p50("true")),
                extra(slow("true"))
            ),
            format!(
                "Without VPID every exit flushes the TLB, so the guest refills it one page walk at a time: \
                 {:.1}% of touches miss, the median touch takes {}, and they lose {:.1}% of their time — {:.1} points \
                 more, from exits that cost nothing extra with VPID.",
                miss("false"),
                ns(p50("false")),
                extra(slow("false")),
                extra(slow("false")) - extra(slow("true"))
            ),
        ],
        Lang::Zh => vec![
            format!(
                "有 VPID 时，客户机每秒 2 万次 VM exit 之后 TLB 表项依然保留：{:.1}% 的访问未命中，访存延迟中位数为 {}，\
                 时间损失 {:.1}%。",
                miss("true"),
                ns(p50("true")),
                extra(slow("true"))
            ),
            format!(
                "没有 VPID 时每次 exit 都会清空 TLB，客户机只能一次一次页表遍历地重新填充：{:.1}% 的访问未命中，\
                 延迟中位数为 {}，时间损失 {:.1}%——多出 {:.1} 个百分点，而这些 exit 在有 VPID 时并不额外花费。",
                miss("false"),
                ns(p50("false")),
                extra(slow("false")),
                extra(slow("false")) - extra(slow("true"))
            ),
        ],
    }
}

fn flexpriority(t: &SweepTable, _: &Scenario, lang: Lang) -> Vec<String> {
    let slow = |v: &str| at(t, v, "slowdown");
    let (with, without) = (extra(slow("true")), extra(slow("false")));
    match lang {
        Lang::En => vec![
            format!(
                "With FlexPriority the guests' 50 000 TPR accesses a second stay inside the guest (the CPU keeps a \
                 shadow TPR): they lose {with:.1}% of their time, to page walks."
            ),
            format!(
                "Without it each access is a VM exit into KVM and back: they lose {without:.1}%, {:.1} points more, \
                 so each of the 50 000 exits a second took about {:.2} µs of the guest's time.",
                without - with,
                (without - with) / 100.0 / 50_000.0 * 1e6
            ),
        ],
        Lang::Zh => vec![
            format!(
                "有 FlexPriority 时，客户机每秒 5 万次 TPR 访问都留在客户机内（CPU 维护一个影子 TPR）：时间损失 {with:.1}%，\
                 来自页表遍历。"
            ),
            format!(
                "没有它时每次访问都是一次进入 KVM 再返回的 VM exit：时间损失 {without:.1}%，多出 {:.1} 个百分点，\
                 即每秒 5 万次 exit 中每次约花费客户机 {:.2} µs。",
                without - with,
                (without - with) / 100.0 / 50_000.0 * 1e6
            ),
        ],
    }
}

fn ns(v: f64) -> String {
    crate::report::run::ns(v)
}

fn hugepages(t: &SweepTable, _: &Scenario, lang: Lang) -> Vec<String> {
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

/// The KSM lessons' guests: N of one image, each of `memory` bytes with
/// a `shared` share of its pages identical across them. One copy of each
/// shared page serves all N: N − 1 copies freed, `predicted` GiB.
struct OneImage {
    n: f64,
    shared: f64,
    memory: f64,
    predicted: f64,
}

impl OneImage {
    fn of(s: &Scenario) -> OneImage {
        let g = &s.guests[0];
        let (n, shared, memory) = (f64::from(g.count), g.workload.shared.get(), g.memory.bytes() as f64);
        OneImage { n, shared, memory, predicted: (n - 1.0) * shared * memory / GIB }
    }

    /// `(N − 1) × s% × M GiB = P GiB`.
    fn formula(&self) -> String {
        format!(
            "({:.0} − 1) × {:.0}% × {:.0} GiB = {:.2} GiB",
            self.n,
            self.shared * 100.0,
            self.memory / GIB,
            self.predicted
        )
    }
}

fn ksm(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    let image = OneImage::of(s);
    let formula = image.formula();
    let OneImage { n, shared, memory, predicted } = image;
    let pages = n * memory / 4096.0;
    let costs = crate::latency::Costs::default();
    // The sleep in whole jiffies and the wake-up after them.
    let sleep_s = costs.ksm_sleep_ns(s.host.ksm.sleep_millisecs) / 1e9;
    // The scan-rate variants are named by their pages_to_scan; the
    // copy-on-write storm is told apart.
    let rows: Vec<(String, f64, f64)> = combinations(t)
        .iter()
        .filter(|(v, _)| v[0].parse::<f64>().is_ok())
        .map(|(v, rows)| (v[0].clone(), mean(rows, "ksm_saved_bytes") / GIB, mean(rows, "ksmd_cpu_percent")))
        .collect();
    let storm = combinations(t)
        .iter()
        .find(|(v, _)| v[0].ends_with("+writes"))
        .map(|(v, rows)| (v[0].clone(), mean(rows, "ksm_saved_bytes") / GIB, mean(rows, "cow_breaks")));
    // ksmd sleeps, then scans a batch on its own CPU time: a full scan is
    // pages / batch rounds of (sleep + batch × cost per page), a page (most
    // distinct) checksummed and put in an unstable tree that grows over
    // the scan.
    let per_page_s = (costs.ksm_checksum_page_ns
        + costs.ksm_unstable_level_ns * crate::latency::Costs::ksm_mean_insert_levels(pages as u64))
        / 1e9;
    let scan_s = |p: &str| p.parse::<f64>().map_or(f64::NAN, |p| pages / p * (sleep_s + p * per_page_s));
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return vec![] };
    let list = |zh: bool| {
        rows.iter()
            .map(|(p, saved, cpu)| {
                if zh {
                    format!("每 {} ms 扫描 {p} 页：完整扫描一遍 {:.0} s，节省 {saved:.2} GiB，ksmd 占用 {cpu:.0}% 个 CPU", s.host.ksm.sleep_millisecs, scan_s(p))
                } else {
                    format!("{p} pages every {} ms: a full scan in {:.0} s, {saved:.2} GiB saved, ksmd at {cpu:.0}% of a core", s.host.ksm.sleep_millisecs, scan_s(p))
                }
            })
            .collect::<Vec<_>>()
            .join(if zh { "；" } else { "; " })
    };
    match lang {
        Lang::En => vec![
            format!(
                "{n:.0} guests share {:.0}% of {:.0} GiB each: one copy of each shared page can serve all of them, so \
                 KSM can free {formula}. Scanning {} pages every {} ms it saved {:.2} GiB.",
                shared * 100.0,
                memory / GIB,
                last.0,
                s.host.ksm.sleep_millisecs,
                last.1
            ),
            format!(
                "The scan rate decides how soon and at what cost — {}. A page merges only once it has stayed unchanged \
                 between two passes, so nothing is saved before the second full scan, and the {}-page rate {} within \
                 the {:.0} s run.",
                list(false),
                first.0,
                if first.1 >= 0.99 * predicted { "got there" } else { "had not finished" },
                s.duration.as_secs_f64()
            ),
        ]
        .into_iter()
        .chain(storm.map(|(name, saved, breaks)| {
            format!(
                "In {name} the guests start writing at 40 s: each write to a merged page breaks the sharing \
                 (copy-on-write) and gives the guest its own copy back. {breaks:.0} breaks left KSM saving \
                 {saved:.2} GiB instead of {:.2}: the memory it had saved was due again, all at once, and the host \
                 must find it (a copy-on-write storm).",
                last.1
            )
        }))
        .collect(),
        Lang::Zh => vec![
            format!(
                "{n:.0} 个客户机各有 {:.0} GiB，其中 {:.0}% 相同：每个共享页只需一份副本就能服务所有客户机，所以 KSM 最多能释放 \
                 {formula}。每 {} ms 扫描 {} 页时实际节省 {:.2} GiB。",
                memory / GIB,
                shared * 100.0,
                s.host.ksm.sleep_millisecs,
                last.0,
                last.1
            ),
            format!(
                "扫描速度决定节省得多快、代价多大——{}。一个页只有在两次扫描之间保持不变才会被合并，所以第二遍完整扫描之前什么也省不下；\
                 在 {:.0} s 的运行中，{} 页的速度{}。",
                list(true),
                s.duration.as_secs_f64(),
                first.0,
                if first.1 >= 0.99 * predicted { "已经完成合并" } else { "还没有合并完" }
            ),
        ]
        .into_iter()
        .chain(storm.map(|(name, saved, breaks)| {
            format!(
                "在 {name} 中客户机从 40 s 开始写内存：每次写一个已合并的页都会打破共享（写时复制），把一份自己的副本还给客户机。\
                 {breaks:.0} 次写时复制之后，KSM 只节省 {saved:.2} GiB，而不是 {:.2} GiB：省下的内存一下子又都要还回来，\
                 宿主机必须立刻找到它（写时复制风暴）。",
                last.1
            )
        }))
        .collect(),
    }
}

fn ksm_thp(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    let image = OneImage::of(s);
    let formula = image.formula();
    let OneImage { n, shared, memory, .. } = image;
    let saved = |v: &str| at(t, v, "ksm_saved_bytes") / GIB;
    // TLB miss ratio (%) and mean access (ns): huge pages without KSM,
    // with KSM, and 4 KiB pages with KSM.
    let miss = |v: &str| at(t, v, "tlb_miss_ratio") * 100.0;
    let mean = |v: &str| at(t, v, "mean_ns");
    let (miss_thp, miss_ksm, miss_4k) = (miss("thp"), miss("thp+ksm"), miss("4k+ksm"));
    let (mean_thp, mean_ksm, mean_4k) = (mean("thp"), mean("thp+ksm"), mean("4k+ksm"));
    let (faults, splits) = (at(t, "thp+ksm", "thp_faults"), at(t, "thp+ksm", "thp_splits"));
    let collapses = at(t, "thp+ksm", "thp_collapses");
    // The KSM pages in a range: its share of identical pages.
    let per_range = shared * 512.0;
    let max_shared = s.host.khugepaged.max_ptes_shared;
    let sleep_s = f64::from(s.host.khugepaged.scan_sleep_millisecs) / 1000.0;
    let cpu = at(t, "thp+ksm", "ksmd_cpu_percent");
    let secs = s.duration.as_secs_f64();
    match lang {
        Lang::En => vec![
            format!(
                "KSM merges 4 KiB pages, on huge pages as on small ones: {n:.0} guests sharing {:.0}% of {:.0} GiB \
                 each can give back {formula}, and KSM saved {:.2} GiB on 4 KiB pages and {:.2} GiB on huge pages \
                 (ksmd at {cpu:.0}% of a core).",
                shared * 100.0,
                memory / GIB,
                saved("4k+ksm"),
                saved("thp+ksm"),
            ),
            format!(
                "To merge a page inside a huge page ksmd splits the huge page first, into 512 small ones. The \
                 identical pages of an image lie all over a guest's memory, so nearly every huge page holds some: \
                 ksmd split the {faults:.0} huge pages the guests' first touches took."
            ),
            format!(
                "And it keeps splitting: every {sleep_s:.0} s khugepaged puts a few split ranges back together \
                 into huge pages, as it does for any range with at most {max_shared} pages mapped elsewhere \
                 (max_ptes_shared), and here a range holds about {per_range:.0} KSM pages. The collapse copies \
                 them, so the guest's share of those KSM pages is undone until ksmd's next pass finds them and \
                 splits the range again: {collapses:.0} collapses and {splits:.0} splits in {secs:.0} s. Setting \
                 max_ptes_shared below the KSM pages a range holds ends the tug of war."
            ),
            format!(
                "That is the price. A TLB entry maps the smaller of the guest's page and the host's: with both at \
                 2 MiB the guests' accesses missed the TLB {miss_thp:.1}% of the time and took {mean_thp:.0} ns on \
                 average; with KSM they missed {miss_ksm:.1}% over the {secs:.0} s (on 4 KiB pages once split), \
                 {mean_ksm:.0} ns on average; on 4 KiB pages from the start, {miss_4k:.1}% and {mean_4k:.0} ns \
                 (first-touch faults included). KSM on huge pages trades \
                 the guests' TLB reach for memory: worth it where memory is what runs out.",
            ),
        ],
        Lang::Zh => vec![
            format!(
                "KSM 合并的是 4 KiB 的页，大页上也一样：{n:.0} 个客户机各有 {:.0} GiB，其中 {:.0}% 相同，最多能还回 \
                 {formula}；KSM 在 4 KiB 页上省下 {:.2} GiB，在大页上省下 {:.2} GiB（ksmd 占用 {cpu:.0}% 个 CPU）。",
                memory / GIB,
                shared * 100.0,
                saved("4k+ksm"),
                saved("thp+ksm"),
            ),
            format!(
                "要合并大页里的一个页，ksmd 得先把这个大页拆成 512 个小页。同一镜像的相同页散布在客户机内存的各处，\
                 几乎每个大页里都有：客户机首次访问时得到的 {faults:.0} 个大页，ksmd 全都拆掉了。"
            ),
            format!(
                "而且拆了还要再拆：khugepaged 每 {sleep_s:.0} 秒把几个拆开的区间重新合成大页——只要一个区间里映射到别处的页\
                 不超过 {max_shared} 个（max_ptes_shared），它就会合；这里每个区间大约有 {per_range:.0} 个 KSM 页。\
                 合成时这些页被复制进大页，客户机对这些 KSM 页的共享就此作废，直到 ksmd 下一轮扫到它们、再把区间拆开：\
                 {secs:.0} 秒里合了 {collapses:.0} 次、拆了 {splits:.0} 次。把 max_ptes_shared 设得比一个区间里的 \
                 KSM 页还少，这场拉锯就停了。"
            ),
            format!(
                "这就是代价。TLB 的一项映射的是客户机页和宿主机页中较小的那个：两者都是 2 MiB 时，客户机的访存有 \
                 {miss_thp:.1}% 未命中 TLB，平均 {mean_thp:.0} ns；开了 KSM，整个 {secs:.0} s 里未命中 {miss_ksm:.1}%\
                 （拆分之后都是 4 KiB 页），平均 {mean_ksm:.0} ns；从一开始就用 4 KiB 页时是 {miss_4k:.1}% 和 \
                 {mean_4k:.0} ns（含首次访问的缺页）。\
                 大页上的 KSM 用客户机的 TLB 覆盖范围换内存：内存紧张时才值得。",
            ),
        ],
    }
}

fn balloon(t: &SweepTable, _: &Scenario, lang: Lang) -> Vec<String> {
    const GIB: f64 = (1u64 << 30) as f64;
    let swap = |p: &str| at(t, p, "swap_used_peak_bytes") / GIB;
    let faults = |p: &str| at(t, p, "major_faults_per_s");
    let slow = |p: &str| at(t, p, "slowdown");
    let held = at(t, "mom", "balloon_peak_bytes") / GIB;
    match lang {
        Lang::En => vec![
            format!(
                "Without a balloon policy the host ran short when the busy guests grew: the kernel wrote up to \
                 {:.1} GiB of guest pages to swap, the worst guest took {:.0} major faults a second, and its slowdown \
                 was {:.3}.",
                swap("none"),
                faults("none"),
                slow("none")
            ),
            format!(
                "With MoM the balloons took up to {held:.1} GiB back from the idle guests, 5% of a guest per round, \
                 while the host had less than 20% free — before the load arrived. Peak swap use was {:.1} GiB, the \
                 worst guest took {:.0} major faults a second, and its slowdown was {:.3}.",
                swap("mom"),
                faults("mom"),
                slow("mom")
            ),
            format!(
                "A balloon can also inflate too far: Proxmox's policy, allowed down to 256 MiB per guest, squeezed \
                 the busy guests as well while they grew (up to {:.1} GiB ballooned in all). They paged to their own \
                 swap, {:.0} times, and the worst slowdown rose to {:.3}, worse than no balloon at all.",
                at(t, "proxmox-tight", "balloon_peak_bytes") / GIB,
                at(t, "proxmox-tight", "guest_swap_faults"),
                slow("proxmox-tight")
            ),
        ],
        Lang::Zh => vec![
            format!(
                "没有气球策略时，繁忙的客户机一增长，宿主机就不够用了：内核最多把 {:.1} GiB 的客户机内存页写入交换区，\
                 最差的客户机每秒发生 {:.0} 次主缺页，减速比为 {:.3}。",
                swap("none"),
                faults("none"),
                slow("none")
            ),
            format!(
                "使用 MoM 时，在负载到来之前、宿主机空闲内存低于 20% 期间，气球每轮最多回收客户机内存的 5%，\
                 从闲置的客户机收回了最多 {held:.1} GiB。交换区峰值为 {:.1} GiB，最差的客户机每秒 {:.0} 次主缺页，减速比为 {:.3}。",
                swap("mom"),
                faults("mom"),
                slow("mom")
            ),
            format!(
                "气球也可能充得过头：Proxmox 的策略允许每个客户机被压到 256 MiB，它在繁忙的客户机增长时也挤压了它们\
                 （气球一共最多 {:.1} GiB）。它们只好在自己的交换区里换页，共 {:.0} 次，最差的减速比升到 {:.3}，比没有气球还糟。",
                at(t, "proxmox-tight", "balloon_peak_bytes") / GIB,
                at(t, "proxmox-tight", "guest_swap_faults"),
                slow("proxmox-tight")
            ),
        ],
    }
}

fn reclaim(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    // The worst guest's share of the host's major faults: its faults a
    // second over the run (every guest runs all of it), against the sum.
    let secs = s.duration.as_secs_f64();
    let total = |v: &str| at(t, v, "major_faults");
    let share = |v: &str| 100.0 * at(t, v, "major_faults_per_s") * secs / total(v).max(1.0);
    let even = 100.0 / s.instance_count().max(1) as f64;
    let k = |v: &str| total(v) / 1000.0;
    match lang {
        Lang::En => vec![
            format!(
                "Uniform reads fault on 1 − L/W of touches whatever reclaim chooses, so the host's total is set by \
                 the memory left: {:.1}K major faults with one LRU, {:.1}K with an LRU per guest. Who takes them is \
                 reclaim's choice.",
                k("shared"),
                k("per-guest")
            ),
            format!(
                "With one LRU for all four (guests in one memory cgroup) the pages sit in the order they were \
                 allocated: the first guest's are the oldest, so it lost most. The worst guest took {:.0}% of the \
                 host's major faults, where an even split is {even:.0}%. This kernel did the same with four \
                 processes in one cgroup: 66.5K of 171.9K, 39%.",
                share("shared")
            ),
            format!(
                "With an LRU per guest (a cgroup each, as libvirt sets guests up) reclaim scans every guest's list \
                 in proportion to its size, so guests alike lose alike: the worst took {:.0}%. This kernel, a \
                 cgroup each: 52.9K of 182.2K, 29%. The last guest to start loses least: when it filled, the \
                 others' pages were the cold ones.",
                share("per-guest")
            ),
        ],
        Lang::Zh => vec![
            format!(
                "均匀读取时，无论回收挑哪一页，缺页都占访问的 1 − L/W，所以宿主机的总缺页由剩下的内存决定：\
                 共用一条 LRU 时 {:.1}K 次主缺页，每个客户机一条 LRU 时 {:.1}K 次。由谁来承担，才是回收的选择。",
                k("shared"),
                k("per-guest")
            ),
            format!(
                "四个客户机共用一条 LRU（同在一个内存 cgroup）时，页面按分配的先后排列：第一个客户机的页最老，\
                 所以它损失最多。最差的客户机承担了宿主机 {:.0}% 的主缺页，而平均分摊是 {even:.0}%。\
                 这台机器的内核对同一 cgroup 里的四个进程也是如此：171.9K 中的 66.5K，39%。",
                share("shared")
            ),
            format!(
                "每个客户机一条 LRU（各自一个 cgroup，正如 libvirt 的做法）时，回收按各自大小的比例扫描每个客户机的链表，\
                 一样的客户机损失也一样：最差的占 {:.0}%。内核在每个进程一个 cgroup 时：182.2K 中的 52.9K，29%。\
                 最后启动的客户机损失最少：它填满内存时，其他客户机的页已经是冷页。",
                share("per-guest")
            ),
        ],
    }
}

fn qemu_m(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    const GIB: f64 = (1u64 << 30) as f64;
    let g = &s.guests[0];
    let (n, memory) = (g.count, g.memory.bytes() as f64 / GIB);
    let peak = |v: &str| at(t, v, "peak_used_bytes") / GIB;
    let boot = |v: &str| at(t, v, "boot_delay_s") * 1e3;
    let minor = |v: &str| at(t, v, "minor_faults");
    let slow = |v: &str| at(t, v, "slowdown_mean");
    match lang {
        Lang::En => vec![
            format!(
                "-m {memory:.0}G gave each of the {n} guests {memory:.0} GiB, but the host backed only what they \
                 touched: {:.1} GiB for all {n}, in {:.0} first-touch faults (one per 2 MiB THP).",
                peak("plain"),
                minor("plain")
            ),
            format!(
                "-mem-prealloc made the host pay all {:.1} GiB at start, and each guest started {:.0} ms late while \
                 QEMU touched its memory; afterwards no first touch slowed it (slowdown {:.3} against {:.3}).",
                peak("prealloc"),
                boot("prealloc"),
                slow("prealloc"),
                slow("plain")
            ),
            format!(
                "-mem-path /dev/hugepages took the memory from the hugetlb pool reserved at boot instead: {:.1} GiB \
                 of ordinary RAM used, a {:.0} ms start, and pages that are never swapped, ballooned or merged.",
                peak("hugetlbfs"),
                boot("hugetlbfs")
            ),
            format!(
                "slots= and maxmem= cost nothing until memory is plugged: {:.1} GiB used, as with plain -m.",
                peak("hotplug")
            ),
        ],
        Lang::Zh => vec![
            format!(
                "-m {memory:.0}G 给 {n} 个客户机每个 {memory:.0} GiB 内存，但宿主机只为它们实际访问过的部分分配内存：{n} 个一共 \
                 {:.1} GiB，经历了 {:.0} 次首次访问缺页（每个 2 MiB 透明大页一次）。",
                peak("plain"),
                minor("plain")
            ),
            format!(
                "-mem-prealloc 让宿主机在启动时就付出全部 {:.1} GiB，每个客户机要等 QEMU 访问完全部内存，启动晚了 {:.0} ms；\
                 此后再没有首次访问缺页拖慢它（减速比 {:.3}，对比 {:.3}）。",
                peak("prealloc"),
                boot("prealloc"),
                slow("prealloc"),
                slow("plain")
            ),
            format!(
                "-mem-path /dev/hugepages 改从启动时预留的 hugetlb 大页池取内存：普通内存只用了 {:.1} GiB，启动耗时 {:.0} ms，\
                 而这些页永远不会被换出、气球回收或合并。",
                peak("hugetlbfs"),
                boot("hugetlbfs")
            ),
            format!(
                "slots= 和 maxmem= 在真正插入内存之前没有任何代价：和普通 -m 一样只用了 {:.1} GiB。",
                peak("hotplug")
            ),
        ],
    }
}

/// Per mix: the most guests that met the objective, and the slowdown and
/// KSM savings at the densest point.
fn mix_rows(t: &SweepTable) -> Vec<(String, Option<u64>, f64, f64)> {
    let mut out: Vec<(String, Option<u64>, f64, f64)> = Vec::new();
    for (values, rows) in combinations(t) {
        let (mix, count) = (values[0].clone(), values.get(1).and_then(|c| c.parse::<u64>().ok()));
        let met = rows.iter().all(|r| crate::report::sweep::met(r));
        let slow = mean(&rows, "slowdown");
        let saved = mean(&rows, "ksm_saved_bytes") / (1u64 << 30) as f64;
        match out.iter_mut().find(|o| o.0 == mix) {
            Some(o) => {
                if met {
                    o.1 = count.max(o.1);
                }
                (o.2, o.3) = (slow, saved);
            }
            None => out.push((mix, if met { count } else { None }, slow, saved)),
        }
    }
    out
}

fn mix(t: &SweepTable, s: &Scenario, lang: Lang) -> Vec<String> {
    let rows = mix_rows(t);
    let densest = t.meta.vary.iter().find(|v| v.path.ends_with(".count")).and_then(|v| v.values.last().cloned());
    let densest = densest.unwrap_or_default();
    let shared = s.guests[0].workload.shared.get() * 100.0;
    // The first (simplest) of the mixes that pack the most.
    let best = rows.iter().fold(None::<&(String, Option<u64>, f64, f64)>, |b, r| match b {
        Some(b) if r.1 <= b.1 => Some(b),
        _ => Some(r),
    });
    let line = |r: &(String, Option<u64>, f64, f64), zh: bool| match (r.1, zh) {
        (Some(n), false) => format!("{}: up to {n} guests", r.0),
        (None, false) => format!("{}: not even the fewest", r.0),
        (Some(n), true) => format!("{}：最多 {n} 个客户机", r.0),
        (None, true) => format!("{}：连最少的也不行", r.0),
    };
    let list = |zh: bool| rows.iter().map(|r| line(r, zh)).collect::<Vec<_>>().join(if zh { "；" } else { "; " });
    let at_densest = |zh: bool| {
        rows.iter()
            .map(|r| {
                if zh {
                    format!("{} 减速比 {:.3}，KSM 节省 {:.1} GiB", r.0, r.2, r.3)
                } else {
                    format!("{} slowdown {:.3}, KSM saved {:.1} GiB", r.0, r.2, r.3)
                }
            })
            .collect::<Vec<_>>()
            .join(if zh { "；" } else { "; " })
    };
    match lang {
        Lang::En => vec![
            format!("Guests meeting p99 ≤ 50 µs, per mix — {}.", list(false)),
            format!(
                "{} packs the most: the guests share {shared:.0}% of their pages, so merging them frees room the \
                 others must find by swapping. Balloons take back only memory the guests leave idle; when the load \
                 returns, they lower the slowdown past the boundary more than they move it.",
                best.map_or("No mix", |b| b.0.as_str())
            ),
            format!("At {densest} guests: {}.", at_densest(false)),
        ],
        Lang::Zh => vec![
            format!("满足 p99 ≤ 50 µs 的客户机数量，按策略组合——{}。", list(true)),
            format!(
                "{} 能装下最多：客户机有 {shared:.0}% 的页相同，合并它们腾出的空间，其他组合只能靠换出去找。\
                 气球只能收回客户机闲置的内存；负载回来时，它更多是降低越过边界后的减速，而不是移动边界。",
                best.map_or("没有组合", |b| b.0.as_str())
            ),
            format!("{densest} 个客户机时：{}。", at_densest(true)),
        ],
    }
}
