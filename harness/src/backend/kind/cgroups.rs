//! Resource sampler of the kind backend: every second, each pod of the run's namespace read
//! from its cgroup, under the component and metric names of the local process sampler
//! ([`crate::observe::procfs`]), so the same checks (`LeakSlope`, `ReturnsToBaseline::hub()`)
//! read either backend.
//!
//! ## Components
//!
//! A pod's `component` label names it (z2jh: `hub`, `proxy`, `autohttps`, `user-scheduler`…;
//! `app.kubernetes.io/component` when only that is set). KubeSpawner's pods
//! (`singleuser-server`) are `user/<name>` (`user/<name>/<server>` for a named server), from the
//! unescaped `hub.jupyter.org/username` and `…/servername` annotations; local has no component
//! per server (they are the hub's children there), so the name is new. A pod without a label
//! is `pod/<pod name>`. Pods of one component (a hub and its replacement during a rollout) are
//! summed, as the local sampler sums a process group.
//!
//! ## Metrics (per pod: its cgroup aggregates its containers and the pause process)
//!
//! | metric | read from |
//! |---|---|
//! | `rss_bytes` | `total_rss` of the pod's `memory.stat` (anonymous memory; see below) |
//! | `threads` | `pids.current` (the pids controller counts tasks: threads; pause's 1 included) |
//! | `cpu_seconds` | `cpuacct.usage` / 1e9 (cumulative; keeps the share of processes that exited, unlike local's) |
//! | `open_fds` | entries of `/proc/<pid>/fd`, summed over the processes in `cgroup.procs` of each container (pause's ~3 included) |
//! | `child_processes` | processes beyond one per container (the hub's culler, a shell's children) |
//! | `listening_ports` | the pod's sockets in LISTEN state in its network namespace (`/proc/<pid>/net/tcp{,6}`) |
//! | `working_set_bytes` | `memory.usage_in_bytes` − `total_inactive_file`: what the kubelet evicts by and `kubectl top` shows |
//! | `page_cache_bytes` | `total_cache` |
//!
//! ## Which memory, and why
//!
//! `rss_bytes` is `total_rss`, the pod's anonymous memory: measured here it equals the sum of
//! `RssAnon` of the pod's processes to within 40 kB (kube-proxy, coredns, etcd, the API server;
//! a busybox pod holding a 50 MiB `dd` buffer rose by 50 MiB + 32 kB). A process's RSS is
//! `RssAnon + RssFile + RssShmem`; the cgroup has no per-process file part, because a page of
//! the page cache is charged to the cgroup that first touched it (a pod's binary and libraries
//! may be charged to another pod, or to containerd that unpacked the image: kube-proxy's cgroup
//! shows `total_mapped_file` 0 while the process maps 34 MB of it). So `total_rss +
//! total_mapped_file` would not be a process RSS either, only a noisier anon. `memory.usage_in_bytes` adds the page
//! cache (the hub's sqlite database, logs, every file the pod read) and kernel memory, which grow
//! with no leak and shrink under pressure: kept as `working_set_bytes`/`page_cache_bytes` for
//! evictions and OOM, not for leaks. A leak of a Python or Node heap is anonymous memory: it shows
//! in `total_rss` byte for byte. (Not in it: `MAP_SHARED` anonymous memory and tmpfs, counted as
//! shmem in the cache.)
//!
//! ## Where the numbers are read, and why not elsewhere
//!
//! Each kind node is a container of the harness's own engine on this machine, with a private
//! cgroup namespace; inside it the kubelet (systemd driver, `cgroupRoot: /kubelet`, cgroup v1)
//! puts a pod at `<controller>/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-<qos>.slice/
//! kubelet-kubepods-<qos>-pod<uid with _>.slice` (guaranteed pods one level up; the cgroupfs
//! driver's `…/kubepods/<qos>/pod<uid>` is recognised too). The sampler reads those files from
//! the harness's side through `/proc/<node container's pid>/root/sys/fs/cgroup`: the node's own
//! mounts, so the same paths as `docker exec <node> ls /sys/fs/cgroup/…`, with no process
//! started. The pids in `cgroup.procs` then come out in the harness's pid namespace, so
//! `/proc/<pid>/fd` and `/proc/<pid>/net` are read directly too. The node's pid comes from one
//! `docker inspect` when the node is first seen (again only after a read fails: a node
//! restarted).
//!
//! Rejected, measured here: one `docker exec <node> sh` per node per round costs ~60 ms of CPU
//! (40 ms in dockerd, containerd and the shim, ~20 ms in the client): with three nodes at one
//! round a second that is a fifth of a core of a 2-core machine, against under a millisecond
//! for these reads. The kubelet's stats summary (`/api/v1/nodes/<node>/proxy/stats/summary`)
//! gives `rssBytes` (the same `total_rss`, via cAdvisor) and `workingSetBytes` and CPU, but
//! only as fresh as cAdvisor's housekeeping (a new value every ~13 s here), with no threads or
//! fds, and at the cost of an API-server proxy round trip and a kubelet building the whole
//! node's summary.
//!
//! ## Leak limits against cgroup memory
//!
//! The limits of `soak.rs` were measured on local process RSS. Against `total_rss`:
//! - Absolute levels differ: no file-mapped part (the hub: −26 MB of its 124 MB RSS; the
//!   proxy, a Node binary: −43 MB of 57 MB), but every process of the pod is in it: z2jh runs
//!   the idle culler inside the hub pod (+18 MB anon, measured on jupyterhub 6.1.1 with the
//!   culler 2.0.0: hub RssAnon 97.5 MB + culler 18.5 MB ≈ 116 MB for the hub pod, vs 124 MB
//!   hub RSS on local), plus tini and pause (~0.1 MB). Any limit on a level must be re-measured.
//! - Per-spawn slopes (`RSS_PER_SPAWN`) carry over for a heap leak (anonymous either way),
//!   but the culler's heap moves with its polls and adds noise to the hub's series: keep the
//!   warm-up, fit over more spawns, and re-measure the clean hub's slope on kind before
//!   tightening.
//! - Do not put leak limits on `working_set_bytes`: page cache (the sqlite file, logs) grows
//!   with every spawn without a leak, and is dropped whenever the node needs memory.
//! - Counts: `threads` and `open_fds` include pause and the culler; `child_processes` counts
//!   the culler (and jupyterhub itself under a `tini` entrypoint, as z2jh's hub image has).
//!   Returns-to-baseline checks compare with the run's own baseline, so the offsets cancel.
//!
//! ## Cost
//!
//! A round lists the namespace's pods only every [`POD_REFRESH`] (sooner when a node shows a
//! pod cgroup not seen before), walks each node's kubelet directories, and reads five small
//! files per pod and each of its processes' fd directory; a pod's TCP tables (a walk of the
//! machine's whole established hash, ~0.4 ms each) only when it holds a socket not seen before,
//! as on local (`procfs::ListenCache`). Measured on the debug build the harness runs: the first
//! round 25–80 ms (a `docker inspect` per node, the listing), then ~0.3 ms of CPU per pod:
//! 1.3 ms for one pod, 3–7 ms for the 14 pods of `kube-system` over five nodes, i.e. under 1 %
//! of a core at one round a second. Its CPU on its blocking thread is `sampler_cpu_seconds` of component
//! `harness`, as on local.

