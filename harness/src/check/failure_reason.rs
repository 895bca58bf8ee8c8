//! `failure-reason`: operations that must fail, fail for the named reason, and the report says
//! it in those words. 2019: builds on a node pool without local SSD failed with "no space left
//! on device"; a harness that reported "import failed" would hide the cause the operators then
//! spent hours finding with `df -h`.
//!
//! Pass: at least one op failed, and every failure's detail contains `words`; the summary
//! quotes the first failure verbatim. Fail: every op succeeded (the condition was not there:
//! the disk was not full), or some failure does not name the reason (a generic failure).
//! Unknown: no such op was recorded.

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, OpResult};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailureReason {
    pub workload: String,
    pub op: String,
    /// Compared case-insensitively, e.g. `no space left on device`.
    pub words: String,
}

impl FailureReason {
    /// Imports of the `import-images` workload fail with ENOSPC.
    pub fn no_space() -> Self {
        Self {
            workload: crate::workload::import_images::NAME.into(),
            op: crate::workload::import_images::OP.into(),
            words: "no space left on device".into(),
        }
    }
}

impl Check for FailureReason {
    fn name(&self) -> String {
        format!("failure-reason:{}", self.op)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let ops: Vec<_> = history.ops().filter(|(_, o)| o.workload == self.workload && o.op == self.op).collect();
        if ops.is_empty() {
            return CheckResult::unknown(&name, format!("no {} op was recorded", self.op));
        }
        let words = self.words.to_lowercase();
        let failed: Vec<_> = ops.iter().filter(|(_, o)| o.result != OpResult::Ok).collect();
        let other: Vec<_> = failed.iter().filter(|(_, o)| !o.detail.to_lowercase().contains(&words)).collect();
        let result = if failed.is_empty() {
            CheckResult::new(
                &name,
                Verdict::Fail,
                format!("all {} {} op(s) succeeded: expected them to fail with \"{}\"", ops.len(), self.op, self.words),
            )
        } else if let Some((at, o)) = other.first() {
            CheckResult::new(
                &name,
                Verdict::Fail,
                format!(
                    "{} of {} failed {} op(s) do not say \"{}\"; the first, at t={:.1}s: {}",
                    other.len(),
                    failed.len(),
                    self.op,
                    self.words,
                    at.as_secs_f64(),
                    o.detail
                ),
            )
        } else {
            let (at, first) = failed[0];
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "{} of {} {} op(s) failed with \"{}\"; the first, at t={:.1}s: {}",
                    failed.len(),
                    ops.len(),
                    self.op,
                    self.words,
                    at.as_secs_f64(),
                    first.detail
                ),
            )
        };
        result.figure("failed", failed.len() as f64).figure("other_reason", other.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, secs};
    use crate::observe::history::{Entry, Event, OpRecord};

    fn op(at: f64, result: OpResult, detail: &str) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Op(OpRecord {
                workload: "import-images".into(),
                op: "import-image".into(),
                user: None,
                result,
                latency: secs(0.1),
                detail: detail.into(),
            }),
        }
    }

    const ENOSPC: &str = "importing hubchaos/build-0:r: dockerd answered 500 to POST /images/create: mkdir /r/node/data-root/overlay2/abc: no space left on device";

    #[test]
    fn enospc_in_the_daemons_words_passes_and_is_quoted() {
        let r = FailureReason::no_space().check(&history(vec![op(1.0, OpResult::Fail, ENOSPC), op(2.0, OpResult::Fail, ENOSPC)]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert!(r.summary.ends_with(ENOSPC));
    }

    #[test]
    fn success_or_a_generic_failure_fails() {
        assert_eq!(FailureReason::no_space().check(&history(vec![op(1.0, OpResult::Ok, "")])).verdict, Verdict::Fail);
        let r = FailureReason::no_space().check(&history(vec![op(1.0, OpResult::Fail, ENOSPC), op(2.0, OpResult::Fail, "import failed")]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("1 of 2 failed import-image op(s) do not say"), "{}", r.summary);
        assert_eq!(FailureReason::no_space().check(&history(vec![])).verdict, Verdict::Unknown);
    }
}
