//! `hubchaos doctor`: what this machine has, what each scenario family needs, and how to fix
//! what is missing.
//!
//! Every check is one [`Prerequisite`]. `required` ones block the local backend entirely
//! (python with venv, npm/node, loopback ports, a writable `$HUBCHAOS_HOME`); the others only
//! block some scenario families (root for loop-mounted disks, docker for the image cleaner)
//! or a workflow (`cargo-nextest` for `make test`), and such scenarios are skipped with the
//! reason instead of failing.
//!
//! Machine access goes through [`System`], so the checks are unit-tested with a fake.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::profile::Profile;
use crate::toolchain::{self, EnvState, Pins, Toolchain};

/// Minimum python for the pinned jupyterhub.
pub const MIN_PYTHON: (u32, u32) = (3, 9);
/// configurable-http-proxy 5.3.0 declares `engines: node >= 20` (npm only warns).
pub const MIN_NODE: u32 = 20;
/// Below this, node is not even tried.
pub const MIN_NODE_HARD: u32 = 16;
/// Free space below which `$HUBCHAOS_HOME` is flagged (an environment takes ~300 MB).
pub const MIN_FREE_BYTES: u64 = 1 << 30;

/// One thing the harness needs from the machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prerequisite {
    pub name: String,
    /// Usable as found.
    pub ok: bool,
    /// What was found (version, path, state) or "not found".
    pub found: String,
    /// How to get it (shown when not ok).
    pub fix: String,
    /// Which scenarios or workflows need it.
    pub needed_for: String,
    /// Without it the local backend cannot run at all (otherwise: some scenarios are skipped).
    pub required: bool,
}

impl Prerequisite {
    fn new(name: &str, required: bool, needed_for: &str) -> Self {
        Self { name: name.into(), ok: false, found: String::new(), fix: String::new(), needed_for: needed_for.into(), required }
    }

    fn ok(mut self, found: impl Into<String>) -> Self {
        self.ok = true;
        self.found = found.into();
        self
    }

    fn missing(mut self, found: impl Into<String>, fix: impl Into<String>) -> Self {
        self.ok = false;
        self.found = found.into();
        self.fix = fix.into();
        self
    }
}

/// The result of running a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The machine, as the checks see it.
pub trait System {
    /// Run a program to completion (`None`: it could not be started).
    fn run(&self, program: &str, args: &[&str]) -> Option<RunOutput>;
    /// `which`.
    fn which(&self, program: &str) -> Option<PathBuf>;
    /// The effective uid.
    fn euid(&self) -> u32;
}

/// The real machine.
pub struct RealSystem;

impl System for RealSystem {
    fn run(&self, program: &str, args: &[&str]) -> Option<RunOutput> {
        let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
        Some(RunOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        toolchain::find_program(program)
    }

    fn euid(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }
}

/// Check everything on this machine for `pins` (merged with `profile`'s pins).
pub fn doctor(pins: &Pins, profile: Option<&Profile>) -> Vec<Prerequisite> {
    doctor_with(&RealSystem, &crate::paths::hubchaos_home(), pins, profile)
}

/// [`doctor`] against any [`System`] and home directory.
pub fn doctor_with(sys: &dyn System, home: &Path, pins: &Pins, profile: Option<&Profile>) -> Vec<Prerequisite> {
    let pins = match profile {
        Some(p) => p.pins(pins),
        None => pins.clone(),
    };
    let mut out = vec![
        check_python(sys, &toolchain::python_program()),
        check_npm(sys),
        check_node(sys),
        check_loopback(),
        check_home(home),
        check_env(home, &pins),
        check_root(sys),
        check_docker(sys),
        check_dockerd(sys),
        check_nextest(sys),
        check_kind_image(home, &pins),
        check_binderhub(crate::component::binderhub::binderhub_from_env().as_deref()),
    ];
    if let Some(p) = profile {
        out.extend(check_profile_commands(sys, p));
    }
    out
}

/// `Python 3.11.7` / `3.12.0rc1` -> (3, 11, 7).
pub fn parse_python_version(s: &str) -> Option<(u32, u32, u32)> {
    let v = s.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    parse_triplet(v)
}

/// `v20.20.2` -> (20, 20, 2).
pub fn parse_node_version(s: &str) -> Option<(u32, u32, u32)> {
    parse_triplet(s.trim().trim_start_matches('v'))
}

/// `Docker version 27.5.1, build 9f9e405` -> "27.5.1"; also plain `20.10.24+dfsg1`.
pub fn parse_docker_version(s: &str) -> Option<String> {
    let w = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))?;
    Some(w.to_string())
}

