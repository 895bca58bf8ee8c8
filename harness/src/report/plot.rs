//! Pictures of a run, written next to `summary.md`: `resources.svg`, `rate.svg`,
//! `latency.svg`, for runs on a node `disk.svg`, and for runs with BinderHub `binder.svg`
//! (Jepsen's `checker/perf.clj` is the model: time on x, fault windows shaded).
//!
//! Every panel shares the same x axis (seconds since the run's clock started), shades each
//! fault window (`Injected` .. `Healed` of one kind+target; never healed = to the end) with a
//! colour per fault and its kind written in the band, draws the judged window's start
//! (`setup-done`, else `workload-start`) and `workload-stop` as dashed lines, and marks
//! supervisor restarts as red ticks on the top edge.
//!
//! SVG only, drawn with `plotters` without any font stack: text is emitted as `<text>` and
//! the viewer's sans-serif font renders it, so nothing here depends on system fonts.
//! A figure with no data is not written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::component::binderhub::{recorded_build_limit, BINDERHUB};
use crate::component::image_cleaner::IMAGE_CLEANER;
use crate::observe::builds::{BUILDS_IN_FLIGHT, INPROGRESS_BUILDS};
use crate::observe::disk::{BLOCKS_USED_PCT, INODES_USED_PCT, NODE_DISK};
use crate::observe::docker::{CONTAINERS_RUNNING, DOCKERD, IMAGE, IMAGES};
use crate::observe::history::{FaultPhase, History, SETUP_DONE, WORKLOAD_START, WORKLOAD_STOP};
use crate::observe::logs::log_lines;
use crate::stats::{median, nearest_rank};

/// Fill colours of fault windows, by order of first injection (drawn at [`SHADE_OPACITY`]).
pub const FAULT_SHADES: [RGBColor; 6] = [
    RGBColor(0xE4, 0x57, 0x56), // red
    RGBColor(0x4C, 0x78, 0xA8), // blue
    RGBColor(0xF5, 0x8E, 0x1C), // orange
    RGBColor(0x54, 0xA2, 0x4B), // green
    RGBColor(0xB2, 0x79, 0xA2), // purple
    RGBColor(0x9D, 0x75, 0x5D), // brown
];
pub const SHADE_OPACITY: f64 = 0.10;
/// Height of one fault's labelled bar along the top of a panel.
const FAULT_ROW: i32 = 15;

/// Series colours (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0xBA, 0xB0, 0xAC),
];
const WINDOW_LINE: RGBColor = RGBColor(0x44, 0x44, 0x44);
const THRESHOLD_LINE: RGBColor = RGBColor(0x8B, 0x1A, 0x1A);
const RESTART: RGBColor = RGBColor(0xD6, 0x27, 0x28);
const FONT: &str = "sans-serif";

/// plotters divides font sizes by 1.24 when it writes SVG; these are the pixel sizes wanted.
fn px(size: f64) -> f64 {
    size * 1.24
}

const FIG_WIDTH: u32 = 1600;
const HEADER_H: u32 = 64;

// ---------------------------------------------------------------------------------------
// The figure model: panels of series, plus the marks every panel carries.

#[derive(Debug, Clone)]
struct Series {
    label: String,
    color: RGBColor,
    /// Line width, or the dots' radius of a scatter.
    width: u32,
    /// Runs of points; a gap in the data starts a new run (no line drawn across it).
    runs: Vec<Vec<(f64, f64)>>,
    /// Draw every point as a dot, no lines.
    scatter: bool,
}

impl Series {
    fn new(label: impl Into<String>, color: RGBColor, width: u32, runs: Vec<Vec<(f64, f64)>>) -> Self {
        Self { label: label.into(), color, width, runs, scatter: false }
    }

    fn is_empty(&self) -> bool {
        self.runs.iter().all(|r| r.is_empty())
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.runs.iter().flatten().map(|p| p.1)
    }
}

/// A horizontal line across a panel (a threshold), labelled at its right end.
#[derive(Debug, Clone, PartialEq)]
struct HLine {
    y: f64,
    label: String,
    color: RGBColor,
}

#[derive(Debug, Clone)]
struct Panel {
    title: String,
    y_desc: String,
    series: Vec<Series>,
    /// Allow a log y axis when the positive values span more than this factor.
    log_if_wider_than: Option<f64>,
    /// Only restarts of these components are marked (`None`: all).
    restarts_of: Option<String>,
    /// Thresholds drawn as dashed lines (the y axis reaches them).
    hlines: Vec<HLine>,
    /// The y axis reaches at least this (100 for percentages).
    y_at_least: f64,
}

