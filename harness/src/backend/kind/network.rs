//! The cluster's network: one docker bridge network of the harness's engine on a /24 the
//! harness chooses, and pod networking inside it.
//!
//! The /24: the first one inside the RFC 1918 block 172/12 (its /16s number 29 to 31) that no
//! route or address of the machine overlaps (read from `/proc/net/route`), so the bridge never shadows a network the
//! machine reaches. Its containers (the kind nodes) and their pods are this project's own
//! test hosts; nothing else is addressed.
//!
//! Pod networking: kind's default CNI (kindnetd) is not available here (no registry, and its
//! module is not served), so each node gets the reference CNI plugins that Debian ships in the
//! node image: `ptp` (a veth per pod, a host route to it) with `host-local` addresses from the
//! node's pod CIDR, no masquerading; and a route on every node to every other node's pod CIDR
//! via that node's address on the bridge. That is what kindnetd does on one L2 network.

use std::net::Ipv4Addr;

use anyhow::Context;
use serde_json::json;

/// The docker network the kind nodes join (`KIND_EXPERIMENTAL_DOCKER_NETWORK`).
pub const NETWORK: &str = "hubchaos-kind";

/// A /24 as its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet24(pub Ipv4Addr);

impl Subnet24 {
    pub fn cidr(&self) -> String {
        format!("{}/24", self.0)
    }
    /// `.1`: the bridge's address on the machine.
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.0.octets();
        Ipv4Addr::new(a, b, c, 1)
    }
    fn overlaps(&self, net: Ipv4Addr, mask: Ipv4Addr) -> bool {
        let (n, m, s) = (u32::from(net), u32::from(mask), u32::from(self.0));
        let m24 = 0xffff_ff00u32;
        // Two prefixes overlap when each agrees with the other under the shorter mask.
        let shorter = m & m24;
        (n & shorter) == (s & shorter)
    }
}

/// Every route of the machine as (destination, mask), from `/proc/net/route` text (hex,
/// little-endian). The default route (mask 0) is left out: it overlaps everything.
pub fn routes(proc_net_route: &str) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            (mask != 0).then(|| (Ipv4Addr::from(dest.swap_bytes()), Ipv4Addr::from(mask.swap_bytes())))
        })
        .collect()
}

/// The first candidate /24 that overlaps none of `taken` (routes, and the networks docker
/// already has).
pub fn choose_subnet(taken: &[(Ipv4Addr, Ipv4Addr)]) -> Option<Subnet24> {
    (29u8..=31)
        .flat_map(|b| (0u8..=255).map(move |c| Subnet24(Ipv4Addr::new(172, b, c, 0))))
        .find(|s| !taken.iter().any(|(n, m)| s.overlaps(*n, *m)))
}

/// The machine's routes now.
pub fn machine_routes() -> anyhow::Result<Vec<(Ipv4Addr, Ipv4Addr)>> {
    Ok(routes(&std::fs::read_to_string("/proc/net/route").context("reading /proc/net/route")?))
}

/// One node's CNI configuration: ptp + host-local on its pod CIDR.
pub fn cni_conflist(pod_cidr: &str) -> String {
    let v = json!({
        "cniVersion": "0.4.0",
        "name": "hubchaos",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": false,
                "mtu": 1500,
                "ipam": { "type": "host-local", "ranges": [[{ "subnet": pod_cidr }]], "routes": [{ "dst": "0.0.0.0/0" }] }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]
    });
    serde_json::to_string_pretty(&v).expect("static JSON")
}

/// Pod and Service ranges (kind's defaults, set explicitly so the node routes below agree).
pub fn pod_subnet() -> String {
    format!("{}/16", Ipv4Addr::new(10, 244, 0, 0))
}
pub fn service_subnet() -> String {
    format!("{}/16", Ipv4Addr::new(10, 96, 0, 0))
}

/// A node's routes beyond its pods and the bridge: the pod and Service ranges unreachable
/// (a ClusterIP without kube-proxy's rules, a pod that does not exist, is refused in the node
/// instead of leaving through the machine, which forwards), and no default route: a node has
/// nothing to reach beyond the bridge.
pub fn closing_routes() -> Vec<String> {
    vec![
        format!("ip route replace unreachable {}", pod_subnet()),
        format!("ip route replace unreachable {}", service_subnet()),
        "ip route replace unreachable default".into(),
    ]
}

/// The routes one node needs: every other node's pod CIDR via that node's address.
pub fn routes_for<'a>(node: &str, nodes: &'a [(String, String, String)]) -> Vec<(&'a str, &'a str)> {
    nodes.iter().filter(|(n, _, _)| n != node).map(|(_, cidr, ip)| (cidr.as_str(), ip.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
br0\t00001DAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    fn routes_are_read_from_proc_net_route_without_the_default() {
        let r = routes(ROUTE);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0], (Ipv4Addr::new(198, 51, 100, 0), Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(r[1].0, Ipv4Addr::new(172, 29, 0, 0));
    }

    #[test]
    fn the_chosen_subnet_overlaps_no_route() {
        let s = choose_subnet(&routes(ROUTE)).unwrap();
        assert_eq!(s, Subnet24(Ipv4Addr::new(172, 29, 1, 0)), "the first /24 is taken by a route");
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 29, 1, 1));
        assert_eq!(s.cidr(), format!("{}/24", Ipv4Addr::new(172, 29, 1, 0)));
        // A /16 route over the first candidates pushes the choice past it.
        let wide = [(Ipv4Addr::new(172, 29, 0, 0), Ipv4Addr::new(255, 255, 0, 0))];
        assert_eq!(choose_subnet(&wide), Some(Subnet24(Ipv4Addr::new(172, 30, 0, 0))));
        // A /12 over all of them leaves nothing.
        assert_eq!(choose_subnet(&[(Ipv4Addr::new(172, 16, 0, 0), Ipv4Addr::new(255, 240, 0, 0))]), None);
    }

    #[test]
    fn each_node_routes_to_every_other_nodes_pods() {
        let node = |n: &str| (n.to_string(), format!("pods-of-{n}"), format!("address-of-{n}"));
        let nodes = vec![node("a"), node("b"), node("c")];
        assert_eq!(routes_for("b", &nodes), vec![("pods-of-a", "address-of-a"), ("pods-of-c", "address-of-c")]);
        let conf: serde_json::Value = serde_json::from_str(&cni_conflist("pods-of-b")).unwrap();
        assert_eq!(conf["plugins"][0]["type"], "ptp");
        assert_eq!(conf["plugins"][0]["ipMasq"], false);
        assert_eq!(conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "pods-of-b");
    }
}
