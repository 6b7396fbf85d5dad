//! Serving the hub's doors on a listener: the router, the connection
//! limit, and an orderly shutdown that closes every WebSocket with 1001.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::fanout::Fanout;
use crate::hub::Hub;
use crate::live::{self, LiveConfig};

/// Open TCP connections at most, unless configured otherwise: below the
/// common file-descriptor limits, far above a large assembly.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// The largest request line and headers taken, in bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub admin_token: String,
    pub live: LiveConfig,
    /// Open TCP connections at most (HTTP and WebSocket); further ones wait
    /// in the kernel's backlog.
    pub max_connections: usize,
    /// Kernel send buffer per connection. Small, so that a subscriber who
    /// reads slowly holds few stale tallies in the kernel: the hub keeps
    /// only the newest for it instead.
    pub send_buffer: usize,
    /// Unsent bytes per connection at most (TCP_NOTSENT_LOWAT, Linux).
    pub unsent_limit: u32,
    /// An HTTP request taking longer than this is answered 408.
    pub request_timeout: Duration,
    /// How long shutdown waits for live connections to close.
    pub shutdown_grace: Duration,
    /// Where live connections and the fan-out run. A runtime of their own
    /// keeps a busy fan-out (thousands of sockets written at each tally)
    /// from delaying the answers to ballots, which then wait behind no one.
    /// `None`: the runtime that calls [`run`].
    pub live_runtime: Option<tokio::runtime::Handle>,
}

impl ServerConfig {
    pub fn new(admin_token: impl Into<String>) -> ServerConfig {
        ServerConfig {
            admin_token: admin_token.into(),
            live: LiveConfig::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            send_buffer: 16 * 1024,
            unsent_limit: 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            live_runtime: None,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub config: Arc<ServerConfig>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Owns every live connection task, and the fan-out's.
    pub tasks: TaskTracker,
    /// Who follows which session, for the live door.
    pub fanout: Fanout,
    /// Where the server listens, for the join addresses.
    pub local_addr: SocketAddr,
}

pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let api = crate::http::routes().layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        timeout,
    ));
    Router::new()
        .route("/live", get(live::upgrade))
        .merge(crate::pages::routes())
        .merge(api)
        .with_state(state)
}

/// Serves the hub on `listener` until `shutdown` is cancelled; then stops
/// accepting, lets requests in flight finish, closes live connections with
/// 1001 and returns. The hub itself keeps running: its owner shuts it down.
///
/// HTTP/1.1 connections are served by hyper directly rather than through
/// `axum::serve`: the live door takes the TCP socket of an upgraded
/// connection back from hyper (see `live`), which needs the connection's
/// exact type — `axum::serve` hides it behind its HTTP/2 detection, which
/// browsers never use over plain HTTP anyway.
pub async fn run(
    listener: TcpListener,
    hub: Hub,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let tasks = TaskTracker::new();
    let http_tasks = TaskTracker::new();
    let grace = config.shutdown_grace;
    let local_addr = listener.local_addr()?;
    let mut listener = BoundedListener {
        permits: Arc::new(Semaphore::new(config.max_connections)),
        send_buffer: config.send_buffer,
        unsent_limit: config.unsent_limit,
        inner: listener,
    };
    let fanout = Fanout::default();
    let writer = fanout.clone().run(hub.clone(), shutdown.clone());
    match &config.live_runtime {
        Some(runtime) => tasks.spawn_on(writer, runtime),
        None => tasks.spawn(writer),
    };
    let state = AppState {
        hub,
        config: Arc::new(config),
        fanout,
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        local_addr,
    };
    let service = TowerToHyperService::new(router(state));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    // Request heads beyond this are answered 431 (hyper's smallest read
    // buffer; a browser's heads are well under it). Bodies stream through.
    http.max_buf_size(MAX_REQUEST_HEAD);
    loop {
        let io = tokio::select! {
            io = listener.accept() => io,
            () = shutdown.cancelled() => break,
        };
        let connection = http
            .serve_connection(TokioIo::new(io), service.clone())
            .with_upgrades();
        let shutdown = shutdown.clone();
        http_tasks.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = shutdown.cancelled() => {
                    // The request in flight is answered, then it closes.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    http_tasks.close();
    tasks.close();
    let closed = async {
        http_tasks.wait().await;
        tasks.wait().await;
    };
    if tokio::time::timeout(grace, closed).await.is_err() {
        tracing::warn!(
            http = http_tasks.len(),
            live = tasks.len(),
            "connections still open after the grace period"
        );
    }
    Ok(())
}

/// A listener that holds one permit per open connection.
struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    send_buffer: usize,
    unsent_limit: u32,
}

impl BoundedListener {
    async fn accept(&mut self) -> CountedStream {
        // The semaphore is never closed, so this only waits.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let sock = socket2::SockRef::from(&stream);
                    let _ = sock.set_send_buffer_size(self.send_buffer);
                    // The kernel takes no more writes while this much is
                    // still unsent: a subscriber that cannot keep up makes
                    // its connection wait, and the hub sends it only the
                    // newest tally when it can take one.
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    let _ = sock.set_tcp_notsent_lowat(self.unsent_limit);
                    return CountedStream { stream, permit };
                }
                // The peer gave up before we accepted: nothing to do.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to free.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that gives its connection permit back when dropped.
pub struct CountedStream {
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
}

impl CountedStream {
    /// The socket, and the permit that must live as long as it.
    pub fn into_parts(self) -> (TcpStream, OwnedSemaphorePermit) {
        (self.stream, self.permit)
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
