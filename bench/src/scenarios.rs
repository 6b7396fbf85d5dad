//! The scenarios, one function each. Every loop is bounded in count and in
//! time (the caller's deadline).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::api::Api;
use crate::report::{Report, progress};
use crate::server::Servers;
use crate::stats::Stats;
use crate::subscriber;
use crate::target::Target;

/// Ballot requests in flight at once in `fanout` (the sender is open-loop).
const IN_FLIGHT: usize = 512;

/// What every scenario works with.
pub struct Run {
    pub api: Api,
    pub target: Arc<Target>,
    pub server: Option<Servers>,
    /// Every node: subscriber i connects to node i mod n.
    pub nodes: Arc<Vec<Arc<Target>>>,
    pub rcvbuf: u32,
    pub deadline: Instant,
}

impl Run {
    fn report(&self, scenario: &'static str) -> Report {
        Report {
            scenario,
            target: self.target.base.clone(),
            election: self.api.election,
            roll: self.api.roll.as_ref().map(|r| r.secret),
            ..Report::default()
        }
    }

    fn cpu_s(&self) -> Option<f64> {
        self.server.as_ref().and_then(Servers::cpu_s)
    }
}

/// N subscribers; ballots sent at a fixed rate; the latency from sending
/// ballot k to each subscriber seeing `votes_total >= k`, and every
/// subscriber must end on the exact final tally.
/// A fan-out measured by several generator processes together: they follow
/// one session, and ballot k is sent at `start_at + (k-1)/rate` by the one
/// that does not only watch.
pub struct Shared {
    pub session: String,
    /// Milliseconds since the Unix epoch.
    pub start_at: u64,
    pub watch: bool,
}

pub async fn fanout(
    run: &Run,
    subscribers: usize,
    rate: f64,
    ballots: u64,
    shared: Option<Shared>,
) -> Result<Report, String> {
    if !(rate > 0.0 && rate <= 100_000.0) {
        return Err("the rate is between 0 and 100000 ballots/s".into());
    }
    let mut report = run.report("fanout");
    report.subscribers = subscribers;
    report.ballots = ballots;
    report.rate = Some(rate);
    let session = match &shared {
        Some(shared) => shared.session.clone(),
        None => run.api.create_session("bench fanout").await?,
    };
    let stats = Arc::new(Stats::new(
        ballots,
        subscribers,
        run.api.election,
        run.api.expected_for(ballots),
    )?);
    let readers = subscriber::open(&run.nodes, &session, subscribers, run.rcvbuf, &stats).await?;
    // Let the initial tallies settle before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = match &shared {
        // The instant the shared start is, on this process's clock.
        Some(shared) => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_millis() as u64;
            let wait = Duration::from_millis(shared.start_at.saturating_sub(now_ms));
            if wait.is_zero() {
                return Err("--start-at passed before the subscribers were open".into());
            }
            Instant::now() + wait
        }
        None => Instant::now(),
    };
    tokio::time::sleep_until(t0.into()).await;
    let cpu0 = run.cpu_s();
    stats.counting.store(true, Ordering::Relaxed);
    if shared.as_ref().is_some_and(|s| s.watch) {
        // Another process sends: each ballot's latency counts from when it
        // is due.
        let period = Duration::from_secs_f64(1.0 / rate);
        for (k, sent) in stats.sent.iter().enumerate() {
            let due = (t0 + period.mul_f64(k as f64)).saturating_duration_since(stats.start);
            sent.store(due.as_nanos().max(1) as u64, Ordering::Relaxed);
        }
        report.exact = stats.converge(ballots, run.deadline).await;
        report.duration_s = t0.elapsed().as_secs_f64();
        report.delivered_messages = Some(stats.delivered.load(Ordering::Relaxed));
        report.latency_ms = stats.latency();
        report.errors = stats.errors();
        readers.stop().await;
        return Ok(report);
    }
    let bar = progress(ballots, "ballots");
    // The sender gets a thread and a runtime of its own: on a load
    // generator busy reading thousands of sockets, its requests and their
    // answers must not wait in line behind subscribers.
    let sending = {
        let (api, session, stats, bar) =
            (run.api.clone(), session.clone(), stats.clone(), bar.clone());
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(send_at_rate(api, session, stats, ballots, rate, t0, bar))
            })
            .map_err(|e| e.to_string())?
    };
    tokio::task::spawn_blocking(move || sending.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the ballot sender panicked".to_owned())??;
    bar.finish_and_clear();
    report.exact = stats.converge(ballots, run.deadline).await;
    report.duration_s = t0.elapsed().as_secs_f64();
    stats.counting.store(false, Ordering::Relaxed);
    let cpu1 = run.cpu_s();
    let delivered = stats.delivered.load(Ordering::Relaxed);
    report.delivered_messages = Some(delivered);
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        report.server_cpu_s = Some(b - a);
        if delivered > 0 {
            report.server_cpu_us_per_message = Some((b - a) * 1e6 / delivered as f64);
        }
    }
    report.latency_ms = stats.latency();
    report.ack_ms = stats.acks();
    report.errors = stats.errors();
    readers.stop().await;
    Ok(report)
}

