//! Three real TCG guests running memwork (`guest/memwork.c`) with known
//! parameters: the ground truth a profile of a running guest (its working
//! set over time, its write share, the content of its pages) is checked
//! against. [`with_work_guests`] boots them once and hands them to a
//! closure with their QEMU PIDs and parameters; [`truth`] gathers what a
//! check needs. Also memwork as a host process, for checks that need no
//! guest.
//!
//! The guests differ in pattern and write share and share an image seed,
//! so the first [`IMAGE_SHARE`] of each one's memwork pages are alike in
//! all three (what KSM can merge across guests), the next [`ZERO_SHARE`]
//! are zero, and the rest unique. Their rate is what a TCG guest keeps up
//! with, three at a time on two host cores (see [`RATE`]).

use crate::guest_kit::{self, GuestKit, Unavailable};
use crate::ksm_guard::{self, KsmGuard, Settled};
use crate::libvirt_env::{Domain, GuestSpec, HostLock, LibvirtEnv, Workload, proc_mem};
use crate::memwork::{self, HostMemwork, Layout, Params, Pattern, RateLine, ReadyLine, Replay};
use std::time::{Duration, Instant};

/// Each guest's `<memory>`.
pub const GUEST_MIB: u64 = 512;
/// memwork's map in each guest (W).
pub const WORK_MIB: u64 = 192;
/// Share of memwork's pages alike in all three guests (S).
pub const IMAGE_SHARE: f64 = 0.35;
/// Share of memwork's pages left zero (Z).
pub const ZERO_SHARE: f64 = 0.15;
/// The image seed all three share.
pub const IMAGE_SEED: u64 = 1;
/// Page touches a second in each guest: enough that the working-set
/// curve a profile measures from 0.5 s to 20 s rises and levels off
/// (uniform over 49,152 pages: a third of them in 1 s, all but 0.03% in
/// 20 s; B's cold set, 39,322 pages at a tenth of the touches, 63% in
/// 20 s), so the working set can be fitted; and far below what TCG
/// sustains: on the development machine (two cores) three guests kept
/// 200,000 a second each, KSM scanning or not, and about 2,000,000 until
/// ksmd took one core (then 1.2 to 1.9 million).
pub const RATE: f64 = 20_000.0;
/// Period of memwork's rate lines.
pub const REPORT_MS: u64 = 2000;

/// The three guests' names and memwork parameters: A uniform, B hot/cold
/// (a fifth of the pages get 90% of the touches), C uniform writing five
/// times as often as A.
pub fn guest_params() -> Vec<(String, Params)> {
    let base = Params {
        mib: WORK_MIB,
        image_share: IMAGE_SHARE,
        zero_share: ZERO_SHARE,
        pattern: Pattern::Uniform,
        rate: RATE,
        write: 0.05,
        seed: IMAGE_SEED,
        instance: 1,
        report_ms: REPORT_MS,
        mergeable: false,
    };
    vec![
        ("overcommit-work-a".to_string(), base.clone()),
        (
            "overcommit-work-b".to_string(),
            Params { pattern: Pattern::HotCold { hot_share: 0.2, hot_prob: 0.9 }, instance: 2, ..base.clone() },
        ),
        ("overcommit-work-c".to_string(), Params { write: 0.25, instance: 3, ..base }),
    ]
}

/// One running guest and what its memwork was asked to do.
#[derive(Debug, Clone)]
pub struct WorkGuest {
    /// Its name, QEMU PID (`domain.pid`), console, boot time.
    pub domain: Domain,
    pub params: Params,
    /// memwork's ready line.
    pub ready: ReadyLine,
}

impl WorkGuest {
    pub fn name(&self) -> &str {
        self.domain.name()
    }

    /// memwork's rate lines on the console so far.
    pub fn rate_lines(&self) -> Vec<RateLine> {
        let text = std::fs::read(&self.domain.console).map(|b| String::from_utf8_lossy(&b).into_owned());
        RateLine::all(&text.unwrap_or_default())
    }

