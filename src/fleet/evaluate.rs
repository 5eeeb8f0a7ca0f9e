//! A fleet played: its guests placed on its hosts, every host simulated
//! with the engine, each checked against the objectives; then the most
//! loaded host lost and its guests restarted on the others.
//!
//! Hosts of one type holding the same guests play the same scenario with
//! the same seed, so each such host is simulated once (its fingerprint:
//! the type and how many guests of each type it holds); a fleet of a
//! thousand hosts of three types placed by a rule that fills them alike
//! plays a handful of runs.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};

use super::file::{Fleet, HostType};
use super::placement::{self, Host, Request};
use crate::engine::{self, RunConfig, Summary};
use crate::input::diag::Severity;
use crate::input::node::{Node, Pos, Value};
use crate::model::Status;
use crate::plan::capacity::{PLAN_PAGE_BUDGET, PLAN_TOUCH_BUDGET, StopOnFailure, settled_bounds_of};
use crate::plan::sweep::{failed_slos, run_metric};
use crate::scenario::Scenario;

/// How every host's run is played.
#[derive(Debug, Clone, Default)]
pub struct Play {
    pub run: RunConfig,
    pub jobs: usize,
}

/// A host: its type, the guests placed on it (count per guest type, in the
/// fleet's order), and what its run showed. A figure its run could not
/// give is NaN (written as `null`, read back as NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    pub index: usize,
    pub host_type: String,
    pub guests: BTreeMap<String, u32>,
    /// Memory configured by its guests, and the limit placement held it to
    /// (`(ram − reserved) × ram_allocation_ratio`).
    pub configured_bytes: u64,
    pub limit_bytes: u64,
    pub ram_bytes: u64,
    /// Objectives missed (also `failed_to_start` and `not_running`); empty:
    /// the host meets them all.
    pub failed: Vec<String>,
    /// Each objective's value, in the fleet's order (the worst guest, or
    /// the host).
    #[serde(deserialize_with = "nans_from_nulls")]
    pub metrics: Vec<f64>,
    #[serde(deserialize_with = "nan_from_null")]
    pub p99_ns: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub slowdown: f64,
    pub peak_used_bytes: u64,
    pub swap_used_peak_bytes: u64,
    pub ksm_saved_bytes: u64,
    /// KSM's knobs at the end of the run (`pages_to_scan`,
    /// `sleep_millisecs`), when it ran.
    pub ksm_knobs: Option<(u32, u32)>,
}

fn nan_from_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nans_from_nulls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// The fleet as placed and played.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub placement: String,
    pub hosts: Vec<HostResult>,
    /// Guests no host had room for, per guest type.
    pub unplaced: BTreeMap<String, u32>,
    /// Host runs played for this evaluation (hosts alike share one, and
    /// runs an earlier evaluation played are not played again).
    pub runs: usize,
    /// The fleet after losing its `survive` most loaded hosts, when it
    /// has more hosts than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// The most loaded hosts lost (the most configured memory; the first
/// listed among equals) and their guests restarted on the others by the
/// same placement, with no host added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub lost: Vec<usize>,
    /// The guests they held, per guest type.
    pub restarted: BTreeMap<String, u32>,
    /// The hosts left, as placed and played after the restarts.
    pub hosts: Vec<HostResult>,
    /// Restarted guests that found no room (guests no host took before
    /// the loss are not counted again).
    pub unplaced: BTreeMap<String, u32>,
    /// Hosts that met every objective before and miss one after.
    pub broken: Vec<usize>,
    /// By how much: each objective a broken host misses, its value before
    /// and after the restarts (NaN where the run gives none: a guest
    /// killed or not started).
    #[serde(default)]
    pub breaks: Vec<Break>,
}

/// An objective a host met before the loss and misses after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Break {
    pub host: usize,
    /// The objective as written, or `oom_kills==0`, `failed_to_start`,
    /// `not_running`.
    pub objective: String,
    #[serde(deserialize_with = "nan_from_null")]
    pub before: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub after: f64,
}

impl Failure {
    pub fn passes(&self) -> bool {
        self.unplaced.is_empty() && self.hosts.iter().all(|h| h.failed.is_empty())
    }
}

impl Outcome {
    /// Every guest placed and every host meeting every objective.
    pub fn passes(&self) -> bool {
        self.meets(false)
    }

