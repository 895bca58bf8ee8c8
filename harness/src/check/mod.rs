//! Checks: pure functions of a recorded [`History`](crate::observe::history::History), one per
//! file, each unit-tested on synthetic histories.

pub mod verdict;
pub mod rate_ceiling;
pub mod wasted_requests;
pub mod error_responses;
pub mod convergence;
pub mod safety;
pub mod latency;
pub mod recovery;
pub mod restarts;
pub mod leak_slope;
pub mod returns_to_baseline;
pub mod component_up;
pub mod disk_below;
pub mod images_spared;
pub mod no_deletion;
pub mod failure_reason;
#[cfg(test)]
pub(crate) mod testkit;

pub use verdict::{run_check, Check, CheckResult, Verdict};
pub use rate_ceiling::RateCeiling;
pub use wasted_requests::WastedRequests;
pub use error_responses::{ErrorClass, ErrorResponses};
pub use convergence::{Convergence, Direction};
pub use safety::NoProtectedUserHarmed;
pub use latency::LatencyCeiling;
pub use recovery::Recovery;
pub use restarts::Restarts;
pub use leak_slope::LeakSlope;
pub use returns_to_baseline::ReturnsToBaseline;
pub use component_up::ComponentUp;
pub use disk_below::DiskBelow;
pub use images_spared::ImagesSpared;
pub use no_deletion::NoDeletion;
pub use failure_reason::FailureReason;
