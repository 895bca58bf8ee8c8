//! `streams-close`: every build event stream must reach a terminal phase (`ready`, `failed`)
//! and be closed by BinderHub within a bound after it.
//!
//! Guards against streams that hang: builds "stuck until BinderHub was restarted" (2019-03-24),
//! and, at BinderHub's main, a failed build whose stream says `failed` but is never closed
//! (the handler's loop ends only on a built image). A browser left on an open stream never
//! learns it may retry; the server keeps the request's coroutine and build object.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamsClose {
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl StreamsClose {
    pub fn within(within: Duration) -> Self {
        Self { within }
    }
}

impl Check for StreamsClose {
    fn name(&self) -> String {
        "streams-close".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let streams: Vec<_> = history.build_streams().collect();
        if streams.is_empty() {
            return CheckResult::unknown(&name, "no build stream was recorded");
        }
        let mut bad = Vec::new();
        let mut open = 0usize;
        let mut no_terminal = 0usize;
        for s in &streams {
            let who = format!("{}#{}", s.repo, s.watcher);
            match (&s.terminal, s.closed_at) {
                (None, _) => {
                    no_terminal += 1;
                    bad.push(format!("{who} reached no terminal phase (last {})", s.phases.last().map_or("none", |p| p.phase.as_str())));
                }
                (Some(t), None) => {
                    open += 1;
                    bad.push(format!("{who} said {} at {:.1}s and was still open at the end", t.phase, t.at.as_secs_f64()));
                }
                (Some(t), Some(closed)) if closed.saturating_sub(t.at) > self.within => {
                    bad.push(format!("{who} closed {:.1}s after {}", closed.saturating_sub(t.at).as_secs_f64(), t.phase));
                }
                _ => {}
            }
        }
        let summary = if bad.is_empty() {
            format!("all {} streams reached ready or failed and were closed within {:.0}s of it", streams.len(), self.within.as_secs_f64())
        } else {
            format!("{} of {} streams did not end properly: {}", bad.len(), streams.len(), bad.join("; "))
        };
        CheckResult::new(&name, Verdict::from_ok(bad.is_empty()), summary)
            .figure("streams", streams.len() as f64)
            .figure("left_open", open as f64)
            .figure("no_terminal_phase", no_terminal as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{secs, stream};

    #[test]
    fn streams_closed_right_after_ready_or_failed_pass() {
        let h = History::new(vec![
            stream("fast", 1.0, Some(1.5), Some(("ready", 4.0)), Some(4.2)),
            stream("broken", 1.0, Some(1.5), Some(("failed", 3.0)), Some(3.1)),
        ]);
        assert_eq!(StreamsClose::within(secs(5.0)).check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn a_failed_stream_left_open_fails_with_its_count() {
        let h = History::new(vec![stream("broken", 1.0, Some(1.5), Some(("failed", 3.0)), None)]);
        let r = StreamsClose::within(secs(5.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.figures["left_open"], 1.0);
        assert!(r.summary.contains("broken#0 said failed at 3.0s and was still open"), "{}", r.summary);
    }

    #[test]
    fn a_late_close_and_a_stream_without_an_end_fail() {
        let h = History::new(vec![stream("a", 0.0, Some(1.0), Some(("ready", 2.0)), Some(70.0)), stream("b", 0.0, None, None, None)]);
        let r = StreamsClose::within(secs(5.0)).check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.figures["no_terminal_phase"], 1.0);
        assert!(r.summary.contains("a#0 closed 68.0s after ready"), "{}", r.summary);
    }
}
