//! kind and helm, built from their Go modules at the pinned versions (no registry, no release
//! download is reachable here), or taken from `PATH` when the version there is the pinned one.
//!
//! Each is `go install`ed into `$HUBCHAOS_HOME/tools/<name>-<version>/bin/` with the Go module
//! and build caches under `$HUBCHAOS_HOME/go/`, so a warm machine finds it at once and a
//! rebuild after a pin change reuses every package that did not change. `GOTOOLCHAIN=local`:
//! the Go on the machine builds it, nothing else is fetched. helm gets the Kubernetes version
//! at link time, or `helm template` assumes Kubernetes 1.20 for `.Capabilities.KubeVersion`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::toolchain::{find_program, KubePins};

/// One program built from a Go module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTool {
    /// `kind`, `helm`: the binary's name.
    pub name: &'static str,
    /// The package to install, e.g. `helm.sh/helm/v3/cmd/helm`.
    pub package: &'static str,
    pub version: String,
    /// `-X` settings for the linker.
    pub ldflags: Vec<String>,
    /// Arguments that make the binary print its version, and how to read the version off.
    version_args: &'static [&'static str],
}

/// kind and helm for these pins.
pub fn tools(pins: &KubePins) -> Vec<GoTool> {
    let (major, minor) = pins.major_minor().unwrap_or_default();
    vec![
        GoTool { name: "kind", package: "sigs.k8s.io/kind", version: pins.kind.clone(), ldflags: Vec::new(), version_args: &["version"] },
        GoTool {
            name: "helm",
            package: "helm.sh/helm/v3/cmd/helm",
            version: pins.helm.clone(),
            ldflags: vec![
                format!("-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major}"),
                format!("-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}"),
                format!("-X helm.sh/helm/v3/internal/version.version={}", pins.helm),
            ],
            version_args: &["version", "--template", "{{.Version}}"],
        },
    ]
}

/// What the node image needs besides Kubernetes and etcd: coredns (the cluster's DNS, an image)
/// and crictl (kind's node tooling; Debian has none), both installable from their modules.
pub fn node_tools(pins: &KubePins) -> Vec<GoTool> {
    vec![
        GoTool {
            name: "coredns",
            package: "github.com/coredns/coredns",
            version: pins.coredns.clone(),
            ldflags: Vec::new(),
            version_args: &["-version"],
        },
        GoTool {
            name: "crictl",
            package: "sigs.k8s.io/cri-tools/cmd/crictl",
            version: pins.cri_tools.clone(),
            // As its Makefile sets it; otherwise it says "unknown".
            ldflags: vec![format!("-X sigs.k8s.io/cri-tools/pkg/version.Version={}", pins.cri_tools)],
            version_args: &["--version"],
        },
    ]
}

/// Where the Go module and build caches live (`$HUBCHAOS_HOME/go/{mod,build}`).
pub fn go_env(home: &Path) -> [(&'static str, PathBuf); 2] {
    [("GOMODCACHE", home.join("go").join("mod")), ("GOCACHE", home.join("go").join("build"))]
}

/// Where a tool ends up, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// On `PATH`, at the pinned version.
    OnPath,
    /// Built earlier, under `$HUBCHAOS_HOME`.
    Cached,
    /// Built now, in this long.
    Built(Duration),
}

impl GoTool {
    /// `$HUBCHAOS_HOME/tools/<name>-<version>/bin/<name>`.
    pub fn installed_path(&self, home: &Path) -> PathBuf {
        home.join("tools").join(format!("{}-{}", self.name, self.version)).join("bin").join(self.name)
    }

    /// Whether `output` (of `<name> <version_args>`) names the pinned version: `kind v0.30.0
    /// go1.24 linux/amd64`, helm's bare `v3.19.0`, `crictl version v1.34.0`, `CoreDNS-1.12.1`.
    pub fn reports_version(&self, output: &str) -> bool {
        let dashed = format!("-{}", self.version.trim_start_matches('v'));
        output.split_whitespace().any(|word| word == self.version || word.ends_with(&dashed))
    }

