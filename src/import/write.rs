//! Imported guests out as a scenario: guests with the same memory
//! configuration and image become one group (named after the first, with
//! every instance's name kept), each fact written with the key the scenario
//! format reads, and what the import could not know (the workload) written
//! as a placeholder that says so.
//!
//! The text is checked by loading it before anyone sees it: an import that
//! does not give a valid scenario is a bug, not the user's problem.

use std::fmt::Write as _;

use serde::Serialize;

use crate::scenario::guestmem::{GuestMemory, Pages, Region};
use crate::scenario::{Memtune, Observed};
use crate::units::ByteSize;

/// One guest as read from a domain XML or a running QEMU process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    /// The instance's name (libvirt domain, or QEMU's `-name`).
    pub name: String,
    /// Where it was read from, for the comment above its group.
    pub source: String,
    pub memory: GuestMemory,
    pub current_memory: Option<ByteSize>,
    pub memtune: Memtune,
    /// The guest reports balloon statistics (a `<stats period>` above 0).
    pub balloon_stats: bool,
    /// The least memory a balloon may leave it (oVirt's guaranteed memory,
    /// or libvirt's min_guarantee), with where it came from.
    pub balloon_min: Option<(ByteSize, String)>,
    /// The base image its first disk boots from.
    pub image: Option<String>,
    /// Its state on a running host (`import live`).
    pub observed: Option<Observed>,
    /// Virtual CPUs, when known.
    pub vcpus: Option<u32>,
    /// What the reader could not carry over, as `place: message` lines.
    pub notes: Vec<String>,
}

impl Imported {
    /// Everything that decides the group: memory configuration and image.
    fn group_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}",
            self.memory,
            self.current_memory,
            self.memtune,
            self.balloon_stats,
            self.balloon_min.as_ref().map(|b| b.0),
            self.image,
            self.vcpus
        )
    }
}

/// How the scenario is introduced.
pub struct Header<'a> {
    /// The scenario's `name:`.
    pub name: &'a str,
    /// A sentence for `description:` and the first comment.
    pub description: &'a str,
    /// The `host:` section (what `overcommit host --scenario` writes).
    pub host_section: &'a str,
    /// What profiling the guests measured (`import live --profile`): a
    /// group's workload comes from its guests' profiles.
    pub profile: Option<&'a crate::profile::Report>,
}

/// The scenario text for `guests` on the host `header` gives.
pub fn scenario_yaml(header: &Header, guests: &[Imported]) -> String {
    let mut groups: Vec<(String, Vec<&Imported>)> = Vec::new();
    for g in guests {
        let key = g.group_key();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(g),
            None => groups.push((key, vec![g])),
        }
    }
    let mut y = String::new();
    let _ = writeln!(y, "# {}", header.description);
    y.push_str(
        "# Each guest's memory configuration comes from what was read; the workloads do not\n\
         # (see the comment on each group). Check it with `overcommit check FILE`, play it\n\
         # with `overcommit run FILE`, plan with `overcommit plan FILE --slo ... --grow GROUP`.\n",
    );
    let _ = writeln!(y, "name: {}", quote(header.name));
    let _ = writeln!(y, "description: {}", quote(header.description));
    y.push_str("duration: 10m\n");
    y.push_str(header.host_section.trim_end());
    y.push('\n');
    if groups.is_empty() {
        y.push_str("# no guests were found: add groups under guests:\n");
        y.push_str("guests: []\n");
        return y;
    }
    y.push_str("guests:\n");
    let mut used: Vec<String> = Vec::new();
    for (_, members) in &groups {
        // Guests of one configuration that a profile tells apart (another
        // pattern, working set, write or content share) are groups of
        // their own, which keep the configuration's image.
        let mut own: Option<String> = None;
        for part in split_by_profile(members, header.profile) {
            let name = write_group(&mut y, &part, &mut used, header.profile, own.as_deref());
            own.get_or_insert(format!("{name}-own"));
        }
    }
    y
}

