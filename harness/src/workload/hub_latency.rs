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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;
    use crate::observe::history::{OpRecord, OpResult};
    use crate::testkit::env_with_fake_hub;

    fn pings(env: &Env) -> Vec<OpRecord> {
        env.recorder.history().ops().filter(|(_, o)| o.workload == HUB_LATENCY).map(|(_, o)| o.clone()).collect()
    }

    /// Run `w` until `stop` is cancelled after `for_`; it must end promptly.
    async fn run_for(w: &HubLatency, env: &Env, for_: Duration) {
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(for_).await;
            s.cancel();
        });
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.run(env, stop)).await.expect("stopped by its token").unwrap();
        assert!(t.elapsed() < for_ + Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn every_ping_is_an_op_with_its_result_until_the_token_stops_it() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        let w = HubLatency { every: Duration::from_millis(50) };
        run_for(&w, &env, Duration::from_millis(300)).await;
        let ops = pings(&env);
        assert!((4..=9).contains(&ops.len()), "{ops:?}");
        assert!(ops.iter().all(|o| o.op == "ping" && o.result == OpResult::Ok), "{ops:?}");
        // Each one went through the recorder as the workload's own client.
        let h = env.recorder.history();
        let requests = h.requests().filter(|(_, r)| r.client == HUB_LATENCY && r.route == "/hub/api/").count();
        assert_eq!(requests, ops.len());
        // Nothing after the stop.
        let n = hub.seen.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(hub.seen.lock().unwrap().len(), n);

        hub.api_status.store(503, Ordering::SeqCst);
        run_for(&w, &env, Duration::from_millis(120)).await;
        let failed: Vec<_> = pings(&env).into_iter().filter(|o| o.result == OpResult::Fail).collect();
        assert!(!failed.is_empty() && failed.iter().all(|o| o.detail == "GET /hub/api/ -> 503"), "{failed:?}");
    }

    /// Open loop: a stalled hub does not slow the requests down; they pile up, and those in
    /// flight at the stop are still recorded.
    #[tokio::test]
    async fn a_stalled_hub_gets_a_request_every_period_anyway() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        hub.delay_ms.store(400, Ordering::SeqCst);
        run_for(&HubLatency { every: Duration::from_millis(50) }, &env, Duration::from_millis(300)).await;
        let ops = pings(&env);
        // One request at a time would have made one or two.
        assert!(ops.len() >= 5, "{ops:?}");
        assert!(ops.iter().all(|o| o.result == OpResult::Ok && o.latency >= Duration::from_millis(400)), "{ops:?}");
    }
}
