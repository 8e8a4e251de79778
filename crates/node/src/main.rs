//! `splitnode`: flags / TOML → validated config → tokio runtime → `node::run`.
//!
//! Exit codes: 0 after a graceful stop (SIGTERM or SIGINT), 1 on a runtime
//! failure (storage, bind, consensus config), 2 on an invalid configuration.
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use node::config::{self, Flags};

fn main() -> ExitCode {
    // Test builds only: arm the crash points named in FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _failpoints = node::failpoints::setup();
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
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(config: config::NodeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
