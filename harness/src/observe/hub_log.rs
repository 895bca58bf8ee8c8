//! The hub's own request log as a second source of request evidence, and a side-by-side
//! comparison with the recording proxy's.
//!
//! On `kind` the idle culler runs inside the hub pod: its requests never pass a recording
//! proxy. JupyterHub logs every request it finishes (`log_request` in `jupyterhub/log.py`,
//! 4.x-6.x), one line each:
//!
//! ```text
//! [I 2026-11-30 00:06:39.834 JupyterHub log:192] 200 GET /hub/api/users?state=[secret]&offset=0 (harness@127.0.0.1) 14.81ms
//! [I 2026-11-30 00:06:40.101 JupyterHub log:192] 302 GET /user/u1/api -> /hub/user/u1/api (@127.0.0.1) 0.59ms
//! ```
//!
//! that is `{status} {method} {uri}{location} ({user}@{ip}) {request_time:.2f}ms` after the
//! logger's `[level date time name module:line]`. [`parse_line`] turns one such line into a
//! [`RequestRecord`] the way the recorder makes one: the route template, user and server
//! from [`classify`] (which drops the query string, scrubbed or not), `client` the user or
//! service the hub says sent it (`anonymous` when none), upstream `hub`.
//!
//! What is and is not a request line: only lines of the `JupyterHub` logger from its `log`
//! module are. The single-user servers the hub spawns write to the same output, and theirs
//! look alike (`[I … ServerApp] 200 GET /user/u1/api (@127.0.0.1) 0.93ms`): their logger is
//! not `JupyterHub`, so they are skipped, as is everything else (and the JSON header dump
//! `log_request` writes before a 5xx line). A line of the request logger that does not parse
//! is counted as malformed ([`HubLogRead`]), never fatal: the log is evidence, not input.
//!
//! What the log does not show: requests logged at debug level (a 304, a static file or
//! `/hub/health` that succeeded, unless slower than 1 s) when the hub runs at `INFO`, as ours
//! does; and nothing about requests the hub never finished (it logs at the end).
//!
//! Time: the log's timestamp is the hub's local wall-clock time, to the millisecond
//! (truncated), written when the request finished. The local backend runs the hub with
//! `TZ=UTC`, so it is read as UTC; it becomes the run's clock through
//! [`Recorder::wall_start`] and is moved back by the request's duration, so `at` is when the
//! hub started the request, as the recorder stamps a request when it arrives ([`run_clock_at`]).
//!
//! The records go into the history as [`Event::LoggedRequest`], never as
//! [`Event::Request`]: most requests are in both sources, and every check counts
//! [`History::requests`]. [`side_by_side`] compares the two over the judged window.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::history::{Event, History, Recorder, RequestRecord};
use super::routes::classify;

/// The logger name of the hub's own lines (`%(name)s` of its log format).
pub const HUB_LOGGER: &str = "JupyterHub";
/// The module that writes the request lines (`jupyterhub/log.py`).
const REQUEST_MODULE: &str = "log";
/// `client` of a request the hub logged without a user or service.
pub const ANONYMOUS: &str = "anonymous";
/// At most this many characters of the first malformed line are kept.
const SAMPLE_CHARS: usize = 300;

/// One request line of the hub's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedLine {
    /// The line's timestamp (when the hub finished the request), read as UTC.
    pub logged_at: SystemTime,
    pub record: RequestRecord,
}

/// What one line of the hub's log is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Not a line of the hub's request logger.
    Other,
    Request(LoggedLine),
    /// A line of the request logger that does not read as a request.
    Malformed,
}

