//! Reports of a run, from its history and outcome: the run dir and its `latest` link
//! ([`run_dir`]), `summary.md` ([`summary`], with the per-spawn slope table of [`slopes`]), the
//! SVG curves ([`plot`]) and the one-row-per-scenario table of a whole run ([`table`]).

pub mod plot;
pub mod run_dir;
pub mod slopes;
pub mod summary;
pub mod table;
