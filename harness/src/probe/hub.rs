//! Probes of the hub and of single-user servers through the proxy.

use std::time::Duration;

use async_trait::async_trait;

use super::{Probe, ProbeResult};
use crate::env::Env;

/// The client name probes use: their requests are recorded apart from the system's clients.
pub const PROBE_CLIENT: &str = "probe";

/// The hub's REST API answers `GET /hub/api/` with 200.
#[derive(Debug, Default, serde::Serialize)]
pub struct HubAnswers;

#[async_trait]
impl Probe for HubAnswers {
    fn describe(&self) -> String {
        "the hub API answers".into()
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        match env.hub_api(PROBE_CLIENT).await {
            Ok(api) => match api.ping().await {
                Ok(200) => ProbeResult::new(true, "GET /hub/api/ -> 200"),
                Ok(s) => ProbeResult::new(false, format!("GET /hub/api/ -> {s}")),
                Err(e) => ProbeResult::new(false, format!("GET /hub/api/: {e:#}")),
            },
            Err(e) => ProbeResult::new(false, format!("{e:#}")),
        }
    }
}

/// Every server the hub says is ready answers through the proxy (`/user/{name}/api` returns
/// the single-user server's version JSON): the routes in the proxy match the hub's state.
#[derive(Debug, serde::Serialize)]
pub struct ServersReachable {
    /// At least this many servers must be running (guards against "0 of 0 reachable").
    pub at_least: usize,
}

#[async_trait]
impl Probe for ServersReachable {
    fn describe(&self) -> String {
        format!("at least {} running servers answer through the proxy", self.at_least)
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        let (api, hub) = match (env.hub_api(PROBE_CLIENT).await, env.hub()) {
            (Ok(a), Ok(h)) => (a, h),
            (Err(e), _) | (_, Err(e)) => return ProbeResult::new(false, format!("{e:#}")),
        };
        let users = match api.users().await {
            Ok(u) => u,
            Err(e) => return ProbeResult::new(false, format!("listing users: {e:#}")),
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
        let mut ready = 0;
        let mut answering = 0;
        let mut silent = Vec::new();
        for u in &users {
            for (server, model) in &u.servers {
                if !model.ready {
                    continue;
                }
                ready += 1;
                let url = format!("{}{}api", hub.public_url, model.url);
                let ok = match http.get(&url).header("Authorization", format!("token {}", hub.harness_token)).send().await {
                    Ok(r) if r.status().as_u16() == 200 => {
                        r.json::<serde_json::Value>().await.map(|v| v.get("version").is_some()).unwrap_or(false)
                    }
                    _ => false,
                };
                if ok {
                    answering += 1;
                } else {
                    silent.push(if server.is_empty() { u.name.clone() } else { format!("{}/{server}", u.name) });
                }
            }
        }
        let holds = silent.is_empty() && ready >= self.at_least;
        let mut detail = format!("{answering} of {ready} ready servers answer through the proxy");
        if !silent.is_empty() {
            silent.truncate(5);
            detail.push_str(&format!(" (not: {})", silent.join(", ")));
        }
        ProbeResult::new(holds, detail)
    }
}

/// The hub has at most `max` users (e.g. the culler deleted the idle ones).
#[derive(Debug, serde::Serialize)]
pub struct UserCountAtMost {
    pub max: usize,
}

#[async_trait]
impl Probe for UserCountAtMost {
    fn describe(&self) -> String {
        format!("the hub has at most {} users", self.max)
    }
    async fn probe(&self, env: &Env) -> ProbeResult {
        match env.hub_api(PROBE_CLIENT).await {
            Ok(api) => match api.users().await {
                Ok(u) => ProbeResult::new(u.len() <= self.max, format!("{} users", u.len())),
                Err(e) => ProbeResult::new(false, format!("{e:#}")),
            },
            Err(e) => ProbeResult::new(false, format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::testkit::{env_with, env_with_fake_hub, FakeBackend, FakeHub};

    fn with_users(hub: &FakeHub, names: &[&str], running: &[&str]) {
        hub.users.lock().unwrap().extend(names.iter().map(|n| n.to_string()));
        hub.servers.lock().unwrap().extend(running.iter().map(|n| (n.to_string(), (true, 0))));
    }

    #[tokio::test]
    async fn hub_answers_holds_on_200_only_and_says_what_it_got() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        assert_eq!(HubAnswers.probe(&env).await, ProbeResult::new(true, "GET /hub/api/ -> 200"));
        hub.api_status.store(503, Ordering::SeqCst);
        assert_eq!(HubAnswers.probe(&env).await, ProbeResult::new(false, "GET /hub/api/ -> 503"));
        // Its requests are recorded as the probe's own client.
        let h = env.recorder.history();
        let statuses: Vec<u16> = h.requests().filter(|(_, r)| r.client == PROBE_CLIENT).map(|(_, r)| r.status).collect();
        assert_eq!(statuses, [200, 503]);
        // Without a hub it does not hold, and says why.
        let (no_hub, _dir2) = env_with(std::sync::Arc::new(FakeBackend::default()));
        let r = HubAnswers.probe(&no_hub).await;
        assert!(!r.holds && r.detail.contains("deployed no hub"), "{r:?}");
    }

    #[tokio::test]
    async fn servers_reachable_needs_every_ready_server_to_answer_through_the_proxy() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        with_users(&hub, &["alice", "bob", "carol"], &["alice", "bob"]);
        let reachable = |at_least| ServersReachable { at_least };
        assert_eq!(reachable(2).probe(&env).await, ProbeResult::new(true, "2 of 2 ready servers answer through the proxy"));
        // Too few running servers: "all of them answer" is not enough.
        assert_eq!(reachable(3).probe(&env).await, ProbeResult::new(false, "2 of 2 ready servers answer through the proxy"));
        // The proxy lost its routes: the servers the hub calls ready are named.
        hub.unroutable.store(true, Ordering::SeqCst);
        assert_eq!(
            reachable(1).probe(&env).await,
            ProbeResult::new(false, "0 of 2 ready servers answer through the proxy (not: alice, bob)")
        );
        hub.unroutable.store(false, Ordering::SeqCst);
        hub.api_status.store(500, Ordering::SeqCst);
        let r = reachable(0).probe(&env).await;
        assert!(!r.holds && r.detail.starts_with("listing users: list users: hub answered 500"), "{r:?}");
    }

    #[tokio::test]
    async fn user_count_at_most_counts_every_user() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        with_users(&hub, &["a", "b", "c"], &[]);
        assert_eq!(UserCountAtMost { max: 3 }.probe(&env).await, ProbeResult::new(true, "3 users"));
        assert_eq!(UserCountAtMost { max: 2 }.probe(&env).await, ProbeResult::new(false, "3 users"));
        hub.api_status.store(503, Ordering::SeqCst);
        let r = UserCountAtMost { max: 1000 }.probe(&env).await;
        assert!(!r.holds && r.detail.starts_with("list users: hub answered 503"), "{r:?}");
    }
}
