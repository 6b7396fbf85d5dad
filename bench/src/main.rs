//! `votehub-bench`: a capacity benchmark an organiser can point at any hub
//! that speaks votehub's protocol (votehub, or the seed) before an
//! assembly. Only loopback or LAN addresses are accepted as targets.
//!
//! - `fanout`: N subscribers, ballots at a fixed rate: latency to every
//!   screen, and every subscriber must end on the exact tally;
//! - `idle`: N subscribers held: the hub's memory per connection;
//! - `ingest`: C clients send ballots as fast as they are acknowledged;
//! - `phones`: a room of phones on a real (or rehearsed) venue network,
//!   each following the tally and voting with retries: every answered
//!   ballot counted once, every screen exact, latency and reconnections.

mod api;
mod phones;
mod report;
mod scenarios;
mod server;
mod stats;
mod subscriber;
mod target;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::api::{Api, OnRoll};
use crate::scenarios::Run;
use crate::server::{ServerProcess, Servers};
use crate::target::Target;

#[derive(Parser)]
#[command(
    name = "votehub-bench",
    version,
    about = "Measure what a hub carries: fan-out latency, idle memory, ballot intake"
)]
struct Args {
    /// The hub to measure: loopback or LAN addresses only. Repeated: the
    /// nodes of a cluster, over which subscribers and ballots are spread
    /// (subscriber i and ballot k on node i mod n, k mod n); sessions and
    /// the roll are made on the first.
    #[arg(long = "target", default_value = "http://127.0.0.1:8765")]
    targets: Vec<String>,
    /// Admin token of the target (to create the session).
    #[arg(
        long,
        env = "VOTEHUB_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    admin_token: String,
    /// PID of the hub, to read its CPU time and memory (same machine only);
    /// repeated for the nodes of a cluster (summed).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Stop and fail after this many seconds, whatever the scenario.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Receive buffer of each subscriber socket, in bytes. Small, like the
    /// window of a phone that reads its one socket promptly: a load
    /// generator reading thousands of sockets on one core would otherwise
    /// let stale tallies pile up in its own kernel buffers and measure that.
    #[arg(long, default_value_t = 4096)]
    rcvbuf: u32,
    /// Vote in an election of this many candidates (one ticked per
    /// ballot, each in turn) instead of on a motion; every subscriber must
    /// end on the exact count of every candidate.
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..=100))]
    election: Option<u16>,
    /// Vote on the roll: the bench registers one member per ballot (weights
    /// 1, 2 and 3 in turn) and each casts one; subscribers must end on the
    /// weighed split.
    #[arg(long, conflicts_with = "election")]
    roll: bool,
    /// Vote on the roll in a secret session (implies --roll): subscribers
    /// must end on the number of ballots, every choice masked.
    #[arg(long, conflicts_with = "election")]
    secret: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Clone)]
enum Scenario {
    /// N subscribers, ballots at a rate: latency to every screen.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Ballots per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 1000)]
        ballots: u64,
        /// Several generator processes, for more screens than one process
        /// may hold sockets: the session they all follow (made beforehand)…
        #[arg(long, requires = "start_at")]
        session: Option<String>,
        /// … when ballot 1 is sent, in milliseconds since the Unix epoch
        /// (ballot k at start + (k-1)/rate: latency counts from there)…
        #[arg(long, requires = "session")]
        start_at: Option<u64>,
        /// … and whether this process only watches (another one sends).
        #[arg(long, requires = "session")]
        watch: bool,
    },
    /// N subscribers held idle: server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Seconds to hold them before measuring.
        #[arg(long, default_value_t = 3)]
        hold: u64,
    },
    /// A room of phones, each following the tally on /live and voting
    /// (with retries, same ballot_id) over its own connections: for a
    /// lossy network (votehub-room, scripts/rehearse, or the venue's own).
    Phones {
        #[arg(long, default_value_t = 500)]
        phones: usize,
        /// The first ballots are spread over this many seconds.
        #[arg(long, default_value_t = 20)]
        window: u64,
        /// Each phone changes its mind once, after its first answer.
        #[arg(long)]
        revote: bool,
        /// A ballot unanswered this long (seconds) is reported failed.
        #[arg(long, default_value_t = 60)]
        patience: u64,
    },
    /// C clients sending ballots as fast as they are acknowledged.
    Ingest {
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 50_000)]
        ballots: u64,
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
    },
}

