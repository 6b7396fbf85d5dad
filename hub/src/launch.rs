//! Starting a whole hub — port, store, admin token, core, server — from a
//! few settings, and stopping it in order. `votehub serve` and the desktop
//! app both start their hub here, so they fail the same way for the same
//! reasons.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::core::store::StoreError;
use crate::core::{Hub, HubError, Limits};
use crate::data_dir::{self, TokenError};
use crate::server::ServerConfig;
use crate::store::SqliteStore;
use crate::store::postgres::PostgresStore;
use crate::tls::{Certificate, TlsError};

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data: PathBuf,
    /// `None`: the token kept in the data directory, made on first start.
    pub admin_token: Option<String>,
    pub allow_origins: Vec<String>,
    pub max_connections: usize,
    /// Proxies one member may hold at once.
    pub max_proxies: usize,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Where sessions and ballots are kept.
    pub store: StoreChoice,
}

/// Where a hub keeps everything (PROTOCOL.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreChoice {
    /// SQLite in the data directory: the laptop.
    #[default]
    Sqlite,
    /// A PostgreSQL database, shared by any number of hubs.
    Postgres(String),
    /// What was given is neither: why (the start stops with it).
    Unusable(String),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<StoreChoice, String> {
        let s = s.trim();
        if s.is_empty() || s == "sqlite" {
            Ok(StoreChoice::Sqlite)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreChoice::Postgres(s.to_owned()))
        } else {
            Err("--store (VOTEHUB_STORE) takes `sqlite` or a postgres://… URL".into())
        }
    }
}

/// Where the organiser's certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Settings {
    pub fn new(bind: SocketAddr, data: PathBuf) -> Settings {
        Settings {
            bind,
            data,
            admin_token: None,
            allow_origins: Vec::new(),
            max_connections: crate::server::DEFAULT_MAX_CONNECTIONS,
            max_proxies: Limits::default().max_proxies,
            tls: None,
            store: StoreChoice::Sqlite,
        }
    }
}

/// Why a hub did not start; each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the admin token must not be empty")]
    EmptyToken,
    #[error("cannot start the hub: {0}")]
    Hub(#[from] HubError),
    #[error("cannot start the live runtime: {0}")]
    Runtime(io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl StartError {
    /// The port is taken: the organiser should pick another.
    pub fn is_port_in_use(&self) -> bool {
        matches!(self, StartError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse)
    }
}

/// A hub serving on its port.
pub struct Running {
    pub hub: Hub,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub admin_token: String,
    /// Where the token is kept (a file, or the cluster's database).
    pub token_kept: String,
    /// The token was made by this start (show it once).
    pub token_created: bool,
    /// The certificate served, when over HTTPS.
    pub tls: Option<Certificate>,
    shutdown: CancellationToken,
    served: JoinHandle<io::Result<()>>,
    /// The runtime of the live connections; shut down after the server.
    live: Option<tokio::runtime::Runtime>,
}

/// Binds first, so that a port in use leaves nothing behind in the data
/// directory; then opens the store and starts serving.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    // A certificate that cannot be used stops the start before anything
    // is bound or written.
    let tls = settings
        .tls
        .as_ref()
        .map(|files| Certificate::load(&files.cert, &files.key))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.bind,
        source,
    })?;
    let given = match settings.admin_token {
        Some(t) if t.trim().is_empty() => return Err(StartError::EmptyToken),
        Some(t) => Some(t.trim().to_owned()),
        None => None,
    };
    let limits = Limits {
        max_proxies: settings.max_proxies,
        ..Limits::default()
    };
    let (hub, admin_token, token_created) = match &settings.store {
        StoreChoice::Unusable(why) => {
            return Err(StartError::Store(StoreError::Inconsistent(why.clone())));
        }
        StoreChoice::Sqlite => {
            let store = SqliteStore::open(&settings.data)?;
            let (admin_token, token_created) = match given {
                Some(t) => (t, false),
                None => data_dir::load_or_create_token(&settings.data)?,
            };
            let key = data_dir::load_or_create_key(&settings.data)?;
            (
                Hub::open_signed(store, limits, key)?,
                admin_token,
                token_created,
            )
        }
        StoreChoice::Postgres(url) => {
            // The store runs a runtime of its own, which must not be
            // started from inside this one.
            let url = url.clone();
            tokio::task::spawn_blocking(move || -> Result<_, StartError> {
                let mut store = PostgresStore::open(&url)?;
                // The admin token and the signing key are the database's:
                // the same on every node.
                let (admin_token, token_created) = match given {
                    Some(t) => (t, false),
                    None => store.shared_secret("admin_token", data_dir::new_token)?,
                };
                let (seed, _) = store.shared_secret("signing_key", || {
                    hex::encode(crate::core::audit::signing::Key::generate().seed())
                })?;
                let key = data_dir::key_from_hex(&seed).ok_or(StoreError::Inconsistent(
                    "the stored signing key is not 32 bytes of hex".into(),
                ))?;
                Ok((
                    Hub::open_signed(store, limits, key)?,
                    admin_token,
                    token_created,
                ))
            })
            .await
            .map_err(|e| StartError::Runtime(io::Error::other(e)))??
        }
    };
    let mut config = ServerConfig::new(admin_token.clone());
    config.tls = tls.clone();
    config.live.allow_origins = settings.allow_origins;
    config.max_connections = settings.max_connections;
    let live = tokio::runtime::Builder::new_multi_thread()
        .thread_name("votehub-live")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    config.live_runtime = Some(live.handle().clone());
    let token_kept = match &settings.store {
        StoreChoice::Sqlite => settings
            .data
            .join(data_dir::TOKEN_FILE)
            .display()
            .to_string(),
        StoreChoice::Postgres(_) | StoreChoice::Unusable(_) => {
            "the database, shared by every node".into()
        }
    };
    let shutdown = CancellationToken::new();
    if let StoreChoice::Postgres(url) = &settings.store {
        // Owned by the server's token: it stops with it.
        hub.join_cluster();
        tokio::spawn(crate::store::postgres::follow(
            url.clone(),
            hub.clone(),
            shutdown.clone(),
        ));
    }
    let served = tokio::spawn(crate::run(listener, hub.clone(), config, shutdown.clone()));
    Ok(Running {
        hub,
        addr,
        data: settings.data,
        admin_token,
        token_kept,
        token_created,
        tls,
        shutdown,
        served,
        live: Some(live),
    })
}

impl Running {
    /// Cancelling it stops the server as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The addresses participants should open.
    pub fn join_urls(&self) -> Vec<String> {
        crate::net::join_urls(self.addr, self.tls.as_ref())
    }

    /// Waits until the server stops (its token was cancelled), then lets the
    /// hub write what is queued.
    pub async fn wait(mut self) -> io::Result<()> {
        let served = match (&mut self.served).await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(e)),
        };
        self.hub.shutdown().await;
        // Its connections are closed by now; nothing there waits for this.
        if let Some(live) = self.live.take() {
            live.shutdown_background();
        }
        served
    }

    /// Stops serving: live connections are closed with 1001, requests in
    /// flight finish, queued ballots are written.
    pub async fn stop(self) -> io::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A runtime dropped the ordinary way blocks until its tasks end,
        // which a runtime's own thread may not do.
        if let Some(live) = self.live.take() {
            live.shutdown_background();
        }
    }
}
