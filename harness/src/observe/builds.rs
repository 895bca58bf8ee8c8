//! Builds in flight on the local backend: the run's `jupyter-repo2docker` processes, counted
//! every interval (component `binderhub`, metric [`BUILDS_IN_FLIGHT`]). Both build executors run
//! one repo2docker per build, so this is what BinderHub really has building at once, whatever
//! its own gauge (which counts requests) says. Processes are told apart by the run's id in their
//! environment; the program name only picks repo2docker among them (nothing is ended here).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};
use crate::backend::local::sweep::processes_of_run;

/// The metric name.
pub const BUILDS_IN_FLIGHT: &str = "builds_in_flight";

/// BinderHub's own gauge of builds in progress, scraped from its `/metrics` by the Prometheus
/// sampler under the same component (`binderhub`). It counts `/build` requests, not builds.
pub const INPROGRESS_BUILDS: &str = "binderhub_inprogress_builds";

/// Is this argv a repo2docker (`python …/jupyter-repo2docker …` or the script itself)?
pub fn is_repo2docker(argv: &[String]) -> bool {
    argv.iter().take(2).any(|a| a.rsplit('/').next() == Some("jupyter-repo2docker"))
}

fn argv_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| b.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct BuildsSampler {
    pub run_id: String,
    pub every: Duration,
}

impl BuildsSampler {
    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let at = recorder.now();
            let run_id = self.run_id.clone();
            let Ok(count) =
                tokio::task::spawn_blocking(move || processes_of_run(&run_id).into_iter().filter(|p| is_repo2docker(&argv_of(*p))).count())
                    .await
            else {
                continue;
            };
            sink.push_batch(vec![Sample {
                at,
                component: "binderhub".into(),
                metric: BUILDS_IN_FLIGHT.into(),
                labels: Default::default(),
                value: count as f64,
            }]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo2docker_is_recognised_as_a_script_or_behind_its_python() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_repo2docker(&v(&["/env/venv/bin/python", "/env/venv/bin/jupyter-repo2docker", "--ref=x"])));
        assert!(is_repo2docker(&v(&["jupyter-repo2docker", "--ref=x"])));
        assert!(!is_repo2docker(&v(&["/env/venv/bin/python", "-m", "binderhub"])));
        assert!(!is_repo2docker(&v(&["docker", "buildx", "build", "--label", "jupyter-repo2docker"])));
    }
}
