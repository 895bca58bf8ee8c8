//! Soak runs: spawn churn for a long time (default 30 min), the leak slopes per window and over
//! the whole run, compared with a baseline file from an earlier run, like a memory benchmark
//! gate: a slope more than 1.1× the baseline's, beyond the noise of both, is a regression.
//!
//! No scenario is declared here: the suites declare theirs (`suites/src/spawn.rs`, and the leak
//! controls in `suites/src/controls.rs`) and `hubchaos soak` its own, each with its name and
//! incident. What they share is the building block [`churn`]: the workload and the checks of a
//! spawn churn, composed onto a scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::check::leak_slope::{show_value, slope_points, spawn_completions};
use crate::check::{LeakSlope, ReturnsToBaseline};
use crate::component::hub::HubOptions;
use crate::observe::history::History;
use crate::observe::procfs::{OPEN_FDS, RSS_BYTES, THREADS};
use crate::observe::samples::SampleSink;
use crate::probe::HubAnswers;
use crate::scenario::{Deployment, Scenario, SteadyState};
use crate::stats::ols;
use crate::workload::SpawnChurn;

/// Users cycling their servers at once.
pub const CHURN_USERS: usize = 2;
/// Spawns to ignore before fitting slopes (imports, caches).
pub const WARMUP_SPAWNS: usize = 6;
/// Allowed hub RSS growth per spawn: a clean hub's RSS moves in 128 KiB steps with ~50 KiB of
/// spread; measured +5..+16 KiB/spawn over 80 spawns and +32..+48 KiB/spawn over 14 spawns
/// after the warm-up here (warm-up growth still flattening). A 100 KiB/spawn leak reads
/// ~120 KiB/spawn over 34 spawns and must stay clearly above it.
pub const RSS_PER_SPAWN: f64 = 60.0 * 1024.0;
/// Allowed growth per spawn of counted resources (FDs, threads).
pub const COUNT_PER_SPAWN: f64 = 0.05;
/// The metrics of the hub a soak follows.
pub const SOAK_METRICS: [&str; 3] = [RSS_BYTES, OPEN_FDS, THREADS];

/// A reusable building block, not a scenario: composes spawn churn onto `s` (whose area, name
/// and incident are the caller's). A clean hub, [`CHURN_USERS`] users starting, reaching,
/// using and stopping their servers, judged on the hub's resource curves: slopes of RSS, FDs
/// and threads against completed spawns, and FDs, threads, children and listening ports back
/// to where they started once the churn stops. `cycles_per_user: None` churns for all of
/// `duration`; otherwise the cycles bound the churn and `duration` is the backstop.
pub fn churn(s: Scenario, cycles_per_user: Option<usize>, duration: Duration) -> Scenario {
    churn_judged(s, cycles_per_user, duration, &ChurnLimits::LOCAL)
}

/// What a churn allows the hub, per backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnLimits {
    /// Allowed hub RSS growth per spawn (bytes).
    pub rss_per_spawn: f64,
    /// Open files and threads the hub may keep over its baseline once the churn is over.
    pub fds_kept: f64,
    pub threads_kept: f64,
}

impl ChurnLimits {
    /// The local hub (a process's RSS): [`RSS_PER_SPAWN`], nothing kept.
    pub const LOCAL: ChurnLimits = ChurnLimits { rss_per_spawn: RSS_PER_SPAWN, fds_kept: 0.0, threads_kept: 0.0 };
    /// The hub pod on kind, judged on its cgroup (`total_rss`, the anonymous memory of every
    /// process of the pod: the per-spawn growth of a leak is anonymous memory either way).
    /// Measured here over 14 spawns after the warm-up: 43.5 KiB/spawn with KubeSpawner's event
    /// reflector off, as local's 32-48; 129 KiB/spawn with it on (z2jh's default): the
    /// reflector keeps every user pod's events until the API server expires them (its event
    /// TTL, 1 h), ~85 KiB per spawn, growth that stops at the TTL. So 200 KiB/spawn: the
    /// reflector's share allowed, a 1 MiB/spawn leak (read 1.11-1.16 MiB/spawn) far above. And
    /// KubeSpawner's first spawn starts its watches and threads and opens connections to the
    /// API server that its client keeps (none before the first spawn; 4 established to the API
    /// server's Service at the end of one churn), kept for the hub's life: measured +2..+4
    /// open files and +2..+3 threads after a churn over five runs, both slopes flat. Up to 6
    /// open files and 3 threads may stay; a leak of one per spawn is the slope's to catch.
    pub const KIND: ChurnLimits = ChurnLimits { rss_per_spawn: 200.0 * 1024.0, fds_kept: 6.0, threads_kept: 3.0 };
}

