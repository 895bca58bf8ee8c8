//! The run's history: an append-only list of timestamped events, written to `history.jsonl`
//! as it grows (so a killed run still leaves evidence) and kept in memory for the checks.
//!
//! Every event carries `at`, the time since the run's clock started. Checks are pure functions
//! of a [`History`], so anything a check needs to know (which users were seeded idle, when the
//! workload window opened, what the hub said was running) must be recorded here as an event.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// Serialise a [`Duration`] as fractional seconds: readable in JSONL, exact enough (ns).
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// An optional [`Duration`] as fractional seconds (absent or `null`: none).
pub mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?.map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)).transpose()
    }
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Time since the run's clock started.
    #[serde(with = "secs")]
    pub at: Duration,
    #[serde(flatten)]
    pub event: Event,
}

/// Everything a run can observe. Kebab-case `type` tags keep the JSONL greppable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// One HTTP request that went through the recording proxy.
    Request(RequestRecord),
    /// One request the hub wrote to its own request log (see [`crate::observe::hub_log`]),
    /// stamped when the hub started it. A second source of request evidence, for clients no
    /// recording proxy sits in front of; kept apart from [`Event::Request`] because most
    /// requests are in both, and a check that read both would count them twice.
    LoggedRequest(RequestRecord),
    /// The hub's log was read for its requests: what it gave, and whose token each recorder
    /// client sends (to compare the two sources).
    HubLogRead(crate::observe::hub_log::HubLogRead),
    /// One workload operation (invoke .. complete).
    Op(OpRecord),
    /// A fault was injected or healed.
    Fault(FaultEvent),
    /// The supervisor restarted (or gave up on) a component.
    Restart(RestartEvent),
    /// What the hub said exists at a moment: users and their running servers.
    Snapshot(HubSnapshot),
    /// Users created by the harness, by class (never-started, stopped, idle, active, ...).
    Seeded(SeededUsers),
    /// A lifecycle marker: workload window open/closed, steady state results, ...
    Phase(PhaseEvent),
    /// A line of a component's own log that a check needs, or the start of its watch.
    Log(LogEvent),
    /// What a kind cluster's API said changed: a node's condition or taint, a pod of the run
    /// that ended or vanished (see [`crate::backend::kind::watch`]).
    Cluster(ClusterEvent),
    /// One BinderHub `/build` event stream, recorded when it ended (or the run did).
    BuildStream(BuildStreamRecord),
}

/// One `/build` event stream as a client saw it. `at` of the entry is when it was requested;
/// every time here is on the run's clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildStreamRecord {
    /// The sample repo's name.
    pub repo: String,
    /// Which of the repo's watchers (0-based).
    pub watcher: usize,
    #[serde(with = "secs")]
    pub requested_at: Duration,
    /// Each change of phase, with when it arrived (`waiting`, `fetching`, `building`, `ready`,
    /// `failed`, `unknown`, …; an event without a phase keeps the previous one).
    pub phases: Vec<PhaseAt>,
    /// The first event that says the build itself started (any event after `waiting`).
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub build_started_at: Option<Duration>,
    /// The first `ready` or `failed` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<PhaseAt>,
    /// When the server closed the stream (`None`: still open when the client stopped).
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Duration>,
    /// Events received in all.
    pub events: usize,
    /// The last message of a `failed` event, or the client's own error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The last messages of the stream (the build's log as the user saw it last), each cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl BuildStreamRecord {
    /// A stream of `repo`'s `watcher` asked for at `requested_at`, nothing received yet.
    pub fn new(repo: String, watcher: usize, requested_at: Duration) -> Self {
        Self {
            repo,
            watcher,
            requested_at,
            phases: Vec::new(),
            build_started_at: None,
            terminal: None,
            closed_at: None,
            events: 0,
            message: String::new(),
            log_tail: Vec::new(),
        }
    }

    /// `repo#watcher`: how checks and reports name one stream.
    pub fn name(&self) -> String {
        format!("{}#{}", self.repo, self.watcher)
    }

    /// How long the request waited in BinderHub's queue: from asking to the build's start;
    /// `None` if it never started.
    pub fn queue_wait(&self) -> Option<Duration> {
        self.build_started_at.map(|t| t.saturating_sub(self.requested_at))
    }
}

/// A phase and when it arrived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseAt {
    pub phase: String,
    #[serde(with = "secs")]
    pub at: Duration,
}

