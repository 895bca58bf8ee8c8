//! `summary.md`: what a person reads first. The outcome and why, every check with its
//! numbers, then the evidence: deploy times, faults, restarts, requests and ops by kind (and,
//! where the hub's log was read, its requests side by side with the recorder's), and
//! BinderHub's build streams.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::run_dir::RunDir;
use super::slopes;
use crate::observe::history::{BuildStreamRecord, Event, History, OpResult};
use crate::observe::hub_log::side_by_side;
use crate::profile::Profile;
use crate::runner::RunReport;
use crate::scenario::{Expectation, Scenario};
use crate::soak::WARMUP_SPAWNS;
use crate::stats::nearest_rank;

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
        let _ = writeln!(md, "| `{}` | {} | {} |", c.check, c.verdict, table_cell(&c.summary));
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
            Event::HubLogRead(r) => format!("hub log read: {r}"),
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
        let _ = writeln!(md, "| {:.1} | {} |", e.at.as_secs_f64(), table_cell(&line));
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

    md.push_str(&render_sources(history));

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
    md.push_str(&render_build_streams(history));
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
    let plots: Vec<&str> =
        ["resources.svg", "rate.svg", "latency.svg", "binder.svg"].into_iter().filter(|p| report.run_dir.join(p).exists()).collect();
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

/// A failure message longer than this is cut in the table (the whole of it is in
/// `history.jsonl`).
const MESSAGE_CHARS: usize = 120;

/// Text made safe for one cell of a markdown table: a `|` would end the cell, a newline the row.
fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Seconds with one decimal, as the tables here give times.
fn s1(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

/// `waiting 0.0 → fetching 0.4 → ready 12.3`: each phase with when it arrived, in seconds
/// after the request.
fn phase_trail(stream: &BuildStreamRecord) -> String {
    let trail: Vec<String> =
        stream.phases.iter().map(|p| format!("{} {}", p.phase, s1(p.at.saturating_sub(stream.requested_at)))).collect();
    if trail.is_empty() {
        "no phase".into()
    } else {
        trail.join(" → ")
    }
}

/// How long after its terminal phase the server closed the stream; a stream left open is
/// what BinderHub's clients see hang.
fn closed_after_terminal(stream: &BuildStreamRecord) -> String {
    match (&stream.terminal, stream.closed_at) {
        (_, None) => "open at the end".into(),
        (Some(t), Some(closed)) => s1(closed.saturating_sub(t.at)),
        (None, Some(closed)) => format!("closed {} after the request, no terminal phase", s1(closed.saturating_sub(stream.requested_at))),
    }
}

/// The stream's message (a failed build's last message, or the client's own error), safe for
/// a table cell and cut to [`MESSAGE_CHARS`].
fn message_cell(stream: &BuildStreamRecord) -> String {
    let cell = table_cell(stream.message.trim());
    if cell.chars().count() <= MESSAGE_CHARS {
        return cell;
    }
    cell.chars().take(MESSAGE_CHARS).chain(['…']).collect()
}

/// "## Build streams": every `/build` stream in the order they were asked for, with its phases,
/// then per repo the queue wait (request → build start) at p50 and max. Empty for a run
/// without build streams.
fn render_build_streams(history: &History) -> String {
    let mut streams: Vec<&BuildStreamRecord> = history.build_streams().collect();
    if streams.is_empty() {
        return String::new();
    }
    streams.sort_by(|a, b| (a.requested_at, &a.repo, a.watcher).cmp(&(b.requested_at, &b.repo, b.watcher)));
    let mut md = String::from(
        "\n## Build streams\n\nTimes in seconds: the request on the run's clock, the build's start and each phase after the request, the close after the terminal phase.\n\n\
         | stream | requested at | build started after | phases | terminal | closed after terminal | message |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for s in &streams {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            table_cell(&s.name()),
            s1(s.requested_at),
            s.queue_wait().map_or_else(|| "never".into(), s1),
            table_cell(&phase_trail(s)),
            s.terminal.as_ref().map_or_else(|| "none".into(), |t| table_cell(&t.phase)),
            closed_after_terminal(s),
            message_cell(s),
        );
    }
    md.push_str("\nQueue wait (request → build start) per repo, nearest-rank p50 and max over the streams whose build started:\n\n");
    let mut by_repo: BTreeMap<&str, Vec<&BuildStreamRecord>> = BTreeMap::new();
    for s in &streams {
        by_repo.entry(s.repo.as_str()).or_default().push(s);
    }
    for (repo, streams) in by_repo {
        let _ = writeln!(md, "- {}", repo_waits(repo, &streams));
    }
    md
}

