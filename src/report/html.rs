//! One self-contained HTML page: inline CSS and SVG, no scripts, no
//! network. Run and sweep reports fill a [`Page`] and render it.

use std::fmt::Write as _;

/// A report page.
pub struct Page {
    pub title: String,
    /// The scenario's own description.
    pub description: String,
    /// The figures a reader wants first, as (label, value).
    pub key_numbers: Vec<(String, String)>,
    pub sections: Vec<Section>,
    /// Small print at the end: what made the page (version, seed, files).
    pub footer: String,
}

pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

pub enum Block {
    Paragraph(String),
    /// Warnings stand out.
    Warning(String),
    /// An inline SVG plot: its id (unique on the page), caption and SVG.
    Figure {
        id: String,
        caption: String,
        svg: String,
    },
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// `&`, `<`, `>`, `"` and `'` escaped for HTML text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .1em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #dde1e7;padding-bottom:.2em}
p.desc{color:#465066;white-space:pre-wrap;margin-top:.3em}
.keys{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;margin:18px 0}
.key{background:#eef3fb;border-radius:8px;padding:10px 12px}.key b{display:block;font-size:1.35em}.key span{color:#465066;font-size:.85em}
figure{margin:18px 0}figure svg{width:100%;height:auto;border:1px solid #e3e6eb;border-radius:6px}
figcaption{color:#465066;font-size:.9em;margin-top:4px}
table{border-collapse:collapse;font-size:.88em;margin:10px 0;width:100%}th,td{border-bottom:1px solid #e3e6eb;padding:4px 8px;text-align:right}td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f0f2f5}
.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:8px 12px;margin:10px 0}
footer{color:#6b7385;font-size:.8em;margin-top:36px}
";

/// Give a plot's root `<svg>` its class, id and accessible name.
fn tag_svg(svg: &str, id: &str, caption: &str) -> String {
    let attrs = format!(r#"<svg class="plot" id="{}" role="img" aria-label="{}" "#, escape(id), escape(caption));
    match svg.find("<svg") {
        Some(at) => format!("{}{}{}", &svg[..at], attrs, &svg[at + 4..].trim_start()),
        None => svg.to_string(),
    }
}

pub fn render(page: &Page) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
        escape(&page.title),
        escape(&page.title)
    );
    if !page.description.is_empty() {
        let _ = writeln!(h, "<p class=\"desc\">{}</p>", escape(&page.description));
    }
    if !page.key_numbers.is_empty() {
        h.push_str("<div class=\"keys\">\n");
        for (label, value) in &page.key_numbers {
            let _ = writeln!(h, "<div class=\"key\"><b>{}</b><span>{}</span></div>", escape(value), escape(label));
        }
        h.push_str("</div>\n");
    }
    for s in &page.sections {
        let _ = writeln!(h, "<section>\n<h2>{}</h2>", escape(&s.heading));
        for b in &s.blocks {
            match b {
                Block::Paragraph(t) => {
                    let _ = writeln!(h, "<p>{}</p>", escape(t));
                }
                Block::Warning(t) => {
                    let _ = writeln!(h, "<div class=\"warn\">{}</div>", escape(t));
                }
                Block::Figure { id, caption, svg } => {
                    let _ = writeln!(
                        h,
                        "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
                        tag_svg(svg, id, caption),
                        escape(caption)
                    );
                }
                Block::Table { head, rows } => {
                    h.push_str("<table>\n<thead><tr>");
                    for c in head {
                        let _ = write!(h, "<th>{}</th>", escape(c));
                    }
                    h.push_str("</tr></thead>\n<tbody>\n");
                    for r in rows {
                        h.push_str("<tr>");
                        for c in r {
                            let _ = write!(h, "<td>{}</td>", escape(c));
                        }
                        h.push_str("</tr>\n");
                    }
                    h.push_str("</tbody>\n</table>\n");
                }
            }
        }
        h.push_str("</section>\n");
    }
    let _ = write!(h, "<footer>{}</footer>\n</main>\n</body>\n</html>\n", escape(&page.footer));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    // The five characters HTML's syntax gives meaning to in text and
    // attribute values (HTML Living Standard, 13.1.2 and 13.5).
    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn plots_get_their_class_and_id() {
        let page = Page {
            title: "t <1>".into(),
            description: String::new(),
            key_numbers: vec![],
            sections: vec![Section {
                heading: "h".into(),
                blocks: vec![Block::Figure {
                    id: "mem".into(),
                    caption: "memory".into(),
                    svg: r#"<svg width="10" height="10"></svg>"#.into(),
                }],
            }],
            footer: String::new(),
        };
        let html = render(&page);
        assert!(html.contains(r#"<svg class="plot" id="mem" role="img" aria-label="memory" width="10""#), "{html}");
        assert!(html.contains("<title>t &lt;1&gt;</title>"));
        assert!(!html.contains("<script"));
    }
}
