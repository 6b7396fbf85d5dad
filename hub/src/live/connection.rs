//! One live connection's task: answers the client's requests, pings it
//! when idle, drops it when stuck, and closes it the way RFC 6455 says.
//! Session states do not pass through here: the fan-out writes them to
//! the connection's outlet.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use futures_util::{FutureExt, SinkExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use crate::core::{ConnectionGuard, Subscription};
use crate::live::frame_limit::Violation;
use crate::live::outlet::Outlet;
use crate::live::protocol::{
    Action, LiveError, LiveEvent, LiveRequest, parse_live_request, to_json,
};
use crate::live::{LiveDoor, LiveIo};

/// Close codes of RFC 6455 that the hub sends.
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_DATA: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

type Socket = WebSocketStream<LiveIo>;

pub(crate) struct Connection {
    socket: Socket,
    door: LiveDoor,
    outlet: Arc<Outlet>,
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
    pub fn new(
        socket: Socket,
        outlet: Arc<Outlet>,
        door: LiveDoor,
        permit: OwnedSemaphorePermit,
    ) -> Connection {
        Connection {
            socket,
            _presence: door.hub.connection_opened(),
            id: door.fanout.connection_id(),
            door,
            outlet,
            unknown: HashSet::new(),
            lobby: None,
            _permit: permit,
        }
    }

    /// By reference: an `async fn` taking `self` by value keeps two copies
    /// of it in its future (rust-lang/rust#62958), and thousands of idle
    /// connections each hold one such future.
    pub async fn run(&mut self, shutdown: CancellationToken) {
        let interval = self.door.config.ping_interval;
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
                    if let Some(id) = self.not_seen_yet(&incoming) {
                        // Boxed: only such a subscription pays for the wait.
                        let _ = Box::pin(self.door.hub.follow(vec![id])).await;
                    }
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
        let deadline = Instant::now() + self.door.config.send_timeout;
        loop {
            match self.outlet.drain(self.door.fanout.frames()) {
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

    /// A session this connection subscribes to that this hub has not seen:
    /// in a cluster, it may have been made on another node a moment ago,
    /// and is read from the store before the subscription is decided.
    fn not_seen_yet(&self, incoming: &Option<Result<Message, tungstenite::Error>>) -> Option<Uuid> {
        if !self.door.hub.clustered() {
            return None;
        }
        let Some(Ok(Message::Text(text))) = incoming else {
            return None;
        };
        let request = parse_live_request(text.as_str()).ok()?;
        let id = request.session_id;
        (request.action == Action::Subscribe
            && !id.is_nil()
            && !self.unknown.contains(&id)
            && self.door.hub.published(id).is_none()
            && self.door.hub.may_look_up())
        .then_some(id)
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
                    self.door.fanout.join(session, self.id, &self.outlet);
                    self.outlet.send_news(self.door.fanout.frames(), None);
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
                    if followed >= self.door.config.max_subscriptions {
                        return Err(LiveError::TooManySubscriptions(
                            self.door.config.max_subscriptions,
                        ));
                    }
                    if session_id.is_nil() {
                        // Its current state, `sessions_changed`, follows at once.
                        self.lobby = Some(WatchStream::new(self.door.hub.lobby()));
                    } else {
                        match self.door.hub.subscribe(session_id) {
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
            Action::Ping => Ok(Answer {
                reply: to_json(&LiveEvent::Pong),
                follow: None,
            }),
            Action::Unsubscribe => {
                if session_id.is_nil() {
                    self.lobby = None;
                }
                if self.outlet.unfollow(session_id) {
                    self.door.fanout.leave(session_id, self.id);
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
            self.door.fanout.leave(session, self.id);
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
