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

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpSocket;

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
    /// Receive buffer of each subscriber socket, in bytes. Small, like the
    /// window of a phone that reads its one socket promptly: a load
    /// generator reading thousands of sockets on one core would otherwise
    /// let stale tallies pile up in its own kernel buffers and measure that.
    #[arg(long, default_value_t = 4096)]
    rcvbuf: u32,
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
    /// From sending a ballot to the hub's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_ms: Option<Percentiles>,
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
        if !self.addr.ip().is_loopback() || !self.addr.is_ipv4() || i < PER_SOURCE {
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
    /// From sending a ballot to its acknowledgement.
    acks: Mutex<Histogram<u64>>,
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
            acks: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?,
            ),
        })
    }

    fn percentiles(&self) -> Option<Percentiles> {
        let mut all = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok()?;
        for h in &self.histograms {
            let h = h.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).ok()?;
        }
        Percentiles::of(&all)
    }

    fn record_ack(&self, sent_ns: u64) {
        let now = self.start.elapsed().as_nanos() as u64;
        let mut h = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let _ = h.record((now.saturating_sub(sent_ns) / 1000).max(1));
    }

    fn ack_percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.acks.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
}

/// The subscriber side of `/live`, written by hand for the load generator's
/// hot path: it reads whole batches of server frames per system call and
/// looks only at what it needs, so that one core can follow thousands of
/// subscribers without becoming what the benchmark measures.
struct Subscriber {
    stream: tokio::net::TcpStream,
    frames: FrameBuf,
}

/// What was read from one subscriber's socket and not yet parsed.
struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

impl Subscriber {
    async fn connect(
        target: &Target,
        i: usize,
        session: &str,
        rcvbuf: u32,
    ) -> Result<Subscriber, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        // Before connecting, so that the window is scaled to it.
        socket
            .set_recv_buffer_size(rcvbuf)
            .map_err(|e| e.to_string())?;
        if let Some(source) = target.source(i) {
            // Ports of an earlier run may still be in TIME_WAIT.
            socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
            socket
                .bind(source)
                .map_err(|e| format!("bind {source}: {e}"))?;
        }
        let mut stream = socket
            .connect(target.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let request = format!(
            "GET /live HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            target.host
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut sub = Subscriber {
            stream,
            frames: FrameBuf {
                buf: vec![0; 4096],
                start: 0,
                end: 0,
            },
        };
        // The answer's head, then whatever frames came with it.
        loop {
            let f = &mut sub.frames;
            if let Some(at) = f.buf[..f.end].windows(4).position(|w| w == b"\r\n\r\n") {
                if !f.buf.starts_with(b"HTTP/1.1 101") {
                    let head = String::from_utf8_lossy(&f.buf[..at]).into_owned();
                    return Err(format!("handshake refused: {head}"));
                }
                f.start = at + 4;
                break;
            }
            if f.end == f.buf.len() {
                return Err("handshake answer too long".into());
            }
            let n = sub
                .stream
                .read(&mut f.buf[f.end..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed during the handshake".into());
            }
            f.end += n;
        }
        let subscribe = json!({"action": "subscribe", "session_id": session}).to_string();
        sub.send(OP_TEXT, subscribe.as_bytes()).await?;
        // The seed answers `subscribed` only; votehub then sends the tally.
        loop {
            match sub.next_text().await? {
                Some(range)
                    if sub.frames.buf[range.clone()]
                        .windows(12)
                        .any(|w| w == b"\"subscribed\"") =>
                {
                    return Ok(sub);
                }
                Some(_) => {}
                None => return Err("closed before subscribed".into()),
            }
        }
    }

    /// Sends one client frame (see `client_frame`).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(&client_frame(opcode, payload)?)
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text frame's place in `frames.buf`; pings are answered on
    /// the way. `None` once the server closes.
    async fn next_text(&mut self) -> Result<Option<std::ops::Range<usize>>, String> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((opcode, payload)) = self.frames.parse() {
                match opcode {
                    OP_TEXT => return Ok(Some(payload)),
                    OP_PING => {
                        let data = self.frames.buf[payload].to_vec();
                        self.send(OP_PONG, &data).await?;
                    }
                    OP_CLOSE => return Ok(None),
                    _ => {}
                }
                continue;
            }
            let room = self.frames.room();
            let n = self.stream.read(room).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(None);
            }
            self.frames.end += n;
        }
    }
}

