//! The writer: one thread that owns the store and every change. It takes
//! the commands waiting for it in arrival order (a batch), opens one store
//! transaction, locks the sessions the batch touches, decides each command
//! against the state so far, and commits the whole batch at once (group
//! commit). Only then does it answer and publish. A batch whose commit
//! fails is undone in memory and every command in it is answered
//! `storage_unavailable`: memory never shows what the disk does not hold,
//! and nothing is acknowledged that is not durable.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::core::error::HubError;
use crate::core::hub::{Board, Published, Reply};
use crate::core::limits::{Limits, MAX_DESCRIPTION, MAX_TITLE, MAX_VOTER};
use crate::core::roll::{NewVoter, Roll, RollEntry, normalise_code};
use crate::core::rules::{Outcome, RuleSpec};
use crate::core::session::{
    CloseReceipt, Electorate, NewSession, SessionMeta, SessionState, Status, VoteReceipt,
    now_rfc3339,
};
use crate::core::store::{BallotRecord, Loaded, Locked, Store, StoreError, Txn, Write};
use crate::core::tally::{Ballot, Scale, Tally};

pub(crate) enum Command {
    Create(NewSession, Reply<Uuid>),
    Cast {
        session: Uuid,
        voter: String,
        ballot: Ballot,
        reply: Reply<VoteReceipt>,
    },
    Close(Uuid, Reply<CloseReceipt>),
    Register(Vec<NewVoter>, Reply<Vec<RollEntry>>),
    Ballots(Uuid, Reply<Vec<BallotRecord>>),
    Stop,
}

impl Command {
    /// The session a command changes, to lock before deciding.
    fn session(&self) -> Option<Uuid> {
        match self {
            Command::Cast { session, .. } => Some(*session),
            Command::Close(id, _) => Some(*id),
            _ => None,
        }
    }
}

struct CoreSession {
    meta: Arc<SessionMeta>,
    state: SessionState,
}

/// The writer thread's state: the store and the core's memory of it.
pub(crate) struct Writer {
    store: Box<dyn Store>,
    core: Core,
}

/// Everything the writer decides with; the store stays apart so that a
/// transaction can borrow it while the core changes.
struct Core {
    sessions: HashMap<Uuid, CoreSession>,
    roll: Roll,
    board: Board,
    limits: Limits,
}

/// What one batch changed, to publish once it commits or to undo if not.
struct Batch {
    /// Sessions touched, with their state before the batch (`None`: made
    /// by it).
    before: Vec<(Uuid, Option<SessionState>)>,
    /// The roll's length before the batch.
    roll_len: usize,
    replies: Vec<PendingReply>,
}

/// An answer held back until its batch is committed (or refused).
type PendingReply = Box<dyn FnOnce(Result<(), HubError>) + Send>;

