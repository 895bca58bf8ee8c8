//! `keep-active`: users who are really working. Every period each user of a seeded class
//! reaches their server through the proxy and reports activity to the hub, as the
//! single-user server's activity reporting would. A culler must never stop these servers.

use std::time::{Duration, SystemTime};

use anyhow::bail;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::component::hub_api::name_segment;
use crate::env::Env;

pub const CLIENT: &str = "workload";

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeepActive {
    /// Seeded class of the users kept active (`running-active`).
    pub class: String,
    #[serde(with = "humantime_serde")]
    pub every: Duration,
}

#[async_trait]
impl Workload for KeepActive {
    fn name(&self) -> String {
        "keep-active".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let users = env.recorder.history().seeded().classes.remove(&self.class).unwrap_or_default();
        if users.is_empty() {
            bail!("keep-active: no seeded users of class {:?}", self.class);
        }
        let api = env.hub_api(CLIENT).await?;
        let hub = env.hub()?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            // All users at once, activity first: one slow request must not leave another
            // user looking idle.
            futures::future::join_all(users.iter().map(|user| {
                let (api, http) = (api.clone(), http.clone());
                async move {
                    let started = env.now();
                    let posted = api.post_activity(user, &[""], SystemTime::now()).await;
                    record_op(env, "keep-active", "post-activity", Some(user), started, &posted);
                    let started = env.now();
                    let url = format!("{}/user/{}/api/status", hub.public_url, name_segment(user));
                    let reached: anyhow::Result<()> = async {
                        let r = http.get(&url).header("Authorization", format!("token {}", hub.harness_token)).send().await?;
                        if r.status().as_u16() != 200 {
                            bail!("GET /user/{user}/api/status through the proxy -> {}", r.status());
                        }
                        Ok(())
                    }
                    .await;
                    record_op(env, "keep-active", "reach-server", Some(user), started, &reached);
                }
            }))
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::observe::history::{Event, OpRecord, OpResult, SeededUsers};
    use crate::testkit::{env_with_fake_hub, FakeHub};

    fn seed(env: &Env, hub: &FakeHub, class: &str, users: &[&str], running: &[&str]) {
        let mut s = SeededUsers::default();
        s.classes.insert(class.into(), users.iter().map(|u| u.to_string()).collect());
        env.recorder.record(Event::Seeded(s));
        hub.servers.lock().unwrap().extend(running.iter().map(|u| (u.to_string(), (true, 0))));
    }

    fn ops(env: &Env, op: &str) -> Vec<OpRecord> {
        env.recorder.history().ops().filter(|(_, o)| o.workload == "keep-active" && o.op == op).map(|(_, o)| o.clone()).collect()
    }

    #[tokio::test]
    async fn each_user_posts_activity_and_reaches_its_server_every_period_until_stopped() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        seed(&env, &hub, "running-active", &["a", "b"], &["a"]);
        let w = KeepActive { class: "running-active".into(), every: Duration::from_millis(100) };
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            s.cancel();
        });
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.run(&env, stop)).await.expect("stopped by its token").unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let posted = ops(&env, "post-activity");
        let reached = ops(&env, "reach-server");
        // Ticks at 0, 100 and 200 ms: three rounds of both users (two on a slow machine).
        let rounds = posted.len() / 2;
        assert!(posted.len().is_multiple_of(2) && (2..=3).contains(&rounds), "{posted:?}");
        assert!(posted.iter().all(|o| o.result == OpResult::Ok));
        assert_eq!(reached.len(), posted.len(), "{reached:?}");
        for o in &reached {
            match o.user.as_deref() {
                Some("a") => assert_eq!(o.result, OpResult::Ok, "{o:?}"),
                Some("b") => {
                    assert_eq!(o.result, OpResult::Fail, "{o:?}");
                    assert_eq!(o.detail, "GET /user/b/api/status through the proxy -> 302 Found");
                }
                other => panic!("{other:?}"),
            }
        }
        let h = env.recorder.history();
        let activity = h.requests().filter(|(_, r)| r.client == CLIENT && r.method == "POST" && r.route.ends_with("/activity")).count();
        assert_eq!(activity, posted.len());
        assert_eq!(hub.seen.lock().unwrap().iter().filter(|s| *s == "GET /user/a/api/status").count(), rounds);
    }

    #[tokio::test]
    async fn without_seeded_users_it_says_so() {
        let (env, _hub, _backend, _dir) = env_with_fake_hub().await;
        let w = KeepActive { class: "running-active".into(), every: Duration::from_millis(100) };
        let err = w.run(&env, CancellationToken::new()).await.unwrap_err();
        assert_eq!(format!("{err:#}"), "keep-active: no seeded users of class \"running-active\"");
    }
}
