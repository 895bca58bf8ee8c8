//! The container engine kind runs on: Debian trixie's `docker.io` (dockerd 26), unpacked under
//! `$HUBCHAOS_HOME`, never installed over the system's; and, the same way, trixie's buildx
//! plugin that repo2docker needs for BinderHub's builds.
//!
//! Why this engine (measured, see `kind/README.md`): kind starts its node containers with
//! `--privileged`. Root's capability bounding set on these machines lacks `CAP_SYS_RESOURCE`,
//! and bookworm's dockerd 20.10 then refuses `--privileged`; from engine 23 on a privileged
//! container gets the capabilities the daemon has, so dockerd 26 runs kind's flags unchanged
//! (systemd reaches `running` in the node, its cgroups are writable, a nested container runs).
//!
//! How it is fetched: `apt-get download` through a private sources list, lists and cache
//! under `$HUBCHAOS_HOME/engine/apt` (the system's apt state is not touched), naming the
//! Debian mirror the machine's own apt sources use with the trixie suite (or [`MIRROR_VAR`]'s,
//! on a machine whose apt has no Debian source, such as an Ubuntu CI runner); then `dpkg-deb -x`.
//! The daemon uses the system's containerd and runc (bookworm's), as the spike did.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The Debian suite the engine comes from.
const SUITE: &str = "trixie";
/// The package (its dockerd; the CLI on the machine talks to it).
const PACKAGE: &str = "docker.io";

/// A Debian mirror to fetch from instead of the machine's apt sources' (e.g.
/// `http://deb.debian.org/debian` on an Ubuntu runner, whose sources name Ubuntu's archive).
pub const MIRROR_VAR: &str = "HUBCHAOS_DEBIAN_MIRROR";

/// [`MIRROR_VAR`]'s mirror (`given`) when it names one, else the machine's ([`debian_mirror`]).
fn mirror(given: Option<String>, sources: &[String]) -> Option<String> {
    let given = given.map(|m| m.trim().trim_end_matches('/').to_string()).filter(|m| !m.is_empty());
    given.or_else(|| debian_mirror(sources))
}

/// The Debian mirror of the machine's own apt sources: the first `deb` source of the main
/// archive (not `-security`, `-updates` or `-backports`), from deb822 `.sources` text or a
/// one-line `sources.list`.
pub fn debian_mirror(sources: &[String]) -> Option<String> {
    for text in sources {
        // deb822 stanzas: URIs + Suites.
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
            };
            if let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) {
                if field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb")) && suites.split_whitespace().any(is_main_suite)
                {
                    if let Some(uri) = uris.split_whitespace().next() {
                        return Some(uri.trim_end_matches('/').to_string());
                    }
                }
            }
        }
        // One-line form: `deb [options] URI suite components…`.
        for line in text.lines().map(str::trim).filter(|l| l.starts_with("deb ")) {
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            let words: Vec<&str> = if words.first().is_some_and(|w| w.starts_with('[')) {
                let end = words.iter().position(|w| w.ends_with(']')).unwrap_or(0);
                words[end + 1..].to_vec()
            } else {
                words
            };
            if let [uri, suite, ..] = words.as_slice() {
                if is_main_suite(suite) {
                    return Some(uri.trim_end_matches('/').to_string());
                }
            }
        }
    }
    None
}

fn is_main_suite(suite: &str) -> bool {
    !suite.contains('-') && !suite.is_empty()
}

/// What the machine's apt reads its sources from.
fn system_sources() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        out.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> =
            dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "sources" || x == "list")).collect();
        files.sort();
        out.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    out
}

/// `$HUBCHAOS_HOME/engine/docker-<version>/`: the unpacked package.
pub fn engine_root(home: &Path, version: &str) -> PathBuf {
    home.join("engine").join(format!("docker-{version}"))
}

/// The unpacked dockerd of `version` (e.g. `26.1.5`), fetched and unpacked when missing.
/// Returns its path and how long fetching took (`None`: it was there).
pub fn ensure_engine(home: &Path, version: &str) -> anyhow::Result<(PathBuf, Option<Duration>)> {
    let root = engine_root(home, version);
    let dockerd = root.join("usr/sbin/dockerd");
    let reports = |p: &Path| Command::new(p).arg("--version").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if reports(&dockerd) {
        return Ok((dockerd, None));
    }
    let started = Instant::now();
    unpack_trixie_package(home, PACKAGE, version, &root)?;
    if !reports(&dockerd) {
        bail!("[engine] unpacked {PACKAGE} {version}, but its dockerd does not report {version}");
    }
    eprintln!("hubchaos: [engine] unpacked in {:.1} s: {}", started.elapsed().as_secs_f64(), dockerd.display());
    Ok((dockerd, Some(started.elapsed())))
}

