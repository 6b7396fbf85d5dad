//! The storage seam, declared by the core and implemented beside it
//! (`crate::store`). The writer opens a transaction per batch of commands,
//! locks the sessions the batch touches, decides each command against what
//! it reads *inside* that transaction, writes, and commits: so a store
//! shared by several hubs (PostgreSQL) decides under its own locks, and
//! everything a change implies (a ballot, the session's new state, later
//! its audit leaves) lands in the same commit.

use std::path::PathBuf;

use uuid::Uuid;

use crate::core::audit::signing::SignedHead;
use crate::core::clock::Time;
use crate::core::meeting::Meeting;
use crate::core::roll::Member;
use crate::core::rules::{Elected, Outcome};
use crate::core::session::{SessionMeta, SessionState, Status};
use crate::core::tally::Ballot;

/// A database's own error, kept whole for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is not a votehub database (it belongs to another program); move it away or choose another data directory"
    )]
    Foreign { path: PathBuf },
    #[error("{path} is not a database, or is damaged: {source}")]
    Corrupt { path: PathBuf, source: Cause },
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
    /// The database failed (a full disk, a lost connection…).
    #[error("database error: {0}")]
    Database(Cause),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
    /// A failure made on purpose (tests of the paths that keep ballots safe).
    #[error("{0}")]
    Injected(String),
}

/// A voter's ballot as stored, with what it counted with when cast.
#[derive(Debug, Clone, PartialEq)]
pub struct BallotRecord {
    /// The voter id (open sessions) or the member's id (roll sessions).
    pub voter: String,
    pub ballot: Ballot,
    pub cast_at: Time,
    pub weight: u64,
    /// The member's groups when it was cast (for group minimums).
    pub groups: Vec<String>,
    /// The member who cast it by proxy, if one did.
    pub holder: Option<String>,
}

/// A secret ballot: what was voted, with nothing of who voted it. While
/// the vote is open a batch's ballots are written in an order unrelated to
/// their arrival; at the close the store puts them all in a random order
/// ([`Write::ShuffleSecret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretBallot {
    pub ballot: Ballot,
    pub weight: u64,
    /// Chosen by the voter's device, to find their ballot after the close.
    pub tracker: String,
}

/// That a member voted in a secret session, with the ballot's id (for a
/// retry of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Voted {
    pub ballot_id: Option<String>,
}

/// A session as read at start: what it is, where it stands, and its
/// ballots, from which the core counts its tally.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub meta: SessionMeta,
    pub status: Status,
    pub position: u32,
    pub opened_at: Option<Time>,
    pub closes_at: Option<Time>,
    pub closed_at: Option<Time>,
    pub result: Option<Outcome>,
    pub elected: Elected,
    pub seq: u64,
    pub ballots: Vec<BallotRecord>,
    /// Secret sessions: their ballots, apart from any voter.
    pub secret: Vec<SecretBallot>,
    /// Secret sessions: the members who voted (ids), apart from the ballots.
    pub voted: Vec<String>,
    /// Its log: the key of its voters' pseudonyms, its entries (canonical
    /// JSON, in order) and its newest signed head. `None`: a session made
    /// before votehub kept logs, or a draft.
    pub log: Option<StoredLog>,
}

/// What another hub changed in a session since this one saw it.
#[derive(Debug, Clone)]
pub struct Changes {
    /// Its row (no ballots, no log).
    pub session: StoredSession,
    pub tally: crate::core::tally::Tally,
    /// Members (ids) who voted since.
    pub voted: Vec<String>,
    /// The log's entries from `logged` on, in order.
    pub entries: Vec<String>,
    pub head: Option<SignedHead>,
}

/// What one ballot of a batch will ask the store: the voter's current
/// ballot in the session and, for a retry, the answer kept under its
/// `ballot_id` ([`Txn::read_ahead`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub session: Uuid,
    pub voter: String,
    pub ballot_id: Option<String>,
}

/// A session's log as stored.
#[derive(Debug, Clone, Default)]
pub struct StoredLog {
    pub key: [u8; 32],
    pub entries: Vec<String>,
    pub head: Option<SignedHead>,
}

