//! A small client for the Docker Engine API over a unix socket: what the harness itself needs
//! from its own dockerd (the image factory, the docker sampler, the wipe-cache fault, the
//! readiness probe), and nothing more.
//!
//! Why not `bollard` / testcontainers / the `docker` CLI:
//! - testcontainers 0.28 reads the daemon address only from the *process* environment
//!   (`DOCKER_HOST`) or `~/.testcontainers.properties` and caches one client per process, so
//!   two runs (or a run and the user's own docker) cannot each get their own daemon; and when
//!   `POST /containers/create` answers 404 it pulls the image, which here must never happen.
//!   Both are visible in its `core/env/config.rs` and `runners/async_runner.rs`.
//! - bollard (which testcontainers wraps) could do it: it connects to a given unix socket, and
//!   its TLS is an optional feature. It is left out because the harness needs ten endpoints,
//!   and bollard would add `bollard-stubs` (models generated from the whole Engine API) to
//!   every build, and send paths versioned with its own API version, which an older daemon
//!   (dockerd 20.10 speaks 1.41) refuses unless the client negotiates down first.
//! - the `docker` CLI is a second program to find, version-match and parse the output of.
//!
//! hyper is already here (the recording proxy), and one HTTP/1 connection per request over a
//! `UnixStream` is all a harness needs: no pool, no TLS. Paths are unversioned (the daemon
//! answers with its own API version), so one client serves dockerd 20.10 and newer.
//!
//! Every non-2xx answer becomes a [`DockerError`] that keeps the daemon's own message verbatim
//! (e.g. `write /f: no space left on device`), because scenarios report it in those words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::UnixStream;

/// A request body: small JSON, or a stream of tar chunks.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long an ordinary API call may take (image import/load get [`DockerApi::LONG`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A non-2xx answer from dockerd, with its message verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerd answered {status} to {method} {path}: {message}")]
pub struct DockerError {
    pub status: u16,
    pub method: String,
    pub path: String,
    /// The daemon's `message` (or the raw body when it is not JSON).
    pub message: String,
}

impl DockerError {
    /// ENOSPC, in the words the kernel and the daemon use for it.
    pub fn is_no_space(&self) -> bool {
        is_no_space(&self.message)
    }
}

/// Does a message report ENOSPC ("no space left on device")? Inode exhaustion reads the same.
pub fn is_no_space(message: &str) -> bool {
    message.to_ascii_lowercase().contains("no space left on device")
}

/// `GET /images/json` entry (the fields the harness reads).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub containers: i64,
}

impl ImageSummary {
    /// Tags other than the `<none>:<none>` placeholder.
    pub fn tags(&self) -> Vec<String> {
        self.repo_tags.iter().flatten().filter(|t| t.as_str() != "<none>:<none>").cloned().collect()
    }
}

/// `GET /containers/json` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, rename = "ImageID")]
    pub image_id: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// The Docker Engine API of one daemon, reached through its unix socket.
#[derive(Debug, Clone)]
pub struct DockerApi {
    socket: PathBuf,
    timeout: Duration,
}

impl DockerApi {
    /// Image import / load of hundreds of MB on a slow loop disk.
    pub const LONG: Duration = Duration::from_secs(600);

    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self { socket: socket.into(), timeout: DEFAULT_TIMEOUT }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// One request on a fresh connection; the whole answer body is read. Non-2xx => [`DockerError`].
    pub async fn request(&self, method: Method, path: &str, body: Option<Body>, content_type: Option<&str>) -> anyhow::Result<Bytes> {
        self.request_within(method, path, body, content_type, self.timeout).await
    }

