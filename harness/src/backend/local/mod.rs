//! The `local` backend: every component is a real program in its own supervised process group
//! on 127.0.0.1 ([`supervisor`]), started from a process recipe ([`spec`], [`command`]) that
//! the one override function edits ([`overrides`]); the hub stack ([`hub_stack`]) and the node
//! ([`node`]) are its two deployments. Every process carries the run's id and the run's marker
//! names every process group, mount and path it made ([`sweep`]), so a run killed at any point
//! is swept by the next one.

pub mod binder;
pub mod command;
pub mod hub_stack;
pub mod node;
pub mod overrides;
pub mod spec;
pub mod supervisor;
pub mod sweep;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use self::hub_stack::{deploy_culler, deploy_hub_stack, StackInputs};
use self::node::NodeHandle;
use self::supervisor::Supervisor;
use self::sweep::{end_run_processes, sweep_abandoned, RunMarker, SweepReport};
use super::{Backend, BackendError, BackendKind, ComponentStatus, DeployTimings, Deployed, ProcessSignal, RunContext, SamplerTask};
use crate::component::binderhub::BINDERHUB;
use crate::component::hub::HUB;
use crate::env::Env;
use crate::fault::DeployPlan;
use crate::observe::hub_log::HubLogSource;
use crate::observe::procfs::ProcSampler;
use crate::observe::prom::PromSampler;
use crate::observe::residue::ResidueSampler;
use crate::profile::Profile;
use crate::scenario::{Deployment, Needs, Scenario};
use crate::toolchain::{EnsureOptions, Pins, Toolchain};

/// The local backend before a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

/// The first need this machine cannot meet, as a reason to skip. Docker is not judged here:
/// `open` installs it when root.
fn missing(needs: &Needs) -> Option<String> {
    if needs.cluster {
        return Some("needs a kind cluster: it runs on the kind backend".into());
    }
    if needs.root {
        if let Err(why) = crate::component::node_disk::requires_root() {
            return Some(why);
        }
    }
    if needs.binderhub && crate::component::binderhub::binderhub_from_env().is_none() {
        return Some(crate::component::binderhub::HOW_TO_PROVIDE.into());
    }
    None
}

#[async_trait]
impl BackendKind for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        missing(&scenario.needs)
    }

    /// Skip reasons first, then docker (installed when root and missing), the sweep of
    /// abandoned runs, the pinned toolchain, and this run's marker.
    async fn open(&self, needs: &Needs, ctx: RunContext) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some(reason) = missing(needs) {
            return Err(BackendError::Missing(reason));
        }
        if needs.docker {
            match tokio::task::spawn_blocking(crate::component::dockerd::ensure_docker_installed).await {
                Ok(Ok(_)) => {}
                Ok(Err(reason)) => return Err(BackendError::Missing(reason)),
                Err(e) => return Err(BackendError::deploy(e)),
            }
        }
        let swept = sweep_abandoned();
        if !swept.is_empty() {
            eprintln!("hubchaos: {}", swept.describe());
        }
        let toolchain = ensure_toolchain(ctx.profile.as_ref(), ctx.progress).await.map_err(BackendError::Deploy)?;
        let binder_env = if needs.binderhub {
            Some(ensure_binder(ctx.profile.as_ref(), ctx.progress).await.map_err(BackendError::Deploy)?)
        } else {
            None
        };
        let marker = RunMarker::create(&ctx.run_id, &ctx.run_dir)
            .map_err(|e| BackendError::Deploy(anyhow::anyhow!("writing the run marker: {e}")))?;
        Ok(Arc::new(LocalBackend { binder_env, ..LocalBackend::new(ctx, toolchain, marker) }))
    }
}

/// A deploy error as the seam types it: a component that never became ready is `Readiness`,
/// anything else `Deploy`.
fn typed(e: anyhow::Error) -> BackendError {
    if e.chain().any(|c| c.is::<supervisor::NotReady>()) {
        BackendError::Readiness(e)
    } else {
        BackendError::Deploy(e)
    }
}

/// The repository's pins with the profile's pin overrides.
fn pins(profile: Option<&Profile>) -> anyhow::Result<Pins> {
    let base = Pins::load_default()?;
    Ok(match profile {
        Some(p) => p.pins(&base),
        None => base,
    })
}

