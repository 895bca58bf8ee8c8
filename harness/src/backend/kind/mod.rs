//! The `kind` backend, as far as it is built: the tools a kind cluster needs ([`tools`]) and
//! the Kubernetes binaries of its node image ([`kube_build`]), from their Go modules. The engine it will run on and the versions it is built from are
//! recorded in `kind/README.md`; the cluster, the node image and the backend itself come next.

pub mod base_rootfs;
pub mod engine;
pub mod kube_build;
pub mod node_image;
pub mod tools;
