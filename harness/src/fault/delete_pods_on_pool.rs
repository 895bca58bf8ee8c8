//! `delete-pods-on-pool`: every pod of the run on one pool's node deleted at once, without
//! grace — a drain aimed at the wrong pool. The negative control of `untouched:<pool>`.

use std::time::Duration;

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::env::Env;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeletePodsOnPool {
    pub pool: String,
}

impl DeletePodsOnPool {
    pub fn on(pool: &str) -> Self {
        Self { pool: pool.into() }
    }
}

#[async_trait]
impl Fault for DeletePodsOnPool {
    fn kind(&self) -> &'static str {
        "delete-pods-on-pool"
    }
    fn target(&self) -> String {
        self.pool.clone()
    }
    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let k = env.kind()?;
        let node = k.node_of(&self.pool)?;
        let pods = k.kube.list_pods(&k.namespace, "").await?;
        let mut deleted = Vec::new();
        for p in pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)) {
            let name = p.metadata.name.clone().unwrap_or_default();
            k.kube.delete_pod(&k.namespace, &name, Duration::ZERO).await?;
            deleted.push(name);
        }
        anyhow::ensure!(!deleted.is_empty(), "no pod of the run on {} ({node}) to delete", self.pool);
        Ok(FaultGuard::nothing_to_heal(self.kind(), &self.pool, format!("deleted {}", deleted.join(", ")), &env.recorder))
    }
}