/// The pinned components' environment, with the profile's pin overrides.
pub async fn ensure_toolchain(profile: Option<&Profile>, progress: bool) -> anyhow::Result<Toolchain> {
    let pins = pins(profile)?;
    Ok(tokio::task::spawn_blocking(move || Toolchain::ensure(&pins, EnsureOptions { progress })).await??)
}

/// What BinderHub runs with: its environment (the pinned components, repo2docker and the
/// user's BinderHub) and the buildx plugin repo2docker needs.
pub struct BinderEnv {
    pub toolchain: Toolchain,
    pub buildx: PathBuf,
}

/// Install (or find) the [`BinderEnv`].
pub async fn ensure_binder(profile: Option<&Profile>, progress: bool) -> anyhow::Result<BinderEnv> {
    let pins = pins(profile)?;
    let binderhub = crate::component::binderhub::binderhub_from_env().context(crate::component::binderhub::HOW_TO_PROVIDE)?;
    let buildx_version =
        pins.binder.as_ref().map(|b| b.buildx.clone()).context("the pins have no `binder` section (fixtures/pins.yaml)")?;
    let pins = pins.binder_env(&binderhub).map_err(|e| anyhow::anyhow!(e))?;
    tokio::task::spawn_blocking(move || {
        let toolchain = Toolchain::ensure(&pins, EnsureOptions { progress })?;
        let buildx = crate::backend::kind::engine::ensure_buildx(&crate::paths::hubchaos_home(), &buildx_version)?;
        anyhow::Ok(BinderEnv { toolchain, buildx })
    })
    .await?
}

/// The local backend opened for one run.
pub struct LocalBackend {
    run_id: String,
    run_dir: PathBuf,
    supervisor: Arc<Supervisor>,
    marker: Arc<Mutex<RunMarker>>,
    toolchain: Toolchain,
    /// BinderHub's environment and the buildx plugin (scenarios that need `binderhub`).
    binder_env: Option<BinderEnv>,
    binder: OnceLock<binder::BinderHandle>,
    profile: Option<Profile>,
    /// The culler's hub token: only the local culler (an external process) needs it.
    culler_token: OnceLock<String>,
    node: OnceLock<NodeHandle>,
    /// Ends the node's log watcher with the samplers.
    node_stop: CancellationToken,
}

impl LocalBackend {
    pub fn new(ctx: RunContext, toolchain: Toolchain, marker: RunMarker) -> Self {
        let marker = Arc::new(Mutex::new(marker));
        let supervisor = Arc::new(Supervisor::new(&ctx.run_id, ctx.run_dir.join("logs"), ctx.recorder.clone(), marker.clone()));
        Self {
            run_id: ctx.run_id,
            run_dir: ctx.run_dir,
            supervisor,
            marker,
            toolchain,
            binder_env: None,
            binder: OnceLock::new(),
            profile: ctx.profile,
            culler_token: OnceLock::new(),
            node: OnceLock::new(),
            node_stop: CancellationToken::new(),
        }
    }

