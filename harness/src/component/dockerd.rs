//! The harness's own dockerd: Debian's `docker.io` (20.10), started by the harness as a
//! supervised component with everything of its own (socket, data root on the node disk, exec
//! root, pidfile, config file), so it never meets the machine's docker, the user's images, or
//! another run.
//!
//! Network rule: `--bridge=none --iptables=false --ip-masq=false --ip-forward=false`. No
//! docker0 bridge, no 172.17/16 address, no NAT rules, no sysctl change on the host; every
//! container the harness runs uses the host network (see [`super::images`]). Two dockerds, one
//! with `--bridge=none`, would delete the other's docker0: ours never creates or touches one.
//! `--config-file` points at an empty file in the run dir so `/etc/docker/daemon.json` (registry
//! mirrors, a bridge IP...) cannot leak in.
//!
//! Measured here (dockerd 20.10.24, 2 cores shared with running scenarios, data root on a
//! 300 MB loop-mounted ext4): ready (`GET /_ping` answers `OK`) 0.13-0.40 s after deploy under
//! the supervisor (0.7 s by hand), including its managed containerd; back 0.8-1.0 s after a
//! SIGKILL (one supervisor restart); a clean stop (SIGTERM, containers with `--init`) ~1 s.
//! Facts that shaped the code:
//! - its managed containerd runs in its *own* process group (so `killpg` on dockerd's group
//!   does not reach it) but dies with dockerd (parent-death signal); container shims survive a
//!   dockerd SIGKILL and are reaped by the restarted dockerd, which also stops every container
//!   that was running (no `--live-restore`). Shims inherit `HUBCHAOS_RUN_ID`, containers do not
//!   (the factory sets it in their environment) — so the sweep finds both.
//! - it leaves `<exec-root>/netns/default` (an nsfs bind mount) mounted when it exits, even
//!   cleanly: [`DockerdConfig::prepare`] writes it to the run's marker and
//!   [`DockerdConfig::cleanup`] unmounts it.
//! - a restart after SIGKILL succeeds only once the killed process is reaped (its pid in the
//!   pidfile must be gone): the supervisor reaps before it restarts, so `kill-process` on
//!   dockerd works; an unreaped zombie gives "pid file found, ensure docker is not running".

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::docker_api::{unix_http_ready, DockerApi};
use super::node_disk::{unmount_all_under, NodeLayout};
use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};
use crate::backend::local::sweep::RunMarker;

/// The component name (chart label style).
pub const DOCKERD: &str = "dockerd";

/// Debian's `docker.io` puts the daemon here (not always on a non-root PATH).
pub const DEBIAN_DOCKERD: &str = "/usr/sbin/dockerd";

#[derive(Debug, Clone)]
pub struct DockerdConfig {
    pub program: PathBuf,
    pub layout: NodeLayout,
    /// `--log-level`: `warn` keeps the log to what matters (errors, containerd warnings).
    pub log_level: String,
    pub ready_within: Duration,
    pub restart: RestartPolicy,
}

impl DockerdConfig {
    /// dockerd from PATH or Debian's path; an error says how to get it.
    pub fn new(layout: NodeLayout) -> anyhow::Result<Self> {
        let program = find_dockerd().context(NOT_INSTALLED)?;
        Ok(Self::with_program(program, layout))
    }

    pub fn with_program(program: PathBuf, layout: NodeLayout) -> Self {
        Self { program, layout, log_level: "warn".into(), ready_within: Duration::from_secs(30), restart: RestartPolicy::Always }
    }

    pub fn config_file(&self) -> PathBuf {
        self.layout.dir.join("daemon.json")
    }

    pub fn args(&self) -> Vec<String> {
        let l = &self.layout;
        vec![
            format!("--host=unix://{}", l.docker_socket.display()),
            format!("--data-root={}", l.data_root.display()),
            format!("--exec-root={}", l.exec_root.display()),
            format!("--pidfile={}", l.pidfile.display()),
            format!("--config-file={}", self.config_file().display()),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
            "--ip-forward=false".into(),
            "--userland-proxy=false".into(),
            "--storage-driver=overlay2".into(),
            format!("--log-level={}", self.log_level),
        ]
    }

    /// Before the first start: the short socket dir, an empty config file, and the netns
    /// mount dockerd will leave behind written to the marker (saved), so a killed run's sweep
    /// unmounts it. A stale pidfile from a killed run in the same dir is removed.
    pub fn prepare(&self, marker: &Mutex<RunMarker>) -> anyhow::Result<()> {
        let l = &self.layout;
        std::fs::create_dir_all(&l.exec_root).with_context(|| format!("creating {}", l.exec_root.display()))?;
        std::fs::create_dir_all(&l.dir)?;
        std::fs::write(self.config_file(), "{}\n")?;
        let _ = std::fs::remove_file(&l.docker_socket);
        let _ = std::fs::remove_file(&l.pidfile);
        let mut m = marker.lock().unwrap();
        m.add_mount(l.netns_mount());
        m.add_path_to_remove(l.sock_dir.clone());
        m.save().context("saving the run marker")?;
        Ok(())
    }

