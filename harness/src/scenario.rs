//! A scenario is a pure declaration, written to read like the incident report: what is
//! deployed, what must hold before and after, what drives the system, which faults fire when,
//! how long it runs, and which checks judge the history. The runner does the rest.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::check::Check;
use crate::component::culler::CullerOptions;
use crate::component::hub::HubOptions;
use crate::fault::Scheduled;
use crate::probe::Probe;
use crate::profile::Profile;
use crate::workload::Workload;

/// The typed fields of a declared part (fault, workload, check, probe, option struct) as JSON,
/// for `scenario.json`. It is implemented for every `Serialize` type and is a supertrait of
/// [`Fault`](crate::fault::Fault), [`Workload`], [`Check`] and [`Probe`], so a new one that
/// does not derive `Serialize` does not compile, and the declaration on disk is always its
/// fields, never a Debug rendering. Durations are written as humantime strings (`"1m 30s"`,
/// each field `#[serde(with = "humantime_serde")]`), enums in kebab-case.
pub trait Declaration {
    fn declaration(&self) -> Value;
}

impl<T: Serialize> Declaration for T {
    fn declaration(&self) -> Value {
        // Only a map with non-string keys or a failing hand-written impl can fail; say so in
        // the file rather than losing the rest of the declaration.
        serde_json::to_value(self).unwrap_or_else(|e| json!({ "unserialisable": e.to_string() }))
    }
}

/// What a scenario needs from the machine; a missing need skips it with the reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Loop mounts, foreign process groups.
    pub root: bool,
    /// A harness-owned dockerd.
    pub docker: bool,
    /// A user-provided BinderHub (`HUBCHAOS_BINDERHUB`).
    pub binderhub: bool,
    /// The harness's kind cluster: the scenario runs on the kind backend (`kind::…`).
    pub cluster: bool,
}

/// What the local backend deploys: the proxy and the hub (if `hub`), the culler (after the
/// setup), a node (disk, dockerd, image cleaner).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deployment {
    pub hub: Option<HubOptions>,
    pub culler: Option<CullerOptions>,
    pub node: Option<crate::component::node::NodeOptions>,
    /// BinderHub building the sample repos on the node's dockerd (needs `node`).
    pub binder: Option<crate::component::binderhub::BinderOptions>,
}

impl Deployment {
    /// The hub with these options (and the proxy in front of it).
    pub fn hub(options: HubOptions) -> Self {
        Self { hub: Some(options), ..Self::default() }
    }

    /// A node only: disk, dockerd, image cleaner; no hub.
    pub fn node(options: crate::component::node::NodeOptions) -> Self {
        Self { node: Some(options), ..Self::default() }
    }

    /// The hub's options, for scenarios that adjust a hub they declared.
    pub fn hub_mut(&mut self) -> &mut HubOptions {
        self.hub.as_mut().expect("this scenario declares no hub: set `deploy.hub` first")
    }
}

/// Probes before the run (fail => Aborted: the environment was not healthy) and after it
/// within the recovery window (fail => Deviated: the system did not come back).
#[derive(Debug, Default)]
pub struct SteadyState {
    pub before: Vec<Box<dyn Probe>>,
    pub after: Vec<Box<dyn Probe>>,
    pub recovery: Duration,
}

/// What the test expects of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// Every check passes.
    Pass,
    /// Exactly these checks fail (no more, no fewer). Used for negative controls (a mutant
    /// must break exactly what it targets) and for documented upstream bugs. When the run
    /// passes instead, the test fails with "unexpectedly passed — remove the expectation".
    FailOn { checks: Vec<String>, reason: String },
}

impl Expectation {
    pub fn fail_on(checks: &[&str], reason: &str) -> Self {
        Expectation::FailOn { checks: checks.iter().map(|c| c.to_string()).collect(), reason: reason.into() }
    }
}

/// The one number a scenario is known by in the `make test-chaos` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFigure {
    pub check: String,
    pub figure: String,
    /// How to print it, e.g. "s", "req/s".
    pub unit: String,
}

