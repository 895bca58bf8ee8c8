//! The `kind` backend's Kubernetes client: one [`KindCluster`] per cluster, over kube-rs.
//!
//! It acts only on the harness's own clusters: [`KindCluster::connect`] refuses a kubeconfig
//! context whose name does not start with [`CONTEXT_PREFIX`] (kind names a cluster's context
//! `kind-<cluster>`), so a mistyped context or a developer's current one is never touched.
//!
//! Every call is bounded: a single request by `REQUEST_WITHIN` (kube's client sets no read
//! timeout, so a stalled API server would hang it forever), a wait by the `within` its caller
//! passes. A wait that times out says what it last saw: each node's Ready condition, a pod's
//! phase, conditions and container states, a namespace's deletion conditions. Waits on one
//! object watch it (`kube::runtime::wait::await_condition`), and a watch that fails ends its
//! wait with the error; the wait over all nodes polls the node list every second, through
//! errors.
//!
//! Nodes and events come back as plain views ([`NodeView`], [`EventView`]) built by pure
//! functions of the API objects, so what reads them needs no k8s-openapi. Pods and services go
//! in as k8s-openapi objects ([`pod_spec`] builds the simple pod faults and probes run).
//!
//! TLS is rustls on aws-lc-rs, the tree's only crypto provider (see the workspace's
//! Cargo.toml). Building the client makes kube install aws-lc-rs as the process-level provider
//! when none is; with ring in the tree as well, a rustls client built earlier that names no
//! provider could not pick one and would panic.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Event, Namespace, Node, PersistentVolume, Pod, PodSpec, Service, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions, Condition};
use kube::{Client, Config};
use serde_json::json;

/// The start of every kubeconfig context the harness acts on: kind's `kind-<cluster>` for
/// the clusters it creates, named `hubchaos…`.
pub const CONTEXT_PREFIX: &str = "kind-hubchaos";

/// How long one API request may take.
const REQUEST_WITHIN: Duration = Duration::from_secs(30);
/// How long the API server has to answer `connect`'s first request.
const FIRST_REQUEST_WITHIN: Duration = Duration::from_secs(15);
/// How often the wait over all nodes lists them.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// `pod_logs` returns at most the last this many lines, and at most this many bytes of them.
const LOG_TAIL_LINES: i64 = 5_000;
const LOG_LIMIT_BYTES: i64 = 1 << 20;
/// The field manager of the harness's server-side applies.
const FIELD_MANAGER: &str = "hubchaos";
/// How many times a taint change is tried when the node changes between reading and patching it.
const TAINT_ATTEMPTS: usize = 5;

/// A connected client of one of the harness's kind clusters.
#[derive(Clone)]
pub struct KindCluster {
    client: Client,
    /// The kubeconfig context it was connected through (`kind-hubchaos…`).
    context: String,
}

impl fmt::Debug for KindCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindCluster").field("context", &self.context).finish_non_exhaustive()
    }
}

/// Refuses a context that is not one of the harness's clusters.
fn check_context(context: &str) -> anyhow::Result<()> {
    if !context.starts_with(CONTEXT_PREFIX) {
        bail!(
            "refusing kubeconfig context `{context}`: hubchaos acts only on its own kind clusters, whose contexts start with \
             `{CONTEXT_PREFIX}` (a cluster created by `kind create cluster --name hubchaos…`); pass such a context"
        );
    }
    Ok(())
}

impl KindCluster {
    /// Connects through `context` of the kubeconfig at `kubeconfig`: refused unless the
    /// context starts with [`CONTEXT_PREFIX`]; done once the API server answered a first
    /// request (its version) within 15 s.
    pub async fn connect(kubeconfig: &Path, context: &str) -> anyhow::Result<Self> {
        check_context(context)?;
        let file = Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
        if !file.contexts.iter().any(|c| c.name == context) {
            let names: Vec<&str> = file.contexts.iter().map(|c| c.name.as_str()).collect();
            bail!(
                "kubeconfig {} has no context `{context}` (it has: {}); `kind get clusters` lists the clusters, \
                 `kind export kubeconfig --name <cluster>` writes one's context",
                kubeconfig.display(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            );
        }
        let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
        let config = Config::from_custom_kubeconfig(file, &options)
            .await
            .with_context(|| format!("loading context `{context}` of kubeconfig {}", kubeconfig.display()))?;
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).with_context(|| format!("building the client of context `{context}`"))?;
        tokio::time::timeout(FIRST_REQUEST_WITHIN, client.apiserver_version())
            .await
            .map_err(|_| anyhow!("the API server of context `{context}` ({server}) did not answer within {FIRST_REQUEST_WITHIN:?}"))?
            .with_context(|| format!("asking the API server of context `{context}` ({server}) for its version"))?;
        Ok(Self { client, context: context.to_string() })
    }

    fn node_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn namespace_api(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Every node of the cluster.
    pub async fn nodes(&self) -> anyhow::Result<Vec<NodeView>> {
        let list = bounded("listing nodes", self.node_api().list(&ListParams::default())).await?;
        Ok(list.items.iter().map(NodeView::from).collect())
    }

    /// Waits until at least `expected` nodes exist and every node is Ready, listing them each
    /// second; `progress` hears what is still missing each time that changes. On timeout the
    /// error names each node that is not Ready with its Ready condition.
    pub async fn wait_nodes_ready(&self, expected: usize, within: Duration, progress: impl Fn(&str)) -> anyhow::Result<Vec<NodeView>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::from("no answer to the first node list");
        loop {
            let seen = match tokio::time::timeout_at(deadline, self.nodes()).await {
                Err(_) => break,
                Ok(Ok(nodes)) => match not_ready(&nodes, expected) {
                    None => return Ok(nodes),
                    Some(missing) => missing,
                },
                Ok(Err(e)) => format!("{e:#}"),
            };
            if seen != last {
                progress(&seen);
                last = seen;
            }
            if tokio::time::timeout_at(deadline, tokio::time::sleep(POLL_EVERY)).await.is_err() {
                break;
            }
        }
        bail!("the nodes of `{}` were not all Ready within {within:?}: {last}", self.context)
    }

