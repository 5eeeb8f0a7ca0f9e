//! The charts every report draws: line charts (time series, CDFs, sweeps),
//! stacked areas (where the host's memory went) and per-category dot plots
//! (latency percentiles per guest).
//!
//! Each chart is drawn twice through plotters, once into an SVG string for the
//! HTML report and once into an RGB buffer that the `png` crate encodes in
//! memory (plotters can only write PNGs to a file path). Both outputs are pure
//! functions of the chart description: no timestamps, no hash-map order, no
//! system fonts. Text uses DejaVu Sans, compiled into the binary and registered
//! with plotters under the family name `sans-serif`, so a container without
//! fontconfig still gets labelled axes.
//!
//! The SVG carries `width`, `height` and a `viewBox`, no XML declaration and no
//! `id` attributes (plotters 0.3.7 emits none: it clips in software rather than
//! with `<clipPath>`), so several charts can be inlined into one HTML page
//! without renaming anything.
//!
//! Log axes work in log10 space: values that a log axis cannot show (zero,
//! negative, NaN, infinite) are dropped point by point, and a chart with
//! nothing left still renders its frame with a "no data" note.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, FontTransform};

mod axis;
mod charts;
mod legend;

use axis::*;
use charts::*;
use legend::*;

/// Width of every chart, in pixels (PNG) and user units (SVG).
pub const WIDTH: u32 = 900;
/// Height of every chart, in pixels (PNG) and user units (SVG).
pub const HEIGHT: u32 = 540;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Base 10; ticks at 1, 2, 5 × 10^k or at whole decades, depending on the span.
    Log,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// What the axis measures, with its unit: "p99 latency (µs)". Tick labels
    /// are bare numbers (1, 10, 100, 1k, 1M, 0.01), so the unit lives here.
    pub title: String,
    pub scale: Scale,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend.
    pub label: String,
    /// (x, y) pairs, drawn in the order given.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    /// Colours cycle through an 8-colour palette by index; series 8 and later
    /// reuse the colours with a dash pattern (and a different marker shape).
    pub series: Vec<Series>,
    /// Horizontal reference lines, e.g. an SLO: (y value, label); drawn dashed,
    /// labelled on the plot and in the legend. The y range always includes them.
    pub hlines: Vec<(f64, String)>,
    /// Draw a marker at every point (sweeps) or not (time series, CDFs).
    pub markers: bool,
    /// Highlighted points (e.g. a planner's chosen point): (x, y, label),
    /// drawn as a ring with the label beside it and listed in the legend.
    pub marks: Vec<(f64, f64, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackedArea {
    pub title: String,
    pub x: Axis,
    /// Always drawn linear: a stack has to start at zero, which a log axis
    /// cannot show. `Scale::Log` here is ignored.
    pub y: Axis,
    /// The same x values in every layer (in any order, but the same order in
    /// every layer), bottom layer first. The legend lists the top layer first,
    /// as the layers appear on screen.
    pub layers: Vec<Series>,
}

/// Values per category (e.g. p50/p99/p99.9 per guest), drawn as grouped markers
/// on a (usually log) y axis.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryChart {
    pub title: String,
    /// Along the x axis, in this order. Long names are rotated and shortened
    /// with "…" to fit.
    pub categories: Vec<String>,
    pub y: Axis,
    /// (label, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
}

/// One rendered chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// A standalone `<svg>` element, safe to inline into HTML.
    pub svg: String,
    /// A WIDTH × HEIGHT 8-bit RGB PNG file.
    pub png: Vec<u8>,
}

/// Why a chart could not be drawn. None of these depend on the data values
/// (bad values are dropped, empty data gives an empty frame); they are bugs in
/// the caller's chart description or in the build.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The font compiled into the binary did not parse; no chart can be drawn.
    #[error("the embedded font assets/fonts/DejaVuSans.ttf could not be loaded")]
    Font,
    /// Layers of a stacked area must share their x values.
    #[error("stacked-area layer {layer:?} does not have the same x values as the bottom layer {bottom:?}")]
    LayerMismatch { layer: String, bottom: String },
    /// A category chart series must have one value per category.
    #[error("series {series:?} has {found} values for {expected} categories")]
    CategoryMismatch { series: String, expected: usize, found: usize },
    /// plotters reported an error while drawing.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
}

