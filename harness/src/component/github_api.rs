//! A stand-in for the GitHub API that BinderHub's `GitHubRepoProvider` asks to resolve a ref
//! (`GET /repos/{owner}/{repo}/commits/{ref}`), on 127.0.0.1 (wiremock). GitHub is an outside
//! service the harness cannot reach here, and what the scenarios need from it is its failure
//! modes on demand: an outage (5xx), a rate limit (403 with `x-ratelimit-remaining: 0`), slow
//! answers. The system under test, BinderHub, is the real one.
//!
//! It answers as GitHub does for the sample repos under the owner [`OWNER`]: `200` with the
//! commit's `sha` and an `ETag`; `304` when the request's `If-None-Match` carries that ETag (what
//! BinderHub's cache relies on: a 304 costs no rate limit); `404` for anything else. Every request
//! it answers is recorded (client `binderhub`, upstream `github-api`) with the status it got.
//!
//! Clones do not come here: repo2docker clones `https://github.com/<owner>/<repo>`, which
//! [`git_redirect_env`] rewrites (git's `url.<base>.insteadOf`, through `GIT_CONFIG_*` in
//! BinderHub's environment) to the local bare repos, and every other GitHub URL to a path that
//! does not exist, so nothing ever leaves the machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::observe::history::{Event, Recorder, RequestRecord};

/// The GitHub owner of every sample repo.
pub const OWNER: &str = "hubchaos";
/// The recorded upstream name of the stand-in.
pub const GITHUB_API: &str = "github-api";
/// The route template of a ref resolution.
pub const COMMITS_ROUTE: &str = "/repos/{owner}/{repo}/commits/{ref}";

/// How the API answers right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum ApiMode {
    Up,
    /// Every request answered with this 5xx status (an outage).
    Down {
        status: u16,
    },
    /// Every request answered 403 with `x-ratelimit-remaining: 0`, as GitHub does when a
    /// token's hourly budget is spent.
    RateLimited,
    /// Answers as when up, each after this long.
    Slow {
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
}

struct ApiState {
    mode: Mutex<ApiMode>,
    /// `<repo>` (under [`OWNER`]) -> the sha of its `main`.
    shas: BTreeMap<String, String>,
    recorder: Recorder,
}

/// The ETag the stand-in gives a commit.
fn etag(sha: &str) -> String {
    format!("\"{sha}\"")
}

impl ApiState {
    /// The answer to `GET path` (`If-None-Match: if_none_match`) in `mode`, and its status.
    fn answer(&self, mode: ApiMode, path: &str, if_none_match: Option<&str>) -> (u16, ResponseTemplate) {
        let rest = path.strip_prefix("/repos/").and_then(|p| p.strip_prefix(OWNER)).and_then(|p| p.strip_prefix('/'));
        let repo = rest.and_then(|p| p.split_once("/commits/")).map(|(repo, _)| repo);
        match mode {
            ApiMode::Down { status } => {
                (status, ResponseTemplate::new(status).set_body_json(serde_json::json!({ "message": "Service Unavailable" })))
            }
            ApiMode::RateLimited => {
                let body = serde_json::json!({ "message": "API rate limit exceeded for 127.0.0.1." });
                (403, rate_limit_headers(ResponseTemplate::new(403), 0).set_body_json(body))
            }
            ApiMode::Up | ApiMode::Slow { .. } => {
                let delay = match mode {
                    ApiMode::Slow { delay } => delay,
                    _ => Duration::ZERO,
                };
                let Some(sha) = repo.and_then(|r| self.shas.get(r)) else {
                    return (404, ResponseTemplate::new(404).set_body_json(serde_json::json!({ "message": "Not Found" })));
                };
                let tag = etag(sha);
                let (status, t) = if if_none_match == Some(tag.as_str()) {
                    (304, ResponseTemplate::new(304))
                } else {
                    (200, ResponseTemplate::new(200).set_body_json(serde_json::json!({ "sha": sha })))
                };
                (status, rate_limit_headers(t, 4999).insert_header("etag", tag.as_str()).set_delay(delay))
            }
        }
    }
}

/// GitHub's rate-limit headers, which it sends with every API answer (BinderHub reads all
/// three whenever `x-ratelimit-remaining` is there): 5,000 an hour, `remaining` left, reset in
/// an hour.
fn rate_limit_headers(t: ResponseTemplate, remaining: u32) -> ResponseTemplate {
    let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() + 3600;
    t.insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", remaining.to_string().as_str())
        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
}

struct Responder(Arc<ApiState>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mode = *self.0.mode.lock().unwrap_or_else(|e| e.into_inner());
        let if_none_match = request.headers.get("if-none-match").and_then(|v| v.to_str().ok());
        let (status, template) = self.0.answer(mode, request.url.path(), if_none_match);
        let latency = match mode {
            ApiMode::Slow { delay } if status < 400 => delay,
            _ => Duration::ZERO,
        };
        self.0.recorder.record(Event::Request(RequestRecord {
            client: "binderhub".into(),
            upstream: GITHUB_API.into(),
            method: request.method.to_string(),
            route: COMMITS_ROUTE.into(),
            user: None,
            server: None,
            status,
            latency,
        }));
        template
    }
}

