//! The `hubchaos` binary as a user runs it, with `CARGO` pointing at a stand-in for cargo: the
//! stand-in answers the catalogue request as the scenario test binary does and otherwise writes
//! down what it was started with, so these tests see what a real scenario run would have been
//! given, without building or running one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One test at a time: a script being written while another thread forks can fail to exec
/// ("text file busy").
static SERIAL: Mutex<()> = Mutex::new(());

const CATALOGUE: &str = r#"{"test_name":"local::hub::proxy_killed","area":"hub","name":"proxy_killed","incident":"The proxy is killed.","long":false,"needs":[],"skip_reason":null}"#;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "#!/bin/sh\nif [ -n \"$HUBCHAOS_CATALOGUE\" ]; then echo '{CATALOGUE}'; exit 0; fi\n\
             {{ echo \"HUBCHAOS_PROFILE=$HUBCHAOS_PROFILE\"; echo \"$@\"; }} >> \"$FAKE_CARGO_LOG\"\n"
        );
        let cargo = dir.path().join("cargo");
        std::fs::write(&cargo, script).unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A valid profile, named relative to the sandbox (where the user stands).
        std::fs::write(dir.path().join("my-culler.yaml"), "components:\n  culler:\n    args: [\"--concurrency=5\"]\n").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> PathBuf {
        self.path().join("cargo.log")
    }

    fn hubchaos(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubchaos"));
        cmd.current_dir(self.path())
            .args(args)
            .env("CARGO", self.path().join("cargo"))
            .env("FAKE_CARGO_LOG", self.log())
            .env_remove("HUBCHAOS_PROFILE")
            .env_remove("HUBCHAOS_SEED");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// What the stand-in for cargo was started with (empty if it never ran a scenario).
    fn runs(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_hands_the_flag_profile_to_the_scenario_as_an_absolute_path() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new();
    let out = sandbox.hubchaos(&["run", "--profile", "my-culler.yaml", "local::hub::proxy_killed"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = sandbox.path().join("my-culler.yaml");
    let runs = sandbox.runs();
    assert!(runs.starts_with(&format!("HUBCHAOS_PROFILE={}\n", profile.display())), "{runs}");
    assert!(runs.contains("-- --exact local::hub::proxy_killed"), "{runs}");
}

#[test]
fn run_hands_a_relative_env_profile_over_as_an_absolute_path() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new();
    let out = sandbox.hubchaos(&["run", "local::hub::proxy_killed"], &[("HUBCHAOS_PROFILE", "my-culler.yaml")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = sandbox.runs();
    assert!(runs.starts_with(&format!("HUBCHAOS_PROFILE={}\n", sandbox.path().join("my-culler.yaml").display())), "{runs}");
}

#[test]
fn an_unknown_name_exits_2_names_the_nearest_and_runs_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new();
    let out = sandbox.hubchaos(&["run", "local::hub::proxy_killed", "local::hub::proxy_kiled"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("local::hub::proxy_kiled -- did you mean local::hub::proxy_killed?"), "{}", stderr(&out));
    assert_eq!(sandbox.runs(), "", "nothing may run when a name is unknown");
}

#[test]
fn a_bad_seed_exits_2_before_anything_runs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new();
    let out = sandbox.hubchaos(&["run", "local::hub::proxy_killed"], &[("HUBCHAOS_SEED", "abc")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("HUBCHAOS_SEED=\"abc\" is not a number"), "{}", stderr(&out));
    assert_eq!(sandbox.runs(), "");
}

#[test]
fn list_prints_the_table() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new();
    let out = sandbox.hubchaos(&["list"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("test "), "{table}");
    assert!(table.contains("local::hub::proxy_killed") && table.contains("The proxy is killed."), "{table}");
}
