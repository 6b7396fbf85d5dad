//! `votehub bench`: a capacity benchmark an organiser can point at any hub
//! that speaks PROTOCOL.md (votehub, or the seed) before an assembly.
//!
//! - `fanout`: N subscribers; ballots sent at a fixed rate; the latency from
//!   sending ballot k to each subscriber seeing `votes_total >= k`; every
//!   subscriber must end on the exact final tally.
//! - `idle`: N subscribers held; the hub's memory per connection.
//! - `ingest`: C clients send ballots as fast as they are acknowledged,
//!   with S subscribers watching.
//!
//! Every loop is bounded in count and in time, and only loopback or LAN
//! addresses are accepted as targets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The hub to measure: loopback or LAN addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8765")]
    target: String,
    /// Admin token of the target (to create the session).
    #[arg(
        long,
        env = "VOTEHUB_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    admin_token: String,
    /// PID of the hub, to read its CPU time and memory (same machine only).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stop and fail after this many seconds, whatever the scenario.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(clap::Subcommand, Clone, Copy)]
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
    },
    /// N subscribers held idle: server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Seconds to hold them before measuring.
        #[arg(long, default_value_t = 3)]
        hold: u64,
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

/// Connections per source address: the ephemeral ports of one address run
/// out near 28 000, and TIME_WAIT keeps some busy.
const PER_SOURCE: usize = 15_000;
/// Connections opened at once while setting up.
const CONNECT_BURST: usize = 256;
/// Ballot requests in flight at once in `fanout` (the sender is open-loop).
const IN_FLIGHT: usize = 512;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    scenario: &'static str,
    target: String,
    subscribers: usize,
    ballots: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clients: Option<usize>,
    duration_s: f64,
    /// Every subscriber ended on the hub's final tally.
    pub exact: bool,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_messages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_us_per_message: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ballots_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_kb_per_subscriber: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

struct Target {
    base: String,
    addr: SocketAddr,
    host: String,
}

impl Target {
    async fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: the target is http://HOST:PORT"))?;
        let host = rest.trim_end_matches('/').to_owned();
        let addr = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        if !is_local(addr.ip()) {
            return Err(format!(
                "{addr} is not a loopback or LAN address: votehub bench only loads hubs on this machine or its network"
            ));
        }
        Ok(Target {
            base: format!("http://{host}"),
            addr,
            host,
        })
    }

    /// Loopback targets get connections from several 127.0.0.x addresses,
    /// so that more than one address's worth of ports can be open.
    fn source(&self, i: usize) -> Option<SocketAddr> {
        if !self.addr.ip().is_loopback() || !self.addr.is_ipv4() {
            return None;
        }
        let n = (i / PER_SOURCE) as u8;
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + n)),
            0,
        ))
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// CPU time (user + system) and resident memory of a process, from /proc.
struct Proc(u32);

impl Proc {
    fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).ok()?;
        // Fields after the command name, which may contain spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    fn rss_kb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Finds `"key":` in a frame and reads the number after it: the hot path
/// of the load generator, which must keep up with the hub.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// What every subscriber shares.
struct Shared {
    start: Instant,
    /// Nanoseconds after `start` at which ballot k+1 was sent; 0 = not yet.
    sent: Vec<AtomicU64>,
    /// Latency shards, so that subscribers rarely wait for each other.
    histograms: Vec<Mutex<Histogram<u64>>>,
    delivered: AtomicU64,
    counting: AtomicBool,
    /// Last `votes_total` and `votes_for` each subscriber saw.
    last: Vec<(AtomicU64, AtomicU64)>,
    errors: AtomicU64,
}

impl Shared {
    fn new(ballots: u64, subscribers: usize) -> Result<Shared, String> {
        let histograms = (0..64)
            .map(|_| Histogram::new_with_bounds(1, 600_000_000, 3).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Shared {
            start: Instant::now(),
            sent: (0..ballots).map(|_| AtomicU64::new(0)).collect(),
            histograms,
            delivered: AtomicU64::new(0),
            counting: AtomicBool::new(false),
            last: (0..subscribers)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            errors: AtomicU64::new(0),
        })
    }

