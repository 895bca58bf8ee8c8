//! The kind backend behind the seam: a run on the harness's kind cluster.
//!
//! `open` brings the cluster up or reuses it ([`super::cluster::up`]): a cluster this run
//! made is this run's (swept if it dies) and is taken down at `release`; one made by `hubchaos
//! cluster up` is left as found. `deploy` gives the run a namespace of its own, waits until
//! every node is Ready without disk pressure (a scenario before may have filled a disk), puts
//! every pool's taint back to how the cluster starts, and hands faults and workloads a
//! [`KindRun`] through the env. Its sampler is the [`Watcher`]: node conditions and taints,
//! the run's pods (ran, ended with the kubelet's reason, restarted, gone) as history events,
//! Kubernetes' own events in `logs/kube-events.log`. Teardown deletes the namespace.
//!
//! What it does not deploy yet: the hub stack (the charts on kind come next). Scenarios that
//! declare one are skipped on kind with that reason; scenarios that need a cluster are
//! skipped on local.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::cluster::{self, Programs, Up};
use super::kube::KindCluster;
use super::pools::{self, POOL_LABEL};
use super::watch::Watcher;
use crate::backend::{Backend, BackendError, BackendKind, ComponentStatus, Deployed, ProcessSignal, RunContext, SamplerTask};
use crate::env::Env;
use crate::fault::DeployPlan;
use crate::scenario::{Deployment, Needs, Scenario};

/// The kind backend before a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kind;

/// Why this machine cannot run `needs` on kind now (cheap: files only).
fn missing(needs: &Needs, deploys_something: bool) -> Option<String> {
    if !needs.cluster {
        return Some("not a cluster scenario: the hub stack on kind (the charts) is not built yet; it runs on local".into());
    }
    if deploys_something {
        return Some("the kind backend deploys no hub or node of its own yet".into());
    }
    if let Err(why) = crate::component::node_disk::requires_root() {
        return Some(format!("a kind cluster {why}"));
    }
    let pins = match crate::toolchain::Pins::load_default() {
        Ok(p) => p.kubernetes?,
        Err(e) => return Some(format!("{e}")),
    };
    if let Err(why) = Programs::cached(&crate::paths::hubchaos_home(), &pins) {
        return Some(why);
    }
    if !Path::new(super::test_image::BUSYBOX).is_file() {
        return Some("needs Debian's busybox-static for the cluster's test image (`make deps` installs it)".into());
    }
    None
}

#[async_trait]
impl BackendKind for Kind {
    fn name(&self) -> &'static str {
        "kind"
    }

    fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        let d = &scenario.deploy;
        missing(&scenario.needs, d.hub.is_some() || d.node.is_some() || d.culler.is_some())
    }

    async fn open(&self, needs: &Needs, ctx: RunContext) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some(reason) = missing(needs, false) {
            return Err(BackendError::Missing(reason));
        }
        let home = crate::paths::hubchaos_home();
        let pins = crate::toolchain::Pins::load_default().map_err(|e| BackendError::Deploy(e.into()))?;
        let pins = match ctx.profile.as_ref() {
            Some(p) => p.pins(&pins),
            None => pins,
        };
        let kube_pins = pins.kubernetes.context("the pins name no Kubernetes versions").map_err(BackendError::Deploy)?;
        let programs = Programs::cached(&home, &kube_pins).map_err(BackendError::Missing)?;
        let started = Instant::now();
        let up = cluster::up(&home, cluster::DEFAULT_NAME, &programs, false, !ctx.progress).await.map_err(BackendError::Deploy)?;
        ctx.recorder.phase(
            "cluster",
            format!(
                "{} {} in {:.1} s",
                up.layout.context(),
                if up.created { "created" } else { "reused" },
                started.elapsed().as_secs_f64()
            ),
        );
        let short: String = ctx.run_id.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        let namespace = format!("hc-{}", &short[short.len().saturating_sub(40)..]);
        Ok(Arc::new(KindBackend { ctx, up, programs, namespace, components: Mutex::new(Vec::new()) }))
    }
}

/// What faults and workloads of a kind run use: the cluster's client, the run's namespace,
/// the test image, the pools' nodes, and `docker exec` into a node.
#[derive(Debug, Clone)]
pub struct KindRun {
    pub kube: KindCluster,
    pub namespace: String,
    /// `hubchaos/busybox:<tag>`, on every node.
    pub test_image: String,
    /// pool → node name.
    pub pools: BTreeMap<String, String>,
    programs: Programs,
    layout: cluster::ClusterLayout,
}

impl KindRun {
    /// The node of `pool`.
    pub fn node_of(&self, pool: &str) -> anyhow::Result<&str> {
        self.pools
            .get(pool)
            .map(String::as_str)
            .with_context(|| format!("the cluster has no pool `{pool}` (it has {:?})", self.pools.keys()))
    }

    /// Run `script` with `sh -ec` in the node container of `pool` (bounded); its output.
    pub async fn exec_on_node(&self, pool: &str, script: &str, within: Duration) -> anyhow::Result<String> {
        let node = self.node_of(pool)?.to_string();
        let mut cmd = std::process::Command::new(&self.programs.docker);
        cmd.env("DOCKER_HOST", self.layout.engine.docker_host()).args(["exec", &node, "sh", "-ec", script]);
        let log = self.layout.log();
        let what = format!("docker exec on {node}");
        tokio::task::spawn_blocking(move || cluster::run_bounded(cmd, &what, within, &log)).await?
    }
}

/// A kind run.
pub struct KindBackend {
    ctx: RunContext,
    up: Up,
    programs: Programs,
    namespace: String,
    components: Mutex<Vec<String>>,
}

