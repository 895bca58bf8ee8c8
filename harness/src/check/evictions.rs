//! `evictions:<pool>`: when a node under disk pressure takes pods off, it is the kubelet that
//! does, and it says why. Every pod of the run that ended in `Failed` on the pool's node must
//! carry the kubelet's reason `Evicted` and its message ("The node was low on resource:
//! ephemeral-storage…"). A pod that died of its own write error instead ("No space left on
//! device", exit 1) means the disk filled faster than the kubelet looked: the 2019 builds'
//! failure, which told the user nothing about the node.
//!
//! An eviction is the kubelet stopping the pod's container (killed: exit 128 + the signal). A
//! container that had already exited with its own error (dd's exit 1) when the kubelet came
//! round and marked its pod `Evicted` died of the write error, not of the eviction (seen after
//! a burst fill: `Failed: Evicted (exit 1)` 5 s after the fill began, the disk already full).
//!
//! Pass: no pod failed otherwise (evictions counted; none at all passes: nothing failed).
//! Fail: a pod failed on the pool without the kubelet's reason; the summary quotes the
//! container's own last words. Unknown: no pod of the run was seen on the pool.

use crate::check::node_pressure::pool_events;
use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{ClusterEvent, History};

/// The kubelet's message for a pod it evicted for disk.
pub const LOW_ON_RESOURCE: &str = "low on resource";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvictionsCarryReason {
    pub pool: String,
}

impl EvictionsCarryReason {
    pub fn on(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

impl Check for EvictionsCarryReason {
    fn name(&self) -> String {
        format!("evictions:{}", self.pool)
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let events: Vec<_> = pool_events(history, &self.pool).collect();
        let seen = events.iter().any(|(_, c)| matches!(c, ClusterEvent::PodRunning { .. } | ClusterEvent::PodEnded { .. }));
        if !seen {
            return CheckResult::unknown(&name, format!("no pod of the run was seen on {}", self.pool));
        }
        let failed: Vec<_> = events
            .iter()
            .filter_map(|(at, c)| match c {
                ClusterEvent::PodEnded { pod, phase, reason, message, exit_code, .. } if phase == "Failed" => {
                    Some((at, pod, reason, message, exit_code))
                }
                _ => None,
            })
            .collect();
        let evicted = failed.iter().filter(|(_, _, reason, message, exit)| kubelet_evicted(reason, message, **exit)).count();
        let other: Vec<_> = failed.iter().filter(|(_, _, reason, message, exit)| !kubelet_evicted(reason, message, **exit)).collect();
        let r = if let Some((at, pod, reason, message, exit)) = other.first() {
            CheckResult::new(
                &name,
                Verdict::Fail,
                format!(
                    "{} pod(s) on {} failed without the kubelet's eviction; the first, {pod} at t={:.1}s: {}{}{} — {}",
                    other.len(),
                    self.pool,
                    at.as_secs_f64(),
                    if reason.is_empty() { "no reason" } else { reason.as_str() },
                    exit.map(|c| format!(" (exit {c})")).unwrap_or_default(),
                    if reason.as_str() == "Evicted" { ", its container already ended by itself when the kubelet marked it" } else { "" },
                    telling_line(message)
                ),
            )
        } else if let Some((at, pod, _, message, _)) = failed.first() {
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "{evicted} pod(s) evicted from {} by the kubelet; the first, {pod} at t={:.1}s: {message}",
                    self.pool,
                    at.as_secs_f64()
                ),
            )
        } else {
            CheckResult::new(&name, Verdict::Pass, format!("no pod failed on {}", self.pool))
        };
        r.figure("evicted", evicted as f64).figure("failed_otherwise", other.len() as f64)
    }
}

/// The kubelet's eviction: its reason and message, on a container it stopped (exit 128 + a
/// signal, or none known), not one that had ended by itself.
fn kubelet_evicted(reason: &str, message: &str, exit: Option<i32>) -> bool {
    reason == "Evicted" && message.contains(LOW_ON_RESOURCE) && exit.is_none_or(|c| c >= 128)
}

/// The line of a container's last words that says what went wrong (`dd: error writing …: No
/// space left on device` before dd's record counts), else its last line.
fn telling_line(message: &str) -> &str {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.iter().find(|l| l.to_lowercase().contains("error") || l.contains("No space")).or(lines.last()).copied().unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::node_pressure::tests::at;

    fn ended(pool: &str, pod: &str, reason: &str, message: &str, exit: Option<i32>) -> ClusterEvent {
        ClusterEvent::PodEnded {
            pod: pod.into(),
            node: "n".into(),
            pool: pool.into(),
            phase: "Failed".into(),
            reason: reason.into(),
            message: message.into(),
            exit_code: exit,
        }
    }
    fn running(pool: &str, pod: &str) -> ClusterEvent {
        ClusterEvent::PodRunning { pod: pod.into(), node: "n".into(), pool: pool.into() }
    }
    const EVICTED: &str = "The node was low on resource: ephemeral-storage. Threshold quantity: 512Mi, available: 268804Ki.";

    #[test]
    fn evictions_with_the_kubelets_reason_pass() {
        let h = History::new(vec![at(1.0, running("no-ssd", "fill")), at(20.0, ended("no-ssd", "fill", "Evicted", EVICTED, Some(137)))]);
        let r = EvictionsCarryReason::on("no-ssd").check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["evicted"], 1.0);
        // Nothing failed: nothing to blame.
        let h = History::new(vec![at(1.0, running("no-ssd", "fill"))]);
        assert_eq!(EvictionsCarryReason::on("no-ssd").check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn a_pod_marked_evicted_after_its_container_died_of_its_own_error_is_not_an_eviction() {
        let h = History::new(vec![
            at(1.0, running("no-ssd", "fill")),
            at(8.9, ended("no-ssd", "fill", "Evicted", "The node was low on resource: ephemeral-storage. available: 0.", Some(1))),
        ]);
        let r = EvictionsCarryReason::on("no-ssd").check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("Evicted (exit 1), its container already ended by itself"), "{}", r.summary);
        assert_eq!((r.figures["evicted"], r.figures["failed_otherwise"]), (0.0, 1.0));
    }

    #[test]
    fn a_pod_dead_of_its_own_write_error_fails_with_its_words() {
        let h = History::new(vec![
            at(1.0, running("no-ssd", "burst")),
            at(
                3.0,
                ended(
                    "no-ssd",
                    "burst",
                    "Error",
                    "dd: error writing '/fill': No space left on device\n62+0 records in\n62+0 records out",
                    Some(1),
                ),
            ),
        ]);
        let r = EvictionsCarryReason::on("no-ssd").check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("No space left on device") && r.summary.contains("exit 1"), "{}", r.summary);
        // The same on another pool is not this check's.
        assert_eq!(EvictionsCarryReason::on("ssd").check(&h).verdict, Verdict::Unknown);
    }
}
