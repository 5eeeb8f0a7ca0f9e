//! The command-line face of overcommit: parse arguments, call the library,
//! print. No logic lives here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use overcommit::scenario::{self, Override};

/// Exit codes: 0 success, 1 runtime failure, 2 bad input or usage.
const EXIT_RUNTIME: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "overcommit",
    version,
    about = "Simulate and plan memory overcommit on KVM hosts: swap, virtio-balloon, KSM and huge pages",
    long_about = "overcommit answers \"how many guests can this KVM host hold, and what will it cost them in \
latency?\". A scenario (YAML) describes a host and groups of guests; overcommit checks it, plays it \
forward, and reports density against latency.",
    after_help = "Examples:\n  \
overcommit run scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml --set guests.web.count=12\n  \
overcommit host\n  \
overcommit host --scenario > my-host.yaml\n  \
overcommit completions bash > /etc/bash_completion.d/overcommit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ImportFrom {
    /// Read libvirt domain XML (files, directories of them, or - for standard input) into a scenario
    #[command(after_help = "Examples:\n  \
overcommit import libvirt /etc/libvirt/qemu/ --out mine.yaml\n  \
virsh dumpxml web1 | overcommit import libvirt -\n  \
overcommit import libvirt web1.xml web2.xml --host my-host.yaml\n\n\
Domains with the same memory configuration and image become one guest group (named after the \
first, every domain's name kept in `names:`). The host: section is this machine's (as `overcommit \
host --scenario` writes it) unless --host gives one. What the model cannot represent is a warning \
on standard error naming the element and its line:column, and a comment in the scenario. The \
workload is not in the XML: each group gets a placeholder that says so.")]
    Libvirt {
        /// Domain XML files, directories of *.xml files, or - (standard input)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Take the host: section from this file (a scenario, or what `overcommit host --scenario` wrote)
        #[arg(long, value_name = "FILE")]
        host: Option<PathBuf>,
        /// Write the scenario here (default: standard output)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read the QEMU guests running on this host (through libvirt where it runs them) into a scenario
    #[command(after_help = "Examples:\n  \
overcommit import live --out live.yaml\n  \
overcommit import live --libvirt qemu:///system --out live.yaml\n  \
overcommit import live --profile 60s --out live.yaml   # workloads measured, ready for plan\n  \
overcommit run live.yaml\n\n\
Every qemu-system-* process is read through its command line, or, for a running libvirt domain, \
through `virsh dumpxml`. Each guest's state now (resident and swapped memory, transparent huge \
pages, KSM-merged pages, the balloon from `virsh dommemstat`) goes into an `observed:` list, and \
a run starts from it instead of an empty host. Reading other users' processes needs root.")]
    Live {
        /// The libvirt connection URI (default: qemu:///system when it answers, else no libvirt; none: never)
        #[arg(long, value_name = "URI")]
        libvirt: Option<String>,
        /// Take the host: section from this file instead of this machine
        #[arg(long, value_name = "FILE")]
        host: Option<PathBuf>,
        /// Write the scenario here (default: standard output)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Profile the guests this long first (see `overcommit profile`) and write the workloads it fits
        #[arg(long, value_name = "DURATION")]
        profile: Option<String>,
        /// With --profile: the working-set intervals
        #[arg(long, default_value = "1s,2s,5s,10s,30s")]
        intervals: String,
        /// With --profile: the share of pages read
        #[arg(long, default_value = "1/64")]
        sample: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Play a scenario forward and report memory, faults and latency per guest
    #[command(after_help = "Examples:\n  \
overcommit run scenarios/quickstart.yaml\n  \
overcommit run scenarios/quickstart.yaml --seed 7 --out /tmp/qs\n  \
overcommit run scenarios/quickstart.yaml --set host.swap.device=hdd --set duration=2m\n\n\
Writes summary.json, timeseries.csv and events.csv to --out (default output/<scenario name>/).")]
    Run {
        /// The scenario file (YAML)
        file: PathBuf,
        /// Where to write the results (default: output/<scenario name>/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Override the scenario's seed
        #[arg(long)]
        seed: Option<u64>,
        /// Override a value: a dotted path and a YAML value
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// A calibration file whose measured costs replace the defaults
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Share of pages to simulate: 1 (page-exact), a power of two such as
        /// 1/64, or auto (page-exact unless the guests are large)
        #[arg(long, value_name = "RATE", default_value = "auto")]
        sample_rate: String,
        /// Play only the touches that change state (faults, copy-on-write breaks), the hits
        /// between them as counts: faster where few touches fault (see the README's event mode).
        /// Default: by events when sampled or when under 1% of touches are expected to fault
        #[arg(long, conflicts_with = "touches")]
        events: bool,
        /// Play every touch one by one (the reference)
        #[arg(long)]
        touches: bool,
        /// No progress bar and no table
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a scenario many times over varied values and seeds, in parallel: density against latency
    #[command(after_help = "Examples:\n  \
overcommit sweep scenarios/quickstart.yaml --vary guests.web.count=2..16:2 --vary host.ksm.run=true,false\n  \
overcommit sweep scenarios/quickstart.yaml --vary host.swap.device=hdd,ssd,nvme,zram --seeds 3 --slo p99<=50us\n  \
overcommit sweep scenarios/quickstart.yaml --vary guests.web.count=2..64:2 --shard 1/4 --out shard1\n  \
overcommit merge shard1 shard2 shard3 shard4 --out whole\n\n\
SPEC is a list (a,b,c) or a range START..END[:STEP] whose END is included when a step lands on it \
(units allowed: 32G..128G:32G). Runs are every combination of the varied values times --seeds seeds; \
every combination uses the same seeds (the first is the scenario's or --seed), so rows can be replayed \
with `overcommit run --seed S --set PATH=VALUE`. A `sweep:` section in the scenario gives the same \
(vary:, seeds:, slo:); the command line wins. Writes sweep.csv, sweep.json, the density plots (SVG \
and PNG) and report.html to --out (default output/<scenario name>/sweep/).")]
    Sweep {
        /// The scenario file (YAML)
        file: PathBuf,
        /// A path to vary and its values: PATH=a,b,c or PATH=START..END:STEP
        #[arg(long = "vary", value_name = "PATH=SPEC")]
        vary: Vec<overcommit::scenario::vary::Vary>,
        /// Override a value in every run: a dotted path and a YAML value
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// Seeds per combination (default: the scenario's sweep.seeds, or 1)
        #[arg(long, value_name = "K")]
        seeds: Option<u32>,
        /// The first seed (default: the scenario's seed)
        #[arg(long)]
        seed: Option<u64>,
        /// An objective to check each run against and draw on the plots
        /// (p99<=50us, slowdown<=1.05, oom_kills==0, ...)
        #[arg(long = "slo", value_name = "EXPR")]
        slo: Vec<overcommit::scenario::slo::Slo>,
        /// Runs at once (default: the number of CPUs); the result does not depend on it
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Play only shard I of N (1-based): every N-th run; join shards with `merge`
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Where to write the results (default: output/<scenario name>/sweep/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// A calibration file whose measured costs replace the defaults
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Share of pages to simulate in each run (see `run --help`)
        #[arg(long, value_name = "RATE", default_value = "auto")]
        sample_rate: String,
        /// Play every run in event mode (see `run --help`; default: as `run` chooses for each)
        #[arg(long, conflicts_with = "touches")]
        events: bool,
        /// Play every run touch by touch
        #[arg(long)]
        touches: bool,
        /// No progress bar and no summary
        #[arg(long, short)]
        quiet: bool,
    },
    /// Find how many guests fit (or how little RAM will do) under latency objectives, per policy mix
    #[command(after_help = "Examples:\n  \
overcommit plan scenarios/quickstart.yaml --slo p99<=50us --grow web\n  \
overcommit plan scenarios/quickstart.yaml --slo p99<=50us --slo slowdown<=1.05 --grow web --policies swap,swap+ksm --seeds 3\n  \
overcommit plan scenarios/quickstart.yaml --slo p999<=1ms --minimize host.ram\n\n\
Objectives: p50|p95|p99|p999|mean (a time: 50us, 1ms), slowdown, major_faults_per_s, fault_ratio \
(each for every running guest), ksmd_cpu (25% or 0.25) and oom_kills (the host). oom_kills==0 and \
\"every guest starts and keeps running\" always hold unless --allow-oom-kills. Mixes: none, swap, \
swap+balloon, swap+ksm, swap+balloon+ksm, hugepages (default: every mix the host can run). The search \
gallops from the scenario's own count (or RAM) and bisects; each point plays every seed.")]
    Plan {
        /// The scenario file (YAML)
        file: PathBuf,
        /// An objective every guest must meet (repeatable): p99<=50us, slowdown<=1.05, ...
        #[arg(long = "slo", value_name = "EXPR", required = true)]
        slo: Vec<overcommit::scenario::slo::Slo>,
        /// The guest group whose count to maximise
        #[arg(long, value_name = "GROUP", conflicts_with = "minimize", required_unless_present = "minimize")]
        grow: Option<String>,
        /// What to minimise: host.ram
        #[arg(long, value_name = "host.ram")]
        minimize: Option<String>,
        /// Policy mixes to compare, comma-separated (default: all the host supports)
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        policies: Vec<overcommit::plan::capacity::Mix>,
        /// Seeds per point
        #[arg(long, value_name = "K", default_value_t = 1)]
        seeds: u32,
        /// The share of seeds that must meet the objectives at a point (default: all)
        #[arg(long, value_name = "Q", default_value_t = 1.0)]
        quantile: f64,
        /// Do not require oom_kills==0 (killed guests then drop out of the objectives)
        #[arg(long)]
        allow_oom_kills: bool,
        /// The first seed (default: the scenario's seed)
        #[arg(long)]
        seed: Option<u64>,
        /// Override a value in every run
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// Runs at once (default: the number of CPUs)
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// The most guests (or GiB of RAM) the search tries
        #[arg(long, value_name = "N", default_value_t = 4096)]
        limit: u64,
        /// Share of pages to simulate in each run (see `run --help`)
        #[arg(long, value_name = "RATE", default_value = "auto")]
        sample_rate: String,
        /// Play every run in event mode (see `run --help`; default: touch by touch, the plan's
        /// points being where guests start to fault)
        #[arg(long)]
        events: bool,
        /// A calibration file whose measured costs replace the defaults
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Where to write plan.json, the frontier plot and report.html (default: output/<scenario name>/plan/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// No progress bar and no table
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a lesson: an idea of KVM memory overcommit as an experiment, explained with its own numbers
    #[command(after_help = "Examples:\n  \
overcommit learn                      # the lessons\n  \
overcommit learn hugepages\n  \
overcommit learn hugepages --lang zh  # 中文讲解\n\n\
Each lesson is a scenario under scenarios/learn/ comparing variants; its runs, plots and \
report.html go to --out (default output/learn/<lesson>/).")]
    Learn {
        /// The lesson to run (none: list them)
        name: Option<String>,
        /// The language of the explanation: en or zh
        #[arg(long, default_value = "en")]
        lang: overcommit::learn::Lang,
        /// Where to write the runs, plots and report (default: output/learn/<lesson>/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Runs at once (default: the number of CPUs)
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
    /// Join the folders of a sharded sweep into the sweep.csv an unsharded run writes
    #[command(after_help = "Example:\n  \
overcommit merge output/quickstart/sweep-shard-1-of-2 output/quickstart/sweep-shard-2-of-2 --out whole")]
    Merge {
        /// The shards' output folders
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged sweep (default: output/<scenario name>/sweep/)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// No summary
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a scenario and print a one-screen summary (or its errors)
    #[command(after_help = "Examples:\n  \
overcommit check scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml --set host.ram=32G --set guests.web.count=16\n\n\
Exit status: 0 when the scenario is valid (warnings allowed), 2 when it has errors.")]
    Check {
        /// The scenario file (YAML)
        file: PathBuf,
        /// Override a value before checking: a dotted path and a YAML value
        /// (e.g. host.ksm.run=true, guests.web.count=12)
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<Override>,
        /// Print the validated scenario as JSON instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Report this machine's virtualisation and memory features, and what they mean for overcommit
    #[command(after_help = "Examples:\n  \
overcommit host\n  \
overcommit host --json | jq .meminfo\n  \
overcommit host --scenario > host.yaml   # a host: section to start a scenario from")]
    Host {
        /// Print a stable JSON object instead of the text report
        #[arg(long, conflicts_with = "scenario")]
        json: bool,
        /// Print a `host:` section for a scenario, built from this machine
        #[arg(long)]
        scenario: bool,
    },
    /// Turn what operators already have into a scenario: libvirt domain XML, or this host as it runs
    #[command(subcommand)]
    Import(ImportFrom),
    /// Measure what running guests do: working set over time, writes, page content; fit each a workload
    #[command(after_help = "Examples:\n  \
overcommit profile --all-qemu --duration 60s\n  \
overcommit profile --libvirt web1 web2 --out web.json\n  \
overcommit profile 4242 --intervals 1s,2s,5s,10s,30s --sample 1/64\n\n\
For each QEMU process it measures the working set WSS(dt) for each interval, the pages written, and \
on a sample of pages (the same offsets in every guest) the share of zero pages and of pages another \
profiled guest holds too, and of pages repeated within the guest; then fits the working set, touch rate, pattern and write share the model \
plays. It uses the best mechanism the kernel has: idle page tracking, DAMON, or clear_refs with smaps \
Referenced (which cannot see a KVM guest's accesses through EPT/NPT; TCG guests' it sees), and \
PAGEMAP_SCAN (where the VMM registered guest RAM with userfaultfd for async write protection), \
soft-dirty or content changes for writes; the output says which.\n\n\
Side effects: resetting accessed bits makes the guests' pages look cold to the host's reclaim for a \
moment; soft-dirty clearing or PAGEMAP_SCAN write-protects their pages, so each next write faults; pages are read \
through /proc/PID/mem (only present ones; one reclaimed in the moment between look-up and read is brought back). Needs root for other users' \
processes. Linux only.")]
    Profile {
        /// QEMU process IDs
        pids: Vec<u32>,
        /// Every running qemu-system-* process
        #[arg(long)]
        all_qemu: bool,
        /// libvirt domains (matched to their QEMU processes)
        #[arg(long, value_name = "DOMAIN", num_args = 1..)]
        libvirt: Vec<String>,
        /// The libvirt connection, for the balloon's size and the guest's free memory
        #[arg(long, value_name = "URI", default_value = "qemu:///system")]
        uri: String,
        /// How long to measure
        #[arg(long, default_value = "60s")]
        duration: String,
        /// The intervals of the working-set curve
        #[arg(long, default_value = "1s,2s,5s,10s,30s")]
        intervals: String,
        /// Share of pages read for content and writes (a power of two such as 1/64, or 1)
        #[arg(long, default_value = "1/64")]
        sample: String,
        /// Seed of the sample's choice of pages
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the VMM registered guest RAM with userfaultfd for async write protection, count
        /// writes with PAGEMAP_SCAN; re-protecting the pages each pass erases the VMM's own record
        /// of written pages (a snapshot or migration it runs would miss them) and splits huge mappings
        #[arg(long)]
        pagemap_scan: bool,
        /// Write here: FILE.json the whole profile, any other name the workloads as YAML (default: YAML on standard output)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Measure this machine's page-fault, zeroing, memory-latency and copy costs, and write a calibration file
    #[command(after_help = "Examples:\n  \
overcommit calibrate --quick\n  \
overcommit calibrate --size 2G --repeats 9 --out host.yaml\n  \
sudo overcommit calibrate --reserve-hugepages --ksm --swap   # hugetlb pools, ksmd and swap-in too\n  \
overcommit run scenarios/quickstart.yaml --calibration output/calibration.yaml\n\n\
Each figure is the median (with min and max) of --repeats repeats after one warm-up; faults are \
timed on fresh mappings, touched one byte per page (once per huge page). Settings changed for a \
test are put back, also on Ctrl-C. Linux only.")]
    Calibrate {
        /// Where to write the calibration (default: output/calibration.yaml, or .json with --json)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Bytes per test mapping (at most half of MemAvailable)
        #[arg(long, default_value = "1G")]
        size: String,
        /// Counted repeats of each measurement
        #[arg(long)]
        repeats: Option<usize>,
        /// Smaller mappings and fewer repeats (256 MiB, 3)
        #[arg(long)]
        quick: bool,
        /// Write JSON instead of YAML (the same content)
        #[arg(long)]
        json: bool,
        /// Also time ksmd's CPU per scanned page (needs root; KSM knobs are put back)
        #[arg(long)]
        ksm: bool,
        /// Also time swap-ins on the active swap device (needs root and a memory cgroup)
        #[arg(long)]
        swap: bool,
        /// As root, grow the hugetlb pools (vm.nr_hugepages and the 1 GiB pool) for the
        /// hugetlb tests; their sizes are put back after, also on error, Ctrl-C or SIGTERM
        #[arg(long)]
        reserve_hugepages: bool,
    },
    /// A process with a known workload, for the profiler's tests and benchmark (internal)
    #[command(hide = true)]
    TouchChild(overcommit::profile::child::ChildSpec),
    /// The child process of `calibrate --swap` (internal)
    #[command(hide = true)]
    SwapChild {
        #[arg(long)]
        bytes: u64,
    },
    /// Print a shell completion script
    #[command(after_help = "Examples:\n  \
overcommit completions bash > ~/.local/share/bash-completion/completions/overcommit\n  \
overcommit completions zsh > ~/.zfunc/_overcommit\n  \
overcommit completions fish > ~/.config/fish/completions/overcommit.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout
    #[command(after_help = "Example:\n  overcommit man | man -l -")]
    Man,
}

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    message: String,
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure { code: EXIT_RUNTIME, message: format!("error: {e}") }
    }
}

/// `auto`, `1`, `1/64` or `0.015625`: 1 or a power of two down to 1/512.
fn parse_sample_rate(text: &str) -> Result<Option<f64>, Failure> {
    let bad = || Failure {
        code: EXIT_BAD_INPUT,
        message: format!(
            "error: --sample-rate {text:?}: expected auto, 1, or a power of two such as 1/64 (down to 1/512)"
        ),
    };
    let t = text.trim();
    if t == "auto" {
        return Ok(None);
    }
    let v = match t.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().map_err(|_| bad())? / b.trim().parse::<f64>().map_err(|_| bad())?,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if (0..=9).any(|k| v == 1.0 / f64::from(1u32 << k)) { Ok(Some(v)) } else { Err(bad()) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run { file, out: out_dir, seed, set, calibration, sample_rate, events, touches, quiet } => {
            let loaded = scenario::load_with(&file, &set)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: e.to_string() })?;
            for w in &loaded.warnings {
                let _ = writeln!(std::io::stderr(), "{w}");
            }
            let s = &loaded.scenario;
            // --calibration wins over the scenario's `calibration:`, which is
            // relative to the scenario file.
            let cal_path = calibration
                .or_else(|| s.calibration.as_ref().map(|c| file.parent().unwrap_or(std::path::Path::new(".")).join(c)));
            let costs = load_costs(cal_path.as_deref())?;
            let rate = parse_sample_rate(&sample_rate)?;
            for note in overcommit::engine::unmodelled(s) {
                let _ = writeln!(std::io::stderr(), "note: {note}");
            }
            let cfg = overcommit::engine::RunConfig {
                seed,
                sample_rate: rate,
                mode: play_mode(events, touches),
                costs,
                calibration: cal_path.as_ref().map(|p| p.display().to_string()),
                ..Default::default()
            };
            let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&s.name));
            let mut record = overcommit::engine::Recorder::default();
            let started = std::time::Instant::now();
            let mut bar: Option<indicatif::ProgressBar> = None;
            let mut on_progress = |now: u64, end: u64| {
                if quiet || end == 0 {
                    return;
                }
                if bar.is_none() && started.elapsed().as_secs_f64() > 1.0 {
                    let b = indicatif::ProgressBar::new(1000);
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} simulating [{bar:40}] {percent}% (eta {eta})",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar = Some(b);
                }
                if let Some(b) = &bar {
                    b.set_position(now * 1000 / end);
                }
            };
            let summary = {
                let mut sink =
                    overcommit::report::run::WithProgress { inner: &mut record, on_progress: &mut on_progress };
                overcommit::engine::run(s, cfg, &mut sink)
                    .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            use overcommit::report::run as rr;
            let figs = overcommit::report::run_page::figures(&record, &summary)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: drawing the plots: {e}") })?;
            let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.headline()).collect();
            let html = overcommit::report::run_page::html(&record, &summary, &s.description, &figs, &warnings);
            let mut files = vec![
                ("summary.json".to_string(), rr::summary_json(&summary)),
                ("timeseries.csv".to_string(), rr::timeseries_csv(&record, &summary)),
                ("events.csv".to_string(), rr::events_csv(&record)),
            ];
            for (stem, _, f) in figs {
                files.push((format!("{stem}.svg"), f.svg.into_bytes()));
                files.push((format!("{stem}.png"), f.png));
            }
            files.push(("report.html".to_string(), html.into_bytes()));
            let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            rr::write_atomically(&dir, &files).map_err(|e| Failure {
                code: EXIT_RUNTIME,
                message: format!("error: writing {}: {e}", dir.display()),
            })?;
            if !quiet {
                write!(out, "{}", rr::table(&summary))?;
                writeln!(
                    out,
                    "\nwrote {}/{{summary.json,timeseries.csv,events.csv}}, plots (SVG and PNG) and report.html",
                    dir.display()
                )?;
            }
        }
        Command::Sweep {
            file,
            vary,
            set,
            seeds,
            seed,
            slo,
            jobs,
            shard,
            out: out_dir,
            calibration,
            sample_rate,
            events,
            touches,
            quiet,
        } => {
            use overcommit::plan::sweep as sw;
            let bad = |message: String| Failure { code: EXIT_BAD_INPUT, message };
            let (inputs, loaded) =
                many_inputs(&file, set, seed, calibration, &sample_rate, play_mode(events, touches))?;
            let section = loaded.scenario.sweep.clone();
            let vary =
                if vary.is_empty() { section.as_ref().map(|s| s.vary.clone()).unwrap_or_default() } else { vary };
            if vary.is_empty() {
                return Err(bad(
                    "error: nothing to vary: give --vary PATH=SPEC or a `sweep: { vary: ... }` section".into()
                ));
            }
            let shard = shard.map(|s| parse_shard(&s)).transpose()?;
            let spec = sw::SweepSpec {
                inputs,
                vary,
                seeds: seeds.or_else(|| section.as_ref().and_then(|s| s.seeds)).unwrap_or(1),
                slo: if slo.is_empty() { section.map(|s| s.slo).unwrap_or_default() } else { slo },
            };
            let (mut meta, runs) = sw::plan(&spec).map_err(|e| bad(e.to_string()))?;
            meta.shard = shard;
            let mine = runs.iter().filter(|r| sw::in_shard(r.index, shard)).count();
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(mine as u64) };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} runs {pos}/{len} [{bar:40}] {elapsed} (eta {eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let started = std::time::Instant::now();
            let table = sw::execute(&spec, meta, runs, jobs, &|_| bar.inc(1)).map_err(|e| bad(e.to_string()))?;
            bar.finish_and_clear();
            let dir = out_dir.unwrap_or_else(|| overcommit::report::sweep::default_dir(&table.meta));
            write_sweep(&dir, &table)?;
            if !quiet {
                write!(out, "{}", overcommit::report::sweep::summary(&table))?;
                writeln!(
                    out,
                    "\n{mine} runs on {jobs} threads in {:.1} s; wrote {}/",
                    started.elapsed().as_secs_f64(),
                    dir.display()
                )?;
            }
        }
        Command::Plan {
            file,
            slo,
            grow,
            minimize,
            policies,
            seeds,
            quantile,
            allow_oom_kills,
            seed,
            set,
            jobs,
            limit,
            sample_rate,
            events,
            calibration,
            out: out_dir,
            quiet,
        } => {
            use overcommit::plan::capacity as cap;
            let bad = |message: String| Failure { code: EXIT_BAD_INPUT, message };
            let mode = overcommit::engine::Mode::events_if(events);
            let (inputs, _) = many_inputs(&file, set, seed, calibration, &sample_rate, mode)?;
            let goal = match (grow, minimize.as_deref()) {
                (Some(g), _) => cap::Goal::Grow(g),
                (None, Some("host.ram")) => cap::Goal::MinimizeRam,
                (None, Some(other)) => {
                    return Err(bad(format!("error: --minimize {other:?}: only host.ram can be minimised")));
                }
                (None, None) => return Err(bad("error: give --grow GROUP or --minimize host.ram".into())),
            };
            let mut spec = cap::PlanSpec {
                inputs,
                slo,
                allow_oom_kills,
                goal,
                mixes: policies,
                seeds,
                quantile,
                limit: limit.max(1),
            };
            spec.inputs.sample_rate = Some(cap::planning_rate(&spec).map_err(|e| bad(e.to_string()))?);
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} planning: {pos} runs played, {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let started = std::time::Instant::now();
            let (base, results) = cap::plan(&spec, jobs, &|| bar.inc(1)).map_err(|e| bad(e.to_string()))?;
            bar.finish_and_clear();
            use overcommit::report::plan as rp;
            let frontier = rp::frontier(&spec, &results)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: drawing the frontier: {e}") })?;
            let html = rp::html(&spec, &base, &results, &frontier);
            let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join(&base.name).join("plan"));
            let files = [
                ("plan.json", rp::json(&spec, &base, &results)),
                ("frontier.svg", frontier.svg.into_bytes()),
                ("frontier.png", frontier.png),
                ("report.html", html.into_bytes()),
            ];
            overcommit::report::run::write_atomically(&dir, &files).map_err(|e| Failure {
                code: EXIT_RUNTIME,
                message: format!("error: writing {}: {e}", dir.display()),
            })?;
            if !quiet {
                write!(out, "{}", rp::table(&spec, &base, &results))?;
                writeln!(out)?;
                for line in rp::recommendation(&spec, &base, &results) {
                    writeln!(out, "{line}")?;
                }
                let runs: usize = results.iter().map(|r| r.runs).sum();
                writeln!(
                    out,
                    "\n{runs} runs in {:.1} s; wrote {}/{{plan.json,frontier.svg,frontier.png,report.html}}",
                    started.elapsed().as_secs_f64(),
                    dir.display()
                )?;
            }
        }
        Command::Learn { name, lang, out: out_dir, jobs } => {
            use overcommit::learn;
            let zh = lang == learn::Lang::Zh;
            let Some(name) = name else {
                writeln!(
                    out,
                    "{}",
                    if zh { "课程（overcommit learn 名称）：" } else { "Lessons (overcommit learn NAME):" }
                )?;
                for l in learn::LESSONS {
                    writeln!(out, "  {:<12} {}", l.name, l.question[usize::from(zh)])?;
                }
                return Ok(());
            };
            let lesson = learn::find(&name).ok_or_else(|| {
                let names: Vec<&str> = learn::LESSONS.iter().map(|l| l.name).collect();
                Failure {
                    code: EXIT_BAD_INPUT,
                    message: format!("error: no lesson {name:?}; lessons: {}", names.join(", ")),
                }
            })?;
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let (table, scenario) =
                learn::run(lesson, jobs).map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?;
            let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join("learn").join(lesson.name));
            write_sweep(&dir, &table)?;
            writeln!(out, "{}\n", lesson.question[usize::from(zh)])?;
            for line in (lesson.explain)(&table, &scenario, lang) {
                writeln!(out, "{line}\n")?;
            }
            writeln!(
                out,
                "{} {}/density-p99.png, {}/density-slowdown.png\n{} {}/report.html\n{} {}/sweep.csv ({} {})",
                if zh { "图：" } else { "plots:" },
                dir.display(),
                dir.display(),
                if zh { "报告：" } else { "report:" },
                dir.display(),
                if zh { "数据：" } else { "data:" },
                dir.display(),
                if zh { "场景" } else { "scenario" },
                lesson.file
            )?;
        }
        Command::Merge { dirs, out: out_dir, quiet } => {
            let parts = dirs
                .iter()
                .map(|d| overcommit::report::sweep::read(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?;
            let table = overcommit::plan::sweep::merge(parts)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?;
            let dir = out_dir.unwrap_or_else(|| overcommit::report::sweep::default_dir(&table.meta));
            write_sweep(&dir, &table)?;
            if !quiet {
                write!(out, "{}", overcommit::report::sweep::summary(&table))?;
                writeln!(out, "\nmerged {} shards ({} runs); wrote {}/", dirs.len(), table.rows.len(), dir.display())?;
            }
        }
        Command::Check { file, set, json } => {
            let loaded = scenario::load_with(&file, &set)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: e.to_string() })?;
            for w in &loaded.warnings {
                let _ = writeln!(std::io::stderr(), "{w}");
            }
            if json {
                let text = serde_json::to_string_pretty(&loaded.scenario)
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?;
                writeln!(out, "{text}")?;
            } else {
                write!(out, "{}", overcommit::report::check::summary(&loaded.scenario))?;
            }
        }
        Command::Host { json, scenario } => {
            let report = overcommit::calibrate::host::inspect();
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?;
                writeln!(out, "{text}")?;
            } else if scenario {
                write!(out, "{}", report.scenario_host_yaml())?;
            } else {
                write!(out, "{}", report.render_text())?;
            }
        }
        #[cfg(target_os = "linux")]
        cmd @ (Command::SwapChild { .. } | Command::Calibrate { .. }) => calibrate(cmd, &mut out)?,
        #[cfg(not(target_os = "linux"))]
        Command::SwapChild { .. } | Command::Calibrate { .. } => {
            return Err(Failure {
                code: EXIT_RUNTIME,
                message: "error: calibrate times Linux page faults, hugetlb pools and ksmd: it needs Linux".into(),
            });
        }
        Command::Import(from) => import(from, &mut out)?,
        Command::TouchChild(spec) => {
            overcommit::profile::child::run(&spec).map_err(|e| Failure {
                code: if e.kind() == std::io::ErrorKind::InvalidInput { EXIT_BAD_INPUT } else { EXIT_RUNTIME },
                message: format!("error: {e}"),
            })?;
        }
        Command::Profile {
            pids,
            all_qemu,
            libvirt,
            uri,
            duration,
            intervals,
            sample,
            seed,
            pagemap_scan,
            out: dest,
        } => {
            let opts =
                overcommit::profile::Options { pagemap_scan, ..profile_options(&duration, &intervals, &sample, seed)? };
            let root = PathBuf::from("/");
            let targets = overcommit::profile::targets(&root, &pids, all_qemu, &libvirt, &uri)
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?;
            let report = overcommit::profile::profile(&targets, &opts)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            for s in &report.skipped {
                eprintln!("warning: skipped {s}");
            }
            eprintln!(
                "profiled {} guest{} with {} and {}: {:.2} s of CPU over {:.0} s ({:.1}% of one core)",
                report.guests.len(),
                if report.guests.len() == 1 { "" } else { "s" },
                report.mechanism.label(),
                report.writes.label(),
                report.cost.cpu_s,
                report.cost.wall_s,
                100.0 * report.cost.share_of_one_core
            );
            let yaml = overcommit::profile::write::guests_yaml(&report);
            match dest {
                Some(path) => {
                    let json = path.extension().is_some_and(|e| e == "json");
                    let bytes = if json {
                        serde_json::to_vec_pretty(&report)
                            .map_err(|e| Failure { code: EXIT_RUNTIME, message: e.to_string() })?
                    } else {
                        yaml.into_bytes()
                    };
                    write_file_atomically(&path, bytes)?;
                    eprintln!("wrote {}", path.display());
                }
                None => write!(out, "{yaml}")?,
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "overcommit", &mut out);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
        }
    }
    Ok(())
}