    /// Waits until node `node` has condition `condition_type` (`Ready`, `DiskPressure`, …) at
    /// `status` (`True`, `False`, `Unknown`), watching it; returns how long that took.
    pub async fn wait_node_condition(&self, node: &str, condition_type: &str, status: &str, within: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let holds = |n: Option<&Node>| n.is_some_and(|n| NodeView::from(n).condition(condition_type).is_some_and(|c| c.status == status));
        match tokio::time::timeout(within, await_condition(self.node_api(), node, holds)).await {
            Ok(watched) => {
                watched.with_context(|| format!("watching node {node} for {condition_type}={status}"))?;
                Ok(started.elapsed())
            }
            Err(_) => {
                let last = match bounded(format!("reading node {node}"), self.node_api().get_opt(node)).await {
                    Ok(Some(n)) => NodeView::from(&n)
                        .condition(condition_type)
                        .map_or_else(|| format!("no {condition_type} condition"), |c| c.to_string()),
                    Ok(None) => "no such node".to_string(),
                    Err(e) => format!("{e:#}"),
                };
                bail!("node {node} of `{}` did not reach {condition_type}={status} within {within:?}; last seen: {last}", self.context)
            }
        }
    }

    /// Taints `node` with `key`=`value`:`effect`, keeping its other taints; a no-op when it
    /// has that taint already.
    pub async fn add_taint(&self, node: &str, key: &str, value: Option<&str>, effect: TaintEffect) -> anyhow::Result<()> {
        let taint = Taint { key: key.to_string(), value: value.map(str::to_string), effect: effect.as_str().to_string(), time_added: None };
        self.change_taints(node, |taints| with_taint(taints, &taint))
            .await
            .with_context(|| format!("tainting node {node} with {key}={}:{}", value.unwrap_or(""), effect.as_str()))
    }

    /// Removes every taint of `key` from `node` (whatever its effect), keeping the others; a
    /// no-op when it has none.
    pub async fn remove_taint(&self, node: &str, key: &str) -> anyhow::Result<()> {
        self.change_taints(node, |taints| without_taint(taints, key))
            .await
            .with_context(|| format!("removing taint {key} from node {node}"))
    }

    /// Reads the node's taints, and merge-patches `spec.taints` (a list: the patch replaces
    /// it whole) to `change` of them when that differs. The patch carries the resourceVersion
    /// that was read, so it fails with a conflict, and is tried again, when the node changed
    /// in between (the node lifecycle controller adds and removes taints of its own).
    async fn change_taints(&self, node: &str, change: impl Fn(&[Taint]) -> Vec<Taint>) -> anyhow::Result<()> {
        let api = self.node_api();
        for _ in 0..TAINT_ATTEMPTS {
            let current = bounded(format!("reading node {node}"), api.get(node)).await?;
            let taints = current.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
            let wanted = change(&taints);
            if wanted == taints {
                return Ok(());
            }
            let patch = json!({ "metadata": { "resourceVersion": current.metadata.resource_version }, "spec": { "taints": wanted } });
            match bounded(format!("patching the taints of node {node}"), api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if api_status(&e).is_some_and(|s| s.is_conflict()) => continue,
                Err(e) => return Err(e),
            }
        }
        bail!("node {node} changed between reading and patching it, {TAINT_ATTEMPTS} times")
    }