/// `members` in parts whose guests' profiles are all alike two by two
/// (see [`crate::profile::write::alike`]), each guest joining the first
/// part it is alike with every member of, in the members' order; all of
/// them as one without a profile.
fn split_by_profile<'a>(members: &[&'a Imported], profile: Option<&crate::profile::Report>) -> Vec<Vec<&'a Imported>> {
    let Some(r) = profile else {
        return vec![members.to_vec()];
    };
    let of = |m: &Imported| r.guests.iter().find(|g| g.name == m.name);
    let mut parts: Vec<Vec<&Imported>> = Vec::new();
    for &m in members {
        let found = parts.iter_mut().find(|p| {
            p.iter().all(|q| match (of(q), of(m)) {
                (Some(a), Some(b)) => crate::profile::write::alike(a, b),
                (None, None) => true,
                _ => false,
            })
        });
        match found {
            Some(p) => p.push(m),
            None => parts.push(vec![m]),
        }
    }
    parts
}

/// One group; its name is returned. `own`: the image of guests without
/// a disk image, when an earlier group of the same configuration named it.
fn write_group(
    y: &mut String,
    members: &[&Imported],
    used: &mut Vec<String>,
    profile: Option<&crate::profile::Report>,
    own: Option<&str>,
) -> String {
    let first = members[0];
    let name = group_name(&first.name, used);
    used.push(name.clone());
    let sources: Vec<&str> = members.iter().map(|m| m.source.as_str()).collect();
    let _ = writeln!(y, "  # {}", sources.join(", "));
    for m in members {
        for note in &m.notes {
            for (i, line) in note.lines().enumerate() {
                let lead = if i == 0 { "warning: " } else { "  " };
                let _ = writeln!(y, "  # {lead}{line}");
            }
        }
    }
    let _ = writeln!(y, "  - name: {name}");
    let _ = writeln!(y, "    count: {}", members.len());
    let names: Vec<String> = members.iter().map(|m| quote(&m.name)).collect();
    let _ = writeln!(y, "    names: [{}]", names.join(", "));
    let mem = &first.memory;
    let ram: Vec<&Region> = mem.regions.iter().filter(|r| r.is_ram()).collect();
    let total = ByteSize(mem.ram_bytes());
    let _ = writeln!(y, "    memory: {total}");
    let uniform = ram.windows(2).all(|w| backing_of(w[0]) == backing_of(w[1]));
    match (uniform, ram.first()) {
        (true, Some(r)) => {
            write_backing(y, "    ", r, false);
        }
        _ => {
            y.push_str("    # guest RAM per memory backend (NUMA cells and memory devices):\n");
            y.push_str("    backends:\n");
            for r in &ram {
                let _ = write!(y, "      - {{ size: {}", r.size);
                if let Some(node) = r.node {
                    let _ = write!(y, ", node: {node}");
                }
                let mut inline = String::new();
                write_backing(&mut inline, "", r, true);
                let _ = writeln!(y, "{inline} }}");
            }
        }
    }
    if let Some(cur) = first.current_memory.filter(|c| c.bytes() < total.bytes()) {
        if mem.balloon.is_some() {
            y.push_str("    # libvirt <currentMemory>: the balloon holds the rest from boot\n");
            let _ = writeln!(y, "    current_memory: {cur}");
        } else {
            let _ = writeln!(y, "    # <currentMemory> {cur} has no effect without a balloon device: left out");
        }
    }
    if let Some(mx) = mem.maxmem {
        let _ = writeln!(y, "    maxmem: {mx}");
    }
    if let Some(sl) = mem.slots {
        let _ = writeln!(y, "    slots: {sl}");
    }
    if mem.mem_lock {
        y.push_str("    locked: true\n");
    }
    if mem.accel == Some(crate::scenario::schema::Accel::Tcg) {
        y.push_str("    accel: tcg                  # QEMU's emulator: swapped-in pages stay clean until written\n");
    }
    match &mem.balloon {
        None => y.push_str("    balloon: false\n"),
        Some(b) => {
            y.push_str("    balloon: true\n");
            if !first.balloon_stats {
                y.push_str("    # no <stats period>: the guest reports no memory statistics (MoM leaves it alone)\n");
                y.push_str("    balloon_stats: false\n");
            }
            if b.deflate_on_oom {
                y.push_str("    deflate_on_oom: true\n");
            }
            if b.free_page_reporting {
                y.push_str("    free_page_reporting: true\n");
            }
        }
    }
    if let Some((min, from)) = &first.balloon_min {
        let _ = writeln!(y, "    # {from}");
        let _ = writeln!(y, "    balloon_min: {min}");
    }
    if let Some(v) = first.vcpus.filter(|&v| v != 1) {
        let _ = writeln!(y, "    vcpus: {v}");
    }
    let mt = &first.memtune;
    if mt.is_set() {
        let mut parts = Vec::new();
        if let Some(v) = mt.hard_limit {
            parts.push(format!("hard_limit: {v}"));
        }
        if let Some(v) = mt.soft_limit {
            parts.push(format!("soft_limit: {v}"));
        }
        if let Some(v) = mt.swap_hard_limit {
            parts.push(format!("swap_hard_limit: {v}"));
        }
        let _ = writeln!(y, "    memtune: {{ {} }}", parts.join(", "));
    }
    match &first.image {
        Some(img) => {
            y.push_str("    # guests of one image hold identical pages (what KSM can merge)\n");
            let _ = writeln!(y, "    image: {}", quote(img));
        }
        None => match own {
            None => {
                y.push_str("    # no disk image found: its pages are taken as its own\n");
                let _ = writeln!(y, "    image: {}", quote(&format!("{name}-own")));
            }
            Some(own) => {
                y.push_str(
                    "    # no disk image found: taken as the image of the guests of this configuration that\n\
                     \x20   # a profile told apart from these\n",
                );
                let _ = writeln!(y, "    image: {}", quote(own));
            }
        },
    }
    let observed: Vec<&Observed> = members.iter().filter_map(|m| m.observed.as_ref()).collect();
    if observed.len() == members.len() && !observed.is_empty() {
        y.push_str(
            "    # as seen on the running host (the guest RAM mappings in /proc/PID/smaps: Rss, Swap,\n\
             \x20   # AnonHugePages; ksm_stat; virsh dommemstat): the run starts from it\n",
        );
        y.push_str("    observed:\n");
        for o in observed {
            let _ = writeln!(
                y,
                "      - {{ name: {}, resident: {}, swapped: {}, thp: {}, ksm_merged: {}, balloon: {} }}",
                quote(&o.name),
                o.resident,
                o.swapped,
                o.thp,
                o.ksm_merged,
                o.balloon
            );
        }
    }
    if let Some(r) = profile {
        let guests: Vec<&crate::profile::GuestProfile> =
            members.iter().filter_map(|m| r.guests.iter().find(|g| g.name == m.name)).collect();
        if let Some(block) =
            crate::profile::write::workload_block(r, &crate::profile::write::Combined { guests }, "    ")
        {
            y.push_str(&block);
            return name;
        }
        y.push_str("    # profiling could not fit this group's guests: the workload below is a placeholder\n");
    }
    y.push_str(
        "    # The workload is not in the guest's configuration: these are placeholders (half\n\
         \x20   # its memory touched uniformly). Put in what the guest does: its working set (its\n\
         \x20   # Active memory in the guest's /proc/meminfo is a first estimate), how fast it\n\
         \x20   # touches memory, the pattern, and the share of pages that match other guests of\n\
         \x20   # its image (shared) or are zero.\n",
    );
    y.push_str("    workload: { working_set: 50%, touch_rate: 100k/s, pattern: uniform }\n");
    name
}

