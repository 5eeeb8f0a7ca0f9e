//! What the reader has to say about a document: a [`Warning`] for what the
//! model cannot represent, an [`ImportError`] for what libvirt refuses or
//! what cannot be read, each naming its file, element and value, and the
//! line:column it points at (counted as roxmltree counts them, also for
//! roxmltree's own errors).

use std::fmt;

use roxmltree::Node;
use serde::Serialize;

use super::document::Reader;

/// Something the model cannot represent, or that the reader changed the
/// way libvirt would, with the place it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The file label.
    pub file: String,
    /// A readable path such as `domain/memtune/min_guarantee` (an
    /// attribute ends in `/@name`).
    pub element: String,
    pub line: u32,
    pub column: u32,
    /// The value at issue, as written.
    pub value: Option<String>,
    pub message: String,
}

/// Why a domain could not be read. `line` and `column` are 0 when the
/// problem has no place in a document (a file that cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    pub file: String,
    /// A readable path such as `domain/memory`; empty when the error is
    /// about the whole document or file.
    pub element: String,
    pub line: u32,
    pub column: u32,
    /// The offending value, as written.
    pub value: Option<String>,
    pub message: String,
}

fn write_finding(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    element: &str,
    line: u32,
    column: u32,
    value: Option<&str>,
    message: &str,
) -> fmt::Result {
    write!(f, "{file}")?;
    if line > 0 {
        write!(f, ":{line}:{column}")?;
    }
    if !element.is_empty() {
        write!(f, ": {element}")?;
    }
    if let Some(v) = value {
        write!(f, " {v:?}")?;
    }
    write!(f, ": {message}")
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_finding(f, &self.file, &self.element, self.line, self.column, self.value.as_deref(), &self.message)
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_finding(f, &self.file, &self.element, self.line, self.column, self.value.as_deref(), &self.message)
    }
}

impl ImportError {
    pub fn file_only(file: &str, message: impl Into<String>) -> Self {
        ImportError {
            file: file.to_string(),
            element: String::new(),
            line: 0,
            column: 0,
            value: None,
            message: message.into(),
        }
    }
}

/// A roxmltree error as an [`ImportError`] with its position.
pub(super) fn xml_error(text: &str, label: &str, e: &roxmltree::Error) -> ImportError {
    let (line, column, message) = match e {
        roxmltree::Error::DtdDetected => {
            // roxmltree gives 1:1 for this one; point at the declaration.
            let at = text.find("<!DOCTYPE").unwrap_or(0);
            let (line, column) = line_column(text, at);
            (
                line,
                column,
                "a document type declaration (<!DOCTYPE ...>) is not accepted: libvirt domain XML has none, \
                 and refusing it keeps entity expansion (billion laughs, entity loops) out"
                    .to_string(),
            )
        }
        other => {
            let pos = other.pos();
            (pos.row, pos.col, format!("malformed XML: {other}"))
        }
    };
    ImportError { file: label.to_string(), element: String::new(), line, column, value: None, message }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}

