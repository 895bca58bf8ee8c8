//! The real BinderHub build queue (2019-03-24: an image-prefix bump wiped the cache, every repo
//! rebuilt at once, one popular repo that builds slowly held all of BinderHub's build threads so
//! no other repo started building, and builds got stuck until BinderHub was restarted).
//!
//! BinderHub comes from the user (`HUBCHAOS_BINDERHUB`); without it these are skipped with
//! that reason. It runs on a node of its own (disk, dockerd) and builds the sample repos made at
//! run time with repo2docker, offline.

use hubchaos::prelude::*;

use crate::node::on_a_node;

/// The popular repo: a build that prints its progress every second for this long.
pub const SLOW_BUILD: u32 = 30;
/// How long a request may wait for its build to start while the pool has room (a build's
/// first event comes within a second or two here).
pub const START_WITHIN: Duration = Duration::from_secs(10);
/// The build node's disk (its dockerd's data root) in these scenarios: room for every build.
pub const BUILD_DISK_MB: u64 = 2048;
/// How long BinderHub may take to close a stream after its terminal phase.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// BinderHub with `executor` on a 2 GB node, building `repos`, judged on what each build
/// ended as (ready for a repo that builds, failed with its cause for one that cannot) and the
/// checks of the build queue: the builds `starts` judges start in time (when given), every
/// stream ends and closes, the in-progress gauge settles, and the builds leave nothing behind.
pub fn binder_on_a_node(
    area: &'static str,
    name: &'static str,
    incident: &'static str,
    executor: BuildExecutor,
    repos: Vec<SampleRepo>,
    requests: Vec<BuildRequest>,
    starts: Option<BuildStarts>,
) -> Scenario {
    let expected = repos
        .iter()
        .map(|r| (r.name.clone(), if matches!(r.kind, RepoKind::Fast | RepoKind::Slow { .. }) { "ready" } else { "failed" }.to_string()))
        .collect();
    let mut s = on_a_node(area, name, incident, NodeOptions::disk_mb(BUILD_DISK_MB));
    s.needs.binderhub = true;
    s.deploy.binder = Some(BinderOptions { executor, repos, ..BinderOptions::default() });
    s.workloads = vec![Box::new(BuildStreams { requests })];
    // The slow build's 30 s, the builds queued behind it, and the gauge's 5 s to settle.
    s.duration = Duration::from_secs(SLOW_BUILD as u64 + 12);
    s.checks = vec![Box::new(BuildOutcomes { expected })];
    if let Some(starts) = starts {
        s.checks.push(Box::new(starts));
    }
    s.checks.push(Box::new(StreamsClose::within(CLOSE_WITHIN)));
    s.checks.push(Box::new(GaugeSettles::inprogress_builds(CLOSE_WITHIN)));
    s.checks.push(Box::new(BuildLeftovers));
    s
}

fn fast(n: usize) -> Vec<SampleRepo> {
    (1..=n).map(|i| SampleRepo::new(&format!("fast-{i}"), RepoKind::Fast)).collect()
}

/// Three watchers of the popular slow repo, then three other repos a few seconds apart, on a
/// BinderHub whose concurrent_build_limit is 2 (a build pool of 4 threads).
fn popular_and_others(name: &'static str, incident: &'static str, executor: BuildExecutor) -> Scenario {
    let mut repos = vec![SampleRepo::new("popular", RepoKind::Slow { seconds: SLOW_BUILD })];
    repos.extend(fast(3));
    let mut requests = vec![BuildRequest::many("popular", Duration::ZERO, 3, Duration::from_millis(500))];
    requests.extend((1..=3).map(|i| BuildRequest::one(&format!("fast-{i}"), Duration::from_secs(2 + 3 * i as u64))));
    binder_on_a_node("binder", name, incident, executor, repos, requests, Some(BuildStarts::others_than("popular", START_WITHIN)))
}

/// 2019-03-24 with build pods' thread pattern: three watchers of one slow build hold the pool
/// (two threads each while they follow it), and the other repos wait until it ends.
pub fn popular_slow_repo() -> Scenario {
    let mut s = popular_and_others(
        "popular_slow_repo",
        "2019-03-24: one popular repo that builds slowly held all of BinderHub's build threads and no \
         other repo started building. Three watchers of a 30 s build, then three other repos, on a \
         BinderHub with concurrent_build_limit 2, building as build pods do (one build per repo, \
         each watcher following it on its own threads).",
        BuildExecutor::Unit,
    );
    s.expect = Expectation::fail_on(
        &["build-start"],
        "BinderHub (main, as in 2019): every /build request submits its watch and its log follower to one \
         ThreadPoolExecutor(concurrent_build_limit * 2); watchers of a running build hold two threads each \
         until it ends, so the other repos' builds queue behind them (the 2019 postmortem's action item on \
         the pool was never done)",
    );
    s.key_figure("build-start", "slowest_start_s", "s")
}

