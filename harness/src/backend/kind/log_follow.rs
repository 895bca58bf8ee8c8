//! A component's log on kind, written to the run dir as it runs, as the local backend writes
//! each process's output to `logs/<component>.log`.
//!
//! The hub's log is request evidence ([`crate::observe::hub_log`]), and a hub pod does not keep
//! it: a chart upgrade replaces the pod (and its log with it), a killed container starts a new
//! log. So the log is followed while the run lasts: every container instance of the pods the
//! selector matches (known by its container id) is streamed once, from its first line, into
//! one file, in the order they were seen. An instance that ended before it was seen running (a
//! container in a crash loop lives for a moment: the 2018 cleaner that never started) is read
//! whole once it ended, from the kubelet's copy of the last one.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use tokio_util::sync::CancellationToken;

/// How long the last lines get to arrive once the follower is told to stop.
const DRAIN: Duration = Duration::from_millis(500);
/// How often the pods are listed for a new container instance.
const LIST_EVERY: Duration = Duration::from_millis(500);

/// Follows container `container` of the pods of `namespace` matching `selector` into `path`.
pub struct LogFollower {
    pub client: kube::Client,
    pub namespace: String,
    pub selector: String,
    pub container: String,
    pub path: PathBuf,
}

/// One container instance of a pod, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    pod: String,
    /// The runtime's container id: one per instance.
    id: String,
    /// Still running: followed as it writes. Else ended: read whole.
    running: bool,
    /// The instance before the current one (the kubelet's `previous` log).
    previous: bool,
}

/// The instances of `container` that `pod`'s status shows: the current one (running or
/// ended) and the last one that ended before it.
fn instances(pod: &Pod, container: &str) -> Vec<Instance> {
    let Some(status) =
        pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|cs| cs.iter().find(|c| c.name == container))
    else {
        return Vec::new();
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut found = Vec::new();
    if let Some(last) = status.last_state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.container_id.clone()) {
        found.push(Instance { pod: name.clone(), id: last, running: false, previous: true });
    }
    let state = status.state.as_ref();
    let running = state.is_some_and(|s| s.running.is_some());
    let ended = state.and_then(|s| s.terminated.as_ref()).is_some();
    if let Some(id) = status.container_id.clone().filter(|_| running || ended) {
        found.push(Instance { pod: name, id, running, previous: false });
    }
    found
}

impl LogFollower {
    /// Until `stop`: stream each new container instance's log into the file (appended).
    pub async fn run(self, stop: CancellationToken) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut followed: BTreeSet<String> = BTreeSet::new();
        let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", self.path.display());
                return;
            }
        };
        while !stop.is_cancelled() {
            let pods = match api.list(&ListParams::default().labels(&self.selector)).await {
                Ok(l) => l.items,
                Err(e) => {
                    tracing::debug!("listing {} for its log: {e}", self.selector);
                    Vec::new()
                }
            };
            let next = pods.iter().flat_map(|p| instances(p, &self.container)).find(|i| !followed.contains(&i.id));
            let Some(instance) = next else {
                tokio::select! {
                    _ = tokio::time::sleep(LIST_EVERY) => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            };
            followed.insert(instance.id.clone());
            let name = instance.pod;
            let params = LogParams {
                follow: instance.running,
                previous: instance.previous,
                container: Some(self.container.clone()),
                ..Default::default()
            };
            let stream = match api.log_stream(&name, &params).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("streaming the log of {name}: {e}");
                    continue;
                }
            };
            let mut lines = stream.lines();
            loop {
                let line = tokio::select! {
                    l = lines.next() => l,
                    _ = stop.cancelled() => tokio::time::timeout(DRAIN, lines.next()).await.ok().flatten(),
                };
                match line {
                    Some(Ok(line)) => {
                        let _ = writeln!(file, "{line}");
                    }
                    Some(Err(e)) => {
                        tracing::debug!("the log of {name}: {e}");
                        break;
                    }
                    None => break,
                }
            }
        }
        let _ = file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "p" }, "status": { "containerStatuses": [status] } })).unwrap()
    }

    #[test]
    fn a_crash_looping_containers_ended_instances_are_found_by_their_ids() {
        // Waiting to be restarted: the one that ended is the previous one.
        let waiting = pod(serde_json::json!({
            "name": "c", "ready": false, "restartCount": 2, "image": "i", "imageID": "",
            "containerID": "containerd://b",
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 1, "containerID": "containerd://b" } },
        }));
        assert_eq!(
            instances(&waiting, "c"),
            vec![Instance { pod: "p".into(), id: "containerd://b".into(), running: false, previous: true }]
        );
        // Running again: followed; the one before read whole.
        let running = pod(serde_json::json!({
            "name": "c", "ready": true, "restartCount": 3, "image": "i", "imageID": "",
            "containerID": "containerd://c",
            "state": { "running": {} },
            "lastState": { "terminated": { "exitCode": 1, "containerID": "containerd://b" } },
        }));
        let found = instances(&running, "c");
        assert_eq!(found.len(), 2);
        assert!(found[0].previous && !found[0].running && found[0].id.ends_with("//b"));
        assert!(found[1].running && !found[1].previous && found[1].id.ends_with("//c"));
        assert!(instances(&running, "other").is_empty());
    }
}
