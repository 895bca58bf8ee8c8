//! The image the cluster's own test pods run (servers, clients, disk fillers): the machine's
//! static busybox (Debian `busybox-static`) in an otherwise empty image, tagged by the
//! binary's hash. No registry is reachable, so it is made here and imported into every
//! node's containerd; pods use it with `imagePullPolicy: Never`.
//!
//! Debian's busybox 1.35 `wget -T` (a timeout) segfaults: callers bound a request with
//! `timeout` instead.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked in `/bin`, so `sh -c` scripts find them.
const APPLETS: &[&str] =
    &["sh", "wget", "nslookup", "dd", "sleep", "httpd", "cat", "echo", "mkdir", "timeout", "df", "rm", "hostname", "seq", "fallocate"];

/// `hubchaos/busybox:<first 12 hex of the binary's sha256>`.
pub fn reference(busybox: &[u8]) -> String {
    format!("hubchaos/busybox:{}", &hex::encode(Sha256::digest(busybox))[..12])
}

/// A root filesystem tar, written to `to`: `/bin/busybox` and the applets as links to it.
pub fn rootfs_tar(busybox: &Path, to: impl std::io::Write) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(to);
    b.mode(tar::HeaderMode::Deterministic);
    let mut f = std::fs::File::open(busybox).with_context(|| format!("{} (Debian's busybox-static)", busybox.display()))?;
    let mut h = tar::Header::new_gnu();
    h.set_size(f.metadata()?.len());
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, "bin/busybox", &mut f)?;
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    for dir in ["tmp", "etc"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o1777);
        h.set_cksum();
        b.append_data(&mut h, dir, std::io::empty())?;
    }
    b.finish()?;
    Ok(())
}

/// Where [`save`] keeps the image of `reference`.
pub fn saved_path(dir: &Path, reference: &str) -> PathBuf {
    dir.join(format!("test-image-{}.tar", reference.rsplit(':').next().unwrap_or("x")))
}

/// The image saved as `<dir>/test-image.tar` (`docker save` format, for `ctr images import`),
/// made through `docker` (a function running the CLI with these arguments) unless it is
/// there. Returns the tar and the reference.
pub fn save(dir: &Path, docker: impl Fn(&[&str]) -> anyhow::Result<String>) -> anyhow::Result<(PathBuf, String)> {
    let bytes = std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}: install Debian's busybox-static (`make deps` does)"))?;
    let reference = reference(&bytes);
    let out = saved_path(dir, &reference);
    if out.is_file() {
        return Ok((out, reference));
    }
    let rootfs = dir.join("test-image-rootfs.tar");
    rootfs_tar(Path::new(BUSYBOX), std::fs::File::create(&rootfs)?)?;
    let r = rootfs.display().to_string();
    docker(&["import", "-c", "ENV PATH=/bin", "-c", r#"ENTRYPOINT ["/bin/sh"]"#, &r, &reference])?;
    let partial = out.with_extension("tar.partial");
    docker(&["save", "-o", &partial.display().to_string(), &reference])?;
    std::fs::rename(&partial, &out)?;
    let _ = std::fs::remove_file(&rootfs);
    Ok((out, reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_binary() {
        assert_ne!(reference(b"a"), reference(b"b"));
        assert!(reference(b"a").starts_with("hubchaos/busybox:"));
        assert_eq!(reference(b"a").len(), "hubchaos/busybox:".len() + 12);
    }

    #[test]
    fn the_rootfs_has_busybox_and_its_applets_as_links() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("busybox");
        std::fs::write(&bin, b"\x7fELF").unwrap();
        let t = dir.path().join("r.tar");
        rootfs_tar(&bin, std::fs::File::create(&t).unwrap()).unwrap();
        let mut a = tar::Archive::new(std::fs::File::open(&t).unwrap());
        let mut links = Vec::new();
        let mut found_binary = false;
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            if path == "bin/busybox" {
                found_binary = e.header().mode().unwrap() == 0o755;
            } else if e.header().entry_type() == tar::EntryType::Symlink {
                assert_eq!(e.link_name().unwrap().unwrap().to_str(), Some("busybox"));
                links.push(path);
            }
        }
        assert!(found_binary);
        assert!(links.contains(&"bin/sh".to_string()) && links.contains(&"bin/wget".to_string()), "{links:?}");
    }
}
