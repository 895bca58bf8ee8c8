//! `hubchaos bench`: what the recording proxy costs, measured against a direct connection in
//! the same run.
//!
//! The harness puts a [`RecordingProxy`] between the culler and the hub, so the proxy must not
//! be what the flood-replay scenarios measure. Two questions, two measurements:
//!
//! 1. **Throughput** (closed loop): `concurrency` keep-alive clients send back-to-back
//!    requests for `round_duration`, alternately direct to the upstream and through the proxy,
//!    `rounds` times each (alternating so a noisy neighbour hits both sides). Reported: the
//!    median req/s of each side and their ratio proxied/direct (goal >= [`THROUGHPUT_GOAL`]).
//! 2. **Latency** (open loop): requests are *sent on a fixed schedule* (`rate` per second),
//!    whether or not earlier ones have returned, so a stalled proxy shows up as latency
//!    instead of silently lowering the offered load (coordinated omission). Latency is
//!    measured from the actual send to the end of the body, into one HDR histogram per side;
//!    the sides alternate for `rounds` rounds of `rate_duration` each, for the same reason as
//!    above. Reported: p50/p90/p99/max per side and the p99 the proxy adds (goal <=
//!    [`ADDED_P99_GOAL`]).
//!
//! Also reported: process CPU time per request of each side (from `/proc/self/stat`, in
//! `USER_HZ` = 100 ticks/s), whose difference is what one request costs the proxy. When the
//! upstream answers in microseconds, as here, the closed-loop ratio is bounded by CPU: every
//! proxied request crosses two more loopback sockets, and on 2 cores the proxy competes with
//! the load generator and the upstream. The CPU cost per request is the number that carries
//! over to a real run, where the hub takes milliseconds per request.
//!
//! The upstream is a trivial hyper server answering `200 ok` at once, so everything measured
//! beyond it is HTTP + the proxy + the recorder (in memory, as in a run minus the file write).
//!
//! ## Runtime layout (pinned: the numbers are only comparable with the same layout)
//!
//! - the **upstream** runs on its own OS thread with a `current_thread` tokio runtime, like
//!   the single-threaded Python hub it stands for;
//! - the **load generator** runs on its own OS thread with a `current_thread` runtime (one
//!   fresh thread per phase), like the culler, an external single-threaded process;
//! - the **proxy** runs on the *caller's* runtime, as it does in a real run. `hubchaos bench`
//!   uses tokio's default `multi_thread` runtime (one worker per core: 2 on the reference
//!   machine). The report states the flavour and worker count it actually ran with.
//!
//! On a 2-core machine the load generator, the upstream and the proxy compete for the same
//! cores, so keep `concurrency` modest (default 4): more clients only measure the scheduler.
//!
//! Bounded: options are validated (at most [`MAX_ROUNDS`] rounds, [`MAX_PHASE`] per phase,
//! [`MAX_RATE`] req/s, [`MAX_CONCURRENCY`] clients), each request has a [`REQUEST_TIMEOUT`],
//! and the open loop never has more than [`MAX_IN_FLIGHT`] requests outstanding (extra sends
//! are counted as `dropped`). Defaults take about 30 s.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::observe::history::{secs, Recorder};
use crate::observe::recording_proxy::{RecordingProxy, Upstream};
use crate::stats::median;

/// Throughput goal: proxied req/s at least this fraction of direct req/s.
pub const THROUGHPUT_GOAL: f64 = 0.8;
/// Latency goal: the proxy adds at most this much to the p99.
pub const ADDED_P99_GOAL: Duration = Duration::from_millis(1);

