//! The scenarios, one module per area. Each function returns a pure declaration; the test
//! binary (`main.rs`) turns each into one libtest-mimic trial named `local::<area>::<name>`.
//! A module declares the scenarios of its area only (its helpers take the area, name and
//! incident up front, so other areas, the controls above all, build on them).

pub mod cleaner;
pub mod controls;
pub mod culler;
pub mod hub;
pub mod node;
pub mod spawn;

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
        spawn::churn_without_leak,
        spawn::residue_after_churn,
        controls::leak_is_caught,
        controls::small_leak_is_caught,
        controls::fd_leak_is_caught,
        cleaner::starts_and_stays_up,
        cleaner::frees_space_over_threshold_blocks,
        cleaner::frees_space_over_threshold_inodes,
        cleaner::spares_images_in_use,
        cleaner::disabled_at_zero,
        controls::cleaner_misconfigured_is_caught,
        node::disk_full_is_reported,
    ]
}
