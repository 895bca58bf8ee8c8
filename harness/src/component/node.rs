//! The node, deployed in one call (lifecycle step 3 for scenarios that declare one): the node
//! disk, the harness's dockerd on it, the recorder in front of dockerd's socket, the images the
//! scenario starts with (some kept in use by a running container), then the image cleaner
//! pointed at the recorder, and a watcher of the cleaner's log.
//!
//! Every resource registers its undo on the run's cleanup stack as it is created, in an order
//! whose reverse is right: the backend's teardown stops the cleaner and dockerd first (reverse
//! deploy order), then the cleanup stack shuts the docker recorder, unmounts what dockerd left
//! under its exec root and removes the socket dir, then unmounts the disk and removes its file.
//! A run killed at any point is swept by the next one: the disk's mount and dockerd's netns
//! mount are in the marker before they exist, every process carries the run id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::docker_api::DockerApi;
use super::dockerd::{DockerdConfig, DOCKERD};
use super::image_cleaner::{docker_host_for, CleanerOptions, CYCLE_LINE, DELETED_LINE, ERROR_LINE, IMAGE_CLEANER, START_LINE};
use super::images::{ImageFactory, ImageSpec};
use super::node_disk::{NodeDisk, NodeLayout};
use crate::backend::ComponentSpec;
use crate::env::Env;
use crate::fault::misconfigure::apply_env_overrides;
use crate::fault::DeployPlan;
use crate::observe::disk::DiskSampler;
use crate::observe::docker::DockerSampler;
use crate::observe::logs::LogWatcher;
use crate::observe::recorder::{RecordingProxy, Upstream};
use crate::profile::{ComponentName, Profile};
use crate::sweep::RunMarker;

/// What a scenario declares about its node (`Deployment::node`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOptions {
    pub disk: NodeDisk,
    /// Images made before the cleaner starts; `true` = kept in use by a running container
    /// (the spec must be runnable: [`ImageSpec::with_busybox`]).
    pub images: Vec<(ImageSpec, bool)>,
    /// The image cleaner, if the scenario runs one.
    pub cleaner: Option<CleanerOptions>,
    pub dockerd_ready_within: Duration,
}

impl NodeOptions {
    /// A node disk of `mb` MB and nothing else yet.
    pub fn disk_mb(mb: u64) -> Self {
        Self { disk: NodeDisk::of_mb(mb), images: Vec::new(), cleaner: None, dockerd_ready_within: Duration::from_secs(30) }
    }

    pub fn inodes(mut self, n: u64) -> Self {
        self.disk = self.disk.with_inodes(n);
        self
    }

    pub fn image(mut self, spec: ImageSpec) -> Self {
        self.images.push((spec, false));
        self
    }

    /// An image kept in use by a running container for the whole run.
    pub fn image_in_use(mut self, spec: ImageSpec) -> Self {
        self.images.push((spec.with_busybox(), true));
        self
    }

    pub fn cleaner(mut self, options: CleanerOptions) -> Self {
        self.cleaner = Some(options);
        self
    }
}

/// How long each part took (a figure of every node run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeTimings {
    pub disk_s: f64,
    pub dockerd_ready_s: f64,
    pub images_s: f64,
    pub cleaner_ready_s: f64,
}

/// The deployed node: what samplers and faults need (faults can also derive the layout from
/// the run dir and id alone).
pub struct NodeHandle {
    pub layout: NodeLayout,
    pub api: DockerApi,
    pub factory: ImageFactory,
    pub recorder: Arc<RecordingProxy>,
    pub timings: NodeTimings,
    /// Whether an image cleaner was deployed (its log is watched).
    pub cleaner: bool,
}

impl NodeHandle {
    /// The samplers of a node (`node-disk` every `every`, `dockerd` every 2 × `every`), to be
    /// spawned with the run's other samplers (lifecycle step 5).
    pub fn samplers(&self, every: Duration) -> (DiskSampler, DockerSampler) {
        (DiskSampler { path: self.layout.data_root.clone(), every }, DockerSampler { api: self.api.clone(), every: every * 2 })
    }
}

fn override_spec(profile: Option<&Profile>, name: ComponentName, plan: &DeployPlan, spec: &mut ComponentSpec) -> Vec<String> {
    if let Some(p) = profile {
        p.apply(name, &mut spec.command);
    }
    apply_env_overrides(spec, &plan.env_overrides)
}

