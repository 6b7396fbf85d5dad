//! The stores behind the core's storage seam (`core::store`): SQLite, the
//! embedded store of the laptop, and PostgreSQL, the store several hubs
//! share. Only this module knows a database.

mod columns;
pub mod migrate;
pub mod postgres;
mod rows;
mod sqlite;

pub use sqlite::{Copied, DB_FILE, SqliteStore, backup};
