//! The `/live` WebSocket door: the seed's subscribe/unsubscribe protocol,
//! with one task per connection that answers requests, pings the idle and
//! drops the stuck. Session states reach the connection through its
//! outlet, written by the fan-out (`fanout`) without waking this task.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use crate::error::WireError;
use crate::fanout::Fanout;
use crate::frame_limit::{FrameLimit, Violation};
use crate::hub::{ConnectionGuard, Hub, Subscription};
use crate::outlet::Outlet;
use crate::protocol::{Action, LiveError, LiveEvent, LiveRequest, parse_live_request, to_json};
use crate::server::{AppState, CountedStream, ServerConfig};

/// Close codes of RFC 6455 that the hub sends.
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_DATA: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Largest message a client may send; larger closes with 1009.
    pub max_message: usize,
    /// Sessions one connection may follow at once.
    pub max_subscriptions: usize,
    /// A connection silent this long is pinged; one that leaves the ping
    /// unanswered as long again is dropped.
    pub ping_interval: Duration,
    /// A connection that cannot take a write for this long is dropped.
    pub send_timeout: Duration,
    /// Origins allowed besides the hub's own address.
    pub allow_origins: Vec<String>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            max_message: 4096,
            max_subscriptions: 64,
            ping_interval: Duration::from_secs(20),
            send_timeout: Duration::from_secs(10),
            allow_origins: Vec::new(),
        }
    }
}

/// A browser page may open `/live` only from the hub's own address or an
/// allowed origin; clients without `Origin` (scripts, servers) may always.
fn origin_allowed(headers: &HeaderMap, config: &LiveConfig) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if config
        .allow_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The WebSocket handshake, done here rather than by axum's extractor so
/// that the socket comes back from hyper (for the fan-out) and its reads
/// pass a [`FrameLimit`] before tungstenite sees them.
pub async fn upgrade(State(state): State<AppState>, mut req: Request) -> Response {
    // Shared by every connection: nothing of it is copied per subscriber.
    let server_config = state.config.clone();
    let config = &server_config.live;
    // RFC 6455 §4.1: the opening handshake is HTTP/1.1 or later.
    if req.version() < axum::http::Version::HTTP_11 {
        return WireError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "/live needs HTTP/1.1 to upgrade to WebSocket",
        )
        .into_response();
    }
    let headers = req.headers();
    let token_in = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY);
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let (true, true, Some(key), true) = (
        token_in(header::CONNECTION, "upgrade"),
        token_in(header::UPGRADE, "websocket"),
        key,
        version_ok,
    ) else {
        return WireError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "/live speaks WebSocket (version 13) only",
        )
        .into_response();
    };
    if !origin_allowed(headers, config) {
        tracing::info!(origin = ?headers.get(header::ORIGIN), "live connection refused: origin not allowed");
        return WireError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin may not open /live; start the hub with --allow-origin",
        )
        .into_response();
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let runtime = state.config.live_runtime.clone();
    let AppState {
        hub,
        shutdown,
        tasks,
        fanout,
        ..
    } = state;
    let connection = async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::info!(error = %e, "live upgrade failed");
                return;
            }
        };
        // The socket comes back from hyper so that the fan-out can write
        // to it directly, beside this connection's own task.
        let parts = match upgraded.downcast::<TokioIo<CountedStream>>() {
            Ok(parts) => parts,
            Err(_) => {
                tracing::error!("live upgrade on a connection of an unexpected type");
                return;
            }
        };
        let hyper::upgrade::Parts { io, read_buf, .. } = parts;
        // A copy, and hyper's read buffer (8 KiB) goes now rather than
        // with the connection.
        let early = Bytes::copy_from_slice(&read_buf);
        drop(read_buf);
        let (tcp, permit) = io.into_inner().into_parts();
        let config = &server_config.live;
        let outlet = Arc::new(Outlet::new(tcp));
        let io = LiveIo {
            early,
            outlet: outlet.clone(),
            limit: FrameLimit::new(config.max_message),
        };
        // Small buffers: an idle subscriber must cost little. The read
        // buffer grows on demand up to one message; writes go straight to
        // the outlet.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(256)
            .write_buffer_size(0)
            .max_message_size(Some(config.max_message))
            .max_frame_size(Some(config.max_message));
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
        let mut connection = Connection {
            socket,
            _presence: hub.connection_opened(),
            id: fanout.connection_id(),
            hub,
            config: server_config,
            outlet,
            fanout,
            unknown: HashSet::new(),
            lobby: None,
            _permit: permit,
        };
        connection.run(shutdown).await;
    };
    match runtime {
        Some(runtime) => tasks.spawn_on(connection, &runtime),
        None => tasks.spawn(connection),
    };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The connection's socket as tungstenite sees it: reads come from the
