//! Running the userspace tools (`nft`, `iptables-restore`, `tc`) inside a lab
//! namespace, with stdin and a readable error.

use crate::netns::in_netns;
use std::io::{self, Write};
use std::process::{Command, Stdio};

/// Finds a tool in PATH or the sbin directories (root's PATH may lack sbin
/// when started from a non-login shell).
pub fn find_tool(name: &str) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(extra.into());
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `tool args` inside `netns` with `stdin`, failing with the tool's
/// stderr when it exits non-zero.
///
/// # Errors
/// Tool missing (`NotFound`, naming the Debian package), spawn failure, or a
/// non-zero exit (`Other`, with stderr).
pub fn run_in(netns: &str, tool: &str, args: &[String], stdin: &str) -> io::Result<String> {
    let path = find_tool(tool).ok_or_else(|| {
        let package = match tool {
            "nft" => "nftables",
            "iptables" | "iptables-restore" => "iptables",
            _ => "iproute2",
        };
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{tool} not found: install the Debian package {package} (scripts/setup.sh)"),
        )
    })?;
    let mut command = Command::new(&path);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = in_netns(netns, move || command.spawn())??;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{tool} {} in {netns} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
