//! `kubelet-eviction-off`: one node's kubelet back on kind's own settings, where disk-pressure
//! eviction and image GC are off (`evictionHard` at 0%, `imageGCHighThresholdPercent: 100`).
//! The kubelet's config file in the node is rewritten and the kubelet restarted; the heal
//! restores the file and restarts it again. The negative control of `disk-pressure`: with
//! these settings a node fills to the last block and never says so.

use std::time::Duration;

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::backend::kind::pools::KIND_DEFAULT_EVICTION;
use crate::env::Env;

/// Where kubeadm writes the kubelet's configuration in a node.
const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
const BACKUP: &str = "/var/lib/kubelet/config.yaml.hubchaos";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KubeletEvictionOff {
    pub pool: String,
}

impl KubeletEvictionOff {
    pub fn on(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

/// The `sed` program that sets each key of [`KIND_DEFAULT_EVICTION`] to kind's value.
pub fn sed_program() -> String {
    KIND_DEFAULT_EVICTION
        .iter()
        .map(|(k, v)| format!("-e 's/^\\( *{}:\\).*/\\1 \"{v}\"/'", k.replace('.', "\\.")))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn restart_and_await(env_kube: &crate::backend::kind::kube::KindCluster, node: &str) -> anyhow::Result<()> {
    // The kubelet needs a few seconds to post Ready again; the node may never have left it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env_kube.wait_node_condition(node, "Ready", "True", Duration::from_secs(60)).await.map(|_| ())
}

#[async_trait]
impl Fault for KubeletEvictionOff {
    fn kind(&self) -> &'static str {
        "kubelet-eviction-off"
    }
    fn target(&self) -> String {
        self.pool.clone()
    }
    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let k = env.kind()?.clone();
        let node = k.node_of(&self.pool)?.to_string();
        let script = format!("cp {KUBELET_CONFIG} {BACKUP}; sed -i {} {KUBELET_CONFIG}; grep -E 'available|inodesFree|imageGCHigh' {KUBELET_CONFIG}; systemctl restart kubelet", sed_program());
        let set = k.exec_on_node(&self.pool, &script, Duration::from_secs(30)).await?;
        restart_and_await(&k.kube, &node).await?;
        let pool = self.pool.clone();
        Ok(FaultGuard::injected(
            self.kind(),
            &self.pool,
            format!("{node}: {}", set.split_whitespace().collect::<Vec<_>>().join(" ")),
            &env.recorder,
            Box::new(move || {
                Box::pin(async move {
                    k.exec_on_node(&pool, &format!("mv {BACKUP} {KUBELET_CONFIG}; systemctl restart kubelet"), Duration::from_secs(30))
                        .await?;
                    restart_and_await(&k.kube, &node).await
                })
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sed_program_sets_kinds_values_on_a_kubelet_config() {
        let config = "evictionHard:\n  imagefs.available: 512Mi\n  memory.available: 100Mi\n  nodefs.available: 1Gi\n  nodefs.inodesFree: 5%\nimageGCHighThresholdPercent: 85\n";
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.yaml");
        std::fs::write(&f, config).unwrap();
        let status = std::process::Command::new("sh").arg("-c").arg(format!("sed -i {} {}", sed_program(), f.display())).status().unwrap();
        assert!(status.success());
        let out = std::fs::read_to_string(&f).unwrap();
        assert!(out.contains("  imagefs.available: \"0%\"\n"), "{out}");
        assert!(out.contains("  nodefs.available: \"0%\"\n") && out.contains("  nodefs.inodesFree: \"0%\"\n"), "{out}");
        assert!(out.contains("imageGCHighThresholdPercent: \"100\"\n") || out.contains("imageGCHighThresholdPercent: 100\n"), "{out}");
        assert!(out.contains("  memory.available: 100Mi\n"), "other keys are kept: {out}");
    }
}
