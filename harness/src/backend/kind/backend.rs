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
//! A scenario that declares a hub gets the jupyterhub chart installed by helm
//! ([`super::hub_stack`]); one that declares a node gets the chart's build node with it (the
//! binderhub chart's docker daemon and image cleaner on the ssd pool, [`super::build_node`]).
//! What it does not deploy: BinderHub (skipped on kind with that reason); scenarios that need
//! a cluster are skipped on local.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::cluster::{self, Programs, Up};
use super::hub_chart::{self, ChartSource, Helm, HubDbVolume};
use super::hub_stack::{self, KindHubStack, StackDeclaration};
use super::kube::KindCluster;
use super::log_follow::LogFollower;
use super::pools::{self, POOL_LABEL};
use super::watch::Watcher;
use crate::backend::local::overrides::hub_extra_config;
use crate::backend::{Backend, BackendError, BackendKind, ComponentStatus, Deployed, ProcessSignal, RunContext, SamplerTask};
use crate::env::Env;
use crate::fault::DeployPlan;
use crate::observe::hub_log::HubLogSource;
use crate::profile::Profile;
use crate::scenario::{Deployment, Needs, Scenario};

/// The kind backend before a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kind;

/// Why this machine cannot run `scenario`'s needs and deployment on kind now (cheap: files only).
/// `profile`'s pins name the stack images looked for.
fn missing(needs: &Needs, deploy: Option<&Deployment>, profile: Option<&Profile>) -> Option<String> {
    // The build node comes with the chart, and so does the hub.
    let hub = deploy.is_some_and(|d| d.hub.is_some() || d.node.is_some());
    if let Some(d) = deploy {
        if d.binder.is_some() {
            return Some("deploys BinderHub: the binderhub chart on kind is not built yet; it runs on local".into());
        }
        if let Some(why) = d.node.as_ref().and_then(super::build_node::cannot_be) {
            return Some(why);
        }
    }
    if !needs.cluster && !hub {
        return Some("deploys nothing on a cluster: it runs on local".into());
    }
    if let Err(why) = crate::component::node_disk::requires_root() {
        return Some(format!("a kind cluster {why}"));
    }
    let pins = match crate::toolchain::Pins::load_default() {
        Ok(base) => match profile {
            Some(profile) => profile.pins(&base),
            None => base,
        },
        Err(e) => return Some(format!("{e}")),
    };
    let kube_pins = pins.kubernetes.clone()?;
    let home = crate::paths::hubchaos_home();
    if let Err(why) = Programs::cached(&home, &kube_pins) {
        return Some(why);
    }
    if !Path::new(super::test_image::BUSYBOX).is_file() {
        return Some("needs Debian's busybox-static for the cluster's test image (`make deps` installs it)".into());
    }
    if hub {
        if hub_chart::helm_program(&home, &kube_pins).is_none() {
            return Some(format!("helm {} is not built: run `make kind-image`", kube_pins.helm));
        }
        // Images the user named are theirs to put on the nodes; a bad name errors the run.
        let ours = hub_chart::StackImages::from_env(&super::stack_image::key(&pins)).map_or(true, |i| i.uses_stack_images());
        if ours && !super::stack_image::tar_path(&home, &pins).is_file() {
            return Some(format!(
                "the hub stack's images are not built: run `make stack-images` (~2 min cold), or name your own in {}",
                hub_chart::NAMED_IMAGE_COMPONENTS.iter().map(|c| hub_chart::image_env(c)).collect::<Vec<_>>().join(", ")
            ));
        }
        let node = deploy.is_some_and(|d| d.node.is_some());
        if node && !super::stack_image::dind_tar_path(&home, &pins).is_file() {
            return Some("the build node's docker daemon image is not built: run `make stack-images`".into());
        }
        if node && matches!(ChartSource::resolve_for(profile), Ok(ChartSource::Given(_))) {
            return Some(
                "deploys a build node (the binderhub chart's docker daemon and image cleaner), which a z2jh chart has not: \
                 it runs on the reference chart (without HUBCHAOS_CHART_JUPYTERHUB)"
                    .into(),
            );
        }
        // A chart named that is not there is bad input, not a missing prerequisite: the run
        // errors on it ([`KindBackend::stack_inputs`]) rather than skip and pass.
    }
    None
}

