//! The `kind` backend: the tools a kind cluster needs ([`tools`]) and the Kubernetes binaries
//! of its node image ([`kube_build`]) from their Go modules, the engine ([`engine`],
//! [`daemon`]), the node image ([`base_rootfs`], [`node_image`]), the cluster's shape
//! ([`pools`], [`network`]) and life ([`cluster`]), and a kube-rs client of it ([`kube`]).
//! Decisions and measured facts are recorded in `kind/README.md`.

pub mod backend;
pub mod base_rootfs;
pub mod cluster;
pub mod daemon;
pub mod engine;
pub mod kube;
pub mod kube_build;
pub mod network;
pub mod node_image;
pub mod pools;
pub mod stack_image;
pub mod test_image;
pub mod tools;
pub mod watch;

pub use backend::{Kind, KindRun};
