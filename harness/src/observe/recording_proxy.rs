//! The recording reverse proxy: the HTTP part that feeds the [`Recorder`].
//!
//! Every client the harness wants to observe (the idle culler, the workload, the image
//! cleaner's Docker client) is pointed at its own listener of a [`RecordingProxy`] instead of
//! the real upstream. The proxy forwards each request unchanged (apart from `Host` and the
//! hop-by-hop headers) and records one [`Event::Request`] per request: who sent it, the route
//! template, the user and server it names, the status, and the latency.
//!
//! Why a listener per client: the clients are real programs we do not control (the culler
//! cannot add a header), so the port a client was given *is* its identity.
//!
//! What the proxy promises, and why:
//! - **Streaming both ways, never buffering a body.** Docker's `/events`, the hub's
//!   `/server/progress` and BinderHub's build logs are long-lived streams; a buffering proxy
//!   would change the behaviour under test.
//! - **Upgrades are tunnelled** (`101 Switching Protocols`): kernels' websockets through
//!   `/user/{name}/...`, and Docker's `attach`, `exec` and BuildKit `/session` hijacks.
//! - **Transparent failure.** No timeouts of its own (a stopped hub must look stopped to the
//!   client, not like a 504 from us). An upstream that cannot be reached is answered with
//!   `502` and recorded with status [`UNREACHABLE`] (0).
//! - **One record per request, stamped at arrival**, with latency = arrival to the end of the
//!   response body (or to the moment the client went away, or the upgraded tunnel closed).
//!   A client that hangs up before the response head arrives is recorded with
//!   [`CLIENT_CLOSED_REQUEST`] (499, the nginx convention).
//! - **Keep-alive pooling to the upstream**, so the proxy does not add a TCP handshake per
//!   request and the upstream sees a connection count like a direct client's.
//! - **Bounded shutdown**: [`RecordingProxy::shutdown`] stops accepting, lets in-flight
//!   requests finish for up to [`SHUTDOWN_GRACE`], then cuts them (and they are still
//!   recorded). Dropping the proxy cuts everything at once.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::history::{Event, Recorder, RequestRecord};
use super::routes::classify;

/// How long [`RecordingProxy::shutdown`] lets in-flight requests finish before cutting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Recorded status when the upstream could not be reached (the client got a 502 from us).
pub const UNREACHABLE: u16 = 0;

/// Recorded status when the client hung up before the upstream answered (nginx's 499).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Idle pooled upstream connections are dropped after this long. Below Node's default
/// 5 s `keepAliveTimeout` (configurable-http-proxy), so we never reuse a connection the
/// upstream is about to close, which would turn into a spurious 502.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Pause after a failed `accept` (e.g. EMFILE) so a full fd table does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the proxy forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// An HTTP server on a TCP address (the hub, configurable-http-proxy, BinderHub).
    Tcp(SocketAddr),
    /// An HTTP server on a unix socket (the Docker Engine API).
    Unix(PathBuf),
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Tcp(addr) => write!(f, "http://{addr}"),
            Upstream::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// A recording reverse proxy in front of one upstream, with any number of client listeners.
///
/// Must be used inside a tokio runtime. Dropping it stops every listener and cuts in-flight
/// requests; call [`shutdown`](Self::shutdown) for a graceful, bounded stop.
pub struct RecordingProxy {
    shared: Arc<Shared>,
    listeners: Mutex<Vec<JoinHandle<()>>>,
}

/// State shared by all listeners and connections of one proxy.
struct Shared {
    upstream_name: String,
    upstream: Upstream,
    /// The `Host` the upstream sees: its own address (or `localhost` for a unix socket).
    authority: String,
    client: UpstreamClient,
    recorder: Recorder,
    /// The recorder's clock, copied so the hot path does not take the recorder's lock.
    clock: Instant,
    cancel: CancellationToken,
}

impl RecordingProxy {
    /// A proxy to `upstream`, recording into `recorder` with `upstream_name` (`hub`,
    /// `dockerd`, ...). It listens nowhere until [`listen`](Self::listen) is called.
    pub fn start(upstream_name: &str, upstream: Upstream, recorder: Recorder) -> anyhow::Result<Self> {
        anyhow::ensure!(!upstream_name.is_empty(), "the upstream needs a name");
        let (client, authority) = UpstreamClient::new(&upstream);
        let clock = recorder.clock();
        let shared = Shared {
            upstream_name: upstream_name.to_string(),
            upstream,
            authority,
            client,
            recorder,
            clock,
            cancel: CancellationToken::new(),
        };
        Ok(Self { shared: Arc::new(shared), listeners: Mutex::new(Vec::new()) })
    }

