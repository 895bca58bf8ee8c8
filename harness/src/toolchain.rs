//! The pinned real components, installed once into a reusable environment.
//!
//! `fixtures/pins.yaml` (see [`crate::paths::fixtures_dir`]) lists pip and npm specifiers;
//! a profile may replace or extend them ([`Pins::merged_with`]). [`Toolchain::ensure`]
//! installs the merged pins into `$HUBCHAOS_HOME/env/<hash>` (see
//! [`crate::paths::hubchaos_home`]), where `<hash>` is the first 16 hex digits of the sha256
//! of the canonical pins ([`Pins::hash`]): changing a pin gives a new environment, and the old
//! one stays valid for checkouts that still use it.
//!
//! ```yaml
//! python:
//!   packages:
//!     - jupyterhub==6.1.1
//!     - { spec: "docker-image-cleaner==1.0.0b3", pre: true }   # pip --pre for this one
//!     - { spec: "git+https://github.com/me/jupyterhub-idle-culler@fix", name: jupyterhub-idle-culler }
//!     - { spec: ../jupyterhub-idle-culler, editable: true }     # pip install -e (relative to this file)
//!   pre: false          # --pre for the whole list
//! npm:
//!   packages:
//!     - configurable-http-proxy@5.3.0
//! ```
//!
//! Layout of one environment (`root`):
//! `venv/` (python venv: `venv/bin/jupyterhub`, …), `npm/node_modules/.bin/…`, `install.log`,
//! `ready.json` (the pins, the installed versions; written last).
//!
//! Steps of an install: (1) python venv (`python3 -m venv`, or `$HUBCHAOS_PYTHON`), (2) `pip
//! install` of the python packages (a second `pip install --pre` for `pre` entries),
//! (3) `npm install --prefix <root>/npm`, (4) record versions (`importlib.metadata`,
//! `npm ls --json`), (5) write `ready.json` and publish.
//!
//! Atomicity: a venv is not relocatable (entry-point scripts carry the absolute path of the
//! interpreter), so an install cannot be built in a temp dir and renamed into place. Instead it
//! is built in a hidden sibling `env/.<hash>.<nonce>/` that never moves, and `env/<hash>` is
//! a symlink to it, created under a temp name and renamed over the old one when everything
//! succeeded. A killed install leaves only a hidden dir (swept by the next install of the same
//! hash, whose log stays readable until then) and never a `env/<hash>` that looks ready. An
//! exclusive `flock` on `env/<hash>.lock` serialises concurrent installs of the same hash; the
//! second process waits, then finds the first one's result.
//!
//! Fast path: when `env/<hash>/ready.json` holds the same pins and the venv python exists,
//! [`Toolchain::ensure`] returns without starting any process.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::profile::{parse_yaml, ConfigError};

/// Bumped when the layout of an environment changes: every hash changes with it.
const LAYOUT_VERSION: u32 = 1;

/// Lines of a failed step's output shown in the error (the full output is in the log).
const TAIL_LINES: usize = 20;

// ---------------------------------------------------------------------------------------------
// Pins
// ---------------------------------------------------------------------------------------------

/// The pinned components: the content of `fixtures/pins.yaml`, possibly merged with a
/// profile's `pins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    pub python: PythonPins,
    pub npm: NpmPins,
    /// What a kind cluster is built from. Not part of the Python/npm environment's hash: a
    /// Kubernetes pin never reinstalls the local components (see [`KubePins::hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubePins>,
    /// What BinderHub (given by the user, `HUBCHAOS_BINDERHUB`) runs with. Not part of the
    /// base environment's hash: the binder environment is its own ([`Pins::binder_env`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binder: Option<BinderPins>,
    /// What the hub stack's images for the kind backend carry besides the python and npm pins
    /// (KubeSpawner). Not part of the base environment's hash: the images have their own key
    /// (`backend::kind::stack_image::key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagePins>,
}

/// The images' own Python packages, installed after the python pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePins {
    pub python: Vec<PackageSpec>,
}

/// BinderHub's companions: the python packages installed with it (repo2docker), and the
/// docker buildx plugin repo2docker shells out to (`docker buildx build`), Debian trixie's
/// `docker-buildx` package (bookworm has none), unpacked under `$HUBCHAOS_HOME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinderPins {
    pub python: Vec<PackageSpec>,
    /// The `docker-buildx` package version in Debian trixie (`0.13.1+ds1-3`).
    pub buildx: String,
}

/// The versions a kind cluster is built from, each one the Go module proxy serves: Kubernetes
/// (its staging modules follow as `v0.<minor>.<patch>`), kind, helm, crictl, and the images
/// `kubeadm config images list` names for that Kubernetes (etcd, coredns, pause).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubePins {
    /// `v1.34.12`: kubelet 1.35+ refuses cgroup v1 unless told otherwise, and these machines
    /// have cgroup v1.
    pub kubernetes: String,
    pub kind: String,
    pub helm: String,
    pub cri_tools: String,
    /// The etcd module version (`v3.6.5`); its image is tagged as kubeadm names it (`3.6.5-0`).
    pub etcd: String,
    pub coredns: String,
    /// The pause image's tag (`3.10.1`), built from the `pause.c` in the Kubernetes module.
    pub pause: String,
    /// The dockerd kind runs on (`26.1.5`): Debian trixie's `docker.io`, the first engine here
    /// that runs `--privileged` without `CAP_SYS_RESOURCE` in the bounding set.
    pub engine: String,
}

impl KubePins {
    /// First 16 hex digits of the sha256 of these pins: part of the node image's cache key.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(serde_json::to_string(self).expect("pins serialise").as_bytes());
        hex::encode(digest)[..16].to_string()
    }

    /// The staging modules' version for this Kubernetes (`v1.34.12` -> `v0.34.12`).
    pub fn staging_version(&self) -> Option<String> {
        self.kubernetes.strip_prefix("v1.").map(|rest| format!("v0.{rest}"))
    }

    /// `(major, minor)` of Kubernetes, for helm's link-time version (`v1.34.12` -> `("1", "34")`).
    pub fn major_minor(&self) -> Option<(String, String)> {
        let mut parts = self.kubernetes.trim_start_matches('v').split('.');
        Some((parts.next()?.to_string(), parts.next()?.to_string()))
    }

    fn problems(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, value) in [
            ("kubernetes", &self.kubernetes),
            ("kind", &self.kind),
            ("helm", &self.helm),
            ("cri_tools", &self.cri_tools),
            ("etcd", &self.etcd),
            ("coredns", &self.coredns),
        ] {
            if !value.starts_with('v') || value.len() < 2 {
                out.push((
                    format!("{prefix}{field}"),
                    format!("{value:?} is not a module version: write it as the Go module proxy does, e.g. \"v1.2.3\""),
                ));
            }
        }
        if self.staging_version().is_none() {
            out.push((format!("{prefix}kubernetes"), format!("{:?} is not a Kubernetes 1.x version", self.kubernetes)));
        }
        if self.pause.is_empty() || self.pause.starts_with('v') {
            out.push((
                format!("{prefix}pause"),
                format!("{:?} is not an image tag: write it as kubeadm does, e.g. \"3.10.1\"", self.pause),
            ));
        }
        out
    }
}

/// A profile's change of the Kubernetes pins: each given field replaces the base one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubePinsOverride {
    #[serde(default)]
    pub kubernetes: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub helm: Option<String>,
    #[serde(default)]
    pub cri_tools: Option<String>,
    #[serde(default)]
    pub etcd: Option<String>,
    #[serde(default)]
    pub coredns: Option<String>,
    #[serde(default)]
    pub pause: Option<String>,
    #[serde(default)]
    pub engine: Option<String>,
}

impl KubePinsOverride {
    fn apply(&self, base: &mut KubePins) {
        for (field, value) in [
            (&mut base.kubernetes, &self.kubernetes),
            (&mut base.kind, &self.kind),
            (&mut base.helm, &self.helm),
            (&mut base.cri_tools, &self.cri_tools),
            (&mut base.etcd, &self.etcd),
            (&mut base.coredns, &self.coredns),
            (&mut base.pause, &self.pause),
            (&mut base.engine, &self.engine),
        ] {
            if let Some(v) = value {
                *field = v.clone();
            }
        }
    }
}

