//! The cluster's shape: one control plane and four worker pools, as a z2jh + BinderHub
//! deployment has them, and the kind configuration that makes it.
//!
//! - `core` and `user`: labelled `hub.jupyter.org/node-purpose=core|user`, the labels z2jh's
//!   node affinity uses for the hub and for user pods.
//! - `ssd` and `no-ssd`: two build pools (2019-03-24: builds on a pool without local SSD
//!   failed with "no space left on device"). The no-ssd node's containerd snapshots (unpacked
//!   images and every container's writable layer: what the kubelet calls its image
//!   filesystem) live on a small loop-mounted ext4, so that disk really fills. The ssd node
//!   has a small disk of its own too, for the build node's docker daemon (the charts' `dind`,
//!   its data root `/var/lib/dind`): what the image cleaner watches and a fill fills.
//! - Every worker carries `hubchaos.io/pool=<pool>`. kind cannot add nodes to a running
//!   cluster, so a pool that "is added" during a scenario starts tainted
//!   `hubchaos.io/pool=<pool>:NoSchedule` and is added by removing the taint. no-ssd starts so.
//!
//! kind turns the kubelet's disk-pressure eviction and image GC off (`evictionHard` at 0%,
//! `imageGCHighThresholdPercent: 100`); the cluster turns eviction back on everywhere with
//! absolute thresholds (a percentage of a shared host disk would put every node under pressure
//! on a fuller machine) and a 10 s pressure transition period (kubelet default: 5 min), so a
//! node that recovered is usable by the next scenario soon after. Image GC is turned back on
//! (85/80 %) on the nodes with a disk of their own only: the others' image filesystem is the
//! machine's disk, which a percentage judges by what else is on it, and containerd 1.6 does
//! not tell the kubelet which images are pinned, so GC there removed the pause image from
//! every worker (seen: the next pods failed to get a sandbox).

use serde_json::{json, Value};

/// The label every worker carries with its pool's name.
pub const POOL_LABEL: &str = "hubchaos.io/pool";
/// The label z2jh selects core and user nodes by.
pub const PURPOSE_LABEL: &str = "hub.jupyter.org/node-purpose";

/// One pool (one kind worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: &'static str,
    /// `hub.jupyter.org/node-purpose`, for core and user.
    pub purpose: Option<&'static str>,
    /// Loop-mounted disks of its own (none: everything on the host's disk).
    pub disks: &'static [PoolDisk],
    /// Starts with `hubchaos.io/pool=<name>:NoSchedule` (a pool not yet added).
    pub starts_tainted: bool,
}

/// What a pool's own disk holds, which says where the node mounts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskUse {
    /// containerd's snapshots: the kubelet's image filesystem.
    Snapshots,
    /// The build node's docker daemon's data root.
    Docker,
}

impl DiskUse {
    /// The mount point in the node.
    pub fn container_path(self) -> &'static str {
        match self {
            DiskUse::Snapshots => SNAPSHOTS_DIR,
            DiskUse::Docker => DIND_LIB_DIR,
        }
    }

    /// Appended to the pool's name for the disk's file and mount point on the host.
    pub fn suffix(self) -> &'static str {
        match self {
            DiskUse::Snapshots => "",
            DiskUse::Docker => "-docker",
        }
    }
}

/// A disk of a pool's own: `mib` of ext4 on a loop device, mounted for `used_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDisk {
    pub used_for: DiskUse,
    pub mib: u64,
}

/// The size of the build node's docker disk: the local backend's node disk (300 MB) as the
/// cleaner scenarios declare it.
pub const DOCKER_DISK_MIB: u64 = 300;

impl Pool {
    /// The kubelet's image filesystem is on a disk of its own (image GC judges only that).
    pub fn has_own_snapshots(&self) -> bool {
        self.disks.iter().any(|d| d.used_for == DiskUse::Snapshots)
    }

    pub fn labels(&self) -> Vec<(&'static str, &'static str)> {
        let mut l = vec![(POOL_LABEL, self.name)];
        if let Some(p) = self.purpose {
            l.push((PURPOSE_LABEL, p));
        }
        l
    }
}

/// The pool of `node` (its `hubchaos.io/pool` label); the control plane is in none.
pub fn pool_of(node: &super::kube::NodeView) -> Option<&str> {
    node.labels.get(POOL_LABEL).map(String::as_str)
}

/// What reports call a node without a pool: the control plane.
pub const CONTROL_PLANE: &str = "control-plane";

/// The no-ssd pool's name.
pub const NO_SSD: &str = "no-ssd";
/// The ssd pool's name.
pub const SSD: &str = "ssd";

/// The four pools, in kind's worker order.
pub fn pools() -> Vec<Pool> {
    vec![
        Pool { name: "core", purpose: Some("core"), disks: &[], starts_tainted: false },
        Pool { name: "user", purpose: Some("user"), disks: &[], starts_tainted: false },
        Pool { name: SSD, purpose: None, disks: &[PoolDisk { used_for: DiskUse::Docker, mib: DOCKER_DISK_MIB }], starts_tainted: false },
        Pool { name: NO_SSD, purpose: None, disks: &[PoolDisk { used_for: DiskUse::Snapshots, mib: 1536 }], starts_tainted: true },
    ]
}

/// Where containerd keeps its overlayfs snapshots in the node (kind's containerd config).
pub const SNAPSHOTS_DIR: &str = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";
/// The build node's docker daemon's data root in the node (the binderhub chart's
/// `dind.hostLibDir` default).
pub const DIND_LIB_DIR: &str = "/var/lib/dind";
/// Where its socket is in the node (`dind.hostSocketDir`): `/var/run` is a link to `/run`.
pub const DIND_SOCKET_DIR: &str = "/var/run/dind";

