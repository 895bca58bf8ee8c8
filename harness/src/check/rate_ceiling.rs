//! `rate-ceiling`: no client may hit the hub faster than a ceiling, over any sliding window.
//!
//! Guards against the 2018-04-18 culler flood: an upgraded idle culler sent
//! `DELETE /hub/api/users/{name}/server` for servers that were not running, every cull round
//! sent more of them as users accumulated, and the hub became unresponsive. A healthy culler
//! sends a bounded burst per round; a flood is a rate, so the check is a rate.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

/// Peak request rate of the matching requests, over any window of `window` length, must stay at
/// or below `max_per_second`.
///
/// Requests are taken by arrival time within the workload window (the whole history if the run
/// recorded none). Every filter left `None` matches everything. The peak rate is the largest
/// number of matching requests that arrived within any half-open interval `[t, t + window)`,
/// divided by `window` in seconds.
/// A `window` longer than the judged span dilutes the peak: pick one well inside the workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RateCeiling {
    /// Recorder listener (`culler`, `workload`, ...).
    pub client: Option<String>,
    /// Route template, e.g. `/hub/api/users/{name}/server`.
    pub route: Option<String>,
    /// HTTP method, compared case-insensitively.
    pub method: Option<String>,
    /// `2xx`, `4xx`, `5xx`, ... or `unreachable` (see `RequestRecord::status_class`).
    pub status_class: Option<String>,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub max_per_second: f64,
    /// Name suffix when a scenario uses several: `rate-ceiling:culler`.
    pub label: Option<String>,
}

impl RateCeiling {
    /// A ceiling on every request (narrow it with the builder methods).
    pub fn new(window: Duration, max_per_second: f64) -> Self {
        Self { client: None, route: None, method: None, status_class: None, window, max_per_second, label: None }
    }

    pub fn client(mut self, client: &str) -> Self {
        self.client = Some(client.into());
        self
    }

    pub fn route(mut self, method: &str, route: &str) -> Self {
        self.method = Some(method.into());
        self.route = Some(route.into());
        self
    }

