//! KSM: ksmd's wake-ups, ksmtuned or MoM setting its knobs, and
//! copy-on-write storms.

use super::observe::{Event, EventKind};
use super::queue::SimTime;
use super::state::Ev;
use super::{Engine, RunError};
use crate::policy::ksmtune::HostView;

impl Engine<'_> {
    /// ksmd's wake-up: scan, charge its CPU time, sleep `sleep_millisecs`.
    /// ksmd sleeps after its batch (ksm_scan_thread), so a wake-up period is
    /// the batch's CPU time plus the sleep, which is `sleep_millisecs`
    /// rounded up to jiffies and the wake-up's own delay
    /// ([`crate::latency::Costs::ksm_sleep_ns`]).
    pub(super) fn ksmd(&mut self, now: SimTime) -> Result<(), RunError> {
        let Some(k) = self.ksm.as_mut() else { return Ok(()) };
        if !k.knobs.run {
            // Stopped (run = 0): merged pages stay, nothing is scanned.
            let sleep = u64::from(k.knobs.sleep_millisecs).max(1) * 1_000_000;
            self.queue.schedule(now + sleep, Ev::Ksmd)?;
            return Ok(());
        }
        let pages = f64::from(k.knobs.pages_to_scan) * self.rate;
        let wake = k.wake(&mut self.mem, &self.mergeable, pages);
        let cpu = self.scale
            * self.cfg.costs.ksm_pages_ns(
                (wake.scanned - wake.kept) as f64,
                wake.kept as f64,
                wake.stable_levels,
                wake.unstable_levels,
                wake.merged as f64,
            )
            + self.scale * wake.skipped as f64 * self.cfg.costs.ksm_skipped_page_ns;
        self.ksmd_cpu_ns += cpu;
        let saved = k.counters.pages_sharing + k.counters.zero_pages;
        self.ksm_saved_peak = self.ksm_saved_peak.max(saved);
        // sleep_millisecs in whole jiffies, and the wake-up after them.
        let sleep = self.cfg.costs.ksm_sleep_ns(k.knobs.sleep_millisecs).round() as u64;
        if wake.merged > 0 {
            for (g, r) in self.runners.iter_mut().enumerate() {
                r.shared_peak = r.shared_peak.max(self.mem.guests[g].merged);
            }
            self.mem.note_usage();
        }
        let next = now + cpu.round() as u64 + sleep.max(1);
        if wake.full_scan_done {
            let (began, cpu_then) = self.scan_began;
            let scan_ms = (next - began) / 1_000_000;
            let cpu_ms = ((self.ksmd_cpu_ns - cpu_then) / 1e6) as u64;
            self.scan_began = (next, self.ksmd_cpu_ns);
            if let Some(k) = self.ksm.as_mut()
                && let Some(t) = self.tuner.as_mut()
                && let Some(why) = t.after_full_scan(&mut k.knobs, scan_ms, cpu_ms)
            {
                self.pending.push(Event { t_ns: now, kind: EventKind::KsmChange, guest: String::new(), detail: why });
            }
        }
        self.queue.schedule(next, Ev::Ksmd)?;
        Ok(())
    }

    /// ksmtuned or MoM looks at the host and sets KSM's knobs.
    pub(super) fn ksm_look(&mut self, now: SimTime) {
        let s = self.scenario;
        let alive = |g: &&crate::model::Guest| g.is_alive();
        let rss: u64 = self.mem.guests.iter().filter(alive).map(|g| g.resident + g.huge + g.merged).sum();
        let vsz: u64 = self.mem.guests.iter().filter(alive).map(|g| s.guests[g.group].memory.bytes()).sum();
        let view = HostView {
            total_bytes: s.host.ram.bytes(),
            free_bytes: self.bytes(self.mem.frames.free()),
            qemu_rss_bytes: self.bytes(rss),
            qemu_vsz_bytes: vsz,
        };
        if let Some(k) = self.ksm.as_mut()
            && let Some(t) = self.tuner.as_mut()
            && let Some(why) = t.look(&mut k.knobs, view)
        {
            let kn = k.knobs;
            let detail = format!(
                "{why}: run {}, pages_to_scan {}, sleep_millisecs {}",
                u8::from(kn.run),
                kn.pages_to_scan,
                kn.sleep_millisecs
            );
            self.pending.push(Event { t_ns: now, kind: EventKind::KsmChange, guest: String::new(), detail });
        }
    }

    /// A copy-on-write storm: since the last sample, writes broke more than
    /// a tenth of the merged mappings there were, each needing a new page.
    pub(super) fn check_cow_storm(&mut self, now: SimTime) {
        let Some(k) = self.ksm.as_ref() else { return };
        let cow = k.counters.cow_breaks;
        let sharing = k.counters.pages_sharing + k.counters.zero_pages;
        let broke = cow - self.cow_at_sample;
        let before = self.sharing_at_sample;
        self.cow_at_sample = cow;
        self.sharing_at_sample = sharing;
        if before > 0 && broke * 10 > before {
            let detail = format!(
                "{} copy-on-write breaks since the last sample ({:.1} of new memory): {:.0}% of the merged pages were written",
                (broke as f64 * self.scale).round(),
                crate::units::ByteSize(self.bytes(broke)),
                100.0 * broke as f64 / before as f64
            );
            self.pending.push(Event { t_ns: now, kind: EventKind::CowStorm, guest: String::new(), detail });
        }
    }
}
