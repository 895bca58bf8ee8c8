//! A local TCP address that reaches a port of whichever pod currently backs a label selector,
//! through the API server's port-forward (kube-rs, over its WebSocket upgrade).
//!
//! Why: on kind the hub and the proxy run in pods, on a pod network this machine has no route
//! to, so nothing here can connect to them directly. A [`PodForward`] gives each one a
//! `127.0.0.1` address, and the recording proxy sits in front of that address.
//!
//! Every accepted connection looks its pod up afresh: a pod killed by a fault and replaced by
//! its Deployment is followed by the next connection (connections in flight to the old pod end
//! with it). A pod qualifies when it is Running, Ready and not being deleted. A connection for
//! which none qualifies, or whose forward cannot be set up within [`CONNECT_WITHIN`], is closed
//! at once and logged; no error of one connection ends the listener.
//!
//! The listener and every connection end when the [`PodForward`] is dropped or
//! [`PodForward::close`]d.
//!
//! kube-rs's port-forward carries no half-close: a client that shuts down its sending side
//! ends the forward, and with it the answer it is waiting for. HTTP clients do not do that.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Portforwarder};
use kube::Client;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::kube::pod_ready;

/// How long a connection's pod lookup and port-forward setup may take together.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// A listener on `127.0.0.1` forwarding each connection to `port` of a ready pod matching a
/// label selector. Dropping it stops the listener and drops the connections in flight.
#[derive(Debug)]
pub struct PodForward {
    addr: SocketAddr,
    cancel: CancellationToken,
    /// The accept loop; `None` once [`Self::close`] awaited it.
    task: Option<JoinHandle<()>>,
}

/// What a connection is forwarded to: `port` of a pod of `namespace` matching `selector`.
struct Target {
    pods: Api<Pod>,
    namespace: String,
    selector: String,
    port: u16,
}

impl PodForward {
    /// Binds `127.0.0.1:0` and forwards every connection to `port` of a Running, Ready pod of
    /// `namespace` matching `label_selector` (`app=jupyterhub,component=hub`), looked up for
    /// that connection.
    pub async fn start(client: Client, namespace: &str, label_selector: &str, port: u16) -> anyhow::Result<PodForward> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await.context("binding 127.0.0.1:0 for a port-forward")?;
        let addr = listener.local_addr()?;
        let target = Target {
            pods: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            selector: label_selector.to_string(),
            port,
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, target, cancel.clone()));
        tracing::debug!(%addr, namespace, label_selector, port, "port-forward listening");
        Ok(PodForward { addr, cancel, task: Some(task) })
    }

    /// The local address that reaches the pods.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the listener and drops the connections in flight; returns once the listener's
    /// port is released.
    pub async fn close(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The loop does not panic; a JoinError could only say it was aborted.
            let _ = task.await;
        }
    }
}

impl Drop for PodForward {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Accepts until cancelled, each connection in its own task; on cancel those tasks are
/// aborted (which drops their forwards) and the listener closed.
async fn accept_loop(listener: TcpListener, target: Target, cancel: CancellationToken) {
    let target = std::sync::Arc::new(target);
    let mut connections = JoinSet::new();
    loop {
        // Reap the connections that ended, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                let target = target.clone();
                connections.spawn(async move { serve(socket, peer, &target).await });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "port-forward accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    connections.shutdown().await;
}

/// Forwards one connection, logging how it ended; dropping `socket` closes it.
async fn serve(mut socket: TcpStream, peer: SocketAddr, target: &Target) {
    let (ns, selector, port) = (&target.namespace, &target.selector, target.port);
    let started = Instant::now();
    let opened = match tokio::time::timeout(CONNECT_WITHIN, open(target)).await {
        Ok(opened) => opened,
        Err(_) => Err(anyhow!("no port-forward to {ns} ({selector}) port {port} within {CONNECT_WITHIN:?}")),
    };
    let (pod, mut forward) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(%peer, "port-forward connection closed: {e:#}");
            return;
        }
    };
    let Some(mut upstream) = forward.0.take_stream(port) else {
        tracing::warn!(%peer, "port-forward to {ns}/{pod} has no stream for port {port}");
        return;
    };
    let pod_error = forward.0.take_error(port);
    let copied = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
    // The error channel has its message, if any, by the time the pod's side closed.
    let pod_error = pod_error.and_then(|e| e.now_or_never().flatten());
    match (copied, pod_error) {
        (Ok((sent, received)), None) => {
            tracing::debug!(%peer, "port-forward to {ns}/{pod}:{port} done: {sent} B sent, {received} B received in {:?}", started.elapsed());
        }
        (copied, pod_error) => {
            let copied = copied.map_or_else(|e| e.to_string(), |(s, r)| format!("{s} B sent, {r} B received"));
            tracing::warn!(%peer, "port-forward to {ns}/{pod}:{port} failed: {copied}; pod side: {}", pod_error.as_deref().unwrap_or("no error"));
        }
    }
}

