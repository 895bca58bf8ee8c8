//! Deploying the hub stack on the local backend (lifecycle step 3): seed the database, start
//! the proxy, the hub, the recorder in front of the hub, then the culler pointed at the
//! recorder. Each step is timed; the timings are a figure of every run.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::component::culler::CullerOptions;
use crate::component::hub::HubOptions;
use crate::component::hub::{seed_database, HubSettings, ServiceSetting, HARNESS_SCOPES};
use crate::component::proxy::ProxyConfig;
use crate::env::{Env, HubEndpoints};
use crate::fault::DeployPlan;
use crate::observe::recorder::{RecordingProxy, Upstream};
use crate::paths::fixtures_dir;
use crate::profile::{ComponentName, Profile};
use crate::toolchain::Toolchain;

/// How long each part took to become ready.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployTimings {
    pub seeded_users: u64,
    pub seed_s: f64,
    pub proxy_ready_s: f64,
    pub hub_ready_s: f64,
    pub culler_ready_s: f64,
    /// Proxy + hub (+ culler when it is deployed), excluding seeding.
    pub stack_ready_s: f64,
}

/// A free TCP port on 127.0.0.1 (bound, read, released: a small race with other pickers).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(free_ports::<1>()?[0])
}

/// `N` distinct free ports: all held open until every one is picked (picking them one at a
/// time can return the same port twice: seen here, CHP's public and API ports collided).
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners =
        (0..N).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")).collect::<anyhow::Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

/// A random hex token (JupyterHub's own tokens are 32 hex chars).
pub fn random_token(env: &Env) -> String {
    use rand::Rng;
    let bytes: [u8; 16] = env.rng.lock().unwrap().random();
    hex::encode(bytes)
}

fn overridden(profile: Option<&Profile>, name: ComponentName, spec: &mut crate::backend::ComponentSpec) {
    if let Some(p) = profile {
        p.apply(name, &mut spec.command);
    }
}

pub async fn deploy_hub_stack(
    env: &Env,
    hub_options: &HubOptions,
    plan: &DeployPlan,
    toolchain: &Toolchain,
    profile: Option<&Profile>,
) -> anyhow::Result<DeployTimings> {
    let mut timings = DeployTimings::default();
    let hub_dir = env.run_dir.join("hub");
    std::fs::create_dir_all(&hub_dir)?;
    let db_url = format!("sqlite:///{}", hub_dir.join("jupyterhub.sqlite").display());

    if !plan.seed.is_empty() {
        let report = seed_database(&toolchain.python(), &fixtures_dir().join("hub/seed_users.py"), &plan.seed, &db_url, &hub_dir).await?;
        timings.seeded_users = report.users;
        timings.seed_s = report.wall_s;
    }

    let [hub_port, public_port, api_port, metrics_port] = free_ports::<4>()?;
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let proxy = ProxyConfig {
        program: toolchain.npm_bin("configurable-http-proxy"),
        public_port,
        api_port,
        metrics_port,
        default_target: hub_url.clone(),
        auth_token: random_token(env),
    };
    let started = Instant::now();
    let mut spec = proxy.spec(&env.run_dir);
    overridden(profile, ComponentName::Proxy, &mut spec);
    env.backend.deploy(spec).await?;
    timings.proxy_ready_s = started.elapsed().as_secs_f64();

    let harness_token = random_token(env);
    let culler_token = random_token(env);
    let mut extra_config = hub_options.extra_config.clone();
    if !plan.hub_extra_config.is_empty() {
        extra_config.push('\n');
        extra_config.push_str(&plan.hub_extra_config);
    }
    if let Some(extra) = profile.and_then(|p| p.hub.extra_config.as_deref()) {
        extra_config.push('\n');
        extra_config.push_str(extra);
    }
    let settings = HubSettings {
        run_dir: hub_dir.clone(),
        hub_bind_url: hub_url.clone(),
        public_url: proxy.public_url(),
        proxy_api_url: proxy.api_url(),
        proxy_auth_token: proxy.auth_token.clone(),
        db_url,
        singleuser_cmd: toolchain.venv_bin("jupyterhub-singleuser"),
        singleuser_activity_interval: hub_options.singleuser_activity_interval.as_secs(),
        // Single-user servers carry the run id too, so a sweep finds them after a hub crash.
        singleuser_env: [("HUBCHAOS_RUN_ID".to_string(), env.run_id.clone())].into(),
        last_activity_interval: hub_options.last_activity_interval.as_secs().max(1),
        poll_interval: hub_options.poll_interval.as_secs().max(1),
        allow_named_servers: hub_options.allow_named_servers,
        named_server_limit_per_user: hub_options.named_server_limit_per_user,
        admin_users: hub_options.admin_users.clone(),
        log_level: hub_options.log_level.clone(),
        services: vec![
            ServiceSetting { name: "harness".into(), api_token: harness_token.clone(), scopes: strings(HARNESS_SCOPES) },
            ServiceSetting { name: "idle-culler".into(), api_token: culler_token.clone(), scopes: hub_options.culler_scopes.clone() },
        ],
        extra_config,
    };
    let settings_path = hub_dir.join("settings.json");
    settings.write(&settings_path)?;
    let hub_started = Instant::now();
    let mut spec = settings.spec(&toolchain.venv_bin("jupyterhub"), &fixtures_dir().join("hub/jupyterhub_config.py"), &settings_path);
    overridden(profile, ComponentName::Hub, &mut spec);
    env.backend.deploy(spec).await?;
    timings.hub_ready_s = hub_started.elapsed().as_secs_f64();

    let hub_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, hub_port));
    let recorder = RecordingProxy::start("hub", Upstream::Tcp(hub_addr), env.recorder.clone())?;
    env.set_hub(HubEndpoints::new(
        hub_addr,
        proxy.public_url(),
        proxy.api_url(),
        proxy.auth_token.clone(),
        harness_token,
        culler_token,
        recorder,
    ));

    timings.stack_ready_s = started.elapsed().as_secs_f64();
    Ok(timings)
}

/// Start the culler, pointed at its own recorder listener. The runner starts it once the
/// setup is in place: as in 2018, the (new) culler arrives at a hub where users have piled up.
/// Returns how long it took to be ready.
pub async fn deploy_culler(env: &Env, culler: &CullerOptions, toolchain: &Toolchain, profile: Option<&Profile>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let hub = env.hub()?;
    let url = hub.api_url("culler").await?;
    let mut spec = culler.spec(&toolchain.python(), &url, &hub.culler_token, &env.run_dir);
    overridden(profile, ComponentName::Culler, &mut spec);
    env.backend.deploy(spec).await?;
    Ok(started.elapsed().as_secs_f64())
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// The culler's default options for scenarios: rounds every few seconds so a scenario sees
/// many rounds in a short window.
pub fn quick_culler() -> CullerOptions {
    CullerOptions { timeout: Duration::from_secs(60), cull_every: Duration::from_secs(5), ..Default::default() }
}

/// Where a component's log ends up in the run dir.
pub fn log_file(run_dir: &Path, component: &str) -> std::path::PathBuf {
    run_dir.join("logs").join(format!("{component}.log"))
}
