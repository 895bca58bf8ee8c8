//! Pods for the cluster's own probes and loads, all of the test image
//! (`backend::kind::test_image`), pinned to a pool by its `hubchaos.io/pool` label, never
//! pulled, never restarted; a failing container's last log lines become its termination
//! message, so a pod that dies of a write error says so in its status.

use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::backend::kind::pools::POOL_LABEL;
use crate::backend::kind::KindRun;

/// A pod named `name` on `pool` running `script` with `sh -c`.
pub fn pool_pod(run: &KindRun, name: &str, pool: &str, script: &str, labels: &[(&str, &str)]) -> anyhow::Result<Pod> {
    let labels: serde_json::Map<String, serde_json::Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": { POOL_LABEL: pool },
            "containers": [{
                "name": "main",
                "image": run.test_image,
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }],
        },
    }))
    .context("building a pod")
}

/// Create `pod` and wait (bounded) until it runs or has finished; the error says where it
/// stood (its phase and the scheduler's or kubelet's reason).
pub async fn start(run: &KindRun, pod: &Pod, within: Duration) -> anyhow::Result<Pod> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    run.kube.create_pod(&run.namespace, pod).await?;
    let started = Instant::now();
    loop {
        let p = run.kube.get_pod(&run.namespace, &name).await?;
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        if matches!(phase.as_str(), "Running" | "Succeeded" | "Failed") {
            return Ok(p);
        }
        if started.elapsed() >= within {
            anyhow::bail!("{name} still {phase} after {within:?}: {}", why_pending(&p));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait (bounded) until the pod has finished; its phase and log.
pub async fn finish(run: &KindRun, name: &str, within: Duration) -> anyhow::Result<(String, String)> {
    let started = Instant::now();
    loop {
        let p = run.kube.get_pod(&run.namespace, name).await?;
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            let log = run.kube.pod_logs(&run.namespace, name).await.unwrap_or_default();
            return Ok((phase, log));
        }
        if started.elapsed() >= within {
            anyhow::bail!("{name} still {phase} after {within:?}: {}", why_pending(&p));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The scheduler's message (`0/5 nodes are available: …`) or a container's waiting reason.
fn why_pending(p: &Pod) -> String {
    let status = p.status.as_ref();
    let condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.status == "False" && c.message.is_some()))
        .and_then(|c| c.message.clone());
    let waiting = status.and_then(|s| s.container_statuses.as_ref()).and_then(|cs| {
        cs.iter().find_map(|c| {
            c.state
                .as_ref()?
                .waiting
                .as_ref()
                .map(|w| format!("{} {}", w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()))
        })
    });
    condition.or(waiting).unwrap_or_else(|| "no reason given".into())
}
