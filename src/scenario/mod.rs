//! Scenario files: YAML in, a validated [`Scenario`] out.
//!
//! Everything about reading a scenario lives behind [`load`] (and
//! [`load_str`] for text already in memory): the YAML parser, the schema,
//! QEMU command-line reading, `--set` overrides, and the checks with their
//! file:line:column messages. The rest of the program sees only
//! [`Scenario`].

mod decode;
pub mod guestmem;
pub mod qemu;
pub mod schema;
pub mod slo;
mod validate;
pub mod vary;

use std::path::Path;

pub use crate::input::diag::{Diagnostic, ScenarioError, Severity};
pub use decode::parse_pattern;
pub use schema::*;

use crate::input::node::{self, Node, Pos};

/// A scenario that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub warnings: Vec<Diagnostic>,
}

/// One `--set PATH=VALUE` override, applied to the YAML before decoding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    pub path: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not PATH=VALUE (e.g. host.ksm.run=true or guests.web.count=12)"))?;
        if path.trim().is_empty() {
            return Err(format!("{s:?} has an empty PATH"));
        }
        Ok(Override { path: path.trim().to_string(), value: value.to_string() })
    }
}

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    load_with(path, &[])
}

/// Read a scenario file, apply `--set` overrides, and validate.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Loaded, ScenarioError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        single(
            Diagnostic::new(Severity::Error, Pos::default(), "", format!("cannot read the scenario: {e}"))
                .locate(&label, ""),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let col = upto.iter().rev().take_while(|&&b| b != b'\n').count() as u64 + 1;
        single(
            Diagnostic::new(Severity::Error, Pos { line, column: col }, "", "the file is not UTF-8 text")
                .locate(&label, ""),
        )
    })?;
    let stem = path.file_stem().map_or_else(|| "scenario".to_string(), |s| s.to_string_lossy().into_owned());
    load_str(&text, &label, &stem, overrides)
}

/// Validate scenario text; `label` names it in messages and `default_name`
/// is used when the scenario has no `name:`.
pub fn load_str(text: &str, label: &str, default_name: &str, overrides: &[Override]) -> Result<Loaded, ScenarioError> {
    let located = |d: Diagnostic| d.locate(label, text);
    let mut root: Node = if text.trim().is_empty() {
        return Err(single(located(Diagnostic::new(
            Severity::Error,
            Pos::default(),
            "",
            "the scenario is empty: it needs at least `host: { ram: 64G }`",
        ))));
    } else {
        node::parse_document(text)
            .map_err(|(pos, msg)| single(located(Diagnostic::new(Severity::Error, pos, "", msg))))?
    };
    for o in overrides {
        let value = Node::from_cli_text(&o.value).map_err(|m| {
            single(
                Diagnostic::new(Severity::Error, Pos::default(), &o.path, format!("--set value {:?}: {m}", o.value))
                    .locate("<command line>", ""),
            )
        })?;
        root.set_path(&o.path, value).map_err(|m| {
            single(
                Diagnostic::new(Severity::Error, Pos::default(), &o.path, format!("--set: {m}"))
                    .locate("<command line>", ""),
            )
        })?;
    }

    let mut dec = decode::Decoder::new(text);
    let scenario = dec.scenario(&root, default_name);
    let mut diags = std::mem::take(&mut dec.diags);
    if let Some(s) = &scenario {
        diags.extend(validate::check(s, &dec.positions));
    }
    // A value set on the command line has no position in the file.
    let diags: Vec<Diagnostic> = diags
        .into_iter()
        .map(|d| {
            let from_cli = overrides.iter().any(|o| d.path == o.path || d.path.starts_with(&format!("{}.", o.path)));
            if from_cli && d.line == 0 { d.locate("<command line>", "") } else { located(d) }
        })
        .collect();
    let has_error = diags.iter().any(|d| d.severity == Severity::Error);
    match scenario {
        Some(scenario) if !has_error => Ok(Loaded { scenario, warnings: diags }),
        _ => {
            // Warnings would bury the errors; they come back once the
            // errors are fixed.
            let mut diags: Vec<Diagnostic> = diags.into_iter().filter(|d| d.severity == Severity::Error).collect();
            if diags.is_empty() {
                diags.push(located(Diagnostic::new(
                    Severity::Error,
                    Pos::default(),
                    "",
                    "the scenario could not be read",
                )));
            }
            diags.sort_by_key(|d| (d.line, d.column));
            Err(ScenarioError { diagnostics: diags })
        }
    }
}

/// A scenario read from a document built in code (a fleet's host: its
/// type's `host:` and the guest types placed on it, as written), with
/// `overrides` applied as `--set` applies them: decoded and checked as
/// `load_str` does. The first error, when there is one, as `path: message`.
pub fn from_node(mut root: Node, default_name: &str, overrides: &[Override]) -> Result<Scenario, String> {
    for o in overrides {
        let value = Node::from_cli_text(&o.value).map_err(|m| format!("{}: {m}", o.path))?;
        root.set_path(&o.path, value).map_err(|m| format!("{}: {m}", o.path))?;
    }
    let mut dec = decode::Decoder::new("");
    let scenario = dec.scenario(&root, default_name);
    let mut diags = std::mem::take(&mut dec.diags);
    if let Some(s) = &scenario {
        diags.extend(validate::check(s, &dec.positions));
    }
    match (scenario, diags.into_iter().find(|d| d.severity == Severity::Error)) {
        (Some(s), None) => Ok(s),
        (_, Some(d)) => Err(format!("{}: {}", d.path, d.message)),
        (None, None) => Err("it could not be read".into()),
    }
}

/// The checks `load_str` makes, for a scenario built in code (a fleet's
/// host with the guests placed on it): no positions to give.
pub fn check_built(s: &Scenario) -> Vec<Diagnostic> {
    validate::check(s, &decode::Positions::new())
}

fn single(d: Diagnostic) -> ScenarioError {
    ScenarioError { diagnostics: vec![d] }
}
