//! Each chart's drawing onto the shared frame: the line chart, the stacked
//! area and the category dot plot.

use super::*;

// ---------------------------------------------------------------------------
// Line chart.

impl LineChart {
    /// The points of each series in plot space, in runs: a point an axis
    /// cannot show (zero on a log axis, say) is dropped and breaks the line
    /// there, so no segment is drawn across it.
    pub(super) fn plot_points(&self, x: Scale, y: Scale) -> Vec<Vec<Vec<(f64, f64)>>> {
        self.series
            .iter()
            .map(|s| {
                let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for &(px, py) in &s.points {
                    match (AxisSpec::to_plot(x, px), AxisSpec::to_plot(y, py)) {
                        (Some(a), Some(b)) => runs.last_mut().expect("one run at least").push((a, b)),
                        _ if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                        _ => {}
                    }
                }
                runs.retain(|r| !r.is_empty());
                runs
            })
            .collect()
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let (xs, ys) = (self.x.scale, self.y.scale);
        let points = self.plot_points(xs, ys);
        let marks: Vec<(f64, f64, &str)> = self
            .marks
            .iter()
            .filter_map(|(mx, my, l)| Some((AxisSpec::to_plot(xs, *mx)?, AxisSpec::to_plot(ys, *my)?, l.as_str())))
            .collect();
        let hlines: Vec<(f64, &str)> =
            self.hlines.iter().filter_map(|(v, l)| Some((AxisSpec::to_plot(ys, *v)?, l.as_str()))).collect();
        let has_data = points.iter().any(|p| !p.is_empty()) || !marks.is_empty();
        let flat = || points.iter().flatten().flatten();

        // Fit in raw values (the axis maps them); plot-space values go back through 10^p.
        let raw = |scale: Scale, p: f64| if scale == Scale::Log { 10f64.powf(p) } else { p };
        let x_vals = flat().map(|p| p.0).chain(marks.iter().map(|m| m.0)).map(|p| raw(xs, p));
        let y_vals = flat()
            .map(|p| p.1)
            .chain(marks.iter().map(|m| m.1))
            .chain(if has_data { hlines.iter().map(|h| h.0).collect() } else { Vec::new() })
            .map(|p| raw(ys, p));
        let x = AxisSpec::fit(xs, x_vals.collect::<Vec<_>>(), 8);
        let y = AxisSpec::fit(ys, y_vals.collect::<Vec<_>>(), 8);

        let mut legend: Vec<LegendEntry> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| LegendEntry { key: Key::Line(series_style(i), self.markers), label: s.label.clone() })
            .collect();
        legend.extend(self.hlines.iter().enumerate().map(|(i, (_, l))| LegendEntry {
            key: Key::Dashed(HLINE_COLOURS[i % HLINE_COLOURS.len()], HLINE_DASH),
            label: l.clone(),
        }));
        legend.extend(self.marks.iter().map(|(_, _, l)| LegendEntry { key: Key::Ring, label: l.clone() }));

