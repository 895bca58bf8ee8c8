//! The local backend's process recipe: what to run, where, how it says it is ready, and what
//! the supervisor does when it exits. Component modules build one from their settings; the
//! one override function ([`super::overrides::apply`]) edits it; the supervisor runs it.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::local::command::CommandSpec;

/// How a component says it is ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// An HTTP GET on this URL answers with a status below 500 (401/403 mean "up").
    Http { url: String },
    /// An HTTP GET of `path` on a unix socket answers below 500 (dockerd's `/_ping`).
    UnixHttp { socket: PathBuf, path: String },
    /// The process was started (for programs without an endpoint: the culler, the image
    /// cleaner). Whether it stays up is deliberately not the deploy's to judge: a component
    /// that crashes at start (the 2018 cleaner with a bad `DOCKER_HOST`) must show in the
    /// verdict (`component-up`, `restarts`), not turn the run into an errored deploy.
    Running,
}

/// What a supervisor does when a component exits, as a pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart with exponential back-off (0.5 s doubling, capped at 10 s, reset after 30 s up).
    Always,
    /// Leave it dead; the exit is still recorded.
    Never,
}

/// Everything needed to start one component.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// `hub`, `proxy`, `culler`, ...: the chart's `component` label.
    pub name: String,
    pub command: CommandSpec,
    /// Working directory (inside the run dir).
    pub cwd: PathBuf,
    pub readiness: Readiness,
    /// How long readiness may take before the deploy fails.
    pub ready_within: Duration,
    pub restart: RestartPolicy,
}
