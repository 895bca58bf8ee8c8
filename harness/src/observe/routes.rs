//! Request path -> route template (+ the user and server named in it).
//!
//! The recording proxy stamps every request with a *template* such as
//! `/hub/api/users/{name}/server` rather than the raw path, because checks count requests per
//! route ("how many `DELETE /hub/api/users/{name}/server` per minute") and the history must
//! not grow one series per user. The user and server a path names are kept next to the
//! template (percent-decoded), so "stop requests for servers that were not running" can be
//! judged against the hub's snapshots.
//!
//! Design: one ordered table of `(pattern, template)` rules, first match wins. A table (and not
//! a regex per route or a router crate) because the list *is* the documentation of what the
//! harness understands, and adding a route is one line. Patterns are `/`-separated segments:
//!
//! | segment    | matches                                   | captured as          |
//! |------------|-------------------------------------------|----------------------|
//! | `lit`      | exactly `lit`                              | -                    |
//! | `{name}`   | one non-empty segment                     | `user` (decoded)     |
//! | `{server}` | one segment, may be empty (`servers/`)    | `server` (decoded)   |
//! | `{x}`      | one non-empty segment                     | nothing (anonymous)  |
//! | `{x+}`     | one or more segments (image names: `a/b:c`) | nothing            |
//! | `{x*}`     | zero or more segments, last only          | nothing              |
//! | `{...}`    | zero or more segments, last only          | spliced into the template with [`template_segment`] |
//!
//! A trailing `/` never matters (`/hub/api/users/` is `/hub/api/users`), the query string is
//! dropped, and a leading Docker API version (`/v1.41`) is stripped so one table serves the
//! Hub, the proxied single-user servers, and the Docker Engine API.
//!
//! Paths no rule knows keep their shape with id-like segments (numbers, uuids, hex, tokens)
//! replaced by `{id}`. Every route family known to carry a user name has a rule (including a
//! catch-all `{...}` rule for unknown sub-routes of `/hub/api/users/{name}`), so a raw user
//! name never becomes part of a template.

use std::sync::LazyLock;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// e.g. `/hub/api/users/{name}/server`; never contains a user name or query string.
    pub template: String,
    /// The user named in the path, percent-decoded.
    pub user: Option<String>,
    /// The server named in the path: `Some("")` for a user's default server.
    pub server: Option<String>,
}

/// Which server a matched rule refers to when the pattern has no `{server}` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerRef {
    /// The route is not about a server (or the server is captured by `{server}`).
    None,
    /// The route addresses the user's default server (`/users/{name}/server`, `/user/{name}/`).
    Default,
}

struct Rule {
    pattern: &'static str,
    template: &'static str,
    server: ServerRef,
}

/// A rule whose template is its pattern.
const fn same(pattern: &'static str) -> Rule {
    Rule { pattern, template: pattern, server: ServerRef::None }
}

/// A rule with its own template (multi-segment captures, canonical trailing slash).
const fn to(pattern: &'static str, template: &'static str) -> Rule {
    Rule { pattern, template, server: ServerRef::None }
}

impl Rule {
    /// The path addresses the user's default server.
    const fn default_server(mut self) -> Self {
        self.server = ServerRef::Default;
        self
    }
}

