//! Reading a YAML tree into typed values: every mapping's keys checked
//! against the known ones (with "did you mean"), every field read by a
//! parser that says what it expected, and every error kept with its
//! position and field path. The scenario's decoder and each policy's knobs
//! are built on it.

use std::collections::BTreeMap;

use super::diag::{Diagnostic, Severity, did_you_mean};
use super::node::{Key, Node, Pos, Value};

/// Positions of decoded fields by path, for checks that look at several
/// fields at once (validate.rs).
pub type Positions = BTreeMap<String, Pos>;

pub struct Decoder<'s> {
    pub(crate) source: &'s str,
    pub diags: Vec<Diagnostic>,
    pub positions: Positions,
}

/// A mapping whose keys were checked; lookups record positions.
pub struct Fields<'a> {
    pub(crate) entries: &'a [(Key, Node)],
    pub(crate) path: String,
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }
    pub fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl<'s> Decoder<'s> {
    pub fn new(source: &'s str) -> Self {
        Decoder { source, diags: Vec::new(), positions: Positions::new() }
    }

    pub fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(Severity::Error, pos, path, msg));
    }

    pub fn warn(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(Severity::Warning, pos, path, msg));
    }

    /// Open a mapping: report a non-mapping, unknown keys (with a
    /// suggestion) and duplicate keys.
    pub fn map<'a>(&mut self, node: &'a Node, path: &str, known: &[&str]) -> Option<Fields<'a>> {
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
    pub fn field<T>(&mut self, f: &Fields, key: &str, parse: impl FnOnce(&Node) -> Result<T, String>) -> Option<T> {
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
}
