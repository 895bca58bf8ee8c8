//! The node on the local backend, deployed in one call (lifecycle step 3 for scenarios that
//! declare one): the node disk, the harness's dockerd on it, the recording proxy in front of
//! dockerd's socket (a request source of the run), the images the scenario starts with (some
//! kept in use by a running container), then the image cleaner pointed at the recording proxy,
//! and a watcher of the cleaner's log.
//!
//! Teardown, in the session's order: the request sources are closed first (the cleaner's last
//! requests recorded), the backend stops the cleaner and dockerd (reverse deploy order), then
//! the cleanup stack, in reverse of how the undos were pushed: it unmounts what dockerd left
//! under its exec root and removes the socket dir, then unmounts the disk and removes its file.
//! A run killed at any point is swept by the next one: the disk's mount and dockerd's netns
//! mount are in the marker before they exist, every process carries the run id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::overrides::apply_recorded;
use super::LocalBackend;
use crate::component::docker_api::DockerApi;
use crate::component::dockerd::{DockerdConfig, DOCKERD};
use crate::component::image_cleaner::{docker_host_for, CYCLE_LINE, DELETED_LINE, ERROR_LINE, IMAGE_CLEANER, START_LINE};
use crate::component::images::ImageFactory;
use crate::component::node::NodeOptions;
use crate::component::node_disk::NodeLayout;
use crate::env::Env;
use crate::fault::DeployPlan;
use crate::observe::disk::DiskSampler;
use crate::observe::docker::DockerSampler;
use crate::observe::logs::LogWatcher;
use crate::observe::recording_proxy::{RecordingProxy, Upstream};

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
}

impl NodeHandle {
    /// The samplers of a node (`node-disk` every `every`, `dockerd` every 2 × `every`), to be
    /// spawned with the run's other samplers (lifecycle step 5).
    pub fn samplers(&self, every: Duration) -> (DiskSampler, DockerSampler) {
        (DiskSampler { path: self.layout.data_root.clone(), every }, DockerSampler { api: self.api.clone(), every: every * 2 })
    }
}

/// Deploy the node with `local`'s supervisor, marker, toolchain and profile; the cleaner's log
/// watcher ends with `local`'s node stop token (cancelled with the samplers). Blocking parts (mkfs, mount) run on the blocking pool.
pub async fn deploy_node(env: &Env, local: &LocalBackend, options: &NodeOptions, plan: &DeployPlan) -> anyhow::Result<NodeHandle> {
    let (supervisor, marker, profile) = (&local.supervisor, &local.marker, local.profile.as_ref());
    let cleaner_program = local.toolchain.venv_bin("docker-image-cleaner");
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
    // Its readiness (`GET /_ping` on its socket) is what the supervisor awaits, bounded by the
    // scenario's `dockerd_ready_within`.
    let dockerd = DockerdConfig { ready_within: options.dockerd_ready_within, ..DockerdConfig::new(layout.clone())? };
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
    apply_recorded(&mut spec, profile, plan, &env.recorder);
    supervisor.deploy(spec).await?;
    timings.dockerd_ready_s = started.elapsed().as_secs_f64();

    // The recorder in front of dockerd, with the cleaner's listener.
    let recorder = Arc::new(RecordingProxy::start(DOCKERD, Upstream::Unix(layout.docker_socket.clone()), env.recorder.clone())?);
    recorder.listen_unix(IMAGE_CLEANER, &layout.cleaner_socket)?;
    env.add_request_source(recorder.clone());

    // The starting images, some kept in use.
    let api = dockerd.api();
    let factory = ImageFactory::new(api.clone(), &env.run_id, env.seed);
    let started = Instant::now();
    factory.make_starting_images(&options.images).await?;
    timings.images_s = started.elapsed().as_secs_f64();

    // The cleaner, through the recorder, its log watched.
    if let Some(cleaner) = &options.cleaner {
        let started = Instant::now();
        let mut spec = cleaner.spec(&cleaner_program, &layout.data_root, &docker_host_for(&layout.cleaner_socket), &env.run_dir);
        apply_recorded(&mut spec, profile, plan, &env.recorder);
        let log = supervisor.log_file(IMAGE_CLEANER);
        let watcher = LogWatcher::new(IMAGE_CLEANER, log, &[START_LINE, CYCLE_LINE, DELETED_LINE, ERROR_LINE])?;
        tokio::spawn(watcher.run(env.recorder.clone(), local.node_stop.clone()));
        supervisor.deploy(spec).await?;
        timings.cleaner_ready_s = started.elapsed().as_secs_f64();
    }
    env.recorder.phase("node-deployed", serde_json::to_string(&timings).unwrap_or_default());
    Ok(NodeHandle { layout, api })
}