    pub fn status_class(mut self, class: &str) -> Self {
        self.status_class = Some(class.into());
        self
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    /// "culler DELETE /hub/api/users/{name}/server 4xx", "all clients any route".
    fn describe(&self) -> String {
        let mut parts = vec![self.client.clone().unwrap_or_else(|| "all clients".into())];
        match (&self.method, &self.route) {
            (None, None) => parts.push("any route".into()),
            (m, r) => parts.push(format!("{} {}", m.as_deref().unwrap_or("*"), r.as_deref().unwrap_or("any route"))),
        }
        if let Some(c) = &self.status_class {
            parts.push(format!("[{c}]"));
        }
        parts.join(" ")
    }
}

impl Check for RateCeiling {
    fn name(&self) -> String {
        match &self.label {
            Some(l) => format!("rate-ceiling:{l}"),
            None => "rate-ceiling".into(),
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        if self.window.is_zero() {
            return CheckResult::unknown(&name, "window is zero: no rate can be computed");
        }
        let (from, to, scope) = history.judged_span();
        let in_scope: Vec<_> = history
            .requests()
            .filter(|(at, _)| *at >= from && *at <= to)
            .filter(|(_, r)| self.client.as_ref().is_none_or(|c| &r.client == c))
            .collect();
        if in_scope.is_empty() {
            let who = self.client.as_deref().unwrap_or("any client");
            return CheckResult::unknown(&name, format!("no requests recorded from {who} {scope}"));
        }
        let mut times: Vec<Duration> = in_scope
            .into_iter()
            .filter(|(_, r)| self.route.as_ref().is_none_or(|x| &r.route == x))
            .filter(|(_, r)| self.method.as_ref().is_none_or(|m| r.method.eq_ignore_ascii_case(m)))
            .filter(|(_, r)| self.status_class.as_ref().is_none_or(|c| &r.status_class() == c))
            .map(|(at, _)| at)
            .collect();
        times.sort();

        // Two pointers: for each arrival i, j is the first arrival at or after times[i] + window.
        let (mut peak, mut peak_at) = (0usize, None);
        let mut j = 0;
        for (i, &t) in times.iter().enumerate() {
            let end = t.saturating_add(self.window);
            while j < times.len() && times[j] < end {
                j += 1;
            }
            if j - i > peak {
                peak = j - i;
                peak_at = Some(t);
            }
        }
        let secs = self.window.as_secs_f64();
        let rate = peak as f64 / secs;
        let verdict = Verdict::from_ok(rate <= self.max_per_second);
        let when = peak_at.map(|t| format!(" from t={:.1}s", t.as_secs_f64())).unwrap_or_default();
        let summary = format!(
            "{} peaked at {peak} requests in {} ({rate:.2}/s{when}) {scope}, {} requests in all, limit {:.2}/s",
            self.describe(),
            humantime::format_duration(self.window),
            times.len(),
            self.max_per_second,
        );
        let mut result = CheckResult::new(&name, verdict, summary)
            .figure("peak_rate", rate)
            .figure("peak_count", peak as f64)
            .figure("requests", times.len() as f64)
            .figure("limit", self.max_per_second);
        if let Some(t) = peak_at {
            result = result.figure("peak_at_s", t.as_secs_f64());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    fn culler_ceiling() -> RateCeiling {
        RateCeiling::new(Duration::from_secs(10), 2.0).client("culler").route("DELETE", SERVER).label("culler")
    }

    #[test]
    fn a_steady_trickle_passes() {
        // One stop every second for a minute: 10 per 10 s window = 1/s.
        let h = history(all(vec![window(0.0, 70.0), repeat(60, 5.0, 1.0, |t| req(t, "culler", "DELETE", SERVER, "u1", 204))]));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.check, "rate-ceiling:culler");
        assert_eq!(r.figures["peak_count"], 10.0);
        assert_eq!(r.figures["peak_rate"], 1.0);
    }

    #[test]
    fn a_flood_fails_and_says_when() {
        let h = history(all(vec![
            window(0.0, 100.0),
            repeat(10, 5.0, 1.0, |t| req(t, "culler", "DELETE", SERVER, "u1", 204)),
            // 400 stops in 4 s from t=50: the flood.
            repeat(400, 50.0, 0.01, |t| req(t, "culler", "DELETE", SERVER, "u2", 400)),
            // Other clients and routes do not count.
            repeat(500, 50.0, 0.01, |t| req(t, "workload", "DELETE", SERVER, "u3", 204)),
            repeat(500, 50.0, 0.01, |t| req(t, "culler", "GET", USERS, "", 200)),
        ]));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["peak_count"], 400.0);
        assert_eq!(r.figures["peak_rate"], 40.0);
        assert_eq!(r.figures["peak_at_s"], 50.0);
        assert!(r.summary.contains("culler DELETE /hub/api/users/{name}/server"), "{}", r.summary);
        assert!(r.summary.contains("400 requests in 10s (40.00/s from t=50.0s)"), "{}", r.summary);
        assert!(r.summary.contains("limit 2.00/s"), "{}", r.summary);
    }

    #[test]
    fn only_the_workload_window_counts() {
        // A burst during deploy, before the window opens, is not judged.
        let h = history(all(vec![
            repeat(100, 1.0, 0.01, |t| req(t, "culler", "DELETE", SERVER, "u1", 204)),
            window(10.0, 60.0),
            vec![req(20.0, "culler", "DELETE", SERVER, "u1", 204)],
        ]));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["peak_count"], 1.0);
    }

    #[test]
    fn without_a_window_the_whole_history_is_judged() {
        let h = history(repeat(100, 1.0, 0.01, |t| req(t, "culler", "DELETE", SERVER, "u1", 204)));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("whole run"), "{}", r.summary);
    }

    #[test]
    fn status_class_filter() {
        let h = history(all(vec![
            window(0.0, 60.0),
            repeat(100, 1.0, 0.01, |t| req(t, "culler", "DELETE", SERVER, "u1", 204)),
            repeat(5, 1.0, 0.01, |t| req(t, "culler", "DELETE", SERVER, "u1", 400)),
        ]));
        let r = culler_ceiling().status_class("4xx").check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["peak_count"], 5.0);
    }

    #[test]
    fn no_requests_from_the_client_is_unknown() {
        let h = history(all(vec![window(0.0, 60.0), vec![req(5.0, "workload", "GET", USERS, "", 200)]]));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("culler"), "{}", r.summary);
    }

    #[test]
    fn a_client_with_no_matching_requests_passes_at_zero() {
        let h = history(all(vec![window(0.0, 60.0), vec![req(5.0, "culler", "GET", USERS, "", 200)]]));
        let r = culler_ceiling().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["peak_rate"], 0.0);
    }

    #[test]
    fn zero_window_is_unknown() {
        let h = history(vec![req(5.0, "culler", "GET", USERS, "", 200)]);
        let r = RateCeiling::new(Duration::ZERO, 1.0).check(&h);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.check, "rate-ceiling");
    }
}
