//! The cluster's shape: one control plane and four worker pools, as a z2jh + BinderHub
//! deployment has them, and the kind configuration that makes it.
//!
//! - `core` and `user`: labelled `hub.jupyter.org/node-purpose=core|user`, the labels z2jh's
//!   node affinity uses for the hub and for user pods.
//! - `ssd` and `no-ssd`: two build pools (2019-03-24: builds on a pool without local SSD
//!   failed with "no space left on device"). The no-ssd node's containerd snapshots (unpacked
//!   images and every container's writable layer: what the kubelet calls its image
//!   filesystem) live on a small loop-mounted ext4, so that disk really fills.
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
    /// MiB of the loop-mounted disk under the node's containerd snapshots (`None`: the host's disk).
    pub small_disk_mib: Option<u64>,
    /// Starts with `hubchaos.io/pool=<name>:NoSchedule` (a pool not yet added).
    pub starts_tainted: bool,
}

impl Pool {
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
        Pool { name: "core", purpose: Some("core"), small_disk_mib: None, starts_tainted: false },
        Pool { name: "user", purpose: Some("user"), small_disk_mib: None, starts_tainted: false },
        Pool { name: SSD, purpose: None, small_disk_mib: None, starts_tainted: false },
        Pool { name: NO_SSD, purpose: None, small_disk_mib: Some(1536), starts_tainted: true },
    ]
}

/// Where containerd keeps its overlayfs snapshots in the node (kind's containerd config).
pub const SNAPSHOTS_DIR: &str = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";

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
/// CNI (see [`super::network`]), the kubelet settings above, the no-ssd disk mounted from
/// `small_disk_host_path(pool)`.
pub fn kind_config(pools: &[Pool], small_disk_host_path: impl Fn(&Pool) -> String) -> Value {
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
        if p.small_disk_mib.is_some() {
            node["extraMounts"] = json!([{ "hostPath": small_disk_host_path(p), "containerPath": SNAPSHOTS_DIR }]);
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
        let c = kind_config(&pools(), |p| format!("/disks/{}", p.name));
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
    fn only_no_ssd_has_the_small_disk_and_starts_tainted() {
        let c = kind_config(&pools(), |p| format!("/disks/{}", p.name));
        let nodes = c["nodes"].as_array().unwrap();
        for n in &nodes[1..4] {
            assert!(n.get("extraMounts").is_none() && n.get("kubeadmConfigPatches").is_none(), "{n}");
        }
        assert_eq!(nodes[4]["extraMounts"][0], json!({ "hostPath": "/disks/no-ssd", "containerPath": SNAPSHOTS_DIR }));
        let patch = nodes[4]["kubeadmConfigPatches"][0].as_str().unwrap();
        assert!(patch.contains("key: hubchaos.io/pool") && patch.contains("value: no-ssd") && patch.contains("NoSchedule"), "{patch}");
    }

    #[test]
    fn eviction_and_image_gc_are_on_with_absolute_thresholds() {
        let c = kind_config(&pools(), |_| String::new());
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
