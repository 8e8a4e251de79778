//! Starting and signalling processes inside lab namespaces. A process is
//! spawned from a thread that has entered the namespace, so the child inherits
//! it without `pre_exec` (and without `unsafe`). Each child gets its own
//! process group, so a terminal Ctrl-C reaches only the orchestrator, which
//! then tears the lab down in order.

use crate::netns::in_netns;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Executable.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// File that receives stdout (appended; created if missing). `None`: /dev/null.
    pub stdout: Option<PathBuf>,
    /// File that receives stderr (appended; created if missing). `None`: /dev/null.
    pub stderr: Option<PathBuf>,
}

impl ProcessSpec {
    /// A spec with program and arguments.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> ProcessSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        ProcessSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..ProcessSpec::default()
        }
    }

    fn command(&self) -> io::Result<Command> {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        let sink = |path: &Option<PathBuf>| -> io::Result<Stdio> {
            match path {
                None => Ok(Stdio::null()),
                Some(p) => Ok(OpenOptions::new().create(true).append(true).open(p)?.into()),
            }
        };
        command.stdin(Stdio::null());
        command.stdout(sink(&self.stdout)?);
        command.stderr(sink(&self.stderr)?);
        command.process_group(0);
        Ok(command)
    }
}

/// Signals the lab sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessSignal {
    /// SIGKILL.
    Kill,
    /// SIGTERM.
    Term,
    /// SIGSTOP.
    Stop,
    /// SIGCONT.
    Cont,
}

impl ProcessSignal {
    /// The signal as a verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            ProcessSignal::Kill => "kill",
            ProcessSignal::Term => "terminate",
            ProcessSignal::Stop => "stop",
            ProcessSignal::Cont => "continue",
        }
    }

    fn nix(self) -> Signal {
        match self {
            ProcessSignal::Kill => Signal::SIGKILL,
            ProcessSignal::Term => Signal::SIGTERM,
            ProcessSignal::Stop => Signal::SIGSTOP,
            ProcessSignal::Cont => Signal::SIGCONT,
        }
    }
}

/// Spawns `spec` inside namespace `netns`.
///
/// # Errors
/// Namespace entry or spawn failures (with the program named).
pub fn spawn_in(netns: &str, spec: &ProcessSpec) -> io::Result<Child> {
    let mut command = spec.command()?;
    in_netns(netns, move || command.spawn())?.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("spawn {} in {netns}: {e}", spec.program.display()),
        )
    })
}

/// Spawns an already configured command inside `netns` (used for helpers that
/// need pipes).
///
/// # Errors
/// Namespace entry or spawn failures.
pub fn spawn_command_in(netns: &str, mut command: Command) -> io::Result<Child> {
    command.process_group(0);
    in_netns(netns, move || command.spawn())?
}

/// Sends a signal to a PID; "no such process" is not an error.
///
/// # Errors
/// Permission problems.
pub fn signal_pid(pid: u32, signal: ProcessSignal) -> io::Result<()> {
    match kill(Pid::from_raw(pid as i32), signal.nix()) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// The scheduler state letter of a process (`/proc/<pid>/stat` field 3:
/// `R`, `S`, `T` stopped, `Z` zombie, ...), `None` when it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the
    // state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// SIGTERM, then SIGKILL after `grace`, then reap.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = signal_pid(child.id(), ProcessSignal::Cont);
    let _ = signal_pid(child.id(), ProcessSignal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_of_a_running_and_a_missing_process() {
        let me = process_state(std::process::id()).unwrap();
        assert!(matches!(me, 'R' | 'S'), "{me}");
        assert_eq!(process_state(u32::MAX / 2), None);
    }
}
