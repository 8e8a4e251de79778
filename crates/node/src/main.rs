//! `splitnode`: flags / TOML → validated config → tokio runtime → `node::run`.
//!
//! Exit codes: 0 after a graceful stop (SIGTERM or SIGINT), 1 on a runtime
//! failure (storage refused at start, bind, consensus config), 2 on an
//! invalid configuration, 74 ([`node::FAIL_STOP_EXIT_CODE`]) on a fail-stop
//! (a write or fsync to the data directory failed while running).
//!
//! `splitnode forge ...` is the lab's rogue sender (see `node::forge`), not
//! a node.
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use node::config::{self, Flags};

fn main() -> ExitCode {
    // Test builds only: arm the crash points named in FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _failpoints = node::failpoints::setup();
    if std::env::args().nth(1).as_deref() == Some("forge") {
        return node::forge::main(std::env::args().skip(1));
    }
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPLITNODE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match config::load(&flags) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("Error: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // The consensus core's own checks (cluster size, timing relations) are
    // configuration errors too; node::run repeats them and logs warnings.
    if let Err(error) = config.consensus_config().validate() {
        eprintln!("Error: invalid configuration: {error}");
        return ExitCode::from(2);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<node::NodeError>() {
            Some(stopped) if stopped.is_fail_stop() => {
                tracing::error!(
                    exit_code = node::FAIL_STOP_EXIT_CODE,
                    "fail-stop: {stopped}; what reached the disk is unknown, so the node stops \
                     instead of retrying; restart it once the disk is healthy (recovery drops an \
                     incomplete last record and it catches up from the leader)"
                );
                ExitCode::from(node::FAIL_STOP_EXIT_CODE)
            }
            _ => {
                eprintln!("Error: {error:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn run(config: config::NodeConfig) -> anyhow::Result<()> {
    // One thread: a write's path (HTTP task -> driver -> peer tasks -> reply)
    // then has no cross-thread wake-ups; see driver.rs for where the driver
    // yields around its blocking storage calls.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal().await?;
        node::run(config, shutdown)
            .await
            .context("splitnode stopped with an error")
    })
}

/// Resolves on SIGTERM or SIGINT. Installed before the node starts so an
/// early signal is not missed.
async fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            biased;
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
}
