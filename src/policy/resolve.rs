//! The resolver: from what a scenario chooses (`host.swap.device`,
//! `host.balloon.policy`, `host.ksm.policy`) to the implementation that
//! does it, with the knobs that implementation reads for itself. Adding a
//! backend, a balloon controller or a KSM tuner means its own file and one
//! entry in the matching enum here; nothing else names it.

use serde::Serialize;

use crate::input::diag::did_you_mean;
use crate::input::node::Node;
use crate::input::reader::{Decoder, Fields};
use crate::input::values::{bandwidth, choice, fraction, int, size, span, text};
use crate::model::swap::{Figures, IoScheduler, NoSwap, SwapBackend};
use crate::policy::balloon::{self, BalloonController, GuestConfig};
use crate::policy::ksm;
use crate::policy::ksmtune::{self, KsmTuner};
use crate::policy::swap;
use crate::units::{ByteSize, Span};

// ---------------------------------------------------------------------------
// Swap backends.

/// The `host.swap:` section: how much, and on what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swap {
    pub size: ByteSize,
    #[serde(flatten)]
    pub backend: Backend,
    /// zswap in front of the device (`host.swap.zswap:`), when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zswap: Option<swap::zswap::Knobs>,
}

/// The backend `device:` names, with its knobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum Backend {
    Device(swap::device::Knobs),
    Zram(swap::zram::Knobs),
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

    /// The backend a run at `sample_rate` on a host of `ram_bytes` uses.
    pub fn build(&self, ram_bytes: u64, sample_rate: f64) -> Box<dyn SwapBackend> {
        let bytes = self.size.bytes();
        if let Some(z) = &self.zswap {
            return Box::new(swap::zswap::Zswap::new(z, self.figures(), bytes, ram_bytes, sample_rate));
        }
        match &self.backend {
            Backend::Device(k) => Box::new(swap::device::BlockDevice::new(k, bytes, sample_rate)),
            Backend::Zram(k) => Box::new(swap::zram::Zram::new(k, bytes, sample_rate)),
        }
    }
}

/// The backend of a host with swap `spec`, or none.
pub fn build_swap(spec: Option<&Swap>, ram_bytes: u64, sample_rate: f64) -> Box<dyn SwapBackend> {
    match spec {
        Some(s) => s.build(ram_bytes, sample_rate),
        None => Box::new(NoSwap),
    }
}

/// The keys `host.swap:` takes.
pub const SWAP_KEYS: &[&str] = &[
    "size",
    "device",
    "read_latency",
    "write_latency",
    "bandwidth",
    "queue_depth",
    "ram_per_page",
    "scheduler",
    "zswap",
];

/// The names `device:` takes, in the order messages list them.
fn swap_names() -> Vec<&'static str> {
    swap::device::PRESETS.iter().map(|p| p.1).chain(["zram"]).collect()
}

/// Read `host.swap:` at `node` (path `path`): the device's preset, each
/// figure it adjusts, and the size.
pub fn decode_swap(d: &mut Decoder, node: &Node, path: &str) -> Option<Swap> {
    let f = d.map(node, path, SWAP_KEYS)?;
    let size_v = d.field(&f, "size", size);
    if size_v.is_none() && f.get("size").is_none() {
        d.error(node.pos, &f.child("size"), "missing `size:` for swap (e.g. `swap: { size: 16G, device: nvme }`)");
    }
    let names = swap_names();
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
    let zram = named == Some(swap::device::PRESETS.len());
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
        Some(_) if zram => swap::zram::PRESET,
        Some(i) => swap::device::PRESETS[i].2,
        // A bad `device:` was reported already.
        None if f.get("device").is_some() => return None,
        None if read.is_some() && write.is_some() && bw.is_some() => swap::device::CUSTOM,
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
        Backend::Zram(swap::zram::Knobs {
            adjusted: adjusted || ram_per_page.is_some(),
            figures,
            ram_per_page: ram_per_page.unwrap_or(swap::zram::RAM_PER_PAGE),
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
        let preset = named.map_or(swap::device::Preset::Custom, |i| swap::device::PRESETS[i].0);
        Backend::Device(swap::device::Knobs { preset, adjusted, figures })
    };
    // zswap in front of the device, enabled by its section.
    let zswap = match f.get("zswap") {
        Some(n) if !matches!(n.value, crate::input::node::Value::Null | crate::input::node::Value::Bool(false)) => {
            let path = f.child("zswap");
            let zf = d.map(n, &path, swap::zswap::Knobs::KEYS)?;
            if matches!(backend, Backend::Zram(_)) {
                d.error(n.pos, &path, "zswap in front of zram compresses every page twice: give a block device");
                return None;
            }
            Some(swap::zswap::Knobs::decode(d, &zf, n.pos)?)
        }
        _ => None,
    };
    Some(Swap { size: size_v?, backend, zswap })
}

/// A guest's own swap read when the host's figures are unknown.
pub fn swap_read_latency(spec: Option<&Swap>, otherwise: u64) -> u64 {
    spec.map_or(otherwise, |s| s.figures().read_latency.nanos())
}

// ---------------------------------------------------------------------------
// Balloon controllers.

/// The `host.balloon:` section: who moves the balloons, and how often.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Balloon {
    pub interval: Span,
    #[serde(flatten)]
    pub policy: BalloonChoice,
}

