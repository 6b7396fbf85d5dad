//! The `/live` WebSocket door: the seed's subscribe/unsubscribe protocol,
//! with one task per connection that answers requests, forwards the newest
//! state of each subscribed session, pings the idle and drops the stuck.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{StreamExt, StreamMap};
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use crate::error::WireError;
use crate::hub::{ConnectionGuard, Hub, Published, Subscription};
use crate::protocol::{Action, LiveError, LiveEvent, LiveRequest, parse_live_request, to_json};
use crate::server::{AppState, ServerConfig};
use crate::text_guard::TextGuard;

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
/// that the socket can be wrapped in a [`TextGuard`] before tungstenite
/// reads from it.
pub async fn upgrade(State(state): State<AppState>, mut req: Request) -> Response {
    // Shared by every connection: nothing of it is copied per subscriber.
    let server_config = state.config.clone();
    let config = &server_config.live;
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
        // Small buffers: an idle subscriber must cost little. The read
        // buffer grows on demand up to one message.
        // Frames are written at `flush`, so the frames of one wake-up
        // (several sessions, or an update and a close) share one write.
        let config = &server_config.live;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(256)
            .write_buffer_size(16 * 1024)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(config.max_message))
            .max_frame_size(Some(config.max_message));
        let io = TextGuard::new(TokioIo::new(upgraded), config.max_message);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
        Connection::new(socket, hub, server_config)
            .run(shutdown)
            .await;
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

type Socket = WebSocketStream<TextGuard<TokioIo<Upgraded>>>;

struct Connection {
    socket: Socket,
    hub: Hub,
    config: Arc<ServerConfig>,
    subscriptions: StreamMap<Uuid, Subscription>,
    /// Subscribed ids that name no session: acknowledged like the seed
    /// does, counted against the limit, never fed.
    unknown: HashSet<Uuid>,
    /// The list of sessions, followed by subscribing to the nil UUID.
    lobby: Option<WatchStream<u64>>,
    /// Replies and pings to write before waiting again, through tungstenite.
    outbox: Vec<Message>,
    /// Session states to write after them, already framed: they go
    /// straight to the socket, with no framing or copy per subscriber.
    states: Vec<Bytes>,
    /// tungstenite has queued a pong that may not be written yet; it must
    /// leave before any frame written around tungstenite.
    pong_queued: bool,
    _presence: ConnectionGuard,
}

/// `{"event": "sessions_changed"}`, serialised once for every connection.
static SESSIONS_CHANGED: LazyLock<Utf8Bytes> =
    LazyLock::new(|| to_json(&LiveEvent::SessionsChanged).into());

