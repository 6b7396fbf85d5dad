//! The hub core: sessions, ballots, the voter roll and their tallies, kept
//! in step with the store, and the change stream every door reads from.
//!
//! All changes go through one writer thread that owns the store. It takes
//! commands in arrival order, validates each against the state so far,
//! writes a whole batch in one transaction (group commit), and only then
//! answers and publishes. A batch that fails to commit is undone in memory,
//! so memory never shows what the disk does not hold. Reads (session views,
//! live subscriptions) never wait for the writer: they read the last
//! published state of each session from a `watch` channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::protocol::{
    CloseReceipt, Electorate, LiveCounts, LiveEvent, NewSession, NewVoter, RollEntry, SessionView,
    Status, VoteReceipt, to_json,
};
use crate::rules::{Outcome, Rule, RuleError, RuleSpec, Standing};
use crate::store::{BallotRecord, SessionRecord, Store, StoreError, VoterRecord, Write};
use crate::tally::{Ballot, Scale, Tally};

/// Bounds that keep memory finite whatever clients send.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_ballots_per_session: u64,
    pub max_roll: usize,
    /// Commands waiting for the writer; senders wait when it is full.
    pub queue: usize,
    /// Commands written in one transaction at most.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 10_000,
            max_ballots_per_session: 1_000_000,
            max_roll: 200_000,
            queue: 8_192,
            max_batch: 1_024,
        }
    }
}

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_VOTER: usize = 128;
pub const MAX_NAME: usize = 128;
pub const MAX_GROUP_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no session with this id")]
    SessionNotFound,
    #[error("this vote is closed")]
    SessionClosed,
    #[error("this code is not on the voter roll")]
    NotOnRoll,
    #[error("{0}")]
    InvalidBallot(String),
    #[error("{0}")]
    InvalidSession(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("{0}")]
    InvalidRoll(String),
    #[error("limit reached: {0}")]
    Full(&'static str),
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error("cannot start the writer thread: {0}")]
    Writer(std::io::Error),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

/// What a subscriber receives: the state of a session at one `seq`, with
/// its live frames serialised once for all subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    pub status: Status,
    pub result: Option<Outcome>,
    pub closed_at: Option<String>,
    pub tally: Tally,
    pub seq: u64,
    /// How many times a moderator re-broadcast this `seq`.
    pub replay: u32,
    pub standing: Standing,
    /// `vote_update`, serialised once.
    pub update: String,
    /// `session_closed` once closed, serialised once.
    pub closed: Option<String>,
    /// The frames as the live door puts them on the wire, made once by the
    /// first subscriber that sends them and shared by the others: the whole
    /// snapshot, and what changed for those that saw an earlier state.
    pub wire: std::sync::OnceLock<bytes::Bytes>,
    pub wire_change: std::sync::OnceLock<bytes::Bytes>,
}

impl Published {
    /// What orders the states of one session: later is newer.
    pub fn version(&self) -> (u64, u32) {
        (self.seq, self.replay)
    }
}

/// The parts of a session that never change after creation.
#[derive(Debug)]
pub struct SessionMeta {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub rule: Rule,
    pub electorate: Electorate,
    pub scale: Scale,
    pub created_at: String,
}

struct SessionSlot {
    meta: Arc<SessionMeta>,
    live: watch::Sender<Arc<Published>>,
}

/// The readable side of the hub, updated by the writer after each commit.
#[derive(Default)]
struct Registry {
    sessions: HashMap<Uuid, SessionSlot>,
    /// Creation order, oldest first.
    order: Vec<Uuid>,
    roll: Vec<RollEntry>,
}

/// A live subscription to one session: a stream of its published states,
/// the current one first. Latest wins: a subscriber that reads slowly skips
/// states, it never queues them. Counts as a subscriber while held.
pub struct Subscription {
    /// Always `Some` until dropped; an `Option` only so that `drop` can
    /// release the receiver before announcing the new subscriber count.
    updates: Option<watch::Receiver<Arc<Published>>>,
    changes: watch::Sender<u64>,
}