impl Default for Balloon {
    /// No controller, a 10 s round (MoM's policy-engine-interval in
    /// mom/__init__.py; pvestatd's update).
    fn default() -> Self {
        Balloon { interval: Span::from_secs(10), policy: BalloonChoice::None }
    }
}

/// `host.balloon.policy` and its controller's knobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum BalloonChoice {
    None,
    /// oVirt's Memory Overcommitment Manager balloon rules.
    Mom(balloon::mom::Knobs),
    /// Proxmox VE's auto-ballooning (pvestatd, PVE::AutoBalloon).
    Proxmox(balloon::proxmox::Knobs),
}

const BALLOON_NAMES: [&str; 3] = ["none", "mom", "proxmox"];

impl BalloonChoice {
    /// The word `host.balloon.policy` takes for it.
    pub fn name(&self) -> &'static str {
        match self {
            BalloonChoice::None => "none",
            BalloonChoice::Mom(_) => "mom",
            BalloonChoice::Proxmox(_) => "proxmox",
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, BalloonChoice::None)
    }

    /// The controller a run uses, if any.
    pub fn build(&self) -> Option<Box<dyn BalloonController>> {
        match self {
            BalloonChoice::None => None,
            BalloonChoice::Mom(k) => Some(Box::new(balloon::mom::Mom::new(*k))),
            BalloonChoice::Proxmox(k) => Some(Box::new(balloon::proxmox::Proxmox { knobs: *k })),
        }
    }

    /// In words, for the check summary.
    pub fn describe(&self, interval: Span) -> String {
        match self {
            BalloonChoice::None => "balloon off".to_string(),
            BalloonChoice::Mom(_) => format!("balloon by MoM every {interval}"),
            BalloonChoice::Proxmox(_) => format!("balloon by Proxmox's auto-ballooning every {interval}"),
        }
    }

    /// What a guest with this balloon configuration should know under
    /// this controller: the field it concerns and the message.
    pub fn check_guest(&self, g: GuestConfig) -> Option<(&'static str, String)> {
        match self {
            BalloonChoice::None => None,
            BalloonChoice::Mom(k) => k.check_guest(g),
            BalloonChoice::Proxmox(k) => k.check_guest(g),
        }
    }
}

/// The keys `host.balloon:` takes: its own and every controller's.
fn balloon_keys() -> Vec<&'static str> {
    let mut keys = vec!["policy", "interval"];
    keys.extend(balloon::mom::Knobs::KEYS);
    keys.extend(balloon::proxmox::Knobs::KEYS);
    keys
}

/// Read `host.balloon:`: the controller, its knobs, the round. A knob of
/// another controller than the one chosen is a warning (it does nothing).
pub fn decode_balloon(d: &mut Decoder, node: &Node, path: &str) -> Option<Balloon> {
    let keys = balloon_keys();
    let f = d.map(node, path, &keys)?;
    let name = d.field(&f, "policy", |n| choice(n, &[("none", 0usize), ("mom", 1), ("proxmox", 2)])).unwrap_or(0);
    let interval = d.field(&f, "interval", span).unwrap_or(Balloon::default().interval);
    let (policy, own): (BalloonChoice, &[&str]) = match name {
        1 => (BalloonChoice::Mom(balloon::mom::Knobs::decode(d, &f)), balloon::mom::Knobs::KEYS),
        2 => (BalloonChoice::Proxmox(balloon::proxmox::Knobs::decode(d, &f)), balloon::proxmox::Knobs::KEYS),
        _ => (BalloonChoice::None, &[]),
    };
    foreign_knobs(d, &f, &keys[2..], own, &format!("balloon policy {}", BALLOON_NAMES[name]));
    Some(Balloon { interval, policy })
}

