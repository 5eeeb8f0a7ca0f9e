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
//! ratio, as `plan` assumes it in density. Host runs are kept across the
//! search: a host holding what an earlier one held is not played again.

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
    let mut eval = |ratios: &[f64], open_count: Option<u32>| -> Result<Outcome, FleetError> {
        evaluations += 1;
        evaluate_with(fleet, ratios, open_count, play, &mut runs)
    };
    let given = |r: f64| -> Vec<f64> { fleet.hosts.iter().map(|h| h.ratio.unwrap_or(r)).collect() };
    let Some(&t) = open.first() else {
        // Every ratio given: the fleet as it stands.
        let ratios = given(1.0);
        let outcome = eval(&ratios, None)?;
        let none = (!outcome.survives()).then(|| "the fleet misses the objectives at the ratios given".to_string());
        return Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios,
            searched: None,
            spare: 0,
            outcome,
            none,
            evaluations,
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
    if eval(&given(at(k0)), None)?.passes() {
        good = Some(k0);
        let mut k = k0 * 2;
        for _ in 0..MAX_GALLOP {
            if eval(&given(at(k)), None)?.passes() {
                good = Some(k);
                k *= 2;
            } else {
                bad = Some(k);
                break;
            }
        }
    } else {
        bad = Some(k0);
        let mut k = k0;
        while k > k_min {
            k = (k / 2).max(k_min);
            if eval(&given(at(k)), None)?.passes() {
                good = Some(k);
                break;
            }
            bad = Some(k);
        }
    }
    let Some(mut good) = good else {
        let outcome = eval(&given(at(k_min)), None)?;
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
        });
    };
    if let Some(mut hi) = bad {
        while hi - good > 1 {
            let mid = good + (hi - good) / 2;
            if eval(&given(at(mid)), None)?.passes() {
                good = mid;
            } else {
                hi = mid;
            }
        }
    }
    let outcome = eval(&given(at(good)), None)?;
    if fleet.survive == 0 || outcome.survives() {
        return Ok(Answer {
            hosts: per_type(fleet, &outcome),
            ratios: given(at(good)),
            searched: Some(at(good)),
            spare: 0,
            outcome,
            none: None,
            evaluations,
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
        let base = eval(&given(at(k)), None)?;
        let needed = per_type(fleet, &base)[t];
        let total_before = base.hosts.len() as u32;
        if best.as_ref().is_some_and(|b| total_before >= b.0) {
            break;
        }
        for spare in 0..=SPARES_PER_RATIO {
            let o = if spare == 0 { base.clone() } else { eval(&given(at(k)), Some(needed + spare))? };
            if o.survives() {
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
        }),
    }
}

/// Hosts of each type in an outcome.
fn per_type(fleet: &Fleet, o: &Outcome) -> Vec<u32> {
    fleet.hosts.iter().map(|ht| o.hosts.iter().filter(|h| h.host_type == ht.name).count() as u32).collect()
}
