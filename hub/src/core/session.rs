//! What a session is: the settings fixed once it opens (`SessionMeta`),
//! the state that moves with every change (`SessionState`), and the read
//! model every door shows (`SessionView`, serialisable as is: the HTTP API
//! and the desktop window show the same thing). What creating or editing
//! one takes is `core::spec`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::clock::Time;
use crate::core::rules::{Elected, Method, Outcome, Rule, Standing};
use crate::core::tally::{Ballot, BallotInput, Choice, Scale, Shape, Tally};

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

/// Whether what a member voted is kept beside who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Secrecy {
    /// Each ballot is kept under its voter (re-votes replace it).
    #[default]
    Named,
    /// That a member voted is kept apart from what they voted, with
    /// nothing linking the two; the counts show only at the close.
    Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Prepared in advance; editable; takes no ballots.
    Draft,
    Open,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Open => "open",
            Status::Closed => "closed",
        }
    }
}

/// An election of people: its candidates (ids 0, 1, 2… in this order), its
/// seats, and how ballots mark candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub options: Vec<String>,
    pub seats: u16,
    pub method: Method,
    /// Selection only: how many options a ballot marks at least and at most.
    pub min: u16,
    pub max: u16,
}

/// What a session asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    Motion { scale: Scale },
    Election(Election),
}

impl SessionKind {
    /// What the session's tally counts.
    pub fn shape(&self) -> Shape {
        match self {
            SessionKind::Motion { scale } => Shape::Motion(*scale),
            SessionKind::Election(e) => match e.method {
                Method::Selection => Shape::Selection {
                    options: e.options.len(),
                },
                Method::Approval => Shape::Approval {
                    options: e.options.len(),
                },
            },
        }
    }

    pub fn election(&self) -> Option<&Election> {
        match self {
            SessionKind::Election(e) => Some(e),
            SessionKind::Motion { .. } => None,
        }
    }

    /// The ballot `input` makes in this session, or why it does not fit
    /// (the text names the limit).
    pub fn ballot(&self, input: BallotInput) -> Result<Ballot, String> {
        match (self, input) {
            (
                SessionKind::Motion {
                    scale: Scale::Choice,
                },
                BallotInput::Choice(c),
            ) => Ok(Ballot::Choice(c)),
            (
                SessionKind::Motion {
                    scale: Scale::Nuanced,
                },
                BallotInput::Grade(g),
            ) => Ballot::grade(g)
                .ok_or_else(|| "\"grade\" must be a whole number from -3 to 3".into()),
            (
                SessionKind::Motion {
                    scale: Scale::Choice,
                },
                _,
            ) => Err("this session takes a \"choice\": for, against or abstain".into()),
            (
                SessionKind::Motion {
                    scale: Scale::Nuanced,
                },
                _,
            ) => Err("this session takes a \"grade\" from -3 to 3".into()),
            (SessionKind::Election(e), input) => e.ballot(input),
        }
    }
}

/// When a timed vote closes, as it was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// At this moment.
    At(Time),
    /// So many seconds after it opens.
    After(u32),
}

/// The settings of a session: editable while it is a draft, fixed once it
/// opens.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    pub id: Uuid,
    /// The meeting (the assembly's day) it belongs to.
    pub meeting: Uuid,
    pub title: String,
    pub description: String,
    pub kind: SessionKind,
    pub rule: Rule,
    pub electorate: Electorate,
    pub secrecy: Secrecy,
    /// An inertia rule whose `W` was left to the hub: it becomes the roll's
    /// total weight when the vote opens (until then it is a placeholder).
    pub w_from_roll: bool,
    pub deadline: Option<Deadline>,
    pub created_at: Time,
}

/// The part of a session that changes: owned by the writer, published to
/// readers after each commit.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub status: Status,
    /// Its place on the meeting's agenda, from 1.
    pub position: u32,
    pub opened_at: Option<Time>,
    pub closes_at: Option<Time>,
    pub closed_at: Option<Time>,
    pub result: Option<Outcome>,
    /// Elections: who was elected, who tied.
    pub elected: Elected,
    pub tally: Tally,
    /// Grows by one with every change a client can see.
    pub seq: u64,
}

