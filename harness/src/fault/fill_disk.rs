//! `fill-disk`: bring the node disk (dockerd's data root, see
//! [`crate::component::node_disk`]) to a target use of blocks or of inodes.
//!
//! Two ways, because they model different things:
//! - [`FillWith::Images`] (the default): import images until the target is reached. This is
//!   how a BinderHub node really fills — built images accumulate — and it is the only fill the
//!   image cleaner can undo, so `frees_space_over_threshold` uses it. Blocks: images of random
//!   content (one layer each: an import needs no more than its own size, so the fill can go
//!   close to 100 %). Inodes: images of many empty files (conda envs, node_modules trees).
//! - [`FillWith::Files`]: files written straight into the data root's filesystem, outside
//!   docker: something the cleaner cannot free (logs, an emptyDir, the 2019 node pool whose
//!   small boot disk held everything). Blocks are allocated with `fallocate` (real blocks,
//!   not a sparse file), the last bytes written until ENOSPC when the target is 100 %; inodes
//!   are empty files, 1000 per directory. `disk_full_is_reported` uses it.
//!
//! Heal: remove what it wrote (its images by their `hubchaos.fill` label — already pruned ones
//! are fine — or its directory). Bounded: at most [`MAX_STEPS`] images or [`MAX_FILES`] files,
//! and it stops when the run is cancelled.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;

use super::{Fault, FaultGuard};
use crate::component::docker_api::DockerApi;
use crate::component::images::{no_space_message, ImageFactory, ImageSpec};
use crate::env::Env;
use crate::observe::disk::DiskUsage;

/// The label the fill's images carry (value: the fill's id), so heal removes only them.
pub const FILL_LABEL: &str = "hubchaos.fill";
/// The directory [`FillWith::Files`] writes in, inside the data root.
pub const FILL_DIR: &str = "hubchaos-fill";
/// At most this many images (attempts) per fill.
pub const MAX_STEPS: u32 = 500;
/// After ENOSPC the image step halves down to this percentage of the disk.
pub const MIN_STEP_PCT: f64 = 0.5;
/// At most this many files per fill.
pub const MAX_FILES: u64 = 2_000_000;

/// What to fill, to which percentage (as the cleaner measures it: 1 - avail / total).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillTarget {
    Blocks(f64),
    Inodes(f64),
}

impl FillTarget {
    fn pct(self) -> f64 {
        match self {
            FillTarget::Blocks(p) | FillTarget::Inodes(p) => p,
        }
    }