/// The facts that make two regions back memory the same way.
fn backing_of(r: &Region) -> (Pages, bool, bool, bool) {
    (r.pages, r.prealloc, r.share, r.merge)
}

/// A region's backing as scenario keys: one per line, or (`inline`) as
/// `, key: value` pairs.
fn write_backing(y: &mut String, indent: &str, r: &Region, inline: bool) {
    let mut kv: Vec<(String, String)> = Vec::new();
    match r.pages {
        Pages::Small => {}
        Pages::Huge(None) => kv.push(("hugepages".into(), "true".into())),
        Pages::Huge(Some(size)) => {
            kv.push(("hugepages".into(), "true".into()));
            let label = match size.bytes() {
                0x20_0000 => "2M".to_string(),
                0x4000_0000 => "1G".to_string(),
                _ => size.to_string(),
            };
            kv.push(("hugepage_size".into(), label));
        }
    }
    if r.prealloc {
        kv.push(("prealloc".into(), "true".into()));
    }
    if r.share {
        kv.push(("share".into(), "true".into()));
    }
    if !r.merge {
        kv.push(("ksm".into(), "false".into()));
    }
    for (k, v) in kv {
        if inline {
            let _ = write!(y, ", {k}: {v}");
        } else {
            let _ = writeln!(y, "{indent}{k}: {v}");
        }
    }
}

