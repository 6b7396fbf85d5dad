//! The embedded store: one SQLite file in the data directory, in WAL mode
//! with every commit synced (`synchronous=FULL`). This process is its only
//! writer, so the core's memory of a session is always current.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};
use uuid::Uuid;

use crate::core::roll::RollEntry;
use crate::core::rules::{Outcome, Rule};
use crate::core::session::{Electorate, SessionMeta, Status};
use crate::core::store::{
    BallotRecord, Loaded, Locked, Store, StoreError, StoredSession, Txn, Write,
};
use crate::core::tally::{Ballot, Choice, Scale};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

impl From<rusqlite_migration::Error> for StoreError {
    fn from(e: rusqlite_migration::Error) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "votehub.db";

/// Written in the SQLite header (`PRAGMA application_id`): "vote" in ASCII.
/// A database without it is someone else's and is never touched.
const APPLICATION_ID: i32 = 0x766f_7465;

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
        let corrupt = |source: rusqlite::Error| StoreError::Corrupt {
            path: path.clone(),
            source: Box::new(source),
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

// ── Column encodings: the one place where typed values become text ──────

fn electorate_column(e: Electorate) -> &'static str {
    match e {
        Electorate::Open => "open",
        Electorate::Roll => "roll",
    }
}

fn electorate_from(s: &str) -> Result<Electorate, StoreError> {
    match s {
        "open" => Ok(Electorate::Open),
        "roll" => Ok(Electorate::Roll),
        other => Err(StoreError::Inconsistent(format!(
            "unknown electorate {other:?}"
        ))),
    }
}

fn scale_column(s: Scale) -> &'static str {
    match s {
        Scale::Choice => "choice",
        Scale::Nuanced => "nuanced",
    }
}

fn scale_from(s: &str) -> Result<Scale, StoreError> {
    match s {
        "choice" => Ok(Scale::Choice),
        "nuanced" => Ok(Scale::Nuanced),
        other => Err(StoreError::Inconsistent(format!("unknown scale {other:?}"))),
    }
}

fn outcome_column(o: Outcome) -> &'static str {
    o.as_str()
}

fn outcome_from(s: &str) -> Result<Outcome, StoreError> {
    match s {
        "adopted" => Ok(Outcome::Adopted),
        "rejected" => Ok(Outcome::Rejected),
        other => Err(StoreError::Inconsistent(format!(
            "unknown result {other:?}"
        ))),
    }
}

/// The rule is kept as its JSON wire form, which the rule module owns and
/// validates again when it is read back.
fn rule_column(rule: &Rule) -> Result<String, StoreError> {
    serde_json::to_string(rule).map_err(|e| StoreError::Inconsistent(format!("rule: {e}")))
}

fn rule_from(s: &str) -> Result<Rule, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Inconsistent(format!("rule: {e}")))
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

fn groups_column(groups: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(groups).map_err(|e| StoreError::Inconsistent(e.to_string()))
}

fn groups_from(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Inconsistent(format!("voter groups: {e}")))
}

/// Every ballot of a session, in the order they were last cast.
fn read_ballots(conn: &Connection, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
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

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let mut stmt = self.conn.prepare(
            "SELECT id, title, description, rule, electorate, scale, result, created_at, closed_at, seq
             FROM sessions ORDER BY rowid",
        )?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            i64,
        );
        let rows = stmt.query_map([], |r| -> rusqlite::Result<Row> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?;
        let mut rows_read = Vec::new();
        for row in rows {
            rows_read.push(row?);
        }
        drop(stmt);
        for (id, title, description, rule, electorate, scale, result, created_at, closed_at, seq) in
            rows_read
        {
            let id = uuid_column(&id)?;
            let result = result.as_deref().map(outcome_from).transpose()?;
            loaded.sessions.push(StoredSession {
                meta: SessionMeta {
                    id,
                    title,
                    description,
                    rule: rule_from(&rule)?,
                    electorate: electorate_from(&electorate)?,
                    scale: scale_from(&scale)?,
                    created_at,
                },
                status: if result.is_some() {
                    Status::Closed
                } else {
                    Status::Open
                },
                result,
                closed_at,
                seq: seq.max(0) as u64,
                ballots: read_ballots(&self.conn, id)?,
            });
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
            loaded.voters.push(RollEntry {
                code,
                name,
                groups: groups_from(&groups)?,
            });
        }
        Ok(loaded)
    }

    fn begin(&mut self) -> Result<Box<dyn Txn + '_>, StoreError> {
        Ok(Box::new(SqliteTxn {
            tx: self.conn.transaction()?,
        }))
    }

    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
        read_ballots(&self.conn, session)
    }
}

struct SqliteTxn<'a> {
    tx: Transaction<'a>,
}