/// Everything a session's audit bundle is made of.
#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    pub entries: Vec<String>,
    /// Every head signed, oldest first.
    pub heads: Vec<SignedHead>,
    /// The roll as it was when the vote opened (JSON), for roll sessions.
    pub roll: Option<String>,
}

/// A member who voted in a secret session, as kept apart from the ballot.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretVoter {
    pub member: String,
    pub holder: Option<String>,
    pub weight: u64,
}

/// Everything on disk, read once at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// In the order they began; the last one is the current meeting.
    pub meetings: Vec<Meeting>,
    /// In creation order.
    pub sessions: Vec<StoredSession>,
    /// In registration order.
    pub voters: Vec<Member>,
    /// Who is present at the current meeting (member ids): checked in by a
    /// moderator, or by a ballot of theirs (and not checked out since).
    pub present: Vec<String>,
    /// Check-ins and check-outs by moderators at the current meeting
    /// (member id, present).
    pub checked: Vec<(String, bool)>,
}

/// One change, written inside a transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// A session's settings: a new session, or a draft edited.
    Session(SessionMeta),
    /// A draft deleted, with everything of it.
    DeleteSession(Uuid),
    /// A voter's ballot; it replaces their earlier one in the session.
    Ballot { session: Uuid, record: BallotRecord },
    /// The answer given to a ballot that carried a `ballot_id`, given again
    /// to a retry of it.
    Answer {
        session: Uuid,
        voter: String,
        ballot_id: String,
        answer: String,
    },
    /// That a member voted in a secret session (and who cast it for them,
    /// by proxy: whom the ballot checked in), with the weight it counted
    /// with (for the log's list of who voted).
    SecretVoted {
        session: Uuid,
        member: String,
        holder: Option<String>,
        weight: u64,
        voted: Voted,
    },
    /// What was voted in a secret session (a batch writes these in an order
    /// unrelated to the ballots' arrival).
    SecretBallot { session: Uuid, ballot: SecretBallot },
    /// A secret vote closes: its ballots are rewritten in a random order,
    /// and nothing of the order they were written in is left.
    ShuffleSecret(Uuid),
    /// Where a session stands after the batch (written once per batch and
    /// session, after its ballots).
    State { session: Uuid, state: SessionState },
    /// A member added, or changed (name, groups, weight, code, proxy).
    Member(Member),
    /// A member checked in or out of a meeting by a moderator (or back in
    /// by a ballot after a check-out). A ballot checks its voter in by
    /// itself: the store counts everyone who cast (or held) a ballot of
    /// the meeting as present, unless checked out.
    Presence {
        meeting: Uuid,
        member: String,
        present: bool,
    },
    /// A meeting begun, or ended.
    Meeting(Meeting),
    /// A session's log begins: the key of its voters' pseudonyms, and the
    /// roll as it opens (JSON, roll sessions).
    Log {
        session: Uuid,
        key: [u8; 32],
        roll: Option<String>,
    },
    /// The entry at `index` of a session's log (canonical JSON).
    Entry {
        session: Uuid,
        index: u64,
        entry: String,
    },
    /// A head of a session's log, signed.
    Head { session: Uuid, head: SignedHead },
}

/// What [`Txn::lock_sessions`] found.
#[derive(Debug)]
pub enum Locked {
    /// This process is the store's only writer: the core's memory of these
    /// sessions is current.
    Current,
    /// Their `seq` as stored: where it is not the one the core remembers,
    /// another hub changed the session, and the core reads it again
    /// ([`Txn::session`]).
    Seqs(Vec<(Uuid, u64)>),
}

