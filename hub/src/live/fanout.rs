//! The fan-out: who follows which session, and the one task that writes
//! each session's newest state to every follower's socket that can take
//! it. No task is woken per subscriber: a tally costs one non-blocking
//! write per follower, and a follower whose socket is full is skipped
//! (its own task sends it the newest state once the socket drains).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::core::{Hub, Published};
use crate::live::frames::FrameCache;
use crate::live::outlet::Outlet;

/// Followers visited between two looks at the session's newest state and
/// two chances for the connections' own tasks to run.
const STRIDE: usize = 256;

/// The pace of one session's sweeps, held on average: at most 200 states a
/// second reach a screen (more than any screen shows), with bursts of up to
/// [`BURST`] sweeps so that states arriving unevenly at a room's pace (a
/// commit delayed by the disk, then the next on time) wait for nothing.
/// Under a burst of ballots (a thousand commits a second) the CPU then goes
/// to recording them rather than to writing states no one sees to every
/// socket. (A cell rate limit, GCRA: one instant per session.)
pub const PACE: Duration = Duration::from_millis(5);

/// How many sweeps of one session may follow each other with no pause.
pub const BURST: u32 = 4;

/// The cheap-to-clone handle over who follows what.
#[derive(Clone, Default)]
pub struct Fanout {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    // A std lock: held for an insert, a removal or taking a snapshot, never
    // across an `.await` nor during a sweep.
    sessions: Mutex<HashMap<Uuid, Followers>>,
    next_id: AtomicU64,
    /// Each followed session's newest state, framed once for everyone.
    frames: FrameCache,
}

#[derive(Default)]
struct Followers {
    outlets: IndexMap<u64, Arc<Outlet>>,
    /// The outlets as a sweep walks them, rebuilt after a change.
    snapshot: Option<Arc<[Arc<Outlet>]>>,
}

impl Fanout {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Followers>> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A number naming one connection among the followers.
    pub fn connection_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `outlet` follows `session` from now on. Join after the outlet
    /// follows the session, and send it the current state after joining:
    /// every later state then reaches it through a sweep.
    pub fn join(&self, session: Uuid, connection: u64, outlet: &Arc<Outlet>) {
        let mut sessions = self.lock();
        let followers = sessions.entry(session).or_default();
        followers.outlets.insert(connection, outlet.clone());
        followers.snapshot = None;
    }

    pub fn leave(&self, session: Uuid, connection: u64) {
        let mut sessions = self.lock();
        if let Some(followers) = sessions.get_mut(&session) {
            followers.outlets.swap_remove(&connection);
            followers.snapshot = None;
            if followers.outlets.is_empty() {
                sessions.remove(&session);
                self.shared.frames.forget(session);
            }
        }
    }

    /// The frames of every followed session's states.
    pub fn frames(&self) -> &FrameCache {
        &self.shared.frames
    }

    fn snapshot(&self, session: Uuid) -> Option<Arc<[Arc<Outlet>]>> {
        let mut sessions = self.lock();
        let followers = sessions.get_mut(&session)?;
        Some(
            followers
                .snapshot
                .get_or_insert_with(|| followers.outlets.values().cloned().collect())
                .clone(),
        )
    }

    fn followed(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    /// Writes every new state to its followers until `shutdown`, each
    /// session's at the pace of [`PACE`] and [`BURST`].
    pub async fn run(self, hub: Hub, shutdown: CancellationToken) {
        let mut changes = hub.changes();
        // Per session, the version the last sweep started from, and when
        // the next would be on time (GCRA's theoretical arrival time).
        let mut swept: HashMap<Uuid, ((u64, u32), Instant)> = HashMap::new();
        let tolerance = PACE * BURST.saturating_sub(1);
        while !shutdown.is_cancelled() {
            changes.borrow_and_update();
            let mut moved = false;
            // The soonest a session that moved may be swept again.
            let mut paced: Option<Instant> = None;
            let followed = self.followed();
            for &session in &followed {
                let Some(newest) = hub.published(session) else {
                    continue;
                };
                let now = Instant::now();
                let mut on_time = now;
                if let Some(&(version, at)) = swept.get(&session) {
                    if version >= newest.version() {
                        continue;
                    }
                    if now + tolerance < at {
                        let due = at - tolerance;
                        paced = Some(paced.map_or(due, |p| p.min(due)));
                        continue;
                    }
                    on_time = at.max(now);
                }
                moved = true;
                // The version the sweep starts from: if a newer state
                // comes while it runs, the followers visited before get it
                // on the next sweep.
                swept.insert(session, (newest.version(), on_time + PACE));
                self.sweep(&hub, session, newest).await;
            }
            if moved {
                // A walk of fewer than `STRIDE` followers never yields, and
                // states may keep coming: let the connections' tasks run.
                tokio::task::yield_now().await;
            } else {
                swept.retain(|session, _| followed.contains(session));
                let pace = async {
                    match paced {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = pace => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }

    async fn sweep(&self, hub: &Hub, session: Uuid, newest: Arc<Published>) {
        // Taken after reading `newest`: an outlet that joined before that
        // state was published is in it.
        let Some(outlets) = self.snapshot(session) else {
            return;
        };
        let frames = &self.shared.frames;
        let mut framed = frames.framed(&newest);
        for (i, outlet) in outlets.iter().enumerate() {
            if i > 0 && i % STRIDE == 0 {
                // Let the connections' own tasks answer their clients, and
                // give the rest of the sweep the newest state.
                tokio::task::yield_now().await;
                if let Some(state) = hub.published(session) {
                    framed = frames.framed(&state);
                }
            }
            outlet.send_news(frames, Some((session, &framed)));
        }
    }
}
