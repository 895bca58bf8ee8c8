//! `flood-api`: the 2018 culler bug as a mutant. A client sends
//! `DELETE /hub/api/users/{name}/server` for servers that are not running, round after round.
//! JupyterHub 0.9 answered 400 and the culler never reached the user deletion that followed;
//! JupyterHub 6.1.1 answers 204, so the flood is recognised by what it asks, not by codes.
//!
//! It sends as `as_client` (normally `culler`), through that client's recorder listener, so
//! the culler's checks see exactly what a buggy culler would have sent.

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Fault, FaultGuard};
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct FloodApi {
    pub as_client: String,
    /// Seeded class whose (not running) servers are "stopped" again and again.
    pub class: String,
    pub per_second: f64,
    /// Hard bound on the number of requests, whatever the duration.
    pub max_requests: u64,
}

#[async_trait]
impl Fault for FloodApi {
    fn kind(&self) -> &'static str {
        "flood-api"
    }

    fn target(&self) -> String {
        "hub".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let users = env.recorder.history().seeded().classes.remove(&self.class).unwrap_or_default();
        anyhow::ensure!(!users.is_empty(), "flood-api: no seeded users of class {:?} to target", self.class);
        anyhow::ensure!(self.per_second > 0.0, "flood-api: per_second must be > 0");
        let api = env.hub_api(&self.as_client).await?;
        let stop = env.cancel.child_token();
        let period = Duration::from_secs_f64(1.0 / self.per_second);
        let max = self.max_requests;
        let task_stop = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            for (sent, user) in users.iter().cycle().enumerate() {
                if sent as u64 >= max {
                    break;
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = task_stop.cancelled() => break,
                }
                let api = api.clone();
                let user = user.clone();
                // Fire and forget, as the culler's concurrent requests were; the recorder
                // records the outcome.
                tokio::spawn(async move { api.stop_server(&user, "").await });
            }
        });
        Ok(FaultGuard::injected(
            self.kind(),
            "hub",
            format!("{:.0} stop requests/s as {} on class {}", self.per_second, self.as_client, self.class),
            &env.recorder,
            Box::new(move || {
                Box::pin(async move {
                    stop_flood(stop, task).await;
                    Ok(())
                })
            }),
        ))
    }
}

async fn stop_flood(stop: CancellationToken, task: tokio::task::JoinHandle<()>) {
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