    fn percentiles(&self) -> Option<Percentiles> {
        let mut all = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok()?;
        for h in &self.histograms {
            let h = h.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).ok()?;
        }
        if all.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(all.value_at_quantile(0.50)),
            p90: ms(all.value_at_quantile(0.90)),
            p99: ms(all.value_at_quantile(0.99)),
            max: ms(all.max()),
        })
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(target: &Target, i: usize, session: &str) -> Result<Socket, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(source) = target.source(i) {
        socket
            .bind(source)
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/live", target.host), stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let subscribe = json!({"action": "subscribe", "session_id": session}).to_string();
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| e.to_string())?;
    // The seed answers `subscribed` only; votehub then sends the tally.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => return Ok(ws),
            Some(Ok(_)) => {}
            other => return Err(format!("no subscribed: {other:?}")),
        }
    }
}

/// Opens `n` subscribers, a burst at a time, each then run by `follow`.
async fn open_subscribers(
    target: &Arc<Target>,
    session: &str,
    n: usize,
    shared: &Arc<Shared>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let bar = progress(n as u64, "subscribers");
    let mut tasks = Vec::with_capacity(n);
    let opened = futures_util::stream::iter(0..n)
        .map(|i| {
            let target = target.clone();
            let session = session.to_owned();
            async move { (i, connect(&target, i, &session).await) }
        })
        .buffer_unordered(CONNECT_BURST);
    tokio::pin!(opened);
    while let Some((i, ws)) = opened.next().await {
        let ws = ws.map_err(|e| format!("subscriber {i}: {e}"))?;
        tasks.push(tokio::spawn(follow(ws, i, shared.clone(), stop.clone())));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tasks)
}

