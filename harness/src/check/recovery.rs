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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The fault whose (first) injection starts the clock, e.g. `kill-process`.
    pub fault_kind: String,
    /// Its target, e.g. `proxy`.
    pub target: String,
    /// The op that shows service, e.g. `reach-server`.
    pub op: String,
    /// Recovered later than this => Fail.
    pub within: Duration,
}

impl Recovery {
    pub fn new(fault_kind: &str, target: &str, op: &str, within: Duration) -> Self {
        Self { fault_kind: fault_kind.into(), target: target.into(), op: op.into(), within }
    }
}

impl Check for Recovery {
    fn name(&self) -> String {
        "recovery".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let Some(injected) = history
            .faults()
            .find(|(_, f)| f.kind == self.fault_kind && f.target == self.target && f.phase == FaultPhase::Injected)
            .map(|(at, _)| at)
        else {
            return CheckResult::unknown(&name, format!("no {} on {} was injected", self.fault_kind, self.target));
        };
        let ops: Vec<(Duration, &str, OpResult)> = history
            .ops()
            .filter(|(at, o)| *at >= injected && o.op == self.op)
            .map(|(at, o)| (at, o.user.as_deref().unwrap_or(""), o.result))
            .collect();
        let users: BTreeSet<&str> = ops.iter().map(|(_, u, _)| *u).collect();
        if users.is_empty() {
            return CheckResult::unknown(&name, format!("no {} ops after the fault", self.op));
        }
        // Recovered at: just after the last failure (or at the injection if nothing failed).
        let last_failure = ops.iter().filter(|(_, _, r)| *r != OpResult::Ok).map(|(at, _, _)| *at).max();
        let failures = ops.iter().filter(|(_, _, r)| *r != OpResult::Ok).count();
        let recovered_from = last_failure.unwrap_or(injected);
        let mut first_ok_after: BTreeMap<&str, Duration> = BTreeMap::new();
        for (at, user, r) in &ops {
            if *r == OpResult::Ok && (*at > recovered_from || last_failure.is_none()) {
                first_ok_after.entry(user).or_insert(*at);
            }
        }
        let missing: Vec<&str> = users.iter().filter(|u| !first_ok_after.contains_key(*u)).copied().collect();
        if !missing.is_empty() {
            return CheckResult::new(
                &name,
                Verdict::Fail,
                format!(
                    "not recovered: after {} on {} the last {} ops still failed for {} of {} users (e.g. {})",
                    self.fault_kind,
                    self.target,
                    self.op,
                    missing.len(),
                    users.len(),
                    missing.iter().take(3).copied().collect::<Vec<_>>().join(", ")
                ),
            )
            .figure("failed_ops", failures as f64);
        }
        let recovered_at = first_ok_after.values().max().copied().unwrap_or(injected);
        let took = recovered_at.saturating_sub(injected);
        let verdict = Verdict::from_ok(took <= self.within);
        CheckResult::new(
            &name,
            verdict,
            format!(
                "{} answered again for all {} users {:.1} s after {} on {} ({} failed ops), limit {:.0} s",
                self.op,
                users.len(),
                took.as_secs_f64(),
                self.fault_kind,
                self.target,
                failures,
                self.within.as_secs_f64()
            ),
        )
        .figure("time_to_recover_s", took.as_secs_f64())
        .figure("failed_ops", failures as f64)
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
            event: Event::Fault(FaultEvent { kind: "kill-process".into(), target: "proxy".into(), phase: FaultPhase::Injected, detail: String::new() }),
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
        let h = history(vec![op(9.0, "a", true), fault(10.0), op(11.0, "a", false), op(11.0, "b", false), op(14.0, "a", true), op(15.0, "b", true)]);
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
    fn no_fault_or_no_ops_is_unknown() {
        assert_eq!(check().check(&history(vec![op(1.0, "a", true)])).verdict, Verdict::Unknown);
        assert_eq!(check().check(&history(vec![fault(1.0)])).verdict, Verdict::Unknown);
    }
}
