//! What doors ask the writer: one command per change or read, with the
//! reply it is answered on, and what the batch needs to know of each (the
//! session it locks, whether it changes the roll or moves the agenda).

use uuid::Uuid;

use crate::core::error::HubError;
use crate::core::hub::Reply;
use crate::core::meeting::Meeting;
use crate::core::roll::{Member, MemberEdit, NewVoter};
use crate::core::session::CloseReceipt;
use crate::core::spec::SessionSpec;
use crate::core::store::{BallotRecord, LogRecord, SecretBallot};
use crate::core::tally::BallotInput;

pub(crate) enum Command {
    Create(SessionSpec, Reply<(Uuid, Vec<String>)>),
    Import(Vec<(usize, SessionSpec)>, Reply<Vec<Uuid>>),
    Edit(Uuid, SessionSpec, Reply<()>),
    Delete(Uuid, Reply<()>),
    Open(Uuid, Reply<()>),
    Extend(Uuid, u64, Reply<()>),
    Reorder(Vec<Uuid>, Reply<()>),
    Cast(Uuid, CastRequest, Reply<String>),
    Close(Uuid, Reply<CloseReceipt>),
    /// People to put on the roll; `true`: from a roll file.
    Register(Vec<NewVoter>, bool, Reply<Vec<Member>>),
    EditMember(String, MemberEdit, Reply<Member>),
    Reissue(String, Reply<Member>),
    GiveProxy(String, String, Reply<Member>),
    RevokeProxy(String, Reply<Member>),
    SetPresence(String, bool, Reply<Member>),
    StartMeeting(String, Reply<Meeting>),
    Ballots(Uuid, Reply<Vec<BallotRecord>>),
    /// A secret session's ballots and who voted, apart.
    Secret(Uuid, Reply<(Vec<SecretBallot>, Vec<String>)>),
    /// A session's log, for its audit bundle.
    Log(Uuid, Reply<LogRecord>),
    /// Sessions another hub changed (every session, when empty): read
    /// again and shown to this hub's readers.
    Follow(Vec<Uuid>, Reply<()>),
    Stop,
}

/// A ballot as a door hands it to the core.
#[derive(Debug, Clone)]
pub struct CastRequest {
    /// The voter id (open sessions) or the voting code (roll sessions).
    pub voter: String,
    pub ballot: BallotInput,
    /// Makes a retry safe: the same id gets the first answer again.
    pub ballot_id: Option<String>,
    /// The member (by code or name) whose proxy the voter holds.
    pub on_behalf_of: Option<String>,
    /// A secret ballot's tracker, chosen by the voter's device.
    pub tracker: Option<String>,
}

impl Command {
    /// The session a command changes, to lock before deciding.
    pub(super) fn session(&self) -> Option<Uuid> {
        match self {
            Command::Cast(session, ..) => Some(*session),
            Command::Close(id, _)
            | Command::Edit(id, ..)
            | Command::Delete(id, _)
            | Command::Open(id, _)
            | Command::Extend(id, ..) => Some(*id),
            _ => None,
        }
    }

    /// Whether the command changes the roll, attendance or meetings: its
    /// batch holds the roll's version until it commits.
    pub(super) fn changes_roll(&self) -> bool {
        matches!(
            self,
            Command::Register(..)
                | Command::EditMember(..)
                | Command::Reissue(..)
                | Command::GiveProxy(..)
                | Command::RevokeProxy(..)
                | Command::SetPresence(..)
                | Command::StartMeeting(..)
        )
    }

    /// Whether the command moves other sessions' places on the agenda.
    pub(super) fn moves_agenda(&self) -> bool {
        matches!(self, Command::Reorder(..) | Command::Delete(..))
    }

    /// Answers the command with `e` (a batch that could not be recorded).
    pub(super) fn fail(self, e: HubError) {
        match self {
            Command::Create(_, r) => drop(r.send(Err(e))),
            Command::Import(_, r) => drop(r.send(Err(e))),
            Command::Edit(_, _, r)
            | Command::Delete(_, r)
            | Command::Open(_, r)
            | Command::Extend(_, _, r)
            | Command::Reorder(_, r) => drop(r.send(Err(e))),
            Command::Cast(_, _, r) => drop(r.send(Err(e))),
            Command::Close(_, r) => drop(r.send(Err(e))),
            Command::Register(_, _, r) => drop(r.send(Err(e))),
            Command::EditMember(_, _, r)
            | Command::Reissue(_, r)
            | Command::GiveProxy(_, _, r)
            | Command::RevokeProxy(_, r)
            | Command::SetPresence(_, _, r) => drop(r.send(Err(e))),
            Command::StartMeeting(_, r) => drop(r.send(Err(e))),
            Command::Ballots(_, r) => drop(r.send(Err(e))),
            Command::Secret(_, r) => drop(r.send(Err(e))),
            Command::Log(_, r) => drop(r.send(Err(e))),
            Command::Follow(_, r) => drop(r.send(Err(e))),
            Command::Stop => {}
        }
    }
}