/// A change in a kind cluster, as its API reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum ClusterEvent {
    /// A node condition (`Ready`, `DiskPressure`, …) has a new status (the first reading of
    /// each is recorded too).
    NodeCondition { node: String, pool: String, condition: String, status: String, reason: String, message: String },
    /// A taint appeared on a node (`added`) or left it.
    NodeTaint { node: String, pool: String, key: String, effect: String, added: bool },
    /// A pod of the run reached Running.
    PodRunning { pod: String, node: String, pool: String },
    /// A pod of the run ended (phase `Failed` or `Succeeded`): the kubelet's reason and
    /// message (`Evicted`, "The node was low on resource: ephemeral-storage…") and the
    /// container's exit code and termination message where it has one.
    PodEnded { pod: String, node: String, pool: String, phase: String, reason: String, message: String, exit_code: Option<i32> },
    /// A pod of the run that had not ended is gone (deleted).
    PodGone { pod: String, node: String, pool: String },
    /// A container of a pod of the run restarted.
    PodRestart { pod: String, node: String, pool: String, restarts: u32 },
}

impl ClusterEvent {
    /// The pool of the node it happened on.
    pub fn pool(&self) -> &str {
        match self {
            ClusterEvent::NodeCondition { pool, .. }
            | ClusterEvent::NodeTaint { pool, .. }
            | ClusterEvent::PodRunning { pool, .. }
            | ClusterEvent::PodEnded { pool, .. }
            | ClusterEvent::PodGone { pool, .. }
            | ClusterEvent::PodRestart { pool, .. } => pool,
        }
    }
}

/// An HTTP request as the recorder saw it (or, in an [`Event::LoggedRequest`], as the hub
/// logged it: then `client` is the user or service that sent it, `anonymous` for none).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// Who sent it: the recorder listener it arrived on (`culler`, `workload`, `fault`, ...).
    pub client: String,
    /// What it was sent to (`hub`, `dockerd`, ...).
    pub upstream: String,
    pub method: String,
    /// The route template, e.g. `/hub/api/users/{name}/server`.
    pub route: String,
    /// The user named in the path, if the route has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The server named in the path: `Some("")` for the default server of `/users/{name}/server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// HTTP status; 0 when the upstream could not be reached (recorder answered 502).
    pub status: u16,
    /// Time from receiving the request head to the end of the response body.
    #[serde(with = "secs")]
    pub latency: Duration,
}

impl RequestRecord {
    /// `4xx`, `5xx`, `2xx`, ... or `unreachable`.
    pub fn status_class(&self) -> String {
        match self.status {
            0 => "unreachable".into(),
            s => format!("{}xx", s / 100),
        }
    }
}

