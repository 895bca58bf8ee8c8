//! The local backend's supervisor: every component is a real program in its own process
//! group on 127.0.0.1, supervised like a pod with `restartPolicy: Always`.
//!
//! - Output of each component is appended to `logs/<name>.log` in the run dir.
//! - Every process gets `HUBCHAOS_RUN_ID` in its environment, and every process group is
//!   written to the run's marker (see [`super::sweep`]), so a run killed with SIGKILL is swept
//!   by the next one without guessing by name.
//! - An exit is recorded as a [`RestartEvent`]; a crash loop is visible to checks.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::spec::{ComponentSpec, Readiness, RestartPolicy};
use super::sweep::RunMarker;
use crate::backend::{ComponentStatus, ProcessSignal};
use crate::observe::history::{Event, Recorder, RestartEvent};

/// A component started but did not become ready in time (the backend reports it as
/// [`crate::backend::BackendError::Readiness`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);

/// First back-off; doubles per quick exit, as kubelet's CrashLoopBackOff does (10 s → 5 min
/// there; scaled down here so scenarios stay short).
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Up this long, the back-off resets.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);
/// SIGTERM, then this long, then SIGKILL (a pod's terminationGracePeriodSeconds, scaled).
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct LiveState {
    pid: Option<u32>,
    restarts: u32,
    running: bool,
    paused: bool,
}

struct Supervised {
    spec: ComponentSpec,
    state: Arc<Mutex<LiveState>>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

pub struct Supervisor {
    run_id: String,
    logs_dir: PathBuf,
    recorder: Recorder,
    marker: Arc<Mutex<RunMarker>>,
    components: Mutex<Vec<(String, Arc<Supervised>)>>,
}

impl Supervisor {
    pub fn new(run_id: &str, logs_dir: PathBuf, recorder: Recorder, marker: Arc<Mutex<RunMarker>>) -> Self {
        Self { run_id: run_id.to_string(), logs_dir, recorder, marker, components: Mutex::new(Vec::new()) }
    }

    fn get(&self, name: &str) -> Option<Arc<Supervised>> {
        self.components.lock().unwrap().iter().find(|(n, _)| n == name).map(|(_, s)| s.clone())
    }

    fn spawn_once(&self, spec: &ComponentSpec) -> anyhow::Result<tokio::process::Child> {
        let log_path = self.log_file(&spec.name);
        let log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut cmd = Command::new(&spec.command.program);
        cmd.args(&spec.command.args)
            .env_clear()
            .envs(base_env())
            .envs(&spec.command.env)
            .env("HUBCHAOS_RUN_ID", &self.run_id)
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd.spawn().with_context(|| {
            format!("starting {}: {} (is it installed? try `hubchaos doctor`)", spec.name, spec.command.program.display())
        })?;
        if let Some(pid) = child.id() {
            let mut marker = self.marker.lock().unwrap();
            marker.add_process_group(pid);
            marker.save().ok();
        }
        Ok(child)
    }

