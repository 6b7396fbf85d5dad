//! The hub as one node of several on a shared store (PostgreSQL): whether
//! it is one, whether it sees what the others commit (`/health`), and
//! reading what they changed — on a notification, or for a session asked
//! for that it has not seen yet (bounded).

use std::sync::atomic::AtomicBool;

use super::*;

/// Sessions not seen yet looked up in the store, per second at most.
const LOOKUPS_PER_SECOND: u32 = 50;

/// A hub's place among others on a shared store.
pub(super) struct Cluster {
    /// Whether this hub sees what other hubs on its store commit (always,
    /// alone on SQLite; on PostgreSQL, while it listens to the others).
    following: AtomicBool,
    clustered: AtomicBool,
    /// Reads of sessions this hub has not seen, asked for by anyone (a
    /// subscription, an audit file): at most `LOOKUPS_PER_SECOND`, so that
    /// made-up ids cannot keep the writer busy.
    lookups: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl Cluster {
    /// A hub alone on its store, until it joins a cluster.
    pub(super) fn alone() -> Cluster {
        Cluster {
            following: AtomicBool::new(true),
            clustered: AtomicBool::new(false),
            lookups: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }
}

impl Hub {
    /// Reads again, and shows this hub's readers, the sessions another hub
    /// on the same store changed (every session, when `ids` is empty).
    pub async fn follow(&self, ids: Vec<Uuid>) -> Result<(), HubError> {
        self.call(|r| Command::Follow(ids, r)).await
    }

    /// May a session this hub has not seen be looked up in the store now?
    /// On a cluster, at most `LOOKUPS_PER_SECOND` times a second.
    pub fn may_look_up(&self) -> bool {
        if !self.clustered() {
            return false;
        }
        let mut lookups = self
            .inner
            .cluster
            .lookups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if now.duration_since(lookups.0) >= std::time::Duration::from_secs(1) {
            *lookups = (now, 0);
        }
        lookups.1 += 1;
        lookups.1 <= LOOKUPS_PER_SECOND
    }

    /// Whether other hubs share this one's store (PostgreSQL).
    pub fn clustered(&self) -> bool {
        self.inner
            .cluster
            .clustered
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// This hub shares its store with others: it does not see what they
    /// commit until it follows them ([`Hub::set_following`]).
    pub fn join_cluster(&self) {
        self.inner
            .cluster
            .clustered
            .store(true, std::sync::atomic::Ordering::Release);
        self.set_following(false);
    }

    /// Whether this hub sees what the others commit: `/health` answers 503
    /// while it does not (a load balancer then sends no one to it).
    pub fn following(&self) -> bool {
        self.inner
            .cluster
            .following
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_following(&self, following: bool) {
        self.inner
            .cluster
            .following
            .store(following, std::sync::atomic::Ordering::Release);
    }
}
