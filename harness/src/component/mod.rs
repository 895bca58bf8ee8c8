pub mod binderhub;
pub mod culler;
pub mod docker_api;
pub mod dockerd;
pub mod github_api;
pub mod hub;
pub mod hub_api;
pub mod image_cleaner;
pub mod images;
pub mod node;
pub mod node_disk;
#[cfg(test)]
mod node_live_tests;
pub mod proxy;
pub mod sample_repos;
pub mod seed;
