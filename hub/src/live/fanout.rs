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

/// Whether a session whose next sweep would be on time at `on_time` (none:
/// never swept) may be swept at `now`: `Ok` with when the one after would
/// be on time, or `Err` with when it may be.
fn admit(on_time: Option<Instant>, now: Instant) -> Result<Instant, Instant> {
    let tolerance = PACE * BURST.saturating_sub(1);
    match on_time {
        Some(at) if now + tolerance < at => Err(at - tolerance),
        Some(at) => Ok(at.max(now) + PACE),
        None => Ok(now + PACE),
    }
}

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
                let last = swept.get(&session);
                if last.is_some_and(|&(version, _)| version >= newest.version()) {
                    continue;
                }
                let next = match admit(last.map(|&(_, at)| at), Instant::now()) {
                    Ok(next) => next,
                    Err(due) => {
                        paced = Some(paced.map_or(due, |p| p.min(due)));
                        continue;
                    }
                };
                moved = true;
                // The version the sweep starts from: if a newer state
                // comes while it runs, the followers visited before get it
                // on the next sweep.
                swept.insert(session, (newest.version(), next));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sweeps of one session asked for at `times` (offsets from a start):
    /// which were let through.
    fn admitted(times: &[Duration]) -> Vec<bool> {
        let start = Instant::now();
        let mut on_time = None;
        times
            .iter()
            .map(|&t| match admit(on_time, start + t) {
                Ok(next) => {
                    on_time = Some(next);
                    true
                }
                Err(due) => {
                    assert!(due > start + t, "due in the past");
                    false
                }
            })
            .collect()
    }

    #[test]
    fn a_burst_passes_then_the_pace_holds() {
        let at_once = vec![Duration::ZERO; BURST as usize + 2];
        let mut expected = vec![true; BURST as usize];
        expected.extend([false, false]);
        assert_eq!(admitted(&at_once), expected);
        // One more may go a pace later, not before.
        let mut times = vec![Duration::ZERO; BURST as usize];
        times.push(PACE - Duration::from_micros(1));
        times.push(PACE);
        assert_eq!(admitted(&times)[BURST as usize..], [false, true]);
    }

    #[test]
    fn states_at_the_pace_or_slower_never_wait_even_unevenly() {
        // One every PACE, every other one late by most of a pace and the
        // next one on time (a commit held up by the disk).
        let times: Vec<Duration> = (0..200u32)
            .map(|k| {
                PACE * k
                    + if k % 2 == 1 {
                        PACE * 3 / 4
                    } else {
                        Duration::ZERO
                    }
            })
            .collect();
        assert!(admitted(&times).iter().all(|&a| a));
    }

    #[test]
    fn a_pause_gives_the_burst_back() {
        let mut times = vec![Duration::ZERO; BURST as usize];
        times.extend(vec![PACE * (BURST + 1); BURST as usize]);
        assert!(admitted(&times).iter().all(|&a| a));
    }
}
