//! The "Resource slopes per spawn" table of `summary.md`: every sampled resource of every
//! component, fitted against completed spawns the way `leak-slope` judges the hub. Only the
//! checks give a verdict; this table puts the curves nobody set a limit on (the proxy's RSS,
//! runtime files left per spawn) in front of the reader, with their intervals.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::check::leak_slope::{show_value, slope_points, spawn_completions};
use crate::observe::history::History;
use crate::observe::procfs::{CHILD_PROCESSES, HARNESS, LISTENING_PORTS, OPEN_FDS, RSS_BYTES, THREADS};
use crate::observe::residue::{HOME_DIRS, RUNTIME_FILES};
use crate::soak::SlopeEstimate;
use crate::stats::ols;

/// The metrics a leak shows in; the harness's own process is left out.
pub const SLOPE_METRICS: [&str; 7] = [RSS_BYTES, OPEN_FDS, THREADS, CHILD_PROCESSES, LISTENING_PORTS, HOME_DIRS, RUNTIME_FILES];

/// Spawns after the warm-up needed before a slope is worth printing.
const MIN_SPAWNS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSlope {
    pub component: String,
    pub metric: String,
    pub per_spawn: SlopeEstimate,
    pub per_minute: f64,
}

/// One row per sampled (component, metric) of [`SLOPE_METRICS`], once more than `warmup` +
/// [`MIN_SPAWNS`] spawns completed; empty for a run without spawn churn.
pub fn resource_slopes(history: &History, warmup: usize) -> Vec<ResourceSlope> {
    let done = spawn_completions(history);
    let Some(&last) = done.last() else { return Vec::new() };
    if done.len() < warmup + MIN_SPAWNS {
        return Vec::new();
    }
    let series: BTreeSet<(&str, &str)> = history
        .samples
        .iter()
        .filter(|s| s.component != HARNESS && SLOPE_METRICS.contains(&s.metric.as_str()))
        .map(|s| (s.component.as_str(), s.metric.as_str()))
        .collect();
    series
        .into_iter()
        .filter_map(|(component, metric)| {
            let (by_spawn, by_time) = slope_points(history, &done, component, metric, warmup, (Duration::ZERO, last));
            let per_spawn = SlopeEstimate::fit(&by_spawn)?;
            let per_minute = ols(&by_time).map_or(f64::NAN, |f| f.slope * 60.0);
            Some(ResourceSlope { component: component.into(), metric: metric.into(), per_spawn, per_minute })
        })
        .collect()
}

/// The markdown table, or nothing when there are no rows.
pub fn render(rows: &[ResourceSlope], warmup: usize) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "\n## Resource slopes per spawn\n\nLeast-squares slope against completed spawns after {warmup} warm-up spawns, \
         95 % interval; a verdict comes only from the checks above.\n\n\
         | component | metric | per spawn | 95 % interval | per minute |\n|---|---|---|---|---|\n"
    );
    for r in rows {
        let m = r.metric.as_str();
        md.push_str(&format!(
            "| {} | {m} | {} | {}..{} | {} |\n",
            r.component,
            show_value(m, r.per_spawn.slope),
            show_value(m, r.per_spawn.ci_low),
            show_value(m, r.per_spawn.ci_high),
            show_value(m, r.per_minute),
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::leak_slope::SPAWN_CYCLE;
    use crate::observe::history::{Entry, Event, OpRecord, OpResult};
    use crate::observe::samples::Sample;

    /// A spawn completing every 2 s for 40 s; the proxy's RSS grows 10 KiB per spawn, two
    /// runtime files stay behind per spawn, the hub's FDs are flat; the harness grows but is
    /// not the system under test.
    fn churn() -> History {
        let entries = (1..=20)
            .map(|i| Entry {
                at: Duration::from_secs(2 * i - 1),
                event: Event::Op(OpRecord {
                    workload: "spawn-churn".into(),
                    op: SPAWN_CYCLE.into(),
                    user: Some("churn-0".into()),
                    latency: Duration::from_secs(1),
                    result: OpResult::Ok,
                    detail: String::new(),
                }),
            })
            .collect();
        let mut samples = Vec::new();
        for t in 0..=40u64 {
            let spawns = (t / 2) as f64;
            let at = Duration::from_secs(t);
            let s = |component: &str, metric: &str, value: f64| Sample {
                at,
                component: component.into(),
                metric: metric.into(),
                labels: Default::default(),
                value,
            };
            samples.push(s("proxy", RSS_BYTES, 50e6 + spawns * 10.0 * 1024.0 + if t % 2 == 0 { 3000.0 } else { -3000.0 }));
            samples.push(s("residue", RUNTIME_FILES, 2.0 * spawns));
            samples.push(s("hub", OPEN_FDS, 18.0));
            samples.push(s(HARNESS, RSS_BYTES, 1e6 * t as f64));
            samples.push(s("hub", "jupyterhub_total_users", 2.0));
        }
        History { entries, samples }
    }

    #[test]
    fn every_component_and_leak_metric_gets_a_row_and_the_harness_none() {
        let rows = resource_slopes(&churn(), 6);
        let names: Vec<String> = rows.iter().map(|r| format!("{}:{}", r.component, r.metric)).collect();
        assert_eq!(names, ["hub:open_fds", "proxy:rss_bytes", "residue:runtime_files"]);
        let proxy = &rows[1];
        assert!((proxy.per_spawn.slope - 10_240.0).abs() < 500.0, "{proxy:?}");
        assert!(proxy.per_spawn.ci_low < proxy.per_spawn.slope && proxy.per_spawn.slope < proxy.per_spawn.ci_high);
        assert!((rows[2].per_spawn.slope - 2.0).abs() < 0.1 && (rows[2].per_minute - 60.0).abs() < 5.0, "{:?}", rows[2]);
        assert_eq!(rows[0].per_spawn.slope, 0.0);
    }

    #[test]
    fn the_table_prints_units_and_is_absent_without_churn() {
        let text = render(&resource_slopes(&churn(), 6), 6);
        assert!(text.contains("after 6 warm-up spawns"), "{text}");
        assert!(text.contains("| residue | runtime_files | 2.000 | "), "{text}");
        assert!(text.lines().any(|l| l.starts_with("| proxy | rss_bytes | 10.") && l.contains(" KiB |")), "{text}");
        assert!(resource_slopes(&History::default(), 6).is_empty());
        assert_eq!(render(&[], 6), "");
        // Too few spawns after the warm-up: no rows rather than a meaningless fit.
        assert!(resource_slopes(&churn(), 18).is_empty());
    }
}
