//! `build-streams`: watchers of BinderHub builds, as browsers on mybinder.org are. Each opens
//! `GET /build/git/<repo>/main?build_only=true` (or `/build/gh/…`) with `Accept: text/event-stream` (exactly that:
//! BinderHub splits the header on `;`, so `text/event-stream, */*` is refused) at its time in
//! the window, reads the stream until BinderHub closes it or the run ends, and is recorded as
//! one [`BuildStreamRecord`]: every change of phase with when it arrived, when the build itself
//! started (the first event after `waiting`), the first terminal phase (`ready`, `failed`), and
//! when the server closed the stream, if it did.
//!
//! BinderHub answers every error as HTTP 200 with a `failed` event, so results come from the
//! events, never from the status code. Bounded: a fixed number of watchers, each ending with
//! the run's stop token at the latest; the workload itself ends with it, so the window runs its
//! whole length after the last stream.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Workload;
use crate::env::Env;
use crate::observe::history::{BuildStreamRecord, Event, PhaseAt};

/// Messages of a stream kept for the verdict (the last ones: where a build says why it failed).
pub const LOG_TAIL: usize = 12;
/// Characters kept of each message.
const MESSAGE_CUT: usize = 400;

/// Phases that end a build as the client sees it.
pub const TERMINAL_PHASES: &[&str] = &["ready", "failed"];

/// `watchers` clients of `repo`, the first at `at` into the window, the next ones `spacing`
/// apart.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildRequest {
    pub repo: String,
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub watchers: usize,
    #[serde(with = "humantime_serde")]
    pub spacing: Duration,
}

impl BuildRequest {
    /// One watcher of `repo` at `at`.
    pub fn one(repo: &str, at: Duration) -> Self {
        Self { repo: repo.into(), at, watchers: 1, spacing: Duration::ZERO }
    }

    /// `watchers` watchers of `repo` from `at`, `spacing` apart.
    pub fn many(repo: &str, at: Duration, watchers: usize, spacing: Duration) -> Self {
        Self { repo: repo.into(), at, watchers, spacing }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildStreams {
    pub requests: Vec<BuildRequest>,
}

#[async_trait]
impl Workload for BuildStreams {
    fn name(&self) -> String {
        "build-streams".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let binder = env.binder()?;
        // No overall timeout: a stream lives as long as the build (bounded by the run).
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
        let mut watchers = futures::stream::FuturesUnordered::new();
        for request in &self.requests {
            let path = binder
                .builds
                .get(&request.repo)
                .ok_or_else(|| anyhow::anyhow!("build-streams: no sample repo named {:?}", request.repo))?;
            let full = format!("{}{path}", binder.url);
            for watcher in 0..request.watchers {
                let (http, full, stop) = (http.clone(), full.clone(), stop.clone());
                let at = request.at + request.spacing * watcher as u32;
                let repo = request.repo.clone();
                watchers.push(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(at) => {}
                        _ = stop.cancelled() => return,
                    }
                    let requested_at = env.now();
                    let record = follow(&http, &full, repo, watcher, requested_at, env, &stop).await;
                    env.recorder.record_at(requested_at, Event::BuildStream(record));
                });
            }
        }
        while watchers.next().await.is_some() {}
        // The window runs its whole length: what BinderHub does once every stream ended (its
        // in-progress gauge settling, or not) is part of the verdict.
        stop.cancelled().await;
        Ok(())
    }
}

/// Read one stream to its end (or the stop token's).
async fn follow(
    http: &reqwest::Client,
    url: &str,
    repo: String,
    watcher: usize,
    requested_at: Duration,
    env: &Env,
    stop: &CancellationToken,
) -> BuildStreamRecord {
    let mut record = BuildStreamRecord::new(repo, watcher, requested_at);
    let response = tokio::select! {
        r = http.get(url).header("Accept", "text/event-stream").send() => r,
        _ = stop.cancelled() => return record,
    };
    let mut response = match response {
        Ok(r) => r,
        Err(e) => {
            record.message = format!("request failed: {e}");
            return record;
        }
    };
    let mut pending = String::new();
    loop {
        let chunk = tokio::select! {
            c = response.chunk() => c,
            _ = stop.cancelled() => return record,
        };
        match chunk {
            Ok(None) => {
                record.closed_at = Some(env.now());
                return record;
            }
            Err(e) => {
                record.message = format!("stream broke: {e}");
                record.closed_at = Some(env.now());
                return record;
            }
            Ok(Some(bytes)) => {
                pending.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    if let Some(data) = line.trim_end().strip_prefix("data:") {
                        take_event(&mut record, data.trim(), env.now());
                    }
                }
            }
        }
    }
}

