//! Where a run happens: one seam, two backends (after Jepsen's split between the system's
//! protocol and how commands reach a node).
//!
//! A [`BackendKind`] is a backend before a run: its name (the first part of every test name),
//! which scenarios it cannot run and why (for `hubchaos list`), and how to open it for one run
//! (its prerequisites: a missing one is [`BackendError::Missing`], and the scenario is
//! skipped with that reason). The opened [`Backend`] deploys a whole [`Deployment`] with its
//! [`DeployPlan`] and says what it deployed ([`Deployed`]); it supplies its samplers, writes
//! each component's log under the run dir, records restarts as events in the history, and
//! carries the capabilities faults use (signal, stop, status). Its teardown ends everything
//! the run made.
//!
//! `local` ([`local`]) runs every component as a supervised process group on 127.0.0.1; its
//! process recipes (command, readiness, restart policy), the run marker and the sweep live
//! under it. The test kit's fake backend (`testkit`, built for tests only) deploys nothing and records every call.

pub mod kind;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::env::Env;
use crate::fault::DeployPlan;
use crate::observe::history::Recorder;
use crate::observe::hub_log::HubLogSource;
use crate::profile::Profile;
use crate::scenario::{Deployment, Needs, Scenario};

/// Why a backend could not do its part. The runner maps each to an outcome.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A prerequisite of the machine is missing (root, docker, BinderHub, a cluster): the
    /// scenario is skipped with this reason, which says how to provide it.
    #[error("{0}")]
    Missing(String),
    /// Installing or starting something failed: the run is Errored.
    #[error("{0:#}")]
    Deploy(anyhow::Error),
    /// A component started but did not become ready in time: the run is Errored.
    #[error("{0:#}")]
    Readiness(anyhow::Error),
}

impl BackendError {
    /// `Deploy`, for `?` on anyhow results.
    pub fn deploy(e: impl Into<anyhow::Error>) -> Self {
        BackendError::Deploy(e.into())
    }
}

/// What every run gives a backend when it opens it.
pub struct RunContext {
    /// Carried by every process and resource of the run, so a sweep finds them.
    pub run_id: String,
    /// `target/hubchaos/runs/<run-id>/<scenario>/`; logs go to its `logs/`.
    pub run_dir: PathBuf,
    /// Where restarts and phases are recorded.
    pub recorder: Recorder,
    pub profile: Option<Profile>,
    /// Show install progress on stderr.
    pub progress: bool,
}

/// A backend before a run.
#[async_trait]
pub trait BackendKind: Send + Sync {
    /// `local` or `kind`: the first part of every test name.
    fn name(&self) -> &'static str;

    /// Why this backend cannot run `scenario` on this machine now (`None`: it can). Cheap
    /// (no installs, no network): `hubchaos list` and the test list call it.
    fn cannot_run(&self, scenario: &Scenario) -> Option<String>;

    /// Prepare for one run that needs `needs` (sweep what killed runs left, install what is
    /// missing) and return the live backend.
    async fn open(&self, needs: &Needs, ctx: RunContext) -> Result<std::sync::Arc<dyn Backend>, BackendError>;
}

/// How long each part took to become ready (a figure of every run).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DeployTimings {
    pub seeded_users: u64,
    pub seed_s: f64,
    pub proxy_ready_s: f64,
    pub hub_ready_s: f64,
    pub culler_ready_s: f64,
    /// Proxy + hub (+ culler when it is deployed), excluding seeding.
    pub stack_ready_s: f64,
    /// The node (disk, dockerd, images, image cleaner), when the scenario declares one.
    pub node_ready_s: f64,
    /// BinderHub (base image, sample repos, BinderHub ready), when the scenario declares it.
    pub binder_ready_s: f64,
}

/// What a deploy brought up. The hub's endpoints are on the [`Env`] (`env.hub()`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deployed {
    /// Components in deploy order.
    pub components: Vec<String>,
    pub timings: DeployTimings,
}

/// A signal a fault can send. Kept to the ones that model real failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProcessSignal {
    /// SIGKILL: the process dies without cleanup (OOM kill, node loss).
    Kill,
    /// SIGSTOP: frozen (a stuck event loop, a paused VM).
    Pause,
    /// SIGCONT: the inverse of Pause.
    Resume,
}

/// The live state of one component, for reports and faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    /// The process (group) id on `local`; `None` where there is none now.
    pub pid: Option<u32>,
    pub restarts: u32,
    pub running: bool,
}

/// A sampler loop the runner spawns at step 5; it ends when its stop token is cancelled.
pub type SamplerTask = BoxFuture<'static, ()>;

/// A backend opened for one run.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The kind's name (`local`, `kind`).
    fn name(&self) -> &'static str;

    /// Deploy what `deployment` declares with `plan`'s overrides (seeded users, extra hub
    /// config, environment overrides), each component awaited until ready (bounded). The
    /// hub's endpoints are set on `env`. What arrives after the setup (the culler) is left to
    /// [`deploy_after_setup`](Self::deploy_after_setup).
    async fn deploy(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Deployed, BackendError>;

    /// Components that arrive once the setup is in place (the 2018 culler arrived at a hub
    /// where users had piled up). Returns how long they took to be ready.
    async fn deploy_after_setup(&self, env: &Env, deployment: &Deployment, plan: &DeployPlan) -> Result<Duration, BackendError>;

    /// (Logs: every component's output is written to `logs/<component>.log` in the run dir
    /// while it runs; step 9 only reads the hub's requests from it, see
    /// [`hub_log`](Self::hub_log).)
    ///
    /// This backend's samplers (processes, node disk, docker, residue), each stopping when
    /// `stop` is cancelled. Samplers every backend shares (the hub's metrics and state) are
    /// the runner's.
    fn samplers(&self, env: &Env, every: Duration, stop: &CancellationToken) -> Vec<SamplerTask>;

    /// The hub's own log and whose token each recorder client sends, for step 9 to read the
    /// requests the hub logged ([`crate::observe::hub_log`]). `None`: no hub was deployed, or
    /// this backend cannot give its log yet.
    fn hub_log(&self) -> Option<HubLogSource> {
        None
    }

    /// Send a signal to a component.
    async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()>;

    /// Stop a component for good (no restart), bounded.
    async fn stop(&self, component: &str) -> anyhow::Result<()>;

    fn status(&self, component: &str) -> Option<ComponentStatus>;

    /// Names of deployed components, in deploy order.
    fn components(&self) -> Vec<String>;

    /// Stop every component, in reverse deploy order (bounded, errors collected, not thrown).
    /// The runner then drains the env's cleanup stack and calls [`release`](Self::release)
    /// ([`crate::runner`], step 11).
    async fn stop_components(&self) -> Vec<String>;

    /// After the cleanup stack: end what is still left of the run (on `local`: processes
    /// carrying its id) and remove its marker. Errors are collected, not thrown.
    async fn release(&self) -> Vec<String>;
}
