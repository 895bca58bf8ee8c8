//! Negative controls: a known-bad mutant that must make exactly its checks fail. A check that
//! no mutant can break proves nothing. Controls run the culler replay on a smaller hub (300
//! users): the checks are the same, the run is a third as long.

use hubchaos::prelude::*;

use crate::culler::{culler_2018, culler_replay, IDLE_TIMEOUT};

fn small_accumulation() -> AccumulateUsers {
    AccumulateUsers {
        never_started: 40,
        stopped: 243,
        running_idle: 10,
        running_active: 5,
        admins: 2,
        settle: IDLE_TIMEOUT + Duration::from_secs(5),
        ..Default::default()
    }
}

/// The 2018 culler bug as a mutant: on top of the real culler, stop requests for servers that
/// are not running (the idle admins', who stay all run) go out as the culler at 20/s.
/// JupyterHub 6.1.1 answers them 204, so only the checks that look at what was asked can see
/// it: `wasted-requests` and the two rate ceilings.
pub fn flood_is_caught() -> Scenario {
    let mut s = culler_replay(
        "controls",
        "flood_is_caught",
        "Negative control for flood_replay: the 2018 flood pattern injected as the culler must be \
         caught by what it asks (wasted stops, request rate), not by status codes.",
        small_accumulation(),
        culler_2018(),
        Duration::from_secs(60),
        Duration::from_secs(50),
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
    let mut s = culler_replay(
        "controls",
        "accumulation_is_caught",
        "Negative control for flood_replay: a culler without --cull-users stops idle servers but \
         never deletes users; the user-count convergence check must fail.",
        small_accumulation(),
        CullerOptions { cull_users: false, ..culler_2018() },
        Duration::from_secs(60),
        Duration::from_secs(50),
    );
    s.expect = Expectation::fail_on(&["convergence:users"], "the culler runs without --cull-users");
    s
}
