//! `fill-node-disk`: builds writing to one pool's node disk. A pod pinned to the pool writes
//! `chunk_mib` of zeros every `every` into its own filesystem (its container's writable layer,
//! on the node's containerd snapshots: the kubelet's image filesystem), at most `max_chunks`
//! times, carrying on when a write fails, as a build that retries would; or, `burst`, one
//! `dd` as fast as the disk takes it until "No space left on device", and the pod exits 1
//! with those words — faster than the kubelet's 10 s look at its disk. Optionally a `build`
//! pod on another pool that only sleeps (it must be left alone). Its pods go at the end.

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::cluster_pods::{pool_pod, start};
use super::{record_op, Workload};
use crate::env::Env;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FillNodeDisk {
    pub pool: String,
    pub chunk_mib: u64,
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    pub max_chunks: u32,
    pub burst: bool,
    /// A pool where a build runs throughout, untouched by the fill.
    pub bystander_pool: Option<String>,
}

impl FillNodeDisk {
    /// 30 MiB every half second (60 MiB/s), up to 2.1 GiB, on `pool`; a build on `bystander`.
    pub fn steady(pool: &str, bystander: &str) -> Self {
        Self {
            pool: pool.into(),
            chunk_mib: 30,
            every: Duration::from_millis(500),
            max_chunks: 70,
            burst: false,
            bystander_pool: Some(bystander.into()),
        }
    }

    /// One write until the disk is full.
    pub fn burst(mut self) -> Self {
        self.burst = true;
        self
    }

    /// The filler's script.
    pub fn script(&self) -> String {
        if self.burst {
            "exec dd if=/dev/zero of=/fill bs=16M".into()
        } else {
            format!(
                "i=0; while [ $i -lt {} ]; do i=$((i+1)); dd if=/dev/zero of=/fill.$i bs=1M count={} 2>&1 | tail -n 1; sleep {}; done; exec sleep 3600",
                self.max_chunks,
                self.chunk_mib,
                self.every.as_secs_f64()
            )
        }
    }
}

#[async_trait]
impl Workload for FillNodeDisk {
    fn name(&self) -> String {
        "fill-node-disk".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let k = env.kind()?;
        let within = Duration::from_secs(30);
        if let Some(pool) = &self.bystander_pool {
            let t0 = env.now();
            let pod = pool_pod(k, "build", pool, "exec sleep 3600", &[])?;
            let r = start(k, &pod, within).await.map(|_| ());
            record_op(env, &self.name(), &format!("build-on-{pool}"), None, t0, &r);
        }
        let t0 = env.now();
        let pod = pool_pod(k, "fill", &self.pool, &self.script(), &[])?;
        let r = start(k, &pod, within).await.map(|_| ());
        record_op(env, &self.name(), &format!("fill-{}", self.pool), None, t0, &r);
        stop.cancelled().await;
        // Free the disk now rather than at the namespace's deletion.
        let _ = k.kube.delete_pod(&k.namespace, "fill", Duration::ZERO).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_fill_is_bounded_and_survives_write_errors() {
        let s = FillNodeDisk::steady("no-ssd", "ssd").script();
        assert!(s.contains("-lt 70") && s.contains("count=30") && s.contains("sleep 0.5"), "{s}");
        assert!(!s.contains("set -e"), "a failed write must not end it: {s}");
        let b = FillNodeDisk::steady("no-ssd", "ssd").burst().script();
        assert!(b.starts_with("exec dd") && !b.contains("count="), "{b}");
    }

    #[test]
    fn the_steady_fill_writes_what_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = FillNodeDisk::steady("p", "q");
        (f.chunk_mib, f.max_chunks, f.every) = (1, 3, Duration::ZERO);
        let script = f.script().replace("/fill.", &format!("{}/fill.", dir.path().display())).replace("exec sleep 3600", "true");
        let ok = std::process::Command::new("sh").arg("-c").arg(&script).status().unwrap().success();
        assert!(ok);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 3);
        assert_eq!(std::fs::metadata(dir.path().join("fill.1")).unwrap().len(), 1 << 20);
    }
}
