//! Opening a requested file without leaving the TFTP root.
//!
//! The request name is first normalised (backslashes become slashes, as
//! dnsmasq does for Windows-style PXE clients; a leading `/` names the
//! root, as under tftp-hpa's chroot; `..` is refused outright). The kernel
//! then resolves it below an fd of the root with `openat2(RESOLVE_BENEATH)`,
//! so a symlink or a rename racing with the lookup cannot lead outside:
//! there is no check-then-open window. Where `openat2` is missing (Linux
//! before 5.6, or a seccomp filter), the fallback canonicalises, opens with
//! `O_NOFOLLOW`, and then checks the path of the opened fd itself.
//!
//! Only regular files are served. The lookup opens with `O_PATH`, which
//! has no side effects on FIFOs or devices, and the file is reopened for
//! reading only after `fstat` says it is regular.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::wire::ErrorCode;

/// Why a request could not be served from the root.
#[derive(Debug)]
pub enum OpenError {
    NotFound,
    /// The name or a symlink along it leads outside the root.
    Escape(&'static str),
    /// A directory, FIFO, socket or device.
    NotRegular(&'static str),
    /// dnsmasq's rule: a server running as root serves only world-readable
    /// files, so that a stray private file in the root does not leak.
    NotWorldReadable,
    PermissionDenied,
    Io(io::Error),
}

impl OpenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            OpenError::NotFound => ErrorCode::FileNotFound,
            OpenError::Escape(_)
            | OpenError::NotRegular(_)
            | OpenError::NotWorldReadable
            | OpenError::PermissionDenied => ErrorCode::AccessViolation,
            OpenError::Io(_) => ErrorCode::NotDefined,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => write!(f, "file not found"),
            OpenError::Escape(why) => write!(f, "access violation: {why}"),
            OpenError::NotRegular(kind) => write!(f, "access violation: not a regular file ({kind})"),
            OpenError::NotWorldReadable => {
                write!(f, "access violation: file is not world-readable (a server running as root serves only those; chmod o+r)")
            }
            OpenError::PermissionDenied => write!(f, "access violation: permission denied"),
            OpenError::Io(e) => write!(f, "cannot read file: {e}"),
        }
    }
}

/// Turns a request name into a path relative to the root.
///
/// `root` is the canonical root; a request that spells out the root's own
/// absolute path (some configurations hand out `/srv/tftp/file`) is
/// accepted, as dnsmasq does.
pub fn normalise(filename: &[u8], root: &Path) -> Result<PathBuf, OpenError> {
    let name: Vec<u8> = filename.iter().map(|&b| if b == b'\\' { b'/' } else { b }).collect();
    let mut rest: &[u8] = &name;
    let root_bytes = root.as_os_str().as_bytes();
    if root_bytes.len() > 1 && rest.starts_with(root_bytes) && rest.get(root_bytes.len()) == Some(&b'/') {
        rest = &rest[root_bytes.len()..];
    }
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(rest)).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(OpenError::Escape("'..' in file name")),
            Component::Prefix(_) => return Err(OpenError::Escape("path prefix")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(OpenError::NotRegular("the root directory"));
    }
    Ok(out)
}

/// An opened file ready to be served.
pub struct ServedFile {
    pub file: File,
    pub size: u64,
}

/// The TFTP root, held open as a directory fd.
pub struct Root {
    dir: OwnedFd,
    canonical: PathBuf,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn file_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFLNK => "symlink",
        _ => "special file",
    }
}

fn fstat(fd: i32) -> io::Result<libc::stat> {
    // SAFETY: `st` is plain old data that fstat fills; `fd` is open for the call.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn map_open_errno(err: i32) -> OpenError {
    match err {
        libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG => OpenError::NotFound,
        libc::EXDEV => OpenError::Escape("resolves outside the TFTP root (symlink)"),
        libc::ELOOP => OpenError::Escape("symlink loop or magic link"),
        libc::EACCES | libc::EPERM => OpenError::PermissionDenied,
        other => OpenError::Io(io::Error::from_raw_os_error(other)),
    }
}

