//! The hub stack on the local backend (lifecycle step 3): seed the database, start the proxy,
//! the hub, the recorder in front of the hub; the culler, pointed at its own recorder
//! listener, once the setup is in place. Each step is timed; the timings are a figure of
//! every run.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::overrides::{apply_recorded, hub_extra_config};
use super::supervisor::Supervisor;
use crate::backend::DeployTimings;
use crate::component::culler::CullerOptions;
use crate::component::hub::HubOptions;
use crate::component::hub::{seed_database, HubSettings, ServiceSetting, HARNESS_SCOPES};
use crate::component::proxy::ProxyConfig;
use crate::env::{Env, HubEndpoints};
use crate::fault::DeployPlan;
use crate::observe::evidence::RecordedGateway;
use crate::observe::hub_log::TokenOwners;
use crate::observe::recording_proxy::{RecordingProxy, Upstream};
use crate::paths::fixtures_dir;
use crate::profile::Profile;
use crate::toolchain::Toolchain;

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

/// What the local hub stack needs to deploy, besides the scenario's options.
pub struct StackInputs<'a> {
    pub supervisor: &'a Arc<Supervisor>,
    pub toolchain: &'a Toolchain,
    pub profile: Option<&'a Profile>,
}

/// Seed, proxy, hub, recorder. Returns the timings and the culler's token (only the local
/// culler, an external process, needs it).
pub async fn deploy_hub_stack(
    env: &Env,
    hub_options: &HubOptions,
    plan: &DeployPlan,
    inputs: &StackInputs<'_>,
) -> anyhow::Result<(DeployTimings, String)> {
    let StackInputs { supervisor, toolchain, profile } = inputs;
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
    apply_recorded(&mut spec, *profile, plan, &env.recorder);
    supervisor.deploy(spec).await?;
    timings.proxy_ready_s = started.elapsed().as_secs_f64();

    let harness_token = random_token(env);
    let culler_token = random_token(env);
    let extra_config = hub_extra_config(&hub_options.extra_config, plan, *profile, &env.recorder);
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
            ServiceSetting { name: HARNESS_SERVICE.into(), api_token: harness_token.clone(), scopes: strings(HARNESS_SCOPES) },
            ServiceSetting { name: CULLER_SERVICE.into(), api_token: culler_token.clone(), scopes: hub_options.culler_scopes.clone() },
        ],
        extra_config,
    };
    let settings_path = hub_dir.join("settings.json");
    settings.write(&settings_path)?;
    let hub_started = Instant::now();
    let mut spec = settings.spec(&toolchain.venv_bin("jupyterhub"), &fixtures_dir().join("hub/jupyterhub_config.py"), &settings_path);
    apply_recorded(&mut spec, *profile, plan, &env.recorder);
    supervisor.deploy(spec).await?;
    timings.hub_ready_s = hub_started.elapsed().as_secs_f64();

    let hub_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, hub_port));
    let gateway = Arc::new(RecordedGateway::new(RecordingProxy::start("hub", Upstream::Tcp(hub_addr), env.recorder.clone())?));
    env.add_request_source(gateway.clone());
    env.set_hub(HubEndpoints { hub_addr, public_url: proxy.public_url(), harness_token, gateway });

    timings.stack_ready_s = started.elapsed().as_secs_f64();
    Ok((timings, culler_token))
}

/// Start the culler, pointed at its own recorder listener. The runner starts it once the
/// setup is in place: as in 2018, the (new) culler arrives at a hub where users have piled up.
/// Returns how long it took to be ready.
pub async fn deploy_culler(
    env: &Env,
    culler: &CullerOptions,
    plan: &DeployPlan,
    token: &str,
    inputs: &StackInputs<'_>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let url = env.hub()?.api_url(CULLER_CLIENT).await?;
    let mut spec = culler.spec(&inputs.toolchain.python(), &url, token, &env.run_dir);
    apply_recorded(&mut spec, inputs.profile, plan, &env.recorder);
    inputs.supervisor.deploy(spec).await?;
    Ok(started.elapsed())
}

/// The hub service whose token every harness client sends (workloads, faults, probes, the
/// samplers).
pub const HARNESS_SERVICE: &str = "harness";
/// The hub service whose token the culler sends.
pub const CULLER_SERVICE: &str = "idle-culler";
/// The culler's recorder listener.
pub const CULLER_CLIENT: &str = "culler";

/// Whose token each recorder client sends: the culler the culler service's, every other
/// client the harness's.
pub fn token_owners() -> TokenOwners {
    TokenOwners { by_client: [(CULLER_CLIENT.to_string(), CULLER_SERVICE.to_string())].into(), otherwise: HARNESS_SERVICE.into() }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}