    async fn request_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        content_type: Option<&str>,
        within: Duration,
    ) -> anyhow::Result<Bytes> {
        let what = format!("{method} {path} on unix://{}", self.socket.display());
        let fut = async {
            let stream = UnixStream::connect(&self.socket).await.with_context(|| format!("connecting to {}", self.socket.display()))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut req = Request::builder().method(method.clone()).uri(path).header(hyper::header::HOST, "docker");
            if let Some(ct) = content_type {
                req = req.header(hyper::header::CONTENT_TYPE, ct);
            }
            let req = req.body(body.unwrap_or_else(empty))?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            conn.abort();
            if !status.is_success() {
                return Err(DockerError {
                    status: status.as_u16(),
                    method: method.to_string(),
                    path: path.to_string(),
                    message: error_message(&bytes),
                }
                .into());
            }
            anyhow::Ok(bytes)
        };
        tokio::time::timeout(within, fut).await.with_context(|| format!("{what}: no answer within {within:?}"))?
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let bytes = self.request(Method::GET, path, None, None).await?;
        serde_json::from_slice(&bytes).with_context(|| format!("GET {path}: unexpected answer {}", String::from_utf8_lossy(&bytes)))
    }

    /// `GET /_ping` answers `OK`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let body = self.request(Method::GET, "/_ping", None, None).await?;
        anyhow::ensure!(body.as_ref() == b"OK", "GET /_ping answered {:?}", String::from_utf8_lossy(&body));
        Ok(())
    }

    /// `GET /version` (the daemon's version, API version, storage driver...).
    pub async fn version(&self) -> anyhow::Result<Value> {
        self.get_json("/version").await
    }

    /// Images, optionally only those carrying the label `key=value` (or just `key`).
    /// `all` includes intermediate images (the parents a classic build leaves).
    pub async fn images(&self, label: Option<&str>, all: bool) -> anyhow::Result<Vec<ImageSummary>> {
        let mut path = format!("/images/json?all={}", all as u8);
        if let Some(l) = label {
            path.push_str("&filters=");
            path.push_str(&query_escape(&serde_json::json!({ "label": [l] }).to_string()));
        }
        self.get_json(&path).await
    }

    /// Containers (running ones unless `all`), optionally by label.
    pub async fn containers(&self, label: Option<&str>, all: bool) -> anyhow::Result<Vec<ContainerSummary>> {
        let mut path = format!("/containers/json?all={}", all as u8);
        if let Some(l) = label {
            path.push_str("&filters=");
            path.push_str(&query_escape(&serde_json::json!({ "label": [l] }).to_string()));
        }
        self.get_json(&path).await
    }

    /// `docker import`: one layer from a tar stream, tagged `repo:tag`, with Dockerfile
    /// `changes` (`LABEL k=v`, `CMD [...]`). Returns the image id.
    pub async fn import(&self, repo: &str, tag: &str, changes: &[String], tar: Body) -> anyhow::Result<String> {
        let mut path = format!("/images/create?fromSrc=-&repo={}&tag={}", query_escape(repo), query_escape(tag));
        for c in changes {
            path.push_str("&changes=");
            path.push_str(&query_escape(c));
        }
        let body = self.request_within(Method::POST, &path, Some(tar), Some("application/x-tar"), Self::LONG).await?;
        let last = progress_result(&path, &body)?;
        // The last status line of an import is the new image id.
        last.get("status").and_then(Value::as_str).map(str::to_string).with_context(|| format!("POST {path}: no image id in {last}"))
    }

    /// `docker load`: an image archive (manifest.json + config + layer tars). Returns the
    /// `Loaded image: ...` lines.
    pub async fn load(&self, archive: Body) -> anyhow::Result<Vec<String>> {
        let path = "/images/load?quiet=1";
        let body = self.request_within(Method::POST, path, Some(archive), Some("application/x-tar"), Self::LONG).await?;
        progress_result(path, &body)?;
        Ok(progress_lines(&body)
            .filter_map(|v| v.get("stream").and_then(Value::as_str).map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// `DELETE /images/{id}`; `force` also untags an image other tags or stopped containers hold.
    pub async fn remove_image(&self, id: &str, force: bool) -> anyhow::Result<()> {
        self.request(Method::DELETE, &format!("/images/{}?force={}", path_escape(id), force as u8), None, None).await?;
        Ok(())
    }

    /// `POST /containers/create` with a raw JSON config; returns the id. Never pulls: a missing
    /// image is an error (`No such image`), which is the point.
    pub async fn create_container(&self, name: &str, config: &Value) -> anyhow::Result<String> {
        let path = format!("/containers/create?name={}", query_escape(name));
        let body = self.request(Method::POST, &path, Some(json_body(config)), Some("application/json")).await?;
        let v: Value = serde_json::from_slice(&body)?;
        v.get("Id").and_then(Value::as_str).map(str::to_string).context("container create: no Id")
    }

    pub async fn start_container(&self, id: &str) -> anyhow::Result<()> {
        self.request(Method::POST, &format!("/containers/{}/start", path_escape(id)), None, None).await?;
        Ok(())
    }

    /// `DELETE /containers/{id}?force=1&v=1`: kill if running, remove with its volumes.
    pub async fn remove_container(&self, id: &str) -> anyhow::Result<()> {
        self.request(Method::DELETE, &format!("/containers/{}?force=1&v=1", path_escape(id)), None, None).await?;
        Ok(())
    }
}

/// An empty request body.
pub fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

/// A request body of these bytes (a small tar).
pub fn bytes_body(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// A JSON request body.
pub fn json_body(v: &Value) -> Body {
    Full::new(Bytes::from(v.to_string())).map_err(|never| match never {}).boxed()
}

/// A body fed chunk by chunk from a channel (e.g. a tar generated on a blocking thread).
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Body {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk.map(Frame::data), rx)) });
    StreamBody::new(stream).boxed()
}

