//! The handle every door holds: the core's API. Changes are commands to
//! the writer thread (`writer`), answered once durable; reads never wait
//! for it — they borrow the state published after each commit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

mod audit;
mod cluster;

use crate::core::audit::bundle::{Bundle, FORMAT, FinalHead, Proof, ProofError, prove};
use crate::core::audit::signing::{HeadWire, Key};
use crate::core::error::HubError;
use crate::core::export;
use crate::core::limits::Limits;
use crate::core::meeting::Meeting;
use crate::core::roll::{MemberEdit, Roll, RollPage, SelfView, Voter};
use crate::core::roll::{NewVoter, normalise_code};
use crate::core::rules::{Presence, Standing};
use crate::core::session::{
    AuditHead, CloseReceipt, Created, Electorate, Secrecy, SessionKind, SessionMeta, SessionState,
    SessionView, Status,
};
use crate::core::spec::SessionSpec;
use crate::core::store::{BallotRecord, SecretBallot, Store};
use crate::core::writer::{Attendance, CastRequest};
use crate::core::writer::{Command, Writer};

/// A session's state at one `seq`, as readers see it. Domain only: each
/// door renders it its own way (the live door frames it once for all its
/// subscribers).
#[derive(Debug, Clone)]
pub struct Published {
    pub meta: Arc<SessionMeta>,
    pub state: SessionState,
    /// Where a motion stands under its rule (`None` for elections).
    pub standing: Option<Standing>,
    /// How many times a moderator re-broadcast this `seq`.
    pub replay: u32,
}

impl Published {
    /// What readers may see of `state`: a secret vote shows how many voted
    /// and nothing per choice until it closes.
    pub(crate) fn of(
        meta: &Arc<SessionMeta>,
        state: &SessionState,
        presence: Option<Presence>,
    ) -> Arc<Published> {
        let hidden = meta.secrecy == Secrecy::Secret && state.status != Status::Closed;
        let mut shown = state.clone();
        if hidden {
            shown.tally = state.tally.masked();
        }
        Arc::new(Published {
            meta: meta.clone(),
            standing: (!hidden).then(|| standing(meta, state, presence)).flatten(),
            state: shown,
            replay: 0,
        })
    }

    /// What orders the states of one session: later is newer.
    pub fn version(&self) -> (u64, u32) {
        (self.state.seq, self.replay)
    }
}

/// Where a motion stands under its rule; elections have no standing.
fn standing(
    meta: &SessionMeta,
    state: &SessionState,
    presence: Option<Presence>,
) -> Option<Standing> {
    match meta.kind {
        SessionKind::Motion { .. } => Some(meta.rule.standing_at(&state.tally, presence)),
        SessionKind::Election(_) => None,
    }
}

/// The readable side of the hub, updated by the writer after each commit.
#[derive(Default)]
pub(crate) struct Registry {
    pub sessions: HashMap<Uuid, watch::Sender<Arc<Published>>>,
    /// Creation order, oldest first.
    pub order: Vec<Uuid>,
    /// The roll as last committed.
    pub roll: Roll,
    /// Who is present at the current meeting (member ids).
    pub present: HashSet<String>,
    /// Roll sessions: who has voted (member ids).
    pub voted: HashMap<Uuid, HashSet<String>>,
    /// Each session's log as readers prove from it: its leaf hashes and
    /// its newest signed head.
    pub logs: HashMap<Uuid, LogView>,
    /// Grows with every change of the roll or of who is present.
    pub roll_version: u64,
    /// In the order they began; the last is the current one.
    pub meetings: Vec<Meeting>,
}

/// A session's log as readers see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogView {
    pub leaves: crate::core::audit::tree::Levels,
    pub head: Option<crate::core::audit::signing::SignedHead>,
}

/// What the writer tells readers through: the registry and the ticks.
#[derive(Clone)]
pub(crate) struct Board {
    // A std lock: it is only ever held for a lookup or a swap, never across
    // an `.await`.
    pub registry: Arc<RwLock<Registry>>,
    /// Ticks after every change of any session, the roll, or a subscriber
    /// count.
    pub changes: watch::Sender<u64>,
    /// Ticks when a session is created or closed: the list changed.
    pub lobby: watch::Sender<u64>,
}