        let frame = Frame {
            title: &self.title,
            x: x.clone(),
            y: y.clone(),
            x_title: &self.x.title,
            y_title: &self.y.title,
            legend,
            has_data,
            x_label_h: None,
        };
        draw_frame(root, &frame, |chart| {
            // Reference lines under the data, their labels over it.
            let visible: Vec<(f64, &str, RGBColor)> = self
                .hlines
                .iter()
                .enumerate()
                .filter_map(|(i, (v, l))| {
                    Some((AxisSpec::to_plot(ys, *v)?, l.as_str(), HLINE_COLOURS[i % HLINE_COLOURS.len()]))
                })
                .filter(|(p, _, _)| (y.lo..=y.hi).contains(p))
                .collect();
            for &(p, _, colour) in &visible {
                draw_line(root, chart, &[(x.lo, p), (x.hi, p)], colour, 2, Some(HLINE_DASH))?;
            }
            for (i, runs) in points.iter().enumerate() {
                let s = series_style(i);
                for run in runs {
                    draw_line(root, chart, run, s.colour, 2, s.dash)?;
                }
                if self.markers {
                    let mut at: Vec<(i32, i32)> = runs.iter().flatten().map(|p| chart.backend_coord(p)).collect();
                    at.dedup();
                    for p in at {
                        draw_marker(root, s.shape, p, s.colour, 4)?;
                    }
                }
            }
            for &(p, label, colour) in &visible {
                let (end_x, end_y) = chart.backend_coord(&(x.hi, p));
                draw_note(root, label, (end_x - 6, end_y - 4), HPos::Right, VPos::Bottom, &colour)?;
            }
            let centre = chart.backend_coord(&((x.lo + x.hi) / 2.0, y.lo)).0;
            for &(mx, my, label) in &marks {
                chart.draw_series(std::iter::once(Circle::new((mx, my), 9, TEXT.stroke_width(3)))).map_err(draw_err)?;
                let (cx, cy) = chart.backend_coord(&(mx, my));
                let (at, h) =
                    if cx > centre { ((cx - 12, cy - 10), HPos::Right) } else { ((cx + 12, cy - 10), HPos::Left) };
                draw_note(root, label, at, h, VPos::Bottom, &TEXT)?;
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------
// Stacked area.

/// (x, lower, upper) of one stacked layer at one x.
pub(super) type Band = (f64, f64, f64);

/// Per layer, bottom first: (x, lower, upper) sorted by x, where `upper` of
/// layer k is the sum of layers 0..=k at that x and `lower` is `upper` of
/// layer k-1 (0 for the bottom layer). Points whose x is not finite are
/// dropped from every layer; y values that are not finite count as 0.
pub(super) fn stack_layers(layers: &[Series]) -> Result<Vec<Vec<Band>>, PlotError> {
    let Some(bottom) = layers.first() else { return Ok(Vec::new()) };
    let same_x = |a: &Series| {
        a.points.len() == bottom.points.len()
            && a.points.iter().zip(&bottom.points).all(|(p, q)| p.0.total_cmp(&q.0).is_eq())
    };
    if let Some(bad) = layers.iter().find(|l| !same_x(l)) {
        return Err(PlotError::LayerMismatch { layer: bad.label.clone(), bottom: bottom.label.clone() });
    }
    let mut order: Vec<usize> = (0..bottom.points.len()).filter(|&i| bottom.points[i].0.is_finite()).collect();
    order.sort_by(|&a, &b| bottom.points[a].0.total_cmp(&bottom.points[b].0));
    let mut below = vec![0.0; order.len()];
    let mut out = Vec::with_capacity(layers.len());
    for layer in layers {
        let mut bands = Vec::with_capacity(order.len());
        for (j, &i) in order.iter().enumerate() {
            let (x, y) = layer.points[i];
            let y = if y.is_finite() { y } else { 0.0 };
            bands.push((x, below[j], below[j] + y));
            below[j] += y;
        }
        out.push(bands);
    }
    Ok(out)
}

impl Chart for StackedArea {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let xs = self.x.scale;
        let bands = stack_layers(&self.layers)?;
        // Drop x positions the x axis cannot show (x <= 0 on a log axis).
        let bands: Vec<Vec<Band>> = bands
            .into_iter()
            .map(|b| b.into_iter().filter_map(|(x, lo, hi)| Some((AxisSpec::to_plot(xs, x)?, lo, hi))).collect())
            .collect();
        let has_data = bands.iter().any(|b| !b.is_empty());
        let raw_x = |p: f64| if xs == Scale::Log { 10f64.powf(p) } else { p };
        let x = AxisSpec::fit(xs, bands.iter().flatten().map(|b| raw_x(b.0)).collect::<Vec<_>>(), 8);
        let y_vals: Vec<f64> = bands.iter().flatten().flat_map(|b| [b.1, b.2]).collect();
        let y = AxisSpec::fit(Scale::Linear, y_vals, 8);
        let legend = self
            .layers
            .iter()
            .enumerate()
            .rev()
            .map(|(i, l)| LegendEntry { key: Key::Swatch(series_style(i).colour), label: l.label.clone() })
            .collect();
        let frame = Frame {
            title: &self.title,
            x,
            y,
            x_title: &self.x.title,
            y_title: &self.y.title,
            legend,
            has_data,
            x_label_h: None,
        };
        draw_frame(root, &frame, |chart| {
            for (i, band) in bands.iter().enumerate() {
                if band.is_empty() {
                    continue;
                }
                let colour = series_style(i).colour;
                let mut outline: Vec<(i32, i32)> = band
                    .iter()
                    .map(|&(x, _, hi)| chart.backend_coord(&(x, hi)))
                    .chain(band.iter().rev().map(|&(x, lo, _)| chart.backend_coord(&(x, lo))))
                    .collect();
                outline.dedup();
                root.draw(&Polygon::new(outline, colour.mix(0.75).filled())).map_err(draw_err)?;
                let top: Vec<(f64, f64)> = band.iter().map(|&(x, _, hi)| (x, hi)).collect();
                draw_line(root, chart, &top, colour, 2, None)?;
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------
// Category chart.

/// Horizontal offset of series `i` of `n` inside a category slot one unit wide.
pub(super) fn group_offset(i: usize, n: usize) -> f64 {
    let width = if n > 1 { 0.6 } else { 0.0 };
    (i as f64 + 0.5) / n.max(1) as f64 * width - width / 2.0
}

impl Chart for CategoryChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let n = self.categories.len();
        if let Some((label, values)) = self.series.iter().find(|(_, v)| v.len() != n) {
            return Err(PlotError::CategoryMismatch { series: label.clone(), expected: n, found: values.len() });
        }
        let ys = self.y.scale;
        let points: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (_, values))| {
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(j, &v)| {
                        Some((j as f64 + group_offset(i, self.series.len()), AxisSpec::to_plot(ys, v)?))
                    })
                    .collect()
            })
            .collect();
        let has_data = points.iter().any(|p| !p.is_empty());
        let y = AxisSpec::fit(ys, self.series.iter().flat_map(|(_, v)| v.iter().copied()).collect::<Vec<_>>(), 8);
        let x = AxisSpec::categories(&self.categories);

        // Horizontal labels if they fit their slot, else rotated (reading
        // upwards) and shortened to at most 130 px.
        let legend: Vec<LegendEntry> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (l, _))| LegendEntry { key: Key::Marker(series_style(i)), label: l.clone() })
            .collect();
        let legend_w = layout_legend(&legend, (HEIGHT - TITLE_BAND) as i32 - 16).width;
        let approx_plot_w = WIDTH as i32 - legend_w - 110;
        let slot = approx_plot_w / n.max(1) as i32;
        let widest = self.categories.iter().map(|c| text_width(c, TICK_SIZE)).max().unwrap_or(0);
        let rotate = widest > slot - 8;
        let label_len = if rotate { widest.min(130) } else { slot - 8 };
        let labels: Vec<String> = self.categories.iter().map(|c| fit_text(c, TICK_SIZE, label_len)).collect();
        let x_label_h = if rotate { label_len } else { TICK_SIZE as i32 };
        // Rotated labels need a line height each; with more categories than
        // that allows, label every `every`-th one.
        let every = if rotate { ((TICK_SIZE as i32 + 2) / slot.max(1) + 1) as usize } else { 1 };

        let radius = (slot / 5).clamp(3, 6);

        let frame = Frame {
            title: &self.title,
            x: x.clone(),
            y: y.clone(),
            x_title: "",
            y_title: &self.y.title,
            legend,
            has_data,
            x_label_h: Some(x_label_h),
        };
        draw_frame(root, &frame, |chart| {
            // Separators between categories, unless they would be a solid fill.
            let separators = if slot >= 16 { n } else { 0 };
            for j in 1..separators {
                let sep = j as f64 - 0.5;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(sep, y.lo), (sep, y.hi)],
                        GRID.stroke_width(1),
                    )))
                    .map_err(draw_err)?;
            }
            for (j, label) in labels.iter().enumerate().step_by(every) {
                let (cx, cy) = chart.backend_coord(&(j as f64, y.lo));
                let top = cy + 2 * TICK_MARK;
                let style = if rotate {
                    text_style(TICK_SIZE, &TEXT, HPos::Right, VPos::Center).transform(FontTransform::Rotate270)
                } else {
                    text_style(TICK_SIZE, &TEXT, HPos::Center, VPos::Top)
                };
                root.draw(&Text::new(label.clone(), (cx, top), style)).map_err(draw_err)?;
            }
            for (i, pts) in points.iter().enumerate() {
                let s = series_style(i);
                for p in pts {
                    draw_marker(root, s.shape, chart.backend_coord(p), s.colour, radius)?;
                }
            }
            Ok(())
        })
    }
}

/// The RGB buffer as a PNG (8-bit truecolour), written by the `png` crate
/// in memory: same pixels, same bytes. Its fast compressor (fdeflate):
/// at the default level the four charts of a run took 391 million
/// instructions to encode, 15% of a light 16-guest run (the zlib writer
/// also zeroes its 32 KiB buffer for every row), and take 26 million so;
/// the files are about twice as large (40-60 KiB a chart).
pub(super) fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.set_filter(png::FilterType::Paeth);
    let err = |e: png::EncodingError| PlotError::Draw(format!("encoding the PNG: {e}"));
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(rgb).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}
