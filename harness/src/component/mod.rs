pub mod command;
pub mod hub_api;
pub mod seed;
pub mod culler;
pub mod proxy;
pub mod hub;
