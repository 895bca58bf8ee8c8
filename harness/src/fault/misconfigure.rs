//! `misconfigure`: start a component with one environment variable overridden — the 2018
//! image cleaner that never started because its `DOCKER_HOST` lacked `unix://`.
//!
//! A configuration is fixed when the process starts, so this fault acts before the deploy:
//! [`Fault::before_deploy`] adds an [`EnvOverride`] to the [`DeployPlan`], and the deployer
//! applies the plan's overrides to the component's spec ([`apply_env_overrides`]) before it
//! starts it. `inject` only records the fault's window; there is nothing to heal (a config is
//! fixed by a new deploy, which is not what a run judges).
//!
//! The value can be a literal, or [`OverrideValue::StripScheme`]: the component's own value
//! with `scheme://` removed, which is exactly the 2018 mistake (`/var/run/docker.sock` where
//! `unix:///var/run/docker.sock` was meant) whatever path the run's socket has.

use async_trait::async_trait;

use super::{DeployPlan, Fault, FaultGuard};
use crate::backend::local::spec::ComponentSpec;
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

/// Apply every override meant for `spec`'s component; returns `KEY: before -> after` lines
/// (for the fault's detail and the deploy log).
pub fn apply_env_overrides(spec: &mut ComponentSpec, overrides: &[EnvOverride]) -> Vec<String> {
    let mut applied = Vec::new();
    for o in overrides.iter().filter(|o| o.component == spec.name) {
        let before = spec.command.env.get(&o.key).cloned();
        let after = match &o.value {
            OverrideValue::Set(v) => Some(v.clone()),
            OverrideValue::StripScheme => before.as_deref().map(strip_scheme),
            OverrideValue::Unset => None,
        };
        match &after {
            Some(v) => spec.command.env.insert(o.key.clone(), v.clone()),
            None => spec.command.env.remove(&o.key),
        };
        let shown_before = match before.as_deref() {
            None => "(unset)".to_string(),
            // The run's own credentials stay out of reports; what the fault sets is declared.
            Some(v) if is_secret(&o.key) => format!("(a secret of {} chars)", v.len()),
            Some(v) => v.to_string(),
        };
        applied.push(format!("{}: {shown_before} -> {}", o.key, after.as_deref().unwrap_or("(unset)")));
    }
    applied
}

/// Whether a variable holds a credential (its value is not written to reports).
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "KEY"].iter().any(|w| k.contains(w))
}

/// `unix:///run/x.sock` -> `/run/x.sock`; a value without a scheme is returned as is.
pub fn strip_scheme(v: &str) -> String {
    v.split_once("://").map_or(v, |(_, rest)| rest).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::command::CommandSpec;
    use crate::backend::local::spec::{Readiness, RestartPolicy};

    fn cleaner() -> ComponentSpec {
        ComponentSpec {
            name: "image-cleaner".into(),
            command: CommandSpec::new("docker-image-cleaner").env("DOCKER_HOST", "unix:///run/hubchaos/ab/cleaner.sock").env("KEEP", "1"),
            cwd: ".".into(),
            readiness: Readiness::Running,
            ready_within: std::time::Duration::from_secs(1),
            restart: RestartPolicy::Always,
        }
    }

    #[test]
    fn a_credential_it_replaces_stays_out_of_the_report() {
        let mut spec = cleaner();
        spec.command.env.insert("JUPYTERHUB_API_TOKEN".into(), "5039f813e0672445".into());
        let o = EnvOverride { component: spec.name.clone(), key: "JUPYTERHUB_API_TOKEN".into(), value: OverrideValue::Set("wrong".into()) };
        let applied = apply_env_overrides(&mut spec, &[o]);
        assert_eq!(applied, ["JUPYTERHUB_API_TOKEN: (a secret of 16 chars) -> wrong"]);
        assert_eq!(spec.command.env["JUPYTERHUB_API_TOKEN"], "wrong");
    }

    #[test]
    fn the_2018_docker_host_loses_only_its_scheme() {
        let mut plan = DeployPlan::default();
        Misconfigure::docker_host_without_scheme("image-cleaner").before_deploy(&mut plan).unwrap();
        Misconfigure::env("dockerd", "X", "1").before_deploy(&mut plan).unwrap();
        let mut spec = cleaner();
        let applied = apply_env_overrides(&mut spec, &plan.env_overrides);
        assert_eq!(spec.command.env["DOCKER_HOST"], "/run/hubchaos/ab/cleaner.sock");
        assert_eq!(spec.command.env["KEEP"], "1");
        assert!(!spec.command.env.contains_key("X"), "another component's override");
        assert_eq!(applied, ["DOCKER_HOST: unix:///run/hubchaos/ab/cleaner.sock -> /run/hubchaos/ab/cleaner.sock"]);
    }

    #[test]
    fn set_and_unset() {
        let mut spec = cleaner();
        let o = |key: &str, value| EnvOverride { component: "image-cleaner".into(), key: key.into(), value };
        apply_env_overrides(&mut spec, &[o("DOCKER_HOST", OverrideValue::Unset), o("NEW", OverrideValue::Set("v".into()))]);
        assert!(!spec.command.env.contains_key("DOCKER_HOST"));
        assert_eq!(spec.command.env["NEW"], "v");
        assert_eq!(strip_scheme("/already/bare"), "/already/bare");
        assert_eq!(Misconfigure::docker_host_without_scheme("c").kind(), "misconfigure");
    }
}