impl Board {
    pub fn read(&self) -> RwLockReadGuard<'_, Registry> {
        // A poisoned lock means a panic while swapping a map entry; the map
        // itself is still consistent, so keep serving.
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tick(&self) {
        self.changes.send_modify(|v| *v += 1);
    }
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

/// The cheap-to-clone handle every door holds.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    board: Board,
    /// Open live connections (browsers and other clients).
    connections: Arc<AtomicUsize>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Attendance as last counted, with the roll version it was counted
    /// at: a count walks the roll, and the window and projector ask often.
    attendance: std::sync::Mutex<Option<(u64, Attendance)>>,
    key: KeyInfo,
    /// Its place among other hubs on a shared store (`cluster.rs`).
    cluster: cluster::Cluster,
    /// The audit files of the last closed sessions asked for: a closed log
    /// never changes, and at the close of a secret vote every phone fetches
    /// its file — read once through the writer, not once per phone. The
    /// lock is held while a file is read, so that the others wait for it.
    audit_files: tokio::sync::Mutex<std::collections::VecDeque<(Uuid, bytes::Bytes)>>,
}

/// Closed sessions' audit files kept.
const AUDIT_FILES_KEPT: usize = 4;

/// The public side of the hub's signing key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub public_key: String,
    pub fingerprint: String,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, HubError>>;

impl Hub {
    /// Loads everything from `store` and starts the writer thread.
    pub fn open(store: impl Store, limits: Limits) -> Result<Hub, HubError> {
        Hub::open_signed(store, limits, Key::generate())
    }

