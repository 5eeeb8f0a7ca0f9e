//! memwork (`guest/memwork.c`) seen from the tests: its parameters, the
//! page layout and content they give, a replay of its touches (which pages
//! it has written after a given number of touches), its output lines, and
//! [`HostMemwork`], a harness that runs it as a child process on the host.
//!
//! Everything here follows the description at the top of memwork.c; the
//! host-process test checks it against the real program's memory.

use crate::guest_kit::{self, Unavailable};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The page size memwork's layout is in (x86-64).
pub const PAGE_SIZE: u64 = 4096;
pub const WORDS_PER_PAGE: u64 = PAGE_SIZE / 8;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn fmix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// memwork's `mix`: never zero.
fn mix(x: u64) -> u64 {
    match fmix(x.wrapping_add(GOLDEN)) {
        0 => 0x5a5a_5a5a_5a5a_5a5a,
        v => v,
    }
}

fn mulhi(r: u64, n: u64) -> u64 {
    ((r as u128 * n as u128) >> 64) as u64
}

fn threshold(share: f64) -> u64 {
    if share >= 1.0 { 1 << 32 } else { (share * 4294967296.0) as u64 }
}

fn share_of(n: u64, share: f64) -> u64 {
    (n as f64 * share + 0.5) as u64
}

/// Which pages the touches go to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Over all pages alike.
    Uniform,
    /// `hotcold:F:P`: the first `hot_share` of the pages get `hot_prob`
    /// of the touches; uniform within each set.
    HotCold { hot_share: f64, hot_prob: f64 },
}

impl std::fmt::Display for Pattern {
    /// As memwork takes it. Rust writes the shortest decimal that reads
    /// back as the same f64, and C's strtod reads it to that f64 too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Uniform => write!(f, "uniform"),
            Pattern::HotCold { hot_share, hot_prob } => write!(f, "hotcold:{hot_share}:{hot_prob}"),
        }
    }
}

/// memwork's parameters (see memwork.c for each).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// W: MiB mapped and filled.
    pub mib: u64,
    /// S: share of the pages (the first ones) with image content.
    pub image_share: f64,
    /// Z: share of the pages (after the image) left zero.
    pub zero_share: f64,
    pub pattern: Pattern,
    /// R: page touches a second.
    pub rate: f64,
    /// Share of the touches that write.
    pub write: f64,
    /// The image seed: the same in instances whose image pages are alike.
    pub seed: u64,
    /// The per-instance seed: unique pages, the touch stream, written values.
    pub instance: u64,
    /// Period of the `memwork: rate` lines.
    pub report_ms: u64,
    /// madvise(MADV_MERGEABLE) the map (host processes: a guest's RAM is
    /// mergeable through QEMU).
    pub mergeable: bool,
}

impl Params {
    /// Its parameters as `(key, value)`: `memwork.KEY=VALUE` on a kernel
    /// command line, `--key value` (underscores as dashes) in argv.
    pub fn keys(&self) -> Vec<(String, String)> {
        let mut keys = vec![
            ("mib", self.mib.to_string()),
            ("image_share", self.image_share.to_string()),
            ("zero_share", self.zero_share.to_string()),
            ("pattern", self.pattern.to_string()),
            ("rate", self.rate.to_string()),
            ("write", self.write.to_string()),
            ("seed", self.seed.to_string()),
            ("instance", self.instance.to_string()),
            ("report_ms", self.report_ms.to_string()),
        ];
        if self.mergeable {
            keys.push(("mergeable", "1".into()));
        }
        keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The host program's arguments (`--mergeable` is a flag).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in self.keys() {
            args.push(format!("--{}", k.replace('_', "-")));
            if k != "mergeable" {
                args.push(v);
            }
        }
        args
    }

    pub fn layout(&self) -> Layout {
        let pages = self.mib * (1 << 20) / PAGE_SIZE;
        let image = share_of(pages, self.image_share).min(pages);
        let zero = share_of(pages, self.zero_share).min(pages - image);
        let hot = match self.pattern {
            Pattern::HotCold { hot_share, .. } => share_of(pages, hot_share),
            Pattern::Uniform => 0,
        };
        let hot = if hot > 0 && hot < pages { hot } else { 0 };
        Layout { pages, image, zero, unique: pages - image - zero, hot }
    }

    /// Expected distinct pages that `touches` touches reach (each page
    /// drawn independently): per set of n pages drawn t times,
    /// n (1 − (1 − 1/n)^t). With `touches` = rate × window, the
    /// workload's own working set over that window; with touches × write,
    /// the pages it writes in it.
    pub fn expected_distinct_pages(&self, touches: f64) -> f64 {
        let l = self.layout();
        let reach = |n: u64, t: f64| if n == 0 { 0.0 } else { n as f64 * (1.0 - (1.0 - 1.0 / n as f64).powf(t)) };
        match self.pattern {
            Pattern::HotCold { hot_prob, .. } if l.hot > 0 => {
                reach(l.hot, touches * hot_prob) + reach(l.pages - l.hot, touches * (1.0 - hot_prob))
            }
            _ => reach(l.pages, touches),
        }
    }
}

