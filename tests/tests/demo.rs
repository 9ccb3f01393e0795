//! `scripts/demo` runs green: relay serve with its virtual target, netboot
//! through chainloader.0, `relay boot` with an expect pattern, `relay
//! reboot`, the second boot. As root it puts the relay's DHCP in a
//! network namespace of its own.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_script_runs_the_whole_workflow() {
    let root = e2e::repo_root();
    let _ = e2e::dist("kernel.elf");
    let mut child = Command::new(root.join("scripts/demo"))
        .env("NETBOOT_DEMO_NO_BUILD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = e2e::collect_output(&mut child);
    let deadline = Instant::now() + Duration::from_secs(280);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            // SAFETY: SIGTERM to the script we started, so its trap cleans up.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(code, Some(0), "scripts/demo failed\nstdout:\n{out}\nstderr:\n{err}");
    for want in [
        "relay serve --config",
        "MBI-CHECK: ok",
        "PASS in",
        "demo (52:54:00:12:34:56)",
        "is rebooting (method serial)",
        "the second boot",
        "done: booted",
    ] {
        assert!(out.contains(want) || err.contains(want), "demo output lacks {want:?}\nstdout:\n{out}\nstderr:\n{err}");
    }
}
