//! The scenarios, one module per area. Each function returns a pure declaration; the test
//! binary (`main.rs`) turns each into one libtest-mimic trial named `local::<area>::<name>`.
//! A module declares the scenarios of its area only (its helpers take the area, name and
//! incident up front, so other areas, the controls above all, build on them).

pub mod binder;
pub mod cleaner;
pub mod cluster;
pub mod controls;
pub mod culler;
pub mod hub;
pub mod node;
pub mod spawn;

use hubchaos::scenario::{Expectation, Scenario};

/// A scenario's declaration, as the catalogues list them.
pub type Declare = fn() -> Scenario;

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
        controls::culler_misconfigured_is_caught,
        controls::hub_stall_is_caught,
        controls::idle_servers_kept_is_caught,
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
        controls::slow_cleaner_is_caught,
        controls::in_use_image_removed_is_caught,
        node::disk_full_is_reported,
        controls::failure_without_cause_is_caught,
        cluster::pools_ready,
        controls::pool_left_tainted_is_caught,
        controls::kube_proxy_removed_is_caught,
        controls::coredns_down_is_caught,
        cluster::missing_ssd_disk_pressure,
        controls::eviction_off_is_caught,
        controls::burst_fill_is_caught,
        controls::ssd_pool_disturbed_is_caught,
        binder::fast_repos_build,
        binder::popular_slow_repo,
        binder::popular_slow_repo_local_executor,
        binder::failed_build_stream_closes,
        binder::missing_ssd_build_node,
        binder::cache_wipe_herd,
        binder::cache_wipe_herd_local_executor,
        binder::github_api_down,
        binder::launch_storm,
        binder::launch_storm_local_executor,
        controls::build_node_docker_host_is_caught,
        controls::build_node_hung_is_caught,
        controls::build_limit_raised_is_caught,
        controls::quiet_build_failure_is_caught,
        controls::build_tmp_kept_is_caught,
    ]
}

/// The scenarios that also run on kind, the same declarations (one scenario, two backends; the
/// culler replays at kind's [`culler::Timescale`]),
/// with whether `make test` runs them there (`false`: `make test-chaos BACKEND=kind` only, for
/// the time they take: `make test` stays under 30 minutes with the quickest, proxy_killed,
/// ~65 s with the chart's install). Each becomes a `kind::<area>::<name>` trial beside its
/// `local::` one.
pub fn kind_catalogue() -> Vec<(fn() -> Scenario, bool)> {
    vec![
        (controls::flood_is_caught_on_kind, false),
        (controls::accumulation_is_caught_on_kind, false),
        (culler::flood_replay_on_kind, false),
        (culler::accumulated_users_at_scale_on_kind, false),
        (hub::proxy_killed, true),
        (spawn::churn_without_leak_on_kind, false),
        (controls::leak_is_caught_on_kind, false),
        (controls::hub_stall_is_caught_on_kind, false),
        (controls::admins_culled_is_caught_on_kind, false),
        (controls::refused_requests_are_caught_on_kind, false),
        (controls::idle_servers_kept_is_caught_on_kind, false),
        (controls::proxy_crash_loop_is_caught, false),
        (controls::slow_route_restore_is_caught, false),
        (controls::fd_leak_is_caught_on_kind, false),
        (cleaner::starts_and_stays_up, false),
        (cleaner::frees_space_over_threshold_blocks, false),
        (cleaner::spares_images_in_use, false),
        (cleaner::disabled_at_zero, false),
        (controls::cleaner_misconfigured_is_caught, false),
        (controls::slow_cleaner_is_caught, false),
        (controls::in_use_image_removed_is_caught, false),
        (node::disk_full_is_reported, false),
        (controls::failure_without_cause_is_caught, false),
    ]
}

/// The hub and node scenarios with no kind twin, each with why (`hubchaos list` shows it
/// under the local row). Those that deploy BinderHub, or a node the kind build node cannot be,
/// are not named here: the kind backend's own `cannot_run` says why for them. A test keeps
/// this list and [`kind_catalogue`] covering every other local scenario exactly once.
pub fn not_on_kind() -> Vec<(Declare, &'static str)> {
    vec![
        (
            culler::overlapping_rounds,
            "no kind twin yet: a 4-minute replay whose finding is the culler's own round scheduling \
             (the same code inside the hub pod); its checks are covered on kind by flood_replay and the controls",
        ),
        (
            controls::culler_misconfigured_is_caught,
            "on kind the culler runs inside the hub pod and the hub's log is the only evidence of \
             its requests; a request with a wrong token names no one there (`403 GET … (@::1)`), \
             so error-responses:culler could not see the 403s it must count",
        ),
        (
            controls::small_leak_is_caught,
            "its mutant (100 KiB per spawn) is under what kind's churn allows the hub pod \
             (200 KiB per spawn, KubeSpawner's event reflector included; ChurnLimits::KIND)",
        ),
        (
            spawn::residue_after_churn,
            "the residue it counts (home folders, jupyter-server runtime files) is \
             SimpleLocalProcessSpawner's, on the hub's machine; KubeSpawner's servers live and \
             go with their pods",
        ),
    ]
}

