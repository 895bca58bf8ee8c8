//! hubchaos: replay the incidents of mybinder.org against the real JupyterHub components.
//!
//! One noun per role, one module per noun:
//!
//! | term | role | module |
//! |---|---|---|
//! | `BackendKind` / `Backend` | where it runs: what it cannot run and why; deploy a whole `Deployment`, its samplers, logs, restarts, signals | [`backend`] |
//! | `Session` | one backend opened for one run with its `Env`, and its teardown | [`runner`] |
//! | `Env` | the live handle of one run: backend, hub endpoints, request sources, run dir, seed, clock, cleanup | [`env`] |
//! | `Component` | hub, proxy, culler, dockerd, image cleaner: how each is configured | [`component`] |
//! | `Fault` / `FaultGuard` / `Schedule` | an injected failure, its heal, when it fires | [`fault`] |
//! | `Workload` | drives the system, records ops | [`workload`] |
//! | `Recorder` / `History` | append-only events -> `history.jsonl` | [`observe::history`] |
//! | `RequestSource` / `HubGateway` | where request events come from; how a client reaches the hub under its name | [`observe::evidence`] |
//! | `RecordingProxy` | the HTTP proxy every harness client of the hub talks through | [`observe::recording_proxy`] |
//! | samplers | periodic metrics -> `samples.jsonl` (Prometheus, hub state, `/proc`, disk, docker) | [`observe`] |
//! | `Probe` / `SteadyState` | live predicates before and after the run | [`probe`], [`scenario`] |
//! | `Check` / `Verdict` | pure functions of the history | [`check`] |
//! | `Scenario` | the declaration | [`scenario`] |
//! | `Outcome` | Passed / Failed / Deviated / Aborted / Errored / Interrupted / Skipped | [`outcome`] |
//! | `Report` | run dir, `summary.md`, plots | [`report`] |
//!
//! The lifecycle of a run is written once, as numbered steps, in [`runner`].
#![forbid(unsafe_code)]

pub mod backend;
pub mod bench;
pub mod catalogue;
pub mod check;
pub mod component;
pub mod doctor;
pub mod env;
pub mod fault;
pub mod observe;
pub mod outcome;
pub mod paths;
pub mod probe;
pub mod profile;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod toolchain;
pub mod workload;

/// Everything a scenario declaration needs, and nothing that runs things.
pub mod prelude {
    pub use std::time::Duration;

    pub use crate::backend::kind::pools::{NO_SSD, SSD};
    pub use crate::check::{
        BuildFailureCause, BuildLeftovers, BuildOutcomes, BuildStarts, BuildsInFlight, BuiltReposLaunch, GaugeSettles, StreamsClose,
    };
    pub use crate::check::{
        Check, ComponentUp, Convergence, Direction, DiskBelow, ErrorClass, ErrorResponses, FailureReason, ImagesSpared, LatencyCeiling,
        LeakSlope, NoDeletion, NoProtectedUserHarmed, RateCeiling, Recovery, Restarts, ReturnsToBaseline, WastedRequests,
    };
    pub use crate::check::{DiskPressure, EvictionsCarryReason, OpsSucceed, PoolUntouched};
    pub use crate::component::binderhub::{BinderOptions, BuildExecutor, RepoSource, BINDERHUB};
    pub use crate::component::culler::CullerOptions;
    pub use crate::component::dockerd::DOCKERD;
    pub use crate::component::hub::HubOptions;
    pub use crate::component::image_cleaner::CleanerOptions;
    pub use crate::component::images::ImageSpec;
    pub use crate::component::node::NodeOptions;
    pub use crate::component::sample_repos::{RepoKind, SampleRepo};
    pub use crate::fault::accumulate_users::{ADMIN, NEVER_STARTED, RUNNING_ACTIVE, RUNNING_IDLE, STOPPED};
    pub use crate::fault::{AccumulateUsers, FloodApi, GitHubApiFault, KillProcess, PauseProcess, Schedule, Scheduled};
    pub use crate::fault::{AddPool, AddonDown, DeletePodsOnPool, KubeletEvictionOff, TaintPool};
    pub use crate::fault::{FillDisk, LeakyHook, Misconfigure, WipeCache};
    pub use crate::fault::{MaskErrors, RemoveImagesInUse};
    pub use crate::observe::hub_state::{ACTIVE_SERVERS, HUB_API};
    pub use crate::observe::procfs::{CHILD_PROCESSES, LISTENING_PORTS, OPEN_FDS, RSS_BYTES, THREADS};
    pub use crate::observe::residue::{HOME_DIRS, RESIDUE, RUNTIME_FILES};
    pub use crate::probe::{HubAnswers, ServersReachable, UserCountAtMost};
    pub use crate::scenario::{Deployment, Expectation, Needs, Scenario, SteadyState};
    pub use crate::workload::hub_latency::HUB_LATENCY;
    pub use crate::workload::{BuildRequest, BuildStreams, LaunchStorm};
    pub use crate::workload::{FillNodeDisk, PoolProbes};
    pub use crate::workload::{HubLatency, KeepActive, ReachServers};
    pub use crate::workload::{ImportImages, SpawnChurn};
}
pub mod soak;
pub mod startup_bench;
#[cfg(test)]
pub mod testkit;
