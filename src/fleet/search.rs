//! How many hosts a fleet needs: the highest allocation ratio at which
//! every host meets the objectives, then the spare hosts its failure
//! budget asks for.
//!
//! Host types given a `ram_allocation_ratio` keep it; the others share one
//! ratio, searched on the steps at which one more of the smallest guest
//! fits the first of them (`k × smallest / (ram − reserved)`): galloping
//! up from the largest guest alone, then bisecting between the last step
//! that passed and the first that failed, as `plan` searches a count.
//! Placement packs each host to the ratio's limit and opens hosts of the
//! first type without a count as guests need them, so the hosts needed
//! are those the passing ratio opens. With `survive: N`, spare hosts of
//! that type are added, one at a time, until losing the N most loaded and
//! restarting their guests on the rest leaves every guest placed and
//! every host meeting the objectives; where spares cannot do it (a policy
//! that sends the restarted guests to the hosts already holding their
//! image fills those whatever the spares), a lower ratio is tried, and the
//! answer is the fewest hosts in all. Passing is assumed monotone in the
//! ratio, as `plan` assumes it in density. When every host type is
//! counted, no host can be added and the question turns to the guests the
//! hosts admit: guests without room are left out rather than failing the
//! fleet, and the highest passing ratio admits the most. Host runs are
//! kept across the search: a host holding what an earlier one held is not
//! played again.

use serde::{Deserialize, Serialize};

use super::evaluate::{FleetError, Outcome, Play, Runs, evaluate_with};
use super::file::Fleet;

/// The answer for one placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Each host type's `ram_allocation_ratio` (given or found).
    pub ratios: Vec<f64>,
    /// The ratio searched for the types without one (`None`: none was, or
    /// no ratio passes).
    pub searched: Option<f64>,
    /// Spare hosts added for the failure budget.
    pub spare: u32,
    /// Hosts in all, per type.
    pub hosts: Vec<u32>,
    /// The fleet at that ratio with its spares, played (and its loss).
    pub outcome: Outcome,
    /// Why there is no passing answer, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none: Option<String>,
    /// What the reader should know about the answer (a ratio that does
    /// not bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Fleet evaluations played by the search.
    pub evaluations: usize,
}

/// Spare hosts tried at each ratio before a lower ratio is tried.
const SPARES_PER_RATIO: u32 = 8;

/// Steps the gallop takes at most (the ratio doubles each time).
const MAX_GALLOP: u32 = 16;

