//! BinderHub: the real one, from the user (`HUBCHAOS_BINDERHUB`: a checkout, a wheel or a pip
//! spec; BinderHub is not on PyPI), installed with the pinned repo2docker into an environment of
//! its own, and run without Kubernetes as upstream's local testing config runs it: builds by
//! `jupyter-repo2docker` on the node's dockerd, "is the image built?" asked of that dockerd, the
//! API-only mode (`/build`, `/metrics`, `/versions`, `/health`).
//!
//! What it runs with, and why (each seen here, 2026-11):
//! - repo2docker 2026.4 runs `docker buildx build`: the buildx plugin is Debian trixie's
//!   (`DOCKER_CONFIG/cli-plugins/docker-buildx`), with the node's dockerd (bookworm's 20.10).
//! - Builds run with `--network=none` (repo2docker's `DockerEngine.extra_buildx_build_args`):
//!   the node's dockerd has no bridge network (`--bridge=none`), and BuildKit's RUN then fails
//!   with "network bridge not found"; the sample repos need no network.
//! - repo2docker's content providers are limited to Git: its Dataverse provider fetches a list
//!   of installations from the internet while detecting ANY repo, before Git is tried; offline
//!   every build fails there.
//! - The per-IP rate limit is off (every harness client is 127.0.0.1).
//!
//! The build executor is the scenario's choice ([`BuildExecutor`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};
use crate::component::sample_repos::SampleRepo;
use crate::observe::history::{Event, History};

/// The component name (and the prefix of its metrics: `binderhub_*`).
pub const BINDERHUB: &str = "binderhub";

/// The phase recorded once BinderHub answers. Its detail is JSON: `ready_s`, and the
/// `concurrent_build_limit` it runs with, so that a report drawn from the history alone (or
/// redrawn later from `history.jsonl`) can show the limit.
pub const BINDER_DEPLOYED: &str = "binder-deployed";

/// The detail of the [`BINDER_DEPLOYED`] phase.
pub fn deployed_detail(ready_s: f64, concurrent_build_limit: u32) -> String {
    serde_json::json!({ "ready_s": ready_s, "concurrent_build_limit": concurrent_build_limit }).to_string()
}

/// The `concurrent_build_limit` BinderHub ran with, from its [`BINDER_DEPLOYED`] phase; `None`
/// for a run without BinderHub, or one recorded before the phase carried the limit.
pub fn recorded_build_limit(history: &History) -> Option<u32> {
    history.entries.iter().find_map(|e| match &e.event {
        Event::Phase(p) if p.name == BINDER_DEPLOYED => {
            let detail: serde_json::Value = serde_json::from_str(&p.detail).ok()?;
            detail.get("concurrent_build_limit")?.as_u64()?.try_into().ok()
        }
        _ => None,
    })
}

/// The environment variable naming the BinderHub to test.
pub const BINDERHUB_ENV: &str = "HUBCHAOS_BINDERHUB";

/// Why a binder scenario is skipped without it (also what `hubchaos doctor` says).
pub const HOW_TO_PROVIDE: &str = "needs BinderHub: set HUBCHAOS_BINDERHUB to a BinderHub checkout, a wheel or a pip spec \
     (BinderHub is not on PyPI; e.g. a clone of jupyterhub/binderhub)";

/// The BinderHub the user gave, if any.
pub fn binderhub_from_env() -> Option<String> {
    std::env::var(BINDERHUB_ENV).ok().filter(|s| !s.trim().is_empty())
}

/// How BinderHub builds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildExecutor {
    /// Upstream's `LocalRepo2dockerBuild`: one repo2docker per `/build` request (no
    /// coalescing), one pool thread per request.
    Local,
    /// The project's `hubchaos_build.UnitBuild` (`fixtures/binder/`): one build unit per build
    /// name; a second request follows the running unit, holding two pool threads (watch + log)
    /// while it follows, as `KubernetesBuildExecutor` does with build pods.
    Unit,
}

impl BuildExecutor {
    /// The `build_class` value of `fixtures/binder/binderhub_config.py`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildExecutor::Local => "local",
            BuildExecutor::Unit => "unit",
        }
    }
}

