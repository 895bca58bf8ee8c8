//! A hub and proxy in one HTTP server, for the harness's own client code: servers start at
//! once; a stopped server stays listed for one more poll (a stop is pending for a moment, as
//! on the real hub); `/user/{name}/api` answers while the server runs, else redirects.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}

impl FakeHub {
    fn handle(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
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
                let out: Vec<_> = users.iter().map(|n| serde_json::json!({"name": n, "servers": {}})).collect();
                (200, serde_json::to_string(&out).unwrap())
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
            ("GET", ["user", u, "api"]) if !self.unroutable.load(Ordering::SeqCst) && servers.get(*u).is_some_and(|s| s.0) => {
                (200, r#"{"version": "2.0"}"#.into())
            }
            ("GET", ["user", _, "api"]) => (302, String::new()),
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
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let delay = this.delay_ms.load(Ordering::SeqCst);
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            let (status, body) = this.handle(&method, &path, &body);
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
