//! `built-repos-launch`: a repo whose image was built must keep launching: every request for a
//! repo made after one of its streams ended `ready` must end `ready` too, whatever else is down.
//!
//! Guards against a launch path that depends on more than the image: at BinderHub's main the
//! GitHub provider asks the GitHub API for the ref on every request, before it looks for the
//! image, so an API outage or a spent rate limit stops launches of repos that are built and
//! sitting in the registry. On mybinder.org that is most launches.

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BuiltReposLaunch;

impl Check for BuiltReposLaunch {
    fn name(&self) -> String {
        "built-repos-launch".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let streams: Vec<_> = history.build_streams().collect();
        // Each repo's first `ready`: requests after it are launches of a built repo.
        let mut built_at = std::collections::BTreeMap::new();
        for s in &streams {
            if let Some(t) = s.terminal.as_ref().filter(|t| t.phase == "ready") {
                let at = built_at.entry(s.repo.as_str()).or_insert(t.at);
                *at = (*at).min(t.at);
            }
        }
        let launches: Vec<_> = streams.iter().filter(|s| built_at.get(s.repo.as_str()).is_some_and(|b| s.requested_at > *b)).collect();
        if launches.is_empty() {
            return CheckResult::unknown(&name, "no request was made for a repo after it was built");
        }
        let failed: Vec<String> = launches
            .iter()
            .filter(|s| s.terminal.as_ref().is_none_or(|t| t.phase != "ready"))
            .map(|s| {
                let how = s.terminal.as_ref().map_or("no terminal phase".to_string(), |t| t.phase.clone());
                format!(
                    "{}#{} at {:.1}s: {how}{}",
                    s.repo,
                    s.watcher,
                    s.requested_at.as_secs_f64(),
                    if s.message.is_empty() { String::new() } else { format!(" ({})", s.message) }
                )
            })
            .collect();
        let summary = if failed.is_empty() {
            format!("all {} requests for repos already built ended ready", launches.len())
        } else {
            format!("{} of {} requests for repos already built did not launch: {}", failed.len(), launches.len(), failed.join("; "))
        };
        CheckResult::new(&name, Verdict::from_ok(failed.is_empty()), summary)
            .figure("launches", launches.len() as f64)
            .figure("not_launched", failed.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::stream;

    #[test]
    fn requests_after_a_build_must_be_ready_and_earlier_ones_are_not_judged() {
        let mut down = stream("a", 20.0, None, Some(("failed", 20.1)), Some(20.1));
        if let crate::observe::history::Event::BuildStream(r) = &mut down.event {
            r.message = "Error resolving ref for gh:hubchaos/a/main: HTTP 503".into();
        }
        let good = vec![
            stream("a", 1.0, Some(1.2), Some(("ready", 5.0)), Some(5.0)),
            stream("a", 8.0, None, Some(("ready", 8.1)), Some(8.1)),
            stream("b", 9.0, None, Some(("failed", 9.1)), Some(9.1)),
        ];
        let r = BuiltReposLaunch.check(&History::new(good.clone()));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["launches"], 1.0);
        let r = BuiltReposLaunch.check(&History::new([good, vec![down]].concat()));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("a#0 at 20.0s: failed (Error resolving ref"), "{}", r.summary);
    }

    #[test]
    fn without_a_built_repo_asked_for_again_it_is_unknown() {
        let h = History::new(vec![stream("a", 1.0, Some(1.2), Some(("ready", 5.0)), Some(5.0))]);
        assert_eq!(BuiltReposLaunch.check(&h).verdict, Verdict::Unknown);
    }
}
