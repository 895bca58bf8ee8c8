//! Hub-state sampler: the number of running servers as the hub's REST API reports them
//! (`GET /hub/api/users?state=active`), every interval. The Prometheus gauge
//! `jupyterhub_running_servers` drifted above the real count in our runs (18 reported with 15
//! servers started, none stopped), so convergence of servers is judged on this instead.
//!
//! Like the Prometheus sampler it talks to the hub directly, not through the recorder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};

/// The component name of these samples.
pub const HUB_API: &str = "hub-api";
/// Servers running or pending (start or stop).
pub const ACTIVE_SERVERS: &str = "active_servers";
/// Servers ready.
pub const READY_SERVERS: &str = "ready_servers";

#[derive(Deserialize)]
struct Page {
    items: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    servers: BTreeMap<String, Server>,
}

#[derive(Deserialize)]
struct Server {
    #[serde(default)]
    ready: bool,
}

#[derive(Debug, Clone)]
pub struct HubStateSampler {
    pub hub: SocketAddr,
    pub token: String,
    pub every: Duration,
}

impl HubStateSampler {
    async fn count(&self, http: &reqwest::Client) -> anyhow::Result<(usize, usize)> {
        let (mut active, mut ready, mut offset) = (0, 0, 0);
        loop {
            let url = format!("http://{}/hub/api/users?state=active&offset={offset}&limit=200", self.hub);
            let page: Page = http
                .get(&url)
                .header("Authorization", format!("token {}", self.token))
                .header("Accept", "application/jupyterhub-pagination+json")
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for u in &page.items {
                active += u.servers.len();
                ready += u.servers.values().filter(|s| s.ready).count();
            }
            if page.items.len() < 200 {
                return Ok((active, ready));
            }
            offset += page.items.len();
        }
    }

    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
        super::every(self.every, &stop, || async {
            let at = recorder.now();
            match self.count(&http).await {
                Ok((active, ready)) => {
                    let sample = |metric: &str, value: usize| Sample {
                        at,
                        component: HUB_API.into(),
                        metric: metric.into(),
                        labels: BTreeMap::new(),
                        value: value as f64,
                    };
                    sink.push_batch(vec![sample(ACTIVE_SERVERS, active), sample(READY_SERVERS, ready)]);
                }
                Err(e) => tracing::debug!("hub state sample failed: {e:#}"),
            }
        })
        .await;
    }
}
