//! chainloader.0 fetching by HTTP, end to end under QEMU's PXE ROM: the
//! config comes by TFTP (QEMU's server) and names `http://` URLs on a
//! server on the host, which QEMU's user network reaches at 10.0.2.2.
//! Servers: Python's http.server (one we did not write; HTTP/1.0, closes
//! after each file), the relay's HTTP server (keep-alive, one connection
//! for every file), and small misbehaving servers written here (a 404, a
//! connection dropped in the middle of a file).

use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::relayd::serve_args;
use e2e::{dist, free_port, pattern, tftp_root, want_module, write_file};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(60);

fn wait_listening(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_http_server(dir: &Path) -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    (Killed(child), port)
}

/// chainloader.0 under QEMU's user network, its config (by TFTP) naming
/// the reference kernel and `modules` (path on the server, module string)
/// by HTTP on the host's `port`. The TFTP root lives as long as the boot.
fn boot_by_http(port: u16, modules: &[(&str, &str)]) -> (tempfile::TempDir, Qemu) {
    let mut cfg = format!("kernel http://10.0.2.2:{port}/kernel.elf exit\n");
    for (path, string) in modules {
        cfg += &format!("module http://10.0.2.2:{port}/{path} {string}\n");
    }
    let root = tftp_root();
    write_file(root.path(), "chainloader.cfg/default", cfg);
    let q = Qemu::start(&QemuConfig::user_net(root.path(), "chainloader.0"));
    (root, q)
}

/// Kernel, a 4 MiB module and a gzip module from Python's http.server.
#[test]
fn kernel_and_modules_by_http_from_python_http_server() {
    let web = tempfile::tempdir().unwrap();
    std::fs::copy(dist("kernel.elf"), web.path().join("kernel.elf")).unwrap();
    let big = pattern(4 << 20, 1);
    write_file(web.path(), "boot/big.bin", &big);
    let text = b"module by http, compressed\n".repeat(500);
    write_file(web.path(), "boot/text.txt", &text);
    Command::new("gzip").args(["-9n", "-k"]).arg(web.path().join("boot/text.txt")).status().unwrap();
    let (_server, port) = python_http_server(web.path());

    let (_root, mut q) = boot_by_http(port, &[("boot/big.bin", "big module"), ("boot/text.txt.gz", "text")]);
    let line = q.expect(r"big\.bin: [0-9.]+ MiB in [0-9.]+ s, [0-9.]+ MiB/s", BOOT);
    eprintln!("throughput: {line}");
    let out = q.expect_self_check_ok(SHORT);
    want_module(&out, "big module", &big);
    want_module(&out, "text", &text);
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// A file the server does not have: the message names the URL, then the
/// countdown and the reset.
#[test]
fn a_404_names_the_url_and_ends_in_the_countdown() {
    let web = tempfile::tempdir().unwrap();
    std::fs::copy(dist("kernel.elf"), web.path().join("kernel.elf")).unwrap();
    let (_server, port) = python_http_server(web.path());
    let (_root, mut q) = boot_by_http(port, &[("missing.bin", "m")]);
    q.expect(&format!(r"chainloader: HTTP 404 [^\n]*: http://10\.0\.2\.2:{port}/missing\.bin"), BOOT);
    q.expect(r"rebooting in \d+ s", SHORT);
    assert!(q.wait_exit(SHORT).is_some(), "no reset after the countdown:\n{}", q.output());
}

/// A server that drops the connection in the middle of the module the
/// first time: chainloader.0 says so, reconnects, and the retry delivers
/// the whole file (the kernel's CRC-32 of it proves it).
#[test]
fn a_connection_dropped_mid_file_is_retried() {
    let kernel = std::fs::read(dist("kernel.elf")).unwrap();
    let module = pattern(2 << 20, 7);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let (k, m, s) = (kernel.clone(), module.clone(), served.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let (k, m, s) = (k.clone(), m.clone(), s.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                // One request per connection, then close (HTTP/1.1 with Connection: close).
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let body: &[u8] = if req.starts_with("GET /kernel.elf ") { &k } else { &m };
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = c.write_all(head.as_bytes());
                if req.starts_with("GET /module.bin ") && s.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The first time: half the module, then a reset.
                    let _ = c.write_all(&body[..body.len() / 2]);
                    let _ = c.flush();
                    std::thread::sleep(Duration::from_millis(200));
                    let sock = socket2::SockRef::from(&c);
                    let _ = sock.set_linger(Some(Duration::ZERO));
                    return;
                }
                let _ = c.write_all(body);
            });
        }
    });
    let (_root, mut q) = boot_by_http(port, &[("module.bin", "dropped once")]);
    q.expect(r"module\.bin: [^\n]*(closed the connection|cannot connect|no data)[^\n]*\(attempt 1 of 3\)", BOOT);
    let out = q.expect_self_check_ok(BOOT);
    want_module(&out, "dropped once", &module);
    assert_eq!(served.load(Ordering::SeqCst), 2, "the module was asked for twice");
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
}

