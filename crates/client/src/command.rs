//! The typed `splitnode` command line: everything the lab, the benches and
//! the node tests pass to a node, turned into argv and environment in one
//! place. The log level is a required field and always travels in
//! [`LOG_ENV`], the variable splitnode reads.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable splitnode reads its log filter from (tracing
/// env-filter syntax; splitnode's default is `info`).
pub const LOG_ENV: &str = "SPLITNODE_LOG";

/// Another voter as a node reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's node name.
    pub name: String,
    /// Its peer address (UDP heartbeats, TCP replication).
    pub peer: SocketAddr,
    /// Its HTTP client address, for leader hints.
    pub client: SocketAddr,
}

/// How to start one `splitnode`. Optional fields left `None` are not passed
/// (splitnode's own defaults or profile apply).
#[derive(Debug, Clone, PartialEq)]
pub struct SplitnodeCommand {
    /// The executable.
    pub binary: PathBuf,
    /// This node's name.
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Address for peer traffic.
    pub listen_peer: SocketAddr,
    /// Address of the HTTP client API.
    pub listen_client: SocketAddr,
    /// Data directory (log, meta record, snapshot, `events.jsonl`).
    pub data_dir: PathBuf,
    /// Log filter, passed as [`LOG_ENV`] (e.g. `warn`, `info,node=debug`).
    pub log_level: String,
    /// The other voters.
    pub peers: Vec<Peer>,
    /// Consensus mode (`safe`, `timeout-failover`, ...).
    pub mode: Option<String>,
    /// Timing profile (`fast`, `default`).
    pub profile: Option<String>,
    /// Heartbeat interval override.
    pub heartbeat_ms: Option<u64>,
    /// Election timeout range override `(min, max)`.
    pub election_timeout_ms: Option<(u64, u64)>,
    /// How long a client request waits before 504.
    pub client_timeout_ms: Option<u64>,
    /// First start of a new cluster (`--bootstrap`).
    pub bootstrap: bool,
    /// Test hook: offset of the node's local clock.
    pub test_clock_offset_ms: Option<i64>,
    /// Test hook: rate of the node's local clock.
    pub test_clock_rate: Option<f64>,
    /// Cluster key file: the node MACs its peer frames and refuses unkeyed ones.
    pub cluster_key_file: Option<PathBuf>,
    /// Bearer token file: the node's client API answers 401 without the token.
    pub client_token_file: Option<PathBuf>,
    /// Further flags, passed last.
    pub extra: Vec<String>,
}

impl SplitnodeCommand {
    /// A command with the required fields and nothing optional set.
    pub fn new(
        binary: impl Into<PathBuf>,
        id: impl Into<String>,
        cluster: impl Into<String>,
        listen: (SocketAddr, SocketAddr),
        data_dir: impl Into<PathBuf>,
        log_level: impl Into<String>,
    ) -> SplitnodeCommand {
        SplitnodeCommand {
            binary: binary.into(),
            id: id.into(),
            cluster: cluster.into(),
            listen_peer: listen.0,
            listen_client: listen.1,
            data_dir: data_dir.into(),
            log_level: log_level.into(),
            peers: Vec::new(),
            mode: None,
            profile: None,
            heartbeat_ms: None,
            election_timeout_ms: None,
            client_timeout_ms: None,
            bootstrap: false,
            test_clock_offset_ms: None,
            test_clock_rate: None,
            cluster_key_file: None,
            client_token_file: None,
            extra: Vec::new(),
        }
    }

