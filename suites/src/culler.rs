//! The idle culler against accumulated users (2018-04-18).

use hubchaos::prelude::*;

/// JupyterHub's default page size for `GET /hub/api/users` (`api_page_default_limit`); the
/// culler pages with it unless given `--api-page-size`.
const HUB_PAGE: u64 = 50;

/// The culler's request budget over a window, from what it has to do.
///
/// Every round it asks `GET /hub/api/` once, lists users with inactive servers (one page per
/// 50 such users, at most) and users with ready servers (one page per 50), then stops each idle
/// server once and deletes each idle user once. So over `rounds` rounds it needs at most
/// `rounds × (1 + pages(all users) + pages(running)) + idle servers + idle users` requests.
/// A culler that repeats stop requests round after round (2018) blows through this budget.
#[derive(Debug, Clone, Copy)]
pub struct CullerCostModel {
    pub users: u64,
    pub running: u64,
    pub idle_servers: u64,
    pub idle_users: u64,
}

impl CullerCostModel {
    pub fn pages(n: u64) -> u64 {
        n.div_ceil(HUB_PAGE).max(1)
    }

    /// Requests needed over `window` with a round every `cull_every`.
    pub fn budget(&self, window: Duration, cull_every: Duration) -> u64 {
        let rounds = (window.as_secs_f64() / cull_every.as_secs_f64()).ceil() as u64 + 1;
        rounds * (1 + Self::pages(self.users) + Self::pages(self.running)) + self.idle_servers + self.idle_users
    }
}

/// 2,000 users piled up (the flood's starting point): most stopped a day ago, some never
/// started, 10 running idle real servers, 5 in active use, 2 idle admins.
pub fn accumulated_2018() -> AccumulateUsers {
    AccumulateUsers { never_started: 200, stopped: 1_783, running_idle: 10, running_active: 5, admins: 2, ..Default::default() }
}

/// The culler as z2jh runs it with `cull.users: true`, `cull.adminUsers: false`, but with
/// short rounds so a 2-minute window holds many of them.
pub fn culler_2018() -> CullerOptions {
    CullerOptions {
        timeout: Duration::from_secs(30),
        cull_every: Duration::from_secs(10),
        cull_users: true,
        cull_admin_users: false,
        concurrency: 10,
        ..Default::default()
    }
}

/// Replay of 2018-04-18 with the real culler. A fixed culler must: send no request the hub
/// refuses; send no stop for a server that is not running and no delete for a user already
/// gone; stay within the request budget of its work; stop every idle server and delete every
/// idle user by the deadline; leave active users and admins alone; and not make the hub slow.
pub fn flood_replay() -> Scenario {
    let users = accumulated_2018();
    let culler = culler_2018();
    let duration = Duration::from_secs(120);
    let deadline = Duration::from_secs(100);
    let cost = CullerCostModel {
        users: users.total() as u64,
        running: (users.running_idle + users.running_active) as u64,
        idle_servers: users.running_idle as u64,
        idle_users: (users.total() - users.running_active - users.admins) as u64,
    };
    // One-off work may all land in the first rounds; the 1.25 leaves room for retries and
    // rounds that straddle the window's ends.
    let budget_rate = cost.budget(duration, culler.cull_every) as f64 * 1.25 / duration.as_secs_f64();
    // Stops: one per idle server over the whole window, at most one per round for slack.
    let stop_budget_rate = (cost.idle_servers as f64 + 3.0) / duration.as_secs_f64();
    let keep = (users.running_active + users.admins) as f64;

    let mut s = Scenario::new(
        "culler",
        "flood_replay",
        "2018-04-18: an upgraded culler sent DELETE /hub/api/users/{name}/server for servers that were \
         not running; the hub answered 400, the culler never deleted those users, they piled up and \
         every round sent more requests until the hub stopped answering. Replayed with 2,000 accumulated \
         users and the real culler with --cull-users.",
    );
    s.deploy = Deployment { hub: HubOptions::default(), culler: Some(culler) };
    s.faults = vec![Scheduled::new(users, Schedule::throughout())];
    s.workloads = vec![
        Box::new(KeepActive { class: RUNNING_ACTIVE.into(), every: Duration::from_secs(5) }),
        Box::new(HubLatency { every: Duration::from_millis(250) }),
    ];
    s.steady_state = SteadyState {
        before: vec![Box::new(HubAnswers)],
        after: vec![Box::new(HubAnswers), Box::new(ServersReachable { at_least: 5 })],
        recovery: Duration::from_secs(30),
    };
    s.duration = duration;
    s.checks = vec![
        Box::new(ErrorResponses::new("culler", ErrorClass::Client4xx, 0).label("culler")),
        Box::new(WastedRequests::new("culler", 0)),
        Box::new(RateCeiling::new(duration, budget_rate).client("culler").label("culler")),
        Box::new(
            RateCeiling::new(duration, stop_budget_rate)
                .client("culler")
                .route("DELETE", "/hub/api/users/{name}/server")
                .label("culler-stops"),
        ),
        Box::new(Convergence::new("hub", "jupyterhub_total_users", Direction::AtMost, keep, deadline).label("users").hold_until_end()),
        Box::new(
            Convergence::new("hub", "jupyterhub_running_servers", Direction::AtMost, 5.0, deadline)
                .label("idle-servers")
                .hold_until_end(),
        ),
        Box::new(NoProtectedUserHarmed::new(Some("culler"), &[RUNNING_ACTIVE, ADMIN])),
        Box::new(LatencyCeiling::new(Duration::from_millis(500)).client("probe").label("hub")),
    ];
    s.key_figure("convergence:users", "time_to_converge_s", "s")
}

