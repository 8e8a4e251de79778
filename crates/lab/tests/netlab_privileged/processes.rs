//! Processes inside lab namespaces: they run where they should, process
//! faults (stop, cont, kill, restart) act on them, teardown leaves none.

use crate::support::*;
use netlab::{Fault, ProcessSpec, Target};
use std::time::{Duration, Instant};

/// Processes run inside their node's namespace; stop/cont/kill/restart act on
/// them; teardown leaves none behind.
#[test]
fn t50_processes_in_namespaces_and_process_faults() {
    let Some(_serial) = serial_privileged() else {
        return;
    };
    let mut pids = Vec::new();
    with_lab(&mesh(3), |lab| {
        let dir = std::env::temp_dir().join(format!("sl-test-{}", lab.run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("n2.out");
        let spec = ProcessSpec {
            stdout: Some(out.clone()),
            ..ProcessSpec::new(
                "/bin/sh",
                ["-c", "readlink /proc/self/ns/net; exec sleep 600"],
            )
        };
        let pid = lab.spawn("n2", spec).unwrap();
        pids.push(pid);
        let ns_file = netlab::netns::netns_path(&lab.run_id().node_netns("n2"));
        let ns_inode = netlab::netns::netns_inode(&ns_file).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_to_string(&out).unwrap_or_default().is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let printed = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            printed.trim(),
            format!("net:[{ns_inode}]"),
            "child runs in n2's namespace"
        );

        lab.apply(&Fault::Stop { node: "n2".into() }).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(proc_state(pid), Some('T'));
        lab.apply(&Fault::Cont { node: "n2".into() }).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(proc_state(pid), Some('S'));
        lab.apply(&Fault::Restart { node: "n2".into() }).unwrap();
        let restarted = lab.pid("n2").unwrap();
        assert_ne!(restarted, pid);
        assert!(!alive(pid), "old process is gone");
        pids.push(restarted);
        lab.apply(&Fault::Kill { node: "n2".into() }).unwrap();
        assert_eq!(lab.pid("n2"), None);
        let again = lab.restart("n2").unwrap();
        pids.push(again);
        let mut aux = lab
            .spawn_aux(&Target::Control, &ProcessSpec::new("/bin/sleep", ["600"]))
            .unwrap();
        pids.push(aux.id());
        let _ = aux.try_wait();
        std::fs::remove_dir_all(&dir).unwrap();
    });
    for pid in pids {
        assert!(!alive(pid), "pid {pid} survived teardown");
    }
}
