//! Where things live. Every location can be moved with an environment variable, so CI and
//! users can keep environments and runs where they like.

use std::path::PathBuf;

/// Shared state across runs and clones: installed environments, active-run markers.
/// `$HUBCHAOS_HOME`, default `$HOME/.cache/hubchaos`.
/// 8 hex digits of the sha256 of a run id: names the run where a path or a name must stay
/// short (socket dirs, container names, image prefixes, repo links).
pub fn short_run_id(run_id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(run_id.as_bytes())[..4])
}

pub fn hubchaos_home() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBCHAOS_HOME") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("hubchaos")
}

/// The repository's `fixtures/` (pins, hub config, seed script). `$HUBCHAOS_FIXTURES` overrides.
pub fn fixtures_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBCHAOS_FIXTURES") {
        return PathBuf::from(p);
    }
    workspace_root().join("fixtures")
}

/// The repository's `kind/charts/` (the reference chart the kind backend installs when no
/// chart is given).
pub fn charts_dir() -> PathBuf {
    workspace_root().join("kind").join("charts")
}

/// `target/hubchaos/runs` of this workspace. `$HUBCHAOS_RUNS` overrides.
pub fn runs_root() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBCHAOS_RUNS") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("hubchaos").join("runs")
}

/// Markers of runs in progress; a marker whose harness died is swept by the next run.
pub fn active_runs_dir() -> PathBuf {
    hubchaos_home().join("active")
}

/// The workspace this binary was built from (the parent of the `harness` crate).
pub fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| manifest.to_path_buf())
}
