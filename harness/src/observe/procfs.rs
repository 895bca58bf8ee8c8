//! Resource sampler (`/proc`): for every component's process group, every interval, the
//! resources a leak shows in. The 2018 hub died after N launches because KubeSpawner kept a
//! watcher thread and a pool per pod; that shows as `threads` of the hub growing with every
//! spawn, long before the hub stops answering. Leaks by hooks or spawners show as `rss_bytes`
//! and `open_fds`; a spawner that forgets its servers as `child_processes`; a server that never
//! closes its port as `listening_ports`.
//!
//! Per component (`processes.components()`, the pids of `processes.processes(name)`):
//!
//! | metric | what |
//! |---|---|
//! | `rss_bytes` | resident set, summed over the group (`/proc/<pid>/stat` rss × page size) |
//! | `open_fds` | entries of `/proc/<pid>/fd`, summed |
//! | `threads` | `num_threads` of `/proc/<pid>/stat` (= `Threads:` of `status`), summed |
//! | `child_processes` | processes whose parent is in the group but which are not (the hub's single-user servers run in their own sessions), plus group members other than the leader |
//! | `cpu_seconds` | (utime + stime) / CLK_TCK, summed over live members (a member that exits takes its share with it) |
//! | `listening_ports` | sockets of the group's fds that are in LISTEN state in `/proc/net/tcp{,6}` (state `0A`) |
//!
//! The sampler also measures itself, as component `harness`: the harness process's
//! `cpu_seconds`, `rss_bytes`, `threads`, `open_fds`, and `sampler_cpu_seconds`, the CPU time
//! spent in the sampler's own reads (from `/proc/thread-self/schedstat`, in ns, around each
//! tick's work on its blocking thread). [`cpu_share`] turns either into a fraction of a core;
//! `summary.md` prints the sampler's, which should stay under 1 % of a core so that sampling
//! does not disturb what it measures.
//!
//! Processes come and go while we read (a single-user server stopping mid-tick): a pid that
//! vanished is skipped, never an error. A component with no live process gives no samples: a
//! gap in its curves, which is itself evidence.
//!
//! The group's own processes are read with the `procfs` crate (typed `stat`, `fd` targets:
//! it parses the same files we would, and keeps the kernel-version quirks in one maintained
//! place). Two reads are by hand because they dominate the cost: the parent table over every
//! process of the machine (two fields of each `stat`), and the TCP tables, read only up to the
//! last listening socket (see [`listening_inodes_in`]). All of it runs on a blocking thread:
//! `/proc` reads are synchronous file I/O. CLK_TCK and the page size come from
//! `procfs::ticks_per_second()` / `page_size()` (sysconf through rustix), so no `unsafe` and no
//! extra nix feature is needed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ::procfs::process::{FDTarget, Process};
use tokio_util::sync::CancellationToken;

use super::history::{History, Recorder};
use super::samples::{Sample, SampleSink};
use crate::backend::local::supervisor::Supervisor;

/// Who says which processes make up each component: the local backend's supervisor (the
/// members of each process group).
pub trait ProcessTable: Send + Sync {
    /// Names of the components, in deploy order.
    fn components(&self) -> Vec<String>;
    /// Process ids that make up `component` now.
    fn processes(&self, component: &str) -> Vec<u32>;
}

impl ProcessTable for Supervisor {
    fn components(&self) -> Vec<String> {
        Supervisor::components(self)
    }
    fn processes(&self, component: &str) -> Vec<u32> {
        Supervisor::processes(self, component)
    }
}

/// The component name of the harness's own samples.
pub const HARNESS: &str = "harness";
pub const RSS_BYTES: &str = "rss_bytes";
pub const OPEN_FDS: &str = "open_fds";
pub const THREADS: &str = "threads";
pub const CHILD_PROCESSES: &str = "child_processes";
pub const CPU_SECONDS: &str = "cpu_seconds";
pub const LISTENING_PORTS: &str = "listening_ports";
/// CPU time spent by the sampler itself (component `harness`), cumulative.
pub const SAMPLER_CPU_SECONDS: &str = "sampler_cpu_seconds";

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    pub rss_pages: u64,
    pub threads: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// The resources of one process group at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupUsage {
    pub rss_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    pub child_processes: u64,
    pub cpu_seconds: f64,
    pub listening_ports: u64,
}

