//! The node stack for real, end to end: node disk -> dockerd -> recorder on the docker socket
//! -> image factory -> fill-disk -> the real docker-image-cleaner -> checks -> teardown, and
//! nothing left behind. Prints each measurement on a `MEASURE` line: disk and dockerd start,
//! image builds, fills, the cleaner's reaction, ENOSPC messages, dockerd's restart, teardown.
//!
//! Ignored by default: needs root, Debian's docker.io (`make deps`) and the pinned environment
//! with its docker-image-cleaner (`make env`). Run without them it fails, naming what is
//! missing. Run: `cargo test -p hubchaos --lib node_live -- --ignored --nocapture`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::docker_api::DockerApi;
use super::dockerd::{find_dockerd, DockerdConfig, DOCKERD};
use super::image_cleaner::{docker_host_for, CleanerOptions, CYCLE_LINE, DELETED_LINE, ERROR_LINE, IMAGE_CLEANER};
use super::images::{no_space_message, ImageFactory, ImageSpec};
use super::node_disk::{mounts_under, requires_root, NodeDisk, NodeLayout};
use crate::backend::local::overrides::apply_env_overrides;
use crate::backend::local::sweep::{processes_of_run, RunMarker};
use crate::backend::local::LocalBackend;
use crate::backend::{Backend, RunContext};
use crate::check::{Check, ComponentUp, DiskBelow, ImagesSpared, Verdict};
use crate::env::Env;
use crate::fault::{DeployPlan, Fault, FillDisk, Misconfigure, WipeCache};
use crate::observe::disk::{DiskSampler, DiskUsage};
use crate::observe::docker::DockerSampler;
use crate::observe::history::{Recorder, SETUP_DONE, WORKLOAD_START, WORKLOAD_STOP};
use crate::observe::logs::LogWatcher;
use crate::observe::recording_proxy::{RecordingProxy, Upstream};
use crate::observe::samples::SampleSink;
use crate::runner::Session;

/// The pinned environment, installed (`make env`), or the test fails saying so.
fn installed_toolchain() -> crate::toolchain::Toolchain {
    let pins = crate::toolchain::Pins::load_default().expect("fixtures/pins.yaml");
    match crate::toolchain::Toolchain::state(&pins) {
        crate::toolchain::EnvState::Ready(t) => *t,
        _ => panic!("the pinned environment is not installed: run `make env` first"),
    }
}

