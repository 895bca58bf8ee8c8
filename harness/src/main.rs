//! `hubchaos`: the command line. Scenarios themselves live in the `suites` crate and run as
//! test trials (`make test-chaos`); `list` and `run` hand over to that test binary, passing it
//! the profile and the charts (`run --chart`) this process validated.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use clap::{Parser, Subcommand};
use hubchaos::catalogue::{self, Entry};
use hubchaos::doctor::{all_required_ok, doctor, render_table};
use hubchaos::paths::{runs_root, workspace_root};
use hubchaos::profile::{ChartName, Profile};
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
enum ClusterAction {
    /// Fetch the pinned engine (Debian trixie's dockerd, unpacked) and build (or find on
    /// PATH, or in the cache) kind and helm at the pinned versions.
    Tools,
    /// Build (or find in the cache) what the node image is made of: the pinned Kubernetes
    /// binaries, etcd, pause, the base rootfs (root: mmdebstrap), coredns and crictl.
    Kubernetes,
    /// Assemble (or find in the cache) the kind node image from those, on the pinned engine.
    Image,
    /// Build (or find in the cache) the hub stack's images (hub, proxy, singleuser,
    /// image-cleaner) from the python and npm pins on a Debian rootfs (root: mmdebstrap).
    StackImages,
    /// Import the built stack images into the running cluster's core and user nodes (those
    /// that lack them): where the hub stack runs.
    LoadStackImages,
    /// Bring the kind cluster up (or reuse it): engine, network, pools, pod networking, every
    /// node Ready; each step with its time. Kept until `cluster down`. Needs root.
    Up,
    /// Take the kind cluster down: nodes, network, engine, the small disk.
    Down,
    /// The kind cluster: its state, each node's pool, readiness and taints (exit 3: none).
    Status,
    /// Whether everything a cluster is made of is built (exit 0), or what is missing (exit 3):
    /// `make test` runs the kind scenarios only then.
    Cached,
}

