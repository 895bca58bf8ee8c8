//! `failure-cause:<repo>`: every build of `repo` that failed must say why in the words of the
//! cause, in its `failed` message or in the last lines of its log as the user saw them.
//!
//! Guards against 2019-03-24's disk: builds on a node pool without local SSD failed, and what
//! told the operators why was "no space left on device" in the build's log. A build that fails
//! with only "exit status 1" sends everyone looking in the wrong place.

use regex::Regex;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildFailureCause {
    pub repo: String,
    /// A case-insensitive regex the cause must match.
    pub cause: String,
}

impl BuildFailureCause {
    /// The build of `repo` fails for want of disk, and says so.
    pub fn no_space(repo: &str) -> Self {
        Self { repo: repo.into(), cause: "no space left on device".into() }
    }
}

impl Check for BuildFailureCause {
    fn name(&self) -> String {
        format!("failure-cause:{}", self.repo)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let cause = match Regex::new(&format!("(?i){}", self.cause)) {
            Ok(r) => r,
            Err(e) => return CheckResult::unknown(&name, format!("bad pattern: {e}")),
        };
        let failed: Vec<_> =
            history.build_streams().filter(|s| s.repo == self.repo && s.terminal.as_ref().is_some_and(|t| t.phase == "failed")).collect();
        if failed.is_empty() {
            return CheckResult::unknown(&name, format!("no build of {} failed: nothing to judge", self.repo));
        }
        let silent: Vec<String> = failed
            .iter()
            .filter(|s| !cause.is_match(&s.message) && !s.log_tail.iter().any(|l| cause.is_match(l)))
            .map(|s| format!("{}#{} (last: {:?})", s.repo, s.watcher, s.log_tail.last().map_or(s.message.as_str(), String::as_str)))
            .collect();
        let summary = if silent.is_empty() {
            format!("all {} failed builds of {} said {:?}", failed.len(), self.repo, self.cause)
        } else {
            format!(
                "{} of {} failed builds of {} never said {:?}: {}",
                silent.len(),
                failed.len(),
                self.repo,
                self.cause,
                silent.join("; ")
            )
        };
        CheckResult::new(&name, Verdict::from_ok(silent.is_empty()), summary)
            .figure("failed", failed.len() as f64)
            .figure("without_cause", silent.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::stream;
    use crate::observe::history::{Entry, Event};

    fn with_tail(mut e: Entry, tail: &[&str]) -> Entry {
        if let Event::BuildStream(b) = &mut e.event {
            b.log_tail = tail.iter().map(|s| s.to_string()).collect();
            b.message = "Error during build: exit status 1".into();
        }
        e
    }

    #[test]
    fn a_failure_whose_log_names_the_full_disk_passes() {
        let e = with_tail(
            stream("large", 0.0, Some(0.5), Some(("failed", 9.0)), None),
            &["#5 ERROR: write /large: No space left on device", "Error during build"],
        );
        let r = BuildFailureCause::no_space("large").check(&History::new(vec![e]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn a_failure_that_only_says_exit_status_fails_and_one_that_did_not_fail_is_unknown() {
        let e = with_tail(stream("large", 0.0, Some(0.5), Some(("failed", 9.0)), None), &["Error during build"]);
        assert_eq!(BuildFailureCause::no_space("large").check(&History::new(vec![e])).verdict, Verdict::Fail);
        let ok = stream("large", 0.0, Some(0.5), Some(("ready", 9.0)), Some(9.0));
        assert_eq!(BuildFailureCause::no_space("large").check(&History::new(vec![ok])).verdict, Verdict::Unknown);
    }
}
