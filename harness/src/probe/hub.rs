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