/// Read one line of the hub's log.
pub fn parse_line(line: &str) -> Line {
    let line = line.trim_end();
    let Some((header, message)) = line.strip_prefix('[').and_then(|l| l.split_once("] ")) else { return Line::Other };
    // `I 2026-11-30 00:06:39.834 JupyterHub log:192`
    let mut fields = header.split(' ');
    let (Some(_level), Some(date), Some(time), Some(logger), Some(place), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Line::Other;
    };
    if logger != HUB_LOGGER || place.split(':').next() != Some(REQUEST_MODULE) {
        return Line::Other;
    }
    // The request headers dumped (as JSON) before a 5xx line.
    if message.starts_with('{') {
        return Line::Other;
    }
    let Ok(logged_at) = humantime::parse_rfc3339_weak(&format!("{date} {time}")) else { return Line::Malformed };
    match parse_message(message) {
        Some(record) => Line::Request(LoggedLine { logged_at, record }),
        None => Line::Malformed,
    }
}

/// `200 GET /hub/api/users?x=1 -> /elsewhere (name@ip) 6.40ms` (the ` -> ` part only on
/// redirects). The uri and the location have no spaces (the hub logs them as sent, encoded);
/// the name may have any character, so it is read from the outer parentheses and split at
/// the last `@` (an address has none).
fn parse_message(message: &str) -> Option<RequestRecord> {
    let (status, rest) = message.split_once(' ')?;
    let status: u16 = status.parse().ok().filter(|s| (100..=599).contains(s))?;
    let (method, rest) = rest.split_once(' ')?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let (rest, millis) = rest.strip_suffix("ms")?.rsplit_once(' ')?;
    let latency = parse_millis(millis)?;
    let (uri, rest) = rest.split_once(' ')?;
    let who = match rest.strip_prefix("-> ") {
        Some(redirect) => redirect.split_once(' ')?.1,
        None => rest,
    };
    let (user, _ip) = who.strip_prefix('(')?.strip_suffix(')')?.rsplit_once('@')?;
    let route = classify(uri);
    Some(RequestRecord {
        client: if user.is_empty() { ANONYMOUS.into() } else { user.into() },
        upstream: "hub".into(),
        method: method.into(),
        route: route.template,
        user: route.user,
        server: route.server,
        status,
        latency,
    })
}

/// `14.81` (milliseconds, as `{:.2f}` writes them) exactly, without going through a float.
fn parse_millis(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos_of_frac: u64 = format!("{frac:0<6}").parse().ok()?;
    Some(Duration::from_millis(whole.parse().ok()?) + Duration::from_nanos(nanos_of_frac))
}

/// A logged request's time on the run's clock: its log time (the end) less its duration,
/// since `wall_start` (when the run's clock read zero). A time before the clock started
/// (the log's millisecond truncation) is zero.
pub fn run_clock_at(logged_at: SystemTime, latency: Duration, wall_start: SystemTime) -> Duration {
    logged_at.duration_since(wall_start).unwrap_or(Duration::ZERO).saturating_sub(latency)
}

/// Whose token each recorder client sends, so the two sources' client names can be compared:
/// the recorder names a request by the listener it arrived on (`culler`, `workload`,
/// `fault`, ...), the hub by the user or service that owns the token (`idle-culler`,
/// `harness`, ...). It is a fact of the deployment, so the backend says it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenOwners {
    /// recorder client -> the hub user or service whose token it sends.
    pub by_client: BTreeMap<String, String>,
    /// The owner of every other client's token (the harness service's).
    pub otherwise: String,
}

impl TokenOwners {
    /// The name the hub gives requests of recorder client `client`.
    pub fn owner<'a>(&'a self, client: &'a str) -> &'a str {
        self.by_client.get(client).map(String::as_str).unwrap_or(&self.otherwise)
    }
}

/// Where a backend keeps the hub's log, and who is who in it.
#[derive(Debug, Clone, PartialEq)]
pub struct HubLogSource {
    pub path: PathBuf,
    pub token_owners: TokenOwners,
    /// Services no recording proxy sits in front of (hub name -> the recorder client the
    /// checks know them by): their logged requests are also recorded as
    /// [`Event::Request`]s, the only evidence of them there is. On `kind` the culler inside the
    /// hub pod (`jupyterhub-idle-culler` -> `culler`); empty on `local`, where every client
    /// passes the recorder.
    pub unproxied: BTreeMap<String, String>,
}

