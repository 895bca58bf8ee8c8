//! A component's log on kind, written to the run dir as it runs, as the local backend writes
//! each process's output to `logs/<component>.log`.
//!
//! The hub's log is request evidence ([`crate::observe::hub_log`]), and a hub pod does not keep
//! it: a chart upgrade replaces the pod (and its log with it), a killed container starts a new
//! log. So the log is followed while the run lasts: every container instance of the pods the
//! selector matches (pod uid + restart count) is streamed once, from its first line, into one
//! file, in the order they ran.

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

/// A running container instance: the pod's name and uid, and the container's restart count.
fn running_instance(pod: &Pod, container: &str) -> Option<(String, String, i32)> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|c| c.name == container)?;
    let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
    running.then(|| (pod.metadata.name.clone().unwrap_or_default(), pod.metadata.uid.clone().unwrap_or_default(), status.restart_count))
}

impl LogFollower {
    /// Until `stop`: stream each new container instance's log into the file (appended).
    pub async fn run(self, stop: CancellationToken) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut followed: BTreeSet<(String, i32)> = BTreeSet::new();
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
            let next =
                pods.iter().filter_map(|p| running_instance(p, &self.container)).find(|(_, uid, n)| !followed.contains(&(uid.clone(), *n)));
            let Some((name, uid, restarts)) = next else {
                tokio::select! {
                    _ = tokio::time::sleep(LIST_EVERY) => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            };
            followed.insert((uid, restarts));
            let params = LogParams { follow: true, container: Some(self.container.clone()), ..Default::default() };
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
