//! Observation: what the run saw. The history (requests, ops, faults, restarts, snapshots),
//! the recording proxy that produces request records, the hub's own request log (a second
//! source of them), and the samplers.

pub mod builds;
pub mod disk;
pub mod docker;
pub mod evidence;
pub mod history;
pub mod hub_log;
pub mod hub_state;
pub mod logs;
pub mod procfs;
pub mod prom;
pub mod recording_proxy;
pub mod residue;
pub mod routes;
pub mod samples;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The loop every sampler runs: call `tick` every `every` until `stop` is cancelled. A tick
/// that overruns makes the next ones skip (no burst of catch-up samples).
pub async fn every<F, Fut>(every: Duration, stop: &CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        tick().await;
    }
}