/// Write `bytes` to `path` under a temporary name in its folder, then
/// rename: a reader never sees half a file.
fn write_file_atomically(path: &std::path::Path, bytes: Vec<u8>) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    overcommit::report::run::write_atomically(&dir, &[(name.as_str(), bytes)])
        .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: writing {}: {e}", path.display()) })?;
    Ok(())
}

/// `--duration`, `--intervals` and `--sample` of `profile` (and of
/// `import live --profile`).
fn profile_options(
    duration: &str,
    intervals: &str,
    sample: &str,
    seed: u64,
) -> Result<overcommit::profile::Options, Failure> {
    use overcommit::units::Span;
    let bad =
        |what: &str, v: &str, e: String| Failure { code: EXIT_BAD_INPUT, message: format!("error: {what} {v:?}: {e}") };
    let duration = Span::parse(duration).map_err(|e| bad("--duration", duration, e.to_string()))?;
    let mut list = Vec::new();
    for part in intervals.split(',') {
        let s = Span::parse(part.trim()).map_err(|e| bad("--intervals", part, e.to_string()))?;
        if s.nanos() == 0 {
            return Err(bad("--intervals", part, "an interval must be longer than 0".into()));
        }
        list.push(std::time::Duration::from_nanos(s.nanos()));
    }
    let longest = list.iter().max().copied().unwrap_or_default();
    if std::time::Duration::from_nanos(duration.nanos()) < longest {
        return Err(bad(
            "--duration",
            &duration.to_string(),
            format!("shorter than the longest interval ({longest:?})"),
        ));
    }
    let rate = match sample.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().ok().zip(b.trim().parse::<f64>().ok()).map(|(a, b)| a / b),
        None => sample.trim().parse::<f64>().ok(),
    }
    .filter(|r| *r > 0.0 && *r <= 1.0)
    .ok_or_else(|| bad("--sample", sample, "not a share in (0, 1], such as 1/64".into()))?;
    Ok(overcommit::profile::Options {
        duration: std::time::Duration::from_nanos(duration.nanos()),
        intervals: list,
        sample: rate,
        seed,
        root: PathBuf::from("/"),
        pagemap_scan: false,
    })
}

