//! `safety`: users the scenario protects (active, admin, ...) must not be stopped or deleted.
//!
//! The other side of the 2018-04-18 culler flood: the fix for a culler that stops nothing useful
//! must not be a culler that stops everything. Every culler scenario pairs its liveness checks
//! (`convergence`, `wasted-requests`) with this one, so "culled all users" never passes as
//! "culled the idle users"; the same holds for faults (hub or proxy restarts) that must not take
//! active users' servers down.
//!
//! Two kinds of evidence:
//! 1. requests: any 2xx `DELETE` of the user (`/users/{name}`) naming a protected user, or of a
//!    server (`/users/{name}/server`, `/users/{name}/servers/{server}`) of a user of a protected
//!    `running-*` class, sent after the first `Seeded` event (by `client`, if set). Stopping the
//!    server of a protected user who runs none (an admin) is waste, not harm;
//! 2. the snapshot labelled `end`, if the run took one: every protected user must still exist,
//!    and users of a protected `running-*` class (e.g. `running-active`) must still have their
//!    default server running or pending. This catches harm no request shows (a spawner that
//!    lost the server, a hub restart that forgot it), whoever caused it.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::history::History;

/// No user of the seeded `protected_classes` may be harmed (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoProtectedUserHarmed {
    /// Judge only requests of this recorder listener (e.g. `culler`); the end snapshot is judged
    /// regardless.
    pub client: Option<String>,
    /// Seeded classes, e.g. `running-active`, `admin`.
    pub protected_classes: Vec<String>,
}

impl NoProtectedUserHarmed {
    pub fn new(client: Option<&str>, protected_classes: &[&str]) -> Self {
        Self { client: client.map(str::to_string), protected_classes: protected_classes.iter().map(|c| c.to_string()).collect() }
    }
}

const SHOWN: usize = 5;

fn is_harmful_route(route: &str) -> bool {
    route.ends_with("/users/{name}/server") || route.ends_with("/users/{name}/servers/{server}") || route.ends_with("/users/{name}")
}

