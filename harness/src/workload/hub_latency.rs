//! `hub-latency`: a steady trickle of cheap requests (`GET /hub/api/`) whose latency shows
//! how responsive the hub is while the culler (or a flood) works: in 2018 the hub became
//! unresponsive long before anything returned an error.
//!
//! Open loop: a request goes out every period whether or not the previous one came back, so a
//! stalled hub shows as many slow requests, not as one slow request and a gap (coordinated
//! omission would hide exactly the stall this is for). In-flight requests are bounded.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::env::Env;

/// The client its requests are recorded as (its own, not the steady-state probes').
pub const HUB_LATENCY: &str = "hub-latency";

/// At most this many requests in flight; beyond it a tick is skipped (and counted).
const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, serde::Serialize)]
pub struct HubLatency {
    #[serde(with = "humantime_serde")]
    pub every: Duration,
}

#[async_trait]
impl Workload for HubLatency {
    fn name(&self) -> String {
        HUB_LATENCY.into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let api = env.hub_api(HUB_LATENCY).await?;
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut skipped = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
                Some(()) = futures::StreamExt::next(&mut in_flight), if !in_flight.is_empty() => continue,
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                skipped += 1;
                continue;
            };
            let api = api.clone();
            in_flight.push(async move {
                let started = env.now();
                let result = match api.ping().await {
                    Ok(200) => Ok(()),
                    Ok(s) => Err(anyhow::anyhow!("GET /hub/api/ -> {s}")),
                    Err(e) => Err(e),
                };
                record_op(env, "hub-latency", "ping", None, started, &result);
                drop(permit);
            });
        }
        // Let what is in flight finish (bounded by the client timeout), so it is recorded.
        while futures::StreamExt::next(&mut in_flight).await.is_some() {}
        if skipped > 0 {
            env.recorder.phase("hub-latency", format!("{skipped} ticks skipped: {MAX_IN_FLIGHT} requests already in flight"));
        }
        Ok(())
    }
}