    /// Creates namespace `name` with `labels`, or sets those labels on it when it exists
    /// (a server-side apply). Fails when the namespace is still being deleted.
    pub async fn ensure_namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let namespace = Namespace {
            metadata: ObjectMeta { name: Some(name.to_string()), labels: Some(labels.clone()), ..Default::default() },
            ..Default::default()
        };
        let applied = bounded(
            format!("applying namespace {name}"),
            self.namespace_api().patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&namespace)),
        )
        .await?;
        if applied.metadata.deletion_timestamp.is_some() {
            bail!("namespace {name} of `{}` is still being deleted: wait until it is gone before using the name again", self.context);
        }
        Ok(())
    }

    /// Deletes namespace `name` and waits until it is gone (its pods ended, its finalizers
    /// run). A namespace that does not exist is no error.
    pub async fn delete_namespace_and_wait(&self, name: &str, within: Duration) -> anyhow::Result<()> {
        let api = self.namespace_api();
        let uid = match bounded(format!("deleting namespace {name}"), api.delete(name, &DeleteParams::default())).await {
            // Left: accepted and being finalized; Right: gone at once.
            Ok(deleting) => match deleting.left() {
                Some(ns) => ns.metadata.uid.with_context(|| format!("namespace {name} being deleted has no uid"))?,
                None => return Ok(()),
            },
            Err(e) if api_status(&e).is_some_and(|s| s.is_not_found()) => return Ok(()),
            Err(e) => return Err(e),
        };
        match tokio::time::timeout(within, await_condition(api.clone(), name, conditions::is_deleted(&uid))).await {
            Ok(watched) => watched.map(drop).with_context(|| format!("watching namespace {name} being deleted")),
            Err(_) => {
                let last = match bounded(format!("reading namespace {name}"), api.get_opt(name)).await {
                    Ok(Some(ns)) => describe_namespace(&ns),
                    Ok(None) => "gone just now".to_string(),
                    Err(e) => format!("{e:#}"),
                };
                bail!("namespace {name} of `{}` was not deleted within {within:?}; last seen: {last}", self.context)
            }
        }
    }

    /// Creates `pod` in namespace `ns`; returns it as the API server stored it.
    pub async fn create_pod(&self, ns: &str, pod: &Pod) -> anyhow::Result<Pod> {
        let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
        bounded(format!("creating pod {ns}/{name}"), self.pod_api(ns).create(&PostParams::default(), pod)).await
    }

    /// Waits until pod `ns/name` exists and satisfies `until` (e.g.
    /// `conditions::is_pod_running()`, [`pod_in_phase`], [`pod_finished`]), watching it;
    /// returns the pod as it was then. On timeout the error says its last phase, conditions
    /// and container states.
    pub async fn wait_pod(&self, ns: &str, name: &str, until: impl Condition<Pod>, within: Duration) -> anyhow::Result<Pod> {
        let api = self.pod_api(ns);
        let exists_and_holds = |p: Option<&Pod>| p.is_some() && until.matches_object(p);
        match tokio::time::timeout(within, await_condition(api.clone(), name, exists_and_holds)).await {
            Ok(watched) => watched
                .with_context(|| format!("watching pod {ns}/{name}"))?
                .with_context(|| format!("the watch of pod {ns}/{name} ended without the pod")),
            Err(_) => {
                let last = match bounded(format!("reading pod {ns}/{name}"), api.get_opt(name)).await {
                    Ok(Some(pod)) => describe_pod(&pod),
                    Ok(None) => "no such pod".to_string(),
                    Err(e) => format!("{e:#}"),
                };
                bail!("pod {ns}/{name} of `{}` did not reach the awaited state within {within:?}; last seen: {last}", self.context)
            }
        }
    }

    /// The phase of pod `ns/name` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`);
    /// `None` when there is no such pod or it has no phase yet.
    pub async fn pod_phase(&self, ns: &str, name: &str) -> anyhow::Result<Option<String>> {
        let pod = bounded(format!("reading pod {ns}/{name}"), self.pod_api(ns).get_opt(name)).await?;
        Ok(pod.and_then(|p| p.status?.phase))
    }

    /// Deletes pod `ns/name` with `grace` to stop (zero: killed at once); returns once the
    /// API server accepted it. A pod that does not exist is no error.
    pub async fn delete_pod(&self, ns: &str, name: &str, grace: Duration) -> anyhow::Result<()> {
        let params = DeleteParams { grace_period_seconds: Some(grace.as_secs().try_into().unwrap_or(u32::MAX)), ..Default::default() };
        match bounded(format!("deleting pod {ns}/{name}"), self.pod_api(ns).delete(name, &params)).await {
            Err(e) if api_status(&e).is_some_and(|s| s.is_not_found()) => Ok(()),
            deleted => deleted.map(drop),
        }
    }

    /// The log of pod `ns/name`'s only container: its last 5000 lines, at most 1 MiB of them.
    pub async fn pod_logs(&self, ns: &str, name: &str) -> anyhow::Result<String> {
        let params = LogParams { tail_lines: Some(LOG_TAIL_LINES), limit_bytes: Some(LOG_LIMIT_BYTES), ..Default::default() };
        bounded(format!("reading the log of pod {ns}/{name}"), self.pod_api(ns).logs(name, &params)).await
    }

    /// The pods of namespace `ns` that match `label_selector` (`app=hub,component=…`; empty:
    /// all of them).
    pub async fn list_pods(&self, ns: &str, label_selector: &str) -> anyhow::Result<Vec<Pod>> {
        let list = bounded(
            format!("listing pods of {ns} ({label_selector})"),
            self.pod_api(ns).list(&ListParams::default().labels(label_selector)),
        )
        .await?;
        Ok(list.items)
    }

    /// Creates `service` in namespace `ns`; returns it as the API server stored it.
    pub async fn create_service(&self, ns: &str, service: &Service) -> anyhow::Result<Service> {
        let name = service.metadata.name.as_deref().unwrap_or("<unnamed>");
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        bounded(format!("creating service {ns}/{name}"), api.create(&PostParams::default(), service)).await
    }

    /// The core/v1 events of namespace `ns` (`None`: of all namespaces) that match
    /// `field_selector` (`reason=Evicted`, `involvedObject.name=…`; empty: all), oldest first.
    /// These are the events the kubelet writes (evictions, image garbage collection, …).
    pub async fn events(&self, ns: Option<&str>, field_selector: &str) -> anyhow::Result<Vec<EventView>> {
        let api: Api<Event> = match ns {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let list = bounded(
            format!("listing the events of {} ({field_selector})", ns.unwrap_or("all namespaces")),
            api.list(&ListParams::default().fields(field_selector)),
        )
        .await?;
        let mut events: Vec<EventView> = list.items.iter().map(EventView::from).collect();
        events.sort_by_key(|e| e.last);
        Ok(events)
    }

    /// Sets `key` of configmap `ns/name` to `value`, keeping its other keys (a merge patch of
    /// `data`). The configmap must exist.
    pub async fn replace_configmap_data(&self, ns: &str, name: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({ "data": { key: value } });
        bounded(format!("setting {key} of configmap {ns}/{name}"), api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
        Ok(())
    }

    /// `key` of configmap `ns/name` (empty when the key is absent).
    pub async fn configmap_value(&self, ns: &str, name: &str, key: &str) -> anyhow::Result<String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let cm = bounded(format!("reading configmap {ns}/{name}"), api.get(name)).await?;
        Ok(cm.data.and_then(|d| d.get(key).cloned()).unwrap_or_default())
    }

    /// Pod `ns/name` as it is now.
    pub async fn get_pod(&self, ns: &str, name: &str) -> anyhow::Result<Pod> {
        bounded(format!("reading pod {ns}/{name}"), self.pod_api(ns).get(name)).await
    }

    /// Set deployment `ns/name`'s replicas.
    pub async fn scale_deployment(&self, ns: &str, name: &str, replicas: i32) -> anyhow::Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({ "spec": { "replicas": replicas } });
        bounded(format!("scaling deployment {ns}/{name} to {replicas}"), api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)))
            .await?;
        Ok(())
    }

    /// The client, for what builds its own requests (port-forwards, log streams).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Why deployment `ns/name` has not rolled out yet (`None`: it has: the controller saw
    /// its latest spec, and every replica is updated, available and ready).
    pub async fn deployment_not_rolled_out(&self, ns: &str, name: &str) -> anyhow::Result<Option<String>> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let Some(d) = bounded(format!("reading deployment {ns}/{name}"), api.get_opt(name)).await? else {
            return Ok(Some("does not exist".into()));
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let generation = d.metadata.generation.unwrap_or(0);
        let st = d.status.unwrap_or_default();
        let seen = st.observed_generation.unwrap_or(0);
        let (updated, ready, available, total) = (
            st.updated_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
            st.replicas.unwrap_or(0),
        );
        if seen < generation {
            return Ok(Some(format!("generation {generation} not yet observed ({seen})")));
        }
        if updated < want || ready < want || available < want || total > want {
            return Ok(Some(format!("{ready}/{want} ready, {updated} updated, {available} available, {total} in all")));
        }
        Ok(None)
    }

    /// Why DaemonSet `ns/name` is not rolled out yet (`None`: every node it is scheduled on has
    /// an updated pod ready).
    pub async fn daemonset_not_rolled_out(&self, ns: &str, name: &str) -> anyhow::Result<Option<String>> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
        let Some(d) = bounded(format!("reading daemonset {ns}/{name}"), api.get_opt(name)).await? else {
            return Ok(Some("does not exist".into()));
        };
        let generation = d.metadata.generation.unwrap_or(0);
        let st = d.status.unwrap_or_default();
        let seen = st.observed_generation.unwrap_or(0);
        if seen < generation {
            return Ok(Some(format!("generation {generation} not yet observed ({seen})")));
        }
        let (want, ready, updated) = (st.desired_number_scheduled, st.number_ready, st.updated_number_scheduled.unwrap_or(0));
        if want == 0 {
            return Ok(Some("scheduled on no node (its node selector matches none)".into()));
        }
        if ready < want || updated < want {
            return Ok(Some(format!("{ready}/{want} ready, {updated} updated")));
        }
        Ok(None)
    }

    /// Creates cluster-scoped volume `pv` (an existing one of the same name is left as it is).
    pub async fn ensure_persistent_volume(&self, pv: &PersistentVolume) -> anyhow::Result<()> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let name = pv.metadata.name.as_deref().unwrap_or("<unnamed>");
        match bounded(format!("creating persistent volume {name}"), api.create(&PostParams::default(), pv)).await {
            Err(e) if api_status(&e).is_some_and(|s| s.reason == "AlreadyExists") => Ok(()),
            created => created.map(drop),
        }
    }

    /// The persistent volumes that carry `label_selector`.
    pub async fn persistent_volumes(&self, label_selector: &str) -> anyhow::Result<Vec<PersistentVolume>> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        Ok(bounded("listing persistent volumes", api.list(&ListParams::default().labels(label_selector))).await?.items)
    }

    /// Deletes persistent volume `name` (one that does not exist is no error).
    pub async fn delete_persistent_volume(&self, name: &str) -> anyhow::Result<()> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match bounded(format!("deleting persistent volume {name}"), api.delete(name, &DeleteParams::default())).await {
            Err(e) if api_status(&e).is_some_and(|s| s.is_not_found()) => Ok(()),
            deleted => deleted.map(drop),
        }
    }

    /// Whether namespace `name` exists.
    pub async fn namespace_exists(&self, name: &str) -> anyhow::Result<bool> {
        Ok(bounded(format!("reading namespace {name}"), self.namespace_api().get_opt(name)).await?.is_some())
    }

    /// Give daemonset `ns/name` a node selector no node matches (`nowhere`), or take it away.
    pub async fn set_daemonset_nowhere(&self, ns: &str, name: &str, nowhere: bool) -> anyhow::Result<()> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
        let value = if nowhere { json!("true") } else { serde_json::Value::Null };
        let patch = json!({ "spec": { "template": { "spec": { "nodeSelector": { NOWHERE_LABEL: value } } } } });
        bounded(format!("node selector of daemonset {ns}/{name}"), api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
        Ok(())
    }
}