impl Batch {
    fn remember(&mut self, id: Uuid, state: Option<&SessionState>) {
        if !self.before.iter().any(|(s, _)| *s == id) {
            self.before.push((id, state.cloned()));
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
type Decided<T> = Result<Result<T, HubError>, StoreError>;

impl Writer {
    /// Reads everything from `store` and publishes it.
    pub fn load(
        mut store: Box<dyn Store>,
        board: Board,
        limits: Limits,
    ) -> Result<Writer, HubError> {
        let loaded = store.load()?;
        let mut core = Core {
            sessions: HashMap::new(),
            roll: Roll::default(),
            board,
            limits,
        };
        core.restore(loaded);
        Ok(Writer { store, core })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let max_batch = self.core.limits.max_batch.max(1);
        'serve: loop {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut taken = vec![first];
            while taken.len() < max_batch {
                match rx.try_recv() {
                    Ok(cmd) => taken.push(cmd),
                    Err(_) => break,
                }
            }
            let mut batch = Vec::with_capacity(taken.len());
            for cmd in taken {
                match cmd {
                    Command::Stop => {
                        self.batch(std::mem::take(&mut batch));
                        break 'serve;
                    }
                    // A read sees everything queued before it: commit first.
                    Command::Ballots(id, reply) => {
                        self.batch(std::mem::take(&mut batch));
                        let _ = reply.send(self.ballots(id));
                    }
                    cmd => batch.push(cmd),
                }
            }
            self.batch(batch);
        }
        // Whatever raced the stop is dropped, which answers it "shutting down".
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            drop(cmd);
        }
    }

    fn ballots(&mut self, id: Uuid) -> Result<Vec<BallotRecord>, HubError> {
        if !self.core.sessions.contains_key(&id) {
            return Err(HubError::SessionNotFound);
        }
        Ok(self.store.ballots(id)?)
    }

    /// Decides, writes and commits `commands` as one transaction.
    fn batch(&mut self, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        let mut batch = Batch {
            before: Vec::new(),
            roll_len: self.core.roll.len(),
            replies: Vec::new(),
        };
        let mut txn = match self.store.begin() {
            Ok(txn) => txn,
            Err(e) => return fail_all(commands, batch, e),
        };
        let mut locked: Vec<Uuid> = commands.iter().filter_map(Command::session).collect();
        locked.sort_unstable();
        locked.dedup();
        match txn.lock_sessions(&locked) {
            Ok(Locked::Current) => {}
            Ok(Locked::Fresh(states)) => self.core.refresh(states),
            Err(e) => {
                drop(txn);
                return fail_all(commands, batch, e);
            }
        }
        let mut commands = commands.into_iter();
        let mut outcome: Result<(), StoreError> = Ok(());
        for cmd in commands.by_ref() {
            if let Err(e) = self.core.apply(cmd, &mut *txn, &mut batch) {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_ok() {
            outcome = self.core.write_states(&batch, &mut *txn);
        }
        let outcome = outcome.and_then(|()| txn.commit());
        match outcome {
            Ok(()) => {
                self.core.publish(&batch);
                for reply in batch.replies {
                    reply(Ok(()));
                }
            }
            Err(e) => {
                // Its real cause stays in the log; clients hear only that
                // nothing was recorded.
                tracing::error!(error = %e, commands = batch.replies.len(), "a batch failed to commit; it is refused and undone");
                self.core.undo(&batch);
                fail_all(commands.collect(), batch, e);
            }
        }
    }
}

/// Answers every command of a batch that could not be recorded.
fn fail_all(rest: Vec<Command>, batch: Batch, e: StoreError) {
    let e = Arc::new(e);
    for reply in batch.replies {
        reply(Err(HubError::Store(e.clone())));
    }
    for cmd in rest {
        let err = HubError::Store(e.clone());
        match cmd {
            Command::Create(_, r) => drop(r.send(Err(err))),
            Command::Cast { reply, .. } => drop(reply.send(Err(err))),
            Command::Close(_, r) => drop(r.send(Err(err))),
            Command::Register(_, r) => drop(r.send(Err(err))),
            Command::Ballots(_, r) => drop(r.send(Err(err))),
            Command::Stop => {}
        }
    }
}

/// Sends a decided command's answer: a refusal at once, a success when the
/// batch commits. A storage failure is handed back to abort the batch, and
/// this command is answered with it then.
fn settle<T: Send + 'static>(
    decided: Decided<T>,
    reply: Reply<T>,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    match decided {
        Ok(Ok(value)) => batch.answer(reply, value),
        Ok(Err(refusal)) => drop(reply.send(Err(refusal))),
        Err(e) => {
            batch.replies.push(Box::new(move |outcome| {
                let _ = reply.send(outcome.and_then(|()| Err(HubError::ShuttingDown)));
            }));
            return Err(e);
        }
    }
    Ok(())
}

impl Core {
    fn restore(&mut self, loaded: Loaded) {
        let mut registry = self.board.write();
        for entry in loaded.voters {
            let i = registry.roll.len();
            registry.roll_index.insert(entry.code.clone(), i);
            registry.roll.push(entry.clone());
            self.roll.push(entry);
        }
        for stored in loaded.sessions {
            let meta = Arc::new(stored.meta);
            let mut tally = Tally::new(meta.scale);
            for b in &stored.ballots {
                tally.add(&b.ballot, groups_of(&self.roll, meta.electorate, &b.voter));
            }
            let state = SessionState {
                status: stored.status,
                result: stored.result,
                closed_at: stored.closed_at,
                tally,
                seq: stored.seq,
            };
            let id = meta.id;
            registry.order.push(id);
            registry
                .sessions
                .insert(id, watch::Sender::new(Published::of(&meta, &state)));
            self.sessions.insert(id, CoreSession { meta, state });
        }
    }

    /// Takes the stored state of sessions another writer may have changed.
    fn refresh(&mut self, states: Vec<(Uuid, SessionState)>) {
        for (id, state) in states {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.state = state;
            }
        }
    }

    fn apply(
        &mut self,
        cmd: Command,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        match cmd {
            Command::Create(new, reply) => settle(self.create(new, txn, batch), reply, batch),
            Command::Cast {
                session,
                voter,
                ballot,
                reply,
            } => settle(self.cast(session, voter, ballot, txn, batch), reply, batch),
            Command::Close(id, reply) => settle(Ok(self.close(id, batch)), reply, batch),
            Command::Register(voters, reply) => settle(self.register(voters, txn), reply, batch),
            Command::Ballots(..) | Command::Stop => Ok(()),
        }
    }

    fn create(&mut self, new: NewSession, txn: &mut dyn Txn, batch: &mut Batch) -> Decided<Uuid> {
        let title = new.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Ok(Err(HubError::InvalidSession(format!(
                "a session needs a title of 1 to {MAX_TITLE} characters"
            ))));
        }
        if new.description.chars().count() > MAX_DESCRIPTION {
            return Ok(Err(HubError::InvalidSession(format!(
                "the description is limited to {MAX_DESCRIPTION} characters"
            ))));
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Ok(Err(HubError::Full("too many sessions on this hub")));
        }
        let spec = new.rule.unwrap_or(RuleSpec {
            kind: "majority".into(),
            ..RuleSpec::default()
        });
        let rule = match spec.resolve(self.roll.len() as u64) {
            Ok(rule) => rule,
            Err(e) => return Ok(Err(e.into())),
        };
        let meta = SessionMeta {
            id: Uuid::new_v4(),
            title,
            description: new.description,
            rule,
            electorate: new.electorate,
            scale: new.scale,
            created_at: now_rfc3339(),
        };
        txn.write(&Write::Session(meta.clone()))?;
        let id = meta.id;
        batch.remember(id, None);
        self.sessions.insert(
            id,
            CoreSession {
                state: SessionState::new(meta.scale),
                meta: Arc::new(meta),
            },
        );
        Ok(Ok(id))
    }

