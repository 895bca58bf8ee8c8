//! Reports: the run dir (with a `latest` link), `summary.md`, and later the plots.

pub mod plot;
pub mod run_dir;
pub mod slopes;
pub mod summary;
pub mod table;
