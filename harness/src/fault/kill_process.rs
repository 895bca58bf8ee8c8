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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::observe::history::{FaultEvent, FaultPhase};
    use crate::testkit::{env_with, FakeBackend};

    fn faults(env: &Env) -> Vec<FaultEvent> {
        env.recorder.history().faults().map(|(_, f)| f.clone()).collect()
    }

    #[tokio::test]
    async fn it_sends_sigkill_through_the_backend_and_records_its_window() {
        let backend = Arc::new(FakeBackend::default());
        backend.add_component("proxy", Some(4242));
        let (env, _dir) = env_with(backend.clone());
        let guard = KillProcess::of("proxy").inject(&env).await.unwrap();
        assert_eq!(backend.calls(), ["signal proxy Kill"]);
        guard.heal().await.unwrap();
        // Nothing to undo: the supervisor's restart is the recovery, so no second signal.
        assert_eq!(backend.calls(), ["signal proxy Kill"]);
        let f = faults(&env);
        assert_eq!(
            f.iter().map(|f| (f.kind.as_str(), f.target.as_str(), f.phase)).collect::<Vec<_>>(),
            [("kill-process", "proxy", FaultPhase::Injected), ("kill-process", "proxy", FaultPhase::Healed)]
        );
        assert_eq!(f[0].detail, "SIGKILL pid 4242");
    }

    #[tokio::test]
    async fn an_unknown_component_fails_the_injection_and_records_nothing() {
        let backend = Arc::new(FakeBackend::default());
        let (env, _dir) = env_with(backend.clone());
        let err = KillProcess::of("hub").inject(&env).await.unwrap_err();
        assert!(format!("{err:#}").contains("no component named hub"), "{err:#}");
        assert!(faults(&env).is_empty(), "{:?}", faults(&env));
    }
}
