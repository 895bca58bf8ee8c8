//! The idle culler: the real `jupyterhub-idle-culler`, as an external process pointed at the
//! hub API THROUGH the recorder (its own listener, so every request it sends is recorded as
//! `culler`). In z2jh it is a hub-managed service; running it outside keeps it faultable and
//! lets a profile swap in a culler branch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};

/// The culler's options, named as its command line names them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CullerOptions {
    /// `--timeout`: a server idle this long is culled.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `--cull-every`: seconds between rounds.
    #[serde(with = "humantime_serde")]
    pub cull_every: Duration,
    /// `--cull-users`: delete users once their servers are stopped and they are idle.
    pub cull_users: bool,
    /// `--cull-admin-users`.
    pub cull_admin_users: bool,
    /// `--remove-named-servers`: remove (not only stop) idle named servers.
    pub remove_named_servers: bool,
    /// `--concurrency`: requests in flight at once.
    pub concurrency: u32,
    /// `--max-age`: cull servers older than this regardless of activity (0 = off).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// `--api-page-size` (0 = the hub's default page size).
    pub api_page_size: u32,
}

impl Default for CullerOptions {
    /// The z2jh chart's defaults (cull.timeout 3600, every 600, concurrency 10, users false).
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3600),
            cull_every: Duration::from_secs(600),
            cull_users: false,
            cull_admin_users: true,
            remove_named_servers: false,
            concurrency: 10,
            max_age: Duration::ZERO,
            api_page_size: 0,
        }
    }
}

impl CullerOptions {
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--timeout={}", self.timeout.as_secs()),
            format!("--cull-every={}", self.cull_every.as_secs().max(1)),
            format!("--concurrency={}", self.concurrency),
            format!("--max-age={}", self.max_age.as_secs()),
            format!("--cull-admin-users={}", if self.cull_admin_users { "True" } else { "False" }),
        ];
        if self.cull_users {
            args.push("--cull-users=True".into());
        }
        if self.remove_named_servers {
            args.push("--remove-named-servers=True".into());
        }
        if self.api_page_size > 0 {
            args.push(format!("--api-page-size={}", self.api_page_size));
        }
        args
    }

    /// `python -m jupyterhub_idle_culler --url=<api_url> ...`, token in the environment.
    pub fn spec(&self, python: &Path, api_url: &str, token: &str, cwd: &Path) -> ComponentSpec {
        let command = CommandSpec::new(PathBuf::from(python))
            .with_command_args(["-m", "jupyterhub_idle_culler"])
            .arg(format!("--url={api_url}"))
            .args(self.args())
            .env("JUPYTERHUB_API_TOKEN", token);
        ComponentSpec {
            name: "culler".into(),
            command,
            cwd: cwd.to_path_buf(),
            readiness: Readiness::Running,
            ready_within: Duration::from_secs(10),
            restart: RestartPolicy::Always,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_to_the_cullers_own_flags() {
        let o = CullerOptions {
            cull_users: true,
            remove_named_servers: true,
            cull_admin_users: false,
            timeout: Duration::from_secs(60),
            cull_every: Duration::from_secs(5),
            ..Default::default()
        };
        let args = o.args();
        for want in [
            "--timeout=60",
            "--cull-every=5",
            "--cull-users=True",
            "--remove-named-servers=True",
            "--cull-admin-users=False",
            "--concurrency=10",
        ] {
            assert!(args.contains(&want.to_string()), "{want} missing from {args:?}");
        }
        let off = CullerOptions::default().args();
        assert!(!off.iter().any(|a| a.starts_with("--cull-users")));
    }

    #[test]
    fn the_token_goes_in_the_environment_not_the_command_line() {
        let spec = CullerOptions::default().spec(Path::new("python"), "http://127.0.0.1:1/hub/api", "tok", Path::new("."));
        assert_eq!(spec.command.env["JUPYTERHUB_API_TOKEN"], "tok");
        assert!(spec.command.args.iter().all(|a| !a.contains("tok")));
        assert!(spec.command.args.contains(&"--url=http://127.0.0.1:1/hub/api".to_string()));
    }
}
