//! The `kind` backend: the tools a kind cluster needs ([`tools`]) and the Kubernetes binaries
//! of its node image ([`kube_build`]) from their Go modules, the engine ([`engine`],
//! [`daemon`]), the node image ([`base_rootfs`], [`node_image`]), the cluster's shape
//! ([`pools`], [`network`]) and life ([`cluster`]), a kube-rs client of it ([`kube`]), local
//! addresses for its pods' ports ([`port_forward`]), the resources of its pods read from their
//! cgroups ([`cgroups`]); the hub stack's images ([`stack_image`]), its chart installed by helm
//! ([`hub_chart`], [`hub_stack`]) and its logs followed into the run dir ([`log_follow`]).
//! Decisions and measured facts are recorded in `kind/README.md`.

pub mod backend;
pub mod base_rootfs;
pub mod build_node;
pub mod cgroups;
pub mod cluster;
pub mod daemon;
pub mod engine;
pub mod hub_chart;
pub mod hub_stack;
pub mod kube;
pub mod kube_build;
pub mod log_follow;
pub mod network;
pub mod node_image;
pub mod pools;
pub mod port_forward;
pub mod stack_image;
pub mod test_image;
pub mod tools;
pub mod watch;

pub use backend::{Kind, KindRun};
