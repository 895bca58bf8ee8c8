//! `flood-api`: the 2018 culler bug as a mutant. A client sends
//! `DELETE /hub/api/users/{name}/server` for servers that are not running, round after round.
//! JupyterHub 0.9 answered 400 and the culler never reached the user deletion that followed;
//! JupyterHub 6.1.1 answers 204, so the flood is recognised by what it asks, not by codes.
//!
//! It sends as `as_client` (normally `culler`), through that client's recorder listener, so
//! the culler's checks see exactly what a buggy culler would have sent.

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Fault, FaultGuard};
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct FloodApi {
    pub as_client: String,
    /// Seeded class whose (not running) servers are "stopped" again and again.
    pub class: String,
    pub per_second: f64,
    /// Hard bound on the number of requests, whatever the duration.
    pub max_requests: u64,
}

#[async_trait]
impl Fault for FloodApi {
    fn kind(&self) -> &'static str {
        "flood-api"
    }

    fn target(&self) -> String {
        "hub".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let users = env.recorder.history().seeded().classes.remove(&self.class).unwrap_or_default();
        anyhow::ensure!(!users.is_empty(), "flood-api: no seeded users of class {:?} to target", self.class);
        anyhow::ensure!(self.per_second > 0.0, "flood-api: per_second must be > 0");
        let api = env.hub_api(&self.as_client).await?;
        let stop = env.cancel.child_token();
        let period = Duration::from_secs_f64(1.0 / self.per_second);
        let max = self.max_requests;
        let task_stop = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            for (sent, user) in users.iter().cycle().enumerate() {
                if sent as u64 >= max {
                    break;
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = task_stop.cancelled() => break,
                }
                let api = api.clone();
                let user = user.clone();
                // Fire and forget, as the culler's concurrent requests were; the recorder
                // records the outcome.
                tokio::spawn(async move { api.stop_server(&user, "").await });
            }
        });
        Ok(FaultGuard::injected(
            self.kind(),
            "hub",
            format!("{:.0} stop requests/s as {} on class {}", self.per_second, self.as_client, self.class),
            &env.recorder,
            Box::new(move || {
                Box::pin(async move {
                    stop_flood(stop, task).await;
                    Ok(())
                })
            }),
        ))
    }
}

async fn stop_flood(stop: CancellationToken, task: tokio::task::JoinHandle<()>) {
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::observe::history::{Event, FaultPhase, SeededUsers};
    use crate::testkit::{env_with_fake_hub, FakeHub};

    const STOP_ROUTE: &str = "/hub/api/users/{name}/server";

    fn seed(env: &Env, class: &str, users: &[&str]) {
        let mut s = SeededUsers::default();
        s.classes.insert(class.into(), users.iter().map(|u| u.to_string()).collect());
        env.recorder.record(Event::Seeded(s));
    }

    fn flood(per_second: f64, max_requests: u64) -> FloodApi {
        FloodApi { as_client: "culler".into(), class: "stopped".into(), per_second, max_requests }
    }

    fn stops_seen(hub: &FakeHub) -> Vec<String> {
        hub.seen.lock().unwrap().iter().filter(|s| s.starts_with("DELETE ")).cloned().collect()
    }

    async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < within, "{what}: not within {within:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn it_sends_stops_as_its_client_at_its_rate_up_to_its_bound() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        seed(&env, "stopped", &["u1", "u2", "u3"]);
        let guard = flood(50.0, 12).inject(&env).await.unwrap();
        wait_for("12 requests recorded", Duration::from_secs(3), || {
            env.recorder.history().requests().filter(|(_, r)| r.method == "DELETE").count() >= 12
        })
        .await;
        // At 50/s, 20 more would come in 400 ms: the bound holds.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let h = env.recorder.history();
        let stops: Vec<_> = h.requests().filter(|(_, r)| r.method == "DELETE").collect();
        assert_eq!(stops.len(), 12, "{stops:?}");
        assert!(stops.iter().all(|(_, r)| r.client == "culler" && r.route == STOP_ROUTE && r.server.as_deref() == Some("")), "{stops:?}");
        // Round after round over the class's users.
        let mut users: Vec<&str> = stops.iter().filter_map(|(_, r)| r.user.as_deref()).collect();
        users.sort();
        assert_eq!(users, [["u1"; 4], ["u2"; 4], ["u3"; 4]].concat());
        // The rate: 12 requests at 50/s span at least 11 periods of 20 ms.
        let span = stops.last().unwrap().0 - stops[0].0;
        assert!(span >= Duration::from_millis(200), "{span:?}");
        assert_eq!(stops_seen(&hub).len(), 12);
        guard.heal().await.unwrap();
        let faults: Vec<_> = env.recorder.history().faults().map(|(_, f)| (f.kind.clone(), f.phase, f.detail.clone())).collect();
        assert_eq!(
            faults,
            [
                ("flood-api".into(), FaultPhase::Injected, "50 stop requests/s as culler on class stopped".into()),
                ("flood-api".into(), FaultPhase::Healed, String::new())
            ]
        );
    }

    #[tokio::test]
    async fn healing_stops_the_flood() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        seed(&env, "stopped", &["u1"]);
        let guard = flood(50.0, 10_000).inject(&env).await.unwrap();
        wait_for("the flood started", Duration::from_secs(3), || stops_seen(&hub).len() >= 5).await;
        guard.heal().await.unwrap();
        // What was in flight at the heal lands; then nothing more.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let at_heal = stops_seen(&hub).len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(stops_seen(&hub).len(), at_heal);
        assert!(at_heal < 40, "{at_heal} requests in well under a second at 50/s");
    }

    #[tokio::test]
    async fn the_end_of_the_run_stops_it_too() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        seed(&env, "stopped", &["u1"]);
        let _guard = flood(50.0, 10_000).inject(&env).await.unwrap();
        wait_for("the flood started", Duration::from_secs(3), || stops_seen(&hub).len() >= 3).await;
        env.cancel.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let at_cancel = stops_seen(&hub).len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(stops_seen(&hub).len(), at_cancel);
    }

    #[tokio::test]
    async fn without_targets_or_rate_it_refuses_to_start() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        let err = flood(50.0, 10).inject(&env).await.unwrap_err();
        assert!(format!("{err:#}").contains("no seeded users of class \"stopped\""), "{err:#}");
        seed(&env, "stopped", &["u1"]);
        let err = flood(0.0, 10).inject(&env).await.unwrap_err();
        assert!(format!("{err:#}").contains("per_second must be > 0"), "{err:#}");
        assert!(env.recorder.history().faults().next().is_none());
        assert!(stops_seen(&hub).is_empty());
    }
}
