//! A backend that deploys nothing: every call is appended to [`FakeBackend::calls`] in order,
//! so tests can check the lifecycle's order, and a [`Failure`] makes one step fail the way a
//! real backend's would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::backend::{
    Backend, BackendError, BackendKind, ComponentStatus, DeployTimings, Deployed, ProcessSignal, RunContext, SamplerTask,
};
use crate::env::Env;
use crate::fault::DeployPlan;
use crate::scenario::{Deployment, Needs, Scenario};

/// Which step fails, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `open` finds a prerequisite missing (the run is skipped).
    Missing(String),
    /// `deploy` fails to start something.
    Deploy,
    /// `deploy` starts it but it never becomes ready.
    Readiness,
    /// What arrives after the setup fails to deploy.
    AfterSetup,
}

#[derive(Default)]
pub struct FakeBackend {
    /// Every call, in order: `open`, `deploy`, `deploy-after-setup`, `samplers`,
    /// `sampler-stopped`, `signal <component> <signal>`, `stop <component>`,
    /// `stop-components`, `release`.
    pub calls: Arc<Mutex<Vec<String>>>,
    pub failure: Mutex<Option<Failure>>,
    /// A hub to point the env at when the deployment declares one (a [`super::FakeHub`]).
    pub hub: Mutex<Option<SocketAddr>>,
    components: Mutex<Vec<ComponentStatus>>,
}

impl FakeBackend {
    pub fn failing(failure: Failure) -> Self {
        let b = Self::default();
        *b.failure.lock().unwrap() = Some(failure);
        b
    }

    fn call(&self, what: impl Into<String>) {
        self.calls.lock().unwrap().push(what.into());
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn fails(&self, f: &Failure) -> bool {
        self.failure.lock().unwrap().as_ref() == Some(f)
    }

    fn add(&self, name: &str) {
        self.add_component(name, None);
    }

    /// A running component, as if deployed (for faults that signal one by name).
    pub fn add_component(&self, name: &str, pid: Option<u32>) {
        self.components.lock().unwrap().push(ComponentStatus { name: name.into(), pid, restarts: 0, running: true });
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn deploy(&self, env: &Env, deployment: &Deployment, _plan: &DeployPlan) -> Result<Deployed, BackendError> {
        self.call("deploy");
        if self.fails(&Failure::Deploy) {
            return Err(BackendError::Deploy(anyhow::anyhow!("the fake cannot start hub")));
        }
        if self.fails(&Failure::Readiness) {
            return Err(BackendError::Readiness(anyhow::anyhow!("hub was not ready within 1s")));
        }
        if deployment.hub.is_some() {
            self.add("proxy");
            self.add("hub");
            if let Some(addr) = *self.hub.lock().unwrap() {
                super::attach_hub(env, addr);
            }
        }
        Ok(Deployed { components: self.components(), timings: DeployTimings::default() })
    }

    async fn deploy_after_setup(&self, _env: &Env, deployment: &Deployment, _plan: &DeployPlan) -> Result<Duration, BackendError> {
        if deployment.culler.is_none() {
            return Ok(Duration::ZERO);
        }
        self.call("deploy-after-setup");
        if self.fails(&Failure::AfterSetup) {
            return Err(BackendError::Deploy(anyhow::anyhow!("the fake cannot start the culler")));
        }
        self.add("culler");
        Ok(Duration::from_millis(1))
    }

    fn samplers(&self, _env: &Env, _every: Duration, stop: &CancellationToken) -> Vec<SamplerTask> {
        self.call("samplers");
        let (stop, calls) = (stop.clone(), self.calls.clone());
        vec![Box::pin(async move {
            stop.cancelled().await;
            calls.lock().unwrap().push("sampler-stopped".into());
        })]
    }

    async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()> {
        self.call(format!("signal {component} {signal:?}"));
        anyhow::ensure!(self.status(component).is_some(), "no component named {component}");
        Ok(())
    }

    async fn stop(&self, component: &str) -> anyhow::Result<()> {
        self.call(format!("stop {component}"));
        Ok(())
    }

    fn status(&self, component: &str) -> Option<ComponentStatus> {
        self.components.lock().unwrap().iter().find(|c| c.name == component).cloned()
    }

    fn components(&self) -> Vec<String> {
        self.components.lock().unwrap().iter().map(|c| c.name.clone()).collect()
    }

    async fn stop_components(&self) -> Vec<String> {
        self.call("stop-components");
        Vec::new()
    }

    async fn release(&self) -> Vec<String> {
        self.call("release");
        Vec::new()
    }
}

/// The fake backend before a run: opens `backend` (or fails as told).
pub struct FakeKind {
    pub backend: Arc<FakeBackend>,
    /// `cannot_run` answers this for every scenario.
    pub cannot_run: Option<String>,
}

impl FakeKind {
    pub fn new(backend: FakeBackend) -> Self {
        Self { backend: Arc::new(backend), cannot_run: None }
    }
}

#[async_trait]
impl BackendKind for FakeKind {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn cannot_run(&self, _scenario: &Scenario) -> Option<String> {
        self.cannot_run.clone()
    }

    async fn open(&self, _needs: &Needs, _ctx: RunContext) -> Result<Arc<dyn Backend>, BackendError> {
        self.backend.call("open");
        if let Some(Failure::Missing(why)) = self.backend.failure.lock().unwrap().clone() {
            return Err(BackendError::Missing(why));
        }
        Ok(self.backend.clone())
    }
}
