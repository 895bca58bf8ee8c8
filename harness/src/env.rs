//! The live handle of one run: backend, clients, run dir, seed, clock, cleanup stack.
//! Faults, workloads and probes get a `&Env` and nothing else, so a scenario never touches
//! tokio, hyper or `std::process` directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::component::hub_api::HubApi;
use crate::observe::evidence::{HubGateway, RequestSource};
use crate::observe::history::Recorder;
use crate::observe::samples::SampleSink;

/// How long one request of a harness client may take before it counts as failed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the deployed hub can be reached, and with which credentials. The same on every
/// backend: what only one backend's components need (the local culler's token) stays in that
/// backend.
pub struct HubEndpoints {
    /// The hub's own HTTP server, not through the recorder: for the samplers (metrics, state)
    /// and benchmarks, whose requests are not part of the history.
    pub hub_addr: SocketAddr,
    /// The proxy's public URL, e.g. `http://127.0.0.1:PORT` (single-user servers live under it).
    pub public_url: String,
    /// Token of the harness service (admin scopes, read:metrics).
    pub harness_token: String,
    /// How each harness client reaches the hub, recorded under its name.
    pub gateway: Arc<dyn HubGateway>,
}

impl HubEndpoints {
    /// The address `client` sends its hub requests to: everything sent there is recorded as
    /// coming from `client`.
    pub async fn client_addr(&self, client: &str) -> anyhow::Result<SocketAddr> {
        self.gateway.client_addr(client).await
    }

    /// `http://127.0.0.1:PORT/hub/api` for `client`.
    pub async fn api_url(&self, client: &str) -> anyhow::Result<String> {
        Ok(format!("http://{}/hub/api", self.client_addr(client).await?))
    }
}

type Undo = (String, BoxFuture<'static, anyhow::Result<()>>);

/// Undo steps registered as resources are created; drained in reverse, each bounded by its
/// own timeout, errors collected not thrown (lifecycle step 11).
#[derive(Default)]
pub struct CleanupStack {
    steps: Mutex<Vec<Undo>>,
}

impl CleanupStack {
    pub fn push(&self, what: impl Into<String>, undo: BoxFuture<'static, anyhow::Result<()>>) {
        self.steps.lock().unwrap().push((what.into(), undo));
    }

    pub fn len(&self) -> usize {
        self.steps.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn drain(&self, each_within: Duration) -> Vec<String> {
        let mut errors = Vec::new();
        loop {
            let Some((what, undo)) = self.steps.lock().unwrap().pop() else { break };
            match tokio::time::timeout(each_within, undo).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("{what}: {e:#}")),
                Err(_) => errors.push(format!("{what}: did not finish within {each_within:?}")),
            }
        }
        errors
    }
}

pub struct Env {
    pub run_id: String,
    /// `target/hubchaos/runs/<run-id>/<scenario>/`.
    pub run_dir: PathBuf,
    pub seed: u64,
    pub backend: Arc<dyn Backend>,
    pub recorder: Recorder,
    pub samples: SampleSink,
    pub cleanup: CleanupStack,
    /// Cancelled at the deadline or on SIGINT/SIGTERM: every loop of the run watches it.
    pub cancel: CancellationToken,
    pub rng: Mutex<StdRng>,
    hub: OnceLock<HubEndpoints>,
    kind: OnceLock<crate::backend::kind::KindRun>,
    node: OnceLock<crate::component::node_disk::NodePaths>,
    binder: OnceLock<BinderEndpoints>,
    request_sources: Mutex<Vec<Arc<dyn RequestSource>>>,
}

/// BinderHub as workloads use it (set by the deploy).
#[derive(Debug, Clone)]
pub struct BinderEndpoints {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Each sample repo's name and the path that asks BinderHub to build it
    /// (`/build/<provider>/<spec>/main?build_only=true`).
    pub builds: std::collections::BTreeMap<String, String>,
    /// The GitHub API stand-in BinderHub resolves refs with, when the repos come from "GitHub".
    pub github_api: Option<std::sync::Arc<crate::component::github_api::GitHubApi>>,
}