#[derive(Subcommand)]
enum Command {
    /// List every prerequisite, what is missing and how to fix it.
    Doctor,
    /// Install (or reuse) the pinned components' environment and show it.
    Env,
    /// The scenarios: test name, whether long, what each needs, what it replays, and why it
    /// would be skipped on this machine.
    List,
    /// Run scenarios by exact test name, e.g. `local::culler::flood_replay`; every name is
    /// checked before any runs (an unknown one: exit 2 and the nearest match).
    Run {
        #[arg(required = true)]
        scenarios: Vec<String>,
        /// A chart the kind scenarios install instead of the reference one, as NAME=PATH
        /// (repeatable; NAME: jupyterhub): a z2jh checkout, its root or its jupyterhub/
        /// directory. Wins over HUBCHAOS_CHART_JUPYTERHUB and the profile's `charts`.
        #[arg(long = "chart", value_name = "NAME=PATH")]
        charts: Vec<String>,
    },
    /// The table of a run: scenario, outcome, key figure, run dir (default: the latest run).
    Report {
        #[arg(default_value = "latest")]
        run: String,
    },
    /// End what abandoned runs left behind (processes, mounts), found by their markers.
    Sweep,
    /// kind clusters: the tools and node image they are made of (`tools`, `kubernetes`,
    /// `image`), and the cluster itself (`up`, `down`, `status`).
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
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

/// `hubchaos cluster up|down|status`.
fn cluster_lifecycle(action: &ClusterAction, home: &std::path::Path, kube: &hubchaos::toolchain::KubePins) -> ExitCode {
    use hubchaos::backend::kind::cluster;
    if !matches!(action, ClusterAction::Status) {
        if let Err(why) = hubchaos::component::node_disk::requires_root() {
            eprintln!("hubchaos: a kind cluster {why}");
            return ExitCode::from(2);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match action {
        ClusterAction::Up => rt.block_on(async {
            let programs = match cluster::Programs::ensure(home, kube).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    return ExitCode::from(1);
                }
            };
            let started = std::time::Instant::now();
            // Ctrl-C while it is made: take down what was made, then exit 130.
            let made = tokio::select! {
                r = cluster::up(home, cluster::DEFAULT_NAME, &programs, true, false) => r,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("hubchaos: interrupted: taking down what was made");
                    let errors = cluster::down(home, cluster::DEFAULT_NAME, &programs, false).await;
                    for e in &errors {
                        eprintln!("hubchaos: {e}");
                    }
                    return ExitCode::from(130);
                }
            };
            match made {
                Ok(up) => {
                    let how = if up.created { "created" } else { "reused" };
                    println!(
                        "{} {how} in {:.1} s; kubeconfig {}",
                        up.layout.context(),
                        started.elapsed().as_secs_f64(),
                        up.layout.kubeconfig().display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    ExitCode::from(1)
                }
            }
        }),
        ClusterAction::Down => rt.block_on(async {
            let programs = match cluster::Programs::cached(home, kube) {
                Ok(p) => p,
                Err(why) => {
                    eprintln!("hubchaos: {why}");
                    return ExitCode::from(1);
                }
            };
            let started = std::time::Instant::now();
            let errors = cluster::down(home, cluster::DEFAULT_NAME, &programs, false).await;
            for e in &errors {
                eprintln!("hubchaos: {e}");
            }
            println!("down in {:.1} s", started.elapsed().as_secs_f64());
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        _ => rt.block_on(async {
            let layout = cluster::ClusterLayout::new(home, cluster::DEFAULT_NAME);
            let Some(state) = layout.read_state() else {
                println!("{}: no cluster (`hubchaos cluster up` makes one)", layout.context());
                return ExitCode::from(3);
            };
            println!(
                "{}: {} (owner: {:?}, network {})",
                layout.context(),
                state.phase,
                state.owner,
                state.subnet.as_deref().unwrap_or("-")
            );
            match hubchaos::backend::kind::kube::KindCluster::connect(&layout.kubeconfig(), &layout.context()).await {
                Ok(kc) => match kc.nodes().await {
                    Ok(nodes) => {
                        for n in nodes {
                            let pool = hubchaos::backend::kind::pools::pool_of(&n).unwrap_or(hubchaos::backend::kind::pools::CONTROL_PLANE);
                            let taints: Vec<String> = n.taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
                            println!("  {:<26} {:<14} ready={:<5} taints=[{}]", n.name, pool, n.ready, taints.join(", "));
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("hubchaos: {e:#}");
                        ExitCode::from(1)
                    }
                },
                Err(e) => {
                    eprintln!("hubchaos: {e:#}");
                    ExitCode::from(1)
                }
            }
        }),
    }
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

/// The scenario test binary, run through cargo so that it is built from this workspace first.
/// Every hand-over (`list`, `run`) goes through [`Suite::command`], which gives the child the
/// profile this process validated: as an absolute path, because the child runs in the
/// workspace root and a relative `--profile` or `HUBCHAOS_PROFILE` would name another file there.
/// The charts of `run --chart` reach it the same way, each in its variable
/// ([`ChartName::env_var`]), over whatever the environment had there.
struct Suite {
    cargo: OsString,
    workspace: PathBuf,
    profile: Option<PathBuf>,
    /// Absolute chart directories, by name.
    charts: BTreeMap<ChartName, PathBuf>,
}

impl Suite {
    fn new(profile: Option<&Profile>) -> Result<Self, String> {
        let profile = match profile.and_then(|p| p.source.as_deref()) {
            Some(path) => Some(std::path::absolute(path).map_err(|e| format!("profile {}: {e}", path.display()))?),
            None => None,
        };
        Ok(Self {
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            workspace: workspace_root(),
            profile,
            charts: BTreeMap::new(),
        })
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.cargo);
        cmd.current_dir(&self.workspace).args(["test", "--quiet", "-p", "hubchaos-suites", "--test", "scenarios", "--"]).args(args);
        if let Some(profile) = &self.profile {
            cmd.env("HUBCHAOS_PROFILE", profile);
        }
        for (name, dir) in &self.charts {
            cmd.env(name.env_var(), dir);
        }
        cmd
    }

    /// Run the suite with `args`; its exit code (1 if it could not be started).
    fn run(&self, args: &[&str]) -> u8 {
        match self.command(args).status() {
            Ok(s) => exit_code_of(s),
            Err(e) => {
                eprintln!("hubchaos: running the scenario suite with cargo failed: {e} (is cargo on PATH?)");
                1
            }
        }
    }

    /// Every scenario's catalogue entry; on failure the message is printed and the exit code returned.
    fn catalogue(&self) -> Result<Vec<Entry>, u8> {
        let mut cmd = self.command(&[]);
        cmd.env(catalogue::REQUEST_VAR, catalogue::REQUEST_JSON).stdin(Stdio::null()).stderr(Stdio::inherit());
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => {
                eprintln!("hubchaos: running the scenario suite with cargo failed: {e} (is cargo on PATH?)");
                return Err(1);
            }
        };
        if !out.status.success() {
            eprintln!("hubchaos: the scenario suite did not build or answer (cargo: {}); its errors are above", out.status);
            return Err(exit_code_of(out.status));
        }
        catalogue::from_json_lines(&String::from_utf8_lossy(&out.stdout)).map_err(|e| {
            eprintln!("hubchaos: {e:#}");
            1
        })
    }
}

fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    match status.code() {
        Some(0) => 0,
        Some(c) => u8::try_from(c).ok().filter(|c| *c != 0).unwrap_or(1),
        None => 1,
    }
}

/// `hubchaos run`: every name is checked against the catalogue before any scenario runs, so a
/// typo fails the job (exit 2, the valid names, the nearest match) instead of running nothing.
/// Then each runs in turn; the exit code is the last failing one's.
fn run_scenarios(names: &[String], catalogue: impl FnOnce() -> Result<Vec<Entry>, u8>, mut run_one: impl FnMut(&str) -> u8) -> u8 {
    let entries = match catalogue() {
        Ok(entries) => entries,
        Err(code) => return code,
    };
    if let Err(e) = catalogue::check_names(names, &entries) {
        eprint!("hubchaos: {e}");
        return e.exit_code();
    }
    let mut code = 0;
    for name in names {
        let c = run_one(name);
        if c != 0 {
            code = c;
        }
    }
    code
}

/// The charts of `run --chart NAME=PATH`, checked before anything runs: each one's chart
/// directory (absolute: the suite runs elsewhere) by name. A chart no `--chart` names is
/// checked in the environment (`env` reads a variable) the same way, so a bad
/// `HUBCHAOS_CHART_JUPYTERHUB` is bad input here rather than a reason to skip scenarios later.
/// The error names the argument or variable, what is wrong, and how to fix it.
fn chart_args(args: &[String], env: impl Fn(&str) -> Option<OsString>) -> Result<BTreeMap<ChartName, PathBuf>, String> {
    use hubchaos::backend::kind::hub_chart::chart_dir;
    let mut charts = BTreeMap::new();
    for arg in args {
        let Some((name, path)) = arg.split_once('=') else {
            return Err(format!("--chart {arg}: expected NAME=PATH, e.g. --chart jupyterhub=path/to/zero-to-jupyterhub-k8s"));
        };
        let name: ChartName = name.parse().map_err(|e| format!("--chart {arg}: {e}"))?;
        let dir = chart_dir(std::path::Path::new(path)).map_err(|e| format!("--chart {arg}: {e}"))?;
        if charts.insert(name, dir).is_some() {
            return Err(format!("--chart {name} given twice: give each chart once"));
        }
    }
    for name in ChartName::ALL.into_iter().filter(|n| !charts.contains_key(n)) {
        let var = name.env_var();
        match env(var) {
            Some(v) if v.is_empty() => {
                return Err(format!("{var} is empty: unset it, or set it to a z2jh checkout (or use --chart {name}=PATH)"))
            }
            Some(v) => chart_dir(std::path::Path::new(&v)).map(drop).map_err(|e| format!("{var}: {e}"))?,
            None => {}
        }
    }
    Ok(charts)
}

/// `HUBCHAOS_SEED` is read by each scenario; a bad one is bad input here, before anything runs.
fn check_seed() -> Result<(), String> {
    match std::env::var("HUBCHAOS_SEED") {
        Ok(s) if s.parse::<u64>().is_err() => Err(format!("HUBCHAOS_SEED={s:?} is not a number: unset it or give an integer")),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_env("HUBCHAOS_LOG")).with_writer(std::io::stderr).init();
    let profile = match load_profile(&cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let suite = match Suite::new(profile.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubchaos: {e}");
            return ExitCode::from(2);
        }
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
        Command::List => match suite.catalogue() {
            Ok(entries) => {
                print!("{}", catalogue::render_table(&entries));
                ExitCode::SUCCESS
            }
            Err(code) => ExitCode::from(code),
        },
        Command::Run { scenarios, charts } => {
            if let Err(e) = check_seed() {
                eprintln!("hubchaos: {e}");
                return ExitCode::from(2);
            }
            let suite = match chart_args(charts, |var| std::env::var_os(var)) {
                Ok(charts) => Suite { charts, ..suite },
                Err(e) => {
                    eprintln!("hubchaos: {e}");
                    return ExitCode::from(2);
                }
            };
            ExitCode::from(run_scenarios(
                scenarios,
                || suite.catalogue(),
                |name| suite.run(&["--exact", name, "--nocapture", "--include-ignored"]),
            ))
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
            let report = hubchaos::runner::run_blocking(scenario, &hubchaos::backend::local::Local, opts);
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
        Command::Cluster { action } => {
            let all = match pins(profile.as_ref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let Some(kube) = all.kubernetes.clone() else {
                eprintln!("hubchaos: the pins name no Kubernetes versions: add a `kubernetes:` section to fixtures/pins.yaml");
                return ExitCode::from(2);
            };
            let home = hubchaos::paths::hubchaos_home();
            use hubchaos::backend::kind::{kube_build, tools};
            let how =
                |took: Option<std::time::Duration>| took.map_or("cached".to_string(), |t| format!("built in {:.0} s", t.as_secs_f64()));
            let list = match action {
                ClusterAction::Cached => {
                    return match hubchaos::backend::kind::cluster::Programs::cached(&home, &kube) {
                        Ok(p) => {
                            println!("kind cluster ingredients cached ({})", p.node_image);
                            ExitCode::SUCCESS
                        }
                        Err(why) => {
                            println!("{why}");
                            ExitCode::from(3)
                        }
                    };
                }
                ClusterAction::Up | ClusterAction::Down | ClusterAction::Status => {
                    return cluster_lifecycle(action, &home, &kube);
                }
                ClusterAction::LoadStackImages => {
                    use hubchaos::backend::kind::{cluster, stack_image};
                    let tar = stack_image::tar_path(&home, &all);
                    if !tar.is_file() {
                        eprintln!(
                            "hubchaos: the stack images are not built: `make stack-images` (hubchaos cluster stack-images) builds them"
                        );
                        return ExitCode::from(2);
                    }
                    let refs = stack_image::references(&stack_image::key(&all));
                    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
                    return rt.block_on(async {
                        let programs = match cluster::Programs::cached(&home, &kube) {
                            Ok(p) => p,
                            Err(why) => {
                                eprintln!("hubchaos: {why}");
                                return ExitCode::from(1);
                            }
                        };
                        let layout = cluster::ClusterLayout::new(&home, cluster::DEFAULT_NAME);
                        match cluster::load_stack_images(&layout, &programs, &tar, &refs).await {
                            Ok(loaded) => {
                                for (node, took) in loaded {
                                    println!(
                                        "{node}: {}",
                                        took.map_or("had them".to_string(), |t| format!("imported in {:.1} s", t.as_secs_f64()))
                                    );
                                }
                                ExitCode::SUCCESS
                            }
                            Err(e) => {
                                eprintln!("hubchaos: {e:#}");
                                ExitCode::from(1)
                            }
                        }
                    });
                }
                ClusterAction::Kubernetes => {
                    type Build =
                        fn(&std::path::Path, &hubchaos::toolchain::KubePins) -> anyhow::Result<(PathBuf, Option<std::time::Duration>)>;
                    let builds: [(&str, Build); 4] = [
                        ("kubernetes", kube_build::ensure),
                        ("etcd", kube_build::ensure_etcd),
                        ("pause", kube_build::ensure_pause),
                        ("kind base rootfs", hubchaos::backend::kind::base_rootfs::ensure),
                    ];
                    for (what, build) in builds {
                        match build(&home, &kube) {
                            Ok((path, took)) => println!("{what} {} ({})", path.display(), how(took)),
                            Err(e) => {
                                eprintln!("hubchaos: {e:#}");
                                return ExitCode::from(1);
                            }
                        }
                    }
                    tools::node_tools(&kube)
                }
                ClusterAction::StackImages => {
                    let dockerd = match hubchaos::backend::kind::engine::ensure_engine(&home, &kube.engine) {
                        Ok((d, _)) => d,
                        Err(e) => {
                            eprintln!("hubchaos: {e:#}");
                            return ExitCode::from(1);
                        }
                    };
                    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
                    return match rt.block_on(hubchaos::backend::kind::stack_image::ensure(&home, &all, &dockerd)) {
                        Ok((tar, refs, took)) => {
                            println!("{} {} ({})", refs.join(" "), tar.display(), how(took));
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("hubchaos: {e:#}");
                            ExitCode::from(1)
                        }
                    };
                }
                ClusterAction::Image => {
                    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
                    return match rt.block_on(hubchaos::backend::kind::node_image::ensure(&home, &kube)) {
                        Ok((tar, took)) => {
                            println!("{} {} ({})", hubchaos::backend::kind::node_image::image_ref(&kube), tar.display(), how(took));
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("hubchaos: {e:#}");
                            ExitCode::from(1)
                        }
                    };
                }
                ClusterAction::Tools => {
                    match hubchaos::backend::kind::engine::ensure_engine(&home, &kube.engine) {
                        Ok((dockerd, took)) => println!("engine {} {} ({})", kube.engine, dockerd.display(), how(took)),
                        Err(e) => {
                            eprintln!("hubchaos: {e:#}");
                            return ExitCode::from(1);
                        }
                    }
                    tools::tools(&kube)
                }
            };
            for tool in list {
                match tool.ensure(&home) {
                    Ok(found) => println!("{} {} {} ({:?})", tool.name, tool.version, found.path.display(), found.how),
                    Err(e) => {
                        eprintln!("hubchaos: {e:#}");
                        return ExitCode::from(1);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Sweep => {
            let report = hubchaos::backend::local::sweep::sweep_abandoned();
            println!("{}", report.describe());
            let (clusters, cluster_errors) = hubchaos::backend::kind::cluster::sweep_abandoned(&hubchaos::paths::hubchaos_home());
            for c in &clusters {
                println!("swept {c}");
            }
            for e in &cluster_errors {
                eprintln!("hubchaos: {e}");
            }
            if report.errors.is_empty() && cluster_errors.is_empty() {
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::ffi::OsStr;

    use super::*;

    fn profile_from(path: &str) -> Profile {
        Profile { source: Some(PathBuf::from(path)), ..Profile::default() }
    }

    fn env_of<'a>(cmd: &'a std::process::Command, var: &str) -> Option<Option<&'a OsStr>> {
        cmd.get_envs().find(|(k, _)| *k == OsStr::new(var)).map(|(_, v)| v)
    }

    #[test]
    fn the_profile_reaches_the_suite_as_an_absolute_path() {
        let suite = Suite::new(Some(&profile_from("profiles/my-culler.yaml"))).unwrap();
        let cmd = suite.command(&["--exact", "local::culler::flood_replay"]);
        let expected = std::env::current_dir().unwrap().join("profiles/my-culler.yaml");
        assert_eq!(env_of(&cmd, "HUBCHAOS_PROFILE"), Some(Some(expected.as_os_str())));
        assert_eq!(cmd.get_current_dir(), Some(workspace_root().as_path()));
        let args: Vec<&OsStr> = cmd.get_args().collect();
        assert_eq!(args[args.len() - 3..], ["--", "--exact", "local::culler::flood_replay"]);
    }

    #[test]
    fn without_a_profile_the_suite_inherits_the_environment_untouched() {
        let cmd = Suite::new(None).unwrap().command(&["--list"]);
        assert_eq!(env_of(&cmd, "HUBCHAOS_PROFILE"), None);
        assert_eq!(env_of(&cmd, "HUBCHAOS_CHART_JUPYTERHUB"), None);
    }

    /// A z2jh-like checkout in a temporary directory: `<it>/jupyterhub/Chart.yaml`.
    fn z2jh() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("jupyterhub")).unwrap();
        std::fs::write(dir.path().join("jupyterhub/Chart.yaml"), "name: jupyterhub\n").unwrap();
        dir
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn a_chart_reaches_the_suite_as_its_absolute_chart_directory() {
        let checkout = z2jh();
        let charts = chart_args(&[format!("jupyterhub={}", checkout.path().display())], no_env).unwrap();
        let suite = Suite { charts, ..Suite::new(None).unwrap() };
        let cmd = suite.command(&["--exact", "kind::controls::flood_is_caught"]);
        let expected = checkout.path().join("jupyterhub");
        assert_eq!(env_of(&cmd, "HUBCHAOS_CHART_JUPYTERHUB"), Some(Some(expected.as_os_str())));
    }

    #[test]
    fn the_flag_wins_over_a_bad_environment_which_is_otherwise_refused() {
        let checkout = z2jh();
        let bad_env = |var: &str| (var == "HUBCHAOS_CHART_JUPYTERHUB").then(|| OsString::from("/nonexistent/z2jh"));
        let given = [format!("jupyterhub={}", checkout.path().display())];
        assert!(chart_args(&given, bad_env).is_ok(), "the flag replaces the variable");
        let e = chart_args(&[], bad_env).unwrap_err();
        assert_eq!(
            e,
            "HUBCHAOS_CHART_JUPYTERHUB: /nonexistent/z2jh does not exist: give a z2jh checkout (its root or its jupyterhub/ directory)"
        );
        let e = chart_args(&[], |_: &str| Some(OsString::new())).unwrap_err();
        assert!(e.starts_with("HUBCHAOS_CHART_JUPYTERHUB is empty: unset it"), "{e}");
        assert!(chart_args(&[], no_env).unwrap().is_empty());
    }

    #[test]
    fn a_bad_chart_argument_says_what_is_wrong_and_how_to_fix_it() {
        let checkout = z2jh();
        let at = checkout.path().display();
        let e = chart_args(&[at.to_string()], no_env).unwrap_err();
        assert_eq!(e, format!("--chart {at}: expected NAME=PATH, e.g. --chart jupyterhub=path/to/zero-to-jupyterhub-k8s"));
        let e = chart_args(&[format!("binderhub={at}")], no_env).unwrap_err();
        assert_eq!(e, format!("--chart binderhub={at}: unknown chart `binderhub`, expected jupyterhub"));
        let e = chart_args(&["jupyterhub=/nonexistent/z2jh".into()], no_env).unwrap_err();
        assert!(e.starts_with("--chart jupyterhub=/nonexistent/z2jh: /nonexistent/z2jh does not exist: give a z2jh checkout"), "{e}");
        let e = chart_args(&[format!("jupyterhub={}", checkout.path().join("jupyterhub/templates").display())], no_env).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = chart_args(&[format!("jupyterhub={}", empty.path().display())], no_env).unwrap_err();
        assert!(e.contains("no jupyterhub chart there (no Chart.yaml in it or in its jupyterhub/)"), "{e}");
        let twice = [format!("jupyterhub={at}"), format!("jupyterhub={at}")];
        assert_eq!(chart_args(&twice, no_env).unwrap_err(), "--chart jupyterhub given twice: give each chart once");
    }

    fn entries(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| Entry {
                test_name: n.to_string(),
                area: String::new(),
                name: String::new(),
                incident: String::new(),
                long: false,
                needs: Vec::new(),
                skip_reason: None,
                elsewhere: None,
            })
            .collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_unknown_name_runs_nothing_and_exits_2() {
        let ran = RefCell::new(Vec::new());
        let code = run_scenarios(
            &strings(&["local::culler::flood_replay", "local::culler::flod_replay"]),
            || Ok(entries(&["local::culler::flood_replay", "local::hub::proxy_killed"])),
            |name| {
                ran.borrow_mut().push(name.to_string());
                0
            },
        );
        assert_eq!(code, 2);
        assert!(ran.borrow().is_empty(), "ran {:?} although a name was unknown", ran.borrow());
    }

    #[test]
    fn known_names_run_in_order_and_a_failure_is_the_exit_code() {
        let ran = RefCell::new(Vec::new());
        let code = run_scenarios(
            &strings(&["local::hub::proxy_killed", "local::culler::flood_replay"]),
            || Ok(entries(&["local::culler::flood_replay", "local::hub::proxy_killed"])),
            |name| {
                ran.borrow_mut().push(name.to_string());
                if name == "local::hub::proxy_killed" {
                    101
                } else {
                    0
                }
            },
        );
        assert_eq!(code, 101);
        assert_eq!(*ran.borrow(), strings(&["local::hub::proxy_killed", "local::culler::flood_replay"]));
    }

    #[test]
    fn a_catalogue_that_cannot_be_had_runs_nothing_and_passes_its_code_on() {
        let code = run_scenarios(&strings(&["local::hub::proxy_killed"]), || Err(101), |_| panic!("nothing may run"));
        assert_eq!(code, 101);
    }
}