    fn version_of(&self, program: &Path) -> Option<String> {
        let out = Command::new(program).args(self.version_args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The tool on `PATH`, when one taken from there is trusted: kind's version says what it
    /// is; helm's does not say which Kubernetes it was linked for (a helm built without it
    /// assumes 1.20), so helm is always the one built here.
    fn on_path(&self) -> Option<PathBuf> {
        (self.name != "helm").then(|| find_program(self.name)).flatten()
    }

    /// The pinned version: from `PATH`, from the cache, or built now (progress on stderr, the
    /// build's output in `<tool dir>/build.log`, whose tail a failure shows).
    pub fn ensure(&self, home: &Path) -> anyhow::Result<Found> {
        if let Some(p) = self.on_path().filter(|p| self.version_of(p).is_some_and(|v| self.reports_version(&v))) {
            return Ok(Found { path: p, how: How::OnPath });
        }
        let target = self.installed_path(home);
        if target.is_file() && self.version_of(&target).is_some_and(|v| self.reports_version(&v)) {
            return Ok(Found { path: target, how: How::Cached });
        }
        let go = which_go()?;
        let dir = target.parent().and_then(Path::parent).context("tool dir")?.to_path_buf();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_path = dir.join("build.log");
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let spec = format!("{}@{}", self.package, self.version);
        eprintln!("hubchaos: [{}] go install {spec} …", self.name);
        let started = Instant::now();
        let mut cmd = Command::new(&go);
        cmd.arg("install").arg("-trimpath");
        if !self.ldflags.is_empty() {
            cmd.arg(format!("-ldflags={}", self.ldflags.join(" ")));
        }
        cmd.arg(&spec)
            .env("GOBIN", dir.join("bin"))
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .envs(go_env(home))
            .stdout(log.try_clone()?)
            .stderr(log);
        let status = cmd.status().with_context(|| format!("running {}", go.display()))?;
        let took = started.elapsed();
        if !status.success() {
            bail!(
                "[{}] go install {spec} failed after {:.0} s ({status}); last lines of {}:\n{}",
                self.name,
                took.as_secs_f64(),
                log_path.display(),
                tail(&log_path, 15)
            );
        }
        let version = self.version_of(&target).unwrap_or_default();
        if !self.reports_version(&version) {
            bail!("[{}] built {} but it reports {version:?}, not {}", self.name, target.display(), self.version);
        }
        eprintln!("hubchaos: [{}] built in {:.1} s: {}", self.name, took.as_secs_f64(), target.display());
        Ok(Found { path: target, how: How::Built(took) })
    }
}

/// The `go` on `PATH`, or a clear error saying how to get one.
pub fn which_go() -> anyhow::Result<PathBuf> {
    find_program("go").context("no `go` on PATH: kind, helm and the node image are built from Go modules; install Go 1.24 or newer")
}

/// One step of a build labelled `label` (`kind base`): `cmd` with its output appended to `log`,
/// timed on stderr; a failure quotes the log's last lines.
pub(crate) fn run_step(label: &str, what: &str, cmd: &mut std::process::Command, log: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    eprintln!("hubchaos: [{label}] {what} …");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = cmd.stdout(file.try_clone()?).stderr(file).status().with_context(|| format!("{what}: starting {cmd:?}"))?;
    if !status.success() {
        anyhow::bail!("[{label}] {what} failed ({status}); last lines of {}:\n{}", log.display(), tail(log, 15));
    }
    eprintln!("hubchaos: [{label}] {what}: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The last `n` lines of a build log (for the error of a failed step).
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::Pins;

    fn pinned() -> Vec<GoTool> {
        tools(&Pins::load_default().unwrap().kubernetes.unwrap())
    }

    #[test]
    fn helm_learns_the_kubernetes_version_at_link_time() {
        let helm = pinned().into_iter().find(|t| t.name == "helm").unwrap();
        assert!(helm.ldflags.contains(&"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1".to_string()), "{:?}", helm.ldflags);
        assert!(helm.ldflags.contains(&"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34".to_string()), "{:?}", helm.ldflags);
    }

    #[test]
    fn versions_are_read_off_what_each_tool_prints() {
        let t = pinned();
        let (kind, helm) = (&t[0], &t[1]);
        assert!(kind.reports_version(&format!("kind {} go1.26.8 linux/amd64", kind.version)));
        assert!(!kind.reports_version("kind v0.29.0 go1.24 linux/amd64"));
        assert!(helm.reports_version(&helm.version));
        assert!(!helm.reports_version("v3.18.0"));
        let n = node_tools(&Pins::load_default().unwrap().kubernetes.unwrap());
        let (coredns, crictl) = (&n[0], &n[1]);
        assert!(coredns.reports_version(&format!("CoreDNS-{}\nlinux/amd64, go1.26.8, ", coredns.version.trim_start_matches('v'))));
        assert!(!coredns.reports_version("CoreDNS-1.11.3\nlinux/amd64"));
        assert!(crictl.reports_version(&format!("crictl version {}", crictl.version)));
    }

    #[test]
    fn a_tool_lives_under_home_by_name_and_version() {
        let kind = &pinned()[0];
        let p = kind.installed_path(Path::new("/h"));
        assert_eq!(p, Path::new("/h/tools").join(format!("kind-{}", kind.version)).join("bin/kind"));
    }

    /// A real build from the Go module proxy (minutes on 2 cores; `hubchaos cluster tools`).
    #[test]
    #[ignore = "builds kind from the Go module proxy (about a minute on 2 cores); needs go"]
    fn kind_builds_from_its_module_and_reports_its_version() {
        let home = tempfile::tempdir().unwrap();
        let kind = pinned().remove(0);
        let found = kind.ensure(home.path()).unwrap();
        assert!(matches!(found.how, How::Built(_) | How::OnPath), "{found:?}");
        if found.how != How::OnPath {
            assert_eq!(kind.ensure(home.path()).unwrap().how, How::Cached);
        }
    }
}
