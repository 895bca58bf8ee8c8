//! `recovery`: after a fault, the system serves again within a bound, and stays serving.
//!
//! The 2018 outage was diagnosed by restarting pods one by one and watching what came back;
//! this check measures the same thing from the workload's ops: from the fault's injection to
//! the moment after which every op of the watched kind succeeded (with at least one success
//! per user after it). "Recovered, then broke again" is not recovered.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{FaultPhase, History, OpResult};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// The fault whose (first) injection starts the clock, e.g. `kill-process`.
    pub fault_kind: String,
    /// Its target, e.g. `proxy`.
    pub target: String,
    /// The op that shows service, e.g. `reach-server`.
    pub op: String,
    /// Recovered later than this => Fail.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl Recovery {
    pub fn new(fault_kind: &str, target: &str, op: &str, within: Duration) -> Self {
        Self { fault_kind: fault_kind.into(), target: target.into(), op: op.into(), within }
    }
}

/// How one injection ended: recovered after this long, or not by the next injection / the end.
enum Episode {
    Recovered { took: Duration, failures: usize },
    NotRecovered { failing_users: Vec<String>, failures: usize },
}

impl Recovery {
    /// One episode: the ops from `from` that ended before `until` (the next injection or the
    /// end). An op still in flight when the next injection came belongs to that one: seen, an
    /// op sent 3 ms before the second proxy kill failed with it, and was judged the first
    /// kill's last answer.
    fn episode(&self, history: &History, from: Duration, until: Option<Duration>) -> Option<Episode> {
        let ops: Vec<(Duration, &str, OpResult)> = history
            .ops()
            .filter(|(at, o)| *at >= from && until.is_none_or(|u| *at + o.latency < u) && o.op == self.op)
            .map(|(at, o)| (at, o.user.as_deref().unwrap_or(""), o.result))
            .collect();
        let users: BTreeSet<&str> = ops.iter().map(|(_, u, _)| *u).collect();
        if users.is_empty() {
            return None;
        }
        let failures = ops.iter().filter(|(_, _, r)| *r != OpResult::Ok).count();
        // Recovered from just after the last failure (or at once if nothing failed): every user
        // must then answer at least once.
        let last_failure = ops.iter().filter(|(_, _, r)| *r != OpResult::Ok).map(|(at, _, _)| *at).max();
        let mut first_ok_after: BTreeMap<&str, Duration> = BTreeMap::new();
        for (at, user, r) in &ops {
            if *r == OpResult::Ok && last_failure.is_none_or(|f| *at > f) {
                first_ok_after.entry(user).or_insert(*at);
            }
        }
        let failing_users: Vec<String> = users.iter().filter(|u| !first_ok_after.contains_key(*u)).map(|u| u.to_string()).collect();
        if !failing_users.is_empty() {
            return Some(Episode::NotRecovered { failing_users, failures });
        }
        let recovered_at = first_ok_after.values().max().copied().unwrap_or(from);
        Some(Episode::Recovered { took: recovered_at.saturating_sub(from), failures })
    }
}

impl Check for Recovery {
    fn name(&self) -> String {
        "recovery".into()
    }

