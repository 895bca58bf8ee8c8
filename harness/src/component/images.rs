//! The image factory: images of chosen sizes, layer counts and file counts, made on the
//! harness's dockerd without any registry, labelled `hubchaos.run=<run id>` so the harness can
//! find and remove them; and the containers that keep an image in use.
//!
//! How (measured offline on dockerd 20.10):
//! - one layer: `POST /images/create?fromSrc=-` (`docker import`) of a generated tar. The
//!   daemon streams the tar straight into the new layer: an image of N bytes needs N bytes.
//! - several layers: `POST /images/load` (`docker load`) of a generated image archive
//!   (`manifest.json`, a config whose `rootfs.diff_ids` are the sha256 of each layer tar, and
//!   the layer tars). No builder, no container, no build cache: the layers are exactly the ones
//!   asked for. Cost: the daemon unpacks the whole archive under `<data root>/tmp` before it
//!   registers the layers, so a load needs about twice the image's size free for a moment.
//! - not chosen: `docker build` with BuildKit needs the `buildx` CLI plugin (absent: "BuildKit
//!   is enabled but the buildx component is missing") and keeps a build cache the image cleaner
//!   never prunes; the classic builder works offline (`FROM <imported base>` + one `COPY` per
//!   layer) but sends the context through a temporary copy too, creates a container per step
//!   and leaves untagged parent images.
//!
//! Content is random (incompressible, and distinct per image and layer: identical layers would
//! be stored once, and the disk would not fill), seeded from the run's seed and the image's
//! name so a run is reproducible: one random 64 KiB block per file, every 4 KiB of it stamped
//! with a running counter, so generation costs about a memcpy. Every layer carries a small `id` file naming the image, so
//! even layers of empty files differ. Files go 1000 per directory.
//!
//! Containers: `POST /containers/create` + `start`, with `NetworkMode: host`, `Init: true` (so
//! SIGTERM stops them at once), the run label and `HUBCHAOS_RUN_ID` in their environment (so
//! the sweep finds their processes). The API never pulls: a missing image is an error. Why not
//! testcontainers: see [`super::docker_api`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::docker_api::{channel_body, is_no_space, DockerApi};

/// Every image and container the harness makes carries `hubchaos.run=<run id>`.
pub const RUN_LABEL: &str = "hubchaos.run";
/// What a container is for, e.g. `keep-in-use`.
pub const ROLE_LABEL: &str = "hubchaos.role";
/// Repositories of the factory's images start with this.
pub const REPO_PREFIX: &str = "hubchaos/";

/// One layer: `bytes` of random content spread over `files` files (0 bytes = empty files:
/// inodes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LayerSpec {
    pub bytes: u64,
    pub files: u32,
}

/// An image to make.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageSpec {
    /// Repository without tag, e.g. `hubchaos/filler-3` (the tag is the run's).
    pub name: String,
    pub layers: Vec<LayerSpec>,
    /// Put a static busybox (`/bin/sh`, `/bin/sleep`) in the first layer, so a container can
    /// run from the image (to keep it in use).
    pub busybox: bool,
    pub labels: BTreeMap<String, String>,
}

impl ImageSpec {
    /// `total_bytes` over `layers` layers (at least one), one file per started 8 MiB.
    pub fn sized(name: &str, total_bytes: u64, layers: u32) -> Self {
        let layers = layers.max(1) as u64;
        let per = total_bytes / layers;
        let layers = (0..layers)
            .map(|i| {
                let bytes = if i == layers - 1 { total_bytes - per * (layers - 1) } else { per };
                LayerSpec { bytes, files: bytes.div_ceil(8 << 20).max(1) as u32 }
            })
            .collect();
        Self { name: repo_name(name), layers, busybox: false, labels: BTreeMap::new() }
    }