/// [`churn`] judged with `limits`.
pub fn churn_judged(mut s: Scenario, cycles_per_user: Option<usize>, duration: Duration, limits: &ChurnLimits) -> Scenario {
    s.deploy = Deployment::hub(HubOptions::default());
    s.workloads = vec![Box::new(SpawnChurn { users: CHURN_USERS, cycles: cycles_per_user, ..Default::default() })];
    s.steady_state =
        SteadyState { before: vec![Box::new(HubAnswers)], after: vec![Box::new(HubAnswers)], recovery: Duration::from_secs(30) };
    s.duration = duration;
    s.sample_after = Duration::from_secs(12);
    s.checks = vec![
        Box::new(LeakSlope::new("hub", RSS_BYTES, limits.rss_per_spawn).warmup(WARMUP_SPAWNS)),
        Box::new(LeakSlope::new("hub", OPEN_FDS, COUNT_PER_SPAWN).warmup(WARMUP_SPAWNS)),
        Box::new(LeakSlope::new("hub", THREADS, COUNT_PER_SPAWN).warmup(WARMUP_SPAWNS)),
        Box::new(ReturnsToBaseline::hub().allow(OPEN_FDS, limits.fds_kept).allow(THREADS, limits.threads_kept)),
    ];
    s.key_figure("leak-slope:hub:rss_bytes", "slope", "B/spawn")
}

/// A least-squares slope per spawn with its standard error and 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlopeEstimate {
    pub slope: f64,
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub points: usize,
}

