//! `spawn-churn`: users starting and stopping their servers, over and over, as on a busy
//! Binder where every launch is a new short-lived server. The 2018 hub died after N launches
//! (a thread and pool leaked per spawn); only many cycles show that, so this workload does
//! nothing but cycle, `users` at a time.
//!
//! Each user loops: start the default server (`POST /hub/api/users/{name}/server`), wait until
//! the single-user server itself answers THROUGH the proxy (`GET {public}/user/{name}/api` with
//! the harness token -> 200 JSON with `version`; redirects are not followed, so the hub's
//! "not running" page never counts), optionally post activity, stop the server (`DELETE`) and
//! wait until the hub no longer lists it. Each step is an op (`start-server`, `reach-server`,
//! `post-activity`, `stop-server`) with its latency and result, and every finished cycle one
//! `spawn-cycle` op (Ok when every step was): `leak-slope` counts completed spawns from those.
//!
//! The users (`<prefix>-<i>`) are created in bulk at the start, then the workload waits
//! `quiet_before` so the samplers record a resting baseline before the first spawn (for
//! `returns-to-baseline`). It is bounded by `cycles` per user and by the stop token; when
//! stopped mid-cycle, a user's server is still stopped (bounded by `CLEANUP_WITHIN`), so the
//! state after the workload is "no server running". After a failed step the user stops its
//! server, backs off a second and goes on: a broken hub shows as failed ops, not a hot loop.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::component::hub_api::{name_segment, HubApi};
use crate::env::Env;
use crate::observe::history::{Event, OpRecord, OpResult};

pub const CLIENT: &str = "workload";
pub const WORKLOAD: &str = "spawn-churn";
pub const START_SERVER: &str = "start-server";
pub const REACH_SERVER: &str = "reach-server";
pub const POST_ACTIVITY: &str = "post-activity";
pub const STOP_SERVER: &str = "stop-server";
/// One per completed cycle (the op `leak-slope` counts).
pub const SPAWN_CYCLE: &str = crate::check::leak_slope::SPAWN_CYCLE;
/// Phase markers: users created and the quiet period over / every user done and cleaned up.
pub const CHURN_START: &str = "spawn-churn-start";
pub const CHURN_STOP: &str = "spawn-churn-stop";

/// How long stopping a server may take once the workload was told to stop.
pub const CLEANUP_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);
const BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, serde::Serialize)]
pub struct SpawnChurn {
    /// Concurrent users (C): each cycles its own default server.
    pub users: usize,
    /// Cycles per user; None = until stopped.
    pub cycles: Option<usize>,
    /// User names are `<prefix>-<i>`.
    pub prefix: String,
    /// Post activity for the server while it runs.
    pub activity: bool,
    /// How long a server may take to answer through the proxy, and to be gone after a stop.
    #[serde(with = "humantime_serde")]
    pub ready_within: Duration,
    /// Resting time after creating the users, before the first spawn (the baseline).
    #[serde(with = "humantime_serde")]
    pub quiet_before: Duration,
}

impl Default for SpawnChurn {
    fn default() -> Self {
        Self {
            users: 2,
            cycles: None,
            prefix: "churn".into(),
            activity: true,
            ready_within: Duration::from_secs(60),
            quiet_before: Duration::from_secs(5),
        }
    }
}

impl SpawnChurn {
    pub fn names(&self) -> Vec<String> {
        (0..self.users).map(|i| format!("{}-{i}", self.prefix)).collect()
    }
}

/// What one user needs to cycle.
struct Cycler<'a> {
    env: &'a Env,
    api: HubApi,
    http: reqwest::Client,
    public_url: String,
    token: String,
    spec: &'a SpawnChurn,
}

/// The result of one step: Ok, failed, or cut short by the stop token.
enum Step {
    Done(anyhow::Result<()>),
    Stopped,
}