/// Where BinderHub finds the sample repos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepoSource {
    /// `/build/git/<file:// URL>/main`: `GitRepoProvider` resolves the ref with `git ls-remote`.
    Git,
    /// `/build/gh/hubchaos/<repo>/main`: `GitHubRepoProvider` resolves the ref through the GitHub
    /// API (the stand-in, [`crate::component::github_api`]) and repo2docker clones from
    /// `https://github.com/`, redirected to the local repos.
    GitHub,
}

/// What a scenario decides about BinderHub.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinderOptions {
    pub executor: BuildExecutor,
    pub source: RepoSource,
    /// `BinderHub.concurrent_build_limit`; its build pool has twice as many threads.
    pub concurrent_build_limit: u32,
    /// How long BinderHub may take to answer `/versions` after it starts.
    #[serde(with = "humantime_serde")]
    pub ready_within: Duration,
    /// The repositories it is asked to build, made at run time.
    pub repos: Vec<SampleRepo>,
}

impl Default for BinderOptions {
    /// Build pods, and a pool small enough that a handful of watchers fills it (upstream's
    /// default limit is 32: 64 threads).
    fn default() -> Self {
        Self {
            executor: BuildExecutor::Unit,
            source: RepoSource::Git,
            concurrent_build_limit: 2,
            ready_within: Duration::from_secs(30),
            repos: Vec::new(),
        }
    }
}

/// The settings file `fixtures/binder/binderhub_config.py` reads (`HUBCHAOS_BINDER_SETTINGS`).
#[derive(Debug, Clone, Serialize)]
pub struct BinderSettings {
    pub port: u16,
    pub build_class: &'static str,
    pub concurrent_build_limit: u32,
    pub image_prefix: String,
    pub hub_url: String,
    pub repo2docker_config: PathBuf,
    /// `GitHubRepoProvider.api_base_path` (the stand-in), for [`RepoSource::GitHub`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_api: Option<String>,
    pub rate_limit: u32,
    /// Labels every built image carries (`hubchaos.run=<run id>`: the run's faults and sweeps
    /// find them).
    pub labels: BTreeMap<String, String>,
}

/// repo2docker's config for every build: Git as the only content provider, builds without a
/// network (see the module docs).
pub const REPO2DOCKER_CONFIG: &str = "\
# Written by hubchaos: repo2docker as BinderHub runs it on the harness's node.
from repo2docker.contentproviders import Git

c.Repo2Docker.content_providers = [Git]
c.DockerEngine.extra_buildx_build_args = [\"--network=none\"]
";

/// Where BinderHub's run files go.
#[derive(Debug, Clone)]
pub struct BinderLayout {
    pub dir: PathBuf,
    pub settings: PathBuf,
    pub repo2docker_config: PathBuf,
    /// `DOCKER_CONFIG`: holds `cli-plugins/docker-buildx`.
    pub docker_config: PathBuf,
    /// One file per running build unit (its process group), written by the unit executor.
    pub units: PathBuf,
    /// BinderHub's and its builds' `TMPDIR`.
    pub tmp: PathBuf,
}

impl BinderLayout {
    pub fn new(run_dir: &Path) -> Self {
        let dir = run_dir.join("binder");
        Self {
            settings: dir.join("settings.json"),
            repo2docker_config: dir.join("repo2docker_config.py"),
            docker_config: dir.join("docker-config"),
            units: dir.join("units"),
            tmp: dir.join("tmp"),
            dir,
        }
    }

    /// Write the settings, repo2docker's config and the docker CLI config dir with `buildx`.
    pub fn write(&self, settings: &BinderSettings, buildx: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.docker_config.join("cli-plugins"))?;
        std::fs::create_dir_all(&self.units)?;
        std::fs::create_dir_all(&self.tmp)?;
        std::fs::write(&self.repo2docker_config, REPO2DOCKER_CONFIG)?;
        std::fs::write(&self.settings, serde_json::to_vec_pretty(settings)?)?;
        let link = self.docker_config.join("cli-plugins/docker-buildx");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(buildx, &link)?;
        Ok(())
    }
}

/// The process groups of the build units still running (the unit executor's marker files).
pub fn running_units(units: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(units) else { return Vec::new() };
    dir.filter_map(|e| e.ok()).filter_map(|e| e.path().file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<i32>().ok())).collect()
}

