//! The runner: one scenario, one run, start to finish. The lifecycle, written once:
//!
//! 1. resolve the backend and its prerequisites (a missing one => Skipped with the reason);
//!    sweep what abandoned runs left behind; install the pinned components if needed;
//! 2. create the run dir, seed, tokens, ports; write `scenario.json`;
//! 3. deploy the components and await each one's readiness, bounded: the node (disk,
//!    dockerd, recorder on its socket, image cleaner), then the hub stack (its database seeded
//!    first, for faults that need it: proxy, hub, recorder in front of the hub);
//! 4. steady state before (fail => Aborted: the environment was not healthy);
//! 5. start samplers; open the workload window; inject the faults due at its start (the setup:
//!    users that piled up, servers running); snapshot the hub's state; start the culler (it
//!    arrives at a hub where users piled up, as in 2018); then start the workloads and the rest
//!    of the fault schedule, all under one cancellation token, timed from the end of the setup;
//! 6. stop at the deadline (`duration` after the setup, or earlier when every workload has
//!    finished its bounded work; SIGINT/SIGTERM => Interrupted);
//!    snapshot the hub's state;
//! 7. heal every live fault;
//! 8. steady state after, within the recovery window (fail => Deviated); keep sampling for
//!    `sample_after`, then stop the samplers;
//! 9. collect logs (each component's output is already in `logs/`);
//! 10. run the checks on the history (a check that errors => Unknown);
//! 11. write the report (`outcome.json`, `summary.md`, `resources.svg`, `rate.svg`,
//!     `latency.svg`, the `latest` link);
//! 12. tear down everything (unless HUBCHAOS_KEEP=1): the backend in reverse deploy order, then
//!     the cleanup stack in reverse, each undo with its own timeout, errors collected not
//!     thrown; then anything still carrying the run's id; then the run's marker.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::local::LocalBackend;
use crate::backend::Backend;
use crate::check::{run_check, CheckResult};
use crate::component::node::deploy_node;
use crate::deploy::{deploy_culler, deploy_hub_stack, DeployTimings};
use crate::env::Env;
use crate::fault::{DeployPlan, FaultGuard};
use crate::observe::history::{Event, Recorder, SETUP_DONE, WORKLOAD_START, WORKLOAD_STOP};
use crate::observe::hub_state::HubStateSampler;
use crate::observe::procfs::ProcSampler;
use crate::observe::prom::PromSampler;
use crate::observe::residue::ResidueSampler;
use crate::observe::samples::SampleSink;
use crate::outcome::Outcome;
use crate::probe::{await_probe, Awaited, Probe};
use crate::profile::Profile;
use crate::report::run_dir::RunDir;
use crate::scenario::Scenario;
use crate::sweep::{end_run_processes, sweep_abandoned, RunMarker, SweepReport};
use crate::toolchain::{EnsureOptions, Pins, Toolchain};

/// How often samplers scrape.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How long steady-state probes get BEFORE the run (the stack was just declared ready).
const STEADY_BEFORE_WITHIN: Duration = Duration::from_secs(30);
/// Each undo step of the teardown.
const UNDO_WITHIN: Duration = Duration::from_secs(20);
/// How long a workload may take to notice cancellation.
const WORKLOAD_STOP_WITHIN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: Option<Profile>,
    /// HUBCHAOS_KEEP=1: leave the deployment running (the next run or `hubchaos sweep` ends it).
    pub keep: bool,
    pub seed: Option<u64>,
    /// Show install progress.
    pub progress: bool,
}

impl RunOptions {
    /// From the environment: HUBCHAOS_PROFILE, HUBCHAOS_KEEP, HUBCHAOS_SEED.
    pub fn from_env() -> anyhow::Result<Self> {
        let profile = Profile::from_cli_or_env(None)?;
        let keep = std::env::var("HUBCHAOS_KEEP").map(|v| v == "1" || v == "true").unwrap_or(false);
        let seed = match std::env::var("HUBCHAOS_SEED") {
            Ok(s) => Some(s.parse().with_context(|| format!("HUBCHAOS_SEED={s:?} is not a number: unset it or give an integer"))?),
            Err(_) => None,
        };
        Ok(Self { profile, keep, seed, progress: false })
    }
}

