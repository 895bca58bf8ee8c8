//! `accumulate-users`: the state the 2018 flood grew from. Users pile up when the culler stops
//! servers but never deletes users: most have a stopped server and old activity, some never
//! started, a few still run idle servers, a few are in active use.
//!
//! Users without a running server are written into the hub's database before it starts (as
//! after a restart; the REST API is too slow for thousands). Running servers are real: the
//! fault starts them through the hub API. Their activity cannot be set into the past: the hub
//! stamps a server's activity when it starts and keeps only newer timestamps from the activity
//! API. So idle servers are started first and the fault waits until they have been idle for
//! `settle` (the culler's timeout plus a margin) before it is in place; meanwhile the users in
//! active use report activity every few seconds, as their servers would.
//!
//! Nothing to heal: the accumulated users are what the culler is judged on. Every user is
//! recorded by class (`Seeded`), so checks know who must go and who must stay.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::{DeployPlan, Fault, FaultGuard};
use crate::component::seed::SeedUser;
use crate::env::Env;
use crate::observe::history::{Event, SeededUsers};

pub const NEVER_STARTED: &str = "never-started";
pub const STOPPED: &str = "stopped";
pub const RUNNING_IDLE: &str = "running-idle";
pub const RUNNING_ACTIVE: &str = "running-active";
pub const ADMIN: &str = "admin";

/// Servers started at once while injecting (each is a real jupyterhub-singleuser process).
const START_CONCURRENCY: usize = 4;
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How often the users in active use report activity while the idle servers settle.
const ACTIVE_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, serde::Serialize)]
pub struct AccumulateUsers {
    /// User names are `<prefix>-<class>-<n>`.
    pub prefix: String,
    pub never_started: usize,
    /// Users whose server was stopped `idle_for` ago.
    pub stopped: usize,
    /// Users with a running default server, last active `idle_for` ago.
    pub running_idle: usize,
    /// Users with a running default server kept in use by a workload.
    pub running_active: usize,
    /// Admin users, idle like `stopped` ones (a culler told to spare admins must spare them).
    pub admins: usize,
    /// How long ago the idle users were last active.
    #[serde(with = "humantime_serde")]
    pub idle_for: Duration,
    /// Stopped named servers for each `stopped` user (needs `allow_named_servers`).
    pub stopped_named_per_user: usize,
    /// Of the `running-idle` users, how many also run an idle named server `idle-1`.
    pub running_idle_named: usize,
    /// Of the admins, how many left a default server running idle (a culler stops it and keeps them).
    pub admins_running_idle: usize,
    /// How long the idle servers must have been idle when the fault is in place.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
}

impl Default for AccumulateUsers {
    fn default() -> Self {
        Self {
            prefix: "acc".into(),
            never_started: 0,
            stopped: 0,
            running_idle: 0,
            running_active: 0,
            admins: 0,
            idle_for: Duration::from_secs(24 * 3600),
            stopped_named_per_user: 0,
            running_idle_named: 0,
            admins_running_idle: 0,
            settle: Duration::ZERO,
        }
    }
}

impl AccumulateUsers {
    fn names(&self, class: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{}-{class}-{i:05}", self.prefix)).collect()
    }

    fn named_for_stopped(&self) -> Vec<(String, Option<Duration>)> {
        (0..self.stopped_named_per_user).map(|i| (format!("stopped-{i}"), Some(self.idle_for))).collect()
    }

    /// Every user by class, as recorded in the history.
    pub fn classes(&self) -> SeededUsers {
        let mut classes = BTreeMap::new();
        classes.insert(NEVER_STARTED.to_string(), self.names(NEVER_STARTED, self.never_started));
        classes.insert(STOPPED.to_string(), self.names(STOPPED, self.stopped));
        classes.insert(RUNNING_IDLE.to_string(), self.names(RUNNING_IDLE, self.running_idle));
        classes.insert(RUNNING_ACTIVE.to_string(), self.names(RUNNING_ACTIVE, self.running_active));
        classes.insert(ADMIN.to_string(), self.names(ADMIN, self.admins));
        let mut named_servers = BTreeMap::new();
        for user in self.names(STOPPED, self.stopped) {
            if self.stopped_named_per_user > 0 {
                named_servers.insert(user, self.named_for_stopped().into_iter().map(|(n, _)| n).collect());
            }
        }
        for user in self.names(RUNNING_IDLE, self.running_idle).into_iter().take(self.running_idle_named) {
            named_servers.insert(user, vec!["idle-1".to_string()]);
        }
        SeededUsers { classes, named_servers }
    }

    pub fn total(&self) -> usize {
        self.never_started + self.stopped + self.running_idle + self.running_active + self.admins
    }
}

