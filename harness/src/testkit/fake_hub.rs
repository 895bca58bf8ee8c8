//! A hub and proxy in one HTTP server, for the harness's own client code: servers start at
//! once; a stopped server stays listed for one more poll (a stop is pending for a moment, as
//! on the real hub); `/user/{name}/api` (and `/user/{name}/api/status`) answers while the
//! server runs, else redirects. The user list is paginated when asked to be (as `HubApi`
//! asks), and lists each created user's running default server with its URL.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Clone, Default)]
pub struct FakeHub {
    /// user -> (running, polls left while stopping)
    pub servers: Arc<Mutex<HashMap<String, (bool, u32)>>>,
    /// Users created through the API, in order.
    pub users: Arc<Mutex<Vec<String>>>,
    /// The proxy never routes to a server (the hub's "not running" redirect).
    pub unroutable: Arc<AtomicBool>,
    /// Every answer is delayed this long (a stalled hub), in milliseconds.
    pub delay_ms: Arc<AtomicU64>,
    /// Requests seen, as `METHOD /path`.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// When not 0, every `/hub/api` request is answered with this status (a hub in trouble).
    pub api_status: Arc<AtomicU16>,
}

/// What `HubApi` sends to get the paginated user list.
const PAGINATION: &str = "application/jupyterhub-pagination+json";

impl FakeHub {
    fn handle(&self, method: &str, path: &str, paginated: bool, body: &[u8]) -> (u16, String) {
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let failing = self.api_status.load(Ordering::SeqCst);
        if failing != 0 && parts.starts_with(&["hub", "api"]) {
            return (failing, r#"{"message": "the fake hub is told to fail"}"#.into());
        }
        let mut servers = self.servers.lock().unwrap();
        match (method, parts.as_slice()) {
            ("GET", ["hub", "api"]) => (200, r#"{"version": "fake"}"#.into()),
            ("POST", ["hub", "api", "users"]) => {
                let names: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("usernames").cloned())
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default();
                self.users.lock().unwrap().extend(names.iter().cloned());
                let out: Vec<_> = names.iter().map(|n| serde_json::json!({"name": n})).collect();
                (201, serde_json::to_string(&out).unwrap())
            }
            ("GET", ["hub", "api", "users"]) => {
                let users = self.users.lock().unwrap().clone();
                let out: Vec<_> = users
                    .iter()
                    .map(|n| {
                        let running = servers.get(n).is_some_and(|s| s.0);
                        let s = if running {
                            serde_json::json!({"": {"ready": true, "url": format!("/user/{n}/")}})
                        } else {
                            serde_json::json!({})
                        };
                        serde_json::json!({"name": n, "servers": s})
                    })
                    .collect();
                let total = out.len();
                let body = if paginated {
                    serde_json::json!({"items": out, "_pagination": {"offset": 0, "limit": total, "total": total, "next": null}})
                } else {
                    serde_json::json!(out)
                };
                (200, body.to_string())
            }
            ("POST", ["hub", "api", "users", u, "server"]) => {
                servers.insert(u.to_string(), (true, 0));
                (201, String::new())
            }
            ("DELETE", ["hub", "api", "users", u, "server"]) => {
                servers.insert(u.to_string(), (false, 1));
                (202, String::new())
            }
            ("POST", ["hub", "api", "users", _, "activity"]) => (200, String::new()),
            ("GET", ["hub", "api", "users", u]) => {
                let e = servers.entry(u.to_string()).or_insert((false, 0));
                let listed = e.0 || e.1 > 0;
                e.1 = e.1.saturating_sub(1);
                let s = if listed { r#"{"": {"ready": true}}"# } else { "{}" };
                (200, format!(r#"{{"name": "{u}", "servers": {s}}}"#))
            }
            ("GET", ["user", u, "api", ..]) if !self.unroutable.load(Ordering::SeqCst) && servers.get(*u).is_some_and(|s| s.0) => {
                (200, r#"{"version": "2.0"}"#.into())
            }
            ("GET", ["user", _, "api", ..]) => (302, String::new()),
            _ => (404, String::new()),
        }
    }

    /// Serve on a free port of 127.0.0.1 until the runtime ends; returns the address.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let this = self.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let this = this.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let this = this.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let (method, path) = (req.method().as_str().to_string(), req.uri().path().to_string());
                            let paginated = req.headers().get(hyper::header::ACCEPT).is_some_and(|a| a.as_bytes() == PAGINATION.as_bytes());
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let delay = this.delay_ms.load(Ordering::SeqCst);
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            let (status, body) = this.handle(&method, &path, paginated, &body);
                            let mut r = Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                });
            }
        });
        addr
    }
}
