//! `votehub-room`: a venue's network inside this machine, to rehearse the
//! day and to test on. `up` builds the room (the hub's namespace, the
//! phones', an access point between them that loses, delays, limits and
//! cuts), prints where everything is as one JSON line, then takes commands
//! on its standard input, one per line:
//!
//! - `loss PCT` — lose PCT % of the packets each way from now on;
//! - `cut on`, `cut off`, `cut SECONDS` — cut the link silently (a cut of
//!   SECONDS answers once the link is back);
//! - `exit`.
//!
//! Each command is answered `ok` or `error: …`. The room is removed at
//! `exit`, when standard input closes (the test or script that started it
//! ended, however it ended), on SIGINT or SIGTERM, and after
//! `--max-seconds` whatever happens. Needs root (network namespaces).

mod net;
mod relay;

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use net::{Room, Shape};

#[derive(Parser)]
#[command(
    name = "votehub-room",
    version,
    about = "A venue's network inside this machine: loss, delay, jitter, rate and cuts between a hub and its phones"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// A room lives at most this long, whatever it is asked.
const LONGEST: u64 = 3600;

#[derive(Subcommand)]
enum Command {
    /// Build a room, print its layout, take commands on stdin.
    Up {
        /// Packets lost each way, in percent.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Delay of every packet, each way, in milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Up to this much more or less delay, uniformly.
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Rate each way, kbit/s (0: unlimited).
        #[arg(long, default_value_t = 0)]
        rate_kbit: u64,
        /// Removed after this many seconds, whatever happens.
        #[arg(long, default_value_t = 900)]
        max_seconds: u64,
    },
    /// Remove rooms left behind by runs that were killed.
    Clean,
    /// The delay relay (started by `up` inside the access point).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        dev: String,
        #[arg(long)]
        delay_ms: u64,
        #[arg(long)]
        jitter_ms: u64,
        #[arg(long)]
        max_seconds: u64,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Up {
            loss,
            delay_ms,
            jitter_ms,
            rate_kbit,
            max_seconds,
        } => {
            let shape = Shape {
                loss_pct: loss,
                delay_ms,
                jitter_ms,
                rate_kbit,
            };
            match up(shape, max_seconds.min(LONGEST)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("votehub-room: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Clean => {
            println!("removed {} rooms", net::remove_stale());
            ExitCode::SUCCESS
        }
        Command::Relay {
            dev,
            delay_ms,
            jitter_ms,
            max_seconds,
        } => {
            let until = Instant::now() + Duration::from_secs(max_seconds.min(LONGEST));
            match relay::run(
                &dev,
                Duration::from_millis(delay_ms),
                Duration::from_millis(jitter_ms),
                until,
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("votehub-room relay: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

enum Event {
    Line(String),
    Eof,
    Signal,
}

fn up(shape: Shape, max_seconds: u64) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(max_seconds);
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    // Signals first: a SIGTERM while the room is being built still removes it.
    {
        let tx = tx.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    // The room itself is Linux's (namespaces); the signals
                    // are Unix's, and Ctrl-C elsewhere.
                    #[cfg(unix)]
                    {
                        use tokio::signal::unix::{SignalKind, signal};
                        let (Ok(mut term), Ok(mut int)) = (
                            signal(SignalKind::terminate()),
                            signal(SignalKind::interrupt()),
                        ) else {
                            return;
                        };
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = int.recv() => {}
                        }
                    }
                    #[cfg(not(unix))]
                    if tokio::signal::ctrl_c().await.is_err() {
                        return;
                    }
                    let _ = tx.send(Event::Signal);
                });
            })
            .map_err(|e| e.to_string())?;
    }
    let room = Room::build(shape, &exe, max_seconds)?;
    println!(
        "{}",
        serde_json::to_string(&room.layout).map_err(|e| e.to_string())?
    );
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Event::Line(l)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(Event::Eof);
        })
        .map_err(|e| e.to_string())?;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let event = match rx.recv_timeout(left) {
            Ok(e) => e,
            Err(_) => {
                eprintln!("votehub-room: {max_seconds} s are over: the room goes");
                break;
            }
        };
        match event {
            Event::Eof | Event::Signal => break,
            Event::Line(line) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                let answer = match words.as_slice() {
                    ["exit"] => break,
                    ["loss", pct] => pct
                        .parse::<f64>()
                        .map_err(|_| format!("{pct}: not a percentage"))
                        .and_then(|p| room.set_loss(p)),
                    ["cut", "on"] => room.set_cut(true),
                    ["cut", "off"] => room.set_cut(false),
                    ["cut", s] => s
                        .parse::<f64>()
                        .ok()
                        .filter(|s| (0.0..=600.0).contains(s))
                        .ok_or_else(|| format!("{s}: seconds, at most 600"))
                        .and_then(|s| room.cut_for(Duration::from_secs_f64(s))),
                    [] => continue,
                    _ => Err(format!("unknown command: {line}")),
                };
                match answer {
                    Ok(()) => println!("ok"),
                    Err(e) => println!("error: {e}"),
                }
            }
        }
    }
    drop(room);
    Ok(())
}
