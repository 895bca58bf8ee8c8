//! The hub stack on kind: a jupyterhub chart installed by the helm CLI into the run's namespace.
//!
//! Which chart ([`ChartSource::resolve_for`]): the z2jh checkout a chart PR's CI passes, the
//! repository root or its `jupyterhub/` directory: `HUBCHAOS_CHART_JUPYTERHUB=PATH` (which
//! `hubchaos run --chart jupyterhub=PATH` and `make … CHART=PATH` set), else `charts.jupyterhub`
//! in the profile; else the reference chart under `kind/charts/jupyterhub`, which reads the
//! same values keys. One
//! mapping, [`chart_values`], turns a scenario's options (hub, culler, deploy plan) into values
//! that serve both: z2jh's keys only, z2jh's offline needs included (no pre-puller, no user
//! scheduler or placeholders, no cloud-metadata blocking, no network policies that nothing
//! enforces here, no user storage, a ClusterIP proxy). A scenario's node adds the build node's
//! values, the binderhub chart's keys (`imageBuilderType: dind`, `dind.*`, `imageCleaner.*`),
//! which the reference chart reads ([`super::build_node`]); a `misconfigure` is a values
//! override at the component's environment key ([`ENV_KEYS`]).
//!
//! The values are written into the run dir (`helm/values-<n>.json`: JSON is YAML) and applied
//! with `helm upgrade --install` (bounded); readiness is awaited through kube-rs (the `hub`
//! and `proxy` Deployments rolled out), not with `--wait`, so a stuck rollout says which
//! Deployment and why.
//!
//! The hub's database lives in the chart's claim `hub-db-dir` (`hub.db.type: sqlite-pvc`): it
//! outlives a hub restart, as on a real deployment, so the culler can arrive by a chart
//! upgrade (which restarts the hub, as in 2018) at the users that piled up. The cluster has no
//! storage provisioner: the harness provides the claim's volume itself, a hostPath on the core
//! node bound to this run's claim only ([`HubDbVolume`]), and writes a seeded database into it
//! before the hub starts, as the local backend seeds its file.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use k8s_openapi::api::core::v1::PersistentVolume;
use serde_json::{json, Value};

use super::kube::KindCluster;
use super::pools::POOL_LABEL;
use crate::component::culler::CullerOptions;
use crate::component::hub::{HubOptions, CULLER_SCOPES, HARNESS_SCOPES};
use crate::component::node::NodeOptions;
use crate::fault::misconfigure::{EnvOverride, OverrideValue};
use crate::profile::{ChartName, Profile};

/// The release name; both charts name their resources `hub`, `proxy`, `proxy-api`,
/// `proxy-public` whatever it is, and label their pods `release=<it>`.
pub const RELEASE: &str = "jupyterhub";
/// The environment variable naming a jupyterhub chart to install instead of the reference one.
pub const CHART_ENV: &str = "HUBCHAOS_CHART_JUPYTERHUB";
/// The service z2jh (and the reference chart) runs the culler as, inside the hub pod.
pub const CULLER_SERVICE: &str = "jupyterhub-idle-culler";
/// The harness's own service, whose token every harness client sends.
pub const HARNESS_SERVICE: &str = "harness";
/// The Deployments a hub stack is ready with.
pub const DEPLOYMENTS: &[&str] = &["hub", "proxy"];
/// Label selectors of the hub's and the proxy's pods (both charts label them so).
pub fn pod_selector(component: &str) -> String {
    format!("component={component},release={RELEASE}")
}

/// How long `helm upgrade --install` may take (it does not wait for readiness).
const HELM_WITHIN: Duration = Duration::from_secs(120);
/// How long the hub and the proxy get to roll out after helm returned.
pub const ROLLOUT_WITHIN: Duration = Duration::from_secs(180);

/// Where the chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    /// `kind/charts/jupyterhub` of this repository.
    Reference(PathBuf),
    /// A z2jh checkout (its `jupyterhub/` chart directory).
    Given(PathBuf),
}

/// What a given chart path should be, for the messages that refuse one.
pub const WHAT_TO_GIVE: &str = "give a z2jh checkout (its root or its jupyterhub/ directory)";

/// The chart directory `given` names: `given` itself or its `jupyterhub/` (a z2jh checkout's
/// root), whichever holds a `Chart.yaml`, made absolute. The error says what is wrong with it
/// (without naming where it came from: the caller does).
pub fn chart_dir(given: &Path) -> Result<PathBuf, String> {
    if given.as_os_str().is_empty() {
        return Err(format!("empty path: {WHAT_TO_GIVE}"));
    }
    if !given.exists() {
        return Err(format!("{} does not exist: {WHAT_TO_GIVE}", given.display()));
    }
    for dir in [given.to_path_buf(), given.join("jupyterhub")] {
        if dir.join("Chart.yaml").is_file() {
            return Ok(std::path::absolute(&dir).unwrap_or(dir));
        }
    }
    Err(format!("{}: no jupyterhub chart there (no Chart.yaml in it or in its jupyterhub/): {WHAT_TO_GIVE}", given.display()))
}

impl ChartSource {
    /// The chart named by `given`, else the reference one. A given path that holds no chart
    /// is an error naming it and what was looked for.
    pub fn resolve(given: Option<&Path>) -> anyhow::Result<Self> {
        match given {
            None => Ok(ChartSource::Reference(crate::paths::charts_dir().join("jupyterhub"))),
            Some(path) => chart_dir(path).map(ChartSource::Given).map_err(|e| anyhow!(e)),
        }
    }

