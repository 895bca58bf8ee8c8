//! `no-deletion`: a cleaner that is switched off deletes nothing. In 2018 mybinder.org switched
//! its new image cleaner off by setting its threshold to 0; with docker-image-cleaner 1.0.0b3
//! a threshold of 0 means "always over" and prunes every unused image every cycle, so this is
//! the check that says whether "disabled" is disabled.
//!
//! Evidence, two kinds, either fails it:
//! - the client's recorded requests to dockerd that delete: `POST /images/prune`,
//!   `POST /containers/prune`, `POST /build/prune`, `DELETE /images/{name}`,
//!   `DELETE /containers/{id}` (answered 2xx: the daemon did it);
//! - the `dockerd` `images` count falling between two samples while no fault was active (the
//!   wipe-cache fault deletes on purpose).
//!
//! Unknown: the client sent no request at all (not running, or not through the recorder: a
//! cleaner under its threshold still sends `GET /version` at start) and there are no image
//! samples either.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::component::image_cleaner::IMAGE_CLEANER;
use crate::observe::docker::{DOCKERD, IMAGES};
use crate::observe::history::{FaultPhase, History, RequestRecord};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoDeletion {
    /// The recorder client whose requests are judged (`image-cleaner`).
    pub client: String,
}

impl Default for NoDeletion {
    fn default() -> Self {
        Self { client: IMAGE_CLEANER.into() }
    }
}

/// Does this Docker API request delete something?
pub fn is_deletion(r: &RequestRecord) -> bool {
    match r.method.as_str() {
        "POST" => matches!(r.route.as_str(), "/images/prune" | "/containers/prune" | "/build/prune" | "/volumes/prune"),
        "DELETE" => r.route.starts_with("/images/") || r.route == "/containers/{id}",
        _ => false,
    }
}

/// Intervals during which some fault was injected and not yet healed.
fn fault_windows(history: &History) -> Vec<(Duration, Duration)> {
    let mut open: Vec<(String, Duration)> = Vec::new();
    let mut out = Vec::new();
    for (at, f) in history.faults() {
        let key = format!("{}|{}", f.kind, f.target);
        match f.phase {
            FaultPhase::Injected => open.push((key, at)),
            FaultPhase::Healed | FaultPhase::HealFailed => {
                if let Some(i) = open.iter().position(|(k, _)| *k == key) {
                    let (_, from) = open.remove(i);
                    out.push((from, at));
                }
            }
        }
    }
    out.extend(open.into_iter().map(|(_, from)| (from, Duration::MAX)));
    out
}

