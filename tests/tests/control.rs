//! The control socket admits its group only: `relay serve` makes it mode
//! 0660 with the configured group, so a user outside that group gets a
//! clear refusal and a member gets through. The clients run as `nobody`
//! (util-linux's setpriv), with and without the group.

use std::process::Command;

use e2e::relayd::{pty_pair, relay_bin, RelayServe};
use e2e::tftp_root;

/// A group every Debian system has, so the test needs no groupadd.
const GROUP: &str = "daemon";
const GROUP_ID: &str = "1";
const NOBODY: &str = "65534";

fn as_nobody(r: &RelayServe, groups: Option<&str>) -> std::process::Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY]);
    match groups {
        Some(g) => c.args(["--groups", g]),
        None => c.arg("--clear-groups"),
    };
    c.arg(relay_bin()).args(["status"]).env("RELAY_CONTROL", &r.control);
    c.output().expect("cannot run setpriv (util-linux)")
}

#[test]
fn the_control_socket_refuses_users_outside_its_group() {
    let root = tftp_root();
    // A target on a pty: nothing to boot, only a console to own.
    let (_master, dev) = pty_pair();
    let r = RelayServe::start(
        None,
        root.path(),
        &format!("group = \"{GROUP}\"\n"),
        &format!("[[target]]\nname = \"vm\"\nmac = \"52:54:00:00:00:09\"\nserial = {dev:?}\n"),
    );
    // Let `nobody` reach the socket's directory; the socket's own mode and
    // group are what is tested.
    let dir = r.control.parent().unwrap();
    let st = Command::new("chmod").arg("0755").arg(dir).status().unwrap();
    assert!(st.success());
    let meta = std::fs::metadata(&r.control).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "the socket's mode");
    assert_eq!(meta.gid().to_string(), GROUP_ID, "the socket's group");

    let outside = as_nobody(&r, None);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(!outside.status.success(), "a user outside the group got in:\n{stderr}");
    assert!(
        stderr.contains("are you in the socket's group?") && stderr.contains("ermission denied"),
        "the refusal should say why:\n{stderr}"
    );

    let member = as_nobody(&r, Some(GROUP_ID));
    let (out, err) = (String::from_utf8_lossy(&member.stdout), String::from_utf8_lossy(&member.stderr));
    assert!(member.status.success(), "a member of the group was refused:\n{out}\n{err}");
    assert!(out.contains("vm"), "status should list the target:\n{out}");
}