fn parse_triplet(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = it.next()??;
    let minor = it.next().flatten().unwrap_or(0);
    let patch = it.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

const LOCAL: &str = "every local scenario";

pub fn check_python(sys: &dyn System, program: &str) -> Prerequisite {
    let p = Prerequisite::new("python3", true, "every local scenario (hub, culler, single-user servers)");
    let fix = "install python3 and python3-venv: apt-get install python3-venv (or set HUBCHAOS_PYTHON)";
    let Some(path) = sys.which(program) else {
        return p.missing(format!("`{program}` not found"), fix);
    };
    let Some(out) = sys.run(program, &["--version"]) else {
        return p.missing(format!("{} does not run", path.display()), fix);
    };
    let text = format!("{}{}", out.stdout, out.stderr);
    let Some((ma, mi, pa)) = parse_python_version(&text) else {
        return p.missing(format!("{}: unrecognised version {:?}", path.display(), text.trim()), fix);
    };
    let version = format!("{ma}.{mi}.{pa}");
    if (ma, mi) < MIN_PYTHON {
        return p.missing(
            format!("{version} ({})", path.display()),
            format!("python >= {}.{} is needed: install a newer python3 or set HUBCHAOS_PYTHON", MIN_PYTHON.0, MIN_PYTHON.1),
        );
    }
    // Debian ships venv without ensurepip unless python3-venv is installed.
    match sys.run(program, &["-c", "import venv, ensurepip"]) {
        Some(o) if o.success => p.ok(format!("{version} with venv ({})", path.display())),
        _ => p.missing(format!("{version} ({}) without venv/ensurepip", path.display()), fix),
    }
}

pub fn check_npm(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new("npm", true, "installing configurable-http-proxy (the proxy)");
    let fix = "apt-get install npm (or install Node.js >= 20 with npm from https://nodejs.org)";
    match sys.run("npm", &["--version"]) {
        Some(o) if o.success => p.ok(format!("{} ({})", o.stdout.trim(), display_which(sys, "npm"))),
        _ => p.missing("not found", fix),
    }
}

pub fn check_node(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new("node", true, "configurable-http-proxy (the proxy)");
    let fix = format!("install Node.js >= {MIN_NODE} (Debian bookworm's nodejs is 18): https://nodejs.org or the NodeSource packages");
    let Some(o) = sys.run("node", &["--version"]).filter(|o| o.success) else {
        return p.missing("not found", fix);
    };
    match parse_node_version(&o.stdout) {
        Some((major, ..)) if major >= MIN_NODE => p.ok(format!("{} ({})", o.stdout.trim(), display_which(sys, "node"))),
        Some((major, ..)) if major >= MIN_NODE_HARD => {
            let mut p = p.missing(format!("{} (configurable-http-proxy 5.3 declares node >= {MIN_NODE}; may work)", o.stdout.trim()), fix);
            p.required = false;
            p
        }
        Some(_) => p.missing(format!("{} (too old)", o.stdout.trim()), fix),
        None => p.missing(format!("unrecognised version {:?}", o.stdout.trim()), fix),
    }
}

fn display_which(sys: &dyn System, program: &str) -> String {
    sys.which(program).map(|p| p.display().to_string()).unwrap_or_else(|| program.to_string())
}

pub fn check_root(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new(
        "root",
        false,
        "disk-full scenarios (loop-mounted filesystems for dockerd); culler and spawn scenarios run without",
    );
    match sys.euid() {
        0 => p.ok("running as root (uid 0)"),
        uid => p.missing(
            format!("uid {uid}"),
            "run as root (e.g. `sudo -E make test-chaos`) to include disk-full scenarios; they are skipped otherwise",
        ),
    }
}

pub fn check_loopback() -> Prerequisite {
    let p = Prerequisite::new("loopback ports", true, LOCAL);
    match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => p.ok(format!("can bind 127.0.0.1 (got port {})", l.local_addr().map(|a| a.port()).unwrap_or(0))),
        Err(e) => p.missing(format!("cannot bind 127.0.0.1:0: {e}"), "allow listening on 127.0.0.1 (network namespace / sandbox policy)"),
    }
}

