//! The image cleaner: the real `docker-image-cleaner` from PyPI (pinned in `fixtures/pins.yaml`
//! to 1.0.0b3, a pre-release: installed with `pip install --pre`), as BinderHub's image-cleaner
//! DaemonSet runs it on each node, configured only through its environment, as the chart does.
//!
//! It talks to dockerd THROUGH the recorder: `DOCKER_HOST=unix://<recorder listener>`, so every
//! Docker API request it makes is recorded as client `image-cleaner`, upstream `dockerd`.
//!
//! What 1.0.0b3 does (its `docker_image_cleaner/cleaner.py`; console script
//! `docker-image-cleaner`, also `python -m docker_image_cleaner`):
//! - at start: `docker.from_env(version="auto")` (`GET /version`; a `DOCKER_HOST` without a
//!   scheme dies right here with `docker.errors.DockerException: Invalid bind address format:
//!   <path>`, exit code 1); logs `Pruning docker images when <path> has <threshold> used`.
//! - every cycle: logs `<used>% used` (relative) or `<used>GB used` (absolute) — one line per
//!   cycle, the line [`CYCLE_LINE`] matches. Relative `used` is `100 * (1 - min(f_bavail /
//!   f_blocks, f_favail / f_files))`: the fuller of blocks and inodes.
//! - when `used >= THRESHOLD_HIGH`: `GET /images/json?all=1`, then `POST /containers/prune`,
//!   `POST /images/prune` (dangling), and if no dangling image was deleted or usage is still
//!   over, `POST /images/prune` with `dangling=false` (every unused image); logs `Deleted N
//!   images, freed X GB in S seconds.` Never the build cache. Then sleeps `INTERVAL_SECONDS`.
//!   A threshold of 0 therefore prunes every unused image every cycle: 0 does NOT disable it
//!   (measured: `0.0% inodes or blocks`, then `Deleted 3 images` on the first cycle).
//! - `THRESHOLD_LOW` is read by nobody; absolute mode refuses thresholds up to 1 GiB.
//! - `NODE_NAME` makes it cordon the Kubernetes node while pruning (kind backend only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};

/// The component name (and the recorder client name).
pub const IMAGE_CLEANER: &str = "image-cleaner";

/// One log line per cleaning cycle (`2026-11-22 03:07:23,133 11.5% used`).
pub const CYCLE_LINE: &str = r"\d+(\.\d+)?% used$|\d+\.\d+GB used$";
/// Its settings as it announces them at start (`Pruning docker images when /x has 80.0% inodes
/// or blocks used`): the threshold it really runs with, whatever was meant (plotted in `disk.svg`).
pub const START_LINE: &str = r"Pruning docker images when .* has .* used$";
/// What a pruning round deleted (`Deleted 4 images, freed 0.02GB in 0 seconds.`).
pub const DELETED_LINE: &str = r"Deleted \d+ (images|containers), freed";
/// Its own errors: the last line of a Python traceback (`docker.errors.DockerException: ...`),
/// and its warnings about timeouts.
pub const ERROR_LINE: &str = r"^[A-Za-z_][\w.]*(Error|Exception)(: |$)|Timeout pruning";

/// `DOCKER_IMAGE_CLEANER_THRESHOLD_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdType {
    /// `THRESHOLD_HIGH` is a percentage of blocks or inodes used, whichever is fuller.
    Relative,
    /// `THRESHOLD_HIGH` is bytes under `PATH_TO_CHECK` (walked file by file; over 1 GiB only).
    Absolute,
}

impl ThresholdType {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdType::Relative => "relative",
            ThresholdType::Absolute => "absolute",
        }
    }
}

/// The cleaner's settings, named after its environment variables.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CleanerOptions {
    /// `DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS`: sleep between cycles.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// `DOCKER_IMAGE_CLEANER_DELAY_SECONDS` (only used after a prune timeout, as max(delay, 30)).
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    pub threshold_type: ThresholdType,
    /// `DOCKER_IMAGE_CLEANER_THRESHOLD_HIGH`: percent (relative) or bytes (absolute).
    pub threshold_high: f64,
    /// `DOCKER_IMAGE_CLEANER_TIMEOUT_SECONDS`: the docker client's timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `DOCKER_IMAGE_CLEANER_NODE_NAME`: cordon this Kubernetes node while pruning (kind only).
    pub node_name: Option<String>,
    /// `DOCKER_IMAGE_CLEANER_PATH_TO_CHECK`; `None` = the node's data root.
    pub path_to_check: Option<PathBuf>,
}

impl Default for CleanerOptions {
    /// 1.0.0b3's own defaults (interval 300 s, delay 1 s, relative, 80 %, timeout 300 s).
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            delay: Duration::from_secs(1),
            threshold_type: ThresholdType::Relative,
            threshold_high: 80.0,
            timeout: Duration::from_secs(300),
            node_name: None,
            path_to_check: None,
        }
    }
}

impl CleanerOptions {
    /// Cycles every few seconds, so a scenario sees many in a short window.
    pub fn quick() -> Self {
        Self { interval: Duration::from_secs(5), ..Self::default() }
    }