/// A Portforwarder whose task is aborted when dropped: kube-rs detaches it, and it would wait
/// on an API server that no longer answers for as long as that lasts.
struct Forward(Portforwarder);

impl Drop for Forward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Finds a ready pod of the target and opens a port-forward to it.
async fn open(target: &Target) -> anyhow::Result<(String, Forward)> {
    let (ns, selector, port) = (&target.namespace, &target.selector, target.port);
    let pods =
        target.pods.list(&ListParams::default().labels(selector)).await.with_context(|| format!("listing pods of {ns} ({selector})"))?;
    let pod = ready_pod(&pods.items)
        .with_context(|| format!("none of the {} pods of {ns} matching `{selector}` is Running and Ready", pods.items.len()))?;
    let forward = target.pods.portforward(&pod, &[port]).await.with_context(|| format!("port-forward to {ns}/{pod} port {port}"))?;
    Ok((pod, Forward(forward)))
}

/// The name of the first of `pods` that is Running and Ready and not being deleted (a pod
/// being deleted stays Ready until its containers stop).
fn ready_pod(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .find(|p| pod_ready(p))
        .and_then(|p| p.metadata.name.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::panic::AssertUnwindSafe;

    use k8s_openapi::api::core::v1::{Probe, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;
    use tokio::io::AsyncReadExt;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::backend::kind::cluster::{ClusterLayout, DEFAULT_NAME};
    use crate::backend::kind::kube::{pod_spec, KindCluster};

    /// A pod named `name` in `phase`, Ready or not, being deleted or not.
    fn pod(name: &str, phase: &str, ready: bool, deleting: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "deletionTimestamp": deleting.then_some("2026-01-01T00:00:00Z"),
            },
            "status": {
                "phase": phase,
                "conditions": [ { "type": "Ready", "status": if ready { "True" } else { "False" } } ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_pod_chosen_is_running_ready_and_not_being_deleted() {
        let starting = pod("starting", "Running", false, false);
        let leaving = pod("leaving", "Running", true, true);
        let done = pod("done", "Succeeded", true, false);
        let serving = pod("serving", "Running", true, false);
        assert_eq!(ready_pod(&[starting.clone(), leaving.clone(), done.clone(), serving]).as_deref(), Some("serving"));
        assert_eq!(ready_pod(&[starting, leaving, done]), None);
        assert_eq!(ready_pod(&[]), None);
    }

    /// An API server whose namespace `pf` has, for selector `app=web`, only pods no connection
    /// may go to: one starting, one being deleted.
    async fn api_server_without_a_ready_pod() -> (MockServer, Client) {
        let server = MockServer::start().await;
        let list = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": [pod("starting", "Running", false, false), pod("leaving", "Running", true, true)]
        });
        Mock::given(method("GET"))
            .and(path("/api/v1/namespaces/pf/pods"))
            .and(query_param("labelSelector", "app=web"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list))
            .mount(&server)
            .await;
        let client = Client::try_from(kube::Config::new(server.uri().parse().unwrap())).unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn a_connection_without_a_ready_pod_is_closed_and_the_listener_keeps_accepting() {
        let (server, client) = api_server_without_a_ready_pod().await;
        let forward = PodForward::start(client, "pf", "app=web", 8080).await.unwrap();
        assert!(forward.addr().ip().is_loopback());
        for attempt in 0..3 {
            let mut socket = TcpStream::connect(forward.addr()).await.unwrap();
            let mut read = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut read)).await;
            assert!(matches!(closed, Ok(Ok(0))), "connection {attempt}: {closed:?}, {read:?}");
        }
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 3, "each connection looks its pod up: {requests:?}");
        forward.close().await;
    }

    #[tokio::test]
    async fn closing_releases_the_port_and_dropping_ends_the_listener() {
        let (_server, client) = api_server_without_a_ready_pod().await;
        let forward = PodForward::start(client.clone(), "pf", "app=web", 8080).await.unwrap();
        let addr = forward.addr();
        forward.close().await;
        assert!(TcpStream::connect(addr).await.is_err(), "{addr} still accepts after close");

        let forward = PodForward::start(client, "pf", "app=web", 8080).await.unwrap();
        let addr = forward.addr();
        drop(forward);
        // The accept loop sees the cancel on its next poll.
        let refused = async {
            while TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refused).await.expect("the listener outlived its PodForward");
    }

    /// The label the live test's pods carry, and the port they serve on.
    const LABEL: (&str, &str) = ("app", "pftest");
    const HTTP_PORT: u16 = 8080;

    /// Creates pod `name` serving `body` as `/index.html` (busybox httpd), Ready once it
    /// listens, killed at once when deleted; waits until it is Ready.
    async fn create_web_pod(kube: &KindCluster, ns: &str, image: &str, name: &str, body: &str) {
        let script = format!("echo '{body}' > /tmp/index.html && exec httpd -f -p {HTTP_PORT} -h /tmp");
        let labels = BTreeMap::from([(LABEL.0.to_string(), LABEL.1.to_string())]);
        let mut pod = pod_spec(name, image, &["sh", "-c", &script], &BTreeMap::new(), &[], &labels);
        let spec = pod.spec.as_mut().unwrap();
        spec.termination_grace_period_seconds = Some(0);
        spec.containers[0].readiness_probe = Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(HTTP_PORT.into()), ..Default::default() }),
            period_seconds: Some(1),
            ..Default::default()
        });
        kube.create_pod(ns, &pod).await.unwrap();
        kube.wait_pod(ns, name, |p: Option<&Pod>| p.is_some_and(pod_ready), Duration::from_secs(90)).await.unwrap();
    }

    /// GETs `url` on a new connection; the body and how long it took.
    async fn get(http: &reqwest::Client, url: &str) -> reqwest::Result<(String, Duration)> {
        let started = Instant::now();
        let response = http.get(url).send().await?.error_for_status()?;
        let body = response.text().await?;
        Ok((body, started.elapsed()))
    }

    /// Serves from one pod, then from its replacement, through one forward.
    async fn forward_and_follow(kube: &KindCluster, ns: &str, image: &str) {
        create_web_pod(kube, ns, image, "web-one", "pod one").await;
        let forward = PodForward::start(kube.client(), ns, &format!("{}={}", LABEL.0, LABEL.1), HTTP_PORT).await.unwrap();
        // No pooled connections: each GET is a new connection, so a new lookup.
        let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).timeout(Duration::from_secs(20)).build().unwrap();
        let url = format!("http://{}/index.html", forward.addr());

        let mut took = Vec::new();
        for _ in 0..5 {
            let (body, t) = get(&http, &url).await.unwrap();
            assert_eq!(body, "pod one\n");
            took.push(t);
        }

        kube.delete_pod(ns, "web-one", Duration::ZERO).await.unwrap();
        let without = get(&http, &url).await;
        assert!(without.is_err(), "a GET with no pod behind the forward: {without:?}");

        create_web_pod(kube, ns, image, "web-two", "pod two").await;
        for _ in 0..5 {
            let (body, t) = get(&http, &url).await.unwrap();
            assert_eq!(body, "pod two\n", "the forward follows the replacement pod");
            took.push(t);
        }
        took.sort();
        eprintln!("forwarded GETs: fastest {:?}, median {:?}, slowest {:?}", took[0], took[took.len() / 2], took[took.len() - 1]);
        forward.close().await;
    }

    #[tokio::test]
    #[ignore = "needs the kind cluster `hubchaos` up (`hubchaos cluster up`) with its test image"]
    async fn a_forward_reaches_its_pod_and_follows_the_pod_that_replaces_it() {
        let layout = ClusterLayout::new(&crate::paths::hubchaos_home(), DEFAULT_NAME);
        let state = layout.read_state().filter(|s| s.phase == "up").expect("no kind cluster `hubchaos` is up (`hubchaos cluster up`)");
        let image = state.test_image.expect("the cluster's state names no test image");
        let kube = KindCluster::connect(&layout.kubeconfig(), &layout.context()).await.unwrap();
        let ns = format!("hc-pftest-{}", crate::paths::short_run_id(&format!("{}-{:?}", std::process::id(), Instant::now())));
        kube.ensure_namespace(&ns, &BTreeMap::new()).await.unwrap();
        // The namespace goes whatever the test does: a failed assertion is caught, the
        // namespace deleted, and the failure raised again.
        let outcome = AssertUnwindSafe(forward_and_follow(&kube, &ns, &image)).catch_unwind().await;
        let deleted = kube.delete_namespace_and_wait(&ns, Duration::from_secs(120)).await;
        if let Err(failure) = outcome {
            std::panic::resume_unwind(failure);
        }
        deleted.unwrap();
    }
}