/// `python -m binderhub -f fixtures/binder/binderhub_config.py`, from the binder environment's
/// venv (`venv_bin`: its `bin/`, first on `PATH` so `jupyter-repo2docker` is found), building on
/// the dockerd at `docker_host`.
pub fn spec(venv_bin: &Path, config: &Path, layout: &BinderLayout, docker_host: &str, port: u16, ready_within: Duration) -> ComponentSpec {
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    let env = BTreeMap::from([
        ("HUBCHAOS_BINDER_SETTINGS".to_string(), layout.settings.display().to_string()),
        ("HUBCHAOS_BUILD_UNITS".into(), layout.units.display().to_string()),
        ("DOCKER_HOST".into(), docker_host.to_string()),
        ("DOCKER_CONFIG".into(), layout.docker_config.display().to_string()),
        ("PATH".into(), path),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        // repo2docker's checkouts (`--no-clean` keeps them) land in the run dir, not /tmp.
        ("TMPDIR".into(), layout.tmp.display().to_string()),
    ]);
    let mut command =
        CommandSpec::new(venv_bin.join("python")).with_command_args(["-m", "binderhub"]).arg("-f").arg(config.display().to_string());
    command.env = env;
    ComponentSpec {
        name: BINDERHUB.into(),
        command,
        cwd: layout.dir.clone(),
        readiness: Readiness::Http { url: format!("http://127.0.0.1:{port}/versions") },
        ready_within,
        restart: RestartPolicy::Always,
    }
}

/// `/build/git/<url-quoted repo url>/<ref>?build_only=true`: a build without a launch (the
/// API-only mode allows it; no hub is involved, and no 60 s sleep before the stream closes).
pub fn build_path(repo_url: &str, git_ref: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    format!("/build/git/{}/{}?build_only=true", utf8_percent_encode(repo_url, NON_ALPHANUMERIC), git_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_path_quotes_the_whole_url_so_its_slashes_do_not_split_the_spec() {
        let p = build_path("file:///runs/r/binder/repos/slow.git", "main");
        assert_eq!(p, "/build/git/file%3A%2F%2F%2Fruns%2Fr%2Fbinder%2Frepos%2Fslow%2Egit/main?build_only=true");
    }

    #[test]
    fn the_spec_runs_binderhub_from_its_venv_on_the_nodes_dockerd_with_buildx() {
        let layout = BinderLayout::new(Path::new("/runs/r/s"));
        let s = spec(
            Path::new("/env/venv/bin"),
            Path::new("/fx/binder/binderhub_config.py"),
            &layout,
            "unix:///n/docker.sock",
            4242,
            Duration::from_secs(9),
        );
        assert_eq!(s.command.program, PathBuf::from("/env/venv/bin/python"));
        assert_eq!(s.command.args, ["-m", "binderhub", "-f", "/fx/binder/binderhub_config.py"]);
        assert_eq!(s.command.env["DOCKER_HOST"], "unix:///n/docker.sock");
        assert_eq!(s.command.env["DOCKER_CONFIG"], "/runs/r/s/binder/docker-config");
        assert!(s.command.env["PATH"].starts_with("/env/venv/bin:"));
        assert!(matches!(&s.readiness, Readiness::Http { url } if url == "http://127.0.0.1:4242/versions"));
    }

    #[test]
    fn the_build_limit_is_read_back_from_the_deployed_phase() {
        use crate::observe::history::{Entry, PhaseEvent};
        let deployed = |detail: String| {
            History::new(vec![Entry {
                at: Duration::from_secs(3),
                event: Event::Phase(PhaseEvent { name: BINDER_DEPLOYED.into(), detail }),
            }])
        };
        assert_eq!(recorded_build_limit(&deployed(deployed_detail(2.5, 3))), Some(3));
        assert_eq!(recorded_build_limit(&deployed(r#"{"ready_s":2.5}"#.into())), None, "recorded before the phase carried the limit");
        assert_eq!(recorded_build_limit(&History::default()), None);
    }

    #[test]
    fn repo2docker_is_kept_offline() {
        assert!(REPO2DOCKER_CONFIG.contains("content_providers = [Git]"));
        assert!(REPO2DOCKER_CONFIG.contains("--network=none"));
    }
}
