//! The SQLite schema, one migration per version. A database written by a
//! newer votehub is refused, never downgraded.

use rusqlite::{Connection, params};
use rusqlite_migration::{M, Migrations};
use uuid::Uuid;

use crate::core::clock::Time;
use crate::core::store::StoreError;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE sessions (
                id          TEXT PRIMARY KEY,
                title       TEXT NOT NULL,
                description TEXT NOT NULL,
                rule        TEXT NOT NULL,
                electorate  TEXT NOT NULL,
                scale       TEXT NOT NULL,
                result      TEXT,
                created_at  TEXT NOT NULL,
                closed_at   TEXT,
                seq         INTEGER NOT NULL
            );
            CREATE TABLE ballots (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                voter       TEXT NOT NULL,
                choice      TEXT,
                grade       INTEGER,
                cast_at     TEXT NOT NULL,
                PRIMARY KEY (session_id, voter),
                CHECK ((choice IS NULL) <> (grade IS NULL))
            ) WITHOUT ROWID;
            CREATE TABLE voters (
                code        TEXT PRIMARY KEY,
                name        TEXT NOT NULL UNIQUE,
                groups      TEXT NOT NULL
            );",
        ),
        // The agenda (drafts, positions, deadlines), elections, meetings,
        // and the answers kept for retried ballots.
        M::up(
            "CREATE TABLE meetings (
                id          TEXT PRIMARY KEY,
                title       TEXT NOT NULL,
                started_at  TEXT NOT NULL,
                ended_at    TEXT
            );
            ALTER TABLE sessions ADD COLUMN meeting_id TEXT REFERENCES meetings(id);
            ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'motion';
            ALTER TABLE sessions ADD COLUMN options TEXT;
            ALTER TABLE sessions ADD COLUMN seats INTEGER;
            ALTER TABLE sessions ADD COLUMN method TEXT;
            ALTER TABLE sessions ADD COLUMN min_marks INTEGER;
            ALTER TABLE sessions ADD COLUMN max_marks INTEGER;
            ALTER TABLE sessions ADD COLUMN deadline_at TEXT;
            ALTER TABLE sessions ADD COLUMN duration_s INTEGER;
            ALTER TABLE sessions ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
            ALTER TABLE sessions ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE sessions ADD COLUMN opened_at TEXT;
            ALTER TABLE sessions ADD COLUMN closes_at TEXT;
            ALTER TABLE sessions ADD COLUMN elected TEXT;
            ALTER TABLE sessions ADD COLUMN tied TEXT;
            UPDATE sessions SET
                status = CASE WHEN result IS NULL THEN 'open' ELSE 'closed' END,
                opened_at = created_at,
                position = rowid;
            CREATE TABLE ballots_v2 (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                voter       TEXT NOT NULL,
                choice      TEXT,
                grade       INTEGER,
                options     TEXT,
                marks       TEXT,
                cast_at     TEXT NOT NULL,
                PRIMARY KEY (session_id, voter),
                CHECK ((choice IS NOT NULL) + (grade IS NOT NULL)
                       + (options IS NOT NULL) + (marks IS NOT NULL) = 1)
            ) WITHOUT ROWID;
            INSERT INTO ballots_v2 (session_id, voter, choice, grade, cast_at)
                SELECT session_id, voter, choice, grade, cast_at FROM ballots;
            DROP TABLE ballots;
            ALTER TABLE ballots_v2 RENAME TO ballots;
            CREATE TABLE answers (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                voter       TEXT NOT NULL,
                ballot_id   TEXT NOT NULL,
                answer      TEXT NOT NULL,
                PRIMARY KEY (session_id, voter, ballot_id)
            ) WITHOUT ROWID;",
        ),
        // Who votes, and how much: members with an id that outlives their
        // code, weights, proxies, attendance, and secret ballots kept apart
        // from who cast them.
        M::up(
            "ALTER TABLE voters ADD COLUMN id TEXT;
            UPDATE voters SET id = code;
            CREATE UNIQUE INDEX voters_id ON voters(id);
            ALTER TABLE voters ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
            ALTER TABLE voters ADD COLUMN proxy_to TEXT;
            ALTER TABLE ballots ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
            ALTER TABLE ballots ADD COLUMN groups TEXT;
            ALTER TABLE ballots ADD COLUMN holder TEXT;
            ALTER TABLE sessions ADD COLUMN secrecy TEXT NOT NULL DEFAULT 'named';
            ALTER TABLE sessions ADD COLUMN w_from_roll INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE attendance (
                meeting_id  TEXT NOT NULL REFERENCES meetings(id),
                member_id   TEXT NOT NULL,
                present     INTEGER NOT NULL,
                PRIMARY KEY (meeting_id, member_id)
            ) WITHOUT ROWID;
            CREATE TABLE secret_voted (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                member_id   TEXT NOT NULL,
                holder      TEXT,
                ballot_id   TEXT,
                PRIMARY KEY (session_id, member_id)
            ) WITHOUT ROWID;
            CREATE TABLE secret_ballots (
                slot        INTEGER PRIMARY KEY,
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                choice      TEXT,
                grade       INTEGER,
                options     TEXT,
                marks       TEXT,
                weight      INTEGER NOT NULL,
                tracker     TEXT NOT NULL,
                CHECK ((choice IS NOT NULL) + (grade IS NOT NULL)
                       + (options IS NOT NULL) + (marks IS NOT NULL) = 1)
            );
            CREATE INDEX secret_ballots_session ON secret_ballots(session_id);",
        ),
        // The audit log: each session's entries and signed heads, the key
        // of its voters' pseudonyms, and the roll as the vote opened; and
        // the weight each secret voter counted with (the log lists it),
        // taken from the roll for votes already running.
        M::up(
            "ALTER TABLE secret_voted ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
            UPDATE secret_voted SET weight = coalesce(
                (SELECT weight FROM voters WHERE voters.id = secret_voted.member_id), 1);
            CREATE TABLE logs (
                session_id  TEXT PRIMARY KEY REFERENCES sessions(id),
                log_key     BLOB NOT NULL,
                roll        TEXT
            ) WITHOUT ROWID;
            CREATE TABLE log_entries (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                idx         INTEGER NOT NULL,
                entry       TEXT NOT NULL,
                PRIMARY KEY (session_id, idx)
            ) WITHOUT ROWID;
            CREATE TABLE log_heads (
                session_id  TEXT NOT NULL REFERENCES sessions(id),
                size        INTEGER NOT NULL,
                root        BLOB NOT NULL,
                signature   BLOB NOT NULL,
                PRIMARY KEY (session_id, size)
            ) WITHOUT ROWID;",
        ),
        // The log's rows keyed by one integer, (log << 32) | index: every
        // commit appends at the end of a rowid table, which SQLite fills
        // page by page, where the (session text, index) key of a WITHOUT
        // ROWID table split its pages in half and rewrote them. A head
        // signed over the first n entries is kept on entry n - 1, a page
        // the commit writes anyway, not in a table of its own: 27 pages
        // written per commit of ballots became 12 without the log, and
        // 21 then 17 with it (docs/BENCHMARKS.md, issue 14).
        M::up(
            "CREATE TABLE logs_v5 (
                id          INTEGER PRIMARY KEY,
                session_id  TEXT NOT NULL UNIQUE REFERENCES sessions(id),
                log_key     BLOB NOT NULL,
                roll        TEXT
            );
            INSERT INTO logs_v5 (session_id, log_key, roll)
                SELECT l.session_id, l.log_key, l.roll FROM logs l
                JOIN sessions s ON s.id = l.session_id ORDER BY s.created_at, s.id;
            CREATE TABLE log_entries_v5 (
                id          INTEGER PRIMARY KEY,
                entry       TEXT NOT NULL,
                root        BLOB,
                signature   BLOB,
                CHECK ((root IS NULL) = (signature IS NULL))
            );
            INSERT INTO log_entries_v5 (id, entry, root, signature)
                SELECT (l.id << 32) | e.idx, e.entry, h.root, h.signature FROM log_entries e
                JOIN logs_v5 l ON l.session_id = e.session_id
                LEFT JOIN log_heads h ON h.session_id = e.session_id AND h.size = e.idx + 1
                ORDER BY 1;
            DROP TABLE log_heads;
            DROP TABLE log_entries;
            DROP TABLE logs;
            ALTER TABLE logs_v5 RENAME TO logs;
            ALTER TABLE log_entries_v5 RENAME TO log_entries;",
        ),
    ])
}

