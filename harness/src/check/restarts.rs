//! `restarts`: how often a component was restarted by its supervisor, within bounds. A crash
//! loop (the hub dying after N launches in 2018) shows as restarts; a fault that should kill a
//! component exactly once must show exactly one.

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restarts {
    pub component: String,
    pub at_least: u32,
    pub at_most: u32,
}

impl Restarts {
    pub fn between(component: &str, at_least: u32, at_most: u32) -> Self {
        Self { component: component.into(), at_least, at_most }
    }
}

impl Check for Restarts {
    fn name(&self) -> String {
        format!("restarts:{}", self.component)
    }

    fn check(&self, history: &History) -> CheckResult {
        let exits: Vec<String> = history
            .restarts()
            .filter(|(_, r)| r.component == self.component)
            .map(|(at, r)| format!("{} at t={:.1}s", r.exit, at.as_secs_f64()))
            .collect();
        let n = exits.len() as u32;
        let ok = n >= self.at_least && n <= self.at_most;
        let mut summary = format!("{} restarted {n} time(s), allowed {}..={}", self.component, self.at_least, self.at_most);
        if !exits.is_empty() {
            summary.push_str(&format!(" ({})", exits.iter().take(3).cloned().collect::<Vec<_>>().join("; ")));
        }
        CheckResult::new(&self.name(), Verdict::from_ok(ok), summary).figure("restarts", n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, secs};
    use crate::observe::history::{Entry, Event, RestartEvent};

    fn restart(at: f64, component: &str) -> Entry {
        Entry {
            at: secs(at),
            event: Event::Restart(RestartEvent {
                component: component.into(),
                exit: "signal: SIGKILL".into(),
                attempt: 1,
                backoff: secs(0.5),
            }),
        }
    }

    #[test]
    fn counts_only_the_named_component() {
        let h = history(vec![restart(1.0, "proxy"), restart(2.0, "hub")]);
        assert_eq!(Restarts::between("proxy", 1, 1).check(&h).verdict, Verdict::Pass);
        assert_eq!(Restarts::between("proxy", 0, 0).check(&h).verdict, Verdict::Fail);
        assert_eq!(Restarts::between("culler", 1, 1).check(&h).verdict, Verdict::Fail);
    }
}
