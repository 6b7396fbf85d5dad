//! The embedded store: one SQLite file in the data directory, in WAL mode
//! with every commit synced (`synchronous=FULL`). This process is its only
//! writer, so the core's memory of a session is always current.

mod backup;
mod read;
mod schema;
#[cfg(test)]
mod tests;

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use uuid::Uuid;

use crate::core::clock::Time;
use crate::core::meeting::Meeting;
use crate::core::roll::Member;
use crate::core::session::SessionMeta;
use crate::core::store::{
    BallotRecord, Loaded, Locked, LogRecord, SecretBallot, SecretVoter, Store, StoreError,
    StoredSession, Txn, Voted, Write,
};

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

use crate::store::columns;
use crate::store::rows::{SESSION_COLUMNS, ballot_record, session_from};
pub use backup::{Copied, backup};
use read::*;

/// The database file inside the data directory.
pub const DB_FILE: &str = "votehub.db";

/// Written in the SQLite header (`PRAGMA application_id`): "vote" in ASCII.
/// A database without it is someone else's and is never touched.
const APPLICATION_ID: i32 = 0x766f_7465;

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
        if user_version > schema::schema_version() as i64 {
            return Err(StoreError::TooNew {
                path,
                found: user_version,
                known: schema::schema_version(),
            });
        }
        // WAL lets readers (exports) run beside the writer; FULL makes every
        // commit survive power loss, not only a crash of the process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content is overwritten, not left in free pages: a secret
        // vote's history must not outlive it in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        // Temporary tables (a secret vote shuffled at its close) never
        // touch the disk.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        if fresh {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        schema::migrations().to_latest(&mut conn)?;
        schema::adopt_orphans(&mut conn)?;
        let mut store = SqliteStore { conn };
        // A secret vote closed just before a crash may have left its
        // history in the log: nothing else reads the file yet, so it goes.
        store.scrub()?;
        Ok(store)
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        {
            let mut stmt = self.conn.prepare(
                "SELECT id, title, started_at, ended_at FROM meetings ORDER BY started_at, rowid",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                loaded.meetings.push(Meeting {
                    id: columns::uuid_from(&r.get::<_, String>(0)?)?,
                    title: r.get(1)?,
                    started_at: columns::time_from(&r.get::<_, String>(2)?)?,
                    ended_at: r
                        .get::<_, Option<String>>(3)?
                        .as_deref()
                        .map(columns::time_from)
                        .transpose()?,
                });
            }
        }
        {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY rowid"
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                loaded.sessions.push(session_from(r)?);
            }
        }
        for session in &mut loaded.sessions {
            session.ballots = read_ballots(&self.conn, session.meta.id)?;
            (session.secret, session.voted) = read_secret(&self.conn, session.meta.id)?;
            session.log = read_log(&self.conn, session.meta.id)?;
        }
        {
            let mut stmt = self.conn.prepare(
                "SELECT id, code, name, groups, weight, proxy_to FROM voters ORDER BY rowid",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                loaded.voters.push(Member {
                    id: r.get(0)?,
                    code: r.get(1)?,
                    name: r.get(2)?,
                    groups: columns::names_from(&r.get::<_, String>(3)?)?,
                    weight: columns::weight_from(r.get(4)?)?,
                    proxy_to: r.get(5)?,
                });
            }
        }
        if let Some(current) = loaded.meetings.last() {
            (loaded.present, loaded.checked) = read_presence(&self.conn, current.id)?;
        }
        Ok(loaded)
    }

    fn begin(&mut self) -> Result<Box<dyn Txn + '_>, StoreError> {
        Ok(Box::new(SqliteTxn {
            tx: self.conn.transaction()?,
            logs: Vec::new(),
        }))
    }

    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
        read_ballots(&self.conn, session)
    }

    fn secret(&mut self, session: Uuid) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError> {
        read_secret(&self.conn, session)
    }

    fn log(&mut self, session: Uuid) -> Result<LogRecord, StoreError> {
        read_log_record(&self.conn, session)
    }

    /// Copies the write-ahead log into the database and empties it: the
    /// log holds each commit's pages in the order they were written, which
    /// for a secret vote would keep who-voted beside what-was-voted.
    /// (`secure_delete` zeroes what the database itself frees.)
    fn scrub(&mut self) -> Result<bool, StoreError> {
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok(busy == 0)
    }
}