    /// `files` empty files over `layers` layers: an image that costs inodes, not blocks (as
    /// conda environments and node_modules trees do).
    pub fn many_files(name: &str, files: u64, layers: u32) -> Self {
        let layers = layers.max(1) as u64;
        let per = files / layers;
        let layers = (0..layers)
            .map(|i| LayerSpec { bytes: 0, files: if i == layers - 1 { files - per * (layers - 1) } else { per } as u32 })
            .collect();
        Self { name: repo_name(name), layers, busybox: false, labels: BTreeMap::new() }
    }

    pub fn with_busybox(mut self) -> Self {
        self.busybox = true;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn total_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }

    pub fn total_files(&self) -> u64 {
        self.layers.iter().map(|l| l.files as u64).sum()
    }
}

fn repo_name(name: &str) -> String {
    let clean: String =
        name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || "._-/".contains(c) { c } else { '-' }).collect();
    if clean.starts_with(REPO_PREFIX) {
        clean
    } else {
        format!("{REPO_PREFIX}{clean}")
    }
}

/// A docker tag from a run id: `[A-Za-z0-9_.-]`, at most 128 characters.
pub fn tag_for_run(run_id: &str) -> String {
    let t: String = run_id.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    let t = t.trim_start_matches(['.', '-']).to_string();
    let t = if t.is_empty() { "run".to_string() } else { t };
    t.chars().rev().take(128).collect::<Vec<_>>().into_iter().rev().collect()
}

/// What was made.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    pub reference: String,
    pub id: String,
    pub layers: usize,
    pub bytes: u64,
    pub files: u64,
    pub took: Duration,
}

/// The daemon's words when an error (anywhere in the chain) is ENOSPC.
pub fn no_space_message(err: &anyhow::Error) -> Option<String> {
    err.chain().map(|e| e.to_string()).find(|m| is_no_space(m))
}

/// Makes images and containers on one daemon for one run.
#[derive(Debug, Clone)]
pub struct ImageFactory {
    api: DockerApi,
    run_id: String,
    tag: String,
    seed: u64,
    busybox: Option<PathBuf>,
}

impl ImageFactory {
    pub fn new(api: DockerApi, run_id: &str, seed: u64) -> Self {
        Self { api, run_id: run_id.into(), tag: tag_for_run(run_id), seed, busybox: find_static_busybox() }
    }

    pub fn api(&self) -> &DockerApi {
        &self.api
    }

    /// `hubchaos.run=<run id>`: the filter that finds everything of this run.
    pub fn run_filter(&self) -> String {
        format!("{RUN_LABEL}={}", self.run_id)
    }

    pub fn reference(&self, spec: &ImageSpec) -> String {
        format!("{}:{}", spec.name, self.tag)
    }