use anyhow::Context;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use super::cluster;
use super::kube::KindCluster;
use crate::observe::history::Recorder;
use crate::observe::procfs::{
    self, ListenCache, CHILD_PROCESSES, CPU_SECONDS, HARNESS, LISTENING_PORTS, OPEN_FDS, RSS_BYTES, SAMPLER_CPU_SECONDS, THREADS,
};
use crate::observe::samples::{Sample, SampleSink};

/// The pod's memory in use, page cache included, less its inactive file pages (bytes).
pub const WORKING_SET_BYTES: &str = "working_set_bytes";
/// The pod's page cache (`total_cache`, bytes).
pub const PAGE_CACHE_BYTES: &str = "page_cache_bytes";
/// How long a listing of the namespace's pods is reused.
pub const POD_REFRESH: Duration = Duration::from_secs(5);
/// How long after a failed `docker inspect` of a node it is asked again.
const INSPECT_RETRY: Duration = Duration::from_secs(5);
/// How long `docker inspect` may take.
const INSPECT_WITHIN: Duration = Duration::from_secs(10);
/// The deepest a pod's memory cgroup sits under the node's `memory` directory.
const POD_DIR_DEPTH: usize = 4;

/// A pod as the sampler follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub uid: String,
    pub node: String,
    pub component: String,
}

impl PodRef {
    /// A pod that is scheduled and has not ended (`None` otherwise).
    pub fn of(pod: &Pod) -> Option<Self> {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        let meta = &pod.metadata;
        let name = meta.name.clone()?;
        let empty = BTreeMap::new();
        let component = component_of(&name, meta.labels.as_ref().unwrap_or(&empty), meta.annotations.as_ref().unwrap_or(&empty));
        Some(Self { uid: meta.uid.clone()?, node: pod.spec.as_ref()?.node_name.clone()?, name, component })
    }
}

/// The component a pod is sampled as (see the module doc).
pub fn component_of(pod_name: &str, labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>) -> String {
    let label = labels.get("component").or_else(|| labels.get("app.kubernetes.io/component"));
    match label.map(String::as_str) {
        Some("singleuser-server") => {
            let key = "hub.jupyter.org/username";
            let user = annotations.get(key).or_else(|| labels.get(key)).map_or(pod_name, String::as_str);
            match annotations.get("hub.jupyter.org/servername").filter(|s| !s.is_empty()) {
                Some(server) => format!("user/{user}/{server}"),
                None => format!("user/{user}"),
            }
        }
        Some(c) if !c.is_empty() => c.to_string(),
        _ => format!("pod/{pod_name}"),
    }
}

/// The pod uid a cgroup directory belongs to: `kubelet-kubepods-burstable-pod<uid, _ for ->.slice`
/// (systemd driver) or `pod<uid>` (cgroupfs driver); `None` for any other directory.
pub fn pod_uid_of_dir(name: &str) -> Option<String> {
    let uid = match name.strip_suffix(".slice") {
        Some(unit) => unit.rsplit_once("-pod")?.1.replace('_', "-"),
        None => name.strip_prefix("pod")?.to_string(),
    };
    let ok = !uid.is_empty() && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then_some(uid)
}

/// The fields of a cgroup v1 `memory.stat` the sampler uses (the hierarchical `total_*`:
/// the pod's containers are child cgroups of the pod's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStat {
    pub total_rss: u64,
    pub total_cache: u64,
    pub total_inactive_file: u64,
}

/// `memory.stat` as the kernel writes it (`<key> <value>` lines); `None` without `total_rss`.
pub fn parse_memory_stat(text: &str) -> Option<MemoryStat> {
    let mut stat = MemoryStat::default();
    let mut rss = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        let Ok(value) = value.trim().parse::<u64>() else { continue };
        match key {
            "total_rss" => rss = Some(value),
            "total_cache" => stat.total_cache = value,
            "total_inactive_file" => stat.total_inactive_file = value,
            _ => {}
        }
    }
    stat.total_rss = rss?;
    Some(stat)
}

/// The texts of one pod cgroup's files, as read.
#[derive(Debug, Clone, Copy)]
pub struct PodFiles<'a> {
    /// `memory/<pod>/memory.stat`
    pub memory_stat: &'a str,
    /// `memory/<pod>/memory.usage_in_bytes`
    pub memory_usage: &'a str,
    /// `pids/<pod>/pids.current`
    pub pids_current: &'a str,
    /// `cpuacct/<pod>/cpuacct.usage` (ns)
    pub cpuacct_usage: &'a str,
}

