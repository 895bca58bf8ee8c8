//! The real docker-image-cleaner on a node (2018: the new cleaner never started and was
//! switched off with a threshold of 0; 2019: a node pool without local SSD filled up).

use hubchaos::prelude::*;

use crate::node::on_a_node;

/// The cleaner's threshold in these scenarios (used % of the fuller of blocks and inodes).
pub const THRESHOLD: f64 = 80.0;
/// How long the cleaner may take to bring the disk back under: two intervals and a prune.
pub const REACTION: Duration = Duration::from_secs(20);

/// The checks every cleaner scenario carries: it starts, cycles, never restarts; dockerd
/// never restarts.
fn cleaner_health() -> Vec<Box<dyn Check>> {
    vec![Box::new(ComponentUp::image_cleaner(Duration::from_secs(15))), Box::new(Restarts::between("dockerd", 0, 0))]
}

/// The cleaner (every 5 s, threshold [`THRESHOLD`]) on an empty 300 MB node, judged on its
/// health alone.
pub fn cleaner_on_a_node(area: &'static str, name: &'static str, incident: &'static str) -> Scenario {
    let mut s = on_a_node(area, name, incident, NodeOptions::disk_mb(300).cleaner(CleanerOptions::quick().threshold(THRESHOLD)));
    s.checks = cleaner_health();
    s
}

pub fn starts_and_stays_up() -> Scenario {
    cleaner_on_a_node(
        "cleaner",
        "starts_and_stays_up",
        "2018-04-18: the new image cleaner never started. The real cleaner against a \
         harness-owned dockerd must start, log cleaning cycles and stay up.",
    )
}

/// `fill` at 5 s into a node of `options` (plus one image in use) whose cleaner runs every 5 s
/// with threshold [`THRESHOLD`]: the disk must be back under the threshold within
/// [`REACTION`] of crossing it, and every image in use must survive with its tags.
pub fn frees_space(area: &'static str, name: &'static str, incident: &'static str, options: NodeOptions, fill: FillDisk) -> Scenario {
    let options = options.image_in_use(ImageSpec::sized("in-use", 5 << 20, 1)).cleaner(CleanerOptions::quick().threshold(THRESHOLD));
    let mut s = on_a_node(area, name, incident, options);
    s.faults = vec![Scheduled::new(fill, Schedule::at(Duration::from_secs(5)))];
    s.duration = Duration::from_secs(30);
    s.checks = cleaner_health();
    s.checks.push(Box::new(DiskBelow::new(THRESHOLD, REACTION)));
    s.checks.push(Box::new(ImagesSpared));
    s
}

pub fn frees_space_over_threshold_blocks() -> Scenario {
    frees_space(
        "cleaner",
        "frees_space_over_threshold_blocks",
        "Images fill 90% of a 300 MB node disk's blocks; the cleaner (threshold 80%) must bring it \
         back under within two of its intervals, without touching the image in use.",
        NodeOptions::disk_mb(300),
        FillDisk::blocks(90.0),
    )
    .key_figure("disk-below:used_pct", "reaction_s", "s")
}

pub fn frees_space_over_threshold_inodes() -> Scenario {
    frees_space(
        "cleaner",
        "frees_space_over_threshold_inodes",
        "Images of many small files use 90% of the node disk's inodes (blocks stay low); relative \
         mode takes the fuller of the two, so the cleaner must act on inodes alone.",
        NodeOptions::disk_mb(300).inodes(20_000),
        FillDisk::inodes(90.0),
    )
    .key_figure("disk-below:used_pct", "reaction_s", "s")
}

/// A 300 MB node with two more images backing running containers (20 MB each, of two and one
/// layers), on top of the one every [`frees_space`] node has.
pub fn busy_node() -> NodeOptions {
    NodeOptions::disk_mb(300).image_in_use(ImageSpec::sized("busy-a", 20 << 20, 2)).image_in_use(ImageSpec::sized("busy-b", 20 << 20, 1))
}

pub fn spares_images_in_use() -> Scenario {
    frees_space(
        "cleaner",
        "spares_images_in_use",
        "The disk fills to 95% while three images back running containers: the cleaner prunes all \
         unused images and must leave every image in use, tags and all.",
        busy_node(),
        FillDisk::blocks(95.0),
    )
}

pub fn disabled_at_zero() -> Scenario {
    let mut s = on_a_node(
        "cleaner",
        "disabled_at_zero",
        "2018-04-19: mybinder.org switched the image cleaner off by setting its threshold \
         to 0. With that setting the cleaner must delete nothing.",
        NodeOptions::disk_mb(300)
            .image(ImageSpec::sized("unused-a", 5 << 20, 1))
            .image(ImageSpec::sized("unused-b", 5 << 20, 1))
            .cleaner(CleanerOptions::quick().threshold(0.0)),
    );
    s.checks = cleaner_health();
    s.checks.push(Box::new(NoDeletion::default()));
    s.expect = Expectation::fail_on(
        &["no-deletion:image-cleaner"],
        "upstream docker-image-cleaner 1.0.0b3 tests `used < threshold_high`: 0 means always over, so it \
         prunes every unused image each interval instead of being disabled (draft issue in the README)",
    );
    s
}
