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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::observe::history::FaultPhase;
    use crate::testkit::{env_with, FakeBackend};

    fn phases(env: &Env) -> Vec<(String, FaultPhase, String)> {
        env.recorder.history().faults().map(|(_, f)| (f.kind.clone(), f.phase, f.detail.clone())).collect()
    }

    #[tokio::test]
    async fn it_pauses_through_the_backend_and_its_heal_resumes() {
        let backend = Arc::new(FakeBackend::default());
        backend.add_component("hub", None);
        let (env, _dir) = env_with(backend.clone());
        let guard = PauseProcess::of("hub").inject(&env).await.unwrap();
        assert_eq!(backend.calls(), ["signal hub Pause"]);
        assert_eq!(phases(&env), [("pause-process".into(), FaultPhase::Injected, "SIGSTOP".into())]);
        guard.heal().await.unwrap();
        assert_eq!(backend.calls(), ["signal hub Pause", "signal hub Resume"]);
        assert_eq!(phases(&env)[1], ("pause-process".into(), FaultPhase::Healed, String::new()));
    }

    #[tokio::test]
    async fn a_dropped_guard_still_resumes_and_says_so() {
        let backend = Arc::new(FakeBackend::default());
        backend.add_component("hub", None);
        let (env, _dir) = env_with(backend.clone());
        drop(PauseProcess::of("hub").inject(&env).await.unwrap());
        for _ in 0..100 {
            if phases(&env).len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(backend.calls(), ["signal hub Pause", "signal hub Resume"]);
        let (_, phase, detail) = &phases(&env)[1];
        assert_eq!((*phase, detail.as_str()), (FaultPhase::HealFailed, "healed from Drop (not by the runner)"));
    }

    #[tokio::test]
    async fn an_unknown_component_fails_the_injection_and_records_nothing() {
        let (env, _dir) = env_with(Arc::new(FakeBackend::default()));
        let err = PauseProcess::of("culler").inject(&env).await.unwrap_err();
        assert!(format!("{err:#}").contains("no component named culler"), "{err:#}");
        assert!(phases(&env).is_empty());
    }
}
