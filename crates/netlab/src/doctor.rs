//! Capability probing and `splitlab doctor`. Every probe runs inside a lab
//! namespace (a scratch `sl-<run>-probe` for doctor, the control namespace at
//! bring-up), never in the host's.

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
    let qdisc = |args: &[&str]| {
        let mut add: Vec<String> = ["qdisc", "add", "dev", "lo", "root"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        add.extend(args.iter().map(|s| s.to_string()));
        let ok = run_in(netns, "tc", &add, "").is_ok();
        if ok {
            let del: Vec<String> = ["qdisc", "del", "dev", "lo", "root"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let _ = run_in(netns, "tc", &del, "");
        }
        ok
    };
    std::thread::scope(|scope| {
        let numgen = scope.spawn(|| {
            nft(
                "sl_probe_numgen",
                "chain c { type filter hook input priority 0; policy accept; numgen random mod 100 < 1 drop; }",
            )
        });
        let dup = scope.spawn(|| {
            nft(
                "sl_probe_dup",
                "chain c { type filter hook output priority 0; policy accept; ip daddr 127.0.0.9 dup to 127.0.0.9; }",
            )
        });
        let mangle = scope.spawn(|| {
            nft(
                "sl_probe_mangle",
                "chain c { type filter hook output priority 0; policy accept; ip daddr 127.0.0.9 @ih,0,8 set 0xab; }",
            )
        });
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

/// Runs every check. Creates and removes a scratch namespace.
pub fn run_doctor() -> Vec<Check> {
    let mut checks = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    checks.push(Check {
        name: "root",
        ok: root,
        basic: true,
        detail: if root {
            "running as root".into()
        } else {
            "run as root (CAP_NET_ADMIN + CAP_SYS_ADMIN for namespaces, mounts and setns)".into()
        },
    });
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
    let made = if root {
        netns::create_netns(&scratch)
    } else {
        Err(std::io::Error::other("not root"))
    };
    checks.push(Check {
        name: "netns",
        ok: made.is_ok(),
        basic: true,
        detail: match &made {
            Ok(()) => format!("created and removed scratch namespace {scratch}"),
            Err(e) => format!("{e}: needs root and CONFIG_NET_NS"),
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
    }
    let (freezer, detail) = cgroup_freezer();
    checks.push(Check {
        name: "cgroup freezer",
        ok: freezer,
        basic: false,
        detail,
    });
    checks
}
