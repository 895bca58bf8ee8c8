//! `github-api`: the GitHub API BinderHub resolves refs with goes down, runs out of rate limit,
//! or answers slowly; heal is the API back up. Acts on the run's stand-in
//! ([`crate::component::github_api`]), so a scenario must get its repos from "GitHub"
//! ([`crate::component::binderhub::RepoSource::GitHub`]).
//!
//! Why: mybinder.org resolves every `gh/` launch through the GitHub API; GitHub outages and an
//! exhausted rate limit are regular events. Repos already built should not need GitHub to launch.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::component::github_api::{ApiMode, GITHUB_API};
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct GitHubApiFault {
    pub mode: ApiMode,
}

impl GitHubApiFault {
    /// Every request answered 503.
    pub fn outage() -> Self {
        Self { mode: ApiMode::Down { status: 503 } }
    }

    /// Every request answered 403 with `x-ratelimit-remaining: 0`.
    pub fn rate_limited() -> Self {
        Self { mode: ApiMode::RateLimited }
    }

    /// Every answer `delay` late.
    pub fn slow(delay: Duration) -> Self {
        Self { mode: ApiMode::Slow { delay } }
    }

    fn detail(&self) -> String {
        match self.mode {
            ApiMode::Up => "up".into(),
            ApiMode::Down { status } => format!("every request answered {status}"),
            ApiMode::RateLimited => "rate limit spent: 403, x-ratelimit-remaining 0".into(),
            ApiMode::Slow { delay } => format!("every answer {:.1}s late", delay.as_secs_f64()),
        }
    }
}

#[async_trait]
impl Fault for GitHubApiFault {
    fn kind(&self) -> &'static str {
        "github-api"
    }

    fn target(&self) -> String {
        GITHUB_API.into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let api = env
            .binder()?
            .github_api
            .clone()
            .context("github-api: this scenario's BinderHub does not use the GitHub API stand-in (BinderOptions.source = GitHub)")?;
        api.set_mode(self.mode);
        Ok(FaultGuard::injected(
            self.kind(),
            GITHUB_API,
            self.detail(),
            &env.recorder,
            Box::new(move || {
                Box::pin(async move {
                    api.set_mode(ApiMode::Up);
                    Ok(())
                })
            }),
        ))
    }
}
