//! `build-leftovers`: once the builds ended, BinderHub's builds must have left nothing behind on
//! the build node: no build unit still running, nothing in the builds' `TMPDIR` (repo2docker
//! checkouts), no dangling image. Judged on the last sample of each before teardown.
//!
//! Why: a build node lives for weeks. BinderHub runs repo2docker with `--no-clean`; on
//! Kubernetes the checkout goes with the build pod, anywhere else it stays, one per build, until
//! the disk the 2019 builds ran out of is full of them. A build still running after every stream
//! ended holds a build slot and its disk; an untagged image is disk nobody will ever reclaim by
//! name (two builds of one tag at once leave the loser's image dangling).

use std::time::Duration;

use crate::check::verdict::{Check, CheckResult, Verdict};
use crate::observe::docker::{DOCKERD, IMAGE};
use crate::observe::history::History;
use crate::observe::residue::{BINDER_TMP, BUILD_UNITS, RESIDUE};

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BuildLeftovers;

/// The last value of a series and when it was sampled.
fn last(history: &History, component: &str, metric: &str) -> Option<(Duration, f64)> {
    history.series(component, metric).last().map(|s| (s.at, s.value))
}

/// Images without a tag in the docker sampler's last round.
fn dangling_images(history: &History) -> Option<(Duration, usize)> {
    let images: Vec<_> = history.series(DOCKERD, IMAGE).collect();
    let at = images.iter().map(|s| s.at).max()?;
    let dangling = images.iter().filter(|s| s.at == at && s.labels.get("tags").is_none_or(|t| t.is_empty())).count();
    Some((at, dangling))
}

impl Check for BuildLeftovers {
    fn name(&self) -> String {
        "build-leftovers".into()
    }

    fn check(&self, history: &History) -> CheckResult {
        let name = self.name();
        let (Some((tmp_at, tmp)), Some((units_at, units))) = (last(history, RESIDUE, BINDER_TMP), last(history, RESIDUE, BUILD_UNITS))
        else {
            return CheckResult::unknown(&name, "no sample of the builds' TMPDIR or of the build units");
        };
        let dangling = dangling_images(history);
        let mut left = Vec::new();
        if units > 0.0 {
            left.push(format!("{units} build unit(s) still running at {:.1}s", units_at.as_secs_f64()));
        }
        if tmp > 0.0 {
            left.push(format!("{tmp} entries in the builds' TMPDIR at {:.1}s (repo2docker checkouts)", tmp_at.as_secs_f64()));
        }
        if let Some((at, n)) = dangling.filter(|(_, n)| *n > 0) {
            left.push(format!("{n} dangling image(s) on the build node at {:.1}s", at.as_secs_f64()));
        }
        let summary = if left.is_empty() {
            format!(
                "nothing left at the end: no build unit, an empty TMPDIR, {}",
                if dangling.is_some() { "no dangling image" } else { "(images not sampled)" }
            )
        } else {
            format!("the builds left {}", left.join("; "))
        };
        let mut result =
            CheckResult::new(&name, Verdict::from_ok(left.is_empty()), summary).figure("build_units", units).figure("tmp_entries", tmp);
        if let Some((_, n)) = dangling {
            result = result.figure("dangling_images", n as f64);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::check::testkit::sample;
    use crate::observe::samples::Sample;

    fn image(at: f64, tags: &str) -> Sample {
        let mut s = sample(at, DOCKERD, IMAGE, 1e6);
        s.labels = BTreeMap::from([("tags".to_string(), tags.to_string())]);
        s
    }

    fn h(tmp: &[f64], units: &[f64], images: Vec<Sample>) -> History {
        let mut samples: Vec<Sample> = tmp.iter().enumerate().map(|(i, v)| sample(i as f64, RESIDUE, BINDER_TMP, *v)).collect();
        samples.extend(units.iter().enumerate().map(|(i, v)| sample(i as f64, RESIDUE, BUILD_UNITS, *v)));
        samples.extend(images);
        History::new(vec![]).with_samples(samples)
    }

    #[test]
    fn nothing_left_at_the_end_passes_whatever_was_there_during_the_builds() {
        let r = BuildLeftovers.check(&h(&[0.0, 3.0, 0.0], &[0.0, 2.0, 0.0], vec![image(1.0, ""), image(2.0, "a:1")]));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.summary);
        assert_eq!(r.figures["dangling_images"], 0.0);
    }

    #[test]
    fn checkouts_units_and_dangling_images_at_the_end_each_fail_and_are_named() {
        let r = BuildLeftovers.check(&h(&[0.0, 4.0], &[0.0, 0.0], vec![]));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.summary.contains("4 entries in the builds' TMPDIR"), "{}", r.summary);
        let r = BuildLeftovers.check(&h(&[0.0, 0.0], &[1.0, 1.0], vec![]));
        assert!(r.verdict == Verdict::Fail && r.summary.contains("1 build unit(s) still running"), "{}", r.summary);
        let r = BuildLeftovers.check(&h(&[0.0], &[0.0], vec![image(3.0, "a:1"), image(3.0, ""), image(3.0, "")]));
        assert!(r.verdict == Verdict::Fail && r.summary.contains("2 dangling image(s)"), "{}", r.summary);
    }

    #[test]
    fn without_samples_it_is_unknown() {
        assert_eq!(BuildLeftovers.check(&History::new(vec![])).verdict, Verdict::Unknown);
    }
}
