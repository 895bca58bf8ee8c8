//! `convergence`: a sampled metric must reach a target within a deadline after the workload
//! starts, and must not bounce back.
//!
//! Guards against the 2018-04-18 culler flood's second symptom: the buggy culler never got to
//! `DELETE /hub/api/users/{name}`, so "users were constantly accumulating" and the next deploy
//! took so long it had to be resubmitted. A culler that works brings the hub's
//! `jupyterhub_total_users` (or running servers) down to what the active users need, and keeps
//! it there; a flood check alone would pass a culler that quietly does nothing.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;
use crate::observe::samples::Sample;

/// Which side of the target is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// value <= target (e.g. users left after culling).
    AtMost,
    /// value >= target (e.g. servers running after a recovery).
    AtLeast,
}

impl Direction {
    pub fn meets(self, value: f64, target: f64) -> bool {
        match self {
            Direction::AtMost => value <= target,
            Direction::AtLeast => value >= target,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Direction::AtMost => "<=",
            Direction::AtLeast => ">=",
        }
    }

    /// The better of two values.
    fn best(self, a: f64, b: f64) -> f64 {
        match self {
            Direction::AtMost => a.min(b),
            Direction::AtLeast => a.max(b),
        }
    }
}

/// `history.series(component, metric)` must meet `target` in some sample taken between the
/// workload start and `workload start + deadline`, and still meet it in the last sample (with
/// `hold_until_end`: in every sample from then on).
///
/// Only samples taken at or after the workload start count: a target met before anything
/// happened is not convergence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Convergence {
    /// Sampled component, e.g. `hub`.
    pub component: String,
    /// Metric name, e.g. `jupyterhub_total_users`.
    pub metric: String,
    pub target: f64,
    pub direction: Direction,
    /// Measured from the workload start.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Name suffix when a scenario uses several: `convergence:users`.
    pub label: Option<String>,
    /// Every sample after the target was first met must meet it too, not only the last one.
    pub hold_until_end: bool,
}

impl Convergence {
    pub fn new(component: &str, metric: &str, direction: Direction, target: f64, deadline: Duration) -> Self {
        Self { component: component.into(), metric: metric.into(), target, direction, deadline, label: None, hold_until_end: false }
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn hold_until_end(mut self) -> Self {
        self.hold_until_end = true;
        self
    }
}

impl Check for Convergence {
    fn name(&self) -> String {
        match &self.label {
            Some(l) => format!("convergence:{l}"),
            None => "convergence".into(),
        }
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let what = format!("{} {}", self.component, self.metric);
        let goal = format!("{} {}", self.direction.symbol(), self.target);
        let Some((start, _)) = history.workload_window() else {
            return CheckResult::unknown(&name, format!("no workload window: the deadline for {what} has no origin"));
        };
        let mut samples: Vec<&Sample> = history.series(&self.component, &self.metric).collect();
        let label_sets: std::collections::BTreeSet<_> = samples.iter().map(|s| &s.labels).collect();
        if label_sets.len() > 1 {
            return CheckResult::unknown(
                &name,
                format!("{what} has {} label sets: one series is needed to judge convergence", label_sets.len()),
            );
        }
        samples.retain(|s| s.at >= start);
        samples.sort_by_key(|s| s.at);
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return CheckResult::unknown(&name, format!("no samples of {what} after the workload start"));
        };
        let deadline_at = start + self.deadline;
        let rel = |at: Duration| at.saturating_sub(start).as_secs_f64();
        let best = samples.iter().fold(first.value, |b, s| self.direction.best(b, s.value));
        let final_value = last.value;
        let deadline = humantime::format_duration(self.deadline);
        let base = CheckResult::new(&name, Verdict::Unknown, "")
            .figure("final_value", final_value)
            .figure("best_value", best)
            .figure("target", self.target)
            .figure("samples", samples.len() as f64);
        let verdict_with = |verdict, summary: String| CheckResult { verdict, summary, ..base.clone() };