/// Everything a finished run reports (also written as `outcome.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub test_name: String,
    pub outcome: Outcome,
    pub run_dir: PathBuf,
    pub checks: Vec<CheckResult>,
    pub key_figure: Option<String>,
    pub deploy: Option<DeployTimings>,
    pub restarts: Vec<(String, u32)>,
    pub teardown_errors: Vec<String>,
    pub wall_s: f64,
    /// Whether the run is what the scenario expects (`None`: as expected; `Some(why)`: the
    /// test fails, and why). An expected failure is a passing test.
    pub unexpected: Option<String>,
}

/// What the lifecycle (steps 3-10) concluded, before the report and teardown.
#[derive(Default)]
struct Lifecycle {
    outcome: Option<Outcome>,
    checks: Vec<CheckResult>,
    deploy: Option<DeployTimings>,
    deviated: Option<String>,
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Step 1 for `needs`: the reason to skip, if any. Cheap (no installs): used for `--list`.
pub fn missing_prerequisite(scenario: &Scenario) -> Option<String> {
    if scenario.needs.root && !is_root() {
        return Some(crate::component::node_disk::requires_root().err().unwrap_or_default());
    }
    if scenario.needs.binderhub && std::env::var_os("HUBCHAOS_BINDERHUB").is_none() {
        return Some("needs BinderHub: set HUBCHAOS_BINDERHUB to a wheel, a source dir or a pip spec".into());
    }
    None
}

/// Run a scenario on the local backend on a fresh tokio runtime (for test trials and the CLI).
pub fn run_blocking(scenario: Scenario, opts: RunOptions) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    rt.block_on(run(scenario, opts))
}

