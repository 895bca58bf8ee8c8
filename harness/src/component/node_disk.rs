//! The "node disk": a real, small filesystem under the harness's dockerd, so that "no space
//! left on device" (2019: a node pool without local SSD) is the kernel's ENOSPC and not a
//! simulation, and so the image cleaner's `statvfs` sees a disk whose size and inode count the
//! scenario chose.
//!
//! How: `truncate` a file in the run dir, `mkfs.ext4 -q -F -m 0 [-N inodes]`, `mount -o loop`
//! it on `<run dir>/node/data-root`. `-m 0`: no blocks reserved for root, so "100 % used" as
//! the cleaner computes it (`1 - f_bavail / f_blocks`) is exactly where dockerd (root) gets
//! ENOSPC; with the default 5 % reserve the two would differ.
//!
//! Leave nothing behind: the mount point is written to the run's marker (and the marker saved)
//! BEFORE `mount` runs, so a run killed at any moment is unmounted by the next run's sweep.
//! [`MountedDisk::unmount`] unmounts (lazily if something still holds it: a container's
//! overlay after a dockerd crash) and removes the file.
//!
//! Needs root (loop devices, mount): [`requires_root`] names the reason for a skip.
//!
//! Paths that sockets live on are kept short ([`NodeLayout::sock_dir`]): a unix socket path is
//! limited to 107 bytes, and dockerd's managed containerd puts its socket at
//! `<exec-root>/containerd/containerd.sock`, which under `target/hubchaos/runs/<id>/<scenario>/`
//! would not fit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};

use crate::backend::local::sweep::RunMarker;

/// Where everything of one run's node lives. Derived from the run dir and the run id alone, so
/// faults, samplers and the sweep find the same paths without being handed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLayout {
    /// `<run dir>/node`.
    pub dir: PathBuf,
    /// `<run dir>/node/data-root.img`: the disk's backing file.
    pub image_file: PathBuf,
    /// `<run dir>/node/data-root`: the mount point and dockerd's `--data-root`.
    pub data_root: PathBuf,
    /// A short per-run directory for sockets and dockerd's exec root:
    /// `/run/hubchaos/<8 hex of sha256(run id)>` (or under the temp dir when /run is not writable).
    pub sock_dir: PathBuf,
    /// `<sock dir>/exec`: dockerd's `--exec-root` (containerd's socket lives under it).
    pub exec_root: PathBuf,
    /// `<sock dir>/docker.sock`: dockerd's own API socket (`-H unix://...`).
    pub docker_socket: PathBuf,
    /// `<sock dir>/cleaner.sock`: the recorder's listener the image cleaner talks to.
    pub cleaner_socket: PathBuf,
    /// `<run dir>/node/docker.pid`: dockerd's `--pidfile`.
    pub pidfile: PathBuf,
}

/// Where a run's node is as faults and workloads reach it: the docker daemon's socket, the
/// recorder's listener the image cleaner talks through, and the data root. The local node's
/// are its [`NodeLayout`]'s; on kind, the build node's, through its container's root
/// (`/proc/<pid>/root/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    pub docker_socket: PathBuf,
    pub cleaner_socket: PathBuf,
    pub data_root: PathBuf,
}

impl From<&NodeLayout> for NodePaths {
    fn from(l: &NodeLayout) -> Self {
        Self { docker_socket: l.docker_socket.clone(), cleaner_socket: l.cleaner_socket.clone(), data_root: l.data_root.clone() }
    }
}

impl NodeLayout {
    pub fn new(run_dir: &Path, run_id: &str) -> Self {
        let base = if Path::new("/run").is_dir() && nix::unistd::access("/run", nix::unistd::AccessFlags::W_OK).is_ok() {
            PathBuf::from("/run/hubchaos")
        } else {
            std::env::temp_dir().join("hubchaos")
        };
        Self::with_sock_base(run_dir, run_id, &base)
    }

