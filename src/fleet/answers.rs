//! A fleet's questions and answers: for each placement × policy mix, the
//! hosts needed ([`search`]) and the settings an operator would write for
//! each host type; what `overcommit fleet` writes as `fleet.json`, a
//! shard's part of it, and the joining of the shards' parts.
//!
//! The questions are independent, so a shard (`--shard I/N`) answers every
//! N-th of them in the order placements × mixes, and `merge` puts the
//! answers back in that order: the whole, byte for byte, as one machine
//! would have written it (an answer depends on nothing but its own
//! question, and serde_json reads back every figure it wrote exactly).

use serde::{Deserialize, Serialize};

use super::evaluate::{FleetError, Play, host_rate, host_scenario};
use super::file::Fleet;
use super::search::{self, Answer};
use crate::plan::Fnv;
use crate::plan::capacity::Mix;
use crate::plan::sweep::in_shard;

/// The policies of one question: a mix of `plan`'s, or the host types'
/// own as written.
pub const AS_WRITTEN: &str = "as-written";

/// `as-written` or a mix's name.
pub fn mix_name(mix: Option<Mix>) -> &'static str {
    mix.map_or(AS_WRITTEN, Mix::name)
}

/// Read a policy mix name (`as-written` for none).
pub fn parse_mix(name: &str) -> Result<Option<Mix>, String> {
    if name.trim() == AS_WRITTEN {
        return Ok(None);
    }
    name.parse::<Mix>().map(Some).map_err(|m| format!("{m}, {AS_WRITTEN}"))
}

/// What `overcommit fleet` writes as `fleet.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetAnswers {
    pub fleet: String,
    /// The fleet file as named on the command line.
    pub file: String,
    /// FNV-1a of everything that decides the answers (the fleet file and
    /// the scenarios it names, the questions, sampling, mode, costs).
    pub fingerprint: String,
    /// `Some((I, N))`: shard I of N (1-based), holding every N-th answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(u32, u32)>,
    pub objectives: Vec<String>,
    pub survive: u32,
    pub host_types: Vec<String>,
    /// Each guest type and its number of guests.
    pub guest_types: Vec<(String, u32)>,
    /// The questions: every placement with every policy mix, in this order.
    pub placements: Vec<String>,
    pub policies: Vec<String>,
    pub answers: Vec<Entry>,
}

/// One question's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub placement: String,
    pub policies: String,
    /// What an operator sets on each host type for this answer.
    pub settings: Vec<Settings>,
    pub answer: Answer,
}

impl Entry {
    /// `placement` or `placement, policies` when a mix was asked for.
    pub fn label(&self) -> String {
        if self.policies == AS_WRITTEN {
            self.placement.clone()
        } else {
            format!("{}, {}", self.placement, self.policies)
        }
    }

    /// A name for its files: `placement` or `placement-policies`.
    pub fn slug(&self) -> String {
        if self.policies == AS_WRITTEN {
            self.placement.clone()
        } else {
            format!("{}-{}", self.placement, self.policies)
        }
    }
}

/// A host type's settings in an answer, by the names operators set them
/// under: Nova's `ram_allocation_ratio` and `reserved_host_memory_mb`
/// (nova.conf `[DEFAULT]`), the host's swap, KSM (`/sys/kernel/mm/ksm/`
/// and who drives it), balloon controller, and hugetlb pool
/// (`vm.nr_hugepages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub host_type: String,
    pub hosts: u32,
    pub ram_allocation_ratio: f64,
    /// `reserved` in MiB, as Nova counts it.
    pub reserved_host_memory_mb: u64,
    /// Spare hosts of this type the failure budget needs, and the memory
    /// placement leaves free on its hosts (limit − configured, summed).
    pub spare_hosts: u32,
    pub headroom_bytes: u64,
    /// `size on device`, or none.
    pub swap: Option<String>,
    /// None: KSM off.
    pub ksm: Option<KsmSettings>,
    /// The balloon controller (`none`, `mom`, `proxmox`) and its round.
    pub balloon: String,
    pub balloon_interval_s: f64,
    /// The most huge pages of the default size any host of the type
    /// reserves (0: none).
    pub nr_hugepages: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsmSettings {
    /// static (the knobs as set), ksmtuned, mom or advisor.
    pub policy: String,
    pub pages_to_scan: u32,
    pub sleep_millisecs: u32,
    pub use_zero_pages: bool,
    pub max_page_sharing: u32,
    /// The knobs a tuner ended at on the most loaded host of the type
    /// (`pages_to_scan`, `sleep_millisecs`).
    pub ended_at: Option<(u32, u32)>,
}