pub async fn run(scenario: Scenario, opts: RunOptions) -> RunReport {
    let wall = Instant::now();
    let test_name = scenario.test_name("local");
    let run_dir = match RunDir::create(&scenario) {
        Ok(d) => d,
        Err(e) => return early_report(&test_name, Outcome::Errored(format!("creating the run dir: {e:#}")), PathBuf::new(), wall),
    };

    // 1. prerequisites, sweep, toolchain.
    if let Some(reason) = missing_prerequisite(&scenario) {
        return finish(&run_dir, early_report(&test_name, Outcome::Skipped(reason), run_dir.path.clone(), wall));
    }
    if scenario.needs.docker {
        // Installs Debian's docker.io when root and missing; a reason to skip otherwise.
        match tokio::task::spawn_blocking(crate::component::dockerd::ensure_docker_installed).await {
            Ok(Ok(_)) => {}
            Ok(Err(reason)) => return finish(&run_dir, early_report(&test_name, Outcome::Skipped(reason), run_dir.path.clone(), wall)),
            Err(e) => return finish(&run_dir, early_report(&test_name, Outcome::Errored(format!("{e}")), run_dir.path.clone(), wall)),
        }
    }
    let swept = sweep_abandoned();
    if !swept.is_empty() {
        eprintln!("hubchaos: {}", swept.describe());
    }
    let toolchain = match ensure_toolchain(opts.profile.as_ref(), opts.progress).await {
        Ok(t) => t,
        Err(e) => return finish(&run_dir, early_report(&test_name, Outcome::Errored(format!("{e:#}")), run_dir.path.clone(), wall)),
    };

    // 2. run dir, seed, marker, recorder.
    let clock = Instant::now();
    let seed = opts.seed.unwrap_or_else(rand::random);
    let marker = match RunMarker::create(&run_dir.marker_id, &run_dir.path) {
        Ok(m) => Arc::new(Mutex::new(m)),
        Err(e) => {
            return finish(
                &run_dir,
                early_report(&test_name, Outcome::Errored(format!("writing the run marker: {e}")), run_dir.path.clone(), wall),
            )
        }
    };
    let (recorder, samples) =
        match (Recorder::to_file(&run_dir.path.join("history.jsonl"), clock), SampleSink::to_file(&run_dir.path.join("samples.jsonl"))) {
            (Ok(r), Ok(s)) => (r, s),
            (Err(e), _) | (_, Err(e)) => {
                return finish(
                    &run_dir,
                    early_report(&test_name, Outcome::Errored(format!("opening the history: {e}")), run_dir.path.clone(), wall),
                )
            }
        };
    let _ = std::fs::write(run_dir.path.join("scenario.json"), serde_json::to_vec_pretty(&scenario.describe()).unwrap_or_default());
    let backend = Arc::new(LocalBackend::new(&run_dir.marker_id, run_dir.path.join("logs"), recorder.clone(), marker.clone()));
    let cancel = CancellationToken::new();
    let env = Env::new(
        run_dir.marker_id.clone(),
        run_dir.path.clone(),
        seed,
        Arc::new(backend.clone()),
        recorder.clone(),
        samples.clone(),
        cancel.clone(),
    );
    recorder.phase("run-start", format!("seed {seed}"));

    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signals = spawn_signal_watch(cancel.clone(), interrupted.clone());

    // 3-10.
    let lifecycle = lifecycle(&scenario, &env, &marker, &toolchain, opts.profile.as_ref()).await;
    let mut outcome = lifecycle.outcome.clone().unwrap_or_else(|| Outcome::from_checks(&lifecycle.checks, lifecycle.deviated.clone()));
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        outcome = Outcome::Interrupted;
    }

    let restarts = backend.components().iter().filter_map(|c| backend.status(c)).map(|s| (s.name, s.restarts)).collect();

    // 12. teardown (before the report, so teardown errors are in it).
    let teardown_errors = if opts.keep {
        eprintln!("hubchaos: HUBCHAOS_KEEP=1: leaving the deployment running; `hubchaos sweep` ends it");
        Vec::new()
    } else {
        teardown(&env, &backend, &marker).await
    };
    signals.abort();

    let key_figure = scenario.key_figure.as_ref().and_then(|k| {
        lifecycle
            .checks
            .iter()
            .find(|c| c.check == k.check)
            .and_then(|c| c.figures.get(&k.figure))
            .map(|v| format!("{k_figure} {v:.2} {unit}", k_figure = k.figure, unit = k.unit))
    });
    let report = RunReport {
        test_name,
        outcome,
        run_dir: run_dir.path.clone(),
        checks: lifecycle.checks,
        key_figure,
        deploy: lifecycle.deploy,
        restarts,
        teardown_errors,
        wall_s: wall.elapsed().as_secs_f64(),
        unexpected: None,
    };
    let report = RunReport { unexpected: crate::outcome::judge(&scenario.expect, &report.outcome, &report.checks).err(), ..report };
    // 11. report.
    let history = recorder.history().with_samples(samples.all());
    if let Err(e) = crate::report::plot::write_plots(&run_dir.path, &history) {
        eprintln!("hubchaos: drawing the plots failed: {e:#}");
    }
    if let Err(e) = crate::report::summary::write(&run_dir, &scenario, &report, &history) {
        eprintln!("hubchaos: writing the report failed: {e:#}");
    }
    finish(&run_dir, report)
}

fn early_report(test_name: &str, outcome: Outcome, run_dir: PathBuf, wall: Instant) -> RunReport {
    RunReport {
        test_name: test_name.into(),
        outcome,
        run_dir,
        checks: Vec::new(),
        key_figure: None,
        deploy: None,
        restarts: Vec::new(),
        teardown_errors: Vec::new(),
        wall_s: wall.elapsed().as_secs_f64(),
        unexpected: None,
    }
}

fn finish(run_dir: &RunDir, report: RunReport) -> RunReport {
    let _ = std::fs::write(run_dir.path.join("outcome.json"), serde_json::to_vec_pretty(&report).unwrap_or_default());
    run_dir.link_latest();
    report
}

async fn ensure_toolchain(profile: Option<&Profile>, progress: bool) -> anyhow::Result<Toolchain> {
    let base = Pins::load_default()?;
    let pins = match profile {
        Some(p) => p.pins(&base),
        None => base,
    };
    let toolchain = tokio::task::spawn_blocking(move || Toolchain::ensure(&pins, EnsureOptions { progress })).await??;
    Ok(toolchain)
}

/// SIGINT / SIGTERM cancel the run (it then heals, tears down and reports Interrupted);
/// a second signal exits at once (the run's marker lets the next run sweep what is left).
fn spawn_signal_watch(cancel: CancellationToken, interrupted: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else { return };
        for n in 0..2 {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                eprintln!("hubchaos: interrupted: healing faults and tearing down (again to exit at once)");
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    })
}