impl Subscription {
    /// The session's newest state, marked as seen.
    pub fn newest(&mut self) -> Option<Arc<Published>> {
        self.updates
            .as_mut()
            .map(|updates| updates.borrow_and_update().clone())
    }

    /// Whether a state newer than the last one taken was published: one
    /// atomic load, cheap enough to ask of thousands of subscribers.
    pub fn has_news(&self) -> bool {
        self.updates
            .as_ref()
            .is_some_and(|updates| updates.has_changed().unwrap_or(false))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.updates.take());
        self.changes.send_modify(|v| *v += 1);
    }
}

/// The cheap-to-clone handle every door holds.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    // A std lock: it is only ever held for a lookup or a swap, never across
    // an `.await`.
    registry: Arc<RwLock<Registry>>,
    changes: watch::Sender<u64>,
    /// Ticks when a session is created or closed: the list changed.
    lobby: watch::Sender<u64>,
    /// Open live connections (browsers and other clients).
    connections: Arc<AtomicUsize>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Counts as an open live connection while held.
pub struct ConnectionGuard {
    connections: Arc<AtomicUsize>,
    changes: watch::Sender<u64>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        self.changes.send_modify(|v| *v += 1);
    }
}

type Reply<T> = oneshot::Sender<Result<T, HubError>>;

