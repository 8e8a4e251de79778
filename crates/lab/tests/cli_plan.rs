//! Unprivileged CLI tests of `splitlab plan`: validation happens before any
//! kernel change, errors carry file:line:column and a distinct exit code.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn splitlab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run splitlab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_prints_every_step_of_the_wan_topology() {
    let (code, stdout, stderr) =
        splitlab(&["plan", "lab/topologies/wan-3dc.toml", "--run", "3f9a"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("# node us-east = 10.77.0.1 in sl-3f9a-us-east region US-East"),
        "{stdout}"
    );
    assert!(
        stdout.contains("veth sl-3f9a-us-east/sl3f9an1e2 <-> sl-3f9a-us-west/sl3f9an2e1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# base shape us-west -> eu: delay 72ms±2ms"),
        "{stdout}"
    );
    // 4 namespaces, 3 mesh + 3 control veths.
    assert_eq!(stdout.matches("netns add").count(), 4);
    assert_eq!(stdout.matches(" veth ").count(), 6);
}

#[test]
fn plan_rejects_bad_topologies_with_location_and_exit_code() {
    let dir = std::env::temp_dir().join(format!("sl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "[[node]]\nname = \"n1\"\ncolour = 1\n",
            "bad.toml:3:1: unknown field `colour`",
        ),
        (
            "[[node]]\nname = \"n1\"\n[[node]]\nname = \"n1\"\n",
            "bad.toml:4:8: duplicate node name \"n1\"",
        ),
        (
            "[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n[[shape]]\nfrom = \"n1\"\nto = \"n3\"\n",
            "bad.toml:7:6: unknown node \"n3\"; valid names: n1, n2",
        ),
    ];
    for (text, expected) in cases {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = splitlab(&["plan", path.to_str().unwrap()]);
        assert_eq!(code, 5, "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_run_ids_are_refused_by_the_parser() {
    let (code, _, stderr) = splitlab(&["plan", "lab/topologies/mesh-3.toml", "--run", "XYZ"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("4 lowercase hex digits"), "{stderr}");
}