    /// Waits until memwork has printed `n` rate lines; returns them all.
    pub fn wait_rate_lines(&self, n: usize, limit: Duration) -> Vec<RateLine> {
        let start = Instant::now();
        loop {
            let lines = self.rate_lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < limit,
                "{}: {} rate lines after {limit:?}, waited for {n}; console:\n{}",
                self.name(),
                lines.len(),
                crate::command::tail(&self.domain.console, 20)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The guests, running.
pub struct WorkGuests {
    pub env: LibvirtEnv,
    pub kit: GuestKit,
    /// In the order of [`guest_params`].
    pub guests: Vec<WorkGuest>,
    /// KSM's `run` while they booted (None: no KSM): at 1 the host's ksmd
    /// may have merged their pages before a test looks.
    pub ksm_run_at_boot: Option<String>,
}

/// Boots the three guests and runs `f` against them; everything is torn
/// down afterwards, also when `f` panics. Prints `skipped: <reason>` and
/// returns without calling `f` where this machine cannot run them. Call
/// it holding [`crate::LOCK`].
pub fn with_work_guests(f: impl FnOnce(&WorkGuests)) {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: real guests under the system libvirtd need root");
        return;
    }
    let lock = HostLock::acquire();
    let t = Instant::now();
    let kit = match guest_kit::build() {
        Ok(kit) => kit,
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    eprintln!(
        "guest kit: {} (kernel {}), {} in {:.1?}",
        kit.kernel_package,
        kit.kernel_release,
        if kit.built { "built" } else { "cached" },
        t.elapsed()
    );
    // KSM left running by a killed test process is stopped before the
    // guests boot (a live one's is left alone, and shows in `ksm_run_at_boot`).
    if let Err(Unavailable(reason)) = ksm_guard::put_back_leftovers() {
        eprintln!("{reason}");
    }
    let ksm_run_at_boot = ksm_guard::run_now();
    // Guest RAM on 4 KiB host pages: with transparent huge pages the host
    // sees accesses, writes and KSM's work in 2 MiB units, and memwork's
    // pages, scattered by the guest's allocator, fill almost every huge
    // page within half a second: no working-set curve to fit. Put back
    // when the guests are gone, also on panic.
    let _thp = ThpNever::set();
    let params = guest_params();
    let specs: Vec<GuestSpec> = params
        .iter()
        .map(|(name, p)| GuestSpec { name: name.clone(), memory_mib: GUEST_MIB, workload: Workload::Memwork(p.keys()) })
        .collect();
    let t = Instant::now();
    let env = match LibvirtEnv::boot(lock, &kit, &specs) {
        Ok(env) => env,
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    eprintln!(
        "libvirt and {} guests up in {:.1?}; daemons started: {:?}",
        env.domains().len(),
        t.elapsed(),
        env.started_daemons()
    );
    let guests = env
        .domains()
        .iter()
        .zip(params)
        .map(|(d, (name, params))| {
            assert_eq!(d.name(), name);
            let ready = ReadyLine::parse(&d.ready.line)
                .unwrap_or_else(|| panic!("{name}: unreadable ready line {:?}", d.ready.line));
            WorkGuest { domain: d.clone(), params, ready }
        })
        .collect();
    f(&WorkGuests { env, kit, guests, ksm_run_at_boot });
}

/// `/sys/kernel/mm/transparent_hugepage/enabled` set to `never` while it
/// lives (QEMU then maps guest RAM with 4 KiB pages), and put back after.
/// A run killed before it could put it back leaves an undo file the next
/// run reads first.
struct ThpNever(Option<String>);

const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
const THP_UNDO: &str = "/tmp/overcommit-thp-enabled.undo";

impl ThpNever {
    fn set() -> ThpNever {
        if let Ok(old) = std::fs::read_to_string(THP_UNDO) {
            let _ = std::fs::write(THP_ENABLED, old.trim());
            let _ = std::fs::remove_file(THP_UNDO);
        }
        let Some(mode) = std::fs::read_to_string(THP_ENABLED).ok().and_then(|t| {
            t.split_whitespace().find(|w| w.starts_with('[')).map(|w| w.trim_matches(['[', ']']).to_string())
        }) else {
            return ThpNever(None);
        };
        let _ = std::fs::write(THP_UNDO, &mode);
        match std::fs::write(THP_ENABLED, "never") {
            Ok(()) => ThpNever(Some(mode)),
            Err(e) => {
                eprintln!("could not set transparent huge pages to never ({e}): guest RAM stays on them");
                let _ = std::fs::remove_file(THP_UNDO);
                ThpNever(None)
            }
        }
    }
}

impl Drop for ThpNever {
    fn drop(&mut self) {
        if let Some(mode) = self.0.take() {
            let _ = std::fs::write(THP_ENABLED, &mode);
            let _ = std::fs::remove_file(THP_UNDO);
        }
    }
}

/// What a check of a running guest's profile is checked against.
#[derive(Debug, Clone)]
pub struct GuestTruth {
    pub name: String,
    /// The QEMU process.
    pub qemu_pid: u32,
    /// `<memory>`.
    pub memory_mib: u64,
    /// W, S, Z, pattern, rate, write share, seeds.
    pub params: Params,
    /// Its pages by class, as memwork counted them (checked equal to
    /// [`Params::layout`]).
    pub layout: Layout,
    /// memwork's latest rate line: achieved rate, touches and writes so
    /// far, image and zero pages not written yet, and the distinct pages
    /// touched and written in its last interval.
    pub latest: Option<RateLine>,
}

/// What KSM merged of the three guests, and what memwork's layout says it
/// can merge.
///
/// Zero pages: QEMU backs guest RAM with transparent huge pages, and KSM
/// splits a huge page to merge part of it. The kernel (6.12 on) maps the
/// zero-filled parts of a huge page it splits to the shared zero page
/// there and then, so most of a guest's zero pages leave its RSS without
/// KSM counting them, in `ksm_zero_pages` or anywhere: they show as the
/// fall of the guest RAM's resident size. Pages KSM merges do not leave a
/// process's RSS (each mapping of a KSM page counts).
#[derive(Debug, Clone)]
pub struct KsmTruth {
    /// Real counters where merging settled, and how long it took.
    pub settled: Settled,
    /// Each guest's RAM resident (KiB, `Rss` of its RAM block in QEMU's
    /// smaps) before KSM ran, and once it settled.
    pub guest_ram_before_kib: Vec<u64>,
    pub guest_ram_after_kib: Vec<u64>,
    /// From memwork's image pages alone, at the touches of each guest's
    /// latest rate line: image pages still alike in at least two guests
    /// (KSM pages: `pages_shared`) and the mappings of them beyond the
    /// first (`pages_sharing`).
    pub image_shared: u64,
    pub image_sharing: u64,
    /// memwork's zero pages not written yet, in all guests.
    pub zero_intact: u64,
}

/// Everything profile checks need: per guest its truth, the census of
/// their pages, and KSM's.
#[derive(Debug, Clone)]
pub struct Truth {
    pub guests: Vec<GuestTruth>,
    /// A [`census`] taken when the truth was gathered, if one was.
    pub census: Option<Vec<GuestCensus>>,
    pub ksm: Option<KsmTruth>,
}

/// Every present page of one guest's RAM, read from the host: the exact
/// figures a profile's content sample estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestCensus {
    pub name: String,
    /// Pages of guest RAM, and of those present on the host (pagemap).
    pub pages: u64,
    pub present: u64,
    /// Present pages all zero (not counting pages mapped to the shared
    /// zero page, which hold no memory).
    pub zero: u64,
    /// Present non-zero pages whose content is in another guest at the
    /// same guest-physical address: what a sample that takes the same
    /// offsets in every guest sees as shared whatever its rate.
    pub shared_same_offset: u64,
    /// Present non-zero pages whose content is in another guest anywhere:
    /// what KSM can merge across guests. A sample at rate r sees the part
    /// not at the same offset as shared with chance r (the twin must be
    /// sampled too).
    pub shared_anywhere: u64,
    /// Of `shared_anywhere`, the pages whose content occurs once in this
    /// guest: what `overcommit profile` reports as shared (a content with
    /// copies in its own guest is reported as a duplicate).
    pub shared_once: u64,
    /// Present non-zero pages whose content occurs twice or more in this
    /// guest (each such page counts).
    pub duplicate: u64,
    /// memwork's image pages found in its RAM (by their whole content: those
    /// not written since the fill), and of those, how many sit at the same
    /// guest-physical address as the same image page in another guest
    /// (hardly any: each guest's kernel placed memwork's pages itself).
    pub image_found: u64,
    pub image_same_offset: u64,
}

/// Where a QEMU process maps its guest's RAM: the start of its one
/// mapping of exactly `guest_kib` (as [`proc_mem`] finds it). On the `pc`
/// machine a guest under 3.5 GiB has its RAM at guest-physical 0 up, so
/// an offset in this mapping is a guest-physical address.
pub fn guest_ram_start(pid: u32, guest_kib: u64) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("QEMU's smaps");
    let mut found = Vec::new();
    let mut start = None;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, _)) = first.split_once('-')
            && let Ok(a) = u64::from_str_radix(a, 16)
        {
            start = Some(a);
        } else if first == "Size:" && line.split_whitespace().nth(1).and_then(|v| v.parse().ok()) == Some(guest_kib) {
            found.extend(start);
        }
    }
    assert_eq!(found.len(), 1, "QEMU pid {pid}: mappings of exactly {guest_kib} KiB at {found:x?}");
    found[0]
}

