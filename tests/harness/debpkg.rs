//! Third-party boot images from Debian packages, fetched at test time with
//! `apt-get download` into a cache under `target/` and unpacked with
//! `dpkg-deb -x`. Nothing fetched is committed.

use std::path::PathBuf;
use std::process::Command;

/// The cache: `target/debian-packages/<package>/`.
fn cache_dir(package: &str) -> PathBuf {
    crate::repo_root().join("target/debian-packages").join(package)
}

fn download(package: &str, dir: &std::path::Path) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`apt-get download {package}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The file `path` (e.g. `boot/xen-4.17-amd64.gz`) of Debian package
/// `package`, downloaded and unpacked once. Panics with what apt-get said
/// if the package cannot be had (no network, no package lists: run
/// `apt-get update`).
pub fn file(package: &str, path: &str) -> PathBuf {
    // nextest runs tests in separate processes: one fetch (and one
    // `apt-get update`) at a time, across all of them.
    let root = crate::repo_root().join("target/debian-packages");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join(".lock")).unwrap();
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0, "cannot lock {}", root.join(".lock").display());
    let dir = cache_dir(package);
    let unpacked = dir.join("root");
    let want = unpacked.join(path);
    if want.exists() {
        return want;
    }
    std::fs::create_dir_all(&dir).unwrap();
    // apt-get drops privileges to _apt for the download; let it write here.
    let _ = Command::new("chmod").args(["a+rwx", dir.to_str().unwrap()]).status();
    if let Err(first) = download(package, &dir) {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        if let Err(second) = download(package, &dir) {
            panic!(
                "cannot fetch Debian package {package} for this test:\n  {first}\n  after apt-get update: {second}\n\
                 The test needs the package archive (apt-get download {package})."
            );
        }
    }
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("apt-get download {package} left no .deb in {}", dir.display()));
    let st = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status().expect("cannot run dpkg-deb");
    assert!(st.success(), "dpkg-deb -x {} failed", deb.display());
    assert!(want.exists(), "Debian package {package} has no {path}");
    want
}
