//! PostgreSQL, the store several hubs share (PROTOCOL.md §8): connections
//! from a bounded pool (`deadpool-postgres` over `tokio-postgres`), each
//! with `synchronous_commit` on, so that a commit the hub acknowledges is
//! on the server's disk; and the schema brought up to date at connection.
//! Only this module knows PostgreSQL.

mod ahead;
mod bulk;
mod follow;
mod pipeline;
mod read;
mod schema;
mod store;
mod voters;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::core::store::StoreError;

pub use follow::follow;
pub use schema::{schema_version, url_without_password};
pub use store::PostgresStore;

/// The channel of `LISTEN`/`NOTIFY` on which each commit says which
/// session changed and its new `seq` (`"{id} {seq}"`).
pub const CHANNEL: &str = "votehub";

impl From<tokio_postgres::Error> for StoreError {
    /// The database's own words for its error, but never their detail:
    /// PostgreSQL's detail may quote a row ("Failing row contains …"),
    /// and a row may hold a voting code or a secret ballot.
    fn from(e: tokio_postgres::Error) -> StoreError {
        let said = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        StoreError::Database(said.into())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

/// Connections one node keeps at most: the writer's, the listener's and
/// a few readers'; a cluster of nodes stays far below the server's
/// default `max_connections` (100).
pub const POOL_SIZE: usize = 8;

/// How long a node waits at most for a connection to the database.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection's own bounds: connecting, and a database cut off without
/// a word (no reset, no answer), noticed within half a minute.
pub(crate) fn bound(config: &mut tokio_postgres::Config) {
    config.connect_timeout(TIMEOUT);
    config.keepalives_idle(std::time::Duration::from_secs(10));
    config.keepalives_interval(std::time::Duration::from_secs(5));
    config.keepalives_retries(3);
    config.tcp_user_timeout(std::time::Duration::from_secs(30));
}

/// A pool of connections to the database at `url`, whose schema is
/// brought up to date (by this node, or one started at the same moment).
pub async fn connect(url: &str) -> Result<Pool, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::Inconsistent(format!(
            "{} is not a PostgreSQL URL: {e}",
            url_without_password(url)
        ))
    })?;
    // Whatever the server's default: an acknowledged ballot is durable.
    // And every wait is bounded: a lock held by a node that hangs, an
    // idle transaction of a node cut off, a statement that never ends.
    config.options(
        "-c synchronous_commit=on -c lock_timeout=10s -c statement_timeout=30s \
         -c idle_in_transaction_session_timeout=30s",
    );
    config.application_name("votehub");
    bound(&mut config);
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            // A connection handed out again is checked with a round trip
            // first: after the server restarts, the old ones are dead
            // before their sockets say so.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(TIMEOUT))
        .create_timeout(Some(TIMEOUT))
        .recycle_timeout(Some(TIMEOUT))
        .build()
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    let mut client = pool.get().await?;
    schema::migrate(&mut client, url).await?;
    Ok(pool)
}
