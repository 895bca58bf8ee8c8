//! The one place where what a run changes about a component is applied to its recipe: the
//! profile's override of that component (command, args, env; `--profile`), then the deploy
//! plan's environment overrides (the `misconfigure` fault); for the hub also the extra
//! configuration of the plan (a fault's spawn hook) and of the profile ([`hub_extra_config`]).
//! Every component the local backend starts goes through [`apply`], so a fault aimed at any of
//! them takes effect, and what was applied is recorded as an `overrides` phase in the history.

use super::command::is_secret;
use super::spec::ComponentSpec;
use crate::fault::misconfigure::{EnvOverride, OverrideValue};
use crate::fault::DeployPlan;
use crate::observe::history::Recorder;
use crate::profile::{ComponentName, Profile};

/// Apply the profile's override of `spec`'s component and `plan`'s environment overrides
/// for it; returns what changed (`KEY: before -> after` lines, and `profile` when the profile
/// changed its command). A component name the profile does not know gets the plan only.
pub fn apply(spec: &mut ComponentSpec, profile: Option<&Profile>, plan: &DeployPlan) -> Vec<String> {
    let mut applied = Vec::new();
    if let (Some(p), Ok(name)) = (profile, spec.name.parse::<ComponentName>()) {
        if p.component(name).is_some_and(|o| !o.is_noop()) {
            let before = spec.command.clone();
            p.apply(name, &mut spec.command);
            if spec.command != before {
                applied.push(format!("profile: {}", spec.command));
            }
        }
    }
    applied.extend(apply_env_overrides(spec, &plan.env_overrides));
    applied
}

/// The hub's extra configuration: the scenario's, then the plan's (a fault's spawn hook), then
/// the profile's (`hub.extra_config`), each exec'd after the one before; recorded as an
/// `overrides` phase when the plan or the profile added to it.
pub fn hub_extra_config(declared: &str, plan: &DeployPlan, profile: Option<&Profile>, recorder: &Recorder) -> String {
    let mut config = declared.to_string();
    let mut applied = Vec::new();
    for (from, extra) in
        [("deploy plan", plan.hub_extra_config.as_str()), ("profile", profile.and_then(|p| p.hub.extra_config.as_deref()).unwrap_or(""))]
    {
        if !extra.is_empty() {
            config.push('\n');
            config.push_str(extra);
            applied.push(format!("extra_config from the {from} ({} lines)", extra.lines().count()));
        }
    }
    if !applied.is_empty() {
        recorder.phase("overrides", format!("hub: {}", applied.join("; ")));
    }
    config
}

/// [`apply`], recording what changed as an `overrides` phase (`<component>: <changes>`).
pub fn apply_recorded(spec: &mut ComponentSpec, profile: Option<&Profile>, plan: &DeployPlan, recorder: &Recorder) {
    let applied = apply(spec, profile, plan);
    if !applied.is_empty() {
        recorder.phase("overrides", format!("{}: {}", spec.name, applied.join("; ")));
    }
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

/// `unix:///run/x.sock` -> `/run/x.sock`; a value without a scheme is returned as is.
pub fn strip_scheme(v: &str) -> String {
    v.split_once("://").map_or(v, |(_, rest)| rest).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::local::command::CommandSpec;
    use crate::backend::local::spec::{Readiness, RestartPolicy};
    use crate::fault::misconfigure::{EnvOverride, OverrideValue};

    fn spec(name: &str) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            command: CommandSpec::new("/bin/prog").arg("--a=1").env("K", "v"),
            cwd: ".".into(),
            readiness: Readiness::Running,
            ready_within: Duration::from_secs(1),
            restart: RestartPolicy::Always,
        }
    }

    fn plan_for(component: &str) -> DeployPlan {
        DeployPlan {
            env_overrides: vec![EnvOverride { component: component.into(), key: "K".into(), value: OverrideValue::Set("bad".into()) }],
            ..DeployPlan::default()
        }
    }

    /// The defect this module exists for: an override aimed at the hub, the proxy or the
    /// culler was dropped while only the node's components applied the plan.
    #[test]
    fn plan_overrides_reach_every_component() {
        for name in ["hub", "proxy", "culler", "dockerd", "image-cleaner"] {
            let mut s = spec(name);
            let applied = apply(&mut s, None, &plan_for(name));
            assert_eq!(s.command.env["K"], "bad", "{name}");
            assert_eq!(applied, vec!["K: v -> bad".to_string()], "{name}");
        }
    }

    #[test]
    fn overrides_for_another_component_change_nothing() {
        let mut s = spec("hub");
        assert!(apply(&mut s, None, &plan_for("culler")).is_empty());
        assert_eq!(s.command.env["K"], "v");
    }

    #[test]
    fn the_hub_config_takes_the_plan_then_the_profile_and_says_so() {
        let rec = Recorder::in_memory(std::time::Instant::now());
        let plan = DeployPlan { hub_extra_config: "c.A = 1".into(), ..DeployPlan::default() };
        let profile = Profile::parse(std::path::Path::new("p.yaml"), "hub:\n  extra_config: |\n    c.B = 2\n").unwrap();
        let config = hub_extra_config("c.Z = 0", &plan, Some(&profile), &rec);
        assert_eq!(config, "c.Z = 0\nc.A = 1\nc.B = 2\n");
        let phase = rec.history().entries.iter().find_map(|e| match &e.event {
            crate::observe::history::Event::Phase(p) if p.name == "overrides" => Some(p.detail.clone()),
            _ => None,
        });
        assert_eq!(phase.as_deref(), Some("hub: extra_config from the deploy plan (1 lines); extra_config from the profile (1 lines)"));
        let quiet = Recorder::in_memory(std::time::Instant::now());
        assert_eq!(hub_extra_config("c.Z = 0", &DeployPlan::default(), None, &quiet), "c.Z = 0");
        assert!(quiet.history().entries.is_empty(), "nothing added, nothing recorded");
    }

    #[test]
    fn profile_then_plan() {
        let profile =
            Profile::parse(std::path::Path::new("p.yaml"), "components:\n  culler:\n    args: [\"--b=2\"]\n    env: { K: from-profile }\n")
                .unwrap();
        let mut s = spec("culler");
        let applied = apply(&mut s, Some(&profile), &plan_for("culler"));
        assert!(s.command.args.contains(&"--b=2".to_string()));
        // The fault is applied after the profile: it wins.
        assert_eq!(s.command.env["K"], "bad");
        assert_eq!(applied.len(), 2, "{applied:?}");
        assert!(applied[0].starts_with("profile: "), "{applied:?}");
        assert_eq!(applied[1], "K: from-profile -> bad");
    }
}

#[cfg(test)]
mod env_override_tests {
    use super::*;
    use crate::backend::local::command::CommandSpec;
    use crate::backend::local::spec::{Readiness, RestartPolicy};
    use crate::fault::{Fault, Misconfigure};

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
