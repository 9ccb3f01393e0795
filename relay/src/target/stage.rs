//! Staging a boot: the kernel and modules into the target's own directory
//! of the TFTP root, and its chainloader config, each written under a
//! temporary name and renamed into place. A rename replaces the name in
//! one step, so a target booting at that moment opens either the old file
//! or the new one, never half of one; a transfer already under way keeps
//! reading the old file it opened.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::TargetError;
use crate::policy::targets::Target;

type Result<T, E = TargetError> = std::result::Result<T, E>;

/// A staged file: its name on the TFTP server and what it holds.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Path relative to the TFTP root, e.g. `aronnax/kernel`.
    pub tftp_path: String,
    pub size: u64,
    pub sha256: String,
}

/// Copy `size` bytes (or all, if None) from `src` to `dest` under the root,
/// through a temporary file in the same directory, then rename.
pub fn stage_file(root: &Path, rel: &str, src: &mut dyn Read, size: Option<u64>) -> Result<Staged> {
    let dest = root.join(rel);
    let dir = dest.parent().ok_or(TargetError::NoDirectory)?;
    fs::create_dir_all(dir).map_err(|source| TargetError::Create { path: dir.to_path_buf(), source })?;
    let tmp = dir.join(format!(".{}.partial-{}", dest.file_name().unwrap().to_string_lossy(), std::process::id()));
    let result = (|| -> Result<(u64, String)> {
        let mut f = File::create(&tmp).map_err(|source| TargetError::Create { path: tmp.clone(), source })?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let want = match size {
                Some(s) => ((s - total) as usize).min(buf.len()),
                None => buf.len(),
            };
            if want == 0 {
                break;
            }
            let n = src.read(&mut buf[..want])?;
            if n == 0 {
                if let Some(size) = size {
                    return Err(TargetError::ShortFile { total, size });
                }
                break;
            }
            hash.update(&buf[..n]);
            f.write_all(&buf[..n])?;
            total += n as u64;
        }
        f.sync_all()?;
        Ok((total, hex(&hash.finalize())))
    })();
    match result {
        Ok((size, sha256)) => {
            fs::rename(&tmp, &dest).map_err(|source| TargetError::Rename {
                from: tmp.clone(),
                to: dest.clone(),
                source,
            })?;
            Ok(Staged { tftp_path: rel.to_string(), size, sha256 })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The chainloader config for a staged kernel and modules (format of
/// bootproto::config), checked by the chainloader's own parser before it
/// is written.
pub fn config_text(kernel: &Staged, cmdline: &str, modules: &[(Staged, String)]) -> Result<String> {
    let mut s = format!("# written by relay boot\nkernel /{} {cmdline}\n", kernel.tftp_path);
    for (m, string) in modules {
        s.push_str(&format!("module /{} {string}\n", m.tftp_path));
    }
    bootproto::config::parse(&s).map_err(TargetError::ConfigSyntax)?;
    Ok(s)
}

/// Write the target's `chainloader.cfg/01-<mac>`, atomically.
pub fn write_config(root: &Path, t: &Target, text: &str) -> Result<PathBuf> {
    let rel = t.config_file();
    stage_file(root, &rel, &mut text.as_bytes(), Some(text.len() as u64))?;
    Ok(root.join(rel))
}

/// A file name that is safe as one path component in the target's dir.
pub fn safe_name(name: &str, fallback: &str) -> String {
    let base = Path::new(name).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.+".contains(c) { c } else { '_' }).collect();
    if clean.is_empty() || clean.starts_with('.') || name == "-" {
        fallback.to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A reader that hands out a big file slowly, so staging takes a while.
    struct Slow(Vec<u8>, usize);
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(4096).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            if n > 0 && self.1 % (256 << 10) < 4096 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(n)
        }
    }

    #[test]
    fn a_reader_during_staging_sees_the_old_file_or_the_new_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let old = vec![1u8; 3 << 20];
        let new: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
        stage_file(&root, "t/kernel", &mut &old[..], Some(old.len() as u64)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let (r2, d2, old2, new2) = (root.clone(), done.clone(), old.clone(), new.clone());
        let reader = std::thread::spawn(move || {
            let (mut olds, mut news) = (0, 0);
            while !d2.load(Ordering::SeqCst) || news == 0 {
                let got = fs::read(r2.join("t/kernel")).unwrap();
                if got == old2 {
                    olds += 1;
                } else if got == new2 {
                    news += 1;
                } else {
                    panic!("a reader saw a partial file of {} bytes", got.len());
                }
            }
            (olds, news)
        });
        let s = stage_file(&root, "t/kernel", &mut Slow(new.clone(), 0), None).unwrap();
        done.store(true, Ordering::SeqCst);
        let (olds, news) = reader.join().unwrap();
        assert!(olds > 0 && news > 0, "{olds} {news}");
        assert_eq!(s.size, new.len() as u64);
        assert_eq!(s.sha256, hex(&Sha256::digest(&new)));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(root.join("t")).unwrap().count(), 1);
    }

    #[test]
    fn short_input_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        stage_file(dir.path(), "t/k", &mut &b"old"[..], None).unwrap();
        assert!(stage_file(dir.path(), "t/k", &mut &b"ne"[..], Some(3)).is_err());
        assert_eq!(fs::read(dir.path().join("t/k")).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path().join("t")).unwrap().count(), 1);
    }

    #[test]
    fn config_is_checked_with_the_chainloaders_parser() {
        let k = Staged { tftp_path: "a/kernel".into(), size: 1, sha256: String::new() };
        let m = Staged { tftp_path: "a/initrd".into(), size: 1, sha256: String::new() };
        let t = config_text(&k, "console=ttyS0 noack", &[(m, "initrd".into())]).unwrap();
        assert_eq!(t, "# written by relay boot\nkernel /a/kernel console=ttyS0 noack\nmodule /a/initrd initrd\n");
        assert!(config_text(&k, "x=$HOME", &[]).is_err());
        assert_eq!(safe_name("-", "kernel"), "kernel");
        assert_eq!(safe_name("build/nautilus.bin", "kernel"), "nautilus.bin");
        assert_eq!(safe_name("../../etc/passwd", "k"), "passwd");
        assert_eq!(safe_name(".hidden", "k"), "k");
    }
}