async fn steady(probes: &[Box<dyn Probe>], env: &Env, within: Duration) -> Result<Duration, String> {
    if probes.is_empty() {
        return Ok(Duration::ZERO);
    }
    let started = Instant::now();
    for p in probes {
        let left = within.saturating_sub(started.elapsed());
        match await_probe(p.as_ref(), env, left, Duration::from_millis(500)).await {
            Awaited::Held(..) => {}
            Awaited::TimedOut(r) => return Err(format!("{} did not hold within {within:?}: {}", p.describe(), r.detail)),
            Awaited::Cancelled => return Err("cancelled".into()),
        }
    }
    Ok(started.elapsed())
}

async fn lifecycle(
    scenario: &Scenario,
    env: &Env,
    marker: &Arc<Mutex<RunMarker>>,
    toolchain: &Toolchain,
    profile: Option<&Profile>,
) -> Lifecycle {
    let mut out = Lifecycle::default();
    let rec = &env.recorder;

    // 3. deploy.
    let mut plan = DeployPlan::default();
    for f in &scenario.faults {
        if let Err(e) = f.fault.before_deploy(&mut plan) {
            out.outcome = Some(Outcome::Errored(format!("{} before deploy: {e:#}", f.fault.kind())));
            return out;
        }
    }
    let node_stop = env.cancel.child_token();
    let mut node = None;
    if let Some(options) = &scenario.deploy.node {
        let cleaner = toolchain.venv_bin("docker-image-cleaner");
        match deploy_node(env, marker, options, &plan, &cleaner, profile, node_stop.clone()).await {
            Ok(n) => node = Some(n),
            Err(e) => {
                out.outcome = Some(Outcome::Errored(format!("deploying the node failed: {e:#}")));
                return out;
            }
        }
    }
    if let Some(hub) = &scenario.deploy.hub {
        match deploy_hub_stack(env, hub, &plan, toolchain, profile).await {
            Ok(t) => {
                rec.phase("deployed", serde_json::to_string(&t).unwrap_or_default());
                out.deploy = Some(t);
            }
            Err(e) => {
                out.outcome = Some(Outcome::Errored(format!("deploy failed: {e:#}")));
                return out;
            }
        }
    }
    if env.cancel.is_cancelled() {
        return out;
    }

    // 4. steady state before.
    if let Err(why) = steady(&scenario.steady_state.before, env, STEADY_BEFORE_WITHIN).await {
        rec.phase("steady-state-before", format!("failed: {why}"));
        out.outcome = Some(Outcome::Aborted(why));
        return out;
    }
    rec.phase("steady-state-before", "held");

    // 5. samplers, faults, workloads.
    let samplers_stop = env.cancel.child_token();
    let mut samplers = vec![tokio::spawn(ProcSampler { every: SAMPLE_EVERY }.run(
        env.backend.clone(),
        rec.clone(),
        env.samples.clone(),
        samplers_stop.clone(),
    ))];
    if let Some(node) = &node {
        let (disk, docker) = node.samplers(SAMPLE_EVERY);
        samplers.push(tokio::spawn(disk.run(rec.clone(), env.samples.clone(), samplers_stop.clone())));
        samplers.push(tokio::spawn(docker.run(rec.clone(), env.samples.clone(), samplers_stop.clone())));
    }
    if let Ok(hub) = env.hub() {
        samplers.push(tokio::spawn(
            PromSampler {
                component: "hub".into(),
                url: format!("http://{}/hub/metrics", hub.hub_addr),
                token: Some(hub.harness_token.clone()),
                every: SAMPLE_EVERY,
            }
            .run(rec.clone(), env.samples.clone(), samplers_stop.clone()),
        ));
        samplers.push(tokio::spawn(HubStateSampler { hub: hub.hub_addr, token: hub.harness_token.clone(), every: SAMPLE_EVERY * 2 }.run(
            rec.clone(),
            env.samples.clone(),
            samplers_stop.clone(),
        )));
        samplers.push(tokio::spawn(ResidueSampler::local_hub(&env.run_dir, SAMPLE_EVERY).run(
            rec.clone(),
            env.samples.clone(),
            samplers_stop.clone(),
        )));
    }
    rec.phase(WORKLOAD_START, "");
    let window_start = Instant::now();
    let guards: Arc<tokio::sync::Mutex<Vec<FaultGuard>>> = Arc::default();
    let mut fault_tasks = Vec::new();
    let mut errors = Vec::new();
    let window_stop = env.cancel.child_token();
    // Every firing, drawn once from the seeded rng (jitter is reproducible).
    let mut firings: Vec<(Duration, &crate::fault::Scheduled)> = Vec::new();
    for scheduled in &scenario.faults {
        let at = scheduled.schedule.firings(scenario.duration, &mut *env.rng.lock().unwrap());
        firings.extend(at.into_iter().map(|a| (a, scheduled)));
    }
    firings.sort_by_key(|(at, _)| *at);
    let (due_now, later): (Vec<_>, Vec<_>) = firings.into_iter().partition(|(at, _)| at.is_zero());
    for (_, scheduled) in due_now {
        // Due at the start: in place before the workloads begin (they may need its state).
        match scheduled.fault.inject(env).await {
            Ok(g) => schedule_heal(g, scheduled.schedule.hold, &guards, &mut fault_tasks, &window_stop),
            Err(e) => errors.push(format!("{} on {}: {e:#}", scheduled.fault.kind(), scheduled.fault.target())),
        }
    }
    if !errors.is_empty() {
        out.outcome = Some(Outcome::Errored(format!("injecting faults failed: {}", errors.join("; "))));
    }
    // The faults due at the start are the setup (users that piled up, servers running): the
    // rest of the schedule and the deadline count from when it is in place.
    // The state the window starts from (the snapshot precedes the phase marker, so checks that
    // look for "the last snapshot at or before the window start" find it).
    if let Ok(api) = env.hub_api("harness").await {
        match api.snapshot(SETUP_DONE).await {
            Ok(s) => rec.record(Event::Snapshot(s)),
            Err(e) => tracing::warn!("snapshot after the setup failed: {e:#}"),
        }
    }
    rec.phase(SETUP_DONE, format!("after {:.1} s", window_start.elapsed().as_secs_f64()));
    let window_start = Instant::now();
    if let (Some(culler), None) = (&scenario.deploy.culler, &out.outcome) {
        match deploy_culler(env, culler, toolchain, profile).await {
            Ok(t) => {
                if let Some(d) = out.deploy.as_mut() {
                    d.culler_ready_s = t;
                    d.stack_ready_s += t;
                }
            }
            Err(e) => out.outcome = Some(Outcome::Errored(format!("deploying the culler failed: {e:#}"))),
        }
    }

    // Bounded workloads (N cycles) may all finish before the deadline: the window then closes.
    let all_done = Arc::new(tokio::sync::Notify::new());
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workload_futs = Vec::new();
    if out.outcome.is_none() {
        for w in &scenario.workloads {
            let stop = window_stop.clone();
            let (all_done, remaining) = (all_done.clone(), remaining.clone());
            remaining.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            workload_futs.push(async move {
                let result = w.run(env, stop).await;
                if remaining.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    all_done.notify_one();
                }
                (w.name(), result)
            });
        }
    }
    let has_workloads = !workload_futs.is_empty();
    let timed_faults = async {
        let mut errs = Vec::new();
        for (at, scheduled) in later {
            let wait = at.saturating_sub(window_start.elapsed());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = window_stop.cancelled() => break,
            }
            match scheduled.fault.inject(env).await {
                Ok(g) => {
                    let mut tasks = Vec::new();
                    schedule_heal(g, scheduled.schedule.hold, &guards, &mut tasks, &window_stop);
                    for t in tasks {
                        let _ = t.await;
                    }
                }
                Err(e) => errs.push(format!("{} on {}: {e:#}", scheduled.fault.kind(), scheduled.fault.target())),
            }
        }
        errs
    };
    let deadline = async {
        if out.outcome.is_none() {
            tokio::select! {
                _ = tokio::time::sleep(scenario.duration.saturating_sub(window_start.elapsed())) => {}
                _ = env.cancel.cancelled() => {}
                _ = all_done.notified(), if has_workloads => {}
            }
        }
        window_stop.cancel();
    };
    let workloads = async {
        let results = futures::future::join_all(workload_futs).await;
        results.into_iter().filter_map(|(name, r)| r.err().map(|e| format!("workload {name}: {e:#}"))).collect::<Vec<_>>()
    };
    // 6. run until the deadline; workloads and timed faults stop with the window.
    let (_, fault_errs, workload_errs) = tokio::join!(deadline, timed_faults, async {
        let r = tokio::time::timeout(scenario.duration + WORKLOAD_STOP_WITHIN * 2, workloads).await;
        r.unwrap_or_else(|_| vec!["workloads did not stop in time".into()])
    });
    rec.phase(WORKLOAD_STOP, format!("after {:.1} s", window_start.elapsed().as_secs_f64()));
    if let Ok(api) = env.hub_api("harness").await {
        match api.snapshot("end").await {
            Ok(s) => rec.record(Event::Snapshot(s)),
            Err(e) => tracing::warn!("snapshot at the end failed: {e:#}"),
        }
    }
    let run_errors: Vec<String> = fault_errs.into_iter().chain(workload_errs).collect();
    if out.outcome.is_none() && !run_errors.is_empty() && !env.cancel.is_cancelled() {
        out.outcome = Some(Outcome::Errored(run_errors.join("; ")));
    }

    // 7. heal every live fault.
    for t in fault_tasks {
        let _ = t.await;
    }
    for g in guards.lock().await.drain(..) {
        let what = format!("{} on {}", g.kind(), g.target());
        if let Err(e) = g.heal().await {
            tracing::warn!("healing {what} failed: {e:#}");
        }
    }

    // 8. steady state after.
    if !env.cancel.is_cancelled() {
        match steady(&scenario.steady_state.after, env, scenario.steady_state.recovery).await {
            Ok(took) => rec.phase("steady-state-after", format!("held after {:.1} s", took.as_secs_f64())),
            Err(why) => {
                rec.phase("steady-state-after", format!("failed: {why}"));
                out.deviated = Some(why);
            }
        }
    }
    // Resource curves after the window (returns-to-baseline needs them), bounded.
    if !scenario.sample_after.is_zero() && !env.cancel.is_cancelled() {
        tokio::select! {
            _ = tokio::time::sleep(scenario.sample_after) => {}
            _ = env.cancel.cancelled() => {}
        }
    }
    samplers_stop.cancel();
    node_stop.cancel();
    for s in samplers {
        let _ = s.await;
    }

    // 9. logs are in logs/ already. 10. checks.
    let history = rec.history().with_samples(env.samples.all());
    out.checks = scenario.checks.iter().map(|c| run_check(c.as_ref(), &history)).collect();
    out
}