/// The same load on upstream's LocalRepo2dockerBuild: one thread per watcher (and one build per
/// watcher), so three watchers leave the fourth thread to the other repos.
pub fn popular_slow_repo_local_executor() -> Scenario {
    let mut s = popular_and_others(
        "popular_slow_repo_local_executor",
        "The 2019 load on BinderHub's LocalRepo2dockerBuild: each watcher runs its own repo2docker on one \
         pool thread, so three watchers of the slow repo leave a thread of the four to the other repos.",
        BuildExecutor::Local,
    );
    s.expect = Expectation::fail_on(&["build-leftovers"], LOCAL_CHECKOUTS);
    s.key_figure("build-start", "slowest_start_s", "s")
}

/// Why every LocalRepo2dockerBuild scenario fails `build-leftovers`.
const LOCAL_CHECKOUTS: &str = "BinderHub (main) runs repo2docker with --no-clean: harmless in a build pod, whose \
     filesystem goes with it, but LocalRepo2dockerBuild leaves one checkout per build in TMPDIR; draft upstream \
     issue in the README";

/// A build that fails: BinderHub must say `failed`, close the stream, and count it done.
pub fn failed_build_stream_closes() -> Scenario {
    let repos = vec![SampleRepo::new("broken", RepoKind::Broken), SampleRepo::new("fast-1", RepoKind::Fast)];
    let requests =
        vec![BuildRequest::many("broken", Duration::ZERO, 2, Duration::from_secs(1)), BuildRequest::one("fast-1", Duration::from_secs(3))];
    let mut s = binder_on_a_node(
        "binder",
        "failed_build_stream_closes",
        "Builds stuck until BinderHub was restarted (2019-03-24). A repo whose build fails, watched twice, \
         and a repo that builds: every stream must end with its phase and be closed, and BinderHub's \
         in-progress gauge must come back to 0.",
        BuildExecutor::Local,
        repos,
        requests,
        Some(BuildStarts::others_than("broken", START_WITHIN)),
    );
    s.duration = Duration::from_secs(30);
    s.expect = Expectation::fail_on(
        &["streams-close", "settles:binderhub_inprogress_builds", "build-leftovers"],
        "BinderHub (main): a FAILED build status emits {\"phase\": \"failed\"} but never ends the handler's loop \
         (builder.py: only BUILT sets done), so the stream stays open and binderhub_inprogress_builds keeps +1 \
         per failed request; draft upstream issue in the README. build-leftovers: LocalRepo2dockerBuild's \
         checkouts (--no-clean), as in every scenario on that executor",
    );
    s
}

/// Three repos built one after another on a quiet BinderHub building as build pods do.
pub fn fast_repos(area: &'static str, name: &'static str, incident: &'static str) -> Scenario {
    let requests = (1..=3).map(|i| BuildRequest::one(&format!("fast-{i}"), Duration::from_secs(i as u64))).collect();
    let mut s = binder_on_a_node(area, name, incident, BuildExecutor::Unit, fast(3), requests, Some(BuildStarts::every_repo(START_WITHIN)));
    s.duration = Duration::from_secs(25);
    s
}

/// Three repos that build: every check passes (what each check looks like when it holds).
pub fn fast_repos_build() -> Scenario {
    fast_repos(
        "binder",
        "fast_repos_build",
        "Three repos built one after another on a quiet BinderHub: builds start at once, every stream ends \
         ready and is closed, the in-progress gauge is back to 0, nothing is left behind.",
    )
}

/// A build node whose docker data root is on a 300 MB disk: `large` (a build that writes
/// 400 MB) first, then a small repo; the large build fails and its cause is judged.
pub fn small_build_disk(area: &'static str, name: &'static str, incident: &'static str, large: RepoKind) -> Scenario {
    let repos = vec![SampleRepo::new("large", large), SampleRepo::new("fast-1", RepoKind::Fast)];
    let requests = vec![BuildRequest::one("large", Duration::ZERO), BuildRequest::one("fast-1", Duration::from_secs(15))];
    let mut s =
        binder_on_a_node(area, name, incident, BuildExecutor::Unit, repos, requests, Some(BuildStarts::others_than("large", START_WITHIN)));
    s.deploy.node = Some(NodeOptions::disk_mb(300));
    s.duration = Duration::from_secs(30);
    s.checks.push(Box::new(BuildFailureCause::no_space("large")));
    s
}