pub fn search(fleet: &Fleet, play: &Play) -> Result<Answer, FleetError> {
    let open: Vec<usize> = (0..fleet.hosts.len()).filter(|&t| fleet.hosts[t].ratio.is_none()).collect();
    let mut evaluations = 0usize;
    let mut runs = Runs::new();
    // Host runs depend only on what a host holds, so they are kept across
    // fleets that differ in how many guests of each type they ask for.
    let mut eval = |f: &Fleet, ratios: &[f64], open_count: Option<u32>| -> Result<Outcome, FleetError> {
        evaluations += 1;
        evaluate_with(f, ratios, open_count, play, &mut runs)
    };
    let given = |r: f64| -> Vec<f64> { fleet.hosts.iter().map(|h| h.ratio.unwrap_or(r)).collect() };
    // Every host counted: the question is the guests they admit (those
    // placed), not the hosts the guests need.
    let admitting = fleet.hosts.iter().all(|h| h.count.is_some());
    let Some(&t) = open.first() else {
        // Every ratio given: the fleet as it stands.
        let ratios = given(1.0);
        let outcome = eval(fleet, &ratios, None)?;
        let none = (!outcome.survives_as(admitting))
            .then(|| "the fleet misses the objectives at the ratios given".to_string());
        return Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios,
            searched: None,
            spare: 0,
            outcome,
            none,
            evaluations,
            note: None,
        });
    };
    let host = &fleet.hosts[t].host;
    let usable = host.ram.bytes().saturating_sub(host.reserved.bytes()) as f64;
    let smallest = fleet.guests.iter().map(|g| g.memory.bytes()).min().unwrap_or(1).max(1) as f64;
    let largest = fleet.guests.iter().map(|g| g.memory.bytes()).max().unwrap_or(1) as f64;
    let at = |k: u64| k as f64 * smallest / usable;
    // The least step that holds the largest guest.
    let k_min = (largest / smallest).ceil().max(1.0) as u64;
    // From ratio 1 (or the least step): up while passing, doubling; or,
    // when it fails, down by halves to the least step (a policy that
    // spreads can leave guests without room at low ratios, so passing need
    // not start from the least step).
    let k0 = (usable / smallest).floor().max(k_min as f64) as u64;
    let (mut good, mut bad) = (None, None);
    let mut note = None;
    let first = eval(fleet, &given(at(k0)), None)?;
    if first.meets(admitting) {
        good = Some(k0);
        let mut before = placed(&first);
        let mut roomy = has_room(fleet, &first, largest);
        let mut k = k0 * 2;
        for _ in 0..MAX_GALLOP {
            let o = eval(fleet, &given(at(k)), None)?;
            if !o.meets(admitting) {
                bad = Some(k);
                break;
            }
            let now = placed(&o);
            if now == before && roomy {
                // Every host still had room for the largest guest at half
                // this ratio, so no host ever turned a guest away and the
                // policy chose by its own rule alone; and the hosts are
                // the same at this ratio: every higher ratio places the
                // guests so too (spreading over counted hosts, say, or
                // every guest on one host), and "the highest that passes"
                // would be a bound of the gallop's, not of the fleet's.
                // The ratio to set is the least step that still admits
                // this placement (what its fullest host holds), when it
                // does.
                let k_used = (used_ratio(fleet, &o) * usable / smallest - 1e-9).ceil().max(k_min as f64) as u64;
                good = Some(k / 2);
                if k_used < k / 2 {
                    let at_used = eval(fleet, &given(at(k_used)), None)?;
                    if at_used.meets(admitting) && placed(&at_used) == now {
                        good = Some(k_used);
                    }
                }
                note = Some(format!(
                    "the ratio does not bind: the placement leaves every host below its limit, so {:.3} (what the \
                     fullest host holds) is the least ratio that places these guests so, and any higher one places \
                     them the same; set the ratio for the demand to come",
                    at(good.unwrap_or(k / 2))
                ));
                break;
            }
            good = Some(k);
            before = now;
            roomy = has_room(fleet, &o, largest);
            k *= 2;
        }
    } else {
        bad = Some(k0);
        let mut k = k0;
        while k > k_min {
            k = (k / 2).max(k_min);
            if eval(fleet, &given(at(k)), None)?.meets(admitting) {
                good = Some(k);
                break;
            }
            bad = Some(k);
        }
    }
    let Some(mut good) = good else {
        let outcome = eval(fleet, &given(at(k_min)), None)?;
        return Ok(Answer {
            ratios: given(at(k_min)),
            searched: None,
            spare: 0,
            hosts: per_type(fleet, &outcome),
            outcome,
            none: Some(format!(
                "no allocation ratio from {:.3} down to {:.3} (the largest guest alone) meets the objectives",
                at(k0),
                at(k_min)
            )),
            evaluations,
            note: None,
        });
    };
    if let Some(mut hi) = bad {
        while hi - good > 1 {
            let mid = good + (hi - good) / 2;
            if eval(fleet, &given(at(mid)), None)?.meets(admitting) {
                good = mid;
            } else {
                hi = mid;
            }
        }
    }
    let outcome = eval(fleet, &given(at(good)), None)?;
    if fleet.survive == 0 || outcome.survives_as(admitting) {
        return Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios: given(at(good)),
            searched: Some(at(good)),
            spare: 0,
            outcome,
            none: None,
            evaluations,
            note: note.clone(),
        });
    }
    if admitting {
        // No host can be added, and hosts filled to the limit leave no
        // room for a lost host's guests: the answer is the most guests
        // (each type in its share of the demand) the hosts admit with room
        // to restart them, bisected between none and those admitted.
        let (mut lo, mut hi) = (0u32, outcome.admitted());
        let mut best = None;
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let o = eval(&share_of(fleet, mid), &given(at(good)), None)?;
            if o.unplaced.is_empty() && o.survives_as(true) {
                lo = mid;
                best = Some(o);
            } else {
                hi = mid - 1;
            }
        }
        let asked: u32 = fleet.guests.iter().map(|g| g.count).sum();
        return Ok(match best {
            Some(o) => Answer {
                hosts: per_type(fleet, &o),
                ratios: given(at(good)),
                searched: Some(at(good)),
                spare: 0,
                none: None,
                evaluations,
                note: Some(format!(
                    "the hosts given admit {lo} of the {asked} guests with room to restart the guests of {} lost \
                     host(s); filled to the limit ({} guests), a loss leaves its guests nowhere to go",
                    fleet.survive,
                    outcome.admitted()
                )),
                outcome: o,
            },
            None => Answer {
                hosts: per_type(fleet, &outcome),
                ratios: given(at(good)),
                searched: Some(at(good)),
                spare: 0,
                none: Some(format!(
                    "no share of the guests leaves the hosts given room to restart those of {} lost host(s)",
                    fleet.survive
                )),
                evaluations,
                note: None,
                outcome,
            },
        });
    }
    // The failure budget: at each ratio from the highest passing down, the
    // fewest spare hosts (up to a few) that survive the loss; the answer
    // is the fewest hosts in all (the higher ratio among equals). A lower
    // ratio needs at least as many hosts before spares, so the search
    // stops once that alone reaches the best found.
    let mut best: Option<(u32, u64, u32, Outcome)> = None;
    let mut k = good;
    while k >= k_min {
        let base = eval(fleet, &given(at(k)), None)?;
        let needed = per_type(fleet, &base)[t];
        let total_before = base.hosts.len() as u32;
        if best.as_ref().is_some_and(|b| total_before >= b.0) {
            break;
        }
        for spare in 0..=SPARES_PER_RATIO {
            let o = if spare == 0 { base.clone() } else { eval(fleet, &given(at(k)), Some(needed + spare))? };
            if o.survives_as(admitting) {
                let total = o.hosts.len() as u32;
                if best.as_ref().is_none_or(|b| total < b.0) {
                    best = Some((total, k, spare, o));
                }
                break;
            }
        }
        k -= 1;
    }
    match best {
        Some((_, k, spare, outcome)) => Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios: given(at(k)),
            searched: Some(at(k)),
            spare,
            outcome,
            none: None,
            evaluations,
            note: note.clone(),
        }),
        None => Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios: given(at(good)),
            searched: Some(at(good)),
            spare: 0,
            outcome,
            none: Some(format!(
                "no ratio with up to {SPARES_PER_RATIO} spare hosts survives losing {} host(s): restarted guests find no room or push hosts past the objectives",
                fleet.survive
            )),
            evaluations,
            note: note.clone(),
        }),
    }
}