#[async_trait]
impl BackendKind for Kind {
    fn name(&self) -> &'static str {
        "kind"
    }

    /// The profile is read as the run will read it (`HUBCHAOS_PROFILE`, which `hubchaos run`
    /// sets for the suite). One that does not load is no reason to skip: the run itself fails
    /// on it ([`crate::runner::RunOptions::from_env`]), so here it counts as none.
    fn cannot_run(&self, scenario: &Scenario) -> Option<String> {
        let profile = Profile::from_cli_or_env(None).ok().flatten();
        missing(&scenario.needs, Some(&scenario.deploy), profile.as_ref())
    }

    async fn open(&self, needs: &Needs, ctx: RunContext) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some(reason) = missing(&Needs { cluster: true, ..*needs }, None, ctx.profile.as_ref()) {
            return Err(BackendError::Missing(reason));
        }
        let home = crate::paths::hubchaos_home();
        let pins = crate::toolchain::Pins::load_default().map_err(|e| BackendError::Deploy(e.into()))?;
        let pins = match ctx.profile.as_ref() {
            Some(p) => p.pins(&pins),
            None => pins,
        };
        let kube_pins = pins.kubernetes.clone().context("the pins name no Kubernetes versions").map_err(BackendError::Deploy)?;
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
        let helm = hub_chart::helm_program(&home, &kube_pins);
        Ok(Arc::new(KindBackend {
            ctx,
            up,
            programs,
            pins,
            helm,
            namespace,
            components: Mutex::new(Vec::new()),
            run: Mutex::new(None),
            hub_stack: Mutex::new(None),
            build_node: Mutex::new(None),
        }))
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

    /// Run `script` with `sh -ec` in the node container of `pool` with the file `input` as its
    /// standard input (bounded): how a file of this machine reaches a node (`docker cp` into
    /// a node's tmpfs does not).
    pub async fn exec_on_node_with_input(&self, pool: &str, script: &str, input: &Path, within: Duration) -> anyhow::Result<()> {
        let node = self.node_of(pool)?.to_string();
        let mut cmd = std::process::Command::new(&self.programs.docker);
        cmd.env("DOCKER_HOST", self.layout.engine.docker_host()).args(["exec", "-i", &node, "sh", "-ec", script]);
        let file = std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        let log = self.layout.log();
        let what = format!("docker exec -i on {node}");
        tokio::task::spawn_blocking(move || cluster::run_bounded_with_input(cmd, &what, within, &log, Some(file))).await?.map(drop)
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
    /// The pins with the profile's overrides (the stack images' tag comes from them).
    pins: crate::toolchain::Pins,
    helm: Option<std::path::PathBuf>,
    namespace: String,
    components: Mutex<Vec<String>>,
    run: Mutex<Option<KindRun>>,
    hub_stack: Mutex<Option<Arc<KindHubStack>>>,
    /// The build node's paths, when the scenario declared a node.
    build_node: Mutex<Option<crate::component::node_disk::NodePaths>>,
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

impl KindBackend {
    /// Before the chart: the build node's disk emptied, its images loaded, and the recorder's
    /// listener bound where the chart's cleaner will look for its docker daemon. Returns the
    /// node's paths.
    async fn prepare_build_node(&self, env: &Env, run: &KindRun) -> anyhow::Result<crate::component::node_disk::NodePaths> {
        use super::build_node::{self, BUILD_POOL, DOCKERD, IMAGE_CLEANER};
        use crate::observe::recording_proxy::{RecordingProxy, Upstream};
        build_node::prepare(run).await?;
        let node = run.node_of(BUILD_POOL)?.to_string();
        let engine = self.node_engine();
        let pid = tokio::task::spawn_blocking(move || engine.node_pid(&node)).await??;
        let paths = build_node::paths(pid);
        let started = Instant::now();
        let home = crate::paths::hubchaos_home();
        let key = super::stack_image::key(&self.pins);
        let nodes = [run.node_of(BUILD_POOL)?.to_string()];
        let stack = (super::stack_image::tar_path(&home, &self.pins), super::stack_image::references(&key));
        let dind = (super::stack_image::dind_tar_path(&home, &self.pins), vec![super::stack_image::dind_reference(&key)]);
        for (tar, refs) in [stack, dind] {
            cluster::load_stack_images_on(&self.up.layout, &self.programs, &tar, &refs, &nodes).await?;
        }
        self.ctx.recorder.phase("images-loaded", format!("build node images on {BUILD_POOL} in {:.1} s", started.elapsed().as_secs_f64()));
        let recorder = Arc::new(RecordingProxy::start(DOCKERD, Upstream::Unix(paths.docker_socket.clone()), env.recorder.clone())?);
        recorder.listen_unix(IMAGE_CLEANER, &paths.cleaner_socket)?;
        env.add_request_source(recorder);
        Ok(paths)
    }

    /// After the chart: the docker daemon answers, the scenario's images are made (some kept
    /// in use), as on the local node; faults and workloads find the node through the env.
    async fn finish_build_node(
        &self,
        env: &Env,
        paths: &crate::component::node_disk::NodePaths,
        options: &crate::component::node::NodeOptions,
    ) -> anyhow::Result<()> {
        let api = crate::component::docker_api::DockerApi::new(&paths.docker_socket);
        let answered = super::build_node::await_docker(&api).await?;
        let started = Instant::now();
        crate::component::images::ImageFactory::new(api, &env.run_id, env.seed).make_starting_images(&options.images).await?;
        env.set_node_paths(paths.clone());
        *self.build_node.lock().unwrap() = Some(paths.clone());
        self.ctx.recorder.phase(
            "node-deployed",
            format!(
                "build node: docker answered {:.1} s after the rollout, {} images in {:.1} s",
                answered.as_secs_f64(),
                options.images.len(),
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(())
    }

    /// How the harness reaches the node containers' files.
    fn node_engine(&self) -> super::cgroups::NodeEngine {
        super::cgroups::NodeEngine {
            docker: self.programs.docker.clone(),
            docker_host: self.up.layout.engine.docker_host(),
            log: self.up.layout.log(),
        }
    }

    /// The stack images on the core and user nodes ([`cluster::STACK_POOLS`]; imported where missing).
    async fn load_stack_images(&self) -> anyhow::Result<()> {
        let home = crate::paths::hubchaos_home();
        let tar = super::stack_image::tar_path(&home, &self.pins);
        let refs = super::stack_image::references(&super::stack_image::key(&self.pins));
        for (node, took) in cluster::load_stack_images(&self.up.layout, &self.programs, &tar, &refs).await? {
            if let Some(took) = took {
                self.ctx.recorder.phase("images-loaded", format!("stack images on {node} in {:.1} s", took.as_secs_f64()));
            }
        }
        Ok(())
    }

    /// Volumes of runs whose namespace is gone (killed before their teardown), removed.
    async fn sweep_orphaned_volumes(&self, run: &KindRun) {
        match hub_chart::orphaned_volumes(&self.up.kube).await {
            Ok(orphans) => {
                for (name, ns) in orphans {
                    match remove_volume(run, &name, &ns).await {
                        Ok(()) => self.ctx.recorder.phase("swept", format!("hub database volume {name} of a run gone")),
                        Err(e) => tracing::warn!("sweeping volume {name}: {e:#}"),
                    }
                }
            }
            Err(e) => tracing::warn!("listing hub database volumes: {e:#}"),
        }
    }

    /// The stack's inputs (the pinned toolchain's Python only when `seeding`).
    async fn stack_inputs(&self, seeding: bool) -> anyhow::Result<hub_stack::StackInputs> {
        let helm_program = self.helm.clone().context("helm is not built: run `make kind-image`")?;
        let helm = Helm {
            program: helm_program,
            kubeconfig: self.up.layout.kubeconfig(),
            context: self.up.layout.context(),
            namespace: self.namespace.clone(),
            log: self.ctx.run_dir.join("logs").join("helm.log"),
        };
        let seed_python = match seeding {
            true => Some(crate::backend::local::ensure_toolchain(self.ctx.profile.as_ref(), self.ctx.progress).await?.python()),
            false => None,
        };
        let chart = ChartSource::resolve_for(self.ctx.profile.as_ref())?;
        let images = hub_chart::StackImages::from_env(&super::stack_image::key(&self.pins))?;
        Ok(hub_stack::StackInputs { helm, chart, images, seed_python })
    }
}

/// Delete the hub database volume `name` of namespace `ns` and its directory on the core node.
async fn remove_volume(run: &KindRun, name: &str, ns: &str) -> anyhow::Result<()> {
    run.kube.delete_persistent_volume(name).await?;
    let volume = HubDbVolume::for_namespace(ns, run.node_of(hub_stack::CORE_POOL)?);
    run.exec_on_node(hub_stack::CORE_POOL, &volume.remove_script(), Duration::from_secs(30)).await.map(drop)
}

#[async_trait]
impl Backend for KindBackend {
    fn name(&self) -> &'static str {
        "kind"
    }

    async fn deploy(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Deployed, BackendError> {
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
        let mut components: Vec<String> = pools.keys().map(|p| format!("node/{p}")).collect();
        let run = KindRun {
            kube: self.up.kube.clone(),
            namespace: self.namespace.clone(),
            test_image,
            pools,
            programs: self.programs.clone(),
            layout: self.up.layout.clone(),
        };
        env.set_kind(run.clone());
        *self.run.lock().unwrap() = Some(run.clone());
        let node_ready_s = started.elapsed().as_secs_f64();
        let mut timings = Default::default();
        // A node comes with the chart (the build node), and the hub with it.
        let default_hub = crate::component::hub::HubOptions::default();
        if let Some(hub) = deployment.hub.as_ref().or(deployment.node.as_ref().map(|_| &default_hub)) {
            self.sweep_orphaned_volumes(&run).await;
            let node_started = Instant::now();
            let node = match &deployment.node {
                Some(_) => Some(self.prepare_build_node(env, &run).await.map_err(BackendError::Deploy)?),
                None => None,
            };
            let node_prepared_s = node_started.elapsed().as_secs_f64();
            let inputs = self.stack_inputs(!plan.seed.is_empty()).await.map_err(BackendError::Deploy)?;
            let images_started = Instant::now();
            if inputs.images.uses_stack_images() {
                self.load_stack_images().await.map_err(BackendError::Deploy)?;
            }
            let images_s = images_started.elapsed().as_secs_f64();
            if !inputs.images.named.is_empty() {
                let named: Vec<String> = inputs
                    .images
                    .named
                    .iter()
                    .map(|c| format!("{c}: {}:{}", inputs.images.by_component[c].name, inputs.images.by_component[c].tag))
                    .collect();
                self.ctx.recorder.phase("images-named", named.join(", "));
            }
            let extra_config = hub_extra_config(&hub.extra_config, plan, self.ctx.profile.as_ref(), &env.recorder);
            let (stack, t) = hub_stack::deploy_hub_stack(
                env,
                &run,
                &StackDeclaration { hub, plan, extra_config: &extra_config, node: deployment.node.as_ref() },
                &inputs,
            )
            .await
            .map_err(BackendError::Deploy)?;
            self.ctx.recorder.phase("hub-stack", format!("stack images on the core and user nodes in {images_s:.1} s"));
            *self.hub_stack.lock().unwrap() = Some(Arc::new(stack));
            components.extend(["proxy".to_string(), "hub".to_string()]);
            timings = t;
            if let (Some(paths), Some(options)) = (node, &deployment.node) {
                let started = Instant::now();
                self.finish_build_node(env, &paths, options).await.map_err(BackendError::Readiness)?;
                // Its images loaded, its disk emptied, then (after the chart) its daemon and images.
                timings.node_ready_s = node_prepared_s + started.elapsed().as_secs_f64();
                components.extend([super::build_node::DOCKERD.to_string(), super::build_node::IMAGE_CLEANER.to_string()]);
            }
        }
        *self.components.lock().unwrap() = components.clone();
        let mut deployed = Deployed { components, timings };
        deployed.timings.node_ready_s += node_ready_s;
        Ok(deployed)
    }

    async fn deploy_after_setup(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Duration, BackendError> {
        let (Some(hub), Some(culler)) = (&deployment.hub, &deployment.culler) else {
            return Ok(Duration::ZERO);
        };
        let stack = self
            .hub_stack
            .lock()
            .unwrap()
            .clone()
            .context("the culler arrives at a hub stack, and none was deployed")
            .map_err(BackendError::Deploy)?;
        let run = self.run.lock().unwrap().clone().context("no cluster run").map_err(BackendError::Deploy)?;
        let inputs = self.stack_inputs(false).await.map_err(BackendError::Deploy)?;
        let extra_config = hub_extra_config(&hub.extra_config, plan, self.ctx.profile.as_ref(), &env.recorder);
        let took = hub_stack::deploy_culler(
            env,
            &run,
            &stack,
            &StackDeclaration { hub, plan, extra_config: &extra_config, node: deployment.node.as_ref() },
            culler,
            &inputs,
        )
        .await
        .map_err(BackendError::Readiness)?;
        self.components.lock().unwrap().push("culler".into());
        Ok(took)
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
        let cgroups = super::cgroups::CgroupSampler {
            kube: self.up.kube.clone(),
            namespace: self.namespace.clone(),
            engine: self.node_engine(),
            recorder: self.ctx.recorder.clone(),
            samples: env.samples.clone(),
        };
        let mut tasks: Vec<SamplerTask> = vec![Box::pin(watcher.run(every, stop.clone())), Box::pin(cgroups.run(every, stop.clone()))];
        if self.hub_stack.lock().unwrap().is_some() {
            let mut followed = vec![("hub", hub_chart::pod_selector("hub"), "hub"), ("proxy", hub_chart::pod_selector("proxy"), "chp")];
            let build_node = self.build_node.lock().unwrap().clone();
            if build_node.is_some() {
                for component in [super::build_node::DOCKERD, super::build_node::IMAGE_CLEANER] {
                    let selector = super::build_node::pod_selector(component).expect("a build node component");
                    followed.push((component, selector, super::build_node::container_of(component)));
                }
            }
            let restarts = hub_stack::RestartWatcher {
                kube: self.up.kube.clone(),
                namespace: self.namespace.clone(),
                recorder: self.ctx.recorder.clone(),
                components: followed.iter().map(|(c, selector, _)| (c.to_string(), selector.clone())).collect(),
            };
            tasks.push(Box::pin(restarts.run(every, stop.clone())));
            for (component, selector, container) in followed {
                let follower = LogFollower {
                    client: self.up.kube.client(),
                    namespace: self.namespace.clone(),
                    selector,
                    container: container.into(),
                    path: self.ctx.run_dir.join("logs").join(format!("{component}.log")),
                };
                tasks.push(Box::pin(follower.run(stop.clone())));
            }
            // The build node's disk and images, sampled as the local node's; the cleaner's
            // cycles, deletions and errors read from its log as there.
            if let Some(paths) = build_node {
                use crate::component::image_cleaner::{CYCLE_LINE, DELETED_LINE, ERROR_LINE, IMAGE_CLEANER, START_LINE};
                let disk = crate::observe::disk::DiskSampler { path: paths.data_root.clone(), every };
                let docker = crate::observe::docker::DockerSampler {
                    api: crate::component::docker_api::DockerApi::new(&paths.docker_socket),
                    every: every * 2,
                };
                tasks.push(Box::pin(disk.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
                tasks.push(Box::pin(docker.run(env.recorder.clone(), env.samples.clone(), stop.clone())));
                let log = self.ctx.run_dir.join("logs").join(format!("{IMAGE_CLEANER}.log"));
                match crate::observe::logs::LogWatcher::new(IMAGE_CLEANER, log, &[START_LINE, CYCLE_LINE, DELETED_LINE, ERROR_LINE]) {
                    Ok(watcher) => tasks.push(Box::pin(watcher.run(env.recorder.clone(), stop.clone()))),
                    Err(e) => tracing::warn!("the cleaner's log watcher: {e:#}"),
                }
            }
        }
        tasks
    }

    fn hub_log(&self) -> Option<HubLogSource> {
        self.hub_stack.lock().unwrap().is_some().then(|| hub_stack::hub_log_source(&self.ctx.run_dir))
    }

    /// Kill: the component's pod deleted with no grace (its Deployment makes a new one, as
    /// after a node loss). Pause and Resume: the pod's cgroup frozen and thawed (its processes
    /// stop where they are, as with SIGSTOP; the kubelet sees no exit).
    async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()> {
        if !self.components().iter().any(|c| c == component) || component.starts_with("node/") {
            bail!("`{component}` is not a component of this kind run (it has: {:?})", self.components());
        }
        let selector = super::build_node::pod_selector(component).unwrap_or_else(|| hub_chart::pod_selector(component));
        match signal {
            ProcessSignal::Kill => {
                let pods = self.up.kube.list_pods(&self.namespace, &selector).await?;
                anyhow::ensure!(!pods.is_empty(), "no pod of `{component}` to kill");
                for p in pods {
                    let name = p.metadata.name.unwrap_or_default();
                    self.up.kube.delete_pod(&self.namespace, &name, Duration::ZERO).await?;
                    self.ctx.recorder.phase("pod-killed", format!("{component}: pod {name} deleted with no grace"));
                }
                Ok(())
            }
            ProcessSignal::Pause | ProcessSignal::Resume => {
                let frozen = signal == ProcessSignal::Pause;
                let pods = self.up.kube.list_pods(&self.namespace, &selector).await?;
                let live: Vec<_> = pods.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
                anyhow::ensure!(!live.is_empty(), "no pod of `{component}` to {}", if frozen { "freeze" } else { "thaw" });
                for p in live {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let uid = p.metadata.uid.clone().context("a pod without a uid")?;
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).with_context(|| format!("pod {name} is on no node"))?;
                    super::cgroups::set_frozen(&self.node_engine(), &node, &uid, frozen).await?;
                    self.ctx
                        .recorder
                        .phase(if frozen { "pod-frozen" } else { "pod-thawed" }, format!("{component}: pod {name}'s cgroup on {node}"));
                }
                Ok(())
            }
        }
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

    /// The namespace deleted (the release, its pods and claim with it), then the hub
    /// database's volume and its directory on the core node.
    async fn stop_components(&self) -> Vec<String> {
        let mut errors = Vec::new();
        // The build node's containers first, through its daemon (which stops them as it goes
        // only within its pod's grace period).
        let build_node = self.build_node.lock().unwrap().clone();
        if let Some(paths) = build_node {
            let api = crate::component::docker_api::DockerApi::new(&paths.docker_socket);
            let factory = crate::component::images::ImageFactory::new(api, &self.ctx.run_id, 0);
            if let Err(e) = factory.remove_containers().await {
                errors.push(format!("removing the build node's containers: {e:#}"));
            }
        }
        if let Err(e) = self.up.kube.delete_namespace_and_wait(&self.namespace, Duration::from_secs(90)).await {
            errors.push(format!("deleting namespace {}: {e:#}", self.namespace));
        }
        let stack = self.hub_stack.lock().unwrap().take();
        let run = self.run.lock().unwrap().clone();
        let build_node = self.build_node.lock().unwrap().take();
        if let (Some(_), Some(run)) = (build_node, &run) {
            if let Err(e) =
                run.exec_on_node(super::build_node::BUILD_POOL, &super::build_node::cleanup_script(), Duration::from_secs(60)).await
            {
                errors.push(format!("emptying the build node's data root: {e:#}"));
            }
        }
        if let (Some(stack), Some(run)) = (stack, run) {
            if let Err(e) = remove_volume(&run, &stack.volume.name, &stack.volume.namespace).await {
                errors.push(format!("{e:#}"));
            }
        }
        errors
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
        let nothing = Scenario::new("hub", "t", "");
        let on_kind = Kind.cannot_run(&nothing).expect("a scenario that deploys nothing on a cluster is local's");
        assert!(on_kind.contains("runs on local"), "{on_kind}");
        let on_local = Local.cannot_run(&cluster_scenario()).expect("a cluster scenario does not run on local");
        assert!(on_local.contains("kind"), "{on_local}");
        let mut with_node = cluster_scenario();
        with_node.deploy = Deployment::node(crate::component::node::NodeOptions::disk_mb(64));
        let why = Kind.cannot_run(&with_node).unwrap();
        assert!(why.contains("node disk of 64 MB") && why.contains("300 MiB"), "the build node's disk is the cluster's: {why}");
        // A local node scenario is refused for its node, not as one that deploys nothing.
        let mut local_node = Scenario::new("cleaner", "t", "");
        local_node.deploy = Deployment::node(crate::component::node::NodeOptions::disk_mb(64));
        assert!(Kind.cannot_run(&local_node).unwrap().contains("node disk of 64 MB"));
        // One the build node can be is not refused for its node (if at all, for the machine).
        local_node.deploy = Deployment::node(crate::component::node::NodeOptions::disk_mb(300));
        assert!(Kind.cannot_run(&local_node).is_none_or(|why| !why.contains("node disk") && !why.contains("deploys nothing")));
    }
}
