//! The legend: drawn by us in a panel right of the plot, so it never
//! covers data and copes with any number of entries (columns, then "… N
//! more").

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Key {
    Line(SeriesStyle, bool),
    Dashed(RGBColor, (i32, i32)),
    Swatch(RGBColor),
    Marker(SeriesStyle),
    Ring,
}

#[derive(Debug, Clone)]
pub(super) struct LegendEntry {
    pub(super) key: Key,
    pub(super) label: String,
}

pub(super) const LEGEND_MAX_W: i32 = 330;
pub(super) const LEGEND_KEY_W: i32 = 30;
pub(super) const LEGEND_PAD: i32 = 10;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct LegendLayout {
    pub(super) size: f64,
    pub(super) row_h: i32,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) col_w: i32,
    /// Entries drawn; the rest are summarised as "… N more".
    pub(super) shown: usize,
    /// Total panel width including an 8 px gap either side; 0 without entries.
    pub(super) width: i32,
}

pub(super) fn layout_legend(entries: &[LegendEntry], avail_h: i32) -> LegendLayout {
    let n = entries.len();
    if n == 0 {
        return LegendLayout { size: LEGEND_SIZE, row_h: 0, rows: 0, cols: 0, col_w: 0, shown: 0, width: 0 };
    }
    let mut size = LEGEND_SIZE;
    let mut row_h = 24;
    let mut max_rows = ((avail_h - 2 * LEGEND_PAD) / row_h).max(1) as usize;
    if n > max_rows {
        size = SMALL_LEGEND_SIZE;
        row_h = 19;
        max_rows = ((avail_h - 2 * LEGEND_PAD) / row_h).max(1) as usize;
    }
    let label_w = entries.iter().map(|e| text_width(&e.label, size)).max().unwrap_or(0).min(230);
    let natural_col_w = LEGEND_KEY_W + 8 + label_w + 14;
    let min_col_w = 100;
    let max_cols = ((LEGEND_MAX_W - 2 * LEGEND_PAD) / min_col_w).max(1) as usize;
    let cols = n.div_ceil(max_rows).clamp(1, max_cols);
    let col_w = natural_col_w.min((LEGEND_MAX_W - 2 * LEGEND_PAD) / cols as i32);
    let capacity = max_rows * cols;
    let shown = if n > capacity { capacity - 1 } else { n };
    let rows = if n > capacity { max_rows } else { n.div_ceil(cols) };
    LegendLayout { size, row_h, rows, cols, col_w, shown, width: cols as i32 * col_w + 2 * LEGEND_PAD + 16 }
}

pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    l: &LegendLayout,
    top: i32,
) -> Result<(), PlotError> {
    if l.rows == 0 {
        return Ok(());
    }
    let left = 8;
    let right = left + l.cols as i32 * l.col_w + 2 * LEGEND_PAD;
    let bottom = top + l.rows as i32 * l.row_h + 2 * LEGEND_PAD - 4;
    area.draw(&Rectangle::new([(left, top), (right, bottom)], WHITE.filled())).map_err(draw_err)?;
    area.draw(&Rectangle::new([(left, top), (right, bottom)], FRAME.stroke_width(1))).map_err(draw_err)?;
    let label_w = l.col_w - LEGEND_KEY_W - 8 - 6;
    let mut cells: Vec<(Option<&Key>, String)> =
        entries[..l.shown].iter().map(|e| (Some(&e.key), fit_text(&e.label, l.size, label_w))).collect();
    if l.shown < entries.len() {
        cells.push((None, format!("… {} more", entries.len() - l.shown)));
    }
    for (i, (key, label)) in cells.into_iter().enumerate() {
        let (col, row) = (i / l.rows, i % l.rows);
        let x = left + LEGEND_PAD + col as i32 * l.col_w;
        let y = top + LEGEND_PAD + row as i32 * l.row_h + l.row_h / 2 - 2;
        if let Some(key) = key {
            draw_key(area, key, (x, y))?;
        }
        let style = text_style(l.size, &TEXT, HPos::Left, VPos::Center);
        area.draw(&Text::new(label, (x + LEGEND_KEY_W + 8, y), style)).map_err(draw_err)?;
    }
    Ok(())
}

pub(super) fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    key: &Key,
    (x, y): (i32, i32),
) -> Result<(), PlotError> {
    let mid = (x + LEGEND_KEY_W / 2, y);
    let line = vec![(x, y), (x + LEGEND_KEY_W, y)];
    match key {
        Key::Line(s, with_marker) => {
            draw_pixel_path(area, line, s.colour, 2, s.dash)?;
            if *with_marker {
                draw_marker(area, s.shape, mid, s.colour, 4)?;
            }
        }
        Key::Dashed(colour, dash) => draw_pixel_path(area, line, *colour, 2, Some(*dash))?,
        Key::Swatch(colour) => {
            let r = [(x + 2, y - 7), (x + LEGEND_KEY_W - 2, y + 7)];
            area.draw(&Rectangle::new(r, colour.mix(0.8).filled())).map_err(draw_err)?;
            area.draw(&Rectangle::new(r, colour.stroke_width(1))).map_err(draw_err)?;
        }
        Key::Marker(s) => draw_marker(area, s.shape, mid, s.colour, 5)?,
        Key::Ring => {
            area.draw(&Circle::new(mid, 7, TEXT.stroke_width(2))).map_err(draw_err)?;
        }
    }
    Ok(())
}

pub(super) fn draw_pixel_path<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: Vec<(i32, i32)>,
    colour: RGBColor,
    width: u32,
    dash: Option<(i32, i32)>,
) -> Result<(), PlotError> {
    let style = colour.stroke_width(width);
    match dash {
        None => area.draw(&PathElement::new(points, style)),
        Some((d, g)) => area.draw(&DashedPathElement::new(points, d, g, style)),
    }
    .map_err(draw_err)
}

/// A filled marker of the given shape centred on pixel `at`, radius about `r`.
pub(super) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    shape: Shape,
    at: (i32, i32),
    colour: RGBColor,
    r: i32,
) -> Result<(), PlotError> {
    let style = colour.filled();
    let base = EmptyElement::at(at);
    match shape {
        Shape::Circle => area.draw(&(base + Circle::new((0, 0), r as u32, style))),
        Shape::Triangle => area.draw(&(base + TriangleMarker::new((0, 0), r + 1, style))),
        Shape::Square => area.draw(&(base + Rectangle::new([(-r + 1, -r + 1), (r - 1, r - 1)], style))),
        Shape::Diamond => {
            area.draw(&(base + Polygon::new(vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)], style)))
        }
    }
    .map_err(draw_err)
}