/// Page counts of memwork's map, in its order: image, zero, unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub pages: u64,
    pub image: u64,
    pub zero: u64,
    pub unique: u64,
    /// Hot pages (the first ones); 0 for a uniform pattern.
    pub hot: u64,
}

/// What a page holds after the fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Image,
    Zero,
    Unique,
}

impl Layout {
    pub fn class(&self, page: u64) -> Class {
        if page < self.image {
            Class::Image
        } else if page < self.image + self.zero {
            Class::Zero
        } else {
            Class::Unique
        }
    }
}

/// Word `word` of page `page` after the fill, never written since.
pub fn filled_word(p: &Params, layout: &Layout, page: u64, word: u64) -> u64 {
    let index = page * WORDS_PER_PAGE + word;
    match layout.class(page) {
        Class::Image => mix(mix(mix(p.seed) ^ 1) ^ index),
        Class::Zero => 0,
        Class::Unique => mix(mix(mix(p.instance) ^ 2) ^ index),
    }
}

/// memwork's touches, replayed: after [`Replay::advance_to`]`(n)`, the
/// pages written by its first n touches.
#[derive(Debug, Clone)]
pub struct Replay {
    layout: Layout,
    state: u64,
    hot_thr: u64,
    write_thr: u64,
    pub touches: u64,
    pub writes: u64,
    /// Per page: whether a touch so far wrote it.
    pub written: Vec<bool>,
    pub written_pages: u64,
}

impl Replay {
    pub fn new(p: &Params) -> Replay {
        let layout = p.layout();
        let hot_prob = match p.pattern {
            Pattern::HotCold { hot_prob, .. } => hot_prob,
            Pattern::Uniform => 0.0,
        };
        Replay {
            layout,
            state: mix(mix(p.instance) ^ 3),
            hot_thr: threshold(hot_prob),
            write_thr: threshold(p.write),
            touches: 0,
            writes: 0,
            written: vec![false; layout.pages as usize],
            written_pages: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        fmix(self.state)
    }

    /// Replays touches until `touches` were made (never backwards).
    pub fn advance_to(&mut self, touches: u64) {
        let l = self.layout;
        while self.touches < touches {
            let (r1, r2, r3) = (self.next(), self.next(), self.next());
            let page = if l.hot == 0 {
                mulhi(r1, l.pages)
            } else if r2 & 0xffff_ffff < self.hot_thr {
                mulhi(r1, l.hot)
            } else {
                l.hot + mulhi(r1, l.pages - l.hot)
            };
            if r3 & 0xffff_ffff < self.write_thr {
                self.writes += 1;
                if !std::mem::replace(&mut self.written[page as usize], true) {
                    self.written_pages += 1;
                }
            }
            self.touches += 1;
        }
    }

    /// Image and zero pages not written yet.
    pub fn intact(&self) -> (u64, u64) {
        let l = self.layout;
        let count = |range: std::ops::Range<u64>| range.filter(|&i| !self.written[i as usize]).count() as u64;
        (count(0..l.image), count(l.image..l.image + l.zero))
    }
}

/// The `key=value` words of a line (its text from `memwork:` on).
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

/// `memwork: ready ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyLine {
    pub pages: u64,
    pub image: u64,
    pub zero: u64,
    pub unique: u64,
    pub hot: u64,
    /// The map's address in memwork's address space.
    pub addr: u64,
    pub pid: u32,
    pub instance: u64,
    pub fill_ms: f64,
    pub line: String,
}

impl ReadyLine {
    /// The ready line in `text` (a line holding `memwork: ready`), if whole.
    pub fn parse(text: &str) -> Option<ReadyLine> {
        let line = text[text.find("memwork: ready")?..].trim();
        let f = fields(line);
        let num = |k: &str| f.get(k)?.parse::<u64>().ok();
        Some(ReadyLine {
            pages: num("pages")?,
            image: num("image")?,
            zero: num("zero")?,
            unique: num("unique")?,
            hot: num("hot")?,
            addr: u64::from_str_radix(f.get("addr")?.trim_start_matches("0x"), 16).ok()?,
            pid: f.get("pid")?.parse().ok()?,
            instance: num("instance")?,
            fill_ms: f.get("fill_ms")?.parse().ok()?,
            line: line.to_string(),
        })
    }

