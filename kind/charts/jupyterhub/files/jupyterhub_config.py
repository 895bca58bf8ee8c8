# The hub config of hubchaos' reference chart (JupyterHub 6.1 with KubeSpawner 7.1).
#
# Everything comes from the chart's values, mounted from the Secret `hub` as
# /usr/local/etc/jupyterhub/secret/values.yaml, under the z2jh keys it reads (the chart's
# values.yaml lists them). The behaviour the harness relies on is z2jh's: KubeSpawner in the
# hub's namespace, the proxy run apart (should_start False) and reached through the
# `proxy-api` Service, servers left running when the hub stops (cleanup_servers False), the
# idle culler as a service the hub starts in its own container, pointed at localhost:8081,
# `hub.config` applied after the chart's own settings and `hub.extraConfig` exec'd last.
import os

import yaml
from tornado.httpclient import AsyncHTTPClient

c = get_config()  # noqa: F821 -- traitlets' config loader provides it

VALUES_FILE = "/usr/local/etc/jupyterhub/secret/values.yaml"
with open(VALUES_FILE) as _f:
    values = yaml.safe_load(_f) or {}


def value_of(path, default=None):
    """The value at dotted `path` of the chart's values; `default` when absent or null."""
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


# --- the hub, the proxy, the database (as z2jh) --------------------------------------
AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.ConfigurableHTTPProxy.api_url = f"http://proxy-api:{os.environ.get('PROXY_API_SERVICE_PORT', '8001')}"
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 60
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = f"http://hub:{os.environ.get('HUB_SERVICE_PORT', '8081')}"

db_type = value_of("hub.db.type", "sqlite-pvc")
if db_type == "sqlite-pvc":
    c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"  # in the claim, the working directory
elif db_type == "sqlite-memory":
    c.JupyterHub.db_url = "sqlite://"
else:
    c.JupyterHub.db_url = value_of("hub.db.url")

c.JupyterHub.concurrent_spawn_limit = value_of("hub.concurrentSpawnLimit", 64)
c.Spawner.consecutive_failure_limit = value_of("hub.consecutiveFailureLimit", 5)
if value_of("hub.activeServerLimit") is not None:
    c.JupyterHub.active_server_limit = value_of("hub.activeServerLimit")

# --- user servers: KubeSpawner from singleuser.* --------------------------------------
c.KubeSpawner.namespace = os.environ["POD_NAMESPACE"]
c.KubeSpawner.image = f"{value_of('singleuser.image.name')}:{value_of('singleuser.image.tag')}"
if value_of("singleuser.image.pullPolicy"):
    c.KubeSpawner.image_pull_policy = value_of("singleuser.image.pullPolicy")
c.KubeSpawner.cmd = value_of("singleuser.cmd", "jupyterhub-singleuser")
if value_of("singleuser.defaultUrl"):
    c.Spawner.default_url = value_of("singleuser.defaultUrl")
c.KubeSpawner.start_timeout = value_of("singleuser.startTimeout", 300)
c.KubeSpawner.uid = value_of("singleuser.uid", 1000)
c.KubeSpawner.fs_gid = value_of("singleuser.fsGid", 100)
c.KubeSpawner.node_selector = dict(value_of("singleuser.nodeSelector", {}))
c.KubeSpawner.environment = {k: str(v) for k, v in value_of("singleuser.extraEnv", {}).items()}
if value_of("singleuser.memory.guarantee"):
    c.KubeSpawner.mem_guarantee = value_of("singleuser.memory.guarantee")
if value_of("singleuser.memory.limit"):
    c.KubeSpawner.mem_limit = value_of("singleuser.memory.limit")
if value_of("singleuser.storage.type", "dynamic") != "none":
    raise SystemExit(
        "hubchaos reference chart: only singleuser.storage.type none is supported (the kind cluster has no StorageClass)"
    )
_purpose = {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
_match = value_of("scheduling.userPods.nodeAffinity.matchNodePurpose", "prefer")
if _match == "require":
    c.KubeSpawner.node_affinity_required = [{"matchExpressions": [_purpose]}]
elif _match == "prefer":
    c.KubeSpawner.node_affinity_preferred = [{"weight": 100, "preference": {"matchExpressions": [_purpose]}}]

# --- services and roles: hub.services, hub.loadRoles, the culler ---------------------
c.JupyterHub.services = []
c.JupyterHub.load_roles = []
for _name, _service in (value_of("hub.services", {}) or {}).items():
    _service = dict(_service or {})
    _service.setdefault("name", _name)
    if "apiToken" in _service:
        _service["api_token"] = _service.pop("apiToken")
    c.JupyterHub.services.append(_service)
for _name, _role in (value_of("hub.loadRoles", {}) or {}).items():
    _role = dict(_role or {})
    _role.setdefault("name", _name)
    c.JupyterHub.load_roles.append(_role)

if value_of("cull.enabled", False):
    _scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    _cmd = [
        "python3",
        "-m",
        "jupyterhub_idle_culler",
        "--url=http://localhost:8081/hub/api",
        f"--timeout={value_of('cull.timeout', 3600)}",
        f"--cull-every={value_of('cull.every', 600)}",
        f"--concurrency={value_of('cull.concurrency', 10)}",
    ]
    # Booleans with an explicit value: jupyterhub-idle-culler 2.0 parses its flags with
    # traitlets and refuses a bare `--cull-users` ("expected one argument"), the form z2jh's
    # config (and idle-culler 1.x) uses.
    if value_of("cull.users", False):
        _cmd.append("--cull-users=True")
        _scopes.append("admin:users")
    if not value_of("cull.adminUsers", True):
        _cmd.append("--cull-admin-users=False")
    if value_of("cull.removeNamedServers", False):
        _cmd.append("--remove-named-servers=True")
    if value_of("cull.maxAge", 0):
        _cmd.append(f"--max-age={value_of('cull.maxAge')}")
    c.JupyterHub.services.append({"name": "jupyterhub-idle-culler", "command": _cmd})
    c.JupyterHub.load_roles.append(
        {"name": "jupyterhub-idle-culler", "scopes": _scopes, "services": ["jupyterhub-idle-culler"]}
    )

# --- pass-through and extra config, last ----------------------------------------------
for _cls, _traits in (value_of("hub.config", {}) or {}).items():
    for _trait, _value in (_traits or {}).items():
        c[_cls][_trait] = _value

for _key in sorted(value_of("hub.extraConfig", {}) or {}):
    exec(compile(value_of("hub.extraConfig")[_key], f"hub.extraConfig.{_key}", "exec"))