/// The result of a workload operation, in Jepsen's three values.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OpResult {
    Ok,
    Fail,
    /// We do not know whether it took effect (timeout, connection reset).
    Indeterminate,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpRecord {
    pub workload: String,
    /// What was attempted, e.g. `start-server`, `reach-server`, `keep-active`.
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub result: OpResult,
    #[serde(with = "secs")]
    pub latency: Duration,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPhase {
    Injected,
    Healed,
    /// Heal failed or was only attempted from Drop.
    HealFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultEvent {
    /// The fault's stable kebab-case kind, e.g. `kill-process`.
    pub kind: String,
    /// What it targets, e.g. `proxy`.
    pub target: String,
    pub phase: FaultPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestartEvent {
    pub component: String,
    /// How the previous process ended, e.g. `signal: SIGKILL` or `exit code 1`.
    pub exit: String,
    /// 1 for the first restart of this component in this run.
    pub attempt: u32,
    /// How long the supervisor waited before starting it again.
    #[serde(with = "secs")]
    pub backoff: Duration,
}

/// What the hub reported through its REST API at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HubSnapshot {
    /// Why it was taken, e.g. `workload-start`, `end`.
    pub label: String,
    /// user name -> names of servers that are running or pending ("" = default server).
    pub users: BTreeMap<String, Vec<String>>,
    /// user names with the admin flag.
    #[serde(default)]
    pub admins: Vec<String>,
}

/// Users the harness created, by class, so checks know what the right outcome is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeededUsers {
    /// class -> user names. Classes used by the faults: `never-started`, `stopped`,
    /// `running-idle`, `running-active`, `admin`.
    pub classes: BTreeMap<String, Vec<String>>,
    /// user -> named servers created for it (idle, stopped).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named_servers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseEvent {
    /// e.g. `workload-start`, `workload-stop`, `steady-state-before`, `steady-state-after`.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What a log watcher recorded (see [`crate::observe::logs`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEvent {
    pub component: String,
    pub kind: LogKind,
    /// The line (cut), or for `watching` the patterns looked for.
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogKind {
    /// A watcher started reading the component's log (so "no line matched" is not "nobody
    /// was watching").
    Watching,
    /// A line that matched the watcher's patterns.
    Line,
}

pub const WORKLOAD_START: &str = "workload-start";
/// The faults due at the start (the setup: users that piled up, servers running) are in place;
/// the judged window opens here.
pub const SETUP_DONE: &str = "setup-done";
pub const WORKLOAD_STOP: &str = "workload-stop";

/// The recorded events of a run, sorted by time, plus the periodic samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub entries: Vec<Entry>,
    /// From `samples.jsonl`: resource curves and scraped metrics.
    pub samples: Vec<crate::observe::samples::Sample>,
}

impl History {
    pub fn new(entries: Vec<Entry>) -> Self {
        Self { entries, samples: Vec::new() }
    }

    pub fn with_samples(mut self, samples: Vec<crate::observe::samples::Sample>) -> Self {
        self.samples = samples;
        self
    }

    /// The samples of one metric of one component, in time order.
    pub fn series<'a>(&'a self, component: &'a str, metric: &'a str) -> impl Iterator<Item = &'a crate::observe::samples::Sample> + 'a {
        self.samples.iter().filter(move |s| s.component == component && s.metric == metric)
    }

    /// Read a `history.jsonl` written by a [`Recorder`].
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path)?;
        let mut entries = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
            entries.push(entry);
        }
        Ok(Self::new(entries))
    }

    pub fn requests(&self) -> impl Iterator<Item = (Duration, &RequestRecord)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Request(r) => Some((e.at, r)),
            _ => None,
        })
    }

    /// The requests the hub logged ([`Event::LoggedRequest`]); not in [`requests`](Self::requests).
    pub fn logged_requests(&self) -> impl Iterator<Item = (Duration, &RequestRecord)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::LoggedRequest(r) => Some((e.at, r)),
            _ => None,
        })
    }

    /// What reading the hub's log gave, if it was read.
    pub fn hub_log_read(&self) -> Option<&crate::observe::hub_log::HubLogRead> {
        self.entries.iter().find_map(|e| match &e.event {
            Event::HubLogRead(r) => Some(r),
            _ => None,
        })
    }

    pub fn build_streams(&self) -> impl Iterator<Item = &BuildStreamRecord> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::BuildStream(b) => Some(b),
            _ => None,
        })
    }

    pub fn ops(&self) -> impl Iterator<Item = (Duration, &OpRecord)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Op(o) => Some((e.at, o)),
            _ => None,
        })
    }

    pub fn faults(&self) -> impl Iterator<Item = (Duration, &FaultEvent)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Fault(f) => Some((e.at, f)),
            _ => None,
        })
    }

    pub fn restarts(&self) -> impl Iterator<Item = (Duration, &RestartEvent)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Restart(r) => Some((e.at, r)),
            _ => None,
        })
    }

    pub fn snapshots(&self) -> impl Iterator<Item = (Duration, &HubSnapshot)> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Snapshot(s) => Some((e.at, s)),
            _ => None,
        })
    }

    /// All seeded classes merged (a run may seed more than once).
    pub fn seeded(&self) -> SeededUsers {
        let mut all = SeededUsers::default();
        for e in &self.entries {
            if let Event::Seeded(s) = &e.event {
                for (class, names) in &s.classes {
                    all.classes.entry(class.clone()).or_default().extend(names.iter().cloned());
                }
                for (user, servers) in &s.named_servers {
                    all.named_servers.entry(user.clone()).or_default().extend(servers.iter().cloned());
                }
            }
        }
        all
    }

    /// When the named phase marker was first recorded.
    pub fn phase(&self, name: &str) -> Option<Duration> {
        self.entries.iter().find_map(|e| match &e.event {
            Event::Phase(p) if p.name == name => Some(e.at),
            _ => None,
        })
    }

    /// The window a rate, error or latency check judges, and how to say so in its summary:
    /// the workload window, or the whole run when the history has none.
    pub fn judged_span(&self) -> (Duration, Duration, &'static str) {
        match self.workload_window() {
            Some((s, e)) => (s, e, "in the workload window"),
            None => (Duration::ZERO, Duration::MAX, "over the whole run (no workload window)"),
        }
    }

    /// The judged window: from `setup-done` (or, without a setup, `workload-start`) to
    /// `workload-stop` (or the last event).
    pub fn workload_window(&self) -> Option<(Duration, Duration)> {
        let start = self.phase(SETUP_DONE).or_else(|| self.phase(WORKLOAD_START))?;
        let end = self.phase(WORKLOAD_STOP).or_else(|| self.entries.last().map(|e| e.at)).unwrap_or(start);
        Some((start, end))
    }
}

struct RecorderInner {
    clock: Instant,
    /// The wall-clock time of `clock`: what other programs' timestamps (the hub's log) are
    /// converted from. Taken once, when the recorder is made, so every conversion agrees.
    wall_start: SystemTime,
    writer: Option<BufWriter<File>>,
    entries: Vec<Entry>,
}

