//! A block device as swap (an NVMe drive, a SATA SSD, a disk, or figures
//! of one's own): pages go out in merged reclaim batches and come back one
//! random 4 KiB read at a time, through the device's queue
//! ([`QueuedDevice`]). Its knobs are a preset's figures, each adjustable.

use serde::Serialize;

use crate::model::swap::{Figures, IoScheduler, QueuedDevice, SwapBackend};
use crate::units::Span;

/// A figure set by name, or `custom` (every figure given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Nvme,
    Ssd,
    Hdd,
    Custom,
}

/// The device's knobs: where its figures came from, and the figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    pub preset: Preset,
    /// Some figure differs from the preset's.
    pub adjusted: bool,
    #[serde(flatten)]
    pub figures: Figures,
}

impl Knobs {
    /// `nvme`, `ssd (adjusted)`, `custom`.
    pub fn label(&self) -> String {
        let name = PRESETS.iter().find(|p| p.0 == self.preset).map_or("custom", |p| p.1);
        if self.adjusted && self.preset != Preset::Custom { format!("{name} (adjusted)") } else { name.to_string() }
    }
}

/// What a custom device starts from before its figures are read: one
/// request at a time, no scheduler.
pub const CUSTOM: Figures = Figures {
    read_latency: Span(0),
    write_latency: Span(0),
    bandwidth_bytes_per_s: 0,
    queue_depth: 1,
    scheduler: IoScheduler::None,
};

// Sources, all for a 4 KiB random access at queue depth 1:
// - nvme: NAND NVMe SSDs read 4 KiB in about 80 us and absorb writes in
//   their DRAM cache in about 20 us (Samsung 980 PRO and Intel P4510 data
//   sheets); about 500k random-read IOPS, i.e. 2 GiB/s, reached with 64
//   requests in flight.
// - ssd: SATA SSDs about 100 us read / 50 us write (Samsung 870 EVO data
//   sheet: 98k IOPS at QD32); the SATA 6 Gb/s link caps transfers near
//   550 MB/s; NCQ queues 32 commands.
// - hdd: 7200 rpm: 8.5 ms average seek + 4.17 ms half rotation = 12.7 ms
//   per random 4 KiB, one request at a time (about 79 IOPS); 150 MiB/s
//   sequential.
// Schedulers: the kernel gives multi-queue NVMe devices `none` and
// single-queue SATA devices `mq-deadline` (block/elevator.c,
// elevator_get_default).
pub const PRESETS: [(Preset, &str, Figures); 3] = [
    (
        Preset::Nvme,
        "nvme",
        Figures {
            read_latency: Span(80_000),
            write_latency: Span(20_000),
            bandwidth_bytes_per_s: 2 << 30,
            queue_depth: 64,
            scheduler: IoScheduler::None,
        },
    ),
    (
        Preset::Ssd,
        "ssd",
        Figures {
            read_latency: Span(100_000),
            write_latency: Span(50_000),
            bandwidth_bytes_per_s: 500 << 20,
            queue_depth: 32,
            scheduler: IoScheduler::MqDeadline,
        },
    ),
    (
        Preset::Hdd,
        "hdd",
        Figures {
            read_latency: Span(12_700_000),
            write_latency: Span(12_700_000),
            bandwidth_bytes_per_s: 150 << 20,
            queue_depth: 1,
            scheduler: IoScheduler::MqDeadline,
        },
    ),
];

/// The swap allocator hands out slots in order, so a reclaim batch lands
/// in adjacent slots and the block layer merges it into one request
/// ([`QueuedDevice::new`]'s `merge_writes`).
#[derive(Debug, Clone)]
pub struct BlockDevice {
    q: QueuedDevice,
}

impl BlockDevice {
    pub fn new(knobs: &Knobs, size_bytes: u64, sample_rate: f64) -> BlockDevice {
        BlockDevice { q: QueuedDevice::new(&knobs.figures, size_bytes, true, sample_rate) }
    }
}

impl SwapBackend for BlockDevice {
    crate::model::swap::queued_device_slots!(q, keeps_slots: true);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::swap::SwapPage;

    const PAGE: SwapPage = SwapPage { guest: 0, page: 0, zero: false };

    fn knobs(preset: Preset) -> Knobs {
        Knobs { preset, adjusted: false, figures: PRESETS.iter().find(|p| p.0 == preset).unwrap().2 }
    }

    #[test]
    fn a_disk_preset_does_its_79_random_reads_a_second() {
        // 8.5 ms seek + 4.17 ms half rotation = 12.7 ms per random 4 KiB,
        // one at a time: 100 reads queued at once take 100 × 12.7 ms.
        let mut d = BlockDevice::new(&knobs(Preset::Hdd), 1 << 30, 1.0);
        for _ in 0..100 {
            d.write(0, PAGE, false);
        }
        let t0 = 1_000_000_000; // the merged writes (100 / 32 seeks) are done by then
        let last = (0..100).map(|_| d.read(t0, PAGE, false).wait).last().unwrap();
        assert_eq!(last, 100 * 12_700_000);
        assert_eq!((d.reads(), d.writes(), d.used()), (100, 100, 0));
    }

    #[test]
    fn a_block_device_keeps_no_pages_in_host_ram() {
        let mut d = BlockDevice::new(&knobs(Preset::Nvme), 1 << 30, 1.0);
        d.write(0, PAGE, false);
        assert_eq!((d.ram_frames(), d.keeps_pages_in_ram()), (0, false));
        // 1 GiB of slots: 262 144 pages.
        assert_eq!(d.capacity(), 262_144);
    }

    #[test]
    fn labels_say_where_the_figures_came_from() {
        assert_eq!(knobs(Preset::Ssd).label(), "ssd");
        assert_eq!(Knobs { adjusted: true, ..knobs(Preset::Ssd) }.label(), "ssd (adjusted)");
        assert_eq!(Knobs { preset: Preset::Custom, adjusted: true, figures: CUSTOM }.label(), "custom");
    }
}