        let met = samples.iter().position(|s| s.at <= deadline_at && self.direction.meets(s.value, self.target));
        let Some(i) = met else {
            if last.at < deadline_at {
                return verdict_with(
                    Verdict::Unknown,
                    format!(
                        "{what} had not reached {goal} when the samples ended at +{:.1}s, before the deadline +{deadline} \
                         (best {best}, final {final_value})",
                        rel(last.at)
                    ),
                );
            }
            return verdict_with(
                Verdict::Fail,
                format!("{what} never reached {goal} within {deadline} of the workload start (best {best}, final {final_value})"),
            );
        };
        let reached = samples[i];
        let ttc = rel(reached.at);
        let bounce = if self.hold_until_end {
            samples[i..].iter().find(|s| !self.direction.meets(s.value, self.target)).copied()
        } else {
            Some(*last).filter(|s| !self.direction.meets(s.value, self.target))
        };
        let result = match bounce {
            Some(b) => verdict_with(
                Verdict::Fail,
                format!(
                    "{what} reached {goal} at +{ttc:.1}s but bounced back to {} at +{:.1}s (final {final_value}, deadline +{deadline})",
                    b.value,
                    rel(b.at)
                ),
            ),
            None => verdict_with(
                Verdict::Pass,
                format!(
                    "{what} reached {goal} at +{ttc:.1}s (deadline +{deadline}) and {} (final {final_value}, best {best})",
                    if self.hold_until_end { "held it to the end" } else { "still met it at the end" }
                ),
            ),
        };
        result.figure("time_to_converge_s", ttc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    const USERS_METRIC: &str = "jupyterhub_total_users";

    fn users_down_to_7() -> Convergence {
        Convergence::new("hub", USERS_METRIC, Direction::AtMost, 7.0, Duration::from_secs(60)).label("users")
    }

    fn curve(points: &[(f64, f64)]) -> Vec<crate::observe::samples::Sample> {
        points.iter().map(|&(t, v)| sample(t, "hub", USERS_METRIC, v)).collect()
    }

    #[test]
    fn culling_down_to_the_active_users_passes() {
        let h = history(window(10.0, 200.0)).with_samples(curve(&[
            (5.0, 3.0), // before the window: ignored
            (10.0, 20.0),
            (30.0, 12.0),
            (50.0, 7.0),
            (70.0, 5.0),
            (190.0, 6.0),
        ]));
        let r = users_down_to_7().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.check, "convergence:users");
        assert_eq!(r.figures["time_to_converge_s"], 40.0);
        assert_eq!(r.figures["final_value"], 6.0);
        assert_eq!(r.figures["best_value"], 5.0);
        assert!(r.summary.starts_with("hub jupyterhub_total_users reached <= 7 at +40.0s (deadline +1m)"), "{}", r.summary);
    }

    #[test]
    fn accumulating_users_fail() {
        // The 2018 culler never deleted users: the count only grew.
        let h = history(window(10.0, 200.0)).with_samples(curve(&[(10.0, 20.0), (40.0, 25.0), (80.0, 31.0), (190.0, 44.0)]));
        let r = users_down_to_7().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("never reached <= 7 within 1m"), "{}", r.summary);
        assert!(r.summary.contains("best 20, final 44"), "{}", r.summary);
        assert!(!r.figures.contains_key("time_to_converge_s"));
    }

    #[test]
    fn reaching_the_target_too_late_fails() {
        let h = history(window(10.0, 200.0)).with_samples(curve(&[(10.0, 20.0), (69.0, 8.0), (71.0, 7.0)]));
        let r = users_down_to_7().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
    }

    #[test]
    fn bouncing_back_fails() {
        let h = history(window(10.0, 200.0)).with_samples(curve(&[(10.0, 20.0), (30.0, 7.0), (190.0, 15.0)]));
        let r = users_down_to_7().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("bounced back to 15 at +180.0s"), "{}", r.summary);
        assert_eq!(r.figures["time_to_converge_s"], 20.0);
    }

    #[test]
    fn hold_until_end_catches_a_bounce_the_last_sample_hides() {
        let h = history(window(10.0, 200.0)).with_samples(curve(&[(10.0, 20.0), (30.0, 7.0), (100.0, 12.0), (190.0, 6.0)]));
        assert_eq!(users_down_to_7().check(&h).verdict, Verdict::Pass);
        let r = users_down_to_7().hold_until_end().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("bounced back to 12 at +90.0s"), "{}", r.summary);
    }

    #[test]
    fn at_least_direction() {
        let h = history(window(0.0, 100.0)).with_samples(vec![
            sample(0.0, "hub", "jupyterhub_running_servers", 0.0),
            sample(20.0, "hub", "jupyterhub_running_servers", 5.0),
            sample(90.0, "hub", "jupyterhub_running_servers", 5.0),
        ]);
        let c = Convergence::new("hub", "jupyterhub_running_servers", Direction::AtLeast, 5.0, Duration::from_secs(30));
        let r = c.check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["best_value"], 5.0);
        assert_eq!(r.check, "convergence");
    }

    #[test]
    fn no_samples_or_no_window_is_unknown() {
        let no_samples = history(window(10.0, 200.0));
        assert_eq!(users_down_to_7().check(&no_samples).verdict, Verdict::Unknown);
        let other_metric = history(window(10.0, 200.0)).with_samples(vec![sample(20.0, "hub", "rss_bytes", 1.0)]);
        assert_eq!(users_down_to_7().check(&other_metric).verdict, Verdict::Unknown);
        let no_window = history(vec![]).with_samples(curve(&[(10.0, 3.0)]));
        let r = users_down_to_7().check(&no_window);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("no workload window"), "{}", r.summary);
    }

    #[test]
    fn samples_ending_before_the_deadline_are_unknown_not_fail() {
        let h = history(window(10.0, 200.0)).with_samples(curve(&[(10.0, 20.0), (30.0, 12.0)]));
        let r = users_down_to_7().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("before the deadline"), "{}", r.summary);
    }

    #[test]
    fn several_label_sets_are_unknown() {
        let mut a = sample(20.0, "hub", USERS_METRIC, 1.0);
        a.labels.insert("pod".into(), "a".into());
        let b = sample(20.0, "hub", USERS_METRIC, 1.0);
        let h = history(window(10.0, 200.0)).with_samples(vec![a, b]);
        assert_eq!(users_down_to_7().check(&h).verdict, Verdict::Unknown);
    }
}
