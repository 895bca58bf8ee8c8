//! Observation: what the run saw. The history (requests, ops, faults, restarts, snapshots),
//! the recording proxy that produces request records, and the samplers.

pub mod history;
pub mod samples;
pub mod routes;
pub mod recorder;
pub mod prom;
pub mod hub_state;
pub mod procfs;
pub mod residue;
pub mod disk;
pub mod docker;
pub mod logs;
