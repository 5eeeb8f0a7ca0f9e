//! The command line: each subcommand's arguments and the function that
//! carries it out, in one file per concern; `main.rs` only parses and
//! dispatches. Arguments several subcommands take (`--jobs`,
//! `--sample-rate`, `--shard`, the calibration) are parsed and resolved
//! once, in `common`.

pub mod calibrate;
pub mod check;
pub mod common;
pub mod fleet;
pub mod learn;
pub mod plan;
pub mod profile;
pub mod run;
pub mod sweep;

use clap::{Parser, Subcommand};

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Play a scenario forward and report memory, faults and latency per guest
    #[command(after_help = "Examples:\n  \
overcommit run scenarios/quickstart.yaml\n  \
overcommit run scenarios/quickstart.yaml --seed 7 --out /tmp/qs\n  \
overcommit run scenarios/quickstart.yaml --set host.swap.device=hdd --set duration=2m\n\n\
Writes summary.json, timeseries.csv and events.csv to --out (default output/<scenario name>/).")]
    Run(run::RunArgs),
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
    Sweep(sweep::SweepArgs),
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
    Plan(plan::PlanArgs),
    /// Plan a fleet: the hosts its guests need under a placement policy, and what losing one does
    #[command(after_help = "Examples:\n  \
overcommit fleet scenarios/fleet.yaml\n  \
overcommit fleet scenarios/fleet.yaml --placements first-fit,spread,sharing --jobs 2\n  \
overcommit fleet scenarios/fleet.yaml --policies none,swap,swap+balloon+ksm,hugepages\n  \
overcommit fleet scenarios/fleet.yaml --placements first-fit,spread,sharing --shard 1/3 --out s1\n  \
overcommit merge s1 s2 s3 --out whole\n\n\
Placement counts each guest's configured memory against its host's (ram − reserved) × \
ram_allocation_ratio, as Nova's placement does; the ratio of host types without one is searched, \
the highest at which every host meets the objectives, and hosts of the first type without a count \
are added as guests need them (then as spares until losing the `survive` most loaded hosts leaves \
every guest placed and every host within the objectives); when every type is counted, the answer is \
the guests the hosts admit. Hosts alike are simulated once. Each placement × policy mix is one \
question; --shard answers every N-th and `merge` joins the shards into the unsharded output. Under \
each answer: the settings per host type (ram_allocation_ratio, reserved_host_memory_mb, spares, \
swap, KSM, balloon). Writes fleet.json, hosts.csv, a picture of each answer's hosts \
(memory-PLACEMENT[-MIX].svg/.png: the lost hosts and the guests restarted marked) and report.html \
to --out (default output/<fleet name>/fleet/).")]
    Fleet(fleet::FleetArgs),
    /// Run a lesson: an idea of KVM memory overcommit as an experiment, explained with its own numbers
    #[command(after_help = "Examples:\n  \
overcommit learn                      # the lessons\n  \
overcommit learn hugepages\n  \
overcommit learn hugepages --lang zh  # 中文讲解\n\n\
Each lesson is a scenario under scenarios/learn/ comparing variants; its runs, plots and \
report.html go to --out (default output/learn/<lesson>/).")]
    Learn(learn::LearnArgs),
    /// Join the folders of a sharded sweep or fleet into what the unsharded run writes
    #[command(after_help = "Example:\n  \
overcommit merge output/quickstart/sweep-shard-1-of-2 output/quickstart/sweep-shard-2-of-2 --out whole")]
    Merge(sweep::MergeArgs),
    /// Validate a scenario and print a one-screen summary (or its errors)
    #[command(after_help = "Examples:\n  \
overcommit check scenarios/quickstart.yaml\n  \
overcommit check scenarios/quickstart.yaml --set host.ram=32G --set guests.web.count=16\n\n\
Exit status: 0 when the scenario is valid (warnings allowed), 2 when it has errors.")]
    Check(check::CheckArgs),
    /// Report this machine's virtualisation and memory features, and what they mean for overcommit
    #[command(after_help = "Examples:\n  \
overcommit host\n  \
overcommit host --json | jq .meminfo\n  \
overcommit host --scenario > host.yaml   # a host: section to start a scenario from")]
    Host(check::HostArgs),
    /// Turn what operators already have into a scenario: libvirt domain XML, or this host as it runs
    #[command(subcommand)]
    Import(profile::ImportFrom),
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
    Profile(profile::ProfileArgs),
    /// Measure this machine's page-fault, zeroing, memory-latency and copy costs, and write a calibration file
    #[command(after_help = "Examples:\n  \
overcommit calibrate --quick\n  \
overcommit calibrate --size 2G --repeats 9 --out host.yaml\n  \
sudo overcommit calibrate --reserve-hugepages --ksm --swap   # hugetlb pools, ksmd and swap-in too\n  \
overcommit run scenarios/quickstart.yaml --calibration output/calibration.yaml\n\n\
Each figure is the median (with min and max) of --repeats repeats after one warm-up; faults are \
timed on fresh mappings, touched one byte per page (once per huge page). Settings changed for a \
test are put back, also on Ctrl-C. Linux only.")]
    Calibrate(calibrate::CalibrateArgs),
    /// A process with a known workload, for the profiler's tests and benchmark (internal)
    #[command(hide = true)]
    TouchChild(overcommit::profile::child::ChildSpec),
    /// The child process of `calibrate --swap` (internal)
    #[command(hide = true)]
    SwapChild(calibrate::SwapChildArgs),
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
