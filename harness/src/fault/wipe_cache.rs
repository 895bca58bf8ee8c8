//! `wipe-cache`: remove every image under a prefix — what the 2019 repo2docker upgrade plus an
//! image-prefix bump did to mybinder.org's image cache (every repo rebuilt at once).
//!
//! Only images of this run are candidates (label `hubchaos.run=<run id>`); with a prefix, only
//! those with a tag starting with it (e.g. `hubchaos/r2d-`). Removal is forced (`DELETE
//! /images/{id}?force=1`): a wipe does not ask. An image a running container uses cannot be
//! removed even so (dockerd answers 409 "image is being used by running container"): it is
//! kept and counted — as on a real node.
//!
//! Nothing to heal: the cache is gone, and how the system copes is what a scenario judges.
//! (The other 2019 variant, dockerd restarted on an empty data root, needs the backend to
//! redeploy a component with a new spec; not offered yet.)

use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::component::docker_api::{DockerApi, DockerError, ImageSummary};
use crate::component::images::RUN_LABEL;
use crate::env::Env;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct WipeCache {
    /// Only images with a tag starting with this (e.g. `hubchaos/r2d-`); `None` = all of the run.
    pub prefix: Option<String>,
}

impl WipeCache {
    pub fn all() -> Self {
        Self { prefix: None }
    }

    pub fn under(prefix: &str) -> Self {
        Self { prefix: Some(prefix.into()) }
    }

    /// The images this wipe removes.
    pub fn select<'a>(&self, images: &'a [ImageSummary]) -> Vec<&'a ImageSummary> {
        images
            .iter()
            .filter(|i| match &self.prefix {
                None => true,
                Some(p) => i.tags().iter().any(|t| t.starts_with(p.as_str())),
            })
            .collect()
    }
}

#[async_trait]
impl Fault for WipeCache {
    fn kind(&self) -> &'static str {
        "wipe-cache"
    }

    fn target(&self) -> String {
        "dockerd".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let layout = env.node_paths();
        let api = DockerApi::new(&layout.docker_socket);
        let images = api.images(Some(&format!("{RUN_LABEL}={}", env.run_id)), false).await?;
        let chosen = self.select(&images);
        let mut removed = 0usize;
        let mut in_use = 0usize;
        let mut bytes = 0i64;
        for image in &chosen {
            match api.remove_image(&image.id, true).await {
                Ok(()) => {
                    removed += 1;
                    bytes += image.size;
                }
                Err(e) if e.downcast_ref::<DockerError>().is_some_and(|d| d.status == 404) => {}
                Err(e) if e.downcast_ref::<DockerError>().is_some_and(|d| d.status == 409) => in_use += 1,
                Err(e) => return Err(e.context(format!("wipe-cache: removing {}", image.id))),
            }
        }
        let scope = self.prefix.as_deref().map(|p| format!("under {p}")).unwrap_or_else(|| "of the run".into());
        let detail = format!(
            "removed {removed} of {} image(s) {scope} ({:.1} MB); {in_use} kept: in use by a running container",
            chosen.len(),
            bytes as f64 / 1e6
        );
        Ok(FaultGuard::nothing_to_heal(self.kind(), "dockerd", detail, &env.recorder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, tags: &[&str]) -> ImageSummary {
        ImageSummary { id: id.into(), repo_tags: Some(tags.iter().map(|t| t.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn a_prefix_selects_by_tag_and_none_selects_everything() {
        let images = vec![image("1", &["hubchaos/r2d-old-abc:r"]), image("2", &["hubchaos/r2d-new-abc:r"]), image("3", &["<none>:<none>"])];
        let old: Vec<_> = WipeCache::under("hubchaos/r2d-old-").select(&images).iter().map(|i| i.id.clone()).collect();
        assert_eq!(old, ["1"]);
        assert_eq!(WipeCache::all().select(&images).len(), 3);
        assert_eq!(WipeCache::all().kind(), "wipe-cache");
    }
}