/// socket (after any bytes hyper read past the handshake) through the
/// frame-length check, writes go to the outlet, which always takes them at
/// once (or fails the connection when too much waits).
struct LiveIo {
    early: Bytes,
    outlet: Arc<Outlet>,
    limit: FrameLimit,
}

impl LiveIo {
    /// Passes what was just read through the frame-length check.
    fn checked(&mut self, read: &[u8]) -> io::Result<()> {
        self.limit
            .check(read)
            .map_err(|v| io::Error::new(io::ErrorKind::InvalidData, v))
    }
}

impl AsyncRead for LiveIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            let n = this.early.len().min(buf.remaining());
            let early = this.early.split_to(n);
            this.checked(&early)?;
            buf.put_slice(&early);
            return Poll::Ready(Ok(()));
        }
        let outlet = this.outlet.clone();
        let tcp = outlet.tcp();
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            match tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    this.checked(&buf.initialize_unfilled()[..n])?;
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for LiveIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.outlet.write(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Socket = WebSocketStream<LiveIo>;

struct Connection {
    socket: Socket,
    hub: Hub,
    config: Arc<ServerConfig>,
    outlet: Arc<Outlet>,
    fanout: Fanout,
    /// This connection among the fan-out's followers.
    id: u64,
    /// Subscribed ids that name no session: acknowledged like the seed
    /// does, counted against the limit, never fed.
    unknown: HashSet<Uuid>,
    /// The list of sessions, followed by subscribing to the nil UUID.
    lobby: Option<WatchStream<u64>>,
    _presence: ConnectionGuard,
    /// Counts this connection against the limit until it ends.
    _permit: OwnedSemaphorePermit,
}

/// `{"event": "sessions_changed"}`, serialised once for every connection.
static SESSIONS_CHANGED: LazyLock<Utf8Bytes> =
    LazyLock::new(|| to_json(&LiveEvent::SessionsChanged).into());

async fn next_tick(lobby: &mut Option<WatchStream<u64>>) -> Option<u64> {
    match lobby {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// What a request is answered, and a session to follow once the answer is
/// written (so that its states come after `subscribed`).
struct Answer {
    reply: String,
    follow: Option<(Uuid, Subscription)>,
}

/// Why a connection ends.
enum End {
    ClientLeft,
    /// The client sent a Close frame; tungstenite queued the answer.
    ClientClosed,
    Close(u16, &'static str),
    Drop(&'static str),
}

impl Connection {
    /// By reference: an `async fn` taking `self` by value keeps two copies
    /// of it in its future (rust-lang/rust#62958), and thousands of idle
    /// connections each hold one such future.
    async fn run(&mut self, shutdown: tokio_util::sync::CancellationToken) {
        let interval = self.config.live.ping_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        // When the unanswered ping went out: the peer gets a whole interval
        // to answer it, whatever the timer's jitter.
        let mut ping_sent: Option<Instant> = None;
        let mut cancelled = std::pin::pin!(shutdown.cancelled());
        let outlet = self.outlet.clone();
        let end = loop {
            let step = tokio::select! {
                biased;
                () = &mut cancelled => Err(End::Close(GOING_AWAY, "votehub is shutting down")),
                // Boxed: only a connection whose socket is full pays for
                // the timer and the readiness future.
                () = outlet.blocked() => Box::pin(self.drain()).await,
                Some(_) = next_tick(&mut self.lobby) => {
                    self.send(Message::Text(SESSIONS_CHANGED.clone()))
                }
                incoming = self.socket.next() => {
                    last_heard = Instant::now();
                    ping_sent = None;
                    self.on_incoming(incoming)
                }
                _ = ticker.tick() => match ping_sent {
                    Some(sent) if sent.elapsed() >= interval => Err(End::Drop("stopped answering pings")),
                    Some(_) => Ok(()),
                    None if last_heard.elapsed() >= interval => {
                        ping_sent = Some(Instant::now());
                        self.send(Message::Ping(Default::default()))
                    }
                    None => Ok(()),
                },
            };
            if let Err(end) = step {
                break end;
            }
        };
        // Once a Close frame goes out, no state follows it (RFC 6455 §5.5.1).
        match end {
            End::ClientLeft => {}
            End::ClientClosed => {
                self.outlet.closing();
                // The answering Close that tungstenite queued leaves now.
                if written(self.socket.flush().now_or_never()).is_ok() {
                    let _ = Box::pin(self.drain()).await;
                }
            }
            End::Close(code, reason) => {
                self.outlet.closing();
                let frame = Message::Close(Some(CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                }));
                if self.send(frame).is_ok() {
                    let _ = Box::pin(self.drain()).await;
                }
            }
            End::Drop(why) => tracing::info!(reason = why, "live connection dropped"),
        }
    }

    /// Hands a frame to the outlet. The outlet takes every write at once
    /// (or fails it), so tungstenite never waits here and nothing is
    /// awaited: thousands of idle connections each keep a small future.
    fn send(&mut self, message: Message) -> Result<(), End> {
        written(self.socket.send(message).now_or_never())
    }

    /// Waits for the socket to take what waits for it, then the newest
    /// states; a peer that takes nothing for `send_timeout` is dropped.
    async fn drain(&mut self) -> Result<(), End> {
        let deadline = Instant::now() + self.config.live.send_timeout;
        loop {
            match self.outlet.drain() {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(_) => return Err(End::ClientLeft),
            }
            match tokio::time::timeout_at(deadline, self.outlet.tcp().writable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(End::ClientLeft),
                Err(_) => return Err(End::Drop("too slow to take updates")),
            }
        }
    }

    fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<(), End> {
        match incoming {
            None => Err(End::ClientLeft),
            Some(Ok(Message::Close(_))) => Err(End::ClientClosed),
            Some(Err(e)) => Err(classify(e)),
            Some(Ok(Message::Text(text))) => {
                let answer = match parse_live_request(text.as_str()) {
                    Ok(request) => self.on_request(request),
                    Err(e) => Err(e),
                };
                let (reply, follow) = match answer {
                    Ok(Answer { reply, follow }) => (reply, follow),
                    Err(e) => (e.to_json(), None),
                };
                self.send(Message::Text(reply.into()))?;
                if let Some((session, updates)) = follow {
                    // After `subscribed`: the current state, then every
                    // newer one through the fan-out.
                    self.outlet.follow(session, updates);
                    self.fanout.join(session, self.id, &self.outlet);
                    self.outlet.send_news(None);
                }
                Ok(())
            }
            Some(Ok(Message::Binary(_))) => {
                let error = LiveError::BinaryNotSupported.to_json();
                self.send(Message::Text(error.into()))
            }
            // tungstenite queued the pong; it leaves now.
            Some(Ok(Message::Ping(_))) => written(self.socket.flush().now_or_never()),
            // Pongs only prove the peer is alive.
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => Ok(()),
        }
    }

    fn on_request(
        &mut self,
        LiveRequest { action, session_id }: LiveRequest,
    ) -> Result<Answer, LiveError> {
        match action {
            Action::Subscribe => {
                let mut follow = None;
                let known = self.outlet.follows(session_id)
                    || self.unknown.contains(&session_id)
                    || (session_id.is_nil() && self.lobby.is_some());
                if !known {
                    let followed = self.outlet.follow_count()
                        + self.unknown.len()
                        + usize::from(self.lobby.is_some());
                    if followed >= self.config.live.max_subscriptions {
                        return Err(LiveError::TooManySubscriptions(
                            self.config.live.max_subscriptions,
                        ));
                    }
                    if session_id.is_nil() {
                        // Its current state, `sessions_changed`, follows at once.
                        self.lobby = Some(WatchStream::new(self.hub.lobby()));
                    } else {
                        match self.hub.subscribe(session_id) {
                            Some(updates) => follow = Some((session_id, updates)),
                            None => {
                                self.unknown.insert(session_id);
                            }
                        }
                    }
                }
                Ok(Answer {
                    reply: to_json(&LiveEvent::Subscribed { session_id }),
                    follow,
                })
            }
            Action::Unsubscribe => {
                if session_id.is_nil() {
                    self.lobby = None;
                }
                if self.outlet.unfollow(session_id) {
                    self.fanout.leave(session_id, self.id);
                }
                self.unknown.remove(&session_id);
                Ok(Answer {
                    reply: to_json(&LiveEvent::Unsubscribed { session_id }),
                    follow: None,
                })
            }
        }
    }
}

impl Drop for Connection {
    /// However the connection ends — even by its task being cancelled —
    /// the fan-out forgets it and its socket and subscriptions go.
    fn drop(&mut self) {
        for session in self.outlet.close() {
            self.fanout.leave(session, self.id);
        }
    }
}

/// What a write handed to the outlet came to.
fn written(result: Option<Result<(), tungstenite::Error>>) -> Result<(), End> {
    match result {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(End::ClientLeft),
        // The outlet never makes a write wait; were it to, the peer is not
        // reading.
        None => Err(End::Drop("does not read what it is sent")),
    }
}

fn classify(e: tungstenite::Error) -> End {
    if let tungstenite::Error::Io(io) = &e
        && let Some(violation) = Violation::of(io)
    {
        return End::Close(violation.close_code(), violation.reason());
    }
    match e {
        tungstenite::Error::Capacity(_) => {
            End::Close(MESSAGE_TOO_BIG, "message too big (4 KiB at most)")
        }
        tungstenite::Error::Utf8(_) => End::Close(INVALID_DATA, "text is not valid UTF-8"),
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Io(_) => End::ClientLeft,
        _ => {
            tracing::info!(error = %e, "live connection broke the WebSocket protocol");
            End::Close(PROTOCOL_ERROR, "protocol error")
        }
    }
}
