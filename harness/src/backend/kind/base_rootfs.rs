//! The base root filesystem of the kind node image, from Debian bookworm packages and kind's
//! own base-image files, as kind's `images/base/Dockerfile` makes it, with Debian's stand-ins:
//! containerd 1.6 and runc from bookworm (kind's `config.toml` is containerd's version-2
//! format, which 1.6 reads), the CNI plugins of `containernetworking-plugins` linked into
//! `/opt/cni/bin`, and the pinned crictl. kind's files come from the `sigs.k8s.io/kind` module
//! zip (module files lose their mode bits: they are set here as the Dockerfile sets them).
//!
//! Output: `$HUBCHAOS_HOME/kind-base/<key>/rootfs.tar`, the key a hash of the pins and of
//! [`RECIPE`]; built once (needs root: mmdebstrap in root mode, chroot).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::tools::{go_env, node_tools, which_go};
use crate::toolchain::KubePins;

/// The Debian packages of kind's base image that bookworm has, plus Debian's stand-ins for
/// what kind builds itself (containerd, runc, the CNI plugins).
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "containerd",
    "runc",
    "containernetworking-plugins",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "bash",
    "ca-certificates",
    "jq",
    "procps",
];

/// The CNI plugins kind's base image carries (Debian installs them in `/usr/lib/cni`).
pub const CNI_PLUGINS: &[&str] = &["host-local", "loopback", "ptp", "portmap", "bridge"];

/// What [`configure`] does to the rootfs, in order (also hashed into the cache key: change a
/// step, and the rootfs is built anew).
pub const RECIPE: &[&str] = &[
    "copy kind's base files (usr/local/bin and kind/bin 0755, the rest 0644)",
    "containerd.service runs Debian's /usr/bin/containerd",
    "containerd's CRI restricts oom_score_adj to its own (lowering it needs CAP_SYS_RESOURCE)",
    "drop the wants kind drops; journald ReadKMsg=no",
    "enable kubelet, containerd, undo-mount-hacks; mask systemd-binfmt",
    "/etc/containerd/cri-base.json from `ctr oci spec` with kind's createContainer hook, no rlimits",
    "/opt/cni/bin links to Debian's CNI plugins; crictl in /usr/local/bin",
    "/etc/kubernetes/manifests",
];

/// The cache key: pins and recipe.
pub fn key(pins: &KubePins) -> String {
    let mut h = Sha256::new();
    h.update(pins.hash().as_bytes());
    for p in PACKAGES.iter().chain(CNI_PLUGINS).chain(RECIPE) {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// `$HUBCHAOS_HOME/kind-base/<key>/rootfs.tar`.
pub fn tar_path(home: &Path, pins: &KubePins) -> PathBuf {
    home.join("kind-base").join(key(pins)).join("rootfs.tar")
}

/// The directory of kind's base-image files in the pinned kind module.
fn kind_files(home: &Path, pins: &KubePins) -> anyhow::Result<PathBuf> {
    let out = Command::new(which_go()?)
        .args(["mod", "download", "-json", &format!("sigs.k8s.io/kind@{}", pins.kind)])
        .env("GOTOOLCHAIN", "local")
        .envs(go_env(home))
        .output()
        .context("running go mod download")?;
    anyhow::ensure!(out.status.success(), "go mod download sigs.k8s.io/kind@{}: {}", pins.kind, String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let dir = Path::new(info["Dir"].as_str().context("no Dir from go mod download")?).join("images/base/files");
    anyhow::ensure!(dir.is_dir(), "{} is missing from the kind module", dir.display());
    Ok(dir)
}

fn run(what: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    super::tools::run_step("kind base", what, cmd, log)
}

/// Copy `from` (a tree of kind's files) into `root`, directories as needed, files with `mode`
/// chosen by [`mode_for`].
fn copy_tree(from: &Path, root: &Path, rel: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(from.join(rel))? {
        let entry = entry?;
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(root.join(&rel))?;
            copy_tree(from, root, &rel)?;
        } else {
            let to = root.join(&rel);
            let _ = std::fs::remove_file(&to);
            std::fs::copy(entry.path(), &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode_for(&rel)))?;
        }
    }
    Ok(())
}

/// The mode kind's Dockerfile gives a file: programs 0755, everything else 0644.
pub fn mode_for(rel: &Path) -> u32 {
    if rel.starts_with("usr/local/bin") || rel.starts_with("kind/bin") {
        0o755
    } else {
        0o644
    }
}

/// The [`RECIPE`] on a fresh rootfs at `root`.
fn configure(root: &Path, kind_files: &Path, crictl: &Path, log: &Path) -> anyhow::Result<()> {
    copy_tree(kind_files, root, Path::new(""))?;
    let unit = root.join("etc/systemd/system/containerd.service");
    let text = std::fs::read_to_string(&unit)?;
    std::fs::write(&unit, text.replace("ExecStart=/usr/local/bin/containerd", "ExecStart=/usr/bin/containerd"))?;
    // The kubelet gives pod sandboxes oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE,
    // which the node container lacks here (root's bounding set has none), so runc's init dies
    // ("can't get final child's PID from pipe: EOF") unless the CRI keeps scores at or above
    // containerd's own, as kind does for rootless nodes.
    let config = root.join("etc/containerd/config.toml");
    let text = std::fs::read_to_string(&config)?;
    anyhow::ensure!(
        text.contains("restrict_oom_score_adj = false"),
        "kind's containerd config no longer sets restrict_oom_score_adj: check the recipe"
    );
    std::fs::write(&config, text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true"))?;
    let mut sh = Command::new("chroot");
    sh.arg(root).arg("/bin/sh").arg("-ec").arg(
        "find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete; \
         rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
               /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
               /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*; \
         echo ReadKMsg=no >> /etc/systemd/journald.conf; \
         systemctl enable kubelet.service containerd.service undo-mount-hacks.service; \
         systemctl mask systemd-binfmt.service; \
         ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}' \
           | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json; \
         mkdir -p /opt/cni/bin /etc/kubernetes/manifests",
    );
    run("configure (systemd units, cri-base.json)", &mut sh, log)?;
    for p in CNI_PLUGINS {
        let link = root.join("opt/cni/bin").join(p);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(p), &link)?;
        anyhow::ensure!(root.join("usr/lib/cni").join(p).exists(), "Debian's containernetworking-plugins has no {p}");
    }
    std::fs::copy(crictl, root.join("usr/local/bin/crictl"))?;
    Ok(())
}

