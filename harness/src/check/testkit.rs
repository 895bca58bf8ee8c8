//! Builders for synthetic histories, shared by the unit tests of every check.
//!
//! Times are fractional seconds on the run clock; a user of `""` means "no user in the path".

use std::collections::BTreeMap;
use std::time::Duration;

use crate::observe::history::{Entry, Event, History, HubSnapshot, PhaseEvent, RequestRecord, SeededUsers, WORKLOAD_START, WORKLOAD_STOP};
use crate::observe::samples::Sample;

/// `DELETE`/`POST` of a user's default server.
pub(crate) const SERVER: &str = "/hub/api/users/{name}/server";
/// `DELETE`/`POST` of a named server.
pub(crate) const NAMED_SERVER: &str = "/hub/api/users/{name}/servers/{server}";
/// `DELETE`/`POST`/`GET` of one user.
pub(crate) const USER: &str = "/hub/api/users/{name}";
/// `GET` (list) / `POST` (bulk create) of users.
pub(crate) const USERS: &str = "/hub/api/users";

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A request to the hub through the recorder, with a 10 ms latency. The default server
/// (`Some("")`) is filled in for [`SERVER`].
pub(crate) fn req(at: f64, client: &str, method: &str, route: &str, user: &str, status: u16) -> Entry {
    let server = (route == SERVER).then(String::new);
    Entry {
        at: secs(at),
        event: Event::Request(RequestRecord {
            client: client.into(),
            upstream: "hub".into(),
            method: method.into(),
            route: route.into(),
            user: (!user.is_empty()).then(|| user.to_string()),
            server,
            status,
            latency: Duration::from_millis(10),
        }),
    }
}

/// A request on a named server of `user` ([`NAMED_SERVER`]).
pub(crate) fn req_named(at: f64, client: &str, method: &str, user: &str, server: &str, status: u16) -> Entry {
    let mut e = req(at, client, method, NAMED_SERVER, user, status);
    if let Event::Request(r) = &mut e.event {
        r.server = Some(server.into());
    }
    e
}

/// `n` copies of a request, `every` seconds apart from `from`.
pub(crate) fn repeat(n: usize, from: f64, every: f64, make: impl Fn(f64) -> Entry) -> Vec<Entry> {
    (0..n).map(|i| make(from + every * i as f64)).collect()
}

/// The same request entry with another latency.
pub(crate) fn with_latency(mut e: Entry, latency: f64) -> Entry {
    if let Event::Request(r) = &mut e.event {
        r.latency = secs(latency);
    }
    e
}

/// The same request entry sent to another upstream.
pub(crate) fn with_upstream(mut e: Entry, upstream: &str) -> Entry {
    if let Event::Request(r) = &mut e.event {
        r.upstream = upstream.into();
    }
    e
}

pub(crate) fn phase(at: f64, name: &str) -> Entry {
    Entry { at: secs(at), event: Event::Phase(PhaseEvent { name: name.into(), detail: String::new() }) }
}

/// The `workload-start` and `workload-stop` markers.
pub(crate) fn window(start: f64, stop: f64) -> Vec<Entry> {
    vec![phase(start, WORKLOAD_START), phase(stop, WORKLOAD_STOP)]
}

/// A hub snapshot: user -> running/pending server names (`""` = default server).
pub(crate) fn snapshot(at: f64, label: &str, users: &[(&str, &[&str])]) -> Entry {
    snapshot_with_admins(at, label, users, &[])
}

pub(crate) fn snapshot_with_admins(at: f64, label: &str, users: &[(&str, &[&str])], admins: &[&str]) -> Entry {
    Entry {
        at: secs(at),
        event: Event::Snapshot(HubSnapshot {
            label: label.into(),
            users: users.iter().map(|(u, s)| (u.to_string(), s.iter().map(|x| x.to_string()).collect())).collect(),
            admins: admins.iter().map(|a| a.to_string()).collect(),
        }),
    }
}

/// Seeded users by class.
pub(crate) fn seeded(at: f64, classes: &[(&str, &[&str])]) -> Entry {
    seeded_named(at, classes, &[])
}

/// Seeded users by class, plus named servers created per user.
pub(crate) fn seeded_named(at: f64, classes: &[(&str, &[&str])], named: &[(&str, &[&str])]) -> Entry {
    let map = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|x| x.to_string()).collect())).collect()
    };
    Entry { at: secs(at), event: Event::Seeded(SeededUsers { classes: map(classes), named_servers: map(named) }) }
}

pub(crate) fn sample(at: f64, component: &str, metric: &str, value: f64) -> Sample {
    Sample { at: secs(at), component: component.into(), metric: metric.into(), labels: BTreeMap::new(), value }
}

/// A history of `entries` sorted by time (stable: equal times keep their order).
pub(crate) fn history(mut entries: Vec<Entry>) -> History {
    entries.sort_by_key(|e| e.at);
    History::new(entries)
}

/// Concatenate groups of entries (e.g. `window(..)`, `repeat(..)`, single `req(..)`s).
pub(crate) fn all(groups: Vec<Vec<Entry>>) -> Vec<Entry> {
    groups.into_iter().flatten().collect()
}

/// A build stream of `repo` (watcher 0) requested at `requested`, its build started at
/// `started`, its terminal phase (`ready`/`failed`) at a time, closed by the server at `closed`.
pub(crate) fn stream(repo: &str, requested: f64, started: Option<f64>, terminal: Option<(&str, f64)>, closed: Option<f64>) -> Entry {
    use crate::observe::history::{BuildStreamRecord, PhaseAt};
    let mut record = BuildStreamRecord::new(repo.into(), 0, secs(requested));
    record.phases.push(PhaseAt { phase: "waiting".into(), at: secs(requested) });
    if let Some((phase, at)) = terminal {
        record.phases.push(PhaseAt { phase: phase.into(), at: secs(at) });
        record.terminal = Some(PhaseAt { phase: phase.into(), at: secs(at) });
    }
    record.build_started_at = started.map(secs);
    record.closed_at = closed.map(secs);
    record.events = 2;
    Entry { at: secs(requested), event: Event::BuildStream(record) }
}