/// Fold one event (`data:` JSON) into the record.
pub fn take_event(record: &mut BuildStreamRecord, data: &str, at: Duration) {
    record.events += 1;
    let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else { return };
    if let Some(m) = event.get("message").and_then(|m| m.as_str()).map(str::trim).filter(|m| !m.is_empty()) {
        if record.log_tail.len() == LOG_TAIL {
            record.log_tail.remove(0);
        }
        record.log_tail.push(m.chars().take(MESSAGE_CUT).collect());
    }
    let phase = event.get("phase").and_then(|p| p.as_str());
    if let Some(phase) = phase {
        if record.phases.last().is_none_or(|p| p.phase != phase) {
            record.phases.push(PhaseAt { phase: phase.into(), at });
        }
        if phase != "waiting" && record.build_started_at.is_none() && record.terminal.is_none() {
            record.build_started_at = Some(at);
        }
        if TERMINAL_PHASES.contains(&phase) && record.terminal.is_none() {
            record.terminal = Some(PhaseAt { phase: phase.into(), at });
        }
        if phase == "failed" {
            if let Some(m) = event.get("message").and_then(|m| m.as_str()) {
                record.message = m.trim().to_string();
            }
        }
    } else if record.phases.last().is_some_and(|p| p.phase == "waiting") && record.build_started_at.is_none() {
        // A log line without a phase (repo2docker's "Picked Git content provider.") after
        // `waiting`: the build is under way.
        record.build_started_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> BuildStreamRecord {
        BuildStreamRecord::new("fast".into(), 0, Duration::from_secs(1))
    }

    #[test]
    fn phases_are_kept_as_changes_with_the_build_start_and_the_terminal_phase() {
        let mut r = record();
        let s = Duration::from_secs;
        take_event(&mut r, r#"{"phase": "waiting", "message": "Waiting for build to start..."}"#, s(1));
        take_event(&mut r, r#"{"message": "Picked Git content provider.\n"}"#, s(19));
        take_event(&mut r, r#"{"phase": "fetching", "message": "Cloning"}"#, s(19));
        take_event(&mut r, r##"{"phase": "building", "message": "#1"}"##, s(20));
        take_event(&mut r, r##"{"phase": "building", "message": "#2"}"##, s(21));
        take_event(&mut r, r#"{"phase": "ready", "message": "Done! Image built"}"#, s(22));
        assert_eq!(r.phases.iter().map(|p| p.phase.as_str()).collect::<Vec<_>>(), ["waiting", "fetching", "building", "ready"]);
        assert_eq!(r.build_started_at, Some(s(19)));
        assert_eq!(r.terminal, Some(PhaseAt { phase: "ready".into(), at: s(22) }));
        assert_eq!(r.events, 6);
        assert_eq!(r.log_tail.last().map(String::as_str), Some("Done! Image built"));
    }

    #[test]
    fn a_failed_event_is_terminal_and_keeps_its_message() {
        let mut r = record();
        take_event(&mut r, r#"{"phase": "failed", "status_code": 400, "message": "Could not resolve ref\n"}"#, Duration::from_secs(2));
        assert_eq!(r.terminal.as_ref().map(|t| t.phase.as_str()), Some("failed"));
        assert_eq!(r.message, "Could not resolve ref");
        // An immediate failure is an answer too: the request was not left waiting.
        assert_eq!(r.build_started_at, Some(Duration::from_secs(2)));
    }
}