pub fn line_chart(c: &LineChart) -> Result<Figure, PlotError> {
    render(c)
}

pub fn stacked_area(c: &StackedArea) -> Result<Figure, PlotError> {
    render(c)
}

pub fn category_chart(c: &CategoryChart) -> Result<Figure, PlotError> {
    render(c)
}

// ---------------------------------------------------------------------------
// Look: font, sizes, colours. Sizes are plotters font sizes (the font's
// ascent-to-descent height in pixels); the em is about 0.86 of that.

const FAMILY: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf"));

const TITLE_SIZE: f64 = 24.0;
const AXIS_TITLE_SIZE: f64 = 19.0;
const TICK_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 17.0;
const SMALL_LEGEND_SIZE: f64 = 14.0;
const NOTE_SIZE: f64 = 16.0;

/// Height of the band at the top that holds the title (kept even without one,
/// so charts in a report line up).
const TITLE_BAND: u32 = 44;
const TICK_MARK: i32 = 5;

const TEXT: RGBColor = RGBColor(32, 32, 32);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const GRID: RGBColor = RGBColor(218, 218, 218);
const GRID_MINOR: RGBColor = RGBColor(238, 238, 238);
const FRAME: RGBColor = RGBColor(160, 160, 160);

/// Okabe & Ito's colour-blind-safe palette, reordered so the first colours
/// are the most distinct on white and the pale yellow comes last.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Reference lines: dark grey first, then colours unlikely to sit next to the
/// first series.
const HLINE_COLOURS: [RGBColor; 4] =
    [RGBColor(64, 64, 64), RGBColor(213, 94, 0), RGBColor(0, 114, 178), RGBColor(0, 158, 115)];

/// Dash pattern (dash, gap) per trip round the palette; `None` is solid.
const DASHES: [Option<(i32, i32)>; 4] = [None, Some((10, 5)), Some((3, 4)), Some((18, 5))];
const HLINE_DASH: (i32, i32) = (8, 5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Circle,
    Triangle,
    Square,
    Diamond,
}
const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Diamond];

#[derive(Debug, Clone, Copy)]
struct SeriesStyle {
    colour: RGBColor,
    dash: Option<(i32, i32)>,
    shape: Shape,
}

/// Colour cycles every 8 series, dash every 8, shape every 4 with a shift per
/// palette trip, so the first 32 series differ in colour+shape and the first
/// 32 lines in colour+dash.
fn series_style(i: usize) -> SeriesStyle {
    let n = PALETTE.len();
    SeriesStyle {
        colour: PALETTE[i % n],
        dash: DASHES[(i / n) % DASHES.len()],
        shape: SHAPES[(i + i / n) % SHAPES.len()],
    }
}

fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)
}

fn text_style(size: f64, colour: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(size).color(colour).pos(Pos::new(h, v))
}

/// Width plotters will give `text` at `size` (DejaVu metrics).
fn text_width(text: &str, size: f64) -> i32 {
    font(size).box_size(text).map(|(w, _)| w as i32).unwrap_or(0)
}

/// `text`, shortened with "…" until it fits in `max_w` pixels.
fn fit_text(text: &str, size: f64, max_w: i32) -> String {
    if text_width(text, size) <= max_w {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // Binary search for the longest prefix that fits with the ellipsis.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if text_width(&candidate, size) <= max_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return "…".to_string();
    }
    chars[..lo].iter().collect::<String>().trim_end().to_string() + "…"
}

/// Registers the embedded font with plotters, once per process.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

// ---------------------------------------------------------------------------
// Rendering to both backends.

/// A chart that can draw itself onto any plotters backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

fn render<C: Chart>(c: &C) -> Result<Figure, PlotError> {
    ensure_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        c.draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    let rgb = render_rgb(c)?;
    Ok(Figure { svg: finish_svg(svg), png: encode_png(WIDTH, HEIGHT, &rgb)? })
}

