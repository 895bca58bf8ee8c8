//! `returns-to-baseline`: after the last server stopped, are the hub's countable resources
//! back where they were before the first spawn? A slope needs many spawns; a handful of
//! file descriptors, threads, child processes or listening ports that stay behind after every
//! server is gone is a leak already (a watcher thread per pod, 2018), and so is spawner residue
//! on disk (home folders, `jpserver-*` runtime files, temp checkouts: component `residue`).
//!
//! Baseline: the median of the component's samples in the first `baseline_for` of the judged
//! window (from `setup-done`, or `workload-start`), and before the first `first_op` op
//! (`start-server`): the resting state with the users created but nothing spawned.
//! End: the median of the samples in the last `end_for` after the workload stopped (the later of
//! the `workload-stop` marker and the completion of the last op). The runner must keep its
//! samplers running for a few seconds after the workload stops for there to be any.
//!
//! Fail when, for any metric, end - baseline > its tolerance (absolute, in the metric's unit).
//! Only growth counts: fewer FDs at the end than at the start is not a leak. Medians, so one
//! sample taken while a server was still exiting does not decide. Unknown when either window has
//! fewer than `min_samples` samples of a metric, and always when one has none (even with
//! `min_samples` 0: an empty window is no evidence, not a value of 0).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, WORKLOAD_STOP};
use crate::stats::median;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReturnsToBaseline {
    /// e.g. `hub`, or `residue`.
    pub component: String,
    /// e.g. `open_fds`, `threads`, `child_processes`, `listening_ports`.
    pub metrics: Vec<String>,
    /// Allowed growth for every metric not in `per_metric`.
    pub tolerance: f64,
    pub per_metric: BTreeMap<String, f64>,
    /// The op that ends the baseline (the first spawn).
    pub first_op: String,
    #[serde(with = "humantime_serde")]
    pub baseline_for: Duration,
    #[serde(with = "humantime_serde")]
    pub end_for: Duration,
    pub min_samples: usize,
    /// The check's name; empty => `returns-to-baseline:<component>`.
    pub label: String,
}

impl ReturnsToBaseline {
    /// The hub's FDs, threads, child processes and listening ports, exactly back (tolerance 0).
    pub fn hub() -> Self {
        Self::of("hub", &["open_fds", "threads", "child_processes", "listening_ports"], 0.0)
    }

    pub fn of(component: &str, metrics: &[&str], tolerance: f64) -> Self {
        Self {
            component: component.into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            tolerance,
            per_metric: BTreeMap::new(),
            first_op: "start-server".into(),
            baseline_for: Duration::from_secs(10),
            end_for: Duration::from_secs(10),
            min_samples: 2,
            label: String::new(),
        }
    }