    /// Make the image: one layer by import, several by load. Errors keep the daemon's message
    /// (see [`no_space_message`]).
    pub async fn build(&self, spec: &ImageSpec) -> anyhow::Result<BuiltImage> {
        anyhow::ensure!(!spec.layers.is_empty(), "an image needs at least one layer");
        let busybox = match (spec.busybox, &self.busybox) {
            (false, _) => None,
            (true, Some(p)) => Some(Arc::new(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)),
            (true, None) => anyhow::bail!("no static busybox for a runnable image: apt-get install busybox-static"),
        };
        let reference = self.reference(spec);
        let mut labels = spec.labels.clone();
        labels.insert(RUN_LABEL.into(), self.run_id.clone());
        let seed = image_seed(self.seed, &reference);
        let started = Instant::now();
        let layers: Vec<Vec<TarEntry>> = spec
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| layer_entries(&reference, i, l, if i == 0 { busybox.clone() } else { None }))
            .collect();
        let id = if layers.len() == 1 {
            let changes = changes(&labels, spec.busybox);
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            let entries = layers.into_iter().next().unwrap();
            let writer = tokio::task::spawn_blocking(move || {
                let mut sink = ChunkSink::new(tx);
                let r = write_tar(&entries, seed, 0, &mut sink).and_then(|_| sink.finish());
                if let Err(e) = &r {
                    sink.fail(e);
                }
            });
            let (name, tag) = reference.rsplit_once(':').unwrap();
            let result = self.api.import(name, tag, &changes, channel_body(rx)).await;
            let _ = writer.await;
            result.with_context(|| format!("importing {reference} ({} bytes)", spec.total_bytes()))?
        } else {
            let config = ArchiveMeta { reference: reference.clone(), labels, runnable: spec.busybox };
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            let writer = tokio::task::spawn_blocking(move || {
                let mut sink = ChunkSink::new(tx);
                let r = write_archive(&layers, &config, seed, &mut sink).and_then(|_| sink.finish());
                if let Err(e) = &r {
                    sink.fail(e);
                }
            });
            let result = self.api.load(channel_body(rx)).await;
            let _ = writer.await;
            result.with_context(|| format!("loading {reference} ({} layers, {} bytes)", spec.layers.len(), spec.total_bytes()))?;
            self.image_id(&reference).await?
        };
        Ok(BuiltImage {
            reference,
            id,
            layers: spec.layers.len(),
            bytes: spec.total_bytes(),
            files: spec.total_files(),
            took: started.elapsed(),
        })
    }

    async fn image_id(&self, reference: &str) -> anyhow::Result<String> {
        let images = self.api.images(Some(&self.run_filter()), false).await?;
        images
            .into_iter()
            .find(|i| i.tags().iter().any(|t| t == reference))
            .map(|i| i.id)
            .with_context(|| format!("{reference} is not listed after loading it"))
    }

    /// Remove every image of this run (optionally only those also carrying `label`), forced.
    /// Images already gone (pruned meanwhile) or used by a running container (dockerd refuses
    /// even forced) are skipped. Returns how many were removed.
    pub async fn remove_images(&self, label: Option<&str>) -> anyhow::Result<usize> {
        let mut images = self.api.images(Some(&self.run_filter()), false).await?;
        if let Some(l) = label {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            images.retain(|i| i.labels.as_ref().and_then(|m| m.get(k)).is_some_and(|x| v.is_empty() || x == v));
        }
        let mut removed = 0;
        for image in images {
            match self.api.remove_image(&image.id, true).await {
                Ok(()) => removed += 1,
                // Gone already (pruned), or in use by a running container (cannot be forced).
                Err(e) if e.downcast_ref::<super::docker_api::DockerError>().is_some_and(|d| d.status == 404 || d.status == 409) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Run `sleep` in a container of `image` (host network, never pulled), keeping the image
    /// in use. The image must be runnable ([`ImageSpec::with_busybox`]). Returns the id.
    /// A node's starting images (`NodeOptions::images`), each made, and kept in use by a
    /// running container where asked.
    pub async fn make_starting_images(&self, images: &[(ImageSpec, bool)]) -> anyhow::Result<()> {
        for (spec, in_use) in images {
            let built = self.build(spec).await?;
            if *in_use {
                let name = spec.name.trim_start_matches(REPO_PREFIX).replace('/', "-");
                self.keep_in_use(&built.reference, &name).await?;
            }
        }
        Ok(())
    }

    pub async fn keep_in_use(&self, image: &str, name: &str) -> anyhow::Result<String> {
        let config = container_config(image, &self.run_id);
        let cname = format!("hubchaos-{}-{}", name, crate::paths::short_run_id(&self.run_id));
        let id = self
            .api
            .create_container(&cname, &config)
            .await
            .with_context(|| format!("creating a container of {image} (local images only)"))?;
        self.api.start_container(&id).await.with_context(|| format!("starting a container of {image}"))?;
        Ok(id)
    }

    /// Kill and remove every container of this run. Returns how many.
    pub async fn remove_containers(&self) -> anyhow::Result<usize> {
        let containers = self.api.containers(Some(&self.run_filter()), true).await?;
        for c in &containers {
            self.api.remove_container(&c.id).await?;
        }
        Ok(containers.len())
    }
}

/// The create config of a keep-in-use container.
pub fn container_config(image: &str, run_id: &str) -> serde_json::Value {
    json!({
        "Image": image,
        "Cmd": ["/bin/sleep", "86400"],
        "Env": [format!("HUBCHAOS_RUN_ID={run_id}")],
        "Labels": { RUN_LABEL: run_id, ROLE_LABEL: "keep-in-use" },
        "HostConfig": { "NetworkMode": "host", "Init": true, "AutoRemove": false },
    })
}

fn changes(labels: &BTreeMap<String, String>, runnable: bool) -> Vec<String> {
    let mut out: Vec<String> = labels.iter().map(|(k, v)| format!("LABEL {}={}", json!(k), json!(v))).collect();
    if runnable {
        out.push(r#"CMD ["/bin/sleep", "86400"]"#.into());
    }
    out
}

fn image_seed(seed: u64, reference: &str) -> u64 {
    let d = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(reference.as_bytes()).finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap())
}

/// A static busybox (no ELF interpreter): Debian's `busybox-static` installs `/bin/busybox`.
pub fn find_static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"].iter().map(PathBuf::from).find(|p| is_static_elf(p))
}

/// An ELF64 file without a `PT_INTERP` program header.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else { return false };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}

// --- tar generation ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum TarEntry {
    Dir(String),
    /// Random content of `size` bytes.
    Random {
        path: String,
        size: u64,
    },
    Bytes {
        path: String,
        data: Arc<Vec<u8>>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

const BLOCK: u64 = 512;
const MTIME: u64 = 1_700_000_000;

impl TarEntry {
    fn data_len(&self) -> u64 {
        match self {
            TarEntry::Random { size, .. } => *size,
            TarEntry::Bytes { data, .. } => data.len() as u64,
            _ => 0,
        }
    }
}

/// The entries of layer `index`: a unique `id` file, then `files` files in dirs of 1000.
fn layer_entries(reference: &str, index: usize, layer: &LayerSpec, busybox: Option<Arc<Vec<u8>>>) -> Vec<TarEntry> {
    let mut out = Vec::new();
    if let Some(bb) = busybox {
        out.push(TarEntry::Dir("bin/".into()));
        out.push(TarEntry::Bytes { path: "bin/busybox".into(), data: bb, mode: 0o755 });
        for applet in ["sh", "sleep"] {
            out.push(TarEntry::Symlink { path: format!("bin/{applet}"), target: "busybox".into() });
        }
    }
    let base = format!("hubchaos/l{index}");
    out.push(TarEntry::Dir("hubchaos/".into()));
    out.push(TarEntry::Dir(format!("{base}/")));
    out.push(TarEntry::Bytes {
        path: format!("{base}/id"),
        data: Arc::new(format!("{reference} layer {index}\n").into_bytes()),
        mode: 0o644,
    });
    let files = layer.files as u64;
    let per = layer.bytes.checked_div(files).unwrap_or(0);
    for j in 0..files {
        if j % 1000 == 0 {
            out.push(TarEntry::Dir(format!("{base}/d{}/", j / 1000)));
        }
        let size = if j == files - 1 { layer.bytes - per * (files - 1) } else { per };
        out.push(TarEntry::Random { path: format!("{base}/d{}/f{j}", j / 1000), size });
    }
    out
}

/// Bytes of a tar of `entries` (headers, padded data, two zero blocks).
fn tar_size(entries: &[TarEntry]) -> u64 {
    entries.iter().map(|e| BLOCK + e.data_len().div_ceil(BLOCK) * BLOCK).sum::<u64>() + 2 * BLOCK
}

/// A ustar header, one 512-byte block (so [`tar_size`] is exact; GNU long names would add
/// blocks). A path over 100 bytes is split at a `/` into the ustar prefix (155) and name (100)
/// fields; a path that cannot be split so, or a link target over 100 bytes, is an error, never
/// a truncated name.
fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType, link: &str) -> std::io::Result<[u8; 512]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    if !link.is_empty() {
        h.set_link_name(link)?;
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_username("root")?;
    h.set_groupname("root")?;
    h.set_cksum();
    Ok(*h.as_bytes())
}

fn pad(w: &mut impl Write, len: u64) -> std::io::Result<()> {
    let rem = (BLOCK - len % BLOCK) % BLOCK;
    w.write_all(&[0u8; 512][..rem as usize])
}

/// Write a tar of `entries`; random content from `seed` mixed with `stream` (one per layer).
fn write_tar(entries: &[TarEntry], seed: u64, stream: u64, w: &mut impl Write) -> std::io::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut buf = vec![0u8; 64 << 10];
    for e in entries {
        match e {
            TarEntry::Dir(p) => w.write_all(&header(p, 0, 0o755, tar::EntryType::Directory, "")?)?,
            TarEntry::Symlink { path, target } => w.write_all(&header(path, 0, 0o777, tar::EntryType::Symlink, target)?)?,
            TarEntry::Bytes { path, data, mode } => {
                w.write_all(&header(path, data.len() as u64, *mode, tar::EntryType::Regular, "")?)?;
                w.write_all(data)?;
                pad(w, data.len() as u64)?;
            }
            TarEntry::Random { path, size } => {
                w.write_all(&header(path, *size, 0o644, tar::EntryType::Regular, "")?)?;
                // One random block per file, then each 4 KiB stamped with a counter: every block
                // differs and nothing compresses, at memcpy speed (a CSPRNG for hundreds of MB
                // is seconds in a debug build).
                let first = (*size).min(buf.len() as u64) as usize;
                rng.fill_bytes(&mut buf[..first]);
                let mut left = *size;
                let mut counter = rng.next_u64();
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    for block in buf[..n].chunks_mut(4096) {
                        let k = block.len().min(8);
                        block[..k].copy_from_slice(&counter.to_le_bytes()[..k]);
                        counter = counter.wrapping_add(1);
                    }
                    w.write_all(&buf[..n])?;
                    left -= n as u64;
                }
                pad(w, *size)?;
            }
        }
    }
    w.write_all(&[0u8; 1024])
}