impl Panel {
    fn new(title: impl Into<String>, y_desc: impl Into<String>, series: Vec<Series>) -> Option<Self> {
        let series: Vec<Series> = series.into_iter().filter(|s| !s.is_empty()).collect();
        if series.is_empty() {
            return None;
        }
        Some(Self {
            title: title.into(),
            y_desc: y_desc.into(),
            series,
            log_if_wider_than: None,
            restarts_of: None,
            hlines: Vec::new(),
            y_at_least: 0.0,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct FaultWindow {
    kind: String,
    target: String,
    start: f64,
    end: f64,
    /// Never healed, or the heal failed.
    unhealed: bool,
    color: RGBColor,
}

impl FaultWindow {
    fn label(&self) -> String {
        let mut s = format!("{} → {}", self.kind, self.target);
        if self.unhealed {
            s.push_str(" (not healed)");
        }
        s
    }
}

#[derive(Debug, Clone, Default)]
struct Marks {
    x_max: f64,
    faults: Vec<FaultWindow>,
    /// (time, phase name) of the judged window's edges.
    window: Vec<(f64, String)>,
    /// (time, component)
    restarts: Vec<(f64, String)>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn marks(history: &History) -> Marks {
    let last_entry = history.entries.iter().map(|e| secs(e.at)).fold(0.0, f64::max);
    let last_sample = history.samples.iter().map(|s| secs(s.at)).fold(0.0, f64::max);
    let x_max = last_entry.max(last_sample).max(1.0);

    let mut faults: Vec<FaultWindow> = Vec::new();
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut colors: BTreeMap<String, RGBColor> = BTreeMap::new();
    for (at, f) in history.faults() {
        let key = (f.kind.clone(), f.target.clone());
        match f.phase {
            FaultPhase::Injected => {
                if open.contains_key(&key) {
                    continue;
                }
                let n = colors.len();
                let color = *colors.entry(format!("{}\u{0}{}", f.kind, f.target)).or_insert(FAULT_SHADES[n % FAULT_SHADES.len()]);
                open.insert(key, faults.len());
                faults.push(FaultWindow {
                    kind: f.kind.clone(),
                    target: f.target.clone(),
                    start: secs(at),
                    end: x_max,
                    unhealed: true,
                    color,
                });
            }
            FaultPhase::Healed => {
                if let Some(i) = open.remove(&key) {
                    faults[i].end = secs(at);
                    faults[i].unhealed = false;
                }
            }
            // The fault may still be in place: leave the window open to the end.
            FaultPhase::HealFailed => {
                open.remove(&key);
            }
        }
    }

    let mut window = Vec::new();
    if let Some(t) = history.phase(SETUP_DONE) {
        window.push((secs(t), SETUP_DONE.to_string()));
    } else if let Some(t) = history.phase(WORKLOAD_START) {
        window.push((secs(t), WORKLOAD_START.to_string()));
    }
    if let Some(t) = history.phase(WORKLOAD_STOP) {
        window.push((secs(t), WORKLOAD_STOP.to_string()));
    }
    let restarts = history.restarts().map(|(at, r)| (secs(at), r.component.clone())).collect();
    Marks { x_max, faults, window, restarts }
}

// ---------------------------------------------------------------------------------------
// Public entry point.

/// Draw the run's pictures into `run_dir`: `resources.svg`, `rate.svg`, `latency.svg`,
/// `disk.svg` and `binder.svg`, each only if it has data. Returns the files written.
pub fn write_plots(run_dir: &Path, history: &History) -> anyhow::Result<Vec<PathBuf>> {
    let marks = marks(history);
    let mut written = Vec::new();
    let figures: [(&str, Option<Figure>); 5] = [
        ("resources.svg", resources_figure(history)),
        ("rate.svg", rate_figure(history, &marks)),
        ("latency.svg", latency_figure(history, &marks)),
        ("disk.svg", disk_figure(history)),
        ("binder.svg", binder_figure(history, &marks)),
    ];
    for (name, fig) in figures {
        let Some(fig) = fig else { continue };
        let svg = render(&fig, &marks)?;
        let path = run_dir.join(name);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    Ok(written)
}

/// Draw the pictures of a finished run from its files (`history.jsonl`, and `samples.jsonl`
/// if there is one) into `out_dir` (which may be the run dir itself).
pub fn replot(run_dir: &Path, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut history = History::load(&run_dir.join("history.jsonl"))?;
    let samples = run_dir.join("samples.jsonl");
    if samples.exists() {
        history = history.with_samples(crate::observe::samples::SampleSink::load(&samples)?);
    }
    std::fs::create_dir_all(out_dir)?;
    write_plots(out_dir, &history)
}

struct Figure {
    title: String,
    /// Rows of panels; `None` leaves a cell empty.
    rows: Vec<Vec<Option<Panel>>>,
    row_height: u32,
}

// ---------------------------------------------------------------------------------------
// resources.svg

/// One metric as drawn: where it comes from (procfs sampler first, the hub's Prometheus
/// `process_*` as a fallback), how to scale it, what to call it.
struct MetricSpec {
    metrics: &'static [&'static str],
    label: &'static str,
    scale: f64,
    /// Cumulative counter: plot its rate instead.
    rate: bool,
}

const MEMORY: &[MetricSpec] =
    &[MetricSpec { metrics: &["rss_bytes", "process_resident_memory_bytes"], label: "RSS", scale: 1e-6, rate: false }];
const COUNTS: &[MetricSpec] = &[
    MetricSpec { metrics: &["open_fds", "process_open_fds"], label: "open fds", scale: 1.0, rate: false },
    MetricSpec { metrics: &["threads"], label: "threads", scale: 1.0, rate: false },
    MetricSpec { metrics: &["child_processes"], label: "child processes", scale: 1.0, rate: false },
    MetricSpec { metrics: &["listening_ports"], label: "listening ports", scale: 1.0, rate: false },
];
const CPU: &[MetricSpec] = &[
    MetricSpec { metrics: &["cpu_seconds", "process_cpu_seconds_total"], label: "CPU", scale: 100.0, rate: true },
    // The procfs sampler's own reads (component `harness`).
    MetricSpec { metrics: &["sampler_cpu_seconds"], label: "sampler CPU", scale: 100.0, rate: true },
];

/// The samples of one metric of one component as (t, value), values of samples taken at the
/// same moment (different labels, e.g. per process) summed.
fn sample_points(history: &History, component: &str, metric: &str) -> Vec<(f64, f64)> {
    let mut by_t: BTreeMap<u64, f64> = BTreeMap::new();
    for s in history.series(component, metric) {
        if s.value.is_finite() {
            *by_t.entry(s.at.as_nanos() as u64).or_default() += s.value;
        }
    }
    by_t.into_iter().map(|(t, v)| (t as f64 / 1e9, v)).collect()
}

/// Split a sampled curve where the sampling paused (process down, sampler restarted).
fn split_gaps(points: Vec<(f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    if points.len() < 3 {
        return vec![points];
    }
    let dts: Vec<f64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let Some(step) = median(&dts) else { return vec![points] };
    let gap = (step * 4.0).max(3.0);
    let mut runs = vec![Vec::new()];
    let mut prev: Option<f64> = None;
    for p in points {
        if prev.is_some_and(|t| p.0 - t > gap) {
            runs.push(Vec::new());
        }
        prev = Some(p.0);
        runs.last_mut().expect("non-empty").push(p);
    }
    runs
}

/// A counter's rate of change per second; resets (restarts) start a new run.
fn counter_rate(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter_map(|w| {
            let (dt, dv) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            (dt > 0.0 && dv >= 0.0).then(|| ((w[0].0 + w[1].0) / 2.0, dv / dt))
        })
        .collect()
}

fn spec_series(history: &History, component: &str, specs: &[MetricSpec], color_offset: usize) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let Some((metric, points)) = spec.metrics.iter().map(|m| (*m, sample_points(history, component, m))).find(|(_, p)| !p.is_empty())
        else {
            continue;
        };
        let points = if spec.rate { counter_rate(&points) } else { points };
        let points: Vec<(f64, f64)> = points.into_iter().map(|(t, v)| (t, v * spec.scale)).collect();
        let label = if metric.starts_with("process_") { format!("{} (prometheus)", spec.label) } else { spec.label.to_string() };
        out.push(Series::new(label, PALETTE[(color_offset + i) % PALETTE.len()], 2, split_gaps(points)));
    }
    out
}

/// Titled after what it shows: "hub: open fds, threads".
fn counts_panel(component: &str, series: Vec<Series>) -> Option<Panel> {
    let what: Vec<&str> = series.iter().map(|s| s.label.trim_end_matches(" (prometheus)")).collect();
    let title = format!("{component}: {}", what.join(", "));
    Panel::new(title, "count", series)
}

fn component_order(c: &str) -> (usize, String) {
    let rank = ["hub", "proxy", "culler"].iter().position(|k| *k == c).unwrap_or(3);
    (rank, c.to_string())
}

fn resources_figure(history: &History) -> Option<Figure> {
    let resource_metrics: Vec<&str> =
        [MEMORY, COUNTS, CPU].iter().flat_map(|specs| specs.iter().flat_map(|s| s.metrics.iter().copied())).collect();
    let mut components: Vec<String> =
        history.samples.iter().filter(|s| resource_metrics.contains(&s.metric.as_str())).map(|s| s.component.clone()).collect();
    components.sort_by_key(|c| component_order(c));
    components.dedup();

    let mut rows: Vec<Vec<Option<Panel>>> = Vec::new();
    for c in &components {
        let mut row = vec![
            Panel::new(format!("{c}: memory"), "RSS (MB)", spec_series(history, c, MEMORY, 0)),
            counts_panel(c, spec_series(history, c, COUNTS, 1)),
            Panel::new(format!("{c}: CPU"), "CPU (% of one core)", spec_series(history, c, CPU, 5)),
        ];
        for p in row.iter_mut().flatten() {
            p.restarts_of = Some(c.clone());
        }
        if row.iter().any(Option::is_some) {
            rows.push(row);
        }
    }

    // What the hub has: users (Prometheus gauge) and servers (its REST API, and the gauge).
    let users = Panel::new(
        "hub: users",
        "users",
        vec![Series::new("jupyterhub_total_users", PALETTE[0], 2, split_gaps(sample_points(history, "hub", "jupyterhub_total_users")))],
    );
    let servers = Panel::new(
        "hub: servers",
        "servers",
        vec![
            Series::new(
                "active (hub API)",
                PALETTE[2],
                2,
                split_gaps(sample_points(history, crate::observe::hub_state::HUB_API, crate::observe::hub_state::ACTIVE_SERVERS)),
            ),
            Series::new(
                "ready (hub API)",
                PALETTE[5],
                2,
                split_gaps(sample_points(history, crate::observe::hub_state::HUB_API, crate::observe::hub_state::READY_SERVERS)),
            ),
            Series::new(
                "jupyterhub_running_servers",
                PALETTE[1],
                1,
                split_gaps(sample_points(history, "hub", "jupyterhub_running_servers")),
            ),
        ],
    );
    if users.is_some() || servers.is_some() {
        rows.push(vec![users, servers]);
    }

    // Drop columns that are empty in every row.
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let keep: Vec<bool> = (0..ncols).map(|j| rows.iter().any(|r| r.get(j).is_some_and(Option::is_some))).collect();
    for row in &mut rows {
        let mut j = 0;
        row.retain(|_| {
            j += 1;
            keep[j - 1]
        });
    }
    rows.retain(|r| r.iter().any(Option::is_some));
    if rows.is_empty() {
        return None;
    }
    Some(Figure { title: "Resources per component, and what the hub holds".into(), rows, row_height: 270 })
}

// ---------------------------------------------------------------------------------------
// rate.svg and latency.svg

/// Bin width (s) giving at most `max_bins` bins over `span`, rounded to a readable value.
fn bin_width(span: f64, max_bins: f64) -> f64 {
    let raw = (span / max_bins).max(1.0);
    [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]
        .into_iter()
        .find(|w| *w >= raw)
        .unwrap_or_else(|| (raw / 3600.0).ceil() * 3600.0)
}

fn class_color(class: &str) -> RGBColor {
    match class {
        "2xx" => RGBColor(0x2C, 0xA0, 0x2C),
        "3xx" => RGBColor(0x1F, 0x77, 0xB4),
        "4xx" => RGBColor(0xFF, 0x7F, 0x0E),
        "5xx" => RGBColor(0xD6, 0x27, 0x28),
        "unreachable" => RGBColor(0x00, 0x00, 0x00),
        _ => RGBColor(0x94, 0x67, 0xBD),
    }
}

fn class_rank(class: &str) -> usize {
    ["2xx", "3xx", "4xx", "5xx", "unreachable"].iter().position(|c| *c == class).unwrap_or(5)
}

fn client_order(c: &str) -> (usize, String) {
    const ORDER: [&str; 6] = ["workload", "culler", "hub-latency", "probe", "fault", "harness"];
    let rank = ORDER.iter().position(|k| *k == c).unwrap_or(ORDER.len());
    (rank, c.to_string())
}

fn grid(panels: Vec<Panel>) -> Vec<Vec<Option<Panel>>> {
    let cols = if panels.len() <= 3 { 1 } else { 2 };
    let mut rows = Vec::new();
    let mut it = panels.into_iter().peekable();
    while it.peek().is_some() {
        let mut row: Vec<Option<Panel>> = it.by_ref().take(cols).map(Some).collect();
        row.resize_with(cols, || None);
        rows.push(row);
    }
    rows
}

fn rate_figure(history: &History, marks: &Marks) -> Option<Figure> {
    let bin = bin_width(marks.x_max, 300.0);
    let nbins = (marks.x_max / bin).ceil().max(1.0) as usize;
    // client -> class -> counts per bin
    let mut counts: BTreeMap<String, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
    for (at, r) in history.requests() {
        let i = ((secs(at) / bin) as usize).min(nbins - 1);
        counts.entry(r.client.clone()).or_default().entry(r.status_class()).or_insert_with(|| vec![0; nbins])[i] += 1;
    }
    if counts.is_empty() {
        return None;
    }
    let mut clients: Vec<String> = counts.keys().cloned().collect();
    clients.sort_by_key(|c| client_order(c));
    let unit = if bin == 1.0 { "1 s bins".to_string() } else { format!("{bin} s bins") };
    let panels: Vec<Panel> = clients
        .iter()
        .filter_map(|client| {
            let classes = &counts[client];
            let total: u32 = classes.values().flatten().sum();
            let mut names: Vec<&String> = classes.keys().collect();
            names.sort_by_key(|c| class_rank(c));
            let series = names
                .into_iter()
                .map(|class| {
                    let n: u32 = classes[class].iter().sum();
                    let pts = classes[class].iter().enumerate().map(|(i, c)| ((i as f64 + 0.5) * bin, *c as f64 / bin)).collect();
                    Series::new(format!("{class} ({n})"), class_color(class), 2, vec![pts])
                })
                .collect();
            Panel::new(format!("client {client}: {total} requests, by status ({unit})"), "requests/s", series)
        })
        .collect();
    Some(Figure { title: "Request rate per client and status class".into(), rows: grid(panels), row_height: 240 })
}

/// p50 and p99 per bin, in ms, as runs broken at empty bins.
fn latency_series(samples: &[(f64, f64)], bin: f64, nbins: usize, label: &str, colors: (RGBColor, RGBColor)) -> Vec<Series> {
    let mut bins: Vec<Vec<f64>> = vec![Vec::new(); nbins];
    for (t, ms) in samples {
        bins[((t / bin) as usize).min(nbins - 1)].push(*ms);
    }
    // Sparse clients (a request every few bins) stay one line; a longer silence breaks it.
    const BRIDGE_BINS: usize = 4;
    let (mut p50, mut p99) = (vec![Vec::new()], vec![Vec::new()]);
    let mut empty = 0;
    for (i, b) in bins.iter_mut().enumerate() {
        if b.is_empty() {
            empty += 1;
            if empty == BRIDGE_BINS + 1 && !p50.last().is_some_and(Vec::is_empty) {
                p50.push(Vec::new());
                p99.push(Vec::new());
            }
            continue;
        }
        b.sort_by(f64::total_cmp);
        let (Some(mid), Some(tail)) = (nearest_rank(b, 0.5), nearest_rank(b, 0.99)) else { continue };
        empty = 0;
        let t = (i as f64 + 0.5) * bin;
        p50.last_mut().expect("non-empty").push((t, mid));
        p99.last_mut().expect("non-empty").push((t, tail));
    }
    let sep = if label.is_empty() { "" } else { " " };
    vec![Series::new(format!("{label}{sep}p99"), colors.1, 1, p99), Series::new(format!("{label}{sep}p50"), colors.0, 2, p50)]
}

fn lighter(c: RGBColor) -> RGBColor {
    let f = |v: u8| (v as f64 + (255.0 - v as f64) * 0.45) as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// Individual points as dots, thinned to at most [`MAX_DOTS`].
fn dots(label: &str, color: RGBColor, pts: &[(f64, f64)]) -> Series {
    let step = pts.len().div_ceil(MAX_DOTS).max(1);
    let runs = pts.iter().step_by(step).map(|p| vec![*p]).collect();
    let mut s = Series::new(format!("{label} ({})", pts.len()), color, 2, runs);
    s.scatter = true;
    s
}
const MAX_DOTS: usize = 2000;

fn latency_figure(history: &History, marks: &Marks) -> Option<Figure> {
    let bin = bin_width(marks.x_max, 120.0);
    let nbins = (marks.x_max / bin).ceil().max(1.0) as usize;
    let unit = format!("{bin} s bins");
    let mut panels = Vec::new();

    // client -> (answered, unreachable) as (t, ms)
    type Points = Vec<(f64, f64)>;
    let mut by_client: BTreeMap<String, (Points, Points)> = BTreeMap::new();
    for (at, r) in history.requests() {
        let e = by_client.entry(r.client.clone()).or_default();
        let p = (secs(at), r.latency.as_secs_f64() * 1e3);
        if r.status == 0 {
            e.1.push(p)
        } else {
            e.0.push(p)
        }
    }
    let mut clients: Vec<&String> = by_client.keys().collect();
    clients.sort_by_key(|c| client_order(c));
    for client in clients {
        let (answered, unreachable) = &by_client[client];
        let mut series = latency_series(answered, bin, nbins, "answered", (PALETTE[0], PALETTE[1]));
        series.push(dots("unreachable", class_color("unreachable"), unreachable));
        if let Some(mut p) = Panel::new(
            format!("client {client}: request latency, {} requests ({unit})", answered.len() + unreachable.len()),
            "latency (ms)",
            series,
        ) {
            p.log_if_wider_than = Some(30.0);
            panels.push(p);
        }
    }

    // workload -> op -> (t, ms); failed and indeterminate ops also as dots.
    let mut by_op: BTreeMap<String, BTreeMap<String, Points>> = BTreeMap::new();
    let mut not_ok: BTreeMap<String, Points> = BTreeMap::new();
    for (at, o) in history.ops() {
        let p = (secs(at), o.latency.as_secs_f64() * 1e3);
        by_op.entry(o.workload.clone()).or_default().entry(o.op.clone()).or_default().push(p);
        if o.result != crate::observe::history::OpResult::Ok {
            not_ok.entry(o.workload.clone()).or_default().push(p);
        }
    }
    for (workload, ops) in &by_op {
        let n: usize = ops.values().map(Vec::len).sum();
        let mut series: Vec<Series> = ops
            .iter()
            .enumerate()
            .flat_map(|(i, (op, pts))| {
                let c = PALETTE[(i * 2) % PALETTE.len()];
                latency_series(pts, bin, nbins, op, (c, lighter(c)))
            })
            .collect();
        series.push(dots("not ok", class_color("5xx"), not_ok.get(workload).map_or(&[][..], Vec::as_slice)));
        if let Some(mut p) = Panel::new(format!("workload {workload}: op latency, {n} ops ({unit})"), "latency (ms)", series) {
            p.log_if_wider_than = Some(30.0);
            panels.push(p);
        }
    }
    if panels.is_empty() {
        return None;
    }
    Some(Figure { title: "Latency over time: p50 and p99 per bin".into(), rows: grid(panels), row_height: 250 })
}

// ---------------------------------------------------------------------------------------
// disk.svg

/// The image cleaner's threshold as it announced it at start (relative mode: a percentage of
/// blocks or inodes), from its recorded log line; one per distinct value (a restart with other
/// settings would show two).
fn cleaner_thresholds(history: &History) -> Vec<f64> {
    let re = regex::Regex::new(r"has (\d+(?:\.\d+)?)% inodes or blocks used").expect("a valid pattern");
    let mut out: Vec<f64> =
        log_lines(history, IMAGE_CLEANER).filter_map(|(_, line)| re.captures(line)?.get(1)?.as_str().parse().ok()).collect();
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

/// Per docker round, how many images running containers use.
fn images_in_use(history: &History) -> Vec<(f64, f64)> {
    let mut by_t: BTreeMap<u64, f64> = BTreeMap::new();
    for s in history.series(DOCKERD, IMAGE) {
        *by_t.entry(s.at.as_nanos() as u64).or_default() += if s.labels.get("in_use").is_some_and(|v| v == "true") { 1.0 } else { 0.0 };
    }
    by_t.into_iter().map(|(t, v)| (t as f64 / 1e9, v)).collect()
}

/// The node disk's use (blocks and inodes, the fuller of which the cleaner judges) against the
/// cleaner's threshold, and what dockerd holds: images, those in use, running containers.
fn disk_figure(history: &History) -> Option<Figure> {
    let mut used = Panel::new(
        "node disk: used % (the image cleaner acts on the fuller of the two)",
        "used (%)",
        vec![
            Series::new("blocks", PALETTE[0], 2, split_gaps(sample_points(history, NODE_DISK, BLOCKS_USED_PCT))),
            Series::new("inodes", PALETTE[1], 2, split_gaps(sample_points(history, NODE_DISK, INODES_USED_PCT))),
        ],
    )?;
    used.y_at_least = 100.0;
    used.hlines = cleaner_thresholds(history)
        .into_iter()
        .map(|t| HLine { y: t, label: format!("image cleaner threshold {}%", fmt_tick(t)), color: THRESHOLD_LINE })
        .collect();
    let images = Panel::new(
        "dockerd: images and containers",
        "count",
        vec![
            Series::new("images", PALETTE[2], 2, split_gaps(sample_points(history, DOCKERD, IMAGES))),
            Series::new("images in use", PALETTE[4], 4, split_gaps(images_in_use(history))),
            Series::new("running containers", PALETTE[5], 1, split_gaps(sample_points(history, DOCKERD, CONTAINERS_RUNNING))),
        ],
    );
    Some(Figure { title: "The node's disk and the image cleaner".into(), rows: vec![vec![Some(used)], vec![images]], row_height: 300 })
}

// ---------------------------------------------------------------------------------------
// binder.svg

/// The dots of build streams whose build never started (the repos take the palette).
const NEVER_STARTED: RGBColor = RGBColor(0x00, 0x00, 0x00);

/// Points (requested at, wait) by repo, and those of the streams that never started.
type QueueWaits = (BTreeMap<String, Vec<(f64, f64)>>, Vec<(f64, f64)>);

/// Per repo, (requested at, queue wait) of its streams whose build started; and for the
/// streams whose build never started, (requested at, time from the request to `end`): how
/// long they had waited when the run ended, a lower bound of their wait.
fn queue_waits(history: &History, end: f64) -> QueueWaits {
    let (mut started, mut never): QueueWaits = Default::default();
    for s in history.build_streams() {
        let at = secs(s.requested_at);
        match s.queue_wait() {
            Some(wait) => started.entry(s.repo.clone()).or_default().push((at, secs(wait))),
            None => never.push((at, (end - at).max(0.0))),
        }
    }
    (started, never)
}

/// What BinderHub builds at once against what it says and what its clients wait: the run's
/// repo2docker processes (what really builds, against `concurrent_build_limit` when the run
/// recorded it), BinderHub's own gauge (it counts requests: a build followed by several
/// watchers counts once per watcher, and at BinderHub's main a failed one stays counted), and
/// each build stream's wait from its request to its build's start.
fn binder_figure(history: &History, marks: &Marks) -> Option<Figure> {
    let mut in_flight = Panel::new(
        "builds in flight: the run's repo2docker processes",
        "builds",
        vec![Series::new("repo2docker processes", PALETTE[0], 2, split_gaps(sample_points(history, BINDERHUB, BUILDS_IN_FLIGHT)))],
    );
    if let (Some(panel), Some(limit)) = (in_flight.as_mut(), recorded_build_limit(history)) {
        panel.hlines.push(HLine { y: limit as f64, label: format!("concurrent_build_limit {limit}"), color: THRESHOLD_LINE });
    }
    let gauge = Panel::new(
        "BinderHub's gauge: build requests in progress",
        "requests",
        vec![Series::new(INPROGRESS_BUILDS, PALETTE[1], 2, split_gaps(sample_points(history, BINDERHUB, INPROGRESS_BUILDS)))],
    );
    let (started, never) = queue_waits(history, marks.x_max);
    let mut series: Vec<Series> = started.iter().enumerate().map(|(i, (repo, pts))| dots(repo, PALETTE[i % PALETTE.len()], pts)).collect();
    series.push(dots("never started, waiting until the run's end", NEVER_STARTED, &never));
    // A run has tens of streams, not thousands of requests: dots that can be seen.
    for s in &mut series {
        s.width = 4;
    }
    let waits = Panel::new("queue wait of each build stream, at its request: request → build start", "wait (s)", series);

    // Only BinderHub's restarts are marked: the builds are its.
    let rows: Vec<Vec<Option<Panel>>> = [in_flight, gauge, waits]
        .into_iter()
        .flatten()
        .map(|mut p| {
            p.restarts_of = Some(BINDERHUB.into());
            vec![Some(p)]
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(Figure { title: "BinderHub build queue".into(), rows, row_height: 250 })
}

// ---------------------------------------------------------------------------------------
// Rendering.

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

fn render(fig: &Figure, marks: &Marks) -> anyhow::Result<String> {
    let ncols = fig.rows.iter().map(Vec::len).max().unwrap_or(1).max(1) as u32;
    let height = HEADER_H + fig.row_height * fig.rows.len() as u32 + 8;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (FIG_WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (header, body) = root.split_vertically(HEADER_H);
        draw_header(&header, &fig.title, marks)?;
        let cell_w = FIG_WIDTH / ncols;
        for (i, row) in fig.rows.iter().enumerate() {
            for (j, panel) in row.iter().enumerate() {
                let Some(panel) = panel else { continue };
                let x0 = j as u32 * cell_w;
                let y0 = i as u32 * fig.row_height;
                let cell = body.clone().shrink((x0, y0), (cell_w, fig.row_height));
                draw_panel(&cell, panel, marks)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

fn text_style(size: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, px(size)).into_font().color(&color)
}

/// Title, plus a key to the marks shared by all panels.
fn draw_header(area: &DrawingArea<SVGBackend, Shift>, title: &str, marks: &Marks) -> anyhow::Result<()> {
    area.draw(&Text::new(title.to_string(), (16, 10), (FONT, px(20.0)).into_font().style(FontStyle::Bold).color(&BLACK))).map_err(err)?;
    let key = text_style(13.0, BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let y = 46;
    let mut x = 16;
    area.draw(&Text::new("x: seconds since run start".to_string(), (x, y), key.clone())).map_err(err)?;
    x += 210;
    let mut seen = Vec::new();
    for f in &marks.faults {
        let label = format!("fault: {}", f.label());
        if seen.contains(&label) {
            continue;
        }
        area.draw(&Rectangle::new([(x, y - 7), (x + 22, y + 7)], f.color.mix(0.35).filled())).map_err(err)?;
        area.draw(&Text::new(label.clone(), (x + 28, y), key.clone())).map_err(err)?;
        x += 40 + (label.chars().count() as i32) * 7;
        seen.push(label);
    }
    if !marks.window.is_empty() {
        area.draw(&DashedPathElement::new(vec![(x + 11, y - 9), (x + 11, y + 9)], 4, 3, WINDOW_LINE.stroke_width(1))).map_err(err)?;
        let label = marks.window.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(" / ");
        let label = format!("judged window: {label}");
        area.draw(&Text::new(label.clone(), (x + 20, y), key.clone())).map_err(err)?;
        x += 40 + (label.chars().count() as i32) * 7;
    }
    if !marks.restarts.is_empty() {
        area.draw(&PathElement::new(vec![(x + 11, y - 9), (x + 11, y + 7)], RESTART.mix(0.55).stroke_width(1))).map_err(err)?;
        area.draw(&Polygon::new(vec![(x + 11, y - 2), (x + 6, y + 7), (x + 16, y + 7)], RESTART.filled())).map_err(err)?;
        area.draw(&Text::new("restart (supervisor)".to_string(), (x + 20, y), key)).map_err(err)?;
    }
    Ok(())
}

fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 {
        return "0".into();
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Estimated width in pixels of `text` at `size` px (DejaVu/Helvetica-like sans).
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.58).ceil() as i32
}

const TITLE_PX: f64 = 14.0;
const LEGEND_PX: f64 = 12.0;
const LEGEND_LINE: i32 = 18;
/// Where the plotting area starts inside a cell (margin + y label area): the legend's
/// continuation lines align with it.
const CHART_LEFT: i32 = 8 + 70;

/// Title, then the legend entries flowing after it and wrapping under it; returns the
/// position of each legend entry and the height used.
fn layout_header(panel: &Panel, width: i32) -> (Vec<(i32, i32)>, i32) {
    let mut x = 10 + text_width(&panel.title, TITLE_PX) + 28;
    let mut y = 12;
    let mut at = Vec::new();
    for s in &panel.series {
        let w = 30 + text_width(&s.label, LEGEND_PX) + 18;
        if x + w > width - 10 && x > CHART_LEFT {
            x = CHART_LEFT;
            y += LEGEND_LINE;
        }
        at.push((x, y));
        x += w;
    }
    (at, y + 14)
}

fn draw_panel(cell: &DrawingArea<SVGBackend, Shift>, panel: &Panel, marks: &Marks) -> anyhow::Result<()> {
    let (w, _) = cell.dim_in_pixel();
    let (legend_at, header_h) = layout_header(panel, w as i32);
    let (header, chart_area) = cell.split_vertically(header_h as u32);
    header
        .draw(&Text::new(
            panel.title.clone(),
            (10, 12),
            (FONT, px(TITLE_PX)).into_font().style(FontStyle::Bold).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    let style = text_style(LEGEND_PX, BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (s, (x, y)) in panel.series.iter().zip(legend_at) {
        if s.scatter {
            header.draw(&Circle::new((x + 12, y), 3, s.color.filled())).map_err(err)?;
        } else {
            header.draw(&PathElement::new(vec![(x, y), (x + 24, y)], s.color.stroke_width(s.width.max(2) + 1))).map_err(err)?;
        }
        header.draw(&Text::new(s.label.clone(), (x + 30, y), style.clone())).map_err(err)?;
    }

    let values: Vec<f64> = panel.series.iter().flat_map(Series::values).filter(|v| v.is_finite()).collect();
    let max = values.iter().copied().chain(panel.hlines.iter().map(|h| h.y)).fold(panel.y_at_least, f64::max);
    let min_pos = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let log = panel.log_if_wider_than.is_some_and(|k| min_pos.is_finite() && max / min_pos > k);
    // Headroom above the data for the fault bars along the top.
    let (_, chart_h) = chart_area.dim_in_pixel();
    let plot_h = (chart_h as f64 - 48.0).max(40.0);
    let bars = (marks.faults.len().min(4) as i32 * FAULT_ROW) as f64;
    let frac = if bars > 0.0 { ((bars + 6.0) / plot_h).min(0.5) } else { 0.0 };
    if log {
        // Slightly wider than whole decades so their ticks are drawn.
        let lo = 10f64.powf(min_pos.log10().floor()) * 0.999;
        let top = max.log10() + (max.log10() - lo.log10()) * frac / (1.0 - frac);
        let hi = 10f64.powf(top.ceil()).max(lo * 10.0) * 1.001;
        draw_chart(&chart_area, panel, marks, (lo..hi).log_scale(), lo, hi, true)
    } else {
        let hi = if max > 0.0 { max * 1.08 / (1.0 - frac) } else { 1.0 };
        draw_chart(&chart_area, panel, marks, 0.0..hi, 0.0, hi, false)
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_chart<Y>(
    area: &DrawingArea<SVGBackend, Shift>,
    panel: &Panel,
    marks: &Marks,
    y_range: Y,
    y_lo: f64,
    y_hi: f64,
    log: bool,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let x_max = marks.x_max;
    let mut chart = ChartBuilder::on(area)
        .margin_top(4)
        .margin_left(8)
        .margin_right(10)
        .margin_bottom(4)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, y_range)
        .map_err(err)?;

    let y_desc = if log { format!("{}, log scale", panel.y_desc) } else { panel.y_desc.clone() };
    let x_fmt = |v: &f64| format!("{v:.0}");
    let y_fmt = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, px(12.0)))
        .axis_desc_style((FONT, px(13.0)))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD).stroke_width(1))
        .light_line_style(RGBColor(0xF2, 0xF2, 0xF2).stroke_width(1))
        .draw()
        .map_err(err)?;

    // Fault windows, full height.
    for f in &marks.faults {
        chart
            .draw_series(std::iter::once(Rectangle::new([(f.start, y_lo), (f.end.min(x_max), y_hi)], f.color.mix(SHADE_OPACITY).filled())))
            .map_err(err)?;
    }
    // Restarts: a thin red line through the panel.
    let restarts: Vec<f64> =
        marks.restarts.iter().filter(|(_, c)| panel.restarts_of.as_ref().is_none_or(|only| only == c)).map(|(t, _)| *t).collect();
    for t in &restarts {
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(*t, y_lo), (*t, y_hi)], RESTART.mix(0.55).stroke_width(1))))
            .map_err(err)?;
    }
    // The judged window's edges.
    for (t, _) in &marks.window {
        chart
            .draw_series(std::iter::once(DashedPathElement::new(vec![(*t, y_lo), (*t, y_hi)], 6, 4, WINDOW_LINE.stroke_width(1))))
            .map_err(err)?;
    }

    for s in &panel.series {
        for run in &s.runs {
            match run.len() {
                0 => {}
                _ if s.scatter => {
                    chart.draw_series(run.iter().map(|p| Circle::new(*p, s.width, s.color.filled()))).map_err(err)?;
                }
                1 => {
                    chart.draw_series(std::iter::once(Circle::new(run[0], 3, s.color.filled()))).map_err(err)?;
                }
                _ => {
                    chart.draw_series(LineSeries::new(run.iter().copied(), s.color.stroke_width(s.width))).map_err(err)?;
                }
            }
        }
    }

    // Thresholds: dashed, across the whole run.
    for h in &panel.hlines {
        chart
            .draw_series(std::iter::once(DashedPathElement::new(vec![(0.0, h.y), (x_max, h.y)], 10, 5, h.color.stroke_width(2))))
            .map_err(err)?;
    }

    // Labels last, so lines do not cross them.
    for h in &panel.hlines {
        let style = text_style(12.0, h.color).pos(Pos::new(HPos::Right, VPos::Bottom));
        chart.draw_series(std::iter::once(EmptyElement::at((x_max, h.y)) + Text::new(h.label.clone(), (-6, -4), style))).map_err(err)?;
    }
    // A label near the right edge goes to the left of its line so it stays inside the cell.
    let std::ops::Range { start: px_lo, end: px_hi } = chart.plotting_area().get_pixel_range().0;
    let px_of = |t: f64| px_lo + ((t / x_max) * (px_hi - px_lo) as f64) as i32;
    let fits_right = |t: f64, text: &str, size: f64| px_of(t) + 4 + text_width(text, size) <= px_hi + 8;
    // Each fault also gets a labelled bar along the top, one row per fault, so overlapping
    // windows stay apart.
    for (i, f) in marks.faults.iter().enumerate() {
        let dy = 1 + FAULT_ROW * (i as i32 % 4);
        let end = f.end.min(x_max);
        let wpx = (px_of(end) - px_of(f.start)).max(2);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((f.start, y_hi)) + Rectangle::new([(0, dy), (wpx, dy + FAULT_ROW - 1)], f.color.mix(0.35).filled()),
            ))
            .map_err(err)?;
        let label = f.label();
        let (x, dx, h) = if fits_right(f.start, &label, 11.0) { (f.start, 4, HPos::Left) } else { (end, -4, HPos::Right) };
        let style = text_style(11.0, RGBColor(0x22, 0x22, 0x22)).pos(Pos::new(h, VPos::Center));
        chart.draw_series(std::iter::once(EmptyElement::at((x, y_hi)) + Text::new(label, (dx, dy + FAULT_ROW / 2), style))).map_err(err)?;
    }
    // The window's start is labelled outside the window (left of its line), its stop also
    // outside (right), each flipping inside at the panel's edge; if the two then collide the
    // stop's label moves up a line.
    let mut taken: Option<(i32, i32)> = None;
    for (t, name) in &marks.window {
        let w = text_width(name, 10.0);
        let x = px_of(*t);
        let is_stop = name == WORKLOAD_STOP;
        let left = if is_stop { !fits_right(*t, name, 10.0) } else { x - 3 - w >= px_lo - 4 };
        let span = if left { (x - 3 - w, x) } else { (x, x + 3 + w) };
        let dy = if taken.is_some_and(|(a, b)| span.0 < b && a < span.1) { -15 } else { -3 };
        taken = Some(span);
        let (dx, h) = if left { (-3, HPos::Right) } else { (3, HPos::Left) };
        let style = text_style(10.0, WINDOW_LINE).pos(Pos::new(h, VPos::Bottom));
        chart.draw_series(std::iter::once(EmptyElement::at((*t, y_lo)) + Text::new(name.clone(), (dx, dy), style))).map_err(err)?;
    }
    for t in &restarts {
        chart
            .draw_series(std::iter::once(EmptyElement::at((*t, y_lo)) + Polygon::new(vec![(0, -9), (-5, 0), (5, 0)], RESTART.filled())))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::history::{Entry, Event, FaultEvent, PhaseEvent, RequestRecord, RestartEvent};
    use crate::observe::samples::Sample;

    fn at(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn phase(t: f64, name: &str) -> Entry {
        Entry { at: at(t), event: Event::Phase(PhaseEvent { name: name.into(), detail: String::new() }) }
    }

    fn fault(t: f64, kind: &str, target: &str, phase: FaultPhase) -> Entry {
        Entry { at: at(t), event: Event::Fault(FaultEvent { kind: kind.into(), target: target.into(), phase, detail: String::new() }) }
    }

    fn request(t: f64, client: &str, status: u16, ms: f64) -> Entry {
        Entry {
            at: at(t),
            event: Event::Request(RequestRecord {
                client: client.into(),
                upstream: "hub".into(),
                method: "GET".into(),
                route: "/hub/api/users".into(),
                user: None,
                server: None,
                status,
                latency: Duration::from_secs_f64(ms / 1e3),
            }),
        }
    }

    fn sample(t: f64, component: &str, metric: &str, value: f64) -> Sample {
        Sample { at: at(t), component: component.into(), metric: metric.into(), labels: BTreeMap::new(), value }
    }

    fn synthetic() -> History {
        let mut entries = vec![phase(0.0, "run-start"), phase(5.0, WORKLOAD_START), phase(10.0, SETUP_DONE)];
        entries.push(fault(10.0, "accumulate-users", "hub", FaultPhase::Injected));
        entries.push(fault(30.0, "kill-process", "proxy", FaultPhase::Injected));
        entries.push(Entry {
            at: at(30.1),
            event: Event::Restart(RestartEvent {
                component: "proxy".into(),
                exit: "signal: SIGKILL".into(),
                attempt: 1,
                backoff: Duration::from_millis(500),
            }),
        });
        entries.push(fault(45.0, "kill-process", "proxy", FaultPhase::Healed));
        for i in 0..600 {
            let t = 5.0 + i as f64 * 0.1;
            let status = if (30.0..32.0).contains(&t) {
                0
            } else if i % 17 == 0 {
                500
            } else {
                200
            };
            entries.push(request(t, "workload", status, 5.0 + (i % 50) as f64 * if status == 0 { 100.0 } else { 1.0 }));
            if i % 5 == 0 {
                entries.push(request(t + 0.05, "culler", if i % 3 == 0 { 404 } else { 204 }, 12.0));
            }
        }
        entries.push(phase(65.0, WORKLOAD_STOP));
        entries.sort_by_key(|e| e.at);
        let mut samples = Vec::new();
        for i in 0..70 {
            let t = i as f64;
            samples.push(sample(t, "hub", "rss_bytes", 150e6 + t * 1e6));
            samples.push(sample(t, "hub", "open_fds", 40.0 + t));
            samples.push(sample(t, "hub", "threads", 8.0));
            samples.push(sample(t, "hub", "cpu_seconds", t * 0.3));
            if !(30.0..31.5).contains(&t) {
                samples.push(sample(t, "proxy", "rss_bytes", 60e6));
                samples.push(sample(t, "proxy", "child_processes", 1.0));
                samples.push(sample(t, "proxy", "listening_ports", 2.0));
            }
            samples.push(sample(t, "hub", "jupyterhub_total_users", 2000.0));
            samples.push(sample(t, "hub-api", "active_servers", 15.0 - (t / 10.0).floor()));
        }
        History::new(entries).with_samples(samples)
    }

    fn hex(c: RGBColor) -> String {
        format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2)
    }

    #[test]
    fn writes_three_valid_svgs_with_labels_legends_and_fault_windows() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_plots(dir.path(), &synthetic()).unwrap();
        let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["resources.svg", "rate.svg", "latency.svg"]);
        for p in &written {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(svg.trim_start().starts_with("<svg"), "{}", p.display());
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("time (s)"));
            assert!(svg.contains("accumulate-users → hub"), "fault label in {}", p.display());
            assert!(svg.contains("kill-process → proxy"));
            assert!(svg.contains("(not healed)"), "accumulate-users is never healed");
            assert!(svg.contains(&hex(FAULT_SHADES[0])), "fault shading in {}", p.display());
            assert!(svg.contains(&hex(FAULT_SHADES[1])));
            assert!(svg.contains(SETUP_DONE) && svg.contains(WORKLOAD_STOP));
        }
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let res = read("resources.svg");
        for label in ["RSS (MB)", "count", "CPU (% of one core)", "open fds", "threads", "child processes", "listening ports"] {
            assert!(res.contains(label), "resources.svg lacks {label}");
        }
        assert!(res.contains("jupyterhub_total_users") && res.contains("active (hub API)"));
        assert!(res.contains("hub: memory") && res.contains("proxy: memory"));
        let rate = read("rate.svg");
        for label in ["requests/s", "client workload", "client culler", "2xx", "5xx", "4xx", "unreachable"] {
            assert!(rate.contains(label), "rate.svg lacks {label}");
        }
        let lat = read("latency.svg");
        for label in ["latency (ms", "p50", "p99", "log scale"] {
            assert!(lat.contains(label), "latency.svg lacks {label}");
        }
    }

    /// A node run: the fill at 5 s takes blocks to 90 %, the cleaner (threshold 80 %, as it
    /// announced in its log) prunes at 14 s; one image in use throughout.
    fn disk_history() -> History {
        let rec = crate::observe::history::Recorder::in_memory(std::time::Instant::now());
        crate::observe::logs::record_line(
            &rec,
            IMAGE_CLEANER,
            "2026-11-22 03:07:18,089 Pruning docker images when /r/data-root has 80.0% inodes or blocks used",
        );
        crate::observe::logs::record_line(&rec, IMAGE_CLEANER, "2026-11-22 03:07:18,090 4.1% used");
        let mut entries = rec.history().entries;
        entries.extend([
            phase(2.0, SETUP_DONE),
            fault(5.0, "fill-disk", "node-disk", FaultPhase::Injected),
            fault(40.0, "fill-disk", "node-disk", FaultPhase::Healed),
            phase(40.0, WORKLOAD_STOP),
        ]);
        entries.sort_by_key(|e| e.at);
        let mut samples = Vec::new();
        for i in 0..=45 {
            let t = i as f64;
            let blocks = match t {
                t if t < 5.0 => 4.0,
                t if t < 10.0 => 4.0 + (t - 5.0) * 17.2,
                t if t < 14.0 => 90.0,
                _ => 6.0,
            };
            samples.push(sample(t, NODE_DISK, BLOCKS_USED_PCT, blocks));
            samples.push(sample(t, NODE_DISK, INODES_USED_PCT, 1.5));
            samples.push(sample(t, NODE_DISK, crate::observe::disk::USED_PCT, blocks.max(1.5)));
            if i % 2 == 0 {
                let fill_images = if (6.0..14.0).contains(&t) { 8 } else { 0 };
                samples.push(sample(t, DOCKERD, IMAGES, 1.0 + fill_images as f64));
                samples.push(sample(t, DOCKERD, CONTAINERS_RUNNING, 1.0));
                let image = |id: &str, in_use: bool| Sample {
                    at: at(t),
                    component: DOCKERD.into(),
                    metric: IMAGE.into(),
                    labels: [("id", id), ("tags", "hubchaos/x:r"), ("in_use", if in_use { "true" } else { "false" })]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: 5e6,
                };
                samples.push(image("sha256:in-use", true));
                samples.extend((0..fill_images).map(|n| image(&format!("sha256:fill-{n}"), false)));
            }
        }
        History::new(entries).with_samples(samples)
    }

    #[test]
    fn the_disk_figure_draws_use_against_the_cleaners_threshold_with_fault_windows() {
        let h = disk_history();
        assert_eq!(cleaner_thresholds(&h), [80.0]);
        let in_use = images_in_use(&h);
        assert!(in_use.len() == 23 && in_use.iter().all(|p| p.1 == 1.0), "{in_use:?}");
        let dir = tempfile::tempdir().unwrap();
        let written = write_plots(dir.path(), &h).unwrap();
        assert!(written.iter().any(|p| p.ends_with("disk.svg")), "{written:?}");
        let svg = std::fs::read_to_string(dir.path().join("disk.svg")).unwrap();
        assert!(svg.trim_end().ends_with("</svg>"));
        for label in ["used (%)", "blocks", "inodes", "image cleaner threshold 80%", "images in use", "running containers", "time (s)"] {
            assert!(svg.contains(label), "disk.svg lacks {label}");
        }
        assert!(svg.contains("fill-disk → node-disk") && svg.contains(&hex(FAULT_SHADES[0])), "the fill's window is shaded");
        let c = THRESHOLD_LINE;
        assert!(svg.contains(&format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2)), "the threshold is drawn");
        assert!(svg.contains(SETUP_DONE) && svg.contains(WORKLOAD_STOP));
        // Without node-disk samples there is no disk figure (the hub run writes three).
        assert!(!write_plots(dir.path(), &synthetic()).unwrap().iter().any(|p| p.ends_with("disk.svg")));
    }

    /// A BinderHub run with a limit of 2: `slow` asked for twice at 1 s (started at 2 s),
    /// `fast` at 3 s (started at 8 s), `other` at 5 s and never started; BinderHub stopped
    /// from 10 to 15 s.
    fn binder_history() -> History {
        use crate::check::testkit::stream;
        use crate::component::binderhub::{deployed_detail, BINDER_DEPLOYED};
        let mut second_slow = stream("slow", 1.0, Some(2.0), Some(("ready", 30.0)), Some(30.1));
        if let Event::BuildStream(r) = &mut second_slow.event {
            r.watcher = 1;
        }
        let mut entries = vec![
            Entry { at: at(0.5), event: Event::Phase(PhaseEvent { name: BINDER_DEPLOYED.into(), detail: deployed_detail(0.5, 2) }) },
            stream("slow", 1.0, Some(2.0), Some(("ready", 30.0)), Some(30.1)),
            second_slow,
            stream("fast", 3.0, Some(8.0), Some(("ready", 12.0)), Some(12.1)),
            stream("other", 5.0, None, None, None),
            fault(10.0, "stop-process", BINDERHUB, FaultPhase::Injected),
            fault(15.0, "stop-process", BINDERHUB, FaultPhase::Healed),
        ];
        entries.sort_by_key(|e| e.at);
        let samples = (0..=40)
            .flat_map(|i| {
                let t = i as f64;
                let building = match t {
                    t if !(2.0..30.0).contains(&t) => 0.0,
                    t if (8.0..12.0).contains(&t) => 2.0,
                    _ => 1.0,
                };
                [sample(t, BINDERHUB, BUILDS_IN_FLIGHT, building), sample(t, BINDERHUB, INPROGRESS_BUILDS, if t < 1.0 { 0.0 } else { 4.0 })]
            })
            .collect();
        History::new(entries).with_samples(samples)
    }

    #[test]
    fn queue_waits_are_per_repo_and_streams_never_started_wait_until_the_end() {
        let (started, never) = queue_waits(&binder_history(), 40.0);
        assert_eq!(started.keys().collect::<Vec<_>>(), ["fast", "slow"]);
        assert_eq!(started["slow"], [(1.0, 1.0), (1.0, 1.0)]);
        assert_eq!(started["fast"], [(3.0, 5.0)]);
        assert_eq!(never, [(5.0, 35.0)]);
    }

    #[test]
    fn the_binder_figure_draws_builds_against_the_limit_the_gauge_and_the_queue_waits() {
        let h = binder_history();
        let dir = tempfile::tempdir().unwrap();
        let written = write_plots(dir.path(), &h).unwrap();
        assert!(written.iter().any(|p| p.ends_with("binder.svg")), "{written:?}");
        let svg = std::fs::read_to_string(dir.path().join("binder.svg")).unwrap();
        assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for label in [
            "BinderHub build queue",
            "builds in flight: the run&apos;s repo2docker processes",
            "concurrent_build_limit 2",
            "BinderHub&apos;s gauge: build requests in progress",
            INPROGRESS_BUILDS,
            "queue wait of each build stream, at its request: request → build start",
            "wait (s)",
            "slow (2)",
            "fast (1)",
            "never started, waiting until the run&apos;s end (1)",
            "time (s)",
        ] {
            assert!(svg.contains(label), "binder.svg lacks {label}");
        }
        let c = THRESHOLD_LINE;
        assert!(svg.contains(&format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2)), "the limit is drawn");
        assert!(svg.contains("stop-process → binderhub") && svg.contains(&hex(FAULT_SHADES[0])), "the fault's window is shaded");
        assert!(svg.contains(&hex(NEVER_STARTED)), "the stream that never started has its own colour");
    }

    #[test]
    fn without_build_streams_or_binderhub_samples_there_is_no_binder_figure() {
        let h = synthetic();
        assert!(binder_figure(&h, &marks(&h)).is_none());
        assert!(binder_figure(&History::default(), &marks(&History::default())).is_none());
        // Without the recorded limit (a run from before it was recorded) there is no line.
        let mut h = binder_history();
        h.entries.retain(|e| !matches!(&e.event, Event::Phase(_)));
        let fig = binder_figure(&h, &marks(&h)).expect("streams and samples");
        assert_eq!(fig.rows.len(), 3);
        assert!(fig.rows.iter().flatten().flatten().all(|p| p.hlines.is_empty()));
    }

    /// `HUBCHAOS_PLOT_RUN=<run dir> HUBCHAOS_PLOT_OUT=<dir> cargo test -p hubchaos --lib
    /// report::plot -- --ignored`: draw a recorded run's pictures, to look at them.
    #[test]
    #[ignore = "draws the plots of a recorded run named by HUBCHAOS_PLOT_RUN"]
    fn plot_recorded_run() {
        let run = std::env::var("HUBCHAOS_PLOT_RUN").expect("HUBCHAOS_PLOT_RUN");
        let out = std::env::var("HUBCHAOS_PLOT_OUT").unwrap_or_else(|_| run.clone());
        for p in replot(Path::new(&run), Path::new(&out)).unwrap() {
            println!("{}", p.display());
        }
    }

    #[test]
    fn empty_history_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_plots(dir.path(), &History::default()).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Phases and faults but no data: still nothing.
        let h = History::new(vec![phase(1.0, WORKLOAD_START), fault(2.0, "kill-process", "proxy", FaultPhase::Injected)]);
        assert!(write_plots(dir.path(), &h).unwrap().is_empty());
    }

