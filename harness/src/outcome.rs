//! How a run ended (after Chaos Toolkit's run statuses), and whether that is what the test
//! expected.

use serde::{Deserialize, Serialize};

use crate::check::{CheckResult, Verdict};
use crate::scenario::Expectation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// Every check passed and the steady state held after the run.
    Passed,
    /// At least one check failed (named, with its numbers, in the report).
    Failed(String),
    /// Checks passed but the system did not return to its steady state in the recovery window.
    Deviated(String),
    /// The steady state did not hold BEFORE the run: the environment was not healthy, so
    /// nothing can be concluded about the system.
    Aborted(String),
    /// The harness could not carry out the run (deploy failed, a workload could not start,
    /// a check could not decide).
    Errored(String),
    /// SIGINT/SIGTERM: faults healed, everything torn down, no verdict.
    Interrupted,
    /// A prerequisite is missing on this machine (the reason says which and how to get it).
    Skipped(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "FAILED",
            Outcome::Deviated(_) => "DEVIATED",
            Outcome::Aborted(_) => "ABORTED",
            Outcome::Errored(_) => "ERRORED",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped(_) => "skipped",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Outcome::Passed | Outcome::Interrupted => "",
            Outcome::Failed(d) | Outcome::Deviated(d) | Outcome::Aborted(d) | Outcome::Errored(d) | Outcome::Skipped(d) => d,
        }
    }

    /// The outcome of a run whose lifecycle completed, from its check results and whether
    /// the steady state came back. A Fail beats a deviation (it says more); an Unknown is
    /// never a pass.
    pub fn from_checks(checks: &[CheckResult], deviated: Option<String>) -> Outcome {
        let failed: Vec<&CheckResult> = checks.iter().filter(|c| c.verdict == Verdict::Fail).collect();
        if !failed.is_empty() {
            let lines: Vec<String> = failed.iter().map(|c| format!("{}: {}", c.check, c.summary)).collect();
            return Outcome::Failed(lines.join("\n"));
        }
        if let Some(d) = deviated {
            return Outcome::Deviated(d);
        }
        let unknown: Vec<String> =
            checks.iter().filter(|c| c.verdict == Verdict::Unknown).map(|c| format!("{}: {}", c.check, c.summary)).collect();
        if !unknown.is_empty() {
            return Outcome::Errored(format!("checks could not decide:\n{}", unknown.join("\n")));
        }
        Outcome::Passed
    }
}

/// Did the run do what the scenario expects? `Ok(())` = the test passes.
pub fn judge(expect: &Expectation, outcome: &Outcome, checks: &[CheckResult]) -> Result<(), String> {
    let failed: Vec<String> = checks.iter().filter(|c| c.verdict == Verdict::Fail).map(|c| c.check.clone()).collect();
    match (expect, outcome) {
        (_, Outcome::Skipped(_)) => Ok(()),
        (Expectation::Pass, Outcome::Passed) => Ok(()),
        (Expectation::Pass, other) => Err(format!("{}: {}", other.label(), other.detail())),
        (Expectation::FailOn { checks: want, reason }, Outcome::Passed) => {
            Err(format!("unexpectedly passed — remove the expectation (expected {} to fail: {reason})", want.join(", ")))
        }
        (Expectation::FailOn { checks: want, reason }, Outcome::Failed(_)) => {
            let mut want_sorted = want.clone();
            want_sorted.sort();
            let mut got = failed.clone();
            got.sort();
            if want_sorted == got {
                Ok(())
            } else {
                let missing: Vec<&String> = want_sorted.iter().filter(|w| !got.contains(w)).collect();
                let extra: Vec<&String> = got.iter().filter(|g| !want_sorted.contains(g)).collect();
                Err(format!(
                    "expected exactly [{}] to fail ({reason}); failed: [{}]; did not fail: {missing:?}; failed unexpectedly: {extra:?}\n{}",
                    want_sorted.join(", "),
                    got.join(", "),
                    outcome.detail()
                ))
            }
        }
        (Expectation::FailOn { checks: want, .. }, other) => {
            Err(format!("expected [{}] to fail, but the run ended {}: {}", want.join(", "), other.label(), other.detail()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, v: Verdict) -> CheckResult {
        CheckResult::new(name, v, format!("{name} said so"))
    }

    #[test]
    fn a_fail_beats_a_deviation_and_unknown_is_not_a_pass() {
        let checks = vec![result("a", Verdict::Pass), result("b", Verdict::Fail)];
        assert!(matches!(Outcome::from_checks(&checks, Some("x".into())), Outcome::Failed(_)));
        let checks = vec![result("a", Verdict::Pass), result("b", Verdict::Unknown)];
        assert!(matches!(Outcome::from_checks(&checks, None), Outcome::Errored(_)));
        assert!(matches!(Outcome::from_checks(&[result("a", Verdict::Pass)], Some("y".into())), Outcome::Deviated(_)));
        assert_eq!(Outcome::from_checks(&[result("a", Verdict::Pass)], None), Outcome::Passed);
    }

    #[test]
    fn an_expected_failure_must_be_exact() {
        let expect = Expectation::fail_on(&["wasted-requests", "rate-ceiling:culler"], "flood mutant");
        let exact =
            vec![result("wasted-requests", Verdict::Fail), result("rate-ceiling:culler", Verdict::Fail), result("safety", Verdict::Pass)];
        assert!(judge(&expect, &Outcome::from_checks(&exact, None), &exact).is_ok());

        let fewer = vec![result("wasted-requests", Verdict::Fail), result("rate-ceiling:culler", Verdict::Pass)];
        let err = judge(&expect, &Outcome::from_checks(&fewer, None), &fewer).unwrap_err();
        assert!(err.contains("did not fail: [\"rate-ceiling:culler\"]"), "{err}");

        let more =
            vec![result("wasted-requests", Verdict::Fail), result("rate-ceiling:culler", Verdict::Fail), result("safety", Verdict::Fail)];
        let err = judge(&expect, &Outcome::from_checks(&more, None), &more).unwrap_err();
        assert!(err.contains("failed unexpectedly: [\"safety\"]"), "{err}");
    }

    #[test]
    fn a_fixed_upstream_bug_is_noticed() {
        let expect = Expectation::fail_on(&["convergence"], "upstream culler issue #88");
        let passing = vec![result("convergence", Verdict::Pass)];
        let err = judge(&expect, &Outcome::Passed, &passing).unwrap_err();
        assert!(err.starts_with("unexpectedly passed — remove the expectation"), "{err}");
    }

    #[test]
    fn an_expected_failure_does_not_excuse_an_abort() {
        let expect = Expectation::fail_on(&["convergence"], "r");
        assert!(judge(&expect, &Outcome::Aborted("hub down".into()), &[]).is_err());
    }
}
