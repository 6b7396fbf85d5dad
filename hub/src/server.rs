//! Serving the hub's doors on a listener: the router that puts the HTTP
//! door and the live door side by side, the connection limit, and an
//! orderly shutdown that closes every WebSocket with 1001.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;

use crate::core::Hub;
use crate::http::{self, HttpDoor};
use crate::live::{self, LiveConfig, LiveDoor};
use crate::net::BoundedListener;
use crate::tls::Certificate;

/// The whole router as hyper serves it.
type S2 = TowerToHyperService<Router>;

/// Open TCP connections at most, unless configured otherwise: below the
/// common file-descriptor limits, far above a large assembly.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// The largest request line and headers taken, in bytes; more is answered
/// `431`. hyper's smallest read buffer; a browser's heads are well under it.
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
    /// Where live connections and the fan-out run (see [`LiveDoor`]);
    /// `None`: the runtime that calls [`run`].
    pub live_runtime: Option<tokio::runtime::Handle>,
    /// Serve HTTPS and `wss://` with this certificate.
    pub tls: Option<Certificate>,
    /// How long a client may take over the TLS handshake.
    pub handshake_timeout: Duration,
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
            tls: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves HTTP/1.1 (and its upgrades to `/live`) on one connection, plain
/// or TLS, until it ends or `shutdown` is cancelled.
async fn serve<S>(
    builder: hyper::server::conn::http1::Builder,
    io: S,
    service: S2,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
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
    let live_tasks = TaskTracker::new();
    let http_tasks = TaskTracker::new();
    let grace = config.shutdown_grace;
    let local_addr = listener.local_addr()?;
    let mut listener = BoundedListener::new(
        listener,
        config.max_connections,
        config.send_buffer,
        config.unsent_limit,
    );
    let live = LiveDoor::start(
        hub.clone(),
        config.live,
        shutdown.clone(),
        live_tasks.clone(),
        config.live_runtime,
    );
    let http = HttpDoor {
        hub,
        admin_token: Arc::from(config.admin_token),
        local_addr,
        tls: config.tls.clone(),
    };
    let acceptor = config
        .tls
        .map(|cert| tokio_rustls::TlsAcceptor::from(cert.config));
    let handshake_timeout = config.handshake_timeout;
    let router = Router::new()
        .route("/live", get(live::upgrade))
        .with_state(live)
        .merge(http::routes(http).layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        )));
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    builder.max_buf_size(MAX_REQUEST_HEAD);
    loop {
        let io = tokio::select! {
            io = listener.accept() => io,
            () = shutdown.cancelled() => break,
        };
        let shutdown = shutdown.clone();
        let builder = builder.clone();
        let service = service.clone();
        match &acceptor {
            None => http_tasks.spawn(serve(builder, io, service, shutdown)),
            Some(acceptor) => {
                let handshake = acceptor.accept(io);
                http_tasks.spawn(async move {
                    let tls = tokio::select! {
                        tls = tokio::time::timeout(handshake_timeout, handshake) => tls,
                        () = shutdown.cancelled() => return,
                    };
                    match tls {
                        Ok(Ok(tls)) => serve(builder, tls, service, shutdown).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                })
            }
        };
    }
    drop(listener);
    http_tasks.close();
    live_tasks.close();
    let closed = async {
        http_tasks.wait().await;
        live_tasks.wait().await;
    };
    if tokio::time::timeout(grace, closed).await.is_err() {
        tracing::warn!(
            http = http_tasks.len(),
            live = live_tasks.len(),
            "connections still open after the grace period"
        );
    }
    Ok(())
}