struct SqliteTxn<'a> {
    tx: Transaction<'a>,
    /// The integer ids of the logs this transaction wrote to: looked up
    /// once per batch, not once per entry.
    logs: Vec<(Uuid, i64)>,
}

impl SqliteTxn<'_> {
    /// The row id of entry (or head) `index` of `session`'s log.
    fn log_row(&mut self, session: Uuid, index: u64) -> Result<i64, StoreError> {
        let log = match self.logs.iter().find(|(s, _)| *s == session) {
            Some((_, log)) => *log,
            None => {
                let log = read::log_id(&self.tx, session)?.ok_or_else(|| {
                    StoreError::Inconsistent(format!("session {session} has no log"))
                })?;
                self.logs.push((session, log));
                log
            }
        };
        schema::log_row(log, index)
    }

    fn write_session(&mut self, m: &SessionMeta) -> Result<(), StoreError> {
        let c = crate::store::rows::SessionColumns::of(m)?;
        // A new session is inserted; a draft edited keeps its state columns.
        self.tx
            .prepare_cached(
                "INSERT INTO sessions (id, meeting_id, title, description, kind, scale, options, seats,
                    method, min_marks, max_marks, rule, electorate, deadline_at, duration_s, created_at,
                    secrecy, w_from_roll, status, position, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                    'draft', 0, 0)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                    description = excluded.description, kind = excluded.kind, scale = excluded.scale,
                    options = excluded.options, seats = excluded.seats, method = excluded.method,
                    min_marks = excluded.min_marks, max_marks = excluded.max_marks,
                    rule = excluded.rule, electorate = excluded.electorate,
                    deadline_at = excluded.deadline_at, duration_s = excluded.duration_s,
                    secrecy = excluded.secrecy, w_from_roll = excluded.w_from_roll",
            )?
            .execute(params![
                m.id.to_string(),
                m.meeting.to_string(),
                m.title,
                m.description,
                c.kind,
                c.scale,
                c.options,
                c.seats,
                c.method,
                c.min,
                c.max,
                columns::rule(&m.rule)?,
                columns::electorate(m.electorate),
                c.deadline_at,
                c.duration_s,
                m.created_at.to_rfc3339(),
                columns::secrecy(m.secrecy),
                i64::from(m.w_from_roll),
            ])?;
        Ok(())
    }
}