/// `` `slow`: p50 0.4 s, max 0.5 s over 2 started streams; 1 never started ``.
fn repo_waits(repo: &str, streams: &[&BuildStreamRecord]) -> String {
    let mut waits: Vec<f64> = streams.iter().filter_map(|s| s.queue_wait()).map(|w| w.as_secs_f64()).collect();
    waits.sort_by(f64::total_cmp);
    let (Some(p50), Some(max)) = (nearest_rank(&waits, 0.5), waits.last()) else {
        return format!("`{repo}`: no build started, of {}", count(streams.len(), "stream"));
    };
    let mut line = format!("`{repo}`: p50 {p50:.1} s, max {max:.1} s over {}", count(waits.len(), "started stream"));
    let never = streams.len() - waits.len();
    if never > 0 {
        let _ = write!(line, "; {never} never started");
    }
    line
}

/// At most this many differing rows in "Request sources side by side" (the rest are counted).
const SOURCE_ROWS: usize = 30;

/// "## Request sources side by side": for a run whose hub log was read, the requests to the
/// hub in the judged window per client as the recording proxy saw them and as the hub logged
/// them, and the (client, method, route, status) rows where the two differ.
fn render_sources(history: &History) -> String {
    let Some(s) = side_by_side(history) else { return String::new() };
    let mut md = format!(
        "\n## Request sources side by side\n\nRequests to the hub from {} s to {} s, through the recording proxy and in the hub's log ({}). \
         The proxy names a client by its listener, the hub by the user or service whose token it sent; \
         the rows name it as the hub does (README, \"Request sources\").\n\n\
         | client | through the proxy | in the hub's log |\n|---|---|---|\n",
        s1(s.from),
        if s.to == std::time::Duration::MAX { "the end".into() } else { s1(s.to) },
        table_cell(&s.read.to_string()),
    );
    let recorded_as = s.recorded_as();
    let names: std::collections::BTreeSet<&str> =
        recorded_as.keys().copied().chain(s.logged_by_client.keys().map(String::as_str)).collect();
    for name in names {
        let proxy: Vec<String> =
            recorded_as.get(name).into_iter().flatten().map(|c| format!("{} ({c})", s.recorded_by_client[*c])).collect();
        let proxy = if proxy.is_empty() { "0".to_string() } else { proxy.join(", ") };
        let _ = writeln!(md, "| {name} | {proxy} | {} |", s.logged_by_client.get(name).copied().unwrap_or(0));
    }
    if s.differing.is_empty() {
        let _ = writeln!(md, "\nPer client, method, route and status: identical ({} rows).", s.rows);
        return md;
    }
    let _ = writeln!(
        md,
        "\n{} of {} (client, method, route, status) rows differ:\n\n| client | method | route | status | through the proxy | in the hub's log |\n|---|---|---|---|---|---|",
        s.differing.len(),
        s.rows
    );
    for r in s.differing.iter().take(SOURCE_ROWS) {
        let _ = writeln!(md, "| {} | {} | `{}` | {} | {} | {} |", table_cell(&r.client), r.method, r.route, r.status, r.recorded, r.logged);
    }
    if s.differing.len() > SOURCE_ROWS {
        let _ = writeln!(md, "\n… and {} more.", s.differing.len() - SOURCE_ROWS);
    }
    md
}