    /// The supervision loop of one component: run, record the exit, back off, run again.
    fn supervise(self: &Arc<Self>, sup: Arc<Supervised>, mut child: tokio::process::Child) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = BACKOFF_START;
            let mut attempt = 0u32;
            loop {
                let started = Instant::now();
                let pid = child.id();
                {
                    let mut st = sup.state.lock().unwrap();
                    st.pid = pid;
                    st.running = true;
                    st.paused = false;
                }
                let status = tokio::select! {
                    status = child.wait() => status,
                    _ = sup.stop.cancelled() => {
                        if let Some(pid) = pid {
                            terminate_group(pid, &mut child).await;
                        }
                        sup.state.lock().unwrap().running = false;
                        return;
                    }
                };
                sup.state.lock().unwrap().running = false;
                let exit = describe_exit(&status);
                if sup.spec.restart == RestartPolicy::Never {
                    this.recorder.record(Event::Restart(RestartEvent {
                        component: sup.spec.name.clone(),
                        exit: format!("{exit} (restart policy Never: left down)"),
                        attempt: 0,
                        backoff: Duration::ZERO,
                    }));
                    return;
                }
                if started.elapsed() >= BACKOFF_RESET_AFTER {
                    backoff = BACKOFF_START;
                }
                attempt += 1;
                this.recorder.record(Event::Restart(RestartEvent { component: sup.spec.name.clone(), exit, attempt, backoff }));
                sup.state.lock().unwrap().restarts = attempt;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = sup.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_CAP);
                child = match this.spawn_once(&sup.spec) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!("{}: restart failed: {e:#}", sup.spec.name);
                        return;
                    }
                };
            }
        })
    }

    async fn await_ready(&self, sup: &Supervised) -> anyhow::Result<()> {
        let deadline = Instant::now() + sup.spec.ready_within;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        loop {
            let ready = match &sup.spec.readiness {
                Readiness::Running => sup.state.lock().unwrap().running,
                Readiness::Http { url } => matches!(
                    client.get(url).send().await,
                    Ok(resp) if resp.status().as_u16() < 500
                ),
                Readiness::UnixHttp { socket, path } => crate::component::docker_api::unix_http_ready(socket, path).await,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail(&sup.spec.name, 20);
                let why = match &sup.spec.readiness {
                    Readiness::Http { url } => format!("no answer below 500 from {url}"),
                    Readiness::UnixHttp { socket, path } => format!("no answer below 500 to GET {path} on unix://{}", socket.display()),
                    Readiness::Running => "process not running".into(),
                };
                return Err(NotReady(format!(
                    "{} was not ready within {:?} ({why}); last log lines:\n{tail}",
                    sup.spec.name, sup.spec.ready_within
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where `component`'s output is (or will be) appended.
    pub fn log_file(&self, component: &str) -> PathBuf {
        self.logs_dir.join(format!("{component}.log"))
    }

    /// The last `n` lines of a component's log (for error messages).
    pub fn log_tail(&self, component: &str, n: usize) -> String {
        let path = self.logs_dir.join(format!("{component}.log"));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Start a component under supervision and wait (bounded by `spec.ready_within`) until
    /// it is ready.
    pub async fn deploy(self: &Arc<Self>, spec: ComponentSpec) -> anyhow::Result<()> {
        if self.get(&spec.name).is_some() {
            bail!("component {} is already deployed in this run", spec.name);
        }
        let child = self.spawn_once(&spec)?;
        let sup = Arc::new(Supervised {
            spec,
            state: Arc::new(Mutex::new(LiveState::default())),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        });
        sup.state.lock().unwrap().pid = child.id();
        sup.state.lock().unwrap().running = true;
        let task = self.supervise(sup.clone(), child);
        *sup.task.lock().unwrap() = Some(task);
        self.components.lock().unwrap().push((sup.spec.name.clone(), sup.clone()));
        self.await_ready(&sup).await
    }
}

fn describe_exit(status: &std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => {
                format!("signal: {}", Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| sig.to_string()))
            }
            _ => "exited".into(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

/// SIGCONT (a paused group cannot handle SIGTERM), SIGTERM, wait up to the grace period,
/// then SIGKILL the whole group.
async fn terminate_group(pgid: u32, child: &mut tokio::process::Child) {
    let group = Pid::from_raw(pgid as i32);
    let _ = killpg(group, Signal::SIGCONT);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
    }
    // Stragglers in the group (children that outlived the leader).
    let _ = killpg(group, Signal::SIGKILL);
}

fn to_signal(s: ProcessSignal) -> Signal {
    match s {
        ProcessSignal::Kill => Signal::SIGKILL,
        ProcessSignal::Pause => Signal::SIGSTOP,
        ProcessSignal::Resume => Signal::SIGCONT,
    }
}

impl Supervisor {
    /// Send `signal` to the component's process group.
    pub async fn signal(&self, component: &str, signal: ProcessSignal) -> anyhow::Result<()> {
        let sup = self.get(component).with_context(|| format!("no component named {component}"))?;
        let pid = sup.state.lock().unwrap().pid.with_context(|| format!("{component} has no process now"))?;
        killpg(Pid::from_raw(pid as i32), to_signal(signal)).with_context(|| format!("signalling {component} (pgid {pid})"))?;
        let mut st = sup.state.lock().unwrap();
        match signal {
            ProcessSignal::Pause => st.paused = true,
            ProcessSignal::Resume => st.paused = false,
            _ => {}
        }
        Ok(())
    }

    /// Stop a component for good (no restart): SIGTERM, grace, SIGKILL; bounded.
    pub async fn stop(&self, component: &str) -> anyhow::Result<()> {
        let sup = self.get(component).with_context(|| format!("no component named {component}"))?;
        sup.stop.cancel();
        let task = sup.task.lock().unwrap().take();
        if let Some(task) = task {
            tokio::time::timeout(STOP_GRACE * 3, task)
                .await
                .with_context(|| format!("{component} did not stop within {:?}", STOP_GRACE * 3))??;
        }
        Ok(())
    }

    /// The processes of the component's group now.
    pub fn processes(&self, component: &str) -> Vec<u32> {
        let Some(sup) = self.get(component) else { return Vec::new() };
        let Some(pgid) = sup.state.lock().unwrap().pid else { return Vec::new() };
        super::sweep::processes_in_group(pgid)
    }

    pub fn status(&self, component: &str) -> Option<ComponentStatus> {
        let sup = self.get(component)?;
        let st = sup.state.lock().unwrap();
        Some(ComponentStatus { name: component.into(), pid: st.pid, restarts: st.restarts, running: st.running })
    }

    /// Names of deployed components, in deploy order.
    pub fn components(&self) -> Vec<String> {
        self.components.lock().unwrap().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Stop every component, in reverse deploy order; errors collected, not thrown.
    pub async fn teardown(&self) -> Vec<String> {
        let names: Vec<String> = self.components().into_iter().rev().collect();
        let mut errors = Vec::new();
        for name in names {
            if let Err(e) = self.stop(&name).await {
                errors.push(format!("{name}: {e:#}"));
            }
        }
        errors
    }
}

/// Environment a component gets besides its own: nothing from the harness's environment
/// leaks in except PATH, HOME, LANG and the like (tests must not depend on the caller's shell).
pub fn base_env() -> BTreeMap<String, String> {
    ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Real short-lived processes (`sh`, `sleep`) in a temp dir, the run's marker in a temp
    //! markers dir. Whatever an assertion leaves running is ended by the run id in its
    //! environment when the fixture drops.
    use super::*;
    use crate::backend::local::command::CommandSpec;
    use crate::backend::local::sweep::{end_run_processes, processes_in_group, processes_of_run, SweepReport};
    use crate::testkit::FakeHub;

    struct Fixture {
        run_id: String,
        dir: tempfile::TempDir,
        rec: Recorder,
        marker: Arc<Mutex<RunMarker>>,
        sup: Arc<Supervisor>,
    }

    impl Fixture {
        fn new(test: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let run_id = format!("test-supervisor-{test}-{}", std::process::id());
            std::fs::create_dir_all(dir.path().join("logs")).unwrap();
            let marker = RunMarker::create_in(&dir.path().join("markers"), &run_id, dir.path()).unwrap();
            let marker = Arc::new(Mutex::new(marker));
            let rec = Recorder::in_memory(Instant::now());
            let sup = Arc::new(Supervisor::new(&run_id, dir.path().join("logs"), rec.clone(), marker.clone()));
            Self { run_id, dir, rec, marker, sup }
        }

        fn spec(&self, name: &str, script: &str, restart: RestartPolicy, readiness: Readiness, ready_within: Duration) -> ComponentSpec {
            ComponentSpec {
                name: name.into(),
                command: CommandSpec::new("sh").args(["-c", script]),
                cwd: self.dir.path().to_path_buf(),
                readiness,
                ready_within,
                restart,
            }
        }

        fn running(&self, name: &str, script: &str) -> ComponentSpec {
            self.spec(name, script, RestartPolicy::Always, Readiness::Running, Duration::from_secs(2))
        }

        fn restarts(&self, name: &str) -> Vec<(Duration, RestartEvent)> {
            self.rec.history().restarts().filter(|(_, r)| r.component == name).map(|(at, r)| (at, r.clone())).collect()
        }

        fn log(&self, name: &str) -> String {
            std::fs::read_to_string(self.sup.log_file(name)).unwrap_or_default()
        }

        /// The pid a script printed as `<label> <pid>` in its log.
        async fn printed_pid(&self, name: &str, label: &str) -> u32 {
            let mut pid = None;
            wait_for(&format!("{name} printing {label}"), Duration::from_secs(3), || {
                pid = self.log(name).lines().find_map(|l| l.strip_prefix(&format!("{label} "))?.trim().parse().ok());
                pid.is_some()
            })
            .await;
            pid.unwrap()
        }

        /// Teardown leaves no error and no process carrying the run id.
        async fn teardown(&self) {
            let errors = self.sup.teardown().await;
            assert!(errors.is_empty(), "{errors:?}");
            // A killed process may take a moment to exit.
            let left = || processes_of_run(&self.run_id).into_iter().filter(|p| alive(*p)).collect::<Vec<u32>>();
            let t = Instant::now();
            while !left().is_empty() && t.elapsed() < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(left().is_empty(), "processes of the run left after teardown: {:?}", left());
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            end_run_processes(&self.run_id, &mut SweepReport::default());
        }
    }

    /// The process state letter of `/proc/<pid>/stat` (`S`, `R`, `T`, `Z`, ...).
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 2..].chars().next()
    }

    /// Exists and is not a zombie waiting to be reaped.
    fn alive(pid: u32) -> bool {
        state(pid).is_some_and(|s| s != 'Z' && s != 'X')
    }

    fn live_group(pgid: u32) -> Vec<u32> {
        processes_in_group(pgid).into_iter().filter(|p| alive(*p)).collect()
    }

    async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < within, "{what}: not within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn an_exit_is_restarted_with_doubling_backoff_and_each_restart_recorded() {
        let f = Fixture::new("backoff");
        f.sup.deploy(f.running("crasher", "echo up; exit 3")).await.unwrap();
        wait_for("three restarts", Duration::from_secs(4), || f.restarts("crasher").len() >= 3).await;
        let r = f.restarts("crasher");
        let r = &r[..3];
        assert_eq!(r.iter().map(|(_, e)| e.attempt).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(r.iter().map(|(_, e)| e.backoff).collect::<Vec<_>>(), [500, 1000, 2000].map(Duration::from_millis));
        assert!(r.iter().all(|(_, e)| e.exit == "exit code 3"), "{r:?}");
        // Each back-off was waited before the next start (and not the next one's).
        for w in r.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(gap >= w[0].1.backoff && gap < w[0].1.backoff * 2, "{gap:?} after {:?}", w[0].1);
        }
        assert!(f.sup.status("crasher").unwrap().restarts >= 3);
        assert!(f.log("crasher").matches("up\n").count() >= 3, "{}", f.log("crasher"));
        // Every start's process group is in the run's marker (for a sweep after a kill -9).
        let saved: RunMarker =
            serde_json::from_slice(&std::fs::read(f.dir.path().join("markers").join(format!("{}.json", f.run_id))).unwrap()).unwrap();
        assert!(saved.process_groups.len() >= 3, "{:?}", saved.process_groups);
        assert_eq!(saved.process_groups, f.marker.lock().unwrap().process_groups);
        f.teardown().await;
    }

    #[tokio::test]
    async fn restart_policy_never_leaves_it_down_and_records_the_exit() {
        let f = Fixture::new("never");
        let spec = f.spec("oneshot", "echo up; exit 3", RestartPolicy::Never, Readiness::Running, Duration::from_secs(2));
        f.sup.deploy(spec).await.unwrap();
        wait_for("the exit recorded", Duration::from_secs(3), || !f.restarts("oneshot").is_empty()).await;
        // Longer than the first back-off: a restart would have happened by now.
        tokio::time::sleep(BACKOFF_START + Duration::from_millis(300)).await;
        let r = f.restarts("oneshot");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].1.attempt, r[0].1.backoff), (0, Duration::ZERO));
        assert_eq!(r[0].1.exit, "exit code 3 (restart policy Never: left down)");
        let st = f.sup.status("oneshot").unwrap();
        assert!(!st.running && st.restarts == 0, "{st:?}");
        assert_eq!(f.log("oneshot"), "up\n");
        f.teardown().await;
    }

    #[tokio::test]
    async fn http_readiness_is_bounded_and_its_error_carries_the_log_tail() {
        let f = Fixture::new("http");
        let hub = FakeHub::default();
        hub.api_status.store(503, std::sync::atomic::Ordering::SeqCst);
        let addr = hub.serve().await;
        let within = Duration::from_millis(600);
        let failing = Readiness::Http { url: format!("http://{addr}/hub/api/") };
        let spec = f.spec("web", "echo listening on nothing useful; exec sleep 30", RestartPolicy::Always, failing, within);
        let t = Instant::now();
        let err = format!("{:#}", f.sup.deploy(spec).await.unwrap_err());
        assert!(t.elapsed() >= within && t.elapsed() < within + Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(err.starts_with("web was not ready within 600ms"), "{err}");
        assert!(err.contains(&format!("no answer below 500 from http://{addr}/hub/api/")), "{err}");
        assert!(err.ends_with("last log lines:\nlistening on nothing useful"), "{err}");
        // Any answer below 500 is a server that is up (a 404 here).
        let answering = Readiness::Http { url: format!("http://{addr}/no-such-route") };
        f.sup.deploy(f.spec("web2", "exec sleep 30", RestartPolicy::Always, answering, within)).await.unwrap();
        assert!(hub.seen.lock().unwrap().iter().any(|s| s == "GET /no-such-route"));
        f.teardown().await;
    }

    #[tokio::test]
    async fn running_readiness_is_bounded_and_its_error_carries_the_log_tail() {
        let f = Fixture::new("running");
        let within = Duration::from_millis(300);
        let spec = f.spec("early", "echo bad flag >&2; exit 2", RestartPolicy::Never, Readiness::Running, within);
        // The first check comes right after the start, while the process still runs.
        f.sup.deploy(spec).await.unwrap();
        wait_for("the exit recorded", Duration::from_secs(3), || !f.restarts("early").is_empty()).await;
        let t = Instant::now();
        let err = format!("{:#}", f.sup.await_ready(&f.sup.get("early").unwrap()).await.unwrap_err());
        assert!(t.elapsed() >= within && t.elapsed() < within + Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(err.starts_with("early was not ready within 300ms (process not running)"), "{err}");
        assert!(err.ends_with("last log lines:\nbad flag"), "{err}");
        f.teardown().await;
    }

    #[tokio::test]
    async fn stop_ends_the_whole_group_within_the_grace() {
        let f = Fixture::new("stop");
        // A child that dies on SIGTERM, and one that ignores it (ended by the group's SIGKILL).
        // The stubborn one prints its pid once it ignores SIGTERM (and stays the same process).
        let script = "sleep 30 & echo child $!; (trap '' TERM; exec sh -c 'echo stubborn $$; exec sleep 31') & wait";
        f.sup.deploy(f.running("tree", script)).await.unwrap();
        let leader = f.sup.status("tree").unwrap().pid.unwrap();
        let child = f.printed_pid("tree", "child").await;
        let stubborn = f.printed_pid("tree", "stubborn").await;
        let mut group = live_group(leader);
        group.sort();
        let mut expected = vec![leader, child, stubborn];
        expected.sort();
        assert_eq!(group, expected);
        let t = Instant::now();
        f.sup.stop("tree").await.unwrap();
        assert!(t.elapsed() < STOP_GRACE, "took {:?}", t.elapsed());
        wait_for("the group gone", Duration::from_secs(1), || live_group(leader).is_empty()).await;
        assert!(!f.sup.status("tree").unwrap().running);
        // Stopped for good: no restart is recorded for it.
        assert!(f.restarts("tree").is_empty(), "{:?}", f.restarts("tree"));
        f.teardown().await;
    }

    #[tokio::test]
    async fn stop_kills_a_group_that_ignores_sigterm_after_the_grace() {
        let f = Fixture::new("grace");
        f.sup.deploy(f.running("stuck", "trap '' TERM; echo ignoring TERM; while :; do sleep 1; done")).await.unwrap();
        let leader = f.sup.status("stuck").unwrap().pid.unwrap();
        wait_for("the trap set", Duration::from_secs(3), || f.log("stuck").contains("ignoring TERM")).await;
        let t = Instant::now();
        f.sup.stop("stuck").await.unwrap();
        let took = t.elapsed();
        assert!(took >= STOP_GRACE && took < STOP_GRACE + Duration::from_secs(2), "took {took:?}");
        wait_for("the group gone", Duration::from_secs(1), || live_group(leader).is_empty()).await;
        f.teardown().await;
    }

    #[tokio::test]
    async fn pause_and_resume_reach_every_process_of_the_group() {
        let f = Fixture::new("pause");
        f.sup.deploy(f.running("tree", "sleep 30 & echo child $!; wait")).await.unwrap();
        let leader = f.sup.status("tree").unwrap().pid.unwrap();
        let child = f.printed_pid("tree", "child").await;
        let states = || [leader, child].map(|p| state(p).unwrap_or('?'));
        f.sup.signal("tree", ProcessSignal::Pause).await.unwrap();
        wait_for("both stopped", Duration::from_secs(2), || states() == ['T', 'T']).await;
        f.sup.signal("tree", ProcessSignal::Resume).await.unwrap();
        wait_for("both running again", Duration::from_secs(2), || states().iter().all(|s| *s == 'S' || *s == 'R')).await;
        // A paused group is still stopped promptly (SIGCONT before SIGTERM), not after the grace.
        f.sup.signal("tree", ProcessSignal::Pause).await.unwrap();
        wait_for("both stopped", Duration::from_secs(2), || states() == ['T', 'T']).await;
        let t = Instant::now();
        f.sup.stop("tree").await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
        assert!(format!("{:#}", f.sup.signal("nothing", ProcessSignal::Pause).await.unwrap_err()).contains("no component named nothing"));
        f.teardown().await;
    }
}