    /// From [`CHART_ENV`] alone (an empty value is an error, not the reference chart).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::resolve_with(std::env::var_os(CHART_ENV).as_deref(), None)
    }

    /// The chart a run installs: [`CHART_ENV`]'s (set for the scenario suite by `hubchaos run
    /// --chart jupyterhub=PATH` and by `make … CHART=PATH`), else `profile`'s
    /// `charts.jupyterhub`, else the reference chart.
    pub fn resolve_for(profile: Option<&Profile>) -> anyhow::Result<Self> {
        Self::resolve_with(std::env::var_os(CHART_ENV).as_deref(), profile)
    }

    /// [`ChartSource::resolve_for`] with [`CHART_ENV`]'s value given (`None`: unset). Each
    /// error names where the refused path came from.
    pub fn resolve_with(env: Option<&OsStr>, profile: Option<&Profile>) -> anyhow::Result<Self> {
        match env {
            Some(v) if v.is_empty() => {
                bail!("{CHART_ENV} is empty: unset it for the reference chart (or the profile's), or set it to a z2jh checkout")
            }
            Some(v) => chart_dir(Path::new(v))
                .map(ChartSource::Given)
                .map_err(|e| anyhow!("{CHART_ENV} (set by `hubchaos run --chart jupyterhub=PATH` and `make CHART=PATH`): {e}")),
            None => match profile.and_then(|p| Some((p, p.chart(ChartName::Jupyterhub)?))) {
                Some((p, path)) => chart_dir(path).map(ChartSource::Given).map_err(|e| {
                    let file = p.source.as_deref().unwrap_or(Path::new("the profile"));
                    anyhow!("{}: charts.jupyterhub: {e}", file.display())
                }),
                None => Self::resolve(None),
            },
        }
    }

    pub fn dir(&self) -> &Path {
        match self {
            ChartSource::Reference(p) | ChartSource::Given(p) => p,
        }
    }

    /// `reference chart` or `chart <dir>`, for phases and reports.
    pub fn describe(&self) -> String {
        match self {
            ChartSource::Reference(_) => "the reference chart (kind/charts/jupyterhub)".into(),
            ChartSource::Given(p) => format!("the chart at {}", p.display()),
        }
    }
}

/// The components whose image a user may name instead of the stack image built here (what
/// chartpress built for their chart PR), each in `HUBCHAOS_IMAGE_<COMPONENT>`.
pub const NAMED_IMAGE_COMPONENTS: &[&str] = &["hub", "proxy", "singleuser"];
/// The build node's images, always the ones built here (a chart PR's CI builds no docker
/// daemon or cleaner).
pub const BUILD_NODE_IMAGE_COMPONENTS: &[&str] = &["image-cleaner", super::stack_image::DIND];

/// One image as the charts' values name it: `name` and `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
}

impl ImageRef {
    /// `NAME:TAG` (the tag after the last `:` that follows the last `/`, so a registry's port
    /// is part of the name); no tag, or an empty part, is refused naming what was given.
    pub fn parse(reference: &str) -> anyhow::Result<Self> {
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        let Some(colon) = reference[last_slash..].rfind(':').map(|i| i + last_slash) else {
            bail!("image `{reference}` has no tag: name it as NAME:TAG (what the chart's image.name and image.tag take)");
        };
        let (name, tag) = (&reference[..colon], &reference[colon + 1..]);
        if name.is_empty() || tag.is_empty() || reference.contains(char::is_whitespace) {
            bail!("image `{reference}` is not NAME:TAG");
        }
        Ok(Self { name: name.into(), tag: tag.into() })
    }

    /// The stack image built here for `component` (`hubchaos/<component>:<key>`).
    pub fn stack(component: &str, key: &str) -> Self {
        Self { name: format!("hubchaos/{component}"), tag: key.into() }
    }
}

/// The environment variable naming `component`'s image (`HUBCHAOS_IMAGE_HUB`, …).
pub fn image_env(component: &str) -> String {
    format!("HUBCHAOS_IMAGE_{}", component.to_ascii_uppercase())
}

/// The images the charts run: for each of [`NAMED_IMAGE_COMPONENTS`] the one the user named
/// (`lookup` reads the environment), else the stack image of `key`. Also says whether any stack
/// image is used (then the stack images must be built and loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImages {
    pub by_component: BTreeMap<String, ImageRef>,
    pub named: Vec<String>,
}

impl StackImages {
    pub fn resolve(key: &str, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut by_component = BTreeMap::new();
        let mut named = Vec::new();
        for component in NAMED_IMAGE_COMPONENTS {
            let var = image_env(component);
            let image = match lookup(&var) {
                Some(given) => {
                    named.push(component.to_string());
                    ImageRef::parse(&given).with_context(|| var.clone())?
                }
                None => ImageRef::stack(component, key),
            };
            by_component.insert(component.to_string(), image);
        }
        for component in BUILD_NODE_IMAGE_COMPONENTS {
            by_component.insert(component.to_string(), ImageRef::stack(component, key));
        }
        Ok(Self { by_component, named })
    }

