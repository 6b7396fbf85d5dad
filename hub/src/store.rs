//! Durable storage of sessions, ballots and the voter roll. The hub talks
//! to it through the narrow [`Store`] trait (load everything at start, look
//! up one ballot, write a batch atomically), so a shared PostgreSQL store can
//! take its place later; [`SqliteStore`] is the embedded implementation.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use uuid::Uuid;

use crate::tally::{Ballot, Choice};

/// The database file inside the data directory.
pub const DB_FILE: &str = "votehub.db";

/// Written in the SQLite header (`PRAGMA application_id`): "vote" in ASCII.
/// A database without it is someone else's and is never touched.
const APPLICATION_ID: i32 = 0x766f_7465;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is not a votehub database (it belongs to another program); move it away or choose another data directory"
    )]
    Foreign { path: PathBuf },
    #[error("{path} is not a database, or is damaged: {source}")]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} was written by a newer votehub (schema {found}, this one knows {known}); upgrade votehub"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("cannot use data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// The rule as JSON (the hub owns its meaning).
    pub rule: String,
    pub electorate: String,
    pub scale: String,
    /// `None` while open, `Some("adopted" | "rejected")` once closed.
    pub result: Option<String>,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BallotRecord {
    pub voter: String,
    pub ballot: Ballot,
    pub cast_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoterRecord {
    pub code: String,
    pub name: String,
    pub groups: Vec<String>,
}

/// Everything on disk, read once at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// In creation order, each with its ballots.
    pub sessions: Vec<(SessionRecord, Vec<BallotRecord>)>,
    /// In registration order.
    pub voters: Vec<VoterRecord>,
}

/// One change to persist; a batch of them is written atomically.
#[derive(Debug, Clone)]
pub enum Write {
    Session(SessionRecord),
    Ballot {
        session: Uuid,
        seq: u64,
        record: BallotRecord,
    },
    Close {
        session: Uuid,
        seq: u64,
        result: String,
        closed_at: String,
    },
    Voter(VoterRecord),
}

/// What the hub needs from storage. Implementations run on the hub's one
/// writer thread, so they may block.
pub trait Store: Send + 'static {
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// A voter's current ballot in a session, as committed.
    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<Ballot>, StoreError>;
    /// All ballots of a session, in the order they were last cast.
    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError>;
    /// Writes the batch all or nothing; when this returns `Ok` the batch is
    /// durable (it survives a crash of the process and of the machine).
    fn commit(&mut self, batch: &[Write]) -> Result<(), StoreError>;
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
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
    )])
}

