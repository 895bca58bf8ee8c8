//! Probes: live predicates over the running system, composable with [`All`], [`Any`] and
//! [`Not`], awaited with a deadline (after kube-runtime's `wait::Condition` / `await_condition`).
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

/// A probe inside [`All`], [`Any`] or [`Not`] is written as what it asserts and its fields
/// (`scenario.json`; see [`crate::scenario::probe_json`]).
impl serde::Serialize for dyn Probe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::scenario::probe_json(self).serialize(s)
    }
}

/// Every probe holds.
#[derive(Debug, serde::Serialize)]
pub struct All(pub Vec<Box<dyn Probe>>);
/// At least one probe holds.
#[derive(Debug, serde::Serialize)]
pub struct Any(pub Vec<Box<dyn Probe>>);
/// The probe does not hold.
#[derive(Debug, serde::Serialize)]
pub struct Not(pub Box<dyn Probe>);

#[async_trait]
impl Probe for All {
    fn describe(&self) -> String {
        self.0.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" and ")
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        let mut details = Vec::new();
        for p in &self.0 {
            let r = p.probe(env).await;
            if !r.holds {
                return ProbeResult::new(false, format!("{}: {}", p.describe(), r.detail));
            }
            details.push(r.detail);
        }
        ProbeResult::new(true, details.join("; "))
    }
}

#[async_trait]
impl Probe for Any {
    fn describe(&self) -> String {
        self.0.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" or ")
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        let mut details = Vec::new();
        for p in &self.0 {
            let r = p.probe(env).await;
            if r.holds {
                return r;
            }
            details.push(r.detail);
        }
        ProbeResult::new(false, details.join("; "))
    }
}

#[async_trait]
impl Probe for Not {
    fn describe(&self) -> String {
        format!("not ({})", self.0.describe())
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        let r = self.0.probe(env).await;
        ProbeResult::new(!r.holds, r.detail)
    }
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