impl Root {
    pub fn open(root: &Path) -> io::Result<Root> {
        let canonical = root.canonicalize()?;
        let c = CString::new(canonical.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in root path"))?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open and nothing else owns it.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root { dir, canonical })
    }

    pub fn canonical(&self) -> &Path {
        &self.canonical
    }

    /// Resolves a request name and opens it for reading.
    pub fn open_request(&self, filename: &[u8]) -> Result<ServedFile, OpenError> {
        let relative = normalise(filename, &self.canonical)?;
        let c = CString::new(relative.as_os_str().as_bytes()).map_err(|_| OpenError::NotFound)?;
        let path_fd = match self.openat2_beneath(&c, libc::O_PATH | libc::O_CLOEXEC) {
            Ok(fd) => fd,
            Err(libc::ENOSYS) | Err(libc::EPERM) if !self.openat2_works() => return self.open_fallback(&relative),
            Err(e) => return Err(map_open_errno(e)),
        };
        let st = fstat(path_fd.as_raw_fd()).map_err(OpenError::Io)?;
        check_servable(&st)?;
        // Reopen the very inode the lookup found, now for reading. Through
        // /proc this cannot race; without /proc, look up again and compare.
        let proc_path = CString::new(format!("/proc/self/fd/{}", path_fd.as_raw_fd())).unwrap();
        let read_flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        // SAFETY: valid NUL-terminated path; the fd is owned below.
        let fd = unsafe { libc::open(proc_path.as_ptr(), read_flags) };
        let file = if fd >= 0 {
            // SAFETY: `fd` was just returned by open and nothing else owns it.
            unsafe { File::from_raw_fd(fd) }
        } else {
            File::from(self.openat2_beneath(&c, read_flags).map_err(map_open_errno)?)
        };
        let st2 = fstat(file.as_raw_fd()).map_err(OpenError::Io)?;
        if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
            return Err(OpenError::Escape("file changed while being opened"));
        }
        check_servable(&st2)?;
        advise_sequential(&file);
        Ok(ServedFile { file, size: st2.st_size as u64 })
    }

    fn openat2_beneath(&self, path: &CString, flags: i32) -> Result<OwnedFd, i32> {
        // SAFETY: open_how is plain old data; zeroed is a valid value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: the path and `how` outlive the call; size matches the struct.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: `fd` was just returned by openat2 and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// Whether openat2 exists here (a probe on "."), to tell "no openat2"
    /// from a real EPERM on the requested file.
    fn openat2_works(&self) -> bool {
        let dot = CString::new(".").unwrap();
        !matches!(self.openat2_beneath(&dot, libc::O_PATH | libc::O_CLOEXEC), Err(libc::ENOSYS) | Err(libc::EPERM))
    }

    /// For kernels without openat2: canonicalise, check, open the canonical
    /// path with O_NOFOLLOW, then verify where the opened fd really is.
    fn open_fallback(&self, relative: &Path) -> Result<ServedFile, OpenError> {
        let joined = self.canonical.join(relative);
        let canonical = joined.canonicalize().map_err(|e| map_open_errno(e.raw_os_error().unwrap_or(0)))?;
        if !canonical.starts_with(&self.canonical) {
            return Err(OpenError::Escape("resolves outside the TFTP root (symlink)"));
        }
        let st = {
            let meta =
                std::fs::symlink_metadata(&canonical).map_err(|e| map_open_errno(e.raw_os_error().unwrap_or(0)))?;
            use std::os::unix::fs::MetadataExt;
            meta.mode()
        };
        if st & libc::S_IFMT != libc::S_IFREG {
            return Err(OpenError::NotRegular(file_kind(st)));
        }
        let c = CString::new(canonical.as_os_str().as_bytes()).map_err(|_| OpenError::NotFound)?;
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW;
        // SAFETY: valid NUL-terminated path; the fd is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            return Err(map_open_errno(errno()));
        }
        // SAFETY: `fd` was just returned by open and nothing else owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            if !real.starts_with(&self.canonical) {
                return Err(OpenError::Escape("resolves outside the TFTP root (race)"));
            }
        }
        let st = fstat(fd).map_err(OpenError::Io)?;
        check_servable(&st)?;
        advise_sequential(&file);
        Ok(ServedFile { file, size: st.st_size as u64 })
    }
}

