//! votehub: a live voting hub for assemblies.
//!
//! # Layout
//!
//! - [`core`] — sessions, ballots, tallies, rules and the roll; the one
//!   writer thread that changes them; the [`Hub`] handle every door holds;
//!   and the storage seam it declares ([`core::store`]). Knows no HTTP,
//!   WebSocket, Tauri or database.
//! - [`store`] — the stores behind that seam: SQLite on the laptop.
//! - [`http`] — the HTTP door: the API, the pages, their errors.
//! - [`live`] — the `/live` WebSocket door: handshake, connections, their
//!   outlets, and the fan-out that writes each state to every follower.
//! - [`server`] — both doors on one listener ([`net`]: its sockets;
//!   [`tls`]: HTTPS when there is a certificate), with an orderly shutdown; [`launch`] starts and stops a whole hub from
//!   settings ([`config`] reads them), for `votehub serve` and the desktop
//!   app alike.
//!
//! Dependencies point one way: `core::rules` and `core::tally` (pure) ←
//! `core` ← `store`; `core` ← `http`, `live` ← `server` ← `launch` ← the
//! binaries and the desktop shell.

/// votehub's one version (the workspace's): `votehub --version`,
/// `/health`, the pages, the window and the packages show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod config;
pub mod core;
pub mod data_dir;
pub mod http;
pub mod launch;
pub mod live;
pub mod net;
pub mod server;
pub mod store;
pub mod tls;

pub use crate::core::{Hub, HubError, Limits, Subscription};
pub use crate::live::LiveConfig;
pub use crate::server::{ServerConfig, run};
pub use crate::store::SqliteStore;
