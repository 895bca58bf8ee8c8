//! The kind cluster itself, before anything is installed on it: the pools a z2jh + BinderHub
//! deployment schedules onto, and the kubelet's own defence of a node whose disk fills
//! (2019-03-24: builds on a node pool without local SSD failed with "no space left on
//! device"). Real kubelets, real node disks; run on the kind backend.

use hubchaos::prelude::*;

/// The pools, as the cluster makes them.
const POOLS: [&str; 4] = ["core", "user", SSD, NO_SSD];

/// A scenario on the harness's kind cluster.
pub fn on_the_cluster(area: &'static str, name: &'static str, incident: &'static str) -> Scenario {
    let mut s = Scenario::new(area, name, incident);
    s.needs = Needs { cluster: true, ..Needs::default() };
    s
}

/// Every pool takes pods, a Service reaches its backend through kube-proxy, coredns resolves
/// its name. The no-ssd pool is added first (it starts tainted, as a pool not yet added).
pub fn pools_probed(area: &'static str, name: &'static str, incident: &'static str) -> Scenario {
    let mut s = on_the_cluster(area, name, incident);
    s.faults = vec![Scheduled::new(AddPool::named(NO_SSD), Schedule::throughout())];
    s.workloads = vec![Box::new(PoolProbes {
        pools: POOLS.iter().map(|p| p.to_string()).collect(),
        server_pool: SSD.into(),
        client_pool: "core".into(),
        within: Duration::from_secs(15),
    })];
    s.duration = Duration::from_secs(15);
    s.checks = vec![
        Box::new(OpsSucceed::new("pools", "pod-on-")),
        Box::new(OpsSucceed::new("service", "service")),
        Box::new(OpsSucceed::new("dns", "dns")),
    ];
    s
}

pub fn pools_ready() -> Scenario {
    pools_probed(
        "cluster",
        "pools_ready",
        "Chart PRs are tested on this cluster: before anything is installed, every pool a z2jh + \
         BinderHub deployment schedules onto (core, user, ssd, no-ssd) must take a pod, a Service \
         must reach its backend through kube-proxy and coredns must resolve its name.",
    )
}

/// The no-ssd pool is added and builds fill its small disk; a build on the ssd pool runs
/// throughout. The kubelet must see the pressure, taint the node and evict, in its own words.
pub fn filled_no_ssd(area: &'static str, name: &'static str, incident: &'static str, fill: FillNodeDisk) -> Scenario {
    let mut s = on_the_cluster(area, name, incident);
    s.faults = vec![Scheduled::new(AddPool::named(NO_SSD), Schedule::throughout())];
    s.workloads = vec![Box::new(fill)];
    s.duration = Duration::from_secs(35);
    s.checks = vec![
        Box::new(DiskPressure::on(NO_SSD, Duration::from_secs(30))),
        Box::new(EvictionsCarryReason::on(NO_SSD)),
        Box::new(PoolUntouched::of(SSD)),
    ];
    s.key_figure("disk-pressure:no-ssd", "time_to_disk_pressure_s", "s")
}

pub fn missing_ssd_disk_pressure() -> Scenario {
    filled_no_ssd(
        "node",
        "missing_ssd_disk_pressure",
        "2019-03-24: a node pool without local SSD was added and builds filled its disk; they failed \
         with \"no space left on device\". Here the no-ssd pool is added and its 1.5 GiB disk fills \
         at 60 MiB/s: the kubelet must report DiskPressure, taint the node and evict with its reason, \
         while the ssd pool's build runs on.",
        FillNodeDisk::steady(NO_SSD, SSD),
    )
}