pub const MAX_ROUNDS: usize = 10;
pub const MAX_PHASE: Duration = Duration::from_secs(60);
pub const MAX_RATE: u32 = 20_000;
pub const MAX_CONCURRENCY: usize = 64;
pub const MAX_IN_FLIGHT: u64 = 1_000;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Slowest latency the histogram tracks exactly; slower values are clamped (they are also
/// timeouts, see [`REQUEST_TIMEOUT`]).
const HISTOGRAM_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Keep-alive clients of the closed-loop throughput phase.
    pub concurrency: usize,
    /// Length of one measured throughput round (each side).
    #[serde(with = "secs")]
    pub round_duration: Duration,
    /// Throughput rounds per side (direct and proxied alternate).
    pub rounds: usize,
    /// Requests per second of the open-loop latency phase.
    pub rate: u32,
    /// Length of one measured latency round (each side; `rounds` rounds, alternating).
    #[serde(with = "secs")]
    pub rate_duration: Duration,
    /// Unmeasured load before every phase (connections, caches, allocator).
    #[serde(with = "secs")]
    pub warmup: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            round_duration: Duration::from_secs(3),
            rounds: 3,
            rate: 1_000,
            rate_duration: Duration::from_secs(1),
            warmup: Duration::from_millis(300),
        }
    }
}

impl BenchOptions {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!((1..=MAX_CONCURRENCY).contains(&self.concurrency), "concurrency must be 1..={MAX_CONCURRENCY}");
        anyhow::ensure!((1..=MAX_ROUNDS).contains(&self.rounds), "rounds must be 1..={MAX_ROUNDS}");
        anyhow::ensure!((1..=MAX_RATE).contains(&self.rate), "rate must be 1..={MAX_RATE} req/s");
        for (name, d) in [("round_duration", self.round_duration), ("rate_duration", self.rate_duration), ("warmup", self.warmup)] {
            anyhow::ensure!(d <= MAX_PHASE, "{name} must be at most {MAX_PHASE:?}");
        }
        anyhow::ensure!(!self.round_duration.is_zero() && !self.rate_duration.is_zero(), "phases must not be empty");
        Ok(())
    }
}

