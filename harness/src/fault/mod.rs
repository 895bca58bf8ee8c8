//! Faults: one small typed struct per file, a stable kebab-case `kind()`, an `inject` that
//! returns a [`FaultGuard`] whose heal undoes it (faults in inverse pairs, after turmoil).
//! A fault is bundled with its [`Schedule`] in a [`Scheduled`] (after Jepsen's combined nemesis).

pub mod accumulate_users;
pub mod add_pool;
pub mod cluster_addon_down;
pub mod delete_pods_on_pool;
pub mod fill_disk;
pub mod flood_api;
pub mod github_api_fault;
pub mod guard;
pub mod kill_process;
pub mod kubelet_eviction_off;
pub mod leaky_hook;
pub mod mask_errors;
pub mod misconfigure;
pub mod pause_process;
pub mod remove_images_in_use;
pub mod schedule;
pub mod wipe_cache;

use async_trait::async_trait;

pub use accumulate_users::AccumulateUsers;
pub use add_pool::{AddPool, TaintPool};
pub use cluster_addon_down::AddonDown;
pub use delete_pods_on_pool::DeletePodsOnPool;
pub use fill_disk::FillDisk;
pub use flood_api::FloodApi;
pub use github_api_fault::GitHubApiFault;
pub use guard::FaultGuard;
pub use kill_process::KillProcess;
pub use kubelet_eviction_off::KubeletEvictionOff;
pub use leaky_hook::LeakyHook;
pub use mask_errors::MaskErrors;
pub use misconfigure::Misconfigure;
pub use pause_process::PauseProcess;
pub use remove_images_in_use::RemoveImagesInUse;
pub use schedule::Schedule;
pub use wipe_cache::WipeCache;

use crate::component::seed::SeedPlan;
use crate::env::Env;

/// What must be in place before the system starts (users that accumulated before a restart).
#[derive(Debug, Default)]
pub struct DeployPlan {
    pub seed: SeedPlan,
    /// Python appended to the hub's `extra_config` (exec'd last by the hub config), e.g. the
    /// spawn hook of `leaky-hook`.
    pub hub_extra_config: String,
    /// Environment overrides applied to a component's spec before it starts (`misconfigure`):
    /// the local backend applies them in `backend::local::overrides`.
    pub env_overrides: Vec<misconfigure::EnvOverride>,
}

#[async_trait]
pub trait Fault: Send + Sync + std::fmt::Debug + crate::scenario::Declaration {
    /// Stable kebab-case name, e.g. `kill-process`.
    fn kind(&self) -> &'static str;

    /// What it hits, e.g. `proxy`.
    fn target(&self) -> String;

    /// State the fault needs before deploy; most faults need none.
    fn before_deploy(&self, _plan: &mut DeployPlan) -> anyhow::Result<()> {
        Ok(())
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard>;
}

/// A fault and when it fires.
#[derive(Debug)]
pub struct Scheduled {
    pub fault: Box<dyn Fault>,
    pub schedule: Schedule,
}

impl Scheduled {
    pub fn new(fault: impl Fault + 'static, schedule: Schedule) -> Self {
        Self { fault: Box::new(fault), schedule }
    }
}