/// A transfer reads the file front to back: let the kernel read ahead
/// aggressively, so a kernel image not yet in the page cache streams.
fn advise_sequential(file: &File) {
    // SAFETY: a valid fd; posix_fadvise only sets a hint.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

fn check_servable(st: &libc::stat) -> Result<(), OpenError> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(OpenError::NotRegular(file_kind(st.st_mode)));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && st.st_mode & libc::S_IROTH == 0 {
        return Err(OpenError::NotWorldReadable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both resolvers (openat2 and the fallback) refuse the same escapes
    /// and serve the same legitimate names.
    #[test]
    fn openat2_and_fallback_agree() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir(r.join("sub")).unwrap();
        std::fs::write(r.join("sub/ok"), b"ok").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("abs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("sub/ok", r.join("inside")).unwrap();
        let root = Root::open(r).unwrap();
        assert!(root.openat2_works(), "this kernel has openat2; the main path must be tested");
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"sub/ok", Some(b"ok")),
            (b"inside", Some(b"ok")),
            (b"abs", None),
            (b"dirlink/secret", None),
            (b"sub", None),
            (b"missing", None),
        ];
        for (name, want) in cases {
            let relative = normalise(name, root.canonical()).unwrap();
            let via_openat2 = root.open_request(name);
            let via_fallback = root.open_fallback(&relative);
            for (how, got) in [("openat2", via_openat2), ("fallback", via_fallback)] {
                match (want, got) {
                    (Some(content), Ok(f)) => {
                        let mut buf = vec![0; f.size as usize];
                        std::os::unix::fs::FileExt::read_exact_at(&f.file, &mut buf, 0).unwrap();
                        assert_eq!(&buf[..], *content, "{how} {name:?}");
                    }
                    (None, Err(e)) => {
                        let expect_not_found = *name == b"missing";
                        assert_eq!(matches!(e, OpenError::NotFound), expect_not_found, "{how} {name:?}: {e}");
                    }
                    (want, got) => panic!(
                        "{how} {:?}: want {want:?}, got {:?}",
                        String::from_utf8_lossy(name),
                        got.map(|f| f.size)
                    ),
                }
            }
        }
    }

    #[test]
    fn normalisation() {
        let root = Path::new("/srv/tftp");
        let ok = |s: &[u8]| normalise(s, root).unwrap();
        assert_eq!(ok(b"chainloader.0"), PathBuf::from("chainloader.0"));
        assert_eq!(ok(b"/chainloader.0"), PathBuf::from("chainloader.0"));
        assert_eq!(ok(b"//a/./b"), PathBuf::from("a/b"));
        assert_eq!(ok(b"pxelinux.cfg\\default"), PathBuf::from("pxelinux.cfg/default"));
        assert_eq!(ok(b"/srv/tftp/kernel.elf"), PathBuf::from("kernel.elf"));
        assert_eq!(ok(b"/srv/tftpx/kernel.elf"), PathBuf::from("srv/tftpx/kernel.elf"));
        for bad in [&b"../etc/passwd"[..], b"/../../etc/passwd", b"..\\..\\etc\\passwd", b"a/../../b", b"a/.."] {
            assert!(matches!(normalise(bad, root), Err(OpenError::Escape(_))), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(normalise(b"/", root), Err(OpenError::NotRegular(_))));
        assert!(matches!(normalise(b".", root), Err(OpenError::NotRegular(_))));
    }
}