/// `fleet` asking for `k` guests in all, each type its share of the
/// demand (largest remainders first, then the first listed).
fn share_of(fleet: &Fleet, k: u32) -> Fleet {
    let asked: u64 = fleet.guests.iter().map(|g| u64::from(g.count)).sum();
    let mut f = fleet.clone();
    if asked == 0 {
        return f;
    }
    let exact: Vec<u64> = fleet.guests.iter().map(|g| u64::from(g.count) * u64::from(k)).collect();
    for (g, e) in f.guests.iter_mut().zip(&exact) {
        g.count = (e / asked) as u32;
    }
    let given: u32 = f.guests.iter().map(|g| g.count).sum();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(exact[i] % asked));
    for &i in order.iter().take((k - given) as usize) {
        f.guests[i].count += 1;
    }
    f
}

/// Where the guests went: each host's guests, in host order.
fn placed(o: &Outcome) -> Vec<std::collections::BTreeMap<String, u32>> {
    o.hosts.iter().map(|h| h.guests.clone()).collect()
}

/// Whether every host of a searched type has room left for `largest`
/// bytes of configured memory.
fn has_room(fleet: &Fleet, o: &Outcome, largest: f64) -> bool {
    o.hosts
        .iter()
        .filter(|h| fleet.hosts.iter().any(|ht| ht.name == h.host_type && ht.ratio.is_none()))
        .all(|h| h.configured_bytes as f64 + largest <= h.limit_bytes as f64)
}

/// The highest share of its usable RAM any host of a searched type (one
/// without a ratio of its own) holds in configured memory.
fn used_ratio(fleet: &Fleet, o: &Outcome) -> f64 {
    o.hosts
        .iter()
        .filter(|h| fleet.hosts.iter().any(|ht| ht.name == h.host_type && ht.ratio.is_none()))
        .map(|h| {
            let ht = fleet.hosts.iter().find(|ht| ht.name == h.host_type).expect("a host of a listed type");
            h.configured_bytes as f64 / ht.host.ram.bytes().saturating_sub(ht.host.reserved.bytes()).max(1) as f64
        })
        .fold(0.0, f64::max)
}

/// Hosts of each type in an outcome.
fn per_type(fleet: &Fleet, o: &Outcome) -> Vec<u32> {
    fleet.hosts.iter().map(|ht| o.hosts.iter().filter(|h| h.host_type == ht.name).count() as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::evaluate::tests::{SMALL, fleet};

    #[test]
    fn a_ratio_that_does_not_bind_is_the_least_that_places_the_same() {
        // Three counted 4 GiB hosts and five 1 GiB guests spread by Nova's
        // weigher: 2, 2 and 1 guests whatever the ratio from 1 up, so no
        // ratio binds. The answer is the least step (k × 1 GiB / 4 GiB)
        // that still admits 2 GiB on a host: k = 2, ratio 0.5, with the
        // note saying so. First fit at these hosts holds four guests on
        // the first at ratio 1, and all five from ratio 2 (5 GiB of 8,
        // room for another): its least such ratio is 5 / 4 = 1.25.
        let text = format!("{SMALL}placement: spread\n");
        let f = fleet(&text);
        let a = search(&f, &Play { jobs: 2, ..Default::default() }).unwrap();
        assert_eq!(a.searched, Some(0.5));
        assert!(a.note.as_deref().is_some_and(|n| n.contains("does not bind")), "{:?}", a.note);
        let per_host: Vec<u32> = a.outcome.hosts.iter().map(|h| h.guests.values().sum()).collect();
        assert_eq!(per_host, [2, 2, 1]);
        let f = fleet(&text.replace("spread", "first-fit"));
        let a = search(&f, &Play { jobs: 2, ..Default::default() }).unwrap();
        assert_eq!(a.searched, Some(1.25));
        let per_host: Vec<u32> = a.outcome.hosts.iter().map(|h| h.guests.values().sum()).collect();
        assert_eq!(per_host, [5, 0, 0]);
    }
}
