//! Rows read back as the store's types, the same for both stores: each
//! store says how to read a cell of its rows (`Cells`), and the columns
//! are decoded here once.

use crate::core::rules::{Elected, Method};
use crate::core::session::{Deadline, Election, SessionKind, SessionMeta};
use crate::core::store::{BallotRecord, StoreError, StoredSession};
use crate::core::tally::Ballot;

use super::columns;

/// A row as the decoders read it: cell `i` as text, optional text, an
/// optional integer, or an integer.
pub trait Cells {
    fn maybe(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn number(&self, i: usize) -> Result<Option<i64>, StoreError>;

    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.maybe(i)?
            .ok_or_else(|| StoreError::Inconsistent(format!("column {i} is empty")))
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.number(i)?
            .ok_or_else(|| StoreError::Inconsistent(format!("column {i} is empty")))
    }
}

/// A ballot from the four columns starting at `at`: `choice, grade,
/// options, marks`.
pub fn ballot_at(r: &impl Cells, at: usize) -> Result<Ballot, StoreError> {
    columns::ballot_from(
        r.maybe(at)?,
        r.number(at + 1)?,
        r.maybe(at + 2)?,
        r.maybe(at + 3)?,
    )
}

/// The tables that hold a session's rows beside its own (and its log's
/// entries, keyed by the log): what deleting a draft empties, in this
/// order, in both stores.
pub const SESSION_TABLES: [&str; 5] = [
    "answers",
    "ballots",
    "secret_voted",
    "secret_ballots",
    "logs",
];

pub const SESSION_COLUMNS: &str =
    "id, meeting_id, title, description, kind, scale, options, seats, method,
    min_marks, max_marks, rule, electorate, deadline_at, duration_s, created_at,
    status, position, opened_at, closes_at, closed_at, result, elected, tied, seq,
    secrecy, w_from_roll";

/// One row of `sessions`, read as stored.
pub fn session_from(r: &impl Cells) -> Result<StoredSession, StoreError> {
    let text = |i: usize| r.text(i);
    let maybe = |i: usize| r.maybe(i);
    let number = |i: usize| r.number(i);
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
            w_from_roll: r.int(26)? != 0,
            deadline,
            created_at: columns::time_from(&text(15)?)?,
        },
        status: columns::status_from(&text(16)?)?,
        position: u32::try_from(r.int(17)?).unwrap_or(0),
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
        seq: r.int(24)?.max(0) as u64,
        ballots: Vec::new(),
        secret: Vec::new(),
        voted: Vec::new(),
        log: None,
    })
}

/// A row of `ballots` from `voter, choice, grade, options, marks, cast_at,
/// weight, groups, holder`.
pub fn ballot_record(r: &impl Cells) -> Result<BallotRecord, StoreError> {
    Ok(BallotRecord {
        voter: r.text(0)?,
        ballot: ballot_at(r, 1)?,
        cast_at: columns::time_from(&r.text(5)?)?,
        weight: columns::weight_from(r.int(6)?)?,
        // Ballots kept before groups were kept with them count without.
        groups: r
            .maybe(7)?
            .as_deref()
            .map(columns::names_from)
            .transpose()?
            .unwrap_or_default(),
        holder: r.maybe(8)?,
    })
}

/// Who is present: those checked in by a moderator, and those who cast or
/// held a ballot of the meeting unless checked out. From the check-ins and
/// check-outs, and the members whose ballots the meeting holds.
pub fn present(checked: &[(String, bool)], voted: Vec<String>) -> Vec<String> {
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
    present
}

/// A session's settings as the `sessions` table's columns (both stores).
pub struct SessionColumns {
    pub kind: &'static str,
    pub scale: &'static str,
    pub options: Option<String>,
    pub seats: Option<i64>,
    pub method: Option<&'static str>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub deadline_at: Option<String>,
    pub duration_s: Option<i64>,
}

impl SessionColumns {
    pub fn of(m: &SessionMeta) -> Result<SessionColumns, StoreError> {
        let (scale, options, seats, method, min, max) = match &m.kind {
            SessionKind::Motion { scale } => (*scale, None, None, None, None, None),
            SessionKind::Election(e) => (
                crate::core::tally::Scale::Choice,
                Some(columns::names(&e.options)?),
                Some(i64::from(e.seats)),
                Some(e.method.as_str()),
                Some(i64::from(e.min)),
                Some(i64::from(e.max)),
            ),
        };
        let (deadline_at, duration_s) = match m.deadline {
            Some(Deadline::At(at)) => (Some(at.to_rfc3339()), None),
            Some(Deadline::After(s)) => (None, Some(i64::from(s))),
            None => (None, None),
        };
        Ok(SessionColumns {
            kind: match m.kind {
                SessionKind::Motion { .. } => "motion",
                SessionKind::Election(_) => "election",
            },
            scale: columns::scale(scale),
            options,
            seats,
            method,
            min,
            max,
            deadline_at,
            duration_s,
        })
    }
}
