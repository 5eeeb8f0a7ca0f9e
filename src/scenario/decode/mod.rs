//! From the YAML tree to a [`Scenario`]: every key checked against the
//! schema (with "did you mean"), every unit parsed, every default filled in,
//! and every error kept with its position and field path.

mod guests;
mod host;
mod scalars;
mod sweep;

use std::collections::BTreeMap;

use super::diag::{Diagnostic, Severity, did_you_mean};
use super::node::{Key, Node, Pos, Value};
use super::schema::*;
use crate::units::Span;
use scalars::{int, span, text};

pub use scalars::parse_pattern;

/// Positions of decoded fields by path, for checks that look at several
/// fields at once (validate.rs).
pub type Positions = BTreeMap<String, Pos>;

pub struct Decoder<'s> {
    source: &'s str,
    pub diags: Vec<Diagnostic>,
    pub positions: Positions,
}

/// A mapping whose keys were checked; lookups record positions.
struct Fields<'a> {
    entries: &'a [(Key, Node)],
    path: String,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }
    fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "warmup",
    "sample_every",
    "host",
    "guests",
    "calibration",
    "sweep",
    "variants",
];

impl<'s> Decoder<'s> {
    pub fn new(source: &'s str) -> Self {
        Decoder { source, diags: Vec::new(), positions: Positions::new() }
    }

    fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(Severity::Error, pos, path, msg));
    }

    /// Open a mapping: report a non-mapping, unknown keys (with a
    /// suggestion) and duplicate keys.
    fn map<'a>(&mut self, node: &'a Node, path: &str, known: &[&str]) -> Option<Fields<'a>> {
        let entries = match &node.value {
            Value::Map(entries) => entries.as_slice(),
            // An empty section (`ksm:`) means "all defaults".
            Value::Null => &[],
            _ => {
                let what = if path.is_empty() { "the scenario" } else { "this section" };
                self.error(
                    node.pos,
                    path,
                    format!("{what} must be a mapping of keys, found {} ({})", node.kind(), node.show()),
                );
                return None;
            }
        };
        for (i, (k, _)) in entries.iter().enumerate() {
            let kpath = join(path, &k.name);
            if let Some((first, _)) = entries[..i].iter().find(|(f, _)| f.name == k.name) {
                let msg = format!(
                    "duplicate key `{}` (first given at line {}, column {})",
                    k.name, first.pos.line, first.pos.column
                );
                self.error(k.pos, &kpath, msg);
            } else if !known.contains(&k.name.as_str()) {
                let hint = match did_you_mean(&k.name, known) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => format!("; known keys here: {}", known.join(", ")),
                };
                self.error(k.pos, &kpath, format!("unknown key `{}`{hint}", k.name));
            }
        }
        Some(Fields { entries, path: path.to_string() })
    }

    /// Read one field with `parse`; a missing field gives `None` without an
    /// error, a bad one records the error and gives `None`.
    fn field<T>(&mut self, f: &Fields, key: &str, parse: impl FnOnce(&Node) -> Result<T, String>) -> Option<T> {
        let node = f.get(key)?;
        let path = f.child(key);
        self.positions.insert(path.clone(), node.pos);
        if matches!(node.value, Value::Null) {
            // `key:` with nothing after it: treat as absent (the default).
            return None;
        }
        match parse(node) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(node.pos, &path, msg);
                None
            }
        }
    }

    pub fn scenario(&mut self, root: &Node, default_name: &str) -> Option<Scenario> {
        let f = self.map(root, "", TOP_KEYS)?;
        let name = self.field(&f, "name", text).unwrap_or_else(|| default_name.to_string());
        let description = self.field(&f, "description", text).unwrap_or_default();
        let seed = self.field(&f, "seed", |n| int::<u64>(n, "a seed (0 or more)")).unwrap_or(1);
        let duration = self.field(&f, "duration", span).unwrap_or(Span::from_secs(60));
        let sample_every = self.field(&f, "sample_every", span).unwrap_or(Span::from_secs(1));
        let warmup = self.field(&f, "warmup", span).unwrap_or(Span(0));
        if warmup >= duration
            && let Some(n) = f.get("warmup")
        {
            self.error(
                n.pos,
                "warmup",
                format!("{} is not shorter than the run's duration {}: nothing would be measured", warmup, duration),
            );
        }
        let calibration = self.field(&f, "calibration", text);
        for section in ["host", "guests"] {
            if let Some(n) = f.get(section) {
                self.positions.insert(section.to_string(), n.pos);
            }
        }
        let host = match f.get("host") {
            Some(h) => self.host(h, "host"),
            None => {
                self.error(root.pos, "host", "missing `host:` section (at least `host: { ram: 64G }`)");
                None
            }
        };
        // Guests without a stated huge page size take the host's default.
        let default_huge = host.as_ref().map_or(HugePageSize::Size2M, |h| h.hugepages.size);
        let guests = match f.get("guests") {
            Some(g) => self.guests(g, default_huge),
            None => Some(Vec::new()),
        };
        let sweep = match f.get("sweep") {
            Some(n) => Some(self.sweep(n)?),
            None => None,
        };
        let variants = match f.get("variants") {
            Some(n) => self.variants(n)?,
            None => Vec::new(),
        };
        let (host, guests) = (host?, guests?);
        Some(Scenario {
            name,
            description,
            seed,
            duration,
            warmup,
            sample_every,
            host,
            guests,
            calibration,
            sweep,
            variants,
        })
    }
}