pub fn schema_version() -> usize {
    5
}

/// The rows of log `log` in `log_entries` are those whose id lies in
/// `[log << 32, (log << 32) | LOG_MASK]`; the low bits are the entry's
/// index.
pub const LOG_MASK: i64 = 0xFFFF_FFFF;

/// The row id of entry `index` of log `log`.
pub fn log_row(log: i64, index: u64) -> Result<i64, StoreError> {
    i64::try_from(index)
        .ok()
        .filter(|i| *i <= LOG_MASK)
        .map(|i| (log << 32) | i)
        .ok_or_else(|| StoreError::Inconsistent(format!("log index {index} beyond 2^32")))
}

/// Sessions kept from before meetings existed belong to one meeting, begun
/// when the first of them was made.
pub fn adopt_orphans(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let orphans: i64 = tx.query_row(
        "SELECT count(*) FROM sessions WHERE meeting_id IS NULL",
        [],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        let first: Option<String> = tx.query_row(
            "SELECT min(created_at) FROM sessions WHERE meeting_id IS NULL",
            [],
            |r| r.get(0),
        )?;
        let started = first.unwrap_or_else(|| Time::now().to_rfc3339());
        let id = Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO meetings (id, title, started_at) VALUES (?1, 'Assembly', ?2)",
            params![id, started],
        )?;
        tx.execute(
            "UPDATE sessions SET meeting_id = ?1 WHERE meeting_id IS NULL",
            params![id],
        )?;
    }
    tx.commit()?;
    Ok(())
}
