//! The test kit: what the harness's own unit tests run against instead of real components.
//! A mock stands in for the harness's own plumbing, never for the system under test: the
//! scenarios always run the real hub, proxy, culler and cleaner.
//!
//! - [`FakeKind`] / [`FakeBackend`]: a backend that deploys nothing, records every call in
//!   order, and can be told to fail at a given step (runner lifecycle tests, faults);
//! - [`FakeHub`]: a hub and proxy in one HTTP server with just the API the workloads, probes
//!   and faults use (users, servers, activity, a route to each running server);
//! - [`FakeDaemon`]: an HTTP server on a unix socket that answers as told (dockerd's place);
//! - [`env_with`] / [`env_with_fake_hub`]: an [`Env`] around them, with an in-memory history.

mod fake_backend;
mod fake_daemon;
mod fake_hub;

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

pub use fake_backend::{Failure, FakeBackend, FakeKind};
pub use fake_daemon::FakeDaemon;
pub use fake_hub::FakeHub;

use crate::backend::Backend;
use crate::env::{Env, HubEndpoints};
use crate::observe::evidence::RecordedGateway;
use crate::observe::history::Recorder;
use crate::observe::recording_proxy::{RecordingProxy, Upstream};
use crate::observe::samples::SampleSink;

/// An env around `backend` with an in-memory history, seed 1, run dir in a fresh temp dir
/// (kept alive by the returned guard).
pub fn env_with(backend: Arc<dyn Backend>) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::new(
        "test-run".into(),
        dir.path().to_path_buf(),
        1,
        backend,
        Recorder::in_memory(Instant::now()),
        SampleSink::default(),
        CancellationToken::new(),
    );
    (env, dir)
}

/// Point `env`'s hub at `hub` through a recording proxy, as a deploy does.
pub fn attach_hub(env: &Env, hub: std::net::SocketAddr) {
    let proxy = RecordingProxy::start("hub", Upstream::Tcp(hub), env.recorder.clone()).expect("recording proxy");
    let gateway = Arc::new(RecordedGateway::new(proxy));
    env.add_request_source(gateway.clone());
    env.set_hub(HubEndpoints { hub_addr: hub, public_url: format!("http://{hub}"), harness_token: "harness-token".into(), gateway });
}

/// An env whose hub is a [`FakeHub`] behind the recording proxy, on a [`FakeBackend`].
pub async fn env_with_fake_hub() -> (Env, FakeHub, Arc<FakeBackend>, tempfile::TempDir) {
    let hub = FakeHub::default();
    let addr = hub.serve().await;
    let backend = Arc::new(FakeBackend::default());
    let (env, dir) = env_with(backend.clone());
    attach_hub(&env, addr);
    (env, hub, backend, dir)
}
