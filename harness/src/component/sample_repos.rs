//! The repositories a binder scenario builds, made at run time as local bare git repositories
//! (`<run dir>/binder/repos/<name>.git`: BinderHub's `GitRepoProvider` takes `file://` URLs
//! once allowed, and repo2docker wants the `.git` suffix or it probes Mercurial first).
//!
//! Each holds one Dockerfile `FROM` the base image the harness made on the node's dockerd
//! (the machine's static busybox: nothing is pulled), so repo2docker builds it as is:
//! - fast: one instant step;
//! - slow: a step that prints its progress every second for `seconds`;
//! - large: a step that writes `mb` MiB (fills a small build disk: "no space left on device");
//!   `quiet`, its error output discarded (a build that fails saying only its exit code);
//! - broken: a step that fails.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// What a sample repo's build does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RepoKind {
    Fast,
    Slow { seconds: u32 },
    Large { mb: u32, quiet: bool },
    Broken,
}

/// One sample repo: its name (the repo's directory is `<name>.git`) and what its build does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SampleRepo {
    pub name: String,
    pub kind: RepoKind,
}

impl SampleRepo {
    pub fn new(name: &str, kind: RepoKind) -> Self {
        Self { name: name.into(), kind }
    }

    /// The Dockerfile of the repo, building on `base`.
    pub fn dockerfile(&self, base: &str) -> String {
        let step = match self.kind {
            RepoKind::Fast => format!("RUN echo '{} built' > /built", self.name),
            RepoKind::Slow { seconds } => {
                format!("RUN for i in $(seq 1 {seconds}); do echo \"{} step $i/{seconds}\"; sleep 1; done", self.name)
            }
            RepoKind::Large { mb, quiet } => {
                format!("RUN dd if=/dev/zero of=/large bs=1048576 count={mb}{}", if quiet { " 2>/dev/null" } else { "" })
            }
            RepoKind::Broken => format!("RUN echo '{} cannot build'; exit 3", self.name),
        };
        // The name goes in a label: two repos of the same kind must not share a cached build.
        format!("FROM {base}\nLABEL hubchaos.sample={}\n{step}\n", self.name)
    }
}

/// Make `repos` as bare repositories under `dir` (`<name>.git`), each with one commit on
/// `main`. Returns each repo's `file://` URL, in order.
pub fn make_repos(dir: &Path, repos: &[SampleRepo], base: &str) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut urls = Vec::with_capacity(repos.len());
    for repo in repos {
        let work = dir.join(format!("{}.work", repo.name));
        let bare = dir.join(format!("{}.git", repo.name));
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir_all(&bare);
        std::fs::create_dir_all(&work)?;
        std::fs::write(work.join("Dockerfile"), repo.dockerfile(base))?;
        git(&work, &["init", "-q", "-b", "main"])?;
        git(&work, &["add", "Dockerfile"])?;
        git(&work, &["-c", "user.name=hubchaos", "-c", "user.email=hubchaos@localhost", "commit", "-q", "-m", &repo.name])?;
        git(dir, &["clone", "-q", "--bare", &path_str(&work)?, &path_str(&bare)?])?;
        std::fs::remove_dir_all(&work)?;
        urls.push(format!("file://{}", bare.display()));
    }
    Ok(urls)
}

/// The sha of `main` in the bare repo `bare`.
pub fn main_sha(bare: &Path) -> anyhow::Result<String> {
    let out = Command::new("git").arg("--git-dir").arg(bare).args(["rev-parse", "main"]).output().context("running git rev-parse")?;
    if !out.status.success() {
        bail!("git rev-parse main in {} failed: {}", bare.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str().map(str::to_string).with_context(|| format!("{} is not UTF-8", p.display()))
}

fn git(cwd: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .output()
        .context("running git (Debian's git: apt-get install git)")?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_builds_as_it_says() {
        let base = "hubchaos/busybox:abc";
        assert!(SampleRepo::new("s", RepoKind::Slow { seconds: 30 }).dockerfile(base).contains("seq 1 30"));
        assert!(SampleRepo::new("l", RepoKind::Large { mb: 400, quiet: false }).dockerfile(base).contains("count=400\n"));
        assert!(SampleRepo::new("l", RepoKind::Large { mb: 400, quiet: true }).dockerfile(base).contains("count=400 2>/dev/null\n"));
        assert!(SampleRepo::new("b", RepoKind::Broken).dockerfile(base).contains("exit 3"));
        assert!(SampleRepo::new("f", RepoKind::Fast).dockerfile(base).starts_with("FROM hubchaos/busybox:abc\n"));
    }

    #[test]
    fn repos_are_bare_git_repositories_with_a_main_branch() {
        let dir = std::env::temp_dir().join(format!("hubchaos-sample-repos-{}", std::process::id()));
        let urls = make_repos(&dir, &[SampleRepo::new("fast-1", RepoKind::Fast)], "base:1").unwrap();
        assert_eq!(urls, [format!("file://{}", dir.join("fast-1.git").display())]);
        let out = Command::new("git").args(["ls-remote", &urls[0], "main"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"), "{out:?}");
        let sha = main_sha(&dir.join("fast-1.git")).unwrap();
        assert!(sha.len() == 40 && String::from_utf8_lossy(&out.stdout).starts_with(&sha), "{sha} {out:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