/// Sends ballot k+1 at `t0 + k / rate`, whatever the answers' delays (an
/// open loop, as a room of people does), at most `IN_FLIGHT` at a time.
async fn send_at_rate(
    api: Api,
    session: String,
    stats: Arc<Stats>,
    ballots: u64,
    rate: f64,
    t0: Instant,
    bar: ProgressBar,
) -> Result<(), String> {
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .map_err(|e| e.to_string())?,
        ..api
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut requests = tokio::task::JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / rate);
    for k in 1..=ballots {
        tokio::time::sleep_until((t0 + period.mul_f64((k - 1) as f64)).into()).await;
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let sent_ns = stats.sending(k);
        let (api, session, stats) = (api.clone(), session.clone(), stats.clone());
        requests.spawn(async move {
            if api.vote(&session, k).await {
                stats.record_ack(sent_ns);
            } else {
                stats.error();
            }
            drop(permit);
        });
        bar.inc(1);
    }
    while requests.join_next().await.is_some() {}
    Ok(())
}

/// N subscribers held idle: the hub's memory per connection.
pub async fn idle(run: &Run, subscribers: usize, hold: u64) -> Result<Report, String> {
    let mut report = run.report("idle");
    report.subscribers = subscribers;
    let session = run.api.create_session("bench idle").await?;
    let before = run.server.as_ref().and_then(Servers::rss_kb);
    let stats = Arc::new(Stats::new(0, subscribers, None, 0)?);
    let t0 = Instant::now();
    let readers = subscriber::open(&run.nodes, &session, subscribers, run.rcvbuf, &stats).await?;
    tokio::time::sleep(Duration::from_secs(hold.min(60))).await;
    let after = run.server.as_ref().and_then(Servers::rss_kb);
    report.duration_s = t0.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (before, after) {
        report.server_kb_per_subscriber = Some((b - a) / subscribers.max(1) as f64);
    }
    report.errors = stats.errors();
    report.exact = report.errors == 0;
    readers.stop().await;
    Ok(report)
}

/// C clients sending ballots as fast as they are acknowledged, with S
/// subscribers watching.
pub async fn ingest(
    run: &Run,
    clients: usize,
    ballots: u64,
    subscribers: usize,
) -> Result<Report, String> {
    let mut report = run.report("ingest");
    report.subscribers = subscribers;
    report.ballots = ballots;
    report.clients = Some(clients);
    let session = run.api.create_session("bench ingest").await?;
    let stats = Arc::new(Stats::new(
        ballots,
        subscribers,
        run.api.election,
        run.api.expected_for(ballots),
    )?);
    let readers = subscriber::open(&run.nodes, &session, subscribers, run.rcvbuf, &stats).await?;
    let next = Arc::new(AtomicU64::new(1));
    let bar = progress(ballots, "ballots");
    let cpu0 = run.cpu_s();
    let t0 = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let (api, session, stats, next, bar) = (
            run.api.clone(),
            session.clone(),
            stats.clone(),
            next.clone(),
            bar.clone(),
        );
        senders.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k > ballots {
                    break;
                }
                let sent_ns = stats.sending(k);
                if api.vote(&session, k).await {
                    stats.record_ack(sent_ns);
                } else {
                    stats.error();
                }
                bar.inc(1);
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let acked = t0.elapsed().as_secs_f64();
    // What the server spent (every thread) while they were taken, per
    // ballot sent: with the rate, it tells a build that does more work
    // from one that waits longer (on the disk, say).
    if let (Some(a), Some(b)) = (cpu0, run.cpu_s()) {
        report.server_cpu_s = Some(b - a);
        report.server_cpu_us_per_ballot = Some((b - a) * 1e6 / ballots.max(1) as f64);
    }
    bar.finish_and_clear();
    report.ballots_per_s = Some(ballots as f64 / acked);
    report.ack_ms = stats.acks();
    report.duration_s = acked;
    report.exact = stats.converge(ballots, run.deadline).await;
    report.errors = stats.errors();
    readers.stop().await;
    Ok(report)
}