enum Command {
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

impl Hub {
    /// Loads everything from `store` and starts the writer thread.
    pub fn open(mut store: impl Store, limits: Limits) -> Result<Hub, HubError> {
        let loaded = store.load()?;
        let registry = Arc::new(RwLock::new(Registry::default()));
        let (changes, _) = watch::channel(0u64);
        let (lobby, _) = watch::channel(0u64);
        let mut core = Core {
            lobby: lobby.clone(),
            store: Box::new(store),
            sessions: HashMap::new(),
            codes: HashMap::new(),
            names: HashMap::new(),
            registry: registry.clone(),
            changes: changes.clone(),
            limits: limits.clone(),
        };
        core.restore(loaded)?;
        let (tx, rx) = mpsc::channel(limits.queue);
        let writer = std::thread::Builder::new()
            .name("votehub-writer".into())
            .spawn(move || core.run(rx))
            .map_err(HubError::Writer)?;
        Ok(Hub {
            inner: Arc::new(Inner {
                commands: tx,
                registry,
                changes,
                lobby,
                connections: Arc::default(),
                writer: std::sync::Mutex::new(Some(writer)),
            }),
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, HubError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| HubError::ShuttingDown)?;
        rx.await.map_err(|_| HubError::ShuttingDown)?
    }

    pub async fn create_session(&self, new: NewSession) -> Result<SessionView, HubError> {
        let id = self.call(|r| Command::Create(new, r)).await?;
        self.session(id).ok_or(HubError::SessionNotFound)
    }

    /// Records a ballot; returns once it is durable.
    pub async fn cast(
        &self,
        session: Uuid,
        voter: String,
        ballot: Ballot,
    ) -> Result<VoteReceipt, HubError> {
        self.call(|reply| Command::Cast {
            session,
            voter,
            ballot,
            reply,
        })
        .await
    }

    /// Closes a session, or returns the stored result if it already is.
    pub async fn close(&self, session: Uuid) -> Result<CloseReceipt, HubError> {
        self.call(|r| Command::Close(session, r)).await
    }

    pub async fn register_voters(&self, voters: Vec<NewVoter>) -> Result<Vec<RollEntry>, HubError> {
        self.call(|r| Command::Register(voters, r)).await
    }

    /// Every ballot of a session, read from the store after all writes
    /// queued before this call.
    pub async fn ballots(&self, session: Uuid) -> Result<Vec<BallotRecord>, HubError> {
        self.call(|r| Command::Ballots(session, r)).await
    }

    /// Pushes the current state of a session to every subscriber again.
    pub fn broadcast(&self, session: Uuid) -> Result<SessionView, HubError> {
        {
            let registry = self.read();
            let slot = registry
                .sessions
                .get(&session)
                .ok_or(HubError::SessionNotFound)?;
            // The same state again, as a newer version: every subscriber
            // gets it once more.
            slot.live.send_modify(|state| {
                let mut again = Published::clone(state);
                again.replay += 1;
                *state = Arc::new(again);
            });
        }
        self.inner.changes.send_modify(|v| *v += 1);
        self.session(session).ok_or(HubError::SessionNotFound)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A poisoned lock means a panic while swapping a map entry; the map
        // itself is still consistent, so keep serving.
        self.inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn session(&self, id: Uuid) -> Option<SessionView> {
        let registry = self.read();
        registry.sessions.get(&id).map(view)
    }

    /// All sessions, newest first.
    pub fn sessions(&self) -> Vec<SessionView> {
        let registry = self.read();
        registry
            .order
            .iter()
            .rev()
            .filter_map(|id| registry.sessions.get(id))
            .map(view)
            .collect()
    }

    pub fn roll(&self) -> Vec<RollEntry> {
        self.read().roll.clone()
    }

    /// Subscribes to a session's published states; `None` if unknown.
    pub fn subscribe(&self, id: Uuid) -> Option<Subscription> {
        let updates = self.read().sessions.get(&id)?.live.subscribe();
        self.inner.changes.send_modify(|v| *v += 1);
        Some(Subscription {
            updates: Some(updates),
            changes: self.inner.changes.clone(),
        })
    }

    /// A session's newest published state, without subscribing to it.
    pub fn published(&self, id: Uuid) -> Option<Arc<Published>> {
        Some(self.read().sessions.get(&id)?.live.borrow().clone())
    }

    /// Ticks after every change of any session, the roll, or a subscriber
    /// count: watchers re-read what they show (latest wins, never a queue).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Ticks when a session is created or closed, for clients that show the
    /// list of sessions.
    pub fn lobby(&self) -> watch::Receiver<u64> {
        self.inner.lobby.subscribe()
    }

    /// Registers an open live connection until the guard is dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.changes.send_modify(|v| *v += 1);
        ConnectionGuard {
            connections: self.inner.connections.clone(),
            changes: self.inner.changes.clone(),
        }
    }

    /// Open live connections right now.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// The roll entry of a code, typed as people type it.
    pub fn roll_entry(&self, typed: &str) -> Option<RollEntry> {
        let code = normalise_code(typed)?;
        self.read().roll.iter().find(|e| e.code == code).cloned()
    }

    /// Voters on the roll.
    pub fn roll_size(&self) -> usize {
        self.read().roll.len()
    }

    /// Lets queued writes finish, then stops the writer thread. Calls made
    /// afterwards fail with [`HubError::ShuttingDown`].
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Stop).await;
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

fn view(slot: &SessionSlot) -> SessionView {
    let meta = &slot.meta;
    let state = slot.live.borrow().clone();
    SessionView {
        id: meta.id,
        title: meta.title.clone(),
        description: meta.description.clone(),
        status: state.status,
        rule: meta.rule.clone(),
        electorate: meta.electorate,
        scale: meta.scale,
        created_at: meta.created_at.clone(),
        closed_at: state.closed_at.clone(),
        tally: state.tally.clone(),
        seq: state.seq,
        subscribers: slot.live.receiver_count(),
        result: state.result,
        standing: state.standing.clone(),
    }
}

/// The current time in RFC 3339, to the millisecond.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond())
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Roll codes: 8 characters without look-alikes (no I/1, O/0), shown as
/// `XXXX-XXXX`. 32^8 ≈ 10^12 codes: guessing one is hopeless.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn new_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char);
    }
    code
}

/// Accepts a code as people type it: any case, with or without the dash or
/// spaces.
pub fn normalise_code(input: &str) -> Option<String> {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if chars.len() != 8
        || !chars
            .iter()
            .all(|c| CODE_ALPHABET.contains(&(*c as u8)) && c.is_ascii())
    {
        return None;
    }
    let mut code: String = chars[..4].iter().collect();
    code.push('-');
    code.extend(&chars[4..]);
    Some(code)
}

// ── The writer thread ──────────────────────────────────────────────────────

/// The mutable part of a session, owned by the writer.
#[derive(Clone)]
struct SessionState {
    status: Status,
    result: Option<Outcome>,
    closed_at: Option<String>,
    tally: Tally,
    seq: u64,
}