    fn current(self, u: &DiskUsage) -> f64 {
        match self {
            FillTarget::Blocks(_) => u.blocks_used_pct,
            FillTarget::Inodes(_) => u.inodes_used_pct,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FillTarget::Blocks(_) => "blocks",
            FillTarget::Inodes(_) => "inodes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillWith {
    /// Images of at most `step_pct` % of the disk (blocks) or of its inodes each.
    Images { step_pct: f64 },
    /// Files in `<data root>/hubchaos-fill/`.
    Files,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FillDisk {
    pub target: FillTarget,
    pub with: FillWith,
}

impl FillDisk {
    /// Blocks to `pct` %, with images (what the cleaner can free).
    pub fn blocks(pct: f64) -> Self {
        Self { target: FillTarget::Blocks(pct), with: FillWith::Images { step_pct: 10.0 } }
    }

    /// Inodes to `pct` %, with images of many empty files.
    pub fn inodes(pct: f64) -> Self {
        Self { target: FillTarget::Inodes(pct), with: FillWith::Images { step_pct: 10.0 } }
    }

    /// Fill with plain files instead (the cleaner cannot free them).
    pub fn with_files(mut self) -> Self {
        self.with = FillWith::Files;
        self
    }

    /// How many bytes (blocks) or inodes are still missing to reach the target.
    pub fn missing(&self, u: &DiskUsage) -> u64 {
        let want = self.target.pct().clamp(0.0, 100.0) / 100.0;
        match self.target {
            FillTarget::Blocks(_) => {
                let used = u.bytes_total - u.bytes_free;
                ((want * u.bytes_total as f64).ceil() as u64).saturating_sub(used)
            }
            FillTarget::Inodes(_) => {
                let used = u.inodes_total - u.inodes_free;
                ((want * u.inodes_total as f64).ceil() as u64).saturating_sub(used)
            }
        }
    }

    fn reached(&self, u: &DiskUsage) -> bool {
        self.target.current(u) >= self.target.pct() || self.missing(u) == 0
    }

    /// The next image: at most `step_pct` of the disk, at least 1 MiB / 100 files, no more
    /// than what is missing.
    pub fn next_image(&self, u: &DiskUsage, n: u32, id: &str, step_pct: f64) -> ImageSpec {
        let missing = self.missing(u);
        let name = format!("fill-{id}-{n}");
        let spec = match self.target {
            FillTarget::Blocks(_) => {
                let step = ((u.bytes_total as f64 * step_pct / 100.0) as u64).max(1 << 20);
                ImageSpec::sized(&name, missing.min(step).max(1 << 20), 1)
            }
            FillTarget::Inodes(_) => {
                let step = ((u.inodes_total as f64 * step_pct / 100.0) as u64).max(100);
                // Each layer also costs a few inodes (its dirs, its `id` file, overlay's own).
                ImageSpec::many_files(&name, missing.min(step).max(100), 1)
            }
        };
        spec.label(FILL_LABEL, id)
    }
}

#[async_trait]
impl Fault for FillDisk {
    fn kind(&self) -> &'static str {
        "fill-disk"
    }

    fn target(&self) -> String {
        "node-disk".into()
    }

    async fn inject(&self, env: &Env) -> anyhow::Result<FaultGuard> {
        let layout = env.node_paths();
        let started = Instant::now();
        let id = format!("{:x}", env.recorder.now().as_millis());
        let before = DiskUsage::of(&layout.data_root).with_context(|| format!("statvfs {}", layout.data_root.display()))?;
        let (detail, heal): (String, super::guard::HealFn) = match self.with {
            FillWith::Images { step_pct } => {
                let factory = ImageFactory::new(DockerApi::new(&layout.docker_socket), &env.run_id, env.seed);
                let mut n = 0u32;
                let mut attempts = 0u32;
                let mut usage = before;
                let mut step = step_pct;
                let mut stopped_by = String::new();
                while !self.reached(&usage) && attempts < MAX_STEPS && !env.cancel.is_cancelled() {
                    attempts += 1;
                    let spec = self.next_image(&usage, n, &id, step);
                    match factory.build(&spec).await {
                        Ok(_) => n += 1,
                        // The daemon removes a layer it could not finish: halve the step and go on,
                        // down to the smallest image; then the disk is as full as images make it.
                        Err(e) if no_space_message(&e).is_some() => {
                            if step <= MIN_STEP_PCT {
                                stopped_by = format!("; stopped by ENOSPC: {}", no_space_message(&e).unwrap_or_default());
                                break;
                            }
                            step = (step / 2.0).max(MIN_STEP_PCT);
                        }
                        Err(e) => return Err(e.context(format!("fill-disk: image {n}"))),
                    }
                    usage = DiskUsage::of(&layout.data_root)?;
                }
                let detail = describe(self.target, &before, &usage, &format!("{n} image(s)"), started, &stopped_by);
                let label = format!("{FILL_LABEL}={id}");
                let heal: super::guard::HealFn = Box::new(move || {
                    Box::pin(async move {
                        factory.remove_images(Some(&label)).await?;
                        Ok(())
                    })
                });
                (detail, heal)
            }
            FillWith::Files => {
                let dir = layout.data_root.join(FILL_DIR).join(&id);
                let this = self.clone();
                let data_root = layout.data_root.clone();
                let dir2 = dir.clone();
                let cancel = env.cancel.clone();
                let (made, stopped_by) = tokio::task::spawn_blocking(move || fill_with_files(&this, &data_root, &dir2, &cancel)).await??;
                let after = DiskUsage::of(&layout.data_root)?;
                let detail = describe(self.target, &before, &after, &made, started, &stopped_by);
                let heal: super::guard::HealFn = Box::new(move || {
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                            _ => Ok(()),
                        })
                        .await??;
                        Ok(())
                    })
                });
                (detail, heal)
            }
        };
        Ok(FaultGuard::injected(self.kind(), "node-disk", detail, &env.recorder, heal))
    }
}

fn describe(target: FillTarget, before: &DiskUsage, after: &DiskUsage, made: &str, started: Instant, stopped_by: &str) -> String {
    format!(
        "{} {:.1}% -> {:.1}% (target {:.1}%) with {made} in {:.1} s{stopped_by}",
        target.name(),
        target.current(before),
        target.current(after),
        target.pct(),
        started.elapsed().as_secs_f64()
    )
}

