//! `hub-latency`: a steady trickle of cheap requests (`GET /hub/api/`) whose latency shows
//! how responsive the hub is while the culler (or a flood) works: in 2018 the hub became
//! unresponsive long before anything returned an error.

use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::env::Env;
use crate::probe::hub::PROBE_CLIENT;

#[derive(Debug, Clone)]
pub struct HubLatency {
    pub every: Duration,
}

#[async_trait]
impl Workload for HubLatency {
    fn name(&self) -> String {
        "hub-latency".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let api = env.hub_api(PROBE_CLIENT).await?;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            let started = env.now();
            let result = match api.ping().await {
                Ok(200) => Ok(()),
                Ok(s) => Err(anyhow::anyhow!("GET /hub/api/ -> {s}")),
                Err(e) => Err(e),
            };
            record_op(env, "hub-latency", "ping", None, started, &result);
            if result.is_err() && stop.is_cancelled() {
                bail!("stopped");
            }
        }
    }
}
