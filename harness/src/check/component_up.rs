//! `component-up`: a component without an endpoint (the image cleaner) is up when it is alive,
//! has done its job at least once by a deadline — a cleaning cycle in its own log — and was
//! restarted at most so often. The 2018 image cleaner "never started": it crashed at once
//! (`DOCKER_HOST` without `unix://`) and crash-looped. A process that exists is not a cleaner
//! that works, so "running" alone is not enough.
//!
//! Evidence: log lines recorded by a [`LogWatcher`](crate::observe::logs::LogWatcher) (cycle
//! lines and error lines), the supervisor's restart events. When it fails, the summary carries
//! the component's own last error line, so the report says *why* in the component's words.
//!
//! Deadline: `within` after the judged window opens (`setup-done`, else `workload-start`). A
//! cycle logged before the window opened counts (the cleaner was deployed first).
//! Unknown: nobody watched the component's log, there is no window, or the window closed
//! before the deadline without a cycle and without a crash to blame.

use std::time::Duration;

use regex::Regex;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::component::image_cleaner::{CYCLE_LINE, ERROR_LINE, IMAGE_CLEANER};
use crate::observe::history::History;
use crate::observe::logs::{log_lines, watch_started};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentUp {
    pub component: String,
    /// A log line that proves one cycle of work.
    pub cycle: String,
    /// A log line that is the component's own error.
    pub error: String,
    /// First cycle at most this long after the window opens.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    pub max_restarts: u32,
}

impl ComponentUp {
    /// The image cleaner: a `N% used` line within `within`, no restart.
    pub fn image_cleaner(within: Duration) -> Self {
        Self { component: IMAGE_CLEANER.into(), cycle: CYCLE_LINE.into(), error: ERROR_LINE.into(), within, max_restarts: 0 }
    }

    pub fn max_restarts(mut self, n: u32) -> Self {
        self.max_restarts = n;
        self
    }
}

