//! The hub stack on the kind backend (lifecycle step 3): the run's hub database volume (seeded
//! when the scenario piles users up), the stack images on the core and user nodes, the chart
//! installed by helm ([`super::hub_chart`]), port-forwards to the hub and the proxy pods with
//! the recorder in front of the hub's, and, once the setup is in place, the culler arriving by
//! a chart upgrade. Each step is timed; the timings are a figure of every run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::backend::KindRun;
use super::hub_chart::{self, await_rollout, chart_values, ChartInputs, ChartSource, Helm, HubDbVolume, DEPLOYMENTS, ROLLOUT_WITHIN};
use super::port_forward::PodForward;
use crate::backend::local::hub_stack::random_token;
use crate::backend::DeployTimings;
use crate::component::culler::CullerOptions;
use crate::component::hub::{seed_database, HubOptions};
use crate::env::{Env, HubEndpoints};
use crate::fault::DeployPlan;
use crate::observe::evidence::RecordedGateway;
use crate::observe::hub_log::{HubLogSource, TokenOwners};
use crate::observe::recording_proxy::{RecordingProxy, Upstream};
use crate::paths::fixtures_dir;

/// The pool the hub and the proxy run on.
pub const CORE_POOL: &str = "core";
/// Where the hub database sits in its volume (`sqlite:///jupyterhub.sqlite` in the hub's
/// working directory, the claim's mount, in both charts).
const DB_FILE: &str = "jupyterhub.sqlite";

/// What the kind hub stack needs besides the scenario's options.
pub struct StackInputs {
    pub helm: Helm,
    pub chart: ChartSource,
    pub images: hub_chart::StackImages,
    /// The Python of the pinned toolchain, to seed the database with (only when seeding).
    pub seed_python: Option<PathBuf>,
}

/// A deployed hub stack: what upgrades and teardown need.
pub struct KindHubStack {
    pub volume: HubDbVolume,
    harness_token: String,
    proxy_token: String,
    /// The hub's and the proxy's forwards, kept open while the run lasts.
    _forwards: Vec<PodForward>,
}

/// Whose token each recorder client sends on kind: every one the harness's (the culler runs
/// inside the hub pod with a token of its own, and passes no recorder).
pub fn token_owners() -> TokenOwners {
    TokenOwners { by_client: Default::default(), otherwise: hub_chart::HARNESS_SERVICE.into() }
}

/// The hub's log on kind (followed into `logs/hub.log`) and the culler's name in it.
pub fn hub_log_source(run_dir: &Path) -> HubLogSource {
    HubLogSource {
        path: run_dir.join("logs").join("hub.log"),
        token_owners: token_owners(),
        unproxied: [(hub_chart::CULLER_SERVICE.to_string(), crate::backend::local::hub_stack::CULLER_CLIENT.to_string())].into(),
    }
}

/// What the chart is given, at install and at the culler's upgrade: the scenario's hub, the
/// deploy plan (seed, `misconfigure` overrides) and the hub's extra config (the plan's and the
/// profile's appended).
pub struct StackDeclaration<'a> {
    pub hub: &'a HubOptions,
    pub plan: &'a DeployPlan,
    pub extra_config: &'a str,
    /// The scenario's node, deployed with the chart as the build node.
    pub node: Option<&'a crate::component::node::NodeOptions>,
}

