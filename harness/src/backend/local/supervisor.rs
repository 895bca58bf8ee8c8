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
                bail!(
                    "{} was not ready within {:?} ({}); last log lines:\n{tail}",
                    sup.spec.name,
                    sup.spec.ready_within,
                    match &sup.spec.readiness {
                        Readiness::Http { url } => format!("no answer below 500 from {url}"),
                        Readiness::UnixHttp { socket, path } => format!("no answer below 500 to GET {path} on unix://{}", socket.display()),
                        Readiness::Running => "process not running".into(),
                    }
                );
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
        ProcessSignal::Terminate => Signal::SIGTERM,
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

    /// Where the component's output goes.
    pub fn log_path(&self, component: &str) -> Option<PathBuf> {
        self.get(component).map(|_| self.logs_dir.join(format!("{component}.log")))
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
