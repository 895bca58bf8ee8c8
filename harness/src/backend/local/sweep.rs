//! Leave nothing behind. Each run writes a marker (`$HUBCHAOS_HOME/active/<run-id>.json`)
//! naming its harness pid, its run dir and every process group it started; every process it
//! starts carries `HUBCHAOS_RUN_ID=<run-id>` in its environment. A clean teardown removes the
//! marker. The next run (and `hubchaos sweep`) finds markers whose harness is gone and ends
//! what they name.
//!
//! Nothing is ever matched by process name: a process is ended only if its own environment
//! carries the dead run's id, so a recycled pid or someone else's jupyterhub is never touched.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::paths::active_runs_dir;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RunMarker {
    pub run_id: String,
    pub harness_pid: u32,
    pub run_dir: PathBuf,
    /// Process groups started by the run (leaders' pids).
    #[serde(default)]
    pub process_groups: Vec<u32>,
    /// Mount points the run created (unmounted by the sweep, deepest first).
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Files and directories outside the run dir to remove (disk images, socket dirs).
    #[serde(default)]
    pub remove_paths: Vec<PathBuf>,
    /// The harness process's start time (clock ticks since boot, `/proc/<pid>/stat` field 22):
    /// a live pid with another start time is a recycled pid, and the run is abandoned.
    #[serde(default)]
    pub harness_start: u64,
    #[serde(skip)]
    path: PathBuf,
}

impl RunMarker {
    pub fn create(run_id: &str, run_dir: &Path) -> std::io::Result<Self> {
        Self::create_in(&active_runs_dir(), run_id, run_dir)
    }

    pub fn create_in(dir: &Path, run_id: &str, run_dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let marker = Self {
            run_id: run_id.into(),
            harness_pid: std::process::id(),
            run_dir: run_dir.into(),
            process_groups: Vec::new(),
            mounts: Vec::new(),
            remove_paths: Vec::new(),
            harness_start: start_time(std::process::id()).unwrap_or(0),
            path: dir.join(format!("{run_id}.json")),
        };
        marker.save()?;
        Ok(marker)
    }

    pub fn add_process_group(&mut self, pgid: u32) {
        if !self.process_groups.contains(&pgid) {
            self.process_groups.push(pgid);
        }
    }

    pub fn add_mount(&mut self, mount: PathBuf) {
        self.mounts.push(mount);
    }

    pub fn add_path_to_remove(&mut self, path: PathBuf) {
        if !self.remove_paths.contains(&path) {
            self.remove_paths.push(path);
        }
    }

