//! `launch-storm`: many users launching repos of uneven popularity at once, as after a cache
//! wipe on mybinder.org: `requests` build streams over `over`, each for a repo drawn from a Zipf
//! popularity (the k-th repo of `repos` with weight 1/k^`exponent`: the first is the popular
//! one), at a time drawn uniformly in the window. Drawn from `seed` when the scenario fixes one
//! (the same storm every run, and for each executor it is compared on), else from the run's
//! seed (repeated exactly with `--seed`). Each request is then one [`BuildStreams`] watcher.

use std::time::Duration;

use async_trait::async_trait;
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::build_streams::{BuildRequest, BuildStreams};
use super::Workload;
use crate::env::Env;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LaunchStorm {
    /// The sample repos, most popular first.
    pub repos: Vec<String>,
    pub requests: usize,
    /// When the storm starts, into the window.
    #[serde(with = "humantime_serde")]
    pub from: Duration,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub over: Duration,
    /// The Zipf exponent (1.0: the most popular repo gets about a third of 8 repos' requests).
    pub exponent: f64,
    /// The storm's own seed; `None`: the run's.
    pub seed: Option<u64>,
}

impl LaunchStorm {
    /// The requests of a storm drawn with `seed`, in time order.
    pub fn plan(&self, seed: u64) -> anyhow::Result<Vec<BuildRequest>> {
        let weights: Vec<f64> = (1..=self.repos.len()).map(|k| 1.0 / (k as f64).powf(self.exponent)).collect();
        let pick = WeightedIndex::new(&weights).map_err(|e| anyhow::anyhow!("launch-storm: {e} (no repos?)"))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut requests: Vec<BuildRequest> = (0..self.requests)
            .map(|_| {
                let repo = &self.repos[pick.sample(&mut rng)];
                let at = self.from + self.over.mul_f64(rng.random::<f64>());
                BuildRequest::one(repo, at)
            })
            .collect();
        requests.sort_by_key(|r| r.at);
        Ok(requests)
    }
}

#[async_trait]
impl Workload for LaunchStorm {
    fn name(&self) -> String {
        "launch-storm".into()
    }

    async fn run(&self, env: &Env, stop: CancellationToken) -> anyhow::Result<()> {
        BuildStreams { requests: self.plan(self.seed.unwrap_or(env.seed))? }.run(env, stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm() -> LaunchStorm {
        LaunchStorm {
            repos: (1..=8).map(|i| format!("r{i}")).collect(),
            requests: 2000,
            from: Duration::from_secs(2),
            over: Duration::from_secs(10),
            exponent: 1.0,
            seed: None,
        }
    }

    #[test]
    fn popularity_follows_zipf_and_times_stay_in_the_window() {
        let plan = storm().plan(7).unwrap();
        assert_eq!(plan.len(), 2000);
        let share = |r: &str| plan.iter().filter(|p| p.repo == r).count() as f64 / 2000.0;
        // 1/H(8) = 0.368 for the first, half that for the second, an eighth for the last.
        assert!((share("r1") - 0.368).abs() < 0.04, "{}", share("r1"));
        assert!((share("r2") - 0.184).abs() < 0.03, "{}", share("r2"));
        assert!((share("r8") - 0.046).abs() < 0.02, "{}", share("r8"));
        assert!(plan.iter().all(|p| p.at >= Duration::from_secs(2) && p.at <= Duration::from_secs(12)));
        assert!(plan.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn the_same_seed_gives_the_same_storm() {
        let (a, b, c) = (storm().plan(3).unwrap(), storm().plan(3).unwrap(), storm().plan(4).unwrap());
        let key = |p: &[BuildRequest]| p.iter().map(|r| (r.repo.clone(), r.at)).collect::<Vec<_>>();
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }
}