/// A label no node carries: a daemonset selecting it runs nowhere.
pub const NOWHERE_LABEL: &str = "hubchaos.io/nowhere";

/// The pod's `Ready` condition is `True`.
pub fn pod_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One API request with [`REQUEST_WITHIN`] to answer, its error saying `what` it was.
async fn bounded<T>(what: impl fmt::Display, request: impl Future<Output = kube::Result<T>>) -> anyhow::Result<T> {
    match tokio::time::timeout(REQUEST_WITHIN, request).await {
        Ok(answer) => answer.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: no answer from the API server within {REQUEST_WITHIN:?}"),
    }
}

/// The API server's refusal inside an error of [`bounded`], if that is what it is.
fn api_status(e: &anyhow::Error) -> Option<&kube::core::Status> {
    match e.downcast_ref::<kube::Error>() {
        Some(kube::Error::Api(status)) => Some(status),
        _ => None,
    }
}

/// The effect of a taint on pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaintEffect {
    /// New pods are not scheduled on the node.
    NoSchedule,
    /// The scheduler avoids the node for new pods.
    PreferNoSchedule,
    /// New pods are not scheduled and running ones are evicted.
    NoExecute,
}

impl TaintEffect {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// `taints` with `taint` among them. Kubernetes keeps one taint per key and effect: one with
/// the key and effect of `taint` is replaced unless it has its value already (then nothing
/// changes, its `timeAdded` included); the others are kept in their order.
fn with_taint(taints: &[Taint], taint: &Taint) -> Vec<Taint> {
    let same_slot = |t: &Taint| t.key == taint.key && t.effect == taint.effect;
    if taints.iter().any(|t| same_slot(t) && t.value == taint.value) {
        return taints.to_vec();
    }
    let mut out: Vec<Taint> = taints.iter().filter(|t| !same_slot(t)).cloned().collect();
    out.push(taint.clone());
    out
}

/// `taints` without any of `key`, whatever its effect.
fn without_taint(taints: &[Taint], key: &str) -> Vec<Taint> {
    taints.iter().filter(|t| t.key != key).cloned().collect()
}

/// A node as the harness reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<TaintView>,
    pub conditions: Vec<ConditionView>,
    /// `spec.podCIDR`: the range its pods' addresses come from.
    pub pod_cidr: Option<String>,
    /// Its `InternalIP` address.
    pub internal_ip: Option<String>,
}