/// What reading the hub's log gave (recorded as [`Event::HubLogRead`] once the log is read, so
/// "no logged requests" can be told from "the log was not read").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HubLogRead {
    /// Lines read in all.
    pub lines: usize,
    /// Request lines recorded.
    pub requests: usize,
    /// Lines of the request logger that did not read as a request.
    pub malformed: usize,
    /// The first of them (cut).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_malformed: String,
    pub token_owners: TokenOwners,
}

impl fmt::Display for HubLogRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines: {} requests, {} malformed", self.lines, self.requests, self.malformed)?;
        if !self.first_malformed.is_empty() {
            write!(f, " (first: {})", self.first_malformed)?;
        }
        Ok(())
    }
}

/// Read the hub's log once, record each request as an [`Event::LoggedRequest`] (one flush for
/// all) and then the [`Event::HubLogRead`]. One pass, a line at a time: a flood's log is tens
/// of thousands of lines.
pub fn record(source: &HubLogSource, recorder: &Recorder) -> std::io::Result<HubLogRead> {
    let file = std::fs::File::open(&source.path)?;
    let wall_start = recorder.wall_start();
    let mut read = HubLogRead { token_owners: source.token_owners.clone(), ..HubLogRead::default() };
    let mut events = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        read.lines += 1;
        let line = String::from_utf8_lossy(&buf);
        match parse_line(&line) {
            Line::Other => {}
            Line::Request(l) => {
                let at = run_clock_at(l.logged_at, l.record.latency, wall_start);
                if let Some(client) = source.unproxied.get(&l.record.client) {
                    events.push((at, Event::Request(RequestRecord { client: client.clone(), ..l.record.clone() })));
                }
                events.push((at, Event::LoggedRequest(l.record)));
            }
            Line::Malformed => {
                read.malformed += 1;
                if read.first_malformed.is_empty() {
                    read.first_malformed = line.trim_end().chars().take(SAMPLE_CHARS).collect();
                }
            }
        }
    }
    read.requests = events.len();
    recorder.record_all(events);
    recorder.record(Event::HubLogRead(read.clone()));
    Ok(read)
}

/// One (client, method, route, status) and how many requests each source counted in the window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceRow {
    /// As the hub names it (the recorder's clients through [`TokenOwners`]).
    pub client: String,
    pub method: String,
    pub route: String,
    pub status: u16,
    /// Through the recording proxy (to the hub).
    pub recorded: usize,
    /// In the hub's log.
    pub logged: usize,
}

/// Both sources over the judged window.
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySide {
    pub from: Duration,
    pub to: Duration,
    /// The recorder's requests to the hub per recorder client.
    pub recorded_by_client: BTreeMap<String, usize>,
    /// The hub's logged requests per user or service.
    pub logged_by_client: BTreeMap<String, usize>,
    /// The rows whose counts differ, largest difference first.
    pub differing: Vec<SourceRow>,
    /// Rows in all (differing or not).
    pub rows: usize,
    pub read: HubLogRead,
}