impl Txn for SqliteTxn<'_> {
    fn lock_sessions(&mut self, _ids: &[Uuid], _roll: bool) -> Result<Locked, StoreError> {
        // This process is the file's only writer.
        Ok(Locked::Current)
    }

    fn now(&mut self) -> Result<Time, StoreError> {
        Ok(Time::now())
    }

    fn session(&mut self, id: Uuid) -> Result<Option<StoredSession>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        ))?;
        let mut rows = stmt.query(params![id.to_string()])?;
        let Some(mut session) = rows.next()?.map(session_from).transpose()? else {
            return Ok(None);
        };
        session.ballots = read_ballots(&self.tx, id)?;
        (session.secret, session.voted) = read_secret(&self.tx, id)?;
        session.log = read_log(&self.tx, id)?;
        Ok(Some(session))
    }

    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<BallotRecord>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT voter, choice, grade, options, marks, cast_at, weight, groups, holder
             FROM ballots WHERE session_id = ?1 AND voter = ?2",
        )?;
        let mut rows = stmt.query(params![session.to_string(), voter])?;
        rows.next()?.map(ballot_record).transpose()
    }

    fn voted(&mut self, session: Uuid, member: &str) -> Result<Option<Voted>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT ballot_id FROM secret_voted WHERE session_id = ?1 AND member_id = ?2",
        )?;
        Ok(stmt
            .query_row(params![session.to_string(), member], |r| {
                Ok(Voted {
                    ballot_id: r.get(0)?,
                })
            })
            .optional()?)
    }

    fn secret_all(
        &mut self,
        session: Uuid,
    ) -> Result<(Vec<SecretBallot>, Vec<SecretVoter>), StoreError> {
        let (ballots, _) = read_secret(&self.tx, session)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT member_id, holder, weight FROM secret_voted WHERE session_id = ?1 ORDER BY member_id",
        )?;
        let mut rows = stmt.query(params![session.to_string()])?;
        let mut voters = Vec::new();
        while let Some(r) = rows.next()? {
            voters.push(SecretVoter {
                member: r.get(0)?,
                holder: r.get(1)?,
                weight: columns::weight_from(r.get(2)?)?,
            });
        }
        Ok((ballots, voters))
    }

    fn answer(
        &mut self,
        session: Uuid,
        voter: &str,
        ballot_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT answer FROM answers WHERE session_id = ?1 AND voter = ?2 AND ballot_id = ?3",
        )?;
        Ok(stmt
            .query_row(params![session.to_string(), voter, ballot_id], |r| r.get(0))
            .optional()?)
    }

    fn write(&mut self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Session(meta) => self.write_session(meta)?,
            Write::DeleteSession(id) => {
                if let Some(log) = read::log_id(&self.tx, *id)? {
                    self.tx
                        .prepare_cached("DELETE FROM log_entries WHERE id BETWEEN ?1 AND ?2")?
                        .execute(params![log << 32, (log << 32) | schema::LOG_MASK])?;
                }
                self.logs.retain(|(s, _)| s != id);
                let id = id.to_string();
                for table in crate::store::rows::SESSION_TABLES {
                    self.tx
                        .prepare_cached(&format!("DELETE FROM {table} WHERE session_id = ?1"))?
                        .execute(params![id])?;
                }
                self.tx
                    .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
                    .execute(params![id])?;
            }
            Write::Ballot { session, record } => {
                let c = columns::ballot(&record.ballot);
                self.tx
                    .prepare_cached(
                        "INSERT INTO ballots (session_id, voter, choice, grade, options, marks, cast_at,
                            weight, groups, holder)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (session_id, voter) DO UPDATE
                         SET choice = excluded.choice, grade = excluded.grade, options = excluded.options,
                             marks = excluded.marks, cast_at = excluded.cast_at,
                             weight = excluded.weight, groups = excluded.groups, holder = excluded.holder",
                    )?
                    .execute(params![
                        session.to_string(),
                        record.voter,
                        c.choice,
                        c.grade,
                        c.options,
                        c.marks,
                        record.cast_at.to_rfc3339(),
                        columns::weight(record.weight)?,
                        Some(columns::names(&record.groups)?).filter(|g| g != "[]"),
                        record.holder,
                    ])?;
            }
            Write::Answer {
                session,
                voter,
                ballot_id,
                answer,
            } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO answers (session_id, voter, ballot_id, answer) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![session.to_string(), voter, ballot_id, answer])?;
            }
            Write::State { session, state } => {
                self.tx
                    .prepare_cached(
                        "UPDATE sessions SET status = ?2, position = ?3, opened_at = ?4, closes_at = ?5,
                            closed_at = ?6, result = ?7, elected = ?8, tied = ?9, seq = ?10
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        session.to_string(),
                        state.status.as_str(),
                        i64::from(state.position),
                        state.opened_at.map(Time::to_rfc3339),
                        state.closes_at.map(Time::to_rfc3339),
                        state.closed_at.map(Time::to_rfc3339),
                        state.result.map(|r| r.as_str()),
                        Some(columns::ids(&state.elected.elected)).filter(|s| !s.is_empty()),
                        Some(columns::ids(&state.elected.tied)).filter(|s| !s.is_empty()),
                        state.seq as i64
                    ])?;
            }
            Write::Member(m) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO voters (id, code, name, groups, weight, proxy_to)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                            groups = excluded.groups, weight = excluded.weight,
                            proxy_to = excluded.proxy_to",
                    )?
                    .execute(params![
                        m.id,
                        m.code,
                        m.name,
                        columns::names(&m.groups)?,
                        columns::weight(m.weight)?,
                        m.proxy_to
                    ])?;
            }
            Write::Presence {
                meeting,
                member,
                present,
            } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO attendance (meeting_id, member_id, present) VALUES (?1, ?2, ?3)
                         ON CONFLICT (meeting_id, member_id) DO UPDATE SET present = excluded.present",
                    )?
                    .execute(params![meeting.to_string(), member, i64::from(*present)])?;
            }
            Write::SecretVoted {
                session,
                member,
                holder,
                weight,
                voted,
            } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO secret_voted (session_id, member_id, holder, weight, ballot_id)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        session.to_string(),
                        member,
                        holder,
                        columns::weight(*weight)?,
                        voted.ballot_id
                    ])?;
            }
            Write::Log { session, key, roll } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO logs (session_id, log_key, roll) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![session.to_string(), key.as_slice(), roll])?;
                self.logs.push((*session, self.tx.last_insert_rowid()));
            }
            Write::Entry {
                session,
                index,
                entry,
            } => {
                let row = self.log_row(*session, *index)?;
                self.tx
                    .prepare_cached("INSERT INTO log_entries (id, entry) VALUES (?1, ?2)")?
                    .execute(params![row, entry])?;
            }
            Write::Head { session, head } => {
                // Kept on the last entry it covers, written in this commit.
                let last = head
                    .size
                    .checked_sub(1)
                    .ok_or_else(|| StoreError::Inconsistent("a head of an empty log".into()))?;
                let row = self.log_row(*session, last)?;
                let changed = self
                    .tx
                    .prepare_cached(
                        "UPDATE log_entries SET root = ?2, signature = ?3 WHERE id = ?1",
                    )?
                    .execute(params![
                        row,
                        head.root.as_slice(),
                        head.signature.as_slice()
                    ])?;
                if changed != 1 {
                    return Err(StoreError::Inconsistent(format!(
                        "a head of {} entries signed over a log without them",
                        head.size
                    )));
                }
            }
            Write::ShuffleSecret(session) => {
                // Copied out in a random order, deleted (secure_delete
                // zeroes them), and written back in that order: the rows,
                // their slots and their pages keep nothing of the order the
                // ballots came in. The copy lives in memory only.
                let id = session.to_string();
                self.tx.execute_batch(
                    "DROP TABLE IF EXISTS temp.shuffled;
                     CREATE TEMP TABLE shuffled (choice TEXT, grade INTEGER, options TEXT,
                        marks TEXT, weight INTEGER NOT NULL, tracker TEXT NOT NULL);",
                )?;
                self.tx
                    .prepare_cached(
                        "INSERT INTO temp.shuffled SELECT choice, grade, options, marks, weight, tracker
                         FROM secret_ballots WHERE session_id = ?1 ORDER BY random()",
                    )?
                    .execute(params![id])?;
                self.tx
                    .prepare_cached("DELETE FROM secret_ballots WHERE session_id = ?1")?
                    .execute(params![id])?;
                self.tx
                    .prepare_cached(
                        "INSERT INTO secret_ballots (session_id, choice, grade, options, marks, weight, tracker)
                         SELECT ?1, choice, grade, options, marks, weight, tracker
                         FROM temp.shuffled ORDER BY rowid",
                    )?
                    .execute(params![id])?;
                self.tx.execute_batch("DROP TABLE temp.shuffled;")?;
            }
            Write::SecretBallot { session, ballot } => {
                let c = columns::ballot(&ballot.ballot);
                self.tx
                    .prepare_cached(
                        "INSERT INTO secret_ballots (session_id, choice, grade, options, marks,
                            weight, tracker)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        session.to_string(),
                        c.choice,
                        c.grade,
                        c.options,
                        c.marks,
                        columns::weight(ballot.weight)?,
                        ballot.tracker
                    ])?;
            }
            Write::Meeting(m) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO meetings (id, title, started_at, ended_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (id) DO UPDATE SET title = excluded.title, ended_at = excluded.ended_at",
                    )?
                    .execute(params![
                        m.id.to_string(),
                        m.title,
                        m.started_at.to_rfc3339(),
                        m.ended_at.map(Time::to_rfc3339)
                    ])?;
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}