/// The running stand-in; it stops when dropped.
pub struct GitHubApi {
    server: MockServer,
    state: Arc<ApiState>,
}

impl std::fmt::Debug for GitHubApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApi").field("uri", &self.server.uri()).field("repos", &self.state.shas.keys()).finish()
    }
}

impl GitHubApi {
    /// Start it on 127.0.0.1 for the repos in `shas` (name -> sha of `main`), up.
    pub async fn start(shas: BTreeMap<String, String>, recorder: Recorder) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(ApiState { mode: Mutex::new(ApiMode::Up), shas, recorder });
        Mock::given(wiremock::matchers::method("GET")).respond_with(Responder(state.clone())).mount(&server).await;
        Self { server, state }
    }

    /// `http://127.0.0.1:<port>`: BinderHub's `GitHubRepoProvider.api_base_path`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn set_mode(&self, mode: ApiMode) {
        *self.state.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }
}

/// Git configuration through the environment (`GIT_CONFIG_COUNT`, git ≥ 2.31) for BinderHub and
/// its builds: `https://github.com/<OWNER>/` is `repos` (a directory of `<name>.git`; git finds
/// `<name>` with its suffix), every other `https://github.com/` URL a path that does not exist.
pub fn git_redirect_env(repos: &Path) -> BTreeMap<String, String> {
    let rules = [
        (format!("file://{}/", repos.display()), format!("https://github.com/{OWNER}/")),
        ("file:///nonexistent-hubchaos-offline/".to_string(), "https://github.com/".to_string()),
    ];
    let mut env = BTreeMap::from([("GIT_CONFIG_COUNT".to_string(), rules.len().to_string())]);
    for (i, (to, from)) in rules.into_iter().enumerate() {
        env.insert(format!("GIT_CONFIG_KEY_{i}"), format!("url.{to}.insteadOf"));
        env.insert(format!("GIT_CONFIG_VALUE_{i}"), from);
    }
    env
}

/// `/build/gh/<OWNER>/<repo>/<ref>?build_only=true`.
pub fn gh_build_path(repo: &str, git_ref: &str) -> String {
    format!("/build/gh/{OWNER}/{repo}/{git_ref}?build_only=true")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn api() -> GitHubApi {
        GitHubApi::start(BTreeMap::from([("fast-1".to_string(), "a".repeat(40))]), Recorder::in_memory(std::time::Instant::now())).await
    }

    #[tokio::test]
    async fn it_resolves_a_ref_with_an_etag_and_answers_304_to_it() {
        let api = api().await;
        let http = reqwest::Client::new();
        let url = format!("{}/repos/hubchaos/fast-1/commits/main", api.uri());
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let tag = r.headers()["etag"].to_str().unwrap().to_string();
        // BinderHub reads all three rate-limit headers of an answer that has one of them.
        assert_eq!(r.headers()["x-ratelimit-limit"], "5000");
        assert!(r.headers()["x-ratelimit-reset"].to_str().unwrap().parse::<u64>().is_ok());
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sha"], "a".repeat(40));
        let r = http.get(&url).header("If-None-Match", &tag).send().await.unwrap();
        assert_eq!(r.status(), 304);
        let r = http.get(format!("{}/repos/hubchaos/other/commits/main", api.uri())).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let statuses: Vec<u16> = api.state.recorder.history().requests().map(|(_, r)| r.status).collect();
        assert_eq!(statuses, [200, 304, 404]);
    }

    #[tokio::test]
    async fn outages_and_rate_limits_answer_as_github_does_until_healed() {
        let api = api().await;
        let http = reqwest::Client::new();
        let url = format!("{}/repos/hubchaos/fast-1/commits/main", api.uri());
        api.set_mode(ApiMode::Down { status: 503 });
        assert_eq!(http.get(&url).send().await.unwrap().status(), 503);
        api.set_mode(ApiMode::RateLimited);
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
        assert!(r.headers().contains_key("x-ratelimit-reset") && r.headers().contains_key("x-ratelimit-limit"));
        api.set_mode(ApiMode::Slow { delay: Duration::from_millis(300) });
        let t = std::time::Instant::now();
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
        assert!(t.elapsed() >= Duration::from_millis(300));
        api.set_mode(ApiMode::Up);
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    }

    #[test]
    fn clones_of_the_owner_go_to_the_local_repos_and_every_other_github_url_nowhere() {
        let env = git_redirect_env(Path::new("/h/binder-repos/ab12"));
        assert_eq!(env["GIT_CONFIG_COUNT"], "2");
        assert_eq!(env["GIT_CONFIG_KEY_0"], "url.file:///h/binder-repos/ab12/.insteadOf");
        assert_eq!(env["GIT_CONFIG_VALUE_0"], "https://github.com/hubchaos/");
        assert_eq!(env["GIT_CONFIG_VALUE_1"], "https://github.com/");
        assert_eq!(gh_build_path("fast-1", "main"), "/build/gh/hubchaos/fast-1/main?build_only=true");
    }
}