    /// `<exec root>/containerd/containerd.pid`: the managed containerd's pidfile.
    pub fn containerd_pidfile(&self) -> PathBuf {
        self.layout.exec_root.join("containerd").join("containerd.pid")
    }

    /// The component: dockerd through [`START_SCRIPT`] (`/bin/sh -c <script> dockerd <flags>`;
    /// the script `exec`s dockerd, so the supervised pid is dockerd's). A profile's `command`
    /// replaces program and script together.
    ///
    /// Readiness: `GET /_ping` on its socket answers below 500 (`Readiness::UnixHttp`), which
    /// the backend awaits in `deploy` for up to `ready_within`.
    pub fn spec(&self, cwd: &Path) -> ComponentSpec {
        let command = CommandSpec::new("/bin/sh")
            .with_command_args(["-c", START_SCRIPT, "dockerd"])
            .args(self.args())
            .env("HUBCHAOS_DOCKERD", self.program.display().to_string())
            .env("HUBCHAOS_CONTAINERD_PIDFILE", self.containerd_pidfile().display().to_string());
        ComponentSpec {
            name: DOCKERD.into(),
            command,
            cwd: cwd.to_path_buf(),
            readiness: Readiness::UnixHttp { socket: self.layout.docker_socket.clone(), path: "/_ping".into() },
            ready_within: self.ready_within,
            restart: self.restart,
        }
    }

    /// Wait until `GET /_ping` answers on the socket; returns how long it took. The backend's
    /// `deploy` already waits for this; call it to time a restart (after a `kill-process`) or
    /// to wait again with a bound of your own.
    pub async fn await_ready(&self, within: Duration) -> anyhow::Result<Duration> {
        wait_unix_ready(&self.layout.docker_socket, "/_ping", within).await
    }

    /// A client of this daemon (not recorded: the harness's own calls).
    pub fn api(&self) -> DockerApi {
        DockerApi::new(&self.layout.docker_socket)
    }

    /// After dockerd has stopped: unmount what it left under its exec root, remove the short
    /// socket dir. Errors are returned, not thrown (teardown collects them).
    pub fn cleanup(&self) -> Vec<String> {
        let mut errors = unmount_all_under(&self.layout.sock_dir);
        if let Err(e) = std::fs::remove_dir_all(&self.layout.sock_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(format!("removing {}: {e}", self.layout.sock_dir.display()));
            }
        }
        errors
    }
}

/// Runs before every start of dockerd (first start and each supervisor restart): a managed
/// containerd's pidfile naming a dead process, a zombie or something that is not containerd is
/// removed, then dockerd is exec'd.
///
/// Why: after `kill-process` on dockerd its managed containerd dies too (parent-death signal)
/// but stays a zombie until the machine's init reaps it — here, many seconds. A restarted
/// dockerd finds the pidfile, sees the (zombie) pid "running", logs `libcontainerd: containerd
/// is still running`, waits for a socket that never comes and exits after ~15 s with
/// `failed to start containerd: timeout waiting for containerd to start` (measured: 17-18 s and
/// two restarts to recover, instead of under a second).
pub const START_SCRIPT: &str = r#"f="$HUBCHAOS_CONTAINERD_PIDFILE"
if [ -n "$f" ] && [ -f "$f" ]; then
  p=$(cat "$f"); s=""; c=""
  if [ -n "$p" ] && [ -r "/proc/$p/status" ]; then
    while read -r k v _; do [ "$k" = "State:" ] && s=$v; done < "/proc/$p/status"
    c=$(cat "/proc/$p/comm" 2>/dev/null)
  fi
  case "$s" in ""|Z|X) rm -f "$f" ;; *) [ "$c" = containerd ] || rm -f "$f" ;; esac
fi
exec "$HUBCHAOS_DOCKERD" "$@""#;