/// pip requirement specifiers installed into one venv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonPins {
    pub packages: Vec<PackageSpec>,
    /// `pip install --pre` for the whole list.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pre: bool,
}

/// npm package specifiers installed into one `node_modules` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmPins {
    pub packages: Vec<PackageSpec>,
}

/// One package: in YAML either a plain specifier string or a mapping
/// `{ spec, name, pre, editable }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageSpec {
    /// What is handed to pip / npm: `jupyterhub==6.1.1`, `name @ git+https://…`, a URL, a
    /// local path (relative paths are resolved against the YAML file's directory).
    pub spec: String,
    /// The package (distribution) name, when it cannot be read off `spec` (URLs, paths): used
    /// to replace a base pin of the same name and to report the installed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// python only: install with `pip install --pre` (pre-releases of dependencies allowed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pre: bool,
    /// python only: `pip install -e` (a local checkout, live edits need no reinstall; the
    /// environment hash only sees the path).
    #[serde(default, skip_serializing_if = "is_false")]
    pub editable: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl PackageSpec {
    /// A plain specifier.
    pub fn new(spec: impl Into<String>) -> Self {
        Self { spec: spec.into(), name: None, pre: false, editable: false }
    }

    /// The normalised python distribution name (PEP 503), if known.
    pub fn python_name(&self) -> Option<String> {
        self.name.clone().or_else(|| python_name_of(&self.spec)).map(|n| normalize_python_name(&n))
    }

    /// The npm package name, if known.
    pub fn npm_name(&self) -> Option<String> {
        self.name.clone().or_else(|| npm_name_of(&self.spec)).map(|n| n.to_ascii_lowercase())
    }

    fn is_local_relative(&self) -> bool {
        let s = self.spec.strip_prefix("file:").unwrap_or(&self.spec);
        s.starts_with("./") || s.starts_with("../") || s == "." || s == ".."
    }
}

/// Accept `- spec` as well as `- { spec: …, … }` (the canonical, hashed form is always the
/// mapping, without default-valued keys).
impl<'de> Deserialize<'de> for PackageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PackageSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a package specifier string or a mapping with `spec`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PackageSpec::new(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Full {
                    spec: String,
                    #[serde(default)]
                    name: Option<String>,
                    #[serde(default)]
                    pre: bool,
                    #[serde(default)]
                    editable: bool,
                }
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PackageSpec { spec: f.spec, name: f.name, pre: f.pre, editable: f.editable })
            }
        }
        d.deserialize_any(V)
    }
}

/// A profile's `pins`: each list either extends the base list (an entry replaces the base
/// entry of the same package name, others are appended) or, with `replace: true`, replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinsOverride {
    #[serde(default)]
    pub python: Option<PythonPinsOverride>,
    #[serde(default)]
    pub npm: Option<NpmPinsOverride>,
    #[serde(default)]
    pub kubernetes: Option<KubePinsOverride>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonPinsOverride {
    #[serde(default)]
    pub packages: Vec<PackageSpec>,
    /// Overrides the base list's `pre` when given.
    #[serde(default)]
    pub pre: Option<bool>,
    #[serde(default)]
    pub replace: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmPinsOverride {
    #[serde(default)]
    pub packages: Vec<PackageSpec>,
    #[serde(default)]
    pub replace: bool,
}

impl PinsOverride {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.python.is_none() && self.npm.is_none() && self.kubernetes.is_none()
    }

    /// Resolve relative local paths against `base` (the profile's directory).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &mut self.python {
            resolve_list(&mut p.packages, base);
        }
        if let Some(n) = &mut self.npm {
            resolve_list(&mut n.packages, base);
        }
    }

    /// Problems a parser cannot see, as (field path, message).
    pub(crate) fn problems(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(p) = &self.python {
            out.extend(list_problems(&format!("{prefix}python"), &p.packages, true));
        }
        if let Some(n) = &self.npm {
            out.extend(list_problems(&format!("{prefix}npm"), &n.packages, false));
        }
        out
    }
}

fn resolve_list(list: &mut [PackageSpec], base: &Path) {
    for p in list.iter_mut().filter(|p| p.is_local_relative()) {
        let (scheme, rest) = match p.spec.strip_prefix("file:") {
            Some(rest) => ("file:", rest),
            None => ("", p.spec.as_str()),
        };
        let abs = normalize_path(&base.join(rest));
        p.spec = format!("{scheme}{}", abs.display());
    }
}

/// `a/./b/../c` -> `a/c` without touching the file system.
fn normalize_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn list_problems(path: &str, list: &[PackageSpec], python: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("{path}.packages[{i}]");
        if p.spec.trim().is_empty() {
            out.push((format!("{at}.spec"), "empty package specifier".into()));
            continue;
        }
        if !python && p.pre {
            out.push((format!("{at}.pre"), "`pre` is a pip option; npm has no such flag".into()));
        }
        if !python && p.editable {
            out.push((format!("{at}.editable"), "`editable` is a pip option".into()));
        }
        let name = if python { p.python_name() } else { p.npm_name() };
        if let Some(name) = name {
            if let Some(j) = seen.insert(name.clone(), i) {
                out.push((at, format!("package `{name}` is already listed at {path}.packages[{j}]")));
            }
        }
    }
    out
}

impl Pins {
    /// Read and validate a pins file. Relative local paths in it are resolved against its
    /// directory. Every error names the file and the field.
    pub fn load(path: &Path) -> Result<Pins, ToolchainError> {
        let text = fs::read_to_string(path)
            .map_err(|e| ToolchainError::Io { context: format!("cannot read pins file {}", path.display()), source: e })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Self::parse(path, &text, base)?)
    }

    /// The repository's pins: `fixtures/pins.yaml` (`$HUBCHAOS_FIXTURES` overrides the dir).
    pub fn load_default() -> Result<Pins, ToolchainError> {
        Self::load(&crate::paths::fixtures_dir().join("pins.yaml"))
    }

    /// Parse pins text; `file` only labels errors, `base` resolves relative paths.
    pub fn parse(file: &Path, text: &str, base: &Path) -> Result<Pins, ConfigError> {
        let mut pins: Pins = parse_yaml(file, text)?;
        resolve_list(&mut pins.python.packages, base);
        resolve_list(&mut pins.npm.packages, base);
        if let Some((field, msg)) = pins.problems().into_iter().next() {
            return Err(ConfigError::at(file, text, &field, msg));
        }
        Ok(pins)
    }

    /// Problems a parser cannot see, as (field path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = list_problems("python", &self.python.packages, true);
        out.extend(list_problems("npm", &self.npm.packages, false));
        if let Some(k) = &self.kubernetes {
            out.extend(k.problems("kubernetes."));
        }
        out
    }

    /// These pins with a profile's overrides applied (see [`PinsOverride`]).
    pub fn merged_with(&self, o: &PinsOverride) -> Pins {
        let mut out = self.clone();
        if let Some(p) = &o.python {
            merge_list(&mut out.python.packages, &p.packages, p.replace, PackageSpec::python_name);
            if let Some(pre) = p.pre {
                out.python.pre = pre;
            }
        }
        if let Some(n) = &o.npm {
            merge_list(&mut out.npm.packages, &n.packages, n.replace, PackageSpec::npm_name);
        }
        if let (Some(k), Some(base)) = (&o.kubernetes, out.kubernetes.as_mut()) {
            k.apply(base);
        }
        out
    }

    /// The pins of the binder environment: these pins' python packages, the binder pins'
    /// (repo2docker), and BinderHub as `binderhub` names it (a checkout, a wheel or a pip
    /// spec; a relative path is taken from the current directory). Its own hash, so the base
    /// environment of every other scenario is untouched. A checkout is keyed by its path,
    /// not its content: after changing it, remove the environment (`hubchaos env` names it).
    pub fn binder_env(&self, binderhub: &str) -> Result<Pins, String> {
        let binder = self.binder.as_ref().ok_or("the pins have no `binder` section (fixtures/pins.yaml)")?;
        let mut out = self.clone();
        merge_list(&mut out.python.packages, &binder.python, false, PackageSpec::python_name);
        let spec = binderhub.trim();
        if spec.is_empty() {
            return Err("HUBCHAOS_BINDERHUB is empty: set it to a BinderHub checkout, a wheel or a pip spec".into());
        }
        let path = Path::new(spec);
        let package = if path.exists() {
            let abs = std::fs::canonicalize(path).map_err(|e| format!("HUBCHAOS_BINDERHUB={spec}: {e}"))?;
            PackageSpec { spec: abs.display().to_string(), name: Some("binderhub".into()), pre: false, editable: false }
        } else if spec.starts_with('.') || spec.starts_with('/') {
            return Err(format!("HUBCHAOS_BINDERHUB={spec}: no such file or directory (a BinderHub checkout, a wheel or a pip spec)"));
        } else {
            PackageSpec { spec: spec.to_string(), name: Some("binderhub".into()), pre: false, editable: false }
        };
        merge_list(&mut out.python.packages, &[package], false, PackageSpec::python_name);
        Ok(out)
    }

    /// The canonical form that is hashed: compact JSON of the layout version and the pins.
    pub fn canonical(&self) -> String {
        #[derive(Serialize)]
        struct EnvPins<'a> {
            python: &'a PythonPins,
            npm: &'a NpmPins,
        }
        #[derive(Serialize)]
        struct Canonical<'a> {
            layout: u32,
            pins: EnvPins<'a>,
        }
        let pins = EnvPins { python: &self.python, npm: &self.npm };
        serde_json::to_string(&Canonical { layout: LAYOUT_VERSION, pins }).expect("pins serialise")
    }

    /// First 16 hex digits of the sha256 of [`Pins::canonical`]: the environment's directory
    /// name. Independent of comments and formatting of the YAML; any change of a specifier,
    /// its options or the order of the lists gives another hash.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical().as_bytes());
        hex::encode(digest)[..16].to_string()
    }
}