/// 10,000 users, 1,000 of them with stopped named servers and 5 with idle running named
/// servers, culled with `--remove-named-servers` (upstream jupyterhub-idle-culler#88 is about
/// named servers with many users).
pub fn accumulated_users_at_scale() -> Scenario {
    let users = AccumulateUsers {
        never_started: 500,
        stopped: 9_483,
        running_idle: 10,
        running_active: 5,
        admins: 2,
        running_idle_named: 5,
        ..Default::default()
    };
    let culler = CullerOptions { remove_named_servers: true, ..culler_2018() };
    let duration = Duration::from_secs(240);
    let deadline = Duration::from_secs(220);
    let keep = (users.running_active + users.admins) as f64;
    let mut s = Scenario::new(
        "culler",
        "accumulated_users_at_scale",
        "Ten thousand accumulated users, idle named servers among them, culled with \
         --cull-users --remove-named-servers: the culler must get through all of them without \
         errors, without waste and without starving the hub.",
    );
    s.deploy = Deployment {
        hub: HubOptions { allow_named_servers: true, ..HubOptions::default() },
        culler: Some(culler),
    };
    s.faults = vec![Scheduled::new(users, Schedule::throughout())];
    s.workloads = vec![
        Box::new(KeepActive { class: RUNNING_ACTIVE.into(), every: Duration::from_secs(5) }),
        Box::new(HubLatency { every: Duration::from_millis(250) }),
    ];
    s.steady_state = SteadyState {
        before: vec![Box::new(HubAnswers)],
        after: vec![Box::new(HubAnswers), Box::new(ServersReachable { at_least: 5 })],
        recovery: Duration::from_secs(30),
    };
    s.duration = duration;
    s.checks = vec![
        Box::new(ErrorResponses::new("culler", ErrorClass::Client4xx, 0).label("culler")),
        Box::new(WastedRequests::new("culler", 0)),
        Box::new(Convergence::new("hub", "jupyterhub_total_users", Direction::AtMost, keep, deadline).label("users").hold_until_end()),
        Box::new(
            Convergence::new("hub", "jupyterhub_running_servers", Direction::AtMost, 5.0, deadline)
                .label("idle-servers")
                .hold_until_end(),
        ),
        Box::new(NoProtectedUserHarmed::new(Some("culler"), &[RUNNING_ACTIVE, ADMIN])),
        Box::new(LatencyCeiling::new(Duration::from_secs(1)).client("probe").label("hub")),
    ];
    s.key_figure("convergence:users", "time_to_converge_s", "s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_listing_rounds_and_one_off_work() {
        let m = CullerCostModel { users: 2_000, running: 15, idle_servers: 10, idle_users: 1_993 };
        // 13 rounds × (1 + 40 + 1) + 10 + 1993
        assert_eq!(m.budget(Duration::from_secs(120), Duration::from_secs(10)), 13 * 42 + 2_003);
    }
}