/// A taint of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintView {
    pub key: String,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`, as the API says it.
    pub effect: String,
}

/// A condition of a node (`Ready`, `DiskPressure`, `MemoryPressure`, `PIDPressure`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionView {
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// `Ready=False (KubeletNotReady: container runtime network not ready)`.
impl fmt::Display for ConditionView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.type_, self.status)?;
        match (&self.reason, &self.message) {
            (Some(reason), Some(message)) => write!(f, " ({reason}: {message})"),
            (Some(one), None) | (None, Some(one)) => write!(f, " ({one})"),
            (None, None) => Ok(()),
        }
    }
}

impl NodeView {
    /// Its condition of `type_`, if the kubelet reported one.
    pub fn condition(&self, type_: &str) -> Option<&ConditionView> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

impl From<&Node> for NodeView {
    fn from(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let conditions: Vec<ConditionView> = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| ConditionView {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect();
        NodeView {
            name: node.metadata.name.clone().unwrap_or_default(),
            ready: conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .map(|t| TaintView { key: t.key.clone(), value: t.value.clone(), effect: t.effect.clone() })
                .collect(),
            conditions,
            pod_cidr: spec.and_then(|s| s.pod_cidr.clone()),
            internal_ip: status
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .find(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone()),
        }
    }
}

/// What keeps `nodes` from being at least `expected` nodes, all Ready (`None`: nothing):
/// the count, and each node that is not Ready with its Ready condition.
fn not_ready(nodes: &[NodeView], expected: usize) -> Option<String> {
    let ready = nodes.iter().filter(|n| n.ready).count();
    if nodes.len() >= expected && ready == nodes.len() {
        return None;
    }
    let mut parts = vec![format!("{ready} of {} nodes Ready, {expected} expected", nodes.len())];
    parts.extend(
        nodes.iter().filter(|n| !n.ready).map(|n| {
            format!("{}: {}", n.name, n.condition("Ready").map_or_else(|| "no Ready condition yet".to_string(), |c| c.to_string()))
        }),
    );
    Some(parts.join("; "))
}

/// A core/v1 event as the harness reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// `Normal` or `Warning`.
    pub event_type: String,
    /// `Evicted`, `FreeDiskSpaceFailed`, `Killing`, …
    pub reason: String,
    pub message: String,
    /// What it is about: `Pod`, `Node`, …
    pub involved_kind: String,
    pub involved_name: String,
    pub involved_namespace: Option<String>,
    /// Who wrote it (`kubelet`, `default-scheduler`, …): its `reportingComponent`, or the
    /// older `source.component`.
    pub component: String,
    /// How many times it happened (events of the events.k8s.io API count in `series`).
    pub count: u32,
    /// When it first happened: `firstTimestamp`, or `eventTime` for events.k8s.io ones.
    pub first: Option<SystemTime>,
    /// When it last happened: `lastTimestamp`, `series.lastObservedTime`, or `eventTime`.
    pub last: Option<SystemTime>,
}

impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        let event_time = event.event_time.as_ref().map(|t| SystemTime::from(t.0));
        let series = event.series.as_ref();
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        EventView {
            event_type: event.type_.clone().unwrap_or_default(),
            reason: event.reason.clone().unwrap_or_default(),
            message: event.message.clone().unwrap_or_default(),
            involved_kind: event.involved_object.kind.clone().unwrap_or_default(),
            involved_name: event.involved_object.name.clone().unwrap_or_default(),
            involved_namespace: event.involved_object.namespace.clone(),
            component: non_empty(&event.reporting_component)
                .or_else(|| event.source.as_ref().and_then(|s| non_empty(&s.component)))
                .unwrap_or_default(),
            count: event.count.or_else(|| series.and_then(|s| s.count)).and_then(|c| u32::try_from(c).ok()).unwrap_or(1),
            first: event.first_timestamp.as_ref().map(|t| SystemTime::from(t.0)).or(event_time),
            last: event
                .last_timestamp
                .as_ref()
                .map(|t| SystemTime::from(t.0))
                .or_else(|| series.and_then(|s| s.last_observed_time.as_ref()).map(|t| SystemTime::from(t.0)))
                .or(event_time),
        }
    }
}

/// A pod whose phase is `phase`.
pub fn pod_in_phase(phase: &str) -> impl Condition<Pod> + '_ {
    move |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some(phase)
}

/// A pod that ended: phase `Succeeded` or `Failed` (with `restartPolicy: Never`, its
/// containers exited).
pub fn pod_finished() -> impl Condition<Pod> {
    pod_in_phase("Succeeded").or(pod_in_phase("Failed"))
}

/// `phase Pending; PodScheduled=False (Unschedulable: …); main: waiting (ErrImageNeverPull: …)`:
/// its phase, the conditions that do not hold, and each container's state.
fn describe_pod(pod: &Pod) -> String {
    let Some(status) = &pod.status else { return "no status yet".to_string() };
    let mut parts = vec![format!("phase {}", status.phase.as_deref().unwrap_or("unset"))];
    for c in status.conditions.iter().flatten().filter(|c| c.status != "True") {
        let view = ConditionView { type_: c.type_.clone(), status: c.status.clone(), reason: c.reason.clone(), message: c.message.clone() };
        parts.push(view.to_string());
    }
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        let described = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!("waiting ({}: {})", w.reason.as_deref().unwrap_or("?"), w.message.as_deref().unwrap_or(""))
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!("terminated with {} ({})", t.exit_code, t.reason.as_deref().unwrap_or("?"))
        } else if state.is_some_and(|s| s.running.is_some()) {
            format!("running, restarted {} times", c.restart_count)
        } else {
            "no state yet".to_string()
        };
        parts.push(format!("{}: {described}", c.name));
    }
    parts.join("; ")
}

/// Its phase and the conditions that hold (`NamespaceContentRemaining: Some resources are
/// remaining: pods. has 1 resource instances`, …): what a deletion waits on.
fn describe_namespace(ns: &Namespace) -> String {
    let status = ns.status.as_ref();
    let mut parts = vec![format!("phase {}", status.and_then(|s| s.phase.as_deref()).unwrap_or("unset"))];
    for c in status.and_then(|s| s.conditions.as_ref()).into_iter().flatten().filter(|c| c.status == "True") {
        parts.push(format!("{} ({})", c.reason.as_deref().unwrap_or(&c.type_), c.message.as_deref().unwrap_or("")));
    }
    parts.join("; ")
}

