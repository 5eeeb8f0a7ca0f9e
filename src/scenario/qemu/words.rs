//! The words of a command line and where each came from: shell-style
//! splitting into words with the input offset of every byte kept, the
//! comma-separated `key=value` items of an option argument (`,,` for a
//! comma), and QEMU's spellings of booleans and whole numbers in them.

use std::ops::Range;

use super::QemuError;

/// A byte range of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Text after shell unquoting, with the input offset of every byte so that
/// an error about any part of it can point into the original string.
#[derive(Debug, Clone, Default)]
pub(super) struct Text {
    pub(super) s: String,
    /// `map[i]` is the input offset of byte `i` of `s`.
    map: Vec<usize>,
    /// The whole input range this text was read from (quotes included).
    pub(super) span: Span,
}

impl Text {
    /// Append `c`, read at input offset `at`.
    fn push(&mut self, c: char, at: usize) {
        self.map.extend((0..c.len_utf8()).map(|k| at + k));
        self.s.push(c);
    }

    /// Append the character at byte `j` of `src`, keeping its offsets.
    fn push_from(&mut self, src: &Text, j: usize, c: char) {
        match src.map.get(j..j + c.len_utf8()) {
            Some(offsets) => self.map.extend_from_slice(offsets),
            None => self.map.extend((0..c.len_utf8()).map(|_| src.span.end)),
        }
        self.s.push(c);
    }

    /// Close a text built with `push_from`: its span runs from its first to
    /// its last character, or sits at `at` when it is empty.
    fn seal(mut self, at: usize) -> Text {
        self.span = match (self.map.first(), self.map.last()) {
            (Some(&a), Some(&b)) => Span { start: a, end: b + 1 },
            _ => Span { start: at, end: at },
        };
        self
    }

    /// The part of this text at byte range `r` (which must fall on character
    /// boundaries; anything else gives an empty text).
    fn sub(&self, r: Range<usize>) -> Text {
        let at = self.map.get(r.start).copied().unwrap_or(self.span.end);
        match (self.s.get(r.clone()), self.map.get(r)) {
            (Some(s), Some(map)) => Text { s: s.to_string(), map: map.to_vec(), span: Span::default() }.seal(at),
            _ => Text::default().seal(at),
        }
    }
}

/// Split a command line into words the way a POSIX shell does: blanks
/// separate words, single quotes keep everything literally, double quotes
/// keep everything but `\"`, `\\`, `\$` and `` \` ``, a backslash outside
/// quotes escapes the next character, and backslash-newline joins lines so
/// a command pasted from a script reads as one line.
pub(super) fn tokenize(src: &str) -> Result<Vec<Text>, QemuError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else { break };
        let mut word = Text::default();
        let mut quoted = false;
        while let Some((i, c)) = chars.next_if(|&(_, c)| !c.is_whitespace()) {
            match c {
                '\'' | '"' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            Some((_, q)) if q == c => break,
                            Some((j, '\\')) if c == '"' => match chars.peek() {
                                Some(&(_, '\n')) => {
                                    chars.next();
                                }
                                Some(&(k, e)) if matches!(e, '"' | '\\' | '$' | '`') => {
                                    chars.next();
                                    word.push(e, k);
                                }
                                _ => word.push('\\', j),
                            },
                            Some((j, d)) => word.push(d, j),
                            None => {
                                return Err(QemuError {
                                    token: src.get(i..).unwrap_or_default().to_string(),
                                    offset: i,
                                    message: format!(
                                        "unterminated {c} quote: the quote opened here is never closed; \
                                         close it or remove it"
                                    ),
                                });
                            }
                        }
                    }
                }
                '\\' => match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, '\r')) if chars.peek().is_some_and(|&(_, n)| n == '\n') => {
                        chars.next();
                    }
                    Some((j, d)) => word.push(d, j),
                    None => word.push('\\', i),
                },
                _ => word.push(c, i),
            }
        }
        let end = chars.peek().map_or(src.len(), |&(i, _)| i);
        if quoted || !word.s.is_empty() {
            word.span = Span { start, end };
            out.push(word);
        }
    }
    Ok(out)
}

