//! `misconfigure`: start a component with one environment variable overridden — the 2018
//! image cleaner that never started because its `DOCKER_HOST` lacked `unix://`.
//!
//! A configuration is fixed when the process starts, so this fault acts before the deploy:
//! [`Fault::before_deploy`] adds an [`EnvOverride`] to the [`DeployPlan`], and the deployer
//! applies the plan's overrides to the component's recipe before it
//! starts it. `inject` only records the fault's window; there is nothing to heal (a config is
//! fixed by a new deploy, which is not what a run judges).
//!
//! The value can be a literal, or [`OverrideValue::StripScheme`]: the component's own value
//! with `scheme://` removed, which is exactly the 2018 mistake (`/var/run/docker.sock` where
//! `unix:///var/run/docker.sock` was meant) whatever path the run's socket has.

use async_trait::async_trait;

use super::{DeployPlan, Fault, FaultGuard};
use crate::env::Env;

/// What the overridden variable becomes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideValue {
    Set(String),
    /// The component's own value without its `scheme://` prefix.
    StripScheme,
    /// The variable is removed.
    Unset,
}

/// One override of one component's environment, applied at deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvOverride {
    pub component: String,
    pub key: String,
    pub value: OverrideValue,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Misconfigure(pub EnvOverride);

impl Misconfigure {
    /// `KEY=value` for `component`.
    pub fn env(component: &str, key: &str, value: &str) -> Self {
        Self(EnvOverride { component: component.into(), key: key.into(), value: OverrideValue::Set(value.into()) })
    }

    /// The 2018 mistake: `DOCKER_HOST` of `component` without `unix://`.
    pub fn docker_host_without_scheme(component: &str) -> Self {
        Self(EnvOverride { component: component.into(), key: "DOCKER_HOST".into(), value: OverrideValue::StripScheme })
    }
}

#[async_trait]
impl Fault for Misconfigure {
    fn kind(&self) -> &'static str {
        "misconfigure"
    }

    fn target(&self) -> String {
        self.0.component.clone()
    }

    fn before_deploy(&self, plan: &mut DeployPlan) -> anyhow::Result<()> {
        anyhow::ensure!(!self.0.key.is_empty(), "misconfigure needs a variable name");
        plan.env_overrides.push(self.0.clone());
        Ok(())
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let what = match &self.0.value {
            OverrideValue::Set(v) => format!("{}={v}", self.0.key),
            OverrideValue::StripScheme => format!("{} without its scheme (unix://)", self.0.key),
            OverrideValue::Unset => format!("{} unset", self.0.key),
        };
        Ok(FaultGuard::nothing_to_heal(self.kind(), &self.0.component, format!("started with {what}"), &env.recorder))
    }
}