/// The chart as a WIDTH × HEIGHT × 3 RGB buffer, row by row from the top.
fn render_rgb<C: Chart>(c: &C) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let mut rgb = vec![255u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        c.draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    Ok(rgb)
}

/// plotters 0.3.7 already writes `viewBox` and no XML declaration; this keeps
/// the inlining guarantee should a later version start writing one.
fn finish_svg(svg: String) -> String {
    match (svg.starts_with("<?xml"), svg.find("?>")) {
        (true, Some(end)) => svg[end + 2..].trim_start().to_string(),
        _ => svg,
    }
}

// ---------------------------------------------------------------------------
// The frame shared by all charts: title band, plotting area with mesh and
// axis titles, legend panel.

type Coords = Cartesian2d<AxisSpec, AxisSpec>;

struct Frame<'t> {
    title: &'t str,
    x: AxisSpec,
    y: AxisSpec,
    x_title: &'t str,
    y_title: &'t str,
    legend: Vec<LegendEntry>,
    /// Whether anything at all will be plotted; if not, a "no data" note.
    has_data: bool,
    /// Set for category charts, which draw their own x labels: the height
    /// those labels need below the axis (their length when rotated).
    x_label_h: Option<i32>,
}

/// Draws the frame, then lets `plot` draw the data into the chart context.
fn draw_frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    f: &Frame<'_>,
    plot: impl FnOnce(&mut ChartContext<'_, DB, Coords>) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    if !f.title.is_empty() {
        let title = fit_text(f.title, TITLE_SIZE, w - 24);
        let style = text_style(TITLE_SIZE, &TEXT, HPos::Center, VPos::Center);
        root.draw(&Text::new(title, (w / 2, TITLE_BAND as i32 / 2 + 2), style)).map_err(draw_err)?;
    }
    let (_, body) = root.split_vertically(TITLE_BAND);
    let body_h = h - TITLE_BAND as i32;
    let legend = layout_legend(&f.legend, body_h - 16);
    let (chart_area, legend_area) = body.split_horizontally(w - legend.width);

    let x_labels = f.x.labels();
    let y_labels = f.y.labels();
    let max_y_label = y_labels.iter().map(|l| text_width(l, TICK_SIZE)).max().unwrap_or(0);
    let max_x_label = x_labels.iter().map(|l| text_width(l, TICK_SIZE)).max().unwrap_or(0);
    let desc_h = (AXIS_TITLE_SIZE * 1.1).ceil() as i32;
    let y_area = desc_h + 12 + max_y_label + 2 * TICK_MARK;
    let x_area = match f.x_label_h {
        Some(rotated) => rotated + 2 * TICK_MARK + 6 + if f.x_title.is_empty() { 0 } else { desc_h + 8 },
        None => (TICK_SIZE as i32) + 2 * TICK_MARK + 10 + desc_h,
    };
    let right_margin = (max_x_label / 2 + 6).max(16);

    let mut chart = ChartBuilder::on(&chart_area)
        .margin_top(10)
        .margin_left(8)
        .margin_bottom(6)
        .margin_right(right_margin)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(f.x.clone(), f.y.clone())
        .map_err(draw_err)?;

    let (px, py) = chart.plotting_area().get_pixel_range();
    let plot_w = px.end - px.start;
    let plot_h = py.end - py.start;
    let x_title = fit_text(f.x_title, AXIS_TITLE_SIZE, plot_w);
    let y_title = fit_text(f.y_title, AXIS_TITLE_SIZE, plot_h);
    {
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(GRID.stroke_width(1))
            .light_line_style(GRID_MINOR.stroke_width(1))
            .axis_style(FRAME.stroke_width(1))
            .set_all_tick_mark_size(TICK_MARK)
            .x_label_style(text_style(TICK_SIZE, &TEXT, HPos::Center, VPos::Top))
            .y_label_style(text_style(TICK_SIZE, &TEXT, HPos::Right, VPos::Center))
            .axis_desc_style(font(AXIS_TITLE_SIZE).color(&TEXT));
        if !x_title.is_empty() {
            mesh.x_desc(x_title);
        }
        if !y_title.is_empty() {
            mesh.y_desc(y_title);
        }
        if f.x.categories.is_some() {
            mesh.disable_x_mesh();
        }
        mesh.draw().map_err(draw_err)?;
    }
    // Close the box on the top and right so the plot reads as a panel.
    let frame = vec![(px.start, py.start), (px.end, py.start), (px.end, py.end)];
    root.draw(&PathElement::new(frame, FRAME.stroke_width(1))).map_err(draw_err)?;

    plot(&mut chart)?;

    if !f.has_data {
        let style = text_style(NOTE_SIZE, &MUTED, HPos::Center, VPos::Center);
        let centre = ((px.start + px.end) / 2, (py.start + py.end) / 2);
        root.draw(&Text::new("no data", centre, style)).map_err(draw_err)?;
    }
    // Top of the legend level with the top of the plotting area.
    draw_legend(&legend_area, &f.legend, &legend, py.start - TITLE_BAND as i32)
}

