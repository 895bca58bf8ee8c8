//! `add-pool` and `taint-pool`: a node pool joins the cluster, or is left out of it. kind
//! cannot add nodes to a running cluster, so a pool that "is added" starts tainted
//! `hubchaos.io/pool=<pool>:NoSchedule` (see `backend::kind::pools`) and `add-pool` removes
//! the taint; its heal puts it back. `taint-pool` is the inverse mutant: a pool that should
//! take pods is left tainted (a pool created with the wrong taint, never "added"), so pods
//! pinned to it stay Pending.

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::backend::kind::kube::TaintEffect;
use crate::backend::kind::pools::POOL_LABEL;
use crate::env::Env;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddPool {
    pub pool: String,
}

impl AddPool {
    pub fn named(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

#[async_trait]
impl Fault for AddPool {
    fn kind(&self) -> &'static str {
        "add-pool"
    }
    fn target(&self) -> String {
        self.pool.clone()
    }
    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let k = env.kind()?;
        let node = k.node_of(&self.pool)?.to_string();
        k.kube.remove_taint(&node, POOL_LABEL).await?;
        let (kube, pool) = (k.kube.clone(), self.pool.clone());
        Ok(FaultGuard::injected(
            self.kind(),
            &self.pool,
            format!("{node} untainted"),
            &env.recorder,
            Box::new(move || Box::pin(async move { kube.add_taint(&node, POOL_LABEL, Some(&pool), TaintEffect::NoSchedule).await })),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaintPool {
    pub pool: String,
}

impl TaintPool {
    pub fn named(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

#[async_trait]
impl Fault for TaintPool {
    fn kind(&self) -> &'static str {
        "taint-pool"
    }
    fn target(&self) -> String {
        self.pool.clone()
    }
    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let k = env.kind()?;
        let node = k.node_of(&self.pool)?.to_string();
        k.kube.add_taint(&node, POOL_LABEL, Some(&self.pool), TaintEffect::NoSchedule).await?;
        let kube = k.kube.clone();
        Ok(FaultGuard::injected(
            self.kind(),
            &self.pool,
            format!("{node} tainted {POOL_LABEL}={}:NoSchedule", self.pool),
            &env.recorder,
            Box::new(move || Box::pin(async move { kube.remove_taint(&node, POOL_LABEL).await })),
        ))
    }
}