/// A page's 64-bit hash, or None for a zero page (collisions among a few
/// hundred thousand pages are negligible).
fn page_hash(page: &[u8]) -> Option<u64> {
    let (mut h, mut any) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
    for w in page.chunks_exact(8) {
        let w = u64::from_le_bytes(w.try_into().unwrap());
        any |= w;
        h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    }
    (any != 0).then_some(h)
}

/// Reads every present page of each guest's RAM through /proc/PID/mem
/// (present per /proc/PID/pagemap; nothing is faulted in) and counts what
/// [`GuestCensus`] holds. It takes about a second for three 512 MiB guests,
/// which go on writing meanwhile (a few hundred pages a second between
/// them). Reading a page marks it accessed, as any read through
/// /proc/PID/mem does: take a census after measuring working sets, not
/// during.
pub fn census(g: &WorkGuests) -> Vec<GuestCensus> {
    use std::collections::HashMap;
    use std::os::unix::fs::FileExt;
    // memwork's image pages by their first word (distinct for each page).
    let params = &g.guests[0].params;
    let layout = params.layout();
    let image_first: HashMap<u64, u64> =
        (0..layout.image).map(|p| (memwork::filled_word(params, &layout, p, 0), p)).collect();
    // Per guest: the hash at each present offset, and where each image page is.
    let mut hashes: Vec<Vec<Option<Option<u64>>>> = Vec::new();
    let mut image_at: Vec<HashMap<u64, u64>> = Vec::new();
    for w in &g.guests {
        assert_eq!(&w.params.seed, &params.seed, "one image");
        let guest_kib = w.domain.spec.memory_mib * 1024;
        let (pid, start, pages) = (w.domain.pid, guest_ram_start(w.domain.pid, guest_kib), guest_kib / 4);
        let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).expect("QEMU's pagemap");
        let mut entries = vec![0u8; pages as usize * 8];
        pagemap.read_exact_at(&mut entries, start / 4096 * 8).expect("pagemap read");
        // Present and holding memory: a page mapped to the shared zero page
        // is present to pagemap but holds none (and is not in Rss).
        let zero_frames = overcommit::profile::procfs::ZeroFrames::here();
        let present: Vec<bool> = entries
            .chunks_exact(8)
            .map(|e| {
                let e = overcommit::profile::procfs::PageEntry(u64::from_le_bytes(e.try_into().unwrap()));
                e.present() && !e.swapped() && !zero_frames.is_zero(e.pfn())
            })
            .collect();
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("QEMU's memory");
        let chunk_pages = 512u64;
        let mut buf = vec![0u8; (chunk_pages * 4096) as usize];
        let mut seen = vec![None; pages as usize];
        let mut found = HashMap::new();
        // Runs of present pages only, at most a chunk at a time: reading a
        // page that is not present would map the zero page into it (a read
        // fault), and the guest would hold "present" zero pages it never
        // had for whatever looks at it next.
        let mut c = 0u64;
        while c < pages {
            if !present[c as usize] {
                c += 1;
                continue;
            }
            let mut n = 1;
            while n < chunk_pages && c + n < pages && present[(c + n) as usize] {
                n += 1;
            }
            let buf = &mut buf[..(n * 4096) as usize];
            mem.read_exact_at(buf, start + c * 4096).expect("guest RAM read");
            let run = c;
            c += n;
            for (i, page) in buf.chunks_exact(4096).enumerate() {
                let o = run + i as u64;
                seen[o as usize] = Some(page_hash(page));
                // An image page as filled: every word (a write changes one).
                let word = |k: u64| u64::from_le_bytes(page[k as usize * 8..k as usize * 8 + 8].try_into().unwrap());
                if let Some(&p) = image_first.get(&word(0))
                    && (1..memwork::WORDS_PER_PAGE).all(|k| word(k) == memwork::filled_word(params, &layout, p, k))
                {
                    found.insert(p, o);
                }
            }
        }
        hashes.push(seen);
        image_at.push(found);
    }
    // In how many guests each hash occurs, and how often in each.
    let counts: Vec<HashMap<u64, u32>> = hashes
        .iter()
        .map(|seen| {
            let mut c = HashMap::new();
            for h in seen.iter().flatten().flatten() {
                *c.entry(*h).or_insert(0) += 1;
            }
            c
        })
        .collect();
    g.guests
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let seen = &hashes[i];
            let others = |f: &dyn Fn(usize) -> bool| (0..hashes.len()).filter(|&j| j != i).any(f);
            let mut c = GuestCensus {
                name: w.name().to_string(),
                pages: seen.len() as u64,
                present: seen.iter().filter(|s| s.is_some()).count() as u64,
                zero: seen.iter().filter(|s| **s == Some(None)).count() as u64,
                shared_same_offset: 0,
                shared_anywhere: 0,
                shared_once: 0,
                duplicate: 0,
                image_found: image_at[i].len() as u64,
                image_same_offset: image_at[i]
                    .iter()
                    .filter(|(p, o)| others(&|j| image_at[j].get(p) == Some(o)))
                    .count() as u64,
            };
            for (o, s) in seen.iter().enumerate() {
                let Some(Some(h)) = s else { continue };
                c.shared_same_offset += u64::from(others(&|j| hashes[j].get(o) == Some(&Some(Some(*h)))));
                let elsewhere = others(&|j| counts[j].contains_key(h));
                c.shared_anywhere += u64::from(elsewhere);
                c.shared_once += u64::from(elsewhere && counts[i][h] == 1);
                c.duplicate += u64::from(counts[i][h] > 1);
            }
            c
        })
        .collect()
}

