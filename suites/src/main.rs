//! The scenario suite as a custom test harness (libtest-mimic): nextest lists it with
//! `--list` (cheap: declarations only) and runs each scenario in its own process.
//!
//! With `HUBCHAOS_CATALOGUE=json` in its environment it prints the catalogue instead, one JSON
//! entry per scenario (`hubchaos::catalogue`), for `hubchaos list` and for `hubchaos run` to
//! check names against; it does so before reading any argument, so nextest's `--list` and
//! `--exact` are answered as without it.

use hubchaos::backend::kind::Kind;
use hubchaos::backend::local::Local;
use hubchaos::backend::BackendKind;
use hubchaos::catalogue::{self, Entry};
use hubchaos::runner::{run_blocking, RunOptions};
use hubchaos::scenario::Scenario;
use libtest_mimic::{Arguments, Failed, Trial};

/// The backend a scenario runs on: kind for the ones that need its cluster, local for the
/// rest (the hub stack on kind comes with the charts).
fn backend_of(scenario: &Scenario) -> &'static dyn BackendKind {
    if scenario.needs.cluster {
        &Kind
    } else {
        &Local
    }
}

/// One trial: the scenario, the backend it runs on, and whether `make test` runs it (a kind
/// twin may be for `make test-chaos` only).
struct Planned {
    build: fn() -> Scenario,
    backend: &'static dyn BackendKind,
    in_make_test: bool,
}

/// Every trial: each scenario on its backend, then the kind twins of those that also run on
/// kind.
fn every_trial() -> Vec<Planned> {
    let mut trials: Vec<Planned> = hubchaos_suites::catalogue()
        .into_iter()
        .map(|build| Planned { build, backend: backend_of(&build()), in_make_test: true })
        .collect();
    trials.extend(hubchaos_suites::kind_catalogue().into_iter().map(|(build, in_make_test)| Planned {
        build,
        backend: &Kind,
        in_make_test,
    }));
    trials
}

fn run_trial(build: fn() -> Scenario, backend: &'static dyn BackendKind) -> Result<(), Failed> {
    let scenario = build();
    let opts = RunOptions::from_env().map_err(|e| Failed::from(format!("{e:#}")))?;
    let report = run_blocking(scenario, backend, opts);
    println!("{} {}", report.test_name, report.outcome.label());
    for c in &report.checks {
        println!("  {:<28} {:<7} {}", c.check, c.verdict.to_string(), c.summary.replace('\n', " "));
    }
    // The run dir is the last line, always.
    println!("run dir: {}", report.run_dir.display());
    match report.unexpected {
        None => Ok(()),
        Some(why) => Err(Failed::from(why)),
    }
}

fn main() {
    if let Some(request) = std::env::var_os(catalogue::REQUEST_VAR).filter(|v| !v.is_empty()) {
        if request != catalogue::REQUEST_JSON {
            eprintln!(
                "scenarios: {}={} is not a catalogue format; use {}={} or unset it",
                catalogue::REQUEST_VAR,
                request.to_string_lossy(),
                catalogue::REQUEST_VAR,
                catalogue::REQUEST_JSON
            );
            std::process::exit(2);
        }
        let twins: Vec<String> = hubchaos_suites::kind_catalogue().iter().map(|(b, _)| b().test_name(Kind.name())).collect();
        let explained: Vec<(String, &str)> =
            hubchaos_suites::not_on_kind().into_iter().map(|(b, why)| (b().test_name(Kind.name()), why)).collect();
        let entries: Vec<Entry> = every_trial()
            .into_iter()
            .map(|Planned { build, backend, in_make_test }| {
                let scenario = build();
                let mut entry = Entry::of(&scenario, backend.name(), backend.cannot_run(&scenario));
                entry.long |= !in_make_test;
                if backend.name() == Local.name() && !twins.contains(&scenario.test_name(Kind.name())) {
                    let on_kind = scenario.test_name(Kind.name());
                    let why = explained.iter().find(|(n, _)| *n == on_kind).map(|(_, why)| why.to_string());
                    entry.elsewhere = why.or_else(|| Kind.cannot_run(&scenario)).map(|why| format!("{}: {why}", Kind.name()));
                }
                entry
            })
            .collect();
        print!("{}", catalogue::to_json_lines(&entries));
        return;
    }
    let mut args = Arguments::from_args();
    // Scenarios deploy real hubs and dockerds on a 2-core machine: run in one process (plain
    // `cargo test`), they run one at a time unless told otherwise, as nextest runs them (each
    // in its own process, one at a time). Seen: in parallel, node scenarios restart each other's
    // dockerd and fail checks they pass alone.
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    let trials = every_trial()
        .into_iter()
        .map(|Planned { build, backend, in_make_test }| {
            let scenario = build();
            let skip = backend.cannot_run(&scenario);
            Trial::test(scenario.test_name(backend.name()), move || run_trial(build, backend))
                .with_ignored_flag(skip.is_some() || scenario.long || !in_make_test)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