/// A group name from a domain name: letters, digits, `-` and `_` (others
/// become `_`), not all digits, and not one already used.
fn group_name(name: &str, used: &[String]) -> String {
    let mut base: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if base.is_empty() || base.chars().all(|c| c.is_ascii_digit()) {
        base = format!("vm{base}");
    }
    let mut candidate = base.clone();
    let mut k = 2;
    while used.contains(&candidate) {
        candidate = format!("{base}_{k}");
        k += 1;
    }
    candidate
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::guestmem::{BalloonDevice, RegionKind, Source};

    const HOST: &str =
        "host:\n  ram: 64G\n  hugepages:\n    - { size: 2M, count: 1024 }\n    - { size: 1G, count: 4 }\n";

    fn region(node: Option<u32>, size: u64, pages: Pages) -> Region {
        Region { pages, ..Region::anonymous(RegionKind::Boot, node, ByteSize(size)) }
    }

    fn guest(name: &str, regions: Vec<Region>) -> Imported {
        Imported {
            name: name.into(),
            source: format!("{name}.xml"),
            memory: GuestMemory { regions, balloon: Some(BalloonDevice::default()), ..GuestMemory::default() },
            current_memory: None,
            memtune: Memtune::default(),
            balloon_stats: true,
            balloon_min: None,
            image: Some("/images/debian.qcow2".into()),
            observed: None,
            vcpus: None,
            notes: Vec::new(),
        }
    }

    fn load(text: &str) -> crate::scenario::Scenario {
        crate::scenario::load_str(text, "imported.yaml", "imported", &[])
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .scenario
    }

    #[test]
    fn same_configuration_and_image_make_one_group_with_every_name() {
        let header = Header { name: "t", description: "test", host_section: HOST, profile: None };
        let a = guest("web 1", vec![region(None, 4 << 30, Pages::Small)]);
        let b = guest("web2", vec![region(None, 4 << 30, Pages::Small)]);
        let mut c = guest("db", vec![region(None, 4 << 30, Pages::Small)]);
        c.image = Some("/images/other.qcow2".into());
        let s = load(&scenario_yaml(&header, &[a, b, c]));
        assert_eq!(s.guests.len(), 2);
        assert_eq!(s.guests[0].name, "web_1");
        assert_eq!(s.guests[0].count, 2);
        assert_eq!(s.guests[0].names, vec!["web 1".to_string(), "web2".to_string()]);
        assert_eq!(s.guests[1].name, "db");
        assert_eq!(s.guests[0].memory, ByteSize::gib(4));
    }

    #[test]
    fn cells_on_different_page_sizes_become_backends() {
        // libvirt's hugepages-numa-nodeset-part: 256 MiB of plain RAM on
        // cell 0, 768 MiB on 1 GiB pages on cell 1.
        let header = Header { name: "t", description: "test", host_section: HOST, profile: None };
        let mut huge = region(Some(1), 768 << 20, Pages::Huge(Some(ByteSize::gib(1))));
        huge.prealloc = true;
        huge.source = Source::File;
        let g = guest("dummy", vec![region(Some(0), 256 << 20, Pages::Small), huge]);
        let s = load(&scenario_yaml(&header, &[g]));
        let b = &s.guests[0].backends;
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].size, b[0].hugetlb), (ByteSize::mib(256), None));
        assert_eq!(b[1].hugetlb, Some(crate::scenario::HugePageSize::Size1G));
        assert!(b[1].prealloc && !b[0].prealloc);
        assert_eq!(s.guests[0].memory, ByteSize::mib(1024));
    }

    #[test]
    fn balloon_target_memtune_and_observed_state_carry_over() {
        let header = Header { name: "t", description: "test", host_section: HOST, profile: None };
        let mut g = guest("vm", vec![region(None, 2 << 30, Pages::Small)]);
        g.current_memory = Some(ByteSize::gib(1));
        g.memtune.hard_limit = Some(ByteSize::mib(2304));
        g.memory.mem_lock = true;
        g.observed = Some(Observed {
            name: "vm".into(),
            resident: ByteSize::mib(900),
            swapped: ByteSize(0),
            thp: ByteSize::mib(512),
            ksm_merged: ByteSize(0),
            balloon: ByteSize::gib(1),
        });
        let s = load(&scenario_yaml(&header, &[g]));
        let gg = &s.guests[0];
        assert_eq!(gg.current_memory, Some(ByteSize::gib(1)));
        assert_eq!(gg.memtune.hard_limit, Some(ByteSize::mib(2304)));
        assert!(gg.locked);
        assert_eq!(gg.observed[0].resident, ByteSize::mib(900));
    }

    fn profiled(name: &str, pattern: &str, write: f64) -> crate::profile::GuestProfile {
        use crate::profile::content::{Content, Share};
        let share = |v: f64| Share { share: v, low: v - 0.01, high: v + 0.01 };
        crate::profile::GuestProfile {
            name: name.into(),
            pid: 1,
            ram_bytes: 4 << 30,
            unit_pages: 1,
            wss: vec![(1.0, 1 << 30)],
            written: Vec::new(),
            passes: 1,
            content: Some(Content { sampled: 1000, zero: share(0.1), shared: share(0.2), duplicate: share(0.05) }),
            state: crate::profile::State::default(),
            fit: Some(crate::profile::Fitted {
                pattern: pattern.into(),
                working_set_bytes: 2 << 30,
                touch_rate: 50_000.0,
                write: Some(write),
                in_working_set: [None; 3],
                residual: 0.01,
                fits_well: true,
                candidates: Vec::new(),
            }),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_profile_splits_guests_of_one_configuration_whose_workloads_differ() {
        // Three guests of one configuration and no disk: a and b alike
        // (writes 0.05 and 0.08: within the profile's 5 points), c writing
        // 0.25 (the memwork guests' A and C). Two groups, c's keeping a's
        // image so KSM still merges across them.
        use crate::profile::mechanism::{WriteMechanism, WssMechanism};
        let report = crate::profile::Report {
            mechanism: WssMechanism::ClearRefs,
            mechanism_sees: String::new(),
            writes: WriteMechanism::ContentChange,
            writes_see: String::new(),
            side_effects: Vec::new(),
            duration_s: 60.0,
            intervals_s: vec![1.0],
            sample: 1.0 / 64.0,
            guests: vec![
                profiled("a", "uniform", 0.05),
                profiled("b", "uniform", 0.08),
                profiled("c", "uniform", 0.25),
            ],
            skipped: Vec::new(),
            cost: crate::profile::Cost::default(),
        };
        let header = Header { name: "t", description: "test", host_section: HOST, profile: Some(&report) };
        let mk = |n: &str| {
            let mut g = guest(n, vec![region(None, 4 << 30, Pages::Small)]);
            g.image = None;
            g
        };
        let text = scenario_yaml(&header, &[mk("a"), mk("b"), mk("c")]);
        let s = load(&text);
        assert_eq!(s.guests.len(), 2, "{text}");
        assert_eq!((s.guests[0].count, s.guests[1].count), (2, 1));
        assert_eq!(s.guests[1].names, vec!["c".to_string()]);
        assert_eq!(s.guests[0].image, s.guests[1].image, "{text}");
        assert!(text.contains("write: 0.065"), "a and b's mean write share:\n{text}");
        assert!(text.contains("write: 0.250"), "{text}");
        // Another pattern family splits too; no profile keeps one group.
        let mut hot = report.clone();
        hot.guests[1] = profiled("b", "hotcold(0.2, 0.9)", 0.05);
        let h = Header { profile: Some(&hot), ..header };
        assert_eq!(load(&scenario_yaml(&h, &[mk("a"), mk("b"), mk("c")])).guests.len(), 3);
        let h = Header { profile: None, ..h };
        assert_eq!(load(&scenario_yaml(&h, &[mk("a"), mk("b"), mk("c")])).guests.len(), 1);
    }
}
