//! The subscriber side of `/live`, written by hand for the load generator's
//! hot path: it reads whole batches of server frames per system call and
//! looks only at what it needs, so that one core can follow thousands of
//! subscribers without becoming what the benchmark measures. Once
//! subscribed, every socket is read on one thread (mio): no task and no
//! waker per subscriber.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::report::progress;
use crate::stats::Stats;
use crate::target::Target;

/// Connections opened at once while setting up.
const CONNECT_BURST: usize = 256;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

struct Subscriber {
    stream: TcpStream,
    frames: FrameBuf,
}

/// What was read from one subscriber's socket and not yet parsed.
struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Subscriber {
    async fn connect(
        target: &Target,
        i: usize,
        session: &str,
        rcvbuf: u32,
    ) -> Result<Subscriber, String> {
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
        let key = tungstenite::handshake::client::generate_key();
        let request = format!(
            "GET /live HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
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
                let head = String::from_utf8_lossy(&f.buf[..at]).into_owned();
                check_handshake(&head, &key)?;
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
        self.stream
            .write_all(&client_frame(opcode, payload)?)
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text frame's place in `frames.buf`; pings are answered on
    /// the way. `None` once the server closes.
    async fn next_text(&mut self) -> Result<Option<Range<usize>>, String> {
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

/// A `101` answer whose `Sec-WebSocket-Accept` proves the server read our
/// key (RFC 6455 §4.2.2): a proxy or a server that merely says 101 fails.
fn check_handshake(head: &str, key: &str) -> Result<(), String> {
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: {head}"));
    }
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, value)| value.trim());
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    match accept {
        Some(accept) if accept == expected => Ok(()),
        Some(other) => Err(format!(
            "handshake: Sec-WebSocket-Accept is {other:?}, expected {expected:?}"
        )),
        None => Err("handshake: no Sec-WebSocket-Accept".into()),
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
    fn parse(&mut self) -> Option<(u8, Range<usize>)> {
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
pub async fn open(
    nodes: &Arc<Vec<Arc<Target>>>,
    session: &str,
    n: usize,
    rcvbuf: u32,
    stats: &Arc<Stats>,
) -> Result<Readers, String> {
    let bar: ProgressBar = progress(n as u64, "subscribers");
    let mut subscribers = Vec::with_capacity(n);
    let opened = futures_util::stream::iter(0..n)
        .map(|i| {
            // Subscriber i on node i mod n; its source address counts the
            // connections to that node only.
            let target = nodes[i % nodes.len().max(1)].clone();
            let k = i / nodes.len().max(1);
            let session = session.to_owned();
            async move { (i, Subscriber::connect(&target, k, &session, rcvbuf).await) }
        })
        .buffer_unordered(CONNECT_BURST);
    tokio::pin!(opened);
    while let Some((i, sub)) = opened.next().await {
        let sub = sub.map_err(|e| format!("subscriber {i}: {e}"))?;
        subscribers.push((i, sub));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Readers::start(subscribers, stats.clone())
}

/// Every subscriber's socket, read on one thread of its own that the
/// kernel wakes per readable socket (mio, edge-triggered): no task and no
/// waker per subscriber, so that the load generator keeps up with a hub
/// writing 200 000 frames a second on one core.
pub struct Readers {
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const WAKE: mio::Token = mio::Token(usize::MAX);

impl Readers {
    fn start(subscribers: Vec<(usize, Subscriber)>, stats: Arc<Stats>) -> Result<Readers, String> {
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
                .spawn(move || read_all(poll, sockets, &stats, &stop))
                .map_err(|e| e.to_string())?
        };
        Ok(Readers {
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Stops reading, says goodbye to the hub, and waits for the thread.
    pub async fn stop(mut self) {
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

fn read_all(mut poll: mio::Poll, mut sockets: Vec<Socket>, stats: &Stats, stop: &AtomicBool) {
    // What arrived before the sockets were handed over.
    for socket in &mut sockets {
        drain(socket, stats, stop);
    }
    let mut events = mio::Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100)))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            stats.error();
            return;
        }
        for event in &events {
            if let Some(socket) = sockets.get_mut(event.token().0) {
                drain(socket, stats, stop);
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
fn drain(socket: &mut Socket, stats: &Stats, stop: &AtomicBool) {
    while socket.open {
        while let Some((opcode, payload)) = socket.frames.parse() {
            match opcode {
                OP_TEXT => stats.record(socket.i, &socket.frames.buf[payload]),
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
        stats.error();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_must_match_the_key() {
        // RFC 6455 §1.3's example.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                    sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        assert_eq!(check_handshake(good, key), Ok(()));
        let wrong = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAA";
        assert!(check_handshake(wrong, key).is_err());
        let missing = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket";
        assert!(check_handshake(missing, key).is_err());
        let refused = "HTTP/1.1 403 Forbidden";
        assert!(check_handshake(refused, key).is_err());
    }
}
