//! Where a finding points: the reader's line index (counted as roxmltree
//! counts, multi-byte characters included), element and attribute paths,
//! and the reader's errors and warnings placed there.

use roxmltree::Node;

use super::document::Reader;
use super::findings::{ImportError, Warning};

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
    use crate::import::libvirt::findings::line_column;
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