/// Gathers the truth of the running guests now (the latest rate lines),
/// with a [`census`] and KSM's figures (see [`ksm_truth`]) where taken.
pub fn truth(g: &WorkGuests, census: Option<Vec<GuestCensus>>, ksm: Option<KsmTruth>) -> Truth {
    let guests = g
        .guests
        .iter()
        .map(|w| GuestTruth {
            name: w.name().to_string(),
            qemu_pid: w.domain.pid,
            memory_mib: w.domain.spec.memory_mib,
            params: w.params.clone(),
            layout: w.ready.layout(),
            latest: w.rate_lines().pop(),
        })
        .collect();
    Truth { guests, census, ksm }
}

/// KSM's truth for the guests: `settled`, with the guests' resident RAM
/// before (`guest_ram_before_kib`) and now, and what memwork's image and
/// zero pages account for, replayed at each guest's latest rate line.
pub fn ksm_truth(g: &WorkGuests, settled: Settled, guest_ram_before_kib: Vec<u64>) -> KsmTruth {
    let replays: Vec<Replay> = g
        .guests
        .iter()
        .map(|w| {
            let mut r = Replay::new(&w.params);
            r.advance_to(w.rate_lines().last().map_or(0, |l| l.touches));
            r
        })
        .collect();
    let image = g.guests.iter().map(|w| w.ready.image).min().unwrap_or(0);
    let (mut image_shared, mut image_sharing) = (0, 0);
    for page in 0..image as usize {
        let alike = replays.iter().filter(|r| !r.written[page]).count() as u64;
        if alike >= 2 {
            image_shared += 1;
            image_sharing += alike - 1;
        }
    }
    let zero_intact = replays.iter().map(|r| r.intact().1).sum();
    KsmTruth {
        settled,
        guest_ram_before_kib,
        guest_ram_after_kib: guest_ram_kib(g),
        image_shared,
        image_sharing,
        zero_intact,
    }
}

