//! The one place where what a run changes about a component is applied to its recipe: the
//! profile's override of that component (command, args, env; `--profile`), then the deploy
//! plan's environment overrides (the `misconfigure` fault). Every component the local backend
//! starts goes through [`apply`], so a fault aimed at any of them takes effect, and what was
//! applied is recorded as an `overrides` phase in the history.

use super::spec::ComponentSpec;
use crate::fault::misconfigure::apply_env_overrides;
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

/// [`apply`], recording what changed as an `overrides` phase (`<component>: <changes>`).
pub fn apply_recorded(spec: &mut ComponentSpec, profile: Option<&Profile>, plan: &DeployPlan, recorder: &Recorder) {
    let applied = apply(spec, profile, plan);
    if !applied.is_empty() {
        recorder.phase("overrides", format!("{}: {}", spec.name, applied.join("; ")));
    }
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
