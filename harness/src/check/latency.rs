//! `latency`: a quantile of request latencies must stay under a ceiling during the workload.
//!
//! Guards against the 2018-04-18 outage as users saw it: first the hub got slow, then "JupyterHub
//! is determined to be inaccessible" while the proxy and ingress still answered. The culler's
//! flood (and, in the same deploy, KubeSpawner's thread leak) showed up as hub latency long
//! before launches dropped to zero; a ceiling on, say, p99 of the workload's hub requests turns
//! that slide into a failed check instead of a 10-30 minute outage.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;
use crate::stats::nearest_rank;

/// The `quantile` of the latencies of matching requests in the workload window (the whole
/// history if the run recorded none) must be at most `max`. Fewer than `min_samples` matching
/// requests => Unknown: a p99 of ten requests is noise.
///
/// Quantile definition (nearest rank, no interpolation): with the `n` latencies sorted
/// ascending, the `q`-quantile is the `ceil(q·n)`-th smallest (1-based), i.e. the smallest
/// recorded latency that at least `q·n` requests did not exceed. It is always a latency that was
/// actually observed. Every answered and unanswered request counts: for an unreachable upstream
/// (status 0) the latency is how long the client waited to learn that.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LatencyCeiling {
    /// Recorder listener, e.g. `workload`.
    pub client: Option<String>,
    /// Route template, e.g. `/hub/api/users`.
    pub route: Option<String>,
    /// What the requests went to, e.g. `hub`.
    pub upstream: Option<String>,
    /// In (0, 1], e.g. 0.99.
    pub quantile: f64,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    pub min_samples: usize,
    /// Name suffix when a scenario uses several: `latency:hub-api`.
    pub label: Option<String>,
}

impl LatencyCeiling {
    /// A ceiling on the p99 of every request, given at least 20 of them.
    pub fn new(max: Duration) -> Self {
        Self { client: None, route: None, upstream: None, quantile: 0.99, max, min_samples: 20, label: None }
    }

    pub fn client(mut self, client: &str) -> Self {
        self.client = Some(client.into());
        self
    }

    pub fn route(mut self, route: &str) -> Self {
        self.route = Some(route.into());
        self
    }

    pub fn upstream(mut self, upstream: &str) -> Self {
        self.upstream = Some(upstream.into());
        self
    }

    pub fn quantile(mut self, q: f64) -> Self {
        self.quantile = q;
        self
    }

