//! `votehub migrate`: a laptop's SQLite data directory copied into an
//! empty PostgreSQL database, table by table and row by row as stored (the
//! two schemas hold the same columns in the same encodings), with the
//! admin token and the signing key — so that the logs' heads, signed with
//! it, still verify, and receipts given on the laptop still check. All in
//! one transaction: a copy that fails leaves the database empty.

use rusqlite::{Connection, OpenFlags, types::ValueRef};
use tokio_postgres::types::ToSql;

use crate::core::store::StoreError;
use crate::data_dir;
use crate::store::postgres;
use crate::store::sqlite::{DB_FILE, SqliteStore};

/// A column's type, the same in both schemas.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Blob,
}

use Kind::{Blob, Int, Text};

/// A table: its name; whether its rows keep the order they were made in
/// (SQLite's rowid, PostgreSQL's `ord`); its columns.
type Table = (&'static str, bool, &'static [(&'static str, Kind)]);

/// Every table, parents first.
const TABLES: &[Table] = &[
    (
        "meetings",
        true,
        &[
            ("id", Text),
            ("title", Text),
            ("started_at", Text),
            ("ended_at", Text),
        ],
    ),
    (
        "sessions",
        true,
        &[
            ("id", Text),
            ("meeting_id", Text),
            ("title", Text),
            ("description", Text),
            ("kind", Text),
            ("scale", Text),
            ("options", Text),
            ("seats", Int),
            ("method", Text),
            ("min_marks", Int),
            ("max_marks", Int),
            ("rule", Text),
            ("electorate", Text),
            ("secrecy", Text),
            ("w_from_roll", Int),
            ("deadline_at", Text),
            ("duration_s", Int),
            ("created_at", Text),
            ("status", Text),
            ("position", Int),
            ("opened_at", Text),
            ("closes_at", Text),
            ("closed_at", Text),
            ("result", Text),
            ("elected", Text),
            ("tied", Text),
            ("seq", Int),
        ],
    ),
    (
        "voters",
        true,
        &[
            ("code", Text),
            ("name", Text),
            ("groups", Text),
            ("id", Text),
            ("weight", Int),
            ("proxy_to", Text),
        ],
    ),
    (
        "ballots",
        false,
        &[
            ("session_id", Text),
            ("voter", Text),
            ("choice", Text),
            ("grade", Int),
            ("options", Text),
            ("marks", Text),
            ("cast_at", Text),
            ("weight", Int),
            ("groups", Text),
            ("holder", Text),
        ],
    ),
    (
        "answers",
        false,
        &[
            ("session_id", Text),
            ("voter", Text),
            ("ballot_id", Text),
            ("answer", Text),
        ],
    ),
    (
        "attendance",
        false,
        &[("meeting_id", Text), ("member_id", Text), ("present", Int)],
    ),
    (
        "secret_voted",
        false,
        &[
            ("session_id", Text),
            ("member_id", Text),
            ("holder", Text),
            ("ballot_id", Text),
            ("weight", Int),
        ],
    ),
    (
        "secret_ballots",
        false,
        &[
            ("slot", Int),
            ("session_id", Text),
            ("choice", Text),
            ("grade", Int),
            ("options", Text),
            ("marks", Text),
            ("weight", Int),
            ("tracker", Text),
        ],
    ),
    (
        "logs",
        false,
        &[
            ("id", Int),
            ("session_id", Text),
            ("log_key", Blob),
            ("roll", Text),
        ],
    ),
    (
        "log_entries",
        false,
        &[
            ("id", Int),
            ("entry", Text),
            ("root", Blob),
            ("signature", Blob),
        ],
    ),
];

/// How many rows each table got.
#[derive(Debug, Default)]
pub struct Migrated {
    pub tables: Vec<(&'static str, u64)>,
}

/// Copies the data directory `dir` into the empty database at `url`.
pub fn sqlite_to_postgres(dir: &std::path::Path, url: &str) -> Result<Migrated, StoreError> {
    // Opening it brings an older directory up to date (and refuses a
    // foreign or newer one) before anything is read.
    drop(SqliteStore::open(dir)?);
    let conn = Connection::open_with_flags(dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // The token and the key as kept beside the database, when they are.
    let kept = |file: &str| match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Dir {
            path: dir.join(file),
            source,
        }),
    };
    let secrets = [
        ("admin_token", kept(data_dir::TOKEN_FILE)?),
        ("signing_key", kept(data_dir::KEY_FILE)?),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    rt.block_on(async {
        let pool = postgres::connect(url).await?;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        // Empty: no node has started on it either (a node makes a meeting,
        // a token and a key, which a copy must not replace under it).
        let rows: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM voters)
                      + (SELECT count(*) FROM meetings) + (SELECT count(*) FROM settings)",
                &[],
            )
            .await?
            .try_get(0)?;
        if rows > 0 {
            return Err(StoreError::Inconsistent(format!(
                "{} is not empty ({rows} rows of sessions, members, meetings or settings): votehub migrate copies into an empty database only, before any node starts on it",
                postgres::url_without_password(url)
            )));
        }
        let mut migrated = Migrated::default();
        for (table, ordered, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
            let select = format!(
                "SELECT {} FROM {table}{}",
                names.join(", "),
                if *ordered { " ORDER BY rowid" } else { "" }
            );
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            // Ids the log's rows are keyed by, and the secret ballots'
            // slots, are kept as they are.
            let insert = tx
                .prepare(&format!(
                    "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
                    names.join(", "),
                    placeholders.join(", ")
                ))
                .await?;
            let mut stmt = conn.prepare(&select)?;
            let mut rows = stmt.query([])?;
            let mut n = 0u64;
            while let Some(row) = rows.next()? {
                let mut cells: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(columns.len());
                for (i, (name, kind)) in columns.iter().enumerate() {
                    let value = row.get_ref(i)?;
                    let bad = || StoreError::Inconsistent(format!("{table}.{name}: {value:?}"));
                    cells.push(match (kind, value) {
                        (Text, ValueRef::Null) => Box::new(None::<String>),
                        (Text, ValueRef::Text(t)) => {
                            Box::new(Some(String::from_utf8(t.to_vec()).map_err(|_| bad())?))
                        }
                        (Int, ValueRef::Null) => Box::new(None::<i64>),
                        (Int, ValueRef::Integer(i)) => Box::new(Some(i)),
                        (Blob, ValueRef::Null) => Box::new(None::<Vec<u8>>),
                        (Blob, ValueRef::Blob(b)) => Box::new(Some(b.to_vec())),
                        _ => return Err(bad()),
                    });
                }
                let params: Vec<&(dyn ToSql + Sync)> =
                    cells.iter().map(|c| c.as_ref() as &(dyn ToSql + Sync)).collect();
                tx.execute(&insert, &params).await?;
                n += 1;
            }
            migrated.tables.push((table, n));
        }
        // Identities carry on after the ids copied.
        for (table, column) in [("logs", "id"), ("secret_ballots", "slot")] {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                        coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )
            .await?;
        }
        for (key, value) in &secrets {
            if let Some(value) = value {
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[key, value],
                )
                .await?;
            }
        }
        tx.execute("UPDATE roll_version SET n = n + 1", &[]).await?;
        tx.commit().await?;
        Ok(migrated)
    })
}
