//! Docker sampler: what images the node's dockerd holds, every few seconds, as component
//! `dockerd` — the count, and one sample per image (id, tags, in use by a running container or
//! not, size), so checks can tell "the cleaner deleted something" (`no-deletion`) and "an image
//! a running container uses is gone" (`images-spared`) from the samples alone.
//!
//! It talks to dockerd's own socket, not through the recorder: the harness's polling is not
//! the cleaner's traffic. One round = `GET /containers/json` + `GET /images/json`; every sample
//! of a round has the same `at`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};
use crate::component::docker_api::{ContainerSummary, DockerApi, ImageSummary};

/// The component name of these samples.
pub const DOCKERD: &str = "dockerd";
/// Images listed by `GET /images/json` (tagged or dangling, not intermediate).
pub const IMAGES: &str = "images";
/// Running containers.
pub const CONTAINERS_RUNNING: &str = "containers_running";
/// One per image and round; labels `id`, `tags` (comma-joined, sorted), `in_use`
/// (`true` when a running container uses it); value = size in bytes.
pub const IMAGE: &str = "image";

/// The samples of one round.
pub fn round(at: Duration, images: &[ImageSummary], running: &[ContainerSummary]) -> Vec<Sample> {
    let in_use: BTreeSet<&str> = running.iter().map(|c| c.image_id.as_str()).collect();
    let sample = |metric: &str, labels: BTreeMap<String, String>, value: f64| Sample {
        at,
        component: DOCKERD.into(),
        metric: metric.into(),
        labels,
        value,
    };
    let mut out =
        vec![sample(IMAGES, BTreeMap::new(), images.len() as f64), sample(CONTAINERS_RUNNING, BTreeMap::new(), running.len() as f64)];
    for i in images {
        let mut tags = i.tags();
        tags.sort();
        let labels = BTreeMap::from([
            ("id".to_string(), i.id.clone()),
            ("tags".to_string(), tags.join(",")),
            ("in_use".to_string(), in_use.contains(i.id.as_str()).to_string()),
        ]);
        out.push(sample(IMAGE, labels, i.size.max(0) as f64));
    }
    out
}

#[derive(Debug, Clone)]
pub struct DockerSampler {
    pub api: DockerApi,
    pub every: Duration,
}

impl DockerSampler {
    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        super::every(self.every, &stop, || async {
            let at = recorder.now();
            let listed = async { anyhow::Ok((self.api.containers(None, false).await?, self.api.images(None, false).await?)) };
            match listed.await {
                Ok((running, images)) => sink.push_batch(round(at, &images, &running)),
                // dockerd down (kill-process): no sample, which checks read as "unknown", not 0.
                Err(e) => tracing::debug!("docker sample failed: {e:#}"),
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_counts_images_and_marks_the_ones_running_containers_use() {
        let images = vec![
            ImageSummary {
                id: "sha256:a".into(),
                repo_tags: Some(vec!["hubchaos/b:r".into(), "hubchaos/a:r".into()]),
                size: 10,
                ..Default::default()
            },
            ImageSummary { id: "sha256:b".into(), repo_tags: Some(vec!["<none>:<none>".into()]), size: 5, ..Default::default() },
        ];
        let running = vec![ContainerSummary { id: "c".into(), image_id: "sha256:a".into(), state: "running".into(), ..Default::default() }];
        let s = round(Duration::from_secs(2), &images, &running);
        assert_eq!(s.iter().find(|x| x.metric == IMAGES).unwrap().value, 2.0);
        assert_eq!(s.iter().find(|x| x.metric == CONTAINERS_RUNNING).unwrap().value, 1.0);
        let a = s.iter().find(|x| x.labels.get("id").map(String::as_str) == Some("sha256:a")).unwrap();
        assert_eq!(a.labels["tags"], "hubchaos/a:r,hubchaos/b:r");
        assert_eq!(a.labels["in_use"], "true");
        let b = s.iter().find(|x| x.labels.get("id").map(String::as_str) == Some("sha256:b")).unwrap();
        assert_eq!((b.labels["tags"].as_str(), b.labels["in_use"].as_str(), b.value), ("", "false", 5.0));
        assert!(s.iter().all(|x| x.at == Duration::from_secs(2) && x.component == DOCKERD));
    }
}
