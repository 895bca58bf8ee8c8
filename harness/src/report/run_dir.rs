//! `target/hubchaos/runs/<run-id>/<scenario>/` and the `latest` link.
//!
//! One `make test-chaos` is one run id (the Makefile exports `HUBCHAOS_RUN_GROUP`), holding
//! one directory per scenario; a lone scenario gets a fresh run id.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::paths::runs_root;
use crate::scenario::Scenario;

pub struct RunDir {
    /// The run store this dir is in (`target/hubchaos/runs`, or `HUBCHAOS_RUNS`).
    pub root: PathBuf,
    pub group: String,
    pub path: PathBuf,
    /// Unique id of this scenario run: the run marker's name and every process's
    /// `HUBCHAOS_RUN_ID`.
    pub marker_id: String,
}

/// `20261122T024000Z-1a2b`: sortable, unique enough, readable.
pub fn new_run_id() -> String {
    let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace(['-', ':'], "");
    format!("{ts}-{:04x}", rand::random::<u16>())
}

impl RunDir {
    /// `<runs>/<group>/<backend>-<area>-<name>/` with its `logs/`, in the run store.
    pub fn create(backend: &str, scenario: &Scenario) -> std::io::Result<Self> {
        Self::create_in(&runs_root(), backend, scenario)
    }

    /// The same under another store (the runner's own tests keep theirs out of the real one).
    pub fn create_in(root: &std::path::Path, backend: &str, scenario: &Scenario) -> std::io::Result<Self> {
        let group = std::env::var("HUBCHAOS_RUN_GROUP").ok().filter(|g| !g.is_empty()).unwrap_or_else(new_run_id);
        let slug = format!("{backend}-{}-{}", scenario.area, scenario.name);
        let path = root.join(&group).join(&slug);
        std::fs::create_dir_all(path.join("logs"))?;
        let marker_id = format!("{group}-{slug}-{}", std::process::id());
        Ok(Self { root: root.to_path_buf(), group, path, marker_id })
    }

    /// Point `<store>/latest` at this run's group (replaced atomically).
    pub fn link_latest(&self) {
        let root = &self.root;
        let tmp = root.join(format!(".latest-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::os::unix::fs::symlink(&self.group, &tmp).is_ok() {
            let _ = std::fs::rename(&tmp, root.join("latest"));
        }
    }
}