    /// A tolerance for one metric (e.g. `home_dirs`: one folder per churn user stays).
    pub fn allow(mut self, metric: &str, tolerance: f64) -> Self {
        self.per_metric.insert(metric.into(), tolerance);
        self
    }

    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }

    fn tolerance_of(&self, metric: &str) -> f64 {
        self.per_metric.get(metric).copied().unwrap_or(self.tolerance)
    }
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Check for ReturnsToBaseline {
    fn name(&self) -> String {
        if self.label.is_empty() {
            format!("returns-to-baseline:{}", self.component)
        } else {
            self.label.clone()
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let Some(first_spawn) = history.ops().filter(|(_, o)| o.op == self.first_op).map(|(at, _)| at).min() else {
            return CheckResult::unknown(&name, format!("no {} op: nothing to compare against", self.first_op));
        };
        let start = history.workload_window().map(|w| w.0).unwrap_or(Duration::ZERO).min(first_spawn);
        let baseline_until = first_spawn.min(start + self.baseline_for);
        let last_op_end = history.ops().map(|(at, o)| at + o.latency).max().unwrap_or(first_spawn);
        let stopped = history.phase(WORKLOAD_STOP).map_or(last_op_end, |s| s.max(last_op_end));

        let mut verdicts = Vec::new();
        let mut parts = Vec::new();
        let mut result_figures = Vec::new();
        for metric in &self.metrics {
            let series: Vec<(Duration, f64)> = history.series(&self.component, metric).map(|s| (s.at, s.value)).collect();
            let base: Vec<f64> = series.iter().filter(|(at, _)| *at >= start && *at < baseline_until).map(|s| s.1).collect();
            let after: Vec<(Duration, f64)> = series.iter().filter(|(at, _)| *at >= stopped).copied().collect();
            let last = after.last().map(|s| s.0).unwrap_or(stopped);
            let end: Vec<f64> = after.iter().filter(|(at, _)| *at + self.end_for >= last).map(|s| s.1).collect();
            let enough = |v: &[f64]| v.len() >= self.min_samples;
            let (Some(b), Some(e)) = (median(&base).filter(|_| enough(&base)), median(&end).filter(|_| enough(&end))) else {
                verdicts.push(Verdict::Unknown);
                parts.push(format!(
                    "{metric}: {} samples before the first spawn, {} after the workload stopped ({} needed)",
                    base.len(),
                    end.len(),
                    self.min_samples.max(1)
                ));
                continue;
            };
            let tol = self.tolerance_of(metric);
            let delta = e - b;
            let ok = delta <= tol;
            verdicts.push(Verdict::from_ok(ok));
            parts.push(format!(
                "{metric} {} -> {} ({}{}, tolerance {}){}",
                fmt(b),
                fmt(e),
                if delta >= 0.0 { "+" } else { "" },
                fmt(delta),
                fmt(tol),
                if ok { "" } else { " NOT BACK" }
            ));
            result_figures.push((format!("{metric}_baseline"), b));
            result_figures.push((format!("{metric}_end"), e));
            result_figures.push((format!("{metric}_delta"), delta));
        }
        let verdict = Verdict::merge(verdicts);
        let mut r = CheckResult::new(&name, verdict, format!("{}: {}", self.component, parts.join("; ")));
        for (k, v) in result_figures {
            r = r.figure(&k, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, phase, sample, secs};
    use crate::observe::history::{Entry, Event, OpRecord, OpResult, SETUP_DONE};

    fn op(at: f64, name: &str, took: f64) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Op(OpRecord {
                workload: "spawn-churn".into(),
                op: name.into(),
                user: Some("churn-0".into()),
                result: OpResult::Ok,
                latency: secs(took),
                detail: String::new(),
            }),
        }
    }

    /// Window from t=0 (setup-done), quiet until t=5, spawning until t=50 (last stop completes
    /// at 50), workload-stop at 51, samples every second until t=60. `during` and `after` are
    /// the hub's open_fds while spawning and after; 30 before.
    fn run(during: f64, after: f64) -> History {
        let mut h =
            history(vec![phase(0.0, SETUP_DONE), op(5.0, "start-server", 1.0), op(48.0, "stop-server", 2.0), phase(51.0, WORKLOAD_STOP)]);
        for t in 0..=60 {
            let t = t as f64;
            let fds = if t < 5.0 {
                30.0
            } else if t <= 50.0 {
                during
            } else {
                after
            };
            h.samples.push(sample(t, "hub", "open_fds", fds));
            h.samples.push(sample(t, "hub", "threads", 5.0));
        }
        h
    }

    fn check() -> ReturnsToBaseline {
        ReturnsToBaseline::of("hub", &["open_fds", "threads"], 0.0)
    }

    #[test]
    fn back_to_baseline_passes() {
        let r = check().check(&run(45.0, 30.0));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["open_fds_baseline"], 30.0);
        assert_eq!(r.figures["open_fds_end"], 30.0);
        assert_eq!(r.check, "returns-to-baseline:hub");
        // Fewer at the end is not a leak.
        assert_eq!(check().check(&run(45.0, 28.0)).verdict, Verdict::Pass);
    }

    #[test]
    fn fds_left_behind_fail_unless_tolerated() {
        let r = check().check(&run(45.0, 33.0));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["open_fds_delta"], 3.0);
        assert!(r.summary.contains("open_fds 30 -> 33 (+3, tolerance 0) NOT BACK"), "{}", r.summary);
        assert!(r.summary.contains("threads 5 -> 5 (+0, tolerance 0)"), "{}", r.summary);
        assert_eq!(check().allow("open_fds", 3.0).check(&run(45.0, 33.0)).verdict, Verdict::Pass);
    }

    #[test]
    fn one_straggling_sample_does_not_decide() {
        let mut h = run(45.0, 30.0);
        // A server still exiting at t=52: one high sample among nine.
        for s in h.samples.iter_mut().filter(|s| s.metric == "open_fds" && s.at == secs(52.0)) {
            s.value = 45.0;
        }
        assert_eq!(check().check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn no_samples_after_the_stop_or_no_spawn_is_unknown() {
        let mut h = run(45.0, 30.0);
        h.samples.retain(|s| s.at < secs(51.0));
        let r = check().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("0 after the workload stopped"), "{}", r.summary);
        // No sample is no evidence even when no minimum is asked for (it once read as 0).
        let r = ReturnsToBaseline { min_samples: 0, ..check() }.check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        let mut no_spawn = run(45.0, 30.0);
        no_spawn.entries.retain(|e| !matches!(e.event, Event::Op(_)));
        assert_eq!(check().check(&no_spawn).verdict, Verdict::Unknown);
    }
}
