//! `remove-images-in-use`: what a buggy image cleaner does — it frees space by deleting images
//! with `force=true`, including those running containers use. Docker cannot delete an image a
//! running container holds, but a forced delete by name untags it: the image stays on disk as
//! `<none>`, and the pod's next restart (or a new pod on the node) cannot find it by name, and
//! on a node without a registry cannot get it back. It is the mutant of `images-spared`.
//!
//! The deletions go out as the image cleaner (through its recorder listener), so the history
//! shows them where a buggy cleaner's would be. Heal: tag the images again as they were.

use anyhow::Context;
use async_trait::async_trait;
use hyper::Method;

use super::{Fault, FaultGuard};
use crate::component::docker_api::{query_escape, ContainerSummary, DockerApi, ImageSummary};
use crate::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RemoveImagesInUse;

/// The images running containers use, with their tags: (id, tags).
pub fn in_use(images: &[ImageSummary], running: &[ContainerSummary]) -> Vec<(String, Vec<String>)> {
    images
        .iter()
        .filter(|i| running.iter().any(|c| c.image_id == i.id))
        .map(|i| {
            let mut tags = i.tags();
            tags.sort();
            (i.id.clone(), tags)
        })
        .filter(|(_, tags)| !tags.is_empty())
        .collect()
}

/// `repo:tag` -> (`repo`, `tag`); the tag is after the last `:` that follows the last `/`.
pub fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => (&reference[..i], &reference[i + 1..]),
        _ => (reference, "latest"),
    }
}

#[async_trait]
impl Fault for RemoveImagesInUse {
    fn kind(&self) -> &'static str {
        "remove-images-in-use"
    }

    fn target(&self) -> String {
        "dockerd".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let layout = env.node_paths();
        let direct = DockerApi::new(&layout.docker_socket);
        let running = direct.containers(None, false).await.context("listing running containers")?;
        let images = direct.images(None, false).await.context("listing images")?;
        let targets = in_use(&images, &running);
        anyhow::ensure!(!targets.is_empty(), "no tagged image is in use by a running container: nothing to remove");
        let as_cleaner = DockerApi::new(&layout.cleaner_socket);
        let mut done = Vec::new();
        for (id, tags) in &targets {
            for tag in tags {
                as_cleaner.remove_image(tag, true).await.with_context(|| format!("DELETE /images/{tag}?force=1"))?;
                done.push((id.clone(), tag.clone()));
            }
        }
        let detail = format!(
            "force-removed {} tag(s) of {} image(s) in use: {}",
            done.len(),
            targets.len(),
            done.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(", ")
        );
        let heal: super::guard::HealFn = Box::new(move || {
            Box::pin(async move {
                for (id, reference) in &done {
                    let (repo, tag) = split_tag(reference);
                    let path = format!("/images/{id}/tag?repo={}&tag={}", query_escape(repo), query_escape(tag));
                    direct.request(Method::POST, &path, None, None).await.with_context(|| format!("tagging {id} {reference} again"))?;
                }
                Ok(())
            })
        });
        Ok(FaultGuard::injected(self.kind(), &self.target(), detail, &env.recorder, heal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, tags: &[&str]) -> ImageSummary {
        ImageSummary { id: id.into(), repo_tags: Some(tags.iter().map(|t| t.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn only_tagged_images_of_running_containers_are_targets() {
        let images = [
            image("sha256:a", &["hubchaos/busy-a:r"]),
            image("sha256:b", &["hubchaos/junk:r"]),
            image("sha256:c", &["<none>:<none>"]),
            image("sha256:d", &["hubchaos/x:r", "hubchaos/x:s"]),
        ];
        let running = ["sha256:a", "sha256:c", "sha256:d"].map(|id| ContainerSummary {
            image_id: id.into(),
            state: "running".into(),
            ..Default::default()
        });
        assert_eq!(
            in_use(&images, &running),
            [
                ("sha256:a".to_string(), vec!["hubchaos/busy-a:r".to_string()]),
                ("sha256:d".into(), vec!["hubchaos/x:r".into(), "hubchaos/x:s".into()])
            ]
        );
        assert!(in_use(&images, &[]).is_empty());
    }

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(split_tag("hubchaos/busy-a:r"), ("hubchaos/busy-a", "r"));
        assert_eq!(split_tag("localhost:5000/x"), ("localhost:5000/x", "latest"));
        assert_eq!(split_tag("localhost:5000/x:1"), ("localhost:5000/x", "1"));
    }
}
