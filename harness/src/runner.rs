//! The runner: one scenario, one run, on any backend, start to finish. The lifecycle, written
//! once:
//!
//! 1. create the run dir; ask the backend whether it can run the scenario here
//!    ([`BackendKind::cannot_run`]; no => Skipped with the reason);
//! 2. seed, history and samples files; write `scenario.json`; open the [`Session`]:
//!    [`BackendKind::open`] sweeps what abandoned runs left behind and installs what is missing
//!    (on `local`: docker when needed, the pinned components; a missing prerequisite found there
//!    => Skipped), and the run's [`Env`] is made around the live backend;
//! 3. deploy what the scenario declares with the faults' deploy plan, each component awaited
//!    until ready, bounded ([`Backend::deploy`]; on `local`: the node, then the hub stack);
//! 4. steady state before (fail => Aborted: the environment was not healthy);
//! 5. start the samplers (the backend's and the hub's); open the workload window; inject the
//!    faults due at its start (the setup: users that piled up, servers running); snapshot the
//!    hub's state; deploy what arrives after the setup (the culler: it arrives at a hub where
//!    users piled up, as in 2018); then start the workloads and the rest of the fault
//!    schedule, each schedule on its own, all under one cancellation token, timed from the
//!    end of the setup;
//! 6. stop at the deadline (`duration` after the setup, or earlier when every workload has
//!    finished its bounded work; SIGINT/SIGTERM => Interrupted); snapshot the hub's state;
//! 7. heal every live fault;
//! 8. steady state after, within the recovery window (fail => Deviated); keep sampling for
//!    `sample_after`, then stop the samplers;
//! 9. collect logs (each component's output is already in `logs/`); read the hub's requests
//!    from its log once ([`Backend::hub_log`]), into the history apart from the recorder's
//!    ([`crate::observe::hub_log`]);
//! 10. run the checks on the history (a check that errors => Unknown);
//! 11. tear down (unless HUBCHAOS_KEEP=1; before the report, so its errors are in it): close
//!     the request sources, stop the components in reverse deploy order, drain the cleanup
//!     stack in reverse (each undo with its own timeout, errors collected not thrown), then
//!     release what is left of the run (stray processes carrying its id, its marker);
//! 12. write the report (`outcome.json`, `summary.md`, the plots, the `latest` link).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendError, BackendKind, DeployTimings, RunContext};
use crate::check::{run_check, CheckResult};
use crate::env::Env;
use crate::fault::{DeployPlan, FaultGuard, Scheduled};
use crate::observe::history::{Event, Recorder, SETUP_DONE, WORKLOAD_START, WORKLOAD_STOP};
use crate::observe::hub_log;
use crate::observe::hub_state::HubStateSampler;
use crate::observe::prom::PromSampler;
use crate::observe::samples::SampleSink;
use crate::outcome::Outcome;
use crate::probe::{await_probe, Awaited, Probe};
use crate::profile::Profile;
use crate::report::run_dir::RunDir;
use crate::scenario::{Needs, Scenario};

/// How often samplers scrape.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How long steady-state probes get BEFORE the run (the stack was just declared ready).
#[cfg(not(test))]
const STEADY_BEFORE_WITHIN: Duration = Duration::from_secs(30);
/// The runner's own tests run against a fake backend whose probes answer at once.
#[cfg(test)]
const STEADY_BEFORE_WITHIN: Duration = Duration::from_secs(1);
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
    /// The run store (`None`: `target/hubchaos/runs` or `HUBCHAOS_RUNS`).
    pub runs: Option<PathBuf>,
    /// Cancelling it interrupts the run as SIGINT does (for callers that embed the runner).
    pub cancel: Option<CancellationToken>,
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
        Ok(Self { profile, keep, seed, progress: false, runs: None, cancel: None })
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

/// Run a scenario on a fresh tokio runtime (for test trials and the CLI).
pub fn run_blocking(scenario: Scenario, backend: &dyn BackendKind, opts: RunOptions) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    rt.block_on(run(scenario, backend, opts))
}

/// A backend opened for one run, with the run's [`Env`]: lifecycle steps 1-2 and 11, written
/// once for the runner, the benchmarks and the live tests.
pub struct Session {
    pub env: Env,
    pub backend: Arc<dyn Backend>,
}

/// What a session needs besides the backend.
pub struct SessionOptions {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub seed: u64,
    pub recorder: Recorder,
    pub samples: SampleSink,
    pub profile: Option<Profile>,
    pub progress: bool,
    pub cancel: CancellationToken,
}