/// What the hub needs from storage. It runs on the hub's one writer
/// thread, so it may block.
pub trait Store: Send + 'static {
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Starts the transaction of one batch of commands.
    fn begin(&mut self) -> Result<Box<dyn Txn + '_>, StoreError>;
    /// All ballots of a session, in the order they were last cast.
    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError>;
    /// A secret session's ballots (in the order they are kept: random once
    /// the vote is closed) and who voted (member ids, in id order: the
    /// order of registration).
    fn secret(&mut self, session: Uuid) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError>;
    /// A session's log, for its audit bundle.
    fn log(&mut self, session: Uuid) -> Result<LogRecord, StoreError>;
    /// Leaves nothing of a secret vote's history in the files beyond what
    /// its tables hold (called after a secret session closes). `Ok(false)`:
    /// not now (a reader holds the files); the writer tries again after
    /// its next commits.
    fn scrub(&mut self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// One transaction. Its reads see its own earlier writes; nothing of it is
/// visible or durable before [`Txn::commit`], and dropping it uncommitted
/// rolls it back.
pub trait Txn {
    /// Locks these sessions until the end of the transaction, in the order
    /// given (callers sort them, so that two writers never wait on each
    /// other in a circle). A store with other writers then locks the
    /// roll's version — `roll_exclusive` for a batch that changes the
    /// roll, else shared — in the same breath, and [`Txn::roll_version`]
    /// answers from it.
    fn lock_sessions(&mut self, ids: &[Uuid], roll_exclusive: bool) -> Result<Locked, StoreError>;
    /// The time that decides deadlines in this transaction: the store's
    /// clock (the database's, when several hubs share one).
    fn now(&mut self) -> Result<Time, StoreError>;
    /// The stored `seq` of these sessions (of every session, when `ids` is
    /// empty), without locking them: to follow what other hubs commit.
    /// A store with no other writer answers [`Locked::Current`].
    fn seqs(&mut self, _ids: &[Uuid]) -> Result<Locked, StoreError> {
        Ok(Locked::Current)
    }
    /// Where the roll, attendance and meetings stand in the store: a
    /// number that grows with every change to them, whatever hub made it.
    /// `None`: this process is the store's only writer.
    /// `exclusive`: held until the commit against other writers of the
    /// roll (else shared: against them only).
    fn roll_version(&mut self, _exclusive: bool) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// The roll, the meetings and the current meeting's attendance, read
    /// inside the transaction (`sessions` left empty): for a roll another
    /// hub changed.
    fn roll(&mut self) -> Result<Loaded, StoreError> {
        Err(StoreError::Inconsistent(
            "this store has no other writer to read the roll from".into(),
        ))
    }
    /// What changed in a session since this hub saw it at `seq`, with
    /// `logged` entries in its log: its row and tally as stored, the
    /// members who voted since, its log's new entries and newest head.
    /// `None`: read it whole ([`Txn::session`]).
    fn changes(
        &mut self,
        _id: Uuid,
        _seq: u64,
        _logged: Option<u64>,
    ) -> Result<Option<Changes>, StoreError> {
        Ok(None)
    }
    /// A session with everything of it (its ballots, its log…), read
    /// inside the transaction: for a session another hub changed.
    fn session(&mut self, id: Uuid) -> Result<Option<StoredSession>, StoreError>;
    /// Reads at once what a batch's ballots will ask ([`Txn::ballot`],
    /// [`Txn::answer`]), so that a store across a network answers them
    /// from memory instead of a round trip each, under the session's lock.
    /// A local store reads as it goes and need not.
    fn read_ahead(&mut self, _wanted: &[Wanted]) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether [`Txn::read_ahead`] does anything: when not, the writer
    /// does not gather what to ask (a per-ballot cost for nothing).
    fn reads_ahead(&self) -> bool {
        false
    }
    /// A voter's current ballot in a session.
    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<BallotRecord>, StoreError>;
    /// Whether a member voted in a secret session.
    fn voted(&mut self, session: Uuid, member: &str) -> Result<Option<Voted>, StoreError>;
    /// A secret session's ballots and who voted, read inside the
    /// transaction (its close puts them in the log).
    fn secret_all(
        &mut self,
        session: Uuid,
    ) -> Result<(Vec<SecretBallot>, Vec<SecretVoter>), StoreError>;
    /// The answer given to the voter's ballot with this `ballot_id`.
    fn answer(
        &mut self,
        session: Uuid,
        voter: &str,
        ballot_id: &str,
    ) -> Result<Option<String>, StoreError>;
    fn write(&mut self, write: &Write) -> Result<(), StoreError>;
    /// Makes the transaction durable: when this returns `Ok`, it survives a
    /// crash of the process and of the machine.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
