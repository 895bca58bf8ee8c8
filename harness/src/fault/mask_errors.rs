//! `mask-errors`: every failure the node's dockerd reports reaches its clients as one generic
//! message, its cause dropped — a build service that says "import failed" where the daemon
//! said "no space left on device". It is the mutant of `failure-reason`: in 2019 the cause was
//! in the daemon's words, and a report without them would have sent operators to `df -h` hours
//! later than they needed.
//!
//! How: the fault moves dockerd's socket aside (a bound unix socket keeps working under its new
//! name) and listens on its path, forwarding each request to the daemon. A non-2xx answer is
//! replaced by `{"message": <message>}` with the same status; an error object in a 2xx progress
//! stream (`{"errorDetail": …, "error": …}`, as imports report failures mid-stream) gets the
//! same message. Everything else passes unchanged (answers are read whole: no attach or event
//! streams go through it).
//!
//! Heal: stop listening, remove the fault's socket, move the daemon's back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};

use super::{Fault, FaultGuard};
use crate::env::Env;

/// The daemon's socket while the fault is in place: `docker.sock` becomes `docker.raw`.
fn moved(socket: &Path) -> PathBuf {
    socket.with_extension("raw")
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MaskErrors {
    /// What every failure says instead of its cause.
    pub message: String,
}

impl MaskErrors {
    /// Failures reported as "import failed", as a build service that swallows the daemon's words.
    pub fn import_failed() -> Self {
        Self { message: "import failed".into() }
    }
}

/// The masked body of an answer, or `None` when it passes unchanged.
pub fn mask(status: StatusCode, body: &[u8], message: &str) -> Option<Bytes> {
    if !status.is_success() {
        return Some(Bytes::from(serde_json::json!({ "message": message }).to_string()));
    }
    let values: Vec<Value> = serde_json::Deserializer::from_slice(body).into_iter::<Value>().collect::<Result<_, _>>().ok()?;
    let is_error = |v: &Value| v.get("error").is_some() || v.get("errorDetail").is_some();
    if !values.iter().any(is_error) {
        return None;
    }
    let lines: Vec<String> = values
        .iter()
        .map(|v| {
            if is_error(v) {
                serde_json::json!({ "errorDetail": { "message": message }, "error": message }).to_string()
            } else {
                v.to_string()
            }
        })
        .collect();
    Some(Bytes::from(lines.join("\r\n") + "\r\n"))
}

async fn forward(req: Request<Incoming>, upstream: &Path, message: &str) -> Response<Full<Bytes>> {
    let answer = async {
        let stream = UnixStream::connect(upstream).await.with_context(|| format!("connecting to {}", upstream.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        conn.abort();
        anyhow::Ok((parts, body))
    }
    .await;
    let (status, mut headers, body) = match answer {
        Ok((parts, body)) => (parts.status, parts.headers, body),
        Err(e) => (StatusCode::BAD_GATEWAY, Default::default(), Bytes::from(format!("{e:#}"))),
    };
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    let body = match mask(status, &body, message) {
        Some(masked) => {
            headers.insert(CONTENT_TYPE, "application/json".parse().expect("a valid header"));
            masked
        }
        None => body,
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Listen on `socket`, forwarding to `upstream` with failures masked, until aborted.
async fn serve(listener: UnixListener, upstream: Arc<PathBuf>, message: Arc<str>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (upstream, message) = (upstream.clone(), message.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (upstream, message) = (upstream.clone(), message.clone());
                async move { Ok::<_, std::convert::Infallible>(forward(req, &upstream, &message).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Put the masking proxy on `socket` (the daemon's moves aside); returns the heal.
async fn install(socket: &Path, message: &str) -> anyhow::Result<super::guard::HealFn> {
    let upstream = moved(socket);
    std::fs::rename(socket, &upstream).with_context(|| format!("moving {} aside", socket.display()))?;
    let listener = match UnixListener::bind(socket) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::rename(&upstream, socket);
            return Err(anyhow::Error::from(e).context(format!("listening on {}", socket.display())));
        }
    };
    let task = tokio::spawn(serve(listener, Arc::new(upstream.clone()), Arc::from(message)));
    let socket = socket.to_path_buf();
    Ok(Box::new(move || {
        Box::pin(async move {
            task.abort();
            let _ = task.await;
            std::fs::remove_file(&socket).with_context(|| format!("removing {}", socket.display()))?;
            std::fs::rename(&upstream, &socket).with_context(|| format!("moving {} back", upstream.display()))?;
            Ok(())
        })
    }))
}

#[async_trait]
impl Fault for MaskErrors {
    fn kind(&self) -> &'static str {
        "mask-errors"
    }

    fn target(&self) -> String {
        "dockerd".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let heal = install(&env.node_paths().docker_socket, &self.message).await?;
        let detail = format!("every failure dockerd reports is answered with {:?}", self.message);
        Ok(FaultGuard::injected(self.kind(), &self.target(), detail, &env.recorder, heal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::docker_api::{DockerApi, DockerError};

    const ENOSPC: &str = "write /data-root/tmp/x: no space left on device";

    #[test]
    fn failures_lose_their_cause_and_successes_pass() {
        let m = mask(StatusCode::INTERNAL_SERVER_ERROR, format!(r#"{{"message":"{ENOSPC}"}}"#).as_bytes(), "import failed").unwrap();
        assert_eq!(m, r#"{"message":"import failed"}"#);
        let stream = format!("{{\"status\":\"Loading\"}}\r\n{{\"errorDetail\":{{\"message\":\"{ENOSPC}\"}},\"error\":\"{ENOSPC}\"}}\r\n");
        let m = String::from_utf8(mask(StatusCode::OK, stream.as_bytes(), "import failed").unwrap().to_vec()).unwrap();
        assert!(m.starts_with(r#"{"status":"Loading"}"#) && m.contains(r#""error":"import failed""#) && !m.contains("no space"), "{m}");
        assert_eq!(mask(StatusCode::OK, br#"{"status":"sha256:abc"}"#, "x"), None);
        assert_eq!(mask(StatusCode::OK, b"OK", "x"), None);
        assert_eq!(mask(StatusCode::OK, br#"[{"Id":"sha256:abc"}]"#, "x"), None);
    }

    /// A daemon that answers `/_ping` OK and everything else 500 with ENOSPC, behind the fault.
    #[tokio::test]
    async fn clients_of_the_socket_see_the_generic_message_until_healed() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let (status, body) = if req.uri().path() == "/_ping" {
                            (StatusCode::OK, "OK".to_string())
                        } else {
                            (StatusCode::INTERNAL_SERVER_ERROR, format!(r#"{{"message":"{ENOSPC}"}}"#))
                        };
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        *r.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        let api = DockerApi::new(&socket);
        let message = |e: anyhow::Error| e.downcast::<DockerError>().unwrap().message;
        assert_eq!(message(api.version().await.unwrap_err()), ENOSPC);

        let heal = install(&socket, "import failed").await.unwrap();
        api.ping().await.unwrap();
        assert_eq!(message(api.version().await.unwrap_err()), "import failed");

        heal().await.unwrap();
        assert!(!moved(&socket).exists());
        assert_eq!(message(api.version().await.unwrap_err()), ENOSPC);
    }
}