impl KindBackend {
    /// Every node Ready and without disk pressure, each pool tainted as the cluster starts
    /// (bounded): what a scenario before may have left.
    async fn await_clean_cluster(&self, within: Duration) -> anyhow::Result<BTreeMap<String, String>> {
        let kube = &self.up.kube;
        let nodes = kube.nodes().await?;
        for pool in pools::pools() {
            let Some(node) = nodes.iter().find(|n| pools::pool_of(n) == Some(pool.name)) else {
                bail!("no node of pool {}", pool.name);
            };
            let tainted = node.taints.iter().any(|t| t.key == POOL_LABEL);
            if pool.starts_tainted && !tainted {
                kube.add_taint(&node.name, POOL_LABEL, Some(pool.name), super::kube::TaintEffect::NoSchedule).await?;
            } else if !pool.starts_tainted && tainted {
                kube.remove_taint(&node.name, POOL_LABEL).await?;
            }
        }
        let started = Instant::now();
        loop {
            let nodes = kube.nodes().await?;
            let unwell: Vec<String> = nodes
                .iter()
                .filter(|n| !n.ready || n.condition("DiskPressure").is_some_and(|c| c.status == "True"))
                .map(|n| {
                    format!("{} (ready={}, {})", n.name, n.ready, n.condition("DiskPressure").map(|c| c.to_string()).unwrap_or_default())
                })
                .collect();
            if unwell.is_empty() {
                return Ok(nodes.iter().filter_map(|n| Some((pools::pool_of(n)?.to_string(), n.name.clone()))).collect());
            }
            if started.elapsed() >= within {
                bail!("nodes not Ready or under disk pressure after {within:?}: {}", unwell.join("; "));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[async_trait]
impl Backend for KindBackend {
    fn name(&self) -> &'static str {
        "kind"
    }

    async fn deploy(&self, env: &Env, _deployment: &Deployment, _plan: &DeployPlan) -> Result<Deployed, BackendError> {
        let started = Instant::now();
        let pools = self.await_clean_cluster(Duration::from_secs(120)).await.map_err(BackendError::Readiness)?;
        let labels = BTreeMap::from([("hubchaos.io/run".to_string(), "true".to_string())]);
        self.up.kube.ensure_namespace(&self.namespace, &labels).await.map_err(BackendError::Deploy)?;
        let test_image =
            self.up.state.test_image.clone().context("the cluster's state names no test image").map_err(BackendError::Deploy)?;
        let restored = cluster::restore_images(&self.up.layout, &self.programs, &test_image).await.map_err(BackendError::Deploy)?;
        if !restored.is_empty() {
            self.ctx.recorder.phase("images-restored", restored.join(", "));
        }
        let components: Vec<String> = pools.keys().map(|p| format!("node/{p}")).collect();
        *self.components.lock().unwrap() = components.clone();
        env.set_kind(KindRun {
            kube: self.up.kube.clone(),
            namespace: self.namespace.clone(),
            test_image,
            pools,
            programs: self.programs.clone(),
            layout: self.up.layout.clone(),
        });
        let mut deployed = Deployed { components, ..Deployed::default() };
        deployed.timings.node_ready_s = started.elapsed().as_secs_f64();
        Ok(deployed)
    }

    async fn deploy_after_setup(&self, _env: &Env, _deployment: &Deployment, _plan: &DeployPlan) -> Result<Duration, BackendError> {
        Ok(Duration::ZERO)
    }

    fn samplers(&self, env: &Env, every: Duration, stop: &CancellationToken) -> Vec<SamplerTask> {
        let watcher = Arc::new(Watcher {
            kube: self.up.kube.clone(),
            namespace: self.namespace.clone(),
            recorder: self.ctx.recorder.clone(),
            samples: env.samples.clone(),
            events_log: self.ctx.run_dir.join("logs").join("kube-events.log"),
        });
        let every = every.min(Duration::from_secs(1));
        vec![Box::pin(watcher.run(every, stop.clone()))]
    }

    async fn signal(&self, component: &str, _signal: ProcessSignal) -> anyhow::Result<()> {
        bail!("signals to `{component}` on kind: not built yet (kind runs deploy no process of their own)")
    }

    async fn stop(&self, component: &str) -> anyhow::Result<()> {
        bail!("stopping `{component}` on kind: not built yet")
    }

    fn status(&self, _component: &str) -> Option<ComponentStatus> {
        None
    }

    fn components(&self) -> Vec<String> {
        self.components.lock().unwrap().clone()
    }

    async fn stop_components(&self) -> Vec<String> {
        match self.up.kube.delete_namespace_and_wait(&self.namespace, Duration::from_secs(90)).await {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("deleting namespace {}: {e:#}", self.namespace)],
        }
    }

    async fn release(&self) -> Vec<String> {
        if self.up.created {
            let home = crate::paths::hubchaos_home();
            return cluster::down(&home, &self.up.layout.name, &self.programs, !self.ctx.progress).await;
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::Local;
    use crate::scenario::Scenario;

    fn cluster_scenario() -> Scenario {
        let mut s = Scenario::new("cluster", "t", "");
        s.needs.cluster = true;
        s
    }

    #[test]
    fn each_backend_refuses_the_others_scenarios_with_the_reason() {
        let hub = Scenario::new("hub", "t", "");
        let on_kind = Kind.cannot_run(&hub).expect("a hub scenario does not run on kind yet");
        assert!(on_kind.contains("runs on local"), "{on_kind}");
        let on_local = Local.cannot_run(&cluster_scenario()).expect("a cluster scenario does not run on local");
        assert!(on_local.contains("kind"), "{on_local}");
        let mut with_hub = cluster_scenario();
        with_hub.deploy = Deployment::hub(Default::default());
        assert!(Kind.cannot_run(&with_hub).unwrap().contains("deploys no hub"), "a cluster scenario with a hub is refused too");
    }
}