fn merge_list(base: &mut Vec<PackageSpec>, extra: &[PackageSpec], replace: bool, name: fn(&PackageSpec) -> Option<String>) {
    if replace {
        *base = extra.to_vec();
        return;
    }
    for e in extra {
        let n = name(e);
        match n.and_then(|n| base.iter().position(|b| name(b).as_deref() == Some(n.as_str()))) {
            Some(i) => base[i] = e.clone(),
            None => base.push(e.clone()),
        }
    }
}

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn looks_like_location(s: &str) -> bool {
    s.contains("://")
        || s.starts_with("git+")
        || s.starts_with("file:")
        || s.starts_with('/')
        || s.starts_with('.')
        || s.starts_with('~')
        || s.ends_with(".whl")
        || s.ends_with(".tar.gz")
        || s.ends_with(".zip")
}

/// The last path segment of a URL or path, without `@ref`, `#fragment`, `?query`, `.git`.
fn location_basename(s: &str) -> Option<&str> {
    let s = s.split(['#', '?']).next()?;
    let s = s.trim_end_matches('/');
    let last = s.rsplit('/').next()?;
    let last = last.split('@').next()?;
    let last = last.strip_suffix(".git").unwrap_or(last);
    (!last.is_empty()).then_some(last)
}

/// Best-effort distribution name of a pip specifier.
fn python_name_of(spec: &str) -> Option<String> {
    let s = spec.trim();
    if let Some((name, _)) = s.split_once(" @ ") {
        return Some(name.trim().to_string());
    }
    if looks_like_location(s) {
        if let Some(egg) = s.split_once("#egg=").map(|(_, e)| e) {
            return Some(egg.split('&').next().unwrap_or(egg).to_string());
        }
        let base = location_basename(s)?;
        if let Some(stem) = base.strip_suffix(".whl") {
            return stem.split('-').next().map(str::to_string);
        }
        for ext in [".tar.gz", ".zip", ".tgz"] {
            if let Some(stem) = base.strip_suffix(ext) {
                return Some(stem.rsplit_once('-').map_or(stem, |(n, _)| n).to_string());
            }
        }
        return Some(base.to_string());
    }
    let name: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    (!name.is_empty()).then_some(name)
}

/// Best-effort package name of an npm specifier.
fn npm_name_of(spec: &str) -> Option<String> {
    let s = spec.trim();
    if let Some(rest) = s.strip_prefix('@') {
        // @scope/name[@range]
        let (scope, after) = rest.split_once('/')?;
        let name = after.split('@').next()?;
        return Some(format!("@{scope}/{name}"));
    }
    if let Some((alias, _)) = s.split_once("@npm:") {
        return Some(alias.to_string());
    }
    if looks_like_location(s) || s.starts_with("github:") || s.contains('/') {
        let base = location_basename(s.split('#').next()?)?;
        let base = base.strip_suffix(".tgz").map_or(base, |stem| stem.rsplit_once('-').map_or(stem, |(n, _)| n));
        return Some(base.to_string());
    }
    let name = s.split('@').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why the environment could not be installed. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error(transparent)]
    Pins(#[from] ConfigError),
    #[error(
        "`{program}` not found on PATH: install python3 and python3-venv: \
         apt-get install python3-venv (or point HUBCHAOS_PYTHON at a python >= 3.9)"
    )]
    PythonMissing { program: String },
    #[error(
        "`{program}` cannot create a virtual environment (the venv/ensurepip module is \
         missing): install python3 and python3-venv: apt-get install python3-venv\n\
         --- last lines of its output ---\n{tail}\n--- full log: {log} ---",
        log = .log.display()
    )]
    PythonNoVenv { program: String, tail: String, log: PathBuf },
    #[error(
        "`npm` not found on PATH: apt-get install npm (or install Node.js >= 20 with npm \
         from https://nodejs.org)"
    )]
    NpmMissing,
    /// pip, npm or another install step exited unsuccessfully.
    #[error(
        "{step} failed ({status}): {hint}\n--- last {TAIL_LINES} lines of its output ---\n{tail}\n\
         --- full log: {log} ---",
        log = .log.display()
    )]
    StepFailed { step: String, status: String, hint: String, tail: String, log: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ToolchainError {
    /// 2 for a bad pins file (a usage error), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolchainError::Pins(_) => 2,
            _ => 1,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolchainError {
    let context = context.into();
    move |source| ToolchainError::Io { context, source }
}

// ---------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------

/// How [`Toolchain::ensure`] reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnsureOptions {
    /// Spinners with elapsed time on a terminal, plain lines on stderr otherwise. Without it
    /// only `tracing` events are emitted.
    pub progress: bool,
}

/// An installed environment of the pinned components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// `$HUBCHAOS_HOME/env/<hash>`.
    pub root: PathBuf,
    /// [`Pins::hash`] of `pins`.
    pub hash: String,
    /// What was installed.
    pub pins: Pins,
    /// Installed versions of the pinned packages (by normalised name; entries whose name is
    /// unknown are absent) plus `python` and `node`.
    pub versions: BTreeMap<String, String>,
}

/// Whether the environment for some pins exists (for `doctor`; never installs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvState {
    Ready(Box<Toolchain>),
    /// Will be installed on first use at `root`.
    Missing {
        root: PathBuf,
    },
}

/// What `ready.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyMarker {
    pub layout: u32,
    pub hash: String,
    pub pins: Pins,
    pub versions: BTreeMap<String, String>,
    /// Every distribution in the venv (normalised name -> version).
    pub python_distributions: BTreeMap<String, String>,
    /// Top-level npm packages of the prefix.
    pub npm_packages: BTreeMap<String, String>,
    pub installed_unix_secs: u64,
    pub install_seconds: f64,
}

/// The external programs an install uses (injectable for tests).
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub python: String,
    pub npm: String,
    pub node: String,
}

impl Programs {
    fn from_env() -> Self {
        Self { python: std::env::var("HUBCHAOS_PYTHON").unwrap_or_else(|_| "python3".into()), npm: "npm".into(), node: "node".into() }
    }
}

/// The python `doctor` and installs use: `$HUBCHAOS_PYTHON`, default `python3`.
pub fn python_program() -> String {
    Programs::from_env().python
}

/// Find an executable on `PATH` (or check a path containing `/`), like `which`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_exec(p))
}

impl Toolchain {
    /// Install `pins` unless already installed, under `$HUBCHAOS_HOME/env/<hash>`.
    pub fn ensure(pins: &Pins, opts: EnsureOptions) -> Result<Toolchain, ToolchainError> {
        Self::ensure_in(&crate::paths::hubchaos_home(), pins, opts)
    }

    /// [`Toolchain::ensure`] with an explicit `$HUBCHAOS_HOME`.
    pub fn ensure_in(home: &Path, pins: &Pins, opts: EnsureOptions) -> Result<Toolchain, ToolchainError> {
        Self::ensure_with(home, pins, opts, &Programs::from_env())
    }