impl KsmTruth {
    /// Pages that left the guests' RSS (zero pages mapped to the shared
    /// zero page) while KSM ran.
    pub fn resident_fall_pages(&self) -> u64 {
        let sum = |v: &[u64]| v.iter().sum::<u64>();
        sum(&self.guest_ram_before_kib).saturating_sub(sum(&self.guest_ram_after_kib)) / 4
    }
}

/// Each guest's RAM resident now, KiB.
pub fn guest_ram_kib(g: &WorkGuests) -> Vec<u64> {
    g.guests.iter().map(|w| proc_mem(w.domain.pid, w.domain.spec.memory_mib * 1024).guest_ram_kib).collect()
}

/// The truth, as figures worth reading in a test's output.
pub fn describe(t: &Truth) {
    for x in &t.guests {
        let latest = x.latest.as_ref().map_or("no rate line yet".to_string(), |l| {
            format!(
                "at {:.0} s: {:.0} touches/s, {} touches, {} writes, {} pages written, image intact {}, zero intact {}",
                l.t_ms / 1e3,
                l.achieved,
                l.touches,
                l.writes,
                l.written_pages,
                l.intact_image,
                l.intact_zero
            )
        });
        eprintln!(
            "truth {}: QEMU pid {}, {} MiB; memwork W {} MiB S {} Z {} {} at {}/s writing {} (seed {}, instance {}): \
             {:?}; {latest}",
            x.name,
            x.qemu_pid,
            x.memory_mib,
            x.params.mib,
            x.params.image_share,
            x.params.zero_share,
            x.params.pattern,
            x.params.rate,
            x.params.write,
            x.params.seed,
            x.params.instance,
            x.layout
        );
    }
    for c in t.census.iter().flatten() {
        eprintln!(
            "census {}: {} of {} pages present, {} zero, {} shared with another guest at the same address and {} \
             anywhere ({} of them once in this guest), {} duplicated within; memwork's image pages: {} found whole, {} at the same address as in \
             another guest",
            c.name,
            c.present,
            c.pages,
            c.zero,
            c.shared_same_offset,
            c.shared_anywhere,
            c.shared_once,
            c.duplicate,
            c.image_found,
            c.image_same_offset
        );
    }
    if let Some(k) = &t.ksm {
        let c = k.settled.counters;
        eprintln!(
            "truth KSM: settled after {:.1?} ({} full scans; 90% after {:.1?}): pages_sharing {}, pages_shared {}, \
             ksm_zero_pages {}; memwork's image accounts for {} sharing and {} shared, its intact zero pages are {}; \
             guest RAM resident {:?} -> {:?} KiB ({} pages fell); pages_sharing at each full scan {:?}",
            k.settled.took,
            k.settled.scans,
            k.settled.to_90_percent,
            c.pages_sharing,
            c.pages_shared,
            c.ksm_zero_pages,
            k.image_sharing,
            k.image_shared,
            k.zero_intact,
            k.guest_ram_before_kib,
            k.guest_ram_after_kib,
            k.resident_fall_pages(),
            k.settled
                .trace
                .iter()
                .map(|(t, c)| (format!("{:.1}s", t.as_secs_f64()), c.pages_sharing))
                .collect::<Vec<_>>()
        );
    }
}

