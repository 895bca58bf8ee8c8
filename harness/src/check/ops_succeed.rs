//! `<label>`: every operation of one kind that a workload recorded succeeded, and there was
//! at least one. For probes of a cluster's plumbing (a Service reached through kube-proxy, a
//! name resolved by coredns, a pod run on each pool): each is one op, and one failure is the
//! finding; the summary quotes it.

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, OpResult};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpsSucceed {
    /// The check's name, e.g. `service`.
    pub label: String,
    /// Ops whose name starts with this, e.g. `pod-on-` for every pool's.
    pub op_prefix: String,
}

impl OpsSucceed {
    pub fn new(label: &str, op_prefix: &str) -> Self {
        Self { label: label.into(), op_prefix: op_prefix.into() }
    }
}

impl Check for OpsSucceed {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn check(&self, history: &History) -> CheckResult {
        let ops: Vec<_> = history.ops().filter(|(_, o)| o.op.starts_with(&self.op_prefix)).collect();
        if ops.is_empty() {
            return CheckResult::unknown(&self.label, format!("no {}* op was recorded", self.op_prefix));
        }
        let failed: Vec<_> = ops.iter().filter(|(_, o)| o.result != OpResult::Ok).collect();
        let names: Vec<&str> = ops.iter().map(|(_, o)| o.op.as_str()).collect();
        match failed.first() {
            Some((at, o)) => CheckResult::new(
                &self.label,
                Verdict::Fail,
                format!("{} of {} failed; {} at t={:.1}s: {}", failed.len(), ops.len(), o.op, at.as_secs_f64(), o.detail),
            ),
            None => CheckResult::new(&self.label, Verdict::Pass, format!("all {} succeeded: {}", ops.len(), names.join(", "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::secs;
    use crate::observe::history::{Entry, Event, OpRecord};

    fn op(t: f64, name: &str, ok: bool) -> Entry {
        Entry {
            at: secs(t),
            event: Event::Op(OpRecord {
                workload: "pool-probes".into(),
                op: name.into(),
                user: None,
                result: if ok { OpResult::Ok } else { OpResult::Fail },
                latency: secs(1.0),
                detail: if ok { String::new() } else { "pending after 30s: 0/5 nodes are available".into() },
            }),
        }
    }

    #[test]
    fn all_ok_passes_one_failure_fails_none_is_unknown() {
        let c = OpsSucceed::new("pools", "pod-on-");
        let h = History::new(vec![op(1.0, "pod-on-core", true), op(2.0, "pod-on-user", true), op(3.0, "service", false)]);
        assert_eq!(c.check(&h).verdict, Verdict::Pass, "the service op is not a pod-on- op");
        let h = History::new(vec![op(1.0, "pod-on-core", true), op(2.0, "pod-on-user", false)]);
        let r = c.check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("pod-on-user") && r.summary.contains("0/5 nodes"), "{}", r.summary);
        assert_eq!(c.check(&History::new(vec![op(1.0, "service", true)])).verdict, Verdict::Unknown);
    }
}