    pub(crate) fn ensure_with(home: &Path, pins: &Pins, opts: EnsureOptions, programs: &Programs) -> Result<Toolchain, ToolchainError> {
        let hash = pins.hash();
        let env_dir = home.join("env");
        let root = env_dir.join(&hash);
        if let Some(tc) = Self::ready_at(&root, pins) {
            return Ok(tc);
        }
        fs::create_dir_all(&env_dir)
            .map_err(io_err(format!("cannot create {} (set HUBCHAOS_HOME to a writable dir)", env_dir.display())))?;
        let reporter = Reporter::new(opts.progress);
        let _lock = lock(&env_dir.join(format!("{hash}.lock")), &reporter)?;
        // Another process may have finished while we waited.
        if let Some(tc) = Self::ready_at(&root, pins) {
            reporter.line(&format!("environment {} is ready (installed by another run)", root.display()));
            return Ok(tc);
        }
        Installer { env_dir, root, hash, pins, programs, reporter }.run()
    }

    /// The environment for `pins`, without installing.
    pub fn state(pins: &Pins) -> EnvState {
        Self::state_in(&crate::paths::hubchaos_home(), pins)
    }

    /// [`Toolchain::state`] with an explicit `$HUBCHAOS_HOME`.
    pub fn state_in(home: &Path, pins: &Pins) -> EnvState {
        let root = home.join("env").join(pins.hash());
        match Self::ready_at(&root, pins) {
            Some(tc) => EnvState::Ready(Box::new(tc)),
            None => EnvState::Missing { root },
        }
    }

    /// The fast path: `root/ready.json` matches and the venv python exists. No process.
    fn ready_at(root: &Path, pins: &Pins) -> Option<Toolchain> {
        let text = fs::read(root.join("ready.json")).ok()?;
        let m: ReadyMarker = serde_json::from_slice(&text).ok()?;
        let hash = pins.hash();
        // What was installed is the Python and npm pins; a Kubernetes pin installs nothing here.
        if m.layout != LAYOUT_VERSION || m.hash != hash || m.pins.python != pins.python || m.pins.npm != pins.npm {
            return None;
        }
        let tc = Toolchain { root: root.to_path_buf(), hash, pins: pins.clone(), versions: m.versions };
        // The base interpreter a venv points at can disappear (an upgrade): then reinstall.
        fs::metadata(tc.python()).ok()?;
        Some(tc)
    }

    /// The venv's python.
    pub fn python(&self) -> PathBuf {
        self.root.join("venv").join("bin").join("python")
    }

    /// A program of the venv, e.g. `jupyterhub`, `jupyterhub-singleuser`.
    pub fn venv_bin(&self, name: &str) -> PathBuf {
        self.root.join("venv").join("bin").join(name)
    }

    /// A program of the npm prefix, e.g. `configurable-http-proxy`.
    pub fn npm_bin(&self, name: &str) -> PathBuf {
        self.root.join("npm").join("node_modules").join(".bin").join(name)
    }

    /// The full output of the install.
    pub fn install_log(&self) -> PathBuf {
        self.root.join("install.log")
    }

