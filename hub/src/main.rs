//! The `votehub` command: parses configuration, opens the data directory,
//! and hands a bound listener to `votehub::run`. Nothing else happens here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use votehub::data_dir;
use votehub::launch::{self, Settings};

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
    Serve(ServeArgs),
    /// Measure what a hub carries: fan-out latency, idle memory, ballot intake.
    Bench(bench::BenchArgs),
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
    #[arg(long, env = "VOTEHUB_MAX_CONNECTIONS", default_value_t = votehub::server::DEFAULT_MAX_CONNECTIONS)]
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
        Command::Bench(args) => {
            let json = args.json;
            match runtime.block_on(bench::run(args)) {
                Ok(report) => {
                    bench::print(&report, json);
                    if report.exact && report.errors == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(message) => {
                    eprintln!("votehub bench: {message}");
                    ExitCode::from(USAGE)
                }
            }
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let mut settings = Settings::new(args.bind, args.data.unwrap_or_else(data_dir::default_dir));
    settings.admin_token = args.admin_token;
    settings.allow_origins = args.allow_origins;
    settings.max_connections = args.max_connections;
    let running = launch::start(settings).await.map_err(|e| e.to_string())?;
    if running.token_created {
        eprintln!(
            "votehub: admin token (shown once, kept in {}): {}",
            running.data.join(data_dir::TOKEN_FILE).display(),
            running.admin_token
        );
    }
    tokio::spawn(stop_on_signal(running.shutdown_token()));
    tracing::info!(data = %running.data.display(), "listening on http://{}", running.addr);
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