impl GroupUsage {
    /// The six samples of this usage, stamped `at`.
    pub fn samples(&self, component: &str, at: Duration) -> Vec<Sample> {
        [
            (RSS_BYTES, self.rss_bytes as f64),
            (OPEN_FDS, self.open_fds as f64),
            (THREADS, self.threads as f64),
            (CHILD_PROCESSES, self.child_processes as f64),
            (CPU_SECONDS, self.cpu_seconds),
            (LISTENING_PORTS, self.listening_ports as f64),
        ]
        .into_iter()
        .map(|(metric, value)| sample(component, metric, at, value))
        .collect()
    }
}

fn sample(component: &str, metric: &str, at: Duration, value: f64) -> Sample {
    Sample { at, component: component.into(), metric: metric.into(), labels: BTreeMap::new(), value }
}

/// Child processes of a group: members other than the leader (the member whose pid is its
/// process group id), plus processes outside the group whose parent is a member.
/// `parents` is every live process as (pid, ppid).
pub fn count_children(members: &[ProcStat], parents: &[(u32, u32)]) -> u64 {
    let in_group: HashSet<u32> = members.iter().map(|m| m.pid).collect();
    let non_leaders = members.iter().filter(|m| m.pid != m.pgrp).count() as u64;
    let outside = parents.iter().filter(|(pid, ppid)| in_group.contains(ppid) && !in_group.contains(pid)).count() as u64;
    non_leaders + outside
}

/// Sum a group's usage from its members' stats, fd counts and listening sockets (pure).
pub fn group_usage(
    members: &[ProcStat],
    open_fds: u64,
    listening_ports: u64,
    parents: &[(u32, u32)],
    ticks_per_second: u64,
    page_size: u64,
) -> GroupUsage {
    let ticks: u64 = members.iter().map(|m| m.cpu_ticks).sum();
    GroupUsage {
        rss_bytes: members.iter().map(|m| m.rss_pages * page_size).sum(),
        open_fds,
        threads: members.iter().map(|m| m.threads).sum(),
        child_processes: count_children(members, parents),
        cpu_seconds: ticks as f64 / ticks_per_second.max(1) as f64,
        listening_ports,
    }
}

/// The fraction of a core a cumulative CPU-seconds series used, from its first to its last
/// sample (e.g. `cpu_share(h, HARNESS, SAMPLER_CPU_SECONDS)` for the sampler's own cost).
pub fn cpu_share(history: &History, component: &str, metric: &str) -> Option<f64> {
    let first = history.series(component, metric).next()?;
    let last = history.series(component, metric).last()?;
    let dt = last.at.checked_sub(first.at)?.as_secs_f64();
    (dt > 0.0).then(|| (last.value - first.value) / dt)
}

fn stat_of(p: &Process) -> Option<ProcStat> {
    let s = p.stat().ok()?;
    Some(ProcStat {
        pid: u32::try_from(s.pid).ok()?,
        ppid: u32::try_from(s.ppid).unwrap_or(0),
        pgrp: u32::try_from(s.pgrp).unwrap_or(0),
        rss_pages: s.rss,
        threads: u64::try_from(s.num_threads).unwrap_or(0),
        cpu_ticks: s.utime + s.stime,
    })
}

/// (pid, ppid) of every live process. Hand-read (`/proc/<pid>/stat`, the two fields after the
/// command name) rather than through `procfs`'s full `Stat` parse: this runs over every process
/// of the machine every tick, and is most of the sampler's cost.
fn parent_table() -> Vec<(u32, u32)> {
    use std::io::Read;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut buf = String::with_capacity(512);
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        buf.clear();
        let Ok(mut f) = std::fs::File::open(e.path().join("stat")) else { continue };
        if f.read_to_string(&mut buf).is_err() {
            continue;
        }
        if let Some(ppid) = parse_ppid(&buf) {
            out.push((pid, ppid));
        }
    }
    out
}

