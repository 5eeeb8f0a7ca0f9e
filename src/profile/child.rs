//! A process with a known workload, for checking the profiler against the
//! truth (tests and the benchmark): it maps W MiB of private anonymous
//! memory, fills it with known content (the first share `image` of pages
//! with content keyed only by page index and an image seed, so two
//! instances hold the same pages; the next share `zero` zero; the rest
//! unique to the instance; with `scatter` each page's class is the
//! model's, from a hash of its index, so every 2 MiB range holds some of
//! each), or with `read_only` only reads it (every
//! page maps the shared zero page, or with `thp` the huge zero page: page
//! tables without memory, as the benchmark needs for 16 × 8 GiB), then
//! touches pages at `rate` a second with the pattern (over the last share
//! `working_set` of the pages), each touch writing with probability
//! `write`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::model::page::mix64;
use crate::model::workload::Sampler;
use crate::scenario::Pattern;

/// What the child does (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ChildSpec {
    /// Size of its map, MiB
    #[arg(long)]
    pub mib: u64,
    /// Page touches a second
    #[arg(long)]
    pub rate: f64,
    /// uniform, zipf(S) or hotcold(F, P)
    #[arg(long, default_value = "uniform", value_parser = crate::scenario::parse_pattern)]
    pub pattern: Pattern,
    /// Share of touches that write
    #[arg(long, default_value_t = 0.0)]
    pub write: f64,
    /// Share of pages with the image's content
    #[arg(long, default_value_t = 0.0)]
    pub image: f64,
    /// Share of zero pages
    #[arg(long, default_value_t = 0.0)]
    pub zero: f64,
    #[arg(long, default_value_t = 1)]
    pub image_seed: u64,
    #[arg(long, default_value_t = 0)]
    pub instance: u64,
    /// Share of the map it touches after the fill: the last pages, so the
    /// image and zero pages at the front lie outside its working set
    /// when this leaves them out
    #[arg(long, default_value_t = 1.0)]
    pub working_set: f64,
    /// Place the image and zero pages as the model does (by a hash of the
    /// page index, spread over the whole map) instead of at its front
    #[arg(long)]
    pub scatter: bool,
    /// Only read the memory (it maps the zero page: page tables without memory)
    #[arg(long)]
    pub read_only: bool,
    /// Transparent huge pages (MADV_HUGEPAGE), as QEMU asks for guest RAM
    #[arg(long)]
    pub thp: bool,
    /// Offer the map to KSM after the fill (MADV_MERGEABLE), as QEMU does
    /// for guest RAM unless told not to (`mem-merge=off`)
    #[arg(long)]
    pub mergeable: bool,
    /// Register the map with userfaultfd for asynchronous write protection
    /// (after the fill), as a VMM may, so PAGEMAP_SCAN sees its writes
    #[arg(long)]
    pub uffd_wp: bool,
    /// After every this many touches (a multiple of 64), print its touches
    /// and its major faults so far (`/proc/self/stat`); 0: never
    #[arg(long, default_value_t = 0)]
    pub report_every: u64,
    /// Exit after this many touches; 0: run until killed
    #[arg(long, default_value_t = 0)]
    pub touches: u64,
}

/// This process's major faults so far (field 12 of `/proc/self/stat`).
fn major_faults() -> std::io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name, field 2, may hold spaces: count from after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(9)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no majflt in /proc/self/stat"))
}

/// The page's 8-byte words: `seed`-keyed, never all zero.
fn fill(page: &mut [u8], key: u64) {
    for (i, w) in page.chunks_exact_mut(8).enumerate() {
        let v = mix64(key ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Run the child: it returns after `touches` touches, or never (it is
/// killed).
pub fn run(spec: &ChildSpec) -> std::io::Result<()> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    if spec.mib == 0 {
        return Err(bad("--mib must be at least 1".into()));
    }
    if !(spec.rate > 0.0 && spec.rate.is_finite()) {
        return Err(bad(format!("--rate {} is not a positive rate", spec.rate)));
    }
    if !spec.report_every.is_multiple_of(64) {
        return Err(bad(format!(
            "--report-every {} is not a multiple of 64 (touches go in batches of 64)",
            spec.report_every
        )));
    }
    if !(spec.working_set > 0.0 && spec.working_set <= 1.0) {
        return Err(bad(format!("--working-set {} is not a share in (0, 1]", spec.working_set)));
    }
    let len = (spec.mib << 20) as usize;
    let mut map = memmap2::MmapMut::map_anon(len)?;
    if spec.thp {
        map.advise(memmap2::Advice::HugePage)?;
    }
    let pages = len / 4096;
    let image = (pages as f64 * spec.image).round() as usize;
    let zero = (pages as f64 * spec.zero).round() as usize;
    let classes = crate::model::page::Shares { shared: spec.image, zero: spec.zero, ..Default::default() }.classifier();
    let class = |p: usize| {
        use crate::model::page::Content;
        if spec.scatter {
            classes.content(p as u64)
        } else if p < image {
            Content::Shared
        } else if p < image + zero {
            Content::Zero
        } else {
            Content::Unique
        }
    };
    let mut sink = 0u8;
    for p in 0..pages {
        let page = &mut map[p * 4096..(p + 1) * 4096];
        if spec.read_only {
            sink ^= std::hint::black_box(page[0]);
        } else if class(p) == crate::model::page::Content::Shared {
            fill(page, mix64(spec.image_seed) ^ p as u64);
        } else if class(p) == crate::model::page::Content::Zero {
            page.fill(0);
        } else {
            fill(page, mix64(spec.instance.wrapping_add(0xC0FFEE)) ^ mix64(p as u64));
        }
    }
    std::hint::black_box(sink);
    if spec.mergeable {
        map.advise(memmap2::Advice::Mergeable)?;
    }
    let _uffd = if spec.uffd_wp {
        Some(super::pagemap_scan::register_wp_async(map.as_ptr() as u64, len as u64)?)
    } else {
        None
    };
    println!("touch-child: ready pages={pages} image={image} zero={zero}");
    std::io::stdout().flush()?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.instance ^ 0x7011C8);
    // The model's own sampler: page rank is page index, as the model plays
    // it, over the last `touched` pages.
    let touched = ((pages as f64 * spec.working_set).round() as u64).max(1);
    let first = pages as u64 - touched;
    let sampler = Sampler::exact(&spec.pattern, touched);
    let write_threshold = (spec.write.clamp(0.0, 1.0) * 4_294_967_295.0) as u32;
    let start = Instant::now();
    let mut done: u64 = 0;
    let mut stamp = spec.instance << 32;
    loop {
        // Batches of 64 touches, then sleep to keep the rate.
        for _ in 0..64 {
            let (p, bits) = sampler.draw(&mut rng);
            let at = (first + p) as usize * 4096 + 8 * rng.random_range(0..512usize);
            if !spec.read_only && bits < write_threshold {
                stamp += 1;
                map[at..at + 8].copy_from_slice(&(stamp | 1).to_le_bytes());
            } else {
                sink ^= std::hint::black_box(map[at]);
            }
        }
        done += 64;
        if spec.report_every > 0 && done.is_multiple_of(spec.report_every) {
            println!("touch-child: touches={done} majflt={}", major_faults()?);
            std::io::stdout().flush()?;
        }
        if spec.touches > 0 && done >= spec.touches {
            std::hint::black_box(sink);
            return Ok(());
        }
        let due = Duration::from_secs_f64(done as f64 / spec.rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        std::hint::black_box(sink);
    }
}
