//! `disk-below`: every time the node disk's usage crosses the cleaner's high threshold, it is
//! back under it within a deadline — the cleaner did its job, in time. The time from crossing
//! to back under is the cleaner's reaction time (figure `reaction_s`), to be read against its
//! configured interval: with interval I, a crossing just after a cycle waits up to I.
//!
//! Evidence: the `node-disk` samples (`used_pct` by default: the fuller of blocks and inodes,
//! exactly the cleaner's own measure). All samples of the run count, not only the window: a
//! fill that is part of the setup crosses before the window opens.
//! Unknown: no samples, usage never reached the threshold (the scenario did not do what it
//! meant to), or the samples end before a deadline with usage still over.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::disk::{NODE_DISK, USED_PCT};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiskBelow {
    /// Percent; usage at or above it is "over".
    pub threshold: f64,
    /// Back under within this long after each crossing.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    /// `used_pct` (default), `blocks_used_pct` or `inodes_used_pct`.
    pub metric: String,
}

impl DiskBelow {
    pub fn new(threshold: f64, within: Duration) -> Self {
        Self { threshold, within, metric: USED_PCT.into() }
    }

    pub fn on(mut self, metric: &str) -> Self {
        self.metric = metric.into();
        self
    }
}

/// One excursion over the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Episode {
    crossed: Duration,
    back: Option<Duration>,
    peak: f64,
}

impl Check for DiskBelow {
    fn name(&self) -> String {
        format!("disk-below:{}", self.metric)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let samples: Vec<(Duration, f64)> = history.series(NODE_DISK, &self.metric).map(|s| (s.at, s.value)).collect();
        let Some(last_at) = samples.last().map(|s| s.0) else {
            return CheckResult::unknown(&name, format!("no {NODE_DISK} {} samples", self.metric));
        };
        let mut episodes: Vec<Episode> = Vec::new();
        for &(at, v) in &samples {
            let over = v >= self.threshold;
            match episodes.last_mut() {
                Some(e) if e.back.is_none() => {
                    if over {
                        e.peak = e.peak.max(v);
                    } else {
                        e.back = Some(at);
                    }
                }
                _ if over => episodes.push(Episode { crossed: at, back: None, peak: v }),
                _ => {}
            }
        }
        let peak = samples.iter().map(|s| s.1).fold(f64::MIN, f64::max);
        if episodes.is_empty() {
            return CheckResult::unknown(&name, format!("usage never reached {:.1}% (peak {peak:.1}%): nothing to judge", self.threshold))
                .figure("peak_pct", peak);
        }
        let mut late = Vec::new();
        let mut pending = None;
        let mut reaction = Duration::ZERO;
        for e in &episodes {
            match e.back {
                Some(back) => {
                    let took = back - e.crossed;
                    reaction = reaction.max(took);
                    if took > self.within {
                        late.push(format!(
                            "over from t={:.1}s to t={:.1}s ({:.1} s, peak {:.1}%)",
                            e.crossed.as_secs_f64(),
                            back.as_secs_f64(),
                            took.as_secs_f64(),
                            e.peak
                        ));
                    }
                }
                None if last_at - e.crossed > self.within => {
                    reaction = reaction.max(last_at - e.crossed);
                    late.push(format!(
                        "over since t={:.1}s and still at {:.1}% at the last sample, {:.1} s later",
                        e.crossed.as_secs_f64(),
                        samples.last().unwrap().1,
                        (last_at - e.crossed).as_secs_f64()
                    ));
                }
                None => pending = Some(*e),
            }
        }
        let mut result = if !late.is_empty() {
            CheckResult::new(
                &name,
                Verdict::Fail,
                format!(
                    "{} not back under {:.1}% within {:.0} s: {}",
                    self.metric,
                    self.threshold,
                    self.within.as_secs_f64(),
                    late.join("; ")
                ),
            )
        } else if let Some(e) = pending {
            CheckResult::unknown(
                &name,
                format!(
                    "over {:.1}% since t={:.1}s; the samples end {:.1} s later, before the {:.0} s deadline",
                    self.threshold,
                    e.crossed.as_secs_f64(),
                    (last_at - e.crossed).as_secs_f64(),
                    self.within.as_secs_f64()
                ),
            )
        } else {
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "{} crossing(s) of {:.1}%, each back under within {:.1} s (allowed {:.0} s; peak {peak:.1}%)",
                    episodes.len(),
                    self.threshold,
                    reaction.as_secs_f64(),
                    self.within.as_secs_f64()
                ),
            )
        };
        result = result.figure("crossings", episodes.len() as f64).figure("peak_pct", peak);
        if episodes.iter().any(|e| e.back.is_some()) || !late.is_empty() {
            result = result.figure("reaction_s", reaction.as_secs_f64());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, sample};

    fn disk(points: &[(f64, f64)]) -> History {
        history(vec![]).with_samples(points.iter().map(|(t, v)| sample(*t, NODE_DISK, USED_PCT, *v)).collect())
    }

    #[test]
    fn back_under_in_time_passes_with_the_reaction_time() {
        let h = disk(&[(1.0, 10.0), (2.0, 85.0), (3.0, 86.0), (7.5, 12.0), (9.0, 12.0)]);
        let r = DiskBelow::new(80.0, Duration::from_secs(10)).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert!((r.figures["reaction_s"] - 5.5).abs() < 1e-9);
        assert_eq!(r.figures["peak_pct"], 86.0);
    }

    #[test]
    fn still_over_after_the_deadline_fails() {
        let h = disk(&[(1.0, 10.0), (2.0, 85.0), (20.0, 85.0), (30.0, 85.0)]);
        let r = DiskBelow::new(80.0, Duration::from_secs(10)).check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("still at 85.0%"), "{}", r.summary);
        // Back, but too late.
        let h = disk(&[(2.0, 85.0), (20.0, 50.0)]);
        assert_eq!(DiskBelow::new(80.0, Duration::from_secs(10)).check(&h).verdict, Verdict::Fail);
    }

    #[test]
    fn never_over_or_cut_short_is_unknown() {
        assert_eq!(DiskBelow::new(80.0, Duration::from_secs(10)).check(&disk(&[])).verdict, Verdict::Unknown);
        let r = DiskBelow::new(80.0, Duration::from_secs(10)).check(&disk(&[(1.0, 40.0), (2.0, 60.0)]));
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.summary.contains("never reached"));
        let r = DiskBelow::new(80.0, Duration::from_secs(10)).check(&disk(&[(1.0, 85.0), (4.0, 85.0)]));
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    }
}
