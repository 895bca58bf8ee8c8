//! `build-start`: every build request of the repos other than a popular one must see its build
//! start (an event after `waiting`) within a bound of asking.
//!
//! Guards against 2019-03-24's starvation: one popular repo that builds slowly held every
//! thread of BinderHub's build pool (each watcher holds one while it follows the build pod and
//! one for its log), so no other repo's build started, while their clients saw only
//! "Waiting for build to start...". A request with no build event by the end counts as starved.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildStarts {
    /// The repo whose watchers are the load (not judged); `None`: every repo is judged.
    pub popular: Option<String>,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl BuildStarts {
    pub fn others_than(popular: &str, within: Duration) -> Self {
        Self { popular: Some(popular.into()), within }
    }

    /// Every repo's builds are judged.
    pub fn every_repo(within: Duration) -> Self {
        Self { popular: None, within }
    }

    /// Which builds are judged, as the summaries say it.
    fn judged(&self) -> String {
        match &self.popular {
            Some(p) => format!("builds of repos other than {p}"),
            None => "builds".into(),
        }
    }
}

impl Check for BuildStarts {
    fn name(&self) -> String {
        "build-start".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let others: Vec<_> = history.build_streams().filter(|s| self.popular.as_deref() != Some(s.repo.as_str())).collect();
        if others.is_empty() {
            return CheckResult::unknown(&name, format!("no request of the {} was recorded", self.judged()));
        }
        let waits: Vec<(String, Option<Duration>)> = others.iter().map(|s| (s.name(), s.queue_wait())).collect();
        let late: Vec<String> = waits
            .iter()
            .filter(|(_, w)| w.is_none_or(|w| w > self.within))
            .map(|(who, w)| match w {
                Some(w) => format!("{who} after {:.1}s", w.as_secs_f64()),
                None => format!("{who} never"),
            })
            .collect();
        let mut started: Vec<f64> = waits.iter().filter_map(|(_, w)| w.map(|w| w.as_secs_f64())).collect();
        started.sort_by(f64::total_cmp);
        let worst = started.last().copied().unwrap_or(0.0);
        let verdict = Verdict::from_ok(late.is_empty());
        let summary = if late.is_empty() {
            format!(
                "all {} {} started within {:.0}s of the request (slowest {:.1}s)",
                waits.len(),
                self.judged(),
                self.within.as_secs_f64(),
                worst
            )
        } else {
            format!(
                "{} of {} {} did not start within {:.0}s of the request: {}",
                late.len(),
                waits.len(),
                self.judged(),
                self.within.as_secs_f64(),
                late.join(", ")
            )
        };
        CheckResult::new(&name, verdict, summary)
            .figure("requests", waits.len() as f64)
            .figure("late", late.len() as f64)
            .figure("slowest_start_s", worst)
            // Over the builds that started (the ones that never did are counted in `late`).
            .figure("p50_start_s", crate::stats::nearest_rank(&started, 0.50).unwrap_or(0.0))
            .figure("p95_start_s", crate::stats::nearest_rank(&started, 0.95).unwrap_or(0.0))
            .figure("limit_s", self.within.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{secs, stream};
    use crate::observe::history::History;

    #[test]
    fn others_that_start_in_time_pass_and_the_popular_repo_is_not_judged() {
        let h = History::new(vec![
            stream("slow", 0.0, None, Some(("ready", 60.0)), Some(60.1)),
            stream("fast", 3.0, Some(4.0), Some(("ready", 5.0)), Some(5.1)),
        ]);
        let r = BuildStarts::others_than("slow", secs(10.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["slowest_start_s"], 1.0);
        assert_eq!((r.figures["p50_start_s"], r.figures["p95_start_s"]), (1.0, 1.0));
    }

    #[test]
    fn a_request_left_waiting_fails_and_is_named() {
        let h =
            History::new(vec![stream("fast", 3.0, Some(40.0), Some(("ready", 41.0)), Some(41.0)), stream("other", 5.0, None, None, None)]);
        let r = BuildStarts::others_than("slow", secs(10.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("fast#0 after 37.0s") && r.summary.contains("other#0 never"), "{}", r.summary);
    }

    #[test]
    fn nothing_to_judge_is_unknown() {
        let h = History::new(vec![stream("slow", 0.0, Some(1.0), None, None)]);
        assert_eq!(BuildStarts::others_than("slow", secs(10.0)).check(&h).verdict, Verdict::Unknown);
    }
}
