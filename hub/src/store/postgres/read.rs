//! PostgreSQL's queries that read rows back: the same rows as SQLite's,
//! decoded by `store::rows`. Each runs on the connection it is given: a
//! transaction's, to read under its locks, or the pool's.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::core::audit::signing::SignedHead;
use crate::core::meeting::Meeting;
use crate::core::roll::Member;
use crate::core::store::{
    BallotRecord, Changes, Loaded, LogRecord, SecretBallot, SecretVoter, StoreError, StoredLog,
    StoredSession,
};
use crate::store::columns;
use crate::store::rows::{Cells, SESSION_COLUMNS, ballot_at, ballot_record, session_from};

/// The rows of log `log` in `log_entries` are those whose id lies in
/// `[log << 32, (log << 32) | LOG_MASK]` (as in SQLite's schema 5).
pub const LOG_MASK: i64 = 0xFFFF_FFFF;

impl Cells for Row {
    fn maybe(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn number(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

/// The roll (in registration order), the meetings (in the order they
/// began) and the current meeting's attendance; no sessions.
pub async fn roll(c: &ClientWrapper) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    for r in c
        .query(
            "SELECT id, title, started_at, ended_at FROM meetings ORDER BY started_at, ord",
            &[],
        )
        .await?
    {
        loaded.meetings.push(Meeting {
            id: columns::uuid_from(&r.text(0)?)?,
            title: r.text(1)?,
            started_at: columns::time_from(&r.text(2)?)?,
            ended_at: r.maybe(3)?.as_deref().map(columns::time_from).transpose()?,
        });
    }
    for r in c
        .query(
            "SELECT id, code, name, groups, weight, proxy_to FROM voters ORDER BY ord",
            &[],
        )
        .await?
    {
        loaded.voters.push(Member {
            id: r.text(0)?,
            code: r.text(1)?,
            name: r.text(2)?,
            groups: columns::names_from(&r.text(3)?)?,
            weight: columns::weight_from(r.int(4)?)?,
            proxy_to: r.maybe(5)?,
        });
    }
    if let Some(current) = loaded.meetings.last() {
        (loaded.present, loaded.checked) = presence(c, current.id).await?;
    }
    Ok(loaded)
}

/// A session with everything of it: its row, ballots, secret lists, log.
pub async fn session(c: &ClientWrapper, id: Uuid) -> Result<Option<StoredSession>, StoreError> {
    let row = c
        .query_opt(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
            &[&id.to_string()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut s = session_from(&row)?;
    fill(c, &mut s).await?;
    Ok(Some(s))
}

/// What changed in session `id` since a hub saw it at `since`, its log
/// then holding `logged` entries; `None` when it must be read whole (a
/// tally not kept yet, a log begun since).
pub async fn changes(
    c: &ClientWrapper,
    id: Uuid,
    since: i64,
    logged: Option<u64>,
) -> Result<Option<Changes>, StoreError> {
    let key = id.to_string();
    // The log's new part, found by the session's id: its rows are keyed
    // `(log << 32) | index`.
    let from = logged
        .map(|n| i64::try_from(n).map_err(|_| StoreError::Inconsistent("log size".into())))
        .transpose()?;
    // All sent together (the connection pipelines them): one round trip.
    let (row, voted, log, entries, head) = tokio::try_join!(
        async {
            let sql = format!("SELECT {SESSION_COLUMNS}, tally FROM sessions WHERE id = $1");
            let stmt = c.prepare_cached(&sql).await?;
            Ok::<_, StoreError>(c.query_opt(&stmt, &[&key]).await?)
        },
        async {
            let stmt = c
                .prepare_cached(
                    "SELECT voter FROM ballots WHERE session_id = $1 AND seq > $2
                     UNION SELECT member_id FROM secret_voted WHERE session_id = $1
                        AND (seq > $2 OR seq IS NULL)",
                )
                .await?;
            Ok::<_, StoreError>(c.query(&stmt, &[&key, &since]).await?)
        },
        log_id(c, id),
        async {
            let Some(from) = from else {
                return Ok::<_, StoreError>(Vec::new());
            };
            let stmt = c
                .prepare_cached(
                    "SELECT e.entry FROM logs l JOIN log_entries e
                        ON e.id BETWEEN (l.id << 32) + $2 AND (l.id << 32) + $3
                     WHERE l.session_id = $1 ORDER BY e.id",
                )
                .await?;
            Ok(c.query(&stmt, &[&key, &from, &LOG_MASK]).await?)
        },
        async {
            if from.is_none() {
                return Ok::<_, StoreError>(None);
            }
            let stmt = c
                .prepare_cached(
                    // Within the session's log (LATERAL: a plan kept
                    // for the statement's life walks this log alone).
                    "SELECT h.id, h.root, h.signature FROM logs l CROSS JOIN LATERAL
                        (SELECT id, root, signature FROM log_entries
                         WHERE id BETWEEN l.id << 32 AND (l.id << 32) + $2
                            AND signature IS NOT NULL
                         ORDER BY id DESC LIMIT 1) h
                     WHERE l.session_id = $1",
                )
                .await?;
            Ok(c.query_opt(&stmt, &[&key, &LOG_MASK]).await?)
        },
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Some(tally) = row.maybe(27)? else {
        return Ok(None);
    };
    let session = session_from(&row)?;
    let voted = voted.iter().map(|r| r.text(0)).collect::<Result<_, _>>()?;
    let (entries, head) = match (log, from) {
        (None, _) => (Vec::new(), None),
        (Some(_), None) => return Ok(None),
        (Some(_), Some(_)) => {
            let entries = entries
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<_, _>>()?;
            let head = head
                .map(|r| {
                    head_of(
                        r.try_get::<_, i64>(0)? & LOG_MASK,
                        r.try_get(1)?,
                        r.try_get(2)?,
                    )
                })
                .transpose()?;
            (entries, head)
        }
    };
    Ok(Some(Changes {
        session,
        tally: columns::tally_from(&tally)?,
        voted,
        entries,
        head,
    }))
}

/// Reads a session's ballots, secret lists and log into it.
pub async fn fill(c: &ClientWrapper, s: &mut StoredSession) -> Result<(), StoreError> {
    let id = s.meta.id;
    s.ballots = ballots(c, id).await?;
    (s.secret, s.voted) = secret(c, id).await?;
    s.log = log(c, id).await?;
    Ok(())
}

/// Every session, in creation order, with its row only.
pub async fn sessions(c: &ClientWrapper) -> Result<Vec<StoredSession>, StoreError> {
    c.query(
        &format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY ord"),
        &[],
    )
    .await?
    .iter()
    .map(session_from)
    .collect()
}

const BALLOT_COLUMNS: &str =
    "voter, choice, grade, options, marks, cast_at, weight, groups, holder";

/// Every ballot of a session, in the order they were last cast.
pub async fn ballots(c: &ClientWrapper, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
    c.query(
        &format!(
            "SELECT {BALLOT_COLUMNS} FROM ballots WHERE session_id = $1 ORDER BY cast_at, voter"
        ),
        &[&session.to_string()],
    )
    .await?
    .iter()
    .map(ballot_record)
    .collect()
}

/// A voter's current ballot in a session.
pub async fn ballot(
    c: &ClientWrapper,
    session: Uuid,
    voter: &str,
) -> Result<Option<BallotRecord>, StoreError> {
    c.query_opt(
        &format!("SELECT {BALLOT_COLUMNS} FROM ballots WHERE session_id = $1 AND voter = $2"),
        &[&session.to_string(), &voter],
    )
    .await?
    .as_ref()
    .map(ballot_record)
    .transpose()
}

/// The current ballots of these voters in a session. Planned at each call,
/// in one round trip (`query_typed`: no statement prepared and kept): a
/// generic plan made while the table was nearly empty was seen, in the
/// bench, to filter the session's every ballot instead of looking each one
/// up.
pub async fn ballots_of(
    c: &ClientWrapper,
    session: Uuid,
    voters: &[String],
) -> Result<Vec<BallotRecord>, StoreError> {
    let sql =
        format!("SELECT {BALLOT_COLUMNS} FROM ballots WHERE session_id = $1 AND voter = ANY($2)");
    let session = session.to_string();
    c.query_typed(&sql, &[(&session, Type::TEXT), (&voters, Type::TEXT_ARRAY)])
        .await?
        .iter()
        .map(ballot_record)
        .collect()
}

/// The voters of `session`'s ballots: all of them, or those written by
/// batches that began after the session's `seq` was `since` (rows are
/// marked with that `seq` plus one).
pub async fn voters_since(
    c: &ClientWrapper,
    session: Uuid,
    since: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    let session = session.to_string();
    let rows = match since {
        None => {
            let stmt = c
                .prepare_cached("SELECT voter FROM ballots WHERE session_id = $1")
                .await?;
            c.query(&stmt, &[&session]).await?
        }
        Some(since) => {
            let stmt = c
                .prepare_cached("SELECT voter FROM ballots WHERE session_id = $1 AND seq > $2")
                .await?;
            c.query(&stmt, &[&session, &since]).await?
        }
    };
    rows.iter().map(|r| r.text(0)).collect()
}

/// The answers kept under these (voter, ballot id) pairs, given as two
/// columns: (voter, ballot id, answer) for those found. Planned at each
/// call, in one round trip, like [`ballots_of`].
pub async fn answers_of(
    c: &ClientWrapper,
    session: Uuid,
    voters: &[String],
    ballot_ids: &[String],
) -> Result<Vec<(String, String, String)>, StoreError> {
    if ballot_ids.is_empty() {
        return Ok(Vec::new());
    }
    let session = session.to_string();
    c.query_typed(
        "SELECT w.voter, w.ballot_id, a.answer
         FROM unnest($2::text[], $3::text[]) AS w(voter, ballot_id) CROSS JOIN LATERAL
            (SELECT answer FROM answers
             WHERE session_id = $1 AND voter = w.voter AND ballot_id = w.ballot_id) a",
        &[
            (&session, Type::TEXT),
            (&voters, Type::TEXT_ARRAY),
            (&ballot_ids, Type::TEXT_ARRAY),
        ],
    )
    .await?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)))
    .collect()
}

/// A secret session's ballots (in the order kept: random once closed) and
/// the ids of the members who voted (in id order).
pub async fn secret(
    c: &ClientWrapper,
    session: Uuid,
) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError> {
    let id = session.to_string();
    let ballots = c
        .query(
            "SELECT choice, grade, options, marks, weight, tracker FROM secret_ballots
             WHERE session_id = $1 ORDER BY slot",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SecretBallot {
                ballot: ballot_at(r, 0)?,
                weight: columns::weight_from(r.int(4)?)?,
                tracker: r.text(5)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let voted = c
        .query(
            "SELECT member_id FROM secret_voted WHERE session_id = $1 ORDER BY member_id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_, _>>()?;
    Ok((ballots, voted))
}

/// Who voted in a secret session, with whom it checked in and the weight.
pub async fn secret_voters(
    c: &ClientWrapper,
    session: Uuid,
) -> Result<Vec<SecretVoter>, StoreError> {
    c.query(
        "SELECT member_id, holder, weight FROM secret_voted WHERE session_id = $1 ORDER BY member_id",
        &[&session.to_string()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SecretVoter {
            member: r.text(0)?,
            holder: r.maybe(1)?,
            weight: columns::weight_from(r.int(2)?)?,
        })
    })
    .collect()
}

/// The integer id of `session`'s log, when it has one.
pub async fn log_id(c: &ClientWrapper, session: Uuid) -> Result<Option<i64>, StoreError> {
    let stmt = c
        .prepare_cached("SELECT id FROM logs WHERE session_id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&session.to_string()])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

async fn entries(c: &ClientWrapper, log: i64) -> Result<Vec<String>, StoreError> {
    c.query(
        "SELECT entry FROM log_entries WHERE id BETWEEN $1 AND $2 ORDER BY id",
        &[&(log << 32), &((log << 32) | LOG_MASK)],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// The heads signed for log `log` (each on the last entry it covers).
async fn heads(c: &ClientWrapper, log: i64) -> Result<Vec<SignedHead>, StoreError> {
    c.query(
        "SELECT id, root, signature FROM log_entries
         WHERE id BETWEEN $1 AND $2 AND signature IS NOT NULL ORDER BY id",
        &[&(log << 32), &((log << 32) | LOG_MASK)],
    )
    .await?
    .iter()
    .map(|r| {
        head_of(
            r.try_get::<_, i64>(0)? & LOG_MASK,
            r.try_get(1)?,
            r.try_get(2)?,
        )
    })
    .collect()
}

fn head_of(last: i64, root: Vec<u8>, signature: Vec<u8>) -> Result<SignedHead, StoreError> {
    let bad = |what: &str| StoreError::Inconsistent(format!("a head's {what}"));
    Ok(SignedHead {
        size: u64::try_from(last + 1).map_err(|_| bad("size"))?,
        root: root.try_into().map_err(|_| bad("root"))?,
        signature: signature.try_into().map_err(|_| bad("signature"))?,
    })
}

/// A session's log as the writer needs it: key, entries, newest head.
pub async fn log(c: &ClientWrapper, session: Uuid) -> Result<Option<StoredLog>, StoreError> {
    let Some(row) = c
        .query_opt(
            "SELECT id, log_key FROM logs WHERE session_id = $1",
            &[&session.to_string()],
        )
        .await?
    else {
        return Ok(None);
    };
    let log: i64 = row.try_get(0)?;
    let key: Vec<u8> = row.try_get(1)?;
    Ok(Some(StoredLog {
        key: key
            .try_into()
            .map_err(|_| StoreError::Inconsistent("a log key is 32 bytes".into()))?,
        entries: entries(c, log).await?,
        head: heads(c, log).await?.pop(),
    }))
}

/// A session's whole log, for its audit file.
pub async fn log_record(c: &ClientWrapper, session: Uuid) -> Result<LogRecord, StoreError> {
    let Some(row) = c
        .query_opt(
            "SELECT id, roll FROM logs WHERE session_id = $1",
            &[&session.to_string()],
        )
        .await?
    else {
        return Ok(LogRecord {
            entries: Vec::new(),
            heads: Vec::new(),
            roll: None,
        });
    };
    let log: i64 = row.try_get(0)?;
    Ok(LogRecord {
        entries: entries(c, log).await?,
        heads: heads(c, log).await?,
        roll: row.try_get(1)?,
    })
}

/// Who is present at meeting `meeting` (member ids), and the moderators'
/// check-ins and check-outs: as SQLite's `read_presence`.
pub async fn presence(
    c: &ClientWrapper,
    meeting: Uuid,
) -> Result<(Vec<String>, Vec<(String, bool)>), StoreError> {
    let id = meeting.to_string();
    let checked: Vec<(String, bool)> = c
        .query(
            "SELECT member_id, present FROM attendance WHERE meeting_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)? != 0)))
        .collect::<Result<_, StoreError>>()?;
    let voted: Vec<String> = c
        .query(
            "SELECT coalesce(b.holder, b.voter) FROM ballots b JOIN sessions s ON s.id = b.session_id
             WHERE s.meeting_id = $1 AND s.electorate = 'roll'
             UNION
             SELECT coalesce(v.holder, v.member_id) FROM secret_voted v
             JOIN sessions s ON s.id = v.session_id WHERE s.meeting_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_, _>>()?;
    Ok((crate::store::rows::present(&checked, voted), checked))
}