impl Check for NoDeletion {
    fn name(&self) -> String {
        format!("no-deletion:{}", self.client)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let sent: Vec<(Duration, &RequestRecord)> =
            history.requests().filter(|(_, r)| r.client == self.client && r.upstream == DOCKERD).collect();
        let deletions: Vec<&(Duration, &RequestRecord)> =
            sent.iter().filter(|(_, r)| is_deletion(r) && (200..300).contains(&r.status)).collect();
        let counts: Vec<(Duration, f64)> = history.series(DOCKERD, IMAGES).map(|s| (s.at, s.value)).collect();
        if sent.is_empty() && counts.is_empty() {
            return CheckResult::unknown(
                &name,
                format!("{} sent no request to dockerd and there are no image samples: no evidence either way", self.client),
            );
        }
        let faults = fault_windows(history);
        let drops: Vec<(Duration, f64, f64)> = counts
            .windows(2)
            .filter(|w| w[1].1 < w[0].1)
            .filter(|w| !faults.iter().any(|(from, to)| *from <= w[1].0 && w[0].0 <= *to))
            .map(|w| (w[1].0, w[0].1, w[1].1))
            .collect();
        let mut problems = Vec::new();
        if let Some((at, first)) = deletions.first() {
            let mut routes: Vec<String> = deletions.iter().map(|(_, r)| format!("{} {}", r.method, r.route)).collect();
            routes.sort();
            routes.dedup();
            problems.push(format!(
                "{} sent {} deleting request(s) ({}), the first {} {} at t={:.1}s",
                self.client,
                deletions.len(),
                routes.join(", "),
                first.method,
                first.route,
                at.as_secs_f64()
            ));
        }
        if let Some((at, from, to)) = drops.first() {
            let lost: f64 = drops.iter().map(|(_, a, b)| a - b).sum();
            problems.push(format!(
                "the image count fell {} time(s) with no fault active ({lost:.0} image(s) in all; first {from:.0} -> {to:.0} at t={:.1}s)",
                drops.len(),
                at.as_secs_f64()
            ));
        }
        let result = if problems.is_empty() {
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "no deletion: {} request(s) from {}, none deleting; image count never fell outside a fault ({} sample(s))",
                    sent.len(),
                    self.client,
                    counts.len()
                ),
            )
        } else {
            CheckResult::new(&name, Verdict::Fail, problems.join("; "))
        };
        result.figure("deleting_requests", deletions.len() as f64).figure("count_drops", drops.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, req, sample, secs, window, with_upstream};
    use crate::observe::history::{Entry, Event, FaultEvent};

    fn docker(at: f64, method: &str, route: &str, status: u16) -> Entry {
        with_upstream(req(at, IMAGE_CLEANER, method, route, "", status), DOCKERD)
    }

    fn count(points: &[(f64, f64)]) -> Vec<crate::observe::samples::Sample> {
        points.iter().map(|(t, v)| sample(*t, DOCKERD, IMAGES, *v)).collect()
    }

    #[test]
    fn a_disabled_cleaner_that_only_asks_passes() {
        let h = history(vec![docker(1.0, "GET", "/version", 200)]).with_samples(count(&[(1.0, 5.0), (2.0, 5.0), (3.0, 6.0)]));
        let r = NoDeletion::default().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn threshold_zero_prunes_and_fails() {
        let h = history(vec![
            docker(1.0, "GET", "/version", 200),
            docker(1.1, "GET", "/images/json", 200),
            docker(1.2, "POST", "/containers/prune", 200),
            docker(1.3, "POST", "/images/prune", 200),
            docker(1.4, "POST", "/images/prune", 200),
        ])
        .with_samples(count(&[(1.0, 5.0), (2.0, 1.0)]));
        let r = NoDeletion::default().check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("3 deleting request(s) (POST /containers/prune, POST /images/prune)"), "{}", r.summary);
        assert!(r.summary.contains("5 -> 1 at t=2.0s"), "{}", r.summary);
    }

    #[test]
    fn a_wipe_fault_is_not_the_cleaners_deletion_and_no_evidence_is_unknown() {
        let fault = |at: f64, phase| Entry {
            at: secs(at),
            event: Event::Fault(FaultEvent { kind: "wipe-cache".into(), target: "dockerd".into(), phase, detail: String::new() }),
        };
        let mut entries = window(0.0, 10.0);
        entries.extend([docker(0.5, "GET", "/version", 200), fault(2.0, FaultPhase::Injected), fault(2.5, FaultPhase::Healed)]);
        let h = history(entries).with_samples(count(&[(1.0, 5.0), (3.0, 0.0), (4.0, 0.0)]));
        assert_eq!(NoDeletion::default().check(&h).verdict, Verdict::Pass);
        // Someone else's deletions and a refused prune are not the cleaner's.
        let h = history(vec![
            with_upstream(req(1.0, "harness", "DELETE", "/images/{name}", "", 200), DOCKERD),
            docker(1.0, "POST", "/images/prune", 500),
        ]);
        assert_eq!(NoDeletion::default().check(&h).verdict, Verdict::Pass);
        assert_eq!(NoDeletion::default().check(&history(vec![])).verdict, Verdict::Unknown);
    }
}