/// 2019-03-24: a build node without local SSD. The build node's docker data root is on a
/// 300 MB disk; a repo whose build writes 400 MB fails, and must say "no space left on device";
/// a small repo asked for afterwards must still build.
pub fn missing_ssd_build_node() -> Scenario {
    let mut s = small_build_disk(
        "binder",
        "missing_ssd_build_node",
        "2019-03-24: a node pool without local SSD; builds failed with \"no space left on device\". The build \
         node's docker data root is on a 300 MB disk and a repo's build writes 400 MB.",
        RepoKind::Large { mb: 400, quiet: false },
    );
    s.expect = Expectation::fail_on(
        &["streams-close", "settles:binderhub_inprogress_builds"],
        "BinderHub (main): the failed build's stream never closes and its in-progress count stays (as in \
         failed_build_stream_closes); the disk itself is judged by build-outcomes and failure-cause:large",
    );
    s
}

/// 2019-03-24: an image-prefix bump wiped the image cache and every repo rebuilt at once. Six
/// repos are built once, the cache is wiped, then every repo is asked for, and a moment later
/// asked for again: every build must succeed, no more than `concurrent_build_limit` at a time,
/// every stream must close and the in-progress gauge settle.
pub fn cache_wipe(area: &'static str, name: &'static str, incident: &'static str, executor: BuildExecutor) -> Scenario {
    let repos = fast(6);
    let mut requests: Vec<BuildRequest> =
        (1..=6).map(|i| BuildRequest::one(&format!("fast-{i}"), Duration::from_millis(500 * i as u64))).collect();
    for wave in [11_000, 11_700] {
        requests.extend((1..=6).map(|i| BuildRequest::one(&format!("fast-{i}"), Duration::from_millis(wave + 100 * i as u64))));
    }
    // The herd queues by design: judged on the limit, not on how soon each build starts.
    let mut s = binder_on_a_node(area, name, incident, executor, repos, requests, None);
    // The six first builds are done ~4 s in (seen: 4.1 s).
    s.faults = vec![Scheduled::new(WipeCache::under("hubchaos-binder/"), Schedule::at(Duration::from_secs(9)))];
    let limit = s.deploy.binder.as_ref().map_or(0, |b| b.concurrent_build_limit);
    s.checks.push(Box::new(BuildsInFlight { limit }));
    // The herd is built ~8 s after it asked (seen: 6-9 s), and the gauge has 5 s to settle.
    s.duration = Duration::from_secs(32);
    s
}

pub fn cache_wipe_herd() -> Scenario {
    let mut s = cache_wipe(
        "binder",
        "cache_wipe_herd",
        "2019-03-24: the image cache was wiped and every repo rebuilt at once. Six repos built, the cache \
         wiped, then every repo asked for at once, and again 0.7 s later, on a BinderHub with concurrent_build_limit 2 \
         building as build pods do.",
        BuildExecutor::Unit,
    );
    s.expect = Expectation::fail_on(
        &["builds-in-flight"],
        "BinderHub (main): concurrent_build_limit only sizes the build pool (2 x limit threads); a build's log \
         follower is queued only once its build runs, behind the herd's other submits, so the submits of 4 \
         repos take all 4 threads and 4 build units (pods) run at once; draft upstream issue in the README",
    );
    s.key_figure("builds-in-flight", "peak", "builds")
}

/// The same herd on upstream's LocalRepo2dockerBuild: one pool thread per build, so the pool of
/// `2 × concurrent_build_limit` threads runs twice the limit.
pub fn cache_wipe_herd_local_executor() -> Scenario {
    let mut s = cache_wipe(
        "binder",
        "cache_wipe_herd_local_executor",
        "The 2019 cache-wipe herd on BinderHub's LocalRepo2dockerBuild: every request runs its own \
         repo2docker on one thread of a pool sized for two threads per build.",
        BuildExecutor::Local,
    );
    s.expect = Expectation::fail_on(
        &["builds-in-flight", "build-leftovers"],
        "BinderHub (main): LocalRepo2dockerBuild takes one thread of ThreadPoolExecutor(concurrent_build_limit * 2) \
         per build (its stream_logs returns at once), so up to twice concurrent_build_limit repo2docker builds run \
         at once, one per request even for the same repo; and each leaves its checkout (--no-clean) in TMPDIR",
    );
    s.key_figure("builds-in-flight", "peak", "builds")
}