    /// As [`new`](Self::new) with the short directory under `base` (tests).
    pub fn with_sock_base(run_dir: &Path, run_id: &str, base: &Path) -> Self {
        let dir = run_dir.join("node");
        let sock_dir = base.join(crate::paths::short_run_id(run_id));
        Self {
            image_file: dir.join("data-root.img"),
            data_root: dir.join("data-root"),
            exec_root: sock_dir.join("exec"),
            docker_socket: sock_dir.join("docker.sock"),
            cleaner_socket: sock_dir.join("cleaner.sock"),
            pidfile: dir.join("docker.pid"),
            sock_dir,
            dir,
        }
    }

    /// The network namespace dockerd bind-mounts under its exec root (and leaves mounted when it
    /// exits): `<exec root>/netns/default`.
    pub fn netns_mount(&self) -> PathBuf {
        self.exec_root.join("netns").join("default")
    }
}

/// Why a node disk cannot be made here, if it cannot: the reason a scenario is skipped with.
pub fn requires_root() -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err("needs root: the node disk is a loop-mounted ext4 file (losetup, mount) under a harness-owned dockerd; run as root or in a root container".into())
    }
}

/// A node disk of a chosen size and inode count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NodeDisk {
    pub size_bytes: u64,
    /// `mkfs.ext4 -N`: how many inodes (ext4 rounds up to fill its inode tables); `None` = the
    /// mkfs default (one per 16 KiB: ~19 000 for 300 MB).
    pub inodes: Option<u64>,
}

impl NodeDisk {
    /// The smallest disk dockerd's overlay2 and a few images fit on comfortably.
    pub const MIN_SIZE: u64 = 64 << 20;

    pub fn of_mb(mb: u64) -> Self {
        Self { size_bytes: mb << 20, inodes: None }
    }

    pub fn with_inodes(mut self, inodes: u64) -> Self {
        self.inodes = Some(inodes);
        self
    }

    /// `mkfs.ext4` argv (after the program).
    pub fn mkfs_args(&self, file: &Path) -> Vec<String> {
        let mut args = vec!["-q".to_string(), "-F".into(), "-m".into(), "0".into()];
        if let Some(n) = self.inodes {
            args.push("-N".into());
            args.push(n.to_string());
        }
        args.push(file.display().to_string());
        args
    }

    /// Make the file, the filesystem, and mount it on `layout.data_root`. The mount is in the
    /// marker (saved) before `mount` runs. Blocking: ~0.1 s for 300 MB.
    pub fn prepare(&self, layout: &NodeLayout, marker: &Mutex<RunMarker>) -> anyhow::Result<MountedDisk> {
        requires_root().map_err(anyhow::Error::msg)?;
        if self.size_bytes < Self::MIN_SIZE {
            bail!("a node disk of {} bytes is too small for dockerd (at least {} MiB)", self.size_bytes, Self::MIN_SIZE >> 20);
        }
        std::fs::create_dir_all(&layout.data_root).with_context(|| format!("creating {}", layout.data_root.display()))?;
        if is_mounted(&layout.data_root) {
            bail!(
                "{} is already a mount point (a previous run in the same dir?): `hubchaos sweep` or umount it",
                layout.data_root.display()
            );
        }
        let file = std::fs::File::create(&layout.image_file).with_context(|| format!("creating {}", layout.image_file.display()))?;
        file.set_len(self.size_bytes)?;
        drop(file);
        run("mkfs.ext4", &self.mkfs_args(&layout.image_file))?;
        {
            let mut m = marker.lock().unwrap();
            m.add_mount(layout.data_root.clone());
            m.add_path_to_remove(layout.image_file.clone());
            m.save().context("saving the run marker before mounting")?;
        }
        let mount_args = ["-o".to_string(), "loop".into(), layout.image_file.display().to_string(), layout.data_root.display().to_string()];
        if let Err(e) = run("mount", &mount_args) {
            let _ = std::fs::remove_file(&layout.image_file);
            return Err(e);
        }
        Ok(MountedDisk { image_file: layout.image_file.clone(), mount_point: layout.data_root.clone(), mounted: true })
    }
}

