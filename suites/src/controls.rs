//! Negative controls: a known-bad mutant that must make exactly its checks fail. A check that
//! no mutant can break proves nothing. Controls run the culler replay on a smaller hub (300
//! users): the checks are the same, the run is a third as long.

use hubchaos::prelude::*;

use crate::culler::{culler_2018, culler_replay, IDLE_TIMEOUT};
use crate::hub;

fn small_accumulation() -> AccumulateUsers {
    AccumulateUsers {
        never_started: 40,
        stopped: 253,
        running_idle: 3,
        running_active: 2,
        admins: 2,
        settle: IDLE_TIMEOUT + Duration::from_secs(5),
        ..Default::default()
    }
}

fn small_replay(name: &'static str, incident: &'static str, culler: CullerOptions) -> Scenario {
    culler_replay("controls", name, incident, small_accumulation(), culler, Duration::from_secs(45), Duration::from_secs(40))
}

/// The 2018 culler bug as a mutant: on top of the real culler, stop requests for servers that
/// are not running (the idle admins', who stay all run) go out as the culler at 20/s.
/// JupyterHub 6.1.1 answers them 204, so only the checks that look at what was asked can see
/// it: `wasted-requests` and the two rate ceilings.
pub fn flood_is_caught() -> Scenario {
    let mut s = small_replay(
        "flood_is_caught",
        "Negative control for flood_replay: the 2018 flood pattern injected as the culler must be \
         caught by what it asks (wasted stops, request rate), not by status codes.",
        culler_2018(),
    );
    s.faults.push(Scheduled::new(
        FloodApi { as_client: "culler".into(), class: ADMIN.into(), per_second: 20.0, max_requests: 2_000 },
        Schedule::at(Duration::from_secs(5)),
    ));
    s.expect = Expectation::fail_on(
        &["wasted-requests", "rate-ceiling:culler", "rate-ceiling:culler-stops"],
        "flood-api mutant sends 20 stops/s for servers that are not running",
    );
    s
}

/// The culler that only stops servers and never deletes users (no `--cull-users`): users
/// accumulate, as they did in 2018 when the culler's exception skipped the user deletion.
pub fn accumulation_is_caught() -> Scenario {
    let mut s = small_replay(
        "accumulation_is_caught",
        "Negative control for flood_replay: a culler without --cull-users stops idle servers but \
         never deletes users; the user-count convergence check must fail.",
        CullerOptions { cull_users: false, ..culler_2018() },
    );
    s.expect = Expectation::fail_on(&["convergence:users"], "the culler runs without --cull-users");
    s
}

/// A culler told to cull admin users too, where the deployment protects them: `safety` must
/// name the admins it deleted.
pub fn admins_culled_is_caught() -> Scenario {
    let mut s = small_replay(
        "admins_culled_is_caught",
        "Negative control for the safety check: the culler runs with --cull-admin-users=True on a hub \
         whose admins must be spared.",
        CullerOptions { cull_admin_users: true, ..culler_2018() },
    );
    s.expect = Expectation::fail_on(&["safety"], "the culler deletes idle admin users");
    s
}

/// A culler whose service role lacks `admin:users` (a chart that forgot a scope): every user
/// deletion is refused with 403. `error-responses` must count them; the users stay.
pub fn refused_requests_are_caught() -> Scenario {
    let mut s = small_replay(
        "refused_requests_are_caught",
        "Negative control for the error-responses check: the culler's role lacks admin:users, so the \
         hub answers 403 to every DELETE /hub/api/users/{name}.",
        culler_2018(),
    );
    s.deploy.hub_mut().culler_scopes.retain(|scope| scope != "admin:users");
    s.expect = Expectation::fail_on(
        &["error-responses:culler", "convergence:users"],
        "the culler may not delete users: 403s, and the idle users stay",
    );
    s
}

/// The hub's event loop stalls for 5 s (SIGSTOP, then SIGCONT) while the culler works: the
/// hub-latency probe's p99 must show it.
pub fn hub_stall_is_caught() -> Scenario {
    let mut s = small_replay(
        "hub_stall_is_caught",
        "Negative control for the latency check: the hub is paused for 5 s mid-run, as a hub whose \
         event loop is blocked would be.",
        culler_2018(),
    );
    s.faults.push(Scheduled::new(PauseProcess::of("hub"), Schedule::at(Duration::from_secs(20)).held_for(Duration::from_secs(5))));
    s.expect = Expectation::fail_on(&["latency:hub"], "the hub does not answer for 5 s");
    s
}

/// The proxy dies twice: its restart count must exceed the one restart the scenario allows,
/// while each recovery on its own is still fast.
pub fn proxy_crash_loop_is_caught() -> Scenario {
    let mut s = hub::proxy_killed();
    s.area = "controls";
    s.name = "proxy_crash_loop_is_caught";
    s.incident = "Negative control for the restarts check: the proxy is killed a second time.";
    s.faults.push(Scheduled::new(KillProcess::of("proxy"), Schedule::at(Duration::from_secs(25))));
    s.expect = Expectation::fail_on(&["restarts:proxy"], "the proxy is killed twice");
    s
}

/// The same proxy kill on a hub that checks the proxy's routes only every 300 s (JupyterHub's
/// default `last_activity_interval`): the routes are not back within the window, so `recovery`
/// must fail (and the steady state after cannot hold either).
pub fn slow_route_restore_is_caught() -> Scenario {
    let mut s = hub::proxy_killed();
    s.area = "controls";
    s.name = "slow_route_restore_is_caught";
    s.incident = "Negative control for the recovery check: after the proxy restarts empty, the hub \
                  re-adds routes only at its next route check, 300 s away.";
    s.deploy.hub_mut().last_activity_interval = Duration::from_secs(300);
    s.steady_state.recovery = Duration::from_secs(5);
    s.expect = Expectation::fail_on(&["recovery"], "routes are restored only every 300 s");
    s
}
