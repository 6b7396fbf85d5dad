//! The stores behind the core's storage seam (`core::store`): SQLite, the
//! embedded store of the laptop. Only this module knows a database.

mod sqlite;

pub use sqlite::{Copied, DB_FILE, SqliteStore, backup};
