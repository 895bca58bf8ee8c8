//! A daemon on a unix socket that answers HTTP as it is told, for the harness's own clients of
//! dockerd (readiness, the image factory) where no dockerd runs. Each request's body is read
//! to its end before the answer goes out, as dockerd reads an import before it answers.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// `(method, path with query) -> (status, body)`.
type Answer = Arc<dyn Fn(&str, &str) -> (u16, String) + Send + Sync>;

pub struct FakeDaemon {
    /// Requests seen, as `METHOD /path?query (N bytes)`.
    pub seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    /// Listen on `socket` (its directory must exist) until dropped.
    pub fn serve(socket: &Path, answer: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = tokio::net::UnixListener::bind(socket).expect("bind the fake daemon's socket");
        let answer: Answer = Arc::new(answer);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task_seen = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (answer, seen) = (answer.clone(), task_seen.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (answer, seen) = (answer.clone(), seen.clone());
                        async move {
                            let method = req.method().as_str().to_string();
                            let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            seen.lock().unwrap().push(format!("{method} {path} ({} bytes)", body.len()));
                            let (status, body) = answer(&method, &path);
                            let mut r = Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                });
            }
        });
        Self { seen, task }
    }

    /// Every request answered with `status` and `body`.
    pub fn answering(socket: &Path, status: u16, body: &'static str) -> Self {
        Self::serve(socket, move |_, _| (status, body.to_string()))
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.task.abort();
    }
}