/// The daemon's error: `{"message": "..."}`, else the body as text.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// The JSON objects of a progress stream (one per line, or concatenated).
fn progress_lines(body: &[u8]) -> impl Iterator<Item = Value> + '_ {
    serde_json::Deserializer::from_slice(body).into_iter::<Value>().filter_map(Result::ok)
}

/// A progress stream (import, load) answers 200 and reports a failure in an `errorDetail`
/// line: turn that into a [`DockerError`] with status 500. Returns the last line.
fn progress_result(path: &str, body: &[u8]) -> anyhow::Result<Value> {
    let mut last = Value::Null;
    for v in progress_lines(body) {
        if let Some(err) = v.get("errorDetail").and_then(|d| d.get("message")).or_else(|| v.get("error")).and_then(Value::as_str) {
            return Err(DockerError { status: 500, method: "POST".into(), path: path.into(), message: err.to_string() }.into());
        }
        last = v;
    }
    Ok(last)
}

/// Escaped in a query value: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// Escaped in a path: as in a query value, but `/` and `:` stay (references `org/repo:tag`,
/// ids `sha256:...`).
const PATH: &AsciiSet = &QUERY_VALUE.remove(b'/').remove(b':');

/// Percent-encode a query value.
pub fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Percent-encode a path, keeping `/` and `:`.
fn path_escape(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

/// Readiness of a daemon on a unix socket: `GET path` answers below 500 (for dockerd:
/// `GET /_ping` answers 200 `OK`). For [`crate::backend::local::spec::Readiness`] and probes.
pub async fn unix_http_ready(socket: &Path, path: &str) -> bool {
    let api = DockerApi::new(socket).with_timeout(Duration::from_secs(2));
    match api.request(Method::GET, path, None, None).await {
        Ok(_) => true,
        Err(e) => e.downcast_ref::<DockerError>().is_some_and(|d| d.status < 500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use crate::testkit::FakeDaemon;

    /// A one-shot fake daemon: answers each connection with `answer`, returns the request heads.
    fn fake_daemon(path: &Path, answer: &'static str) -> tokio::task::JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            let mut heads = Vec::new();
            while let Ok(Ok((mut s, _))) = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await {
                let mut buf = vec![0u8; 65536];
                let n = s.read(&mut buf).await.unwrap();
                heads.push(String::from_utf8_lossy(&buf[..n]).to_string());
                s.write_all(answer.as_bytes()).await.unwrap();
                s.shutdown().await.ok();
            }
            heads
        })
    }

    #[tokio::test]
    async fn a_progress_stream_error_keeps_the_daemons_words() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let body = r#"{"status":"Loading layer"}
{"errorDetail":{"message":"write /f1: no space left on device"},"error":"write /f1: no space left on device"}
"#;
        let answer: &'static str =
            Box::leak(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_boxed_str());
        let daemon = fake_daemon(&sock, answer);
        let api = DockerApi::new(&sock);
        let err = api.load(empty()).await.unwrap_err();
        let d = err.downcast_ref::<DockerError>().expect("a DockerError");
        assert!(d.is_no_space(), "{d}");
        assert_eq!(d.message, "write /f1: no space left on device");
        drop(daemon);
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_a_docker_error_with_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let body = r#"{"message":"No such image: hubchaos/x:1"}"#;
        let answer: &'static str = Box::leak(
            format!("HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_boxed_str(),
        );
        let daemon = fake_daemon(&sock, answer);
        let api = DockerApi::new(&sock);
        let err = api.create_container("keep", &serde_json::json!({"Image": "hubchaos/x:1"})).await.unwrap_err();
        let d = err.downcast_ref::<DockerError>().unwrap();
        assert_eq!((d.status, d.message.as_str()), (404, "No such image: hubchaos/x:1"));
        let heads = daemon.await.unwrap();
        assert!(heads[0].starts_with("POST /containers/create?name=keep HTTP/1.1"), "{}", heads[0]);
    }

    /// Ready means "a daemon answers": dockerd's `/_ping` answers 200, and a 404 (another path,
    /// another daemon version) is still a server answering. A 5xx, or nobody listening, is not.
    #[tokio::test]
    async fn readiness_is_any_answer_below_500() {
        let dir = tempfile::tempdir().unwrap();
        for (status, ready) in [(200, true), (404, true), (499, true), (500, false), (503, false)] {
            let sock = dir.path().join(format!("{status}.sock"));
            let daemon = FakeDaemon::answering(&sock, status, "OK");
            assert_eq!(unix_http_ready(&sock, "/_ping").await, ready, "answered {status}");
            assert_eq!(daemon.seen(), ["GET /_ping (0 bytes)"]);
        }
        assert!(!unix_http_ready(&dir.path().join("nothing.sock"), "/_ping").await, "no socket");
        // The socket file of a daemon that is gone (killed dockerd): nobody accepts.
        let gone = dir.path().join("gone.sock");
        drop(std::os::unix::net::UnixListener::bind(&gone).unwrap());
        assert!(gone.exists());
        assert!(!unix_http_ready(&gone, "/_ping").await, "a socket nobody listens on");
    }

    #[test]
    fn filters_and_references_are_escaped() {
        assert_eq!(query_escape(r#"{"label":["hubchaos.run=a b"]}"#), "%7B%22label%22%3A%5B%22hubchaos.run%3Da%20b%22%5D%7D");
        assert_eq!(path_escape("hubchaos/filler:run-1"), "hubchaos/filler:run-1");
        assert_eq!(path_escape("sha256:abc"), "sha256:abc");
        assert_eq!(path_escape("hubchaos/a b?c#d%"), "hubchaos/a%20b%3Fc%23d%25");
        assert_eq!(query_escape("a/b:c-d_e.f~g ü"), "a%2Fb%3Ac-d_e.f~g%20%C3%BC");
        assert!(is_no_space("Error processing tar file(exit status 1): write /rand400: no space left on device"));
        assert!(!is_no_space("No such image"));
    }

    #[test]
    fn image_summaries_parse_the_daemons_json() {
        let v: Vec<ImageSummary> = serde_json::from_str(
            r#"[{"Id":"sha256:1","RepoTags":["<none>:<none>"],"Size":5,"Labels":null,"Containers":-1},
                {"Id":"sha256:2","RepoTags":["hubchaos/a:t"],"Size":7,"Labels":{"hubchaos.run":"r"},"Containers":1}]"#,
        )
        .unwrap();
        assert!(v[0].tags().is_empty());
        assert_eq!(v[1].tags(), ["hubchaos/a:t"]);
        let c: Vec<ContainerSummary> =
            serde_json::from_str(r#"[{"Id":"c1","Image":"hubchaos/a:t","ImageID":"sha256:2","State":"running"}]"#).unwrap();
        assert_eq!(c[0].image_id, "sha256:2");
    }
}
