//! `summary.md`: what a person reads first. The outcome and why, every check with its
//! numbers, then the evidence: deploy times, faults, restarts, requests and ops by kind.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::run_dir::RunDir;
use super::slopes;
use crate::observe::history::{Event, History, OpResult};
use crate::profile::Profile;
use crate::runner::RunReport;
use crate::scenario::{Expectation, Scenario};
use crate::soak::WARMUP_SPAWNS;

/// `summary.md`; a run with a profile says so before its checks (the file and the versions
/// it declares, see [`Profile::version_lines`]), since its results are not those of the stock pins.
pub fn render(scenario: &Scenario, report: &RunReport, history: &History, profile: Option<&Profile>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {} — {}\n", report.test_name, report.outcome.label());
    let _ = writeln!(md, "{}\n", scenario.incident.trim());
    if !report.outcome.detail().is_empty() {
        let _ = writeln!(md, "**Outcome:** {}\n\n```\n{}\n```\n", report.outcome.label(), report.outcome.detail());
    }
    if let Expectation::FailOn { checks, reason } = &scenario.expect {
        let _ = writeln!(md, "**Expected to fail on exactly:** {} — {reason}\n", checks.join(", "));
    }
    match &report.unexpected {
        None if !matches!(scenario.expect, Expectation::Pass) => {
            let _ = writeln!(md, "**Test:** ok — the run failed exactly as expected.\n");
        }
        None => {}
        Some(why) => {
            let _ = writeln!(md, "**Test:** FAILED — {}\n", why.replace('\n', " "));
        }
    }
    if let Some(p) = profile {
        md.push_str(&render_profile(p));
    }
    let _ = writeln!(md, "## Checks\n\n| check | verdict | summary |\n|---|---|---|");
    for c in &report.checks {
        let _ = writeln!(md, "| `{}` | {} | {} |", c.check, c.verdict, c.summary.replace('|', "\\|").replace('\n', " "));
    }
    let _ = writeln!(md, "\n### Figures\n");
    for c in &report.checks {
        if c.figures.is_empty() {
            continue;
        }
        let figs: Vec<String> = c.figures.iter().map(|(k, v)| format!("{k} = {}", fmt_num(*v))).collect();
        let _ = writeln!(md, "- `{}`: {}", c.check, figs.join(", "));
    }
    if let Some(d) = report.deploy.as_ref().filter(|d| d.node_ready_s > 0.0) {
        let _ = writeln!(md, "\n## Node\n\n- node ready {:.2} s (disk, dockerd, images, image cleaner)", d.node_ready_s);
    }
    if let Some(d) = report.deploy.as_ref().filter(|d| d.stack_ready_s > 0.0) {
        let _ = writeln!(
            md,
            "\n## Deploy\n\n- seeded {} users in {:.2} s (through the hub's ORM, before it started)\n- proxy ready {:.2} s, hub ready {:.2} s, culler ready {:.2} s; stack ready {:.2} s",
            d.seeded_users, d.seed_s, d.proxy_ready_s, d.hub_ready_s, d.culler_ready_s, d.stack_ready_s
        );
    }

    let _ = writeln!(md, "\n## Timeline\n\n| t (s) | event |\n|---|---|");
    for e in &history.entries {
        let line = match &e.event {
            Event::Phase(p) => format!("phase `{}` {}", p.name, p.detail),
            Event::Log(l) => format!("log of {} ({:?}): {}", l.component, l.kind, l.text),
            Event::Cluster(c) => format!("cluster: {}", crate::backend::kind::watch::describe(c)),
            Event::Fault(f) => format!("fault `{}` on `{}` {:?} {}", f.kind, f.target, f.phase, f.detail),
            Event::Restart(r) => {
                format!("**restart** `{}` #{} after {} (back-off {:.1} s)", r.component, r.attempt, r.exit, r.backoff.as_secs_f64())
            }
            Event::Snapshot(s) => {
                format!("snapshot `{}`: {} users, {} servers", s.label, s.users.len(), s.users.values().map(Vec::len).sum::<usize>())
            }
            _ => continue,
        };
        let _ = writeln!(md, "| {:.1} | {} |", e.at.as_secs_f64(), line.replace('|', "\\|").replace('\n', " "));
    }

    let mut by_kind: BTreeMap<(String, String, String, String), (u64, f64)> = BTreeMap::new();
    for (_, r) in history.requests() {
        let e = by_kind.entry((r.client.clone(), r.method.clone(), r.route.clone(), r.status_class())).or_default();
        e.0 += 1;
        e.1 = e.1.max(r.latency.as_secs_f64());
    }
    let _ = writeln!(
        md,
        "\n## Requests through the recorder\n\n| client | method | route | status | count | max latency (s) |\n|---|---|---|---|---|---|"
    );
    for ((client, method, route, class), (n, max)) in &by_kind {
        let _ = writeln!(md, "| {client} | {method} | `{route}` | {class} | {n} | {max:.3} |");
    }

    let mut ops: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    for (_, o) in history.ops() {
        let e = ops.entry((o.workload.clone(), o.op.clone())).or_default();
        e[match o.result {
            OpResult::Ok => 0,
            OpResult::Fail => 1,
            OpResult::Indeterminate => 2,
        }] += 1;
    }
    if !ops.is_empty() {
        let _ = writeln!(md, "\n## Workload ops\n\n| workload | op | ok | fail | indeterminate |\n|---|---|---|---|---|");
        for ((w, op), [ok, fail, ind]) in &ops {
            let _ = writeln!(md, "| {w} | {op} | {ok} | {fail} | {ind} |");
        }
    }
    md.push_str(&slopes::render(&slopes::resource_slopes(history, WARMUP_SPAWNS), WARMUP_SPAWNS));
    if let Some(share) =
        crate::observe::procfs::cpu_share(history, crate::observe::procfs::HARNESS, crate::observe::procfs::SAMPLER_CPU_SECONDS)
    {
        let _ = writeln!(md, "\n**Sampler CPU cost:** {:.2} % of one core.", share * 100.0);
    }
    if !report.restarts.is_empty() {
        let r: Vec<String> = report.restarts.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ = writeln!(md, "\n**Restarts by component:** {}", r.join(", "));
    }
    if !report.teardown_errors.is_empty() {
        let _ = writeln!(md, "\n## Teardown problems\n");
        for e in &report.teardown_errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    let plots: Vec<&str> = ["resources.svg", "rate.svg", "latency.svg"].into_iter().filter(|p| report.run_dir.join(p).exists()).collect();
    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for p in plots {
            let _ = writeln!(md, "![{}]({p})", p.trim_end_matches(".svg"));
        }
    }
    let _ = writeln!(
        md,
        "\n## Files\n\n`scenario.json`, `outcome.json`, `history.jsonl`, `samples.jsonl`, `logs/<component>.log`\n\nWall time {:.1} s.",
        report.wall_s
    );
    md
}