impl Session {
    /// Open `kind` for a run that needs `needs` (step 1) and make the run's [`Env`] (step 2).
    pub async fn open(kind: &dyn BackendKind, needs: &Needs, o: SessionOptions) -> Result<Session, BackendError> {
        let ctx = RunContext {
            run_id: o.run_id.clone(),
            run_dir: o.run_dir.clone(),
            recorder: o.recorder.clone(),
            profile: o.profile,
            progress: o.progress,
        };
        let backend = kind.open(needs, ctx).await?;
        let env = Env::new(o.run_id, o.run_dir, o.seed, backend.clone(), o.recorder, o.samples, o.cancel);
        Ok(Session { env, backend })
    }

    /// Step 11: close the request sources (their last requests recorded), stop the components
    /// in reverse deploy order, drain the cleanup stack in reverse (each undo bounded), then
    /// release what is left of the run. Errors are collected, not thrown.
    pub async fn close(&self) -> Vec<String> {
        self.env.close_request_sources().await;
        let mut errors = self.backend.stop_components().await;
        errors.extend(self.env.cleanup.drain(UNDO_WITHIN).await);
        errors.extend(self.backend.release().await);
        errors
    }
}

pub async fn run(scenario: Scenario, kind: &dyn BackendKind, opts: RunOptions) -> RunReport {
    let wall = Instant::now();
    let test_name = scenario.test_name(kind.name());
    let runs = opts.runs.clone().unwrap_or_else(crate::paths::runs_root);
    let run_dir = match RunDir::create_in(&runs, kind.name(), &scenario) {
        Ok(d) => d,
        Err(e) => return early_report(&test_name, Outcome::Errored(format!("creating the run dir: {e:#}")), PathBuf::new(), wall),
    };
    let early = |outcome: Outcome| finish(&run_dir, early_report(&test_name, outcome, run_dir.path.clone(), wall));

    // 1. prerequisites, cheaply first.
    if let Some(reason) = kind.cannot_run(&scenario) {
        return early(Outcome::Skipped(reason));
    }

    // 2. seed, history, samples, the declaration; then the backend (installs) and the env.
    let clock = Instant::now();
    let seed = opts.seed.unwrap_or_else(rand::random);
    let (recorder, samples) =
        match (Recorder::to_file(&run_dir.path.join("history.jsonl"), clock), SampleSink::to_file(&run_dir.path.join("samples.jsonl"))) {
            (Ok(r), Ok(s)) => (r, s),
            (Err(e), _) | (_, Err(e)) => return early(Outcome::Errored(format!("opening the history: {e}"))),
        };
    let _ = std::fs::write(
        run_dir.path.join("scenario.json"),
        serde_json::to_vec_pretty(&scenario.describe_with_profile(opts.profile.as_ref())).unwrap_or_default(),
    );
    let cancel = opts.cancel.clone().unwrap_or_default();
    let session = Session::open(
        kind,
        &scenario.needs,
        SessionOptions {
            run_id: run_dir.marker_id.clone(),
            run_dir: run_dir.path.clone(),
            seed,
            recorder: recorder.clone(),
            samples: samples.clone(),
            profile: opts.profile.clone(),
            progress: opts.progress,
            cancel: cancel.clone(),
        },
    )
    .await;
    let session = match session {
        Ok(s) => s,
        Err(BackendError::Missing(reason)) => return early(Outcome::Skipped(reason)),
        Err(e) => return early(Outcome::Errored(format!("{e:#}"))),
    };
    let env = &session.env;
    // The wall-clock time of t = 0, for whoever lines other programs' logs up with the history.
    recorder.phase("run-start", format!("seed {seed}; t = 0 at {}", humantime::format_rfc3339_millis(recorder.wall_start())));

    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signals = spawn_signal_watch(cancel.clone(), interrupted.clone());

    // 3-10.
    let lifecycle = lifecycle(&scenario, env, session.backend.as_ref()).await;
    let mut outcome = lifecycle.outcome.clone().unwrap_or_else(|| Outcome::from_checks(&lifecycle.checks, lifecycle.deviated.clone()));
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) || opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
        outcome = Outcome::Interrupted;
    }

    let backend = &session.backend;
    let restarts = backend.components().iter().filter_map(|c| backend.status(c)).map(|s| (s.name, s.restarts)).collect();

    // 11. teardown (before the report, so teardown errors are in it).
    let teardown_errors = if opts.keep {
        eprintln!("hubchaos: HUBCHAOS_KEEP=1: leaving the deployment running; `hubchaos sweep` ends it");
        Vec::new()
    } else {
        session.close().await
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
    // 12. report.
    let history = recorder.history().with_samples(samples.all());
    if let Err(e) = crate::report::plot::write_plots(&run_dir.path, &history) {
        eprintln!("hubchaos: drawing the plots failed: {e:#}");
    }
    if let Err(e) = crate::report::summary::write(&run_dir, &scenario, &report, &history, opts.profile.as_ref()) {
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

async fn lifecycle(scenario: &Scenario, env: &Env, backend: &dyn Backend) -> Lifecycle {
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
    match backend.deploy(env, &scenario.deploy, &plan).await {
        Ok(deployed) => {
            rec.phase("deployed", serde_json::to_string(&deployed).unwrap_or_default());
            out.deploy = Some(deployed.timings);
        }
        Err(BackendError::Missing(reason)) => {
            out.outcome = Some(Outcome::Skipped(reason));
            return out;
        }
        Err(e) => {
            out.outcome = Some(Outcome::Errored(format!("deploy failed: {e:#}")));
            return out;
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
    let mut samplers: Vec<_> = backend.samplers(env, SAMPLE_EVERY, &samplers_stop).into_iter().map(tokio::spawn).collect();
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
    }
    rec.phase(WORKLOAD_START, "");
    let window_start = Instant::now();
    let guards: Arc<tokio::sync::Mutex<Vec<FaultGuard>>> = Arc::default();
    let mut heal_tasks = Vec::new();
    let window_stop = env.cancel.child_token();
    // Every firing of every schedule, drawn once from the seeded rng (jitter is reproducible).
    let mut setup: Vec<&Scheduled> = Vec::new();
    let mut timed: Vec<(&Scheduled, Vec<Duration>)> = Vec::new();
    for scheduled in &scenario.faults {
        let (now, later): (Vec<Duration>, Vec<Duration>) =
            scheduled.schedule.firings(scenario.duration, &mut *env.rng.lock().unwrap()).into_iter().partition(|at| at.is_zero());
        if !now.is_empty() {
            setup.push(scheduled);
        }
        if !later.is_empty() {
            timed.push((scheduled, later));
        }
    }
    let mut errors = Vec::new();
    for scheduled in setup {
        // Due at the start: in place before the workloads begin (they may need its state).
        match scheduled.fault.inject(env).await {
            Ok(g) => heal_tasks.push(keep_or_heal(g, scheduled.schedule.hold, &guards, &window_stop)),
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
    if out.outcome.is_none() {
        match backend.deploy_after_setup(env, &scenario.deploy, &plan).await {
            Ok(took) if !took.is_zero() => {
                if let Some(d) = out.deploy.as_mut() {
                    d.culler_ready_s = took.as_secs_f64();
                    d.stack_ready_s += took.as_secs_f64();
                }
            }
            Ok(_) => {}
            Err(e) => out.outcome = Some(Outcome::Errored(format!("{e:#}"))),
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
    // Each schedule on its own: a fault held for a while never delays another schedule's.
    let schedules =
        timed.into_iter().map(|(scheduled, firings)| fire_schedule(scheduled, firings, env, window_start, &guards, &window_stop));
    let timed_faults = async {
        if out.outcome.is_some() {
            return Vec::new();
        }
        futures::future::join_all(schedules).await.into_iter().flatten().collect::<Vec<_>>()
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
    for t in heal_tasks {
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
    for s in samplers {
        let _ = s.await;
    }

    // 9. logs are in logs/ already; the hub's requests are read from its log once, here.
    if let Some(source) = backend.hub_log() {
        let recorder = rec.clone();
        let read = tokio::task::spawn_blocking(move || hub_log::record_if_present(&source, &recorder)).await;
        match read {
            Ok(Ok(Some(read))) => tracing::debug!("hub log: {read}"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!("reading the hub's log failed: {e}"),
            Err(e) => tracing::warn!("reading the hub's log failed: {e}"),
        }
    }
    // 10. checks.
    let history = rec.history().with_samples(env.samples.all());
    out.checks = scenario.checks.iter().map(|c| run_check(c.as_ref(), &history)).collect();
    out
}

/// The firings of one schedule after the setup, one after the other: each waits for its
/// offset, injects, and (when held) heals before the next firing of the same schedule.
/// Returns the injection errors.
async fn fire_schedule(
    scheduled: &Scheduled,
    firings: Vec<Duration>,
    env: &Env,
    window_start: Instant,
    guards: &Arc<tokio::sync::Mutex<Vec<FaultGuard>>>,
    window_stop: &CancellationToken,
) -> Vec<String> {
    let mut errors = Vec::new();
    for at in firings {
        tokio::select! {
            _ = tokio::time::sleep(at.saturating_sub(window_start.elapsed())) => {}
            _ = window_stop.cancelled() => break,
        }
        match scheduled.fault.inject(env).await {
            Ok(g) => {
                let _ = keep_or_heal(g, scheduled.schedule.hold, guards, window_stop).await;
            }
            Err(e) => errors.push(format!("{} on {}: {e:#}", scheduled.fault.kind(), scheduled.fault.target())),
        }
    }
    errors
}

/// Keep the guard until the window closes (step 7 heals it), or heal it after `hold` (or
/// when the window closes first).
fn keep_or_heal(
    guard: FaultGuard,
    hold: Option<Duration>,
    guards: &Arc<tokio::sync::Mutex<Vec<FaultGuard>>>,
    window_stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    match hold {
        None => {
            let guards = guards.clone();
            tokio::spawn(async move { guards.lock().await.push(guard) })
        }
        Some(hold) => {
            let stop = window_stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(hold) => {}
                    _ = stop.cancelled() => {}
                }
                let _ = guard.heal().await;
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::fault::{KillProcess, PauseProcess, Schedule};
    use crate::prelude::{CullerOptions, Deployment, HubOptions, SteadyState};
    use crate::probe::ProbeResult;
    use crate::testkit::{Failure, FakeBackend, FakeKind};

    /// A probe that holds or not, at once.
    #[derive(Debug, Serialize)]
    struct Holds(bool);

    #[async_trait::async_trait]
    impl Probe for Holds {
        fn describe(&self) -> String {
            format!("holds is {}", self.0)
        }
        async fn probe(&self, _env: &Env) -> crate::probe::ProbeResult {
            ProbeResult::new(self.0, "as told")
        }
    }

    fn scenario() -> Scenario {
        let mut s = Scenario::new("test", "lifecycle", "The runner's own test.");
        s.deploy = Deployment { culler: Some(CullerOptions::default()), ..Deployment::hub(HubOptions::default()) };
        s.duration = Duration::from_millis(300);
        s.steady_state =
            SteadyState { before: vec![Box::new(Holds(true))], after: vec![Box::new(Holds(true))], recovery: Duration::from_secs(1) };
        s
    }

    async fn run_on(s: Scenario, kind: &FakeKind) -> (RunReport, tempfile::TempDir) {
        let runs = tempfile::tempdir().unwrap();
        let opts = RunOptions { runs: Some(runs.path().into()), seed: Some(1), ..RunOptions::default() };
        (run(s, kind, opts).await, runs)
    }

    const TEARDOWN: [&str; 2] = ["stop-components", "release"];

    #[tokio::test]
    async fn the_lifecycle_runs_in_its_documented_order() {
        let kind = FakeKind::new(FakeBackend::default());
        let mut s = scenario();
        s.faults = vec![Scheduled::new(KillProcess::of("hub"), Schedule::at(Duration::from_millis(100)))];
        let (r, _runs) = run_on(s, &kind).await;
        assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
        assert_eq!(r.test_name, "fake::test::lifecycle");
        assert_eq!(
            kind.backend.calls(),
            ["open", "deploy", "samplers", "deploy-after-setup", "signal hub Kill", "sampler-stopped", "stop-components", "release"]
        );
        for f in ["outcome.json", "summary.md", "scenario.json", "history.jsonl"] {
            assert!(r.run_dir.join(f).exists(), "{f} missing in {}", r.run_dir.display());
        }
        assert!(r.run_dir.to_string_lossy().contains("fake-test-lifecycle"));
    }

    #[tokio::test]
    async fn a_backend_that_cannot_run_it_skips_it_before_opening() {
        let kind = FakeKind { cannot_run: Some("needs a cluster".into()), ..FakeKind::new(FakeBackend::default()) };
        let (r, _runs) = run_on(scenario(), &kind).await;
        assert_eq!(r.outcome, Outcome::Skipped("needs a cluster".into()));
        assert!(kind.backend.calls().is_empty());
    }

    #[tokio::test]
    async fn a_missing_prerequisite_found_when_opening_skips_it() {
        let kind = FakeKind::new(FakeBackend::failing(Failure::Missing("no docker".into())));
        let (r, _runs) = run_on(scenario(), &kind).await;
        assert_eq!(r.outcome, Outcome::Skipped("no docker".into()));
        assert_eq!(kind.backend.calls(), ["open"]);
    }

    #[tokio::test]
    async fn deploy_and_readiness_failures_are_errored_and_still_torn_down() {
        for (failure, says) in [(Failure::Deploy, "cannot start hub"), (Failure::Readiness, "not ready within")] {
            let kind = FakeKind::new(FakeBackend::failing(failure));
            let (r, _runs) = run_on(scenario(), &kind).await;
            match &r.outcome {
                Outcome::Errored(why) => assert!(why.starts_with("deploy failed") && why.contains(says), "{why}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(kind.backend.calls(), ["open", "deploy", TEARDOWN[0], TEARDOWN[1]]);
        }
    }

    #[tokio::test]
    async fn a_failure_after_the_setup_is_errored_and_no_workload_or_fault_runs() {
        let kind = FakeKind::new(FakeBackend::failing(Failure::AfterSetup));
        let mut s = scenario();
        s.faults = vec![Scheduled::new(KillProcess::of("hub"), Schedule::at(Duration::from_millis(50)))];
        let (r, _runs) = run_on(s, &kind).await;
        assert!(matches!(&r.outcome, Outcome::Errored(why) if why.contains("cannot start the culler")), "{:?}", r.outcome);
        let calls = kind.backend.calls();
        assert!(!calls.iter().any(|c| c.starts_with("signal")), "{calls:?}");
        assert!(calls.ends_with(&TEARDOWN.map(String::from)), "{calls:?}");
    }

    #[tokio::test]
    async fn an_unhealthy_start_is_aborted_before_any_sampler_or_fault() {
        let kind = FakeKind::new(FakeBackend::default());
        let mut s = scenario();
        s.steady_state.before = vec![Box::new(Holds(false))];
        let (r, _runs) = run_on(s, &kind).await;
        assert!(matches!(&r.outcome, Outcome::Aborted(why) if why.contains("holds is false")), "{:?}", r.outcome);
        assert_eq!(kind.backend.calls(), ["open", "deploy", TEARDOWN[0], TEARDOWN[1]]);
    }

    #[tokio::test]
    async fn no_return_to_steady_state_is_deviated() {
        let kind = FakeKind::new(FakeBackend::default());
        let mut s = scenario();
        s.steady_state.after = vec![Box::new(Holds(false))];
        s.steady_state.recovery = Duration::from_millis(200);
        let (r, _runs) = run_on(s, &kind).await;
        assert!(matches!(&r.outcome, Outcome::Deviated(why) if why.contains("holds is false")), "{:?}", r.outcome);
    }

    #[tokio::test]
    async fn cancelling_interrupts_the_window_heals_and_tears_down() {
        let kind = FakeKind::new(FakeBackend::default());
        let mut s = scenario();
        s.duration = Duration::from_secs(30);
        s.faults = vec![Scheduled::new(PauseProcess::of("hub"), Schedule::at(Duration::from_millis(50)))];
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            c.cancel();
        });
        let runs = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let opts = RunOptions { runs: Some(runs.path().into()), cancel: Some(cancel), ..RunOptions::default() };
        let r = run(s, &kind, opts).await;
        assert_eq!(r.outcome, Outcome::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(10), "the 30 s window was not cut short");
        let calls = kind.backend.calls();
        let resumed = calls.iter().position(|c| c == "signal hub Resume").expect("the paused hub was resumed");
        assert!(resumed < calls.iter().position(|c| c == "stop-components").unwrap(), "{calls:?}");
    }

    /// A fault held for a while must not delay another schedule's firing (it did when the
    /// runner fired every schedule's faults one after the other).
    #[tokio::test]
    async fn schedules_fire_on_their_own_time() {
        let kind = FakeKind::new(FakeBackend::default());
        let mut s = scenario();
        s.duration = Duration::from_millis(1500);
        s.faults = vec![
            Scheduled::new(PauseProcess::of("hub"), Schedule::at(Duration::from_millis(50)).held_for(Duration::from_millis(800))),
            Scheduled::new(KillProcess::of("proxy"), Schedule::at(Duration::from_millis(200))),
        ];
        let (r, _runs) = run_on(s, &kind).await;
        assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
        let calls: Vec<String> = kind.backend.calls().into_iter().filter(|c| c.starts_with("signal")).collect();
        assert_eq!(calls, ["signal hub Pause", "signal proxy Kill", "signal hub Resume"]);
    }
}
