//! Interop: the standard clients tftp-hpa (`tftp`) and atftp fetch files
//! of awkward sizes from the relay's TFTP server and the bytes must match.
//! tftp-hpa sends no options, so its transfers are plain 512-byte
//! lock-step; a file over 32 MiB forces the block number past 65535.

mod tftp_common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tftp_common::*;

const SIZES: &[(&str, usize)] =
    &[("empty", 0), ("one-block", 512), ("one-block-plus-one", 513), ("mib-plus-7", 1024 * 1024 + 7)];

fn require(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success());
    assert!(
        found.unwrap_or(false),
        "{tool} is not installed (Debian package tftp-hpa / atftp); scripts/test installs it"
    );
}

fn setup(root: &Path, extra: &[(&str, usize)]) {
    for (i, (name, len)) in SIZES.iter().chain(extra).enumerate() {
        std::fs::write(root.join(name), pattern(*len, i as u32 + 100)).unwrap();
    }
}

fn same_file(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(x.len(), y.len(), "{} and {} differ in size", a.display(), b.display());
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

fn tftp_hpa_get(port: u16, name: &str, out: &Path) {
    let status = Command::new("tftp")
        .args(["127.0.0.1", &port.to_string(), "-m", "binary", "-c", "get", name])
        .arg(out)
        .output()
        .expect("running tftp");
    assert!(
        status.status.success(),
        "tftp get {name} failed: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(!said.contains("Error"), "tftp get {name}: {said}");
}

#[test]
fn tftp_hpa_fetches_files_of_every_size_including_block_rollover() {
    require("tftp");
    let big = ("over-32-mib", 33 * 1024 * 1024 + 5);
    let fx = start(8, 1468, |root| setup(root, &[big]));
    let out = tempfile::tempdir().unwrap();
    for (name, _) in SIZES.iter().chain([&big]) {
        let dest = out.path().join(name);
        let t = Instant::now();
        tftp_hpa_get(fx.addr.port(), name, &dest);
        eprintln!("tftp-hpa {name}: {:.3} s", t.elapsed().as_secs_f64());
        same_file(&fx.root.path().join(name), &dest);
    }
}

#[test]
fn tftp_hpa_throughput_16_mib() {
    require("tftp");
    let fx = start(8, 1468, |root| std::fs::write(root.join("sixteen"), pattern(16 << 20, 7)).unwrap());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("sixteen");
    let t = Instant::now();
    tftp_hpa_get(fx.addr.port(), "sixteen", &dest);
    let secs = t.elapsed().as_secs_f64();
    same_file(&fx.root.path().join("sixteen"), &dest);
    // Reported, not asserted: timing depends on the machine's load.
    eprintln!("tftp-hpa 16 MiB at blksize 512: {secs:.3} s, {:.1} MiB/s", 16.0 / secs);
    if Command::new("atftp").arg("--version").output().is_ok() {
        let dest = out.path().join("sixteen.atftp");
        let t = Instant::now();
        atftp_get(fx.addr.port(), "sixteen", &dest, &["blksize 1428", "windowsize 8"]);
        let secs = t.elapsed().as_secs_f64();
        same_file(&fx.root.path().join("sixteen"), &dest);
        eprintln!("atftp 16 MiB at blksize 1428, windowsize 8: {secs:.3} s, {:.1} MiB/s", 16.0 / secs);
    }
}

/// Runs an atftp download with --trace; returns what it printed.
fn atftp_get(port: u16, name: &str, out: &Path, options: &[&str]) -> String {
    let mut cmd = Command::new("atftp");
    cmd.args(["--trace", "--get", "-r", name, "-l"]).arg(out);
    for o in options {
        cmd.args(["--option", o]);
    }
    cmd.args(["127.0.0.1", &port.to_string()]);
    let res = cmd.output().expect("running atftp");
    assert!(
        res.status.success(),
        "atftp {options:?} get {name} failed: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr))
}

#[test]
fn atftp_fetches_with_and_without_options() {
    require("atftp");
    let fx = start(8, 1468, |root| setup(root, &[("four-mib", 4 << 20)]));
    let out = tempfile::tempdir().unwrap();
    let option_sets: &[&[&str]] = &[
        &[],
        &["blksize 1428", "tsize enable"],
        &["blksize 1428", "windowsize 8", "tsize enable"],
        &["blksize 8", "timeout 2"],
    ];
    for (i, opts) in option_sets.iter().enumerate() {
        for (name, len) in SIZES.iter().chain([&("four-mib", 4 << 20)]) {
            if opts.contains(&"blksize 8") && *len > 100_000 {
                continue; // 8-byte blocks: keep it quick
            }
            let dest = out.path().join(format!("{name}.{i}"));
            let t = Instant::now();
            let log = atftp_get(fx.addr.port(), name, &dest, opts);
            if opts.contains(&"tsize enable") {
                assert!(log.contains(&format!("tsize: {len}")), "tsize not granted to atftp: {log}");
            }
            eprintln!("atftp {opts:?} {name}: {:.3} s", t.elapsed().as_secs_f64());
            same_file(&fx.root.path().join(name), &dest);
        }
    }
}

/// tftp-hpa's default mode is netascii (RFC 1350 requires servers to offer
/// it): a text file arrives with the host's line ends, byte for byte, and a
/// bare CR survives the round trip (CR NUL on the wire).
#[test]
fn tftp_hpa_default_netascii_mode_gets_text_files_intact() {
    require("tftp");
    let text = b"line one\nline two\r\nbare\rcr\n\nlast line without newline".repeat(40);
    let fx = start(8, 1468, |root| std::fs::write(root.join("notes.txt"), &text).unwrap());
    let out = tempfile::tempdir().unwrap();
    let res = Command::new("tftp")
        .args(["127.0.0.1", &fx.addr.port().to_string(), "-c", "get", "notes.txt"])
        .arg(out.path().join("notes.txt"))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(res.status.success() && !said.contains("Error"), "tftp-hpa said: {said}");
    assert_eq!(std::fs::read(out.path().join("notes.txt")).unwrap(), text, "netascii round trip");
    // On the wire it is CR LF and CR NUL, with tsize the converted size.
    let mut c = Client::new(fx.addr);
    c.send_request(&rrq(b"notes.txt", b"netascii", &[("tsize", "0")]));
    let Reply::Oack(opts) = c.recv() else { panic!("no OACK") };
    c.send(&ack(0));
    let wire = c.download(512, 1, false);
    assert!(wire.starts_with(b"line one\r\nline two\r\0\r\nbare\r\0cr\r\n\r\nlast"), "{:?}", &wire[..40]);
    assert_eq!(opts, vec![("tsize".to_string(), wire.len().to_string())]);
}

#[test]
fn standard_clients_get_clear_errors() {
    require("tftp");
    require("atftp");
    let fx = start(8, 1468, |root| std::fs::write(root.join("f"), b"x").unwrap());
    let out = tempfile::tempdir().unwrap();
    let res = Command::new("tftp")
        .args(["127.0.0.1", &fx.addr.port().to_string(), "-m", "binary", "-c", "get", "../../etc/passwd"])
        .arg(out.path().join("p"))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(said.contains("Error code 2"), "tftp-hpa said: {said}");
    let res = Command::new("atftp")
        .args(["--get", "-r", "missing", "-l"])
        .arg(out.path().join("m"))
        .args(["127.0.0.1", &fx.addr.port().to_string()])
        .output()
        .unwrap();
    assert!(!res.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(said.contains("file not found"), "atftp said: {said}");
}
