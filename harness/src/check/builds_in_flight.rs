//! `builds-in-flight`: BinderHub must never build more at once than `concurrent_build_limit`
//! says. After a cache wipe (2019-03-24) every repo is asked for at once; the limit is what
//! keeps the build nodes from drowning. Judged on the sampled count of repo2docker processes
//! ([`crate::observe::builds`]), not on BinderHub's own gauge, which counts requests.

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::builds::BUILDS_IN_FLIGHT;
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildsInFlight {
    pub limit: u32,
}

impl Check for BuildsInFlight {
    fn name(&self) -> String {
        "builds-in-flight".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let samples: Vec<_> = history.series("binderhub", BUILDS_IN_FLIGHT).collect();
        if samples.is_empty() {
            return CheckResult::unknown(&name, "no sample of the builds in flight");
        }
        let peak = samples.iter().map(|s| s.value).fold(0.0, f64::max);
        if peak == 0.0 {
            return CheckResult::unknown(&name, format!("no build was ever seen in flight in {} samples", samples.len()));
        }
        let over: Vec<_> = samples.iter().filter(|s| s.value > self.limit as f64).collect();
        let summary = if over.is_empty() {
            format!("at most {peak} builds in flight in {} samples, limit {}", samples.len(), self.limit)
        } else {
            format!(
                "{peak} builds in flight at t={:.1}s, over the limit of {} in {} of {} samples",
                over.iter().find(|s| s.value == peak).map_or(0.0, |s| s.at.as_secs_f64()),
                self.limit,
                over.len(),
                samples.len()
            )
        };
        CheckResult::new(&name, Verdict::from_ok(over.is_empty()), summary).figure("peak", peak).figure("limit", self.limit as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::sample;

    fn h(values: &[f64]) -> History {
        History::new(vec![])
            .with_samples(values.iter().enumerate().map(|(i, v)| sample(i as f64, "binderhub", BUILDS_IN_FLIGHT, *v)).collect())
    }

    #[test]
    fn within_the_limit_passes_over_it_fails_and_never_building_is_unknown() {
        assert_eq!(BuildsInFlight { limit: 2 }.check(&h(&[0.0, 1.0, 2.0, 2.0, 0.0])).verdict, Verdict::Pass);
        let r = BuildsInFlight { limit: 2 }.check(&h(&[0.0, 2.0, 4.0, 3.0]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.starts_with("4 builds in flight at t=2.0s, over the limit of 2 in 2 of 4 samples"), "{}", r.summary);
        assert_eq!(BuildsInFlight { limit: 2 }.check(&h(&[0.0, 0.0])).verdict, Verdict::Unknown);
    }
}