    pub fn layout(&self) -> Layout {
        Layout { pages: self.pages, image: self.image, zero: self.zero, unique: self.unique, hot: self.hot }
    }
}

/// `memwork: rate ...`, printed every report period.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLine {
    /// Since the ready line.
    pub t_ms: f64,
    pub touches: u64,
    pub writes: u64,
    /// Touches a second over the interval since the previous line.
    pub achieved: f64,
    pub target: f64,
    /// Touches dropped for being more than a second behind.
    pub skipped: u64,
    pub written_pages: u64,
    pub intact_image: u64,
    pub intact_zero: u64,
    pub interval_ms: f64,
    pub interval_touches: u64,
    /// Distinct pages touched, and written, in the interval.
    pub interval_pages: u64,
    pub interval_written: u64,
}

impl RateLine {
    pub fn parse(text: &str) -> Option<RateLine> {
        let line = &text[text.find("memwork: rate")?..];
        let f = fields(line);
        let num = |k: &str| f.get(k)?.trim().parse::<u64>().ok();
        let real = |k: &str| f.get(k)?.trim().parse::<f64>().ok();
        Some(RateLine {
            t_ms: real("t_ms")?,
            touches: num("touches")?,
            writes: num("writes")?,
            achieved: real("achieved")?,
            target: real("target")?,
            skipped: num("skipped")?,
            written_pages: num("written_pages")?,
            intact_image: num("intact_image")?,
            intact_zero: num("intact_zero")?,
            interval_ms: real("interval_ms")?,
            interval_touches: num("interval_touches")?,
            interval_pages: num("interval_pages")?,
            interval_written: num("interval_written")?,
        })
    }

    /// Every whole rate line of `text` (a console log or a program's
    /// output), in order; a line cut by the end of the text, or mangled
    /// by kernel messages on the same console, is left out.
    pub fn all(text: &str) -> Vec<RateLine> {
        text.split_inclusive('\n').filter(|l| l.ends_with('\n')).filter_map(RateLine::parse).collect()
    }
}

/// memwork running as a child of the test, on the host. Killed and
/// reaped when dropped (also on panic); memwork also asks the kernel to
/// kill it when the thread that started it ends (`PR_SET_PDEATHSIG`),
/// so keep it on the thread that spawned it.
pub struct HostMemwork {
    process: Process,
    pub pid: u32,
    pub params: Params,
    pub ready: ReadyLine,
}

/// The child and what reads its output; killed and reaped when dropped.
struct Process {
    child: Child,
    /// Everything it printed so far, line by line.
    output: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl HostMemwork {
    /// Builds memwork for the host if needed, starts it with `params` and
    /// waits for its ready line. `Err` where it cannot be built (no gcc).
    pub fn spawn(params: &Params) -> Result<HostMemwork, Unavailable> {
        let exe = guest_kit::host_memwork()?;
        let mut child = Command::new(&exe)
            .args(params.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let pid = child.id();
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("memwork's stdout");
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        // From here on dropping `process` kills it, whatever happens.
        let mut process = Process { child, output, reader: Some(reader) };
        let start = Instant::now();
        loop {
            if let Some(ready) = process.lines().iter().find_map(|l| ReadyLine::parse(l)) {
                return Ok(HostMemwork { process, pid, params: params.clone(), ready });
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "memwork {:?} exited ({status}) before its ready line:\n{}",
                    params.args(),
                    process.lines().join("\n")
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "memwork {:?}: no ready line after 120 s:\n{}",
                params.args(),
                process.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.process.lines()
    }

    /// Its rate lines so far.
    pub fn rate_lines(&self) -> Vec<RateLine> {
        self.lines().iter().filter_map(|l| RateLine::parse(l)).collect()
    }

    /// Waits for its `n`-th rate line (counting from 1) and returns it.
    pub fn wait_rate_line(&self, n: usize, limit: Duration) -> RateLine {
        let start = Instant::now();
        loop {
            if let Some(r) = self.rate_lines().into_iter().nth(n - 1) {
                return r;
            }
            assert!(start.elapsed() < limit, "memwork: no rate line {n} after {limit:?}:\n{}", self.lines().join("\n"));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
