//! What the cluster's API says while a run goes on, turned into history: each second the
//! nodes and the run's pods are listed through kube-rs and compared with the last listing;
//! a changed node condition or taint, a pod that ran, ended, restarted or vanished is one
//! [`ClusterEvent`]. Each node also gives samples (`node/<pool>`: `ready`, `disk_pressure`)
//! for the plots. Kubernetes' own events (the kubelet's `Evicted`, `EvictionThresholdMet`,
//! `NodeHasDiskPressure`…) of the run's namespace and of the nodes go to
//! `logs/kube-events.log`, as the kubelet wrote them.
//!
//! A list each second rather than a watch: the same events with less code, and a run lasts
//! seconds to minutes; the kubelet itself updates a node's status every 10 s.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use super::kube::{KindCluster, NodeView};
use super::pools::{self, CONTROL_PLANE};
use crate::observe::history::{ClusterEvent, Event, Recorder};
use crate::observe::samples::{Sample, SampleSink};

/// One line for the summary's timeline.
pub fn describe(c: &ClusterEvent) -> String {
    match c {
        ClusterEvent::NodeCondition { pool, condition, status, reason, .. } => format!("node `{pool}`: {condition}={status} ({reason})"),
        ClusterEvent::NodeTaint { pool, key, effect, added, .. } => {
            format!("node `{pool}`: taint {key}:{effect} {}", if *added { "added" } else { "removed" })
        }
        ClusterEvent::PodRunning { pod, pool, .. } => format!("pod `{pod}` running on `{pool}`"),
        ClusterEvent::PodEnded { pod, pool, phase, reason, message, exit_code, .. } => format!(
            "pod `{pod}` on `{pool}` {phase}{}{}{}",
            if reason.is_empty() { String::new() } else { format!(": {reason}") },
            exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            if message.is_empty() { String::new() } else { format!(" — {}", message.lines().next().unwrap_or("")) }
        ),
        ClusterEvent::PodGone { pod, pool, .. } => format!("pod `{pod}` on `{pool}` gone"),
        ClusterEvent::PodRestart { pod, pool, restarts, .. } => format!("pod `{pod}` on `{pool}` restarted ({restarts})"),
    }
}

/// A pod as the watcher compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    pub node: String,
    pub phase: String,
    pub reason: String,
    pub message: String,
    pub exit_code: Option<i32>,
    pub restarts: u32,
}

impl From<&Pod> for PodState {
    fn from(p: &Pod) -> Self {
        let status = p.status.as_ref();
        let containers = status.and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        let terminated = containers.iter().find_map(|c| c.state.as_ref().and_then(|s| s.terminated.clone()));
        let mut message = status.and_then(|s| s.message.clone()).unwrap_or_default();
        if message.is_empty() {
            message = terminated.as_ref().and_then(|t| t.message.clone()).unwrap_or_default();
        }
        let mut reason = status.and_then(|s| s.reason.clone()).unwrap_or_default();
        if reason.is_empty() {
            reason = terminated.as_ref().and_then(|t| t.reason.clone()).unwrap_or_default();
        }
        Self {
            name: p.metadata.name.clone().unwrap_or_default(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
            reason,
            message: message.trim().to_string(),
            exit_code: terminated.map(|t| t.exit_code),
            restarts: containers.iter().map(|c| c.restart_count.max(0) as u32).sum(),
        }
    }
}

/// What the watcher saw last.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    conditions: BTreeMap<(String, String), String>,
    /// node → its taints as (key, effect).
    taints: BTreeMap<String, BTreeSet<(String, String)>>,
    pods: BTreeMap<String, PodState>,
}

fn pool_of(pools: &BTreeMap<String, String>, node: &str) -> String {
    pools.get(node).cloned().unwrap_or_else(|| if node.is_empty() { "unscheduled".into() } else { CONTROL_PLANE.into() })
}