    /// Written atomically (temp + rename) so a kill mid-write leaves the old marker.
    pub fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, &self.path)
    }

    /// The run ended cleanly: forget it.
    pub fn remove(&self) -> std::io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What a sweep did, for the operator.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub runs: Vec<String>,
    pub processes_ended: Vec<u32>,
    pub unmounted: Vec<PathBuf>,
    pub errors: Vec<String>,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.errors.is_empty()
    }

    pub fn describe(&self) -> String {
        format!(
            "swept {} abandoned run(s): ended {} process(es), unmounted {} mount(s){}",
            self.runs.len(),
            self.processes_ended.len(),
            self.unmounted.len(),
            if self.errors.is_empty() { String::new() } else { format!("; errors: {}", self.errors.join("; ")) }
        )
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Does `/proc/<pid>/environ` carry `HUBCHAOS_RUN_ID=<run_id>`?
pub fn process_has_run_id(pid: u32, run_id: &str) -> bool {
    let needle = format!("HUBCHAOS_RUN_ID={run_id}");
    fs::read(format!("/proc/{pid}/environ")).map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())).unwrap_or(false)
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc").map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default()
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`, counted after the
/// parenthesised comm, which may contain spaces.
fn stat_field(pid: u32, n: usize) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// Field 5: the process group.
fn pgid_of(pid: u32) -> Option<u32> {
    stat_field(pid, 5).map(|g| g as u32)
}

/// Is process `pid`, started at `start` (clock ticks since boot; 0: not known), still running?
/// A live pid with another start time is a recycled pid: not it.
pub fn is_running(pid: u32, start: u64) -> bool {
    pid_alive(pid) && (start == 0 || start_time(pid) == Some(start))
}

/// Field 22: when the process started (clock ticks since boot).
pub fn start_time(pid: u32) -> Option<u64> {
    stat_field(pid, 22)
}

/// Every live process whose process group is `pgid`.
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    all_pids().into_iter().filter(|p| pgid_of(*p) == Some(pgid)).collect()
}

/// Every live process carrying the run id, except this process.
pub fn processes_of_run(run_id: &str) -> Vec<u32> {
    let me = std::process::id();
    all_pids().into_iter().filter(|p| *p != me && process_has_run_id(*p, run_id)).collect()
}

/// SIGKILL every process of a run (by its environment), group leaders' groups first.
pub fn end_run_processes(run_id: &str, report: &mut SweepReport) {
    for _round in 0..3 {
        let pids = processes_of_run(run_id);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            if pgid_of(pid) == Some(pid) {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            } else {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            if !report.processes_ended.contains(&pid) {
                report.processes_ended.push(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let left = processes_of_run(run_id);
    if !left.is_empty() {
        report.errors.push(format!("run {run_id}: processes still alive after SIGKILL: {left:?}"));
    }
}

fn unmount(path: &Path) -> std::io::Result<()> {
    let out = std::process::Command::new("umount").arg(path).output()?;
    if out.status.success() {
        return Ok(());
    }
    // A lazy unmount frees the mount point even if something still holds it open.
    let out = std::process::Command::new("umount").arg("-l").arg(path).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else { return false };
    let want = path.to_string_lossy();
    mounts.lines().any(|l| l.split_whitespace().nth(1) == Some(&*want))
}

/// Clean up one run named by its marker: its processes, then its mounts, then the marker.
pub fn sweep_marker(marker: &RunMarker, report: &mut SweepReport) {
    end_run_processes(&marker.run_id, report);
    for mount in marker.mounts.iter().rev() {
        // A path can carry stacked mounts: unmount until it is free (bounded).
        for _ in 0..8 {
            if !is_mounted(mount) {
                break;
            }
            match unmount(mount) {
                Ok(()) => report.unmounted.push(mount.clone()),
                Err(e) => {
                    report.errors.push(format!("umount {}: {e}", mount.display()));
                    break;
                }
            }
        }
    }
    for path in &marker.remove_paths {
        let mounted_below = fs::read_to_string("/proc/self/mounts")
            .map(|m| m.lines().any(|l| l.split_whitespace().nth(1).is_some_and(|p| Path::new(p).starts_with(path))))
            .unwrap_or(false);
        if mounted_below {
            report.errors.push(format!("not removing {}: something is still mounted below it", path.display()));
            continue;
        }
        let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => report.errors.push(format!("removing {}: {e}", path.display())),
            _ => {}
        }
    }
    report.runs.push(marker.run_id.clone());
    if let Err(e) = marker.remove() {
        report.errors.push(format!("removing marker of {}: {e}", marker.run_id));
    }
}

/// Sweep every abandoned run (its harness process is gone) under `dir`.
pub fn sweep_abandoned_in(dir: &Path) -> SweepReport {
    let mut report = SweepReport::default();
    let Ok(rd) = fs::read_dir(dir) else { return report };
    for entry in rd.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let marker: RunMarker = match fs::read(&path).map(|b| serde_json::from_slice::<RunMarker>(&b)) {
            Ok(Ok(mut m)) => {
                m.path = path.clone();
                m
            }
            _ => {
                report.errors.push(format!("unreadable marker {} (left in place)", path.display()));
                continue;
            }
        };
        let harness_alive = marker.harness_pid != std::process::id() && is_running(marker.harness_pid, marker.harness_start);
        if !harness_alive {
            sweep_marker(&marker, &mut report);
        }
    }
    report
}

pub fn sweep_abandoned() -> SweepReport {
    sweep_abandoned_in(&active_runs_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_processes_are_ended_and_its_marker_removed() {
        let dir = tempfile::tempdir().unwrap();
        let run_id = format!("test-sweep-{}", std::process::id());
        let mut marker = RunMarker::create_in(dir.path(), &run_id, dir.path()).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").env("HUBCHAOS_RUN_ID", &run_id).spawn().unwrap();
        marker.add_process_group(child.id());
        // Under load the child may not show its new environment at once: wait (bounded).
        let seen = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            process_has_run_id(child.id(), &run_id)
        });
        assert!(seen, "the child never showed HUBCHAOS_RUN_ID in /proc/{}/environ", child.id());
        // Pretend the harness died: a pid that cannot exist.
        marker.harness_pid = u32::MAX - 1;
        marker.save().unwrap();

        let report = sweep_abandoned_in(dir.path());
        assert_eq!(report.runs, vec![run_id.clone()], "{report:?}");
        assert!(report.processes_ended.contains(&child.id()), "{report:?}");
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "marker left behind");
    }

    #[test]
    fn a_live_harness_is_left_alone_and_a_recycled_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // A live harness (pid 1 with its real start time stands in for one): left alone.
        let mut m = RunMarker::create_in(dir.path(), "alive", dir.path()).unwrap();
        m.harness_pid = 1;
        m.harness_start = start_time(1).unwrap();
        m.save().unwrap();
        assert!(sweep_abandoned_in(dir.path()).runs.is_empty());
        // The same pid with another start time is a recycled pid: the run is abandoned.
        m.harness_start += 1;
        m.save().unwrap();
        let report = sweep_abandoned_in(dir.path());
        assert_eq!(report.runs, vec!["alive".to_string()]);
    }

    #[test]
    fn a_process_without_the_run_id_is_never_touched() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let mut report = SweepReport::default();
        end_run_processes("no-such-run-id", &mut report);
        assert!(report.processes_ended.is_empty());
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
