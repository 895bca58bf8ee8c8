//! A scenario is a pure declaration, written to read like the incident report: what is
//! deployed, what must hold before and after, what drives the system, which faults fire when,
//! how long it runs, and which checks judge the history. The runner does the rest.

use std::time::Duration;

use serde::Serialize;

use crate::check::Check;
use crate::component::culler::CullerOptions;
use crate::component::hub::HubOptions;
use crate::fault::Scheduled;
use crate::probe::Probe;
use crate::workload::Workload;

/// What a scenario needs from the machine; a missing need skips it with the reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Loop mounts, foreign process groups.
    pub root: bool,
    /// A harness-owned dockerd.
    pub docker: bool,
    /// A user-provided BinderHub (`HUBCHAOS_BINDERHUB`).
    pub binderhub: bool,
}

/// What the local backend deploys: the proxy and the hub (if `hub`), the culler (after the
/// setup), a node (disk, dockerd, image cleaner).
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub hub: Option<HubOptions>,
    pub culler: Option<CullerOptions>,
    pub node: Option<crate::component::node::NodeOptions>,
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
    /// Long scenarios (many minutes) are left out of `make test` (listed as ignored) and run
    /// by `make test-chaos`, which includes ignored trials.
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

    /// The declaration as JSON for `scenario.json` (trait objects by their Debug form).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "area": self.area,
            "name": self.name,
            "incident": self.incident,
            "needs": self.needs,
            "deploy": format!("{:?}", self.deploy),
            "steady_state": {
                "before": self.steady_state.before.iter().map(|p| p.describe()).collect::<Vec<_>>(),
                "after": self.steady_state.after.iter().map(|p| p.describe()).collect::<Vec<_>>(),
                "recovery_s": self.steady_state.recovery.as_secs_f64(),
            },
            "workloads": self.workloads.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>(),
            "faults": self.faults.iter().map(|f| serde_json::json!({
                "kind": f.fault.kind(), "target": f.fault.target(),
                "fault": format!("{:?}", f.fault), "schedule": format!("{:?}", f.schedule),
            })).collect::<Vec<_>>(),
            "duration_s": self.duration.as_secs_f64(),
            "checks": self.checks.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "expect": self.expect,
        })
    }
}
