//! Capability probing and `splitlab doctor`. Every probe runs inside a lab
//! namespace (a scratch `sl-<run>-probe` for doctor, the control namespace at
//! bring-up), never in the host's. The privilege checks say exactly which
//! capability, mount or namespace right is missing and how to get it, so a
//! container without `--privileged` learns why before anything is created.

use crate::caps::Capabilities;
use crate::naming::RunId;
use crate::netns;
use crate::plan::Step;
use crate::rtnl::Rtnl;
use crate::tools::{find_tool, run_in};

/// Probes the fault backends inside `netns` (leaves nothing behind there).
/// The independent probes run in parallel (distinct table names; the two
/// qdisc probes share `lo` and run in sequence).
pub fn probe_capabilities(netns: &str) -> Capabilities {
    let nft = |table: &str, body: &str| {
        let script = format!(
            "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{body}\n}}\ndelete table ip {table}\n"
        );
        run_in(netns, "nft", &["-f".into(), "-".into()], &script).is_ok()
    };
    // The table and chain the lab's queue rules use (see `iptables`).
    let restore = |rules: &str| {
        let table = format!("*mangle\n:PREROUTING ACCEPT [0:0]\n{rules}COMMIT\n");
        run_in(netns, "iptables-restore", &[], &table).is_ok()
    };
    // `tc qdisc VERB dev lo root ARGS...`
    let tc_root = |verb: &str, args: &[&str]| {
        let args: Vec<String> = ["qdisc", verb, "dev", "lo", "root"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect();
        run_in(netns, "tc", &args, "").is_ok()
    };
    let qdisc = |args: &[&str]| {
        let ok = tc_root("add", args);
        if ok {
            let _ = tc_root("del", &[]);
        }
        ok
    };
    std::thread::scope(|scope| {
        let [numgen, dup, mangle] = [
            (
                "sl_probe_numgen",
                "chain c { type filter hook input priority 0; policy accept; numgen random mod 100 < 1 drop; }",
            ),
            (
                "sl_probe_dup",
                "chain c { type filter hook output priority 0; policy accept; ip daddr 127.0.0.9 dup to 127.0.0.9; }",
            ),
            (
                "sl_probe_mangle",
                "chain c { type filter hook output priority 0; policy accept; ip daddr 127.0.0.9 @ih,0,8 set 0xab; }",
            ),
        ]
        .map(|(table, body)| scope.spawn(move || nft(table, body)));
        let nfqueue = scope.spawn(|| {
            restore(
                "-A PREROUTING -s 127.0.0.9/32 -p udp -m udp --dport 9 -j NFQUEUE --queue-num 9\n",
            ) && restore("")
        });
        let qdiscs = scope.spawn(|| {
            (
                qdisc(&["netem", "delay", "1ms"]),
                qdisc(&["tbf", "rate", "1mbit", "burst", "16000", "latency", "100ms"]),
            )
        });
        let joined = |h: std::thread::ScopedJoinHandle<'_, bool>| h.join().unwrap_or(false);
        let (netem, tbf) = qdiscs.join().unwrap_or((false, false));
        Capabilities {
            netem,
            nft: joined(numgen),
            nft_dup: joined(dup),
            nft_mangle: joined(mangle),
            nfqueue: joined(nfqueue),
            tbf,
        }
    })
}

/// One doctor line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Result.
    pub ok: bool,
    /// Needed for any lab (`splitlab up` refuses without it).
    pub basic: bool,
    /// Detail or fix.
    pub detail: String,
}

fn cgroup_freezer() -> (bool, String) {
    let v1 = std::path::Path::new("/sys/fs/cgroup/freezer/freezer.state").exists()
        || std::path::Path::new("/sys/fs/cgroup/freezer").is_dir();
    let v2_roots = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
    let v2 = v2_roots.iter().any(|root| {
        std::path::Path::new(root)
            .join("cgroup.controllers")
            .exists()
            && std::fs::read_dir(root).is_ok_and(|dir| {
                dir.filter_map(Result::ok)
                    .any(|e| e.path().join("cgroup.freeze").exists())
            })
    });
    match (v1, v2) {
        (true, true) => (true, "cgroup v1 freezer and cgroup v2 cgroup.freeze".into()),
        (true, false) => (true, "cgroup v1 freezer".into()),
        (false, true) => (true, "cgroup v2 cgroup.freeze".into()),
        (false, false) => (
            false,
            "no freezer: mount cgroup2 or the v1 freezer controller (SIGSTOP still works)".into(),
        ),
    }
}

