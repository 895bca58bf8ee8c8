//! hubchaos: replay the incidents of mybinder.org against the real JupyterHub components.
//!
//! See `DESIGN` in the README for the vocabulary; each noun is one module.
#![forbid(unsafe_code)]

pub mod check;
pub mod observe;
pub mod bench;
pub mod backend;
pub mod paths;
pub mod sweep;
pub mod component;
pub mod env;
pub mod fault;
pub mod probe;
pub mod workload;