impl Check for NoProtectedUserHarmed {
    fn name(&self) -> String {
        "safety".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let seeded = history.seeded();
        // user -> must its default server keep running?
        let mut protected: BTreeMap<&str, bool> = BTreeMap::new();
        for class in &self.protected_classes {
            let keeps_running = class.starts_with("running-");
            for u in seeded.classes.get(class).into_iter().flatten() {
                *protected.entry(u.as_str()).or_default() |= keeps_running;
            }
        }
        if protected.is_empty() {
            return CheckResult::unknown(&name, format!("no seeded users in the protected classes {}", self.protected_classes.join(", ")));
        }
        let seeded_at =
            history.entries.iter().find(|e| matches!(e.event, crate::observe::history::Event::Seeded(_))).map(|e| e.at).unwrap_or_default();

        // user -> what happened to it, in time order.
        let mut harm: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut harmful_requests = 0u64;
        let mut judged = 0u64;
        for (at, r) in history.requests().filter(|(at, _)| *at >= seeded_at) {
            if self.client.as_ref().is_some_and(|c| &r.client != c) {
                continue;
            }
            judged += 1;
            let Some(user) = r.user.as_deref() else { continue };
            if !protected.contains_key(user)
                || !r.method.eq_ignore_ascii_case("DELETE")
                || !(200..300).contains(&r.status)
                || !is_harmful_route(&r.route)
            {
                continue;
            }
            // Stopping a server that is not running harms nobody (that is waste, judged by
            // `wasted-requests`): a server route is harm only for users whose server runs.
            let is_server_route = !r.route.ends_with("/users/{name}");
            if is_server_route && !protected[user] {
                continue;
            }
            harmful_requests += 1;
            harm.entry(user).or_default().push(format!(
                "{} {} by {} at t={:.1}s -> {}",
                r.method,
                r.route,
                r.client,
                at.as_secs_f64(),
                r.status
            ));
        }

        let end = history.snapshots().filter(|(_, s)| s.label == "end").last();
        if let Some((_, snap)) = end {
            for (&user, &keeps_running) in &protected {
                match snap.users.get(user) {
                    None => harm.entry(user).or_default().push("missing from the end snapshot".into()),
                    Some(servers) if keeps_running && !servers.iter().any(String::is_empty) => {
                        harm.entry(user).or_default().push("default server not running in the end snapshot".into())
                    }
                    Some(_) => {}
                }
            }
        } else if judged == 0 {
            let who = self.client.as_deref().unwrap_or("any client");
            return CheckResult::unknown(&name, format!("no requests from {who} and no end snapshot: nothing to judge"));
        }

        let classes = self.protected_classes.join(", ");
        let evidence = if end.is_some() { "requests and the end snapshot" } else { "requests only (no end snapshot)" };
        let summary = if harm.is_empty() {
            format!("none of {} protected users ({classes}) was stopped or deleted, judged from {evidence}", protected.len())
        } else {
            let users = harm.keys().copied().collect::<BTreeSet<_>>();
            let shown: Vec<String> = harm.iter().take(SHOWN).map(|(u, what)| format!("{u} ({})", what[0])).collect();
            let more = if users.len() > SHOWN { format!(" and {} more", users.len() - SHOWN) } else { String::new() };
            format!(
                "{} of {} protected users ({classes}) harmed: {}{more}; {harmful_requests} harmful requests, judged from {evidence}",
                users.len(),
                protected.len(),
                shown.join(", ")
            )
        };
        CheckResult::new(&name, Verdict::from_ok(harm.is_empty()), summary)
            .figure("harmed_users", harm.len() as f64)
            .figure("harmful_requests", harmful_requests as f64)
            .figure("protected_users", protected.len() as f64)
            .figure("end_snapshot", if end.is_some() { 1.0 } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;
    use crate::observe::history::Entry;

    fn culler_safety() -> NoProtectedUserHarmed {
        NoProtectedUserHarmed::new(Some("culler"), &["running-active", "admin"])
    }

    fn seed() -> Vec<Entry> {
        all(vec![
            vec![seeded(1.0, &[("running-active", &["act1", "act2"]), ("admin", &["root"]), ("running-idle", &["idle1", "idle2"])])],
            window(10.0, 100.0),
        ])
    }

    fn good_end() -> Entry {
        snapshot(100.0, "end", &[("act1", &[""]), ("act2", &["", "nb"]), ("root", &[])])
    }

    #[test]
    fn culling_only_idle_users_passes() {
        let h = history(all(vec![
            seed(),
            vec![
                req(20.0, "culler", "DELETE", SERVER, "idle1", 204),
                req(20.5, "culler", "DELETE", USER, "idle1", 204),
                req(21.0, "culler", "DELETE", SERVER, "idle2", 204),
                // Refused requests on protected users did no harm.
                req(22.0, "culler", "DELETE", SERVER, "act1", 403),
                // Reading is harmless.
                req(23.0, "culler", "GET", USER, "root", 200),
                // Another client's harm is not the culler's (and the end snapshot is still fine).
                req(24.0, "workload", "DELETE", NAMED_SERVER, "act2", 204),
                good_end(),
            ],
        ]));
        let r = culler_safety().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["protected_users"], 3.0);
        assert!(r.summary.contains("judged from requests and the end snapshot"), "{}", r.summary);
    }

    #[test]
    fn stopping_an_active_user_or_deleting_an_admin_fails() {
        let h = history(all(vec![
            seed(),
            vec![
                req(20.0, "culler", "DELETE", SERVER, "act1", 204),
                req_named(21.0, "culler", "DELETE", "act2", "nb", 202),
                req(22.0, "culler", "DELETE", USER, "root", 204),
            ],
        ]));
        let r = culler_safety().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert_eq!(r.figures["harmed_users"], 3.0);
        assert_eq!(r.figures["harmful_requests"], 3.0);
        assert!(r.summary.contains("act1 (DELETE /hub/api/users/{name}/server by culler at t=20.0s -> 204)"), "{}", r.summary);
        assert!(r.summary.contains("root (DELETE /hub/api/users/{name} by culler"), "{}", r.summary);
        assert!(r.summary.contains("no end snapshot"), "{}", r.summary);
    }

    #[test]
    fn the_end_snapshot_catches_harm_no_request_shows() {
        let h = history(all(vec![
            seed(),
            vec![
                req(20.0, "culler", "GET", USERS, "", 200),
                // act1 lost its server, root is gone; act2 is fine.
                snapshot(100.0, "end", &[("act1", &["nb"]), ("act2", &[""])]),
            ],
        ]));
        let r = culler_safety().check(&h);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.summary);
        assert!(r.summary.contains("act1 (default server not running in the end snapshot)"), "{}", r.summary);
        assert!(r.summary.contains("root (missing from the end snapshot)"), "{}", r.summary);
        assert_eq!(r.figures["harmful_requests"], 0.0);
    }

    #[test]
    fn stopping_the_server_an_admin_does_not_run_is_waste_not_harm() {
        let h = history(all(vec![seed(), vec![req(20.0, "culler", "DELETE", SERVER, "root", 204), good_end()]]));
        let r = culler_safety().check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
    }

    #[test]
    fn requests_before_seeding_are_not_judged() {
        let h = history(all(vec![vec![req(0.5, "culler", "DELETE", USER, "root", 204)], seed(), vec![good_end()]]));
        assert_eq!(culler_safety().check(&h).verdict, Verdict::Pass);
    }

    #[test]
    fn at_most_five_users_are_named() {
        let names: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut entries = vec![seeded(1.0, &[("running-active", &refs)])];
        entries.extend(names.iter().map(|u| req(20.0, "culler", "DELETE", SERVER, u, 204)));
        let r = NoProtectedUserHarmed::new(None, &["running-active"]).check(&history(entries));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.starts_with("8 of 8 protected users (running-active) harmed: a0 ("), "{}", r.summary);
        assert!(r.summary.contains(" and 3 more;"), "{}", r.summary);
        assert!(!r.summary.contains("a5 ("), "{}", r.summary);
    }

    #[test]
    fn no_protected_users_or_nothing_observed_is_unknown() {
        let h = history(all(vec![seed(), vec![req(20.0, "culler", "DELETE", SERVER, "idle1", 204)]]));
        let r = NoProtectedUserHarmed::new(None, &["nobody-class"]).check(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        let unseeded = history(vec![req(20.0, "culler", "DELETE", SERVER, "act1", 204)]);
        assert_eq!(culler_safety().check(&unseeded).verdict, Verdict::Unknown);
        let silent = history(seed());
        let r = culler_safety().check(&silent);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(r.summary.contains("no requests from culler and no end snapshot"), "{}", r.summary);
    }
}
