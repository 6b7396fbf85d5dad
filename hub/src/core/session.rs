//! What a session is: the parts fixed at creation, the state that moves
//! with every ballot, what creating one takes, and the read model every
//! door shows (serialisable as is: the HTTP API and the desktop window
//! show the same `SessionView`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::core::rules::{Outcome, Rule, RuleSpec, Standing};
use crate::core::tally::{Scale, Tally};

/// Who may vote in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Electorate {
    /// Anyone with a voter id (the participant page makes one per browser).
    #[default]
    Open,
    /// Only codes issued by `POST /api/voters`.
    Roll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Closed,
}

/// The parts of a session that never change after creation.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub rule: Rule,
    pub electorate: Electorate,
    pub scale: Scale,
    pub created_at: String,
}

/// The part of a session that changes: owned by the writer, published to
/// readers after each commit.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub status: Status,
    pub result: Option<Outcome>,
    pub closed_at: Option<String>,
    pub tally: Tally,
    /// Grows by one with every change a client can see.
    pub seq: u64,
}

impl SessionState {
    pub fn new(scale: Scale) -> SessionState {
        SessionState {
            status: Status::Open,
            result: None,
            closed_at: None,
            tally: Tally::new(scale),
            seq: 0,
        }
    }
}

/// What creating a session takes (`POST /api/sessions`, the window's form).
/// Unknown fields are refused: a misspelt "electorate" must not quietly
/// open a roll vote to everyone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rule: Option<RuleSpec>,
    #[serde(default)]
    pub electorate: Electorate,
    #[serde(default)]
    pub scale: Scale,
}

/// The answer to an accepted ballot.
#[derive(Debug, Clone, Serialize)]
pub struct VoteReceipt {
    pub tally: Tally,
    pub seq: u64,
}

/// The answer to a close.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReceipt {
    pub result: Outcome,
    pub tally: Tally,
    pub seq: u64,
}

/// A session as every door shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub status: Status,
    pub rule: Rule,
    pub electorate: Electorate,
    pub scale: Scale,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub tally: Tally,
    pub seq: u64,
    pub subscribers: usize,
    pub result: Option<Outcome>,
    #[serde(flatten)]
    pub standing: Standing,
}

/// The current time in RFC 3339, to the millisecond.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond())
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
