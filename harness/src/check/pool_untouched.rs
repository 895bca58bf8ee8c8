//! `untouched:<pool>`: trouble on one build pool stays there. While another pool's disk
//! fills, this pool's node must never report DiskPressure or get its taint, and every pod of
//! the run on it must keep running: none ended, restarted or vanished before the window
//! closed. (2019: the pool with local SSD kept building while the other failed.)
//!
//! Pass: a pod of the run ran on the pool and nothing above happened. Fail: what happened,
//! first. Unknown: no pod of the run ever ran there.

use crate::check::node_pressure::{pool_events, DISK_PRESSURE_TAINT};
use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{ClusterEvent, History};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolUntouched {
    pub pool: String,
}

impl PoolUntouched {
    pub fn of(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

impl Check for PoolUntouched {
    fn name(&self) -> String {
        format!("untouched:{}", self.pool)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let end = history.workload_window().map(|(_, to)| to);
        let events: Vec<_> = pool_events(history, &self.pool).filter(|(at, _)| end.is_none_or(|e| *at <= e)).collect();
        if !events.iter().any(|(_, c)| matches!(c, ClusterEvent::PodRunning { .. })) {
            return CheckResult::unknown(&name, format!("no pod of the run ran on {}", self.pool));
        }
        let harm = events.iter().find_map(|(at, c)| {
            let what = match c {
                ClusterEvent::NodeCondition { condition, status, .. } if condition == "DiskPressure" && status == "True" => {
                    "the node reported DiskPressure".to_string()
                }
                ClusterEvent::NodeTaint { key, added: true, .. } if key == DISK_PRESSURE_TAINT => format!("the node was tainted {key}"),
                ClusterEvent::PodEnded { pod, reason, .. } => format!("pod {pod} ended ({reason})"),
                ClusterEvent::PodRestart { pod, .. } => format!("pod {pod} restarted"),
                ClusterEvent::PodGone { pod, .. } => format!("pod {pod} vanished"),
                _ => return None,
            };
            Some((at, what))
        });
        match harm {
            Some((at, what)) => {
                CheckResult::new(&name, Verdict::Fail, format!("{} was touched at t={:.1}s: {what}", self.pool, at.as_secs_f64()))
            }
            None => CheckResult::new(&name, Verdict::Pass, format!("{}: no disk pressure, every pod of the run kept running", self.pool)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::node_pressure::tests::{at, condition, taint, window};
    use crate::observe::history::{Entry, Event, PhaseEvent, WORKLOAD_STOP};

    fn running(pool: &str) -> ClusterEvent {
        ClusterEvent::PodRunning { pod: "build".into(), node: "n".into(), pool: pool.into() }
    }

    #[test]
    fn pressure_elsewhere_leaves_it_untouched() {
        let h = History::new(vec![window(0.0), at(1.0, running("ssd")), at(20.0, condition("no-ssd", "True")), at(21.0, taint("no-ssd"))]);
        assert_eq!(PoolUntouched::of("ssd").check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn its_pod_gone_or_its_own_pressure_fails() {
        let gone = History::new(vec![
            window(0.0),
            at(1.0, running("ssd")),
            at(10.0, ClusterEvent::PodGone { pod: "build".into(), node: "n".into(), pool: "ssd".into() }),
        ]);
        let r = PoolUntouched::of("ssd").check(&gone);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("vanished"), "{}", r.summary);
        let pressure = History::new(vec![window(0.0), at(1.0, running("ssd")), at(5.0, condition("ssd", "True"))]);
        assert_eq!(PoolUntouched::of("ssd").check(&pressure).verdict, Verdict::Fail);
        // After the window (the run's own teardown deletes the pods) nothing counts.
        let teardown = History::new(vec![
            window(0.0),
            at(1.0, running("ssd")),
            Entry {
                at: crate::check::testkit::secs(30.0),
                event: Event::Phase(PhaseEvent { name: WORKLOAD_STOP.into(), detail: String::new() }),
            },
            at(31.0, ClusterEvent::PodGone { pod: "build".into(), node: "n".into(), pool: "ssd".into() }),
        ]);
        assert_eq!(PoolUntouched::of("ssd").check(&teardown).verdict, Verdict::Pass);
        assert_eq!(PoolUntouched::of("ssd").check(&History::new(vec![window(0.0)])).verdict, Verdict::Unknown);
    }
}