/// The questions in order: every placement with every mix.
pub fn questions(placements: &[String], mixes: &[Option<Mix>]) -> Vec<(String, Option<Mix>)> {
    placements.iter().flat_map(|p| mixes.iter().map(move |m| (p.clone(), *m))).collect()
}

/// Whether every host type can run `mix` (as `plan` asks of a scenario),
/// and which cannot and why.
pub fn supports(fleet: &Fleet, mix: Mix) -> Result<(), String> {
    let counts: Vec<u32> = fleet.guests.iter().map(|g| g.count.min(1)).collect();
    for (t, ht) in fleet.hosts.iter().enumerate() {
        let s = host_scenario(&Fleet { mix: None, ..fleet.clone() }, t, &counts)
            .map_err(|m| format!("host type {}: {m}", ht.name))?;
        crate::plan::capacity::supports(&s, mix).map_err(|m| format!("host type {}: {m}", ht.name))?;
    }
    Ok(())
}

/// FNV-1a of what decides the answers: the fleet file's text and that of
/// the scenarios it names (`texts`), the questions, and how hosts play.
pub fn fingerprint(texts: &[&str], questions: &[(String, Option<Mix>)], play: &Play) -> String {
    let mut h = Fnv::new();
    for t in texts {
        h.put(t.as_bytes());
    }
    for (p, m) in questions {
        h.put(p.as_bytes());
        h.put(mix_name(*m).as_bytes());
    }
    h.put(format!("{:?}", play.run.sample_rate).as_bytes());
    h.put(format!("{:?}", play.run.mode).as_bytes());
    h.put(play.run.calibration.as_deref().unwrap_or("").as_bytes());
    h.put(format!("{:?}", play.run.costs).as_bytes());
    h.hex()
}

/// Answer the questions of `shard` (all of them when `None`), in order.
pub fn answer(
    fleet: &Fleet,
    questions: &[(String, Option<Mix>)],
    shard: Option<(u32, u32)>,
    play: &Play,
) -> Result<Vec<Entry>, FleetError> {
    let mut out = Vec::new();
    for (i, (p, mix)) in questions.iter().enumerate() {
        if !in_shard(i, shard) {
            continue;
        }
        let one = Fleet { placement: p.clone(), mix: *mix, ..fleet.clone() };
        let mut answer = search::search(&one, play)?;
        if let Some(w) = stall_note(&one, &answer, play) {
            answer.note = Some(match answer.note.take() {
                Some(n) => format!("{n}; {w}"),
                None => w,
            });
        }
        out.push(Entry {
            placement: p.clone(),
            policies: mix_name(*mix).into(),
            settings: settings(&one, &answer),
            answer,
        });
    }
    Ok(out)
}

/// A line for an answer whose hosts were played at a rate where a
/// simulated swap-in stalls its guest past the bound sampled play is
/// checked to (`engine::stall_warning`, as `plan` says of its points): the
/// hosts so played and the coarsest of them.
fn stall_note(fleet: &Fleet, a: &Answer, play: &Play) -> Option<String> {
    let mut coarse = Vec::new();
    for h in &a.outcome.hosts {
        let Some(t) = fleet.hosts.iter().position(|ht| ht.name == h.host_type) else { continue };
        let counts: Vec<u32> = fleet.guests.iter().map(|g| h.guests.get(&g.name).copied().unwrap_or(0)).collect();
        if counts.iter().all(|&n| n == 0) {
            continue;
        }
        let Ok(s) = host_scenario(fleet, t, &counts) else { continue };
        let rate = host_rate(&s, play);
        if let Some(w) = crate::engine::stall_warning(&s, rate) {
            coarse.push((crate::engine::expected_swapin_ns(&s) / rate, h.index, w));
        }
    }
    let n = coarse.len();
    let (_, index, w) = coarse.into_iter().max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))?;
    let of = a.outcome.hosts.len();
    Some(if n == 1 {
        format!("host {index} of {of} was {w}")
    } else {
        format!("{n} of {of} hosts were sampled coarser than their swap-ins allow; the coarsest, host {index}, {w}")
    })
}