/// The routes the harness understands, most specific first within each family.
///
/// JupyterHub's REST API (jupyterhub/apihandlers/*.py, 4.x-6.x), its HTML pages that name a
/// user, the proxied paths (configurable-http-proxy routes `/user/{name}/` and
/// `/services/{service}/`, and CHP's own `/api/routes`), and the Docker Engine API.
const RULES: &[Rule] = &[
    // --- JupyterHub REST API ---
    to("/hub/api", "/hub/api/"),
    same("/hub/api/info"),
    same("/hub/api/user"),
    same("/hub/api/users"),
    same("/hub/api/users/{name}"),
    same("/hub/api/users/{name}/server").default_server(),
    same("/hub/api/users/{name}/server/progress").default_server(),
    same("/hub/api/users/{name}/servers/{server}"),
    same("/hub/api/users/{name}/servers/{server}/progress"),
    same("/hub/api/users/{name}/activity"),
    same("/hub/api/users/{name}/tokens"),
    same("/hub/api/users/{name}/tokens/{id}"),
    same("/hub/api/users/{name}/shared"),
    // The owner and server here are someone else's: anonymous, not the request's user/server.
    same("/hub/api/users/{name}/shared/{owner}/{owner_server}"),
    // Unknown sub-routes of a user (newer hubs) must still not leak the name.
    same("/hub/api/users/{name}/{...}"),
    same("/hub/api/groups"),
    same("/hub/api/groups/{group}"),
    same("/hub/api/groups/{group}/users"),
    same("/hub/api/groups/{group}/properties"),
    same("/hub/api/groups/{group}/{...}"),
    same("/hub/api/services"),
    same("/hub/api/services/{service}"),
    same("/hub/api/services/{service}/{...}"),
    same("/hub/api/proxy"),
    same("/hub/api/shutdown"),
    same("/hub/api/authorizations/token"),
    // Tokens and cookies in paths are secrets: never in a template.
    same("/hub/api/authorizations/token/{token}"),
    same("/hub/api/authorizations/cookie/{cookie}/{value}"),
    same("/hub/api/oauth2/authorize"),
    same("/hub/api/oauth2/token"),
    same("/hub/api/shares/{name}/{server}"),
    same("/hub/api/share-codes/{name}/{server}"),
    // --- JupyterHub pages ---
    same("/hub/metrics"),
    same("/hub/health"),
    same("/hub/login"),
    same("/hub/logout"),
    same("/hub/home"),
    same("/hub/admin"),
    same("/hub/token"),
    same("/hub/spawn"),
    same("/hub/spawn/{name}").default_server(),
    same("/hub/spawn/{name}/{server}"),
    same("/hub/spawn-pending/{name}").default_server(),
    same("/hub/spawn-pending/{name}/{server}"),
    // The hub serves /hub/user/... when the proxy has no route (server not running).
    to("/hub/user/{name}/{rest*}", "/hub/user/{name}/{rest}").default_server(),
    to("/hub/user-redirect/{rest*}", "/hub/user-redirect/{rest}"),
    to("/hub/static/{rest*}", "/hub/static/{rest}"),
    to("/hub", "/hub/"),
    // --- through the proxy ---
    // A named server is also `/user/{name}/{server}/...`; the path alone cannot tell it from
    // a default-server path, so the proxy's view is "the user's server" = default.
    to("/user/{name}/{rest*}", "/user/{name}/{rest}").default_server(),
    to("/services/{service}/{rest*}", "/services/{service}/{rest}"),
    same("/api/routes"),
    to("/api/routes/{route+}", "/api/routes/{route}"),
    // --- Docker Engine API (after the /v1.NN prefix is stripped) ---
    same("/_ping"),
    same("/info"),
    same("/version"),
    same("/events"),
    same("/system/df"),
    same("/auth"),
    same("/session"),
    same("/grpc"),
    same("/build"),
    same("/build/prune"),
    same("/build/cancel"),
    same("/containers/json"),
    same("/containers/create"),
    same("/containers/prune"),
    // Container names are often user-derived (DockerSpawner's `jupyter-{name}`): anonymous.
    same("/containers/{id}"),
    same("/containers/{id}/{...}"),
    same("/exec/{id}/{...}"),
    same("/images/json"),
    same("/images/prune"),
    same("/images/create"),
    same("/images/load"),
    same("/images/get"),
    same("/images/search"),
    // Image references contain `/` and `:` (`quay.io/org/repo:tag`): multi-segment.
    to("/images/{image+}/json", "/images/{name}/json"),
    to("/images/{image+}/history", "/images/{name}/history"),
    to("/images/{image+}/push", "/images/{name}/push"),
    to("/images/{image+}/tag", "/images/{name}/tag"),
    to("/images/{image+}/get", "/images/{name}/get"),
    to("/images/{image+}", "/images/{name}"),
    to("/distribution/{image+}/json", "/distribution/{name}/json"),
    same("/volumes"),
    same("/volumes/create"),
    same("/volumes/prune"),
    same("/volumes/{volume}"),
    same("/networks"),
    same("/networks/create"),
    same("/networks/prune"),
    same("/networks/{id}"),
    same("/networks/{id}/{...}"),
];

/// One parsed pattern segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    Lit(&'static str),
    User,
    Server,
    Anon,
    /// One or more segments.
    Many,
    /// Zero or more segments, dropped.
    Rest,
    /// Zero or more segments, templated and spliced.
    Splice,
}

