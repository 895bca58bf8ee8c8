//! Where a run happens. A [`Backend`] starts and supervises components, tells where they
//! listen, signals them, hands out their logs and the processes to sample.
//!
//! `local` runs every component as a supervised process group on 127.0.0.1. A `kind` backend
//! (cluster + charts, kube-rs) implements the same trait: `deploy` maps to a helm release or a
//! pod, `signal` to `kubectl exec kill` / pod deletion, `logs` to the pod logs, `processes` to
//! the node's cgroup of the pod.

pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use crate::component::command::CommandSpec;

/// How a component says it is ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// An HTTP GET on this URL answers with a status below 500 (401/403 mean "up").
    Http { url: String },
    /// An HTTP GET of `path` on a unix socket answers below 500 (dockerd's `/_ping`).
    UnixHttp { socket: PathBuf, path: String },
    /// The process is running (for programs without an endpoint, e.g. the culler).
    Running,
}

/// What a supervisor does when a component exits, as a pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart with exponential back-off (0.5 s doubling, capped at 10 s, reset after 30 s up).
    Always,
    /// Leave it dead; the exit is still recorded.
    Never,
}

/// Everything needed to start one component.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// `hub`, `proxy`, `culler`, ...: the chart's `component` label.
    pub name: String,
    pub command: CommandSpec,
    /// Working directory (inside the run dir).
    pub cwd: PathBuf,
    pub readiness: Readiness,
    /// How long readiness may take before the deploy fails.
    pub ready_within: Duration,
    pub restart: RestartPolicy,
}

/// A signal a fault can send. Kept to the ones that model real failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSignal {
    /// SIGKILL: the process dies without cleanup (OOM kill, node loss).
    Kill,
    /// SIGTERM: orderly shutdown (pod eviction).
    Terminate,
    /// SIGSTOP: frozen (a stuck event loop, a paused VM).
    Pause,
    /// SIGCONT: the inverse of Pause.
    Resume,
}

/// The live state of one component, for reports and probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub running: bool,
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// `local` or `kind`.
    fn name(&self) -> &'static str;

    /// Start a component and wait (bounded by `spec.ready_within`) until it is ready.
    async fn deploy(&self, spec: ComponentSpec) -> anyhow::Result<()>;

    /// Send a signal to a component's processes.
    async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()>;

    /// Stop a component for good (no restart), bounded.
    async fn stop(&self, component: &str) -> anyhow::Result<()>;

    /// Where the component's output goes (a file on `local`).
    fn log_path(&self, component: &str) -> Option<PathBuf>;

    /// Process ids that make up the component now (for the resource sampler).
    fn processes(&self, component: &str) -> Vec<u32>;

    fn status(&self, component: &str) -> Option<ComponentStatus>;

    /// Names of deployed components, in deploy order.
    fn components(&self) -> Vec<String>;

    /// Stop everything, in reverse deploy order; errors are collected, not thrown.
    async fn teardown(&self) -> Vec<String>;
}