/// Each host type's settings in `a`.
fn settings(fleet: &Fleet, a: &Answer) -> Vec<Settings> {
    let open = fleet.hosts.iter().position(|h| h.count.is_none());
    fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(t, ht)| {
            let mine: Vec<_> = a.outcome.hosts.iter().filter(|h| h.host_type == ht.name).collect();
            // The most loaded host of the type: its tuner's knobs, and the
            // pool the hugepages mix sizes for its guests.
            let loaded = mine.iter().max_by_key(|h| (h.configured_bytes, std::cmp::Reverse(h.index)));
            let counts: Vec<u32> =
                fleet.guests.iter().map(|g| loaded.and_then(|h| h.guests.get(&g.name)).copied().unwrap_or(0)).collect();
            let host = host_scenario(fleet, t, &counts).map_or_else(|_| ht.host.clone(), |s| s.host);
            let ksm = host.ksm.run.then(|| KsmSettings {
                policy: host.ksm.tuner.name().to_string(),
                pages_to_scan: host.ksm.pages_to_scan,
                sleep_millisecs: host.ksm.sleep_millisecs,
                use_zero_pages: host.ksm.use_zero_pages,
                max_page_sharing: host.ksm.max_page_sharing,
                ended_at: loaded.and_then(|h| h.ksm_knobs),
            });
            Settings {
                host_type: ht.name.clone(),
                hosts: mine.len() as u32,
                ram_allocation_ratio: a.ratios[t],
                reserved_host_memory_mb: host.reserved.bytes() >> 20,
                spare_hosts: if Some(t) == open { a.spare } else { 0 },
                headroom_bytes: mine.iter().map(|h| h.limit_bytes.saturating_sub(h.configured_bytes)).sum(),
                swap: host.swap.as_ref().map(|s| format!("{} on {}", s.size, s.label())),
                ksm,
                balloon: host.balloon.policy.name().to_string(),
                balloon_interval_s: host.balloon.interval.as_secs_f64(),
                nr_hugepages: host.hugepages.count,
            }
        })
        .collect()
}

