//! `leaky-hook`: a hub that leaks on purpose, the negative control of `leak-slope` and
//! `returns-to-baseline`. In 2018 KubeSpawner kept a watcher thread and a pool per spawn and the
//! hub died after N launches; a check that cannot see a known leak proves nothing about the
//! real one. This fault adds to the hub's config a `c.Spawner.pre_spawn_hook` that, at every
//! spawn, retains `bytes_per_spawn` bytes and opens `fds_per_spawn` file descriptors
//! (`/dev/null`) and never lets them go.
//!
//! The bytes are a `bytearray` filled from `os.urandom`: every page is written, so the leak is
//! resident (a lazily zeroed allocation would not show in RSS until touched). The objects are
//! kept in a module-level list of the config namespace, which the hook's globals keep alive for
//! the life of the hub process. A hook set before (by the profile or the scenario) still runs,
//! after ours. Python opens files close-on-exec, so single-user servers do not inherit the fds.
//!
//! It must be in place before the hub starts: `before_deploy` appends it to
//! `DeployPlan::hub_extra_config`, which the deploy appends to the hub's `extra_config`
//! (exec'd last by `fixtures/hub/jupyterhub_config.py`). `inject` only records the fault.
//! Nothing to heal: the hook stays until the hub process is gone (a hub restart by the
//! supervisor re-reads the same config, so it leaks again from zero).

use async_trait::async_trait;

use super::{DeployPlan, Fault, FaultGuard};
use crate::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LeakyHook {
    /// Bytes retained per spawn (100 KiB/spawn is the leak `soak::RSS_PER_SPAWN` must catch).
    pub bytes_per_spawn: usize,
    /// File descriptors opened and kept per spawn.
    pub fds_per_spawn: usize,
}

impl LeakyHook {
    /// The Python appended to the hub's config.
    pub fn python(&self) -> String {
        format!(
            r#"
# --- hubchaos fault leaky-hook: leaks {bytes} bytes and {fds} fds per spawn, on purpose ---
import os as _hubchaos_os

_hubchaos_leaked = []
_hubchaos_previous_hook = c.Spawner.get("pre_spawn_hook")


def _hubchaos_leaky_pre_spawn_hook(spawner):
    if {bytes} > 0:
        # Written, not just allocated: resident, so RSS shows it.
        _hubchaos_leaked.append(bytearray(_hubchaos_os.urandom({bytes})))
    for _ in range({fds}):
        _hubchaos_leaked.append(open("/dev/null", "rb"))
    if callable(_hubchaos_previous_hook):
        return _hubchaos_previous_hook(spawner)


c.Spawner.pre_spawn_hook = _hubchaos_leaky_pre_spawn_hook
"#,
            bytes = self.bytes_per_spawn,
            fds = self.fds_per_spawn,
        )
    }
}

#[async_trait]
impl Fault for LeakyHook {
    fn kind(&self) -> &'static str {
        "leaky-hook"
    }

    fn target(&self) -> String {
        "hub".into()
    }

    fn before_deploy(&self, plan: &mut DeployPlan) -> anyhow::Result<()> {
        plan.hub_extra_config.push_str(&self.python());
        Ok(())
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        Ok(FaultGuard::nothing_to_heal(
            self.kind(),
            "hub",
            format!(
                "pre_spawn_hook retains {} bytes and {} fds per spawn (installed at deploy; stays until the hub process is gone)",
                self.bytes_per_spawn, self.fds_per_spawn
            ),
            &env.recorder,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// python3 is on every machine the harness runs on (the hub is Python): without it this
    /// test fails, naming it, instead of passing without having run.
    fn python3() -> &'static str {
        let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(found, "this test needs python3 on PATH (apt-get install python3)");
        "python3"
    }

    #[test]
    fn before_deploy_appends_to_the_hub_config() {
        let mut plan = DeployPlan::default();
        LeakyHook { bytes_per_spawn: 100_000, fds_per_spawn: 1 }.before_deploy(&mut plan).unwrap();
        assert!(plan.hub_extra_config.contains("c.Spawner.pre_spawn_hook = _hubchaos_leaky_pre_spawn_hook"));
        assert!(plan.hub_extra_config.contains("urandom(100000)"));
    }

    /// The hook compiles, and run against a stand-in for traitlets' config it retains written
    /// bytes and open fds per call, and chains a hook set before it.
    #[test]
    fn the_hook_retains_written_bytes_and_open_fds() {
        let py = python3();
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook.py");
        std::fs::write(&hook, LeakyHook { bytes_per_spawn: 50_000, fds_per_spawn: 2 }.python()).unwrap();
        let driver = r#"
import os, sys
src = open(sys.argv[1]).read()
compile(src, sys.argv[1], "exec")

class Section(dict):
    def __getattr__(self, k):
        return self[k]
    def __setattr__(self, k, v):
        self[k] = v

class Config:
    def __init__(self):
        self.Spawner = Section()

calls = []
c = Config()
c.Spawner.pre_spawn_hook = lambda spawner: calls.append(spawner)
ns = {"c": c}
fds_before = len(os.listdir("/proc/self/fd"))
exec(compile(src, sys.argv[1], "exec"), ns)
hook = c.Spawner["pre_spawn_hook"]
assert hook.__name__ == "_hubchaos_leaky_pre_spawn_hook", hook
for i in range(3):
    hook("spawner-%d" % i)
leaked = ns["_hubchaos_leaked"]
blobs = [x for x in leaked if isinstance(x, bytearray)]
assert [len(b) for b in blobs] == [50000] * 3, [len(b) for b in blobs]
assert all(b.count(0) < len(b) // 2 for b in blobs), "bytes are not written"
assert len(os.listdir("/proc/self/fd")) - fds_before == 6, (fds_before, os.listdir("/proc/self/fd"))
assert calls == ["spawner-0", "spawner-1", "spawner-2"], calls
print("ok")
"#;
        let out = Command::new(py).arg("-c").arg(driver).arg(&hook).output().unwrap();
        assert!(out.status.success(), "python failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
}
