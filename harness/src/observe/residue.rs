//! Residue sampler: what spawning leaves on disk. Every interval it counts the entries of a few
//! directories (home folders of the hub's users, the single-user servers' runtime files,
//! temp files with a known prefix) and appends one sample per directory: component
//! `residue`, metric = the directory's label. `returns-to-baseline` on component `residue`
//! then says whether the disk is back where it started after the last server stopped.
//!
//! Kept apart from the `/proc` sampler: it reads directories, not processes, and what it
//! watches depends on the spawner (KubeSpawner leaves PVCs, not folders).
//!
//! A path may contain `*` components (`<run>/hub/home/*/.local/share/jupyter/runtime`): the
//! counts of every matching directory are summed. A directory that does not exist counts 0
//! (no user has spawned yet), so a curve starts at 0 rather than with a gap.
//!
//! What to expect from JupyterHub's `SimpleLocalProcessSpawner`: a home folder per user,
//! created at the user's first spawn and never removed (so `home_dirs` grows with users, not
//! with spawns: a churn of C users ends at C); a stopped jupyter-server removes its
//! `jpserver-<pid>.json` and `jpserver-<pid>-open.html`, a killed one leaves them.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};

/// The component name of residue samples.
pub const RESIDUE: &str = "residue";
/// Label of the hub's per-user home folders.
pub const HOME_DIRS: &str = "home_dirs";
/// Label of jupyter-server runtime files (`jpserver-*`) under the users' homes.
pub const RUNTIME_FILES: &str = "runtime_files";
/// Label of the entries of BinderHub's and its builds' `TMPDIR` (repo2docker checkouts, build
/// units' own directories).
pub const BINDER_TMP: &str = "binder_tmp";
/// Label of the build units still running (the unit executor's marker files).
pub const BUILD_UNITS: &str = "build_units";

/// One watched directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidueDir {
    /// The metric name of its samples, e.g. `home_dirs`.
    pub label: String,
    /// The directory; `*` components match any subdirectory.
    pub dir: PathBuf,
    /// Count only entries whose name starts with this (e.g. `repo2docker` in `/tmp`).
    pub prefix: Option<String>,
}

impl ResidueDir {
    pub fn entries(label: &str, dir: impl Into<PathBuf>) -> Self {
        Self { label: label.into(), dir: dir.into(), prefix: None }
    }

    pub fn prefixed(label: &str, dir: impl Into<PathBuf>, prefix: &str) -> Self {
        Self { label: label.into(), dir: dir.into(), prefix: Some(prefix.into()) }
    }

    /// Entries now (summed over every directory the pattern matches).
    pub fn count(&self) -> u64 {
        expand(&self.dir).iter().map(|d| count_entries(d, self.prefix.as_deref())).sum()
    }
}

/// Directories matching a path whose components may be `*`.
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for comp in pattern.components() {
        let mut next = Vec::new();
        match comp {
            Component::Normal(name) if name == "*" => {
                for base in &current {
                    let Ok(rd) = std::fs::read_dir(base) else { continue };
                    for e in rd.flatten() {
                        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            next.push(e.path());
                        }
                    }
                }
            }
            other => next.extend(current.iter().map(|b| b.join(other.as_os_str()))),
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.sort();
    current
}

fn count_entries(dir: &Path, prefix: Option<&str>) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten().filter(|e| prefix.is_none_or(|p| e.file_name().to_string_lossy().starts_with(p))).count() as u64
}

/// Samples entry counts of directories every `every`.
#[derive(Debug, Clone)]
pub struct ResidueSampler {
    pub dirs: Vec<ResidueDir>,
    pub every: Duration,
}

impl ResidueSampler {
    /// What the local hub leaves: home folders (`<run_dir>/hub/home`) and jupyter-server
    /// runtime files under them.
    pub fn local_hub(run_dir: &Path, every: Duration) -> Self {
        let home = run_dir.join("hub").join("home");
        Self {
            dirs: vec![
                ResidueDir::entries(HOME_DIRS, &home),
                ResidueDir::prefixed(RUNTIME_FILES, home.join("*").join(".local/share/jupyter/runtime"), "jpserver-"),
            ],
            every,
        }
    }

    /// What BinderHub's builds leave: the entries of its `TMPDIR` and the build units still
    /// running ([`crate::component::binderhub::BinderLayout`]).
    pub fn binder(layout: &crate::component::binderhub::BinderLayout, every: Duration) -> Self {
        Self { dirs: vec![ResidueDir::entries(BINDER_TMP, &layout.tmp), ResidueDir::entries(BUILD_UNITS, &layout.units)], every }
    }

    /// Add a watched directory.
    pub fn with(mut self, dir: ResidueDir) -> Self {
        self.dirs.push(dir);
        self
    }

    /// One sample per directory, stamped `at`.
    pub fn sample(&self, at: Duration) -> Vec<Sample> {
        self.dirs
            .iter()
            .map(|d| Sample { at, component: RESIDUE.into(), metric: d.label.clone(), labels: BTreeMap::new(), value: d.count() as f64 })
            .collect()
    }

    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        super::every(self.every, &stop, || async {
            let at = recorder.now();
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.sample(at)).await {
                Ok(batch) => sink.push_batch(batch),
                Err(e) => tracing::warn!("residue sampler tick failed: {e}"),
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_entries_prefixes_and_wildcards() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path();
        let sampler =
            ResidueSampler::local_hub(run, Duration::from_secs(1)).with(ResidueDir::prefixed("tmp_r2d", run.join("tmp"), "repo2docker"));
        // Nothing exists yet: zeros, not gaps.
        let s = sampler.sample(Duration::ZERO);
        assert_eq!(
            s.iter().map(|s| (s.metric.as_str(), s.value)).collect::<Vec<_>>(),
            [(HOME_DIRS, 0.0), (RUNTIME_FILES, 0.0), ("tmp_r2d", 0.0)]
        );

        for (user, files) in
            [("a", &["jpserver-1.json", "jpserver-1-open.html", "jupyter_cookie_secret"][..]), ("b", &["jupyter_cookie_secret"][..])]
        {
            let rt = run.join("hub/home").join(user).join(".local/share/jupyter/runtime");
            std::fs::create_dir_all(&rt).unwrap();
            for f in files {
                std::fs::write(rt.join(f), "").unwrap();
            }
        }
        std::fs::create_dir_all(run.join("tmp/repo2docker-x1")).unwrap();
        std::fs::write(run.join("tmp/other"), "").unwrap();
        let s = sampler.sample(Duration::from_secs(1));
        let got: Vec<(&str, f64)> = s.iter().map(|s| (s.metric.as_str(), s.value)).collect();
        assert_eq!(got, [(HOME_DIRS, 2.0), (RUNTIME_FILES, 2.0), ("tmp_r2d", 1.0)]);
        assert!(s.iter().all(|s| s.component == RESIDUE));
    }
}
