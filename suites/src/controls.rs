//! Negative controls: a known-bad mutant that must make exactly its check fail. A check that
//! no mutant can break proves nothing.

use hubchaos::prelude::*;

use crate::culler;

/// The 2018 culler bug as a mutant: on top of the real culler, stop requests for servers that
/// are not running (the idle admins', which stay all run) go out as the culler at 20/s.
/// JupyterHub 6.1.1 answers them 204, so only the checks that look at what was asked can see
/// it: `wasted-requests` and the two rate ceilings.
pub fn flood_is_caught() -> Scenario {
    let mut s = culler::flood_replay();
    s.area = "controls";
    s.name = "flood_is_caught";
    s.incident = "Negative control for flood_replay: the 2018 flood pattern injected as the culler \
                  must be caught by what it asks (wasted stops, request rate), not by status codes.";
    s.faults.push(Scheduled::new(
        FloodApi { as_client: "culler".into(), class: ADMIN.into(), per_second: 20.0, max_requests: 5_000 },
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
    let mut s = culler::flood_replay();
    s.area = "controls";
    s.name = "accumulation_is_caught";
    s.incident = "Negative control for flood_replay: a culler without --cull-users stops idle \
                  servers but never deletes users; the user-count convergence check must fail.";
    if let Some(c) = s.deploy.culler.as_mut() {
        c.cull_users = false;
    }
    s.expect = Expectation::fail_on(&["convergence:users"], "the culler runs without --cull-users");
    s
}