impl SlopeEstimate {
    pub fn fit(points: &[(f64, f64)]) -> Option<Self> {
        let fit = ols(points)?;
        let (ci_low, ci_high) = fit.slope_interval(0.95);
        Some(Self { slope: fit.slope, se: fit.se, ci_low, ci_high, points: fit.n })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakWindow {
    pub from_s: f64,
    pub to_s: f64,
    pub spawns: usize,
    pub slopes: BTreeMap<String, SlopeEstimate>,
}

/// `soak.json`: what a soak found, and what a later soak compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakResult {
    pub run_dir: PathBuf,
    pub spawns: usize,
    pub spawns_per_minute: f64,
    /// Over the whole run (after the warm-up), per metric of the hub.
    pub slopes: BTreeMap<String, SlopeEstimate>,
    pub windows: Vec<SoakWindow>,
}

/// Slopes over the whole run and per `window` of the run's spawning time.
pub fn analyse(run_dir: &Path, history: &History, window: Duration) -> SoakResult {
    let done = spawn_completions(history);
    let (first, last) = (done.first().copied().unwrap_or_default(), done.last().copied().unwrap_or_default());
    let minutes = last.saturating_sub(first).as_secs_f64() / 60.0;
    let fit_all = |from, to, warmup| {
        SOAK_METRICS
            .iter()
            .filter_map(|m| {
                let (points, _) = slope_points(history, &done, "hub", m, warmup, (from, to));
                SlopeEstimate::fit(&points).map(|e| (m.to_string(), e))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut windows = Vec::new();
    let mut from = first;
    while from < last && !window.is_zero() {
        let to = (from + window).min(last);
        windows.push(SoakWindow {
            from_s: from.as_secs_f64(),
            to_s: to.as_secs_f64(),
            spawns: done.iter().filter(|d| **d > from && **d <= to).count(),
            slopes: fit_all(from, to, WARMUP_SPAWNS),
        });
        from = to;
    }
    SoakResult {
        run_dir: run_dir.to_path_buf(),
        spawns: done.len(),
        spawns_per_minute: if minutes > 0.0 { done.len() as f64 / minutes } else { 0.0 },
        slopes: fit_all(Duration::ZERO, last, WARMUP_SPAWNS),
        windows,
    }
}

/// One metric against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub metric: String,
    pub slope: f64,
    pub baseline: f64,
    /// 1.1 × the baseline slope (never below 0: a shrinking baseline allows no growth).
    pub allowed: f64,
    /// 1.96 × the combined standard error: what the two runs' noise can explain.
    pub noise: f64,
    pub regressed: bool,
}

/// Below this slope per spawn a metric is not judged a regression whatever the baseline: the
/// standard errors of autocorrelated 1 s samples are too small, and a clean 150 s soak showed
/// FD slopes of ±0.05/spawn per window. (16 KiB/spawn of RSS is 16 MiB per 1,000 spawns.)
pub fn min_effect(metric: &str) -> f64 {
    if metric == RSS_BYTES {
        16.0 * 1024.0
    } else {
        COUNT_PER_SPAWN
    }
}

/// Compare each metric's slope with the baseline's: a regression when it exceeds 1.1× the
/// baseline by more than the noise of both estimates, and is above [`min_effect`].
pub fn compare(current: &SoakResult, baseline: &SoakResult) -> Vec<Regression> {
    current
        .slopes
        .iter()
        .filter_map(|(metric, c)| {
            let b = baseline.slopes.get(metric)?;
            let allowed = 1.1 * b.slope.max(0.0);
            let noise = 1.96 * (c.se.powi(2) + (1.1 * b.se).powi(2)).sqrt();
            let regressed = c.slope - allowed > noise && c.slope > min_effect(metric);
            Some(Regression { metric: metric.clone(), slope: c.slope, baseline: b.slope, allowed, noise, regressed })
        })
        .collect()
}

pub fn render(result: &SoakResult, regressions: &[Regression]) -> String {
    let mut out = format!(
        "soak: {} spawns ({:.1}/min), run dir {}\n\n| metric | slope/spawn | 95% CI |\n|---|---|---|\n",
        result.spawns,
        result.spawns_per_minute,
        result.run_dir.display()
    );
    for (m, e) in &result.slopes {
        out.push_str(&format!("| {m} | {} | {}..{} |\n", show_value(m, e.slope), show_value(m, e.ci_low), show_value(m, e.ci_high)));
    }
    out.push_str("\n| window (s) | spawns | ");
    out.push_str(&SOAK_METRICS.join(" | "));
    out.push_str(" |\n|---|---|");
    out.push_str(&"---|".repeat(SOAK_METRICS.len()));
    out.push('\n');
    for w in &result.windows {
        out.push_str(&format!("| {:.0}-{:.0} | {} |", w.from_s, w.to_s, w.spawns));
        for m in SOAK_METRICS {
            match w.slopes.get(m) {
                Some(e) => out.push_str(&format!(" {} ± {} |", show_value(m, e.slope), show_value(m, e.se))),
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    if !regressions.is_empty() {
        out.push_str("\n| metric | slope | baseline | allowed (1.1×) | noise | verdict |\n|---|---|---|---|---|---|\n");
        for r in regressions {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.metric,
                show_value(&r.metric, r.slope),
                show_value(&r.metric, r.baseline),
                show_value(&r.metric, r.allowed),
                show_value(&r.metric, r.noise),
                if r.regressed { "REGRESSED" } else { "ok" }
            ));
        }
    }
    out
}

/// Read a finished run's history and samples back.
pub fn load_run(run_dir: &Path) -> anyhow::Result<History> {
    let history = History::load(&run_dir.join("history.jsonl")).with_context(|| format!("reading the history in {}", run_dir.display()))?;
    let samples = SampleSink::load(&run_dir.join("samples.jsonl")).unwrap_or_default();
    Ok(history.with_samples(samples))
}

pub fn load_result(path: &Path) -> anyhow::Result<SoakResult> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the baseline {} (write one with --save-baseline)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a soak.json", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(slope: f64, se: f64) -> SlopeEstimate {
        SlopeEstimate { slope, se, ci_low: slope - 2.0 * se, ci_high: slope + 2.0 * se, points: 100 }
    }

    fn result(rss: SlopeEstimate) -> SoakResult {
        SoakResult {
            run_dir: PathBuf::new(),
            spawns: 100,
            spawns_per_minute: 17.0,
            slopes: [("rss_bytes".to_string(), rss)].into(),
            windows: vec![],
        }
    }

    #[test]
    fn churn_composes_onto_the_callers_scenario_and_keeps_its_name() {
        let s = churn(Scenario::new("spawn", "some_churn", "what happened"), Some(3), Duration::from_secs(90));
        assert_eq!((s.area, s.name, s.incident), ("spawn", "some_churn", "what happened"));
        assert_eq!(s.duration, Duration::from_secs(90));
        let names: Vec<String> = s.checks.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["leak-slope:hub:rss_bytes", "leak-slope:hub:open_fds", "leak-slope:hub:threads", "returns-to-baseline:hub"]);
        assert_eq!(s.key_figure.map(|k| k.check).as_deref(), Some("leak-slope:hub:rss_bytes"));
    }

    #[test]
    fn a_slope_within_noise_of_the_baseline_passes_and_a_doubled_one_regresses() {
        let baseline = result(est(10_000.0, 1_000.0));
        let same = compare(&result(est(11_500.0, 1_000.0)), &baseline);
        assert!(!same[0].regressed, "{same:?}");
        let doubled = compare(&result(est(20_000.0, 1_000.0)), &baseline);
        assert!(doubled[0].regressed, "{doubled:?}");
    }

    #[test]
    fn a_shrinking_baseline_allows_no_growth_beyond_noise() {
        let baseline = result(est(-5_000.0, 500.0));
        let r = compare(&result(est(20_000.0, 500.0)), &baseline);
        assert_eq!(r[0].allowed, 0.0);
        assert!(r[0].regressed);
    }

    #[test]
    fn growth_below_the_minimum_effect_is_never_a_regression() {
        // Measured: a clean soak's FD slope 0.003, a later one 0.024 with a tiny standard error.
        let fds = |slope, se| SoakResult { slopes: [(OPEN_FDS.to_string(), est(slope, se))].into(), ..result(est(0.0, 1.0)) };
        let r = compare(&fds(0.024, 0.006), &fds(0.003, 0.006));
        assert!(!r[0].regressed, "{r:?}");
        assert!(compare(&fds(1.0, 0.006), &fds(0.003, 0.006))[0].regressed);
    }

    #[test]
    fn the_report_prints_bytes_in_kib_and_counts_plainly() {
        // The figures of the leaky 150 s soak against the clean baseline.
        let mut leaky = result(est(215.9 * 1024.0, 500.0));
        leaky.slopes.insert(OPEN_FDS.to_string(), est(0.024, 0.006));
        let baseline = result(est(21.2 * 1024.0, 480.0));
        let text = render(&leaky, &compare(&leaky, &baseline));
        assert!(text.contains("| rss_bytes | 215.9 KiB | 214.9 KiB..216.9 KiB |"), "{text}");
        assert!(text.contains("| open_fds | 0.024 | 0.012..0.036 |"), "{text}");
        assert!(text.contains("| rss_bytes | 215.9 KiB | 21.2 KiB | 23.3 KiB |") && text.contains("| REGRESSED |"), "{text}");
    }
}