pub fn check_home(home: &Path) -> Prerequisite {
    let p = Prerequisite::new("HUBCHAOS_HOME", true, "the installed environment and run markers");
    let fix = "set HUBCHAOS_HOME to a writable directory with >= 1 GiB free";
    if let Err(e) = std::fs::create_dir_all(home) {
        return p.missing(format!("{}: cannot create: {e}", home.display()), fix);
    }
    let probe = home.join(format!(".doctor-probe-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"x") {
        return p.missing(format!("{}: not writable: {e}", home.display()), fix);
    }
    let _ = std::fs::remove_file(&probe);
    match nix::sys::statvfs::statvfs(home) {
        Ok(s) => {
            #[allow(clippy::unnecessary_cast)] // the widths differ between platforms
            let free = s.blocks_available() as u64 * s.fragment_size() as u64;
            let found = format!("{} ({} free)", home.display(), human_bytes(free));
            if free < MIN_FREE_BYTES {
                p.missing(found, fix)
            } else {
                p.ok(found)
            }
        }
        Err(_) => p.ok(format!("{} (writable; free space unknown)", home.display())),
    }
}

pub fn check_env(home: &Path, pins: &Pins) -> Prerequisite {
    let p = Prerequisite::new("environment", false, LOCAL);
    match Toolchain::state_in(home, pins) {
        EnvState::Ready(tc) => {
            let versions: Vec<String> = tc.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
            p.ok(format!("installed at {} ({})", tc.root.display(), versions.join(", ")))
        }
        // Not a problem: it is installed on first use. `ok` so it does not alarm.
        EnvState::Missing { root } => {
            p.ok(format!("not installed yet: will be installed on first run (or `hubchaos env`) into {}", root.display()))
        }
    }
}

pub fn check_docker(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new("docker", false, "image-cleaner and binder scenarios");
    match sys.run("docker", &["--version"]).filter(|o| o.success) {
        Some(o) => p.ok(format!(
            "client {} ({})",
            parse_docker_version(&o.stdout).unwrap_or_else(|| o.stdout.trim().to_string()),
            display_which(sys, "docker")
        )),
        None => p.missing("not found", "apt-get install docker.io"),
    }
}

/// BinderHub, from the user (`HUBCHAOS_BINDERHUB`): the binder scenarios run only then.
pub fn check_binderhub(given: Option<&str>) -> Prerequisite {
    let p = Prerequisite::new("BinderHub", false, "binder scenarios (local::binder::…)");
    match given {
        Some(spec) => p.ok(format!("HUBCHAOS_BINDERHUB={spec} (installed with repo2docker on first use)")),
        None => p.missing("HUBCHAOS_BINDERHUB is not set", crate::component::binderhub::HOW_TO_PROVIDE),
    }
}

/// The kind node image and its tools, cached (the kind scenarios run only then).
pub fn check_kind_image(home: &Path, pins: &Pins) -> Prerequisite {
    let p = Prerequisite::new("kind node image", false, "kind scenarios (kind::…)");
    let Some(kube) = pins.kubernetes.as_ref() else {
        return p.missing("no `kubernetes:` pins", "add the `kubernetes:` section to fixtures/pins.yaml");
    };
    match crate::backend::kind::cluster::Programs::cached(home, kube) {
        Ok(programs) => p.ok(programs.node_image),
        Err(why) => p.missing(why, "make kind-image (root; ~10 min cold on 2 cores, then cached)"),
    }
}

pub fn check_dockerd(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new("dockerd", false, "image-cleaner and binder scenarios (a harness-owned daemon)");
    let fix = "apt-get install docker.io (the harness starts its own dockerd; no system service needed)";
    match sys.which("dockerd") {
        None => p.missing("not found", fix),
        Some(path) => {
            let v = sys.run("dockerd", &["--version"]).filter(|o| o.success).and_then(|o| parse_docker_version(&o.stdout));
            p.ok(match v {
                Some(v) => format!("{v} ({})", path.display()),
                None => path.display().to_string(),
            })
        }
    }
}

pub fn check_nextest(sys: &dyn System) -> Prerequisite {
    let p = Prerequisite::new("cargo-nextest", false, "`make test` (JUnit, per-test processes)");
    match sys.run("cargo-nextest", &["nextest", "--version"]).filter(|o| o.success) {
        Some(o) => p.ok(o.stdout.lines().next().unwrap_or("").trim().to_string()),
        None => p.missing("not found", "cargo install cargo-nextest --locked"),
    }
}

/// A profile's replacement programs must exist.
pub fn check_profile_commands(sys: &dyn System, profile: &Profile) -> Vec<Prerequisite> {
    let source = profile.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "profile".into());
    profile
        .components
        .iter()
        .filter_map(|(name, o)| Some((name, o.command.as_ref()?.first()?)))
        .map(|(name, program)| {
            let p = Prerequisite::new(&format!("profile: {name} command"), true, &format!("the {name} override in {source}"));
            match sys.which(program) {
                Some(path) => p.ok(path.display().to_string()),
                None => p.missing(format!("`{program}` not found or not executable"), format!("fix components.{name}.command in {source}")),
            }
        })
        .collect()
}

