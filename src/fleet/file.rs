//! The fleet file: host types with counts, guest types with counts or
//! shares of a demand, the objectives every host must meet, the placement
//! policy and how many lost hosts the rest must absorb. Read like a
//! scenario: every key checked (with "did you mean"), every error with its
//! line, column and field path, and a host type's `host:` and the guest
//! types decoded by the scenario's own readers, so they mean what they
//! mean in a scenario.
//!
//! ```yaml
//! name: cell-a
//! duration: 10m             # each host's simulated run
//! hosts:
//!   - name: r640
//!     count: 20             # omitted: as many as the guests need
//!     ram_allocation_ratio: 1.5   # omitted: what `plan` recommends
//!     host: { ram: 384G, reserved: 8G, swap: { size: 64G, device: nvme } }
//!   - name: imported
//!     scenario: host-a.yaml # a scenario's `host:` (from `import`), relative to this file
//! guests:                   # scenario guest groups
//!   - { name: web, count: 400, memory: 8G, image: ubuntu, workload: { working_set: 5G } }
//!   - { name: db, share: 25%, memory: 16G, workload: { working_set: 12G } }
//! demand: 1000              # guests in all, which `share:` takes parts of
//! objectives: ["p99<=50us", "oom_kills==0"]
//! placement: sharing        # first-fit, best-fit, spread (Nova) or sharing
//! survive: 1                # hosts the fleet must be able to lose
//! ```

use std::path::{Path, PathBuf};

use crate::input::diag::{Diagnostic, ScenarioError, Severity};
use crate::input::node::{self, Key, Node, Pos, Value};
use crate::input::reader::{Decoder, join};
use crate::input::values::{fraction, int, scalar, span, text};
use crate::plan::capacity::Mix;
use crate::scenario::slo::Slo;
use crate::scenario::{GuestGroup, Host, HugePageSize};
use crate::units::Span;

/// A fleet as the file states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub name: String,
    pub seed: u64,
    /// Each host's run: its length, the warm-up left out of its figures,
    /// and how often it samples its timeline.
    pub duration: Span,
    pub warmup: Span,
    pub sample_every: Span,
    pub hosts: Vec<HostType>,
    /// Guest types, each with its number of guests (a `share:` of the
    /// demand already turned into a count).
    pub guests: Vec<GuestGroup>,
    pub objectives: Vec<Slo>,
    /// A placement policy's name ([`super::placement::NAMES`]).
    pub placement: String,
    /// Hosts the fleet must be able to lose, their guests restarted on
    /// the others.
    pub survive: u32,
    /// The policy mix every host is turned to (`plan`'s mixes); `None`:
    /// each host type's policies as written.
    pub mix: Option<Mix>,
    /// Each guest type as written (`share:` turned into a `count:`), from
    /// which a host's scenario is read with the guests placed on it.
    pub guest_nodes: Vec<Node>,
}

/// A kind of host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostType {
    pub name: String,
    /// How many there are; `None`: as many as the guests need.
    pub count: Option<u32>,
    /// `ram_allocation_ratio`; `None`: what `plan` recommends for it.
    pub ratio: Option<f64>,
    /// Its `host:` section, as a scenario's, and as written (what a host's
    /// scenario is read from).
    pub host: Host,
    pub node: Node,
    /// Where it was read (`hosts.NAME`), for messages.
    pub path: String,
}

const TOP_KEYS: &[&str] = &[
    "name",
    "seed",
    "duration",
    "warmup",
    "sample_every",
    "hosts",
    "guests",
    "demand",
    "objectives",
    "placement",
    "survive",
];
const HOST_TYPE_KEYS: &[&str] = &["name", "count", "ram_allocation_ratio", "host", "scenario"];

