//! Swap backends: where reclaimed pages go and what bringing them back
//! costs. Each backend is one file with its knobs (their defaults and
//! checks) and its behaviour, and implements
//! [`crate::model::swap::SwapBackend`]:
//!
//! - [`device`]: a block device (nvme, ssd, hdd presets, or figures of
//!   one's own);
//! - [`zram`]: compressed pages kept in host RAM.
//!
//! The scenario's `host.swap:` section names one (`device:`) and may adjust
//! its figures; [`decode`] reads it and [`build`] makes the backend a run
//! uses: this file is the resolver from names to backends.

pub mod device;
pub mod zram;

use serde::Serialize;

use crate::input::diag::did_you_mean;
use crate::input::node::Node;
use crate::input::reader::Decoder;
use crate::input::values::{bandwidth, choice, fraction, int, size, span, text};
use crate::model::swap::{Figures, IoScheduler, NoSwap, SwapBackend};
use crate::units::ByteSize;

/// The `host.swap:` section: how much, and on what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swap {
    pub size: ByteSize,
    #[serde(flatten)]
    pub backend: Backend,
}

/// The backend `device:` names, with its knobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum Backend {
    Device(device::Knobs),
    Zram(zram::Knobs),
}

impl Swap {
    /// The device as a person names it: `nvme`, `hdd (adjusted)`, `zram`.
    pub fn label(&self) -> String {
        match &self.backend {
            Backend::Device(k) => k.label(),
            Backend::Zram(k) => k.label().to_string(),
        }
    }

    pub fn figures(&self) -> &Figures {
        match &self.backend {
            Backend::Device(k) => &k.figures,
            Backend::Zram(k) => &k.figures,
        }
    }

    /// The backend a run at `sample_rate` uses.
    pub fn build(&self, sample_rate: f64) -> Box<dyn SwapBackend> {
        let bytes = self.size.bytes();
        match &self.backend {
            Backend::Device(k) => Box::new(device::BlockDevice::new(k, bytes, sample_rate)),
            Backend::Zram(k) => Box::new(zram::Zram::new(k, bytes, sample_rate)),
        }
    }
}

/// The backend of a host with swap `spec`, or none.
pub fn build(spec: Option<&Swap>, sample_rate: f64) -> Box<dyn SwapBackend> {
    match spec {
        Some(s) => s.build(sample_rate),
        None => Box::new(NoSwap),
    }
}

/// The keys `host.swap:` takes.
pub const KEYS: &[&str] =
    &["size", "device", "read_latency", "write_latency", "bandwidth", "queue_depth", "ram_per_page", "scheduler"];

/// The names `device:` takes, in the order messages list them.
fn names() -> Vec<&'static str> {
    device::PRESETS.iter().map(|p| p.1).chain(["zram"]).collect()
}

/// Read `host.swap:` at `node` (path `path`): the device's preset, each
/// figure it adjusts, and the size.
pub fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Swap> {
    let f = d.map(node, path, KEYS)?;
    let size_v = d.field(&f, "size", size);
    if size_v.is_none() && f.get("size").is_none() {
        d.error(node.pos, &f.child("size"), "missing `size:` for swap (e.g. `swap: { size: 16G, device: nvme }`)");
    }
    let names = names();
    let named = d.field(&f, "device", |n| {
        let s = text(n)?;
        let lower = s.to_ascii_lowercase();
        names.iter().position(|&p| p == lower).ok_or_else(|| {
            let hint = did_you_mean(&s, &names).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
            format!(
                "unknown swap device {s:?}{hint}: expected one of {}, or give read_latency, write_latency and bandwidth",
                names.join(", ")
            )
        })
    });
    let zram = named == Some(device::PRESETS.len());
    let read = d.field(&f, "read_latency", span);
    let write = d.field(&f, "write_latency", span);
    let bw = d.field(&f, "bandwidth", bandwidth);
    let queue_depth = d.field(&f, "queue_depth", |n| {
        let v = int::<u32>(n, "requests in flight")?;
        if v == 0 { Err("queue_depth must be at least 1".to_string()) } else { Ok(v) }
    });
    let ram_per_page = d.field(&f, "ram_per_page", fraction).map(|v| v.get());
    let scheduler = d.field(&f, "scheduler", |n| {
        choice(n, &[("none", IoScheduler::None), ("mq-deadline", IoScheduler::MqDeadline)])
    });
    // The named preset's figures, or a custom device's, which must give the
    // latencies and the bandwidth.
    let preset = match named {
        Some(_) if zram => zram::PRESET,
        Some(i) => device::PRESETS[i].2,
        // A bad `device:` was reported already.
        None if f.get("device").is_some() => return None,
        None if read.is_some() && write.is_some() && bw.is_some() => device::CUSTOM,
        None => {
            d.error(
                node.pos,
                &f.child("device"),
                "swap needs `device:` (nvme, ssd, hdd or zram) or all of read_latency, write_latency and bandwidth",
            );
            return None;
        }
    };
    let adjusted = read.is_some() || write.is_some() || bw.is_some() || queue_depth.is_some() || scheduler.is_some();
    let figures = Figures {
        read_latency: read.unwrap_or(preset.read_latency),
        write_latency: write.unwrap_or(preset.write_latency),
        bandwidth_bytes_per_s: bw.unwrap_or(preset.bandwidth_bytes_per_s),
        queue_depth: queue_depth.unwrap_or(preset.queue_depth),
        scheduler: scheduler.unwrap_or(preset.scheduler),
    };
    let backend = if zram {
        Backend::Zram(zram::Knobs {
            adjusted: adjusted || ram_per_page.is_some(),
            figures,
            ram_per_page: ram_per_page.unwrap_or(zram::RAM_PER_PAGE),
        })
    } else {
        if let Some(n) = f.get("ram_per_page").filter(|_| ram_per_page.is_some()) {
            d.error(
                n.pos,
                &f.child("ram_per_page"),
                "ram_per_page is zram's (compressed pages kept in RAM): a block device keeps none; give `device: zram`",
            );
            return None;
        }
        let preset = named.map_or(device::Preset::Custom, |i| device::PRESETS[i].0);
        Backend::Device(device::Knobs { preset, adjusted, figures })
    };
    Some(Swap { size: size_v?, backend })
}

/// A guest's own swap read when the host's figures are unknown.
pub fn read_latency(spec: Option<&Swap>, otherwise: u64) -> u64 {
    spec.map_or(otherwise, |s| s.figures().read_latency.nanos())
}