/// A mounted node disk. [`unmount`](Self::unmount) it at teardown (the runner's cleanup stack);
/// the sweep unmounts it if the run dies first.
#[derive(Debug)]
pub struct MountedDisk {
    pub image_file: PathBuf,
    pub mount_point: PathBuf,
    mounted: bool,
}

impl MountedDisk {
    /// Unmount (everything beneath it first, lazily if busy), then remove the backing file.
    /// Idempotent.
    pub fn unmount(&mut self) -> anyhow::Result<()> {
        if self.mounted {
            let errors = unmount_all_under(&self.mount_point);
            if is_mounted(&self.mount_point) {
                bail!("{} is still mounted: {}", self.mount_point.display(), errors.join("; "));
            }
            self.mounted = false;
        }
        match std::fs::remove_file(&self.image_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("removing {}", self.image_file.display())),
            _ => Ok(()),
        }
    }
}

fn run(program: &str, args: &[String]) -> anyhow::Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program} (is it installed?)"))?;
    if !out.status.success() {
        bail!("{program} {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Mount points from `/proc/self/mounts` (octal escapes such as `\040` decoded).
pub fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    parse_mount_points(&text)
}

fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    text.lines().filter_map(|l| l.split_whitespace().nth(1)).map(|p| PathBuf::from(unescape_mount(p))).collect()
}

