//! User overrides: test your own culler branch, hub build or hub config against the scenarios.
//!
//! A profile is a YAML file given with `--profile FILE` or `HUBCHAOS_PROFILE=FILE` (the flag
//! wins). Every key is optional; unknown keys are errors, reported with the file, the field
//! path and the line, e.g.
//! `profile.yaml: components.culler.argz: unknown field, expected one of command, args,
//! remove_args, env, version (line 4, column 5)`. A bad profile exits with code 2.
//!
//! ```yaml
//! pins:                       # merged into fixtures/pins.yaml (see toolchain::PinsOverride)
//!   python:
//!     packages:
//!       # replaces the base pin of the same package name; others are appended
//!       - "jupyterhub-idle-culler @ git+https://github.com/me/jupyterhub-idle-culler@fix-400"
//!       - { spec: ../jupyterhub, editable: true }   # a local checkout (relative to this file)
//!     pre: false                # pip --pre for the whole list (entries may set `pre: true`)
//!     replace: false            # true: this list replaces the base list instead
//!   npm:
//!     packages: [configurable-http-proxy@4.6.1]
//! components:                 # hub, proxy, culler, dockerd, image-cleaner
//!   culler:
//!     command: ["/home/me/venv/bin/python", "-m", "jupyterhub_idle_culler"]  # program + command args
//!     args: ["--concurrency=5"]         # appended to the scenario's options
//!     remove_args: ["--cull-users"]     # scenario options removed, by key (the part before '=')
//!     env: { JUPYTERHUB_IDLE_CULLER_DEBUG: "1" }
//!     version: "fix-400 branch"         # free text, shown in summary.md and scenario.json
//! hub:
//!   extra_config: |                    # python appended to the generated jupyterhub_config.py
//!     c.JupyterHub.log_level = 'DEBUG'
//! charts:                     # the charts the kind backend installs: jupyterhub
//!   jupyterhub: ../zero-to-jupyterhub-k8s   # a z2jh checkout (its root or its jupyterhub/)
//! ```
//!
//! A component's override is applied with [`ComponentOverride::apply`]: `command` replaces the
//! program and the command arguments ([`CommandSpec::prefix_len`]), then `remove_args`
//! removes scenario options, then `args` are appended (so `remove_args: [--timeout]` plus
//! `args: [--timeout=5]` changes a value), then `env` is merged over the scenario's.
//! A relative path in `command[0]` (`./venv/bin/python`) is resolved against the profile's
//! directory; a bare name (`python3`) is looked up on `PATH` when the component starts.
//!
//! `charts.jupyterhub` is the chart the kind backend installs instead of its reference chart
//! (`kind/charts/jupyterhub`): a z2jh checkout, its root or its `jupyterhub/` directory, relative
//! to the profile's directory; [`Profile::load`] refuses a path that holds no chart. The
//! environment's `HUBCHAOS_CHART_JUPYTERHUB` (which `hubchaos run --chart jupyterhub=PATH` and
//! `make … CHART=PATH` set) wins over it ([`crate::backend::kind::hub_chart::ChartSource::resolve_for`]).
//!
//! `singleuser` is a name a profile may write but nothing would apply, so it is refused rather
//! than silently ignored: single-user servers are started by the hub's spawner from the
//! environment's `jupyter-server` (change its pin under `pins.python.packages`). `binderhub`
//! overrides BinderHub's command line and environment; which BinderHub is installed is
//! `HUBCHAOS_BINDERHUB`'s, and repo2docker's version the `binder:` pins'.
//!
//! This module also holds the YAML loading shared by every config file ([`parse_yaml`],
//! [`ConfigError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::local::command::CommandSpec;
use crate::toolchain::{Pins, PinsOverride};

// ---------------------------------------------------------------------------------------------
// YAML with field paths
// ---------------------------------------------------------------------------------------------

