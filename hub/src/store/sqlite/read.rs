//! Reading rows back: sessions, ballots, a secret vote's two lists, a
//! session's log and a meeting's presence, as the store's types.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::core::audit::signing::SignedHead;
use crate::core::store::{BallotRecord, LogRecord, SecretBallot, StoreError, StoredLog};

use super::schema::LOG_MASK;
use crate::store::columns;
use crate::store::rows::{Cells, ballot_at, ballot_record};

impl Cells for Row<'_> {
    fn maybe(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }

    fn number(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
}

/// Every ballot of a session, in the order they were last cast.
pub(super) fn read_ballots(
    conn: &Connection,
    session: Uuid,
) -> Result<Vec<BallotRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT voter, choice, grade, options, marks, cast_at, weight, groups, holder
         FROM ballots WHERE session_id = ?1 ORDER BY cast_at, voter",
    )?;
    let mut rows = stmt.query(params![session.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(ballot_record(r)?);
    }
    Ok(out)
}

/// A secret session's ballots (in the order kept: random once closed) and
/// the ids of the members who voted (in id order: registration's).
pub(super) fn read_secret(
    conn: &Connection,
    session: Uuid,
) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError> {
    let id = session.to_string();
    let mut stmt = conn.prepare_cached(
        "SELECT choice, grade, options, marks, weight, tracker FROM secret_ballots
         WHERE session_id = ?1 ORDER BY slot",
    )?;
    let mut rows = stmt.query(params![id])?;
    let mut ballots = Vec::new();
    while let Some(r) = rows.next()? {
        ballots.push(SecretBallot {
            ballot: ballot_at(r, 0)?,
            weight: columns::weight_from(r.get(4)?)?,
            tracker: r.get(5)?,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT member_id FROM secret_voted WHERE session_id = ?1 ORDER BY member_id",
    )?;
    let voted = stmt
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok((ballots, voted))
}

pub(super) fn blob32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Inconsistent("a 32-byte value is not".into()))
}

pub(super) fn head_from(
    size: i64,
    root: Vec<u8>,
    signature: Vec<u8>,
) -> Result<SignedHead, StoreError> {
    Ok(SignedHead {
        size: u64::try_from(size).map_err(|_| StoreError::Inconsistent("head size".into()))?,
        root: blob32(root)?,
        signature: signature
            .try_into()
            .map_err(|_| StoreError::Inconsistent("a signature is 64 bytes".into()))?,
    })
}

/// The integer id of `session`'s log (the high bits of its rows' ids in
/// `log_entries`), when it has one.
pub(super) fn log_id(conn: &Connection, session: Uuid) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM logs WHERE session_id = ?1")?
        .query_row(params![session.to_string()], |r| r.get(0))
        .optional()?)
}

/// The entries of log `log`, in order.
fn log_entries(conn: &Connection, log: i64) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT entry FROM log_entries WHERE id BETWEEN ?1 AND ?2 ORDER BY id")?
        .query_map(params![log << 32, (log << 32) | LOG_MASK], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?)
}

/// The heads signed for log `log` (each kept on the last entry it
/// covers): all of them, oldest first, or the newest only.
fn log_heads(conn: &Connection, log: i64, newest: bool) -> Result<Vec<SignedHead>, StoreError> {
    let mut stmt = conn.prepare_cached(if newest {
        "SELECT id, root, signature FROM log_entries
         WHERE id BETWEEN ?1 AND ?2 AND signature IS NOT NULL ORDER BY id DESC LIMIT 1"
    } else {
        "SELECT id, root, signature FROM log_entries
         WHERE id BETWEEN ?1 AND ?2 AND signature IS NOT NULL ORDER BY id"
    })?;
    let mut rows = stmt.query(params![log << 32, (log << 32) | LOG_MASK])?;
    let mut heads = Vec::new();
    while let Some(r) = rows.next()? {
        let size = (r.get::<_, i64>(0)? & LOG_MASK) + 1;
        heads.push(head_from(size, r.get(1)?, r.get(2)?)?);
    }
    Ok(heads)
}

/// A session's log as the writer needs it at start: its key, its entries
/// in order and its newest head.
pub(super) fn read_log(conn: &Connection, session: Uuid) -> Result<Option<StoredLog>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT id, log_key FROM logs WHERE session_id = ?1")?
        .query_row(params![session.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((log, key)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredLog {
        key: blob32(key)?,
        entries: log_entries(conn, log)?,
        head: log_heads(conn, log, true)?.pop(),
    }))
}

/// A session's whole log, for its audit file: entries, every head signed,
/// and the roll as the vote opened.
pub(super) fn read_log_record(conn: &Connection, session: Uuid) -> Result<LogRecord, StoreError> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT id, roll FROM logs WHERE session_id = ?1")?
        .query_row(params![session.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((log, roll)) = row else {
        return Ok(LogRecord {
            entries: Vec::new(),
            heads: Vec::new(),
            roll: None,
        });
    };
    Ok(LogRecord {
        entries: log_entries(conn, log)?,
        heads: log_heads(conn, log, false)?,
        roll,
    })
}

/// Member ids present, and the moderators' check-ins (true) and check-outs.
type Presence = (Vec<String>, Vec<(String, bool)>);

/// Who is present at meeting `meeting`, and the moderators' check-ins and
/// check-outs: present are those checked in, and those who cast or held a
/// ballot of the meeting on the roll, unless checked out.
pub(super) fn read_presence(conn: &Connection, meeting: Uuid) -> Result<Presence, StoreError> {
    let id = meeting.to_string();
    let mut stmt =
        conn.prepare("SELECT member_id, present FROM attendance WHERE meeting_id = ?1")?;
    let checked: Vec<(String, bool)> = stmt
        .query_map(params![id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT coalesce(b.holder, b.voter) FROM ballots b JOIN sessions s ON s.id = b.session_id
         WHERE s.meeting_id = ?1 AND s.electorate = 'roll'
         UNION
         SELECT coalesce(v.holder, v.member_id) FROM secret_voted v JOIN sessions s ON s.id = v.session_id
         WHERE s.meeting_id = ?1",
    )?;
    let voted: Vec<String> = stmt
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((crate::store::rows::present(&checked, voted), checked))
}
