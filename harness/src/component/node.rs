//! The node a scenario declares: its disk, the images it starts with, the image cleaner. The
//! local backend deploys it (`backend::local::node`): the disk loop-mounted, the harness's
//! dockerd on it, the recorder in front of dockerd's socket, then the cleaner.

use std::time::Duration;

use serde::Serialize;

use super::image_cleaner::CleanerOptions;
use super::images::ImageSpec;
use super::node_disk::NodeDisk;

/// What a scenario declares about its node (`Deployment::node`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeOptions {
    pub disk: NodeDisk,
    /// Images made before the cleaner starts; `true` = kept in use by a running container
    /// (the spec must be runnable: [`ImageSpec::with_busybox`]).
    pub images: Vec<(ImageSpec, bool)>,
    /// The image cleaner, if the scenario runs one.
    pub cleaner: Option<CleanerOptions>,
    #[serde(with = "humantime_serde")]
    pub dockerd_ready_within: Duration,
}

impl NodeOptions {
    /// A node disk of `mb` MB and nothing else yet.
    pub fn disk_mb(mb: u64) -> Self {
        Self { disk: NodeDisk::of_mb(mb), images: Vec::new(), cleaner: None, dockerd_ready_within: Duration::from_secs(30) }
    }

    pub fn inodes(mut self, n: u64) -> Self {
        self.disk = self.disk.with_inodes(n);
        self
    }

    pub fn image(mut self, spec: ImageSpec) -> Self {
        self.images.push((spec, false));
        self
    }

    /// An image kept in use by a running container for the whole run.
    pub fn image_in_use(mut self, spec: ImageSpec) -> Self {
        self.images.push((spec.with_busybox(), true));
        self
    }

    pub fn cleaner(mut self, options: CleanerOptions) -> Self {
        self.cleaner = Some(options);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_like_the_scenario() {
        let o = NodeOptions::disk_mb(300)
            .inodes(20_000)
            .image(ImageSpec::sized("old", 50 << 20, 2))
            .image_in_use(ImageSpec::sized("running", 5 << 20, 1))
            .cleaner(CleanerOptions::quick().threshold(80.0));
        assert_eq!(o.disk, NodeDisk::of_mb(300).with_inodes(20_000));
        assert_eq!(o.images.len(), 2);
        assert!(o.images[1].1 && o.images[1].0.busybox, "an image kept in use must be runnable");
        assert_eq!(o.cleaner.unwrap().threshold_high, 80.0);
    }
}
