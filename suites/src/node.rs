//! The node under the hub: its disk and the Docker daemon on it (2019-03-24: a node pool without
//! local SSD filled up and builds failed with "no space left on device").

use hubchaos::prelude::*;

/// A scenario on a node of its own: a loop-mounted disk, a harness-owned dockerd whose data
/// root is on it, and the image cleaner if `options` has one. Needs root (loop mounts) and
/// Debian's docker.io; without them it is skipped with the reason.
pub fn on_a_node(area: &'static str, name: &'static str, incident: &'static str, options: NodeOptions) -> Scenario {
    let mut s = Scenario::new(area, name, incident);
    s.needs = Needs { root: true, docker: true, ..Needs::default() };
    s.deploy = Deployment::node(options);
    // Covers the cleaner's 15 s start bound; one that starts at once logs ~4 of its 5 s cycles.
    s.duration = Duration::from_secs(20);
    s
}

/// A 300 MB node disk filled to the last block with files the cleaner cannot free, and a build
/// node's work on it: an image import every 2 s. Every import must fail, and say why in the
/// daemon's words.
pub fn full_data_root(area: &'static str, name: &'static str, incident: &'static str) -> Scenario {
    let mut s = on_a_node(area, name, incident, NodeOptions::disk_mb(300));
    s.faults = vec![Scheduled::new(FillDisk::blocks(100.0).with_files(), Schedule::throughout())];
    s.workloads = vec![Box::new(ImportImages::new(Duration::from_secs(2), 20 << 20))];
    s.duration = Duration::from_secs(12);
    s.checks = vec![Box::new(FailureReason::no_space())];
    s
}

/// 2019-03-24: a node pool without local SSD; builds failed with "no space left on device".
pub fn disk_full_is_reported() -> Scenario {
    full_data_root(
        "node",
        "disk_full_is_reported",
        "2019-03-24: builds on a node pool without local SSD failed with \"no space left on \
         device\". With a full data root, image imports must fail and the report must say \
         so in those words.",
    )
}