/// A published state as text frames (FIN, unmasked, as a server sends
/// them), built by the first subscriber that needs it.
fn wire(state: &Published) -> Bytes {
    state
        .wire
        .get_or_init(|| {
            let mut out = Vec::new();
            for text in &state.frames {
                let payload = text.as_bytes();
                out.push(0x81);
                match payload.len() {
                    n if n < 126 => out.push(n as u8),
                    n if n <= usize::from(u16::MAX) => {
                        out.push(126);
                        out.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                    n => {
                        out.push(127);
                        out.extend_from_slice(&(n as u64).to_be_bytes());
                    }
                }
                out.extend_from_slice(payload);
            }
            Bytes::from(out)
        })
        .clone()
}

async fn next_tick(lobby: &mut Option<WatchStream<u64>>) -> Option<u64> {
    match lobby {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Why a connection ends.
enum End {
    ClientLeft,
    Close(u16, &'static str),
    Drop(&'static str),
}

impl Connection {
    fn new(socket: Socket, hub: Hub, config: Arc<ServerConfig>) -> Connection {
        Connection {
            socket,
            _presence: hub.connection_opened(),
            hub,
            config,
            subscriptions: StreamMap::new(),
            unknown: HashSet::new(),
            lobby: None,
            outbox: Vec::new(),
            states: Vec::new(),
            pong_queued: false,
        }
    }

    async fn run(mut self, shutdown: tokio_util::sync::CancellationToken) {
        let interval = self.config.live.ping_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        // When the unanswered ping went out: the peer gets a whole interval
        // to answer it, whatever the timer's jitter.
        let mut ping_sent: Option<Instant> = None;
        // Made once: every connection shares the token, and registering a
        // new waiter on it at each turn of the loop costs.
        let mut cancelled = std::pin::pin!(shutdown.cancelled());
        let end = loop {
            // Updates first: a wake-up for a new tally then costs no look at
            // the socket, which is polled again before the task sleeps.
            let step = tokio::select! {
                biased;
                () = &mut cancelled => Err(End::Close(GOING_AWAY, "votehub is shutting down")),
                Some((_, state)) = self.subscriptions.next(), if !self.subscriptions.is_empty() => {
                    self.states.push(wire(&state));
                    // Whatever else is ready goes out in the same flush.
                    while let Some(Some((_, state))) = self.subscriptions.next().now_or_never() {
                        self.states.push(wire(&state));
                    }
                    Ok(())
                }
                Some(_) = next_tick(&mut self.lobby) => {
                    self.outbox.push(Message::Text(SESSIONS_CHANGED.clone()));
                    Ok(())
                }
                incoming = self.socket.next() => {
                    last_heard = Instant::now();
                    ping_sent = None;
                    self.on_incoming(incoming)
                }
                _ = ticker.tick() => match ping_sent {
                    Some(sent) if sent.elapsed() >= interval => Err(End::Drop("stopped answering pings")),
                    Some(_) => Ok(()),
                    None => {
                        if last_heard.elapsed() >= interval {
                            self.outbox.push(Message::Ping(Default::default()));
                            ping_sent = Some(Instant::now());
                        }
                        Ok(())
                    }
                },
            };
            if let Err(end) = step {
                break end;
            }
            if let Err(end) = self.flush().await {
                break end;
            }
        };
        match end {
            End::ClientLeft => {}
            End::Close(code, reason) => {
                let frame = Message::Close(Some(CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                }));
                let _ =
                    tokio::time::timeout(self.config.live.send_timeout, self.socket.send(frame))
                        .await;
            }
            End::Drop(why) => tracing::info!(reason = why, "live connection dropped"),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.outbox.is_empty() && self.states.is_empty() {
            return Ok(());
        }
        let flush_tungstenite = !self.outbox.is_empty() || self.pong_queued;
        self.pong_queued = false;
        let send_timeout = self.config.live.send_timeout;
        let written = {
            let (socket, outbox, states) = (&mut self.socket, &mut self.outbox, &mut self.states);
            let mut write = std::pin::pin!(async move {
                if flush_tungstenite {
                    for frame in outbox.drain(..) {
                        socket.feed(frame).await?;
                    }
                    socket.flush().await?;
                }
                // tungstenite's buffer is empty now: whole frames may go
                // around it without interleaving.
                let io = socket.get_mut();
                for state in states.drain(..) {
                    io.write_all(&state).await?;
                }
                io.flush().await?;
                Ok::<(), tungstenite::Error>(())
            });
            // Nearly every write completes at once; only one that has to wait
            // for the peer pays for a timer.
            match write.as_mut().now_or_never() {
                Some(result) => Ok(result),
                None => tokio::time::timeout(send_timeout, write).await,
            }
        };
        // Thousands of connections sit idle between tallies: they keep no
        // buffers (a fresh one is a cheap allocation next time).
        self.outbox = Vec::new();
        self.states = Vec::new();
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientLeft),
            Err(_) => Err(End::Drop("too slow to take updates")),
        }
    }

    fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<(), End> {
        match incoming {
            None | Some(Ok(Message::Close(_))) => Err(End::ClientLeft),
            Some(Err(e)) => Err(classify(e)),
            Some(Ok(Message::Text(text))) => {
                let reply = match parse_live_request(text.as_str()) {
                    Ok(request) => self.on_request(request),
                    Err(e) => Err(e),
                };
                let frame = reply.unwrap_or_else(|e| e.to_json());
                self.outbox.push(Message::Text(frame.into()));
                Ok(())
            }
            Some(Ok(Message::Binary(_))) => {
                self.outbox.push(Message::Text(
                    LiveError::BinaryNotSupported.to_json().into(),
                ));
                Ok(())
            }
            // Pongs only prove the peer is alive; tungstenite answers pings.
            Some(Ok(Message::Ping(_))) => {
                self.pong_queued = true;
                Ok(())
            }
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => Ok(()),
        }
    }

    fn on_request(
        &mut self,
        LiveRequest { action, session_id }: LiveRequest,
    ) -> Result<String, LiveError> {
        match action {
            Action::Subscribe => {
                let known = self.subscriptions.contains_key(&session_id)
                    || self.unknown.contains(&session_id)
                    || (session_id.is_nil() && self.lobby.is_some());
                if !known {
                    let followed = self.subscriptions.len()
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
                        return Ok(to_json(&LiveEvent::Subscribed { session_id }));
                    }
                    match self.hub.subscribe(session_id) {
                        // Its current state follows `subscribed` on the next turn.
                        Some(sub) => {
                            self.subscriptions.insert(session_id, sub);
                        }
                        None => {
                            self.unknown.insert(session_id);
                        }
                    }
                }
                Ok(to_json(&LiveEvent::Subscribed { session_id }))
            }
            Action::Unsubscribe => {
                if session_id.is_nil() {
                    self.lobby = None;
                }
                self.subscriptions.remove(&session_id);
                self.unknown.remove(&session_id);
                Ok(to_json(&LiveEvent::Unsubscribed { session_id }))
            }
        }
    }
}

fn classify(e: tungstenite::Error) -> End {
    match e {
        tungstenite::Error::Capacity(_) => {
            End::Close(MESSAGE_TOO_BIG, "message too big (4 KiB at most)")
        }
        // Only a fragmented message gets here: see `TextGuard`.
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