    /// From the process environment (an empty variable counts as unset).
    pub fn from_env(key: &str) -> anyhow::Result<Self> {
        Self::resolve(key, |var| std::env::var(var).ok().filter(|v| !v.is_empty()))
    }

    /// Whether a stack image built here runs (one component not named by the user).
    pub fn uses_stack_images(&self) -> bool {
        self.named.len() < NAMED_IMAGE_COMPONENTS.len()
    }

    fn value(&self, component: &str) -> Value {
        let image = &self.by_component[component];
        json!({ "name": image.name, "tag": image.tag, "pullPolicy": "IfNotPresent" })
    }
}

/// What a scenario's deploy becomes in chart values.
pub struct ChartInputs<'a> {
    /// The images of the hub, the proxy and the user servers.
    pub images: &'a StackImages,
    pub hub: &'a HubOptions,
    /// `None`: no culler (yet).
    pub culler: Option<&'a CullerOptions>,
    /// The hub's extra config with the plan's and the profile's appended.
    pub extra_config: &'a str,
    pub harness_token: &'a str,
    pub proxy_token: &'a str,
    pub run_id: &'a str,
    /// The plan's `misconfigure` overrides, checked by [`check_env_overrides`].
    pub env_overrides: &'a [EnvOverride],
    /// The scenario's node: the build node's docker daemon and cleaner (`None`: neither).
    pub build_node: Option<&'a NodeOptions>,
}

/// What the harness points the cleaner's `DOCKER_HOST` at: the recorder's listener in the
/// daemon's socket directory, which the chart mounts on the cleaner's `/var/run`.
pub fn cleaner_docker_host() -> String {
    format!("unix:///var/run/{}", super::build_node::CLEANER_SOCKET_NAME)
}

/// The build node's values (the binderhub chart's keys): the docker daemon on the ssd pool,
/// without a bridge or iptables rules of its own (nothing is built or served from it here: it
/// holds images, as the cleaner scenarios need), and the cleaner with the scenario's settings.
/// What the chart has no key for (the interval, the client timeout) goes in
/// `imageCleaner.extraEnv`, as an operator would set it, with the recorder's `DOCKER_HOST`.
fn build_node_values(images: &StackImages, node: &NodeOptions) -> Value {
    let cleaner = match &node.cleaner {
        None => json!({ "enabled": false }),
        Some(c) => json!({
            "enabled": true,
            "image": images.value("image-cleaner"),
            "delay": c.delay.as_secs_f64(),
            "imageGCThresholdType": c.threshold_type.as_str(),
            "imageGCThresholdHigh": c.threshold_high,
            "extraEnv": {
                "DOCKER_HOST": cleaner_docker_host(),
                "DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS": c.interval.as_secs_f64().to_string(),
                "DOCKER_IMAGE_CLEANER_TIMEOUT_SECONDS": c.timeout.as_secs().max(1).to_string(),
                "PYTHONUNBUFFERED": "1",
            },
        }),
    };
    json!({
        "imageBuilderType": "dind",
        "config": { "BinderHub": { "build_node_selector": { POOL_LABEL: super::build_node::BUILD_POOL } } },
        "dind": {
            "daemonset": { "image": images.value(super::stack_image::DIND), "extraArgs": ["--bridge=none", "--iptables=false"] },
            "hostLibDir": super::pools::DIND_LIB_DIR,
            "hostSocketDir": super::pools::DIND_SOCKET_DIR,
            "hostSocketName": super::build_node::DOCKER_SOCKET_NAME,
        },
        "imageCleaner": cleaner,
    })
}

/// The component name a `misconfigure` of the culler targets (as on local).
pub const CULLER_COMPONENT: &str = "culler";

/// Where a component's environment is in the chart's values (z2jh's keys): on kind a
/// `misconfigure` is a values override there. The culler has no key of its own: z2jh starts it
/// as a service of the hub, and JupyterHub applies a service's `environment` last (over the
/// `JUPYTERHUB_API_TOKEN` it sets itself, `Spawner.get_env`), so [`culler_patch`] sets it in
/// `hub.extraConfig`, with the culler's other settings that `cull.*` cannot say.
pub const ENV_KEYS: &[(&str, &[&str])] = &[
    ("hub", &["hub", "extraEnv"]),
    ("proxy", &["proxy", "chp", "extraEnv"]),
    ("singleuser", &["singleuser", "extraEnv"]),
    ("image-cleaner", &["imageCleaner", "extraEnv"]),
];

/// Refuse, naming it, an override the charts cannot express: a component with no environment
/// in the values, or a value that is not a literal (unset: only the culler's, whose environment
/// is a dict the patch can drop a key from; strip-scheme: only the cleaner's `DOCKER_HOST`,
/// the one value with a scheme the harness sets).
pub fn check_env_overrides(overrides: &[EnvOverride]) -> anyhow::Result<()> {
    for o in overrides {
        let culler = o.component == CULLER_COMPONENT;
        if !culler && !ENV_KEYS.iter().any(|(c, _)| *c == o.component) {
            bail!(
                "misconfigure {}: no chart value sets the environment of `{}` on kind (those with one: hub, proxy, singleuser, image-cleaner, culler)",
                o.key,
                o.component
            );
        }
        match &o.value {
            OverrideValue::Set(_) => {}
            OverrideValue::Unset if culler => {}
            OverrideValue::StripScheme if o.component == "image-cleaner" && o.key == "DOCKER_HOST" => {}
            other => {
                bail!("misconfigure {} of `{}`: {other:?} cannot be said in chart values on kind; set a value instead", o.key, o.component)
            }
        }
    }
    Ok(())
}