impl Cycler<'_> {
    fn op(&self, op: &str, user: &str, started: Duration, result: &anyhow::Result<()>) {
        record_op(self.env, WORKLOAD, op, Some(user), started, result);
    }

    async fn start(&self, user: &str) -> anyhow::Result<()> {
        let status = self.api.start_server(user, "").await?;
        if status == 400 {
            bail!("POST /users/{user}/server -> 400 (already running or pending)");
        }
        Ok(())
    }

    /// Poll through the proxy until the server answers with its version.
    async fn reach(&self, user: &str, stop: &CancellationToken) -> Step {
        let url = format!("{}/user/{}/api", self.public_url, name_segment(user));
        let deadline = tokio::time::Instant::now() + self.spec.ready_within;
        loop {
            let attempt = async {
                let r = self.http.get(&url).header("Authorization", format!("token {}", self.token)).send().await?;
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                anyhow::Ok((status.as_u16(), body.get("version").is_some()))
            };
            let last = match attempt.await {
                Ok((200, true)) => return Step::Done(Ok(())),
                Ok((status, _)) => format!("{status}"),
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                return Step::Done(Err(anyhow::anyhow!(
                    "GET /user/{user}/api through the proxy did not answer with the server's version within {:?} (last: {last})",
                    self.spec.ready_within
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return Step::Stopped,
            }
        }
    }

    /// DELETE the server and wait until the hub no longer lists it (running or pending).
    async fn stop_server(&self, user: &str, within: Duration) -> anyhow::Result<()> {
        let status = self.api.stop_server(user, "").await?;
        if !matches!(status, 202 | 204) {
            bail!("DELETE /users/{user}/server -> {status}");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let u = self.api.user(user).await?.with_context(|| format!("user {user} is gone"))?;
            if !u.servers.contains_key("") {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("server of {user} still listed {within:?} after DELETE (pending: {:?})", u.servers[""].pending);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stop (bounded) and record it; used at the end of a cycle and when cleaning up.
    async fn stop_recorded(&self, user: &str, within: Duration) -> anyhow::Result<()> {
        let started = self.env.now();
        let r = self.stop_server(user, within).await;
        self.op(STOP_SERVER, user, started, &r);
        r
    }

    /// One cycle; `Ok(true)` if it completed (recorded as `spawn-cycle`), `Ok(false)` if the
    /// stop token cut it short (the server is stopped anyway).
    async fn cycle(&self, user: &str, stop: &CancellationToken) -> bool {
        let cycle_started = self.env.now();
        let mut failed: Option<String> = None;

        let started = self.env.now();
        let r = self.start(user).await;
        self.op(START_SERVER, user, started, &r);
        if let Err(e) = &r {
            failed = Some(format!("{START_SERVER}: {e:#}"));
        }

        if failed.is_none() {
            let started = self.env.now();
            match self.reach(user, stop).await {
                Step::Done(r) => {
                    self.op(REACH_SERVER, user, started, &r);
                    if let Err(e) = &r {
                        failed = Some(format!("{REACH_SERVER}: {e:#}"));
                    }
                }
                Step::Stopped => {
                    let _ = self.stop_recorded(user, CLEANUP_WITHIN).await;
                    return false;
                }
            }
        }

        if failed.is_none() && self.spec.activity {
            let started = self.env.now();
            let r = self.api.post_activity(user, &[""], SystemTime::now()).await;
            self.op(POST_ACTIVITY, user, started, &r);
            if let Err(e) = &r {
                failed = Some(format!("{POST_ACTIVITY}: {e:#}"));
            }
        }

        // Always stop: a failed start may still have left a pending server.
        let within = if stop.is_cancelled() { CLEANUP_WITHIN } else { self.spec.ready_within };
        if let Err(e) = self.stop_recorded(user, within).await {
            failed.get_or_insert(format!("{STOP_SERVER}: {e:#}"));
        }

        let (result, detail) = match failed {
            None => (OpResult::Ok, String::new()),
            Some(d) => (OpResult::Fail, d),
        };
        self.env.recorder.record_at(
            cycle_started,
            Event::Op(OpRecord {
                workload: WORKLOAD.into(),
                op: SPAWN_CYCLE.into(),
                user: Some(user.into()),
                result,
                latency: self.env.now().saturating_sub(cycle_started),
                detail,
            }),
        );
        if result != OpResult::Ok {
            tokio::select! {
                _ = tokio::time::sleep(BACKOFF) => {}
                _ = stop.cancelled() => {}
            }
        }
        true
    }

    async fn run_user(&self, user: &str, stop: &CancellationToken) -> usize {
        let mut done = 0;
        while self.spec.cycles.is_none_or(|n| done < n) && !stop.is_cancelled() {
            if !self.cycle(user, stop).await {
                break;
            }
            done += 1;
        }
        done
    }
}

#[async_trait]
impl Workload for SpawnChurn {
    fn name(&self) -> String {
        WORKLOAD.into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        if self.users == 0 {
            bail!("spawn-churn: no users");
        }
        let hub = env.hub()?;
        let api = env.hub_api(CLIENT).await?;
        let names = self.names();
        api.create_users(&names).await.context("spawn-churn: creating users")?;
        tokio::select! {
            _ = tokio::time::sleep(self.quiet_before) => {}
            _ = stop.cancelled() => return Ok(()),
        }
        env.recorder
            .phase(CHURN_START, format!("{} users, {} cycles each", self.users, self.cycles.map_or("unbounded".into(), |n| n.to_string())));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()).build()?;
        let cycler = Cycler { env, api, http, public_url: hub.public_url.clone(), token: hub.harness_token.clone(), spec: self };
        let counts = futures::future::join_all(names.iter().map(|u| cycler.run_user(u, &stop))).await;
        env.recorder.phase(CHURN_STOP, format!("{} cycles", counts.iter().sum::<usize>()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeHub;

    #[test]
    fn users_are_named_by_prefix() {
        let w = SpawnChurn { users: 3, prefix: "c".into(), ..Default::default() };
        assert_eq!(w.names(), ["c-0", "c-1", "c-2"]);
        assert_eq!(w.name(), "spawn-churn");
        assert_eq!(SPAWN_CYCLE, "spawn-cycle");
    }

    async fn env_with_fake_hub() -> (Env, FakeHub, tempfile::TempDir) {
        let (env, hub, _backend, dir) = crate::testkit::env_with_fake_hub().await;
        (env, hub, dir)
    }

    fn ops(env: &Env, name: &str) -> Vec<OpRecord> {
        env.recorder.history().ops().filter(|(_, o)| o.op == name).map(|(_, o)| o.clone()).collect()
    }

    #[tokio::test]
    async fn every_step_and_every_cycle_is_an_op() {
        let (env, fake, _dir) = env_with_fake_hub().await;
        let w = SpawnChurn { users: 2, cycles: Some(3), quiet_before: Duration::ZERO, ..Default::default() };
        tokio::time::timeout(Duration::from_secs(20), w.run(&env, CancellationToken::new())).await.unwrap().unwrap();
        for op in [START_SERVER, REACH_SERVER, POST_ACTIVITY, STOP_SERVER, SPAWN_CYCLE] {
            let o = ops(&env, op);
            assert_eq!(o.len(), 6, "{op}: {o:?}");
            assert!(o.iter().all(|o| o.result == OpResult::Ok), "{op}: {o:?}");
        }
        let h = env.recorder.history();
        assert!(h.phase(CHURN_START).is_some() && h.phase(CHURN_STOP).is_some());
        // Requests to the hub API went through the recorder as the workload's client.
        assert!(h.requests().any(|(_, r)| r.client == CLIENT && r.method == "POST" && r.route.ends_with("/server")));
        assert!(fake.servers.lock().unwrap().values().all(|s| !s.0));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_the_cycle_and_is_still_stopped() {
        let (env, fake, _dir) = env_with_fake_hub().await;
        fake.unroutable.store(true, std::sync::atomic::Ordering::SeqCst);
        let w = SpawnChurn {
            users: 1,
            cycles: Some(1),
            ready_within: Duration::from_millis(500),
            quiet_before: Duration::ZERO,
            activity: false,
            prefix: "x".into(),
        };
        tokio::time::timeout(Duration::from_secs(20), w.run(&env, CancellationToken::new())).await.unwrap().unwrap();
        let reach = ops(&env, REACH_SERVER);
        assert_eq!(reach.len(), 1);
        assert_eq!(reach[0].result, OpResult::Fail);
        let cycle = ops(&env, SPAWN_CYCLE);
        assert_eq!(cycle[0].result, OpResult::Fail);
        assert!(cycle[0].detail.starts_with("reach-server"), "{}", cycle[0].detail);
        assert_eq!(ops(&env, STOP_SERVER).len(), 1);
        assert!(ops(&env, POST_ACTIVITY).is_empty());
    }

    #[tokio::test]
    async fn the_stop_token_ends_it_and_leaves_no_server_running() {
        let (env, fake, _dir) = env_with_fake_hub().await;
        let w = SpawnChurn { users: 2, cycles: None, quiet_before: Duration::ZERO, ..Default::default() };
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            s2.cancel();
        });
        tokio::time::timeout(Duration::from_secs(20), w.run(&env, stop)).await.unwrap().unwrap();
        assert!(!ops(&env, SPAWN_CYCLE).is_empty());
        assert_eq!(ops(&env, START_SERVER).len(), ops(&env, STOP_SERVER).len());
        assert!(fake.servers.lock().unwrap().values().all(|s| !s.0));
    }
}
