//! `hubchaos`: the command line. Scenarios themselves live in the `suites` crate and run as
//! test trials (`make test-chaos`); `list` and `run` hand over to that test binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hubchaos::doctor::{all_required_ok, doctor, render_table};
use hubchaos::paths::{runs_root, workspace_root};
use hubchaos::profile::Profile;
use hubchaos::toolchain::{EnsureOptions, Pins, Toolchain};

#[derive(Parser)]
#[command(name = "hubchaos", version, about = "Chaos and integration tests for JupyterHub / BinderHub deployments")]
struct Cli {
    /// A profile overriding component commands, versions, args, env (also HUBCHAOS_PROFILE).
    #[arg(long, global = true)]
    profile: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchKind {
    /// The recording proxy in front of a trivial upstream (its own cost per request).
    Recorder,
    /// The recording proxy in front of the real hub (`GET /hub/api/`).
    RecorderHub,
    /// hub + proxy + culler ready, beside a bare `jupyterhub`.
    Startup,
}

#[derive(Subcommand)]
enum Command {
    /// List every prerequisite, what is missing and how to fix it.
    Doctor,
    /// Install (or reuse) the pinned components' environment and show it.
    Env,
    /// List the scenarios (test names).
    List,
    /// Run scenarios by exact test name, e.g. `local::culler::flood_replay`.
    Run {
        #[arg(required = true)]
        scenarios: Vec<String>,
    },
    /// The table of a run: scenario, outcome, key figure, run dir (default: the latest run).
    Report {
        #[arg(default_value = "latest")]
        run: String,
    },
    /// End what abandoned runs left behind (processes, mounts), found by their markers.
    Sweep,
    /// Spawn churn for a long time: leak slopes per window, compared with a baseline.
    Soak {
        /// How long to churn, e.g. `30m`.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Length of the windows slopes are reported for.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        window: std::time::Duration,
        /// A soak.json from an earlier run: fail when a slope exceeds 1.1× its, beyond noise.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Write this run's soak.json here too (to be the next baseline).
        #[arg(long)]
        save_baseline: Option<PathBuf>,
    },
    /// Measure the recording proxy against a direct connection (`recorder`), or the stack's
    /// start against a bare jupyterhub (`startup`).
    Bench {
        #[arg(value_enum, default_value = "recorder")]
        what: BenchKind,
        /// Length of each measured round in seconds (recorder).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Rounds (startup).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Requests per second of the latency phase.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
    },
}

fn load_profile(cli: &Cli) -> Result<Option<Profile>, ExitCode> {
    Profile::from_cli_or_env(cli.profile.as_deref()).map_err(|e| {
        eprintln!("hubchaos: {e}");
        ExitCode::from(e.exit_code() as u8)
    })
}

fn pins(profile: Option<&Profile>) -> Result<Pins, ExitCode> {
    let base = Pins::load_default().map_err(|e| {
        eprintln!("hubchaos: {e}");
        ExitCode::from(e.exit_code() as u8)
    })?;
    Ok(profile.map(|p| p.pins(&base)).unwrap_or(base))
}

/// Hand over to the scenario test binary (built by cargo from this workspace).
fn suites(args: &[&str]) -> ExitCode {
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root())
        .args(["test", "--quiet", "-p", "hubchaos-suites", "--test", "scenarios", "--"])
        .args(args)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1) as u8),
        Err(e) => {
            eprintln!("hubchaos: running the scenario suite with cargo failed: {e} (is cargo on PATH?)");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_env("HUBCHAOS_LOG")).with_writer(std::io::stderr).init();
    let profile = match load_profile(&cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match &cli.command {
        Command::Doctor => {
            let pins = match pins(profile.as_ref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let prereqs = doctor(&pins, profile.as_ref());
            print!("{}", render_table(&prereqs));
            if all_required_ok(&prereqs) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Env => {
            let pins = match pins(profile.as_ref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match Toolchain::ensure(&pins, EnsureOptions { progress: true }) {
                Ok(t) => {
                    println!("environment: {}", t.root.display());
                    for (name, version) in &t.versions {
                        println!("  {name} {version}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hubchaos: {e}");
                    ExitCode::from(e.exit_code() as u8)
                }
            }
        }
        Command::List => suites(&["--list"]),
        Command::Run { scenarios } => {
            let mut code = ExitCode::SUCCESS;
            for s in scenarios {
                let c = suites(&["--exact", s, "--nocapture", "--include-ignored"]);
                if c != ExitCode::SUCCESS {
                    code = c;
                }
            }
            code
        }
        Command::Report { run } => match hubchaos::report::table::render_group(&runs_root().join(run)) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hubchaos: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Soak { duration, window, baseline, save_baseline } => {
            let baseline = match baseline.as_deref().map(hubchaos::soak::load_result).transpose() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let scenario = hubchaos::soak::churn(
                hubchaos::scenario::Scenario::new(
                    "soak",
                    "spawn_churn",
                    "Soak: spawn churn against a clean hub for a long time; the leak slopes per window.",
                ),
                None,
                *duration,
            );
            let opts = match hubchaos::runner::RunOptions::from_env() {
                Ok(o) => hubchaos::runner::RunOptions { profile: profile.clone().or(o.profile), progress: true, ..o },
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let report = hubchaos::runner::run_blocking(scenario, opts);
            let history = match hubchaos::soak::load_run(&report.run_dir) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    return ExitCode::from(1);
                }
            };
            let result = hubchaos::soak::analyse(&report.run_dir, &history, *window);
            let json = serde_json::to_vec_pretty(&result).expect("soak result serialises");
            let _ = std::fs::write(report.run_dir.join("soak.json"), &json);
            if let Some(path) = save_baseline {
                if let Err(e) = std::fs::write(path, &json) {
                    eprintln!("hubchaos: writing {}: {e}", path.display());
                }
            }
            let regressions = baseline.as_ref().map(|b| hubchaos::soak::compare(&result, b)).unwrap_or_default();
            print!("{}", hubchaos::soak::render(&result, &regressions));
            println!("outcome: {} {}", report.outcome.label(), report.outcome.detail());
            println!("run dir: {}", report.run_dir.display());
            let regressed = regressions.iter().any(|r| r.regressed);
            if regressed || !matches!(report.outcome, hubchaos::outcome::Outcome::Passed) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Sweep => {
            let report = hubchaos::sweep::sweep_abandoned();
            println!("{}", report.describe());
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Bench { what: BenchKind::Startup, rounds, .. } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            match rt.block_on(hubchaos::startup_bench::startup_bench(*rounds)) {
                Ok(r) => {
                    print!("{}", r.to_markdown());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hubchaos: bench failed: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench { what: what @ (BenchKind::Recorder | BenchKind::RecorderHub), seconds, rate, .. } => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            let opts = hubchaos::bench::BenchOptions {
                round_duration: std::time::Duration::from_secs(*seconds),
                rate_duration: std::time::Duration::from_secs(*seconds),
                rate: *rate,
                ..Default::default()
            };
            let report = match what {
                BenchKind::RecorderHub => rt.block_on(hubchaos::startup_bench::hub_recorder_bench(opts)),
                _ => rt.block_on(hubchaos::bench::recorder_bench(opts)),
            };
            match report {
                Ok(r) => {
                    print!("{}", r.to_markdown());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hubchaos: bench failed: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
