//! The `votehub` command: parses configuration, opens the data directory,
//! and hands a bound listener to `votehub::run`. Nothing else happens here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use votehub::{Hub, Limits, ServerConfig, SqliteStore, data_dir};

#[derive(Parser)]
#[command(name = "votehub", version, about = "Live voting hub for assemblies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub without a window (servers, CI, benchmarks).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address and port to listen on; 0.0.0.0 makes the hub reachable from the LAN.
    #[arg(long, env = "VOTEHUB_BIND", default_value = "0.0.0.0:8765")]
    bind: SocketAddr,
    /// Data directory (database, admin token). Default: the platform data dir.
    #[arg(long, env = "VOTEHUB_DATA")]
    data: Option<PathBuf>,
    /// Admin token for moderator calls. Default: generated at first start and kept in the data dir.
    #[arg(long, env = "VOTEHUB_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Extra browser origin allowed to open /live (repeatable).
    #[arg(
        long = "allow-origin",
        env = "VOTEHUB_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Open connections at most (HTTP and live); keep below the file-descriptor limit.
    #[arg(long, env = "VOTEHUB_MAX_CONNECTIONS", default_value_t = 16_384)]
    max_connections: usize,
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

async fn serve(args: ServeArgs) -> Result<(), String> {
    // Bind first: a port in use must not leave a data directory behind.
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let data = args.data.unwrap_or_else(data_dir::default_dir);
    let store = SqliteStore::open(&data).map_err(|e| e.to_string())?;
    let admin_token = match args.admin_token {
        Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
        Some(_) => return Err("the admin token must not be empty".into()),
        None => {
            let (token, made) = data_dir::load_or_create_token(&data).map_err(|e| e.to_string())?;
            if made {
                eprintln!(
                    "votehub: admin token (shown once, kept in {}): {token}",
                    data.join(data_dir::TOKEN_FILE).display()
                );
            }
            token
        }
    };
    let hub = Hub::open(store, Limits::default()).map_err(|e| e.to_string())?;
    let mut config = ServerConfig::new(admin_token);
    config.live.allow_origins = args.allow_origins;
    config.max_connections = args.max_connections;

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(data = %data.display(), "listening on http://{addr}");
    let served = votehub::run(listener, hub.clone(), config, shutdown).await;
    // Queued ballots are written before the process ends.
    hub.shutdown().await;
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