/// A label on the plot with a light backing so it stays readable over lines.
fn draw_note<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    at: (i32, i32),
    h: HPos,
    v: VPos,
    colour: &RGBColor,
) -> Result<(), PlotError> {
    let text = fit_text(text, NOTE_SIZE, 300);
    let tw = text_width(&text, NOTE_SIZE);
    let th = (NOTE_SIZE * 0.9) as i32;
    let x0 = match h {
        HPos::Left => at.0,
        HPos::Center => at.0 - tw / 2,
        HPos::Right => at.0 - tw,
    };
    let y0 = match v {
        VPos::Top => at.1,
        VPos::Center => at.1 - th / 2,
        VPos::Bottom => at.1 - th,
    };
    let backing = [(x0 - 2, y0 - 1), (x0 + tw + 2, y0 + th + 1)];
    root.draw(&Rectangle::new(backing, WHITE.mix(0.75).filled())).map_err(draw_err)?;
    root.draw(&Text::new(text, at, text_style(NOTE_SIZE, colour, h, v))).map_err(draw_err)
}

/// A data-space polyline, drawn in pixels with runs of points that land on the
/// same pixel collapsed to one (a long time series would otherwise put every
/// sample into the SVG).
fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Coords>,
    points: &[(f64, f64)],
    colour: RGBColor,
    width: u32,
    dash: Option<(i32, i32)>,
) -> Result<(), PlotError> {
    let mut pixels: Vec<(i32, i32)> = points.iter().map(|p| chart.backend_coord(p)).collect();
    pixels.dedup();
    if pixels.len() < 2 {
        return Ok(());
    }
    draw_pixel_path(root, pixels, colour, width, dash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_fixture(title: &str) -> LineChart {
        LineChart {
            title: title.to_string(),
            x: Axis { title: "time (s)".into(), scale: Scale::Linear },
            y: Axis { title: "p99 latency (µs)".into(), scale: Scale::Log },
            series: vec![
                Series {
                    label: "guest-a".into(),
                    points: (0..50).map(|i| (i as f64, 10.0 + (i * i) as f64)).collect(),
                },
                Series {
                    label: "guest-b".into(),
                    points: (0..50).map(|i| (i as f64, 500.0 - 9.0 * i as f64)).collect(),
                },
            ],
            hlines: vec![(200.0, "SLO 200 µs".into())],
            markers: false,
            marks: vec![(20.0, 410.0, "chosen".into())],
        }
    }

    fn stacked_fixture() -> StackedArea {
        let xs = [0.0, 10.0, 20.0, 30.0];
        let layer =
            |label: &str, ys: [f64; 4]| Series { label: label.into(), points: xs.iter().copied().zip(ys).collect() };
        StackedArea {
            title: "Host memory".into(),
            x: Axis { title: "time (s)".into(), scale: Scale::Linear },
            y: Axis { title: "memory (GiB)".into(), scale: Scale::Linear },
            layers: vec![
                layer("guest RSS", [10.0, 12.0, 14.0, 13.0]),
                layer("page cache", [4.0, 3.0, 2.0, 2.5]),
                layer("free", [6.0, 5.0, 4.0, 4.5]),
            ],
        }
    }

    fn category_fixture() -> CategoryChart {
        CategoryChart {
            title: "Latency per guest".into(),
            categories: vec!["web-1".into(), "db-1".into(), "batch-1".into()],
            y: Axis { title: "latency (µs)".into(), scale: Scale::Log },
            series: vec![
                ("p50".into(), vec![3.0, 5.0, 2.0]),
                ("p99".into(), vec![40.0, 120.0, 15.0]),
                ("p99.9".into(), vec![900.0, 4000.0, 60.0]),
            ],
        }
    }

    #[test]
    fn same_chart_gives_identical_svg_and_png() {
        // Rendering is a pure function of the description: two renders, same bytes.
        for _ in 0..2 {
            let a = line_chart(&line_fixture("Determinism")).unwrap();
            let b = line_chart(&line_fixture("Determinism")).unwrap();
            assert_eq!(a.svg, b.svg);
            assert_eq!(a.png, b.png);
        }
        assert_eq!(stacked_area(&stacked_fixture()).unwrap(), stacked_area(&stacked_fixture()).unwrap());
        assert_eq!(category_chart(&category_fixture()).unwrap(), category_chart(&category_fixture()).unwrap());
    }

    #[test]
    fn png_decodes_to_the_rendered_pixels() {
        // The PNG's pixels, read back by the png crate's decoder (the PNG
        // specification's reading of IHDR and IDAT), are exactly the buffer
        // plotters drew: the encoding is lossless and the size is the chart's.
        let chart = line_fixture("PNG structure");
        let fig = line_chart(&chart).unwrap();
        assert_eq!(&fig.png[..8], b"\x89PNG\r\n\x1a\n");
        let mut reader = ::png::Decoder::new(std::io::Cursor::new(&fig.png)).read_info().unwrap();
        let mut pixels = vec![0u8; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        assert_eq!((info.color_type, info.bit_depth), (::png::ColorType::Rgb, ::png::BitDepth::Eight));
        assert_eq!(&pixels[..info.buffer_size()], &render_rgb(&chart).unwrap()[..]);
    }

    #[test]
    fn title_text_is_drawn_with_the_embedded_font() {
        // With no system fonts, only the embedded DejaVu Sans can put pixels in the title band.
        let band = TITLE_BAND as usize * WIDTH as usize * 3;
        let with = render_rgb(&line_fixture("A long title that has to show up in the band")).unwrap();
        let without = render_rgb(&line_fixture("")).unwrap();
        assert!(without[..band].iter().all(|&b| b == 255), "nothing but the title belongs in the band");
        let inked = with[..band].chunks(3).filter(|p| p.iter().any(|&b| b < 128)).count();
        assert!(inked > 500, "only {inked} dark pixels in the title band");
        let svg = line_chart(&line_fixture("Title & more")).unwrap().svg;
        assert!(svg.contains("Title &amp; more"), "text is XML-escaped");
        assert!(svg.contains("time (s)"));
        assert!(svg.contains("p99 latency (µs)"));
        assert!(svg.contains("guest-b"));
        assert!(svg.contains(r#"font-family="sans-serif""#));
    }

    #[test]
    fn svg_is_inlinable() {
        // Several charts go into one HTML page: no XML declaration, no ids to clash, and it scales.
        let svg = category_chart(&category_fixture()).unwrap().svg;
        assert!(svg.starts_with(&format!(r#"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}""#)));
        assert!(!svg.contains("<?xml"));
        assert!(!svg.contains(" id="));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_dropped_point_breaks_the_line() {
        // Faults per second are 0 between bursts: on a log axis the zeros
        // cannot be drawn, and a line across them would show a rate that
        // never was. Two runs, split where the zero was.
        let mut c = line_fixture("gaps");
        c.y.scale = Scale::Log;
        c.series = vec![Series { label: "s".into(), points: vec![(0.0, 5.0), (1.0, 6.0), (2.0, 0.0), (3.0, 7.0)] }];
        let log10 = |v: f64| v.log10();
        assert_eq!(
            c.plot_points(Scale::Linear, Scale::Log),
            vec![vec![vec![(0.0, log10(5.0)), (1.0, log10(6.0))], vec![(3.0, log10(7.0))]]]
        );
    }

    #[test]
    fn log_axis_drops_zero_and_negative_values() {
        let mut c = line_fixture("log with junk");
        c.series.push(Series {
            label: "junk".into(),
            points: vec![(0.0, 0.0), (1.0, -5.0), (2.0, f64::NAN), (3.0, f64::INFINITY)],
        });
        c.x.scale = Scale::Log; // x = 0 is dropped too
        c.hlines.push((-1.0, "negative reference".into()));
        c.marks.push((0.0, 1.0, "at x = 0".into()));
        let fig = line_chart(&c).unwrap();
        assert!(fig.svg.contains("junk"));
        // Only junk: nothing survives, so a "no data" frame.
        let only_junk = LineChart { series: vec![c.series[2].clone()], hlines: vec![], marks: vec![], ..c };
        let fig = line_chart(&only_junk).unwrap();
        assert!(fig.svg.contains("no data"));
    }

    #[test]
    fn empty_single_point_and_flat_series_render() {
        let base = line_fixture("edge cases");
        for points in [vec![], vec![(5.0, 5.0)], vec![(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)], vec![(0.0, 0.0), (0.0, 0.0)]]
        {
            for scale in [Scale::Linear, Scale::Log] {
                let c = LineChart {
                    series: vec![Series { label: "s".into(), points: points.clone() }],
                    x: Axis { title: "x".into(), scale },
                    y: Axis { title: "y".into(), scale },
                    hlines: vec![],
                    marks: vec![],
                    markers: true,
                    ..base.clone()
                };
                line_chart(&c).unwrap();
            }
        }
        let no_series = LineChart { series: vec![], hlines: vec![], marks: vec![], ..base };
        assert!(line_chart(&no_series).unwrap().svg.contains("no data"));
        let empty_stack = StackedArea { layers: vec![], ..stacked_fixture() };
        assert!(stacked_area(&empty_stack).unwrap().svg.contains("no data"));
        let empty_cats =
            CategoryChart { categories: vec![], series: vec![("p50".into(), vec![])], ..category_fixture() };
        assert!(category_chart(&empty_cats).unwrap().svg.contains("no data"));
    }

    #[test]
    fn many_series_and_long_labels_still_render() {
        let series: Vec<Series> = (0..80)
            .map(|i| Series {
                label: format!("guest-{i:02} with a rather long descriptive name"),
                points: (0..20).map(|t| (t as f64, (i * 3 + t) as f64)).collect(),
            })
            .collect();
        let c = LineChart { series, ..line_fixture("forty series") };
        let svg = line_chart(&c).unwrap().svg;
        // 82 entries (80 series, a reference line, a mark) at the small legend size: 24 rows
        // of 19 px in 496 - 16 - 2 × 10 px, 3 columns of at least 100 px in 330 - 2 × 10 px;
        // 72 places, so 71 entries and "… 11 more".
        assert!(svg.contains("… 11 more"));
        let cats = CategoryChart {
            categories: (0..30).map(|i| format!("guest-number-{i}")).collect(),
            series: vec![("p99".into(), (0..30).map(|i| f64::from(i) + 1.0).collect())],
            ..category_fixture()
        };
        category_chart(&cats).unwrap();
    }

    #[test]
    fn dense_series_are_thinned_to_pixels() {
        // 100 000 samples of sin(t / 1000), 100 / π ≈ 32 half-periods, across a plot under
        // 650 × 450 px: each half-period crosses at most 450 rows, so the path changes
        // pixel at most 650 + 32 × 450 = 15 050 times, far below 100 000.
        let c = LineChart {
            series: vec![Series {
                label: "dense".into(),
                points: (0..100_000).map(|i| (f64::from(i), (f64::from(i) / 1000.0).sin() + 2.0)).collect(),
            }],
            hlines: vec![],
            marks: vec![],
            ..line_fixture("dense")
        };
        let svg = line_chart(&c).unwrap().svg;
        let longest = svg
            .lines()
            .filter_map(|l| l.split_once(r#"points=""#))
            .map(|(_, pts)| pts.split(' ').filter(|p| p.contains(',')).count())
            .max()
            .unwrap();
        assert!(longest > 600 && longest <= 15_050, "{longest} points");
    }

    #[test]
    fn stacked_layers_sum_bottom_up() {
        // Top of layer k is the sum of layers 0..=k: at x = 10, 12, 12+3 = 15, 15+5 = 20.
        let bands = stack_layers(&stacked_fixture().layers).unwrap();
        assert_eq!(bands[0][1], (10.0, 0.0, 12.0));
        assert_eq!(bands[1][1], (10.0, 12.0, 15.0));
        assert_eq!(bands[2][1], (10.0, 15.0, 20.0));
        // Every band starts where the one below ends.
        for k in 1..bands.len() {
            for (below, this) in bands[k - 1].iter().zip(&bands[k]) {
                assert_eq!(below.2, this.1);
            }
        }
    }

    #[test]
    fn stacked_layers_sort_by_x_and_treat_nan_as_zero() {
        let a = Series { label: "a".into(), points: vec![(2.0, 1.0), (1.0, f64::NAN), (f64::NAN, 7.0)] };
        let b = Series { label: "b".into(), points: vec![(2.0, 2.0), (1.0, 4.0), (f64::NAN, 1.0)] };
        let bands = stack_layers(&[a.clone(), b]).unwrap();
        // x sorted (1 before 2), NaN y counts 0, the NaN x point is dropped from both layers.
        assert_eq!(bands[0], vec![(1.0, 0.0, 0.0), (2.0, 0.0, 1.0)]);
        assert_eq!(bands[1], vec![(1.0, 0.0, 4.0), (2.0, 1.0, 3.0)]);
        let shifted = Series { label: "c".into(), points: vec![(2.5, 1.0), (1.0, 1.0), (f64::NAN, 1.0)] };
        assert!(matches!(stack_layers(&[a, shifted]), Err(PlotError::LayerMismatch { .. })));
    }

    #[test]
    fn category_values_must_match_categories() {
        let mut c = category_fixture();
        c.series[1].1.pop();
        assert!(matches!(category_chart(&c), Err(PlotError::CategoryMismatch { expected: 3, found: 2, .. })));
    }

    #[test]
    fn tick_labels_are_compact() {
        // The formats the brief asks for: 1, 10, 100, 1k, 10k, 1M, 0.1, 0.01.
        let cases = [
            (1.0, "1"),
            (10.0, "10"),
            (100.0, "100"),
            (1e3, "1k"),
            (1e4, "10k"),
            (1e6, "1M"),
            (0.1, "0.1"),
            (0.01, "0.01"),
        ];
        for (v, s) in cases {
            assert_eq!(compact(v, 3), s);
        }
        assert_eq!(compact(1500.0, 3), "1.5k");
        assert_eq!(compact(-2000.0, 3), "-2k");
        assert_eq!(compact(0.30000000000000004, 3), "0.3");
        assert_eq!(compact(999_999.0, 3), "1M");
        assert_eq!(compact(2.5e-5, 3), "2.5e-5");
        assert_eq!(compact(0.0, 3), "0");
    }

    #[test]
    fn log_ticks_are_one_two_five_or_decades() {
        let labels = |lo: f64, hi: f64| AxisSpec::fit(Scale::Log, [lo, hi], 8).labels();
        // 3..700 snaps to 2..1000, under three decades: 1-2-5 ticks.
        assert_eq!(labels(3.0, 700.0), ["2", "5", "10", "20", "50", "100", "200", "500", "1k"]);
        // 1..1e6 is six decades: decade ticks only.
        assert_eq!(labels(1.0, 1e6), ["1", "10", "100", "1k", "10k", "100k", "1M"]);
        // 1e-3..1e12 is 15 decades; at most 8 labels means every ceil(15 / 7) = 3rd decade.
        assert_eq!(labels(1e-3, 1e12), ["0.001", "1", "1k", "1M", "1G", "1T"]);
        // 2..4000 is more than three decades after snapping (2..5000): whole decades 1..10k.
        assert_eq!(labels(2.0, 4000.0), ["1", "10", "100", "1k", "10k"]);
        // One value, 100: padded to 50..200.
        assert_eq!(labels(100.0, 100.0), ["50", "100", "200"]);
        // 0.2..0.5 is less than half a decade: every 1..9 × 10^k.
        assert_eq!(labels(0.2, 0.5), ["0.2", "0.3", "0.4", "0.5"]);
    }

    #[test]
    fn linear_ticks_are_nice_and_cover_the_data() {
        let axis = AxisSpec::fit(Scale::Linear, [0.3, 97.0], 8);
        // Span 96.7 over ~7 intervals at 0.85 fill → raw step 16.3 → nice step 20; 0..100.
        assert_eq!(axis.labels(), ["0", "20", "40", "60", "80", "100"]);
        // A flat series at 3 gets ±10 %: 2.7..3.3, step 0.1.
        let flat = AxisSpec::fit(Scale::Linear, [3.0, 3.0], 8);
        assert!(flat.lo < 3.0 && flat.hi > 3.0);
        // Big offset, small span: labels must still differ.
        let labels = AxisSpec::fit(Scale::Linear, [1e9, 1e9 + 50.0], 8).labels();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique, labels);
    }

    #[test]
    #[ignore = "writes example charts to /tmp/plot-examples for a human to look at"]
    fn write_examples() {
        let dir = std::path::Path::new("/tmp/plot-examples");
        std::fs::create_dir_all(dir).unwrap();
        let mut sweep = line_fixture("Sweep: p99 latency vs overcommit ratio");
        sweep.x = Axis { title: "overcommit ratio".into(), scale: Scale::Linear };
        sweep.series = (0..3)
            .map(|g| Series {
                label: format!("{} guests", 8 << g),
                points: (0..9)
                    .map(|i| (1.0 + i as f64 * 0.125, 20.0 * (1.0 + f64::from(g)) * 3f64.powf(i as f64 * 0.5)))
                    .collect(),
            })
            .collect();
        sweep.marks = vec![(1.5, 240.0, "chosen: 1.5×".into())];
        sweep.markers = true;
        let many = LineChart {
            title: "Many series".into(),
            series: (0..14)
                .map(|i| Series {
                    label: format!("guest-{i}"),
                    points: (0..100)
                        .map(|t| (t as f64, (f64::from(i) + 1.0) * (t as f64 / 10.0).sin().abs() + f64::from(i)))
                        .collect(),
                })
                .collect(),
            hlines: vec![(12.0, "limit".into())],
            marks: vec![],
            markers: false,
            x: Axis { title: "time (s)".into(), scale: Scale::Linear },
            y: Axis { title: "RSS (GiB)".into(), scale: Scale::Linear },
        };
        let wide_cats = CategoryChart {
            categories: (0..24).map(|i| format!("guest-{i:02}.example")).collect(),
            series: vec![
                ("p50".into(), (0..24).map(|i| 3.0 + f64::from(i)).collect()),
                ("p99".into(), (0..24).map(|i| 40.0 * (1.0 + f64::from(i))).collect()),
                ("p99.9".into(), (0..24).map(|i| 900.0 * (1.0 + f64::from(i))).collect()),
            ],
            ..category_fixture()
        };
        let many_cats = CategoryChart {
            categories: (0..120).map(|i| format!("vm{i}")).collect(),
            series: vec![("p99".into(), (0..120).map(|i| 40.0 * (1.0 + f64::from(i))).collect())],
            ..category_fixture()
        };
        let figures = [
            ("line", line_chart(&line_fixture("Time series: p99 latency per guest")).unwrap()),
            ("sweep", line_chart(&sweep).unwrap()),
            ("many", line_chart(&many).unwrap()),
            ("stacked", stacked_area(&stacked_fixture()).unwrap()),
            ("category", category_chart(&category_fixture()).unwrap()),
            ("category-wide", category_chart(&wide_cats).unwrap()),
            ("category-many", category_chart(&many_cats).unwrap()),
            (
                "empty",
                line_chart(&LineChart { series: vec![], hlines: vec![], marks: vec![], ..line_fixture("No data yet") })
                    .unwrap(),
            ),
        ];
        for (name, fig) in figures {
            std::fs::write(dir.join(format!("{name}.png")), &fig.png).unwrap();
            std::fs::write(dir.join(format!("{name}.svg")), &fig.svg).unwrap();
        }
    }
}
