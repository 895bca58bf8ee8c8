//! `settles`: a gauge of work in flight must be back to its idle value once the work ended,
//! and stay there: `binderhub_inprogress_builds` after every build stream reached its terminal
//! phase. A gauge that drifts up with each failure is the in-process trace of requests that
//! never finished (at BinderHub's main, every failed build leaves +1).

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::component::binderhub::BINDERHUB;
use crate::observe::builds::INPROGRESS_BUILDS;
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GaugeSettles {
    pub component: String,
    pub metric: String,
    /// The idle value.
    pub idle: f64,
    /// How long after the last terminal phase of a build stream the gauge may take.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl GaugeSettles {
    /// `binderhub_inprogress_builds` back to 0 within `within` of the last build's end.
    pub fn inprogress_builds(within: Duration) -> Self {
        Self { component: BINDERHUB.into(), metric: INPROGRESS_BUILDS.into(), idle: 0.0, within }
    }
}

impl Check for GaugeSettles {
    fn name(&self) -> String {
        format!("settles:{}", self.metric)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let streams: Vec<_> = history.build_streams().collect();
        if streams.iter().any(|s| s.terminal.is_none()) || streams.is_empty() {
            return CheckResult::unknown(
                &name,
                "not every build stream reached ready or failed: the work never ended, so nothing can settle",
            );
        }
        let last_end = streams.iter().filter_map(|s| s.terminal.as_ref().map(|t| t.at)).max().unwrap_or_default();
        let from = last_end + self.within;
        let after: Vec<_> = history.series(&self.component, &self.metric).filter(|s| s.at >= from).collect();
        if after.is_empty() {
            return CheckResult::unknown(
                &name,
                format!(
                    "no sample of {} {} after {:.1}s (the last build ended at {:.1}s)",
                    self.component,
                    self.metric,
                    from.as_secs_f64(),
                    last_end.as_secs_f64()
                ),
            );
        }
        let worst = after.iter().map(|s| s.value).fold(f64::MIN, f64::max);
        let last = after.last().map_or(f64::NAN, |s| s.value);
        let ok = worst <= self.idle;
        let summary = if ok {
            format!(
                "{} was {} in all {} samples from {:.0}s after the last build ended",
                self.metric,
                self.idle,
                after.len(),
                self.within.as_secs_f64()
            )
        } else {
            format!(
                "{} stayed above {} after every build ended: up to {} in the {} samples from {:.0}s after the last build ended at {:.1}s (last {})",
                self.metric,
                self.idle,
                worst,
                after.len(),
                self.within.as_secs_f64(),
                last_end.as_secs_f64(),
                last
            )
        };
        CheckResult::new(&name, Verdict::from_ok(ok), summary)
            .figure("max_after", worst)
            .figure("last", last)
            .figure("samples_after", after.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{sample, secs, stream};

    fn gauge(values: &[(f64, f64)]) -> Vec<crate::observe::samples::Sample> {
        values.iter().map(|(t, v)| sample(*t, "binderhub", "binderhub_inprogress_builds", *v)).collect()
    }

    #[test]
    fn back_to_zero_after_the_builds_passes() {
        let h = History::new(vec![stream("fast", 1.0, Some(2.0), Some(("ready", 5.0)), Some(5.1))]).with_samples(gauge(&[
            (4.0, 1.0),
            (6.0, 0.0),
            (9.0, 0.0),
        ]));
        let r = GaugeSettles::inprogress_builds(secs(2.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn a_gauge_left_up_by_a_failed_build_fails() {
        let h = History::new(vec![stream("broken", 1.0, Some(2.0), Some(("failed", 5.0)), None)]).with_samples(gauge(&[
            (4.0, 1.0),
            (8.0, 1.0),
            (12.0, 1.0),
        ]));
        let r = GaugeSettles::inprogress_builds(secs(2.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.figures["last"], 1.0);
    }

    #[test]
    fn builds_still_running_at_the_end_are_unknown() {
        let h = History::new(vec![stream("slow", 1.0, Some(2.0), None, None)]).with_samples(gauge(&[(4.0, 1.0)]));
        assert_eq!(GaugeSettles::inprogress_builds(secs(2.0)).check(&h).verdict, Verdict::Unknown);
    }
}
