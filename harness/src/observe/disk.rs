//! Disk sampler: `statvfs` of the node's data root every interval, as component `node-disk`.
//!
//! The numbers are computed exactly as docker-image-cleaner 1.0.0b3 computes them
//! (`1 - f_bavail / f_blocks`, `1 - f_favail / f_files`, and the fuller of the two), so
//! "usage back under the threshold" (check `disk-below`) is judged on the value the cleaner
//! itself acts on, not on `df`'s rounding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::history::Recorder;
use super::samples::{Sample, SampleSink};

/// The component name of these samples.
pub const NODE_DISK: &str = "node-disk";
/// Percent of blocks in use (the cleaner's "blocks" measure).
pub const BLOCKS_USED_PCT: &str = "blocks_used_pct";
/// Percent of inodes in use.
pub const INODES_USED_PCT: &str = "inodes_used_pct";
/// The fuller of the two: what the cleaner's relative threshold is compared with.
pub const USED_PCT: &str = "used_pct";
/// Bytes an unprivileged writer could still write.
pub const BYTES_FREE: &str = "bytes_free";
pub const INODES_FREE: &str = "inodes_free";

/// One `statvfs` reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    pub blocks_used_pct: f64,
    pub inodes_used_pct: f64,
    pub bytes_total: u64,
    pub bytes_free: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

impl DiskUsage {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
        let frag = st.fragment_size() as u64;
        Ok(Self::from_counts(st.blocks() as u64, st.blocks_available() as u64, frag, st.files() as u64, st.files_available() as u64))
    }

    /// From raw counts (`f_blocks`, `f_bavail`, `f_frsize`, `f_files`, `f_favail`).
    pub fn from_counts(blocks: u64, bavail: u64, frsize: u64, files: u64, favail: u64) -> Self {
        let pct = |avail: u64, total: u64| if total == 0 { 0.0 } else { 100.0 * (1.0 - avail as f64 / total as f64) };
        Self {
            blocks_used_pct: pct(bavail, blocks),
            inodes_used_pct: pct(favail, files),
            bytes_total: blocks * frsize,
            bytes_free: bavail * frsize,
            inodes_total: files,
            inodes_free: favail,
        }
    }

    /// The cleaner's relative measure: the fuller of blocks and inodes.
    pub fn used_pct(&self) -> f64 {
        self.blocks_used_pct.max(self.inodes_used_pct)
    }

    pub fn samples(&self, at: Duration) -> Vec<Sample> {
        [
            (BLOCKS_USED_PCT, self.blocks_used_pct),
            (INODES_USED_PCT, self.inodes_used_pct),
            (USED_PCT, self.used_pct()),
            (BYTES_FREE, self.bytes_free as f64),
            (INODES_FREE, self.inodes_free as f64),
        ]
        .into_iter()
        .map(|(metric, value)| Sample { at, component: NODE_DISK.into(), metric: metric.into(), labels: BTreeMap::new(), value })
        .collect()
    }
}

/// Samples the data root's filesystem every `every`.
#[derive(Debug, Clone)]
pub struct DiskSampler {
    pub path: PathBuf,
    pub every: Duration,
}

impl DiskSampler {
    pub async fn run(self, recorder: Recorder, sink: SampleSink, stop: CancellationToken) {
        super::every(self.every, &stop, || async {
            match DiskUsage::of(&self.path) {
                Ok(u) => sink.push_batch(u.samples(recorder.now())),
                Err(e) => tracing::debug!("statvfs {} failed: {e}", self.path.display()),
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_the_cleaners_fuller_of_blocks_and_inodes() {
        // 1000 blocks of 4 KiB, 250 available; 100 inodes, 90 available.
        let u = DiskUsage::from_counts(1000, 250, 4096, 100, 90);
        assert!((u.blocks_used_pct - 75.0).abs() < 1e-9);
        assert!((u.inodes_used_pct - 10.0).abs() < 1e-9);
        assert_eq!(u.used_pct(), u.blocks_used_pct);
        assert_eq!(u.bytes_free, 250 * 4096);
        let inode_bound = DiskUsage::from_counts(1000, 900, 4096, 100, 5);
        assert!((inode_bound.used_pct() - 95.0).abs() < 1e-9);
        let s = inode_bound.samples(Duration::from_secs(3));
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|x| x.component == NODE_DISK && x.at == Duration::from_secs(3)));
        assert_eq!(DiskUsage::from_counts(0, 0, 4096, 0, 0).used_pct(), 0.0);
    }

    #[test]
    fn a_real_filesystem_reads_sanely() {
        let u = DiskUsage::of(Path::new("/")).unwrap();
        assert!(u.bytes_total > 0 && (0.0..=100.0).contains(&u.used_pct()));
    }
}