struct Compiled {
    segs: Vec<Seg>,
    rule: &'static Rule,
}

fn compile(rule: &'static Rule) -> Compiled {
    let segs = rule
        .pattern
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "{name}" => Seg::User,
            "{server}" => Seg::Server,
            "{...}" => Seg::Splice,
            s if s.starts_with('{') && s.ends_with("+}") => Seg::Many,
            s if s.starts_with('{') && s.ends_with("*}") => Seg::Rest,
            s if s.starts_with('{') && s.ends_with('}') => Seg::Anon,
            s => Seg::Lit(s),
        })
        .collect();
    Compiled { segs, rule }
}

static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| RULES.iter().map(compile).collect());

/// Captures of one match (indices into the path's segments).
#[derive(Default, Clone, Copy)]
struct Caps {
    user: Option<usize>,
    server: Option<usize>,
    /// Start of the `{...}` tail.
    splice: Option<usize>,
}

/// Match `segs` from position `i` against `pat`; backtracks only over `{x+}`.
fn matches(pat: &[Seg], segs: &[&str], i: usize, caps: &mut Caps) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        // Done: allow a single trailing slash.
        return i == segs.len() || (i + 1 == segs.len() && segs[i].is_empty());
    };
    match *first {
        Seg::Rest => true,
        Seg::Splice => {
            caps.splice = Some(i);
            true
        }
        Seg::Many => {
            // Greedy: try the longest run first so `/images/a/json/json` keeps `a/json`.
            let max = segs.len().saturating_sub(i);
            (1..=max).rev().any(|n| {
                segs[i..i + n].iter().all(|s| !s.is_empty()) && {
                    let mut c = *caps;
                    let ok = matches(rest, segs, i + n, &mut c);
                    if ok {
                        *caps = c;
                    }
                    ok
                }
            })
        }
        single => {
            let Some(seg) = segs.get(i) else { return false };
            let ok = match single {
                Seg::Lit(lit) => *seg == lit,
                Seg::User => {
                    caps.user = Some(i);
                    !seg.is_empty()
                }
                Seg::Server => {
                    caps.server = Some(i);
                    true
                }
                _ => !seg.is_empty(),
            };
            ok && matches(rest, segs, i + 1, caps)
        }
    }
}

/// Classify a request target (`/path?query`) into its route.
pub fn classify(target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let path = strip_docker_version(path);
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let segs: &[&str] = if segs == [""] { &[] } else { &segs };

    for c in COMPILED.iter() {
        let mut caps = Caps::default();
        if !matches(&c.segs, segs, 0, &mut caps) {
            continue;
        }
        let template = match caps.splice {
            Some(from) => {
                let tail = segs[from..].iter().map(|s| template_segment(s)).collect::<Vec<_>>();
                c.rule.template.replace("{...}", &tail.join("/"))
            }
            None => c.rule.template.to_string(),
        };
        let server = match (caps.server, c.rule.server) {
            (Some(i), _) => Some(percent_decode(segs[i])),
            (None, ServerRef::Default) => Some(String::new()),
            (None, ServerRef::None) => None,
        };
        return Route { template, user: caps.user.map(|i| percent_decode(segs[i])), server };
    }

    let mut template = String::new();
    for s in segs {
        template.push('/');
        template.push_str(&template_segment(s));
    }
    if template.is_empty() {
        template.push('/');
    }
    Route { template, user: None, server: None }
}

/// `/v1.41/containers/json` -> `/containers/json`: Docker clients pin an API version in the
/// path; the version is not part of what the request does.
fn strip_docker_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else { return path };
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    match version.split_once('.') {
        Some((major, minor))
            if !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit()) =>
        {
            if tail.is_empty() {
                "/"
            } else {
                tail
            }
        }
        _ => path,
    }
}

/// A segment of an unknown path as it appears in a template: id-like values become `{id}` so
/// that a stream of distinct ids stays one series.
pub fn template_segment(seg: &str) -> std::borrow::Cow<'_, str> {
    if looks_like_id(seg) {
        "{id}".into()
    } else {
        seg.into()
    }
}

