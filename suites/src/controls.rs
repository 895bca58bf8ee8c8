//! Negative controls: a known-bad mutant that must make exactly its checks fail. A check that
//! no mutant can break proves nothing. Each control is its area's scenario, declared with the
//! area's own helper and a mutant added: the culler replay on a smaller hub (300 users: the
//! same checks, a quarter as long), the proxy kill, the spawn churn, the node and its cleaner.

use hubchaos::prelude::*;
use hubchaos::soak::ChurnLimits;

use crate::culler::{culler_2018, culler_2018_at, culler_replay, Timescale};
use crate::{binder, cleaner, hub, node, spawn};

fn small_accumulation(t: Timescale) -> AccumulateUsers {
    AccumulateUsers {
        never_started: 40,
        stopped: 253,
        running_idle: 3,
        running_active: 2,
        admins: 2,
        settle: t.settle(),
        ..Default::default()
    }
}

fn small_replay(name: &'static str, incident: &'static str, culler: CullerOptions) -> Scenario {
    small_replay_at(Timescale::LOCAL, name, incident, culler)
}

fn small_replay_at(t: Timescale, name: &'static str, incident: &'static str, culler: CullerOptions) -> Scenario {
    culler_replay("controls", name, incident, small_accumulation(t), culler, t.small_window, t.small_deadline)
}

/// The 2018 culler bug as a mutant: on top of the real culler, stop requests for servers that
/// are not running (the idle admins', who stay all run) go out as the culler at 20/s.
/// JupyterHub 6.1.1 answers them 204, so only the checks that look at what was asked can see
/// it: `wasted-requests` and the two rate ceilings.
pub fn flood_is_caught() -> Scenario {
    flood_is_caught_at(Timescale::LOCAL)
}

/// [`flood_is_caught`] on kind ([`Timescale::KIND`]).
pub fn flood_is_caught_on_kind() -> Scenario {
    flood_is_caught_at(Timescale::KIND)
}

