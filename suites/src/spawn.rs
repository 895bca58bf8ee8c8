//! Spawn churn and leaks (2018-04-18: a KubeSpawner change leaked a watcher thread and pool per
//! spawn; the hub died after N launches and nobody saw the curve until the outage).

use hubchaos::prelude::*;

/// Spawn churn of `cycles_per_user` cycles by each of the churn's users, judged on the hub's
/// resource curves (see `hubchaos::soak::churn_scenario`, which `hubchaos soak` runs too).
fn churn(area: &'static str, name: &'static str, incident: &'static str, cycles_per_user: usize) -> Scenario {
    // Bounded by the cycles; the duration is the backstop (a spawn cycle takes 5-10 s here).
    let backstop = Duration::from_secs(20 * cycles_per_user as u64 + 60);
    hubchaos::soak::churn_scenario(area, name, incident, Some(cycles_per_user), backstop)
}

pub fn churn_without_leak() -> Scenario {
    churn(
        "spawn",
        "churn_without_leak",
        "Users start, reach (through the proxy), use and stop their servers over and over on a clean \
         hub: no resource of the hub may grow with the spawns.",
        10,
    )
}

/// The hub's spawn hook keeps 1 MiB per spawn (a leak as blunt as 2018's).
pub fn leak_is_caught() -> Scenario {
    let mut s = churn("controls", "leak_is_caught", "Negative control for leak-slope: a spawn hook retains 1 MiB per spawn.", 10);
    s.faults.push(Scheduled::new(LeakyHook { bytes_per_spawn: 1 << 20, fds_per_spawn: 0 }, Schedule::throughout()));
    s.expect = Expectation::fail_on(&["leak-slope:hub:rss_bytes"], "the hook retains 1 MiB per spawn");
    s
}

/// 100 KiB per spawn: 1.7× the allowed slope (60 KiB), and within the noise of a single sample.
pub fn small_leak_is_caught() -> Scenario {
    let mut s = churn(
        "controls",
        "small_leak_is_caught",
        "Negative control for leak-slope at its resolution: a spawn hook retains 100 KiB per spawn.",
        20,
    );
    s.faults.push(Scheduled::new(LeakyHook { bytes_per_spawn: 100 << 10, fds_per_spawn: 0 }, Schedule::throughout()));
    s.expect = Expectation::fail_on(&["leak-slope:hub:rss_bytes"], "the hook retains 100 KiB per spawn");
    // ~3 minutes; its detection power is measured by repeating it: `make test-chaos` only.
    s.long = true;
    s
}

/// One file descriptor per spawn, never closed.
pub fn fd_leak_is_caught() -> Scenario {
    let mut s = churn(
        "controls",
        "fd_leak_is_caught",
        "Negative control for leak-slope and returns-to-baseline: a spawn hook opens a file per spawn \
         and never closes it.",
        10,
    );
    s.faults.push(Scheduled::new(LeakyHook { bytes_per_spawn: 0, fds_per_spawn: 1 }, Schedule::throughout()));
    s.expect =
        Expectation::fail_on(&["leak-slope:hub:open_fds", "returns-to-baseline:hub"], "the hook opens one file per spawn and keeps it");
    s
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
