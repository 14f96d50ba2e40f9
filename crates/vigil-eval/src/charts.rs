//! PNG and SVG charts of an [`EvalReport`] (plotters; DejaVu Sans from the `dejavu` crate so
//! text renders the same on machines without system fonts).
//!
//! Every chart is always written: a chart whose data is missing (no probabilities, no
//! temperature runs, …) shows "no data" instead of being skipped, so the set of files is
//! the same for every run and a report can link to them unconditionally.

use crate::error::{EvalError, Result};
use crate::report::EvalReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

type DrawResult = std::result::Result<(), String>;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only for an unparsable font; the embedded DejaVu Sans parses.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The colour of series `i` (variant `i`).
fn colour(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).rgb();
    RGBColor(r, g, b)
}

const METRIC_COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> DrawResult {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        format!("{title}: no data"),
        (w as i32 / 2 - 150, h as i32 / 2),
        ("sans-serif", 24).into_font().color(&BLACK),
    ))
    .map_err(e2s)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e2s)
}

/// Grouped bars: precision, recall, accuracy and F1 per variant. Each variant uses five
/// slots on the x axis: four bars and a gap.
fn variants_chart<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &EvalReport) -> DrawResult {
    const TITLE: &str = "Variant comparison";
    if r.variants.is_empty() {
        return no_data(root, TITLE);
    }
    let slots = r.variants.len() as i32 * 5;
    let mut chart = ChartBuilder::on(root)
        .caption(TITLE, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0..slots).into_segmented(), 0f64..1.05)
        .map_err(e2s)?;
    let names: Vec<String> = r.variants.iter().map(|v| v.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(slots as usize + 1)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(s) if s.rem_euclid(5) == 2 => {
                names.get((s / 5) as usize).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .y_desc("score")
        .draw()
        .map_err(e2s)?;
    let metrics = ["precision", "recall", "accuracy", "F1"];
    for (j, name) in metrics.iter().enumerate() {
        let c = METRIC_COLOURS[j];
        let bars: Vec<_> = r
            .variants
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let s = v.scores;
                let value = [s.precision, s.recall, s.accuracy, s.f1][j]?;
                let slot = i as i32 * 5 + j as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(slot), 0.0),
                        (SegmentValue::Exact(slot + 1), value),
                    ],
                    c.filled(),
                );
                bar.set_margin(0, 0, 2, 2);
                Some(bar)
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(e2s)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Observed positive rate against mean predicted probability per bin, with the diagonal of
/// perfect calibration.
fn reliability_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &EvalReport,
) -> DrawResult {
    const TITLE: &str = "Reliability diagram";
    if r.variants.iter().all(|v| v.calibration.is_none()) {
        return no_data(root, TITLE);
    }
    let mut chart = ChartBuilder::on(root)
        .caption(TITLE, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1.0, 0f64..1.0)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc("mean predicted probability (positive class)")
        .y_desc("observed positive rate")
        .draw()
        .map_err(e2s)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(e2s)?
        .label("perfect calibration")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    for (i, v) in r.variants.iter().enumerate() {
        let Some(cal) = &v.calibration else { continue };
        let pts: Vec<(f64, f64)> = cal
            .bins
            .iter()
            .filter_map(|b| Some((b.mean_confidence?, b.accuracy?)))
            .collect();
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(e2s)?
            .label(format!("{} (ECE {:.3})", v.name, cal.ece))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e2s)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// `(x, y)` series per variant for a line chart with a numeric x axis.
struct Curve {
    label: String,
    colour: RGBColor,
    /// Circles for the first metric of a variant, triangles for the second.
    triangles: bool,
    points: Vec<(f64, f64)>,
}

fn line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> DrawResult {
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if !lo.is_finite() {
        return no_data(root, title);
    }
    // A single x value still needs a non-empty range.
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.5
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0f64..1.05)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(e2s)?;
    for curve in curves {
        let c = curve.colour;
        let style = if curve.triangles {
            c.stroke_width(1)
        } else {
            c.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(curve.points.clone(), style))
            .map_err(e2s)?
            .label(curve.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if curve.triangles {
            chart
                .draw_series(
                    curve
                        .points
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 5, c.filled())),
                )
                .map_err(e2s)?;
        } else {
            chart
                .draw_series(curve.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(e2s)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn temperature_curves(r: &EvalReport) -> Vec<Curve> {
    let mut out = Vec::new();
    for (i, v) in r.variants.iter().enumerate() {
        if v.temperature_points.is_empty() {
            continue;
        }
        for (k, (metric, pick)) in [
            (
                "accuracy",
                (|s: &crate::BinaryScores| s.accuracy) as fn(&_) -> _,
            ),
            ("precision", |s: &crate::BinaryScores| s.precision),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(Curve {
                label: format!("{} {metric}", v.name),
                colour: colour(i),
                triangles: k == 1,
                points: v
                    .temperature_points
                    .iter()
                    .filter_map(|t| Some((t.temperature, pick(&t.scores)?)))
                    .collect(),
            });
        }
    }
    out
}

/// Accuracy and FPR per length bucket; x is the bucket's lower edge in tokens.
fn length_curves(r: &EvalReport) -> Vec<Curve> {
    let mut out = Vec::new();
    for (i, v) in r.variants.iter().enumerate() {
        let filled: Vec<_> = v.by_length.iter().filter(|b| b.n > 0).collect();
        if filled.is_empty() {
            continue;
        }
        out.push(Curve {
            label: format!("{} accuracy", v.name),
            colour: colour(i),
            triangles: false,
            points: filled
                .iter()
                .filter_map(|b| Some((b.lo as f64, b.accuracy?)))
                .collect(),
        });
        out.push(Curve {
            label: format!("{} FPR", v.name),
            colour: colour(i),
            triangles: true,
            points: filled
                .iter()
                .filter_map(|b| Some((b.lo as f64, b.fpr?)))
                .collect(),
        });
    }
    out
}

fn scaling_curves(r: &EvalReport) -> Vec<Curve> {
    r.variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let s = v.scaling.as_ref()?;
            let value = s.value.map_or_else(|| "n/a".into(), |x| format!("{x:.2e}"));
            Some(Curve {
                label: format!("{} {} (scaling {value})", v.name, s.metric.name()),
                colour: colour(i),
                triangles: false,
                points: s.points.clone(),
            })
        })
        .collect()
}

fn chart_err(path: &Path, msg: String) -> EvalError {
    EvalError::Chart {
        path: path.to_path_buf(),
        msg,
    }
}

/// Draws one chart to `<stem>.png` and `<stem>.svg` in `dir`.
macro_rules! png_and_svg {
    ($out:expr, $dir:expr, $stem:expr, $size:expr, |$root:ident| $draw:expr) => {{
        let png = $dir.join(format!("{}.png", $stem));
        {
            let $root = BitMapBackend::new(&png, $size).into_drawing_area();
            $root.fill(&WHITE).map_err(|e| chart_err(&png, e2s(e)))?;
            $draw.map_err(|m| chart_err(&png, m))?;
            $root.present().map_err(|e| chart_err(&png, e2s(e)))?;
        }
        $out.push(png);
        let svg = $dir.join(format!("{}.svg", $stem));
        {
            let $root = SVGBackend::new(&svg, $size).into_drawing_area();
            $root.fill(&WHITE).map_err(|e| chart_err(&svg, e2s(e)))?;
            $draw.map_err(|m| chart_err(&svg, m))?;
            $root.present().map_err(|e| chart_err(&svg, e2s(e)))?;
        }
        $out.push(svg);
    }};
}

/// Writes five charts, each as PNG and SVG, into `dir` (created if missing): `variants`
/// (grouped precision / recall / accuracy / F1 bars), `reliability` (with the diagonal),
/// `temperature` (accuracy and precision vs temperature), `length` (accuracy and FPR vs
/// analysis length) and `scaling` (metric vs token budget). Returns the ten paths.
pub fn write_charts(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let size = (960, 540);
    png_and_svg!(out, dir, "variants", size, |root| variants_chart(
        &root, report
    ));
    png_and_svg!(out, dir, "reliability", (640, 640), |root| {
        reliability_chart(&root, report)
    });
    let temps = temperature_curves(report);
    png_and_svg!(out, dir, "temperature", size, |root| line_chart(
        &root,
        "Accuracy (●) and precision (▲) by temperature",
        "temperature",
        "score",
        &temps
    ));
    let lengths = length_curves(report);
    png_and_svg!(out, dir, "length", size, |root| line_chart(
        &root,
        "Accuracy (●) and FPR (▲) by analysis length",
        "analysis length bucket, lower edge (tokens)",
        "rate",
        &lengths
    ));
    let scal = scaling_curves(report);
    png_and_svg!(out, dir, "scaling", size, |root| line_chart(
        &root,
        "Metric by test-time token budget",
        "analysis token budget",
        "metric",
        &scal
    ));
    Ok(out)
}
