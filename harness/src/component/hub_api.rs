//! A typed client of the hub's REST API, as one named client of the recording proxy: every
//! request it sends shows up in the history under that client's name.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::json;

use crate::observe::history::HubSnapshot;

/// Escaped in a user or server name put in a URL path: what JupyterHub escapes in its own URLs
/// (`quote(name, safe="@~")`: all but letters, digits, `-_.~` and `@`), so `/user/{name}/`
/// matches the route the hub gave the proxy.
const NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'@');

/// A user or server name as one URL path segment (a `/`, `?`, `#`, `%` or space in a name
/// would otherwise change the URL).
pub fn name_segment(name: &str) -> String {
    utf8_percent_encode(name, NAME).to_string()
}

/// Page size for listing users (JupyterHub's `api_page_max_limit` default is 200).
const PAGE: usize = 200;

#[derive(Clone, Debug)]
pub struct HubApi {
    /// e.g. `http://127.0.0.1:PORT/hub/api` (a recorder listener).
    pub base: String,
    token: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserModel {
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub servers: BTreeMap<String, ServerModel>,
    #[serde(default)]
    pub last_activity: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerModel {
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default)]
    pub url: String,
}

impl HubApi {
    pub fn new(base: String, token: String, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(16).build()?;
        Ok(Self { base, token, http })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path)).header("Authorization", format!("token {}", self.token))
    }

    async fn expect(resp: reqwest::Response, what: &str, ok: &[u16]) -> anyhow::Result<reqwest::Response> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        bail!("{what}: hub answered {status}: {}", body.chars().take(300).collect::<String>())
    }

    /// GET /hub/api/ — the cheapest "is the hub answering" request.
    pub async fn ping(&self) -> anyhow::Result<u16> {
        Ok(self.req(reqwest::Method::GET, "/").send().await?.status().as_u16())
    }

    pub async fn user(&self, name: &str) -> anyhow::Result<Option<UserModel>> {
        let resp = self.req(reqwest::Method::GET, &format!("/users/{}", name_segment(name))).send().await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        Ok(Some(Self::expect(resp, "get user", &[200]).await?.json().await?))
    }

    /// Every user, paged (the hub limits a page to 200).
    pub async fn users(&self) -> anyhow::Result<Vec<UserModel>> {
        let mut all = Vec::new();
        loop {
            let resp = self
                .req(reqwest::Method::GET, &format!("/users?offset={}&limit={PAGE}", all.len()))
                .header("Accept", "application/jupyterhub-pagination+json")
                .send()
                .await?;
            #[derive(Deserialize)]
            struct Page {
                items: Vec<UserModel>,
            }
            let page: Page = Self::expect(resp, "list users", &[200]).await?.json().await.context("list users")?;
            let n = page.items.len();
            all.extend(page.items);
            if n < PAGE {
                return Ok(all);
            }
        }
    }

    /// What the hub says exists now (the state checks start from).
    pub async fn snapshot(&self, label: &str) -> anyhow::Result<HubSnapshot> {
        let users = self.users().await?;
        Ok(HubSnapshot {
            label: label.into(),
            admins: users.iter().filter(|u| u.admin).map(|u| u.name.clone()).collect(),
            users: users.into_iter().map(|u| (u.name, u.servers.into_keys().collect())).collect(),
        })
    }

    pub async fn create_users(&self, names: &[String]) -> anyhow::Result<()> {
        let resp = self.req(reqwest::Method::POST, "/users").json(&json!({ "usernames": names })).send().await?;
        Self::expect(resp, "create users", &[201, 409]).await?;
        Ok(())
    }

    /// Start a server (`server` = "" for the default one); returns once the hub accepted it.
    pub async fn start_server(&self, user: &str, server: &str) -> anyhow::Result<u16> {
        let path = server_path(user, server);
        let resp = self.req(reqwest::Method::POST, &path).json(&json!({})).send().await?;
        Ok(Self::expect(resp, "start server", &[201, 202, 400]).await?.status().as_u16())
    }

    pub async fn stop_server(&self, user: &str, server: &str) -> anyhow::Result<u16> {
        let resp = self.req(reqwest::Method::DELETE, &server_path(user, server)).send().await?;
        Ok(resp.status().as_u16())
    }

    /// POST /users/{name}/activity: the way a service marks a user (and servers) active or
    /// idle. The hub keeps the newest timestamp it was given.
    pub async fn post_activity(&self, user: &str, servers: &[&str], when: std::time::SystemTime) -> anyhow::Result<()> {
        let ts = humantime::format_rfc3339_millis(when).to_string();
        let servers: serde_json::Map<String, serde_json::Value> =
            servers.iter().map(|s| (s.to_string(), json!({ "last_activity": ts }))).collect();
        let resp = self
            .req(reqwest::Method::POST, &format!("/users/{}/activity", name_segment(user)))
            .json(&json!({ "last_activity": ts, "servers": servers }))
            .send()
            .await?;
        Self::expect(resp, "post activity", &[200, 204]).await?;
        Ok(())
    }

    /// Wait until the server is ready (bounded), polling the user model.
    pub async fn wait_ready(&self, user: &str, server: &str, within: Duration) -> anyhow::Result<ServerModel> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(u) = self.user(user).await? {
                if let Some(s) = u.servers.get(server) {
                    if s.ready {
                        return Ok(s.clone());
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("server {user}/{server} not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn server_path(user: &str, server: &str) -> String {
    if server.is_empty() {
        format!("/users/{}/server", name_segment(user))
    } else {
        format!("/users/{}/servers/{}", name_segment(user), name_segment(server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::routes::classify;

    #[test]
    fn names_are_escaped_as_the_hub_escapes_them_and_decode_back() {
        assert_eq!(name_segment("churn-0_a.b~c"), "churn-0_a.b~c");
        assert_eq!(name_segment("a@b.org"), "a@b.org");
        assert_eq!(name_segment("a/b c?d#e%f+g"), "a%2Fb%20c%3Fd%23e%25f%2Bg");
        assert_eq!(name_segment("jürgen"), "j%C3%BCrgen");
        assert_eq!(server_path("a/b", ""), "/users/a%2Fb/server");
        assert_eq!(server_path("alice", "my lab"), "/users/alice/servers/my%20lab");
        // The recorder reads back the names the client wrote.
        let route = classify(&format!("/hub/api{}", server_path("a/b c", "l%1")));
        assert_eq!((route.user.as_deref(), route.server.as_deref()), (Some("a/b c"), Some("l%1")));
    }
}
