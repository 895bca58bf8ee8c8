//! `leak-slope`: does a resource grow with every spawn? In 2018 the hub leaked one watcher
//! thread and pool per launch and died after N launches; nobody saw the slope until the hub
//! fell over. This check fits it: x = spawns completed so far (`spawn-cycle` ops that ended
//! Ok, counted at their completion), y = the resource's samples (e.g. the hub's `rss_bytes`),
//! ordinary least squares after a warm-up (the first spawns import modules and fill caches:
//! that growth is not a leak).
//!
//! The slope gets a two-sided confidence interval from Student's t with n-2 degrees of
//! freedom, and the verdict is conservative: Fail only when the interval's LOWER bound is above
//! `max_slope_per_spawn` (we are confident the resource grows faster than allowed); a noisy
//! curve widens the interval and passes. Samples a second apart are autocorrelated, which makes
//! the interval too narrow; set the limit above what a clean hub shows, not at zero.
//! The slope against time (per minute) is reported too, for soak runs where the rate matters.
//!
//! The fit and its interval are [`crate::stats::ols`] and [`crate::stats::Fit::slope_interval`].
//!
//! Unknown when there are fewer than `min_spawns` spawns after the warm-up, fewer than
//! 3 points, or no spread in x.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, OpResult};
use crate::stats::ols;

/// The op a completed spawn is counted from (recorded by the `spawn-churn` workload).
pub const SPAWN_CYCLE: &str = "spawn-cycle";

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeakSlope {
    /// e.g. `hub`.
    pub component: String,
    /// e.g. `rss_bytes`, `open_fds`, `threads`.
    pub metric: String,
    /// Allowed growth per spawn, in the metric's unit (bytes, fds, ...).
    pub max_slope_per_spawn: f64,
    /// Spawns to ignore at the start.
    pub warmup_spawns: usize,
    /// Of the two-sided interval, e.g. 0.95.
    pub confidence: f64,
    /// Spawns needed after the warm-up to decide.
    pub min_spawns: usize,
    /// The check's name; empty => `leak-slope:<component>:<metric>`.
    pub label: String,
}

impl LeakSlope {
    /// 95 % interval, 10 warm-up spawns, at least 10 spawns after them.
    pub fn new(component: &str, metric: &str, max_slope_per_spawn: f64) -> Self {
        Self {
            component: component.into(),
            metric: metric.into(),
            max_slope_per_spawn,
            warmup_spawns: 10,
            confidence: 0.95,
            min_spawns: 10,
            label: String::new(),
        }
    }

    pub fn warmup(mut self, spawns: usize) -> Self {
        self.warmup_spawns = spawns;
        self
    }

    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }
}

/// Spawns completed at each moment: completion times of Ok `spawn-cycle` ops, sorted.
pub fn spawn_completions(history: &History) -> Vec<Duration> {
    let mut done: Vec<Duration> =
        history.ops().filter(|(_, o)| o.op == SPAWN_CYCLE && o.result == OpResult::Ok).map(|(at, o)| at + o.latency).collect();
    done.sort();
    done
}

/// How to print a per-spawn value of `metric`: bytes in binary units (KiB/MiB), the units the
/// limits and the leaky hook are written in, so "limit 60.00 KiB" reads as written; counts as
/// they are.
pub fn unit_for(metric: &str, magnitude: f64) -> (f64, &'static str) {
    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    if metric.ends_with("_bytes") {
        if magnitude >= MIB {
            (MIB, " MiB")
        } else if magnitude >= KIB {
            (KIB, " KiB")
        } else {
            (1.0, " B")
        }
    } else {
        (1.0, "")
    }
}

/// `value` of `metric` with its unit, e.g. "123.0 KiB" or "0.042".
pub fn show_value(metric: &str, value: f64) -> String {
    match unit_for(metric, value.abs()) {
        (scale, "") => format!("{:.3}", value / scale),
        (scale, unit) => format!("{:.1}{unit}", value / scale),
    }
}

/// (x, y) pairs to fit a line through.
pub type Points = Vec<(f64, f64)>;

