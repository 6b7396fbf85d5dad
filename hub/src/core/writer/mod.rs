//! The writer: one thread that owns the store and every change. It takes
//! the commands waiting for it in arrival order (a batch), opens one store
//! transaction, locks the sessions the batch touches, closes the timed
//! votes whose deadline has passed, decides each command against the state
//! so far, and commits the whole batch at once (group commit). Only then
//! does it answer and publish. A batch whose commit fails is undone in
//! memory and every command in it is answered `storage_unavailable`:
//! memory never shows what the disk does not hold, and nothing is
//! acknowledged that is not durable.
//!
//! `sessions` decides the agenda and the close, `ballots` the ballots,
//! `roll` the roll, `board` what readers see.

mod ballots;
mod board;
mod command;
mod follow;
mod log;
mod roll;
mod sessions;

pub use command::CastRequest;
pub(crate) use command::Command;
pub use roll::Attendance;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::core::audit::signing::{Key, SignedHead};
use crate::core::audit::tree::Hash;
use crate::core::clock::Time;
use crate::core::error::HubError;
use crate::core::hub::{Board, LogView, Reply};
use crate::core::limits::Limits;
use crate::core::meeting::Meeting;
use crate::core::roll::{Member, Roll};
use crate::core::session::{SessionMeta, SessionState};
use crate::core::store::{
    BallotRecord, Locked, LogRecord, SecretBallot, Store, StoreError, Txn, Write,
};

/// How long the writer waits at most before looking at the wall clock
/// again: a deadline that passed while the laptop slept is applied within
/// this much of waking (timers do not count the time asleep).
const CLOCK_LOOK: Duration = Duration::from_secs(1);

/// How soon the writer looks again at a deadline that this machine's clock
/// says has passed and the store's clock does not yet.
const SKEWED_LOOK: Duration = Duration::from_millis(100);

pub(crate) struct CoreSession {
    pub meta: Arc<SessionMeta>,
    pub state: SessionState,
}

/// The writer thread's state: the store and the core's memory of it.
pub(crate) struct Writer {
    store: Box<dyn Store>,
    core: Core,
    /// A secret vote closed and the store has not scrubbed its files yet.
    scrub_pending: bool,
    /// Commands taken while a batch gathered late ballots and not for it
    /// (or put back: see `join_late`), in order: the first of the next
    /// batch.
    carry: VecDeque<Command>,
}

/// Everything the writer decides with; the store stays apart so that a
/// transaction can borrow it while the core changes.
pub(crate) struct Core {
    pub sessions: HashMap<Uuid, CoreSession>,
    /// In the order they began; the last is the current one.
    pub meetings: Vec<Meeting>,
    pub roll: Roll,
    /// Who is present at the current meeting (member ids).
    pub present: HashSet<String>,
    /// Moderators' check-ins (true) and check-outs (false) at the current
    /// meeting; everyone else present was checked in by a ballot.
    pub checked: HashMap<String, bool>,
    /// Roll sessions: the members who have voted (ids), for the register.
    pub voted: HashMap<Uuid, HashSet<String>>,
    /// Each session's log (sessions made before votehub kept logs have
    /// none).
    pub logs: HashMap<Uuid, log::SessionLog>,
    /// The store's roll version this hub's roll reflects (`None`: alone on
    /// its store, or to be read again).
    pub roll_seen: Option<u64>,
    /// The hub's signing key.
    pub key: Key,
    pub board: Board,
    pub limits: Limits,
}

/// What a batch read of a session another hub changed: the log's new
/// leaves, its newest head, and who voted since.
pub(crate) type CaughtUp = (Uuid, Vec<Hash>, Option<SignedHead>, Vec<String>);

/// The roll as it was: members, who is present, check-ins, meetings.
pub(crate) type RollBefore = (Roll, HashSet<String>, HashMap<String, bool>, Vec<Meeting>);

/// A session as it was: its settings and its state.
pub(crate) type Before = (Arc<SessionMeta>, SessionState);