struct CoreSession {
    meta: Arc<SessionMeta>,
    state: SessionState,
}

struct Core {
    store: Box<dyn Store>,
    sessions: HashMap<Uuid, CoreSession>,
    /// Roll code → groups.
    codes: HashMap<String, Vec<String>>,
    /// Name → code, so registering a name twice returns its code.
    names: HashMap<String, String>,
    registry: Arc<RwLock<Registry>>,
    changes: watch::Sender<u64>,
    lobby: watch::Sender<u64>,
    limits: Limits,
}

/// What one batch changed, to undo if its commit fails.
#[derive(Default)]
struct Batch {
    writes: Vec<Write>,
    /// Sessions touched, with their state before the batch.
    before: Vec<(Uuid, Option<SessionState>)>,
    voters: Vec<RollEntry>,
    /// Ballots written in this batch, for re-votes within it.
    pending: HashMap<(Uuid, String), Ballot>,
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

impl Core {
    fn restore(&mut self, loaded: crate::store::Loaded) -> Result<(), HubError> {
        for v in loaded.voters {
            self.names.insert(v.name.clone(), v.code.clone());
            self.codes.insert(v.code.clone(), v.groups.clone());
            self.registry_mut().roll.push(RollEntry {
                name: v.name,
                code: v.code,
                groups: v.groups,
            });
        }
        for (record, ballots) in loaded.sessions {
            let meta = meta_from_record(&record)?;
            let mut tally = Tally::new(meta.scale);
            for b in &ballots {
                tally.add(&b.ballot, self.groups_of(meta.electorate, &b.voter));
            }
            let result = match record.result.as_deref() {
                None => None,
                Some("adopted") => Some(Outcome::Adopted),
                Some("rejected") => Some(Outcome::Rejected),
                Some(other) => {
                    return Err(
                        StoreError::Inconsistent(format!("unknown result {other:?}")).into(),
                    );
                }
            };
            let state = SessionState {
                status: if result.is_some() {
                    Status::Closed
                } else {
                    Status::Open
                },
                result,
                closed_at: record.closed_at,
                tally,
                seq: record.seq,
            };
            let id = meta.id;
            let meta = Arc::new(meta);
            let published = publish_state(&meta, &state);
            {
                let mut registry = self.registry_mut();
                registry.order.push(id);
                registry.sessions.insert(
                    id,
                    SessionSlot {
                        meta: meta.clone(),
                        live: watch::Sender::new(published),
                    },
                );
            }
            self.sessions.insert(id, CoreSession { meta, state });
        }
        Ok(())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn groups_of(&self, electorate: Electorate, voter: &str) -> &[String] {
        match electorate {
            Electorate::Roll => self.codes.get(voter).map(Vec::as_slice).unwrap_or(&[]),
            Electorate::Open => &[],
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut stopping = false;
        while !stopping {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut batch = Batch::default();
            let mut next = Some(first);
            let mut handled = 0;
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Stop => stopping = true,
                    // A read sees everything queued before it: commit first.
                    Command::Ballots(id, reply) => {
                        self.commit(std::mem::take(&mut batch));
                        let result = if self.sessions.contains_key(&id) {
                            self.store.ballots(id).map_err(HubError::from)
                        } else {
                            Err(HubError::SessionNotFound)
                        };
                        let _ = reply.send(result);
                    }
                    cmd => self.apply(cmd, &mut batch),
                }
                handled += 1;
                if handled < self.limits.max_batch && !stopping {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(batch);
        }
        // Answer whatever raced the stop instead of leaving it hanging.
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            drop(cmd);
        }
    }

    fn apply(&mut self, cmd: Command, batch: &mut Batch) {
        match cmd {
            Command::Create(new, reply) => match self.create(new, batch) {
                Ok(id) => batch.answer(reply, id),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Cast {
                session,
                voter,
                ballot,
                reply,
            } => match self.cast(session, voter, ballot, batch) {
                Ok(receipt) => batch.answer(reply, receipt),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Close(id, reply) => match self.close(id, batch) {
                Ok(receipt) => batch.answer(reply, receipt),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Register(voters, reply) => match self.register(voters, batch) {
                Ok(entries) => batch.answer(reply, entries),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Ballots(..) | Command::Stop => {}
        }
    }

    fn create(&mut self, new: NewSession, batch: &mut Batch) -> Result<Uuid, HubError> {
        let title = new.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(HubError::InvalidSession(format!(
                "a session needs a title of 1 to {MAX_TITLE} characters"
            )));
        }
        if new.description.chars().count() > MAX_DESCRIPTION {
            return Err(HubError::InvalidSession(format!(
                "the description is limited to {MAX_DESCRIPTION} characters"
            )));
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(HubError::Full("too many sessions on this hub"));
        }
        let rule = new
            .rule
            .unwrap_or(RuleSpec {
                kind: "majority".into(),
                ..RuleSpec::default()
            })
            .resolve(self.codes.len() as u64)?;
        let meta = SessionMeta {
            id: Uuid::new_v4(),
            title,
            description: new.description,
            rule,
            electorate: new.electorate,
            scale: new.scale,
            created_at: now_rfc3339(),
        };
        let state = SessionState {
            status: Status::Open,
            result: None,
            closed_at: None,
            tally: Tally::new(meta.scale),
            seq: 0,
        };
        batch.writes.push(Write::Session(SessionRecord {
            id: meta.id,
            title: meta.title.clone(),
            description: meta.description.clone(),
            rule: serde_json::to_string(&meta.rule)
                .map_err(|e| StoreError::Inconsistent(e.to_string()))?,
            electorate: meta.electorate.as_str().into(),
            scale: meta.scale.as_str().into(),
            result: None,
            created_at: meta.created_at.clone(),
            closed_at: None,
            seq: 0,
        }));
        let id = meta.id;
        batch.remember(id, None);
        self.sessions.insert(
            id,
            CoreSession {
                meta: Arc::new(meta),
                state,
            },
        );
        Ok(id)
    }

    fn cast(
        &mut self,
        id: Uuid,
        voter: String,
        ballot: Ballot,
        batch: &mut Batch,
    ) -> Result<VoteReceipt, HubError> {
        let session = self.sessions.get(&id).ok_or(HubError::SessionNotFound)?;
        if session.state.status == Status::Closed {
            return Err(HubError::SessionClosed);
        }
        if ballot.scale() != session.meta.scale {
            return Err(HubError::InvalidBallot(match session.meta.scale {
                Scale::Choice => "this session takes a \"choice\": for, against or abstain".into(),
                Scale::Nuanced => "this session takes a \"grade\" from -3 to 3".into(),
            }));
        }
        let voter = match session.meta.electorate {
            Electorate::Open => voter,
            Electorate::Roll => normalise_code(&voter)
                .filter(|c| self.codes.contains_key(c))
                .ok_or(HubError::NotOnRoll)?,
        };
        let key = (id, voter);
        let previous = match batch.pending.get(&key) {
            Some(b) => Some(*b),
            None => self.store.ballot(id, &key.1)?,
        };
        if previous.is_none() && session.state.tally.total() >= self.limits.max_ballots_per_session
        {
            return Err(HubError::Full("this session has reached its ballot limit"));
        }
        let groups = self.groups_of(session.meta.electorate, &key.1).to_vec();
        batch.remember(id, Some(&session.state));
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(HubError::SessionNotFound);
        };
        let state = &mut session.state;
        if let Some(old) = previous {
            state.tally.remove(&old, &groups);
        }
        state.tally.add(&ballot, &groups);
        state.seq += 1;
        let (_, voter) = key;
        batch.writes.push(Write::Ballot {
            session: id,
            seq: state.seq,
            record: BallotRecord {
                voter: voter.clone(),
                ballot,
                cast_at: now_rfc3339(),
            },
        });
        batch.pending.insert((id, voter), ballot);
        Ok(VoteReceipt {
            tally: state.tally.clone(),
            seq: state.seq,
        })
    }

    fn close(&mut self, id: Uuid, batch: &mut Batch) -> Result<CloseReceipt, HubError> {
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(HubError::SessionNotFound)?;
        let state = &mut session.state;
        if let Some(result) = state.result {
            // Closing again answers the stored result; nothing is written or
            // broadcast, but the answer still waits for the batch so that it
            // never reports a close that is not yet durable.
            let receipt = CloseReceipt {
                result,
                tally: state.tally.clone(),
                seq: state.seq,
            };
            return Ok(receipt);
        }
        let before = state.clone();
        let result = session.meta.rule.outcome(&state.tally);
        let closed_at = now_rfc3339();
        state.status = Status::Closed;
        state.result = Some(result);
        state.closed_at = Some(closed_at.clone());
        state.seq += 1;
        let receipt = CloseReceipt {
            result,
            tally: state.tally.clone(),
            seq: state.seq,
        };
        batch.writes.push(Write::Close {
            session: id,
            seq: state.seq,
            result: result.as_str().into(),
            closed_at,
        });
        batch.remember(id, Some(&before));
        Ok(receipt)
    }

    fn register(
        &mut self,
        voters: Vec<NewVoter>,
        batch: &mut Batch,
    ) -> Result<Vec<RollEntry>, HubError> {
        let mut entries = Vec::with_capacity(voters.len());
        let mut fresh: Vec<RollEntry> = Vec::new();
        for v in voters {
            let name = v.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > MAX_NAME {
                return Err(HubError::InvalidRoll(format!(
                    "each name must have 1 to {MAX_NAME} characters"
                )));
            }
            let mut groups: Vec<String> = v.groups.iter().map(|g| g.trim().to_owned()).collect();
            if groups
                .iter()
                .any(|g| g.is_empty() || g.chars().count() > MAX_GROUP_NAME)
            {
                return Err(HubError::InvalidRoll(format!(
                    "each group name must have 1 to {MAX_GROUP_NAME} characters"
                )));
            }
            groups.sort();
            groups.dedup();
            let known = self.names.get(&name).cloned().or_else(|| {
                fresh
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| e.code.clone())
            });
            if let Some(code) = known {
                let groups = self
                    .codes
                    .get(&code)
                    .cloned()
                    .or_else(|| {
                        fresh
                            .iter()
                            .find(|e| e.code == code)
                            .map(|e| e.groups.clone())
                    })
                    .unwrap_or_default();
                entries.push(RollEntry { name, code, groups });
                continue;
            }
            if self.codes.len() + fresh.len() >= self.limits.max_roll {
                return Err(HubError::Full("the voter roll is full"));
            }
            let code = loop {
                let c = new_code();
                if !self.codes.contains_key(&c) && !fresh.iter().any(|e| e.code == c) {
                    break c;
                }
            };
            let entry = RollEntry { name, code, groups };
            fresh.push(entry.clone());
            entries.push(entry);
        }
        // Validated as a whole: only now does anything change.
        for e in &fresh {
            self.names.insert(e.name.clone(), e.code.clone());
            self.codes.insert(e.code.clone(), e.groups.clone());
            batch.writes.push(Write::Voter(VoterRecord {
                code: e.code.clone(),
                name: e.name.clone(),
                groups: e.groups.clone(),
            }));
        }
        batch.voters.extend(fresh);
        Ok(entries)
    }

    /// Writes the batch; on success publishes and answers, on failure undoes
    /// it in memory and answers every command in it with the error.
    fn commit(&mut self, batch: Batch) {
        let Batch {
            writes,
            before,
            voters,
            replies,
            ..
        } = batch;
        if writes.is_empty() && replies.is_empty() {
            return;
        }
        let outcome = if writes.is_empty() {
            Ok(())
        } else {
            self.store.commit(&writes)
        };
        match outcome {
            Ok(()) => {
                self.publish(&before, voters);
                for reply in replies {
                    reply(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = writes.len(), "commit failed; the batch is refused and undone");
                for (id, state) in before.into_iter().rev() {
                    match state {
                        Some(state) => {
                            if let Some(s) = self.sessions.get_mut(&id) {
                                s.state = state;
                            }
                        }
                        None => {
                            self.sessions.remove(&id);
                        }
                    }
                }
                for v in voters {
                    self.names.remove(&v.name);
                    self.codes.remove(&v.code);
                }
                let message = e.to_string();
                for reply in replies {
                    reply(Err(HubError::Store(StoreError::Inconsistent(
                        message.clone(),
                    ))));
                }
            }
        }
    }

    fn publish(&self, touched: &[(Uuid, Option<SessionState>)], voters: Vec<RollEntry>) {
        let mut list_changed = false;
        let mut registry = self.registry_mut();
        for (id, before) in touched {
            let Some(session) = self.sessions.get(id) else {
                continue;
            };
            let published = publish_state(&session.meta, &session.state);
            if before.is_none() {
                list_changed = true;
                tracing::info!(session = %id, title = %session.meta.title, "session created");
                registry.order.push(*id);
                registry.sessions.insert(
                    *id,
                    SessionSlot {
                        meta: session.meta.clone(),
                        live: watch::Sender::new(published),
                    },
                );
            } else if let Some(slot) = registry.sessions.get(id) {
                if session.state.status == Status::Closed
                    && before.as_ref().is_some_and(|b| b.status == Status::Open)
                {
                    list_changed = true;
                    tracing::info!(
                        session = %id,
                        result = session.state.result.map(Outcome::as_str).unwrap_or("?"),
                        ballots = session.state.tally.total(),
                        "session closed"
                    );
                }
                slot.live.send_replace(published);
            }
        }
        if !voters.is_empty() {
            tracing::info!(added = voters.len(), "voters registered");
            registry.roll.extend(voters);
        }
        drop(registry);
        if list_changed {
            self.lobby.send_modify(|v| *v += 1);
        }
        self.changes.send_modify(|v| *v += 1);
    }
}

fn meta_from_record(r: &SessionRecord) -> Result<SessionMeta, HubError> {
    let bad = |what: &str| {
        HubError::Store(StoreError::Inconsistent(format!(
            "session {}: bad {what}",
            r.id
        )))
    };
    Ok(SessionMeta {
        id: r.id,
        title: r.title.clone(),
        description: r.description.clone(),
        rule: serde_json::from_str(&r.rule).map_err(|_| bad("rule"))?,
        electorate: serde_json::from_value(serde_json::Value::String(r.electorate.clone()))
            .map_err(|_| bad("electorate"))?,
        scale: serde_json::from_value(serde_json::Value::String(r.scale.clone()))
            .map_err(|_| bad("scale"))?,
        created_at: r.created_at.clone(),
    })
}

/// Builds what subscribers get, serialising the live frames once.
fn publish_state(meta: &SessionMeta, state: &SessionState) -> Arc<Published> {
    let standing = meta.rule.standing(&state.tally);
    let counts = || LiveCounts {
        votes_for: state.tally.votes_for,
        votes_against: state.tally.votes_against,
        votes_total: state.tally.total(),
        votes_abstain: state.tally.votes_abstain,
        seq: state.seq,
        needed: standing.needed,
        adopted_if_closed_now: standing.adopted_if_closed_now,
        grades: state.tally.grades(),
        groups: &standing.groups,
    };
    let update = to_json(&LiveEvent::VoteUpdate {
        session_id: meta.id,
        counts: counts(),
    });
    let closed = state.result.map(|result| {
        to_json(&LiveEvent::SessionClosed {
            session_id: meta.id,
            result,
            counts: counts(),
        })
    });
    Arc::new(Published {
        status: state.status,
        result: state.result,
        closed_at: state.closed_at.clone(),
        tally: state.tally.clone(),
        seq: state.seq,
        replay: 0,
        standing,
        update,
        closed,
        wire: std::sync::OnceLock::new(),
        wire_change: std::sync::OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_forgiving_to_type() {
        let code = new_code();
        assert_eq!(normalise_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(normalise_code("abcd efgh").as_deref(), Some("ABCD-EFGH"));
        assert_eq!(normalise_code("ABCDEFGH").as_deref(), Some("ABCD-EFGH"));
        assert_eq!(normalise_code("ABCD-EFG"), None);
        assert_eq!(
            normalise_code("ABCD-EFG0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalise_code("ÀBCD-EFGH"), None);
    }
}
