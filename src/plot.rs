//! `procnet plot REPORT -o FILE.svg`: what a sweep measured, as a picture. Two panels share
//! the swept parameter on x: the throughput of one node (records/s, default the tally, or the
//! last node) and the run's wall time. One line per combination of the other swept values;
//! each point is the median of its repeats, with a bar from the fastest to the slowest.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// The node whose records/s are drawn (default: the last with a result, a tally; else
    /// the last node).
    pub node: Option<String>,
    /// The swept value on x (default: the first swept).
    pub x: Option<String>,
    /// A title (default: the topology's name and the node).
    pub title: Option<String>,
}

/// Why a report cannot be drawn.
#[derive(Debug)]
pub enum PlotError {
    /// The report is not what `procnet run --sweep --report` writes, or lacks what is asked.
    Report(String),
    /// Drawing or writing failed.
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Report(why) => write!(f, "cannot plot this report: {why}"),
            PlotError::Draw(why) => write!(f, "failed to draw the plot: {why}"),
        }
    }
}

impl std::error::Error for PlotError {}

/// One measured run: its x value, its series, its throughput and wall time.
struct Sample {
    x: usize,
    series: String,
    rate: f64,
    wall: f64,
}

/// Median, fastest and slowest of some figures.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

fn spread(values: &mut [f64]) -> Spread {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    Spread { median, low: values[0], high: values[n - 1] }
}

/// Draw the sweep report `report` (JSON text) as SVG into `out`.
pub fn plot(report: &str, out: &Path, opts: &PlotOptions) -> Result<(), PlotError> {
    let bad = |why: String| PlotError::Report(why);
    let doc: Value = serde_json::from_str(report).map_err(|e| bad(format!("not JSON: {e}")))?;
    let sweep = doc.get("sweep").and_then(Value::as_object).ok_or_else(|| {
        bad("it has no `sweep`: write one with `procnet run FILE --sweep PATH=V1,V2 --report r.json`".into())
    })?;
    let runs = doc
        .get("runs")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("it has no runs".into()))?;
    let x_path = match &opts.x {
        Some(x) if sweep.contains_key(x) => x.clone(),
        Some(x) => return Err(bad(format!("`{x}` was not swept; swept: {}", keys(sweep)))),
        None => sweep.keys().next().cloned().ok_or_else(|| bad("its sweep is empty".into()))?,
    };
    let x_values: Vec<&Value> = sweep[&x_path].as_array().map(|v| v.iter().collect()).unwrap_or_default();
    let node = match &opts.node {
        Some(n) => n.clone(),
        None => default_node(&runs[0]).ok_or_else(|| bad("its runs have no nodes".into()))?,
    };
    let mut samples = Vec::new();
    for run in runs {
        let params = run.get("params").and_then(Value::as_object).ok_or_else(|| bad("a run has no `params`".into()))?;
        let x = params.get(&x_path).and_then(|v| x_values.iter().position(|x| *x == v));
        let x = x.ok_or_else(|| bad(format!("a run has no value of `{x_path}` among the swept ones")))?;
        let series: Vec<String> =
            params.iter().filter(|(k, _)| **k != x_path).map(|(k, v)| format!("{k}={}", text(v))).collect();
        let rate = run
            .get("nodes")
            .and_then(Value::as_array)
            .and_then(|nodes| nodes.iter().find(|n| n.get("node").and_then(Value::as_str) == Some(node.as_str())))
            .and_then(|n| n.get("records_per_s"))
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(format!("its runs have no node `{node}`")))?;
        let wall =
            run.get("elapsed_s").and_then(Value::as_f64).ok_or_else(|| bad("a run has no `elapsed_s`".into()))?;
        samples.push(Sample { x, series: series.join(", "), rate, wall });
    }
    // Per series, per x: the spread of the repeats.
    let mut by_series = Measured::new();
    for s in &samples {
        let at = by_series.entry(s.series.clone()).or_default().entry(s.x).or_default();
        at.0.push(s.rate);
        at.1.push(s.wall);
    }
    let lines: Vec<Line> = by_series
        .into_iter()
        .map(|(name, points)| {
            let pts = points.into_iter().map(|(x, (mut r, mut w))| (x, spread(&mut r), spread(&mut w))).collect();
            (name, pts)
        })
        .collect();
    let labels: Vec<String> = x_values.iter().map(|v| text(v)).collect();
    let numeric: Option<Vec<f64>> = x_values.iter().map(|v| v.as_f64()).collect();
    let topology = doc.get("topology").and_then(Value::as_str).unwrap_or("");
    let title = opts.title.clone().unwrap_or_else(|| format!("{topology}: sweep of {x_path}"));
    draw(out, &title, &x_path, &node, &labels, numeric.as_deref(), &lines).map_err(|e| PlotError::Draw(e.to_string()))
}