/// Count the requests to the hub per (client, method, route, status) from both sources over
/// the judged window ([`History::judged_span`]) and keep the rows where they differ. The
/// recorder's clients are named as the hub names them ([`TokenOwners`]). `None` when the
/// hub's log was not read.
pub fn side_by_side(history: &History) -> Option<SideBySide> {
    let read = history.hub_log_read()?.clone();
    let (from, to, _) = history.judged_span();
    let inside = |at: Duration| at >= from && at <= to;
    let mut rows: BTreeMap<(String, String, String, u16), (usize, usize)> = BTreeMap::new();
    let mut recorded_by_client = BTreeMap::new();
    let mut logged_by_client = BTreeMap::new();
    for (_, r) in history.requests().filter(|(at, r)| inside(*at) && r.upstream == "hub") {
        *recorded_by_client.entry(r.client.clone()).or_insert(0) += 1;
        let client = read.token_owners.owner(&r.client).to_string();
        rows.entry((client, r.method.clone(), r.route.clone(), r.status)).or_default().0 += 1;
    }
    for (_, r) in history.logged_requests().filter(|(at, _)| inside(*at)) {
        *logged_by_client.entry(r.client.clone()).or_insert(0) += 1;
        rows.entry((r.client.clone(), r.method.clone(), r.route.clone(), r.status)).or_default().1 += 1;
    }
    let total = rows.len();
    let mut differing: Vec<SourceRow> = rows
        .into_iter()
        .filter(|(_, (recorded, logged))| recorded != logged)
        .map(|((client, method, route, status), (recorded, logged))| SourceRow { client, method, route, status, recorded, logged })
        .collect();
    differing.sort_by_key(|r| std::cmp::Reverse(r.recorded.abs_diff(r.logged)));
    Some(SideBySide { from, to, recorded_by_client, logged_by_client, differing, rows: total, read })
}

impl SideBySide {
    /// The hub names of the recorder's clients, for a reader matching the two totals.
    pub fn recorded_as(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut by_owner: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for client in self.recorded_by_client.keys() {
            by_owner.entry(self.read.token_owners.owner(client)).or_default().insert(client);
        }
        by_owner
    }
}

