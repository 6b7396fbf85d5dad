//! Reading rows back: sessions, ballots, a secret vote's two lists, a
//! session's log and a meeting's presence, as the store's types.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::core::audit::signing::SignedHead;
use crate::core::rules::{Elected, Method};
use crate::core::session::{Deadline, Election, SessionKind, SessionMeta};
use crate::core::store::{
    BallotRecord, LogRecord, SecretBallot, StoreError, StoredLog, StoredSession,
};

use super::columns;
use super::schema::LOG_MASK;

pub(super) const SESSION_COLUMNS: &str =
    "id, meeting_id, title, description, kind, scale, options, seats, method,
    min_marks, max_marks, rule, electorate, deadline_at, duration_s, created_at,
    status, position, opened_at, closes_at, closed_at, result, elected, tied, seq,
    secrecy, w_from_roll";

/// One row of `sessions`, read as stored.
pub(super) fn session_from(r: &Row<'_>) -> Result<StoredSession, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(r.get::<_, String>(i)?) };
    let maybe = |i: usize| -> Result<Option<String>, StoreError> { Ok(r.get(i)?) };
    let number = |i: usize| -> Result<Option<i64>, StoreError> { Ok(r.get(i)?) };
    let time = |i: usize| maybe(i)?.as_deref().map(columns::time_from).transpose();
    let kind = match text(4)?.as_str() {
        "motion" => SessionKind::Motion {
            scale: columns::scale_from(&text(5)?)?,
        },
        "election" => {
            let small = |i: usize| -> Result<u16, StoreError> {
                number(i)?
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| StoreError::Inconsistent(format!("election column {i}")))
            };
            let method = columns::method_from(&text(8)?)?;
            SessionKind::Election(Election {
                options: columns::names_from(&text(6)?)?,
                seats: small(7)?,
                method,
                min: if method == Method::Selection {
                    small(9)?
                } else {
                    0
                },
                max: if method == Method::Selection {
                    small(10)?
                } else {
                    0
                },
            })
        }
        other => return Err(StoreError::Inconsistent(format!("bad kind {other:?}"))),
    };
    let deadline = match (time(13)?, number(14)?) {
        (Some(at), None) => Some(Deadline::At(at)),
        (None, Some(s)) => {
            Some(Deadline::After(u32::try_from(s).map_err(|_| {
                StoreError::Inconsistent(format!("duration {s}"))
            })?))
        }
        _ => None,
    };
    let ids = |i: usize| -> Result<Vec<u16>, StoreError> {
        maybe(i)?
            .as_deref()
            .map(columns::ids_from)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(StoredSession {
        meta: SessionMeta {
            id: columns::uuid_from(&text(0)?)?,
            meeting: columns::uuid_from(&text(1)?)?,
            title: text(2)?,
            description: text(3)?,
            kind,
            rule: columns::rule_from(&text(11)?)?,
            electorate: columns::electorate_from(&text(12)?)?,
            secrecy: columns::secrecy_from(&text(25)?)?,
            w_from_roll: r.get::<_, i64>(26)? != 0,
            deadline,
            created_at: columns::time_from(&text(15)?)?,
        },
        status: columns::status_from(&text(16)?)?,
        position: u32::try_from(r.get::<_, i64>(17)?).unwrap_or(0),
        opened_at: time(18)?,
        closes_at: time(19)?,
        closed_at: time(20)?,
        result: maybe(21)?
            .as_deref()
            .map(columns::outcome_from)
            .transpose()?,
        elected: Elected {
            elected: ids(22)?,
            tied: ids(23)?,
        },
        seq: r.get::<_, i64>(24)?.max(0) as u64,
        ballots: Vec::new(),
        secret: Vec::new(),
        voted: Vec::new(),
        log: None,
    })
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

/// A row of `ballots` from `voter, choice, grade, options, marks, cast_at,
/// weight, groups, holder`.
pub(super) fn ballot_record(r: &Row<'_>) -> Result<BallotRecord, StoreError> {
    Ok(BallotRecord {
        voter: r.get(0)?,
        ballot: columns::ballot_from(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)?,
        cast_at: columns::time_from(&r.get::<_, String>(5)?)?,
        weight: columns::weight_from(r.get(6)?)?,
        // Ballots kept before groups were kept with them count without.
        groups: r
            .get::<_, Option<String>>(7)?
            .as_deref()
            .map(columns::names_from)
            .transpose()?
            .unwrap_or_default(),
        holder: r.get(8)?,
    })
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
            ballot: columns::ballot_from(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)?,
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
    let explicit: std::collections::HashMap<&str, bool> =
        checked.iter().map(|(m, p)| (m.as_str(), *p)).collect();
    let mut present: Vec<String> = checked
        .iter()
        .filter(|(_, p)| *p)
        .map(|(m, _)| m.clone())
        .collect();
    present.extend(
        voted
            .into_iter()
            .filter(|m| !explicit.contains_key(m.as_str())),
    );
    Ok((present, checked))
}
