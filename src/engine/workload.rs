//! Workloads: a guest's touch stream (sampler, rate, write share,
//! address translation costs) from its group's base and phases, and the
//! number of touches a slice draws from it.

use std::sync::Arc;

use rand::RngExt;

use super::Engine;
use super::observe::EventKind;
use super::queue::SimTime;
use crate::latency::{self, TranslationInput};
use crate::model::Backing;
use crate::model::page::mix64;
use crate::model::workload::{Sampler, TouchCount};

impl Engine<'_> {
    pub(super) fn phase(&mut self, group: usize, index: usize, now: SimTime) {
        let ph = &self.scenario.guests[group].workload.phases[index];
        for g in 0..self.mem.guests.len() {
            if self.mem.guests[g].group == group && self.mem.guests[g].is_alive() {
                let old_ws = self.ws_sim_pages(g);
                self.apply_workload(g, Some(index));
                let new_ws = self.ws_sim_pages(g);
                if new_ws < old_ws {
                    // The guest freed what its working set left: those
                    // pages head its free lists (LIFO), and with free page
                    // reporting go back to the host.
                    self.mem.guests[g].freed.push((new_ws, old_ws));
                    self.schedule_report(g, now);
                } else if new_ws > old_ws {
                    // It takes the pages back for its working set.
                    let freed = &mut self.mem.guests[g].freed;
                    for f in freed.iter_mut() {
                        f.0 = f.0.max(new_ws.min(f.1));
                    }
                    freed.retain(|f| f.0 < f.1);
                    self.balloon_out_of_working_set(g);
                }
                if let Some(cur) = ph.current_memory {
                    self.set_balloon_target(g, cur.bytes(), now, "virsh setmem");
                }
                let mut parts = Vec::new();
                if let Some(c) = ph.current_memory {
                    parts.push(format!("current memory {c:.1}"));
                }
                if let Some(ws) = ph.working_set {
                    parts.push(format!("working set {ws:.1}"));
                }
                if let Some(r) = ph.touch_rate {
                    parts.push(format!("touch rate {r}"));
                }
                if let Some(p) = ph.pattern {
                    parts.push(format!("pattern {p}"));
                }
                if let Some(w) = ph.write {
                    parts.push(format!("writes {w}"));
                }
                self.push_event(now, EventKind::PhaseChange, g, parts.join(", "));
            }
        }
    }

    /// Set guest `g`'s workload to its group's base, with phases up to and
    /// including `upto` applied.
    pub(super) fn apply_workload(&mut self, g: usize, upto: Option<usize>) {
        // Hits played at the old TLB miss ratios are drawn at them.
        self.draw_deferred_misses(g);
        let group = &self.scenario.guests[self.mem.guests[g].group];
        let w = &group.workload;
        let (mut ws, mut rate, mut pattern, mut write) = (w.working_set, w.touch_rate, w.pattern, w.write);
        if let Some(upto) = upto {
            for ph in &w.phases[..=upto] {
                ws = ph.working_set.unwrap_or(ws);
                rate = ph.touch_rate.unwrap_or(rate);
                pattern = ph.pattern.unwrap_or(pattern);
                write = ph.write.unwrap_or(write);
            }
        }
        if let Some(cap) = self.runners[g].ws_cap {
            // A guest OOM killed part of the workload: what is left fits.
            ws = crate::units::ByteSize(ws.bytes().min(cap));
        }
        self.runners[g].ws_bytes = ws.bytes().min(group.memory.bytes());
        let guest = &self.mem.guests[g];
        let ws_pages = ws.pages(4096).min(group.memory.pages(4096));
        let (sampler, share) = self
            .samplers
            .entry((guest.group, upto, ws_pages))
            .or_insert_with(|| {
                // Zipf's weights, one per page of the guest (or its
                // sample), kept for the working sets still to come: a
                // phase or a cut by the guest's OOM killer changes only
                // how many are drawn from.
                let weights = match pattern {
                    // (Page-exact guests past 16 GiB build theirs each time
                    // rather than keep 8 bytes a page more.)
                    crate::scenario::Pattern::Zipf { s } if !guest.real.is_empty() || guest.real_pages <= 1 << 22 => {
                        Some(Arc::clone(self.zipf_weights.entry((s.to_bits(), guest.group)).or_insert_with(|| {
                            Arc::new(if guest.real.is_empty() {
                                (1..=guest.real_pages).map(|i| (i as f64).powf(-s)).collect()
                            } else {
                                guest.real.iter().map(|&p| ((p + 1) as f64).powf(-s)).collect()
                            })
                        })))
                    }
                    _ => None,
                };
                let (s, share) = if guest.real.is_empty() {
                    (Sampler::exact_with(&pattern, ws_pages, weights.as_deref().map(Vec::as_slice)), 1.0)
                } else {
                    let k = guest.real.partition_point(|&p| p < ws_pages);
                    Sampler::sampled_with(&pattern, &guest.real[..k], ws_pages, weights.as_deref().map(Vec::as_slice))
                };
                (Arc::new(s), share)
            })
            .clone();
        let shares = if guest.thp_sampled {
            let regions = guest.region_touched.len();
            let region_pages = guest.region_pages;
            let key = (guest.group, upto, ws_pages);
            let v = self
                .region_shares
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(crate::model::workload::region_shares(
                        &pattern,
                        &guest.real,
                        ws_pages,
                        regions,
                        region_pages,
                    ))
                })
                .clone();
            Some(v)
        } else {
            None
        };
        let host_huge = match guest.main_backing() {
            Backing::Small { .. } => 2 << 20,
            Backing::Hugetlb { page_bytes } => page_bytes,
        };
        let cpu = &self.scenario.host.cpu;
        let input = |host_page: u64| TranslationInput {
            cpu,
            pattern: &pattern,
            working_set_bytes: ws.bytes(),
            guest_page: w.guest_page_size,
            host_page,
            touch_rate: rate.per_sec(),
            pagetable_updates: w.pagetable_updates.per_sec(),
            vm_exits: w.vm_exits.per_sec(),
            tpr_accesses: w.tpr_accesses.per_sec(),
        };
        let key = (self.mem.guests[g].group, upto, ws_pages);
        let costs = &self.cfg.costs;
        let (small, huge) = *self.translations.entry(key).or_insert_with(|| {
            (latency::translation(costs, &input(4096)), latency::translation(costs, &input(host_huge)))
        });
        if let Some(v) = shares {
            // A region's first real touch may land on a page that is not
            // simulated: each touch does so with the region's unsampled
            // share, so the number of touches until it happens is
            // exponential with mean 1/share. Counting in the guest's own
            // touches (not time) follows its real pace, stalls included.
            // The draw is the seed's too: without it every seed drew the
            // same times from the start, and a mean over seeds kept that
            // one draw's error (guests 0 to 3 of a 2 560-region fill took
            // their first THPs 1.9% behind the law).
            let guest = &self.mem.guests[g];
            let done = self.runners[g].touches_real;
            let salt = mix64(self.seed ^ 0xF157_70C4);
            let mut ft: Vec<(f64, u32)> = v
                .unsampled
                .iter()
                .enumerate()
                .filter(|&(r, &share)| share > 0.0 && guest.region_touched[r] == 0)
                .map(|(r, &share)| {
                    let h = mix64(((g as u64) << 32) ^ r as u64 ^ done.to_bits() ^ salt);
                    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                    (done - u.ln() / f64::from(share), r as u32)
                })
                .collect();
            ft.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
            self.runners[g].first_touches = ft;
            self.mem.guests[g].region_shares = v;
        }
        if self.event_mode {
            self.track_events(g, &pattern, ws_pages, write.get());
        }
        let r = &mut self.runners[g];
        r.sampler = sampler;
        r.share = share;
        r.rate = rate.per_sec();
        r.lambda = r.rate * share * self.slice_ns as f64 / 1e9;
        r.touch_count = TouchCount::new(r.lambda);
        r.p_empty = (-r.lambda).exp();
        r.inv_lambda = 1.0 / r.lambda;
        r.write_threshold = (write.get() * 4_294_967_295.0).round() as u32;
        r.small = small;
        r.huge = huge;
    }

    /// The phase guest `g`'s group is in at `now`.
    pub(super) fn last_phase(&self, g: usize, now: SimTime) -> Option<usize> {
        let w = &self.scenario.guests[self.mem.guests[g].group].workload;
        w.phases.iter().rposition(|ph| ph.at.nanos() <= now)
    }

    /// Event mode: guest `g`'s touch shares are now `pattern` over its
    /// first `ws` pages. A page's accessed bit is settled under the old
    /// shares first (drawn from the pressure so far), so the new shares
    /// count from now.
    fn track_events(&mut self, g: usize, pattern: &crate::scenario::Pattern, ws: u64, write: f64) {
        use crate::model::eventset::{EventTrack, ONE, TouchShares, units};
        use crate::scenario::Pattern;
        // ksmd looks at pages too (it is set up after the workloads).
        let ksm = self.scenario.host.ksm.run;
        // Shares are the real pages' (of all of the guest's real touches);
        // sampled, the pages tracked are the simulated ones, at their real
        // pages' shares, and a run of real pages is the run of simulated
        // pages among them.
        let guest = &self.mem.guests[g];
        let n = guest.pages.len();
        let ws = ws.min(guest.real_pages);
        let sim_of = |rp: u64| -> usize {
            if guest.real.is_empty() { (rp as usize).min(n) } else { guest.real.partition_point(|&p| p < rp) }
        };
        // Shares up to a factor (the track's scale): a uniform page's is
        // one page of the guest's memory's, a Zipf page's its weight
        // (k + 1)^(−s); a working set cut or grown then changes only the
        // pages that leave or enter it.
        let limit = sim_of(ws);
        let (p, scale) = match *pattern {
            _ if ws == 0 => (TouchShares::Runs(Vec::new()), 1.0),
            Pattern::Uniform => {
                let b = (ONE / guest.real_pages.max(1)).max(1);
                (TouchShares::Runs(vec![(limit, b)]), ONE as f64 / ws as f64 / b as f64)
            }
            Pattern::HotCold { hot_fraction, hot_probability } => {
                let hot = ((ws as f64 * hot_fraction).round() as u64).clamp(1, ws);
                let mut runs = vec![(sim_of(hot), units(hot_probability / hot as f64))];
                if ws > hot {
                    runs.push((limit, units((1.0 - hot_probability) / (ws - hot) as f64)));
                }
                (TouchShares::Runs(runs), 1.0)
            }
            Pattern::Zipf { s } => {
                let sample = if guest.real.is_empty() { usize::MAX } else { guest.group };
                let real = &guest.real;
                let table = self.zipf_shares.entry((s.to_bits(), n, sample)).or_insert_with(|| {
                    let rank = |i: usize| if real.is_empty() { i as u64 } else { real[i] };
                    Arc::new((0..n).map(|i| units(((rank(i) + 1) as f64).powf(-s))).collect())
                });
                (TouchShares::Table(Arc::clone(table), limit), 1.0 / crate::latency::che::zipf_sum(s, 1, ws))
            }
        };
        let guest = &mut self.mem.guests[g];
        if let Some(e) = guest.events.as_deref_mut()
            && e.rescales_to(&p, write)
            && e.rescale(limit, scale, &mut guest.pages)
        {
            return;
        }
        let salt = mix64(self.seed ^ ((g as u64) << 40) ^ 0xE7E7);
        let shared = Arc::clone(&self.shared);
        let mut track = EventTrack::with_shared(p, &guest.pages, write, ksm, salt, g as u32, shared);
        track.set_scale(scale);
        if let Some(old) = guest.events.take() {
            // What the hits did under the old workload goes on counting
            // under the new one.
            old.carry_into(&mut track, &mut guest.pages);
        }
        guest.events = Some(Box::new(track));
    }

    /// How many touches guest `g`'s slice holds: a Poisson draw, or a
    /// zero-truncated one when the slice ends a run of skipped empty ones.
    pub(super) fn draw_touches(&mut self, g: usize) -> u64 {
        let r = &mut self.runners[g];
        let lambda = r.lambda;
        let Some(count) = &r.touch_count else { return 0 };
        if !std::mem::take(&mut r.nonempty_next) {
            return count.draw(&mut self.rng);
        }
        if lambda > 10.0 {
            // P(0) < 5e-5: rejection hardly ever draws twice.
            loop {
                let n = count.draw(&mut self.rng);
                if n > 0 {
                    return n;
                }
            }
        }
        // Inversion: P(k | k >= 1) = e^(-λ) λ^k / k! / (1 - e^(-λ)).
        let p0 = r.p_empty;
        let u = self.rng.random::<f64>() * (1.0 - p0);
        let (mut k, mut term) = (1u64, p0 * lambda);
        let mut cum = term;
        while u >= cum && k < 1_000 {
            k += 1;
            term *= lambda / k as f64;
            cum += term;
        }
        k
    }
}