    #[test]
    fn fault_windows_pair_by_kind_and_target() {
        let h = History::new(vec![
            fault(1.0, "a", "x", FaultPhase::Injected),
            fault(2.0, "a", "y", FaultPhase::Injected),
            fault(3.0, "a", "x", FaultPhase::Healed),
            fault(4.0, "b", "x", FaultPhase::Injected),
            fault(5.0, "b", "x", FaultPhase::HealFailed),
            phase(9.0, "end"),
        ]);
        let m = marks(&h);
        let w: Vec<(&str, &str, f64, f64, bool)> =
            m.faults.iter().map(|f| (f.kind.as_str(), f.target.as_str(), f.start, f.end, f.unhealed)).collect();
        assert_eq!(w, [("a", "x", 1.0, 3.0, false), ("a", "y", 2.0, 9.0, true), ("b", "x", 4.0, 9.0, true)]);
    }

    #[test]
    fn latency_bins_plot_nearest_rank_p50_and_p99() {
        let samples = [(0.1, 4.0), (0.2, 1.0), (0.3, 3.0), (0.4, 2.0), (1.5, 7.0)];
        let s = latency_series(&samples, 1.0, 2, "", (PALETTE[0], PALETTE[1]));
        assert_eq!((s[0].label.as_str(), s[1].label.as_str()), ("p99", "p50"));
        assert_eq!(s[0].runs, [vec![(0.5, 4.0), (1.5, 7.0)]]);
        assert_eq!(s[1].runs, [vec![(0.5, 2.0), (1.5, 7.0)]], "no interpolation: the lower middle of 1..4");
    }

    #[test]
    fn bins_percentiles_and_counter_rates() {
        assert_eq!(bin_width(100.0, 300.0), 1.0);
        assert_eq!(bin_width(1000.0, 300.0), 5.0);
        // A reset (restart) yields no negative rate.
        assert_eq!(counter_rate(&[(0.0, 1.0), (1.0, 2.0), (2.0, 0.5)]), [(0.5, 1.0)]);
        assert_eq!(split_gaps(vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (20.0, 1.0)]).len(), 2);
        assert_eq!(fmt_tick(150.0), "150");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(0.0), "0");
    }
}
