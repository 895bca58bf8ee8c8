//! Prometheus sampler: scrapes a component's metrics endpoint (the hub's `/hub/metrics`,
//! the proxy's `--metrics-port`) every interval and appends the values as samples. Parsing
//! is prometheus-parse's; histograms are reduced to their `_count` (the `+Inf` bucket), which
//! is what rate figures need (e.g. requests by handler and code).
//!
//! The sampler talks to the component directly, not through the recorder: it is the
//! harness's observation, not a client whose requests are under test.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};

/// Turn one scrape into samples stamped `at`.
pub fn samples_from_text(text: &str, component: &str, at: Duration) -> anyhow::Result<Vec<Sample>> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))?;
    let mut out = Vec::with_capacity(scrape.samples.len());
    for s in scrape.samples {
        let labels: BTreeMap<String, String> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (metric, value) = match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => (s.metric, v),
            prometheus_parse::Value::Histogram(buckets) => {
                let count = buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count).unwrap_or(0.0);
                (format!("{}_count", s.metric), count)
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        if value.is_nan() {
            continue;
        }
        out.push(Sample { at, component: component.into(), metric, labels, value });
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct PromSampler {
    pub component: String,
    pub url: String,
    /// `Authorization: token ...` (the hub needs a token with `read:metrics`).
    pub token: Option<String>,
    pub every: Duration,
}

impl PromSampler {
    /// Scrape until cancelled. A failed scrape is logged once per streak and skipped: a hub
    /// that cannot answer its metrics shows as a gap in the curves, which is itself evidence.
    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        let http = reqwest::Client::builder().timeout(self.every.max(Duration::from_secs(2))).build().expect("http client");
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let at = recorder.now();
            let mut req = http.get(&self.url);
            if let Some(t) = &self.token {
                req = req.header("Authorization", format!("token {t}"));
            }
            let text = match req.send().await {
                Ok(r) if r.status().is_success() => r.text().await.ok(),
                Ok(r) => {
                    if !failing {
                        tracing::warn!("{}: metrics answered {}", self.component, r.status());
                    }
                    None
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("{}: metrics scrape failed: {e}", self.component);
                    }
                    None
                }
            };
            failing = text.is_none();
            if let Some(text) = text {
                if let Ok(samples) = samples_from_text(&text, &self.component, at) {
                    sink.push_batch(samples);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP jupyterhub_total_users total number of users
# TYPE jupyterhub_total_users gauge
jupyterhub_total_users 2007.0
# HELP jupyterhub_request_duration_seconds request duration for all HTTP requests
# TYPE jupyterhub_request_duration_seconds histogram
jupyterhub_request_duration_seconds_bucket{code="204",handler="jupyterhub.apihandlers.users.UserServerAPIHandler",le="0.1",method="DELETE"} 10.0
jupyterhub_request_duration_seconds_bucket{code="204",handler="jupyterhub.apihandlers.users.UserServerAPIHandler",le="+Inf",method="DELETE"} 12.0
jupyterhub_request_duration_seconds_count{code="204",handler="jupyterhub.apihandlers.users.UserServerAPIHandler",method="DELETE"} 12.0
jupyterhub_request_duration_seconds_sum{code="204",handler="jupyterhub.apihandlers.users.UserServerAPIHandler",method="DELETE"} 0.5
"#;

    #[test]
    fn gauges_and_histogram_counts_become_samples() {
        let s = samples_from_text(TEXT, "hub", Duration::from_secs(3)).unwrap();
        let users = s.iter().find(|s| s.metric == "jupyterhub_total_users").unwrap();
        assert_eq!(users.value, 2007.0);
        let req = s.iter().find(|s| s.metric == "jupyterhub_request_duration_seconds_count").unwrap();
        assert_eq!(req.value, 12.0);
        assert_eq!(req.labels["handler"], "jupyterhub.apihandlers.users.UserServerAPIHandler");
        assert_eq!(req.labels["code"], "204");
        assert!(!req.labels.contains_key("le"));
    }
}