/// The result of [`recorder_bench`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub options: BenchOptions,
    /// `std::thread::available_parallelism`.
    pub cores: usize,
    /// The runtime layout the numbers were measured with.
    pub runtime: String,
    pub throughput: ThroughputReport,
    pub latency: LatencyReport,
    /// Requests sent through the proxy (warmups included) and requests it recorded: they
    /// must be equal, or the proxy lost records.
    pub proxied_sent: u64,
    pub recorded: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputReport {
    /// req/s of each round, in order.
    pub direct_rps: Vec<f64>,
    pub proxied_rps: Vec<f64>,
    pub direct_median_rps: f64,
    pub proxied_median_rps: f64,
    /// Median process CPU time per request (warmup included) of each side.
    #[serde(with = "secs")]
    pub direct_cpu_per_request: Duration,
    #[serde(with = "secs")]
    pub proxied_cpu_per_request: Duration,
    /// proxied - direct: what one request costs the proxy and the recorder.
    #[serde(with = "secs")]
    pub proxy_cpu_per_request: Duration,
    /// proxied / direct medians.
    pub ratio: f64,
    pub goal: f64,
    pub met: bool,
    /// Failed or timed-out requests over all rounds (should be 0).
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyReport {
    pub rate: u32,
    pub direct: LatencySummary,
    pub proxied: LatencySummary,
    #[serde(with = "secs")]
    pub added_p50: Duration,
    #[serde(with = "secs")]
    pub added_p99: Duration,
    #[serde(with = "secs")]
    pub goal_added_p99: Duration,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests the schedule sent in the measured window.
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// Sends skipped because [`MAX_IN_FLIGHT`] requests were outstanding.
    pub dropped: u64,
    #[serde(with = "secs")]
    pub p50: Duration,
    #[serde(with = "secs")]
    pub p90: Duration,
    #[serde(with = "secs")]
    pub p99: Duration,
    #[serde(with = "secs")]
    pub max: Duration,
}

impl BenchReport {
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write;
        let t = &self.throughput;
        let l = &self.latency;
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(s, "## Recording proxy benchmark\n");
        let _ = writeln!(s, "{} cores; {}\n", self.cores, self.runtime);
        let _ = writeln!(
            s,
            "### Throughput: closed loop, {} keep-alive clients, {} per round, {} rounds alternating\n",
            o.concurrency,
            fmt_duration(o.round_duration),
            o.rounds
        );
        let _ = writeln!(s, "| round | direct req/s | proxied req/s |");
        let _ = writeln!(s, "|---|---:|---:|");
        for (i, (d, p)) in t.direct_rps.iter().zip(&t.proxied_rps).enumerate() {
            let _ = writeln!(s, "| {} | {d:.0} | {p:.0} |", i + 1);
        }
        let _ = writeln!(s, "| **median** | **{:.0}** | **{:.0}** |\n", t.direct_median_rps, t.proxied_median_rps);
        let _ = writeln!(s, "Ratio proxied/direct: **{:.2}** (goal >= {:.2}: {}); errors: {}\n", t.ratio, t.goal, met(t.met), t.errors);
        let _ = writeln!(
            s,
            "Process CPU per request: direct {}, proxied {}: the proxy costs **{}** of CPU per request.\n",
            fmt_duration(t.direct_cpu_per_request),
            fmt_duration(t.proxied_cpu_per_request),
            fmt_duration(t.proxy_cpu_per_request)
        );
        let _ =
            writeln!(s, "### Latency: open loop, {} req/s, {} rounds of {} alternating\n", l.rate, o.rounds, fmt_duration(o.rate_duration));
        let _ = writeln!(s, "| | sent | ok | errors | dropped | p50 | p90 | p99 | max |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, x) in [("direct", &l.direct), ("proxied", &l.proxied)] {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                x.sent,
                x.ok,
                x.errors,
                x.dropped,
                fmt_duration(x.p50),
                fmt_duration(x.p90),
                fmt_duration(x.p99),
                fmt_duration(x.max)
            );
        }
        let _ = writeln!(
            s,
            "\nAdded by the proxy: p50 +{}, p99 **+{}** (goal <= {}: {})\n",
            fmt_duration(l.added_p50),
            fmt_duration(l.added_p99),
            fmt_duration(l.goal_added_p99),
            met(l.met)
        );
        let _ = writeln!(s, "Recorded {} of {} proxied requests.", self.recorded, self.proxied_sent);
        s
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Run both measurements; see the module docs for what and how.
pub async fn recorder_bench(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    let upstream = TrivialUpstream::start()?;
    let report = recorder_bench_against(upstream.addr, TRIVIAL_PATH, opts).await;
    upstream.stop().await;
    report
}

/// The same measurement against any HTTP upstream on loopback (e.g. the real hub's
/// `GET /hub/api/`): direct to `upstream` vs through a recording proxy in front of it.
pub async fn recorder_bench_against(upstream: SocketAddr, path: &str, opts: BenchOptions) -> anyhow::Result<BenchReport> {
    opts.validate()?;
    let runtime = describe_runtime();
    let recorder = Recorder::in_memory(Instant::now());
    let proxy = RecordingProxy::start("bench-upstream", Upstream::Tcp(upstream), recorder.clone())?;
    let proxied = proxy.listen("bench")?;
    let direct = upstream;
    let proxied_sent = Arc::new(AtomicU64::new(0));

    let mut direct_rps = Vec::new();
    let mut proxied_rps = Vec::new();
    let mut direct_cpu = Vec::new();
    let mut proxied_cpu = Vec::new();
    let mut errors = 0;
    for _ in 0..opts.rounds {
        for addr in [direct, proxied] {
            let (c, w, d) = (opts.concurrency, opts.warmup, opts.round_duration);
            let cpu_before = process_cpu();
            let uri = uri_for(addr, path);
            let r = on_own_thread("bench-load", move || closed_loop(uri, c, w, d)).await?;
            let cpu = process_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
            let cpu_per_request = cpu.map_or(0.0, |cpu| cpu.as_secs_f64() / r.sent.max(1) as f64);
            if addr == proxied {
                proxied_sent.fetch_add(r.sent, Ordering::Relaxed);
                proxied_rps.push(r.rps);
                proxied_cpu.push(cpu_per_request);
            } else {
                direct_rps.push(r.rps);
                direct_cpu.push(cpu_per_request);
            }
            errors += r.errors;
        }
    }

    let mut direct_lat = OpenLoop::new();
    let mut proxied_lat = OpenLoop::new();
    for _ in 0..opts.rounds {
        for addr in [direct, proxied] {
            let (rate, w, d) = (opts.rate, opts.warmup, opts.rate_duration);
            let uri = uri_for(addr, path);
            let r = on_own_thread("bench-load", move || open_loop(uri, rate, w, d)).await?;
            if addr == proxied {
                proxied_sent.fetch_add(r.total_sent, Ordering::Relaxed);
                proxied_lat.merge(&r);
            } else {
                direct_lat.merge(&r);
            }
        }
    }
    let direct_lat = direct_lat.summary();
    let proxied_lat = proxied_lat.summary();

    // Records land when response bodies end, a moment after the client saw them.
    let sent = proxied_sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut recorded = recorder.history().requests().count() as u64;
    while recorded < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        recorded = recorder.history().requests().count() as u64;
    }
    proxy.shutdown().await;

    // `validate` asks for at least one round, so every side has a median.
    let mid = |v: &[f64]| median(v).context("no throughput rounds");
    let direct_median_rps = mid(&direct_rps)?;
    let proxied_median_rps = mid(&proxied_rps)?;
    let direct_cpu_per_request = Duration::from_secs_f64(mid(&direct_cpu)?);
    let proxied_cpu_per_request = Duration::from_secs_f64(mid(&proxied_cpu)?);
    let ratio = if direct_median_rps > 0.0 { proxied_median_rps / direct_median_rps } else { 0.0 };
    let added_p50 = proxied_lat.p50.saturating_sub(direct_lat.p50);
    let added_p99 = proxied_lat.p99.saturating_sub(direct_lat.p99);
    Ok(BenchReport {
        options: opts.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runtime,
        throughput: ThroughputReport {
            direct_rps,
            proxied_rps,
            direct_median_rps,
            proxied_median_rps,
            direct_cpu_per_request,
            proxied_cpu_per_request,
            proxy_cpu_per_request: proxied_cpu_per_request.saturating_sub(direct_cpu_per_request),
            ratio,
            goal: THROUGHPUT_GOAL,
            met: ratio >= THROUGHPUT_GOAL,
            errors,
        },
        latency: LatencyReport {
            rate: opts.rate,
            met: added_p99 <= ADDED_P99_GOAL,
            direct: direct_lat,
            proxied: proxied_lat,
            added_p50,
            added_p99,
            goal_added_p99: ADDED_P99_GOAL,
        },
        proxied_sent: sent,
        recorded,
    })
}