/// Poll `GET path` on a unix socket until it answers below 500.
pub async fn wait_unix_ready(socket: &Path, path: &str, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if unix_http_ready(socket, path).await {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            bail!("no answer to GET {path} on unix://{} within {within:?}", socket.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const NOT_INSTALLED: &str =
    "no dockerd: install Debian's docker.io (`make deps` does, as root: apt-get install --no-install-recommends docker.io busybox-static)";

/// `dockerd` on PATH, else Debian's `/usr/sbin/dockerd`.
pub fn find_dockerd() -> Option<PathBuf> {
    crate::toolchain::find_program("dockerd").or_else(|| Path::new(DEBIAN_DOCKERD).is_file().then(|| PathBuf::from(DEBIAN_DOCKERD)))
}

/// The argv that installs the daemon (and the static busybox the image factory puts in images
/// that must run). `--no-install-recommends`: no apparmor, needrestart or cgroupfs-mount.
pub fn install_command() -> Vec<&'static str> {
    vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io", "busybox-static"]
}

/// Make sure a dockerd exists: as root, install Debian's `docker.io` when it is missing; as
/// anyone else, an error naming the command (the scenario is skipped with it).
///
/// While the package installs, a `policy-rc.d` that denies service starts is in place (unless
/// the machine has one already, as Debian container images do): otherwise the package's init
/// script could start a system dockerd with the default bridge (docker0), which this
/// harness must never create. Blocking (apt): call it from `spawn_blocking`.
pub fn ensure_docker_installed() -> Result<PathBuf, String> {
    if let Some(p) = find_dockerd() {
        return Ok(p);
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(format!("{NOT_INSTALLED}; not root, so the harness cannot install it"));
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed = if policy.exists() {
        false
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(policy, "#!/bin/sh\n# placed by hubchaos while installing docker.io: start no services\nexit 101\n")
            .and_then(|_| std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("writing {}: {e}", policy.display()))?;
        true
    };
    let apt = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("running {}: {e}", args.join(" ")))
    };
    let mut result = apt(&install_command());
    if result.as_ref().map(|o| !o.status.success()).unwrap_or(true) {
        // A fresh machine has no package lists yet.
        let _ = apt(&["apt-get", "update", "-qq"]);
        result = apt(&install_command());
    }
    if placed {
        let _ = std::fs::remove_file(policy);
    }
    let out = result?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", install_command().join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    find_dockerd().ok_or_else(|| format!("{} succeeded but no dockerd was found", install_command().join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> NodeLayout {
        NodeLayout::with_sock_base(Path::new("/runs/r1/s"), "r1", Path::new("/run/hubchaos"))
    }

    #[test]
    fn the_daemon_gets_its_own_everything_and_no_bridge() {
        let cfg = DockerdConfig::with_program("/usr/sbin/dockerd".into(), layout());
        let args = cfg.args();
        let l = layout();
        for want in [
            format!("--host=unix://{}", l.docker_socket.display()),
            format!("--data-root={}", l.data_root.display()),
            format!("--exec-root={}", l.exec_root.display()),
            format!("--pidfile={}", l.pidfile.display()),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
            "--ip-forward=false".into(),
            "--log-level=warn".into(),
        ] {
            assert!(args.contains(&want), "{want} missing from {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--host=tcp") || a.contains("bip") || a.contains("0.0.0.0")));
        assert!(args.iter().any(|a| a.starts_with("--config-file=/runs/r1/s/node/")), "never /etc/docker/daemon.json");
        let spec = cfg.spec(Path::new("/runs/r1/s"));
        assert_eq!(spec.name, DOCKERD);
        assert_eq!(spec.restart, RestartPolicy::Always);
        assert_eq!(spec.command.options(), args.as_slice(), "the flags go to dockerd through the script");
        assert_eq!(spec.command.env["HUBCHAOS_DOCKERD"], "/usr/sbin/dockerd");
    }

    /// The start script removes a stale containerd pidfile (dead pid, or not containerd) and
    /// execs the program with the flags.
    #[test]
    fn the_start_script_drops_a_stale_containerd_pidfile_and_execs() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("containerd.pid");
        let run = |pid: &str| {
            std::fs::write(&pidfile, pid).unwrap();
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", START_SCRIPT, "dockerd", "hello", "world"])
                .env("HUBCHAOS_DOCKERD", "/bin/echo")
                .env("HUBCHAOS_CONTAINERD_PIDFILE", &pidfile)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
            pidfile.exists()
        };
        assert!(!run("999999999"), "a pid that does not exist");
        assert!(!run(&std::process::id().to_string()), "a live process that is not containerd");
        assert!(!run(""), "empty");
    }

    #[test]
    fn install_is_debians_package_without_recommends() {
        let cmd = install_command();
        assert!(cmd.contains(&"docker.io") && cmd.contains(&"--no-install-recommends"));
    }

    #[test]
    fn prepare_records_the_netns_mount_before_the_daemon_starts() {
        let dir = tempfile::tempdir().unwrap();
        let marker = Mutex::new(RunMarker::create_in(&dir.path().join("active"), "d1", dir.path()).unwrap());
        let l = NodeLayout::with_sock_base(dir.path(), "d1", &dir.path().join("s"));
        let cfg = DockerdConfig::with_program("dockerd".into(), l.clone());
        cfg.prepare(&marker).unwrap();
        assert!(l.exec_root.is_dir());
        assert_eq!(std::fs::read_to_string(cfg.config_file()).unwrap().trim(), "{}");
        assert_eq!(marker.lock().unwrap().mounts, vec![l.netns_mount()]);
        assert!(cfg.cleanup().is_empty());
        assert!(!l.sock_dir.exists());
    }
}
