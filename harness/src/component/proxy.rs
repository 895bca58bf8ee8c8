//! The proxy: configurable-http-proxy as its own process (as the z2jh `proxy` pod), not started
//! by the hub, so it can be killed and paused like the pod. The hub adds routes through its
//! REST API; after a restart the proxy is empty until the hub's route check re-adds them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::local::command::CommandSpec;
use crate::backend::local::spec::{ComponentSpec, Readiness, RestartPolicy};

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The `configurable-http-proxy` executable.
    pub program: PathBuf,
    pub public_port: u16,
    pub api_port: u16,
    pub metrics_port: u16,
    /// Where requests without a route go: the hub.
    pub default_target: String,
    pub auth_token: String,
}

impl ProxyConfig {
    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port)
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn spec(&self, cwd: &Path) -> ComponentSpec {
        let args: Vec<String> = vec![
            "--ip=127.0.0.1".into(),
            format!("--port={}", self.public_port),
            "--api-ip=127.0.0.1".into(),
            format!("--api-port={}", self.api_port),
            "--metrics-ip=127.0.0.1".into(),
            format!("--metrics-port={}", self.metrics_port),
            format!("--default-target={}", self.default_target),
            format!("--error-target={}/hub/error", self.default_target),
            "--log-level=info".into(),
        ];
        ComponentSpec {
            name: "proxy".into(),
            command: CommandSpec::new(&self.program).args(args).env("CONFIGPROXY_AUTH_TOKEN", &self.auth_token),
            cwd: cwd.to_path_buf(),
            // Without the token the API answers 403: the proxy is up.
            readiness: Readiness::Http { url: format!("{}/api/routes", self.api_url()) },
            ready_within: Duration::from_secs(20),
            restart: RestartPolicy::Always,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_listens_on_loopback_only_and_gets_its_token_from_env() {
        let cfg = ProxyConfig {
            program: "chp".into(),
            public_port: 8000,
            api_port: 8001,
            metrics_port: 8002,
            default_target: "http://127.0.0.1:8081".into(),
            auth_token: "secret".into(),
        };
        let spec = cfg.spec(Path::new("."));
        assert!(spec.command.args.contains(&"--ip=127.0.0.1".to_string()));
        assert!(spec.command.args.contains(&"--api-ip=127.0.0.1".to_string()));
        assert!(!spec.command.args.iter().any(|a| a.contains("secret")), "token must not be on the command line");
        assert_eq!(spec.command.env["CONFIGPROXY_AUTH_TOKEN"], "secret");
        assert_eq!(spec.restart, RestartPolicy::Always);
    }
}