fn describe_runtime() -> String {
    let proxy = match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            let flavor = match h.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => "current_thread".to_string(),
                tokio::runtime::RuntimeFlavor::MultiThread => "multi_thread".to_string(),
                other => format!("{other:?}"),
            };
            format!("{flavor}, {} worker(s)", h.metrics().num_workers())
        }
        Err(_) => "none".to_string(),
    };
    format!("proxy on the caller's tokio {proxy}; upstream and load generator each on their own thread (current_thread)")
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (fields 14 and 15,
/// in `USER_HZ` ticks, 100 per second on Linux). `None` where there is no procfs.
fn process_cpu() -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // after_comm starts at field 3, so field N is at index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// Run `make()` to completion on a fresh OS thread with its own `current_thread` runtime.
async fn on_own_thread<F, Fut, T>(name: &str, make: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let _ = tx.send(rt.map(|rt| rt.block_on(make())));
    })?;
    let result = rx.await.context("bench thread panicked")?;
    result.context("building the bench thread's runtime")
}

/// The upstream: `200 ok` to everything, on its own thread.
struct TrivialUpstream {
    addr: SocketAddr,
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl TrivialUpstream {
    fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let thread = std::thread::Builder::new().name("bench-upstream".into()).spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        },
                    }
                }
            });
            // Dropping the runtime here closes every connection.
        })?;
        Ok(Self { addr, cancel, thread })
    }

    async fn stop(self) {
        self.cancel.cancel();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

type LoadClient = Client<HttpConnector, Empty<Bytes>>;

fn load_client() -> LoadClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(http)
}