fn human_bytes(b: u64) -> String {
    const G: f64 = (1u64 << 30) as f64;
    const M: f64 = (1u64 << 20) as f64;
    let b = b as f64;
    if b >= G {
        format!("{:.1} GiB", b / G)
    } else {
        format!("{:.0} MiB", b / M)
    }
}

/// True when nothing required is missing.
pub fn all_required_ok(items: &[Prerequisite]) -> bool {
    items.iter().all(|p| p.ok || !p.required)
}

/// A plain-text table: status, name, what was found, what needs it; then a `fix:` line under
/// each item that is not ok. Status is `ok`, `MISSING` (required) or `skip` (only some
/// scenarios need it).
pub fn render_table(items: &[Prerequisite]) -> String {
    let status = |p: &Prerequisite| match (p.ok, p.required) {
        (true, _) => "ok",
        (false, true) => "MISSING",
        (false, false) => "skip",
    };
    let headers = ["status", "prerequisite", "found", "needed for"];
    let mut w = headers.map(str::len);
    for p in items {
        w[0] = w[0].max(status(p).len());
        w[1] = w[1].max(p.name.chars().count());
        w[2] = w[2].max(p.found.chars().count());
    }
    let row = |cells: [&str; 4]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(3) {
            s.push_str(c);
            s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
        }
        s.push_str(cells[3]);
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&row(headers));
    out.push('\n');
    for p in items {
        out.push_str(&row([status(p), &p.name, &p.found, &p.needed_for]));
        out.push('\n');
        if !p.ok && !p.fix.is_empty() {
            out.push_str(&" ".repeat(w[0] + 2));
            out.push_str("fix: ");
            out.push_str(&p.fix);
            out.push('\n');
        }
    }
    let missing = items.iter().filter(|p| !p.ok && p.required).count();
    let skipped = items.iter().filter(|p| !p.ok && !p.required).count();
    out.push_str(&match (missing, skipped) {
        (0, 0) => "all prerequisites found\n".to_string(),
        (0, s) => format!("ready for the local backend; {s} optional prerequisite(s) missing: their scenarios are skipped\n"),
        (m, _) => format!("{m} required prerequisite(s) missing: local scenarios cannot run\n"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Fake {
        runs: BTreeMap<String, RunOutput>,
        paths: BTreeMap<String, PathBuf>,
        euid: u32,
    }

    impl Fake {
        fn with(mut self, cmdline: &str, success: bool, stdout: &str) -> Self {
            self.runs.insert(cmdline.to_string(), RunOutput { success, stdout: stdout.into(), stderr: String::new() });
            let program = cmdline.split(' ').next().unwrap();
            self.paths.insert(program.to_string(), PathBuf::from(format!("/usr/bin/{program}")));
            self
        }
    }

    impl System for Fake {
        fn run(&self, program: &str, args: &[&str]) -> Option<RunOutput> {
            let key = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
            self.runs.get(&key).cloned()
        }
        fn which(&self, program: &str) -> Option<PathBuf> {
            self.paths.get(program).cloned()
        }
        fn euid(&self) -> u32 {
            self.euid
        }
    }

    #[test]
    fn version_parsing() {
        assert_eq!(parse_python_version("Python 3.11.7\n"), Some((3, 11, 7)));
        assert_eq!(parse_python_version("Python 3.13.0rc1"), Some((3, 13, 0)));
        assert_eq!(parse_python_version("Python 3.9"), Some((3, 9, 0)));
        assert_eq!(parse_python_version("garbage"), None);
        assert_eq!(parse_node_version("v20.20.2\n"), Some((20, 20, 2)));
        assert_eq!(parse_node_version("v18.19.0"), Some((18, 19, 0)));
        assert_eq!(parse_docker_version("Docker version 27.5.1, build 9f9e405").as_deref(), Some("27.5.1"));
        assert_eq!(parse_docker_version("Docker version 20.10.24+dfsg1, build 297e128").as_deref(), Some("20.10.24+dfsg1"));
    }

    #[test]
    fn python_detection() {
        let good = Fake::default().with("python3 --version", true, "Python 3.11.7\n").with("python3 -c import venv, ensurepip", true, "");
        let p = check_python(&good, "python3");
        assert!(p.ok, "{p:?}");
        assert_eq!(p.found, "3.11.7 with venv (/usr/bin/python3)");

        let no_venv =
            Fake::default().with("python3 --version", true, "Python 3.11.2\n").with("python3 -c import venv, ensurepip", false, "");
        let p = check_python(&no_venv, "python3");
        assert!(!p.ok && p.required);
        assert!(p.found.contains("without venv"), "{p:?}");
        assert!(p.fix.contains("apt-get install python3-venv"), "{p:?}");

        let old = Fake::default().with("python3 --version", true, "Python 3.8.10\n");
        let p = check_python(&old, "python3");
        assert!(!p.ok && p.fix.contains(">= 3.9"), "{p:?}");

        let p = check_python(&Fake::default(), "python3");
        assert!(!p.ok && p.found.contains("not found"), "{p:?}");
    }

    #[test]
    fn node_and_npm_detection() {
        let sys = Fake::default().with("node --version", true, "v20.20.2\n").with("npm --version", true, "11.19.1\n");
        assert!(check_node(&sys).ok);
        assert_eq!(check_npm(&sys).found, "11.19.1 (/usr/bin/npm)");
        let old = Fake::default().with("node --version", true, "v12.22.9\n");
        let p = check_node(&old);
        assert!(!p.ok && p.required && p.found.contains("too old"), "{p:?}");
        let bookworm = Fake::default().with("node --version", true, "v18.19.0\n");
        let p = check_node(&bookworm);
        assert!(!p.ok && !p.required && p.found.contains("may work"), "{p:?}");
        let p = check_npm(&Fake::default());
        assert!(!p.ok && p.fix.contains("apt-get install npm"), "{p:?}");
    }

    #[test]
    fn root_detection_is_not_fatal() {
        let root = check_root(&Fake { euid: 0, ..Default::default() });
        assert!(root.ok);
        let user = check_root(&Fake { euid: 1000, ..Default::default() });
        assert!(!user.ok && !user.required);
        assert_eq!(user.found, "uid 1000");
        assert!(all_required_ok(&[user]));
    }

    #[test]
    fn docker_and_nextest() {
        let sys = Fake::default().with("docker --version", true, "Docker version 27.5.1, build 9f9e405\n").with(
            "cargo-nextest nextest --version",
            true,
            "cargo-nextest 0.9.100\n",
        );
        assert_eq!(check_docker(&sys).found, "client 27.5.1 (/usr/bin/docker)");
        let d = check_dockerd(&sys);
        assert!(!d.ok && d.fix.contains("docker.io"), "{d:?}");
        assert_eq!(check_nextest(&sys).found, "cargo-nextest 0.9.100");
    }

    #[test]
    fn home_and_env_state() {
        let home = tempfile::tempdir().unwrap();
        let h = check_home(home.path());
        assert!(h.ok, "{h:?}");
        let pins = Pins::parse(Path::new("p.yaml"), "python: {packages: [six]}\nnpm: {packages: []}\n", Path::new(".")).unwrap();
        let e = check_env(home.path(), &pins);
        assert!(e.ok && e.found.starts_with("not installed yet"), "{e:?}");
    }

    #[test]
    fn profile_commands_are_checked() {
        let profile = Profile::parse(Path::new("p.yaml"), "components:\n  culler:\n    command: [/nope/python, -m, x]\n").unwrap();
        let sys = Fake::default();
        let items = doctor_with(
            &sys,
            tempfile::tempdir().unwrap().path(),
            &Pins::parse(Path::new("p"), "python: {packages: []}\nnpm: {packages: []}\n", Path::new(".")).unwrap(),
            Some(&profile),
        );
        let p = items.iter().find(|p| p.name == "profile: culler command").unwrap();
        assert!(!p.ok && p.required && p.fix.contains("components.culler.command"), "{p:?}");
    }

    #[test]
    fn a_missing_kind_image_says_how_to_build_it() {
        let home = tempfile::tempdir().unwrap();
        let pins = Pins::load_default().unwrap();
        let p = check_kind_image(home.path(), &pins);
        assert!(!p.ok && !p.required, "{p:?}");
        assert!(p.found.contains("not built") && p.fix.contains("make kind-image"), "{p:?}");
    }

    #[test]
    fn table_rendering() {
        let items = vec![
            Prerequisite::new("python3", true, "every local scenario").ok("3.11.7 with venv"),
            Prerequisite::new("npm", true, "the proxy").missing("not found", "apt-get install npm"),
            Prerequisite::new("root", false, "disk-full scenarios").missing("uid 1000", "run as root"),
        ];
        let t = render_table(&items);
        let expected = "\
status   prerequisite  found             needed for
ok       python3       3.11.7 with venv  every local scenario
MISSING  npm           not found         the proxy
         fix: apt-get install npm
skip     root          uid 1000          disk-full scenarios
         fix: run as root
1 required prerequisite(s) missing: local scenarios cannot run
";
        assert_eq!(t, expected);
        assert!(!all_required_ok(&items));
        let t = render_table(&items[..1]);
        assert!(t.ends_with("all prerequisites found\n"), "{t}");
        let t = render_table(&[items[0].clone(), items[2].clone()]);
        assert!(t.ends_with("1 optional prerequisite(s) missing: their scenarios are skipped\n"), "{t}");
    }

    #[test]
    #[ignore = "depends on the machine"]
    fn real_doctor_prints() {
        let pins = Pins::load_default().unwrap();
        eprintln!("{}", render_table(&doctor(&pins, None)));
    }
}