/// Warn about knobs given in `f` that belong to another implementation
/// than the chosen one (`own`): they do nothing.
fn foreign_knobs(d: &mut Decoder, f: &Fields, all: &[&str], own: &[&str], chosen: &str) {
    for (k, _) in f.entries {
        let key = k.name.as_str();
        if all.contains(&key) && !own.contains(&key) {
            d.warn(k.pos, &f.child(key), format!("`{key}` is not a knob of the {chosen}: it has no effect"));
        }
    }
}

// ---------------------------------------------------------------------------
// KSM tuners.

/// `host.ksm.policy` and its tuner's knobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum TunerChoice {
    /// The scenario's knobs, unchanged.
    Static,
    /// Red Hat's ksmtuned script.
    Ksmtuned(ksmtune::ksmtuned::KsmtunedKnobs),
    /// oVirt MoM's KSM rules (vdsm's 03-ksm.policy).
    Mom(ksmtune::mom::MomKnobs),
    /// The kernel's scan-time advisor (`advisor_mode: scan-time`).
    Advisor(ksmtune::advisor::AdvisorKnobs),
}

impl TunerChoice {
    /// The word `host.ksm.policy` takes for it.
    pub fn name(&self) -> &'static str {
        match self {
            TunerChoice::Static => "static",
            TunerChoice::Ksmtuned(_) => "ksmtuned",
            TunerChoice::Mom(_) => "mom",
            TunerChoice::Advisor(_) => "advisor",
        }
    }

    pub fn is_static(&self) -> bool {
        matches!(self, TunerChoice::Static)
    }

    /// The tuner a run uses, if any; it may set the knobs it starts from.
    pub fn build(&self, knobs: &mut ksm::Knobs) -> Option<Box<dyn KsmTuner>> {
        match self {
            TunerChoice::Static => None,
            TunerChoice::Ksmtuned(k) => Some(Box::new(ksmtune::ksmtuned::Ksmtuned::new(*k))),
            TunerChoice::Mom(k) => Some(Box::new(ksmtune::mom::Mom::new(*k))),
            TunerChoice::Advisor(k) => Some(Box::new(ksmtune::advisor::Advisor::new(*k, knobs))),
        }
    }

    /// In words, for the check summary.
    pub fn describe(&self) -> &'static str {
        match self {
            TunerChoice::Static => "static knobs",
            TunerChoice::Ksmtuned(_) => "driven by ksmtuned",
            TunerChoice::Mom(_) => "driven by MoM",
            TunerChoice::Advisor(_) => "driven by the kernel's scan-time advisor",
        }
    }
}

/// The tuner keys `host.ksm:` takes besides ksmd's own.
pub fn tuner_keys() -> Vec<&'static str> {
    let mut keys = vec!["policy"];
    for k in ksmtune::ksmtuned::KsmtunedKnobs::KEYS
        .iter()
        .chain(ksmtune::mom::MomKnobs::KEYS)
        .chain(ksmtune::advisor::AdvisorKnobs::KEYS)
    {
        if !keys.contains(k) {
            keys.push(k);
        }
    }
    keys
}

