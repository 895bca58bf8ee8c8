//! The node's disk and the real docker-image-cleaner (2018: the new cleaner never started and
//! was switched off with a threshold of 0; 2019: a node pool without local SSD filled up).

use hubchaos::prelude::*;

/// The cleaner's threshold in these scenarios (used % of the fuller of blocks and inodes).
const THRESHOLD: f64 = 80.0;
/// How long the cleaner may take to bring the disk back under: two intervals and a prune.
const REACTION: Duration = Duration::from_secs(20);

fn node(options: NodeOptions) -> Scenario {
    let mut s = Scenario::new("cleaner", "", "");
    s.needs = Needs { root: true, docker: true, ..Needs::default() };
    s.deploy = Deployment::node(options);
    s.duration = Duration::from_secs(30);
    s
}

/// The checks every cleaner scenario carries: it starts, cycles, never restarts; dockerd
/// never restarts.
fn cleaner_health() -> Vec<Box<dyn Check>> {
    vec![Box::new(ComponentUp::image_cleaner(Duration::from_secs(15))), Box::new(Restarts::between("dockerd", 0, 0))]
}

pub fn starts_and_stays_up() -> Scenario {
    let mut s = node(NodeOptions::disk_mb(300).cleaner(CleanerOptions::quick().threshold(THRESHOLD)));
    s.name = "starts_and_stays_up";
    s.incident = "2018-04-18: the new image cleaner never started. The real cleaner against a \
                  harness-owned dockerd must start, log cleaning cycles and stay up.";
    s.checks = cleaner_health();
    s
}

fn frees_space(name: &'static str, options: NodeOptions, fill: FillDisk, incident: &'static str) -> Scenario {
    let mut s = node(options.image_in_use(ImageSpec::sized("in-use", 5 << 20, 1)).cleaner(CleanerOptions::quick().threshold(THRESHOLD)));
    s.name = name;
    s.incident = incident;
    s.faults = vec![Scheduled::new(fill, Schedule::at(Duration::from_secs(5)))];
    s.duration = Duration::from_secs(40);
    s.checks = cleaner_health();
    s.checks.push(Box::new(DiskBelow::new(THRESHOLD, REACTION)));
    s.checks.push(Box::new(ImagesSpared));
    s.key_figure("disk-below:used_pct", "reaction_s", "s")
}

pub fn frees_space_over_threshold_blocks() -> Scenario {
    frees_space(
        "frees_space_over_threshold_blocks",
        NodeOptions::disk_mb(300),
        FillDisk::blocks(90.0),
        "Images fill 90% of a 300 MB node disk's blocks; the cleaner (threshold 80%) must bring it \
         back under within two of its intervals, without touching the image in use.",
    )
}

pub fn frees_space_over_threshold_inodes() -> Scenario {
    frees_space(
        "frees_space_over_threshold_inodes",
        NodeOptions::disk_mb(300).inodes(20_000),
        FillDisk::inodes(90.0),
        "Images of many small files use 90% of the node disk's inodes (blocks stay low); relative \
         mode takes the fuller of the two, so the cleaner must act on inodes alone.",
    )
}

pub fn spares_images_in_use() -> Scenario {
    let options = NodeOptions::disk_mb(300).image_in_use(ImageSpec::sized("busy-a", 20 << 20, 2)).image_in_use(ImageSpec::sized(
        "busy-b",
        20 << 20,
        1,
    ));
    let mut s = frees_space(
        "spares_images_in_use",
        options,
        FillDisk::blocks(95.0),
        "The disk fills to 95% while three images back running containers: the cleaner prunes all \
         unused images and must leave every image in use, tags and all.",
    );
    s.key_figure = None;
    s
}

pub fn disabled_at_zero() -> Scenario {
    let mut s = node(
        NodeOptions::disk_mb(300)
            .image(ImageSpec::sized("unused-a", 5 << 20, 1))
            .image(ImageSpec::sized("unused-b", 5 << 20, 1))
            .cleaner(CleanerOptions::quick().threshold(0.0)),
    );
    s.name = "disabled_at_zero";
    s.incident = "2018-04-19: mybinder.org switched the image cleaner off by setting its threshold \
                  to 0. With that setting the cleaner must delete nothing.";
    s.checks = cleaner_health();
    s.checks.push(Box::new(NoDeletion::default()));
    s.expect = Expectation::fail_on(
        &["no-deletion:image-cleaner"],
        "upstream docker-image-cleaner 1.0.0b3 tests `used < threshold_high`: 0 means always over, so it \
         prunes every unused image each interval instead of being disabled (draft issue in the README)",
    );
    s
}

/// The 2018 misconfiguration: `DOCKER_HOST` without `unix://`.
pub fn cleaner_misconfigured_is_caught() -> Scenario {
    let mut s = starts_and_stays_up();
    s.area = "controls";
    s.name = "cleaner_misconfigured_is_caught";
    s.incident = "Negative control for component-up: the cleaner gets DOCKER_HOST without unix:// \
                  (2018-04-18) and must be reported down, with its own error.";
    s.faults = vec![Scheduled::new(Misconfigure::docker_host_without_scheme("image-cleaner"), Schedule::throughout())];
    s.expect = Expectation::fail_on(&["component-up:image-cleaner"], "DOCKER_HOST without unix://");
    s
}

/// 2019-03-24: a node pool without local SSD; builds failed with "no space left on device".
pub fn disk_full_is_reported() -> Scenario {
    let mut s = node(NodeOptions::disk_mb(300));
    s.area = "node";
    s.name = "disk_full_is_reported";
    s.incident = "2019-03-24: builds on a node pool without local SSD failed with \"no space left on \
                  device\". With a full data root, image imports must fail and the report must say \
                  so in those words.";
    s.faults = vec![Scheduled::new(FillDisk::blocks(100.0).with_files(), Schedule::throughout())];
    s.workloads = vec![Box::new(ImportImages::new(Duration::from_secs(2), 20 << 20))];
    s.duration = Duration::from_secs(12);
    s.checks = vec![Box::new(FailureReason::no_space())];
    s
}
