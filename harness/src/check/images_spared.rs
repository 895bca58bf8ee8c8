//! `images-spared`: the images running containers use when the judged window opens are still
//! on the node, with their tags, in every later docker sample. A cleaner that frees space by
//! deleting (or force-untagging) an image a running pod uses makes that pod's next restart
//! pull or fail; on a node without a registry, fail.
//!
//! Evidence: the `dockerd` `image` samples (one per image and round, label `in_use`), see
//! [`crate::observe::docker`]. Protected = the images in use in the last round at or before the
//! window start (the first round in the window if there is none before).
//! Unknown: no docker samples, no image in use at the start, or no round after it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::docker::{DOCKERD, IMAGE};
use crate::observe::history::History;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImagesSpared;

/// Rounds of `image` samples: time -> image id -> (tags, in use).
type Rounds = BTreeMap<Duration, BTreeMap<String, (BTreeSet<String>, bool)>>;

fn rounds(history: &History) -> Rounds {
    let mut out: Rounds = BTreeMap::new();
    for s in history.series(DOCKERD, IMAGE) {
        let (Some(id), tags, in_use) = (s.labels.get("id"), s.labels.get("tags"), s.labels.get("in_use")) else { continue };
        let tags: BTreeSet<String> = tags.map(|t| t.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default();
        out.entry(s.at).or_default().insert(id.clone(), (tags, in_use.is_some_and(|v| v == "true")));
    }
    out
}

impl Check for ImagesSpared {
    fn name(&self) -> String {
        "images-spared".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let rounds = rounds(history);
        if rounds.is_empty() {
            return CheckResult::unknown(&name, "no docker image samples");
        }
        let (start, end) = history.workload_window().unwrap_or((Duration::ZERO, Duration::MAX));
        let base_at =
            rounds.range(..=start).next_back().map(|(t, _)| *t).or_else(|| rounds.range(start..=end).next().map(|(t, _)| *t)).unwrap();
        let protected: BTreeMap<&String, &BTreeSet<String>> =
            rounds[&base_at].iter().filter(|(_, (_, used))| *used).map(|(id, (tags, _))| (id, tags)).collect();
        if protected.is_empty() {
            return CheckResult::unknown(
                &name,
                format!("no image was in use by a running container at t={:.1}s: nothing to spare", base_at.as_secs_f64()),
            );
        }
        let later: Vec<_> = rounds.range(base_at..=end).filter(|(t, _)| **t > base_at).collect();
        if later.is_empty() {
            return CheckResult::unknown(&name, "no docker sample after the window opened");
        }
        let mut lost: BTreeMap<String, (Duration, String)> = BTreeMap::new();
        for (at, images) in &later {
            for (id, tags) in &protected {
                if lost.contains_key(*id) {
                    continue;
                }
                let what = match images.get(*id) {
                    None => Some("deleted".to_string()),
                    Some((now, _)) if !tags.is_subset(now) => {
                        Some(format!("lost tag(s) {}", tags.difference(now).cloned().collect::<Vec<_>>().join(",")))
                    }
                    _ => None,
                };
                if let Some(what) = what {
                    lost.insert((*id).clone(), (**at, what));
                }
            }
        }
        let result = if lost.is_empty() {
            CheckResult::new(
                &name,
                Verdict::Pass,
                format!(
                    "{} image(s) in use at t={:.1}s still present with their tags in {} later sample(s)",
                    protected.len(),
                    base_at.as_secs_f64(),
                    later.len()
                ),
            )
        } else {
            let list: Vec<String> = lost
                .iter()
                .map(|(id, (at, what))| {
                    let tags = protected.get(id).map(|t| t.iter().cloned().collect::<Vec<_>>().join(",")).unwrap_or_default();
                    format!(
                        "{} ({}) {what} by t={:.1}s",
                        short(id),
                        if tags.is_empty() { "untagged".into() } else { tags },
                        at.as_secs_f64()
                    )
                })
                .collect();
            CheckResult::new(
                &name,
                Verdict::Fail,
                format!("{} of {} image(s) in use were not spared: {}", lost.len(), protected.len(), list.join("; ")),
            )
        };
        result.figure("protected", protected.len() as f64).figure("lost", lost.len() as f64)
    }
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{history, secs, window};
    use crate::observe::samples::Sample;

    fn img(at: f64, id: &str, tags: &str, in_use: bool) -> Sample {
        Sample {
            at: secs(at),
            component: DOCKERD.into(),
            metric: IMAGE.into(),
            labels: [("id", id), ("tags", tags), ("in_use", if in_use { "true" } else { "false" })]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 1.0,
        }
    }

    #[test]
    fn the_image_in_use_survives_while_others_go() {
        let h = history(window(10.0, 60.0)).with_samples(vec![
            img(9.0, "sha256:keep", "hubchaos/keep:r", true),
            img(9.0, "sha256:junk", "hubchaos/junk:r", false),
            img(20.0, "sha256:keep", "hubchaos/keep:r", true),
            img(30.0, "sha256:keep", "hubchaos/keep:r", true),
        ]);
        let r = ImagesSpared.check(&h);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["protected"], 1.0);
    }

    #[test]
    fn deleted_or_untagged_in_use_images_fail() {
        let h = history(window(10.0, 60.0)).with_samples(vec![
            img(9.0, "sha256:aaaaaaaaaaaaaaaa", "hubchaos/a:r", true),
            img(9.0, "sha256:b", "hubchaos/b:r", true),
            img(20.0, "sha256:b", "", true),
        ]);
        let r = ImagesSpared.check(&h);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("aaaaaaaaaaaa (hubchaos/a:r) deleted by t=20.0s"), "{}", r.summary);
        assert!(r.summary.contains("lost tag(s) hubchaos/b:r"), "{}", r.summary);
        assert_eq!(r.figures["lost"], 2.0);
    }

    #[test]
    fn nothing_in_use_or_no_samples_is_unknown() {
        assert_eq!(ImagesSpared.check(&history(window(10.0, 60.0))).verdict, Verdict::Unknown);
        let h =
            history(window(10.0, 60.0)).with_samples(vec![img(9.0, "sha256:j", "hubchaos/j:r", false), img(20.0, "sha256:j", "", false)]);
        assert_eq!(ImagesSpared.check(&h).verdict, Verdict::Unknown);
        let h = history(window(10.0, 60.0)).with_samples(vec![img(9.0, "sha256:k", "hubchaos/k:r", true)]);
        assert_eq!(ImagesSpared.check(&h).verdict, Verdict::Unknown, "no later round");
    }
}
