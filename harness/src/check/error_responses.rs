//! `error-responses`: a client may get at most `limit` error answers from what it talks to.
//!
//! Guards against the 2018-04-18 culler flood as the operators saw it: "a large and increasing
//! volume of 400 errors in the culler" in the hub's logs, each one a stop of a server that was
//! not running. With a 0.9 hub this check catches that bug directly; with hubs that answer such
//! stops 204 it still catches a client that keeps retrying a request the hub refuses, and 5xx /
//! unreachable answers from a hub that is falling over (see `wasted-requests` for the state-based
//! version).

use std::collections::BTreeMap;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, RequestRecord};

/// Which answers count as errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// 400-499.
    Client4xx,
    /// 500-599, and 0 (the upstream could not be reached: the recorder answered 502).
    Server5xx,
    /// Any of the above.
    Any,
}

impl ErrorClass {
    pub fn matches(self, status: u16) -> bool {
        match self {
            ErrorClass::Client4xx => (400..500).contains(&status),
            ErrorClass::Server5xx => status == 0 || (500..600).contains(&status),
            ErrorClass::Any => status == 0 || status >= 400,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorClass::Client4xx => "4xx",
            ErrorClass::Server5xx => "5xx/unreachable",
            ErrorClass::Any => "error",
        }
    }
}

/// The number of `class` answers to requests of `client` (in the workload window, or the whole
/// history if the run recorded none) must be at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorResponses {
    /// Recorder listener, e.g. `culler`.
    pub client: String,
    pub class: ErrorClass,
    pub limit: u64,
    /// Name suffix when a scenario uses several: `error-responses:culler`.
    pub label: Option<String>,
}

impl ErrorResponses {
    pub fn new(client: &str, class: ErrorClass, limit: u64) -> Self {
        Self { client: client.into(), class, limit, label: None }
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }
}

fn status_text(status: u16) -> String {
    match status {
        0 => "unreachable".into(),
        s => s.to_string(),
    }
}

impl Check for ErrorResponses {
    fn name(&self) -> String {
        match &self.label {
            Some(l) => format!("error-responses:{l}"),
            None => "error-responses".into(),
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let (from, to, scope) = history.judged_span();
        let sent: Vec<&RequestRecord> =
            history.requests().filter(|(at, r)| *at >= from && *at <= to && r.client == self.client).map(|(_, r)| r).collect();
        if sent.is_empty() {
            return CheckResult::unknown(&name, format!("{} sent no requests {scope}", self.client));
        }
        let mut counts: BTreeMap<(u16, &str, &str), u64> = BTreeMap::new();
        for r in sent.iter().filter(|r| self.class.matches(r.status)) {
            *counts.entry((r.status, r.method.as_str(), r.route.as_str())).or_default() += 1;
        }
        let errors: u64 = counts.values().sum();
        let mut top: Vec<_> = counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> =
            top.iter().take(3).map(|((status, method, route), n)| format!("{n} × {} on {method} {route}", status_text(*status))).collect();
        let summary = if errors == 0 {
            format!("{} got no {} answers to {} requests {scope}, limit {}", self.client, self.class.describe(), sent.len(), self.limit)
        } else {
            let more = if top.len() > 3 { format!(" and {} more kinds", top.len() - 3) } else { String::new() };
            format!(
                "{} got {}{more} ({errors} {} answers to {} requests {scope}), limit {}",
                self.client,
                listed.join(", "),
                self.class.describe(),
                sent.len(),
                self.limit
            )
        };
        let mut result = CheckResult::new(&name, Verdict::from_ok(errors <= self.limit), summary)
            .figure("errors", errors as f64)
            .figure("requests", sent.len() as f64)
            .figure("error_ratio", errors as f64 / sent.len() as f64)
            .figure("limit", self.limit as f64);
        if let Some(((status, _, _), n)) = top.first() {
            result = result.figure("top_status", *status as f64).figure("top_count", **n as f64);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    #[test]
    fn the_2018_flood_of_400s_fails_with_the_top_three() {
        let h = history(all(vec![
            window(0.0, 100.0),
            repeat(412, 10.0, 0.1, |t| req(t, "culler", "DELETE", SERVER, "u1", 400)),
            repeat(20, 10.0, 1.0, |t| req(t, "culler", "DELETE", USER, "u1", 404)),
            repeat(3, 10.0, 1.0, |t| req(t, "culler", "GET", USERS, "", 503)),
            repeat(2, 10.0, 1.0, |t| req(t, "culler", "GET", USERS, "", 0)),
            repeat(100, 10.0, 0.5, |t| req(t, "culler", "GET", USERS, "", 200)),
            // Someone else's errors are not the culler's.
            repeat(50, 10.0, 0.5, |t| req(t, "workload", "GET", USERS, "", 500)),
        ]));
        let r = ErrorResponses::new("culler", ErrorClass::Any, 0).label("culler").check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.check, "error-responses:culler");
        assert!(
            r.summary.starts_with(
                "culler got 412 × 400 on DELETE /hub/api/users/{name}/server, \
                 20 × 404 on DELETE /hub/api/users/{name}, 3 × 503 on GET /hub/api/users and 1 more kinds"
            ),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("437 error answers to 537 requests"), "{}", r.summary);
        assert_eq!(r.figures["errors"], 437.0);
        assert_eq!(r.figures["top_status"], 400.0);
        assert_eq!(r.figures["top_count"], 412.0);
    }

    #[test]
    fn classes_split_4xx_from_5xx_and_unreachable() {
        let h = history(all(vec![
            window(0.0, 100.0),
            vec![
                req(10.0, "culler", "DELETE", SERVER, "u1", 400),
                req(11.0, "culler", "GET", USERS, "", 502),
                req(12.0, "culler", "GET", USERS, "", 0),
                req(13.0, "culler", "GET", USERS, "", 200),
            ],
        ]));
        let r4 = ErrorResponses::new("culler", ErrorClass::Client4xx, 1).check(&h);
        assert_eq!(r4.verdict, Verdict::Pass, "{}", r4.summary);
        assert_eq!(r4.figures["errors"], 1.0);
        let r5 = ErrorResponses::new("culler", ErrorClass::Server5xx, 1).check(&h);
        assert_eq!(r5.verdict, Verdict::Fail, "{}", r5.summary);
        assert_eq!(r5.figures["errors"], 2.0);
        assert!(r5.summary.contains("1 × unreachable on GET /hub/api/users"), "{}", r5.summary);
        let any = ErrorResponses::new("culler", ErrorClass::Any, 3).check(&h);
        assert_eq!(any.verdict, Verdict::Pass, "{}", any.summary);
        assert_eq!(any.figures["errors"], 3.0);
    }

    #[test]
    fn a_clean_run_passes_and_errors_outside_the_window_are_ignored() {
        let h = history(all(vec![
            // The hub was still starting: connection refused before the window opened.
            vec![req(1.0, "culler", "GET", USERS, "", 0)],
            window(5.0, 100.0),
            repeat(10, 10.0, 1.0, |t| req(t, "culler", "GET", USERS, "", 200)),
        ]));
        let r = ErrorResponses::new("culler", ErrorClass::Any, 0).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.summary, "culler got no error answers to 10 requests in the workload window, limit 0");
    }

    #[test]
    fn a_silent_client_is_unknown() {
        let h = history(all(vec![window(0.0, 100.0), vec![req(10.0, "workload", "GET", USERS, "", 500)]]));
        let r = ErrorResponses::new("culler", ErrorClass::Any, 0).check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert_eq!(r.check, "error-responses");
    }
}