/// Checks a guest's rate lines against its parameters and the replay:
/// the rate kept (within 5%, nothing dropped) once it runs, and the pages
/// written exactly those the replay of its touches writes.
fn check_rate_lines(w: &WorkGuest, lines: &[RateLine]) {
    let name = w.name();
    let last = lines.last().expect("rate lines");
    assert_eq!(last.skipped, 0, "{name}: memwork fell more than a second behind: {last:?}");
    // The first interval starts at the ready line; later ones are whole.
    for l in &lines[1..] {
        assert!(
            (l.achieved - w.params.rate).abs() <= 0.05 * w.params.rate,
            "{name}: achieved {} touches/s of {}: {l:?}",
            l.achieved,
            w.params.rate
        );
    }
    let mut replay = Replay::new(&w.params);
    replay.advance_to(last.touches);
    let (intact_image, intact_zero) = replay.intact();
    assert_eq!(
        (replay.writes, replay.written_pages, intact_image, intact_zero),
        (last.writes, last.written_pages, last.intact_image, last.intact_zero),
        "{name}: memwork's counts against the replay of its {} touches",
        last.touches
    );
}

#[test]
fn three_tcg_guests_run_memwork_at_their_rate_and_ksm_merges_their_image() {
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let test_start = Instant::now();
    with_work_guests(|g| {
        eprintln!("guest kernel {}, libvirt daemons started here: {:?}", g.kit.kernel_release, g.env.started_daemons());
        for w in &g.guests {
            let want = w.params.layout();
            assert_eq!(w.ready.layout(), want, "{}: {}", w.name(), w.ready.line);
            assert_eq!(w.ready.pages * memwork::PAGE_SIZE, WORK_MIB << 20);
            assert_eq!(w.ready.instance, w.params.instance);
            eprintln!(
                "{}: QEMU pid {}, boot {:.1?}, fill {:.0} ms; {} pages: image {}, zero {}, unique {}, hot {}; \
                 {} touches/s, write {}",
                w.name(),
                w.domain.pid,
                w.domain.boot_time,
                w.ready.fill_ms,
                w.ready.pages,
                w.ready.image,
                w.ready.zero,
                w.ready.unique,
                w.ready.hot,
                w.params.rate,
                w.params.write
            );
        }
        // Three rate lines: two whole intervals after the first.
        for w in &g.guests {
            let lines = w.wait_rate_lines(3, Duration::from_secs(60));
            check_rate_lines(w, &lines);
            let achieved: Vec<String> = lines[1..].iter().map(|l| format!("{:.0}", l.achieved)).collect();
            let last = lines.last().unwrap();
            eprintln!(
                "{}: achieved {} touches/s (target {}); after {} touches: {} pages written, \
                 image intact {}, zero intact {}; last {:.0} ms: {} pages touched ({:.0} expected), {} written",
                w.name(),
                achieved.join(", "),
                w.params.rate,
                last.touches,
                last.written_pages,
                last.intact_image,
                last.intact_zero,
                last.interval_ms,
                last.interval_pages,
                w.params.expected_distinct_pages(last.interval_touches as f64),
                last.interval_written
            );
        }

        // `overcommit profile` of the three, before the census (whose reads
        // mark every page accessed).
        let profiled = crate::profile_guests::profile(g);

        // Every page of their RAM, read from the host. The image pages found
        // whole are those memwork has not written: at most as many as at
        // its rate line before the census, at least as many as at the one
        // after.
        let lines_before: Vec<RateLine> = g.guests.iter().map(|w| w.rate_lines().pop().expect("rate lines")).collect();
        let t = Instant::now();
        let counted = census(g);
        eprintln!("census of the three guests in {:.1?}", t.elapsed());
        let t_plain = truth(g, Some(counted.clone()), None);
        describe(&t_plain);
        crate::profile_guests::check(g, &profiled, &counted);
        for ((w, c), before) in g.guests.iter().zip(&counted).zip(&lines_before) {
            let n = w.rate_lines().len();
            let after = w.wait_rate_lines(n + 1, Duration::from_secs(30)).pop().expect("rate lines");
            assert!(after.touches > before.touches);
            assert!(
                (after.intact_image..=before.intact_image).contains(&c.image_found),
                "{c:?}: {} intact at the rate line before, {} after",
                before.intact_image,
                after.intact_image
            );
            assert!(c.zero >= before.intact_zero, "{c:?}");
            assert!(c.shared_anywhere >= c.image_found && c.shared_anywhere >= c.shared_same_offset, "{c:?}");
        }

        // The scenario `import live --profile` builds for the three, before
        // KSM runs: the loop is closed against what KSM then merges.
        let imported = crate::profile_guests::import_with_profile();

        let mut ksm = match KsmGuard::take() {
            Ok(k) => k,
            Err(Unavailable(reason)) => {
                eprintln!("KSM part skipped: {reason}");
                return;
            }
        };
        let before = ksm_guard::counters();
        let ram_before = guest_ram_kib(g);
        let t = Instant::now();
        ksm.start(10_000, 10, true);
        let settled = ksm_guard::settle(3, 0.01, Duration::from_secs(300));
        let c = settled.counters;
        eprintln!(
            "KSM (run was {}): settled after {:.1?} and {} full scans (90% after {:.1?}): pages_sharing {} \
             ({} MiB saved), pages_shared {}, ksm_zero_pages {} ({} MiB), pages_unshared {}, pages_volatile {}",
            ksm.run_before(),
            settled.took,
            settled.scans,
            settled.to_90_percent,
            c.pages_sharing,
            c.pages_sharing / 256,
            c.pages_shared,
            c.ksm_zero_pages,
            c.ksm_zero_pages / 256,
            c.pages_unshared,
            c.pages_volatile
        );
        for w in &g.guests {
            let lines = w.rate_lines();
            let l = lines.last().expect("rate lines");
            eprintln!("{}: with ksmd running, achieved {:.0} touches/s, skipped {}", w.name(), l.achieved, l.skipped);
        }
        let kt = ksm_truth(g, settled, ram_before);
        eprintln!(
            "memwork's image pages account for pages_shared {} and pages_sharing {} of that (the rest: the guests' \
             kernels and initramfs alike); its intact zero pages are {}, and {} pages left the guests' RSS",
            kt.image_shared,
            kt.image_sharing,
            kt.zero_intact,
            kt.resident_fall_pages()
        );
        // KSM merged at least the image pages still alike (less what was
        // written between the rate lines and ksmd's last pass).
        assert!(c.pages_sharing as f64 >= 0.95 * kt.image_sharing as f64, "{c:?} {kt:?}");
        // The zero pages went to the zero page, through KSM or through the
        // split of their huge page, now: unless a ksmd of the host's ran
        // while they booted.
        let zero_gone = kt.resident_fall_pages().max(c.ksm_zero_pages);
        if g.ksm_run_at_boot.as_deref() != Some("1") {
            assert!(zero_gone as f64 >= 0.9 * kt.zero_intact as f64, "{c:?} {kt:?}");
        } else {
            eprintln!("KSM ran while the guests booted: {zero_gone} zero pages went now, not checked");
        }
        assert!(before.pages_sharing <= c.pages_sharing);
        crate::profile_guests::check_ksm_loop(&imported, kt.settled.took, c.pages_sharing);

        crate::profile_guests::check_ksm_state(g);
        let t_ksm = truth(g, None, Some(kt));
        describe(&t_ksm);

        let run_before = ksm.run_before().to_string();
        drop(ksm);
        let after = ksm_guard::counters();
        let run_after = std::fs::read_to_string(format!("{}/run", ksm_guard::KSM)).unwrap_or_default();
        eprintln!(
            "KSM put back in {:.1?} after starting it: run {} -> {}, {after:?}",
            t.elapsed(),
            run_before,
            run_after.trim()
        );
        assert_eq!(run_after.trim(), run_before, "KSM's run as before");
        if run_before != "1" {
            assert_eq!(
                (after.pages_shared, after.pages_sharing, after.ksm_zero_pages),
                (0, 0, 0),
                "nothing stays merged"
            );
        }
    });
    eprintln!("test took {:.1?}", test_start.elapsed());
}

