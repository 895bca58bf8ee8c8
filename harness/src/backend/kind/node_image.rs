//! The kind node image, assembled here as kind's own node-image builder would (it fetches
//! every image it does not find from a registry, and none is reachable): the base rootfs
//! ([`super::base_rootfs`]) imported as an image; the control-plane, etcd, coredns and pause
//! images made from the binaries built here and tagged exactly as `kubeadm config images list`
//! names them (pause also as kind's containerd `sandbox_image`); a build container of the base
//! image into which kubeadm, kubelet and kubectl are copied, the images imported into its
//! containerd (kind also labels them pinned; Debian's containerd 1.6 `ctr` has no such flag
//! and its CRI reports no pins, see `backend::kind::pools` on image GC), `/kind/version` written; committed with kind's entrypoint
//! and saved to `$HUBCHAOS_HOME/kind-node/<key>/node.tar`.
//!
//! The build runs on the pinned engine ([`super::engine`]), started as a supervised process of
//! a throwaway local run (its own socket, data root and exec root, a run marker: a killed build
//! is swept like a killed run), stopped and removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::{base_rootfs, engine, kube_build, tools};
use crate::backend::local::spec::RestartPolicy;
use crate::backend::local::supervisor::Supervisor;
use crate::backend::local::sweep::{end_run_processes, RunMarker, SweepReport};
use crate::component::dockerd::DockerdConfig;
use crate::component::node_disk::NodeLayout;
use crate::observe::history::Recorder;
use crate::toolchain::KubePins;

/// Changes of what the assembly does (hashed into the key).
const RECIPE: &str = "v2: base import; scratch images with the binaries in /usr/local/bin (coredns, pause at /); \
                      kube-proxy on the base; images imported (no pin label: ctr 1.6 has none); /kind/version";

/// The image a cluster is created from: `hubchaos/kind-node:<key>`.
pub fn image_ref(pins: &KubePins) -> String {
    format!("hubchaos/kind-node:{}", key(pins))
}

/// The cache key: the base rootfs's key, the pins, the recipe.
pub fn key(pins: &KubePins) -> String {
    let mut h = Sha256::new();
    h.update(base_rootfs::key(pins).as_bytes());
    h.update(pins.hash().as_bytes());
    h.update(RECIPE.as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

/// `$HUBCHAOS_HOME/kind-node/<key>/node.tar` (`docker save` of [`image_ref`]).
pub fn tar_path(home: &Path, pins: &KubePins) -> PathBuf {
    home.join("kind-node").join(key(pins)).join("node.tar")
}

/// One image made from files: `(reference, [(source, path in the image)], entrypoint)`.
struct Scratch {
    reference: String,
    files: Vec<(PathBuf, String)>,
    entrypoint: Option<String>,
}

/// The images kubeadm and kind need, as kubeadm names them.
fn scratch_images(home: &Path, pins: &KubePins, bin: &Path, etcd: &Path, pause: &Path, coredns: &Path) -> Vec<Scratch> {
    let registry = "registry.k8s.io";
    let mut out: Vec<Scratch> = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
        .iter()
        .map(|c| Scratch {
            reference: format!("{registry}/{c}:{}", pins.kubernetes),
            files: vec![(bin.join(c), format!("usr/local/bin/{c}"))],
            entrypoint: None,
        })
        .collect();
    out.push(Scratch {
        reference: format!("{registry}/etcd:{}-0", pins.etcd.trim_start_matches('v')),
        files: vec![(etcd.to_path_buf(), "usr/local/bin/etcd".into())],
        entrypoint: None,
    });
    out.push(Scratch {
        reference: format!("{registry}/coredns/coredns:{}", pins.coredns),
        files: vec![(coredns.to_path_buf(), "coredns".into())],
        entrypoint: Some("/coredns".into()),
    });
    out.push(Scratch {
        reference: format!("{registry}/pause:{}", pins.pause),
        files: vec![(pause.to_path_buf(), "pause".into())],
        entrypoint: Some("/pause".into()),
    });
    let _ = home;
    out
}

/// A tar of `files` (binaries, mode 0755), for `docker import`.
fn scratch_tar(files: &[(PathBuf, String)], to: &Path) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(to)?);
    b.mode(tar::HeaderMode::Deterministic);
    for (src, dest) in files {
        let mut f = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
        let mut h = tar::Header::new_gnu();
        h.set_size(f.metadata()?.len());
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, dest, &mut f)?;
    }
    b.finish()?;
    Ok(())
}

/// The docker CLI against a build's engine; each call timed, its output in the log.
pub(crate) struct Docker {
    cli: PathBuf,
    host: String,
    log: PathBuf,
    /// What is being built, for the progress lines (`kind node image`).
    label: &'static str,
}