/// The ppid from the text of `/proc/<pid>/stat` (the command name may contain spaces and
/// parentheses: fields are counted after the last `)`).
fn parse_ppid(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Inodes of TCP sockets in LISTEN state (IPv4 and IPv6) in the network namespace whose
/// `net` directory is `net` (`/proc/net`, or `/proc/<pid>/net` for a process's: a pod's).
///
/// Hand-read, because `/proc/net/tcp` is expensive to generate in full: the kernel walks every
/// bucket of the listening hash, then every socket of the established hash (a churn run leaves
/// thousands in TIME_WAIT: ~12 ms of kernel time for 2,000). So: the table is read in small
/// pieces (the kernel generates only what a read asks for) and only up to the first socket that
/// is not listening (listeners come first: `tcp_get_idx` in `net/ipv4/tcp_ipv4.c`, the same for
/// IPv6); and `tcp6` is skipped when `/proc/net/sockstat6` says no IPv6 TCP socket is in use
/// (looking for the first IPv6 entry walks the whole established hash).
fn listening_inodes_in(net: &std::path::Path) -> HashSet<u64> {
    use std::io::BufRead;
    let mut out = HashSet::new();
    let tcp6_in_use = std::fs::read_to_string(net.join("sockstat6"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("TCP6: inuse ").and_then(|n| n.split_whitespace().next()?.parse::<u64>().ok())))
        .is_none_or(|n| n > 0);
    for table in ["tcp", "tcp6"] {
        if table == "tcp6" && !tcp6_in_use {
            continue;
        }
        let Ok(f) = std::fs::File::open(net.join(table)) else { continue };
        for line in std::io::BufReader::with_capacity(512, f).lines().skip(1) {
            let Ok(line) = line else { break };
            match parse_listen_inode(&line) {
                Some(Some(inode)) => {
                    out.insert(inode);
                }
                Some(None) => break,
                None => continue,
            }
        }
    }
    out
}

/// How long a classification of socket inodes (listening or not) is trusted.
pub const LISTEN_REFRESH: Duration = Duration::from_secs(10);
/// A socket seen for the first time re-reads the tables, at most this often.
const LISTEN_REREAD: Duration = Duration::from_millis(500);

/// Which socket inodes are listening, remembered across ticks: the tables are read again only
/// when a group holds a socket not classified yet (at most every `LISTEN_REREAD`), or every
/// `LISTEN_REFRESH`. A socket that turns into a listener after it was classified (bind + listen
/// long after socket()) is seen at the next refresh. One cache per network namespace.
#[derive(Debug, Default)]
pub(crate) struct ListenCache {
    listening: HashSet<u64>,
    other: HashSet<u64>,
    read_at: Option<std::time::Instant>,
}

impl ListenCache {
    /// How many of `sockets` are listening in this process's network namespace.
    fn count(&mut self, sockets: &HashSet<u64>) -> u64 {
        self.count_in(sockets, std::path::Path::new("/proc/net"))
    }

    /// How many of `sockets` are listening in the network namespace whose `net` directory
    /// is `net` (`/proc/<pid>/net`).
    pub(crate) fn count_in(&mut self, sockets: &HashSet<u64>, net: &std::path::Path) -> u64 {
        if sockets.is_empty() {
            return 0;
        }
        let unknown = sockets.iter().any(|i| !self.listening.contains(i) && !self.other.contains(i));
        let since = self.read_at.map(|t| t.elapsed());
        let stale = since.is_none_or(|d| d >= LISTEN_REFRESH);
        if stale || (unknown && since.is_none_or(|d| d >= LISTEN_REREAD)) {
            self.listening = listening_inodes_in(net);
            self.other.clear();
            self.read_at = Some(std::time::Instant::now());
        }
        let mut n = 0;
        for i in sockets {
            if self.listening.contains(i) {
                n += 1;
            } else {
                self.other.insert(*i);
            }
        }
        n
    }
}

/// One line of `/proc/net/tcp{,6}`: Some(Some(inode)) for a listening socket, Some(None) for
/// any other state, None if unparsable.
fn parse_listen_inode(line: &str) -> Option<Option<u64>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let state = fields.get(3)?;
    if *state != "0A" {
        return Some(None);
    }
    Some(fields.get(9)?.parse().ok())
}

