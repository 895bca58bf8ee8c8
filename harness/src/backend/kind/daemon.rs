//! The engine kind's nodes run on, as a daemon of the harness: the pinned dockerd
//! ([`super::engine`]) with its own socket, data root, exec root and pidfile under
//! `$HUBCHAOS_HOME/kind-engine/`, and no network of its own (`--bridge=none --iptables=false`;
//! the one bridge network is the cluster's, created on a /24 the harness chooses, see
//! [`super::network`]).
//!
//! Unlike the local backend's dockerd it outlives the process that starts it: a cluster made
//! by `hubchaos cluster up` is used by later runs. It is started in a process group of its own, with
//! `HUBCHAOS_RUN_ID` set to the cluster's id so its containerd and shims carry it too, and it
//! is stopped by `cluster down` (or by the sweep, when the run that made the cluster died).
//! The data root persists between clusters: the loaded node image is a cache, like the image
//! tar it came from (loading it takes ~12 s here).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::tools::tail;
use crate::component::docker_api::unix_http_ready;

/// Where the engine keeps everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineLayout {
    pub dir: PathBuf,
}

impl EngineLayout {
    pub fn new(home: &Path) -> Self {
        Self { dir: home.join("kind-engine") }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("docker.pid")
    }
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }
    /// `DOCKER_HOST` for the CLI and kind.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The daemon's flags. The userland proxy serves the API port kind publishes on
    /// 127.0.0.1 (no iptables rule is written; the harness itself talks to the control plane
    /// on its address on the cluster's network).
    pub fn args(&self, docker_proxy: &Path) -> Vec<String> {
        vec![
            format!("--host=unix://{}", self.socket().display()),
            format!("--data-root={}", self.data_root().display()),
            format!("--exec-root={}", self.exec_root().display()),
            format!("--pidfile={}", self.pidfile().display()),
            format!("--config-file={}", self.dir.join("daemon.json").display()),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
            "--ip-forward=false".into(),
            format!("--userland-proxy-path={}", docker_proxy.display()),
            "--storage-driver=overlay2".into(),
            // Its own containerd namespaces, should it ever share the machine's containerd.
            "--containerd-namespace=hubchaos-kind".into(),
            "--containerd-plugins-namespace=hubchaos-kind-plugins".into(),
            "--log-level=warn".into(),
        ]
    }

    /// The running daemon's pid (from its pidfile, checked against `/proc`).
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pidfile()).ok()?.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "dockerd").then_some(pid)
    }
}

/// Start the engine unless it runs; wait until `/_ping` answers (bounded). Returns its pid and
/// whether this call started it.
pub async fn ensure_running(layout: &EngineLayout, dockerd: &Path, run_id: &str, within: Duration) -> anyhow::Result<(u32, bool)> {
    if let Some(pid) = layout.running_pid() {
        if unix_http_ready(&layout.socket(), "/_ping").await {
            return Ok((pid, false));
        }
    }
    std::fs::create_dir_all(layout.exec_root())?;
    std::fs::create_dir_all(layout.data_root())?;
    std::fs::write(layout.dir.join("daemon.json"), "{}\n")?;
    let _ = std::fs::remove_file(layout.socket());
    let _ = std::fs::remove_file(layout.pidfile());
    let proxy = dockerd.with_file_name("docker-proxy");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(layout.log())?;
    let mut cmd = Command::new(dockerd);
    cmd.args(layout.args(&proxy)).env("HUBCHAOS_RUN_ID", run_id).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // A process group of its own: a Ctrl-C at the terminal that ran `cluster up` does not reach it.
    cmd.process_group(0);
    let mut child = cmd.spawn().with_context(|| format!("starting {}", dockerd.display()))?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if unix_http_ready(&layout.socket(), "/_ping").await {
            // Reaped by nobody while we run: detach (the daemon is in its own session).
            std::mem::drop(child);
            return Ok((pid, true));
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("the kind engine exited at start ({status}); its log: {}", tail(&layout.log(), 10));
        }
        if started.elapsed() >= within {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            bail!(
                "the kind engine did not answer on {} within {within:?}; its log: {}",
                layout.socket().display(),
                tail(&layout.log(), 10)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stop the engine: SIGTERM, then SIGKILL to its session after `grace`; unmount what it
/// leaves under its exec root. Errors are returned, not thrown.
pub fn stop(layout: &EngineLayout, grace: Duration) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(pid) = layout.running_pid() {
        let p = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < grace && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            let _ = nix::sys::signal::killpg(p, nix::sys::signal::Signal::SIGKILL);
            errors.push(format!("the kind engine (pid {pid}) did not stop within {grace:?}: killed"));
        }
    }
    errors.extend(crate::component::node_disk::unmount_all_under(&layout.exec_root()));
    let _ = std::fs::remove_file(layout.socket());
    errors
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_has_no_network_of_its_own_and_everything_under_its_dir() {
        let l = EngineLayout::new(Path::new("/h"));
        let args = l.args(Path::new("/e/docker-proxy"));
        for flag in ["--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
        }
        for a in args.iter().filter(|a| a.contains('/') && !a.contains("docker-proxy")) {
            assert!(a.contains("/h/kind-engine/"), "{a} is outside the engine's dir");
        }
        assert_eq!(l.docker_host(), "unix:///h/kind-engine/docker.sock");
    }

    #[test]
    fn no_pidfile_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let l = EngineLayout::new(dir.path());
        assert_eq!(l.running_pid(), None);
        std::fs::create_dir_all(&l.dir).unwrap();
        // Our own pid is alive but is not a dockerd.
        std::fs::write(l.pidfile(), std::process::id().to_string()).unwrap();
        assert_eq!(l.running_pid(), None);
    }
}