impl Docker {
    pub(crate) fn run(&self, what: &str, args: &[&str]) -> anyhow::Result<String> {
        let started = Instant::now();
        let label = self.label;
        eprintln!("hubchaos: [{label}] {what} …");
        let out = Command::new(&self.cli)
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .with_context(|| format!("{what}: running docker"))?;
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        use std::io::Write;
        let _ =
            writeln!(log, "$ docker {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("[{label}] {what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        eprintln!("hubchaos: [{label}] {what}: {:.1} s", started.elapsed().as_secs_f64());
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

const ENTRYPOINT: &str = r#"ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]"#;

/// The node image of `pins` (assembled when missing; root). Returns the saved image and how
/// long the assembly took (`None`: it was there).
pub async fn ensure(home: &Path, pins: &KubePins) -> anyhow::Result<(PathBuf, Option<Duration>)> {
    let out = tar_path(home, pins);
    if out.is_file() {
        return Ok((out, None));
    }
    crate::component::node_disk::requires_root().map_err(|why| anyhow::anyhow!("the kind node image {why}"))?;
    let (h, p) = (home.to_path_buf(), pins.clone());
    let ingredients = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let (bin, _) = kube_build::ensure(&h, &p)?;
        let (etcd, _) = kube_build::ensure_etcd(&h, &p)?;
        let (pause, _) = kube_build::ensure_pause(&h, &p)?;
        let (base, _) = base_rootfs::ensure(&h, &p)?;
        let (dockerd, _) = engine::ensure_engine(&h, &p.engine)?;
        let coredns = tools::node_tools(&p).into_iter().find(|t| t.name == "coredns").context("coredns")?.ensure(&h)?.path;
        Ok((bin, etcd, pause, base, dockerd, coredns))
    })
    .await??;
    let (bin, etcd, pause, base, dockerd, coredns) = ingredients;
    let started = Instant::now();
    let dir = out.parent().context("image dir")?.to_path_buf();
    let tarfile = out.with_extension("tar.partial");
    let (image, base_ref) = (image_ref(pins), format!("hubchaos/kind-base:{}", base_rootfs::key(pins)));
    let pins = pins.clone();
    with_build_engine(&dockerd, &dir, &format!("kind-image-{}", key(&pins)), "kind node image", move |docker, dir| {
        docker.run(
            "import the base rootfs",
            &[
                "import",
                "-c",
                "ENV container=docker",
                "-c",
                "STOPSIGNAL SIGRTMIN+3",
                "-c",
                ENTRYPOINT,
                &base.display().to_string(),
                &base_ref,
            ],
        )?;
        let mut refs = Vec::new();
        for s in scratch_images(dir, &pins, &bin, &etcd, &pause, &coredns) {
            let t = dir.join("scratch.tar");
            scratch_tar(&s.files, &t)?;
            let mut args = vec!["import".to_string(), "-c".into(), "ENV PATH=/usr/local/bin:/usr/bin:/bin".into()];
            if let Some(e) = &s.entrypoint {
                args.extend(["-c".into(), format!(r#"ENTRYPOINT ["{e}"]"#)]);
            }
            args.extend([t.display().to_string(), s.reference.clone()]);
            docker.run(&format!("image {}", s.reference), &args.iter().map(String::as_str).collect::<Vec<_>>())?;
            let _ = std::fs::remove_file(&t);
            refs.push(s.reference);
        }
        // kind's containerd config names pause 3.10 as its sandbox image.
        let pause_ref = format!("registry.k8s.io/pause:{}", pins.pause);
        docker.run("tag pause as kind's sandbox image", &["tag", &pause_ref, "registry.k8s.io/pause:3.10"])?;
        refs.push("registry.k8s.io/pause:3.10".into());
        // kube-proxy needs iptables: the base rootfs with its binary.
        let proxy_ref = format!("registry.k8s.io/kube-proxy:{}", pins.kubernetes);
        docker.run("create the kube-proxy image's container", &["create", "--name", "kube-proxy-build", &base_ref])?;
        docker
            .run("copy kube-proxy", &["cp", &bin.join("kube-proxy").display().to_string(), "kube-proxy-build:/usr/local/bin/kube-proxy"])?;
        docker.run("commit kube-proxy", &["commit", "-c", "ENTRYPOINT []", "kube-proxy-build", &proxy_ref])?;
        docker.run("remove its container", &["rm", "kube-proxy-build"])?;
        refs.push(proxy_ref);
        let images = dir.join("images.tar");
        let mut save = vec!["save", "-o"];
        let images_s = images.display().to_string();
        save.push(&images_s);
        save.extend(refs.iter().map(String::as_str));
        docker.run("save the images", &save)?;
        docker.run(
            "start the build container",
            &["run", "-d", "--privileged", "--name", "node-build", "--entrypoint", "/bin/sleep", &base_ref, "infinity"],
        )?;
        for b in ["kubeadm", "kubelet", "kubectl"] {
            docker.run(&format!("copy {b}"), &["cp", &bin.join(b).display().to_string(), &format!("node-build:/usr/bin/{b}")])?;
        }
        docker.run("copy the images", &["cp", &images_s, "node-build:/kind/images.tar"])?;
        let script = format!(
            "echo {} > /kind/version; (containerd > /tmp/containerd.log 2>&1 &); \
             for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done; \
             ctr -n k8s.io images import --all-platforms --no-unpack --digests /kind/images.tar; \
             ctr -n k8s.io images ls -q; kill $(pidof containerd); rm /kind/images.tar; rm -rf /tmp/*",
            pins.kubernetes
        );
        let listed = docker.run("import the images into the node's containerd", &["exec", "node-build", "/bin/sh", "-ec", &script])?;
        for r in &refs {
            anyhow::ensure!(listed.lines().any(|l| l.trim() == r), "the node's containerd does not list {r}:\n{listed}");
        }
        docker.run("stop the build container", &["stop", "-t", "1", "node-build"])?;
        docker.run("commit the node image", &["commit", "-c", ENTRYPOINT, "-c", "CMD []", "node-build", &image])?;
        docker.run("remove the build container", &["rm", "node-build"])?;
        docker.run("save the node image", &["save", "-o", &tarfile.display().to_string(), &image])?;
        std::fs::rename(&tarfile, dir.join("node.tar"))?;
        let _ = std::fs::remove_file(&images);
        Ok(())
    })
    .await?;
    Ok((out, Some(started.elapsed())))
}

/// Run `build` (blocking: docker CLI calls) against the engine at `dockerd`, started for it as a
/// supervised process of a throwaway local run named `run_name` under `dir/build` (its own
/// socket, data root and exec root, a run marker: a killed build is swept like a killed run),
/// then stopped and removed, whatever `build` did. `build` gets the CLI and `dir`.
pub(crate) async fn with_build_engine<T: Send + 'static>(
    dockerd: &Path,
    dir: &Path,
    run_name: &str,
    label: &'static str,
    build: impl FnOnce(&Docker, &Path) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let run_dir = dir.join("build");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(run_dir.join("logs"))?;
    let run_id = format!("{run_name}-{}", std::process::id());
    let marker = Arc::new(Mutex::new(RunMarker::create(&run_id, &run_dir)?));
    let supervisor = Arc::new(Supervisor::new(&run_id, run_dir.join("logs"), Recorder::in_memory(Instant::now()), marker.clone()));
    let layout = NodeLayout::new(&run_dir, &run_id);
    std::fs::create_dir_all(&layout.data_root)?;
    let mut config = DockerdConfig::with_program(dockerd.to_path_buf(), layout.clone());
    config.restart = RestartPolicy::Never;
    config.log_level = "info".into();
    let result = async {
        config.prepare(&marker)?;
        supervisor.deploy(config.spec(&run_dir)).await?;
        let docker = Docker {
            cli: crate::toolchain::find_program("docker").context("no docker CLI on PATH")?,
            host: format!("unix://{}", layout.docker_socket.display()),
            log: dir.join("build.log"),
            label,
        };
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || build(&docker, &dir)).await?
    }
    .await;
    // Teardown, whatever happened: the engine, what it left, the run's processes, the marker.
    let mut errors = supervisor.teardown().await;
    errors.extend(config.cleanup());
    let mut swept = SweepReport::default();
    end_run_processes(&run_id, &mut swept);
    errors.extend(swept.errors);
    if let Err(e) = marker.lock().unwrap().remove() {
        errors.push(format!("removing the marker: {e}"));
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    let value = result?;
    anyhow::ensure!(errors.is_empty(), "[{label}] built, but its teardown failed: {}", errors.join("; "));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::Pins;

    #[test]
    fn images_are_named_as_kubeadm_lists_them() {
        let p = Pins::load_default().unwrap().kubernetes.unwrap();
        let refs: Vec<String> = scratch_images(Path::new("/h"), &p, Path::new("/b"), Path::new("/e"), Path::new("/p"), Path::new("/c"))
            .into_iter()
            .map(|s| s.reference)
            .collect();
        assert!(refs.contains(&format!("registry.k8s.io/kube-apiserver:{}", p.kubernetes)));
        assert!(refs.contains(&format!("registry.k8s.io/etcd:{}-0", p.etcd.trim_start_matches('v'))));
        assert!(refs.contains(&format!("registry.k8s.io/coredns/coredns:{}", p.coredns)));
        assert!(refs.contains(&format!("registry.k8s.io/pause:{}", p.pause)));
    }

    #[test]
    fn a_scratch_tar_holds_executables_at_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("bin");
        std::fs::write(&src, b"#!/bin/sh\n").unwrap();
        let t = dir.path().join("x.tar");
        scratch_tar(&[(src, "usr/local/bin/etcd".into())], &t).unwrap();
        let mut a = tar::Archive::new(std::fs::File::open(&t).unwrap());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("usr/local/bin/etcd"));
        assert_eq!(e.header().mode().unwrap(), 0o755);
    }
}
