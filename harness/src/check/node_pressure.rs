//! `disk-pressure:<pool>`: a node that runs out of disk says so and protects itself. The
//! kubelet's eviction manager must report `DiskPressure=True` on the pool's node within
//! `within` of the workload window opening (the fill starts there), and the node lifecycle
//! controller must taint it `node.kubernetes.io/disk-pressure` so nothing more is scheduled
//! there. 2019-03-24: builds on a pool without local SSD failed with "no space left on device"
//! instead; with kind's defaults (eviction off) a node fills up and never says so.
//!
//! Pass: both seen, the condition within the bound. Fail: the condition came late or never,
//! or never the taint. Unknown: the watcher recorded nothing of the pool's node.

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{ClusterEvent, Event, History};

/// The taint the node lifecycle controller puts on a node under disk pressure.
pub const DISK_PRESSURE_TAINT: &str = "node.kubernetes.io/disk-pressure";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskPressure {
    pub pool: String,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl DiskPressure {
    pub fn on(pool: &str, within: Duration) -> Self {
        Self { pool: pool.into(), within }
    }
}

/// Every cluster event of `pool`'s node, with its time.
pub(crate) fn pool_events<'a>(history: &'a History, pool: &'a str) -> impl Iterator<Item = (Duration, &'a ClusterEvent)> + 'a {
    history.entries.iter().filter_map(move |e| match &e.event {
        Event::Cluster(c) if c.pool() == pool => Some((e.at, c)),
        _ => None,
    })
}

impl Check for DiskPressure {
    fn name(&self) -> String {
        format!("disk-pressure:{}", self.pool)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let events: Vec<_> = pool_events(history, &self.pool).collect();
        if !events.iter().any(|(_, c)| matches!(c, ClusterEvent::NodeCondition { .. })) {
            return CheckResult::unknown(&name, format!("no condition of the {} node was recorded", self.pool));
        }
        let Some((from, _)) = history.workload_window() else {
            return CheckResult::unknown(&name, "the workload window never opened");
        };
        let pressure = events.iter().find(
            |(_, c)| matches!(c, ClusterEvent::NodeCondition { condition, status, .. } if condition == "DiskPressure" && status == "True"),
        );
        let taint =
            events.iter().find(|(_, c)| matches!(c, ClusterEvent::NodeTaint { key, added: true, .. } if key == DISK_PRESSURE_TAINT));
        let result = match (pressure, taint) {
            (None, _) => CheckResult::new(
                &name,
                Verdict::Fail,
                format!("the {} node never reported DiskPressure (the kubelet does not look at its disk: eviction off?)", self.pool),
            ),
            (Some((at, _)), _) if at.saturating_sub(from) > self.within => CheckResult::new(
                &name,
                Verdict::Fail,
                format!(
                    "DiskPressure on {} {:.1} s after the fill began, limit {:?}",
                    self.pool,
                    at.saturating_sub(from).as_secs_f64(),
                    self.within
                ),
            ),
            (Some(_), None) => CheckResult::new(
                &name,
                Verdict::Fail,
                format!("DiskPressure on {} but the node was never tainted {DISK_PRESSURE_TAINT}", self.pool),
            ),
            (Some((at, c)), Some((tat, _))) => {
                let message = match c {
                    ClusterEvent::NodeCondition { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                CheckResult::new(
                    &name,
                    Verdict::Pass,
                    format!(
                        "DiskPressure on {} {:.1} s after the fill began ({message}), tainted at +{:.1} s; limit {:?}",
                        self.pool,
                        at.saturating_sub(from).as_secs_f64(),
                        tat.saturating_sub(from).as_secs_f64(),
                        self.within
                    ),
                )
                .figure("time_to_disk_pressure_s", at.saturating_sub(from).as_secs_f64())
            }
        };
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::testkit::secs;
    use crate::observe::history::{Entry, PhaseEvent, WORKLOAD_START};

    pub(crate) fn at(t: f64, c: ClusterEvent) -> Entry {
        Entry { at: secs(t), event: Event::Cluster(c) }
    }
    pub(crate) fn window(t: f64) -> Entry {
        Entry { at: secs(t), event: Event::Phase(PhaseEvent { name: WORKLOAD_START.into(), detail: String::new() }) }
    }
    pub(crate) fn condition(pool: &str, status: &str) -> ClusterEvent {
        ClusterEvent::NodeCondition {
            node: format!("node-{pool}"),
            pool: pool.into(),
            condition: "DiskPressure".into(),
            status: status.into(),
            reason: "KubeletHasDiskPressure".into(),
            message: String::new(),
        }
    }
    pub(crate) fn taint(pool: &str) -> ClusterEvent {
        ClusterEvent::NodeTaint {
            node: format!("node-{pool}"),
            pool: pool.into(),
            key: DISK_PRESSURE_TAINT.into(),
            effect: "NoSchedule".into(),
            added: true,
        }
    }

    fn run(entries: Vec<Entry>) -> CheckResult {
        DiskPressure::on("no-ssd", Duration::from_secs(60)).check(&History::new(entries))
    }

    #[test]
    fn pressure_and_taint_in_time_pass() {
        let r =
            run(vec![at(0.5, condition("no-ssd", "False")), window(1.0), at(20.0, condition("no-ssd", "True")), at(21.0, taint("no-ssd"))]);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["time_to_disk_pressure_s"], 19.0);
    }

    #[test]
    fn no_pressure_late_pressure_or_no_taint_fail() {
        let never = run(vec![at(0.5, condition("no-ssd", "False")), window(1.0)]);
        assert_eq!(never.verdict, Verdict::Fail);
        assert!(never.summary.contains("never reported"), "{}", never.summary);
        let late =
            run(vec![at(0.5, condition("no-ssd", "False")), window(1.0), at(90.0, condition("no-ssd", "True")), at(91.0, taint("no-ssd"))]);
        assert_eq!(late.verdict, Verdict::Fail, "{}", late.summary);
        let untainted = run(vec![at(0.5, condition("no-ssd", "False")), window(1.0), at(20.0, condition("no-ssd", "True"))]);
        assert_eq!(untainted.verdict, Verdict::Fail);
        // Pressure on another pool is not this pool's.
        let other =
            run(vec![at(0.5, condition("no-ssd", "False")), window(1.0), at(20.0, condition("ssd", "True")), at(21.0, taint("ssd"))]);
        assert_eq!(other.verdict, Verdict::Fail);
    }

    #[test]
    fn nothing_watched_is_unknown() {
        assert_eq!(run(vec![window(1.0)]).verdict, Verdict::Unknown);
    }
}
