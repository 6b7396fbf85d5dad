//! votehub: a live voting hub for assemblies. The core ([`Hub`]) owns
//! sessions, ballots, tallies and rules and keeps them durable in a
//! [`Store`]; [`run`] serves it over HTTP and the `/live` WebSocket. The
//! desktop app and the `votehub` binary are thin shells over these.
//!
//! Dependencies point one way: `rules` and `tally` (pure) ← `hub` ← `store`;
//! `protocol` declares the wire once; `http` and `live` are the doors (`live`
//! writes through `outlet`s that `fanout` feeds), and `error` maps every
//! error to the wire in one place.

pub mod data_dir;
pub mod error;
pub mod export;
pub mod fanout;
pub mod frame_limit;
pub mod http;
pub mod hub;
pub mod launch;
pub mod live;
pub mod network;
pub mod outlet;
pub mod pages;
pub mod protocol;
pub mod rules;
#[cfg(test)]
mod rules_oracle;
pub mod server;
pub mod store;
pub mod tally;

pub use hub::{Hub, HubError, Limits, Subscription};
pub use live::LiveConfig;
pub use server::{ServerConfig, run};
pub use store::{SqliteStore, Store, StoreError};