/// Read `path` if it exists (a run whose hub never started has no log): `Ok(None)` without one.
pub fn record_if_present(source: &HubLogSource, recorder: &Recorder) -> std::io::Result<Option<HubLogRead>> {
    match record(source, recorder) {
        Ok(read) => Ok(Some(read)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::observe::history::{Entry, PhaseEvent, SETUP_DONE, WORKLOAD_STOP};

    fn request(line: &str) -> LoggedLine {
        match parse_line(line) {
            Line::Request(l) => l,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_2xx_with_a_secret_query_is_its_route_without_the_query() {
        let l = request(
            "[I 2026-11-30 00:06:39.856 JupyterHub log:192] 200 GET /hub/api/users?state=[secret]&offset=0&limit=200 (harness@127.0.0.1) 14.81ms",
        );
        assert_eq!(l.logged_at, at("2026-11-30T00:06:39.856Z"));
        let r = l.record;
        assert_eq!((r.client.as_str(), r.upstream.as_str(), r.method.as_str()), ("harness", "hub", "GET"));
        assert_eq!((r.route.as_str(), r.user.as_deref(), r.server.as_deref()), ("/hub/api/users", None, None));
        assert_eq!(r.status, 200);
        assert_eq!(r.latency, Duration::from_micros(14_810));
    }

    #[test]
    fn the_hub_api_root_and_an_anonymous_request() {
        let r = request("[I 2026-11-30 00:06:39.825 JupyterHub log:192] 200 GET /hub/api/ (@127.0.0.1) 0.84ms").record;
        assert_eq!((r.client.as_str(), r.route.as_str(), r.latency), (ANONYMOUS, "/hub/api/", Duration::from_micros(840)));
    }

    #[test]
    fn a_4xx_and_a_5xx_carry_their_status_user_and_server() {
        let r = request("[W 2026-11-30 00:06:41.000 JupyterHub log:192] 404 DELETE /hub/api/users/u-0001 (idle-culler@127.0.0.1) 3.10ms")
            .record;
        assert_eq!((r.status, r.method.as_str(), r.route.as_str()), (404, "DELETE", "/hub/api/users/{name}"));
        assert_eq!((r.client.as_str(), r.user.as_deref(), r.server), ("idle-culler", Some("u-0001"), None));
        let r =
            request("[E 2026-11-30 00:06:42.000 JupyterHub log:192] 500 POST /hub/api/users/al%40ice/server (al@ice@::1) 1203.50ms").record;
        assert_eq!((r.status, r.route.as_str()), (500, "/hub/api/users/{name}/server"));
        assert_eq!((r.client.as_str(), r.user.as_deref(), r.server.as_deref()), ("al@ice", Some("al@ice"), Some("")));
        assert_eq!(r.latency, Duration::from_micros(1_203_500));
    }

    #[test]
    fn a_redirect_is_its_own_path_not_its_target() {
        let r = request(
            "[I 2026-11-29 23:22:41.223 JupyterHub log:192] 302 GET /user/u1/api -> /hub/user/u1/api?redirects=1 (@127.0.0.1) 0.59ms",
        )
        .record;
        assert_eq!((r.status, r.route.as_str(), r.client.as_str()), (302, "/user/{name}/{rest}", ANONYMOUS));
        assert_eq!(r.user.as_deref(), Some("u1"));
    }

    #[test]
    fn a_named_server_and_a_secret_in_the_path() {
        let r = request(
            "[I 2026-11-30 00:07:00.000 JupyterHub log:192] 204 DELETE /hub/api/users/u1/servers/lab (idle-culler@127.0.0.1) 12.34ms",
        )
        .record;
        assert_eq!(
            (r.route.as_str(), r.user.as_deref(), r.server.as_deref()),
            ("/hub/api/users/{name}/servers/{server}", Some("u1"), Some("lab"))
        );
        let r = request(
            "[I 2026-11-30 00:07:00.000 JupyterHub log:192] 200 GET /hub/api/authorizations/token/[secret] (harness@127.0.0.1) 1.00ms",
        )
        .record;
        assert_eq!(r.route, "/hub/api/authorizations/token/{token}");
    }

    #[test]
    fn other_lines_are_skipped_and_broken_request_lines_are_malformed() {
        for other in [
            "",
            "garbage",
            "    \"Host\": \"127.0.0.1:8081\",",
            // A single-user server's request line, written to the same output.
            "[I 2026-11-29 23:14:21.457 ServerApp] 200 GET /user/u1/api (@127.0.0.1) 0.93ms",
            "[I 2026-11-29 23:14:21.457 SingleUserNotebookApp log:192] 200 GET /user/u1/api (u1@127.0.0.1) 0.93ms",
            "[I 2026-11-30 00:06:33.101 JupyterHub app:3523] Starting JupyterHub",
            // The header dump before a 5xx line.
            "[E 2026-11-30 00:06:42.000 JupyterHub log:184] {",
        ] {
            assert_eq!(parse_line(other), Line::Other, "{other:?}");
        }
        for broken in [
            "[I 2026-11-30 00:06:39.834 JupyterHub log:192] 200 GET /hub/api/ (harness@127.0.0.1)",
            "[I 2026-11-30 00:06:39.834 JupyterHub log:192] 200 GET /hub/api/ harness 6.40ms",
            "[I 2026-11-30 00:06:39.834 JupyterHub log:192] ok GET /hub/api/ (harness@127.0.0.1) 6.40ms",
            "[I 2026-11-30 00:06:39.834 JupyterHub log:192] 200 get /hub/api/ (harness@127.0.0.1) 6.40ms",
            "[I 2026-11-30 00:06:39.834 JupyterHub log:192] 200 GET /hub/api/ (harness@127.0.0.1) 6,40ms",
            "[I 2026-13-30 00:06:39.834 JupyterHub log:192] 200 GET /hub/api/ (harness@127.0.0.1) 6.40ms",
        ] {
            assert_eq!(parse_line(broken), Line::Malformed, "{broken:?}");
        }
    }

    #[test]
    fn the_log_time_less_the_duration_is_on_the_run_clock() {
        let wall_start = at("2026-11-30T00:06:30Z");
        let logged = at("2026-11-30T00:06:39.834Z");
        assert_eq!(run_clock_at(logged, Duration::from_micros(6_400), wall_start), Duration::from_micros(9_827_600));
        // Before the clock started (truncated milliseconds): zero.
        assert_eq!(run_clock_at(at("2026-11-30T00:06:29.999Z"), Duration::ZERO, wall_start), Duration::ZERO);
        assert_eq!(run_clock_at(at("2026-11-30T00:06:30.001Z"), Duration::from_millis(5), wall_start), Duration::ZERO);
    }

    #[test]
    fn the_recorders_wall_start_is_its_clock_in_wall_time() {
        let clock = Instant::now() - Duration::from_secs(5);
        let before = SystemTime::now();
        let rec = Recorder::in_memory(clock);
        let back = before.duration_since(rec.wall_start()).unwrap();
        assert!(back >= Duration::from_millis(4_900) && back <= Duration::from_millis(5_100), "{back:?}");
    }

    fn owners() -> TokenOwners {
        TokenOwners { by_client: [("culler".to_string(), "idle-culler".to_string())].into(), otherwise: "harness".into() }
    }

    #[test]
    fn reading_a_log_records_logged_requests_apart_and_counts_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let rec = Recorder::in_memory(Instant::now());
        let t = |offset_ms: u64| {
            humantime::format_rfc3339_millis(rec.wall_start() + Duration::from_millis(offset_ms))
                .to_string()
                .replace('T', " ")
                .replace('Z', "")
        };
        let log = format!(
            "[I {} JupyterHub app:3523] Starting\n\
             [I {} JupyterHub log:192] 204 DELETE /hub/api/users/u1/server (idle-culler@127.0.0.1) 10.00ms\n\
             [I {} ServerApp] 200 GET /user/u1/api (@127.0.0.1) 0.93ms\n\
             [I {} JupyterHub log:192] 200 GET /hub/api/ (harness@127.0.0.1) broken\n\
             [W {} JupyterHub log:192] 403 DELETE /hub/api/users/u2 (idle-culler@127.0.0.1) 1.50ms\n",
            t(0),
            t(2_010),
            t(2_500),
            t(2_600),
            t(3_000),
        );
        std::fs::write(&path, log).unwrap();
        let read = record(&HubLogSource { path: path.clone(), token_owners: owners(), unproxied: Default::default() }, &rec).unwrap();
        assert_eq!((read.lines, read.requests, read.malformed), (5, 2, 1));
        assert!(read.first_malformed.contains("broken"), "{read}");
        let h = rec.history();
        assert_eq!(h.requests().count(), 0, "logged requests are not proxy requests");
        let logged: Vec<_> = h.logged_requests().map(|(at, r)| (at, r.status, r.client.as_str())).collect();
        assert_eq!(logged.iter().map(|(_, s, c)| (*s, *c)).collect::<Vec<_>>(), vec![(204, "idle-culler"), (403, "idle-culler")]);
        // Logged at 2.010 s after 10 ms and at 3.000 s after 1.5 ms; the log's milliseconds are
        // truncated, so each may read up to 1 ms early.
        for ((at, _, _), want) in logged.iter().zip([Duration::from_millis(2_000), Duration::from_micros(2_998_500)]) {
            assert!(*at <= want && want - *at < Duration::from_millis(1), "{at:?} for {want:?}");
        }
        assert_eq!(h.hub_log_read(), Some(&read));
        let missing = HubLogSource { path: dir.path().join("none.log"), token_owners: owners(), unproxied: Default::default() };
        assert_eq!(record_if_present(&missing, &rec).unwrap(), None);

        // A service no recorder sees (the culler in the hub pod on kind) is also a request of
        // the client the checks know it by; everyone else's lines stay logged requests only.
        let rec = Recorder::in_memory(Instant::now());
        let unproxied = [("idle-culler".to_string(), "culler".to_string())].into();
        record(&HubLogSource { path, token_owners: owners(), unproxied }, &rec).unwrap();
        let h = rec.history();
        let as_requests: Vec<_> = h.requests().map(|(_, r)| (r.client.as_str(), r.status, r.route.as_str())).collect();
        assert_eq!(as_requests, vec![("culler", 204, "/hub/api/users/{name}/server"), ("culler", 403, "/hub/api/users/{name}")]);
        assert_eq!(h.logged_requests().count(), 2, "and they are still in the log's own evidence");
    }

    fn req(client: &str, method: &str, route: &str, status: u16) -> RequestRecord {
        RequestRecord {
            client: client.into(),
            upstream: "hub".into(),
            method: method.into(),
            route: route.into(),
            user: None,
            server: None,
            status,
            latency: Duration::from_millis(1),
        }
    }

    fn entry(at: f64, event: Event) -> Entry {
        Entry { at: Duration::from_secs_f64(at), event }
    }

    fn phase(at: f64, name: &str) -> Entry {
        entry(at, Event::Phase(PhaseEvent { name: name.into(), detail: String::new() }))
    }

    #[test]
    fn side_by_side_names_clients_as_the_hub_does_and_keeps_the_rows_that_differ() {
        let del = "/hub/api/users/{name}/server";
        let mut entries = vec![phase(1.0, SETUP_DONE), phase(10.0, WORKLOAD_STOP)];
        for t in [2.0, 3.0, 4.0] {
            entries.push(entry(t, Event::Request(req("culler", "DELETE", del, 204))));
            entries.push(entry(t + 0.001, Event::LoggedRequest(req("idle-culler", "DELETE", del, 204))));
        }
        // The proxy saw the workload's request; the hub logged it under the harness's token.
        entries.push(entry(5.0, Event::Request(req("workload", "GET", "/hub/api/users", 200))));
        entries.push(entry(5.0, Event::LoggedRequest(req("harness", "GET", "/hub/api/users", 200))));
        // Only in the log: the samplers go to the hub directly, anonymous readiness checks.
        entries.push(entry(6.0, Event::LoggedRequest(req("harness", "GET", "/hub/metrics", 200))));
        entries.push(entry(6.5, Event::LoggedRequest(req(ANONYMOUS, "GET", "/hub/api/", 200))));
        entries.push(entry(6.6, Event::LoggedRequest(req(ANONYMOUS, "GET", "/hub/api/", 200))));
        // Only in the recorder: a client that hung up (499) and another upstream.
        entries.push(entry(7.0, Event::Request(req("culler", "GET", "/hub/api/users", 499))));
        entries.push(entry(7.0, Event::Request(RequestRecord { upstream: "dockerd".into(), ..req("cleaner", "GET", "/info", 200) })));
        // Outside the window: not counted.
        entries.push(entry(0.5, Event::LoggedRequest(req("harness", "GET", "/hub/api/", 200))));
        entries.push(entry(11.0, Event::Request(req("culler", "DELETE", del, 204))));
        let h = History::new(entries.clone());
        assert_eq!(side_by_side(&h), None, "no side by side before the log was read");

        entries.push(entry(12.0, Event::HubLogRead(HubLogRead { token_owners: owners(), ..HubLogRead::default() })));
        let s = side_by_side(&History::new(entries)).unwrap();
        assert_eq!((s.from, s.to), (Duration::from_secs(1), Duration::from_secs(10)));
        assert_eq!(s.recorded_by_client, [("culler".to_string(), 4), ("workload".to_string(), 1)].into());
        assert_eq!(s.logged_by_client, [(ANONYMOUS.to_string(), 2), ("harness".to_string(), 2), ("idle-culler".to_string(), 3)].into());
        let rows: Vec<_> = s.differing.iter().map(|r| (r.client.as_str(), r.route.as_str(), r.status, r.recorded, r.logged)).collect();
        assert_eq!(
            rows,
            vec![(ANONYMOUS, "/hub/api/", 200, 0, 2), ("harness", "/hub/metrics", 200, 0, 1), ("idle-culler", "/hub/api/users", 499, 1, 0),]
        );
        assert_eq!(s.rows, 5, "the culler's DELETEs and the workload's GET agree");
        assert_eq!(s.recorded_as()["harness"], ["workload"].into());
    }
}
