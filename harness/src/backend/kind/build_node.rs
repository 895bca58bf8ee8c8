//! The build node on kind: the charts' docker daemon (`dind`, the binderhub chart's way) and
//! the real image cleaner beside it, on the ssd pool's node, whose docker data root
//! (`/var/lib/dind`) is a small disk of its own ([`super::pools::DOCKER_DISK_MIB`]): the same
//! node the local backend deploys as processes, for the same scenarios.
//!
//! The harness reaches the node as the local one, through files: the node container's root as
//! this machine sees it (`/proc/<pid>/root`, absolute links inside it resolved by hand:
//! `/var/run` is a link to `/run` there). The daemon's socket for faults, workloads and the
//! recorder; the data root for the disk sampler and fills; and the recorder's listener, which
//! the harness binds in the daemon's socket directory before the chart is installed, so the
//! cleaner's `DOCKER_HOST` (set in `imageCleaner.extraEnv`) reaches the daemon through the
//! recorder and its requests are recorded as on local.
//!
//! Each run starts from an empty data root (what a run before left is removed before the
//! daemon starts, and again at teardown, once its pod is gone).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::backend::KindRun;
use super::pools::{DiskUse, DIND_LIB_DIR, DIND_SOCKET_DIR, DOCKER_DISK_MIB, SSD};
use crate::component::docker_api::DockerApi;
use crate::component::node::NodeOptions;
use crate::component::node_disk::NodePaths;

/// The build node's pool.
pub const BUILD_POOL: &str = SSD;
/// The component names (as on local): the daemon, and the cleaner.
pub const DOCKERD: &str = crate::component::dockerd::DOCKERD;
pub const IMAGE_CLEANER: &str = crate::component::image_cleaner::IMAGE_CLEANER;
/// The recorder's listener for the cleaner, in the daemon's socket directory.
pub const CLEANER_SOCKET_NAME: &str = "hubchaos-image-cleaner.sock";
/// The daemon's socket's name (the charts' `dind.hostSocketName`).
pub const DOCKER_SOCKET_NAME: &str = "docker.sock";
/// How long the daemon gets to answer after its DaemonSet is ready.
const DOCKER_READY_WITHIN: Duration = Duration::from_secs(60);

/// The label selector of a build node component's pods (the charts' `component` labels).
pub fn pod_selector(component: &str) -> Option<String> {
    let label = match component {
        DOCKERD => "image-builder",
        IMAGE_CLEANER => "image-cleaner",
        _ => return None,
    };
    Some(format!("component={label},release={}", super::hub_chart::RELEASE))
}

/// The container of each build node component's pod.
pub fn container_of(component: &str) -> &'static str {
    match component {
        DOCKERD => "dind",
        _ => "image-cleaner-dind",
    }
}

/// Why `node` cannot be the kind build node, if it cannot: its disk is the cluster's, made
/// with the cluster (its size, default inodes), and the cleaner's settings must be the chart's.
pub fn cannot_be(node: &NodeOptions) -> Option<String> {
    let disk = node.disk;
    if disk.size_bytes != DOCKER_DISK_MIB << 20 || disk.inodes.is_some() {
        return Some(format!(
            "declares a node disk of {} MB{}; kind's build node has the disk made with the cluster ({DOCKER_DISK_MIB} MiB, default inodes)",
            disk.size_bytes >> 20,
            disk.inodes.map(|i| format!(" with {i} inodes")).unwrap_or_default()
        ));
    }
    if let Some(c) = &node.cleaner {
        if c.node_name.is_some() || c.path_to_check.is_some() {
            return Some("its cleaner cordons a node or checks another path: the charts' cleaner on kind does neither".into());
        }
    }
    None
}

/// The node's paths as this machine reaches them through the node container's root.
pub fn paths(node_pid: u32) -> NodePaths {
    let root = PathBuf::from(format!("/proc/{node_pid}/root"));
    // `/var/run` is `/run` in the node: resolved here, as a link inside would be resolved
    // against this machine's root.
    let sockets = root.join(DIND_SOCKET_DIR.replacen("/var/run", "run", 1).trim_start_matches('/'));
    NodePaths {
        docker_socket: sockets.join(DOCKER_SOCKET_NAME),
        cleaner_socket: sockets.join(CLEANER_SOCKET_NAME),
        data_root: root.join(DIND_LIB_DIR.trim_start_matches('/')),
    }
}