/// Python for `hub.extraConfig`: the culler service's environment overridden.
fn culler_env_patch(overrides: &[EnvOverride]) -> String {
    let mut py = String::new();
    for o in overrides.iter().filter(|o| o.component == CULLER_COMPONENT) {
        let key = serde_json::to_string(&o.key).expect("strings serialise");
        let change = match &o.value {
            OverrideValue::Set(v) => {
                format!("_service.setdefault('environment', {{}})[{key}] = {}", serde_json::to_string(v).expect("strings serialise"))
            }
            _ => format!("_service.setdefault('environment', {{}}).pop({key}, None)"),
        };
        py.push_str(&format!(
            "for _service in c.JupyterHub.services:\n    if _service.get('name') == {CULLER_SERVICE:?}:\n        {change}\n"
        ));
    }
    py
}

/// `values` with each override of a component in [`ENV_KEYS`] set at its key.
fn apply_env_overrides(values: &mut Value, overrides: &[EnvOverride]) {
    for o in overrides {
        let Some((_, path)) = ENV_KEYS.iter().find(|(c, _)| *c == o.component) else { continue };
        let mut at = &mut *values;
        for key in *path {
            at = at.as_object_mut().expect("values are objects down to extraEnv").entry(key.to_string()).or_insert_with(|| json!({}));
        }
        let value = match &o.value {
            OverrideValue::Set(v) => v.clone(),
            OverrideValue::StripScheme => {
                let own = at.get(&o.key).and_then(Value::as_str).unwrap_or_default();
                own.split_once("://").map_or(own, |(_, rest)| rest).to_string()
            }
            OverrideValue::Unset => continue,
        };
        at[o.key.as_str()] = Value::String(value);
    }
}

/// Python for `hub.extraConfig` that makes the culler service what the scenario declares where
/// z2jh's `cull.*` keys cannot say it: its role's scopes, and `--api-page-size`.
fn culler_patch(hub: &HubOptions, culler: Option<&CullerOptions>, overrides: &[EnvOverride]) -> String {
    let Some(culler) = culler else { return String::new() };
    let mut py = culler_env_patch(overrides);
    let default_scopes: Vec<String> = CULLER_SCOPES.iter().map(|s| s.to_string()).collect();
    if hub.culler_scopes != default_scopes {
        py.push_str(&format!(
            "for _role in c.JupyterHub.load_roles:\n    if _role.get('name') == {CULLER_SERVICE:?}:\n        _role['scopes'] = {}\n",
            serde_json::to_string(&hub.culler_scopes).expect("strings serialise")
        ));
    }
    if culler.api_page_size > 0 {
        py.push_str(&format!(
            "for _service in c.JupyterHub.services:\n    if _service.get('name') == {CULLER_SERVICE:?}:\n        _service['command'] = list(_service['command']) + ['--api-page-size={}']\n",
            culler.api_page_size
        ));
    }
    py
}

/// The values for either chart (z2jh's keys only; see the module docs for why each one).
pub fn chart_values(i: &ChartInputs<'_>) -> Value {
    let hub = i.hub;
    let mut extra_config = BTreeMap::new();
    let patch = culler_patch(hub, i.culler, i.env_overrides);
    if !patch.is_empty() {
        extra_config.insert("hubchaos-culler", patch);
    }
    if !i.extra_config.trim().is_empty() {
        extra_config.insert("hubchaos-scenario", i.extra_config.to_string());
    }
    let cull = match i.culler {
        None => json!({ "enabled": false }),
        Some(c) => json!({
            "enabled": true,
            "users": c.cull_users,
            "adminUsers": c.cull_admin_users,
            "removeNamedServers": c.remove_named_servers,
            "timeout": c.timeout.as_secs(),
            "every": c.cull_every.as_secs().max(1),
            "concurrency": c.concurrency,
            "maxAge": c.max_age.as_secs(),
        }),
    };
    let mut values = json!({
        "hub": {
            "image": i.images.value("hub"),
            "db": { "type": "sqlite-pvc", "pvc": { "storageClassName": "" } },
            "networkPolicy": { "enabled": false },
            "nodeSelector": { POOL_LABEL: "core" },
            // As the local backend's hub: no shutdown after failed spawns, its spawn limit.
            "consecutiveFailureLimit": 0,
            "concurrentSpawnLimit": 100,
            "config": {
                "JupyterHub": {
                    "authenticator_class": "dummy",
                    "admin_access": true,
                    "last_activity_interval": hub.last_activity_interval.as_secs().max(1),
                    "allow_named_servers": hub.allow_named_servers,
                    "named_server_limit_per_user": hub.named_server_limit_per_user,
                    "log_level": hub.log_level,
                    "api_page_default_limit": 50,
                    "api_page_max_limit": 200,
                },
                "Authenticator": { "allow_all": true, "admin_users": hub.admin_users },
                "Spawner": { "poll_interval": hub.poll_interval.as_secs().max(1), "http_timeout": 30 },
            },
            "services": { HARNESS_SERVICE: { "apiToken": i.harness_token } },
            "loadRoles": { HARNESS_SERVICE: { "services": [HARNESS_SERVICE], "scopes": HARNESS_SCOPES } },
            "extraConfig": extra_config,
        },
        "proxy": {
            "secretToken": i.proxy_token,
            "service": { "type": "ClusterIP" },
            "https": { "enabled": false },
            "chp": {
                "image": i.images.value("proxy"),
                "networkPolicy": { "enabled": false },
                "nodeSelector": { POOL_LABEL: "core" },
            },
        },
        "singleuser": {
            "image": i.images.value("singleuser"),
            "cmd": "jupyterhub-singleuser",
            "defaultUrl": "/api",
            "startTimeout": 120,
            "storage": { "type": "none" },
            "networkPolicy": { "enabled": false },
            "cloudMetadata": { "blockWithIptables": false },
            "memory": { "guarantee": null },
            "nodeSelector": { POOL_LABEL: "user" },
            "extraEnv": {
                // No passwd entry for uid 1000 in the image: jupyter needs a writable HOME.
                "HOME": "/tmp",
                "JUPYTERHUB_ACTIVITY_INTERVAL": hub.singleuser_activity_interval.as_secs().to_string(),
                "HUBCHAOS_RUN_ID": i.run_id,
            },
        },
        "scheduling": {
            "userScheduler": { "enabled": false },
            "userPlaceholder": { "enabled": false },
            "corePods": { "nodeAffinity": { "matchNodePurpose": "require" } },
            "userPods": { "nodeAffinity": { "matchNodePurpose": "require" } },
        },
        "prePuller": { "hook": { "enabled": false }, "continuous": { "enabled": false } },
        "cull": cull,
        "imagePullSecret": { "create": false },
        "rbac": { "create": true },
        "debug": { "enabled": false },
    });
    if let Some(node) = i.build_node {
        let build = build_node_values(i.images, node);
        for (k, v) in build.as_object().expect("an object") {
            values[k.as_str()] = v.clone();
        }
    }
    apply_env_overrides(&mut values, i.env_overrides);
    values
}

