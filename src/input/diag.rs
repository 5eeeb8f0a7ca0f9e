//! Errors and warnings about a scenario, each pointing at the file, line,
//! column and field path, and showing the bad value.

use std::fmt;

use super::node::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a scenario.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The scenario file (or `<command line>` for `--set` values).
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// Dotted field path, e.g. `host.swap.size` or `guests.web.workload`.
    pub path: String,
    pub message: String,
    /// The source line and a caret under the column, when known.
    #[serde(skip)]
    pub snippet: Option<String>,
}

impl Diagnostic {
    pub fn new(severity: Severity, pos: Pos, path: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: String::new(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: message.into(),
            snippet: None,
        }
    }

    /// Fill in the file name and, where the position is known, the source
    /// snippet.
    pub fn locate(mut self, file: &str, source: &str) -> Self {
        self.file = file.to_string();
        if self.line > 0 {
            self.snippet = snippet(source, self.line, self.column);
        }
        self
    }
}

impl Diagnostic {
    /// The finding on one line, without the source snippet.
    pub fn headline(&self) -> String {
        Diagnostic { snippet: None, ..self.clone() }.to_string()
    }
}

fn snippet(source: &str, line: u64, column: u64) -> Option<String> {
    let text = source.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let gutter = line.to_string();
    let pad = " ".repeat(gutter.len());
    // Columns count characters; tabs keep their width so the caret lines up.
    let lead: String = text
        .chars()
        .take(usize::try_from(column).unwrap_or(0).saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("{pad} |\n{gutter} | {text}\n{pad} | {lead}^"))
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": {}: {}", self.path, self.message)?;
        }
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

/// Loading failed: the errors found (all of them, not just the first) and
/// any warnings gathered on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ScenarioError {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for d in &self.diagnostics {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{d}")?;
        }
        let n = self.errors().count();
        if n > 1 {
            write!(f, "\n{n} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// "Did you mean" for a misspelt key: the closest known name within a small
/// edit distance.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&word, &c.to_ascii_lowercase()), *c))
        .filter(|&(d, c)| d <= (c.len() / 3).max(1) + usize::from(c.len() > 8))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of neighbours as one edit (optimal string
/// alignment), since `swpa` for `swap` is the commonest typo.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["ram", "reserved", "hugepages", "swap", "ksm", "thp"];
        assert_eq!(did_you_mean("swpa", &keys), Some("swap"));
        assert_eq!(did_you_mean("reservd", &keys), Some("reserved"));
        assert_eq!(did_you_mean("hugepage", &keys), Some("hugepages"));
        assert_eq!(did_you_mean("frobnicate", &keys), None);
    }

    #[test]
    fn snippet_points_at_the_column() {
        let src = "a: 1\nhost:\n  ram: 4Q\n";
        let s = snippet(src, 3, 8).unwrap();
        assert_eq!(s, "  |\n3 |   ram: 4Q\n  |        ^");
    }
}