/// What one batch changed, to publish once it commits or to undo if not.
#[derive(Default)]
pub(crate) struct Batch {
    /// The time that decides this batch (the store's clock).
    pub now: Option<Time>,
    /// Sessions touched, with their settings and state before the batch
    /// (`None`: made by it).
    pub before: Vec<(Uuid, Option<Before>)>,
    /// Sessions deleted by the batch.
    pub deleted: Vec<Uuid>,
    /// The roll's length before the batch.
    pub roll_len: usize,
    /// Members as they were before the batch changed them.
    pub members_before: Vec<Member>,
    /// Members who voted for the first time in a roll session.
    pub voted: Vec<(Uuid, String)>,
    /// Logs grown by the batch, as they were before it (`None`: begun by
    /// it).
    pub log_before: Vec<(Uuid, Option<log::SessionLog>)>,
    /// Leaves appended by the batch, in order.
    pub appended: Vec<log::Appended>,
    /// Those heads, in the same order (the readers' tree takes them rather
    /// than hashing them again).
    pub completed: Vec<Hash>,
    /// Heads signed at the end of the batch.
    pub heads: Vec<(Uuid, SignedHead)>,
    /// Ballots whose answers wait for their session's signed head.
    pub pending: Vec<(Reply<String>, log::PendingReceipt)>,
    /// Presence changed by the batch: (member, now present).
    pub presence: Vec<(String, bool)>,
    /// Check-ins and check-outs recorded by the batch, with what the member
    /// had before (none, or an earlier check-in or check-out).
    pub checked: Vec<(String, Option<bool>)>,
    /// Everyone present, and every check-in, before the batch, if it began
    /// a new meeting.
    pub present_before: Option<(HashSet<String>, HashMap<String, bool>)>,
    /// Secret ballots, written at the end of the batch in random order.
    pub secret: Vec<(Uuid, SecretBallot)>,
    /// Secret votes closed by the batch: their ballots are shuffled in the
    /// same commit, and the store scrubs its files after it.
    pub shuffle: Vec<Uuid>,
    /// The meetings before the batch, if it changed them.
    pub meetings: Option<Vec<Meeting>>,
    /// The list of sessions changed (the lobby ticks).
    pub listed: bool,
    /// Sessions another hub changed, read in part: the log's new leaves,
    /// its newest head, and who voted since.
    pub caught_up: Vec<CaughtUp>,
    /// The roll's version in the store when the batch began (a shared
    /// store's).
    pub roll_version: Option<u64>,
    /// The roll, presence, check-ins and meetings before another hub's
    /// changes to them were read in this batch.
    pub roll_before: Option<Box<RollBefore>>,
    /// Sessions read again from the store (another hub changed them): the
    /// readers' view of their log, and who voted.
    pub reloaded: Vec<(Uuid, Option<LogView>, Option<HashSet<String>>)>,
    replies: Vec<PendingReply>,
}

/// An answer held back until its batch is committed (or refused).
type PendingReply = Box<dyn FnOnce(Result<(), HubError>) + Send>;

impl Batch {
    pub fn now(&self) -> Time {
        self.now.unwrap_or_else(Time::now)
    }

    /// Keeps what a session was before the batch first changed it.
    pub fn remember(&mut self, id: Uuid, session: Option<&CoreSession>) {
        if !self.before.iter().any(|(s, _)| *s == id) {
            self.before
                .push((id, session.map(|s| (s.meta.clone(), s.state.clone()))));
        }
    }

    /// Queues `reply` to be answered with `value` once the batch commits.
    fn answer<T: Send + 'static>(&mut self, reply: Reply<T>, value: T) {
        self.replies.push(Box::new(move |outcome| {
            let _ = reply.send(outcome.map(|()| value));
        }));
    }
}

/// A command's fate: `Err` is a storage failure that aborts the whole
/// batch; `Ok(Err)` a refusal answered at once.
pub(crate) type Decided<T> = Result<Result<T, HubError>, StoreError>;