    /// Every host meeting every objective, and every guest placed unless
    /// `admitting` (every host is counted, and the question is how many
    /// guests they admit).
    pub fn meets(&self, admitting: bool) -> bool {
        (admitting || self.unplaced.is_empty()) && self.hosts.iter().all(|h| h.failed.is_empty())
    }

    /// [`Outcome::passes`], and so does the fleet after its loss.
    pub fn survives(&self) -> bool {
        self.survives_as(false)
    }

    /// [`Outcome::meets`], and after the loss every guest the lost hosts
    /// held restarted and every host left meeting every objective.
    pub fn survives_as(&self, admitting: bool) -> bool {
        self.meets(admitting) && self.failure.as_ref().is_none_or(Failure::passes)
    }

    /// Guests placed.
    pub fn admitted(&self) -> u32 {
        self.hosts.iter().map(|h| h.guests.values().sum::<u32>()).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A host with the guests placed on it is not a scenario the engine
    /// can play (its checks name the field).
    #[error("host type {host_type} with {guests}: {message}")]
    Host { host_type: String, guests: String, message: String },
    #[error("{0}")]
    Run(#[from] engine::RunError),
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
}

/// The hosts of `fleet` at `ratios` (one per host type), empty, types with
/// no count left out: those are opened as guests need them (see [`place`]).
fn counted_hosts(fleet: &Fleet, ratios: &[f64]) -> Vec<(usize, Host)> {
    let mut hosts = Vec::new();
    for (t, ht) in fleet.hosts.iter().enumerate() {
        for _ in 0..ht.count.unwrap_or(0) {
            hosts.push((t, host_of(ht, ratios[t])));
        }
    }
    hosts
}

fn host_of(ht: &HostType, ratio: f64) -> Host {
    Host::new(ht.host.ram.bytes(), ht.host.reserved.bytes(), ratio)
}

/// The guests to place, in the fleet's order: each type's count of
/// requests, with the type's index.
fn requests(fleet: &Fleet) -> Vec<(usize, Request)> {
    fleet
        .guests
        .iter()
        .enumerate()
        .flat_map(|(k, g)| {
            // A group without `image:` is its own image (the scenario reader's default).
            let r = Request { memory: g.memory.bytes(), image: Some(g.image.clone()) };
            std::iter::repeat_n((k, r), g.count as usize)
        })
        .collect()
}

/// Place the fleet's guests with its policy on its counted hosts and the
/// first type without a count: `open_count` hosts of it, or (`None`) the
/// hosts needed: as many as placement opens one at a time, as guests find
/// no room, and then (so that every policy sees all of them, as a cloud
/// places on the hosts it has: spreading needs them) the guests placed
/// again on that many from the start, one more while some find no room.
/// A guest no host takes stays unplaced. Returns each host's type and
/// state, and where each guest went.
pub fn place(fleet: &Fleet, ratios: &[f64], open_count: Option<u32>) -> Result<Placed, String> {
    let policy = placement::resolve(&fleet.placement)?;
    let counted = counted_hosts(fleet, ratios);
    let open = fleet.hosts.iter().position(|h| h.count.is_none());
    let with = |n: u32| -> Placed {
        let mut typed = counted.clone();
        if let Some(t) = open {
            typed.extend((0..n).map(|_| (t, host_of(&fleet.hosts[t], ratios[t]))));
        }
        let mut hosts: Vec<Host> = typed.iter().map(|(_, h)| h.clone()).collect();
        let only: Vec<Request> = requests(fleet).into_iter().map(|(_, r)| r).collect();
        let at = policy.place_all(&mut hosts, &only);
        for (slot, h) in typed.iter_mut().zip(hosts) {
            slot.1 = h;
        }
        (typed, at)
    };
    match (open, open_count) {
        (Some(t), None) => {
            // Hosts needed: as the policy opens them, or as first fit does
            // when that is fewer (a policy that falls back on first fit,
            // as sharing does, then fits on as many).
            let count = |p: &dyn placement::Placement| -> Result<u32, String> {
                let (opened, _) = place_opening(fleet, ratios, p, counted.clone(), t)?;
                Ok(opened.iter().filter(|(ty, _)| *ty == t).count() as u32)
            };
            let needed = count(policy.as_ref())?.min(count(&placement::FirstFit)?);
            let mut n = needed;
            loop {
                let placed = with(n);
                if placed.1.iter().all(Option::is_some) || n >= needed + MAX_REPLACE {
                    return Ok(placed);
                }
                n += 1;
            }
        }
        (_, Some(n)) => Ok(with(n)),
        (None, None) => Ok(with(0)),
    }
}

/// Hosts added at most when placing again on the hosts needed leaves a
/// guest without room (a policy that spreads can fragment them).
const MAX_REPLACE: u32 = 8;

/// Placement opening hosts of type `t` one at a time, as guests need them.
fn place_opening(
    fleet: &Fleet,
    ratios: &[f64],
    policy: &dyn placement::Placement,
    mut typed: Vec<(usize, Host)>,
    t: usize,
) -> Result<Placed, String> {
    let only: Vec<Request> = requests(fleet).into_iter().map(|(_, r)| r).collect();
    let mut at = vec![None; only.len()];
    let mut hosts: Vec<Host> = typed.iter().map(|(_, h)| h.clone()).collect();
    for i in policy.order(&only) {
        let guest = &only[i];
        let mut chosen = policy.choose(&hosts, guest);
        if chosen.is_none() {
            let fresh = host_of(&fleet.hosts[t], ratios[t]);
            if fresh.fits(guest) {
                hosts.push(fresh.clone());
                typed.push((t, fresh));
                chosen = Some(hosts.len() - 1);
            }
        }
        if let Some(h) = chosen {
            hosts[h].take(guest);
            at[i] = Some(h);
        }
    }
    for (slot, h) in typed.iter_mut().zip(hosts) {
        slot.1 = h;
    }
    Ok((typed, at))
}

/// Each host's type and state after placement, and where each guest went
/// (`None`: no host had room).
pub type Placed = (Vec<(usize, Host)>, Vec<Option<usize>>);

/// What a host holds: its type and its count of each guest type.
pub type Fingerprint = (usize, Vec<u32>);

/// A host's run, or why it could not be built.
pub type Played = Result<Summary, String>;

/// The sampling rate host scenario `s` plays at: `--sample-rate` when
/// given, else as `plan` plays a point (within its touch and page budgets).
pub fn host_rate(s: &Scenario, play: &Play) -> f64 {
    play.run.sample_rate.unwrap_or_else(|| {
        engine::rate_within_pages(s, engine::sample_rate_within(s, PLAN_TOUCH_BUDGET), PLAN_PAGE_BUDGET)
    })
}

/// The scenario of one host of type `t` holding `counts` guests of each
/// type: the type's `host:` and the guest types placed on it, as written,
/// read by the scenario's reader (so a guest's defaults follow the host's,
/// as in a scenario), then turned to the fleet's policy mix as `plan`
/// turns its points (the hugepages mix sizing the pools for the guests
/// placed). `Err`: the host cannot be built so, and why.
pub fn host_scenario(fleet: &Fleet, t: usize, counts: &[u32]) -> Result<Scenario, String> {
    let mut guests = Vec::new();
    for (g, &n) in fleet.guest_nodes.iter().zip(counts) {
        if n == 0 {
            continue;
        }
        let mut g = g.clone();
        if let Value::Map(entries) = &mut g.value {
            // The instances' own names are those of the whole type.
            entries.retain(|(k, _)| k.name != "names");
        }
        g.set_path("count", Node::new(Value::Int(i128::from(n)), Pos::default()))?;
        guests.push(g);
    }
    let name = format!("{}-{}", fleet.name, fleet.hosts[t].name);
    let mut root = Node::new(Value::Null, Pos::default());
    root.set_path("host", fleet.hosts[t].node.clone())?;
    root.set_path("guests", Node::new(Value::Seq(guests), Pos::default()))?;
    let mut s = crate::scenario::from_node(root.clone(), &name, &[])?;
    if let Some(mix) = fleet.mix {
        // As written, then turned to the mix (each group counts what was
        // placed: it was read with that count).
        let o = crate::plan::capacity::mix_overrides(&s, mix, |g| u64::from(g.count));
        s = crate::scenario::from_node(root, &name, &o)?;
    }
    s.seed = fleet.seed;
    s.duration = fleet.duration;
    s.warmup = fleet.warmup;
    s.sample_every = fleet.sample_every;
    Ok(s)
}

/// Play `fleet` with each host type at `ratios[t]` and `open_count` hosts
/// of the type without a count (`None`: as many as placement opens); then,
/// when `fleet.survive` > 0 and hosts are left, lose the most loaded and
/// play the rest.
pub fn evaluate(fleet: &Fleet, ratios: &[f64], open_count: Option<u32>, play: &Play) -> Result<Outcome, FleetError> {
    evaluate_with(fleet, ratios, open_count, play, &mut Runs::new())
}

/// The host runs played so far, by what each host holds: a host's run
/// does not depend on the ratio or the other hosts, so a search keeps them
/// from one evaluation to the next.
pub type Runs = BTreeMap<Fingerprint, Played>;

/// [`evaluate`], reusing and adding to `runs`.
pub fn evaluate_with(
    fleet: &Fleet,
    ratios: &[f64],
    open_count: Option<u32>,
    play: &Play,
    runs: &mut Runs,
) -> Result<Outcome, FleetError> {
    let (hosts, at) = place(fleet, ratios, open_count).map_err(|m| FleetError::Host {
        host_type: String::new(),
        guests: String::new(),
        message: m,
    })?;
    let reqs = requests(fleet);
    let counts = tally(fleet, hosts.len(), &reqs, &at);
    let unplaced = unplaced(fleet, &reqs, &at);
    let prints: Vec<Fingerprint> = hosts.iter().zip(&counts).map(|((t, _), c)| (*t, c.clone())).collect();
    let more = play_distinct(fleet, &prints, runs, play)?;
    let played = more.len();
    runs.extend(more);
    let results: Vec<HostResult> = hosts
        .iter()
        .enumerate()
        .map(|(i, (t, h))| host_result(fleet, i, *t, h, &counts[i], &runs[&prints[i]]))
        .collect();
    let survive = fleet.survive as usize;
    let failure = if survive > 0 && hosts.len() > survive {
        Some(lose(fleet, &hosts, &reqs, &at, &results, runs, play)?)
    } else {
        None
    };
    Ok(Outcome { placement: fleet.placement.clone(), hosts: results, unplaced, runs: played, failure })
}

/// Each host's count of each guest type.
fn tally(fleet: &Fleet, hosts: usize, reqs: &[(usize, Request)], at: &[Option<usize>]) -> Vec<Vec<u32>> {
    let mut counts = vec![vec![0u32; fleet.guests.len()]; hosts];
    for ((k, _), h) in reqs.iter().zip(at) {
        if let Some(h) = h {
            counts[*h][*k] += 1;
        }
    }
    counts
}

fn unplaced(fleet: &Fleet, reqs: &[(usize, Request)], at: &[Option<usize>]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for ((k, _), h) in reqs.iter().zip(at) {
        if h.is_none() {
            *out.entry(fleet.guests[*k].name.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// Lose the `fleet.survive` most loaded hosts and restart their guests on
/// the others with the fleet's placement.
fn lose(
    fleet: &Fleet,
    hosts: &[(usize, Host)],
    reqs: &[(usize, Request)],
    at: &[Option<usize>],
    before: &[HostResult],
    runs: &mut BTreeMap<Fingerprint, Played>,
    play: &Play,
) -> Result<Failure, FleetError> {
    let policy = placement::resolve(&fleet.placement).map_err(|m| FleetError::Host {
        host_type: String::new(),
        guests: String::new(),
        message: m,
    })?;
    let mut by_load: Vec<usize> = (0..hosts.len()).collect();
    // Most configured memory first; a stable sort keeps the first listed
    // first among equals.
    by_load.sort_by(|&a, &b| hosts[b].1.used.cmp(&hosts[a].1.used));
    let mut lost: Vec<usize> = by_load[..fleet.survive as usize].to_vec();
    lost.sort_unstable();
    // The others keep what they hold; the lost hosts' guests are offered
    // to them in the policy's order.
    let mut left: Vec<Host> = hosts.iter().map(|(_, h)| h.clone()).collect();
    for &l in &lost {
        left[l].ratio = 0.0; // no room: it is gone
    }
    let moving: Vec<usize> = (0..reqs.len()).filter(|&i| at[i].is_some_and(|h| lost.contains(&h))).collect();
    let offered: Vec<Request> = moving.iter().map(|&i| reqs[i].1.clone()).collect();
    let mut new_at: Vec<Option<usize>> = at.to_vec();
    let mut restarted = BTreeMap::new();
    for &i in &moving {
        new_at[i] = None;
        *restarted.entry(fleet.guests[reqs[i].0].name.clone()).or_insert(0) += 1;
    }
    for (j, h) in policy.place_all(&mut left, &offered).into_iter().enumerate() {
        new_at[moving[j]] = h;
    }
    let counts = tally(fleet, hosts.len(), reqs, &new_at);
    let prints: Vec<Fingerprint> = hosts.iter().zip(&counts).map(|((t, _), c)| (*t, c.clone())).collect();
    let kept: Vec<usize> = (0..hosts.len()).filter(|h| !lost.contains(h)).collect();
    let needed: Vec<Fingerprint> = kept.iter().map(|&h| prints[h].clone()).collect();
    let more = play_distinct(fleet, &needed, runs, play)?;
    runs.extend(more);
    let results: Vec<HostResult> = kept
        .iter()
        .map(|&i| {
            let mut h = left[i].clone();
            h.ratio = hosts[i].1.ratio;
            host_result(fleet, i, hosts[i].0, &h, &counts[i], &runs[&prints[i]])
        })
        .collect();
    let broken: Vec<usize> =
        results.iter().filter(|r| !r.failed.is_empty() && before[r.index].failed.is_empty()).map(|r| r.index).collect();
    let mut breaks = Vec::new();
    for r in results.iter().filter(|r| broken.contains(&r.index)) {
        for missed in &r.failed {
            let j = fleet.objectives.iter().position(|o| o.text == *missed);
            let value = |h: &HostResult| j.map_or(f64::NAN, |j| h.metrics[j]);
            breaks.push(Break {
                host: r.index,
                objective: missed.clone(),
                before: value(&before[r.index]),
                after: value(r),
            });
        }
    }
    let mut stranded = BTreeMap::new();
    for &i in moving.iter().filter(|&&i| new_at[i].is_none()) {
        *stranded.entry(fleet.guests[reqs[i].0].name.clone()).or_insert(0) += 1;
    }
    Ok(Failure { lost, restarted, hosts: results, unplaced: stranded, broken, breaks })
}

/// Each distinct host simulated once, in parallel; same scenario and seed
/// whatever the thread count, so the same results.
fn play_distinct(
    fleet: &Fleet,
    prints: &[Fingerprint],
    played_before: &BTreeMap<Fingerprint, Played>,
    play: &Play,
) -> Result<BTreeMap<Fingerprint, Played>, FleetError> {
    let distinct: Vec<&Fingerprint> = prints
        .iter()
        .filter(|p| !played_before.contains_key(*p))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(play.jobs.max(1))
        .build()
        .map_err(|e| FleetError::Threads(play.jobs, e.to_string()))?;
    let played: Vec<(Fingerprint, Played)> = pool.install(|| {
        distinct
            .par_iter()
            .map(|&fp| {
                let s = match host_scenario(fleet, fp.0, &fp.1) {
                    Ok(s) => s,
                    Err(why) => return Ok((fp.clone(), Err(format!("unconfigurable: {why}")))),
                };
                if let Some(d) = crate::scenario::check_built(&s).into_iter().find(|d| d.severity == Severity::Error) {
                    // The host cannot be built with these guests (a hugetlb
                    // pool beyond its RAM, say): it does not pass, as a
                    // plan's point that cannot be built.
                    return Ok((fp.clone(), Err(format!("unconfigurable: {}: {}", d.path, d.message))));
                }
                // As `plan` plays its points: sampled within its touch
                // and page budgets unless told, and stopped once an
                // objective or a guest is lost for good.
                let cfg = RunConfig {
                    sample_rate: Some(host_rate(&s, play)),
                    stop_when_missed: settled_bounds_of(&fleet.objectives, false),
                    ..play.run.clone()
                };
                let summary = engine::run(&s, cfg, &mut StopOnFailure::new(false))?;
                Ok((fp.clone(), Ok(summary)))
            })
            .collect::<Result<Vec<_>, FleetError>>()
    })?;
    Ok(played.into_iter().collect())
}

fn host_result(fleet: &Fleet, index: usize, t: usize, h: &Host, counts: &[u32], played: &Played) -> HostResult {
    let mut r = HostResult {
        index,
        host_type: fleet.hosts[t].name.clone(),
        guests: fleet.guests.iter().zip(counts).filter(|(_, n)| **n > 0).map(|(g, n)| (g.name.clone(), *n)).collect(),
        configured_bytes: h.used,
        limit_bytes: h.limit(),
        ram_bytes: h.ram,
        failed: Vec::new(),
        metrics: vec![f64::NAN; fleet.objectives.len()],
        p99_ns: f64::NAN,
        slowdown: f64::NAN,
        peak_used_bytes: 0,
        swap_used_peak_bytes: 0,
        ksm_saved_bytes: 0,
        ksm_knobs: None,
    };
    let s = match played {
        Ok(s) => s,
        Err(why) => {
            r.failed.push(why.clone());
            return r;
        }
    };
    if s.host.guests_failed_to_start > 0 {
        r.failed.push("failed_to_start".into());
    }
    if s.guests.iter().any(|g| g.state != Status::Running) && s.host.guests_failed_to_start == 0 {
        r.failed.push("not_running".into());
    }
    // As `plan` holds every point to it.
    if s.host.oom_kills + s.host.memcg_oom_kills > 0 {
        r.failed.push("oom_kills==0".into());
    }
    if counts.iter().any(|&n| n > 0) {
        // An empty host meets every guest's objective (no guest misses it).
        r.failed.extend(failed_slos(s, &fleet.objectives).into_iter().map(|o| o.text.clone()));
    }
    let running = s.guests.iter().filter(|g| g.state == Status::Running);
    r.p99_ns = running.clone().map(|g| g.latency_ns.p99 as f64).fold(0.0, f64::max);
    r.slowdown = running.map(|g| g.slowdown).fold(0.0, f64::max);
    r.metrics = fleet.objectives.iter().map(|o| run_metric(s, o).unwrap_or(f64::NAN)).collect();
    r.peak_used_bytes = s.host.peak_used_bytes;
    r.swap_used_peak_bytes = s.host.swap_used_peak_bytes;
    r.ksm_saved_bytes = s.host.ksm.as_ref().map_or(0, |k| k.saved_bytes);
    r.ksm_knobs = s.host.ksm.as_ref().filter(|k| k.run).map(|k| (k.pages_to_scan, k.sleep_millisecs));
    r
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::Path;

    pub(in crate::fleet) fn fleet(text: &str) -> Fleet {
        super::super::file::load_str(text, "f.yaml", "f", Path::new(".")).unwrap()
    }

    /// Three 4 GiB hosts and five 1 GiB guests of one image.
    pub(in crate::fleet) const SMALL: &str = "\
name: small
duration: 2s
hosts:
  - name: h
    count: 3
    host: { ram: 4G, reserved: 0 }
guests:
  - { name: web, count: 5, memory: 1G, image: base, workload: { working_set: 256M, touch_rate: 20k/s } }
objectives: [\"p99<=50us\"]
";

    #[test]
    fn hosts_alike_are_played_once() {
        // Ratio 1: four 1 GiB guests fill a 4 GiB host. First fit puts
        // four on the first host and one on the second; the third is
        // empty: three distinct hosts.
        let f = fleet(SMALL);
        let out = evaluate(&f, &[1.0], None, &Play { jobs: 2, ..Default::default() }).unwrap();
        let per_host: Vec<u32> = out.hosts.iter().map(|h| h.guests.values().sum()).collect();
        assert_eq!(per_host, [4, 1, 0]);
        assert_eq!(out.runs, 3);
        assert!(out.unplaced.is_empty());
        // Spread (Nova): the most free RAM first: 2, 2, 1.
        let f = fleet(&format!("{SMALL}placement: spread\n"));
        let out = evaluate(&f, &[1.0], None, &Play { jobs: 1, ..Default::default() }).unwrap();
        let per_host: Vec<u32> = out.hosts.iter().map(|h| h.guests.values().sum()).collect();
        assert_eq!(per_host, [2, 2, 1]);
        // Hosts 0 and 1 hold the same guests: one run for both.
        assert_eq!(out.runs, 2);
        // Played again with the runs kept: nothing new to play, the same
        // hosts.
        let mut runs = Runs::new();
        let first = evaluate_with(&f, &[1.0], None, &Play { jobs: 1, ..Default::default() }, &mut runs).unwrap();
        let again = evaluate_with(&f, &[1.0], None, &Play { jobs: 1, ..Default::default() }, &mut runs).unwrap();
        assert_eq!((first.runs, again.runs), (2, 0));
        assert_eq!(serde_json::to_string(&first.hosts).unwrap(), serde_json::to_string(&again.hosts).unwrap());
        assert_eq!(out.hosts[0].p99_ns.to_bits(), out.hosts[1].p99_ns.to_bits());
    }

    #[test]
    fn hosts_are_opened_as_guests_need_them() {
        // No count: 5 guests of 1 GiB at ratio 1.5 on 4 GiB hosts take
        // six a host: one host.
        let f = fleet(&SMALL.replace("    count: 3\n", ""));
        let (hosts, at) = place(&f, &[1.5], None).unwrap();
        assert_eq!(hosts.len(), 1);
        assert!(at.iter().all(|a| *a == Some(0)));
        // At ratio 1, four a host: two hosts.
        let (hosts, _) = place(&f, &[1.0], None).unwrap();
        assert_eq!(hosts.len(), 2);
    }

    #[test]
    fn a_mix_turns_a_fleet_host_as_plan_turns_its_point() {
        // A host holding 3 web guests under each mix is the scenario `plan`
        // plays for the same host and guests at that mix (its overrides
        // applied to the scenario text): the same reader, the same turn.
        use crate::plan::capacity::{Goal, Mix, overrides};
        let f = fleet(&SMALL.replace("reserved: 0 }", "reserved: 0, swap: { size: 4G, device: ssd } }"));
        let text = "host: { ram: 4G, reserved: 0, swap: { size: 4G, device: ssd } }\nguests:\n  - { name: web, count: 3, \
                    memory: 1G, image: base, workload: { working_set: 256M, touch_rate: 20k/s } }\n";
        let base = crate::scenario::load_str(text, "s.yaml", "s", &[]).unwrap().scenario;
        for mix in Mix::ALL {
            let host = host_scenario(&Fleet { mix: Some(mix), ..f.clone() }, 0, &[3]).unwrap();
            let o = overrides(&base, &Goal::Grow("web".into()), mix, 3);
            let point = crate::scenario::load_str(text, "s.yaml", "s", &o).unwrap().scenario;
            assert_eq!(host.host, point.host, "{}", mix.name());
            assert_eq!(host.guests, point.guests, "{}", mix.name());
        }
        // The hugepages mix sizes the pool for what is placed: 3 GiB in
        // 2 MiB pages.
        let host = host_scenario(&Fleet { mix: Some(Mix::Hugepages), ..f }, 0, &[3]).unwrap();
        assert_eq!(host.host.hugepages.count, 3 * 512);
    }

    #[test]
    fn a_loss_says_which_hosts_break_and_by_how_much() {
        // Spread over three 4 GiB hosts at ratio 2, six guests touching
        // 1.5 GiB each sit two a host (3 GiB: in RAM). Losing host 0 moves
        // its two to the others: three a host, 4.5 GiB on 4 GiB of RAM,
        // swapping to an SSD, so p99 goes past 50 µs on both; each break
        // gives the objective's value before (within it) and after.
        let text = "\
name: tight
duration: 3s
hosts:
  - name: h
    count: 3
    ram_allocation_ratio: 2
    host: { ram: 4G, reserved: 0, swap: { size: 8G, device: ssd } }
guests:
  - { name: db, count: 6, memory: 2G, workload: { working_set: 1536M, touch_rate: 50k/s, pattern: uniform } }
objectives: [\"p99<=50us\"]
placement: spread
survive: 1
";
        let f = fleet(text);
        let out = evaluate(&f, &[2.0], None, &Play { jobs: 2, ..Default::default() }).unwrap();
        assert!(out.passes(), "{:?}", out.hosts);
        let loss = out.failure.expect("a loss was played");
        assert_eq!((loss.lost.clone(), loss.broken.clone()), (vec![0], vec![1, 2]));
        assert_eq!(loss.breaks.len(), 2, "{:?}", loss.breaks);
        for b in &loss.breaks {
            assert_eq!(b.objective, "p99<=50us");
            assert!(b.before <= 50_000.0 && b.after > 50_000.0, "{b:?}");
        }
    }

    #[test]
    fn a_loss_counts_only_the_restarted_guests_without_room() {
        // Thirteen 1 GiB guests on three 4 GiB hosts at ratio 1: twelve
        // fit (four a host), one never does. Losing host 0 strands its
        // four (the others are full): four without room, not five.
        let text = SMALL.replace("count: 5,", "count: 13,") + "survive: 1\n";
        let out = evaluate(&fleet(&text), &[1.0], None, &Play { jobs: 2, ..Default::default() }).unwrap();
        assert_eq!(out.unplaced.get("web"), Some(&1));
        let loss = out.failure.expect("a loss was played");
        assert_eq!((loss.lost.clone(), loss.unplaced.get("web")), (vec![0], Some(&4)));
    }
}
