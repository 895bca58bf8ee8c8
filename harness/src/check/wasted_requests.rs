//! `wasted-requests`: a client must not send requests that cannot do anything useful: stopping a
//! server that is not running, deleting a user that no longer exists.
//!
//! Guards against the 2018-04-18 culler flood: the upgraded culler sent
//! `DELETE /hub/api/users/{name}/server` for servers that were not running; the exception skipped
//! the following `DELETE /hub/api/users/{name}`, users accumulated, and every cull round sent more
//! useless stops until the hub fell over. The hub of that time answered 400 ("… is not running"),
//! but JupyterHub 6.1.1 answers such a stop with 204, so the bug is invisible in status codes:
//! this check decides from a model of the hub's state, replayed from the history.
//!
//! The model (a user exists or not; which of its servers run, pending counting as running):
//!
//! 1. Initial state, at time `t0`: the latest [`HubSnapshot`](crate::observe::history::HubSnapshot)
//!    at or before the workload start (without a workload window: the one labelled
//!    `workload-start`). Failing that, the seeded classes, at the last `Seeded` event:
//!    `running-idle` and `running-active` users have their default server running; every other
//!    seeded user exists without servers; named servers are stopped.
//! 2. Every request from `t0` on, of every client, in arrival order, changes the model only if
//!    it was answered 2xx: a `POST` of a server starts it (and implies its user exists), a `DELETE`
//!    of a server stops it, `DELETE /hub/api/users/{name}` removes the user and its servers,
//!    `POST /hub/api/users/{name}` creates the user. `POST /hub/api/users` (bulk) names no user
//!    in its route and is ignored.
//! 3. Only requests of `client` are judged, against the model as it was just before them: a stop
//!    of a server that was not running is a wasted stop; a delete of a user that did not exist
//!    is a wasted delete. A 404 answer is the hub saying the target is absent, so it is wasted
//!    whatever the model says. A delete the model thought pointless but the hub answered 2xx
//!    found a user after all (one the model could not see, e.g. created by a login), so it is
//!    counted useful.
//!
//! A named-server `DELETE` with `{"remove": true}` is not distinguishable in the record yet: it
//! is judged as a stop.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::{History, RequestRecord, WORKLOAD_START};

/// Wasted stops plus wasted deletes sent by `client` must be at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WastedRequests {
    /// Recorder listener whose requests are judged, e.g. `culler`.
    pub client: String,
    pub limit: u64,
}

impl WastedRequests {
    pub fn new(client: &str, limit: u64) -> Self {
        Self { client: client.into(), limit }
    }
}

/// What a request does to the model.
enum Action<'a> {
    StartServer(&'a str, &'a str),
    StopServer(&'a str, &'a str),
    CreateUser(&'a str),
    DeleteUser(&'a str),
    Other,
}

fn action(r: &RequestRecord) -> Action<'_> {
    let Some(user) = r.user.as_deref() else { return Action::Other };
    let server = r.server.as_deref().unwrap_or("");
    let is_server = r.route.ends_with("/users/{name}/server") || r.route.ends_with("/users/{name}/servers/{server}");
    let is_user = r.route.ends_with("/users/{name}");
    match (r.method.to_ascii_uppercase().as_str(), is_server, is_user) {
        ("POST", true, _) => Action::StartServer(user, server),
        ("DELETE", true, _) => Action::StopServer(user, server),
        ("POST", _, true) => Action::CreateUser(user),
        ("DELETE", _, true) => Action::DeleteUser(user),
        _ => Action::Other,
    }
}

/// user -> running (or pending) servers; a user absent from the map does not exist.
type Model = BTreeMap<String, BTreeSet<String>>;

/// The initial model, when it holds from, and where it came from.
fn initial_state(history: &History) -> Option<(Model, Duration, String)> {
    let start = history.workload_window().map(|(s, _)| s);
    let snap = history
        .snapshots()
        .filter(|(at, s)| match start {
            Some(start) => *at <= start,
            None => s.label == WORKLOAD_START,
        })
        .last();
    if let Some((at, s)) = snap {
        let model = s.users.iter().map(|(u, servers)| (u.clone(), servers.iter().cloned().collect())).collect();
        return Some((model, at, format!("snapshot '{}' at t={:.1}s", s.label, at.as_secs_f64())));
    }
    let seeded_at =
        history.entries.iter().filter(|e| matches!(e.event, crate::observe::history::Event::Seeded(_))).map(|e| e.at).next_back()?;
    let seeded = history.seeded();
    let mut model = Model::new();
    for (class, users) in &seeded.classes {
        let running = matches!(class.as_str(), "running-idle" | "running-active");
        for u in users {
            let servers = model.entry(u.clone()).or_default();
            if running {
                servers.insert(String::new());
            }
        }
    }
    Some((model, seeded_at, format!("seeded classes at t={:.1}s", seeded_at.as_secs_f64())))
}