#[derive(Debug)]
pub struct Scenario {
    /// e.g. `culler`; with the backend and name it makes the test name `local::culler::flood_replay`.
    pub area: &'static str,
    pub name: &'static str,
    /// What happened in production and what this replays (shown in the report).
    pub incident: &'static str,
    pub needs: Needs,
    pub deploy: Deployment,
    pub steady_state: SteadyState,
    pub workloads: Vec<Box<dyn Workload>>,
    pub faults: Vec<Scheduled>,
    /// Length of the workload window.
    pub duration: Duration,
    pub checks: Vec<Box<dyn Check>>,
    pub expect: Expectation,
    pub key_figure: Option<KeyFigure>,
    /// Heavy scenarios run one at a time (the machine has 2 cores).
    pub heavy: bool,
    /// Left out of `make test` (listed as ignored) to keep it within its 30 minutes: long
    /// scenarios (many minutes), and the kind controls beyond the first (3 minutes
    /// together). `make test-chaos` runs them: it includes ignored trials.
    pub long: bool,
    /// Keep sampling this long after the window closes (for "returns to baseline" checks).
    pub sample_after: Duration,
}

impl Scenario {
    pub fn new(area: &'static str, name: &'static str, incident: &'static str) -> Self {
        Self {
            area,
            name,
            incident,
            needs: Needs::default(),
            deploy: Deployment::default(),
            steady_state: SteadyState::default(),
            workloads: Vec::new(),
            faults: Vec::new(),
            duration: Duration::from_secs(30),
            checks: Vec::new(),
            expect: Expectation::Pass,
            key_figure: None,
            heavy: true,
            long: false,
            sample_after: Duration::ZERO,
        }
    }

    /// `<backend>::<area>::<name>`.
    pub fn test_name(&self, backend: &str) -> String {
        format!("{backend}::{}::{}", self.area, self.name)
    }

    pub fn key_figure(mut self, check: &str, figure: &str, unit: &str) -> Self {
        self.key_figure = Some(KeyFigure { check: check.into(), figure: figure.into(), unit: unit.into() });
        self
    }

    /// The declaration as JSON for `scenario.json`: every part with its typed fields (see
    /// [`Declaration`]); faults with their kind, target and schedule, workloads and checks
    /// with their names, probes with what they assert.
    pub fn describe(&self) -> Value {
        json!({
            "area": self.area,
            "name": self.name,
            "incident": self.incident,
            "needs": self.needs,
            "deploy": self.deploy.declaration(),
            "steady_state": {
                "before": self.steady_state.before.iter().map(|p| probe_json(p.as_ref())).collect::<Vec<_>>(),
                "after": self.steady_state.after.iter().map(|p| probe_json(p.as_ref())).collect::<Vec<_>>(),
                "recovery": humantime::format_duration(self.steady_state.recovery).to_string(),
            },
            "workloads": self.workloads.iter().map(|w| json!({ "name": w.name(), "fields": w.declaration() })).collect::<Vec<_>>(),
            "faults": self.faults.iter().map(|f| json!({
                "kind": f.fault.kind(),
                "target": f.fault.target(),
                "fields": f.fault.declaration(),
                "schedule": f.schedule.declaration(),
            })).collect::<Vec<_>>(),
            "duration": humantime::format_duration(self.duration).to_string(),
            "sample_after": humantime::format_duration(self.sample_after).to_string(),
            "checks": self.checks.iter().map(|c| json!({ "name": c.name(), "fields": c.declaration() })).collect::<Vec<_>>(),
            "expect": self.expect,
            "key_figure": self.key_figure,
            "heavy": self.heavy,
            "long": self.long,
        })
    }

    /// [`describe`](Self::describe) plus the run's profile (its file, component versions and
    /// pins, see [`Profile::describe`]; `null` without one): what `scenario.json` holds, so the
    /// file says what ran, not only what was declared.
    pub fn describe_with_profile(&self, profile: Option<&Profile>) -> Value {
        let mut v = self.describe();
        v["profile"] = profile.map_or(Value::Null, Profile::describe);
        v
    }
}