    /// Every injection of the fault is judged on its own: from it to the next one (or the end).
    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let injections: Vec<Duration> = history
            .faults()
            .filter(|(_, f)| f.kind == self.fault_kind && f.target == self.target && f.phase == FaultPhase::Injected)
            .map(|(at, _)| at)
            .collect();
        if injections.is_empty() {
            return CheckResult::unknown(&name, format!("no {} on {} was injected", self.fault_kind, self.target));
        }
        let mut worst = Duration::ZERO;
        let mut total_failures = 0;
        for (i, from) in injections.iter().enumerate() {
            let until = injections.get(i + 1).copied();
            match self.episode(history, *from, until) {
                None => return CheckResult::unknown(&name, format!("no {} ops after the fault at t={:.1}s", self.op, from.as_secs_f64())),
                Some(Episode::NotRecovered { failing_users, failures }) => {
                    return CheckResult::new(
                        &name,
                        Verdict::Fail,
                        format!(
                            "not recovered: after {} on {} at t={:.1}s the last {} ops still failed for {} user(s) (e.g. {})",
                            self.fault_kind,
                            self.target,
                            from.as_secs_f64(),
                            self.op,
                            failing_users.len(),
                            failing_users.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .figure("failed_ops", (total_failures + failures) as f64)
                }
                Some(Episode::Recovered { took, failures }) => {
                    worst = worst.max(took);
                    total_failures += failures;
                }
            }
        }
        CheckResult::new(
            &name,
            Verdict::from_ok(worst <= self.within),
            format!(
                "{} answered again for every user {:.1} s after {} on {} (worst of {} injection(s), {} failed ops), limit {:.0} s",
                self.op,
                worst.as_secs_f64(),
                self.fault_kind,
                self.target,
                injections.len(),
                total_failures,
                self.within.as_secs_f64()
            ),
        )
        .figure("time_to_recover_s", worst.as_secs_f64())
        .figure("failed_ops", total_failures as f64)
        .figure("limit_s", self.within.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, secs};
    use crate::observe::history::{Entry, Event, FaultEvent, OpRecord};

    fn fault(at: f64) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Fault(FaultEvent {
                kind: "kill-process".into(),
                target: "proxy".into(),
                phase: FaultPhase::Injected,
                detail: String::new(),
            }),
        }
    }

    fn op(at: f64, user: &str, ok: bool) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Op(OpRecord {
                workload: "reach-servers".into(),
                op: "reach-server".into(),
                user: Some(user.into()),
                result: if ok { OpResult::Ok } else { OpResult::Fail },
                latency: Duration::from_millis(5),
                detail: String::new(),
            }),
        }
    }

    fn check() -> Recovery {
        Recovery::new("kill-process", "proxy", "reach-server", Duration::from_secs(10))
    }

    #[test]
    fn time_to_recover_is_from_the_fault_to_the_last_user_answering() {
        let h = history(vec![
            op(9.0, "a", true),
            fault(10.0),
            op(11.0, "a", false),
            op(11.0, "b", false),
            op(14.0, "a", true),
            op(15.0, "b", true),
        ]);
        let r = check().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["time_to_recover_s"], 5.0);
        assert_eq!(r.figures["failed_ops"], 2.0);
    }

    #[test]
    fn too_slow_or_never_fails() {
        let slow = history(vec![fault(10.0), op(11.0, "a", false), op(25.0, "a", true)]);
        assert_eq!(check().check(&slow).verdict, Verdict::Fail);
        let never = history(vec![fault(10.0), op(11.0, "a", true), op(12.0, "a", false)]);
        let r = check().check(&never);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.starts_with("not recovered"), "{}", r.summary);
    }

    #[test]
    fn an_op_in_flight_when_the_next_injection_comes_is_the_next_ones() {
        // The op at 29.998 s ends (5 ms later) after the second kill at 30 s, and fails with it.
        let h =
            history(vec![fault(10.0), op(11.0, "a", false), op(13.0, "a", true), op(29.998, "a", false), fault(30.0), op(31.0, "a", true)]);
        let r = check().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn each_injection_is_judged_on_its_own() {
        let h =
            history(vec![fault(10.0), op(11.0, "a", false), op(13.0, "a", true), fault(30.0), op(31.0, "a", false), op(35.0, "a", true)]);
        let r = check().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["time_to_recover_s"], 5.0);
        assert!(r.summary.contains("worst of 2 injection(s)"), "{}", r.summary);
    }

    #[test]
    fn no_fault_or_no_ops_is_unknown() {
        assert_eq!(check().check(&history(vec![op(1.0, "a", true)])).verdict, Verdict::Unknown);
        assert_eq!(check().check(&history(vec![fault(1.0)])).verdict, Verdict::Unknown);
    }
}