/// One GET to the end of its body, bounded by [`REQUEST_TIMEOUT`]. `true` if it was a 200.
async fn get_ok(client: &LoadClient, uri: &Uri) -> bool {
    let req = async {
        let resp = client.get(uri.clone()).await.ok()?;
        let ok = resp.status().is_success();
        resp.into_body().collect().await.ok()?;
        Some(ok)
    };
    matches!(tokio::time::timeout(REQUEST_TIMEOUT, req).await, Ok(Some(true)))
}

fn uri_for(addr: SocketAddr, path: &str) -> Uri {
    format!("http://{addr}{path}").parse().expect("valid URI")
}

/// The path the trivial upstream is asked for (a hub-like route, so the recorder templates it).
const TRIVIAL_PATH: &str = "/hub/api/users/bench/server";

struct ClosedLoop {
    rps: f64,
    /// Every request sent, warmup included.
    sent: u64,
    errors: u64,
}

async fn closed_loop(uri: Uri, concurrency: usize, warmup: Duration, duration: Duration) -> ClosedLoop {
    let client = load_client();
    let measure_from = Instant::now() + warmup;
    let until = measure_from + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move {
            let (mut sent, mut counted, mut errors) = (0u64, 0u64, 0u64);
            while Instant::now() < until {
                sent += 1;
                let ok = get_ok(&client, &uri).await;
                let now = Instant::now();
                if now >= measure_from && now <= until {
                    if ok {
                        counted += 1;
                    } else {
                        errors += 1;
                    }
                }
            }
            (sent, counted, errors)
        });
    }
    let (mut sent, mut counted, mut errors) = (0, 0, 0);
    while let Some(r) = tasks.join_next().await {
        if let Ok((s, c, e)) = r {
            sent += s;
            counted += c;
            errors += e;
        }
    }
    ClosedLoop { rps: counted as f64 / duration.as_secs_f64(), sent, errors }
}

/// One side's open-loop results, merged over rounds.
struct OpenLoop {
    histogram: Histogram<u64>,
    /// Requests the schedule sent in measured windows.
    sent: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
    /// Every request sent, warmup included.
    total_sent: u64,
}

impl OpenLoop {
    fn new() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, HISTOGRAM_MAX.as_micros() as u64, 3).expect("valid histogram bounds"),
            sent: 0,
            ok: 0,
            errors: 0,
            dropped: 0,
            total_sent: 0,
        }
    }

    fn merge(&mut self, other: &OpenLoop) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.sent += other.sent;
        self.ok += other.ok;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.total_sent += other.total_sent;
    }

    fn summary(&self) -> LatencySummary {
        let h = &self.histogram;
        let at = |q: f64| if h.is_empty() { Duration::ZERO } else { Duration::from_micros(h.value_at_quantile(q)) };
        LatencySummary {
            sent: self.sent,
            ok: self.ok,
            errors: self.errors,
            dropped: self.dropped,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: if h.is_empty() { Duration::ZERO } else { Duration::from_micros(h.max()) },
        }
    }
}

