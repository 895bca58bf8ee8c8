//! Checks: pure functions of a recorded [`History`](crate::observe::history::History), one per
//! file, each unit-tested on synthetic histories.

pub mod build_outcomes;
pub mod build_start;
pub mod builds_in_flight;
pub mod component_up;
pub mod convergence;
pub mod disk_below;
pub mod error_responses;
pub mod evictions;
pub mod failure_cause;
pub mod failure_reason;
pub mod gauge_settles;
pub mod images_spared;
pub mod latency;
pub mod leak_slope;
pub mod no_deletion;
pub mod node_pressure;
pub mod ops_succeed;
pub mod pool_untouched;
pub mod rate_ceiling;
pub mod recovery;
pub mod restarts;
pub mod returns_to_baseline;
pub mod safety;
pub mod streams_close;
#[cfg(test)]
pub(crate) mod testkit;
pub mod verdict;
pub mod wasted_requests;

pub use build_outcomes::BuildOutcomes;
pub use build_start::BuildStarts;
pub use builds_in_flight::BuildsInFlight;
pub use component_up::ComponentUp;
pub use convergence::{Convergence, Direction};
pub use disk_below::DiskBelow;
pub use error_responses::{ErrorClass, ErrorResponses};
pub use evictions::EvictionsCarryReason;
pub use failure_cause::BuildFailureCause;
pub use failure_reason::FailureReason;
pub use gauge_settles::GaugeSettles;
pub use images_spared::ImagesSpared;
pub use latency::LatencyCeiling;
pub use leak_slope::LeakSlope;
pub use no_deletion::NoDeletion;
pub use node_pressure::DiskPressure;
pub use ops_succeed::OpsSucceed;
pub use pool_untouched::PoolUntouched;
pub use rate_ceiling::RateCeiling;
pub use recovery::Recovery;
pub use restarts::Restarts;
pub use returns_to_baseline::ReturnsToBaseline;
pub use safety::NoProtectedUserHarmed;
pub use streams_close::StreamsClose;
pub use verdict::{run_check, Check, CheckResult, Verdict};
pub use wasted_requests::WastedRequests;