impl<'a, 'i: 'a> Reader<'a, 'i> {
    // -- places ------------------------------------------------------------

    /// 1-based line and column (in characters) of a byte offset, counted
    /// as roxmltree counts them for its own errors.
    fn pos(&self, offset: usize) -> (u32, u32) {
        let text = self.doc.input_text();
        let starts = self
            .line_starts
            .get_or_init(|| std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect());
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts[line - 1];
        let column = text.get(start..offset.min(text.len())).map_or(0, |l| l.chars().count()) + 1;
        (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
    }

    /// Where an element starts.
    fn node_pos(&self, n: Node) -> (u32, u32) {
        self.pos(n.range().start)
    }

    /// Where an element's text starts (the element itself when empty).
    pub(super) fn text_pos(&self, n: Node) -> (u32, u32) {
        match n.descendants().find(|d| d.is_text()) {
            Some(t) => self.pos(t.range().start),
            None => self.node_pos(n),
        }
    }

    /// Where an attribute's value starts (the element when it is missing).
    pub(super) fn attr_pos(&self, n: Node, name: &str) -> (u32, u32) {
        match n.attribute_node(name) {
            Some(a) => self.pos(a.range_value().start),
            None => self.node_pos(n),
        }
    }

    /// `domain/devices/memory`, with `/@name` for an attribute.
    pub(super) fn path(n: Node, attr: Option<&str>) -> String {
        let mut names: Vec<&str> = n.ancestors().filter(|a| a.is_element()).map(|a| a.tag_name().name()).collect();
        names.reverse();
        let mut p = names.join("/");
        if let Some(a) = attr {
            p.push_str("/@");
            p.push_str(a);
        }
        p
    }

    pub(super) fn error_at(
        &self,
        element: String,
        (line, column): (u32, u32),
        value: Option<&str>,
        message: String,
    ) -> ImportError {
        ImportError { file: self.file.to_string(), element, line, column, value: value.map(str::to_string), message }
    }

    /// An error about an element (its text when `value` is given).
    pub(super) fn node_error(&self, n: Node, value: Option<&str>, message: impl Into<String>) -> ImportError {
        let pos = if value.is_some() { self.text_pos(n) } else { self.node_pos(n) };
        self.error_at(Self::path(n, None), pos, value, message.into())
    }

    pub(super) fn attr_error(&self, n: Node, attr: &str, message: impl Into<String>) -> ImportError {
        self.error_at(Self::path(n, Some(attr)), self.attr_pos(n, attr), n.attribute(attr), message.into())
    }

    pub(super) fn warn_at(
        &mut self,
        element: String,
        (line, column): (u32, u32),
        value: Option<&str>,
        message: String,
    ) {
        let w =
            Warning { file: self.file.to_string(), element, line, column, value: value.map(str::to_string), message };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    pub(super) fn warn_node(&mut self, n: Node, value: Option<&str>, message: impl Into<String>) {
        let pos = self.node_pos(n);
        self.warn_at(Self::path(n, None), pos, value, message.into());
    }

    pub(super) fn warn_attr(&mut self, n: Node, attr: &str, message: impl Into<String>) {
        let pos = self.attr_pos(n, attr);
        self.warn_at(Self::path(n, Some(attr)), pos, n.attribute(attr), message.into());
    }
}

#[cfg(test)]
mod tests {
    use std::cell::OnceCell;
    use std::time::{Duration, Instant};

    use roxmltree::Document;

    use super::super::read_domain;
    use super::super::testing::{GIB, read, warning};
    use super::*;
    use crate::units::ByteSize;

    /// The reader's own line index counts as roxmltree does, multi-byte
    /// characters included.
    #[test]
    fn positions_match_roxmltrees() {
        let text = "<domain type='kvm'>\n  <name>gäst-\u{1F600}</name>\n\t<memory unit='KiB'>1</memory>\n</domain>";
        let doc = Document::parse(text).unwrap();
        let reader = Reader { doc: &doc, file: "p.xml", warnings: Vec::new(), line_starts: OnceCell::new() };
        for offset in 0..=text.len() {
            if !text.is_char_boundary(offset) {
                continue;
            }
            let p = doc.text_pos_at(offset);
            assert_eq!(reader.pos(offset), (p.row, p.col), "offset {offset}");
            assert_eq!(line_column(text, offset), (p.row, p.col), "offset {offset}");
        }
    }

    // -- bad documents ------------------------------------------------------

    #[test]
    fn malformed_xml_gives_roxmltree_position() {
        let e = read_domain("<domain type='kvm'>\n  <name>g</name>\n  <memory>1</memory\n</domain>", "bad.xml")
            .unwrap_err();
        assert_eq!(e.file, "bad.xml");
        assert_eq!(e.line, 4);
        assert!(e.message.starts_with("malformed XML"), "{e}");
        let e = read_domain("", "empty.xml").unwrap_err();
        assert!(e.message.starts_with("malformed XML"), "{e}");
    }

    /// roxmltree with a DTD allowed already stops both with
    /// `EntityReferenceLoop`; the reader does not allow a DTD at all, so
    /// neither gets that far. Either way: an error, at once.
    #[test]
    fn entity_bombs_fail_fast_and_cleanly() {
        let mut laughs = String::from("<?xml version='1.0'?>\n<!DOCTYPE domain [\n <!ENTITY l0 'lol'>\n");
        for i in 1..10 {
            let prev = format!("&l{};", i - 1);
            laughs.push_str(&format!(" <!ENTITY l{i} '{}'>\n", prev.repeat(10)));
        }
        laughs.push_str("]>\n<domain type='kvm'><name>&l9;</name><memory>1024</memory></domain>\n");
        let looped = "<!DOCTYPE domain [ <!ENTITY a '&b;'> <!ENTITY b '&a;'> ]>\n\
                      <domain type='kvm'><name>&a;</name><memory>1024</memory></domain>";
        for (text, what) in [(laughs.as_str(), "billion laughs"), (looped, "entity loop")] {
            let start = Instant::now();
            let e = read_domain(text, "bomb.xml").unwrap_err();
            assert!(start.elapsed() < Duration::from_secs(1), "{what} took {:?}", start.elapsed());
            assert!(e.message.contains("document type declaration"), "{what}: {e}");
            assert!(e.line >= 1, "{what}: {e}");
        }
        // The line of the declaration, not 1:1 regardless.
        let e = read_domain("<?xml version='1.0'?>\n<!DOCTYPE domain>\n<domain/>", "d.xml").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
    }

    #[test]
    fn warnings_name_element_and_position() {
        let d = read(
            "  <memory unit='GiB'>4</memory>\n\
             \x20 <memtune>\n\
             \x20   <min_guarantee unit='GiB'>1</min_guarantee>\n\
             \x20 </memtune>\n\
             \x20 <numatune>\n\
             \x20   <memory mode='strict' nodeset='0'/>\n\
             \x20 </numatune>",
        );
        assert_eq!(d.memtune.min_guarantee, Some(ByteSize::gib(1)));
        let w = warning(&d, "domain/memtune/min_guarantee");
        assert_eq!((w.line, w.column, w.value.as_deref()), (5, 31, Some("1")));
        assert!(w.message.contains("refuses min_guarantee"), "{w}");
        let w = warning(&d, "domain/numatune/memory");
        assert_eq!((w.line, w.column), (8, 5));
        assert_eq!(w.value.as_deref(), Some("mode=strict nodeset=0"));
        assert!(w.to_string().starts_with("t.xml:8:5: domain/numatune/memory"), "{w}");
        // The min_guarantee is not in memory; the guest is still 4 GiB.
        assert_eq!(d.memory.ram_bytes(), 4 * GIB);
    }
}