/// A config file that does not parse or validate: which file, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted field path (`components.culler.args[1]`); empty for the document itself.
    pub field: String,
    pub message: String,
    /// 1-based line and column, when known.
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The source line, for display.
    pub source_line: Option<String>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " (line {l}, column {c})")?,
            (Some(l), None) => write!(f, " (line {l})")?,
            _ => {}
        }
        if let (Some(l), Some(src)) = (self.line, &self.source_line) {
            write!(f, "\n  {l:>4} | {src}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// An error found after parsing, at `field`; the line is looked up in `text` by key.
    pub fn at(file: &Path, text: &str, field: &str, message: impl Into<String>) -> Self {
        let line = locate_field(text, field);
        Self {
            file: file.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
            line,
            column: None,
            source_line: line.and_then(|l| source_line(text, l)),
        }
    }
}

fn source_line(text: &str, line: u32) -> Option<String> {
    text.lines().nth(line.checked_sub(1)? as usize).map(|s| s.trim_end().to_string())
}

/// Best-effort line of a dotted field path in YAML block style: each key is searched below
/// the previous one with a deeper indentation. Sequence indices and flow style are skipped.
fn locate_field(text: &str, field: &str) -> Option<u32> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    for seg in field.split('.') {
        let key = seg.split('[').next().unwrap_or(seg);
        if key.is_empty() {
            continue;
        }
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            let t = t.strip_prefix("- ").unwrap_or(t);
            let k = t.strip_prefix(key).map(str::trim_start);
            if k.is_some_and(|rest| rest.starts_with(':')) && min_indent.is_none_or(|m| indent > m) {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        from = i + 1;
        min_indent = Some(indent);
        found = Some(i as u32 + 1);
    }
    found
}

/// Deserialize YAML into `T`, reporting errors with `file`, the field path and the location.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let mut path: Option<String> = None;
    let options = serde_saphyr::Options { with_snippet: false, ..Default::default() };
    let res = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    res.map_err(|e| {
        let raw = raw_message(&e);
        let mut field = path.unwrap_or_default();
        if field == "." {
            field.clear();
        }
        let (field, message) = tidy(field, &raw);
        let loc = e.location();
        let (line, column) = match loc {
            Some(l) => (Some(l.line() as u32), Some(l.column() as u32)),
            None => (locate_field(text, &field), None),
        };
        ConfigError { file: file.to_path_buf(), source_line: line.and_then(|l| source_line(text, l)), field, message, line, column }
    })
}

/// The message of a serde-saphyr error without its location suffix.
fn raw_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    match e.without_snippet() {
        E::Message { msg, .. } => msg.clone(),
        E::Unexpected { expected, .. } => {
            let what = match *expected {
                "sequence start" => "a list",
                "mapping start" => "a mapping",
                "string scalar" => "a string",
                other => other,
            };
            format!("wrong type: expected {what}")
        }
        other => {
            let s = other.to_string();
            match s.rfind(" at line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Rewrite serde's messages into `field: problem` form without backticks.
fn tidy(mut field: String, raw: &str) -> (String, String) {
    let push = |field: &mut String, key: &str| {
        if !(field == key || field.ends_with(&format!(".{key}"))) {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(key);
        }
    };
    let quoted = |s: &str| -> Option<(String, String)> {
        // "`name`, rest" or "`name`"
        let s = s.strip_prefix('`')?;
        let (name, rest) = s.split_once('`')?;
        Some((name.to_string(), rest.trim_start_matches(',').trim().to_string()))
    };
    if let Some((name, rest)) = raw.strip_prefix("unknown field ").and_then(quoted) {
        push(&mut field, &name);
        let mut rest = rest.replace('`', "");
        if let Some(one) = rest.strip_prefix("expected one of ").filter(|r| !r.contains(',')) {
            rest = format!("expected {one}");
        }
        let msg = if rest.is_empty() { "unknown field".to_string() } else { format!("unknown field, {rest}") };
        return (field, msg);
    }
    if let Some((name, _)) = raw.strip_prefix("missing field ").and_then(quoted) {
        push(&mut field, &name);
        return (field, "missing field".to_string());
    }
    if let Some((name, rest)) = raw.strip_prefix("unknown variant ").and_then(quoted) {
        return (field, format!("unknown value `{name}`, {}", rest.replace('`', "")));
    }
    (field, raw.to_string())
}

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

/// A profile could not be loaded. Always a usage error: [`ProfileError::exit_code`] is 2.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{}: cannot read profile: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl ProfileError {
    /// The process exit code for this error (2: bad usage / configuration).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// The components a profile can override (the chart's `component` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentName {
    Hub,
    Proxy,
    Culler,
    Singleuser,
    Dockerd,
    ImageCleaner,
    Binder,
}

impl ComponentName {
    pub const ALL: [ComponentName; 7] = [
        ComponentName::Hub,
        ComponentName::Proxy,
        ComponentName::Culler,
        ComponentName::Singleuser,
        ComponentName::Dockerd,
        ComponentName::ImageCleaner,
        ComponentName::Binder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentName::Hub => "hub",
            ComponentName::Proxy => "proxy",
            ComponentName::Culler => "culler",
            ComponentName::Singleuser => "singleuser",
            ComponentName::Dockerd => "dockerd",
            ComponentName::ImageCleaner => "image-cleaner",
            ComponentName::Binder => crate::component::binderhub::BINDERHUB,
        }
    }

    /// Why a profile may not override this component, for the components nothing applies an
    /// override to; a profile naming them is refused (exit 2) instead of silently doing nothing.
    pub fn not_overridable(self) -> Option<&'static str> {
        match self {
            ComponentName::Singleuser => Some(
                "cannot be overridden: single-user servers are started by the hub's spawner from the environment's \
                 jupyter-server; to test another jupyter-server, change its pin under pins.python.packages \
                 (e.g. \"jupyter-server @ git+https://github.com/me/jupyter_server@my-branch\")",
            ),
            _ => None,
        }
    }

    fn known_list() -> String {
        Self::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ComponentName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown component `{s}`, expected one of {}", Self::known_list()))
    }
}

