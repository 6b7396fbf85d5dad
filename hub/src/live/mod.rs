//! The `/live` WebSocket door: the seed's subscribe/unsubscribe protocol,
//! with one task per connection that answers requests, pings the idle and
//! drops the stuck. Session states reach the connection through its
//! outlet, written by the fan-out (`fanout`) without waking this task.

mod connection;
pub mod fanout;
pub mod frame_limit;
pub mod frames;
pub mod outlet;
pub mod protocol;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::core::{Code, Hub};
use crate::http::error::WireError;
use crate::live::connection::Connection;
use crate::live::fanout::Fanout;
use crate::live::frame_limit::FrameLimit;
use crate::live::outlet::Outlet;
use crate::net::CountedStream;
use tokio_rustls::server::TlsStream;

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

/// What the live door needs: the hub, who follows what, and the owner of
/// every connection's task.
#[derive(Clone)]
pub struct LiveDoor {
    pub hub: Hub,
    pub config: Arc<LiveConfig>,
    pub fanout: Fanout,
    /// Cancelled when the server shuts down: connections close with 1001.
    pub shutdown: CancellationToken,
    /// Owns every live connection's task, and the fan-out's.
    pub tasks: TaskTracker,
    /// Where live connections and the fan-out run. A runtime of their own
    /// keeps a busy fan-out (thousands of sockets written at each tally)
    /// from delaying the answers to ballots, which then wait behind no one.
    /// `None`: the runtime that serves HTTP.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl LiveDoor {
    /// Starts the fan-out task; it stops with `shutdown`.
    pub fn start(
        hub: Hub,
        config: LiveConfig,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        runtime: Option<tokio::runtime::Handle>,
    ) -> LiveDoor {
        let fanout = Fanout::default();
        let fanout_task = fanout.clone().run(hub.clone(), shutdown.clone());
        match &runtime {
            Some(runtime) => tasks.spawn_on(fanout_task, runtime),
            None => tasks.spawn(fanout_task),
        };
        LiveDoor {
            hub,
            config: Arc::new(config),
            fanout,
            shutdown,
            tasks,
            runtime,
        }
    }
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
pub async fn upgrade(State(door): State<LiveDoor>, mut req: Request) -> Response {
    let config = &door.config;
    // RFC 6455 §4.1: the opening handshake is HTTP/1.1 or later.
    if req.version() < axum::http::Version::HTTP_11 {
        return WireError::new(
            StatusCode::BAD_REQUEST,
            Code::WebsocketRequired,
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
            Code::WebsocketRequired,
            "/live speaks WebSocket (version 13) only",
        )
        .into_response();
    };
    if !origin_allowed(headers, config) {
        tracing::info!(origin = ?headers.get(header::ORIGIN), "live connection refused: origin not allowed");
        return WireError::new(
            StatusCode::FORBIDDEN,
            Code::OriginNotAllowed,
            "this page's origin may not open /live; start the hub with --allow-origin",
        )
        .into_response();
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tasks = door.tasks.clone();
    let runtime = door.runtime.clone();
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
        let (stream, tls, read_buf) = match upgraded.downcast::<TokioIo<CountedStream>>() {
            Ok(parts) => (parts.io.into_inner(), None, parts.read_buf),
            Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<CountedStream>>>() {
                Ok(parts) => {
                    let (stream, tls) = parts.io.into_inner().into_inner();
                    (stream, Some(tls), parts.read_buf)
                }
                Err(_) => {
                    tracing::error!("live upgrade on a connection of an unexpected type");
                    return;
                }
            },
        };
        // A copy, and hyper's read buffer (8 KiB) goes now rather than
        // with the connection.
        let early = Bytes::copy_from_slice(&read_buf);
        drop(read_buf);
        let (tcp, permit) = stream.into_parts();
        let outlet = Arc::new(Outlet::new(tcp, tls));
        let io = LiveIo {
            early,
            outlet: outlet.clone(),
            limit: FrameLimit::new(door.config.max_message),
        };
        // Small buffers: an idle subscriber must cost little. The read
        // buffer grows on demand up to one message; writes go straight to
        // the outlet.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(256)
            .write_buffer_size(0)
            .max_message_size(Some(door.config.max_message))
            .max_frame_size(Some(door.config.max_message));
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
        let shutdown = door.shutdown.clone();
        let mut connection = Connection::new(socket, outlet, door, permit);
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
pub(crate) struct LiveIo {
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
        let n = ready!(outlet.poll_read(cx, buf.initialize_unfilled()))?;
        this.checked(&buf.initialize_unfilled()[..n])?;
        buf.advance(n);
        Poll::Ready(Ok(()))
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