/// The docker buildx CLI plugin of Debian trixie's `docker-buildx` `version` (repo2docker
/// runs `docker buildx build`; bookworm has no buildx), fetched and unpacked under
/// `$HUBCHAOS_HOME/engine/docker-buildx-<version>/` when missing. Returns the plugin binary.
pub fn ensure_buildx(home: &Path, version: &str) -> anyhow::Result<PathBuf> {
    let root = home.join("engine").join(format!("docker-buildx-{version}"));
    let plugin = root.join("usr/libexec/docker/cli-plugins/docker-buildx");
    let works = |p: &Path| Command::new(p).arg("version").output().is_ok_and(|o| o.status.success());
    if works(&plugin) {
        return Ok(plugin);
    }
    unpack_trixie_package(home, "docker-buildx", version, &root)?;
    if !works(&plugin) {
        bail!("[buildx] unpacked docker-buildx {version}, but {} does not run", plugin.display());
    }
    Ok(plugin)
}

/// `apt-get download` `package` `version` from Debian trixie through a private sources list
/// (lists and cache under `$HUBCHAOS_HOME/engine/apt`; the system's apt state is not touched),
/// then `dpkg-deb -x` into `root` (replaced).
fn unpack_trixie_package(home: &Path, package: &str, version: &str, root: &Path) -> anyhow::Result<()> {
    let mirror = mirror(std::env::var(MIRROR_VAR).ok(), &system_sources()).with_context(|| {
        format!("no Debian mirror in the machine's apt sources (/etc/apt): {package} comes from Debian {SUITE}; set {MIRROR_VAR}")
    })?;
    let apt = home.join("engine").join("apt");
    for d in [apt.join("lists/partial"), apt.join("cache/archives/partial"), apt.join("debs")] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let sources = apt.join("sources.list");
    std::fs::write(&sources, format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {SUITE} main\n"))?;
    let opts = [
        format!("-oDir::Etc::SourceList={}", sources.display()),
        "-oDir::Etc::SourceParts=/dev/null".to_string(),
        format!("-oDir::State::Lists={}", apt.join("lists").display()),
        format!("-oDir::Cache={}", apt.join("cache").display()),
    ];
    let apt_get = |args: &[&str], cwd: &Path| -> anyhow::Result<()> {
        let out = Command::new("apt-get").args(&opts).args(args).current_dir(cwd).output().context("running apt-get (Debian's apt)")?;
        if !out.status.success() {
            bail!("[{package}] apt-get {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    };
    eprintln!("hubchaos: [{package}] {version} from Debian {SUITE} …");
    apt_get(&["-qq", "update"], &apt)?;
    let debs = apt.join("debs");
    apt_get(&["-qq", "download", &format!("{package}/{SUITE}")], &debs)?;
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_{version}"))))
        .with_context(|| format!("[{package}] Debian {SUITE} has no {package} {version} (see {}): change the pin", debs.display()))?;
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let out = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root).output().context("running dpkg-deb")?;
    if !out.status.success() {
        bail!("[{package}] dpkg-deb -x {} failed: {}", deb.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_archive_is_found_in_deb822_sources() {
        let text = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(debian_mirror(&[text.to_string()]).as_deref(), Some("http://mirror.invalid/debian"));
    }

    #[test]
    fn security_only_or_source_only_sources_name_no_mirror() {
        let security = "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n";
        let src = "Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n";
        assert_eq!(debian_mirror(&[security.to_string(), src.to_string()]), None);
    }

    #[test]
    fn the_one_line_form_with_options_is_read_too() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian/ bookworm main\n";
        assert_eq!(debian_mirror(&[text.to_string()]).as_deref(), Some("http://mirror.invalid/debian"));
        assert_eq!(debian_mirror(&["deb http://m.invalid/debian bookworm-backports main\n".to_string()]), None);
    }

    #[test]
    fn a_given_mirror_wins_over_the_machines() {
        let ubuntu = "Types: deb\nURIs: http://archive.ubuntu.invalid/ubuntu/\nSuites: noble noble-updates\nComponents: main\n".to_string();
        assert_eq!(
            mirror(Some("http://deb.debian.invalid/debian/".into()), &[ubuntu]).as_deref(),
            Some("http://deb.debian.invalid/debian")
        );
        let debian = "deb http://mirror.invalid/debian bookworm main\n".to_string();
        assert_eq!(mirror(Some(" ".into()), &[debian]).as_deref(), Some("http://mirror.invalid/debian"), "a blank one is none");
    }

    #[test]
    #[ignore = "downloads Debian trixie's docker.io (about 20 MB) through apt; needs apt-get and dpkg-deb"]
    fn the_engine_is_fetched_and_reports_its_version() {
        let home = tempfile::tempdir().unwrap();
        let (dockerd, took) = ensure_engine(home.path(), "26.1.5").unwrap();
        assert!(took.is_some() && dockerd.is_file());
        assert_eq!(ensure_engine(home.path(), "26.1.5").unwrap().1, None, "the second call finds it");
    }
}