/// One pod's (or a component's summed) resources at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodUsage {
    pub rss_bytes: u64,
    pub working_set_bytes: u64,
    pub page_cache_bytes: u64,
    pub threads: u64,
    pub cpu_seconds: f64,
    pub child_processes: u64,
    /// `None` when no process's fd directory could be read.
    pub open_fds: Option<u64>,
    /// `None` when no process's fd directory could be read.
    pub listening_ports: Option<u64>,
}

/// A pod's usage from its cgroup files (pure): `None` when one is missing its number. Process
/// counts come from [`PodUsage::with_processes`].
pub fn parse_pod(files: &PodFiles) -> Option<PodUsage> {
    let stat = parse_memory_stat(files.memory_stat)?;
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let usage = number(files.memory_usage)?;
    Some(PodUsage {
        rss_bytes: stat.total_rss,
        working_set_bytes: usage.saturating_sub(stat.total_inactive_file),
        page_cache_bytes: stat.total_cache,
        threads: number(files.pids_current)?,
        cpu_seconds: number(files.cpuacct_usage)? as f64 / 1e9,
        ..PodUsage::default()
    })
}

/// Processes beyond the first of each container (`per_container`: how many processes each
/// container's `cgroup.procs` lists).
pub fn child_processes(per_container: &[usize]) -> u64 {
    per_container.iter().map(|&n| n.saturating_sub(1) as u64).sum()
}

impl PodUsage {
    /// With the counts read from the pod's processes.
    pub fn with_processes(mut self, per_container: &[usize], fds: Option<(u64, u64)>) -> Self {
        self.child_processes = child_processes(per_container);
        self.open_fds = fds.map(|(n, _)| n);
        self.listening_ports = fds.map(|(_, l)| l);
        self
    }

    /// The sum of two usages (two pods of one component); a count unknown in either is unknown.
    pub fn add(&self, other: &PodUsage) -> PodUsage {
        let both = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        PodUsage {
            rss_bytes: self.rss_bytes + other.rss_bytes,
            working_set_bytes: self.working_set_bytes + other.working_set_bytes,
            page_cache_bytes: self.page_cache_bytes + other.page_cache_bytes,
            threads: self.threads + other.threads,
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
            child_processes: self.child_processes + other.child_processes,
            open_fds: both(self.open_fds, other.open_fds),
            listening_ports: both(self.listening_ports, other.listening_ports),
        }
    }

    /// Its samples, stamped `at`: the local sampler's six metrics (fewer when fds were not
    /// readable) and the two of the page cache.
    pub fn samples(&self, component: &str, at: Duration) -> Vec<Sample> {
        let mut values = vec![
            (RSS_BYTES, self.rss_bytes as f64),
            (THREADS, self.threads as f64),
            (CHILD_PROCESSES, self.child_processes as f64),
            (CPU_SECONDS, self.cpu_seconds),
            (WORKING_SET_BYTES, self.working_set_bytes as f64),
            (PAGE_CACHE_BYTES, self.page_cache_bytes as f64),
        ];
        if let Some(n) = self.open_fds {
            values.push((OPEN_FDS, n as f64));
        }
        if let Some(n) = self.listening_ports {
            values.push((LISTENING_PORTS, n as f64));
        }
        values.into_iter().map(|(metric, value)| sample(component, metric, at, value)).collect()
    }
}

fn sample(component: &str, metric: &str, at: Duration, value: f64) -> Sample {
    Sample { at, component: component.into(), metric: metric.into(), labels: BTreeMap::new(), value }
}

/// Usage per component: the pods' usages summed by component.
pub fn by_component(pods: &[(PodRef, PodUsage)]) -> BTreeMap<String, PodUsage> {
    let mut out: BTreeMap<String, PodUsage> = BTreeMap::new();
    for (pod, usage) in pods {
        let sum = out.get(&pod.component).map_or_else(|| usage.clone(), |u| u.add(usage));
        out.insert(pod.component.clone(), sum);
    }
    out
}

/// The `pid` of `docker inspect -f '{{.State.Pid}}'` (`None` for a stopped container's 0).
pub fn parse_inspect_pid(out: &str) -> Option<u32> {
    out.trim().parse::<u32>().ok().filter(|&p| p > 0)
}

/// How the harness asks its engine where a node container runs (`docker inspect`).
#[derive(Debug, Clone)]
pub struct NodeEngine {
    /// The `docker` client.
    pub docker: PathBuf,
    /// The engine's `DOCKER_HOST`.
    pub docker_host: String,
    /// Where the command's failures are logged (the cluster's log).
    pub log: PathBuf,
}

impl NodeEngine {
    /// The node container's main process, in the harness's pid namespace (blocking).
    pub fn node_pid(&self, node: &str) -> anyhow::Result<u32> {
        let mut cmd = std::process::Command::new(&self.docker);
        cmd.env("DOCKER_HOST", &self.docker_host).args(["inspect", "-f", "{{.State.Pid}}", node]);
        let out = cluster::run_bounded(cmd, &format!("docker inspect {node}"), INSPECT_WITHIN, &self.log)?;
        parse_inspect_pid(&out).ok_or_else(|| anyhow::anyhow!("node container {node} is not running (pid `{}`)", out.trim()))
    }
}

/// The node's cgroup tree as the node sees it, from the harness's side.
fn cgroup_root(node_pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{node_pid}/root/sys/fs/cgroup"))
}

/// Every pod cgroup under the node's `memory` controller: uid → path relative to the
/// controller. Walks only the kubelet's directories (names starting with `kube`), down to
/// [`POD_DIR_DEPTH`]. An error when the tree is not there (the node is gone).
fn pod_dirs(root: &Path) -> std::io::Result<HashMap<String, PathBuf>> {
    let memory = root.join("memory");
    let mut out = HashMap::new();
    let mut level = vec![PathBuf::new()];
    for depth in 0..POD_DIR_DEPTH {
        let mut next = Vec::new();
        for rel in level {
            let entries = match std::fs::read_dir(memory.join(&rel)) {
                Ok(e) => e,
                Err(e) if depth == 0 => return Err(e),
                Err(_) => continue,
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if let Some(uid) = pod_uid_of_dir(name) {
                    out.insert(uid, rel.join(name));
                } else if name.starts_with("kube") {
                    next.push(rel.join(name));
                }
            }
        }
        level = next;
    }
    Ok(out)
}