/// A client frame: masked, as the protocol requires (with a zero key, which
/// leaves the payload as is). Payloads here are under 126 bytes.
fn client_frame(opcode: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
    let len = u8::try_from(payload.len())
        .ok()
        .filter(|l| *l < 126)
        .ok_or("frame too long")?;
    let mut frame = Vec::with_capacity(6 + payload.len());
    frame.extend_from_slice(&[0x80 | opcode, 0x80 | len, 0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    Ok(frame)
}

impl FrameBuf {
    /// Free space to read into, after moving a partial frame to the front.
    fn room(&mut self) -> &mut [u8] {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.end..]
    }

    /// One complete server frame (unmasked) at `start`, if there is one.
    fn parse(&mut self) -> Option<(u8, std::ops::Range<usize>)> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return None;
        }
        let (len, head) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < head + len {
            return None;
        }
        let opcode = b[0] & 0x0F;
        let payload = self.start + head..self.start + head + len;
        self.start += head + len;
        Some((opcode, payload))
    }
}

/// Opens `n` subscribers, a burst at a time, then reads them all.
async fn open_subscribers(
    target: &Arc<Target>,
    session: &str,
    n: usize,
    rcvbuf: u32,
    shared: &Arc<Shared>,
) -> Result<Readers, String> {
    let bar = progress(n as u64, "subscribers");
    let mut subscribers = Vec::with_capacity(n);
    let opened = futures_util::stream::iter(0..n)
        .map(|i| {
            let target = target.clone();
            let session = session.to_owned();
            async move { (i, Subscriber::connect(&target, i, &session, rcvbuf).await) }
        })
        .buffer_unordered(CONNECT_BURST);
    tokio::pin!(opened);
    while let Some((i, ws)) = opened.next().await {
        let ws = ws.map_err(|e| format!("subscriber {i}: {e}"))?;
        subscribers.push((i, ws));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Readers::start(subscribers, shared.clone())
}

/// Every subscriber's socket, read on one thread of its own that the
/// kernel wakes per readable socket (mio, edge-triggered): no task and no
/// waker per subscriber, so that the load generator keeps up with a hub
/// writing 200 000 frames a second on one core.
struct Readers {
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const WAKE: mio::Token = mio::Token(usize::MAX);

impl Readers {
    fn start(
        subscribers: Vec<(usize, Subscriber)>,
        shared: Arc<Shared>,
    ) -> Result<Readers, String> {
        let poll = mio::Poll::new().map_err(|e| e.to_string())?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).map_err(|e| e.to_string())?);
        let mut sockets = Vec::with_capacity(subscribers.len());
        for (i, sub) in subscribers {
            let stream = sub.stream.into_std().map_err(|e| e.to_string())?;
            let mut stream = mio::net::TcpStream::from_std(stream);
            poll.registry()
                .register(
                    &mut stream,
                    mio::Token(sockets.len()),
                    mio::Interest::READABLE,
                )
                .map_err(|e| e.to_string())?;
            sockets.push(Socket {
                i,
                stream,
                frames: sub.frames,
                open: true,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("bench-readers".into())
                .spawn(move || read_all(poll, sockets, &shared, &stop))
                .map_err(|e| e.to_string())?
        };
        Ok(Readers {
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Stops reading, says goodbye to the hub, and waits for the thread.
    async fn stop(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn signal(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

impl Drop for Readers {
    /// A run given up on (timeout, error) still stops its reader thread.
    fn drop(&mut self) {
        self.signal();
    }
}

struct Socket {
    /// The subscriber's number.
    i: usize,
    stream: mio::net::TcpStream,
    frames: FrameBuf,
    open: bool,
}

fn read_all(mut poll: mio::Poll, mut sockets: Vec<Socket>, shared: &Shared, stop: &AtomicBool) {
    // What arrived before the sockets were handed over.
    for socket in &mut sockets {
        drain(socket, shared, stop);
    }
    let mut events = mio::Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100)))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        for event in &events {
            if let Some(socket) = sockets.get_mut(event.token().0) {
                drain(socket, shared, stop);
            }
        }
    }
    let close = client_frame(OP_CLOSE, &[]).unwrap_or_default();
    for socket in sockets.iter_mut().filter(|s| s.open) {
        let _ = std::io::Write::write(&mut socket.stream, &close);
    }
}

/// Reads and handles every frame the socket holds (edge-triggered: until
/// the kernel has no more).
fn drain(socket: &mut Socket, shared: &Shared, stop: &AtomicBool) {
    while socket.open {
        while let Some((opcode, payload)) = socket.frames.parse() {
            match opcode {
                OP_TEXT => record(shared, socket.i, &socket.frames.buf[payload]),
                OP_PING => {
                    if let Ok(pong) = client_frame(OP_PONG, &socket.frames.buf[payload]) {
                        // A pong lost to a full socket only earns another ping.
                        let _ = std::io::Write::write(&mut socket.stream, &pong);
                    }
                }
                OP_CLOSE => socket.open = false,
                _ => {}
            }
        }
        if !socket.open {
            break;
        }
        let read = std::io::Read::read(&mut socket.stream, socket.frames.room());
        match read {
            Ok(0) => socket.open = false,
            Ok(n) => socket.frames.end += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => socket.open = false,
        }
    }
    if !stop.load(Ordering::Relaxed) {
        shared.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records a tally one subscriber received: for each newly seen ballot k,
/// the time since it was sent.
fn record(shared: &Shared, i: usize, text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Some(total) = number_after(text, "\"votes_total\":") else {
        return;
    };
    let (seen_total, seen_for) = &shared.last[i];
    if shared.counting.load(Ordering::Relaxed) {
        shared.delivered.fetch_add(1, Ordering::Relaxed);
    }
    let before = seen_total.fetch_max(total, Ordering::Relaxed);
    if let Some(f) = number_after(text, "\"votes_for\":") {
        seen_for.store(f, Ordering::Relaxed);
    }
    if total > before {
        let now = shared.start.elapsed().as_nanos() as u64;
        let shard = &shared.histograms[i % shared.histograms.len()];
        let mut h = shard.lock().unwrap_or_else(|e| e.into_inner());
        for k in before..total.min(shared.sent.len() as u64) {
            let sent = shared.sent[k as usize].load(Ordering::Relaxed);
            if sent > 0 && now > sent {
                let _ = h.record(((now - sent) / 1000).max(1));
            }
        }
    }
}

/// Sends ballot k+1 at `t0 + k / rate`, whatever the answers' delays (an
/// open loop, as a room of people does), at most `IN_FLIGHT` at a time.
async fn send_at_rate(
    target: Arc<Target>,
    session: String,
    shared: Arc<Shared>,
    ballots: u64,
    rate: f64,
    t0: Instant,
    bar: ProgressBar,
) -> Result<(), String> {
    let hub = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .map_err(|e| e.to_string())?,
        target,
        token: String::new(),
    };
    let hub = Arc::new(hub);
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
        let sent_ns = shared.start.elapsed().as_nanos() as u64;
        shared.sent[k as usize].store(sent_ns, Ordering::Relaxed);
        let (hub, session, shared) = (hub.clone(), session.clone(), shared.clone());
        requests.spawn(async move {
            if hub.vote(&session, k + 1).await {
                shared.record_ack(sent_ns);
            } else {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
        bar.inc(1);
    }
    while requests.join_next().await.is_some() {}
    Ok(())
}

/// The target hub's HTTP API, as the load generator uses it.
struct Api {
    http: reqwest::Client,
    target: Arc<Target>,
    token: String,
}

impl Api {
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
        let choice = if k.is_multiple_of(3) {
            "against"
        } else {
            "for"
        };
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
    let hub = Api {
        http,
        target: target.clone(),
        token: args.admin_token.clone(),
    };
    let server = args.server_pid.map(Proc);
    tokio::time::timeout(
        Duration::from_secs(args.timeout),
        scenario(&args, &hub, &target, server.as_ref(), deadline),
    )
    .await
    .map_err(|_| format!("gave up after {} s", args.timeout))?
}

async fn scenario(
    args: &BenchArgs,
    hub: &Api,
    target: &Arc<Target>,
    server: Option<&Proc>,
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
            let readers =
                open_subscribers(target, &session, subscribers, args.rcvbuf, &shared).await?;
            // Let the initial tallies settle before the clock starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let cpu0 = server.and_then(Proc::cpu_s);
            shared.counting.store(true, Ordering::Relaxed);
            let t0 = Instant::now();
            let bar = progress(ballots, "ballots");
            // The sender gets a thread and a runtime of its own: on a load
            // generator busy reading thousands of sockets, its requests and
            // their answers must not wait in line behind subscribers.
            let sending = {
                let (target, session, shared, bar) =
                    (target.clone(), session.clone(), shared.clone(), bar.clone());
                std::thread::Builder::new()
                    .name("bench-sender".into())
                    .spawn(move || -> Result<(), String> {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())?;
                        runtime.block_on(send_at_rate(
                            target, session, shared, ballots, rate, t0, bar,
                        ))
                    })
                    .map_err(|e| e.to_string())?
            };
            tokio::task::spawn_blocking(move || sending.join())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| "the ballot sender panicked".to_owned())??;
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
            report.ack_ms = shared.ack_percentiles();
            report.errors = shared.errors.load(Ordering::Relaxed);
            readers.stop().await;
        }
        Scenario::Idle { subscribers, hold } => {
            report.scenario = "idle";
            report.subscribers = subscribers;
            let session = hub.create_session("bench idle").await?;
            let before = server.and_then(Proc::rss_kb);
            let shared = Arc::new(Shared::new(0, subscribers)?);
            let t0 = Instant::now();
            let readers =
                open_subscribers(target, &session, subscribers, args.rcvbuf, &shared).await?;
            tokio::time::sleep(Duration::from_secs(hold.min(60))).await;
            let after = server.and_then(Proc::rss_kb);
            report.duration_s = t0.elapsed().as_secs_f64();
            if let (Some(a), Some(b)) = (before, after) {
                report.server_kb_per_subscriber = Some((b - a) / subscribers.max(1) as f64);
            }
            report.errors = shared.errors.load(Ordering::Relaxed);
            report.exact = report.errors == 0;
            readers.stop().await;
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
            let readers =
                open_subscribers(target, &session, subscribers, args.rcvbuf, &shared).await?;
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
                    let one = Api {
                        http,
                        target,
                        token,
                    };
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= ballots {
                            break;
                        }
                        let sent_ns = shared.start.elapsed().as_nanos() as u64;
                        shared.sent[k as usize].store(sent_ns, Ordering::Relaxed);
                        if one.vote(&session, k + 1).await {
                            shared.record_ack(sent_ns);
                        } else {
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
            report.ack_ms = shared.ack_percentiles();
            report.duration_s = acked;
            report.exact = converge(&shared, ballots, deadline).await;
            report.errors = shared.errors.load(Ordering::Relaxed);
            readers.stop().await;
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
    if let Some(a) = &report.ack_ms {
        rows.push(("ballot answer p50", format!("{:.1} ms", a.p50)));
        rows.push(("ballot answer p99", format!("{:.1} ms", a.p99)));
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