impl SessionState {
    pub fn new(meta: &SessionMeta, status: Status, position: u32) -> SessionState {
        SessionState {
            status,
            position,
            opened_at: None,
            closes_at: None,
            closed_at: None,
            result: None,
            elected: Elected::default(),
            tally: Tally::new(meta.kind.shape()),
            seq: 0,
        }
    }
}

/// "motion" or "election", as the wire says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindName {
    Motion,
    Election,
}

impl Election {
    /// The ballot `input` makes in this election, or why it does not fit.
    fn ballot(&self, input: BallotInput) -> Result<Ballot, String> {
        let n = self.options.len() as u64;
        let id = |raw: u64| {
            u16::try_from(raw)
                .ok()
                .filter(|id| u64::from(*id) < n)
                .ok_or_else(|| format!("there is no option {raw} (ids are 0 to {})", n - 1))
        };
        let ballot = match input {
            BallotInput::Options(raw) => {
                let mut ids = raw.into_iter().map(id).collect::<Result<Vec<u16>, _>>()?;
                ids.sort_unstable();
                Ballot::Selection(ids)
            }
            BallotInput::Marks(raw) => {
                let mut marks = vec![Choice::Abstain; self.options.len()];
                let mut seen = vec![false; self.options.len()];
                for (raw, mark) in raw {
                    let i = usize::from(id(raw)?);
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(format!("option {i} is marked twice"));
                    }
                    marks[i] = mark;
                }
                Ballot::Approval(marks)
            }
            BallotInput::Choice(_) | BallotInput::Grade(_) => {
                return Err(match self.method {
                    Method::Selection => {
                        "an election takes \"options\", not a motion's \"choice\" or \"grade\""
                            .into()
                    }
                    Method::Approval => {
                        "an election takes \"marks\", not a motion's \"choice\" or \"grade\"".into()
                    }
                });
            }
        };
        self.check(&ballot)?;
        Ok(ballot)
    }

    /// Whether `ballot` fits this election; the text says which limit.
    pub fn check(&self, ballot: &Ballot) -> Result<(), String> {
        let n = self.options.len();
        match (self.method, ballot) {
            (Method::Selection, Ballot::Selection(ids)) => {
                if let Some(bad) = ids.iter().find(|id| usize::from(**id) >= n) {
                    return Err(format!("there is no option {bad} (ids are 0 to {})", n - 1));
                }
                if ids.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("each option may be marked once".into());
                }
                let (min, max) = (usize::from(self.min), usize::from(self.max));
                if ids.len() > max {
                    return Err(format!("mark at most {max} options"));
                }
                if ids.len() < min {
                    return Err(format!("mark at least {min} options"));
                }
                Ok(())
            }
            (Method::Approval, Ballot::Approval(marks)) if marks.len() == n => Ok(()),
            (Method::Approval, Ballot::Approval(_)) => {
                Err(format!("mark options 0 to {} only", n - 1))
            }
            (Method::Selection, _) => {
                Err("this election takes \"options\": the ids of the options you choose".into())
            }
            (Method::Approval, _) => Err(
                "this election takes \"marks\": {\"<id>\": \"for\" | \"against\" | \"abstain\"}"
                    .into(),
            ),
        }
    }
}

/// The answer to an accepted ballot.
#[derive(Debug, Clone, Serialize)]
pub struct VoteReceipt<'a> {
    pub tally: &'a Tally,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt<'a>>,
}