/// The node drawn by default: the last with a result (a tally), else the last.
fn default_node(run: &Value) -> Option<String> {
    let nodes = run.get("nodes")?.as_array()?;
    let name = |n: &Value| n.get("node").and_then(Value::as_str).map(str::to_string);
    nodes.iter().rev().find(|n| n.get("result").is_some()).and_then(name).or_else(|| nodes.last().and_then(name))
}

fn keys(map: &serde_json::Map<String, Value>) -> String {
    map.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// A value as a label: a string without its quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A figure for an axis: `250k`, `1.5M`, `0.35`.
fn short(y: f64) -> String {
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    match y.abs() {
        a if a >= 1e6 => format!("{}M", trim(format!("{:.2}", y / 1e6))),
        a if a >= 1e3 => format!("{}k", trim(format!("{:.1}", y / 1e3))),
        _ => trim(format!("{y:.3}")),
    }
}

/// The colours of the series, in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One x value of a series: its index among the swept values, the spread of the repeats'
/// throughput and of their wall time.
type At = (usize, Spread, Spread);
/// A series: its name (the other swept values) and its points.
type Line = (String, Vec<At>);
/// A panel: its y axis, and which spread of a point it draws.
type Panel = (&'static str, fn(&At) -> Spread);
/// Per series, per x: the repeats' throughputs and wall times.
type Measured = BTreeMap<String, BTreeMap<usize, (Vec<f64>, Vec<f64>)>>;

fn draw(
    out: &Path,
    title: &str,
    x_path: &str,
    node: &str,
    labels: &[String],
    numeric: Option<&[f64]>,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(out, (1100, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((1, 2));
    let x_of = |i: usize| numeric.map_or(i as f64, |n| n[i]);
    let (x_lo, x_hi) = match numeric {
        Some(n) => {
            let (lo, hi) = n.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let pad = ((hi - lo) * 0.05).max(0.5);
            (lo - pad, hi + pad)
        }
        None => (-0.5, labels.len() as f64 - 0.5),
    };
    let panels_spec: [Panel; 2] = [("records/s", |p| p.1), ("wall time, s", |p| p.2)];
    for (area, (what, pick)) in panels.iter().zip(panels_spec) {
        let y_hi = lines.iter().flat_map(|(_, pts)| pts.iter().map(|p| pick(p).high)).fold(0.0, f64::max) * 1.15;
        let caption =
            if what == "records/s" { format!("throughput of `{node}`") } else { "wall time of the run".into() };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi.max(1e-9))?;
        let label_of = |x: &f64| match numeric {
            Some(_) => format!("{x}"),
            None => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            }
        };
        chart
            .configure_mesh()
            .x_desc(x_path)
            .y_desc(what)
            .x_labels(labels.len().max(2) * 2)
            .x_label_formatter(&label_of)
            .y_label_formatter(&|y: &f64| short(*y))
            .draw()?;
        for (k, (name, pts)) in lines.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let series = pts.iter().map(|p| (x_of(p.0), pick(p).median));
            let legend = if name.is_empty() { "median of the repeats".to_string() } else { name.clone() };
            chart
                .draw_series(LineSeries::new(series, colour.stroke_width(2)))?
                .label(legend)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(pts.iter().map(|p| Circle::new((x_of(p.0), pick(p).median), 4, colour.filled())))?;
            // The spread of the repeats: fastest to slowest.
            chart.draw_series(pts.iter().map(|p| {
                let s = pick(p);
                PathElement::new(vec![(x_of(p.0), s.low), (x_of(p.0), s.high)], colour.stroke_width(1))
            }))?;
        }
        // One legend, in the first panel: the colours are the same in both.
        if what == "records/s" {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
