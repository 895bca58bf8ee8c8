//! Workloads drive the system during the run and record every operation as an `Op`
//! (invoke .. complete: Ok / Fail / Indeterminate). They stop when the run's token is cancelled
//! and are bounded in count and time on their own as well.

pub mod build_streams;
pub mod cluster_pods;
pub mod fill_node_disk;
pub mod hub_latency;
pub mod import_images;
pub mod keep_active;
pub mod launch_storm;
pub mod pool_probes;
pub mod reach_servers;
pub mod spawn_churn;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use build_streams::{BuildRequest, BuildStreams};
pub use fill_node_disk::FillNodeDisk;
pub use hub_latency::HubLatency;
pub use import_images::ImportImages;
pub use keep_active::KeepActive;
pub use launch_storm::LaunchStorm;
pub use pool_probes::PoolProbes;
pub use reach_servers::ReachServers;
pub use spawn_churn::SpawnChurn;

use crate::env::Env;

#[async_trait]
pub trait Workload: Send + Sync + std::fmt::Debug + crate::scenario::Declaration {
    /// Stable kebab-case name, e.g. `keep-active`.
    fn name(&self) -> String;
    /// Run until `stop` is cancelled (or the workload's own bound is reached).
    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()>;
}

/// Record one op; `started` is `env.now()` at invoke.
pub(crate) fn record_op(
    env: &Env,
    workload: &str,
    op: &str,
    user: Option<&str>,
    started: std::time::Duration,
    result: &anyhow::Result<()>,
) {
    use crate::observe::history::{Event, OpRecord, OpResult};
    let (result, detail) = match result {
        Ok(()) => (OpResult::Ok, String::new()),
        Err(e) if e.downcast_ref::<reqwest::Error>().is_some_and(|r| r.is_timeout()) => (OpResult::Indeterminate, format!("{e:#}")),
        Err(e) => (OpResult::Fail, format!("{e:#}")),
    };
    env.recorder.record_at(
        started,
        Event::Op(OpRecord {
            workload: workload.into(),
            op: op.into(),
            user: user.map(str::to_string),
            result,
            latency: env.now().saturating_sub(started),
            detail,
        }),
    );
}