/// What a voter keeps of their ballot: its leaf in the session's log and
/// the head signed in the commit that recorded it — or, for a secret
/// ballot (logged at the close), the tracker their device chose.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Receipt<'a> {
    Logged {
        index: u64,
        leaf: String,
        /// The entry logged for the ballot (its leaf is the hash of this
        /// canonical JSON): the voter's page checks that it says what
        /// they chose.
        entry: Box<serde_json::value::RawValue>,
        /// A `HeadWire`, serialized once for every receipt of its commit.
        head: &'a serde_json::value::RawValue,
    },
    Secret {
        tracker: &'a str,
    },
}

/// The answer to a close.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReceipt {
    pub result: Outcome,
    pub tally: Tally,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elected: Option<Vec<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tied: Option<Vec<u16>>,
}

/// An election option as the wire shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OptionView {
    pub id: u16,
    pub name: String,
}

/// A new session, and what the organiser should know about it (in a
/// secret vote, members whose weight is unique).
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub session: SessionView,
    pub warnings: Vec<String>,
}

/// A session as every door shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub id: Uuid,
    pub meeting: Uuid,
    pub title: String,
    pub description: String,
    pub status: Status,
    pub position: u32,
    pub rule: Rule,
    pub electorate: Electorate,
    pub secrecy: Secrecy,
    pub kind: KindName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
    pub created_at: Time,
    pub opened_at: Option<Time>,
    pub closes_at: Option<Time>,
    pub duration_s: Option<u32>,
    pub closed_at: Option<Time>,
    pub tally: Tally,
    pub seq: u64,
    pub subscribers: usize,
    pub result: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elected: Option<Vec<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tied: Option<Vec<u16>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub standing: Option<Standing>,
    /// The newest signed head of its log (sessions that keep one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditHead>,
}

/// A log's head as screens show it: its size, its root and the root's
/// short fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    pub size: u64,
    pub root: String,
    pub fingerprint: String,
}

impl AuditHead {
    pub fn of(head: &crate::core::audit::signing::SignedHead) -> AuditHead {
        AuditHead {
            size: head.size,
            root: hex::encode(head.root),
            fingerprint: crate::core::audit::signing::head_fingerprint(&head.root),
        }
    }
}

impl SessionView {
    pub fn new(
        meta: &SessionMeta,
        state: &SessionState,
        standing: Option<Standing>,
        subscribers: usize,
    ) -> SessionView {
        let election = meta.kind.election();
        let closed = state.status == Status::Closed;
        SessionView {
            id: meta.id,
            meeting: meta.meeting,
            title: meta.title.clone(),
            description: meta.description.clone(),
            status: state.status,
            position: state.position,
            rule: meta.rule.clone(),
            electorate: meta.electorate,
            secrecy: meta.secrecy,
            kind: match meta.kind {
                SessionKind::Motion { .. } => KindName::Motion,
                SessionKind::Election(_) => KindName::Election,
            },
            scale: match meta.kind {
                SessionKind::Motion { scale } => Some(scale),
                SessionKind::Election(_) => None,
            },
            options: election.map(|e| {
                e.options
                    .iter()
                    .enumerate()
                    .map(|(id, name)| OptionView {
                        id: id as u16,
                        name: name.clone(),
                    })
                    .collect()
            }),
            seats: election.map(|e| e.seats),
            method: election.map(|e| e.method),
            min: election
                .filter(|e| e.method == Method::Selection)
                .map(|e| e.min),
            max: election
                .filter(|e| e.method == Method::Selection)
                .map(|e| e.max),
            created_at: meta.created_at,
            opened_at: state.opened_at,
            closes_at: state.closes_at.or(match meta.deadline {
                Some(Deadline::At(t)) if state.status == Status::Draft => Some(t),
                _ => None,
            }),
            duration_s: match meta.deadline {
                Some(Deadline::After(s)) => Some(s),
                _ => None,
            },
            closed_at: state.closed_at,
            tally: state.tally.clone(),
            seq: state.seq,
            subscribers,
            result: state.result,
            elected: (election.is_some() && closed).then(|| state.elected.elected.clone()),
            tied: (election.is_some() && closed).then(|| state.elected.tied.clone()),
            standing,
            audit: None,
        }
    }
}