/// Read the fleet file at `path`.
pub fn load(path: &Path) -> Result<Fleet, ScenarioError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        single(
            Diagnostic::new(Severity::Error, Pos::default(), "", format!("cannot read the fleet file: {e}"))
                .locate(&label, ""),
        )
    })?;
    let stem = path.file_stem().map_or_else(|| "fleet".to_string(), |s| s.to_string_lossy().into_owned());
    load_str(&text, &label, &stem, path.parent().unwrap_or(Path::new(".")))
}

/// Read fleet text; `label` names it in messages, `default_name` is its
/// name when it has no `name:`, and `dir` is where `scenario:` paths start.
pub fn load_str(text: &str, label: &str, default_name: &str, dir: &Path) -> Result<Fleet, ScenarioError> {
    let located = |d: Diagnostic| d.locate(label, text);
    if text.trim().is_empty() {
        return Err(single(located(Diagnostic::new(
            Severity::Error,
            Pos::default(),
            "",
            "the fleet file is empty: it needs `hosts:` and `guests:`",
        ))));
    }
    let root = node::parse_document(text)
        .map_err(|(pos, msg)| single(located(Diagnostic::new(Severity::Error, pos, "", msg))))?;
    let mut dec = Decoder::new(text);
    let fleet = decode(&mut dec, &root, default_name, dir);
    let mut diags: Vec<Diagnostic> =
        dec.diags.into_iter().filter(|d| d.severity == Severity::Error).map(located).collect();
    match fleet {
        Some(f) if diags.is_empty() => Ok(f),
        _ => {
            if diags.is_empty() {
                diags.push(located(Diagnostic::new(
                    Severity::Error,
                    Pos::default(),
                    "",
                    "the fleet could not be read",
                )));
            }
            diags.sort_by_key(|d| (d.line, d.column));
            Err(ScenarioError { diagnostics: diags })
        }
    }
}

fn single(d: Diagnostic) -> ScenarioError {
    ScenarioError { diagnostics: vec![d] }
}

fn decode(dec: &mut Decoder, root: &Node, default_name: &str, dir: &Path) -> Option<Fleet> {
    let f = dec.map(root, "", TOP_KEYS)?;
    let name = dec.field(&f, "name", text).unwrap_or_else(|| default_name.to_string());
    let seed = dec.field(&f, "seed", |n| int::<u64>(n, "a seed (0 or more)")).unwrap_or(1);
    let duration = dec.field(&f, "duration", span).unwrap_or(Span::from_secs(60));
    let warmup = dec.field(&f, "warmup", span).unwrap_or(Span(0));
    let sample_every = dec.field(&f, "sample_every", span).unwrap_or(Span::from_secs(1));
    if warmup >= duration
        && let Some(n) = f.get("warmup")
    {
        dec.error(
            n.pos,
            "warmup",
            format!("{warmup} is not shorter than each host's run ({duration}): nothing would be measured"),
        );
    }
    let placement = dec
        .field(&f, "placement", |n| {
            let t = scalar(n, "a placement policy")?;
            super::placement::resolve(t.trim()).map(|p| p.name().to_string())
        })
        .unwrap_or_else(|| "first-fit".to_string());
    let survive = dec.field(&f, "survive", |n| int::<u32>(n, "a number of hosts (0 or more)")).unwrap_or(0);
    let objectives = dec.field(&f, "objectives", objectives).unwrap_or_default();
    let demand = dec.field(&f, "demand", |n| int::<u32>(n, "a number of guests"));
    let hosts = match f.get("hosts") {
        Some(n) => host_types(dec, n, dir),
        None => {
            dec.error(
                root.pos,
                "hosts",
                "missing `hosts:` (a list of host types: `- { name: r640, host: { ram: 384G } }`)",
            );
            None
        }
    };
    let guests: Option<(Vec<GuestGroup>, Vec<Node>)> = match f.get("guests") {
        Some(n) => guest_types(dec, n, demand, f.get("demand")),
        None => {
            dec.error(root.pos, "guests", "missing `guests:` (a list of guest types, as a scenario's guest groups)");
            None
        }
    };
    if let Some(hosts) = &hosts
        && let Some(n) = f.get("survive")
    {
        // Losing every counted host leaves nothing to restart on; counts
        // left open are found by the planner.
        let counted: Option<u32> = hosts.iter().map(|h| h.count).sum();
        if let Some(total) = counted
            && survive >= total
        {
            dec.error(
                n.pos,
                "survive",
                format!("{survive} lost hosts out of {total}: none would be left to restart their guests"),
            );
        }
    }
    let (hosts, (guests, guest_nodes)) = (hosts?, guests?);
    Some(Fleet {
        name,
        seed,
        duration,
        warmup,
        sample_every,
        hosts,
        guests,
        objectives,
        placement,
        survive,
        mix: None,
        guest_nodes,
    })
}

