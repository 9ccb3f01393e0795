//! The relay's HTTP server against curl (a client we did not write) and
//! against bootproto's HTTP client (the one chainloader.0 uses), and that
//! client against Python's http.server (a server we did not write).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use bootproto::http::{self, Response, Url};
use relay::http::{HttpConfig, HttpServer};

fn pattern(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect()
}

struct Fixture {
    root: tempfile::TempDir,
    _outside: tempfile::TempDir,
    addr: SocketAddr,
}

fn start(max_connections: usize) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let w = |dir: &std::path::Path, name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    w(root.path(), "kernel.elf", &pattern(3 << 20));
    w(root.path(), "dir/mod one.txt", b"module one\n");
    w(outside.path(), "secret", b"secret\n");
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link")).unwrap();
    let mut cfg = HttpConfig::new(root.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
    cfg.max_connections = max_connections;
    cfg.send_timeout = Duration::from_secs(5);
    let server = HttpServer::bind(cfg).unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || server.run());
    Fixture { root, _outside: outside, addr }
}

fn curl(args: &[&str]) -> (u16, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "-v"])
        .args(args)
        .output()
        .expect("curl");
    let mut body = out.stdout;
    let nl = body.iter().rposition(|&b| b == b'\n').unwrap();
    let code = std::str::from_utf8(&body[nl + 1..]).unwrap().parse().unwrap();
    body.truncate(nl);
    (code, body, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn curl_gets_whole_files_ranges_and_clear_refusals() {
    let f = start(8);
    let base = format!("http://{}", f.addr);
    let (code, body, _) = curl(&[&format!("{base}/kernel.elf")]);
    assert_eq!((code, body.len()), (200, 3 << 20));
    assert_eq!(body, pattern(3 << 20));
    let (code, body, _) = curl(&["-r", "100-199", &format!("{base}/kernel.elf")]);
    assert_eq!((code, body.as_slice()), (206, &pattern(3 << 20)[100..200]));
    let (code, body, err) = curl(&["-r", "-10", &format!("{base}/kernel.elf")]);
    assert_eq!((code, body.len()), (206, 10), "{err}");
    assert!(err.contains(&format!("Content-Range: bytes {}-{}/{}", (3 << 20) - 10, (3 << 20) - 1, 3 << 20)), "{err}");
    let (code, _, _) = curl(&["-r", "999999999-", &format!("{base}/kernel.elf")]);
    assert_eq!(code, 416);
    let (code, body, _) = curl(&[&format!("{base}/dir/mod%20one.txt")]);
    assert_eq!((code, body.as_slice()), (200, &b"module one\n"[..]));
    let (code, body, _) = curl(&[&format!("{base}/nope.bin")]);
    assert_eq!((code, String::from_utf8_lossy(&body).trim()), (404, "file not found"));
    let (code, _, _) = curl(&["-I", &format!("{base}/kernel.elf")]);
    assert_eq!(code, 200);
}

#[test]
fn paths_outside_the_root_are_refused() {
    let f = start(8);
    let base = format!("http://{}", f.addr);
    // --path-as-is keeps curl from resolving the dots itself.
    for (path, want) in [
        ("/../etc/passwd", 403),
        ("/%2e%2e/etc/passwd", 403),
        ("/dir/%2E%2E/%2E%2E/etc/passwd", 403),
        ("/link", 403),
        ("/dir", 403),
        ("/%00x", 400),
    ] {
        let (code, body, _) = curl(&["--path-as-is", &format!("{base}{path}")]);
        assert_eq!(code, want, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{path}");
    }
    // The root's own absolute path names the root, as over TFTP.
    let abs = f.root.path().canonicalize().unwrap().join("kernel.elf");
    let (code, _, _) = curl(&[&format!("{base}{}", abs.display())]);
    assert_eq!(code, 200);
    let (code, _, _) = curl(&[&format!("{base}/etc/passwd")]);
    assert_eq!(code, 404, "/etc/passwd is looked up inside the root");
}

#[test]
fn curl_reuses_one_connection_for_several_files() {
    let f = start(8);
    let base = format!("http://{}", f.addr);
    let out = Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "-o", "/dev/null"])
        .args([format!("{base}/kernel.elf"), format!("{base}/dir/mod%20one.txt")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Re-using existing connection") || err.contains("Reusing existing"), "{err}");
}

/// A client that asks for a big file and never reads holds its own thread
/// only: a second client is served at once.
#[test]
fn a_client_that_stops_reading_does_not_block_others() {
    let f = start(8);
    let mut stalled = TcpStream::connect(f.addr).unwrap();
    stalled.write_all(b"GET /kernel.elf HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, body, _) = curl(&[&format!("http://{}/kernel.elf", f.addr)]);
    assert_eq!((code, body.len()), (200, 3 << 20));
    drop(stalled);
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let f = start(2);
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(f.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (code, _, _) = curl(&[&format!("http://{}/dir/mod%20one.txt", f.addr)]);
    assert_eq!(code, 503);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, _) = curl(&[&format!("http://{}/dir/mod%20one.txt", f.addr)]);
    assert_eq!(code, 200, "slots are given back when connections close");
}

/// Drives bootproto's client over a blocking socket, as chainloader.0 drives
/// it over smoltcp: several files on one connection.
fn fetch_all(addr: SocketAddr, paths: &[&str], read_chunk: usize) -> Vec<Result<Vec<u8>, http::Error>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut results = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; read_chunk];
    for p in paths {
        let url = Url::parse(&format!("http://{addr}{p}")).unwrap();
        let mut req = [0u8; 512];
        let n = http::request(&url, "test", &mut req).unwrap();
        s.write_all(&req[..n]).unwrap();
        let mut body = Vec::new();
        let mut r = Response::new(Some(64 << 20));
        let mut sink = |off: u64, b: &[u8]| {
            assert_eq!(off as usize, body.len());
            body.extend_from_slice(b);
            Ok(())
        };
        let result = loop {
            if !pending.is_empty() {
                match r.feed(&pending, &mut sink) {
                    Ok((used, _)) => {
                        pending.drain(..used);
                    }
                    Err(e) => break Err(e),
                }
                if r.is_done() {
                    break r.outcome().map(|_| ());
                }
            }
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break r.finish_at_eof().map(|_| ());
            }
            pending.extend_from_slice(&buf[..n]);
        };
        results.push(result.map(|_| body));
    }
    results
}

#[test]
fn bootproto_client_fetches_several_files_over_one_connection() {
    let f = start(8);
    let r = fetch_all(f.addr, &["/kernel.elf", "/nope", "/dir/mod%20one.txt"], 1460);
    assert_eq!(r[0].as_ref().unwrap(), &pattern(3 << 20));
    assert_eq!(r[1].as_ref().unwrap_err().to_string(), "HTTP 404 Not Found");
    assert_eq!(r[2].as_ref().unwrap(), b"module one\n");
}

#[test]
fn bootproto_client_against_python_http_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.bin"), pattern(1 << 20)).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut py = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t0 = std::time::Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "python http.server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // http.server speaks HTTP/1.0 and closes after each response.
    let r = fetch_all(addr, &["/k.bin"], 4096);
    let _ = py.kill();
    let _ = py.wait();
    assert_eq!(r[0].as_ref().unwrap(), &pattern(1 << 20));
}