    pub fn min_samples(mut self, n: usize) -> Self {
        self.min_samples = n;
        self
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    /// "p99", "p99.9", "p50".
    fn quantile_name(&self) -> String {
        format!("p{}", (self.quantile * 100_000.0).round() / 1000.0)
    }

    /// "workload requests on /hub/api/users to hub".
    fn describe(&self) -> String {
        let mut s = format!("{} requests", self.client.as_deref().unwrap_or("all"));
        if let Some(r) = &self.route {
            s.push_str(&format!(" on {r}"));
        }
        if let Some(u) = &self.upstream {
            s.push_str(&format!(" to {u}"));
        }
        s
    }
}

fn fmt(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

impl Check for LatencyCeiling {
    fn name(&self) -> String {
        match &self.label {
            Some(l) => format!("latency:{l}"),
            None => "latency".into(),
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        if !(self.quantile > 0.0 && self.quantile <= 1.0) {
            return CheckResult::unknown(&name, format!("quantile {} is not in (0, 1]", self.quantile));
        }
        let (from, to, scope) = history.judged_span();
        let mut latencies: Vec<Duration> = history
            .requests()
            .filter(|(at, _)| *at >= from && *at <= to)
            .map(|(_, r)| r)
            .filter(|r| self.client.as_ref().is_none_or(|c| &r.client == c))
            .filter(|r| self.route.as_ref().is_none_or(|x| &r.route == x))
            .filter(|r| self.upstream.as_ref().is_none_or(|u| &r.upstream == u))
            .map(|r| r.latency)
            .collect();
        let what = self.describe();
        let q = self.quantile_name();
        if latencies.is_empty() || latencies.len() < self.min_samples {
            return CheckResult::unknown(&name, format!("only {} {what} {scope}, {} needed for a {q}", latencies.len(), self.min_samples))
                .figure("samples", latencies.len() as f64);
        }
        latencies.sort();
        let at = |q| nearest_rank(&latencies, q).expect("checked non-empty above");
        let (value, median, worst) = (at(self.quantile), at(0.5), at(1.0));
        let summary = format!(
            "{q} of {} {what} {scope} was {} (median {}, max {}), limit {}",
            latencies.len(),
            fmt(value),
            fmt(median),
            fmt(worst),
            fmt(self.max)
        );
        CheckResult::new(&name, Verdict::from_ok(value <= self.max), summary)
            .figure("quantile_s", value.as_secs_f64())
            .figure("median_s", median.as_secs_f64())
            .figure("max_s", worst.as_secs_f64())
            .figure("limit_s", self.max.as_secs_f64())
            .figure("samples", latencies.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    fn hub_api() -> LatencyCeiling {
        LatencyCeiling::new(Duration::from_millis(500)).client("workload").route(USERS).upstream("hub").label("hub-api")
    }

    /// 100 workload requests with latencies 10 ms, 20 ms, ..., 1000 ms.
    fn ramp() -> Vec<crate::observe::history::Entry> {
        (1..=100).map(|i| with_latency(req(10.0 + i as f64, "workload", "GET", USERS, "", 200), i as f64 / 100.0)).collect()
    }

    #[test]
    fn a_slow_tail_fails() {
        let h = history(all(vec![window(0.0, 200.0), ramp()]));
        let r = hub_api().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.check, "latency:hub-api");
        assert!((r.figures["quantile_s"] - 0.99).abs() < 1e-9);
        assert!(
            r.summary.starts_with(
                "p99 of 100 workload requests on /hub/api/users to hub in the workload window was 0.990s (median 0.500s, max 1.000s), limit 0.500s"
            ),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_fast_hub_passes_and_filters_apply() {
        let mut entries = all(vec![window(0.0, 200.0), ramp()]);
        // A lower quantile of the same ramp is within the limit.
        let h = history(entries.clone());
        let r = hub_api().quantile(0.5).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert!(r.summary.starts_with("p50 of 100"), "{}", r.summary);
        // Slow requests of other clients, routes, upstreams or outside the window do not count.
        entries.push(with_latency(req(50.0, "culler", "GET", USERS, "", 200), 30.0));
        entries.push(with_latency(req(50.0, "workload", "GET", USER, "u", 200), 30.0));
        entries.push(with_upstream(with_latency(req(50.0, "workload", "GET", USERS, "", 200), 30.0), "proxy"));
        entries.push(with_latency(req(300.0, "workload", "GET", USERS, "", 200), 30.0));
        let r = hub_api().quantile(0.5).check(&history(entries));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["samples"], 100.0);
    }

    #[test]
    fn unreachable_requests_count() {
        let mut entries = all(vec![window(0.0, 200.0)]);
        entries.extend(repeat(30, 10.0, 1.0, |t| req(t, "workload", "GET", USERS, "", 200)));
        entries.extend(repeat(2, 50.0, 1.0, |t| with_latency(req(t, "workload", "GET", USERS, "", 0), 10.0)));
        let r = hub_api().check(&history(entries));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["quantile_s"], 10.0);
    }

    #[test]
    fn too_few_samples_is_unknown() {
        let h = history(all(vec![window(0.0, 200.0), ramp()[..10].to_vec()]));
        let r = hub_api().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("only 10 workload requests"), "{}", r.summary);
        let empty = hub_api().min_samples(0).check(&history(window(0.0, 10.0)));
        assert_eq!(empty.verdict, Verdict::Unknown, "{}", empty.summary);
        let bad_q = hub_api().quantile(1.5).check(&h);
        assert_eq!(bad_q.verdict, Verdict::Unknown);
    }
}