#[async_trait]
impl Fault for AccumulateUsers {
    fn kind(&self) -> &'static str {
        "accumulate-users"
    }

    fn target(&self) -> String {
        "hub".into()
    }

    fn before_deploy(&self, plan: &mut DeployPlan) -> anyhow::Result<()> {
        let seed = &mut plan.seed.users;
        seed.extend(self.names(NEVER_STARTED, self.never_started).into_iter().map(|name| SeedUser {
            name,
            idle_for: None,
            admin: false,
            named_servers: vec![],
        }));
        seed.extend(self.names(STOPPED, self.stopped).into_iter().map(|name| SeedUser {
            name,
            idle_for: Some(self.idle_for),
            admin: false,
            named_servers: self.named_for_stopped(),
        }));
        seed.extend(self.names(ADMIN, self.admins).into_iter().map(|name| SeedUser {
            name,
            idle_for: Some(self.idle_for),
            admin: true,
            named_servers: vec![],
        }));
        Ok(())
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let classes = self.classes();
        env.recorder.record(Event::Seeded(classes.clone()));
        let api = env.hub_api("fault").await?;
        let idle = self.names(RUNNING_IDLE, self.running_idle);
        let active = self.names(RUNNING_ACTIVE, self.running_active);
        let running: Vec<String> = idle.iter().chain(active.iter()).cloned().collect();
        if !running.is_empty() {
            api.create_users(&running).await?;
        }
        // Idle servers first, so they are the oldest; then the active ones.
        let mut idle_servers: Vec<(String, String)> = idle.iter().map(|u| (u.clone(), String::new())).collect();
        idle_servers.extend(idle.iter().take(self.running_idle_named).map(|u| (u.clone(), "idle-1".to_string())));
        idle_servers.extend(self.names(ADMIN, self.admins.min(self.admins_running_idle)).into_iter().map(|u| (u, String::new())));
        let active_servers: Vec<(String, String)> = active.iter().map(|u| (u.clone(), String::new())).collect();
        // A run interrupted during the setup stops waiting for spawns at once.
        tokio::select! {
            r = start_all(&api, &idle_servers) => r?,
            _ = env.cancel.cancelled() => anyhow::bail!("cancelled while starting idle servers"),
        }
        let idle_since = tokio::time::Instant::now();
        tokio::select! {
            r = start_all(&api, &active_servers) => r?,
            _ = env.cancel.cancelled() => anyhow::bail!("cancelled while starting active servers"),
        }
        if !idle_servers.is_empty() {
            // The users in active use stay active while the idle ones settle (an activity
            // report every ACTIVE_EVERY, as their servers would send), so the culler that
            // arrives next finds them recently active however long its arrival takes.
            let deadline = idle_since + self.settle;
            loop {
                for user in &active {
                    api.post_activity(user, &[""], std::time::SystemTime::now()).await.with_context(|| format!("keeping {user} active"))?;
                }
                let next = (tokio::time::Instant::now() + ACTIVE_EVERY).min(deadline);
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = env.cancel.cancelled() => anyhow::bail!("cancelled while idle servers settle"),
                }
                if next >= deadline {
                    break;
                }
            }
            for user in &active {
                api.post_activity(user, &[""], std::time::SystemTime::now()).await.with_context(|| format!("keeping {user} active"))?;
            }
        }
        Ok(FaultGuard::nothing_to_heal(
            self.kind(),
            "hub",
            format!(
                "{} users: {} never started, {} stopped, {} running idle, {} running active, {} admins",
                self.total(),
                self.never_started,
                self.stopped,
                self.running_idle,
                self.running_active,
                self.admins
            ),
            &env.recorder,
        ))
    }
}

/// Start servers (a few at a time: each is a real jupyterhub-singleuser process) and wait
/// until each is ready.
async fn start_all(api: &crate::component::hub_api::HubApi, servers: &[(String, String)]) -> anyhow::Result<()> {
    futures::stream::iter(servers.iter().cloned())
        .map(|(user, server)| {
            let api = api.clone();
            async move {
                api.start_server(&user, &server).await.with_context(|| format!("starting {user}/{server}"))?;
                api.wait_ready(&user, &server, READY_WITHIN).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(START_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_users_are_the_ones_without_running_servers() {
        let acc = AccumulateUsers {
            never_started: 2,
            stopped: 3,
            running_idle: 1,
            running_active: 1,
            admins: 1,
            stopped_named_per_user: 2,
            ..Default::default()
        };
        let mut plan = DeployPlan::default();
        acc.before_deploy(&mut plan).unwrap();
        assert_eq!(plan.seed.users.len(), 6);
        assert!(plan.seed.users.iter().all(|u| !u.name.contains("running")));
        assert_eq!(plan.seed.users.iter().filter(|u| u.admin).count(), 1);
        assert_eq!(plan.seed.users.iter().map(|u| u.named_servers.len()).sum::<usize>(), 6);
        let classes = acc.classes();
        assert_eq!(classes.classes[RUNNING_ACTIVE], vec!["acc-running-active-00000".to_string()]);
        assert_eq!(classes.named_servers.len(), 3);
    }
}