    /// Open a new listener on `127.0.0.1:0`; every request arriving on it is recorded as sent
    /// by `client`. Returns the address to give that client.
    pub fn listen(&self, client: &str) -> anyhow::Result<SocketAddr> {
        let runtime = self.runtime_for(client)?;
        let _enter = runtime.enter();
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a recording listener on 127.0.0.1")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener)?;
        self.spawn_listener(&runtime, Listener::Tcp(listener), client);
        tracing::debug!(client, %addr, upstream = %self.shared.upstream, "recording listener");
        Ok(addr)
    }

    /// Open a new listener on the unix socket `path` (which must not exist) for `client`,
    /// e.g. a Docker client given `DOCKER_HOST=unix://<path>`. The socket file is removed
    /// when the listener stops.
    pub fn listen_unix(&self, client: &str, path: &Path) -> anyhow::Result<()> {
        let runtime = self.runtime_for(client)?;
        let _enter = runtime.enter();
        let listener = UnixListener::bind(path).with_context(|| format!("binding a recording listener on {}", path.display()))?;
        self.spawn_listener(&runtime, Listener::Unix(listener, path.to_path_buf()), client);
        tracing::debug!(client, path = %path.display(), upstream = %self.shared.upstream, "recording listener");
        Ok(())
    }

    /// The name requests are recorded with as `upstream`.
    pub fn upstream_name(&self) -> &str {
        &self.shared.upstream_name
    }

    pub fn upstream(&self) -> &Upstream {
        &self.shared.upstream
    }

    /// Stop accepting on every listener, let in-flight requests finish for up to
    /// [`SHUTDOWN_GRACE`], then cut the rest. When this returns, every request the proxy
    /// handled (tunnels included) has been recorded. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let handles = std::mem::take(&mut *self.listeners.lock().expect("listeners poisoned"));
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut handle in handles {
            if tokio::time::timeout_at(deadline, &mut handle).await.is_err() {
                handle.abort();
                let _ = handle.await;
            }
        }
    }

    fn runtime_for(&self, client: &str) -> anyhow::Result<tokio::runtime::Handle> {
        anyhow::ensure!(!client.is_empty(), "the client needs a name");
        anyhow::ensure!(!self.shared.cancel.is_cancelled(), "the recording proxy was shut down");
        tokio::runtime::Handle::try_current().context("RecordingProxy listeners need a tokio runtime")
    }

    fn spawn_listener(&self, runtime: &tokio::runtime::Handle, listener: Listener, client: &str) {
        let task = runtime.spawn(accept_loop(listener, Arc::from(client), self.shared.clone()));
        self.listeners.lock().expect("listeners poisoned").push(task);
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        // Aborting an accept loop drops its JoinSet, which aborts its connections.
        if let Ok(handles) = self.listeners.get_mut() {
            for handle in handles.drain(..) {
                handle.abort();
            }
        }
    }
}

impl fmt::Debug for RecordingProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProxy")
            .field("upstream_name", &self.shared.upstream_name)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream side: a pooled hyper client over TCP or a unix socket.

enum UpstreamClient {
    Tcp(Client<HttpConnector, Incoming>),
    Unix(Client<UnixConnector, Incoming>),
}

impl UpstreamClient {
    /// The client and the authority (`Host`) to send requests with.
    fn new(upstream: &Upstream) -> (Self, String) {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(POOL_IDLE_TIMEOUT).pool_timer(TokioTimer::new());
        match upstream {
            Upstream::Tcp(addr) => {
                let mut http = HttpConnector::new();
                // Without it, Nagle + delayed ACK add ~40 ms to small pipelined writes.
                http.set_nodelay(true);
                (Self::Tcp(builder.build(http)), addr.to_string())
            }
            Upstream::Unix(path) => {
                let connector = UnixConnector(Arc::from(path.as_path()));
                (Self::Unix(builder.build(connector)), "localhost".to_string())
            }
        }
    }

    fn request(&self, req: Request<Incoming>) -> ResponseFuture {
        match self {
            Self::Tcp(c) => c.request(req),
            Self::Unix(c) => c.request(req),
        }
    }
}

