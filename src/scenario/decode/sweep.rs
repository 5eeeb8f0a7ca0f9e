//! The `sweep:` section (the fields to vary with their values or ranges,
//! the seeds to run each point with, and the objectives) and the
//! `variants:` list, each a name and the `--set` overrides it applies.

use super::scalars::{int, scalar, text};
use super::{Decoder, join};
use crate::input::node::{Node, Value};
use crate::scenario::schema::*;
use crate::scenario::slo::Slo;
use crate::scenario::vary::{self, Vary};

const VARIANT_KEYS: &[&str] = &["name", "set"];
const SWEEP_KEYS: &[&str] = &["vary", "seeds", "slo"];

impl Decoder<'_> {
    /// `variants: [{ name: N, set: { PATH: VALUE, ... } }, ...]`.
    pub(super) fn variants(&mut self, node: &Node) -> Option<Vec<Variant>> {
        let Value::Seq(items) = &node.value else {
            self.error(node.pos, "variants", format!("expected a list of {{ name:, set: }}, found {}", node.kind()));
            return None;
        };
        let mut out: Vec<Variant> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("variants.{i}");
            let Some(f) = self.map(item, &path, VARIANT_KEYS) else {
                ok = false;
                continue;
            };
            let Some(name) = self.field(&f, "name", text) else {
                self.error(item.pos, &path, "a variant needs a `name:`");
                ok = false;
                continue;
            };
            if out.iter().any(|v| v.name == name) {
                self.error(item.pos, &f.child("name"), format!("variant {name:?} is given twice"));
                ok = false;
            }
            let mut set = Vec::new();
            match f.get("set").map(|n| &n.value) {
                Some(Value::Map(entries)) => {
                    for (k, v) in entries {
                        match vary_value(v) {
                            Ok(value) => set.push(crate::scenario::Override { path: k.name.clone(), value }),
                            Err(e) => {
                                self.error(v.pos, &format!("{path}.set.{}", k.name), e);
                                ok = false;
                            }
                        }
                    }
                }
                Some(_) => {
                    self.error(item.pos, &f.child("set"), "expected a mapping of PATH: VALUE");
                    ok = false;
                }
                None => {}
            }
            out.push(Variant { name, set });
        }
        ok.then_some(out)
    }

    /// `sweep: { vary: { PATH: SPEC or [values] }, seeds: K, slo: [..] }`.
    pub(super) fn sweep(&mut self, node: &Node) -> Option<SweepSection> {
        let f = self.map(node, "sweep", SWEEP_KEYS)?;
        let seeds = self.field(&f, "seeds", |n| {
            int::<u32>(n, "a count of seeds (1 or more)")
                .and_then(|k| if k == 0 { Err("a sweep needs at least 1 seed".to_string()) } else { Ok(k) })
        });
        let mut ok = true;
        let mut vary = Vec::new();
        if let Some(v) = f.get("vary") {
            match &v.value {
                Value::Map(entries) => {
                    for (key, spec) in entries {
                        let path = join("sweep.vary", &key.name);
                        let values = match &spec.value {
                            Value::Seq(items) => items
                                .iter()
                                .map(|n| vary_value(n).map_err(|e| (n.pos, e)))
                                .collect::<Result<Vec<_>, _>>(),
                            _ => vary_value(spec).and_then(|t| vary::parse_spec(&t)).map_err(|e| (spec.pos, e)),
                        };
                        match values {
                            Ok(values) if !values.is_empty() => vary.push(Vary { path: key.name.clone(), values }),
                            Ok(_) => {
                                self.error(spec.pos, &path, "no values to vary");
                                ok = false;
                            }
                            Err((pos, e)) => {
                                self.error(pos, &path, e);
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    let msg = format!(
                        "expected a mapping of PATH: SPEC (e.g. guests.web.count: 2..16:2), found {}",
                        v.kind()
                    );
                    self.error(v.pos, "sweep.vary", msg);
                    ok = false;
                }
            }
        }
        let mut slo = Vec::new();
        if let Some(n) = f.get("slo") {
            let items: Vec<&Node> = match &n.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![n],
            };
            for item in items {
                match scalar(item, "an objective such as p99<=50us").and_then(|t| t.parse::<Slo>()) {
                    Ok(s) => slo.push(s),
                    Err(e) => {
                        self.error(item.pos, "sweep.slo", e);
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(SweepSection { vary, seeds, slo })
    }
}

/// A scalar to vary, as the text `--set` would take.
fn vary_value(n: &Node) -> Result<String, String> {
    match &n.value {
        Value::Bool(b) => Ok(b.to_string()),
        _ => scalar(n, "a value, a list (a,b,c) or a range (4..64:4)"),
    }
}
