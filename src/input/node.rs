//! The YAML document as a tree of values that remember where they were
//! written. Decoding walks this tree (so every error can name the line,
//! column and field path), and `--set PATH=VALUE` edits it before decoding.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a value was written: 1-based line and column, 0 when unknown
/// (values given on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    fn of<T>(s: &Spanned<T>) -> Pos {
        Pos { line: s.referenced.line(), column: s.referenced.column() }
    }
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node { value, pos }
    }

    /// What kind of YAML value this is, for "expected X, found Y" errors.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as the user wrote it, for error messages.
    pub fn show(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(v) => format!("a list of {}", v.len()),
            Value::Map(_) => "a mapping".into(),
        }
    }

    /// Scalars as text: units are parsed from strings, and a YAML integer or
    /// float (`512`, `0.3`) is read as the same text.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Parse a `--set` value: YAML syntax, so `true`, `4G`, `[a, b]` and
    /// `{size: 2M}` all work.
    pub fn from_cli_text(text: &str) -> Result<Node, String> {
        let parsed: Node = if text.trim().is_empty() {
            Node::new(Value::Str(String::new()), Pos::default())
        } else {
            serde_saphyr::from_str_with_options(text, parse_options())
                .map_err(|e| first_line(&e.without_snippet().to_string()))?
        };
        Ok(parsed.forget_positions())
    }

    fn forget_positions(mut self) -> Node {
        self.pos = Pos::default();
        self.value = match self.value {
            Value::Seq(v) => Value::Seq(v.into_iter().map(Node::forget_positions).collect()),
            Value::Map(m) => Value::Map(
                m.into_iter().map(|(k, v)| (Key { name: k.name, pos: Pos::default() }, v.forget_positions())).collect(),
            ),
            other => other,
        };
        self
    }

    /// Replace (or add) the value at a dotted path such as `host.ksm.run` or
    /// `guests.web.count`. In a list, a segment matches an item whose
    /// `name` equals it, or an item by index.
    pub fn set_path(&mut self, path: &str, new: Node) -> Result<(), String> {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(format!("bad path {path:?}: empty segment"));
        }
        let mut cur = self;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let here = segments[..i].join(".");
            let where_ = if here.is_empty() { "the top level".to_string() } else { format!("`{here}`") };
            if matches!(cur.value, Value::Null) {
                cur.value = Value::Map(Vec::new());
            }
            let kind = cur.kind();
            match &mut cur.value {
                Value::Map(entries) => {
                    let idx = match entries.iter().position(|(k, _)| k.name == *seg) {
                        Some(idx) => idx,
                        None => {
                            entries.push((
                                Key { name: seg.to_string(), pos: Pos::default() },
                                Node::new(Value::Null, Pos::default()),
                            ));
                            entries.len() - 1
                        }
                    };
                    if last {
                        entries[idx].1 = new;
                        return Ok(());
                    }
                    cur = &mut entries[idx].1;
                }
                Value::Seq(items) => {
                    let idx = items
                        .iter()
                        .position(|n| matches!(n.get("name"), Some(Node { value: Value::Str(s), .. }) if s == seg))
                        .or_else(|| seg.parse::<usize>().ok().filter(|&i| i < items.len()));
                    let Some(idx) = idx else {
                        let names: Vec<String> =
                            items.iter().filter_map(|n| n.get("name").and_then(Node::scalar_text)).collect();
                        return Err(format!(
                            "no item named {seg:?} in {where_} (items: {})",
                            if names.is_empty() { "none named".into() } else { names.join(", ") }
                        ));
                    };
                    if last {
                        items[idx] = new;
                        return Ok(());
                    }
                    cur = &mut items[idx];
                }
                _ => {
                    return Err(format!("{where_} is {}, not a mapping or list, so it has no `{seg}`", kind));
                }
            }
        }
        Ok(())
    }
}

/// Parser settings shared by files and `--set` values.
pub fn parse_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    // `yes`/`no`/`on`/`off` stay strings (YAML 1.2 core schema), so they
    // reach our own "expected true or false" message.
    o.strict_booleans = true;
    o
}

/// serde-saphyr prefixes messages with "error: line L column C: "; we print
/// the position ourselves.
/// Parse a YAML document for a checked reader: repeated keys are kept (the
/// decoder reports them with their field path and both positions); a
/// syntax error comes back as its position and first line.
pub fn parse_document(text: &str) -> Result<Node, (Pos, String)> {
    let mut opts = parse_options();
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    serde_saphyr::from_str_with_options(text, opts).map_err(|e| {
        let pos = e.location().map_or(Pos::default(), |l| Pos { line: l.line(), column: l.column() });
        (pos, format!("not valid YAML: {}", first_line(&e.without_snippet().to_string())))
    })
}

pub fn first_line(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.find(": ") {
        Some(i) if line.starts_with("line ") => line[i + 2..].to_string(),
        _ => line.to_string(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        let pos = Pos::of(&s);
        Ok(Node { value: s.value, pos })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = a.next_key::<Spanned<KeyText>>()? {
            let pos = Pos::of(&k);
            let v = a.next_value::<Node>()?;
            entries.push((Key { name: k.value.0, pos }, v));
        }
        Ok(Value::Map(entries))
    }
}

/// Keys are scalars; `1: x` and `true: x` become the keys "1" and "true".
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a plain key (a word, not a list or mapping)")
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyText, E> {
                Ok(KeyText(s.to_string()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<KeyText, E> {
                Ok(KeyText(b.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}
