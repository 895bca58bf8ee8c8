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