/// Connects every request to one unix socket, whatever the URI says (hyper-util has no unix
/// connector of its own).
#[derive(Clone)]
struct UnixConnector(Arc<Path>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move { UnixStream::connect(&*path).await.map(TokioIo::new) })
    }
}

// ---------------------------------------------------------------------------------------------
// Client side: listeners and connections.

enum Listener {
    Tcp(TcpListener),
    /// The path is removed when the listener stops.
    Unix(UnixListener, PathBuf),
}

enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn accept_loop(listener: Listener, client: Arc<str>, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok(Accepted::Tcp(stream)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, client.clone(), shared.clone()));
                }
                Ok(Accepted::Unix(stream)) => {
                    conns.spawn(serve_connection(stream, client.clone(), shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(%client, error = %e, "recording proxy: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    // Connections saw the cancellation and are finishing their in-flight requests.
    while conns.join_next().await.is_some() {}
}

/// Per-connection state handed to every request on it.
struct ConnCtx {
    shared: Arc<Shared>,
    client: Arc<str>,
    /// Set by a request whose upstream answered 101: run once hyper hands over the socket.
    tunnel: Mutex<Option<Tunnel>>,
}

async fn serve_connection<IO>(io: IO, client: Arc<str>, shared: Arc<Shared>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cancel = shared.cancel.clone();
    let ctx = Arc::new(ConnCtx { shared, client, tunnel: Mutex::new(None) });
    let svc_ctx = ctx.clone();
    let service = hyper::service::service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, Infallible>(forward(req, &ctx).await) }
    });
    let mut builder = http1::Builder::new();
    // Idle keep-alive clients are the clients' business, as with a direct connection.
    builder.keep_alive(true).header_read_timeout(None::<Duration>);
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        res = conn.as_mut() => res,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::trace!(client = %ctx.client, error = %e, "recording proxy: connection ended");
    }
    let tunnel = ctx.tunnel.lock().expect("tunnel poisoned").take();
    if let Some(tunnel) = tunnel {
        tunnel.run(&cancel).await;
    }
}

/// Forward one request and arrange for it to be recorded when its response ends.
async fn forward(mut req: Request<Incoming>, ctx: &ConnCtx) -> Response<ProxyBody> {
    let shared = &ctx.shared;
    let start = Instant::now();
    let pq = req.uri().path_and_query().cloned().unwrap_or_else(|| "/".parse().expect("valid path"));
    let route = classify(pq.as_str());
    let mut guard = RecordGuard {
        shared: shared.clone(),
        at: start.saturating_duration_since(shared.clock),
        start,
        record: Some(RequestRecord {
            client: ctx.client.to_string(),
            upstream: shared.upstream_name.clone(),
            method: req.method().to_string(),
            route: route.template,
            user: route.user,
            server: route.server,
            status: CLIENT_CLOSED_REQUEST,
            latency: Duration::ZERO,
        }),
    };

    let wants_upgrade = is_upgrade(req.headers());
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
    strip_hop_by_hop(req.headers_mut(), wants_upgrade);
    // The client addressed us; the upstream expects its own name (the pooled client sets it).
    req.headers_mut().remove(header::HOST);
    *req.version_mut() = Version::HTTP_11;
    *req.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(shared.authority.as_str())
        .path_and_query(pq)
        .build()
        .expect("an authority from a SocketAddr and a parsed path make a valid URI");

    let mut resp = match shared.client.request(req).await {
        Ok(resp) => resp,
        Err(e) => {
            guard.set_status(UNREACHABLE);
            drop(guard);
            tracing::debug!(upstream = %shared.upstream, error = %e, "recording proxy: upstream unreachable");
            return bad_gateway(&shared.upstream_name, &e);
        }
    };
    guard.set_status(resp.status().as_u16());

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let tunnel = Tunnel { client: client_upgrade, upstream: upstream_upgrade, guard };
            *ctx.tunnel.lock().expect("tunnel poisoned") = Some(tunnel);
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, ProxyBody::full(Bytes::new()));
        }
    }
    strip_hop_by_hop(resp.headers_mut(), false);
    resp.map(|body| ProxyBody { kind: Kind::Stream { inner: Box::new(body), guard: Some(guard) } })
}