fn schema_version() -> usize {
    1
}

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir`. Refuses, without
    /// changing anything, a file that is not a votehub database or comes
    /// from a newer votehub.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let corrupt = |source| StoreError::Corrupt {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(corrupt)?;
        // Reading the header is the first thing that fails on a file that is
        // not SQLite.
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(corrupt)?;
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(corrupt)?;
        let fresh = tables == 0 && app_id == 0 && user_version == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(StoreError::Foreign { path });
        }
        if user_version > schema_version() as i64 {
            return Err(StoreError::TooNew {
                path,
                found: user_version,
                known: schema_version(),
            });
        }
        // WAL lets readers (exports) run beside the writer; FULL makes every
        // commit survive power loss, not only a crash of the process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if fresh {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        migrations().to_latest(&mut conn)?;
        Ok(SqliteStore { conn })
    }
}

fn ballot_columns(ballot: &Ballot) -> (Option<&'static str>, Option<i64>) {
    match ballot {
        Ballot::Choice(c) => (Some(c.as_str()), None),
        Ballot::Grade(g) => (None, Some(i64::from(*g))),
    }
}

fn ballot_from_columns(choice: Option<String>, grade: Option<i64>) -> Result<Ballot, StoreError> {
    match (choice, grade) {
        (Some(c), None) => Choice::parse(&c)
            .map(Ballot::Choice)
            .ok_or_else(|| StoreError::Inconsistent(format!("unknown choice {c:?}"))),
        (None, Some(g)) => {
            Ballot::grade(g).ok_or_else(|| StoreError::Inconsistent(format!("bad grade {g}")))
        }
        other => Err(StoreError::Inconsistent(format!("bad ballot {other:?}"))),
    }
}

fn uuid_column(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Inconsistent(format!("bad session id {s:?}")))
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let mut stmt = self.conn.prepare(
            "SELECT id, title, description, rule, electorate, scale, result, created_at, closed_at, seq
             FROM sessions ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SessionRecord {
                    id: Uuid::nil(),
                    title: r.get(1)?,
                    description: r.get(2)?,
                    rule: r.get(3)?,
                    electorate: r.get(4)?,
                    scale: r.get(5)?,
                    result: r.get(6)?,
                    created_at: r.get(7)?,
                    closed_at: r.get(8)?,
                    seq: r.get::<_, i64>(9)?.max(0) as u64,
                },
            ))
        })?;
        let mut sessions = Vec::new();
        for row in rows {
            let (id, mut record) = row?;
            record.id = uuid_column(&id)?;
            sessions.push(record);
        }
        drop(stmt);
        for record in sessions {
            let ballots = self.ballots(record.id)?;
            loaded.sessions.push((record, ballots));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT code, name, groups FROM voters ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (code, name, groups) = row?;
            let groups = serde_json::from_str(&groups)
                .map_err(|e| StoreError::Inconsistent(format!("voter groups: {e}")))?;
            loaded.voters.push(VoterRecord { code, name, groups });
        }
        Ok(loaded)
    }

    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<Ballot>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT choice, grade FROM ballots WHERE session_id = ?1 AND voter = ?2",
        )?;
        let found = stmt
            .query_row(params![session.to_string(), voter], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()?;
        found.map(|(c, g)| ballot_from_columns(c, g)).transpose()
    }

    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT voter, choice, grade, cast_at FROM ballots WHERE session_id = ?1 ORDER BY cast_at, voter",
        )?;
        let rows = stmt.query_map(params![session.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (voter, choice, grade, cast_at) = row?;
            out.push(BallotRecord {
                voter,
                ballot: ballot_from_columns(choice, grade)?,
                cast_at,
            });
        }
        Ok(out)
    }

    fn commit(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        // The last seq per session, written once per batch rather than once
        // per ballot.
        let mut seqs: Vec<(Uuid, u64)> = Vec::new();
        for write in batch {
            match write {
                Write::Session(s) => {
                    tx.prepare_cached(
                        "INSERT INTO sessions (id, title, description, rule, electorate, scale, result, created_at, closed_at, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?
                    .execute(params![
                        s.id.to_string(),
                        s.title,
                        s.description,
                        s.rule,
                        s.electorate,
                        s.scale,
                        s.result,
                        s.created_at,
                        s.closed_at,
                        s.seq as i64
                    ])?;
                }
                Write::Ballot {
                    session,
                    seq,
                    record,
                } => {
                    let (choice, grade) = ballot_columns(&record.ballot);
                    tx.prepare_cached(
                        "INSERT INTO ballots (session_id, voter, choice, grade, cast_at) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (session_id, voter) DO UPDATE
                         SET choice = excluded.choice, grade = excluded.grade, cast_at = excluded.cast_at",
                    )?
                    .execute(params![
                        session.to_string(),
                        record.voter,
                        choice,
                        grade,
                        record.cast_at
                    ])?;
                    note_seq(&mut seqs, *session, *seq);
                }
                Write::Close {
                    session,
                    seq,
                    result,
                    closed_at,
                } => {
                    tx.prepare_cached(
                        "UPDATE sessions SET result = ?2, closed_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![
                        session.to_string(),
                        result,
                        closed_at
                    ])?;
                    note_seq(&mut seqs, *session, *seq);
                }
                Write::Voter(v) => {
                    let groups = serde_json::to_string(&v.groups)
                        .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
                    tx.prepare_cached(
                        "INSERT INTO voters (code, name, groups) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![v.code, v.name, groups])?;
                }
            }
        }
        for (session, seq) in seqs {
            tx.prepare_cached("UPDATE sessions SET seq = ?2 WHERE id = ?1")?
                .execute(params![session.to_string(), seq as i64])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn note_seq(seqs: &mut Vec<(Uuid, u64)>, session: Uuid, seq: u64) {
    match seqs.iter_mut().find(|(s, _)| *s == session) {
        Some(entry) => entry.1 = entry.1.max(seq),
        None => seqs.push((session, seq)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: Uuid) -> SessionRecord {
        SessionRecord {
            id,
            title: "Budget".into(),
            description: String::new(),
            rule: r#"{"kind":"majority"}"#.into(),
            electorate: "open".into(),
            scale: "choice".into(),
            result: None,
            created_at: "2026-11-25T10:00:00Z".into(),
            closed_at: None,
            seq: 0,
        }
    }

    fn ballot(voter: &str, ballot: Ballot) -> BallotRecord {
        BallotRecord {
            voter: voter.into(),
            ballot,
            cast_at: "2026-11-25T10:01:00Z".into(),
        }
    }

    #[test]
    fn a_committed_batch_is_there_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        {
            let mut store = SqliteStore::open(dir.path()).expect("open");
            store
                .commit(&[
                    Write::Session(session(id)),
                    Write::Ballot {
                        session: id,
                        seq: 1,
                        record: ballot("ann", Ballot::Choice(Choice::For)),
                    },
                    Write::Ballot {
                        session: id,
                        seq: 2,
                        record: ballot("ann", Ballot::Choice(Choice::Against)),
                    },
                    Write::Close {
                        session: id,
                        seq: 3,
                        result: "rejected".into(),
                        closed_at: "2026-11-25T10:02:00Z".into(),
                    },
                    Write::Voter(VoterRecord {
                        code: "ABCD-EFGH".into(),
                        name: "Ann".into(),
                        groups: vec!["smith".into()],
                    }),
                ])
                .expect("commit");
        }
        let mut store = SqliteStore::open(dir.path()).expect("reopen");
        let loaded = store.load().expect("load");
        let (s, ballots) = &loaded.sessions[0];
        assert_eq!(s.seq, 3);
        assert_eq!(s.result.as_deref(), Some("rejected"));
        assert_eq!(ballots.len(), 1, "a re-vote replaces");
        assert_eq!(ballots[0].ballot, Ballot::Choice(Choice::Against));
        assert_eq!(loaded.voters[0].groups, vec!["smith".to_string()]);
        assert_eq!(
            store.ballot(id, "ann").expect("lookup"),
            Some(Ballot::Choice(Choice::Against))
        );
    }

    #[test]
    fn a_failed_batch_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(dir.path()).expect("open");
        let id = Uuid::new_v4();
        // The second session reuses the id: the whole batch must roll back.
        let err = store.commit(&[Write::Session(session(id)), Write::Session(session(id))]);
        assert!(err.is_err());
        assert!(store.load().expect("load").sessions.is_empty());
    }

    #[test]
    fn refuses_foreign_and_corrupt_files_without_touching_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        std::fs::write(
            &path,
            b"these are my holiday notes, not a database at all....",
        )
        .expect("write");
        let before = std::fs::read(&path).expect("read");
        assert!(matches!(
            SqliteStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&path).expect("read"), before);

        let other = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(other.path().join(DB_FILE)).expect("sqlite");
        conn.execute_batch("CREATE TABLE recipes (name TEXT)")
            .expect("create");
        drop(conn);
        assert!(matches!(
            SqliteStore::open(other.path()),
            Err(StoreError::Foreign { .. })
        ));
    }

    #[test]
    fn refuses_a_database_from_a_newer_votehub() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SqliteStore::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "user_version", 99)
            .expect("pragma");
        drop(conn);
        assert!(matches!(
            SqliteStore::open(dir.path()),
            Err(StoreError::TooNew { .. })
        ));
    }
}
