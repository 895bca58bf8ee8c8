pub mod command;
pub mod hub_api;
pub mod seed;
pub mod culler;
pub mod proxy;
pub mod hub;
pub mod docker_api;
pub mod node_disk;
pub mod dockerd;
pub mod images;
pub mod image_cleaner;
pub mod node;
#[cfg(test)]
mod node_live_tests;
