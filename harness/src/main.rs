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