    pub fn threshold(mut self, percent: f64) -> Self {
        self.threshold_type = ThresholdType::Relative;
        self.threshold_high = percent;
        self
    }

    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The environment the cleaner gets (DOCKER_HOST included).
    pub fn env(&self, data_root: &Path, docker_host: &str) -> BTreeMap<String, String> {
        let path = self.path_to_check.as_deref().unwrap_or(data_root);
        let mut env = BTreeMap::from([
            ("DOCKER_HOST".to_string(), docker_host.to_string()),
            ("DOCKER_IMAGE_CLEANER_PATH_TO_CHECK".into(), path.display().to_string()),
            ("DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS".into(), secs(self.interval)),
            ("DOCKER_IMAGE_CLEANER_DELAY_SECONDS".into(), secs(self.delay)),
            ("DOCKER_IMAGE_CLEANER_THRESHOLD_TYPE".into(), self.threshold_type.as_str().into()),
            ("DOCKER_IMAGE_CLEANER_THRESHOLD_HIGH".into(), format!("{}", self.threshold_high)),
            // An int in 1.0.0b3 (`int(os.getenv(...))`): whole seconds only.
            ("DOCKER_IMAGE_CLEANER_TIMEOUT_SECONDS".into(), self.timeout.as_secs().max(1).to_string()),
            // Its log lines go out as they happen (logging to stderr is unbuffered anyway).
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ]);
        if let Some(node) = &self.node_name {
            env.insert("DOCKER_IMAGE_CLEANER_NODE_NAME".into(), node.clone());
        }
        env
    }

    /// `docker-image-cleaner` from the toolchain's venv, configured by environment only.
    /// `docker_host` is normally `unix://<recorder listener>` ([`docker_host_for`]).
    pub fn spec(&self, program: &Path, data_root: &Path, docker_host: &str, cwd: &Path) -> ComponentSpec {
        let mut command = CommandSpec::new(program);
        command.env = self.env(data_root, docker_host);
        ComponentSpec {
            name: IMAGE_CLEANER.into(),
            command,
            cwd: cwd.to_path_buf(),
            // No endpoint: "up" is judged by its log (a cycle) and its restarts (component-up).
            readiness: Readiness::Running,
            ready_within: Duration::from_secs(10),
            // A DaemonSet pod.
            restart: RestartPolicy::Always,
        }
    }
}

/// `unix://<socket>`: what a Docker client needs (without the scheme, docker-py takes it for
/// a TCP address and fails).
pub fn docker_host_for(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn every_setting_goes_through_the_cleaners_own_environment() {
        let o = CleanerOptions::quick().threshold(75.5);
        let spec = o.spec(
            Path::new("/venv/bin/docker-image-cleaner"),
            Path::new("/r/node/data-root"),
            "unix:///run/hubchaos/x/cleaner.sock",
            Path::new("/r"),
        );
        let env = &spec.command.env;
        assert_eq!(env["DOCKER_HOST"], "unix:///run/hubchaos/x/cleaner.sock");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_PATH_TO_CHECK"], "/r/node/data-root");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS"], "5");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_DELAY_SECONDS"], "1");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_THRESHOLD_TYPE"], "relative");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_THRESHOLD_HIGH"], "75.5");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_TIMEOUT_SECONDS"], "300");
        assert!(!env.contains_key("DOCKER_IMAGE_CLEANER_NODE_NAME"));
        assert!(spec.command.args.is_empty(), "configured by environment only");
        assert_eq!(spec.name, IMAGE_CLEANER);
        assert_eq!(CleanerOptions::default().threshold(0.0).env(Path::new("/d"), "unix:///s")["DOCKER_IMAGE_CLEANER_THRESHOLD_HIGH"], "0");
        assert_eq!(docker_host_for(Path::new("/s/c.sock")), "unix:///s/c.sock");
    }

    #[test]
    fn the_log_patterns_match_what_1_0_0b3_prints() {
        let cycle = Regex::new(CYCLE_LINE).unwrap();
        let deleted = Regex::new(DELETED_LINE).unwrap();
        let error = Regex::new(ERROR_LINE).unwrap();
        // Lines 1.0.0b3 printed in a run here.
        assert!(cycle.is_match("2026-11-22 03:07:23,133 11.5% used"));
        assert!(cycle.is_match("2026-11-22 03:07:23,133 0.02GB used"));
        assert!(!cycle.is_match("2026-11-22 03:07:18,089 Pruning docker images when /d has 5.0% inodes or blocks used"));
        assert!(Regex::new(START_LINE)
            .unwrap()
            .is_match("2026-11-22 03:07:18,089 Pruning docker images when /d has 5.0% inodes or blocks used"));
        assert!(deleted.is_match("2026-11-22 03:07:18,133 Deleted 4 images, freed 0.02GB in 0 seconds."));
        assert!(error.is_match("docker.errors.DockerException: Invalid bind address format: /tmp/hc4/run1/docker.sock"));
        assert!(error.is_match("FileNotFoundError: [Errno 2] No such file or directory: '/d'"));
        assert!(!error.is_match("    raise errors.DockerException("));
        assert!(!error.is_match("Traceback (most recent call last):"));
    }
}
