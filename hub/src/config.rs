//! The hub's settings from the command line and the environment: the one
//! reader of `VOTEHUB_*`. `votehub serve` takes flags and their env forms;
//! the desktop app takes the env forms alone, over its saved settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::launch::{Settings, StoreChoice, TlsFiles};

/// What starts a hub, as flags (with their `VOTEHUB_*` forms).
#[derive(Args, Debug, Clone)]
pub struct HubArgs {
    /// Address and port to listen on; 0.0.0.0 makes the hub reachable from the LAN.
    #[arg(long, env = "VOTEHUB_BIND", default_value = "0.0.0.0:8765")]
    pub bind: SocketAddr,
    /// Data directory (database, admin token). Default: the platform data dir.
    #[arg(long, env = "VOTEHUB_DATA")]
    pub data: Option<PathBuf>,
    /// Admin token for moderator calls. Default: generated at first start and kept in the data dir.
    #[arg(long, env = "VOTEHUB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Extra browser origin allowed to open /live (repeatable).
    #[arg(
        long = "allow-origin",
        env = "VOTEHUB_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,
    /// Open connections at most (HTTP and live); keep below the file-descriptor limit.
    #[arg(long, env = "VOTEHUB_MAX_CONNECTIONS", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Proxies one member may hold at once.
    #[arg(long, env = "VOTEHUB_MAX_PROXIES", default_value_t = 2)]
    pub max_proxies: usize,
    /// Serve HTTPS and wss:// with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "VOTEHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "VOTEHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where to keep everything: `sqlite` (in the data dir) or a postgres://… URL shared by several hubs.
    // Read as text and checked at start: clap would repeat a refused
    // value, password and all, in its error.
    #[arg(
        long,
        env = "VOTEHUB_STORE",
        default_value = "sqlite",
        hide_env_values = true
    )]
    pub store: String,
}

impl HubArgs {
    /// What `votehub serve` starts with.
    pub fn settings(self) -> Settings {
        let mut settings = Settings::new(
            self.bind,
            self.data.unwrap_or_else(crate::data_dir::default_dir),
        );
        settings.admin_token = self.admin_token;
        settings.allow_origins = clean(self.allow_origins);
        settings.max_connections = self.max_connections;
        settings.max_proxies = self.max_proxies;
        settings.tls = tls_files(self.tls_cert, self.tls_key);
        settings.store = self.store.parse().unwrap_or_else(StoreChoice::Unusable);
        settings
    }
}

fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> Option<TlsFiles> {
    Some(TlsFiles {
        cert: cert?,
        key: key?,
    })
}

fn clean(origins: Vec<String>) -> Vec<String> {
    origins
        .into_iter()
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect()
}

/// What the environment says for this run, each setting only if its
/// `VOTEHUB_*` variable is set: the desktop app lays these over the
/// settings saved in its window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOverrides {
    pub bind: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub allow_origins: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub max_proxies: Option<usize>,
    pub tls: Option<TlsFiles>,
}

#[derive(Parser)]
#[command(name = "votehub-desktop", no_binary_name = true)]
struct EnvOnly {
    #[command(flatten)]
    hub: HubArgs,
}

impl EnvOverrides {
    /// Reads the `VOTEHUB_*` variables exactly as `votehub serve` does.
    /// An unusable value is an error naming the variable.
    pub fn from_env() -> Result<EnvOverrides, String> {
        let matches = EnvOnly::command()
            .try_get_matches_from(std::iter::empty::<String>())
            .map_err(|e| first_line(&e.render().to_string()))?;
        let args = EnvOnly::from_arg_matches(&matches)
            .map_err(|e| first_line(&e.render().to_string()))?
            .hub;
        let set = |id: &str| matches.value_source(id) == Some(ValueSource::EnvVariable);
        Ok(EnvOverrides {
            bind: set("bind").then_some(args.bind),
            data: set("data").then_some(args.data).flatten(),
            admin_token: set("admin_token").then_some(args.admin_token).flatten(),
            allow_origins: set("allow_origins").then(|| clean(args.allow_origins)),
            max_connections: set("max_connections").then_some(args.max_connections),
            max_proxies: set("max_proxies").then_some(args.max_proxies),
            tls: (set("tls_cert") && set("tls_key"))
                .then(|| tls_files(args.tls_cert, args.tls_key))
                .flatten(),
        })
    }

    /// `settings` with this run's overrides laid over them.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(bind) = self.bind {
            settings.bind = bind;
        }
        if let Some(data) = &self.data {
            settings.data = data.clone();
        }
        if let Some(token) = &self.admin_token {
            settings.admin_token = Some(token.clone());
        }
        if let Some(origins) = &self.allow_origins {
            settings.allow_origins = origins.clone();
        }
        if let Some(max) = self.max_connections {
            settings.max_connections = max;
        }
        if let Some(max) = self.max_proxies {
            settings.max_proxies = max;
        }
        if let Some(tls) = &self.tls {
            settings.tls = Some(tls.clone());
        }
    }
}

fn first_line(rendered: &str) -> String {
    rendered
        .lines()
        .next()
        .unwrap_or("invalid settings")
        .trim_start_matches("error: ")
        .to_owned()
}

/// What the hub logs: `RUST_LOG`'s choice, or `info` — but never the
/// PostgreSQL driver's debug lines, which print every query's parameters
/// (voting codes, names, secret ballots).
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match "tokio_postgres=warn".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    }
}
