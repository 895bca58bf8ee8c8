//! `kube-proxy-removed` and `coredns-scaled-down`: one of the cluster's own add-ons taken
//! away, the negative controls of the `service` and `dns` checks. kube-proxy's DaemonSet is
//! given a node selector no node matches (its pods leave, so Services created afterwards get
//! no rules); coredns's Deployment is scaled to zero. Each waits (bounded) until the pods are
//! gone; the heal undoes the change and waits until they are Ready again.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::backend::kind::kube::KindCluster;
use crate::env::Env;

/// Which add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Addon {
    KubeProxy,
    Coredns,
}

impl Addon {
    fn selector(self) -> &'static str {
        match self {
            Addon::KubeProxy => "k8s-app=kube-proxy",
            Addon::Coredns => "k8s-app=kube-dns",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddonDown {
    pub addon: Addon,
}

impl AddonDown {
    pub fn kube_proxy() -> Self {
        Self { addon: Addon::KubeProxy }
    }
    pub fn coredns() -> Self {
        Self { addon: Addon::Coredns }
    }
}

/// Wait until `want(pods, ready)` holds for the add-on's pods in kube-system (bounded).
async fn await_pods(kube: &KindCluster, addon: Addon, within: Duration, want: impl Fn(usize, usize) -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pods = kube.list_pods("kube-system", addon.selector()).await?;
        let ready = pods.iter().filter(|p| crate::backend::kind::kube::pod_ready(p)).count();
        if want(pods.len(), ready) {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < within, "{addon:?}: {} pods, {ready} ready after {within:?}", pods.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl Fault for AddonDown {
    fn kind(&self) -> &'static str {
        match self.addon {
            Addon::KubeProxy => "kube-proxy-removed",
            Addon::Coredns => "coredns-scaled-down",
        }
    }
    fn target(&self) -> String {
        match self.addon {
            Addon::KubeProxy => "kube-proxy".into(),
            Addon::Coredns => "coredns".into(),
        }
    }
    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let kube = env.kind()?.kube.clone();
        let addon = self.addon;
        let before = kube.list_pods("kube-system", addon.selector()).await?.len();
        match addon {
            Addon::KubeProxy => kube.set_daemonset_nowhere("kube-system", "kube-proxy", true).await?,
            Addon::Coredns => kube.scale_deployment("kube-system", "coredns", 0).await?,
        }
        // Their grace period is 30 s: shorten it to 1 s. Not zero: a pod deleted with no grace
        // leaves the API at once while its process still runs on the node (seen: kube-proxy
        // still wrote the new Service's rules); with 1 s the kubelet confirms it ended first.
        for p in kube.list_pods("kube-system", addon.selector()).await? {
            let _ = kube.delete_pod("kube-system", p.metadata.name.as_deref().unwrap_or_default(), Duration::from_secs(1)).await;
        }
        await_pods(&kube, addon, Duration::from_secs(90), |pods, _| pods == 0).await?;
        Ok(FaultGuard::injected(
            self.kind(),
            &self.target(),
            format!("{before} pods gone"),
            &env.recorder,
            Box::new(move || {
                Box::pin(async move {
                    match addon {
                        Addon::KubeProxy => kube.set_daemonset_nowhere("kube-system", "kube-proxy", false).await?,
                        Addon::Coredns => kube.scale_deployment("kube-system", "coredns", before as i32).await?,
                    }
                    await_pods(&kube, addon, Duration::from_secs(90), |pods, ready| pods >= before && ready == pods).await
                })
            }),
        ))
    }
}