impl Writer {
    /// Reads everything from `store`, begins the first meeting of a new
    /// data directory, and publishes it all.
    pub fn load(
        mut store: Box<dyn Store>,
        board: Board,
        limits: Limits,
        key: Key,
    ) -> Result<Writer, HubError> {
        let loaded = store.load()?;
        let mut core = Core {
            sessions: HashMap::new(),
            meetings: Vec::new(),
            roll: Roll::default(),
            roll_seen: None,
            present: HashSet::new(),
            checked: HashMap::new(),
            voted: HashMap::new(),
            logs: HashMap::new(),
            key,
            board,
            limits,
        };
        core.restore(loaded);
        let mut writer = Writer {
            store,
            core,
            scrub_pending: false,
            carry: VecDeque::new(),
        };
        if writer.core.meetings.is_empty() {
            let meeting = Meeting {
                id: Uuid::new_v4(),
                title: "Assembly".into(),
                started_at: Time::now(),
                ended_at: None,
            };
            let mut txn = writer.store.begin()?;
            txn.write(&Write::Meeting(meeting.clone()))?;
            txn.commit()?;
            writer.core.meetings.push(meeting);
            writer.core.board.write().meetings = writer.core.meetings.clone();
        }
        // Deadlines that passed while the hub was down close before anyone
        // can see the vote open.
        writer.batch(Vec::new(), None, &[]);
        Ok(writer)
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        // A small clock of its own, to wait for a command or a deadline.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let max_batch = self.core.limits.max_batch.max(1);
        // After a deadline's batch failed (the store is down), the next try
        // waits a moment rather than spinning.
        let mut backoff = Duration::ZERO;
        'serve: loop {
            let wait = self
                .core
                .next_deadline()
                .map(|at| Time::now().until(at).min(CLOCK_LOOK).max(backoff));
            let first = match (self.carry.pop_front(), wait, &timer) {
                (Some(carried), ..) => Some(carried),
                (None, Some(wait), Ok(timer)) => {
                    // The timer is made inside the runtime it belongs to.
                    match timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                        Ok(first) => first,
                        // A deadline may be due: a batch of no commands
                        // closes it.
                        Err(_) => {
                            backoff = if !self.batch(Vec::new(), None, &[]) {
                                CLOCK_LOOK
                            } else if !self.core.due_candidates(Time::now()).is_empty() {
                                // Due by this machine's clock, not yet by
                                // the store's (a cluster's database): look
                                // again shortly rather than spin.
                                SKEWED_LOOK
                            } else {
                                Duration::ZERO
                            };
                            continue;
                        }
                    }
                }
                _ => rx.blocking_recv(),
            };
            let Some(first) = first else {
                break;
            };
            let mut taken = vec![first];
            while taken.len() < max_batch {
                match self.carry.pop_front().or_else(|| rx.try_recv().ok()) {
                    Some(cmd) => taken.push(cmd),
                    None => break,
                }
            }
            let mut batch = Vec::with_capacity(taken.len());
            let mut follows = Vec::new();
            for cmd in taken {
                match cmd {
                    Command::Stop => {
                        self.batch(std::mem::take(&mut batch), None, &[]);
                        self.follow_all(&mut follows);
                        break 'serve;
                    }
                    // A read sees everything queued before it: commit first.
                    Command::Ballots(id, reply) => {
                        self.batch(std::mem::take(&mut batch), None, &[]);
                        let _ = reply.send(self.ballots(id));
                    }
                    Command::Secret(id, reply) => {
                        self.batch(std::mem::take(&mut batch), None, &[]);
                        let _ = reply.send(self.secret(id));
                    }
                    Command::Log(id, reply) => {
                        self.batch(std::mem::take(&mut batch), None, &[]);
                        let _ = reply.send(self.log(id));
                    }
                    // After the batch (which reads again, under their
                    // locks, the sessions it takes ballots for): a
                    // notification does not split a batch in two.
                    Command::Follow(ids, reply) => follows.push((ids, reply)),
                    cmd => batch.push(cmd),
                }
            }
            // The batch reads again, under their locks, the sessions it was
            // told changed (even at the same `seq`: a place on the agenda).
            let told = Self::told(&follows);
            self.batch(batch, Some(&mut rx), &told);
            self.follow_all(&mut follows);
        }
        // Whatever raced the stop is dropped, which answers it "shutting down".
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            drop(cmd);
        }
    }

    /// The sessions the follows name, for the batch to read again under
    /// their locks (a nil id: every one).
    fn told(follows: &[(Vec<Uuid>, Reply<()>)]) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = Vec::new();
        for (named, _) in follows {
            if named.is_empty() {
                return vec![Uuid::nil()];
            }
            ids.extend(named);
        }
        ids
    }

    /// Reads what the follows name (all of it when one names nothing) and
    /// answers each of them.
    fn follow_all(&mut self, follows: &mut Vec<(Vec<Uuid>, Reply<()>)>) {
        if follows.is_empty() {
            return;
        }
        let all = follows.iter().any(|(ids, _)| ids.is_empty());
        let mut ids: Vec<Uuid> = if all {
            Vec::new()
        } else {
            follows
                .iter()
                .flat_map(|(ids, _)| ids.iter().copied())
                .collect()
        };
        ids.sort_unstable();
        ids.dedup();
        let read = self.follow(&ids);
        for (_, reply) in follows.drain(..) {
            let _ = reply.send(read.clone());
        }
    }

    fn ballots(&mut self, id: Uuid) -> Result<Vec<BallotRecord>, HubError> {
        if !self.core.sessions.contains_key(&id) {
            return Err(HubError::SessionNotFound);
        }
        Ok(self.store.ballots(id)?)
    }

    fn log(&mut self, id: Uuid) -> Result<LogRecord, HubError> {
        if !self.core.logs.contains_key(&id) {
            return Err(HubError::NotInLog(
                "this session has no log (made before votehub kept logs, or not opened yet)",
            ));
        }
        Ok(self.store.log(id)?)
    }

    fn secret(&mut self, id: Uuid) -> Result<(Vec<SecretBallot>, Vec<String>), HubError> {
        if !self.core.sessions.contains_key(&id) {
            return Err(HubError::SessionNotFound);
        }
        Ok(self.store.secret(id)?)
    }

    /// Decides, writes and commits `commands` as one transaction, after
    /// closing the timed votes whose deadline has passed; with `late`,
    /// ballots that came meanwhile join it. `told`: sessions other hubs
    /// said they changed (a nil id: all), read again under their locks even
    /// at the same `seq`. False when the store failed.
    fn batch(
        &mut self,
        commands: Vec<Command>,
        late: Option<&mut mpsc::Receiver<Command>>,
        told: &[Uuid],
    ) -> bool {
        // A first look, by this machine's clock: anything to do?
        if commands.is_empty() && self.core.due_candidates(Time::now()).is_empty() {
            return true;
        }
        let mut batch = Batch {
            roll_len: self.core.roll.len(),
            ..Batch::default()
        };
        let mut txn = match self.store.begin() {
            Ok(txn) => txn,
            Err(e) => {
                fail_all(commands, batch, e);
                return false;
            }
        };
        let changes_roll = commands.iter().any(Command::changes_roll);
        let mut locked: Vec<Uuid> = Vec::new();
        let mut commands = commands;
        let prepared = txn.now().and_then(|now| {
            batch.now = Some(now);
            // The store's clock decides which votes are due.
            let due = self.core.due_candidates(now);
            // Every session whose state the batch may write is locked (and
            // read again if another hub changed it): the ones commands
            // name, the ones due, and for a reorder or a deletion, the
            // current meeting's, whose places move.
            locked.extend(commands.iter().filter_map(Command::session));
            if commands.iter().any(Command::moves_agenda) {
                locked.extend(self.core.meeting_sessions());
            }
            // A roll change is logged in every open vote on the roll.
            if changes_roll {
                locked.extend(self.core.open_roll_sessions());
            }
            locked.extend(&due);
            locked.sort_unstable();
            locked.dedup();
            let seqs = txn.lock_sessions(&locked, changes_roll)?;
            let taken = commands.len();
            if let Some(rx) = late {
                let untimed = |id: Uuid| {
                    locked.binary_search(&id).is_ok()
                        && self
                            .core
                            .sessions
                            .get(&id)
                            .is_some_and(|s| s.state.closes_at.is_none())
                };
                let max_batch = self.core.limits.max_batch.max(1);
                join_late(&mut commands, untimed, rx, &mut self.carry, max_batch);
            }
            // Asked now, so that a store across a network reads it with
            // what other hubs changed.
            self.core.read_ahead(
                commands.iter().filter_map(|c| match c {
                    Command::Cast(id, req, _) => Some((*id, req)),
                    _ => None,
                }),
                &mut *txn,
            )?;
            match seqs {
                Locked::Current => {}
                Locked::Seqs(seqs) => {
                    let all = told.contains(&Uuid::nil());
                    self.core
                        .refresh(seqs, &mut *txn, &mut batch, |id| all || told.contains(&id))?;
                }
            }
            // A late ballot joined for a vote with no deadline; if another
            // hub has since given it one, it waits for the next batch (which
            // reads the clock after it came), with every late command after
            // it, so that order is kept.
            let timed = |c: &Command| {
                matches!(c, Command::Cast(id, ..)
                    if self.core.sessions.get(id).is_some_and(|s| s.state.closes_at.is_some()))
            };
            if let Some(k) = commands[taken..].iter().position(timed) {
                for cmd in commands.split_off(taken + k).into_iter().rev() {
                    self.carry.push_front(cmd);
                }
            }
            self.core
                .catch_up_roll(&mut *txn, &mut batch, changes_roll)?;
            self.core.close_due(&due, &mut *txn, &mut batch)
        });
        if let Err(e) = prepared {
            drop(txn);
            self.core.undo(&batch);
            fail_all(commands, batch, e);
            return false;
        }
        let mut outcome = Ok(());
        let mut commands = commands.into_iter();
        // On a failure the rest stay in `commands`, answered below.
        while outcome.is_ok()
            && let Some(cmd) = commands.next()
        {
            outcome = self.core.apply(cmd, &mut *txn, &mut batch);
        }
        if outcome.is_ok() {
            outcome = self
                .core
                .write_secret(&mut batch, &mut *txn)
                .and_then(|()| self.core.write_states(&batch, &mut *txn))
                .and_then(|()| self.core.sign_heads(&mut batch, &mut *txn))
                .and_then(|()| self.core.finish_receipts(&mut batch, &mut *txn))
                .and_then(|()| self.core.saw_own_roll(&mut *txn, &batch));
        }
        let outcome = outcome.and_then(|()| txn.commit());
        match outcome {
            Ok(()) => {
                self.scrub_pending |= !batch.shuffle.is_empty();
                if self.scrub_pending {
                    match self.store.scrub() {
                        Ok(done) => self.scrub_pending = !done,
                        Err(e) => {
                            tracing::warn!(error = %e, "a secret vote closed; its files could not be scrubbed yet");
                        }
                    }
                }
                // Sessions read again: another hub had changed them.
                tracing::debug!(
                    commands = batch.replies.len(),
                    reloaded = batch.reloaded.len(),
                    caught_up = batch.caught_up.len(),
                    "batch committed"
                );
                self.core.publish(&batch);
                for reply in batch.replies {
                    reply(Ok(()));
                }
                true
            }
            Err(e) => {
                // Its real cause stays in the log; clients hear only that
                // nothing was recorded.
                tracing::error!(error = %e, commands = batch.replies.len(), "a batch failed to commit; it is refused and undone");
                self.core.undo(&batch);
                fail_all(commands.collect(), batch, e);
                false
            }
        }
    }
}