/// The pages of a host memwork's map as `/proc/PID/smaps` counts them:
/// (Size, Rss) in KiB of the mapping that starts at `addr`.
fn smaps_of(pid: u32, addr: u64) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let mut in_map = false;
    let (mut size, mut rss) = (None, None);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, _)) = first.split_once('-')
            && u64::from_str_radix(start, 16).is_ok()
            && !first.ends_with(':')
        {
            in_map = u64::from_str_radix(start, 16) == Ok(addr);
            continue;
        }
        let value = || line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok());
        if in_map && first == "Size:" {
            size = value();
        } else if in_map && first == "Rss:" {
            rss = value();
        }
    }
    (size.expect("memwork's mapping in smaps"), rss.expect("its Rss"))
}

#[test]
fn host_memwork_holds_its_map_resident_and_writes_exactly_the_replayed_pages() {
    use std::os::unix::fs::FileExt;
    let _guard = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let params = Params {
        mib: 64,
        image_share: 0.3,
        zero_share: 0.2,
        pattern: Pattern::HotCold { hot_share: 0.2, hot_prob: 0.9 },
        rate: 20_000.0,
        write: 0.1,
        seed: 7,
        instance: 11,
        report_ms: 250,
        mergeable: true,
    };
    let m = match HostMemwork::spawn(&params) {
        Ok(m) => m,
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let layout = m.params.layout();
    assert_eq!(m.ready.layout(), layout, "{}", m.ready.line);
    assert_eq!(m.ready.pid, m.pid);
    let (size, rss) = smaps_of(m.pid, m.ready.addr);
    eprintln!("memwork pid {}: {}; smaps Size {size} kB, Rss {rss} kB", m.pid, m.ready.line);
    assert_eq!((size, rss), (params.mib * 1024, params.mib * 1024), "the whole map is resident");

    // ---- `overcommit profile` of a host process: its assertions go here
    // (m.pid, m.params, m.ready, m.rate_lines()). ----

    // Its memory, read between two rate lines: each page differs from its
    // fill exactly if the replay wrote it, by the earlier line's touches
    // at least, by the later one's at most.
    let earlier = m.wait_rate_line(m.rate_lines().len() + 1, Duration::from_secs(10));
    let mem = std::fs::File::open(format!("/proc/{}/mem", m.pid)).expect("/proc/PID/mem");
    let mut bytes = vec![0u8; (params.mib << 20) as usize];
    mem.read_exact_at(&mut bytes, m.ready.addr).expect("memwork's map read");
    let n = m.rate_lines().len();
    let later = m.wait_rate_line(n + 1, Duration::from_secs(10));
    let changed: Vec<bool> = bytes
        .chunks_exact(memwork::PAGE_SIZE as usize)
        .enumerate()
        .map(|(page, b)| {
            b.chunks_exact(8).enumerate().any(|(word, w)| {
                u64::from_ne_bytes(w.try_into().unwrap())
                    != memwork::filled_word(&params, &layout, page as u64, word as u64)
            })
        })
        .collect();
    let (mut at_least, mut at_most) = (Replay::new(&params), Replay::new(&params));
    at_least.advance_to(earlier.touches);
    at_most.advance_to(later.touches);
    let (intact_image, intact_zero) = at_least.intact();
    assert_eq!(
        (at_least.writes, at_least.written_pages, intact_image, intact_zero),
        (earlier.writes, earlier.written_pages, earlier.intact_image, earlier.intact_zero),
        "memwork's counts against the replay"
    );
    for (page, &c) in changed.iter().enumerate() {
        assert!(
            !at_least.written[page] || c,
            "page {page} was written by touch {} but holds its fill",
            earlier.touches
        );
        assert!(
            !c || at_most.written[page],
            "page {page} differs from its fill but no touch to {} wrote it",
            later.touches
        );
    }
    let lines = m.rate_lines();
    for l in &lines[1..] {
        assert!((l.achieved - params.rate).abs() <= 0.05 * params.rate, "achieved {l:?}");
    }
    eprintln!(
        "{} pages changed, written by {}..{} touches: {}..{}; achieved {} touches/s",
        changed.iter().filter(|&&c| c).count(),
        earlier.touches,
        later.touches,
        at_least.written_pages,
        at_most.written_pages,
        lines[1..].iter().map(|l| format!("{:.0}", l.achieved)).collect::<Vec<_>>().join(", ")
    );
}