    fn inputs(&self) -> StackInputs<'_> {
        StackInputs { supervisor: &self.supervisor, toolchain: &self.toolchain, profile: self.profile.as_ref() }
    }

    /// The supervisor (for tests of the local backend).
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// The run's marker (what a sweep of this run would end and remove).
    pub fn marker(&self) -> &Arc<Mutex<RunMarker>> {
        &self.marker
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    /// The node first (disk, dockerd, recorder, images, cleaner), then the hub stack (its
    /// database seeded first for faults that need it: proxy, hub, recorder).
    async fn deploy(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Deployed, BackendError> {
        let mut timings = DeployTimings::default();
        if let Some(options) = &deployment.node {
            let started = std::time::Instant::now();
            let node = node::deploy_node(env, self, options, plan).await.map_err(|e| typed(e.context("deploying the node")))?;
            timings.node_ready_s = started.elapsed().as_secs_f64();
            let _ = self.node.set(node);
        }
        if let Some(options) = &deployment.binder {
            let node = self
                .node
                .get()
                .ok_or_else(|| BackendError::Deploy(anyhow::anyhow!("BinderHub builds on a node: declare `deploy.node`")))?;
            let started = std::time::Instant::now();
            let binder = binder::deploy_binder(env, self, options, &node.layout.docker_socket, plan)
                .await
                .map_err(|e| typed(e.context("deploying BinderHub")))?;
            timings.binder_ready_s = started.elapsed().as_secs_f64();
            let _ = self.binder.set(binder);
        }
        if let Some(hub) = &deployment.hub {
            let (t, culler_token) = deploy_hub_stack(env, hub, plan, &self.inputs()).await.map_err(typed)?;
            let _ = self.culler_token.set(culler_token);
            timings = DeployTimings { node_ready_s: timings.node_ready_s, binder_ready_s: timings.binder_ready_s, ..t };
        }
        Ok(Deployed { components: self.supervisor.components(), timings })
    }

    async fn deploy_after_setup(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Duration, BackendError> {
        let Some(culler) = &deployment.culler else { return Ok(Duration::ZERO) };
        let token =
            self.culler_token.get().ok_or_else(|| BackendError::Deploy(anyhow::anyhow!("a culler needs the hub: declare `deploy.hub`")))?;
        deploy_culler(env, culler, plan, token, &self.inputs()).await.map_err(|e| typed(e.context("deploying the culler")))
    }

    fn samplers(&self, env: &Env, every: Duration, stop: &CancellationToken) -> Vec<SamplerTask> {
        let mut tasks: Vec<SamplerTask> =
            vec![Box::pin(ProcSampler { every }.run(self.supervisor.clone(), env.recorder.clone(), env.samples.clone(), stop.clone()))];
        if let Some(node) = self.node.get() {
            let (disk, docker) = node.samplers(every);
            tasks.push(Box::pin(disk.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
            tasks.push(Box::pin(docker.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
            // The node's log watcher ends with the samplers.
            let (stop, node_stop) = (stop.clone(), self.node_stop.clone());
            tasks.push(Box::pin(async move {
                stop.cancelled().await;
                node_stop.cancel();
            }));
        }
        if let Some(binder) = self.binder.get() {
            let metrics = PromSampler { component: BINDERHUB.into(), url: format!("{}/metrics", binder.url), token: None, every };
            tasks.push(Box::pin(metrics.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
            let builds = crate::observe::builds::BuildsSampler { run_id: self.run_id.clone(), every };
            tasks.push(Box::pin(builds.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
            let layout = crate::component::binderhub::BinderLayout::new(&env.run_dir);
            tasks.push(Box::pin(ResidueSampler::binder(&layout, every).run(env.recorder.clone(), env.samples.clone(), stop.clone())));
        }
        if env.hub().is_ok() {
            tasks.push(Box::pin(ResidueSampler::local_hub(&self.run_dir, every).run(
                env.recorder.clone(),
                env.samples.clone(),
                stop.clone(),
            )));
        }
        tasks
    }

    /// `logs/hub.log`: the supervisor writes the hub's output there (restarts append).
    fn hub_log(&self) -> Option<HubLogSource> {
        self.supervisor.components().iter().any(|c| c == HUB).then_some(())?;
        Some(HubLogSource { path: self.supervisor.log_file(HUB), token_owners: hub_stack::token_owners(), unproxied: Default::default() })
    }

    async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()> {
        self.supervisor.signal(component, signal).await
    }

    async fn stop(&self, component: &str) -> anyhow::Result<()> {
        self.supervisor.stop(component).await
    }

    fn status(&self, component: &str) -> Option<ComponentStatus> {
        self.supervisor.status(component)
    }

    fn components(&self) -> Vec<String> {
        self.supervisor.components()
    }

    async fn stop_components(&self) -> Vec<String> {
        self.node_stop.cancel();
        self.supervisor.teardown().await
    }

    /// Anything still carrying the run's id (a single-user server that outlived the hub), then
    /// the marker.
    async fn release(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut swept = SweepReport::default();
        end_run_processes(&self.run_id, &mut swept);
        if !swept.processes_ended.is_empty() {
            errors.push(format!(
                "{} process(es) of the run outlived their component and were killed: {:?}",
                swept.processes_ended.len(),
                swept.processes_ended
            ));
        }
        errors.extend(swept.errors);
        if let Err(e) = self.marker.lock().unwrap().remove() {
            errors.push(format!("removing the run marker: {e}"));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_that_never_became_ready_is_a_readiness_error_whatever_the_context() {
        let e = anyhow::Error::from(supervisor::NotReady("hub was not ready within 1s".into())).context("deploying the node");
        assert!(matches!(typed(e), BackendError::Readiness(_)));
        assert!(matches!(typed(anyhow::anyhow!("starting hub: no such file")), BackendError::Deploy(_)));
    }

    #[test]
    fn a_scenario_that_needs_nothing_is_never_skipped() {
        assert_eq!(missing(&Needs::default()), None);
    }
}