impl Env {
    pub fn new(
        run_id: String,
        run_dir: PathBuf,
        seed: u64,
        backend: Arc<dyn Backend>,
        recorder: Recorder,
        samples: SampleSink,
        cancel: CancellationToken,
    ) -> Self {
        use rand::SeedableRng;
        Self {
            run_id,
            run_dir,
            seed,
            backend,
            recorder,
            samples,
            cleanup: CleanupStack::default(),
            cancel,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            hub: OnceLock::new(),
            kind: OnceLock::new(),
            node: OnceLock::new(),
            binder: OnceLock::new(),
            request_sources: Mutex::new(Vec::new()),
        }
    }

    /// A source of request events of this run, closed at teardown ([`Env::close_request_sources`]).
    pub fn add_request_source(&self, source: Arc<dyn RequestSource>) {
        self.request_sources.lock().unwrap().push(source);
    }

    /// Close every request source (lifecycle step 11, before components stop, so their last
    /// requests are recorded). Idempotent.
    pub async fn close_request_sources(&self) {
        let sources: Vec<_> = self.request_sources.lock().unwrap().drain(..).collect();
        for s in sources.iter().rev() {
            s.close().await;
        }
    }

    pub fn set_hub(&self, hub: HubEndpoints) {
        if self.hub.set(hub).is_err() {
            panic!("the hub of a run is deployed once");
        }
    }

    pub fn hub(&self) -> anyhow::Result<&HubEndpoints> {
        self.hub.get().context("this scenario deployed no hub")
    }

    /// Set by the kind backend's deploy: the cluster as faults and workloads use it.
    pub fn set_kind(&self, run: crate::backend::kind::KindRun) {
        if self.kind.set(run).is_err() {
            panic!("the cluster of a run is set once");
        }
    }

    /// The kind cluster of this run (a scenario that needs one runs on the kind backend).
    pub fn kind(&self) -> anyhow::Result<&crate::backend::kind::KindRun> {
        self.kind.get().context("this run has no kind cluster: the scenario runs on the kind backend (`needs.cluster`)")
    }

    /// Set by a backend whose node is not the local one (kind: the build node's, reached
    /// through its container's root).
    pub fn set_node_paths(&self, paths: crate::component::node_disk::NodePaths) {
        if self.node.set(paths).is_err() {
            panic!("the node of a run is deployed once");
        }
    }

    /// Where this run's node is for faults and workloads: the one a backend set, else the
    /// local node's layout (derived from the run dir and id alone).
    pub fn node_paths(&self) -> crate::component::node_disk::NodePaths {
        self.node.get().cloned().unwrap_or_else(|| (&crate::component::node_disk::NodeLayout::new(&self.run_dir, &self.run_id)).into())
    }

    /// Set by the deploy of a scenario with BinderHub.
    pub fn set_binder(&self, binder: BinderEndpoints) {
        if self.binder.set(binder).is_err() {
            panic!("the BinderHub of a run is deployed once");
        }
    }

    /// The BinderHub of this run.
    pub fn binder(&self) -> anyhow::Result<&BinderEndpoints> {
        self.binder.get().context("this scenario deployed no BinderHub: declare `deploy.binder`")
    }

    /// A hub API client whose requests are recorded as `client`, with the harness's token.
    pub async fn hub_api(&self, client: &str) -> anyhow::Result<HubApi> {
        let hub = self.hub()?;
        HubApi::new(hub.api_url(client).await?, hub.harness_token.clone(), CLIENT_TIMEOUT)
    }

    /// Time since the run's clock started.
    pub fn now(&self) -> Duration {
        self.recorder.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cleanup_runs_in_reverse_and_collects_errors() {
        let stack = CleanupStack::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let order = order.clone();
            stack.push(
                format!("step {i}"),
                Box::pin(async move {
                    order.lock().unwrap().push(i);
                    if i == 1 {
                        anyhow::bail!("boom")
                    } else {
                        Ok(())
                    }
                }),
            );
        }
        stack.push(
            "slow",
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }),
        );
        let errors = stack.drain(Duration::from_millis(50)).await;
        assert_eq!(*order.lock().unwrap(), vec![2, 1, 0]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("slow"));
        assert!(errors[1].contains("boom"));
    }
}
