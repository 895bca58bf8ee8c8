//! `pause-process`: SIGSTOP a component (a hung event loop, a frozen VM); heal is SIGCONT.

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::backend::ProcessSignal;
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PauseProcess {
    pub component: String,
}

impl PauseProcess {
    pub fn of(component: &str) -> Self {
        Self { component: component.into() }
    }
}

#[async_trait]
impl Fault for PauseProcess {
    fn kind(&self) -> &'static str {
        "pause-process"
    }

    fn target(&self) -> String {
        self.component.clone()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        env.backend.signal(&self.component, ProcessSignal::Pause).await?;
        let backend = env.backend.clone();
        let component = self.component.clone();
        Ok(FaultGuard::injected(
            self.kind(),
            &self.component,
            "SIGSTOP",
            &env.recorder,
            Box::new(move || Box::pin(async move { backend.signal(&component, ProcessSignal::Resume).await })),
        ))
    }
}