/// `overcommit import libvirt|live`: the scenario to standard output or,
/// written whole under a temporary name and renamed, to `--out`; warnings
/// to standard error.
fn import(from: ImportFrom, out: &mut dyn Write) -> Result<(), Failure> {
    use overcommit::import;
    let (outcome, dest) = match from {
        ImportFrom::Libvirt { paths, host, out: dest } => {
            let outcome = import::import_libvirt(&paths, &mut std::io::stdin().lock(), host.as_deref())
                .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") })?;
            (outcome, dest)
        }
        ImportFrom::Live { libvirt, host, out: dest, profile, intervals, sample } => {
            let profile = match profile {
                Some(d) => Some(profile_options(&d, &intervals, &sample, 1)?),
                None => None,
            };
            let use_libvirt = match libvirt.as_deref() {
                Some("none") => import::live::LibvirtUse::Off,
                Some(uri) => import::live::LibvirtUse::Uri(uri.to_string()),
                None => import::live::LibvirtUse::Auto,
            };
            let outcome = import::live::import_live(
                &import::live::system_root(),
                &use_libvirt,
                host.as_deref(),
                profile.as_ref(),
            )
            .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            (outcome, dest)
        }
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    match dest {
        Some(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            overcommit::report::run::write_atomically(&dir, &[(name.as_str(), outcome.yaml.into_bytes())]).map_err(
                |e| Failure { code: EXIT_RUNTIME, message: format!("error: writing {}: {e}", path.display()) },
            )?;
            eprintln!(
                "imported {} guest{} in {} group{}: wrote {}",
                outcome.guests,
                if outcome.guests == 1 { "" } else { "s" },
                outcome.groups,
                if outcome.groups == 1 { "" } else { "s" },
                path.display()
            );
        }
        None => write!(out, "{}", outcome.yaml)?,
    }
    Ok(())
}

/// What every run of a sweep or plan shares, read from the command line:
/// the scenario (loaded once to check it, its warnings printed), `--set`,
/// `--seed`, the calibration (`--calibration`, else the scenario's own,
/// relative to its file) and `--sample-rate`.
fn many_inputs(
    file: &std::path::Path,
    set: Vec<Override>,
    seed: Option<u64>,
    calibration: Option<PathBuf>,
    sample_rate: &str,
    mode: overcommit::engine::Mode,
) -> Result<(overcommit::plan::Inputs, scenario::Loaded), Failure> {
    let bad = |message: String| Failure { code: EXIT_BAD_INPUT, message };
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("error: {}: {e}", file.display())))?;
    let label = file.display().to_string();
    let stem = file.file_stem().map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let loaded = scenario::load_str(&text, &label, &stem, &set).map_err(|e| bad(e.to_string()))?;
    for w in &loaded.warnings {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    let cal_path = calibration.or_else(|| {
        loaded.scenario.calibration.as_ref().map(|c| file.parent().unwrap_or(std::path::Path::new(".")).join(c))
    });
    let inputs = overcommit::plan::Inputs {
        text,
        label,
        default_name: stem,
        base: set,
        master_seed: seed,
        sample_rate: parse_sample_rate(sample_rate)?,
        mode,
        costs: load_costs(cal_path.as_deref())?,
        calibration: cal_path.as_ref().map(|p| p.display().to_string()),
    };
    Ok((inputs, loaded))
}