fn bad_gateway(upstream_name: &str, error: &hyper_util::client::legacy::Error) -> Response<ProxyBody> {
    let mut msg = format!("hubchaos recording proxy: upstream `{upstream_name}` unreachable: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg.push('\n');
    let mut resp = Response::new(ProxyBody::full(Bytes::from(msg)));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// `Connection: upgrade` + `Upgrade: ...`: a websocket or a Docker hijack.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Remove the headers that describe one hop (RFC 9110 section 7.6.1), including those named
/// by `Connection`. An upgrade keeps `Connection: upgrade` and `Upgrade`, which must reach
/// the upstream for the switch to happen.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            if !(keep_upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    for name in [header::TE, header::TRAILER, header::TRANSFER_ENCODING, header::PROXY_AUTHORIZATION] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

// ---------------------------------------------------------------------------------------------
// Recording.

/// Records its request exactly once: when the response ends, or when it is dropped (the client
/// went away, the proxy was shut down, the upstream failed).
struct RecordGuard {
    shared: Arc<Shared>,
    at: Duration,
    start: Instant,
    record: Option<RequestRecord>,
}

impl RecordGuard {
    fn set_status(&mut self, status: u16) {
        if let Some(r) = self.record.as_mut() {
            r.status = status;
        }
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.latency = self.start.elapsed();
            self.shared.recorder.record_at(self.at, Event::Request(record));
        }
    }
}

/// An upgraded connection waiting for both sides to hand over their sockets.
struct Tunnel {
    client: OnUpgrade,
    upstream: OnUpgrade,
    /// Recorded when the tunnel closes: its latency is the tunnel's lifetime.
    guard: RecordGuard,
}

impl Tunnel {
    async fn run(self, cancel: &CancellationToken) {
        let Tunnel { client, upstream, guard } = self;
        let pipe = async move {
            let (client, upstream) = tokio::try_join!(client, upstream)?;
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            anyhow::Ok(())
        };
        tokio::select! {
            res = pipe => if let Err(e) = res {
                tracing::debug!(error = %e, "recording proxy: tunnel ended");
            },
            _ = cancel.cancelled() => {}
        }
        drop(guard);
    }
}

/// The response body the client sees: the upstream's, streamed frame by frame, or a short
/// body of our own (502, 101).
pub struct ProxyBody {
    kind: Kind,
}

enum Kind {
    // Boxed: with hyper's HTTP/2 support in the tree (wiremock's), `Incoming` is ~250 bytes.
    Stream { inner: Box<Incoming>, guard: Option<RecordGuard> },
    Full(Option<Bytes>),
}

impl ProxyBody {
    fn full(bytes: Bytes) -> Self {
        let data = (!bytes.is_empty()).then_some(bytes);
        Self { kind: Kind::Full(data) }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Stream { inner, guard } => {
                let frame = ready!(Pin::new(&mut **inner).poll_frame(cx));
                let done = match &frame {
                    None | Some(Err(_)) => true,
                    Some(Ok(_)) => inner.is_end_stream(),
                };
                if done {
                    drop(guard.take());
                }
                Poll::Ready(frame)
            }
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stream { inner, .. } => inner.is_end_stream(),
            Kind::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stream { inner, .. } => inner.size_hint(),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

impl fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyBody").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::history::History;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot};

    /// Body type of the test upstream: a whole body or a test-controlled stream.
    type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    /// A tiny upstream: `/status/{code}`, `/echo` (method, path, host, authorization, body),
    /// `/stream` (chunks pushed by the test), `/upgrade` (101 + echo). Counts connections.
    #[derive(Clone, Default)]
    struct TestUpstream {
        connections: Arc<AtomicUsize>,
        /// The next `/stream` request takes its chunks from here.
        streams: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>,
    }

    impl TestUpstream {
        async fn handle(self, mut req: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
            let path = req.uri().path().to_string();
            let full = |s: String| Full::new(Bytes::from(s)).boxed();
            let resp = if let Some(code) = path.strip_prefix("/status/") {
                let mut r = Response::new(full(String::new()));
                *r.status_mut() = StatusCode::from_u16(code.parse().unwrap()).unwrap();
                r
            } else if path == "/echo" {
                let head = format!(
                    "{} {} host={} auth={} ",
                    req.method(),
                    req.uri(),
                    req.headers().get(header::HOST).map_or("-", |v| v.to_str().unwrap()),
                    req.headers().get(header::AUTHORIZATION).map_or("-", |v| v.to_str().unwrap()),
                );
                let body = req.into_body().collect().await.unwrap().to_bytes();
                Response::new(full(head + std::str::from_utf8(&body).unwrap()))
            } else if path == "/stream" {
                let rx = self.streams.lock().unwrap().take().expect("a stream was prepared");
                let frames =
                    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx)) });
                Response::new(StreamBody::new(frames).boxed())
            } else if path == "/upgrade" {
                let on = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let mut io = TokioIo::new(on.await.unwrap());
                    let mut buf = [0u8; 64];
                    loop {
                        let n = io.read(&mut buf).await.unwrap_or(0);
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut r = Response::new(full(String::new()));
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                r.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("echo"));
                r
            } else {
                let mut r = Response::new(full("not found".into()));
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            };
            Ok(resp)
        }

        fn serve<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, io: IO) {
            self.connections.fetch_add(1, Ordering::SeqCst);
            let this = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| this.clone().handle(req));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(io), svc).with_upgrades().await;
            });
        }

        async fn tcp(&self) -> SocketAddr {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let this = self.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    this.serve(s);
                }
            });
            addr
        }

        fn unix(&self, path: &Path) {
            let listener = UnixListener::bind(path).unwrap();
            let this = self.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    this.serve(s);
                }
            });
        }
    }

    fn recorder() -> Recorder {
        Recorder::in_memory(Instant::now())
    }

    fn requests(rec: &Recorder) -> Vec<RequestRecord> {
        rec.history().requests().map(|(_, r)| r.clone()).collect()
    }

    /// Wait (bounded) until `n` requests are recorded: records land when bodies end, which
    /// may be just after the client saw the last byte.
    async fn wait_for_requests(rec: &Recorder, n: usize) -> History {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let h = rec.history();
            if h.requests().count() >= n || Instant::now() > deadline {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    #[tokio::test]
    async fn records_status_client_route_user_and_server() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), rec.clone()).unwrap();
        let culler = proxy.listen("culler").unwrap();
        let workload = proxy.listen("workload").unwrap();
        assert_ne!(culler, workload);

        let client = http();
        // The test upstream 404s hub paths, and answers /status/{code} with that code.
        let r = client.delete(format!("http://{culler}/hub/api/users/al%40ice/server")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = client.get(format!("http://{workload}/status/204")).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = client.get(format!("http://{workload}/status/503?x=1")).send().await.unwrap();
        assert_eq!(r.status(), 503);

        let h = wait_for_requests(&rec, 3).await;
        let mut reqs: Vec<_> = h.requests().map(|(_, r)| r.clone()).collect();
        reqs.sort_by_key(|r| r.status);
        assert_eq!(reqs.len(), 3, "{reqs:?}");
        assert_eq!((reqs[0].client.as_str(), reqs[0].status, reqs[0].route.as_str()), ("workload", 204, "/status/{id}"));
        assert_eq!(reqs[2].status, 503);
        let del = &reqs[1];
        assert_eq!(del.client, "culler");
        assert_eq!(del.upstream, "hub");
        assert_eq!(del.method, "DELETE");
        assert_eq!(del.route, "/hub/api/users/{name}/server");
        assert_eq!(del.user.as_deref(), Some("al@ice"));
        assert_eq!(del.server.as_deref(), Some(""));
        assert_eq!(del.status, 404);
        assert!(del.latency > Duration::ZERO);
        assert!(reqs.iter().all(|r| r.latency < Duration::from_secs(5)));
        proxy.shutdown().await;
    }

    #[tokio::test]
    async fn forwards_method_query_headers_and_body_and_fixes_host() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("workload").unwrap();
        let body = http()
            .post(format!("http://{listen}/echo?a=1&b=%20"))
            .header(header::AUTHORIZATION, "token s3cret")
            .body("payload")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, format!("POST /echo?a=1&b=%20 host={addr} auth=token s3cret payload"));
        let h = wait_for_requests(&rec, 1).await;
        let (_, r) = h.requests().next().unwrap();
        assert_eq!((r.method.as_str(), r.route.as_str(), r.status), ("POST", "/echo", 200));
    }

    #[tokio::test]
    async fn reuses_upstream_connections() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("workload").unwrap();
        let client = http();
        for _ in 0..20 {
            let r = client.get(format!("http://{listen}/status/200")).send().await.unwrap();
            r.bytes().await.unwrap();
        }
        assert_eq!(wait_for_requests(&rec, 20).await.requests().count(), 20);
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 1, "sequential requests share one upstream connection");
    }

    #[tokio::test]
    async fn streams_chunks_before_the_body_ends_and_records_at_the_end() {
        let upstream = TestUpstream::default();
        let (tx, rx) = mpsc::channel(4);
        *upstream.streams.lock().unwrap() = Some(rx);
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("dockerd", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("cleaner").unwrap();

        tx.send(Bytes::from_static(b"first")).await.unwrap();
        let mut resp = http().get(format!("http://{listen}/stream")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("first chunk forwarded").unwrap();
        assert_eq!(first.as_deref(), Some(&b"first"[..]));
        // The response is still open: nothing recorded yet.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(requests(&rec).is_empty(), "recorded before the body ended");

        tx.send(Bytes::from_static(b"second")).await.unwrap();
        drop(tx);
        let mut rest = Vec::new();
        while let Some(c) = resp.chunk().await.unwrap() {
            rest.extend_from_slice(&c);
        }
        assert_eq!(rest, b"second");
        let h = wait_for_requests(&rec, 1).await;
        let (_, r) = h.requests().next().unwrap();
        assert_eq!((r.client.as_str(), r.upstream.as_str(), r.status), ("cleaner", "dockerd", 200));
        assert!(r.latency >= Duration::from_millis(100), "latency runs to the end of the body: {:?}", r.latency);
    }

    #[tokio::test]
    async fn client_hanging_up_on_an_open_stream_is_recorded() {
        let upstream = TestUpstream::default();
        let (tx, rx) = mpsc::channel(4);
        *upstream.streams.lock().unwrap() = Some(rx);
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("dockerd", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("cleaner").unwrap();
        tx.send(Bytes::from_static(b"event")).await.unwrap();
        let mut resp = http().get(format!("http://{listen}/stream")).send().await.unwrap();
        assert_eq!(resp.chunk().await.unwrap().as_deref(), Some(&b"event"[..]));
        drop(resp);
        // The upstream stream stays open (tx alive): the record must come from the hang-up.
        let h = wait_for_requests(&rec, 1).await;
        let (_, r) = h.requests().next().expect("recorded when the client went away");
        assert_eq!(r.status, 200);
        drop(tx);
    }

    #[tokio::test]
    async fn closed_upstream_answers_502_and_records_status_0() {
        let closed = {
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            l.local_addr().unwrap()
        };
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(closed), rec.clone()).unwrap();
        let listen = proxy.listen("culler").unwrap();
        let resp = http().get(format!("http://{listen}/hub/api/users")).send().await.unwrap();
        assert_eq!(resp.status(), 502);
        assert!(resp.text().await.unwrap().contains("upstream `hub` unreachable"));
        let h = wait_for_requests(&rec, 1).await;
        let (_, r) = h.requests().next().unwrap();
        assert_eq!((r.status, r.route.as_str(), r.client.as_str()), (UNREACHABLE, "/hub/api/users", "culler"));
        assert_eq!(r.status_class(), "unreachable");
    }

    #[tokio::test]
    async fn unix_upstream_and_unix_listener() {
        let dir = tempfile::tempdir().unwrap();
        let upstream_sock = dir.path().join("docker.sock");
        let upstream = TestUpstream::default();
        upstream.unix(&upstream_sock);
        let rec = recorder();
        let proxy = RecordingProxy::start("dockerd", Upstream::Unix(upstream_sock), rec.clone()).unwrap();

        // TCP client -> unix upstream.
        let listen = proxy.listen("workload").unwrap();
        let body = http().get(format!("http://{listen}/echo")).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "GET /echo host=localhost auth=- ");

        // Unix client -> unix upstream (DOCKER_HOST=unix://...).
        let client_sock = dir.path().join("recorded.sock");
        proxy.listen_unix("cleaner", &client_sock).unwrap();
        let stream = UnixStream::connect(&client_sock).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::get("/v1.41/containers/json?all=1")
            .header(header::HOST, "docker")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 404);
        resp.into_body().collect().await.unwrap();

        let h = wait_for_requests(&rec, 2).await;
        let got: Vec<_> = h.requests().map(|(_, r)| (r.client.clone(), r.upstream.clone(), r.route.clone())).collect();
        assert!(got.contains(&("workload".into(), "dockerd".into(), "/echo".into())), "{got:?}");
        assert!(got.contains(&("cleaner".into(), "dockerd".into(), "/containers/json".into())), "{got:?}");

        proxy.shutdown().await;
        assert!(!client_sock.exists(), "the listener's socket file is removed on shutdown");
    }

    #[tokio::test]
    async fn upgrades_are_tunnelled_and_recorded_when_closed() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("kernel").unwrap();
        let mut s = TcpStream::connect(listen).await.unwrap();
        s.write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n").await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            assert_eq!(s.read(&mut b).await.unwrap(), 1, "head: {}", String::from_utf8_lossy(&head));
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert!(requests(&rec).is_empty(), "recorded while the tunnel is open");
        drop(s);
        let h = wait_for_requests(&rec, 1).await;
        let (_, r) = h.requests().next().unwrap();
        assert_eq!((r.status, r.client.as_str()), (101, "kernel"));
    }

    #[tokio::test]
    async fn shutdown_is_bounded_records_cut_streams_and_stops_listening() {
        let upstream = TestUpstream::default();
        let (tx, rx) = mpsc::channel(4);
        *upstream.streams.lock().unwrap() = Some(rx);
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("dockerd", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("cleaner").unwrap();
        tx.send(Bytes::from_static(b"event")).await.unwrap();
        let mut resp = http().get(format!("http://{listen}/stream")).send().await.unwrap();
        assert_eq!(resp.chunk().await.unwrap().as_deref(), Some(&b"event"[..]));

        let started = Instant::now();
        proxy.shutdown().await;
        let took = started.elapsed();
        assert!(took >= SHUTDOWN_GRACE - Duration::from_millis(100), "graceful first: {took:?}");
        assert!(took < SHUTDOWN_GRACE + Duration::from_secs(1), "bounded: {took:?}");
        assert_eq!(requests(&rec).len(), 1, "the cut stream is recorded by the time shutdown returns");
        assert!(TcpStream::connect(listen).await.is_err(), "listener closed");
        assert!(proxy.listen("late").is_err());
        drop(tx);
    }

    #[tokio::test]
    async fn shutdown_is_quick_when_idle() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), recorder()).unwrap();
        let listen = proxy.listen("culler").unwrap();
        // An idle keep-alive client connection must not hold shutdown for the grace period.
        let client = http();
        client.get(format!("http://{listen}/status/200")).send().await.unwrap().bytes().await.unwrap();
        let started = Instant::now();
        proxy.shutdown().await;
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        proxy.shutdown().await;
    }

    #[tokio::test]
    async fn dropping_the_proxy_stops_its_listeners() {
        let upstream = TestUpstream::default();
        let addr = upstream.tcp().await;
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), recorder()).unwrap();
        let listen = proxy.listen("culler").unwrap();
        assert!(TcpStream::connect(listen).await.is_ok());
        drop(proxy);
        // Aborted tasks are dropped at the runtime's next turn.
        let deadline = Instant::now() + Duration::from_secs(2);
        while TcpStream::connect(listen).await.is_ok() {
            assert!(Instant::now() < deadline, "listener still open after drop");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn listening_outside_a_runtime_is_an_error_not_a_panic() {
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(([127, 0, 0, 1], 9).into()), recorder()).unwrap();
        assert!(proxy.listen("culler").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("token t"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(names, ["authorization", "content-length"]);

        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[tokio::test]
    async fn latency_is_arrival_to_end_and_at_is_arrival() {
        let upstream = TestUpstream::default();
        let (tx, rx) = mpsc::channel(1);
        *upstream.streams.lock().unwrap() = Some(rx);
        let addr = upstream.tcp().await;
        let rec = recorder();
        let proxy = RecordingProxy::start("hub", Upstream::Tcp(addr), rec.clone()).unwrap();
        let listen = proxy.listen("w").unwrap();
        let before = rec.now();
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(async move {
            let resp = http().get(format!("http://{listen}/stream")).send().await.unwrap();
            let _ = resp.bytes().await;
            let _ = done_tx.send(());
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(tx);
        done_rx.await.unwrap();
        let h = wait_for_requests(&rec, 1).await;
        let (at, r) = h.requests().next().unwrap();
        assert!(at >= before && at < before + Duration::from_millis(140), "stamped at arrival: {at:?}");
        assert!(r.latency >= Duration::from_millis(140), "{:?}", r.latency);
    }
}