/// After the run: the data root emptied (the daemon's pod is gone with the namespace), and the
/// socket directory's sockets and empty directories removed (the recorder's listener; the
/// mount points the kubelet made there for the cleaner, whose `/var/run` it is, as in the
/// binderhub chart).
pub fn cleanup_script() -> String {
    format!(
        "find {DIND_LIB_DIR} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +\n\
         find {DIND_SOCKET_DIR}/ -mindepth 1 -depth \\( -type s -o -type d -empty \\) -delete\n"
    )
}

/// A shell script for the build node before a run: the docker disk is mounted (the cluster was
/// made with it), the socket directory made, and what a run before left removed as
/// [`cleanup_script`] removes it.
pub fn prepare_script() -> String {
    format!(
        "mountpoint -q {DIND_LIB_DIR} || {{ echo 'no disk of its own at {DIND_LIB_DIR}' >&2; exit 3; }}\n\
         mkdir -p {DIND_SOCKET_DIR}\n{}",
        cleanup_script()
    )
}

/// Prepare the build node (bounded): see [`prepare_script`]. A cluster made before the node had
/// its disk is named as such.
pub async fn prepare(run: &KindRun) -> anyhow::Result<()> {
    run.exec_on_node(BUILD_POOL, &prepare_script(), Duration::from_secs(60)).await.map(drop).with_context(|| {
        format!(
            "preparing the build node ({}): a cluster made before its {} disk cannot run node scenarios; \
             `hubchaos cluster down` and the next run makes it again",
            BUILD_POOL,
            DiskUse::Docker.container_path()
        )
    })
}

/// Wait until the daemon answers `_ping` on its socket (bounded).
pub async fn await_docker(api: &DockerApi) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if api.ping().await.is_ok() {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < DOCKER_READY_WITHIN,
            "the build node's docker daemon did not answer within {DOCKER_READY_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::image_cleaner::CleanerOptions;

    #[test]
    fn the_node_is_reached_through_its_containers_root_with_var_run_resolved() {
        let p = paths(4242);
        assert_eq!(p.docker_socket, PathBuf::from("/proc/4242/root/run/dind/docker.sock"));
        assert_eq!(p.cleaner_socket, PathBuf::from("/proc/4242/root/run/dind/hubchaos-image-cleaner.sock"));
        assert_eq!(p.data_root, PathBuf::from("/proc/4242/root/var/lib/dind"));
        // A unix socket path has 107 bytes at most.
        assert!(p.cleaner_socket.as_os_str().len() < 100);
    }

    #[test]
    fn only_a_node_the_build_node_can_be_is_run_there() {
        assert_eq!(cannot_be(&NodeOptions::disk_mb(300).cleaner(CleanerOptions::quick())), None);
        assert!(cannot_be(&NodeOptions::disk_mb(300).inodes(20_000)).unwrap().contains("20000 inodes"));
        assert!(cannot_be(&NodeOptions::disk_mb(64)).unwrap().contains("64 MB"));
        let cordons = CleanerOptions { node_name: Some("n".into()), ..CleanerOptions::quick() };
        assert!(cannot_be(&NodeOptions::disk_mb(300).cleaner(cordons)).unwrap().contains("cordons"));
    }

    #[test]
    fn the_scripts_refuse_a_node_without_its_disk_and_empty_the_data_root() {
        let s = prepare_script();
        assert!(s.starts_with("mountpoint -q /var/lib/dind ||") && s.contains("exit 3"), "{s}");
        assert!(s.contains("find /var/lib/dind -mindepth 1 -maxdepth 1 -exec rm -rf {} +"), "{s}");
        assert!(cleanup_script().contains("find /var/run/dind/ -mindepth 1 -depth \\( -type s -o -type d -empty \\) -delete"));
    }
}