/// Keep the guard until the window closes, or heal it after `hold`.
fn schedule_heal(
    guard: FaultGuard,
    hold: Option<Duration>,
    guards: &Arc<tokio::sync::Mutex<Vec<FaultGuard>>>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    window_stop: &CancellationToken,
) {
    match hold {
        None => {
            let guards = guards.clone();
            tasks.push(tokio::spawn(async move { guards.lock().await.push(guard) }));
        }
        Some(hold) => {
            let stop = window_stop.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(hold) => {}
                    _ = stop.cancelled() => {}
                }
                let _ = guard.heal().await;
            }));
        }
    }
}

async fn teardown(env: &Env, backend: &Arc<LocalBackend>, marker: &Arc<Mutex<RunMarker>>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Ok(hub) = env.hub() {
        hub.recorder.shutdown().await;
    }
    errors.extend(Backend::teardown(backend).await);
    errors.extend(env.cleanup.drain(UNDO_WITHIN).await);
    let mut swept = SweepReport::default();
    end_run_processes(&env.run_id, &mut swept);
    if !swept.processes_ended.is_empty() {
        errors.push(format!(
            "{} process(es) of the run outlived their component and were killed: {:?}",
            swept.processes_ended.len(),
            swept.processes_ended
        ));
    }
    errors.extend(swept.errors);
    if let Err(e) = marker.lock().unwrap().remove() {
        errors.push(format!("removing the run marker: {e}"));
    }
    errors
}
