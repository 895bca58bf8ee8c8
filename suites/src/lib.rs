//! The scenarios, one module per area. Each function returns a pure declaration; the test
//! binary (`main.rs`) turns each into one libtest-mimic trial named `local::<area>::<name>`.

pub mod controls;
pub mod culler;
pub mod hub;

use hubchaos::scenario::Scenario;

/// Every scenario, in the order `--list` shows them.
pub fn catalogue() -> Vec<fn() -> Scenario> {
    vec![
        culler::flood_replay,
        culler::overlapping_rounds,
        culler::accumulated_users_at_scale,
        hub::proxy_killed,
        controls::flood_is_caught,
        controls::accumulation_is_caught,
        controls::admins_culled_is_caught,
        controls::refused_requests_are_caught,
        controls::hub_stall_is_caught,
        controls::proxy_crash_loop_is_caught,
        controls::slow_route_restore_is_caught,
    ]
}