fn render_profile(profile: &Profile) -> String {
    let mut md = String::from("## Profile\n\n");
    if let Some(source) = &profile.source {
        let _ = writeln!(md, "`{}`\n", source.display());
    }
    let lines = profile.version_lines();
    if lines.is_empty() {
        md.push_str("No component overrides or pins.\n");
    }
    for l in lines {
        let _ = writeln!(md, "- {l}");
    }
    md.push('\n');
    md
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Write `summary.md`, with the run's profile (if any) shown under "Profile".
pub fn write(
    run_dir: &RunDir,
    scenario: &Scenario,
    report: &RunReport,
    history: &History,
    profile: Option<&Profile>,
) -> anyhow::Result<()> {
    std::fs::write(run_dir.path.join("summary.md"), render(scenario, report, history, profile))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    fn report() -> RunReport {
        RunReport {
            test_name: "local::hub::t".into(),
            outcome: Outcome::Passed,
            run_dir: "run".into(),
            checks: Vec::new(),
            key_figure: None,
            deploy: None,
            restarts: Vec::new(),
            teardown_errors: Vec::new(),
            wall_s: 1.0,
            unexpected: None,
        }
    }

    #[test]
    fn a_profile_is_shown_before_the_checks() {
        let s = Scenario::new("hub", "t", "incident");
        let yaml = "components:\n  culler:\n    args: [--x]\n    version: my-branch\n";
        let mut p = Profile::parse(std::path::Path::new("p.yaml"), yaml).unwrap();
        p.source = Some("profiles/mine.yaml".into());
        let md = render(&s, &report(), &History::default(), Some(&p));
        let at = md.find("## Profile\n\n`profiles/mine.yaml`\n\n- culler: my-branch\n").expect(&md);
        assert!(at < md.find("## Checks").unwrap(), "{md}");
    }

    #[test]
    fn without_a_profile_there_is_no_profile_section() {
        let s = Scenario::new("hub", "t", "incident");
        let md = render(&s, &report(), &History::default(), None);
        assert!(!md.contains("## Profile"), "{md}");
        assert!(md.contains("## Checks"), "{md}");
    }
}