/// The events between `seen` and this listing (and `seen` moved on).
pub fn diff(seen: &mut Seen, nodes: &[NodeView], pods: &[PodState]) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let pools: BTreeMap<String, String> =
        nodes.iter().map(|n| (n.name.clone(), pools::pool_of(n).unwrap_or(CONTROL_PLANE).to_string())).collect();
    for n in nodes {
        let pool = pool_of(&pools, &n.name);
        for c in &n.conditions {
            let key = (n.name.clone(), c.type_.clone());
            if seen.conditions.get(&key) != Some(&c.status) {
                seen.conditions.insert(key, c.status.clone());
                out.push(ClusterEvent::NodeCondition {
                    node: n.name.clone(),
                    pool: pool.clone(),
                    condition: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                });
            }
        }
        let now: BTreeSet<(String, String)> = n.taints.iter().map(|t| (t.key.clone(), t.effect.clone())).collect();
        let before = seen.taints.insert(n.name.clone(), now.clone()).unwrap_or_default();
        let added = now.difference(&before).map(|t| (t, true));
        let removed = before.difference(&now).map(|t| (t, false));
        for ((key, effect), added) in added.chain(removed) {
            out.push(ClusterEvent::NodeTaint { node: n.name.clone(), pool: pool.clone(), key: key.clone(), effect: effect.clone(), added });
        }
    }
    for p in pods {
        let pool = pool_of(&pools, &p.node);
        let prev = seen.pods.get(&p.name);
        let ended = |s: &PodState| s.phase == "Failed" || s.phase == "Succeeded";
        if p.phase == "Running" && prev.is_none_or(|q| q.phase != "Running") {
            out.push(ClusterEvent::PodRunning { pod: p.name.clone(), node: p.node.clone(), pool: pool.clone() });
        }
        if ended(p) && prev.is_none_or(|q| !ended(q)) {
            out.push(ClusterEvent::PodEnded {
                pod: p.name.clone(),
                node: p.node.clone(),
                pool: pool.clone(),
                phase: p.phase.clone(),
                reason: p.reason.clone(),
                message: p.message.clone(),
                exit_code: p.exit_code,
            });
        }
        if p.restarts > prev.map_or(0, |q| q.restarts) {
            out.push(ClusterEvent::PodRestart { pod: p.name.clone(), node: p.node.clone(), pool: pool.clone(), restarts: p.restarts });
        }
        seen.pods.insert(p.name.clone(), p.clone());
    }
    let listed: BTreeSet<&String> = pods.iter().map(|p| &p.name).collect();
    let gone: Vec<String> = seen.pods.keys().filter(|k| !listed.contains(k)).cloned().collect();
    for name in gone {
        let p = seen.pods.remove(&name).expect("listed above");
        if p.phase != "Failed" && p.phase != "Succeeded" {
            out.push(ClusterEvent::PodGone { pod: p.name.clone(), node: p.node.clone(), pool: pool_of(&pools, &p.node) });
        }
    }
    out
}

/// The watcher of one run: nodes, the pods of `namespace`, Kubernetes events.
pub struct Watcher {
    pub kube: KindCluster,
    pub namespace: String,
    pub recorder: Recorder,
    pub samples: SampleSink,
    pub events_log: PathBuf,
}