struct ArchiveMeta {
    reference: String,
    labels: BTreeMap<String, String>,
    runnable: bool,
}

/// A `docker save`-format archive: `l<i>/layer.tar` for each layer (hashed as written: the
/// diff ids), then `config.json` and `manifest.json` (the daemon unpacks everything before it
/// reads the manifest, so the order is free).
fn write_archive(layers: &[Vec<TarEntry>], meta: &ArchiveMeta, seed: u64, w: &mut impl Write) -> std::io::Result<()> {
    let mut diff_ids = Vec::new();
    let mut names = Vec::new();
    for (i, entries) in layers.iter().enumerate() {
        let dir = format!("l{i}/");
        w.write_all(&header(&dir, 0, 0o755, tar::EntryType::Directory, "")?)?;
        let name = format!("l{i}/layer.tar");
        let size = tar_size(entries);
        w.write_all(&header(&name, size, 0o644, tar::EntryType::Regular, "")?)?;
        let mut hashing = HashingWriter { inner: &mut *w, hasher: Sha256::new(), written: 0 };
        write_tar(entries, seed, i as u64, &mut hashing)?;
        debug_assert_eq!(hashing.written, size);
        diff_ids.push(format!("sha256:{}", hex::encode(hashing.hasher.finalize())));
        pad(w, size)?;
        names.push(name);
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": { "Labels": meta.labels, "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": (0..layers.len()).map(|i| json!({ "created": "2023-11-14T22:13:20Z", "created_by": format!("hubchaos image factory: layer {i}") })).collect::<Vec<_>>(),
    });
    if meta.runnable {
        config["config"]["Cmd"] = json!(["/bin/sleep", "86400"]);
    }
    let config = serde_json::to_vec(&config)?;
    let manifest = serde_json::to_vec(&json!([{ "Config": "config.json", "RepoTags": [meta.reference], "Layers": names }]))?;
    for (name, data) in [("config.json", config), ("manifest.json", manifest)] {
        w.write_all(&header(name, data.len() as u64, 0o644, tar::EntryType::Regular, "")?)?;
        w.write_all(&data)?;
        pad(w, data.len() as u64)?;
    }
    w.write_all(&[0u8; 1024])
}

struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Buffers writes into 256 KiB chunks sent to the request body (from a blocking thread).
struct ChunkSink {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl ChunkSink {
    fn new(tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Self {
        Self { tx, buf: Vec::with_capacity(CHUNK) }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the daemon stopped reading"))
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.send()
    }

    /// End the body with an error (the request then fails instead of sending a short tar).
    fn fail(&mut self, e: &std::io::Error) {
        let _ = self.tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_listing(bytes: &[u8], dir: &Path) -> String {
        let path = dir.join("t.tar");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("tar").arg("-tvf").arg(&path).output().unwrap();
        assert!(out.status.success(), "tar rejects it: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_layer_tar_is_valid_has_the_asked_size_and_its_size_is_known_upfront() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ImageSpec::sized("filler", 3 << 20, 1);
        let entries = layer_entries("hubchaos/filler:r", 0, &spec.layers[0], None);
        let mut out = Vec::new();
        write_tar(&entries, 7, 0, &mut out).unwrap();
        assert_eq!(out.len() as u64, tar_size(&entries));
        let listing = tar_listing(&out, dir.path());
        assert!(listing.contains("hubchaos/l0/d0/f0"), "{listing}");
        assert!(listing.contains(&(3u64 << 20).to_string()), "one file of 3 MiB: {listing}");
        // Same seed, same bytes; another image, other bytes (no layer sharing).
        let mut again = Vec::new();
        write_tar(&entries, 7, 0, &mut again).unwrap();
        assert_eq!(out, again);
        let other = layer_entries("hubchaos/other:r", 0, &spec.layers[0], None);
        let mut b = Vec::new();
        write_tar(&other, 7, 0, &mut b).unwrap();
        assert_ne!(Sha256::digest(&out), Sha256::digest(&b));
    }

    #[test]
    fn a_path_over_100_bytes_round_trips_and_an_unsplittable_one_is_an_error() {
        let dir = format!("hubchaos/{}", "d".repeat(90));
        let long = format!("{dir}/{}", "f".repeat(60));
        assert!(long.len() > 100);
        let entries = vec![
            TarEntry::Dir(format!("{dir}/")),
            TarEntry::Random { path: long.clone(), size: 1000 },
            TarEntry::Symlink { path: format!("{dir}/link"), target: "f".into() },
        ];
        let mut out = Vec::new();
        write_tar(&entries, 3, 0, &mut out).unwrap();
        assert_eq!(out.len() as u64, tar_size(&entries));
        let mut archive = tar::Archive::new(&out[..]);
        let read: Vec<(String, u64, tar::EntryType)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.header().size().unwrap(), e.header().entry_type())
            })
            .collect();
        assert_eq!(
            read,
            [
                (format!("{dir}/"), 0, tar::EntryType::Directory),
                (long, 1000, tar::EntryType::Regular),
                (format!("{dir}/link"), 0, tar::EntryType::Symlink),
            ]
        );
        // A last component over 100 bytes fits neither field: an error, not a short name.
        let too_long = vec![TarEntry::Random { path: format!("hubchaos/{}", "f".repeat(101)), size: 1 }];
        assert!(write_tar(&too_long, 3, 0, &mut Vec::new()).is_err());
    }

