//! What the reader has to say about a document: a [`Warning`] for what the
//! model cannot represent, an [`ImportError`] for what libvirt refuses or
//! what cannot be read, each naming its file, element and value, and the
//! line:column it points at (counted as roxmltree counts them, also for
//! roxmltree's own errors).

use std::fmt;

use serde::Serialize;

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
pub(super) fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}
