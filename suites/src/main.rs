//! The scenario suite as a custom test harness (libtest-mimic): nextest lists it with
//! `--list` (cheap: declarations only) and runs each scenario in its own process.

use hubchaos::backend::local::Local;
use hubchaos::backend::BackendKind;
use hubchaos::runner::{run_blocking, RunOptions};
use libtest_mimic::{Arguments, Failed, Trial};

fn run_trial(build: fn() -> hubchaos::scenario::Scenario) -> Result<(), Failed> {
    let scenario = build();
    let opts = RunOptions::from_env().map_err(|e| Failed::from(format!("{e:#}")))?;
    let report = run_blocking(scenario, &Local, opts);
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
    let args = Arguments::from_args();
    let trials = hubchaos_suites::catalogue()
        .into_iter()
        .map(|build| {
            let scenario = build();
            let skip = Local.cannot_run(&scenario);
            Trial::test(scenario.test_name(Local.name()), move || run_trial(build)).with_ignored_flag(skip.is_some() || scenario.long)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
