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
