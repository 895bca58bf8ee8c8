//! hubchaos: replay the incidents of mybinder.org against the real JupyterHub components.
//!
//! See `DESIGN` in the README for the vocabulary; each noun is one module.
#![forbid(unsafe_code)]

pub mod check;
pub mod observe;