/// GitHub's API down, then out of rate limit, then slow, while a repo built before keeps being
/// asked for (and a repo never built is asked for during the outage, and after it).
pub fn github_api_down() -> Scenario {
    let repos = fast(2);
    let requests = vec![
        BuildRequest::one("fast-1", Duration::from_secs(1)),
        // Built: BinderHub asks the API again (a 304 for its ETag), finds the image, ready.
        BuildRequest::one("fast-1", Duration::from_secs(6)),
        BuildRequest::one("fast-1", Duration::from_secs(12)),
        BuildRequest::one("fast-2", Duration::from_secs(13)),
        BuildRequest::one("fast-1", Duration::from_secs(20)),
        BuildRequest::one("fast-1", Duration::from_secs(28)),
        BuildRequest::one("fast-2", Duration::from_secs(34)),
    ];
    let mut s = binder_on_a_node(
        "binder",
        "github_api_down",
        "GitHub's API is down (503) for 6 s, then answers 403 rate-limited for 6 s, then 3 s late for 6 s, \
         while users keep launching a repo BinderHub built before the outage; a repo never built is asked \
         for during the outage and after it. Built repos must keep launching; a build that cannot resolve \
         its ref must say why.",
        BuildExecutor::Unit,
        repos,
        requests,
        None,
    );
    if let Some(b) = s.deploy.binder.as_mut() {
        b.source = RepoSource::GitHub;
    }
    let window = |at: u64| Schedule::at(Duration::from_secs(at)).held_for(Duration::from_secs(6));
    s.faults = vec![
        Scheduled::new(GitHubApiFault::outage(), window(10)),
        Scheduled::new(GitHubApiFault::rate_limited(), window(18)),
        Scheduled::new(GitHubApiFault::slow(Duration::from_secs(3)), window(26)),
    ];
    // Outcomes are judged per request here: fast-2 must fail during the outage and build after.
    s.checks.retain(|c| c.name() != "build-outcomes");
    s.checks.insert(0, Box::new(BuiltReposLaunch));
    s.checks.push(Box::new(BuildFailureCause { repo: "fast-2".into(), cause: "503|Service Unavailable".into() }));
    // The last request's build ends ~37 s in; the gauge has 5 s to settle.
    s.duration = Duration::from_secs(44);
    s.expect = Expectation::fail_on(
        &["built-repos-launch"],
        "BinderHub (main): GitHubRepoProvider.get_resolved_ref asks the API on every request, before the image \
         is looked up, and uses its cached sha only on a 304, never when the API fails: a built repo cannot launch \
         while GitHub's API is down or rate-limited; draft upstream issue in the README",
    );
    s
}

/// The popular repo's build in a storm: shorter than [`SLOW_BUILD`], since on
/// LocalRepo2dockerBuild every one of its requests builds it again.
pub const STORM_SLOW_BUILD: u32 = 25;

/// 2019-03-24 as a crowd: after the cache wipe, 16 users in 15 s launch 8 repos of Zipf
/// popularity (exponent 1), the most popular one building slowly. Judged on how soon the other
/// repos' builds start (p50/p95 as figures), and on every stream ending.
fn storm(name: &'static str, incident: &'static str, executor: BuildExecutor) -> Scenario {
    let mut repos = vec![SampleRepo::new("popular", RepoKind::Slow { seconds: STORM_SLOW_BUILD })];
    repos.extend(fast(7));
    let storm = LaunchStorm {
        repos: repos.iter().map(|r| r.name.clone()).collect(),
        requests: 16,
        from: Duration::from_secs(1),
        over: Duration::from_secs(15),
        exponent: 1.0,
        // The same storm every run, and for both executors.
        seed: Some(2019),
    };
    let mut s =
        binder_on_a_node("binder", name, incident, executor, repos, Vec::new(), Some(BuildStarts::others_than("popular", START_WITHIN)));
    s.workloads = vec![Box::new(storm)];
    s.duration = Duration::from_secs(60);
    // ~2 minutes for the pair: `make test-chaos`, keeping the binder scenarios of `make test`
    // within 8 minutes.
    s.long = true;
    s.key_figure("build-start", "p95_start_s", "s")
}

pub fn launch_storm() -> Scenario {
    let mut s = storm(
        "launch_storm",
        "2019-03-24: the cache wiped, a crowd launches eight repos of Zipf popularity, the most popular one \
         building for 25 s, on a BinderHub with concurrent_build_limit 2 building as build pods do.",
        BuildExecutor::Unit,
    );
    s.expect = Expectation::fail_on(
        &["build-start"],
        "BinderHub (main): the popular repo's watchers hold the build pool's threads (two each) while its build \
         runs, so other repos' builds wait for it (as popular_slow_repo)",
    );
    s
}

pub fn launch_storm_local_executor() -> Scenario {
    let mut s = storm(
        "launch_storm_local_executor",
        "The launch storm on BinderHub's LocalRepo2dockerBuild: every request runs its own repo2docker, \
         the popular repo's too.",
        BuildExecutor::Local,
    );
    s.expect = Expectation::fail_on(
        &["build-start", "build-leftovers"],
        "BinderHub (main): LocalRepo2dockerBuild builds the popular repo again for each of its requests, each on a \
         pool thread for the whole build, so four requests for it fill the pool of 4 and the next repo waits; and \
         every build leaves its checkout (--no-clean) in TMPDIR; draft upstream issues in the README",
    );
    s
}