/// The relay's HTTP server (`relay::http`): every file over one kept-alive
/// connection.
#[test]
fn relay_http_server_serves_every_file_over_one_connection() {
    let web = tempfile::tempdir().unwrap();
    std::fs::copy(dist("kernel.elf"), web.path().join("kernel.elf")).unwrap();
    let m1 = pattern(1 << 20, 3);
    let m2 = pattern(300_000, 4);
    write_file(web.path(), "m1.bin", &m1);
    write_file(web.path(), "m2.bin", &m2);
    let port = free_port();
    let cfg = relay::http::HttpConfig::new(web.path().to_path_buf(), format!("127.0.0.1:{port}").parse().unwrap());
    let server = relay::http::HttpServer::bind(cfg).unwrap();
    let accepted = server.accepted();
    std::thread::spawn(move || server.run());
    let (_root, mut q) = boot_by_http(port, &[("m1.bin", "one"), ("m2.bin", "two")]);
    let out = q.expect_self_check_ok(BOOT);
    want_module(&out, "one", &m1);
    want_module(&out, "two", &m2);
    assert_eq!(q.wait_exit(SHORT), Some(debug_exit_status(0x10)));
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "kernel and modules over one connection");
}

/// `relay serve --http-port`: the PXE ROM gets chainloader.0 by TFTP, and
/// chainloader.0 gets option 210 `http://10.77.0.1:8080/` with its 209, so
/// the config and every file it names (relative to the prefix, as by TFTP)
/// come by HTTP from the relay.
#[test]
fn relay_serve_http_port_sends_chainloader_to_http() {
    let root = tftp_root();
    let module = pattern(3 << 20, 21);
    write_file(root.path(), "big.bin", &module);
    write_file(root.path(), "chainloader.cfg/default", "kernel kernel.elf exit\nmodule /big.bin big\n");
    let state = tempfile::tempdir().unwrap();
    let mut ns = e2e::netns::NetNs::new();
    let r = e2e::relayd::Relayd::start(&mut ns, &serve_args(root.path(), state.path(), &["--http-port", "8080"]));
    let q = Qemu::start(&QemuConfig::tap(&ns.name, "tap0"));
    q.expect(r"config http://10\.77\.0\.1:8080/chainloader\.cfg/default: kernel kernel\.elf", BOOT);
    let line = q.expect(r"big\.bin: [0-9.]+ MiB in [0-9.]+ s, [0-9.]+ MiB/s", BOOT);
    eprintln!("throughput: {line}");
    let out = q.expect_self_check_ok(SHORT);
    want_module(&out, "big", &module);
    r.expect_log(r"config=chainloader\.cfg/default http_prefix=http://10\.77\.0\.1:8080/", SHORT);
    r.expect_log(r#"http: \S+ /?big\.bin: sent status=200"#, SHORT);
}