impl Check for ComponentUp {
    fn name(&self) -> String {
        format!("component-up:{}", self.component)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let (cycle, error) = match (Regex::new(&self.cycle), Regex::new(&self.error)) {
            (Ok(c), Ok(e)) => (c, e),
            (Err(e), _) | (_, Err(e)) => return CheckResult::unknown(&name, format!("bad pattern: {e}")),
        };
        if watch_started(history, &self.component).is_none() {
            return CheckResult::unknown(&name, format!("nobody watched {}'s log: cannot tell whether it worked", self.component));
        }
        let Some((start, end)) = history.workload_window() else {
            return CheckResult::unknown(&name, "no workload window in the history");
        };
        let deadline = start + self.within;
        let lines: Vec<(Duration, &str)> = log_lines(history, &self.component).collect();
        let cycles: Vec<Duration> = lines.iter().filter(|(_, l)| cycle.is_match(l)).map(|(t, _)| *t).collect();
        let first = cycles.first().copied();
        let restarts: Vec<(Duration, String)> =
            history.restarts().filter(|(_, r)| r.component == self.component).map(|(t, r)| (t, r.exit.clone())).collect();
        let left_down = restarts.iter().any(|(_, exit)| exit.contains("left down"));
        let counted = restarts.iter().filter(|(_, exit)| !exit.contains("left down")).count() as u32;
        let last_error = lines.iter().rev().find(|(_, l)| error.is_match(l)).map(|(_, l)| l.to_string());

        let on_time = first.is_some_and(|t| t <= deadline);
        let mut problems = Vec::new();
        if !on_time {
            match first {
                Some(t) => problems.push(format!(
                    "first cycle only at t={:.1}s, {:.1} s after the window opened (allowed {:.0} s)",
                    t.as_secs_f64(),
                    (t.saturating_sub(start)).as_secs_f64(),
                    self.within.as_secs_f64()
                )),
                None => problems.push(format!("logged no cycle within {:.0} s of the window opening", self.within.as_secs_f64())),
            }
        }
        if counted > self.max_restarts {
            let exits: Vec<&str> = restarts.iter().map(|(_, e)| e.as_str()).take(2).collect();
            problems.push(format!("restarted {counted} time(s), allowed {} ({})", self.max_restarts, exits.join("; ")));
        }
        if left_down {
            problems.push("exited and was left down".into());
        }

        let mut result = if problems.is_empty() {
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "{} up: first cycle at t={:.1}s, {} cycle(s), {counted} restart(s)",
                    self.component,
                    first.unwrap_or_default().as_secs_f64(),
                    cycles.len()
                ),
            )
        } else if !on_time && first.is_none() && counted <= self.max_restarts && !left_down && end < deadline {
            // The window closed before the deadline and nothing went wrong yet: no verdict.
            CheckResult::unknown(
                &name,
                format!("the window closed {:.1} s before the deadline, with no cycle yet and no crash", (deadline - end).as_secs_f64()),
            )
        } else {
            let mut summary = format!("{}: {}", self.component, problems.join("; "));
            match &last_error {
                Some(l) => summary.push_str(&format!("; its last error: {l}")),
                None => summary.push_str("; it logged no error line"),
            }
            CheckResult::new(&name, Verdict::Fail, summary)
        };
        result = result.figure("cycles", cycles.len() as f64).figure("restarts", counted as f64);
        if let Some(t) = first {
            result = result.figure("first_cycle_s", t.saturating_sub(start).as_secs_f64());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{all, history, phase, secs, window};
    use crate::observe::history::{Entry, Event, LogEvent, LogKind, RestartEvent};

    fn watch(at: f64) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Log(LogEvent { component: "image-cleaner".into(), kind: LogKind::Watching, text: String::new() }),
        }
    }

    fn log(at: f64, line: &str) -> Entry {
        Entry { at: secs(at), event: Event::Log(LogEvent { component: "image-cleaner".into(), kind: LogKind::Line, text: line.into() }) }
    }

    fn restart(at: f64, attempt: u32) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Restart(RestartEvent {
                component: "image-cleaner".into(),
                exit: "exit code 1".into(),
                attempt,
                backoff: secs(0.5),
            }),
        }
    }

    #[test]
    fn a_cleaner_that_cycles_on_time_is_up() {
        let h = history(all(vec![window(10.0, 60.0), vec![watch(1.0), log(2.0, "2026 3.1% used"), log(7.0, "2026 3.1% used")]]));
        let r = ComponentUp::image_cleaner(Duration::from_secs(30)).check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["cycles"], 2.0);
    }

    #[test]
    fn the_2018_cleaner_fails_with_its_own_error_in_the_summary() {
        let err = "docker.errors.DockerException: Invalid bind address format: /run/hubchaos/ab/cleaner.sock";
        let mut entries = all(vec![window(10.0, 60.0), vec![watch(1.0)]]);
        for (i, t) in [2.0, 3.0, 5.0, 9.0].iter().enumerate() {
            entries.push(log(*t, "    raise errors.DockerException(".trim()));
            entries.push(log(*t, err));
            entries.push(restart(*t + 0.1, i as u32 + 1));
        }
        let r = ComponentUp::image_cleaner(Duration::from_secs(30)).check(&history(entries));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("logged no cycle"), "{}", r.summary);
        assert!(r.summary.contains("restarted 4 time(s)"), "{}", r.summary);
        assert!(r.summary.ends_with(&format!("its last error: {err}")), "{}", r.summary);
    }

    #[test]
    fn unknown_without_a_watcher_or_before_the_deadline() {
        let h = history(all(vec![window(10.0, 60.0), vec![log(2.0, "2026 3.1% used")]]));
        assert_eq!(ComponentUp::image_cleaner(Duration::from_secs(30)).check(&h).verdict, Verdict::Unknown);
        let short = history(all(vec![window(10.0, 20.0), vec![watch(1.0)]]));
        let r = ComponentUp::image_cleaner(Duration::from_secs(30)).check(&short);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        // Restarts allowed by the declaration do not fail it; a late first cycle does.
        let late = history(all(vec![window(10.0, 80.0), vec![watch(1.0), restart(3.0, 1), log(50.0, "2026 3.1% used"), phase(80.0, "x")]]));
        let r = ComponentUp::image_cleaner(Duration::from_secs(30)).max_restarts(1).check(&late);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("first cycle only at t=50.0s"), "{}", r.summary);
        assert!(r.summary.contains("no error line"), "{}", r.summary);
    }
}