/// The base rootfs tar of `pins` (built when missing). Returns its path and how long the
/// build took (`None`: it was there).
pub fn ensure(home: &Path, pins: &KubePins) -> anyhow::Result<(PathBuf, Option<Duration>)> {
    let tar = tar_path(home, pins);
    if tar.is_file() {
        return Ok((tar, None));
    }
    crate::component::node_disk::requires_root().map_err(|why| anyhow::anyhow!("the kind base rootfs {why}"))?;
    let mmdebstrap = crate::toolchain::find_program("mmdebstrap").context("no mmdebstrap: apt-get install mmdebstrap (Debian)")?;
    let crictl = node_tools(pins).into_iter().find(|t| t.name == "crictl").context("crictl tool")?.ensure(home)?.path;
    let files = kind_files(home, pins)?;
    let started = Instant::now();
    let dir = tar.parent().context("base dir")?.to_path_buf();
    let root = dir.join("rootfs");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("build.log");
    let mut cmd = Command::new(mmdebstrap);
    cmd.args(["--variant=minbase", "--mode=root", &format!("--include={}", PACKAGES.join(",")), "bookworm"]).arg(&root);
    run("mmdebstrap bookworm", &mut cmd, &log)?;
    configure(&root, &files, &crictl, &log)?;
    let partial = dir.join("rootfs.tar.partial");
    let mut pack = Command::new("tar");
    pack.arg("-C").arg(&root).args(["--numeric-owner", "-cf"]).arg(&partial).arg(".");
    run("tar", &mut pack, &log)?;
    std::fs::rename(&partial, &tar)?;
    std::fs::remove_dir_all(&root).ok();
    Ok((tar, Some(started.elapsed())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::Pins;

    #[test]
    fn programs_are_executable_and_the_rest_is_not() {
        assert_eq!(mode_for(Path::new("usr/local/bin/entrypoint")), 0o755);
        assert_eq!(mode_for(Path::new("kind/bin/mount-product-files.sh")), 0o755);
        assert_eq!(mode_for(Path::new("etc/containerd/config.toml")), 0o644);
        assert_eq!(mode_for(Path::new("kind/README.txt")), 0o644);
    }

    #[test]
    fn the_key_moves_with_the_pins() {
        let p = Pins::load_default().unwrap().kubernetes.unwrap();
        let other = KubePins { kind: "v0.31.0".into(), ..p.clone() };
        assert_ne!(key(&p), key(&other));
        assert_eq!(key(&p), key(&p.clone()));
    }
}
