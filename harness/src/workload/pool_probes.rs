//! `pool-probes`: the cluster's plumbing, one op each: a pod pinned to each pool runs
//! (`pod-on-<pool>`); a client pod on one pool fetches a page through a Service whose backend
//! runs on another (`service`: the ClusterIP, so kube-proxy's rules carry it); a client looks
//! the Service's name up (`dns`: coredns answers with that ClusterIP). Each bounded by
//! `within`. Then it waits for the window to close.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cluster_pods::{finish, pool_pod, start};
use super::{record_op, Workload};
use crate::env::Env;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolProbes {
    pub pools: Vec<String>,
    /// Where the Service's backend runs.
    pub server_pool: String,
    /// Where the clients run.
    pub client_pool: String,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

/// The page the backend serves: a client that reads it reached that pod.
const PAGE: &str = "hubchaos-web-ok";

#[async_trait]
impl Workload for PoolProbes {
    fn name(&self) -> String {
        "pool-probes".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let k = env.kind()?;
        let pods = self.pools.iter().map(|pool| async move {
            let t0 = env.now();
            let pod = pool_pod(k, &format!("on-{pool}"), pool, "exec sleep 600", &[])?;
            let r = start(k, &pod, self.within).await.map(|_| ());
            record_op(env, &self.name(), &format!("pod-on-{pool}"), None, t0, &r);
            anyhow::Ok(())
        });
        for r in futures::future::join_all(pods).await {
            r?;
        }
        // The backend and its Service.
        let web = pool_pod(
            k,
            "web",
            &self.server_pool,
            &format!("mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www"),
            &[("app", "web")],
        )?;
        let server = start(k, &web, self.within).await;
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "web" },
            "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80, "targetPort": 8080 }] },
        }))?;
        let created = k.kube.create_service(&k.namespace, &service).await?;
        let ip = created.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
        let fqdn = format!("web.{}.svc.cluster.local", k.namespace);
        let probes = [("service", format!("timeout 10 wget -qO- http://{ip}/")), ("dns", format!("nslookup {fqdn}"))];
        let runs = probes.iter().map(|(op, script)| {
            let (server, ip) = (&server, &ip);
            async move {
                let t0 = env.now();
                let r = async {
                    if let Err(e) = server {
                        anyhow::bail!("the Service's backend did not start: {e:#}");
                    }
                    let pod = pool_pod(k, &format!("probe-{op}"), &self.client_pool, script, &[])?;
                    start(k, &pod, self.within).await?;
                    let (phase, log) = finish(k, &format!("probe-{op}"), self.within).await?;
                    let want = if *op == "service" { PAGE.to_string() } else { ip.to_string() };
                    let got = log.lines().any(|l| l.contains(&want));
                    anyhow::ensure!(
                        phase == "Succeeded" && got,
                        "{op} probe {phase}; wanted \"{want}\" in: {}",
                        log.trim().replace('\n', " | ")
                    );
                    Ok(())
                }
                .await;
                record_op(env, "pool-probes", op, None, t0, &r);
            }
        });
        futures::future::join_all(runs).await;
        stop.cancelled().await;
        Ok(())
    }
}
