//! `reach-servers`: users opening their notebooks. Every period, each user of the given seeded
//! classes requests their server THROUGH the proxy (`/user/{name}/api`), and the op records
//! whether the single-user server itself answered (its version JSON), not the hub's
//! "server not running" page that the proxy's default route would serve.

use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::component::hub_api::name_segment;
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReachServers {
    pub classes: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub every: Duration,
}

#[async_trait]
impl Workload for ReachServers {
    fn name(&self) -> String {
        "reach-servers".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let mut seeded = env.recorder.history().seeded();
        let users: Vec<String> = self.classes.iter().flat_map(|c| seeded.classes.remove(c).unwrap_or_default()).collect();
        if users.is_empty() {
            bail!("reach-servers: no seeded users of classes {:?}", self.classes);
        }
        let hub = env.hub()?;
        // Short timeout: a paused or dead proxy must show as failed ops, not a stalled loop.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            for user in &users {
                let started = env.now();
                let url = format!("{}/user/{}/api", hub.public_url, name_segment(user));
                let result: anyhow::Result<()> = async {
                    let r = http.get(&url).header("Authorization", format!("token {}", hub.harness_token)).send().await?;
                    let status = r.status();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if status.as_u16() != 200 || body.get("version").is_none() {
                        bail!("GET /user/{user}/api through the proxy -> {status}, not the server's version");
                    }
                    Ok(())
                }
                .await;
                record_op(env, "reach-servers", "reach-server", Some(user), started, &result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::observe::history::{Event, OpRecord, OpResult, SeededUsers};
    use crate::testkit::env_with_fake_hub;

    fn ops(env: &Env) -> Vec<OpRecord> {
        env.recorder.history().ops().filter(|(_, o)| o.workload == "reach-servers").map(|(_, o)| o.clone()).collect()
    }

    #[tokio::test]
    async fn each_user_of_the_classes_is_reached_through_the_proxy_until_stopped() {
        let (env, hub, _backend, _dir) = env_with_fake_hub().await;
        let mut s = SeededUsers::default();
        s.classes.insert("running-idle".into(), vec!["idle".into()]);
        s.classes.insert("running-active".into(), vec!["active".into()]);
        s.classes.insert("never-started".into(), vec!["other".into()]);
        env.recorder.record(Event::Seeded(s));
        hub.servers.lock().unwrap().insert("active".into(), (true, 0));
        let w = ReachServers { classes: vec!["running-idle".into(), "running-active".into()], every: Duration::from_millis(100) };
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            s.cancel();
        });
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.run(&env, stop)).await.expect("stopped by its token").unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let ops = ops(&env);
        // Ticks at 0, 100 and 200 ms: three rounds of both users (two on a slow machine).
        assert!(ops.len() == 6 || ops.len() == 4, "{ops:?}");
        for o in &ops {
            assert_eq!(o.op, "reach-server");
            match o.user.as_deref() {
                Some("active") => assert_eq!(o.result, OpResult::Ok, "{o:?}"),
                // Not running: the proxy's answer is not the server's version.
                Some("idle") => {
                    assert_eq!(o.result, OpResult::Fail, "{o:?}");
                    assert_eq!(o.detail, "GET /user/idle/api through the proxy -> 302 Found, not the server's version");
                }
                other => panic!("only the named classes are reached: {other:?}"),
            }
        }
        let n = hub.seen.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(hub.seen.lock().unwrap().len(), n, "requests after the stop");
    }

    #[tokio::test]
    async fn without_seeded_users_it_says_so() {
        let (env, _hub, _backend, _dir) = env_with_fake_hub().await;
        let w = ReachServers { classes: vec!["running-idle".into()], every: Duration::from_millis(100) };
        let err = w.run(&env, CancellationToken::new()).await.unwrap_err();
        assert_eq!(format!("{err:#}"), "reach-servers: no seeded users of classes [\"running-idle\"]");
    }
}
