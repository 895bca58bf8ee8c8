//! The hub stack's images for the kind backend, made here from the pins (no registry is
//! reachable and no base image is pulled): a Debian bookworm root filesystem (mmdebstrap) with
//! Python and Node.js, the pinned Python packages of the local backend (JupyterHub, the idle
//! culler, jupyter-server, the image cleaner) plus the images' own (KubeSpawner) in one venv,
//! and the pinned configurable-http-proxy. One root filesystem serves every component, tagged
//! once per component (`hubchaos/hub:<key>`, `hubchaos/proxy:<key>`, `hubchaos/singleuser:<key>`,
//! `hubchaos/image-cleaner:<key>`): the same layers four times cost nothing, and each chart value
//! names the image of its component as z2jh's do. The key is a hash of the pins and the recipe.
//!
//! Built once (root: mmdebstrap in root mode, chroot; PyPI and npm reachable), checked by
//! running each component's `--version` in the image on the pinned engine, and saved as
//! `$HUBCHAOS_HOME/stack-images/<key>/images.tar` for the nodes' containerd.
//!
//! The build node's docker daemon (the charts' `dind`) has an image of its own,
//! `hubchaos/dind:<key>`: Debian's `docker.io` on a minbase root filesystem of its own (none of
//! the Python or Node.js), saved beside as `dind.tar` and loaded on the build node only, so
//! the hub stack's nodes do not carry a docker engine they never run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::node_image::with_build_engine;
use crate::toolchain::{PackageSpec, Pins};

/// The Debian packages of the root filesystem.
pub const PACKAGES: &[&str] = &["python3", "python3-venv", "nodejs", "ca-certificates", "tini"];
/// The Debian packages of the build node's docker daemon's image (Debian's docker engine, the
/// one the local backend runs).
pub const DIND_PACKAGES: &[&str] = &["docker.io", "tini"];
/// The build node's docker daemon's component (its image `hubchaos/dind:<key>`).
pub const DIND: &str = "dind";

/// The venv every Python component runs from.
pub const VENV: &str = "/opt/hubchaos/venv";
/// The npm prefix of configurable-http-proxy.
pub const NODE_PREFIX: &str = "/opt/hubchaos/node";

/// The components an image is tagged for.
pub const COMPONENTS: &[&str] = &["hub", "proxy", "singleuser", "image-cleaner"];

/// What [`build_rootfs`] does (hashed into the key: change a step, the images are built anew).
pub const RECIPE: &[&str] = &[
    "mmdebstrap bookworm minbase with PACKAGES",
    "a venv at VENV: pip install the python pins (pre-release ones with --pre), then the images' own",
    "npm install --prefix NODE_PREFIX of the npm pins, with the host's npm (pure JavaScript)",
    "PATH: VENV/bin, NODE_PREFIX/node_modules/.bin, then Debian's; ENTRYPOINT tini --",
    "no apt lists, no pip cache, an empty resolv.conf",
    "pip in the chroot trusts the machine's CA bundle (copied in for the build, removed after)",
    "WORKDIR /srv/jupyterhub, owned by uid 1000",
];

/// The images' working directory, owned by [`HUB_UID`]: z2jh's hub image has the same, and its
/// hub config keeps the database (`sqlite:///jupyterhub.sqlite`) and the cookie secret there,
/// relative to it; the charts mount the hub's database volume on it.
pub const WORKDIR: &str = "/srv/jupyterhub";
/// The uid the hub (and, in z2jh, the user servers) run as.
pub const HUB_UID: u32 = 1000;

/// Where the machine's CA bundle is copied in the rootfs while pip runs (the machine may reach
/// PyPI through a proxy whose CA only its own trust store has; the image keeps Debian's).
const BUILD_CA: &str = "/tmp/hubchaos-build-ca.crt";