/// The points a slope is fitted on, between `from` and `to`: (spawns completed, value) and
/// (seconds, value) for every sample of the metric once `warmup` spawns have completed.
pub fn slope_points(
    history: &History,
    done: &[Duration],
    component: &str,
    metric: &str,
    warmup: usize,
    (from, to): (Duration, Duration),
) -> (Points, Points) {
    let mut by_spawn = Vec::new();
    let mut by_time = Vec::new();
    for s in history.series(component, metric) {
        if s.at < from || s.at > to {
            continue;
        }
        let x = done.partition_point(|d| *d <= s.at);
        if x < warmup {
            continue;
        }
        by_spawn.push((x as f64, s.value));
        by_time.push((s.at.as_secs_f64(), s.value));
    }
    (by_spawn, by_time)
}

impl Check for LeakSlope {
    fn name(&self) -> String {
        if self.label.is_empty() {
            format!("leak-slope:{}:{}", self.component, self.metric)
        } else {
            self.label.clone()
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let done = spawn_completions(history);
        let Some(&last_spawn) = done.last() else {
            return CheckResult::unknown(&name, format!("no completed {SPAWN_CYCLE} ops"));
        };
        let total = done.len();
        let spawns = total.saturating_sub(self.warmup_spawns);
        if spawns < self.min_spawns {
            return CheckResult::unknown(
                &name,
                format!("{total} spawns, {spawns} after a warm-up of {}: {} needed", self.warmup_spawns, self.min_spawns),
            )
            .figure("spawns", spawns as f64);
        }
        let (by_spawn, by_time) =
            slope_points(history, &done, &self.component, &self.metric, self.warmup_spawns, (Duration::ZERO, last_spawn));
        let Some(fit) = ols(&by_spawn) else {
            return CheckResult::unknown(
                &name,
                format!(
                    "{} samples of {} {} while spawning after the warm-up: too few to fit",
                    by_spawn.len(),
                    self.component,
                    self.metric
                ),
            )
            .figure("spawns", spawns as f64);
        };
        let (ci_low, ci_high) = fit.slope_interval(self.confidence);
        let per_min = ols(&by_time).map(|f| f.slope * 60.0).unwrap_or(f64::NAN);
        let failed = ci_low > self.max_slope_per_spawn;
        let (scale, unit) = unit_for(&self.metric, fit.slope.abs().max(self.max_slope_per_spawn.abs()));
        let v = |x: f64| x / scale;
        let (min_scale, min_unit) = unit_for(&self.metric, per_min.abs());
        let summary = format!(
            "{} {} {} {:.2}{unit}/spawn ({:.0}% CI {:.2}..{:.2}), limit {:.2}{unit}/spawn, over {spawns} spawns ({} samples; {:.2}{min_unit}/min)",
            self.component,
            self.metric,
            if fit.slope >= 0.0 { "grows" } else { "changes by" },
            v(fit.slope),
            self.confidence * 100.0,
            v(ci_low),
            v(ci_high),
            v(self.max_slope_per_spawn),
            fit.n,
            per_min / min_scale,
        );
        CheckResult::new(&name, Verdict::from_ok(!failed), summary)
            .figure("slope", fit.slope)
            .figure("ci_low", ci_low)
            .figure("ci_high", ci_high)
            .figure("spawns", spawns as f64)
            .figure("slope_per_min", per_min)
            .figure("limit", self.max_slope_per_spawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, sample, secs};
    use crate::observe::history::{Entry, Event, OpRecord};

    fn cycle(at: f64, took: f64, ok: bool) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Op(OpRecord {
                workload: "spawn-churn".into(),
                op: SPAWN_CYCLE.into(),
                user: Some("churn-0".into()),
                result: if ok { OpResult::Ok } else { OpResult::Fail },
                latency: secs(took),
                detail: String::new(),
            }),
        }
    }

    /// `n` spawns completing every 2 s from t=2 (started 1.5 s earlier), and one `hub rss_bytes`
    /// sample per second: base + per_spawn × spawns so far + deterministic noise.
    fn churn(n: usize, per_spawn: f64, noise: f64) -> History {
        let ops: Vec<Entry> = (1..=n).map(|i| cycle(2.0 * i as f64 - 1.5, 1.5, true)).collect();
        let mut h = history(ops);
        let mut state = 12345u64;
        for t in 0..=(2 * n) {
            let spawns = t / 2;
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            h.samples.push(sample(t as f64, "hub", "rss_bytes", 80e6 + per_spawn * spawns as f64 + noise * u));
        }
        h
    }