/// The helm CLI pointed at one kind cluster and one namespace.
#[derive(Debug, Clone)]
pub struct Helm {
    pub program: PathBuf,
    pub kubeconfig: PathBuf,
    pub context: String,
    pub namespace: String,
    /// Where helm's output goes (the run's `logs/helm.log`).
    pub log: PathBuf,
}

impl Helm {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        // helm keeps its caches and config under HOME; a run's own, so nothing leaks between runs.
        let home = self.log.with_file_name("helm-home");
        cmd.env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .args(["--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(["--kube-context", &self.context, "--namespace", &self.namespace]);
        cmd
    }

    /// `helm upgrade --install RELEASE CHART -f VALUES` (bounded; no `--wait`).
    pub async fn upgrade_install(&self, chart: &Path, values: &Path) -> anyhow::Result<Duration> {
        let mut cmd = self.command();
        cmd.args(["upgrade", "--install", RELEASE]).arg(chart).arg("--values").arg(values);
        let (log, what) = (self.log.clone(), format!("helm upgrade --install {RELEASE} {}", chart.display()));
        let started = Instant::now();
        tokio::task::spawn_blocking(move || super::cluster::run_bounded(cmd, &what, HELM_WITHIN, &log)).await??;
        Ok(started.elapsed())
    }
}

/// Wait until every one of `deployments` rolled out in `ns` (bounded): the time it took, or
/// which one did not and why.
pub async fn await_rollout(
    kube: &KindCluster,
    ns: &str,
    deployments: &[&str],
    daemonsets: &[&str],
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for d in deployments {
            if let Some(why) = kube.deployment_not_rolled_out(ns, d).await? {
                waiting.push(format!("{d}: {why}"));
            }
        }
        for d in daemonsets {
            if let Some(why) = kube.daemonset_not_rolled_out(ns, d).await? {
                waiting.push(format!("daemonset {d}: {why}"));
            }
        }
        if waiting.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            bail!("not rolled out after {within:?}: {}", waiting.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The volume behind the chart's claim `hub-db-dir` of one run: a hostPath directory on the
/// core node, owned by the hub's uid, bound to that claim alone (`claimRef`), labelled so a
/// later run finds it when this one was killed.
#[derive(Debug, Clone)]
pub struct HubDbVolume {
    pub name: String,
    pub namespace: String,
    /// The directory on the core node.
    pub host_dir: String,
    pub node: String,
}

/// The label every run's hub database volume carries (its value: the run's namespace).
pub const VOLUME_LABEL: &str = "hubchaos.io/hub-db-of";
/// Where the volumes' directories live on the core node.
pub const VOLUMES_DIR: &str = "/var/lib/hubchaos/hub-db";
use super::stack_image::HUB_UID;

impl HubDbVolume {
    pub fn for_namespace(namespace: &str, node: &str) -> Self {
        Self {
            name: format!("{namespace}-hub-db"),
            namespace: namespace.to_string(),
            host_dir: format!("{VOLUMES_DIR}/{namespace}"),
            node: node.to_string(),
        }
    }

    /// The shell that makes its directory on the node, empty and owned by the hub's uid.
    pub fn prepare_script(&self) -> String {
        format!("rm -rf '{d}' && mkdir -p '{d}' && chown {HUB_UID}:{HUB_UID} '{d}' && chmod 0770 '{d}'", d = self.host_dir)
    }

    /// The shell that removes its directory.
    pub fn remove_script(&self) -> String {
        format!("rm -rf '{}'", self.host_dir)
    }

    pub fn object(&self) -> anyhow::Result<PersistentVolume> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": { "name": self.name, "labels": { VOLUME_LABEL: self.namespace } },
            "spec": {
                "capacity": { "storage": "1Gi" },
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": { "namespace": self.namespace, "name": "hub-db-dir" },
                "hostPath": { "path": self.host_dir, "type": "Directory" },
                "nodeAffinity": { "required": { "nodeSelectorTerms": [
                    { "matchExpressions": [ { "key": "kubernetes.io/hostname", "operator": "In", "values": [self.node] } ] }
                ] } },
            },
        }))?)
    }
}