impl Watcher {
    /// Poll every `every` until `stop`; a failed listing is written to the events log and
    /// retried (the API server may be busy; the checks see the gap as missing events).
    pub async fn run(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        let mut seen = Seen::default();
        let mut logged_events = BTreeSet::new();
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&self.events_log).ok();
        loop {
            let listed = async {
                let nodes = self.kube.nodes().await?;
                let pods: Vec<PodState> = self.kube.list_pods(&self.namespace, "").await?.iter().map(PodState::from).collect();
                anyhow::Ok((nodes, pods))
            }
            .await;
            match listed {
                Ok((nodes, pods)) => {
                    let at = self.recorder.now();
                    for e in diff(&mut seen, &nodes, &pods) {
                        self.recorder.record_at(at, Event::Cluster(e));
                    }
                    let batch = nodes
                        .iter()
                        .flat_map(|n| {
                            let pool = pools::pool_of(n).unwrap_or(CONTROL_PLANE);
                            let pressure = n.condition("DiskPressure").is_some_and(|c| c.status == "True");
                            [("ready", n.ready as u8 as f64), ("disk_pressure", pressure as u8 as f64)].map(|(metric, value)| Sample {
                                at,
                                component: format!("node/{pool}"),
                                metric: metric.into(),
                                labels: BTreeMap::new(),
                                value,
                            })
                        })
                        .collect();
                    self.samples.push_batch(batch);
                }
                Err(e) => {
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "[{:.1}] listing failed: {e:#}", self.recorder.now().as_secs_f64());
                    }
                }
            }
            for ns in [Some(self.namespace.as_str()), Some("default")] {
                if let Ok(events) = self.kube.events(ns, "").await {
                    for e in events {
                        let line = format!("{} {}/{} {}: {}", e.reason, e.involved_kind, e.involved_name, e.component, e.message);
                        if logged_events.insert(line.clone()) {
                            if let Some(f) = log.as_mut() {
                                let _ = writeln!(f, "[{:.1}] {line}", self.recorder.now().as_secs_f64());
                            }
                        }
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::kind::kube::{ConditionView, TaintView};

    fn node(name: &str, pool: &str, pressure: &str, taints: &[&str]) -> NodeView {
        NodeView {
            name: name.into(),
            ready: true,
            labels: [(pools::POOL_LABEL.to_string(), pool.to_string())].into(),
            taints: taints.iter().map(|k| TaintView { key: k.to_string(), value: None, effect: "NoSchedule".into() }).collect(),
            conditions: vec![ConditionView {
                type_: "DiskPressure".into(),
                status: pressure.into(),
                reason: Some("KubeletHasDiskPressure".into()),
                message: None,
            }],
            pod_cidr: None,
            internal_ip: None,
        }
    }

    fn pod(name: &str, node: &str, phase: &str, reason: &str, restarts: u32) -> PodState {
        PodState {
            name: name.into(),
            node: node.into(),
            phase: phase.into(),
            reason: reason.into(),
            message: String::new(),
            exit_code: None,
            restarts,
        }
    }

    #[test]
    fn a_new_condition_status_and_a_new_taint_are_events_once() {
        let mut seen = Seen::default();
        let first = diff(&mut seen, &[node("w4", "no-ssd", "False", &[])], &[]);
        assert_eq!(first.len(), 1, "the first reading is recorded: {first:?}");
        assert!(diff(&mut seen, &[node("w4", "no-ssd", "False", &[])], &[]).is_empty(), "no change, no event");
        let pressure = diff(&mut seen, &[node("w4", "no-ssd", "True", &["node.kubernetes.io/disk-pressure"])], &[]);
        assert!(
            matches!(&pressure[0], ClusterEvent::NodeCondition { pool, status, .. } if pool == "no-ssd" && status == "True"),
            "{pressure:?}"
        );
        assert!(
            matches!(&pressure[1], ClusterEvent::NodeTaint { key, added: true, .. } if key == "node.kubernetes.io/disk-pressure"),
            "{pressure:?}"
        );
        let gone = diff(&mut seen, &[node("w4", "no-ssd", "True", &[])], &[]);
        assert!(matches!(&gone[..], [ClusterEvent::NodeTaint { added: false, .. }]), "{gone:?}");
    }

    #[test]
    fn pods_that_run_end_restart_or_vanish_are_events() {
        let mut seen = Seen::default();
        let nodes = [node("w3", "ssd", "False", &[]), node("w4", "no-ssd", "False", &[])];
        diff(&mut seen, &nodes, &[]);
        let e = diff(&mut seen, &nodes, &[pod("fill", "w4", "Running", "", 0), pod("build", "w3", "Running", "", 0)]);
        assert_eq!(e.iter().filter(|e| matches!(e, ClusterEvent::PodRunning { .. })).count(), 2, "{e:?}");
        let e = diff(&mut seen, &nodes, &[pod("fill", "w4", "Failed", "Evicted", 0), pod("build", "w3", "Running", "", 1)]);
        assert!(e.iter().any(|e| matches!(e, ClusterEvent::PodEnded { pod, reason, pool, .. } if pod == "fill" && reason == "Evicted" && pool == "no-ssd")), "{e:?}");
        assert!(e.iter().any(|e| matches!(e, ClusterEvent::PodRestart { pod, restarts: 1, .. } if pod == "build")), "{e:?}");
        // An ended pod that is deleted is not "gone"; a running one is.
        let e = diff(&mut seen, &nodes, &[]);
        assert_eq!(e, vec![ClusterEvent::PodGone { pod: "build".into(), node: "w3".into(), pool: "ssd".into() }]);
    }
}