/// The kubelet settings the cluster runs with (see the module docs), as a kubeadm patch.
pub const KUBELET_EVICTION_ON: &str = "kind: KubeletConfiguration\n\
evictionHard:\n  imagefs.available: \"512Mi\"\n  nodefs.available: \"1Gi\"\n  nodefs.inodesFree: \"5%\"\n  memory.available: \"100Mi\"\n\
evictionPressureTransitionPeriod: 10s\n";

/// Image GC on, for a node with a disk of its own: a `sed` program for the kubelet's config
/// file (kind writes `imageGCHighThresholdPercent: 100` there).
pub const IMAGE_GC_ON_SED: &str = "-e 's/^imageGCHighThresholdPercent:.*/imageGCHighThresholdPercent: 85/' -e 's/^imageGCLowThresholdPercent:.*/imageGCLowThresholdPercent: 80/'";

/// kind's own kubelet settings for the same keys (what `kind-defaults` restores on a node).
pub const KIND_DEFAULT_EVICTION: [(&str, &str); 4] =
    [("imagefs.available", "0%"), ("nodefs.available", "0%"), ("nodefs.inodesFree", "0%"), ("imageGCHighThresholdPercent", "100")];

/// The kind configuration (kind reads JSON as YAML): one control plane, the pools, no default
/// CNI (see [`super::network`]), the kubelet settings above, each pool's own disks mounted
/// from `disk_host_path(pool, disk)`.
pub fn kind_config(pools: &[Pool], disk_host_path: impl Fn(&Pool, &PoolDisk) -> String) -> Value {
    let mut nodes = vec![json!({ "role": "control-plane" })];
    for p in pools {
        let labels: serde_json::Map<String, Value> = p.labels().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut node = json!({ "role": "worker", "labels": labels });
        if p.starts_tainted {
            node["kubeadmConfigPatches"] = json!([format!(
                "kind: JoinConfiguration\nnodeRegistration:\n  taints:\n  - key: {POOL_LABEL}\n    value: {}\n    effect: NoSchedule\n",
                p.name
            )]);
        }
        if !p.disks.is_empty() {
            let mounts: Vec<Value> =
                p.disks.iter().map(|d| json!({ "hostPath": disk_host_path(p, d), "containerPath": d.used_for.container_path() })).collect();
            node["extraMounts"] = json!(mounts);
        }
        nodes.push(node);
    }
    json!({
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {
            "disableDefaultCNI": true,
            "podSubnet": super::network::pod_subnet(),
            "serviceSubnet": super::network::service_subnet(),
        },
        "kubeadmConfigPatches": [KUBELET_EVICTION_ON],
        "nodes": nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_one_control_plane_and_the_four_pools_labelled() {
        let c = kind_config(&pools(), |p, d| format!("/disks/{}{}", p.name, d.used_for.suffix()));
        let nodes = c["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[0]["role"], "control-plane");
        assert_eq!(nodes[1]["labels"][PURPOSE_LABEL], "core");
        assert_eq!(nodes[2]["labels"][PURPOSE_LABEL], "user");
        assert_eq!(nodes[3]["labels"][POOL_LABEL], "ssd");
        assert_eq!(nodes[4]["labels"][POOL_LABEL], "no-ssd");
        assert_eq!(c["networking"]["disableDefaultCNI"], true);
    }

    #[test]
    fn only_no_ssd_has_the_small_snapshots_disk_and_starts_tainted_and_ssd_a_docker_disk() {
        let c = kind_config(&pools(), |p, d| format!("/disks/{}{}", p.name, d.used_for.suffix()));
        let nodes = c["nodes"].as_array().unwrap();
        for n in &nodes[1..4] {
            assert!(n.get("kubeadmConfigPatches").is_none(), "{n}");
        }
        for n in &nodes[1..3] {
            assert!(n.get("extraMounts").is_none(), "{n}");
        }
        assert_eq!(nodes[3]["extraMounts"], json!([{ "hostPath": "/disks/ssd-docker", "containerPath": DIND_LIB_DIR }]));
        assert!(!pools()[2].has_own_snapshots() && pools()[3].has_own_snapshots());
        assert_eq!(nodes[4]["extraMounts"][0], json!({ "hostPath": "/disks/no-ssd", "containerPath": SNAPSHOTS_DIR }));
        let patch = nodes[4]["kubeadmConfigPatches"][0].as_str().unwrap();
        assert!(patch.contains("key: hubchaos.io/pool") && patch.contains("value: no-ssd") && patch.contains("NoSchedule"), "{patch}");
    }

    #[test]
    fn eviction_and_image_gc_are_on_with_absolute_thresholds() {
        let c = kind_config(&pools(), |_, _| String::new());
        let patch = c["kubeadmConfigPatches"][0].as_str().unwrap();
        assert!(patch.starts_with("kind: KubeletConfiguration"));
        for (key, kind_default) in KIND_DEFAULT_EVICTION.iter().filter(|(k, _)| !k.starts_with("imageGC")) {
            let line = patch.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("{key} not set"));
            assert!(!line.contains(kind_default), "{key} left at kind's {kind_default}");
        }
        assert!(patch.contains("imagefs.available: \"512Mi\""), "absolute: {patch}");
        assert!(!patch.contains("imageGC"), "image GC is set per node, not cluster-wide: {patch}");
    }
}
