//! A kind cluster's life: `up` (create, or reuse by name), `down`, `status`, and the sweep of
//! a cluster whose maker died.
//!
//! `up`, step by step (each printed with its time; a failed step names itself):
//! 1. the node image (`hubchaos cluster image`: built when missing, ~10 min cold on 2 cores);
//! 2. the engine ([`super::daemon`]), started unless it runs; the node image loaded into it
//!    unless it has it;
//! 3. the network on its /24 ([`super::network`]);
//! 4. the no-ssd pool's small disk: a file, `mkfs.ext4`, a loop mount;
//! 5. `kind create cluster` with the pools' configuration ([`super::pools`]), bounded;
//! 6. a client through kube-rs ([`super::kube`]) on the control plane's address;
//! 7. pod networking (CNI configuration and routes per node), coredns limited to the
//!    cluster's own names (its `forward` to the machine's resolvers removed: nothing leaves);
//! 8. the test image (a static busybox) imported into every node;
//! 9. every node Ready, coredns Ready (bounded).
//!
//! The cluster's state (`$HUBCHAOS_HOME/kind-cluster/<name>/state.json`) is written before the
//! first thing is made, and says who owns the cluster: a process (a run that made it for
//! itself, or a `cluster up` still in progress) or nobody (made by `cluster up`, kept until
//! `cluster down`). When the owning process is gone, the next run or `hubchaos sweep` takes
//! the cluster down: nodes, network, engine, disk, files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::daemon::{self, EngineLayout};
use super::kube::KindCluster;
use super::network::{self, Subnet24, NETWORK};
use super::pools::{self, Pool, PoolDisk};
use super::{engine, node_image, tools};
use crate::toolchain::KubePins;

/// The cluster's name (kind prefixes its context with `kind-`).
pub const DEFAULT_NAME: &str = "hubchaos";

/// Who keeps a cluster alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    /// A process: a run that made the cluster for itself, or `cluster up` before it finished.
    /// When it is gone the cluster is swept.
    Process { pid: u32, start: u64 },
    /// Made by `cluster up`: kept until `cluster down`.
    Kept,
}

/// What `state.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    /// Carried by the engine and everything it starts (`HUBCHAOS_RUN_ID`).
    pub id: String,
    pub owner: Owner,
    /// `creating` until step 9 passed, then `up`.
    pub phase: String,
    pub subnet: Option<String>,
    /// The loop mount of the no-ssd disk (if made).
    pub small_disk_mount: Option<PathBuf>,
    /// `hubchaos/busybox:<tag>` on every node.
    pub test_image: Option<String>,
}

/// Where a cluster keeps its files.
#[derive(Debug, Clone)]
pub struct ClusterLayout {
    pub name: String,
    pub dir: PathBuf,
    pub engine: EngineLayout,
}

impl ClusterLayout {
    pub fn new(home: &Path, name: &str) -> Self {
        Self { name: name.to_string(), dir: home.join("kind-cluster").join(name), engine: EngineLayout::new(home) }
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    pub fn context(&self) -> String {
        format!("kind-{}", self.name)
    }
    pub fn disk_image(&self, pool: &Pool, disk: &PoolDisk) -> PathBuf {
        self.dir.join(format!("{}{}.img", pool.name, disk.used_for.suffix()))
    }
    pub fn disk_mount(&self, pool: &Pool, disk: &PoolDisk) -> PathBuf {
        self.dir.join(format!("{}{}", pool.name, disk.used_for.suffix()))
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("cluster.log")
    }
    pub fn read_state(&self) -> Option<ClusterState> {
        serde_json::from_slice(&std::fs::read(self.state_file()).ok()?).ok()
    }
    fn write_state(&self, s: &ClusterState) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.state_file().with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)?;
        std::fs::rename(&tmp, self.state_file())?;
        Ok(())
    }
}

/// Prints each step with its time, and keeps them for the figures.
pub struct Steps {
    label: &'static str,
    pub taken: Vec<(String, Duration)>,
    quiet: bool,
}

impl Steps {
    pub fn new(label: &'static str, quiet: bool) -> Self {
        Self { label, taken: Vec::new(), quiet }
    }
    pub async fn step<T>(&mut self, what: &str, f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        if !self.quiet {
            eprintln!("hubchaos: [{}] {what} …", self.label);
        }
        let started = Instant::now();
        let out = f.await.with_context(|| format!("[{}] {what}", self.label))?;
        let took = started.elapsed();
        if !self.quiet {
            eprintln!("hubchaos: [{}] {what}: {:.1} s", self.label, took.as_secs_f64());
        }
        self.taken.push((what.to_string(), took));
        Ok(out)
    }
}

/// The commands [`run_bounded`] is running now (pids), so [`down`] can end one still under way
/// (a `kind create cluster` when Ctrl-C came) before it takes the cluster down.
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// SIGKILL every command [`run_bounded`] is running in this process.
pub fn kill_running_commands() {
    for pid in RUNNING.lock().unwrap().drain(..) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
}