    #[test]
    fn specs_split_bytes_and_files_over_layers() {
        let s = ImageSpec::sized("Filler 1", 100 << 20, 3);
        assert_eq!(s.name, "hubchaos/filler-1");
        assert_eq!(s.layers.len(), 3);
        assert_eq!(s.total_bytes(), 100 << 20);
        assert!(s.layers.iter().all(|l| l.files >= 1));
        let f = ImageSpec::many_files("inodes", 2500, 2);
        assert_eq!(f.total_files(), 2500);
        assert_eq!(f.total_bytes(), 0);
        assert_eq!(tag_for_run("20261122T030000Z-make-local-cleaner-x/1"), "20261122T030000Z-make-local-cleaner-x-1");
        assert_eq!(tag_for_run(&"x".repeat(300)).len(), 128);
    }

    #[test]
    fn an_archive_has_a_manifest_a_config_with_diff_ids_and_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ImageSpec::many_files("multi", 1200, 2).label("hubchaos.fill", "f1");
        let layers: Vec<_> = spec.layers.iter().enumerate().map(|(i, l)| layer_entries("hubchaos/multi:r", i, l, None)).collect();
        let meta = ArchiveMeta { reference: "hubchaos/multi:r".into(), labels: spec.labels.clone(), runnable: false };
        let mut out = Vec::new();
        write_archive(&layers, &meta, 1, &mut out).unwrap();
        let listing = tar_listing(&out, dir.path());
        for want in ["l0/layer.tar", "l1/layer.tar", "config.json", "manifest.json"] {
            assert!(listing.contains(want), "{want}: {listing}");
        }
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        assert!(std::process::Command::new("tar").arg("-xf").arg(dir.path().join("t.tar")).arg("-C").arg(&x).status().unwrap().success());
        let config: serde_json::Value = serde_json::from_slice(&std::fs::read(x.join("config.json")).unwrap()).unwrap();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(std::fs::read(x.join("l1/layer.tar")).unwrap())));
        assert_eq!(config["rootfs"]["diff_ids"][1], json!(want));
        assert_eq!(config["config"]["Labels"]["hubchaos.fill"], "f1");
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(x.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "hubchaos/multi:r");
        // 1200 files over 2 layers: 600 each, one directory per 1000.
        let l0 = tar_listing(&std::fs::read(x.join("l0/layer.tar")).unwrap(), dir.path());
        assert_eq!(l0.lines().filter(|l| l.contains("/f")).count(), 600);
    }

    #[test]
    fn containers_run_on_the_host_network_with_the_run_id_and_never_a_bridge() {
        let c = container_config("hubchaos/keep:r", "run-1");
        assert_eq!(c["HostConfig"]["NetworkMode"], "host");
        assert_eq!(c["HostConfig"]["Init"], true);
        assert_eq!(c["Labels"][RUN_LABEL], "run-1");
        assert_eq!(c["Env"][0], "HUBCHAOS_RUN_ID=run-1");
        let ch = changes(&BTreeMap::from([(RUN_LABEL.to_string(), "run-1".to_string())]), true);
        assert_eq!(ch[0], r#"LABEL "hubchaos.run"="run-1""#);
        assert!(ch[1].starts_with("CMD"));
    }

    #[test]
    fn enospc_is_found_anywhere_in_the_error_chain() {
        let e = anyhow::Error::from(super::super::docker_api::DockerError {
            status: 500,
            method: "POST".into(),
            path: "/images/create".into(),
            message: "Error processing tar file(exit status 1): write /hubchaos/l0/d0/f0: no space left on device".into(),
        })
        .context("importing hubchaos/filler:r");
        assert!(no_space_message(&e).unwrap().contains("no space left on device"));
        assert!(no_space_message(&anyhow::anyhow!("connection refused")).is_none());
    }

    #[test]
    fn the_static_busybox_is_recognised() {
        if let Some(p) = find_static_busybox() {
            assert!(is_static_elf(&p));
        }
        // Debian's coreutils are dynamically linked.
        assert!(!is_static_elf(Path::new("/bin/ls")));
        assert!(!is_static_elf(Path::new("/etc/hostname")));
    }
}