/// Open fds and the socket inodes among them, of one process (None if it vanished).
pub(crate) fn fds_of(p: &Process) -> Option<(u64, Vec<u64>)> {
    let mut n = 0;
    let mut sockets = Vec::new();
    for fd in p.fd().ok()? {
        // An fd closed between readdir and readlink is simply not counted.
        let Ok(fd) = fd else { continue };
        n += 1;
        if let FDTarget::Socket(inode) = fd.target {
            sockets.push(inode);
        }
    }
    Some((n, sockets))
}

/// What one tick reads, shared across components.
struct TickContext<'a> {
    parents: Vec<(u32, u32)>,
    listen: &'a mut ListenCache,
    ticks_per_second: u64,
    page_size: u64,
}

impl<'a> TickContext<'a> {
    fn new(listen: &'a mut ListenCache) -> Self {
        Self { parents: parent_table(), listen, ticks_per_second: ::procfs::ticks_per_second(), page_size: ::procfs::page_size() }
    }

    /// The usage of a group of pids; None when none of them is alive any more.
    fn measure(&mut self, pids: &[u32]) -> Option<GroupUsage> {
        let mut members = Vec::new();
        let mut open_fds = 0;
        let mut sockets = HashSet::new();
        for &pid in pids {
            let Ok(pid_i) = i32::try_from(pid) else { continue };
            let Ok(p) = Process::new(pid_i) else { continue };
            let Some(stat) = stat_of(&p) else { continue };
            let Some((n, socks)) = fds_of(&p) else { continue };
            members.push(stat);
            open_fds += n;
            sockets.extend(socks);
        }
        if members.is_empty() {
            return None;
        }
        let listening = self.listen.count(&sockets);
        Some(group_usage(&members, open_fds, listening, &self.parents, self.ticks_per_second, self.page_size))
    }
}

/// CPU time this thread has spent on a CPU, in seconds (`/proc/thread-self/schedstat`, ns);
/// falls back to the thread's utime+stime in ticks.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            return Some(ns as f64 / 1e9);
        }
    }
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after = s.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the comm: state is field 3 (index 0), utime 14 (index 11), stime 15 (index 12).
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / ::procfs::ticks_per_second().max(1) as f64)
}

/// One tick's samples for the given groups (component name -> pids), stamped `at`.
/// Exposed for tests and benches; [`ProcSampler::run`] calls it every interval.
pub fn sample_groups(groups: &[(String, Vec<u32>)], at: Duration) -> Vec<Sample> {
    sample_groups_with(groups, at, &mut ListenCache::default())
}

fn sample_groups_with(groups: &[(String, Vec<u32>)], at: Duration, listen: &mut ListenCache) -> Vec<Sample> {
    let mut ctx = TickContext::new(listen);
    let mut out = Vec::new();
    for (name, pids) in groups {
        if let Some(usage) = ctx.measure(pids) {
            out.extend(usage.samples(name, at));
        }
    }
    out
}

/// The harness process's own samples (without `sampler_cpu_seconds`).
fn sample_self(at: Duration) -> Vec<Sample> {
    let Ok(me) = Process::myself() else { return Vec::new() };
    let (Some(stat), Ok(fds)) = (stat_of(&me), me.fd_count()) else { return Vec::new() };
    vec![
        sample(HARNESS, CPU_SECONDS, at, stat.cpu_ticks as f64 / ::procfs::ticks_per_second().max(1) as f64),
        sample(HARNESS, RSS_BYTES, at, (stat.rss_pages * ::procfs::page_size()) as f64),
        sample(HARNESS, THREADS, at, stat.threads as f64),
        sample(HARNESS, OPEN_FDS, at, fds as f64),
    ]
}