/// Exit code for arguments or a target that cannot be measured.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("votehub-bench: cannot start the runtime: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let json = args.json;
    match runtime.block_on(run(args)) {
        Ok(report) => {
            report.print(json);
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(message) => {
            eprintln!("votehub-bench: {message}");
            ExitCode::from(USAGE)
        }
    }
}

/// What a run found: capacity figures, or a room of phones.
enum Outcome {
    Capacity(report::Report),
    Phones(phones::PhonesReport),
}

impl Outcome {
    fn print(&self, json: bool) {
        match self {
            Outcome::Capacity(r) => r.print(json),
            Outcome::Phones(r) => r.print(json),
        }
    }

    fn passed(&self) -> bool {
        match self {
            Outcome::Capacity(r) => r.passed(),
            Outcome::Phones(r) => r.passed(),
        }
    }
}

async fn run(args: Args) -> Result<Outcome, String> {
    let limit = Duration::from_secs(args.timeout);
    let mut targets = Vec::with_capacity(args.targets.len());
    for t in &args.targets {
        targets.push(Arc::new(Target::parse(t).await?));
    }
    let targets = Arc::new(targets);
    let target = targets
        .first()
        .cloned()
        .ok_or("give at least one --target")?;
    let http = reqwest::Client::builder()
        .timeout(limit)
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| e.to_string())?;
    let mut api = Api {
        http,
        target: target.clone(),
        nodes: targets.clone(),
        token: args.admin_token,
        election: args.election,
        roll: None,
    };
    if args.roll || args.secret {
        let members = match args.scenario {
            Scenario::Fanout { ballots, .. } | Scenario::Ingest { ballots, .. } => ballots,
            Scenario::Idle { .. } | Scenario::Phones { .. } => {
                return Err("--roll and --secret are for fanout and ingest".into());
            }
        };
        // Registered before anything is measured.
        let codes = tokio::time::timeout(limit, api.register_roll(members))
            .await
            .map_err(|_| format!("gave up after {} s", args.timeout))??;
        api.roll = Some(OnRoll {
            codes: Arc::new(codes),
            secret: args.secret,
        });
    }
    let run = Run {
        api,
        target,
        server: (!args.server_pids.is_empty()).then(|| {
            Servers(
                args.server_pids
                    .iter()
                    .copied()
                    .map(ServerProcess)
                    .collect(),
            )
        }),
        nodes: targets,
        rcvbuf: args.rcvbuf,
        deadline: Instant::now() + limit,
    };
    let scenario = async {
        match args.scenario {
            Scenario::Fanout {
                subscribers,
                rate,
                ballots,
                session,
                start_at,
                watch,
            } => {
                let shared = session
                    .zip(start_at)
                    .map(|(session, start_at)| scenarios::Shared {
                        session,
                        start_at,
                        watch,
                    });
                scenarios::fanout(&run, subscribers, rate, ballots, shared)
                    .await
                    .map(Outcome::Capacity)
            }
            Scenario::Idle { subscribers, hold } => scenarios::idle(&run, subscribers, hold)
                .await
                .map(Outcome::Capacity),
            Scenario::Ingest {
                clients,
                ballots,
                subscribers,
            } => scenarios::ingest(&run, clients, ballots, subscribers)
                .await
                .map(Outcome::Capacity),
            Scenario::Phones {
                phones,
                window,
                revote,
                patience,
            } => {
                let plan = phones::Plan {
                    phones,
                    window: Duration::from_secs(window.min(3600)),
                    revote,
                    patience: Duration::from_secs(patience.min(3600)),
                };
                phones::run(&run.api, plan, run.deadline)
                    .await
                    .map(Outcome::Phones)
            }
        }
    };
    tokio::time::timeout(limit, scenario)
        .await
        .map_err(|_| format!("gave up after {} s", args.timeout))?
}
