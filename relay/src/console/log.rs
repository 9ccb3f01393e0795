//! The console log: every byte the target prints, a UTC timestamp at the
//! start of each line, rotated by size (`NAME.log` -> `NAME.log.1` ...).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::ConsoleError;

/// Default size at which the console log is rotated.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;
/// Default number of rotated files kept.
pub const DEFAULT_KEEP: u32 = 5;

/// Whether the file's last byte is a newline (false if it cannot be read).
fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8];
    File::open(path).and_then(|mut f| f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last))).is_ok()
        && last[0] == b'\n'
}

/// Appends console output to a file, a UTC timestamp before each line.
pub struct TimestampedLog {
    path: Option<PathBuf>,
    file: Option<File>,
    written: u64,
    max_bytes: u64,
    keep: u32,
    at_line_start: bool,
}

impl TimestampedLog {
    /// A log that writes nothing.
    pub fn none() -> Self {
        TimestampedLog { path: None, file: None, written: 0, max_bytes: u64::MAX, keep: 0, at_line_start: true }
    }

    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> Result<Self, ConsoleError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| ConsoleError::CreateLogDir { dir: dir.to_path_buf(), source })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ConsoleError::OpenLog { path: path.to_path_buf(), source })?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        // A relay that was killed may have left a line half written: what
        // comes next (the target's rest of it, or a note) must not run on
        // from it as if it were one line.
        let at_line_start = written == 0 || ends_with_newline(path);
        Ok(TimestampedLog {
            path: Some(path.to_path_buf()),
            file: Some(file),
            written,
            max_bytes: max_bytes.max(4096),
            keep,
            at_line_start,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Target output; written through (no buffering), so a crash of the
    /// relay loses nothing already read.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(bytes.len() + 32);
        stamp_lines(&mut out, bytes, &mut self.at_line_start, &utc_now());
        self.append(&out)?;
        // Rotate only at a line start, so no line is split across files.
        if self.written >= self.max_bytes && self.at_line_start {
            self.rotate()?;
        }
        Ok(())
    }

    /// A line from the relay itself (not the target), marked `-- relay:`.
    pub fn note(&mut self, msg: &str) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let nl = if self.at_line_start { "" } else { "\n" };
        self.at_line_start = true;
        let line = format!("{nl}{} -- relay: {msg}\n", utc_now());
        self.append(line.as_bytes())
    }

    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(b)?;
            self.written += b.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        let name = |i: u32| PathBuf::from(format!("{}.{i}", path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&path)?;
        } else {
            for i in (1..self.keep).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            std::fs::rename(&path, name(1))?;
        }
        self.file = Some(OpenOptions::new().create(true).append(true).open(&path)?);
        self.written = 0;
        self.note("log rotated")
    }
}

/// Copy `bytes` to `out`, putting `stamp` and a space at each line start.
pub fn stamp_lines(out: &mut Vec<u8>, bytes: &[u8], at_line_start: &mut bool, stamp: &str) {
    for &b in bytes {
        if *at_line_start {
            out.extend_from_slice(stamp.as_bytes());
            out.push(b' ');
            *at_line_start = false;
        }
        out.push(b);
        if b == b'\n' {
            *at_line_start = true;
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_utc(d.as_secs() as i64, d.subsec_millis())
}

/// Unix seconds as an ISO 8601 UTC time (civil-from-days, proleptic Gregorian).
pub fn format_utc(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_each_line_across_chunks() {
        let mut out = vec![];
        let mut start = true;
        stamp_lines(&mut out, b"ab\ncd", &mut start, "T");
        stamp_lines(&mut out, b"e\n\nf", &mut start, "U");
        assert_eq!(out, b"T ab\nT cde\nU \nU f");
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_795_737_600 + 3661, 42), "2026-11-27T01:01:01.042Z");
        assert_eq!(format_utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    }

    #[test]
    fn rotates_by_size_at_line_starts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let mut log = TimestampedLog::open(&p, 4096, 2).unwrap();
        let line = [b'x'; 99];
        for _ in 0..200 {
            log.write(&line).unwrap();
            log.write(b"\n").unwrap();
        }
        let cur = std::fs::metadata(&p).unwrap().len();
        assert!(cur < 8192, "{cur}");
        let one = std::fs::read_to_string(dir.path().join("t.log.1")).unwrap();
        assert!(one.lines().all(|l| l.ends_with(&"x".repeat(99)) || l.contains("-- relay: log rotated")), "{one}");
        assert!(dir.path().join("t.log.2").exists());
        assert!(!dir.path().join("t.log.3").exists());
    }

    #[test]
    fn reopening_after_a_partial_line_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        TimestampedLog::open(&p, 1 << 20, 2).unwrap().write(b"big.bin: 10% ").unwrap();
        // The relay dies here; the next one appends its note and the rest.
        let mut log = TimestampedLog::open(&p, 1 << 20, 2).unwrap();
        log.note("console reopened").unwrap();
        log.write(b"20%\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with(" big.bin: 10% "), "{text}");
        assert!(lines[1].ends_with(" -- relay: console reopened"), "{text}");
        assert!(lines[2].ends_with(" 20%"), "{text}");
        // A log that ended its last line gets no blank line.
        let mut log = TimestampedLog::open(&p, 1 << 20, 2).unwrap();
        log.note("again").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 4);
    }
}
