//! Three-valued verdicts and their composition (after Jepsen's `checker.clj`: `merge-valid`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observe::history::History;

/// What a check concluded. `Unknown` is not a pass: the check could not decide (no data, the
/// check itself errored). Ordering is by severity, so `max` merges verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Unknown,
    Fail,
}

impl Verdict {
    /// Merge several verdicts: any Fail fails, else any Unknown is Unknown, else Pass.
    pub fn merge(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or(Verdict::Pass)
    }

    pub fn from_ok(ok: bool) -> Verdict {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Unknown => "unknown",
            Verdict::Fail => "FAIL",
        })
    }
}

/// A check's result: the verdict, one line that says why with the numbers, and the figures
/// behind it (for the summary table and for comparing runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub verdict: Verdict,
    /// e.g. "culler got 412 × 400 on DELETE /hub/api/users/{name}/server, limit 0".
    pub summary: String,
    #[serde(default)]
    pub figures: BTreeMap<String, f64>,
}

impl CheckResult {
    pub fn new(check: &str, verdict: Verdict, summary: impl Into<String>) -> Self {
        Self { check: check.to_string(), verdict, summary: summary.into(), figures: BTreeMap::new() }
    }

    pub fn unknown(check: &str, why: impl Into<String>) -> Self {
        Self::new(check, Verdict::Unknown, why)
    }

    pub fn figure(mut self, name: &str, value: f64) -> Self {
        self.figures.insert(name.to_string(), value);
        self
    }
}

/// A pure function of the history. Implementations are small typed structs, one per file,
/// unit-tested on synthetic histories.
pub trait Check: Send + Sync + std::fmt::Debug + crate::scenario::Declaration {
    /// Stable kebab-case name, used in reports and in expected-failure declarations.
    fn name(&self) -> String;
    fn check(&self, history: &History) -> CheckResult;
}

/// Run a check, turning a panic into `Unknown` (lifecycle step 10: an error => Unknown).
pub fn run_check(check: &dyn Check, history: &History) -> CheckResult {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check.check(history))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            CheckResult::unknown(&check.name(), format!("check errored: {msg}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_dominates_unknown_dominates_pass() {
        use Verdict::*;
        assert_eq!(Verdict::merge([Pass, Pass]), Pass);
        assert_eq!(Verdict::merge([Pass, Unknown]), Unknown);
        assert_eq!(Verdict::merge([Unknown, Fail, Pass]), Fail);
        assert_eq!(Verdict::merge([]), Pass);
    }

    #[derive(Debug, Serialize)]
    struct Panics;
    impl Check for Panics {
        fn name(&self) -> String {
            "panics".into()
        }
        fn check(&self, _: &History) -> CheckResult {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_check_is_unknown_not_pass() {
        let r = run_check(&Panics, &History::default());
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.summary.contains("boom"));
    }
}