/// How long a freeze or a thaw may take to be reported done by the kernel.
const FREEZE_WITHIN: Duration = Duration::from_secs(10);

/// Freeze (`frozen`) or thaw pod `pod_uid`'s cgroup on node container `node`, through the
/// node's `freezer` hierarchy (cgroup v1; the kubelet's pod directory has the same path under
/// every controller): every process of the pod stops where it is, as a SIGSTOP of each would,
/// and the kubelet sees nothing happen (the container did not exit). Done when
/// `freezer.state` reads the state asked for (bounded).
pub async fn set_frozen(engine: &NodeEngine, node: &str, pod_uid: &str, frozen: bool) -> anyhow::Result<()> {
    let (engine, node, uid) = (engine.clone(), node.to_string(), pod_uid.to_string());
    tokio::task::spawn_blocking(move || {
        let root = cgroup_root(engine.node_pid(&node)?);
        let dirs = pod_dirs(&root).with_context(|| format!("reading the pod cgroups of {node}"))?;
        let rel = dirs.get(&uid).with_context(|| format!("no cgroup of pod {uid} on {node}"))?;
        let state = root.join("freezer").join(rel).join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        std::fs::write(&state, want).with_context(|| format!("writing {want} to {}", state.display()))?;
        let started = std::time::Instant::now();
        loop {
            let now = std::fs::read_to_string(&state).with_context(|| format!("reading {}", state.display()))?;
            if now.trim() == want {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < FREEZE_WITHIN,
                "pod {uid} on {node}: freezer.state still {} after {FREEZE_WITHIN:?}",
                now.trim()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await?
}

/// One pod, read (blocking): `None` when its cgroup is gone or unreadable mid-read. `listen`
/// remembers which of the pod's sockets listen.
fn read_pod(root: &Path, rel: &Path, listen: &mut ListenCache) -> Option<PodUsage> {
    let read = |controller: &str, file: &str| std::fs::read_to_string(root.join(controller).join(rel).join(file)).ok();
    let (stat, usage) = (read("memory", "memory.stat")?, read("memory", "memory.usage_in_bytes")?);
    let (pids, cpu) = (read("pids", "pids.current")?, read("cpuacct", "cpuacct.usage")?);
    let usage = parse_pod(&PodFiles { memory_stat: &stat, memory_usage: &usage, pids_current: &pids, cpuacct_usage: &cpu })?;
    // Each container is a child cgroup of the pod's, its processes in its `cgroup.procs`.
    let mut per_container = Vec::new();
    let mut pids = Vec::new();
    for e in std::fs::read_dir(root.join("memory").join(rel)).ok()?.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) else { continue };
        let before = pids.len();
        pids.extend(procs.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        per_container.push(pids.len() - before);
    }
    Some(usage.with_processes(&per_container, process_counts(&pids, listen)))
}

/// Open fds of `pids`, summed, and how many of their sockets listen in the pod's network
/// namespace: `None` when no process's fds could be read.
fn process_counts(pids: &[u32], listen: &mut ListenCache) -> Option<(u64, u64)> {
    let mut fds = None;
    let mut sockets = HashSet::new();
    for &pid in pids {
        let Ok(p) = ::procfs::process::Process::new(pid as i32) else { continue };
        let Some((n, socks)) = procfs::fds_of(&p) else { continue };
        fds = Some(fds.unwrap_or(0) + n);
        sockets.extend(socks);
    }
    let fds = fds?;
    if sockets.is_empty() {
        return Some((fds, 0));
    }
    // The containers of a pod share one network namespace (a hostNetwork pod: the node's);
    // only the pod's own sockets are counted either way.
    let net = pids.iter().map(|p| PathBuf::from(format!("/proc/{p}/net"))).find(|n| n.exists())?;
    Some((fds, listen.count_in(&sockets, &net)))
}

/// What one node gave in one round.
#[derive(Debug, Default)]
struct NodeRead {
    /// uid → usage, for the pods asked for that were found.
    usage: HashMap<String, PodUsage>,
    /// Every pod uid with a cgroup on the node.
    present: HashSet<String>,
}

/// Reads `uids` on the node whose main process is `node_pid` (blocking), with each pod's
/// cache of listening sockets from `listen`.
fn read_node(node_pid: u32, uids: &[&str], listen: &mut HashMap<String, ListenCache>) -> std::io::Result<NodeRead> {
    let root = cgroup_root(node_pid);
    let dirs = pod_dirs(&root)?;
    let usage = uids
        .iter()
        .filter_map(|uid| Some((uid.to_string(), read_pod(&root, dirs.get(*uid)?, listen.entry(uid.to_string()).or_default())?)))
        .collect();
    Ok(NodeRead { usage, present: dirs.into_keys().collect() })
}

/// What the blocking side of the sampler keeps between rounds: where each node runs, and
/// which of each pod's sockets listen.
#[derive(Debug, Default)]
struct NodeReader {
    /// node → its container's main process.
    node_pids: HashMap<String, u32>,
    /// node → when asking the engine for it last failed (a stopped node).
    inspect_failed: HashMap<String, Instant>,
    /// pod uid → which of its sockets listen (reading a pod's TCP tables walks the machine's
    /// whole established hash, ~0.4 ms: not every second).
    listen: HashMap<String, ListenCache>,
}

impl NodeReader {
    /// Every node's pods of `by_node` (blocking): the usages found, and every pod uid that has
    /// a cgroup on those nodes.
    fn read(&mut self, engine: &NodeEngine, by_node: &BTreeMap<String, Vec<PodRef>>) -> (Vec<(PodRef, PodUsage)>, HashSet<String>) {
        let mut found = Vec::new();
        let mut present = HashSet::new();
        for (node, pods) in by_node {
            let Some(pid) = self.node_pid(engine, node) else { continue };
            let uids: Vec<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
            match read_node(pid, &uids, &mut self.listen) {
                Ok(read) => {
                    present.extend(read.present);
                    found.extend(pods.iter().filter_map(|p| Some((p.clone(), read.usage.get(&p.uid)?.clone()))));
                }
                // The node's process is gone (a restarted node): ask the engine again.
                Err(_) => {
                    self.node_pids.remove(node);
                }
            }
        }
        (found, present)
    }

    /// The node's pid: remembered, or asked of the engine (not again within
    /// [`INSPECT_RETRY`] of a failure).
    fn node_pid(&mut self, engine: &NodeEngine, node: &str) -> Option<u32> {
        if let Some(&pid) = self.node_pids.get(node) {
            return Some(pid);
        }
        if self.inspect_failed.get(node).is_some_and(|t| t.elapsed() < INSPECT_RETRY) {
            return None;
        }
        match engine.node_pid(node) {
            Ok(pid) => {
                self.inspect_failed.remove(node);
                self.node_pids.insert(node.to_string(), pid);
                Some(pid)
            }
            Err(e) => {
                tracing::debug!("{e:#}");
                self.inspect_failed.insert(node.to_string(), Instant::now());
                None
            }
        }
    }
}

/// What the sampler keeps between rounds.
#[derive(Debug, Default)]
pub struct SamplerState {
    pods: Vec<PodRef>,
    listed: Option<Instant>,
    /// Pod uids seen on the nodes that are not the run's (kube-proxy, kindnet…): a uid in
    /// neither set is a new pod, and the next round lists the pods again.
    foreign: HashSet<String>,
    reader: NodeReader,
    /// CPU time spent in the rounds' reads, cumulative (s).
    pub own_cpu: f64,
}

/// The pod-cgroup sampler of one kind run.
#[derive(Clone)]
pub struct CgroupSampler {
    pub kube: KindCluster,
    pub namespace: String,
    pub engine: NodeEngine,
    pub recorder: Recorder,
    pub samples: SampleSink,
}

impl CgroupSampler {
    /// Sample every `every` until `stop`. A round that fails (the API server busy, a node
    /// gone) is logged when its error changes and gives no samples: a gap in the curves.
    pub async fn run(self, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut state = SamplerState::default();
        let mut last_error = String::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let at = self.recorder.now();
            match self.round(&mut state, at).await {
                Ok(batch) => {
                    last_error.clear();
                    self.samples.push_batch(batch);
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    if e != last_error {
                        tracing::warn!("cgroup sampler of {}: {e}", self.namespace);
                        last_error = e;
                    }
                }
            }
        }
    }

    /// One round: the samples of every component of the run's pods, and the sampler's own
    /// cumulative CPU (component `harness`), stamped `at`.
    pub async fn round(&self, state: &mut SamplerState, at: Duration) -> anyhow::Result<Vec<Sample>> {
        let fresh = state.listed.is_none_or(|t| t.elapsed() >= POD_REFRESH);
        if fresh {
            self.list(state).await?;
        }
        let pods = self.read(state, fresh).await?;
        let mut batch: Vec<Sample> = by_component(&pods).iter().flat_map(|(c, u)| u.samples(c, at)).collect();
        batch.push(sample(HARNESS, SAMPLER_CPU_SECONDS, at, state.own_cpu));
        Ok(batch)
    }

    async fn list(&self, state: &mut SamplerState) -> anyhow::Result<()> {
        let listed = self.kube.list_pods(&self.namespace, "").await?;
        state.pods = listed.iter().filter_map(PodRef::of).collect();
        let followed: HashSet<&str> = state.pods.iter().map(|p| p.uid.as_str()).collect();
        state.reader.listen.retain(|uid, _| followed.contains(uid.as_str()));
        let ours: HashSet<&str> = listed.iter().filter_map(|p| p.metadata.uid.as_deref()).collect();
        state.foreign.retain(|uid| !ours.contains(uid.as_str()));
        state.listed = Some(Instant::now());
        Ok(())
    }

    /// Reads every node of the run's pods (on a blocking thread, its CPU added to
    /// `state.own_cpu`): the usages found. A pod on a node that is in neither the last listing
    /// nor the foreign pods is new when the listing is older than this round (`fresh`: listed
    /// just now, so it is someone else's): the next round lists again, to sample it from then.
    async fn read(&self, state: &mut SamplerState, fresh: bool) -> anyhow::Result<Vec<(PodRef, PodUsage)>> {
        let mut by_node: BTreeMap<String, Vec<PodRef>> = BTreeMap::new();
        for p in &state.pods {
            by_node.entry(p.node.clone()).or_default().push(p.clone());
        }
        let engine = self.engine.clone();
        let mut reader = std::mem::take(&mut state.reader);
        let (reader, (found, present), spent) = tokio::task::spawn_blocking(move || {
            let before = procfs::thread_cpu_seconds();
            let read = reader.read(&engine, &by_node);
            let spent = match (before, procfs::thread_cpu_seconds()) {
                (Some(b), Some(a)) => (a - b).max(0.0),
                _ => 0.0,
            };
            (reader, read, spent)
        })
        .await?;
        state.reader = reader;
        state.own_cpu += spent;
        let ours: HashSet<&str> = state.pods.iter().map(|p| p.uid.as_str()).collect();
        let unknown: Vec<String> = present.into_iter().filter(|u| !ours.contains(u.as_str()) && !state.foreign.contains(u)).collect();
        if !unknown.is_empty() && !fresh {
            state.listed = None;
        }
        // Until a listing says otherwise, these are someone else's.
        state.foreign.extend(unknown);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Toleration;

    /// `memory.stat` of a busybox pod's cgroup on a kind worker, captured while its `dd`
    /// held a 50 MiB buffer (`total_rss` was 159744 before).
    const MEMORY_STAT: &str = "cache 0\nrss 0\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\n\
        workingset_refault_anon 0\nworkingset_refault_file 0\nswap 0\nswapcached 0\npgpgin 0\npgpgout 0\npgfault 0\n\
        pgmajfault 0\ninactive_anon 0\nactive_anon 0\ninactive_file 0\nactive_file 0\nunevictable 0\n\
        hierarchical_memory_limit 25276502016\nhierarchical_memsw_limit 9223372036854771712\ntotal_cache 221184\n\
        total_rss 52621312\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 0\ntotal_dirty 4096\ntotal_writeback 0\n\
        total_workingset_refault_anon 0\ntotal_workingset_refault_file 40\ntotal_swap 0\ntotal_swapcached 0\n\
        total_pgpgin 14553\ntotal_pgpgout 1652\ntotal_pgfault 15444\ntotal_pgmajfault 4\ntotal_inactive_anon 52609024\n\
        total_active_anon 12288\ntotal_inactive_file 16384\ntotal_active_file 204800\ntotal_unevictable 0\n";

    /// The pod's directory as the kubelet (systemd driver, `cgroupRoot: /kubelet`) named it.
    const POD_DIR: &str = "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/\
        kubelet-kubepods-besteffort-pod8532647a_bc7d_4ec2_8205_8bfea01dfd20.slice";
    const UID: &str = "8532647a-bc7d-4ec2-8205-8bfea01dfd20";

    #[test]
    fn pod_directories_give_their_uid_and_others_none() {
        let last = POD_DIR.rsplit('/').next().unwrap();
        assert_eq!(pod_uid_of_dir(last).as_deref(), Some(UID));
        assert_eq!(pod_uid_of_dir("kubelet-kubepods-pod0a1b_2c.slice").as_deref(), Some("0a1b-2c"), "a guaranteed pod");
        assert_eq!(pod_uid_of_dir(&format!("pod{UID}")).as_deref(), Some(UID), "the cgroupfs driver");
        assert_eq!(
            pod_uid_of_dir("kubelet-kubepods-burstable-pod29f20219112fc3c24df8878520d0d96c.slice").as_deref(),
            Some("29f20219112fc3c24df8878520d0d96c"),
            "a static pod's config hash"
        );
        for other in [
            "kubelet.slice",
            "kubelet-kubepods.slice",
            "kubelet-kubepods-besteffort.slice",
            "kubepods",
            "burstable",
            "pod",
            "cri-containerd-53dc.scope",
            "podman.slice",
            "kubelet-kubepods-pod.slice",
        ] {
            assert_eq!(pod_uid_of_dir(other), None, "{other}");
        }
    }

    #[test]
    fn a_captured_pod_cgroup_parses() {
        let stat = parse_memory_stat(MEMORY_STAT).unwrap();
        assert_eq!(stat, MemoryStat { total_rss: 52_621_312, total_cache: 221_184, total_inactive_file: 16_384 });
        let files = PodFiles { memory_stat: MEMORY_STAT, memory_usage: "53538816\n", pids_current: "4\n", cpuacct_usage: "86173883\n" };
        let usage = parse_pod(&files).unwrap();
        assert_eq!(usage.rss_bytes, 52_621_312);
        assert_eq!(usage.working_set_bytes, 53_538_816 - 16_384);
        assert_eq!(usage.page_cache_bytes, 221_184);
        assert_eq!(usage.threads, 4);
        assert!((usage.cpu_seconds - 0.086_173_883).abs() < 1e-12);
        assert_eq!((usage.open_fds, usage.listening_ports), (None, None));
        assert_eq!(parse_memory_stat("cache 0\nrss 0\n"), None, "a v1 memory.stat always has total_rss");
        assert!(parse_pod(&PodFiles { pids_current: "max\n", ..files }).is_none());
    }

    #[test]
    fn pods_are_named_as_their_components() {
        let map = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        let none = BTreeMap::new();
        assert_eq!(component_of("hub-5d8f-x", &map(&[("app", "jupyterhub"), ("component", "hub")]), &none), "hub");
        assert_eq!(component_of("proxy-1", &map(&[("component", "proxy")]), &none), "proxy");
        assert_eq!(component_of("sched", &map(&[("app.kubernetes.io/component", "user-scheduler")]), &none), "user-scheduler");
        let user = map(&[("component", "singleuser-server"), ("hub.jupyter.org/username", "a-2eb")]);
        assert_eq!(component_of("jupyter-a-2eb", &user, &map(&[("hub.jupyter.org/username", "a.b")])), "user/a.b");
        assert_eq!(component_of("jupyter-a-2eb", &user, &none), "user/a-2eb", "the escaped label without the annotation");
        let named = map(&[("hub.jupyter.org/username", "a"), ("hub.jupyter.org/servername", "gpu")]);
        assert_eq!(component_of("jupyter-a--gpu", &user, &named), "user/a/gpu");
        assert_eq!(component_of("fill-disk", &none, &none), "pod/fill-disk");
    }

    fn pod_ref(uid: &str, component: &str) -> PodRef {
        PodRef { name: uid.into(), uid: uid.into(), node: "w".into(), component: component.into() }
    }

    #[test]
    fn pods_of_one_component_are_summed_and_give_the_local_metric_names() {
        let a = PodUsage { rss_bytes: 10, threads: 2, cpu_seconds: 1.5, open_fds: Some(7), listening_ports: Some(1), ..Default::default() };
        let b = PodUsage { rss_bytes: 5, threads: 1, cpu_seconds: 0.5, open_fds: Some(3), listening_ports: Some(0), ..Default::default() };
        let c = PodUsage { rss_bytes: 1, open_fds: None, ..Default::default() };
        let sums = by_component(&[(pod_ref("1", "hub"), a), (pod_ref("2", "hub"), b), (pod_ref("3", "proxy"), c)]);
        let hub = &sums["hub"];
        assert_eq!((hub.rss_bytes, hub.threads, hub.cpu_seconds, hub.open_fds, hub.listening_ports), (15, 3, 2.0, Some(10), Some(1)));
        let names: Vec<String> = hub.samples("hub", Duration::ZERO).into_iter().map(|s| s.metric).collect();
        assert_eq!(
            names,
            [RSS_BYTES, THREADS, CHILD_PROCESSES, CPU_SECONDS, WORKING_SET_BYTES, PAGE_CACHE_BYTES, OPEN_FDS, LISTENING_PORTS]
        );
        let proxy: Vec<String> = sums["proxy"].samples("proxy", Duration::ZERO).into_iter().map(|s| s.metric).collect();
        assert!(!proxy.iter().any(|m| m == OPEN_FDS || m == LISTENING_PORTS), "unreadable fds give no samples, not zeros: {proxy:?}");
        let unknown = sums["hub"].add(&sums["proxy"]);
        assert_eq!(unknown.open_fds, None);
    }

    #[test]
    fn children_are_processes_beyond_one_per_container_and_inspect_gives_a_pid() {
        assert_eq!(child_processes(&[1, 3, 0]), 2, "pause; a hub with its culler and a helper; an exited container");
        assert_eq!(parse_inspect_pid("14303\n"), Some(14303));
        assert_eq!(parse_inspect_pid("0\n"), None, "a stopped container");
        assert_eq!(parse_inspect_pid(""), None);
    }

    /// A node's cgroup tree in a temp dir, laid out as the kubelet lays it, with one pod whose
    /// containers hold this test process: the walk finds it and its processes are read.
    #[test]
    fn a_pod_is_found_and_read_in_a_node_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let me = std::process::id();
        let mut children: Vec<_> = (0..2).map(|_| std::process::Command::new("sleep").arg("30").spawn().unwrap()).collect();
        let write = |controller: &str, file: &str, text: &str| {
            let p = root.join(controller).join(POD_DIR).join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("memory", "memory.stat", MEMORY_STAT);
        write("memory", "memory.usage_in_bytes", "53538816\n");
        write("memory", "cri-containerd-pause.scope/cgroup.procs", &format!("{}\n", children[0].id()));
        write("memory", "cri-containerd-main.scope/cgroup.procs", &format!("{me}\n{}\n", children[1].id()));
        write("pids", "pids.current", "4\n");
        write("cpuacct", "cpuacct.usage", "86173883\n");
        // Someone else's pod, and a directory that is not the kubelet's.
        std::fs::create_dir_all(root.join("memory/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod0a0b.slice")).unwrap();
        std::fs::create_dir_all(root.join("memory/system.slice/pod0c0d")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();

        let dirs = pod_dirs(root).unwrap();
        assert_eq!(dirs.keys().collect::<std::collections::BTreeSet<_>>(), [&"0a0b".to_string(), &UID.to_string()].into());
        let usage = read_pod(root, &dirs[UID], &mut ListenCache::default()).unwrap();
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop(listener);
        assert_eq!(usage.rss_bytes, 52_621_312);
        assert_eq!(usage.child_processes, 1, "one container lists two processes");
        assert!(usage.open_fds.unwrap() >= 3 * 3, "{usage:?}");
        assert!(usage.listening_ports.unwrap() >= 1, "this process's listener: {usage:?}");
        assert!(pod_dirs(&root.join("gone")).is_err(), "a node that is gone is an error, not an empty node");
    }

    /// The harness's cluster, a namespace of the test's own (deleted at the end whatever
    /// happened), and the engine's `docker`.
    async fn live_cluster() -> anyhow::Result<(KindCluster, NodeEngine, String)> {
        let home = crate::paths::hubchaos_home();
        let layout = cluster::ClusterLayout::new(&home, cluster::DEFAULT_NAME);
        let image =
            layout.read_state().and_then(|s| s.test_image).context("no cluster state naming a test image: `hubchaos cluster up`")?;
        let pins = crate::toolchain::Pins::load_default()?.kubernetes.context("the pins name no Kubernetes versions")?;
        let programs = cluster::Programs::cached(&home, &pins).map_err(anyhow::Error::msg)?;
        let kube = KindCluster::connect(&layout.kubeconfig(), &layout.context()).await?;
        let engine = NodeEngine { docker: programs.docker.clone(), docker_host: layout.engine.docker_host(), log: layout.log() };
        Ok((kube, engine, image))
    }

    use anyhow::Context;

    /// A pod that starts a listening httpd (a second process), waits, then holds a 50 MiB
    /// buffer: `dd` reads /dev/zero into it and blocks writing to a pipe nobody reads.
    async fn fifty_mib_pod(kube: &KindCluster, ns: &str, image: &str) -> anyhow::Result<()> {
        let script = "httpd -p 8080 -h /; sleep 20; dd if=/dev/zero bs=50M count=1 | sleep 600";
        let labels = BTreeMap::from([("component".to_string(), "singleuser-server".to_string())]);
        let mut pod = super::super::kube::pod_spec("mem", image, &["sh", "-c", script], &BTreeMap::new(), &[] as &[Toleration], &labels);
        pod.metadata.annotations = Some(BTreeMap::from([("hub.jupyter.org/username".to_string(), "alice".to_string())]));
        kube.create_pod(ns, &pod).await?;
        kube.wait_pod(ns, "mem", ::kube::runtime::conditions::is_pod_running(), Duration::from_secs(60)).await?;
        Ok(())
    }

    async fn live_body(kube: &KindCluster, engine: &NodeEngine, ns: &str, image: &str) -> anyhow::Result<()> {
        fifty_mib_pod(kube, ns, image).await?;
        let started = Instant::now();
        let sampler = CgroupSampler {
            kube: kube.clone(),
            namespace: ns.to_string(),
            engine: engine.clone(),
            recorder: Recorder::in_memory(started),
            samples: SampleSink::default(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(sampler.clone().run(Duration::from_secs(1), stop.clone()));
        let series = |metric: &str| -> Vec<f64> {
            sampler.samples.all().into_iter().filter(|s| s.component == "user/alice" && s.metric == metric).map(|s| s.value).collect()
        };
        // Until the buffer is held (the pod sleeps 20 s first), and a few seconds more.
        let mut held_since = None;
        while started.elapsed() < Duration::from_secs(50) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = series(RSS_BYTES);
            if rss.len() >= 2 && rss.last().unwrap() - rss[0] > 50.0 * 1048576.0 * 0.9 {
                held_since.get_or_insert_with(Instant::now);
            }
            if held_since.is_some_and(|t| t.elapsed() >= Duration::from_secs(3)) {
                break;
            }
        }
        // A pod created while the sampler runs, on a node it reads, is sampled from its first
        // seconds, not at the next listing (its cgroup on the node is the sign).
        let node = kube.get_pod(ns, "mem").await?.spec.and_then(|s| s.node_name).context("pod mem has no node")?;
        let on_node = BTreeMap::from([("kubernetes.io/hostname".to_string(), node)]);
        let late = super::super::kube::pod_spec("late", image, &["sleep", "600"], &on_node, &[], &BTreeMap::new());
        kube.create_pod(ns, &late).await?;
        kube.wait_pod(ns, "late", ::kube::runtime::conditions::is_pod_running(), Duration::from_secs(60)).await?;
        let running = Instant::now();
        let seen = |c: &str| sampler.samples.all().iter().any(|s| s.component == c && s.metric == RSS_BYTES);
        while !seen("pod/late") && running.elapsed() < POD_REFRESH * 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let late_after = running.elapsed();
        stop.cancel();
        task.await?;
        eprintln!("pod/late: first sample {:.1} s after it was Running", late_after.as_secs_f64());
        anyhow::ensure!(seen("pod/late") && late_after < Duration::from_secs(3), "pod/late sampled {late_after:?} after Running");
        let (rss, threads, cpu) = (series(RSS_BYTES), series(THREADS), series(CPU_SECONDS));
        let (fds, children, ports) = (series(OPEN_FDS), series(CHILD_PROCESSES), series(LISTENING_PORTS));
        let rise = rss.last().copied().unwrap_or(0.0) - rss.first().copied().unwrap_or(0.0);
        eprintln!(
            "user/alice: {} rounds; rss {:.2} MiB -> {:.2} MiB (rise {:.3} MiB); threads {:?}; cpu {:.3} -> {:.3} s; fds {:?}; children {:?}; listening {:?}",
            rss.len(),
            rss.first().unwrap_or(&0.0) / 1048576.0,
            rss.last().unwrap_or(&0.0) / 1048576.0,
            rise / 1048576.0,
            threads.last(),
            cpu.first().unwrap_or(&0.0),
            cpu.last().unwrap_or(&0.0),
            fds.last(),
            children.last(),
            ports.last()
        );
        anyhow::ensure!(rss.len() >= 5, "too few samples of user/alice: {rss:?}");
        let mib = 1048576.0;
        anyhow::ensure!((50.0 * mib..=52.0 * mib).contains(&rise), "rss rose by {} MiB, expected 50 MiB and a little", rise / mib);
        anyhow::ensure!(threads.iter().all(|&t| t >= 2.0), "pause and sh at least: {threads:?}");
        anyhow::ensure!(cpu.windows(2).all(|w| w[1] >= w[0]) && cpu[0] > 0.0, "cpu seconds not monotonic: {cpu:?}");
        anyhow::ensure!(fds.last().is_some_and(|&n| n >= 6.0), "fds: {fds:?}");
        anyhow::ensure!(ports.last() == Some(&1.0), "httpd listens on one port: {ports:?}");
        anyhow::ensure!(children.last().is_some_and(|&n| n >= 2.0), "httpd, sleep and dd beside sh: {children:?}");

        // Cost of a round, as `run` does it: the pods listed each POD_REFRESH, the cgroups
        // read each second. Measured on this process as a whole (the API client included).
        let mut state = SamplerState::default();
        let cpu_now = || {
            ::procfs::process::Process::myself()
                .and_then(|p| p.stat())
                .map(|s| (s.utime + s.stime) as f64 / ::procfs::ticks_per_second() as f64)
        };
        let (before, t0) = (cpu_now()?, Instant::now());
        let rounds = 10;
        let mut walls = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            sampler.round(&mut state, Duration::ZERO).await?;
            walls.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (process_cpu, wall) = (cpu_now()? - before, t0.elapsed().as_secs_f64());
        let cold = walls[0];
        let list_ms = {
            let t = Instant::now();
            kube.list_pods(ns, "").await?;
            t.elapsed().as_secs_f64() * 1e3
        };
        eprintln!(
            "round cost over {rounds} rounds ({wall:.2} s): first {cold:.1} ms wall (docker inspect + listing), then {:.2} ms wall median; \
             reads {:.2} ms cpu/round; whole process {:.2} ms cpu/round; one pod listing {list_ms:.1} ms wall",
            {
                let mut w = walls[1..].to_vec();
                w.sort_by(f64::total_cmp);
                w[w.len() / 2]
            },
            state.own_cpu / rounds as f64 * 1e3,
            process_cpu / rounds as f64 * 1e3,
        );
        Ok(())
    }

    #[tokio::test]
    #[ignore = "needs the harness's kind cluster `hubchaos` up (`hubchaos cluster up`), as root; makes and deletes a namespace hc-cgtest-…"]
    async fn a_pod_holding_50_mib_reads_50_mib_more_with_its_threads_fds_and_port() {
        let (kube, engine, image) = live_cluster().await.expect("the harness's kind cluster");
        let ns = format!("hc-cgtest-{}", std::process::id());
        kube.ensure_namespace(&ns, &BTreeMap::from([("hubchaos.io/test".to_string(), "cgroups".to_string())])).await.unwrap();
        let outcome = live_body(&kube, &engine, &ns, &image).await;
        let deleted = kube.delete_namespace_and_wait(&ns, Duration::from_secs(90)).await;
        outcome.unwrap();
        deleted.unwrap();
    }
}