/// `--events`, `--touches`, or neither: the engine's choice.
fn play_mode(events: bool, touches: bool) -> overcommit::engine::Mode {
    use overcommit::engine::Mode;
    if events {
        Mode::Events
    } else if touches {
        Mode::Touches
    } else {
        Mode::Auto
    }
}

/// `--shard I/N`, 1-based.
fn parse_shard(text: &str) -> Result<(u32, u32), Failure> {
    let bad = || Failure {
        code: EXIT_BAD_INPUT,
        message: format!("error: --shard {text:?}: expected I/N with 1 <= I <= N (e.g. 1/4)"),
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

fn load_costs(path: Option<&std::path::Path>) -> Result<overcommit::latency::Costs, Failure> {
    match path {
        Some(p) => overcommit::latency::calibration::load(p, Default::default())
            .map_err(|e| Failure { code: EXIT_BAD_INPUT, message: format!("error: {e}") }),
        None => Ok(Default::default()),
    }
}

fn write_sweep(dir: &std::path::Path, table: &overcommit::plan::sweep::SweepTable) -> Result<(), Failure> {
    let files = overcommit::report::sweep::files(table)
        .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: drawing the plots: {e}") })?;
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    overcommit::report::run::write_atomically(dir, &files)
        .map(|_| ())
        .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: writing {}: {e}", dir.display()) })
}

/// `calibrate` and its swap child (Linux only).
#[cfg(target_os = "linux")]
fn calibrate(cmd: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match cmd {
        Command::SwapChild { bytes } => {
            let ns = overcommit::calibrate::swap::child(bytes)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            writeln!(out, "{ns}")?;
        }
        Command::Calibrate { out: file, size, repeats, quick, json, ksm, swap, reserve_hugepages } => {
            let bad = |message: String| Failure { code: EXIT_BAD_INPUT, message: format!("error: {message}") };
            let mut o =
                if quick { overcommit::calibrate::Options::quick() } else { overcommit::calibrate::Options::default() };
            if !quick || size != "1G" {
                o.size = overcommit::units::ByteSize::parse(&size)
                    .map_err(|e| bad(format!("--size {size:?}: {e}")))?
                    .bytes();
            }
            if o.size < 4 << 20 {
                return Err(bad(format!("--size {size:?}: at least 4M, so the mappings hold huge pages")));
            }
            overcommit::calibrate::size_allowed(o.size).map_err(bad)?;
            if let Some(r) = repeats {
                if r == 0 {
                    return Err(bad("--repeats 0: at least one repeat".into()));
                }
                o.repeats = r;
            }
            o.ksm = ksm;
            o.reserve_hugepages = reserve_hugepages;
            o.swap = swap;
            if ksm || reserve_hugepages {
                overcommit::calibrate::restore::restore_on_signals()
                    .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            }
            let cal = overcommit::calibrate::calibrate(&o)
                .map_err(|e| Failure { code: EXIT_RUNTIME, message: format!("error: {e}") })?;
            let file = file.unwrap_or_else(|| {
                PathBuf::from(if json { "output/calibration.json" } else { "output/calibration.yaml" })
            });
            let (dir, name) = (
                file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")),
                file.file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| bad(format!("--out {}: not a file name", file.display())))?,
            );
            let body = if json { cal.to_json() } else { cal.to_yaml() };
            overcommit::report::run::write_atomically(dir, &[(name, body.into_bytes())])?;
            write!(out, "{}", cal.render_text())?;
            writeln!(out, "\nwrote {}", file.display())?;
        }
        _ => unreachable!("only calibrate commands come here"),
    }
    Ok(())
}