/// The machine's CA bundle: `PIP_CERT`, `SSL_CERT_FILE`, or Debian's.
fn machine_ca_bundle() -> PathBuf {
    ["PIP_CERT", "SSL_CERT_FILE"]
        .iter()
        .find_map(|k| std::env::var_os(k).map(PathBuf::from).filter(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"))
}

/// A command run in the chroot at `root` with the machine's proxy and index settings but none
/// of its paths (`PIP_FIND_LINKS`, `PIP_CERT` name this machine's files).
fn in_chroot(root: &Path) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(root).env_clear();
    cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").env("HOME", "/root").env("LANG", "C.UTF-8");
    for (k, v) in std::env::vars_os() {
        let name = k.to_string_lossy().to_ascii_lowercase();
        if name.ends_with("_proxy") || ["pip_index_url", "pip_extra_index_url", "pip_default_timeout"].contains(&name.as_str()) {
            cmd.env(k, v);
        }
    }
    cmd.env("PIP_CERT", BUILD_CA);
    cmd
}

/// The image's `PATH`.
pub fn path_env() -> String {
    format!("{VENV}/bin:{NODE_PREFIX}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

/// Every Python package of the images, in install order: the local backend's pins, then the
/// images' own.
fn python_specs(pins: &Pins) -> Vec<PackageSpec> {
    let mut specs = pins.python.packages.clone();
    if let Some(images) = &pins.images {
        specs.extend(images.python.iter().cloned());
    }
    specs
}

/// The cache key: the Python and npm pins (with the images' own), the packages and the recipe.
pub fn key(pins: &Pins) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(&(python_specs(pins), pins.python.pre, &pins.npm)).expect("pins serialise").as_bytes());
    for p in PACKAGES.iter().chain(RECIPE).chain(DIND_PACKAGES) {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// `hubchaos/<component>:<key>` for every component.
pub fn references(key: &str) -> Vec<String> {
    COMPONENTS.iter().map(|c| format!("hubchaos/{c}:{key}")).collect()
}

/// `$HUBCHAOS_HOME/stack-images/<key>/images.tar` (`docker save` of [`references`]).
pub fn tar_path(home: &Path, pins: &Pins) -> PathBuf {
    home.join("stack-images").join(key(pins)).join("images.tar")
}

/// `hubchaos/dind:<key>`.
pub fn dind_reference(key: &str) -> String {
    format!("hubchaos/{DIND}:{key}")
}

/// `$HUBCHAOS_HOME/stack-images/<key>/dind.tar` (`docker save` of [`dind_reference`]).
pub fn dind_tar_path(home: &Path, pins: &Pins) -> PathBuf {
    tar_path(home, pins).with_file_name("dind.tar")
}

/// Why a pin cannot go into an image, if it cannot: a local path or an editable install names
/// a directory of this machine, which the image's pip cannot see.
fn unbakeable(spec: &PackageSpec) -> Option<String> {
    let local = spec.spec.starts_with('/') || spec.spec.starts_with('.') || spec.spec.starts_with("file:");
    (spec.editable || local).then(|| {
        format!(
            "{:?} is a local checkout: an image cannot be built from it here; build your images yourself and name them instead",
            spec.spec
        )
    })
}

fn run(what: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    super::tools::run_step("stack images", what, cmd, log)
}

/// A bookworm minbase root filesystem with `packages` at `root` (removed first).
fn debootstrap(root: &Path, packages: &[&str], what: &str, log: &Path) -> anyhow::Result<()> {
    let mmdebstrap = crate::toolchain::find_program("mmdebstrap").context("no mmdebstrap: apt-get install mmdebstrap (Debian)")?;
    let _ = std::fs::remove_dir_all(root);
    let mut cmd = Command::new(mmdebstrap);
    cmd.args(["--variant=minbase", "--mode=root", &format!("--include={}", packages.join(",")), "bookworm"]).arg(root);
    run(what, &mut cmd, log)
}

/// The root filesystem at `root` left without a resolver or apt lists, packed as `tar`
/// (through a partial file renamed at the end).
fn clean_and_pack(root: &Path, tar: &Path, what: &str, log: &Path) -> anyhow::Result<()> {
    std::fs::write(root.join("etc/resolv.conf"), "")?;
    let _ = std::fs::remove_dir_all(root.join("var/lib/apt/lists"));
    std::fs::create_dir_all(root.join("var/lib/apt/lists"))?;
    let partial = tar.with_extension("tar.partial");
    let mut pack = Command::new("tar");
    pack.arg("-C").arg(root).args(["--numeric-owner", "-cf"]).arg(&partial).arg(".");
    run(what, &mut pack, log)?;
    std::fs::rename(&partial, tar)?;
    Ok(())
}

/// The [`RECIPE`]: the root filesystem at `root` (removed first), packed as `tar`.
fn build_rootfs(pins: &Pins, root: &Path, tar: &Path, log: &Path) -> anyhow::Result<()> {
    let npm = crate::toolchain::find_program("npm").context("no npm on PATH (Debian: apt-get install npm)")?;
    debootstrap(root, PACKAGES, "mmdebstrap bookworm", log)?;
    // pip in the chroot resolves PyPI's name with the machine's resolver, and trusts what the
    // machine trusts.
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).context("copying /etc/resolv.conf into the rootfs")?;
    let ca = machine_ca_bundle();
    std::fs::copy(&ca, root.join(BUILD_CA.trim_start_matches('/'))).with_context(|| format!("copying {} into the rootfs", ca.display()))?;
    run("venv", in_chroot(root).args(["python3", "-m", "venv", VENV]), log)?;
    let pip = format!("{VENV}/bin/pip");
    let specs = python_specs(pins);
    let (pre, plain): (Vec<&PackageSpec>, Vec<&PackageSpec>) = specs.iter().partition(|s| s.pre || pins.python.pre);
    for (list, with_pre) in [(plain, false), (pre, true)] {
        if list.is_empty() {
            continue;
        }
        let mut cmd = in_chroot(root);
        cmd.args([pip.as_str(), "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]);
        if with_pre {
            cmd.arg("--pre");
        }
        cmd.args(list.iter().map(|s| s.spec.as_str()));
        run(&format!("pip install{}", if with_pre { " --pre" } else { "" }), &mut cmd, log)?;
    }
    let prefix = root.join(NODE_PREFIX.trim_start_matches('/'));
    std::fs::create_dir_all(&prefix)?;
    let mut cmd = Command::new(npm);
    cmd.arg("install").arg("--prefix").arg(&prefix).args(["--no-audit", "--no-fund", "--omit=dev"]);
    cmd.args(pins.npm.packages.iter().map(|p| p.spec.as_str()));
    run("npm install", &mut cmd, log)?;
    std::fs::remove_file(root.join(BUILD_CA.trim_start_matches('/')))?;
    let workdir = root.join(WORKDIR.trim_start_matches('/'));
    std::fs::create_dir_all(&workdir)?;
    std::os::unix::fs::chown(&workdir, Some(HUB_UID), Some(HUB_UID)).with_context(|| format!("chown {}", workdir.display()))?;
    clean_and_pack(root, tar, "tar", log)
}

/// The dind image's root filesystem at `root` (removed first), packed as `tar`.
fn build_dind_rootfs(root: &Path, tar: &Path, log: &Path) -> anyhow::Result<()> {
    debootstrap(root, DIND_PACKAGES, "mmdebstrap bookworm (dind)", log)?;
    clean_and_pack(root, tar, "tar (dind)", log)
}

/// What each component's image is checked with after the import: the program it runs, asked
/// for its version (the hub also imports KubeSpawner, which it spawns with on kind).
pub fn smoke_checks() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "hub",
            vec![
                "python3",
                "-c",
                "import jupyterhub, kubespawner, jupyterhub_idle_culler; print(jupyterhub.__version__, kubespawner.__version__)",
            ],
        ),
        ("proxy", vec!["configurable-http-proxy", "--version"]),
        ("singleuser", vec!["jupyter-server", "--version"]),
        ("image-cleaner", vec!["python3", "-c", "import docker_image_cleaner"]),
    ]
}

/// The stack images of `pins` and the dind image (built when missing; root), on the engine at
/// `dockerd`. Returns the saved stack images, their references, and how long the build took
/// (`None`: they were there); the dind image is at [`dind_tar_path`].
pub async fn ensure(home: &Path, pins: &Pins, dockerd: &Path) -> anyhow::Result<(PathBuf, Vec<String>, Option<Duration>)> {
    let out = tar_path(home, pins);
    let key = key(pins);
    let refs = references(&key);
    if out.is_file() && dind_tar_path(home, pins).is_file() {
        return Ok((out, refs, None));
    }
    let started = Instant::now();
    if !out.is_file() {
        build_stack_images(home, pins, dockerd).await?;
    }
    if !dind_tar_path(home, pins).is_file() {
        build_dind_image(home, pins, dockerd).await?;
    }
    // Images of other keys (older pins or recipes) are not used again: only this key's are kept.
    if let Some(all) = out.parent().and_then(Path::parent) {
        for entry in std::fs::read_dir(all).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy() != key && entry.path().join("images.tar").is_file() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok((out, refs, Some(started.elapsed())))
}

/// The dind image: its root filesystem, imported, checked (`dockerd --version`), saved.
async fn build_dind_image(home: &Path, pins: &Pins, dockerd: &Path) -> anyhow::Result<()> {
    let out = dind_tar_path(home, pins);
    let key = key(pins);
    let dir = out.parent().context("images dir")?.to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let (root, rootfs, log) = (dir.join("dind-rootfs"), dir.join("dind-rootfs.tar"), dir.join("build.log"));
    let (r, t, l) = (root.clone(), rootfs.clone(), log.clone());
    let built = tokio::task::spawn_blocking(move || build_dind_rootfs(&r, &t, &l)).await?;
    let _ = std::fs::remove_dir_all(&root);
    built?;
    let (saved, reference, rootfs_tar) = (out.clone(), dind_reference(&key), rootfs.clone());
    let imported = with_build_engine(dockerd, &dir, &format!("stack-images-{key}-dind"), "dind image", move |docker, _| {
        let rootfs_s = rootfs.display().to_string();
        docker.run("import the dind rootfs", &["import", "-c", r#"ENTRYPOINT ["/usr/bin/tini", "--"]"#, &rootfs_s, &reference])?;
        let out = docker.run("check the dind image", &["run", "--rm", "--network", "none", &reference, "dockerd", "--version"])?;
        eprintln!("hubchaos: [stack images] {DIND}: {}", out.lines().last().unwrap_or("ok"));
        save(docker, "save the dind image", std::slice::from_ref(&reference), &saved)
    })
    .await;
    let _ = std::fs::remove_file(&rootfs_tar);
    let _ = std::fs::remove_file(out.with_extension("tar.partial"));
    imported
}

/// `docker save` of `refs` to `saved`, through a partial file renamed at the end (a build cut
/// short leaves no tar that looks whole).
fn save(docker: &super::node_image::Docker, what: &str, refs: &[String], saved: &Path) -> anyhow::Result<()> {
    let partial = saved.with_extension("tar.partial");
    let mut args = vec!["save".to_string(), "-o".into(), partial.display().to_string()];
    args.extend(refs.iter().cloned());
    docker.run(what, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    std::fs::rename(&partial, saved)?;
    Ok(())
}

/// The hub stack's images: the root filesystem, imported, tagged per component, checked, saved.
async fn build_stack_images(home: &Path, pins: &Pins, dockerd: &Path) -> anyhow::Result<()> {
    let out = tar_path(home, pins);
    let key = key(pins);
    let refs = references(&key);
    if let Some(why) = python_specs(pins).iter().chain(&pins.npm.packages).find_map(unbakeable) {
        bail!("the stack images: {why}");
    }
    crate::component::node_disk::requires_root().map_err(|why| anyhow::anyhow!("the stack images {why}"))?;
    let dir = out.parent().context("images dir")?.to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let (root, rootfs, log) = (dir.join("rootfs"), dir.join("rootfs.tar"), dir.join("build.log"));
    let p = pins.clone();
    let (r, t, l) = (root.clone(), rootfs.clone(), log.clone());
    let built = tokio::task::spawn_blocking(move || build_rootfs(&p, &r, &t, &l)).await?;
    // The unpacked tree goes whether the build worked or not (only the tar is kept).
    let _ = std::fs::remove_dir_all(&root);
    built?;
    let (saved, tags, rootfs_tar) = (out.clone(), refs.clone(), rootfs.clone());
    let imported = with_build_engine(dockerd, &dir, &format!("stack-images-{key}"), "stack images", move |docker, _| {
        let (first, rest) = tags.split_first().context("no component")?;
        let env = format!("ENV PATH={}", path_env());
        let workdir = format!("WORKDIR {WORKDIR}");
        let rootfs_s = rootfs.display().to_string();
        docker.run(
            "import the rootfs",
            &["import", "-c", &env, "-c", r#"ENTRYPOINT ["/usr/bin/tini", "--"]"#, "-c", &workdir, &rootfs_s, first],
        )?;
        for r in rest {
            docker.run(&format!("tag {r}"), &["tag", first, r])?;
        }
        for (component, cmd) in smoke_checks() {
            let image = tags.iter().find(|t| t.starts_with(&format!("hubchaos/{component}:"))).context("a component's tag")?;
            let mut args = vec!["run", "--rm", "--network", "none", image.as_str()];
            args.extend(cmd);
            let out = docker.run(&format!("check the {component} image"), &args)?;
            eprintln!("hubchaos: [stack images] {component}: {}", out.lines().last().unwrap_or("ok"));
        }
        save(docker, "save the images", &tags, &saved)
    })
    .await;
    // Only the saved images are kept, whatever happened.
    let _ = std::fs::remove_file(&rootfs_tar);
    let _ = std::fs::remove_file(out.with_extension("tar.partial"));
    imported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins() -> Pins {
        Pins::load_default().unwrap()
    }

    #[test]
    fn one_image_per_component_under_one_key_that_moves_with_the_pins() {
        let p = pins();
        let refs = references(&key(&p));
        assert_eq!(refs.len(), COMPONENTS.len());
        assert!(refs[0].starts_with("hubchaos/hub:") && refs[1].starts_with("hubchaos/proxy:"));
        let mut other = p.clone();
        other.npm.packages[0].spec = "configurable-http-proxy@5.2.0".into();
        assert_ne!(key(&p), key(&other));
        assert_eq!(key(&p), key(&pins()));
    }

    #[test]
    fn the_images_carry_kubespawner_besides_the_local_pins() {
        let specs = python_specs(&pins());
        assert!(specs.iter().any(|s| s.spec.starts_with("jupyterhub==")));
        assert!(specs.iter().any(|s| s.spec.starts_with("jupyterhub-kubespawner==")), "{specs:?}");
    }

    #[test]
    fn a_local_checkout_cannot_be_baked_into_an_image() {
        let spec = |s: &str, editable| PackageSpec { spec: s.into(), name: None, pre: false, editable };
        assert!(unbakeable(&spec("jupyterhub==6.1.1", false)).is_none());
        assert!(unbakeable(&spec("./my-hub", false)).unwrap().contains("local checkout"));
        assert!(unbakeable(&spec("jupyterhub", true)).is_some());
    }
}
