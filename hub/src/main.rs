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
    /// Check an audit bundle offline (exit 0: all holds; 1: a finding per
    /// line; 2: unreadable input).
    Verify(VerifyArgs),
    /// Copy the live data (ballots, roll, logs, signing key, admin token)
    /// into a new directory, while the hub runs; `serve --data DIR` on the
    /// copy starts where it was taken.
    Backup(BackupArgs),
    /// Copy a laptop's data directory (SQLite) into an empty PostgreSQL
    /// database, for hubs that share it (docs/CLUSTER.md).
    Migrate(MigrateArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The data directory to copy: sqlite:DIR (or DIR).
    #[arg(long)]
    from: String,
    /// The empty database: postgres://…
    #[arg(long, env = "VOTEHUB_STORE", hide_env_values = true)]
    to: String,
}

#[derive(clap::Args)]
struct BackupArgs {
    /// Where the copy goes: a new or empty directory.
    dir: std::path::PathBuf,
    /// The hub's data directory. Default: the platform data dir.
    #[arg(long, env = "VOTEHUB_DATA")]
    data: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The audit bundle (GET /api/sessions/{id}/audit).
    file: Option<std::path::PathBuf>,
    /// The public key the organiser published (hex): the bundle must be
    /// signed by it.
    #[arg(long)]
    key: Option<String>,
    /// A voter's receipt (a file, or the JSON itself), checked against
    /// --bundle.
    #[arg(long, requires = "bundle")]
    receipt: Option<String>,
    /// The bundle a receipt is checked against.
    #[arg(long)]
    bundle: Option<std::path::PathBuf>,
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
    let cli = match cli.command {
        Command::Verify(args) => return verify(args),
        Command::Backup(args) => return backup(args),
        Command::Migrate(args) => return migrate(args),
        serve => serve,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(votehub::config::log_filter())
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
    match cli {
        Command::Serve(args) => match runtime.block_on(serve(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("votehub: {message}");
                ExitCode::from(USAGE)
            }
        },
        Command::Verify(_) | Command::Backup(_) | Command::Migrate(_) => ExitCode::from(USAGE),
    }
}

/// `votehub migrate --from sqlite:DIR --to postgres://…`.
fn migrate(args: MigrateArgs) -> ExitCode {
    let dir = std::path::PathBuf::from(args.from.strip_prefix("sqlite:").unwrap_or(&args.from));
    if !matches!(
        args.to.parse::<launch::StoreChoice>(),
        Ok(launch::StoreChoice::Postgres(_))
    ) {
        eprintln!("votehub: --to must be a postgres://… URL");
        return ExitCode::from(USAGE);
    }
    match votehub::store::migrate::sqlite_to_postgres(&dir, &args.to) {
        Ok(m) => {
            let rows: Vec<String> = m
                .tables
                .iter()
                .map(|(table, n)| format!("{n} {table}"))
                .collect();
            println!(
                "votehub: copied {} into {}: {}",
                dir.display(),
                votehub::store::postgres::url_without_password(&args.to),
                rows.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("votehub: cannot migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `votehub backup DIR`: a consistent copy of the live data.
fn backup(args: BackupArgs) -> ExitCode {
    let data = args.data.unwrap_or_else(data_dir::default_dir);
    match data_dir::backup(&data, &args.dir) {
        Ok(b) => {
            println!(
                "votehub: backed up {} sessions and {} ballots ({} bytes, with {}) from {} to {}",
                b.copied.sessions,
                b.copied.ballots,
                b.copied.bytes,
                if b.files.is_empty() {
                    "no key or token".to_owned()
                } else {
                    b.files.join(" and ")
                },
                data.display(),
                b.dest.display()
            );
            println!(
                "votehub: to carry on from it: votehub serve --data {}",
                b.dest.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("votehub: backup failed, nothing kept: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `votehub verify`: reads the files and prints what the library finds.
fn verify(args: VerifyArgs) -> ExitCode {
    use votehub::core::audit::verify;
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let unreadable = |message: String| {
        eprintln!("votehub verify: {message}");
        ExitCode::from(USAGE)
    };
    let key = match args.key.as_deref().map(|k| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(k.trim(), &mut out).map(|()| out)
    }) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(_)) => return unreadable("--key is 64 hex digits".into()),
    };
    // A receipt is checked against a bundle that holds as a whole (its
    // signature, its tree, its count): a receipt found in a doctored file
    // proves nothing.
    let receipt = match &args.receipt {
        None => None,
        Some(receipt) => {
            let text = if receipt.trim_start().starts_with('{') {
                receipt.clone()
            } else {
                match std::fs::read_to_string(receipt) {
                    Ok(t) => t,
                    Err(e) => return unreadable(format!("cannot read {receipt}: {e}")),
                }
            };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(r) => Some(r),
                Err(e) => return unreadable(format!("the receipt is not JSON: {e}")),
            }
        }
    };
    let file = if receipt.is_some() {
        args.bundle.as_ref()
    } else {
        args.file.as_ref()
    };
    let Some(path) = file else {
        return unreadable(if receipt.is_some() {
            "--receipt needs --bundle".into()
        } else {
            "give the bundle to check (votehub verify FILE)".into()
        });
    };
    let bundle = match read(path).and_then(|b| verify::parse(&b)) {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    if let Some(receipt) = receipt {
        let (findings, _) = verify::verify(&bundle, key.as_ref());
        let (lines, ok) = verify::check_receipt(&bundle, &receipt);
        for line in findings.iter().chain(&lines) {
            println!("{line}");
        }
        return if ok && findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (findings, summary) = verify::verify(&bundle, key.as_ref());
    if findings.is_empty() {
        println!(
            "ok: {} entries, {} ballots, result {}, signed by {}",
            summary.entries,
            summary.ballots,
            summary.result.map(|r| r.as_str()).unwrap_or("—"),
            bundle.head.public_key
        );
        ExitCode::SUCCESS
    } else {
        for finding in findings {
            println!("{finding}");
        }
        ExitCode::FAILURE
    }
}

async fn serve(args: HubArgs) -> Result<(), String> {
    let running = launch::start(args.settings())
        .await
        .map_err(|e| e.to_string())?;
    if running.token_created {
        eprintln!(
            "votehub: admin token (shown once, kept in {}): {}",
            running.token_kept, running.admin_token
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
    // Windows has no SIGTERM: a console's Ctrl-C or Ctrl-Break, its window
    // closed, or the system shutting down.
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_shutdown};
        match (ctrl_break(), ctrl_close(), ctrl_shutdown()) {
            (Ok(mut brk), Ok(mut close), Ok(mut down)) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = brk.recv() => {}
                    _ = close.recv() => {}
                    _ = down.recv() => {}
                }
            }
            _ => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(any(unix, windows)))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
