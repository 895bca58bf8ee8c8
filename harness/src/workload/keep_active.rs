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