/// Append-only sink for a run's events, shared by every task of the run.
///
/// Each line is flushed as it is written: a run killed with SIGKILL keeps its history.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderInner>>,
}

impl Recorder {
    /// A recorder that writes `history.jsonl` at `path` as events arrive.
    pub fn to_file(path: &Path, clock: Instant) -> std::io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self::with_writer(Some(BufWriter::new(file)), clock))
    }

    /// A recorder that only keeps events in memory (unit tests, benches).
    pub fn in_memory(clock: Instant) -> Self {
        Self::with_writer(None, clock)
    }

    fn with_writer(writer: Option<BufWriter<File>>, clock: Instant) -> Self {
        let wall_start = SystemTime::now().checked_sub(clock.elapsed()).unwrap_or(SystemTime::UNIX_EPOCH);
        Self { inner: Arc::new(Mutex::new(RecorderInner { clock, wall_start, writer, entries: Vec::new() })) }
    }

    /// Time since the run's clock started.
    pub fn now(&self) -> Duration {
        self.inner.lock().expect("recorder poisoned").clock.elapsed()
    }

    pub fn clock(&self) -> Instant {
        self.inner.lock().expect("recorder poisoned").clock
    }

    /// The wall-clock time at which the run's clock reads zero.
    pub fn wall_start(&self) -> SystemTime {
        self.inner.lock().expect("recorder poisoned").wall_start
    }

    /// Record `event` as happening now.
    pub fn record(&self, event: Event) {
        let at = self.now();
        self.record_at(at, event);
    }

    /// Record `event` as having happened at `at` (e.g. a request, stamped when it arrived).
    pub fn record_at(&self, at: Duration, event: Event) {
        let entry = Entry { at, event };
        let mut inner = self.inner.lock().expect("recorder poisoned");
        if let Some(w) = inner.writer.as_mut() {
            // A history we cannot write is a run we cannot judge: but losing one line must
            // not take the run down; the in-memory copy still feeds the checks.
            if let Ok(line) = serde_json::to_string(&entry) {
                let _ = writeln!(w, "{line}").and_then(|_| w.flush());
            }
        }
        inner.entries.push(entry);
    }

    /// Record many events at once, each at its own time, with one flush of the file (the
    /// hub's request log of a flood is tens of thousands of events).
    pub fn record_all(&self, events: impl IntoIterator<Item = (Duration, Event)>) {
        let mut inner = self.inner.lock().expect("recorder poisoned");
        let inner = &mut *inner;
        for (at, event) in events {
            let entry = Entry { at, event };
            if let Some(w) = inner.writer.as_mut() {
                if let Ok(line) = serde_json::to_string(&entry) {
                    let _ = writeln!(w, "{line}");
                }
            }
            inner.entries.push(entry);
        }
        if let Some(w) = inner.writer.as_mut() {
            let _ = w.flush();
        }
    }

    pub fn phase(&self, name: &str, detail: impl Into<String>) {
        self.record(Event::Phase(PhaseEvent { name: name.into(), detail: detail.into() }));
    }

    /// A copy of everything recorded so far, sorted by time (requests are stamped at arrival
    /// but appended at completion).
    pub fn history(&self) -> History {
        let inner = self.inner.lock().expect("recorder poisoned");
        let mut entries = inner.entries.clone();
        entries.sort_by_key(|e| e.at);
        History::new(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::to_file(&path, Instant::now()).unwrap();
        rec.phase(WORKLOAD_START, "");
        rec.record_at(
            Duration::from_millis(1500),
            Event::Request(RequestRecord {
                client: "culler".into(),
                upstream: "hub".into(),
                method: "DELETE".into(),
                route: "/hub/api/users/{name}/server".into(),
                user: Some("u1".into()),
                server: Some(String::new()),
                status: 204,
                latency: Duration::from_micros(2500),
            }),
        );
        let loaded = History::load(&path).unwrap();
        assert_eq!(loaded.entries.len(), 2);
        let (at, req) = loaded.requests().next().unwrap();
        assert_eq!(at, Duration::from_millis(1500));
        assert_eq!(req.route, "/hub/api/users/{name}/server");
        assert_eq!(req.latency, Duration::from_micros(2500));
        assert!(loaded.phase(WORKLOAD_START).is_some());
    }

    #[test]
    fn history_is_sorted_by_time() {
        let rec = Recorder::in_memory(Instant::now());
        rec.record_at(Duration::from_secs(2), Event::Phase(PhaseEvent { name: "b".into(), detail: String::new() }));
        rec.record_at(Duration::from_secs(1), Event::Phase(PhaseEvent { name: "a".into(), detail: String::new() }));
        let h = rec.history();
        assert_eq!(h.phase("a"), Some(Duration::from_secs(1)));
        assert_eq!(h.entries[0].at, Duration::from_secs(1));
    }
}