/// Volume, images, chart, rollout, forwards, recorder.
pub async fn deploy_hub_stack(
    env: &Env,
    run: &KindRun,
    declared: &StackDeclaration<'_>,
    inputs: &StackInputs,
) -> anyhow::Result<(KindHubStack, DeployTimings)> {
    let plan = declared.plan;
    let mut timings = DeployTimings::default();
    let started = Instant::now();
    hub_chart::check_env_overrides(&plan.env_overrides)?;
    for o in &plan.env_overrides {
        let at = hub_chart::ENV_KEYS
            .iter()
            .find(|(c, _)| *c == o.component)
            .map_or("hub.extraConfig (the culler service's environment)".to_string(), |(_, path)| path.join("."));
        env.recorder.phase("overrides", format!("{}: {} {:?} as a values override at {at}", o.component, o.key, o.value));
    }
    let volume = HubDbVolume::for_namespace(&run.namespace, run.node_of(CORE_POOL)?);
    run.exec_on_node(CORE_POOL, &volume.prepare_script(), Duration::from_secs(30))
        .await
        .context("preparing the hub database's directory")?;
    if !plan.seed.is_empty() {
        let python = inputs.seed_python.as_deref().context("seeding needs the pinned toolchain's Python")?;
        let dir = env.run_dir.join("hub");
        std::fs::create_dir_all(&dir)?;
        let db = dir.join(DB_FILE);
        let report =
            seed_database(python, &fixtures_dir().join("hub/seed_users.py"), &plan.seed, &format!("sqlite:///{}", db.display()), &dir)
                .await?;
        let target = format!("{}/{DB_FILE}", volume.host_dir);
        let script = format!("cat > '{target}' && chown 1000:1000 '{target}'");
        run.exec_on_node_with_input(CORE_POOL, &script, &db, Duration::from_secs(60))
            .await
            .context("copying the seeded database to the core node")?;
        timings.seeded_users = report.users;
        timings.seed_s = report.wall_s;
    }
    run.kube.ensure_persistent_volume(&volume.object()?).await?;

    let harness_token = random_token(env);
    let proxy_token = random_token(env);
    let stack = KindHubStack { volume, harness_token, proxy_token, _forwards: Vec::new() };
    let helm_started = Instant::now();
    apply_values(env, run, declared, None, &stack, inputs).await?;
    timings.hub_ready_s = helm_started.elapsed().as_secs_f64();
    timings.proxy_ready_s = timings.hub_ready_s;

    let client = run.kube.client();
    let hub_forward = PodForward::start(client.clone(), &run.namespace, &hub_chart::pod_selector("hub"), 8081).await?;
    let proxy_forward = PodForward::start(client, &run.namespace, &hub_chart::pod_selector("proxy"), 8000).await?;
    let hub_addr: SocketAddr = hub_forward.addr();
    let gateway = Arc::new(RecordedGateway::new(RecordingProxy::start("hub", Upstream::Tcp(hub_addr), env.recorder.clone())?));
    env.add_request_source(gateway.clone());
    env.set_hub(HubEndpoints {
        hub_addr,
        public_url: format!("http://{}", proxy_forward.addr()),
        harness_token: stack.harness_token.clone(),
        gateway,
    });
    timings.stack_ready_s = started.elapsed().as_secs_f64();
    Ok((KindHubStack { _forwards: vec![hub_forward, proxy_forward], ..stack }, timings))
}

/// The culler arrives: the chart upgraded with `cull.enabled` and the scenario's culler, which
/// restarts the hub (as any z2jh upgrade does); done when the hub rolled out again.
pub async fn deploy_culler(
    env: &Env,
    run: &KindRun,
    stack: &KindHubStack,
    declared: &StackDeclaration<'_>,
    culler: &CullerOptions,
    inputs: &StackInputs,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    apply_values(env, run, declared, Some(culler), stack, inputs).await?;
    Ok(started.elapsed())
}

/// Write the values, `helm upgrade --install`, await the rollout of the hub and the proxy.
async fn apply_values(
    env: &Env,
    run: &KindRun,
    declared: &StackDeclaration<'_>,
    culler: Option<&CullerOptions>,
    stack: &KindHubStack,
    inputs: &StackInputs,
) -> anyhow::Result<()> {
    let values = chart_values(&ChartInputs {
        images: &inputs.images,
        hub: declared.hub,
        culler,
        extra_config: declared.extra_config,
        harness_token: &stack.harness_token,
        proxy_token: &stack.proxy_token,
        run_id: &env.run_id,
        env_overrides: &declared.plan.env_overrides,
        build_node: declared.node,
    });
    let file = hub_chart::write_values(&env.run_dir.join("helm"), &values)?;
    let took = inputs.helm.upgrade_install(inputs.chart.dir(), &file).await?;
    // The build node's docker daemon must be up; its cleaner is what the scenarios judge (the
    // 2018 one never started), so its rollout is not awaited.
    let dind = format!("{}-dind", hub_chart::RELEASE);
    let daemonsets: Vec<&str> = declared.node.map(|_| dind.as_str()).into_iter().collect();
    let rolled = match await_rollout(&run.kube, &run.namespace, DEPLOYMENTS, &daemonsets, ROLLOUT_WITHIN).await {
        Ok(rolled) => rolled,
        Err(e) => {
            let kept = keep_evidence(run, &env.run_dir.join("logs")).await;
            return Err(e.context(format!("the chart did not roll out ({kept})")));
        }
    };
    env.recorder.phase(
        "helm",
        format!(
            "{} with {} ({}): helm {:.1} s, hub and proxy rolled out {:.1} s after",
            if culler.is_some() { "upgraded, the culler on" } else { "installed" },
            inputs.chart.describe(),
            file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            took.as_secs_f64(),
            rolled.as_secs_f64()
        ),
    );
    Ok(())
}

