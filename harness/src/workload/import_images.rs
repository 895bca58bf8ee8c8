//! `import-images`: what a build node does all day — new images arrive on the node's dockerd
//! (repo2docker builds, pulls). One image per period, of a chosen size and layer count, made by
//! the image factory on the harness's dockerd; each is an op (`import-image`) whose failure
//! detail is the daemon's own message, so a full disk shows as "no space left on device" (2019)
//! and not as a generic failure. Bounded: at most `max` images.

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{record_op, Workload};
use crate::component::docker_api::DockerApi;
use crate::component::images::{ImageFactory, ImageSpec};
use crate::env::Env;

pub const NAME: &str = "import-images";
pub const OP: &str = "import-image";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportImages {
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// Bytes per image.
    pub bytes: u64,
    pub layers: u32,
    pub max: u32,
}

impl ImportImages {
    pub fn new(every: Duration, bytes: u64) -> Self {
        Self { every, bytes, layers: 1, max: 100 }
    }
}

#[async_trait]
impl Workload for ImportImages {
    fn name(&self) -> String {
        NAME.into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        let layout = env.node_paths();
        let factory = ImageFactory::new(DockerApi::new(&layout.docker_socket), &env.run_id, env.seed);
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 0..self.max {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            let spec = ImageSpec::sized(&format!("build-{n}"), self.bytes, self.layers);
            let started = env.now();
            let built = tokio::select! {
                r = factory.build(&spec) => r.map(|_| ()),
                _ = stop.cancelled() => return Ok(()),
            };
            record_op(env, NAME, OP, None, started, &built);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Against a [`FakeDaemon`] on the run's docker socket: the workload's side (ops, bounds,
    //! the daemon's words in a failure), not dockerd's (that is `node_live`'s).
    use std::time::Instant;

    use super::*;
    use crate::component::node_disk::NodeLayout;
    use crate::observe::history::{OpRecord, OpResult};
    use crate::testkit::{env_with, FakeBackend, FakeDaemon};

    /// An env whose run id is this test's own, and the run's socket dir (removed on drop).
    struct Node {
        env: Env,
        layout: NodeLayout,
        _dir: tempfile::TempDir,
    }

    impl Node {
        fn new(test: &str) -> Self {
            let (mut env, dir) = env_with(std::sync::Arc::new(FakeBackend::default()));
            env.run_id = format!("test-import-{test}-{}", std::process::id());
            let layout = NodeLayout::new(&env.run_dir, &env.run_id);
            std::fs::create_dir_all(&layout.sock_dir).unwrap();
            Self { env, layout, _dir: dir }
        }

        fn ops(&self) -> Vec<OpRecord> {
            self.env.recorder.history().ops().filter(|(_, o)| o.workload == NAME).map(|(_, o)| o.clone()).collect()
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.layout.sock_dir);
        }
    }

    fn imports(daemon: &FakeDaemon) -> Vec<String> {
        daemon.seen().into_iter().filter(|s| s.starts_with("POST /images/create?fromSrc=-")).collect()
    }

    #[tokio::test]
    async fn each_image_is_an_op_and_it_stops_at_its_bound() {
        let node = Node::new("bound");
        let daemon = FakeDaemon::answering(&node.layout.docker_socket, 200, "{\"status\":\"sha256:0123\"}\n");
        let w = ImportImages { every: Duration::from_millis(20), bytes: 64 << 10, layers: 1, max: 3 };
        tokio::time::timeout(Duration::from_secs(10), w.run(&node.env, CancellationToken::new())).await.expect("bounded").unwrap();
        let ops = node.ops();
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(ops.iter().all(|o| o.op == OP && o.result == OpResult::Ok), "{ops:?}");
        let seen = imports(&daemon);
        assert_eq!(seen.len(), 3, "{seen:?}");
        // Each carried a tar of at least the image's bytes.
        for s in &seen {
            let bytes: u64 = s.rsplit_once(" (").unwrap().1.trim_end_matches(" bytes)").parse().unwrap();
            assert!(bytes >= 64 << 10, "{s}");
        }
    }

    #[tokio::test]
    async fn a_failed_import_keeps_the_daemons_words() {
        let node = Node::new("enospc");
        let enospc = r#"{"errorDetail":{"message":"write /f1: no space left on device"},"error":"write /f1: no space left on device"}"#;
        let _daemon = FakeDaemon::answering(&node.layout.docker_socket, 200, enospc);
        let w = ImportImages { every: Duration::from_millis(20), bytes: 4096, layers: 1, max: 2 };
        w.run(&node.env, CancellationToken::new()).await.unwrap();
        let ops = node.ops();
        assert_eq!(ops.len(), 2, "{ops:?}");
        for o in &ops {
            assert_eq!(o.result, OpResult::Fail, "{o:?}");
            assert!(o.detail.ends_with("no space left on device"), "{}", o.detail);
        }
    }

    #[tokio::test]
    async fn the_stop_token_ends_it() {
        let node = Node::new("stop");
        let daemon = FakeDaemon::answering(&node.layout.docker_socket, 200, "{\"status\":\"sha256:0123\"}\n");
        let w = ImportImages { every: Duration::from_millis(50), bytes: 4096, layers: 1, max: 1000 };
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(220)).await;
            s.cancel();
        });
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), w.run(&node.env, stop)).await.expect("stopped by its token").unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let n = node.ops().len();
        assert!((3..=6).contains(&n), "{n} imports in 220 ms at one per 50 ms");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(imports(&daemon).len(), n, "imports after the stop");
    }
}
