//! Request evidence: where the history's request events come from, and how a harness client
//! reaches the hub so that its requests are recorded under its own name.
//!
//! A [`RequestSource`] feeds [`crate::observe::history::Event::Request`]s into the run's
//! history. The recording proxy is one: the clients the harness starts or drives (the culler
//! on `local`, workloads, faults, probes) are pointed at it, one listener each. A second kind
//! of source can feed the same events from what the hub itself logs for every request, for
//! clients no proxy sits in front of (the culler inside the hub pod on `kind`). Sources are
//! closed at teardown, after which every request they saw is in the history.
//!
//! A [`HubGateway`] gives each named client the address to send its requests to.
//! [`RecordedGateway`] is both: the recording proxy with one listener per client, opened on
//! first use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use async_trait::async_trait;

use super::recording_proxy::RecordingProxy;

/// One source of request events in the history.
#[async_trait]
pub trait RequestSource: Send + Sync {
    /// What it is, for logs and errors (`recording proxy → hub`).
    fn describe(&self) -> String;

    /// Stop feeding events; when this returns, every request it saw has been recorded.
    /// Idempotent.
    async fn close(&self);
}

/// How a harness client reaches the hub so that its requests are recorded as coming from it.
#[async_trait]
pub trait HubGateway: Send + Sync {
    /// The address `client` sends its hub requests to (the same one on every call).
    async fn client_addr(&self, client: &str) -> anyhow::Result<SocketAddr>;
}

/// The recording proxy in front of the hub, one listener per client.
pub struct RecordedGateway {
    proxy: RecordingProxy,
    clients: Mutex<HashMap<String, SocketAddr>>,
}

impl RecordedGateway {
    pub fn new(proxy: RecordingProxy) -> Self {
        Self { proxy, clients: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl HubGateway for RecordedGateway {
    async fn client_addr(&self, client: &str) -> anyhow::Result<SocketAddr> {
        let mut clients = self.clients.lock().unwrap();
        if let Some(addr) = clients.get(client) {
            return Ok(*addr);
        }
        let addr = self.proxy.listen(client)?;
        clients.insert(client.to_string(), addr);
        Ok(addr)
    }
}

#[async_trait]
impl RequestSource for RecordedGateway {
    fn describe(&self) -> String {
        format!("recording proxy → {}", self.proxy.upstream_name())
    }

    async fn close(&self) {
        self.proxy.shutdown().await;
    }
}

/// The recording proxy alone (in front of dockerd: its clients get unix sockets, not a gateway).
#[async_trait]
impl RequestSource for RecordingProxy {
    fn describe(&self) -> String {
        format!("recording proxy → {}", self.upstream_name())
    }

    async fn close(&self) {
        self.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::observe::history::Recorder;
    use crate::observe::recording_proxy::Upstream;

    #[tokio::test]
    async fn one_listener_per_client_and_close_stops_them() {
        let rec = Recorder::in_memory(Instant::now());
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let gw = RecordedGateway::new(RecordingProxy::start("hub", Upstream::Tcp(upstream), rec).unwrap());
        let a = gw.client_addr("culler").await.unwrap();
        assert_eq!(gw.client_addr("culler").await.unwrap(), a, "the same client keeps its listener");
        let b = gw.client_addr("workload").await.unwrap();
        assert_ne!(a, b, "each client has its own listener: the port is its identity");
        gw.close().await;
        assert!(gw.client_addr("late").await.is_err(), "no new listener after close");
        assert_eq!(gw.describe(), "recording proxy → hub");
    }
}