/// Deploy the node. `cleaner_program` is the toolchain's `docker-image-cleaner`
/// (`toolchain.venv_bin("docker-image-cleaner")`). `watch_stop` ends the log watcher (cancel it
/// with the samplers). Blocking parts (mkfs, mount) run on the blocking pool.
pub async fn deploy_node(
    env: &Env,
    marker: &Arc<Mutex<RunMarker>>,
    options: &NodeOptions,
    plan: &DeployPlan,
    cleaner_program: &std::path::Path,
    profile: Option<&Profile>,
    watch_stop: CancellationToken,
) -> anyhow::Result<NodeHandle> {
    let mut timings = NodeTimings::default();
    let layout = NodeLayout::new(&env.run_dir, &env.run_id);

    // The disk: in the marker before it is mounted; unmounted last.
    let started = Instant::now();
    let (disk, l, m) = (options.disk, layout.clone(), marker.clone());
    let mut mounted = tokio::task::spawn_blocking(move || disk.prepare(&l, &m)).await??;
    env.cleanup.push("unmount the node disk", Box::pin(async move { tokio::task::spawn_blocking(move || mounted.unmount()).await? }));
    timings.disk_s = started.elapsed().as_secs_f64();

    // dockerd: its netns mount in the marker before it starts; its leftovers cleaned after the
    // backend has stopped it.
    let dockerd = DockerdConfig::new(layout.clone())?;
    dockerd.prepare(marker)?;
    let leftovers = dockerd.clone();
    env.cleanup.push(
        "unmount what dockerd left, remove its socket dir",
        Box::pin(async move {
            let errors = tokio::task::spawn_blocking(move || leftovers.cleanup()).await?;
            anyhow::ensure!(errors.is_empty(), "{}", errors.join("; "));
            Ok(())
        }),
    );
    let started = Instant::now();
    let mut spec = dockerd.spec(&env.run_dir);
    override_spec(profile, ComponentName::Dockerd, plan, &mut spec);
    env.backend.deploy(spec).await?;
    dockerd.await_ready(options.dockerd_ready_within).await.with_context(|| format!("{DOCKERD} did not answer"))?;
    timings.dockerd_ready_s = started.elapsed().as_secs_f64();

    // The recorder in front of dockerd, with the cleaner's listener.
    let recorder = Arc::new(RecordingProxy::start(DOCKERD, Upstream::Unix(layout.docker_socket.clone()), env.recorder.clone())?);
    recorder.listen_unix(IMAGE_CLEANER, &layout.cleaner_socket)?;
    let r = recorder.clone();
    env.cleanup.push(
        "shut the docker recorder",
        Box::pin(async move {
            r.shutdown().await;
            Ok(())
        }),
    );

    // The starting images, some kept in use.
    let api = dockerd.api();
    let factory = ImageFactory::new(api.clone(), &env.run_id, env.seed);
    let started = Instant::now();
    for (spec, in_use) in &options.images {
        let built = factory.build(spec).await?;
        if *in_use {
            let name = spec.name.trim_start_matches(super::images::REPO_PREFIX).replace('/', "-");
            factory.keep_in_use(&built.reference, &name).await?;
        }
    }
    timings.images_s = started.elapsed().as_secs_f64();

    // The cleaner, through the recorder, its log watched.
    if let Some(cleaner) = &options.cleaner {
        let started = Instant::now();
        let mut spec = cleaner.spec(cleaner_program, &layout.data_root, &docker_host_for(&layout.cleaner_socket), &env.run_dir);
        let applied = override_spec(profile, ComponentName::ImageCleaner, plan, &mut spec);
        if !applied.is_empty() {
            env.recorder.phase("env-overrides", format!("{IMAGE_CLEANER}: {}", applied.join("; ")));
        }
        let log = env.backend.log_path(IMAGE_CLEANER).unwrap_or_else(|| env.run_dir.join("logs").join(format!("{IMAGE_CLEANER}.log")));
        let watcher = LogWatcher::new(IMAGE_CLEANER, log, &[START_LINE, CYCLE_LINE, DELETED_LINE, ERROR_LINE])?;
        tokio::spawn(watcher.run(env.recorder.clone(), watch_stop));
        env.backend.deploy(spec).await?;
        timings.cleaner_ready_s = started.elapsed().as_secs_f64();
    }
    env.recorder.phase("node-deployed", serde_json::to_string(&timings).unwrap_or_default());
    Ok(NodeHandle { layout, api, factory, recorder, timings, cleaner: options.cleaner.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_like_the_scenario() {
        let o = NodeOptions::disk_mb(300)
            .inodes(20_000)
            .image(ImageSpec::sized("old", 50 << 20, 2))
            .image_in_use(ImageSpec::sized("running", 5 << 20, 1))
            .cleaner(CleanerOptions::quick().threshold(80.0));
        assert_eq!(o.disk, NodeDisk::of_mb(300).with_inodes(20_000));
        assert_eq!(o.images.len(), 2);
        assert!(o.images[1].1 && o.images[1].0.busybox, "an image kept in use must be runnable");
        assert_eq!(o.cleaner.unwrap().threshold_high, 80.0);
    }
}
