//! `kill-process`: SIGKILL a component, as an OOM kill or a lost node would. Nothing to heal:
//! the backend's restart policy brings it back, and that recovery is what scenarios judge.

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::backend::ProcessSignal;
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct KillProcess {
    /// Component name, e.g. `proxy`.
    pub component: String,
}

impl KillProcess {
    pub fn of(component: &str) -> Self {
        Self { component: component.into() }
    }
}

#[async_trait]
impl Fault for KillProcess {
    fn kind(&self) -> &'static str {
        "kill-process"
    }

    fn target(&self) -> String {
        self.component.clone()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let pid = env.backend.status(&self.component).and_then(|s| s.pid);
        env.backend.signal(&self.component, ProcessSignal::Kill).await?;
        let detail = pid.map(|p| format!("SIGKILL pid {p}")).unwrap_or_default();
        Ok(FaultGuard::nothing_to_heal(self.kind(), &self.component, detail, &env.recorder))
    }
}
