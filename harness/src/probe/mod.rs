//! Probes: live predicates over the running system, awaited with a deadline (after
//! kube-runtime's `wait::Condition` / `await_condition`).
//! Steady state is a list of probes checked before (fail => Aborted) and after the run
//! (fail => Deviated).

pub mod hub;

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::env::Env;

pub use hub::{HubAnswers, ServersReachable, UserCountAtMost};

/// One evaluation of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub holds: bool,
    /// What was seen, e.g. "3 of 5 servers answer through the proxy".
    pub detail: String,
}

impl ProbeResult {
    pub fn new(holds: bool, detail: impl Into<String>) -> Self {
        Self { holds, detail: detail.into() }
    }
}

#[async_trait]
pub trait Probe: Send + Sync + std::fmt::Debug + crate::scenario::Declaration {
    /// What must hold, e.g. "every running server answers through the proxy".
    fn describe(&self) -> String;
    async fn probe(&self, env: &Env) -> ProbeResult;
}

/// How an awaited probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// It held after this long.
    Held(Duration, ProbeResult),
    /// It never held within the deadline; the last result says what was seen.
    TimedOut(ProbeResult),
    /// The run was cancelled while waiting.
    Cancelled,
}

/// Evaluate `probe` every `every` until it holds, the deadline passes or the run is cancelled.
pub async fn await_probe(probe: &dyn Probe, env: &Env, within: Duration, every: Duration) -> Awaited {
    let start = Instant::now();
    loop {
        let r = probe.probe(env).await;
        if r.holds {
            return Awaited::Held(start.elapsed(), r);
        }
        if start.elapsed() >= within {
            return Awaited::TimedOut(r);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = env.cancel.cancelled() => return Awaited::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::testkit::env_with_fake_hub;

    const EVERY: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn an_awaited_probe_holds_as_soon_as_it_holds() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        hub.api_status.store(503, Ordering::SeqCst);
        let h = hub.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            h.api_status.store(0, Ordering::SeqCst);
        });
        match await_probe(&HubAnswers, &env, Duration::from_secs(5), EVERY).await {
            Awaited::Held(after, r) => {
                assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(2), "{after:?}");
                assert_eq!(r.detail, "GET /hub/api/ -> 200");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_awaited_probe_times_out_with_what_it_saw_last() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        hub.api_status.store(503, Ordering::SeqCst);
        let within = Duration::from_millis(400);
        let t = Instant::now();
        let got = await_probe(&HubAnswers, &env, within, EVERY).await;
        assert!(t.elapsed() >= within && t.elapsed() < within + Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(got, Awaited::TimedOut(ProbeResult::new(false, "GET /hub/api/ -> 503")));
        // It kept asking until the deadline.
        assert!(hub.seen.lock().unwrap().len() >= 4, "{:?}", hub.seen.lock().unwrap());
    }

    #[tokio::test]
    async fn cancelling_the_run_ends_the_wait() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        hub.api_status.store(503, Ordering::SeqCst);
        let cancel = env.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
        });
        let t = Instant::now();
        let got = await_probe(&HubAnswers, &env, Duration::from_secs(30), Duration::from_secs(10)).await;
        assert_eq!(got, Awaited::Cancelled);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