impl<'de> Deserialize<'de> for ComponentName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through a String, so the field path shows the name (`components.cullr`).
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ComponentName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How one component is started differently from the scenario's definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentOverride {
    /// Replaces the program and its command arguments (argv[0..]), keeps the options.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Options appended after the scenario's.
    #[serde(default)]
    pub args: Vec<String>,
    /// Scenario options removed, matched by key (the part before `=`).
    #[serde(default)]
    pub remove_args: Vec<String>,
    /// Extra environment, over the scenario's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Free text for reports ("my-branch").
    #[serde(default)]
    pub version: Option<String>,
}

impl ComponentOverride {
    /// Apply to a scenario's command: command, then remove_args, then args, then env.
    pub fn apply(&self, cmd: &mut CommandSpec) {
        if let Some((program, rest)) = self.command.as_ref().and_then(|c| c.split_first()) {
            cmd.program = PathBuf::from(program);
            cmd.set_command_args(rest.to_vec());
        }
        for key in &self.remove_args {
            cmd.remove_option(key);
        }
        cmd.args.extend(self.args.iter().cloned());
        cmd.env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// True when it changes nothing about how the component starts.
    pub fn is_noop(&self) -> bool {
        self.command.is_none() && self.args.is_empty() && self.remove_args.is_empty() && self.env.is_empty()
    }
}

/// The charts a profile (or `hubchaos run --chart NAME=PATH`) can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChartName {
    Jupyterhub,
}

impl ChartName {
    pub const ALL: [ChartName; 1] = [ChartName::Jupyterhub];

    pub fn as_str(self) -> &'static str {
        match self {
            ChartName::Jupyterhub => "jupyterhub",
        }
    }

    /// The environment variable that carries this chart to the scenario suite's process.
    pub fn env_var(self) -> &'static str {
        match self {
            ChartName::Jupyterhub => crate::backend::kind::hub_chart::CHART_ENV,
        }
    }

    fn known_list() -> String {
        Self::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ChartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChartName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = if Self::ALL.len() == 1 { "expected" } else { "expected one of" };
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("unknown chart `{s}`, {expected} {}", Self::known_list()))
    }
}

impl<'de> Deserialize<'de> for ChartName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through a String, so the field path shows the name (`charts.binderhub`).
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ChartName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Overrides of the hub's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubOverride {
    /// Python appended to the generated `jupyterhub_config.py`.
    #[serde(default)]
    pub extra_config: Option<String>,
}

/// A loaded profile. See the module docs for the file format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The file it came from (reports show it); `None` for the empty profile.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    #[serde(default)]
    pub pins: PinsOverride,
    #[serde(default)]
    pub components: BTreeMap<ComponentName, ComponentOverride>,
    #[serde(default)]
    pub hub: HubOverride,
    /// Charts the kind backend installs instead of its reference ones (relative paths resolved
    /// against the profile's directory by [`Profile::load`]).
    #[serde(default)]
    pub charts: BTreeMap<ChartName, PathBuf>,
}