/// How long a component's process list (`ProcessTable::processes`) is reused. On `local` each call
/// scans every process of the machine for the group id (~1.5 ms): asking for three components
/// every second would be most of the sampler's cost. Members rarely change (the hub's servers
/// run in their own sessions: they are its children, not members), and when a member vanishes
/// (a restart) the list is asked for again at the next tick.
pub const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(5);

/// What the sampler keeps between ticks: the components' process lists, as last asked of the
/// backend, and which sockets are listening.
#[derive(Default)]
struct Membership {
    groups: Vec<(String, Vec<u32>)>,
    asked: Option<std::time::Instant>,
    listen: ListenCache,
}

impl Membership {
    fn refresh(&mut self, backend: &dyn ProcessTable) {
        let stale = self.asked.is_none_or(|t| t.elapsed() >= MEMBERSHIP_REFRESH);
        let vanished = self.groups.iter().flat_map(|(_, pids)| pids).any(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        let names = backend.components();
        let same_names = names.len() == self.groups.len() && names.iter().zip(&self.groups).all(|(n, (g, _))| n == g);
        let empty = self.groups.iter().any(|(_, pids)| pids.is_empty());
        if stale || vanished || empty || !same_names {
            self.groups = names
                .into_iter()
                .map(|name| {
                    let pids = backend.processes(&name);
                    (name, pids)
                })
                .collect();
            self.asked = Some(std::time::Instant::now());
        }
    }
}

/// Samples `/proc` for every component of the backend, and the harness itself, every `every`.
#[derive(Debug, Clone)]
pub struct ProcSampler {
    pub every: Duration,
}

impl Default for ProcSampler {
    fn default() -> Self {
        Self { every: Duration::from_secs(1) }
    }
}

impl ProcSampler {
    /// Sample until cancelled. Each tick runs on a blocking thread (file I/O), including
    /// writing its samples, and its CPU time is added to `sampler_cpu_seconds`.
    pub async fn run(self, backend: Arc<dyn ProcessTable>, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut own_cpu = 0.0_f64;
        let mut membership = Membership::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let at = recorder.now();
            let (backend, sink_c, mut groups) = (backend.clone(), sink.clone(), std::mem::take(&mut membership));
            let spent = tokio::task::spawn_blocking(move || {
                let before = thread_cpu_seconds();
                groups.refresh(backend.as_ref());
                let mut batch = sample_groups_with(&groups.groups, at, &mut groups.listen);
                batch.extend(sample_self(at));
                sink_c.push_batch(batch);
                let spent = match (before, thread_cpu_seconds()) {
                    (Some(b), Some(a)) => (a - b).max(0.0),
                    _ => 0.0,
                };
                (groups, spent)
            })
            .await;
            let spent = spent.map(|(groups, spent)| {
                membership = groups;
                spent
            });
            match spent {
                Ok(s) => own_cpu += s,
                Err(e) => {
                    tracing::warn!("procfs sampler tick failed: {e}");
                    continue;
                }
            }
            sink.push_batch(vec![sample(HARNESS, SAMPLER_CPU_SECONDS, at, own_cpu)]);
        }
    }
}