/// Join shards' answers into the whole: every shard of one run (same
/// fingerprint and shard count) exactly once.
pub fn merge(parts: Vec<FleetAnswers>) -> Result<FleetAnswers, String> {
    let first = parts.first().ok_or("nothing to merge")?.clone();
    let Some((_, n)) = first.shard else {
        return Err(format!("{} is a whole fleet answer, not a shard", first.file));
    };
    let mut seen = vec![false; n as usize];
    for p in &parts {
        let Some((i, pn)) = p.shard else {
            return Err("one of the folders holds a whole fleet answer, not a shard".into());
        };
        if p.fingerprint != first.fingerprint || pn != n {
            return Err(format!(
                "shard {i}/{pn} is from another fleet run (fingerprint {} against {}): shards must share the fleet \
                 file, --placements, --policies, --sample-rate, the play mode and the calibration",
                p.fingerprint, first.fingerprint
            ));
        }
        if std::mem::replace(&mut seen[i as usize - 1], true) {
            return Err(format!("shard {i}/{n} is given twice"));
        }
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| format!("{}/{n}", i + 1)).collect();
    if !missing.is_empty() {
        return Err(format!("shards missing: {}", missing.join(", ")));
    }
    let order = |e: &Entry| {
        (first.placements.iter().position(|p| *p == e.placement), first.policies.iter().position(|p| *p == e.policies))
    };
    let mut answers: Vec<Entry> = parts.into_iter().flat_map(|p| p.answers).collect();
    answers.sort_by_key(order);
    Ok(FleetAnswers { shard: None, answers, ..first })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunConfig;
    use crate::fleet::evaluate::tests::{SMALL, fleet};

    #[test]
    fn an_answer_says_when_its_hosts_were_sampled_coarser_than_their_swap_ins_allow() {
        // Guests that swap on a disk: the engine expects a swap-in to take
        // 12.7 ms there (`engine::expected_swapin_ns`: the HDD preset's
        // read with its queue), so at 1/64 a simulated one stalls its guest
        // 813 ms, past the 64 ms to which sampled play is checked
        // (`engine::MAX_SAMPLED_STALL_NS`), and at 1/4 51 ms, within it.
        let text = SMALL
            .replace("reserved: 0 }", "reserved: 0, swap: { size: 4G, device: hdd } }")
            .replace("working_set: 256M", "working_set: 900M");
        let f = fleet(&text);
        let asked = questions(&["first-fit".to_string()], &[None]);
        let at = |rate: f64| {
            let play = Play { jobs: 2, run: RunConfig { sample_rate: Some(rate), ..Default::default() } };
            answer(&f, &asked, None, &play).unwrap().remove(0).answer
        };
        let coarse = at(1.0 / 64.0);
        let note = coarse.note.as_deref().unwrap_or("");
        assert!(note.contains("of 3 hosts were sampled coarser"), "{note}");
        assert!(note.contains("sampled at 1/64") && note.contains("stall its guest 813 ms"), "{note}");
        assert_eq!(at(1.0 / 4.0).note, None);
    }

    #[test]
    fn each_answer_carries_the_settings_an_operator_writes() {
        // Three 4 GiB hosts (512 MiB reserved, an SSD swap) and five 1 GiB
        // guests at a given ratio of 1: first fit puts three on the first
        // host (3 GiB of 3.5) and two on the second. Nova counts
        // reserved_host_memory_mb in MiB (nova.conf); under the hugepages
        // mix every guest is on hugetlbfs with a pool sized for the guests
        // placed (`plan`'s rule), so the fullest host reserves 3 GiB in
        // 2 MiB pages, 1 536; under swap+balloon+ksm a host that never ran
        // KSM gets the kernel's scan-time advisor and MoM's balloons, as a
        // plan's point does.
        let text = SMALL
            .replace("reserved: 0 }", "reserved: 512M, swap: { size: 4G, device: ssd } }")
            .replace("    count: 3\n", "    count: 3\n    ram_allocation_ratio: 1\n");
        let f = fleet(&text);
        let play = Play { jobs: 2, ..Default::default() };
        let asked = questions(&["first-fit".to_string()], &[Some(Mix::Hugepages), Some(Mix::SwapBalloonKsm)]);
        let entries = answer(&f, &asked, None, &play).unwrap();
        let per_host: Vec<u32> = entries[0].answer.outcome.hosts.iter().map(|h| h.guests.values().sum()).collect();
        assert_eq!(per_host, [3, 2, 0]);
        let huge = &entries[0].settings[0];
        assert_eq!((huge.hosts, huge.ram_allocation_ratio, huge.reserved_host_memory_mb), (3, 1.0, 512));
        assert_eq!((huge.nr_hugepages, huge.swap.as_deref(), huge.ksm.is_none()), (1536, None, true));
        // Room left for restarts: 3.5 GiB × 3 less the 5 GiB placed.
        assert_eq!(huge.headroom_bytes, (3 * 3584 - 5 * 1024) << 20);
        let mixed = &entries[1].settings[0];
        assert_eq!(mixed.ksm.as_ref().map(|k| k.policy.as_str()), Some("advisor"));
        assert_eq!((mixed.balloon.as_str(), mixed.balloon_interval_s), ("mom", 10.0));
        assert_eq!((mixed.swap.as_deref(), mixed.nr_hugepages), (Some("4 GiB on ssd"), 0));
        assert_eq!(entries[1].label(), "first-fit, swap+balloon+ksm");
        assert_eq!(entries[1].slug(), "first-fit-swap+balloon+ksm");
    }
}