impl Check for WastedRequests {
    fn name(&self) -> String {
        "wasted-requests".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let Some((mut model, t0, origin)) = initial_state(history) else {
            return CheckResult::unknown(&name, "no snapshot and no seeded users: the hub's initial state is unknown");
        };
        let (mut wasted_stops, mut wasted_deletes, mut useful_stops, mut useful_deletes) = (0u64, 0u64, 0u64, 0u64);
        let mut sent = 0u64;
        let mut by_user: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, r) in history.requests().filter(|(at, _)| *at >= t0) {
            let ok = (200..300).contains(&r.status);
            let judged = r.client == self.client;
            sent += judged as u64;
            match action(r) {
                Action::StopServer(user, server) => {
                    if judged {
                        let running = model.get(user).is_some_and(|s| s.contains(server));
                        if !running || r.status == 404 {
                            wasted_stops += 1;
                            *by_user.entry(user).or_default() += 1;
                        } else {
                            useful_stops += 1;
                        }
                    }
                    if ok {
                        if let Some(s) = model.get_mut(user) {
                            s.remove(server);
                        }
                    }
                }
                Action::DeleteUser(user) => {
                    if judged {
                        let exists = model.contains_key(user);
                        if r.status == 404 || (!exists && !ok) {
                            wasted_deletes += 1;
                            *by_user.entry(user).or_default() += 1;
                        } else {
                            useful_deletes += 1;
                        }
                    }
                    if ok {
                        model.remove(user);
                    }
                }
                Action::StartServer(user, server) if ok => {
                    model.entry(user.to_string()).or_default().insert(server.to_string());
                }
                Action::CreateUser(user) if ok => {
                    model.entry(user.to_string()).or_default();
                }
                _ => {}
            }
        }
        if sent == 0 {
            return CheckResult::unknown(
                &name,
                format!("{} sent no requests after the initial state ({origin}): nothing to judge", self.client),
            );
        }
        let wasted = wasted_stops + wasted_deletes;
        let mut summary = format!(
            "{} sent {wasted_stops} stop requests for servers that were not running and {wasted_deletes} deletes \
             of users already gone, limit {}",
            self.client, self.limit
        );
        if wasted > 0 {
            let mut top: Vec<_> = by_user.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let shown: Vec<_> = top.iter().take(3).map(|(u, n)| format!("{u} ×{n}")).collect();
            summary.push_str(&format!(" (most: {})", shown.join(", ")));
        }
        summary.push_str(&format!("; {useful_stops} useful stops, {useful_deletes} useful deletes; initial state from {origin}"));
        CheckResult::new(&name, Verdict::from_ok(wasted <= self.limit), summary)
            .figure("wasted_stops", wasted_stops as f64)
            .figure("wasted_deletes", wasted_deletes as f64)
            .figure("useful_stops", useful_stops as f64)
            .figure("useful_deletes", useful_deletes as f64)
            .figure("limit", self.limit as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;
    use crate::observe::history::Entry;

    fn culler() -> WastedRequests {
        WastedRequests::new("culler", 0)
    }

    /// u1 runs, u2 exists stopped, at the workload start.
    fn start_state() -> Vec<Entry> {
        all(vec![window(10.0, 100.0), vec![snapshot(9.0, "workload-start", &[("u1", &[""]), ("u2", &[])])]])
    }

    #[test]
    fn the_2018_flood_fails_even_with_204_answers() {
        let h = history(all(vec![
            start_state(),
            // A correct cull of u1 ...
            vec![req(20.0, "culler", "DELETE", SERVER, "u1", 204)],
            // ... then the buggy culler stops u1 and u2 over and over; 6.1.1 says 204 each time.
            repeat(412, 30.0, 0.1, |t| req(t, "culler", "DELETE", SERVER, "u1", 204)),
            repeat(400, 30.05, 0.1, |t| req(t, "culler", "DELETE", SERVER, "u2", 204)),
        ]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["wasted_stops"], 812.0);
        assert_eq!(r.figures["useful_stops"], 1.0);
        assert_eq!(r.figures["wasted_deletes"], 0.0);
        assert!(
            r.summary.starts_with(
                "culler sent 812 stop requests for servers that were not running and 0 deletes of users already gone, limit 0"
            ),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("u1 ×412, u2 ×400"), "{}", r.summary);
    }

    #[test]
    fn a_correct_cull_passes() {
        let h = history(all(vec![
            start_state(),
            // The workload starts u2's server; the culler later stops it, then deletes both users.
            vec![
                req(15.0, "workload", "POST", SERVER, "u2", 202),
                req(20.0, "culler", "GET", USERS, "", 200),
                req(21.0, "culler", "DELETE", SERVER, "u1", 204),
                req(21.5, "culler", "DELETE", USER, "u1", 204),
                req(22.0, "culler", "DELETE", SERVER, "u2", 202),
                req(23.0, "culler", "DELETE", USER, "u2", 204),
            ],
        ]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["useful_stops"], 2.0);
        assert_eq!(r.figures["useful_deletes"], 2.0);
    }

    #[test]
    fn deleting_users_already_gone_is_wasted() {
        let h = history(all(vec![
            start_state(),
            vec![
                req(20.0, "culler", "DELETE", USER, "u2", 204),
                // Gone already (model agrees, hub says 404).
                req(21.0, "culler", "DELETE", USER, "u2", 404),
                // Never existed (model), even if the hub somehow answered something else.
                req(22.0, "culler", "DELETE", USER, "ghost", 500),
                // The model thinks u1 exists but the hub says 404: the hub is right.
                req(23.0, "culler", "DELETE", USER, "u1", 404),
                // A 404 stop is wasted too.
                req(24.0, "culler", "DELETE", SERVER, "ghost", 404),
            ],
        ]));
        let r = WastedRequests::new("culler", 3).check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["wasted_deletes"], 3.0);
        assert_eq!(r.figures["wasted_stops"], 1.0);
        assert_eq!(r.figures["useful_deletes"], 1.0);
        assert!(r.summary.contains("3 deletes of users already gone, limit 3"), "{}", r.summary);
    }

    #[test]
    fn other_clients_change_the_state_and_only_2xx_counts() {
        let h = history(all(vec![
            start_state(),
            vec![
                // The workload stops u1 itself: a later culler stop of u1 is wasted.
                req(15.0, "workload", "DELETE", SERVER, "u1", 204),
                // A failed start does not make u2 run.
                req(16.0, "workload", "POST", SERVER, "u2", 500),
                // A bulk create names no user and is ignored.
                req(17.0, "workload", "POST", USERS, "", 201),
                req(20.0, "culler", "DELETE", SERVER, "u1", 204),
                req(21.0, "culler", "DELETE", SERVER, "u2", 204),
                // The workload stops it wastefully too, but it is not judged.
                req(22.0, "workload", "DELETE", SERVER, "u2", 204),
            ],
        ]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["wasted_stops"], 2.0);
        assert_eq!(r.figures["useful_stops"], 0.0);
    }

    #[test]
    fn seeded_classes_are_the_fallback_initial_state() {
        let h = history(all(vec![
            vec![seeded_named(
                1.0,
                &[("running-idle", &["idle"]), ("never-started", &["new"]), ("stopped", &["old"])],
                &[("idle", &["nb"])],
            )],
            window(10.0, 100.0),
            vec![
                req(20.0, "culler", "DELETE", SERVER, "idle", 204),
                req_named(21.0, "culler", "DELETE", "idle", "nb", 204),
                req(22.0, "culler", "DELETE", SERVER, "new", 204),
                req(23.0, "culler", "DELETE", USER, "old", 204),
                // Created during the run, then deleted: useful.
                req(24.0, "workload", "POST", USER, "late", 201),
                req(25.0, "culler", "DELETE", USER, "late", 204),
            ],
        ]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["useful_stops"], 1.0);
        assert_eq!(r.figures["wasted_stops"], 2.0);
        assert_eq!(r.figures["useful_deletes"], 2.0);
        assert!(r.summary.contains("seeded classes"), "{}", r.summary);
    }

    #[test]
    fn snapshot_wins_over_seeded_and_later_snapshots_are_not_initial() {
        let h = history(all(vec![
            // Seeded says stopped, but the snapshot at the workload start says the named server runs.
            vec![seeded_named(1.0, &[("stopped", &["u"])], &[("u", &["nb"])])],
            vec![snapshot(9.0, "workload-start", &[("u", &["nb"])])],
            window(10.0, 100.0),
            vec![snapshot(50.0, "end", &[])],
            vec![req_named(20.0, "culler", "DELETE", "u", "nb", 204)],
        ]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["useful_stops"], 1.0);
        assert!(r.summary.contains("snapshot 'workload-start' at t=9.0s"), "{}", r.summary);
    }

    #[test]
    fn no_initial_state_is_unknown() {
        let h = history(all(vec![window(10.0, 100.0), vec![req(20.0, "culler", "DELETE", SERVER, "u1", 204)]]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    }

    #[test]
    fn a_silent_client_is_unknown() {
        let h = history(all(vec![start_state(), vec![req(20.0, "workload", "DELETE", SERVER, "u1", 204)]]));
        let r = culler().check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("culler sent no requests"), "{}", r.summary);
    }
}