    /// The arguments after the program name.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--id".into(),
            self.id.clone(),
            "--cluster".into(),
            self.cluster.clone(),
            "--listen-peer".into(),
            self.listen_peer.to_string(),
            "--listen-client".into(),
            self.listen_client.to_string(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
        ];
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{name}"));
                args.push(value);
            }
        };
        flag("mode", self.mode.clone());
        flag("profile", self.profile.clone());
        flag("heartbeat-ms", self.heartbeat_ms.map(|ms| ms.to_string()));
        let (min, max) = self.election_timeout_ms.unzip();
        flag("election-timeout-min-ms", min.map(|ms| ms.to_string()));
        flag("election-timeout-max-ms", max.map(|ms| ms.to_string()));
        flag(
            "client-timeout-ms",
            self.client_timeout_ms.map(|ms| ms.to_string()),
        );
        let path = |path: &Option<PathBuf>| path.as_ref().map(|path| path.display().to_string());
        flag("cluster-key-file", path(&self.cluster_key_file));
        flag("client-token-file", path(&self.client_token_file));
        if self.bootstrap {
            args.push("--bootstrap".into());
        }
        for peer in &self.peers {
            args.push("--peer".into());
            args.push(format!("{}={}", peer.name, peer.peer));
            args.push("--peer-client".into());
            args.push(format!("{}={}", peer.name, peer.client));
        }
        // `=` form: a negative offset must not read as a flag.
        if let Some(offset) = self.test_clock_offset_ms {
            args.push(format!("--test-clock-offset-ms={offset}"));
        }
        if let Some(rate) = self.test_clock_rate {
            args.push(format!("--test-clock-rate={rate}"));
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The environment to add to the node's (the log level), in the form
    /// `std::process::Command` and netlab's `ProcessSpec` take.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        vec![log_env(&self.log_level)]
    }

    /// A `std::process::Command` with program, arguments and environment
    /// set (stdio left to the caller).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.args(self.args()).envs(self.env());
        command
    }
}

/// Makes sure a cluster key file exists at `path`: if none is there, writes
/// 32 random bytes from the OS as hex (owner-only, created exclusively). The
/// lab gives every run its own key this way; restarts reuse it.
///
/// # Errors
/// No randomness, or the file cannot be created or written.
pub fn ensure_cluster_key(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| std::io::Error::other(error.to_string()))?;
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{hex}")
}

/// The environment entry that sets a node's log filter, for callers that
/// start splitnode with hand-made arguments (e.g. `--config FILE`).
pub fn log_env(level: &str) -> (OsString, OsString) {
    (LOG_ENV.into(), level.into())
}

/// Finds `splitnode`: `$SPLITNODE_BIN`, else next to `exe` or one directory
/// up (bench and test executables live in `target/<profile>/deps/`).
pub fn find_splitnode(exe: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPLITNODE_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("splitnode"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn minimal_command_line() {
        let command = SplitnodeCommand::new(
            "/bin/splitnode",
            "n1",
            "c",
            (addr("10.0.0.1:7100"), addr("10.0.0.1:7000")),
            "/data/n1",
            "warn",
        );
        assert_eq!(
            command.args().join(" "),
            "--id n1 --cluster c --listen-peer 10.0.0.1:7100 --listen-client 10.0.0.1:7000 --data-dir /data/n1"
        );
        assert_eq!(command.env(), [("SPLITNODE_LOG".into(), "warn".into())]);
        let std = command.command();
        assert_eq!(std.get_program(), "/bin/splitnode");
        let envs: Vec<_> = std.get_envs().collect();
        assert_eq!(envs, [("SPLITNODE_LOG".as_ref(), Some("warn".as_ref()))]);
    }

    #[test]
    fn every_option_in_order() {
        let mut command = SplitnodeCommand::new(
            "splitnode",
            "n1",
            "c",
            (addr("10.0.0.1:7100"), addr("10.0.0.1:7000")),
            "/d",
            "info",
        );
        command.peers.push(Peer {
            name: "n2".into(),
            peer: addr("10.0.0.2:7100"),
            client: addr("10.0.0.2:7000"),
        });
        command.mode = Some("safe".into());
        command.profile = Some("fast".into());
        command.heartbeat_ms = Some(50);
        command.election_timeout_ms = Some((250, 500));
        command.client_timeout_ms = Some(1000);
        command.bootstrap = true;
        command.test_clock_offset_ms = Some(-20);
        command.test_clock_rate = Some(1.5);
        command.extra = vec!["--join-empty".into()];
        assert_eq!(
            command.args()[10..].join(" "),
            "--mode safe --profile fast --heartbeat-ms 50 --election-timeout-min-ms 250 \
             --election-timeout-max-ms 500 --client-timeout-ms 1000 --bootstrap \
             --peer n2=10.0.0.2:7100 --peer-client n2=10.0.0.2:7000 \
             --test-clock-offset-ms=-20 --test-clock-rate=1.5 --join-empty"
        );
    }
}