/// A command run to its end within a bound (killed past it); its output goes to `log`.
pub fn run_bounded(cmd: Command, what: &str, within: Duration, log: &Path) -> anyhow::Result<String> {
    run_bounded_with_input(cmd, what, within, log, None)
}

/// [`run_bounded`] with `input` as the command's standard input (none: `/dev/null`).
pub fn run_bounded_with_input(
    mut cmd: Command,
    what: &str,
    within: Duration,
    log: &Path,
    input: Option<std::fs::File>,
) -> anyhow::Result<String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(input.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{what}: starting {:?}", cmd.get_program()))?;
    let pid = child.id();
    RUNNING.lock().unwrap().push(pid);
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if started.elapsed() >= within {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    RUNNING.lock().unwrap().retain(|p| *p != pid);
    let (stdout, stderr) = (out_t.join().unwrap_or_default(), err_t.join().unwrap_or_default());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        use std::io::Write;
        let _ = writeln!(f, "$ {what}: {cmd:?}\n{stdout}{stderr}");
    }
    match status {
        None => bail!("{what}: no end within {within:?} (killed); see {}", log.display()),
        Some(s) if !s.success() => bail!("{what} failed ({s}): {}", last_lines(&stderr, 8)),
        Some(_) => Ok(stdout),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A node image kind pulls instead of the one built here (e.g. `kindest/node:v1.34.0` in a CI
/// that reaches a registry). Opt-in: by default nothing is pulled. When the pull fails, the
/// image built here is used if it is cached.
pub const NODE_IMAGE_VAR: &str = "HUBCHAOS_KIND_NODE_IMAGE";

/// The image [`NODE_IMAGE_VAR`] names, if it names one.
fn node_image_to_pull() -> Option<String> {
    std::env::var(NODE_IMAGE_VAR).ok().filter(|v| !v.trim().is_empty())
}

/// The machine's programs and the pinned ones a cluster needs.
#[derive(Debug, Clone)]
pub struct Programs {
    pub dockerd: PathBuf,
    pub docker: PathBuf,
    pub kind: PathBuf,
    /// The image the nodes run: the one built here, or [`NODE_IMAGE_VAR`]'s.
    pub node_image: String,
    /// The saved image built here (`None`: not cached, and [`NODE_IMAGE_VAR`] names one to pull).
    pub node_tar: Option<PathBuf>,
    /// The image built here, to fall back on when a pull of [`NODE_IMAGE_VAR`]'s fails.
    pub built_image: String,
}

impl Programs {
    /// Only what is there already (no build): `None` names what is missing and how to get it.
    pub fn cached(home: &Path, pins: &KubePins) -> Result<Self, String> {
        let pulled = node_image_to_pull();
        let tar = node_image::tar_path(home, pins);
        let node_tar = tar.is_file().then_some(tar.clone());
        if node_tar.is_none() && pulled.is_none() {
            return Err(format!(
                "the kind node image is not built ({} missing): run `make kind-image` (~10 min cold), or set {NODE_IMAGE_VAR} to an image kind can pull",
                tar.display()
            ));
        }
        let dockerd = engine::engine_root(home, &pins.engine).join("usr/sbin/dockerd");
        if !dockerd.is_file() {
            return Err(format!("the kind engine (dockerd {}) is not unpacked: run `make kind-image`", pins.engine));
        }
        let kind = tools::tools(pins).into_iter().find(|t| t.name == "kind").map(|t| t.installed_path(home));
        let Some(kind) = kind.filter(|p| p.is_file()) else {
            return Err(format!("kind {} is not built: run `make kind-image`", pins.kind));
        };
        let docker = crate::toolchain::find_program("docker").ok_or("no docker CLI on PATH: `make deps` installs docker.io")?;
        let built_image = node_image::image_ref(pins);
        Ok(Self { dockerd, docker, kind, node_image: pulled.unwrap_or_else(|| built_image.clone()), node_tar, built_image })
    }

    /// Everything, built when missing (the node image needs root).
    pub async fn ensure(home: &Path, pins: &KubePins) -> anyhow::Result<Self> {
        let (h, p) = (home.to_path_buf(), pins.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            engine::ensure_engine(&h, &p.engine)?;
            for t in tools::tools(&p) {
                t.ensure(&h)?;
            }
            Ok(())
        })
        .await??;
        if node_image_to_pull().is_none() {
            node_image::ensure(home, pins).await?;
        }
        Self::cached(home, pins).map_err(|e| anyhow::anyhow!(e))
    }

    fn docker(&self, layout: &ClusterLayout) -> Command {
        let mut c = Command::new(&self.docker);
        c.env("DOCKER_HOST", layout.engine.docker_host());
        c
    }

    fn kind(&self, layout: &ClusterLayout) -> Command {
        let mut c = Command::new(&self.kind);
        c.env("DOCKER_HOST", layout.engine.docker_host()).env("KIND_EXPERIMENTAL_DOCKER_NETWORK", NETWORK);
        // kind calls `docker`: the CLI found above first on its PATH.
        if let Some(dir) = self.docker.parent() {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", dir.display()));
        }
        c
    }
}

/// A cluster that is up, and a client of it.
#[derive(Debug, Clone)]
pub struct Up {
    pub layout: ClusterLayout,
    pub state: ClusterState,
    pub kube: KindCluster,
    /// True when this call created it (false: it was there and was reused).
    pub created: bool,
    pub steps: Vec<(String, Duration)>,
}

/// The kind node names of the pools, by the `hubchaos.io/pool` label.
pub async fn pool_nodes(kube: &KindCluster) -> anyhow::Result<Vec<(String, String)>> {
    Ok(kube.nodes().await?.iter().filter_map(|n| Some((pools::pool_of(n)?.to_string(), n.name.clone()))).collect())
}

/// Bring the cluster up, or reuse it. `owner` is what keeps it ([`Owner::Kept`] for `cluster
/// up`; a run passes itself and takes it down at its end when `created`).
pub async fn up(home: &Path, name: &str, programs: &Programs, keep: bool, quiet: bool) -> anyhow::Result<Up> {
    let layout = ClusterLayout::new(home, name);
    let mut steps = Steps::new("cluster up", quiet);
    sweep_abandoned(home);
    if let Some(state) = layout.read_state().filter(|s| s.phase == "up") {
        match reuse(&layout, programs).await {
            Ok(kube) => {
                if !quiet {
                    eprintln!("hubchaos: [cluster up] {} is up: reused", layout.context());
                }
                return Ok(Up { layout, state, kube, created: false, steps: Vec::new() });
            }
            Err(why) if !quiet => {
                eprintln!(
                    "hubchaos: [cluster up] {} is recorded but cannot be reused ({why:#}): taking it down to make it again",
                    layout.context()
                )
            }
            Err(_) => {}
        }
        down(home, name, programs, true).await;
    }
    std::fs::create_dir_all(&layout.dir)?;
    let me = std::process::id();
    let mut state = ClusterState {
        name: name.to_string(),
        id: format!("kind-cluster-{name}-{me}"),
        owner: Owner::Process { pid: me, start: crate::backend::local::sweep::start_time(me).unwrap_or(0) },
        phase: "creating".into(),
        subnet: None,
        small_disk_mount: None,
        test_image: None,
    };
    layout.write_state(&state)?;
    let result = create(&layout, programs, &mut state, &mut steps).await;
    match result {
        Ok(kube) => {
            state.phase = "up".into();
            if keep {
                state.owner = Owner::Kept;
            }
            layout.write_state(&state)?;
            Ok(Up { layout, state, kube, created: true, steps: steps.taken })
        }
        Err(e) => {
            let errors = down(home, name, programs, quiet).await;
            if errors.is_empty() {
                Err(e.context("the cluster was not made (what was made of it is taken down)"))
            } else {
                Err(e.context(format!("the cluster was not made, and taking it down failed: {}", errors.join("; "))))
            }
        }
    }
}

async fn reuse(layout: &ClusterLayout, programs: &Programs) -> anyhow::Result<KindCluster> {
    anyhow::ensure!(layout.engine.running_pid().is_some(), "its engine is not running");
    let made_with: Option<serde_json::Value> =
        std::fs::read(layout.dir.join("kind.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    anyhow::ensure!(made_with.as_ref() == Some(&kind_config(layout)), "it was made with another shape (pools, disks) than this harness's");
    let out = blocking(
        programs.kind(layout),
        "kind get nodes",
        Duration::from_secs(30),
        layout.log(),
        vec!["get", "nodes", "--name", &layout.name],
    )
    .await?;
    anyhow::ensure!(out.lines().count() == 1 + pools::pools().len(), "kind lists {} nodes", out.lines().count());
    let kube = KindCluster::connect(&layout.kubeconfig(), &layout.context()).await?;
    kube.wait_nodes_ready(1 + pools::pools().len(), Duration::from_secs(20), |_| {}).await?;
    Ok(kube)
}

async fn blocking(mut cmd: Command, what: &str, within: Duration, log: PathBuf, args: Vec<&str>) -> anyhow::Result<String> {
    cmd.args(args);
    let what = what.to_string();
    tokio::task::spawn_blocking(move || run_bounded(cmd, &what, within, &log)).await?
}

async fn create(layout: &ClusterLayout, p: &Programs, state: &mut ClusterState, steps: &mut Steps) -> anyhow::Result<KindCluster> {
    let log = layout.log();
    steps
        .step("start the engine", async {
            daemon::ensure_running(&layout.engine, &p.dockerd, &state.id, Duration::from_secs(60)).await.map(|_| ())
        })
        .await?;
    let has_image = engine_has_image(layout, p, &p.node_image).await;
    let mut node_image = p.node_image.clone();
    if !has_image && node_image != p.built_image {
        let pulled = steps
            .step(
                &format!("pull {node_image}"),
                blocking(p.docker(layout), "docker pull", Duration::from_secs(600), log.clone(), vec!["pull", &node_image]),
            )
            .await;
        if let Err(e) = pulled {
            let Some(_) = &p.node_tar else {
                return Err(e.context(format!(
                    "{NODE_IMAGE_VAR}={node_image} could not be pulled and no node image is built here (`make kind-image`)"
                )));
            };
            eprintln!("hubchaos: [cluster up] {node_image} could not be pulled ({e:#}): using the image built here");
            node_image = p.built_image.clone();
        }
    }
    // Asked again only when the pull fell back to the built image.
    let has_built = if node_image == p.node_image { has_image } else { engine_has_image(layout, p, &node_image).await };
    if node_image == p.built_image && !has_built {
        let tar = p.node_tar.as_ref().context("the node image built here is not cached (`make kind-image`)")?.display().to_string();
        steps
            .step(
                "load the node image",
                blocking(p.docker(layout), "docker load", Duration::from_secs(300), log.clone(), vec!["load", "-i", &tar]),
            )
            .await?;
    }
    let subnet = steps.step("create the network", ensure_network(layout, p)).await?;
    state.subnet = Some(subnet.cidr());
    layout.write_state(state)?;
    let all = pools::pools();
    for pool in &all {
        for disk in pool.disks {
            let mount = layout.disk_mount(pool, disk);
            state.small_disk_mount = Some(mount.clone());
            layout.write_state(state)?;
            steps.step(&format!("make the {}{} disk", pool.name, disk.used_for.suffix()), make_small_disk(layout, pool, disk)).await?;
        }
    }
    let config = kind_config(layout);
    let config_file = layout.dir.join("kind.json");
    std::fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;
    let (cfg, kc) = (config_file.display().to_string(), layout.kubeconfig().display().to_string());
    steps
        .step(
            "kind create cluster",
            blocking(
                p.kind(layout),
                "kind create cluster",
                Duration::from_secs(300),
                log.clone(),
                vec![
                    "create",
                    "cluster",
                    "--name",
                    &layout.name,
                    "--image",
                    &node_image,
                    "--config",
                    &cfg,
                    "--kubeconfig",
                    &kc,
                    "--wait",
                    "0s",
                ],
            ),
        )
        .await?;
    steps.step("point the kubeconfig at the control plane", point_kubeconfig(layout, p)).await?;
    let kube = steps.step("connect", KindCluster::connect(&layout.kubeconfig(), &layout.context())).await?;
    steps.step("coredns: the cluster's names only", keep_dns_inside(&kube)).await?;
    steps.step("pod networking", pod_networking(layout, p, &kube)).await?;
    steps.step("image GC on the nodes with a disk of their own", image_gc_on_small_disks(layout, p, &kube)).await?;
    let image = steps.step("import the test image", import_test_image(layout, p)).await?;
    state.test_image = Some(image);
    layout.write_state(state)?;
    steps
        .step("every node Ready", async { kube.wait_nodes_ready(1 + all.len(), Duration::from_secs(180), |_| {}).await.map(|_| ()) })
        .await?;
    steps.step("coredns Ready", wait_dns_ready(&kube, Duration::from_secs(120))).await?;
    Ok(kube)
}

/// Whether the engine has `image` already.
async fn engine_has_image(layout: &ClusterLayout, p: &Programs, image: &str) -> bool {
    let args = vec!["image", "inspect", "-f", "{{.Id}}", image];
    blocking(p.docker(layout), "docker image inspect", Duration::from_secs(30), layout.log(), args).await.is_ok()
}

/// The network, made on a free /24 unless it exists.
async fn ensure_network(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<Subnet24> {
    let log = layout.log();
    if let Ok(out) = blocking(
        p.docker(layout),
        "docker network inspect",
        Duration::from_secs(30),
        log.clone(),
        vec!["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", NETWORK],
    )
    .await
    {
        let net = out.trim().trim_end_matches("/24");
        if let Ok(ip) = net.parse() {
            return Ok(Subnet24(ip));
        }
    }
    let subnet = network::choose_subnet(&network::machine_routes()?).context("no free /24 for the cluster's network")?;
    let (cidr, gw) = (subnet.cidr(), subnet.gateway().to_string());
    blocking(
        p.docker(layout),
        "docker network create",
        Duration::from_secs(30),
        log,
        vec!["network", "create", "--driver", "bridge", "--subnet", &cidr, "--gateway", &gw, "--label", "hubchaos=kind", NETWORK],
    )
    .await?;
    Ok(subnet)
}

/// The kind configuration of the cluster at `layout` (written to its `kind.json`; a cluster
/// made with another is made again, see [`reuse`]).
fn kind_config(layout: &ClusterLayout) -> serde_json::Value {
    pools::kind_config(&pools::pools(), |pool, disk| layout.disk_mount(pool, disk).display().to_string())
}

async fn make_small_disk(layout: &ClusterLayout, pool: &Pool, disk: &PoolDisk) -> anyhow::Result<()> {
    let (img, mount) = (layout.disk_image(pool, disk), layout.disk_mount(pool, disk));
    if crate::component::node_disk::is_mounted(&mount) {
        crate::component::node_disk::unmount_all_under(&mount);
    }
    std::fs::create_dir_all(&mount)?;
    let mib = disk.mib;
    let f = std::fs::File::create(&img)?;
    f.set_len(mib << 20)?;
    let log = layout.log();
    let mut mkfs = Command::new("mkfs.ext4");
    mkfs.args(["-q", "-F"]);
    if disk.used_for == pools::DiskUse::Docker {
        // As the local node disk: no blocks reserved for root, so "100 % used" as the image
        // cleaner computes it is where the daemon (root) gets ENOSPC.
        mkfs.args(["-m", "0"]);
    }
    mkfs.arg(&img);
    let l2 = log.clone();
    tokio::task::spawn_blocking(move || run_bounded(mkfs, "mkfs.ext4", Duration::from_secs(60), &l2)).await??;
    let mut m = Command::new("mount");
    m.args(["-o", "loop"]).arg(&img).arg(&mount);
    tokio::task::spawn_blocking(move || run_bounded(m, "mount -o loop", Duration::from_secs(30), &log)).await??;
    Ok(())
}

/// The control plane's address on the cluster's network.
async fn control_plane_ip(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<String> {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{NETWORK}\").IPAddress}}}}");
    let node = format!("{}-control-plane", layout.name);
    let ip =
        blocking(p.docker(layout), "docker inspect", Duration::from_secs(30), layout.log(), vec!["inspect", "-f", &format, &node]).await?;
    Ok(ip.trim().to_string())
}

/// kind's kubeconfig names `127.0.0.1:<published port>`; the harness talks to the control plane
/// on its own address instead (its certificate names it), through no proxy.
async fn point_kubeconfig(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<()> {
    let ip = control_plane_ip(layout, p).await?;
    let text = std::fs::read_to_string(layout.kubeconfig())?;
    let rewritten = rewrite_server(&text, &format!("https://{ip}:6443"));
    anyhow::ensure!(rewritten != text, "no `server: https://127.0.0.1:…` line in {}", layout.kubeconfig().display());
    std::fs::write(layout.kubeconfig(), rewritten)?;
    Ok(())
}

/// Every `server: https://127.0.0.1:<port>` line pointed at `server`.
pub fn rewrite_server(kubeconfig: &str, server: &str) -> String {
    kubeconfig
        .lines()
        .map(|l| match l.trim_start().strip_prefix("server: https://127.0.0.1:") {
            Some(_) => format!("{}server: {server}", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// kubeadm's Corefile without its `forward` block and `loop`: the cluster's names resolve,
/// nothing else is asked of the machine's resolvers.
pub fn corefile_without_upstream(corefile: &str) -> String {
    let mut out = Vec::new();
    let mut depth_in_forward = 0usize;
    for line in corefile.lines() {
        let t = line.trim();
        if depth_in_forward > 0 {
            depth_in_forward += t.matches('{').count();
            depth_in_forward -= t.matches('}').count().min(depth_in_forward);
            continue;
        }
        if t.starts_with("forward ") {
            depth_in_forward = t.matches('{').count().saturating_sub(t.matches('}').count());
            continue;
        }
        if t == "loop" {
            continue;
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

async fn keep_dns_inside(kube: &KindCluster) -> anyhow::Result<()> {
    let current = kube.configmap_value("kube-system", "coredns", "Corefile").await?;
    let inside = corefile_without_upstream(&current);
    kube.replace_configmap_data("kube-system", "coredns", "Corefile", &inside).await
}

async fn wait_dns_ready(kube: &KindCluster, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pods = kube.list_pods("kube-system", "k8s-app=kube-dns").await?;
        let ready = pods.iter().filter(|p| super::kube::pod_ready(p)).count();
        if !pods.is_empty() && ready == pods.len() {
            return Ok(());
        }
        if started.elapsed() >= within {
            bail!("coredns: {ready} of {} pods Ready after {within:?}", pods.len());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Each node's CNI configuration on its pod CIDR, and routes to every other node's pods.
async fn pod_networking(layout: &ClusterLayout, p: &Programs, kube: &KindCluster) -> anyhow::Result<()> {
    let expected = 1 + pools::pools().len();
    let started = Instant::now();
    let nodes = loop {
        let nodes = kube.nodes().await?;
        let known: Vec<(String, String, String)> =
            nodes.iter().filter_map(|n| Some((n.name.clone(), n.pod_cidr.clone()?, n.internal_ip.clone()?))).collect();
        if known.len() == expected {
            break known;
        }
        if started.elapsed() > Duration::from_secs(90) {
            bail!("{} of {expected} nodes have a pod CIDR and an address after 90 s", known.len());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (name, cidr, _) in &nodes {
        let mut script =
            format!("mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-hubchaos.conflist <<'EOF'\n{}\nEOF\n", network::cni_conflist(cidr));
        for route in network::closing_routes() {
            script.push_str(&route);
            script.push('\n');
        }
        for (other, via) in network::routes_for(name, &nodes) {
            script.push_str(&format!("ip route replace {other} via {via}\n"));
        }
        blocking(
            p.docker(layout),
            "docker exec (pod networking)",
            Duration::from_secs(30),
            layout.log(),
            vec!["exec", name, "sh", "-ec", &script],
        )
        .await?;
    }
    Ok(())
}

/// `imageGCHighThresholdPercent` 85 on the nodes of pools with a small disk (see
/// [`pools`]); their kubelets restarted.
async fn image_gc_on_small_disks(layout: &ClusterLayout, p: &Programs, kube: &KindCluster) -> anyhow::Result<()> {
    for (pool, node) in pool_nodes(kube).await? {
        if pools::pools().iter().any(|q| q.name == pool && q.has_own_snapshots()) {
            let script = format!("sed -i {} /var/lib/kubelet/config.yaml && systemctl restart kubelet", pools::IMAGE_GC_ON_SED);
            blocking(
                p.docker(layout),
                "docker exec (image GC on)",
                Duration::from_secs(30),
                layout.log(),
                vec!["exec", &node, "sh", "-ec", &script],
            )
            .await?;
        }
    }
    Ok(())
}

/// The images every worker needs for a run, put back where image GC took them: the sandbox
/// image (copied from the control plane, whose own pods keep it) and the test image.
pub async fn restore_images(layout: &ClusterLayout, p: &Programs, test_image: &str) -> anyhow::Result<Vec<String>> {
    let control_plane = format!("{}-control-plane", layout.name);
    let mut restored = Vec::new();
    for node in workers(layout, p).await? {
        let images = node_images(layout, p, &node).await?;
        if !images.has(SANDBOX_IMAGE) {
            let script = format!("docker exec {control_plane} ctr -n k8s.io images export - {SANDBOX_IMAGE} | docker exec -i {node} ctr -n k8s.io images import - >/dev/null");
            let mut c = Command::new("sh");
            c.env("DOCKER_HOST", layout.engine.docker_host()).args(["-ec", &script]);
            if let Some(dir) = p.docker.parent() {
                c.env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()));
            }
            let log = layout.log();
            tokio::task::spawn_blocking(move || run_bounded(c, "copy the sandbox image", Duration::from_secs(60), &log)).await??;
            restored.push(format!("{SANDBOX_IMAGE} on {node}"));
        }
        if !images.has(test_image) {
            import_on(layout, p, &node, &super::test_image::saved_path(&layout.dir, test_image)).await?;
            restored.push(format!("{test_image} on {node}"));
        }
    }
    Ok(restored)
}

/// kind's containerd `sandbox_image`.
pub const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// Every node of the cluster but the control plane.
async fn workers(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<Vec<String>> {
    let control_plane = format!("{}-control-plane", layout.name);
    Ok(node_names(layout, p).await?.into_iter().filter(|n| *n != control_plane).collect())
}

/// The image references a node's containerd lists (`ctr images ls -q`).
struct NodeImages(String);

impl NodeImages {
    /// Listed as `r`, or as `docker.io/r` (how a short name is stored).
    fn has(&self, r: &str) -> bool {
        self.0.lines().any(|l| l.trim() == r || l.trim() == format!("docker.io/{r}"))
    }
}

async fn node_images(layout: &ClusterLayout, p: &Programs, node: &str) -> anyhow::Result<NodeImages> {
    let listed = blocking(
        p.docker(layout),
        "docker exec (images)",
        Duration::from_secs(30),
        layout.log(),
        vec!["exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q"],
    )
    .await?;
    Ok(NodeImages(listed))
}

async fn import_on(layout: &ClusterLayout, p: &Programs, node: &str, tar: &Path) -> anyhow::Result<()> {
    let mut c = p.docker(layout);
    let script = "ctr -n k8s.io images import --all-platforms - >/dev/null";
    c.args(["exec", "-i", node, "sh", "-c", script]).stdin(std::fs::File::open(tar).with_context(|| format!("{}", tar.display()))?);
    let what = format!("import {} on {node}", tar.display());
    let log = layout.log();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let status = c.stdout(Stdio::null()).stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log)?).status()?;
        anyhow::ensure!(status.success(), "{what}: {status}");
        Ok(())
    })
    .await?
}

/// The pools the hub stack runs on: the hub and the proxy on core, user servers on user.
pub const STACK_POOLS: &[&str] = &["core", "user"];

/// The stack images (`tar`, holding `refs`: [`super::stack_image`]) imported into the
/// containerd of the [`STACK_POOLS`]' nodes of the running cluster `layout` that lack one of
/// them (nowhere else: the no-ssd node's small disk would fill, its image GC then takes them
/// again). Returns, per node, how long its import took (`None`: it had them all).
pub async fn load_stack_images(
    layout: &ClusterLayout,
    p: &Programs,
    tar: &Path,
    refs: &[String],
) -> anyhow::Result<Vec<(String, Option<Duration>)>> {
    anyhow::ensure!(layout.read_state().is_some(), "{}: no cluster (`hubchaos cluster up` makes one)", layout.context());
    let kube = KindCluster::connect(&layout.kubeconfig(), &layout.context()).await?;
    let nodes: Vec<String> =
        pool_nodes(&kube).await?.into_iter().filter(|(pool, _)| STACK_POOLS.contains(&pool.as_str())).map(|(_, node)| node).collect();
    load_stack_images_on(layout, p, tar, refs, &nodes).await
}

/// [`load_stack_images`] on `nodes` only (a hub stack needs them on the core and user pools).
pub async fn load_stack_images_on(
    layout: &ClusterLayout,
    p: &Programs,
    tar: &Path,
    refs: &[String],
    nodes: &[String],
) -> anyhow::Result<Vec<(String, Option<Duration>)>> {
    anyhow::ensure!(layout.read_state().is_some(), "{}: no cluster (`hubchaos cluster up` makes one)", layout.context());
    // The nodes import at once: each import is mostly one node's containerd unpacking layers.
    let imports = nodes.iter().cloned().map(|node| async move {
        let images = node_images(layout, p, &node).await?;
        if refs.iter().all(|r| images.has(r)) {
            return anyhow::Ok((node, None));
        }
        let started = std::time::Instant::now();
        import_on(layout, p, &node, tar).await?;
        Ok((node, Some(started.elapsed())))
    });
    futures::future::try_join_all(imports).await
}

/// A static busybox as `hubchaos/busybox:<hash>`, imported into every node's containerd.
async fn import_test_image(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<String> {
    let (tar, reference) = super::test_image::save(&layout.dir, |args: &[&str]| {
        let mut c = p.docker(layout);
        c.args(args);
        run_bounded(c, "docker (test image)", Duration::from_secs(60), &layout.log())
    })?;
    for node in node_names(layout, p).await? {
        import_on(layout, p, &node, &tar).await?;
    }
    Ok(reference)
}

async fn node_names(layout: &ClusterLayout, p: &Programs) -> anyhow::Result<Vec<String>> {
    let out =
        blocking(p.kind(layout), "kind get nodes", Duration::from_secs(30), layout.log(), vec!["get", "nodes", "--name", &layout.name])
            .await?;
    Ok(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Take the cluster down: kind's nodes, the network, the engine, the small disk, the state.
/// Bounded; errors are collected, not thrown.
pub async fn down(home: &Path, name: &str, programs: &Programs, quiet: bool) -> Vec<String> {
    let layout = ClusterLayout::new(home, name);
    let mut steps = Steps::new("cluster down", quiet);
    let mut errors = Vec::new();
    kill_running_commands();
    let state = layout.read_state();
    let id = state.as_ref().map(|s| s.id.clone()).unwrap_or_else(|| format!("kind-cluster-{name}-down"));
    if layout.engine.running_pid().is_none() && state.is_none() {
        return errors;
    }
    let engine_up = steps
        .step("start the engine", async {
            daemon::ensure_running(&layout.engine, &programs.dockerd, &id, Duration::from_secs(60)).await.map(|_| ())
        })
        .await;
    if let Err(e) = engine_up {
        errors.push(format!("{e:#}"));
    } else {
        let log = layout.log();
        if let Err(e) = steps
            .step(
                "kind delete cluster",
                blocking(
                    programs.kind(&layout),
                    "kind delete cluster",
                    Duration::from_secs(120),
                    log.clone(),
                    vec!["delete", "cluster", "--name", name],
                ),
            )
            .await
        {
            errors.push(format!("{e:#}"));
        }
        // A node a killed `kind create` made after the delete looked: by kind's label.
        let label = format!("label=io.x-k8s.kind.cluster={name}");
        let listed =
            blocking(programs.docker(&layout), "docker ps", Duration::from_secs(30), log.clone(), vec!["ps", "-aq", "--filter", &label])
                .await;
        if let Ok(ids) = listed {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().copied());
                if let Err(e) = blocking(programs.docker(&layout), "docker rm", Duration::from_secs(60), log.clone(), args).await {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        let exists = blocking(
            programs.docker(&layout),
            "docker network inspect",
            Duration::from_secs(30),
            log.clone(),
            vec!["network", "inspect", NETWORK],
        )
        .await
        .is_ok();
        if exists {
            if let Err(e) = steps
                .step(
                    "remove the network",
                    blocking(
                        programs.docker(&layout),
                        "docker network rm",
                        Duration::from_secs(30),
                        log.clone(),
                        vec!["network", "rm", NETWORK],
                    ),
                )
                .await
            {
                errors.push(format!("{e:#}"));
            }
        }
    }
    let stopped = daemon::stop(&layout.engine, Duration::from_secs(20));
    errors.extend(stopped);
    for pool in pools::pools() {
        for disk in pool.disks {
            let mount = layout.disk_mount(&pool, disk);
            errors.extend(crate::component::node_disk::unmount_all_under(&mount));
            let _ = std::fs::remove_dir(&mount);
            if let Err(e) = std::fs::remove_file(layout.disk_image(&pool, disk)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("removing {}: {e}", layout.disk_image(&pool, disk).display()));
                }
            }
        }
    }
    if errors.is_empty() {
        let _ = std::fs::remove_file(layout.state_file());
        let _ = std::fs::remove_file(layout.kubeconfig());
    }
    errors
}

/// Clusters whose owning process is gone (a killed run, a `cluster up` killed mid-way) are
/// taken down. Returns what was swept and the errors.
pub fn sweep_abandoned(home: &Path) -> (Vec<String>, Vec<String>) {
    let (mut swept, mut errors) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(home.join("kind-cluster")) else { return (swept, errors) };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let layout = ClusterLayout::new(home, &name);
        let Some(state) = layout.read_state() else { continue };
        let Owner::Process { pid, start } = state.owner else { continue };
        if pid == std::process::id() || crate::backend::local::sweep::is_running(pid, start) {
            continue;
        }
        let Some(pins) = crate::toolchain::Pins::load_default().ok().and_then(|p| p.kubernetes) else {
            errors.push(format!("cluster {name}: no Kubernetes pins to find its tools with"));
            continue;
        };
        let programs = match Programs::cached(home, &pins) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("cluster {name}: {e}"));
                continue;
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let errs = match rt {
            Ok(rt) => rt.block_on(down(home, &name, &programs, true)),
            Err(e) => vec![e.to_string()],
        };
        if errs.is_empty() {
            swept.push(format!("cluster {name} (its maker, pid {pid}, is gone)"));
        }
        errors.extend(errs);
    }
    (swept, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_is_pointed_at_the_control_plane() {
        let kc = "clusters:\n- cluster:\n    certificate-authority-data: X\n    server: https://127.0.0.1:38583\n  name: kind-hubchaos\n";
        let out = rewrite_server(kc, "https://cp:6443");
        assert!(out.contains("    server: https://cp:6443\n"), "{out}");
        assert!(!out.contains("127.0.0.1"), "{out}");
        assert_eq!(rewrite_server("server: https://example:1\n", "x"), "server: https://example:1\n");
    }

    #[test]
    fn coredns_keeps_the_cluster_zone_and_loses_its_upstream() {
        let corefile = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30 {\n       disable success cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n";
        let out = corefile_without_upstream(corefile);
        assert!(!out.contains("forward") && !out.contains("max_concurrent") && !out.contains("loop\n"), "{out}");
        for kept in ["kubernetes cluster.local", "ready", "cache 30 {", "disable success", "reload", "health {"] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
        assert_eq!(out.matches('{').count(), out.matches('}').count(), "{out}");
    }

    #[test]
    fn the_state_says_who_keeps_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let l = ClusterLayout::new(dir.path(), "hubchaos-t");
        assert_eq!(l.context(), "kind-hubchaos-t");
        assert!(l.read_state().is_none());
        let s = ClusterState {
            name: "hubchaos-t".into(),
            id: "x".into(),
            owner: Owner::Process { pid: 1, start: 2 },
            phase: "creating".into(),
            subnet: None,
            small_disk_mount: None,
            test_image: None,
        };
        l.write_state(&s).unwrap();
        assert_eq!(l.read_state(), Some(s));
        let text = std::fs::read_to_string(l.state_file()).unwrap();
        assert!(text.contains("\"process\""), "{text}");
    }

    /// The chart-PR workflow pulls kind's own node image; a pin bump must move it too.
    #[test]
    fn the_chart_pr_workflow_pulls_a_node_image_of_the_pinned_kubernetes_line() {
        let workflow = include_str!("../../../../.github/workflows/chart-pr.yml");
        let pins = crate::toolchain::Pins::load_default().expect("fixtures/pins.yaml").kubernetes.expect("kubernetes pins");
        let line = pins.kubernetes.rsplit_once('.').expect("vMAJOR.MINOR.PATCH").0;
        let image =
            workflow.lines().find_map(|l| l.trim().strip_prefix(&format!("{NODE_IMAGE_VAR}: "))).expect("the workflow sets the node image");
        assert!(image.starts_with(&format!("kindest/node:{line}.")), "{image} is not of the pinned {line} line ({})", pins.kubernetes);
        assert!(
            workflow.contains(&format!("pinned kind ({} in fixtures/pins.yaml)", pins.kind)),
            "the workflow names another kind than {}",
            pins.kind
        );
    }
}