/// Reads one subscriber's frames until stopped, recording for each newly
/// seen ballot k the time since it was sent.
async fn follow(
    mut ws: Socket,
    i: usize,
    shared: Arc<Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    let shard = &shared.histograms[i % shared.histograms.len()];
    let (seen_total, seen_for) = &shared.last[i];
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                if !stop.is_cancelled() {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        };
        let Some(total) = number_after(&text, "\"votes_total\":") else {
            continue;
        };
        if shared.counting.load(Ordering::Relaxed) {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
        let before = seen_total.fetch_max(total, Ordering::Relaxed);
        if let Some(f) = number_after(&text, "\"votes_for\":") {
            seen_for.store(f, Ordering::Relaxed);
        }
        if total > before {
            let now = shared.start.elapsed().as_nanos() as u64;
            let mut h = shard.lock().unwrap_or_else(|e| e.into_inner());
            for k in before..total.min(shared.sent.len() as u64) {
                let sent = shared.sent[k as usize].load(Ordering::Relaxed);
                if sent > 0 && now > sent {
                    let _ = h.record(((now - sent) / 1000).max(1));
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

struct Hub {
    http: reqwest::Client,
    target: Arc<Target>,
    token: String,
}

impl Hub {
    async fn create_session(&self, title: &str) -> Result<String, String> {
        let resp = self
            .http
            .post(format!("{}/api/sessions", self.target.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(json!({"title": title}).to_string())
            .send()
            .await
            .map_err(|e| format!("create session: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| format!("create session: {e}"))?;
        if !status.is_success() {
            return Err(format!("create session: {status} {body}"));
        }
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "create session: no id".to_owned())
    }

    async fn vote(&self, session: &str, k: u64) -> bool {
        // One ballot in three against, the rest for: a tally that is easy to check.
        let choice = if k.is_multiple_of(3) { "against" } else { "for" };
        let resp = self
            .http
            .post(format!("{}/api/sessions/{session}/votes", self.target.base))
            .header("content-type", "application/json")
            .body(format!(r#"{{"voter":"b{k}","choice":"{choice}"}}"#))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    }
}

fn expected_for(ballots: u64) -> u64 {
    ballots - ballots / 3
}

/// Waits until every subscriber saw `ballots` with the right split.
async fn converge(shared: &Shared, ballots: u64, deadline: Instant) -> bool {
    loop {
        let done = shared.last.iter().all(|(t, f)| {
            t.load(Ordering::Relaxed) == ballots
                && f.load(Ordering::Relaxed) == expected_for(ballots)
        });
        if done {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(args: BenchArgs) -> Result<Report, String> {
    let target = Arc::new(Target::parse(&args.target).await?);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| e.to_string())?;
    let hub = Hub {
        http,
        target: target.clone(),
        token: args.admin_token.clone(),
    };
    let server = args.server_pid.map(Proc);
    let stop = tokio_util::sync::CancellationToken::new();
    let report = tokio::time::timeout(
        Duration::from_secs(args.timeout),
        scenario(&args, &hub, &target, server.as_ref(), &stop, deadline),
    )
    .await
    .map_err(|_| format!("gave up after {} s", args.timeout))?;
    stop.cancel();
    report
}

async fn scenario(
    args: &BenchArgs,
    hub: &Hub,
    target: &Arc<Target>,
    server: Option<&Proc>,
    stop: &tokio_util::sync::CancellationToken,
    deadline: Instant,
) -> Result<Report, String> {
    let mut report = Report {
        target: target.base.clone(),
        ..Report::default()
    };
    match args.scenario {
        Scenario::Fanout {
            subscribers,
            rate,
            ballots,
        } => {
            if !(rate > 0.0 && rate <= 100_000.0) {
                return Err("the rate is between 0 and 100000 ballots/s".into());
            }
            report.scenario = "fanout";
            report.subscribers = subscribers;
            report.ballots = ballots;
            report.rate = Some(rate);
            let session = hub.create_session("bench fanout").await?;
            let shared = Arc::new(Shared::new(ballots, subscribers)?);
            let tasks = open_subscribers(target, &session, subscribers, &shared, stop).await?;
            // Let the initial tallies settle before the clock starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let cpu0 = server.and_then(Proc::cpu_s);
            shared.counting.store(true, Ordering::Relaxed);
            let t0 = Instant::now();
            let bar = progress(ballots, "ballots");
            let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut requests = tokio::task::JoinSet::new();
            let period = Duration::from_secs_f64(1.0 / rate);
            for k in 0..ballots {
                tokio::time::sleep_until((t0 + period.mul_f64(k as f64)).into()).await;
                let permit = limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| e.to_string())?;
                shared.sent[k as usize]
                    .store(shared.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let (http, target, token, session, shared) = (
                    hub.http.clone(),
                    hub.target.clone(),
                    hub.token.clone(),
                    session.clone(),
                    shared.clone(),
                );
                requests.spawn(async move {
                    let one = Hub {
                        http,
                        target,
                        token,
                    };
                    if !one.vote(&session, k + 1).await {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(permit);
                });
                bar.inc(1);
            }
            while requests.join_next().await.is_some() {}
            bar.finish_and_clear();
            report.exact = converge(&shared, ballots, deadline).await;
            report.duration_s = t0.elapsed().as_secs_f64();
            shared.counting.store(false, Ordering::Relaxed);
            let cpu1 = server.and_then(Proc::cpu_s);
            let delivered = shared.delivered.load(Ordering::Relaxed);
            report.delivered_messages = Some(delivered);
            if let (Some(a), Some(b)) = (cpu0, cpu1) {
                report.server_cpu_s = Some(b - a);
                if delivered > 0 {
                    report.server_cpu_us_per_message = Some((b - a) * 1e6 / delivered as f64);
                }
            }
            report.latency_ms = shared.percentiles();
            report.errors = shared.errors.load(Ordering::Relaxed);
            stop.cancel();
            for t in tasks {
                let _ = t.await;
            }
        }
        Scenario::Idle { subscribers, hold } => {
            report.scenario = "idle";
            report.subscribers = subscribers;
            let session = hub.create_session("bench idle").await?;
            let before = server.and_then(Proc::rss_kb);
            let shared = Arc::new(Shared::new(0, subscribers)?);
            let t0 = Instant::now();
            let tasks = open_subscribers(target, &session, subscribers, &shared, stop).await?;
            tokio::time::sleep(Duration::from_secs(hold.min(60))).await;
            let after = server.and_then(Proc::rss_kb);
            report.duration_s = t0.elapsed().as_secs_f64();
            if let (Some(a), Some(b)) = (before, after) {
                report.server_kb_per_subscriber = Some((b - a) / subscribers.max(1) as f64);
            }
            report.errors = shared.errors.load(Ordering::Relaxed);
            report.exact = report.errors == 0;
            stop.cancel();
            for t in tasks {
                let _ = t.await;
            }
        }
        Scenario::Ingest {
            clients,
            ballots,
            subscribers,
        } => {
            report.scenario = "ingest";
            report.subscribers = subscribers;
            report.ballots = ballots;
            report.clients = Some(clients);
            let session = hub.create_session("bench ingest").await?;
            let shared = Arc::new(Shared::new(ballots, subscribers)?);
            let tasks = open_subscribers(target, &session, subscribers, &shared, stop).await?;
            let next = Arc::new(AtomicU64::new(0));
            let bar = progress(ballots, "ballots");
            let t0 = Instant::now();
            let mut senders = tokio::task::JoinSet::new();
            for _ in 0..clients.max(1) {
                let (http, target, token, session, shared, next, bar) = (
                    hub.http.clone(),
                    hub.target.clone(),
                    hub.token.clone(),
                    session.clone(),
                    shared.clone(),
                    next.clone(),
                    bar.clone(),
                );
                senders.spawn(async move {
                    let one = Hub {
                        http,
                        target,
                        token,
                    };
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= ballots {
                            break;
                        }
                        shared.sent[k as usize]
                            .store(shared.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        if !one.vote(&session, k + 1).await {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        bar.inc(1);
                    }
                });
            }
            while senders.join_next().await.is_some() {}
            let acked = t0.elapsed().as_secs_f64();
            bar.finish_and_clear();
            report.ballots_per_s = Some(ballots as f64 / acked);
            report.duration_s = acked;
            report.exact = converge(&shared, ballots, deadline).await;
            report.errors = shared.errors.load(Ordering::Relaxed);
            stop.cancel();
            for t in tasks {
                let _ = t.await;
            }
        }
    }
    Ok(report)
}

pub fn print(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let mut rows: Vec<(&str, String)> = vec![
        ("scenario", report.scenario.to_owned()),
        ("target", report.target.clone()),
        ("subscribers", report.subscribers.to_string()),
    ];
    if report.ballots > 0 {
        rows.push(("ballots", report.ballots.to_string()));
    }
    if let Some(rate) = report.rate {
        rows.push(("rate", format!("{rate} ballots/s")));
    }
    if let Some(c) = report.clients {
        rows.push(("clients", c.to_string()));
    }
    if let Some(l) = &report.latency_ms {
        rows.push(("latency p50", format!("{:.1} ms", l.p50)));
        rows.push(("latency p90", format!("{:.1} ms", l.p90)));
        rows.push(("latency p99", format!("{:.1} ms", l.p99)));
        rows.push(("latency max", format!("{:.1} ms", l.max)));
    }
    if let Some(d) = report.delivered_messages {
        rows.push(("messages delivered", d.to_string()));
    }
    if let Some(c) = report.server_cpu_us_per_message {
        rows.push(("server CPU/message", format!("{c:.2} µs")));
    }
    if let Some(b) = report.ballots_per_s {
        rows.push(("ballots/s", format!("{b:.0}")));
    }
    if let Some(m) = report.server_kb_per_subscriber {
        rows.push(("server memory/sub", format!("{m:.2} KB")));
    }
    rows.push(("duration", format!("{:.2} s", report.duration_s)));
    rows.push((
        "exact final tally",
        if report.exact { "yes" } else { "NO" }.to_owned(),
    ));
    rows.push(("errors", report.errors.to_string()));
    for (k, v) in rows {
        println!("{k:>20}  {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_out_of_frames() {
        let frame = r#"{"event":"vote_update","votes_for":12,"votes_against":3,"votes_total": 15}"#;
        assert_eq!(number_after(frame, "\"votes_total\":"), Some(15));
        assert_eq!(number_after(frame, "\"votes_for\":"), Some(12));
        assert_eq!(number_after(frame, "\"seq\":"), None);
    }

    #[test]
    fn only_local_targets() {
        assert!(is_local("127.0.0.1".parse().expect("ip")));
        assert!(is_local("192.168.1.20".parse().expect("ip")));
        assert!(is_local("10.0.0.1".parse().expect("ip")));
        assert!(!is_local("8.8.8.8".parse().expect("ip")));
        assert!(!is_local("2001:db8::1".parse().expect("ip")));
    }

    #[test]
    fn the_split_is_one_against_in_three() {
        assert_eq!(expected_for(3), 2);
        assert_eq!(expected_for(4), 3);
        assert_eq!(expected_for(1000), 667);
    }
}