async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, dockerd (make deps) and docker-image-cleaner"]
async fn node_live() {
    requires_root().expect("this test needs root");
    find_dockerd().expect("this test needs Debian's docker.io: `make deps` as root");
    let toolchain = installed_toolchain();
    let cleaner = toolchain.venv_bin("docker-image-cleaner");
    assert!(cleaner.exists(), "{} is missing: run `make env`", cleaner.display());
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(run_dir.join("logs")).unwrap();
    let run_id = format!("hc4-live-{}", std::process::id());
    // HUBCHAOS_TEST_MARKERS: where the run's marker goes (to test `hubchaos sweep` after a kill -9).
    let markers = std::env::var_os("HUBCHAOS_TEST_MARKERS").map(PathBuf::from).unwrap_or_else(|| tmp.path().join("active"));
    let rec = Recorder::in_memory(Instant::now());
    let samples = SampleSink::default();
    let ctx = RunContext { run_id: run_id.clone(), run_dir: run_dir.clone(), recorder: rec.clone(), profile: None, progress: false };
    let backend = Arc::new(LocalBackend::new(ctx, toolchain, RunMarker::create_in(&markers, &run_id, &run_dir).unwrap()));
    let marker = backend.marker().clone();
    let supervisor = backend.supervisor().clone();
    let env = Env::new(run_id.clone(), run_dir.clone(), 7, backend.clone(), rec.clone(), samples.clone(), CancellationToken::new());
    let layout = NodeLayout::new(&run_dir, &run_id);
    // If an assertion fails midway: end the run's processes, unmount, remove (as the sweep would).
    struct Leftovers(String, PathBuf, PathBuf);
    impl Drop for Leftovers {
        fn drop(&mut self) {
            let mut report = crate::backend::local::sweep::SweepReport::default();
            crate::backend::local::sweep::end_run_processes(&self.0, &mut report);
            let _ = super::node_disk::unmount_all_under(&self.1);
            let _ = super::node_disk::unmount_all_under(&self.2);
            let _ = std::fs::remove_dir_all(&self.2);
        }
    }
    let _leftovers = Leftovers(run_id.clone(), run_dir.clone(), layout.sock_dir.clone());

    // 1. node disk.
    let t = Instant::now();
    let mut disk = NodeDisk::of_mb(300).prepare(&layout, &marker).unwrap();
    eprintln!("MEASURE node disk 300 MB: mkfs + mount {:.2} s; {:?}", t.elapsed().as_secs_f64(), DiskUsage::of(&layout.data_root).unwrap());

    // 2. dockerd.
    let dockerd = DockerdConfig::new(layout.clone()).unwrap();
    dockerd.prepare(&marker).unwrap();
    let t = Instant::now();
    supervisor.deploy(dockerd.spec(&run_dir)).await.unwrap();
    let ready = dockerd.await_ready(Duration::from_secs(30)).await.unwrap();
    eprintln!("MEASURE dockerd ready {:.2} s after deploy ({:.2} s probing)", t.elapsed().as_secs_f64(), ready.as_secs_f64());
    let api = dockerd.api();
    let v = api.version().await.unwrap();
    eprintln!("dockerd {} API {}", v["Version"], v["ApiVersion"]);

    // 3. recorder on the docker socket.
    let proxy = RecordingProxy::start(DOCKERD, Upstream::Unix(layout.docker_socket.clone()), rec.clone()).unwrap();
    proxy.listen_unix(IMAGE_CLEANER, &layout.cleaner_socket).unwrap();

    // 4. images: a runnable one kept in use, a multi-layer one by load.
    let factory = ImageFactory::new(DockerApi::new(&layout.docker_socket), &run_id, 7);
    let keep = factory.build(&ImageSpec::sized("keep", 5 << 20, 1).with_busybox()).await.unwrap();
    let container = factory.keep_in_use(&keep.reference, "keep").await.unwrap();
    let multi = factory.build(&ImageSpec::sized("multi", 30 << 20, 3)).await.unwrap();
    let inspect: serde_json::Value =
        serde_json::from_slice(&api.request(hyper::Method::GET, &format!("/images/{}/json", multi.id), None, None).await.unwrap()).unwrap();
    let layers = inspect["RootFS"]["Layers"].as_array().map(|a| a.len()).unwrap_or(0);
    eprintln!(
        "MEASURE import 5 MB runnable: {:.2} s; load 30 MB / 3 layers: {:.2} s -> {layers} layers",
        keep.took.as_secs_f64(),
        multi.took.as_secs_f64()
    );
    assert_eq!(layers, 3);
    let many = factory.build(&ImageSpec::many_files("inodes", 3000, 2)).await.unwrap();
    eprintln!(
        "MEASURE load 3000 empty files / 2 layers: {:.2} s; {:?}",
        many.took.as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap()
    );

    // 5. samplers, watcher, window.
    let stop = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(DiskSampler { path: layout.data_root.clone(), every: Duration::from_secs(1) }.run(
            rec.clone(),
            samples.clone(),
            stop.clone(),
        )),
        tokio::spawn(DockerSampler { api: api.clone(), every: Duration::from_secs(2) }.run(rec.clone(), samples.clone(), stop.clone())),
        tokio::spawn(
            LogWatcher::new(IMAGE_CLEANER, run_dir.join("logs/image-cleaner.log"), &[CYCLE_LINE, DELETED_LINE, ERROR_LINE])
                .unwrap()
                .run(rec.clone(), stop.clone()),
        ),
        tokio::spawn(
            LogWatcher::new("image-cleaner-bad", run_dir.join("logs/image-cleaner-bad.log"), &[CYCLE_LINE, ERROR_LINE])
                .unwrap()
                .run(rec.clone(), stop.clone()),
        ),
    ];
    tokio::time::sleep(Duration::from_millis(2500)).await;
    rec.phase(WORKLOAD_START, "");

    // 6. the real cleaner, threshold 80, every 5 s; then fill to 75 % with images (under it),
    //    time it, and push over 80 % with one more step: the cleaner's reaction.
    let options = CleanerOptions::quick().threshold(80.0);
    let spec = options.spec(&cleaner, &layout.data_root, &docker_host_for(&layout.cleaner_socket), &run_dir);
    supervisor.deploy(spec).await.unwrap();
    let t = Instant::now();
    let guard = FillDisk::blocks(75.0).inject(&env).await.unwrap();
    eprintln!(
        "MEASURE fill-disk blocks 75% with images (cleaner running, under its threshold): {:.2} s -> {:.1}% used",
        t.elapsed().as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap().used_pct()
    );
    rec.phase(SETUP_DONE, "");
    let over = FillDisk::blocks(85.0).inject(&env).await.unwrap();
    let crossed = Instant::now();
    eprintln!("over the threshold: {:.1}%", DiskUsage::of(&layout.data_root).unwrap().used_pct());
    let reaction =
        wait_for("usage back under 80%", Duration::from_secs(40), || DiskUsage::of(&layout.data_root).unwrap().used_pct() < 80.0).await;
    eprintln!(
        "MEASURE cleaner (interval 5 s) brought usage under 80% {:.2} s after the crossing; now {:.1}%",
        reaction.as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap().used_pct()
    );
    let _ = crossed;
    tokio::time::sleep(Duration::from_secs(3)).await;
    over.heal().await.unwrap();
    guard.heal().await.unwrap();
    // Inodes with images of empty files, under the threshold (no prune).
    let t = Instant::now();
    let g = FillDisk::inodes(60.0).inject(&env).await.unwrap();
    eprintln!(
        "MEASURE fill-disk inodes 60% with images: {:.2} s -> {:?}",
        t.elapsed().as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap()
    );
    g.heal().await.unwrap();
    let present = api.images(None, false).await.unwrap();
    assert!(present.iter().any(|i| i.id == keep.id), "the image in use was deleted");
    eprintln!("images left after the cleaner: {:?}", present.iter().map(|i| i.tags()).collect::<Vec<_>>());

    // 8. misconfigured cleaner: DOCKER_HOST without unix://.
    let mut plan = DeployPlan::default();
    Misconfigure::docker_host_without_scheme("image-cleaner-bad").before_deploy(&mut plan).unwrap();
    let mut bad = options.spec(&cleaner, &layout.data_root, &docker_host_for(&layout.cleaner_socket), &run_dir);
    bad.name = "image-cleaner-bad".into();
    apply_env_overrides(&mut bad, &plan.env_overrides);
    supervisor.deploy(bad).await.ok();
    tokio::time::sleep(Duration::from_secs(4)).await;
    backend.stop("image-cleaner-bad").await.unwrap();

    // 9. ENOSPC. Time to fill the whole disk with images (no cleaner running), then with
    //    files, then import and load on the full disk.
    backend.stop(IMAGE_CLEANER).await.unwrap();
    let t = Instant::now();
    let g = FillDisk::blocks(100.0).inject(&env).await.unwrap();
    eprintln!(
        "MEASURE fill-disk blocks 100% with images: {:.2} s -> {:.1}%",
        t.elapsed().as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap().used_pct()
    );
    eprintln!("  {}", rec.history().faults().last().map(|(_, f)| f.detail.clone()).unwrap_or_default());
    g.heal().await.unwrap();
    let full = FillDisk::blocks(100.0).with_files();
    let t = Instant::now();
    let g = full.inject(&env).await.unwrap();
    eprintln!(
        "MEASURE fill-disk blocks 100% with files: {:.2} s -> {:.1}%",
        t.elapsed().as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap().used_pct()
    );
    let e = factory.build(&ImageSpec::sized("nospace", 20 << 20, 1)).await.unwrap_err();
    eprintln!("MEASURE import on a full disk: {e:#}");
    assert!(no_space_message(&e).is_some());
    let e = factory.build(&ImageSpec::sized("nospace2", 20 << 20, 2)).await.unwrap_err();
    eprintln!("MEASURE load on a full disk: {e:#}");
    g.heal().await.unwrap();
    let inodes = FillDisk::inodes(100.0).with_files();
    let t = Instant::now();
    let g = inodes.inject(&env).await.unwrap();
    eprintln!(
        "MEASURE fill-disk inodes 100% with files: {:.2} s; {:?}",
        t.elapsed().as_secs_f64(),
        DiskUsage::of(&layout.data_root).unwrap()
    );
    let e = factory.build(&ImageSpec::many_files("noinode", 200, 1)).await.unwrap_err();
    eprintln!("MEASURE import with no inodes left: {e:#}");
    g.heal().await.unwrap();
    rec.phase(WORKLOAD_STOP, "");
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }

    // 10. checks on what was recorded.
    let history = rec.history().with_samples(samples.all());
    let cleaner_requests: Vec<String> = history
        .requests()
        .filter(|(_, r)| r.client == IMAGE_CLEANER)
        .map(|(_, r)| format!("{} {} {}", r.method, r.route, r.status))
        .collect();
    eprintln!("cleaner requests: {cleaner_requests:?}");
    for c in [
        Box::new(ComponentUp::image_cleaner(Duration::from_secs(20))) as Box<dyn Check>,
        Box::new(ComponentUp { component: "image-cleaner-bad".into(), ..ComponentUp::image_cleaner(Duration::from_secs(20)) }),
        Box::new(DiskBelow::new(80.0, Duration::from_secs(15))),
        Box::new(ImagesSpared),
    ] {
        let r = c.check(&history);
        eprintln!("CHECK {} {}: {} {:?}", r.check, r.verdict, r.summary, r.figures);
    }
    assert_eq!(ComponentUp::image_cleaner(Duration::from_secs(20)).check(&history).verdict, Verdict::Pass);
    let bad = ComponentUp { component: "image-cleaner-bad".into(), ..ComponentUp::image_cleaner(Duration::from_secs(20)) }.check(&history);
    assert_eq!(bad.verdict, Verdict::Fail);
    assert!(bad.summary.contains("Invalid bind address format"), "{}", bad.summary);

    // 11. wipe-cache, then teardown in the runner's order, and nothing left.
    let w = WipeCache::all().inject(&env).await.unwrap();
    w.heal().await.unwrap();
    eprintln!("wipe-cache: {:?}", rec.history().faults().last().map(|(_, f)| f.detail.clone()));
    // 12. kill-process on dockerd: the supervisor restarts it; running containers do not survive.
    let killed = Instant::now();
    crate::fault::KillProcess::of(DOCKERD).inject(&env).await.unwrap().heal().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let back = dockerd.await_ready(Duration::from_secs(30)).await.unwrap();
    let running = api.containers(None, false).await.unwrap().len();
    eprintln!("MEASURE dockerd after SIGKILL: answering again {:.2} s after the kill ({:.2} s probing); running containers now {running}; restarts {:?}", killed.elapsed().as_secs_f64(), back.as_secs_f64(), backend.status(DOCKERD).map(|s| s.restarts));
    let _ = container;
    let t = Instant::now();
    factory.remove_containers().await.unwrap();
    env.add_request_source(Arc::new(proxy));
    // The session's teardown, as a run's: request sources, components, cleanup stack, then
    // release, which reports any process of the run that outlived its component as an error.
    let session = Session { env, backend: backend.clone() };
    let errors = session.close().await;
    assert!(errors.is_empty(), "{errors:?}");
    let dockerd_down = t.elapsed();
    // The disk and dockerd's leftovers were made by hand above (not through the backend's
    // deploy), so they are undone by hand.
    let cleanup = dockerd.cleanup();
    assert!(cleanup.is_empty(), "{cleanup:?}");
    disk.unmount().unwrap();
    eprintln!("MEASURE teardown (containers, cleaner, dockerd): {:.2} s", dockerd_down.as_secs_f64());
    assert!(mounts_under(&run_dir).is_empty() && mounts_under(&layout.sock_dir).is_empty(), "mounts left");
    assert!(processes_of_run(&run_id).is_empty(), "processes left: {:?}", processes_of_run(&run_id));
    assert!(!layout.image_file.exists() && !layout.sock_dir.exists());
    if let Some(to) = std::env::var_os("HUBCHAOS_TEST_KEEP_LOGS") {
        let _ = std::process::Command::new("cp").arg("-r").arg(run_dir.join("logs")).arg(to).status();
    }
}