/// Map component name -> usage for one tick, for callers that want the typed values.
pub fn usage_by_component(groups: &[(String, Vec<u32>)]) -> HashMap<String, GroupUsage> {
    let mut listen = ListenCache::default();
    let mut ctx = TickContext::new(&mut listen);
    groups.iter().filter_map(|(name, pids)| ctx.measure(pids).map(|u| (name.clone(), u))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn ps(pid: u32, ppid: u32, pgrp: u32) -> ProcStat {
        ProcStat { pid, ppid, pgrp, rss_pages: 10, threads: 2, cpu_ticks: 50 }
    }

    #[test]
    fn children_are_non_leaders_plus_outside_processes_parented_by_the_group() {
        // Hub 100 leads its group; 101 is a helper in the group; 200 and 201 are single-user
        // servers in their own sessions (parent 100); 300 is unrelated; 202 is a grandchild.
        let members = [ps(100, 1, 100), ps(101, 100, 100)];
        let parents = [(100, 1), (101, 100), (200, 100), (201, 100), (202, 200), (300, 1)];
        assert_eq!(count_children(&members, &parents), 1 + 2);
        assert_eq!(count_children(&[ps(100, 1, 100)], &[(100, 1)]), 0);
    }

    /// A process table with one component whose pids the test sets; counts `processes` calls.
    struct Fixed(std::sync::Mutex<(Vec<u32>, u32)>);
    impl ProcessTable for Fixed {
        fn processes(&self, _: &str) -> Vec<u32> {
            let mut g = self.0.lock().unwrap();
            g.1 += 1;
            g.0.clone()
        }
        fn components(&self) -> Vec<String> {
            vec!["hub".into()]
        }
    }

    #[test]
    fn process_lists_are_reused_until_a_member_vanishes() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let backend = Fixed(std::sync::Mutex::new((vec![child.id()], 0)));
        let mut m = Membership::default();
        m.refresh(&backend);
        m.refresh(&backend);
        assert_eq!(backend.0.lock().unwrap().1, 1);
        let _ = child.kill();
        let _ = child.wait();
        // The "hub" restarted: its old pid is gone, the backend knows the new one.
        backend.0.lock().unwrap().0 = vec![std::process::id()];
        m.refresh(&backend);
        assert_eq!(backend.0.lock().unwrap().1, 2);
        assert_eq!(m.groups, vec![("hub".to_string(), vec![std::process::id()])]);
        m.refresh(&backend);
        assert_eq!(backend.0.lock().unwrap().1, 2);
    }

    #[tokio::test]
    async fn the_sampler_writes_every_metric_and_its_own_cost() {
        let backend: Arc<dyn ProcessTable> = Arc::new(Fixed(std::sync::Mutex::new((vec![std::process::id()], 0))));
        let recorder = Recorder::in_memory(Instant::now());
        let sink = SampleSink::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(ProcSampler { every: Duration::from_millis(50) }.run(backend, recorder, sink.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(180)).await;
        stop.cancel();
        task.await.unwrap();
        let h = History::default().with_samples(sink.all());
        for m in [RSS_BYTES, OPEN_FDS, THREADS, CHILD_PROCESSES, CPU_SECONDS, LISTENING_PORTS] {
            assert!(h.series("hub", m).count() >= 2, "{m}");
        }
        assert!(h.series(HARNESS, SAMPLER_CPU_SECONDS).count() >= 2);
        assert!(h.series(HARNESS, SAMPLER_CPU_SECONDS).last().unwrap().value > 0.0);
    }

    #[test]
    fn listening_sockets_are_remembered_until_a_new_socket_appears() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = Process::myself().unwrap();
        let socks = |extra: &[u64]| -> HashSet<u64> { fds_of(&me).unwrap().1.into_iter().chain(extra.iter().copied()).collect() };
        let mut cache = ListenCache::default();
        let first = cache.count(&socks(&[]));
        assert!(first >= 1);
        let read_at = cache.read_at;
        // Nothing new: no re-read.
        assert_eq!(cache.count(&socks(&[])), first);
        assert_eq!(cache.read_at, read_at);
        // A socket never seen: re-read once the re-read interval has passed, and it is
        // classified (not listening) either way.
        cache.read_at = read_at.map(|t| t - LISTEN_REREAD);
        assert_eq!(cache.count(&socks(&[u64::MAX])), first);
        assert_ne!(cache.read_at, read_at.map(|t| t - LISTEN_REREAD));
        assert!(cache.other.contains(&u64::MAX));
        drop(listener);
    }

    #[test]
    fn stat_and_tcp_lines_parse() {
        assert_eq!(parse_ppid("123 (a) b) c) S 45 123 123 0 -1"), Some(45));
        assert_eq!(parse_ppid("garbage"), None);
        let listen = "   0: 0100007F:D539 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 157149 1 00000000ace6ed38 100 0 0 10 0";
        let wait = "   1: 0100007F:D539 0100007F:9E0D 06 00000000:00000000 03:00000F9B 00000000     0        0 0 3 0000000000000000";
        assert_eq!(parse_listen_inode(listen), Some(Some(157149)));
        assert_eq!(parse_listen_inode(wait), Some(None));
        assert_eq!(parse_listen_inode(""), None);
    }

    #[test]
    fn usage_sums_members() {
        let members = [ps(100, 1, 100), ps(101, 100, 100)];
        let u = group_usage(&members, 7, 2, &[], 100, 4096);
        assert_eq!(u.rss_bytes, 2 * 10 * 4096);
        assert_eq!(u.threads, 4);
        assert_eq!(u.cpu_seconds, 1.0);
        assert_eq!(u.open_fds, 7);
        assert_eq!(u.listening_ports, 2);
        assert_eq!(u.child_processes, 1);
        let names: Vec<String> = u.samples("hub", Duration::ZERO).into_iter().map(|s| s.metric).collect();
        assert_eq!(names, [RSS_BYTES, OPEN_FDS, THREADS, CHILD_PROCESSES, CPU_SECONDS, LISTENING_PORTS]);
    }

    #[test]
    fn a_real_group_shows_its_listening_port_fds_and_children() {
        let me = std::process::id();
        let before = usage_by_component(&[("me".into(), vec![me])])["me"].clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // An established connection too: listeners must still be found before it.
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let after = usage_by_component(&[("me".into(), vec![me])])["me"].clone();
        let _ = child.kill();
        let _ = child.wait();
        drop((listener, client, server));
        assert!(after.listening_ports > before.listening_ports, "{before:?} -> {after:?}");
        assert!(after.open_fds > before.open_fds, "{before:?} -> {after:?}");
        assert!(after.child_processes > before.child_processes, "{before:?} -> {after:?}");
        assert!(after.rss_bytes > 0 && after.threads >= 1);
    }

    #[test]
    fn vanished_pids_are_skipped_and_an_empty_group_gives_nothing() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // Reaped: the pid is gone (reuse within this test is practically impossible).
        assert!(sample_groups(&[("gone".into(), vec![pid])], Duration::ZERO).is_empty());
        let me = std::process::id();
        let s = sample_groups(&[("mixed".into(), vec![pid, me])], Duration::ZERO);
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn own_cpu_is_measured_and_the_share_is_computed() {
        assert!(thread_cpu_seconds().is_some());
        let s = sample_self(Duration::ZERO);
        assert_eq!(s.len(), 4);
        let h = History::default().with_samples(vec![
            sample(HARNESS, SAMPLER_CPU_SECONDS, Duration::from_secs(10), 0.1),
            sample(HARNESS, SAMPLER_CPU_SECONDS, Duration::from_secs(110), 0.6),
        ]);
        let share = cpu_share(&h, HARNESS, SAMPLER_CPU_SECONDS).unwrap();
        assert!((share - 0.005).abs() < 1e-12);
        assert_eq!(cpu_share(&History::default(), HARNESS, SAMPLER_CPU_SECONDS), None);
    }

    /// Cost of one tick for three small groups (like hub, proxy, culler) on this machine:
    /// printed, and bounded loosely so a pathological slowdown is noticed. The parent table
    /// scans every process of the machine and is most of it.
    #[test]
    fn a_tick_is_cheap() {
        let me = std::process::id();
        let parent = parent_table().into_iter().find(|(p, _)| *p == me).map(|(_, pp)| pp).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let groups = vec![("a".to_string(), vec![me]), ("b".to_string(), vec![parent]), ("c".to_string(), vec![child.id()])];
        let n = 20;
        let start = thread_cpu_seconds().unwrap();
        for _ in 0..n {
            let _ = sample_groups(&groups, Duration::ZERO);
        }
        let tick = (thread_cpu_seconds().unwrap() - start) / n as f64;
        let start = thread_cpu_seconds().unwrap();
        for _ in 0..n {
            let _ = parent_table();
        }
        let table = (thread_cpu_seconds().unwrap() - start) / n as f64;
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "procfs tick, 3 groups, {} processes on the machine: {:.2} ms cpu, of which the parent table {:.2} ms",
            parent_table().len(),
            tick * 1e3,
            table * 1e3
        );
        assert!(tick < 0.1, "a tick took {tick} s of CPU");
    }
}
