//! `build-outcomes`: every build stream ends the way its repo must: `ready` for a repo that
//! builds, `failed` with a message for one that cannot. Without it the queue checks could pass
//! on a BinderHub that fails every request at once (seen: image names over docker's 255
//! characters failed every build before it started, and "build-start" saw prompt answers).

use std::collections::BTreeMap;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildOutcomes {
    /// The terminal phase each repo's streams must reach (`ready` or `failed`).
    pub expected: BTreeMap<String, String>,
}

impl Check for BuildOutcomes {
    fn name(&self) -> String {
        "build-outcomes".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let streams: Vec<_> = history.build_streams().filter(|s| self.expected.contains_key(&s.repo)).collect();
        if streams.is_empty() {
            return CheckResult::unknown(&name, "no build stream of the expected repos was recorded");
        }
        let mut wrong = Vec::new();
        for s in &streams {
            let want = &self.expected[&s.repo];
            let got = s.terminal.as_ref().map_or("none", |t| t.phase.as_str());
            if got != want {
                let why = if s.message.is_empty() { String::new() } else { format!(" ({})", s.message) };
                wrong.push(format!("{}#{} ended {got}, not {want}{why}", s.repo, s.watcher));
            } else if got == "failed" && s.message.is_empty() {
                wrong.push(format!("{}#{} failed without saying why", s.repo, s.watcher));
            }
        }
        let summary = if wrong.is_empty() {
            format!("all {} streams ended as their repo must ({} repos)", streams.len(), self.expected.len())
        } else {
            format!("{} of {} streams did not end as their repo must: {}", wrong.len(), streams.len(), wrong.join("; "))
        };
        CheckResult::new(&name, Verdict::from_ok(wrong.is_empty()), summary)
            .figure("streams", streams.len() as f64)
            .figure("wrong", wrong.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::stream;

    fn expected() -> BuildOutcomes {
        BuildOutcomes { expected: [("fast".to_string(), "ready".to_string()), ("broken".to_string(), "failed".to_string())].into() }
    }

    #[test]
    fn streams_that_end_as_their_repo_must_pass() {
        let mut broken = stream("broken", 1.0, Some(1.1), Some(("failed", 2.0)), Some(2.0));
        if let crate::observe::history::Event::BuildStream(b) = &mut broken.event {
            b.message = "Error during build: exit code: 3".into();
        }
        let h = History::new(vec![stream("fast", 1.0, Some(1.1), Some(("ready", 3.0)), Some(3.0)), broken]);
        assert_eq!(expected().check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn a_repo_that_should_build_but_failed_fails_and_so_does_a_failure_without_a_cause() {
        let h = History::new(vec![
            stream("fast", 1.0, Some(1.1), Some(("failed", 1.2)), Some(1.2)),
            stream("broken", 1.0, Some(1.1), Some(("failed", 2.0)), None),
        ]);
        let r = expected().check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.summary.contains("fast#0 ended failed, not ready") && r.summary.contains("broken#0 failed without saying why"),
            "{}",
            r.summary
        );
    }
}
