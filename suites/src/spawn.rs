//! Spawn churn and leaks (2018-04-18: a KubeSpawner change leaked a watcher thread and pool per
//! spawn; the hub died after N launches and nobody saw the curve until the outage).

use hubchaos::prelude::*;
use hubchaos::soak::ChurnLimits;

/// Spawn churn of `cycles_per_user` cycles by each of the churn's users, judged on the hub's
/// resource curves (the building block `hubchaos::soak::churn`, which `hubchaos soak` uses
/// too). The leak controls (`controls.rs`) are this churn with a leaky spawn hook.
pub fn churn(area: &'static str, name: &'static str, incident: &'static str, cycles_per_user: usize) -> Scenario {
    churn_judged(area, name, incident, cycles_per_user, &ChurnLimits::LOCAL)
}

/// [`churn`] judged with `limits` (the kind twins: [`ChurnLimits::KIND`]).
pub fn churn_judged(
    area: &'static str,
    name: &'static str,
    incident: &'static str,
    cycles_per_user: usize,
    limits: &ChurnLimits,
) -> Scenario {
    // Bounded by the cycles; the duration is the backstop (a spawn cycle takes 5-10 s here).
    let backstop = Duration::from_secs(20 * cycles_per_user as u64 + 60);
    hubchaos::soak::churn_judged(Scenario::new(area, name, incident), Some(cycles_per_user), backstop, limits)
}

pub fn churn_without_leak() -> Scenario {
    churn_without_leak_judged(&ChurnLimits::LOCAL)
}

/// [`churn_without_leak`] on kind: the hub pod's cgroup, KubeSpawner's share allowed
/// ([`ChurnLimits::KIND`]).
pub fn churn_without_leak_on_kind() -> Scenario {
    churn_without_leak_judged(&ChurnLimits::KIND)
}

fn churn_without_leak_judged(limits: &ChurnLimits) -> Scenario {
    churn_judged(
        "spawn",
        "churn_without_leak",
        "Users start, reach (through the proxy), use and stop their servers over and over on a clean \
         hub: no resource of the hub may grow with the spawns.",
        10,
        limits,
    )
}

/// What the real spawner leaves behind after churn: home folders (by design, one per user)
/// and jupyter-server runtime files (one pair per spawn).
pub fn residue_after_churn() -> Scenario {
    let mut s = churn(
        "spawn",
        "residue_after_churn",
        "After churn, the spawner's residue (home folders, runtime files) is back to where it was, \
         but for one home folder per user, which SimpleLocalProcessSpawner keeps by design.",
        5,
    );
    s.checks = vec![Box::new(
        ReturnsToBaseline::of(RESIDUE, &[HOME_DIRS, RUNTIME_FILES], 0.0)
            .allow(HOME_DIRS, hubchaos::soak::CHURN_USERS as f64)
            .labelled("returns-to-baseline:residue"),
    )];
    s.key_figure = None;
    s.expect = Expectation::fail_on(
        &["returns-to-baseline:residue"],
        "upstream: the hub stops single-user servers with SIGINT; jupyter-server only installs its SIGINT \
         handler when stdin is a TTY, so without one it exits without cleanup and leaves \
         jpserver-<pid>.json and jpserver-<pid>-open.html in the runtime dir on every stop",
    );
    s
}
