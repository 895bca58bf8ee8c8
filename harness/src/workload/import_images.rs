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
use crate::component::node_disk::NodeLayout;
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
        let layout = NodeLayout::new(&env.run_dir, &env.run_id);
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
