//! The `votehub` command: parses configuration and hands it to `launch`.
//! Nothing else happens here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use votehub::config::HubArgs;
use votehub::{data_dir, launch};

/// mimalloc packs objects of one size together: the fan-out walks
/// thousands of connection outlets and socket registrations per tally, and
/// finds them on far fewer pages than with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "votehub", version, about = "Live voting hub for assemblies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub without a window (servers, CI, benchmarks).
    Serve(HubArgs),
}

/// Exit code for anything the organiser must fix before the hub can start.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "votehub: {} (see votehub --help)",
                line.trim_start_matches("error: ")
            );
            return ExitCode::from(USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("votehub: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => match runtime.block_on(serve(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("votehub: {message}");
                ExitCode::from(USAGE)
            }
        },
    }
}

async fn serve(args: HubArgs) -> Result<(), String> {
    let running = launch::start(args.settings())
        .await
        .map_err(|e| e.to_string())?;
    if running.token_created {
        eprintln!(
            "votehub: admin token (shown once, kept in {}): {}",
            running.data.join(data_dir::TOKEN_FILE).display(),
            running.admin_token
        );
    }
    tokio::spawn(stop_on_signal(running.shutdown_token()));
    let scheme = if running.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(data = %running.data.display(), "listening on {scheme}://{}", running.addr);
    for url in running.join_urls() {
        tracing::info!("participants open {url}");
    }
    let served = running.wait().await;
    tracing::info!("stopped");
    served.map_err(|e| format!("server failed: {e}"))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