/// Read the tuner of `host.ksm:` (whose keys the caller checked).
pub fn decode_tuner(d: &mut Decoder, f: &Fields) -> TunerChoice {
    let name = d
        .field(f, "policy", |n| choice(n, &[("static", 0usize), ("ksmtuned", 1), ("mom", 2), ("advisor", 3)]))
        .unwrap_or(0);
    let (tuner, own): (TunerChoice, &[&str]) = match name {
        1 => (
            TunerChoice::Ksmtuned(ksmtune::ksmtuned::KsmtunedKnobs::decode(d, f)),
            ksmtune::ksmtuned::KsmtunedKnobs::KEYS,
        ),
        2 => (TunerChoice::Mom(ksmtune::mom::MomKnobs::decode(d, f)), ksmtune::mom::MomKnobs::KEYS),
        3 => (TunerChoice::Advisor(ksmtune::advisor::AdvisorKnobs::decode(d, f)), ksmtune::advisor::AdvisorKnobs::KEYS),
        _ => (TunerChoice::Static, &[]),
    };
    let keys = tuner_keys();
    foreign_knobs(d, f, &keys[1..], own, &format!("KSM policy {}", tuner.name()));
    tuner
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::diag::Severity;

    fn node(yaml: &str) -> Node {
        serde_saphyr::from_str_with_options(yaml, crate::input::node::parse_options()).expect("YAML")
    }

    #[test]
    fn every_balloon_name_resolves_to_its_controller() {
        // The names `host.balloon.policy` documents (README, the check
        // summary) each resolve, and back to the same word.
        for name in BALLOON_NAMES {
            let yaml = format!("{{ policy: {name} }}");
            let mut d = Decoder::new(&yaml);
            let b = decode_balloon(&mut d, &node(&yaml), "host.balloon").expect("decodes");
            assert_eq!(b.policy.name(), name);
            assert_eq!(b.policy.build().is_some(), name != "none");
            assert!(d.diags.is_empty(), "{:?}", d.diags);
        }
    }

    #[test]
    fn every_ksm_policy_resolves_to_its_tuner() {
        // static has no tuner; ksmtuned and MoM look at the host every
        // interval (60 s: KSM_MONITOR_INTERVAL; 15 s: vdsm's
        // policy-engine-interval); the advisor sets pages_to_scan to its
        // first value, 500 (mm/ksm.c).
        for (name, look) in [("static", None), ("ksmtuned", Some(60)), ("mom", Some(15)), ("advisor", None)] {
            let yaml = format!("{{ policy: {name} }}");
            let mut d = Decoder::new(&yaml);
            let n = node(&yaml);
            let Some(f) = d.map(&n, "host.ksm", &tuner_keys()) else { panic!("a map") };
            let t = decode_tuner(&mut d, &f);
            assert_eq!(t.name(), name);
            let mut k = ksm::Knobs::running();
            let tuner = t.build(&mut k);
            assert_eq!(tuner.is_none(), name == "static");
            assert_eq!(tuner.and_then(|t| t.look_interval()).map(|s| s.nanos() / 1_000_000_000), look);
            assert_eq!(k.pages_to_scan, if name == "advisor" { 500 } else { 100 });
        }
    }

    #[test]
    fn a_knob_of_another_controller_warns_where_it_stands() {
        // Proxmox's target_use under MoM does nothing: a warning at its key
        // (line 1, column 16), the run goes on with MoM's defaults.
        let yaml = "{ policy: mom, target_use: 0.5 }";
        let mut d = Decoder::new(yaml);
        let b = decode_balloon(&mut d, &node(yaml), "host.balloon").expect("decodes");
        assert_eq!(b.policy, BalloonChoice::Mom(balloon::mom::Knobs::default()));
        assert_eq!(d.diags.len(), 1);
        let w = &d.diags[0];
        assert_eq!(
            (w.severity, w.path.as_str(), w.line, w.column),
            (Severity::Warning, "host.balloon.target_use", 1, 16)
        );
        assert!(w.message.contains("not a knob of the balloon policy mom"), "{}", w.message);
    }

    #[test]
    fn zram_is_known_by_name_and_ram_per_page_is_its_alone() {
        let yaml = "{ size: 4G, device: zram }";
        let mut d = Decoder::new(yaml);
        let s = decode_swap(&mut d, &node(yaml), "host.swap").expect("decodes");
        // zram.rst's typical 2.5-3x ratio: 0.35 of a frame per page.
        assert!(matches!(s.backend, Backend::Zram(k) if k.ram_per_page == swap::zram::RAM_PER_PAGE));
        assert!(s.build(1 << 30, 1.0).keeps_pages_in_ram());
        let yaml = "{ size: 4G, device: nvme, ram_per_page: 0.3 }";
        let mut d = Decoder::new(yaml);
        assert!(decode_swap(&mut d, &node(yaml), "host.swap").is_none());
        assert_eq!(d.diags[0].path, "host.swap.ram_per_page");
        assert!(d.diags[0].message.contains("zram's"), "{}", d.diags[0].message);
    }
}
