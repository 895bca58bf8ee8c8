//! The Hub: the real `jupyterhub`, configured by `fixtures/hub/jupyterhub_config.py` from a
//! settings JSON the harness writes into the run dir (no templating: the config file documents
//! every setting). SimpleLocalProcessSpawner starts real `jupyterhub-singleuser` servers.
//! The proxy is external (see `proxy.rs`); the culler is an external service with a token.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use serde::Serialize;

use super::seed::SeedPlan;
use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};

/// Scenario-level choices about the hub (the rest is derived per run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HubOptions {
    pub allow_named_servers: bool,
    pub named_server_limit_per_user: u32,
    /// How often the hub refreshes activity from the proxy AND re-checks the proxy's routes
    /// (the only thing that re-adds routes after an external proxy restart).
    #[serde(with = "humantime_serde")]
    pub last_activity_interval: Duration,
    /// How often a single-user server posts its own activity (0 = never).
    #[serde(with = "humantime_serde")]
    pub singleuser_activity_interval: Duration,
    /// How fast the hub notices a dead single-user process.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    pub admin_users: Vec<String>,
    pub log_level: String,
    /// Python appended to the hub config (scenario mutants, profile overrides).
    pub extra_config: String,
    /// Scopes of the culler's service role (default [`CULLER_SCOPES`]).
    pub culler_scopes: Vec<String>,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            allow_named_servers: false,
            named_server_limit_per_user: 0,
            last_activity_interval: Duration::from_secs(300),
            singleuser_activity_interval: Duration::from_secs(300),
            poll_interval: Duration::from_secs(30),
            admin_users: Vec::new(),
            log_level: "INFO".into(),
            extra_config: String::new(),
            culler_scopes: CULLER_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A service the hub knows, with its token and scopes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceSetting {
    pub name: String,
    pub api_token: String,
    pub scopes: Vec<String>,
}

/// The settings JSON read by `fixtures/hub/jupyterhub_config.py` (field names are the file's).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HubSettings {
    pub run_dir: PathBuf,
    pub hub_bind_url: String,
    pub public_url: String,
    pub proxy_api_url: String,
    pub proxy_auth_token: String,
    pub db_url: String,
    pub singleuser_cmd: PathBuf,
    pub singleuser_activity_interval: u64,
    pub singleuser_env: std::collections::BTreeMap<String, String>,
    pub last_activity_interval: u64,
    pub poll_interval: u64,
    pub allow_named_servers: bool,
    pub named_server_limit_per_user: u32,
    pub admin_users: Vec<String>,
    pub log_level: String,
    pub services: Vec<ServiceSetting>,
    pub extra_config: String,
}

/// The hub's component name (its log is `logs/hub.log`).
pub const HUB: &str = "hub";

/// Scopes jupyterhub-idle-culler 2.0.0 needs: list users, read their activity and servers,
/// stop servers; `admin:users` lets it delete users (`--cull-users`).
pub const CULLER_SCOPES: &[&str] = &["list:users", "read:users:activity", "read:servers", "delete:servers", "admin:users"];
/// Scopes of the harness's own service: observe everything, drive users and servers.
pub const HARNESS_SCOPES: &[&str] = &[
    "admin:users",
    "admin:servers",
    "users:activity",
    "read:metrics",
    "list:users",
    "read:users",
    "servers",
    "access:servers",
    "proxy",
    "read:hub",
];

impl HubSettings {
    pub fn hub_port(&self) -> anyhow::Result<u16> {
        let port = self.hub_bind_url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok());
        port.with_context(|| format!("no port in hub_bind_url {}", self.hub_bind_url))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", path.display()))
    }

    /// `jupyterhub -f <config>` with the settings path in the environment.
    pub fn spec(&self, jupyterhub: &Path, config: &Path, settings_path: &Path) -> ComponentSpec {
        let command = CommandSpec::new(jupyterhub)
            .arg("-f")
            .arg(config.to_string_lossy())
            .env("HUBCHAOS_HUB_SETTINGS", settings_path.to_string_lossy())
            .env("CONFIGPROXY_AUTH_TOKEN", &self.proxy_auth_token)
            // The hub stamps its log lines with local time and no zone: in UTC, whatever the
            // caller's TZ, they convert to the run's clock (see `observe::hub_log`).
            .env("TZ", "UTC");
        ComponentSpec {
            name: HUB.into(),
            command,
            cwd: self.run_dir.clone(),
            readiness: Readiness::Http { url: format!("{}/hub/api/", self.hub_bind_url.trim_end_matches('/')) },
            ready_within: Duration::from_secs(90),
            restart: RestartPolicy::Always,
        }
    }
}

/// What `seed_users.py` reported.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
pub struct SeedReport {
    pub users: u64,
    #[serde(default)]
    pub named_servers: u64,
    /// The script's own elapsed time.
    pub elapsed_s: f64,
    /// Wall time including interpreter start, measured by the harness.
    #[serde(default)]
    pub wall_s: f64,
}

/// Write the seed users into the hub database (the hub must not be running).
pub async fn seed_database(python: &Path, script: &Path, plan: &SeedPlan, db_url: &str, work_dir: &Path) -> anyhow::Result<SeedReport> {
    let input = work_dir.join("seed.json");
    std::fs::write(&input, serde_json::to_vec(&plan.to_json(db_url, SystemTime::now()))?)?;
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(python).arg(script).arg("--input").arg(&input).kill_on_drop(true).output(),
    )
    .await
    .context("seeding the hub database took more than 300 s")?
    .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("seeding the hub database failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let mut report: SeedReport = serde_json::from_str(line.lines().last().unwrap_or_default())
        .with_context(|| format!("unexpected output of {}: {line}", script.display()))?;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_carry_the_config_files_field_names() {
        let s = HubSettings {
            run_dir: "/run".into(),
            hub_bind_url: "http://127.0.0.1:18081".into(),
            public_url: "http://127.0.0.1:18000".into(),
            proxy_api_url: "http://127.0.0.1:18001".into(),
            proxy_auth_token: "p".into(),
            db_url: "sqlite:////run/jupyterhub.sqlite".into(),
            singleuser_cmd: "/env/bin/jupyterhub-singleuser".into(),
            singleuser_activity_interval: 300,
            singleuser_env: Default::default(),
            last_activity_interval: 5,
            poll_interval: 30,
            allow_named_servers: true,
            named_server_limit_per_user: 0,
            admin_users: vec![],
            log_level: "INFO".into(),
            services: vec![],
            extra_config: String::new(),
        };
        let v = serde_json::to_value(&s).unwrap();
        let config = include_str!("../../../fixtures/hub/jupyterhub_config.py");
        for key in v.as_object().unwrap().keys() {
            assert!(config.contains(&format!("\"{key}\"")), "config file does not read setting {key}");
        }
        assert_eq!(s.hub_port().unwrap(), 18081);
        let spec = s.spec(Path::new("jupyterhub"), Path::new("cfg.py"), Path::new("settings.json"));
        assert_eq!(spec.command.env["HUBCHAOS_HUB_SETTINGS"], "settings.json");
        assert_eq!(spec.command.env["TZ"], "UTC", "the hub's log times are read as UTC");
    }
}