/// The hub database volumes whose run's namespace is gone (a run killed before its teardown):
/// their names and namespaces.
pub async fn orphaned_volumes(kube: &KindCluster) -> anyhow::Result<Vec<(String, String)>> {
    let mut orphans = Vec::new();
    for pv in kube.persistent_volumes(VOLUME_LABEL).await? {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let ns = pv.metadata.labels.as_ref().and_then(|l| l.get(VOLUME_LABEL)).cloned().unwrap_or_default();
        if ns.is_empty() || !kube.namespace_exists(&ns).await? {
            orphans.push((name, ns));
        }
    }
    Ok(orphans)
}

/// `helm` in `home` for these pins, if built.
pub fn helm_program(home: &Path, pins: &crate::toolchain::KubePins) -> Option<PathBuf> {
    super::tools::tools(pins).into_iter().find(|t| t.name == "helm").map(|t| t.installed_path(home)).filter(|p| p.is_file())
}

/// Write `values` as `dir/values-<n>.json` (the first free n): every helm call of a run keeps
/// its values file.
pub fn write_values(dir: &Path, values: &Value) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = (1..).map(|n| dir.join(format!("values-{n}.json"))).find(|p| !p.exists()).expect("a free name");
    std::fs::write(&path, serde_json::to_vec_pretty(values)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_images(key: &str) -> StackImages {
        StackImages::resolve(key, |_| None).unwrap()
    }

    static OURS: std::sync::LazyLock<StackImages> = std::sync::LazyLock::new(|| stack_images("0123456789abcdef"));

    fn inputs<'a>(hub: &'a HubOptions, culler: Option<&'a CullerOptions>) -> ChartInputs<'a> {
        ChartInputs {
            images: &OURS,
            hub,
            culler,
            extra_config: "",
            harness_token: "h",
            proxy_token: "p",
            run_id: "r",
            env_overrides: &[],
            build_node: None,
        }
    }

    #[test]
    fn the_culler_is_off_until_it_arrives_and_then_carries_the_scenarios_flags() {
        let hub = HubOptions::default();
        let off = chart_values(&inputs(&hub, None));
        assert_eq!(off["cull"], json!({ "enabled": false }));
        let culler = CullerOptions { cull_users: true, cull_admin_users: false, timeout: Duration::from_secs(12), ..Default::default() };
        let on = chart_values(&inputs(&hub, Some(&culler)));
        assert_eq!(on["cull"]["enabled"], json!(true));
        assert_eq!(on["cull"]["users"], json!(true));
        assert_eq!(on["cull"]["adminUsers"], json!(false));
        assert_eq!(on["cull"]["timeout"], json!(12));
        assert!(on["hub"]["extraConfig"].as_object().unwrap().is_empty(), "nothing to patch: {}", on["hub"]["extraConfig"]);
    }

    #[test]
    fn what_cull_keys_cannot_say_is_patched_in_extra_config() {
        let mut hub = HubOptions::default();
        hub.culler_scopes.retain(|s| s != "admin:users");
        let culler = CullerOptions { api_page_size: 10, ..Default::default() };
        let v = chart_values(&inputs(&hub, Some(&culler)));
        let patch = v["hub"]["extraConfig"]["hubchaos-culler"].as_str().unwrap();
        assert!(patch.contains("\"jupyterhub-idle-culler\"") && !patch.contains("admin:users"), "{patch}");
        assert!(patch.contains("--api-page-size=10"), "{patch}");
    }

    #[test]
    fn a_misconfigure_on_kind_is_a_values_override_at_the_components_env_key() {
        use crate::fault::misconfigure::Misconfigure;
        let overrides: Vec<EnvOverride> = [
            Misconfigure::env("hub", "JUPYTERHUB_CRYPT_KEY", "x"),
            Misconfigure::env("proxy", "CONFIGPROXY_LOGLEVEL", "debug"),
            Misconfigure::env("singleuser", "JUPYTERHUB_ACTIVITY_INTERVAL", "0"),
            Misconfigure::env("culler", "JUPYTERHUB_API_TOKEN", "not-the-culler-token"),
        ]
        .into_iter()
        .map(|m| m.0)
        .collect();
        check_env_overrides(&overrides).unwrap();
        let (hub, culler) = (HubOptions::default(), CullerOptions::default());
        let v = chart_values(&ChartInputs { env_overrides: &overrides, ..inputs(&hub, Some(&culler)) });
        assert_eq!(v["hub"]["extraEnv"]["JUPYTERHUB_CRYPT_KEY"], "x");
        assert_eq!(v["proxy"]["chp"]["extraEnv"]["CONFIGPROXY_LOGLEVEL"], "debug");
        // Over the chart's own value, beside the harness's others.
        assert_eq!(v["singleuser"]["extraEnv"]["JUPYTERHUB_ACTIVITY_INTERVAL"], "0");
        assert_eq!(v["singleuser"]["extraEnv"]["HOME"], "/tmp");
        let patch = v["hub"]["extraConfig"]["hubchaos-culler"].as_str().unwrap();
        assert!(patch.contains("_service.setdefault('environment', {})[\"JUPYTERHUB_API_TOKEN\"] = \"not-the-culler-token\""), "{patch}");
        // Before the culler arrives there is no service to patch.
        let before = chart_values(&ChartInputs { env_overrides: &overrides, ..inputs(&hub, None) });
        assert!(before["hub"]["extraConfig"].get("hubchaos-culler").is_none());
        assert_eq!(before["hub"]["extraEnv"]["JUPYTERHUB_CRYPT_KEY"], "x");
    }

    #[test]
    fn the_build_node_is_the_binderhub_charts_dind_and_cleaner_on_the_ssd_pool() {
        use crate::component::image_cleaner::CleanerOptions;
        use crate::fault::misconfigure::Misconfigure;
        let node = NodeOptions::disk_mb(300).cleaner(CleanerOptions::quick().threshold(80.0));
        let hub = HubOptions::default();
        let v = chart_values(&ChartInputs { build_node: Some(&node), ..inputs(&hub, None) });
        assert_eq!(v["imageBuilderType"], "dind");
        assert_eq!(v["config"]["BinderHub"]["build_node_selector"][POOL_LABEL], "ssd");
        assert_eq!(v["dind"]["daemonset"]["image"]["name"], "hubchaos/dind");
        assert_eq!(v["dind"]["hostLibDir"], "/var/lib/dind");
        assert_eq!(v["imageCleaner"]["enabled"], true);
        assert_eq!(v["imageCleaner"]["image"]["tag"], "0123456789abcdef");
        assert_eq!(v["imageCleaner"]["imageGCThresholdHigh"], 80.0);
        let env = &v["imageCleaner"]["extraEnv"];
        assert_eq!(env["DOCKER_HOST"], "unix:///var/run/hubchaos-image-cleaner.sock");
        assert_eq!(env["DOCKER_IMAGE_CLEANER_INTERVAL_SECONDS"], "5");
        // The 2018 mistake as a values override: the harness's own value without its scheme.
        let strip = [Misconfigure::docker_host_without_scheme("image-cleaner").0];
        check_env_overrides(&strip).unwrap();
        let v = chart_values(&ChartInputs { build_node: Some(&node), env_overrides: &strip, ..inputs(&hub, None) });
        assert_eq!(v["imageCleaner"]["extraEnv"]["DOCKER_HOST"], "/var/run/hubchaos-image-cleaner.sock");
        // Without a node, none of it.
        assert!(chart_values(&inputs(&hub, None)).get("imageBuilderType").is_none());
    }

    #[test]
    fn what_the_charts_cannot_say_is_refused_naming_it() {
        use crate::fault::misconfigure::Misconfigure;
        let e = check_env_overrides(&[Misconfigure::docker_host_without_scheme("dockerd").0]).unwrap_err().to_string();
        assert!(e.contains("`dockerd`") && e.contains("hub, proxy, singleuser, image-cleaner, culler"), "{e}");
        let e = check_env_overrides(&[Misconfigure::docker_host_without_scheme("hub").0]).unwrap_err().to_string();
        assert!(e.contains("StripScheme") && e.contains("set a value instead"), "{e}");
        let unset = EnvOverride { component: "culler".into(), key: "K".into(), value: OverrideValue::Unset };
        check_env_overrides(std::slice::from_ref(&unset)).unwrap();
        let culler = CullerOptions::default();
        let v = chart_values(&ChartInputs { env_overrides: std::slice::from_ref(&unset), ..inputs(&HubOptions::default(), Some(&culler)) });
        assert!(v["hub"]["extraConfig"]["hubchaos-culler"].as_str().unwrap().contains(".pop(\"K\", None)"));
    }

    #[test]
    fn the_image_tag_stays_a_string_and_nothing_is_pulled() {
        let hub = HubOptions::default();
        let images = stack_images("12345678");
        let v = chart_values(&ChartInputs { images: &images, ..inputs(&hub, None) });
        for path in [&v["hub"]["image"], &v["proxy"]["chp"]["image"], &v["singleuser"]["image"]] {
            assert_eq!(path["tag"], json!("12345678"));
            assert_eq!(path["pullPolicy"], json!("IfNotPresent"));
        }
    }

    /// A z2jh-like checkout under `dir`: `<dir>/<name>/jupyterhub/Chart.yaml`.
    fn checkout(dir: &Path, name: &str) -> PathBuf {
        let root = dir.join(name);
        std::fs::create_dir_all(root.join("jupyterhub")).unwrap();
        std::fs::write(root.join("jupyterhub/Chart.yaml"), "name: jupyterhub\n").unwrap();
        root
    }

    fn profile_with_chart(path: &Path) -> Profile {
        Profile {
            source: Some(PathBuf::from("mine.yaml")),
            charts: [(ChartName::Jupyterhub, path.to_path_buf())].into(),
            ..Profile::default()
        }
    }

    #[test]
    fn a_user_may_name_their_own_images_and_the_rest_are_the_stack_images() {
        let images =
            StackImages::resolve("k", |var| (var == "HUBCHAOS_IMAGE_HUB").then(|| "registry:5000/org/k8s-hub:1.2.3-n4".into())).unwrap();
        assert_eq!(images.by_component["hub"], ImageRef { name: "registry:5000/org/k8s-hub".into(), tag: "1.2.3-n4".into() });
        assert_eq!(images.by_component["proxy"], ImageRef::stack("proxy", "k"));
        assert_eq!(images.named, ["hub"]);
        assert!(images.uses_stack_images(), "the proxy and singleuser images are still ours");
        let all = StackImages::resolve("k", |_| Some("org/img:t".into())).unwrap();
        assert!(!all.uses_stack_images());
        let hub = HubOptions::default();
        let v = chart_values(&ChartInputs { images: &all, ..inputs(&hub, None) });
        assert_eq!(v["singleuser"]["image"]["name"], json!("org/img"));
        let err = StackImages::resolve("k", |_| Some("registry:5000/org/k8s-hub".into())).unwrap_err();
        assert!(format!("{err:#}").contains("has no tag"), "{err:#}");
        assert!(format!("{err:#}").contains("HUBCHAOS_IMAGE_HUB"), "{err:#}");
    }

    #[test]
    fn a_given_path_without_a_chart_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = ChartSource::resolve(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("no jupyterhub chart there") && err.contains(&dir.path().display().to_string()), "{err}");
        let err = ChartSource::resolve(Some(&dir.path().join("nope"))).unwrap_err().to_string();
        assert!(err.ends_with("nope does not exist: give a z2jh checkout (its root or its jupyterhub/ directory)"), "{err}");
        std::fs::create_dir_all(dir.path().join("jupyterhub")).unwrap();
        std::fs::write(dir.path().join("jupyterhub/Chart.yaml"), "name: jupyterhub\n").unwrap();
        assert!(matches!(ChartSource::resolve(Some(dir.path())).unwrap(), ChartSource::Given(p) if p.ends_with("jupyterhub")));
        let chart = dir.path().join("jupyterhub");
        assert_eq!(ChartSource::resolve(Some(&chart)).unwrap(), ChartSource::Given(chart), "the chart directory itself");
        let reference = ChartSource::resolve(None).unwrap();
        assert!(reference.dir().join("Chart.yaml").is_file(), "{reference:?}");
    }

    #[test]
    fn the_environment_wins_over_the_profile_which_wins_over_the_reference_chart() {
        let dir = tempfile::tempdir().unwrap();
        let (from_env, from_profile) = (checkout(dir.path(), "env"), checkout(dir.path(), "profile"));
        let profile = profile_with_chart(&from_profile);
        let chosen = ChartSource::resolve_with(Some(from_env.as_os_str()), Some(&profile)).unwrap();
        assert_eq!(chosen, ChartSource::Given(from_env.join("jupyterhub")));
        let chosen = ChartSource::resolve_with(None, Some(&profile)).unwrap();
        assert_eq!(chosen, ChartSource::Given(from_profile.join("jupyterhub")));
        for nothing in [None, Some(&Profile::default())] {
            assert!(matches!(ChartSource::resolve_with(None, nothing).unwrap(), ChartSource::Reference(_)));
        }
    }

    #[test]
    fn a_refused_chart_names_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let good = checkout(dir.path(), "good");
        let missing = dir.path().join("missing");
        // A bad environment value is refused even when the profile names a good chart: it wins.
        let err = ChartSource::resolve_with(Some(missing.as_os_str()), Some(&profile_with_chart(&good))).unwrap_err().to_string();
        assert!(err.starts_with("HUBCHAOS_CHART_JUPYTERHUB (set by `hubchaos run --chart jupyterhub=PATH`"), "{err}");
        assert!(err.contains(&format!("{} does not exist", missing.display())), "{err}");
        let err = ChartSource::resolve_with(Some(OsStr::new("")), None).unwrap_err().to_string();
        assert!(err.starts_with("HUBCHAOS_CHART_JUPYTERHUB is empty: unset it"), "{err}");
        let err = ChartSource::resolve_with(None, Some(&profile_with_chart(dir.path()))).unwrap_err().to_string();
        assert!(err.starts_with(&format!("mine.yaml: charts.jupyterhub: {}: no jupyterhub chart there", dir.path().display())), "{err}");
    }

    #[test]
    fn a_volume_is_bound_to_its_runs_claim_on_the_core_node_only() {
        let v = HubDbVolume::for_namespace("hc-abc", "hubchaos-worker");
        let pv = serde_json::to_value(v.object().unwrap()).unwrap();
        assert_eq!(pv["spec"]["claimRef"], json!({ "namespace": "hc-abc", "name": "hub-db-dir" }));
        assert_eq!(pv["spec"]["storageClassName"], json!(""));
        assert_eq!(pv["metadata"]["labels"][VOLUME_LABEL], json!("hc-abc"));
        assert!(v.prepare_script().contains("chown 1000:1000 '/var/lib/hubchaos/hub-db/hc-abc'"));
    }
}