/// Ballots that came while a batch waited for its sessions' locks join it
/// when `joins` says their session may take them now (held by the batch,
/// and with no deadline: the batch's clock was read before they came): on
/// a shared store that lock is what every hub's ballots wait on, and each
/// batch costs one commit whatever its size. The first command that cannot
/// join waits in `carry` for the next batch, so that order is kept.
fn join_late(
    commands: &mut Vec<Command>,
    joins: impl Fn(Uuid) -> bool,
    rx: &mut mpsc::Receiver<Command>,
    carry: &mut VecDeque<Command>,
    max_batch: usize,
) {
    // Whatever waits already goes first.
    if !carry.is_empty() {
        return;
    }
    while commands.len() < max_batch {
        match rx.try_recv() {
            Ok(cmd @ Command::Cast(id, ..)) if joins(id) => commands.push(cmd),
            Ok(other) => {
                carry.push_back(other);
                break;
            }
            Err(_) => break,
        }
    }
}

/// Answers every command of a batch that could not be recorded.
fn fail_all(rest: Vec<Command>, batch: Batch, e: StoreError) {
    let e = Arc::new(e);
    log::fail_pending(batch.pending, &HubError::Store(e.clone()));
    for reply in batch.replies {
        reply(Err(HubError::Store(e.clone())));
    }
    for cmd in rest {
        cmd.fail(HubError::Store(e.clone()));
    }
}