/// `1 stream`, `2 streams`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
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
    use crate::observe::history::Entry;
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

    /// A stream of `repo#watcher` with its phases as (phase, seconds on the run clock); the
    /// build started at the first phase after `waiting`, the terminal one is `ready`/`failed`.
    fn stream(repo: &str, watcher: usize, phases: &[(&str, f64)], closed: Option<f64>, message: &str) -> Entry {
        use crate::check::testkit::secs;
        use crate::observe::history::PhaseAt;
        let requested = phases[0].1;
        let mut r = BuildStreamRecord::new(repo.into(), watcher, secs(requested));
        r.phases = phases.iter().map(|(p, t)| PhaseAt { phase: p.to_string(), at: secs(*t) }).collect();
        r.build_started_at = phases.iter().find(|(p, _)| *p != "waiting").map(|(_, t)| secs(*t));
        r.terminal = r.phases.iter().find(|p| p.phase == "ready" || p.phase == "failed").cloned();
        r.closed_at = closed.map(secs);
        r.message = message.into();
        Entry { at: secs(requested), event: Event::BuildStream(r) }
    }

    fn build_streams() -> History {
        let enospc = format!("Error: failed to build | step 3/5:\nno space left on device{}", " (docker)".repeat(20));
        crate::check::testkit::history(vec![
            stream("starved", 0, &[("waiting", 3.0)], None, ""),
            stream("slow", 2, &[("waiting", 6.0)], Some(6.5), "the client's read timed out"),
            stream("broken", 0, &[("waiting", 2.0), ("fetching", 2.5), ("failed", 4.0)], Some(4.1), &enospc),
            stream("slow", 1, &[("waiting", 1.0), ("building", 1.5), ("ready", 13.3)], None, ""),
            stream("slow", 0, &[("waiting", 1.0), ("fetching", 1.4), ("building", 1.9), ("ready", 13.3)], Some(13.4), ""),
        ])
    }

    #[test]
    fn build_streams_are_listed_by_request_with_their_phases_and_queue_waits_per_repo() {
        let md = render_build_streams(&build_streams());
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| stream ")).collect();
        assert_eq!(rows.len(), 5, "{md}");
        assert_eq!(rows[0], "| slow#0 | 1.0 | 0.4 | waiting 0.0 → fetching 0.4 → building 0.9 → ready 12.3 | ready | 0.1 |  |");
        assert_eq!(rows[1], "| slow#1 | 1.0 | 0.5 | waiting 0.0 → building 0.5 → ready 12.3 | ready | open at the end |  |");
        let broken = format!(
            "| broken#0 | 2.0 | 0.5 | waiting 0.0 → fetching 0.5 → failed 2.0 | failed | 0.1 | Error: failed to build \\| step 3/5: no space left on device{}… |",
            &" (docker)".repeat(20)[..120 - "Error: failed to build \\| step 3/5: no space left on device".chars().count()]
        );
        assert_eq!(rows[2], broken, "the message escaped, on one line, cut to 120 characters");
        assert_eq!(rows[3], "| starved#0 | 3.0 | never | waiting 0.0 | none | open at the end |  |");
        assert_eq!(
            rows[4],
            "| slow#2 | 6.0 | never | waiting 0.0 | none | closed 0.5 after the request, no terminal phase | the client's read timed out |"
        );
        for line in [
            "- `broken`: p50 0.5 s, max 0.5 s over 1 started stream",
            "- `slow`: p50 0.4 s, max 0.5 s over 2 started streams; 1 never started",
            "- `starved`: no build started, of 1 stream",
        ] {
            assert!(md.contains(&format!("{line}\n")), "{line} in {md}");
        }
        assert!(md.find("`broken`").unwrap() < md.find("`slow`").unwrap() && md.find("`slow`").unwrap() < md.find("`starved`").unwrap());
    }

    #[test]
    fn the_summary_has_build_streams_only_when_the_run_recorded_some() {
        let s = Scenario::new("binder", "t", "incident");
        let md = render(&s, &report(), &build_streams(), None);
        let at = md.find("\n## Build streams\n").expect(&md);
        assert!(md[at..].contains("| starved#0 | 3.0 | never |"), "{md}");
        assert!(!render(&s, &report(), &History::default(), None).contains("## Build streams"));
    }

    fn sources(logged_culler_deletes: usize) -> History {
        use crate::check::testkit::secs;
        use crate::observe::history::{PhaseEvent, RequestRecord, SETUP_DONE, WORKLOAD_STOP};
        use crate::observe::hub_log::{HubLogRead, TokenOwners};
        let del = |client: &str| RequestRecord {
            client: client.into(),
            upstream: "hub".into(),
            method: "DELETE".into(),
            route: "/hub/api/users/{name}".into(),
            user: Some("u1".into()),
            server: None,
            status: 204,
            latency: secs(0.01),
        };
        let phase =
            |at: f64, name: &str| Entry { at: secs(at), event: Event::Phase(PhaseEvent { name: name.into(), detail: String::new() }) };
        let mut entries = vec![phase(1.0, SETUP_DONE), phase(9.0, WORKLOAD_STOP)];
        entries.extend((0..2).map(|i| Entry { at: secs(2.0 + i as f64), event: Event::Request(del("culler")) }));
        entries.extend(
            (0..logged_culler_deletes).map(|i| Entry { at: secs(2.0 + i as f64), event: Event::LoggedRequest(del("idle-culler")) }),
        );
        let owners = TokenOwners { by_client: [("culler".to_string(), "idle-culler".to_string())].into(), otherwise: "harness".into() };
        let read = HubLogRead { lines: 10, requests: logged_culler_deletes, token_owners: owners, ..HubLogRead::default() };
        entries.push(Entry { at: secs(10.0), event: Event::HubLogRead(read) });
        crate::check::testkit::history(entries)
    }

    #[test]
    fn request_sources_side_by_side_per_client_then_the_rows_that_differ() {
        let md = render_sources(&sources(2));
        assert!(md.contains("from 1.0 s to 9.0 s"), "{md}");
        assert!(md.contains("| idle-culler | 2 (culler) | 2 |\n"), "{md}");
        assert!(md.contains("identical (1 rows)"), "{md}");
        let md = render_sources(&sources(3));
        assert!(md.contains("| idle-culler | 2 (culler) | 3 |\n"), "{md}");
        assert!(md.contains("1 of 1 (client, method, route, status) rows differ"), "{md}");
        assert!(md.contains("| idle-culler | DELETE | `/hub/api/users/{name}` | 204 | 2 | 3 |\n"), "{md}");
        let s = Scenario::new("hub", "t", "incident");
        assert!(render(&s, &report(), &sources(2), None).contains("\n## Request sources side by side\n"));
        assert!(!render(&s, &report(), &History::default(), None).contains("side by side"), "not without a hub log read");
    }

    #[test]
    fn without_a_profile_there_is_no_profile_section() {
        let s = Scenario::new("hub", "t", "incident");
        let md = render(&s, &report(), &History::default(), None);
        assert!(!md.contains("## Profile"), "{md}");
        assert!(md.contains("## Checks"), "{md}");
    }
}