/// Write files until the target; returns what was made and what stopped it.
fn fill_with_files(
    fill: &FillDisk,
    data_root: &Path,
    dir: &PathBuf,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<(String, String)> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut usage = DiskUsage::of(data_root)?;
    let mut files = 0u64;
    let mut stopped_by = String::new();
    let enospc = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOSPC);
    match fill.target {
        FillTarget::Blocks(_) => {
            const CHUNK: u64 = 64 << 20;
            while !fill.reached(&usage) && files < MAX_FILES && !cancel.is_cancelled() {
                let want = fill.missing(&usage).clamp(4096, CHUNK);
                let path = dir.join(format!("f{files}"));
                let f = std::fs::File::create(&path)?;
                files += 1;
                match nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, want as i64) {
                    Ok(()) => {}
                    Err(nix::errno::Errno::ENOSPC) => {
                        // Less than `want` is left: write what still fits, byte blocks at a time.
                        let mut f = f;
                        let block = [0xA5u8; 4096];
                        loop {
                            match f.write(&block) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) if enospc(&e) => break,
                                Err(e) => return Err(e.into()),
                            }
                        }
                        let _ = f.sync_all();
                        stopped_by = "; stopped by ENOSPC: no space left on device".into();
                        break;
                    }
                    Err(e) => return Err(anyhow::Error::from(e).context(format!("fallocate {}", path.display()))),
                }
                usage = DiskUsage::of(data_root)?;
            }
        }
        FillTarget::Inodes(_) => {
            let mut missing = fill.missing(&usage);
            'outer: while missing > 0 && files < MAX_FILES && !cancel.is_cancelled() {
                for _ in 0..missing.min(10_000) {
                    if files.is_multiple_of(1000) {
                        match std::fs::create_dir_all(dir.join(format!("d{}", files / 1000))) {
                            Ok(()) => {}
                            Err(e) if enospc(&e) => {
                                stopped_by = "; stopped by ENOSPC: no space left on device".into();
                                break 'outer;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    match std::fs::File::create(dir.join(format!("d{}/f{files}", files / 1000))) {
                        Ok(_) => files += 1,
                        Err(e) if enospc(&e) => {
                            stopped_by = "; stopped by ENOSPC: no space left on device".into();
                            break 'outer;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                usage = DiskUsage::of(data_root)?;
                missing = fill.missing(&usage);
            }
        }
    }
    Ok((format!("{files} file(s)"), stopped_by))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 MiB of 4 KiB blocks, 10 % used; 19 200 inodes, 1 % used.
    fn disk() -> DiskUsage {
        let blocks = 300 * 256;
        DiskUsage::from_counts(blocks, blocks * 9 / 10, 4096, 19_200, 19_008)
    }

    #[test]
    fn what_is_missing_to_the_target() {
        let u = disk();
        let b = FillDisk::blocks(85.0);
        let missing = b.missing(&u);
        assert_eq!(missing, ((0.85 * (300u64 << 20) as f64).ceil() as u64) - (30 << 20));
        assert!(!b.reached(&u));
        assert!(FillDisk::blocks(5.0).reached(&u));
        let i = FillDisk::inodes(90.0);
        assert_eq!(i.missing(&u), 17_280 - 192);
    }

    #[test]
    fn images_are_small_steps_never_more_than_missing_and_labelled() {
        let u = disk();
        let spec = FillDisk::blocks(85.0).next_image(&u, 0, "f1", 10.0);
        assert_eq!(spec.total_bytes(), 30 << 20, "10 % of 300 MiB");
        assert_eq!(spec.layers.len(), 1, "one layer: an import needs only its own size");
        assert_eq!(spec.labels[FILL_LABEL], "f1");
        let near = DiskUsage::from_counts(300 * 256, 300 * 256 * 16 / 100, 4096, 19_200, 19_008);
        let last = FillDisk::blocks(85.0).next_image(&near, 7, "f1", 10.0);
        assert_eq!(last.total_bytes(), FillDisk::blocks(85.0).missing(&near), "only what is missing");
        assert!(last.total_bytes() < (30 << 20));
        let inodes = FillDisk::inodes(90.0).next_image(&u, 0, "f1", 10.0);
        assert_eq!((inodes.total_files(), inodes.total_bytes()), (1920, 0));
    }

    #[test]
    fn files_fill_a_directory_to_an_inode_target_and_stop() {
        // On the machine's disk the target is long reached: nothing is written.
        let dir = tempfile::tempdir().unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let (made, _) = fill_with_files(&FillDisk::inodes(0.0).with_files(), dir.path(), &dir.path().join("fill"), &cancel).unwrap();
        assert_eq!(made, "0 file(s)");
        assert_eq!(FillDisk::blocks(1.0).with_files().kind(), "fill-disk");
    }
}