impl Txn for SqliteTxn<'_> {
    fn lock_sessions(&mut self, _ids: &[Uuid]) -> Result<Locked, StoreError> {
        // This process is the file's only writer.
        Ok(Locked::Current)
    }

    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<Ballot>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT choice, grade FROM ballots WHERE session_id = ?1 AND voter = ?2",
        )?;
        let found = stmt
            .query_row(params![session.to_string(), voter], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()?;
        found.map(|(c, g)| ballot_from_columns(c, g)).transpose()
    }

    fn write(&mut self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Session(m) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO sessions (id, title, description, rule, electorate, scale, result, created_at, closed_at, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, NULL, 0)",
                    )?
                    .execute(params![
                        m.id.to_string(),
                        m.title,
                        m.description,
                        rule_column(&m.rule)?,
                        electorate_column(m.electorate),
                        scale_column(m.scale),
                        m.created_at,
                    ])?;
            }
            Write::Ballot { session, record } => {
                let (choice, grade) = ballot_columns(&record.ballot);
                self.tx
                    .prepare_cached(
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
            }
            Write::State { session, state } => {
                self.tx
                    .prepare_cached(
                        "UPDATE sessions SET result = ?2, closed_at = ?3, seq = ?4 WHERE id = ?1",
                    )?
                    .execute(params![
                        session.to_string(),
                        state.result.map(outcome_column),
                        state.closed_at,
                        state.seq as i64
                    ])?;
            }
            Write::Voter(v) => {
                self.tx
                    .prepare_cached("INSERT INTO voters (code, name, groups) VALUES (?1, ?2, ?3)")?
                    .execute(params![v.code, v.name, groups_column(&v.groups)?])?;
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session::SessionState;

    fn meta(id: Uuid) -> SessionMeta {
        SessionMeta {
            id,
            title: "Budget".into(),
            description: String::new(),
            rule: Rule::default(),
            electorate: Electorate::Open,
            scale: Scale::Choice,
            created_at: "2026-11-25T10:00:00Z".into(),
        }
    }

    fn ballot(voter: &str, ballot: Ballot) -> BallotRecord {
        BallotRecord {
            voter: voter.into(),
            ballot,
            cast_at: "2026-11-25T10:01:00Z".into(),
        }
    }

    fn commit(store: &mut SqliteStore, writes: &[Write]) -> Result<(), StoreError> {
        let mut txn = store.begin()?;
        for w in writes {
            txn.write(w)?;
        }
        txn.commit()
    }

    #[test]
    fn a_committed_batch_is_there_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        {
            let mut store = SqliteStore::open(dir.path()).expect("open");
            let mut closed = SessionState::new(Scale::Choice);
            closed.status = Status::Closed;
            closed.result = Some(Outcome::Rejected);
            closed.closed_at = Some("2026-11-25T10:02:00Z".into());
            closed.seq = 3;
            commit(
                &mut store,
                &[
                    Write::Session(meta(id)),
                    Write::Ballot {
                        session: id,
                        record: ballot("ann", Ballot::Choice(Choice::For)),
                    },
                    Write::Ballot {
                        session: id,
                        record: ballot("ann", Ballot::Choice(Choice::Against)),
                    },
                    Write::State {
                        session: id,
                        state: closed,
                    },
                    Write::Voter(RollEntry {
                        code: "ABCD-EFGH".into(),
                        name: "Ann".into(),
                        groups: vec!["smith".into()],
                    }),
                ],
            )
            .expect("commit");
        }
        let mut store = SqliteStore::open(dir.path()).expect("reopen");
        let loaded = store.load().expect("load");
        let s = &loaded.sessions[0];
        assert_eq!(s.meta, meta(id));
        assert_eq!(s.seq, 3);
        assert_eq!(s.result, Some(Outcome::Rejected));
        assert_eq!(s.status, Status::Closed);
        assert_eq!(s.ballots.len(), 1, "a re-vote replaces");
        assert_eq!(s.ballots[0].ballot, Ballot::Choice(Choice::Against));
        assert_eq!(loaded.voters[0].groups, vec!["smith".to_string()]);
        let mut txn = store.begin().expect("begin");
        assert_eq!(
            txn.ballot(id, "ann").expect("lookup"),
            Some(Ballot::Choice(Choice::Against))
        );
    }

    #[test]
    fn a_transaction_reads_its_own_writes_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(dir.path()).expect("open");
        let id = Uuid::new_v4();
        {
            let mut txn = store.begin().expect("begin");
            txn.write(&Write::Session(meta(id))).expect("session");
            txn.write(&Write::Ballot {
                session: id,
                record: ballot("bob", Ballot::Grade(2)),
            })
            .expect("ballot");
            assert_eq!(txn.ballot(id, "bob").expect("read"), Some(Ballot::Grade(2)));
        }
        assert!(store.load().expect("load").sessions.is_empty());
    }

    #[test]
    fn a_failed_batch_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(dir.path()).expect("open");
        let id = Uuid::new_v4();
        // The second session reuses the id: the whole batch must roll back.
        let err = commit(
            &mut store,
            &[Write::Session(meta(id)), Write::Session(meta(id))],
        );
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