async fn open_loop(uri: Uri, rate: u32, warmup: Duration, duration: Duration) -> OpenLoop {
    let client = load_client();
    let interval = Duration::from_secs(1) / rate;
    let histogram = Arc::new(Mutex::new(OpenLoop::new().histogram));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let (mut sent, mut total_sent, mut dropped) = (0u64, 0u64, 0u64);

    let start = tokio::time::Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u32.. {
        let due = start + interval * i;
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due).await;
        let measured = due >= measure_from;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            dropped += u64::from(measured);
            continue;
        }
        total_sent += 1;
        sent += u64::from(measured);
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, uri, histogram, ok, errors, in_flight) =
            (client.clone(), uri.clone(), histogram.clone(), ok.clone(), errors.clone(), in_flight.clone());
        tasks.spawn(async move {
            let sent_at = Instant::now();
            let success = get_ok(&client, &uri).await;
            let latency = sent_at.elapsed();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            if !measured {
                return;
            }
            if success {
                ok.fetch_add(1, Ordering::Relaxed);
                let micros = (latency.as_micros() as u64).max(1);
                histogram.lock().expect("histogram poisoned").saturating_record(micros);
            } else {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}

    let histogram = std::mem::replace(&mut *histogram.lock().expect("histogram poisoned"), OpenLoop::new().histogram);
    OpenLoop { histogram, sent, ok: ok.load(Ordering::Relaxed), errors: errors.load(Ordering::Relaxed), dropped, total_sent }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BenchOptions {
        BenchOptions {
            concurrency: 2,
            round_duration: Duration::from_millis(200),
            rounds: 2,
            rate: 200,
            rate_duration: Duration::from_millis(200),
            warmup: Duration::from_millis(50),
        }
    }

    /// Smoke test: numbers come out and nothing is lost; performance is not asserted here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_smoke_produces_numbers() {
        let report = recorder_bench(tiny()).await.unwrap();
        let t = &report.throughput;
        assert_eq!((t.direct_rps.len(), t.proxied_rps.len()), (2, 2));
        assert!(t.direct_median_rps > 0.0 && t.proxied_median_rps > 0.0, "{t:?}");
        assert!(t.ratio > 0.0);
        assert_eq!(t.errors, 0);
        let l = &report.latency;
        assert!(l.direct.ok > 0 && l.proxied.ok > 0, "{l:?}");
        assert!(l.direct.p50 > Duration::ZERO && l.proxied.p99 >= l.proxied.p50);
        assert_eq!(report.recorded, report.proxied_sent, "every proxied request is recorded");
        let md = report.to_markdown();
        assert!(md.contains("Ratio proxied/direct") && md.contains("p99"), "{md}");
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["latency"]["added_p99"].is_number());
        assert!(report.runtime.contains("multi_thread, 2 worker"), "{}", report.runtime);
    }

    #[test]
    fn options_are_bounded() {
        assert!(BenchOptions::default().validate().is_ok());
        let bad = [
            BenchOptions { concurrency: 0, ..tiny() },
            BenchOptions { concurrency: MAX_CONCURRENCY + 1, ..tiny() },
            BenchOptions { rounds: MAX_ROUNDS + 1, ..tiny() },
            BenchOptions { rate: MAX_RATE + 1, ..tiny() },
            BenchOptions { round_duration: MAX_PHASE + Duration::from_secs(1), ..tiny() },
            BenchOptions { rate_duration: Duration::ZERO, ..tiny() },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }

    #[test]
    fn process_cpu_is_readable_and_grows() {
        let before = process_cpu().expect("procfs");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(process_cpu().unwrap() > before);
    }

    /// The full benchmark with the default options (about 30 s). Run with
    /// `cargo test --release -p hubchaos --lib bench::tests::full -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "benchmark: slow, run explicitly in release"]
    async fn full_recorder_bench() {
        let report = recorder_bench(BenchOptions::default()).await.unwrap();
        println!("{}", report.to_markdown());
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}
