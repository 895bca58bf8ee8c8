//! BinderHub on the local backend (lifecycle step 3, after the node: it builds on the node's
//! dockerd): the base image of the sample repos (the machine's static busybox, imported into
//! the node's dockerd: nothing is pulled), the sample repos, BinderHub's settings, repo2docker's
//! config and the buildx plugin, then BinderHub itself, ready when `/versions` answers.
//!
//! BinderHub talks to dockerd's socket directly, not through the node's recorder: buildx
//! hijacks the connection for its BuildKit session, which a request recorder cannot follow.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::hub_stack::free_ports;
use super::overrides::apply_recorded;
use super::{BinderEnv, LocalBackend};
use crate::backend::kind::test_image::{reference, rootfs_tar, BUSYBOX};
use crate::component::binderhub::{
    build_path, deployed_detail, running_units, spec, BinderLayout, BinderOptions, BinderSettings, RepoSource, BINDER_DEPLOYED,
};
use crate::component::docker_api::{bytes_body, DockerApi};
use crate::component::github_api::{gh_build_path, git_redirect_env, GitHubApi};
use crate::component::sample_repos::{main_sha, make_repos};
use crate::env::{BinderEndpoints, Env};
use crate::fault::DeployPlan;
use crate::paths::fixtures_dir;

/// `$HUBCHAOS_HOME/binder-repos/<short>` -> `repo_dir`, after removing the links of runs whose
/// repos are gone (a run killed before its cleanup).
fn short_repo_link(home: &Path, short: &str, repo_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let links = home.join("binder-repos");
    std::fs::create_dir_all(&links)?;
    for entry in std::fs::read_dir(&links)?.flatten() {
        if !entry.path().exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let link = links.join(short);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(repo_dir, &link).with_context(|| format!("linking {}", link.display()))?;
    Ok(link)
}

/// What was deployed: BinderHub's URL (for its metrics sampler).
pub struct BinderHandle {
    pub url: String,
}

/// Deploy BinderHub building on the node's dockerd at `docker_socket`.
pub async fn deploy_binder(
    env: &Env,
    local: &LocalBackend,
    options: &BinderOptions,
    docker_socket: &Path,
    plan: &DeployPlan,
) -> anyhow::Result<BinderHandle> {
    let started = Instant::now();
    let BinderEnv { toolchain, buildx } =
        local.binder_env.as_ref().context("BinderHub's environment was not prepared: the scenario must need `binderhub`")?;
    let layout = BinderLayout::new(&env.run_dir);

    // The base image every sample repo builds FROM.
    let api = DockerApi::new(docker_socket);
    let busybox =
        std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}: install Debian's busybox-static (`make deps` does)"))?;
    let base = reference(&busybox);
    let mut rootfs = Vec::with_capacity(busybox.len() + (64 << 10));
    rootfs_tar(Path::new(BUSYBOX), &mut rootfs)?;
    let (repo, tag) = base.split_once(':').context("the base image reference has a tag")?;
    api.import(repo, tag, &["ENV PATH=/bin".to_string()], bytes_body(rootfs)).await.context("importing the sample repos' base image")?;

    // The repos live in the run dir; BinderHub gets them through a short link, because it
    // names images after the repo's URL and docker refuses names over 255 characters (seen:
    // every build of a repo deep in a run dir failed with "repository name must not be more
    // than 255 characters" before it started).
    let repo_dir = layout.dir.join("repos");
    let short = crate::paths::short_run_id(&env.run_id);
    let link = short_repo_link(&crate::paths::hubchaos_home(), &short, &repo_dir)?;
    let unlink = link.clone();
    env.cleanup.push("remove the link to the sample repos", Box::pin(async move { Ok(std::fs::remove_file(&unlink)?) }));
    // Made off the runtime's threads (git runs for each repo), with the sha of each repo's
    // `main` when the GitHub API stand-in has to answer with it.
    let (repos, b, d, from_github) = (options.repos.clone(), base.clone(), repo_dir.clone(), options.source == RepoSource::GitHub);
    let shas = tokio::task::spawn_blocking(move || -> anyhow::Result<BTreeMap<String, String>> {
        make_repos(&d, &repos, &b)?;
        let shas = repos.iter().filter(|_| from_github).map(|r| Ok((r.name.clone(), main_sha(&d.join(format!("{}.git", r.name)))?)));
        shas.collect()
    })
    .await??;
    // The path that asks BinderHub for each repo; from "GitHub", through the API stand-in.
    let (builds, github_api) = match options.source {
        RepoSource::Git => {
            let builds =
                options.repos.iter().map(|r| (r.name.clone(), build_path(&format!("file://{}/{}.git", link.display(), r.name), "main")));
            (builds.collect::<BTreeMap<_, _>>(), None)
        }
        RepoSource::GitHub => {
            let api = GitHubApi::start(shas, env.recorder.clone()).await;
            let builds = options.repos.iter().map(|r| (r.name.clone(), gh_build_path(&r.name, "main")));
            (builds.collect(), Some(std::sync::Arc::new(api)))
        }
    };

    let [port] = free_ports::<1>()?;
    let settings = BinderSettings {
        port,
        build_class: options.executor.as_str(),
        concurrent_build_limit: options.concurrent_build_limit,
        image_prefix: format!("hubchaos-binder/{short}-"),
        // Never contacted: the scenarios build only (`?build_only=true`).
        hub_url: "http://127.0.0.1:9/".into(),
        repo2docker_config: layout.repo2docker_config.clone(),
        github_api: github_api.as_ref().map(|a| a.uri()),
        rate_limit: 0,
        labels: [(crate::component::images::RUN_LABEL.to_string(), env.run_id.clone())].into(),
    };
    layout.write(&settings, buildx)?;
    let venv_bin = toolchain.python().parent().context("the venv's python has a bin dir")?.to_path_buf();
    let mut component = spec(
        &venv_bin,
        &fixtures_dir().join("binder/binderhub_config.py"),
        &layout,
        &format!("unix://{}", docker_socket.display()),
        port,
        options.ready_within,
    );
    if github_api.is_some() {
        component.command.env.extend(git_redirect_env(&link));
    }
    apply_recorded(&mut component, local.profile.as_ref(), plan, &env.recorder);
    // Build units run in process groups of their own (as pods outlive a watcher): whatever
    // still runs at teardown is ended, and counted, with the rest of the run's leftovers.
    let (units, recorder) = (layout.units.clone(), env.recorder.clone());
    env.cleanup.push(
        "end the build units still running",
        Box::pin(async move {
            let left = running_units(&units);
            for pgid in &left {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pgid), nix::sys::signal::Signal::SIGKILL);
            }
            if !left.is_empty() {
                recorder.phase("build-units-ended", format!("{} build unit(s) were still running at teardown: {left:?}", left.len()));
            }
            Ok(())
        }),
    );
    local.supervisor.deploy(component).await?;

    let url = format!("http://127.0.0.1:{port}");
    env.set_binder(BinderEndpoints { url: url.clone(), builds, github_api });
    env.recorder.phase(BINDER_DEPLOYED, deployed_detail(started.elapsed().as_secs_f64(), options.concurrent_build_limit));
    Ok(BinderHandle { url })
}