impl Profile {
    /// Read, parse and validate a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read { file: path.to_path_buf(), source })?;
        let mut p = Self::parse(path, &text)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        let base = std::path::absolute(&base).unwrap_or(base);
        p.resolve_paths(&base);
        if let Some((field, msg)) = p.path_problems().into_iter().next() {
            return Err(ConfigError::at(path, &text, &field, msg).into());
        }
        p.source = Some(path.to_path_buf());
        Ok(p)
    }

    /// Parse and validate profile text (`file` labels errors; paths are left as written).
    pub fn parse(file: &Path, text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = parse_yaml(file, text)?;
        if let Some((field, msg)) = p.problems().into_iter().next() {
            return Err(ConfigError::at(file, text, &field, msg).into());
        }
        Ok(p)
    }

    /// The profile from `--profile` (`cli`) or else `$HUBCHAOS_PROFILE`; `None` when neither.
    pub fn from_cli_or_env(cli: Option<&Path>) -> Result<Option<Profile>, ProfileError> {
        let env = std::env::var_os("HUBCHAOS_PROFILE").filter(|v| !v.is_empty()).map(PathBuf::from);
        match cli.map(Path::to_path_buf).or(env) {
            Some(p) => Self::load(&p).map(Some),
            None => Ok(None),
        }
    }

    /// The chart the profile names for `name`, if any (as resolved by [`Profile::load`]).
    pub fn chart(&self, name: ChartName) -> Option<&Path> {
        self.charts.get(&name).map(PathBuf::as_path)
    }

    /// The override for one component, if any.
    pub fn component(&self, name: ComponentName) -> Option<&ComponentOverride> {
        self.components.get(&name)
    }

    /// Apply the override of `name` (if any) to `cmd`.
    pub fn apply(&self, name: ComponentName, cmd: &mut CommandSpec) {
        if let Some(o) = self.component(name) {
            o.apply(cmd);
        }
    }

    /// `pins` with this profile's pin overrides.
    pub fn pins(&self, base: &Pins) -> Pins {
        base.merged_with(&self.pins)
    }

    /// What a report says about this profile, one line each: `component: version` for every
    /// component it overrides (the `version` text as written, so a run of a branch says which
    /// branch), then `pin: <spec>` for every package it pins (a pin is how a component's code is
    /// usually swapped), then whether it adds hub config, then `chart <name>: <path>` for every
    /// chart it names. Empty for the empty profile.
    pub fn version_lines(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.components.iter().map(|(name, o)| format!("{name}: {}", o.version.as_deref().unwrap_or("no version given"))).collect();
        out.extend(self.pinned_specs().into_iter().map(|spec| format!("pin: {spec}")));
        if self.hub.extra_config.is_some() {
            out.push("hub: extra_config appended to jupyterhub_config.py".into());
        }
        out.extend(self.charts.iter().map(|(name, path)| format!("chart {name}: {}", path.display())));
        out
    }

    /// The profile for `scenario.json`: its file, each overridden component's version, the
    /// pinned packages, the charts. Override `env` values are left out: they may hold tokens.
    pub fn describe(&self) -> serde_json::Value {
        let versions: BTreeMap<&str, Option<&str>> = self.components.iter().map(|(n, o)| (n.as_str(), o.version.as_deref())).collect();
        serde_json::json!({
            "source": self.source,
            "versions": versions,
            "pins": self.pinned_specs(),
            "hub_extra_config": self.hub.extra_config.is_some(),
            "charts": self.charts,
        })
    }

    /// Every package spec the profile pins, python then npm.
    fn pinned_specs(&self) -> Vec<&str> {
        let python = self.pins.python.iter().flat_map(|p| &p.packages);
        let npm = self.pins.npm.iter().flat_map(|n| &n.packages);
        python.chain(npm).map(|p| p.spec.as_str()).collect()
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.pins.resolve_paths(base);
        for o in self.components.values_mut() {
            if let Some(program) = o.command.as_mut().and_then(|c| c.first_mut()) {
                if program.starts_with("./") || program.starts_with("../") {
                    *program = base.join(&*program).to_string_lossy().into_owned();
                }
            }
        }
        for path in self.charts.values_mut() {
            if path.is_relative() && !path.as_os_str().is_empty() {
                // `components` drops the `.` of `./z2jh`, so messages name `<dir>/z2jh`.
                *path = base.join(&*path).components().collect();
            }
        }
    }

    /// Problems of the paths as resolved, which only a loaded profile has: a chart that is not
    /// there. As (field path, message).
    fn path_problems(&self) -> Vec<(String, String)> {
        self.charts
            .iter()
            .filter_map(|(name, path)| crate::backend::kind::hub_chart::chart_dir(path).err().map(|e| (format!("charts.{name}"), e)))
            .collect()
    }

    /// Problems a parser cannot see, as (field path, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = self.pins.problems("pins.");
        for (name, o) in &self.components {
            let at = format!("components.{name}");
            if let Some(why) = name.not_overridable() {
                out.push((at, why.into()));
                continue;
            }
            match &o.command {
                Some(c) if c.is_empty() || c[0].trim().is_empty() => {
                    out.push((format!("{at}.command"), "must name a program: [\"/path/to/program\", args…]".into()))
                }
                _ => {}
            }
            for (i, a) in o.remove_args.iter().enumerate() {
                if a.trim().is_empty() {
                    out.push((format!("{at}.remove_args[{i}]"), "empty option key".into()));
                }
            }
            for k in o.env.keys() {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    out.push((format!("{at}.env"), format!("invalid variable name `{k}`")));
                }
            }
        }
        for (name, path) in &self.charts {
            if path.as_os_str().is_empty() {
                out.push((format!("charts.{name}"), format!("empty path: {}", crate::backend::kind::hub_chart::WHAT_TO_GIVE)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, ProfileError> {
        Profile::parse(Path::new("profile.yaml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const FULL: &str = r#"
pins:
  python:
    packages:
      - "jupyterhub-idle-culler @ git+https://github.com/me/jupyterhub-idle-culler@fix"
      - {spec: ./culler, editable: true}
    pre: true
  npm:
    packages: [configurable-http-proxy@4.6.1]
    replace: true
components:
  culler:
    command: ["/opt/py/bin/python", "-m", "jupyterhub_idle_culler"]
    args: ["--concurrency=5"]
    remove_args: ["--cull-users"]
    env: { KEY: VALUE, N: 1 }
    version: "my-branch"
  hub:
    version: "6.1.1+patch"
hub:
  extra_config: |
    c.JupyterHub.log_level = 'DEBUG'
charts:
  jupyterhub: ../zero-to-jupyterhub-k8s
"#;

    #[test]
    fn full_example_parses() {
        let p = parse(FULL).unwrap();
        let c = p.component(ComponentName::Culler).unwrap();
        assert_eq!(c.command.as_ref().unwrap()[0], "/opt/py/bin/python");
        assert_eq!(c.env["N"], "1");
        assert_eq!(c.version.as_deref(), Some("my-branch"));
        assert_eq!(p.components[&ComponentName::Hub].version.as_deref(), Some("6.1.1+patch"));
        assert!(p.components[&ComponentName::Hub].is_noop());
        assert_eq!(p.hub.extra_config.as_deref(), Some("c.JupyterHub.log_level = 'DEBUG'\n"));
        let py = p.pins.python.as_ref().unwrap();
        assert_eq!(py.pre, Some(true));
        assert!(py.packages[1].editable);
        assert!(p.pins.npm.as_ref().unwrap().replace);
        assert_eq!(p.chart(ChartName::Jupyterhub), Some(Path::new("../zero-to-jupyterhub-k8s")));
    }

    #[test]
    fn module_doc_example_parses() {
        let doc = include_str!("profile.rs");
        let yaml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
            .collect();
        assert!(yaml.contains("components:"));
        parse(&yaml).unwrap();
    }

    #[test]
    fn empty_profile_is_default() {
        assert_eq!(parse("").unwrap(), Profile::default());
        assert_eq!(parse("# nothing\n").unwrap(), Profile::default());
    }

    #[test]
    fn unknown_override_field_names_path_and_choices() {
        let e = err("components:\n  culler:\n    argz: [x]\n");
        assert!(
            e.starts_with(
                "profile.yaml: components.culler.argz: unknown field, expected one of command, args, remove_args, env, version (line 3, column 5)"
            ),
            "{e}"
        );
        assert!(e.contains("   3 |     argz: [x]"), "{e}");
    }

    #[test]
    fn unknown_top_level_and_nested_fields() {
        let e = err("component: {}\n");
        assert!(e.starts_with("profile.yaml: component: unknown field, expected one of pins, components, hub"), "{e}");
        let e = err("hub:\n  extra_conf: x\n");
        assert!(e.starts_with("profile.yaml: hub.extra_conf: unknown field, expected extra_config"), "{e}");
        let e = err("pins:\n  python:\n    packages: []\n    prerelease: true\n");
        assert!(e.starts_with("profile.yaml: pins.python.prerelease: unknown field"), "{e}");
        let e = err("pins:\n  npm:\n    pre: true\n");
        assert!(e.starts_with("profile.yaml: pins.npm.pre: unknown field, expected one of packages, replace"), "{e}");
    }

    #[test]
    fn unknown_component_lists_known_ones() {
        let e = err("components:\n  cullr:\n    args: []\n");
        assert!(
            e.starts_with(
                "profile.yaml: components.cullr: unknown component `cullr`, expected one of hub, proxy, culler, singleuser, dockerd, image-cleaner, binderhub"
            ),
            "{e}"
        );
        assert!(e.contains("(line 2)"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = err("components:\n  culler:\n    args: --x=1\n");
        assert!(e.starts_with("profile.yaml: components.culler.args: wrong type: expected a list"), "{e}");
        let e = err("components:\n  culler:\n    args: [a, [b]]\n");
        assert!(e.starts_with("profile.yaml: components.culler.args[1]: wrong type: expected a string"), "{e}");
        let e = err("components: [culler]\n");
        assert!(e.starts_with("profile.yaml: components: wrong type: expected a mapping"), "{e}");
        let e = err("pins:\n  python:\n    pre: perhaps\n");
        assert!(e.starts_with("profile.yaml: pins.python.pre: "), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = err("components:\n  culler: [\n");
        assert!(e.starts_with("profile.yaml: "), "{e}");
        assert!(e.contains("line "), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let e = err("components:\n  culler:\n    command: []\n");
        assert!(e.starts_with("profile.yaml: components.culler.command: must name a program"), "{e}");
        assert!(e.contains("(line 3)"), "{e}");
        let e = err("components:\n  proxy:\n    remove_args: [\"\"]\n");
        assert!(e.starts_with("profile.yaml: components.proxy.remove_args[0]: empty option key"), "{e}");
        let e = err("components:\n  hub:\n    env: {\"A=B\": x}\n");
        assert!(e.starts_with("profile.yaml: components.hub.env: invalid variable name"), "{e}");
        let e = err("pins:\n  python:\n    packages: [\"\"]\n");
        assert!(e.starts_with("profile.yaml: pins.python.packages[0].spec: empty package specifier"), "{e}");
    }

    #[test]
    fn singleuser_override_is_refused_pointing_at_the_pin() {
        let e = parse("components:\n  culler:\n    args: [--x]\n  singleuser:\n    args: [--debug]\n").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(e.starts_with("profile.yaml: components.singleuser: cannot be overridden: "), "{e}");
        assert!(e.contains("change its pin under pins.python.packages"), "{e}");
        assert!(e.contains("(line 4)"), "{e}");
        // Even a version label alone: it would claim a server build the run did not use.
        let e = err("components:\n  singleuser:\n    version: mine\n");
        assert!(e.starts_with("profile.yaml: components.singleuser: cannot be overridden"), "{e}");
    }

    #[test]
    fn binderhub_can_be_overridden_under_its_component_name() {
        let p = parse("components:\n  binderhub:\n    env: {A: b}\n").unwrap();
        assert_eq!(p.component(ComponentName::Binder).map(|o| o.env["A"].as_str()), Some("b"));
        assert!(err("components:\n  binder:\n    env: {A: b}\n").contains("unknown component `binder`"));
    }

    #[test]
    fn every_other_component_can_be_overridden() {
        for c in ComponentName::ALL.into_iter().filter(|c| c.not_overridable().is_none()) {
            parse(&format!("components:\n  {c}:\n    args: [--x]\n")).unwrap();
        }
        assert_eq!(ComponentName::ALL.iter().filter(|c| c.not_overridable().is_some()).count(), 1);
    }

    #[test]
    fn version_lines_name_components_pins_and_hub_config() {
        assert!(Profile::default().version_lines().is_empty());
        let p = parse(FULL).unwrap();
        assert_eq!(
            p.version_lines(),
            [
                "hub: 6.1.1+patch",
                "culler: my-branch",
                "pin: jupyterhub-idle-culler @ git+https://github.com/me/jupyterhub-idle-culler@fix",
                "pin: ./culler",
                "pin: configurable-http-proxy@4.6.1",
                "hub: extra_config appended to jupyterhub_config.py",
                "chart jupyterhub: ../zero-to-jupyterhub-k8s",
            ]
        );
        let p = parse("components:\n  proxy:\n    args: [--x]\n").unwrap();
        assert_eq!(p.version_lines(), ["proxy: no version given"]);
    }

    #[test]
    fn describe_has_source_versions_and_pins_but_no_env() {
        let mut p = parse(FULL).unwrap();
        p.source = Some(PathBuf::from("mine.yaml"));
        let d = p.describe();
        assert_eq!(d["source"], "mine.yaml");
        assert_eq!(d["versions"]["culler"], "my-branch");
        assert_eq!(d["versions"]["hub"], "6.1.1+patch");
        assert_eq!(d["pins"][2], "configurable-http-proxy@4.6.1");
        assert_eq!(d["hub_extra_config"], true);
        assert_eq!(d["charts"]["jupyterhub"], "../zero-to-jupyterhub-k8s");
        assert!(!d.to_string().contains("VALUE"), "{d}");
        let empty = Profile::default().describe();
        assert_eq!(empty["source"], serde_json::Value::Null);
        assert_eq!(empty["versions"], serde_json::json!({}));
        assert_eq!(empty["charts"], serde_json::json!({}));
    }

    #[test]
    fn errors_exit_with_2() {
        let e = parse("nope: 1\n").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Profile::load(Path::new("/nonexistent/profile.yaml")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("/nonexistent/profile.yaml: cannot read profile"), "{e}");
    }

    #[test]
    fn load_resolves_relative_paths_and_records_source() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yaml");
        std::fs::write(
            &f,
            "pins:\n  python:\n    packages: [{spec: ../culler, editable: true}]\ncomponents:\n  culler:\n    command: [./venv/bin/python, -m, jupyterhub_idle_culler]\n",
        )
        .unwrap();
        let p = Profile::load(&f).unwrap();
        assert_eq!(p.source.as_deref(), Some(f.as_path()));
        let parent = dir.path().parent().unwrap();
        assert_eq!(p.pins.python.as_ref().unwrap().packages[0].spec, parent.join("culler").to_string_lossy());
        assert_eq!(
            p.component(ComponentName::Culler).unwrap().command.as_ref().unwrap()[0],
            dir.path().join("./venv/bin/python").to_string_lossy()
        );
    }

    #[test]
    fn unknown_chart_lists_the_known_ones() {
        let e = err("charts:\n  binderhub: ../binderhub\n");
        assert!(e.starts_with("profile.yaml: charts.binderhub: unknown chart `binderhub`, expected jupyterhub"), "{e}");
        assert!(e.contains("(line 2"), "{e}");
        let e = err("charts:\n  jupyterhub: \"\"\n");
        assert!(e.starts_with("profile.yaml: charts.jupyterhub: empty path: give a z2jh checkout"), "{e}");
        let e = err("charts: ../z2jh\n");
        assert!(e.starts_with("profile.yaml: charts: wrong type: expected a mapping"), "{e}");
        for name in ChartName::ALL {
            assert_eq!(name.as_str().parse::<ChartName>().unwrap(), name);
        }
    }

    #[test]
    fn load_resolves_a_chart_against_the_profile_and_refuses_one_that_is_not_there() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        std::fs::create_dir_all(dir.path().join("z2jh/jupyterhub")).unwrap();
        std::fs::write(dir.path().join("z2jh/jupyterhub/Chart.yaml"), "name: jupyterhub\n").unwrap();
        std::fs::create_dir_all(&profiles).unwrap();
        let f = profiles.join("chart.yaml");
        std::fs::write(&f, "charts:\n  jupyterhub: ../z2jh\n").unwrap();
        let p = Profile::load(&f).unwrap();
        assert_eq!(p.chart(ChartName::Jupyterhub), Some(profiles.join("../z2jh").as_path()));
        let f = profiles.join("typo.yaml");
        std::fs::write(&f, "# a typo\ncharts:\n  jupyterhub: ./z2jh\n").unwrap();
        let e = Profile::load(&f).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        let expected =
            format!("{}: charts.jupyterhub: {} does not exist: give a z2jh checkout", f.display(), profiles.join("z2jh").display());
        assert!(e.starts_with(&expected), "{e}");
        assert!(e.contains("(line 3)"), "{e}");
    }

    fn culler_cmd() -> CommandSpec {
        CommandSpec::new("/env/venv/bin/python")
            .with_command_args(["-m", "jupyterhub_idle_culler"])
            .args(["--url=http://127.0.0.1:8081/hub/api", "--timeout=600", "--cull-users", "--cull-every=10"])
            .env("JUPYTERHUB_API_TOKEN", "t")
    }

    #[test]
    fn apply_replaces_command_removes_appends_and_merges_env() {
        let o = ComponentOverride {
            command: Some(vec!["/opt/py/bin/python".into(), "-X".into(), "dev".into(), "-m".into(), "jupyterhub_idle_culler".into()]),
            args: vec!["--concurrency=5".into(), "--timeout=5".into()],
            remove_args: vec!["--cull-users".into(), "--timeout".into()],
            env: [("JUPYTERHUB_API_TOKEN".to_string(), "other".to_string()), ("X".to_string(), "1".to_string())].into(),
            version: Some("b".into()),
        };
        let mut c = culler_cmd();
        o.apply(&mut c);
        assert_eq!(c.program, PathBuf::from("/opt/py/bin/python"));
        assert_eq!(c.command_args(), ["-X", "dev", "-m", "jupyterhub_idle_culler"]);
        assert_eq!(c.options(), ["--url=http://127.0.0.1:8081/hub/api", "--cull-every=10", "--concurrency=5", "--timeout=5"]);
        assert_eq!(c.env["JUPYTERHUB_API_TOKEN"], "other");
        assert_eq!(c.env["X"], "1");
    }

    #[test]
    fn apply_with_program_only_command_drops_the_prefix() {
        let o = ComponentOverride { command: Some(vec!["/home/me/bin/jupyterhub-idle-culler".into()]), ..Default::default() };
        let mut c = culler_cmd();
        o.apply(&mut c);
        assert_eq!(c.program, PathBuf::from("/home/me/bin/jupyterhub-idle-culler"));
        assert_eq!(c.prefix_len, 0);
        assert_eq!(c.args[0], "--url=http://127.0.0.1:8081/hub/api");
        assert_eq!(c.args.len(), 4);
    }

    #[test]
    fn apply_noop_and_profile_level_apply() {
        let mut c = culler_cmd();
        ComponentOverride::default().apply(&mut c);
        assert_eq!(c, culler_cmd());
        let p = parse("components:\n  culler:\n    remove_args: [--cull-users=true]\n").unwrap();
        let mut proxy = CommandSpec::new("chp").arg("--cull-users");
        p.apply(ComponentName::Proxy, &mut proxy);
        assert_eq!(proxy.args, ["--cull-users"]);
        p.apply(ComponentName::Culler, &mut c);
        assert!(!c.args.iter().any(|a| a.starts_with("--cull-users")));
    }

    #[test]
    fn profile_pins_merge() {
        let base = Pins::parse(
            Path::new("pins.yaml"),
            "python:\n  packages: [jupyterhub==6.1.1, jupyterhub-idle-culler==2.0.0]\nnpm:\n  packages: [configurable-http-proxy@5.3.0]\n",
            Path::new("/r"),
        )
        .unwrap();
        let p = parse(FULL).unwrap();
        let merged = p.pins(&base);
        let specs: Vec<&str> = merged.python.packages.iter().map(|s| s.spec.as_str()).collect();
        assert_eq!(
            specs,
            ["jupyterhub==6.1.1", "jupyterhub-idle-culler @ git+https://github.com/me/jupyterhub-idle-culler@fix", "./culler"]
        );
        assert!(merged.python.pre);
        assert_eq!(merged.npm.packages[0].spec, "configurable-http-proxy@4.6.1");
    }

    #[test]
    fn component_names_round_trip() {
        for c in ComponentName::ALL {
            assert_eq!(c.as_str().parse::<ComponentName>().unwrap(), c);
        }
        assert!("nope".parse::<ComponentName>().unwrap_err().contains("image-cleaner"));
    }
}