fn flood_is_caught_at(t: Timescale) -> Scenario {
    let mut s = small_replay_at(
        t,
        "flood_is_caught",
        "Negative control for flood_replay: the 2018 flood pattern injected as the culler must be \
         caught by what it asks (wasted stops, request rate), not by status codes.",
        culler_2018_at(t),
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
    accumulation_is_caught_at(Timescale::LOCAL)
}

/// [`accumulation_is_caught`] on kind ([`Timescale::KIND`]).
pub fn accumulation_is_caught_on_kind() -> Scenario {
    accumulation_is_caught_at(Timescale::KIND)
}

fn accumulation_is_caught_at(t: Timescale) -> Scenario {
    let mut s = small_replay_at(
        t,
        "accumulation_is_caught",
        "Negative control for flood_replay: a culler without --cull-users stops idle servers but \
         never deletes users; the user-count convergence check must fail.",
        CullerOptions { cull_users: false, ..culler_2018_at(t) },
    );
    s.expect = Expectation::fail_on(&["convergence:users"], "the culler runs without --cull-users");
    s
}

/// A culler told to cull admin users too, where the deployment protects them: `safety` must
/// name the admins it deleted.
pub fn admins_culled_is_caught() -> Scenario {
    admins_culled_is_caught_at(Timescale::LOCAL)
}

/// [`admins_culled_is_caught`] on kind (`cull.adminUsers: true`).
pub fn admins_culled_is_caught_on_kind() -> Scenario {
    admins_culled_is_caught_at(Timescale::KIND)
}

fn admins_culled_is_caught_at(t: Timescale) -> Scenario {
    let mut s = small_replay_at(
        t,
        "admins_culled_is_caught",
        "Negative control for the safety check: the culler runs with --cull-admin-users=True on a hub \
         whose admins must be spared.",
        CullerOptions { cull_admin_users: true, ..culler_2018_at(t) },
    );
    s.expect = Expectation::fail_on(&["safety"], "the culler deletes idle admin users");
    s
}

/// A culler whose service role lacks `admin:users` (a chart that forgot a scope): every user
/// deletion is refused with 403. `error-responses` must count them; the users stay.
pub fn refused_requests_are_caught() -> Scenario {
    refused_requests_are_caught_at(Timescale::LOCAL)
}

/// [`refused_requests_are_caught`] on kind: the culler's role in the chart without
/// `admin:users` (patched in `hub.extraConfig`, as z2jh's `cull.*` keys cannot say it).
pub fn refused_requests_are_caught_on_kind() -> Scenario {
    refused_requests_are_caught_at(Timescale::KIND)
}

fn refused_requests_are_caught_at(t: Timescale) -> Scenario {
    let mut s = small_replay_at(
        t,
        "refused_requests_are_caught",
        "Negative control for the error-responses check: the culler's role lacks admin:users, so the \
         hub answers 403 to every DELETE /hub/api/users/{name}.",
        culler_2018_at(t),
    );
    s.deploy.hub_mut().culler_scopes.retain(|scope| scope != "admin:users");
    s.expect = Expectation::fail_on(
        &["error-responses:culler", "convergence:users"],
        "the culler may not delete users: 403s, and the idle users stay",
    );
    s
}

/// The culler started with a token the hub does not know (a chart that wired the wrong
/// secret), through the deploy plan: every request is refused with 403 and nothing is culled.
/// It also proves the plan's overrides reach the culler (they once did only for the node's
/// components, while the fault's window said "started with" the override).
pub fn culler_misconfigured_is_caught() -> Scenario {
    let mut s = small_replay(
        "culler_misconfigured_is_caught",
        "Negative control for overrides reaching the hub stack: the culler is started with \
         JUPYTERHUB_API_TOKEN set to a token the hub does not know, so every request it sends is \
         refused and no idle server or user goes away.",
        culler_2018(),
    );
    s.faults.push(Scheduled::new(Misconfigure::env("culler", "JUPYTERHUB_API_TOKEN", "not-the-culler-token"), Schedule::throughout()));
    s.expect = Expectation::fail_on(
        &["error-responses:culler", "convergence:users", "convergence:idle-servers"],
        "the hub refuses every request of a culler with the wrong token (403): nothing is culled",
    );
    s
}

/// The hub's event loop stalls for 5 s (SIGSTOP, then SIGCONT) 15 s into the window, after the
/// culler's round (2-14 s here; a stall during it delays the convergence too, which would make
/// a second check fail): the hub-latency probe's p99 must show it.
pub fn hub_stall_is_caught() -> Scenario {
    hub_stall_is_caught_at(Timescale::LOCAL)
}

/// [`hub_stall_is_caught`] on kind: the hub pod's cgroup frozen for 5 s.
pub fn hub_stall_is_caught_on_kind() -> Scenario {
    hub_stall_is_caught_at(Timescale::KIND)
}

fn hub_stall_is_caught_at(t: Timescale) -> Scenario {
    let mut s = small_replay_at(
        t,
        "hub_stall_is_caught",
        "Negative control for the latency check: the hub is paused for 5 s mid-run, as a hub whose \
         event loop is blocked would be.",
        culler_2018_at(t),
    );
    s.faults.push(Scheduled::new(PauseProcess::of("hub"), Schedule::at(Duration::from_secs(15)).held_for(Duration::from_secs(5))));
    s.expect = Expectation::fail_on(&["latency:hub"], "the hub does not answer for 5 s");
    s
}

/// A culler whose `--timeout` (3,600 s, z2jh's default) is longer than the run, on a hub whose
/// two idle admins left their servers running: the day-old users still go and the admins stay
/// (as they must), but the idle servers are never stopped. No never-started users: with no
/// activity the culler judges their age, which a long timeout would also spare.
pub fn idle_servers_kept_is_caught() -> Scenario {
    idle_servers_kept_is_caught_at(Timescale::LOCAL)
}

/// [`idle_servers_kept_is_caught`] on kind (`cull.timeout: 3600`), its window as much longer
/// as kind's small replays are.
pub fn idle_servers_kept_is_caught_on_kind() -> Scenario {
    idle_servers_kept_is_caught_at(Timescale::KIND)
}

fn idle_servers_kept_is_caught_at(t: Timescale) -> Scenario {
    let users =
        AccumulateUsers { stopped: 100, running_active: 2, admins: 2, admins_running_idle: 2, settle: t.settle(), ..Default::default() };
    let longer = t.small_window - Timescale::LOCAL.small_window;
    let mut s = culler_replay(
        "controls",
        "idle_servers_kept_is_caught",
        "Negative control for convergence:idle-servers: the culler's --timeout is an hour, longer than \
         the run, so the admins' idle servers are never stopped while the day-old users are deleted.",
        users,
        CullerOptions { timeout: Duration::from_secs(3600), ..culler_2018_at(t) },
        Duration::from_secs(30) + longer,
        Duration::from_secs(25) + longer,
    );
    s.expect = Expectation::fail_on(&["convergence:idle-servers"], "the culler's timeout is longer than the run");
    s
}

/// The proxy dies twice: its restart count must exceed the one restart the scenario allows,
/// while each recovery on its own is still fast.
pub fn proxy_crash_loop_is_caught() -> Scenario {
    let mut s = hub::proxy_kill(
        "controls",
        "proxy_crash_loop_is_caught",
        "Negative control for the restarts check: the proxy is killed a second time.",
        HubOptions { last_activity_interval: hub::ROUTE_CHECK, ..HubOptions::default() },
    );
    s.faults.push(Scheduled::new(KillProcess::of("proxy"), Schedule::at(Duration::from_secs(20))));
    s.expect = Expectation::fail_on(&["restarts:proxy"], "the proxy is killed twice");
    s
}

/// The same proxy kill on a hub that checks the proxy's routes only every 300 s (JupyterHub's
/// default `last_activity_interval`): the routes are not back within the window, so `recovery`
/// must fail (and the steady state after cannot hold either).
pub fn slow_route_restore_is_caught() -> Scenario {
    let mut s = hub::proxy_kill(
        "controls",
        "slow_route_restore_is_caught",
        "Negative control for the recovery check: after the proxy restarts empty, the hub \
         re-adds routes only at its next route check, 300 s away.",
        HubOptions { last_activity_interval: Duration::from_secs(300), ..HubOptions::default() },
    );
    s.steady_state.recovery = Duration::from_secs(5);
    s.expect = Expectation::fail_on(&["recovery"], "routes are restored only every 300 s");
    s
}

/// The hub's spawn hook keeps 1 MiB per spawn (a leak as blunt as 2018's).
pub fn leak_is_caught() -> Scenario {
    leak_is_caught_judged(&ChurnLimits::LOCAL)
}

/// [`leak_is_caught`] on kind, judged as kind's churn ([`ChurnLimits::KIND`]).
pub fn leak_is_caught_on_kind() -> Scenario {
    leak_is_caught_judged(&ChurnLimits::KIND)
}

fn leak_is_caught_judged(limits: &ChurnLimits) -> Scenario {
    let mut s = spawn::churn_judged(
        "controls",
        "leak_is_caught",
        "Negative control for leak-slope: a spawn hook retains 1 MiB per spawn.",
        10,
        limits,
    );
    s.faults.push(Scheduled::new(LeakyHook { bytes_per_spawn: 1 << 20, fds_per_spawn: 0 }, Schedule::throughout()));
    s.expect = Expectation::fail_on(&["leak-slope:hub:rss_bytes"], "the hook retains 1 MiB per spawn");
    s
}

/// 100 KiB per spawn: 1.7× the allowed slope (60 KiB), and within the noise of a single sample.
pub fn small_leak_is_caught() -> Scenario {
    let mut s = spawn::churn(
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
    fd_leak_is_caught_judged(&ChurnLimits::LOCAL)
}

/// [`fd_leak_is_caught`] on kind, judged as kind's churn (the files KubeSpawner keeps allowed).
pub fn fd_leak_is_caught_on_kind() -> Scenario {
    fd_leak_is_caught_judged(&ChurnLimits::KIND)
}

fn fd_leak_is_caught_judged(limits: &ChurnLimits) -> Scenario {
    let mut s = spawn::churn_judged(
        "controls",
        "fd_leak_is_caught",
        "Negative control for leak-slope and returns-to-baseline: a spawn hook opens a file per spawn \
         and never closes it.",
        10,
        limits,
    );
    s.faults.push(Scheduled::new(LeakyHook { bytes_per_spawn: 0, fds_per_spawn: 1 }, Schedule::throughout()));
    s.expect =
        Expectation::fail_on(&["leak-slope:hub:open_fds", "returns-to-baseline:hub"], "the hook opens one file per spawn and keeps it");
    s
}

/// The 2018 misconfiguration: `DOCKER_HOST` without `unix://`.
pub fn cleaner_misconfigured_is_caught() -> Scenario {
    let mut s = cleaner::cleaner_on_a_node(
        "controls",
        "cleaner_misconfigured_is_caught",
        "Negative control for component-up: the cleaner gets DOCKER_HOST without unix:// \
         (2018-04-18) and must be reported down, with its own error.",
    );
    s.faults.push(Scheduled::new(Misconfigure::docker_host_without_scheme("image-cleaner"), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["component-up:image-cleaner"], "DOCKER_HOST without unix://");
    s
}

/// The cleaner at its own default interval (300 s) where the node needs it every few seconds:
/// it measures once at start, under the threshold, and sleeps through the fill. It works, but
/// minutes too late: `disk-below` must fail on the deadline, nothing else.
pub fn slow_cleaner_is_caught() -> Scenario {
    let mut s = cleaner::frees_space(
        "controls",
        "slow_cleaner_is_caught",
        "Negative control for disk-below: images fill 90% of the node disk while the cleaner runs at \
         its own default interval, 300 s, which is longer than the time it has to react.",
        NodeOptions::disk_mb(300),
        FillDisk::blocks(90.0),
    );
    s.faults
        .push(Scheduled::new(Misconfigure::env("image-cleaner", "DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS", "300"), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["disk-below:used_pct"], "the cleaner's interval (300 s) is longer than its reaction window");
    s
}

/// A cleaner that frees space with forced deletes by name: the image in use loses its tag (a
/// running container keeps it on disk, as `<none>`). `images-spared` must name it.
pub fn in_use_image_removed_is_caught() -> Scenario {
    let mut s = cleaner::frees_space(
        "controls",
        "in_use_image_removed_is_caught",
        "Negative control for images-spared: while the real cleaner frees the disk, the image a running \
         container uses is force-deleted by name as the cleaner, as a buggy cleaner would.",
        NodeOptions::disk_mb(300),
        FillDisk::blocks(90.0),
    );
    s.faults.push(Scheduled::new(RemoveImagesInUse, Schedule::at(Duration::from_secs(15))));
    s.expect = Expectation::fail_on(&["images-spared"], "the image in use is force-removed by name");
    s
}

/// The full node of 2019 with every failure reported as "import failed": the imports fail, but
/// the report no longer says why. `failure-reason` must fail, quoting the generic message.
pub fn failure_without_cause_is_caught() -> Scenario {
    let mut s = node::full_data_root(
        "controls",
        "failure_without_cause_is_caught",
        "Negative control for failure-reason: the data root is full, and every failure dockerd reports \
         reaches its clients as \"import failed\", its cause dropped.",
    );
    s.faults.push(Scheduled::new(MaskErrors::import_failed(), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["failure-reason:import-image"], "failures are reported without their cause");
    s
}

/// Negative control for `disk-pressure`: the no-ssd node's kubelet on kind's own settings
/// (eviction and image GC off). Its disk fills to the last block and it never says so.
pub fn eviction_off_is_caught() -> Scenario {
    let mut s = crate::cluster::filled_no_ssd(
        "controls",
        "eviction_off_is_caught",
        "Negative control for missing_ssd_disk_pressure: the no-ssd kubelet with kind's defaults \
         (evictionHard at 0%, image GC off) must fail exactly disk-pressure.",
        FillNodeDisk::steady(NO_SSD, SSD),
    );
    s.faults.insert(0, Scheduled::new(KubeletEvictionOff::on(NO_SSD), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["disk-pressure:no-ssd"], "eviction is off: the node never reports DiskPressure");
    s
}

/// Negative control for `evictions`: the disk filled in one write, faster than the kubelet's
/// 10 s look; the build dies of "No space left on device" instead of being evicted.
pub fn burst_fill_is_caught() -> Scenario {
    let mut s = crate::cluster::filled_no_ssd(
        "controls",
        "burst_fill_is_caught",
        "Negative control for missing_ssd_disk_pressure: one dd fills the no-ssd disk at once; the \
         build fails with ENOSPC before the kubelet looks, which must fail exactly evictions.",
        FillNodeDisk::steady(NO_SSD, SSD).burst(),
    );
    // In `make test-chaos BACKEND=kind`, not `make test` (its time budget).
    s.long = true;
    s.expect = Expectation::fail_on(&["evictions:no-ssd"], "the build died of its own write error");
    s
}

/// Negative control for `untouched:ssd`: the ssd pool's pods deleted mid-run (a drain aimed
/// at the wrong pool).
pub fn ssd_pool_disturbed_is_caught() -> Scenario {
    let mut s = crate::cluster::filled_no_ssd(
        "controls",
        "ssd_pool_disturbed_is_caught",
        "Negative control for missing_ssd_disk_pressure: the ssd pool's build deleted at 10 s must \
         fail exactly untouched:ssd.",
        FillNodeDisk::steady(NO_SSD, SSD),
    );
    s.faults.push(Scheduled::new(DeletePodsOnPool::on(SSD), Schedule::at(Duration::from_secs(10))));
    // In `make test-chaos BACKEND=kind`, not `make test` (its time budget).
    s.long = true;
    s.expect = Expectation::fail_on(&["untouched:ssd"], "its build was deleted");
    s
}

/// Negative control for `pools`: the user pool left tainted (never added).
pub fn pool_left_tainted_is_caught() -> Scenario {
    let mut s = crate::cluster::pools_probed(
        "controls",
        "pool_left_tainted_is_caught",
        "Negative control for pools_ready: the user pool tainted NoSchedule; its pod stays Pending, \
         which must fail exactly pools.",
    );
    s.faults.push(Scheduled::new(TaintPool::named("user"), Schedule::throughout()));
    // In `make test-chaos BACKEND=kind`, not `make test` (its time budget).
    s.long = true;
    s.expect = Expectation::fail_on(&["pools"], "the user pool takes no pod");
    s
}

/// Negative control for `service`: kube-proxy's pods gone before the Service is made.
pub fn kube_proxy_removed_is_caught() -> Scenario {
    let mut s = crate::cluster::pools_probed(
        "controls",
        "kube_proxy_removed_is_caught",
        "Negative control for pools_ready: without kube-proxy a new Service has no rules, which \
         must fail exactly service.",
    );
    s.faults.push(Scheduled::new(AddonDown::kube_proxy(), Schedule::throughout()));
    // In `make test-chaos BACKEND=kind`, not `make test` (its time budget).
    s.long = true;
    s.expect = Expectation::fail_on(&["service"], "kube-proxy is gone");
    s
}

/// Negative control for `dns`: coredns scaled to zero.
pub fn coredns_down_is_caught() -> Scenario {
    let mut s = crate::cluster::pools_probed(
        "controls",
        "coredns_down_is_caught",
        "Negative control for pools_ready: with coredns scaled to zero no name resolves, which must \
         fail exactly dns.",
    );
    s.faults.push(Scheduled::new(AddonDown::coredns(), Schedule::throughout()));
    // In `make test-chaos BACKEND=kind`, not `make test` (its time budget).
    s.long = true;
    s.expect = Expectation::fail_on(&["dns"], "coredns is down");
    s
}

/// Negative control for `build-outcomes`: BinderHub started with the build node's `DOCKER_HOST`
/// without `unix://` (the 2018 cleaner's mistake, on the build node). Every request fails at
/// "is the image built?"; the streams still end and close, and nothing is built or left.
pub fn build_node_docker_host_is_caught() -> Scenario {
    let requests = (1..=3).map(|i| BuildRequest::one(&format!("fast-{i}"), Duration::from_secs(i as u64))).collect();
    let repos = (1..=3).map(|i| SampleRepo::new(&format!("fast-{i}"), RepoKind::Fast)).collect();
    let mut s = binder::binder_on_a_node(
        "controls",
        "build_node_docker_host_is_caught",
        "Negative control for build-outcomes: BinderHub's DOCKER_HOST lacks unix:// (as the image cleaner's \
         did in 2018), so no repo can be looked up or built.",
        BuildExecutor::Unit,
        repos,
        requests,
        None,
    );
    s.duration = Duration::from_secs(20);
    s.faults.push(Scheduled::new(Misconfigure::docker_host_without_scheme(BINDERHUB), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["build-outcomes"], "BinderHub cannot reach the build node's dockerd: every build fails");
    s
}

/// Negative control for `build-start`: the build node's dockerd hangs (SIGSTOP) for 15 s just
/// before the first request. BinderHub asks it whether each image exists, so no build starts
/// until it answers again; then every build runs and ends as in fast_repos_build.
pub fn build_node_hung_is_caught() -> Scenario {
    let mut s = binder::fast_repos(
        "controls",
        "build_node_hung_is_caught",
        "Negative control for build-start: the build node's docker daemon is paused for 15 s as the first \
         repos are asked for.",
    );
    s.faults.push(Scheduled::new(PauseProcess::of(DOCKERD), Schedule::at(Duration::from_millis(500)).held_for(Duration::from_secs(15))));
    // The builds run once dockerd is back (~22 s); the gauge has 5 s to settle.
    s.duration = Duration::from_secs(32);
    s.expect = Expectation::fail_on(&["build-start"], "the build node's dockerd does not answer for 15 s");
    s
}

/// Negative control for `builds-in-flight`: the cache-wipe herd on a BinderHub whose
/// concurrent_build_limit is 4 where the build node was sized (and the check told) 2.
pub fn build_limit_raised_is_caught() -> Scenario {
    let mut s = binder::cache_wipe(
        "controls",
        "build_limit_raised_is_caught",
        "Negative control for builds-in-flight: BinderHub's concurrent_build_limit is 4 on a build node \
         sized for 2; the herd after a cache wipe runs up to 4 builds at once.",
        BuildExecutor::Unit,
    );
    if let Some(b) = s.deploy.binder.as_mut() {
        b.concurrent_build_limit = 4;
    }
    s.expect = Expectation::fail_on(&["builds-in-flight"], "BinderHub is allowed twice the builds the node takes");
    s
}

/// Negative control for `failure-cause`: the large repo's build on the 300 MB disk discards its
/// own error output, so it fails saying only its exit code. (Its stream stays open and the
/// gauge up, as every failed build's at BinderHub's main: missing_ssd_build_node.)
pub fn quiet_build_failure_is_caught() -> Scenario {
    let mut s = binder::small_build_disk(
        "controls",
        "quiet_build_failure_is_caught",
        "Negative control for failure-cause: a build that fills the small build disk but throws its error \
         output away; nothing the user sees says \"no space left on device\".",
        RepoKind::Large { mb: 400, quiet: true },
    );
    s.expect = Expectation::fail_on(
        &["failure-cause:large", "streams-close", "settles:binderhub_inprogress_builds"],
        "the build's cause is discarded (failure-cause); streams-close and the gauge fail as in \
         missing_ssd_build_node (BinderHub main: a failed build's stream is never closed)",
    );
    s
}

/// Negative control for `build-leftovers`: build units that write their checkouts to the build
/// node's own temp dir (as build pods with /tmp on a hostPath would), so every build leaves one.
pub fn build_tmp_kept_is_caught() -> Scenario {
    let mut s = binder::fast_repos(
        "controls",
        "build_tmp_kept_is_caught",
        "Negative control for build-leftovers: the build units share BinderHub's TMPDIR instead of one of \
         their own, so repo2docker's checkouts (--no-clean) stay after every build.",
    );
    s.faults.push(Scheduled::new(Misconfigure::env(BINDERHUB, "HUBCHAOS_UNIT_TMP", "shared"), Schedule::throughout()));
    s.expect = Expectation::fail_on(&["build-leftovers"], "every build leaves its checkout");
    s
}