/// One `key=value` (or bare `value`) element of a comma-separated argument.
pub(super) struct Item {
    pub(super) key: Option<Text>,
    pub(super) value: Text,
    pub(super) whole: Text,
}

/// Split an option argument the way QemuOpts and keyval do: on commas, with
/// `,,` standing for a comma inside a value.
pub(super) fn split_items(arg: &Text) -> Vec<Item> {
    let mut items = Vec::new();
    let mut cur = Text::default();
    let mut chars = arg.s.char_indices().peekable();
    let finish = |items: &mut Vec<Item>, cur: Text, at: usize| {
        let whole = cur.seal(at);
        let item = match whole.s.find('=') {
            Some(eq) => Item { key: Some(whole.sub(0..eq)), value: whole.sub(eq + 1..whole.s.len()), whole },
            None => Item { key: None, value: whole.clone(), whole },
        };
        items.push(item);
    };
    while let Some((j, c)) = chars.next() {
        if c == ',' {
            if chars.next_if(|&(_, n)| n == ',').is_some() {
                cur.push_from(arg, j, ',');
                continue;
            }
            let at = arg.map.get(j).copied().unwrap_or(arg.span.end);
            finish(&mut items, std::mem::take(&mut cur), at);
        } else {
            cur.push_from(arg, j, c);
        }
    }
    // A trailing comma leaves nothing behind, as in QEMU.
    if !cur.s.is_empty() || items.is_empty() {
        finish(&mut items, cur, arg.span.end);
    }
    items
}

/// Where to point for a bad value: the value, or the whole `key=` when the
/// value is empty.
pub(super) fn value_span(item: &Item) -> Span {
    if item.value.s.is_empty() { item.whole.span } else { item.value.span }
}

/// QEMU's boolean spellings (`qapi_bool_parse`), case-sensitive as there.
pub(super) fn qapi_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// An unsigned number as `qemu_strtou64(..., 0)` reads it: decimal, `0x`
/// hex, or octal with a leading zero.
pub(super) fn parse_uint(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(o) = s.strip_prefix('0').filter(|o| !o.is_empty()) {
        (o, 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fails, gib, ok};

    // QEMU's argv comes from a shell: quotes group, backslashes escape, and a
    // backslash-newline continues the line.
    #[test]
    fn shell_quoting() {
        assert_eq!(ok("-mem-path '/mnt/huge pages/vm'").mem_path.as_deref(), Some("/mnt/huge pages/vm"));
        assert_eq!(ok(r#"-mem-path "/srv/a \"b\" c""#).mem_path.as_deref(), Some(r#"/srv/a "b" c"#));
        assert_eq!(ok(r"-mem-path /srv/a\ b").mem_path.as_deref(), Some("/srv/a b"));
        let q = ok("qemu-system-x86_64 \\\n  -m 4G \\\n  -mem-prealloc");
        assert_eq!((q.memory, q.prealloc), (gib(4), Some(true)));
        assert_eq!(ok("-m '4'G").memory, gib(4));
    }

    // A shell refuses an unclosed quote; so do we, pointing at the quote.
    #[test]
    fn unterminated_quote_is_refused() {
        let e = fails("-m 4G -mem-path '/dev/hugepages");
        assert_eq!(e.offset, 16);
        assert!(e.message.contains("unterminated"), "{}", e.message);
        let e = fails("-name \"vm");
        assert_eq!(e.offset, 6);
    }

    // keyval: ",," is a literal comma in a value; a later key wins.
    #[test]
    fn keyval_comma_escape_and_last_key_wins() {
        let q = ok("-object memory-backend-file,id=m,size=1G,mem-path=/srv/a,,b,size=2G -machine memory-backend=m");
        assert_eq!((q.mem_path.as_deref(), q.memory), (Some("/srv/a,b"), gib(2)));
    }

    // Offsets are bytes and stay right after multi-byte characters.
    #[test]
    fn offsets_after_unicode() {
        let line = "-name 'gäst é' -m 4Q";
        let e = fails(line);
        assert_eq!(e.token, "4Q");
        assert_eq!(e.offset, line.find("4Q").unwrap());
        let line = "-mem-path /srv/é -object memory-backend-ram,id=é,size=1G";
        let e = fails(line);
        assert_eq!(e.token, "id=é");
    }
}
