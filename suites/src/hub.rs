//! The hub and proxy under process faults.

use hubchaos::prelude::*;

/// How often a healthy deployment's hub checks the proxy's routes (`last_activity_interval`)
/// in these scenarios: short, so a restarted proxy gets its routes back within seconds.
pub const ROUTE_CHECK: Duration = Duration::from_secs(5);

/// The proxy pod dies (2018: the proxy was restarted first, suspecting the network). The
/// proxy restarts empty; the hub must notice and restore the routes, so that every running
/// server answers through the proxy again. Measures how long that takes.
pub fn proxy_killed() -> Scenario {
    proxy_kill(
        "hub",
        "proxy_killed",
        "The proxy is SIGKILLed mid-run and comes back through its restart policy, with an empty \
         routing table. The hub re-adds routes when it checks the proxy (every \
         last_activity_interval); until then users' servers are unreachable.",
        HubOptions { last_activity_interval: ROUTE_CHECK, ..HubOptions::default() },
    )
}

/// Three users with running servers reached through the proxy every 500 ms, the proxy
/// SIGKILLed at 10 s. Judged against a hub that checks routes every [`ROUTE_CHECK`], whatever
/// `hub` says: recovery within two route checks plus the restart back-off and a request
/// timeout, one proxy restart, no hub restart.
pub fn proxy_kill(area: &'static str, name: &'static str, incident: &'static str, hub: HubOptions) -> Scenario {
    let mut s = Scenario::new(area, name, incident);
    s.deploy = Deployment::hub(hub);
    s.faults = vec![
        Scheduled::new(AccumulateUsers { running_active: 3, ..Default::default() }, Schedule::throughout()),
        Scheduled::new(KillProcess::of("proxy"), Schedule::at(Duration::from_secs(10))),
    ];
    s.workloads = vec![Box::new(ReachServers { classes: vec![RUNNING_ACTIVE.into()], every: Duration::from_millis(500) })];
    s.steady_state = SteadyState {
        before: vec![Box::new(HubAnswers)],
        after: vec![Box::new(HubAnswers), Box::new(ServersReachable { at_least: 3 })],
        recovery: Duration::from_secs(30),
    };
    s.duration = Duration::from_secs(30);
    // Route check every 5 s + restart back-off 0.5 s + a request timeout of slack.
    s.checks = vec![
        Box::new(Recovery::new("kill-process", "proxy", "reach-server", ROUTE_CHECK * 2 + Duration::from_secs(3))),
        Box::new(Restarts::between("proxy", 1, 1)),
        Box::new(Restarts::between("hub", 0, 0)),
    ];
    s.key_figure("recovery", "time_to_recover_s", "s")
}