/// A probe as JSON: what it asserts and its fields.
pub fn probe_json(probe: &dyn Probe) -> Value {
    json!({ "probe": probe.describe(), "fields": probe.declaration() })
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use serde_json::Value;

    /// A hub scenario in the shape of the catalogue's: accumulated users, the proxy killed, a
    /// repeating pause, checks with typed limits, composed probes.
    fn hub_scenario() -> Scenario {
        let mut s = Scenario::new("hub", "described", "The proxy is SIGKILLed mid-run.");
        s.deploy = Deployment {
            culler: Some(CullerOptions { cull_every: Duration::from_secs(300), ..CullerOptions::default() }),
            ..Deployment::hub(HubOptions { last_activity_interval: Duration::from_secs(5), ..HubOptions::default() })
        };
        s.faults = vec![
            Scheduled::new(AccumulateUsers { running_active: 3, ..Default::default() }, Schedule::throughout()),
            Scheduled::new(KillProcess::of("proxy"), Schedule::at(Duration::from_secs(10))),
            Scheduled::new(
                PauseProcess::of("hub"),
                Schedule::at(Duration::from_secs(5)).every(Duration::from_secs(10), 3).held_for(Duration::from_millis(1500)),
            ),
        ];
        s.workloads = vec![Box::new(ReachServers { classes: vec![RUNNING_ACTIVE.into()], every: Duration::from_millis(500) })];
        s.steady_state = SteadyState {
            before: vec![Box::new(HubAnswers)],
            after: vec![Box::new(ServersReachable { at_least: 3 }), Box::new(UserCountAtMost { max: 5 })],
            recovery: Duration::from_secs(30),
        };
        s.checks = vec![
            Box::new(RateCeiling::new(Duration::from_secs(60), 20.0).client("culler").label("culler")),
            Box::new(Recovery::new("kill-process", "proxy", "reach-server", Duration::from_secs(13))),
            Box::new(Restarts::between("proxy", 1, 1)),
            Box::new(ErrorResponses::new("culler", ErrorClass::Client4xx, 0)),
            Box::new(LatencyCeiling::new(Duration::from_millis(500)).client("hub-latency")),
        ];
        s.key_figure("recovery", "time_to_recover_s", "s")
    }

    /// A node scenario: disk, images, the cleaner, a disk fill and a misconfiguration.
    fn node_scenario() -> Scenario {
        let mut s = Scenario::new("cleaner", "described", "Images fill the node disk.");
        s.deploy = Deployment::node(
            NodeOptions::disk_mb(300)
                .inodes(20_000)
                .image_in_use(ImageSpec::sized("in-use", 5 << 20, 1))
                .cleaner(CleanerOptions::quick().threshold(80.0)),
        );
        s.faults = vec![
            Scheduled::new(FillDisk::inodes(90.0), Schedule::at(Duration::from_secs(5))),
            Scheduled::new(Misconfigure::docker_host_without_scheme("image-cleaner"), Schedule::throughout()),
        ];
        s.checks = vec![Box::new(DiskBelow::new(80.0, Duration::from_secs(20))), Box::new(ImagesSpared)];
        s
    }

    /// Every string in the JSON, and whether any object is serde's raw `{secs, nanos}` form
    /// of a Duration (a field that missed `#[serde(with = "humantime_serde")]`).
    fn walk(v: &Value, strings: &mut Vec<String>, raw_durations: &mut Vec<String>) {
        match v {
            Value::String(s) => strings.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, strings, raw_durations)),
            Value::Object(o) => {
                if o.contains_key("secs") && o.contains_key("nanos") {
                    raw_durations.push(v.to_string());
                }
                o.values().for_each(|x| walk(x, strings, raw_durations));
            }
            _ => {}
        }
    }

    fn assert_no_debug_artefacts(v: &Value) {
        let (mut strings, mut raw) = (Vec::new(), Vec::new());
        walk(v, &mut strings, &mut raw);
        assert!(raw.is_empty(), "durations not as humantime strings: {raw:?}");
        for s in strings {
            assert!(!s.contains("Some(") && !s.contains(" { ") && !s.contains("secs:"), "a Debug rendering in scenario.json: {s}");
        }
        let text = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), v, "does not round-trip");
    }

    #[test]
    fn faults_have_kind_target_typed_fields_and_schedule() {
        let d = hub_scenario().describe();
        let kill = &d["faults"][1];
        assert_eq!(kill["kind"], "kill-process");
        assert_eq!(kill["target"], "proxy");
        assert_eq!(kill["fields"], serde_json::json!({ "component": "proxy" }));
        assert_eq!(kill["schedule"]["at"], "10s");
        assert_eq!(kill["schedule"]["every"], Value::Null);
        assert_eq!(kill["schedule"]["times"], 1);
        let pause = &d["faults"][2]["schedule"];
        assert_eq!(
            (&pause["at"], &pause["every"], &pause["times"], &pause["hold"]),
            (&"5s".into(), &"10s".into(), &3.into(), &"1s 500ms".into())
        );
        let users = &d["faults"][0];
        assert_eq!(users["kind"], "accumulate-users");
        assert_eq!(users["fields"]["running_active"], 3);
        assert!(users["fields"]["idle_for"].is_string(), "{users}");
        assert_no_debug_artefacts(&d);
    }

    #[test]
    fn checks_have_names_and_typed_parameters() {
        let d = hub_scenario().describe();
        let rate = &d["checks"][0];
        assert_eq!(rate["name"], "rate-ceiling:culler");
        assert_eq!(rate["fields"]["max_per_second"], 20.0);
        assert_eq!(rate["fields"]["window"], "1m");
        assert_eq!(rate["fields"]["client"], "culler");
        assert_eq!(rate["fields"]["route"], Value::Null);
        assert_eq!(d["checks"][1]["fields"]["within"], "13s");
        assert_eq!(d["checks"][2]["fields"], serde_json::json!({ "component": "proxy", "at_least": 1, "at_most": 1 }));
        assert_eq!(d["checks"][3]["fields"]["class"], "client4xx");
        assert_eq!(d["checks"][4]["fields"]["max"], "500ms");
    }

    #[test]
    fn deployment_workloads_and_probes_are_typed() {
        let d = hub_scenario().describe();
        assert_eq!(d["deploy"]["hub"]["last_activity_interval"], "5s");
        assert_eq!(d["deploy"]["culler"]["cull_every"], "5m");
        assert_eq!(d["deploy"]["node"], Value::Null);
        assert_eq!(
            d["workloads"][0],
            serde_json::json!({ "name": "reach-servers", "fields": { "classes": ["running-active"], "every": "500ms" } })
        );
        assert_eq!(d["steady_state"]["recovery"], "30s");
        assert_eq!(d["steady_state"]["before"][0], serde_json::json!({ "probe": "the hub API answers", "fields": null }));
        let after = &d["steady_state"]["after"];
        assert_eq!(after[0]["fields"], serde_json::json!({ "at_least": 3 }));
        assert_eq!(after[1]["fields"], serde_json::json!({ "max": 5 }));
        assert_eq!(d["duration"], "30s");
        assert_eq!(d["key_figure"]["check"], "recovery");
    }

    #[test]
    fn node_options_and_disk_faults_are_typed() {
        let d = node_scenario().describe();
        let node = &d["deploy"]["node"];
        assert_eq!(node["disk"], serde_json::json!({ "size_bytes": 300u64 << 20, "inodes": 20_000 }));
        assert_eq!(node["images"][0][0]["name"], "hubchaos/in-use");
        assert_eq!(node["images"][0][1], true);
        assert_eq!(node["cleaner"]["threshold_type"], "relative");
        assert_eq!(node["cleaner"]["threshold_high"], 80.0);
        assert!(node["cleaner"]["interval"].is_string(), "{node}");
        assert_eq!(d["faults"][0]["fields"]["target"], serde_json::json!({ "inodes": 90.0 }));
        assert_eq!(
            d["faults"][1]["fields"],
            serde_json::json!({ "component": "image-cleaner", "key": "DOCKER_HOST", "value": "strip-scheme" })
        );
        assert_eq!(d["checks"][1], serde_json::json!({ "name": "images-spared", "fields": null }));
        assert_no_debug_artefacts(&d);
    }

    #[test]
    fn scenario_json_carries_the_profile() {
        let s = hub_scenario();
        assert_eq!(s.describe_with_profile(None)["profile"], Value::Null);
        let mut p = crate::profile::Profile::parse(
            std::path::Path::new("p.yaml"),
            "components:\n  culler:\n    env: {TOKEN: secret}\n    version: my-branch\n",
        )
        .unwrap();
        p.source = Some("p.yaml".into());
        let d = s.describe_with_profile(Some(&p));
        assert_eq!(d["profile"]["source"], "p.yaml");
        assert_eq!(d["profile"]["versions"]["culler"], "my-branch");
        assert_eq!(d["faults"], s.describe()["faults"]);
        assert!(!d.to_string().contains("secret"));
    }
}
