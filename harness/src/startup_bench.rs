//! How long the local backend takes to bring up hub + proxy + culler, beside a bare
//! `jupyterhub` start (which starts its own proxy) in the same run, alternating, median of N.
//! The stack is meant to be ready within 5 s and within 1.5× the bare start.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::local::hub_stack::free_ports;
use crate::backend::local::sweep::{end_run_processes, SweepReport};
use crate::backend::local::{ensure_toolchain, Local};
use crate::component::culler::CullerOptions;
use crate::component::hub::HubOptions;
use crate::fault::DeployPlan;
use crate::observe::history::Recorder;
use crate::observe::samples::SampleSink;
use crate::runner::{Session, SessionOptions};
use crate::scenario::{Deployment, Needs};
use crate::stats::median;
use crate::toolchain::Toolchain;

#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    pub rounds: usize,
    pub stack_s: Vec<f64>,
    pub bare_s: Vec<f64>,
    pub stack_median_s: f64,
    pub bare_median_s: f64,
    pub ratio: f64,
}

impl StartupReport {
    pub fn to_markdown(&self) -> String {
        format!(
            "| start | median (s) | runs (s) |\n|---|---|---|\n| hub + proxy + culler (hubchaos) | {:.2} | {} |\n| bare `jupyterhub` | {:.2} | {} |\n\nratio {:.2}× bare (goal ≤ 1.5×, ≤ 5 s)\n",
            self.stack_median_s,
            fmt_list(&self.stack_s),
            self.bare_median_s,
            fmt_list(&self.bare_s),
            self.ratio
        )
    }
}

fn fmt_list(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ")
}

/// The culler of the measured stack: rounds every few seconds.
fn quick_culler() -> CullerOptions {
    CullerOptions { timeout: Duration::from_secs(60), cull_every: Duration::from_secs(5), ..Default::default() }
}

/// A local session of its own for one measured round (the same setup and teardown as a run).
async fn open_session(dir: &std::path::Path, id: &str) -> anyhow::Result<Session> {
    let run_dir = dir.join(id);
    std::fs::create_dir_all(run_dir.join("logs"))?;
    let options = SessionOptions {
        run_id: id.into(),
        run_dir,
        seed: 0,
        recorder: Recorder::in_memory(Instant::now()),
        samples: SampleSink::default(),
        profile: None,
        progress: false,
        cancel: CancellationToken::new(),
    };
    Ok(Session::open(&Local, &Needs::default(), options).await?)
}

/// Close a session; a teardown error is the round's error.
async fn close(session: Session) -> anyhow::Result<()> {
    let errors = session.close().await;
    anyhow::ensure!(errors.is_empty(), "teardown: {}", errors.join("; "));
    Ok(())
}

async fn stack_once(dir: &std::path::Path, id: &str) -> anyhow::Result<f64> {
    let session = open_session(dir, id).await?;
    let deployment = Deployment { hub: Some(HubOptions::default()), culler: Some(quick_culler()), node: None, binder: None };
    let plan = DeployPlan::default();
    let result = async {
        let deployed = session.backend.deploy(&session.env, &deployment, &plan).await?;
        let culler = session.backend.deploy_after_setup(&session.env, &deployment, &plan).await?;
        anyhow::Ok(deployed.timings.stack_ready_s + culler.as_secs_f64())
    }
    .await;
    close(session).await?;
    result
}

/// `jupyterhub` with its defaults (it starts its own proxy), on free loopback ports, in an
/// empty directory: the time until `/hub/api/` answers through its proxy.
async fn bare_once(toolchain: &Toolchain, dir: &std::path::Path, id: &str) -> anyhow::Result<f64> {
    let cwd = dir.join(id);
    std::fs::create_dir_all(&cwd)?;
    let [port, hub_port, api_port] = free_ports::<3>()?;
    let path = format!(
        "{}:{}",
        toolchain.npm_bin("configurable-http-proxy").parent().context("npm bin dir")?.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let mut child = tokio::process::Command::new(toolchain.venv_bin("jupyterhub"))
        .args([
            "--ip=127.0.0.1".to_string(),
            format!("--port={port}"),
            format!("--JupyterHub.hub_port={hub_port}"),
            "--JupyterHub.hub_ip=127.0.0.1".into(),
            format!("--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}"),
        ])
        .current_dir(&cwd)
        .env("PATH", path)
        .env("HUBCHAOS_RUN_ID", id)
        .stdout(std::fs::File::create(cwd.join("jupyterhub.log"))?)
        .stderr(std::fs::File::create(cwd.join("jupyterhub.err.log"))?)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let url = format!("http://127.0.0.1:{port}/hub/api/");
    let took = loop {
        if matches!(http.get(&url).send().await, Ok(r) if r.status().as_u16() == 200) {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill().await;
            bail!("bare jupyterhub did not answer within 60 s (see {})", cwd.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    end_run_processes(id, &mut SweepReport::default());
    Ok(took)
}

async fn toolchain() -> anyhow::Result<Toolchain> {
    ensure_toolchain(None, true).await
}

/// The recorder in front of the REAL hub (`GET /hub/api/`, which needs no token): throughput
/// and added latency against a direct connection, in the same run. Unlike the trivial
/// upstream, the hub costs milliseconds per request, as it does in a scenario.
pub async fn hub_recorder_bench(opts: crate::bench::BenchOptions) -> anyhow::Result<crate::bench::BenchReport> {
    let dir = tempfile_dir()?;
    let id = format!("bench-hub-{}", std::process::id());
    let session = open_session(&dir, &id).await?;
    let result = async {
        session.backend.deploy(&session.env, &Deployment::hub(HubOptions::default()), &DeployPlan::default()).await?;
        crate::bench::recorder_bench_against(session.env.hub()?.hub_addr, "/hub/api/", opts).await
    }
    .await;
    let closed = close(session).await;
    let _ = std::fs::remove_dir_all(&dir);
    closed?;
    result
}

pub async fn startup_bench(rounds: usize) -> anyhow::Result<StartupReport> {
    anyhow::ensure!(rounds >= 1, "rounds must be at least 1: a median of no starts is no figure");
    let toolchain = toolchain().await?;
    let dir = tempfile_dir()?;
    let mut stack_s = Vec::new();
    let mut bare_s = Vec::new();
    // Warm the page cache once for both (not measured).
    bare_once(&toolchain, &dir, &format!("bench-warm-{}", std::process::id())).await?;
    for i in 0..rounds {
        bare_s.push(bare_once(&toolchain, &dir, &format!("bench-bare-{}-{i}", std::process::id())).await?);
        stack_s.push(stack_once(&dir, &format!("bench-stack-{}-{i}", std::process::id())).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (Some(s), Some(b)) = (median(&stack_s), median(&bare_s)) else { bail!("no start was measured") };
    Ok(StartupReport { rounds, stack_s, bare_s, stack_median_s: s, bare_median_s: b, ratio: s / b })
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("hubchaos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn zero_rounds_is_an_error_not_a_nan_median() {
        let e = super::startup_bench(0).await.unwrap_err().to_string();
        assert!(e.starts_with("rounds must be at least 1"), "{e}");
    }
}