    /// Loads everything from `store` and starts the writer thread, which
    /// signs the logs' heads with `key`.
    pub fn open_signed(store: impl Store, limits: Limits, key: Key) -> Result<Hub, HubError> {
        let (changes, _) = watch::channel(0u64);
        let (lobby, _) = watch::channel(0u64);
        let board = Board {
            registry: Arc::default(),
            changes,
            lobby,
        };
        let public = KeyInfo {
            public_key: key.public_hex(),
            fingerprint: key.fingerprint(),
        };
        let writer = Writer::load(Box::new(store), board.clone(), limits.clone(), key)?;
        let (tx, rx) = mpsc::channel(limits.queue);
        let thread = std::thread::Builder::new()
            .name("votehub-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| HubError::Writer(Arc::new(e)))?;
        Ok(Hub {
            inner: Arc::new(Inner {
                commands: tx,
                board,
                connections: Arc::default(),
                writer: std::sync::Mutex::new(Some(thread)),
                attendance: std::sync::Mutex::new(None),
                audit_files: tokio::sync::Mutex::new(std::collections::VecDeque::new()),
                key: public,
                cluster: cluster::Cluster::alone(),
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

    /// Makes a session; the warnings are for the organiser (in a secret
    /// vote, members whose weight gives their ballot away).
    pub async fn create_session(&self, spec: SessionSpec) -> Result<Created, HubError> {
        let (id, warnings) = self.call(|r| Command::Create(spec, r)).await?;
        let session = self.session(id).ok_or(HubError::SessionNotFound)?;
        Ok(Created { session, warnings })
    }

    /// Adds every vote of an agenda file as a draft, or none of them; each
    /// spec comes with its line in the file, for the refusal to name.
    pub async fn import_agenda(
        &self,
        specs: Vec<(usize, SessionSpec)>,
    ) -> Result<Vec<SessionView>, HubError> {
        let ids = self.call(|r| Command::Import(specs, r)).await?;
        Ok(ids.into_iter().filter_map(|id| self.session(id)).collect())
    }

    /// Edits a draft: the fields given replace its own.
    pub async fn edit_session(&self, id: Uuid, spec: SessionSpec) -> Result<SessionView, HubError> {
        self.call(|r| Command::Edit(id, spec, r)).await?;
        self.session(id).ok_or(HubError::SessionNotFound)
    }

    /// Deletes a draft.
    pub async fn delete_session(&self, id: Uuid) -> Result<(), HubError> {
        self.call(|r| Command::Delete(id, r)).await
    }

    /// Opens a draft (an open session is returned as it is).
    pub async fn open_session(&self, id: Uuid) -> Result<SessionView, HubError> {
        self.call(|r| Command::Open(id, r)).await?;
        self.session(id).ok_or(HubError::SessionNotFound)
    }

    /// Moves an open vote's deadline `seconds` later.
    pub async fn extend(&self, id: Uuid, seconds: u64) -> Result<SessionView, HubError> {
        self.call(|r| Command::Extend(id, seconds, r)).await?;
        self.session(id).ok_or(HubError::SessionNotFound)
    }

    /// Puts the current meeting's agenda in this order.
    pub async fn reorder(&self, order: Vec<Uuid>) -> Result<Vec<SessionView>, HubError> {
        self.call(|r| Command::Reorder(order, r)).await?;
        Ok(self.agenda(None))
    }

    /// Records a ballot; returns once it is durable, with the receipt's
    /// JSON (a retry of the same `ballot_id` gets the same bytes).
    pub async fn cast(&self, session: Uuid, request: CastRequest) -> Result<String, HubError> {
        self.call(|reply| Command::Cast(session, request, reply))
            .await
    }

    /// Closes a session, or returns the stored result if it already is.
    pub async fn close(&self, session: Uuid) -> Result<CloseReceipt, HubError> {
        self.call(|r| Command::Close(session, r)).await
    }

    pub async fn register_voters(&self, voters: Vec<NewVoter>) -> Result<Vec<Voter>, HubError> {
        self.register(voters, false).await
    }

    /// Registers a roll file's members, all or none (up to 50 000 at once).
    pub async fn import_roll(&self, voters: Vec<NewVoter>) -> Result<Vec<Voter>, HubError> {
        self.register(voters, true).await
    }

    async fn register(
        &self,
        voters: Vec<NewVoter>,
        from_file: bool,
    ) -> Result<Vec<Voter>, HubError> {
        let members = self
            .call(|r| Command::Register(voters, from_file, r))
            .await?;
        let registry = self.inner.board.read();
        Ok(members
            .iter()
            .map(|m| registry.roll.voter(m, registry.present.contains(&m.id)))
            .collect())
    }

    /// Edits a member (the fields given).
    pub async fn edit_voter(&self, code: String, edit: MemberEdit) -> Result<Voter, HubError> {
        let member = self.call(|r| Command::EditMember(code, edit, r)).await?;
        self.voter_view(&member.id)
    }

    /// Gives a member a new code (a lost card): the old one stops working.
    pub async fn reissue(&self, code: String) -> Result<Voter, HubError> {
        let member = self.call(|r| Command::Reissue(code, r)).await?;
        self.voter_view(&member.id)
    }

    /// `from` gives their proxy to `to`.
    pub async fn give_proxy(&self, from: String, to: String) -> Result<Voter, HubError> {
        let member = self.call(|r| Command::GiveProxy(from, to, r)).await?;
        self.voter_view(&member.id)
    }

    /// `from` takes their proxy back.
    pub async fn revoke_proxy(&self, from: String) -> Result<Voter, HubError> {
        let member = self.call(|r| Command::RevokeProxy(from, r)).await?;
        self.voter_view(&member.id)
    }

    /// Checks a member in or out of the current meeting.
    pub async fn set_presence(&self, code: String, present: bool) -> Result<Attendance, HubError> {
        self.call(|r| Command::SetPresence(code, present, r))
            .await?;
        Ok(self.attendance())
    }

    /// Who voted in a roll session, by name, sorted: never what, never in
    /// what order. Read from what the writer published, without waiting
    /// for it.
    pub fn voted(&self, session: Uuid) -> Result<Vec<String>, HubError> {
        let registry = self.inner.board.read();
        let live = registry
            .sessions
            .get(&session)
            .ok_or(HubError::SessionNotFound)?;
        if live.borrow().meta.electorate != Electorate::Roll {
            return Err(HubError::InvalidSession(
                "only a vote on the roll keeps who voted".into(),
            ));
        }
        let mut names: Vec<String> = registry
            .voted
            .get(&session)
            .into_iter()
            .flatten()
            .filter_map(|m| registry.roll.by_id(m).map(|m| m.name.clone()))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// A secret session's ballots and who voted (member ids), apart.
    pub async fn secret_ballots(
        &self,
        session: Uuid,
    ) -> Result<(Vec<SecretBallot>, Vec<String>), HubError> {
        self.call(|r| Command::Secret(session, r)).await
    }

    fn voter_view(&self, id: &str) -> Result<Voter, HubError> {
        let registry = self.inner.board.read();
        let member = registry.roll.by_id(id).ok_or(HubError::UnknownCode)?;
        Ok(registry.roll.voter(member, registry.present.contains(id)))
    }

    /// Attendance at the current meeting (counted again only when the roll
    /// or who is present changed).
    pub fn attendance(&self) -> Attendance {
        let registry = self.inner.board.read();
        let mut cached = self
            .inner
            .attendance
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *cached {
            Some((version, counted)) if version == registry.roll_version => counted,
            _ => {
                let counted = Attendance::of(registry.roll.members(), &registry.present);
                *cached = Some((registry.roll_version, counted));
                counted
            }
        }
    }

    /// A member's name by their internal id (exports name members, never
    /// by code).
    pub fn member_name(&self, id: &str) -> Option<String> {
        self.inner
            .board
            .read()
            .roll
            .by_id(id)
            .map(|m| m.name.clone())
    }

    /// Closes the day: the current meeting ends and a new one begins
    /// (refused while one of its votes is open).
    pub async fn start_meeting(&self, title: String) -> Result<Meeting, HubError> {
        self.call(|r| Command::StartMeeting(title, r)).await
    }

    /// Every ballot of a session, read from the store after all writes
    /// queued before this call.
    pub async fn ballots(&self, session: Uuid) -> Result<Vec<BallotRecord>, HubError> {
        self.call(|r| Command::Ballots(session, r)).await
    }

    /// A session's CSV export: its ballots by member name (never by
    /// code), or for a secret vote who voted and what was voted, apart.
    pub async fn export_csv(&self, id: Uuid) -> Result<Vec<u8>, HubError> {
        let session = self.session(id).ok_or(HubError::SessionNotFound)?;
        let written = if session.secrecy == Secrecy::Secret {
            let (ballots, voted) = self.secret_ballots(id).await?;
            let names: Vec<String> = {
                let registry = self.inner.board.read();
                voted
                    .iter()
                    .filter_map(|m| registry.roll.by_id(m).map(|m| m.name.clone()))
                    .collect()
            };
            export::secret_csv(&session, &ballots, &names)
        } else {
            let ballots = self.ballots(id).await?;
            let registry = self.inner.board.read();
            let name_of = |m: &str| registry.roll.by_id(m).map(|m| m.name.clone());
            export::session_csv(&session, &ballots, &name_of)
        };
        written.map_err(|e| {
            tracing::error!(error = %e, "csv export failed");
            HubError::Export(e.to_string())
        })
    }

    /// The roll as CSV, with codes: for printing cards.
    pub fn roll_csv(&self) -> Result<Vec<u8>, HubError> {
        export::roll_csv(&self.roll()).map_err(|e| {
            tracing::error!(error = %e, "csv export failed");
            HubError::Export(e.to_string())
        })
    }

    /// Pushes the current state of a session to every subscriber again.
    pub fn broadcast(&self, session: Uuid) -> Result<SessionView, HubError> {
        {
            let registry = self.inner.board.read();
            let live = registry
                .sessions
                .get(&session)
                .ok_or(HubError::SessionNotFound)?;
            // The same state again, as a newer version: every subscriber
            // gets it once more.
            live.send_modify(|state| {
                let mut again = Published::clone(state);
                again.replay += 1;
                *state = Arc::new(again);
            });
        }
        self.inner.board.tick();
        self.session(session).ok_or(HubError::SessionNotFound)
    }

    pub fn session(&self, id: Uuid) -> Option<SessionView> {
        let registry = self.inner.board.read();
        registry.sessions.get(&id).map(|live| view(&registry, live))
    }

    /// A meeting's sessions (the current one's by default), newest first.
    pub fn sessions(&self, meeting: Option<Uuid>) -> Vec<SessionView> {
        let registry = self.inner.board.read();
        let meeting = meeting.unwrap_or_else(|| current(&registry));
        registry
            .order
            .iter()
            .rev()
            .filter_map(|id| registry.sessions.get(id))
            .filter(|live| live.borrow().meta.meeting == meeting)
            .map(|live| view(&registry, live))
            .collect()
    }

    /// A meeting's agenda (the current one's by default), in order.
    pub fn agenda(&self, meeting: Option<Uuid>) -> Vec<SessionView> {
        let mut sessions = self.sessions(meeting);
        sessions.sort_by_key(|s| s.position);
        sessions
    }

    /// Every meeting, in the order they began; the last is the current one.
    pub fn meetings(&self) -> Vec<Meeting> {
        self.inner.board.read().meetings.clone()
    }

    /// The roll, as moderators see it, in registration order.
    pub fn roll(&self) -> Vec<Voter> {
        let registry = self.inner.board.read();
        registry
            .roll
            .members()
            .iter()
            .map(|m| registry.roll.voter(m, registry.present.contains(&m.id)))
            .collect()
    }

    /// The first `limit` members a search of the roll finds (see
    /// [`Roll::search`]).
    pub fn roll_page(&self, query: &str, limit: usize) -> RollPage {
        let registry = self.inner.board.read();
        registry.roll.search(query, &registry.present, limit)
    }

    /// Every member's name, in registration order (to pick a proxy holder).
    pub fn roll_names(&self) -> Vec<String> {
        let registry = self.inner.board.read();
        registry
            .roll
            .members()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Subscribes to a session's published states; `None` if unknown.
    pub fn subscribe(&self, id: Uuid) -> Option<Subscription> {
        let updates = self.inner.board.read().sessions.get(&id)?.subscribe();
        self.inner.board.tick();
        Some(Subscription {
            updates: Some(updates),
            changes: self.inner.board.changes.clone(),
        })
    }

    /// A session's newest published state, without subscribing to it.
    pub fn published(&self, id: Uuid) -> Option<Arc<Published>> {
        Some(self.inner.board.read().sessions.get(&id)?.borrow().clone())
    }

    /// Ticks after every change of any session, the roll, or a subscriber
    /// count: watchers re-read what they show (latest wins, never a queue).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.board.changes.subscribe()
    }

    /// Ticks when a session is created or closed, for clients that show the
    /// list of sessions.
    pub fn lobby(&self) -> watch::Receiver<u64> {
        self.inner.board.lobby.subscribe()
    }

    /// Registers an open live connection until the guard is dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.board.tick();
        ConnectionGuard {
            connections: self.inner.connections.clone(),
            changes: self.inner.board.changes.clone(),
        }
    }

    /// Commands waiting for the writer right now.
    pub fn queued(&self) -> usize {
        let commands = &self.inner.commands;
        commands.max_capacity() - commands.capacity()
    }

    /// Open live connections right now.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// A member as they see themselves, by their code typed as people
    /// type it.
    pub fn roll_entry(&self, typed: &str) -> Result<SelfView, HubError> {
        let code = normalise_code(typed).ok_or(HubError::UnknownCode)?;
        let registry = self.inner.board.read();
        let member = registry.roll.by_code(&code).ok_or(HubError::UnknownCode)?;
        Ok(registry
            .roll
            .self_view(member, registry.present.contains(&member.id)))
    }

    /// Voters on the roll.
    pub fn roll_size(&self) -> usize {
        self.inner.board.read().roll.len()
    }

    /// Grows with every change of the roll or of who is present: a window
    /// showing the roll reads it again when this moves.
    pub fn roll_version(&self) -> u64 {
        self.inner.board.read().roll_version
    }

    /// The roll's total weight.
    pub fn roll_weight(&self) -> u64 {
        self.inner.board.read().roll.total_weight()
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

fn current(registry: &Registry) -> Uuid {
    registry.meetings.last().map(|m| m.id).unwrap_or_default()
}

fn view(registry: &Registry, live: &watch::Sender<Arc<Published>>) -> SessionView {
    let published = live.borrow().clone();
    let mut view = SessionView::new(
        &published.meta,
        &published.state,
        published.standing.clone(),
        live.receiver_count(),
    );
    view.audit = registry
        .logs
        .get(&published.meta.id)
        .and_then(|l| l.head)
        .map(|h| AuditHead::of(&h));
    view
}