/// `objectives:` as a list of expressions (or one).
fn objectives(n: &Node) -> Result<Vec<Slo>, String> {
    let items: Vec<&Node> = match &n.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    items.into_iter().map(|i| scalar(i, "an objective such as p99<=50us")?.parse::<Slo>()).collect()
}

fn host_types(dec: &mut Decoder, n: &Node, dir: &Path) -> Option<Vec<HostType>> {
    let Value::Seq(items) = &n.value else {
        dec.error(n.pos, "hosts", format!("`hosts:` must be a list of host types, found {}", n.kind()));
        return None;
    };
    if items.is_empty() {
        dec.error(n.pos, "hosts", "`hosts:` lists no host type");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(Node::scalar_text).unwrap_or_else(|| format!("host{i}"));
        let path = format!("hosts.{name}");
        if let Some((_, first)) = out.iter().map(|h: &HostType| (&h.name, h)).find(|(n, _)| **n == name) {
            let pos = item.get("name").map_or(item.pos, |n| n.pos);
            dec.error(
                pos,
                &format!("{path}.name"),
                format!("host type {name:?} is listed twice (first as {})", first.path),
            );
            ok = false;
            continue;
        }
        match host_type(dec, item, &path, name, dir) {
            Some(h) => out.push(h),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn host_type(dec: &mut Decoder, item: &Node, path: &str, name: String, dir: &Path) -> Option<HostType> {
    let f = dec.map(item, path, HOST_TYPE_KEYS)?;
    let count = dec.field(&f, "count", |n| int::<u32>(n, "a number of hosts"));
    if count == Some(0)
        && let Some(n) = f.get("count")
    {
        dec.error(n.pos, &f.child("count"), "0 hosts: leave the type out, or omit `count` to let the guests decide");
    }
    let ratio = dec.field(&f, "ram_allocation_ratio", |n| {
        let t = scalar(n, "a ratio such as 1.5")?;
        match t.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
            _ => Err(format!("{} is not a positive ratio such as 1.5", n.show())),
        }
    });
    let (host, node) = match (f.get("host"), f.get("scenario")) {
        (Some(h), None) => (dec.host(h, &f.child("host")), h.clone()),
        (None, Some(s)) => host_of_scenario(dec, s, &f.child("scenario"), dir)?,
        (Some(_), Some(s)) => {
            dec.error(s.pos, &f.child("scenario"), "give `host:` or `scenario:`, not both");
            return None;
        }
        (None, None) => {
            dec.error(
                item.pos,
                path,
                "a host type needs `host:` (a scenario's host section) or `scenario:` (a scenario file)",
            );
            return None;
        }
    };
    Some(HostType { name, count, ratio, host: host?, node, path: path.to_string() })
}

/// The `host:` of the scenario file `n` names, decoded and as written.
fn host_of_scenario(dec: &mut Decoder, n: &Node, path: &str, dir: &Path) -> Option<(Option<Host>, Node)> {
    let file = match scalar(n, "a scenario file") {
        Ok(t) => t,
        Err(m) => {
            dec.error(n.pos, path, m);
            return None;
        }
    };
    let full: PathBuf = dir.join(file.trim());
    let loaded = std::fs::read_to_string(&full)
        .map_err(|e| format!("{}: cannot read the scenario: {e}", full.display()))
        .and_then(|text| {
            let label = full.display().to_string();
            crate::scenario::load_str(&text, &label, "scenario", &[]).map(|l| (l.scenario.host, text)).map_err(|e| {
                // Its first error, where in that file it is.
                e.errors().next().map_or_else(
                    || format!("{label}: it could not be read"),
                    |d| {
                        let at = if d.line > 0 { format!(":{}:{}", d.line, d.column) } else { String::new() };
                        let field = if d.path.is_empty() { String::new() } else { format!(" {}:", d.path) };
                        format!("{label}{at}:{field} {}", d.message)
                    },
                )
            })
        });
    match loaded {
        Ok((host, text)) => {
            // It loaded, so it parses and has a host section.
            let node = node::parse_document(&text).ok()?.get("host").cloned()?;
            Some((Some(host), node))
        }
        Err(m) => {
            dec.error(n.pos, path, m);
            None
        }
    }
}

/// The guest types: scenario guest groups, where `share: 25%` stands for
/// that part of `demand` (rounded to whole guests) in place of `count`.
fn guest_types(
    dec: &mut Decoder,
    n: &Node,
    demand: Option<u32>,
    demand_node: Option<&Node>,
) -> Option<(Vec<GuestGroup>, Vec<Node>)> {
    let mut stripped = n.clone();
    let mut shares: Vec<(usize, f64, Pos)> = Vec::new();
    if let Value::Seq(items) = &mut stripped.value {
        for (i, item) in items.iter_mut().enumerate() {
            let Value::Map(entries) = &mut item.value else { continue };
            let Some(at) = entries.iter().position(|(k, _)| k.name == "share") else { continue };
            let (key, value): (Key, Node) = entries.remove(at);
            let name = entries.iter().find(|(k, _)| k.name == "name").and_then(|(_, v)| v.scalar_text());
            let path = join(&format!("guests.{}", name.unwrap_or_else(|| i.to_string())), "share");
            if entries.iter().any(|(k, _)| k.name == "count") {
                dec.error(key.pos, &path, "give `count:` or `share:`, not both");
                continue;
            }
            match fraction(&value) {
                Ok(f) => shares.push((i, f.get(), value.pos)),
                Err(m) => dec.error(value.pos, &path, m),
            }
            // The scenario's reader needs a count: the share's is set below.
            entries.push((Key { name: "count".into(), pos: key.pos }, Node::new(Value::Int(1), value.pos)));
        }
    }
    let mut guests = dec.guests(&stripped, HugePageSize::Size2M)?;
    if !shares.is_empty() {
        let Some(demand) = demand else {
            dec.error(shares[0].2, "demand", "`share:` is a part of `demand:`, which is missing (the guests in all)");
            return None;
        };
        let counted: u32 =
            guests.iter().enumerate().filter(|(i, _)| !shares.iter().any(|s| s.0 == *i)).map(|(_, g)| g.count).sum();
        let total: f64 = shares.iter().map(|s| s.1).sum();
        if total > 1.0 + 1e-9 || counted > demand {
            let pos = demand_node.map_or(shares[0].2, |d| d.pos);
            dec.error(
                pos,
                "demand",
                format!(
                    "the shares add up to {:.0}% and the counted guests to {counted} of {demand}: more than the demand",
                    total * 100.0
                ),
            );
            return None;
        }
        for &(i, share, _) in &shares {
            guests[i].count = (share * f64::from(demand)).round() as u32;
        }
    }
    let nodes = match stripped.value {
        Value::Seq(items) => items,
        _ => Vec::new(),
    };
    Some((guests, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Fleet, String> {
        load_str(text, "cell.yaml", "cell", Path::new("."))
            .map_err(|e| e.diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))
    }

    const CELL: &str = "\
name: cell-a
duration: 10m
hosts:
  - name: big
    count: 4
    ram_allocation_ratio: 1.5
    host: { ram: 384G, reserved: 8G }
  - name: small
    host: { ram: 128G }
guests:
  - { name: web, count: 40, memory: 8G, image: ubuntu, workload: { working_set: 5G } }
  - { name: db, share: 25%, memory: 16G, workload: { working_set: 12G } }
demand: 100
objectives: [\"p99<=50us\", \"oom_kills==0\"]
placement: spread
survive: 1
";

    #[test]
    fn a_fleet_reads_its_host_and_guest_types() {
        let f = read(CELL).unwrap();
        assert_eq!(f.name, "cell-a");
        assert_eq!(f.duration, Span::from_secs(600));
        assert_eq!(f.hosts.len(), 2);
        assert_eq!((f.hosts[0].count, f.hosts[0].ratio), (Some(4), Some(1.5)));
        assert_eq!(f.hosts[0].host.ram.bytes(), 384 << 30);
        assert_eq!((f.hosts[1].count, f.hosts[1].ratio), (None, None));
        // 25% of a demand of 100.
        assert_eq!(f.guests.iter().map(|g| (g.name.as_str(), g.count)).collect::<Vec<_>>(), [("web", 40), ("db", 25)]);
        assert_eq!(f.objectives.len(), 2);
        assert_eq!((f.placement.as_str(), f.survive), ("spread", 1));
    }

    #[test]
    fn bad_values_name_the_line_column_and_field() {
        let err = read(&CELL.replace("placement: spread", "placement: random")).unwrap_err();
        assert!(err.contains("cell.yaml:15:12: placement: unknown placement `random`"), "{err}");
        let err = read(&CELL.replace("host: { ram: 128G }", "host: { ram: 128Q }")).unwrap_err();
        assert!(err.contains("cell.yaml:9:18: hosts.small.host.ram:"), "{err}");
        let err = read(&CELL.replace("count: 4\n", "cuont: 4\n")).unwrap_err();
        assert!(err.contains("hosts.big.cuont: unknown key `cuont`; did you mean `count`?"), "{err}");
        let err = read(&CELL.replace("share: 25%, ", "share: 25%, count: 3, ")).unwrap_err();
        assert!(err.contains("guests.db.share: give `count:` or `share:`, not both"), "{err}");
        let err = read(&CELL.replace("demand: 100\n", "")).unwrap_err();
        assert!(err.contains("demand: `share:` is a part of `demand:`, which is missing"), "{err}");
        let err = read(&CELL.replace("demand: 100", "demand: 30")).unwrap_err();
        assert!(err.contains("the counted guests to 40 of 30"), "{err}");
        let err = read(&CELL.replace("p99<=50us", "p99=<50us")).unwrap_err();
        assert!(err.contains("objectives:"), "{err}");
    }

    #[test]
    fn losing_every_counted_host_is_refused() {
        let text = CELL.replace("  - name: small\n    host: { ram: 128G }\n", "").replace("survive: 1", "survive: 4");
        let err = read(&text).unwrap_err();
        assert!(err.contains("survive: 4 lost hosts out of 4: none would be left"), "{err}");
    }

    #[test]
    fn a_host_type_can_take_a_scenarios_host() {
        let dir = std::env::temp_dir().join(format!("oc-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "host: { ram: 256G, reserved: 4G }\n").unwrap();
        let text = CELL.replace("host: { ram: 128G }", "scenario: a.yaml");
        let f = load_str(&text, "cell.yaml", "cell", &dir).unwrap();
        assert_eq!(f.hosts[1].host.ram.bytes(), 256 << 30);
        let bad = CELL.replace("host: { ram: 128G }", "scenario: missing.yaml");
        let err = load_str(&bad, "cell.yaml", "cell", &dir).unwrap_err();
        assert!(err.diagnostics[0].to_string().contains("hosts.small.scenario:"), "{:?}", err.diagnostics);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