    fn cast(
        &mut self,
        id: Uuid,
        voter: String,
        ballot: Ballot,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<VoteReceipt> {
        let refuse = |e: HubError| Ok(Err(e));
        if voter.trim().is_empty() || voter.chars().count() > MAX_VOTER {
            return refuse(HubError::InvalidBallot(format!(
                "\"voter\" must be a non-empty string of at most {MAX_VOTER} characters"
            )));
        }
        let Some(session) = self.sessions.get(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        if session.state.status == Status::Closed {
            return refuse(HubError::SessionClosed);
        }
        if ballot.scale() != session.meta.scale {
            return refuse(HubError::InvalidBallot(match session.meta.scale {
                Scale::Choice => "this session takes a \"choice\": for, against or abstain".into(),
                Scale::Nuanced => "this session takes a \"grade\" from -3 to 3".into(),
            }));
        }
        let voter = match session.meta.electorate {
            Electorate::Open => voter,
            Electorate::Roll => match normalise_code(&voter).filter(|c| self.roll.get(c).is_some())
            {
                Some(code) => code,
                None => return refuse(HubError::NotOnRoll),
            },
        };
        let previous = txn.ballot(id, &voter)?;
        if previous.is_none() && session.state.tally.total() >= self.limits.max_ballots_per_session
        {
            return refuse(HubError::Full("this session has reached its ballot limit"));
        }
        let groups = groups_of(&self.roll, session.meta.electorate, &voter).to_vec();
        batch.remember(id, Some(&session.state));
        let record = BallotRecord {
            voter,
            ballot,
            cast_at: now_rfc3339(),
        };
        txn.write(&Write::Ballot {
            session: id,
            record,
        })?;
        let Some(session) = self.sessions.get_mut(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        let state = &mut session.state;
        if let Some(old) = previous {
            state.tally.remove(&old, &groups);
        }
        state.tally.add(&ballot, &groups);
        state.seq += 1;
        Ok(Ok(VoteReceipt {
            tally: state.tally.clone(),
            seq: state.seq,
        }))
    }

    /// Closing writes nothing of its own: the session's new state is
    /// written with the batch's others.
    fn close(&mut self, id: Uuid, batch: &mut Batch) -> Result<CloseReceipt, HubError> {
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(HubError::SessionNotFound)?;
        let state = &mut session.state;
        if let Some(result) = state.result {
            // Closing again answers the stored result; nothing changes or is
            // broadcast, but the answer still waits for the batch so that it
            // never reports a close that is not yet durable.
            return Ok(CloseReceipt {
                result,
                tally: state.tally.clone(),
                seq: state.seq,
            });
        }
        batch.remember(id, Some(state));
        let result = session.meta.rule.outcome(&state.tally);
        state.status = Status::Closed;
        state.result = Some(result);
        state.closed_at = Some(now_rfc3339());
        state.seq += 1;
        Ok(CloseReceipt {
            result,
            tally: state.tally.clone(),
            seq: state.seq,
        })
    }

    fn register(&mut self, voters: Vec<NewVoter>, txn: &mut dyn Txn) -> Decided<Vec<RollEntry>> {
        let (entries, added) = match self.roll.register(voters, &self.limits) {
            Ok(done) => done,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let fresh = self.roll.added_since(self.roll.len() - added);
        for entry in fresh {
            txn.write(&Write::Voter(entry.clone()))?;
        }
        Ok(Ok(entries))
    }

    /// Each touched session's new state, written once per batch.
    fn write_states(&self, batch: &Batch, txn: &mut dyn Txn) -> Result<(), StoreError> {
        for (id, _) in &batch.before {
            if let Some(session) = self.sessions.get(id) {
                txn.write(&Write::State {
                    session: *id,
                    state: session.state.clone(),
                })?;
            }
        }
        Ok(())
    }

    /// Puts memory back as it was before the batch.
    fn undo(&mut self, batch: &Batch) {
        for (id, before) in batch.before.iter().rev() {
            match before {
                Some(state) => {
                    if let Some(s) = self.sessions.get_mut(id) {
                        s.state = state.clone();
                    }
                }
                None => {
                    self.sessions.remove(id);
                }
            }
        }
        self.roll.truncate(batch.roll_len);
    }

    /// Shows readers what the batch committed.
    fn publish(&self, batch: &Batch) {
        let mut list_changed = false;
        let mut registry = self.board.write();
        for (id, before) in &batch.before {
            let Some(session) = self.sessions.get(id) else {
                continue;
            };
            let published = Published::of(&session.meta, &session.state);
            match before {
                None => {
                    list_changed = true;
                    tracing::info!(session = %id, title = %session.meta.title, "session created");
                    registry.order.push(*id);
                    registry.sessions.insert(*id, watch::Sender::new(published));
                }
                Some(before) => {
                    if session.state.status == Status::Closed && before.status == Status::Open {
                        list_changed = true;
                        tracing::info!(
                            session = %id,
                            result = session.state.result.map(Outcome::as_str).unwrap_or("?"),
                            ballots = session.state.tally.total(),
                            "session closed"
                        );
                    }
                    if let Some(live) = registry.sessions.get(id) {
                        live.send_replace(published);
                    }
                }
            }
        }
        let added = self.roll.added_since(batch.roll_len);
        if !added.is_empty() {
            tracing::info!(added = added.len(), "voters registered");
            for entry in added {
                let i = registry.roll.len();
                registry.roll_index.insert(entry.code.clone(), i);
                registry.roll.push(entry.clone());
            }
        }
        drop(registry);
        if list_changed {
            self.board.lobby.send_modify(|v| *v += 1);
        }
        self.board.tick();
    }
}

/// The groups a ballot counts for: a roll member's, none in open sessions.
fn groups_of<'a>(roll: &'a Roll, electorate: Electorate, voter: &str) -> &'a [String] {
    match electorate {
        Electorate::Roll => roll.get(voter).map(|e| e.groups.as_slice()).unwrap_or(&[]),
        Electorate::Open => &[],
    }
}