    #[test]
    fn a_leak_of_1mb_per_spawn_fails() {
        const MIB: f64 = 1024.0 * 1024.0;
        let h = churn(150, MIB, 2e6);
        let r = LeakSlope::new("hub", "rss_bytes", 0.25 * MIB).check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!((r.figures["slope"] - MIB).abs() < 0.05 * MIB, "{}", r.summary);
        assert!(r.figures["ci_low"] > 0.25 * MIB && r.figures["ci_high"] > r.figures["slope"]);
        assert_eq!(r.figures["spawns"], 140.0);
        // 1 MiB per spawn, a spawn every 2 s: 30 MiB/min.
        assert!((r.figures["slope_per_min"] - 30.0 * MIB).abs() < 2.0 * MIB, "{}", r.summary);
        assert!(r.summary.starts_with("hub rss_bytes grows 1.00 MiB/spawn (95% CI "), "{}", r.summary);
        assert!(r.summary.contains("limit 0.25 MiB/spawn, over 140 spawns"), "{}", r.summary);
        assert_eq!(r.check, "leak-slope:hub:rss_bytes");
    }

    #[test]
    fn a_flat_noisy_curve_passes() {
        let h = churn(150, 0.0, 4e6);
        let r = LeakSlope::new("hub", "rss_bytes", 0.05e6).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert!(r.figures["ci_low"] <= 0.05e6);
    }

    #[test]
    fn a_100kb_leak_is_caught_within_150_spawns_through_noise() {
        // The leak the soak limit is set to catch: 100 KiB/spawn against 60 KiB
        // (`soak::RSS_PER_SPAWN`), through noise of a few MB.
        let h = churn(150, 100.0 * 1024.0, 2e6);
        let r = LeakSlope::new("hub", "rss_bytes", 60.0 * 1024.0).check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!((r.figures["slope"] - 102_400.0).abs() < 5e3, "{}", r.summary);
        assert!(r.summary.contains(" KiB/spawn (95% CI ") && r.summary.contains("limit 60.00 KiB/spawn"), "{}", r.summary);
        assert!(r.summary.ends_with(" MiB/min)"), "{}", r.summary);
    }

    #[test]
    fn warm_up_growth_is_not_a_leak() {
        // +30 MB over the first 10 spawns (imports, caches), flat after.
        let mut h = churn(60, 0.0, 1e5);
        for s in &mut h.samples {
            let spawns = (s.at.as_secs_f64() / 2.0).floor();
            s.value += 3e6 * spawns.min(10.0);
        }
        assert_eq!(LeakSlope::new("hub", "rss_bytes", 1e4).check(&h).verdict, Verdict::Pass);
        assert_eq!(LeakSlope::new("hub", "rss_bytes", 1e4).warmup(0).check(&h).verdict, Verdict::Fail);
    }

    #[test]
    fn too_few_spawns_or_samples_is_unknown() {
        let r = LeakSlope::new("hub", "rss_bytes", 1e4).check(&churn(15, 1e6, 0.0));
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert_eq!(LeakSlope::new("hub", "rss_bytes", 1e4).check(&History::default()).verdict, Verdict::Unknown);
        // Spawns but no samples of that metric.
        let r = LeakSlope::new("hub", "threads", 0.1).check(&churn(40, 1e6, 0.0));
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        // Failed cycles are not completed spawns.
        let fails = history((1..=40).map(|i| cycle(i as f64, 0.5, false)).collect());
        assert_eq!(LeakSlope::new("hub", "rss_bytes", 1e4).check(&fails).verdict, Verdict::Unknown);
    }

    #[test]
    fn integer_metrics_print_without_units() {
        let mut h = churn(40, 0.0, 0.0);
        h.samples = (0..=80).map(|t| sample(t as f64, "hub", "open_fds", 30.0 + (t / 2) as f64)).collect();
        let r = LeakSlope::new("hub", "open_fds", 0.1).labelled("fd-leak").check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.check, "fd-leak");
        assert!(r.summary.starts_with("hub open_fds grows 1.00/spawn"), "{}", r.summary);
    }
}