fn unescape_mount(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_mounted(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// Every mount point at or beneath `prefix`, deepest first.
pub fn mounts_under(prefix: &Path) -> Vec<PathBuf> {
    select_under(mount_points(), prefix)
}

fn select_under(mut points: Vec<PathBuf>, prefix: &Path) -> Vec<PathBuf> {
    points.retain(|m| m.starts_with(prefix));
    points.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    points.dedup();
    points
}

/// Unmount everything at or beneath `prefix`, deepest first; a busy mount is detached lazily
/// (`umount -l`, which also detaches what is beneath it). Returns the errors.
///
/// Rounds until nothing is left (at most 8): a path can carry stacked mounts (dockerd bind-mounts
/// its data root onto itself when that root's propagation is shared).
pub fn unmount_all_under(prefix: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    for _round in 0..8 {
        let left = mounts_under(prefix);
        if left.is_empty() {
            return Vec::new();
        }
        errors.clear();
        for m in left {
            if !is_mounted(&m) {
                continue; // a lazy unmount above took it along
            }
            let ok = Command::new("umount").arg(&m).output().map(|o| o.status.success()).unwrap_or(false);
            if ok {
                continue;
            }
            match Command::new("umount").arg("-l").arg(&m).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => errors.push(format!("umount -l {}: {}", m.display(), String::from_utf8_lossy(&o.stderr).trim())),
                Err(e) => errors.push(format!("umount -l {}: {e}", m.display())),
            }
        }
    }
    if !mounts_under(prefix).is_empty() && errors.is_empty() {
        errors.push(format!("mounts left under {} after 8 rounds", prefix.display()));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_keeps_socket_paths_short_and_derives_from_the_run() {
        let run_dir = PathBuf::from("/srv/checkout/target/hubchaos/runs/20261122T030000Z-make/local-cleaner-frees_space_over_threshold");
        let a = NodeLayout::with_sock_base(&run_dir, "20261122T030000Z-make-local-cleaner-x-1234", Path::new("/run/hubchaos"));
        let b = NodeLayout::with_sock_base(&run_dir, "20261122T030000Z-make-local-cleaner-x-1234", Path::new("/run/hubchaos"));
        let c = NodeLayout::with_sock_base(&run_dir, "20261122T030000Z-make-local-cleaner-x-1235", Path::new("/run/hubchaos"));
        assert_eq!(a, b);
        assert_ne!(a.sock_dir, c.sock_dir);
        assert_eq!(a.data_root, run_dir.join("node/data-root"));
        // containerd's socket under the exec root must fit in sun_path (107 bytes + NUL).
        let containerd = a.exec_root.join("containerd/containerd.sock");
        assert!(containerd.as_os_str().len() < 100, "{}", containerd.display());
        assert!(a.docker_socket.as_os_str().len() < 100);
        assert_eq!(a.netns_mount(), a.exec_root.join("netns/default"));
    }

    #[test]
    fn mkfs_has_no_root_reserve_and_takes_the_inode_count() {
        let d = NodeDisk::of_mb(300).with_inodes(4096);
        assert_eq!(d.size_bytes, 300 << 20);
        assert_eq!(d.mkfs_args(Path::new("/x.img")), ["-q", "-F", "-m", "0", "-N", "4096", "/x.img"]);
        assert_eq!(NodeDisk::of_mb(300).mkfs_args(Path::new("/x.img")), ["-q", "-F", "-m", "0", "/x.img"]);
    }

    #[test]
    fn mounts_beneath_a_prefix_come_deepest_first_and_escapes_are_decoded() {
        let text = "/dev/vda / ext4 rw 0 0\n/dev/loop0 /r/node/data-root ext4 rw 0 0\noverlay /r/node/data-root/overlay2/x/merged overlay rw 0 0\nnsfs /r/exec/netns/default nsfs rw 0 0\n/dev/loop1 /r/node/with\\040space ext4 rw 0 0\n";
        let points = parse_mount_points(text);
        assert!(points.contains(&PathBuf::from("/r/node/with space")));
        let under = select_under(points, Path::new("/r/node/data-root"));
        assert_eq!(under, [PathBuf::from("/r/node/data-root/overlay2/x/merged"), PathBuf::from("/r/node/data-root")]);
    }

    #[test]
    fn without_root_the_reason_names_the_loop_mount() {
        if nix::unistd::geteuid().is_root() {
            assert!(requires_root().is_ok());
        } else {
            assert!(requires_root().unwrap_err().contains("loop-mounted"));
        }
    }

    /// The real thing: mkfs + loop mount + marker + unmount. Run as root with `--ignored`;
    /// without root or mkfs.ext4 it fails, naming what is missing.
    #[test]
    #[ignore = "needs root and mkfs.ext4 (a loop mount)"]
    fn a_disk_is_in_the_marker_before_it_is_mounted_and_gone_after_unmount() {
        if let Err(why) = requires_root() {
            panic!("this test {why}");
        }
        crate::toolchain::find_program("mkfs.ext4").expect("this test needs mkfs.ext4: apt-get install e2fsprogs");
        let dir = tempfile::tempdir().unwrap();
        let markers = dir.path().join("active");
        let marker = Mutex::new(RunMarker::create_in(&markers, "disk-test", dir.path()).unwrap());
        let layout = NodeLayout::with_sock_base(dir.path(), "disk-test", &dir.path().join("s"));
        let disk = NodeDisk::of_mb(64).with_inodes(2048).prepare(&layout, &marker).unwrap();
        // Unmounted even when an assertion below fails.
        struct Unmount(MountedDisk);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = self.0.unmount();
            }
        }
        let mut disk = Unmount(disk);
        assert!(is_mounted(&layout.data_root));
        let saved: RunMarker = serde_json::from_slice(&std::fs::read(markers.join("disk-test.json")).unwrap()).unwrap();
        assert_eq!(saved.mounts, vec![layout.data_root.clone()]);
        let st = nix::sys::statvfs::statvfs(&layout.data_root).unwrap();
        assert!(st.files() <= 4096, "inodes: {}", st.files());
        // No 5 % root reserve; ext4 still holds back ~2 % (its reserved-clusters pool).
        let held = st.blocks_free() - st.blocks_available();
        assert!(held * 100 <= st.blocks() * 3, "held back {held} of {} blocks", st.blocks());
        disk.0.unmount().unwrap();
        disk.0.unmount().unwrap();
        assert!(!is_mounted(&layout.data_root));
        assert!(!layout.image_file.exists());
    }
}