    /// The marker with every installed python distribution and npm package.
    pub fn marker(&self) -> Result<ReadyMarker, ToolchainError> {
        let p = self.root.join("ready.json");
        let text = fs::read(&p).map_err(io_err(format!("cannot read {}", p.display())))?;
        serde_json::from_slice(&text).map_err(|e| ToolchainError::Io {
            context: format!("cannot parse {}", p.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

fn lock(path: &Path, reporter: &Reporter) -> Result<nix::fcntl::Flock<File>, ToolchainError> {
    use nix::errno::Errno;
    use nix::fcntl::{Flock, FlockArg};
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(format!("cannot open lock file {}", path.display())))?;
    let to_io = |e: Errno| ToolchainError::Io { context: format!("cannot lock {}", path.display()), source: std::io::Error::from(e) };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((file, Errno::EWOULDBLOCK)) => {
            reporter.line(&format!("waiting for another hubchaos process that is installing this environment ({})", path.display()));
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| to_io(e))
        }
        Err((_, e)) => Err(to_io(e)),
    }
}

struct Installer<'a> {
    env_dir: PathBuf,
    root: PathBuf,
    hash: String,
    pins: &'a Pins,
    programs: &'a Programs,
    reporter: Reporter,
}

/// One step's output went to the log from `offset`.
struct StepRun {
    status: std::process::ExitStatus,
    tail: String,
}

impl Installer<'_> {
    fn run(self) -> Result<Toolchain, ToolchainError> {
        let started = Instant::now();
        // Fail before a long pip run when a later step cannot work.
        if find_program(&self.programs.python).is_none() {
            return Err(ToolchainError::PythonMissing { program: self.programs.python.clone() });
        }
        if !self.pins.npm.packages.is_empty() && find_program(&self.programs.npm).is_none() {
            return Err(ToolchainError::NpmMissing);
        }
        self.sweep_stale();

        let nonce = format!("{}-{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        let build_name = format!(".{}.{nonce}", self.hash);
        let build = self.env_dir.join(&build_name);
        fs::create_dir(&build).map_err(io_err(format!("cannot create {}", build.display())))?;
        let log_path = build.join("install.log");
        let mut log = File::create(&log_path).map_err(io_err(format!("cannot create {}", log_path.display())))?;
        let _ = writeln!(log, "hubchaos install of {} into {}\npins: {}", self.hash, build.display(), self.pins.canonical());
        self.reporter.line(&format!(
            "installing the pinned components into {} (first run for these pins; full log: {})",
            self.root.display(),
            log_path.display()
        ));

        let venv = build.join("venv");
        let python = venv.join("bin").join("python");
        let pre_split = !self.pins.python.pre && self.pins.python.packages.iter().any(|p| p.pre);
        let total = 4 + usize::from(pre_split);
        let mut n = 0;
        let mut next = |what: &str| {
            n += 1;
            format!("[{n}/{total}] {what}")
        };

        // 1. venv
        let step = next("python venv");
        let mut cmd = Command::new(&self.programs.python);
        cmd.arg("-m").arg("venv").arg(&venv);
        let r = self.step(&step, &mut log, &log_path, &mut cmd)?;
        if !r.status.success() {
            let lower = r.tail.to_ascii_lowercase();
            if lower.contains("ensurepip") || lower.contains("no module named venv") {
                return Err(ToolchainError::PythonNoVenv { program: self.programs.python.clone(), tail: r.tail, log: log_path });
            }
            return Err(failed(&step, &r, "creating the venv failed; see the output", &log_path));
        }

        // 2. pip
        let (pre, plain): (Vec<&PackageSpec>, Vec<&PackageSpec>) = if self.pins.python.pre {
            (self.pins.python.packages.iter().collect(), vec![])
        } else {
            self.pins.python.packages.iter().partition(|p| p.pre)
        };
        for (list, with_pre) in [(plain, false), (pre, true)] {
            if list.is_empty() {
                continue;
            }
            let step =
                next(&format!("pip install{} {}", if with_pre { " --pre" } else { "" }, short_list(list.iter().map(|p| p.spec.as_str()))));
            let mut cmd = Command::new(&python);
            cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"])
                .env("PIP_ROOT_USER_ACTION", "ignore")
                .env("PYTHONNOUSERSITE", "1")
                // A BinderHub checkout builds its web front end with npm unless told not to
                // (jupyter-packaging >= 0.12.1); the harness runs it in API-only mode.
                .env("JUPYTER_PACKAGING_SKIP_NPM", "1");
            if with_pre {
                cmd.arg("--pre");
            }
            for p in &list {
                if p.editable {
                    cmd.arg("-e");
                }
                cmd.arg(&p.spec);
            }
            let r = self.step(&step, &mut log, &log_path, &mut cmd)?;
            if !r.status.success() {
                return Err(failed(&step, &r, "check the specifiers in the pins (or the profile) and network access to PyPI", &log_path));
            }
        }

        // 3. npm
        let npm_prefix = build.join("npm");
        fs::create_dir_all(&npm_prefix).map_err(io_err(format!("cannot create {}", npm_prefix.display())))?;
        let step = next(&format!("npm install {}", short_list(self.pins.npm.packages.iter().map(|p| p.spec.as_str()))));
        if self.pins.npm.packages.is_empty() {
            self.reporter.line(&format!("{step}: nothing to install"));
        } else {
            let mut cmd = Command::new(&self.programs.npm);
            cmd.arg("install")
                .arg("--prefix")
                .arg(&npm_prefix)
                .args(["--no-audit", "--no-fund", "--no-update-notifier"])
                .args(self.pins.npm.packages.iter().map(|p| &p.spec))
                .current_dir(&npm_prefix);
            let r = self.step(&step, &mut log, &log_path, &mut cmd)?;
            if !r.status.success() {
                return Err(failed(
                    &step,
                    &r,
                    "check the npm specifiers in the pins (or the profile) and network access to the npm registry",
                    &log_path,
                ));
            }
        }

        // 4. versions
        let step = next("record installed versions");
        let h = self.reporter.start(&step);
        let marker = self.versions(&python, &npm_prefix, &mut log, started)?;
        h.done(&format!("{step}: {}", summary(&marker.versions)));

        // 5. marker, then publish
        let tmp = build.join("ready.json.tmp");
        let json = serde_json::to_vec_pretty(&marker).expect("marker serialises");
        fs::write(&tmp, json).map_err(io_err(format!("cannot write {}", tmp.display())))?;
        fs::rename(&tmp, build.join("ready.json")).map_err(io_err("cannot write ready.json"))?;
        self.publish(&build_name, &nonce)?;
        self.reporter.line(&format!("environment ready in {:.0}s: {}", started.elapsed().as_secs_f64(), self.root.display()));
        Ok(Toolchain { root: self.root.clone(), hash: self.hash.clone(), pins: self.pins.clone(), versions: marker.versions })
    }

    /// Run one command with its output appended to the log, under a spinner.
    fn step(&self, step: &str, log: &mut File, log_path: &Path, cmd: &mut Command) -> Result<StepRun, ToolchainError> {
        let offset = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = writeln!(log, "\n==> {step}\n$ {}", render_cmd(cmd));
        let out = log.try_clone().map_err(io_err("cannot write the install log"))?;
        let err = log.try_clone().map_err(io_err("cannot write the install log"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let h = self.reporter.start(step);
        let t = Instant::now();
        let status = match cmd.status() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                h.fail(step);
                let program = cmd.get_program().to_string_lossy().into_owned();
                return Err(if program == self.programs.npm {
                    ToolchainError::NpmMissing
                } else if program == self.programs.python {
                    ToolchainError::PythonMissing { program }
                } else {
                    ToolchainError::Io { context: format!("cannot run {program} for {step}"), source: e }
                });
            }
            Err(e) => {
                h.fail(step);
                return Err(ToolchainError::Io {
                    context: format!("cannot run {} for {step} (log: {})", render_cmd(cmd), log_path.display()),
                    source: e,
                });
            }
        };
        let tail = tail_of(log_path, offset);
        let _ = writeln!(log, "<== {status} after {:.1}s", t.elapsed().as_secs_f64());
        if status.success() {
            h.done(step);
        } else {
            h.fail(step);
        }
        Ok(StepRun { status, tail })
    }

    fn versions(&self, python: &Path, npm_prefix: &Path, log: &mut File, started: Instant) -> Result<ReadyMarker, ToolchainError> {
        const SCRIPT: &str = "import json, sys, importlib.metadata as m\n\
            d = {}\n\
            for dist in m.distributions():\n    n = dist.metadata['Name']\n    if n: d[n] = dist.version\n\
            print(json.dumps({'python': sys.version.split()[0], 'distributions': d}))\n";
        #[derive(Deserialize)]
        struct PyOut {
            python: String,
            distributions: BTreeMap<String, String>,
        }
        let _ = writeln!(log, "\n==> versions");
        let out = Command::new(python)
            .args(["-c", SCRIPT])
            .stdin(Stdio::null())
            .stderr(log.try_clone().map_err(io_err("cannot write the install log"))?)
            .output()
            .map_err(io_err(format!("cannot run {}", python.display())))?;
        let py: PyOut = serde_json::from_slice(&out.stdout).map_err(|e| ToolchainError::Io {
            context: format!("cannot read installed python versions from {}", python.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let dists: BTreeMap<String, String> = py.distributions.into_iter().map(|(k, v)| (normalize_python_name(&k), v)).collect();

        let mut npm_packages = BTreeMap::new();
        if !self.pins.npm.packages.is_empty() {
            #[derive(Deserialize)]
            struct Ls {
                #[serde(default)]
                dependencies: BTreeMap<String, LsDep>,
            }
            #[derive(Deserialize)]
            struct LsDep {
                #[serde(default)]
                version: Option<String>,
            }
            // `npm ls` exits 1 on e.g. extraneous packages but still prints the tree.
            let out = Command::new(&self.programs.npm)
                .arg("ls")
                .arg("--json")
                .arg("--depth=0")
                .arg("--prefix")
                .arg(npm_prefix)
                .current_dir(npm_prefix)
                .stdin(Stdio::null())
                .stderr(log.try_clone().map_err(io_err("cannot write the install log"))?)
                .output()
                .map_err(io_err("cannot run npm ls"))?;
            let _ = log.write_all(&out.stdout);
            if let Ok(ls) = serde_json::from_slice::<Ls>(&out.stdout) {
                npm_packages = ls.dependencies.into_iter().filter_map(|(k, v)| v.version.map(|v| (k, v))).collect();
            }
        }

        let mut versions = BTreeMap::new();
        versions.insert("python".to_string(), py.python);
        for p in &self.pins.python.packages {
            if let Some(n) = p.python_name() {
                if let Some(v) = dists.get(&n) {
                    versions.insert(n, v.clone());
                }
            }
        }
        for p in &self.pins.npm.packages {
            if let Some(n) = p.npm_name() {
                if let Some(v) = npm_packages.get(&n) {
                    versions.insert(n, v.clone());
                }
            }
        }
        if let Ok(out) = Command::new(&self.programs.node).arg("--version").stdin(Stdio::null()).output() {
            let v = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_string();
            if out.status.success() && !v.is_empty() {
                versions.insert("node".to_string(), v);
            }
        }
        let _ = writeln!(log, "versions: {versions:?}");
        Ok(ReadyMarker {
            layout: LAYOUT_VERSION,
            hash: self.hash.clone(),
            pins: self.pins.clone(),
            versions,
            python_distributions: dists,
            npm_packages,
            installed_unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            install_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Remove leftovers of killed or failed installs of this hash (we hold the lock, so none
    /// is in progress), except the current link target.
    fn sweep_stale(&self) {
        let current = fs::read_link(&self.root).ok();
        let prefix = format!(".{}.", self.hash);
        let Ok(entries) = fs::read_dir(&self.env_dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) || current.as_deref() == Some(Path::new(&name)) {
                continue;
            }
            let p = e.path();
            let is_dir = fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
            let _ = if is_dir { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }

    /// Point `env/<hash>` at the finished build, atomically.
    fn publish(&self, build_name: &str, nonce: &str) -> Result<(), ToolchainError> {
        let tmp_link = self.env_dir.join(format!(".{}.link-{nonce}", self.hash));
        std::os::unix::fs::symlink(build_name, &tmp_link).map_err(io_err(format!("cannot create {}", tmp_link.display())))?;
        let old_target = fs::read_link(&self.root).ok();
        if let Ok(m) = fs::symlink_metadata(&self.root) {
            if m.is_dir() {
                // Not ours (a hand-made dir): it is not ready, so it goes.
                fs::remove_dir_all(&self.root).map_err(io_err(format!("cannot remove {}", self.root.display())))?;
            }
        }
        fs::rename(&tmp_link, &self.root).map_err(io_err(format!("cannot publish {}", self.root.display())))?;
        if let Some(old) = old_target {
            if old != Path::new(build_name) {
                let _ = fs::remove_dir_all(self.env_dir.join(old));
            }
        }
        Ok(())
    }
}

fn failed(step: &str, r: &StepRun, hint: &str, log: &Path) -> ToolchainError {
    ToolchainError::StepFailed {
        step: step.trim_start_matches(|c: char| c == '[' || c.is_ascii_digit() || c == '/' || c == ']' || c == ' ').to_string(),
        status: r.status.to_string(),
        hint: hint.to_string(),
        tail: r.tail.clone(),
        log: log.to_path_buf(),
    }
}

/// The last [`TAIL_LINES`] non-empty lines written to the log after `offset`.
fn tail_of(log: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(log) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn render_cmd(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| crate::backend::local::command::shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn short_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    if items.len() <= 3 {
        items.join(" ")
    } else {
        format!("{} … (+{} more)", items[..2].join(" "), items.len() - 2)
    }
}

fn summary(versions: &BTreeMap<String, String>) -> String {
    versions.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum ReportMode {
    Spinner,
    Plain,
    Quiet,
}

struct Reporter {
    mode: ReportMode,
}

struct StepHandle {
    mode: ReportMode,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Reporter {
    fn new(progress: bool) -> Self {
        let mode = match (progress, std::io::stderr().is_terminal()) {
            (false, _) => ReportMode::Quiet,
            (true, true) => ReportMode::Spinner,
            (true, false) => ReportMode::Plain,
        };
        Self { mode }
    }

    fn line(&self, msg: &str) {
        tracing::info!(target: "hubchaos::toolchain", "{msg}");
        if !matches!(self.mode, ReportMode::Quiet) {
            eprintln!("hubchaos: {msg}");
        }
    }

    fn start(&self, step: &str) -> StepHandle {
        tracing::info!(target: "hubchaos::toolchain", "{step} …");
        let bar = match self.mode {
            ReportMode::Spinner => {
                let bar = indicatif::ProgressBar::new_spinner();
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}") {
                    bar.set_style(style);
                }
                bar.set_message(step.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            ReportMode::Plain => {
                eprintln!("hubchaos: {step} …");
                None
            }
            ReportMode::Quiet => None,
        };
        StepHandle { mode: self.mode, bar, started: Instant::now() }
    }
}

impl StepHandle {
    fn finish(&self, mark: &str, msg: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        tracing::info!(target: "hubchaos::toolchain", "{mark} {msg} ({secs:.1}s)");
        match (&self.bar, self.mode) {
            (Some(bar), _) => {
                if let Ok(style) = indicatif::ProgressStyle::with_template("{msg}") {
                    bar.set_style(style);
                }
                bar.finish_with_message(format!("{mark} {msg} ({secs:.1}s)"));
            }
            (None, ReportMode::Plain) => eprintln!("hubchaos: {mark} {msg} ({secs:.1}s)"),
            _ => {}
        }
    }

    fn done(&self, msg: &str) {
        self.finish("✔", msg);
    }

    fn fail(&self, msg: &str) {
        self.finish("✘", msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins() -> Pins {
        Pins::parse(
            Path::new("pins.yaml"),
            "python:\n  packages:\n    - jupyterhub==6.1.1\n    - jupyterhub-idle-culler==2.0.0\nnpm:\n  packages:\n    - configurable-http-proxy@5.3.0\n",
            Path::new("/repo/fixtures"),
        )
        .unwrap()
    }

    #[test]
    fn repository_pins_parse() {
        let p = Pins::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pins.yaml")).unwrap();
        assert!(p.python.packages.iter().any(|p| p.python_name().as_deref() == Some("jupyterhub")));
        assert_eq!(p.npm.packages[0].npm_name().as_deref(), Some("configurable-http-proxy"));
        assert_eq!(p.hash().len(), 16);
    }

    #[test]
    fn the_binder_environment_adds_repo2docker_and_binderhub_under_a_hash_of_its_own() {
        let repo = Pins::load_default().unwrap();
        let b = repo.binder.clone().expect("fixtures/pins.yaml has a binder section");
        assert!(b.python.iter().any(|p| p.python_name().as_deref() == Some("jupyter-repo2docker")));
        // The base environment does not move with the binder pins.
        assert_eq!(repo.hash(), Pins { binder: None, ..repo.clone() }.hash());
        let env = repo.binder_env("binderhub @ git+https://example.invalid/binderhub@main").unwrap();
        let names: Vec<String> = env.python.packages.iter().filter_map(PackageSpec::python_name).collect();
        assert!(names.contains(&"jupyterhub".to_string()) && names.contains(&"jupyter-repo2docker".to_string()), "{names:?}");
        assert_eq!(env.python.packages.last().unwrap().name.as_deref(), Some("binderhub"));
        assert_ne!(env.hash(), repo.hash());
        // A checkout is taken by its absolute path; a path that does not exist is refused.
        let dir = std::env::temp_dir();
        let local = repo.binder_env(&dir.display().to_string()).unwrap();
        assert_eq!(local.python.packages.last().unwrap().spec, std::fs::canonicalize(&dir).unwrap().display().to_string());
        let e = repo.binder_env("./no-such-binderhub-checkout").unwrap_err();
        assert!(e.contains("no such file or directory"), "{e}");
        assert!(repo.binder_env("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn kubernetes_pins_parse_merge_and_leave_the_env_hash_alone() {
        let repo = Pins::load_default().unwrap();
        let k = repo.kubernetes.clone().expect("fixtures/pins.yaml pins Kubernetes");
        assert_eq!(k.staging_version().unwrap(), k.kubernetes.replacen("v1.", "v0.", 1));
        assert_eq!(k.major_minor().unwrap().0, "1");
        // The Python/npm environment's key does not move with a Kubernetes pin.
        let without = Pins { kubernetes: None, ..repo.clone() };
        assert_eq!(repo.hash(), without.hash());
        let o: PinsOverride = serde_saphyr::from_str("kubernetes:\n  kubernetes: v1.34.11\n").unwrap();
        let merged = repo.merged_with(&o);
        let mk = merged.kubernetes.as_ref().unwrap();
        assert_eq!(mk.kubernetes, "v1.34.11");
        assert_eq!(mk.kind, k.kind, "fields the override does not give stay");
        assert_ne!(mk.hash(), k.hash());
        assert_eq!(merged.hash(), repo.hash());
    }

    #[test]
    fn kubernetes_pins_name_a_bad_field() {
        let text = "python: { packages: [a==1] }\nnpm: { packages: [b@1] }\nkubernetes:\n  kubernetes: 1.34.12\n  kind: v0.30.0\n  helm: v3.19.0\n  cri_tools: v1.34.0\n  etcd: v3.6.5\n  coredns: v1.12.1\n  pause: 3.10.1\n  engine: 26.1.5\n";
        let e = Pins::parse(Path::new("pins.yaml"), text, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("kubernetes.kubernetes") && e.contains("not a module version"), "{e}");
    }

    #[test]
    fn hash_is_stable_across_formatting() {
        let a = pins();
        let b = Pins::parse(
            Path::new("other.yaml"),
            "# comment\npython: {packages: [\"jupyterhub==6.1.1\", {spec: jupyterhub-idle-culler==2.0.0}], pre: false}\nnpm: {packages: [configurable-http-proxy@5.3.0]}\n",
            Path::new("/elsewhere"),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        // Pinned literal: a change of the canonical form must be deliberate (it reinstalls
        // every user's environment); bump LAYOUT_VERSION instead of editing this silently.
        assert_eq!(
            a.canonical(),
            r#"{"layout":1,"pins":{"python":{"packages":[{"spec":"jupyterhub==6.1.1"},{"spec":"jupyterhub-idle-culler==2.0.0"}]},"npm":{"packages":[{"spec":"configurable-http-proxy@5.3.0"}]}}}"#
        );
        assert!(a.hash().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn hash_is_sensitive_to_every_pin() {
        let base = pins();
        let h = base.hash();
        let mut v = base.clone();
        v.python.packages[0].spec = "jupyterhub==6.1.0".into();
        assert_ne!(v.hash(), h);
        let mut v = base.clone();
        v.python.pre = true;
        assert_ne!(v.hash(), h);
        let mut v = base.clone();
        v.python.packages[1].pre = true;
        assert_ne!(v.hash(), h);
        let mut v = base.clone();
        v.npm.packages[0].spec = "configurable-http-proxy@5.2.0".into();
        assert_ne!(v.hash(), h);
        let mut v = base.clone();
        v.python.packages.swap(0, 1);
        assert_ne!(v.hash(), h);
    }

    #[test]
    fn parse_errors_name_file_and_field() {
        let e =
            Pins::parse(Path::new("pins.yaml"), "python:\n  packagez: []\nnpm:\n  packages: []\n", Path::new(".")).unwrap_err().to_string();
        assert!(e.starts_with("pins.yaml: python.packagez: unknown field, expected one of packages, pre"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = Pins::parse(Path::new("pins.yaml"), "python:\n  packages: []\n", Path::new(".")).unwrap_err().to_string();
        assert!(e.starts_with("pins.yaml: npm: missing field"), "{e}");

        let e = Pins::parse(
            Path::new("pins.yaml"),
            "python:\n  packages:\n    - {spec: x, pree: true}\nnpm:\n  packages: []\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("pins.yaml: python.packages[0].pree: unknown field"), "{e}");

        let e = Pins::parse(Path::new("pins.yaml"), "python:\n  packages: jupyterhub\nnpm:\n  packages: []\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("pins.yaml: python.packages: wrong type"), "{e}");

        let e = Pins::parse(
            Path::new("pins.yaml"),
            "python:\n  packages: [a==1, A==2]\nnpm:\n  packages: [{spec: x@1, pre: true}]\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("pins.yaml: python.packages[1]: package `a` is already listed"), "{e}");

        let e =
            Pins::parse(Path::new("pins.yaml"), "python:\n  packages: []\nnpm:\n  packages: [{spec: x@1, pre: true}]\n", Path::new("."))
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("pins.yaml: npm.packages[0].pre: `pre` is a pip option"), "{e}");
    }

    #[test]
    fn names_are_read_off_specifiers() {
        let py = |s: &str| PackageSpec::new(s).python_name();
        assert_eq!(py("jupyterhub==6.1.1").as_deref(), Some("jupyterhub"));
        assert_eq!(py("Jupyterhub_Idle.Culler>=2").as_deref(), Some("jupyterhub-idle-culler"));
        assert_eq!(py("jupyter-server[dev]~=2.0").as_deref(), Some("jupyter-server"));
        assert_eq!(py("jupyterhub-idle-culler @ git+https://x/y.git@main").as_deref(), Some("jupyterhub-idle-culler"));
        assert_eq!(py("git+https://github.com/me/jupyterhub-idle-culler.git@fix").as_deref(), Some("jupyterhub-idle-culler"));
        assert_eq!(py("git+https://h/r.git#egg=docker_image_cleaner").as_deref(), Some("docker-image-cleaner"));
        assert_eq!(py("/src/jupyterhub-idle-culler/").as_deref(), Some("jupyterhub-idle-culler"));
        assert_eq!(py("/w/jupyterhub_idle_culler-2.1.0-py3-none-any.whl").as_deref(), Some("jupyterhub-idle-culler"));
        assert_eq!(py("/w/binderhub-1.0.0.tar.gz").as_deref(), Some("binderhub"));
        let npm = |s: &str| PackageSpec::new(s).npm_name();
        assert_eq!(npm("configurable-http-proxy@5.3.0").as_deref(), Some("configurable-http-proxy"));
        assert_eq!(npm("@scope/pkg@1").as_deref(), Some("@scope/pkg"));
        assert_eq!(npm("github:me/configurable-http-proxy#fix").as_deref(), Some("configurable-http-proxy"));
        assert_eq!(npm("/tmp/configurable-http-proxy-5.3.0.tgz").as_deref(), Some("configurable-http-proxy"));
    }

    #[test]
    fn merge_replaces_by_name_and_appends() {
        let base = pins();
        let o = PinsOverride {
            python: Some(PythonPinsOverride {
                packages: vec![
                    PackageSpec::new("git+https://github.com/me/jupyterhub-idle-culler@fix"),
                    PackageSpec { pre: true, ..PackageSpec::new("docker-image-cleaner==1.0.0b3") },
                ],
                pre: None,
                replace: false,
            }),
            npm: None,
            kubernetes: None,
        };
        let m = base.merged_with(&o);
        let specs: Vec<&str> = m.python.packages.iter().map(|p| p.spec.as_str()).collect();
        assert_eq!(specs, ["jupyterhub==6.1.1", "git+https://github.com/me/jupyterhub-idle-culler@fix", "docker-image-cleaner==1.0.0b3"]);
        assert_eq!(m.npm, base.npm);
        assert_ne!(m.hash(), base.hash());
        assert_eq!(base.merged_with(&PinsOverride::default()), base);

        let o = PinsOverride {
            npm: Some(NpmPinsOverride { packages: vec![PackageSpec::new("configurable-http-proxy@4.6.1")], replace: true }),
            python: Some(PythonPinsOverride { packages: vec![], pre: Some(true), replace: false }),
            kubernetes: None,
        };
        let m = base.merged_with(&o);
        assert_eq!(m.npm.packages, vec![PackageSpec::new("configurable-http-proxy@4.6.1")]);
        assert!(m.python.pre);
        assert_eq!(m.python.packages, base.python.packages);
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let p = Pins::parse(
            Path::new("p.yaml"),
            "python:\n  packages: [{spec: ../culler, editable: true}, ./x.whl]\nnpm:\n  packages: [file:./chp]\n",
            Path::new("/repo/fixtures"),
        )
        .unwrap();
        assert_eq!(p.python.packages[0].spec, "/repo/culler");
        assert!(p.python.packages[0].editable);
        assert_eq!(p.python.packages[1].spec, "/repo/fixtures/x.whl");
        assert_eq!(p.npm.packages[0].spec, "file:/repo/fixtures/chp");
    }

    fn fake_env(home: &Path, pins: &Pins) -> PathBuf {
        let root = home.join("env").join(pins.hash());
        fs::create_dir_all(root.join("venv/bin")).unwrap();
        fs::write(root.join("venv/bin/python"), "").unwrap();
        let marker = ReadyMarker {
            layout: LAYOUT_VERSION,
            hash: pins.hash(),
            pins: pins.clone(),
            versions: [("jupyterhub".to_string(), "6.1.1".to_string())].into(),
            python_distributions: BTreeMap::new(),
            npm_packages: BTreeMap::new(),
            installed_unix_secs: 0,
            install_seconds: 1.0,
        };
        fs::write(root.join("ready.json"), serde_json::to_vec(&marker).unwrap()).unwrap();
        root
    }

    /// Programs that cannot exist: any attempt to install fails with PythonMissing.
    fn no_programs() -> Programs {
        Programs { python: "/nonexistent/python3".into(), npm: "/nonexistent/npm".into(), node: "/nonexistent/node".into() }
    }

    #[test]
    fn marker_fast_path_starts_nothing() {
        let home = tempfile::tempdir().unwrap();
        let pins = pins();
        let root = fake_env(home.path(), &pins);
        let tc = Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &no_programs()).unwrap();
        assert_eq!(tc.root, root);
        assert_eq!(tc.versions["jupyterhub"], "6.1.1");
        assert_eq!(tc.python(), root.join("venv/bin/python"));
        assert_eq!(tc.venv_bin("jupyterhub-singleuser"), root.join("venv/bin/jupyterhub-singleuser"));
        assert_eq!(tc.npm_bin("configurable-http-proxy"), root.join("npm/node_modules/.bin/configurable-http-proxy"));
        assert!(matches!(Toolchain::state_in(home.path(), &pins), EnvState::Ready(_)));
        // No lock file: the fast path does not even take the lock.
        assert!(!home.path().join("env").join(format!("{}.lock", pins.hash())).exists());
        // An environment installed before the Kubernetes pins existed (or with others) is the
        // same environment: a Kubernetes pin installs nothing here.
        let mut with_kube = pins.clone();
        with_kube.kubernetes = Pins::load_default().unwrap().kubernetes;
        assert!(with_kube.kubernetes.is_some());
        match Toolchain::state_in(home.path(), &with_kube) {
            EnvState::Ready(tc) => assert_eq!(tc.pins, with_kube),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mismatched_or_broken_marker_is_not_ready() {
        let home = tempfile::tempdir().unwrap();
        let pins = pins();
        let root = fake_env(home.path(), &pins);
        // Other pins stored under this hash (tampered): not ready.
        let mut other = pins.clone();
        other.python.pre = true;
        let mut m: ReadyMarker = serde_json::from_slice(&fs::read(root.join("ready.json")).unwrap()).unwrap();
        m.pins = other;
        fs::write(root.join("ready.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(matches!(Toolchain::state_in(home.path(), &pins), EnvState::Missing { .. }));
        let e = Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &no_programs()).unwrap_err();
        assert!(matches!(e, ToolchainError::PythonMissing { .. }), "{e}");
        assert!(e.to_string().contains("apt-get install python3-venv"), "{e}");

        // Interpreter gone: not ready either.
        let root = fake_env(home.path(), &pins);
        fs::remove_file(root.join("venv/bin/python")).unwrap();
        assert!(matches!(Toolchain::state_in(home.path(), &pins), EnvState::Missing { .. }));
    }

    #[test]
    fn npm_missing_is_reported_before_installing() {
        let home = tempfile::tempdir().unwrap();
        let python = find_program("python3").expect("this test needs python3 on PATH");
        let programs = Programs { python: python.to_string_lossy().into(), ..no_programs() };
        let e = Toolchain::ensure_with(home.path(), &pins(), EnsureOptions::default(), &programs).unwrap_err();
        assert!(matches!(e, ToolchainError::NpmMissing), "{e}");
        assert!(e.to_string().contains("apt-get install npm"), "{e}");
        // Nothing was built.
        let built: Vec<_> = fs::read_dir(home.path().join("env")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(built.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "{built:?}");
    }

    #[test]
    fn failed_pip_shows_tail_and_log_and_publishes_nothing() {
        let python = find_program("python3").expect("this test needs python3 on PATH");
        let home = tempfile::tempdir().unwrap();
        // A "python" whose venv works but whose pip always fails: a shell script pretending.
        let bin = home.path().join("fakebin");
        fs::create_dir_all(&bin).unwrap();
        let fake = bin.join("python3");
        fs::write(
            &fake,
            format!(
                "#!/bin/sh\n# create a venv whose python is this script's pip-failing twin\nmkdir -p \"$3/bin\"\nprintf '#!/bin/sh\\nfor i in $(seq 1 30); do echo pip line $i; done\\necho ERROR: no matching distribution >&2\\nexit 1\\n' > \"$3/bin/python\"\nchmod +x \"$3/bin/python\"\n# real python unused: {}\n",
                python.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let programs = Programs { python: fake.to_string_lossy().into(), npm: "/bin/true".into(), node: "/bin/true".into() };
        let pins = pins();
        let e = Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &programs).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ToolchainError::StepFailed { .. }), "{msg}");
        assert!(msg.starts_with("pip install jupyterhub==6.1.1"), "{msg}");
        assert!(msg.contains("ERROR: no matching distribution"), "{msg}");
        assert!(msg.contains("pip line 30") && !msg.contains("pip line 10\n"), "{msg}");
        assert!(msg.contains("install.log"), "{msg}");
        assert!(!home.path().join("env").join(pins.hash()).exists());
        assert!(matches!(Toolchain::state_in(home.path(), &pins), EnvState::Missing { .. }));
    }

    /// A fake `python3` whose venv python "installs" instantly (counting pip runs in
    /// `<home>/pip-runs`) and reports fixed versions: a full install without network.
    fn fake_programs(home: &Path) -> Programs {
        use std::os::unix::fs::PermissionsExt;
        let bin = home.join("fakebin");
        fs::create_dir_all(&bin).unwrap();
        let venv_python = format!(
            "#!/bin/sh\nif [ \"$1\" = -c ]; then echo '{{\"python\": \"3.0.0\", \"distributions\": {{\"JupyterHub\": \"6.1.1\", \"pip\": \"1\"}}}}'; exit 0; fi\necho run >> {}/pip-runs\nsleep 0.3\necho installed \"$@\"\n",
            home.display()
        );
        let fake = bin.join("python3");
        fs::write(
            &fake,
            format!("#!/bin/sh\nmkdir -p \"$3/bin\"\ncat > \"$3/bin/python\" <<'EOF'\n{venv_python}EOF\nchmod +x \"$3/bin/python\"\n"),
        )
        .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        Programs { python: fake.to_string_lossy().into(), npm: "/bin/true".into(), node: "/bin/true".into() }
    }

    #[test]
    fn concurrent_installs_install_once_and_publish_atomically() {
        let home = tempfile::tempdir().unwrap();
        let programs = fake_programs(home.path());
        let pins = pins();
        let results: Vec<Toolchain> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|_| s.spawn(|| Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &programs).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(results[0].versions["jupyterhub"], "6.1.1");
        assert_eq!(fs::read_to_string(home.path().join("pip-runs")).unwrap().lines().count(), 1);
        let env = home.path().join("env");
        let link = env.join(pins.hash());
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        let builds: Vec<_> = fs::read_dir(&env)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(builds.len(), 1, "{builds:?}");
        assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from(&builds[0]));

        // A stale marker forces a reinstall that sweeps leftovers and the old build.
        fs::create_dir(env.join(format!(".{}.killed-install", pins.hash()))).unwrap();
        let mut m = results[0].marker().unwrap();
        m.layout = 0;
        fs::write(link.join("ready.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        let again = Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &programs).unwrap();
        assert_eq!(again, results[0]);
        assert_eq!(fs::read_to_string(home.path().join("pip-runs")).unwrap().lines().count(), 2);
        let builds: Vec<_> = fs::read_dir(&env)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(builds.len(), 1, "{builds:?}");
        assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from(&builds[0]));
        assert!(!builds[0].contains("killed"));
        let log = fs::read_to_string(again.install_log()).unwrap();
        assert!(log.contains("installed -m pip install"), "{log}");
    }

    /// Installs the repository's own pins (jupyterhub, the culler, configurable-http-proxy)
    /// into a temp HUBCHAOS_HOME and checks the entry points the components use.
    #[test]
    #[ignore = "installs the repository pins from PyPI and npm (~1 min)"]
    fn real_install_of_the_repository_pins() {
        let home = tempfile::tempdir().unwrap();
        let pins = Pins::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pins.yaml")).unwrap();
        let tc = Toolchain::ensure_in(home.path(), &pins, EnsureOptions { progress: true }).unwrap();
        eprintln!("{:?}", tc.versions);
        for bin in ["jupyterhub", "jupyterhub-singleuser"] {
            let out = Command::new(tc.venv_bin(bin)).arg("--version").output().unwrap();
            assert!(out.status.success(), "{bin}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let out = Command::new(tc.npm_bin("configurable-http-proxy")).arg("--version").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new(tc.python()).args(["-m", "jupyterhub_idle_culler", "--help"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(tc.versions["jupyterhub"], "6.1.1");
        assert_eq!(tc.versions["configurable-http-proxy"], "5.3.0");
    }

    /// Really installs a tiny pin set (one small pure-python package, one small npm package)
    /// into a temp HUBCHAOS_HOME, then takes the fast path.
    #[test]
    #[ignore = "installs from PyPI and npm"]
    fn real_install_of_a_tiny_pin_set() {
        let home = tempfile::tempdir().unwrap();
        let pins = Pins::parse(
            Path::new("tiny.yaml"),
            "python:\n  packages: [six==1.16.0]\nnpm:\n  packages: [is-number@7.0.0]\n",
            Path::new("."),
        )
        .unwrap();
        let t = Instant::now();
        let tc = Toolchain::ensure_in(home.path(), &pins, EnsureOptions { progress: true }).unwrap();
        eprintln!("installed in {:.1}s: {:?}", t.elapsed().as_secs_f64(), tc.versions);
        assert_eq!(tc.versions["six"], "1.16.0");
        assert_eq!(tc.versions["is-number"], "7.0.0");
        assert!(tc.versions.contains_key("python") && tc.versions.contains_key("node"));
        assert!(tc.python().exists());
        assert!(tc.venv_bin("pip").exists());
        assert!(fs::symlink_metadata(&tc.root).unwrap().file_type().is_symlink());
        let out = Command::new(tc.python()).args(["-c", "import six, sys; print(sys.prefix)"]).output().unwrap();
        assert!(out.status.success());
        let log = fs::read_to_string(tc.install_log()).unwrap();
        assert!(log.contains("==> [2/4] pip install six==1.16.0"), "{log}");
        let marker = tc.marker().unwrap();
        assert!(marker.python_distributions.contains_key("pip"));
        // Entry points keep working: the build dir never moved.
        let out = Command::new(tc.venv_bin("pip")).arg("--version").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let t = Instant::now();
        let again = Toolchain::ensure_with(home.path(), &pins, EnsureOptions::default(), &no_programs()).unwrap();
        assert_eq!(again, tc);
        assert!(t.elapsed() < Duration::from_millis(200));
    }
}