/// Sends a decided command's answer: a refusal at once, a success when the
/// batch commits. A storage failure is handed back to abort the batch; this
/// command is then answered with it, like the rest of the batch.
fn settle<T: Send + 'static>(
    decided: Decided<T>,
    reply: Reply<T>,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    match decided {
        Ok(Ok(value)) => batch.answer(reply, value),
        Ok(Err(refusal)) => drop(reply.send(Err(refusal))),
        Err(e) => {
            // Only ever called with the batch's failure.
            batch.replies.push(Box::new(move |outcome| {
                let _ = reply.send(outcome.and_then(|()| Err(HubError::ShuttingDown)));
            }));
            return Err(e);
        }
    }
    Ok(())
}

impl Core {
    fn apply(
        &mut self,
        cmd: Command,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        match cmd {
            Command::Create(spec, reply) => {
                let decided = self.create(spec, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Import(specs, reply) => {
                let decided = self.import(specs, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Edit(id, spec, reply) => {
                let decided = self.edit(id, spec, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Delete(id, reply) => {
                let decided = self.delete(id, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Open(id, reply) => {
                let decided = self.open(id, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Extend(id, seconds, reply) => {
                let decided = self.extend(id, seconds, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Reorder(order, reply) => settle(Ok(self.reorder(order, batch)), reply, batch),
            Command::Cast(session, request, reply) => match self.cast(session, request, txn, batch)
            {
                Ok(Ok(log::Cast::Logged(pending))) => {
                    batch.pending.push((reply, *pending));
                    Ok(())
                }
                Ok(Ok(log::Cast::Now(answer))) => settle(Ok(Ok(answer)), reply, batch),
                Ok(Err(refusal)) => settle(Ok(Err(refusal)), reply, batch),
                Err(e) => settle(Err(e), reply, batch),
            },
            Command::Close(id, reply) => {
                let decided = self.close(id, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Register(voters, from_file, reply) => {
                let decided = self.register(voters, from_file, txn, batch);
                settle(decided, reply, batch)
            }
            Command::EditMember(code, edit, reply) => {
                let decided = self.edit_member(&code, edit, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Reissue(code, reply) => {
                let decided = self.reissue(&code, txn, batch);
                settle(decided, reply, batch)
            }
            Command::GiveProxy(from, to, reply) => {
                let decided = self.give_proxy(&from, &to, txn, batch);
                settle(decided, reply, batch)
            }
            Command::RevokeProxy(from, reply) => {
                let decided = self.revoke_proxy(&from, txn, batch);
                settle(decided, reply, batch)
            }
            Command::SetPresence(code, present, reply) => {
                let decided = self.set_presence(&code, present, txn, batch);
                settle(decided, reply, batch)
            }
            Command::StartMeeting(title, reply) => {
                let decided = self.start_meeting(title, txn, batch);
                settle(decided, reply, batch)
            }
            Command::Ballots(..)
            | Command::Secret(..)
            | Command::Log(..)
            | Command::Follow(..)
            | Command::Stop => Ok(()),
        }
    }
}