/// Numbers, uuids, hex ids (>= 8 hex chars including a digit: docker ids and token prefixes,
/// while hex-only words such as `deadbeef` or `decade` stay) and long opaque tokens.
fn looks_like_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let has_digit = seg.bytes().any(|b| b.is_ascii_digit());
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let uuid = seg.len() == 36
        && seg.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let hex = seg.len() >= 8 && has_digit && seg.bytes().all(|b| b.is_ascii_hexdigit());
    let token = seg.len() >= 24
        && has_digit
        && seg.bytes().any(|b| b.is_ascii_alphabetic())
        && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    uuid || hex || token
}

/// Decode `%XX` escapes (user and server names are URL-encoded in hub paths). Invalid escapes
/// are kept literally; invalid UTF-8 is replaced, never an error: the name is evidence, not
/// input we act on.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, user: Option<&str>, server: Option<&str>) -> Route {
        Route { template: t.into(), user: user.map(Into::into), server: server.map(Into::into) }
    }

    #[track_caller]
    fn check(path: &str, want: Route) {
        assert_eq!(classify(path), want, "path {path}");
    }

    #[test]
    fn hub_api_user_routes() {
        let cases = [
            ("/hub/api/users", r("/hub/api/users", None, None)),
            ("/hub/api/users/", r("/hub/api/users", None, None)),
            ("/hub/api/users?state=ready&offset=0&limit=200", r("/hub/api/users", None, None)),
            ("/hub/api/users/alice", r("/hub/api/users/{name}", Some("alice"), None)),
            ("/hub/api/users/alice/server", r("/hub/api/users/{name}/server", Some("alice"), Some(""))),
            ("/hub/api/users/alice/server/progress", r("/hub/api/users/{name}/server/progress", Some("alice"), Some(""))),
            ("/hub/api/users/alice/servers/lab", r("/hub/api/users/{name}/servers/{server}", Some("alice"), Some("lab"))),
            ("/hub/api/users/alice/servers/", r("/hub/api/users/{name}/servers/{server}", Some("alice"), Some(""))),
            ("/hub/api/users/alice/servers/lab/progress", r("/hub/api/users/{name}/servers/{server}/progress", Some("alice"), Some("lab"))),
            ("/hub/api/users/alice/activity", r("/hub/api/users/{name}/activity", Some("alice"), None)),
            ("/hub/api/users/alice/tokens", r("/hub/api/users/{name}/tokens", Some("alice"), None)),
            ("/hub/api/users/alice/tokens/a42", r("/hub/api/users/{name}/tokens/{id}", Some("alice"), None)),
            ("/hub/api/users/alice/shared/bob/lab", r("/hub/api/users/{name}/shared/{owner}/{owner_server}", Some("alice"), None)),
        ];
        for (path, want) in cases {
            check(path, want);
        }
    }

    #[test]
    fn user_names_are_percent_decoded() {
        check("/hub/api/users/a%40b.org/server", r("/hub/api/users/{name}/server", Some("a@b.org"), Some("")));
        check("/hub/api/users/j%C3%BCrgen/servers/my%20lab", r("/hub/api/users/{name}/servers/{server}", Some("jürgen"), Some("my lab")));
        check("/user/a%2Bb/lab", r("/user/{name}/{rest}", Some("a+b"), Some("")));
        // An invalid escape is kept as is.
        check("/hub/api/users/100%zz", r("/hub/api/users/{name}", Some("100%zz"), None));
        check("/hub/api/users/x%4", r("/hub/api/users/{name}", Some("x%4"), None));
        check("/hub/api/users/x%", r("/hub/api/users/{name}", Some("x%"), None));
        // Invalid UTF-8 is replaced, not an error.
        check("/hub/api/users/x%FF", r("/hub/api/users/{name}", Some("x\u{FFFD}"), None));
    }

    #[test]
    fn hub_api_other_routes() {
        for t in [
            "/hub/api/info",
            "/hub/api/user",
            "/hub/api/groups",
            "/hub/api/services",
            "/hub/api/proxy",
            "/hub/api/shutdown",
            "/hub/api/oauth2/token",
            "/hub/metrics",
            "/hub/health",
            "/hub/login",
        ] {
            check(t, r(t, None, None));
        }
        check("/hub/api", r("/hub/api/", None, None));
        check("/hub/api/", r("/hub/api/", None, None));
        check("/hub/api/groups/admins", r("/hub/api/groups/{group}", None, None));
        check("/hub/api/groups/admins/users", r("/hub/api/groups/{group}/users", None, None));
        check("/hub/api/groups/g/properties", r("/hub/api/groups/{group}/properties", None, None));
        check("/hub/api/services/culler", r("/hub/api/services/{service}", None, None));
        check("/hub/api/proxy?offset=10", r("/hub/api/proxy", None, None));
        check("/hub/api/authorizations/token/sekrit", r("/hub/api/authorizations/token/{token}", None, None));
        check("/hub/api/authorizations/cookie/jupyterhub-services/abc", r("/hub/api/authorizations/cookie/{cookie}/{value}", None, None));
        check("/hub/api/shares/alice/lab", r("/hub/api/shares/{name}/{server}", Some("alice"), Some("lab")));
    }

    #[test]
    fn hub_pages_that_name_users() {
        check("/hub/spawn/alice", r("/hub/spawn/{name}", Some("alice"), Some("")));
        check("/hub/spawn/alice/lab", r("/hub/spawn/{name}/{server}", Some("alice"), Some("lab")));
        check("/hub/spawn-pending/alice", r("/hub/spawn-pending/{name}", Some("alice"), Some("")));
        check("/hub/user/alice/lab/tree", r("/hub/user/{name}/{rest}", Some("alice"), Some("")));
        check("/hub/user-redirect/lab", r("/hub/user-redirect/{rest}", None, None));
        check("/hub/static/js/x.js?v=abc", r("/hub/static/{rest}", None, None));
        check("/hub", r("/hub/", None, None));
        check("/hub/", r("/hub/", None, None));
    }

    #[test]
    fn single_user_paths_through_the_proxy() {
        check("/user/alice/api/status", r("/user/{name}/{rest}", Some("alice"), Some("")));
        check("/user/alice/", r("/user/{name}/{rest}", Some("alice"), Some("")));
        check("/user/alice", r("/user/{name}/{rest}", Some("alice"), Some("")));
        check("/user/alice/api/kernels/1234?x=1", r("/user/{name}/{rest}", Some("alice"), Some("")));
        check("/services/binder/v2/gh/a/b/HEAD", r("/services/{service}/{rest}", None, None));
        check("/api/routes", r("/api/routes", None, None));
        check("/api/routes/user/alice", r("/api/routes/{route}", None, None));
    }

    #[test]
    fn unknown_user_subroutes_do_not_leak_the_name() {
        check("/hub/api/users/alice/newthing", r("/hub/api/users/{name}/newthing", Some("alice"), None));
        check("/hub/api/users/alice/newthing/12/x", r("/hub/api/users/{name}/newthing/{id}/x", Some("alice"), None));
        for path in ["/hub/api/users/alice/a/b/c", "/hub/spawn/alice", "/user/alice/x/y", "/hub/user/alice"] {
            assert!(!classify(path).template.contains("alice"), "{path}");
        }
    }

    #[test]
    fn docker_api_routes() {
        let id = "4f1c0a6e9b2d7c3a8e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5";
        let cases = [
            ("/_ping", "/_ping"),
            ("/v1.41/_ping", "/_ping"),
            ("/v1.41/info", "/info"),
            ("/version", "/version"),
            ("/v1.43/system/df", "/system/df"),
            ("/v1.41/events?filters=%7B%7D", "/events"),
            ("/v1.41/containers/json?all=1", "/containers/json"),
            ("/v1.41/containers/prune", "/containers/prune"),
            ("/v1.41/containers/create?name=jupyter-alice", "/containers/create"),
            (&format!("/v1.41/containers/{id}/json"), "/containers/{id}/json"),
            ("/v1.41/containers/jupyter-alice/start", "/containers/{id}/start"),
            ("/v1.41/containers/jupyter-alice", "/containers/{id}"),
            ("/v1.41/containers/abc/logs?follow=1", "/containers/{id}/logs"),
            ("/v1.41/exec/abc/start", "/exec/{id}/start"),
            ("/v1.41/images/json", "/images/json"),
            ("/v1.41/images/prune?filters=x", "/images/prune"),
            ("/v1.41/images/busybox/json", "/images/{name}/json"),
            ("/v1.41/images/quay.io/org/repo:tag/json", "/images/{name}/json"),
            ("/v1.41/images/localhost:5000/r2d-abc123:latest/json", "/images/{name}/json"),
            ("/v1.41/images/registry/img:1/history", "/images/{name}/history"),
            ("/v1.41/images/org/img:1/tag?repo=x", "/images/{name}/tag"),
            ("/v1.41/images/org/img:1", "/images/{name}"),
            (&format!("/v1.41/images/sha256:{id}"), "/images/{name}"),
            ("/v1.41/images/create?fromImage=x", "/images/create"),
            ("/v1.41/build?t=x", "/build"),
            ("/v1.41/distribution/org/img:1/json", "/distribution/{name}/json"),
            ("/v1.41/volumes/myvol", "/volumes/{volume}"),
            ("/v1.41", "/"),
        ];
        for (path, want) in cases {
            check(path, r(want, None, None));
        }
    }

    #[test]
    fn docker_version_prefix_needs_major_dot_minor() {
        assert_eq!(strip_docker_version("/v1.41/info"), "/info");
        assert_eq!(strip_docker_version("/v2/gh/org/repo"), "/v2/gh/org/repo");
        assert_eq!(strip_docker_version("/v1./x"), "/v1./x");
        assert_eq!(strip_docker_version("/version"), "/version");
        assert_eq!(strip_docker_version("/vx.1/info"), "/vx.1/info");
    }

    #[test]
    fn unknown_paths_template_id_like_segments() {
        let cases = [
            ("/", "/"),
            ("", "/"),
            ("/metrics", "/metrics"),
            ("/build/gh/org/repo/HEAD", "/build/gh/org/repo/HEAD"),
            ("/things/123/parts/9", "/things/{id}/parts/{id}"),
            ("/things/550e8400-e29b-41d4-a716-446655440000", "/things/{id}"),
            ("/things/4f1c0a6e9b2d", "/things/{id}"),
            ("/things/deadbeef", "/things/deadbeef"),
            ("/things/decade", "/things/decade"),
            ("/tok/aB3dE5fG7hI9jK1lM3nO5pQ7", "/tok/{id}"),
            ("/a/b/?x=1", "/a/b/"),
            ("/x#frag", "/x"),
        ];
        for (path, want) in cases {
            check(path, r(want, None, None));
        }
    }

    #[test]
    fn every_rule_pattern_is_well_formed() {
        for c in COMPILED.iter() {
            let tail_only = |s: &Seg| matches!(s, Seg::Rest | Seg::Splice);
            if let Some(pos) = c.segs.iter().position(tail_only) {
                assert_eq!(pos + 1, c.segs.len(), "{}: tail segment must be last", c.rule.pattern);
            }
            assert!(c.rule.pattern.starts_with('/'), "{}", c.rule.pattern);
            assert!(!c.rule.template.contains('?'), "{}", c.rule.template);
            // A rule that captures a user must keep the placeholder in its template.
            if c.segs.contains(&Seg::User) {
                assert!(c.rule.template.contains("{name}"), "{}", c.rule.pattern);
            }
        }
    }

    #[test]
    fn every_rule_matches_its_own_example() {
        // Instantiate each pattern with sample values: it must match itself (not be shadowed
        // by an earlier rule) and yield its own template.
        for (idx, c) in COMPILED.iter().enumerate() {
            let path: String = c
                .segs
                .iter()
                .map(|s| match s {
                    Seg::Lit(l) => format!("/{l}"),
                    Seg::User => "/someone".into(),
                    Seg::Server => "/srv".into(),
                    Seg::Anon => "/x1".into(),
                    Seg::Many => "/reg.io/org/img:1".into(),
                    Seg::Rest => String::new(),
                    Seg::Splice => "/newthing".into(),
                })
                .collect();
            let got = classify(&path);
            let first = COMPILED.iter().position(|o| matches(&o.segs, &split(&path), 0, &mut Caps::default())).unwrap();
            assert_eq!(first, idx, "rule {} is shadowed by {}", c.rule.pattern, COMPILED[first].rule.pattern);
            assert!(!got.template.contains("someone"), "{path} -> {}", got.template);
        }
    }

    fn split(path: &str) -> Vec<&str> {
        let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        if segs == [""] {
            vec![]
        } else {
            segs
        }
    }
}