/// How to get the privileges the lab needs, for the messages below.
pub const PRIVILEGE_FIX: &str = "run as root with CAP_NET_ADMIN and CAP_SYS_ADMIN in the host's \
namespaces: in a container, `docker run --privileged ...` or `podman run --privileged ...` \
(at least `--cap-add NET_ADMIN --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
--security-opt apparmor=unconfined`); in an `unshare --user` sandbox, add `--mount` and \
mount a tmpfs on /run/netns";

/// Capability bit numbers (`linux/capability.h`).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability set of this process (`CapEff` in
/// `/proc/self/status`), if readable.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `Some(map)` when this process runs in a user namespace other than the
/// initial one: its capabilities then reach only namespaces that user
/// namespace owns.
fn user_namespace_map() -> Option<String> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let fields: Vec<&str> = map.split_whitespace().collect();
    (fields != ["0", "0", "4294967295"]).then(|| fields.join(" "))
}

/// Checks that this process may build labs: root, CAP_NET_ADMIN and
/// CAP_SYS_ADMIN, creating a network namespace (on a scratch thread, gone
/// when it ends) and making `/run/netns` a shared mount point (what
/// `ip netns add` does; nothing else is created).
pub fn privilege_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    let userns = user_namespace_map();
    let in_userns = userns
        .as_ref()
        .map(|map| {
            format!(" (in a user namespace, uid_map \"{map}\": only over namespaces it owns)")
        })
        .unwrap_or_default();
    checks.push(Check {
        name: "root",
        ok: root,
        basic: true,
        detail: if root {
            format!("running as root{in_userns}")
        } else {
            "run as root (CAP_NET_ADMIN + CAP_SYS_ADMIN for namespaces, mounts and setns)".into()
        },
    });
    let caps = effective_capabilities();
    for (name, bit, needed_for, add) in [
        (
            "CAP_NET_ADMIN",
            CAP_NET_ADMIN,
            "links, addresses, nftables, tc",
            "--cap-add NET_ADMIN",
        ),
        (
            "CAP_SYS_ADMIN",
            CAP_SYS_ADMIN,
            "unshare, setns and the /run/netns mounts",
            "--cap-add SYS_ADMIN",
        ),
    ] {
        let ok = caps.is_some_and(|set| set & (1 << bit) != 0);
        checks.push(Check {
            name,
            ok,
            basic: true,
            detail: if ok {
                format!("effective{in_userns}")
            } else {
                format!(
                    "missing from the effective set (needed for {needed_for}): \
                     run with --privileged or {add}"
                )
            },
        });
    }
    let unshared = std::thread::spawn(|| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET))
        .join()
        .unwrap_or(Err(nix::Error::EINVAL));
    checks.push(Check {
        name: "new netns",
        ok: unshared.is_ok(),
        basic: true,
        detail: match unshared {
            Ok(()) => "unshare(CLONE_NEWNET) works (tried on a scratch thread)".into(),
            Err(nix::Error::EPERM) => format!(
                "unshare(CLONE_NEWNET): EPERM: CAP_SYS_ADMIN missing or a seccomp profile \
                 forbids unshare{in_userns}: run with --privileged \
                 (or --cap-add SYS_ADMIN --security-opt seccomp=unconfined)"
            ),
            Err(e) => format!("unshare(CLONE_NEWNET): {e}: the kernel needs CONFIG_NET_NS"),
        },
    });
    let mounted = crate::netns::ensure_netns_dir();
    checks.push(Check {
        name: "mount /run/netns",
        ok: mounted.is_ok(),
        basic: true,
        detail: match &mounted {
            Ok(()) => format!("{} is a shared mount point", crate::netns::NETNS_DIR),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
                "{e}: CAP_SYS_ADMIN over this mount namespace is missing{}: run with \
                 --privileged (or --cap-add SYS_ADMIN --security-opt apparmor=unconfined); \
                 in an `unshare --user` sandbox add --mount",
                if userns.is_some() {
                    " (this user namespace does not own the mount namespace)"
                } else {
                    " (or AppArmor/SELinux forbids mount)"
                }
            ),
            Err(e) => format!("{e}: /run/netns must be a writable directory (mount a tmpfs on it)"),
        },
    });
    checks
}

/// `None` when this process may build labs; otherwise one message naming
/// every missing privilege and how to get it (what `splitlab run` and
/// `up` print before creating anything).
pub fn privilege_problem() -> Option<String> {
    let missing: Vec<String> = privilege_checks()
        .into_iter()
        .filter(|check| !check.ok)
        .map(|check| format!("  missing {}: {}", check.name, check.detail))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "this process cannot build a lab:\n{}\nfix: {PRIVILEGE_FIX}\n(`splitlab doctor` checks everything)",
            missing.join("\n")
        )
    })
}

/// Runs every check. Creates and removes a scratch namespace.
pub fn run_doctor() -> Vec<Check> {
    let mut checks = privilege_checks();
    let privileged = checks.iter().all(|check| check.ok);
    for (tool, package, basic) in [
        ("nft", "nftables", true),
        ("iptables-restore", "iptables", false),
        ("tc", "iproute2", true),
    ] {
        let found = find_tool(tool);
        checks.push(Check {
            name: tool,
            ok: found.is_some(),
            basic,
            detail: match found {
                Some(path) => path.display().to_string(),
                None => format!("apt-get install {package}  (or scripts/setup.sh)"),
            },
        });
    }
    let run = RunId::random();
    let scratch = format!("{}probe", run.netns_prefix());
    let made = if privileged {
        netns::create_netns(&scratch)
    } else {
        Err(std::io::Error::other(
            "not attempted: privileges are missing (see above)",
        ))
    };
    checks.push(Check {
        name: "netns",
        ok: made.is_ok(),
        basic: true,
        detail: match &made {
            Ok(()) => format!("created and removed scratch namespace {scratch}"),
            Err(e) if privileged => format!("{e}: needs root and CONFIG_NET_NS"),
            Err(e) => e.to_string(),
        },
    });
    if made.is_ok() {
        let veth = Rtnl::start().map_err(|e| e.to_string()).and_then(|rtnl| {
            rtnl.execute(vec![Step::CreateVeth {
                netns_a: scratch.clone(),
                ifname_a: format!("sl{run}dA"),
                netns_b: scratch.clone(),
                ifname_b: format!("sl{run}dB"),
            }])
            .map_err(|f| format!("{}: {}", f.step, f.source))
        });
        checks.push(Check {
            name: "veth",
            ok: veth.is_ok(),
            basic: true,
            detail: match veth {
                Ok(()) => "veth pair created inside the scratch namespace".into(),
                Err(e) => format!("{e}: needs CONFIG_VETH"),
            },
        });
        let caps = probe_capabilities(&scratch);
        let _ = netns::delete_netns(&scratch);
        let line = |name: &'static str, ok: bool, basic: bool, yes: &str, fix: &str| Check {
            name,
            ok,
            basic,
            detail: if ok { yes.to_string() } else { fix.to_string() },
        };
        checks.push(line(
            "netem",
            caps.netem,
            false,
            "tc netem available: whole-link shapes use it",
            "no tc netem (CONFIG_NET_SCH_NETEM): delay/jitter/reorder fall back to NFQUEUE, \
             loss/duplicate/corrupt to nftables",
        ));
        checks.push(line(
            "nft numgen",
            caps.nft,
            true,
            "nftables drop and random loss",
            "nft cannot load rules: install nftables; kernel needs CONFIG_NF_TABLES + CONFIG_NFT_NUMGEN",
        ));
        checks.push(line(
            "nft dup",
            caps.nft_dup,
            false,
            "duplicate via nft dup",
            "duplicate faults unavailable: kernel needs CONFIG_NFT_DUP_IPV4 (or netem)",
        ));
        checks.push(line(
            "nft mangle",
            caps.nft_mangle,
            false,
            "corrupt via nft payload mangling",
            "corrupt faults unavailable: kernel needs nft payload set (or netem)",
        ));
        checks.push(line(
            "iptables NFQUEUE",
            caps.nfqueue,
            false,
            "delay/jitter/reorder via NFQUEUE at the receiver",
            "install iptables; kernel needs CONFIG_NETFILTER_XT_TARGET_NFQUEUE + \
             CONFIG_NETFILTER_NETLINK_QUEUE (else delay faults need netem)",
        ));
        checks.push(line(
            "tbf",
            caps.tbf,
            false,
            "rate limits via tbf",
            "rate limits unavailable: kernel needs CONFIG_NET_SCH_TBF",
        ));
        // Which backend each fault kind gets here (what runs will report).
        for (kind, backend) in crate::backend::backend_summary(&caps) {
            checks.push(Check {
                name: kind,
                ok: !backend.starts_with("unsupported"),
                basic: false,
                detail: format!("served by {backend}"),
            });
        }
    }
    let disk_full = if privileged {
        crate::disk::probe_disk_full(&crate::journal::state_dir(), &run.netns_prefix())
    } else {
        Err("not attempted: privileges are missing (see above)".into())
    };
    checks.push(Check {
        name: "disk-full",
        ok: disk_full.is_ok(),
        basic: false,
        detail: disk_full.unwrap_or_else(|why| why),
    });
    let device_mapper = if crate::disk::has_device_mapper() {
        "device-mapper present (not used)"
    } else {
        "device-mapper absent (not needed)"
    };
    let fsync_faults = match crate::disk::block_faults_unavailable() {
        Some(why) => Err(format!(
            "unavailable (scenarios with them are skipped): this machine lacks {why}; \
             {device_mapper}"
        )),
        None if privileged => {
            crate::fusedisk::probe(&crate::journal::state_dir(), &run.netns_prefix())
                .map(|done| format!("{done}; {device_mapper}"))
        }
        None => Err("not attempted: privileges are missing (see above)".into()),
    };
    checks.push(Check {
        name: "fsync-error, disk-slow",
        ok: fsync_faults.is_ok(),
        basic: false,
        detail: fsync_faults.unwrap_or_else(|why| why),
    });
    let (freezer, detail) = cgroup_freezer();
    checks.push(Check {
        name: "cgroup freezer",
        ok: freezer,
        basic: false,
        detail,
    });
    checks
}