/// What is wrong with a declaration that the type system lets through: a check named by the
/// expectation or the key figure that the scenario does not run (a control that can never
/// fail as declared, a key figure that is never shown), and two checks of the same name (the
/// expectation could not tell them apart). Empty when the declaration is sound.
pub fn declaration_errors(s: &Scenario) -> Vec<String> {
    let names: Vec<String> = s.checks.iter().map(|c| c.name()).collect();
    let mut errors = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            errors.push(format!("two checks are named {n}"));
        }
    }
    let missing = |what: &str, check: &str| format!("{what} names {check}, which is not among its checks {names:?}");
    if let Expectation::FailOn { checks, .. } = &s.expect {
        if checks.is_empty() {
            errors.push("the expectation names no check to fail".into());
        }
        errors.extend(checks.iter().filter(|c| !names.contains(c)).map(|c| missing("the expectation", c)));
    }
    if let Some(k) = &s.key_figure {
        if !names.contains(&k.check) {
            errors.push(missing("the key figure", &k.check));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use hubchaos::backend::kind::build_node;
    use hubchaos::prelude::*;

    use super::*;

    #[test]
    fn every_declaration_in_the_catalogue_is_sound() {
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for build in catalogue() {
            let s = build();
            let name = s.test_name(if s.needs.cluster { "kind" } else { "local" });
            problems.extend(declaration_errors(&s).into_iter().map(|e| format!("{name}: {e}")));
            if seen.contains(&name) {
                problems.push(format!("{name} is declared twice"));
            }
            seen.push(name);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(!seen.is_empty(), "an empty catalogue would pass vacuously");
    }

    #[test]
    fn every_hub_or_node_scenario_kind_can_take_is_twinned_or_says_why_not_exactly_once() {
        let twins: Vec<String> = kind_catalogue().iter().map(|(b, _)| b().test_name("x")).collect();
        let reasons: Vec<String> = not_on_kind().iter().map(|(b, _)| b().test_name("x")).collect();
        let mut problems = Vec::new();
        for s in catalogue().into_iter().map(|b| b()) {
            // What the kind backend refuses by what it declares (BinderHub, a node it cannot
            // be), it says why for itself.
            let refused = s.deploy.binder.is_some() || s.deploy.node.as_ref().is_some_and(|n| build_node::cannot_be(n).is_some());
            let hub_only = (s.deploy.hub.is_some() || s.deploy.node.is_some()) && !refused && !s.needs.cluster;
            let name = s.test_name("x");
            let count = twins.iter().chain(&reasons).filter(|n| **n == name).count();
            if hub_only && count != 1 {
                problems.push(format!("{name}: twinned or explained {count} times"));
            }
            if !hub_only && count != 0 {
                problems.push(format!("{name}: not a hub scenario, yet twinned or explained"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(!twins.is_empty() && !reasons.is_empty());
    }

    #[test]
    fn a_control_whose_expected_check_is_not_run_is_caught() {
        let mut s = Scenario::new("controls", "bad", "a control that names a check it does not run");
        s.checks = vec![Box::new(Restarts::between("proxy", 1, 1)), Box::new(Restarts::between("proxy", 0, 0))];
        s.expect = Expectation::fail_on(&["restarts:proxy", "recovery"], "typo");
        let s = s.key_figure("convergence:users", "time_to_converge_s", "s");
        let errors = declaration_errors(&s);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("two checks are named restarts:proxy"), "{errors:?}");
        assert!(errors[1].starts_with("the expectation names recovery"), "{errors:?}");
        assert!(errors[2].starts_with("the key figure names convergence:users"), "{errors:?}");
        // The same scenario, declared right, is sound.
        let mut s = Scenario::new("controls", "good", "");
        s.checks = vec![Box::new(Restarts::between("proxy", 1, 1))];
        s.expect = Expectation::fail_on(&["restarts:proxy"], "killed twice");
        assert!(declaration_errors(&s).is_empty());
        s.expect = Expectation::fail_on(&[], "nothing");
        assert_eq!(declaration_errors(&s), ["the expectation names no check to fail"]);
    }
}