/// A rollout that failed leaves its evidence before the namespace goes: each pod's log (the
/// previous container's too when it restarted) as `logs/pod-<name>.log`, and the namespace's
/// warning events. Returns what it kept, for the error.
async fn keep_evidence(run: &KindRun, logs: &Path) -> String {
    let mut kept = Vec::new();
    let _ = std::fs::create_dir_all(logs);
    let build_node =
        [super::build_node::DOCKERD, super::build_node::IMAGE_CLEANER].map(|c| super::build_node::pod_selector(c).unwrap_or_default());
    for selector in [hub_chart::pod_selector("hub"), hub_chart::pod_selector("proxy")].iter().chain(&build_node) {
        let Ok(pods) = run.kube.list_pods(&run.namespace, selector).await else { continue };
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Ok(log) = run.kube.pod_logs(&run.namespace, &name).await {
                let path = logs.join(format!("pod-{name}.log"));
                if std::fs::write(&path, log).is_ok() {
                    kept.push(format!("logs/pod-{name}.log"));
                }
            }
        }
    }
    let warnings: Vec<String> = match run.kube.events(Some(&run.namespace), "type=Warning").await {
        Ok(events) => events.iter().rev().take(5).map(|e| format!("{} {}: {}", e.involved_name, e.reason, e.message)).collect(),
        Err(_) => Vec::new(),
    };
    if !warnings.is_empty() {
        kept.push(format!("last warnings: {}", warnings.join(" | ")));
    }
    if kept.is_empty() {
        "no pod logs or warning events".into()
    } else {
        kept.join("; ")
    }
}

/// Restarts of the chart's components on kind (the hub, the proxy; the build node's docker
/// daemon and cleaner), as the local supervisor records its restarts
/// ([`crate::observe::history::Event::Restart`]): a container that restarted in its pod (its
/// restart count rose), or a pod replaced by its ReplicaSet or DaemonSet (a new pod with the
/// same `pod-template-hash` or `controller-revision-hash` as one seen before: the pod was
/// deleted or lost). A new hash is a rollout (a chart upgrade), not a restart.
pub struct RestartWatcher {
    pub kube: super::kube::KindCluster,
    pub namespace: String,
    pub recorder: crate::observe::history::Recorder,
    /// Each watched component and the label selector of its pods.
    pub components: Vec<(String, String)>,
}

/// What [`RestartWatcher`] remembers of one component's pods.
#[derive(Debug, Default)]
pub struct ComponentPods {
    /// pod uid -> (template hash, restart count).
    pods: std::collections::BTreeMap<String, (String, u32)>,
    restarts: u32,
}

impl ComponentPods {
    /// Compare with a listing (uid, name, template hash, restart count): how each restart
    /// since the last listing ended.
    pub fn update(&mut self, listed: &[(String, String, String, u32)]) -> Vec<String> {
        let mut restarts = Vec::new();
        for (uid, name, hash, count) in listed {
            match self.pods.get(uid) {
                Some((_, before)) if count > before => {
                    restarts.extend((*before..*count).map(|_| format!("container of pod {name} restarted")));
                }
                None if !self.pods.is_empty() && self.pods.values().any(|(h, _)| h == hash) => {
                    restarts.push(format!("pod replaced by {name}"));
                    restarts.extend((0..*count).map(|_| format!("container of pod {name} restarted")));
                }
                _ => {}
            }
            self.pods.insert(uid.clone(), (hash.clone(), *count));
        }
        self.restarts += restarts.len() as u32;
        restarts
    }
}

impl RestartWatcher {
    pub async fn run(self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut seen: std::collections::BTreeMap<&str, ComponentPods> = Default::default();
        while !stop.is_cancelled() {
            for (component, selector) in &self.components {
                let component = component.as_str();
                let Ok(pods) = self.kube.list_pods(&self.namespace, selector).await else { continue };
                let listed: Vec<(String, String, String, u32)> = pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| {
                        let labels = p.metadata.labels.clone().unwrap_or_default();
                        let count = p
                            .status
                            .as_ref()
                            .and_then(|s| s.container_statuses.as_ref())
                            .map(|cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum())
                            .unwrap_or(0);
                        (
                            p.metadata.uid.clone().unwrap_or_default(),
                            p.metadata.name.clone().unwrap_or_default(),
                            // A Deployment's pods carry the one, a DaemonSet's the other.
                            labels.get("pod-template-hash").or(labels.get("controller-revision-hash")).cloned().unwrap_or_default(),
                            count,
                        )
                    })
                    .collect();
                let state = seen.entry(component).or_default();
                for exit in state.update(&listed) {
                    self.recorder.record(crate::observe::history::Event::Restart(crate::observe::history::RestartEvent {
                        component: component.to_string(),
                        exit,
                        attempt: state.restarts,
                        backoff: Duration::ZERO,
                    }));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, hash: &str, restarts: u32) -> (String, String, String, u32) {
        (uid.into(), format!("pod-{uid}"), hash.into(), restarts)
    }

    #[test]
    fn a_replaced_pod_and_a_restarted_container_are_restarts_and_a_rollout_is_not() {
        let mut c = ComponentPods::default();
        assert!(c.update(&[pod("a", "h1", 0)]).is_empty(), "the first pod is no restart");
        assert!(c.update(&[pod("a", "h1", 0)]).is_empty());
        assert_eq!(c.update(&[pod("a", "h1", 1)]), ["container of pod pod-a restarted"]);
        assert_eq!(c.update(&[pod("b", "h1", 0)]), ["pod replaced by pod-b"]);
        assert!(c.update(&[pod("c", "h2", 0)]).is_empty(), "a new template is a rollout");
        assert_eq!(c.restarts, 2);
    }
}