/// A pod of one container `main` running `command` in `image`, which must be on the node
/// already (`imagePullPolicy: Never`: nothing can be pulled here), never restarted; on a
/// node matching `node_selector`, tolerating `tolerations`, labelled `labels`. Empty
/// arguments are left out of the pod.
pub fn pod_spec(
    name: &str,
    image: &str,
    command: &[&str],
    node_selector: &BTreeMap<String, String>,
    tolerations: &[Toleration],
    labels: &BTreeMap<String, String>,
) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.to_string()), labels: (!labels.is_empty()).then(|| labels.clone()), ..Default::default() },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_string(),
                image: Some(image.to_string()),
                image_pull_policy: Some("Never".to_string()),
                command: (!command.is_empty()).then(|| command.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }],
            restart_policy: Some("Never".to_string()),
            node_selector: (!node_selector.is_empty()).then(|| node_selector.clone()),
            tolerations: (!tolerations.is_empty()).then(|| tolerations.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kubeconfig of one context, whose API server is `server`.
    fn kubeconfig(dir: &Path, context: &str, server: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\n\
             clusters:\n- name: {context}\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n\
             users:\n- name: {context}\n  user:\n    token: not-a-real-token\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test]
    async fn a_context_that_is_not_the_harnesss_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "kind-other", "https://localhost:1");
        let e = format!("{:#}", KindCluster::connect(&path, "kind-other").await.unwrap_err());
        assert!(e.contains("refusing kubeconfig context `kind-other`") && e.contains(CONTEXT_PREFIX), "{e}");
    }

    #[test]
    fn only_kind_hubchaos_contexts_pass_the_name_check() {
        for ok in ["kind-hubchaos", "kind-hubchaos-x"] {
            assert!(check_context(ok).is_ok(), "{ok}");
        }
        for refused in ["kind-other", "hubchaos", "kind-kind", "", "kind-hub"] {
            assert!(check_context(refused).is_err(), "{refused}");
        }
    }

    /// Past the name check, the client is built and the first request is what fails.
    #[tokio::test]
    async fn a_harness_context_gets_as_far_as_asking_the_api_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "kind-hubchaos-x", "https://localhost:1");
        let e = format!("{:#}", KindCluster::connect(&path, "kind-hubchaos-x").await.unwrap_err());
        assert!(e.contains("the API server of context `kind-hubchaos-x`") && !e.contains("refusing"), "{e}");
    }

    #[tokio::test]
    async fn a_context_missing_from_the_kubeconfig_is_named_with_those_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "kind-hubchaos-a", "https://localhost:1");
        let e = format!("{:#}", KindCluster::connect(&path, "kind-hubchaos-b").await.unwrap_err());
        assert!(e.contains("no context `kind-hubchaos-b`") && e.contains("it has: kind-hubchaos-a"), "{e}");
    }

    // Addresses are opaque strings to the views: placeholders stand in for them.
    fn ready_worker() -> Node {
        serde_json::from_value(json!({
            "metadata": { "name": "hubchaos-worker", "labels": { "hub.jupyter.org/node-purpose": "user", "kubernetes.io/os": "linux" } },
            "spec": {
                "podCIDR": "pod-range-of-worker",
                "podCIDRs": ["pod-range-of-worker"],
                "taints": [
                    { "key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule" },
                    { "key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z" }
                ]
            },
            "status": {
                "addresses": [ { "type": "Hostname", "address": "hubchaos-worker" }, { "type": "InternalIP", "address": "address-of-worker" } ],
                "conditions": [
                    { "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available" },
                    { "type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure", "message": "kubelet has disk pressure" },
                    { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status" }
                ]
            }
        }))
        .unwrap()
    }

    fn not_ready_control_plane() -> Node {
        serde_json::from_value(json!({
            "metadata": { "name": "hubchaos-control-plane" },
            "spec": {},
            "status": {
                "conditions": [
                    { "type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure", "message": "kubelet has disk pressure" },
                    { "type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime network not ready" }
                ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_ready_node_is_read_with_its_labels_taints_range_and_address() {
        let view = NodeView::from(&ready_worker());
        assert_eq!(view.name, "hubchaos-worker");
        assert!(view.ready);
        assert_eq!(view.labels.get("hub.jupyter.org/node-purpose").map(String::as_str), Some("user"));
        assert_eq!(
            view.taints,
            [
                TaintView { key: "hub.jupyter.org/dedicated".into(), value: Some("user".into()), effect: "NoSchedule".into() },
                TaintView { key: "node.kubernetes.io/disk-pressure".into(), value: None, effect: "NoSchedule".into() },
            ]
        );
        assert_eq!(view.pod_cidr.as_deref(), Some("pod-range-of-worker"));
        assert_eq!(view.internal_ip.as_deref(), Some("address-of-worker"));
        assert_eq!(view.condition("DiskPressure").map(|c| c.status.as_str()), Some("True"));
        assert_eq!(view.conditions.len(), 3);
    }

    #[test]
    fn a_not_ready_node_is_read_with_its_reason_and_without_what_it_lacks() {
        let view = NodeView::from(&not_ready_control_plane());
        assert!(!view.ready);
        assert_eq!(view.condition("Ready").unwrap().to_string(), "Ready=False (KubeletNotReady: container runtime network not ready)");
        assert!(view.taints.is_empty() && view.labels.is_empty());
        assert_eq!((view.pod_cidr, view.internal_ip), (None, None));
        let bare: Node = serde_json::from_value(json!({ "metadata": { "name": "new" } })).unwrap();
        assert!(!NodeView::from(&bare).ready, "no Ready condition is not Ready");
    }

    #[test]
    fn nodes_are_ready_when_enough_exist_and_all_are_ready() {
        let worker = NodeView::from(&ready_worker());
        let control_plane = NodeView::from(&not_ready_control_plane());
        assert_eq!(not_ready(std::slice::from_ref(&worker), 1), None);
        assert_eq!(not_ready(std::slice::from_ref(&worker), 2).as_deref(), Some("1 of 1 nodes Ready, 2 expected"));
        let missing = not_ready(&[worker, control_plane], 2).unwrap();
        assert_eq!(
            missing,
            "1 of 2 nodes Ready, 2 expected; hubchaos-control-plane: Ready=False (KubeletNotReady: container runtime network not ready)"
        );
        assert_eq!(not_ready(&[], 0), None);
    }

    fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
        Taint { key: key.into(), value: value.map(Into::into), effect: effect.as_str().into(), time_added: None }
    }

    #[test]
    fn adding_a_taint_keeps_the_others_and_is_idempotent() {
        let dedicated = taint("hub.jupyter.org/dedicated", Some("user"), TaintEffect::NoSchedule);
        let mut pressure = taint("node.kubernetes.io/disk-pressure", None, TaintEffect::NoSchedule);
        pressure.time_added = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
        let chaos = taint("hubchaos/fault", Some("on"), TaintEffect::NoExecute);

        let added = with_taint(&[dedicated.clone(), pressure.clone()], &chaos);
        assert_eq!(added, [dedicated.clone(), pressure.clone(), chaos.clone()]);
        assert_eq!(with_taint(&added, &chaos), added, "adding it again changes nothing");

        let pressure_again = taint("node.kubernetes.io/disk-pressure", None, TaintEffect::NoSchedule);
        assert_eq!(with_taint(&added, &pressure_again), added, "an equal taint keeps its timeAdded");
    }

    #[test]
    fn adding_a_taint_replaces_the_value_of_its_key_and_effect_only() {
        let user = taint("hub.jupyter.org/dedicated", Some("user"), TaintEffect::NoSchedule);
        let core = taint("hub.jupyter.org/dedicated", Some("core"), TaintEffect::NoSchedule);
        let evicting = taint("hub.jupyter.org/dedicated", Some("user"), TaintEffect::NoExecute);
        assert_eq!(with_taint(std::slice::from_ref(&user), &core), [core]);
        assert_eq!(with_taint(std::slice::from_ref(&user), &evicting), [user, evicting]);
    }

    #[test]
    fn removing_a_taint_removes_every_effect_of_its_key_and_keeps_the_rest() {
        let a = taint("hubchaos/fault", Some("on"), TaintEffect::NoSchedule);
        let b = taint("hubchaos/fault", None, TaintEffect::NoExecute);
        let other = taint("hub.jupyter.org/dedicated", Some("user"), TaintEffect::NoSchedule);
        assert_eq!(without_taint(&[a, other.clone(), b], "hubchaos/fault"), std::slice::from_ref(&other));
        assert_eq!(without_taint(std::slice::from_ref(&other), "absent"), [other]);
    }

    #[test]
    fn the_simple_pod_serializes_as_the_api_expects() {
        let selector = BTreeMap::from([("hub.jupyter.org/node-purpose".to_string(), "user".to_string())]);
        let labels = BTreeMap::from([("app".to_string(), "hubchaos".to_string())]);
        let tolerate = Toleration { key: Some("hub.jupyter.org/dedicated".into()), operator: Some("Exists".into()), ..Default::default() };
        let pod = pod_spec("fill-disk", "hubchaos/busybox:1", &["sh", "-c", "sleep 1"], &selector, &[tolerate], &labels);
        assert_eq!(
            serde_json::to_value(&pod).unwrap(),
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": { "name": "fill-disk", "labels": { "app": "hubchaos" } },
                "spec": {
                    "containers": [ {
                        "name": "main",
                        "image": "hubchaos/busybox:1",
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "sleep 1"]
                    } ],
                    "restartPolicy": "Never",
                    "nodeSelector": { "hub.jupyter.org/node-purpose": "user" },
                    "tolerations": [ { "key": "hub.jupyter.org/dedicated", "operator": "Exists" } ]
                }
            })
        );
        let bare = serde_json::to_value(pod_spec("p", "i", &[], &BTreeMap::new(), &[], &BTreeMap::new())).unwrap();
        assert_eq!(bare["metadata"], json!({ "name": "p" }));
        assert!(bare["spec"].get("nodeSelector").is_none() && bare["spec"].get("tolerations").is_none());
        assert!(bare["spec"]["containers"][0].get("command").is_none(), "no command: the image's entrypoint");
    }

    fn pending_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p", "namespace": "hubchaos" },
            "status": {
                "phase": "Pending",
                "conditions": [
                    { "type": "PodScheduled", "status": "True" },
                    { "type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [main]" }
                ],
                "containerStatuses": [ {
                    "name": "main", "image": "hubchaos/busybox:1", "imageID": "", "ready": false, "restartCount": 0,
                    "state": { "waiting": { "reason": "ErrImageNeverPull", "message": "image is not present with pull policy of Never" } }
                } ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_is_described_by_its_phase_failing_conditions_and_container_states() {
        assert_eq!(
            describe_pod(&pending_pod()),
            "phase Pending; Ready=False (ContainersNotReady: containers with unready status: [main]); \
             main: waiting (ErrImageNeverPull: image is not present with pull policy of Never)"
        );
    }

    #[test]
    fn phase_conditions_need_the_pod_in_that_phase() {
        let pending = pending_pod();
        let mut failed = pending_pod();
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(pod_in_phase("Pending").matches_object(Some(&pending)));
        assert!(!pod_in_phase("Running").matches_object(Some(&pending)));
        assert!(!pod_finished().matches_object(Some(&pending)));
        assert!(pod_finished().matches_object(Some(&failed)));
        assert!(!pod_finished().matches_object(None), "an absent pod has not finished");
    }

    #[test]
    fn a_kubelet_eviction_event_is_read() {
        let event: Event = serde_json::from_value(json!({
            "metadata": { "name": "jupyter-user.1", "namespace": "hubchaos" },
            "type": "Warning",
            "reason": "Evicted",
            "message": "The node was low on resource: ephemeral-storage.",
            "involvedObject": { "kind": "Pod", "name": "jupyter-user", "namespace": "hubchaos" },
            "source": { "component": "kubelet", "host": "hubchaos-worker" },
            "reportingComponent": "",
            "count": 2,
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:10Z"
        }))
        .unwrap();
        let at = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + s));
        assert_eq!(
            EventView::from(&event),
            EventView {
                event_type: "Warning".into(),
                reason: "Evicted".into(),
                message: "The node was low on resource: ephemeral-storage.".into(),
                involved_kind: "Pod".into(),
                involved_name: "jupyter-user".into(),
                involved_namespace: Some("hubchaos".into()),
                component: "kubelet".into(),
                count: 2,
                first: at(0),
                last: at(10),
            }
        );
    }

    #[test]
    fn an_events_api_event_is_read_from_its_event_time_and_series() {
        let event: Event = serde_json::from_value(json!({
            "metadata": { "name": "hubchaos-worker.1" },
            "type": "Warning",
            "reason": "FreeDiskSpaceFailed",
            "involvedObject": { "kind": "Node", "name": "hubchaos-worker" },
            "reportingComponent": "kubelet",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": { "count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z" }
        }))
        .unwrap();
        let view = EventView::from(&event);
        let at = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + s));
        assert_eq!((view.component.as_str(), view.count, view.first, view.last), ("kubelet", 3, at(0), at(60)));
        assert_eq!((view.message.as_str(), view.involved_namespace), ("", None));
    }
}
